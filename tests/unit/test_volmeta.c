/*
 * test_volmeta.c - a replica's metadata block (volume/meta.h): the
 * layout byte by byte, round trips, each refusal with its sentence, the
 * generation-id rotation, and every row of §5.2's comparison table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "volume/meta.h"

static struct hf_vol_gen gen(uint8_t v)
{
	struct hf_vol_gen g;

	memset(g.b, v, sizeof(g.b));
	return g;
}

static void sample(struct hf_vol_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->flags = HF_VOL_F_CONSISTENT | HF_VOL_F_PRIMARY_CRASHED;
	m->size = (uint64_t)10 << 30;
	m->epoch = 7;
	m->gens.current = gen(0x11);
	m->gens.bitmap = gen(0x22);
	m->gens.history[0] = gen(0x33);
	strcpy(m->volume_id, "0f6c3a52-5a2e-4f0b-9b7e-2d4c1e6b8a90");
	strcpy(m->replica_id, "r-1");
	strcpy(m->name, "hello-world-hello-0");
	m->npeers = 2;
	strcpy(m->peers[0].id, "r-2");
	m->peers[0].slot = 0;
	strcpy(m->peers[1].id, "r-3");
	m->peers[1].slot = 5;
}

static void expect_same(const struct hf_vol_meta *a, const struct hf_vol_meta *b)
{
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->resync_cursor, b->resync_cursor);
	assert_memory_equal(&a->gens, &b->gens, sizeof(a->gens));
	assert_string_equal(a->volume_id, b->volume_id);
	assert_string_equal(a->replica_id, b->replica_id);
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->resync_source, b->resync_source);
	assert_int_equal(a->npeers, b->npeers);
	for (unsigned i = 0; i < a->npeers; i++) {
		assert_string_equal(a->peers[i].id, b->peers[i].id);
		assert_int_equal(a->peers[i].slot, b->peers[i].slot);
	}
}

static void test_layout(void **state)
{
	struct hf_vol_meta m;
	uint8_t blk[HF_VOL_META_SIZE];
	char err[HF_VOL_ERR_MAX];

	(void)state;
	sample(&m);
	assert_int_equal(hf_vol_meta_encode(&m, blk, err), 0);
	assert_memory_equal(blk, "HFVOLMD1", 8);
	assert_int_equal(hf_vol_get32(blk + 8), 1);
	assert_int_equal(hf_vol_get32(blk + 12), m.flags);
	assert_int_equal(hf_vol_get64(blk + 16), m.size);
	/* Little-endian whatever the host: the size's low byte first. */
	assert_int_equal(blk[16], 0);
	assert_int_equal(blk[20], 2);
	assert_int_equal(hf_vol_get32(blk + 24), 4096);
	assert_int_equal(hf_vol_get32(blk + 28), 2);
	assert_int_equal(hf_vol_get64(blk + 32), 7);
	assert_int_equal(blk[48], 0x11);
	assert_int_equal(blk[64], 0x22);
	assert_int_equal(blk[80], 0x33);
	assert_int_equal(blk[112], strlen(m.volume_id));
	assert_memory_equal(blk + 113, m.volume_id, strlen(m.volume_id));
	assert_int_equal(blk[184], 3);
	assert_memory_equal(blk + 185, "r-1", 3);
	assert_int_equal(blk[256], strlen(m.name));
	assert_int_equal(blk[392], 0);
	assert_memory_equal(blk + 465, "r-2", 3);
	assert_memory_equal(blk + 545, "r-3", 3);
	assert_int_equal(hf_vol_get32(blk + 464 + 80 + 72), 5);
	for (size_t i = 1104; i < 4092; i++)
		if (blk[i])
			fail_msg("byte %zu is 0x%02x, want 0", i, blk[i]);
	assert_int_equal(hf_vol_get32(blk + 4092), hf_crc32c(0, blk, 4092));
}

