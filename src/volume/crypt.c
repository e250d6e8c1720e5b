/*
 * crypt.c - encrypted volumes (crypt.h), with OpenSSL's EVP ciphers.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "volume/crypt.h"
#include "volume/ticket.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define SEALED_LEN (NONCE_LEN + HF_VOL_DATA_KEY_LEN + TAG_LEN)

/*
 * One cipher context per thread and direction, keyed for one data key
 * (a volume's attach process has one; the key's bytes tell a context
 * made for another apart). Freed when the thread ends.
 */
struct xts_ctx {
	EVP_CIPHER_CTX *ctx[2]; /* [0] decrypt, [1] encrypt */
	uint8_t key[2][HF_VOL_DATA_KEY_LEN];
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
	struct xts_ctx *x = p;

	for (int i = 0; i < 2; i++)
		EVP_CIPHER_CTX_free(x->ctx[i]);
	OPENSSL_cleanse(x->key, sizeof(x->key));
	free(x);
}

static void ctx_key_make(void)
{
	if (pthread_key_create(&ctx_key, ctx_free) != 0)
		abort();
}

/* This thread's context for c in direction enc (1) or dec (0), or NULL. */
static EVP_CIPHER_CTX *thread_ctx(const struct hf_vol_crypt *c, int enc)
{
	struct xts_ctx *x;

	pthread_once(&ctx_once, ctx_key_make);
	x = pthread_getspecific(ctx_key);
	if (!x) {
		x = hf_xcalloc(1, sizeof(*x));
		if (pthread_setspecific(ctx_key, x) != 0) {
			free(x);
			return NULL;
		}
	}
	if (x->ctx[enc] &&
	    CRYPTO_memcmp(x->key[enc], c->key, HF_VOL_DATA_KEY_LEN) == 0)
		return x->ctx[enc];
	if (!x->ctx[enc])
		x->ctx[enc] = EVP_CIPHER_CTX_new();
	if (!x->ctx[enc] ||
	    EVP_CipherInit_ex(x->ctx[enc], EVP_aes_256_xts(), NULL, c->key,
			      NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(x->ctx[enc]);
		x->ctx[enc] = NULL;
		return NULL;
	}
	memcpy(x->key[enc], c->key, HF_VOL_DATA_KEY_LEN);
	return x->ctx[enc];
}

int hf_vol_crypt_init(struct hf_vol_crypt *c, const uint8_t *key)
{
	const size_t half = HF_VOL_DATA_KEY_LEN / 2;

	if (CRYPTO_memcmp(key, key + half, half) == 0)
		return HF_EINVAL;
	memcpy(c->key, key, HF_VOL_DATA_KEY_LEN);
	return 0;
}

void hf_vol_crypt_release(struct hf_vol_crypt *c)
{
	OPENSSL_cleanse(c->key, sizeof(c->key));
}

static bool block_zero(const uint8_t *p)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < HF_VOL_CRYPT_BLOCK; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		acc |= w;
	}
	return acc == 0;
}

static int run(const struct hf_vol_crypt *c, int enc, uint64_t off,
	       const uint8_t *in, uint8_t *out, size_t len)
{
	EVP_CIPHER_CTX *ctx;

	if (off % HF_VOL_CRYPT_BLOCK || len % HF_VOL_CRYPT_BLOCK)
		return HF_EINVAL;
	ctx = thread_ctx(c, enc);
	if (!ctx)
		return HF_EIO;
	for (size_t i = 0; i < len; i += HF_VOL_CRYPT_BLOCK) {
		uint64_t unit = off / HF_VOL_CRYPT_BLOCK + i / HF_VOL_CRYPT_BLOCK;
		uint8_t tweak[16] = {0};
		int n = 0;

		if (!enc && block_zero(in + i)) {
			memset(out + i, 0, HF_VOL_CRYPT_BLOCK);
			continue;
		}
		for (int b = 0; b < 8; b++)
			tweak[b] = (uint8_t)(unit >> (8 * b));
		if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, tweak, enc) != 1 ||
		    EVP_CipherUpdate(ctx, out + i, &n, in + i,
				     HF_VOL_CRYPT_BLOCK) != 1 ||
		    n != HF_VOL_CRYPT_BLOCK)
			return HF_EIO;
	}
	return 0;
}

