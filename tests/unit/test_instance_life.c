/*
 * test_instance_life.c - a pod instance's lifecycle (model/instance_life.h):
 * the table cell by cell, and the store's instance records (model/codec.h):
 * records written before the table, with the stage as flags, load into the
 * stage they meant; new records name it; the API still shows the flags.
 *
 * Pure: links common/, spec/, task/, proto/, model/ and plan/ only (the
 * Makefile's PURE_UNITS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "model/codec.h"
#include "model/model.h"

/* Every transition the table allows; any other pair is refused. */
static const struct {
	enum hf_instance_state from;
	enum hf_instance_event ev;
	enum hf_instance_state to;
	enum hf_drain drain;
} allowed[] = {
    {HF_IS_ACTIVE, HF_IEV_REPLACE, HF_IS_REPLACING, HF_DRAIN_NONE},
    {HF_IS_ACTIVE, HF_IEV_DECOMMISSION, HF_IS_DRAINING, HF_DRAIN_NONE},
    {HF_IS_REPLACING, HF_IEV_OLD_VOLUMES_DELETING, HF_IS_REPLACE_DELETING,
     HF_DRAIN_NONE},
    {HF_IS_REPLACING, HF_IEV_REPLACED, HF_IS_ACTIVE, HF_DRAIN_NONE},
    {HF_IS_REPLACE_DELETING, HF_IEV_REPLACED, HF_IS_ACTIVE, HF_DRAIN_NONE},
    {HF_IS_DRAINING, HF_IEV_DRAINED, HF_IS_STOPPING, HF_DRAIN_DONE},
    {HF_IS_DRAINING, HF_IEV_NO_DRAIN, HF_IS_STOPPING, HF_DRAIN_NONE},
    {HF_IS_DRAINING, HF_IEV_DRAIN_FAILED, HF_IS_DRAIN_FAILED,
     HF_DRAIN_FAILED},
    {HF_IS_DRAINING, HF_IEV_SKIP_DRAIN, HF_IS_STOPPING, HF_DRAIN_SKIPPED},
    {HF_IS_DRAINING, HF_IEV_CANCEL, HF_IS_ACTIVE, HF_DRAIN_NONE},
    {HF_IS_DRAINING, HF_IEV_REPLACE, HF_IS_REPLACING, HF_DRAIN_NONE},
    {HF_IS_DRAIN_FAILED, HF_IEV_SKIP_DRAIN, HF_IS_STOPPING, HF_DRAIN_FAILED},
    {HF_IS_DRAIN_FAILED, HF_IEV_NO_DRAIN, HF_IS_STOPPING, HF_DRAIN_FAILED},
    {HF_IS_DRAIN_FAILED, HF_IEV_CANCEL, HF_IS_ACTIVE, HF_DRAIN_NONE},
    {HF_IS_DRAIN_FAILED, HF_IEV_REPLACE, HF_IS_REPLACING, HF_DRAIN_NONE},
    {HF_IS_STOPPING, HF_IEV_CANCEL, HF_IS_ACTIVE, HF_DRAIN_NONE},
    {HF_IS_STOPPING, HF_IEV_REPLACE, HF_IS_REPLACING, HF_DRAIN_NONE},
};

static void test_table(void **state)
{
	(void)state;
	for (int s = 0; s < HF_IS_COUNT; s++)
		for (int e = 0; e < HF_IEV_COUNT; e++) {
			struct hf_instance_step st = hf_instance_step(
			    (enum hf_instance_state)s,
			    (enum hf_instance_event)e);
			size_t i;

			for (i = 0; i < HF_ARRAY_LEN(allowed); i++)
				if ((int)allowed[i].from == s &&
				    (int)allowed[i].ev == e)
					break;
			if (i == HF_ARRAY_LEN(allowed)) {
				if (st.ok)
					fail_msg("%s --%s--> %s is allowed",
						 hf_instance_state_name(
						     (enum hf_instance_state)s),
						 hf_instance_event_name(
						     (enum hf_instance_event)e),
						 hf_instance_state_name(st.next));
				assert_int_equal(st.next, s);
				continue;
			}
			if (!st.ok)
				fail_msg("%s --%s--> is refused",
					 hf_instance_state_name(
					     (enum hf_instance_state)s),
					 hf_instance_event_name(
					     (enum hf_instance_event)e));
			assert_string_equal(hf_instance_state_name(st.next),
					    hf_instance_state_name(allowed[i].to));
			assert_string_equal(hf_drain_name(st.drain),
					    hf_drain_name(allowed[i].drain));
		}
	/* Out of range: refused, never read past the table. */
	assert_false(hf_instance_step(HF_IS_COUNT, HF_IEV_REPLACE).ok);
	assert_false(hf_instance_step(HF_IS_ACTIVE, HF_IEV_COUNT).ok);
	assert_false(hf_instance_step((enum hf_instance_state)-1,
				      HF_IEV_REPLACE)
			 .ok);
}

