/*
 * api.c - the server's HTTP routes, in one table, and the operator API's
 * handlers. A handler that changes something reads its request, calls the
 * operation (ops.h) and shows what the operation answered: it assigns no
 * record field and writes nothing itself, and its errors are those of
 * common/err.h. Reads take srv->mu for what they show. The agents' routes
 * are in agent_api.c, a task's logs and exec in tasks_api.c.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/version.h"
#include "http/http.h"
#include "model/codec.h"
#include "server/agent_api.h"
#include "server/api.h"
#include "server/cluster.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/ops.h"
#include "server/sched.h"
#include "server/tasks_api.h"
#include "server/ui.h"
#include "server/creds.h"
#include "server/autoscale.h"
#include "server/backups.h"
#include "server/dr.h"
#include "server/remotes.h"
#include "server/stacks.h"
#include "spec/stack.h"

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

/* Volumes as the API shows them: {key, node} and the fields given. */
static json_t *volumes_json(const struct hf_ops_volumes *v, bool names,
			    const char *status)
{
	json_t *a = json_array();

	for (size_t i = 0; i < v->len; i++) {
		const struct hf_ops_volume *e = &v->items[i];
		json_t *o = json_pack("{s:s}", "key", e->key);

		if (names) {
			json_object_set_new(o, "service", json_string(e->service));
			json_object_set_new(o, "instance",
					    json_string(e->instance));
		}
		json_object_set_new(o, "node", json_string(e->node));
		if (status)
			json_object_set_new(o, "status", json_string(status));
		if (e->why) {
			json_object_set_new(o, "why", json_string(e->why));
			json_object_set_new(o, "since",
					    json_integer((json_int_t)e->since));
		}
		json_array_append_new(a, o);
	}
	return a;
}

/* The kept volumes of a service (all when svc is NULL). Lock held. */
static json_t *kept_json(struct hf_srv *s, const char *svc)
{
	struct hf_ops_volumes kept = {0};
	json_t *a;

	hf_ops_kept_volumes(s, svc, &kept);
	a = volumes_json(&kept, true, "kept");
	hf_ops_volumes_release(&kept);
	return a;
}

/*
 * Answers a failed operation: the name and status of its code in
 * common/err.h, its sentence, and a spec's diagnostics when it was the
 * spec (the message then ends with the first error).
 */
