/*
 * fs.c - link-proof creation and writing below a directory; see fs.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"

/* One component, never a link, never "..": an O_PATH descriptor. */
static int open_component(int dirfd, const char *name)
{
	struct open_how how;
	int fd;

	/* No O_NOFOLLOW: it would open a link itself (then ENOTDIR). */
	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
	how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH |
		      RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/*
	 * Kernels before 5.6: without O_PATH, O_NOFOLLOW makes a link at
	 * name fail with ELOOP (the name has no '/', so nothing else is
	 * resolved).
	 */
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
				   O_NOFOLLOW);
}

/* Copies the next component of *p into name; false at the end. */
static bool next_component(const char **p, char name[NAME_MAX + 1], int *err)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == '/')
		s++;
	if (!*s)
		return false;
	while (s[n] && s[n] != '/')
		n++;
	if (n > NAME_MAX) {
		*err = ENAMETOOLONG;
		return false;
	}
	memcpy(name, s, n);
	name[n] = '\0';
	*p = s + n;
	if ((n == 1 && name[0] == '.') ||
	    (n == 2 && name[0] == '.' && name[1] == '.'))
		*err = EXDEV;
	return !*err;
}

int hf_fs_open_dir_beneath(int dirfd, const char *rel, bool create,
			   mode_t mode, uid_t uid, gid_t gid)
{
	char name[NAME_MAX + 1];
	const char *p = rel;
	int cur, err = 0;

	cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return -1;
	while (next_component(&p, name, &err)) {
		bool made = false;
		int next;

		if (create) {
			if (mkdirat(cur, name, mode) == 0)
				made = true;
			else if (errno != EEXIST) {
				err = errno;
				break;
			}
		}
		next = open_component(cur, name);
		if (next < 0) {
			err = errno;
			break;
		}
		/*
		 * Through the descriptor: whatever is at name by now, the
		 * directory we opened is the one that changes owner.
		 */
		if (made && uid != HF_FS_KEEP_OWNER &&
		    fchownat(next, "", uid, gid, AT_EMPTY_PATH) < 0) {
			err = errno;
			close(next);
			break;
		}
		close(cur);
		cur = next;
	}
	if (err) {
		close(cur);
		errno = err;
		return -1;
	}
	return cur;
}

int hf_fs_write_beneath(int dirfd, const char *rel, const void *data,
			size_t len, mode_t mode, uid_t uid, gid_t gid)
{
	const char *slash = strrchr(rel, '/'), *base = slash ? slash + 1 : rel;
	char *parent = hf_xstrndup(rel, slash ? (size_t)(slash - rel) : 0);
	char *tmp = NULL;
	int dir = -1, fd = -1, sync_fd = -1, saved = 0, rc = -1;
	const char *p = data;

	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		saved = EXDEV;
		goto out;
	}
	dir = hf_fs_open_dir_beneath(dirfd, parent, true, 0755, uid, gid);
	if (dir < 0) {
		saved = errno;
		goto out;
	}
	for (int attempt = 0; fd < 0; attempt++) {
		char *hex = hf_random_hex(6);

		free(tmp);
		tmp = hf_xasprintf(".%.100s.%s.tmp", base, hex);
		free(hex);
		fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
					      O_CLOEXEC, mode & 0777);
		if (fd < 0 && (errno != EEXIST || attempt > 8)) {
			saved = errno;
			goto out;
		}
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			saved = errno;
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if ((uid != HF_FS_KEEP_OWNER && fchown(fd, uid, gid) < 0) ||
	    fchmod(fd, mode & 07777) < 0 || fsync(fd) < 0) {
		saved = errno;
		goto out;
	}
	/* rename(2) replaces a link at base; it never writes through one. */
	if (renameat(dir, tmp, dir, base) < 0) {
		saved = errno;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	sync_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sync_fd >= 0)
		fsync(sync_fd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp && dir >= 0)
		unlinkat(dir, tmp, 0);
	if (sync_fd >= 0)
		close(sync_fd);
	if (dir >= 0)
		close(dir);
	free(tmp);
	free(parent);
	if (rc)
		errno = saved;
	return rc;
}

/*
 * The whole path is tried first: its parents usually exist, and a walk
 * from the root would look each of them up again. Only when a parent is
 * missing are the parents made, from the nearest one that exists.
 */
static int mkdir_back(char *buf, size_t n, mode_t parents, mode_t last)
{
	struct stat sb;
	size_t cut = n;

	if (mkdir(buf, last) == 0)
		return 0;
	if (errno == ENOENT) {
		/* The parent: up to the last slash, without its slashes. */
		while (cut > 0 && buf[cut - 1] != '/')
			cut--;
		while (cut > 0 && buf[cut - 1] == '/')
			cut--;
		if (cut == 0)
			return -1; /* no parent to make (ENOENT stays) */
		buf[cut] = '\0';
		if (mkdir_back(buf, cut, parents, parents) < 0)
			return -1;
		buf[cut] = '/';
		if (mkdir(buf, last) == 0)
			return 0;
	}
	if (errno != EEXIST)
		return -1;
	if (stat(buf, &sb) < 0)
		return -1;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int hf_fs_mkdir_p(const char *path, mode_t parents, mode_t last)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	if (n == 0) {
		errno = ENOENT;
		return -1;
	}
	return mkdir_back(buf, n, parents, last);
}