/* An instance through a scale-in whose drain fails, and a replace. */
static void test_event(void **state)
{
	struct hf_instance in = {0};

	(void)state;
	assert_int_equal(in.state, HF_IS_ACTIVE); /* a new one */
	assert_false(hf_instance_event(&in, HF_IEV_SKIP_DRAIN));
	assert_int_equal(in.state, HF_IS_ACTIVE);
	assert_true(hf_instance_event(&in, HF_IEV_DECOMMISSION));
	assert_true(hf_instance_decommissioning(&in));
	assert_false(hf_instance_event(&in, HF_IEV_DECOMMISSION));
	assert_true(hf_instance_event(&in, HF_IEV_DRAIN_FAILED));
	assert_int_equal(in.state, HF_IS_DRAIN_FAILED);
	assert_int_equal(in.drain, HF_DRAIN_FAILED);
	/* Skipped by the operator: it still failed (its volumes are kept). */
	assert_true(hf_instance_event(&in, HF_IEV_SKIP_DRAIN));
	assert_int_equal(in.state, HF_IS_STOPPING);
	assert_int_equal(in.drain, HF_DRAIN_FAILED);
	assert_false(hf_instance_event(&in, HF_IEV_DRAINED));
	assert_int_equal(in.drain, HF_DRAIN_FAILED);
	/* Its node is lost meanwhile: the replace wins. */
	assert_true(hf_instance_event(&in, HF_IEV_REPLACE));
	assert_true(hf_instance_replacing(&in));
	assert_false(hf_instance_decommissioning(&in));
	assert_int_equal(in.drain, HF_DRAIN_NONE);
	assert_false(hf_instance_event(&in, HF_IEV_REPLACE));
	assert_false(hf_instance_event(&in, HF_IEV_CANCEL));
	assert_true(hf_instance_event(&in, HF_IEV_OLD_VOLUMES_DELETING));
	assert_int_equal(in.state, HF_IS_REPLACE_DELETING);
	assert_true(hf_instance_replacing(&in));
	assert_true(hf_instance_event(&in, HF_IEV_REPLACED));
	assert_int_equal(in.state, HF_IS_ACTIVE);
}

static void test_names(void **state)
{
	(void)state;
	for (int s = 0; s < HF_IS_COUNT; s++) {
		enum hf_instance_state back;

		assert_true(hf_instance_state_parse(
		    hf_instance_state_name((enum hf_instance_state)s), &back));
		assert_int_equal(back, s);
	}
	for (int d = 0; d < HF_DRAIN_COUNT; d++) {
		enum hf_drain back;

		assert_true(hf_drain_parse(hf_drain_name((enum hf_drain)d),
					   &back));
		assert_int_equal(back, d);
	}
	assert_string_equal(hf_instance_state_name(HF_IS_REPLACE_DELETING),
			    "REPLACE_DELETING");
	assert_string_equal(hf_instance_state_name(HF_IS_COUNT), "UNKNOWN");
	assert_string_equal(hf_drain_name(HF_DRAIN_SKIPPED), "SKIPPED");
	assert_string_equal(hf_instance_event_name(HF_IEV_CANCEL), "CANCEL");
	{
		enum hf_instance_state st = HF_IS_STOPPING;
		enum hf_drain d = HF_DRAIN_DONE;

		assert_false(hf_instance_state_parse("replacing", &st));
		assert_false(hf_instance_state_parse(NULL, &st));
		assert_false(hf_drain_parse("", &d));
		assert_int_equal(st, HF_IS_STOPPING);
		assert_int_equal(d, HF_DRAIN_DONE);
	}
}

/* ------------------------------------------------------------------ */
/* The store's records                                                  */

#define SERVICE_KEY "/services/s"
#define SERVICE_REC "{\"name\": \"s\", \"target\": null}"
#define INSTANCE_KEY "/services/s/instances/p-0"

/*
 * An instance record as holdfast wrote it before the lifecycle table
 * (taken from a store of that version), with its stage flags filled in.
 */