void hf_api_answer_err(struct hf_http_resp *resp, int rc,
		       const struct hf_ops_err *err)
{
	const char *why = err->why ? err->why : hf_err_msg(rc);
	const struct hf_diag *first = NULL;

	if (!err->diags.len) {
		hf_http_error(resp, rc, "%s", why);
		return;
	}
	for (size_t i = 0; i < err->diags.len && !first; i++)
		if (err->diags.items[i].level == HF_DIAG_ERROR)
			first = &err->diags.items[i];
	hf_http_json(resp, hf_err_http(rc),
		     json_pack("{s:s, s:s++, s:o}", "error", hf_err_name(rc),
			       "message", why, first ? ": " : "",
			       first ? first->msg : "", "diagnostics",
			       hf_diags_to_json(&err->diags)));
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

/*
 * Each pod type's count: the spec's, or one set over it (pod scale), and
 * which the target has.
 */
static json_t *pod_types_json(const struct hf_config *cfg)
{
	json_t *a = json_array();

	for (size_t i = 0; cfg && cfg->spec && i < cfg->spec->pods.len; i++) {
		const struct hf_spec_pod *p = &cfg->spec->pods.items[i];

		json_array_append_new(
		    a, json_pack("{s:s, s:I, s:I, s:b}", "name", p->name,
				 "count", (json_int_t)p->count, "spec_count",
				 (json_int_t)p->spec_count, "overridden",
				 hf_kvlist_get(&cfg->counts, p->name) != NULL));
	}
	return a;
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
	return json_pack("{s:s, s:o, s:b, s:o, s:o, s:o, s:I}", "name",
			 svc->name, "config_id", str_or_null(svc->target),
			 "removing", svc->removing, "plans", plans, "tasks",
			 task_counts(svc), "pod_types", pod_types_json(cfg),
			 "created", (json_int_t)svc->created);
}

static void h_services_list(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	json_t *a = json_array();

	(void)req;
	hf_state_lock(s);
	for (size_t i = 0; i < s->model.services.len; i++)
		json_array_append_new(a, service_summary(s, s->model.services.items[i]));
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

/* A spec as a request body gives it; its strings point into body. */
struct spec_in {
	json_t *body;
	struct hf_kvlist options, templates;
	struct hf_ops_spec spec;
};

static void spec_in_release(struct spec_in *in)
{
	json_decref(in->body);
	hf_kvlist_release(&in->options);
	hf_kvlist_release(&in->templates);
}

/*
 * Reads {"spec", "file", "options", "templates"}. Answers the request and
 * returns false when it is not usable (in is released then).
 */
static bool spec_from_body(const struct hf_http_req *req,
			   struct hf_http_resp *resp, struct spec_in *in)
{
	const char *bad = NULL;

	memset(in, 0, sizeof(*in));
	if (hf_http_body_json(req, resp, &in->body))
		return false;
	in->spec.text = json_string_value(json_object_get(in->body, "spec"));
	if (!json_is_object(in->body) || !in->spec.text) {
		hf_http_error(resp, HF_EINVAL,
			      "the body needs \"spec\": the service spec text");
		goto fail;
	}
	in->spec.file = json_string_value(json_object_get(in->body, "file"));
	if (!json_to_kv(json_object_get(in->body, "options"), &in->options,
			false, &bad) ||
	    !json_to_kv(json_object_get(in->body, "templates"), &in->templates,
			false, &bad)) {
		hf_http_error(resp, HF_EINVAL,
			      "options and templates are objects of strings; "
			      "'%s' is not",
			      bad);
		goto fail;
	}
	in->spec.options = &in->options;
	in->spec.templates = &in->templates;
	return true;
fail:
	spec_in_release(in);
	return false;
}

static void h_services_deploy(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	struct hf_ops_deployed out = {0};
	struct hf_ops_err err = {0};
	struct spec_in in;
	json_t *o;
	int rc;

	if (!spec_from_body(req, resp, &in))
		return;
	rc = hf_ops_deploy(s, &in.spec, &out, &err);
	if (rc) {
		hf_api_answer_err(resp, rc, &err);
		goto out;
	}
	o = json_pack("{s:s, s:s, s:s}", "name", out.service, "config_id",
		      out.config_id, "plan", out.plan);
	/*
	 * Volumes an earlier service of this name left: its instances reuse
	 * them where they are placed on their node.
	 */
	if (out.kept.len)
		json_object_set_new(o, "kept_volumes",
				    volumes_json(&out.kept, true, "kept"));
	hf_http_json(resp, 201, o);
out:
	hf_ops_deployed_release(&out);
	hf_ops_err_release(&err);
	spec_in_release(&in);
}

/*
 * A change of target (update, diff, rollback) as the API shows it: the
 * diff, whether it was made, from and to. A refused one (err.h's name)
 * says the first reason in its message.
 */
static json_t *change_json(const struct hf_ops_change *c, const char *refused)
{
	json_t *o = hf_spec_diff_to_json(&c->diff);

	json_object_set_new(o, "changed", json_boolean(c->changed));
	json_object_set_new(o, "from", str_or_null(c->from));
	json_object_set_new(o, "to", str_or_null(c->to));
	if (c->plan)
		json_object_set_new(o, "plan", json_string(c->plan));
	if (refused) {
		json_object_set_new(o, "error",
				    json_string(hf_err_name(HF_EREFUSED)));
		json_object_set_new(o, "message", json_string(refused));
	}
	return o;
}

/*
 * Answers a change: a refusal that has a diff shows it with the refusal's
 * status; other failures are plain errors.
 */
static void answer_change(struct hf_http_resp *resp, int rc,
			  const struct hf_ops_change *c,
			  const struct hf_ops_err *err)
{
	if (rc == HF_EREFUSED && c->from)
		hf_http_json(resp, hf_err_http(rc), change_json(c, err->why));
	else if (rc)
		hf_api_answer_err(resp, rc, err);
	else
		hf_http_json(resp, 200, change_json(c, c->refused));
}

/*
 * PUT /v1/services/{svc} (update) and POST .../diff (a dry run, whose
 * refusal is an answer, not an error).
 */
static void update_or_diff(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp, bool apply)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	struct spec_in in;
	int rc;

	if (!spec_from_body(req, resp, &in))
		return;
	rc = apply ? hf_ops_update(s, name, &in.spec, &out, &err)
		   : hf_ops_diff(s, name, &in.spec, &out, &err);
	answer_change(resp, rc, &out, &err);
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
	spec_in_release(&in);
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
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	int rc = hf_ops_rollback(srv_of(ctx), hf_kvlist_get(&req->params, "svc"),
				 hf_kvlist_get(&req->query, "to"), &out, &err);

	answer_change(resp, rc, &out, &err);
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
}

/*
 * PUT /v1/service/{svc}/pod-types/{pod}/count {"count": N} sets a pod
 * type's count over its spec's; DELETE hands it back to the spec. Both
 * answer as an update does.
 */
static void h_pod_count(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	const char *svc = hf_kvlist_get(&req->params, "svc");
	const char *pod = hf_kvlist_get(&req->params, "pod");
	struct hf_ops_change out = {0};
	struct hf_ops_err err = {0};
	json_t *body = NULL, *count;
	int rc;

	if (strcmp(req->method, "DELETE") == 0) {
		rc = hf_ops_pod_count_reset(srv_of(ctx), svc, pod, &out, &err);
	} else {
		if (hf_http_body_json(req, resp, &body))
			return;
		count = json_object_get(body, "count");
		if (!json_is_integer(count)) {
			hf_http_error(resp, HF_EINVAL,
				      "the body needs \"count\": the pod "
				      "type's count, an integer");
			goto out;
		}
		rc = hf_ops_pod_count(srv_of(ctx), svc, pod,
				      json_integer_value(count), &out, &err);
	}
	answer_change(resp, rc, &out, &err);
out:
	json_decref(body);
	hf_ops_change_release(&out);
	hf_ops_err_release(&err);
}

static void h_service_remove(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_ops_removed out = {0};
	struct hf_ops_err err = {0};
	int rc = hf_ops_remove(srv_of(ctx), hf_kvlist_get(&req->params, "svc"),
			       hf_http_query_bool(req, "delete_volumes", false),
			       &out, &err);

	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else if (out.already_removed)
		hf_http_json(resp, 202,
			     json_pack("{s:s, s:b, s:b, s:o}", "name",
				       out.service, "delete_volumes", 1,
				       "already_removed", 1, "volumes",
				       volumes_json(&out.volumes, false, NULL)));
	else {
		json_t *vols = json_array();

		for (size_t i = 0; i < out.volumes.len; i++)
			json_array_append_new(
			    vols, json_pack("{s:s, s:s, s:s}", "instance",
					    out.volumes.items[i].instance,
					    "node", out.volumes.items[i].node,
					    "key", out.volumes.items[i].key));
		hf_http_json(resp, 202,
			     json_pack("{s:s, s:b, s:o}", "name", out.service,
				       "delete_volumes", out.delete_volumes,
				       "volumes", vols));
	}
	hf_ops_removed_release(&out);
	hf_ops_err_release(&err);
}

/* ------------------------------------------------------------------ */
/* Volumes                                                              */

/*
 * A replicated volume as a row of GET /v1/volumes: its record as the API
 * shows it (hf_xvol_to_json: never its secret) with the rows' own fields:
 * key (its name), type EXTERNAL, node (where it is attached, else where
 * its replica is) and a status.
 */
static json_t *xvol_row(const struct hf_xvol *v)
{
	json_t *o = hf_xvol_to_json(v);
	const char *node = v->attached;
	const char *status;

	for (size_t i = 0; !node && i < v->replicas.len; i++)
		if (v->replicas.items[i].state != HF_XREP_DELETING)
			node = v->replicas.items[i].node;
	if (!node && v->replicas.len)
		node = v->replicas.items[0].node;
	switch (v->state) {
	case HF_XVOL_ACTIVE:
		status = v->attached ? "in use (attached)" : "in use";
		break;
	case HF_XVOL_KEPT:
		status = "kept";
		break;
	default:
		status = "deleting";
		break;
	}
	json_object_set_new(o, "key", json_string(v->name));
	json_object_set_new(o, "type", json_string("EXTERNAL"));
	json_object_set_new(o, "node", node ? json_string(node) : json_null());
	json_object_set_new(o, "status", json_string(status));
	return o;
}

/*
 * GET /v1/volumes[?service=S]: every pod instance volume directory the
 * server knows of: in use by an instance, kept (no instance owns it), or
 * being deleted; then the replicated (external) volumes (xvol_row).
 */
static void h_volumes_list(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *only = hf_kvlist_get(&req->query, "service");
	json_t *a;

	hf_state_lock(s);
	a = json_array();
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];

		if (only && strcmp(only, svc->name) != 0)
			continue;
		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			char *key;

			/* Instances with a ROOT or MOUNT volume: a key each. */
			if (!in->node || !hf_model_instance_has_volumes(svc, in))
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
		json_t *kept = kept_json(s, only);

		json_array_extend(a, kept);
		json_decref(kept);
	}
	{
		struct hf_ops_volumes dels = {0};
		json_t *del;

		for (size_t k = 0; k < s->model.volumes.len; k++) {
			const struct hf_volume *v = s->model.volumes.items[k];

			if (v->state == HF_VOL_DELETING &&
			    (!only || hf_sched_volume_of(v->key, only, NULL)))
				hf_ops_volumes_add(&dels, v->key, v->node);
		}
		del = volumes_json(&dels, true, "deleting");
		json_array_extend(a, del);
		json_decref(del);
		hf_ops_volumes_release(&dels);
	}
	for (size_t k = 0; k < s->model.xvols.len; k++) {
		const struct hf_xvol *v = s->model.xvols.items[k];

		if (!only || strcmp(only, v->service) == 0)
			json_array_append_new(a, xvol_row(v));
	}
	hf_state_unlock(s);
	hf_http_json(resp, 200, a);
}

