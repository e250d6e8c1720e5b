/*
 * crypt.h - encrypted volumes (`secure=true`; docs/design/volumes.md
 * §13): what the attach process does to every 4 KiB block between the
 * task's file system and the replicas, and how the server keeps the keys.
 *
 * Data. A volume's data key is 64 bytes: AES-256-XTS (IEEE 1619), as
 * OpenSSL's EVP_aes_256_xts takes it (two AES-256 keys, which must
 * differ). Each 4096-byte block at byte offset o is one XTS data unit
 * whose tweak is o / 4096 as a 128-bit little-endian number (dm-crypt's
 * "plain64"). Replica files, resync copies and anything made from them
 * hold only the ciphertext.
 *
 * One exception keeps a thin volume thin: a block whose ciphertext is all
 * zeros (never written, discarded, or zeroed with fallocate on a replica)
 * reads as plaintext zeros. A real ciphertext block is all zeros with
 * probability 2^-32768; what the rule shows an observer of a replica is
 * which blocks were never written or were discarded, which the sparse
 * replica files show anyway.
 *
 * Keys at rest. The server keeps each volume's data key sealed by the
 * cluster key (32 bytes given to `holdfast server --cluster-key-file`):
 * AES-256-GCM with a random 96-bit nonce and the volume's id as
 * associated data, as hex text:
 *
 *   nonce (12) | ciphertext (64) | tag (16)     -> 184 hex digits
 *
 * A sealed key opens only with the cluster key that sealed it and only
 * for the volume it was sealed for; a wrong key or a changed byte fails
 * the tag check.
 */
#ifndef HF_VOLUME_CRYPT_H
#define HF_VOLUME_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HF_VOL_DATA_KEY_LEN 64    /* AES-256-XTS */
#define HF_VOL_CLUSTER_KEY_LEN 32 /* AES-256-GCM */
#define HF_VOL_CRYPT_BLOCK 4096
/* Hex digits of a sealed data key. */
#define HF_VOL_SEALED_HEX (2 * (12 + HF_VOL_DATA_KEY_LEN + 16))

/* A data key ready for use by any number of threads. */
struct hf_vol_crypt {
	uint8_t key[HF_VOL_DATA_KEY_LEN];
};

/*
 * Sets c up with key (HF_VOL_DATA_KEY_LEN bytes). Returns 0, or
 * HF_EINVAL when its two halves are equal (XTS refuses such a key).
 */
int hf_vol_crypt_init(struct hf_vol_crypt *c, const uint8_t *key);

/* Forgets the key. */
void hf_vol_crypt_release(struct hf_vol_crypt *c);

/*
 * Encrypts len bytes (a multiple of HF_VOL_CRYPT_BLOCK) of plaintext in,
 * which sit at byte offset off of the volume (a multiple of the block),
 * into out (may be in). Returns 0, or HF_EINVAL for an unaligned range,
 * HF_EIO when OpenSSL fails.
 */
int hf_vol_encrypt(const struct hf_vol_crypt *c, uint64_t off,
		   const uint8_t *in, uint8_t *out, size_t len);

/*
 * The reverse, with the all-zero rule above: a block of in that is all
 * zeros gives a block of zeros.
 */
int hf_vol_decrypt(const struct hf_vol_crypt *c, uint64_t off,
		   const uint8_t *in, uint8_t *out, size_t len);

/*
 * Seals data key dk for volume id with cluster key ck: returns the hex
 * text (malloc'ed), or NULL when OpenSSL or the random source fails.
 */
char *hf_vol_key_seal(const uint8_t *ck, const char *id, const uint8_t *dk);

/*
 * Opens sealed (hex text of hf_vol_key_seal) for volume id with cluster
 * key ck into dk (HF_VOL_DATA_KEY_LEN bytes). Returns 0, HF_EINVAL for
 * text that is no sealed key, or HF_EFORBIDDEN when it does not open: another
 * cluster key, another volume, or a changed byte. dk is zeroed on failure.
 */
int hf_vol_key_open(const uint8_t *ck, const char *id, const char *sealed,
		    uint8_t *dk);

/*
 * Reads a cluster key: 64 hex digits, with any white space around them,
 * from text. Returns 0 or HF_EINVAL.
 */
int hf_vol_cluster_key_parse(const char *text, uint8_t *ck);

#endif
