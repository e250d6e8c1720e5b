/*
 * proto.h - the server <-> agent protocol (docs/protocol.md) as C types,
 * with the one encoder and the one decoder both sides use: the agent
 * builds its sync requests and reads the server's answers with these, the
 * server reads the requests and writes the answers and launch orders with
 * them. Nothing else takes the protocol's JSON apart.
 *
 *   POST /v1/agent/register   struct hf_proto_register
 *   POST /v1/agent/sync       struct hf_proto_sync_req  -> hf_proto_sync_resp
 *     the request carries     struct hf_proto_node_info, hf_proto_report[]
 *     the answer carries      struct hf_proto_launch[] (launch orders) and
 *                             the keys of the volumes to delete
 *
 * ENCODING. hf_proto_*_encode() returns a new json_t (the caller owns the
 * reference) and never fails (allocation failure aborts, as hf_xmalloc).
 * What it writes is what docs/protocol.md shows, key for key, so agents and
 * servers of older builds read it.
 *
 * DECODING. hf_proto_*_decode(j, out, &err) fills *out (initialised by the
 * caller with the type's _init function, or {0} for a type without one:
 * a launch order's defaults are not all zero) and returns 0, or HF_EINVAL with
 * *err set to a sentence that names the place and the problem
 * ("tasks[2].exit_code: must be an integer or null"); the caller frees
 * *err and, in both cases, releases *out. Keys it does not know are
 * ignored (a newer peer may send more). A key that is absent or null takes
 * the default the comment beside its field gives; a key of the wrong type
 * is an error. Checks the protocol alone can make are made here (an
 * environment name, a check's kind); what depends on the node (does the
 * user exist, is the rlimit known here) is the agent's.
 *
 * Pure: no I/O, no clock, no globals.
 */
#ifndef HF_PROTO_PROTO_H
#define HF_PROTO_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "spec/spec.h"
#include "task/lifecycle.h"
#include "volume/volume.h"

/* ---- launch orders ---------------------------------------------------- */

/* A health or readiness check; kind HF_CHECK_NONE is none (null). */
struct hf_proto_check {
	enum hf_check_kind kind;
	char *cmd;            /* cmd: the command */
	char *port;           /* http, tcp: a port's name or its number */
	char *path;           /* http: the request path; NULL = "/" */
	double interval;      /* seconds; default 5 */
	double delay;         /* default 0 */
	double timeout;       /* default 20 */
	double grace_period;  /* default 0 */
	int64_t max_consecutive_failures; /* default 3 */
};

/*
 * A volume the task uses: <data>/volumes/<key> at <sandbox>/<path>; or,
 * with type "EXTERNAL", the attached volume named key (an attachment of
 * the node's desired set) at <sandbox>/<path>, once it is ready at epoch.
 */
struct hf_proto_volume {
	char *key, *path;
	char *type;           /* "ROOT", "MOUNT", "EXTERNAL"; NULL when absent */
	int64_t size_mb;
	int64_t epoch;        /* EXTERNAL: the attachment's epoch */
	bool ro;              /* EXTERNAL: mounted read-only */
};

struct hf_proto_config {
	char *name;           /* NULL when absent */
	char *dest;
	char *tmpl;           /* the template's text ... */
	size_t tmpl_len;      /* ... and its length */
};

struct hf_proto_rlimit {
	char *name;           /* "RLIMIT_NOFILE" */
	int64_t soft, hard;   /* -1 = unlimited; null reads as -1 */
};

struct hf_proto_port {
	char *name;
	int64_t number;
};

/* The limit fields' values besides a number: null and "unlimited". */
#define HF_PROTO_LIMIT_NONE 0.0       /* null: the request is the limit */
#define HF_PROTO_LIMIT_UNLIMITED -1.0 /* "unlimited" */

/*
 * A task's policy of restarts in place (shim/shim.h, RESTARTS): when its
 * process exits, its shim starts it again within the same launch (the
 * same task id, sandbox, volumes and reservation), after the server's
 * backoff. on false ("restart": null): the launch ends with its process
 * and the server decides what follows.
 */
struct hf_proto_restart {
	bool on;
	double backoff_base;  /* seconds */
	double backoff_max;   /* seconds */
	double reset_after;   /* seconds up that start the count afresh */
	int64_t max;          /* restarts in a row; 0 = no limit */
};

/*
 * A launch order: everything an agent needs to run one task id. Strings
 * are NULL when absent or null.
 */
