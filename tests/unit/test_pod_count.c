/*
 * test_pod_count.c - a pod type's count set over its spec's: the config
 * record's counts through the codec (written, read back, old records
 * without them, damaged ones), and the operation (server/ops.h's
 * hf_ops_pod_count) called as a program calls it, on a server state with
 * an in-memory store: what it makes the target, what it refuses, what an
 * update and a rollback do with the count, and what a server loading the
 * store reads back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "model/codec.h"
#include "server/events.h"
#include "server/nodeauth.h"
#include "server/ops.h"
#include "server/sched.h"
#include "server/state.h"

/* Two pod types; `a` may shrink, `b` may not. */
#define SPEC                                                                   \
	"name: t\n"                                                            \
	"pods:\n"                                                              \
	"  a:\n"                                                               \
	"    count: %d\n"                                                      \
	"    allow-decommission: true\n"                                       \
	"    tasks:\n"                                                         \
	"      server:\n"                                                      \
	"        goal: RUNNING\n"                                              \
	"        cmd: exec sleep %d\n"                                         \
	"        cpus: 0.1\n"                                                  \
	"        memory: 32\n"                                                 \
	"  b:\n"                                                               \
	"    count: 1\n"                                                       \
	"    tasks:\n"                                                         \
	"      server: {goal: RUNNING, cmd: exec sleep 9, cpus: 0.1, "         \
	"memory: 32}\n"

static char *spec_text(int count, int sleep)
{
	return hf_xasprintf(SPEC, count, sleep);
}

static const struct hf_spec_pod *pod_of(const struct hf_config *cfg,
					const char *name)
{
	const struct hf_spec_pod *p = hf_spec_find_pod(cfg->spec, name);

	assert_non_null(p);
	return p;
}

/* ------------------------------------------------------------------ */
/* The codec                                                            */

/* Loads one service with one config record given as JSON text. */
static int load_one(struct hf_model *m, const char *config_json, char **err)
{
	const char *svc = "{\"name\": \"t\", \"target\": \"1\", "
			  "\"next_config\": 2}";
	struct hf_codec_rec recs[] = {
	    {"/services/t", svc, strlen(svc)},
	    {"/services/t/configs/1", config_json, strlen(config_json)},
	};

	return hf_codec_load_services(m, recs, 2, NULL, err);
}

static void test_codec_round_trip(void **state)
{
	struct hf_config *cfg = hf_xcalloc(1, sizeof(*cfg));
	struct hf_model m = {0};
	struct hf_diags d = {0};
	struct hf_config *back;
	char *err = NULL, *text;
	json_t *j;

	(void)state;
	cfg->id = hf_xstrdup("1");
	cfg->text = spec_text(1, 5);
	hf_kvlist_set(&cfg->counts, "a", "4");
	assert_int_equal(hf_model_config_load(cfg, false, &d), 0);
	assert_int_equal(pod_of(cfg, "a")->count, 4);
	assert_int_equal(pod_of(cfg, "a")->spec_count, 1);
	assert_int_equal(pod_of(cfg, "b")->count, 1);

	j = hf_codec_config(cfg);
	/* Stored as a number, beside the spec text it is set over. */
	assert_int_equal(json_integer_value(json_object_get(
			     json_object_get(j, "counts"), "a")),
			 4);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_int_equal(load_one(&m, text, &err), 0);
	assert_null(err);
	back = hf_model_target(hf_model_service(&m, "t"));
	assert_non_null(back);
	assert_int_equal(back->counts.len, 1);
	assert_string_equal(hf_kvlist_get(&back->counts, "a"), "4");
	/* The loaded spec and its plans have the count. */
	assert_int_equal(pod_of(back, "a")->count, 4);
	assert_int_equal(pod_of(back, "a")->spec_count, 1);
	assert_int_equal(hf_plan_defs_find(&back->plans, "deploy")
			     ->phases.items[0]
			     .steps.len,
			 4);
	hf_model_release(&m);
	free(text);
	hf_model_config_free(cfg);
	hf_diags_release(&d);
}

