/*
 * replica.c - a replica's data and metadata files (replica.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/util.h"
#include "volume/replica.h"

HF_PRINTF(3, 4)
static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

static int write_meta(struct hf_replica *r, const struct hf_vol_meta *m)
{
	uint8_t block[HF_VOL_META_SIZE];
	char why[HF_VOL_ERR_MAX];
	char *path = hf_xasprintf("%s/meta", r->dir);
	int rc = 0;

	if (hf_vol_meta_encode(m, block, why))
		rc = -EINVAL;
	else if (hf_write_file_atomic(path, block, sizeof(block), 0600))
		rc = errno ? -errno : -EIO;
	free(path);
	return rc;
}

/*
 * A new data generation for m: random, so that a primary that kept what
 * this replica missed (docs/design/volumes.md §5.3) can tell it from a
 * replica made again empty under the same id. The old one goes to the
 * history (its data is not this one's). Left as it was when the system
 * gives no random bytes.
 */
static void new_generation(struct hf_vol_meta *m)
{
	struct hf_vol_gen g;

	if (getrandom(g.b, sizeof(g.b), 0) != (ssize_t)sizeof(g.b) ||
	    hf_vol_gen_is_zero(&g))
		return;
	if (!hf_vol_gen_is_zero(&m->gens.current)) {
		memmove(&m->gens.history[1], &m->gens.history[0],
			(HF_VOL_GEN_HISTORY - 1) * sizeof(m->gens.history[0]));
		m->gens.history[0] = m->gens.current;
	}
	m->gens.current = g;
}

/*
 * The replica's meta: made when missing; a data file made just now
 * (fresh) or a meta without a data generation gets a new one.
 */
