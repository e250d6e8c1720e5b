/*
 * test_spool.c - a standby replica's spool (src/volume/spool.h) against a
 * model: random writes and discards spooled with rising times, applied up
 * to random cuts, the spool closed and opened again between; the data
 * file must always hold exactly the records made before the last cut.
 * Then a torn tail, a record sent twice, an apply whose position was
 * lost, and refusals.
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
#include "volume/spool.h"
#include "volume/volume.h"

#define BLK 4096
#define VSIZE (256 * BLK)
#define MAXR 400

struct rec {
	bool trim;
	uint64_t off, len;
	int64_t time;
	uint8_t fill;
};

struct fx {
	char dir[64];
	int fd;
	struct rec recs[MAXR];
	int n;        /* spooled */
	int applied;  /* records the data file holds */
	unsigned seed;
};

static unsigned rnd(struct fx *x)
{
	x->seed = x->seed * 1103515245u + 12345u;
	return (x->seed >> 8) & 0xffffff;
}

static void setup_fx(struct fx *x, unsigned seed)
{
	memset(x, 0, sizeof(*x));
	strcpy(x->dir, "/tmp/hf-spool-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	{
		char *p = hf_xasprintf("%s/data", x->dir);

		x->fd = open(p, O_RDWR | O_CREAT, 0600);
		free(p);
	}
	assert_true(x->fd >= 0);
	assert_int_equal(ftruncate(x->fd, VSIZE), 0);
	x->seed = seed;
}

static void teardown_fx(struct fx *x)
{
	char *cmd = hf_xasprintf("rm -rf %s", x->dir);

	close(x->fd);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* What the data file must hold after records [0, upto) in order. */
static void expect_state(struct fx *x, int upto)
{
	uint8_t *want = calloc(1, VSIZE), *got = malloc(VSIZE);

	for (int i = 0; i < upto; i++) {
		const struct rec *r = &x->recs[i];

		memset(want + r->off, r->trim ? 0 : r->fill, r->len);
	}
	assert_int_equal(pread(x->fd, got, VSIZE, 0), VSIZE);
	for (size_t i = 0; i < VSIZE; i++)
		if (got[i] != want[i])
			fail_msg("byte %zu: %u, want %u (%d records applied)", i,
				 got[i], want[i], upto);
	free(want);
	free(got);
}

static int add(struct hf_spool *p, const struct rec *r)
{
	static uint8_t buf[HF_VOL_DATA_MAX];

	if (!r->trim)
		memset(buf, r->fill, r->len);
	return hf_spool_add(p, r->trim, r->off, r->len, r->time,
			    r->trim ? NULL : buf);
}

static void random_rec(struct fx *x, struct rec *r, int64_t time)
{
	r->trim = rnd(x) % 8 == 0;
	r->len = (uint64_t)(1 + rnd(x) % 16) * BLK;
	r->off = (uint64_t)(rnd(x) % (VSIZE / BLK - 16)) * BLK;
	r->time = time;
	r->fill = (uint8_t)(1 + rnd(x) % 255);
}

static struct hf_spool *open_spool(struct fx *x)
{
	char err[256];
	struct hf_spool *p = hf_spool_open(x->dir, x->fd, VSIZE, err,
					   sizeof(err));

	if (!p)
		fail_msg("open: %s", err);
	return p;
}

static void test_model(void **state)
{
	struct fx x;
	struct hf_spool *p;
	int64_t t = 1000;

	(void)state;
	setup_fx(&x, 7);
	p = open_spool(&x);
	while (x.n < MAXR) {
		int k = 1 + (int)(rnd(&x) % 12);

		for (int i = 0; i < k && x.n < MAXR; i++) {
			t += 1 + rnd(&x) % 3; /* equal times are not made */
			random_rec(&x, &x.recs[x.n], t);
			assert_int_equal(add(p, &x.recs[x.n]), 0);
			x.n++;
		}
		if (rnd(&x) % 3 == 0) {
			/* A cut somewhere among the records not applied. */
			int at = x.applied + (int)(rnd(&x) % (unsigned)(x.n - x.applied + 1));
			int64_t cut = at < x.n ? x.recs[at].time : t + 1;
			uint64_t n = 0;

			assert_int_equal(hf_spool_sync(p), 0);
			assert_int_equal(hf_spool_apply(p, cut, false, &n), 0);
			assert_int_equal((int)n, at - x.applied);
			x.applied = at;
			expect_state(&x, x.applied);
			assert_int_equal(hf_spool_first_time(p),
					 at < x.n ? x.recs[at].time : 0);
			if (at == x.n)
				assert_int_equal(hf_spool_pending(p), 0);
		}
		if (rnd(&x) % 5 == 0) {
			/* Closed and opened again: the same records wait. */
			uint64_t before = hf_spool_pending(p);

			hf_spool_close(p);
			p = open_spool(&x);
			assert_int_equal(hf_spool_pending(p), before);
		}
	}
	assert_int_equal(hf_spool_apply(p, 0, true, NULL), 0);
	expect_state(&x, x.n);
	assert_int_equal(hf_spool_pending(p), 0);
	{
		/* All applied: the file starts over. */
		char *path = hf_xasprintf("%s/spool", x.dir);
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 0);
		free(path);
	}
	hf_spool_close(p);
	teardown_fx(&x);
}