static void test_roundtrip(void **state)
{
	struct hf_vol_meta m, back;
	uint8_t blk[HF_VOL_META_SIZE], again[HF_VOL_META_SIZE];
	char err[HF_VOL_ERR_MAX];

	(void)state;
	sample(&m);
	assert_int_equal(hf_vol_meta_encode(&m, blk, err), 0);
	if (hf_vol_meta_decode(blk, sizeof(blk), &back, err))
		fail_msg("decode: %s", err);
	expect_same(&m, &back);
	assert_int_equal(hf_vol_meta_encode(&back, again, err), 0);
	assert_memory_equal(blk, again, sizeof(blk));

	/* A resync target, names at their longest, all peers. */
	memset(&m, 0, sizeof(m));
	m.flags = HF_VOL_F_RESYNC_TARGET;
	m.size = 4096;
	m.resync_cursor = 4096;
	memset(m.volume_id, 'v', HF_VOL_ID_MAX);
	memset(m.replica_id, 'r', HF_VOL_ID_MAX);
	memset(m.name, 'n', HF_VOL_NAME_MAX);
	memset(m.resync_source, 's', HF_VOL_ID_MAX);
	m.npeers = HF_VOL_MAX_PEERS;
	for (unsigned i = 0; i < m.npeers; i++) {
		snprintf(m.peers[i].id, sizeof(m.peers[i].id), "peer-%u", i);
		m.peers[i].slot = HF_VOL_MAX_PEERS - 1 - i;
	}
	if (hf_vol_meta_encode(&m, blk, err))
		fail_msg("encode: %s", err);
	if (hf_vol_meta_decode(blk, sizeof(blk), &back, err))
		fail_msg("decode: %s", err);
	expect_same(&m, &back);
}

struct bad {
	const char *want;
	struct hf_vol_meta m;
};

static void expect_refused(struct bad *b)
{
	uint8_t blk[HF_VOL_META_SIZE];
	char err[HF_VOL_ERR_MAX] = "";

	memset(blk, 0xa5, sizeof(blk));
	if (hf_vol_meta_check(&b->m, err) != HF_EINVAL || !strstr(err, b->want))
		fail_msg("check: want \"%s\", got \"%s\"", b->want, err);
	err[0] = 0;
	if (hf_vol_meta_encode(&b->m, blk, err) != HF_EINVAL ||
	    !strstr(err, b->want))
		fail_msg("encode: want \"%s\", got \"%s\"", b->want, err);
	/* Nothing written. */
	assert_int_equal(blk[0], 0xa5);
}

/* Each broken rule is refused, by the check and by the encoder, with a
 * sentence that names it. */
static void test_check_rules(void **state)
{
	struct bad b;

	(void)state;
#define BAD(text, stmt)                                                        \
	do {                                                                   \
		sample(&b.m);                                                  \
		b.want = text;                                                 \
		stmt;                                                          \
		expect_refused(&b);                                            \
	} while (0)
	BAD("size 0 is not", b.m.size = 0);
	BAD("size 4097 is not", b.m.size = 4097);
	BAD("is not a positive multiple", b.m.size = (uint64_t)1 << 51);
	BAD("unknown flags 0x8", b.m.flags |= 8);
	BAD("a resync target cannot be consistent",
	    b.m.flags |= HF_VOL_F_RESYNC_TARGET);
	BAD("the volume id must be", b.m.volume_id[0] = 0);
	BAD("the replica id must be", strcpy(b.m.replica_id, "r 1"));
	BAD("the volume name must be", b.m.name[3] = '\n');
	BAD("a resync target needs a resync source",
	    b.m.flags = HF_VOL_F_RESYNC_TARGET);
	BAD("a resync source without RESYNC_TARGET",
	    strcpy(b.m.resync_source, "r-2"));
	BAD("cannot resync from itself",
	    (b.m.flags = HF_VOL_F_RESYNC_TARGET,
	     strcpy(b.m.resync_source, "r-1")));
	BAD("a resync cursor without RESYNC_TARGET", b.m.resync_cursor = 4096);
	BAD("resync cursor 100 is not",
	    (b.m.flags = HF_VOL_F_RESYNC_TARGET,
	     strcpy(b.m.resync_source, "r-2"), b.m.resync_cursor = 100));
	BAD("within the size",
	    (b.m.flags = HF_VOL_F_RESYNC_TARGET,
	     strcpy(b.m.resync_source, "r-2"),
	     b.m.resync_cursor = b.m.size + 4096));
	BAD("gen.bitmap is set but gen.current is zero",
	    b.m.gens.current = gen(0));
	BAD("gen.history[1] is set but gen.history[0] is zero",
	    (b.m.gens.history[0] = gen(0), b.m.gens.history[1] = gen(9)));
	BAD("gen.current and gen.history[0] are the same",
	    b.m.gens.history[0] = gen(0x11));
	BAD("gen.bitmap and gen.history[1] are the same",
	    b.m.gens.history[1] = gen(0x22));
	BAD("9 peers, over the limit", b.m.npeers = 9);
	BAD("a peer's id must be", b.m.peers[1].id[0] = 0);
	BAD("peer 1 is the replica itself", strcpy(b.m.peers[1].id, "r-1"));
	BAD("bitmap slot 8 is over 7", b.m.peers[1].slot = 8);
	BAD("peer r-2 is listed twice", strcpy(b.m.peers[1].id, "r-2"));
	BAD("share bitmap slot 0", b.m.peers[1].slot = 0);
#undef BAD
}

