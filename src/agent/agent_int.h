/*
 * agent_int.h - what the agent's files share: the task table, the agent
 * itself, and the functions each file offers the others.
 *
 * LOCKING. One mutex, ag->mu, guards everything in struct hf_agent below
 * it and every struct ag_task field but the check runs. Each thread holds
 * it only for short, non-blocking work; HTTP requests, shim requests,
 * sandbox preparation and file removal happen with it released. Who does
 * what:
 *
 *   supervisor (the thread that called hf_agent_run): signals, shim watch
 *     connections, checks (their run state is its alone), sending stops,
 *     and freeing task records (nobody else frees one, so a pointer taken
 *     under the lock stays valid for the supervisor across a poll);
 *   long poll and immediate sync threads: build requests, apply responses
 *     (create task records, decide stops, forget acknowledged exits,
 *     queue jobs);
 *   workers (a pool of opts->launch_workers threads): the jobs (launch,
 *     delete a volume, remove a task directory), several at once. A job
 *     starts only when no job queued before it or running touches one of
 *     its volumes (ag_job_conflict), so a volume is deleted after the
 *     launches ordered before it and never under one; anything else runs
 *     side by side, and a slow artifact fetch or shim start holds up its
 *     own task only.
 *
 * cache_mu guards the artifact cache (fetch.c) and nothing else; it is
 * never held with ag->mu, nor across a download.
 */
#ifndef HF_AGENT_AGENT_INT_H
#define HF_AGENT_AGENT_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "agent/agent.h"
#include "agent/api.h"
#include "common/map.h"
#include "common/util.h"
#include "proto/proto.h"
#include "shim/shim.h"
#include "spec/spec.h"
#include "task/lifecycle.h"

#define AG_DEFAULT_GRACE 3.0
#define AG_ORDER_FILE "order.json"   /* the launch order, as received */
#define AG_STOP_FILE "agent-stop"    /* why the agent stopped the task */
/*
 * The readiness check has passed; it holds the count of restarts in place
 * of the process that passed it (empty: 0), since a restarted process must
 * pass it again.
 */
#define AG_READY_FILE "agent-ready"

enum ag_stop {
	AG_STOP_NONE,
	AG_STOP_ORDER,  /* not in the desired set: report "killed" */
	AG_STOP_HEALTH, /* health check failed: report "exited" + message */
};

enum ag_check_phase {
	AG_CHECK_IDLE,
	AG_CHECK_CMD,     /* child running */
	AG_CHECK_CONNECT, /* tcp/http: connect in progress */
	AG_CHECK_SEND,    /* http: request being written */
	AG_CHECK_RECV,    /* http: waiting for the status line */
};

struct ag_check {
	bool readiness;            /* else a health check */
	enum hf_check_kind kind;
	char *cmd;
	int port;
	char *path;
	int64_t delay_ms, interval_ms, timeout_ms, grace_ms;
	int max_failures;
	/* Owned by the supervisor from here on. */
	int64_t next_at;           /* monotonic ms; 0 = not scheduled */
	enum ag_check_phase phase;
	int64_t deadline;
	pid_t pid;
	int pidfd, outfd, sockfd;
	struct hf_buf io;          /* cmd output tail, or the HTTP exchange */
	size_t sent;
	int failures;              /* consecutive counted failures */
};

struct ag_task {
	char *id;
	char *dir;                 /* <data>/tasks/<id> */
	char *sandbox;             /* <dir>/sandbox */
	/*
	 * The launch order (owned; NULL if unknown). Set once, when the
	 * record is made (or restored at start), and never changed: the
	 * worker reads it without the lock.
	 */
	struct hf_proto_launch *order;

	/* Derived from the order by ag_task_set_order(). */
	char *order_error;         /* unusable order: fail the launch */
	struct hf_kvlist env;      /* the task's whole environment */
	double grace;
	bool paused;
	char *user;
	struct hf_strlist volume_keys, volume_paths;
	struct ag_check *health, *readiness;
	struct hf_shim_launch *launch; /* launch.json, read for the checks */