int hf_vol_encrypt(const struct hf_vol_crypt *c, uint64_t off,
		   const uint8_t *in, uint8_t *out, size_t len)
{
	return run(c, 1, off, in, out, len);
}

int hf_vol_decrypt(const struct hf_vol_crypt *c, uint64_t off,
		   const uint8_t *in, uint8_t *out, size_t len)
{
	return run(c, 0, off, in, out, len);
}

static char *to_hex(const uint8_t *p, size_t n)
{
	char *s = hf_xmalloc(2 * n + 1);

	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	return s;
}

char *hf_vol_key_seal(const uint8_t *ck, const char *id, const uint8_t *dk)
{
	uint8_t box[SEALED_LEN];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	char *hex = NULL;
	int n = 0, fin = 0;

	if (ctx && RAND_bytes(box, NONCE_LEN) == 1 &&
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, ck, box) == 1 &&
	    EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)id,
			      (int)strlen(id)) == 1 &&
	    EVP_EncryptUpdate(ctx, box + NONCE_LEN, &n, dk,
			      HF_VOL_DATA_KEY_LEN) == 1 &&
	    n == HF_VOL_DATA_KEY_LEN &&
	    EVP_EncryptFinal_ex(ctx, box + NONCE_LEN + n, &fin) == 1 &&
	    fin == 0 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				box + NONCE_LEN + HF_VOL_DATA_KEY_LEN) == 1)
		hex = to_hex(box, sizeof(box));
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(box, sizeof(box));
	return hex;
}

int hf_vol_key_open(const uint8_t *ck, const char *id, const char *sealed,
		    uint8_t *dk)
{
	uint8_t box[SEALED_LEN];
	EVP_CIPHER_CTX *ctx;
	int n = 0, fin = 0, rc = HF_EFORBIDDEN;

	memset(dk, 0, HF_VOL_DATA_KEY_LEN);
	if (!sealed || hf_vol_hex_decode(sealed, box, sizeof(box)) != 0)
		return HF_EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return HF_EIO;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, ck, box) == 1 &&
	    EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)id,
			      (int)strlen(id)) == 1 &&
	    EVP_DecryptUpdate(ctx, dk, &n, box + NONCE_LEN,
			      HF_VOL_DATA_KEY_LEN) == 1 &&
	    n == HF_VOL_DATA_KEY_LEN &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				box + NONCE_LEN + HF_VOL_DATA_KEY_LEN) == 1 &&
	    EVP_DecryptFinal_ex(ctx, dk + n, &fin) == 1)
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	if (rc)
		OPENSSL_cleanse(dk, HF_VOL_DATA_KEY_LEN);
	return rc;
}

int hf_vol_cluster_key_parse(const char *text, uint8_t *ck)
{
	char hex[2 * HF_VOL_CLUSTER_KEY_LEN + 1];
	size_t i = 0, n = 0;
	int rc;

	while (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
	       text[i] == '\r')
		i++;
	while (text[i] && !(text[i] == ' ' || text[i] == '\t' ||
			    text[i] == '\n' || text[i] == '\r')) {
		if (n == sizeof(hex) - 1)
			return HF_EINVAL;
		hex[n++] = text[i++];
	}
	hex[n] = 0;
	while (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
	       text[i] == '\r')
		i++;
	rc = text[i] ? HF_EINVAL : hf_vol_hex_decode(hex, ck, HF_VOL_CLUSTER_KEY_LEN);
	OPENSSL_cleanse(hex, sizeof(hex));
	return rc;
}