/* Damaged blocks: each field is refused with its byte offset. */
static void test_decode_errors(void **state)
{
	struct hf_vol_meta m, out;
	uint8_t good[HF_VOL_META_SIZE], blk[HF_VOL_META_SIZE];
	char err[HF_VOL_ERR_MAX];
	static const struct {
		size_t at;
		uint8_t value;
		bool fix_crc;
		const char *want;
	} cases[] = {
	    {0, 'X', true, "no \"HFVOLMD1\" magic"},
	    {8, 2, true, "format version 2"},
	    {300, 1, false, "CRC-32C"},
	    {4092, 0, false, "CRC-32C"},
	    {25, 0, true, "region size 0, not 4096"},
	    {28, 9, true, "9 peers, over the limit"},
	    {112, 65, true, "the volume id is 65 bytes long"},
	    {184 + 71, 1, true, "the replica id's slot has bytes after"},
	    {185, 0, true, "holds a NUL byte"},
	    {464 + 2 * 80, 1, true, "peer slot 2 is not zero"},
	    {464 + 76, 1, true, "peer 0's padding is not zero"},
	    {2000, 1, true, "bytes 1104-4091 must be zero"},
	    {12, 0x10, true, "metadata: unknown flags 0x10"},
	    {48, 0x22, true, "metadata: gen.current and gen.bitmap"},
	};

	(void)state;
	sample(&m);
	assert_int_equal(hf_vol_meta_encode(&m, good, err), 0);
	if (hf_vol_meta_decode(good, sizeof(good) - 1, &out, err) !=
		HF_EPARSE ||
	    !strstr(err, "4095 bytes, not 4096"))
		fail_msg("short block: %s", err);
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		memcpy(blk, good, sizeof(blk));
		if (cases[i].at == 48)
			memset(blk + 48, 0x22, 16);
		else
			blk[cases[i].at] = cases[i].value;
		if (cases[i].fix_crc)
			hf_vol_put32(blk + 4092, hf_crc32c(0, blk, 4092));
		err[0] = 0;
		if (hf_vol_meta_decode(blk, sizeof(blk), &out, err) !=
			HF_EPARSE ||
		    !strstr(err, cases[i].want))
			fail_msg("byte %zu = 0x%02x: want \"%s\", got \"%s\"",
				 cases[i].at, cases[i].value, cases[i].want,
				 err);
	}
	/* A torn block (the second half from an older write) fails its CRC. */
	memcpy(blk, good, sizeof(blk));
	memset(blk + 2048, 0, 2048);
	assert_int_equal(hf_vol_meta_decode(blk, sizeof(blk), &out, err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "torn or damaged"));
}

static void test_rotate(void **state)
{
	struct hf_vol_gens g;
	struct hf_vol_gen a = gen(1), b = gen(2), c = gen(3), d = gen(4),
			  e = gen(5);
	char err[HF_VOL_ERR_MAX];

	(void)state;
	memset(&g, 0, sizeof(g));
	hf_vol_gens_rotate(&g, &a); /* from nothing: a alone */
	assert_true(hf_vol_gen_equal(&g.current, &a));
	assert_true(hf_vol_gen_is_zero(&g.bitmap));
	hf_vol_gens_rotate(&g, &b); /* a peer leaves: a is the bitmap's */
	assert_true(hf_vol_gen_equal(&g.current, &b));
	assert_true(hf_vol_gen_equal(&g.bitmap, &a));
	assert_true(hf_vol_gen_is_zero(&g.history[0]));
	hf_vol_gens_rotate(&g, &c); /* another leaves: b to history */
	assert_true(hf_vol_gen_equal(&g.current, &c));
	assert_true(hf_vol_gen_equal(&g.bitmap, &a));
	assert_true(hf_vol_gen_equal(&g.history[0], &b));
	hf_vol_gens_rotate(&g, &d);
	assert_true(hf_vol_gen_equal(&g.history[0], &c));
	assert_true(hf_vol_gen_equal(&g.history[1], &b));
	hf_vol_gens_rotate(&g, &e); /* the oldest falls off */
	assert_true(hf_vol_gen_equal(&g.history[0], &d));
	assert_true(hf_vol_gen_equal(&g.history[1], &c));
	assert_int_equal(hf_vol_gens_check(&g, err), 0);
	hf_vol_gens_bitmap_done(&g); /* resynced: a becomes history */
	assert_true(hf_vol_gen_is_zero(&g.bitmap));
	assert_true(hf_vol_gen_equal(&g.history[0], &a));
	assert_true(hf_vol_gen_equal(&g.history[1], &d));
	assert_int_equal(hf_vol_gens_check(&g, err), 0);
	hf_vol_gens_bitmap_done(&g); /* nothing to move */
	assert_true(hf_vol_gen_equal(&g.history[0], &a));
}

