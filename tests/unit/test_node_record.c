/*
 * test_node_record.c - a node's store record (model/codec.h) with and
 * without a storage pool: what is written reads back the same, a
 * storage-less node's record has no "storage" key (records of nodes
 * without a pool stay as they were), and a damaged pool is refused with
 * a message naming it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "model/codec.h"
#include "model/model.h"

static struct hf_node *new_node(const char *id)
{
	struct hf_node *n = hf_xcalloc(1, sizeof(*n));

	n->id = hf_xstrdup(id);
	n->port_begin = 10000;
	n->port_end = 20000;
	return n;
}

/* Loads one record's text; returns the load's code (*err as it says). */
static int load(struct hf_model *m, const char *key, const char *text,
		char **err)
{
	struct hf_codec_rec rec = {key, text, strlen(text)};

	return hf_codec_load_nodes(m, &rec, 1, err);
}

static void test_round_trip(void **state)
{
	struct hf_model m = {0}, back = {0};
	struct hf_node *a = new_node("a"), *b = new_node("b");
	const struct hf_node *la, *lb;
	json_t *ja, *jb;
	char *ta, *tb, *err = NULL;

	(void)state;
	a->storage = hf_xcalloc(1, sizeof(*a->storage));
	a->storage->pool = hf_xstrdup("/srv/pool");
	a->storage->capacity = 10LL << 30;
	a->storage->provisioned = 2LL << 30;
	a->storage->used = 8192;
	a->storage->free = 50LL << 30;
	hf_model_node_add(&m, a);
	hf_model_node_add(&m, b);
	ja = hf_codec_node(&m, a);
	jb = hf_codec_node(&m, b);
	assert_non_null(json_object_get(ja, "storage"));
	assert_null(json_object_get(jb, "storage"));
	ta = json_dumps(ja, JSON_COMPACT);
	tb = json_dumps(jb, JSON_COMPACT);
	if (load(&back, "/nodes/a", ta, &err) ||
	    load(&back, "/nodes/b", tb, &err))
		fail_msg("%s", err);
	la = hf_model_node(&back, "a");
	lb = hf_model_node(&back, "b");
	assert_non_null(la);
	assert_non_null(la->storage);
	assert_string_equal(la->storage->pool, "/srv/pool");
	assert_int_equal(la->storage->capacity, 10LL << 30);
	assert_int_equal(la->storage->provisioned, 2LL << 30);
	assert_int_equal(la->storage->used, 8192);
	assert_int_equal(la->storage->free, 50LL << 30);
	assert_null(lb->storage);
	free(ta);
	free(tb);
	json_decref(ja);
	json_decref(jb);
	hf_model_release(&m);
	hf_model_release(&back);
}

static void expect_refused(const char *text, const char *want)
{
	struct hf_model m = {0};
	char *err = NULL;

	assert_int_equal(load(&m, "/nodes/a", text, &err), HF_EINVAL);
	assert_non_null(err);
	if (!strstr(err, want))
		fail_msg("got \"%s\", want it to say \"%s\"", err, want);
	free(err);
	hf_model_release(&m);
}

static void test_damaged_pool(void **state)
{
	struct hf_model m = {0};
	char *err = NULL;

	(void)state;
	expect_refused("{\"id\": \"a\", \"storage\": 3}",
		       "storage is not an object or null");
	expect_refused("{\"id\": \"a\", \"storage\": {\"pool\": \"/p\"}}",
		       "storage.capacity is missing");
	expect_refused("{\"id\": \"a\", \"storage\": {\"pool\": \"/p\", "
		       "\"capacity\": 1, \"provisioned\": 0, \"used\": -4, "
		       "\"free\": 0}}",
		       "storage.used is negative");
	expect_refused("{\"id\": \"a\", \"storage\": {\"pool\": 5, "
		       "\"capacity\": 1, \"provisioned\": 0, \"used\": 0, "
		       "\"free\": 0}}",
		       "storage.pool is not a string or null");
	/* null: storage-less, as a record of an older server. */
	assert_int_equal(load(&m, "/nodes/a", "{\"id\": \"a\", \"storage\": null}",
			      &err),
			 0);
	assert_null(hf_model_node(&m, "a")->storage);
	hf_model_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
