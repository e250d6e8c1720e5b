/*
 * confine.c - a task's mount namespace, capabilities, user and
 * no_new_privs; see confine.h and shim.h (ISOLATION).
 *
 * The namespace is built with the new mount API: every bind is first
 * cloned as a detached tree (open_tree), so a source is opened before any
 * directory is covered, and attached by descriptor (move_mount), so a
 * target, once opened without following links, cannot be swapped for a
 * link before the mount lands on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/fs.h"
#include "common/spawn.h"
#include "common/sys.h"
#include "common/util.h"
#include "shim/confine.h"

struct bind {
	char *source;       /* absolute */
	char *target;       /* absolute, or relative to the sandbox (volumes) */
	char *what;         /* the step, for a failure */
	bool dir;
	bool optional;      /* a source that does not exist is skipped */
	char *loop_hint;    /* an image (source): its "<source>.loop" file */
	char *expect;       /* a device (source): the identity it must have */
	bool ro;
	int fd;             /* the detached clone, in the child */
};

struct hf_confine_ns {
	char *sandbox;
	struct hf_strlist hide;  /* outermost first; none inside another */
	HF_VEC(struct bind) visible;
	HF_VEC(struct bind) volumes;
	HF_VEC(struct bind) devs;
	bool contain;            /* private /dev; /sys, /proc/sys read-only */
	bool nosuid;             /* sandbox and volumes nosuid, nodev */
	uid_t uid;
	gid_t gid;
	bool *hidden;            /* per hide entry: covered (it existed) */
};

/* Devices a contained task gets, bound from the node's /dev. */
static const char *const dev_nodes[] = {"null", "zero",	   "full",
					"random", "urandom", "tty"};
static const char *const dev_links[][2] = {
	{"fd", "/proc/self/fd"},	  {"stdin", "/proc/self/fd/0"},
	{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
	{"ptmx", "pts/ptmx"},
};

/* ---- before fork ------------------------------------------------------ */

static void bind_release(struct bind *b)
{
	free(b->source);
	free(b->target);
	free(b->what);
	free(b->loop_hint);
	free(b->expect);
}

static void ns_free(struct hf_confine_ns *ns)
{
	if (!ns)
		return;
	free(ns->sandbox);
	hf_strlist_release(&ns->hide);
	for (size_t i = 0; i < ns->visible.len; i++)
		bind_release(&ns->visible.items[i]);
	for (size_t i = 0; i < ns->volumes.len; i++)
		bind_release(&ns->volumes.items[i]);
	for (size_t i = 0; i < ns->devs.len; i++)
		bind_release(&ns->devs.items[i]);
	HF_VEC_FREE(&ns->visible);
	HF_VEC_FREE(&ns->volumes);
	HF_VEC_FREE(&ns->devs);
	free(ns->hidden);
	free(ns);
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || !path[n]);
}

static int by_length(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? -1 : la > lb ? 1 : strcmp(*(char *const *)a,
						   *(char *const *)b);
}

/* Whether uid (with gids) may search directory st, by its mode bits. */
static bool can_search(const struct stat *st, uid_t uid,
		       const struct hf_confine *c)
{
	if (st->st_uid == uid)
		return st->st_mode & S_IXUSR;
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == st->st_gid)
			return st->st_mode & S_IXGRP;
	if (st->st_gid == (c->switch_user ? c->gid : getegid()))
		return st->st_mode & S_IXGRP;
	return st->st_mode & S_IXOTH;
}

/*
 * The outermost directory above the sandbox that a non-root task user may
 * not search (a 0700 home or a private temporary directory holding the
 * agent's data), or NULL. The user could never see anything under it, so
 * the task's namespace covers it like holdfast's own files and rebuilds
 * the path to the sandbox inside the cover: the sandbox works wherever the
 * agent's data directory is. The caller frees the result.
 */
static char *closed_ancestor(const char *sandbox, uid_t uid,
			     const struct hf_confine *c)
{
	char *path = hf_xstrdup(sandbox);

	for (char *p = path + 1; *p; p++) {
		struct stat st;

		if (*p != '/')
			continue;
		*p = '\0';
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    !can_search(&st, uid, c))
			return path;
		*p = '/';
	}
	free(path);
	return NULL;
}

