/*
 * decide-t.h - what the scheduler's rules decide (plan/decide.h): actions
 * on the model, and what the rules may read besides it.
 *
 * An action names the records it acts on (service, instance, task, plan,
 * node, volume key), never points at them: the applier (server/apply.c)
 * looks them up as it applies the list in order, so an action that
 * follows a removal finds nothing instead of freed memory. Strings in an
 * action are owned by its list (hf_actions_release frees them); so is the
 * loaded config of an ADD_SERVICE or ADD_CONFIG until the applier takes
 * it into the model.
 */
#ifndef HF_PLAN_DECIDE_T_H
#define HF_PLAN_DECIDE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "common/util.h"
#include "model/model-t.h"
#include "proto/proto.h"

enum hf_action_kind {
	HF_ACT_CREATE_INSTANCE, /* a new, unplaced instance of pod, index */
	HF_ACT_PLACE,      /* instance -> node, ports (its volume IN_USE there) */
	HF_ACT_UNPLACE,    /* replaced: forgets its node and ports */
	HF_ACT_LAUNCH,     /* a new launch of a task (STAGING) */
	HF_ACT_KILL,       /* asks a live launch to stop */
	HF_ACT_TASK,       /* a report or a loss changes a launch's fields */
	HF_ACT_SLOT,       /* failures, backoff, once_done, want_running ... */
	HF_ACT_INSTANCE,   /* an instance's lifecycle fields and message */
	HF_ACT_RUN,        /* a plan run's progress and status */
	HF_ACT_START_PLAN, /* starts (or restarts) a plan run */
	HF_ACT_SET_TARGET, /* a config becomes the target; the old, previous */
	HF_ACT_VOLUME,     /* a volume is kept, deleted, reused or gone */
	HF_ACT_XVOL,       /* a replicated volume is made, attached, ... */
	HF_ACT_REMOVE_INSTANCE,
	HF_ACT_REMOVE_SERVICE,
	HF_ACT_ADD_SERVICE, /* a new service with its first config, its target */
	HF_ACT_ADD_CONFIG,  /* a new config of a service (not its target yet) */
	HF_ACT_SERVICE,     /* a service's removal flags */
	HF_ACT_NODE,        /* a node's fields (decommissioned) */
	HF_ACT_EVENT,      /* an event, emitted once the changes are stored */
	HF_ACT_LOG,        /* a line for the server's log, likewise */
	HF_ACT_WAKE_AT,    /* the scheduler looks again at this time */
};

/* HF_ACT_PLACE */
struct hf_act_place {
	char *node;
	struct hf_kvlist ports;    /* port name -> number */
	int64_t volume_size_mb;    /* its volume's record (model-t.h) */
	enum hf_volume_type volume_kind;
};

/* HF_ACT_LAUNCH: the launch record, as it is created. */
struct hf_act_launch {
	char *id;                /* "<pod>-<i>-<task>__<uuid>" */
	char *config_id;
	char *run;               /* "<plan>#<n>", "recovery", "replace", ... */
	struct hf_kvlist params; /* plan parameters for its env */
	bool paused;             /* the instance is paused: debug mode */
	bool restart;            /* a relaunch (counted as a restart) */
	bool want_running;       /* a RUNNING task: kept running from now on */
	int64_t at;              /* launched_at */
};

/*
 * HF_ACT_KILL: asks the slot's launch `id` to stop (no-op if it changed).
 * Its state changes when its agent reports it stopped; a launch no agent
 * reported yet (STAGING) ends at once, by an HF_ACT_TASK that follows.
 */
struct hf_act_kill {
	char *id;
	bool restart; /* recovery relaunches it once it stopped */
};

