/*
 * orders.h - the server's side of the agent protocol (docs/protocol.md):
 * launch orders and desired sets out, task reports in. Every function
 * runs with srv->mu held.
 */
#ifndef HF_SERVER_ORDERS_H
#define HF_SERVER_ORDERS_H

#include <jansson.h>

#include "common/map.h"
#include "plan/decide-t.h"
#include "proto/proto.h"
#include "server/state.h"

/*
 * Fills o (hf_proto_launch_init'ed; the caller releases it) with the
 * launch order of a slot's current launch. Returns false when its config
 * no longer has the task.
 */
bool hf_orders_launch(struct hf_srv *s, const struct hf_service *svc,
		      const struct hf_instance *in,
		      const struct hf_task_slot *sl, struct hf_proto_launch *o);

/*
 * A node's complete desired set, as launch orders appended to out->tasks.
 * Gives the node a new generation first when the set changed since it
 * last got one, so one generation always names one content. A task whose
 * id is a key of known (the ids a brief request listed; NULL: none) is
 * appended as its id alone (hf_proto_launch.known): the agent has its
 * order, and building and encoding a few thousand orders per sync of a
 * busy node would make a deploy quadratic.
 */
void hf_orders_desired(struct hf_srv *s, struct hf_node *n,
		       const struct hf_map *known,
		       struct hf_proto_sync_resp *out);
/* Appends the volume keys node n's agent is to delete to out. */
void hf_orders_volume_deletions(struct hf_srv *s, const struct hf_node *n,
				struct hf_strlist *out);

/*
 * Replicated volumes (docs/protocol.md, "Volumes"): the attachments node
 * n is to serve (volumes attached there that an instance placed there
 * owns) and the replicas it is to delete (those of volumes being
 * deleted), appended to out; either may be NULL. Returns their digest,
 * a part of the desired set's.
 */
uint64_t hf_orders_xvols(struct hf_srv *s, const struct hf_node *n,
			 struct hf_proto_sync_resp *out);

/*
 * Recomputes every node's desired-set digest in one pass; each node whose
 * set changed gets a new generation and its waiting long poll is woken.
 */
void hf_orders_publish(struct hf_srv *s);

/*
 * The instances on node n: its list when the lists are current, else
 * (scratch filled by) a scan of every instance. The caller releases
 * scratch.
 */
const struct hf_node_insts *hf_orders_node_insts(struct hf_srv *s,
						 const struct hf_node *n,
						 struct hf_node_insts *scratch);

#endif
