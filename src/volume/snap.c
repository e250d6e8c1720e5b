/*
 * snap.c - a replica's snapshots by copy-on-write (snap.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/util.h"
#include "volume/snap.h"

#define HDR_SIZE 4096
#define HDR_MAGIC "HFSNAP01"
#define HDR_VERSION 1
#define REC_HEAD 64
#define REC_MAGIC 0x52534648u /* "HFSR" little-endian */
#define REC_ZERO 1u

/* Chunk -> record offset, open addressing (key 0 is empty: chunk + 1). */
struct chunk_map {
	uint64_t *keys;
	int64_t *vals; /* the record's data offset, or -1: a chunk of zeros */
	size_t cap, n;
};

struct snap {
	char id[HF_VOL_ID_MAX + 1];
	uint64_t seq;
	int64_t size, created_ms, bytes, chunks;
	uint64_t nchunks;
	int fd;
	off_t end; /* where the next record goes */
	uint64_t *has; /* bit per chunk, set (atomically) once durable */
	struct chunk_map map;
};

struct hf_snaps {
	char *dir; /* <replica dir>/snaps */
	int data_fd;
	/*
	 * Opened by a reader beside the replica's writer (hf_snaps_open_
	 * reader): never repairs, never writes; refreshed before it trusts
	 * the data file.
	 */
	bool reader;
	pthread_rwlock_t lk;  /* write: the list changes */
	pthread_mutex_t cow;  /* copies, reads, merges */
	struct snap *v[HF_SNAP_MAX];
	size_t n;             /* oldest first */
	uint8_t *buf;         /* HF_SNAP_CHUNK, under cow */
};

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int hf_snap_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > HF_VOL_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) < 0)
		e = errno;
	close(fd);
	return e;
}

static int full_pread(int fd, uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t got = pread(fd, p, n, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno;
		if (got == 0) { /* past the end: zeros */
			memset(p, 0, n);
			return 0;
		}
		p += got;
		n -= (size_t)got;
		off += got;
	}
	return 0;
}

/* ---- the chunk map ---- */

static size_t slot_of(const struct chunk_map *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 17) & (m->cap - 1);
}

static void map_put(struct chunk_map *m, uint64_t chunk, int64_t val)
{
	uint64_t key = chunk + 1;
	size_t i;

	if ((m->n + 1) * 10 > m->cap * 7) {
		struct chunk_map g = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};

		g.keys = hf_xcalloc(g.cap, sizeof(*g.keys));
		g.vals = hf_xcalloc(g.cap, sizeof(*g.vals));
		for (size_t j = 0; j < m->cap; j++)
			if (m->keys[j])
				map_put(&g, m->keys[j] - 1, m->vals[j]);
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	for (i = slot_of(m, key); m->keys[i] && m->keys[i] != key;
	     i = (i + 1) & (m->cap - 1))
		;
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->vals[i] = val;
}

static bool map_get(const struct chunk_map *m, uint64_t chunk, int64_t *val)
{
	uint64_t key = chunk + 1;

	if (!m->cap)
		return false;
	for (size_t i = slot_of(m, key); m->keys[i];
	     i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			*val = m->vals[i];
			return true;
		}
	}
	return false;
}

/* ---- one snapshot ---- */

static bool has(const struct snap *p, uint64_t c)
{
	return c < p->nchunks &&
	       (__atomic_load_n(&p->has[c / 64], __ATOMIC_ACQUIRE) >> (c % 64)) & 1;
}

static void set_has(struct snap *p, uint64_t c)
{
	__atomic_fetch_or(&p->has[c / 64], 1ull << (c % 64), __ATOMIC_RELEASE);
}

static void snap_free(struct snap *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	free(p->has);
	free(p->map.keys);
	free(p->map.vals);
	free(p);
}