static struct hf_confine_ns *ns_prepare(const struct hf_shim_launch *l,
					const struct hf_confine *c, char **err)
{
	struct hf_confine_ns *ns = hf_xcalloc(1, sizeof(*ns));
	struct hf_strlist sorted = {0};
	char *closed;

	ns->sandbox = hf_xstrdup(l->sandbox);
	ns->contain = !l->privileged;
	ns->nosuid = !l->privileged;
	ns->uid = c->switch_user ? c->uid : geteuid();
	ns->gid = c->switch_user ? c->gid : getegid();
	/* A directory inside another hidden one is hidden with it. */
	for (size_t i = 0; i < l->hide.len; i++)
		hf_strlist_push(&sorted, l->hide.items[i]);
	closed = ns->uid != 0 ? closed_ancestor(l->sandbox, ns->uid, c) : NULL;
	if (closed)
		hf_strlist_push(&sorted, closed);
	free(closed);
	if (sorted.len)
		qsort(sorted.items, sorted.len, sizeof(*sorted.items),
		      by_length);
	for (size_t i = 0; i < sorted.len; i++) {
		bool inner = false;

		for (size_t k = 0; k < ns->hide.len && !inner; k++)
			inner = under(sorted.items[i], ns->hide.items[k]);
		if (!inner)
			hf_strlist_push(&ns->hide, sorted.items[i]);
	}
	hf_strlist_release(&sorted);
	ns->hidden = hf_xcalloc(ns->hide.len + 1, sizeof(*ns->hidden));
	for (size_t i = 0; i < l->visible.len; i++) {
		struct bind *b = HF_VEC_PUSH(&ns->visible);
		struct stat st;

		b->fd = -1;
		b->source = hf_xstrdup(l->visible.items[i]);
		b->target = hf_xstrdup(l->visible.items[i]);
		b->what = hf_xasprintf("keep %s visible to the task",
				       b->source);
		if (lstat(b->source, &st) < 0 ||
		    !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
			*err = hf_xasprintf("%s: not a file or directory the "
					    "task can be shown", b->source);
			ns_free(ns);
			return NULL;
		}
		b->dir = S_ISDIR(st.st_mode);
	}
	for (size_t i = 0; i < l->mounts.len; i++) {
		struct bind *b = HF_VEC_PUSH(&ns->volumes);

		b->fd = -1;
		b->dir = true;
		b->source = hf_xstrdup(l->mounts.items[i].device
					       ? l->mounts.items[i].device
					       : l->mounts.items[i].source);
		b->target = hf_xstrdup(l->mounts.items[i].target);
		b->what = hf_xasprintf("mount the volume at %s (a symbolic "
				       "link there is refused)", b->target);
		if (l->mounts.items[i].device) {
			free(b->what);
			b->what = hf_xasprintf("mount the volume device %s (%s) "
					       "at %s", b->source,
					       l->mounts.items[i].expect,
					       b->target);
			b->expect = hf_xstrdup(l->mounts.items[i].expect);
			b->ro = l->mounts.items[i].ro;
		} else if (l->mounts.items[i].fstype) {
			free(b->what);
			b->what = hf_xasprintf("mount the volume image %s at "
					       "%s", b->source, b->target);
			b->loop_hint = hf_xasprintf("%s.loop", b->source);
		}
	}
	for (size_t i = 0; ns->contain && i < HF_ARRAY_LEN(dev_nodes); i++) {
		struct bind *b = HF_VEC_PUSH(&ns->devs);

		b->fd = -1;
		b->optional = true;
		b->source = hf_xasprintf("/dev/%s", dev_nodes[i]);
		b->target = hf_xstrdup(b->source);
		b->what = hf_xasprintf("give the task %s", b->source);
	}
	return ns;
}

/*
 * Who the task runs as: the ids launch.json carries (the agent looked them
 * up through every NSS source), else l->user looked up here, in the files
 * musl reads. When root, sets c to switch to them.
 */
