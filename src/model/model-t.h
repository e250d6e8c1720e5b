/*
 * model-t.h - the cluster's records, types only: services with their
 * configs and plan runs, pod instances with their task slots and task
 * launches, nodes, the volumes on them, and replicated volumes. model.h
 * has the functions.
 *
 * The model is data: it does no I/O, reads no clock, takes no lock and
 * knows nothing of the store, HTTP or agents. The server owns one model
 * (server/state.h), guards it with its mutex, changes it only through
 * server/apply.c and writes every changed record to the store; the
 * scheduler's rules (plan/decide.h) read it and answer with actions.
 *
 * Names: an instance is "<pod>-<index>", a task launch's id is
 * "<pod>-<index>-<task>__<32 hex digits>", a plan run is "<plan>#<n>".
 */
#ifndef HF_MODEL_MODEL_T_H
#define HF_MODEL_MODEL_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/map.h"
#include "common/util.h"
#include "model/instance_life.h"
#include "spec/spec.h"
#include "task/lifecycle.h"
#include "volume/volume.h"

/*
 * Step, phase and plan statuses (the DC/OS SDK's): PENDING -> PREPARED ->
 * STARTING -> STARTED -> COMPLETE, plus DELAYED (waiting out a restart
 * backoff), WAITING (interrupted, or a canary waiting for `continue`) and
 * ERROR. A plan run records the last status the scheduler saw; the plan
 * engine (plan/plan.h) computes them.
 */
enum hf_status {
	HF_STATUS_PENDING,
	HF_STATUS_PREPARED,
	HF_STATUS_STARTING,
	HF_STATUS_STARTED,
	HF_STATUS_COMPLETE,
	HF_STATUS_DELAYED,
	HF_STATUS_WAITING,
	HF_STATUS_ERROR,
	HF_STATUS_IN_PROGRESS, /* phases and plans only */
};

/*
 * A launch's state (STAGING ... LOST; a record never holds the node side's
 * EXITED or FAILED_TO_START) and its names: task/lifecycle.h.
 */

/* One launch of one task: its id is never reused. */
struct hf_task_rec {
	char *id;        /* "<pod>-<i>-<task>__<uuid>" */
	char *config_id; /* the config it was launched with */
	char *run;       /* "<plan>#<n>" of the plan run that launched it */
	enum hf_task_state state;
	bool ready;
	int healthy; /* -1 unknown, 0, 1 */
	int exit_code, signal; /* -1 when none */
	bool oom_killed;
	bool kill;    /* the server wants it stopped */
	bool restart; /* ... and relaunched by recovery once it stopped */
	bool paused; /* launched in debug mode */
	/*
	 * It failed to start for a reason a retry cannot fix (an rlimit
	 * above the node's): its step is ERROR, nothing relaunches it until
	 * its config changes or its pod is restarted.
	 */
	bool permanent;
	int64_t launched_at, started_at, finished_at; /* unix ms */
	/*
	 * Restarts in place of this launch (its shim starts its process
	 * again; RESTARTS in shim/shim.h), as its agent reported them: how
	 * many, whether the shim waits out a backoff before the next one
	 * (until restart_at), and the exit that caused the latest: its code
	 * (-1 none) or signal (0 none) and when. The same task id throughout.
	 */
	unsigned in_place_restarts;
	bool backoff;
	int64_t restart_at;
	int last_exit_code, last_signal;
	int64_t last_exit_at;
	char *message;
	char *not_ready; /* its agent's last failed readiness check; memory only */
	struct hf_kvlist params; /* plan parameters it was launched with */
};

/* One task of a pod instance across its launches. */
struct hf_task_slot {
	char *task;
	struct hf_task_rec *cur; /* the latest launch, or NULL */
	unsigned failures;       /* consecutive failed launches */
	int64_t backoff_until;   /* unix ms */
	bool once_done;          /* a ONCE task succeeded in this instance */
	bool want_running;       /* a RUNNING task the server keeps running */
	uint64_t launches, restarts;
};

