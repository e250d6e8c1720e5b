/*
 * test_volwire.c - the volume protocol's frames (volume/wire.h): the
 * header byte by byte, a round trip of every type (whole, byte by byte,
 * and back to back in one stream), what the decoder says it needs, and
 * each refusal with its sentence, on decoding and on encoding.
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
#include "common/util.h"
#include "volume/bitmap.h"
#include "volume/wire.h"

#define R HF_VOL_REGION_SIZE

static uint8_t data[HF_VOL_DATA_MAX];
static uint8_t runs[64];
static uint8_t extents[5 * 8];

static struct hf_vol_gen gen(uint8_t v)
{
	struct hf_vol_gen g;

	memset(g.b, v, sizeof(g.b));
	return g;
}

/* A valid frame of each type, with every field set to something. */
static void sample(enum hf_volw_type t, struct hf_volw_frame *f)
{
	memset(f, 0, sizeof(*f));
	f->type = t;
	f->id = 0x0102030405060708ull + t;
	f->epoch = 42;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	switch (t) {
	case HF_VOLW_HELLO:
		f->u.hello.role = HF_VOLW_ROLE_PRIMARY;
		f->u.hello.me.flags = HF_VOL_F_CONSISTENT;
		f->u.hello.me.gens.current = gen(1);
		f->u.hello.me.gens.bitmap = gen(2);
		memset(f->u.hello.proof, 0xab, sizeof(f->u.hello.proof));
		strcpy(f->u.hello.volume_id, "0f6c3a52-5a2e-4f0b-9b7e-2d4c1e6b8a90");
		strcpy(f->u.hello.replica_id, "r-2");
		strcpy(f->u.hello.node_id, "node-a.example");
		break;
	case HF_VOLW_HELLO_OK:
		f->u.hello_ok.size = (uint64_t)1 << 30;
		f->u.hello_ok.epoch = 42;
		f->u.hello_ok.replica.flags = HF_VOL_F_CONSISTENT;
		f->u.hello_ok.replica.gens.current = gen(1);
		f->u.hello_ok.npeers = 2;
		strcpy(f->u.hello_ok.peers[0].id, "r-1");
		f->u.hello_ok.peers[0].regions = 17;
		strcpy(f->u.hello_ok.peers[1].id, "r-3");
		break;
	case HF_VOLW_WRITE:
	case HF_VOLW_READ_DATA:
	case HF_VOLW_RESYNC_DATA:
		f->off = 1000 * R;
		f->data = data;
		f->data_len = 3 * R;
		break;
	case HF_VOLW_DIRTY:
		f->off = 8 * R;
		f->u.range.len = 2 * R;
		strcpy(f->u.range.peer, "r-3");
		break;
	case HF_VOLW_TRIM:
		f->off = (uint64_t)5 << 30;
		f->u.range.len = (uint64_t)1 << 30;
		break;
	case HF_VOLW_READ:
		f->off = 4 * R;
		f->u.range.len = HF_VOL_DATA_MAX;
		break;
	case HF_VOLW_GEN:
		f->u.gen.current = gen(3);
		f->u.gen.bitmap = gen(1);
		f->u.gen.history[0] = gen(2);
		break;
	case HF_VOLW_SNAP:
		f->u.snap.op = HF_VOLW_SNAP_TAKE;
		f->u.snap.size = 64 * 1024 * 1024;
		strcpy(f->u.snap.id, "snap-1");
		break;
	case HF_VOLW_BITMAP_GET:
		strcpy(f->u.bitmap.peer, "r-3");
		break;
	case HF_VOLW_BITMAP: {
		struct hf_vol_bitmap b;
		uint64_t from = 100;
		size_t n;

		assert_int_equal(hf_vol_bitmap_init(&b, 1000 * R), 0);
		hf_vol_bitmap_set(&b, 150 * R, 10 * R);
		hf_vol_bitmap_set(&b, 400 * R, R);
		n = hf_vol_bitmap_rle_encode(&b, &from, 500, runs, sizeof(runs));
		hf_vol_bitmap_release(&b);
		strcpy(f->u.bitmap.peer, "r-3");
		f->u.bitmap.nbits = 1000;
		f->u.bitmap.first = 100;
		f->u.bitmap.count = from - 100;
		f->data = runs;
		f->data_len = (uint32_t)n;
		break;
	}
	case HF_VOLW_AL: {
		const uint64_t e[] = {1, 7, 9000, 9001, 12000};

		for (size_t i = 0; i < HF_ARRAY_LEN(e); i++)
			hf_vol_put64(extents + 8 * i, e[i]);
		f->u.al.nmembers = 2;
		strcpy(f->u.al.members[0].id, "r-1");
		memset(f->u.al.members[0].gen.b, 0x11, HF_VOL_GEN_LEN);
		strcpy(f->u.al.members[1].id, "r-2");
		memset(f->u.al.members[1].gen.b, 0x22, HF_VOL_GEN_LEN);
		f->u.al.count = HF_ARRAY_LEN(e);
		f->data = extents;
		f->data_len = sizeof(extents);
		break;
	}
	case HF_VOLW_FENCED:
		f->u.fenced_epoch = 43;
		break;
	case HF_VOLW_MARK:
	case HF_VOLW_MARK_OK:
		f->u.mark.seq = 0x1122334455667788ull;
		f->u.mark.time_ns = 1796581461268291294ull;
		break;
	case HF_VOLW_SUMS:
		f->off = (uint64_t)HF_VOL_DATA_MAX * 3;
		f->u.sums.len = (uint64_t)HF_VOL_DATA_MAX * 2 + 5 * R;
		f->u.sums.unit = HF_VOL_DATA_MAX;
		break;
	case HF_VOLW_SUMS_DATA:
		/* Three units, the last 5 regions long: three digests. */
		f->off = (uint64_t)HF_VOL_DATA_MAX * 3;
		f->u.sums.len = (uint64_t)HF_VOL_DATA_MAX * 2 + 5 * R;
		f->u.sums.unit = HF_VOL_DATA_MAX;
		f->data = data;
		f->data_len = 3 * HF_VOLW_SUM_LEN;
		break;
	case HF_VOLW_ERROR:
		f->u.error.errnum = 28;
		strcpy(f->u.error.text, "no space left in pool /srv/pool");
		break;
	default:
		break;
	}
}

