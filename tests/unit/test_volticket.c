/*
 * test_volticket.c - attach tickets (src/volume/ticket.h): the message's
 * exact bytes, held against a value computed independently (Python's
 * hmac over "attach\0vol-1\0" "42\0" "node-a"), and that every input
 * changes the ticket; the hex decoder's refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "common/err.h"
#include "volume/ticket.h"

#define VECTOR "c2c3fcfe2764f87b4fdee1c412a6874d7bca2de46ef1fe6cd26817934845649e"

static void key_0_31(uint8_t k[HF_VOL_KEY_LEN])
{
	for (int i = 0; i < HF_VOL_KEY_LEN; i++)
		k[i] = (uint8_t)i;
}

static void test_known_answer(void **state)
{
	uint8_t k[HF_VOL_KEY_LEN], t[HF_VOL_TICKET_LEN], want[HF_VOL_TICKET_LEN];

	key_0_31(k);
	assert_int_equal(hf_vol_hex_decode(VECTOR, want, sizeof(want)), 0);
	hf_vol_ticket(k, "vol-1", 42, "node-a", t);
	assert_memory_equal(t, want, sizeof(t));
	assert_true(hf_vol_ticket_equal(t, want));
}

static void test_every_input_counts(void **state)
{
	uint8_t k[HF_VOL_KEY_LEN], base[HF_VOL_TICKET_LEN], t[HF_VOL_TICKET_LEN];

	key_0_31(k);
	hf_vol_ticket(k, "vol-1", 42, "node-a", base);
	hf_vol_ticket(k, "vol-2", 42, "node-a", t);
	assert_false(hf_vol_ticket_equal(t, base));
	hf_vol_ticket(k, "vol-1", 43, "node-a", t);
	assert_false(hf_vol_ticket_equal(t, base));
	hf_vol_ticket(k, "vol-1", 42, "node-b", t);
	assert_false(hf_vol_ticket_equal(t, base));
	/* The separators keep "vol-1"|"42" apart from "vol-14"|"2". */
	hf_vol_ticket(k, "vol-14", 2, "node-a", t);
	assert_false(hf_vol_ticket_equal(t, base));
	k[31] ^= 1;
	hf_vol_ticket(k, "vol-1", 42, "node-a", t);
	assert_false(hf_vol_ticket_equal(t, base));
}

static void test_hex_decode(void **state)
{
	uint8_t out[2];

	assert_int_equal(hf_vol_hex_decode("a0Ff", out, 2), 0);
	assert_int_equal(out[0], 0xa0);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(hf_vol_hex_decode("a0f", out, 2), HF_EINVAL);
	assert_int_equal(hf_vol_hex_decode("a0fff", out, 2), HF_EINVAL);
	assert_int_equal(hf_vol_hex_decode("a0fg", out, 2), HF_EINVAL);
	assert_int_equal(hf_vol_hex_decode("", out, 2), HF_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_answer),
	    cmocka_unit_test(test_every_input_counts),
	    cmocka_unit_test(test_hex_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
