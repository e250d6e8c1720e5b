/*
 * pool.c - the node's storage pool (`holdfast agent --storage
 * DIR[,size=N]`; docs/design/volumes.md §5.1 and §8.2): a directory that
 * will hold the sparse replica files of replicated volumes, and what the
 * agent reports of it with every sync (docs/protocol.md, "storage").
 *
 * Layout:
 *
 *   DIR/pool.json   {"format": 1, "node": ID, "created": unix ms}, written
 *                   atomically when the pool is first used: the pool
 *                   belongs to that node, and another node's agent refuses
 *                   it (a pool on a shared filesystem, a copied --storage)
 *   DIR/lock        flock held while the agent runs: a second agent on the
 *                   same machine refuses the pool while the first holds it
 *   DIR/replicas/<volume id>/<replica id>/{data,meta,bitmaps,al,lock}
 *
 * Thin, never overcommitted: capacity is what the pool could hold (the
 * filesystem's free space plus what the pool's files already take, capped
 * by size=), provisioned the sum of its replicas' sizes (the apparent size
 * of each data file), used the blocks its replica files take.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define POOL_MARKER "pool.json"
#define POOL_FORMAT 1
/* The smallest volume is 64 MiB (ext4 with a journal): a pool holds one. */
#define POOL_MIN_BYTES (64LL << 20)
/* Pools stop at 1 EiB (1048576T), well inside int64_t. */
#define POOL_MAX_BYTES (1LL << 60)
/* Syncs come in bursts during a deploy: the pool is read at most this often. */
#define POOL_STAT_EVERY_MS 1000

/* ---- sizes ------------------------------------------------------------ */

int ag_size_parse(const char *s, int64_t *out)
{
	const char *p = s;
	int shift = 30; /* a bare number is GiB, as volume sizes (§2.1) */
	long double v;
	size_t nint, nfrac = 0;

	/*
	 * The grammar of the volumes' size option (spec/volopts.c): digits,
	 * then a '.' with digits, then M, G or T with "i" and "B" optional.
	 */
	nint = strspn(p, "0123456789");
	p += nint;
	if (*p == '.') {
		nfrac = strspn(p + 1, "0123456789");
		if (!nfrac)
			return HF_EINVAL;
		p += 1 + nfrac;
	}
	if (!nint)
		return HF_EINVAL;
	if (*p) {
		switch (*p | 0x20) {
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		default:
			return HF_EINVAL;
		}
		p++;
		if ((*p | 0x20) == 'i')
			p++;
		if ((*p | 0x20) == 'b')
			p++;
		if (*p)
			return HF_EINVAL;
	}
	v = strtold(s, NULL);
	v = floorl(v * (long double)(1ULL << shift));
	if (!(v >= 0) || v > (long double)POOL_MAX_BYTES)
		return HF_ETOOBIG;
	*out = (int64_t)v;
	return 0;
}

/* ---- the flag --------------------------------------------------------- */

char *ag_pool_flag_parse(const char *flag, const char *val, char **dir,
			 int64_t *size)
{
	const char *comma = strchr(val, ',');
	char *opts, *save = NULL, *item, *err = NULL;
	size_t dlen = comma ? (size_t)(comma - val) : strlen(val);
	int64_t sz = 0;

	if (dlen == 0)
		return hf_xasprintf("%s: \"%s\" names no directory (DIR or "
				    "DIR,size=N)", flag, val);
	if (strspn(val, "/") == dlen)
		return hf_xasprintf("%s: the pool cannot be /: give it a "
				    "directory of its own", flag);
	opts = hf_xstrdup(comma ? comma + 1 : "");
	if (comma && !*opts)
		err = hf_xasprintf("%s: \"%s\" ends with a comma (DIR or "
				   "DIR,size=N)", flag, val);
	for (item = strtok_r(opts, ",", &save); item && !err;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int rc;

		if (!eq || strncmp(item, "size", (size_t)(eq - item)) != 0 ||
		    eq - item != 4) {
			err = hf_xasprintf("%s: unknown option \"%s\" (the "
					   "only one is size=N)", flag, item);
			break;
		}
		if (sz) {
			err = hf_xasprintf("%s: size is given twice", flag);
			break;
		}
		rc = ag_size_parse(eq + 1, &sz);
		if (rc == HF_EINVAL)
			err = hf_xasprintf("%s: size=%s is not a size (a "
					   "number of GiB, or with a unit: "
					   "500M, 10G, 1.5T)", flag, eq + 1);
		else if (rc || sz < POOL_MIN_BYTES)
			err = hf_xasprintf("%s: size=%s is out of range (64M "
					   "to 1048576T)", flag, eq + 1);
	}
	free(opts);
	if (err)
		return err;
	free(*dir);
	*dir = hf_xstrndup(val, dlen);
	*size = sz;
	return NULL;
}

/* ---- opening ------------------------------------------------------------ */

/* a is b or inside it (both canonical). */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/*
 * The pool must not be, or hold, what the agent keeps elsewhere: its data
 * directory, task sandboxes or pod volumes (a task could reach replica
 * files through a volume; sandbox removal could take them).
 */