/* f encoded whole into buf (HF_VOLW_FRAME_MAX bytes); its length. */
static size_t encode_whole(const struct hf_volw_frame *f, uint8_t *buf)
{
	size_t n;
	char err[HF_VOL_ERR_MAX];

	if (hf_volw_encode(f, buf, HF_VOLW_HEAD_MAX, &n, err))
		fail_msg("encode %s: %s", hf_volw_type_name((int)f->type),
			 err);
	if (f->data_len)
		memcpy(buf + n, f->data, f->data_len);
	return n + f->data_len;
}

static void test_header_layout(void **state)
{
	struct hf_volw_frame f;
	uint8_t buf[HF_VOLW_HEAD_MAX];
	size_t n;
	char err[HF_VOL_ERR_MAX];
	const uint8_t want[36] = {
	    'H', 'F', 'V', '1', HF_VOLW_PING, 0, 0, 0, 0, 0, 0, 0,
	    8,   7,   6,   5,   4,  3,  2,  1, /* id */
	    42,  0,   0,   0,   0,  0,  0,  0, /* epoch */
	    0,   0,   0,   0,   0,  0,  0,  0, /* off */
	};

	(void)state;
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_PING;
	f.id = 0x0102030405060708ull;
	f.epoch = 42;
	assert_int_equal(hf_volw_encode(&f, buf, sizeof(buf), &n, err), 0);
	assert_int_equal(n, HF_VOLW_HDR);
	assert_int_equal(HF_VOLW_PING, 20);
	assert_memory_equal(buf, want, sizeof(want));
	/* The CRC covers the header's first 36 bytes (and the payload). */
	assert_int_equal(hf_vol_get32(buf + 36), hf_crc32c(0, buf, 36));

	sample(HF_VOLW_WRITE, &f);
	assert_int_equal(hf_volw_encode(&f, buf, sizeof(buf), &n, err), 0);
	assert_int_equal(n, HF_VOLW_HDR); /* the data is not copied */
	assert_int_equal(hf_vol_get32(buf + 8), 3 * R);
	assert_int_equal(hf_vol_get64(buf + 28), 1000 * R);
	assert_int_equal(hf_vol_get32(buf + 36),
			 hf_crc32c(hf_crc32c(0, buf, 36), data, 3 * R));
}