static int task_user(struct hf_confine *c, const struct hf_shim_launch *l,
		     bool root, bool *task_root, char **err)
{
	/* Reentrant: the agent's threads may look users up at once. */
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	bool has_gid = false;
	uid_t uid;
	gid_t gid;
	int n = 0;

	if (l->has_ids) {
		uid = l->uid;
		gid = l->gid;
	} else {
		int e = getpwnam_r(l->user, &pwbuf, buf, sizeof(buf), &pw);

		if (!pw) {
			if (e && e != ENOENT && e != ESRCH)
				*err = hf_xasprintf("cannot look up user "
						    "\"%s\": %s", l->user,
						    strerror(e));
			else
				*err = hf_xasprintf("unknown user \"%s\"",
						    l->user);
			return -1;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (!root && uid != geteuid()) {
		*err = hf_xasprintf("cannot run the task as user \"%s\": "
				    "holdfast does not run as root here",
				    l->user);
		return -1;
	}
	*task_root = uid == 0;
	if (!root)
		return 0;
	c->switch_user = true;
	c->uid = uid;
	c->gid = gid;
	if (l->has_ids) {
		/* The user's groups, its primary group among them. */
		c->groups = hf_xcalloc(l->groups.len + 1, sizeof(gid_t));
		for (size_t i = 0; i < l->groups.len; i++) {
			c->groups[c->ngroups++] = l->groups.items[i];
			has_gid |= l->groups.items[i] == gid;
		}
		if (!has_gid)
			c->groups[c->ngroups++] = gid;
		return 0;
	}
	getgrouplist(l->user, gid, NULL, &n);
	c->groups = hf_xcalloc((size_t)n + 1, sizeof(gid_t));
	c->ngroups = n + 1;
	if (getgrouplist(l->user, gid, c->groups, &c->ngroups) < 0) {
		*err = hf_xasprintf("cannot list the groups of user \"%s\"",
				    l->user);
		return -1;
	}
	return 0;
}

int hf_confine_prepare(struct hf_confine *c, const struct hf_shim_launch *l,
		       bool build, char **err)
{
	bool root = geteuid() == 0, task_root = root;

	memset(c, 0, sizeof(*c));
	c->join_fd = -1;
	*err = NULL;
	if (l->user && task_user(c, l, root, &task_root, err))
		return -1;
	c->no_new_privs = !l->privileged;
	/* Only a root process holds capabilities to give up. */
	if (root && !l->privileged) {
		c->limit_caps = true;
		c->keep = l->caps | (task_root ? hf_cap_default_set() : 0);
		c->ambient = !task_root && l->caps;
	}
	c->cwd = hf_xstrdup(l->sandbox);
	c->cwd_what = hf_xasprintf("enter the sandbox %s", l->sandbox);
	if (!build && l->rlimits.len) {
		c->nrlimits = l->rlimits.len;
		c->rlimits = hf_xcalloc(c->nrlimits, sizeof(*c->rlimits));
		memcpy(c->rlimits, l->rlimits.items,
		       c->nrlimits * sizeof(*c->rlimits));
	}
	if (build && l->isolate) {
		if (!root) {
			*err = hf_xstrdup("a mount namespace of the task's own "
					  "needs a root shim");
			return -1;
		}
		c->build = ns_prepare(l, c, err);
		if (!c->build)
			return -1;
	}
	return 0;
}

int hf_confine_join(struct hf_confine *c, pid_t pid, uint64_t mnt_ns,
		    char **err)
{
	char path[64];
	struct stat st;
	int fd;

	*err = NULL;
	if (!mnt_ns)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	/*
	 * The descriptor pins the namespace it names. If the task's pid was
	 * reused since the shim recorded it, that is another namespace.
	 */
	if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_ino != mnt_ns) {
		if (fd >= 0)
			close(fd);
		*err = hf_xstrdup("the task is not running");
		return -1;
	}
	if (c->join_fd >= 0)
		close(c->join_fd);
	c->join_fd = fd;
	return 0;
}

void hf_confine_release(struct hf_confine *c)
{
	free(c->groups);
	if (c->join_fd >= 0)
		close(c->join_fd);
	ns_free(c->build);
	free(c->cwd);
	free(c->cwd_what);
	free(c->rlimits);
	memset(c, 0, sizeof(*c));
	c->join_fd = -1;
}

/* ---- in the child: system calls only ---------------------------------- */

static int fail(const char **what, const char *step)
{
	int e = errno;

	*what = step;
	return e ? e : EIO;
}

static int set_attr(int fd, uint64_t set)
{
	struct mount_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = set;
	return hf_sys_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
				    &attr, sizeof(attr));
}

