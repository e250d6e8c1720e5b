/*
 * replica.h - one replica's files on a node (docs/design/volumes.md §5.1):
 * <pool>/replicas/<volume id>/<replica id>/{data,meta}, opened (created
 * sparse when missing) and fenced by epoch. Used by serve.c; thread-safe
 * (a node server serves one replica on several connections).
 */
#ifndef HF_VOLUME_REPLICA_H
#define HF_VOLUME_REPLICA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "volume/meta.h"
#include "volume/ticket.h"

struct hf_replica {
	char *volume_id, *replica_id; /* letters, digits, '-', '_' */
	char *name;                   /* the volume's name, for meta */
	int64_t size;                /* grows (hf_replica_grow): atomic */
	uint8_t key[HF_VOL_KEY_LEN]; /* K_vol: never logged */
	char *dir;                   /* <pool>/replicas/<id>/<replica> */
	int fd;                      /* data, O_RDWR */
	pthread_mutex_t mu;          /* meta and its file */
	struct hf_vol_meta meta;
	uint64_t epoch; /* meta.epoch, read without mu (__atomic) */
	int al_fd;      /* DIR/al once a primary sent one (mu), or -1 */
	uint64_t al_seq; /* its last record's seq (mu) */
};

/*
 * Opens r's replica under pool (r's ids, name, size and key set by the
 * caller): makes the directories (0700), creates `data` sparse at size
 * and a `meta` (CONSISTENT, epoch 0, no generation yet) when missing.
 * A smaller data file (and meta) is grown to size: the volume grew while
 * the replica was closed. Refuses a larger data file, and a meta that
 * does not decode or names another volume or replica, or a larger size.
 * Returns 0, or -1 with a sentence in err (err_len bytes).
 */
int hf_replica_open(struct hf_replica *r, const char *pool, char *err,
		    size_t err_len);

/*
 * Raises r's epoch to epoch (§6.2): meta is written atomically and made
 * durable before this returns, so no older epoch is accepted after a
 * crash either. Returns 0 (also when epoch is not higher: nothing to do),
 * or -errno of the write (the epoch is then unchanged).
 */
int hf_replica_raise_epoch(struct hf_replica *r, uint64_t epoch);

/*
 * Grows r's data file (sparse) and then its meta to size bytes, made
 * durable before this returns; nothing when size is not larger. r->size
 * (read with __atomic_load_n by whoever checks a request's range) is set
 * last. Returns 0 or -errno.
 */
int hf_replica_grow(struct hf_replica *r, int64_t size);

/* The epoch r accepts now. */
uint64_t hf_replica_epoch(struct hf_replica *r);

/* Closes the files, frees the strings. */
void hf_replica_release(struct hf_replica *r);

/*
 * The activity log's file, DIR/al (meta.h's record, two slots): reads
 * the newest valid record (higher epoch, then seq) of the file open at
 * fd into *a; 0, or -1 when neither slot holds one (never written, or
 * both torn).
 */
int hf_vol_al_load(int fd, struct hf_vol_al *a);
/*
 * Writes a into the slot a->seq does not share with the record before
 * it (a->seq & 1), then fdatasync: 0 or -errno. The caller numbers the
 * records (one more than hf_vol_al_load's, or than its last).
 */
int hf_vol_al_store(int fd, const struct hf_vol_al *a);
/*
 * r's activity log as a primary at epoch sent it (serve.c's AL frame):
 * stored under r's lock, and only while epoch is r's (an older
 * primary's record, late, never overwrites a newer one). 0, -ESTALE for
 * another epoch, or -errno.
 */
int hf_replica_store_al(struct hf_replica *r, struct hf_vol_al *a);

/*
 * A disaster-recovery standby's mark (wire.h's MARK, ship.h): the last
 * consistency point of the stream it applied, in DIR/mark (u64 seq, u64
 * time in ns, u32 CRC-32C of the 16 bytes; little-endian on the hosts
 * holdfast runs on). hf_replica_mark_put makes the data durable first,
 * then the mark (written whole, then fdatasync'ed). get gives 0, 0 when
 * there is none (or it does not check). Return 0 or -errno.
 */
int hf_replica_mark_get(struct hf_replica *r, uint64_t *seq,
			uint64_t *time_ns);
int hf_replica_mark_put(struct hf_replica *r, uint64_t seq,
			uint64_t time_ns, unsigned flags);
/*
 * With HF_MARK_FINAL the stream ended at that mark (wire.h's
 * HF_VOLW_F_FINAL): DIR/mark is then 24 bytes, seq, time, u32 flags,
 * CRC-32C of the 20 (the 20-byte form, without flags, still reads).
 * final may be NULL.
 */
#define HF_MARK_FINAL 1u
int hf_replica_mark_read(struct hf_replica *r, uint64_t *seq,
			 uint64_t *time_ns, bool *final);

#endif