static void test_roundtrip_every_type(void **state)
{
	uint8_t *buf = malloc(HF_VOLW_FRAME_MAX), *again = malloc(HF_VOLW_FRAME_MAX);

	(void)state;
	for (int t = HF_VOLW_HELLO; t < HF_VOLW_TYPE_END_; t++) {
		struct hf_volw_frame f, back;
		size_t n, n2, need;
		char err[HF_VOL_ERR_MAX];

		sample((enum hf_volw_type)t, &f);
		n = encode_whole(&f, buf);
		if (hf_volw_decode(buf, n, &back, &need, err) || need)
			fail_msg("%s: decode: %s (need %zu)",
				 hf_volw_type_name(t), err, need);
		assert_int_equal(back.type, t);
		assert_int_equal(back.size, n);
		assert_int_equal(back.id, f.id);
		assert_int_equal(back.epoch, 42);
		assert_int_equal(back.off, f.off);
		assert_int_equal(back.data_len, f.data_len);
		if (f.data_len) {
			/* A view into the buffer, not a copy. */
			assert_ptr_equal(back.data, buf + n - f.data_len);
			assert_memory_equal(back.data, f.data, f.data_len);
		}
		n2 = encode_whole(&back, again);
		assert_int_equal(n2, n);
		assert_memory_equal(again, buf, n);
	}
	free(buf);
	free(again);
}

static void test_fields(void **state)
{
	uint8_t *buf = malloc(HF_VOLW_FRAME_MAX);
	struct hf_volw_frame f, b;
	size_t n, need;
	char err[HF_VOL_ERR_MAX];

	(void)state;
	sample(HF_VOLW_HELLO, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.hello.role, HF_VOLW_ROLE_PRIMARY);
	assert_int_equal(b.u.hello.me.flags, HF_VOL_F_CONSISTENT);
	assert_memory_equal(&b.u.hello.me.gens, &f.u.hello.me.gens,
			    sizeof(f.u.hello.me.gens));
	assert_memory_equal(b.u.hello.proof, f.u.hello.proof, 32);
	assert_string_equal(b.u.hello.volume_id, f.u.hello.volume_id);
	assert_string_equal(b.u.hello.replica_id, "r-2");
	assert_string_equal(b.u.hello.node_id, "node-a.example");

	sample(HF_VOLW_HELLO_OK, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.hello_ok.size, (uint64_t)1 << 30);
	assert_int_equal(b.u.hello_ok.npeers, 2);
	assert_string_equal(b.u.hello_ok.peers[1].id, "r-3");
	assert_int_equal(b.u.hello_ok.peers[0].regions, 17);

	sample(HF_VOLW_DIRTY, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.off, 8 * R);
	assert_int_equal(b.u.range.len, 2 * R);
	assert_string_equal(b.u.range.peer, "r-3");

	sample(HF_VOLW_AL, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.al.nmembers, 2);
	assert_string_equal(b.u.al.members[1].id, "r-2");
	assert_int_equal(b.u.al.members[1].gen.b[15], 0x22);
	assert_int_equal(b.u.al.count, 5);
	assert_int_equal(hf_volw_al_extent(&b, 2), 9000);
	assert_int_equal(hf_volw_al_extent(&b, 4), 12000);

	sample(HF_VOLW_BITMAP, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	{
		struct hf_vol_bitmap bm;

		assert_int_equal(hf_vol_bitmap_init(&bm, 1000 * R), 0);
		assert_int_equal(hf_vol_bitmap_rle_decode(&bm, b.u.bitmap.first,
							  b.u.bitmap.count,
							  b.data, b.data_len,
							  err),
				 0);
		assert_int_equal(hf_vol_bitmap_count(&bm), 11);
		assert_true(hf_vol_bitmap_test(&bm, 400 * R));
		hf_vol_bitmap_release(&bm);
	}

	sample(HF_VOLW_ERROR, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.error.errnum, 28);
	assert_string_equal(b.u.error.text, f.u.error.text);

	sample(HF_VOLW_FENCED, &f);
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.fenced_epoch, 43);
	free(buf);
}