/* ---- the comparison table -------------------------------------------- */

struct row {
	const char *name;
	struct hf_vol_side me, peer;
	enum hf_vol_sync want;
	bool my_al, peer_al;
	const char *why; /* a word the reason must hold */
};

static struct hf_vol_side side(uint32_t flags, uint8_t cur, uint8_t bm,
			       uint8_t h0, uint8_t h1)
{
	struct hf_vol_side s;

	memset(&s, 0, sizeof(s));
	s.flags = flags;
	if (cur)
		s.gens.current = gen(cur);
	if (bm)
		s.gens.bitmap = gen(bm);
	if (h0)
		s.gens.history[0] = gen(h0);
	if (h1)
		s.gens.history[1] = gen(h1);
	return s;
}

#define OK HF_VOL_F_CONSISTENT
#define CRASHED (HF_VOL_F_CONSISTENT | HF_VOL_F_PRIMARY_CRASHED)
#define TARGET HF_VOL_F_RESYNC_TARGET

static void test_compare_table(void **state)
{
	const struct row rows[] = {
	    {"identical", side(OK, 1, 0, 0, 0), side(OK, 1, 0, 0, 0),
	     HF_VOL_SYNC_NONE, false, false, "identical"},
	    {"both fresh", side(OK, 0, 0, 0, 0), side(OK, 0, 0, 0, 0),
	     HF_VOL_SYNC_NONE, false, false, "identical"},
	    {"identical, histories differ", side(OK, 1, 0, 5, 0),
	     side(OK, 1, 0, 6, 7), HF_VOL_SYNC_NONE, false, false, "same"},
	    {"my crash", side(CRASHED, 1, 0, 0, 0), side(OK, 1, 0, 0, 0),
	     HF_VOL_SYNC_AL, true, false, "activity-log"},
	    {"the peer's crash", side(OK, 1, 0, 0, 0),
	     side(CRASHED, 1, 0, 0, 0), HF_VOL_SYNC_AL, false, true,
	     "activity-log"},
	    {"both crashed", side(CRASHED, 1, 0, 0, 0),
	     side(CRASHED, 1, 0, 0, 0), HF_VOL_SYNC_AL, true, true,
	     "activity-log"},
	    {"bitmap", side(OK, 2, 1, 0, 0), side(OK, 1, 0, 0, 0),
	     HF_VOL_SYNC_BITMAP, false, false, "bitmap resync"},
	    {"bitmap, the old primary crashed", side(OK, 2, 1, 0, 0),
	     side(CRASHED, 1, 0, 0, 0), HF_VOL_SYNC_BITMAP, false, true,
	     "bitmap"},
	    {"bitmap from an older start", side(OK, 3, 1, 2, 0),
	     side(OK, 1, 0, 0, 0), HF_VOL_SYNC_BITMAP, false, false,
	     "bitmap"},
	    {"missed more: history", side(OK, 3, 2, 1, 0),
	     side(OK, 1, 0, 0, 0), HF_VOL_SYNC_FULL, false, false,
	     "more than one generation"},
	    {"history[1]", side(OK, 4, 0, 3, 1), side(OK, 1, 0, 0, 0),
	     HF_VOL_SYNC_FULL, false, false, "bitmap is gone"},
	    {"peer new (re-replication)", side(OK, 4, 0, 0, 0),
	     side(OK, 0, 0, 0, 0), HF_VOL_SYNC_FULL, false, false,
	     "created empty"},
	    {"peer mid full resync", side(OK, 4, 0, 0, 0),
	     side(TARGET, 0, 0, 0, 0), HF_VOL_SYNC_FULL, false, false,
	     "cursor"},
	    {"peer never completed", side(OK, 4, 0, 0, 0),
	     side(0, 4, 0, 0, 0), HF_VOL_SYNC_FULL, false, false,
	     "no consistent copy"},
	    {"me mid full resync", side(TARGET, 4, 0, 0, 0),
	     side(OK, 4, 0, 0, 0), HF_VOL_SYNC_REFUSE, false, false,
	     "cannot be the source"},
	    {"me not consistent", side(0, 4, 0, 0, 0), side(OK, 4, 0, 0, 0),
	     HF_VOL_SYNC_REFUSE, false, false, "cannot be the source"},
	    {"me empty, peer written", side(OK, 0, 0, 0, 0),
	     side(OK, 3, 0, 0, 0), HF_VOL_SYNC_REFUSE, false, false,
	     "behind"},
	    {"I am the peer's bitmap", side(OK, 1, 0, 0, 0),
	     side(OK, 2, 1, 0, 0), HF_VOL_SYNC_REFUSE, false, false,
	     "newer generation"},
	    {"I am in the peer's history", side(OK, 1, 0, 0, 0),
	     side(OK, 3, 2, 1, 0), HF_VOL_SYNC_REFUSE, false, false,
	     "split brain"},
	    {"unrelated", side(OK, 1, 0, 0, 0), side(OK, 2, 0, 0, 0),
	     HF_VOL_SYNC_STALE, false, false, "unrelated"},
	    {"diverged after a common bitmap", side(OK, 3, 1, 0, 0),
	     side(OK, 2, 1, 0, 0), HF_VOL_SYNC_STALE, false, false,
	     "split brain"},
	    {"my history is not the peer's bitmap", side(OK, 5, 0, 4, 0),
	     side(OK, 6, 4, 0, 0), HF_VOL_SYNC_STALE, false, false,
	     "stale"},
	};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(rows); i++) {
		const struct row *r = &rows[i];
		struct hf_vol_verdict v = hf_vol_gen_compare(&r->me, &r->peer);

		if (v.action != r->want || v.my_al != r->my_al ||
		    v.peer_al != r->peer_al || !v.why ||
		    !strstr(v.why, r->why))
			fail_msg("%s: got %s (my_al %d, peer_al %d, \"%s\"), "
				 "want %s (%d, %d, \"...%s...\")",
				 r->name, hf_vol_sync_name(v.action), v.my_al,
				 v.peer_al, v.why ? v.why : "(null)",
				 hf_vol_sync_name(r->want), r->my_al,
				 r->peer_al, r->why);
	}
	assert_string_equal(hf_vol_sync_name(HF_VOL_SYNC_BITMAP), "bitmap");
	assert_string_equal(hf_vol_sync_name((enum hf_vol_sync)99), "?");
}

