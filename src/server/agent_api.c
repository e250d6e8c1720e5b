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
#include "proto/proto.h"
#include "server/agent_api.h"
#include "server/cluster.h"
#include "server/dr.h"
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
	struct hf_proto_register rg = {0};
	json_t *body = NULL;
	bool registered;
	char *why = NULL;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	/*
	 * What is missing or not a string stays NULL: hf_nodeauth_register
	 * says what a node id and a token must be.
	 */
	hf_proto_register_decode(body, &rg, &why);
	free(why);
	why = NULL;
	rc = hf_nodeauth_register(s, rg.node_id, rg.token, req->remote_addr,
				  &registered, &why);
	if (rc)
		hf_http_error(resp, rc, "%s", why);
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "node_id", rg.node_id,
				       "registered", registered));
	free(why);
	if (rg.token)
		explicit_bzero(rg.token, strlen(rg.token));
	hf_proto_register_release(&rg);
	json_decref(body);
}

/* A string the agent sent, when it differs from what is kept. */
static bool str_update(char **kept, const char *sent)
{
	if (!sent || (*kept && strcmp(sent, *kept) == 0))
		return false;
	free(*kept);
	*kept = hf_xstrdup(sent);
	return true;
}

/* A pool above this share of its capacity in use gets an event. */
#define POOL_FULL_PERCENT 90

static bool pool_full(const struct hf_node_storage *st)
{
	return st && st->capacity > 0 &&
	       st->used > st->capacity / 100 * POOL_FULL_PERCENT;
}

/*
 * The node's pool as its agent reports it now: none when the info has
 * none (its agent runs without --storage). The figures are kept in
 * memory at every sync; the record is written (true) only when the pool
 * appears, goes or moves, so the figures in the store are those of the
 * last write, until the node's next sync after a server restart.
 */
static bool storage_update(struct hf_srv *s, struct hf_node *n,
			   const struct hf_proto_node_info *info)
{
	const struct hf_proto_storage *in = &info->storage;
	struct hf_node_storage *st = n->storage;
	bool was_full = pool_full(st), moved = !st, port_moved = false;
	char *cap, *why;

	if (!info->has_storage) {
		if (!st)
			return false;
		hf_log("node %s: storage-less now (its pool was %s)", n->id,
		       st->pool ? st->pool : "-");
		hf_event(s, "agent", NULL, "node", n->id, NULL,
			 "storage-less",
			 "its agent reports no storage pool (no --storage)");
		hf_model_node_storage_free(st);
		n->storage = NULL;
		return true;
	}
	if (!st)
		st = n->storage = hf_xcalloc(1, sizeof(*st));
	if (!st->pool != !in->pool ||
	    (st->pool && strcmp(st->pool, in->pool) != 0))
		moved = true;
	if (moved) {
		free(st->pool);
		st->pool = in->pool ? hf_xstrdup(in->pool) : NULL;
	}
	st->capacity = in->capacity;
	st->provisioned = in->provisioned;
	st->used = in->used;
	st->free = in->free;
	/* 0 (not serving yet, restarting): the last port known stays. */
	for (size_t i = 0; i < st->marks.len; i++)
		free(st->marks.items[i].replica);
	st->marks.len = 0;
	{
		const json_t *e;
		size_t i;

		json_array_foreach(in->marks, i, e) {
			struct hf_node_mark *mk = HF_VEC_PUSH(&st->marks);

			mk->replica = hf_xstrdup(
			    json_string_value(json_object_get(e, "replica")));
			mk->time = json_is_true(json_object_get(e, "consistent"))
					   ? json_integer_value(
						 json_object_get(e, "time"))
					   : 0;
			mk->grouped = json_is_string(json_object_get(e, "group"));
			mk->spooled = json_integer_value(
			    json_object_get(e, "spooled"));
		}
	}
	if (in->dr_port && st->dr_port != in->dr_port) {
		/* Standbys' endpoints name it: the other site learns it. */
		hf_log("node %s: DR listener on port %lld", n->id,
		       (long long)in->dr_port);
		st->dr_port = in->dr_port;
	}
	if (in->port && st->port != in->port) {
		/* Attachments using its replicas name the port: republish. */
		hf_log("node %s: replica server %s", n->id,
		       in->port ? "listening" : "not serving");
		st->port = in->port;
		port_moved = true;
		hf_sched_changed(s, true);
	}
	cap = hf_bytes_human(st->capacity);
	if (moved) {
		char *after = hf_xasprintf("storage pool %s (capacity %s)",
					   st->pool ? st->pool : "-", cap);

		hf_log("node %s: %s", n->id, after);
		hf_event(s, "agent", NULL, "node", n->id, NULL, after, NULL);
		free(after);
	}
	if (pool_full(st) && !was_full) {
		char *used = hf_bytes_human(st->used);
		char *after = hf_xasprintf("storage pool over %d%% used",
					   POOL_FULL_PERCENT);

		why = hf_xasprintf("%s of %s used", used, cap);
		hf_log("node %s: %s: %s", n->id, after, why);
		hf_event(s, "agent", NULL, "node", n->id, NULL, after, why);
		free(after);
		free(why);
		free(used);
	}
	free(cap);
	return moved || port_moved;
}