static struct snap *snap_new(const char *id, uint64_t seq, int64_t size,
			     int64_t created_ms)
{
	struct snap *p = hf_xcalloc(1, sizeof(*p));

	snprintf(p->id, sizeof(p->id), "%s", id);
	p->seq = seq;
	p->size = size;
	p->created_ms = created_ms;
	p->nchunks = ((uint64_t)size + HF_SNAP_CHUNK - 1) / HF_SNAP_CHUNK;
	p->has = hf_xcalloc(p->nchunks / 64 + 1, sizeof(*p->has));
	p->fd = -1;
	p->end = HDR_SIZE;
	return p;
}

/* The bytes chunk c holds in a snapshot of size bytes. */
static size_t chunk_len(int64_t size, uint64_t c)
{
	uint64_t start = c * HF_SNAP_CHUNK;

	if (start >= (uint64_t)size)
		return 0;
	return (uint64_t)size - start < HF_SNAP_CHUNK
		       ? (size_t)((uint64_t)size - start)
		       : HF_SNAP_CHUNK;
}

static void encode_header(const struct snap *p, uint8_t *h)
{
	memset(h, 0, HDR_SIZE);
	memcpy(h, HDR_MAGIC, 8);
	put_u32(h + 8, HDR_VERSION);
	put_u32(h + 12, HF_SNAP_CHUNK);
	put_u64(h + 16, p->seq);
	put_u64(h + 24, (uint64_t)p->size);
	put_u64(h + 32, (uint64_t)p->created_ms);
	h[40] = (uint8_t)strlen(p->id);
	memcpy(h + 41, p->id, strlen(p->id));
	put_u32(h + HDR_SIZE - 4, hf_crc32c(0, h, HDR_SIZE - 4));
}

/*
 * Appends a record of chunk c (len bytes at data, or a chunk of zeros) to
 * p; not durable until p's fd is fdatasynced. Returns 0 or an errno (the
 * file is cut back: no partial record stays).
 */
static int append(struct snap *p, uint64_t c, const uint8_t *data,
		  size_t len, bool zero)
{
	uint8_t head[REC_HEAD];
	struct iovec iov[2];
	size_t want = REC_HEAD + (zero ? 0 : len);
	ssize_t w;

	memset(head, 0, sizeof(head));
	put_u32(head, REC_MAGIC);
	put_u32(head + 4, zero ? REC_ZERO : 0);
	put_u64(head + 8, c);
	put_u32(head + 16, zero ? 0 : (uint32_t)len);
	put_u32(head + 20, zero ? 0 : hf_crc32c(0, data, len));
	put_u32(head + REC_HEAD - 4, hf_crc32c(0, head, REC_HEAD - 4));
	iov[0] = (struct iovec){head, REC_HEAD};
	iov[1] = (struct iovec){(void *)data, zero ? 0 : len};
	do
		w = pwritev(p->fd, iov, zero ? 1 : 2, p->end);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)want) {
		int e = w < 0 ? errno : ENOSPC;

		if (ftruncate(p->fd, p->end) < 0) {
			/* the next open cuts the torn tail */
		}
		return e;
	}
	map_put(&p->map, c, zero ? -1 : (int64_t)(p->end + REC_HEAD));
	p->end += (off_t)want;
	p->bytes += (int64_t)want;
	p->chunks++;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Reads p's record of chunk c (known present) into buf (the chunk's
 * length in p). Returns 0 or an errno.
 */
static int read_record(const struct snap *p, uint64_t c, uint8_t *buf,
		       size_t *len)
{
	int64_t at;

	*len = chunk_len(p->size, c);
	if (!map_get(&p->map, c, &at))
		return ENOENT;
	if (at < 0) {
		memset(buf, 0, *len);
		return 0;
	}
	return full_pread(p->fd, buf, *len, at);
}

/*
 * Scans p's records from the header on: fills the map, stops at the
 * first record that does not check and cuts the file there.
 */
