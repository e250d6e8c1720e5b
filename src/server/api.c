/*
 * api.c - the server's HTTP routes, in one table, and their handlers.
 * Handlers run on the HTTP layer's threads and take srv->mu for everything
 * they read or change; the agent's long poll is a deferred answer woken
 * through its node's wait queue (it holds no thread while it waits).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/http.h"
#include "common/err.h"
#include "common/version.h"
#include "server/api.h"
#include "server/cluster.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/nodeauth.h"
#include "server/sched.h"
#include "server/tasks_api.h"

#define AGENT_MAX_WAIT_S 30

static struct hf_srv *srv_of(void *ctx)
{
	return ctx;
}

static void redact(json_t *j);

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Finds the service named in the route, or answers 404. */
static struct hf_service *route_service(struct hf_srv *s,
					const struct hf_http_req *req,
					struct hf_http_resp *resp)
{
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_service *svc = name ? hf_state_service(s, name) : NULL;

	if (!svc)
		hf_http_error(resp, HF_ENOTFOUND, "no service named '%s'",
			      name ? name : "");
	return svc;
}

/* ------------------------------------------------------------------ */
/* Services                                                             */

/* The service and instance names an instance's volume key is made of. */
static void key_names(const char *key, char **svc, char **instance)
{
	const char *slash = strchr(key, '/');

	*svc = hf_name_unescape(key, slash ? (size_t)(slash - key) : 0);
	*instance = slash ? hf_name_unescape(slash + 1, strlen(slash + 1))
			  : hf_xstrdup("");
}

/* The kept volumes of a service (all when svc is NULL), as the API shows. */
static json_t *kept_json(struct hf_srv *s, const char *svc,
			 const char *instance)
{
	json_t *a = json_array();

	for (size_t k = 0; k < s->nodes.len; k++) {
		const struct hf_node *n = s->nodes.items[k];

		for (size_t i = 0; i < n->kept.len; i++) {
			const struct hf_kept_volume *kv = &n->kept.items[i];
			char *name, *inst;

			if (svc && !hf_sched_volume_of(kv->key, svc, instance))
				continue;
			key_names(kv->key, &name, &inst);
			json_array_append_new(
			    a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
					 "key", kv->key, "service", name,
					 "instance", inst, "node", n->id,
					 "status", "kept", "why", kv->why,
					 "since", (json_int_t)kv->since));
			free(name);
			free(inst);
		}
	}
	return a;
}

static json_t *task_counts(const struct hf_service *svc)
{
	json_t *o = json_object();

	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];

		for (size_t k = 0; k < in->slots.len; k++) {
			const struct hf_task_rec *r = in->slots.items[k].cur;
			const char *st;
			json_t *v;

			if (!r)
				continue;
			st = hf_task_state_name(r->state);
			v = json_object_get(o, st);
			json_object_set_new(o, st,
					    json_integer(v ? json_integer_value(v) + 1
							   : 1));
		}
	}
	return o;
}

static json_t *service_summary(struct hf_srv *s, struct hf_service *svc)
{
	json_t *plans = json_object();
	struct hf_config *cfg = hf_state_target(svc);

	for (size_t i = 0; cfg && i < cfg->plans.len; i++) {
		struct hf_plan_view v;

		if (hf_sched_plan_view(s, svc, cfg->plans.items[i].name, &v))
			continue;
		json_object_set_new(plans, cfg->plans.items[i].name,
				    json_string(hf_status_name(v.status)));
		hf_plan_view_release(&v);
	}
	return json_pack("{s:s, s:o, s:b, s:o, s:o, s:I}", "name", svc->name,
			 "config_id", str_or_null(svc->target), "removing",
			 svc->removing, "plans", plans, "tasks",
			 task_counts(svc), "created", (json_int_t)svc->created);
}

static void h_services_list(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	json_t *a = json_array();

	(void)req;
	hf_state_lock(s);
	for (size_t i = 0; i < s->services.len; i++)
		json_array_append_new(a, service_summary(s, s->services.items[i]));
	hf_state_unlock(s);
	hf_http_json(resp, 200, a);
}

static void h_service_get(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (svc)
		hf_http_json(resp, 200, service_summary(s, svc));
	hf_state_unlock(s);
}

/* Copies a JSON object of strings into a kvlist; false if not all strings. */
static bool json_to_kv(const json_t *o, struct hf_kvlist *out, bool env_names,
		       const char **bad)
{
	const char *k;
	json_t *v;

	if (!o || json_is_null(o))
		return true;
	if (!json_is_object(o)) {
		*bad = "(not an object)";
		return false;
	}
	json_object_foreach((json_t *)o, k, v)
	{
		char num[64];

		if (env_names && !hf_is_env_name(k)) {
			*bad = k;
			return false;
		}
		if (json_is_string(v)) {
			hf_kvlist_set(out, k, json_string_value(v));
		} else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%lld",
				 (long long)json_integer_value(v));
			hf_kvlist_set(out, k, num);
		} else if (json_is_real(v)) {
			snprintf(num, sizeof(num), "%.17g", json_real_value(v));
			hf_kvlist_set(out, k, num);
		} else if (json_is_boolean(v)) {
			hf_kvlist_set(out, k, json_is_true(v) ? "true" : "false");
		} else {
			*bad = k;
			return false;
		}
	}
	return true;
}

static void spec_error(struct hf_http_resp *resp, int status,
		       const char *code, const char *what,
		       const struct hf_diags *d)
{
	json_t *body;
	const struct hf_diag *first = NULL;

	for (size_t i = 0; i < d->len && !first; i++)
		if (d->items[i].level == HF_DIAG_ERROR)
			first = &d->items[i];
	body = json_pack("{s:s, s:s++, s:o}", "error", code, "message", what,
			 first ? ": " : "", first ? first->msg : "",
			 "diagnostics", hf_diags_to_json(d));
	hf_http_json(resp, status, body);
}

/*
 * Reads {"spec", "file", "options", "templates"} into a new config.
 * Answers the request and returns NULL when it is not usable.
 */
static struct hf_config *config_from_body(const struct hf_http_req *req,
					  struct hf_http_resp *resp)
{
	struct hf_config *cfg = NULL;
	struct hf_diags d = {0};
	json_t *body = NULL;
	const char *bad = NULL;
	const char *text;

	if (hf_http_body_json(req, resp, &body))
		return NULL;
	text = json_string_value(json_object_get(body, "spec"));
	if (!json_is_object(body) || !text) {
		hf_http_error(resp, HF_EINVAL,
			      "the body needs \"spec\": the service spec text");
		goto out;
	}
	cfg = hf_xcalloc(1, sizeof(*cfg));
	cfg->text = hf_xstrdup(text);
	if (json_is_string(json_object_get(body, "file")))
		cfg->file = hf_xstrdup(
		    json_string_value(json_object_get(body, "file")));
	if (!json_to_kv(json_object_get(body, "options"), &cfg->options, false,
			&bad) ||
	    !json_to_kv(json_object_get(body, "templates"), &cfg->templates,
			false, &bad)) {
		hf_http_error(resp, HF_EINVAL,
			      "options and templates are objects of strings; "
			      "'%s' is not",
			      bad);
		goto fail;
	}
	cfg->created = hf_now_ms();
	if (hf_state_config_load(cfg, &d)) {
		spec_error(resp, 400, "invalid-spec", "the service spec is invalid",
			   &d);
		goto fail;
	}
	hf_diags_release(&d);
	if (hf_spec_check_supported(cfg->spec, &d)) {
		spec_error(resp, 422, "not-supported",
			   "the spec uses what holdfast does not support yet",
			   &d);
		goto fail;
	}
	for (size_t p = 0; p < cfg->spec->plans.len; p++) {
		const struct hf_spec_plan *pl = &cfg->spec->plans.items[p];

		for (size_t k = 0; k < pl->phases.len; k++) {
			const struct hf_spec_phase *ph = &pl->phases.items[k];

			if (ph->pod && !hf_spec_find_pod(cfg->spec, ph->pod)) {
				hf_http_error(resp, HF_ESPEC,
					      "plan '%s' phase '%s' refers to "
					      "pod '%s', which the spec does not "
					      "declare",
					      pl->name, ph->name, ph->pod);
				goto fail;
			}
		}
	}
	goto out;
fail:
	hf_state_config_free(cfg);
	cfg = NULL;
out:
	hf_diags_release(&d);
	json_decref(body);
	return cfg;
}

