/*
 * sandbox.c - the pool of workers and their jobs: preparing a task's sandbox
 * (volumes, environment, config templates, bootstrap, artifacts),
 * writing launch.json and starting the shim; deleting volumes; removing
 * old task directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/caps.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/rlimit.h"
#include "common/util.h"
#include "shim/shim.h"
#include "spec/spec.h"

void ag_job_push(struct hf_agent *ag, enum ag_job_kind kind,
		 struct ag_task *t, const char *key)
{
	struct ag_job *j = HF_VEC_PUSH(&ag->jobs);

	j->kind = kind;
	j->task = t;
	j->key = key ? hf_xstrdup(key) : NULL;
	if (t)
		t->jobs++;
	pthread_cond_broadcast(&ag->work_cv);
}

bool ag_volume_key_valid(const char *key)
{
	const char *p = key;

	if (!*key || *key == '/' || strlen(key) > 1024)
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') ||
			      (p[i] >= 'A' && p[i] <= 'Z') ||
			      (p[i] >= '0' && p[i] <= '9') ||
			      strchr("._:@+%-", p[i])))
				return false;
		p += n;
		if (*p == '/')
			p++;
		if (!*p && p[-1] == '/')
			return false;
	}
	return true;
}

void ag_unbind_volumes(struct ag_task *t)
{
	int left = ag_unmount_under(t->sandbox);

	if (left)
		hf_log("task %s: %d mount(s) in its sandbox could not be "
		       "detached", t->id, left);
}

/* ---- launch ----------------------------------------------------------- */

/* What the worker reads from the task once, under the lock. */
struct launch {
	struct hf_agent *ag;
	struct ag_task *t;
	const struct hf_proto_launch *order; /* t's, which never changes */
	struct hf_kvlist env;
	struct hf_strlist volume_keys, volume_paths;
	char *user;
	bool have_ids;
	uid_t uid;
	gid_t gid;
	int sandbox_fd;            /* O_PATH */
	struct hf_strlist visible; /* task-dir entries configs wrote */
	bool permanent;            /* the failure is the spec's: no retry */
};

static void launch_release(struct launch *l)
{
	hf_kvlist_release(&l->env);
	hf_strlist_release(&l->volume_keys);
	hf_strlist_release(&l->volume_paths);
	hf_strlist_release(&l->visible);
	free(l->user);
	if (l->sandbox_fd >= 0)
		close(l->sandbox_fd);
}

/* The owner for what the agent creates for the task. */
static uid_t owner_uid(const struct launch *l)
{
	return l->have_ids ? l->uid : HF_FS_KEEP_OWNER;
}

static char *volume_source(const struct launch *l, size_t i)
{
	return hf_xasprintf("%s/%s", l->ag->volumes_dir,
			    l->volume_keys.items[i]);
}

/* Whether volume i is a MOUNT volume: an ext4 image of its own. */
static const struct hf_proto_volume *order_volume(const struct launch *l,
						  size_t i)
{
	const char *key = l->volume_keys.items[i];

	for (size_t k = 0; k < l->order->volumes.len; k++)
		if (strcmp(l->order->volumes.items[k].key, key) == 0)
			return &l->order->volumes.items[k];
	return NULL;
}

static bool is_image(const struct launch *l, size_t i)
{
	const struct hf_proto_volume *v = order_volume(l, i);

	return v && v->type && strcmp(v->type, "MOUNT") == 0;
}

/* An attached volume (docs/protocol.md, "Volumes"): no directory here. */
static bool is_external(const struct launch *l, size_t i)
{
	const struct hf_proto_volume *v = order_volume(l, i);

	return v && v->type && strcmp(v->type, "EXTERNAL") == 0;
}

#define ATTACH_WAIT_MS 60000

/*
 * Waits until the attached volume i is ready at the order's epoch; sets
 * the shim's mount. Lock not held.
 */
static int external_mount(struct launch *l, size_t i, struct hf_shim_mount *m,
			  char **err)
{
	const struct hf_proto_volume *v = order_volume(l, i);
	int64_t end = hf_mono_ms() + ATTACH_WAIT_MS;
	char *device = NULL, *identity = NULL, *why = NULL;
	int rc;

	for (;;) {
		pthread_mutex_lock(&l->ag->mu);
		rc = ag_attach_ready(l->ag, v->key, v->epoch, &device,
				     &identity, &why);
		if (rc == 1 && (l->t->stop != AG_STOP_NONE ||
				l->ag->stopping))
			rc = -1;
		pthread_mutex_unlock(&l->ag->mu);
		if (rc != 1 || hf_mono_ms() >= end)
			break;
		free(why);
		why = NULL;
		hf_sleep_ms(50);
	}
	if (rc) {
		*err = hf_xasprintf("%s", why ? why : "volume not attached");
		free(why);
		return -1;
	}
	free(why);
	m->device = device;
	m->expect = identity;
	m->fstype = hf_xstrdup("ext4");
	m->ro = v->ro;
	return 0;
}