struct hf_proto_launch {
	char *task_id;        /* required */
	char *service, *pod, *pod_instance;
	int64_t index;
	char *task, *goal, *config_id;
	char *cmd;            /* required, not empty */
	struct hf_kvlist env; /* numbers and booleans on the wire become text */
	double cpus, memory_mb;
	double limit_cpus, limit_memory_mb; /* > 0, or HF_PROTO_LIMIT_* */
	HF_VEC(struct hf_proto_rlimit) rlimits;
	double kill_grace_period; /* seconds; < 0 when absent */
	HF_VEC(struct hf_proto_port) ports;
	HF_VEC(struct hf_proto_volume) volumes;
	HF_VEC(struct hf_proto_config) configs;
	struct hf_strlist uris;
	struct hf_proto_check health, readiness;
	char *user;           /* NULL: the agent's own user */
	struct hf_strlist capabilities; /* CAP_* names beyond the default */
	bool privileged;      /* every capability */
	bool paused;          /* debug mode: the command replaced by a sleep */
	struct hf_proto_restart restart; /* default: none */
	/*
	 * {"task_id": ID, "known": true} and nothing else on the wire: a
	 * task the agent listed in its request, whose order it already
	 * holds (hf_proto_sync_req.brief). Only task_id is set.
	 */
	bool known;
	/*
	 * Set by hf_proto_sync_resp_decode only: why this order of the
	 * desired set does not decode (the agent fails the task with it).
	 */
	char *invalid;
};

void hf_proto_launch_init(struct hf_proto_launch *l);
void hf_proto_launch_release(struct hf_proto_launch *l);
json_t *hf_proto_launch_encode(const struct hf_proto_launch *l);
int hf_proto_launch_decode(const json_t *j, struct hf_proto_launch *out,
			   char **err);
/* The number of the port named name, or -1. */
int64_t hf_proto_launch_port(const struct hf_proto_launch *l,
			     const char *name);

/* ---- reports ---------------------------------------------------------- */

/*
 * What an agent says of one task. The state is one lifecycle.h's wire
 * names carry: STARTING ("starting"), RUNNING, EXITED, FAILED_TO_START,
 * KILLED or LOST. A state name this build does not know decodes as LOST
 * (gone without a status), as the server always read it.
 */
struct hf_proto_report {
	char *task_id;        /* required */
	enum hf_task_state state; /* required */
	int64_t pid;          /* 0 = null */
	int64_t started_at, finished_at; /* unix ms; 0 = null */
	bool has_exit_code;
	int64_t exit_code;
	int64_t signal;       /* 0 = null */
	bool oom_killed;
	bool ready;
	int healthy;          /* -1 = null, 0, 1 */
	int64_t health_failures;
	char *message, *not_ready;
	bool permanent;       /* written only when true */
	/*
	 * Restarts in place of this launch (its order's restart policy): how
	 * many so far, whether its shim waits out a backoff before the next
	 * one (then the state is STARTING, until restart_at, unix ms), and
	 * the exit that caused the latest (exit code or signal, when).
	 * All default to none; positions order reports (hf_task_restart_pos).
	 */
	int64_t restarts;
	bool backoff;
	int64_t restart_at;   /* 0 = null */
	bool has_last_exit_code;
	int64_t last_exit_code;
	int64_t last_signal;  /* 0 = null */
	int64_t last_exit_at; /* unix ms; 0 = null */
	bool last_oom_killed; /* ... by the kernel's OOM killer */
};

void hf_proto_report_release(struct hf_proto_report *r);
json_t *hf_proto_report_encode(const struct hf_proto_report *r);
int hf_proto_report_decode(const json_t *j, struct hf_proto_report *out,
			   char **err);
/* It exited with code 0 and no signal. */
bool hf_proto_report_exit_ok(const struct hf_proto_report *r);
/* Every field the same (strings by content). */
bool hf_proto_report_equal(const struct hf_proto_report *a,
			   const struct hf_proto_report *b);
/* dst (uninitialized or released) becomes a deep copy of src. */
void hf_proto_report_copy(struct hf_proto_report *dst,
			  const struct hf_proto_report *src);

/* ---- the node's info -------------------------------------------------- */

struct hf_proto_port_range {
	int64_t begin, end;
};

/*
 * The node's storage pool ("storage"; agent --storage, docs/protocol.md):
 * where replica files live, in bytes. capacity is what the pool may hold
 * (the filesystem's free space plus what the pool already uses, capped by
 * the pool's size=); provisioned the sum of its replica files' sizes (thin:
 * what it promised); used the blocks they take; free the filesystem's free
 * space. Numbers default to 0; pool to NULL.
 */
