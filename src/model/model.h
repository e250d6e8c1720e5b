/*
 * model.h - the cluster's records (model-t.h): names, lookups, creation,
 * freeing and the model's indexes (services by name, nodes by id,
 * instances by name, volumes by key, replicated volumes by name). Pure:
 * no I/O, no clock, no locks, no prints; allocation failure aborts
 * (common/util.h). Who may change a record is the caller's rule: in the
 * server, server/apply.c only.
 */
#ifndef HF_MODEL_MODEL_H
#define HF_MODEL_MODEL_H

#include "model/model-t.h"

/* Status and state names, as records and the API spell them. */
const char *hf_status_name(enum hf_status s);
bool hf_status_parse(const char *s, enum hf_status *out);
/* Task states and their names: task/lifecycle.h. */
/* "in use", "kept", "deleting". */
const char *hf_volume_state_name(enum hf_volume_state s);

/*
 * Lookups. They return records owned by the model (NULL when absent);
 * the const ones take a const model but hand out records a caller that
 * may change the model can change.
 */
struct hf_service *hf_model_service(const struct hf_model *m,
				    const char *name);
struct hf_config *hf_model_config(const struct hf_service *svc,
				  const char *id);
/* The service's target config. */
struct hf_config *hf_model_target(const struct hf_service *svc);
struct hf_instance *hf_model_instance(const struct hf_service *svc,
				      const char *name);
/* The slot of a task in an instance, or NULL (it never adds one). */
struct hf_task_slot *hf_model_slot_find(const struct hf_instance *in,
					const char *task);
struct hf_node *hf_model_node(const struct hf_model *m, const char *id);
struct hf_plan_run *hf_model_run(const struct hf_service *svc,
				 const char *plan);
/* A pod of a config's spec (NULL for a config that does not load). */
const struct hf_spec_pod *hf_model_pod(const struct hf_config *cfg,
				       const char *pod);
/*
 * Whether an instance has volumes on its node: its pod (in the target, or
 * the newest config that still has it) declares pod-level volumes or a
 * resource set with volumes. Without, nothing is kept or deleted for it.
 */
bool hf_model_instance_has_volumes(const struct hf_service *svc,
				   const struct hf_instance *in);
/*
 * Finds a task launch by id anywhere (the current launch of its slot
 * only); fills the out-parameters that are not NULL.
 */
struct hf_task_rec *hf_model_find_task(const struct hf_model *m,
				       const char *id, struct hf_service **svc,
				       struct hf_instance **in,
				       struct hf_task_slot **slot);
/* Whether a node's agent synced within timeout_ms of now. */
bool hf_model_node_reachable(const struct hf_node *n, int64_t now,
			     int64_t timeout_ms);
/* "<pod>-<index>"; the caller frees it. */
char *hf_model_instance_name(const char *pod, int64_t index);
/*
 * The instances placed on node `id`, appended to out (a scan of every
 * instance; the caller releases out).
 */
void hf_model_node_insts(const struct hf_model *m, const char *id,
			 struct hf_node_insts *out);

/*
 * Volumes. A volume key is "<svc>/<pod-i>", each part escaped with
 * hf_name_escape so no service's keys lie inside another's (service
 * "a/p-0" is "a%2Fp-0", not inside service "a"'s instance p-0); its spec
 * volumes' keys are "<this>/<owner>/<volume>". The caller frees it.
 */
char *hf_model_volume_key(const char *svc, const char *instance);
/*
 * Whether a key belongs to service svc (and instance, when not NULL),
 * given by their plain names.
 */
bool hf_model_volume_of(const char *key, const char *svc,
			const char *instance);
/* The volume of that key on that node in that state, or NULL. */
struct hf_volume *hf_model_volume_find(const struct hf_model *m,
				       const char *key, const char *node,
				       enum hf_volume_state state);
/* The volumes of a key, newest first through v->next_same_key, or NULL. */
struct hf_volume *hf_model_volumes_of_key(const struct hf_model *m,
					  const char *key);
/*
 * Adds a volume record (key, node copied; its service and instance names
 * are read from the key) and returns it for the caller to fill in.
 */
struct hf_volume *hf_model_volume_add(struct hf_model *m, const char *key,
				      const char *node,
				      enum hf_volume_state state);
/*
 * Sets a volume's kind and size from its instance's pod spec (its pod's
 * and resource sets' volumes); a NULL pod leaves them unknown.
 */
void hf_model_volume_describe(struct hf_volume *v,
			      const struct hf_spec_pod *pod);
/* Removes a volume record and frees it. */
void hf_model_volume_remove(struct hf_model *m, struct hf_volume *v);

/*
 * Replicated volumes (model-t.h's struct hf_xvol). State names as records
 * and the API spell them: "active", "kept", "deleting"; a replica's
 * "new", "in_sync", "resyncing", "down", "stale", "deleting". A parse
 * returns false for any other text and leaves *out alone.
 */
const char *hf_xvol_state_name(enum hf_xvol_state s);
bool hf_xvol_state_parse(const char *s, enum hf_xvol_state *out);
const char *hf_xrep_state_name(enum hf_xrep_state s);
bool hf_xrep_state_parse(const char *s, enum hf_xrep_state *out);
/* Snapshots: "taking", "ready", "failed", "deleting". */
const char *hf_xsnap_state_name(enum hf_xsnap_state s);
bool hf_xsnap_state_parse(const char *s, enum hf_xsnap_state *out);
/* v's snapshot of that name (or, by_id, that id), or NULL. */
struct hf_xsnap *hf_xvol_snap(const struct hf_xvol *v, const char *key,
			      bool by_id);
