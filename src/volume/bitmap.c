/*
 * bitmap.c - dirty-region bitmaps, their pages and their runs (see
 * bitmap.h).
 *
 * Invariants every function keeps: bits past nbits are zero in the last
 * word, a summary bit is set exactly when some bit of its extent is, and
 * count is the number of bits set. An extent is 1024 regions, 16 words,
 * so no word straddles two extents.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "volume/bitmap.h"

#define WORD_BITS 64
#define EXTENT_WORDS (HF_VOL_EXTENT_REGIONS / WORD_BITS)
#define PAGE_WORDS (HF_VOL_BITMAP_PAGE_REGIONS / WORD_BITS)
#define PAGE_MAGIC "HFBM"
#define PAGE_OFF_CRC 124

_Static_assert(HF_VOL_EXTENT_REGIONS % WORD_BITS == 0,
	       "an extent is whole words");
_Static_assert(HF_VOL_BITMAP_PAGE_REGIONS % HF_VOL_EXTENT_REGIONS == 0,
	       "a page is whole extents");

HF_PRINTF(3, 4)
static int fail(char *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, HF_VOL_ERR_MAX, fmt, ap);
	va_end(ap);
	return code;
}

static uint64_t nwords(const struct hf_vol_bitmap *b)
{
	return (b->nbits + WORD_BITS - 1) / WORD_BITS;
}

static uint64_t nextents(const struct hf_vol_bitmap *b)
{
	return (b->nbits + HF_VOL_EXTENT_REGIONS - 1) / HF_VOL_EXTENT_REGIONS;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int hf_vol_bitmap_init(struct hf_vol_bitmap *b, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	if (size == 0 || size % HF_VOL_REGION_SIZE || size > HF_VOL_SIZE_MAX)
		return HF_EINVAL;
	b->nbits = size / HF_VOL_REGION_SIZE;
	b->bits = calloc(nwords(b), sizeof(uint64_t));
	b->summary = calloc((nextents(b) + WORD_BITS - 1) / WORD_BITS,
			    sizeof(uint64_t));
	if (!b->bits || !b->summary) {
		hf_vol_bitmap_release(b);
		return HF_ENOMEM;
	}
	return 0;
}

void hf_vol_bitmap_release(struct hf_vol_bitmap *b)
{
	free(b->bits);
	free(b->summary);
	memset(b, 0, sizeof(*b));
}

uint64_t hf_vol_bitmap_size(const struct hf_vol_bitmap *b)
{
	return b->nbits * HF_VOL_REGION_SIZE;
}

/* Recomputes the summary bits of extents [e0, e1]. */
static void resummarize(struct hf_vol_bitmap *b, uint64_t e0, uint64_t e1)
{
	uint64_t nw = nwords(b);

	for (uint64_t e = e0; e <= e1; e++) {
		uint64_t any = 0;

		for (uint64_t w = e * EXTENT_WORDS;
		     w < min_u64((e + 1) * EXTENT_WORDS, nw); w++)
			any |= b->bits[w];
		if (any)
			b->summary[e / WORD_BITS] |= 1ull << (e % WORD_BITS);
		else
			b->summary[e / WORD_BITS] &= ~(1ull << (e % WORD_BITS));
	}
}

/* Sets or clears regions [first, first + n), n > 0, inside the bitmap. */
static void apply(struct hf_vol_bitmap *b, uint64_t first, uint64_t n, bool set)
{
	uint64_t last = first + n - 1;

	for (uint64_t w = first / WORD_BITS; w <= last / WORD_BITS; w++) {
		uint64_t mask = ~0ull, old = b->bits[w];

		if (w == first / WORD_BITS)
			mask &= ~0ull << (first % WORD_BITS);
		if (w == last / WORD_BITS && last % WORD_BITS != WORD_BITS - 1)
			mask &= (1ull << (last % WORD_BITS + 1)) - 1;
		if (set) {
			b->bits[w] = old | mask;
			b->count += (uint64_t)__builtin_popcountll(mask & ~old);
		} else {
			b->bits[w] = old & ~mask;
			b->count -= (uint64_t)__builtin_popcountll(mask & old);
		}
	}
	if (set) {
		for (uint64_t e = first / HF_VOL_EXTENT_REGIONS;
		     e <= last / HF_VOL_EXTENT_REGIONS; e++)
			b->summary[e / WORD_BITS] |= 1ull << (e % WORD_BITS);
	} else {
		resummarize(b, first / HF_VOL_EXTENT_REGIONS,
			    last / HF_VOL_EXTENT_REGIONS);
	}
}