	/* What is reported. */
	enum hf_task_state state; /* the node side of task/lifecycle.h */
	pid_t pid;
	int64_t started_at, finished_at; /* unix ms, 0 = null */
	bool has_exit_code;
	int exit_code;
	int signal;
	bool oom_killed;
	char *message;
	bool permanent;            /* failed to start; retrying cannot help */
	uint64_t mnt_ns;           /* its mount namespace (status.json) */
	bool ready;
	char *not_ready;           /* the last failed readiness check's reason */
	int healthy;               /* -1 = null, 0, 1 */
	int health_failures;
	/*
	 * Restarts in place by its shim (RESTARTS in shim/shim.h), as its
	 * statuses said: how many, whether it waits out a backoff (until
	 * restart_at, unix ms), and the exit that caused the latest.
	 */
	unsigned restarts;
	bool backoff;
	int64_t restart_at;
	bool has_last_exit_code;
	int last_exit_code, last_signal;
	int64_t last_exit_at;
	bool last_oom_killed;

	/* Supervision. */
	int watch_fd;              /* supervisor's; -1 when none */
	bool need_watch;
	int64_t watch_retry_at;    /* monotonic ms */
	bool attn;                 /* in ag->attn (ag_attend) */
	enum ag_stop stop;
	char *stop_message;
	bool stop_sent;            /* the shim acknowledged the stop */
	int64_t stop_retry_at;

	/* Reporting and forgetting. */
	/*
	 * The report last sent in full (in request sent_seq) and the one an
	 * answer acknowledged: while its report is the acknowledged one, a
	 * task is listed by id alone ("same", docs/protocol.md).
	 */
	struct hf_proto_report sent, acked;
	uint64_t sent_seq;
	bool has_sent, has_acked;
	uint64_t terminal_seq;     /* first request that carried the final state */
	int64_t terminal_at;       /* unix ms the agent saw it end */
	bool listed;               /* in the last applied desired set */
	bool forgotten;            /* acknowledged: no longer reported */
	bool removing, removed;    /* task directory removal queued / done */
	int jobs;                  /* queued or running jobs naming it */
};

enum ag_job_kind {
	AG_JOB_LAUNCH,
	AG_JOB_DELETE_VOLUME,
	AG_JOB_REMOVE_DIR,
};

struct ag_job {
	enum ag_job_kind kind;
	struct ag_task *task;
	char *key;
};

/*
 * The node's storage pool (pool.c), set at start and unchanged after: dir
 * NULL for a storage-less node.
 */
struct ag_pool {
	char *dir;                 /* canonical */
	int64_t size;              /* the size= cap in bytes; 0: none */
	int lock_fd;               /* holds DIR/lock; -1 when none */
};

/* An attach directory the agent knows (attach.c). */
struct ag_attach {
	char *volume;
	pid_t pid;                 /* a process this agent started; 0: none */
	int64_t term_at;           /* monotonic ms SIGTERM was last sent */
	int64_t failed_at;         /* monotonic ms of the last failed start */
	/* Its attachment lost remotes at the same epoch: SIGHUP it. */
	bool hup;
	size_t isr_asked;          /* remotes its status asked to drop */
	size_t resynced_seen;      /* remotes its status says resynced */
	int64_t ready_seen;        /* the epoch it was last seen ready at */
	size_t snaps_seen;         /* snapshot answers its status holds */
	int64_t fence_wait;        /* monotonic ms it began to wait for one */
	/*
	 * Its DR stream's end, once its process detached (reported as
	 * "dr_final" for a while): the epoch, whether the standby had every
	 * write, when (monotonic ms); kept: the directory stays, its journal
	 * holding writes the standby lacks.
	 */
	int64_t final_epoch, final_at;
	bool final_drained, final_kept;
};

