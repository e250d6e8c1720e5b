/*
 * spool.c - a standby replica's spool of held-back writes (spool.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "volume/spool.h"
#include "volume/volume.h"

#define SP_MAGIC 0x50534648u /* "HFSP" */
#define SP_HDR 40
#define SP_WRITE 1
#define SP_TRIM 2
#define POS_SLOT 16 /* u64 offset, u32 generation, u32 CRC-32C; two slots */

struct hf_spool {
	int fd, pos_fd, data_fd;
	uint64_t size;    /* the volume's */
	uint64_t applied; /* offset: records before it are applied */
	uint64_t end;     /* offset: where the next record goes */
	uint32_t pos_gen; /* spool.pos: the newer slot's generation */
	int64_t first_time;
	uint8_t *buf;     /* HF_VOL_DATA_MAX */
};

struct sp_rec {
	uint32_t type;
	uint64_t off, len;
	int64_t time;
	uint32_t crc;  /* as stored */
	uint32_t hcrc; /* CRC-32C of the header's first 32 bytes */
};

static int full_io(int fd, bool wr, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t k = wr ? pwrite(fd, p, n, (off_t)off)
			       : pread(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return -EIO; /* short: past the end */
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static void head_encode(uint8_t *b, const struct sp_rec *r,
			const uint8_t *data)
{
	uint32_t magic = SP_MAGIC, crc, zero = 0;

	memcpy(b, &magic, 4);
	memcpy(b + 4, &r->type, 4);
	memcpy(b + 8, &r->off, 8);
	memcpy(b + 16, &r->len, 8);
	memcpy(b + 24, &r->time, 8);
	crc = hf_crc32c(0, b, 32);
	if (data)
		crc = hf_crc32c(crc, data, r->len);
	memcpy(b + 32, &crc, 4);
	memcpy(b + 36, &zero, 4);
}

/* The record header at pos, checked but for the data; false: none. */
static bool head_read(struct hf_spool *p, uint64_t pos, struct sp_rec *r)
{
	uint8_t b[SP_HDR];
	uint32_t magic, zero;

	if (pos + SP_HDR > p->end || full_io(p->fd, false, b, SP_HDR, pos))
		return false;
	memcpy(&magic, b, 4);
	memcpy(&r->type, b + 4, 4);
	memcpy(&r->off, b + 8, 8);
	memcpy(&r->len, b + 16, 8);
	memcpy(&r->time, b + 24, 8);
	memcpy(&r->crc, b + 32, 4);
	memcpy(&zero, b + 36, 4);
	if (magic != SP_MAGIC || zero ||
	    (r->type != SP_WRITE && r->type != SP_TRIM) || !r->len ||
	    r->len % HF_VOL_REGION_SIZE || r->off % HF_VOL_REGION_SIZE ||
	    (r->type == SP_WRITE && r->len > HF_VOL_DATA_MAX))
		return false;
	if (r->type == SP_WRITE && pos + SP_HDR + r->len > p->end)
		return false;
	r->hcrc = hf_crc32c(0, b, 32);
	return r->type == SP_WRITE || r->crc == r->hcrc;
}

static uint64_t rec_len(const struct sp_rec *r)
{
	return SP_HDR + (r->type == SP_WRITE ? r->len : 0);
}

/* Whether a write's data is what its record's CRC says. */
static bool data_ok(const struct sp_rec *r, const uint8_t *data)
{
	return hf_crc32c(r->hcrc, data, r->len) == r->crc;
}

static int pos_write(struct hf_spool *p, uint64_t off)
{
	uint8_t b[POS_SLOT];
	uint32_t gen = p->pos_gen + 1, crc;

	memcpy(b, &off, 8);
	memcpy(b + 8, &gen, 4);
	crc = hf_crc32c(0, b, 12);
	memcpy(b + 12, &crc, 4);
	if (full_io(p->pos_fd, true, b, POS_SLOT, (gen & 1) * POS_SLOT) ||
	    fdatasync(p->pos_fd) < 0)
		return errno ? -errno : -EIO;
	p->pos_gen = gen;
	return 0;
}

static void pos_read(struct hf_spool *p)
{
	bool any = false;

	p->applied = 0;
	p->pos_gen = 0;
	for (int i = 0; i < 2; i++) {
		uint8_t b[POS_SLOT];
		uint64_t off;
		uint32_t gen, crc;

		if (full_io(p->pos_fd, false, b, POS_SLOT, (uint64_t)i * POS_SLOT))
			continue;
		memcpy(&off, b, 8);
		memcpy(&gen, b + 8, 4);
		memcpy(&crc, b + 12, 4);
		if (crc != hf_crc32c(0, b, 12) || (any && gen < p->pos_gen))
			continue;
		any = true;
		p->applied = off;
		p->pos_gen = gen;
	}
}

/* Walks the records after the applied offset; the first that does not
 * check ends the spool. */
static void scan(struct hf_spool *p)
{
	uint64_t pos = p->applied;
	struct sp_rec r;

	p->first_time = 0;
	while (head_read(p, pos, &r)) {
		if (r.type == SP_WRITE &&
		    (full_io(p->fd, false, p->buf, r.len, pos + SP_HDR) ||
		     !data_ok(&r, p->buf)))
			break;
		if (!p->first_time)
			p->first_time = r.time ? r.time : 1;
		pos += rec_len(&r);
	}
	p->end = pos;
}

struct hf_spool *hf_spool_open(const char *dir, int data_fd, uint64_t size,
			       char *err, size_t err_len)
{
	struct hf_spool *p = hf_xcalloc(1, sizeof(*p));
	char *path = hf_xasprintf("%s/spool", dir);
	char *ppath = hf_xasprintf("%s/spool.pos", dir);
	struct stat st;

	p->data_fd = data_fd;
	p->size = size;
	p->pos_fd = -1;
	p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->fd < 0 || fstat(p->fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		goto fail;
	}
	p->pos_fd = open(ppath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			 0600);
	if (p->pos_fd < 0) {
		snprintf(err, err_len, "%s: %s", ppath, strerror(errno));
		goto fail;
	}
	p->buf = hf_xmalloc(HF_VOL_DATA_MAX);
	pos_read(p);
	p->end = (uint64_t)st.st_size;
	if (p->applied > p->end)
		p->applied = p->end; /* emptied, and stopped before saying so */
	scan(p);
	if (p->end < (uint64_t)st.st_size && ftruncate(p->fd, (off_t)p->end)) {
		snprintf(err, err_len, "%s: cannot cut its torn tail: %s", path,
			 strerror(errno));
		goto fail;
	}
	free(path);
	free(ppath);
	return p;
fail:
	free(path);
	free(ppath);
	hf_spool_close(p);
	return NULL;
}

int hf_spool_add(struct hf_spool *p, bool trim, uint64_t off, uint64_t len,
		 int64_t time_ns, const uint8_t *data)
{
	struct sp_rec r = {trim ? SP_TRIM : SP_WRITE, off, len, time_ns, 0, 0};
	uint8_t b[SP_HDR];
	int rc;

	if (!len || len % HF_VOL_REGION_SIZE || off % HF_VOL_REGION_SIZE ||
	    (!trim && (!data || len > HF_VOL_DATA_MAX)) || off > p->size ||
	    len > p->size - off)
		return -EINVAL;
	head_encode(b, &r, trim ? NULL : data);
	if ((rc = full_io(p->fd, true, b, SP_HDR, p->end)) ||
	    (!trim && (rc = full_io(p->fd, true, (void *)data, len,
				    p->end + SP_HDR))))
		return rc; /* the tail is not counted: overwritten next */
	if (p->end == p->applied)
		p->first_time = time_ns ? time_ns : 1;
	p->end += SP_HDR + (trim ? 0 : len);
	return 0;
}

int hf_spool_sync(struct hf_spool *p)
{
	return fdatasync(p->fd) < 0 ? -errno : 0;
}

/* After an apply: the space before pos back to the file system. */
static void release(struct hf_spool *p)
{
	uint64_t upto = p->applied & ~(uint64_t)(HF_VOL_REGION_SIZE - 1);

	if (p->applied == p->end) {
		/* All applied: the spool starts over (then the offset). */
		if (ftruncate(p->fd, 0) == 0 && pos_write(p, 0) == 0) {
			p->applied = p->end = 0;
			p->first_time = 0;
		}
		return;
	}
	if (upto)
		(void)fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				0, (off_t)upto);
}

int hf_spool_apply(struct hf_spool *p, int64_t cut_ns, bool all,
		   uint64_t *n)
{
	uint64_t pos = p->applied, count = 0;
	struct sp_rec r;
	int rc = 0;

	while (pos < p->end) {
		if (!head_read(p, pos, &r)) {
			rc = -EBADMSG;
			break;
		}
		if (!all && r.time >= cut_ns) {
			p->first_time = r.time ? r.time : 1;
			break;
		}
		if (r.off > p->size || r.len > p->size - r.off) {
			rc = -ERANGE;
			break;
		}
		if (r.type == SP_WRITE) {
			if ((rc = full_io(p->fd, false, p->buf, r.len,
					  pos + SP_HDR)))
				break;
			if (!data_ok(&r, p->buf)) {
				rc = -EBADMSG;
				break;
			}
			if ((rc = full_io(p->data_fd, true, p->buf, r.len,
					  r.off)))
				break;
		} else if (fallocate(p->data_fd,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     (off_t)r.off, (off_t)r.len) < 0) {
			rc = -errno;
			break;
		}
		pos += rec_len(&r);
		count++;
	}
	if (pos == p->end)
		p->first_time = 0;
	if (n)
		*n = count;
	if (pos == p->applied)
		return rc;
	/* Durable in the data file before the offset says so. */
	if (fdatasync(p->data_fd) < 0)
		return -errno;
	{
		int e = pos_write(p, pos);

		if (e)
			return e;
	}
	p->applied = pos;
	release(p);
	return rc;
}

uint64_t hf_spool_pending(const struct hf_spool *p)
{
	return p->end - p->applied;
}

int64_t hf_spool_first_time(const struct hf_spool *p)
{
	return p->end > p->applied ? p->first_time : 0;
}

void hf_spool_grow(struct hf_spool *p, uint64_t size)
{
	if (size > p->size)
		p->size = size;
}

void hf_spool_close(struct hf_spool *p)
{
	if (!p)
		return;
	if (p->fd >= 0)
		close(p->fd);
	if (p->pos_fd >= 0)
		close(p->pos_fd);
	free(p->buf);
	free(p);
}

int hf_spool_remove(const char *dir)
{
	char *path = hf_xasprintf("%s/spool", dir);
	char *ppath = hf_xasprintf("%s/spool.pos", dir);
	int rc = 0;

	if (unlink(path) < 0 && errno != ENOENT)
		rc = -errno;
	if (unlink(ppath) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	free(path);
	free(ppath);
	return rc;
}