static void h_services_deploy(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_config *cfg = config_from_body(req, resp);
	struct hf_service *svc;
	char id[16];

	if (!cfg)
		return;
	hf_state_lock(s);
	svc = hf_state_service(s, cfg->spec->name);
	if (svc) {
		hf_http_error(resp, HF_EEXISTS,
			      svc->removing
				  ? "service '%s' is being removed; deploy it "
				    "again once it is gone"
				  : "service '%s' already exists; use an update "
				    "to change it",
			      svc->name);
		hf_state_config_free(cfg);
		goto out;
	}
	svc = hf_xcalloc(1, sizeof(*svc));
	svc->name = hf_xstrdup(cfg->spec->name);
	svc->created = hf_now_ms();
	snprintf(id, sizeof(id), "%u", 1u);
	cfg->id = hf_xstrdup(id);
	svc->next_config = 2;
	svc->target = hf_xstrdup(id);
	*HF_VEC_PUSH(&svc->configs) = cfg;
	*HF_VEC_PUSH(&s->services) = svc;
	/* The config first: a service record never points at nothing. */
	hf_state_save_config(s, svc, cfg);
	hf_state_save_service(s, svc);
	hf_sched_start_plan(s, svc, "deploy", NULL);
	hf_log("service %s: deployed config %s", svc->name, cfg->id);
	hf_event(s, "operator", svc->name, "service", svc->name, NULL,
		 "deployed", cfg->file);
	{
		json_t *o = json_pack("{s:s, s:s, s:s}", "name", svc->name,
				      "config_id", cfg->id, "plan", "deploy");
		json_t *kept = kept_json(s, svc->name, NULL);

		/*
		 * Volumes an earlier service of this name left: its
		 * instances reuse them where they are placed on their node.
		 */
		if (json_array_size(kept))
			json_object_set_new(o, "kept_volumes", kept);
		else
			json_decref(kept);
		hf_http_json(resp, 201, o);
	}
out:
	hf_state_unlock(s);
}

static json_t *diff_response(const struct hf_spec_diff *d, bool changed,
			     const char *from, const char *to)
{
	json_t *o = hf_spec_diff_to_json(d);

	json_object_set_new(o, "changed", json_boolean(changed));
	json_object_set_new(o, "from", str_or_null(from));
	json_object_set_new(o, "to", str_or_null(to));
	return o;
}

/*
 * PUT /v1/services/{svc} (update) and POST .../diff (dry run): the new
 * spec is diffed against the target; a refused change leaves everything
 * as it was and says every reason.
 */
static void update_or_diff(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp, bool apply)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_config *cfg = config_from_body(req, resp);
	struct hf_spec_diff d = {0};
	struct hf_service *svc;
	struct hf_config *cur;
	char id[16];

	if (!cfg)
		return;
	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto drop;
	if (strcmp(cfg->spec->name, svc->name) != 0) {
		hf_http_error(resp, HF_EREFUSED,
			      "the spec is for service '%s', not '%s'; a "
			      "service's name cannot change",
			      cfg->spec->name, svc->name);
		goto drop;
	}
	if (svc->removing) {
		hf_http_error(resp, HF_ECONFLICT, "service '%s' is being removed",
			      svc->name);
		goto drop;
	}
	cur = hf_state_target(svc);
	if (!cur || !cur->spec) {
		hf_http_error(resp, HF_EINTERNAL,
			      "service '%s' has no usable target configuration",
			      svc->name);
		goto drop;
	}
	hf_spec_diff(cur->spec, cfg->spec, &d);
	if (d.refusals.len) {
		json_t *body = diff_response(&d, false, cur->id, NULL);

		json_object_set_new(body, "error", json_string("refused"));
		json_object_set_new(
		    body, "message",
		    json_sprintf("the change is refused: %s%s",
				 d.refusals.items[0],
				 d.refusals.len > 1 ? " (and more)" : ""));
		hf_http_json(resp, apply ? 409 : 200, body);
		goto drop;
	}
	if (!apply || hf_spec_diff_is_empty(&d)) {
		hf_http_json(resp, 200,
			     diff_response(&d, false, cur->id, NULL));
		goto drop;
	}
	snprintf(id, sizeof(id), "%u", svc->next_config++);
	cfg->id = hf_xstrdup(id);
	*HF_VEC_PUSH(&svc->configs) = cfg;
	hf_state_save_config(s, svc, cfg);
	hf_event(s, "operator", svc->name, "service", svc->name, cur->id, id,
		 "update");
	hf_http_json(resp, 200, diff_response(&d, true, cur->id, id));
	hf_sched_set_target(s, svc, cfg, false);
	cfg = NULL;
drop:
	hf_state_config_free(cfg);
	hf_spec_diff_release(&d);
	hf_state_unlock(s);
}

static void h_service_update(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	update_or_diff(ctx, req, resp, true);
}

static void h_service_diff(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	update_or_diff(ctx, req, resp, false);
}

static void h_service_rollback(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *to = hf_kvlist_get(&req->query, "to");
	struct hf_spec_diff d = {0};
	struct hf_service *svc;
	struct hf_config *cur, *dst;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	cur = hf_state_target(svc);
	if (!to)
		to = svc->previous;
	dst = to ? hf_state_config(svc, to) : NULL;
	if (!dst || !dst->spec || !cur || !cur->spec) {
		hf_http_error(resp, to ? HF_ENOTFOUND : HF_ECONFLICT,
			      to ? "service '%s' has no usable configuration "
				   "'%s'"
				 : "service '%s' has no previous configuration "
				   "to roll back to%s",
			      svc->name, to ? to : "");
		goto out;
	}
	if (strcmp(dst->id, cur->id) == 0) {
		hf_http_error(resp, HF_ECONFLICT,
			      "configuration %s is already the target", dst->id);
		goto out;
	}
	hf_spec_diff(cur->spec, dst->spec, &d);
	if (d.refusals.len) {
		json_t *body = diff_response(&d, false, cur->id, NULL);

		json_object_set_new(body, "error", json_string("refused"));
		json_object_set_new(body, "message",
				    json_sprintf("the rollback is refused: %s",
						 d.refusals.items[0]));
		hf_http_json(resp, 409, body);
		goto out;
	}
	hf_event(s, "operator", svc->name, "service", svc->name, cur->id,
		 dst->id, "rollback");
	hf_http_json(resp, 200, diff_response(&d, true, cur->id, dst->id));
	hf_sched_set_target(s, svc, dst, true);
out:
	hf_spec_diff_release(&d);
	hf_state_unlock(s);
}

static void h_service_remove(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;
	json_t *vols;

	hf_state_lock(s);
	svc = hf_state_service(s, hf_kvlist_get(&req->params, "svc"));
	if (!svc) {
		/*
		 * Removed before with its volumes kept: a remove with
		 * --delete-volumes deletes them now.
		 */
		const char *name = hf_kvlist_get(&req->params, "svc");
		bool del = hf_http_query_bool(req, "delete_volumes", false);
		json_t *gone = json_array();

		if (del && hf_sched_delete_kept(s, name, NULL, gone, "operator")) {
			hf_http_json(resp, 202,
				     json_pack("{s:s, s:b, s:b, s:o}", "name",
					       name, "delete_volumes", 1,
					       "already_removed", 1, "volumes",
					       gone));
			goto out;
		}
		json_decref(gone);
		gone = kept_json(s, name, NULL);
		if (!del && json_array_size(gone)) {
			json_decref(gone);
			hf_http_error(resp, HF_ENOTFOUND,
				      "service '%s' was already removed; its "
				      "volumes are kept (remove with "
				      "--delete-volumes, or 'holdfast volume "
				      "delete %s', deletes them)",
				      name, name);
			goto out;
		}
		json_decref(gone);
		route_service(s, req, resp);
		goto out;
	}
	svc->removing = true;
	svc->delete_volumes = hf_http_query_bool(req, "delete_volumes", false);
	hf_state_save_service(s, svc);
	vols = json_array();
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		char *key;

		if (!in->node)
			continue;
		key = hf_sched_instance_volume_key(svc, in);
		json_array_append_new(vols, json_pack("{s:s, s:s, s:s}",
						      "instance", in->name,
						      "node", in->node, "key",
						      key));
		free(key);
	}
	hf_log("service %s: removal requested (%s volumes)", svc->name,
	       svc->delete_volumes ? "deleting" : "keeping");
	hf_event(s, "operator", svc->name, "service", svc->name, "active",
		 "removing",
		 svc->delete_volumes ? "delete volumes" : "keep volumes");
	hf_sched_changed(s, true);
	hf_http_json(resp, 202,
		     json_pack("{s:s, s:b, s:o}", "name", svc->name,
			       "delete_volumes", svc->delete_volumes,
			       "volumes", vols));
out:
	hf_state_unlock(s);
}

/* ------------------------------------------------------------------ */
/* Volumes                                                              */

/*
 * GET /v1/volumes[?service=S]: every pod instance volume directory the
 * server knows of: in use by an instance, kept (no instance owns it), or
 * being deleted. The home of replicated volumes to come.
 */
static void h_volumes_list(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *only = hf_kvlist_get(&req->query, "service");
	json_t *a;

	hf_state_lock(s);
	a = json_array();
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		if (only && strcmp(only, svc->name) != 0)
			continue;
		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			char *key;

			if (!in->node)
				continue;
			key = hf_sched_instance_volume_key(svc, in);
			json_array_append_new(
			    a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key,
					 "service", svc->name, "instance",
					 in->name, "node", in->node, "status",
					 svc->removing ? "in use (service being "
							 "removed)"
						       : "in use"));
			free(key);
		}
	}
	{
		json_t *kept = kept_json(s, only, NULL);

		json_array_extend(a, kept);
		json_decref(kept);
	}
	for (size_t k = 0; k < s->nodes.len; k++) {
		const struct hf_node *n = s->nodes.items[k];

		for (size_t i = 0; i < n->delete_volumes.len; i++) {
			const char *key = n->delete_volumes.items[i];
			char *name, *inst;

			if (only && !hf_sched_volume_of(key, only, NULL))
				continue;
			key_names(key, &name, &inst);
			json_array_append_new(
			    a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", key,
					 "service", name, "instance", inst,
					 "node", n->id, "status", "deleting"));
			free(name);
			free(inst);
		}
	}
	hf_state_unlock(s);
	hf_http_json(resp, 200, a);
}

