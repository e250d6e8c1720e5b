/*
 * test_ops.c - the operations layer (server/ops.h) called as a program
 * calls it: plain C arguments, no HTTP, no JSON, no scheduler thread. A
 * server state on an in-memory store, with its events in a temporary
 * directory, takes deploys, updates, diffs, rollbacks, plan, pod and node
 * operations and removals; each answer is checked by its code, its
 * sentence and what changed in the state, in the store and in the events
 * (a refused operation changes nothing; a store write that fails is an
 * error and its events never go out). What the operations change reaches
 * the records through the applier's actions (server/apply.h).
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
#include "server/apply.h"
#include "server/dr.h"
#include "server/events.h"
#include "server/nodeauth.h"
#include "server/ops.h"
#include "server/sched.h"
#include "server/state.h"

#define SPEC                                                                   \
	"name: t\n"                                                            \
	"pods:\n"                                                              \
	"  p:\n"                                                               \
	"    count: %d\n"                                                      \
	"    tasks:\n"                                                         \
	"      server:\n"                                                      \
	"        goal: RUNNING\n"                                              \
	"        cmd: exec sleep 1000\n"                                       \
	"        cpus: 0.1\n"                                                  \
	"        memory: %d\n"                                                 \
	"        volume: {path: data, type: ROOT, size: %d}\n"                 \
	"plans:\n"                                                             \
	"  deploy:\n"                                                          \
	"    strategy: serial\n"                                               \
	"    phases:\n"                                                        \
	"      p: {strategy: serial, pod: p}\n"

struct fixture {
	struct hf_srv *s;
	char dir[64];
	char *text; /* the spec last made by spec() */
};

static struct hf_ops_spec spec(struct fixture *f, int count, int size,
			       int mem)
{
	free(f->text);
	f->text = hf_xasprintf(SPEC, count, mem, size);
	return (struct hf_ops_spec){.text = f->text, .file = "t.yml"};
}

static int setup(void **state)
{
	struct fixture *f = hf_xcalloc(1, sizeof(*f));
	struct hf_srv *s = hf_xcalloc(1, sizeof(*s));

	strcpy(f->dir, "/tmp/hf-test-ops-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->changed, NULL);
	pthread_cond_init(&s->commit_done, NULL);
	s->opts.node_timeout = 10;
	s->leading = true;
	hf_nodeauth_init(s);
	assert_int_equal(hf_store_open("mem:", &s->store), 0);
	s->events = hf_events_open(f->dir);
	assert_non_null(s->events);
	f->s = s;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct hf_srv *s = f->s;
	char *path = hf_xasprintf("%s/events.jsonl", f->dir);

	hf_state_release(s);
	hf_place_cache_release(&s->place);
	HF_VEC_FREE(&s->batch);
	hf_map_release(&s->batch_index);
	HF_VEC_FREE(&s->held_events);
	free(s->store_error);
	hf_store_close(s->store);
	hf_events_close(s->events);
	hf_nodeauth_release(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	pthread_cond_destroy(&s->commit_done);
	free(s);
	unlink(path);
	free(path);
	rmdir(f->dir);
	free(f->text);
	free(f);
	return 0;
}

/* How many events in events.jsonl have this "after" (and object). */
static int events_with(struct fixture *f, const char *after,
		       const char *object)
{
	char *path = hf_xasprintf("%s/events.jsonl", f->dir);
	char *want = hf_xasprintf("\"after\":\"%s\"", after);
	char *obj = object ? hf_xasprintf("\"object\":\"%s\"", object) : NULL;
	FILE *in = fopen(path, "re");
	char line[4096];
	int n = 0;

	while (in && fgets(line, sizeof(line), in))
		if (strstr(line, want) && (!obj || strstr(line, obj)))
			n++;
	if (in)
		fclose(in);
	free(path);
	free(want);
	free(obj);
	return n;
}

/* Whether the store holds key. */
static bool stored(struct hf_srv *s, const char *key)
{
	char *value = NULL;
	int rc = hf_store_get(s->store, key, &value, NULL, NULL);

	free(value);
	return rc == 0;
}

/* Fails with the sentence when an operation did not return want. */
#define assert_op(expr, want, err)                                             \
	do {                                                                   \
		int rc_ = (expr);                                              \
		if (rc_ != (want))                                             \
			fail_msg("%s: %s (%s), want %s: %s", #expr,            \
				 hf_err_name(rc_), hf_err_msg(rc_),            \
				 hf_err_name(want),                            \
				 (err)->why ? (err)->why : "(no sentence)");   \
	} while (0)

static void deploy_ok(struct fixture *f)
{
	struct hf_ops_deployed out = {0};
	struct hf_ops_err err = {0};
	struct hf_ops_spec sp = spec(f, 1, 10, 32);

	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), 0, &err);
	hf_ops_deployed_release(&out);
	hf_ops_err_release(&err);
}