struct hf_proto_storage {
	char *pool;
	int64_t capacity, provisioned, used, free;
	/*
	 * The port of the node's replica server (holdfast-volume serve) on
	 * the node's address, once it listens; 0: not (yet) serving.
	 */
	int64_t port;
	/*
	 * Its TLS listener for other sites' disaster-recovery streams
	 * (agent --dr-listen), once it listens; 0: none.
	 */
	int64_t dr_port;
	/*
	 * The standby replicas' marks, as the replica server's status.json
	 * has them: [{"id", "replica", "consistent": bool, "time": ns}]
	 * (how far the other site's stream got); NULL when none.
	 */
	json_t *marks;
};

/*
 * What an agent says of its node with every sync. Numbers are -1 and
 * strings NULL when absent (the server keeps what it knew).
 */
struct hf_proto_node_info {
	char *hostname, *address;
	struct hf_kvlist attributes;
	double cpus;
	int64_t memory_mb, disk_mb;
	HF_VEC(struct hf_proto_port_range) ports;
	int64_t cgroups_version;
	char *cgroups_note;
	bool has_isolation;
	bool mount_namespaces;
	char *isolation_note;
	struct hf_strlist hidden;
	char *agent_version;
	int64_t started_at;
	char *api, *api_key;  /* the agent's own API and its bearer key */
	/* Absent or null: a storage-less node (no pool). */
	bool has_storage;
	struct hf_proto_storage storage;
};

void hf_proto_node_info_init(struct hf_proto_node_info *n);
void hf_proto_node_info_release(struct hf_proto_node_info *n);
json_t *hf_proto_node_info_encode(const struct hf_proto_node_info *n);
int hf_proto_node_info_decode(const json_t *j, struct hf_proto_node_info *out,
			      char **err);

/* ---- volumes (docs/protocol.md, "Volumes") ---------------------------- */

/* A replica of an attachment held by another node's replica server. */
struct hf_proto_remote {
	char *replica;        /* its id (required) */
	char *node;           /* the node holding it (required) */
	char *address;        /* that node's numeric address (required) */
	int64_t port;         /* its replica server's port, 1-65535 */
	/*
	 * Out of date (it was down): the attach process copies the volume
	 * to it while writing it too, and reports it in "resynced" once it
	 * holds everything; its failure does not hold writes.
	 */
	bool resync;
};

/* An attachment of the desired set: a volume this node is to serve. */
/*
 * A snapshot request carried by an attachment (docs/design/volumes.md
 * §15): op is "take", "delete" or "restore"; id a snapshot id (1-64 of
 * [A-Za-z0-9_-]). The attach process carries each out once.
 */
struct hf_proto_snap_req {
	char *id, *op;        /* both required */
};

/* What the attach process says of one request. */
struct hf_proto_snap_result {
	char *id, *op;        /* required */
	bool ok;
	struct hf_strlist replicas; /* those that did it ("local": its own) */
	char *error;          /* NULL or why not */
};

struct hf_proto_attachment {
	char *volume;         /* its name (required) */
	char *id;             /* its id: 1-64 of [A-Za-z0-9_-] (required) */
	/*
	 * The local replica's id, same rule; NULL (absent or null) when this
	 * node holds none of the volume's in-sync replicas (remotes only).
	 */
	char *replica;
	int64_t epoch;        /* >= 1 (required) */
	int64_t size;         /* bytes, a multiple of 4096 (required) */
	bool format;          /* make the file system at this attach */
	/*
	 * ... which one: "fs": "ext4" (1) or "xfs" (2); absent (0): the
	 * attach process picks (volume/attach.h).
	 */
	int fs;
	int64_t uid, gid;     /* owner of a new file system's root */
	/* The in-sync replicas on other nodes, at most 8. */
	HF_VEC(struct hf_proto_remote) remotes;
	/*
	 * With remotes (required then): the attach ticket, 64 hex digits
	 * (volume/ticket.h: HMAC-SHA256(K_vol, "attach"|id|epoch|node)).
	 */
	char *ticket;
	/*
	 * An encrypted volume's data key, 128 hex digits (volume/crypt.h),
	 * or NULL. Only the attached node is told it; it goes into the
	 * attach process's attach.json (0600) and nowhere else.
	 */
	char *encryption_key;
	/* Snapshots to take, delete or restore (at most 128). */
	HF_VEC(struct hf_proto_snap_req) snapshots;
	/*
	 * The volume's disaster-recovery stream (volume/ship.h), or NULL:
	 * the standby replica on the other site (address, port: its node's
	 * DR listener, replica id), this site's certificate and key and the
	 * other site's CA (PEM texts: the key is a secret, written into the
	 * attach directory 0600 and nowhere else), the journal's size and
	 * what a full one does ("block" or "resync"), and how long a detach
	 * waits for the standby to have every write (ms; 0: the attach
	 * process's default).
	 */
	struct hf_proto_dr {
		char *address, *replica, *ca, *cert, *key, *when_full;
		int64_t port, journal_size, drain_ms;
	} *dr;
};

