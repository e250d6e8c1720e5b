/*
 * sched.h - the scheduler: turns plan runs and the recovery rules into
 * launches and kills, and folds agents' reports back into task state.
 * Every function here runs with srv->mu held.
 */
#ifndef HF_SERVER_SCHED_H
#define HF_SERVER_SCHED_H

#include "server/state.h"

/* One pass over every service: plans, recovery, removal. */
void hf_sched_tick(struct hf_srv *s);

/*
 * Starts (or restarts) a plan run: clears its progress, sets parameters
 * (copied; may be NULL) and makes it active. Persists the run.
 */
void hf_sched_start_plan(struct hf_srv *s, struct hf_service *svc,
			 const char *plan, const struct hf_kvlist *params);

/*
 * Makes cfg (already among svc's configs) the target and starts the plan a
 * configuration change runs (`update` if the spec has one, else `deploy`).
 * The old target becomes svc->previous, for rollback.
 */
void hf_sched_set_target(struct hf_srv *s, struct hf_service *svc,
			 struct hf_config *cfg, bool rollback);

/* The statuses of a plan run's steps and phases, as the API shows them. */
struct hf_plan_view {
	const struct hf_plan_def *def;
	enum hf_status status;
	struct hf_step_out *steps;   /* flattened, as hf_plan_eval */
	struct hf_phase_out *phases;
	char **messages;             /* per step; may be NULL entries */
	bool *completed;             /* per step: in the run's completed list */
	int64_t *started;            /* per step: its start (ms), or 0 */
	struct hf_plan_defs owned;   /* a generated def (recovery) lives here */
};
/* Fills v for plan `name` of svc (run may be NULL: not started). */
int hf_sched_plan_view(struct hf_srv *s, struct hf_service *svc,
		       const char *name, struct hf_plan_view *v);
void hf_plan_view_release(struct hf_plan_view *v);

/* Applies one task report from an agent; returns true if anything changed. */
bool hf_sched_task_report(struct hf_srv *s, const char *node_id,
			  const json_t *report);
/* Marks live tasks on node that the agent did not report as lost. */
bool hf_sched_reconcile_node(struct hf_srv *s, const char *node_id,
			     const json_t *reported_tasks);
/* The launch order for a task (docs/protocol.md). */
json_t *hf_sched_launch_order(struct hf_srv *s, struct hf_service *svc,
			      struct hf_instance *in, struct hf_task_slot *sl);

/*
 * Stops every live task of an instance so recovery relaunches it (same
 * node, same volumes, new task ids). Used by pod restart, pause, resume.
 */
void hf_sched_pod_restart(struct hf_srv *s, struct hf_service *svc,
			  struct hf_instance *in, const char *why);

/* Force-completing a decommission step: remove without draining. */
bool hf_sched_skip_drain(struct hf_srv *s, struct hf_service *svc,
			 const char *instance);

/*
 * Something changed: the scheduler runs a tick soon, and when `desired`
 * (some node's desired set may differ) it publishes the sets afterwards.
 * Also wakes clients waiting for news (events).
 */
void hf_sched_changed(struct hf_srv *s, bool desired);

/*
 * A node's complete desired set (launch orders) as handed to its agent.
 * Gives the node a new generation first when the set changed since it
 * last got one, so one generation always names one content.
 */
json_t *hf_sched_desired(struct hf_srv *s, struct hf_node *n);

/*
 * Recomputes every node's desired-set digest in one pass; each node whose
 * set changed gets a new generation and its waiting long poll is woken.
 */
void hf_sched_publish(struct hf_srv *s);

/* Placement's per-tick scratch no longer holds: an instance moved. */
void hf_sched_placement_stale(struct hf_srv *s);

/*
 * Kept volumes (state.h, struct hf_kept_volume). hf_sched_keep_volume
 * records that `key` stays on node n (once); hf_sched_delete_kept turns
 * the kept volumes of service `svc` (only `instance`'s when not NULL), on
 * every node, into deletion orders for their agents, appends {"key",
 * "node"} for each to `out` (may be NULL) and returns how many. Both save
 * the nodes they change and emit events; `who` is "operator" or
 * "scheduler".
 */
void hf_sched_keep_volume(struct hf_srv *s, struct hf_node *n,
			  const char *key, const char *why);
size_t hf_sched_delete_kept(struct hf_srv *s, const char *svc,
			    const char *instance, json_t *out,
			    const char *who);
/*
 * Whether a key ("<svc>/<pod-i>", escaped as below) belongs to service svc
 * (and instance, when not NULL), given by their plain names.
 */
bool hf_sched_volume_of(const char *key, const char *svc,
			const char *instance);

/*
 * Volume directory key of an instance: "<svc>/<pod-i>", each part escaped
 * with hf_name_escape so no service's keys lie inside another's (service
 * "a/p-0" is "a%2Fp-0", not inside service "a"'s instance p-0). Its
 * volumes' keys are "<this>/<owner>/<volume>". Caller frees.
 */
char *hf_sched_instance_volume_key(const struct hf_service *svc,
				   const struct hf_instance *in);

#endif
