/*
 * test_placement.c - placement constraints and spread over fake nodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plan/placement.h"

struct world {
	struct hf_kvlist attrs[4];
	struct hf_place_node nodes[4];
};

static void world_init(struct world *w)
{
	static const char *const ids[] = {"n1", "n2", "n3", "n4"};
	static const char *const zones[] = {"a", "a", "b", "c"};
	static const char *const racks[] = {"r1", "r2", "r1", "r2"};

	memset(w, 0, sizeof(*w));
	for (int i = 0; i < 4; i++) {
		hf_kvlist_set(&w->attrs[i], "zone", zones[i]);
		hf_kvlist_set(&w->attrs[i], "rack", racks[i]);
		w->nodes[i].id = ids[i];
		w->nodes[i].attributes = &w->attrs[i];
		w->nodes[i].usable = true;
	}
}

static void world_release(struct world *w)
{
	for (int i = 0; i < 4; i++)
		hf_kvlist_release(&w->attrs[i]);
}

static long choose(struct world *w, const char *field, const char *op,
		   const char *arg, const size_t *placed, size_t n, char **why)
{
	struct hf_spec_constraint c = {(char *)field, (char *)op, (char *)arg};

	return hf_place_choose(&c, 1, w->nodes, 4, placed, n, why);
}

static void test_unique(void **state)
{
	struct world w;
	size_t placed[4];
	char *why = NULL;
	long got;

	(void)state;
	world_init(&w);
	/* Four instances land on four hosts, then there is no room. */
	for (size_t i = 0; i < 4; i++) {
		got = choose(&w, "hostname", "UNIQUE", NULL, placed, i, &why);
		assert_true(got >= 0);
		for (size_t k = 0; k < i; k++)
			assert_int_not_equal(placed[k], (size_t)got);
		placed[i] = (size_t)got;
	}
	got = choose(&w, "hostname", "UNIQUE", NULL, placed, 4, &why);
	assert_int_equal(got, -1);
	assert_non_null(strstr(why, "hostname UNIQUE"));
	assert_non_null(strstr(why, "node n4"));
	free(why);
	world_release(&w);
}

static void test_group_by_zone(void **state)
{
	struct world w;
	size_t placed[6];
	int per_zone[3] = {0, 0, 0};
	char *why = NULL;

	(void)state;
	world_init(&w);
	for (size_t i = 0; i < 6; i++) {
		long got = choose(&w, "zone", "GROUP_BY", NULL, placed, i, &why);
		const char *z;

		assert_true(got >= 0);
		placed[i] = (size_t)got;
		z = hf_kvlist_get(&w.attrs[got], "zone");
		per_zone[z[0] - 'a']++;
	}
	/* Six instances over three zones: two each. */
	assert_int_equal(per_zone[0], 2);
	assert_int_equal(per_zone[1], 2);
	assert_int_equal(per_zone[2], 2);
	world_release(&w);
}

static void test_max_per_and_like(void **state)
{
	struct world w;
	size_t placed[3] = {0, 2};
	char *why = NULL;
	long got;

	(void)state;
	world_init(&w);
	/* rack r1 holds 2 (n1 and n3): only r2 nodes are left. */
	got = choose(&w, "rack", "MAX_PER", "2", placed, 2, &why);
	assert_true(got == 1 || got == 3);
	got = choose(&w, "zone", "LIKE", "b|c", NULL, 0, &why);
	assert_true(got == 2 || got == 3);
	got = choose(&w, "zone", "UNLIKE", "a", NULL, 0, &why);
	assert_true(got == 2 || got == 3);
	got = choose(&w, "zone", "IS", "c", NULL, 0, &why);
	assert_int_equal(got, 3);
	got = choose(&w, "zone", "IS_NOT", "a", NULL, 0, &why);
	assert_true(got == 2 || got == 3);
	got = choose(&w, "zone", "CLUSTER", "b", NULL, 0, &why);
	assert_int_equal(got, 2);
	got = choose(&w, "zone", "IS", "nowhere", NULL, 0, &why);
	assert_int_equal(got, -1);
	assert_non_null(strstr(why, "zone IS nowhere"));
	free(why);
	got = choose(&w, "missing-attr", "IS", "x", NULL, 0, &why);
	assert_int_equal(got, -1);
	assert_non_null(strstr(why, "no 'missing-attr' attribute"));
	free(why);
	world_release(&w);
}

static void test_spread_and_unusable(void **state)
{
	struct world w;
	char *why = NULL;
	long got;

	(void)state;
	world_init(&w);
	w.nodes[0].load = 5;
	w.nodes[1].load = 1;
	w.nodes[2].usable = false;
	w.nodes[2].unusable_why = "its agent is not connected";
	w.nodes[3].load = 3;
	got = hf_place_choose(NULL, 0, w.nodes, 4, NULL, 0, &why);
	assert_int_equal(got, 1);
	for (int i = 0; i < 4; i++)
		w.nodes[i].usable = false;
	got = hf_place_choose(NULL, 0, w.nodes, 4, NULL, 0, &why);
	assert_int_equal(got, -1);
	assert_non_null(strstr(why, "node n3: its agent is not connected"));
	free(why);
	world_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unique),
	    cmocka_unit_test(test_group_by_zone),
	    cmocka_unit_test(test_max_per_and_like),
	    cmocka_unit_test(test_spread_and_unusable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