static int load_records(struct snap *p, uint8_t *buf, bool repair)
{
	struct stat st;
	off_t at = p->end;

	if (fstat(p->fd, &st) < 0)
		return errno;
	while (at + REC_HEAD <= st.st_size) {
		uint8_t head[REC_HEAD];
		uint32_t flags, len;
		uint64_t c;
		int e = full_pread(p->fd, head, REC_HEAD, at);

		if (e)
			return e;
		if (get_u32(head) != REC_MAGIC ||
		    get_u32(head + REC_HEAD - 4) !=
			    hf_crc32c(0, head, REC_HEAD - 4))
			break;
		flags = get_u32(head + 4);
		c = get_u64(head + 8);
		len = get_u32(head + 16);
		if (flags & ~REC_ZERO || c >= p->nchunks ||
		    ((flags & REC_ZERO) ? len != 0
					: len != chunk_len(p->size, c)) ||
		    at + REC_HEAD + (off_t)len > st.st_size)
			break;
		if (len) {
			if ((e = full_pread(p->fd, buf, len, at + REC_HEAD)))
				return e;
			if (hf_crc32c(0, buf, len) != get_u32(head + 20))
				break;
		}
		if (!has(p, c)) {
			map_put(&p->map, c,
				len ? (int64_t)(at + REC_HEAD) : -1);
			set_has(p, c);
			p->chunks++;
		}
		at += REC_HEAD + (off_t)len;
		p->bytes += REC_HEAD + (int64_t)len;
	}
	p->end = at;
	/* A reader stops where a record is still being written. */
	if (repair && at != st.st_size &&
	    (ftruncate(p->fd, at) < 0 || fdatasync(p->fd) < 0))
		return errno;
	return 0;
}

static struct snap *load_one(const char *path, uint8_t *buf, bool repair,
			     char *err, size_t err_len)
{
	uint8_t h[HDR_SIZE];
	struct snap *p;
	char id[HF_VOL_ID_MAX + 1];
	int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW),
	    e;

	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((e = full_pread(fd, h, HDR_SIZE, 0)) ||
	    memcmp(h, HDR_MAGIC, 8) != 0 ||
	    get_u32(h + HDR_SIZE - 4) != hf_crc32c(0, h, HDR_SIZE - 4) ||
	    get_u32(h + 8) != HDR_VERSION ||
	    get_u32(h + 12) != HF_SNAP_CHUNK || h[40] == 0 ||
	    h[40] > HF_VOL_ID_MAX || (int64_t)get_u64(h + 24) <= 0) {
		snprintf(err, err_len, "%s: %s", path,
			 e ? strerror(e)
			   : "not a snapshot header (damaged or of another "
			     "format)");
		close(fd);
		return NULL;
	}
	memcpy(id, h + 41, h[40]);
	id[h[40]] = '\0';
	if (!hf_snap_id_ok(id)) {
		snprintf(err, err_len, "%s: the header's id is not valid",
			 path);
		close(fd);
		return NULL;
	}
	p = snap_new(id, get_u64(h + 16), (int64_t)get_u64(h + 24),
		     (int64_t)get_u64(h + 32));
	p->fd = fd;
	p->bytes = HDR_SIZE;
	if ((e = load_records(p, buf, repair))) {
		snprintf(err, err_len, "%s: %s", path, strerror(e));
		snap_free(p);
		return NULL;
	}
	return p;
}