static bool in_volume(const struct hf_vol_bitmap *b, uint64_t off,
		      uint64_t len)
{
	uint64_t size = hf_vol_bitmap_size(b);

	return off <= size && len <= size - off;
}

int hf_vol_bitmap_set(struct hf_vol_bitmap *b, uint64_t off, uint64_t len)
{
	uint64_t first, end;

	if (!in_volume(b, off, len))
		return HF_EINVAL;
	if (!len)
		return 0;
	first = off / HF_VOL_REGION_SIZE;
	end = (off + len + HF_VOL_REGION_SIZE - 1) / HF_VOL_REGION_SIZE;
	apply(b, first, end - first, true);
	return 0;
}

int hf_vol_bitmap_clear(struct hf_vol_bitmap *b, uint64_t off, uint64_t len)
{
	uint64_t first, end;

	if (!in_volume(b, off, len))
		return HF_EINVAL;
	first = (off + HF_VOL_REGION_SIZE - 1) / HF_VOL_REGION_SIZE;
	end = (off + len) / HF_VOL_REGION_SIZE;
	if (end > first)
		apply(b, first, end - first, false);
	return 0;
}

void hf_vol_bitmap_fill(struct hf_vol_bitmap *b)
{
	apply(b, 0, b->nbits, true);
}

void hf_vol_bitmap_reset(struct hf_vol_bitmap *b)
{
	memset(b->bits, 0, nwords(b) * sizeof(uint64_t));
	memset(b->summary, 0,
	       (nextents(b) + WORD_BITS - 1) / WORD_BITS * sizeof(uint64_t));
	b->count = 0;
}

static bool bit(const struct hf_vol_bitmap *b, uint64_t r)
{
	return b->bits[r / WORD_BITS] >> (r % WORD_BITS) & 1;
}

bool hf_vol_bitmap_test(const struct hf_vol_bitmap *b, uint64_t off)
{
	uint64_t r = off / HF_VOL_REGION_SIZE;

	return r < b->nbits && bit(b, r);
}

uint64_t hf_vol_bitmap_count(const struct hf_vol_bitmap *b)
{
	return b->count;
}

uint64_t hf_vol_bitmap_dirty_bytes(const struct hf_vol_bitmap *b)
{
	return b->count * HF_VOL_REGION_SIZE;
}

/*
 * The first set region at or after r, or nbits: clean extents are skipped
 * by their summary bits, 64 extents (256 MiB) per word.
 */
static uint64_t find_set(const struct hf_vol_bitmap *b, uint64_t r)
{
	uint64_t ne = nextents(b), nw = nwords(b);

	while (r < b->nbits) {
		uint64_t e = r / HF_VOL_EXTENT_REGIONS, sw = e / WORD_BITS;
		uint64_t s = b->summary[sw] & (~0ull << (e % WORD_BITS));

		if (!s) {
			e = (sw + 1) * WORD_BITS;
			if (e >= ne)
				break;
			r = e * HF_VOL_EXTENT_REGIONS;
			continue;
		}
		if (sw * WORD_BITS + (uint64_t)__builtin_ctzll(s) > e) {
			e = sw * WORD_BITS + (uint64_t)__builtin_ctzll(s);
			r = e * HF_VOL_EXTENT_REGIONS;
		}
		for (uint64_t w = r / WORD_BITS;
		     w < min_u64((e + 1) * EXTENT_WORDS, nw); w++) {
			uint64_t x = b->bits[w];

			if (w == r / WORD_BITS)
				x &= ~0ull << (r % WORD_BITS);
			if (x)
				return w * WORD_BITS +
				       (uint64_t)__builtin_ctzll(x);
		}
		r = (e + 1) * HF_VOL_EXTENT_REGIONS;
	}
	return b->nbits;
}