/* The node's replica server (vserve.c). */
struct ag_vserve {
	pid_t pid;                 /* a process this agent started; 0: none */
	int64_t start_at;          /* monotonic ms of the last start */
	int64_t hup_at, term_at;   /* ... of the last SIGHUP, SIGTERM */
	bool written;              /* serve.json changed since the last HUP */
	uint32_t config_crc;       /* CRC-32C of serve.json as last written */
	/*
	 * A sync answer said which replicas to hold: until then serve.json
	 * stays as a previous run left it (a restarted agent must not empty
	 * the set of a server that outlived it).
	 */
	bool known;
	char *failure;             /* its last failure, as logged */
	size_t filled_seen;        /* clone replicas it serves (made) */
	int64_t fill_seen;         /* bytes made of the one being made; -1 */
	struct hf_strlist skipped; /* replica ids serve.json cannot list */
};

/* The pool's bound when opts->launch_workers is 0. */
#define AG_DEFAULT_WORKERS 8

#define AG_PIDFD_LATER (-2)

/* An id launched on this node, and when (wall-clock ms), in agent.json. */
struct ag_launched {
	char *id;
	int64_t at;
};

/* A shim the agent started and must reap. */
struct ag_child {
	pid_t pid;
	int pidfd; /* in childfd's set; -1: pidfd_open failed, tried at GC;
		      AG_PIDFD_LATER: the supervisor opens it */
};

struct hf_agent {
	const struct hf_agent_opts *opts;
	char *data, *tasks_dir, *volumes_dir, *cache_dir, *state_path;
	char *node_id;
	/*
	 * The cluster this node belongs to (agent.json), NULL until a server
	 * first accepted it; sent with every sync (docs/protocol.md).
	 */
	char *cluster_id;
	char *refused;             /* the server's last refusal, logged once */
	int lock_fd;               /* holds <data>/agent.lock */
	char *node_token;          /* this node's own credential (nodeauth.h) */
	char *shim_bin;            /* holdfast-shim, next to holdfast */
	char *volume_bin;          /* holdfast-volume, next to holdfast */
	/*
	 * Immutable after start, but for info.storage's figures, which
	 * ag_pool_refresh() updates under the lock.
	 */
	struct hf_proto_node_info info;
	struct ag_pool pool;
	int64_t pool_stat_at;      /* monotonic ms of the last pool read */
	bool pool_stat_failed;     /* ... and it failed (logged once) */
	int64_t started_at;
	int wakefd;                /* eventfd: wakes the supervisor */
	int watchfd;               /* epoll of the shims' watch sockets */
	int childfd;               /* epoll of the pidfds of children */
	size_t children_later;     /* children whose pidfd is not open yet */
	struct hf_agent_api *api;  /* task logs and exec; NULL if not up */