/* A record cut short by a crash ends the spool; the ones before stay. */
static void test_torn_tail(void **state)
{
	struct fx x;
	struct hf_spool *p;
	char *path;
	struct stat st;

	(void)state;
	setup_fx(&x, 11);
	path = hf_xasprintf("%s/spool", x.dir);
	p = open_spool(&x);
	for (int i = 0; i < 5; i++) {
		random_rec(&x, &x.recs[i], 100 + i);
		x.recs[i].trim = false;
		assert_int_equal(add(p, &x.recs[i]), 0);
	}
	hf_spool_close(p);
	assert_int_equal(stat(path, &st), 0);
	/* The last record loses its last block. */
	assert_int_equal(truncate(path, st.st_size - BLK), 0);
	p = open_spool(&x);
	assert_int_equal(hf_spool_pending(p),
			 (uint64_t)st.st_size - 40 - x.recs[4].len);
	assert_int_equal(hf_spool_apply(p, 0, true, NULL), 0);
	expect_state(&x, 4);
	/* A flipped byte in a record's data: it and what follows go. */
	x.n = 4;
	for (int i = 4; i < 7; i++) {
		random_rec(&x, &x.recs[i], 200 + i);
		x.recs[i].trim = false;
		assert_int_equal(add(p, &x.recs[i]), 0);
	}
	hf_spool_close(p);
	{
		int fd = open(path, O_RDWR);
		uint8_t b;
		off_t at = 40 + (off_t)x.recs[4].len + 40 + 7;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, at), 1);
		b ^= 0x40;
		assert_int_equal(pwrite(fd, &b, 1, at), 1);
		close(fd);
	}
	p = open_spool(&x);
	assert_int_equal(hf_spool_pending(p), 40 + x.recs[4].len);
	assert_int_equal(hf_spool_apply(p, 0, true, NULL), 0);
	expect_state(&x, 5);
	hf_spool_close(p);
	free(path);
	teardown_fx(&x);
}

/*
 * A stream that connects again sends the records after the standby's
 * mark again: a suffix spooled twice. Applied in order, the data is as
 * after one copy; a cut inside the second copy stops at its first record
 * made at or after it, even though older ones follow.
 */
static void test_sent_twice(void **state)
{
	struct fx x;
	struct hf_spool *p;
	uint64_t n;

	(void)state;
	setup_fx(&x, 13);
	p = open_spool(&x);
	for (int i = 0; i < 6; i++) {
		random_rec(&x, &x.recs[i], 10 + i);
		assert_int_equal(add(p, &x.recs[i]), 0);
	}
	for (int i = 3; i < 6; i++)
		assert_int_equal(add(p, &x.recs[i]), 0);
	x.n = 6;
	/* Cut at record 4's time: records 0-3, then 3 again, then stop. */
	assert_int_equal(hf_spool_apply(p, x.recs[4].time, false, &n), 0);
	assert_int_equal(n, 4);
	expect_state(&x, 4);
	assert_int_equal(hf_spool_first_time(p), x.recs[4].time);
	/* Record 4, then 5 stops it: the second 3 and 4 wait behind. */
	assert_int_equal(hf_spool_apply(p, x.recs[5].time, false, &n), 0);
	assert_int_equal(n, 1);
	expect_state(&x, 5);
	assert_int_equal(hf_spool_apply(p, 100, false, &n), 0);
	assert_int_equal(n, 4);
	expect_state(&x, 6);
	hf_spool_close(p);
	teardown_fx(&x);
}