/* Fed a byte at a time, the decoder asks for the header, then the frame,
 * and decodes exactly when the frame is whole. */
static void test_incremental(void **state)
{
	uint8_t *buf = malloc(HF_VOLW_FRAME_MAX);
	const enum hf_volw_type types[] = {HF_VOLW_PING, HF_VOLW_HELLO,
					   HF_VOLW_WRITE, HF_VOLW_AL};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(types); i++) {
		struct hf_volw_frame f, b;
		size_t n, need;
		char err[HF_VOL_ERR_MAX];

		sample(types[i], &f);
		n = encode_whole(&f, buf);
		for (size_t k = 0; k < n; k++) {
			if (hf_volw_decode(buf, k, &b, &need, err))
				fail_msg("%s at %zu bytes: %s",
					 hf_volw_type_name(types[i]), k, err);
			assert_int_equal(need, k < HF_VOLW_HDR ? HF_VOLW_HDR : n);
		}
		assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
		assert_int_equal(need, 0);
		assert_int_equal(b.size, n);
	}
	free(buf);
}

/* Frames back to back in one buffer: each decode takes one. */
static void test_stream(void **state)
{
	uint8_t *buf = malloc(4 * HF_VOLW_FRAME_MAX);
	const enum hf_volw_type seq[] = {HF_VOLW_HELLO, HF_VOLW_WRITE,
					 HF_VOLW_DIRTY, HF_VOLW_FLUSH,
					 HF_VOLW_BYE};
	size_t len = 0, at = 0;

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(seq); i++) {
		struct hf_volw_frame f;

		sample(seq[i], &f);
		len += encode_whole(&f, buf + len);
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(seq); i++) {
		struct hf_volw_frame f;
		size_t need;
		char err[HF_VOL_ERR_MAX];

		assert_int_equal(hf_volw_decode(buf + at, len - at, &f, &need,
						err),
				 0);
		assert_int_equal(need, 0);
		assert_int_equal(f.type, seq[i]);
		at += f.size;
	}
	assert_int_equal(at, len);
	free(buf);
}

/* ---- refusals ---------------------------------------------------------- */

static void refix_crc(uint8_t *buf, size_t n)
{
	hf_vol_put32(buf + 36, hf_crc32c(hf_crc32c(0, buf, 36), buf + 40,
					 n - 40));
}

/*
 * Decoding buf's first n bytes fails with code and a sentence holding
 * want; with fewer bytes (at least `early`) it fails the same way already.
 */
static void expect_refused(const uint8_t *buf, size_t n, size_t early,
			   int code, const char *want)
{
	struct hf_volw_frame f;
	size_t need;
	char err[HF_VOL_ERR_MAX] = "";
	int rc = hf_volw_decode(buf, n, &f, &need, err);

	if (rc != code || !strstr(err, want))
		fail_msg("want %d \"%s\", got %d \"%s\"", code, want, rc, err);
	err[0] = 0;
	rc = hf_volw_decode(buf, early, &f, &need, err);
	if (rc != code || !strstr(err, want))
		fail_msg("with %zu bytes: want %d \"%s\", got %d \"%s\"", early,
			 code, want, rc, err);
}

