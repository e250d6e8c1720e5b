/*
 * ops.h - the operations on a cluster, one function each: deploy, update,
 * diff, rollback and remove a service; start, stop, interrupt, continue,
 * force-complete and restart plans and their steps; restart, replace,
 * pause and resume pods; set a pod type's count; decommission, adopt and
 * reset nodes; delete kept volumes. The operator API (server/api.c) is
 * one caller; an autoscaler, a stack of services, a DR failover or a UI
 * are others. They take plain C arguments and know nothing of HTTP or
 * JSON.
 *
 * The contract every hf_ops_* function keeps:
 *
 *   - The caller holds no lock: the operation takes srv->mu itself. It acts
 *     only on a leading server whose store takes writes (HF_EUNAVAIL else).
 *   - It checks before it changes anything: when it fails, nothing changed.
 *     Then it says what changes as a list of actions (plan/decide-t.h)
 *     that the one writer of records carries out (server/apply.h).
 *   - The records it changes go to the store in one batch before it
 *     returns, and its events are emitted only after that write. When the
 *     write fails it returns HF_EUNAVAIL: the server stops acting on its
 *     memory and reloads from the store (state.h); nothing the operation
 *     decided went out.
 *   - It returns 0 or a negative HF_E* code of common/err.h; then err->why
 *     is the sentence that says what and why (a spec's diagnostics are in
 *     err->diags). The caller releases err (hf_ops_err_release) and the
 *     out structure (its _release) in every case: some operations fill
 *     their out structure also when they fail (a refused change: its diff).
 *   - Whatever it answers is copied out: nothing returned points into the
 *     server's state.
 *
 * Changes are acted on by the scheduler's next tick (the operation wakes
 * it): an operation records what is wanted, it does not wait for it.
 */
#ifndef HF_SERVER_OPS_H
#define HF_SERVER_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "plan/plan.h"
#include "spec/spec.h"

struct hf_srv;

/* Why an operation failed. Zeroed by the caller; released in any case. */
struct hf_ops_err {
	char *why;             /* the sentence; NULL while nothing failed */
	struct hf_diags diags; /* a spec's diagnostics (deploy, update, diff) */
};
void hf_ops_err_release(struct hf_ops_err *err);

/* A service spec as given: the text and what fills its template. */
struct hf_ops_spec {
	const char *text;                 /* YAML with mustache; required */
	const char *file;                 /* its file name for messages, or NULL */
	const struct hf_kvlist *options;  /* template variables, or NULL */
	const struct hf_kvlist *templates; /* config templates by path, or NULL */
	const char *name; /* the service's name over the spec's, or NULL */
};

/* A pod instance's volume directory on a node. */
struct hf_ops_volume {
	char *key;      /* "<svc>/<pod-i>", escaped (sched.h) */
	char *service;  /* the plain names the key is made of */
	char *instance;
	char *node;
	char *why;      /* a kept volume: how it came to be kept; else NULL */
	int64_t since;  /* a kept volume: since when (unix ms); else 0 */
};
struct hf_ops_volumes {
	struct hf_ops_volume *items;
	size_t len, cap;
};
void hf_ops_volumes_release(struct hf_ops_volumes *v);
/*
 * Appends the volume of key on node, with the plain names the key holds
 * (why NULL, since 0); returns it.
 */
struct hf_ops_volume *hf_ops_volumes_add(struct hf_ops_volumes *v,
					 const char *key, const char *node);

/*
 * The volumes kept on any node (no instance owns them) of service svc (of
 * every service when NULL). Reads only; the caller holds srv->mu.
 */
void hf_ops_kept_volumes(struct hf_srv *s, const char *svc,
			 struct hf_ops_volumes *out);

/* ------------------------------------------------------------------ */
/* Services                                                             */

