/*
 * ticket.c - attach tickets (ticket.h), with OpenSSL's HMAC.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "volume/ticket.h"

void hf_vol_ticket(const uint8_t key[HF_VOL_KEY_LEN], const char *volume_id,
		   uint64_t epoch, const char *node_id,
		   uint8_t out[HF_VOL_TICKET_LEN])
{
	struct hf_buf msg;
	char num[24];
	unsigned int n = HF_VOL_TICKET_LEN;

	hf_buf_init(&msg);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)epoch);
	hf_buf_add(&msg, "attach", 7); /* with its NUL */
	hf_buf_add(&msg, volume_id, strlen(volume_id) + 1);
	hf_buf_add(&msg, num, strlen(num) + 1);
	hf_buf_add(&msg, node_id, strlen(node_id));
	HMAC(EVP_sha256(), key, HF_VOL_KEY_LEN, (const uint8_t *)msg.data,
	     msg.len, out, &n);
	hf_buf_release(&msg);
}

int hf_vol_ticket_equal(const uint8_t *a, const uint8_t *b)
{
	return CRYPTO_memcmp(a, b, HF_VOL_TICKET_LEN) == 0;
}

int hf_vol_hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return HF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hf_hex_val(s[2 * i]), lo = hf_hex_val(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return HF_EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void hf_vol_sum(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	/* Fails only without memory: as hf_xmalloc, that ends the process. */
	if (!EVP_Digest(p, n, out, &len, EVP_sha256(), NULL)) {
		fprintf(stderr, "holdfast: SHA-256 failed\n");
		abort();
	}
}
