/*
 * cluster.h (server) - the cluster's identity, and which agents may sync.
 *
 * An empty or lost store must not empty the cluster. Every cluster has an
 * id (HF_CLUSTER_KEY in the store), made once by the first server to lead
 * an empty store; agents keep it in their state file and send it with
 * every sync. A server acts on a sync only when the agent belongs here:
 *
 *   the agent's cluster       the node in the store    the sync is
 *   ----------------------    ---------------------    -----------------
 *   none (a new agent)        known or not             accepted (*)
 *   this cluster's            known                    accepted
 *   this cluster's            unknown                  refused
 *   another cluster's         known or not             refused
 *   (*) refused when the node is unknown and the agent runs tasks: an
 *       agent from before cluster ids meeting an empty store.
 *
 * A refused sync changes nothing and is answered 409 {"error":
 * "not-in-cluster", "message": why, "cluster": this cluster's id}: the
 * agent keeps its tasks running and says why in its log, and `node list`
 * shows the node as refused, with the reason, until an operator decides:
 * restore the store (`holdfast store restore`), or adopt the node
 * (`holdfast node adopt NODE --yes`, POST /v1/nodes/{node}/adopt), after
 * which its next sync is accepted, the agent takes this cluster's id, and
 * the desired set it gets stops every task this cluster does not know.
 *
 * Everything here runs with srv->mu held, on the leader.
 */
#ifndef HF_SERVER_CLUSTER_H
#define HF_SERVER_CLUSTER_H

#include <jansson.h>

#include "http/http.h"
#include "proto/proto.h"
#include "server/state.h"

/*
 * Gives a store that has none a cluster id (a fenced write, so a failure
 * shows in hf_state_failed()). Called once the leader loaded the state.
 */
void hf_cluster_ensure(struct hf_srv *s);

/*
 * Whether the decoded sync request (its cluster and tasks) from node_id
 * may be acted on. Returns NULL, or why not (the caller frees it), after
 * recording the node as refused.
 */
char *hf_cluster_admit(struct hf_srv *s, const char *node_id,
		       const struct hf_proto_sync_req *rq);

/* The 409 answer to a refused sync. */
void hf_cluster_refusal(struct hf_srv *s, struct hf_http_resp *resp,
			const char *why);

/*
 * Marks the refused nodes in a GET /v1/nodes list (adds "refused": why
 * to a known node, or an entry for a node the store does not know).
 */
void hf_cluster_list_refused(struct hf_srv *s, json_t *nodes);

/*
 * Adopts refused node id (hf_ops_node_adopt): its next sync is accepted.
 * Returns 0 with what its agent said it runs in *live_tasks, or
 * HF_ENOTFOUND / HF_ECONFLICT (a known node) with *why (the caller frees
 * it) when the node is not refused.
 */
int hf_cluster_adopt(struct hf_srv *s, const char *id, size_t *live_tasks,
		     char **why);

/* Frees the refused and adopted lists. */
void hf_cluster_release(struct hf_srv *s);

#endif
