/*
 * test_volsnap.c - a replica's copy-on-write snapshots (src/volume/snap.h)
 * against a model: random writes, discards, snapshots taken and deleted,
 * the store closed and opened again, the volume grown; every snapshot
 * must read back exactly the bytes the data file held when it was taken.
 * Then a torn record at a file's end, and refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "volume/snap.h"

#define BLK 4096
#define MAXV 12

struct model {
	char dir[64];
	int fd;
	int64_t size;
	uint8_t *now;          /* what the data file holds */
	char ids[MAXV][16];
	uint8_t *img[MAXV];    /* each snapshot's bytes */
	int64_t isize[MAXV];
	int n;
	unsigned seed;
};

static unsigned rnd(struct model *m)
{
	m->seed = m->seed * 1103515245u + 12345u;
	return m->seed >> 8;
}

static void setup_model(struct model *m, int64_t size)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "/tmp/hf-snap-XXXXXX");
	assert_non_null(mkdtemp(m->dir));
	char *path = hf_xasprintf("%s/data", m->dir);
	m->fd = open(path, O_RDWR | O_CREAT, 0600);
	free(path);
	assert_true(m->fd >= 0);
	assert_int_equal(ftruncate(m->fd, size), 0);
	m->size = size;
	m->now = calloc(1, (size_t)size);
	m->seed = 7;
}