/*
 * The rules agree with the rotation: a primary that started generations
 * while a peer was away finds the bitmap resync while its bitmap holds,
 * and a full one once it has been resynced to another peer.
 */
static void test_compare_after_rotation(void **state)
{
	struct hf_vol_side me = side(OK, 1, 0, 0, 0), peer = side(OK, 1, 0, 0, 0),
			   back;
	struct hf_vol_gen g2 = gen(2), g3 = gen(3);

	(void)state;
	hf_vol_gens_rotate(&me.gens, &g2); /* peer dropped */
	assert_int_equal(hf_vol_gen_compare(&me, &peer).action,
			 HF_VOL_SYNC_BITMAP);
	/* The other way round, the old copy must not be the source. */
	assert_int_equal(hf_vol_gen_compare(&peer, &me).action,
			 HF_VOL_SYNC_REFUSE);
	back = me;
	hf_vol_gens_rotate(&me.gens, &g3); /* a second drop */
	assert_int_equal(hf_vol_gen_compare(&me, &peer).action,
			 HF_VOL_SYNC_BITMAP);
	hf_vol_gens_bitmap_done(&me.gens); /* bitmaps emptied by a resync */
	assert_int_equal(hf_vol_gen_compare(&me, &peer).action,
			 HF_VOL_SYNC_FULL);
	/* A copy at the middle generation is in my history now. */
	assert_int_equal(hf_vol_gen_compare(&me, &back).action,
			 HF_VOL_SYNC_FULL);
}