static int by_seq(const void *a, const void *b)
{
	const struct snap *x = *(struct snap *const *)a;
	const struct snap *y = *(struct snap *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Loads the snapshot files of s->dir that s does not hold yet (all, at
 * open); a writer also drops unfinished takes. Returns 0 or -1 with err.
 */
static int scan_dir(struct hf_snaps *s, char *err, size_t err_len)
{
	struct dirent *d;
	DIR *dp = opendir(s->dir);

	if (!dp) {
		snprintf(err, err_len, "%s: %s", s->dir, strerror(errno));
		return -1;
	}
	while ((d = readdir(dp))) {
		size_t n = strlen(d->d_name);
		char *path;

		if (d->d_name[0] == '.')
			continue;
		path = hf_xasprintf("%s/%s", s->dir, d->d_name);
		if (n > 4 && strcmp(d->d_name + n - 4, ".new") == 0) {
			if (!s->reader)
				unlink(path); /* a take that did not finish */
		} else if (n > 4 && strcmp(d->d_name + n - 4, ".cow") == 0) {
			struct snap *p;
			char id[HF_VOL_ID_MAX + 1];
			bool known = false;

			snprintf(id, sizeof(id), "%.*s", (int)(n - 4),
				 d->d_name);
			for (size_t i = 0; i < s->n && !known; i++)
				known = strcmp(s->v[i]->id, id) == 0;
			if (known) {
				free(path);
				continue;
			}
			if (s->n == HF_SNAP_MAX) {
				snprintf(err, err_len,
					 "%s: more than %d snapshots", s->dir,
					 HF_SNAP_MAX);
				free(path);
				closedir(dp);
				return -1;
			}
			if (!(p = load_one(path, s->buf, !s->reader, err,
					   err_len))) {
				/* Deleted between readdir and open: gone. */
				bool gone = s->reader && access(path, F_OK) < 0;

				free(path);
				if (gone)
					continue;
				closedir(dp);
				return -1;
			}
			s->v[s->n++] = p;
		}
		free(path);
	}
	closedir(dp);
	qsort(s->v, s->n, sizeof(s->v[0]), by_seq);
	return 0;
}

struct hf_snaps *hf_snaps_open_reader(const char *dir, int data_fd, char *err,
				      size_t err_len)
{
	struct hf_snaps *s = hf_xcalloc(1, sizeof(*s));

	s->dir = hf_xasprintf("%s/snaps", dir);
	s->data_fd = data_fd;
	s->reader = true;
	s->buf = hf_xmalloc(HF_SNAP_CHUNK);
	pthread_rwlock_init(&s->lk, NULL);
	pthread_mutex_init(&s->cow, NULL);
	if (scan_dir(s, err, err_len)) {
		hf_snaps_close(s);
		return NULL;
	}
	return s;
}

/* A reader's view made current: new records, new snapshots. */
static int refresh(struct hf_snaps *s)
{
	char err[HF_VOL_ERR_MAX];
	int e = 0;

	for (size_t i = 0; i < s->n && !e; i++)
		e = load_records(s->v[i], s->buf, false);
	if (!e && scan_dir(s, err, sizeof(err)))
		e = EIO;
	return e;
}

struct hf_snaps *hf_snaps_open(const char *dir, int data_fd, char *err,
			       size_t err_len)
{
	struct hf_snaps *s = hf_xcalloc(1, sizeof(*s));
	struct dirent *d;
	DIR *dp;

	s->dir = hf_xasprintf("%s/snaps", dir);
	s->data_fd = data_fd;
	s->buf = hf_xmalloc(HF_SNAP_CHUNK);
	pthread_rwlock_init(&s->lk, NULL);
	pthread_mutex_init(&s->cow, NULL);
	if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "%s: %s", s->dir, strerror(errno));
		hf_snaps_close(s);
		return NULL;
	}
	if (!(dp = opendir(s->dir))) {
		snprintf(err, err_len, "%s: %s", s->dir, strerror(errno));
		hf_snaps_close(s);
		return NULL;
	}
	while ((d = readdir(dp))) {
		size_t n = strlen(d->d_name);
		char *path;

		if (d->d_name[0] == '.')
			continue;
		path = hf_xasprintf("%s/%s", s->dir, d->d_name);
		if (n > 4 && strcmp(d->d_name + n - 4, ".new") == 0) {
			unlink(path); /* a create that did not finish */
		} else if (n > 4 && strcmp(d->d_name + n - 4, ".cow") == 0) {
			struct snap *p;

			if (s->n == HF_SNAP_MAX) {
				snprintf(err, err_len,
					 "%s: more than %d snapshots", s->dir,
					 HF_SNAP_MAX);
				free(path);
				closedir(dp);
				hf_snaps_close(s);
				return NULL;
			}
			if (!(p = load_one(path, s->buf, true, err, err_len))) {
				free(path);
				closedir(dp);
				hf_snaps_close(s);
				return NULL;
			}
			s->v[s->n++] = p;
		}
		free(path);
	}
	closedir(dp);
	qsort(s->v, s->n, sizeof(s->v[0]), by_seq);
	return s;
}