static struct hf_node *node_update(struct hf_srv *s, const char *id,
				   const struct hf_proto_sync_req *rq)
{
	struct hf_node *n = hf_state_node(s, id);
	const struct hf_proto_node_info *info = &rq->info;
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
	if (rq->has_info) {
		int64_t started = info->started_at > 0 ? info->started_at : 0;

		fresh |= str_update(&n->hostname, info->hostname);
		fresh |= str_update(&n->address, info->address);
		str_update(&n->link->api, info->api);
		str_update(&n->link->api_key, info->api_key);
		fresh |= str_update(&n->cgroups, info->cgroups_note);
		for (size_t i = 0; i < info->attributes.len; i++)
			hf_kvlist_set(&n->attributes,
				      info->attributes.items[i].key,
				      info->attributes.items[i].value);
		if (info->cpus >= 0)
			n->cpus = info->cpus;
		if (info->memory_mb >= 0)
			n->memory_mb = (double)info->memory_mb;
		if (info->disk_mb >= 0)
			n->disk_mb = (double)info->disk_mb;
		if (info->ports.len) {
			if (info->ports.items[0].begin >= 0)
				n->port_begin = info->ports.items[0].begin;
			if (info->ports.items[0].end >= 0)
				n->port_end = info->ports.items[0].end;
		}
		fresh |= storage_update(s, n, info);
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
	bool brief;
	bool held;                /* the request held the set of seen */
	bool resend;              /* the answer asks for full reports */
	struct hf_strlist listed; /* with brief: the ids the request listed */
};

static void sync_wait_free(void *arg)
{
	struct sync_wait *w = arg;

	free(w->node);
	hf_strlist_release(&w->listed);
	free(w);
}

/*
 * A volume whose writes on node n started failing for a full pool: an
 * event once per attachment (the count going up from 0).
 */
static void nospace_event(struct hf_srv *s, const struct hf_node *n,
			  const struct hf_proto_volume_report *r)
{
	const struct hf_xvol *v = hf_model_xvol(&s->model, r->volume);
	char *why = hf_xasprintf(
	    "%lld write(s) refused with ENOSPC on node %s: the file system of "
	    "its storage pool is full (free space there, or move the volume's "
	    "pod)",
	    (long long)r->nospace, n->id);

	hf_log("volume %s: %s", r->volume, why);
	hf_event(s, "agent", v ? v->service : NULL, "volume", r->volume, NULL,
		 "writes failing: no space left in the pool", why);
	free(why);
}

/*
 * A volume's DR stream as its attach process reported it (ship.h); an
 * event when its state or link changed (connecting, syncing, streaming,
 * fenced; up or down).
 */
static void dr_report(struct hf_srv *s, const char *volume,
		      struct hf_node_dr *d, const json_t *o)
{
	const char *st = json_string_value(json_object_get(o, "state"));
	const char *msg = json_string_value(json_object_get(o, "message"));
	char *was = d->state ? hf_xasprintf("%s%s", d->state,
					     d->link_up ? "" : " (link down)")
			     : NULL;
	char *now;

	free(d->state);
	free(d->message);
	memset(d, 0, sizeof(*d));
	if (!o || !st) {
		free(was);
		return;
	}
	d->has = true;
	d->state = hf_xstrdup(st);
	d->message = msg ? hf_xstrdup(msg) : NULL;
	d->link_up = json_is_true(json_object_get(o, "link_up"));
	d->consistent = json_is_true(json_object_get(o, "consistent"));
	d->lag_seconds = json_number_value(json_object_get(o, "lag_seconds"));
	d->lag_bytes = json_integer_value(json_object_get(o, "lag_bytes"));
	d->journal_bytes =
	    json_integer_value(json_object_get(o, "journal_bytes"));
	d->journal_size = json_integer_value(json_object_get(o, "journal_size"));
	d->applied_time = json_integer_value(json_object_get(o, "applied_time"));
	d->shipped = json_integer_value(json_object_get(o, "shipped"));
	d->blocked = json_integer_value(json_object_get(o, "blocked"));
	d->overflows = json_integer_value(json_object_get(o, "overflows"));
	d->copy_same = json_integer_value(json_object_get(o, "copy_same"));
	d->sync_done = json_integer_value(
	    json_object_get(json_object_get(o, "sync"), "done"));
	d->sync_total = json_integer_value(
	    json_object_get(json_object_get(o, "sync"), "total"));
	now = hf_xasprintf("%s%s", st, d->link_up ? "" : " (link down)");
	if (!was || strcmp(was, now) != 0) {
		const struct hf_xvol *v = hf_model_xvol(&s->model, volume);

		hf_event(s, "agent", v ? v->service : NULL, "dr", volume,
			 was ? was : "none", now, d->message);
	}
	free(was);
	free(now);
}

/*
 * Keeps what the node's agent says of the volumes it serves (every sync
 * lists them all) and raises the full-pool event; true when a volume
 * became ready or changed epoch, so the launches waiting for it are
 * looked at.
 */
static bool volreps_update(struct hf_srv *s, struct hf_node *n,
			   const struct hf_proto_sync_req *rq)
{
	bool news = false;

	for (size_t i = 0; i < rq->volumes.len; i++) {
		const struct hf_proto_volume_report *r = &rq->volumes.items[i];
		const struct hf_node_volrep *old =
		    hf_model_node_volrep(n, r->volume);

		if (r->nospace > 0 &&
		    (!old || old->epoch != (uint64_t)r->epoch || !old->nospace))
			nospace_event(s, n, r);
	}

	for (size_t i = 0; i < rq->volumes.len; i++) {
		const struct hf_proto_volume_report *r = &rq->volumes.items[i];
		const struct hf_node_volrep *old =
		    hf_model_node_volrep(n, r->volume);
		bool ready = r->state && strcmp(r->state, "ready") == 0;
		bool failed = r->state && strcmp(r->state, "failed") == 0;

		if (!old || old->ready != ready ||
		    old->epoch != (uint64_t)r->epoch ||
		    failed != (old->failed != NULL) ||
		    (failed && strcmp(old->failed,
				      r->message ? r->message : "") != 0))
			news = true;
	}
	if (news || rq->volumes.len != n->volreps.len) {
		/* The streams' states carry over (their events say changes). */
		struct hf_strlist dr_vol = {0}, dr_was = {0}, dr_up = {0};

		for (size_t i = 0; i < n->volreps.len; i++)
			if (n->volreps.items[i].dr.state) {
				hf_strlist_push(&dr_vol, n->volreps.items[i].volume);
				hf_strlist_push(&dr_was,
						n->volreps.items[i].dr.state);
				hf_strlist_push(&dr_up, n->volreps.items[i].dr.link_up
							    ? "1"
							    : "");
			}
		hf_model_node_volreps_clear(n);
		for (size_t i = 0; i < rq->volumes.len; i++) {
			const struct hf_proto_volume_report *r =
			    &rq->volumes.items[i];
			struct hf_node_volrep *nr = HF_VEC_PUSH(&n->volreps);

			memset(nr, 0, sizeof(*nr));
			for (size_t k = 0; k < dr_vol.len; k++)
				if (!strcmp(dr_vol.items[k], r->volume)) {
					nr->dr.link_up = *dr_up.items[k];
					nr->dr.state = hf_xstrdup(dr_was.items[k]);
				}
			nr->volume = hf_xstrdup(r->volume);
			nr->epoch = r->epoch > 0 ? (uint64_t)r->epoch : 0;
			nr->ready = r->state && strcmp(r->state, "ready") == 0;
			if (r->state && strcmp(r->state, "failed") == 0)
				nr->failed = hf_xstrdup(r->message ? r->message
								   : "");
		}
		hf_strlist_release(&dr_vol);
		hf_strlist_release(&dr_was);
		hf_strlist_release(&dr_up);
	}
	/* The counters change with every report: no news, just kept. */
	for (size_t i = 0; i < rq->volumes.len; i++) {
		const struct hf_proto_volume_report *r = &rq->volumes.items[i];
		struct hf_node_volrep *nr = NULL;

		for (size_t k = 0; !nr && k < n->volreps.len; k++)
			if (strcmp(n->volreps.items[k].volume, r->volume) == 0)
				nr = &n->volreps.items[k];
		if (!nr)
			continue;
		free(nr->note);
		nr->note = nr->ready && r->message ? hf_xstrdup(r->message)
						   : NULL;
		nr->written = r->written;
		nr->replicated = r->replicated;
		nr->resync_sent = r->resync_sent;
		nr->resync_planned = r->resync_planned;
		nr->nospace = r->nospace;
		nr->has_write_us = r->has_write_us;
		memcpy(nr->write_us, r->write_us, sizeof(nr->write_us));
		nr->write_us_sum = r->write_us_sum;
		for (size_t k = 0; k < nr->missed.len; k++)
			free(nr->missed.items[k].replica);
		nr->missed.len = 0;
		for (size_t k = 0; k < r->missed.len; k++) {
			struct hf_node_missed *m = HF_VEC_PUSH(&nr->missed);

			m->replica = hf_xstrdup(r->missed.items[k].replica);
			m->bytes = r->missed.items[k].bytes;
		}
		dr_report(s, r->volume, &nr->dr, r->dr);
	}
	return news;
}

/*
 * The node's desired set, as the answer to its sync. listed: the task ids
 * of a brief request (hf_proto_sync_req.brief), which the answer names by
 * id alone; NULL for full orders. Lock held.
 */
static void sync_answer(struct hf_srv *s, struct hf_node *n,
			const char *const *listed, size_t nlisted, bool resend,
			int64_t held_gen, struct hf_http_resp *resp)
{
	struct hf_proto_sync_resp out;
	struct hf_map known = {0};

	hf_proto_sync_resp_init(&out);
	n->last_seen = hf_now_ms();
	hf_orders_volume_deletions(s, n, &out.delete_volumes);
	for (size_t i = 0; listed && i < nlisted; i++)
		hf_map_put(&known, listed[i], (void *)listed[i]);
	hf_sched_desired(s, n, listed ? &known : NULL, &out);
	hf_map_release(&known);
	out.generation = (int64_t)n->link->gen;
	/*
	 * The set the agent holds, each task one it listed: no need to send
	 * a thousand ids back at every sync of a deploy.
	 */
	if (listed && held_gen > 0 && held_gen == out.generation) {
		bool all_known = true;

		for (size_t i = 0; all_known && i < out.tasks.len; i++)
			all_known = out.tasks.items[i].known;
		if (all_known) {
			for (size_t i = 0; i < out.tasks.len; i++)
				hf_proto_launch_release(&out.tasks.items[i]);
			out.tasks.len = 0;
			out.tasks_unchanged = true;
		}
	}
	out.heartbeat_interval = 2;
	out.cluster = s->cluster_id ? hf_xstrdup(s->cluster_id) : NULL;
	out.reports_epoch = hf_xstrdup(s->reports_epoch);
	out.resend = resend;
	hf_http_json(resp, 200, hf_proto_sync_resp_encode(&out));
	hf_proto_sync_resp_release(&out);
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
		sync_answer(s, n,
			    w->brief ? (const char *const *)w->listed.items
				     : NULL,
			    w->listed.len, w->resend,
			    w->held ? (int64_t)w->seen : 0, resp);
	} else {
		hf_http_error(resp, HF_ENOTFOUND, "no node '%s'", w->node);
	}
	hf_state_unlock(s);
}

