/*
 * serveconf.h - serve.json, the node server's settings (serve.h has the
 * format), parsed and checked apart from the server so that the check is
 * fuzzed (tests/fuzz/fuzz_volserve.c).
 */
#ifndef HF_VOLUME_SERVECONF_H
#define HF_VOLUME_SERVECONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/ticket.h"

#define HF_VOLUME_DEFAULT_PORT 7446

struct hf_serve_volume {
	char *id, *replica; /* 1-64 letters, digits, '-' or '_' */
	char *name;         /* the volume's name (default: the id) */
	int64_t size;       /* a multiple of 4096, >= 64 MiB */
	uint8_t key[HF_VOL_KEY_LEN];
	/*
	 * "clone_from": {"id", "replica", "snapshot"}: a clone's replica,
	 * made (when its data file is missing) from that snapshot of that
	 * replica in the same pool; NULL (all three) otherwise.
	 */
	char *clone_id, *clone_replica, *clone_snap;
	/*
	 * "restore_from": {"endpoint", "region", "ca"?, "url": "s3://...",
	 * "volume", "backup", "access_key", "secret_key"}: a replica made,
	 * when its data file is missing, from that backup in that store
	 * (backup.h). The keys are secrets: never in a message.
	 */
	char *rf[8];
	/*
	 * "standby": true: a disaster-recovery standby's replica, which the
	 * "dr" listener's connections (another site's stream) may write;
	 * they may write no other.
	 */
	bool standby;
	/*
	 * "group": a standby's consistency group (its service): the writes
	 * of the group's standbys are spooled and applied together up to
	 * their common mark (spool.h). NULL: none.
	 */
	char *group;
};

enum { /* hf_serve_volume.rf */
	HF_RF_ENDPOINT, HF_RF_REGION, HF_RF_CA, HF_RF_URL, HF_RF_VOLUME,
	HF_RF_BACKUP, HF_RF_ACCESS, HF_RF_SECRET,
};

struct hf_serve_config {
	char *pool;       /* absolute */
	char *host;       /* numeric address, without brackets */
	int port;         /* 0-65535 (0: pick one) */
	struct hf_serve_volume *vols;
	size_t nvols;     /* distinct volume ids */
	/*
	 * "dr": {"listen": "HOST:PORT", "tls_cert", "tls_key", "tls_ca"}:
	 * a TLS listener (tls.h) for other sites' disaster-recovery
	 * streams, whose client certificates tls_ca must have signed;
	 * dr_host is NULL without one.
	 */
	char *dr_host;
	int dr_port;
	char *dr_cert, *dr_key, *dr_ca;
};

/*
 * Parses len bytes of serve.json text into *c (zeroed first). Returns 0,
 * or -1 with a sentence naming path and the key in err (err_len bytes);
 * *c then holds what was filled, for hf_serve_config_release. Secrets
 * (the keys) never appear in err.
 */
int hf_serve_config_parse(const char *text, size_t len, const char *path,
			  struct hf_serve_config *c, char *err, size_t err_len);

void hf_serve_config_release(struct hf_serve_config *c);

#endif
