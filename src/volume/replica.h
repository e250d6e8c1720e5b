/*
 * replica.h - one replica's files on a node (docs/design/volumes.md §5.1):
 * <pool>/replicas/<volume id>/<replica id>/{data,meta}, opened (created
 * sparse when missing) and fenced by epoch. Used by serve.c; thread-safe
 * (a node server serves one replica on several connections).
 */
#ifndef HF_VOLUME_REPLICA_H
#define HF_VOLUME_REPLICA_H

#include <pthread.h>
#include <stdint.h>

#include "volume/meta.h"
#include "volume/ticket.h"

struct hf_replica {
	char *volume_id, *replica_id; /* letters, digits, '-', '_' */
	char *name;                   /* the volume's name, for meta */
	int64_t size;
	uint8_t key[HF_VOL_KEY_LEN]; /* K_vol: never logged */
	char *dir;                   /* <pool>/replicas/<id>/<replica> */
	int fd;                      /* data, O_RDWR */
	pthread_mutex_t mu;          /* meta and its file */
	struct hf_vol_meta meta;
	uint64_t epoch; /* meta.epoch, read without mu (__atomic) */
};

/*
 * Opens r's replica under pool (r's ids, name, size and key set by the
 * caller): makes the directories (0700), creates `data` sparse at size
 * and a `meta` (CONSISTENT, epoch 0, no generation yet) when missing.
 * Refuses a data file of another size, and a meta that does not decode
 * or names another volume, replica or size. Returns 0, or -1 with a
 * sentence in err (err_len bytes).
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

/* The epoch r accepts now. */
uint64_t hf_replica_epoch(struct hf_replica *r);

/* Closes the files, frees the strings. */
void hf_replica_release(struct hf_replica *r);

#endif