static int check_place(const struct hf_agent *ag, const char *dir)
{
	static const char *const subs[] = {"volumes", "tasks", "cache"};

	if (strcmp(dir, ag->data) == 0 || path_within(ag->data, dir)) {
		hf_log("--storage: the pool %s holds the agent's data "
		       "directory %s: give the pool a directory of its own",
		       dir, ag->data);
		return HF_EINVAL;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(subs); i++) {
		char *sub = hf_xasprintf("%s/%s", ag->data, subs[i]);
		bool inside = path_within(dir, sub);

		free(sub);
		if (inside) {
			hf_log("--storage: the pool %s is inside the agent's "
			       "%s/%s: give the pool a directory of its own",
			       dir, ag->data, subs[i]);
			return HF_EINVAL;
		}
	}
	return 0;
}

/*
 * DIR/pool.json: the node the pool belongs to. Written when missing; when
 * present it must name this node.
 */
static int claim(const struct hf_agent *ag, const char *dir)
{
	char *path = hf_xasprintf("%s/" POOL_MARKER, dir), *text = NULL;
	json_t *j = NULL;
	const char *node;
	int rc = hf_read_file(path, 64 * 1024, &text, NULL);

	if (rc == HF_ENOTFOUND) {
		char *out;

		j = json_pack("{s:i, s:s, s:I}", "format", POOL_FORMAT, "node",
			      ag->node_id, "created",
			      (json_int_t)hf_now_ms());
		out = json_dumps(j, JSON_SORT_KEYS);
		if (!out)
			abort();
		rc = hf_write_file_atomic(path, out, strlen(out), 0600);
		if (rc)
			hf_log("--storage: cannot write %s: %s", path,
			       strerror(errno));
		else
			hf_log("storage pool %s: made for node %s", dir,
			       ag->node_id);
		free(out);
		goto out;
	}
	if (rc) {
		hf_log("--storage: cannot read %s: %s", path,
		       rc == HF_ETOOBIG ? "too big" : strerror(errno));
		goto out;
	}
	j = json_loads(text, 0, NULL);
	node = json_string_value(json_object_get(j, "node"));
	if (!node) {
		hf_log("--storage: %s is not a holdfast pool marker (it "
		       "should name the node the pool belongs to): is %s "
		       "another program's directory?",
		       path, dir);
		rc = HF_EINVAL;
		goto out;
	}
	if (strcmp(node, ag->node_id) != 0) {
		hf_log("--storage: the pool %s belongs to node %s (%s), not to "
		       "this node %s: give each node a pool of its own (if "
		       "node %s is gone for good, remove its pool.json to "
		       "reuse the directory)",
		       dir, node, path, ag->node_id, node);
		rc = HF_EINVAL;
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	free(text);
	free(path);
	return rc;
}

/*
 * The canonical form dir will have once created: its nearest existing
 * ancestor resolved, the rest appended. NULL when nothing resolves.
 */
static char *canonical_to_be(const char *dir)
{
	char *p = hf_xstrdup(dir), *real = NULL, *out = NULL;
	size_t len = strlen(p);

	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	for (;;) {
		char *slash;

		real = realpath(*p ? p : "/", NULL);
		if (real || errno != ENOENT)
			break;
		slash = strrchr(p, '/');
		if (!slash) {
			real = realpath(".", NULL);
			*p = '\0';
			break;
		}
		*slash = '\0';
		if (slash == p) {
			real = realpath("/", NULL);
			break;
		}
	}
	if (real) {
		const char *rest = dir + strlen(p);

		while (*rest == '/')
			rest++;
		out = *rest ? hf_xasprintf("%s%s%s", real,
					   strcmp(real, "/") ? "/" : "", rest)
			    : hf_xstrdup(real);
		/* A trailing '/' of dir would stay: drop it. */
		len = strlen(out);
		while (len > 1 && out[len - 1] == '/')
			out[--len] = '\0';
	}
	free(real);
	free(p);
	return out;
}

int ag_pool_open(struct hf_agent *ag)
{
	const struct hf_agent_opts *o = ag->opts;
	struct ag_pool *p = &ag->pool;
	char *lock = NULL, *replicas = NULL;
	long holder = 0;
	int rc;

	p->lock_fd = -1;
	if (!o->storage_dir)
		return 0;
	/* Checked before anything is made, and again once it exists. */
	{
		char *to_be = canonical_to_be(o->storage_dir);

		rc = to_be ? check_place(ag, to_be) : 0;
		free(to_be);
		if (rc)
			return rc;
	}
	if (hf_fs_mkdir_p(o->storage_dir, 0750, 0700) < 0) {
		hf_log("--storage: cannot create %s: %s", o->storage_dir,
		       strerror(errno));
		return HF_EIO;
	}
	p->dir = realpath(o->storage_dir, NULL);
	if (!p->dir) {
		hf_log("--storage: %s: %s", o->storage_dir, strerror(errno));
		return HF_EIO;
	}
	p->size = o->storage_size;
	rc = check_place(ag, p->dir);
	if (rc)
		return rc;
	lock = hf_xasprintf("%s/lock", p->dir);
	rc = hf_lock_file(lock, &p->lock_fd, &holder);
	if (rc == HF_EUNAVAIL)
		hf_log("--storage: the pool %s is in use by another holdfast "
		       "agent%s%.0ld%s: give each agent a pool of its own",
		       p->dir, holder ? " (pid " : "", holder,
		       holder ? ")" : "");
	else if (rc)
		hf_log("--storage: cannot lock %s: %s", lock, strerror(errno));
	if (rc)
		goto out;
	rc = claim(ag, p->dir);
	if (rc)
		goto out;
	replicas = hf_xasprintf("%s/replicas", p->dir);
	if (hf_fs_mkdir_p(replicas, 0700, 0700) < 0) {
		hf_log("--storage: cannot create %s: %s", replicas,
		       strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	ag->info.has_storage = true;
	ag->info.storage.pool = hf_xstrdup(p->dir);
	rc = ag_pool_stat(p->dir, p->size, &ag->info.storage);
	if (rc)
		goto out;
	{
		char *cap = hf_bytes_human(ag->info.storage.capacity);
		char *prov = hf_bytes_human(ag->info.storage.provisioned);
		char *used = hf_bytes_human(ag->info.storage.used);

		hf_log("storage pool %s: capacity %s (%s), provisioned %s, "
		       "used %s",
		       p->dir, cap,
		       p->size ? "its size=" : "the filesystem's free space",
		       prov, used);
		free(cap);
		free(prov);
		free(used);
	}
out:
	free(lock);
	free(replicas);
	return rc;
}

void ag_pool_close(struct ag_pool *p)
{
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	free(p->dir);
	memset(p, 0, sizeof(*p));
	p->lock_fd = -1;
}

/* ---- what it holds ------------------------------------------------------ */

/*
 * Adds up the files of DIR/replicas/<volume>/<replica>/: blocks of all,
 * apparent size of each data file. Links are not followed; what is not a
 * directory or a regular file where one is expected is skipped.
 */
static void add_replica(int vfd, const char *name, int64_t *prov,
			int64_t *used)
{
	int fd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				       O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		*used += (int64_t)st.st_blocks * 512;
		if (strcmp(e->d_name, "data") == 0)
			*prov += (int64_t)st.st_size;
	}
	closedir(d);
}

static void add_volumes(const char *dir, int64_t *prov, int64_t *used)
{
	char *path = hf_xasprintf("%s/replicas", dir);
	DIR *d = opendir(path);
	struct dirent *e;

	free(path);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		int vfd;
		DIR *vd;
		struct dirent *r;

		if (e->d_name[0] == '.')
			continue;
		vfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY |
							  O_NOFOLLOW | O_CLOEXEC);
		vd = vfd >= 0 ? fdopendir(vfd) : NULL;
		if (!vd) {
			if (vfd >= 0)
				close(vfd);
			continue;
		}
		while ((r = readdir(vd)) != NULL)
			if (r->d_name[0] != '.')
				add_replica(dirfd(vd), r->d_name, prov, used);
		closedir(vd);
	}
	closedir(d);
}

