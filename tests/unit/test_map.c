/*
 * test_map.c - the string-keyed hash map against a plain array model,
 * through random puts, gets and deletes (deletion moves entries back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/map.h"

#define NKEYS 2000

static void test_put_get_del(void **state)
{
	struct hf_map m = {0};
	int a = 1, b = 2;

	(void)state;
	assert_null(hf_map_get(&m, "x"));
	assert_false(hf_map_del(&m, "x"));
	hf_map_put(&m, "x", &a);
	hf_map_put(&m, "y", &b);
	assert_ptr_equal(hf_map_get(&m, "x"), &a);
	assert_ptr_equal(hf_map_get(&m, "y"), &b);
	hf_map_put(&m, "x", &b);
	assert_ptr_equal(hf_map_get(&m, "x"), &b);
	assert_int_equal(m.len, 2);
	assert_true(hf_map_del(&m, "x"));
	assert_null(hf_map_get(&m, "x"));
	assert_ptr_equal(hf_map_get(&m, "y"), &b);
	assert_null(hf_map_get(&m, NULL));
	hf_map_clear(&m);
	assert_null(hf_map_get(&m, "y"));
	assert_int_equal(m.len, 0);
	hf_map_release(&m);
}

static void test_random_against_model(void **state)
{
	static char keys[NKEYS][16];
	static void *model[NKEYS];
	struct hf_map m = {0};
	unsigned seed = 12345;
	size_t live = 0;

	(void)state;
	for (int i = 0; i < NKEYS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k-%d", i);
		model[i] = NULL;
	}
	for (int round = 0; round < 200000; round++) {
		int k, op;

		seed = seed * 1103515245u + 12345u;
		k = (int)((seed >> 8) % NKEYS);
		op = (int)((seed >> 4) % 3);
		if (op == 0) {
			if (!model[k])
				live++;
			model[k] = &keys[k];
			hf_map_put(&m, keys[k], &keys[k]);
		} else if (op == 1) {
			assert_int_equal(hf_map_del(&m, keys[k]), model[k] != NULL);
			if (model[k])
				live--;
			model[k] = NULL;
		} else {
			assert_ptr_equal(hf_map_get(&m, keys[k]), model[k]);
		}
		assert_int_equal(m.len, live);
	}
	for (int i = 0; i < NKEYS; i++)
		assert_ptr_equal(hf_map_get(&m, keys[i]), model[i]);
	hf_map_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_del),
	    cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