static void test_decode_refusals(void **state)
{
	uint8_t *good = malloc(HF_VOLW_FRAME_MAX), *b = malloc(HF_VOLW_FRAME_MAX);
	struct hf_volw_frame f;
	size_t n;

	(void)state;
	sample(HF_VOLW_WRITE, &f);
	n = encode_whole(&f, good);

	memcpy(b, good, n);
	b[0] = 'X';
	expect_refused(b, n, 1, HF_EPARSE, "frame byte 0: bad magic");
	memcpy(b, good, n);
	b[4] = 0;
	expect_refused(b, n, 5, HF_EPARSE, "frame byte 4: unknown type 0");
	b[4] = HF_VOLW_TYPE_END_;
	expect_refused(b, n, 5, HF_EPARSE, "unknown type 31");
	memcpy(b, good, n);
	b[5] = 0x80;
	expect_refused(b, n, 6, HF_EPARSE, "WRITE with unknown flags 0x80");
	memcpy(b, good, n);
	b[7] = 1;
	expect_refused(b, n, 8, HF_EPARSE, "non-zero reserved");
	/* A length over the cap is refused before the payload is awaited. */
	memcpy(b, good, n);
	hf_vol_put32(b + 8, HF_VOLW_PAYLOAD_MAX + 1);
	expect_refused(b, 12, 12, HF_ETOOBIG, "over the cap of 1048640");
	hf_vol_put32(b + 8, 0xffffffff);
	expect_refused(b, 12, 12, HF_ETOOBIG, "4294967295 payload bytes");
	/* A WRITE of a length that is not whole regions. */
	hf_vol_put32(b + 8, R + 1);
	expect_refused(b, 12, 12, HF_EPARSE, "WRITE cannot have 4097 payload");
	/* Misaligned and out-of-range offsets. */
	memcpy(b, good, n);
	hf_vol_put64(b + 28, 1000 * R + 512);
	expect_refused(b, n, 36, HF_EPARSE,
		       "frame byte 28: WRITE: off 4096512 is not a multiple "
		       "of 4096");
	hf_vol_put64(b + 28, (uint64_t)1 << 51);
	expect_refused(b, n, 36, HF_EPARSE, "inside the largest volume");
	/* A CRC mismatch, in the payload or in the header. */
	memcpy(b, good, n);
	b[n - 1] ^= 1;
	expect_refused(b, n, n, HF_EPARSE, "frame byte 36: WRITE's CRC-32C");
	memcpy(b, good, n);
	b[29] ^= 0x10; /* off moves by a region: still aligned */
	expect_refused(b, n, n, HF_EPARSE, "damaged in transit");
	/* A write ending past the largest volume. */
	memcpy(b, good, n);
	hf_vol_put64(b + 28, HF_VOL_SIZE_MAX - R);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "ends past the largest volume");

	/* Frames without an offset carry 0. */
	sample(HF_VOLW_PING, &f);
	n = encode_whole(&f, b);
	hf_vol_put64(b + 28, R);
	expect_refused(b, n, 36, HF_EPARSE, "PING: off must be 0, not 4096");
	/* Fixed lengths. */
	sample(HF_VOLW_PING, &f);
	n = encode_whole(&f, b);
	hf_vol_put32(b + 8, 1);
	expect_refused(b, 12, 12, HF_EPARSE, "PING cannot have 1 payload");
	free(good);
	free(b);
}

