/*
 * wire.h - the frames between a volume's primary and its replicas
 * (docs/design/volumes.md §6.1): one codec for both sides.
 *
 * Pure: buffers in, structs out. Decoding allocates nothing: a decoded
 * frame's fixed fields are copied into struct hf_volw_frame (ids into
 * its arrays), and its bulk bytes (a WRITE's data, a BITMAP's runs, an
 * AL's extents) are a view into the caller's buffer, valid as long as
 * that is. A connection needs one receive buffer of HF_VOLW_FRAME_MAX
 * bytes, the only memory the protocol asks for per connection.
 *
 * Every frame is a 40-byte header, then len payload bytes; little-endian:
 *
 *   off  size  field
 *   0    4     magic "HFV1"
 *   4    1     type (enum hf_volw_type)
 *   5    1     flags: HF_VOLW_F_* below, each for the types it names;
 *              any other bit (or on another type) is refused
 *   6    2     reserved (0)
 *   8    4     len: payload bytes, at most HF_VOLW_PAYLOAD_MAX
 *   12   8     id: the request's id; an answer carries its request's
 *   20   8     epoch: the sender's (replicas check every request's)
 *   28   8     off: a byte offset into the volume, HF_VOL_REGION_SIZE-
 *              aligned, for WRITE, READ_DATA, RESYNC_DATA, DIRTY, TRIM
 *              and READ; 0 in every other frame
 *   36   4     CRC-32C of header bytes 0..35, then of the payload
 *
 * The CRC covers the header as well as the payload (the design's first
 * draft said the payload only): a flipped bit in `off` would otherwise
 * write good data at the wrong place, silently.
 *
 * Payloads (ids are a u8 length then that many bytes, volume.h's rules;
 * "bulk" is the trailing part a decoded frame points into):
 *
 *   HELLO        u8 role, u32 flags, gens (4 x 16 bytes), proof (32),
 *                volume id, replica id, node id (up to 255)
 *   HELLO_OK     u64 size, u64 epoch, u32 flags, gens, u8 peers, then
 *                per peer: its replica id, u64 dirty regions. With
 *                HF_VOLW_F_SPOOLS (header flags) the replica takes timed
 *                WRITEs and TRIMs (a standby of a consistency group,
 *                spool.h); a sender sends them only then
 *   WRITE, READ_DATA, RESYNC_DATA
 *                bulk: data, a positive multiple of 4096 bytes up to
 *                HF_VOL_DATA_MAX, at off. A WRITE with HF_VOLW_F_TIMED
 *                starts with u64 time (ns since the epoch, at the
 *                primary: when the write was made), then the data
 *   DIRTY        u64 len (aligned, > 0), the peer's replica id:
 *                [off, off + len) is dirty for that peer
 *   TRIM         u64 len (aligned, > 0); with HF_VOLW_F_TIMED, u64 time
 *                first, as a WRITE's
 *   READ         u64 len (aligned, > 0, up to HF_VOL_DATA_MAX)
 *   GEN          gens: the replica's new generation ids
 *   BITMAP_GET   the peer's replica id whose bitmap is wanted
 *   BITMAP       the peer's replica id, u64 nbits, u64 first, u64 count;
 *                bulk: runs (bitmap.h) for regions [first, first + count)
 *                of a volume of nbits regions. A bitmap longer than a
 *                frame takes several, in order, each starting where the
 *                last ended; the one ending at nbits is the last.
 *   AL           the primary's activity log (meta.h): u8 members (1 to
 *                HF_VOL_AL_MEMBERS), per member its replica id then its
 *                16-byte data generation, u32 count (up to
 *                HF_VOL_AL_MAX); bulk: count u64 extent numbers (offset /
 *                HF_VOL_EXTENT_SIZE), strictly increasing. The whole set
 *                each time: the replica stores it in place of the last.
 *   FENCED       u64 the replica's epoch
 *   SNAP         u8 op (1 take, 2 delete, 3 restore), u64 size (the
 *                volume's bytes the snapshot holds: > 0 for take, else 0), the
 *                snapshot's id (snap.h): the replica takes, deletes or restores it
 *                after every earlier request on the connection
 *   MARK         u64 seq, u64 time (ns since the epoch, at the primary):
 *                a disaster-recovery stream's consistency point (ship.h).
 *                The standby replica makes every earlier write durable,
 *                then stores the pair; seq 0 only asks for the stored pair
 *                With HF_VOLW_F_FINAL the stream ends there (a
 *                switchover's drain: nothing more will be written)
 *   MARK_OK      u64 seq, u64 time: the pair the replica holds now
 *   SUMS         u64 len, u32 unit: the replica's digest of each
 *                unit-sized piece of [off, off + len) is wanted (a DR
 *                stream's copy sends only the pieces the standby lacks).
 *                unit is a power of two from HF_VOL_REGION_SIZE to
 *                HF_VOL_DATA_MAX, off a multiple of it, len aligned, > 0
 *                and at most HF_VOLW_SUMS_MAX units
 *   SUMS_DATA    u64 len, u32 unit, as asked; bulk: one HF_VOLW_SUM_LEN
 *                digest (SHA-256) per unit, the last one of what is left
 *   ERROR        u32 errno (1..4095), u16 length, text (printable ASCII,
 *                up to HF_VOLW_TEXT_MAX)
 *   WRITE_OK, TRIM_OK, FLUSH, FLUSH_OK, GEN_OK, RESYNC_OK, AL_OK, PING,
 *   PONG, BYE, SNAP_OK    empty
 *
 * Every field has one encoding (reserved bytes zero, exact lengths,
 * sorted lists), so whatever decodes encodes back to the same bytes.
 */
