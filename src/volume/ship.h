/*
 * ship.h - a volume's disaster-recovery stream (docs/design/dr.md): every
 * write the attach process acknowledges is also appended, in the order
 * the volume took them, to an on-disk journal on the attaching node, and
 * a thread of its own sends the journal to a standby replica on another
 * site (its replica server's TLS listener, tls.h) as WRITE and TRIM
 * frames. Now and then it sends MARK (wire.h): the standby makes every
 * earlier write durable and records the mark's seq and time; the journal
 * space before an acknowledged mark is free again. The standby's data at
 * a mark is the volume as it was when the mark's last write was made:
 * crash-consistent, like a disk that lost power at that instant.
 *
 * The journal absorbs spikes and link outages. When it is full, the
 * policy decides: "block" makes writers wait for room (back-pressure);
 * "resync" lets them go on and marks the 1 MiB chunks they wrote in a
 * bitmap instead, copied to the standby (read back from the volume) once
 * the journal drained; the standby is then inconsistent until the copy is
 * done and a mark follows. A new journal (the first attach with DR, or
 * one lost) starts with a copy of the whole volume (the initial sync).
 *
 * Journal file: a 4096-byte header (magic "HFDRJNL1", u64 tail position,
 * u64 tail seq, u64 flags (1: the whole volume must be copied), the
 * volume's id (72 bytes), CRC-32C of the 104 bytes before it), then a
 * ring of records, each a 48-byte header (u32 magic "HFJR", u32 type (1
 * write, 2 trim), u64 seq (consecutive), u64 off, u64 len, u64 time (ns
 * since the epoch), u32 CRC-32C of the header before it and of the data,
 * u32 0) then, for a write, len bytes. Positions grow without end; a
 * record at position p starts at 4096 + p % (size - 4096) and may wrap.
 * The header's bytes 128..160: the kernel's boot_id (16 bytes) when it
 * was written, u64 flags (1: closed cleanly, every record synced), and
 * CRC-32C of the 24 bytes before it.
 *
 * Durability: records are appended (pwrite) before their write is
 * answered, but not synced with the volume's flushes, which would cost
 * every commit a second fdatasync. They outlive a kill of the process
 * (the page cache keeps them) but not a crash of the machine; so a
 * journal that another boot left without closing it cleanly is not
 * trusted: the standby is owed a copy, and the copy compares digests
 * first (what crosses is what differs). On open, the records after the
 * tail are read back while their seqs follow and their CRCs match, and
 * sent again where the standby's mark is older.
 */
#ifndef HF_VOLUME_SHIP_H
#define HF_VOLUME_SHIP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/ticket.h"

#define HF_SHIP_JOURNAL_MIN (16LL << 20)

struct hf_ship_config {
	char *address;          /* the standby's replica server, numeric */
	int port;               /* its TLS listener */
	char *replica;          /* the standby replica's id */
	char *node;             /* this node's id (the ticket names it) */
	uint8_t ticket[HF_VOL_TICKET_LEN]; /* for the volume, epoch, node */
	char *ca, *cert, *key;  /* PEM files: the standby site's CA, ours */
	char *journal;          /* the journal file's path */
	int64_t journal_size;   /* bytes, >= HF_SHIP_JOURNAL_MIN */
	bool block;             /* when full: block writers, else resync */
};

/* Reads len bytes of the volume as its replicas hold them, at off. */
typedef int (*hf_ship_read_fn)(void *arg, uint8_t *dst, uint64_t off,
			       size_t len);

struct hf_ship;

/*
 * Opens (or makes) the journal and checks the TLS files; starts no
 * thread. Returns NULL with a sentence in err (n bytes).
 */
struct hf_ship *hf_ship_open(const struct hf_ship_config *c,
			     const char *volume_id, uint64_t epoch,
			     uint64_t size, hf_ship_read_fn rd, void *rd_arg,
			     char *err, size_t n);

/* Starts the sending thread. */
void hf_ship_start(struct hf_ship *s);

/*
 * A write the volume took (data as its replicas hold it) or a discard:
 * appended to the journal, or, when it is full, waited for ("block") or
 * marked for a copy ("resync"). Return 0 or an errno (the journal's
 * file failed: the stream then falls back to a whole copy; the volume's
 * write itself stands).
 */
int hf_ship_write(struct hf_ship *s, uint64_t off, const uint8_t *data,
		  size_t len);
int hf_ship_trim(struct hf_ship *s, uint64_t off, uint64_t len);


/* The volume grew (hf_ship_open's size, from now on). */
void hf_ship_grow(struct hf_ship *s, uint64_t size);

/*
 * The stream's state for status.json: "state" (connecting, syncing,
 * streaming, fenced), "message", the journal's "journal_bytes" and
 * "journal_size", "lag_bytes", "lag_seconds" (how old the oldest write
 * the standby may lack is: the current RPO), "applied_seq",
 * "applied_time" (ns: when the newest write the standby holds at its
 * mark was made here), "shipped" bytes, "sync_done"/"sync_total" while
 * copying, "blocked" writes that waited for room, "overflows".
 */
json_t *hf_ship_status(struct hf_ship *s);

/*
 * Waits up to drain_ms for everything in the journal to be applied on the
 * standby under a mark (a detach, a switchover's): true when it is.
 */
bool hf_ship_drain(struct hf_ship *s, int drain_ms);

/* Ends the thread, closes the journal (its header durable), frees s. */
void hf_ship_close(struct hf_ship *s);

#endif