/* A MOUNT volume's image, inside its directory, which holds nothing else. */
static char *image_path(const struct launch *l, size_t i)
{
	return hf_xasprintf("%s/%s/ext4.img", l->ag->volumes_dir,
			    l->volume_keys.items[i]);
}

static int open_dir(const char *path)
{
	return open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Gives a volume made for a root task to the task's user: every entry,
 * never through a link, never into another mount. Only a volume whose
 * top belongs to root is taken over; one a root task handed to some user
 * itself (postgres's data directory) is that user's business.
 */
static int chown_tree(int dirfd, const char *name, uid_t uid, gid_t gid,
		      uint64_t mnt_id)
{
	struct statx stx;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_MNT_ID, &stx) < 0)
		return -1;
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	if (!S_ISDIR(stx.stx_mode) ||
	    ((stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != mnt_id))
		return 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    chown_tree(fd, de->d_name, uid, gid, mnt_id) < 0)
			rc = -1;
	closedir(d);
	return rc;
}

static void adopt_volume(struct launch *l, const char *key, const char *src)
{
	struct statx stx;

	if (!l->have_ids || l->uid == 0 ||
	    statx(AT_FDCWD, src, AT_SYMLINK_NOFOLLOW,
		  STATX_UID | STATX_MNT_ID, &stx) < 0 ||
	    stx.stx_uid != 0)
		return;
	if (chown_tree(AT_FDCWD, src, l->uid, l->gid, stx.stx_mnt_id) < 0)
		hf_log("task %s: cannot give volume %s to user %s: %s",
		       l->t->id, key, l->user, strerror(errno));
	else
		hf_log("task %s: volume %s belonged to root; it now belongs "
		       "to user %s", l->t->id, key, l->user);
}

/*
 * The volume whose mount point is at or above rel (a normalised
 * sandbox-relative path), the deepest one; -1 for none. *rest is what
 * remains of rel below it ("" when rel is the mount point itself).
 */
static ssize_t volume_at(const struct launch *l, const char *rel,
			 size_t before, const char **rest)
{
	ssize_t best = -1;
	size_t best_len = 0;

	for (size_t i = 0; i < before; i++) {
		const char *vp = l->volume_paths.items[i];
		size_t n = strlen(vp);

		if (strncmp(rel, vp, n) == 0 && (rel[n] == '/' || !rel[n]) &&
		    (best < 0 || n > best_len)) {
			best = (ssize_t)i;
			best_len = n;
		}
	}
	if (best >= 0)
		*rest = rel[best_len] ? rel + best_len + 1 : "";
	return best;
}

/*
 * Without mount namespaces (not root, or mounts refused): each volume is
 * a link in the sandbox, made where the task cannot have placed one.
 */
static int link_volume(struct launch *l, size_t i, const char *src,
		       char **err)
{
	const char *rel = l->volume_paths.items[i], *rest = rel;
	ssize_t in = volume_at(l, rel, i, &rest);
	char *root = in >= 0 ? volume_source(l, (size_t)in) : NULL;
	char *parent = hf_xstrdup(rest), *slash = strrchr(parent, '/');
	const char *base = slash ? slash + 1 : parent;
	char have[PATH_MAX];
	int rootfd = root ? open_dir(root) : dup(l->sandbox_fd), dir = -1;
	int rc = -1;
	ssize_t n;

	if (slash)
		*slash = '\0';
	else
		base = rest, parent[0] = '\0';
	if (rootfd >= 0)
		dir = hf_fs_open_dir_beneath(rootfd, parent, true, 0755,
					     owner_uid(l), l->gid);
	if (dir < 0) {
		*err = hf_xasprintf("cannot create the place of volume %s at "
				    "%s: %s", l->volume_keys.items[i], rel,
				    strerror(errno));
		goto out;
	}
	if (symlinkat(src, dir, base) == 0) {
		rc = 0;
		goto out;
	}
	n = errno == EEXIST ? readlinkat(dir, base, have, sizeof(have) - 1)
			    : -1;
	if (n > 0 && (have[n] = '\0', strcmp(have, src) == 0))
		rc = 0;
	else
		*err = hf_xasprintf("cannot link volume %s at %s: something "
				    "else is there", l->volume_keys.items[i],
				    rel);
out:
	if (rootfd >= 0)
		close(rootfd);
	if (dir >= 0)
		close(dir);
	free(root);
	free(parent);
	return rc;
}

/*
 * A MOUNT volume: a directory the task never sees, holding the ext4 image
 * the shim mounts (shim.h, VOLUME IMAGES), made at the first launch with
 * the task user's root directory. Only a task in a mount namespace can
 * have one.
 */