struct hf_instance {
	char *name; /* "<pod>-<i>" */
	char *pod;
	int64_t index;
	char *node; /* NULL until placed */
	struct hf_kvlist ports; /* port name -> number */
	struct {
		struct hf_task_slot *items;
		size_t len, cap;
	} slots;
	char *message; /* why it cannot be placed, etc. */
	/*
	 * Its stage (active, being replaced, scaled in) and how a scale-in's
	 * drain ended: changed only through model/instance_life.h's table.
	 */
	enum hf_instance_state state;
	enum hf_drain drain;
	bool paused;    /* debug mode: tasks run a sleep instead */
	/* The instance this one replaces (pod replace): for its tasks' env. */
	char *replaced_node, *replaced_address;
	bool replace_pending; /* its replace tasks have not finished yet */
	int64_t unreachable_since; /* its node stopped answering (ms); memory only */
};

struct hf_config {
	char *id;
	char *text;                /* the spec template as given */
	char *file;                /* its file name, for messages */
	char *name;                /* the service's name over the spec's, or NULL */
	struct hf_kvlist options;  /* -o / --options */
	struct hf_kvlist templates; /* config templates: path -> content */
	/*
	 * pod -> a count set over the spec's (pod scale; decimal): spec's
	 * pods, plans and fingerprints have it. Never the spec's own count.
	 */
	struct hf_kvlist counts;
	int64_t created;
	struct hf_spec *spec;      /* parsed; NULL when it no longer loads */
	char *load_error;          /* ... and why (loaded from the store) */
	struct hf_plan_defs plans; /* built */
	/* pod -> its effective spec as compared by the diff (JSON text) */
	struct hf_kvlist fingerprints;
};

/* One run of a plan: started, its overrides and its progress. */
struct hf_plan_run {
	char *plan;
	unsigned number;           /* run count, for "<plan>#<n>" ids */
	bool active;               /* being worked on */
	bool interrupted;
	enum hf_status status;
	char *config_id;           /* the config the run targets */
	struct hf_strlist completed;      /* step names seen COMPLETE */
	struct hf_strlist force_complete; /* "phase/step" */
	struct hf_strlist interrupted_phases;
	struct hf_kvlist continues; /* phase -> count of `continue`s */
	struct hf_kvlist params;    /* plan parameters (env) */
	struct hf_kvlist step_started; /* "phase/step" -> unix ms */
	bool reverted;              /* auto-revert already done for this run */
	int64_t started_at, finished_at;
	/*
	 * Memory only, rewritten by every tick: "phase/step" -> why a step
	 * the plan would work on waits (its pod instance is another step's).
	 */
	struct hf_kvlist waits;
};

struct hf_service {
	char *name;
	char *target; /* target config id */
	char *previous; /* the target before the last change (rollback) */
	unsigned next_config;
	bool removing;
	bool delete_volumes;
	struct {
		struct hf_config **items;
		size_t len, cap;
	} configs;
	struct {
		struct hf_instance **items;
		size_t len, cap;
	} instances;
	struct hf_map instance_index; /* name -> instance */
	struct {
		struct hf_plan_run *items;
		size_t len, cap;
	} runs;
	int64_t created;
};

/*
 * A pod instance's volume directory on a node ("<svc>/<pod-i>" under the
 * agent's volumes/; the instance's spec volumes are directories inside
 * it). Its life:
 *   IN_USE    its instance was placed on the node and uses it; the record
 *             follows the instance (it is derived from it on load)
 *   KEPT      no instance owns it any more (its service was removed, or a
 *             scale-in kept it): it stays until deleted, or until an
 *             instance of the same service and name is placed on its node
 *             and reuses it (IN_USE again)
 *   DELETING  its node's agent is told to delete it; the record goes when
 *             the agent says it did
 * Several records may share a key on different nodes (a volume being
 * deleted on one node while its instance's new one is used on another).
 */
enum hf_volume_state {
	HF_VOL_IN_USE,
	HF_VOL_KEPT,
	HF_VOL_DELETING,
};

