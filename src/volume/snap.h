/*
 * snap.h - a replica's snapshots (docs/design/volumes.md §15): point-in-
 * time copies kept by copy-on-write next to the replica's data file.
 *
 * On disk, <replica dir>/snaps/<snapshot id>.cow per snapshot:
 *
 *   header   4096 bytes: magic "HFSNAP01", format version, chunk size
 *            (64 KiB), sequence number (order of creation on this
 *            replica), the volume's size when it was taken, its time,
 *            its id, CRC32C. Written to <id>.new, fsynced, renamed,
 *            directory fsynced: a snapshot exists whole or not at all.
 *   records  appended after the header, one per chunk that changed since:
 *            a 64-byte head (magic "HFSR", flags ZERO, chunk index, data
 *            length, CRC32C of the data, CRC32C of the head) then the
 *            chunk's old bytes (none for a chunk of zeros).
 *
 * The first write (or discard) to a chunk after the newest snapshot
 * copies the chunk's old bytes into that snapshot's file and fdatasyncs
 * it before the write reaches the data file: a crash at any instant
 * leaves either no record (and the old bytes still in the data file) or
 * a whole one. A record that does not check (a torn tail) ends the file:
 * it is cut off when the store is opened.
 *
 * Only the newest snapshot receives copies. A snapshot reads a chunk from
 * its own record, else from the first newer snapshot that has one, else
 * from the data file. Deleting a snapshot moves the records its older
 * neighbour lacks into that neighbour first, so every other snapshot
 * reads the same bytes before and after; a delete interrupted by a crash
 * is done again (the moved records are identical).
 *
 * The data file's bytes are whatever the replica holds (ciphertext for an
 * encrypted volume): snapshots never see plaintext.
 *
 * Thread-safe: writers call hf_snaps_before_write concurrently; a chunk
 * already copied costs a read lock and a bit test.
 */
#ifndef HF_VOLUME_SNAP_H
#define HF_VOLUME_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define HF_SNAP_CHUNK (64 * 1024)
#define HF_SNAP_MAX 64 /* snapshots per replica */

struct hf_snaps;

struct hf_snap_info {
	char id[HF_VOL_ID_MAX + 1];
	uint64_t seq;
	int64_t size;       /* the volume's size when it was taken */
	int64_t created_ms; /* wall clock */
	int64_t bytes;      /* the records' bytes on disk (old data kept) */
	int64_t chunks;     /* chunks copied into it */
};

/*
 * Opens the snapshots of the replica in dir whose data file is data_fd
 * (kept open by the caller for the store's life), making dir/snaps when
 * missing, cutting a torn tail off each file and finishing an
 * interrupted delete's leftovers (*.new files go). Returns the store, or
 * NULL with a sentence in err.
 */
struct hf_snaps *hf_snaps_open(const char *dir, int data_fd, char *err,
			       size_t err_len);

/*
 * Opens them to read only, beside the process that writes the replica
 * (a clone's fill in the node server while an attach process writes
 * the source): nothing is repaired or written; hf_snaps_read reads the
 * data file and then looks again for a record of the chunk (the writer
 * appends the chunk's old bytes before it changes them), so what it
 * returns is the snapshot's even while the volume is written. One
 * thread only.
 */
struct hf_snaps *hf_snaps_open_reader(const char *dir, int data_fd, char *err,
				      size_t err_len);

void hf_snaps_close(struct hf_snaps *s);

/*
 * Before [off, off+len) of the data file is written or discarded: copies
 * every chunk of it the newest snapshot has not kept yet (within that
 * snapshot's size) and makes the copies durable. Returns 0 or an errno
 * (the write must then fail: the snapshot would lose its bytes).
 */
int hf_snaps_before_write(struct hf_snaps *s, uint64_t off, uint64_t len);

/*
 * Takes snapshot id (1-64 letters, digits, '-', '_') of the data file as
 * it is now, size bytes: the caller has stopped writes and flushed them.
 * An existing id is not taken again (0). Returns 0, EEXIST-free; ENOSPC
 * past HF_SNAP_MAX; EINVAL for a bad id; or the errno of the file system.
 */
int hf_snaps_create(struct hf_snaps *s, const char *id, int64_t size);

/* Deletes snapshot id (0 also when there is none), or returns an errno. */
int hf_snaps_delete(struct hf_snaps *s, const char *id);

/* Fills up to max entries, oldest first; returns how many there are. */
size_t hf_snaps_list(struct hf_snaps *s, struct hf_snap_info *out,
		     size_t max);

/*
 * Reads len bytes at off of snapshot id as it was taken (zeros past the
 * data file's end). Returns 0, ENOENT, EINVAL (outside its size) or an
 * errno.
 */
int hf_snaps_read(struct hf_snaps *s, const char *id, uint64_t off,
		  uint8_t *buf, size_t len);

/*
 * Whether chunk index c of snapshot id may differ from the data file now
 * (some snapshot from id on has a record of it): restore writes only
 * those. -1 when there is no such snapshot.
 */
int hf_snaps_changed(struct hf_snaps *s, const char *id, uint64_t c);

/*
 * Makes the data file hold snapshot id's bytes again (within its size;
 * bytes past it, where the volume grew since, stay): only chunks that
 * changed since are written, each kept first by the newest snapshot as
 * any write is, so every snapshot survives a restore. The caller has
 * stopped every other writer. Durable on return; *bytes (may be NULL)
 * says how much was written. Returns 0, ENOENT or an errno.
 */
int hf_snaps_restore(struct hf_snaps *s, const char *id, int64_t *bytes);

/*
 * Whether chunk c may differ between snapshot base and the newer
 * snapshot id (a snapshot from base up to, not including, id kept it):
 * 1, 0, or -1 when either is missing or base is not older. What an
 * incremental backup reads.
 */
int hf_snaps_changed_since(struct hf_snaps *s, const char *base,
			   const char *id, uint64_t c);

/* `holdfast-volume snap ...` (snaptool.c): argv[0] is "snap". */
int hf_volume_snap_main(int argc, char **argv);

/* Whether id names a snapshot (letters, digits, '-', '_', 1-64). */
int hf_snap_id_ok(const char *id);

#endif