void hf_snaps_close(struct hf_snaps *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		snap_free(s->v[i]);
	pthread_rwlock_destroy(&s->lk);
	pthread_mutex_destroy(&s->cow);
	free(s->buf);
	free(s->dir);
	free(s);
}

/* Copies chunk c of the data file into p (under cow). */
static int keep(struct hf_snaps *s, struct snap *p, uint64_t c)
{
	size_t len = chunk_len(p->size, c);
	int e = full_pread(s->data_fd, s->buf, len,
			   (off_t)(c * HF_SNAP_CHUNK));

	if (e)
		return e;
	return append(p, c, s->buf, len, all_zero(s->buf, len));
}

int hf_snaps_before_write(struct hf_snaps *s, uint64_t off, uint64_t len)
{
	struct snap *p;
	uint64_t first, last, kept[HF_VOL_DATA_MAX / HF_SNAP_CHUNK + 2];
	size_t nkept = 0;
	bool need = false;
	int e = 0;

	if (!s || len == 0)
		return 0;
	pthread_rwlock_rdlock(&s->lk);
	if (!s->n) {
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	p = s->v[s->n - 1];
	first = off / HF_SNAP_CHUNK;
	last = (off + len - 1) / HF_SNAP_CHUNK;
	if (last >= p->nchunks)
		last = p->nchunks - 1;
	for (uint64_t c = first; c <= last && first < p->nchunks; c++)
		if (!has(p, c)) {
			need = true;
			break;
		}
	if (!need) {
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	pthread_mutex_lock(&s->cow);
	for (uint64_t c = first; c <= last && !e; c++) {
		if (has(p, c))
			continue;
		if (nkept == sizeof(kept) / sizeof(kept[0])) {
			/* A long discard: make these durable, go on. */
			if (fdatasync(p->fd) < 0) {
				e = errno;
				break;
			}
			for (size_t i = 0; i < nkept; i++)
				set_has(p, kept[i]);
			nkept = 0;
		}
		if (!(e = keep(s, p, c)))
			kept[nkept++] = c;
	}
	/* Durable before any write may change these chunks. */
	if (nkept && fdatasync(p->fd) < 0 && !e)
		e = errno;
	if (!e)
		for (size_t i = 0; i < nkept; i++)
			set_has(p, kept[i]);
	pthread_mutex_unlock(&s->cow);
	pthread_rwlock_unlock(&s->lk);
	return e;
}

static struct snap *find(struct hf_snaps *s, const char *id, size_t *at)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->id, id) == 0) {
			if (at)
				*at = i;
			return s->v[i];
		}
	return NULL;
}

int hf_snaps_create(struct hf_snaps *s, const char *id, int64_t size)
{
	uint8_t h[HDR_SIZE];
	struct snap *p;
	char *path;
	int e = 0;

	if (!hf_snap_id_ok(id) || size <= 0)
		return EINVAL;
	pthread_rwlock_wrlock(&s->lk);
	if (find(s, id, NULL)) {
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	if (s->n == HF_SNAP_MAX) {
		pthread_rwlock_unlock(&s->lk);
		return ENOSPC;
	}
	p = snap_new(id, s->n ? s->v[s->n - 1]->seq + 1 : 1, size,
		     hf_now_ms());
	encode_header(p, h);
	path = hf_xasprintf("%s/%s.cow", s->dir, id);
	if (hf_write_file_atomic(path, h, sizeof(h), 0600))
		e = errno ? errno : EIO;
	else if ((p->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)) < 0)
		e = errno;
	free(path);
	if (e) {
		snap_free(p);
	} else {
		p->bytes = HDR_SIZE;
		s->v[s->n++] = p;
	}
	pthread_rwlock_unlock(&s->lk);
	return e;
}

/*
 * Moves the records of p from file offset *at on that o lacks into o
 * (under cow); *at ends past the last record read. Durable on return.
 */