struct hf_ops_deployed {
	char *service;
	char *config_id;
	const char *plan; /* the plan it started: "deploy" */
	/*
	 * Volumes an earlier service of this name left: its instances reuse
	 * them where they are placed on their node.
	 */
	struct hf_ops_volumes kept;
};
void hf_ops_deployed_release(struct hf_ops_deployed *d);

/*
 * Deploys a new service from spec and starts its deploy plan. Fails with
 * HF_ESPEC or HF_EUNSUPPORTED (and err->diags) for a spec that does not
 * load or uses what holdfast does not support, HF_EEXISTS when a service
 * of that name exists (or is still being removed).
 */
int hf_ops_deploy(struct hf_srv *s, const struct hf_ops_spec *spec,
		  struct hf_ops_deployed *out, struct hf_ops_err *err);

/* A change of a service's target configuration, or what it would be. */
struct hf_ops_change {
	struct hf_spec_diff diff; /* from the current target to the new one */
	char *from;               /* the target's id before */
	char *to;                 /* the new target's id; NULL when unchanged */
	bool changed;             /* a new target was made */
	const char *plan;         /* its plan: "update" or "deploy" */
	char *refused;            /* diff only: why an update would be refused */
};
void hf_ops_change_release(struct hf_ops_change *c);

/*
 * Updates service svc to spec: a new configuration becomes the target and
 * the plan a change runs starts (update if the spec has one, else deploy).
 * A count set over the target's spec for a pod type (hf_ops_pod_count)
 * stays set, unless spec's count for that pod type differs from the
 * target spec's own (the operator changed it: the spec's count applies
 * again); out->diff says which of the two happened.
 * A spec that changes nothing changes nothing (0, out->changed false).
 * HF_EREFUSED when the diff refuses the change (out->diff says every
 * reason), HF_ENOTFOUND, HF_ECONFLICT while the service is being removed,
 * HF_ESPEC / HF_EUNSUPPORTED for the spec itself.
 */
int hf_ops_update(struct hf_srv *s, const char *svc,
		  const struct hf_ops_spec *spec, struct hf_ops_change *out,
		  struct hf_ops_err *err);

/*
 * What hf_ops_update would do, changing nothing: 0 with the diff, and
 * out->refused set when the update would be refused.
 */
int hf_ops_diff(struct hf_srv *s, const char *svc,
		const struct hf_ops_spec *spec, struct hf_ops_change *out,
		struct hf_ops_err *err);

/*
 * Makes configuration `to` (the previous target when NULL) the target
 * again. HF_EREFUSED when the diff refuses it (out->diff), HF_ENOTFOUND
 * for an unknown configuration, HF_ECONFLICT when there is no previous
 * one or it already is the target.
 */
int hf_ops_rollback(struct hf_srv *s, const char *svc, const char *to,
		    struct hf_ops_change *out, struct hf_ops_err *err);

struct hf_ops_removed {
	char *service;
	bool delete_volumes;
	/*
	 * The service was gone already; its kept volumes were turned into
	 * deletion orders (volumes: key and node of each).
	 */
	bool already_removed;
	/* The instances' volumes: key, instance and node of each. */
	struct hf_ops_volumes volumes;
};
void hf_ops_removed_release(struct hf_ops_removed *r);

/*
 * Removes service svc: its tasks are stopped and its records deleted by
 * the scheduler; its volumes are kept unless delete_volumes. A service
 * already removed whose volumes were kept: with delete_volumes they are
 * deleted now (out->already_removed), else HF_ENOTFOUND says they are kept.
 */
int hf_ops_remove(struct hf_srv *s, const char *svc, bool delete_volumes,
		  struct hf_ops_removed *out, struct hf_ops_err *err);

/*
 * Deletes the kept volumes of service svc (only instance's when not NULL)
 * on every node; out gets key and node of each. Volumes in use are not
 * touched: HF_ECONFLICT says what deletes them; HF_ENOTFOUND when none is
 * kept.
 */
int hf_ops_volume_delete(struct hf_srv *s, const char *svc,
			 const char *instance, struct hf_ops_volumes *out,
			 struct hf_ops_err *err);