/* The first clear region at or after r, or limit (<= nbits). */
static uint64_t find_clear(const struct hf_vol_bitmap *b, uint64_t r,
			   uint64_t limit)
{
	while (r < limit) {
		uint64_t w = r / WORD_BITS;
		uint64_t x = ~b->bits[w] & (~0ull << (r % WORD_BITS));

		if (x)
			return min_u64(w * WORD_BITS +
					   (uint64_t)__builtin_ctzll(x),
				       limit);
		r = (w + 1) * WORD_BITS;
	}
	return limit;
}

bool hf_vol_bitmap_next(const struct hf_vol_bitmap *b, uint64_t from,
			uint64_t max, uint64_t *off, uint64_t *len)
{
	uint64_t r, end, most = max / HF_VOL_REGION_SIZE;

	if (from / HF_VOL_REGION_SIZE >= b->nbits || !b->count)
		return false;
	r = find_set(b, from / HF_VOL_REGION_SIZE);
	if (r >= b->nbits)
		return false;
	if (most == 0)
		most = 1;
	end = find_clear(b, r, r + min_u64(most, b->nbits - r));
	*off = r * HF_VOL_REGION_SIZE;
	*len = (end - r) * HF_VOL_REGION_SIZE;
	return true;
}

int hf_vol_bitmap_union(struct hf_vol_bitmap *dst,
			const struct hf_vol_bitmap *src)
{
	uint64_t nw = nwords(dst);

	if (dst->nbits != src->nbits)
		return HF_EINVAL;
	for (uint64_t w = 0; w < nw; w++) {
		uint64_t old = dst->bits[w];

		dst->bits[w] = old | src->bits[w];
		dst->count += (uint64_t)__builtin_popcountll(src->bits[w] & ~old);
	}
	for (uint64_t w = 0; w < (nextents(dst) + WORD_BITS - 1) / WORD_BITS;
	     w++)
		dst->summary[w] |= src->summary[w];
	return 0;
}

/* ---- pages ------------------------------------------------------------- */

uint64_t hf_vol_bitmap_pages(const struct hf_vol_bitmap *b)
{
	return (b->nbits + HF_VOL_BITMAP_PAGE_REGIONS - 1) /
	       HF_VOL_BITMAP_PAGE_REGIONS;
}

void hf_vol_bitmap_page_range(const struct hf_vol_bitmap *b, uint64_t i,
			      uint64_t *off, uint64_t *len)
{
	uint64_t first = min_u64(i * HF_VOL_BITMAP_PAGE_REGIONS, b->nbits);
	uint64_t end = min_u64(first + HF_VOL_BITMAP_PAGE_REGIONS, b->nbits);

	*off = first * HF_VOL_REGION_SIZE;
	*len = (end - first) * HF_VOL_REGION_SIZE;
}

static uint32_t page_crc(const uint8_t *p)
{
	uint32_t crc = hf_crc32c(0, p, PAGE_OFF_CRC);

	return hf_crc32c(crc, p + HF_VOL_BITMAP_PAGE_HDR,
			 HF_VOL_BITMAP_PAGE - HF_VOL_BITMAP_PAGE_HDR);
}

int hf_vol_bitmap_page_encode(const struct hf_vol_bitmap *b, uint64_t i,
			      uint8_t out[HF_VOL_BITMAP_PAGE])
{
	uint64_t nw = nwords(b);

	if (i >= hf_vol_bitmap_pages(b))
		return HF_EINVAL;
	memset(out, 0, HF_VOL_BITMAP_PAGE);
	memcpy(out, PAGE_MAGIC, 4);
	hf_vol_put32(out + 4, (uint32_t)i);
	hf_vol_put64(out + 8, b->nbits);
	for (uint64_t j = 0; j < PAGE_WORDS && i * PAGE_WORDS + j < nw; j++)
		hf_vol_put64(out + HF_VOL_BITMAP_PAGE_HDR + j * 8,
			     b->bits[i * PAGE_WORDS + j]);
	hf_vol_put32(out + PAGE_OFF_CRC, page_crc(out));
	return 0;
}