/* path itself as an empty file or dir, its parent being there. */
static int make_one(const char *path, bool dir)
{
	int fd;

	if (dir)
		return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
	/* A new file without opening one (the common case: /dev's). */
	if (mknod(path, S_IFREG | 0444, 0) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	/* There already: a file will do; a link or a directory will not. */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * The parent directories of path, and path itself as an empty file or
 * dir. The parents are made only when path cannot be: in a fresh /dev,
 * or a sandbox that has them, that is one system call.
 */
static int placeholder(const char *path, bool dir)
{
	char buf[PATH_MAX];
	char *slash;
	size_t n = strlen(path);

	if (make_one(path, dir) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	slash = strrchr(buf, '/');
	if (slash && slash != buf) {
		*slash = '\0';
		if (hf_fs_mkdir_p(buf, 0755, 0755) < 0)
			return -1;
	}
	return make_one(path, dir);
}

static int clone_tree(struct bind *b, uint64_t attrs)
{
	b->fd = hf_sys_open_tree(AT_FDCWD, b->source,
				 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
					 AT_SYMLINK_NOFOLLOW | AT_RECURSIVE);
	if (b->fd < 0)
		return b->optional && errno == ENOENT ? 0 : -1;
	if (attrs && set_attr(b->fd, attrs) < 0)
		return -1;
	return 0;
}

/* "/dev/loop<n>" into buf (size 32), without the C library's stdio. */
static void loop_path(char *buf, unsigned n)
{
	char digits[12];
	size_t k = 0, at = 9;

	memcpy(buf, "/dev/loop", 9);
	do
		digits[k++] = (char)('0' + n % 10);
	while ((n /= 10) && k < sizeof(digits));
	while (k)
		buf[at++] = digits[--k];
	buf[at] = '\0';
}

/*
 * The loop device the image's hint names, open, if it still serves this
 * very file (a hint outlives its device, and a device number is reused);
 * else -1.
 */
static int known_loop(const struct bind *b, const struct stat *img,
		      char *dev)
{
	struct loop_info64 info;
	char text[16];
	unsigned n = 0;
	ssize_t len;
	int fd = open(b->loop_hint, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	for (ssize_t i = 0; i < len && text[i] != '\n'; i++) {
		if (text[i] < '0' || text[i] > '9' || n > 1000000)
			return -1;
		n = n * 10 + (unsigned)(text[i] - '0');
	}
	loop_path(dev, n);
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0 ||
	    info.lo_inode != (uint64_t)img->st_ino ||
	    info.lo_device != (uint64_t)img->st_dev) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A free loop device configured over the image, recorded in its hint. */
static int new_loop(const struct bind *b, int img, char *dev)
{
	struct loop_config cfg;
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	int fd = -1, e = EBUSY;

	if (ctl < 0)
		return -1;
	/* Another process may take the free device first: try the next. */
	for (int tries = 0; tries < 16 && e == EBUSY; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0) {
			e = errno;
			break;
		}
		loop_path(dev, (unsigned)n);
		fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			e = errno;
			break;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)img;
		cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
		memcpy(cfg.info.lo_file_name, "holdfast volume image", 22);
		if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
			e = 0;
			break;
		}
		e = errno;
		close(fd);
		fd = -1;
	}
	close(ctl);
	if (fd < 0) {
		errno = e;
		return -1;
	}
	{
		/* Only a hint: a torn or stale one is checked and ignored. */
		int h = open(b->loop_hint,
			     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				     O_NOFOLLOW,
			     0600);

		if (h >= 0) {
			ssize_t w = write(h, dev + 9, strlen(dev + 9));

			(void)w;
			close(h);
		}
	}
	return fd;
}

/*
 * An image volume (shim.h, VOLUME IMAGES) as a detached mount in b->fd:
 * its file system from the loop device that serves the image, or from a
 * new one. The image's flock makes looking up and configuring one step
 * for every task of the pod.
 */
static int mount_image(struct bind *b, uint64_t attrs)
{
	char dev[32];
	struct stat st;
	int lock, img = -1, loop = -1, fs = -1, rc = -1, e;

	/*
	 * The lock is taken on a descriptor of its own: the loop device
	 * keeps the open file it serves, and a lock on that one would be
	 * held for as long as the device lives.
	 */
	lock = open(b->source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (lock < 0)
		return -1;
	if (flock(lock, LOCK_EX) < 0)
		goto out;
	img = open(b->source, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (img < 0 || fstat(img, &st) < 0)
		goto out;
	loop = known_loop(b, &st, dev);
	if (loop < 0)
		loop = new_loop(b, img, dev);
	if (loop < 0)
		goto out;
	fs = hf_sys_fsopen("ext4", FSOPEN_CLOEXEC);
	if (fs < 0 ||
	    hf_sys_fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
	    hf_sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto out;
	/* The superblock holds the device from here: ours can close. */
	b->fd = hf_sys_fsmount(fs, FSMOUNT_CLOEXEC,
			       (unsigned)attrs | MOUNT_ATTR_NOATIME);
	rc = b->fd < 0 ? -1 : 0;
out:
	e = errno;
	if (fs >= 0)
		close(fs);
	if (loop >= 0)
		close(loop);
	if (img >= 0)
		close(img);
	close(lock);
	errno = e;
	return rc;
}

/*
 * An attached volume's device (shim.h, VOLUME DEVICES) as a detached
 * mount in b->fd, if it carries the identity expected; a device that
 * serves something else fails with ESTALE.
 */
static int mount_device(struct bind *b, uint64_t attrs)
{
	struct loop_info64 info;
	char magic[4];
	int dev, fs = -1, rc = -1, e;
	bool xfs;

	dev = open(b->source, (b->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dev < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (ioctl(dev, LOOP_GET_STATUS64, &info) < 0) {
		if (errno == ENXIO)
			errno = ESTALE; /* not configured: nothing attached */
		goto out;
	}
	info.lo_file_name[LO_NAME_SIZE - 1] = 0;
	if (strcmp((const char *)info.lo_file_name, b->expect) != 0) {
		errno = ESTALE;
		goto out;
	}
	/* An XFS (fs=xfs) says so in its first bytes; else an ext4. */
	xfs = pread(dev, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
	      memcmp(magic, "XFSB", 4) == 0;
	fs = hf_sys_fsopen(xfs ? "xfs" : "ext4", FSOPEN_CLOEXEC);
	/*
	 * XFS refuses a second mount of one file system UUID on a kernel:
	 * a clone or a restored copy has its source's, and on one machine
	 * (holdfast dev --nodes N, hosts in namespaces) a failed-over copy
	 * mounts while the fenced one still is. The epoch fences writers,
	 * not the UUID: XFS is told not to check it.
	 */
	if (fs < 0 ||
	    (xfs &&
	     hf_sys_fsconfig(fs, FSCONFIG_SET_FLAG, "nouuid", NULL, 0) < 0) ||
	    hf_sys_fsconfig(fs, FSCONFIG_SET_STRING, "source", b->source,
			    0) < 0 ||
	    (b->ro &&
	     hf_sys_fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0) ||
	    hf_sys_fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		goto out;
	b->fd = hf_sys_fsmount(fs, FSMOUNT_CLOEXEC,
			       (unsigned)attrs | MOUNT_ATTR_NOATIME |
				       (b->ro ? MOUNT_ATTR_RDONLY : 0));
	rc = b->fd < 0 ? -1 : 0;
out:
	e = errno;
	if (fs >= 0)
		close(fs);
	close(dev);
	errno = e;
	return rc;
}

static int attach_at(struct bind *b)
{
	if (b->fd < 0)
		return 0; /* an optional source that is not there */
	if (placeholder(b->target, b->dir) < 0)
		return -1;
	return hf_sys_move_mount(b->fd, "", AT_FDCWD, b->target,
				 MOVE_MOUNT_F_EMPTY_PATH);
}

static int private_dev(struct hf_confine_ns *ns, const char **what)
{
	if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=64k,nr_inodes=256") < 0)
		return fail(what, "give the task a private /dev");
	for (size_t i = 0; i < ns->devs.len; i++)
		if (attach_at(&ns->devs.items[i]) < 0)
			return fail(what, ns->devs.items[i].what);
	if (mkdir("/dev/pts", 0755) < 0 || mkdir("/dev/shm", 01777) < 0)
		return fail(what, "give the task a private /dev");
	/* A terminal and POSIX shared memory of its own; best effort. */
	mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	      "newinstance,ptmxmode=0666,mode=0620");
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=1777") < 0)
		return fail(what, "give the task its own /dev/shm");
	for (size_t i = 0; i < HF_ARRAY_LEN(dev_links); i++) {
		char path[32] = "/dev/";

		strncat(path, dev_links[i][0], sizeof(path) - 6);
		if (symlink(dev_links[i][1], path) < 0)
			return fail(what, "give the task a private /dev");
	}
	return 0;
}

/* /sys and the writable parts of /proc, read-only in the task's view. */
static int read_only_kernel(const char **what)
{
	static const char *const procs[] = {"/proc/sys", "/proc/sysrq-trigger"};
	struct mount_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = MOUNT_ATTR_RDONLY;
	if (hf_sys_mount_setattr(AT_FDCWD, "/sys", AT_RECURSIVE, &attr,
				 sizeof(attr)) < 0 &&
	    errno != ENOENT && errno != EINVAL)
		return fail(what, "make /sys read-only for the task");
	for (size_t i = 0; i < HF_ARRAY_LEN(procs); i++) {
		int fd = hf_sys_open_tree(AT_FDCWD, procs[i],
					  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
						  AT_RECURSIVE);

		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 || set_attr(fd, MOUNT_ATTR_RDONLY) < 0 ||
		    hf_sys_move_mount(fd, "", AT_FDCWD, procs[i],
				      MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return fail(what, "make /proc/sys read-only for the "
					  "task");
		close(fd);
	}
	return 0;
}

static int build(struct hf_confine_ns *ns, const char **what)
{
	uint64_t plain = ns->nosuid ? MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV : 0;
	struct bind sandbox = {.source = ns->sandbox, .target = ns->sandbox,
			       .dir = true, .fd = -1};
	int sfd;

	if (unshare(CLONE_NEWNS) < 0)
		return fail(what, "give the task a mount namespace");
	/*
	 * A slave of the node's: mounts made on the node later still show
	 * here, none made here ever shows there.
	 */
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return fail(what, "separate the task's mounts from the node's");
	/* Every source is taken before any directory is covered. */
	if (clone_tree(&sandbox, plain) < 0)
		return fail(what, "bind the sandbox");
	for (size_t i = 0; i < ns->visible.len; i++)
		if (clone_tree(&ns->visible.items[i],
			       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
				       MOUNT_ATTR_NODEV) < 0)
			return fail(what, ns->visible.items[i].what);
	for (size_t i = 0; i < ns->volumes.len; i++) {
		struct bind *b = &ns->volumes.items[i];

		if (b->expect	       ? mount_device(b, plain) < 0
		    : b->loop_hint ? mount_image(b, plain) < 0
				   : clone_tree(b, plain) < 0)
			return fail(what, b->what);
	}
	for (size_t i = 0; i < ns->devs.len; i++)
		if (clone_tree(&ns->devs.items[i], 0) < 0)
			return fail(what, ns->devs.items[i].what);

	/*
	 * Every field written here is set anew each time: the shim's memory
	 * is this child's until it execs (hf_spawn share_memory), so what a
	 * start leaves there is what the next restart would find.
	 */
	for (size_t i = 0; i < ns->hide.len; i++) {
		ns->hidden[i] = mount("tmpfs", ns->hide.items[i], "tmpfs",
				      MS_NOSUID | MS_NODEV | MS_NOEXEC,
				      "mode=0755,size=64k,nr_inodes=1024") == 0;
		if (!ns->hidden[i] && errno != ENOENT)
			return fail(what, "hide holdfast's files from the "
					  "task");
	}
	if (attach_at(&sandbox) < 0)
		return fail(what, "bind the sandbox");
	for (size_t i = 0; i < ns->visible.len; i++)
		if (attach_at(&ns->visible.items[i]) < 0)
			return fail(what, ns->visible.items[i].what);
	for (size_t i = 0; i < ns->hide.len; i++)
		if (ns->hidden[i] &&
		    mount(NULL, ns->hide.items[i], NULL,
			  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
				  MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
			return fail(what, "hide holdfast's files from the "
					  "task");

	/*
	 * Volumes, in order (a volume may sit inside another one): each
	 * target is walked from the sandbox one component at a time, never
	 * through a link a task could have left in a volume, and the
	 * volume is attached to the directory that walk opened.
	 */
	sfd = open(ns->sandbox, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return fail(what, "bind the sandbox");
	for (size_t i = 0; i < ns->volumes.len; i++) {
		struct bind *b = &ns->volumes.items[i];
		int tfd = hf_fs_open_dir_beneath(sfd, b->target, true, 0755,
						 ns->uid, ns->gid);

		if (tfd < 0 ||
		    hf_sys_move_mount(b->fd, "", tfd, "",
				      MOVE_MOUNT_F_EMPTY_PATH |
					      MOVE_MOUNT_T_EMPTY_PATH) < 0) {
			int e = fail(what, b->what);

			if (tfd >= 0)
				close(tfd);
			close(sfd);
			return e;
		}
		close(tfd);
	}
	close(sfd);
	if (ns->contain) {
		int e = private_dev(ns, what);

		if (e)
			return e;
		return read_only_kernel(what);
	}
	return 0;
}

static int drop_bounding(uint64_t keep)
{
	for (int cap = 0; cap < 64; cap++) {
		if (keep & HF_CAP_BIT(cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past the kernel's last one */
			return -1;
		}
	}
	return 0;
}

static int set_caps(uint64_t keep)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		uint32_t part = (uint32_t)(keep >> (32 * i));

		data[i].effective = data[i].permitted = data[i].inheritable =
			part;
	}
	return (int)syscall(SYS_capset, &hdr, data);
}

int hf_confine_apply(const struct hf_confine *c, const char **what)
{
	if (c->join_fd >= 0 && setns(c->join_fd, CLONE_NEWNS) < 0)
		return fail(what, "enter the task's mount namespace");
	if (c->build) {
		int e = build(c->build, what);

		if (e)
			return e;
	}
	/* Before the user switch: a root check may lower a hard limit. */
	for (size_t i = 0; i < c->nrlimits; i++) {
		const struct hf_shim_rlimit *r = &c->rlimits[i];
		struct rlimit rl = {
			r->soft < 0 ? RLIM_INFINITY : (rlim_t)r->soft,
			r->hard < 0 ? RLIM_INFINITY : (rlim_t)r->hard,
		};

		if (setrlimit(r->resource, &rl) < 0)
			return fail(what, "set the task's resource limits");
	}
	if (c->limit_caps) {
		if (drop_bounding(c->keep) < 0)
			return fail(what, "drop the task's capabilities");
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return fail(what, "drop the task's capabilities");
		/* Keep the permitted set across setuid, for ambient ones. */
		if (c->ambient && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return fail(what, "keep the task's capabilities");
	}
	if (c->switch_user) {
		if (setgroups((size_t)c->ngroups, c->groups) < 0)
			return fail(what, "set the supplementary groups of the "
					  "user");
		if (setgid(c->gid) < 0)
			return fail(what, "switch to the user's group");
		if (setuid(c->uid) < 0)
			return fail(what, "switch to the user");
	}
	if (c->limit_caps) {
		if (set_caps(c->keep) < 0)
			return fail(what, "drop the task's capabilities");
		for (int cap = 0; c->ambient && cap < 64; cap++)
			if ((c->keep & HF_CAP_BIT(cap)) &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0,
				  0) < 0)
				return fail(what, "give the task its "
						  "capabilities");
	}
	if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(what, "set no_new_privs");
	/* After the switch, so the user must be able to enter it. */
	if (c->cwd && chdir(c->cwd) < 0)
		return fail(what, c->cwd_what);
	return 0;
}

/* ---- probing ---------------------------------------------------------- */

bool hf_confine_probe(char **why)
{
	static const char *const steps[] = {
		"unshare(CLONE_NEWNS)", "mount(MS_SLAVE)", "open_tree",
	};
	struct { int step, err; } r = {-1, 0};
	int p[2], status;
	pid_t pid;

	*why = NULL;
	if (geteuid() != 0) {
		*why = hf_xstrdup("the agent does not run as root");
		return false;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		*why = hf_xasprintf("pipe: %s", strerror(errno));
		return false;
	}
	pid = hf_spawn_fork();
	if (pid == 0) {
		int fd;

		r.step = 0;
		if (unshare(CLONE_NEWNS) == 0) {
			r.step = 1;
			if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0) {
				r.step = 2;
				fd = hf_sys_open_tree(AT_FDCWD, "/",
						      OPEN_TREE_CLONE |
							      OPEN_TREE_CLOEXEC);
				if (fd >= 0)
					_exit(0);
			}
		}
		r.err = errno;
		if (write(p[1], &r, sizeof(r)) < 0) {
		}
		_exit(1);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		*why = hf_xasprintf("fork: %s", strerror(errno));
		return false;
	}
	if (read(p[0], &r, sizeof(r)) != (ssize_t)sizeof(r))
		r.step = -1;
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r.step >= 0 && (size_t)r.step < HF_ARRAY_LEN(steps)) {
		*why = hf_xasprintf("%s is refused here: %s", steps[r.step],
				    strerror(r.err));
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*why = hf_xstrdup("the probe failed");
		return false;
	}
	return true;
}
