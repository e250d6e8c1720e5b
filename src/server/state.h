/*
 * state.h - the server's view of the cluster: its model of the records
 * (model/model.h: services, their configs and plan runs, pod instances
 * with their tasks' launches, nodes and volumes), what only the server
 * knows besides, and the records' way to and from the store. Internal to
 * the server; the records change through server/apply.c.
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
 * Loading checks every record (model/codec.c): a record that is not valid JSON, lacks a
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
#include "model/codec.h"
#include "model/model.h"
#include "proto/proto.h"
#include "plan/decide-t.h"
#include "plan/plan.h"
#include "server/server.h"
#include "spec/spec.h"
#include "store/store.h"
#include "task/lifecycle.h"

/*
 * The records (services, configs, plan runs, instances, task launches,
 * nodes and volumes) are the model's (model/model-t.h); the server keeps
 * one model in srv->model. What only the server knows of a node - its
 * agent's connection - hangs off the node as its link.
 */
/* A task's last full report from its agent, and the seq of its sync. */
struct hf_link_report {
	struct hf_proto_report rep;
	double seq;
};

struct hf_node_link {
	char *api;     /* the agent's own API (logs, exec), from its info */
	char *api_key; /* its bearer token; memory only */
	int64_t saved_seen; /* last_seen as last written to the store */
	int64_t agent_started_at;
	double last_report_seq; /* the newest sync's "seq" */
	/*
	 * Each task's last full report (struct hf_link_report), by task id:
	 * what a sync's "same" ids stand for (docs/protocol.md).
	 */
	struct hf_map reports;
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
};

/*
 * A write waiting in the open batch (hf_state_batch_begin). A plan run's
 * record is encoded once, when the batch is written (value NULL until
 * then, svc and plan name it): a tick that starts a thousand steps changes
 * the run a thousand times, and encoding all its steps each time would
 * cost the square of the plan's size.
 */
struct hf_batch_put {
	char *key;
	char *value;
	size_t len;
	char *svc, *plan;
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
	/*
	 * Names this server's memory of the agents' reports (the nodes'
	 * links): new at every start of leading, so an agent never lists a
	 * task as "same" to a server that did not see its report.
	 */
	char reports_epoch[33];
	uint64_t status_seq; /* bumps whenever a status changes */
	int64_t next_wake_ms; /* earliest restart backoff to end (0: none) */
	bool stopping;
	/* The cluster's records; changed only by server/apply.c. */
	struct hf_model model;
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
	/*
	 * What the scheduler's rules read besides the model (plan/decide.h):
	 * placement's per-tick scratch, the random source of task ids and
	 * backoff jitter (seeded from the system's at start), the settings.
	 */
	struct hf_place_cache place;
	struct hf_rng rng;
	struct hf_decide_opts decide_opts;
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
	/* Log lines of the open batch's decisions (apply.c), likewise. */
	struct hf_strlist held_logs;
	/*
	 * Nodes' own credentials (nodeauth.c): digest -> node. Guarded by
	 * cred_mu alone, not mu: the HTTP layer asks on every agent request.
	 */
	pthread_mutex_t cred_mu;
	struct hf_map node_creds;
	bool creds_loaded; /* once: an unknown token is then unknown */
	/* metrics */
	uint64_t launches, restarts, failures;
	struct hf_api_metrics *api_metrics;
};

/* Whether a node's agent synced within the node timeout. */
bool hf_node_reachable(const struct hf_srv *s, const struct hf_node *n,
		       int64_t now);

/* Lookups. */
struct hf_service *hf_state_service(struct hf_srv *s, const char *name);
/* Drops the open batch unwritten (the server steps down or stops). */
void hf_state_batch_discard(struct hf_srv *s);
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
/* Frees a node and its link (the node must no longer be in the model). */
void hf_state_node_free(struct hf_node *n);
/* Frees every record of the state (and its cluster id): it is empty. */
void hf_state_release(struct hf_srv *s);
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
/* Writes a replicated volume's record, /volumes/<name>. */
void hf_state_save_xvol(struct hf_srv *s, struct hf_xvol *v);
/* Deletes a replicated volume's record and frees it (it must be in s). */
void hf_state_remove_xvol(struct hf_srv *s, struct hf_xvol *v);

/*
 * Records the model does not hold (credentials): written at once, after
 * what was saved before, under the leader's fence; read from the store.
 * put and delete return 0 or an HF_E* code (HF_EUNAVAIL while the store
 * refuses writes); get returns HF_ENOTFOUND for none, and *out (a new
 * reference) otherwise; list fills *out with a JSON array of the values
 * under prefix. Lock held for put and delete.
 */
int hf_state_put_record(struct hf_srv *s, const char *key, json_t *j);
/*
 * Where svc's advertised port `port` answers: "ip:port" of each instance
 * its target spec counts (addrs) and "hostname:port" where the node has a
 * host name (dns). Lock held.
 */
void hf_state_endpoint(struct hf_srv *s, struct hf_service *svc,
		       const char *port, struct hf_strlist *addrs,
		       struct hf_strlist *dns);
int hf_state_delete_record(struct hf_srv *s, const char *key);
int hf_state_get_record(struct hf_srv *s, const char *key, json_t **out);
int hf_state_list_records(struct hf_srv *s, const char *prefix,
			  json_t **out);
/*
 * The records under prefix as show() makes each (a new reference: what
 * an API answer may hold), in *out. Takes the lock itself. 0 or
 * HF_EUNAVAIL (*out NULL).
 */
int hf_state_list_shown(struct hf_srv *s, const char *prefix,
			json_t *(*show)(const json_t *rec), json_t **out);
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

/* A new random id (32 hex digits). The caller frees it. */
char *hf_new_uuid(void);
/* Store keys escape '/' in names. The caller frees the result. */
char *hf_state_key(const char *fmt, const char *a, const char *b);

#endif
