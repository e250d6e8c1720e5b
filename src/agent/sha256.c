/*
 * sha256.c - SHA-256 through OpenSSL's EVP interface.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/sha256.h"

void hf_sha256_init(struct hf_sha256 *s)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		fprintf(stderr, "holdfast: cannot start a SHA-256 digest\n");
		abort();
	}
	s->ctx = c;
}

void hf_sha256_update(struct hf_sha256 *s, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(s->ctx, data, len);
}

void hf_sha256_final_hex(struct hf_sha256 *s, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(s->ctx, md, &n);
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
	for (unsigned int i = 0; i < n && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = '\0';
}
