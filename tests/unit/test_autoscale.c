/*
 * test_autoscale.c - issue 17's autoscale policy: the spec block (its
 * defaults, its errors at line:col, the diff's refusal of a count change
 * and its settings change that relaunches nothing), the decision on one
 * sample (thresholds, steps, bounds, target per instance, tolerance), and
 * the metric readers (a command's first number, a JSON path, a Prometheus
 * exposition).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "server/autoscale.h"
#include "spec/spec.h"

#define HEAD                                                                   \
	"name: svc\n"                                                          \
	"pods:\n"                                                              \
	"  worker:\n"                                                          \
	"    count: %s\n"                                                      \
	"    autoscale:\n"                                                     \
	"%s"                                                                   \
	"    tasks:\n"                                                         \
	"      server: {goal: RUNNING, cmd: sleep 9, cpus: 0.1, memory: 32}\n"

static int load(const char *count, const char *policy, struct hf_spec **spec,
		struct hf_diags *d)
{
	struct hf_spec_load_opts lo = {0};
	char *text = hf_xasprintf(HEAD, count, policy);
	int rc;

	memset(d, 0, sizeof(*d));
	*spec = NULL;
	lo.skip_templates = true;
	rc = hf_spec_load_string(text, strlen(text), "svc.yml", &lo, spec, d);
	free(text);
	return rc;
}

/* The policy fails with an error at line:col (0: any column) saying want. */
static void error_at(const char *policy, int line, int col, const char *path,
		     const char *want)
{
	struct hf_spec *spec;
	struct hf_diags d;
	bool found = false;

	assert_int_not_equal(load("1", policy, &spec, &d), 0);
	for (size_t i = 0; i < d.len; i++) {
		const struct hf_diag *g = &d.items[i];

		if (g->level == HF_DIAG_ERROR && g->line == line &&
		    (!col || g->col == col) && !strcmp(g->path, path) &&
		    strstr(g->msg, want))
			found = true;
	}
	if (!found) {
		for (size_t i = 0; i < d.len; i++)
			fprintf(stderr, "  %d:%d %s: %s\n", d.items[i].line,
				d.items[i].col, d.items[i].path, d.items[i].msg);
		fail_msg("no error at %d:%d %s saying '%s'", line, col, path,
			 want);
	}
	hf_diags_release(&d);
	hf_spec_free(spec);
}

static void test_defaults_and_shape(void **state)
{
	struct hf_spec *spec;
	struct hf_diags d;
	const struct hf_spec_autoscale *a;

	(void)state;
	assert_int_equal(load("2",
			      "      max: 10\n"
			      "      metric: {command: echo 7}\n"
			      "      up: {above: 500}\n"
			      "      down: {below: 100}\n",
			      &spec, &d),
			 0);
	a = spec->pods.items[0].autoscale;
	assert_non_null(a);
	assert_int_equal(a->min, 1);
	assert_int_equal(a->max, 10);
	assert_true(a->interval == 15);
	assert_true(a->timeout == 10);
	assert_int_equal(a->samples, 1);
	assert_int_equal(a->source, HF_AS_COMMAND);
	/* The command runs in the pod's first RUNNING task. */
	assert_string_equal(a->task, "server");
	assert_int_equal(a->up_step, 1);
	assert_int_equal(a->down_step, 1);
	assert_true(a->up_cooldown == 0 && a->down_cooldown == 60);
	assert_int_equal(a->error_count, -1);
	/* The autoscaler decommissions: the policy allows it. */
	assert_true(spec->pods.items[0].allow_decommission);
	hf_diags_release(&d);
	hf_spec_free(spec);

	assert_int_equal(load("1",
			      "      min: 0\n"
			      "      max: 4\n"
			      "      interval: 500ms\n"
			      "      samples: 3\n"
			      "      on-error: 2\n"
			      "      dry-run: true\n"
			      "      metric:\n"
			      "        prometheus: {url: \"http://p:9090\", "
			      "query: \"sum(x)\"}\n"
			      "      target: 250\n"
			      "      up: {cooldown: 30s}\n",
			      &spec, &d),
			 0);
	a = spec->pods.items[0].autoscale;
	assert_int_equal(a->min, 0);
	assert_true(a->interval == 0.5 && a->timeout == 1);
	assert_int_equal(a->samples, 3);
	assert_int_equal(a->error_count, 2);
	assert_true(a->dry_run && a->has_target && a->target == 250);
	assert_int_equal(a->source, HF_AS_PROMETHEUS);
	assert_string_equal(a->query, "sum(x)");
	/* A target goes straight to its count unless a step says otherwise. */
	assert_int_equal(a->up_step, 0);
	assert_true(a->up_cooldown == 30);
	hf_diags_release(&d);
	hf_spec_free(spec);
}