/* POST /v1/service/t/dr/failback, as the route calls it. */
static int failback(struct fixture *f, char **body)
{
	struct hf_http_req req = {.method = "POST", .body = ""};
	struct hf_http_resp resp = {0};
	int status;

	hf_kvlist_set(&req.params, "svc", "t");
	hf_dr_failback_handler(f->s, &req, &resp);
	status = resp.status;
	*body = hf_xstrndup(resp.body ? resp.body : "", resp.body_len);
	hf_http_resp_release(&resp);
	hf_kvlist_release(&req.params);
	return status;
}

/* Puts /dr/t: replicated to remote b, fenced by it or not. */
static void dr_record(struct fixture *f, bool fenced)
{
	json_t *rec = json_pack("{s:s}", "to", "b");

	if (fenced)
		json_object_set_new(rec, "fenced",
				    json_pack("{s:s, s:I, s:s}", "by", "b",
					      "at", (json_int_t)1, "message",
					      "runs on b now"));
	hf_state_lock(f->s);
	assert_int_equal(hf_state_put_record(f->s, "/dr/t", rec), 0);
	hf_state_unlock(f->s);
	json_decref(rec);
}

/*
 * A failback on the old primary while its fenced copy is still being
 * removed: 503 (the CLI's --wait asks again), where a copy that runs
 * without a fence is a plain 409; nothing changes either way.
 */
static void test_failback_while_the_fenced_copy_stops(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_removed rm = {0};
	struct hf_ops_err err = {0};
	char *body;

	deploy_ok(f);
	dr_record(f, false);
	assert_int_equal(failback(f, &body), 409);
	assert_non_null(strstr(body, "runs here"));
	free(body);

	dr_record(f, true);
	assert_op(hf_ops_remove(f->s, "t", false, &rm, &err), 0, &err);
	hf_ops_removed_release(&rm);
	assert_true(hf_state_service(f->s, "t")->removing);
	assert_int_equal(failback(f, &body), 503);
	assert_non_null(strstr(body, "\"unavailable\""));
	assert_non_null(strstr(body, "still stopping here after the fence"));
	free(body);
	/* Nothing changed: the record keeps its fence, the service its removal. */
	assert_true(stored(f->s, "/dr/t"));
	assert_true(hf_state_service(f->s, "t")->removing);
	hf_ops_err_release(&err);
}

