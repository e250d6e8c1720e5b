/*
 * test_volbitmap.c - dirty-region bitmaps (volume/bitmap.h): rounding of
 * set and clear, runs found by next, the summary kept true under random
 * operations (held against a plain array of flags), union, the pages of
 * the bitmaps file (round trip, every refusal) and the BITMAP frame's
 * runs (chunked round trips, one encoding, every refusal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/rng.h"
#include "common/util.h"
#include "volume/bitmap.h"

#define R HF_VOL_REGION_SIZE
#define EXT HF_VOL_EXTENT_REGIONS
#define MIB ((uint64_t)1 << 20)

static void test_init(void **state)
{
	struct hf_vol_bitmap b;

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&b, 0), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_init(&b, 4095), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_init(&b, HF_VOL_SIZE_MAX + R), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_init(&b, 10 * ((uint64_t)1 << 30)), 0);
	/* §5.3's figure: 10 GiB is 2.6 Mbit. */
	assert_int_equal(b.nbits, 2621440);
	assert_int_equal(hf_vol_bitmap_size(&b), 10 * ((uint64_t)1 << 30));
	assert_int_equal(hf_vol_bitmap_count(&b), 0);
	hf_vol_bitmap_release(&b);
	assert_null(b.bits);
}

static void test_set_clear_rounding(void **state)
{
	struct hf_vol_bitmap b;
	uint64_t off, len;

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&b, 64 * MIB), 0);
	/* One byte dirties its whole region. */
	assert_int_equal(hf_vol_bitmap_set(&b, 5000, 1), 0);
	assert_true(hf_vol_bitmap_test(&b, 4096));
	assert_false(hf_vol_bitmap_test(&b, 0));
	assert_int_equal(hf_vol_bitmap_count(&b), 1);
	/* A range straddling two regions dirties both. */
	assert_int_equal(hf_vol_bitmap_set(&b, 3 * R - 1, 2), 0);
	assert_int_equal(hf_vol_bitmap_count(&b), 3);
	assert_int_equal(hf_vol_bitmap_dirty_bytes(&b), 3 * R);
	/* Clearing part of a region leaves it dirty. */
	assert_int_equal(hf_vol_bitmap_clear(&b, 4096, 4095), 0);
	assert_int_equal(hf_vol_bitmap_clear(&b, 4097, 4096), 0);
	assert_true(hf_vol_bitmap_test(&b, 4096));
	assert_int_equal(hf_vol_bitmap_clear(&b, 4096, 4096), 0);
	assert_false(hf_vol_bitmap_test(&b, 4096));
	assert_int_equal(hf_vol_bitmap_count(&b), 2);
	/* Out of the volume: refused, nothing changed. */
	assert_int_equal(hf_vol_bitmap_set(&b, 64 * MIB - R, 2 * R), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_set(&b, UINT64_MAX, 2), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_clear(&b, 0, 64 * MIB + 1), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_count(&b), 2);
	assert_int_equal(hf_vol_bitmap_set(&b, 64 * MIB - R, R), 0);
	assert_true(hf_vol_bitmap_test(&b, 64 * MIB - 1));
	assert_false(hf_vol_bitmap_test(&b, 64 * MIB));
	assert_int_equal(hf_vol_bitmap_set(&b, 100, 0), 0);
	assert_int_equal(hf_vol_bitmap_count(&b), 3);

	hf_vol_bitmap_fill(&b);
	assert_int_equal(hf_vol_bitmap_count(&b), b.nbits);
	assert_true(hf_vol_bitmap_next(&b, 0, UINT64_MAX, &off, &len));
	assert_int_equal(off, 0);
	assert_int_equal(len, 64 * MIB);
	hf_vol_bitmap_reset(&b);
	assert_int_equal(hf_vol_bitmap_count(&b), 0);
	assert_false(hf_vol_bitmap_next(&b, 0, UINT64_MAX, &off, &len));
	hf_vol_bitmap_release(&b);
}