/*
 * DELETE /v1/volumes/{svc}[/{pod}]: deletes kept volumes (of one instance,
 * or all of a service). Volumes in use are not touched: a pod replace or
 * a service remove --delete-volumes deletes those.
 */
static void h_volume_delete(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "svc");
	const char *inst = hf_kvlist_get(&req->params, "pod");
	struct hf_service *svc;
	json_t *gone;

	hf_state_lock(s);
	gone = json_array();
	if (hf_sched_delete_kept(s, name, inst, gone, "operator")) {
		hf_http_json(resp, 202, json_pack("{s:o}", "deleting", gone));
		goto out;
	}
	json_decref(gone);
	svc = hf_state_service(s, name);
	if (svc && svc->removing)
		hf_http_error(resp, HF_ECONFLICT,
			      "service '%s' is still being removed: its volumes "
			      "are kept once it is gone ('holdfast service "
			      "remove %s --wait' waits for that); 'holdfast "
			      "service remove %s --delete-volumes' deletes them "
			      "instead",
			      name, name, name);
	else if (svc && (!inst || hf_state_instance(svc, inst)))
		hf_http_error(resp, HF_ECONFLICT,
			      "the volumes of %s%s%s are in use by the deployed "
			      "service; 'holdfast service remove %s "
			      "--delete-volumes' (or 'pod replace') deletes them",
			      name, inst ? "/" : "", inst ? inst : "", name);
	else
		hf_http_error(resp, HF_ENOTFOUND, "no kept volume %s%s%s",
			      name, inst ? "/" : "", inst ? inst : "");
out:
	hf_state_unlock(s);
}

/* ------------------------------------------------------------------ */
/* Plans                                                                */

static void h_plans_list(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;
	struct hf_config *cfg;
	json_t *a;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	a = json_array();
	cfg = hf_state_target(svc);
	for (size_t i = 0; cfg && i < cfg->plans.len; i++)
		json_array_append_new(a, json_string(cfg->plans.items[i].name));
	json_array_append_new(a, json_string("recovery"));
	json_array_append_new(a, json_string("decommission"));
	hf_http_json(resp, 200, a);
out:
	hf_state_unlock(s);
}

static json_t *plan_json(struct hf_plan_view *v, const char *plan)
{
	json_t *phases = json_array();
	json_t *errors = json_array();
	size_t base = 0;

	for (size_t p = 0; p < v->def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &v->def->phases.items[p];
		json_t *steps = json_array();

		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_step_out *o = &v->steps[base + k];
			const char *msg = v->messages[base + k];
			char *id = hf_xasprintf("%s/%s/%s", plan, ph->name,
						ph->steps.items[k].name);

			json_array_append_new(
			    steps,
			    json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name",
				      ph->steps.items[k].name, "status",
				      hf_status_name(o->status), "message",
				      msg ? msg : ""));
			if (o->status == HF_STATUS_ERROR)
				json_array_append_new(
				    errors,
				    json_sprintf("%s: %s", ph->steps.items[k].name,
						 msg ? msg : "failed"));
			free(id);
		}
		json_array_append_new(
		    phases,
		    json_pack("{s:s++, s:s, s:s, s:s, s:s, s:o}", "id", plan, "/",
			      ph->name, "name", ph->name, "pod", ph->pod,
			      "status", hf_status_name(v->phases[p].status),
			      "strategy", hf_strategy_name(ph->strategy),
			      "steps", steps));
		base += ph->steps.len;
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", plan, "status",
			 hf_status_name(v->status), "strategy",
			 hf_strategy_name(v->def->strategy), "phases", phases,
			 "errors", errors);
}

/* The operator's overrides and parameters of a run, secrets hidden. */
static void add_overrides(json_t *o, const struct hf_plan_run *run)
{
	json_t *params = json_object(), *fc = json_array(), *ip = json_array();

	if (run) {
		for (size_t i = 0; i < run->params.len; i++)
			json_object_set_new(params, run->params.items[i].key,
					    json_string(run->params.items[i].value));
		for (size_t i = 0; i < run->force_complete.len; i++)
			json_array_append_new(
			    fc, json_string(run->force_complete.items[i]));
		for (size_t i = 0; i < run->interrupted_phases.len; i++)
			json_array_append_new(
			    ip, json_string(run->interrupted_phases.items[i]));
	}
	redact(params);
	json_object_set_new(o, "parameters", params);
	json_object_set_new(o, "interrupted",
			    json_boolean(run && run->interrupted));
	json_object_set_new(o, "interrupted_phases", ip);
	json_object_set_new(o, "force_complete", fc);
	json_object_set_new(o, "run",
			    json_integer(run ? (json_int_t)run->number : 0));
}

/* The SDK answers plan queries with the status as the HTTP code. */
static int plan_http_status(enum hf_status st)
{
	if (st == HF_STATUS_COMPLETE)
		return 200;
	if (st == HF_STATUS_ERROR)
		return 417;
	return 202;
}

static void h_plan_get(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *plan = hf_kvlist_get(&req->params, "plan");
	struct hf_service *svc;
	struct hf_plan_view v;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	if (hf_sched_plan_view(s, svc, plan, &v)) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' has no plan '%s'", svc->name, plan);
		goto out;
	}
	{
		json_t *j = plan_json(&v, plan);

		add_overrides(j, hf_state_run(svc, plan));
		hf_http_json(resp, plan_http_status(v.status), j);
	}
	hf_plan_view_release(&v);
out:
	hf_state_unlock(s);
}

/* Finds a phase (by name) in a plan definition; -1 if absent. */
static long phase_index(const struct hf_plan_def *def, const char *name)
{
	for (size_t p = 0; name && p < def->phases.len; p++)
		if (strcmp(def->phases.items[p].name, name) == 0)
			return (long)p;
	return -1;
}

/* Resolves ?phase=&step= against a plan; answers 404 on failure. */
static bool find_step(const struct hf_plan_def *def,
		      const struct hf_http_req *req, struct hf_http_resp *resp,
		      const struct hf_plan_phase_def **ph_out,
		      const struct hf_plan_step_def **st_out)
{
	const char *phase = hf_kvlist_get(&req->query, "phase");
	const char *step = hf_kvlist_get(&req->query, "step");
	long p = phase_index(def, phase);

	if (!phase || !step) {
		hf_http_error(resp, HF_EINVAL,
			      "this call needs ?phase=NAME&step=NAME");
		return false;
	}
	if (p < 0) {
		hf_http_error(resp, HF_ENOTFOUND, "plan '%s' has no phase '%s'",
			      def->name, phase);
		return false;
	}
	*ph_out = &def->phases.items[p];
	for (size_t k = 0; k < (*ph_out)->steps.len; k++) {
		const struct hf_plan_step_def *st = &(*ph_out)->steps.items[k];
		char *id = hf_xasprintf("%s/%s/%s", def->name, phase, st->name);
		bool match = strcmp(st->name, step) == 0 || strcmp(id, step) == 0;

		free(id);
		if (match) {
			*st_out = st;
			return true;
		}
	}
	hf_http_error(resp, HF_ENOTFOUND, "phase '%s' has no step '%s'", phase,
		      step);
	return false;
}

/*
 * The continues a canary phase still needs: one lets its first step go,
 * a second the rest once the first is complete (plan/engine.c). *next is
 * the step the next one lets go (-1 when none is needed).
 */
static int canary_left(const struct hf_plan_phase_def *ph,
		       const struct hf_step_out *steps, int continues,
		       long *next)
{
	bool first_done, rest_left = false;
	int need, left;

	*next = -1;
	if (ph->strategy != HF_STRATEGY_SERIAL_CANARY &&
	    ph->strategy != HF_STRATEGY_PARALLEL_CANARY)
		return 0;
	if (!ph->steps.len)
		return 0;
	first_done = steps[0].status == HF_STATUS_COMPLETE;
	for (size_t i = 1; i < ph->steps.len; i++)
		if (steps[i].status != HF_STATUS_COMPLETE)
			rest_left = true;
	need = rest_left ? 2 : first_done ? 0 : 1;
	left = need > continues ? need - continues : 0;
	if (!left)
		return 0;
	if (continues < 1 && !first_done) {
		*next = 0;
	} else {
		for (size_t i = 1; i < ph->steps.len && *next < 0; i++)
			if (steps[i].status != HF_STATUS_COMPLETE)
				*next = (long)i;
	}
	return left;
}

static int run_continues(const struct hf_plan_run *run, const char *phase)
{
	const char *c = hf_kvlist_get(&run->continues, phase);

	return c ? atoi(c) : 0;
}