struct hf_volume {
	char *key;      /* "<svc>/<pod-i>", escaped (hf_model_volume_key) */
	char *service;  /* the service and instance it belongs or belonged */
	char *instance; /* to, by name */
	char *node;     /* the node holding its data */
	enum hf_volume_state state;
	enum hf_volume_type kind; /* ROOT: a directory on the node's disk */
	int64_t size_mb;          /* its spec volumes together; 0: unknown */
	char *why;      /* KEPT: how it came to be kept */
	int64_t since;  /* KEPT: since when (unix ms) */
	struct hf_volume *next_same_key; /* the model's key index */
};

/*
 * A replicated (external) volume: a pod's disk that outlives its node
 * (docs/design/volumes.md). Its data lies in replicas on several nodes'
 * storage pools; the server holds this record, which says where the
 * replicas are, which of them are in sync, and which node writes it at
 * which epoch. Unlike struct hf_volume (a ROOT or MOUNT directory on one
 * node), it belongs to no node, and its name is cluster-global: the SDK's
 * Portworx provider's (hf_spec_external_volume_name).
 *
 * One replica, as the server knows it. Only a server commit at the
 * volume's current epoch moves a replica into or out of IN_SYNC (the
 * in-sync set); a failover picks an IN_SYNC replica's node.
 */
enum hf_xrep_state {
	HF_XREP_NEW,       /* placed; its node has not created it yet */
	HF_XREP_IN_SYNC,   /* in the in-sync set: holds every acked write */
	HF_XREP_RESYNCING, /* receiving new writes and a bitmap or full copy */
	HF_XREP_DOWN,      /* out of the in-sync set; others keep its bitmap */
	HF_XREP_STALE,     /* cannot be proven consistent: a full resync next */
	HF_XREP_DELETING,  /* re-replicated away or its volume deleted */
};

struct hf_xrep {
	char *node;
	char *id;    /* a new replica gets a new id, never reused */
	enum hf_xrep_state state;
	int64_t since; /* unix ms of the last state change */
	/* Bytes copied and to copy, from the primary's last report. */
	int64_t resync_done, resync_total;
	char *why;   /* the last change's reason (status, events), or NULL */
	/*
	 * A clone's replica still to be made by its node from a snapshot:
	 * "<volume id>/<replica id>/<snapshot id>" of the source replica on
	 * the same node; NULL once its node served it (IN_SYNC then).
	 */
	char *clone;
};

/*
 * A snapshot of a volume (docs/design/volumes.md §15), kept on the
 * replicas that were in sync when it was taken:
 *   TAKING    asked of the attached volume's attach process
 *   READY     taken: `replicas` hold it
 *   FAILED    not taken (why says why); deleted by the operator
 *   DELETING  asked to go; the record goes once the attachment did it
 */
enum hf_xsnap_state {
	HF_XSNAP_TAKING,
	HF_XSNAP_READY,
	HF_XSNAP_FAILED,
	HF_XSNAP_DELETING,
};

struct hf_xsnap {
	char *id;      /* on the replicas: 16 lowercase hex digits */
	char *name;    /* the operator's, unique in its volume */
	enum hf_xsnap_state state;
	int64_t created; /* unix ms it was asked for */
	int64_t taken;   /* unix ms it was taken; 0 before */
	int64_t size;    /* the volume's bytes when it was asked for */
	struct hf_strlist replicas; /* replica ids holding it */
	char *why;       /* FAILED: why; else NULL */
};

/*
 * A volume's life:
 *   ACTIVE    owned by instance `instance` of service `service`; attached
 *             on its node while the instance runs there
 *   KEPT      its instance is gone (service removed, scaled in): its data
 *             stays until deleted, or until the same service comes back
 *             with an instance of that volume's name, which reuses it
 *   DELETING  its replicas' nodes are told to delete them; the record
 *             goes when every replica is gone
 */
enum hf_xvol_state {
	HF_XVOL_ACTIVE,
	HF_XVOL_KEPT,
	HF_XVOL_DELETING,
};