#ifndef HF_VOLUME_WIRE_H
#define HF_VOLUME_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define HF_VOLW_MAGIC "HFV1"
#define HF_VOLW_HDR 40
#define HF_VOLW_PAYLOAD_MAX (HF_VOL_DATA_MAX + 64)
#define HF_VOLW_FRAME_MAX (HF_VOLW_HDR + HF_VOLW_PAYLOAD_MAX)
/*
 * hf_volw_encode writes the header and the payload's fixed part, never
 * the bulk: this many bytes always hold them.
 */
#define HF_VOLW_HEAD_MAX 1024
#define HF_VOLW_PROOF_LEN 32
#define HF_VOLW_TEXT_MAX 256
#define HF_VOLW_SUM_LEN 32

/* Header flags (byte 5). */
#define HF_VOLW_F_TIMED 0x01  /* WRITE, TRIM: the time comes first */
#define HF_VOLW_F_FINAL 0x02  /* MARK: the stream ends here */
#define HF_VOLW_F_SPOOLS 0x04 /* HELLO_OK: timed writes are taken */
/* The most units SUMS may ask for: one frame's bulk of digests. */
#define HF_VOLW_SUMS_MAX (HF_VOL_DATA_MAX / HF_VOLW_SUM_LEN)

enum hf_volw_type {
	HF_VOLW_HELLO = 1,
	HF_VOLW_HELLO_OK,
	HF_VOLW_WRITE,
	HF_VOLW_WRITE_OK,
	HF_VOLW_DIRTY,
	HF_VOLW_TRIM,
	HF_VOLW_TRIM_OK,
	HF_VOLW_FLUSH,
	HF_VOLW_FLUSH_OK,
	HF_VOLW_READ,
	HF_VOLW_READ_DATA,
	HF_VOLW_GEN,
	HF_VOLW_GEN_OK,
	HF_VOLW_RESYNC_DATA,
	HF_VOLW_RESYNC_OK,
	HF_VOLW_BITMAP_GET,
	HF_VOLW_BITMAP,
	HF_VOLW_AL,
	HF_VOLW_AL_OK,
	HF_VOLW_PING,
	HF_VOLW_PONG,
	HF_VOLW_BYE,
	HF_VOLW_FENCED,
	HF_VOLW_ERROR,
	HF_VOLW_SNAP,
	HF_VOLW_SNAP_OK,
	HF_VOLW_MARK,
	HF_VOLW_MARK_OK,
	HF_VOLW_SUMS,
	HF_VOLW_SUMS_DATA,
	HF_VOLW_TYPE_END_ /* one past the last */
};

/* What the connecting side wants to be (§6.2's tickets differ). */
enum hf_volw_role {
	HF_VOLW_ROLE_PRIMARY = 1, /* the attachment at its epoch */
	HF_VOLW_ROLE_RESYNC = 2,  /* a resync or re-replication source */
};

enum hf_volw_snap_op {
	HF_VOLW_SNAP_TAKE = 1,
	HF_VOLW_SNAP_DELETE = 2,
	HF_VOLW_SNAP_RESTORE = 3, /* the replica's data becomes the snapshot */
};

struct hf_volw_hello {
	uint8_t role; /* enum hf_volw_role */
	struct hf_vol_side me; /* the sender's generation ids and flags */
	uint8_t proof[HF_VOLW_PROOF_LEN]; /* the ticket's proof (§6.2) */
	char volume_id[HF_VOL_ID_MAX + 1];
	char replica_id[HF_VOL_ID_MAX + 1]; /* the replica wanted */
	char node_id[HF_VOL_NODE_MAX + 1];  /* the sender's node */
};