/*
 * The canary gates a run still has, after its view v: [{phase, step,
 * continues_left}], and their sum in *total.
 */
static json_t *canary_gates(const struct hf_plan_def *def,
			    const struct hf_plan_run *run,
			    const struct hf_plan_view *v, int *total)
{
	json_t *a = json_array();
	size_t base = 0;

	*total = 0;
	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		long next;
		int left = canary_left(ph, &v->steps[base],
				       run_continues(run, ph->name), &next);

		if (left) {
			json_array_append_new(
			    a, json_pack("{s:s, s:s, s:i, s:s}", "phase",
					 ph->name, "step",
					 ph->steps.items[next].name,
					 "continues_left", left, "waits_for",
					 next == 0 ? "a continue"
						   : "its first step to "
						     "complete and a continue"));
			*total += left;
		}
		base += ph->steps.len;
	}
	return a;
}

/*
 * POST .../continue: resumes an interrupted plan or phase, or lets the
 * first canary phase that waits for a continue (or the named one) go on.
 * The answer says what it let go and which gates remain; a continue that
 * would change nothing (a COMPLETE plan, nothing interrupted, no gate) is
 * refused so that it does not look like progress. Returns the answer, or
 * NULL after answering an error.
 */
static json_t *plan_continue(struct hf_srv *s, struct hf_service *svc,
			     const struct hf_plan_def *def,
			     struct hf_plan_run *run, const char *phase,
			     struct hf_http_resp *resp)
{
	struct hf_plan_view v;
	json_t *did = json_array(), *gates, *reply;
	bool whole = run->interrupted;
	bool ph_int = phase && hf_strlist_has(&run->interrupted_phases, phase);
	long gate_phase = -1, gate_step = -1;
	enum hf_status before;
	int total;
	size_t base = 0;

	if (hf_sched_plan_view(s, svc, def->name, &v))
		return NULL;
	before = v.status;
	for (size_t p = 0; p < def->phases.len && gate_phase < 0; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		long next;

		if ((!phase || strcmp(ph->name, phase) == 0) &&
		    canary_left(ph, &v.steps[base],
				run_continues(run, ph->name), &next)) {
			gate_phase = (long)p;
			gate_step = next;
		}
		base += ph->steps.len;
	}
	hf_plan_view_release(&v);
	/* A run that stopped short (a newer config's plan took over). */
	if (!run->active && before != HF_STATUS_COMPLETE)
		whole = true;
	if (before == HF_STATUS_COMPLETE && !run->interrupted && !ph_int) {
		json_decref(did);
		hf_http_error(resp, HF_ECONFLICT,
			      "plan '%s' is already COMPLETE: there is nothing "
			      "to continue",
			      def->name);
		return NULL;
	}
	if (!whole && !ph_int && gate_phase < 0) {
		json_decref(did);
		hf_http_error(resp, HF_ECONFLICT,
			      "plan '%s' is %s: %s is not interrupted and no "
			      "canary step waits for a continue",
			      def->name, hf_status_name(before),
			      phase ? "the phase" : "it");
		return NULL;
	}
	if (run->interrupted)
		json_array_append_new(did,
				      json_string("the plan is no longer "
						  "interrupted"));
	else if (whole)
		json_array_append_new(did, json_string("the plan runs again"));
	run->interrupted = false;
	run->active = true;
	if (ph_int) {
		struct hf_strlist keep = {0};

		for (size_t i = 0; i < run->interrupted_phases.len; i++)
			if (strcmp(run->interrupted_phases.items[i], phase) != 0)
				hf_strlist_push(&keep,
						run->interrupted_phases.items[i]);
		hf_strlist_release(&run->interrupted_phases);
		run->interrupted_phases = keep;
		json_array_append_new(did,
				      json_sprintf("phase %s is no longer "
						   "interrupted",
						   phase));
	}
	if (gate_phase >= 0) {
		const struct hf_plan_phase_def *ph =
		    &def->phases.items[gate_phase];
		int c = run_continues(run, ph->name) + 1;
		char num[16];

		snprintf(num, sizeof(num), "%d", c);
		hf_kvlist_set(&run->continues, ph->name, num);
		if (gate_step == 0)
			json_array_append_new(
			    did, json_sprintf("canary gate %d of %d in phase %s "
					      "passed: %s goes",
					      c, ph->steps.len > 1 ? 2 : 1,
					      ph->name, ph->steps.items[0].name));
		else
			json_array_append_new(
			    did,
			    json_sprintf("canary gate %d of 2 in phase %s "
					 "passed: %s%s go%s once %s is complete",
					 c, ph->name,
					 ph->steps.items[gate_step].name,
					 ph->steps.len > 2 ? " and the rest" : "",
					 ph->steps.len > 2 ? "" : "es",
					 ph->steps.items[0].name));
	}
	if (hf_sched_plan_view(s, svc, def->name, &v) == 0) {
		gates = canary_gates(def, run, &v, &total);
		reply = json_pack("{s:s, s:s, s:s, s:o, s:o, s:i}", "message",
				  "ok", "plan", def->name, "status",
				  hf_status_name(v.status), "continued", did,
				  "gates", gates, "continues_needed", total);
		hf_plan_view_release(&v);
	} else {
		reply = json_pack("{s:s, s:s, s:o}", "message", "ok", "plan",
				  def->name, "continued", did);
	}
	return reply;
}

enum plan_op {
	OP_START,
	OP_STOP,
	OP_INTERRUPT,
	OP_CONTINUE,
	OP_FORCE_COMPLETE,
	OP_RESTART,
};

static void plan_op(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp, enum plan_op op)
{
	struct hf_srv *s = srv_of(ctx);
	const char *plan = hf_kvlist_get(&req->params, "plan");
	const char *phase = hf_kvlist_get(&req->query, "phase");
	struct hf_kvlist params = {0};
	struct hf_service *svc;
	struct hf_config *cfg;
	const struct hf_plan_def *def;
	struct hf_plan_run *run;
	json_t *body = NULL, *reply = NULL;
	const char *bad = NULL;

	if (op == OP_START && req->body_len) {
		if (hf_http_body_json(req, resp, &body))
			return;
		if (!json_to_kv(body, &params, true, &bad)) {
			hf_http_error(resp, HF_EINVAL,
				      "plan parameters are an object of "
				      "environment variables; '%s' is not a "
				      "valid name or value",
				      bad);
			goto done;
		}
	}
	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	cfg = hf_state_target(svc);
	def = cfg ? hf_plan_defs_find(&cfg->plans, plan) : NULL;
	if (!def && strcmp(plan, "decommission") == 0 &&
	    op == OP_FORCE_COMPLETE) {
		const char *step = hf_kvlist_get(&req->query, "step");
		char *inst = step ? hf_xstrndup(step, strcspn(step, ":")) : NULL;

		if (inst && hf_sched_skip_drain(s, svc, inst))
			hf_http_json(resp, 200,
				     json_pack("{s:s, s:s}", "message",
					       "the instance is removed without "
					       "a drain; its volumes are kept",
					       "plan", plan));
		else
			hf_http_error(resp, HF_ENOTFOUND,
				      "no instance is being decommissioned as "
				      "'%s'",
				      step ? step : "");
		free(inst);
		goto out;
	}
	if (!def) {
		hf_http_error(resp, HF_ENOTFOUND, "service '%s' has no plan '%s'",
			      svc->name, plan);
		goto out;
	}
	if (phase && phase_index(def, phase) < 0) {
		hf_http_error(resp, HF_ENOTFOUND, "plan '%s' has no phase '%s'",
			      plan, phase);
		goto out;
	}
	if (svc->removing) {
		hf_http_error(resp, HF_ECONFLICT, "service '%s' is being removed",
			      svc->name);
		goto out;
	}
	run = hf_state_run(svc, plan);
	switch (op) {
	case OP_START:
		hf_sched_start_plan(s, svc, plan, &params);
		break;
	case OP_STOP:
		if (!run) {
			hf_http_error(resp, HF_ECONFLICT,
				      "plan '%s' is not running", plan);
			goto out;
		}
		run->active = false;
		run->interrupted = true;
		hf_strlist_release(&run->completed);
		break;
	case OP_INTERRUPT:
		if (!run) {
			hf_http_error(resp, HF_ECONFLICT,
				      "plan '%s' has not been started", plan);
			goto out;
		}
		if (phase) {
			if (!hf_strlist_has(&run->interrupted_phases, phase))
				hf_strlist_push(&run->interrupted_phases, phase);
		} else {
			run->interrupted = true;
		}
		break;
	case OP_CONTINUE:
		if (!run) {
			hf_http_error(resp, HF_ECONFLICT,
				      "plan '%s' has not been started", plan);
			goto out;
		}
		reply = plan_continue(s, svc, def, run, phase, resp);
		if (!reply)
			goto out;
		break;
	case OP_FORCE_COMPLETE:
	case OP_RESTART: {
		const struct hf_plan_phase_def *ph;
		const struct hf_plan_step_def *st;
		char *key;

		if (!find_step(def, req, resp, &ph, &st))
			goto out;
		if (!run) {
			hf_sched_start_plan(s, svc, plan, NULL);
			run = hf_state_run(svc, plan);
		}
		key = hf_xasprintf("%s/%s", ph->name, st->name);
		if (op == OP_FORCE_COMPLETE) {
			if (!hf_strlist_has(&run->force_complete, key))
				hf_strlist_push(&run->force_complete, key);
		} else {
			struct hf_strlist keep = {0};
			char *iname = hf_xasprintf("%s-%lld", st->pod,
						   (long long)st->index);
			struct hf_instance *in = hf_state_instance(svc, iname);

			free(iname);
			for (size_t i = 0; i < run->completed.len; i++)
				if (strcmp(run->completed.items[i], key) != 0)
					hf_strlist_push(&keep,
							run->completed.items[i]);
			hf_strlist_release(&run->completed);
			run->completed = keep;
			keep = (struct hf_strlist){0};
			for (size_t i = 0; i < run->force_complete.len; i++)
				if (strcmp(run->force_complete.items[i], key) != 0)
					hf_strlist_push(
					    &keep, run->force_complete.items[i]);
			hf_strlist_release(&run->force_complete);
			run->force_complete = keep;
			for (size_t t = 0; in && t < st->tasks.len; t++) {
				struct hf_task_slot *sl =
				    hf_state_slot(in, st->tasks.items[t]);

				sl->once_done = false;
				if (sl->cur && hf_task_state_live(sl->cur->state)) {
					sl->cur->kill = true;
					sl->cur->restart = false;
				} else if (sl->cur) {
					/* Forget the old result: run it again. */
					hf_task_rec_free(sl->cur);
					sl->cur = NULL;
				}
			}
			if (in)
				hf_state_save_instance(s, svc, in);
		}
		run->active = true;
		free(key);
		break;
	}
	}
	if (run)
		hf_state_save_run(s, svc, run);
	{
		static const char *const ops[] = {"start", "stop", "interrupt",
						  "continue", "forceComplete",
						  "restart"};
		char *obj = hf_xasprintf(
		    "%s%s%s%s%s", plan, phase ? "/" : "", phase ? phase : "",
		    hf_kvlist_get(&req->query, "step") ? "/" : "",
		    hf_kvlist_get(&req->query, "step")
			? hf_kvlist_get(&req->query, "step")
			: "");

		hf_event(s, "operator", svc->name, "plan", obj, NULL, ops[op],
			 NULL);
		free(obj);
	}
	hf_sched_changed(s, true);
	if (!reply)
		reply = json_pack("{s:s, s:s}", "message", "ok", "plan", plan);
	hf_http_json(resp, 200, reply);
out:
	hf_state_unlock(s);
done:
	hf_kvlist_release(&params);
	json_decref(body);
}

