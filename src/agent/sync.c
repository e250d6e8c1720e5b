/*
 * sync.c - POST /v1/agent/sync (docs/protocol.md). Two threads talk to the
 * server: the long poll, which is always outstanding (wait = 10 s), and
 * the immediate sync, which sends a short request (wait = 0) whenever a
 * task changed state so an exit reaches the server without waiting for
 * the long poll to end. Both apply the desired set they get back.
 *
 * Two answers may be applied out of order: a long poll sent before a short
 * sync may be answered after it, and either thread may be the first to
 * take the lock with its answer. An answer is therefore dropped when its
 * generation is lower than the one applied AND the agent had not yet
 * applied that one when it sent the request: then the answer may predate
 * what the agent already knows. A lower generation in answer to a request
 * that already carried the higher one means the server went back (a
 * restart on a restored store), and is applied. Applying is idempotent,
 * so applying an answer twice, or two answers of one generation, is
 * harmless.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "http/cred.h"
#include "http/http.h"
#include "common/err.h"
#include "common/map.h"
#include "common/util.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define SHORT_TIMEOUT_MS 10000
#define LONG_SLACK_MS 10000
#define POLL_MIN_MS 200
#define POLL_PAUSE_MS 500
/*
 * Short syncs start at least short_gap() apart: a change after a quiet
 * spell goes at once, and while tasks keep changing (a deploy), each
 * sync takes every change of the moment instead of one sync per change.
 * The gap grows with the node's tasks, as the cost of a sync does (the
 * server looks at every task it lists), so that a deploy of many tasks
 * costs the server about as much per task as one of a few: 25 ms on a
 * node of a few tasks, 1 ms more per 10 tasks (125 ms with 1000), at
 * most 150. It only spaces syncs out while changes keep coming, and not
 * past the end of a burst: when the launch pool runs out of jobs (the
 * last launches of a deploy are RUNNING), the sync goes at once.
 */
#define SHORT_GAP_MS 25
#define SHORT_GAP_MAX_MS 150
#define SHORT_GAP_TASKS_PER_MS 10

static int64_t short_gap(const struct hf_agent *ag)
{
	int64_t gap = SHORT_GAP_MS +
		      (int64_t)(ag->tasks.len / SHORT_GAP_TASKS_PER_MS);

	return gap < SHORT_GAP_MAX_MS ? gap : SHORT_GAP_MAX_MS;
}

/*
 * The request body. Lock held. *seq receives the request's number,
 * *sent_gen the generation it tells the server.
 */
static char *build_request(struct hf_agent *ag, int wait, uint64_t *seq,
			   int64_t *sent_gen, size_t *nsame)
{
	struct hf_proto_sync_req req;
	struct hf_proto_report r;
	json_t *o;
	char *text;

	hf_proto_sync_req_init(&req);
	*seq = ++ag->seq;
	*sent_gen = ag->generation;
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (t->forgotten)
			continue;
		/*
		 * From this request on every request carries the final
		 * state, so an answer to any of them that no longer lists
		 * the task acknowledges its end.
		 */
		if (hf_task_state_final(t->state) && !t->terminal_seq)
			t->terminal_seq = *seq;
		ag_task_report(t, &r);
		/* What the server acknowledged already goes as its id. */
		if (t->has_acked && ag->reports_epoch &&
		    hf_proto_report_equal(&r, &t->acked)) {
			hf_strlist_push(&req.same, t->id);
			hf_proto_report_release(&r);
			continue;
		}
		hf_proto_report_release(&t->sent);
		hf_proto_report_copy(&t->sent, &r);
		t->has_sent = true;
		t->sent_seq = *seq;
		*HF_VEC_PUSH(&req.tasks) = r;
	}
	req.has_tasks = true;
	if (req.same.len)
		req.reports_epoch = hf_xstrdup(ag->reports_epoch);
	*nsame = req.same.len;
	req.held = ag->held_gen > 0 && ag->held_gen == ag->generation;
	/* Every listed task keeps its order here: answer with ids. */
	req.brief = true;
	for (size_t i = 0; i < ag->volumes_deleted.len; i++)
		hf_strlist_push(&req.deleted_volumes,
				ag->volumes_deleted.items[i]);
	ag_attach_reports(ag, &req);
	ag_vserve_reports(ag, &req);
	req.node_id = hf_xstrdup(ag->node_id);
	/*
	 * seq orders this agent's reports for the server (protocol.md):
	 * the start time in ms plus a counter, so it grows across restarts.
	 */
	req.seq = ag->started_at + (int64_t)*seq;
	req.generation = ag->generation;
	req.wait = wait;
	/* The cluster it belongs to: a server of another one refuses it. */
	req.cluster = ag->cluster_id ? hf_xstrdup(ag->cluster_id) : NULL;
	/* The node's info is the agent's: lent for the encoding only. */
	req.has_info = true;
	req.info = ag->info;
	o = hf_proto_sync_req_encode(&req);
	hf_proto_node_info_init(&req.info);
	hf_proto_sync_req_release(&req);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	return text;
}

