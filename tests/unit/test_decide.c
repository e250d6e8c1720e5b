/*
 * test_decide.c - the scheduler's rules (plan/decide.h) on hand-built
 * models: recovery with backoff, a serial and a canary plan, scale-in
 * with a drain, replace, node loss, a pod restart, an essential task's
 * failure and a service's removal, checked by the actions they answer
 * with.
 *
 * Pure: this binary links spec/, plan/, model/ and common/ only (the
 * Makefile's PURE_UNITS), no store, HTTP, server, agent or threads. Each
 * test sets the model up as an earlier decision, applied, would have
 * left it, then asks the rules what comes next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "plan/decide.h"
#include "task/lifecycle.h"

#define T0 INT64_C(1700000000000) /* a fixed "now" (unix ms) */
#define SEED 42

static const char *spec_text =
    "name: s\n"
    "{{POLICY}}"
    "pods:\n"
    "  app:\n"
    "    count: {{APPS}}\n"
    "    allow-decommission: true\n"
    "    replace:\n"
    "      tasks: [bootstrap]\n"
    "    volume:\n"
    "      path: data\n"
    "      type: ROOT\n"
    "      size: 10\n"
    "    tasks:\n"
    "      server: {goal: RUNNING, cmd: 'sleep 100', cpus: 0.1, essential: true}\n"
    "      sidecar: {goal: RUNNING, cmd: 'sleep 100', cpus: 0.1, essential: false}\n"
    "      bootstrap: {goal: FINISH, cmd: 'true', cpus: 0.1}\n"
    "      decommission: {goal: FINISH, cmd: 'true', cpus: 0.1}\n"
    "  web:\n"
    "    count: 3\n"
    "    tasks:\n"
    "      server: {goal: RUNNING, cmd: 'sleep 100', cpus: 0.1}\n"
    "plans:\n"
    "  deploy:\n"
    "    strategy: serial\n"
    "    phases:\n"
    "      app:\n"
    "        pod: app\n"
    "        strategy: serial\n"
    "        steps: [{default: [[server, sidecar]]}]\n"
    "      web: {pod: web, strategy: canary}\n";

struct world {
	struct hf_model m;
	struct hf_rng rng;
	struct hf_decide_opts opts;
	struct hf_place_cache place;
	struct hf_decide_ctx ctx;
	struct hf_actions a;
	struct hf_service *svc;
	struct hf_node *n1, *n2;
};

/* A world with service "s" (apps instances of app wanted) on two nodes. */
static struct world *world_new(int apps, bool replace_policy)
{
	struct world *w = calloc(1, sizeof(*w));
	struct hf_config *cfg = calloc(1, sizeof(*cfg));
	struct hf_diags d = {0};
	char buf[8];

	assert_non_null(w);
	assert_non_null(cfg);
	hf_rng_seed(&w->rng, SEED);
	w->opts.backoff_base = 2;
	w->opts.backoff_max = 60;
	w->opts.backoff_reset = 300;
	w->opts.node_timeout = 10;
	w->ctx.now = T0;
	w->ctx.rng = &w->rng;
	w->ctx.opts = &w->opts;
	w->ctx.place = &w->place;
	cfg->id = hf_xstrdup("1");
	cfg->text = hf_xstrdup(spec_text);
	cfg->file = hf_xstrdup("s.yml");
	snprintf(buf, sizeof(buf), "%d", apps);
	hf_kvlist_set(&cfg->options, "APPS", buf);
	hf_kvlist_set(&cfg->options, "POLICY",
		      replace_policy ? "replacement-failure-policy:\n"
				       "  permanent-failure-timeout-ms: 60000\n"
				     : "");
	if (hf_model_config_load(cfg, false, &d) != 0) {
		for (size_t i = 0; i < d.len; i++)
			fprintf(stderr, "%d:%d: %s\n", d.items[i].line,
				d.items[i].col, d.items[i].msg);
		fail_msg("the test's spec does not load");
	}
	hf_diags_release(&d);
	w->svc = hf_model_service_add(&w->m, "s");
	*HF_VEC_PUSH(&w->svc->configs) = cfg;
	w->svc->target = hf_xstrdup("1");
	w->svc->next_config = 2;
	for (int i = 0; i < 2; i++) {
		struct hf_node *n = calloc(1, sizeof(*n));

		n->id = hf_xstrdup(i ? "n2" : "n1");
		n->address = hf_xstrdup(i ? "10.0.0.2" : "10.0.0.1");
		n->cpus = 8;
		n->memory_mb = 8192;
		n->port_begin = 10000;
		n->port_end = 10100;
		n->last_seen = T0;
		hf_model_node_add(&w->m, n);
		if (i)
			w->n2 = n;
		else
			w->n1 = n;
	}
	return w;
}

static void world_free(struct world *w)
{
	hf_actions_release(&w->a);
	hf_place_cache_release(&w->place);
	hf_model_release(&w->m);
	free(w);
}

static struct hf_config *cfg_of(struct world *w)
{
	return hf_model_target(w->svc);
}

/* An instance placed on node (NULL: not placed), with its volume. */
static struct hf_instance *instance(struct world *w, const char *pod,
				    int64_t index, const struct hf_node *node)
{
	struct hf_instance *in = hf_model_instance_add(w->svc, pod, index);

	if (node) {
		char *key = hf_model_volume_key(w->svc->name, in->name);

		in->node = hf_xstrdup(node->id);
		hf_model_volume_add(&w->m, key, node->id, HF_VOL_IN_USE);
		free(key);
	}
	return in;
}

/* The slot's current launch, as an applied launch and reports leave it. */
static struct hf_task_rec *launch_rec(struct hf_instance *in, const char *task,
				      enum hf_task_state state, bool ready)
{
	struct hf_task_slot *sl = hf_model_slot(in, task);
	struct hf_task_rec *r = calloc(1, sizeof(*r));

