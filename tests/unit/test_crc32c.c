/*
 * test_crc32c.c - CRC-32C (common/crc32c.h) against published vectors
 * (the check value of the CRC catalogue, RFC 3720's iSCSI examples), and
 * the hardware path against the table on every length and alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/rng.h"

static void expect_crc(const char *what, const void *buf, size_t len,
		       uint32_t want)
{
	uint32_t hw = hf_crc32c(0, buf, len), sw = hf_crc32c_sw(0, buf, len);

	if (hw != want || sw != want)
		fail_msg("%s: got 0x%08x (dispatched) and 0x%08x (table), "
			 "want 0x%08x",
			 what, hw, sw, want);
}

static void test_vectors(void **state)
{
	uint8_t b[32];

	(void)state;
	expect_crc("\"123456789\"", "123456789", 9, 0xe3069283);
	expect_crc("nothing", NULL, 0, 0);
	/* RFC 3720, B.4. */
	memset(b, 0, sizeof(b));
	expect_crc("32 zero bytes", b, sizeof(b), 0x8a9136aa);
	memset(b, 0xff, sizeof(b));
	expect_crc("32 0xff bytes", b, sizeof(b), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	expect_crc("32 incrementing bytes", b, sizeof(b), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	expect_crc("32 decrementing bytes", b, sizeof(b), 0x113fdb5c);
}

/* Every split of a buffer chains to the CRC of the whole, on both paths,
 * from every alignment. */
static void test_chaining_and_paths(void **state)
{
	uint8_t buf[300];
	struct hf_rng rng;

	(void)state;
	hf_rng_seed(&rng, 14);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)hf_rng_next(&rng);
	for (size_t start = 0; start < 9; start++) {
		for (size_t len = 0; len + start <= 200; len++) {
			const uint8_t *p = buf + start;
			uint32_t whole = hf_crc32c_sw(0, p, len);

			if (hf_crc32c(0, p, len) != whole)
				fail_msg("start %zu len %zu: dispatched 0x%08x, "
					 "table 0x%08x",
					 start, len, hf_crc32c(0, p, len),
					 whole);
			for (size_t cut = 0; cut <= len; cut += 7) {
				uint32_t c = hf_crc32c(0, p, cut);

				c = hf_crc32c(c, p + cut, len - cut);
				if (c != whole)
					fail_msg("start %zu len %zu cut %zu: "
						 "chained 0x%08x, whole 0x%08x",
						 start, len, cut, c, whole);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_chaining_and_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