static bool volume_in_use(struct hf_agent *ag, const char *key,
			  const char **by)
{
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (hf_task_state_final(t->state))
			continue;
		/* A key names a volume or everything below it (an instance). */
		for (size_t k = 0; k < t->volume_keys.len; k++) {
			const char *v = t->volume_keys.items[k];
			size_t n = strlen(key);

			if (strncmp(v, key, n) == 0 && (!v[n] || v[n] == '/')) {
				*by = t->id;
				return true;
			}
		}
	}
	return false;
}

static void strlist_remove_at(struct hf_strlist *l, size_t i)
{
	free(l->items[i]);
	memmove(&l->items[i], &l->items[i + 1],
		(l->len - i - 1) * sizeof(*l->items));
	l->len--;
}

static void apply_volumes(struct hf_agent *ag, const struct hf_strlist *dv)
{
	size_t i;

	/* Deletions the server no longer asks for are acknowledged. */
	for (i = 0; i < ag->volumes_deleted.len;)
		if (!hf_strlist_has(dv, ag->volumes_deleted.items[i]))
			strlist_remove_at(&ag->volumes_deleted, i);
		else
			i++;
	for (i = 0; i < dv->len; i++) {
		const char *key = dv->items[i], *by = NULL;

		if (!ag_volume_key_valid(key)) {
			hf_log("delete_volumes: ignoring an invalid key");
			continue;
		}
		if (hf_strlist_has(&ag->volumes_deleted, key) ||
		    hf_strlist_has(&ag->volumes_queued, key))
			continue;
		if (volume_in_use(ag, key, &by)) {
			hf_log("not deleting volume %s yet: task %s still "
			       "uses it", key, by);
			continue;
		}
		hf_strlist_push(&ag->volumes_queued, key);
		ag_job_push(ag, AG_JOB_DELETE_VOLUME, NULL, key);
	}
}

/*
 * Launches every listed id never launched. Lock held. Returns whether the
 * agent now holds the whole set: every task of it here with its order
 * (not when an id came as known for a task dropped since, nor when the
 * new ids could not be recorded).
 */