/*
 * Grows external volume `name` to size bytes (hf_decide_xvol_resize):
 * HF_ENOTFOUND without such a volume, HF_ECONFLICT when it cannot (a
 * smaller size, a pool without room), with why in err. *changed: false
 * when it is that size already.
 */
int hf_ops_xvol_resize(struct hf_srv *s, const char *name, int64_t size,
		       bool *changed, struct hf_ops_err *err);

/*
 * Snapshots of external volume `volume` (docs/design/volumes.md §15):
 * take one named snap (NULL: named from the time; its name in *made,
 * malloc'ed), delete one, restore the volume to one (its pod, if it
 * runs, is restarted: the volume is attached again and restored before
 * the pod's tasks mount it). HF_ENOTFOUND without such a volume or
 * snapshot, HF_ECONFLICT when it cannot now (why in err). *changed:
 * false when nothing was to do (a delete already under way). who: whose
 * snapshot it is in the events ("operator", "scheduler").
 */
int hf_ops_xvol_snapshot(struct hf_srv *s, const char *volume,
			 const char *snap, const char *who, char **made,
			 struct hf_ops_err *err);
int hf_ops_xvol_snapshot_delete(struct hf_srv *s, const char *volume,
				const char *snap, bool *changed,
				struct hf_ops_err *err);
int hf_ops_xvol_restore(struct hf_srv *s, const char *volume,
			const char *snap, struct hf_ops_err *err);
/*
 * A new volume new_name for service new_service (NULL: the source's),
 * cloned from snapshot snap of volume (hf_decide_snap_clone).
 */
int hf_ops_xvol_clone(struct hf_srv *s, const char *volume, const char *snap,
		      const char *new_name, const char *new_service,
		      struct hf_ops_err *err);

/*
 * Named credentials (`holdfast credential`), records of their own under
 * /credentials/<name>: create stores rec ({"name", "type", ...}; the
 * caller checked it) unless the name is taken (HF_ECONFLICT); delete
 * removes one (HF_ENOTFOUND when there is none).
 */
/*
 * Backup `backup` of volume (to `to`, from snapshot id snap_id) is done:
 * it becomes the volume's last backup, and the snapshot the previous one
 * was made from (the old base) is deleted.
 */
int hf_ops_xvol_backup_done(struct hf_srv *s, const char *volume,
			    const char *backup, const char *snap_id,
			    const char *to, struct hf_ops_err *err);

/*
 * Backup run->id of volume is under way (first: it starts; else it runs
 * again, on run->node): kept in the volume's record until it ends. who
 * ("operator", "scheduler") is the event's.
 */
int hf_ops_xvol_backup_run(struct hf_srv *s, const char *volume,
			   const struct hf_xbk_run *run, bool first,
			   const char *who, struct hf_ops_err *err);

/*
 * Backup `backup` of volume ended without completing (why: the reason):
 * failed, or (cancelled) stopped by the operator.
 */
int hf_ops_xvol_backup_end(struct hf_srv *s, const char *volume,
			   const char *backup, const char *why, bool cancelled,
			   struct hf_ops_err *err);

/* Sets (sc) or clears (NULL) volume's own backup schedule. */
int hf_ops_xvol_backup_schedule(struct hf_srv *s, const char *volume,
				const struct hf_xbk_sched *sc,
				struct hf_ops_err *err);

/* A new volume from a backup (hf_decide_from_backup). */
int hf_ops_xvol_from_backup(struct hf_srv *s, const char *new_name,
			    const char *new_service, unsigned repl,
			    int64_t size, bool secure,
			    const char *const *key, const char *cred,
			    const char *url, const char *volume,
			    const char *backup, struct hf_ops_err *err);

int hf_ops_credential_create(struct hf_srv *s, const char *name, json_t *rec,
			     struct hf_ops_err *err);
