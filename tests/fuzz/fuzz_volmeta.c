/*
 * fuzz_volmeta.c - libFuzzer target for a replica's metadata block and
 * the generation-id rules (volume/meta.h).
 *
 * The first byte picks how the rest is read: odd, as a block whose CRC is
 * set right before decoding (so that the fuzzer reaches the field checks
 * behind the CRC); even, as it is. A refusal is HF_EPARSE with a sentence
 * free of control bytes; a decoded block encodes back to the same bytes.
 * Two decoded replicas (the block, and the block with its generation ids
 * rotated) are held against each other: every verdict has a reason,
 * comparing a consistent replica with itself finds nothing to copy but
 * its own activity log, and a rotation keeps the ids valid, makes the
 * rotated copy the source of a bitmap resync to the old one (its bitmap
 * starts at the old generation) and the old copy refuse to be its source.
 * A first byte with bit 1 set reads the rest as an activity log's slot
 * instead (the same CRC choice), held to the same rules.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "volume/meta.h"

static void check_sentence(const char *err)
{
	if (!*err)
		abort();
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static void check_verdict(struct hf_vol_verdict v)
{
	if (!v.why || !*v.why || (unsigned)v.action > HF_VOL_SYNC_STALE)
		abort();
	if ((v.my_al || v.peer_al) && v.action != HF_VOL_SYNC_AL &&
	    v.action != HF_VOL_SYNC_BITMAP)
		abort();
}

static void check_gens(const struct hf_vol_meta *m)
{
	struct hf_vol_side me = {m->gens, m->flags}, old = me;
	struct hf_vol_gen fresh;
	struct hf_vol_verdict v, back;
	char err[HF_VOL_ERR_MAX];

	v = hf_vol_gen_compare(&me, &me);
	check_verdict(v);
	if ((m->flags & HF_VOL_F_CONSISTENT) &&
	    v.action != (m->flags & HF_VOL_F_PRIMARY_CRASHED ? HF_VOL_SYNC_AL
							    : HF_VOL_SYNC_NONE))
		abort();
	/* A fresh id unlike every one held. */
	memset(fresh.b, 0xee, sizeof(fresh.b));
	for (size_t i = 0; i < sizeof(fresh.b); i++)
		fresh.b[i] ^= m->gens.current.b[i] ^ m->gens.bitmap.b[i] ^
			      m->gens.history[0].b[i] ^
			      m->gens.history[1].b[i];
	if (hf_vol_gen_equal(&fresh, &m->gens.current) ||
	    hf_vol_gen_equal(&fresh, &m->gens.bitmap) ||
	    hf_vol_gen_equal(&fresh, &m->gens.history[0]) ||
	    hf_vol_gen_equal(&fresh, &m->gens.history[1]) ||
	    hf_vol_gen_is_zero(&fresh))
		return;
	hf_vol_gens_rotate(&me.gens, &fresh);
	if (hf_vol_gens_check(&me.gens, err))
		abort();
	back = hf_vol_gen_compare(&old, &me);
	check_verdict(back);
	v = hf_vol_gen_compare(&me, &old);
	check_verdict(v);
	if (hf_vol_gen_is_zero(&m->gens.bitmap) &&
	    !hf_vol_gen_is_zero(&m->gens.current) &&
	    (m->flags & HF_VOL_F_CONSISTENT) &&
	    !(m->flags & HF_VOL_F_PRIMARY_CRASHED) &&
	    (v.action != HF_VOL_SYNC_BITMAP ||
	     back.action != HF_VOL_SYNC_REFUSE))
		abort();
	hf_vol_gens_bitmap_done(&me.gens);
	if (hf_vol_gens_check(&me.gens, err))
		abort();
}

static int al_slot(uint8_t how, const uint8_t *in, size_t len)
{
	static uint8_t slot[HF_VOL_AL_SLOT], again[HF_VOL_AL_SLOT];
	static struct hf_vol_al a;
	char err[HF_VOL_ERR_MAX] = "";
	int rc;

	if (how & 1) {
		memset(slot, 0, sizeof(slot));
		memcpy(slot, in, len < sizeof(slot) ? len : sizeof(slot));
		hf_vol_put32(slot + HF_VOL_AL_SLOT - 4,
			     hf_crc32c(0, slot, HF_VOL_AL_SLOT - 4));
		in = slot;
		len = sizeof(slot);
	}
	rc = hf_vol_al_decode(in, len, &a, err);
	if (rc) {
		if (rc != HF_EPARSE)
			abort();
		check_sentence(err);
		return 0;
	}
	if (hf_vol_al_encode(&a, again, err) ||
	    memcmp(again, in, sizeof(again)) ||
	    !hf_vol_al_member(&a, a.members[a.nmembers - 1].id))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t blk[HF_VOL_META_SIZE], again[HF_VOL_META_SIZE];
	const uint8_t *in = data + 1;
	size_t len = size ? size - 1 : 0;
	struct hf_vol_meta m;
	char err[HF_VOL_ERR_MAX] = "";
	int rc;

	if (size == 0)
		return 0;
	if (data[0] & 2)
		return al_slot(data[0], in, len);
	if (data[0] & 1) {
		memset(blk, 0, sizeof(blk));
		memcpy(blk, in, len < sizeof(blk) ? len : sizeof(blk));
		hf_vol_put32(blk + HF_VOL_META_SIZE - 4,
			     hf_crc32c(0, blk, HF_VOL_META_SIZE - 4));
		in = blk;
		len = sizeof(blk);
	}
	rc = hf_vol_meta_decode(in, len, &m, err);
	if (rc) {
		if (rc != HF_EPARSE)
			abort();
		check_sentence(err);
		return 0;
	}
	if (hf_vol_meta_encode(&m, again, err) || len != sizeof(again) ||
	    memcmp(again, in, sizeof(again)))
		abort();
	check_gens(&m);
	return 0;
}