static bool apply_launches(struct hf_agent *ag, struct hf_proto_sync_resp *r)
{
	HF_VEC(struct ag_task *) fresh = {0};
	struct hf_map by_id = {0}; /* the node's tasks: one lookup per order */
	bool whole = true;
	int64_t now = hf_now_ms();
	size_t i;

	for (i = 0; i < ag->tasks.len; i++)
		hf_map_put(&by_id, ag->tasks.items[i]->id, ag->tasks.items[i]);
	for (i = 0; i < r->tasks.len; i++) {
		struct hf_proto_launch *o = &r->tasks.items[i], *order;
		const char *id = o->task_id;
		struct ag_task *t;

		if (!id || !ag_task_id_valid(id)) {
			hf_log("desired set: ignoring an order without a "
			       "valid task_id");
			continue;
		}
		t = hf_map_get(&by_id, id);
		if (!t && o->known) {
			/*
			 * Named by id as one this agent listed, yet gone
			 * since (an ended task dropped meanwhile): there is
			 * no order to launch it with, and the next request
			 * does not list it, so its answer carries the order
			 * if the task is still wanted.
			 */
			whole = false;
			continue;
		}
		if (t) {
			t->listed = true;
			if (t->forgotten) {
				/* Listed again: report it until acknowledged. */
				t->forgotten = false;
				t->terminal_seq = 0;
			}
			continue;
		}
		t = ag_task_new(ag, id);
		t->listed = true;
		*HF_VEC_PUSH(&ag->tasks) = t;
		if (ag_launched_has(ag, id)) {
			/*
			 * Launched before and its directory is gone (removed
			 * by age, or never made because the agent stopped
			 * right after recording the id): never again.
			 */
			ag_task_end(ag, t, HF_TEV_LOST,
				    "launched on this node before; its task "
				    "directory is gone");
			continue;
		}
		t->state = HF_TS_STAGING;
		/* The order moves from the answer to the task. */
		order = hf_xmalloc(sizeof(*order));
		*order = *o;
		hf_proto_launch_init(o);
		ag_task_set_order(ag, t, order);
		ag_launched_add(ag, id, now);
		hf_map_put(&by_id, t->id, t);
		*HF_VEC_PUSH(&fresh) = t;
	}
	hf_map_release(&by_id);
	if (fresh.len == 0)
		goto out;
	/*
	 * The ids are on disk before any shim starts: an agent that dies
	 * between the two finds the ids recorded and reports the tasks lost
	 * rather than launching them a second time. Should the write fail,
	 * nothing is launched and the next answer tries again.
	 */
	if (ag_state_save(ag)) {
		for (i = 0; i < fresh.len; i++) {
			struct ag_task *t = fresh.items[i];

			ag_launched_remove(ag, t->id);
			for (size_t k = 0; k < ag->tasks.len; k++)
				if (ag->tasks.items[k] == t) {
					ag->tasks.items[k] =
						ag->tasks.items[--ag->tasks.len];
					break;
				}
			ag_unattend(ag, t);
			ag_task_free(t);
		}
		whole = false;
		goto out;
	}
	for (i = 0; i < fresh.len; i++) {
		hf_log("task %s: launching", fresh.items[i]->id);
		ag_job_push(ag, AG_JOB_LAUNCH, fresh.items[i], NULL);
	}
out:
	HF_VEC_FREE(&fresh);
	return whole;
}

/*
 * Takes the cluster id of a server that accepted this agent, and keeps it
 * before anything of its answer is applied: from now on a server of
 * another cluster (or one that lost its store) is refused. Returns 0, or
 * -1 when it cannot be kept (the answer is then not applied).
 */
static int take_cluster(struct hf_agent *ag, const struct hf_proto_sync_resp *r)
{
	const char *id = r->cluster;
	char *old = ag->cluster_id;

	if (ag->refused) {
		hf_log("the server accepts this node again; its desired set "
		       "applies");
		free(ag->refused);
		ag->refused = NULL;
	}
	if (!id || (old && strcmp(old, id) == 0))
		return 0;
	ag->cluster_id = hf_xstrdup(id);
	if (ag_state_save(ag)) {
		free(ag->cluster_id);
		ag->cluster_id = old;
		return -1;
	}
	if (old)
		hf_log("this node now belongs to cluster %s (it was adopted; "
		       "it belonged to %s)",
		       id, old);
	else
		hf_log("this node belongs to cluster %s", id);
	free(old);
	return 0;
}

/*
 * The server refused this node (409 not-in-cluster, docs/protocol.md):
 * it does not know it, or knows another cluster. Nothing is applied, so
 * every task keeps running; the reason is logged once.
 */
static void refused_by(struct hf_agent *ag, const char *url, const char *msg)
{
	if (ag->refused && strcmp(ag->refused, msg) == 0)
		return;
	hf_log("server %s refuses this node: %s (nothing is stopped here "
	       "until that changes)",
	       url, msg);
	free(ag->refused);
	ag->refused = hf_xstrdup(msg);
}

static void forget_acks(struct hf_agent *ag)
{
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		hf_proto_report_release(&t->acked);
		t->has_acked = false;
	}
}

/*
 * The reports request seq carried in full are the server's now: listed
 * as "same" while unchanged, as long as its answers keep their
 * reports_epoch. A new epoch (another server, or this one leading
 * anew) or a "resend" forgets every acknowledgment.
 */