static int merge(struct hf_snaps *s, struct snap *p, struct snap *o,
		 off_t *at)
{
	bool any = false;
	int e = 0;

	while (*at < p->end && !e) {
		uint8_t head[REC_HEAD];
		uint64_t c;
		uint32_t len;

		if ((e = full_pread(p->fd, head, REC_HEAD, *at)))
			break;
		c = get_u64(head + 8);
		len = get_u32(head + 16);
		if (c < o->nchunks && !has(o, c)) {
			size_t olen = chunk_len(o->size, c);

			if (len == 0) {
				e = append(o, c, NULL, 0, true);
			} else if (!(e = full_pread(p->fd, s->buf, len,
						    *at + REC_HEAD))) {
				e = append(o, c, s->buf, olen,
					   all_zero(s->buf, olen));
			}
			if (!e) {
				any = true;
				set_has(o, c);
			}
		}
		*at += REC_HEAD + (off_t)len;
	}
	if (any && fdatasync(o->fd) < 0 && !e)
		e = errno;
	return e;
}

int hf_snaps_delete(struct hf_snaps *s, const char *id)
{
	struct snap *p, *o;
	size_t i;
	off_t at = HDR_SIZE;
	char *path;
	int e = 0;

	/*
	 * First the bulk of the move with writes going on (a write that
	 * copies takes cow, so the list of records only grows at its end),
	 * then the rest with writes held, and the snapshot goes.
	 */
	pthread_rwlock_rdlock(&s->lk);
	if (!(p = find(s, id, &i))) {
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	o = i ? s->v[i - 1] : NULL;
	if (o) {
		pthread_mutex_lock(&s->cow);
		e = merge(s, p, o, &at);
		pthread_mutex_unlock(&s->cow);
	}
	pthread_rwlock_unlock(&s->lk);
	if (e)
		return e;
	pthread_rwlock_wrlock(&s->lk);
	if (!(p = find(s, id, &i))) { /* deleted meanwhile */
		pthread_rwlock_unlock(&s->lk);
		return 0;
	}
	o = i ? s->v[i - 1] : NULL;
	if (o && (e = merge(s, p, o, &at))) {
		pthread_rwlock_unlock(&s->lk);
		return e;
	}
	path = hf_xasprintf("%s/%s.cow", s->dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		e = errno;
	else
		e = fsync_dir(s->dir);
	free(path);
	if (!e) {
		snap_free(p);
		memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
		s->n--;
	}
	pthread_rwlock_unlock(&s->lk);
	return e;
}

size_t hf_snaps_list(struct hf_snaps *s, struct hf_snap_info *out, size_t max)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lk);
	pthread_mutex_lock(&s->cow);
	n = s->n;
	for (size_t i = 0; i < n && i < max; i++) {
		const struct snap *p = s->v[i];

		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].id, sizeof(out[i].id), "%s", p->id);
		out[i].seq = p->seq;
		out[i].size = p->size;
		out[i].created_ms = p->created_ms;
		out[i].bytes = p->bytes;
		out[i].chunks = p->chunks;
	}
	pthread_mutex_unlock(&s->cow);
	pthread_rwlock_unlock(&s->lk);
	return n;
}

