/*
 * dr.c - disaster recovery: the service's configuration sent to its
 * standby (dr.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "model/model.h"
#include "server/dr.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/ops.h"
#include "server/remotes.h"
#include "server/state.h"

/* Configurations are looked at this often, and sent again at least every
 * RESEND_MS even when unchanged (the standby shows how fresh it is). */
#define SHIP_EVERY_MS 1000
#define RESEND_MS 60000

/* What the leader sent of one service (memory only). */
struct sent {
	char *svc, *to;
	char *config; /* the configuration id the standby acknowledged */
	char *target; /* the service's target when last looked at */
	int64_t at;   /* unix ms of that acknowledgement */
	char *error;  /* the last attempt's failure, NULL when it went */
	int64_t tried;
	bool seen;
};

static HF_VEC(struct sent) sents;
static pthread_mutex_t sents_mu = PTHREAD_MUTEX_INITIALIZER;

static void sent_release(struct sent *x)
{
	free(x->svc);
	free(x->to);
	free(x->config);
	free(x->target);
	free(x->error);
}

static struct sent *sent_of(const char *svc)
{
	struct sent *x;

	for (size_t i = 0; i < sents.len; i++)
		if (!strcmp(sents.items[i].svc, svc))
			return &sents.items[i];
	x = HF_VEC_PUSH(&sents);
	memset(x, 0, sizeof(*x));
	x->svc = hf_xstrdup(svc);
	return x;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? hf_xstrdup(v) : NULL;
}

static json_t *kv_json(const struct hf_kvlist *l)
{
	json_t *o = json_object();

	for (size_t i = 0; i < l->len; i++)
		json_object_set_new(o, l->items[i].key,
				    json_string(l->items[i].value));
	return o;
}

/* The configuration a standby keeps. Lock held. */
static json_t *config_json(const struct hf_service *svc,
			   const struct hf_config *cfg)
{
	json_t *plans = json_object();

	for (size_t i = 0; i < svc->runs.len; i++)
		if (svc->runs.items[i].params.len)
			json_object_set_new(plans, svc->runs.items[i].plan,
					    kv_json(&svc->runs.items[i].params));
	return json_pack("{s:{s:s, s:s, s:s?, s:o, s:o, s:o}, s:o}", "config",
			 "id", cfg->id, "text", cfg->text, "file", cfg->file,
			 "options", kv_json(&cfg->options), "templates",
			 kv_json(&cfg->templates), "counts",
			 kv_json(&cfg->counts), "plans", plans);
}

static void json_to_kv(const json_t *o, struct hf_kvlist *l)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)o, k, v)
		if (json_is_string(v))
			hf_kvlist_set(l, k, json_string_value(v));
}

/* ---- the primary ------------------------------------------------------- */

void hf_dr_enable_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *svc = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	json_t *body = NULL;
	const char *to;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	to = json_string_value(json_object_get(body, "to"));
	if (!to || !*to) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"to\": REMOTE}: a remote cluster "
			      "(holdfast remote list)");
	} else if ((rc = hf_ops_dr_enable(s, svc, to, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	} else {
		hf_log("service %s: replicated to remote cluster %s", svc, to);
		hf_http_json(resp, 201,
			     json_pack("{s:s, s:s, s:s}", "service", svc,
				       "role", "primary", "to", to));
	}
	hf_ops_err_release(&err);
	json_decref(body);
}

void hf_dr_disable_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *svc = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	char *to = NULL, *why = NULL, *path, *esc;
	json_t *out = NULL;
	long status = 0;
	int rc = hf_ops_dr_disable(s, svc, &to, &err);

	if (rc) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	/* The standby forgets it too, if it can be told now. */
	esc = hf_url_escape(svc);
	path = hf_xasprintf("/v1/dr/standby/%s", esc);
	free(esc);
	if (to && (hf_remotes_call(s, to, "DELETE", path, NULL, &status, &out,
				   &why) ||
		   (status != 200 && status != 404)))
		hf_log("service %s: remote cluster %s was not told to drop "
		       "its standby: %s",
		       svc, to, why ? why : "it refused");
	free(path);
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < sents.len; i++)
		if (!strcmp(sents.items[i].svc, svc)) {
			sent_release(&sents.items[i]);
			sents.items[i] = sents.items[--sents.len];
			break;
		}
	pthread_mutex_unlock(&sents_mu);
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s?, s:b, s:b}", "service", svc, "to", to,
			       "disabled", 1, "standby_told",
			       status == 200 || status == 404));
out:
	hf_ops_err_release(&err);
	json_decref(out);
	free(to);
	free(why);
}