static void take_acks(struct hf_agent *ag, const struct hf_proto_sync_resp *r,
		      uint64_t seq)
{
	bool newest = seq >= ag->epoch_seq;

	if (!r->reports_epoch || !ag->reports_epoch ||
	    strcmp(r->reports_epoch, ag->reports_epoch) != 0) {
		/* An older answer, from a server since replaced: no news. */
		if (!newest)
			return;
		forget_acks(ag);
		free(ag->reports_epoch);
		ag->reports_epoch =
		    r->reports_epoch ? hf_xstrdup(r->reports_epoch) : NULL;
	}
	if (newest)
		ag->epoch_seq = seq;
	if (!ag->reports_epoch)
		return;
	if (r->resend) {
		forget_acks(ag);
		ag_mark_dirty(ag);
		return;
	}
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (!t->has_sent || t->sent_seq != seq)
			continue;
		hf_proto_report_release(&t->acked);
		t->acked = t->sent;
		t->has_acked = true;
		memset(&t->sent, 0, sizeof(t->sent));
		t->sent.healthy = -1;
		t->has_sent = false;
	}
}

static void apply_response(struct hf_agent *ag, struct hf_proto_sync_resp *r,
			   uint64_t seq, int64_t sent_gen)
{
	int64_t g = r->generation;
	bool wake = false;

	if (g < ag->generation && sent_gen < ag->generation)
		return; /* stale: see the top of this file */
	if (g != ag->generation)
		hf_log("desired set generation %lld: %zu task(s)",
		       (long long)g, r->tasks.len);
	ag->generation = g;
	if (r->tasks_unchanged && g != ag->held_gen) {
		/* Not a set this agent holds: ask for it whole. */
		ag->held_gen = 0;
		ag_mark_dirty(ag);
		return;
	}
	if (!r->tasks_unchanged) {
		/* The set in full: what is listed now is what it lists. */
		for (size_t i = 0; i < ag->tasks.len; i++)
			ag->tasks.items[i]->listed = false;
		ag->held_gen = apply_launches(ag, r) ? g : 0;
	}
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (t->listed)
			continue;
		if (!hf_task_state_final(t->state) && t->stop == AG_STOP_NONE) {
			hf_log("task %s is not in the desired set: stopping it",
			       t->id);
			t->stop = AG_STOP_ORDER;
			ag_attend(ag, t);
			wake = true;
		} else if (hf_task_state_final(t->state) && !t->forgotten &&
			   t->terminal_seq && t->terminal_seq <= seq) {
			t->forgotten = true;
		}
	}
	apply_volumes(ag, &r->delete_volumes);
	/*
	 * The held replicas before the deletions: a replica is dropped from
	 * the replica server before its files go.
	 */
	if (ag_vserve_apply(ag, r))
		wake = true;
	/* Changed attachments: the supervisor reconciles them at once. */
	if (ag_attach_apply(ag, r))
		wake = true;
	if (wake)
		ag_wake(ag);
}

/* sync_once(): the server refused this node; wait longer before again. */
#define AG_SYNC_REFUSED (-2)
#define REFUSED_WAIT_MS 5000

/* Logs why registering failed, once until it works. Lock held. */
static void join_log(struct hf_agent *ag, const char *fmt, ...)
	HF_PRINTF(2, 3);

static void join_log(struct hf_agent *ag, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ag->join_logged)
		return;
	ag->join_logged = true;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	hf_log("%s", msg ? msg : "cannot register this node");
	free(msg);
}

/*
 * Registers this node's own credential (nodeauth.h) with the server at
 * url, with the join token: --token-file / HOLDFAST_TOKEN, else the local
 * admin credential of a server on this machine. Lock held; released
 * during the request. Returns 0 when the server knows the credential;
 * else sets *elsewhere when another server should be asked (this one is
 * unreachable or answered 5xx: it does not lead).
 */
static int register_node(struct hf_agent *ag, const char *url,
			 bool *elsewhere)
{
	char *join = NULL, *err = NULL, *resp = NULL, *body;
	json_t *o, *e = NULL;
	long status = 0;
	int rc;

	if (ag->opts->token) {
		join = hf_xstrdup(ag->opts->token);
	} else if (hf_cred_local_load(url, &join, &err) != 0) {
		join_log(ag, "the server does not know this node's credential "
			     "and there is no join token to register it: give "
			     "the agent --token-file FILE or HOLDFAST_TOKEN%s%s%s",
			 err ? " (" : "", err ? err : "", err ? ")" : "");
		free(err);
		/* Another server of the cluster may know it already. */
		*elsewhere = true;
		return -1;
	}
	{
		struct hf_proto_register reg = {ag->node_id, ag->node_token};

		o = hf_proto_register_encode(&reg);
	}
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	pthread_mutex_unlock(&ag->mu);
	rc = hf_httpc_request(url, "POST", "/v1/agent/register", join, body,
			      SHORT_TIMEOUT_MS, &status, &resp, &err);
	pthread_mutex_lock(&ag->mu);
	explicit_bzero(body, strlen(body));
	free(body);
	explicit_bzero(join, strlen(join));
	free(join);
	if (rc == 0 && status == 200) {
		hf_log("node %s: its credential is registered with %s",
		       ag->node_id, url);
		ag->join_logged = false;
		rc = 0;
		goto out;
	}
	*elsewhere = rc != 0 || status >= 500;
	if (rc == 0)
		e = resp ? json_loads(resp, 0, NULL) : NULL;
	join_log(ag, "cannot register node %s with %s: %s%s%s", ag->node_id,
		 url, rc ? (err ? err : hf_err_msg(rc)) : "the server answered ",
		 rc ? "" : json_string_value(json_object_get(e, "message"))
			 ? json_string_value(json_object_get(e, "message"))
			 : "an error",
		 "; retrying");
	json_decref(e);
	rc = -1;
out:
	free(resp);
	free(err);
	return rc;
}