static void h_plan_start(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_START);
}
static void h_plan_stop(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_STOP);
}
static void h_plan_interrupt(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_INTERRUPT);
}
static void h_plan_continue(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_CONTINUE);
}
static void h_plan_force(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_FORCE_COMPLETE);
}
static void h_plan_restart(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	plan_op(ctx, req, resp, OP_RESTART);
}

/* ------------------------------------------------------------------ */
/* Pods and nodes                                                       */

/*
 * The instances the target asks for that have no record yet (their plan
 * step has not started), as pod status entries saying what they wait
 * for. Returns whether `only` was among them.
 */
static bool add_unplaced(struct hf_srv *s, struct hf_service *svc,
			 const char *only, json_t *pods)
{
	struct hf_config *cfg = hf_state_target(svc);
	struct hf_strlist missing = {0}, whys = {0};
	struct hf_map index = {0}; /* name -> its position in missing + 1 */
	size_t *why_of;            /* per missing: position in whys + 1 */

	if (!cfg || !cfg->spec || svc->removing)
		return false;
	for (size_t p = 0; p < cfg->spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &cfg->spec->pods.items[p];

		for (int64_t i = 0; i < pod->count; i++) {
			char *name = hf_xasprintf("%s-%lld", pod->name,
						  (long long)i);

			if (!hf_state_instance(svc, name) &&
			    (!only || strcmp(only, name) == 0))
				hf_strlist_push(&missing, name);
			free(name);
		}
	}
	if (!missing.len)
		return false;
	why_of = hf_xcalloc(missing.len, sizeof(*why_of));
	for (size_t i = 0; i < missing.len; i++)
		hf_map_put(&index, missing.items[i], (void *)(uintptr_t)(i + 1));
	/* What each waits for: its first unfinished step of an active plan. */
	for (size_t r = 0; r < svc->runs.len; r++) {
		const struct hf_plan_run *run = &svc->runs.items[r];
		struct hf_plan_view v;
		size_t base = 0;

		if (!run->active || hf_sched_plan_view(s, svc, run->plan, &v))
			continue;
		for (size_t p = 0; p < v.def->phases.len; p++) {
			const struct hf_plan_phase_def *ph = &v.def->phases.items[p];

			for (size_t k = 0; k < ph->steps.len; k++) {
				const struct hf_plan_step_def *st =
				    &ph->steps.items[k];
				const char *m = v.messages[base + k];
				char *name = hf_xasprintf("%s-%lld", st->pod,
							  (long long)st->index);
				size_t at = (size_t)(uintptr_t)hf_map_get(
				    &index, name);

				free(name);
				if (!at || why_of[at - 1] ||
				    v.steps[base + k].status ==
					HF_STATUS_COMPLETE)
					continue;
				name = hf_xasprintf(
				    "not placed yet: its step %s of plan %s is "
				    "%s%s%s",
				    st->name, run->plan,
				    hf_status_name(v.steps[base + k].status),
				    m ? ": " : "", m ? m : "");
				hf_strlist_push(&whys, name);
				free(name);
				why_of[at - 1] = whys.len;
			}
			base += ph->steps.len;
		}
		hf_plan_view_release(&v);
	}
	for (size_t i = 0; i < missing.len; i++) {
		const char *name = missing.items[i];
		char *pod = hf_xstrndup(name, (size_t)(strrchr(name, '-') - name));

		json_array_append_new(
		    pods, json_pack("{s:s, s:s, s:n, s:b, s:b, s:s, s:b, s:b, "
				    "s:[]}",
				    "name", name, "pod", pod, "node", "placed",
				    0, "node_reachable", 0, "message",
				    why_of[i] ? whys.items[why_of[i] - 1]
					      : "not placed yet: no active plan "
						"has a step for it",
				    "paused", 0, "replacing", 0, "tasks"));
		free(pod);
	}
	free(why_of);
	hf_map_release(&index);
	hf_strlist_release(&missing);
	hf_strlist_release(&whys);
	return true;
}

static void pod_status(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp, const char *only)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;
	json_t *pods;
	bool found = false;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	pods = json_array();
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		json_t *tasks;

		if (only && strcmp(only, in->name) != 0)
			continue;
		found = true;
		tasks = json_array();
		for (size_t k = 0; k < in->slots.len; k++) {
			struct hf_task_slot *sl = &in->slots.items[k];
			char *name = hf_xasprintf("%s-%s", in->name, sl->task);

			json_array_append_new(
			    tasks,
			    json_pack("{s:s, s:o, s:s, s:b, s:I, s:o}", "name",
				      name, "id",
				      sl->cur ? json_string(sl->cur->id)
					      : json_null(),
				      "status",
				      sl->cur ? hf_task_state_name(sl->cur->state)
					      : "NOT_LAUNCHED",
				      "ready", sl->cur && sl->cur->ready,
				      "restarts", (json_int_t)sl->restarts,
				      "message",
				      sl->cur && sl->cur->message
					  ? json_string(sl->cur->message)
					  : json_null()));
			free(name);
		}
		{
			bool reach = hf_node_reachable(
			    s, hf_state_node(s, in->node), hf_now_ms());
			char *msg = in->node && !reach
					? hf_xasprintf("node %s is unreachable; "
						       "the pod waits for it",
						       in->node)
					: NULL;

			if (!in->node && !in->message)
				msg = hf_xstrdup("not placed yet");
			json_array_append_new(
			    pods,
			    json_pack("{s:s, s:s, s:o, s:b, s:b, s:o, s:b, s:b, "
				      "s:o}",
				      "name", in->name, "pod", in->pod, "node",
				      str_or_null(in->node), "placed",
				      in->node != NULL, "node_reachable",
				      reach, "message",
				      str_or_null(msg ? msg : in->message),
				      "paused", in->paused, "replacing",
				      in->replacing, "tasks", tasks));
			free(msg);
		}
	}
	found |= add_unplaced(s, svc, only, pods);
	if (only && !found) {
		json_decref(pods);
		hf_http_error(resp, HF_ENOTFOUND, "service '%s' has no pod '%s'",
			      svc->name, only);
		goto out;
	}
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:o}", "service", svc->name, "pods", pods));
out:
	hf_state_unlock(s);
}

static void h_pod_status(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	pod_status(ctx, req, resp, NULL);
}

static void h_pod_status_one(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	pod_status(ctx, req, resp, hf_kvlist_get(&req->params, "pod"));
}