	hf_task_rec_free(sl->cur);
	r->id = hf_xasprintf("%s-%s__%032d", in->name, task, (int)sl->launches);
	r->config_id = hf_xstrdup("1");
	r->run = hf_xstrdup("deploy#1");
	r->state = state;
	r->ready = ready;
	r->healthy = -1;
	r->exit_code = -1;
	r->launched_at = T0 - 10000;
	if (state != HF_TS_STAGING && state != HF_TS_STARTING)
		r->started_at = T0 - 5000;
	if (!hf_task_state_live(state))
		r->finished_at = T0 - 1000;
	sl->cur = r;
	sl->launches++;
	if (strcmp(task, "server") == 0 || strcmp(task, "sidecar") == 0)
		sl->want_running = true;
	return r;
}

/* An instance of app or web whose tasks all run and are ready. */
static struct hf_instance *running(struct world *w, const char *pod,
				   int64_t index, const struct hf_node *node)
{
	struct hf_instance *in = instance(w, pod, index, node);

	launch_rec(in, "server", HF_TS_RUNNING, true);
	if (strcmp(pod, "app") == 0)
		launch_rec(in, "sidecar", HF_TS_RUNNING, true);
	return in;
}

static struct hf_plan_run *run(struct world *w, const char *plan)
{
	struct hf_plan_run *r = HF_VEC_PUSH(&w->svc->runs);

	r->plan = hf_xstrdup(plan);
	r->number = 1;
	r->active = true;
	r->status = HF_STATUS_PENDING;
	r->config_id = hf_xstrdup("1");
	r->started_at = T0 - 60000;
	return r;
}

/* Every unit of the plan runs and recovery, their actions together. */
static void decide_runs(struct world *w)
{
	struct hf_decide_runs *rt = hf_decide_runs_begin(w->svc, cfg_of(w));

	while (hf_decide_runs_next(rt, &w->m, &w->ctx, &w->a))
		;
	hf_decide_runs_end(rt);
}

static bool match(const struct hf_action *x, enum hf_action_kind kind,
		  const char *instance_name, const char *task)
{
	return x->kind == kind &&
	       (!instance_name ||
		(x->instance && strcmp(x->instance, instance_name) == 0)) &&
	       (!task || (x->task && strcmp(x->task, task) == 0));
}

/* How many actions of a kind (on an instance and task, when not NULL). */
static size_t count(const struct world *w, enum hf_action_kind kind,
		    const char *instance_name, const char *task)
{
	size_t n = 0;

	for (size_t i = 0; i < w->a.len; i++)
		n += match(&w->a.items[i], kind, instance_name, task);
	return n;
}

static const struct hf_action *find(const struct world *w,
				    enum hf_action_kind kind,
				    const char *instance_name, const char *task)
{
	for (size_t i = 0; i < w->a.len; i++)
		if (match(&w->a.items[i], kind, instance_name, task))
			return &w->a.items[i];
	fail_msg("no %s action on %s %s", hf_action_kind_name(kind),
		 instance_name ? instance_name : "-", task ? task : "-");
	return NULL;
}

/* The position of the first such action, for order checks. */
static size_t pos(const struct world *w, enum hf_action_kind kind,
		  const char *instance_name, const char *task)
{
	return (size_t)(find(w, kind, instance_name, task) - w->a.items);
}

static const struct hf_action *volume_op(const struct world *w,
					 enum hf_volume_op op)
{
	for (size_t i = 0; i < w->a.len; i++)
		if (w->a.items[i].kind == HF_ACT_VOLUME &&
		    w->a.items[i].u.vol.op == op)
			return &w->a.items[i];
	return NULL;
}

static void report(struct world *w, const char *id, enum hf_task_state st,
		   int exit_code)
{
	struct hf_proto_report rep = {
	    .task_id = (char *)id,
	    .state = st,
	    .has_exit_code = st == HF_TS_EXITED,
	    .exit_code = exit_code,
	    .healthy = -1,
	};

	hf_decide_report(&w->m, "n1", &rep, &w->ctx, &w->a);
}

/* ------------------------------------------------------------------ */

static void test_recovery_with_backoff(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "web", 0, w->n1);
	struct hf_task_slot *sl = hf_model_slot(in, "server");
	struct hf_task_rec *r = sl->cur;
	const struct hf_action *x;
	struct hf_rng twin;
	int64_t delay, until;

	(void)state;
	/* The first failure: counted, relaunched at once (no backoff). */
	report(w, r->id, HF_TS_EXITED, 3);
	x = find(w, HF_ACT_TASK, "web-0", "server");
	assert_int_equal(x->u.tsk.state, HF_TS_FAILED);
	assert_string_equal(x->u.tsk.message, "exited with status 3");
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_true(x->u.slot.set & HF_SLOT_FAILED);
	assert_int_equal(x->u.slot.failures, 1);
	assert_int_equal(x->u.slot.backoff_until, T0);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Applied: recovery relaunches it now, as a restart. */
	r->state = HF_TS_FAILED;
	sl->failures = 1;
	sl->backoff_until = T0;
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 1);
	x = find(w, HF_ACT_LAUNCH, "web-0", "server");
	assert_true(x->u.launch.restart);
	assert_string_equal(x->u.launch.run, "recovery");
	assert_string_equal(x->u.launch.config_id, "1");
	assert_int_equal(strlen(x->u.launch.id), strlen("web-0-server__") + 32);
	assert_memory_equal(x->u.launch.id, "web-0-server__", 14);
	hf_actions_reset(&w->a);

	/*
	 * The third failure in a row waits base * 2 with the jitter the
	 * seeded random source gives: the same draw as a twin of it.
	 */
	r->state = HF_TS_RUNNING;
	sl->failures = 2;
	twin = w->rng;
	report(w, r->id, HF_TS_EXITED, 1);
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_int_equal(x->u.slot.failures, 3);
	delay = (int64_t)(1000 * hf_task_backoff(
				     3, 2, 60,
				     (double)hf_rng_below(&twin, 1000) / 1000.0));
	until = x->u.slot.backoff_until;
	assert_int_equal(until, T0 + delay);
	assert_in_range(delay, 3200, 4000); /* 2 * 2 s, less up to 20% jitter */
	hf_actions_reset(&w->a);

	/* In backoff: nothing relaunches it, and the scheduler wakes then. */
	r->state = HF_TS_FAILED;
	sl->failures = 3;
	sl->backoff_until = until;
	w->ctx.now = until - 1;
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_decide_wake(&w->m, &w->ctx, &w->a);
	assert_int_equal(find(w, HF_ACT_WAKE_AT, NULL, NULL)->u.wake_at, until);
	hf_actions_reset(&w->a);
	w->ctx.now = until;
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "web-0", "server"), 1);
	hf_actions_reset(&w->a);

	/* Up for longer than backoff-reset: its failures are forgotten. */
	r->state = HF_TS_RUNNING;
	r->started_at = T0;
	w->ctx.now = T0 + 300 * 1000;
	hf_decide_backoff_reset(&w->m, w->svc, &w->ctx, &w->a);
	assert_int_equal(w->a.len, 0);
	w->ctx.now = T0 + 300 * 1000 + 1;
	hf_decide_backoff_reset(&w->m, w->svc, &w->ctx, &w->a);
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_int_equal(x->u.slot.set, HF_SLOT_FAILURES);
	assert_int_equal(x->u.slot.failures, 0);
	world_free(w);
}

