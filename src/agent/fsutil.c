/*
 * fsutil.c - the agent's file system chores: mkdir -p, a removal that
 * never follows a link or enters a mount, unmounting a subtree, lexical
 * path containment, copying, and running a helper (tar, unzip).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/spawn.h"
#include "common/util.h"

/*
 * Removes name below dirfd. A directory whose mount id differs from the
 * tree's is a mount (a volume still bound): it is refused with EBUSY, as
 * descending would delete the volume's contents.
 */
static int rm_at(int dirfd, const char *name, uint64_t mnt_id)
{
	struct statx stx;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0, saved = 0;

	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_MNT_ID, &stx) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(stx.stx_mode)) {
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return -1;
		return 0;
	}
	if ((stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id != mnt_id) {
		errno = EBUSY;
		return -1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (rm_at(fd, de->d_name, mnt_id) < 0 && !saved) {
			saved = errno;
			rc = -1;
		}
	}
	closedir(d);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		return -1;
	if (rc)
		errno = saved;
	return rc;
}

int ag_rm_rf(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
		  STATX_TYPE | STATX_MNT_ID, &stx) < 0)
		return errno == ENOENT ? 0 : -1;
	return rm_at(AT_FDCWD, path, stx.stx_mnt_id);
}

/* Undoes the octal escapes (\040 for a space) of /proc/self/mountinfo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Mount points at or below dir, from /proc/self/mountinfo. */
static void mounts_under(const char *dir, struct hf_strlist *out)
{
	size_t dlen = strlen(dir), cap = 0;
	char *line = NULL;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);

		/* id parent major:minor root MOUNT-POINT ... */
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape(field);
		if (strncmp(field, dir, dlen) == 0 &&
		    (field[dlen] == '\0' || field[dlen] == '/'))
			hf_strlist_push(out, field);
	}
	free(line);
	fclose(f);
}

static int by_length_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : 0;
}

int ag_unmount_under(const char *dir)
{
	struct hf_strlist m = {0};
	char *real = realpath(dir, NULL);
	int left;

	if (!real)
		return 0; /* gone: nothing can be mounted there */
	mounts_under(real, &m);
	if (m.len)
		qsort(m.items, m.len, sizeof(*m.items), by_length_desc);
	/*
	 * Several binds may be stacked on one point; detach until the
	 * kernel says there is nothing left there.
	 */
	for (size_t i = 0; i < m.len; i++)
		while (umount2(m.items[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			;
	hf_strlist_release(&m);
	mounts_under(real, &m);
	left = (int)m.len;
	hf_strlist_release(&m);
	free(real);
	return left;
}

char *ag_path_join_within(const char *root, const char *base,
			  const char *rel)
{
	struct hf_buf out = HF_BUF_INIT;
	char *all, *save = NULL, *comp;
	size_t rlen = strlen(root);

	if (rel[0] == '/' || rel[0] == '\0')
		return NULL;
	all = hf_xasprintf("%s/%s", base, rel);
	for (comp = strtok_r(all, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *slash = out.len ? strrchr(out.data, '/') : NULL;

			if (slash)
				out.len = (size_t)(slash - out.data);
			if (out.data)
				out.data[out.len] = '\0';
			continue;
		}
		hf_buf_addc(&out, '/');
		hf_buf_adds(&out, comp);
	}
	free(all);
	if (out.len <= rlen || strncmp(out.data, root, rlen) != 0 ||
	    out.data[rlen] != '/') {
		hf_buf_release(&out);
		return NULL;
	}
	return hf_buf_detach(&out);
}

int ag_copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	int in, out = -1, rc = -1, saved;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		   mode);
	if (out < 0)
		goto out;
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		char *p = buf;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		while (n > 0) {
			ssize_t w = write(out, p, (size_t)n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto out;
			p += w;
			n -= w;
		}
	}
	if (fchmod(out, mode) < 0)
		goto out;
	rc = 0;
out:
	saved = errno;
	close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -1, saved = errno;
	errno = saved;
	return rc;
}

struct run_as {
	uid_t uid;
	gid_t gid;
};

/* In the child: become the user (no supplementary groups). */
static int run_as_user(void *arg, const char **what)
{
	const struct run_as *u = arg;

	if (setgroups(1, &u->gid) < 0 || setgid(u->gid) < 0 ||
	    setuid(u->uid) < 0) {
		*what = "switch to the task's user";
		return errno;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		*what = "set no_new_privs";
		return errno;
	}
	return 0;
}

int ag_make_image(const char *path, int64_t size_mb, uid_t uid, gid_t gid,
		  bool *made, char **err)
{
	char *tmp = hf_xasprintf("%s.new", path);
	char *owner = hf_xasprintf("nodiscard,assume_storage_prezeroed=1,"
				   "root_owner=%u:%u", (unsigned)uid,
				   (unsigned)gid);
	const char *mkfs = access("/sbin/mkfs.ext4", X_OK) == 0
				   ? "/sbin/mkfs.ext4"
				   : "/usr/sbin/mkfs.ext4";
	/* 4 KiB blocks whatever the size; no blocks kept for root. */
	char *argv[] = {(char *)mkfs, "-q", "-F", "-b", "4096", "-m", "0",
			"-E", owner, tmp, NULL};
	int fd = -1, rc = -1;

	*made = false;
	*err = NULL;
	if (access(path, F_OK) == 0) {
		rc = 0;
		goto out;
	}
	if (size_mb < AG_IMAGE_MIN_MB)
		size_mb = AG_IMAGE_MIN_MB;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0 || ftruncate(fd, (off_t)size_mb * 1024 * 1024) < 0) {
		*err = hf_xasprintf("cannot create %s: %s", tmp,
				    strerror(errno));
		goto out;
	}
	if (ag_run(argv, "/", (uid_t)-1, (gid_t)-1, err))
		goto out;
	if (fsync(fd) < 0 || rename(tmp, path) < 0 || hf_fsync_parent(path)) {
		*err = hf_xasprintf("cannot keep %s: %s", path,
				    strerror(errno));
		goto out;
	}
	*made = true;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	free(owner);
	return rc;
}

