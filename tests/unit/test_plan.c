/*
 * test_plan.c - the plan engine: step observation, aggregation, serial,
 * parallel and canary strategies, interrupts, force-complete, backoff.
 * Plans are built from real specs so the shapes match what the server runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "plan/plan.h"
#include "spec/spec.h"
#include "task/lifecycle.h"

static const char *spec_text =
    "name: t\n"
    "pods:\n"
    "  a:\n"
    "    count: 3\n"
    "    tasks:\n"
    "      server: {goal: RUNNING, cmd: 'sleep 1', cpus: 0.1}\n"
    "  b:\n"
    "    count: 2\n"
    "    tasks:\n"
    "      server: {goal: RUNNING, cmd: 'sleep 1', cpus: 0.1}\n"
    "plans:\n"
    "  deploy:\n"
    "    strategy: {{PLAN}}\n"
    "    phases:\n"
    "      pa: {pod: a, strategy: {{PA}}}\n"
    "      pb: {pod: b, strategy: {{PB}}}\n";

struct fixture {
	struct hf_spec *spec;
	struct hf_plan_defs defs;
	const struct hf_plan_def *def;
	struct hf_step_in in[5];
	struct hf_step_out out[5];
	struct hf_phase_out phases[2];
	bool ph_int[2];
	int cont[2];
	struct hf_plan_overrides ov;
};

static void load(struct fixture *f, const char *plan, const char *pa,
		 const char *pb)
{
	struct hf_kvlist vars = {0};
	struct hf_diags d = {0};
	struct hf_spec_load_opts lo = {.options = &vars};
	int rc;

	memset(f, 0, sizeof(*f));
	hf_kvlist_set(&vars, "PLAN", plan);
	hf_kvlist_set(&vars, "PA", pa);
	hf_kvlist_set(&vars, "PB", pb);
	rc = hf_spec_load_string(spec_text, strlen(spec_text), "t.yml", &lo,
				 &f->spec, &d);
	if (rc)
		hf_diags_print(stderr, &d);
	assert_int_equal(rc, 0);
	hf_diags_release(&d);
	hf_kvlist_release(&vars);
	hf_spec_build_plans(f->spec, &f->defs);
	f->def = hf_plan_defs_find(&f->defs, "deploy");
	assert_non_null(f->def);
	assert_int_equal(f->def->phases.len, 2);
	f->ov.phase_interrupted = f->ph_int;
	f->ov.canary_continues = f->cont;
}

static void unload(struct fixture *f)
{
	hf_plan_defs_release(&f->defs);
	hf_spec_free(f->spec);
}

static enum hf_status eval(struct fixture *f)
{
	return hf_plan_eval(f->def, f->in, &f->ov, f->out, f->phases);
}

static void set_observed(struct fixture *f, size_t i, enum hf_status s)
{
	f->in[i].observed = s;
}

static void test_observe(void **state)
{
	enum hf_task_fact none[] = {HF_FACT_NONE, HF_FACT_NONE};
	enum hf_task_fact done[] = {HF_FACT_DONE, HF_FACT_DONE};
	enum hf_task_fact mixed[] = {HF_FACT_DONE, HF_FACT_RUNNING};
	enum hf_task_fact staged[] = {HF_FACT_STAGED, HF_FACT_NONE};
	enum hf_task_fact starting[] = {HF_FACT_STARTING, HF_FACT_DONE};
	enum hf_task_fact backoff[] = {HF_FACT_BACKOFF, HF_FACT_RUNNING};
	enum hf_task_fact error[] = {HF_FACT_ERROR, HF_FACT_BACKOFF};
	enum hf_task_fact failed[] = {HF_FACT_FAILED};

	(void)state;
	assert_string_equal(hf_status_name(hf_plan_step_observe(none, 2)),
			    "PENDING");
	assert_string_equal(hf_status_name(hf_plan_step_observe(done, 2)),
			    "COMPLETE");
	assert_string_equal(hf_status_name(hf_plan_step_observe(mixed, 2)),
			    "STARTED");
	assert_string_equal(hf_status_name(hf_plan_step_observe(staged, 2)),
			    "PREPARED");
	assert_string_equal(hf_status_name(hf_plan_step_observe(starting, 2)),
			    "STARTING");
	assert_string_equal(hf_status_name(hf_plan_step_observe(backoff, 2)),
			    "DELAYED");
	assert_string_equal(hf_status_name(hf_plan_step_observe(error, 2)),
			    "ERROR");
	assert_string_equal(hf_status_name(hf_plan_step_observe(failed, 1)),
			    "PENDING");
	assert_string_equal(hf_status_name(hf_plan_step_observe(NULL, 0)),
			    "COMPLETE");
}

static void test_serial(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, "serial", "serial", "serial");
	/* Nothing done: only the first step of the first phase acts. */
	assert_string_equal(hf_status_name(eval(&f)), "PENDING");
	assert_true(f.out[0].act);
	for (int i = 1; i < 5; i++)
		assert_false(f.out[i].act);
	/* Step 0 running: still the only one acting, plan in progress. */
	set_observed(&f, 0, HF_STATUS_STARTED);
	assert_string_equal(hf_status_name(eval(&f)), "IN_PROGRESS");
	assert_true(f.out[0].act);
	assert_false(f.out[1].act);
	/* Step 0 done: step 1 acts, phase b still waits for phase a. */
	set_observed(&f, 0, HF_STATUS_COMPLETE);
	eval(&f);
	assert_false(f.out[0].act);
	assert_true(f.out[1].act);
	assert_false(f.out[3].act);
	assert_string_equal(hf_status_name(f.phases[0].status), "IN_PROGRESS");
	assert_string_equal(hf_status_name(f.phases[1].status), "PENDING");
	/* Phase a done: phase b starts. */
	f.in[1].completed = true;
	f.in[2].force_complete = true;
	eval(&f);
	assert_string_equal(hf_status_name(f.phases[0].status), "COMPLETE");
	assert_true(f.out[3].act);
	assert_false(f.out[4].act);
	set_observed(&f, 3, HF_STATUS_COMPLETE);
	set_observed(&f, 4, HF_STATUS_COMPLETE);
	assert_string_equal(hf_status_name(eval(&f)), "COMPLETE");
	unload(&f);
}

