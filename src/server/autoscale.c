/*
 * autoscale.c - the autoscaler (autoscale.h; docs/autoscaling.md).
 *
 * One thread on the leader. Each pass copies, under the state lock, what
 * every due policy needs (the policy, the count, whether the last change
 * has settled, where its metric is read), then samples the metrics with
 * the lock released (each within the policy's timeout), decides, and
 * acts through hf_ops_pod_autoscale, which takes the lock itself.
 * Policies are evaluated one after another: a slow metric delays the
 * others by at most its timeout.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/err.h"
#include "common/log.h"
#include "server/autoscale.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/ops.h"
#include "server/state.h"
#include "spec/spec.h"

/* The thread looks for due policies this often. */
#define PASS_MS 100
/* The last values kept per policy for `autoscale status`. */
#define HIST 10
/* A metric's answer is read up to this size. */
#define BODY_MAX (1 << 20)

struct sample {
	int64_t at; /* unix ms */
	bool ok;
	double v;
};

/* What the autoscaler remembers of one pod type's policy. */
struct pol {
	char *svc, *pod;
	char *fp; /* the policy's JSON: what it remembers starts over when
		     the policy changes */
	bool seen;
	int64_t next_mono;   /* the next evaluation */
	int64_t last_action; /* unix ms: the last change it made (or, at
				first, when it started watching) */
	unsigned up_run, down_run, err_run;
	uint64_t errors, ups, downs;
	int64_t count, desired;
	bool have_value, dry_run;
	double value;
	char *error;    /* the last sample's error, NULL when it was read */
	char *decision; /* what the last evaluation did */
	int64_t decided_at;
	char *held;     /* the reason of the last hold event (said once) */
	char *next;     /* the next possible action, in words */
	struct sample hist[HIST];
	unsigned nhist;
};

static HF_VEC(struct pol) pols;
static pthread_mutex_t pols_mu = PTHREAD_MUTEX_INITIALIZER;

/* One due evaluation, copied from the state. */
struct job {
	char *svc, *pod, *fp, *cfg;
	struct hf_spec_autoscale *a; /* the target spec's (a copy) */
	int64_t count;
	int64_t started;  /* unix ms: when the evaluation was due and began */
	char *unsettled; /* why the last change is not done; NULL: done */
	bool unplaceable; /* ... only because no node has room for more */
	char *exec_api, *exec_key, *exec_task; /* COMMAND */
	char *no_source;                      /* ... why there is none */
	struct hf_strlist urls;               /* METRICS: one per instance */
};

struct jobs {
	struct job *items;
	size_t len, cap;
};

/* ---- pure helpers ----------------------------------------------------- */

bool hf_autoscale_first_number(const char *text, double *out)
{
	for (const char *p = text; p && *p; p++) {
		char *end;
		double v;

		if (!(isdigit((unsigned char)*p) ||
		      ((*p == '-' || *p == '+' || *p == '.') &&
		       (isdigit((unsigned char)p[1]) ||
			(p[1] == '.' && isdigit((unsigned char)p[2]))))))
			continue;
		/* Not the tail of a word ("x1"), nor of a number. */
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' ||
				 p[-1] == '.'))
			continue;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno || !isfinite(v))
			continue;
		*out = v;
		return true;
	}
	return false;
}

static bool number_of(const json_t *j, double *out)
{
	char *end;

	if (json_is_number(j)) {
		*out = json_number_value(j);
		return isfinite(*out);
	}
	if (!json_is_string(j))
		return false;
	errno = 0;
	*out = strtod(json_string_value(j), &end);
	while (*end == ' ' || *end == '\n')
		end++;
	return end != json_string_value(j) && !*end && !errno &&
	       isfinite(*out);
}

bool hf_autoscale_json_number(const char *text, const char *path,
			      double *out, char **why)
{
	json_error_t je;
	json_t *root, *at;
	char *copy, *save = NULL;
	bool ok;

	*why = NULL;
	if (!path) {
		char *end;

		errno = 0;
		*out = strtod(text, &end);
		while (*end && isspace((unsigned char)*end))
			end++;
		if (end != text && !*end && !errno && isfinite(*out))
			return true;
		*why = hf_xstrdup("the answer is not a number (give the "
				  "metric's path into its JSON)");
		return false;
	}
	root = json_loads(text, JSON_DECODE_ANY, &je);
	if (!root) {
		*why = hf_xasprintf("the answer is not JSON: %s", je.text);
		return false;
	}
	at = root;
	copy = hf_xstrdup(path);
	for (char *seg = strtok_r(copy, ".", &save); seg && at;
	     seg = strtok_r(NULL, ".", &save)) {
		char *end;
		long i = strtol(seg, &end, 10);

		if (json_is_array(at) && !*end && i >= 0)
			at = json_array_get(at, (size_t)i);
		else
			at = json_object_get(at, seg);
	}
	free(copy);
	ok = at && number_of(at, out);
	if (!ok)
		*why = hf_xasprintf(at ? "'%s' in the answer is not a number"
				       : "the answer has no '%s'",
				    path);
	json_decref(root);
	return ok;
}