/*
 * A remote cluster's record (remotes.h: name, url, ca, cert, key, added)
 * stored as "/remotes/<name>"; HF_EEXISTS when one has that name. Remove:
 * HF_ENOTFOUND when none has. Each an event (kind "remote").
 */
int hf_ops_remote_add(struct hf_srv *s, const char *name, json_t *rec,
		      struct hf_ops_err *err);
int hf_ops_remote_remove(struct hf_srv *s, const char *name,
			 struct hf_ops_err *err);
/*
 * Disaster recovery (dr.h). enable: service svc is replicated to remote
 * (HF_ENOTFOUND for either unknown, HF_ECONFLICT when it is already to
 * another remote; to the same one, j's settings replace the record's and
 * *updated is set);
 * disable: no more (*remote gets the remote it was replicated to).
 * standby_put: a remote cluster `from` (its certificate's name) keeps
 * rec ({service, from, cluster, config, plans, received_at}) as the
 * standby of svc here; HF_ECONFLICT when svc runs here or is another
 * remote's standby. standby_delete: from NULL is the operator. Each an
 * event (kind "dr").
 */
/* A stream's journal: size in bytes (0: as before, or the default) and
 * what happens when it is full ("block", "resync"; NULL: as before). */
struct hf_ops_dr_journal {
	int64_t size;
	const char *when_full;
};

int hf_ops_dr_enable(struct hf_srv *s, const char *svc, const char *remote,
		     const struct hf_ops_dr_journal *j, bool *updated,
		     struct hf_ops_err *err);
/* Sets (val NULL: removes) field of the "/dr/<svc>" record; an event
 * (kind "dr") says why unless NULL. */
int hf_ops_dr_set(struct hf_srv *s, const char *svc, const char *field,
		  json_t *val, const char *who, const char *why,
		  struct hf_ops_err *err);
/*
 * A switchover's state in the "/dr/<svc>" record: sw replaces its
 * "switchover" object (NULL: it goes; begin: a new one, HF_ECONFLICT
 * when one not "failed" is there), or, done, the record goes
 * (the service is the remote's now). An event (kind "dr") says why
 * (none when why is NULL: progress only).
 */
int hf_ops_dr_switchover(struct hf_srv *s, const char *svc, json_t *sw,
			 bool begin, bool done, const char *who,
			 const char *why, struct hf_ops_err *err);
int hf_ops_dr_disable(struct hf_srv *s, const char *svc, char **remote,
		      struct hf_ops_err *err);
int hf_ops_standby_put(struct hf_srv *s, const char *svc, json_t *rec,
		       const char *from, struct hf_ops_err *err);
int hf_ops_standby_delete(struct hf_srv *s, const char *svc,
			  const char *from, struct hf_ops_err *err);
int hf_ops_credential_delete(struct hf_srv *s, const char *name,
			     struct hf_ops_err *err);

/* ------------------------------------------------------------------ */
/* Plans                                                                */

/*
 * Each names the service and the plan; phase (and step: its name or
 * "plan/phase/step") where the operation takes them. Every plan operation
 * fails with HF_ENOTFOUND for an unknown service, plan, phase or step and
 * with HF_ECONFLICT while the service is being removed.
 */

/* Starts (or starts again) a plan run with parameters (env; may be NULL). */
int hf_ops_plan_start(struct hf_srv *s, const char *svc, const char *plan,
		      const struct hf_kvlist *params, struct hf_ops_err *err);
/* Stops a run: it is interrupted and forgets its progress. */
int hf_ops_plan_stop(struct hf_srv *s, const char *svc, const char *plan,
		     struct hf_ops_err *err);
/*
 * Pauses a run (phase NULL) or one phase of it: no new step starts there
 * until a continue (the SDK's interrupt; hf_ops_plan_continue resumes).
 * HF_ECONFLICT when the plan has not been started.
 */
int hf_ops_plan_interrupt(struct hf_srv *s, const char *svc,
			  const char *plan, const char *phase,
			  struct hf_ops_err *err);