/* HF_ACT_TASK: fields of launch `id` that change (set: HF_TASK_*). */
enum {
	HF_TASK_STATE = 1 << 0,
	HF_TASK_READY = 1 << 1,
	HF_TASK_HEALTHY = 1 << 2,
	HF_TASK_EXIT = 1 << 3,      /* exit_code, signal, oom_killed */
	HF_TASK_PERMANENT = 1 << 4,
	HF_TASK_STARTED_AT = 1 << 5,
	HF_TASK_FINISHED_AT = 1 << 6,
	HF_TASK_MESSAGE = 1 << 7,   /* message (NULL clears it) */
	HF_TASK_NOT_READY = 1 << 8, /* memory only: not stored */
	HF_TASK_KILL = 1 << 9,      /* kill (the server gave up on it) */
	HF_TASK_RESTART = 1 << 10,  /* restart: relaunched once it stopped */
	HF_TASK_IN_PLACE = 1 << 11, /* in_place_restarts, backoff, restart_at,
				       last_exit_code, last_signal,
				       last_exit_at */
};
struct hf_act_task {
	char *id;
	unsigned set;
	enum hf_task_state state;
	bool ready;
	int healthy;
	int exit_code, signal;
	bool oom_killed;
	bool permanent;
	bool kill, restart;
	int64_t started_at, finished_at;
	char *message;
	char *not_ready;
	unsigned in_place_restarts;
	bool backoff;
	int64_t restart_at;
	int last_exit_code, last_signal;
	int64_t last_exit_at;
};

/* HF_ACT_SLOT: a task slot's fields that change (set: HF_SLOT_*). */
enum {
	HF_SLOT_FAILURES = 1 << 0,
	HF_SLOT_BACKOFF = 1 << 1,
	HF_SLOT_ONCE_DONE = 1 << 2,
	HF_SLOT_WANT_RUNNING = 1 << 3,
	HF_SLOT_FORGET = 1 << 4, /* drops its launch record (cur) */
	HF_SLOT_FAILED = 1 << 5, /* counts `failed` failures (metrics; 0: 1) */
	HF_SLOT_RESTARTS = 1 << 6, /* counts `restarts` more restarts */
};
struct hf_act_slot {
	unsigned set;
	unsigned failed;
	unsigned restarts;
	unsigned failures;
	int64_t backoff_until;
	bool once_done;
	bool want_running;
};

/*
 * HF_ACT_INSTANCE: an instance's fields that change (HF_INST_*). Its stage
 * moves by a lifecycle event (model/instance_life.h), applied through the
 * table: a refused event changes nothing of the action.
 */
enum {
	HF_INST_MESSAGE = 1 << 0,
	HF_INST_PAUSED = 1 << 1,
	HF_INST_EVENT = 1 << 2,     /* event: state and drain outcome */
	HF_INST_REPLACED = 1 << 3,  /* replaced_node, replaced_address */
	HF_INST_REPLACE_PENDING = 1 << 4,
	HF_INST_UNREACHABLE = 1 << 5, /* memory only */
};
struct hf_act_instance {
	unsigned set;
	char *message;
	bool paused;
	enum hf_instance_event event;
	char *replaced_node, *replaced_address;
	bool replace_pending;
	int64_t unreachable_since;
	/* Not stored (an instance message while no agent registered yet). */
	bool memory_only;
};

/* HF_ACT_RUN: changes to the run of plan `plan` (HF_RUN_*). */
enum {
	HF_RUN_WAITS_CLEAR = 1 << 0, /* memory only */
	HF_RUN_WAIT = 1 << 1,        /* waits += key: value; memory only */
	HF_RUN_COMPLETED = 1 << 2,   /* completed += key */
	HF_RUN_STEP_STARTED = 1 << 3, /* step_started += key: value */
	HF_RUN_STATUS = 1 << 4,
	HF_RUN_ACTIVE = 1 << 5,
	HF_RUN_FINISHED_AT = 1 << 6,
	HF_RUN_REVERTED = 1 << 7,
	/* What operators change (server/ops.c). */
	HF_RUN_INTERRUPTED = 1 << 8,
	HF_RUN_INTERRUPT_PHASE = 1 << 9, /* interrupted_phases += key (once) */
	HF_RUN_RESUME_PHASE = 1 << 10,   /* interrupted_phases -= key */
	HF_RUN_CONTINUES = 1 << 11,      /* continues: key -> value */
	HF_RUN_FORCE_COMPLETE = 1 << 12, /* force_complete += key (once) */
	HF_RUN_RESTART_STEP = 1 << 13, /* completed, force_complete -= key */
	HF_RUN_COMPLETED_CLEAR = 1 << 14,
};
struct hf_act_run {
	char *plan;
	unsigned set;
	char *key, *value;
	enum hf_status status;
	bool active;
	int64_t finished_at;
	bool reverted;
	bool interrupted;
};

