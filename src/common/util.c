#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"

static void oom(size_t n)
{
	fprintf(stderr, "holdfast: out of memory allocating %zu bytes\n", n);
	abort();
}

void *hf_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *hf_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *hf_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

void *hf_vec_grow(void *items, size_t *cap, size_t len, size_t elem)
{
	if (len < *cap)
		return items;
	*cap = *cap ? *cap * 2 : 4;
	return hf_xrealloc(items, *cap * elem);
}

char *hf_xstrdup(const char *s)
{
	return hf_xstrndup(s, strlen(s));
}

char *hf_xstrndup(const char *s, size_t n)
{
	char *p = hf_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *hf_xasprintf(const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	return hf_buf_detach(&b);
}

void hf_buf_init(struct hf_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void hf_buf_release(struct hf_buf *b)
{
	free(b->data);
	hf_buf_init(b);
}

static void buf_reserve(struct hf_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (b->cap * 2 > need)
		need = b->cap * 2;
	if (need < 64)
		need = 64;
	b->data = hf_xrealloc(b->data, need);
	b->cap = need;
}

void hf_buf_add(struct hf_buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void hf_buf_adds(struct hf_buf *b, const char *s)
{
	hf_buf_add(b, s, strlen(s));
}

void hf_buf_addc(struct hf_buf *b, char c)
{
	hf_buf_add(b, &c, 1);
}

void hf_buf_vaddf(struct hf_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void hf_buf_addf(struct hf_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void hf_buf_reset(struct hf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *hf_buf_detach(struct hf_buf *b)
{
	char *s = b->data ? b->data : hf_xstrdup("");

	hf_buf_init(b);
	return s;
}

const char *hf_buf_str(const struct hf_buf *b)
{
	return b->data ? b->data : "";
}

void hf_kvlist_release(struct hf_kvlist *l)
{
	for (size_t i = 0; i < l->len; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	HF_VEC_FREE(l);
}

void hf_kvlist_set(struct hf_kvlist *l, const char *key, const char *value)
{
	for (size_t i = 0; i < l->len; i++) {
		if (strcmp(l->items[i].key, key) == 0) {
			free(l->items[i].value);
			l->items[i].value = hf_xstrdup(value);
			return;
		}
	}
	hf_kvlist_append(l, key, value);
}

void hf_kvlist_append(struct hf_kvlist *l, const char *key, const char *value)
{
	struct hf_kv *kv = HF_VEC_PUSH(l);

	kv->key = hf_xstrdup(key);
	kv->value = hf_xstrdup(value);
}

const char *hf_kvlist_get(const struct hf_kvlist *l, const char *key)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i].key, key) == 0)
			return l->items[i].value;
	return NULL;
}

void hf_kvlist_copy(struct hf_kvlist *dst, const struct hf_kvlist *src)
{
	for (size_t i = 0; i < src->len; i++)
		hf_kvlist_set(dst, src->items[i].key, src->items[i].value);
}

void hf_strlist_release(struct hf_strlist *l)
{
	for (size_t i = 0; i < l->len; i++)
		free(l->items[i]);
	HF_VEC_FREE(l);
}

void hf_strlist_push(struct hf_strlist *l, const char *s)
{
	*HF_VEC_PUSH(l) = hf_xstrdup(s);
}

bool hf_strlist_has(const struct hf_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i], s) == 0)
			return true;
	return false;
}

int hf_read_file(const char *path, size_t max, char **out, size_t *len_out)
{
	struct hf_buf b = HF_BUF_INIT;
	char chunk[65536];
	int fd, err = 0;
	ssize_t n;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = HF_EIO;
			break;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			err = HF_ETOOBIG;
			break;
		}
		hf_buf_add(&b, chunk, (size_t)n);
	}
	close(fd);
	if (err) {
		hf_buf_release(&b);
		return err;
	}
	if (len_out)
		*len_out = b.len;
	*out = hf_buf_detach(&b);
	return 0;
}

int hf_fsync_parent(const char *path)
{
	char *copy = hf_xstrdup(path);
	int fd, rc = 0;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return HF_EIO;
	if (fsync(fd) < 0)
		rc = HF_EIO;
	close(fd);
	return rc;
}