/* Frees what a (decoded) attachment holds. */
void hf_proto_attachment_release(struct hf_proto_attachment *a);

/*
 * A replica the node's pool holds and its replica server serves: created
 * sparse at size when missing. key is the volume's K_vol (64 hex digits),
 * a secret: never logged, never in the API.
 */
struct hf_proto_held_replica {
	char *volume, *id, *replica, *key; /* all required */
	int64_t size;         /* bytes, a multiple of 4096 */
	/*
	 * A clone's replica (volume clone): made, when missing, from
	 * snapshot clone_snap of replica clone_replica of volume clone_id,
	 * which this node holds; NULL (all three) for any other.
	 */
	char *clone_id, *clone_replica, *clone_snap;
	/*
	 * A replica made from a backup (volume restore --from): the
	 * serve.json "restore_from" object as it is (volume/serveconf.h),
	 * the credential's keys in it; NULL otherwise.
	 */
	json_t *restore_from;
	/* A disaster-recovery standby's: another site's stream writes it. */
	bool standby;
	/*
	 * A standby's consistency group (its service's, when the service
	 * has several volumes): the node applies the group's writes
	 * together (volume/spool.h). NULL: none.
	 */
	char *group;
};

/* A copy to a resyncing replica, as its attach process reports it. */
struct hf_proto_resync {
	char *replica;        /* required */
	int64_t done, total;  /* bytes, 0 <= done <= total */
};

/*
 * What a replica out of the in-sync set misses, as the attach process
 * keeps it: the bytes of the regions written without it (0: none).
 */
struct hf_proto_missed {
	char *replica;        /* required */
	int64_t bytes;        /* >= 0 */
};

/* What the agent says of an attachment it serves. */
struct hf_proto_volume_report {
	char *volume, *id;    /* required */
	int64_t epoch;
	char *state;          /* "attaching", "ready", "detaching", "failed" */
	char *device;         /* ready: "/dev/loopN"; else NULL */
	char *message;        /* NULL or why (failed) */
	/*
	 * Remote replicas the attach process asks to leave the in-sync set
	 * (they failed a write or flush: writes wait until the server
	 * agrees), and why; empty when none.
	 */
	struct hf_strlist isr_drop;
	char *isr_why;
	/* Resyncing remotes that now hold every write (at this epoch). */
	struct hf_strlist resynced;
	/* Copies under way: bytes of the volume done of total, per replica. */
	HF_VEC(struct hf_proto_resync) resync;
	/*
	 * The attach process's counters since it started (bytes, >= 0):
	 * written to the volume, sent to remote replicas with live writes,
	 * sent by copies (resync_sent), and what the copies set out to
	 * send (resync_planned: the regions a returning replica missed, or
	 * the whole volume for a full copy).
	 */
	int64_t written, replicated, resync_sent, resync_planned;
	/* Writes refused (ENOSPC): the local replica's file system is full. */
	int64_t nospace;
	HF_VEC(struct hf_proto_missed) missed;
	/*
	 * Writes answered, by latency (receipt to answer, every replica
	 * included): write_us[i] counts those of at most
	 * hf_vol_lat_bounds_us[i] (volume/volume.h; not cumulative), the
	 * last one the rest; write_us_sum their total, in microseconds.
	 * has_write_us: reported.
	 */
	bool has_write_us;
	int64_t write_us[HF_VOL_LAT_BUCKETS + 1];
	int64_t write_us_sum;
	/* What became of the attachment's snapshot requests so far. */
	HF_VEC(struct hf_proto_snap_result) snapshots;
	/* Its DR stream's state, status.json's "dr" object (ship.h), or NULL. */
	json_t *dr;
};

/* A replica to delete from the node's pool. */
struct hf_proto_replica_ref {
	char *id, *replica;   /* volume id, replica id (both required) */
};

/* ---- sync ------------------------------------------------------------- */

/*
 * "dr_final": how a detached volume's DR stream ended (its attach process
 * gone): drained when the standby acknowledged every write it took.
 */
