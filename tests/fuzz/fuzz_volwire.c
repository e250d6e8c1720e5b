/*
 * fuzz_volwire.c - libFuzzer target for the volume protocol's frame codec
 * (volume/wire.h) and the BITMAP frame's runs (volume/bitmap.h).
 *
 * The input is a byte stream, decoded frame after frame as a connection
 * would. The contract checked: a refusal is HF_EPARSE or HF_ETOOBIG with
 * a sentence free of control bytes; "need more" asks for more than is
 * there and at most a whole frame, and the prefix of a decoded frame
 * always asks for more (never decodes, never refuses); a decoded frame,
 * encoded again, gives back exactly the bytes it was decoded from (one
 * encoding per frame); a BITMAP's runs decode into a bitmap and encode
 * back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "volume/bitmap.h"
#include "volume/wire.h"

static void check_sentence(const char *err)
{
	if (!*err)
		abort();
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static void check_runs(const struct hf_volw_frame *f)
{
	struct hf_vol_bitmap b;
	uint64_t from = f->u.bitmap.first;
	uint8_t *out;
	size_t n;
	char err[HF_VOL_ERR_MAX];

	/* Bitmaps of volumes up to 64 GiB, to keep the fuzzer's memory. */
	if (f->u.bitmap.nbits > (uint64_t)1 << 24)
		return;
	if (hf_vol_bitmap_init(&b, f->u.bitmap.nbits * HF_VOL_REGION_SIZE))
		abort();
	if (hf_vol_bitmap_rle_decode(&b, f->u.bitmap.first, f->u.bitmap.count,
				     f->data, f->data_len, err))
		abort(); /* the wire decoder checked them */
	out = malloc(f->data_len + 1);
	n = hf_vol_bitmap_rle_encode(&b, &from,
				     f->u.bitmap.first + f->u.bitmap.count, out,
				     f->data_len);
	if (n != f->data_len || from != f->u.bitmap.first + f->u.bitmap.count ||
	    memcmp(out, f->data, n))
		abort();
	free(out);
	hf_vol_bitmap_release(&b);
}

static void check_frame(const uint8_t *in, const struct hf_volw_frame *f)
{
	uint8_t head[HF_VOLW_HEAD_MAX];
	struct hf_volw_frame g;
	size_t n, need;
	char err[HF_VOL_ERR_MAX];

	if (f->size < HF_VOLW_HDR || f->size > HF_VOLW_FRAME_MAX)
		abort();
	if (!hf_volw_type_name((int)f->type))
		abort();
	if (hf_volw_encode(f, head, sizeof(head), &n, err))
		abort();
	if (n + f->data_len != f->size || memcmp(head, in, n) ||
	    (f->data_len && memcmp(f->data, in + n, f->data_len)))
		abort();
	/* A prefix is never a frame, nor an error. */
	if (hf_volw_decode(in, f->size - 1 - (f->size - 1) / 3, &g, &need,
			   err) ||
	    need <= f->size - 1 - (f->size - 1) / 3 || need > f->size)
		abort();
	if (f->type == HF_VOLW_BITMAP)
		check_runs(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t at = 0;

	while (at < size) {
		struct hf_volw_frame f;
		size_t need;
		char err[HF_VOL_ERR_MAX] = "";
		int rc = hf_volw_decode(data + at, size - at, &f, &need, err);

		if (rc) {
			if (rc != HF_EPARSE && rc != HF_ETOOBIG)
				abort();
			check_sentence(err);
			break;
		}
		if (need) {
			if (need <= size - at || need > HF_VOLW_FRAME_MAX ||
			    (need != HF_VOLW_HDR && size - at < HF_VOLW_HDR))
				abort();
			break;
		}
		check_frame(data + at, &f);
		at += f.size;
	}
	return 0;
}