static void report_keep(struct hf_node_link *l,
			const struct hf_proto_report *r, double seq)
{
	struct hf_link_report *k = hf_map_get(&l->reports, r->task_id);
	struct hf_proto_report old;

	if (!k) {
		k = hf_xcalloc(1, sizeof(*k));
		hf_proto_report_copy(&k->rep, r);
		k->seq = seq;
		hf_map_put(&l->reports, k->rep.task_id, k);
		return;
	}
	/* An older request, overtaken by a newer one: not what is now. */
	if (seq < k->seq)
		return;
	old = k->rep;
	hf_proto_report_copy(&k->rep, r);
	k->seq = seq;
	/* The map's key is the old id until this put replaces it. */
	hf_map_put(&l->reports, k->rep.task_id, k);
	hf_proto_report_release(&old);
}

/* The newest sync lists every task of the node: the others are gone. */
static void reports_prune(struct hf_node_link *l,
			  const struct hf_proto_sync_req *rq)
{
	struct hf_map listed = {0};
	struct hf_strlist gone = {0};

	for (size_t i = 0; i < rq->tasks.len; i++)
		hf_map_put(&listed, rq->tasks.items[i].task_id, &listed);
	for (size_t i = 0; i < rq->same.len; i++)
		hf_map_put(&listed, rq->same.items[i], &listed);
	for (size_t i = 0; i < l->reports.cap; i++) {
		const char *id = l->reports.slots[i].key;

		if (id && !hf_map_get(&listed, id))
			hf_strlist_push(&gone, id);
	}
	for (size_t i = 0; i < gone.len; i++) {
		struct hf_link_report *k = hf_map_get(&l->reports, gone.items[i]);

		hf_map_del(&l->reports, gone.items[i]);
		hf_proto_report_release(&k->rep);
		free(k);
	}
	hf_strlist_release(&gone);
	hf_map_release(&listed);
}

