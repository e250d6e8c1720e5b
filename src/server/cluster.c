/*
 * cluster.c - the cluster's identity and the admission of agents
 * (cluster.h).
 */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "server/cluster.h"
#include "server/events.h"
#include "server/sched.h"

void hf_cluster_ensure(struct hf_srv *s)
{
	bool empty = s->model.services.len == 0 && s->model.nodes.len == 0;

	if (s->cluster_id)
		return;
	s->cluster_id = hf_new_uuid();
	hf_state_save_cluster(s, hf_now_ms());
	if (hf_state_failed(s))
		return;
	if (empty)
		hf_log("the store is empty: this is a new cluster, id %s. If "
		       "this server ran before, its store was lost or "
		       "--data/--store names the wrong one: the agents of "
		       "the old cluster are refused, and keep their tasks, "
		       "until its store is restored (holdfast store restore) "
		       "or they are adopted (holdfast node adopt)",
		       s->cluster_id);
	else
		hf_log("this store had no cluster id (written by an older "
		       "holdfast): it is cluster %s from now on",
		       s->cluster_id);
}

static size_t live_tasks(const struct hf_proto_sync_req *rq)
{
	size_t n = 0;

	for (size_t i = 0; i < rq->tasks.len; i++)
		n += rq->tasks.items[i].state == HF_TS_STARTING ||
		     rq->tasks.items[i].state == HF_TS_RUNNING;
	return n;
}

static struct hf_refused *refused_find(struct hf_srv *s, const char *node_id)
{
	for (size_t i = 0; i < s->refused.len; i++)
		if (strcmp(s->refused.items[i].node_id, node_id) == 0)
			return &s->refused.items[i];
	return NULL;
}

static void refused_free(struct hf_refused *r)
{
	free(r->node_id);
	free(r->reason);
	free(r->cluster);
}

static void refused_forget(struct hf_srv *s, const char *node_id)
{
	struct hf_refused *r = refused_find(s, node_id);

	if (!r)
		return;
	hf_log("node %s: its agent is accepted now", node_id);
	refused_free(r);
	*r = s->refused.items[--s->refused.len];
}

static void adopted_forget(struct hf_srv *s, const char *node_id)
{
	for (size_t i = 0; i < s->adopted.len; i++) {
		if (strcmp(s->adopted.items[i], node_id) != 0)
			continue;
		free(s->adopted.items[i]);
		s->adopted.items[i] = s->adopted.items[--s->adopted.len];
		return;
	}
}

#define WHAT_NOW                                                               \
	"; its tasks keep running. Restore this server's store from a "        \
	"backup (holdfast store restore), or adopt the node into this "        \
	"cluster with `holdfast node adopt %s --yes`, which stops the tasks "  \
	"this cluster does not know"

