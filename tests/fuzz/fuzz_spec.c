/*
 * fuzz_spec.c - libFuzzer target for the whole spec pipeline: mustache
 * rendering, the YAML tree, parsing, validation, default plans, the JSON
 * model, TASKCFG_ routing and the configuration diff.
 *
 * Input: a spec template. An optional first line "#opts K=V;K2=V2" gives
 * mustache values (values may hold anything but ';' and newline); it is not
 * part of the template. Every input is loaded three ways:
 *
 *   strict  options only, unset variables are errors, templates skipped;
 *   lenient --allow-missing, templates skipped;
 *   server  --allow-missing, no file name, config templates given in memory
 *           (template_files) and caller defaults, as the server loads specs.
 *
 * Each successful load goes through everything a caller does with a spec,
 * and these contracts are checked (abort() on a violation, so libFuzzer
 * reports it as a crash with the input):
 *
 *   - a load returns 0 with a spec and no new error, or an error code with
 *     no spec and at least one error diagnostic;
 *   - a strict load that succeeds means nothing was missing, so the lenient
 *     load succeeds too and yields the same model;
 *   - diagnostics carry a message and a path and no negative position;
 *     with HF_FUZZ_STRICT_POSITIONS=1 in the environment, also a line
 *     inside the template (0 or 1..lines+1). That check is off by default
 *     because two known problems break it: libyaml counts a lone '\r' as a
 *     line break where the line map counts only '\n', and a YAML error at
 *     the end of a spec whose values added lines is reported past the
 *     template's last line (hf_linemap_lookup returns the output line
 *     itself for lines past the map);
 *   - hf_spec_check_supported reports exactly the recorded unsupported uses;
 *   - the deploy plan always exists; a generated one has one phase per pod;
 *     every step names existing tasks of its pod at an index below the
 *     pod's count, never two tasks of one resource set, and is named
 *     "<pod>-<index>:[...]";
 *   - a spec diffed against itself (and against an identical reload) is
 *     empty; against a mutated copy, instance lists match the counts and
 *     a pod added one way is removed the other way.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

#define OPTS_PREFIX "#opts "

static void parse_vars(const char *s, size_t n, struct hf_kvlist *vars)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, eq;
		char *k, *v;

		while (j < n && s[j] != ';')
			j++;
		for (eq = i; eq < j && s[eq] != '='; eq++)
			;
		if (eq < j && eq > i) {
			k = hf_xstrndup(s + i, eq - i);
			v = hf_xstrndup(s + eq + 1, j - eq - 1);
			/* Keys and values with NUL cannot be C strings. */
			if (strlen(k) == eq - i && strlen(v) == j - eq - 1)
				hf_kvlist_set(vars, k, v);
			free(k);
			free(v);
		}
		i = j + 1;
	}
}

static size_t count_lines(const char *s, size_t n)
{
	size_t lines = 1;

	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n')
			lines++;
	return lines;
}

static bool strict_positions;

static void check_diags(const struct hf_diags *d, size_t lines)
{
	size_t errors = 0, warnings = 0;

	for (size_t i = 0; i < d->len; i++) {
		const struct hf_diag *g = &d->items[i];

		if (!g->msg || !*g->msg || !g->path)
			abort();
		if (g->line < 0 || g->col < 0)
			abort();
		if (strict_positions && (size_t)g->line > lines + 1)
			abort();
		if (g->level == HF_DIAG_ERROR)
			errors++;
		else
			warnings++;
	}
	if (errors != d->errors || warnings != d->warnings)
		abort();
}

/* Dumps diagnostics the way the CLI does, to memory. */
static void print_diags(const struct hf_diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *j;
	char *s;

	if (f) {
		hf_diags_print(f, d);
		fclose(f);
	}
	free(buf);
	j = hf_diags_to_json(d);
	s = json_dumps(j, JSON_COMPACT);
	if (!s)
		abort();
	free(s);
	json_decref(j);
}

static int load(const char *tmpl, size_t len, const char *file,
		const struct hf_spec_load_opts *lo, size_t lines,
		struct hf_spec **out)
{
	struct hf_diags diags = {0};
	int rc;

	rc = hf_spec_load_string(tmpl, len, file, lo, out, &diags);
	if (rc == 0) {
		if (!*out || diags.errors)
			abort();
	} else {
		if (*out || diags.errors == 0)
			abort();
	}
	check_diags(&diags, lines);
	print_diags(&diags);
	hf_diags_release(&diags);
	return rc;
}

static bool has_task(const struct hf_spec_pod *pod, const char *name)
{
	return hf_spec_find_task(pod, name) != NULL;
}