static char *old_record(bool replacing, bool replace_deleting, int decom,
			bool done, bool failed, bool skipped)
{
	return hf_xasprintf(
	    "{\"name\":\"p-0\",\"pod\":\"p\",\"index\":0,\"node\":\"node-1\","
	    "\"ports\":{},\"message\":null,\"paused\":false,"
	    "\"replacing\":%s,\"replace_deleting\":%s,\"decom\":%d,"
	    "\"drain_done\":%s,\"drain_failed\":%s,\"drain_skipped\":%s,"
	    "\"replaced_node\":null,\"replaced_address\":null,"
	    "\"replace_pending\":false,\"tasks\":[{\"task\":\"server\","
	    "\"current\":{\"id\":\"p-0-server__91a618762e28a58b035c7688ea0d65ce\","
	    "\"config_id\":\"1\",\"run\":\"deploy#1\",\"state\":\"RUNNING\","
	    "\"ready\":true,\"healthy\":null,\"exit_code\":null,\"signal\":null,"
	    "\"oom_killed\":false,\"kill\":false,\"restart\":false,"
	    "\"paused\":false,\"launched_at\":1796419707649,"
	    "\"started_at\":1796419707702,\"finished_at\":0,\"message\":null,"
	    "\"params\":{}},\"failures\":0,\"backoff_until\":0,"
	    "\"once_done\":false,\"want_running\":true,\"launches\":1,"
	    "\"restarts\":0}]}",
	    replacing ? "true" : "false", replace_deleting ? "true" : "false",
	    decom, done ? "true" : "false", failed ? "true" : "false",
	    skipped ? "true" : "false");
}

/*
 * Loads a store of service "s" with the instance record `value`. Returns
 * the load's result; *err (the caller frees it) on failure.
 */
static int load(struct hf_model *m, const char *value, char **err)
{
	struct hf_codec_rec recs[] = {
	    {SERVICE_KEY, SERVICE_REC, strlen(SERVICE_REC)},
	    {INSTANCE_KEY, value, strlen(value)},
	};

	memset(m, 0, sizeof(*m));
	return hf_codec_load_services(m, recs, HF_ARRAY_LEN(recs), NULL, err);
}

static struct hf_instance *loaded(struct hf_model *m)
{
	struct hf_service *svc = hf_model_service(m, "s");
	struct hf_instance *in;

	assert_non_null(svc);
	in = hf_model_instance(svc, "p-0");
	assert_non_null(in);
	return in;
}

static void assert_flag(const json_t *o, const char *name, bool want)
{
	const json_t *v = json_object_get(o, name);

	if (!json_is_boolean(v) || json_is_true(v) != want)
		fail_msg("%s: want %s", name, want ? "true" : "false");
}

/* Old records: each stage they could hold, and what the API shows. */
static void test_old_records_load(void **state)
{
	static const struct {
		bool replacing, replace_deleting;
		int decom;
		bool done, failed, skipped;
		enum hf_instance_state state;
		enum hf_drain drain;
		bool same_view; /* the API shows the flags as stored */
	} cases[] = {
	    {false, false, 0, false, false, false, HF_IS_ACTIVE, HF_DRAIN_NONE,
	     true},
	    {true, false, 0, false, false, false, HF_IS_REPLACING,
	     HF_DRAIN_NONE, true},
	    {true, true, 0, false, false, false, HF_IS_REPLACE_DELETING,
	     HF_DRAIN_NONE, true},
	    {false, false, 1, false, false, false, HF_IS_DRAINING,
	     HF_DRAIN_NONE, true},
	    {false, false, 1, false, true, false, HF_IS_DRAIN_FAILED,
	     HF_DRAIN_FAILED, true},
	    {false, false, 2, true, false, false, HF_IS_STOPPING,
	     HF_DRAIN_DONE, true},
	    {false, false, 2, false, false, false, HF_IS_STOPPING,
	     HF_DRAIN_NONE, true},
	    {false, false, 2, false, false, true, HF_IS_STOPPING,
	     HF_DRAIN_SKIPPED, true},
	    {false, false, 2, false, true, true, HF_IS_STOPPING,
	     HF_DRAIN_FAILED, true},
	    /* A skip not yet acted on: the next tick stopped its tasks. */
	    {false, false, 1, false, false, true, HF_IS_STOPPING,
	     HF_DRAIN_SKIPPED, false},
	    {false, false, 1, false, true, true, HF_IS_STOPPING,
	     HF_DRAIN_FAILED, false},
	    /* Replaced during a scale-in: the replace wins. */
	    {true, false, 1, false, true, false, HF_IS_REPLACING,
	     HF_DRAIN_NONE, false},
	};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		char *rec = old_record(cases[i].replacing,
				       cases[i].replace_deleting,
				       cases[i].decom, cases[i].done,
				       cases[i].failed, cases[i].skipped);
		struct hf_model m;
		struct hf_instance *in;
		char *err = NULL;
		json_t *view;

		if (load(&m, rec, &err) != 0)
			fail_msg("case %zu: %s", i, err);
		in = loaded(&m);
		if (in->state != cases[i].state || in->drain != cases[i].drain)
			fail_msg("case %zu: loaded as %s/%s, want %s/%s", i,
				 hf_instance_state_name(in->state),
				 hf_drain_name(in->drain),
				 hf_instance_state_name(cases[i].state),
				 hf_drain_name(cases[i].drain));
		/* Its tasks load as before. */
		assert_int_equal(in->slots.len, 1);
		assert_int_equal(in->slots.items[0].cur->state, HF_TS_RUNNING);
		view = hf_instance_to_json(in);
		if (cases[i].same_view) {
			json_t *old = json_loads(rec, 0, NULL);

			assert_non_null(old);
			if (!json_equal(view, old)) {
				char *a = json_dumps(view, JSON_SORT_KEYS);

				fail_msg("case %zu: the API shows %s", i, a);
			}
			json_decref(old);
		}
		assert_null(json_object_get(view, "state"));
		json_decref(view);
		hf_model_release(&m);
		free(rec);
	}
}