/*
 * A replicated volume as GET /v1/external-volumes shows it: its record
 * (never its secret) and, while attached, what its attach process last
 * reported: "io" (bytes written, replicated, sent by copies and planned
 * for them) and each replica's "missed" bytes where it keeps them.
 */
static json_t *xvol_json(const struct hf_srv *s, const struct hf_xvol *v)
{
	json_t *o = hf_xvol_to_json(v), *reps = json_object_get(o, "replicas");
	const struct hf_node *n =
	    v->attached ? hf_model_node(&s->model, v->attached) : NULL;
	const struct hf_node_volrep *r = hf_model_node_volrep(n, v->name);
	size_t k;
	json_t *e;

	/* A replica being made (a clone's, or from a backup): how far. */
	json_array_foreach(reps, k, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *on = json_string_value(json_object_get(e, "node"));
		const struct hf_node *rn =
		    on ? hf_model_node(&s->model, on) : NULL;

		for (size_t i = 0; id && rn && i < rn->fills.len; i++)
			if (!strcmp(rn->fills.items[i].replica, id))
				json_object_set_new(
				    e, "made",
				    json_pack("{s:I, s:I}", "done",
					      (json_int_t)rn->fills.items[i].done,
					      "total",
					      (json_int_t)rn->fills.items[i]
						  .total));
	}
	if (!r || r->epoch != v->epoch)
		return o;
	json_object_set_new(
	    o, "io",
	    json_pack("{s:I, s:I, s:I, s:I}", "written",
		      (json_int_t)r->written, "replicated",
		      (json_int_t)r->replicated, "resync_sent",
		      (json_int_t)r->resync_sent, "resync_planned",
		      (json_int_t)r->resync_planned));
	/* What it waits for (a resize's file system, a replica to grow). */
	if (r->note)
		json_object_set_new(json_object_get(o, "io"), "note",
				    json_string(r->note));
	json_array_foreach(reps, k, e) {
		const char *id = json_string_value(json_object_get(e, "id"));

		for (size_t i = 0; id && i < r->missed.len; i++)
			if (strcmp(r->missed.items[i].replica, id) == 0)
				json_object_set_new(
				    e, "missed",
				    json_integer(r->missed.items[i].bytes));
	}
	return o;
}

/* GET /v1/external-volumes: the replicated volumes, as records show them. */
static void h_xvols_list(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *only = hf_kvlist_get(&req->query, "service");
	json_t *a = json_array();

	hf_state_lock(s);
	for (size_t k = 0; k < s->model.xvols.len; k++) {
		const struct hf_xvol *v = s->model.xvols.items[k];

		if (!only || strcmp(only, v->service) == 0)
			json_array_append_new(a, xvol_json(s, v));
	}
	hf_state_unlock(s);
	hf_http_json(resp, 200, a);
}