static void h_pod_info(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "pod");
	struct hf_service *svc;
	struct hf_instance *in;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	in = hf_state_instance(svc, name);
	if (!in) {
		hf_http_error(resp, HF_ENOTFOUND, "service '%s' has no pod '%s'",
			      svc->name, name);
		goto out;
	}
	{
		json_t *j = hf_instance_to_json(in);

		redact(j);
		hf_http_json(resp, 200, j);
	}
out:
	hf_state_unlock(s);
}

enum pod_op { POD_RESTART, POD_REPLACE, POD_PAUSE, POD_RESUME };

static void pod_op(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp, enum pod_op op)
{
	static const char *const names[] = {"restart", "replace", "pause",
					    "resume"};
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "pod");
	struct hf_service *svc;
	struct hf_instance *in;
	json_t *tasks;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	in = hf_state_instance(svc, name);
	if (!in) {
		hf_http_error(resp, HF_ENOTFOUND, "service '%s' has no pod '%s'",
			      svc->name, name);
		goto out;
	}
	if (svc->removing || in->replacing) {
		hf_http_error(resp, HF_ECONFLICT, "%s is being %s", name,
			      svc->removing ? "removed" : "replaced");
		goto out;
	}
	if ((op == POD_PAUSE && in->paused) || (op == POD_RESUME && !in->paused)) {
		hf_http_error(resp, HF_ECONFLICT, "pod %s is %s paused", name,
			      in->paused ? "already" : "not");
		goto out;
	}
	tasks = json_array();
	for (size_t k = 0; k < in->slots.len; k++) {
		char *t = hf_xasprintf("%s-%s", in->name, in->slots.items[k].task);

		json_array_append_new(tasks, json_string(t));
		free(t);
	}
	switch (op) {
	case POD_RESTART:
		hf_sched_pod_restart(s, svc, in, "pod restart requested");
		break;
	case POD_REPLACE:
		in->replacing = true;
		break;
	case POD_PAUSE:
		in->paused = true;
		hf_sched_pod_restart(s, svc, in, "pod pause requested");
		break;
	case POD_RESUME:
		in->paused = false;
		hf_sched_pod_restart(s, svc, in, "pod resume requested");
		break;
	}
	hf_state_save_instance(s, svc, in);
	hf_log("service %s: pod %s %s requested", svc->name, name, names[op]);
	hf_event(s, "operator", svc->name, "pod", name, NULL, names[op], NULL);
	hf_sched_changed(s, true);
	hf_http_json(resp, 200, json_pack("{s:s, s:o}", "pod", name, "tasks",
					  tasks));
out:
	hf_state_unlock(s);
}

static void h_pod_restart(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, POD_RESTART);
}
static void h_pod_replace(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, POD_REPLACE);
}
static void h_pod_pause(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, POD_PAUSE);
}
static void h_pod_resume(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, POD_RESUME);
}

static void h_pod_list(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;
	json_t *a;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (svc) {
		a = json_array();
		for (size_t i = 0; i < svc->instances.len; i++)
			json_array_append_new(
			    a, json_string(svc->instances.items[i]->name));
		hf_http_json(resp, 200, a);
	}
	hf_state_unlock(s);
}

/*
 * Endpoints: an advertised port as address:port of every instance, and
 * (the SDK's "dns") as <node's host name>:port, for nodes whose agent
 * reported a host name. holdfast serves no DNS: these names resolve where
 * the nodes' host names do (your DNS or /etc/hosts).
 */
static json_t *endpoint_json(struct hf_srv *s, struct hf_service *svc,
			     const char *port_name)
{
	struct hf_config *cfg = hf_state_target(svc);
	json_t *addrs = json_array(), *dns = json_array();

	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		struct hf_node *n = hf_state_node(s, in->node);
		const char *num = hf_kvlist_get(&in->ports, port_name);
		const struct hf_spec_pod *pod =
		    cfg ? hf_spec_find_pod(cfg->spec, in->pod) : NULL;
		char *a;

		if (!num || !pod || in->index >= pod->count)
			continue;
		a = hf_xasprintf("%s:%s", n && n->address ? n->address : "127.0.0.1",
				 num);
		json_array_append_new(addrs, json_string(a));
		free(a);
		if (n && n->hostname && *n->hostname) {
			a = hf_xasprintf("%s:%s", n->hostname, num);
			json_array_append_new(dns, json_string(a));
			free(a);
		}
	}
	return json_pack("{s:o, s:o}", "address", addrs, "dns", dns);
}

static void advertised_ports(struct hf_config *cfg, struct hf_strlist *out)
{
	for (size_t p = 0; cfg && p < cfg->spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &cfg->spec->pods.items[p];

		for (size_t r = 0; r < pod->resource_sets.len; r++) {
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[r];

			for (size_t k = 0; k < rs->ports.len; k++)
				if (rs->ports.items[k].advertise &&
				    !hf_strlist_has(out, rs->ports.items[k].name))
					hf_strlist_push(out,
							rs->ports.items[k].name);
		}
	}
}

static void h_endpoints(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_strlist names = {0};
	struct hf_service *svc;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	advertised_ports(hf_state_target(svc), &names);
	if (!name) {
		json_t *a = json_array();

		for (size_t i = 0; i < names.len; i++)
			json_array_append_new(a, json_string(names.items[i]));
		hf_http_json(resp, 200, a);
	} else if (!hf_strlist_has(&names, name)) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' has no advertised port '%s'",
			      svc->name, name);
	} else {
		hf_http_json(resp, 200, endpoint_json(s, svc, name));
	}
out:
	hf_strlist_release(&names);
	hf_state_unlock(s);
}

/*
 * Values of variables whose names look secret are never shown: options
 * and env may carry passwords. The rule is the spec's, so that the diff's
 * change lines hide the same values.
 */
static bool secret_name(const char *k)
{
	return hf_spec_secret_name(k);
}

static void redact(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v)
		{
			if (json_is_string(v) && secret_name(k))
				json_object_set_new(j, k, json_string("(hidden)"));
			else
				redact(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) redact(v);
	}
}

static json_t *config_json(struct hf_config *cfg)
{
	json_t *o = cfg->spec ? hf_spec_to_json(cfg->spec) : json_object();
	json_t *opts = json_object();

	for (size_t i = 0; i < cfg->options.len; i++)
		json_object_set_new(opts, cfg->options.items[i].key,
				    json_string(cfg->options.items[i].value));
	json_object_set_new(o, "id", json_string(cfg->id));
	json_object_set_new(o, "options", opts);
	json_object_set_new(o, "created", json_integer(cfg->created));
	redact(o);
	return o;
}

static void h_configs(void *ctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *id = hf_kvlist_get(&req->params, "id");
	struct hf_service *svc;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	if (!id) {
		json_t *a = json_array();

		for (size_t i = 0; i < svc->configs.len; i++)
			json_array_append_new(
			    a, json_string(svc->configs.items[i]->id));
		hf_http_json(resp, 200, a);
	} else if (strcmp(id, "targetId") == 0) {
		hf_http_json(resp, 200, json_string(svc->target ? svc->target : ""));
	} else {
		struct hf_config *cfg = strcmp(id, "target") == 0
					    ? hf_state_target(svc)
					    : hf_state_config(svc, id);

		if (!cfg)
			hf_http_error(resp, HF_ENOTFOUND,
				      "service '%s' has no configuration '%s'",
				      svc->name, id);
		else
			hf_http_json(resp, 200, config_json(cfg));
	}
out:
	hf_state_unlock(s);
}

/*
 * Health, as the SDK answered it: 200 when deployed and every task the
 * service keeps running is up, 202 while deploying or recovering, 417 when
 * a plan is in ERROR.
 */
static void h_health(void *ctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_service *svc;
	struct hf_plan_view v;
	const char *deploy = "COMPLETE", *recovery = "COMPLETE";
	int code = 200;

	hf_state_lock(s);
	svc = route_service(s, req, resp);
	if (!svc)
		goto out;
	if (hf_sched_plan_view(s, svc, "deploy", &v) == 0) {
		deploy = hf_status_name(v.status);
		if (v.status == HF_STATUS_ERROR)
			code = 417;
		else if (v.status != HF_STATUS_COMPLETE)
			code = 202;
		hf_plan_view_release(&v);
	}
	if (hf_sched_plan_view(s, svc, "recovery", &v) == 0) {
		recovery = hf_status_name(v.status);
		if (v.status != HF_STATUS_COMPLETE && code == 200)
			code = 202;
		hf_plan_view_release(&v);
	}
	hf_http_json(resp, code,
		     json_pack("{s:s, s:s, s:s, s:s}", "service", svc->name,
			       "health",
			       code == 200   ? "HEALTHY"
			       : code == 417 ? "ERROR"
					     : "DEPLOYING_OR_RECOVERING",
			       "deploy", deploy, "recovery", recovery));
out:
	hf_state_unlock(s);
}