	pthread_mutex_t mu;
	pthread_cond_t sync_cv;    /* sync_dirty or stopping */
	pthread_cond_t work_cv;    /* jobs or stopping */
	HF_VEC(struct ag_task *) tasks;
	/*
	 * The tasks the supervisor's pass looks at: a watch to open, a stop
	 * to send, checks to run. A pass costs what needs doing, not the
	 * node's task count (a deploy of N tasks wakes it O(N) times).
	 */
	HF_VEC(struct ag_task *) attn;
	size_t removed_pending;    /* tasks removed, not yet freed */
	HF_VEC(struct ag_child) children; /* shims started, not yet reaped */
	/*
	 * The ids launched on this node, oldest first, and a set of them
	 * for lookups: an id in it is never launched again (launched.c).
	 */
	HF_VEC(struct ag_launched) launched;
	struct hf_map launched_set;
	struct hf_strlist volumes_deleted; /* reported until not asked */
	struct hf_strlist volumes_queued;  /* deletion queued or running */
	/* The desired set's attachments, and what serves them (attach.c). */
	HF_VEC(struct hf_proto_attachment) attach_want;
	HF_VEC(struct ag_attach) attaches;
	struct hf_strlist replicas_deleted; /* reported until not asked */
	int64_t attach_next;       /* monotonic ms to reconcile them again */
	/* The replicas the pool holds and serves (vserve.c), keys included. */
	HF_VEC(struct hf_proto_held_replica) held;
	struct ag_vserve vserve;
	int64_t vserve_next;       /* monotonic ms to reconcile it again */
	HF_VEC(struct ag_job) jobs;        /* queued, oldest first */
	HF_VEC(struct ag_job) running;     /* taken by a worker */
	/* Bumped (sync_cv told) each time the pool runs out of jobs. */
	uint64_t pool_dry_seq;
	pthread_t *workers;
	size_t nworkers;                   /* started */
	int64_t generation;        /* of the last applied response */
	uint64_t seq;              /* of the last request built */
	size_t server;             /* index into opts->servers */
	bool sync_dirty;
	/*
	 * The server's reports_epoch in the newest answer (from request
	 * epoch_seq): tasks' acknowledged reports count with it only.
	 */
	char *reports_epoch;
	uint64_t epoch_seq;
	/*
	 * The generation whose whole desired set this agent holds (every
	 * task of it with its order, since this process started), or 0: a
	 * sync says so ("held"), and its answer may leave the tasks out.
	 */
	int64_t held_gen;
	bool stopping;
	bool link_down;            /* logged that the server is unreachable */
	char *link_msg;            /* ... and why, as logged */
	/*
	 * Tasks get mount namespaces of their own (hf_confine_probe); if not,
	 * volumes are linked into sandboxes and nothing is hidden.
	 */
	bool isolate;
	struct hf_strlist hide;    /* canonical dirs hidden from tasks */
	struct hf_strlist artifact_dirs; /* canonical; file:// URIs only here */
	bool join_logged;          /* logged why it cannot register */

	/* The artifact cache (fetch.c), under cache_mu. */
	pthread_mutex_t cache_mu;
	pthread_cond_t cache_cv;       /* a download in flight ended */
	struct hf_strlist fetching;    /* URLs being downloaded */
};

/* ---- agent.c ---- */

/* Wakes the supervisor's poll. Any thread, lock held or not. */
void ag_wake(struct hf_agent *ag);
/*
 * With the lock held, after setting need_watch, stop or checks: puts t
 * on the supervisor's list (ag->attn) until none of them needs it.
 */
void ag_attend(struct hf_agent *ag, struct ag_task *t);
/* Takes t off that list, before ag_task_free. */
void ag_unattend(struct hf_agent *ag, struct ag_task *t);
/*
 * A shim this agent started (hf_shim_spawn) stays its child: it is reaped
 * when it exits, through a pidfd in the supervisor's poll. The supervisor
 * opens that pidfd on its next wake-up (ag_wake): a launch worker's
 * descriptors are not the supervisor's (sandbox.c). Lock held.
 */
void ag_child_add(struct hf_agent *ag, pid_t pid);
/* Asks for an immediate sync. Lock held. */
void ag_mark_dirty(struct hf_agent *ag);

/* ---- state.c ---- */

/* A new record (lock held or not; the caller links it into ag->tasks). */
struct ag_task *ag_task_new(struct hf_agent *ag, const char *id);
void ag_task_free(struct ag_task *t);
struct ag_task *ag_task_find(struct hf_agent *ag, const char *id);
/* True for ids the shim accepts, which are also safe directory names. */
bool ag_task_id_valid(const char *id);

/*
 * Takes the launch order (heap-allocated; the task owns it from now on)
 * and derives the task's fields (environment, checks, grace, volumes); a
 * problem, or order->invalid, sets t->order_error.
 */
void ag_task_set_order(struct hf_agent *ag, struct ag_task *t,
		       struct hf_proto_launch *order);

/*
 * Applies a status from the shim (watch line or status.json). Lock held.
 * Marks the agent dirty on a change the server must hear about.
 */
void ag_task_apply_status(struct hf_agent *ag, struct ag_task *t,
			  const struct hf_shim_status *st);
/*
 * Its shim is up (or slow to answer): a STAGING task is STARTING from
 * now on. Nothing to report: both are "starting" on the wire. Lock held.
 */
