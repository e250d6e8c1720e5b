/*
 * bitmap.h - dirty-region bitmaps (docs/design/volumes.md §5.3): which
 * regions of a volume a peer replica may lack, one bit per
 * HF_VOL_REGION_SIZE bytes, with one summary bit per HF_VOL_EXTENT_SIZE
 * so that a scan skips clean extents a word at a time (a 10 GiB volume:
 * 320 KiB of bits, 320 bytes of summary).
 *
 * Pure: the caller does the I/O. Two encodings:
 *
 * - Pages, for the `bitmaps` file (§5.1): HF_VOL_BITMAP_PAGE bytes each,
 *   page i covering HF_VOL_BITMAP_PAGE_REGIONS regions from region
 *   i * HF_VOL_BITMAP_PAGE_REGIONS (31 whole extents), little-endian:
 *
 *     off   size  field
 *     0     4     magic "HFBM"
 *     4     4     page index
 *     8     8     the volume's regions (nbits)
 *     16    108   zero
 *     124   4     CRC-32C of bytes 0..123 then 128..4095
 *     128   3968  bits: region r of the page is bit r % 8 of byte r / 8;
 *                 bits past the volume's end are zero
 *
 *   A page that does not decode (torn by a crash, never written) must be
 *   taken as all dirty (hf_vol_bitmap_page_range, then set): a resync
 *   may copy more than needed, never less.
 *
 * - Runs, for the BITMAP frame (wire.h): the bits of regions
 *   [first, first + count) as run lengths, LEB128 varints (minimal: no
 *   trailing zero groups), alternating clear and set, starting with a
 *   clear run that alone may be 0; every later run is at least 1, and the
 *   runs add up to count exactly. So one encoding per bitmap: what
 *   decodes re-encodes to the same bytes.
 *
 * Byte ranges given to set/clear/next/test are offsets into the volume;
 * set rounds outward to whole regions (a region partly written is dirty),
 * clear inward (a region is clean only when all of it was copied).
 * A bitmap is used from one thread at a time.
 */
#ifndef HF_VOLUME_BITMAP_H
#define HF_VOLUME_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define HF_VOL_BITMAP_PAGE 4096
#define HF_VOL_BITMAP_PAGE_HDR 128
#define HF_VOL_BITMAP_PAGE_REGIONS                                             \
	((uint64_t)(HF_VOL_BITMAP_PAGE - HF_VOL_BITMAP_PAGE_HDR) * 8)

struct hf_vol_bitmap {
	uint64_t nbits;    /* regions in the volume */
	uint64_t count;    /* regions set */
	uint64_t *bits;    /* (nbits + 63) / 64 words */
	uint64_t *summary; /* bit e: some region of extent e is set */
};

/*
 * Sets b up, all clean, for a volume of size bytes (a positive multiple
 * of HF_VOL_REGION_SIZE up to HF_VOL_SIZE_MAX, else HF_EINVAL). Allocates
 * size / 32768 bytes and a little more; returns HF_ENOMEM when that fails
 * (a huge volume's bitmap must not abort the process). Release with
 * hf_vol_bitmap_release, which frees the contents and zeroes b.
 */
int hf_vol_bitmap_init(struct hf_vol_bitmap *b, uint64_t size);
void hf_vol_bitmap_release(struct hf_vol_bitmap *b);

/* The volume size b covers, in bytes. */
uint64_t hf_vol_bitmap_size(const struct hf_vol_bitmap *b);

/*
 * Marks the regions that [off, off + len) touches dirty, or the regions
 * wholly inside it clean. HF_EINVAL (and no change) when the range is
 * not inside the volume; a zero len changes nothing.
 */
int hf_vol_bitmap_set(struct hf_vol_bitmap *b, uint64_t off, uint64_t len);
int hf_vol_bitmap_clear(struct hf_vol_bitmap *b, uint64_t off, uint64_t len);
/* Everything dirty (a bitmap that cannot be trusted), or clean. */
void hf_vol_bitmap_fill(struct hf_vol_bitmap *b);
void hf_vol_bitmap_reset(struct hf_vol_bitmap *b);

