/*
 * decide.h - the scheduler's rules, as pure functions: from the model (read
 * only), the time, a random source and the settings (struct
 * hf_decide_ctx) to a list of actions (decide-t.h). Plan runs and their
 * steps, placement, recovery with backoff, essential tasks, replace, node
 * loss, scale-in with drains, removal, what an agent's report does to a
 * launch, and the plan views the API shows.
 *
 * Nothing here reads a clock, prints, draws from random(), touches the
 * store or takes a lock; a function may update ctx->place (derived
 * scratch) and draws from ctx->rng, and never changes the model. Actions
 * are appended to `out`; the caller applies them (server/apply.c) before
 * it asks for more: each function decides one unit of work, and the next
 * unit's rules must see the last one's outcome, as they did when each
 * decision changed the state at once.
 *
 * The tick (server/tick.c) asks, for each service in order: removal (a
 * service being removed, then nothing else), backoff resets, node loss,
 * each instance being replaced, the plan runs (hf_decide_runs_*, one unit
 * per step that acts, then recovery), then scale-in. `cfg` is the
 * service's target when the tick came to it.
 */
#ifndef HF_PLAN_DECIDE_H
#define HF_PLAN_DECIDE_H

#include "plan/decide-t.h"
#include "plan/plan.h"

/* ------------------------------------------------------------------ */
/* Action lists                                                         */

/*
 * Appends an action of `kind` on service/instance/task (each copied; may
 * be NULL) and returns it, zeroed otherwise, for the caller to fill in;
 * valid until the next push.
 */
struct hf_action *hf_actions_push(struct hf_actions *a, enum hf_action_kind kind,
				  const char *service, const char *instance,
				  const char *task);
/* Appends a line for the server's log (HF_ACT_LOG), printf-style. */
void hf_actions_log(struct hf_actions *a, const char *fmt, ...)
    HF_PRINTF(2, 3);
/* Frees the actions' contents and empties the list (keeps its memory). */
void hf_actions_reset(struct hf_actions *a);
/* Frees everything. */
void hf_actions_release(struct hf_actions *a);
/* "LAUNCH", "KILL", ... for messages and tests. */
const char *hf_action_kind_name(enum hf_action_kind kind);

/* ------------------------------------------------------------------ */
/* Placement's scratch                                                  */

void hf_place_cache_release(struct hf_place_cache *c);
/* Nothing derived holds any more: recomputed on next use. */
void hf_place_cache_stale(struct hf_place_cache *c);
/*
 * Makes the cache stale when applied actions moved an instance in a way
 * placement did not record itself (unplaced, removed, a new target).
 */
void hf_place_cache_note(struct hf_place_cache *c, const struct hf_actions *a);

/* ------------------------------------------------------------------ */
/* The tick's rules                                                     */

/* When the scheduler must look next: the earliest restart backoff to end. */
void hf_decide_wake(const struct hf_model *m, struct hf_decide_ctx *ctx,
		    struct hf_actions *out);
/*
 * A service being removed: its tasks are stopped; once none runs, its
 * volumes are deleted or kept and its records go.
 */
void hf_decide_removal(const struct hf_model *m, const struct hf_service *svc,
		       struct hf_decide_ctx *ctx, struct hf_actions *out);