void ag_task_shim_up(struct ag_task *t);
/*
 * Ends a task without a shim status: ev is HF_TEV_FAILED_TO_START (failed
 * to prepare), HF_TEV_STOPPED (removed before it started) or HF_TEV_LOST.
 * Lock held. message may be NULL.
 */
void ag_task_end(struct hf_agent *ag, struct ag_task *t,
		 enum hf_task_event ev, const char *message);
/*
 * Ends a task whose shim is gone without a final status: what the task
 * left (processes of its session and cgroup) is killed, its cgroup
 * removed and its status made final (hf_shim_cleanup_lost), then it is
 * reported lost with message. Lock held.
 */
void ag_task_lost(struct hf_agent *ag, struct ag_task *t, const char *message);
/*
 * The task's launch.json as last written (for its checks), read on first
 * use; NULL when there is none or it cannot be read. Owned by the task.
 */
const struct hf_shim_launch *ag_task_launch(struct ag_task *t);
/* Fills r (zeroed) with the task's report for a sync request; the caller
 * releases it. Lock held. */
void ag_task_report(const struct ag_task *t, struct hf_proto_report *r);

/*
 * ---- launched.c ----
 * The record that makes a launch happen at most once per id on a node,
 * agent restarts included. Lock held (or before the threads start).
 */
bool ag_launched_has(const struct hf_agent *ag, const char *id);
/* Appends id (launched at wall-clock ms at) unless it is there. */
void ag_launched_add(struct hf_agent *ag, const char *id, int64_t at);
/* Takes id back out (its launch never started anything). */
void ag_launched_remove(struct hf_agent *ag, const char *id);
/*
 * Drops the ids launched more than opts->launched_keep_s ago whose task
 * has left the node (acknowledged final, its directory removed): only a
 * server that lost its state could name them again. Returns how many.
 */
size_t ag_launched_prune(struct hf_agent *ag, int64_t now);
void ag_launched_release(struct hf_agent *ag);

/* agent.json: load at start (creating it), save after a change. */
int ag_state_load(struct hf_agent *ag);
int ag_state_save(struct hf_agent *ag);
/* Builds the task table from <data>/tasks at start (before threads). */
void ag_reattach(struct hf_agent *ag);
/*
 * True when a shim holds TASKDIR's lock (it is alive), false when it is
 * gone or never ran.
 */
bool ag_shim_alive(const char *taskdir);

/* ---- sync.c ---- */

void *ag_long_poll_thread(void *arg);
void *ag_short_sync_thread(void *arg);

/* ---- sandbox.c ---- */

/*
 * A worker of the pool (ag->workers): takes the oldest job that conflicts
 * with no older one (ag_job_conflict) until ag->stopping, finishing the
 * job it has first; the jobs still queued then stay queued.
 */
void *ag_worker_thread(void *arg);
/* Queues a job. Lock held. key is copied. */
void ag_job_push(struct hf_agent *ag, enum ag_job_kind kind,
		 struct ag_task *t, const char *key);
/*
 * Detaches volume bind mounts an older agent made in the node's own mount
 * namespace (this one binds volumes inside each task's namespace only).
 */
void ag_unbind_volumes(struct ag_task *t);
/*
 * A volume key below <data>/volumes: relative '/'-separated parts of
 * [A-Za-z0-9._:@+%-], none empty, "." or "..". The server escapes names
 * into parts (docs/protocol.md), so no service's keys lie inside another's.
 */
bool ag_volume_key_valid(const char *key);

/* ---- attach.c: attached volumes (docs/protocol.md, "Volumes") ---- */

/*
 * Brings the attach processes in line with the desired attachments:
 * starts what is missing (detached; attach.json with the local replica's
 * path, or null without one, the remotes, this node's id and the ticket),
 * stops what is not wanted or serves an older epoch, reaps its children,
 * removes the directories of detached volumes. An attachment with a
 * local replica needs the pool; one with remotes only does not. Returns
 * when to run again (monotonic ms). Lock held.
 */