static void test_next(void **state)
{
	struct hf_vol_bitmap b;
	uint64_t off, len;

	(void)state;
	/* A size that is no whole number of words or extents. */
	assert_int_equal(hf_vol_bitmap_init(&b, 1000 * MIB + 3 * R), 0);
	assert_false(hf_vol_bitmap_next(&b, 0, MIB, &off, &len));
	assert_int_equal(hf_vol_bitmap_set(&b, 10 * R, 3 * R), 0);
	assert_int_equal(hf_vol_bitmap_set(&b, 900 * MIB, 3 * MIB), 0);
	assert_int_equal(hf_vol_bitmap_set(&b, 1000 * MIB + R, 2 * R), 0);

	assert_true(hf_vol_bitmap_next(&b, 0, MIB, &off, &len));
	assert_int_equal(off, 10 * R);
	assert_int_equal(len, 3 * R);
	/* From inside a run: the rest of it. */
	assert_true(hf_vol_bitmap_next(&b, 11 * R + 5, MIB, &off, &len));
	assert_int_equal(off, 11 * R);
	assert_int_equal(len, 2 * R);
	/* Far across clean extents; capped at max (1 MiB runs). */
	assert_true(hf_vol_bitmap_next(&b, 13 * R, MIB, &off, &len));
	assert_int_equal(off, 900 * MIB);
	assert_int_equal(len, MIB);
	assert_true(hf_vol_bitmap_next(&b, 901 * MIB, MIB + 100, &off, &len));
	assert_int_equal(off, 901 * MIB);
	assert_int_equal(len, MIB);
	/* A max under one region still gives one region. */
	assert_true(hf_vol_bitmap_next(&b, 902 * MIB, 1, &off, &len));
	assert_int_equal(len, R);
	/* The run at the very end (in the last, partial word). */
	assert_true(hf_vol_bitmap_next(&b, 903 * MIB, MIB, &off, &len));
	assert_int_equal(off, 1000 * MIB + R);
	assert_int_equal(len, 2 * R);
	assert_false(hf_vol_bitmap_next(&b, 1000 * MIB + 3 * R, MIB, &off,
					&len));
	assert_false(hf_vol_bitmap_next(&b, UINT64_MAX, MIB, &off, &len));
	hf_vol_bitmap_release(&b);
}

/* A bitmap and a plain array of flags agree after random operations. */
static void expect_model(const struct hf_vol_bitmap *b, const uint8_t *model)
{
	uint64_t count = 0, r = 0, off, len;

	for (uint64_t i = 0; i < b->nbits; i++) {
		count += model[i];
		if (hf_vol_bitmap_test(b, i * R) != model[i])
			fail_msg("region %llu: bitmap %d, model %d",
				 (unsigned long long)i,
				 hf_vol_bitmap_test(b, i * R), model[i]);
	}
	assert_int_equal(hf_vol_bitmap_count(b), count);
	/* Summary bits: exactly the extents with a set bit. */
	for (uint64_t e = 0; e * EXT < b->nbits; e++) {
		bool any = false, sum = b->summary[e / 64] >> (e % 64) & 1;

		for (uint64_t i = e * EXT; i < (e + 1) * EXT && i < b->nbits;
		     i++)
			any |= model[i];
		if (any != sum)
			fail_msg("extent %llu: summary %d, bits %d",
				 (unsigned long long)e, sum, any);
	}
	/* next walks exactly the model's runs. */
	while (hf_vol_bitmap_next(b, r * R, UINT64_MAX, &off, &len)) {
		uint64_t s = r;

		while (s < b->nbits && !model[s])
			s++;
		assert_int_equal(off, s * R);
		for (uint64_t i = s; i < s + len / R; i++)
			assert_true(model[i]);
		assert_true(s + len / R == b->nbits || !model[s + len / R]);
		r = s + len / R;
	}
	while (r < b->nbits)
		assert_false(model[r++]);
}