static void test_errors_have_positions(void **state)
{
	(void)state;
	/* Line 6 is the policy's first line. */
	error_at("      min: 5\n      max: 2\n      metric: {command: x}\n"
		 "      up: {above: 1}\n",
		 7, 12, "pods.worker.autoscale.max", "less than 'min'");
	error_at("      max: 2\n      metric: {command: x, http: \"http://a\"}\n"
		 "      up: {above: 1}\n",
		 7, 15, "pods.worker.autoscale.metric", "one source");
	error_at("      max: 2\n      metric: {command: x}\n"
		 "      up: {above: 1, stepp: 2}\n",
		 8, 22, "pods.worker.autoscale.up.stepp",
		 "did you mean 'step'?");
	error_at("      max: 2\n      metric: {command: x}\n"
		 "      up: {above: 10}\n      down: {below: 20}\n",
		 9, 21, "pods.worker.autoscale.down.below",
		 "must be less than up.above");
	error_at("      max: 2\n      metric: {command: x}\n",
		 6, 7, "pods.worker.autoscale", "needs a rule");
	error_at("      max: 2\n      metric: {command: x}\n"
		 "      target: 5\n      up: {above: 1}\n",
		 6, 7, "pods.worker.autoscale", "not both");
	error_at("      max: 2\n      metric: {http: \"ftp://a\"}\n"
		 "      target: 5\n",
		 7, 0, "pods.worker.autoscale.metric.http", "http:// or https://");
	error_at("      max: 2\n      interval: 10ms\n"
		 "      metric: {command: x}\n      target: 5\n",
		 7, 17, "pods.worker.autoscale.interval", "at least 100ms");
	error_at("      max: 2\n      on-error: sometimes\n"
		 "      metric: {command: x}\n      target: 5\n",
		 7, 17, "pods.worker.autoscale.on-error", "'hold' or a count");
	error_at("      max: 2\n      metric: {command: x, task: nope}\n"
		 "      target: 5\n",
		 6, 7, "pods.worker.autoscale.metric", "not a task of this pod");
	error_at("      max: 2\n"
		 "      metric: {task-metrics: {port: web, name: q}}\n"
		 "      target: 5\n",
		 6, 7, "pods.worker.autoscale.metric.task-metrics.port",
		 "neither a port");
	error_at("      max: 2\n      metric: {command: x}\n"
		 "      target: 0\n",
		 8, 15, "pods.worker.autoscale.target", "greater than 0");
	error_at("      metric: {command: x}\n      target: 5\n",
		 5, 5, "pods.worker.autoscale.max", "'max' is required");
}

static void test_diff(void **state)
{
	struct hf_spec *a, *b, *c;
	struct hf_diags d;
	struct hf_spec_diff df;
	const char *pol = "      max: 10\n      metric: {command: echo 7}\n"
			  "      up: {above: 500}\n      down: {below: 100}\n";

	(void)state;
	assert_int_equal(load("2", pol, &a, &d), 0);
	hf_diags_release(&d);
	assert_int_equal(load("3", pol, &b, &d), 0);
	hf_diags_release(&d);
	/* The spec's count changed under an active policy: refused. */
	memset(&df, 0, sizeof(df));
	hf_spec_diff(a, b, &df);
	assert_int_equal(df.refusals.len, 1);
	assert_non_null(strstr(df.refusals.items[0], "autoscale policy"));
	hf_spec_diff_release(&df);
	/* The policy changed: a change, nothing relaunched. */
	assert_int_equal(load("2",
			      "      max: 8\n      metric: {command: echo 7}\n"
			      "      up: {above: 500}\n      down: {below: 100}\n",
			      &c, &d),
			 0);
	hf_diags_release(&d);
	memset(&df, 0, sizeof(df));
	hf_spec_diff(a, c, &df);
	assert_int_equal(df.refusals.len, 0);
	assert_int_equal(df.pods.len, 1);
	assert_int_equal(df.pods.items[0].change, HF_POD_CHANGED);
	assert_int_equal(df.pods.items[0].relaunch.len, 0);
	assert_false(hf_spec_diff_is_empty(&df));
	hf_spec_diff_release(&df);
	hf_spec_free(a);
	hf_spec_free(b);
	hf_spec_free(c);
}

static struct hf_spec_autoscale thresholds(void)
{
	struct hf_spec_autoscale a;

	memset(&a, 0, sizeof(a));
	a.min = 1;
	a.max = 10;
	a.has_up = a.has_down = true;
	a.above = 500;
	a.below = 100;
	a.up_step = 1;
	a.down_step = 2;
	return a;
}