/* Is the region holding byte off dirty? (false past the end.) */
bool hf_vol_bitmap_test(const struct hf_vol_bitmap *b, uint64_t off);
/* Regions set, and the bytes they cover. */
uint64_t hf_vol_bitmap_count(const struct hf_vol_bitmap *b);
uint64_t hf_vol_bitmap_dirty_bytes(const struct hf_vol_bitmap *b);

/*
 * The next dirty run: the first dirty region at or after byte from
 * (rounded down to its region), and the dirty regions that follow it,
 * at most max bytes (rounded down to whole regions, at least one
 * region). Writes the run's byte offset and length and returns true, or
 * returns false when nothing is dirty from there on.
 */
bool hf_vol_bitmap_next(const struct hf_vol_bitmap *b, uint64_t from,
			uint64_t max, uint64_t *off, uint64_t *len);

/* dst |= src; HF_EINVAL (no change) unless both cover the same size. */
int hf_vol_bitmap_union(struct hf_vol_bitmap *dst,
			const struct hf_vol_bitmap *src);

/* ---- pages ------------------------------------------------------------- */

/* How many pages the bitmap's file slot holds. */
uint64_t hf_vol_bitmap_pages(const struct hf_vol_bitmap *b);
/* Page i's byte offset into the slot, and the volume bytes it covers. */
void hf_vol_bitmap_page_range(const struct hf_vol_bitmap *b, uint64_t i,
			      uint64_t *off, uint64_t *len);
/*
 * Writes page i (below hf_vol_bitmap_pages) into out. Returns 0, or
 * HF_EINVAL for a page past the end.
 */
int hf_vol_bitmap_page_encode(const struct hf_vol_bitmap *b, uint64_t i,
			      uint8_t out[HF_VOL_BITMAP_PAGE]);
/*
 * Replaces the bits of page i with the page in buf (len bytes). Returns
 * 0, or HF_EPARSE with a sentence in err (wrong length, magic, index or
 * region count, CRC mismatch, non-zero reserved bytes or bits past the
 * end) and b unchanged.
 */
int hf_vol_bitmap_page_decode(struct hf_vol_bitmap *b, uint64_t i,
			      const uint8_t *buf, size_t len,
			      char err[HF_VOL_ERR_MAX]);

/* ---- runs (the BITMAP frame) -------------------------------------------- */

/*
 * Longest a run's varint gets; an out buffer of 2 * this always makes
 * progress.
 */
#define HF_VOL_RLE_VARINT_MAX 10

/*
 * Encodes the bits of regions [*from, to) (to at most nbits) as runs into
 * out (cap bytes), stopping at a run boundary when the next run would
 * not fit. Advances *from past the regions encoded (the frame's count is
 * the difference) and returns the bytes written. Call again with the
 * advanced *from for the next frame until *from == to.
 */
size_t hf_vol_bitmap_rle_encode(const struct hf_vol_bitmap *b, uint64_t *from,
				uint64_t to, uint8_t *out, size_t cap);
/*
 * Checks that in (len bytes) is runs for [first, first + count) of a
 * volume of nbits regions, per the rules above. Returns 0, or HF_EPARSE
 * with the byte offset and the rule in err.
 */
int hf_vol_bitmap_rle_check(uint64_t nbits, uint64_t first, uint64_t count,
			    const uint8_t *in, size_t len,
			    char err[HF_VOL_ERR_MAX]);
/*
 * Adds (ORs) the set runs of in to b, which is how a peer's bitmap joins
 * one's own (§5.3: the union of both sides). Checks in first
 * (hf_vol_bitmap_rle_check against b's nbits): on an error b is
 * unchanged.
 */
int hf_vol_bitmap_rle_decode(struct hf_vol_bitmap *b, uint64_t first,
			     uint64_t count, const uint8_t *in, size_t len,
			     char err[HF_VOL_ERR_MAX]);

#endif