/* Payloads that parse badly: the field and its byte offset are named. */
static void test_payload_refusals(void **state)
{
	uint8_t *b = malloc(HF_VOLW_FRAME_MAX);
	struct hf_volw_frame f;
	size_t n;

	(void)state;
	/* HELLO: the role, an id's characters, bytes left over. */
	sample(HF_VOLW_HELLO, &f);
	n = encode_whole(&f, b);
	b[40] = 9;
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "HELLO: unknown role 9");
	sample(HF_VOLW_HELLO, &f);
	n = encode_whole(&f, b);
	b[40 + 1 + 4 + 64 + 32 + 1] = ' '; /* the volume id's first byte */
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "frame byte 141: the HELLO's volume id must be");
	sample(HF_VOLW_HELLO, &f);
	n = encode_whole(&f, b);
	b[n] = 0;
	hf_vol_put32(b + 8, (uint32_t)(n + 1 - 40));
	refix_crc(b, n + 1);
	expect_refused(b, n + 1, n + 1, HF_EPARSE, "1 bytes after its payload");
	sample(HF_VOLW_HELLO, &f);
	n = encode_whole(&f, b);
	memset(b + 40 + 5 + 16, 1, 16); /* gen.bitmap = gen.current */
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "HELLO: gen.current and gen.bitmap are the same");
	/* An id longer than the payload. */
	sample(HF_VOLW_BITMAP_GET, &f);
	n = encode_whole(&f, b);
	b[40] = 60;
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "the BITMAP_GET payload ends inside peer id");
	/* HELLO_OK: too many peers, more dirty regions than the volume. */
	sample(HF_VOLW_HELLO_OK, &f);
	n = encode_whole(&f, b);
	b[40 + 8 + 8 + 4 + 64] = 9;
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "9 peers, over the limit of 8");
	sample(HF_VOLW_HELLO_OK, &f);
	f.u.hello_ok.peers[0].regions = ((uint64_t)1 << 30) / R + 1;
	assert_int_equal(hf_volw_encode(&f, b, HF_VOLW_HEAD_MAX, &n,
					(char[HF_VOL_ERR_MAX]){0}),
			 HF_EINVAL);
	/* READ over 1 MiB; TRIM of nothing. */
	sample(HF_VOLW_READ, &f);
	n = encode_whole(&f, b);
	hf_vol_put64(b + 40, HF_VOL_DATA_MAX + R);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "READ: length 1052672 is not a positive multiple");
	sample(HF_VOLW_TRIM, &f);
	n = encode_whole(&f, b);
	hf_vol_put64(b + 40, 0);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "TRIM: length 0");
	/* AL: unsorted, counts that do not match the bytes. */
	sample(HF_VOLW_AL, &f);
	n = encode_whole(&f, b);
	/* 1 + 2 members of 20 bytes + the u32 count: extents at 85. */
	hf_vol_put64(b + 85 + 8, 1); /* 1, 1, 9000 */
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "the extents are not strictly increasing at 1");
	sample(HF_VOLW_AL, &f);
	n = encode_whole(&f, b);
	hf_vol_put32(b + 81, 4);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "4 extents take 32 bytes, not 40");
	/* BITMAP: runs that do not cover count. */
	sample(HF_VOLW_BITMAP, &f);
	n = encode_whole(&f, b);
	hf_vol_put64(b + 40 + 4 + 16, f.u.bitmap.count + 1);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "BITMAP: bitmap runs cover");
	/* ERROR: a control byte in the text, errno 0. */
	sample(HF_VOLW_ERROR, &f);
	n = encode_whole(&f, b);
	b[40 + 6 + 2] = '\n';
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE,
		       "ERROR: the text's byte 2 is not printable");
	sample(HF_VOLW_ERROR, &f);
	n = encode_whole(&f, b);
	hf_vol_put32(b + 40, 0);
	refix_crc(b, n);
	expect_refused(b, n, n, HF_EPARSE, "errno 0 is out of range");
	free(b);
}

static void expect_encode_error(const struct hf_volw_frame *f, size_t cap,
				int code, const char *want)
{
	uint8_t buf[HF_VOLW_HEAD_MAX];
	size_t n = 12345;
	char err[HF_VOL_ERR_MAX] = "";

	memset(buf, 0x5a, sizeof(buf));
	if (hf_volw_encode(f, buf, cap, &n, err) != code || !strstr(err, want))
		fail_msg("want %d \"%s\", got \"%s\"", code, want, err);
	assert_int_equal(buf[0], 0x5a);
	assert_int_equal(n, 12345);
}

static void test_encode_refusals(void **state)
{
	static uint8_t big[HF_VOLW_PAYLOAD_MAX];
	struct hf_volw_frame f;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.type = 0;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "type 0 is unknown");
	f.type = HF_VOLW_TYPE_END_;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "unknown");
	sample(HF_VOLW_PING, &f);
	f.flags = 1;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "PING: flags 0x1");
	sample(HF_VOLW_PING, &f);
	f.data = data;
	f.data_len = R;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "PING: carries no bulk data");
	sample(HF_VOLW_WRITE, &f);
	f.off = 1;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "WRITE: off 1 is not a multiple");
	sample(HF_VOLW_WRITE, &f);
	f.data_len = HF_VOL_DATA_MAX + R;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "length 1052672");
	sample(HF_VOLW_WRITE, &f);
	f.data = NULL;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "no data given");
	sample(HF_VOLW_HELLO, &f);
	expect_encode_error(&f, HF_VOLW_HDR + 10, HF_ETOOBIG,
			    "do not hold its header");
	sample(HF_VOLW_HELLO, &f);
	f.u.hello.role = 0;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "unknown role 0");
	sample(HF_VOLW_DIRTY, &f);
	f.u.range.peer[0] = 0;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "DIRTY: the peer id must be");
	sample(HF_VOLW_ERROR, &f);
	memset(f.u.error.text, 'x', sizeof(f.u.error.text));
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "the text must be 1 to 256 bytes");
	/* An AL of more extents than a log holds. */
	sample(HF_VOLW_AL, &f);
	for (uint32_t i = 0; i < HF_VOL_AL_MAX + 1; i++)
		hf_vol_put64(big + 8 * i, i);
	f.u.al.count = HF_VOL_AL_MAX + 1;
	f.data = big;
	f.data_len = 8 * (HF_VOL_AL_MAX + 1);
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "513 extents, over 512");
	/* Digests that do not match the units of the range. */
	sample(HF_VOLW_SUMS_DATA, &f);
	f.data_len = 2 * HF_VOLW_SUM_LEN;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "SUMS_DATA: 64 bytes of digests for 3 units");
	sample(HF_VOLW_SUMS, &f);
	f.u.sums.len = (uint64_t)HF_VOLW_SUMS_MAX * HF_VOL_DATA_MAX + R;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "SUMS: length");
	sample(HF_VOLW_SUMS, &f);
	f.u.sums.unit = 3 * R;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL,
			    "SUMS: unit 12288 is not a power of two");
	sample(HF_VOLW_SUMS, &f);
	f.u.sums.unit = 2 * HF_VOL_DATA_MAX;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "SUMS: unit");
	/* A WRITE too large for one frame. */
	sample(HF_VOLW_WRITE, &f);
	f.data = big;
	f.data_len = sizeof(big);
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "WRITE");
}