static void test_serial_plan(void **state)
{
	struct world *w = world_new(2, false);
	struct hf_instance *in;
	const struct hf_action *x;

	(void)state;
	run(w, "deploy");
	/* The first step only: its instance is made, placed, launched. */
	decide_runs(w);
	find(w, HF_ACT_CREATE_INSTANCE, "app-0", NULL);
	x = find(w, HF_ACT_PLACE, "app-0", NULL);
	assert_string_equal(x->u.place.node, "n1");
	assert_int_equal(x->u.place.volume_size_mb, 10);
	assert_true(pos(w, HF_ACT_PLACE, "app-0", NULL) <
		    pos(w, HF_ACT_LAUNCH, "app-0", "server"));
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "server"), 1);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "sidecar"), 1);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 2);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "app-1", NULL), 0);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "web-0", NULL), 0);
	x = find(w, HF_ACT_RUN, NULL, NULL);
	assert_true(x->u.run.set & HF_RUN_STEP_STARTED);
	hf_actions_reset(&w->a);

	/* Launched but not running yet: the plan waits. */
	in = instance(w, "app", 0, w->n1);
	launch_rec(in, "server", HF_TS_STAGING, false);
	launch_rec(in, "sidecar", HF_TS_STARTING, false);
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Running and ready: the step completes and the next one acts. */
	launch_rec(in, "server", HF_TS_RUNNING, true);
	launch_rec(in, "sidecar", HF_TS_RUNNING, true);
	decide_runs(w);
	x = find(w, HF_ACT_RUN, NULL, NULL);
	assert_true(x->u.run.set & HF_RUN_COMPLETED);
	assert_string_equal(x->u.run.key, "app/app-0:[server, sidecar]");
	find(w, HF_ACT_CREATE_INSTANCE, "app-1", NULL);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-1", NULL), 2);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", NULL), 0);
	/* The web phase waits for the app phase (a serial plan). */
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "web-0", NULL), 0);
	world_free(w);
}

/* A full node says it has 0 cpus free, whatever the sum's rounding. */
static void test_unplaced_says_what_is_free(void **state)
{
	struct world *w = world_new(1, false);
	const struct hf_action *x = NULL;

	(void)state;
	w->n1->cpus = 0.3; /* 0.1 + 0.1 + 0.1 is 0.30000000000000004 */
	w->n2->decommissioned = true;
	for (int i = 0; i < 3; i++)
		running(w, "web", i, w->n1);
	run(w, "deploy");
	decide_runs(w);
	for (size_t i = 0; i < w->a.len; i++)
		if (match(&w->a.items[i], HF_ACT_INSTANCE, "app-0", NULL) &&
		    (w->a.items[i].u.inst.set & HF_INST_MESSAGE))
			x = &w->a.items[i];
	assert_non_null(x);
	assert_non_null(strstr(x->u.inst.message,
			       "node n1: it has 0 cpus and 8192 MB free"));
	world_free(w);
}

static void test_canary_plan(void **state)
{
	struct world *w = world_new(2, false);
	struct hf_plan_run *r;

	(void)state;
	r = run(w, "deploy");
	running(w, "app", 0, w->n1);
	running(w, "app", 1, w->n2);
	hf_strlist_push(&r->completed, "app/app-0:[server, sidecar]");
	hf_strlist_push(&r->completed, "app/app-1:[server, sidecar]");
	/* A canary phase waits for a continue before its first step. */
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	/* One continue: web-0, and only web-0. */
	hf_kvlist_set(&r->continues, "web", "1");
	decide_runs(w);
	find(w, HF_ACT_CREATE_INSTANCE, "web-0", NULL);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "web-0", "server"), 1);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "web-1", NULL), 0);
	hf_actions_reset(&w->a);
	/* web-0 ready: web-1 still waits for its own continue. */
	running(w, "web", 0, w->n1);
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "web-1", NULL), 0);
	hf_actions_reset(&w->a);
	hf_kvlist_set(&r->continues, "web", "2");
	decide_runs(w);
	find(w, HF_ACT_CREATE_INSTANCE, "web-1", NULL);
	assert_int_equal(count(w, HF_ACT_CREATE_INSTANCE, "web-2", NULL), 0);
	world_free(w);
}