/* A canary phase that waits for continues. */
struct hf_ops_gate {
	char *phase;
	char *step;        /* the step the next continue lets go */
	int continues_left;
	bool first_step;   /* it waits for a continue only, not its first step */
};

struct hf_ops_continued {
	struct hf_strlist did; /* sentences: what the continue let go */
	bool has_status;       /* the plan's view below could be made */
	enum hf_status status; /* the plan's status afterwards */
	struct {
		struct hf_ops_gate *items;
		size_t len, cap;
	} gates;               /* the gates that remain */
	int continues_needed;  /* the sum of their continues_left */
};
void hf_ops_continued_release(struct hf_ops_continued *c);

/*
 * Resumes an interrupted run or phase, or lets the first canary phase
 * that waits for a continue (or the named one) go on. A continue that
 * would change nothing (a COMPLETE plan, nothing interrupted, no gate) is
 * refused with HF_ECONFLICT, so that it does not look like progress.
 */
int hf_ops_plan_continue(struct hf_srv *s, const char *svc,
			 const char *plan, const char *phase,
			 struct hf_ops_continued *out, struct hf_ops_err *err);

/*
 * Marks a step complete without running it (starting the plan when it
 * has no run). For the generated decommission plan, step "<pod-i>[:...]"
 * removes that instance without its drain (*drain_skipped; its volumes
 * are kept); phase is not needed there.
 */
int hf_ops_plan_force_complete(struct hf_srv *s, const char *svc,
			       const char *plan, const char *phase,
			       const char *step, bool *drain_skipped,
			       struct hf_ops_err *err);

/*
 * Runs a step again: it is no longer complete, and its instance's tasks
 * are stopped (a live one) or forgotten (a finished one) to be launched
 * anew. HF_EINVAL without a phase and a step.
 */
int hf_ops_plan_restart(struct hf_srv *s, const char *svc, const char *plan,
			const char *phase, const char *step,
			struct hf_ops_err *err);

/* ------------------------------------------------------------------ */
/* Pods                                                                 */

/*
 * Each acts on pod instance `pod` ("<pod>-<i>") of service svc and fills
 * tasks with the instance's task names ("<pod>-<i>-<task>"). They fail
 * with HF_ENOTFOUND for an unknown service or instance and HF_ECONFLICT
 * while the service is being removed or the instance replaced.
 */

/* Stops the instance's tasks; recovery relaunches them in place. */
int hf_ops_pod_restart(struct hf_srv *s, const char *svc, const char *pod,
		       struct hf_strlist *tasks, struct hf_ops_err *err);
/*
 * Replaces the instance: its tasks stop, its volumes are deleted, and it
 * is placed anew (a failed machine's pod).
 */
int hf_ops_pod_replace(struct hf_srv *s, const char *svc, const char *pod,
		       struct hf_strlist *tasks, struct hf_ops_err *err);
/* Relaunches its tasks in debug mode (a sleep); HF_ECONFLICT if paused. */
int hf_ops_pod_pause(struct hf_srv *s, const char *svc, const char *pod,
		     struct hf_strlist *tasks, struct hf_ops_err *err);
/* Relaunches a paused instance's tasks; HF_ECONFLICT if not paused. */
int hf_ops_pod_resume(struct hf_srv *s, const char *svc, const char *pod,
		      struct hf_strlist *tasks, struct hf_ops_err *err);

/* ------------------------------------------------------------------ */
/* Pod types                                                            */