static int prepare_image(struct launch *l, size_t i, const char *dir,
			 char **err)
{
	const struct hf_proto_volume *v = order_volume(l, i);
	const char *key = l->volume_keys.items[i];
	char *img, *why = NULL;
	bool made = false;
	int rc;

	if (!l->ag->isolate) {
		*err = hf_xasprintf("volume %s is a MOUNT volume (a file "
				    "system of its own): it needs an agent "
				    "that runs tasks in mount namespaces (as "
				    "root, with --isolation on)", key);
		l->permanent = true;
		return -1;
	}
	if (hf_fs_mkdir_p(dir, 0750, 0700) < 0) {
		*err = hf_xasprintf("cannot create volume %s: %s", key,
				    strerror(errno));
		return -1;
	}
	img = image_path(l, i);
	rc = ag_make_image(img, v->size_mb, l->have_ids ? l->uid : 0,
			   l->have_ids ? l->gid : 0, &made, &why);
	if (rc)
		*err = hf_xasprintf("cannot create volume %s: %s", key, why);
	else if (made)
		hf_log("task %s: created volume %s (MOUNT: an ext4 file system "
		       "of %lld MB)",
		       l->t->id, key,
		       (long long)(v->size_mb < AG_IMAGE_MIN_MB
					   ? AG_IMAGE_MIN_MB
					   : v->size_mb));
	free(why);
	free(img);
	return rc;
}

static int prepare_volumes(struct launch *l, char **err)
{
	struct hf_agent *ag = l->ag;
	/* Without namespaces a user may need to pass through to its volume. */
	mode_t mode = !ag->isolate && l->have_ids && l->uid ? 0711 : 0750;

	for (size_t i = 0; i < l->volume_keys.len; i++) {
		const char *key = l->volume_keys.items[i];
		char *src = volume_source(l, i);
		bool fresh = access(src, F_OK) != 0;
		int rc = 0;

		if (is_image(l, i)) {
			rc = prepare_image(l, i, src, err);
			free(src);
			if (rc)
				return -1;
			continue;
		}
		if (is_external(l, i)) {
			free(src);
			if (!ag->isolate) {
				*err = hf_xasprintf(
				    "volume %s is an external volume: it needs "
				    "an agent that runs tasks in mount "
				    "namespaces (as root)",
				    key);
				l->permanent = true;
				return -1;
			}
			continue;
		}
		if (hf_fs_mkdir_p(src, mode, mode) < 0) {
			*err = hf_xasprintf("cannot create volume %s: %s", key,
					    strerror(errno));
			rc = -1;
		} else if (fresh) {
			hf_log("task %s: created volume %s", l->t->id, key);
			if (l->have_ids && chown(src, l->uid, l->gid) < 0)
				hf_log("task %s: cannot give volume %s to user "
				       "%s: %s", l->t->id, key, l->user,
				       strerror(errno));
		} else {
			adopt_volume(l, key, src);
		}
		if (rc == 0 && !ag->isolate)
			rc = link_volume(l, i, src, err);
		free(src);
		if (rc)
			return -1;
	}
	return 0;
}

/*
 * Where a config's dest lands: a directory to write below and the path
 * below it. Inside the sandbox that is the sandbox or, below a volume's
 * mount point, the volume itself (the task sees it there; the agent never
 * mounts it). "../" reaches the task directory, never beyond and never
 * the files the shim and the agent keep there: the rule spec validation
 * applies (hf_spec_config_dest_problem), so a valid spec never fails
 * here. Returns an O_PATH descriptor, or -1 with *err set.
 */
static int config_root(struct launch *l, const char *dest, char **rel,
		       char **err)
{
	struct ag_task *t = l->t;
	const char *why = hf_spec_config_dest_problem(dest, NULL);
	char *path = why ? NULL : ag_path_join_within(t->dir, t->sandbox, dest);
	size_t slen = strlen(t->sandbox), dlen = strlen(t->dir);
	int fd = -1;

	*rel = NULL;
	if (path && strncmp(path, t->sandbox, slen) == 0 &&
	    path[slen] == '/') {
		const char *in = path + slen + 1, *rest = in;
		ssize_t v = volume_at(l, in, l->volume_paths.len, &rest);

		if (v >= 0 && !*rest) {
			*err = hf_xasprintf("config %s: cannot be written: it "
					    "is a volume's mount point", dest);
			goto out;
		}
		if (v >= 0 && (is_image(l, (size_t)v) ||
			       is_external(l, (size_t)v))) {
			*err = hf_xasprintf("config %s: cannot be written into "
					    "MOUNT volume %s, a file system "
					    "only the task mounts", dest,
					    l->volume_keys.items[v]);
			goto out;
		}
		if (v >= 0) {
			char *src = volume_source(l, (size_t)v);

			fd = open_dir(src);
			free(src);
		} else {
			fd = dup(l->sandbox_fd);
		}
		*rel = hf_xstrdup(rest);
	} else if (path && path[dlen] == '/' && path[dlen + 1]) {
		const char *in = path + dlen + 1;
		char *entry = hf_xasprintf("%s/%.*s", t->dir,
					   (int)strcspn(in, "/"), in);

		/* Beside the sandbox: shown to the task read-only. */
		if (!hf_strlist_has(&l->visible, entry))
			hf_strlist_push(&l->visible, entry);
		free(entry);
		fd = open_dir(t->dir);
		*rel = hf_xstrdup(in);
	} else {
		*err = hf_xasprintf("config %s: cannot be written: %s", dest,
				    why ? why
					: "it leaves the task's directory");
		goto out;
	}
	if (fd < 0)
		*err = hf_xasprintf("config %s: %s", dest, strerror(errno));
out:
	if (fd < 0) {
		free(*rel);
		*rel = NULL;
	}
	free(path);
	return fd;
}