static void h_nodes(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	json_t *a = json_array();
	int64_t now = hf_now_ms();

	(void)req;
	hf_state_lock(s);
	for (size_t i = 0; i < s->nodes.len; i++) {
		struct hf_node *n = s->nodes.items[i];
		json_t *attrs = json_object();

		for (size_t k = 0; k < n->attributes.len; k++)
			json_object_set_new(attrs, n->attributes.items[k].key,
					    json_string(n->attributes.items[k].value));
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:o, s:o, s:o, s:{s:f, s:f, s:f, s:I, s:I}, "
			      "s:o, s:I, s:b}",
			      "id", n->id, "hostname", str_or_null(n->hostname),
			      "address", str_or_null(n->address), "attributes",
			      attrs, "resources", "cpus", n->cpus, "memory_mb",
			      n->memory_mb, "disk_mb", n->disk_mb, "port_begin",
			      (json_int_t)n->port_begin, "port_end",
			      (json_int_t)n->port_end, "cgroups",
			      str_or_null(n->cgroups), "last_seen",
			      (json_int_t)n->last_seen, "connected",
			      hf_node_reachable(s, n, now)));
		json_object_set_new(json_array_get(a, json_array_size(a) - 1),
				    "decommissioned",
				    json_boolean(n->decommissioned));
	}
	hf_cluster_list_refused(s, a);
	hf_state_unlock(s);
	hf_http_json(resp, 200, a);
}

/*
 * POST /v1/nodes/{node}/decommission: the node takes no new pods and every
 * pod instance on it is replaced elsewhere (permanent failure).
 */
static void h_node_decommission(void *ctx, const struct hf_http_req *req,
				struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *id = hf_kvlist_get(&req->params, "node");
	struct hf_node *n;
	json_t *moved;

	hf_state_lock(s);
	n = hf_state_node(s, id);
	if (!n) {
		hf_http_error(resp, HF_ENOTFOUND, "no node '%s'", id);
		goto out;
	}
	n->decommissioned = true;
	hf_state_save_node(s, n);
	moved = json_array();
	for (size_t i = 0; i < s->services.len; i++) {
		struct hf_service *svc = s->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			char *name;

			if (!in->node || strcmp(in->node, id) != 0)
				continue;
			name = hf_xasprintf("%s/%s", svc->name, in->name);
			json_array_append_new(moved, json_string(name));
			free(name);
		}
	}
	hf_log("node %s decommissioned by the operator", id);
	hf_event(s, "operator", NULL, "node", id, NULL, "decommissioned",
		 "its pods are replaced elsewhere");
	hf_sched_changed(s, true);
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:o}", "node", id, "replacing", moved));
out:
	hf_state_unlock(s);
}

static void h_leader(void *ctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);

	(void)req;
	hf_state_lock(s);
	hf_http_json(resp, 200,
		     json_pack("{s:o, s:s, s:b}", "leader",
			       s->leader_url ? json_string(s->leader_url)
					     : json_null(),
			       "self", s->opts.advertise ? s->opts.advertise : "",
			       "leading", s->leading));
	hf_state_unlock(s);
}

static void h_version(void *ctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	(void)ctx;
	(void)req;
	hf_http_json(resp, 200, json_pack("{s:s}", "version", HF_VERSION));
}

/*
 * GET /v1/store/backup: a consistent copy of the whole store as an SQLite
 * store file (hf_store_snapshot; `holdfast store backup`). Admin only: it
 * holds every secret. It reads the store, not the state, so any server
 * answers it, leading or not (server.c).
 */
static void h_store_backup(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	char *data = NULL;
	size_t len = 0;
	int rc;

	(void)req;
	rc = hf_store_snapshot(s->store, &data, &len);
	if (rc) {
		hf_http_error(resp, rc == HF_EUNAVAIL ? rc : HF_EIO,
			      "cannot copy the store: %s",
			      hf_store_last_error(s->store));
		return;
	}
	hf_http_text(resp, 200, "application/vnd.sqlite3", data, len);
	free(data);
}

/* ------------------------------------------------------------------ */
/* Agents                                                               */

static double num_or(const json_t *o, const char *k, double def)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : def;
}

static struct hf_node *node_update(struct hf_srv *s, const char *id,
				   const json_t *info)
{
	struct hf_node *n = hf_state_node(s, id);
	const json_t *res = json_object_get(info, "resources");
	const json_t *ports = json_array_get(json_object_get(res, "ports"), 0);
	const json_t *cg = json_object_get(info, "cgroups");
	int64_t started = (int64_t)num_or(info, "started_at", 0);
	bool fresh = false;

	if (!n) {
		n = hf_xcalloc(1, sizeof(*n));
		n->id = hf_xstrdup(id);
		n->port_begin = 10000;
		n->port_end = 20000;
		hf_state_node_add(s, n);
		fresh = true;
		hf_log("node %s registered", id);
		hf_event(s, "agent", NULL, "node", id, NULL, "registered", NULL);
	}
	if (json_is_object(info)) {
		const char *h = json_string_value(json_object_get(info, "hostname"));
		const char *a = json_string_value(json_object_get(info, "address"));
		const char *note = json_string_value(json_object_get(cg, "note"));
		const char *k;
		json_t *v;

		if (h && (!n->hostname || strcmp(h, n->hostname))) {
			free(n->hostname);
			n->hostname = hf_xstrdup(h);
			fresh = true;
		}
		if (a && (!n->address || strcmp(a, n->address))) {
			free(n->address);
			n->address = hf_xstrdup(a);
			fresh = true;
		}
		{
			const char *api =
			    json_string_value(json_object_get(info, "api"));
			const char *key =
			    json_string_value(json_object_get(info, "api_key"));

			if (api && (!n->api || strcmp(api, n->api))) {
				free(n->api);
				n->api = hf_xstrdup(api);
			}
			if (key && (!n->api_key || strcmp(key, n->api_key))) {
				free(n->api_key);
				n->api_key = hf_xstrdup(key);
			}
		}
		if (note && (!n->cgroups || strcmp(note, n->cgroups))) {
			free(n->cgroups);
			n->cgroups = hf_xstrdup(note);
			fresh = true;
		}
		json_object_foreach(json_object_get(info, "attributes"), k, v)
		    if (json_is_string(v)) hf_kvlist_set(&n->attributes, k,
							 json_string_value(v));
		n->cpus = num_or(res, "cpus", n->cpus);
		n->memory_mb = num_or(res, "memory_mb", n->memory_mb);
		n->disk_mb = num_or(res, "disk_mb", n->disk_mb);
		if (ports) {
			n->port_begin = (int64_t)num_or(ports, "begin",
							(double)n->port_begin);
			n->port_end =
			    (int64_t)num_or(ports, "end", (double)n->port_end);
		}
		if (started && started != n->agent_started_at) {
			if (n->agent_started_at) {
				hf_log("node %s: its agent restarted", id);
				hf_event(s, "agent", NULL, "node", id, NULL,
					 "agent restarted", NULL);
			}
			n->agent_started_at = started;
		}
	}
	n->last_seen = hf_now_ms();
	/*
	 * With a shared store (etcd) followers read nodes from it: the time
	 * the node was last seen is written every third of the node timeout,
	 * so they can tell a live node from a lost one.
	 */
	if (!fresh && strcmp(hf_store_backend_name(s->store), "etcd") == 0 &&
	    n->last_seen - n->saved_seen >
		(int64_t)(s->opts.node_timeout * 1000 / 3))
		fresh = true;
	if (fresh) {
		n->saved_seen = n->last_seen;
		hf_state_save_node(s, n);
	}
	return n;
}

/* A held long poll: whose, the generation its agent has, until when. */
struct sync_wait {
	char *node;
	uint64_t seen;
	int64_t until; /* unix ms */
};

static void sync_wait_free(void *arg)
{
	struct sync_wait *w = arg;

	free(w->node);
	free(w);
}

/* The node's desired set, as the answer to its sync. Lock held. */
static void sync_answer(struct hf_srv *s, struct hf_node *n,
			struct hf_http_resp *resp)
{
	json_t *dels = json_array();
	json_t *desired;

	n->last_seen = hf_now_ms();
	for (size_t k = 0; k < n->delete_volumes.len; k++)
		json_array_append_new(dels,
				      json_string(n->delete_volumes.items[k]));
	desired = hf_sched_desired(s, n);
	hf_http_json(resp, 200,
		     json_pack("{s:I, s:o, s:o, s:i, s:s?}", "generation",
			       (json_int_t)n->gen, "tasks", desired,
			       "delete_volumes", dels, "heartbeat_interval", 2,
			       "cluster", s->cluster_id));
}

/*
 * A held poll comes back: answer when the node's set changed, the time is
 * up or the server stops; else (a wake for nothing new) wait the rest.
 */