static void test_scale_in_with_drain(void **state)
{
	/* The spec wants one app; app-1 runs and must go. */
	struct world *w = world_new(1, false);
	struct hf_instance *in;
	const struct hf_action *x;

	(void)state;
	running(w, "app", 0, w->n1);
	in = running(w, "app", 1, w->n2);
	/* 1. Drain first: the decommission task, the others still run. */
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	x = find(w, HF_ACT_INSTANCE, "app-1", NULL);
	assert_true(x->u.inst.set & HF_INST_EVENT);
	assert_int_equal(x->u.inst.event, HF_IEV_DECOMMISSION);
	x = find(w, HF_ACT_LAUNCH, "app-1", "decommission");
	assert_string_equal(x->u.launch.run, "decommission");
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_REMOVE_INSTANCE, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_INSTANCE, "app-0", NULL), 0);
	hf_actions_reset(&w->a);

	/* Draining: nothing else happens meanwhile. */
	in->state = HF_IS_DRAINING;
	launch_rec(in, "decommission", HF_TS_RUNNING, false);
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* 2. Drained: its tasks are stopped. */
	launch_rec(in, "decommission", HF_TS_FINISHED, false);
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	x = find(w, HF_ACT_INSTANCE, "app-1", NULL);
	assert_int_equal(x->u.inst.event, HF_IEV_DRAINED);
	assert_int_equal(count(w, HF_ACT_KILL, "app-1", "server"), 1);
	assert_int_equal(count(w, HF_ACT_KILL, "app-1", "sidecar"), 1);
	assert_int_equal(count(w, HF_ACT_KILL, "app-0", NULL), 0);
	assert_int_equal(count(w, HF_ACT_REMOVE_INSTANCE, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* 3. Stopped: its volume is deleted, then the record goes. */
	in->state = HF_IS_STOPPING;
	in->drain = HF_DRAIN_DONE;
	launch_rec(in, "server", HF_TS_KILLED, false)->kill = true;
	launch_rec(in, "sidecar", HF_TS_KILLED, false)->kill = true;
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	x = volume_op(w, HF_VOLOP_DELETE);
	assert_non_null(x);
	assert_string_equal(x->u.vol.key, "s/app-1");
	assert_string_equal(x->u.vol.node, "n2");
	assert_true(x < find(w, HF_ACT_REMOVE_INSTANCE, "app-1", NULL));
	assert_int_equal(count(w, HF_ACT_REMOVE_INSTANCE, NULL, NULL), 1);
	world_free(w);
}

static void test_replace(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "app", 0, w->n1);
	const struct hf_action *x;
	struct hf_volume *v;

	(void)state;
	in->state = HF_IS_REPLACING;
	/* Its tasks are stopped first. */
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, "app-0", NULL), 2);
	assert_false(find(w, HF_ACT_KILL, "app-0", "server")->u.kill.restart);
	assert_int_equal(count(w, HF_ACT_UNPLACE, NULL, NULL), 0);
	assert_null(volume_op(w, HF_VOLOP_DELETE));
	hf_actions_reset(&w->a);

	/* Stopped: its volume is deleted on its node, and it waits. */
	launch_rec(in, "server", HF_TS_KILLED, false)->kill = true;
	launch_rec(in, "sidecar", HF_TS_KILLED, false)->kill = true;
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	x = volume_op(w, HF_VOLOP_DELETE);
	assert_non_null(x);
	assert_string_equal(x->u.vol.node, "n1");
	x = find(w, HF_ACT_INSTANCE, "app-0", NULL);
	assert_true(x->u.inst.set & HF_INST_REPLACED);
	assert_string_equal(x->u.inst.replaced_node, "n1");
	assert_string_equal(x->u.inst.replaced_address, "10.0.0.1");
	assert_true(x->u.inst.replace_pending); /* the pod has replace tasks */
	assert_int_equal(count(w, HF_ACT_UNPLACE, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Until the agent says the volume is gone, nothing more. */
	in->state = HF_IS_REPLACE_DELETING;
	in->replace_pending = true;
	v = hf_model_volume_find(&w->m, "s/app-0", "n1", HF_VOL_IN_USE);
	assert_non_null(v);
	v->state = HF_VOL_DELETING;
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_UNPLACE, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Deleted: it forgets node, ports and launches; deploy runs again. */
	hf_model_volume_remove(&w->m, v);
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	find(w, HF_ACT_UNPLACE, "app-0", NULL);
	x = find(w, HF_ACT_SLOT, "app-0", "server");
	assert_true(x->u.slot.set & HF_SLOT_FORGET);
	assert_false(x->u.slot.want_running);
	x = find(w, HF_ACT_START_PLAN, NULL, NULL);
	assert_string_equal(x->u.start.plan, "deploy");
	hf_actions_reset(&w->a);

	/* Launched afresh: placed, and its replace tasks run first. */
	free(in->node);
	in->node = NULL;
	in->state = HF_IS_ACTIVE;
	for (size_t k = 0; k < in->slots.len; k++) {
		hf_task_rec_free(in->slots.items[k].cur);
		in->slots.items[k].cur = NULL;
		in->slots.items[k].want_running = false;
	}
	run(w, "deploy");
	decide_runs(w);
	find(w, HF_ACT_PLACE, "app-0", NULL);
	x = find(w, HF_ACT_LAUNCH, "app-0", "bootstrap");
	assert_string_equal(x->u.launch.run, "replace");
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "server"), 0);
	hf_actions_reset(&w->a);
	/* The replace task finished: the step's own tasks launch. */
	in->node = hf_xstrdup("n2");
	launch_rec(in, "bootstrap", HF_TS_FINISHED, false);
	decide_runs(w);
	x = find(w, HF_ACT_INSTANCE, "app-0", NULL);
	assert_true(x->u.inst.set & HF_INST_REPLACE_PENDING);
	assert_false(x->u.inst.replace_pending);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "server"), 1);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "sidecar"), 1);
	world_free(w);
}