static void check_plans(const struct hf_spec *spec)
{
	struct hf_plan_defs defs = {0};
	const struct hf_plan_def *deploy;

	hf_spec_build_plans(spec, &defs);
	deploy = hf_plan_defs_find(&defs, "deploy");
	if (!deploy || deploy->kind != HF_PLAN_DEPLOY)
		abort();
	if (deploy->generated && deploy->phases.len != spec->pods.len)
		abort();
	for (size_t i = 0; i < defs.len; i++) {
		const struct hf_plan_def *p = &defs.items[i];
		json_t *j = hf_plan_def_to_json(p);

		if (!j)
			abort();
		json_decref(j);
		for (size_t k = 0; k < p->phases.len; k++) {
			const struct hf_plan_phase_def *ph = &p->phases.items[k];
			const struct hf_spec_pod *pod =
			    hf_spec_find_pod(spec, ph->pod);

			if (!pod) {
				if (ph->steps.len)
					abort();
				continue;
			}
			for (size_t s = 0; s < ph->steps.len; s++) {
				const struct hf_plan_step_def *st =
				    &ph->steps.items[s];
				char *prefix;

				if (st->index < 0 || st->index >= pod->count ||
				    st->tasks.len == 0 ||
				    strcmp(st->pod, pod->name) != 0)
					abort();
				prefix = hf_xasprintf("%s-%lld:[", pod->name,
						      (long long)st->index);
				if (!hf_str_has_prefix(st->name, prefix))
					abort();
				free(prefix);
				for (size_t t = 0; t < st->tasks.len; t++) {
					const struct hf_spec_task *a =
					    hf_spec_find_task(pod,
							      st->tasks.items[t]);

					if (!has_task(pod, st->tasks.items[t]))
						abort();
					for (size_t u = 0; u < t; u++) {
						const struct hf_spec_task *b =
						    hf_spec_find_task(
							pod, st->tasks.items[u]);

						if (a->resource_set ==
						    b->resource_set)
							abort();
					}
				}
			}
		}
	}
	hf_plan_defs_release(&defs);
	(void)hf_spec_update_plan_name(spec, true);
	if (strcmp(hf_spec_update_plan_name(spec, false),
		   hf_spec_find_plan(spec, "update") ? "update" : "deploy"))
		abort();
}

static void use_spec(const struct hf_spec *spec)
{
	struct hf_diags diags = {0};
	json_t *j;
	char *s;
	size_t n;

	check_plans(spec);

	j = hf_spec_to_json(spec);
	if (!j)
		abort();
	s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		abort();
	free(s);
	json_decref(j);

	n = hf_spec_check_supported(spec, &diags);
	if (n != spec->unsupported.len || diags.errors != n)
		abort();
	print_diags(&diags);
	hf_diags_release(&diags);

	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		for (size_t t = 0; t < pod->tasks.len; t++) {
			const struct hf_spec_task *task = &pod->tasks.items[t];
			struct hf_kvlist env = {0};

			if (task->resource_set >= pod->resource_sets.len)
				abort();
			hf_spec_task_env(spec, pod, task, &env);
			/* The task's own env always wins. */
			for (size_t e = 0; e < task->env.len; e++) {
				const char *v = hf_kvlist_get(
				    &env, task->env.items[e].key);

				if (!v || strcmp(v, task->env.items[e].value))
					abort();
			}
			hf_kvlist_release(&env);
		}
	}
}

static void diff_release(struct hf_spec_diff *d)
{
	json_t *j = hf_spec_diff_to_json(d);
	char *s = json_dumps(j, JSON_COMPACT);

	if (!s)
		abort();
	free(s);
	json_decref(j);
	hf_spec_diff_release(d);
}

static void check_same(const struct hf_spec *a, const struct hf_spec *b)
{
	struct hf_spec_diff d;

	hf_spec_diff(a, b, &d);
	if (!hf_spec_diff_is_empty(&d))
		abort();
	diff_release(&d);
}

static const struct hf_pod_diff *find_pod_diff(const struct hf_spec_diff *d,
					       const char *pod)
{
	for (size_t i = 0; i < d->pods.len; i++)
		if (strcmp(d->pods.items[i].pod, pod) == 0)
			return &d->pods.items[i];
	return NULL;
}