static void test_want_thresholds(void **state)
{
	struct hf_spec_autoscale a = thresholds();
	struct hf_as_want w;

	(void)state;
	hf_autoscale_want(&a, 3, 812, &w);
	assert_int_equal(w.dir, HF_AS_UP);
	assert_int_equal(w.to, 4);
	assert_non_null(strstr(w.rule, "812 above 500"));
	/* Equal to a threshold is inside the band. */
	hf_autoscale_want(&a, 3, 500, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	hf_autoscale_want(&a, 3, 100, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	hf_autoscale_want(&a, 3, 99, &w);
	assert_int_equal(w.dir, HF_AS_DOWN);
	assert_int_equal(w.to, 1);
	/* Never past the bounds. */
	hf_autoscale_want(&a, 10, 1e9, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	assert_int_equal(w.to, 10);
	hf_autoscale_want(&a, 2, 0, &w);
	assert_int_equal(w.to, 1);
	hf_autoscale_want(&a, 1, -5, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	/* Only an up rule: low values hold. */
	a.has_down = false;
	hf_autoscale_want(&a, 5, 0, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
}

static void test_want_target(void **state)
{
	struct hf_spec_autoscale a;
	struct hf_as_want w;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.min = 1;
	a.max = 20;
	a.has_target = true;
	a.target = 100;
	a.tolerance = 0.1;
	hf_autoscale_want(&a, 1, 150, &w);
	assert_int_equal(w.to, 2);
	hf_autoscale_want(&a, 2, 1000, &w);
	assert_int_equal(w.to, 10);
	/* Within the tolerance (104 each): holds. */
	hf_autoscale_want(&a, 5, 520, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	hf_autoscale_want(&a, 5, 560, &w);
	assert_int_equal(w.to, 6);
	/* Exactly a multiple: that many. */
	hf_autoscale_want(&a, 1, 300, &w);
	assert_int_equal(w.to, 3);
	hf_autoscale_want(&a, 10, 0, &w);
	assert_int_equal(w.to, 1);
	hf_autoscale_want(&a, 1, 1e12, &w);
	assert_int_equal(w.to, 20);
	/* From zero instances. */
	a.min = 0;
	hf_autoscale_want(&a, 0, 50, &w);
	assert_int_equal(w.to, 1);
	hf_autoscale_want(&a, 0, 0, &w);
	assert_int_equal(w.dir, HF_AS_HOLD);
	/* Steps limit a target's move. */
	a.up_step = 2;
	a.down_step = 1;
	hf_autoscale_want(&a, 1, 1000, &w);
	assert_int_equal(w.to, 3);
	hf_autoscale_want(&a, 8, 0, &w);
	assert_int_equal(w.to, 7);
}

static void test_readers(void **state)
{
	double v = 0;
	char *why = NULL;

	(void)state;
	assert_true(hf_autoscale_first_number("lag 812\n", &v) && v == 812);
	assert_true(hf_autoscale_first_number("  -3.5e2 x", &v) && v == -350);
	assert_true(hf_autoscale_first_number("x1 y 42", &v) && v == 42);
	assert_true(hf_autoscale_first_number(".5", &v) && v == 0.5);
	assert_false(hf_autoscale_first_number("no number", &v));
	assert_false(hf_autoscale_first_number("", &v));
	assert_false(hf_autoscale_first_number(NULL, &v));

	assert_true(hf_autoscale_json_number("{\"a\": {\"b\": [1, {\"c\": 7.5}]}}",
					     "a.b.1.c", &v, &why));
	assert_true(v == 7.5);
	/* Prometheus puts numbers in strings. */
	assert_true(hf_autoscale_json_number("{\"v\": \"12\"}", "v", &v, &why));
	assert_true(v == 12);
	assert_true(hf_autoscale_json_number("  33\n", NULL, &v, &why));
	assert_true(v == 33);
	assert_false(hf_autoscale_json_number("{\"v\": 1}", "w", &v, &why));
	assert_non_null(strstr(why, "no 'w'"));
	free(why);
	assert_false(hf_autoscale_json_number("{\"v\": true}", "v", &v, &why));
	assert_non_null(strstr(why, "not a number"));
	free(why);
	assert_false(hf_autoscale_json_number("{", "v", &v, &why));
	assert_non_null(strstr(why, "not JSON"));
	free(why);
	assert_false(hf_autoscale_json_number("12 apples", NULL, &v, &why));
	free(why);

	assert_true(hf_autoscale_prom_sample(
	    "# HELP q depth\n# TYPE q gauge\nq{shard=\"a}b\"} 3\nq{shard=\"c\"} 4\n"
	    "q_total 100\nq 2.5\n",
	    "q", &v));
	assert_true(v == 9.5);
	assert_false(hf_autoscale_prom_sample("q_total 1\n", "q", &v));
	assert_false(hf_autoscale_prom_sample("", "q", &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_shape),
	    cmocka_unit_test(test_errors_have_positions),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_want_thresholds),
	    cmocka_unit_test(test_want_target),
	    cmocka_unit_test(test_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