int ag_run(char *const argv[], const char *cwd, uid_t uid, gid_t gid,
	   char **err)
{
	static char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
				     "LC_ALL=C", NULL};
	struct run_as as = {uid, gid};
	struct hf_buf tail = HF_BUF_INIT;
	struct hf_spawn sp;
	int out[2] = {-1, -1}, wstatus = 0, rc = -1;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	*err = NULL;
	if (pipe2(out, O_CLOEXEC) < 0) {
		*err = hf_xasprintf("pipe: %s", strerror(errno));
		goto out;
	}
	memset(&sp, 0, sizeof(sp));
	sp.path = argv[0];
	sp.argv = argv;
	sp.envp = envp;
	sp.cwd = cwd;
	sp.in = -1;
	sp.out = sp.err = out[1];
	if (uid != (uid_t)-1) {
		sp.setup = run_as_user;
		sp.setup_arg = &as;
	}
	if (hf_spawn_start(&sp, &pid, err))
		goto out;
	close(out[1]);
	out[1] = -1;
	while ((n = read(out[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		hf_buf_add(&tail, buf, (size_t)n);
		if (tail.len > 2048) {
			memmove(tail.data, tail.data + tail.len - 1024, 1024);
			tail.len = 1024;
			tail.data[tail.len] = '\0';
		}
	}
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
		rc = 0;
		goto out;
	}
	while (tail.len && (tail.data[tail.len - 1] == '\n' ||
			    tail.data[tail.len - 1] == ' '))
		tail.data[--tail.len] = '\0';
	{
		const char *last = tail.len ? strrchr(hf_buf_str(&tail), '\n')
					    : NULL;

		last = last ? last + 1 : hf_buf_str(&tail);
		if (WIFEXITED(wstatus))
			*err = hf_xasprintf("%s exited with %d%s%s", argv[0],
					    WEXITSTATUS(wstatus),
					    *last ? ": " : "", last);
		else
			*err = hf_xasprintf("%s was killed by signal %d",
					    argv[0], WTERMSIG(wstatus));
	}
out:
	for (int i = 0; i < 2; i++)
		if (out[i] >= 0)
			close(out[i]);
	hf_buf_release(&tail);
	return rc;
}
