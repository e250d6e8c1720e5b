/*
 * sha256.h - SHA-256 (FIPS 180-4), for the agent's content-addressed
 * artifact cache. Pure; no globals.
 */
#ifndef HF_AGENT_SHA256_H
#define HF_AGENT_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct hf_sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t block[64];
	size_t fill;
};

void hf_sha256_init(struct hf_sha256 *s);
void hf_sha256_update(struct hf_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL into hex. */
void hf_sha256_final_hex(struct hf_sha256 *s, char hex[65]);

#endif