static json_t *primary_json(const json_t *rec, const char *target)
{
	const char *svc = json_string_value(json_object_get(rec, "service"));
	json_t *o = json_pack("{s:s?, s:s, s:s?, s:O?}", "service", svc,
			      "role", "primary", "to",
			      json_string_value(json_object_get(rec, "to")),
			      "since", json_object_get(rec, "since"));
	json_t *c = json_object();

	json_object_set_new(c, "target", target ? json_string(target)
						: json_null());
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; svc && i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		if (strcmp(x->svc, svc) != 0)
			continue;
		json_object_set_new(c, "replicated",
				    x->config ? json_string(x->config)
					      : json_null());
		json_object_set_new(c, "replicated_at",
				    x->at ? json_integer(x->at) : json_null());
		json_object_set_new(c, "error", x->error ? json_string(x->error)
							 : json_null());
	}
	pthread_mutex_unlock(&sents_mu);
	if (!json_object_get(c, "replicated")) {
		json_object_set_new(c, "replicated", json_null());
		json_object_set_new(c, "replicated_at", json_null());
		json_object_set_new(c, "error", json_null());
	}
	json_object_set_new(
	    c, "in_sync",
	    json_boolean(target &&
			 json_is_string(json_object_get(c, "replicated")) &&
			 !strcmp(target, json_string_value(
					     json_object_get(c, "replicated")))));
	json_object_set_new(o, "config", c);
	return o;
}

static json_t *standby_json(const json_t *rec)
{
	const json_t *cfg = json_object_get(rec, "config");

	return json_pack("{s:O?, s:s, s:O?, s:O?, s:{s:O?, s:O?}}", "service",
			 json_object_get(rec, "service"), "role", "standby",
			 "from", json_object_get(rec, "from"), "cluster",
			 json_object_get(rec, "cluster"), "config", "id",
			 json_object_get(cfg, "id"), "received_at",
			 json_object_get(rec, "received_at"));
}

void hf_dr_status_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	char *key = hf_state_key("/dr/%s", name, NULL);
	char *skey = hf_state_key("/standby/%s", name, NULL);
	char *target = NULL;
	json_t *rec = NULL;
	struct hf_service *svc;
	int rc;

	hf_state_lock(s);
	svc = hf_state_service(s, name);
	if (svc && svc->target)
		target = hf_xstrdup(svc->target);
	rc = hf_state_get_record(s, key, &rec);
	if (rc == HF_ENOTFOUND)
		rc = hf_state_get_record(s, skey, &rec) ? HF_ENOTFOUND : 1;
	hf_state_unlock(s);
	if (rc == 0)
		hf_http_json(resp, 200, primary_json(rec, target));
	else if (rc == 1)
		hf_http_json(resp, 200, standby_json(rec));
	else
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' has no disaster recovery here (dr "
			      "enable --to REMOTE)",
			      name ? name : "");
	json_decref(rec);
	free(target);
	free(key);
	free(skey);
}

void hf_dr_list_handler(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *prim = NULL, *stand = NULL, *out = json_array(), *e;
	HF_VEC(char *) targets = {0};
	size_t i;
	int rc;

	(void)req;
	hf_state_lock(s);
	rc = hf_state_list_records(s, "/dr/", &prim);
	if (!rc)
		rc = hf_state_list_records(s, "/standby/", &stand);
	json_array_foreach(prim, i, e) {
		struct hf_service *svc = hf_state_service(
		    s, json_string_value(json_object_get(e, "service")));

		*HF_VEC_PUSH(&targets) =
		    svc && svc->target ? hf_xstrdup(svc->target) : NULL;
	}
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc, "the store cannot be read");
	} else {
		json_array_foreach(prim, i, e)
			json_array_append_new(out,
					      primary_json(e, targets.items[i]));
		json_array_foreach(stand, i, e)
			json_array_append_new(out, standby_json(e));
		hf_http_json(resp, 200, json_pack("{s:O}", "services", out));
	}
	for (i = 0; i < targets.len; i++)
		free(targets.items[i]);
	HF_VEC_FREE(&targets);
	json_decref(out);
	json_decref(prim);
	json_decref(stand);
}

/* ---- the standby ------------------------------------------------------- */