char *hf_cluster_admit(struct hf_srv *s, const char *node_id,
		       const struct hf_proto_sync_req *rq)
{
	const char *theirs = rq->cluster;
	bool known = hf_state_node(s, node_id) != NULL;
	size_t live = live_tasks(rq);
	struct hf_refused *r;
	struct hf_buf why = HF_BUF_INIT;

	/* A leader always has one (hf_cluster_ensure); else nothing to check. */
	if (!s->cluster_id)
		return NULL;
	if (hf_strlist_has(&s->adopted, node_id)) {
		/* Adopted: accepted until it carries our id. */
		if (theirs && strcmp(theirs, s->cluster_id) == 0)
			adopted_forget(s, node_id);
		refused_forget(s, node_id);
		return NULL;
	}
	if (theirs && strcmp(theirs, s->cluster_id) != 0)
		hf_buf_addf(&why,
			    "the agent of node %s belongs to cluster %s, but "
			    "this server's store is cluster %s (an empty, lost "
			    "or replaced store, or the wrong --data/--store?)",
			    node_id, theirs, s->cluster_id);
	else if (theirs && !known)
		hf_buf_addf(&why,
			    "the agent of node %s belongs to this cluster (%s), "
			    "but this server's store does not know the node (a "
			    "store restored from before the node joined?)",
			    node_id, theirs);
	else if (!theirs && !known && live)
		hf_buf_addf(&why,
			    "the agent of node %s runs %zu task%s, but this "
			    "server's store does not know the node and the "
			    "agent has no cluster id (an agent of an older "
			    "holdfast meeting an empty or lost store?)",
			    node_id, live, live == 1 ? "" : "s");
	if (!why.len) {
		refused_forget(s, node_id);
		return NULL;
	}
	hf_buf_addf(&why, WHAT_NOW, node_id);
	/*
	 * Tasks listed by id alone ("same") tell nothing here: the agent
	 * sends every report at once when refused, and that sync is kept.
	 */
	if (rq->same.len)
		return hf_buf_detach(&why);
	r = refused_find(s, node_id);
	if (!r || strcmp(r->reason, hf_buf_str(&why)) != 0)
		hf_log("node %s: refusing its agent: %s", node_id,
		       hf_buf_str(&why));
	if (!r) {
		r = HF_VEC_PUSH(&s->refused);
		r->node_id = hf_xstrdup(node_id);
	}
	free(r->reason);
	r->reason = hf_xstrdup(hf_buf_str(&why));
	free(r->cluster);
	r->cluster = theirs ? hf_xstrdup(theirs) : NULL;
	r->live_tasks = live;
	r->last_seen = hf_now_ms();
	return hf_buf_detach(&why);
}

void hf_cluster_refusal(struct hf_srv *s, struct hf_http_resp *resp,
			const char *why)
{
	hf_http_json(resp, hf_err_http(HF_ENOTINCLUSTER),
		     json_pack("{s:s, s:s, s:s?}", "error",
			       hf_err_name(HF_ENOTINCLUSTER), "message", why,
			       "cluster", s->cluster_id));
}

void hf_cluster_list_refused(struct hf_srv *s, json_t *nodes)
{
	for (size_t i = 0; i < s->refused.len; i++) {
		const struct hf_refused *r = &s->refused.items[i];
		json_t *n = NULL, *e;
		size_t k;

		json_array_foreach(nodes, k, e) if (strcmp(json_string_value(
						   json_object_get(e, "id")),
						   r->node_id) == 0) n = e;
		if (!n) {
			n = json_pack("{s:s, s:n, s:n, s:{}, s:{}, s:n, s:I, "
				      "s:b, s:b}",
				      "id", r->node_id, "hostname", "address",
				      "attributes", "resources", "cgroups",
				      "last_seen", (json_int_t)r->last_seen,
				      "connected", false, "decommissioned",
				      false);
			json_array_append_new(nodes, n);
		}
		json_object_set_new(n, "refused", json_string(r->reason));
		json_object_set_new(n, "agent_cluster",
				    r->cluster ? json_string(r->cluster)
					       : json_null());
		json_object_set_new(n, "live_tasks",
				    json_integer((json_int_t)r->live_tasks));
	}
}

int hf_cluster_adopt(struct hf_srv *s, const char *id, size_t *live_tasks,
		     char **why)
{
	struct hf_refused *r = refused_find(s, id);

	if (!r) {
		*why = hf_xasprintf("node '%s' is not refused: there is nothing "
				    "to adopt (only an agent this server "
				    "refused can be adopted; see holdfast node "
				    "list)",
				    id);
		return hf_state_node(s, id) ? HF_ECONFLICT : HF_ENOTFOUND;
	}
	if (!hf_strlist_has(&s->adopted, id))
		hf_strlist_push(&s->adopted, id);
	hf_log("node %s adopted by the operator into cluster %s: the tasks "
	       "its agent runs that this cluster does not know are stopped",
	       id, s->cluster_id);
	hf_event(s, "operator", NULL, "node", id, "refused", "adopted",
		 "its tasks that this cluster does not know are stopped");
	*live_tasks = r->live_tasks;
	return 0;
}

void hf_cluster_release(struct hf_srv *s)
{
	for (size_t i = 0; i < s->refused.len; i++)
		refused_free(&s->refused.items[i]);
	HF_VEC_FREE(&s->refused);
	hf_strlist_release(&s->adopted);
}
