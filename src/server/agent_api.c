/*
 * agent_api.c - the agents' side of the server's API: POST
 * /v1/agent/register (a node's own credential, nodeauth.h) and POST
 * /v1/agent/sync (docs/protocol.md): an agent's node info and task
 * reports come in and are folded into the state; its node's desired set
 * goes out, at once or when it changes (a long poll).
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "http/http.h"
#include "server/agent_api.h"
#include "server/cluster.h"
#include "server/events.h"
#include "server/nodeauth.h"
#include "server/orders.h"
#include "server/sched.h"
#include "server/state.h"

#define AGENT_MAX_WAIT_S 30

void hf_agent_register_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *body = NULL;
	bool registered;
	char *why = NULL;
	const char *node;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	node = json_string_value(json_object_get(body, "node_id"));
	rc = hf_nodeauth_register(
	    s, node, json_string_value(json_object_get(body, "token")),
	    req->remote_addr, &registered, &why);
	if (rc)
		hf_http_error(resp, rc, "%s", why);
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "node_id", node,
				       "registered", registered));
	free(why);
	json_decref(body);
}

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

			if (api && (!n->link->api || strcmp(api, n->link->api))) {
				free(n->link->api);
				n->link->api = hf_xstrdup(api);
			}
			if (key && (!n->link->api_key || strcmp(key, n->link->api_key))) {
				free(n->link->api_key);
				n->link->api_key = hf_xstrdup(key);
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
		if (started && started != n->link->agent_started_at) {
			if (n->link->agent_started_at) {
				hf_log("node %s: its agent restarted", id);
				hf_event(s, "agent", NULL, "node", id, NULL,
					 "agent restarted", NULL);
			}
			n->link->agent_started_at = started;
		}
	}
	n->last_seen = hf_now_ms();
	/*
	 * With a shared store (etcd) followers read nodes from it: the time
	 * the node was last seen is written every third of the node timeout,
	 * so they can tell a live node from a lost one.
	 */
	if (!fresh && strcmp(hf_store_backend_name(s->store), "etcd") == 0 &&
	    n->last_seen - n->link->saved_seen >
		(int64_t)(s->opts.node_timeout * 1000 / 3))
		fresh = true;
	if (fresh) {
		n->link->saved_seen = n->last_seen;
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
	json_t *dels;
	json_t *desired;

	n->last_seen = hf_now_ms();
	dels = hf_orders_volume_deletions(s, n);
	desired = hf_sched_desired(s, n);
	hf_http_json(resp, 200,
		     json_pack("{s:I, s:o, s:o, s:i, s:s?}", "generation",
			       (json_int_t)n->link->gen, "tasks", desired,
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
	struct hf_srv *s = ctx;
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
		hf_http_error(resp,
			      s->store_failed ? HF_EUNWRITABLE : HF_ENOLEADER,
			      "%s; try again",
			      s->store_failed ? "this server cannot write the "
						"store and stopped acting"
					      : "this server no longer leads");
		hf_state_unlock(s);
		return;
	}
	n = hf_state_node(s, w->node);
	if (n && w->seen == n->link->gen && now < w->until && !s->stopping &&
	    !hf_http_server_stopping(req->server)) {
		hf_http_defer(req, resp, &n->link->waitq, (long)(w->until - now),
			      sync_resume, w, sync_wait_free);
	} else if (n) {
		sync_answer(s, n, resp);
	} else {
		hf_http_error(resp, HF_ENOTFOUND, "no node '%s'", w->node);
	}
	hf_state_unlock(s);
}

void hf_agent_sync_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
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

		if (json_is_array(tasks) && seq >= n->link->last_report_seq) {
			n->link->last_report_seq = seq;
			hf_sched_reconcile_node(s, node_id, tasks);
		}
	}
	dv = json_object_get(body, "deleted_volumes");
	if (json_array_size(dv))
		hf_sched_volumes_deleted(s, n->id, dv);
	/*
	 * A report that changed something is acted on by the scheduler's
	 * next tick (hf_sched_changed woke it); it batches the reports of
	 * every agent that arrive meanwhile. The poll is held, costing no
	 * thread, until this node's desired set gets a new generation
	 * (hf_sched_publish wakes n->waitq) or the wait is up.
	 */
	hf_state_batch_end(s);
	if ((long)(wait * 1000) > 0 && seen == n->link->gen && !s->stopping) {
		struct sync_wait *w = hf_xcalloc(1, sizeof(*w));
		long ms = (long)(wait * 1000);

		w->node = hf_xstrdup(n->id);
		w->seen = seen;
		w->until = hf_now_ms() + ms;
		hf_http_defer(req, resp, &n->link->waitq, ms, sync_resume, w,
			      sync_wait_free);
	} else {
		sync_answer(s, n, resp);
	}
	hf_state_unlock(s);
	json_decref(body);
}