int hf_vol_bitmap_page_decode(struct hf_vol_bitmap *b, uint64_t i,
			      const uint8_t *buf, size_t len,
			      char err[HF_VOL_ERR_MAX])
{
	uint64_t nw = nwords(b), w0 = i * PAGE_WORDS, first, n;
	uint32_t crc, want;

	if (i >= hf_vol_bitmap_pages(b))
		return fail(err, HF_EPARSE,
			    "bitmap page %llu: past the volume's %llu pages",
			    (unsigned long long)i,
			    (unsigned long long)hf_vol_bitmap_pages(b));
	if (len != HF_VOL_BITMAP_PAGE)
		return fail(err, HF_EPARSE, "bitmap page %llu: %zu bytes, not %d",
			    (unsigned long long)i, len, HF_VOL_BITMAP_PAGE);
	if (memcmp(buf, PAGE_MAGIC, 4))
		return fail(err, HF_EPARSE,
			    "bitmap page %llu: no \"" PAGE_MAGIC
			    "\" magic (never written, or not a bitmap)",
			    (unsigned long long)i);
	crc = hf_vol_get32(buf + PAGE_OFF_CRC);
	want = page_crc(buf);
	if (crc != want)
		return fail(err, HF_EPARSE,
			    "bitmap page %llu: CRC-32C 0x%08x, but the page's "
			    "is 0x%08x (torn or damaged)",
			    (unsigned long long)i, crc, want);
	if (hf_vol_get32(buf + 4) != i)
		return fail(err, HF_EPARSE,
			    "bitmap page %llu: it says it is page %u",
			    (unsigned long long)i, hf_vol_get32(buf + 4));
	if (hf_vol_get64(buf + 8) != b->nbits)
		return fail(err, HF_EPARSE,
			    "bitmap page %llu: written for %llu regions, the "
			    "volume has %llu",
			    (unsigned long long)i,
			    (unsigned long long)hf_vol_get64(buf + 8),
			    (unsigned long long)b->nbits);
	for (size_t k = 16; k < PAGE_OFF_CRC; k++)
		if (buf[k])
			return fail(err, HF_EPARSE,
				    "bitmap page %llu: reserved byte %zu is "
				    "not zero",
				    (unsigned long long)i, k);
	for (uint64_t j = 0; j < PAGE_WORDS; j++) {
		uint64_t x = hf_vol_get64(buf + HF_VOL_BITMAP_PAGE_HDR + j * 8);
		uint64_t w = w0 + j, valid = 0;

		if (w < nw)
			valid = (w + 1) * WORD_BITS <= b->nbits
				    ? ~0ull
				    : (1ull << (b->nbits % WORD_BITS)) - 1;
		if (x & ~valid)
			return fail(err, HF_EPARSE,
				    "bitmap page %llu: bits set past the "
				    "volume's end (byte %llu)",
				    (unsigned long long)i,
				    (unsigned long long)(HF_VOL_BITMAP_PAGE_HDR +
							 j * 8));
	}
	for (uint64_t j = 0; j < PAGE_WORDS && w0 + j < nw; j++) {
		uint64_t x = hf_vol_get64(buf + HF_VOL_BITMAP_PAGE_HDR + j * 8);

		b->count -= (uint64_t)__builtin_popcountll(b->bits[w0 + j]);
		b->count += (uint64_t)__builtin_popcountll(x);
		b->bits[w0 + j] = x;
	}
	first = i * HF_VOL_BITMAP_PAGE_REGIONS;
	n = min_u64(HF_VOL_BITMAP_PAGE_REGIONS, b->nbits - first);
	resummarize(b, first / HF_VOL_EXTENT_REGIONS,
		    (first + n - 1) / HF_VOL_EXTENT_REGIONS);
	return 0;
}