static void test_node_loss(void **state)
{
	struct world *w = world_new(1, true);
	struct world *plain = world_new(1, false);
	struct hf_instance *in = running(w, "app", 0, w->n1);
	struct hf_instance *pin = running(plain, "app", 0, plain->n1);
	const struct hf_action *x;

	(void)state;
	/* The node goes silent: its instance waits (its volume is there). */
	w->n1->last_seen = T0 - 11000;
	hf_decide_node_loss(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	x = find(w, HF_ACT_INSTANCE, "app-0", NULL);
	assert_int_equal(x->u.inst.set, HF_INST_UNREACHABLE);
	assert_int_equal(x->u.inst.unreachable_since, T0);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Within the permanent-failure timeout: still waiting. */
	in->unreachable_since = T0 - 60000;
	hf_decide_node_loss(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_int_equal(w->a.len, 0);
	/* Past it: the service opted in, so the instance is replaced. */
	in->unreachable_since = T0 - 60001;
	hf_decide_node_loss(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	x = find(w, HF_ACT_INSTANCE, "app-0", NULL);
	assert_true(x->u.inst.set & HF_INST_EVENT);
	assert_int_equal(x->u.inst.event, HF_IEV_REPLACE);
	hf_actions_reset(&w->a);
	/* Nobody can stop its tasks there: they are LOST, not killed. */
	in->state = HF_IS_REPLACING;
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	x = find(w, HF_ACT_TASK, "app-0", "server");
	assert_int_equal(x->u.tsk.state, HF_TS_LOST);

	/* Without the opt-in, an instance waits for its node for ever. */
	plain->n1->last_seen = T0 - 11000;
	pin->unreachable_since = T0 - 24 * 3600 * 1000;
	hf_decide_node_loss(&plain->m, plain->svc, cfg_of(plain), &plain->ctx,
			    &plain->a);
	assert_int_equal(plain->a.len, 0);
	/* The node comes back: the instance carries on where it is. */
	plain->n1->last_seen = T0;
	hf_decide_node_loss(&plain->m, plain->svc, cfg_of(plain), &plain->ctx,
			    &plain->a);
	x = find(plain, HF_ACT_INSTANCE, "app-0", NULL);
	assert_int_equal(x->u.inst.unreachable_since, 0);
	assert_int_equal(count(plain, HF_ACT_INSTANCE, NULL, NULL), 1);
	world_free(plain);
	world_free(w);
}

static void test_pod_restart(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "app", 0, w->n1);
	const struct hf_action *x;

	(void)state;
	running(w, "web", 0, w->n2);
	hf_decide_pod_restart(&w->m, w->svc, in, "pod restart requested",
			      &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 2);
	x = find(w, HF_ACT_KILL, "app-0", "server");
	assert_true(x->u.kill.restart);
	assert_true(find(w, HF_ACT_KILL, "app-0", "sidecar")->u.kill.restart);
	hf_actions_reset(&w->a);
	/* Stopped: recovery relaunches both on the same node. */
	launch_rec(in, "server", HF_TS_KILLED, false)->kill = true;
	launch_rec(in, "sidecar", HF_TS_KILLED, false)->kill = true;
	hf_model_slot(in, "server")->cur->restart = true;
	hf_model_slot(in, "sidecar")->cur->restart = true;
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 2);
	assert_true(find(w, HF_ACT_LAUNCH, "app-0", "server")->u.launch.restart);
	assert_int_equal(count(w, HF_ACT_PLACE, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	/* A task stopped on purpose (no restart) stays stopped. */
	hf_model_slot(in, "sidecar")->cur->restart = false;
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "sidecar"), 0);
	assert_int_equal(count(w, HF_ACT_LAUNCH, "app-0", "server"), 1);
	world_free(w);
}

static void test_essential_task_failure(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "app", 0, w->n1);
	const char *server = hf_model_slot(in, "server")->cur->id;
	const char *sidecar = hf_model_slot(in, "sidecar")->cur->id;
	const struct hf_action *x;

	(void)state;
	/* The essential task fails: its pod's other task is restarted too. */
	report(w, server, HF_TS_EXITED, 1);
	assert_int_equal(find(w, HF_ACT_TASK, "app-0", "server")->u.tsk.state,
			 HF_TS_FAILED);
	x = find(w, HF_ACT_KILL, "app-0", "sidecar");
	assert_string_equal(x->u.kill.id, sidecar);
	assert_true(x->u.kill.restart);
	x = find(w, HF_ACT_TASK, "app-0", "sidecar");
	assert_string_equal(x->u.tsk.message,
			    "restarted with its pod: essential task server "
			    "failed");
	hf_actions_reset(&w->a);
	/* A non-essential task's failure is its own. */
	report(w, sidecar, HF_TS_EXITED, 1);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	find(w, HF_ACT_SLOT, "app-0", "sidecar");
	hf_actions_reset(&w->a);
	/* A report of a launch that is not current changes nothing. */
	report(w, "app-0-server__ffffffffffffffffffffffffffffffff",
	       HF_TS_EXITED, 1);
	assert_int_equal(w->a.len, 0);
	world_free(w);
}

static void test_service_removal(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "app", 0, w->n1);
	struct hf_instance *web = running(w, "web", 0, w->n2);
	struct hf_volume *old;
	const struct hf_action *x;

	(void)state;
	w->svc->removing = true;
	/* Its tasks are stopped first; nothing else goes yet. */
	hf_decide_removal(&w->m, w->svc, &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, "app-0", NULL), 2);
	assert_int_equal(count(w, HF_ACT_REMOVE_SERVICE, NULL, NULL), 0);
	assert_null(volume_op(w, HF_VOLOP_KEEP));
	hf_actions_reset(&w->a);
	/* Stopped: its volume is kept on its node, then the service goes. */
	launch_rec(in, "server", HF_TS_KILLED, false)->kill = true;
	launch_rec(in, "sidecar", HF_TS_KILLED, false)->kill = true;
	launch_rec(web, "server", HF_TS_KILLED, false)->kill = true;
	hf_decide_removal(&w->m, w->svc, &w->ctx, &w->a);
	x = volume_op(w, HF_VOLOP_KEEP);
	assert_non_null(x);
	assert_string_equal(x->u.vol.key, "s/app-0");
	assert_string_equal(x->u.vol.node, "n1");
	assert_string_equal(x->u.vol.why,
			    "service s was removed with its volumes kept");
	/* web declares no volume: nothing of it is recorded as kept. */
	for (size_t i = 0; i < w->a.len; i++)
		assert_false(w->a.items[i].kind == HF_ACT_VOLUME &&
			     w->a.items[i].u.vol.op == HF_VOLOP_KEEP &&
			     strcmp(w->a.items[i].u.vol.key, "s/web-0") == 0);
	assert_true(x < find(w, HF_ACT_REMOVE_SERVICE, NULL, NULL));
	hf_actions_reset(&w->a);
	/*
	 * With --delete-volumes: deleted instead, and so is a volume kept
	 * from an earlier life of the service on another node.
	 */
	w->svc->delete_volumes = true;
	old = hf_model_volume_add(&w->m, "s/app-1", "n2", HF_VOL_KEPT);
	old->why = hf_xstrdup("scaled in");
	hf_decide_removal(&w->m, w->svc, &w->ctx, &w->a);
	assert_null(volume_op(w, HF_VOLOP_KEEP));
	x = volume_op(w, HF_VOLOP_DELETE);
	assert_non_null(x);
	assert_string_equal(x->u.vol.key, "s/app-0");
	x = volume_op(w, HF_VOLOP_DELETE_KEPT);
	assert_non_null(x);
	assert_string_equal(x->u.vol.key, "s/app-1");
	assert_string_equal(x->u.vol.node, "n2");
	assert_int_equal(count(w, HF_ACT_REMOVE_SERVICE, NULL, NULL), 1);
	world_free(w);
}