struct hf_proto_dr_final {
	char *volume; /* required */
	int64_t epoch;
	bool drained;
};

struct hf_proto_sync_req {
	char *node_id;        /* required, not empty */
	char *cluster;        /* NULL: no server accepted the agent yet */
	int64_t seq;          /* default 0 */
	int64_t generation;   /* default 0 */
	double wait;          /* seconds; default 0 */
	bool has_info;
	struct hf_proto_node_info info;
	/*
	 * Whether "tasks" was sent at all: only a request that lists its
	 * tasks can tell the server that one is gone.
	 */
	bool has_tasks;
	HF_VEC(struct hf_proto_report) tasks;
	struct hf_strlist deleted_volumes;
	HF_VEC(struct hf_proto_volume_report) volumes; /* attachments served */
	struct hf_strlist deleted_replicas;            /* replica ids */
	/* Clones' replicas made from their snapshot and served (ids). */
	struct hf_strlist filled_replicas;
	/*
	 * "filling_replicas": the replica its replica server is making now
	 * (a clone's, or from a backup): bytes written of those to write.
	 */
	HF_VEC(struct hf_proto_resync) filling;
	HF_VEC(struct hf_proto_dr_final) dr_final;
	/*
	 * "brief": the agent keeps the order of every task it lists, so the
	 * answer may name those by task_id alone (hf_proto_launch.known)
	 * instead of repeating orders it has. Default false: full orders.
	 */
	bool brief;
	/*
	 * "same": tasks whose report is, field for field, the one an answer
	 * of the server that said reports_epoch ("reports_epoch", below)
	 * acknowledged: listed by id alone (docs/protocol.md). Present
	 * tasks as much as those of "tasks".
	 */
	struct hf_strlist same;
	char *reports_epoch;
	/*
	 * "held": the agent holds the whole desired set of "generation" (an
	 * order for every task of it), so an answer of that generation may
	 * leave its tasks out (hf_proto_sync_resp.tasks_unchanged).
	 */
	bool held;
};

void hf_proto_sync_req_init(struct hf_proto_sync_req *r);
void hf_proto_sync_req_release(struct hf_proto_sync_req *r);
json_t *hf_proto_sync_req_encode(const struct hf_proto_sync_req *r);
int hf_proto_sync_req_decode(const json_t *j, struct hf_proto_sync_req *out,
			     char **err);

struct hf_proto_sync_resp {
	int64_t generation;   /* required */
	/*
	 * The node's complete desired set (required). An order that does
	 * not decode is kept with its task_id (when it has a usable one)
	 * and ->invalid set, so the agent can fail that task alone. To a
	 * brief request, tasks it listed come as ids alone (->known).
	 */
	HF_VEC(struct hf_proto_launch) tasks;
	struct hf_strlist delete_volumes; /* volume keys to delete */
	HF_VEC(struct hf_proto_attachment) attachments;
	HF_VEC(struct hf_proto_replica_ref) delete_replicas;
	HF_VEC(struct hf_proto_held_replica) replicas; /* the pool's replicas */
	int64_t heartbeat_interval;       /* seconds; default 2 */
	char *cluster;        /* the server's cluster id; NULL if absent */
	/*
	 * "reports_epoch": the server's memory of acknowledged reports, by
	 * which the agent may list unchanged ones as "same" (NULL: a server
	 * that keeps none; every report in full). "resend": it lacked one
	 * that was listed so: the agent sends all in full next time.
	 */
	char *reports_epoch;
	bool resend;
	/*
	 * "tasks_unchanged": the desired set is the generation the request
	 * held, every task of it one the request listed: "tasks" is left
	 * out (and empty here); the agent keeps the set it has.
	 */
	bool tasks_unchanged;
};

void hf_proto_sync_resp_init(struct hf_proto_sync_resp *r);
void hf_proto_sync_resp_release(struct hf_proto_sync_resp *r);
json_t *hf_proto_sync_resp_encode(const struct hf_proto_sync_resp *r);
int hf_proto_sync_resp_decode(const json_t *j, struct hf_proto_sync_resp *out,
			      char **err);

/* ---- register --------------------------------------------------------- */

struct hf_proto_register {
	char *node_id, *token; /* both required */
};

void hf_proto_register_release(struct hf_proto_register *r);
json_t *hf_proto_register_encode(const struct hf_proto_register *r);
int hf_proto_register_decode(const json_t *j, struct hf_proto_register *out,
			     char **err);

#endif