static void test_parallel(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, "parallel", "parallel", "serial");
	eval(&f);
	/* Every step of phase a, and the first of phase b, act at once. */
	assert_true(f.out[0].act);
	assert_true(f.out[1].act);
	assert_true(f.out[2].act);
	assert_true(f.out[3].act);
	assert_false(f.out[4].act);
	unload(&f);
}

static void test_canary(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, "serial", "serial-canary", "parallel-canary");
	/* Without a continue the canary waits. */
	assert_string_equal(hf_status_name(eval(&f)), "WAITING");
	assert_false(f.out[0].act);
	assert_string_equal(hf_status_name(f.out[0].status), "WAITING");
	assert_string_equal(hf_status_name(f.phases[0].status), "WAITING");
	/* One continue: only the first step runs. */
	f.cont[0] = 1;
	eval(&f);
	assert_true(f.out[0].act);
	assert_false(f.out[1].act);
	assert_string_equal(hf_status_name(f.out[1].status), "WAITING");
	/* First step done: the rest wait for a second continue. */
	set_observed(&f, 0, HF_STATUS_COMPLETE);
	eval(&f);
	assert_false(f.out[1].act);
	assert_string_equal(hf_status_name(f.phases[0].status), "WAITING");
	f.cont[0] = 2;
	eval(&f);
	assert_true(f.out[1].act);
	assert_false(f.out[2].act); /* serial after the canary */
	set_observed(&f, 1, HF_STATUS_COMPLETE);
	set_observed(&f, 2, HF_STATUS_COMPLETE);
	eval(&f);
	/* Phase b: a parallel canary also waits for its own continues. */
	assert_false(f.out[3].act);
	f.cont[1] = 1;
	eval(&f);
	assert_true(f.out[3].act);
	assert_false(f.out[4].act);
	set_observed(&f, 3, HF_STATUS_COMPLETE);
	f.cont[1] = 2;
	eval(&f);
	assert_true(f.out[4].act);
	unload(&f);
}