bool hf_autoscale_prom_sample(const char *text, const char *name,
			      double *out)
{
	size_t n = strlen(name);
	bool found = false;
	double sum = 0;

	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		const char *p;

		if (strncmp(line, name, n) == 0 &&
		    (line[n] == ' ' || line[n] == '{' || line[n] == '\t')) {
			p = line + n;
			if (*p == '{') {
				/* Past the labels (values may hold '}'). */
				bool quoted = false;

				for (p++; *p && *p != '\n'; p++) {
					if (*p == '\\' && quoted && p[1])
						p++;
					else if (*p == '"')
						quoted = !quoted;
					else if (*p == '}' && !quoted)
						break;
				}
				if (*p == '}')
					p++;
			}
			if (*p == ' ' || *p == '\t') {
				char *end;
				double v = strtod(p, &end);

				if (end != p && isfinite(v)) {
					sum += v;
					found = true;
				}
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	if (found)
		*out = sum;
	return found;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void hf_autoscale_want(const struct hf_spec_autoscale *a, int64_t count,
		       double value, struct hf_as_want *out)
{
	int64_t to = count;

	memset(out, 0, sizeof(*out));
	if (a->has_target) {
		double raw = ceil(value / a->target - 1e-9);
		double per = count > 0 ? value / (double)count : INFINITY;
		double off = per / a->target - 1;

		if (raw < 0)
			raw = 0;
		snprintf(out->rule, sizeof(out->rule),
			 "target %g per instance: %g for %lld is %g each", a->target,
			 value, (long long)count, count > 0 ? per : value);
		if (count > 0 && fabs(off) <= a->tolerance) {
			to = count;
		} else {
			to = raw > (double)HF_SPEC_POD_COUNT_MAX
				 ? HF_SPEC_POD_COUNT_MAX
				 : (int64_t)raw;
			if (a->up_step && to > count + a->up_step)
				to = count + a->up_step;
			if (a->down_step && to < count - a->down_step)
				to = count - a->down_step;
		}
	} else if (a->has_up && value > a->above) {
		to = count + a->up_step;
		snprintf(out->rule, sizeof(out->rule), "%g above %g: +%lld",
			 value, a->above, (long long)a->up_step);
	} else if (a->has_down && value < a->below) {
		to = count - a->down_step;
		snprintf(out->rule, sizeof(out->rule), "%g below %g: -%lld",
			 value, a->below, (long long)a->down_step);
	} else {
		snprintf(out->rule, sizeof(out->rule), "%g within the band",
			 value);
	}
	to = clamp(to, a->min, a->max);
	out->to = to;
	out->dir = to > count ? HF_AS_UP : to < count ? HF_AS_DOWN : HF_AS_HOLD;
}

/* ---- the remembered state -------------------------------------------- */

static struct pol *pol_of(const char *svc, const char *pod)
{
	struct pol *p;

	for (size_t i = 0; i < pols.len; i++)
		if (!strcmp(pols.items[i].svc, svc) &&
		    !strcmp(pols.items[i].pod, pod))
			return &pols.items[i];
	p = HF_VEC_PUSH(&pols);
	memset(p, 0, sizeof(*p));
	p->svc = hf_xstrdup(svc);
	p->pod = hf_xstrdup(pod);
	return p;
}

static void pol_reset(struct pol *p, const char *fp)
{
	free(p->fp);
	p->fp = hf_xstrdup(fp);
	p->next_mono = 0;
	p->last_action = hf_now_ms();
	p->up_run = p->down_run = p->err_run = 0;
	free(p->held);
	p->held = NULL;
}

static void pol_release(struct pol *p)
{
	free(p->svc);
	free(p->pod);
	free(p->fp);
	free(p->error);
	free(p->decision);
	free(p->held);
	free(p->next);
}

static void set_str(char **dst, char *v)
{
	free(*dst);
	*dst = v;
}

/* ---- collecting the due policies ------------------------------------- */

static struct hf_spec_autoscale *policy_copy(const struct hf_spec_autoscale *a)
{
	struct hf_spec_autoscale *c = hf_xmalloc(sizeof(*c));

	*c = *a;
	c->command = a->command ? hf_xstrdup(a->command) : NULL;
	c->task = a->task ? hf_xstrdup(a->task) : NULL;
	c->url = a->url ? hf_xstrdup(a->url) : NULL;
	c->json_path = a->json_path ? hf_xstrdup(a->json_path) : NULL;
	c->query = a->query ? hf_xstrdup(a->query) : NULL;
	c->port = a->port ? hf_xstrdup(a->port) : NULL;
	c->path = a->path ? hf_xstrdup(a->path) : NULL;
	c->sample = a->sample ? hf_xstrdup(a->sample) : NULL;
	c->aggregate = a->aggregate ? hf_xstrdup(a->aggregate) : NULL;
	return c;
}

static void job_release(struct job *j)
{
	free(j->svc);
	free(j->pod);
	free(j->fp);
	free(j->cfg);
	hf_spec_autoscale_free(j->a);
	free(j->unsettled);
	free(j->exec_api);
	free(j->exec_key);
	free(j->exec_task);
	free(j->no_source);
	hf_strlist_release(&j->urls);
}

static bool slot_up(const struct hf_task_slot *sl)
{
	return sl->cur && sl->cur->state == HF_TS_RUNNING && !sl->cur->kill;
}

/*
 * Whether the pod type's instances are exactly its count, all ready: NULL,
 * or why not. *unplaceable: the only trouble is instances that cannot be
 * placed (no node has room), and those behind them in the plan.
 */
static char *unsettled(struct hf_service *svc, const char *pod, int64_t count,
		       bool *unplaceable)
{
	char *why = NULL, *stuck = NULL;
	int64_t have = 0;

	*unplaceable = false;
	for (size_t i = 0; i < svc->instances.len && !why; i++) {
		struct hf_instance *in = svc->instances.items[i];

		if (strcmp(in->pod, pod) != 0)
			continue;
		if (in->index >= count || in->state != HF_IS_ACTIVE) {
			why = hf_xasprintf("%s is being %s", in->name,
					   in->index >= count ? "removed"
							      : "replaced");
			break;
		}
		have++;
		if (!in->node && in->message &&
		    strstr(in->message, "cannot be placed")) {
			if (!stuck)
				stuck = hf_xasprintf("%s %s", in->name,
						     in->message);
			continue;
		}
		for (size_t t = 0; t < in->slots.len && !why; t++) {
			const struct hf_task_slot *sl = &in->slots.items[t];

			if (sl->want_running && (!slot_up(sl) || !sl->cur->ready))
				why = hf_xasprintf("%s-%s is not running and "
						   "ready yet",
						   in->name, sl->task);
		}
	}
	if (!why && stuck) {
		*unplaceable = true;
		why = stuck;
		stuck = NULL;
	} else if (!why && have < count) {
		why = hf_xasprintf("%lld of %lld instances exist",
				   (long long)have, (long long)count);
	}
	free(stuck);
	return why;
}

/* Where a COMMAND metric runs, or METRICS are read. Lock held. */
static void sources(struct hf_srv *s, struct hf_service *svc, struct job *j)
{
	const struct hf_spec_autoscale *a = j->a;
	struct hf_instance *best = NULL;
	struct hf_task_slot *best_sl = NULL;

	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		struct hf_node *n;

		if (strcmp(in->pod, j->pod) != 0 || in->state != HF_IS_ACTIVE ||
		    !in->node || !(n = hf_state_node(s, in->node)))
			continue;
		if (a->source == HF_AS_COMMAND) {
			struct hf_task_slot *sl = hf_state_slot(in, a->task);

			if (sl && slot_up(sl) && n->link->api &&
			    (!best || in->index < best->index)) {
				best = in;
				best_sl = sl;
			}
		} else if (a->source == HF_AS_METRICS) {
			const char *port = hf_kvlist_get(&in->ports, a->port);
			char *end;
			bool up = false;

			if (!port) {
				strtol(a->port, &end, 10);
				port = *end ? NULL : a->port;
			}
			for (size_t t = 0; t < in->slots.len; t++)
				up = up || slot_up(&in->slots.items[t]);
			if (port && up && n->address) {
				char *url = hf_xasprintf(
				    "http://%s:%s%s%s", n->address, port,
				    a->path && a->path[0] == '/' ? "" : "/",
				    a->path ? a->path : "metrics");

				hf_strlist_push(&j->urls, url);
				free(url);
			}
		}
	}
	if (a->source == HF_AS_COMMAND) {
		if (best) {
			struct hf_node *n = hf_state_node(s, best->node);

			j->exec_task = hf_xstrdup(best_sl->cur->id);
			j->exec_api = hf_xstrdup(n->link->api);
			j->exec_key = n->link->api_key
					  ? hf_xstrdup(n->link->api_key)
					  : NULL;
		} else {
			j->no_source = hf_xasprintf(
			    "no %s-N-%s task is running to run the metric's "
			    "command in",
			    j->pod, a->task);
		}
	} else if (a->source == HF_AS_METRICS && !j->urls.len) {
		j->no_source = hf_xasprintf("no instance of %s is running with "
					    "port %s to read metrics from",
					    j->pod, a->port);
	}
}

/* The due policies, copied; what is remembered of the gone ones drops. */
static void collect(struct hf_srv *s, struct jobs *jobs)
{
	int64_t mono = hf_mono_ms();

	hf_state_lock(s);
	if (!s->leading) {
		hf_state_unlock(s);
		return;
	}
	pthread_mutex_lock(&pols_mu);
	for (size_t i = 0; i < pols.len; i++)
		pols.items[i].seen = false;
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];
		struct hf_config *cfg = hf_state_target(svc);

		if (svc->removing || !cfg || !cfg->spec)
			continue;
		for (size_t k = 0; k < cfg->spec->pods.len; k++) {
			const struct hf_spec_pod *sp = &cfg->spec->pods.items[k];
			struct pol *p;
			json_t *pj;
			char *fp;
			struct job *j;

			if (!sp->autoscale)
				continue;
			pj = hf_spec_autoscale_json(sp->autoscale);
			fp = json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(pj);
			p = pol_of(svc->name, sp->name);
			p->seen = true;
			if (!p->fp || strcmp(p->fp, fp) != 0)
				pol_reset(p, fp);
			p->count = sp->count;
			p->dry_run = sp->autoscale->dry_run;
			if (mono < p->next_mono) {
				free(fp);
				continue;
			}
			p->next_mono =
			    mono + (int64_t)(sp->autoscale->interval * 1000);
			j = HF_VEC_PUSH(jobs);
			memset(j, 0, sizeof(*j));
			j->svc = hf_xstrdup(svc->name);
			j->pod = hf_xstrdup(sp->name);
			j->fp = fp;
			j->cfg = hf_xstrdup(cfg->id);
			j->a = policy_copy(sp->autoscale);
			j->count = sp->count;
			j->started = hf_now_ms();
			j->unsettled = unsettled(svc, sp->name, sp->count,
						 &j->unplaceable);
			sources(s, svc, j);
		}
	}
	for (size_t i = 0; i < pols.len;) {
		if (pols.items[i].seen) {
			i++;
			continue;
		}
		pol_release(&pols.items[i]);
		pols.items[i] = pols.items[--pols.len];
	}
	pthread_mutex_unlock(&pols_mu);
	hf_state_unlock(s);
}