/*
 * Sets the count of pod type `pod` of service svc, over its spec's: as
 * hf_ops_update does, a new configuration with that count becomes the
 * target and the plan a change runs starts (out->plan): new instances
 * are launched, or the highest indexes beyond the count are drained and
 * removed. The count stays set across updates that leave the spec's
 * count of that pod type as it was, and with the configuration when it
 * is rolled back to; a count equal to the spec's sets none (any set
 * before is dropped). The same count as now changes nothing (0,
 * out->changed false). HF_ENOTFOUND for an unknown service or pod type,
 * HF_EINVAL for a count outside 0 .. HF_SPEC_POD_COUNT_MAX, HF_EREFUSED as
 * an update's (a count that cannot decrease without allow-decommission;
 * out->diff), HF_ECONFLICT while the service is being removed or when its
 * target changed during the call; HF_ESPEC when the spec does not load
 * with that count (a plan naming instances it would not have).
 */
int hf_ops_pod_count(struct hf_srv *s, const char *svc, const char *pod,
		     int64_t count, struct hf_ops_change *out,
		     struct hf_ops_err *err);
/*
 * The autoscaler's hf_ops_pod_count (server/autoscale.c): the same
 * change, by "autoscaler" with why as its event's reason. An operator's
 * hf_ops_pod_count / _reset is refused (HF_EREFUSED) while the pod type
 * has an autoscale policy that is not a dry run.
 */
int hf_ops_pod_autoscale(struct hf_srv *s, const char *svc, const char *pod,
			 int64_t count, const char *why,
			 struct hf_ops_change *out, struct hf_ops_err *err);
/*
 * Hands pod type pod's count back to the spec: the count set over it is
 * dropped, as hf_ops_pod_count does. With none set: 0, out->changed false.
 */
int hf_ops_pod_count_reset(struct hf_srv *s, const char *svc,
			   const char *pod, struct hf_ops_change *out,
			   struct hf_ops_err *err);

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

/*
 * The node takes no new pods, and every pod instance on it is replaced
 * elsewhere (a permanent failure). moved gets "<svc>/<pod-i>" of each.
 */
int hf_ops_node_decommission(struct hf_srv *s, const char *node,
			     struct hf_strlist *moved, struct hf_ops_err *err);

struct hf_ops_adopted {
	char *cluster;     /* this cluster's id (NULL: none yet) */
	size_t live_tasks; /* what the agent said it runs */
};
void hf_ops_adopted_release(struct hf_ops_adopted *a);

/*
 * Accepts a refused agent (server/cluster.h) into this cluster: its next
 * sync is acted on, and the tasks it runs that this cluster does not know
 * are stopped. HF_ECONFLICT (a known node) or HF_ENOTFOUND when the node
 * is not refused.
 */
int hf_ops_node_adopt(struct hf_srv *s, const char *node,
		      struct hf_ops_adopted *out, struct hf_ops_err *err);

/*
 * Forgets a node's credential (server/nodeauth.h): the next agent to
 * register as that node with a join token gets it. HF_ENOTFOUND when the
 * node has none.
 */
int hf_ops_node_reset_identity(struct hf_srv *s, const char *node,
			       struct hf_ops_err *err);

/*
 * A failback's end on the old primary: its kept volumes of service name
 * are deleted, but each replica `adopt` names (an array of {"name",
 * "replica"}) leaves its volume without its files being touched: it is
 * the standby replica the new primary's stream compares against and
 * sends only what differs to (docs/design/dr.md).
 */
int hf_ops_dr_adopt(struct hf_srv *s, const char *name, const json_t *adopt,
		    const char *who, struct hf_ops_err *err);

/*
 * dr failover on a standby: the standby record's volumes become the
 * service's kept volumes (their standby replica in sync here, at an epoch
 * above the old primary's, which fences its stream), the record goes, an
 * event says the loss window. Refused when a volume has no standby
 * replica, or one not known to be consistent (unless force), or its name
 * is taken. *config: the stored configuration ({"text", "file",
 * "options", "templates", ...}) to deploy; *loss_ns: when the oldest of
 * the volumes' last applied writes was made (ns; 0 when unknown).
 */
int hf_ops_dr_failover(struct hf_srv *s, const char *name, const char *who,
		       bool force, json_t **config, int64_t *loss_ns,
		       struct hf_ops_err *err);

#endif