/* ---- runs -------------------------------------------------------------- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/*
 * Reads a minimal varint at in[*pos] (len bytes in all) into *v. Returns
 * 0, or a static sentence.
 */
static const char *varint_get(const uint8_t *in, size_t len, size_t *pos,
			      uint64_t *v)
{
	uint64_t x = 0;

	for (size_t k = 0; k < HF_VOL_RLE_VARINT_MAX; k++) {
		uint8_t c;

		if (*pos >= len)
			return "a run's varint is cut short";
		c = in[(*pos)++];
		if (k == HF_VOL_RLE_VARINT_MAX - 1 && c > 1)
			return "a run's varint overflows 64 bits";
		x |= (uint64_t)(c & 0x7f) << (7 * k);
		if (!(c & 0x80)) {
			if (k > 0 && c == 0)
				return "a run's varint is not minimal";
			*v = x;
			return NULL;
		}
	}
	return "a run's varint is longer than 10 bytes";
}

size_t hf_vol_bitmap_rle_encode(const struct hf_vol_bitmap *b, uint64_t *from,
				uint64_t to, uint8_t *out, size_t cap)
{
	uint64_t pos = *from;
	size_t n = 0, runs = 0;
	bool set = false; /* the runs start with a clear one */

	if (to > b->nbits)
		to = b->nbits;
	while (pos < to) {
		uint64_t end = set ? find_clear(b, pos, to)
				   : min_u64(find_set(b, pos), to);

		if (cap - n < varint_len(end - pos))
			break;
		n += varint_put(out + n, end - pos);
		runs++;
		pos = end;
		set = !set;
	}
	/* A lone empty clear run encodes nothing: take it back, so that
	 * zero regions have one encoding (no bytes). */
	if (runs == 1 && pos == *from)
		n = 0;
	*from = pos;
	return n;
}

int hf_vol_bitmap_rle_check(uint64_t nbits, uint64_t first, uint64_t count,
			    const uint8_t *in, size_t len,
			    char err[HF_VOL_ERR_MAX])
{
	uint64_t total = 0;
	size_t pos = 0;

	if (first > nbits || count > nbits - first)
		return fail(err, HF_EPARSE,
			    "bitmap runs for regions %llu+%llu, past the "
			    "volume's %llu",
			    (unsigned long long)first,
			    (unsigned long long)count,
			    (unsigned long long)nbits);
	for (size_t runs = 0; pos < len; runs++) {
		size_t at = pos;
		uint64_t run;
		const char *why = varint_get(in, len, &pos, &run);

		if (why)
			return fail(err, HF_EPARSE, "bitmap runs byte %zu: %s",
				    at, why);
		if (run == 0 && runs > 0)
			return fail(err, HF_EPARSE,
				    "bitmap runs byte %zu: an empty run after "
				    "the first",
				    at);
		if (run > count - total)
			return fail(err, HF_EPARSE,
				    "bitmap runs byte %zu: the runs cover more "
				    "than the %llu regions said",
				    at, (unsigned long long)count);
		total += run;
	}
	if (total != count)
		return fail(err, HF_EPARSE,
			    "bitmap runs cover %llu regions, not the %llu said",
			    (unsigned long long)total,
			    (unsigned long long)count);
	if (count == 0 && len)
		return fail(err, HF_EPARSE,
			    "bitmap runs: no regions are encoded as no bytes");
	return 0;
}

int hf_vol_bitmap_rle_decode(struct hf_vol_bitmap *b, uint64_t first,
			     uint64_t count, const uint8_t *in, size_t len,
			     char err[HF_VOL_ERR_MAX])
{
	uint64_t r = first;
	size_t pos = 0;
	bool set = false;
	int rc = hf_vol_bitmap_rle_check(b->nbits, first, count, in, len, err);

	if (rc)
		return rc;
	while (pos < len) {
		uint64_t run = 0;

		varint_get(in, len, &pos, &run);
		if (set && run)
			apply(b, r, run, true);
		r += run;
		set = !set;
	}
	return 0;
}
