/*
 * meta.h - a replica's metadata (docs/design/volumes.md §5.2): the block
 * stored in <pool>/replicas/<volume id>/<replica id>/meta, and the rules
 * over its generation ids that say what a reconnecting pair of replicas
 * must copy.
 *
 * Pure: buffers in, structs out, no allocation. The caller does the I/O
 * (the file is written atomically: meta.new, fsync, rename, fsync dir).
 *
 * The block is HF_VOL_META_SIZE bytes, little-endian, every byte defined
 * (padding and the tail are zero, so one struct has exactly one block):
 *
 *   off   size  field
 *   0     8     magic "HFVOLMD1"
 *   8     4     format version (1)
 *   12    4     flags (volume.h's HF_VOL_F_*)
 *   16    8     size of the volume, bytes
 *   24    4     region size (4096)
 *   28    4     number of peers (<= HF_VOL_MAX_PEERS)
 *   32    8     epoch: the highest this replica accepted (fencing)
 *   40    8     resync cursor: bytes of a full resync done
 *   48    16    gen.current
 *   64    16    gen.bitmap
 *   80    32    gen.history[2]
 *   112   72    volume id      (an id slot: u8 length, 64 bytes, 7 zero)
 *   184   72    replica id     (id slot)
 *   256   136   volume name    (u8 length, 128 bytes, 7 zero)
 *   392   72    resync source  (id slot; length 0: none)
 *   464   8*80  peers: id slot, u32 bitmap slot, u32 zero
 *   1104  ...   zero
 *   4092  4     CRC-32C of bytes 0..4091
 */
#ifndef HF_VOLUME_META_H
#define HF_VOLUME_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define HF_VOL_META_SIZE 4096
#define HF_VOL_META_VERSION 1

struct hf_vol_meta_peer {
	char id[HF_VOL_ID_MAX + 1]; /* the peer's replica id */
	uint32_t slot;              /* its bitmap's slot in `bitmaps` */
};

struct hf_vol_meta {
	uint32_t flags;         /* HF_VOL_F_* */
	uint64_t size;          /* bytes, a multiple of HF_VOL_REGION_SIZE */
	uint64_t epoch;         /* the highest epoch accepted */
	uint64_t resync_cursor; /* bytes done of a full resync into it */
	struct hf_vol_gens gens;
	char volume_id[HF_VOL_ID_MAX + 1];
	char replica_id[HF_VOL_ID_MAX + 1];
	char name[HF_VOL_NAME_MAX + 1];
	char resync_source[HF_VOL_ID_MAX + 1]; /* "" unless RESYNC_TARGET */
	unsigned npeers;
	struct hf_vol_meta_peer peers[HF_VOL_MAX_PEERS];
};

/*
 * Checks m's invariants: a size that is a positive multiple of the region
 * size up to HF_VOL_SIZE_MAX; known flags, never CONSISTENT together with
 * RESYNC_TARGET; valid ids and name; a resync source and cursor exactly
 * when RESYNC_TARGET (the source another replica, the cursor aligned and
 * within the size); non-zero generation ids pairwise distinct, no bitmap
 * generation without a current one, history filled in order; peers with
 * distinct ids other than the replica's own and distinct slots below
 * HF_VOL_MAX_PEERS. Returns 0, or HF_EINVAL with the first broken rule in
 * err.
 */
int hf_vol_meta_check(const struct hf_vol_meta *m, char err[HF_VOL_ERR_MAX]);

/*
 * Writes m as a block into out (HF_VOL_META_SIZE bytes). Returns 0, or
 * HF_EINVAL (hf_vol_meta_check's sentence in err) and writes nothing.
 */
int hf_vol_meta_encode(const struct hf_vol_meta *m,
		       uint8_t out[HF_VOL_META_SIZE],
		       char err[HF_VOL_ERR_MAX]);

/*
 * Reads a block of len bytes into *m. Returns 0, or HF_EPARSE with a
 * sentence naming the field (and its byte offset) in err: a length other
 * than HF_VOL_META_SIZE, a bad magic, an unknown version, a CRC mismatch,
 * a malformed id slot, a non-zero padding byte, or a rule of
 * hf_vol_meta_check broken. On failure *m is unspecified.
 */
int hf_vol_meta_decode(const uint8_t *buf, size_t len, struct hf_vol_meta *m,
		       char err[HF_VOL_ERR_MAX]);

/*
 * Checks a set of generation ids alone (hf_vol_meta_check's rules for
 * them, which the wire codec applies to the sets HELLO and GEN carry):
 * non-zero ids pairwise distinct, no bitmap id without a current one, the
 * history filled from its first entry. Returns 0 or HF_EINVAL with err.
 */
int hf_vol_gens_check(const struct hf_vol_gens *g, char err[HF_VOL_ERR_MAX]);

/*
 * Starts a new data generation (§5.2), as a replica that keeps writing
 * while a peer leaves the in-sync set does: the current id moves to
 * gen.bitmap when that is empty (the bitmaps start from it), else into
 * the history (the oldest falls off), and fresh (random, non-zero, drawn
 * by the caller) becomes current.
 */