static int render_configs(struct launch *l, char **err)
{
	for (size_t i = 0; i < l->order->configs.len; i++) {
		const struct hf_proto_config *c = &l->order->configs.items[i];
		const char *dest = c->dest;
		struct hf_diags diags = {0};
		struct hf_mustache_uses missing = {0};
		char *out = NULL, *rel = NULL;
		int rc = -1, root = -1;

		/* A bad dest or template: only a new spec can fix it. */
		l->permanent = true;
		root = config_root(l, dest, &rel, err);
		if (root < 0)
			goto next;
		if (hf_mustache_render_missing(c->tmpl, c->tmpl_len,
					       &l->env, dest, &out, NULL,
					       &missing, &diags)) {
			*err = hf_xasprintf("config %s: %s", dest,
					    diags.len ? diags.items[0].msg
						      : "cannot render");
			goto next;
		}
		if (missing.len) {
			/* Every one at once: a retry cannot bring them. */
			struct hf_buf b = HF_BUF_INIT;

			hf_buf_addf(&b, "config %s: the task's environment has "
					"no ",
				    dest);
			for (size_t k = 0; k < missing.len; k++)
				hf_buf_addf(&b, "%s%s (line %d)",
					    k ? ", " : "",
					    missing.items[k].name,
					    missing.items[k].line);
			hf_buf_addf(&b, "; give %s with -o TASKCFG_ALL_%s=VALUE "
					"in a service update",
				    missing.len == 1 ? "it" : "each",
				    missing.len == 1 ? missing.items[0].name
						     : "<NAME>");
			*err = hf_buf_detach(&b);
			goto next;
		}
		/*
		 * Below a sandbox or a volume the task may have written
		 * before (a restart): no link it planted is followed.
		 */
		l->permanent = false;
		if (hf_fs_write_beneath(root, rel, out, strlen(out), 0644,
					owner_uid(l), l->gid) < 0) {
			int e = errno;

			*err = hf_xasprintf("config %s: cannot write it: %s%s",
					    dest, strerror(e),
					    e == ELOOP
						    ? " (a symbolic link is on "
						      "the way)"
						    : "");
			goto next;
		}
		rc = 0;
next:
		hf_diags_release(&diags);
		hf_mustache_uses_release(&missing);
		if (root >= 0)
			close(root);
		free(out);
		free(rel);
		if (rc)
			return -1;
	}
	return 0;
}