static void test_interrupt(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, "serial", "parallel", "serial");
	set_observed(&f, 0, HF_STATUS_STARTING);
	f.ov.interrupted = true;
	assert_string_equal(hf_status_name(eval(&f)), "IN_PROGRESS");
	/* A step under way carries on; new ones wait. */
	assert_true(f.out[0].act);
	assert_false(f.out[1].act);
	assert_string_equal(hf_status_name(f.out[1].status), "WAITING");
	set_observed(&f, 0, HF_STATUS_COMPLETE);
	assert_string_equal(hf_status_name(eval(&f)), "WAITING");
	f.ov.interrupted = false;
	f.ph_int[0] = true;
	eval(&f);
	assert_false(f.out[1].act);
	f.ph_int[0] = false;
	eval(&f);
	assert_true(f.out[1].act);
	unload(&f);
}

static void test_error_and_delay(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, "serial", "serial", "serial");
	set_observed(&f, 0, HF_STATUS_DELAYED);
	assert_string_equal(hf_status_name(eval(&f)), "DELAYED");
	assert_true(f.out[0].act);
	set_observed(&f, 0, HF_STATUS_ERROR);
	assert_string_equal(hf_status_name(eval(&f)), "ERROR");
	assert_false(f.out[0].act);
	assert_false(f.out[1].act);
	unload(&f);
}

static void test_aggregate(void **state)
{
	enum hf_status a[] = {HF_STATUS_COMPLETE, HF_STATUS_PENDING};
	enum hf_status b[] = {HF_STATUS_PENDING, HF_STATUS_PENDING};
	enum hf_status c[] = {HF_STATUS_COMPLETE, HF_STATUS_WAITING};
	enum hf_status d[] = {HF_STATUS_STARTED, HF_STATUS_ERROR};

	(void)state;
	assert_string_equal(hf_status_name(hf_plan_aggregate(a, 2, false)),
			    "IN_PROGRESS");
	assert_string_equal(hf_status_name(hf_plan_aggregate(b, 2, false)),
			    "PENDING");
	assert_string_equal(hf_status_name(hf_plan_aggregate(b, 2, true)),
			    "WAITING");
	assert_string_equal(hf_status_name(hf_plan_aggregate(c, 2, false)),
			    "WAITING");
	assert_string_equal(hf_status_name(hf_plan_aggregate(d, 2, false)),
			    "ERROR");
	assert_string_equal(hf_status_name(hf_plan_aggregate(NULL, 0, false)),
			    "COMPLETE");
}

static void test_backoff(void **state)
{
	(void)state;
	/* The first restart is immediate, then it doubles up to the cap. */
	assert_true(hf_task_backoff(1, 1, 60, 0.5) == 0);
	assert_true(hf_task_backoff(2, 1, 60, 1.0) <= 1.0);
	assert_true(hf_task_backoff(2, 1, 60, 0.0) >= 0.8);
	assert_true(hf_task_backoff(4, 1, 60, 1.0) <= 4.0);
	assert_true(hf_task_backoff(4, 1, 60, 0.0) >= 3.2);
	assert_true(hf_task_backoff(30, 1, 60, 1.0) <= 60.0);
	assert_true(hf_task_backoff(30, 1, 60, 0.0) >= 48.0);
	assert_true(hf_task_backoff(2, 1, 60, 0) == 0.8);
	assert_true(hf_task_backoff(4, 1, 60, 1) == 4);
	assert_true(hf_task_backoff(30, 1, 60, 1) == 60);
}

static void test_status_names(void **state)
{
	enum hf_status s;

	(void)state;
	for (int i = 0; i <= HF_STATUS_IN_PROGRESS; i++) {
		assert_true(hf_status_parse(hf_status_name((enum hf_status)i), &s));
		assert_int_equal(s, i);
	}
	assert_false(hf_status_parse("NOPE", &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_observe),
	    cmocka_unit_test(test_serial),
	    cmocka_unit_test(test_parallel),
	    cmocka_unit_test(test_canary),
	    cmocka_unit_test(test_interrupt),
	    cmocka_unit_test(test_error_and_delay),
	    cmocka_unit_test(test_aggregate),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
