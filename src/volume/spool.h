/*
 * spool.h - a standby replica's spool: the writes of a disaster-recovery
 * stream held back until every volume of their consistency group has
 * received as far (docs/design/dr.md §2, "consistency group").
 *
 * A service's volumes are streamed each on its own connection, from
 * attach processes that may run on different nodes. Applied as they
 * come, one standby volume could hold a write whose cause, on another
 * volume, has not arrived yet. So a standby replica of a group appends
 * each timed WRITE and TRIM (wire.h) to DIR/spool instead, and applies
 * them to the data file only up to the group's cut: the oldest time up
 * to which every member received everything (their marks). Every record
 * made before the cut is then applied on every member, and none made
 * after it, which is a state the primary's volumes went through
 * together (up to the skew between the clocks of the primary's nodes,
 * for volumes attached on different nodes).
 *
 * DIR/spool: records, each a 40-byte header (u32 magic "HFSP", u32 type
 * 1 write 2 trim, u64 off, u64 len, i64 time in ns, u32 CRC-32C of the
 * first 32 bytes then of the data, u32 zero), then a write's len bytes.
 * DIR/spool.pos: u64 offset into the spool up to which every record is
 * applied and durable in the data file, u32 CRC-32C of it. A record
 * that does not check ends the spool: appends are not synced one by
 * one, so a crash may leave a torn one, which its sender sends again
 * (the standby's mark, which the spool's fdatasync precedes, says what
 * it holds). Applying again what a crash left unrecorded in spool.pos
 * is harmless: the same bytes in the same order.
 *
 * Not thread-safe: the caller serializes (serve.c, per replica).
 */
#ifndef HF_VOLUME_SPOOL_H
#define HF_VOLUME_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hf_spool;

/*
 * Opens (creates when missing) DIR/spool for the replica whose data file
 * is data_fd, size bytes: reads spool.pos, checks the records after it
 * and cuts off a torn tail. Returns it, or NULL with a sentence in err.
 */
struct hf_spool *hf_spool_open(const char *dir, int data_fd, uint64_t size,
			       char *err, size_t err_len);

/* Appends a record (trim: data NULL). 0 or -errno. */
int hf_spool_add(struct hf_spool *p, bool trim, uint64_t off, uint64_t len,
		 int64_t time_ns, const uint8_t *data);

/* Makes every appended record durable. 0 or -errno. */
int hf_spool_sync(struct hf_spool *p);

/*
 * Applies to the data file the longest run of unapplied records made
 * before cut_ns (all of them with all), makes them durable there, then
 * records how far it got. *n (when not NULL): records applied. 0, or
 * -errno (-EBADMSG: a record whose data does not check; nothing after it
 * is applied).
 */
int hf_spool_apply(struct hf_spool *p, int64_t cut_ns, bool all,
		   uint64_t *n);

/* Bytes appended and not applied yet; the time of the first such record
 * (0 with none). */
uint64_t hf_spool_pending(const struct hf_spool *p);
int64_t hf_spool_first_time(const struct hf_spool *p);

/* The volume grew: records up to size are in it. */
void hf_spool_grow(struct hf_spool *p, uint64_t size);

void hf_spool_close(struct hf_spool *p);

/*
 * Removes DIR/spool and DIR/spool.pos (after everything was applied, or
 * to drop what was not). 0 or -errno.
 */
int hf_spool_remove(const char *dir);

#endif
