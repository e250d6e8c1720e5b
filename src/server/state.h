/*
 * state.h - the server's view of the cluster: services, their configs and
 * plan runs, pod instances with their tasks' launches, and nodes. Internal
 * to the server.
 *
 * Everything here is guarded by srv->mu. Every change that must survive a
 * crash is written to the store (hf_state_save_*) before it becomes
 * visible to an agent: the desired set handed to agents is computed from
 * this state only after the write succeeded. A failed store write makes
 * the memory untrustworthy: from then on nothing is written, no answer
 * built from it goes out (hf_state_failed), and the server discards it
 * and reloads what the store holds once writes work again (server.c);
 * with etcd the server exits instead.
 *
 * Loading checks every record: a record that is not valid JSON, lacks a
 * field it needs, has a field of the wrong type or a name its key
 * contradicts, or a service whose target config is missing, fails the
 * load with a message naming the key. A damaged store is never read as a
 * smaller one.
 */
#ifndef HF_SERVER_STATE_H
#define HF_SERVER_STATE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"
#include "common/map.h"
#include "common/util.h"
#include "plan/plan.h"
#include "server/server.h"
#include "spec/spec.h"
#include "store/store.h"

struct hf_service;
struct hf_instance;

/* An instance placed on a node, as the node's list holds it. */
struct hf_node_inst {
	struct hf_service *svc;
	struct hf_instance *in;
};

struct hf_node_insts {
	struct hf_node_inst *items;
	size_t len, cap;
};

enum hf_task_state {
	HF_TS_STAGING,  /* launch recorded; not yet seen running by an agent */
	HF_TS_STARTING, /* the agent started its shim */
	HF_TS_RUNNING,
	HF_TS_FINISHED, /* exited 0 */
	HF_TS_FAILED,   /* exited non-zero, killed by a signal, failed to start */
	HF_TS_KILLED,   /* stopped on the server's order */
	HF_TS_LOST,     /* gone without a status (node or agent lost it) */
};

const char *hf_task_state_name(enum hf_task_state s);
bool hf_task_state_live(enum hf_task_state s);

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
	bool paused;    /* debug mode: tasks run a sleep instead */
	bool replacing; /* being replaced: fresh node, ports and volumes */
	bool replace_deleting; /* ... its old volumes are being deleted */
	/* Scale-in: 1 draining, 2 stopping tasks; drain outcome. */
	int decom;
	bool drain_done, drain_failed, drain_skipped;
	/* The instance this one replaces (pod replace): for its tasks' env. */
	char *replaced_node, *replaced_address;
	bool replace_pending; /* its replace tasks have not finished yet */
	int64_t unreachable_since; /* its node stopped answering (ms) */
};