static void test_random_against_model(void **state)
{
	const uint64_t sizes[] = {R, 63 * R, 64 * R, 4 * MIB, 4 * MIB + R,
				  37 * MIB + 5 * R};
	struct hf_rng rng;

	(void)state;
	hf_rng_seed(&rng, 5);
	for (size_t si = 0; si < HF_ARRAY_LEN(sizes); si++) {
		struct hf_vol_bitmap b;
		uint64_t size = sizes[si];
		uint8_t *model;

		assert_int_equal(hf_vol_bitmap_init(&b, size), 0);
		model = calloc(b.nbits, 1);
		for (int op = 0; op < 400; op++) {
			uint64_t off = hf_rng_below(&rng, size);
			uint64_t len = hf_rng_below(&rng, op % 7 ? 64 * R
								 : size - off) +
				       1;
			bool set = hf_rng_below(&rng, 3) != 0;

			if (len > size - off)
				len = size - off;
			if (set) {
				assert_int_equal(hf_vol_bitmap_set(&b, off, len),
						 0);
				for (uint64_t i = off / R;
				     i < (off + len + R - 1) / R; i++)
					model[i] = 1;
			} else {
				assert_int_equal(
				    hf_vol_bitmap_clear(&b, off, len), 0);
				for (uint64_t i = (off + R - 1) / R;
				     i < (off + len) / R; i++)
					model[i] = 0;
			}
			if (op % 40 == 0)
				expect_model(&b, model);
		}
		expect_model(&b, model);
		free(model);
		hf_vol_bitmap_release(&b);
	}
}

static void test_union(void **state)
{
	struct hf_vol_bitmap a, b, c;

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&a, 100 * MIB), 0);
	assert_int_equal(hf_vol_bitmap_init(&b, 100 * MIB), 0);
	assert_int_equal(hf_vol_bitmap_init(&c, 50 * MIB), 0);
	hf_vol_bitmap_set(&a, 0, 8 * R);
	hf_vol_bitmap_set(&b, 4 * R, 8 * R);
	hf_vol_bitmap_set(&b, 90 * MIB, R);
	assert_int_equal(hf_vol_bitmap_union(&a, &b), 0);
	assert_int_equal(hf_vol_bitmap_count(&a), 13);
	assert_true(hf_vol_bitmap_test(&a, 90 * MIB));
	assert_int_equal(hf_vol_bitmap_union(&a, &c), HF_EINVAL);
	assert_int_equal(hf_vol_bitmap_count(&a), 13);
	hf_vol_bitmap_release(&a);
	hf_vol_bitmap_release(&b);
	hf_vol_bitmap_release(&c);
}

/* ---- pages ------------------------------------------------------------ */

