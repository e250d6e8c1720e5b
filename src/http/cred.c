/*
 * cred.c - local credentials, private files and digests (see cred.h).
 *
 * Every file under the credentials directory is opened relative to a
 * descriptor of that directory, checked once (ours, nobody else's), so that
 * a path component swapped between the check and the use cannot redirect
 * a token to another user's directory.
 */
#include "http/cred.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/util.h"

#define CRED_FILE_MAX 4096

char *hf_cred_new_token(void)
{
	return hf_random_hex(HF_CRED_TOKEN_BYTES);
}

/* The config directory: $HOLDFAST_CONFIG_DIR or ~/.config/holdfast. */
static char *config_dir(void)
{
	const char *env = getenv("HOLDFAST_CONFIG_DIR");
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (env && *env)
		return hf_xstrdup(env);
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) != 0 || !res ||
	    !pw.pw_dir || pw.pw_dir[0] != '/')
		return NULL;
	return hf_xasprintf("%s/.config/holdfast",
			    strcmp(pw.pw_dir, "/") == 0 ? "" : pw.pw_dir);
}

char *hf_cred_dir(void)
{
	char *base = config_dir(), *dir;

	if (!base)
		return NULL;
	dir = hf_xasprintf("%s/credentials", base);
	free(base);
	return dir;
}