struct hf_xvol {
	char *name;      /* cluster-global; store key /volumes/<name> */
	/* This incarnation: one deleted and made again gets a new id. */
	char *id;
	char *service;   /* the owner; kept when KEPT, so that service alone */
	char *instance;  /* may reuse it; instance NULL when KEPT */
	enum hf_xvol_state state;
	int64_t size;    /* bytes */
	unsigned repl;   /* replicas wanted (1..3) */
	unsigned min_sync; /* in-sync replicas a write needs (1..repl) */
	bool ro;
	/*
	 * Bumped by every attach and never lowered: replicas refuse writes
	 * of an older epoch, so two nodes never both write the volume. 0:
	 * never attached.
	 */
	uint64_t epoch;
	char *attached;  /* node of the current attachment, or NULL */
	bool formatted;  /* mkfs done (at epoch 1) */
	int fs;          /* asked for (HF_FS_*: auto, ext4, xfs) */
	/*
	 * The volume's key (hex), that replicas and attachments prove
	 * themselves with. Never in API output, events or logs: only in the
	 * store and in the orders of the volume's own nodes.
	 * hf_xvol_to_json does not read it.
	 */
	char *secret;
	/*
	 * Encrypted (the spec's secure=true): data_key is the volume's data
	 * key sealed by the cluster key (volume/crypt.h, hex). Like the
	 * secret, never in API output, events or logs; only the attached
	 * node's order carries the key, opened.
	 */
	bool secure;
	char *data_key;
	/*
	 * The named key (a credential of type "key") that seals data_key
	 * (driver-options secret_key=NAME), or NULL: the cluster key does.
	 */
	char *key_name;
	HF_VEC(struct hf_xrep) replicas;
	int64_t created; /* unix ms */
	HF_VEC(struct hf_xsnap) snaps; /* oldest first */
	/*
	 * A snapshot id the next attachment restores before anything
	 * mounts the volume (volume restore), or NULL; only an attachment
	 * at an epoch above restore_after (the one when it was asked) is
	 * asked to: a running one has the volume mounted.
	 */
	char *restore;
	uint64_t restore_after;
	/*
	 * The last backup that completed (volume backup): its id, where it
	 * went ("s3://bucket/prefix") and the snapshot (id) it was made
	 * from, which is kept as the next backup's base; NULL before.
	 */
	char *bk_last, *bk_to, *bk_snap;
	int64_t bk_at; /* unix ms it completed; 0 before */
	/*
	 * The backup under way, kept so that a server that takes over (or
	 * restarts) follows it to its end, starting it again on a node
	 * where it was lost (it resumes: what the store holds is not sent
	 * again): its id, the snapshot's name, the place, the credential's
	 * name, the node running it and when it began. id NULL: none.
	 */
	struct hf_xbk_run {
		char *id, *snap, *to, *cred, *node;
		int64_t started;
	} bk_run;
	/*
	 * Backups on a schedule (volume backup-schedule): every every_ms
	 * after the last one, to `to` with credential cred, the newest keep
	 * kept in the store (0: all). to NULL: no schedule of its own (the
	 * pod's backup-schedule in the spec may give one).
	 */
	struct hf_xbk_sched {
		char *to, *cred;
		int64_t every_ms;
		unsigned keep;
	} bk_sched;
	/*
	 * Made from a backup (volume restore --from): the credential's name,
	 * the place, the backed-up volume's name and the backup's id; its
	 * replicas (clone "backup") are made by their nodes from it.
	 */
	char *rs_cred, *rs_url, *rs_volume, *rs_backup;
};

/* Volumes, as a lookup returns several (the model owns each). */
struct hf_xvols {
	struct hf_xvol **items;
	size_t len, cap;
};

/* A replica with its volume, as a per-node list holds it. */
struct hf_xrep_ref {
	struct hf_xvol *vol;
	struct hf_xrep *rep;
};

struct hf_xrep_refs {
	struct hf_xrep_ref *items;
	size_t len, cap;
};

/* The server's connection state with a node's agent (server/state.h). */
struct hf_node_link;