/* HF_ACT_START_PLAN */
struct hf_act_start_plan {
	char *plan;
	bool has_params;          /* else the run keeps its parameters */
	struct hf_kvlist params;
	int64_t at;
};

/* HF_ACT_SET_TARGET */
struct hf_act_set_target {
	char *config_id;
};

/* HF_ACT_VOLUME: what happens to the volume `key` on `node`. */
enum hf_volume_op {
	/* Kept (why, since): the IN_USE record becomes KEPT (or a new one). */
	HF_VOLOP_KEEP,
	/*
	 * To be deleted by its node's agent: the IN_USE record becomes
	 * DELETING (or a new one), unless one is DELETING already.
	 */
	HF_VOLOP_DELETE,
	/* A KEPT volume is deleted: its record becomes DELETING. */
	HF_VOLOP_DELETE_KEPT,
	/* A KEPT volume is reused by the instance placed on its node. */
	HF_VOLOP_ADOPT,
	/* The agent deleted it: its DELETING record goes. */
	HF_VOLOP_DELETED,
};
struct hf_act_volume {
	enum hf_volume_op op;
	char *key;
	char *node;
	char *why;
	int64_t since;
};

/*
 * HF_ACT_XVOL: what happens to replicated volume `name` (model-t.h's
 * struct hf_xvol; the action's service and instance are its owner's).
 * Each is written to /volumes/<name> before any agent can see it.
 */