static int load_meta(struct hf_replica *r, bool fresh, char *err, size_t n)
{
	char *path = hf_xasprintf("%s/meta", r->dir), *text = NULL;
	char why[HF_VOL_ERR_MAX];
	size_t len = 0;
	int rc = hf_read_file(path, HF_VOL_META_SIZE + 1, &text, &len);
	struct hf_vol_meta *m = &r->meta;

	if (rc == HF_ENOTFOUND) {
		memset(m, 0, sizeof(*m));
		m->flags = HF_VOL_F_CONSISTENT;
		m->size = (uint64_t)r->size;
		snprintf(m->volume_id, sizeof(m->volume_id), "%s",
			 r->volume_id);
		snprintf(m->replica_id, sizeof(m->replica_id), "%s",
			 r->replica_id);
		snprintf(m->name, sizeof(m->name), "%s", r->name);
		new_generation(m);
		if ((rc = write_meta(r, m)))
			rc = fail(err, n, "%s: cannot write it: %s", path,
				  strerror(-rc));
		goto out;
	}
	if (rc) {
		rc = fail(err, n, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (hf_vol_meta_decode((const uint8_t *)text, len, m, why)) {
		rc = fail(err, n, "%s: %s", path, why);
		goto out;
	}
	if (strcmp(m->volume_id, r->volume_id) ||
	    strcmp(m->replica_id, r->replica_id) ||
	    m->size > (uint64_t)r->size) {
		rc = fail(err, n,
			  "%s belongs to volume %s replica %s of %llu bytes, "
			  "not to volume %s replica %s of %lld bytes",
			  path, m->volume_id, m->replica_id,
			  (unsigned long long)m->size, r->volume_id,
			  r->replica_id, (long long)r->size);
		goto out;
	}
	if (fresh || hf_vol_gen_is_zero(&m->gens.current) ||
	    m->size < (uint64_t)r->size) {
		/* A grown volume: the data file is already its new size. */
		struct hf_vol_meta g = *m;

		g.size = (uint64_t)r->size;
		if (fresh || hf_vol_gen_is_zero(&m->gens.current))
			new_generation(&g);
		if ((rc = write_meta(r, &g))) {
			rc = fail(err, n, "%s: cannot write it: %s", path,
				  strerror(-rc));
			goto out;
		}
		*m = g;
	}
	rc = 0;
out:
	free(text);
	free(path);
	return rc;
}

int hf_replica_open(struct hf_replica *r, const char *pool, char *err,
		    size_t n)
{
	struct stat st;
	char *data;
	int rc = -1;

	r->fd = r->al_fd = -1;
	pthread_mutex_init(&r->mu, NULL);
	r->dir = hf_xasprintf("%s/replicas/%s/%s", pool, r->volume_id,
			      r->replica_id);
	if (hf_fs_mkdir_p(r->dir, 0700, 0700))
		return fail(err, n, "%s: cannot make it: %s", r->dir,
			    strerror(errno));
	data = hf_xasprintf("%s/data", r->dir);
	r->fd = open(data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (r->fd < 0 || fstat(r->fd, &st) < 0) {
		fail(err, n, "%s: %s", data, strerror(errno));
		goto out;
	}
	if (st.st_size == 0) {
		/* A data file made anew: an activity log before it is void. */
		char *al = hf_xasprintf("%s/al", r->dir);

		unlink(al);
		free(al);
	}
	if (st.st_size == 0 && ftruncate(r->fd, r->size) < 0) {
		fail(err, n, "%s: cannot make it %lld bytes: %s", data,
		     (long long)r->size, strerror(errno));
		goto out;
	}
	if (st.st_size > r->size) {
		fail(err, n, "%s is %lld bytes, more than the volume's %lld "
			     "(volumes never shrink)",
		     data, (long long)st.st_size, (long long)r->size);
		goto out;
	}
	/*
	 * The volume grew while this replica was closed: the data file
	 * first (sparse), then meta says so (load_meta), so a crash between
	 * leaves a larger file under a meta of the old size, which the next
	 * open finishes the same way.
	 */
	if (st.st_size != 0 && st.st_size < r->size &&
	    (ftruncate(r->fd, r->size) < 0 || fdatasync(r->fd) < 0)) {
		fail(err, n, "%s: cannot grow it to %lld bytes: %s", data,
		     (long long)r->size, strerror(errno));
		goto out;
	}
	if (load_meta(r, st.st_size == 0, err, n))
		goto out;
	__atomic_store_n(&r->epoch, r->meta.epoch, __ATOMIC_RELEASE);
	rc = 0;
out:
	free(data);
	return rc;
}

int hf_replica_raise_epoch(struct hf_replica *r, uint64_t epoch)
{
	struct hf_vol_meta m;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (epoch > r->meta.epoch) {
		m = r->meta;
		m.epoch = epoch;
		if (!(rc = write_meta(r, &m))) {
			r->meta = m;
			__atomic_store_n(&r->epoch, epoch, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int hf_replica_grow(struct hf_replica *r, int64_t size)
{
	struct hf_vol_meta m;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (size > __atomic_load_n(&r->size, __ATOMIC_ACQUIRE)) {
		if (ftruncate(r->fd, size) < 0 || fdatasync(r->fd) < 0) {
			rc = -errno;
		} else {
			m = r->meta;
			m.size = (uint64_t)size;
			if (!(rc = write_meta(r, &m))) {
				r->meta = m;
				__atomic_store_n(&r->size, size,
						 __ATOMIC_RELEASE);
			}
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

uint64_t hf_replica_epoch(struct hf_replica *r)
{
	return __atomic_load_n(&r->epoch, __ATOMIC_ACQUIRE);
}

void hf_replica_release(struct hf_replica *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->al_fd >= 0)
		close(r->al_fd);
	r->fd = r->al_fd = -1;
	if (r->dir)
		pthread_mutex_destroy(&r->mu);
	free(r->volume_id);
	free(r->replica_id);
	free(r->name);
	free(r->dir);
	explicit_bzero(r->key, sizeof(r->key));
}

int hf_vol_al_load(int fd, struct hf_vol_al *a)
{
	uint8_t *buf = hf_xmalloc(HF_VOL_AL_SLOT);
	struct hf_vol_al *b = hf_xmalloc(sizeof(*b));
	char err[HF_VOL_ERR_MAX];
	bool have = false;

	for (int slot = 0; slot < 2; slot++) {
		if (pread(fd, buf, HF_VOL_AL_SLOT,
			  (off_t)slot * HF_VOL_AL_SLOT) != HF_VOL_AL_SLOT ||
		    hf_vol_al_decode(buf, HF_VOL_AL_SLOT, b, err))
			continue;
		if (!have || b->epoch > a->epoch ||
		    (b->epoch == a->epoch && b->seq > a->seq))
			*a = *b;
		have = true;
	}
	free(b);
	free(buf);
	return have ? 0 : -1;
}

int hf_vol_al_store(int fd, const struct hf_vol_al *a)
{
	uint8_t *buf = hf_xmalloc(HF_VOL_AL_SLOT);
	char err[HF_VOL_ERR_MAX];
	int rc = 0;

	if (hf_vol_al_encode(a, buf, err))
		rc = -EINVAL;
	else if (pwrite(fd, buf, HF_VOL_AL_SLOT,
			(off_t)(a->seq & 1) * HF_VOL_AL_SLOT) != HF_VOL_AL_SLOT)
		rc = errno ? -errno : -EIO;
	else if (fdatasync(fd) < 0)
		rc = -errno;
	free(buf);
	return rc;
}

int hf_replica_store_al(struct hf_replica *r, struct hf_vol_al *a)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	if (a->epoch != r->meta.epoch) {
		rc = -ESTALE;
	} else {
		if (r->al_fd < 0) {
			char *path = hf_xasprintf("%s/al", r->dir);
			struct hf_vol_al *old = hf_xmalloc(sizeof(*old));

			r->al_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC |
						      O_NOFOLLOW,
					0600);
			free(path);
			r->al_seq = r->al_fd >= 0 &&
					    hf_vol_al_load(r->al_fd, old) == 0
					? old->seq
					: 0;
			free(old);
		}
		if (r->al_fd < 0) {
			rc = -errno;
		} else {
			a->seq = ++r->al_seq;
			rc = hf_vol_al_store(r->al_fd, a);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int hf_replica_mark_get(struct hf_replica *r, uint64_t *seq,
			uint64_t *time_ns)
{
	return hf_replica_mark_read(r, seq, time_ns, NULL);
}

int hf_replica_mark_read(struct hf_replica *r, uint64_t *seq,
			 uint64_t *time_ns, bool *final)
{
	char *path = hf_xasprintf("%s/mark", r->dir);
	uint8_t b[24];
	uint32_t crc, flags;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	free(path);
	*seq = *time_ns = 0;
	if (final)
		*final = false;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n == 24) { /* seq, time, flags, CRC of the 20 */
		memcpy(&crc, b + 20, 4);
		if (crc != hf_crc32c(0, b, 20))
			return 0;
		memcpy(&flags, b + 16, 4);
		if (final)
			*final = flags & HF_MARK_FINAL;
	} else if (n == 20) { /* before flags: seq, time, CRC of the 16 */
		memcpy(&crc, b + 16, 4);
		if (crc != hf_crc32c(0, b, 16))
			return 0;
	} else {
		return 0;
	}
	memcpy(seq, b, 8);
	memcpy(time_ns, b + 8, 8);
	return 0;
}

int hf_replica_mark_put(struct hf_replica *r, uint64_t seq,
			uint64_t time_ns, unsigned flags)
{
	char *path;
	uint8_t b[24];
	uint32_t crc;
	int fd, rc = 0;

	if (fdatasync(r->fd) < 0)
		return -errno;
	flags &= HF_MARK_FINAL;
	memcpy(b, &seq, 8);
	memcpy(b + 8, &time_ns, 8);
	memcpy(b + 16, &flags, 4);
	crc = hf_crc32c(0, b, 20);
	memcpy(b + 20, &crc, 4);
	path = hf_xasprintf("%s/mark", r->dir);
	pthread_mutex_lock(&r->mu);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || pwrite(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
	    fdatasync(fd) < 0)
		rc = errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&r->mu);
	free(path);
	return rc;
}
