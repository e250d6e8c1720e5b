/*
 * volume.h - what the parts of holdfast-volume share (docs/design/
 * volumes.md §3.7): the replication unit, the bounds every codec checks,
 * generation ids and a replica's state flags.
 *
 * The program's own contract (attach.json, status.json, exit codes) is
 * attach.h's. What is here is used by the pure codecs: wire.h (the
 * frames between a primary and the replicas), meta.h (a replica's
 * metadata block) and bitmap.h (dirty-region bitmaps). They include only
 * common/ and each other, do no I/O and keep no global state
 * (tests/unit/test_layout.py checks it).
 */
#ifndef HF_VOLUME_VOLUME_H
#define HF_VOLUME_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One region: the loop device's block size, ext4's block size, the unit
 * of a write's offset and length, and one bit of a dirty-region bitmap.
 */
#define HF_VOL_REGION_SIZE 4096u
#define HF_VOL_REGION_SHIFT 12
/*
 * One extent: a bitmap's summary bit and an activity-log entry (§5.3,
 * §5.4) cover this many bytes, HF_VOL_EXTENT_REGIONS regions.
 */
#define HF_VOL_EXTENT_SIZE (4u << 20)
#define HF_VOL_EXTENT_REGIONS (HF_VOL_EXTENT_SIZE / HF_VOL_REGION_SIZE)
/*
 * The largest volume any codec accepts (the spec's own cap is 64 TiB,
 * HF_VOLOPTS_MAX_SIZE): well below 2^63, so off + len never overflows a
 * signed 64-bit offset once both are checked against it.
 */
#define HF_VOL_SIZE_MAX ((uint64_t)1 << 50)
/* The most data one frame carries (a FUSE write, a READ, a resync run). */
#define HF_VOL_DATA_MAX (1u << 20)

/*
 * Identifiers as they travel and are stored: printable ASCII without
 * spaces (0x21-0x7e), 1 to MAX bytes. Volume and replica ids are the
 * server's uuids; node ids and volume names are the cluster's.
 */
#define HF_VOL_ID_MAX 64
#define HF_VOL_NODE_MAX 255
#define HF_VOL_NAME_MAX 128
/* True when s (n bytes, not NUL-terminated) is such an identifier. */
bool hf_vol_id_ok(const char *s, size_t n, size_t max);

/*
 * The codecs explain a refusal in a sentence written to a caller's buffer
 * of this size (truncated to fit, always NUL-terminated), so that they
 * allocate nothing on their error paths.
 */
#define HF_VOL_ERR_MAX 192

/*
 * The most peers one replica keeps a bitmap for: repl is at most 3, and
 * re-replication adds one replica while the one it replaces still
 * exists, so 3 would do; the rest is room for the limits to grow.
 */
#define HF_VOL_MAX_PEERS 8

/*
 * A generation id (DRBD's data generation UUID, §5.2): 16 random bytes
 * drawn when a replica starts a new generation; all zero means "none"
 * (and, for gen.current, a replica created empty and never written).
 */
#define HF_VOL_GEN_LEN 16
struct hf_vol_gen {
	uint8_t b[HF_VOL_GEN_LEN];
};
bool hf_vol_gen_is_zero(const struct hf_vol_gen *g);
/*
 * The activity log (meta.h's record, wire.h's AL frame): at most this
 * many extents, and a member per replica of the in-sync set, each with
 * its data generation.
 */
#define HF_VOL_AL_MAX 512
#define HF_VOL_AL_MEMBERS (HF_VOL_MAX_PEERS + 1)
struct hf_vol_al_member {
	char id[HF_VOL_ID_MAX + 1];
	struct hf_vol_gen gen;
};

/*
 * The write latency histogram's upper bounds, in microseconds (status.json
 * and the agent's volume report count writes per bucket; one bucket more
 * holds the rest), and the bucket of a latency.
 */
#define HF_VOL_LAT_BUCKETS 12
extern const int64_t hf_vol_lat_bounds_us[HF_VOL_LAT_BUCKETS];
size_t hf_vol_lat_bucket(int64_t us);
bool hf_vol_gen_equal(const struct hf_vol_gen *a, const struct hf_vol_gen *b);

/* The generation ids a replica holds (meta.h), and HELLO carries. */
#define HF_VOL_GEN_HISTORY 2
struct hf_vol_gens {
	struct hf_vol_gen current; /* the data generation held */
	struct hf_vol_gen bitmap;  /* the one its bitmaps started from */
	struct hf_vol_gen history[HF_VOL_GEN_HISTORY]; /* older currents */
};

/*
 * A replica's state flags (meta.h's flags, and HELLO/HELLO_OK's):
 *   CONSISTENT       its data is a whole copy of some generation: set at
 *                    creation (an empty replica is all zeroes, like every
 *                    other fresh one) and when a full resync completes.
 *   PRIMARY_CRASHED  it was the primary's (or lent to it) and was not
 *                    detached cleanly: writes that were never flushed may
 *                    differ between the replicas (the activity log's
 *                    extents, §5.4).
 *   RESYNC_TARGET    a full resync into it is under way: not consistent.
 */
enum {
	HF_VOL_F_CONSISTENT = 1u << 0,
	HF_VOL_F_PRIMARY_CRASHED = 1u << 1,
	HF_VOL_F_RESYNC_TARGET = 1u << 2,
	HF_VOL_F_KNOWN = (1u << 3) - 1,
};

/* One replica as the generation-id rules see it (meta.h, HELLO, HELLO_OK). */
struct hf_vol_side {
	struct hf_vol_gens gens;
	uint32_t flags; /* HF_VOL_F_* */
};

/*
 * Little-endian fields, for the codecs (any alignment: every format here
 * is defined byte by byte, never by a C struct's layout).
 */
static inline void hf_vol_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void hf_vol_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hf_vol_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t hf_vol_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t hf_vol_get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static inline uint64_t hf_vol_get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
