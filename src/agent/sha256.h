/*
 * sha256.h - streaming SHA-256 (OpenSSL's EVP underneath), used to key the
 * artifact cache by content.
 */
#ifndef HF_AGENT_SHA256_H
#define HF_AGENT_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct hf_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

/* Aborts when OpenSSL cannot give a digest context (out of memory). */
void hf_sha256_init(struct hf_sha256 *s);
void hf_sha256_update(struct hf_sha256 *s, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL into hex; frees
 * the context (the struct may be initialised again). */
void hf_sha256_final_hex(struct hf_sha256 *s, char hex[65]);

#endif