enum hf_xvol_op {
	/*
	 * A new volume, ACTIVE, owned by the action's instance: id, size,
	 * repl, min_sync, ro, created (at), and one replica (replica, on
	 * node) NEW. The applier gives it its secret. Nothing if the name
	 * is taken.
	 */
	HF_XVOLOP_CREATE,
	/* A KEPT volume of the action's service is the instance's again. */
	HF_XVOLOP_ADOPT,
	/* Attached on node at epoch (higher than the volume's). */
	HF_XVOLOP_ATTACH,
	/*
	 * Node reported it ready at epoch (the volume's): its file system
	 * exists (formatted) and the node's replica is IN_SYNC.
	 */
	HF_XVOLOP_READY,
	/* No longer attached anywhere. */
	HF_XVOLOP_DETACH,
	/* Its instance is gone: KEPT, detached, no instance. */
	HF_XVOLOP_KEEP,
	/* To be deleted: DELETING, detached, every replica DELETING. */
	HF_XVOLOP_DELETE,
	/*
	 * Node deleted replica `replica`: it goes, and a DELETING volume
	 * without replicas goes with it.
	 */
	HF_XVOLOP_REPLICA_GONE,
	/*
	 * The replica on node is out of the in-sync set (DOWN, with why):
	 * its node was lost. Attaches no longer use it.
	 */
	HF_XVOLOP_REPLICA_DOWN,
	/* The DOWN replica on node is being copied to (RESYNCING). */
	HF_XVOLOP_REPLICA_RESYNC,
	/*
	 * A new replica `replica` on node, RESYNCING from the start: it
	 * replaces a lost one (re-replication).
	 */
	HF_XVOLOP_REPLICA_ADD,
	/* The replica `replica` is given up: DELETING (its node deletes it). */
	HF_XVOLOP_REPLICA_RETIRE,
	/* The copy to RESYNCING replica `replica`: done of size bytes. */
	HF_XVOLOP_REPLICA_PROGRESS,
	/*
	 * The RESYNCING replica `replica` holds every write at epoch (the
	 * volume's): IN_SYNC.
	 */
	HF_XVOLOP_REPLICA_SYNCED,
	/* The volume grows to size bytes (never shrinks). */
	HF_XVOLOP_RESIZE,
	/*
	 * Snapshots (docs/design/volumes.md §15). SNAP_ADD: snapshot `snap`
	 * named snap_name, TAKING, of size bytes, asked for at `at`.
	 * SNAP_TAKEN: READY at `at`, held by `holders`. SNAP_FAILED: FAILED
	 * with why. SNAP_DELETE: DELETING. SNAP_GONE: the record goes.
	 */
	HF_XVOLOP_SNAP_ADD,
	HF_XVOLOP_SNAP_TAKEN,
	HF_XVOLOP_SNAP_FAILED,
	HF_XVOLOP_SNAP_DELETE,
	HF_XVOLOP_SNAP_GONE,
	/*
	 * The next attachment restores snapshot `snap` (NULL: none, the
	 * last restore is done) before anything mounts the volume.
	 */
	HF_XVOLOP_RESTORE,
	/*
	 * A new volume `name` (id, size, repl, min_sync, secure, created at
	 * `at`), KEPT for the action's service, formatted, made from
	 * snapshot `snap` of volume snap_name: its replicas (replica on
	 * node, then more_*) are made by their nodes from the source's
	 * replica there; NEW until each node says it is made.
	 */
	HF_XVOLOP_CLONE,
	/* Clone replica `replica` was made by its node: IN_SYNC. */
	HF_XVOLOP_REPLICA_FILLED,
	/*
	 * Backup snap_name (to `why`) of snapshot `snap` completed: the
	 * volume's last backup, the next one's base.
	 */
	HF_XVOLOP_BACKUP_DONE,
	/*
	 * Backup `id` of snapshot snap_name to `why` with credential `cred`
	 * runs on `node` since `at` (again on another node: the same id).
	 */
	HF_XVOLOP_BACKUP_RUN,
	/* Backup `id` ended without completing: no backup under way. */
	HF_XVOLOP_BACKUP_END,
	/*
	 * The volume's backup schedule: every `size` ms to `why` with
	 * credential `cred`, keeping the newest `repl` (0: all); why NULL:
	 * none.
	 */
	HF_XVOLOP_BACKUP_SCHEDULE,
	/*
	 * A new volume `name` (id, size, repl, secure, created at `at`),
	 * KEPT for the action's service, formatted, made from backup `snap`
	 * of volume snap_name at `why` (a place) with credential `cred`: its
	 * replicas (replica on node, then more_*) NEW until made.
	 */
	HF_XVOLOP_FROM_BACKUP,
	/*
	 * dr failover: a new volume `name` (id, size, created at `at`), KEPT
	 * for the action's service, formatted, at `epoch`, with the key
	 * sealed_key (its hex K_vol, as the primary sent it) and one replica
	 * (replica on node) IN_SYNC: the standby replica the other site's
	 * stream wrote. Nothing if the name is taken.
	 */
	HF_XVOLOP_STANDBY,
};
struct hf_act_xvol {
	enum hf_xvol_op op;
	char *name;
	char *id, *replica, *node;
	/* CREATE: the other replicas (repl - 1 of them), NULL past those. */
	char *more_node[HF_VOLOPTS_MAX_REPL - 1], *more_replica[HF_VOLOPTS_MAX_REPL - 1];
	char *why;       /* REPLICA_DOWN: the reason */
	int64_t size;
	int64_t done;    /* REPLICA_PROGRESS: bytes copied */
	unsigned repl, min_sync;
	bool ro;
	bool secure;     /* CREATE: encrypted (the server makes its key) */
	int fs;          /* CREATE: its file system (HF_FS_*, spec.h) */
	char *snap, *snap_name; /* SNAP_*, RESTORE */
	char *cred;             /* FROM_BACKUP */
	/*
	 * CREATE, FROM_BACKUP: the named key that seals the data key (NULL:
	 * the cluster key); FROM_BACKUP: the backup's data key as sealed by
	 * it for volume id key_id (NULL: the backed-up volume's own).
	 */
	char *key_name, *sealed_key, *key_id;
	struct hf_strlist holders; /* SNAP_TAKEN: replica ids */
	uint64_t epoch;
	int64_t at;
};