/* The INSTANCE action with lifecycle event ev on `name`, or NULL. */
static const struct hf_action *life_act(const struct world *w,
					const char *name,
					enum hf_instance_event ev)
{
	for (size_t i = 0; i < w->a.len; i++) {
		const struct hf_action *x = &w->a.items[i];

		if (match(x, HF_ACT_INSTANCE, name, NULL) &&
		    (x->u.inst.set & HF_INST_EVENT) && x->u.inst.event == ev)
			return x;
	}
	return NULL;
}

/* Applies the INSTANCE events of the list to `in`, as apply.c does. */
static void apply_life(struct world *w, struct hf_instance *in)
{
	for (size_t i = 0; i < w->a.len; i++) {
		const struct hf_action *x = &w->a.items[i];

		if (match(x, HF_ACT_INSTANCE, in->name, NULL) &&
		    (x->u.inst.set & HF_INST_EVENT))
			assert_true(hf_instance_event(in, x->u.inst.event));
	}
}

/* The decommission plan's status of the step of `name`. */
static enum hf_status decommission_step(struct world *w, const char *name,
					char **msg)
{
	struct hf_plan_view v;
	enum hf_status st = HF_STATUS_COMPLETE;

	assert_int_equal(hf_decide_plan_view(w->svc, "decommission", T0, &v),
			 0);
	for (size_t i = 0; i < v.def->phases.items[0].steps.len; i++) {
		const struct hf_plan_step_def *d =
		    &v.def->phases.items[0].steps.items[i];

		if (strncmp(d->name, name, strlen(name)) != 0)
			continue;
		st = v.steps[i].status;
		*msg = v.messages[i] ? hf_xstrdup(v.messages[i]) : NULL;
	}
	hf_plan_view_release(&v);
	return st;
}

static void test_drain_failed_then_skipped(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in;
	struct hf_task_slot *dsl;
	const struct hf_action *x;
	char *msg = NULL;

	(void)state;
	running(w, "app", 0, w->n1);
	in = running(w, "app", 1, w->n2);
	in->state = HF_IS_DRAINING;
	launch_rec(in, "decommission", HF_TS_FAILED, false);
	dsl = hf_model_slot(in, "decommission");
	dsl->failures = 3;
	/* The drain failed too often: it waits for the operator. */
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_non_null(life_act(w, "app-1", HF_IEV_DRAIN_FAILED));
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	apply_life(w, in);
	assert_int_equal(in->state, HF_IS_DRAIN_FAILED);
	hf_actions_reset(&w->a);
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_int_equal(w->a.len, 0);
	assert_int_equal(decommission_step(w, "app-1", &msg), HF_STATUS_ERROR);
	assert_string_equal(msg, "the drain failed; volumes are kept "
				 "(force-complete this step to remove the "
				 "instance anyway)");
	free(msg);
	msg = NULL;

	/* A skip asked of an instance not being scaled in does nothing. */
	hf_decide_skip_drain(w->svc, hf_model_instance(w->svc, "app-0"),
			     &w->a);
	assert_int_equal(w->a.len, 0);
	/* Force-completed: its tasks stop, its volume is kept. */
	hf_decide_skip_drain(w->svc, in, &w->a);
	assert_non_null(life_act(w, "app-1", HF_IEV_SKIP_DRAIN));
	apply_life(w, in);
	assert_int_equal(in->state, HF_IS_STOPPING);
	assert_int_equal(in->drain, HF_DRAIN_FAILED);
	hf_actions_reset(&w->a);
	/* Its step still says the drain failed until it is gone. */
	assert_int_equal(decommission_step(w, "app-1", &msg), HF_STATUS_ERROR);
	free(msg);
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, "app-1", NULL), 2);
	assert_int_equal(count(w, HF_ACT_REMOVE_INSTANCE, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	launch_rec(in, "server", HF_TS_KILLED, false)->kill = true;
	launch_rec(in, "sidecar", HF_TS_KILLED, false)->kill = true;
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_null(volume_op(w, HF_VOLOP_DELETE));
	x = volume_op(w, HF_VOLOP_KEEP);
	assert_non_null(x);
	assert_string_equal(x->u.vol.why,
			    "app-1 was decommissioned; its drain did not "
			    "finish");
	find(w, HF_ACT_REMOVE_INSTANCE, "app-1", NULL);
	world_free(w);
}

static void test_scale_in_cancelled(void **state)
{
	/* The spec wants two apps again while app-1 drains. */
	struct world *w = world_new(2, false);
	struct hf_instance *in;
	const struct hf_action *x;

	(void)state;
	running(w, "app", 0, w->n1);
	in = running(w, "app", 1, w->n2);
	in->state = HF_IS_DRAINING;
	launch_rec(in, "decommission", HF_TS_RUNNING, false);
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_non_null(life_act(w, "app-1", HF_IEV_CANCEL));
	x = find(w, HF_ACT_KILL, "app-1", "decommission");
	assert_false(x->u.kill.restart);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 1);
	apply_life(w, in);
	assert_int_equal(in->state, HF_IS_ACTIVE);
	world_free(w);
}