/* ---- sampling --------------------------------------------------------- */

/* "http://h:p/a/b?c" -> base "http://h:p", path "/a/b?c". */
static void split_url(const char *url, char **base, char **path)
{
	const char *host = strstr(url, "://");
	const char *slash = strchr(host ? host + 3 : url, '/');

	if (!slash) {
		*base = hf_xstrdup(url);
		*path = hf_xstrdup("/");
		return;
	}
	*base = hf_xstrndup(url, (size_t)(slash - url));
	*path = hf_xstrdup(slash);
}

static int fetch(const char *url, const char *extra_query, long timeout_ms,
		 char **body, char **why)
{
	char *base, *path, *err = NULL, *full;
	long status = 0;
	int rc;

	*body = NULL;
	split_url(url, &base, &path);
	full = extra_query ? hf_xasprintf("%s%s%s", path,
					  strchr(path, '?') ? "&" : "?",
					  extra_query)
			   : hf_xstrdup(path);
	rc = hf_httpc_request(base, "GET", full, NULL, NULL, timeout_ms,
			      &status, body, &err);
	if (rc) {
		*why = hf_xasprintf("%s did not answer: %s", url,
				    err ? err : "unreachable");
	} else if (status != 200) {
		*why = hf_xasprintf("%s answered %ld", url, status);
		rc = -1;
	} else if (*body && strlen(*body) > BODY_MAX) {
		*why = hf_xasprintf("%s answered more than %d bytes", url,
				    BODY_MAX);
		rc = -1;
	}
	if (rc) {
		free(*body);
		*body = NULL;
	}
	free(err);
	free(base);
	free(path);
	free(full);
	return rc ? -1 : 0;
}