static int make_bootstrap(struct launch *l, char **err)
{
	int fd = openat(l->sandbox_fd, "bootstrap",
			O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0755);

	if (fd < 0 || fchmod(fd, 0755) < 0) {
		*err = hf_xasprintf("cannot create ./bootstrap: %s",
				    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* A limit for launch.json: a number, "unlimited" (0: none), or null
 * (the request). */
static double limit_value(double v, double request)
{
	if (v == HF_PROTO_LIMIT_NONE)
		return request;
	return v == HF_PROTO_LIMIT_UNLIMITED ? 0 : v;
}

static size_t depth(const char *rel)
{
	size_t n = 1;

	for (; *rel; rel++)
		n += *rel == '/';
	return n;
}

/*
 * The task user's ids for launch.json: looked up here, through every
 * source nsswitch.conf names, since the shim reads only the files
 * (shim.h, ids).
 */
static int user_ids(struct launch *l, struct hf_shim_launch *sl, char **err)
{
	int n = 32;
	gid_t *g = NULL;

	for (;;) {
		int want = n;

		g = hf_xrealloc(g, (size_t)n * sizeof(*g));
		if (getgrouplist(l->user, l->gid, g, &n) >= 0)
			break;
		if (n <= want || n > 65536) {
			*err = hf_xasprintf("cannot list the groups of user %s",
					    l->user);
			free(g);
			return -1;
		}
	}
	sl->has_ids = true;
	sl->uid = (uint32_t)l->uid;
	sl->gid = (uint32_t)l->gid;
	for (int i = 0; i < n; i++)
		*HF_VEC_PUSH(&sl->groups) = (uint32_t)g[i];
	free(g);
	return 0;
}

/* What the task may see and do, for launch.json (shim.h, ISOLATION). */
static int isolation(struct launch *l, struct hf_shim_launch *sl, char **err)
{
	struct hf_agent *ag = l->ag;
	const struct hf_strlist *caps = &l->order->capabilities;
	size_t i;

	sl->privileged = l->order->privileged;
	for (i = 0; i < caps->len; i++) {
		int cap = hf_cap_by_name(caps->items[i]);

		if (cap < 0) {
			*err = hf_xasprintf("capabilities[%zu]: unknown "
					    "capability %s", i, caps->items[i]);
			l->permanent = true;
			return -1;
		}
		sl->caps |= HF_CAP_BIT(cap);
	}
	sl->isolate = ag->isolate;
	if (!sl->isolate)
		return 0;
	for (i = 0; i < ag->hide.len; i++)
		hf_strlist_push(&sl->hide, ag->hide.items[i]);
	for (i = 0; i < l->visible.len; i++)
		hf_strlist_push(&sl->visible, l->visible.items[i]);
	/* Outer volumes first: one may be mounted inside another. */
	for (size_t d = 1; sl->mounts.len < l->volume_keys.len; d++)
		for (i = 0; i < l->volume_keys.len; i++) {
			struct hf_shim_mount *m;

			if (depth(l->volume_paths.items[i]) != d)
				continue;
			m = HF_VEC_PUSH(&sl->mounts);
			memset(m, 0, sizeof(*m));
			if (is_external(l, i)) {
				m->target = hf_xstrdup(l->volume_paths.items[i]);
				if (external_mount(l, i, m, err))
					return -1;
				continue;
			}
			if (is_image(l, i)) {
				m->source = image_path(l, i);
				m->fstype = hf_xstrdup("ext4");
			} else {
				m->source = volume_source(l, i);
			}
			m->target = hf_xstrdup(l->volume_paths.items[i]);
		}
	return 0;
}

static double at_most(double v, double max)
{
	return v > max ? max : v;
}

static int write_launch(struct launch *l, char **err)
{
	struct hf_agent *ag = l->ag;
	const struct hf_proto_launch *o = l->order;
	struct hf_shim_launch sl;
	char *msg = NULL;
	int rc = -1;

	hf_shim_launch_init(&sl);
	sl.task_id = hf_xstrdup(l->t->id);
	/*
	 * A paused task is launched for debugging: it sleeps in its sandbox
	 * instead of running, and its readiness check never passes.
	 */
	sl.cmd = hf_xstrdup(l->t->paused
				    ? "exec sleep 2147483647"
				    : o->cmd);
	sl.sandbox = hf_xstrdup(l->t->sandbox);
	hf_kvlist_copy(&sl.env, &l->env);
	sl.cpus = limit_value(o->limit_cpus, o->cpus);
	sl.memory_mb =
	    (int64_t)(limit_value(o->limit_memory_mb, o->memory_mb) + 0.5);
	sl.kill_grace_period = l->t->grace;
	sl.log_max_bytes = ag->opts->log_max_bytes;
	sl.log_keep = ag->opts->log_keep;
	sl.user = l->user ? hf_xstrdup(l->user) : NULL;
	if (l->user && l->have_ids && user_ids(l, &sl, err))
		goto out;
	for (size_t i = 0; i < o->rlimits.len; i++) {
		const struct hf_proto_rlimit *pr = &o->rlimits.items[i];
		int res = hf_rlimit_by_name(pr->name);
		struct hf_shim_rlimit *r;

		if (res < 0) {
			*err = hf_xasprintf("rlimits[%zu]: unknown limit %s", i,
					    pr->name);
			l->permanent = true;
			goto out;
		}
		r = HF_VEC_PUSH(&sl.rlimits);
		r->resource = res;
		r->soft = pr->soft;
		r->hard = pr->hard;
	}
	/* The shim would fail the same way on every retry: say it once. */
	if (hf_shim_rlimits_check(&sl, &msg)) {
		*err = msg;
		l->permanent = true;
		goto out;
	}
	if (isolation(l, &sl, err))
		goto out;
	/*
	 * The server's policy of restarts in place; a paused task sleeps and
	 * is the operator's, so it gets none. The shim's limits bound it.
	 */
	if (o->restart.on && !l->t->paused) {
		sl.restart.on = true;
		sl.restart.backoff_base = at_most(o->restart.backoff_base, 86400);
		sl.restart.backoff_max = at_most(o->restart.backoff_max, 86400);
		sl.restart.reset_after =
		    at_most(o->restart.reset_after, 86400 * 365.0);
		sl.restart.max = o->restart.max > INT32_MAX ? INT32_MAX
							    : o->restart.max;
	}
	if (hf_shim_launch_write(l->t->dir, &sl)) {
		*err = hf_xasprintf("cannot write launch.json: %s",
				    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	hf_shim_launch_release(&sl);
	return rc;
}

static int write_order(struct launch *l, char **err)
{
	char *path = hf_xasprintf("%s/%s", l->t->dir, AG_ORDER_FILE);
	json_t *o = hf_proto_launch_encode(l->order);
	char *text = json_dumps(o, JSON_COMPACT);
	int rc = 0;

	json_decref(o);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	/*
	 * 0600: the order's environment may hold secrets. Not fsync'd: after
	 * a power loss the task is gone anyway, and an order that did not
	 * reach the disk reads as none (the task is reported lost).
	 */
	if (hf_write_file_replace(path, text, strlen(text), 0600, 0)) {
		*err = hf_xasprintf("cannot write %s: %s", path,
				    strerror(errno));
		rc = -1;
	}
	free(text);
	free(path);
	return rc;
}

static int resolve_user(struct launch *l, char **err)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!l->user)
		return 0;
	if (getpwnam_r(l->user, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		*err = hf_xasprintf("unknown user %s", l->user);
		return -1;
	}
	l->uid = pw.pw_uid;
	l->gid = pw.pw_gid;
	/* Only root can give files away; others run as themselves. */
	l->have_ids = geteuid() == 0;
	return 0;
}

static int prepare(struct launch *l, char **err)
{
	struct ag_task *t = l->t;
	mode_t dmode;

	if (resolve_user(l, err))
		return -1;
	/*
	 * Without namespaces a task run as another user passes through the
	 * agent's directories to its sandbox and volumes (it cannot list
	 * them); with them, it sees none of them.
	 */
	dmode = !l->ag->isolate && l->have_ids && l->uid ? 0711 : 0750;
	if (dmode == 0711 && (chmod(l->ag->data, 0711) < 0 ||
			      chmod(l->ag->tasks_dir, 0711) < 0 ||
			      chmod(l->ag->volumes_dir, 0711) < 0))
		hf_log("task %s: cannot open the agent's directories to user "
		       "%s: %s", t->id, l->user, strerror(errno));
	if (hf_fs_mkdir_p(t->dir, dmode, dmode) < 0 ||
	    hf_fs_mkdir_p(t->sandbox, 0755, 0755) < 0) {
		*err = hf_xasprintf("cannot create the sandbox: %s",
				    strerror(errno));
		return -1;
	}
	if (l->have_ids && lchown(t->sandbox, l->uid, l->gid) < 0) {
		*err = hf_xasprintf("cannot give the sandbox to user %s: %s",
				    l->user, strerror(errno));
		return -1;
	}
	l->sandbox_fd = open_dir(t->sandbox);
	if (l->sandbox_fd < 0) {
		*err = hf_xasprintf("cannot open the sandbox: %s",
				    strerror(errno));
		return -1;
	}
	if (write_order(l, err))
		return -1;
	if (prepare_volumes(l, err) ||
	    render_configs(l, err) ||
	    make_bootstrap(l, err))
		return -1;
	if (ag_fetch_uris(l->ag, t, &l->order->uris, owner_uid(l), l->gid,
			  err))
		return -1;
	return write_launch(l, err);
}

/*
 * Records a launch that failed before a shim ran as a final status.json,
 * so a restarted agent reports "failed-to-start" with the reason rather
 * than "lost". Only when no shim has claimed the directory.
 */
static void write_failed_status(struct ag_task *t, const char *msg)
{
	char *path = hf_xasprintf("%s/status.json", t->dir), *text;
	struct hf_shim_status st;

	if (hf_fs_mkdir_p(t->dir, 0750, 0750) < 0 || access(path, F_OK) == 0 ||
	    ag_shim_alive(t->dir)) {
		free(path);
		return;
	}
	hf_shim_status_init(&st);
	st.state = HF_TS_FAILED_TO_START;
	st.task_id = hf_xstrdup(t->id);
	st.finished_at = hf_now_ms();
	st.message = hf_xstrdup(msg);
	text = hf_shim_status_format(&st);
	if (hf_write_file_atomic(path, text, strlen(text), 0644))
		hf_log("task %s: cannot write %s: %s", t->id, path,
		       strerror(errno));
	free(text);
	free(path);
	hf_shim_status_release(&st);
}

static void job_launch(struct hf_agent *ag, struct ag_task *t)
{
	struct launch l = {.ag = ag, .t = t, .sandbox_fd = -1};
	struct hf_shim_status st;
	char *err = NULL;
	pid_t shim_pid = 0;
	int rc;

	pthread_mutex_lock(&ag->mu);
	if (t->stop != AG_STOP_NONE) {
		/* Nothing was created: the id stays recorded, never run. */
		ag_task_end(ag, t, HF_TEV_STOPPED,
			    "removed from the desired set before it started");
		pthread_mutex_unlock(&ag->mu);
		return;
	}
	if (t->order_error || !t->order) {
		err = hf_xasprintf("invalid launch order: %s",
				   t->order_error ? t->order_error
						  : "the agent has none");
		l.permanent = true;
		pthread_mutex_unlock(&ag->mu);
		goto failed;
	}
	l.order = t->order;
	hf_kvlist_copy(&l.env, &t->env);
	for (size_t i = 0; i < t->volume_keys.len; i++) {
		hf_strlist_push(&l.volume_keys, t->volume_keys.items[i]);
		hf_strlist_push(&l.volume_paths, t->volume_paths.items[i]);
	}
	l.user = t->user ? hf_xstrdup(t->user) : NULL;
	pthread_mutex_unlock(&ag->mu);

	if (prepare(&l, &err))
		goto failed;

	pthread_mutex_lock(&ag->mu);
	if (t->stop != AG_STOP_NONE) {
		pthread_mutex_unlock(&ag->mu);
		ag_unbind_volumes(t);
		write_failed_status(t, "removed from the desired set before "
				       "it started");
		pthread_mutex_lock(&ag->mu);
		ag_task_end(ag, t, HF_TEV_STOPPED,
			    "removed from the desired set before it started");
		pthread_mutex_unlock(&ag->mu);
		goto out;
	}
	pthread_mutex_unlock(&ag->mu);

	/*
	 * If the agent dies from here on, the restarted one finds the task
	 * directory: with a live shim (reattach), a final status, or
	 * neither (lost) - never a second launch of this id.
	 */
	rc = hf_shim_spawn(t->dir, ag->shim_bin, &shim_pid);
	hf_shim_status_init(&st);
	pthread_mutex_lock(&ag->mu);
	if (shim_pid > 0)
		ag_child_add(ag, shim_pid);
	if (rc == 0 || rc == HF_EEXISTS) {
		if (hf_shim_status_read(t->dir, &st) == 0)
			ag_task_apply_status(ag, t, &st);
		ag_task_shim_up(t);
		t->need_watch = !hf_task_state_final(t->state);
		if (t->need_watch)
			ag_attend(ag, t);
	} else if (rc == HF_EUNAVAIL) {
		hf_log("task %s: the shim is slow to start; watching it",
		       t->id);
		ag_task_shim_up(t);
		t->need_watch = true;
		ag_attend(ag, t);
	} else if (hf_shim_status_read(t->dir, &st) == 0) {
		/* The shim refused launch.json and said why. */
		ag_task_apply_status(ag, t, &st);
	} else {
		pthread_mutex_unlock(&ag->mu);
		err = hf_xstrdup("the shim could not be started (see the "
				 "agent's log)");
		hf_shim_status_release(&st);
		goto failed;
	}
	pthread_mutex_unlock(&ag->mu);
	hf_shim_status_release(&st);
	ag_wake(ag);
	goto out;

failed:
	ag_unbind_volumes(t);
	write_failed_status(t, err);
	pthread_mutex_lock(&ag->mu);
	t->permanent = l.permanent;
	ag_task_end(ag, t, HF_TEV_FAILED_TO_START, err);
	pthread_mutex_unlock(&ag->mu);
out:
	free(err);
	launch_release(&l);
}

/* ---- volumes and old task directories ------------------------------- */

static void job_delete_volume(struct hf_agent *ag, const char *key)
{
	char *path = hf_xasprintf("%s/%s", ag->volumes_dir, key);
	int left = ag_unmount_under(path), rc = -1;

	if (left)
		hf_log("not deleting volume %s: %d mount(s) inside remain",
		       key, left);
	else if (ag_rm_rf(path) < 0)
		hf_log("cannot delete volume %s: %s", key, strerror(errno));
	else
		rc = 0;
	if (rc == 0) {
		/* Empty parents (service/pod levels) go too. */
		char *slash;

		while ((slash = strrchr(path, '/')) &&
		       (size_t)(slash - path) > strlen(ag->volumes_dir)) {
			*slash = '\0';
			if (rmdir(path) < 0)
				break;
		}
		hf_log("deleted volume %s", key);
	}
	pthread_mutex_lock(&ag->mu);
	for (size_t i = 0; i < ag->volumes_queued.len; i++)
		if (strcmp(ag->volumes_queued.items[i], key) == 0) {
			free(ag->volumes_queued.items[i]);
			ag->volumes_queued.items[i] =
				ag->volumes_queued.items[--ag->volumes_queued.len];
			break;
		}
	if (rc == 0) {
		hf_strlist_push(&ag->volumes_deleted, key);
		ag_mark_dirty(ag);
	}
	pthread_mutex_unlock(&ag->mu);
	free(path);
}

static void job_remove_dir(struct hf_agent *ag, struct ag_task *t)
{
	int left = ag_unmount_under(t->dir), rc = -1;

	if (left)
		hf_log("task %s: not removing its directory: %d mount(s) "
		       "inside remain", t->id, left);
	else if (ag_rm_rf(t->dir) < 0)
		hf_log("task %s: cannot remove %s: %s", t->id, t->dir,
		       strerror(errno));
	else
		rc = 0;
	pthread_mutex_lock(&ag->mu);
	if (rc == 0) {
		hf_log("task %s: removed its old sandbox", t->id);
		t->removed = true;
		ag->removed_pending++;
	} else {
		/* Try again after another keep period. */
		t->removing = false;
		t->terminal_at = hf_now_ms();
	}
	pthread_mutex_unlock(&ag->mu);
	ag_wake(ag);
}

/* Whether two volume keys name the same volume or one lies below the other. */
static bool keys_overlap(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), n = na < nb ? na : nb;

	return strncmp(a, b, n) == 0 &&
	       (na == nb || (na < nb ? b[n] : a[n]) == '/');
}

/* The volumes a job touches: a launch's, a deletion's key; none else. */
static bool job_overlaps(const struct ag_job *j, const char *key)
{
	if (j->kind == AG_JOB_DELETE_VOLUME)
		return keys_overlap(j->key, key);
	if (j->kind != AG_JOB_LAUNCH)
		return false;
	/* Set with the order, before the job was queued; never changed. */
	for (size_t i = 0; i < j->task->volume_keys.len; i++)
		if (keys_overlap(j->task->volume_keys.items[i], key))
			return true;
	return false;
}

/*
 * Two jobs that touch a common volume run in the order they were queued:
 * a volume deleted after the launch that was to use it (the server only
 * deletes volumes no task uses, and the agent checks, so this is a guard
 * rather than a rule the server relies on), two launches sharing a volume
 * one after the other (each may create it and give it to its user).
 */
static bool job_conflict(const struct ag_job *a, const struct ag_job *b)
{
	if (a->kind == AG_JOB_DELETE_VOLUME)
		return job_overlaps(b, a->key);
	if (a->kind != AG_JOB_LAUNCH)
		return false;
	for (size_t i = 0; i < a->task->volume_keys.len; i++)
		if (job_overlaps(b, a->task->volume_keys.items[i]))
			return true;
	return false;
}

/*
 * The index of the oldest queued job that conflicts with no job running
 * and no job queued before it; -1 when none may start. Lock held.
 */
static ssize_t next_job(struct hf_agent *ag)
{
	for (size_t i = 0; i < ag->jobs.len; i++) {
		const struct ag_job *j = &ag->jobs.items[i];
		bool free_to_go = true;

		for (size_t k = 0; free_to_go && k < ag->running.len; k++)
			free_to_go = !job_conflict(j, &ag->running.items[k]);
		for (size_t k = 0; free_to_go && k < i; k++)
			free_to_go = !job_conflict(j, &ag->jobs.items[k]);
		if (free_to_go)
			return (ssize_t)i;
	}
	return -1;
}

/*
 * A worker keeps a descriptor table of its own, with only what it uses:
 * a spawn copies the caller's whole table into the child and closes it
 * there, and the agent's holds two descriptors per task (a watch socket
 * and a pidfd), so each launch would cost in proportion to the tasks on
 * the node. What a worker opens stays its own and is closed by it; the
 * supervisor opens the shims' pidfds (ag_child_add). Without unshare the
 * worker shares the agent's table, as threads do.
 */
static void own_descriptors(struct hf_agent *ag)
{
	unsigned int keep = (unsigned int)ag->wakefd;

	if (unshare(CLONE_FILES) < 0) {
		hf_log("a launch worker shares the agent's descriptors: "
		       "unshare: %s", strerror(errno));
		return;
	}
	if (keep > 3)
		close_range(3, keep - 1, 0);
	close_range(keep + 1, ~0U, 0);
}

void *ag_worker_thread(void *arg)
{
	struct hf_agent *ag = arg;

	own_descriptors(ag);
	pthread_mutex_lock(&ag->mu);
	for (;;) {
		struct ag_job j;
		ssize_t at = -1;

		while (!ag->stopping && (at = next_job(ag)) < 0)
			pthread_cond_wait(&ag->work_cv, &ag->mu);
		if (ag->stopping)
			break;
		j = ag->jobs.items[at];
		memmove(&ag->jobs.items[at], &ag->jobs.items[at + 1],
			(ag->jobs.len - (size_t)at - 1) * sizeof(j));
		ag->jobs.len--;
		*HF_VEC_PUSH(&ag->running) = j;
		pthread_mutex_unlock(&ag->mu);
		switch (j.kind) {
		case AG_JOB_LAUNCH:
			job_launch(ag, j.task);
			break;
		case AG_JOB_DELETE_VOLUME:
			job_delete_volume(ag, j.key);
			break;
		case AG_JOB_REMOVE_DIR:
			job_remove_dir(ag, j.task);
			break;
		}
		pthread_mutex_lock(&ag->mu);
		for (size_t k = 0; k < ag->running.len; k++)
			if (ag->running.items[k].kind == j.kind &&
			    ag->running.items[k].task == j.task &&
			    ag->running.items[k].key == j.key) {
				ag->running.items[k] =
				    ag->running.items[--ag->running.len];
				break;
			}
		if (j.task)
			j.task->jobs--;
		free(j.key);
		/* A job held back by this one may go now. */
		pthread_cond_broadcast(&ag->work_cv);
		/* The burst is over: its last changes need not wait (sync.c). */
		if (!ag->jobs.len && !ag->running.len) {
			ag->pool_dry_seq++;
			pthread_cond_broadcast(&ag->sync_cv);
		}
	}
	pthread_mutex_unlock(&ag->mu);
	return NULL;
}
