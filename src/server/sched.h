/*
 * sched.h - the scheduler's entry points: a tick over every service
 * (tick.c), and what operations and agents' syncs ask of it. Each decides
 * with the pure rules (plan/decide.h) and carries the decision out with
 * the one writer (server/apply.h). Every function here runs with srv->mu
 * held.
 */
#ifndef HF_SERVER_SCHED_H
#define HF_SERVER_SCHED_H

#include "plan/decide.h"
#include "proto/proto.h"
#include "server/state.h"

/* One pass over every service: plans, recovery, removal. */
void hf_sched_tick(struct hf_srv *s);

/* Fills v for plan `name` of svc (plan/decide.h's hf_decide_plan_view). */
int hf_sched_plan_view(struct hf_srv *s, struct hf_service *svc,
		       const char *name, struct hf_plan_view *v);

/*
 * Applies one task report from an agent (the lifecycle table's record
 * side); returns true if anything changed.
 */
bool hf_sched_task_report(struct hf_srv *s, const char *node_id,
			  const struct hf_proto_report *report);
/*
 * Marks live tasks on node that the agent did not report as lost. req
 * must list its tasks (req->has_tasks).
 */
bool hf_sched_reconcile_node(struct hf_srv *s, const char *node_id,
			     const struct hf_proto_sync_req *req);
/* Node node_id's agent deleted the volumes named in `deleted`. */
void hf_sched_volumes_deleted(struct hf_srv *s, const char *node_id,
			      const struct hf_strlist *deleted);

/* Node node_id's agent relays its attach processes' in-sync requests. */
void hf_sched_isr_requests(struct hf_srv *s, const char *node_id,
			   const struct hf_proto_sync_req *req);

/* Node node_id's agent deleted the replicas (ids) in `deleted`. */
void hf_sched_replicas_deleted(struct hf_srv *s, const char *node_id,
			       const struct hf_strlist *deleted);
/* The node made (and serves) the clone replicas listed: in sync now. */
void hf_sched_replicas_filled(struct hf_srv *s, const char *node_id,
			      const struct hf_strlist *filled);

/*
 * Something changed: the scheduler runs a tick soon, and when `desired`
 * (some node's desired set may differ) it publishes the sets afterwards.
 * Also wakes clients waiting for news (events).
 */
void hf_sched_changed(struct hf_srv *s, bool desired);

/* A node's desired set and the publication of every node's (orders.h). */
void hf_sched_desired(struct hf_srv *s, struct hf_node *n,
		      const struct hf_map *known,
		      struct hf_proto_sync_resp *out);
void hf_sched_publish(struct hf_srv *s);

/* Placement's per-tick scratch no longer holds: an instance moved. */
void hf_sched_placement_stale(struct hf_srv *s);

/* model.h's hf_model_volume_of and hf_model_volume_key. */
bool hf_sched_volume_of(const char *key, const char *svc,
			const char *instance);
char *hf_sched_instance_volume_key(const struct hf_service *svc,
				   const struct hf_instance *in);

#endif