int hf_cred_loopback_port(const char *addr)
{
	const char *p = addr, *host, *host_end, *port_s = NULL;
	char hostbuf[256];
	struct in_addr a4;
	struct in6_addr a6;
	bool tls = false;
	long port;
	char *end;

	if (!addr)
		return 0;
	if (strncasecmp(p, "http://", 7) == 0) {
		p += 7;
	} else if (strncasecmp(p, "https://", 8) == 0) {
		p += 8;
		tls = true;
	} else if (strstr(p, "://")) {
		return 0;
	}
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (!host_end)
			return 0;
		if (host_end[1] == ':')
			port_s = host_end + 2;
		else if (host_end[1] && host_end[1] != '/')
			return 0;
	} else {
		host = p;
		host_end = host + strcspn(host, ":/");
		if (*host_end == ':')
			port_s = host_end + 1;
	}
	if (host_end == host || (size_t)(host_end - host) >= sizeof(hostbuf))
		return 0;
	memcpy(hostbuf, host, (size_t)(host_end - host));
	hostbuf[host_end - host] = '\0';
	if (port_s) {
		errno = 0;
		port = strtol(port_s, &end, 10);
		if (errno || end == port_s || (*end && *end != '/') ||
		    port < 1 || port > 65535)
			return 0;
	} else {
		port = tls ? 443 : 80;
	}
	if (strcasecmp(hostbuf, "localhost") == 0)
		return (int)port;
	if (inet_pton(AF_INET, hostbuf, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127 ? (int)port : 0;
	if (inet_pton(AF_INET6, hostbuf, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return (int)port;
		if (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127)
			return (int)port;
	}
	return 0;
}

/*
 * A directory is private when it is ours (or root's, for root) and no one
 * else may read, write or enter it.
 */
static bool dir_private(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() &&
	       (st->st_mode & 077) == 0;
}

/*
 * Opens the credentials directory, creating it when asked; it must be
 * private (a directory of ours that others cannot touch). Returns the
 * descriptor, or -1 with *rc and *err (*rc HF_ENOTFOUND when absent).
 */
static int open_dir(bool create, char **dirpath, int *rc, char **err)
{
	char *dir = hf_cred_dir();
	struct stat st;
	int fd;

	*dirpath = dir;
	if (!dir) {
		*rc = HF_ENOTFOUND;
		*err = hf_xstrdup("the user has no home directory for "
				  "credentials (set HOLDFAST_CONFIG_DIR)");
		return -1;
	}
	if (create && hf_fs_mkdir_p(dir, 0700, 0700) < 0) {
		*rc = HF_EIO;
		*err = hf_xasprintf("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*rc = errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
		*err = hf_xasprintf("cannot open %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*rc = HF_EIO;
		*err = hf_xasprintf("cannot stat %s: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	/* A directory of ours that others can enter: close it off. */
	if (create && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	    (st.st_mode & 077) && fchmod(fd, 0700) == 0)
		st.st_mode &= ~(mode_t)077;
	if (!dir_private(&st)) {
		*rc = HF_EFORBIDDEN;
		*err = hf_xasprintf("%s is not a private directory of this user "
				    "(owner uid %u, mode %04o): credentials are "
				    "neither written nor read there",
				    dir, (unsigned)st.st_uid,
				    (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int hf_cred_local_save(int port, const char *token, char **path, char **err)
{
	char name[32], tmp[40], *dir = NULL, *text = NULL;
	int dfd, fd = -1, rc = 0;

	*err = NULL;
	if (path)
		*path = NULL;
	dfd = open_dir(true, &dir, &rc, err);
	if (dfd < 0)
		goto out;
	snprintf(name, sizeof(name), "local-%d", port);
	snprintf(tmp, sizeof(tmp), "%s.new", name);
	text = hf_xasprintf("%s\n", token);
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0 ||
	    renameat(dfd, tmp, dfd, name) < 0 || fsync(dfd) < 0) {
		rc = HF_EIO;
		*err = hf_xasprintf("cannot write %s/%s: %s", dir, name,
				    strerror(errno));
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	if (path)
		*path = hf_xasprintf("%s/%s", dir, name);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (text)
		explicit_bzero(text, strlen(text));
	free(text);
	free(dir);
	return rc;
}

/* Reads name in dfd: a private regular file of ours. */
static int read_in(int dfd, const char *dir, const char *name, char **text,
		   char **err)
{
	struct stat st;
	char buf[CRED_FILE_MAX];
	ssize_t n;
	size_t len;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return HF_ENOTFOUND;
		*err = hf_xasprintf("cannot open %s/%s: %s", dir, name,
				    strerror(errno));
		return HF_EFORBIDDEN;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		*err = hf_xasprintf("%s/%s is not a private file of this user: "
				    "not used",
				    dir, name);
		close(fd);
		return HF_EFORBIDDEN;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		*err = hf_xasprintf("cannot read %s/%s: %s", dir, name,
				    strerror(errno));
		return HF_EIO;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	if (len == 0) {
		explicit_bzero(buf, sizeof(buf));
		return HF_ENOTFOUND;
	}
	*text = hf_xstrndup(buf, len);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

int hf_cred_local_load(const char *addr, char **token, char **err)
{
	int port = hf_cred_loopback_port(addr), dfd, rc = 0;
	char name[32], *dir = NULL;

	*token = NULL;
	*err = NULL;
	if (!port)
		return HF_ENOTFOUND;
	dfd = open_dir(false, &dir, &rc, err);
	if (dfd < 0) {
		if (rc == HF_ENOTFOUND) {
			free(*err);
			*err = NULL;
		}
		free(dir);
		return rc;
	}
	snprintf(name, sizeof(name), "local-%d", port);
	rc = read_in(dfd, dir, name, token, err);
	close(dfd);
	free(dir);
	return rc;
}

void hf_cred_local_forget(int port, const char *token)
{
	char name[32], *dir = NULL, *err = NULL, *have = NULL;
	int dfd, rc = 0;

	dfd = open_dir(false, &dir, &rc, &err);
	if (dfd >= 0) {
		snprintf(name, sizeof(name), "local-%d", port);
		if (read_in(dfd, dir, name, &have, &err) == 0 &&
		    strcmp(have, token) == 0)
			unlinkat(dfd, name, 0);
		close(dfd);
	}
	if (have)
		explicit_bzero(have, strlen(have));
	free(have);
	free(err);
	free(dir);
}

int hf_cred_read_private(const char *path, const char *what, size_t max,
			 char **text, size_t *len, char **err)
{
	struct stat st;
	int fd, rc;

	*err = NULL;
	*text = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
		*err = hf_xasprintf("cannot read %s %s: %s", what, path,
				    strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*err = hf_xasprintf("%s %s is not a regular file", what, path);
		close(fd);
		return HF_EIO;
	}
	close(fd);
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		*err = hf_xasprintf("refusing %s %s: it belongs to uid %u, not "
				    "to this user or root",
				    what, path, (unsigned)st.st_uid);
		return HF_EFORBIDDEN;
	}
	if (st.st_mode & 027) {
		*err = hf_xasprintf("refusing %s %s: its mode %04o lets %s; "
				    "run chmod 600 %s",
				    what, path, (unsigned)(st.st_mode & 07777),
				    (st.st_mode & 007) ? "every local user read it"
						       : "its group change it",
				    path);
		return HF_EFORBIDDEN;
	}
	rc = hf_read_file(path, max, text, len);
	if (rc == HF_ETOOBIG)
		*err = hf_xasprintf("%s %s is larger than %zu bytes", what,
				    path, max);
	else if (rc)
		*err = hf_xasprintf("cannot read %s %s: %s", what, path,
				    strerror(errno));
	return rc;
}

void hf_cred_digest(const char *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) || n != 32)
		abort(); /* only when libcrypto is broken */
	for (unsigned int i = 0; i < n; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

char *hf_cred_take_env(const char *name)
{
	char *v = getenv(name), *copy;

	if (!v || !*v) {
		unsetenv(name);
		return NULL;
	}
	copy = hf_xstrdup(v);
	/* The bytes live in the block /proc/self/environ shows. */
	explicit_bzero(v, strlen(v));
	unsetenv(name);
	return copy;
}

void hf_cred_scrub(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}