static void teardown_model(struct model *m)
{
	char *cmd = hf_xasprintf("rm -rf %s", m->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	close(m->fd);
	free(m->now);
	for (int i = 0; i < m->n; i++)
		free(m->img[i]);
}

static void do_write(struct model *m, struct hf_snaps *s)
{
	uint64_t blocks = (uint64_t)m->size / BLK;
	uint64_t b = rnd(m) % blocks, nb = 1 + rnd(m) % 40;
	bool discard = rnd(m) % 5 == 0;

	if (b + nb > blocks)
		nb = blocks - b;
	assert_int_equal(hf_snaps_before_write(s, b * BLK, nb * BLK), 0);
	if (discard) {
		assert_int_equal(fallocate(m->fd, FALLOC_FL_PUNCH_HOLE |
						  FALLOC_FL_KEEP_SIZE,
					   (off_t)(b * BLK), (off_t)(nb * BLK)),
				 0);
		memset(m->now + b * BLK, 0, nb * BLK);
	} else {
		uint8_t v = (uint8_t)(1 + rnd(m) % 250);

		memset(m->now + b * BLK, v, nb * BLK);
		for (uint64_t i = 0; i < nb * BLK; i += 997)
			m->now[b * BLK + i] = (uint8_t)rnd(m);
		assert_int_equal(pwrite(m->fd, m->now + b * BLK, nb * BLK,
					(off_t)(b * BLK)),
				 (ssize_t)(nb * BLK));
	}
}

/*
 * Every snapshot reads back as it was taken, through s; and through
 * reader (a read-only store opened once, long ago, beside the writer:
 * snapshots taken and deleted since, records appended since), if given.
 */
static void check_all_with(struct model *m, struct hf_snaps *s,
			   struct hf_snaps *reader);

static void check_all(struct model *m, struct hf_snaps *s)
{
	check_all_with(m, s, NULL);
}

static void check_all_with(struct model *m, struct hf_snaps *s,
			   struct hf_snaps *reader)
{
	struct hf_snap_info info[HF_SNAP_MAX];
	uint8_t *buf = malloc((size_t)m->size);

	assert_int_equal(hf_snaps_list(s, info, HF_SNAP_MAX), (size_t)m->n);
	for (int i = 0; i < m->n; i++) {
		assert_string_equal(info[i].id, m->ids[i]);
		assert_int_equal(info[i].size, m->isize[i]);
		if (reader) {
			memset(buf, 0xee, (size_t)m->size);
			assert_int_equal(hf_snaps_read(reader, m->ids[i], 0, buf,
						       (size_t)m->isize[i]),
					 0);
			if (memcmp(buf, m->img[i], (size_t)m->isize[i]) != 0)
				fail_msg("the reader's %s differs", m->ids[i]);
		}
		memset(buf, 0xee, (size_t)m->size);
		/* in pieces that cross chunks */
		for (int64_t off = 0; off < m->isize[i];) {
			int64_t n = 3 * BLK + 4096 * (int64_t)(rnd(m) % 40);

			if (off + n > m->isize[i])
				n = m->isize[i] - off;
			assert_int_equal(hf_snaps_read(s, m->ids[i],
						       (uint64_t)off,
						       buf + off, (size_t)n),
					 0);
			off += n;
		}
		if (memcmp(buf, m->img[i], (size_t)m->isize[i]) != 0) {
			for (int64_t k = 0; k < m->isize[i]; k++)
				if (buf[k] != m->img[i][k])
					fail_msg("snapshot %s differs at %lld",
						 m->ids[i], (long long)k);
		}
	}
	free(buf);
}

static void take(struct model *m, struct hf_snaps *s, int k)
{
	snprintf(m->ids[m->n], sizeof(m->ids[m->n]), "s%d", k);
	assert_int_equal(hf_snaps_create(s, m->ids[m->n], m->size), 0);
	m->img[m->n] = malloc((size_t)m->size);
	memcpy(m->img[m->n], m->now, (size_t)m->size);
	m->isize[m->n] = m->size;
	m->n++;
}

static void drop(struct model *m, struct hf_snaps *s, int i)
{
	assert_int_equal(hf_snaps_delete(s, m->ids[i]), 0);
	free(m->img[i]);
	memmove(&m->ids[i], &m->ids[i + 1], (size_t)(m->n - i - 1) * 16);
	memmove(&m->img[i], &m->img[i + 1],
		(size_t)(m->n - i - 1) * sizeof(m->img[0]));
	memmove(&m->isize[i], &m->isize[i + 1],
		(size_t)(m->n - i - 1) * sizeof(m->isize[0]));
	m->n--;
}

static struct hf_snaps *reopen(struct model *m, struct hf_snaps *s)
{
	char err[256];

	hf_snaps_close(s);
	s = hf_snaps_open(m->dir, m->fd, err, sizeof(err));
	if (!s)
		fail_msg("open: %s", err);
	return s;
}

static void test_model(void **state)
{
	struct model m;
	struct hf_snaps *s, *reader;
	char err[256], *path;
	int k = 0, rfd;

	/* not a multiple of the chunk: the last chunk is short */
	setup_model(&m, 4 * 1024 * 1024 + 3 * BLK);
	s = hf_snaps_open(m.dir, m.fd, err, sizeof(err));
	assert_non_null(s);
	path = hf_xasprintf("%s/data", m.dir);
	rfd = open(path, O_RDONLY);
	free(path);
	assert_true(rfd >= 0);
	reader = hf_snaps_open_reader(m.dir, rfd, err, sizeof(err));
	assert_non_null(reader);
	for (int round = 0; round < 400; round++) {
		unsigned op = rnd(&m) % 100;

		if (op < 70)
			do_write(&m, s);
		else if (op < 80 && m.n < MAXV)
			take(&m, s, k++);
		else if (op < 88 && m.n)
			drop(&m, s, (int)(rnd(&m) % (unsigned)m.n));
		else if (op < 92)
			s = reopen(&m, s);
		else if (op < 93 && m.size < 6 * 1024 * 1024) {
			/* the volume grows: older snapshots keep their size */
			int64_t nsize = m.size + 5 * BLK;

			assert_int_equal(ftruncate(m.fd, nsize), 0);
			m.now = realloc(m.now, (size_t)nsize);
			memset(m.now + m.size, 0, (size_t)(nsize - m.size));
			m.size = nsize;
		} else {
			check_all_with(&m, s, reader);
		}
	}
	check_all_with(&m, s, reader);
	hf_snaps_close(reader);
	close(rfd);
	s = reopen(&m, s);
	check_all(&m, s);
	while (m.n)
		drop(&m, s, 0);
	check_all(&m, s);
	hf_snaps_close(s);
	teardown_model(&m);
}

static void test_torn_tail_and_refusals(void **state)
{
	struct model m;
	struct hf_snaps *s;
	struct hf_snap_info info[2];
	char err[256], *path;
	uint8_t junk[100];
	int fd;

	setup_model(&m, 1024 * 1024);
	s = hf_snaps_open(m.dir, m.fd, err, sizeof(err));
	assert_non_null(s);
	take(&m, s, 1);
	do_write(&m, s);
	do_write(&m, s);
	assert_int_equal(hf_snaps_list(s, info, 2), 1);
	hf_snaps_close(s);
	/* a record cut short by a crash: dropped, the rest reads on */
	path = hf_xasprintf("%s/snaps/s1.cow", m.dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	memset(junk, 0x5a, sizeof(junk));
	memcpy(junk, "HFSR", 4);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	s = hf_snaps_open(m.dir, m.fd, err, sizeof(err));
	assert_non_null(s);
	check_all(&m, s);
	assert_int_equal(hf_snaps_list(s, info, 2), 1);
	assert_true(info[0].chunks >= 1);
	/* an unfinished create goes; bad ids and missing snapshots */
	hf_snaps_close(s);
	free(path);
	path = hf_xasprintf("%s/snaps/s9.cow.new", m.dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	s = hf_snaps_open(m.dir, m.fd, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(hf_snaps_create(s, "../x", m.size), EINVAL);
	assert_int_equal(hf_snaps_create(s, "", m.size), EINVAL);
	assert_int_equal(hf_snaps_create(s, "s1", m.size), 0); /* exists */
	assert_int_equal(hf_snaps_read(s, "nope", 0, junk, 16), ENOENT);
	assert_int_equal(hf_snaps_read(s, "s1", (uint64_t)m.size - 8, junk, 16),
			 EINVAL);
	assert_int_equal(hf_snaps_delete(s, "nope"), 0);
	assert_int_equal(hf_snaps_changed(s, "nope", 0), -1);
	hf_snaps_close(s);
	/* a damaged header is refused by name */
	free(path);
	path = hf_xasprintf("%s/snaps/s1.cow", m.dir);
	fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, "XX", 2, 0), 2);
	close(fd);
	assert_null(hf_snaps_open(m.dir, m.fd, err, sizeof(err)));
	assert_non_null(strstr(err, "s1.cow"));
	free(path);
	teardown_model(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_torn_tail_and_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