static void test_deploy(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_deployed out = {0};
	struct hf_ops_err err = {0};
	struct hf_ops_spec sp = spec(f, 2, 10, 32);
	struct hf_service *svc;

	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), 0, &err);
	assert_string_equal(out.service, "t");
	assert_string_equal(out.config_id, "1");
	assert_string_equal(out.plan, "deploy");
	assert_int_equal(out.kept.len, 0);
	assert_null(err.why);
	svc = hf_state_service(f->s, "t");
	assert_non_null(svc);
	assert_string_equal(svc->target, "1");
	assert_non_null(hf_state_run(svc, "deploy"));
	assert_true(hf_state_run(svc, "deploy")->active);
	/* Recorded before it returned, and said so once. */
	assert_true(stored(f->s, "/services/t"));
	assert_true(stored(f->s, "/services/t/configs/1"));
	assert_int_equal(events_with(f, "deployed", "t"), 1);
	assert_true(f->s->tick_wanted);
	hf_ops_deployed_release(&out);

	/* Again: refused, nothing changed. */
	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), HF_EEXISTS, &err);
	assert_non_null(strstr(err.why, "service 't' already exists"));
	assert_int_equal(f->s->model.services.len, 1);
	assert_int_equal(events_with(f, "deployed", "t"), 1);
	hf_ops_deployed_release(&out);
	hf_ops_err_release(&err);

	/* A spec that does not load: its diagnostics. */
	sp.text = "name: x\npods: [\n";
	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), HF_ESPEC, &err);
	assert_string_equal(err.why, "the service spec is invalid");
	assert_true(err.diags.len > 0);
	assert_int_equal(f->s->model.services.len, 1);
	hf_ops_err_release(&err);

	hf_ops_err_release(&err);
	hf_ops_deployed_release(&out);
}

static void test_update_diff_rollback(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	struct hf_ops_spec sp;
	struct hf_service *svc;

	deploy_ok(f);
	svc = hf_state_service(f->s, "t");

	/* A diff changes nothing. */
	sp = spec(f, 1, 10, 64);
	assert_op(hf_ops_diff(f->s, "t", &sp, &out, &err), 0, &err);
	assert_false(out.changed);
	assert_string_equal(out.from, "1");
	assert_null(out.to);
	assert_null(out.refused);
	assert_false(hf_spec_diff_is_empty(&out.diff));
	assert_int_equal(svc->configs.len, 1);
	hf_ops_change_release(&out);

	/* The update makes configuration 2 the target. */
	assert_op(hf_ops_update(f->s, "t", &sp, &out, &err), 0, &err);
	assert_true(out.changed);
	assert_string_equal(out.from, "1");
	assert_string_equal(out.to, "2");
	assert_string_equal(svc->target, "2");
	assert_true(stored(f->s, "/services/t/configs/2"));
	assert_int_equal(events_with(f, "2", "t"), 1);
	hf_ops_change_release(&out);

	/* The same spec again: nothing to do. */
	assert_op(hf_ops_update(f->s, "t", &sp, &out, &err), 0, &err);
	assert_false(out.changed);
	assert_int_equal(svc->configs.len, 2);
	hf_ops_change_release(&out);

	/* A volume cannot change: refused with every reason, as a diff too. */
	sp = spec(f, 1, 20, 64);
	assert_op(hf_ops_update(f->s, "t", &sp, &out, &err), HF_EREFUSED,
		  &err);
	assert_non_null(strstr(err.why, "the change is refused: "));
	assert_non_null(strstr(err.why, "size cannot change"));
	assert_string_equal(out.from, "2");
	assert_true(out.diff.refusals.len > 0);
	assert_int_equal(svc->configs.len, 2);
	assert_string_equal(svc->target, "2");
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
	assert_op(hf_ops_diff(f->s, "t", &sp, &out, &err), 0, &err);
	assert_non_null(out.refused);
	assert_non_null(strstr(out.refused, "size cannot change"));
	hf_ops_change_release(&out);

	/* A service's name cannot change: refused before any diff. */
	sp = spec(f, 1, 10, 64);
	{
		char *other = hf_xasprintf("%s", sp.text);

		other[6] = 'u'; /* "name: u" */
		sp.text = other;
		assert_op(hf_ops_update(f->s, "t", &sp, &out, &err),
			  HF_EREFUSED, &err);
		assert_null(out.from);
		assert_non_null(strstr(err.why, "cannot change"));
		free(other);
	}
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
	sp = spec(f, 1, 10, 64);
	assert_op(hf_ops_update(f->s, "nope", &sp, &out, &err), HF_ENOTFOUND,
		  &err);
	assert_string_equal(err.why, "no service named 'nope'");
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);

	/* Rollback: to the previous target, then to what is not there. */
	assert_op(hf_ops_rollback(f->s, "t", NULL, &out, &err), 0, &err);
	assert_true(out.changed);
	assert_string_equal(out.from, "2");
	assert_string_equal(out.to, "1");
	assert_string_equal(svc->target, "1");
	assert_int_equal(events_with(f, "1", "t"), 1);
	hf_ops_change_release(&out);
	assert_op(hf_ops_rollback(f->s, "t", "1", &out, &err), HF_ECONFLICT,
		  &err);
	assert_string_equal(err.why, "configuration 1 is already the target");
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
	assert_op(hf_ops_rollback(f->s, "t", "9", &out, &err), HF_ENOTFOUND,
		  &err);
	assert_string_equal(err.why, "service 't' has no usable configuration '9'");
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);

	/* Grown to 3, a rollback to 1 instance is refused with its diff. */
	sp = spec(f, 3, 10, 32);
	assert_op(hf_ops_update(f->s, "t", &sp, &out, &err), 0, &err);
	assert_string_equal(out.to, "3");
	hf_ops_change_release(&out);
	assert_op(hf_ops_rollback(f->s, "t", "1", &out, &err), HF_EREFUSED,
		  &err);
	assert_non_null(strstr(err.why, "the rollback is refused: "));
	assert_non_null(strstr(err.why, "count cannot decrease"));
	assert_string_equal(out.from, "3");
	assert_false(out.changed);
	assert_string_equal(svc->target, "3");
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
}