static void check_diff(const struct hf_spec *a, const struct hf_spec *b)
{
	struct hf_spec_diff ab, ba;

	hf_spec_diff(a, b, &ab);
	hf_spec_diff(b, a, &ba);
	for (size_t i = 0; i < ab.pods.len; i++) {
		const struct hf_pod_diff *p = &ab.pods.items[i];
		const struct hf_pod_diff *q = find_pod_diff(&ba, p->pod);
		int64_t grow = p->new_count - p->old_count;

		if (!q)
			abort();
		if (p->change == HF_POD_ADDED && q->change != HF_POD_REMOVED)
			abort();
		if (p->change == HF_POD_REMOVED && q->change != HF_POD_ADDED)
			abort();
		if (p->change == HF_POD_CHANGED || p->change == HF_POD_UNCHANGED) {
			if ((int64_t)p->added.len != (grow > 0 ? grow : 0) ||
			    (int64_t)p->removed.len != (grow < 0 ? -grow : 0))
				abort();
			if ((p->change == HF_POD_CHANGED) != (q->change == HF_POD_CHANGED))
				abort();
		}
	}
	diff_release(&ab);
	diff_release(&ba);
}

/* A copy of the template with its last digit changed (counts, sizes...). */
static char *mutate(const char *s, size_t n)
{
	char *m = hf_xmalloc(n + 1);

	memcpy(m, s, n);
	m[n] = '\0';
	for (size_t i = n; i-- > 0;) {
		if (m[i] >= '0' && m[i] <= '9') {
			m[i] = m[i] == '9' ? '0' : (char)(m[i] + 1);
			break;
		}
	}
	return m;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e = getenv("HF_FUZZ_STRICT_POSITIONS");

	strict_positions = e && strcmp(e, "1") == 0;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *tmpl = s;
	size_t len = size, lines;
	struct hf_kvlist vars = {0}, defaults = {0}, files = {0};
	struct hf_spec *strict = NULL, *lenient = NULL, *server = NULL;
	struct hf_spec *other = NULL;
	int rc_strict, rc_lenient;
	char *m;

	if (size >= strlen(OPTS_PREFIX) &&
	    memcmp(s, OPTS_PREFIX, strlen(OPTS_PREFIX)) == 0) {
		const char *nl = memchr(s, '\n', size);
		size_t head = nl ? (size_t)(nl - s) : size;

		parse_vars(s + strlen(OPTS_PREFIX), head - strlen(OPTS_PREFIX),
			   &vars);
		tmpl = nl ? nl + 1 : s + size;
		len = size - (size_t)(tmpl - s);
	}
	lines = count_lines(tmpl, len);

	struct hf_spec_load_opts lo_strict = {
	    .options = &vars,
	    .skip_templates = true,
	};
	struct hf_spec_load_opts lo_lenient = {
	    .options = &vars,
	    .allow_missing = true,
	    .skip_templates = true,
	};
	/* As the server loads a spec: templates sent with it, no file. */
	hf_kvlist_set(&defaults, "FRAMEWORK_NAME", "fuzz");
	hf_kvlist_set(&defaults, "PORT_API", "8080");
	hf_kvlist_set(&files, "server.conf", "port={{PORT}}\n");
	hf_kvlist_set(&files, "templates/server.conf.mustache",
		      "listen {{PORT_HTTP}}\n");
	struct hf_spec_load_opts lo_server = {
	    .options = &vars,
	    .allow_missing = true,
	    .defaults = &defaults,
	    .template_files = &files,
	};

	rc_strict = load(tmpl, len, "fuzz.yml", &lo_strict, lines, &strict);
	rc_lenient = load(tmpl, len, "fuzz.yml", &lo_lenient, lines, &lenient);
	(void)load(tmpl, len, NULL, &lo_server, lines, &server);

	if (rc_strict == 0) {
		json_t *a, *b;

		/* Nothing was missing, so allow_missing changes nothing. */
		if (rc_lenient != 0)
			abort();
		a = hf_spec_to_json(strict);
		b = hf_spec_to_json(lenient);
		if (!json_equal(a, b))
			abort();
		json_decref(a);
		json_decref(b);
		use_spec(strict);
		check_same(strict, strict);
		check_same(strict, lenient);
	}
	if (lenient) {
		use_spec(lenient);
		check_same(lenient, lenient);
	}
	if (server) {
		use_spec(server);
		check_same(server, server);
	}

	if (lenient) {
		m = mutate(tmpl, len);
		if (load(m, len, "fuzz.yml", &lo_lenient, lines, &other) == 0) {
			use_spec(other);
			check_diff(lenient, other);
		}
		free(m);
	}

	hf_spec_free(strict);
	hf_spec_free(lenient);
	hf_spec_free(server);
	hf_spec_free(other);
	hf_kvlist_release(&vars);
	hf_kvlist_release(&defaults);
	hf_kvlist_release(&files);
	return 0;
}