/*
 * One request and, on success, its answer applied. Called with the lock
 * held; releases it during the request. Returns 0, AG_SYNC_REFUSED or -1.
 */
static int sync_once(struct hf_agent *ag, int wait)
{
	const struct hf_agent_opts *o = ag->opts;
	size_t server = ag->server % o->servers.len;
	const char *url = o->servers.items[server];
	char *resp = NULL, *err = NULL, *body;
	json_t *r = NULL;
	uint64_t seq;
	int64_t sent_gen;
	long status = 0;
	bool registered = false, elsewhere = false, full = false;
	size_t nsame;
	int rc;

again:
	/* A request sent again (registered, or listing every task). */
	free(resp);
	resp = NULL;
	free(err);
	err = NULL;
	ag_pool_refresh(ag);
	body = build_request(ag, wait, &seq, &sent_gen, &nsame);
	pthread_mutex_unlock(&ag->mu);
	rc = hf_httpc_request(url, "POST", "/v1/agent/sync", ag->node_token,
			      body,
			      wait ? wait * 1000L + LONG_SLACK_MS
				   : SHORT_TIMEOUT_MS,
			      &status, &resp, &err);
	if (rc == 0 && status == 200)
		r = json_loads(resp, 0, NULL);
	pthread_mutex_lock(&ag->mu);
	free(body);
	/* The server does not know this node's credential yet: register. */
	if (rc == 0 && status == 401 && !registered &&
	    register_node(ag, url, &elsewhere) == 0) {
		registered = true;
		goto again;
	}
	if (json_is_object(r)) {
		struct hf_proto_sync_resp answer;
		char *why = NULL;

		if (ag->link_down)
			hf_log("server %s answers again", url);
		ag->link_down = false;
		hf_proto_sync_resp_init(&answer);
		rc = 0;
		if (hf_proto_sync_resp_decode(r, &answer, &why))
			hf_log("the server's answer is not a desired set (%s); "
			       "ignored", why);
		else if ((rc = take_cluster(ag, &answer)) == 0) {
			take_acks(ag, &answer, seq);
			apply_response(ag, &answer, seq, sent_gen);
		}
		free(why);
		hf_proto_sync_resp_release(&answer);
		goto out;
	} else if (rc == 0 && status == 409) {
		json_t *e = resp ? json_loads(resp, 0, NULL) : NULL;
		const char *code = json_string_value(json_object_get(e, "error"));
		const char *msg = json_string_value(json_object_get(e, "message"));

		if (code && strcmp(code, "not-in-cluster") == 0 && msg) {
			/*
			 * Tasks listed as "same" meant nothing to it: say
			 * them all, so its refusal counts what runs here.
			 */
			forget_acks(ag);
			if (nsame && !full) {
				json_decref(e);
				full = true;
				goto again;
			}
			ag->link_down = false;
			refused_by(ag, url, msg);
			json_decref(e);
			rc = AG_SYNC_REFUSED;
			goto out;
		}
		json_decref(e);
	}
	/* Not answered: what it acknowledged may be another server's now. */
	forget_acks(ag);
	{
		json_t *e = resp ? json_loads(resp, 0, NULL) : NULL;
		const char *msg = json_string_value(json_object_get(e, "message"));
		char *line;

		/* Said once per outage, and again when the reason changes. */
		if (rc)
			line = hf_xasprintf("cannot reach server %s: %s; retrying "
					    "(tasks keep running)",
					    url, err ? err : hf_err_msg(rc));
		else
			line = hf_xasprintf("server %s answered %ld%s%s; "
					    "retrying (tasks keep running)",
					    url, status, msg ? ": " : "",
					    msg ? msg : "");
		if (!ag->link_down || !ag->link_msg ||
		    strcmp(ag->link_msg, line) != 0) {
			hf_log("%s", line);
			free(ag->link_msg);
			ag->link_msg = line;
		} else {
			free(line);
		}
		json_decref(e);
		ag->link_down = true;
	}
	/* Another server may answer (several URLs: a cluster). */
	if ((rc || status >= 500 || elsewhere) &&
	    ag->server % o->servers.len == server)
		ag->server = server + 1;
	rc = -1;
out:
	json_decref(r);
	free(resp);
	free(err);
	return rc;
}