/* The activity log's slot: its layout, a round trip, and each refusal. */
static void test_activity_log(void **state)
{
	static struct hf_vol_al a, b;
	static uint8_t slot[HF_VOL_AL_SLOT], again[HF_VOL_AL_SLOT];
	char err[HF_VOL_ERR_MAX];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.epoch = 7;
	a.seq = 12;
	a.nmembers = 2;
	strcpy(a.members[0].id, "replica-a");
	a.members[0].gen = gen(0xa1);
	strcpy(a.members[1].id, "replica-b");
	a.members[1].gen = gen(0xb2);
	a.count = 3;
	a.extents[0] = 0;
	a.extents[1] = 5;
	a.extents[2] = 1u << 20;
	assert_int_equal(hf_vol_al_encode(&a, slot, err), 0);
	assert_memory_equal(slot, "HFVOLAL1", 8);
	assert_int_equal(hf_vol_get64(slot + 8), 7);
	assert_int_equal(hf_vol_get64(slot + 16), 12);
	assert_int_equal(slot[24], 2);
	assert_int_equal(hf_vol_get32(slot + 25), 3);
	assert_int_equal(slot[29], strlen("replica-a"));
	assert_memory_equal(slot + 30, "replica-a", 9);
	assert_int_equal(slot[29 + 72], 0xa1);
	assert_int_equal(slot[29 + 88], strlen("replica-b"));
	assert_int_equal(hf_vol_get64(slot + 821 + 8), 5);
	assert_int_equal(hf_vol_get32(slot + HF_VOL_AL_SLOT - 4),
			 hf_crc32c(0, slot, HF_VOL_AL_SLOT - 4));
	assert_int_equal(hf_vol_al_decode(slot, sizeof(slot), &b, err), 0);
	assert_int_equal(b.epoch, 7);
	assert_int_equal(b.seq, 12);
	assert_int_equal(b.count, 3);
	assert_int_equal(b.extents[2], 1u << 20);
	assert_non_null(hf_vol_al_member(&b, "replica-b"));
	assert_null(hf_vol_al_member(&b, "replica-c"));
	assert_true(hf_vol_gen_equal(&hf_vol_al_member(&b, "replica-b")->gen,
				     &a.members[1].gen));
	assert_int_equal(hf_vol_al_encode(&b, again, err), 0);
	assert_memory_equal(slot, again, sizeof(slot));
	/* No extent is a record too (every write flushed). */
	b.count = 0;
	assert_int_equal(hf_vol_al_encode(&b, again, err), 0);
	assert_int_equal(hf_vol_al_decode(again, sizeof(again), &b, err), 0);
	assert_int_equal(b.count, 0);

	/* Refused: out of order, a member twice, none, too many extents. */
	b = a;
	b.extents[1] = 0;
	assert_int_equal(hf_vol_al_encode(&b, again, err), HF_EINVAL);
	assert_non_null(strstr(err, "not strictly increasing"));
	b = a;
	strcpy(b.members[1].id, "replica-a");
	assert_int_equal(hf_vol_al_encode(&b, again, err), HF_EINVAL);
	assert_non_null(strstr(err, "member replica-a twice"));
	b = a;
	b.nmembers = 0;
	assert_int_equal(hf_vol_al_encode(&b, again, err), HF_EINVAL);
	b = a;
	b.count = HF_VOL_AL_MAX + 1;
	assert_int_equal(hf_vol_al_encode(&b, again, err), HF_EINVAL);
	/* Damaged: a short slot, a CRC, bytes after the extents, zeroes. */
	assert_int_equal(hf_vol_al_decode(slot, 100, &b, err), HF_EPARSE);
	memcpy(again, slot, sizeof(slot));
	again[821 + 3 * 8] = 1;
	assert_int_equal(hf_vol_al_decode(again, sizeof(again), &b, err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "CRC"));
	hf_vol_put32(again + HF_VOL_AL_SLOT - 4,
		     hf_crc32c(0, again, HF_VOL_AL_SLOT - 4));
	assert_int_equal(hf_vol_al_decode(again, sizeof(again), &b, err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "not zero"));
	memset(again, 0, sizeof(again));
	assert_int_equal(hf_vol_al_decode(again, sizeof(again), &b, err),
			 HF_EPARSE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_check_rules),
	    cmocka_unit_test(test_decode_errors),
	    cmocka_unit_test(test_rotate),
	    cmocka_unit_test(test_compare_table),
	    cmocka_unit_test(test_compare_after_rotation),
	    cmocka_unit_test(test_activity_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