/* A new snapshot record at v's end (strings copied). */
struct hf_xsnap *hf_xvol_snap_add(struct hf_xvol *v, const char *id,
				  const char *name, int64_t created);
/* Removes v's snapshot s (a pointer into v->snaps). */
void hf_xvol_snap_remove(struct hf_xvol *v, struct hf_xsnap *s);
/*
 * Whether a name can name a replicated volume: not empty, at most
 * HF_XVOL_NAME_MAX bytes, not "." or "..", no '/' and no control
 * character, since it names a directory on the nodes that serve it
 * (the SDK's names write '/' as "__": hf_spec_external_volume_name).
 */
#define HF_XVOL_NAME_MAX 255
bool hf_xvol_name_ok(const char *name);
/* A snapshot's name: 1-64 letters, digits, '-', '_' or '.', not "." or "..". */
bool hf_xsnap_name_ok(const char *name);
/* The volume of that name, or NULL. */
struct hf_xvol *hf_model_xvol(const struct hf_model *m, const char *name);
/*
 * The volumes that name instance `instance` of service `svc` (ACTIVE
 * ones, and DELETING ones that still name it; a KEPT volume names none),
 * appended to out in the model's order (a scan of every volume; the
 * caller releases out with HF_VEC_FREE).
 */
void hf_model_xvols_of_instance(const struct hf_model *m, const char *svc,
				const char *instance, struct hf_xvols *out);
/*
 * The replicas on node `node`, whatever their state, each with its
 * volume, appended to out (the caller releases it with HF_VEC_FREE).
 */
void hf_model_node_replicas(const struct hf_model *m, const char *node,
			    struct hf_xrep_refs *out);
/* A volume's replica with that id, or NULL. */
struct hf_xrep *hf_xvol_replica(const struct hf_xvol *v, const char *id);
/*
 * The volume's replica on that node that is not DELETING (there is at
 * most one: never two live replicas of a volume on one node), or NULL.
 */
struct hf_xrep *hf_xvol_replica_on(const struct hf_xvol *v,
				   const char *node);
/* How many of the volume's replicas are IN_SYNC. */
unsigned hf_xvol_in_sync(const struct hf_xvol *v);
/*
 * Adds a replica (node and id copied), NEW since `since`, and returns it
 * for the caller to fill in. The pointer is valid until the next replica
 * is added or removed.
 */
struct hf_xrep *hf_xvol_replica_add(struct hf_xvol *v, const char *node,
				    const char *id, int64_t since);
/* Removes a replica of the volume and frees its fields. */
void hf_xvol_replica_remove(struct hf_xvol *v, struct hf_xrep *r);
/*
 * Adds a volume record named `name` (copied), ACTIVE, with nothing else
 * set, and returns it for the caller to fill in. The model must hold no
 * volume of that name (hf_model_xvol): names are cluster-global.
 */
struct hf_xvol *hf_model_xvol_add(struct hf_model *m, const char *name);
/* Removes a volume record from the model and frees it. */
void hf_model_xvol_remove(struct hf_model *m, struct hf_xvol *v);
/* Frees a volume's backup under way, or schedule, and zeroes it. */
void hf_xbk_run_release(struct hf_xbk_run *r);
void hf_xbk_sched_release(struct hf_xbk_sched *sc);
/* Frees a volume record that is in no model (NULL: nothing). */
void hf_xvol_free(struct hf_xvol *v);

/* Creation. */
struct hf_service *hf_model_service_add(struct hf_model *m, const char *name);
/* Adds a service allocated (and named) by the caller; the model owns it. */
void hf_model_service_insert(struct hf_model *m, struct hf_service *svc);
struct hf_instance *hf_model_instance_add(struct hf_service *svc,
					  const char *pod, int64_t index);
/* The slot of a task in an instance, added (empty) when it has none. */
struct hf_task_slot *hf_model_slot(struct hf_instance *in, const char *task);
/* Adds a node (allocated, with its id set); sets n->idx. */
void hf_model_node_add(struct hf_model *m, struct hf_node *n);

/*
 * Removal and freeing. hf_model_instance_remove and
 * hf_model_service_remove unlink the record and free it; a service goes
 * with its configs, runs and instances. Nodes are never removed, and
 * their link (n->link) is the server's to free before the node goes.
 */
void hf_model_instance_remove(struct hf_service *svc, struct hf_instance *in);
void hf_model_service_remove(struct hf_model *m, struct hf_service *svc);
void hf_model_release(struct hf_model *m);
void hf_model_service_free(struct hf_service *svc);
void hf_model_node_free(struct hf_node *n);
/* Forgets a node's volume reports (model-t.h's hf_node_volrep). */
void hf_model_node_volreps_clear(struct hf_node *n);
/* The node's latest report of that volume, or NULL (n may be NULL). */
const struct hf_node_volrep *hf_model_node_volrep(const struct hf_node *n,
						  const char *volume);
/* Frees a pool record (NULL is fine). */
void hf_model_node_storage_free(struct hf_node_storage *st);
void hf_model_instance_free(struct hf_instance *in);
void hf_task_rec_free(struct hf_task_rec *r);
void hf_plan_run_release(struct hf_plan_run *r);
void hf_model_config_free(struct hf_config *cfg);

/*
 * Parses a config (spec text, options, templates, with its counts set
 * over the spec's) into cfg->spec, cfg->plans and cfg->fingerprints.
 * stored: a config read back from the store, which this or an older
 * holdfast accepted, so checks added since only warn (hf_spec_load_opts).
 * Returns 0 or HF_ESPEC with reasons in diags.
 */
int hf_model_config_load(struct hf_config *cfg, bool stored,
			 struct hf_diags *diags);

#endif