/* GET /v1/external-volumes/{name}: one replicated volume. */
static void h_xvol_get(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "name");
	const struct hf_xvol *v;

	hf_state_lock(s);
	v = name ? hf_model_xvol(&s->model, name) : NULL;
	if (v)
		hf_http_json(resp, 200, xvol_json(s, v));
	else
		hf_http_error(resp, HF_ENOTFOUND, "no external volume '%s'",
			      name ? name : "");
	hf_state_unlock(s);
}

/* GET /v1/external-volumes/{name}/snapshots: the volume's snapshots. */
static void h_xsnaps_list(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "name");
	const struct hf_xvol *v;

	hf_state_lock(s);
	v = name ? hf_model_xvol(&s->model, name) : NULL;
	if (v) {
		json_t *o = xvol_json(s, v);

		hf_http_json(resp, 200,
			     json_pack("{s:s, s:O}", "volume", v->name,
				       "snapshots",
				       json_object_get(o, "snapshots")));
		json_decref(o);
	} else {
		hf_http_error(resp, HF_ENOTFOUND, "no external volume '%s'",
			      name ? name : "");
	}
	hf_state_unlock(s);
}

/* The snapshot's record as the API shows it, or null. */
static json_t *xsnap_json(struct hf_srv *s, const char *volume,
			  const char *snap)
{
	const struct hf_xvol *v;
	json_t *o, *found = json_null();
	size_t i;
	json_t *e;

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, volume);
	o = v ? xvol_json(s, v) : NULL;
	hf_state_unlock(s);
	json_array_foreach(json_object_get(o, "snapshots"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "name")),
			    snap)) {
			json_decref(found);
			found = json_incref(e);
		}
	json_decref(o);
	return found;
}

/* A pod's snapshot hooks, copied out of the state (hooks_of). */
struct hooks {
	char *svc, *task, *before, *after;
	long timeout_ms;
};

static void hooks_release(struct hooks *h)
{
	free(h->svc);
	free(h->task);
	free(h->before);
	free(h->after);
	memset(h, 0, sizeof(*h));
}

/* The hooks of the pod that owns volume `name`, if it declares any. */
static void hooks_of(struct hf_srv *s, const char *name, struct hooks *h)
{
	const struct hf_xvol *v;
	struct hf_service *svc;
	struct hf_instance *in;
	struct hf_config *cfg;
	const struct hf_spec_pod *pod;

	memset(h, 0, sizeof(*h));
	hf_state_lock(s);
	v = hf_model_xvol(&s->model, name);
	svc = v && v->instance ? hf_state_service(s, v->service) : NULL;
	in = svc ? hf_state_instance(svc, v->instance) : NULL;
	cfg = in ? hf_state_target(svc) : NULL;
	pod = cfg && cfg->spec ? hf_spec_find_pod(cfg->spec, in->pod) : NULL;
	if (pod && pod->has_hooks && pod->hook_task) {
		h->svc = hf_xstrdup(svc->name);
		h->task = hf_xasprintf("%s-%s", in->name, pod->hook_task);
		h->before = pod->hook_before ? hf_xstrdup(pod->hook_before)
					     : NULL;
		h->after = pod->hook_after ? hf_xstrdup(pod->hook_after) : NULL;
		h->timeout_ms = (long)(pod->hook_timeout * 1000);
	}
	hf_state_unlock(s);
}

/*
 * Runs one hook; returns its record ({"cmd", "exit_code", "output"}, or
 * "error") and whether it succeeded.
 */
static json_t *run_hook(struct hf_srv *s, const struct hooks *h,
			const char *cmd, bool *ok)
{
	char *out = NULL, *why = NULL;
	int code = -1;
	int rc = hf_task_exec_sync(s, h->svc, h->task, cmd, h->timeout_ms,
				   &code, &out, &why);
	json_t *o = json_pack("{s:s, s:s}", "task", h->task, "cmd", cmd);

	if (rc) {
		json_object_set_new(o, "error", json_string(why));
		*ok = false;
	} else {
		size_t n = out ? strlen(out) : 0;

		/* The tail says why a command failed. */
		json_object_set_new(o, "exit_code", json_integer(code));
		json_object_set_new(o, "output",
				    json_string(n > 4096 ? out + n - 4096
							 : out ? out : ""));
		*ok = code == 0;
	}
	free(out);
	free(why);
	return o;
}

/*
 * POST /v1/external-volumes/{name}/snapshots {"name": optional}: takes a
 * snapshot (hf_ops_xvol_snapshot); 202 with its record. When the pod
 * that owns the volume declares snapshot-hooks, its before command runs
 * in the task first (a failure refuses the snapshot: 409), the answer
 * waits until the snapshot is taken (or failed, or the hooks' timeout),
 * and the after command runs (always, once before ran); the answer says
 * what each did ("hooks").
 */