int64_t ag_attach_reconcile(struct hf_agent *ag);
/* Adds the node's volume reports and deleted replicas. Lock held. */
void ag_attach_reports(struct hf_agent *ag, struct hf_proto_sync_req *req);
/* The clone replicas the node's replica server made and serves. */
void ag_vserve_reports(struct hf_agent *ag, struct hf_proto_sync_req *req);
/*
 * Takes the answer's attachments (moved out of r) and deletes the replicas
 * it names. Returns whether the supervisor has work: ag->attach_next is
 * then now. Lock held.
 */
bool ag_attach_apply(struct hf_agent *ag, struct hf_proto_sync_resp *r);
/*
 * Whether volume is ready at epoch: 0 with *device and *identity (the
 * shim's "expect") set, 1 while it is not yet (*why says why), -1 when it
 * never will be. The caller frees the strings. Lock held.
 */
int ag_attach_ready(struct hf_agent *ag, const char *volume, int64_t epoch,
		    char **device, char **identity, char **why);

/* ---- vserve.c: the node's replica server (src/volume/serve.h) ---- */

/*
 * With a pool: keeps one holdfast-volume serve running on <data>/vserve
 * (started detached, found by its lock, started again when gone, restarted
 * when --address, --volume-port or the pool changed), its serve.json the
 * held replicas (rewritten atomically when they change, then SIGHUP), and
 * ag->info.storage.port its port while it is ready (0 otherwise; a change
 * marks the agent dirty). Without a pool, stops one an earlier run left.
 * Returns when to run again. Lock held.
 */
int64_t ag_vserve_reconcile(struct hf_agent *ag);
/*
 * Takes the answer's replicas (moved out of r), but those its
 * delete_replicas names. Returns whether they changed: ag->vserve_next is
 * then now. Lock held.
 */
bool ag_vserve_apply(struct hf_agent *ag, struct hf_proto_sync_resp *r);
/*
 * Whether the replica server may still have this replica open (it lists
 * it, or is starting or loading): its files are deleted only once not.
 * Lock held.
 */
bool ag_vserve_holds(struct hf_agent *ag, const char *id, const char *replica);
/* Whether the node's replica server is ready and serves that replica now. */
bool ag_vserve_serving(struct hf_agent *ag, const char *id,
		       const char *replica);
/* Empties ag->held (the keys wiped). */
void ag_vserve_clear(struct hf_agent *ag);

/* ---- pool.c ---- */

/*
 * A size in bytes, as the volumes' size option reads one (spec/volopts.c,
 * docs/spec.md): a decimal number (a bare one is GiB) or one with a
 * binary unit, M, G or T, any case, optionally followed by "i" and "B"
 * ("500M", "1.5T", "10Gi", "2GB"). Fractions of a byte are dropped.
 * Returns 0, HF_EINVAL (not a size) or HF_ETOOBIG (over 1 EiB).
 */
int ag_size_parse(const char *s, int64_t *out);
/*
 * The --storage flag's value "DIR[,size=N]" (size at least 64 MiB): sets
 * *dir (owned, the previous one freed) and *size (0: no size=). Returns
 * NULL, or a sentence naming flag and the problem (the caller frees it);
 * then nothing is set.
 */
char *ag_pool_flag_parse(const char *flag, const char *val, char **dir,
			 int64_t *size);
/*
 * At start, after the agent's state is loaded (the pool belongs to its
 * node id): creates the pool directory (0700) and DIR/replicas if
 * missing, takes DIR/lock, checks or writes DIR/pool.json, and fills
 * ag->info.storage. Nothing to do without --storage. Returns 0, or an
 * HF_E* code after logging why the pool cannot be used.
 */
int ag_pool_open(struct hf_agent *ag);
/* Releases the lock (the process's end does too) and frees *p. */
void ag_pool_close(struct ag_pool *p);
/*
 * Reads a pool's figures into out (its pool member untouched). Returns 0
 * or HF_EIO (errno set) when the directory cannot be read.
 */