/* A record an older holdfast wrote has no counts: the spec's apply. */
static void test_codec_old_record(void **state)
{
	struct hf_model m = {0};
	struct hf_config *back;
	char *err = NULL, *text = spec_text(2, 5);
	json_t *j = json_pack("{s:s, s:s, s:{}, s:{}, s:I}", "id", "1", "text",
			      text, "options", "templates", "created",
			      (json_int_t)1);
	char *rec = json_dumps(j, JSON_COMPACT);

	(void)state;
	assert_int_equal(load_one(&m, rec, &err), 0);
	back = hf_model_target(hf_model_service(&m, "t"));
	assert_int_equal(back->counts.len, 0);
	assert_int_equal(pod_of(back, "a")->count, 2);
	assert_int_equal(pod_of(back, "a")->spec_count, 2);
	hf_model_release(&m);
	json_decref(j);
	free(rec);
	free(text);
}

/* Counts that are not counts: the load fails naming the record. */
static void test_codec_damaged_counts(void **state)
{
	static const char *const bad[] = {"\"x\"", "[]", "{\"a\": -1}",
					  "{\"a\": \"3\"}", "{\"a\": 1.5}",
					  "{\"a\": 100001}"};
	char *text = spec_text(1, 5);

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hf_model m = {0};
		char *err = NULL;
		json_t *j = json_pack("{s:s, s:s}", "id", "1", "text", text);
		char *base = json_dumps(j, JSON_COMPACT);
		/* {"id":..,"text":..} + ,"counts":<bad>} */
		char *rec = hf_xasprintf("%.*s,\"counts\":%s}",
					 (int)strlen(base) - 1, base, bad[i]);

		assert_int_equal(load_one(&m, rec, &err), HF_EINVAL);
		assert_non_null(err);
		assert_non_null(strstr(err, "/services/t/configs/1"));
		assert_non_null(strstr(err, "counts is not an object of pod "
					    "counts"));
		free(err);
		hf_model_release(&m);
		json_decref(j);
		free(base);
		free(rec);
	}
	free(text);
}

/* ------------------------------------------------------------------ */
/* The operation                                                        */

struct fixture {
	struct hf_srv *s;
	char dir[64];
};

static struct hf_srv *srv_new(struct hf_store *store)
{
	struct hf_srv *s = hf_xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->changed, NULL);
	pthread_cond_init(&s->commit_done, NULL);
	s->opts.node_timeout = 10;
	s->leading = true;
	hf_nodeauth_init(s);
	s->store = store;
	return s;
}