/*
 * Header flags: a timed WRITE or TRIM carries its time first, a MARK may
 * be final, a HELLO_OK may say the replica spools; nothing else has any.
 */
static void test_flags(void **state)
{
	uint8_t *buf = malloc(HF_VOLW_FRAME_MAX), *again = malloc(HF_VOLW_FRAME_MAX);
	struct hf_volw_frame f, back;
	char err[HF_VOL_ERR_MAX];
	size_t n, need;

	(void)state;
	sample(HF_VOLW_WRITE, &f);
	f.flags = HF_VOLW_F_TIMED;
	f.time_ns = 1796581461268291294ull;
	n = encode_whole(&f, buf);
	assert_int_equal(buf[5], HF_VOLW_F_TIMED);
	assert_int_equal(hf_vol_get32(buf + 8), 8 + 3 * R);
	assert_int_equal(hf_vol_get64(buf + 40), f.time_ns);
	assert_int_equal(hf_volw_decode(buf, n, &back, &need, err), 0);
	assert_int_equal(need, 0);
	assert_int_equal(back.flags, HF_VOLW_F_TIMED);
	assert_int_equal(back.time_ns, f.time_ns);
	assert_int_equal(back.data_len, 3 * R);
	assert_memory_equal(back.data, data, 3 * R);
	assert_int_equal(encode_whole(&back, again), n);
	assert_memory_equal(again, buf, n);
	/* Not whole regions after the time. */
	memcpy(again, buf, n);
	hf_vol_put32(again + 8, 3 * R);
	expect_refused(again, 12, 12, HF_EPARSE, "WRITE cannot have 12288");

	sample(HF_VOLW_TRIM, &f);
	f.flags = HF_VOLW_F_TIMED;
	f.time_ns = 77;
	n = encode_whole(&f, buf);
	assert_int_equal(hf_vol_get32(buf + 8), 16);
	assert_int_equal(hf_volw_decode(buf, n, &back, &need, err), 0);
	assert_int_equal(back.time_ns, 77);
	assert_int_equal(back.u.range.len, f.u.range.len);

	sample(HF_VOLW_MARK, &f);
	f.flags = HF_VOLW_F_FINAL;
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &back, &need, err), 0);
	assert_int_equal(back.flags, HF_VOLW_F_FINAL);
	assert_int_equal(back.u.mark.seq, f.u.mark.seq);

	sample(HF_VOLW_HELLO_OK, &f);
	f.flags = HF_VOLW_F_SPOOLS;
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &back, &need, err), 0);
	assert_int_equal(back.flags, HF_VOLW_F_SPOOLS);

	/* Each flag on its own types only. */
	sample(HF_VOLW_MARK, &f);
	f.flags = HF_VOLW_F_TIMED;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "MARK: flags 0x1");
	sample(HF_VOLW_WRITE, &f);
	f.flags = HF_VOLW_F_FINAL;
	expect_encode_error(&f, HF_VOLW_HEAD_MAX, HF_EINVAL, "WRITE: flags 0x2");
	sample(HF_VOLW_MARK, &f);
	n = encode_whole(&f, buf);
	buf[5] = HF_VOLW_F_TIMED;
	refix_crc(buf, n);
	expect_refused(buf, n, 6, HF_EPARSE, "MARK with unknown flags 0x01");
	free(buf);
	free(again);
}