static void sync_resume(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp, void *arg, bool woken)
{
	struct hf_srv *s = srv_of(ctx);
	struct sync_wait *w = arg;
	int64_t now = hf_now_ms();
	struct hf_node *n;

	(void)woken;
	hf_state_lock(s);
	/*
	 * Resumed outside server.c's h_front: what it says of a failed store
	 * write, or of a server that stepped down meanwhile, is said here.
	 */
	if (s->store_failed || !s->leading) {
		hf_http_error_status(resp, 503,
				     s->store_failed ? "store-unwritable"
						     : "no-leader",
				     "%s; try again",
				     s->store_failed
					 ? "this server cannot write the store "
					   "and stopped acting"
					 : "this server no longer leads");
		hf_state_unlock(s);
		return;
	}
	n = hf_state_node(s, w->node);
	if (n && w->seen == n->gen && now < w->until && !s->stopping &&
	    !hf_http_server_stopping(req->server)) {
		hf_http_defer(req, resp, &n->waitq, (long)(w->until - now),
			      sync_resume, w, sync_wait_free);
	} else if (n) {
		sync_answer(s, n, resp);
	} else {
		hf_http_error(resp, HF_ENOTFOUND, "no node '%s'", w->node);
	}
	hf_state_unlock(s);
}

static void h_agent_sync(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	json_t *body = NULL, *tasks, *e, *dv;
	const char *node_id;
	struct hf_node *n;
	uint64_t seen;
	double wait;
	char *refused;
	size_t i;

	if (hf_http_body_json(req, resp, &body))
		return;
	node_id = json_string_value(json_object_get(body, "node_id"));
	if (!node_id || !*node_id) {
		hf_http_error(resp, HF_EINVAL, "the sync needs a node_id");
		json_decref(body);
		return;
	}
	/* A node reports for itself only: its credential names it. */
	if (!req->principal || strcmp(node_id, req->principal) != 0) {
		hf_http_error(resp, HF_EFORBIDDEN,
			      "this credential belongs to node %s, not to "
			      "node %s",
			      req->principal ? req->principal : "(none)",
			      node_id);
		hf_log("node %s: a sync claiming to be node %s was refused "
		       "(from %s)",
		       req->principal ? req->principal : "(none)", node_id,
		       req->remote_addr);
		json_decref(body);
		return;
	}
	tasks = json_object_get(body, "tasks");
	seen = (uint64_t)num_or(body, "generation", 0);
	wait = num_or(body, "wait", 0);
	if (wait > AGENT_MAX_WAIT_S)
		wait = AGENT_MAX_WAIT_S;
	/*
	 * A held poll must not outlast half the node timeout, or a healthy
	 * node would look unreachable while its request waits here.
	 */
	if (wait > s->opts.node_timeout / 2)
		wait = s->opts.node_timeout / 2;
	hf_state_lock(s);
	/* An agent of another cluster, or unknown here, is not acted on. */
	refused = hf_cluster_admit(s, node_id, body);
	if (refused) {
		hf_cluster_refusal(s, resp, refused);
		hf_state_unlock(s);
		free(refused);
		json_decref(body);
		return;
	}
	/* The sync's records are written together before it waits. */
	hf_state_batch_begin(s);
	n = node_update(s, node_id, json_object_get(body, "info"));
	json_array_foreach(tasks, i, e) hf_sched_task_report(s, node_id, e);
	/*
	 * Only the newest report may declare tasks lost: an older request
	 * that was overtaken by a newer one lacks tasks started since.
	 */
	{
		double seq = num_or(body, "seq", 0);

		if (json_is_array(tasks) && seq >= n->last_report_seq) {
			n->last_report_seq = seq;
			hf_sched_reconcile_node(s, node_id, tasks);
		}
	}
	dv = json_object_get(body, "deleted_volumes");
	if (json_array_size(dv)) {
		struct hf_strlist keep = {0};

		for (size_t k = 0; k < n->delete_volumes.len; k++) {
			bool done = false;

			json_array_foreach(dv, i, e) if (json_is_string(e) &&
							  strcmp(json_string_value(e),
								 n->delete_volumes
								     .items[k]) ==
							      0) done = true;
			if (!done)
				hf_strlist_push(&keep, n->delete_volumes.items[k]);
			else
				hf_log("node %s: volume %s deleted", n->id,
				       n->delete_volumes.items[k]);
		}
		hf_strlist_release(&n->delete_volumes);
		n->delete_volumes = keep;
		hf_state_save_node(s, n);
	}
	/*
	 * A report that changed something is acted on by the scheduler's
	 * next tick (hf_sched_changed woke it); it batches the reports of
	 * every agent that arrive meanwhile. The poll is held, costing no
	 * thread, until this node's desired set gets a new generation
	 * (hf_sched_publish wakes n->waitq) or the wait is up.
	 */
	hf_state_batch_end(s);
	if ((long)(wait * 1000) > 0 && seen == n->gen && !s->stopping) {
		struct sync_wait *w = hf_xcalloc(1, sizeof(*w));
		long ms = (long)(wait * 1000);

		w->node = hf_xstrdup(n->id);
		w->seen = seen;
		w->until = hf_now_ms() + ms;
		hf_http_defer(req, resp, &n->waitq, ms, sync_resume, w,
			      sync_wait_free);
	} else {
		sync_answer(s, n, resp);
	}
	hf_state_unlock(s);
	json_decref(body);
}

/* ------------------------------------------------------------------ */
/* The route table                                                      */

static const struct hf_http_route routes[] = {
    {"POST", "/v1/agent/sync", h_agent_sync, HF_ROUTE_AGENT, NULL},
    {"POST", "/v1/agent/register", hf_nodeauth_register_handler,
     HF_ROUTE_JOIN, NULL},
    {"GET", "/v1/version", h_version, HF_ROUTE_PUBLIC, NULL},
    {"GET", "/v1/store/backup", h_store_backup,
     HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, NULL},
    {"GET", "/v1/leader", h_leader, HF_ROUTE_READ, NULL},
    {"GET", "/v1/services", h_services_list, HF_ROUTE_READ, NULL},
    {"POST", "/v1/services", h_services_deploy, HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/services/{svc}", h_service_get, HF_ROUTE_READ, NULL},
    {"DELETE", "/v1/services/{svc}", h_service_remove, HF_ROUTE_WRITE,
     "delete_volumes:bool"},
    {"PUT", "/v1/services/{svc}", h_service_update, HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/services/{svc}/diff", h_service_diff, HF_ROUTE_READ, NULL},
    {"POST", "/v1/services/{svc}/rollback", h_service_rollback,
     HF_ROUTE_WRITE, "to"},
    {"GET", "/v1/nodes", h_nodes, HF_ROUTE_READ, NULL},
    {"GET", "/v1/volumes", h_volumes_list, HF_ROUTE_READ, "service"},
    {"DELETE", "/v1/volumes/{svc}", h_volume_delete, HF_ROUTE_WRITE, NULL},
    {"DELETE", "/v1/volumes/{svc}/{pod}", h_volume_delete, HF_ROUTE_WRITE,
     NULL},
    {"POST", "/v1/nodes/{node}/decommission", h_node_decommission,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/nodes/{node}/adopt", hf_cluster_adopt_handler,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/nodes/{node}/reset-identity", hf_nodeauth_reset_handler,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/events", hf_events_handler, HF_ROUTE_READ | HF_ROUTE_STREAM,
     "since follow:bool service tail"},
    {"GET", "/metrics", hf_metrics_handler, HF_ROUTE_READ, NULL},
    {"GET", "/v1/tasks/{task}/logs", hf_task_logs_handler,
     HF_ROUTE_READ | HF_ROUTE_STREAM | HF_ROUTE_BLOCKING,
     "stream tail follow:bool service"},
    {"POST", "/v1/tasks/{task}/exec", hf_task_exec_handler,
     HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, "service"},
    {"GET", "/v1/service/{svc}/plans", h_plans_list, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/plans/{plan}", h_plan_get, HF_ROUTE_READ,
     NULL},
    {"POST", "/v1/service/{svc}/plans/{plan}/start", h_plan_start,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/plans/{plan}/stop", h_plan_stop,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/plans/{plan}/interrupt", h_plan_interrupt,
     HF_ROUTE_WRITE, "phase"},
    {"POST", "/v1/service/{svc}/plans/{plan}/continue", h_plan_continue,
     HF_ROUTE_WRITE, "phase"},
    {"POST", "/v1/service/{svc}/plans/{plan}/forceComplete", h_plan_force,
     HF_ROUTE_WRITE, "phase step"},
    {"POST", "/v1/service/{svc}/plans/{plan}/restart", h_plan_restart,
     HF_ROUTE_WRITE, "phase step"},
    {"GET", "/v1/service/{svc}/pod", h_pod_list, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/pod/status", h_pod_status, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/service/{svc}/pod/{pod}/status", h_pod_status_one,
     HF_ROUTE_READ, NULL},
    {"POST", "/v1/service/{svc}/pod/{pod}/restart", h_pod_restart,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/pod/{pod}/replace", h_pod_replace,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/pod/{pod}/pause", h_pod_pause,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/pod/{pod}/resume", h_pod_resume,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/service/{svc}/endpoints", h_endpoints, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/endpoints/{name}", h_endpoints, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/service/{svc}/configurations", h_configs, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/service/{svc}/configurations/{id}", h_configs,
     HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/health", h_health, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/pod/{pod}/info", h_pod_info, HF_ROUTE_READ,
     NULL},
};

const struct hf_http_route *hf_server_routes(size_t *n)
{
	*n = HF_ARRAY_LEN(routes);
	return routes;
}