/*
 * The request's task reports, to the scheduler: full ones kept for later
 * "same" ids, and those ids as the report kept. Returns whether one of
 * them could not be had (another server's epoch, or not kept here): the
 * answer then asks for every report in full.
 */
static bool take_reports(struct hf_srv *s, struct hf_node *n,
			 const struct hf_proto_sync_req *rq)
{
	bool epoch = rq->reports_epoch &&
		     strcmp(rq->reports_epoch, s->reports_epoch) == 0;
	bool resend = false;

	for (size_t i = 0; i < rq->tasks.len; i++) {
		report_keep(n->link, &rq->tasks.items[i], (double)rq->seq);
		hf_sched_task_report(s, n->id, &rq->tasks.items[i]);
	}
	for (size_t i = 0; i < rq->same.len; i++) {
		struct hf_link_report *k =
		    epoch ? hf_map_get(&n->link->reports, rq->same.items[i])
			  : NULL;

		if (k)
			hf_sched_task_report(s, n->id, &k->rep);
		else
			resend = true;
	}
	return resend;
}

void hf_agent_sync_handler(void *ctx, const struct hf_http_req *req,
			 struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_proto_sync_req rq;
	json_t *body = NULL;
	const char *node_id;
	struct hf_node *n;
	uint64_t seen;
	double wait;
	char *refused, *why = NULL;
	bool resend;

	if (hf_http_body_json(req, resp, &body))
		return;
	hf_proto_sync_req_init(&rq);
	if (hf_proto_sync_req_decode(body, &rq, &why)) {
		hf_http_error(resp, HF_EINVAL, "%s", why);
		free(why);
		goto out;
	}
	node_id = rq.node_id;
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
		goto out;
	}
	seen = (uint64_t)rq.generation;
	wait = rq.wait;
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
	refused = hf_cluster_admit(s, node_id, &rq);
	if (refused) {
		hf_cluster_refusal(s, resp, refused);
		hf_state_unlock(s);
		free(refused);
		goto out;
	}
	/* The sync's records are written together before it waits. */
	hf_state_batch_begin(s);
	n = node_update(s, node_id, &rq);
	resend = take_reports(s, n, &rq);
	/*
	 * Only the newest report may declare tasks lost: an older request
	 * that was overtaken by a newer one lacks tasks started since.
	 */
	if (rq.has_tasks && (double)rq.seq >= n->link->last_report_seq) {
		n->link->last_report_seq = (double)rq.seq;
		hf_sched_reconcile_node(s, node_id, &rq);
		reports_prune(n->link, &rq);
	}
	if (rq.deleted_volumes.len)
		hf_sched_volumes_deleted(s, n->id, &rq.deleted_volumes);
	if (rq.deleted_replicas.len) {
		hf_sched_replicas_deleted(s, n->id, &rq.deleted_replicas);
		hf_dr_replicas_deleted(s, n->id, &rq.deleted_replicas);
	}
	if (rq.filled_replicas.len)
		hf_sched_replicas_filled(s, n->id, &rq.filled_replicas);
	/* How far the replica being made is (memory only). */
	for (size_t i = 0; i < n->fills.len; i++)
		free(n->fills.items[i].replica);
	n->fills.len = 0;
	for (size_t i = 0; i < rq.filling.len; i++) {
		struct hf_node_fill *f = HF_VEC_PUSH(&n->fills);

		f->replica = hf_xstrdup(rq.filling.items[i].replica);
		f->done = rq.filling.items[i].done;
		f->total = rq.filling.items[i].total;
	}
	for (size_t i = 0; i < rq.dr_final.len; i++)
		hf_dr_final_note(s, n->id, &rq.dr_final.items[i]);
	if (volreps_update(s, n, &rq))
		hf_sched_changed(s, false);
	/*
	 * In-sync changes are decided here, not at the next tick: writes of
	 * the volume wait for them (the agent syncs at once to ask).
	 */
	hf_sched_isr_requests(s, n->id, &rq);
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
		w->brief = rq.brief && rq.has_tasks;
		w->held = rq.held;
		w->resend = resend;
		for (size_t i = 0; w->brief && i < rq.tasks.len; i++)
			hf_strlist_push(&w->listed, rq.tasks.items[i].task_id);
		for (size_t i = 0; w->brief && i < rq.same.len; i++)
			hf_strlist_push(&w->listed, rq.same.items[i]);
		hf_http_defer(req, resp, &n->link->waitq, ms, sync_resume, w,
			      sync_wait_free);
	} else {
		const char **ids = NULL;
		size_t nids = rq.tasks.len + rq.same.len;

		if (rq.brief && rq.has_tasks) {
			ids = hf_xcalloc(nids + 1, sizeof(*ids));
			for (size_t i = 0; i < rq.tasks.len; i++)
				ids[i] = rq.tasks.items[i].task_id;
			for (size_t i = 0; i < rq.same.len; i++)
				ids[rq.tasks.len + i] = rq.same.items[i];
		}
		sync_answer(s, n, ids, nids, resend, rq.held ? rq.generation : 0,
			    resp);
		free(ids);
	}
	hf_state_unlock(s);
out:
	hf_proto_sync_req_release(&rq);
	json_decref(body);
}