struct hf_volw_peer_dirty {
	char id[HF_VOL_ID_MAX + 1];
	uint64_t regions; /* regions its bitmap holds */
};

struct hf_volw_hello_ok { /* the replica's metadata, as the primary needs */
	uint64_t size;
	uint64_t epoch; /* the replica's, after the HELLO's was accepted */
	struct hf_vol_side replica;
	unsigned npeers;
	struct hf_volw_peer_dirty peers[HF_VOL_MAX_PEERS];
};

struct hf_volw_frame {
	enum hf_volw_type type;
	uint8_t flags;
	uint64_t id, epoch, off;
	uint64_t time_ns; /* WRITE, TRIM with HF_VOLW_F_TIMED */
	/*
	 * The bulk (see above): into the decoded buffer, or, to encode, the
	 * caller's bytes (sent after hf_volw_encode's output).
	 */
	const uint8_t *data;
	uint32_t data_len;
	union {
		struct hf_volw_hello hello;
		struct hf_volw_hello_ok hello_ok;
		struct { /* SUMS, SUMS_DATA */
			uint64_t len;
			uint32_t unit;
		} sums;
		struct { /* DIRTY (peer), TRIM, READ */
			uint64_t len;
			char peer[HF_VOL_ID_MAX + 1];
		} range;
		struct hf_vol_gens gen; /* GEN */
		struct { /* BITMAP_GET (peer), BITMAP */
			char peer[HF_VOL_ID_MAX + 1];
			uint64_t nbits, first, count;
		} bitmap;
		struct { /* AL: data holds count u64s */
			unsigned nmembers;
			struct hf_vol_al_member members[HF_VOL_AL_MEMBERS];
			uint32_t count;
		} al;
		uint64_t fenced_epoch; /* FENCED */
		struct {               /* MARK, MARK_OK */
			uint64_t seq, time_ns;
		} mark;
		struct hf_volw_snap {  /* SNAP */
			uint8_t op;    /* enum hf_volw_snap_op */
			uint64_t size;
			char id[HF_VOL_ID_MAX + 1];
		} snap;
		struct {               /* ERROR */
			uint32_t errnum;
			char text[HF_VOLW_TEXT_MAX + 1];
		} error;
	} u;
	uint32_t size; /* decoded: the frame's bytes, header included */
};

/*
 * Decodes the frame at the start of buf (len bytes of a stream) into *f.
 * Returns:
 *   0 with *need == 0: a frame was decoded; it took f->size bytes, and
 *     the next frame starts after them.
 *   0 with *need > len: buf holds no whole frame yet: call again once it
 *     holds at least *need bytes (HF_VOLW_HDR, then the whole frame's
 *     size once the header is in and valid, at most HF_VOLW_FRAME_MAX).
 *   HF_EPARSE, or HF_ETOOBIG for a len over the cap, with a sentence in
 *     err naming the field and its byte offset in the frame: a bad magic,
 *     an unknown type, non-zero flags or reserved bytes, a misaligned or
 *     out-of-range off, a payload length the type does not allow, a CRC
 *     mismatch, a malformed payload. The header's fields are checked as
 *     soon as their bytes are there, so a bad stream is refused before
 *     its payload is waited for. The stream cannot be resynchronised:
 *     answer ERROR and close.
 */
int hf_volw_decode(const uint8_t *buf, size_t len, struct hf_volw_frame *f,
		   size_t *need, char err[HF_VOL_ERR_MAX]);

/*
 * Encodes f: the header and the payload's fixed part into out (cap
 * bytes; HF_VOLW_HEAD_MAX always suffices), their size in *n. The frame
 * on the wire is out[0..*n) followed by f->data[0..f->data_len) (not
 * copied: a 1 MiB write goes out with writev). f->size is ignored.
 * Checks f as the decoder would check what it encodes: HF_EINVAL with a
 * sentence in err, or HF_ETOOBIG for a short cap, and nothing written.
 */
int hf_volw_encode(const struct hf_volw_frame *f, uint8_t *out, size_t cap,
		   size_t *n, char err[HF_VOL_ERR_MAX]);

/* "HELLO", ..., or NULL for a value that is no type. */
const char *hf_volw_type_name(int type);
/*
 * The type that answers a request of this type (HELLO_OK for HELLO,
 * READ_DATA for READ, PONG for PING ...), or 0 for frames that get none
 * (DIRTY, BYE, answers). FENCED and ERROR may answer any request.
 */
enum hf_volw_type hf_volw_answer(enum hf_volw_type type);
/* Extent i of an AL frame's bulk: i < count. */
uint64_t hf_volw_al_extent(const struct hf_volw_frame *f, uint32_t i);

#endif