static void test_pages(void **state)
{
	struct hf_vol_bitmap b, back;
	const uint64_t per = HF_VOL_BITMAP_PAGE_REGIONS;
	uint8_t page[HF_VOL_BITMAP_PAGE];
	uint64_t size = (2 * per + 100) * R, off, len;
	char err[HF_VOL_ERR_MAX];

	(void)state;
	assert_int_equal(per, 31744); /* 31 extents a page */
	assert_int_equal(hf_vol_bitmap_init(&b, size), 0);
	assert_int_equal(hf_vol_bitmap_init(&back, size), 0);
	assert_int_equal(hf_vol_bitmap_pages(&b), 3);
	hf_vol_bitmap_page_range(&b, 1, &off, &len);
	assert_int_equal(off, per * R);
	assert_int_equal(len, per * R);
	hf_vol_bitmap_page_range(&b, 2, &off, &len);
	assert_int_equal(len, 100 * R);
	hf_vol_bitmap_set(&b, 0, R);
	hf_vol_bitmap_set(&b, (per - 1) * R, 2 * R); /* across pages 0 and 1 */
	hf_vol_bitmap_set(&b, size - R, R);
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(hf_vol_bitmap_page_encode(&b, i, page), 0);
		assert_memory_equal(page, "HFBM", 4);
		assert_int_equal(hf_vol_get32(page + 4), i);
		assert_int_equal(hf_vol_get64(page + 8), b.nbits);
		if (hf_vol_bitmap_page_decode(&back, i, page, sizeof(page), err))
			fail_msg("page %llu: %s", (unsigned long long)i, err);
	}
	/* Region r of a page is bit r % 8 of byte 128 + r / 8. */
	assert_int_equal(hf_vol_bitmap_page_encode(&b, 2, page), 0);
	assert_int_equal(page[128 + 99 / 8], 1 << (99 % 8));
	assert_int_equal(hf_vol_bitmap_count(&back), 4);
	for (uint64_t r = 0; r < b.nbits; r++)
		assert_int_equal(hf_vol_bitmap_test(&b, r * R),
				 hf_vol_bitmap_test(&back, r * R));
	/* Decoding replaces the page's bits (count and summary follow). */
	hf_vol_bitmap_set(&back, 5 * R, R);
	assert_int_equal(hf_vol_bitmap_page_encode(&b, 0, page), 0);
	assert_int_equal(hf_vol_bitmap_page_decode(&back, 0, page, sizeof(page),
						   err),
			 0);
	assert_false(hf_vol_bitmap_test(&back, 5 * R));
	assert_int_equal(hf_vol_bitmap_count(&back), 4);
	hf_vol_bitmap_clear(&b, 0, size);
	assert_int_equal(hf_vol_bitmap_page_encode(&b, 0, page), 0);
	assert_int_equal(hf_vol_bitmap_page_decode(&back, 0, page, sizeof(page),
						   err),
			 0);
	assert_false(hf_vol_bitmap_next(&back, 0, per * R, &off, &len) &&
		     off < per * R);
	assert_int_equal(hf_vol_bitmap_page_encode(&b, 3, page), HF_EINVAL);
	hf_vol_bitmap_release(&b);
	hf_vol_bitmap_release(&back);
}

static void test_page_errors(void **state)
{
	struct hf_vol_bitmap b;
	uint8_t good[HF_VOL_BITMAP_PAGE], page[HF_VOL_BITMAP_PAGE];
	char err[HF_VOL_ERR_MAX];
	static const struct {
		size_t at;
		uint8_t value;
		bool fix_crc;
		const char *want;
	} cases[] = {
	    {0, 'X', true, "no \"HFBM\" magic"},
	    {200, 0x00, false, "CRC-32C"},
	    {4, 1, true, "it says it is page 1"},
	    {8, 0, true, "written for"},
	    {20, 1, true, "reserved byte 20"},
	    /* The volume has 1000 regions: region 1000 is past it. */
	    {128 + 1000 / 8, 1, true, "past the volume's end"},
	};

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&b, 1000 * R), 0);
	hf_vol_bitmap_set(&b, 0, 1000 * R);
	assert_int_equal(hf_vol_bitmap_page_encode(&b, 0, good), 0);
	hf_vol_bitmap_reset(&b);
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		memcpy(page, good, sizeof(page));
		page[cases[i].at] = cases[i].value;
		if (cases[i].fix_crc) {
			uint32_t crc = hf_crc32c(0, page, 124);

			crc = hf_crc32c(crc, page + 128, 4096 - 128);
			hf_vol_put32(page + 124, crc);
		}
		err[0] = 0;
		if (hf_vol_bitmap_page_decode(&b, 0, page, sizeof(page), err) !=
			HF_EPARSE ||
		    !strstr(err, cases[i].want))
			fail_msg("byte %zu: want \"%s\", got \"%s\"",
				 cases[i].at, cases[i].want, err);
		/* Unchanged on failure. */
		assert_int_equal(hf_vol_bitmap_count(&b), 0);
	}
	/* A page never written (a hole in the file) reads as zeroes. */
	memset(page, 0, sizeof(page));
	assert_int_equal(hf_vol_bitmap_page_decode(&b, 0, page, sizeof(page),
						   err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "never written"));
	assert_int_equal(hf_vol_bitmap_page_decode(&b, 0, good, 100, err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "100 bytes"));
	assert_int_equal(hf_vol_bitmap_page_decode(&b, 1, good, sizeof(good),
						   err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "past the volume's 1 pages"));
	hf_vol_bitmap_release(&b);
}