static void h_xsnap_take(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	struct hooks hk;
	json_t *body = NULL, *sn, *hooks = json_object(), *snap;
	char *made = NULL;
	bool ok = true;
	int rc;

	memset(&hk, 0, sizeof(hk));
	if (req->body_len && hf_http_body_json(req, resp, &body))
		goto out;
	sn = json_is_object(body) ? json_object_get(body, "name") : NULL;
	if ((body && !json_is_object(body)) || (sn && !json_is_string(sn))) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"name\": \"a snapshot name\"} "
			      "(or nothing: a name is made from the time)");
		goto out;
	}
	hooks_of(s, name, &hk);
	if (hk.before) {
		json_t *r = run_hook(s, &hk, hk.before, &ok);

		json_object_set_new(hooks, "before", r);
		if (!ok) {
			const char *why = json_string_value(
			    json_object_get(r, "error"));
			const char *o = json_string_value(
			    json_object_get(r, "output"));
			size_t n = o ? strlen(o) : 0;
			bool aok = true;

			/* It ran, perhaps half-way: after undoes it. */
			if (hk.after)
				json_decref(run_hook(s, &hk, hk.after, &aok));
			if (why)
				hf_http_error(resp, HF_ECONFLICT,
					      "the snapshot's before hook in "
					      "task %s could not run: %s; no "
					      "snapshot was taken",
					      hk.task, why);
			else
				hf_http_error(
				    resp, HF_ECONFLICT,
				    "the snapshot's before hook in task %s "
				    "exited %lld%s%s; no snapshot was taken",
				    hk.task,
				    (long long)json_integer_value(
					json_object_get(r, "exit_code")),
				    n ? ": " : "", n > 300 ? o + n - 300 : o ? o : "");
			goto out;
		}
	}
	rc = hf_ops_xvol_snapshot(s, name, sn ? json_string_value(sn) : NULL,
				  "operator", &made, &err);
	if (!rc && (hk.before || hk.after)) {
		/* The after hook waits for the snapshot (or its timeout). */
		int64_t until = hf_mono_ms() + hk.timeout_ms;

		for (;;) {
			json_t *cur = xsnap_json(s, name, made);
			const char *st =
			    json_string_value(json_object_get(cur, "state"));
			bool taking = st && !strcmp(st, "taking");

			json_decref(cur);
			if (!taking || hf_mono_ms() > until)
				break;
			usleep(50 * 1000);
		}
	}
	if (hk.after) {
		bool aok = true;

		json_object_set_new(hooks, "after",
				    run_hook(s, &hk, hk.after, &aok));
		if (!aok)
			hf_log("volume %s: the snapshot's after hook in task %s "
			       "failed",
			       name, hk.task);
	}
	if (rc) {
		hf_api_answer_err(resp, rc, &err);
		goto out;
	}
	snap = xsnap_json(s, name, made);
	json_decref(body);
	body = json_pack("{s:s, s:o}", "volume", name, "snapshot", snap);
	if (json_object_size(hooks))
		json_object_set(body, "hooks", hooks);
	hf_http_json(resp, 202, body);
	body = NULL;
out:
	hooks_release(&hk);
	json_decref(hooks);
	free(made);
	hf_ops_err_release(&err);
	json_decref(body);
}

/*
 * POST /v1/external-volumes/{name}/snapshots/{snap}/clone {"name": new
 * volume, "service": optional}: a new volume from the snapshot.
 */
static void h_xsnap_clone(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = srv_of(ctx);
	const char *name = hf_kvlist_get(&req->params, "name");
	const char *snap = hf_kvlist_get(&req->params, "snap");
	struct hf_ops_err err = {0};
	json_t *body = NULL, *nn, *svc;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	nn = json_is_object(body) ? json_object_get(body, "name") : NULL;
	svc = json_is_object(body) ? json_object_get(body, "service") : NULL;
	if (!json_is_string(nn) || (svc && !json_is_string(svc))) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"name\": \"the new volume\", "
			      "\"service\": \"the service that will use it "
			      "(default: the source's)\"}");
		goto out;
	}
	rc = hf_ops_xvol_clone(s, name, snap, json_string_value(nn),
			       svc ? json_string_value(svc) : NULL, &err);
	if (rc) {
		hf_api_answer_err(resp, rc, &err);
	} else {
		const struct hf_xvol *v;

		hf_state_lock(s);
		v = hf_model_xvol(&s->model, json_string_value(nn));
		hf_http_json(resp, 202,
			     v ? xvol_json(s, v)
			       : json_pack("{s:s}", "name",
					   json_string_value(nn)));
		hf_state_unlock(s);
	}
out:
	hf_ops_err_release(&err);
	json_decref(body);
}

/* DELETE /v1/external-volumes/{name}/snapshots/{snap}. */
static void h_xsnap_delete(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	const char *name = hf_kvlist_get(&req->params, "name");
	const char *snap = hf_kvlist_get(&req->params, "snap");
	struct hf_ops_err err = {0};
	bool changed = false;
	int rc = hf_ops_xvol_snapshot_delete(srv_of(ctx), name, snap, &changed,
					     &err);

	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 202,
			     json_pack("{s:s, s:s, s:b, s:o}", "volume", name,
				       "snapshot_name", snap, "changed",
				       changed, "snapshot",
				       xsnap_json(srv_of(ctx), name, snap)));
	hf_ops_err_release(&err);
}

/*
 * POST /v1/external-volumes/{name}/restore {"snapshot": name}: the
 * volume goes back to the snapshot (hf_ops_xvol_restore).
 */
static void h_xvol_restore(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	json_t *body = NULL, *sn;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	sn = json_is_object(body) ? json_object_get(body, "snapshot") : NULL;
	if (!json_is_string(sn)) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"snapshot\": \"its name\"}");
		goto out;
	}
	rc = hf_ops_xvol_restore(srv_of(ctx), name, json_string_value(sn),
				 &err);
	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 202,
			     json_pack("{s:s, s:s, s:s}", "volume", name,
				       "snapshot", json_string_value(sn),
				       "state", "restoring"));
out:
	hf_ops_err_release(&err);
	json_decref(body);
}

/*
 * POST /v1/external-volumes/{name}/resize {"size": "3G" | bytes}: grows
 * the volume (hf_ops_xvol_resize). A string size reads as driver-options'
 * size does (a bare number is GiB).
 */
