/*
 * backup.h - volume backups in an S3-compatible object store ("cloud
 * snaps", docs/design/volumes.md §16): a snapshot of a replica, cut into
 * 1 MiB chunks, each compressed and stored once under its SHA-256, and a
 * manifest per backup that lists them. Later backups of the volume are
 * incremental: only chunks some snapshot kept since the base backup's
 * snapshot are read; the rest are the base's. An interrupted backup run
 * again uploads only what is missing (the chunks are content-addressed).
 *
 * In the store, under s3://BUCKET/PREFIX:
 *   VOLUME/chunks/<sha256 of the chunk's bytes, 64 hex digits>
 *       "HFB1", u8 method (0 stored, 1 zlib), 3 zero bytes, u32 length
 *       of the chunk (little-endian), then the bytes (zlib's format when
 *       compressed)
 *   VOLUME/backups/<backup id>.json
 *       {"format": 1, "volume", "volume_id", "backup", "parent" (the base
 *        backup's id or null), "snapshot", "size", "chunk_size",
 *        "created" (unix ms), "encrypted", "chunks": [[index, sha256],
 *        ...] (chunks of zeros left out), "stats": {...}}
 *   written last: a backup exists once its manifest does.
 *
 * The replica's bytes are what is stored: an encrypted volume's backup
 * holds only its ciphertext (and says "encrypted": true); restoring it
 * gives a replica that only the volume's key reads.
 *
 * A restore fetches four chunks at a time and keeps a journal next to
 * its output (FILE.progress, backup.c says how) so that one cut short
 * and run again goes on where it was.
 *
 * `holdfast-volume backup ...`, `restore ...`, `backups ...`: the access
 * and secret keys come from the environment (HOLDFAST_S3_ACCESS_KEY,
 * HOLDFAST_S3_SECRET_KEY), never from the command line.
 */
#ifndef HF_VOLUME_BACKUP_H
#define HF_VOLUME_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#define HF_BACKUP_CHUNK (1024 * 1024)

struct hf_s3_config;

/*
 * Writes backup `backup` of volume (under url, "s3://bucket[/prefix]")
 * to path: sparse, every chunk's hash checked, four chunks fetched at a
 * time, path fdatasync'ed before it returns. path must not exist, unless
 * path.progress does: the journal of a restore of the same backup to it
 * that was cut short (killed, or failed), which this one goes on from,
 * fetching only the chunks not yet written (a journal whose path is gone
 * is of nothing, and is started afresh). On failure before anything is
 * written nothing is left behind; after, path and path.progress are left
 * for the next call to resume (remove both to give up). The journal is
 * removed on success. Returns 0, or -1 with a sentence in err. What a
 * node server does to make a replica from a backup. progress (may be
 * NULL): [bytes written, bytes to write], stored atomically as it goes.
 */
int hf_backup_restore_file(const struct hf_s3_config *cfg, const char *url,
			   const char *volume, const char *backup,
			   const char *path, int64_t *progress, char *err,
			   size_t err_len);

/* argv[0] is "backup", "restore" or "backups". */
int hf_volume_backup_main(int argc, char **argv);

#endif
