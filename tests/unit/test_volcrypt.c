/*
 * test_volcrypt.c - encrypted volumes' block cipher and sealed keys
 * (src/volume/crypt.h). The known answer was computed independently with
 * Python's `cryptography` (AES-256-XTS, key bytes 0..63, tweak 0x0102030405
 * little-endian, plaintext byte i = 7i + 3): the first and last 16 bytes
 * of the ciphertext and its SHA-256.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "volume/crypt.h"
#include "volume/ticket.h"

#define B HF_VOL_CRYPT_BLOCK
#define UNIT 0x0102030405ULL
#define CT_HEAD "21c55be7808d5cea48f785bcef86b505"
#define CT_TAIL "ce0c4bb472b0fa5b30bb58975aff0fdc"
#define CT_SHA "d8df5880d249ecff0b2fe6ebab89c4e5f3177cae5f87fce5759a7e9ef3ba5a33"

static void key_0_63(uint8_t *k)
{
	for (int i = 0; i < HF_VOL_DATA_KEY_LEN; i++)
		k[i] = (uint8_t)i;
}

static void pattern(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i % B) * 7 + 3);
}

static void assert_hex(const uint8_t *p, size_t n, const char *hex)
{
	uint8_t want[64];

	assert_true(n <= sizeof(want));
	assert_int_equal(hf_vol_hex_decode(hex, want, n), 0);
	assert_memory_equal(p, want, n);
}

static void test_known_answer(void **state)
{
	uint8_t k[HF_VOL_DATA_KEY_LEN], md[32];
	uint8_t *pt = malloc(B), *ct = malloc(B), *back = malloc(B);
	unsigned int mdn = 0;
	struct hf_vol_crypt c;

	key_0_63(k);
	pattern(pt, B);
	assert_int_equal(hf_vol_crypt_init(&c, k), 0);
	assert_int_equal(hf_vol_encrypt(&c, UNIT * B, pt, ct, B), 0);
	assert_hex(ct, 16, CT_HEAD);
	assert_hex(ct + B - 16, 16, CT_TAIL);
	assert_int_equal(EVP_Digest(ct, B, md, &mdn, EVP_sha256(), NULL), 1);
	assert_hex(md, 32, CT_SHA);
	assert_int_equal(hf_vol_decrypt(&c, UNIT * B, ct, back, B), 0);
	assert_memory_equal(back, pt, B);
	hf_vol_crypt_release(&c);
	free(pt);
	free(ct);
	free(back);
}

/* Each block's tweak is its own offset, whatever range carried it. */
static void test_blocks_by_offset(void **state)
{
	uint8_t k[HF_VOL_DATA_KEY_LEN];
	uint8_t *pt = malloc(4 * B), *ct = malloc(4 * B), *one = malloc(B);
	struct hf_vol_crypt c;

	key_0_63(k);
	pattern(pt, 4 * B);
	assert_int_equal(hf_vol_crypt_init(&c, k), 0);
	assert_int_equal(hf_vol_encrypt(&c, 8 * B, pt, ct, 4 * B), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(
		    hf_vol_encrypt(&c, (uint64_t)(8 + i) * B, pt + i * B, one, B),
		    0);
		assert_memory_equal(one, ct + i * B, B);
	}
	/* Same plaintext, other offsets: other ciphertexts. */
	assert_memory_not_equal(ct, ct + B, B);
	/* In place. */
	assert_int_equal(hf_vol_encrypt(&c, 8 * B, pt, pt, 4 * B), 0);
	assert_memory_equal(pt, ct, 4 * B);
	assert_int_equal(hf_vol_decrypt(&c, 8 * B, pt, pt, 4 * B), 0);
	pattern(one, B);
	assert_memory_equal(pt + 3 * B, one, B);
	hf_vol_crypt_release(&c);
	free(pt);
	free(ct);
	free(one);
}

static void test_zero_blocks_read_as_zeros(void **state)
{
	uint8_t k[HF_VOL_DATA_KEY_LEN];
	uint8_t *z = calloc(1, 2 * B), *ct = malloc(2 * B), *out = malloc(2 * B);
	struct hf_vol_crypt c;

	key_0_63(k);
	assert_int_equal(hf_vol_crypt_init(&c, k), 0);
	/* Written zeros are encrypted like anything else ... */
	assert_int_equal(hf_vol_encrypt(&c, 0, z, ct, 2 * B), 0);
	assert_memory_not_equal(ct, z, B);
	assert_int_equal(hf_vol_decrypt(&c, 0, ct, out, 2 * B), 0);
	assert_memory_equal(out, z, 2 * B);
	/* ... and a block never written (all zero on the replica) is zeros. */
	memset(ct + B, 0, B);
	memset(out, 0xaa, 2 * B);
	assert_int_equal(hf_vol_decrypt(&c, 0, ct, out, 2 * B), 0);
	assert_memory_equal(out, z, 2 * B);
	hf_vol_crypt_release(&c);
	free(z);
	free(ct);
	free(out);
}