static void h_xvol_resize(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	json_t *body = NULL, *sz;
	int64_t size = -1;
	bool changed = false;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	sz = json_is_object(body) ? json_object_get(body, "size") : NULL;
	if (json_is_integer(sz)) {
		size = json_integer_value(sz);
	} else if (json_is_string(sz)) {
		struct hf_spec_volopts o;
		struct hf_volopts_problems pr = {0};
		char *text = hf_xasprintf("size=%s", json_string_value(sz));

		if (hf_spec_volopts_parse(text, strlen(text), &o, &pr) == 0)
			size = o.size_bytes;
		hf_volopts_problems_release(&pr);
		free(text);
	}
	if (size <= 0) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"size\": SIZE}: a number of bytes, "
			      "or a size as driver-options takes it (\"3\" is "
			      "3 GiB, \"512M\", \"1.5T\")");
		goto out;
	}
	rc = hf_ops_xvol_resize(srv_of(ctx), name, size, &changed, &err);
	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:I, s:b}", "volume", name, "size",
				       (json_int_t)size, "changed", changed));
out:
	hf_ops_err_release(&err);
	json_decref(body);
}

/*
 * DELETE /v1/volumes/{svc}[/{pod}]: deletes kept volumes (of one instance,
 * or all of a service); hf_ops_volume_delete.
 */
static void h_volume_delete(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_ops_volumes gone = {0};
	struct hf_ops_err err = {0};
	int rc = hf_ops_volume_delete(srv_of(ctx),
				      hf_kvlist_get(&req->params, "svc"),
				      hf_kvlist_get(&req->params, "pod"), &gone,
				      &err);

	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 202,
			     json_pack("{s:o}", "deleting",
				       volumes_json(&gone, false, NULL)));
	hf_ops_volumes_release(&gone);
	hf_ops_err_release(&err);
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

/* Answers a plan operation: {"message": "ok", "plan"} or the error. */
static void answer_plan(struct hf_http_resp *resp, int rc,
			const struct hf_ops_err *err, const char *plan)
{
	if (rc)
		hf_api_answer_err(resp, rc, err);
	else
		hf_http_json(resp, 200, json_pack("{s:s, s:s}", "message", "ok",
						  "plan", plan));
}

#define SVC(req) hf_kvlist_get(&(req)->params, "svc")
#define PLAN(req) hf_kvlist_get(&(req)->params, "plan")
#define PHASE(req) hf_kvlist_get(&(req)->query, "phase")
#define STEP(req) hf_kvlist_get(&(req)->query, "step")

static void h_plan_start(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_kvlist params = {0};
	struct hf_ops_err err = {0};
	json_t *body = NULL;
	const char *bad = NULL;

	if (req->body_len) {
		if (hf_http_body_json(req, resp, &body))
			return;
		if (!json_to_kv(body, &params, true, &bad)) {
			hf_http_error(resp, HF_EINVAL,
				      "plan parameters are an object of "
				      "environment variables; '%s' is not a "
				      "valid name or value",
				      bad);
			goto out;
		}
	}
	answer_plan(resp,
		    hf_ops_plan_start(srv_of(ctx), SVC(req), PLAN(req), &params,
				      &err),
		    &err, PLAN(req));
out:
	hf_ops_err_release(&err);
	hf_kvlist_release(&params);
	json_decref(body);
}

static void h_plan_stop(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	struct hf_ops_err err = {0};

	answer_plan(resp,
		    hf_ops_plan_stop(srv_of(ctx), SVC(req), PLAN(req), &err),
		    &err, PLAN(req));
	hf_ops_err_release(&err);
}

static void h_plan_interrupt(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_ops_err err = {0};

	answer_plan(resp,
		    hf_ops_plan_interrupt(srv_of(ctx), SVC(req), PLAN(req),
					  PHASE(req), &err),
		    &err, PLAN(req));
	hf_ops_err_release(&err);
}

/*
 * POST .../continue: says what it let go and which canary gates remain
 * (hf_ops_plan_continue).
 */
static void h_plan_continue(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_ops_continued out = {0};
	struct hf_ops_err err = {0};
	json_t *did, *gates;
	int rc = hf_ops_plan_continue(srv_of(ctx), SVC(req), PLAN(req),
				      PHASE(req), &out, &err);

	if (rc) {
		hf_api_answer_err(resp, rc, &err);
		goto out;
	}
	did = json_array();
	for (size_t i = 0; i < out.did.len; i++)
		json_array_append_new(did, json_string(out.did.items[i]));
	if (!out.has_status) {
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:s, s:o}", "message", "ok",
				       "plan", PLAN(req), "continued", did));
		goto out;
	}
	gates = json_array();
	for (size_t i = 0; i < out.gates.len; i++) {
		const struct hf_ops_gate *g = &out.gates.items[i];

		json_array_append_new(
		    gates,
		    json_pack("{s:s, s:s, s:i, s:s}", "phase", g->phase, "step",
			      g->step, "continues_left", g->continues_left,
			      "waits_for",
			      g->first_step ? "a continue"
					    : "its first step to complete and a "
					      "continue"));
	}
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s, s:s, s:o, s:o, s:i}", "message", "ok",
			       "plan", PLAN(req), "status",
			       hf_status_name(out.status), "continued", did,
			       "gates", gates, "continues_needed",
			       out.continues_needed));
out:
	hf_ops_continued_release(&out);
	hf_ops_err_release(&err);
}

static void h_plan_force(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_ops_err err = {0};
	bool skipped;
	int rc = hf_ops_plan_force_complete(srv_of(ctx), SVC(req), PLAN(req),
					    PHASE(req), STEP(req), &skipped,
					    &err);

	if (!rc && skipped)
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:s}", "message",
				       "the instance is removed without a "
				       "drain; its volumes are kept",
				       "plan", PLAN(req)));
	else
		answer_plan(resp, rc, &err, PLAN(req));
	hf_ops_err_release(&err);
}