/*
 * A node's storage pool, as its agent last reported it (docs/protocol.md,
 * "storage"; agent --storage): the pool's directory on the node and its
 * figures in bytes.
 */
struct hf_node_mark {
	char *replica;
	int64_t time;
	int64_t spooled; /* bytes its consistency group holds back */
	bool grouped;    /* in a consistency group (volume/spool.h) */
};

struct hf_node_storage {
	char *pool;             /* NULL when the agent did not say */
	int64_t capacity, provisioned, used, free;
	int64_t port;           /* its replica server's; 0: not serving */
	int64_t dr_port;        /* its DR listener's (agent --dr-listen); 0 */
	/*
	 * Its standby replicas' marks (memory only): when the newest write
	 * each holds was made on the other site (ns; 0: not consistent).
	 */
	HF_VEC(struct hf_node_mark) marks;
};

/*
 * What a node's agent last said of one volume it serves (docs/protocol.md,
 * "volumes"): the server launches tasks that use a volume only once the
 * node reported it ready at the epoch their orders name.
 */
/* A replica out of the in-sync set, and the bytes it misses. */
struct hf_node_missed {
	char *replica;
	int64_t bytes;
};

struct hf_node_volrep {
	char *volume;
	uint64_t epoch;
	bool ready;
	char *failed; /* state "failed": its message (or ""); else NULL */
	char *note;   /* state "ready": what it says it waits for, or NULL */
	/*
	 * The attach process's counters and what replicas miss, as its
	 * latest report says (hf_proto_volume_report): the metrics read
	 * them; never stored.
	 */
	int64_t written, replicated, resync_sent, resync_planned, nospace;
	HF_VEC(struct hf_node_missed) missed;
	/* Writes per latency bucket (volume.h's bounds), their sum in us. */
	bool has_write_us;
	int64_t write_us[HF_VOL_LAT_BUCKETS + 1], write_us_sum;
	/* Its disaster-recovery stream (volume/ship.h), when it has one. */
	struct hf_node_dr {
		bool has, link_up, consistent;
		char *state, *message;
		double lag_seconds;
		int64_t lag_bytes, journal_bytes, journal_size, applied_time;
		int64_t shipped, blocked, overflows;
		int64_t sync_done, sync_total; /* a copy's bytes */
		int64_t copy_same; /* ...of it the standby had already */
	} dr;
};

/* A replica a node's replica server is making, as its last sync says. */
struct hf_node_fill {
	char *replica;
	int64_t done, total; /* bytes */
};

struct hf_node {
	char *id;
	char *hostname;
	char *address;
	struct hf_kvlist attributes;
	double cpus, memory_mb, disk_mb;
	int64_t port_begin, port_end;
	char *cgroups;
	int64_t last_seen;      /* its agent's last sync (unix ms) */
	bool decommissioned;    /* no new placements; its pods are replaced */
	struct hf_node_storage *storage; /* owned; NULL: storage-less */
	/* Its agent's latest volume reports; memory only (the next sync). */
	HF_VEC(struct hf_node_volrep) volreps;
	HF_VEC(struct hf_node_fill) fills; /* memory only, as volreps */
	size_t idx;             /* its position in the model's nodes (never removed) */
	/* Owned by the server, which frees it; opaque here. */
	struct hf_node_link *link;
};

/* An instance placed on a node, as a per-node list holds it. */
struct hf_node_inst {
	struct hf_service *svc;
	struct hf_instance *in;
};

struct hf_node_insts {
	struct hf_node_inst *items;
	size_t len, cap;
};

struct hf_model {
	struct {
		struct hf_service **items;
		size_t len, cap;
	} services;
	struct hf_map service_index; /* name -> service */
	struct {
		struct hf_node **items;
		size_t len, cap;
	} nodes;
	struct hf_map node_index; /* id -> node */
	struct {
		struct hf_volume **items;
		size_t len, cap;
	} volumes;
	struct hf_map volume_index; /* key -> the first volume of that key */
	/* Replicated volumes, and their index by name. */
	struct hf_xvols xvols;
	struct hf_map xvol_index; /* name -> volume */
};

#endif