/* ---- runs -------------------------------------------------------------- */

static void test_rle_known(void **state)
{
	struct hf_vol_bitmap b;
	uint8_t out[64];
	uint64_t from = 0;
	size_t n;
	char err[HF_VOL_ERR_MAX];

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&b, 1000 * R), 0);
	hf_vol_bitmap_set(&b, 0, 2 * R);
	hf_vol_bitmap_set(&b, 300 * R, 5 * R);
	n = hf_vol_bitmap_rle_encode(&b, &from, b.nbits, out, sizeof(out));
	/* 0 clear, 2 set, 298 clear, 5 set, 695 clear. */
	{
		const uint8_t want[] = {0, 2, 0xaa, 0x02, 5, 0xb7, 0x05};

		assert_int_equal(n, sizeof(want));
		assert_memory_equal(out, want, sizeof(want));
	}
	assert_int_equal(from, 1000);
	assert_int_equal(hf_vol_bitmap_rle_check(1000, 0, 1000, out, n, err), 0);
	/* Nothing to encode: no bytes. */
	from = 5;
	assert_int_equal(hf_vol_bitmap_rle_encode(&b, &from, 5, out, 64), 0);
	assert_int_equal(hf_vol_bitmap_rle_check(1000, 5, 0, out, 0, err), 0);
	hf_vol_bitmap_release(&b);
}

static void expect_rle_error(uint64_t nbits, uint64_t first, uint64_t count,
			     const uint8_t *in, size_t len, const char *want)
{
	struct hf_vol_bitmap b;
	char err[HF_VOL_ERR_MAX] = "";

	assert_int_equal(hf_vol_bitmap_init(&b, nbits * R), 0);
	if (hf_vol_bitmap_rle_decode(&b, first, count, in, len, err) !=
		HF_EPARSE ||
	    !strstr(err, want))
		fail_msg("want \"%s\", got \"%s\"", want, err);
	assert_int_equal(hf_vol_bitmap_count(&b), 0);
	hf_vol_bitmap_release(&b);
}

static void test_rle_errors(void **state)
{
	(void)state;
	expect_rle_error(100, 0, 10, (const uint8_t[]){0x85, 0x00, 5}, 3,
			 "byte 0: a run's varint is not minimal");
	expect_rle_error(100, 0, 10, (const uint8_t[]){0x85}, 1,
			 "cut short");
	expect_rle_error(100, 0, 10, (const uint8_t[]){5, 0, 5}, 3,
			 "byte 1: an empty run after the first");
	/* A set run that would be decoded before the error is not. */
	expect_rle_error(100, 0, 10, (const uint8_t[]){0, 8, 3}, 3,
			 "byte 2: the runs cover more than the 10");
	expect_rle_error(100, 0, 10, (const uint8_t[]){0, 8}, 2,
			 "cover 8 regions, not the 10");
	expect_rle_error(100, 0, 0, (const uint8_t[]){0}, 1,
			 "no regions are encoded as no bytes");
	expect_rle_error(100, 95, 10, (const uint8_t[]){10}, 1,
			 "past the volume's 100");
	expect_rle_error(100, 0, 10,
			 (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0x02},
			 10, "overflows 64 bits");
}

/*
 * Random bitmaps, encoded in chunks of a small buffer, decode to the same
 * bits, and each chunk re-encodes to its own bytes.
 */