static void test_refusals(void **state)
{
	uint8_t k[HF_VOL_DATA_KEY_LEN], buf[2 * B];
	struct hf_vol_crypt c;

	memset(k, 7, sizeof(k));
	assert_int_equal(hf_vol_crypt_init(&c, k), HF_EINVAL);
	key_0_63(k);
	assert_int_equal(hf_vol_crypt_init(&c, k), 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(hf_vol_encrypt(&c, 512, buf, buf, B), HF_EINVAL);
	assert_int_equal(hf_vol_encrypt(&c, 0, buf, buf, B + 512), HF_EINVAL);
	assert_int_equal(hf_vol_decrypt(&c, 100, buf, buf, B), HF_EINVAL);
	/* Another key does not give the plaintext back. */
	{
		struct hf_vol_crypt d;
		uint8_t k2[HF_VOL_DATA_KEY_LEN], pt[B];

		memcpy(k2, k, sizeof(k2));
		k2[5] ^= 1;
		assert_int_equal(hf_vol_crypt_init(&d, k2), 0);
		pattern(pt, B);
		assert_int_equal(hf_vol_encrypt(&c, 0, pt, buf, B), 0);
		assert_int_equal(hf_vol_decrypt(&d, 0, buf, buf, B), 0);
		assert_memory_not_equal(buf, pt, B);
		hf_vol_crypt_release(&d);
	}
	hf_vol_crypt_release(&c);
}

static void test_seal_open(void **state)
{
	uint8_t ck[HF_VOL_CLUSTER_KEY_LEN], ck2[HF_VOL_CLUSTER_KEY_LEN];
	uint8_t dk[HF_VOL_DATA_KEY_LEN], got[HF_VOL_DATA_KEY_LEN];
	char *s, *s2;

	memset(ck, 0x11, sizeof(ck));
	memcpy(ck2, ck, sizeof(ck2));
	ck2[31] ^= 0x80;
	key_0_63(dk);
	s = hf_vol_key_seal(ck, "vol-1", dk);
	s2 = hf_vol_key_seal(ck, "vol-1", dk);
	assert_non_null(s);
	assert_non_null(s2);
	assert_int_equal(strlen(s), HF_VOL_SEALED_HEX);
	/* A fresh nonce each time. */
	assert_string_not_equal(s, s2);
	assert_int_equal(hf_vol_key_open(ck, "vol-1", s, got), 0);
	assert_memory_equal(got, dk, sizeof(dk));
	assert_int_equal(hf_vol_key_open(ck, "vol-1", s2, got), 0);
	assert_memory_equal(got, dk, sizeof(dk));
	/* Another cluster key, another volume: it does not open. */
	assert_int_equal(hf_vol_key_open(ck2, "vol-1", s, got), HF_EFORBIDDEN);
	assert_int_equal(got[1], 0);
	assert_int_equal(hf_vol_key_open(ck, "vol-2", s, got), HF_EFORBIDDEN);
	/* Every byte counts: nonce, ciphertext, tag. */
	for (size_t i = 0; i < HF_VOL_SEALED_HEX; i += 23) {
		char c = s[i];

		s[i] = c == '0' ? '1' : '0';
		assert_int_equal(hf_vol_key_open(ck, "vol-1", s, got),
				 HF_EFORBIDDEN);
		s[i] = c;
	}
	assert_int_equal(hf_vol_key_open(ck, "vol-1", "abc", got), HF_EINVAL);
	assert_int_equal(hf_vol_key_open(ck, "vol-1", NULL, got), HF_EINVAL);
	free(s);
	free(s2);
}

static void test_cluster_key_parse(void **state)
{
	uint8_t ck[HF_VOL_CLUSTER_KEY_LEN];
	const char *hex =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	char text[128];

	assert_int_equal(hf_vol_cluster_key_parse(hex, ck), 0);
	assert_int_equal(ck[31], 0x1f);
	snprintf(text, sizeof(text), "  %s\n", hex);
	assert_int_equal(hf_vol_cluster_key_parse(text, ck), 0);
	snprintf(text, sizeof(text), "%s0", hex);
	assert_int_equal(hf_vol_cluster_key_parse(text, ck), HF_EINVAL);
	snprintf(text, sizeof(text), "%.62s", hex);
	assert_int_equal(hf_vol_cluster_key_parse(text, ck), HF_EINVAL);
	snprintf(text, sizeof(text), "%s x", hex);
	assert_int_equal(hf_vol_cluster_key_parse(text, ck), HF_EINVAL);
	assert_int_equal(hf_vol_cluster_key_parse("", ck), HF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answer),
	    cmocka_unit_test(test_blocks_by_offset),
	    cmocka_unit_test(test_zero_blocks_read_as_zeros),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_seal_open),
	    cmocka_unit_test(test_cluster_key_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