static int sample_command(const struct job *j, double *v, char **why)
{
	long t_ms = (long)(j->a->timeout * 1000);
	json_t *body = json_pack("{s:s, s:f}", "cmd", j->a->command, "timeout",
				 j->a->timeout),
	       *out = NULL;
	char *path = hf_xasprintf("/v1/agent/tasks/%s/exec", j->exec_task);
	char *err = NULL;
	long status = 0;
	int rc = -1;

	if (hf_httpc_json(j->exec_api, "POST", path, j->exec_key, body,
			  t_ms + 5000, &status, &out, &err)) {
		*why = hf_xasprintf("the agent running %s did not answer: %s",
				    j->exec_task, err ? err : "unreachable");
	} else if (status != 200) {
		const char *m =
		    json_string_value(json_object_get(out, "message"));

		*why = hf_xasprintf("the command could not run in %s: %s",
				    j->exec_task, m ? m : "an error");
	} else {
		json_int_t code =
		    json_integer_value(json_object_get(out, "exit_code"));
		const char *so =
		    json_string_value(json_object_get(out, "stdout"));
		const char *se =
		    json_string_value(json_object_get(out, "stderr"));

		if (code != 0)
			*why = hf_xasprintf("the command exited with status "
					    "%lld%s%.200s",
					    (long long)code,
					    se && *se ? ": " : "",
					    se ? se : "");
		else if (!hf_autoscale_first_number(so, v))
			*why = hf_xasprintf("the command printed no number: "
					    "'%.100s'",
					    so ? so : "");
		else
			rc = 0;
	}
	/* A message ends at its first line: events are one line. */
	if (*why)
		for (char *p = *why; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	json_decref(body);
	json_decref(out);
	free(path);
	free(err);
	return rc;
}

static int sample_prometheus(const struct job *j, double *v, char **why)
{
	char *esc = curl_easy_escape(NULL, j->a->query, 0);
	char *q = hf_xasprintf("query=%s", esc ? esc : "");
	char *url = hf_xasprintf("%s%sapi/v1/query", j->a->url,
				 j->a->url[strlen(j->a->url) - 1] == '/' ? ""
									 : "/");
	char *text = NULL;
	json_t *root = NULL, *data, *res;
	const char *type;
	int rc = -1;

	curl_free(esc);
	if (fetch(url, q, (long)(j->a->timeout * 1000), &text, why))
		goto out;
	root = json_loads(text, 0, NULL);
	data = json_object_get(root, "data");
	res = json_object_get(data, "result");
	type = json_string_value(json_object_get(data, "resultType"));
	if (!root || !type ||
	    strcmp(json_string_value(json_object_get(root, "status"))
		       ? json_string_value(json_object_get(root, "status"))
		       : "",
		   "success") != 0) {
		*why = hf_xasprintf("the Prometheus query failed: %.200s",
				    json_string_value(json_object_get(root, "error"))
					? json_string_value(
					      json_object_get(root, "error"))
					: "not a Prometheus answer");
	} else if (!strcmp(type, "scalar")) {
		rc = number_of(json_array_get(res, 1), v) ? 0 : -1;
		if (rc)
			*why = hf_xstrdup("the query's scalar is not a number");
	} else if (!strcmp(type, "vector") && json_array_size(res) == 1) {
		rc = number_of(json_array_get(json_object_get(
					       json_array_get(res, 0), "value"),
					   1),
			       v)
			 ? 0
			 : -1;
		if (rc)
			*why = hf_xstrdup("the query's sample is not a number");
	} else if (!strcmp(type, "vector")) {
		*why = json_array_size(res)
			   ? hf_xasprintf("the query gives %zu series: make it "
					  "one (sum(...), max(...))",
					  json_array_size(res))
			   : hf_xstrdup("the query gives no series (a metric "
					"that is missing is never scaled on)");
	} else {
		*why = hf_xasprintf("the query gives a %s, not a number", type);
	}
out:
	json_decref(root);
	free(text);
	free(url);
	free(q);
	return rc;
}

static int sample_metrics(const struct job *j, double *v, char **why)
{
	const char *agg = j->a->aggregate ? j->a->aggregate : "sum";
	double acc = 0;

	for (size_t i = 0; i < j->urls.len; i++) {
		char *text = NULL;
		double x;

		if (fetch(j->urls.items[i], NULL, (long)(j->a->timeout * 1000),
			  &text, why))
			return -1;
		if (!hf_autoscale_prom_sample(text, j->a->sample, &x)) {
			*why = hf_xasprintf("%s has no sample %s",
					    j->urls.items[i], j->a->sample);
			free(text);
			return -1;
		}
		free(text);
		if (i == 0 || !strcmp(agg, "sum") || !strcmp(agg, "avg"))
			acc = i == 0 ? x : acc + x;
		else if (!strcmp(agg, "max"))
			acc = x > acc ? x : acc;
		else
			acc = x < acc ? x : acc;
	}
	*v = !strcmp(agg, "avg") ? acc / (double)j->urls.len : acc;
	return 0;
}

static int sample(const struct job *j, double *v, char **why)
{
	char *text = NULL;
	int rc;

	*why = NULL;
	if (j->no_source) {
		*why = hf_xstrdup(j->no_source);
		return -1;
	}
	switch (j->a->source) {
	case HF_AS_COMMAND:
		return sample_command(j, v, why);
	case HF_AS_PROMETHEUS:
		return sample_prometheus(j, v, why);
	case HF_AS_METRICS:
		return sample_metrics(j, v, why);
	case HF_AS_HTTP:
		if (fetch(j->a->url, NULL, (long)(j->a->timeout * 1000), &text,
			  why))
			return -1;
		rc = hf_autoscale_json_number(text, j->a->json_path, v, why)
			 ? 0
			 : -1;
		free(text);
		return rc;
	}
	*why = hf_xstrdup("no metric");
	return -1;
}

/* ---- deciding and acting --------------------------------------------- */

static void event(struct hf_srv *s, const struct job *j, const char *before,
		  const char *after, const char *why)
{
	hf_state_lock(s);
	if (s->leading)
		hf_event(s, "autoscaler", j->svc, "autoscale", j->pod, before,
			 after, why);
	hf_state_unlock(s);
}

/*
 * A hold with a reason: an event when the reason is new (key: what
 * makes it new), the decision remembered either way. pols_mu held.
 */
static void hold(struct hf_srv *s, struct pol *p, const struct job *j,
		 const char *key, const char *why, bool say)
{
	set_str(&p->decision, hf_xasprintf("holds at %lld: %s",
					   (long long)j->count, why));
	p->decided_at = hf_now_ms();
	if (!say || (p->held && !strcmp(p->held, key)))
		return;
	set_str(&p->held, hf_xstrdup(key));
	pthread_mutex_unlock(&pols_mu);
	event(s, j, NULL, NULL, p->decision);
	pthread_mutex_lock(&pols_mu);
}

static void next_words(struct pol *p, const struct hf_spec_autoscale *a,
		       int64_t now)
{
	struct hf_buf b = HF_BUF_INIT;
	int64_t at[2] = {p->last_action + (int64_t)(a->up_cooldown * 1000),
			 p->last_action + (int64_t)(a->down_cooldown * 1000)};
	bool can[2] = {p->count < a->max, p->count > a->min};

	for (int d = 0; d < 2; d++) {
		if (!can[d])
			continue;
		hf_buf_addf(&b, "%s%s ", b.len ? ", " : "", d ? "down" : "up");
		if (at[d] > now)
			hf_buf_addf(&b, "in %.1f s", (double)(at[d] - now) / 1000);
		else
			hf_buf_adds(&b, "at the next evaluation");
	}
	if (!b.len)
		hf_buf_adds(&b, "none: min and max are the count");
	set_str(&p->next, hf_buf_detach(&b));
}

static void act(struct hf_srv *s, struct pol *p, const struct job *j,
		int64_t to, const char *rule)
{
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	char *why = hf_xasprintf("autoscale: %s: %s %lld -> %lld", rule, j->pod,
				 (long long)j->count, (long long)to);
	char before[32], after[32];
	int rc;

	if (p->dry_run) {
		char *w = hf_xasprintf("dry run: would scale %s %lld -> %lld (%s)",
				       j->pod, (long long)j->count,
				       (long long)to, rule);

		set_str(&p->decision, hf_xstrdup(w));
		p->decided_at = hf_now_ms();
		p->last_action = j->started;
		p->up_run = p->down_run = p->err_run = 0;
		free(p->held);
		p->held = NULL;
		pthread_mutex_unlock(&pols_mu);
		event(s, j, NULL, NULL, w);
		pthread_mutex_lock(&pols_mu);
		free(w);
		free(why);
		return;
	}
	pthread_mutex_unlock(&pols_mu);
	rc = hf_ops_pod_autoscale(s, j->svc, j->pod, to, why, &out, &err);
	pthread_mutex_lock(&pols_mu);
	p->decided_at = hf_now_ms();
	if (rc) {
		set_str(&p->decision,
			hf_xasprintf("could not scale %lld -> %lld: %s",
				     (long long)j->count, (long long)to,
				     err.why ? err.why : "?"));
		hf_log("service %s: autoscale of %s: %s", j->svc, j->pod,
		       p->decision);
		if (!p->held || strcmp(p->held, p->decision)) {
			set_str(&p->held, hf_xstrdup(p->decision));
			pthread_mutex_unlock(&pols_mu);
			snprintf(before, sizeof(before), "%lld",
				 (long long)j->count);
			event(s, j, before, before, p->decision);
			pthread_mutex_lock(&pols_mu);
		}
	} else {
		set_str(&p->decision, hf_xasprintf("scaled %lld -> %lld (%s)",
						   (long long)j->count,
						   (long long)to, rule));
		hf_log("service %s: %s", j->svc, why);
		/*
		 * A change counts from the evaluation that decided it, as
		 * the cooldowns are checked at evaluations: a cooldown equal
		 * to the interval then lets the very next one act.
		 */
		p->last_action = j->started;
		p->up_run = p->down_run = p->err_run = 0;
		if (to > j->count)
			p->ups++;
		else
			p->downs++;
		p->count = to;
		free(p->held);
		p->held = NULL;
		snprintf(before, sizeof(before), "%lld", (long long)j->count);
		snprintf(after, sizeof(after), "%lld", (long long)to);
		pthread_mutex_unlock(&pols_mu);
		event(s, j, before, after, why);
		pthread_mutex_lock(&pols_mu);
	}
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
	free(why);
}

static void evaluate(struct hf_srv *s, const struct job *j)
{
	const struct hf_spec_autoscale *a = j->a;
	double v = 0;
	char *why = NULL, *msg = NULL, key[64];
	int rc = sample(j, &v, &why);
	int64_t now = j->started;
	struct hf_as_want w;
	struct pol *p;

	pthread_mutex_lock(&pols_mu);
	p = pol_of(j->svc, j->pod);
	if (!p->fp || strcmp(p->fp, j->fp) != 0) {
		/* The policy changed while its metric was read. */
		pthread_mutex_unlock(&pols_mu);
		free(why);
		return;
	}
	if (rc && j->no_source && j->unsettled) {
		/* Its instances are starting: nowhere to read it yet. */
		msg = hf_xasprintf("waits for its instances (%s)", j->unsettled);
		hold(s, p, j, "starting", msg, false);
		goto out;
	}
	p->hist[p->nhist % HIST] = (struct sample){now, rc == 0, v};
	p->nhist++;
	p->count = j->count;
	if (rc) {
		p->errors++;
		p->err_run++;
		p->up_run = p->down_run = 0;
		p->have_value = false;
		set_str(&p->error, why);
		why = NULL;
		if (a->error_count >= 0 && p->err_run >= (unsigned)a->samples &&
		    clamp(a->error_count, a->min, a->max) != j->count &&
		    !j->unsettled) {
			msg = hf_xasprintf("the metric failed %u times in a "
					   "row (%s): on-error count",
					   p->err_run, p->error);
			act(s, p, j, clamp(a->error_count, a->min, a->max), msg);
		} else {
			msg = hf_xasprintf("the metric failed: %s", p->error);
			/* Each new failure is said; a repeat is not. */
			hold(s, p, j, msg, msg, true);
		}
		goto out;
	}
	set_str(&p->error, NULL);
	p->err_run = 0;
	p->have_value = true;
	p->value = v;
	if (j->count < a->min || j->count > a->max) {
		int64_t to = clamp(j->count, a->min, a->max);

		msg = hf_xasprintf("the count %lld is outside min %lld and max "
				   "%lld",
				   (long long)j->count, (long long)a->min,
				   (long long)a->max);
		p->desired = to;
		if (j->unsettled && !(j->unplaceable && to < j->count))
			hold(s, p, j, "unsettled", j->unsettled, false);
		else
			act(s, p, j, to, msg);
		goto out;
	}
	hf_autoscale_want(a, j->count, v, &w);
	p->desired = w.to;
	if (w.dir == HF_AS_HOLD) {
		bool edge = (a->has_up && v > a->above && j->count >= a->max) ||
			    (a->has_down && v < a->below && j->count <= a->min);

		p->up_run = p->down_run = 0;
		msg = hf_xasprintf("%s%s", w.rule,
				   edge ? (j->count >= a->max ? " (at max)"
							       : " (at min)")
					: "");
		hold(s, p, j, edge ? (j->count >= a->max ? "max" : "min") : "band",
		     msg, edge);
		goto out;
	}
	if (w.dir == HF_AS_UP) {
		p->up_run++;
		p->down_run = 0;
	} else {
		p->down_run++;
		p->up_run = 0;
	}
	{
		unsigned run = w.dir == HF_AS_UP ? p->up_run : p->down_run;
		double cool = w.dir == HF_AS_UP ? a->up_cooldown : a->down_cooldown;
		int64_t ready_at = p->last_action + (int64_t)(cool * 1000);

		if (run < (unsigned)a->samples) {
			msg = hf_xasprintf("%s: sample %u of %lld in a row",
					   w.rule, run, (long long)a->samples);
			snprintf(key, sizeof(key), "samples %u", run);
			hold(s, p, j, key, msg, true);
		} else if (now < ready_at) {
			msg = hf_xasprintf("%s: %s cooldown for %.1f s more",
					   w.rule,
					   w.dir == HF_AS_UP ? "up" : "down",
					   (double)(ready_at - now) / 1000);
			hold(s, p, j, w.dir == HF_AS_UP ? "cool up" : "cool down",
			     msg, true);
		} else if (j->unsettled && j->unplaceable &&
			   w.dir == HF_AS_UP) {
			/* More would not be placed either. */
			msg = hf_xasprintf("%s: no room for more: %s", w.rule,
					   j->unsettled);
			hold(s, p, j, "no room", msg, true);
		} else if (j->unsettled && !j->unplaceable) {
			msg = hf_xasprintf("%s: the last change is not done (%s)",
					   w.rule, j->unsettled);
			hold(s, p, j, "unsettled", msg, true);
		} else {
			/* A scale-in also removes what could not be placed. */
			act(s, p, j, w.to, w.rule);
		}
	}
out:
	next_words(p, a, now);
	pthread_mutex_unlock(&pols_mu);
	free(msg);
	free(why);
}

/* ---- the thread ------------------------------------------------------- */

static struct hf_ticker as_ticker = HF_TICKER_INIT;

static void as_pass(void *arg)
{
	struct hf_srv *s = arg;
	struct jobs jobs = {0};

	collect(s, &jobs);
	for (size_t i = 0; i < jobs.len; i++) {
		if (!hf_ticker_stopping(&as_ticker))
			evaluate(s, &jobs.items[i]);
		job_release(&jobs.items[i]);
	}
	HF_VEC_FREE(&jobs);
}

void hf_autoscale_start(struct hf_srv *s)
{
	as_ticker.name = "the autoscaler thread";
	as_ticker.without = "no pod is autoscaled";
	as_ticker.every_ms = PASS_MS;
	hf_ticker_start(&as_ticker, as_pass, s);
}

void hf_autoscale_stop(void)
{
	hf_ticker_stop(&as_ticker);
	pthread_mutex_lock(&pols_mu);
	for (size_t i = 0; i < pols.len; i++)
		pol_release(&pols.items[i]);
	pols.len = 0;
	pthread_mutex_unlock(&pols_mu);
}

/* ---- what it shows ---------------------------------------------------- */

static json_t *ms_or_null(int64_t ms)
{
	return ms ? json_integer(ms) : json_null();
}

void hf_autoscale_status_handler(void *ctx, const struct hf_http_req *req,
				 struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	json_t *out, *arr = json_array();
	struct hf_service *svc;
	struct hf_config *cfg;
	bool leading;

	hf_state_lock(s);
	svc = hf_state_service(s, name);
	cfg = svc ? hf_state_target(svc) : NULL;
	if (!svc || !cfg || !cfg->spec) {
		hf_state_unlock(s);
		json_decref(arr);
		hf_http_error(resp, HF_ENOTFOUND, "no service '%s'",
			      name ? name : "");
		return;
	}
	leading = s->leading;
	pthread_mutex_lock(&pols_mu);
	for (size_t k = 0; k < cfg->spec->pods.len; k++) {
		const struct hf_spec_pod *sp = &cfg->spec->pods.items[k];
		const struct pol *p = NULL;
		json_t *o, *h;

		if (!sp->autoscale)
			continue;
		h = json_array();
		for (size_t i = 0; i < pols.len; i++)
			if (!strcmp(pols.items[i].svc, svc->name) &&
			    !strcmp(pols.items[i].pod, sp->name))
				p = &pols.items[i];
		o = json_pack("{s:s, s:o, s:I, s:b}", "pod", sp->name, "policy",
			      hf_spec_autoscale_json(sp->autoscale), "count",
			      (json_int_t)sp->count, "dry_run",
			      sp->autoscale->dry_run);
		if (p) {
			unsigned n = p->nhist < HIST ? p->nhist : HIST;

			for (unsigned i = 0; i < n; i++) {
				const struct sample *x =
				    &p->hist[(p->nhist - n + i) % HIST];

				json_array_append_new(
				    h, json_pack("{s:I, s:o}", "at",
						 (json_int_t)x->at, "value",
						 x->ok ? json_real(x->v)
						       : json_null()));
			}
			json_object_set_new(o, "value",
					    p->have_value ? json_real(p->value)
							  : json_null());
			json_object_set_new(o, "error",
					    p->error ? json_string(p->error)
						     : json_null());
			json_object_set_new(o, "desired",
					    json_integer(p->desired));
			json_object_set_new(o, "decision",
					    p->decision
						? json_string(p->decision)
						: json_null());
			json_object_set_new(o, "decided_at",
					    ms_or_null(p->decided_at));
			json_object_set_new(o, "last_action_at",
					    ms_or_null(p->last_action));
			json_object_set_new(o, "next",
					    p->next ? json_string(p->next)
						    : json_null());
			json_object_set_new(
			    o, "samples_in_a_row",
			    json_pack("{s:i, s:i, s:i}", "up", p->up_run,
				      "down", p->down_run, "errors",
				      p->err_run));
			json_object_set_new(
			    o, "actions",
			    json_pack("{s:I, s:I}", "up", (json_int_t)p->ups,
				      "down", (json_int_t)p->downs));
		} else {
			json_object_set_new(o, "value", json_null());
			json_object_set_new(o, "error", json_null());
			json_object_set_new(
			    o, "decision",
			    json_string(leading ? "not evaluated yet"
						: "evaluated by the leader"));
		}
		json_object_set_new(o, "history", h);
		json_array_append_new(arr, o);
	}
	pthread_mutex_unlock(&pols_mu);
	out = json_pack("{s:s, s:o}", "service", svc->name, "pods", arr);
	hf_state_unlock(s);
	hf_http_json(resp, 200, out);
}

static void labels(struct hf_buf *b, const char *name, const struct pol *p)
{
	hf_buf_adds(b, name);
	hf_buf_adds(b, "{service=\"");
	hf_metrics_label(b, p->svc);
	hf_buf_adds(b, "\",pod=\"");
	hf_metrics_label(b, p->pod);
	hf_buf_adds(b, "\"}");
}

void hf_autoscale_metrics(struct hf_buf *b)
{
	static const char *const help[][3] = {
	    {"holdfast_autoscale_count", "gauge",
	     "The count of an autoscaled pod type."},
	    {"holdfast_autoscale_desired", "gauge",
	     "The count its policy wants at the last evaluation."},
	    {"holdfast_autoscale_value", "gauge",
	     "The policy's metric at the last evaluation that read it."},
	    {"holdfast_autoscale_metric_errors_total", "counter",
	     "Evaluations whose metric could not be read."},
	    {"holdfast_autoscale_actions_total", "counter",
	     "Changes of the count the autoscaler made."},
	};

	pthread_mutex_lock(&pols_mu);
	for (size_t k = 0; k < HF_ARRAY_LEN(help); k++) {
		hf_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", help[k][0],
			    help[k][2], help[k][0], help[k][1]);
		for (size_t i = 0; i < pols.len; i++) {
			const struct pol *p = &pols.items[i];

			if (k == 4) {
				for (int d = 0; d < 2; d++) {
					hf_buf_adds(b, help[k][0]);
					hf_buf_adds(b, "{service=\"");
					hf_metrics_label(b, p->svc);
					hf_buf_adds(b, "\",pod=\"");
					hf_metrics_label(b, p->pod);
					hf_buf_addf(b,
						    "\",direction=\"%s\"} %llu\n",
						    d ? "down" : "up",
						    (unsigned long long)(d ? p->downs
									   : p->ups));
				}
				continue;
			}
			if (k == 2 && !p->have_value)
				continue;
			labels(b, help[k][0], p);
			if (k == 0)
				hf_buf_addf(b, " %lld\n", (long long)p->count);
			else if (k == 1)
				hf_buf_addf(b, " %lld\n", (long long)p->desired);
			else if (k == 2)
				hf_buf_addf(b, " %.17g\n", p->value);
			else
				hf_buf_addf(b, " %llu\n",
					    (unsigned long long)p->errors);
		}
	}
	pthread_mutex_unlock(&pols_mu);
}