/* A task that stayed up long enough earns a fresh backoff. */
void hf_decide_backoff_reset(const struct hf_model *m,
			     const struct hf_service *svc,
			     struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * Instances on a node that stopped answering wait (their volumes are
 * there); a service that opted in with a permanent-failure timeout gets
 * them replaced once the node stayed away long enough. A decommissioned
 * node's instances are replaced at once.
 */
void hf_decide_node_loss(const struct hf_model *m, const struct hf_service *svc,
			 const struct hf_config *cfg, struct hf_decide_ctx *ctx,
			 struct hf_actions *out);
/*
 * An instance being replaced: its tasks are stopped, its volumes deleted
 * on its node, then it forgets its node and ports and the deploy plan
 * launches it afresh (its pod's replace tasks first).
 */
void hf_decide_replace(const struct hf_model *m, const struct hf_service *svc,
		       const struct hf_instance *in, struct hf_decide_ctx *ctx,
		       struct hf_actions *out);

/*
 * The plan runs of a service, one unit at a time: hf_decide_runs_next
 * appends the next unit's actions and returns true, or returns false when
 * the runs and recovery are done. Every active run is evaluated first, so
 * that steps already under way hold their pod instances before any step
 * starts (one step at a time works on an instance, across all plans);
 * then each run's steps act, one unit per step; then recovery relaunches
 * failed tasks the service keeps running, never into a resource set a
 * holding step needs. The cursor holds no pointer into what apply may
 * free or move (runs go by index).
 */
struct hf_decide_runs;
struct hf_decide_runs *hf_decide_runs_begin(const struct hf_service *svc,
					    const struct hf_config *cfg);
bool hf_decide_runs_next(struct hf_decide_runs *rt, const struct hf_model *m,
			 struct hf_decide_ctx *ctx, struct hf_actions *out);
void hf_decide_runs_end(struct hf_decide_runs *rt);

/*
 * Scale-in: instances the target no longer wants (pod gone, index past its
 * count) are removed one at a time, highest index first: drained (the
 * pod's decommission task), stopped, then their volumes deleted (or kept)
 * and the record removed, each stage a state of the instance's lifecycle
 * (model/instance_life.h). Raising the count again cancels what has not
 * been removed; an instance being replaced is left to its replace.
 */
void hf_decide_decommission(const struct hf_model *m,
			    const struct hf_service *svc,
			    const struct hf_config *cfg,
			    struct hf_decide_ctx *ctx, struct hf_actions *out);

/* ------------------------------------------------------------------ */
/* Operations' rules                                                    */

/*
 * Starts (or restarts) plan `plan`: its progress cleared, its parameters
 * replaced by params (copied) unless NULL, active. A custom plan's tasks
 * start their failure count afresh.
 */
void hf_decide_start_plan(const struct hf_model *m, const struct hf_service *svc,
			  const char *plan, const struct hf_kvlist *params,
			  struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * Makes cfg (among svc's configs) the target and starts the plan a change
 * runs (`update` if the spec has one, else `deploy`); other deploy and
 * update runs stop where they are. Instances of pods whose effective spec
 * changed lose the restart backoff their old spec earned.
 */
void hf_decide_set_target(const struct hf_model *m, const struct hf_service *svc,
			  const struct hf_config *cfg, bool rollback,
			  struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * Stops every live task of an instance so recovery relaunches it (same
 * node, same volumes, new ids); a launch that failed for good may try
 * again.
 */
void hf_decide_pod_restart(const struct hf_model *m, const struct hf_service *svc,
			   const struct hf_instance *in, const char *why,
			   struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * A decommission step force-completed: the instance goes without waiting
 * for its drain (nothing when it is not draining or its drain failed).
 */
void hf_decide_skip_drain(const struct hf_service *svc,
			  const struct hf_instance *in, struct hf_actions *out);
/*
 * The volumes kept for service svc (only instance's when not NULL) on
 * every node are to be deleted; who: "operator" or "scheduler". Returns
 * how many.
 */
size_t hf_decide_delete_kept(const struct hf_model *m, const char *svc,
			     const char *instance, const char *who,
			     struct hf_actions *out);
/* Node `node`'s agent deleted the volumes keys[0..n). */
void hf_decide_volumes_deleted(const struct hf_model *m, const char *node,
			       const char *const *keys, size_t n,
			       struct hf_actions *out);

/* ------------------------------------------------------------------ */
/* Replicated volumes (plan/xvol.c)                                     */

/*
 * An instance of pod with external volumes is about to be placed: a
 * name held by another service's volume, or by a volume being deleted,
 * makes it unplaceable (the message returned, the caller frees it).
 * Otherwise candidates are narrowed in cands[0..n) (by node id; reasons
 * kept in notes): a volume that exists already has its replica on one
 * node, which alone may take the instance (one replica: repl=1); new
 * volumes need a node with a storage pool whose capacity, less what the
 * server placed there, holds them. Returns NULL then.
 */
struct hf_place_node;
char *hf_decide_xvol_candidates(const struct hf_model *m,
				const struct hf_service *svc,
				const struct hf_spec_pod *pod,
				const struct hf_instance *in,
				struct hf_place_node *cands, size_t n,
				struct hf_decide_ctx *ctx,
				struct hf_strlist *notes);
/*
 * Before tasks of instance `in` (of pod) launch on node: each of its
 * external volumes exists (made, with its replica on node, or a KEPT one
 * of the service taken back), is attached on node (a new epoch, stored
 * before any agent sees it) and node reported it ready at that epoch.
 * Returns true when all are; else appends what moves them on, sets the
 * instance's message to what it waits for, and returns false.
 */
bool hf_decide_xvols_attached(const struct hf_model *m,
			      const struct hf_service *svc,
			      const struct hf_spec_pod *pod,
			      const struct hf_instance *in, const char *node,
			      struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * The external volumes of instance `in` are detached (HF_XVOLOP_DETACH,
 * those attached), kept (HF_XVOLOP_KEEP) or deleted (HF_XVOLOP_DELETE),
 * with why for the log and events.
 */
void hf_decide_xvols_release(const struct hf_model *m,
			     const struct hf_service *svc,
			     const struct hf_instance *in, enum hf_xvol_op op,
			     const char *why, struct hf_actions *out);
/*
 * The external volume `name` is deleted if KEPT (DELETING already: as
 * good). Returns 1 then, 0 when there is no such volume, -1 when an
 * instance uses it (ACTIVE).
 */
int hf_decide_xvol_delete(const struct hf_model *m, const char *name,
			  const char *who, struct hf_actions *out);
/*
 * The external volume `name` grows to size bytes: its record first (the
 * nodes holding its replicas grow them, the attached node grows the
 * volume and its file system: docs/design/volumes.md §14). Returns 1,
 * 0 when it is that size already, or -1 with *why (malloc'ed) saying
 * why not: no such volume, a smaller size (volumes never shrink), one
 * past the limit, or a replica's pool without room for the growth.
 */
int hf_decide_xvol_resize(const struct hf_model *m, const char *name,
			  int64_t size, const char *who,
			  struct hf_actions *out, char **why);
/*
 * Snapshots of external volumes (docs/design/volumes.md §15; xsnap.c).
 * Each returns 1 (actions pushed), or -1 with *why (malloc'ed; *conflict
 * true when the volume exists but refuses: 409, else 404).
 *
 * snap_take: snapshot `name` (NULL: one is made from now) with id `id`
 * of volume `volume`, taken by its attachment (it must be attached).
 * snap_delete: the snapshot (by name) goes; a FAILED one at once, else
 * its attachment deletes it from the replicas (now, or at the next
 * attach). restore: volume goes back to snapshot `name`; the caller
 * detaches it and restarts its pod, so that the next attachment restores
 * it before anything mounts it (every replica must hold the snapshot and
 * be in sync).
 */
int hf_decide_snap_take(const struct hf_model *m, const char *volume,
			const char *name, const char *id, int64_t now,
			const char *who, struct hf_actions *out, char **why,
			bool *conflict);
int hf_decide_snap_delete(const struct hf_model *m, const char *volume,
			  const char *name, const char *who,
			  struct hf_actions *out, char **why, bool *conflict);
int hf_decide_snap_restore(const struct hf_model *m, const char *volume,
			   const char *name, const char *who,
			   struct hf_actions *out, char **why, bool *conflict);
/*
 * clone: a new volume new_name (id new_id; replica ids rids, one per
 * replica holding the snapshot, at most 3) for service new_service, made
 * from snapshot `snap` of `volume` on the nodes that hold it; KEPT until
 * an instance of new_service of that volume name takes it. Refused when
 * the snapshot is not ready, the name is taken or invalid, or a pool has
 * no room.
 */
int hf_decide_snap_clone(const struct hf_model *m, const char *volume,
			 const char *snap, const char *new_name,
			 const char *new_service, const char *new_id,
			 const char *const *rids, int64_t now,
			 const char *who, struct hf_actions *out, char **why,
			 bool *conflict);
/*
 * A new volume new_name (id new_id, replica ids rids) for new_service
 * from backup `backup` of volume `volume` at url with credential cred:
 * size bytes, repl replicas (1-3) on nodes with pools that hold it
 * (most free first); encrypted when the backup is, which needs its data
 * key: key = {named key, the data key sealed by it, the backed-up
 * volume's id} from the backup's manifest, or NULL for the backed-up
 * volume's own (it must be here). Refused when the name is taken, or
 * too few pools have room.
 */
int hf_decide_from_backup(const struct hf_model *m, const char *new_name,
			  const char *new_service, const char *new_id,
			  const char *const *rids, unsigned repl, int64_t size,
			  bool secure, const char *const *key,
			  const char *cred, const char *url,
			  const char *volume, const char *backup, int64_t now,
			  struct hf_actions *out, char **why, bool *conflict);
/* Node made and serves the clone replicas `ids`. */
void hf_decide_replicas_filled(const struct hf_model *m, const char *node,
			       const char *const *ids, size_t n,
			       struct hf_actions *out);
/*
 * What node's attach process of volume (at epoch) says of its snapshot
 * requests: takes done or failed, deletes done, a restore done.
 * `results` are proto's hf_proto_snap_result (ids, ops, ok, replicas,
 * error), passed field by field.
 */
struct hf_snap_outcome {
	const char *id, *op, *error;
	bool ok;
	const char *const *replicas;
	size_t nreplicas;
};
void hf_decide_snap_results(const struct hf_model *m, const char *node,
			    const char *volume, uint64_t epoch,
			    const struct hf_snap_outcome *res, size_t n,
			    int64_t now, struct hf_actions *out);

/* The KEPT volumes of service svc are deleted. Returns how many. */
size_t hf_decide_xvols_delete_kept(const struct hf_model *m, const char *svc,
				   const char *who, struct hf_actions *out);
/*
 * Node `node`, serving volume `volume` at `epoch`, asks that its remote
 * replicas drop[0..n) leave the in-sync set (they failed a write; why
 * says how). Taken only from the volume's attached node at its current
 * epoch, for replicas in sync on other nodes, and only while at least
 * min_sync in-sync replicas remain (else writes keep waiting, as the
 * policy says, and an event says why once): each becomes DOWN with an
 * event naming the volume, the replica's node, why, and how many
 * replicas writes now go to.
 */
void hf_decide_isr_drop(const struct hf_model *m, const char *node,
			const char *volume, uint64_t epoch,
			const char *const *drop, size_t n, const char *why,
			struct hf_actions *out);
/*
 * DOWN replicas of svc's attached volumes whose nodes are connected again
 * (with their replica server) become RESYNCING: the attachment lists them
 * as remotes to copy the volume to.
 */
void hf_decide_xvols_heal(const struct hf_model *m, const char *svc,
			  struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * Node `node`, serving `volume` at `epoch`, says its resyncing remotes
 * ids[0..n) hold every write: IN_SYNC (only from the attached node at
 * the volume's epoch).
 */
void hf_decide_resynced(const struct hf_model *m, const char *node,
			const char *volume, uint64_t epoch,
			const char *const *ids, size_t n,
			struct hf_actions *out);
/*
 * Node `node`, serving `volume` at `epoch`, reports the copy to its
 * RESYNCING replica: done of total bytes (kept when the percent moved).
 */
void hf_decide_resync_progress(const struct hf_model *m, const char *node,
			       const char *volume, uint64_t epoch,
			       const char *replica, int64_t done,
			       int64_t total, struct hf_actions *out);
/* Node `node` deleted the replicas ids[0..n) (it may list others too). */
void hf_decide_replicas_deleted(const struct hf_model *m, const char *node,
				const char *const *ids, size_t n,
				struct hf_actions *out);

/* ------------------------------------------------------------------ */
/* Reports                                                              */

/*
 * One task report from node `node`'s agent: the launch's new state (the
 * record side of the lifecycle table, task/lifecycle.h), and
 * for a launch that ended, what follows (a failure counted with its
 * backoff, a ONCE task done, an essential task's siblings stopped).
 * Reports of launches that are not the node's, or already final, change
 * nothing (reports are idempotent).
 */
void hf_decide_report(const struct hf_model *m, const char *node,
		      const struct hf_proto_report *rep,
		      struct hf_decide_ctx *ctx, struct hf_actions *out);
/*
 * The newest report of a node's agent lists `ids`: live launches of the
 * instances on the node (on_node) that it does not list are LOST.
 */
void hf_decide_reconcile(const struct hf_model *m,
			 const struct hf_node_insts *on_node,
			 const char *const *ids, size_t nids,
			 struct hf_decide_ctx *ctx, struct hf_actions *out);

/* ------------------------------------------------------------------ */
/* Restarts in place                                                    */

/*
 * The policy of restarts in place that the launch order of slot sl's
 * current launch carries (proto.h's hf_proto_restart): the server's own
 * backoff (o: base, max, reset), so that the node restarts the task the
 * way recovery would relaunch it, only without the round trip. Only for
 * a launch whose exit means nothing but "run it again": a goal RUNNING
 * task that is not paused (debug mode), and either not essential or the
 * only goal RUNNING task of its pod (an essential task's failure restarts
 * its whole pod: the server's decision). FINISH and ONCE tasks, and every
 * other case, get none (p->on false) and go through the server as
 * before. Health-check failures are stops the agent orders, and a shim
 * never restarts after a stop, so they reach the server too. None at all
 * with o->no_restart_in_place (the server's --no-restart-in-place).
 */
void hf_decide_restart_policy(const struct hf_service *svc,
			      const struct hf_instance *in,
			      const struct hf_task_slot *sl,
			      const struct hf_decide_opts *o,
			      struct hf_proto_restart *p);

/* ------------------------------------------------------------------ */
/* Plan views                                                           */

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
/*
 * Fills v for plan `name` of svc at time now: a plan of its target
 * config, or the generated `recovery` and `decommission` plans. Returns 0
 * or HF_ENOTFOUND.
 */
int hf_decide_plan_view(const struct hf_service *svc, const char *name,
			int64_t now, struct hf_plan_view *v);
void hf_plan_view_release(struct hf_plan_view *v);

#endif