void hf_dr_standby_put_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	struct hf_config *cand = hf_xcalloc(1, sizeof(*cand));
	json_t *body = NULL, *cfg, *rec = NULL;
	const char *id, *text;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		goto out;
	cfg = json_object_get(body, "config");
	id = json_string_value(json_object_get(cfg, "id"));
	text = json_string_value(json_object_get(cfg, "text"));
	if (!id || !text || !json_is_object(json_object_get(cfg, "options"))) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"cluster\", \"config\": {\"id\", "
			      "\"text\", \"file\"?, \"options\", \"templates\", "
			      "\"counts\"}, \"plans\"}");
		goto out;
	}
	/* The standby must be able to start it: it loads here. */
	cand->text = hf_xstrdup(text);
	if (json_is_string(json_object_get(cfg, "file")))
		cand->file = hf_xstrdup(
		    json_string_value(json_object_get(cfg, "file")));
	json_to_kv(json_object_get(cfg, "options"), &cand->options);
	json_to_kv(json_object_get(cfg, "templates"), &cand->templates);
	json_to_kv(json_object_get(cfg, "counts"), &cand->counts);
	if (hf_state_config_load(cand, &err.diags)) {
		hf_http_error(resp, HF_ESPEC,
			      "configuration %s of service '%s' does not load "
			      "on this cluster",
			      id, name);
		goto out;
	}
	if (strcmp(cand->spec->name, name) != 0) {
		hf_http_error(resp, HF_EINVAL, "the spec is for service '%s', "
					       "not '%s'",
			      cand->spec->name, name);
		goto out;
	}
	rec = json_pack("{s:s, s:s, s:O?, s:O, s:O?, s:I}", "service", name,
			"from", req->principal ? req->principal : "?",
			"cluster", json_object_get(body, "cluster"), "config",
			cfg, "plans", json_object_get(body, "plans"),
			"received_at", (json_int_t)hf_now_ms());
	rc = hf_ops_standby_put(s, name, rec, req->principal ? req->principal
							     : "?",
				&err);
	if (rc)
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:s, s:s}", "service", name,
				       "role", "standby", "config", id));
out:
	hf_model_config_free(cand);
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
}

void hf_dr_standby_delete_handler(void *ctx, const struct hf_http_req *req,
				  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	int rc = hf_ops_standby_delete(s, name, req->principal, &err);

	if (rc)
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "service", name, "removed",
				       1));
	hf_ops_err_release(&err);
}

/* ---- shipping ---------------------------------------------------------- */

static volatile bool dr_stop_flag;

struct ship {
	char *svc, *to, *target;
	json_t *payload; /* NULL: nothing to send now */
};

static void ship_pass(struct hf_srv *s)
{
	HF_VEC(struct ship) jobs = {0};
	json_t *all = NULL, *e;
	int64_t now = hf_now_ms();
	size_t i;

	hf_state_lock(s);
	if (!s->leading || hf_state_list_records(s, "/dr/", &all)) {
		hf_state_unlock(s);
		json_decref(all);
		return;
	}
	pthread_mutex_lock(&sents_mu);
	for (i = 0; i < sents.len; i++)
		sents.items[i].seen = false;
	json_array_foreach(all, i, e) {
		const char *name = json_string_value(json_object_get(e, "service"));
		const char *to = json_string_value(json_object_get(e, "to"));
		struct hf_service *svc = name ? hf_state_service(s, name) : NULL;
		struct hf_config *cfg = svc ? hf_state_target(svc) : NULL;
		struct sent *x;
		struct ship *j;

		if (!name || !to || !cfg)
			continue;
		x = sent_of(name);
		x->seen = true;
		set_str(&x->to, to);
		set_str(&x->target, cfg->id);
		if (x->config && !strcmp(x->config, cfg->id) &&
		    now - x->at < RESEND_MS)
			continue;
		/* A failing remote is tried again after a while, not at once. */
		if (x->error && now - x->tried < 5000)
			continue;
		j = HF_VEC_PUSH(&jobs);
		j->svc = hf_xstrdup(name);
		j->to = hf_xstrdup(to);
		j->target = hf_xstrdup(cfg->id);
		j->payload = config_json(svc, cfg);
		json_object_set_new(j->payload, "cluster",
				    json_string(s->cluster_id ? s->cluster_id
							      : ""));
	}
	for (i = 0; i < sents.len;) {
		if (sents.items[i].seen) {
			i++;
			continue;
		}
		sent_release(&sents.items[i]);
		sents.items[i] = sents.items[--sents.len];
	}
	pthread_mutex_unlock(&sents_mu);
	hf_state_unlock(s);
	json_decref(all);
	for (i = 0; i < jobs.len; i++) {
		struct ship *j = &jobs.items[i];
		char *esc = hf_url_escape(j->svc);
		char *path = hf_xasprintf("/v1/dr/standby/%s", esc);
		char *why = NULL, *said = NULL;
		json_t *out = NULL;
		long status = 0;
		struct sent *x;

		if (!dr_stop_flag &&
		    hf_remotes_call(s, j->to, "PUT", path, j->payload, &status,
				    &out, &why) == 0 &&
		    status != 200) {
			const char *m =
			    json_string_value(json_object_get(out, "message"));

			why = hf_xasprintf("%s answered %ld: %s", j->to, status,
					   m ? m : "?");
		}
		pthread_mutex_lock(&sents_mu);
		x = sent_of(j->svc);
		x->seen = true;
		x->tried = hf_now_ms();
		if (!why) {
			if (!x->config || strcmp(x->config, j->target))
				said = hf_xasprintf("configuration %s is on %s",
						    j->target, j->to);
			set_str(&x->config, j->target);
			x->at = x->tried;
			set_str(&x->error, NULL);
		} else if (!x->error || strcmp(x->error, why)) {
			said = hf_xasprintf("configuration %s not sent to %s: "
					    "%s",
					    j->target, j->to, why);
			set_str(&x->error, why);
		}
		pthread_mutex_unlock(&sents_mu);
		if (said) {
			hf_log("service %s: %s", j->svc, said);
			hf_state_lock(s);
			if (s->leading)
				hf_event(s, "scheduler", j->svc, "dr", j->svc,
					 NULL, why ? "behind" : "replicated",
					 said);
			hf_state_unlock(s);
		}
		free(said);
		free(why);
		free(esc);
		free(path);
		json_decref(out);
		free(j->svc);
		free(j->to);
		free(j->target);
		json_decref(j->payload);
	}
	HF_VEC_FREE(&jobs);
}