static void h_plan_restart(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_ops_err err = {0};

	answer_plan(resp,
		    hf_ops_plan_restart(srv_of(ctx), SVC(req), PLAN(req),
					PHASE(req), STEP(req), &err),
		    &err, PLAN(req));
	hf_ops_err_release(&err);
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
				      hf_instance_replacing(in), "tasks",
				      tasks));
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

/* POST .../pod/{pod}/<op>: {"pod", "tasks": its task names}. */
static void pod_op(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp,
		   int (*op)(struct hf_srv *, const char *, const char *,
			     struct hf_strlist *, struct hf_ops_err *))
{
	const char *pod = hf_kvlist_get(&req->params, "pod");
	struct hf_strlist tasks = {0};
	struct hf_ops_err err = {0};
	int rc = op(srv_of(ctx), SVC(req), pod, &tasks, &err);

	if (rc) {
		hf_api_answer_err(resp, rc, &err);
	} else {
		json_t *a = json_array();

		for (size_t i = 0; i < tasks.len; i++)
			json_array_append_new(a, json_string(tasks.items[i]));
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:o}", "pod", pod, "tasks", a));
	}
	hf_strlist_release(&tasks);
	hf_ops_err_release(&err);
}

static void h_pod_restart(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, hf_ops_pod_restart);
}
static void h_pod_replace(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, hf_ops_pod_replace);
}
static void h_pod_pause(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, hf_ops_pod_pause);
}
static void h_pod_resume(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	pod_op(ctx, req, resp, hf_ops_pod_resume);
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
	struct hf_strlist addrs = {0}, dns = {0};
	json_t *a = json_array(), *d = json_array();

	hf_state_endpoint(s, svc, port_name, &addrs, &dns);
	for (size_t i = 0; i < addrs.len; i++)
		json_array_append_new(a, json_string(addrs.items[i]));
	for (size_t i = 0; i < dns.len; i++)
		json_array_append_new(d, json_string(dns.items[i]));
	hf_strlist_release(&addrs);
	hf_strlist_release(&dns);
	return json_pack("{s:o, s:o}", "address", a, "dns", d);
}

static void advertised_ports(struct hf_config *cfg, struct hf_strlist *out)
{
	if (cfg && cfg->spec)
		hf_spec_advertised_ports(cfg->spec, out);
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
	for (size_t i = 0; i < s->model.nodes.len; i++) {
		struct hf_node *n = s->model.nodes.items[i];
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
		/* Storage-less nodes have none. */
		if (n->storage)
			json_object_set_new(
			    json_array_get(a, json_array_size(a) - 1),
			    "storage", hf_codec_node_storage(n->storage));
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
	const char *id = hf_kvlist_get(&req->params, "node");
	struct hf_strlist moved = {0};
	struct hf_ops_err err = {0};
	int rc = hf_ops_node_decommission(srv_of(ctx), id, &moved, &err);

	if (rc) {
		hf_api_answer_err(resp, rc, &err);
	} else {
		json_t *a = json_array();

		for (size_t i = 0; i < moved.len; i++)
			json_array_append_new(a, json_string(moved.items[i]));
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:o}", "node", id, "replacing", a));
	}
	hf_strlist_release(&moved);
	hf_ops_err_release(&err);
}

/* POST /v1/nodes/{node}/adopt: a refused agent joins (cluster.h). */
static void h_node_adopt(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	const char *id = hf_kvlist_get(&req->params, "node");
	struct hf_ops_adopted out = {0};
	struct hf_ops_err err = {0};
	int rc = hf_ops_node_adopt(srv_of(ctx), id, &out, &err);

	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:s?, s:I}", "node", id, "cluster",
				       out.cluster, "live_tasks",
				       (json_int_t)out.live_tasks));
	hf_ops_adopted_release(&out);
	hf_ops_err_release(&err);
}

/* POST /v1/nodes/{node}/reset-identity (nodeauth.h). */
static void h_node_reset_identity(void *ctx, const struct hf_http_req *req,
				  struct hf_http_resp *resp)
{
	const char *id = hf_kvlist_get(&req->params, "node");
	struct hf_ops_err err = {0};
	int rc = hf_ops_node_reset_identity(srv_of(ctx), id, &err);

	if (rc)
		hf_api_answer_err(resp, rc, &err);
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "node", id, "reset", true));
	hf_ops_err_release(&err);
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
/* The route table                                                      */