/* The name of the first step of the deploy plan's first phase. */
static const char *first_step(struct hf_service *svc)
{
	const struct hf_plan_def *def =
	    hf_plan_defs_find(&hf_state_target(svc)->plans, "deploy");

	return def->phases.items[0].steps.items[0].name;
}

static void test_plans(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_continued cont = {0};
	struct hf_ops_err err = {0};
	struct hf_service *svc;
	struct hf_plan_run *run;
	struct hf_kvlist params = {0};
	bool skipped = true;
	char *key;

	deploy_ok(f);
	svc = hf_state_service(f->s, "t");
	run = hf_state_run(svc, "deploy");

	assert_op(hf_ops_plan_stop(f->s, "t", "nope", &err), HF_ENOTFOUND,
		  &err);
	assert_string_equal(err.why, "service 't' has no plan 'nope'");
	hf_ops_err_release(&err);
	assert_op(hf_ops_plan_interrupt(f->s, "t", "deploy", "nope", &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "plan 'deploy' has no phase 'nope'");
	hf_ops_err_release(&err);

	/* Interrupt, then continue: it says what it let go. */
	assert_op(hf_ops_plan_interrupt(f->s, "t", "deploy", NULL, &err), 0,
		  &err);
	assert_true(run->interrupted);
	assert_int_equal(events_with(f, "interrupt", "deploy"), 1);
	assert_op(hf_ops_plan_continue(f->s, "t", "deploy", NULL, &cont, &err),
		  0, &err);
	assert_false(run->interrupted);
	assert_int_equal(cont.did.len, 1);
	assert_string_equal(cont.did.items[0],
			    "the plan is no longer interrupted");
	assert_true(cont.has_status);
	assert_int_equal(cont.continues_needed, 0);
	hf_ops_continued_release(&cont);
	/* Nothing left to continue: refused, so it does not look like progress. */
	assert_op(hf_ops_plan_continue(f->s, "t", "deploy", NULL, &cont, &err),
		  HF_ECONFLICT, &err);
	assert_non_null(strstr(err.why, "is not interrupted"));
	hf_ops_continued_release(&cont);
	hf_ops_err_release(&err);

	/* Step operations need a phase and a step that exist. */
	assert_op(hf_ops_plan_restart(f->s, "t", "deploy", NULL, NULL, &err),
		  HF_EINVAL, &err);
	hf_ops_err_release(&err);
	assert_op(hf_ops_plan_force_complete(f->s, "t", "deploy", "p", "nope",
					     &skipped, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "phase 'p' has no step 'nope'");
	hf_ops_err_release(&err);
	assert_op(hf_ops_plan_force_complete(f->s, "t", "deploy", "p",
					     first_step(svc), &skipped, &err),
		  0, &err);
	assert_false(skipped);
	key = hf_xasprintf("p/%s", first_step(svc));
	assert_true(hf_strlist_has(&run->force_complete, key));
	assert_op(hf_ops_plan_restart(f->s, "t", "deploy", "p",
				      first_step(svc), &err),
		  0, &err);
	assert_false(hf_strlist_has(&run->force_complete, key));
	free(key);

	/* Start with parameters; stop forgets the progress. */
	hf_kvlist_set(&params, "LEVEL", "3");
	assert_op(hf_ops_plan_start(f->s, "t", "deploy", &params, &err), 0,
		  &err);
	run = hf_state_run(svc, "deploy");
	assert_string_equal(hf_kvlist_get(&run->params, "LEVEL"), "3");
	assert_op(hf_ops_plan_stop(f->s, "t", "deploy", &err), 0, &err);
	assert_false(run->active);
	assert_true(run->interrupted);
	assert_int_equal(events_with(f, "stop", "deploy"), 1);
	hf_kvlist_release(&params);

	/* The decommission plan's force-complete names an instance. */
	assert_op(hf_ops_plan_force_complete(f->s, "t", "decommission", NULL,
					     "p-7:drain", &skipped, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why,
			    "no instance is being decommissioned as 'p-7:drain'");
	assert_false(skipped);
	hf_ops_err_release(&err);
}

static void test_pods_nodes_remove(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_removed rm = {0};
	struct hf_ops_adopted ad = {0};
	struct hf_ops_volumes gone = {0};
	struct hf_strlist tasks = {0};
	struct hf_ops_err err = {0};
	struct hf_service *svc;
	struct hf_instance *in;

	deploy_ok(f);
	svc = hf_state_service(f->s, "t");
	assert_op(hf_ops_pod_restart(f->s, "t", "p-0", &tasks, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "service 't' has no pod 'p-0'");
	hf_ops_err_release(&err);

	/* An instance (as a plan step makes it), paused and resumed. */
	pthread_mutex_lock(&f->s->mu);
	in = hf_state_instance_add(svc, "p", 0);
	hf_state_slot(in, "server");
	pthread_mutex_unlock(&f->s->mu);
	assert_op(hf_ops_pod_pause(f->s, "t", "p-0", &tasks, &err), 0, &err);
	assert_true(in->paused);
	assert_int_equal(tasks.len, 1);
	assert_string_equal(tasks.items[0], "p-0-server");
	assert_true(stored(f->s, "/services/t/instances/p-0"));
	hf_strlist_release(&tasks);
	assert_op(hf_ops_pod_pause(f->s, "t", "p-0", &tasks, &err),
		  HF_ECONFLICT, &err);
	assert_string_equal(err.why, "pod p-0 is already paused");
	hf_strlist_release(&tasks);
	hf_ops_err_release(&err);
	assert_op(hf_ops_pod_resume(f->s, "t", "p-0", &tasks, &err), 0, &err);
	assert_false(in->paused);
	hf_strlist_release(&tasks);
	assert_op(hf_ops_pod_replace(f->s, "t", "p-0", &tasks, &err), 0, &err);
	assert_int_equal(in->state, HF_IS_REPLACING);
	hf_strlist_release(&tasks);
	assert_op(hf_ops_pod_restart(f->s, "t", "p-0", &tasks, &err),
		  HF_ECONFLICT, &err);
	assert_string_equal(err.why, "p-0 is being replaced");
	hf_strlist_release(&tasks);
	hf_ops_err_release(&err);

	/* Nodes this server does not know. */
	assert_op(hf_ops_node_decommission(f->s, "n1", &tasks, &err),
		  HF_ENOTFOUND, &err);
	assert_string_equal(err.why, "no node 'n1'");
	hf_ops_err_release(&err);
	assert_op(hf_ops_node_adopt(f->s, "n1", &ad, &err), HF_ENOTFOUND,
		  &err);
	assert_non_null(strstr(err.why, "is not refused"));
	hf_ops_err_release(&err);
	assert_op(hf_ops_node_reset_identity(f->s, "n1", &err), HF_ENOTFOUND,
		  &err);
	hf_ops_err_release(&err);

	/* Volumes in use are not deleted by a volume delete. */
	assert_op(hf_ops_volume_delete(f->s, "t", NULL, &gone, &err),
		  HF_ECONFLICT, &err);
	assert_non_null(strstr(err.why, "in use by the deployed service"));
	assert_int_equal(gone.len, 0);
	hf_ops_err_release(&err);

	/* Remove: the service is being removed; plan operations wait. */
	assert_op(hf_ops_remove(f->s, "t", true, &rm, &err), 0, &err);
	assert_string_equal(rm.service, "t");
	assert_true(rm.delete_volumes);
	assert_false(rm.already_removed);
	assert_true(svc->removing);
	assert_true(svc->delete_volumes);
	assert_int_equal(events_with(f, "removing", "t"), 1);
	hf_ops_removed_release(&rm);
	assert_op(hf_ops_plan_start(f->s, "t", "deploy", NULL, &err),
		  HF_ECONFLICT, &err);
	assert_string_equal(err.why, "service 't' is being removed");
	hf_ops_err_release(&err);
	assert_op(hf_ops_remove(f->s, "gone", false, &rm, &err), HF_ENOTFOUND,
		  &err);
	assert_string_equal(err.why, "no service named 'gone'");
	hf_ops_removed_release(&rm);
	hf_ops_err_release(&err);
}

/* Whether the store's value of key contains text. */
static bool stored_has(struct hf_srv *s, const char *key, const char *text)
{
	char *value = NULL;
	bool has = hf_store_get(s->store, key, &value, NULL, NULL) == 0 &&
		   strstr(value, text) != NULL;

	free(value);
	return has;
}

/* A loaded config of the fixture's spec, without an id (as ops.c's). */
static struct hf_config *loaded_config(struct fixture *f)
{
	struct hf_config *cfg = hf_xcalloc(1, sizeof(*cfg));
	struct hf_diags diags = {0};
	struct hf_ops_spec sp = spec(f, 1, 10, 32);

	cfg->text = hf_xstrdup(sp.text);
	assert_int_equal(hf_state_config_load(cfg, &diags), 0);
	hf_diags_release(&diags);
	return cfg;
}

static struct hf_action *run_action(struct hf_actions *a, unsigned set,
				    const char *key)
{
	struct hf_action *x = hf_actions_push(a, HF_ACT_RUN, "t", NULL, NULL);

	x->u.run.plan = hf_xstrdup("deploy");
	x->u.run.set = set;
	x->u.run.key = key ? hf_xstrdup(key) : NULL;
	return x;
}

/*
 * What the operations change comes as actions that the applier alone
 * writes (apply.h): a service with its first config, a config, a plan
 * run's operator fields, a service's removal flags, a node's flag. Each
 * record is stored with the batch, and the list's events go out only
 * once the batch is written.
 */
static void test_apply_operations(void **state)
{
	struct fixture *f = *state;
	struct hf_srv *s = f->s;
	struct hf_actions a = {0};
	struct hf_action *x;
	struct hf_service *svc;
	struct hf_plan_run *run;
	struct hf_node *n;

	assert_string_equal(hf_action_kind_name(HF_ACT_ADD_SERVICE),
			    "ADD_SERVICE");
	pthread_mutex_lock(&s->mu);
	hf_state_batch_begin(s);
	x = hf_actions_push(&a, HF_ACT_ADD_SERVICE, "t", NULL, NULL);
	x->u.config.id = hf_xstrdup("1");
	x->u.config.config = loaded_config(f);
	x->u.config.next_config = 2;
	x->u.config.at = 1234;
	x = hf_actions_push(&a, HF_ACT_START_PLAN, "t", NULL, NULL);
	x->u.start.plan = hf_xstrdup("deploy");
	x = hf_actions_push(&a, HF_ACT_EVENT, "t", NULL, NULL);
	x->u.event.who = hf_xstrdup("operator");
	x->u.event.kind = hf_xstrdup("service");
	x->u.event.object = hf_xstrdup("t");
	x->u.event.after = hf_xstrdup("deployed");
	hf_apply(s, &a);
	/* The applier took the config: the list no longer owns it. */
	assert_null(a.items[0].u.config.config);
	hf_actions_reset(&a);
	svc = hf_state_service(s, "t");
	assert_non_null(svc);
	assert_string_equal(svc->target, "1");
	assert_int_equal(svc->next_config, 2);
	assert_int_equal(svc->created, 1234);
	assert_int_equal(svc->configs.len, 1);
	assert_string_equal(svc->configs.items[0]->id, "1");
	assert_non_null(hf_state_run(svc, "deploy"));
	/* Held with the batch: neither stored nor said yet. */
	assert_false(stored(s, "/services/t"));
	assert_int_equal(events_with(f, "deployed", "t"), 0);
	hf_state_batch_end(s);
	assert_true(stored(s, "/services/t/configs/1"));
	assert_true(stored(s, "/services/t"));
	assert_true(stored(s, "/services/t/runs/deploy"));
	assert_int_equal(events_with(f, "deployed", "t"), 1);

	/* A service that exists is not added again; the list frees it. */
	hf_state_batch_begin(s);
	x = hf_actions_push(&a, HF_ACT_ADD_SERVICE, "t", NULL, NULL);
	x->u.config.id = hf_xstrdup("7");
	x->u.config.config = loaded_config(f);
	x->u.config.next_config = 8;
	hf_apply(s, &a);
	assert_non_null(a.items[0].u.config.config);
	hf_actions_reset(&a);
	assert_int_equal(svc->configs.len, 1);
	assert_int_equal(svc->next_config, 2);

	/* A config joins; the target stays. */
	x = hf_actions_push(&a, HF_ACT_ADD_CONFIG, "t", NULL, NULL);
	x->u.config.id = hf_xstrdup("2");
	x->u.config.config = loaded_config(f);
	x->u.config.next_config = 3;
	hf_apply(s, &a);
	hf_actions_reset(&a);
	assert_int_equal(svc->configs.len, 2);
	assert_int_equal(svc->next_config, 3);
	assert_string_equal(svc->target, "1");
	assert_non_null(hf_state_config(svc, "2"));

	/* A run's operator fields: lists change once per key. */
	run_action(&a, HF_RUN_INTERRUPT_PHASE, "p");
	run_action(&a, HF_RUN_INTERRUPT_PHASE, "p");
	run_action(&a, HF_RUN_FORCE_COMPLETE, "p/s");
	run_action(&a, HF_RUN_FORCE_COMPLETE, "p/s");
	x = run_action(&a, HF_RUN_CONTINUES, "p");
	x->u.run.value = hf_xstrdup("1");
	x = run_action(&a, HF_RUN_INTERRUPTED | HF_RUN_ACTIVE, NULL);
	x->u.run.interrupted = true;
	x->u.run.active = false;
	hf_apply(s, &a);
	hf_actions_reset(&a);
	run = hf_state_run(svc, "deploy");
	assert_int_equal(run->interrupted_phases.len, 1);
	assert_int_equal(run->force_complete.len, 1);
	assert_string_equal(hf_kvlist_get(&run->continues, "p"), "1");
	assert_true(run->interrupted);
	assert_false(run->active);
	run_action(&a, HF_RUN_RESUME_PHASE, "p");
	run_action(&a, HF_RUN_RESTART_STEP, "p/s");
	hf_apply(s, &a);
	hf_actions_reset(&a);
	assert_int_equal(run->interrupted_phases.len, 0);
	assert_int_equal(run->force_complete.len, 0);

	/* A service's removal flags and a node's flag. */
	n = hf_xcalloc(1, sizeof(*n));
	n->id = hf_xstrdup("n1");
	hf_state_node_add(s, n);
	x = hf_actions_push(&a, HF_ACT_SERVICE, "t", NULL, NULL);
	x->u.svc.set = HF_SVC_REMOVING | HF_SVC_DELETE_VOLUMES;
	x->u.svc.removing = true;
	x->u.svc.delete_volumes = true;
	x = hf_actions_push(&a, HF_ACT_NODE, NULL, NULL, NULL);
	x->u.node.node = hf_xstrdup("n1");
	x->u.node.set = HF_NODE_DECOMMISSIONED;
	x->u.node.decommissioned = true;
	hf_apply(s, &a);
	hf_actions_release(&a);
	assert_true(svc->removing);
	assert_true(svc->delete_volumes);
	assert_true(n->decommissioned);
	hf_state_batch_end(s);
	pthread_mutex_unlock(&s->mu);
	assert_true(stored(s, "/services/t/configs/2"));
	assert_true(stored_has(s, "/services/t", "\"removing\":true"));
	assert_true(stored_has(s, "/services/t/runs/deploy",
			       "\"continues\":{\"p\":\"1\"}"));
	assert_true(stored_has(s, "/nodes/n1", "\"decommissioned\":true"));
}

/*
 * A store write that fails: the operation is an error, its event never
 * goes out, and no operation acts on the memory afterwards.
 */
static void test_store_failure(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_deployed out = {0};
	struct hf_ops_err err = {0};
	struct hf_ops_spec sp = spec(f, 1, 10, 32);

	assert_int_equal(hf_store_set_fault(f->s->store, "writes=1"), 0);
	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), HF_EUNAVAIL, &err);
	assert_non_null(strstr(err.why, "the store cannot be written"));
	assert_true(hf_state_failed(f->s));
	assert_int_equal(events_with(f, "deployed", NULL), 0);
	assert_false(stored(f->s, "/services/t"));
	hf_ops_deployed_release(&out);
	hf_ops_err_release(&err);
	assert_op(hf_ops_plan_stop(f->s, "t", "deploy", &err), HF_EUNAVAIL,
		  &err);
	assert_non_null(strstr(err.why, "the store cannot be written"));
	hf_ops_err_release(&err);
}

/* A server that does not lead acts on nothing. */
static void test_not_leading(void **state)
{
	struct fixture *f = *state;
	struct hf_ops_deployed out = {0};
	struct hf_ops_err err = {0};
	struct hf_ops_spec sp = spec(f, 1, 10, 32);

	f->s->leading = false;
	assert_op(hf_ops_deploy(f->s, &sp, &out, &err), HF_EUNAVAIL, &err);
	assert_string_equal(err.why, "this server does not lead");
	assert_int_equal(f->s->model.services.len, 0);
	assert_false(stored(f->s, "/services/t"));
	hf_ops_deployed_release(&out);
	hf_ops_err_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_deploy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_diff_rollback, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_plans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pods_nodes_remove, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_apply_operations, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_store_failure, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_not_leading, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_failback_while_the_fenced_copy_stops, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