int ag_pool_stat(const char *dir, int64_t size, struct hf_proto_storage *out);
/*
 * Refreshes ag->info.storage before a sync request is built (at most once
 * a second). Lock held; released while the pool is read.
 */
void ag_pool_refresh(struct hf_agent *ag);

/* ---- fetch.c ---- */

/*
 * Fetches the task's uris into its sandbox (a worker), giving the
 * files to uid:gid (unless uid is (uid_t)-1) and extracting archives as
 * that user. Returns 0, or -1 with *err set to a sentence (the caller
 * frees it).
 */
int ag_fetch_uris(struct hf_agent *ag, struct ag_task *t,
		  const struct hf_strlist *uris, uid_t uid, gid_t gid,
		  char **err);

/* ---- check.c ---- */

/*
 * The agent's run of a launch order's health or readiness check (its port
 * resolved against the order's ports). Returns NULL with *err unset for
 * none, NULL with *err set for a check that cannot run.
 */
struct ag_check *ag_check_parse(const struct hf_proto_check *o,
				const struct hf_proto_launch *order,
				bool readiness, char **err);
/* Frees a check (its run must have been cancelled). */
void ag_check_free(struct ag_check *c);

struct ag_pollref {
	struct ag_task *t;
	struct ag_check *c;  /* NULL: the shim watch */
};

/*
 * Supervisor only, lock held: starts due checks, times out late ones, and
 * adds the descriptors of checks in flight to the poll set. Returns the
 * next deadline (monotonic ms) or INT64_MAX.
 */
int64_t ag_checks_tick(struct hf_agent *ag, struct ag_task *t,
		       struct pollfd **pfds, struct ag_pollref **refs,
		       size_t *n, size_t *cap);
/* A descriptor of a check in flight is ready. Supervisor, lock held. */
void ag_check_event(struct hf_agent *ag, struct ag_task *t,
		    struct ag_check *c, int fd, short revents);
/* Kills a check in flight and unschedules it. */
void ag_check_cancel(struct ag_check *c);
/* The task started running (or was found running): schedule checks. */
void ag_checks_start(struct ag_task *t);

/* ---- fsutil.c ---- */

/*
 * Removes a tree without following symlinks or crossing into another
 * mount (a volume still bound inside is left alone, and the removal
 * fails). Returns 0 or -1 (errno); a missing path is success.
 */
int ag_rm_rf(const char *path);
/* Detaches every mount at or below dir, deepest first. Returns how many
 * remain mounted. */
int ag_unmount_under(const char *dir);
/*
 * Joins base and a relative path lexically ("." and ".." resolved, no
 * filesystem access). Returns NULL when rel is absolute or empty, or the
 * result is root itself or outside it. The caller frees the result.
 */
char *ag_path_join_within(const char *root, const char *base,
			  const char *rel);
/*
 * Runs argv (argv[0] an absolute path) in cwd with a plain environment
 * (common/spawn.h), as user uid:gid unless uid is (uid_t)-1, and waits.
 * Returns 0 when it exited 0, else -1 with *err saying how it failed (its
 * last stderr line included); the caller frees *err.
 */
int ag_run(char *const argv[], const char *cwd, uid_t uid, gid_t gid,
	   char **err);
/*
 * Makes path, if it is not there, an ext4 image of size_mb MB (at least
 * AG_IMAGE_MIN_MB, so it has a journal) whose root belongs to uid:gid: a
 * sparse file formatted as path.new, made durable, then renamed, so a
 * kill -9 at any instant leaves no image or a whole one. Returns 0 (*made
 * says whether it was made now) or -1 with *err set (the caller frees it).
 */
#define AG_IMAGE_MIN_MB 8
int ag_make_image(const char *path, int64_t size_mb, uid_t uid, gid_t gid,
		  bool *made, char **err);
/* Copies a file (mode given). Returns 0 or -1 (errno). */
int ag_copy_file(const char *src, const char *dst, mode_t mode);

#endif