/* Sleeps up to ms with the lock held (released while waiting). */
static void backoff_wait(struct hf_agent *ag, int ms)
{
	struct timespec until;

	hf_deadline_after_ms(&until, ms);
	while (!ag->stopping &&
	       pthread_cond_timedwait(&ag->sync_cv, &ag->mu, &until) == 0)
		;
}

static int next_backoff(int ms)
{
	ms = ms ? ms * 2 : BACKOFF_FIRST_MS;
	return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

void *ag_long_poll_thread(void *arg)
{
	struct hf_agent *ag = arg;
	int backoff = 0;

	pthread_mutex_lock(&ag->mu);
	while (!ag->stopping) {
		int64_t gen = ag->generation, start = hf_mono_ms();
		int rc = sync_once(ag, ag->opts->wait_s);

		if (rc == AG_SYNC_REFUSED) {
			backoff_wait(ag, REFUSED_WAIT_MS);
			continue;
		}
		if (rc == 0) {
			backoff = 0;
			/*
			 * An immediate answer with nothing new means the
			 * server does not hold requests: do not spin.
			 */
			if (ag->generation == gen &&
			    hf_mono_ms() - start < POLL_MIN_MS)
				backoff_wait(ag, POLL_PAUSE_MS);
			continue;
		}
		backoff = next_backoff(backoff);
		backoff_wait(ag, backoff);
	}
	pthread_mutex_unlock(&ag->mu);
	return NULL;
}

/* Whether the launch pool ran out of jobs since dry_seen. Lock held. */
static bool pool_went_dry(const struct hf_agent *ag, uint64_t dry_seen)
{
	return ag->pool_dry_seq != dry_seen && !ag->jobs.len &&
	       !ag->running.len;
}

/* Waits out the rest of a gap, or until the pool runs dry. Lock held. */
static void gap_wait(struct hf_agent *ag, int ms, uint64_t dry_seen)
{
	struct timespec until;

	hf_deadline_after_ms(&until, ms);
	while (!ag->stopping && !pool_went_dry(ag, dry_seen) &&
	       pthread_cond_timedwait(&ag->sync_cv, &ag->mu, &until) == 0)
		;
}

void *ag_short_sync_thread(void *arg)
{
	struct hf_agent *ag = arg;
	int backoff = 0;
	int64_t last = 0; /* monotonic ms the last short sync started */
	uint64_t dry_seen = 0; /* ag->pool_dry_seq at that sync */

	pthread_mutex_lock(&ag->mu);
	while (!ag->stopping) {
		int64_t now = hf_mono_ms(), gap;

		if (!ag->sync_dirty) {
			pthread_cond_wait(&ag->sync_cv, &ag->mu);
			continue;
		}
		gap = short_gap(ag);
		if (last && now - last < gap && !pool_went_dry(ag, dry_seen)) {
			gap_wait(ag, (int)(gap - (now - last)), dry_seen);
			continue;
		}
		last = now;
		dry_seen = ag->pool_dry_seq;
		ag->sync_dirty = false;
		if (sync_once(ag, 0) == 0) {
			backoff = 0;
			continue;
		}
		/* Refused: the long poll keeps asking; no need to here. */
		if (ag->refused)
			continue;
		/* Not sent: the change still has to reach the server. */
		ag->sync_dirty = true;
		backoff = next_backoff(backoff);
		backoff_wait(ag, backoff);
	}
	pthread_mutex_unlock(&ag->mu);
	return NULL;
}