int hf_snaps_read(struct hf_snaps *s, const char *id, uint64_t off,
		  uint8_t *buf, size_t len)
{
	struct snap *p;
	size_t i = 0;
	int e = 0;

	pthread_rwlock_rdlock(&s->lk);
	pthread_mutex_lock(&s->cow);
	if (!(p = find(s, id, &i)) && s->reader && !(e = refresh(s)))
		p = find(s, id, &i); /* taken since */
	if (!p && !e)
		e = ENOENT;
	else if (off + len > (uint64_t)p->size || off + len < off)
		e = EINVAL;
	while (!e && len) {
		uint64_t c = off / HF_SNAP_CHUNK;
		size_t in = (size_t)(off % HF_SNAP_CHUNK);
		size_t n = HF_SNAP_CHUNK - in, clen;
		size_t j;

		if (n > len)
			n = len;
		for (j = i; j < s->n && !has(s->v[j], c); j++)
			;
		if (j < s->n) {
			if (!(e = read_record(s->v[j], c, s->buf, &clen))) {
				if (in + n <= clen)
					memcpy(buf, s->buf + in, n);
				else
					e = EIO; /* a newer snapshot is smaller */
			}
		} else if (!(e = full_pread(s->data_fd, buf, n, (off_t)off)) &&
			   s->reader && !(e = refresh(s))) {
			/*
			 * The writer keeps a chunk's old bytes before it
			 * changes it: a record there now may mean the bytes
			 * just read are newer than the snapshot.
			 */
			for (j = i; j < s->n && !has(s->v[j], c); j++)
				;
			if (j < s->n &&
			    !(e = read_record(s->v[j], c, s->buf, &clen))) {
				if (in + n <= clen)
					memcpy(buf, s->buf + in, n);
				else
					e = EIO;
			}
		}
		buf += n;
		off += n;
		len -= n;
	}
	pthread_mutex_unlock(&s->cow);
	pthread_rwlock_unlock(&s->lk);
	return e;
}

int hf_snaps_changed(struct hf_snaps *s, const char *id, uint64_t c)
{
	size_t i = 0;
	int r = 0;

	pthread_rwlock_rdlock(&s->lk);
	if (!find(s, id, &i))
		r = -1;
	for (size_t j = i; r == 0 && j < s->n; j++)
		if (has(s->v[j], c))
			r = 1;
	pthread_rwlock_unlock(&s->lk);
	return r;
}

int hf_snaps_restore(struct hf_snaps *s, const char *id, int64_t *bytes)
{
	uint8_t *buf = hf_xmalloc(HF_SNAP_CHUNK);
	int64_t size = -1, n = 0;
	int e = 0;

	pthread_rwlock_rdlock(&s->lk);
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->id, id) == 0)
			size = s->v[i]->size;
	pthread_rwlock_unlock(&s->lk);
	if (size < 0)
		e = ENOENT;
	/*
	 * Chunk by chunk: what some snapshot from id on kept is what changed
	 * since; the rest still holds id's bytes. Each write copies first,
	 * as any write does, so newer snapshots keep theirs.
	 */
	for (uint64_t c = 0; !e && c * HF_SNAP_CHUNK < (uint64_t)size; c++) {
		size_t len = chunk_len(size, c);
		off_t off = (off_t)(c * HF_SNAP_CHUNK);
		ssize_t w;

		if (hf_snaps_changed(s, id, c) != 1)
			continue;
		if ((e = hf_snaps_read(s, id, (uint64_t)off, buf, len)) ||
		    (e = hf_snaps_before_write(s, (uint64_t)off, len)))
			break;
		if (all_zero(buf, len)) {
			if (fallocate(s->data_fd,
				      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      off, (off_t)len) < 0)
				e = errno;
		} else {
			do
				w = pwrite(s->data_fd, buf, len, off);
			while (w < 0 && errno == EINTR);
			if (w != (ssize_t)len)
				e = w < 0 ? errno : EIO;
		}
		n += (int64_t)len;
	}
	if (!e && fdatasync(s->data_fd) < 0)
		e = errno;
	free(buf);
	if (bytes)
		*bytes = n;
	return e;
}

int hf_snaps_changed_since(struct hf_snaps *s, const char *base,
			   const char *id, uint64_t c)
{
	size_t a = 0, b = 0;
	int r = 0;

	pthread_rwlock_rdlock(&s->lk);
	pthread_mutex_lock(&s->cow);
	if ((!find(s, base, &a) || !find(s, id, &b)) && s->reader &&
	    !refresh(s)) {
		find(s, base, &a);
		find(s, id, &b);
	}
	if (!find(s, base, &a) || !find(s, id, &b) || a >= b)
		r = -1;
	/* A record in a snapshot from base up to id: written in between. */
	for (size_t j = a; r == 0 && j < b; j++)
		if (has(s->v[j], c))
			r = 1;
	pthread_mutex_unlock(&s->cow);
	pthread_rwlock_unlock(&s->lk);
	return r;
}