static void test_types_table(void **state)
{
	(void)state;
	for (int t = HF_VOLW_HELLO; t < HF_VOLW_TYPE_END_; t++) {
		assert_non_null(hf_volw_type_name(t));
		for (int u = HF_VOLW_HELLO; u < t; u++)
			assert_string_not_equal(hf_volw_type_name(t),
						hf_volw_type_name(u));
	}
	assert_null(hf_volw_type_name(0));
	assert_null(hf_volw_type_name(HF_VOLW_TYPE_END_));
	assert_string_equal(hf_volw_type_name(HF_VOLW_RESYNC_DATA),
			    "RESYNC_DATA");
	assert_int_equal(hf_volw_answer(HF_VOLW_HELLO), HF_VOLW_HELLO_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_WRITE), HF_VOLW_WRITE_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_TRIM), HF_VOLW_TRIM_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_FLUSH), HF_VOLW_FLUSH_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_READ), HF_VOLW_READ_DATA);
	assert_int_equal(hf_volw_answer(HF_VOLW_GEN), HF_VOLW_GEN_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_RESYNC_DATA),
			 HF_VOLW_RESYNC_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_BITMAP_GET), HF_VOLW_BITMAP);
	assert_int_equal(hf_volw_answer(HF_VOLW_AL), HF_VOLW_AL_OK);
	assert_int_equal(hf_volw_answer(HF_VOLW_PING), HF_VOLW_PONG);
	assert_int_equal(hf_volw_answer(HF_VOLW_SUMS), HF_VOLW_SUMS_DATA);
	assert_int_equal(hf_volw_answer(HF_VOLW_DIRTY), 0);
	assert_int_equal(hf_volw_answer(HF_VOLW_BYE), 0);
	assert_int_equal(hf_volw_answer(HF_VOLW_WRITE_OK), 0);
}

/* The largest frames: 1 MiB of data, a BITMAP filling the cap. */
static void test_largest(void **state)
{
	uint8_t *buf = malloc(HF_VOLW_FRAME_MAX), *rle = malloc(HF_VOLW_PAYLOAD_MAX);
	struct hf_volw_frame f, b;
	struct hf_vol_bitmap bm;
	uint64_t from = 0;
	size_t n, need;
	char err[HF_VOL_ERR_MAX];

	(void)state;
	sample(HF_VOLW_WRITE, &f);
	f.data_len = HF_VOL_DATA_MAX;
	n = encode_whole(&f, buf);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.data_len, HF_VOL_DATA_MAX);
	/* Alternate bits: the worst case for runs, split to fit a frame. */
	assert_int_equal(hf_vol_bitmap_init(&bm, (uint64_t)8 << 30), 0);
	for (uint64_t r = 0; r < bm.nbits; r += 2)
		hf_vol_bitmap_set(&bm, r * R, R);
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_BITMAP;
	strcpy(f.u.bitmap.peer, "r-2");
	f.u.bitmap.nbits = bm.nbits;
	f.data = rle;
	f.data_len = (uint32_t)hf_vol_bitmap_rle_encode(
	    &bm, &from, bm.nbits, rle, HF_VOLW_PAYLOAD_MAX - (1 + 3 + 24));
	f.u.bitmap.count = from;
	assert_true(from < bm.nbits);
	n = encode_whole(&f, buf);
	assert_true(n <= HF_VOLW_FRAME_MAX);
	assert_int_equal(hf_volw_decode(buf, n, &b, &need, err), 0);
	assert_int_equal(b.u.bitmap.count, from);
	hf_vol_bitmap_release(&bm);
	free(buf);
	free(rle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_roundtrip_every_type),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_decode_refusals),
	    cmocka_unit_test(test_payload_refusals),
	    cmocka_unit_test(test_encode_refusals),
	    cmocka_unit_test(test_flags),
	    cmocka_unit_test(test_types_table),
	    cmocka_unit_test(test_largest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