static void test_rle_chunks(void **state)
{
	struct hf_rng rng;

	(void)state;
	hf_rng_seed(&rng, 77);
	for (int round = 0; round < 30; round++) {
		struct hf_vol_bitmap b, back, again;
		uint64_t nbits = 1 + hf_rng_below(&rng, 20000), from = 0;
		size_t cap = 2 * HF_VOL_RLE_VARINT_MAX +
			     hf_rng_below(&rng, 40);
		uint8_t out[64], re[64];
		char err[HF_VOL_ERR_MAX];

		assert_int_equal(hf_vol_bitmap_init(&b, nbits * R), 0);
		assert_int_equal(hf_vol_bitmap_init(&back, nbits * R), 0);
		for (int k = 0; k < round * 3; k++) {
			uint64_t r = hf_rng_below(&rng, nbits);
			uint64_t n = 1 + hf_rng_below(&rng, 300);

			if (n > nbits - r)
				n = nbits - r;
			assert_int_equal(hf_vol_bitmap_set(&b, r * R, n * R), 0);
		}
		while (from < nbits) {
			uint64_t first = from, f2;
			size_t n = hf_vol_bitmap_rle_encode(&b, &from, nbits,
							    out, cap), n2;

			assert_true(from > first); /* progress */
			if (hf_vol_bitmap_rle_decode(&back, first, from - first,
						     out, n, err))
				fail_msg("round %d chunk at %llu: %s", round,
					 (unsigned long long)first, err);
			assert_int_equal(hf_vol_bitmap_init(&again, nbits * R),
					 0);
			assert_int_equal(hf_vol_bitmap_rle_decode(
					     &again, first, from - first, out, n,
					     err),
					 0);
			f2 = first;
			n2 = hf_vol_bitmap_rle_encode(&again, &f2, from, re,
						      sizeof(re));
			assert_int_equal(f2, from);
			assert_int_equal(n2, n);
			assert_memory_equal(re, out, n);
			hf_vol_bitmap_release(&again);
		}
		assert_int_equal(hf_vol_bitmap_count(&back),
				 hf_vol_bitmap_count(&b));
		for (uint64_t w = 0; w < (nbits + 63) / 64; w++)
			assert_int_equal(back.bits[w], b.bits[w]);
		hf_vol_bitmap_release(&b);
		hf_vol_bitmap_release(&back);
	}
}

/* Decoding ORs: a peer's bitmap joins one's own. */
static void test_rle_unites(void **state)
{
	struct hf_vol_bitmap mine, theirs;
	uint8_t out[64];
	uint64_t from = 0;
	size_t n;
	char err[HF_VOL_ERR_MAX];

	(void)state;
	assert_int_equal(hf_vol_bitmap_init(&mine, 100 * R), 0);
	assert_int_equal(hf_vol_bitmap_init(&theirs, 100 * R), 0);
	hf_vol_bitmap_set(&mine, 0, 10 * R);
	hf_vol_bitmap_set(&theirs, 5 * R, 10 * R);
	n = hf_vol_bitmap_rle_encode(&theirs, &from, 100, out, sizeof(out));
	assert_int_equal(hf_vol_bitmap_rle_decode(&mine, 0, 100, out, n, err),
			 0);
	assert_int_equal(hf_vol_bitmap_count(&mine), 15);
	hf_vol_bitmap_release(&mine);
	hf_vol_bitmap_release(&theirs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),
	    cmocka_unit_test(test_set_clear_rounding),
	    cmocka_unit_test(test_next),
	    cmocka_unit_test(test_random_against_model),
	    cmocka_unit_test(test_union),
	    cmocka_unit_test(test_pages),
	    cmocka_unit_test(test_page_errors),
	    cmocka_unit_test(test_rle_known),
	    cmocka_unit_test(test_rle_errors),
	    cmocka_unit_test(test_rle_chunks),
	    cmocka_unit_test(test_rle_unites),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
