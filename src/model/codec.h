/*
 * codec.h - the records' encoding in the store: keys and JSON documents,
 * one per service, config, pod instance, plan run, node and replicated
 * volume. Pure (JSON in memory only): the server reads and writes the
 * store; this says what the bytes mean.
 *
 * Keys:
 *   /services/<svc>                     service record
 *   /services/<svc>/configs/<id>        spec text, options, templates,
 *                                       counts set over the spec's
 *   /services/<svc>/instances/<pod-i>   pod instance with its task launches
 *   /services/<svc>/runs/<plan>         plan run and its overrides
 *   /nodes/<id>                         node record, with the volumes on
 *                                       the node no instance owns (kept,
 *                                       being deleted)
 *   /volumes/<name>                     a replicated volume (struct
 *                                       hf_xvol) with its replicas: one
 *                                       key per volume, so an epoch bump
 *                                       or an in-sync change is one small
 *                                       write
 * The node-local (ROOT, MOUNT) volumes have no key of their own (they
 * travel in node records or derive from instances), so "/volumes/" holds
 * replicated volumes only.
 * Names are escaped ('/' and '%' as %2F, %25) so a service "a/b" stays one
 * path segment.
 *
 * Decoding checks every record: a record that is not valid JSON, lacks a
 * field it needs, has a field of the wrong type or a name its key
 * contradicts, or a service whose target config is missing, fails the
 * load with a message naming the key. A damaged store is never read as a
 * smaller one.
 */
#ifndef HF_MODEL_CODEC_H
#define HF_MODEL_CODEC_H

#include <jansson.h>

#include "model/model.h"

/* A record as read from the store: its key and its value's bytes. */
struct hf_codec_rec {
	const char *key;
	const char *value;
	size_t len;
};

/* fmt holds up to two "%s", each replaced by an escaped name; caller frees. */
char *hf_codec_key(const char *fmt, const char *a, const char *b);

/* Encoding: each returns a new JSON document (the caller owns it). */
json_t *hf_codec_service(const struct hf_service *svc);
json_t *hf_codec_config(const struct hf_config *cfg);
/*
 * A list of strings as a JSON object, and back (values that are not
 * strings, or an o that is not an object, add nothing).
 */
json_t *hf_codec_kv_json(const struct hf_kvlist *l);
void hf_codec_kv_from_json(struct hf_kvlist *l, const json_t *o);
json_t *hf_codec_run(const struct hf_plan_run *run);
/* Node n's record, with its KEPT and DELETING volumes from m. */
json_t *hf_codec_node(const struct hf_model *m, const struct hf_node *n);
/* A node's pool as its record holds it (also /v1/nodes' "storage"). */
json_t *hf_codec_node_storage(const struct hf_node_storage *st);
/*
 * An instance's record: its stage by name ("state", "drain"). A record
 * written before the lifecycle table has its stage as flags ("replacing",
 * "decom", "drain_failed" ...): it loads into the same stage.
 */
json_t *hf_codec_instance(const struct hf_instance *in);
/*
 * What the API shows of an instance (GET .../pod/{pod}/info): the record
 * with its stage as those flags, as the API has always shown it.
 */
json_t *hf_instance_to_json(const struct hf_instance *in);
/* A task launch, in the record and the API alike. */
json_t *hf_task_rec_to_json(const struct hf_task_rec *r);

/* The store's prefix of replicated volumes' keys ("/volumes/<name>"). */
#define HF_CODEC_XVOL_PREFIX "/volumes/"
/*
 * A replicated volume's record, with its secret: for the store only,
 * never for the API, events or logs.
 */
json_t *hf_codec_xvol(const struct hf_xvol *v);
/*
 * What the API shows of a replicated volume: the record without its
 * secret (this function never reads it), plus how many replicas are in
 * sync, whether it runs degraded (fewer in sync than repl) and each
 * resyncing replica's percent done.
 */
json_t *hf_xvol_to_json(const struct hf_xvol *v);

/*
 * Decoding into an empty model: the node records ("/nodes/..."), then
 * every record under "/services/". Returns 0, or HF_EINVAL with *err (the
 * caller frees it) naming the damaged record; the model then holds what
 * was read so far, for the caller to release. warnings (may be NULL) gets
 * a line for each stored config that no longer loads but is not a target
 * (kept, unused).
 */
int hf_codec_load_nodes(struct hf_model *m, const struct hf_codec_rec *recs,
			size_t n, char **err);
int hf_codec_load_services(struct hf_model *m,
			   const struct hf_codec_rec *recs, size_t n,
			   struct hf_strlist *warnings, char **err);
/*
 * The replicated volumes (every record under HF_CODEC_XVOL_PREFIX), after
 * the nodes: a volume whose replica or attachment names a node the model
 * does not hold is damaged (nodes are never removed), as is one whose
 * fields contradict each other (an attachment at epoch 0, an ACTIVE
 * volume without an instance, two live replicas on one node, ...).
 * Returns 0, or HF_EINVAL with *err (the caller frees it) naming the
 * record; the model then holds what was read so far.
 */
int hf_codec_load_xvols(struct hf_model *m, const struct hf_codec_rec *recs,
			size_t n, char **err);
/*
 * After both: the IN_USE volume record of every placed instance (they are
 * derived from the instances, not stored).
 */
void hf_codec_derive_volumes(struct hf_model *m);
/*
 * The cluster record (server/state.h's HF_CLUSTER_KEY): its id in *id
 * (the caller frees it). Returns 0 or HF_EINVAL with *err.
 */
int hf_codec_load_cluster(const struct hf_codec_rec *rec, char **id,
			  char **err);

#endif