static const struct hf_http_route routes[] = {
    {"POST", "/v1/agent/sync", hf_agent_sync_handler, HF_ROUTE_AGENT, NULL},
    {"POST", "/v1/agent/register", hf_agent_register_handler,
     HF_ROUTE_JOIN, NULL},
    {"GET", "/v1/version", h_version, HF_ROUTE_PUBLIC, NULL},
    /* The web UI's files (ui.h): public, they hold no data. */
    {"GET", "/ui", hf_ui_redirect_handler, HF_ROUTE_PUBLIC, "token"},
    {"GET", "/ui/{asset*}", hf_ui_asset_handler, HF_ROUTE_PUBLIC, "token"},
    {"GET", "/v1/whoami", hf_ui_whoami_handler, HF_ROUTE_READ, NULL},
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
    {"GET", "/v1/credentials", hf_creds_list_handler, HF_ROUTE_READ, NULL},
    {"POST", "/v1/credentials", hf_creds_create_handler, HF_ROUTE_WRITE,
     NULL},
    {"DELETE", "/v1/credentials/{name}", hf_creds_delete_handler,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/external-volumes", h_xvols_list, HF_ROUTE_READ, "service"},
    {"GET", "/v1/external-volumes/{name}", h_xvol_get, HF_ROUTE_READ, NULL},
    {"POST", "/v1/external-volumes/{name}/resize", h_xvol_resize,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/external-volumes/{name}/snapshots", h_xsnaps_list,
     HF_ROUTE_READ, NULL},
    /* Hooks run in the task and the answer may wait: on a worker. */
    {"POST", "/v1/external-volumes/{name}/snapshots", h_xsnap_take,
     HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, NULL},
    {"DELETE", "/v1/external-volumes/{name}/snapshots/{snap}",
     h_xsnap_delete, HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/external-volumes/{name}/snapshots/{snap}/clone",
     h_xsnap_clone, HF_ROUTE_WRITE, NULL},
    /* A backup takes a snapshot and waits for it: on a worker. */
    {"POST", "/v1/external-volumes/{name}/backups", hf_backup_start_handler,
     HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, NULL},
    {"GET", "/v1/external-volumes/{name}/backups", hf_backup_list_handler,
     HF_ROUTE_READ | HF_ROUTE_BLOCKING, "credential from"},
    /* Asks the node to stop the process: on a worker. */
    {"DELETE", "/v1/external-volumes/{name}/backups/{id}",
     hf_backup_cancel_handler, HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, NULL},
    {"PUT", "/v1/external-volumes/{name}/backup-schedule",
     hf_backup_schedule_handler, HF_ROUTE_WRITE, NULL},
    {"DELETE", "/v1/external-volumes/{name}/backup-schedule",
     hf_backup_schedule_handler, HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/external-volumes/{name}/from-backup",
     hf_backup_restore_handler, HF_ROUTE_WRITE | HF_ROUTE_BLOCKING, NULL},
    {"POST", "/v1/external-volumes/{name}/restore", h_xvol_restore,
     HF_ROUTE_WRITE, NULL},
    {"DELETE", "/v1/volumes/{svc}", h_volume_delete, HF_ROUTE_WRITE, NULL},
    {"DELETE", "/v1/volumes/{svc}/{pod}", h_volume_delete, HF_ROUTE_WRITE,
     NULL},
    {"POST", "/v1/nodes/{node}/decommission", h_node_decommission,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/nodes/{node}/adopt", h_node_adopt,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/nodes/{node}/reset-identity", h_node_reset_identity,
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
    {"GET", "/v1/service/{svc}/autoscale", hf_autoscale_status_handler,
     HF_ROUTE_READ, NULL},
    {"PUT", "/v1/service/{svc}/pod-types/{pod}/count", h_pod_count,
     HF_ROUTE_WRITE, NULL},
    {"DELETE", "/v1/service/{svc}/pod-types/{pod}/count", h_pod_count,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/service/{svc}/endpoints", h_endpoints, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/endpoints/{name}", h_endpoints, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/service/{svc}/configurations", h_configs, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/service/{svc}/configurations/{id}", h_configs,
     HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/configurations/{id}/source",
     hf_ui_config_source_handler, HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/service/{svc}/health", h_health, HF_ROUTE_READ, NULL},
    {"GET", "/v1/service/{svc}/pod/{pod}/info", h_pod_info, HF_ROUTE_READ,
     NULL},
    {"GET", "/v1/stacks", hf_stacks_list_handler, HF_ROUTE_READ, NULL},
    {"POST", "/v1/stacks", hf_stacks_deploy_handler, HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/stacks/{stack}", hf_stacks_get_handler, HF_ROUTE_READ, NULL},
    {"PUT", "/v1/stacks/{stack}", hf_stacks_update_handler, HF_ROUTE_WRITE,
     NULL},
    {"DELETE", "/v1/stacks/{stack}", hf_stacks_remove_handler,
     HF_ROUTE_WRITE, "delete_volumes:bool"},
    {"POST", "/v1/stacks/{stack}/diff", hf_stacks_diff_handler,
     HF_ROUTE_READ, NULL},
    {"GET", "/v1/remotes", hf_remotes_list_handler, HF_ROUTE_READ, NULL},
    {"POST", "/v1/remotes", hf_remotes_add_handler, HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/remotes/{name}", hf_remotes_get_handler, HF_ROUTE_READ,
     NULL},
    {"DELETE", "/v1/remotes/{name}", hf_remotes_delete_handler,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/dr/hello", hf_dr_hello_handler, HF_ROUTE_REMOTE, NULL},
    {"PUT", "/v1/dr/standby/{svc}", hf_dr_standby_put_handler,
     HF_ROUTE_REMOTE, NULL},
    {"DELETE", "/v1/dr/standby/{svc}", hf_dr_standby_delete_handler,
     HF_ROUTE_REMOTE, NULL},
    {"GET", "/v1/dr", hf_dr_list_handler, HF_ROUTE_READ, NULL},
    {"POST", "/v1/service/{svc}/dr", hf_dr_enable_handler, HF_ROUTE_WRITE,
     NULL},
    {"DELETE", "/v1/service/{svc}/dr", hf_dr_disable_handler,
     HF_ROUTE_WRITE, NULL},
    {"GET", "/v1/service/{svc}/dr", hf_dr_status_handler, HF_ROUTE_READ,
     NULL},
    {"POST", "/v1/service/{svc}/dr/failover", hf_dr_failover_handler,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/service/{svc}/dr/switchover", hf_dr_switchover_handler,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/dr/standby/{svc}/promote", hf_dr_promote_handler,
     HF_ROUTE_REMOTE, NULL},
    {"POST", "/v1/service/{svc}/dr/failback", hf_dr_failback_handler,
     HF_ROUTE_WRITE, NULL},
    {"POST", "/v1/dr/failback/{svc}", hf_dr_reverse_handler,
     HF_ROUTE_REMOTE, NULL},
};

const struct hf_http_route *hf_server_routes(size_t *n)
{
	*n = HF_ARRAY_LEN(routes);
	return routes;
}