static pthread_t dr_thread;
static bool dr_started;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;

static void *dr_main(void *arg)
{
	struct hf_srv *s = arg;

	pthread_mutex_lock(&stop_mu);
	while (!dr_stop_flag) {
		struct timespec until;
		int64_t wake = hf_now_ms() + SHIP_EVERY_MS;

		until.tv_sec = (time_t)(wake / 1000);
		until.tv_nsec = (long)(wake % 1000) * 1000000L;
		while (!dr_stop_flag &&
		       pthread_cond_timedwait(&stop_cond, &stop_mu, &until) !=
			   ETIMEDOUT)
			;
		if (dr_stop_flag)
			break;
		pthread_mutex_unlock(&stop_mu);
		ship_pass(s);
		pthread_mutex_lock(&stop_mu);
	}
	pthread_mutex_unlock(&stop_mu);
	return NULL;
}

void hf_dr_start(struct hf_srv *s)
{
	if (dr_started)
		return;
	dr_stop_flag = false;
	if (pthread_create(&dr_thread, NULL, dr_main, s) != 0) {
		hf_log("cannot start the disaster recovery thread: no "
		       "configuration is sent to a standby");
		return;
	}
	dr_started = true;
}

void hf_dr_stop(void)
{
	if (!dr_started)
		return;
	pthread_mutex_lock(&stop_mu);
	dr_stop_flag = true;
	pthread_cond_broadcast(&stop_cond);
	pthread_mutex_unlock(&stop_mu);
	pthread_join(dr_thread, NULL);
	dr_started = false;
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < sents.len; i++)
		sent_release(&sents.items[i]);
	sents.len = 0;
	pthread_mutex_unlock(&sents_mu);
}

void hf_dr_metrics(struct hf_buf *b)
{
	pthread_mutex_lock(&sents_mu);
	hf_buf_adds(b, "# HELP holdfast_dr_config_behind Whether the standby "
		       "lacks the service's target configuration.\n"
		       "# TYPE holdfast_dr_config_behind gauge\n");
	for (size_t i = 0; i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		hf_buf_adds(b, "holdfast_dr_config_behind{service=\"");
		hf_metrics_label(b, x->svc);
		hf_buf_adds(b, "\",remote=\"");
		hf_metrics_label(b, x->to ? x->to : "");
		hf_buf_addf(b, "\"} %d\n",
			    !x->config || !x->target ||
				strcmp(x->config, x->target) != 0);
	}
	hf_buf_adds(b, "# HELP holdfast_dr_config_sent_timestamp_seconds When "
		       "the standby last acknowledged the configuration.\n"
		       "# TYPE holdfast_dr_config_sent_timestamp_seconds "
		       "gauge\n");
	for (size_t i = 0; i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		if (!x->at)
			continue;
		hf_buf_adds(b, "holdfast_dr_config_sent_timestamp_seconds{"
			       "service=\"");
		hf_metrics_label(b, x->svc);
		hf_buf_adds(b, "\",remote=\"");
		hf_metrics_label(b, x->to ? x->to : "");
		hf_buf_addf(b, "\"} %.3f\n", (double)x->at / 1000);
	}
	pthread_mutex_unlock(&sents_mu);
}