/* An apply whose position was not recorded is done again, harmlessly. */
static void test_position_lost(void **state)
{
	struct fx x;
	struct hf_spool *p;
	char *pos, *sp;
	char *saved = NULL, *ssaved = NULL;
	size_t len = 0, slen = 0;

	(void)state;
	setup_fx(&x, 17);
	pos = hf_xasprintf("%s/spool.pos", x.dir);
	sp = hf_xasprintf("%s/spool", x.dir);
	p = open_spool(&x);
	for (int i = 0; i < 20; i++) {
		random_rec(&x, &x.recs[i], 50 + i);
		assert_int_equal(add(p, &x.recs[i]), 0);
	}
	x.n = 20;
	assert_int_equal(hf_spool_apply(p, x.recs[5].time, false, NULL), 0);
	hf_spool_close(p);
	assert_int_equal(hf_read_file(pos, 1 << 10, &saved, &len), 0);
	assert_int_equal(hf_read_file(sp, 64 << 20, &ssaved, &slen), 0);
	p = open_spool(&x);
	assert_int_equal(hf_spool_apply(p, x.recs[15].time, false, NULL), 0);
	expect_state(&x, 15);
	hf_spool_close(p);
	/*
	 * A crash after the data was written, before spool.pos said so
	 * (and so before the applied records' space was given back).
	 */
	assert_int_equal(hf_write_file_atomic(pos, saved, len, 0600), 0);
	assert_int_equal(hf_write_file_atomic(sp, ssaved, slen, 0600), 0);
	p = open_spool(&x);
	assert_int_equal(hf_spool_pending(p) > 0, 1);
	assert_int_equal(hf_spool_apply(p, x.recs[15].time, false, NULL), 0);
	expect_state(&x, 15);
	assert_int_equal(hf_spool_apply(p, 0, true, NULL), 0);
	expect_state(&x, 20);
	hf_spool_close(p);
	assert_int_equal(hf_spool_remove(x.dir), 0);
	assert_int_equal(access(pos, F_OK), -1);
	free(saved);
	free(ssaved);
	free(pos);
	free(sp);
	teardown_fx(&x);
}

static void test_refusals(void **state)
{
	struct fx x;
	struct hf_spool *p;
	static uint8_t buf[2 * BLK];

	(void)state;
	setup_fx(&x, 19);
	p = open_spool(&x);
	assert_int_equal(hf_spool_add(p, false, 1, BLK, 1, buf), -EINVAL);
	assert_int_equal(hf_spool_add(p, false, 0, 100, 1, buf), -EINVAL);
	assert_int_equal(hf_spool_add(p, false, VSIZE - BLK, 2 * BLK, 1, buf),
			 -EINVAL);
	assert_int_equal(hf_spool_add(p, false, 0, BLK, 1, NULL), -EINVAL);
	assert_int_equal(hf_spool_add(p, true, 0, 0, 1, NULL), -EINVAL);
	assert_int_equal(hf_spool_pending(p), 0);
	/* The volume grew: a record past the old end is taken. */
	hf_spool_grow(p, VSIZE + 2 * BLK);
	assert_int_equal(hf_spool_add(p, false, VSIZE - BLK, 2 * BLK, 1, buf),
			 0);
	hf_spool_close(p);
	teardown_fx(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model),
	    cmocka_unit_test(test_torn_tail),
	    cmocka_unit_test(test_sent_twice),
	    cmocka_unit_test(test_position_lost),
	    cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