/*
 * HF_ACT_ADD_SERVICE (the service is the action's), HF_ACT_ADD_CONFIG: a
 * loaded config without an id (model.h's hf_model_config_load), which the
 * applier takes (the pointer becomes NULL) and gives id `id`. If it cannot
 * (the service exists already, or does not), the list frees it.
 */
struct hf_act_config {
	char *id;
	struct hf_config *config;
	unsigned next_config; /* the service's next config number */
	int64_t at;           /* ADD_SERVICE: the service's created time */
};

/* HF_ACT_SERVICE: a service's fields that change (HF_SVC_*). */
enum {
	HF_SVC_REMOVING = 1 << 0,
	HF_SVC_DELETE_VOLUMES = 1 << 1,
};
struct hf_act_service {
	unsigned set;
	bool removing, delete_volumes;
};

/* HF_ACT_NODE: node `node`'s fields that change (HF_NODE_*). */
enum {
	HF_NODE_DECOMMISSIONED = 1 << 0,
};
struct hf_act_node {
	char *node;
	unsigned set;
	bool decommissioned;
};

/* HF_ACT_EVENT: as server/events.h's hf_event() takes it. */
struct hf_act_event {
	char *who, *kind, *object, *before, *after, *why;
};

struct hf_action {
	enum hf_action_kind kind;
	char *service;  /* the service acted on (NULL for node-wide events) */
	char *instance; /* its pod instance, "<pod>-<i>" */
	char *task;     /* a task of the instance */
	union {
		struct {
			char *pod;
			int64_t index;
		} create;
		struct hf_act_place place;
		struct hf_act_launch launch;
		struct hf_act_kill kill;
		struct hf_act_task tsk;
		struct hf_act_slot slot;
		struct hf_act_instance inst;
		struct hf_act_run run;
		struct hf_act_start_plan start;
		struct hf_act_set_target target;
		struct hf_act_volume vol;
		struct hf_act_xvol xvol;
		struct hf_act_config config;
		struct hf_act_service svc;
		struct hf_act_node node;
		struct hf_act_event event;
		char *log;      /* HF_ACT_LOG */
		int64_t wake_at; /* HF_ACT_WAKE_AT: unix ms */
	} u;
};

struct hf_actions {
	struct hf_action *items;
	size_t len, cap;
};

/* The scheduler's settings the rules read (server options). */
struct hf_decide_opts {
	double backoff_base, backoff_max; /* restart backoff (s) */
	double backoff_reset; /* a task up this long starts afresh (s) */
	double node_timeout;  /* a node silent this long is unreachable (s) */
	double rereplicate_after; /* a replica down this long is rebuilt (s) */
	bool no_restart_in_place; /* every relaunch is the server's */
};

/*
 * Placement's per-tick scratch, derived from the model: each node's load
 * and reserved cpus and memory, and for one pod type where its instances
 * are and which nodes have one of its static ports taken. Computed once
 * per tick and kept current by placement itself, so placing n instances
 * costs O(instances + n * nodes); anything else that moves an instance
 * makes it stale (hf_place_cache_note).
 */
struct hf_node_usage {
	size_t load;
	double used_cpus, used_mem;
	int64_t clash_port; /* a static port of the pod taken there, or 0 */
};

struct hf_place_cache {
	bool usage_valid;
	struct {
		struct hf_node_usage *items;
		size_t len, cap;
	} usage; /* by node index */
	const struct hf_service *svc; /* the pod type the rest is for */
	char *pod;
	struct {
		size_t *items; /* node index of each of its instances */
		size_t len, cap;
	} placed;
};

/*
 * What a rule may read besides the model: the time, randomness and the
 * settings are handed in, never looked up.
 */
struct hf_decide_ctx {
	int64_t now;                 /* unix ms */
	struct hf_rng *rng;          /* task ids, backoff jitter */
	const struct hf_decide_opts *opts;
	struct hf_place_cache *place; /* NULL: computed afresh for each use */
};

/* A task report from an agent is proto/proto.h's struct hf_proto_report. */

#endif