/* New records name the stage; they load back into it. */
static void test_new_records(void **state)
{
	struct hf_model m;
	struct hf_instance *in;
	char *rec = old_record(false, false, 1, false, true, false);
	char *err = NULL;
	json_t *o;
	char *text;

	(void)state;
	assert_int_equal(load(&m, rec, &err), 0);
	in = loaded(&m);
	assert_true(hf_instance_event(in, HF_IEV_SKIP_DRAIN));
	o = hf_codec_instance(in);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
			    "STOPPING");
	assert_string_equal(json_string_value(json_object_get(o, "drain")),
			    "FAILED");
	/* The flags are no longer written. */
	assert_null(json_object_get(o, "replacing"));
	assert_null(json_object_get(o, "replace_deleting"));
	assert_null(json_object_get(o, "decom"));
	assert_null(json_object_get(o, "drain_failed"));
	assert_null(json_object_get(o, "drain_skipped"));
	assert_null(json_object_get(o, "drain_done"));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	hf_model_release(&m);

	assert_int_equal(load(&m, text, &err), 0);
	in = loaded(&m);
	assert_int_equal(in->state, HF_IS_STOPPING);
	assert_int_equal(in->drain, HF_DRAIN_FAILED);
	/* The API: a drain that failed and was skipped, its tasks stopping. */
	o = hf_instance_to_json(in);
	assert_int_equal(json_integer_value(json_object_get(o, "decom")), 2);
	assert_flag(o, "drain_failed", true);
	assert_flag(o, "drain_skipped", true);
	assert_flag(o, "drain_done", false);
	assert_flag(o, "replacing", false);
	json_decref(o);
	hf_model_release(&m);
	free(text);
	free(rec);
}

/* A stage this holdfast does not know fails the load, naming the record. */
static void test_damaged_stage(void **state)
{
	static const char *const bad[] = {
	    "{\"name\":\"p-0\",\"pod\":\"p\",\"state\":\"BOGUS\",\"tasks\":[]}",
	    "{\"name\":\"p-0\",\"pod\":\"p\",\"state\":\"ACTIVE\","
	    "\"drain\":\"MAYBE\",\"tasks\":[]}",
	    "{\"name\":\"p-0\",\"pod\":\"p\",\"state\":1,\"tasks\":[]}",
	};
	static const char *const why[] = {
	    "the store's record " INSTANCE_KEY " is damaged: state 'BOGUS' is "
	    "not an instance state",
	    "the store's record " INSTANCE_KEY " is damaged: drain 'MAYBE' is "
	    "not a drain outcome",
	    "the store's record " INSTANCE_KEY " is damaged: state is not a "
	    "string",
	};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		struct hf_model m;
		char *err = NULL;

		assert_int_equal(load(&m, bad[i], &err), HF_EINVAL);
		assert_non_null(err);
		assert_string_equal(err, why[i]);
		free(err);
		hf_model_release(&m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_event),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_old_records_load),
	    cmocka_unit_test(test_new_records),
	    cmocka_unit_test(test_damaged_stage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