static void srv_free(struct hf_srv *s)
{
	hf_state_release(s);
	hf_place_cache_release(&s->place);
	HF_VEC_FREE(&s->batch);
	hf_map_release(&s->batch_index);
	HF_VEC_FREE(&s->held_events);
	free(s->store_error);
	hf_nodeauth_release(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	pthread_cond_destroy(&s->commit_done);
	free(s);
}

static int setup(void **state)
{
	struct fixture *f = hf_xcalloc(1, sizeof(*f));
	struct hf_store *store;

	strcpy(f->dir, "/tmp/hf-test-count-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(hf_store_open("mem:", &store), 0);
	f->s = srv_new(store);
	f->s->events = hf_events_open(f->dir);
	assert_non_null(f->s->events);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *path = hf_xasprintf("%s/events.jsonl", f->dir);

	hf_store_close(f->s->store);
	hf_events_close(f->s->events);
	srv_free(f->s);
	unlink(path);
	free(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

#define assert_op(expr, want, err)                                             \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ != (want))                                             \
			fail_msg("%s: %s, want %s: %s", #expr,                 \
				 hf_err_name(rc_), hf_err_name(want),          \
				 (err)->why ? (err)->why : "(no sentence)");   \
	} while (0)

/* Updates service t to SPEC with count and sleep; returns out.changed. */
static bool update(struct fixture *f, int count, int sleep,
		   struct hf_ops_change *out)
{
	struct hf_ops_err err = {0};
	char *text = spec_text(count, sleep);
	struct hf_ops_spec sp = {.text = text, .file = "t.yml"};

	hf_ops_change_release(out);
	assert_op(hf_ops_update(f->s, "t", &sp, out, &err), 0, &err);
	hf_ops_err_release(&err);
	free(text);
	return out->changed;
}

/* Whether a line of list l contains s. */
static bool says(const struct hf_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->len; i++)
		if (strstr(l->items[i], s))
			return true;
	return false;
}

static const struct hf_pod_diff *diff_of(const struct hf_ops_change *c,
					 const char *pod)
{
	for (size_t i = 0; i < c->diff.pods.len; i++)
		if (strcmp(c->diff.pods.items[i].pod, pod) == 0)
			return &c->diff.pods.items[i];
	fail_msg("no diff of pod %s", pod);
	return NULL;
}

static void test_set_count(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_deployed dep = {0};
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	char *text = spec_text(1, 5);
	struct hf_ops_spec sp = {.text = text, .file = "t.yml"};
	struct hf_service *svc;
	struct hf_config *cfg;

	assert_op(hf_ops_deploy(f->s, &sp, &dep, &err), 0, &err);
	hf_ops_deployed_release(&dep);
	free(text);
	svc = hf_state_service(f->s, "t");

	/* Scale-out: a new target with the count, the instances added. */
	assert_op(hf_ops_pod_count(f->s, "t", "a", 3, &out, &err), 0, &err);
	assert_true(out.changed);
	assert_string_equal(out.from, "1");
	assert_string_equal(out.to, "2");
	assert_string_equal(out.plan, "deploy");
	assert_int_equal(diff_of(&out, "a")->old_count, 1);
	assert_int_equal(diff_of(&out, "a")->new_count, 3);
	assert_int_equal(diff_of(&out, "a")->added.len, 2);
	assert_int_equal(diff_of(&out, "a")->relaunch.len, 0);
	assert_true(says(&out.diff.changes, "pod a: count 3 set over the "
					    "spec's 1"));
	assert_string_equal(svc->target, "2");
	cfg = hf_state_target(svc);
	assert_string_equal(hf_kvlist_get(&cfg->counts, "a"), "3");
	assert_int_equal(pod_of(cfg, "a")->count, 3);
	assert_int_equal(pod_of(cfg, "a")->spec_count, 1);
	assert_string_equal(svc->previous, "1");
	hf_ops_change_release(&out);

	/* The same count: nothing to do. */
	assert_op(hf_ops_pod_count(f->s, "t", "a", 3, &out, &err), 0, &err);
	assert_false(out.changed);
	assert_string_equal(out.from, "2");
	assert_null(out.to);
	assert_int_equal(svc->configs.len, 2);
	hf_ops_change_release(&out);

	/* Refused, each with its sentence; nothing changes. */
	assert_op(hf_ops_pod_count(f->s, "t", "c", 2, &out, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "service 't' has no pod type 'c'");
	hf_ops_err_release(&err);
	hf_ops_change_release(&out);
	assert_op(hf_ops_pod_count(f->s, "u", "a", 2, &out, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "no service named 'u'");
	hf_ops_err_release(&err);
	hf_ops_change_release(&out);
	assert_op(hf_ops_pod_count(f->s, "t", "a", -1, &out, &err), HF_EINVAL,
		  &err);
	assert_non_null(strstr(err.why, "0 to 100000; -1 is not"));
	hf_ops_err_release(&err);
	assert_op(hf_ops_pod_count(f->s, "t", "a", HF_SPEC_POD_COUNT_MAX + 1,
				   &out, &err),
		  HF_EINVAL, &err);
	hf_ops_err_release(&err);
	/* b cannot shrink: the refusal an update gets, with its diff. */
	assert_op(hf_ops_pod_count(f->s, "t", "b", 0, &out, &err), HF_EREFUSED,
		  &err);
	assert_non_null(strstr(err.why, "pod 'b': count cannot decrease from "
					"1 to 0 without 'allow-decommission: "
					"true'"));
	assert_string_equal(out.from, "2");
	assert_false(out.changed);
	hf_ops_err_release(&err);
	hf_ops_change_release(&out);
	assert_int_equal(svc->configs.len, 2);
	assert_string_equal(svc->target, "2");

	/* An update that leaves a's spec count alone keeps the count... */
	assert_true(update(f, 1, 6, &out));
	assert_string_equal(out.to, "3");
	assert_int_equal(diff_of(&out, "a")->new_count, 3);
	assert_int_equal(diff_of(&out, "a")->removed.len, 0);
	assert_int_equal(diff_of(&out, "a")->relaunch.len, 3);
	assert_true(says(&diff_of(&out, "a")->changes, "count 3 kept"));
	cfg = hf_state_target(svc);
	assert_string_equal(hf_kvlist_get(&cfg->counts, "a"), "3");
	assert_int_equal(pod_of(cfg, "a")->count, 3);
	/* ... and one that changes nothing else is no change. */
	assert_false(update(f, 1, 6, &out));
	/* One that changes it wins: the count set is dropped. */
	assert_true(update(f, 2, 6, &out));
	assert_string_equal(out.to, "4");
	assert_int_equal(diff_of(&out, "a")->new_count, 2);
	assert_int_equal(diff_of(&out, "a")->removed.len, 1);
	assert_true(says(&out.diff.changes,
			 "pod a: count 3 set over the spec's 1 dropped: the "
			 "spec's count changed to 2"));
	cfg = hf_state_target(svc);
	assert_int_equal(cfg->counts.len, 0);
	assert_int_equal(pod_of(cfg, "a")->count, 2);
	hf_ops_change_release(&out);

	/* A rollback brings the configuration before back, with its count. */
	assert_op(hf_ops_rollback(f->s, "t", NULL, &out, &err), 0, &err);
	assert_string_equal(out.to, "3");
	cfg = hf_state_target(svc);
	assert_string_equal(hf_kvlist_get(&cfg->counts, "a"), "3");
	assert_int_equal(pod_of(cfg, "a")->count, 3);
	hf_ops_change_release(&out);

	/* Reset hands it back to the spec; a second reset changes nothing. */
	assert_op(hf_ops_pod_count_reset(f->s, "t", "a", &out, &err), 0, &err);
	assert_true(out.changed);
	assert_string_equal(out.to, "5");
	assert_true(says(&out.diff.changes,
			 "pod a: count handed back to the spec (1)"));
	cfg = hf_state_target(svc);
	assert_int_equal(cfg->counts.len, 0);
	assert_int_equal(pod_of(cfg, "a")->count, 1);
	hf_ops_change_release(&out);
	assert_op(hf_ops_pod_count_reset(f->s, "t", "a", &out, &err), 0, &err);
	assert_false(out.changed);
	hf_ops_change_release(&out);

	/* A count equal to the spec's sets none. */
	assert_op(hf_ops_pod_count(f->s, "t", "a", 2, &out, &err), 0, &err);
	assert_string_equal(hf_kvlist_get(&hf_state_target(svc)->counts, "a"),
			    "2");
	hf_ops_change_release(&out);
	assert_op(hf_ops_pod_count(f->s, "t", "a", 1, &out, &err), 0, &err);
	assert_true(out.changed);
	assert_int_equal(hf_state_target(svc)->counts.len, 0);
	hf_ops_change_release(&out);
}

/* A server that loads the store reads the counts back. */
static void test_count_survives_a_reload(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_deployed dep = {0};
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	char *text = spec_text(1, 5), *lerr = NULL;
	struct hf_ops_spec sp = {.text = text, .file = "t.yml"};
	struct hf_srv *again;
	struct hf_config *cfg;

	assert_op(hf_ops_deploy(f->s, &sp, &dep, &err), 0, &err);
	assert_op(hf_ops_pod_count(f->s, "t", "a", 2, &out, &err), 0, &err);
	hf_ops_deployed_release(&dep);
	hf_ops_change_release(&out);
	free(text);

	again = srv_new(f->s->store);
	assert_int_equal(hf_state_load(again, &lerr), 0);
	assert_null(lerr);
	cfg = hf_state_target(hf_state_service(again, "t"));
	assert_string_equal(cfg->id, "2");
	assert_string_equal(hf_kvlist_get(&cfg->counts, "a"), "2");
	assert_int_equal(pod_of(cfg, "a")->count, 2);
	assert_int_equal(pod_of(cfg, "a")->spec_count, 1);
	/* The configuration before has none. */
	cfg = hf_state_config(hf_state_service(again, "t"), "1");
	assert_int_equal(cfg->counts.len, 0);
	assert_int_equal(pod_of(cfg, "a")->count, 1);
	srv_free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_round_trip),
	    cmocka_unit_test(test_codec_old_record),
	    cmocka_unit_test(test_codec_damaged_counts),
	    cmocka_unit_test_setup_teardown(test_set_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_count_survives_a_reload, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