int ag_pool_stat(const char *dir, int64_t size, struct hf_proto_storage *out)
{
	struct statvfs vfs;
	int64_t prov = 0, used = 0, avail;

	if (statvfs(dir, &vfs) < 0)
		return HF_EIO;
	avail = (int64_t)((unsigned long long)vfs.f_bavail * vfs.f_frsize);
	add_volumes(dir, &prov, &used);
	out->free = avail;
	out->provisioned = prov;
	out->used = used;
	/* What it takes already is room it has: writes do not shrink it. */
	out->capacity = avail + used;
	if (size > 0 && size < out->capacity)
		out->capacity = size;
	return 0;
}

void ag_pool_refresh(struct hf_agent *ag)
{
	struct hf_proto_storage st = {0};
	int64_t now = hf_mono_ms();
	int rc;

	if (!ag->pool.dir ||
	    (ag->pool_stat_at && now - ag->pool_stat_at < POOL_STAT_EVERY_MS))
		return;
	ag->pool_stat_at = now;
	/* pool.dir and pool.size do not change after start. */
	pthread_mutex_unlock(&ag->mu);
	rc = ag_pool_stat(ag->pool.dir, ag->pool.size, &st);
	if (rc && !ag->pool_stat_failed)
		hf_log("storage pool %s: %s (its last figures are reported "
		       "until it can be read again)",
		       ag->pool.dir, strerror(errno));
	pthread_mutex_lock(&ag->mu);
	if (rc) {
		ag->pool_stat_failed = true;
		return;
	}
	if (ag->pool_stat_failed)
		hf_log("storage pool %s: readable again", ag->pool.dir);
	ag->pool_stat_failed = false;
	ag->info.storage.capacity = st.capacity;
	ag->info.storage.provisioned = st.provisioned;
	ag->info.storage.used = st.used;
	ag->info.storage.free = st.free;
}