struct hf_config {
	char *id;
	char *text;                /* the spec template as given */
	char *file;                /* its file name, for messages */
	struct hf_kvlist options;  /* -o / --options */
	struct hf_kvlist templates; /* config templates: path -> content */
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
 * A pod instance's volume directory on a node that no instance owns any
 * more: kept when its service was removed without --delete-volumes, or by
 * a scale-in that keeps volumes. It stays until it is deleted (`holdfast
 * volume delete`, or a remove --delete-volumes of a service of that name)
 * or an instance of the same service and name is placed on its node and
 * reuses it.
 */
struct hf_kept_volume {
	char *key;     /* "<svc>/<pod-i>", its directory under volumes/ */
	char *why;     /* how it came to be kept */
	int64_t since; /* unix ms */
};

struct hf_node {
	char *id;
	char *hostname;
	char *address;
	struct hf_kvlist attributes;
	double cpus, memory_mb, disk_mb;
	int64_t port_begin, port_end;
	char *cgroups;
	char *api;     /* the agent's own API (logs, exec), from its info */
	char *api_key; /* its bearer token; memory only */
	int64_t last_seen;
	int64_t saved_seen; /* last_seen as last written to the store */
	int64_t agent_started_at;
	double last_report_seq; /* the newest sync's "seq" */
	bool decommissioned;    /* no new placements; its pods are replaced */
	struct hf_strlist delete_volumes; /* volume keys to delete */
	struct {
		struct hf_kept_volume *items;
		size_t len, cap;
	} kept; /* volumes kept there that no instance owns */
	size_t idx; /* its position in srv->nodes (nodes are never removed) */
	/*
	 * The desired set as last handed out or published: its digest and
	 * its generation. A generation always names one content, so an agent
	 * can tell an older answer from a newer one.
	 */
	uint64_t gen, digest, digest_scratch;
	struct hf_http_waitq waitq; /* its agent's long poll waits here */
	/*
	 * The instances placed here, rebuilt by hf_sched_publish; only to be
	 * used while srv->node_lists_valid (nothing moved since).
	 */
	struct hf_node_insts insts;
	/* Placement scratch, valid during one place() call. */
	size_t load;
	double used_cpus, used_mem;
	int64_t clash_port; /* a static port of the pod taken there, or 0 */
};

/* A write waiting in the open batch (hf_state_batch_begin). */
struct hf_batch_put {
	char *key;
	char *value;
	size_t len;
};

/* The key the leading server holds with its lease. */
#define HF_LEADER_KEY "/leader"
/*
 * The cluster's identity, {"id": 32 hex digits, "created": unix ms},
 * written once by the first server to lead an empty store. Agents
 * remember it (docs/protocol.md): an agent of another cluster, or that
 * this store does not know, is refused instead of being handed an empty
 * desired set.
 */
#define HF_CLUSTER_KEY "/cluster"

/* An agent whose syncs are refused (cluster.c), for `node list`. */
struct hf_refused {
	char *node_id;
	char *reason;
	char *cluster;  /* the cluster the agent says it belongs to, or NULL */
	size_t live_tasks;
	int64_t last_seen;
};

struct hf_srv {
	pthread_mutex_t mu;
	pthread_cond_t changed; /* desired state or statuses changed */
	struct hf_store *store;
	struct hf_server_opts opts;
	uint64_t generation; /* the last generation given to any node's set */
	uint64_t status_seq; /* bumps whenever a status changes */
	int64_t next_wake_ms; /* earliest restart backoff to end (0: none) */
	bool stopping;
	struct {
		struct hf_service **items;
		size_t len, cap;
	} services;
	struct {
		struct hf_node **items;
		size_t len, cap;
	} nodes;
	struct hf_map node_index; /* id -> node */
	/*
	 * The scheduler runs a tick when tick_wanted (a report, an API call
	 * changed something) and publishes desired sets when desired_dirty.
	 */
	bool tick_wanted, desired_dirty;
	/*
	 * Writes of one tick or one agent sync go to the store together:
	 * while batching > 0 the records saved wait here (a record saved
	 * twice is written once) and hf_state_batch_end commits them.
	 */
	int batching;
	/*
	 * A batch is committed with mu let go (state.c's batch_flush), so
	 * that readers (GET handlers, metrics) never wait for the store:
	 * while committing, mutators wait on commit_done before they change
	 * anything (hf_state_lock), so the records in flight are exactly
	 * what memory holds and no agent is answered from a decision that
	 * is not yet written.
	 */
	bool committing;
	pthread_cond_t commit_done;
	struct {
		struct hf_batch_put *items;
		size_t len, cap;
	} batch;
	struct hf_map batch_index; /* key -> 1 + its position in batch */
	/*
	 * Whether every node's instance list (hf_node.insts) is current:
	 * cleared when an instance is placed, moved or removed, or a node or
	 * service comes or goes; hf_sched_publish rebuilds the lists.
	 */
	bool node_lists_valid;
	/* Placement scratch (sched.c): valid within one tick. */
	bool in_tick, usage_valid;
	struct hf_service *pc_svc; /* the pod type the scratch is for */
	char *pc_pod;
	struct {
		size_t *items; /* node index of each of its instances */
		size_t len, cap;
	} pc_placed;
	pthread_t sched;
	struct hf_http_server *http;
	int api_port;
	struct hf_events *events;
	/*
	 * Leadership: only the leader acts. Every write it makes is fenced on
	 * the leader key's revision, so a deposed leader's writes fail.
	 */
	bool leading;
	int64_t fence_rev;
	int64_t lease;
	char *leader_url; /* the current leader's, as far as we know */
	/*
	 * A store write failed (state.c): the memory is ahead of the store.
	 * store_error says why; on_store_failed (may be NULL) is called once,
	 * with mu held, to wake the main loop.
	 */
	bool store_failed;
	char *store_error;
	void (*on_store_failed)(struct hf_srv *s);
	int wake_fd; /* for on_store_failed (server.c) */
	/*
	 * The leader's term (server.c): its handlers run with it held for
	 * reading; becoming the leader and stepping down take it for
	 * writing, so no handler points into a state being replaced.
	 */
	pthread_rwlock_t term;
	struct hf_srv *view; /* what answers while not leading (server.c) */
	/*
	 * A follower's view (server.c): load_error, when set, is why the
	 * store could not be read (reads answer 503 with it); its
	 * store_error says why it cannot be written (writes answer 503).
	 */
	char *load_error;
	/* The cluster's id (HF_CLUSTER_KEY); NULL until loaded or made. */
	char *cluster_id;
	/* Agents refused (cluster.c) and nodes an operator adopted. */
	struct {
		struct hf_refused *items;
		size_t len, cap;
	} refused;
	struct hf_strlist adopted;
	/* Events of the open batch, emitted once its records are written. */
	struct {
		json_t **items;
		size_t len, cap;
	} held_events;
	/*
	 * Nodes' own credentials (nodeauth.c): digest -> node. Guarded by
	 * cred_mu alone, not mu: the HTTP layer asks on every agent request.
	 */
	pthread_mutex_t cred_mu;
	struct hf_map node_creds;
	/* metrics */
	uint64_t launches, restarts, failures;
	struct hf_api_metrics *api_metrics;
};

/* Whether a node's agent synced within the node timeout. */
bool hf_node_reachable(const struct hf_srv *s, const struct hf_node *n,
		       int64_t now);

/* Lookups. */
struct hf_service *hf_state_service(struct hf_srv *s, const char *name);
struct hf_config *hf_state_config(struct hf_service *svc, const char *id);
struct hf_config *hf_state_target(struct hf_service *svc);
struct hf_instance *hf_state_instance(struct hf_service *svc, const char *name);
struct hf_task_slot *hf_state_slot(struct hf_instance *in, const char *task);
struct hf_node *hf_state_node(struct hf_srv *s, const char *id);
struct hf_plan_run *hf_state_run(struct hf_service *svc, const char *plan);
/* Finds a task launch by id anywhere; returns the record or NULL. */
struct hf_task_rec *hf_state_find_task(struct hf_srv *s, const char *id,
				       struct hf_service **svc,
				       struct hf_instance **in,
				       struct hf_task_slot **slot);

/* Creation and freeing. */
struct hf_instance *hf_state_instance_add(struct hf_service *svc,
					  const char *pod, int64_t index);
/*
 * What is derived from where instances are (placement scratch, nodes'
 * instance lists) no longer holds: an instance was placed elsewhere or
 * removed, or a node or service came or went.
 */
void hf_state_moved(struct hf_srv *s);
/* Adds a node (allocated, with its id set) to the server's nodes. */
void hf_state_node_add(struct hf_srv *s, struct hf_node *n);
void hf_state_service_free(struct hf_service *svc);
void hf_state_node_free(struct hf_node *n);
void hf_task_rec_free(struct hf_task_rec *r);
void hf_plan_run_release(struct hf_plan_run *r);
/*
 * Parses a config (spec text, options, templates) into cfg->spec and
 * cfg->plans. Returns 0 or HF_ESPEC with reasons in diags.
 */
int hf_state_config_load(struct hf_config *cfg, struct hf_diags *diags);
void hf_state_config_free(struct hf_config *cfg);

/*
 * Batching: between begin and end (they nest) the hf_state_save_* below
 * only queue their record; the outermost end writes them all, in as few
 * fenced transactions as the store allows, before the caller lets go of
 * srv->mu. Nothing an agent or client can see depends on a queued record
 * before that. Removals write at once (after the queue).
 */
void hf_state_batch_begin(struct hf_srv *s);
void hf_state_batch_end(struct hf_srv *s);
/*
 * An operation's hold on the state: srv->mu and a batch around it, so
 * that every record one operation saves is committed together when it
 * lets go (a deploy's config and service record, an update's config,
 * service and plan run): a failed write leaves the store as it was before
 * the operation, never half of it. The HTTP handlers hold the state
 * through these; the operations (ops.c) take the same lock and batch.
 */
void hf_state_lock(struct hf_srv *s);
void hf_state_unlock(struct hf_srv *s);
/*
 * Marks the calling thread as a reader (a GET) or not: a reader's
 * hf_state_lock takes srv->mu alone, also while a batch is being
 * committed (it then sees what is being written, a moment before it is
 * durable), and the reader must change nothing. h_front sets it per
 * request.
 */
void hf_state_set_reader(bool reader);
/*
 * Waits, with srv->mu held, until no batch is being committed: what a
 * mutator that takes srv->mu directly (the scheduler's thread) does
 * before it changes anything.
 */
void hf_state_wait_commit(struct hf_srv *s);

/* Persistence: each writes one record, fail-stop on store errors. */
void hf_state_save_service(struct hf_srv *s, struct hf_service *svc);
void hf_state_save_config(struct hf_srv *s, struct hf_service *svc,
			  struct hf_config *cfg);
void hf_state_save_instance(struct hf_srv *s, struct hf_service *svc,
			    struct hf_instance *in);
void hf_state_save_run(struct hf_srv *s, struct hf_service *svc,
		       struct hf_plan_run *run);
void hf_state_save_node(struct hf_srv *s, struct hf_node *n);
/* Writes the cluster's record: s->cluster_id, created at created (ms). */
void hf_state_save_cluster(struct hf_srv *s, int64_t created);
/*
 * Whether a store write failed since this state was loaded: then nothing
 * in it may be handed out (see the top of this file).
 */
bool hf_state_failed(const struct hf_srv *s);
/* Deletes an instance's record and frees it (it must be in svc). */
void hf_state_remove_instance(struct hf_srv *s, struct hf_service *svc,
			      struct hf_instance *in);
/* Deletes every record of a service in one transaction. */
void hf_state_delete_service(struct hf_srv *s, struct hf_service *svc);
/*
 * Loads everything from the store (into an empty state), checking every
 * record. Returns 0, or an error with *err (the caller frees it) naming
 * the damaged record or why the store could not be read, and the state
 * left empty.
 */
int hf_state_load(struct hf_srv *s, char **err);

/* Serialisation shared with the API. */
json_t *hf_task_rec_to_json(const struct hf_task_rec *r);
json_t *hf_instance_to_json(const struct hf_instance *in);

/* A new random id (32 hex digits). The caller frees it. */
char *hf_new_uuid(void);
/* Store keys escape '/' in names. The caller frees the result. */
char *hf_state_key(const char *fmt, const char *a, const char *b);

#endif
