/*
 * fuzz_volbitmap.c - libFuzzer target for dirty-region bitmaps
 * (volume/bitmap.h): their pages as read back from the bitmaps file, the
 * BITMAP frame's runs, and set/clear/next on a bitmap held against a
 * plain array of flags.
 *
 * Input: byte 0 picks the mode, bytes 1-2 the volume's size in regions
 * (1 to 65536), the rest is the mode's:
 *   0  a page (page 0 or 1), its CRC set right when byte 0's bit 4 is;
 *      a decoded page encodes back to the same bytes, and a refused one
 *      leaves the bitmap as it was.
 *   1  runs for [first, first + count) (two u16s, then the runs): decode
 *      refuses exactly what check refuses, changes nothing when it does,
 *      and a decoded set re-encodes to the same bytes.
 *   2  operations (set or clear of a range, 5 bytes each): after them,
 *      count, test and next agree with the flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "volume/bitmap.h"

#define R HF_VOL_REGION_SIZE

static void check_sentence(const char *err)
{
	if (!*err)
		abort();
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static void fuzz_page(struct hf_vol_bitmap *b, bool fix, const uint8_t *in,
		      size_t len)
{
	uint8_t page[HF_VOL_BITMAP_PAGE], again[HF_VOL_BITMAP_PAGE];
	uint64_t i = len ? in[0] & 1 : 0, before;
	char err[HF_VOL_ERR_MAX] = "";
	int rc;

	if (len) {
		in++;
		len--;
	}
	if (fix) {
		uint32_t crc;

		memset(page, 0, sizeof(page));
		memcpy(page, in, len < sizeof(page) ? len : sizeof(page));
		crc = hf_crc32c(0, page, 124);
		crc = hf_crc32c(crc, page + 128, sizeof(page) - 128);
		hf_vol_put32(page + 124, crc);
		in = page;
		len = sizeof(page);
	}
	hf_vol_bitmap_set(b, 0, R); /* something the page may replace */
	before = hf_vol_bitmap_count(b);
	rc = hf_vol_bitmap_page_decode(b, i, in, len, err);
	if (rc) {
		if (rc != HF_EPARSE || hf_vol_bitmap_count(b) != before)
			abort();
		check_sentence(err);
		return;
	}
	if (hf_vol_bitmap_page_encode(b, i, again) ||
	    memcmp(again, in, sizeof(again)))
		abort();
}

static void fuzz_runs(struct hf_vol_bitmap *b, const uint8_t *in, size_t len)
{
	uint64_t first, count, from;
	char err[HF_VOL_ERR_MAX] = "", err2[HF_VOL_ERR_MAX] = "";
	uint8_t *out;
	size_t n;
	int rc, rc2;

	if (len < 4)
		return;
	first = hf_vol_get16(in);
	count = hf_vol_get16(in + 2);
	in += 4;
	len -= 4;
	rc = hf_vol_bitmap_rle_check(b->nbits, first, count, in, len, err);
	rc2 = hf_vol_bitmap_rle_decode(b, first, count, in, len, err2);
	if (rc != rc2 || strcmp(err, err2))
		abort();
	if (rc) {
		if (rc != HF_EPARSE || hf_vol_bitmap_count(b))
			abort();
		check_sentence(err);
		return;
	}
	out = malloc(len + 1);
	from = first;
	n = hf_vol_bitmap_rle_encode(b, &from, first + count, out, len);
	if (n != len || from != first + count || memcmp(out, in, len))
		abort();
	free(out);
}

static void fuzz_ops(struct hf_vol_bitmap *b, const uint8_t *in, size_t len)
{
	uint8_t *flags = calloc(b->nbits, 1);
	uint64_t count = 0, r = 0, off, n;

	for (; len >= 5; in += 5, len -= 5) {
		uint64_t o = (uint64_t)hf_vol_get16(in + 1) * 1000 % (b->nbits * R);
		uint64_t l = (uint64_t)hf_vol_get16(in + 3) * 97;

		if (l > b->nbits * R - o)
			l = b->nbits * R - o;
		if (in[0] & 1) {
			if (hf_vol_bitmap_set(b, o, l))
				abort();
			for (uint64_t i = o / R; l && i < (o + l + R - 1) / R; i++)
				flags[i] = 1;
		} else {
			if (hf_vol_bitmap_clear(b, o, l))
				abort();
			for (uint64_t i = (o + R - 1) / R; i < (o + l) / R; i++)
				flags[i] = 0;
		}
	}
	for (uint64_t i = 0; i < b->nbits; i++) {
		count += flags[i];
		if (hf_vol_bitmap_test(b, i * R) != flags[i])
			abort();
	}
	if (count != hf_vol_bitmap_count(b))
		abort();
	while (hf_vol_bitmap_next(b, r * R, UINT64_MAX, &off, &n)) {
		if (off < r * R || !n || off % R || n % R)
			abort();
		for (uint64_t i = r; i < off / R; i++)
			if (flags[i])
				abort();
		for (uint64_t i = off / R; i < (off + n) / R; i++)
			if (!flags[i])
				abort();
		r = (off + n) / R;
		if (r < b->nbits && flags[r])
			abort();
	}
	for (; r < b->nbits; r++)
		if (flags[r])
			abort();
	free(flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_vol_bitmap b;
	uint64_t nbits;

	if (size < 3)
		return 0;
	nbits = (uint64_t)hf_vol_get16(data + 1) + 1;
	if (hf_vol_bitmap_init(&b, nbits * R))
		abort();
	switch (data[0] % 3) {
	case 0:
		fuzz_page(&b, data[0] & 0x10, data + 3, size - 3);
		break;
	case 1:
		fuzz_runs(&b, data + 3, size - 3);
		break;
	default:
		fuzz_ops(&b, data + 3, size - 3);
		break;
	}
	hf_vol_bitmap_release(&b);
	return 0;
}