void hf_vol_gens_rotate(struct hf_vol_gens *g, const struct hf_vol_gen *fresh);

/*
 * The bitmaps are empty again (every peer they tracked has resynced):
 * gen.bitmap moves into the history, so a peer still holding it later is
 * known to need a full resync, never a bitmap one from bits now gone.
 */
void hf_vol_gens_bitmap_done(struct hf_vol_gens *g);

/*
 * What a primary (me) must do for a replica (peer) it connects to, from
 * their generation ids and flags (HELLO and HELLO_OK carry them), per
 * §5.2's table, first matching row wins:
 *
 *   me not CONSISTENT (or RESYNC_TARGET)           REFUSE: no copy to serve
 *   peer not CONSISTENT (or RESYNC_TARGET)         FULL (resumes at its cursor)
 *   equal current, either PRIMARY_CRASHED          AL: the activity extents
 *   equal current                                  NONE: identical
 *   peer's current zero (created empty)            FULL
 *   my current zero, the peer's not                REFUSE: I am behind
 *   peer.current == my.bitmap                      BITMAP me -> peer
 *   peer.current in my.history                     FULL: the bitmap is gone
 *   my.current == peer.bitmap or in peer.history   REFUSE: I am behind
 *   otherwise                                      STALE: split brain or
 *                                                  foreign data
 *
 * my_al / peer_al say whose activity-log extents the copy must include
 * besides (for AL and BITMAP): the side that was a primary and crashed
 * or was fenced may hold unflushed writes the other lacks. REFUSE means
 * the server picked a primary that is not the newest copy: a bug or a
 * split brain, reported, never resolved by copying.
 */
enum hf_vol_sync {
	HF_VOL_SYNC_NONE,
	HF_VOL_SYNC_AL,
	HF_VOL_SYNC_BITMAP,
	HF_VOL_SYNC_FULL,
	HF_VOL_SYNC_REFUSE,
	HF_VOL_SYNC_STALE,
};

struct hf_vol_verdict {
	enum hf_vol_sync action;
	bool my_al, peer_al;
	const char *why; /* a static sentence for status and events */
};

struct hf_vol_verdict hf_vol_gen_compare(const struct hf_vol_side *me,
					 const struct hf_vol_side *peer);
/* "none", "al", "bitmap", "full", "refuse", "stale". */
const char *hf_vol_sync_name(enum hf_vol_sync a);

/*
 * The activity log's record (docs/design/volumes.md §5.4): the extents
 * of the volume a primary may have written and not yet flushed on every
 * in-sync replica, and the in-sync set (each member with its data
 * generation) it was written for. A primary writes it to every in-sync
 * replica (AL frames; its local replica's `al` file) before its first
 * write to an extent not in it, and again when it drops extents that
 * were flushed long enough ago. The next primary reads its local copy:
 * the members it lists that are out of sync from then on miss the
 * extents (plus what the new primary writes), not the whole volume; the
 * members in sync are sent the extents at once. Extents hold
 * HF_VOL_EXTENT_SIZE bytes each, strictly increasing.
 *
 * On disk it is one of two slots of HF_VOL_AL_SLOT bytes (written in
 * turn; the valid one of the higher epoch, then seq, counts):
 *
 *   off   size  field
 *   0     8     magic "HFVOLAL1"
 *   8     8     epoch: the primary's that wrote it
 *   16    8     seq: counts the records of the file
 *   24    1     members (1..HF_VOL_AL_MEMBERS)
 *   25    4     extents (0..HF_VOL_AL_MAX)
 *   29    88 x HF_VOL_AL_MEMBERS: each a replica id (a length byte, the
 *               bytes, zeroes to 72) then its 16-byte generation
 *   821   8 x count: the extents
 *   ...   zeroes
 *   8188  4     CRC-32C of bytes 0..8187
 */
#define HF_VOL_AL_SLOT 8192

struct hf_vol_al {
	uint64_t epoch, seq;
	unsigned nmembers;
	struct hf_vol_al_member members[HF_VOL_AL_MEMBERS];
	uint32_t count;
	uint64_t extents[HF_VOL_AL_MAX];
};

/* Checks a's ids, counts and order: 0 or HF_EINVAL with a sentence. */
int hf_vol_al_check(const struct hf_vol_al *a, char err[HF_VOL_ERR_MAX]);
/* a as a slot; refuses what hf_vol_al_check refuses, writing nothing. */
int hf_vol_al_encode(const struct hf_vol_al *a, uint8_t out[HF_VOL_AL_SLOT],
		     char err[HF_VOL_ERR_MAX]);
/*
 * The slot at buf (len bytes) into *a: 0, or HF_EPARSE with the byte and
 * the reason (short, bad magic or CRC, a field out of range). A slot of
 * zeroes (never written) is HF_EPARSE too.
 */
int hf_vol_al_decode(const uint8_t *buf, size_t len, struct hf_vol_al *a,
		     char err[HF_VOL_ERR_MAX]);
/* The member of id in a, or NULL. */
const struct hf_vol_al_member *hf_vol_al_member(const struct hf_vol_al *a,
						const char *id);

#endif