int hf_write_file_atomic(const char *path, const void *data, size_t len,
			 int mode)
{
	return hf_write_file_replace(path, data, len, mode, HF_WRITE_DURABLE);
}

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1) /* linux/fs.h */
#endif

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hf_write_file_replace(const char *path, const void *data, size_t len,
			  int mode, int flags)
{
	char *tmp = hf_xasprintf("%s.new", path);
	bool durable = flags & HF_WRITE_DURABLE;
	int fd, rc = HF_EIO;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		goto out;
	/* A kept path.new was created with the mode of its first write. */
	if ((flags & HF_WRITE_KEEP_OLD) && fchmod(fd, (mode_t)mode) < 0)
		goto fail;
	if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
		close(fd);
		goto fail;
	}
	if (close(fd) < 0)
		goto fail;
	if (flags & HF_WRITE_KEEP_OLD) {
		if (syscall(SYS_renameat2, AT_FDCWD, tmp, AT_FDCWD, path,
			    RENAME_EXCHANGE) == 0)
			goto renamed;
		/* ENOENT: no path yet; EINVAL: no exchange here. */
		if (errno != ENOENT && errno != EINVAL)
			goto fail;
	}
	if (rename(tmp, path) < 0)
		goto fail;
renamed:
	rc = durable ? hf_fsync_parent(path) : 0;
	goto out;
fail:
	unlink(tmp);
out:
	free(tmp);
	return rc;
}

int hf_lock_file(const char *path, int *fd_out, long *holder)
{
	char pid[32];
	int fd, n;

	*fd_out = -1;
	if (holder)
		*holder = 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return HF_EIO;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t got;
		int e = errno;

		if (e == EINTR)
			continue;
		if (e != EWOULDBLOCK) {
			close(fd);
			errno = e;
			return HF_EIO;
		}
		got = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[got > 0 ? got : 0] = '\0';
		if (holder)
			*holder = strtol(pid, NULL, 10);
		close(fd);
		return HF_EUNAVAIL;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* The pid is a hint for messages only: failing to write it is fine. */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
		errno = 0;
	*fd_out = fd;
	return 0;
}

bool hf_lock_held(const char *path, long *pid)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool held = false;

	*pid = 0;
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

		buf[n > 0 ? n : 0] = '\0';
		held = true;
		*pid = strtol(buf, NULL, 10);
	}
	close(fd); /* a shared lock we got goes with it */
	return held;
}

char *hf_bytes_human(int64_t n)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB"};
	double v = (double)n;
	size_t u = 0;

	if (n > -1024 && n < 1024)
		return hf_xasprintf("%lld B", (long long)n);
	v /= 1024;
	while ((v >= 1024 || v <= -1024) && u + 1 < HF_ARRAY_LEN(units)) {
		v /= 1024;
		u++;
	}
	return hf_xasprintf("%.1f %s", v, units[u]);
}

int hf_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[101];

	if (la > 100 || lb > 100)
		return 100;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];

		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = prev + cost;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

bool hf_is_env_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

bool hf_str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

char *hf_random_hex(size_t bytes)
{
	unsigned char *b = hf_xcalloc(bytes ? bytes : 1, 1);
	char *out = hf_xmalloc(2 * bytes + 1);
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	while (fd >= 0 && got < bytes) {
		ssize_t n = read(fd, b + got, bytes - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (got < bytes) {
		/* No /dev/urandom here is not something holdfast runs on. */
		fprintf(stderr, "holdfast: cannot read /dev/urandom\n");
		abort();
	}
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	out[2 * bytes] = '\0';
	free(b);
	return out;
}

char *hf_name_escape(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	struct hf_buf b = HF_BUF_INIT;

	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		     (c >= '0' && c <= '9') || strchr("._:@+-", c)) &&
		    !(p == name && c == '.')) {
			hf_buf_addc(&b, (char)c);
			continue;
		}
		hf_buf_addc(&b, '%');
		hf_buf_addc(&b, hex[c >> 4]);
		hf_buf_addc(&b, hex[c & 15]);
	}
	return hf_buf_detach(&b);
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

char *hf_name_unescape(const char *s, size_t n)
{
	struct hf_buf b = HF_BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		int hi = -1, lo = -1;

		if (s[i] == '%' && i + 2 < n) {
			hi = hex_value(s[i + 1]);
			lo = hex_value(s[i + 2]);
		}
		if (hi >= 0 && lo >= 0) {
			hf_buf_addc(&b, (char)(hi * 16 + lo));
			i += 2;
		} else {
			hf_buf_addc(&b, s[i]);
		}
	}
	return hf_buf_detach(&b);
}

int hf_hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