static void test_replace_during_drain(void **state)
{
	struct world *w = world_new(1, true);
	struct hf_instance *in;
	const struct hf_action *x;

	(void)state;
	running(w, "app", 0, w->n1);
	in = running(w, "app", 1, w->n2);
	in->state = HF_IS_DRAINING;
	launch_rec(in, "decommission", HF_TS_RUNNING, false);
	/* Its node is lost past the permanent-failure timeout. */
	w->n2->last_seen = T0 - 120000;
	in->unreachable_since = T0 - 60001;
	hf_decide_node_loss(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_non_null(life_act(w, "app-1", HF_IEV_REPLACE));
	apply_life(w, in);
	assert_int_equal(in->state, HF_IS_REPLACING);
	hf_actions_reset(&w->a);
	/* Scale-in leaves it to the replace. */
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_int_equal(w->a.len, 0);
	/*
	 * Its tasks, the drain too, are LOST with their node; its old
	 * volume's deletion is ordered there, and it is launched afresh
	 * without waiting for a node that is gone.
	 */
	hf_decide_replace(&w->m, w->svc, in, &w->ctx, &w->a);
	x = find(w, HF_ACT_TASK, "app-1", "decommission");
	assert_int_equal(x->u.tsk.state, HF_TS_LOST);
	assert_int_equal(count(w, HF_ACT_TASK, "app-1", NULL), 3);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	assert_non_null(volume_op(w, HF_VOLOP_DELETE));
	assert_true(pos(w, HF_ACT_VOLUME, NULL, NULL) <
		    (size_t)(life_act(w, "app-1", HF_IEV_REPLACED) - w->a.items));
	assert_non_null(life_act(w, "app-1", HF_IEV_OLD_VOLUMES_DELETING));
	find(w, HF_ACT_UNPLACE, "app-1", NULL);
	apply_life(w, in);
	assert_int_equal(in->state, HF_IS_ACTIVE);
	hf_actions_reset(&w->a);
	/* Unplaced and still not wanted: removed without a drain. */
	free(in->node);
	in->node = NULL;
	for (size_t k = 0; k < in->slots.len; k++) {
		hf_task_rec_free(in->slots.items[k].cur);
		in->slots.items[k].cur = NULL;
	}
	hf_decide_decommission(&w->m, w->svc, cfg_of(w), &w->ctx, &w->a);
	assert_true(pos(w, HF_ACT_INSTANCE, "app-1", NULL) <
		    (size_t)(life_act(w, "app-1", HF_IEV_NO_DRAIN) - w->a.items));
	assert_non_null(life_act(w, "app-1", HF_IEV_DECOMMISSION));
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_VOLUME, NULL, NULL), 0);
	find(w, HF_ACT_REMOVE_INSTANCE, "app-1", NULL);
	world_free(w);
}

/* A launch no agent reported yet ends when it is stopped. */
static void test_kill_staging(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = instance(w, "app", 0, w->n1);
	const struct hf_action *x;

	(void)state;
	launch_rec(in, "server", HF_TS_STAGING, false);
	launch_rec(in, "sidecar", HF_TS_RUNNING, true);
	hf_decide_pod_restart(&w->m, w->svc, in, "pod restart requested",
			      &w->ctx, &w->a);
	assert_int_equal(count(w, HF_ACT_KILL, "app-0", NULL), 2);
	assert_true(pos(w, HF_ACT_KILL, "app-0", "server") <
		    pos(w, HF_ACT_TASK, "app-0", "server"));
	x = find(w, HF_ACT_TASK, "app-0", "server");
	assert_int_equal(x->u.tsk.set, HF_TASK_STATE | HF_TASK_FINISHED_AT);
	assert_int_equal(x->u.tsk.state, HF_TS_KILLED);
	assert_int_equal(x->u.tsk.finished_at, T0);
	/* A running one waits for its agent to say it stopped. */
	assert_int_equal(count(w, HF_ACT_TASK, "app-0", "sidecar"), 0);
	world_free(w);
}

/*
 * Which launches may be restarted in place by their node: a RUNNING task
 * whose failure concerns it alone, not paused; with the server's backoff.
 */
static void test_restart_policy(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *app = running(w, "app", 0, w->n1);
	struct hf_instance *web = running(w, "web", 0, w->n2);
	struct hf_proto_restart p;

	(void)state;
	/* The only RUNNING task of its pod: the server's backoff, no max. */
	hf_decide_restart_policy(w->svc, web, hf_model_slot(web, "server"),
				 &w->opts, &p);
	assert_true(p.on);
	assert_true(p.backoff_base == 2 && p.backoff_max == 60);
	assert_true(p.reset_after == 300);
	assert_int_equal(p.max, 0);
	/* An essential task with a RUNNING sibling: its failure is the pod's. */
	hf_decide_restart_policy(w->svc, app, hf_model_slot(app, "server"),
				 &w->opts, &p);
	assert_false(p.on);
	/* A non-essential one restarts alone. */
	hf_decide_restart_policy(w->svc, app, hf_model_slot(app, "sidecar"),
				 &w->opts, &p);
	assert_true(p.on);
	/* FINISH tasks and paused launches are the server's. */
	launch_rec(app, "bootstrap", HF_TS_RUNNING, false);
	hf_decide_restart_policy(w->svc, app, hf_model_slot(app, "bootstrap"),
				 &w->opts, &p);
	assert_false(p.on);
	/* The server's --no-restart-in-place: none at all. */
	w->opts.no_restart_in_place = true;
	hf_decide_restart_policy(w->svc, app, hf_model_slot(app, "sidecar"),
				 &w->opts, &p);
	assert_false(p.on);
	w->opts.no_restart_in_place = false;
	hf_model_slot(web, "server")->cur->paused = true;
	hf_decide_restart_policy(w->svc, web, hf_model_slot(web, "server"),
				 &w->opts, &p);
	assert_false(p.on);
	world_free(w);
}

/* A report of a live launch further on than its record, as the agent sends. */
static void report_in_place(struct world *w, const char *id,
			    enum hf_task_state st, unsigned restarts,
			    bool backoff, int exit_code, int sig)
{
	struct hf_proto_report rep = {
	    .task_id = (char *)id,
	    .state = st,
	    .pid = backoff ? 0 : 4242,
	    .healthy = -1,
	    .ready = st == HF_TS_RUNNING,
	    .restarts = restarts,
	    .backoff = backoff,
	    .restart_at = backoff ? T0 + 2000 : 0,
	    .has_last_exit_code = exit_code >= 0,
	    .last_exit_code = exit_code,
	    .last_signal = sig,
	    .last_exit_at = T0 - 10,
	};

	hf_decide_report(&w->m, "n1", &rep, &w->ctx, &w->a);
}

/* Restarts in place its agent reports: recorded, never relaunched. */
static void test_restart_in_place_reported(void **state)
{
	struct world *w = world_new(1, false);
	struct hf_instance *in = running(w, "web", 0, w->n1);
	struct hf_task_slot *sl = hf_model_slot(in, "server");
	struct hf_task_rec *r = sl->cur;
	const struct hf_action *x;
	size_t events = 0;

	(void)state;
	r->last_exit_code = -1;
	/* Killed by SIGKILL and running again: the same launch, restart #1. */
	report_in_place(w, r->id, HF_TS_RUNNING, 1, false, -1, 9);
	x = find(w, HF_ACT_TASK, "web-0", "server");
	assert_string_equal(x->u.tsk.id, r->id);
	assert_true(x->u.tsk.set & HF_TASK_IN_PLACE);
	assert_int_equal(x->u.tsk.in_place_restarts, 1);
	assert_int_equal(x->u.tsk.last_signal, 9);
	assert_int_equal(x->u.tsk.last_exit_code, -1);
	assert_int_equal(x->u.tsk.last_exit_at, T0 - 10);
	assert_string_equal(x->u.tsk.message,
			    "restarted in place after signal 9 (restart #1)");
	/* Through STARTING to RUNNING again, started now. */
	assert_int_equal(x->u.tsk.state, HF_TS_STARTING);
	assert_int_equal(count(w, HF_ACT_TASK, "web-0", "server"), 2);
	x = &w->a.items[pos(w, HF_ACT_TASK, "web-0", "server") + 1];
	for (; x < w->a.items + w->a.len && x->kind != HF_ACT_TASK; x++)
		;
	assert_int_equal(x->u.tsk.state, HF_TS_RUNNING);
	assert_true(x->u.tsk.set & HF_TASK_STARTED_AT);
	assert_int_equal(x->u.tsk.started_at, T0);
	/* Counted on the slot: a restart and a failure, no relaunch. */
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_true(x->u.slot.set & HF_SLOT_RESTARTS);
	assert_int_equal(x->u.slot.restarts, 1);
	assert_true(x->u.slot.set & HF_SLOT_FAILED);
	assert_int_equal(x->u.slot.failures, 1);
	for (size_t i = 0; i < w->a.len; i++)
		if (w->a.items[i].kind == HF_ACT_EVENT &&
		    strcmp(w->a.items[i].u.event.why,
			   "restarted in place after signal 9, restart #1") ==
			0)
			events++;
	assert_int_equal(events, 1);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	hf_actions_reset(&w->a);

	/* Applied: the same report again, or an older one, changes nothing. */
	r->in_place_restarts = 1;
	r->last_signal = 9;
	r->last_exit_at = T0 - 10;
	r->started_at = T0;
	sl->restarts = 1;
	sl->failures = 1;
	report_in_place(w, r->id, HF_TS_RUNNING, 1, false, -1, 9);
	assert_int_equal(w->a.len, 0);
	report(w, r->id, HF_TS_RUNNING, 0);
	assert_int_equal(w->a.len, 0);

	/* Exit code 3 and a backoff: STARTING, the step waits as DELAYED. */
	report_in_place(w, r->id, HF_TS_STARTING, 1, true, 3, 0);
	x = find(w, HF_ACT_TASK, "web-0", "server");
	assert_int_equal(x->u.tsk.state, HF_TS_STARTING);
	assert_true(x->u.tsk.backoff);
	assert_int_equal(x->u.tsk.restart_at, T0 + 2000);
	assert_string_equal(x->u.tsk.message, "exited with code 3");
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_int_equal(x->u.slot.set & HF_SLOT_RESTARTS, 0);
	assert_int_equal(x->u.slot.failures, 2);
	assert_int_equal(x->u.slot.backoff_until, T0 + 2000);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	r->state = HF_TS_STARTING;
	r->ready = false;
	r->backoff = true;
	r->restart_at = T0 + 2000;
	r->last_exit_code = 3;
	r->last_signal = 0;
	sl->failures = 2;
	sl->backoff_until = T0 + 2000;
	/* Live: neither recovery nor the plan relaunches it. */
	decide_runs(w);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	assert_int_equal(count(w, HF_ACT_KILL, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	{
		/* Its step reads as in a server's backoff: DELAYED. */
		struct hf_plan_view v;
		size_t k = 0;
		bool seen = false;

		run(w, "deploy");
		assert_int_equal(hf_decide_plan_view(w->svc, "deploy", T0, &v),
				 0);
		for (size_t p = 0; p < v.def->phases.len; p++)
			for (size_t i = 0; i < v.def->phases.items[p].steps.len;
			     i++, k++) {
				const struct hf_plan_step_def *st =
				    &v.def->phases.items[p].steps.items[i];

				if (strcmp(st->pod, "web") != 0 || st->index)
					continue;
				assert_int_equal(v.steps[k].status,
						 HF_STATUS_DELAYED);
				seen = true;
			}
		assert_true(seen);
		hf_plan_view_release(&v);
	}
	/* Restarted after the backoff: counted once, the exit already was. */
	report_in_place(w, r->id, HF_TS_RUNNING, 2, false, 3, 0);
	x = find(w, HF_ACT_SLOT, "web-0", "server");
	assert_int_equal(x->u.slot.restarts, 1);
	assert_int_equal(x->u.slot.set & HF_SLOT_FAILED, 0);
	assert_int_equal(count(w, HF_ACT_LAUNCH, NULL, NULL), 0);
	hf_actions_reset(&w->a);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recovery_with_backoff),
	    cmocka_unit_test(test_serial_plan),
	    cmocka_unit_test(test_unplaced_says_what_is_free),
	    cmocka_unit_test(test_canary_plan),
	    cmocka_unit_test(test_scale_in_with_drain),
	    cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_node_loss),
	    cmocka_unit_test(test_pod_restart),
	    cmocka_unit_test(test_essential_task_failure),
	    cmocka_unit_test(test_service_removal),
	    cmocka_unit_test(test_drain_failed_then_skipped),
	    cmocka_unit_test(test_scale_in_cancelled),
	    cmocka_unit_test(test_replace_during_drain),
	    cmocka_unit_test(test_kill_staging),
	    cmocka_unit_test(test_restart_policy),
	    cmocka_unit_test(test_restart_in_place_reported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
