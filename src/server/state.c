/*
 * state.c - the server's state: its model's records in the store (the
 * encoding is model/codec.c's), written in batches, and loaded back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "plan/decide.h"
#include "server/events.h"
#include "server/creds.h"
#include "server/state.h"
#include "volume/crypt.h"

char *hf_new_uuid(void)
{
	return hf_random_hex(16);
}

char *hf_state_key(const char *fmt, const char *a, const char *b)
{
	return hf_codec_key(fmt, a, b);
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

struct hf_service *hf_state_service(struct hf_srv *s, const char *name)
{
	return hf_model_service(&s->model, name);
}

struct hf_config *hf_state_config(struct hf_service *svc, const char *id)
{
	return hf_model_config(svc, id);
}

struct hf_config *hf_state_target(struct hf_service *svc)
{
	return hf_model_target(svc);
}

struct hf_instance *hf_state_instance(struct hf_service *svc, const char *name)
{
	return hf_model_instance(svc, name);
}

struct hf_task_slot *hf_state_slot(struct hf_instance *in, const char *task)
{
	return hf_model_slot(in, task);
}

bool hf_node_reachable(const struct hf_srv *s, const struct hf_node *n,
		       int64_t now)
{
	return hf_model_node_reachable(n, now,
				       (int64_t)(s->opts.node_timeout * 1000));
}

struct hf_node *hf_state_node(struct hf_srv *s, const char *id)
{
	return hf_model_node(&s->model, id);
}

void hf_state_moved(struct hf_srv *s)
{
	hf_place_cache_stale(&s->place);
	s->node_lists_valid = false;
}

static void link_free(struct hf_node_link *l)
{
	free(l->api);
	free(l->api_key);
	HF_VEC_FREE(&l->insts);
	for (size_t i = 0; i < l->reports.cap; i++) {
		struct hf_link_report *k = l->reports.slots[i].value;

		if (l->reports.slots[i].key && k) {
			hf_proto_report_release(&k->rep);
			free(k);
		}
	}
	hf_map_release(&l->reports);
	free(l);
}

/* A node's link: its agent's connection, which only the server knows. */
static void node_link(struct hf_srv *s, struct hf_node *n)
{
	if (n->link)
		return;
	n->link = hf_xcalloc(1, sizeof(*n->link));
	/* A fresh generation: never one an agent saw from another server. */
	n->link->gen = ++s->generation;
}

void hf_state_node_add(struct hf_srv *s, struct hf_node *n)
{
	hf_model_node_add(&s->model, n);
	node_link(s, n);
	hf_state_moved(s); /* nothing derived knows the new node yet */
}

struct hf_plan_run *hf_state_run(struct hf_service *svc, const char *plan)
{
	return hf_model_run(svc, plan);
}

struct hf_task_rec *hf_state_find_task(struct hf_srv *s, const char *id,
				       struct hf_service **svc_out,
				       struct hf_instance **in_out,
				       struct hf_task_slot **slot_out)
{
	return hf_model_find_task(&s->model, id, svc_out, in_out, slot_out);
}

struct hf_instance *hf_state_instance_add(struct hf_service *svc,
					  const char *pod, int64_t index)
{
	return hf_model_instance_add(svc, pod, index);
}

/* ------------------------------------------------------------------ */
/* Freeing                                                              */

void hf_state_config_free(struct hf_config *cfg)
{
	hf_model_config_free(cfg);
}

void hf_state_service_free(struct hf_service *svc)
{
	hf_model_service_free(svc);
}

void hf_state_node_free(struct hf_node *n)
{
	if (!n)
		return;
	if (n->link) {
		link_free(n->link);
		n->link = NULL;
	}
	hf_model_node_free(n);
}

void hf_state_release(struct hf_srv *s)
{
	for (size_t i = 0; i < s->model.nodes.len; i++) {
		struct hf_node *n = s->model.nodes.items[i];

		if (n->link) {
			link_free(n->link);
			n->link = NULL;
		}
	}
	hf_model_release(&s->model);
	memset(&s->model, 0, sizeof(s->model));
	free(s->cluster_id);
	s->cluster_id = NULL;
	hf_state_moved(s);
}

int hf_state_config_load(struct hf_config *cfg, struct hf_diags *diags)
{
	return hf_model_config_load(cfg, false, diags);
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

/*
 * A store write failed: what this server holds in memory is now ahead of
 * what the store has, and must not be acted on. With etcd the server exits
 * (another server takes over, or a supervisor restarts this one). With a
 * single-process store (SQLite) there is no other server: it stops acting
 * at once - the writes that follow are dropped, no answer built from its
 * memory goes out, no event is emitted - and its main loop steps down,
 * discards that memory, answers reads from the store and refuses writes
 * until the store takes writes again; then it loads what the store holds
 * and leads again (server.c).
 */
static void store_failed(struct hf_srv *s, const char *what, int err)
{
	bool shared = strcmp(hf_store_backend_name(s->store), "etcd") == 0;

	if (s->store_failed)
		return;
	if (err == HF_ECONFLICT && s->fence_rev > 0 && shared) {
		hf_log("store write refused (%s): another server leads now; "
		       "this one stops acting and exits",
		       what);
		_exit(1);
	}
	if (shared) {
		hf_log("store write failed (%s): %s: %s; stopping so a restart "
		       "reloads consistent state",
		       what, hf_err_msg(err), hf_store_last_error(s->store));
		_exit(1);
	}
	s->store_failed = true;
	free(s->store_error);
	s->store_error = hf_xasprintf("%s", hf_store_last_error(s->store));
	if (!*s->store_error) {
		free(s->store_error);
		s->store_error = hf_xstrdup(hf_err_msg(err));
	}
	hf_log("store write failed (%s): %s; this server stops acting on what "
	       "it holds in memory, answers reads from the store and refuses "
	       "writes until the store takes them again",
	       what, s->store_error);
	if (s->on_store_failed)
		s->on_store_failed(s);
}

bool hf_state_failed(const struct hf_srv *s)
{
	return s->store_failed;
}

/* Every write is fenced: it only applies while we still hold the lead. */
static void fence(struct hf_srv *s, struct hf_store_txn *txn)
{
	if (s->fence_rev > 0)
		hf_store_txn_cmp_mod_rev(txn, HF_LEADER_KEY, s->fence_rev);
}

/*
 * Operations per transaction when a batch is written: the backend's bound
 * (etcd's), or all of them in one (the embedded store: one commit, one
 * flush to disk, and the batch lands whole or not at all).
 */
static size_t batch_txn_ops(struct hf_srv *s)
{
	size_t max = hf_store_txn_ops_max(s->store);

	return max ? max : SIZE_MAX;
}

/*
 * Writes the open batch. With `let_go`, srv->mu is let go while the store
 * commits (readers go on; mutators wait for commit_done), which the
 * outermost hf_state_batch_end does once the caller has finished
 * changing memory; a removal flushing what came before it keeps the lock.
 */
void hf_state_batch_discard(struct hf_srv *s)
{
	for (size_t i = 0; i < s->batch.len; i++) {
		free(s->batch.items[i].key);
		free(s->batch.items[i].value);
		free(s->batch.items[i].svc);
		free(s->batch.items[i].plan);
	}
	s->batch.len = 0;
	hf_map_clear(&s->batch_index);
}

static char *run_text(const struct hf_plan_run *run)
{
	json_t *j = hf_codec_run(run);
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	return text;
}

/*
 * Encodes the runs the batch holds by name, as they are now. A run whose
 * service is gone is dropped: removing a service deletes its records.
 */
static void batch_encode_runs(struct hf_srv *s)
{
	size_t j = 0;

	for (size_t i = 0; i < s->batch.len; i++) {
		struct hf_batch_put *p = &s->batch.items[i];

		if (p->plan) {
			const struct hf_service *svc =
			    hf_model_service(&s->model, p->svc);
			const struct hf_plan_run *run =
			    svc ? hf_model_run(svc, p->plan) : NULL;

			free(p->svc);
			free(p->plan);
			p->svc = p->plan = NULL;
			if (!run) {
				free(p->key);
				continue;
			}
			p->value = run_text(run);
			p->len = strlen(p->value);
		}
		s->batch.items[j++] = *p;
	}
	s->batch.len = j;
	/* Positions moved; nothing is added to this batch from here on. */
	hf_map_clear(&s->batch_index);
}

static void batch_flush(struct hf_srv *s, bool let_go)
{
	struct hf_store_txn *txns = NULL;
	size_t *firsts = NULL, ntxn = 0, i = 0;
	const char *failed_key = NULL;
	int err = 0;

	batch_encode_runs(s);
	if (s->batch.len && !s->store_failed) {
		size_t per = batch_txn_ops(s);

		/* Built under the lock: the fence reads the leadership. */
		ntxn = s->batch.len / per + (s->batch.len % per != 0);
		txns = hf_xcalloc(ntxn, sizeof(*txns));
		firsts = hf_xcalloc(ntxn, sizeof(*firsts));
		for (size_t t = 0; t < ntxn; t++) {
			size_t first = i;

			hf_store_txn_init(&txns[t]);
			firsts[t] = first;
			fence(s, &txns[t]);
			for (; i < s->batch.len && i - first < per; i++)
				hf_store_txn_put(&txns[t], s->batch.items[i].key,
						 s->batch.items[i].value,
						 s->batch.items[i].len);
		}
		if (let_go) {
			s->committing = true;
			pthread_mutex_unlock(&s->mu);
		}
		for (size_t t = 0; t < ntxn && !err; t++) {
			err = hf_store_txn(s->store, &txns[t], NULL);
			if (err)
				failed_key = s->batch.items[firsts[t]].key;
		}
		if (let_go) {
			pthread_mutex_lock(&s->mu);
			s->committing = false;
			pthread_cond_broadcast(&s->commit_done);
		}
		if (err)
			store_failed(s, failed_key, err);
		for (size_t t = 0; t < ntxn; t++)
			hf_store_txn_release(&txns[t]);
		free(txns);
		free(firsts);
	}
	/* The batch's events and log lines follow its records out, or go. */
	hf_events_release_held(s, !s->store_failed);
	for (i = 0; !s->store_failed && i < s->held_logs.len; i++)
		hf_log("%s", s->held_logs.items[i]);
	hf_strlist_release(&s->held_logs);
	hf_state_batch_discard(s);
}

void hf_state_batch_begin(struct hf_srv *s)
{
	s->batching++;
}

void hf_state_batch_end(struct hf_srv *s)
{
	if (s->batching > 0 && --s->batching == 0)
		batch_flush(s, true);
}

static __thread bool tl_reader;

void hf_state_set_reader(bool reader)
{
	tl_reader = reader;
}

void hf_state_wait_commit(struct hf_srv *s)
{
	while (s->committing)
		pthread_cond_wait(&s->commit_done, &s->mu);
}

void hf_state_lock(struct hf_srv *s)
{
	pthread_mutex_lock(&s->mu);
	if (tl_reader)
		return;
	hf_state_wait_commit(s);
	hf_state_batch_begin(s);
}

void hf_state_unlock(struct hf_srv *s)
{
	if (!tl_reader)
		hf_state_batch_end(s);
	pthread_mutex_unlock(&s->mu);
}

/* The open batch's entry for key, new (all NULL but the key) or not. */
static struct hf_batch_put *batch_entry(struct hf_srv *s, const char *key)
{
	uintptr_t at = (uintptr_t)hf_map_get(&s->batch_index, key);
	struct hf_batch_put *p;

	if (at) {
		p = &s->batch.items[at - 1];
		free(p->value);
		p->value = NULL;
		return p;
	}
	p = HF_VEC_PUSH(&s->batch);
	memset(p, 0, sizeof(*p));
	p->key = hf_xstrdup(key);
	hf_map_put(&s->batch_index, p->key, (void *)(uintptr_t)s->batch.len);
	return p;
}

/* Queues key = text (owned) in the open batch. */
static void batch_put(struct hf_srv *s, const char *key, char *text)
{
	struct hf_batch_put *p = batch_entry(s, key);

	free(p->svc);
	free(p->plan);
	p->svc = p->plan = NULL;
	p->value = text;
	p->len = strlen(text);
}

static void put_json(struct hf_srv *s, const char *key, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	int err;

	json_decref(j);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	if (s->batching) {
		batch_put(s, key, text);
		return;
	}
	if (s->store_failed) {
		free(text);
		return;
	}
	fence(s, &txn);
	hf_store_txn_put(&txn, key, text, strlen(text));
	err = hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	free(text);
	if (err)
		store_failed(s, key, err);
}

void hf_state_save_service(struct hf_srv *s, struct hf_service *svc)
{
	char *key = hf_state_key("/services/%s", svc->name, NULL);

	put_json(s, key, hf_codec_service(svc));
	free(key);
}

void hf_state_save_config(struct hf_srv *s, struct hf_service *svc,
			  struct hf_config *cfg)
{
	char *key = hf_state_key("/services/%s/configs/%s", svc->name, cfg->id);

	put_json(s, key, hf_codec_config(cfg));
	free(key);
}

void hf_state_save_instance(struct hf_srv *s, struct hf_service *svc,
			    struct hf_instance *in)
{
	char *key =
	    hf_state_key("/services/%s/instances/%s", svc->name, in->name);

	put_json(s, key, hf_codec_instance(in));
	free(key);
}

void hf_state_save_run(struct hf_srv *s, struct hf_service *svc,
		       struct hf_plan_run *run)
{
	char *key = hf_state_key("/services/%s/runs/%s", svc->name, run->plan);

	if (s->batching) {
		struct hf_batch_put *p = batch_entry(s, key);

		if (!p->plan) {
			p->svc = hf_xstrdup(svc->name);
			p->plan = hf_xstrdup(run->plan);
		}
	} else {
		put_json(s, key, hf_codec_run(run));
	}
	free(key);
}

void hf_state_save_node(struct hf_srv *s, struct hf_node *n)
{
	char *key = hf_state_key("/nodes/%s", n->id, NULL);

	put_json(s, key, hf_codec_node(&s->model, n));
	free(key);
}

void hf_state_save_xvol(struct hf_srv *s, struct hf_xvol *v)
{
	char *key = hf_state_key(HF_CODEC_XVOL_PREFIX "%s", v->name, NULL);

	put_json(s, key, hf_codec_xvol(v));
	free(key);
}

/*
 * Deletes one record's key (taken) at once, after what was saved before;
 * a key already gone is fine.
 */
static void delete_key(struct hf_srv *s, char *key)
{
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	int err;

	batch_flush(s, false); /* what was saved before goes first */
	fence(s, &txn);
	hf_store_txn_delete(&txn, key);
	err = s->store_failed ? 0 : hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	if (err && err != HF_ENOTFOUND)
		store_failed(s, key, err);
	free(key);
}

int hf_state_put_record(struct hf_srv *s, const char *key, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	int err;

	if (!text)
		abort(); /* only on allocation failure; see util.h */
	batch_flush(s, false);
	if (s->store_failed) {
		explicit_bzero(text, strlen(text));
		free(text);
		return HF_EUNAVAIL;
	}
	fence(s, &txn);
	hf_store_txn_put(&txn, key, text, strlen(text));
	err = hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	explicit_bzero(text, strlen(text));
	free(text);
	if (err)
		store_failed(s, key, err);
	return err ? HF_EUNAVAIL : 0;
}

int hf_state_delete_record(struct hf_srv *s, const char *key)
{
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	int err;

	batch_flush(s, false);
	if (s->store_failed)
		return HF_EUNAVAIL;
	fence(s, &txn);
	hf_store_txn_delete(&txn, key);
	err = hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	if (err && err != HF_ENOTFOUND) {
		store_failed(s, key, err);
		return HF_EUNAVAIL;
	}
	return err ? HF_ENOTFOUND : 0;
}

int hf_state_get_record(struct hf_srv *s, const char *key, json_t **out)
{
	char *text = NULL;
	size_t len = 0;
	int rc = hf_store_get(s->store, key, &text, &len, NULL);

	*out = NULL;
	if (rc)
		return rc == HF_ENOTFOUND ? rc : HF_EUNAVAIL;
	*out = json_loadb(text, len, 0, NULL);
	explicit_bzero(text, len);
	free(text);
	return *out ? 0 : HF_EIO;
}

int hf_state_list_records(struct hf_srv *s, const char *prefix, json_t **out)
{
	struct hf_store_kvs kvs = {0};
	int rc = hf_store_list(s->store, prefix, 0, &kvs);

	*out = json_array();
	for (size_t i = 0; !rc && i < kvs.len; i++) {
		json_t *j = json_loadb(kvs.items[i].value, kvs.items[i].len, 0,
				       NULL);

		if (j)
			json_array_append_new(*out, j);
		explicit_bzero(kvs.items[i].value, kvs.items[i].len);
	}
	hf_store_kvs_release(&kvs);
	return rc ? HF_EUNAVAIL : 0;
}

int hf_state_list_shown(struct hf_srv *s, const char *prefix,
			json_t *(*show)(const json_t *rec), json_t **out)
{
	json_t *all = NULL, *e;
	size_t i;
	int rc;

	hf_state_lock(s);
	rc = hf_state_list_records(s, prefix, &all);
	hf_state_unlock(s);
	*out = NULL;
	if (!rc) {
		*out = json_array();
		json_array_foreach(all, i, e)
			json_array_append_new(*out, show(e));
	}
	json_decref(all);
	return rc;
}

void hf_state_remove_xvol(struct hf_srv *s, struct hf_xvol *v)
{
	delete_key(s, hf_state_key(HF_CODEC_XVOL_PREFIX "%s", v->name, NULL));
	hf_model_xvol_remove(&s->model, v);
}

void hf_state_save_cluster(struct hf_srv *s, int64_t created)
{
	put_json(s, HF_CLUSTER_KEY,
		 json_pack("{s:s, s:I}", "id", s->cluster_id, "created",
			   (json_int_t)created));
}

void hf_state_remove_instance(struct hf_srv *s, struct hf_service *svc,
			      struct hf_instance *in)
{
	delete_key(s, hf_state_key("/services/%s/instances/%s", svc->name,
				   in->name));
	hf_model_instance_remove(svc, in);
	hf_state_moved(s);
}

void hf_state_delete_service(struct hf_srv *s, struct hf_service *svc)
{
	struct hf_store_txn txn = HF_STORE_TXN_INIT;
	char *key = hf_state_key("/services/%s", svc->name, NULL);
	char *prefix = hf_state_key("/services/%s/", svc->name, NULL);
	int err;

	hf_state_moved(s);
	batch_flush(s, false); /* what was saved before goes first */
	fence(s, &txn);
	hf_store_txn_delete(&txn, key);
	hf_store_txn_delete_prefix(&txn, prefix);
	err = s->store_failed ? 0 : hf_store_txn(s->store, &txn, NULL);
	hf_store_txn_release(&txn);
	free(prefix);
	if (err && err != HF_ENOTFOUND)
		store_failed(s, key, err);
	free(key);
}

/* ------------------------------------------------------------------ */
/* Loading: every record is checked (model/codec.c)                     */

static void as_recs(const struct hf_store_kvs *kvs, struct hf_codec_rec **out)
{
	*out = hf_xcalloc(kvs->len + 1, sizeof(**out));
	for (size_t i = 0; i < kvs->len; i++) {
		(*out)[i].key = kvs->items[i].key;
		(*out)[i].value = kvs->items[i].value;
		(*out)[i].len = kvs->items[i].len;
	}
}

static int load_cluster(struct hf_srv *s, char **err)
{
	struct hf_store_kv kv = {0};
	struct hf_codec_rec rec;
	int rc;

	rc = hf_store_get(s->store, HF_CLUSTER_KEY, &kv.value, &kv.len, NULL);
	if (rc == HF_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	rec.key = HF_CLUSTER_KEY;
	rec.value = kv.value;
	rec.len = kv.len;
	rc = hf_codec_load_cluster(&rec, &s->cluster_id, err);
	hf_store_kv_release(&kv);
	return rc;
}

/*
 * Encrypted volumes need the cluster key their data keys were sealed
 * with, and services that will make them need one: a server without it,
 * or with another, does not lead (and changes nothing) rather than fail
 * their attaches one by one. The message names the volume, never a key.
 */
static int check_volume_keys(struct hf_srv *s, char **err)
{
	const struct hf_model *m = &s->model;
	uint8_t dk[HF_VOL_DATA_KEY_LEN];

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (!v->secure)
			continue;
		if (v->key_name) {
			char *why = NULL;
			int rc = hf_cred_open_data_key(s, v->key_name, v->id,
						       v->data_key, dk, &why);

			explicit_bzero(dk, sizeof(dk));
			if (rc) {
				/* Its attaches wait; the others go on. */
				hf_log("encrypted volume '%s' cannot be "
				       "attached: %s",
				       v->name, why);
			}
			free(why);
			continue;
		}
		if (!s->opts.have_cluster_key) {
			*err = hf_xasprintf(
			    "volume '%s' is encrypted and this server has no "
			    "cluster key: start it with --cluster-key-file "
			    "(or HOLDFAST_CLUSTER_KEY) giving the key its "
			    "data key was sealed with",
			    v->name);
			return HF_EINVAL;
		}
		if (hf_vol_key_open(s->opts.cluster_key, v->id, v->data_key,
				    dk)) {
			*err = hf_xasprintf(
			    "the cluster key given does not open the data key "
			    "of encrypted volume '%s': it was sealed with "
			    "another cluster key (every server of a cluster "
			    "needs the same --cluster-key-file)",
			    v->name);
			return HF_EINVAL;
		}
		explicit_bzero(dk, sizeof(dk));
	}
	for (size_t i = 0; i < m->services.len && !s->opts.have_cluster_key;
	     i++) {
		const struct hf_service *svc = m->services.items[i];

		for (size_t k = 0; k < svc->configs.len; k++) {
			const char *pod, *vol, *key = NULL;
			size_t at = 0;

			while (hf_spec_next_secure(svc->configs.items[k]->spec,
						   &at, &pod, &vol, &key) &&
			       key[0])
				key = NULL;
			if (!key)
				continue;
			*err = hf_xasprintf(
			    "service '%s' declares an encrypted volume (pod "
			    "'%s', external volume '%s', secure=true) and this "
			    "server has no cluster key: start it with "
			    "--cluster-key-file (or HOLDFAST_CLUSTER_KEY)",
			    svc->name, pod, vol);
			return HF_EINVAL;
		}
	}
	return 0;
}

int hf_state_load(struct hf_srv *s, char **err)
{
	struct hf_store_kvs kvs = {0};
	struct hf_codec_rec *recs = NULL;
	struct hf_strlist warnings = {0};
	int rc;

	*err = NULL;
	rc = hf_store_get(s->store, HF_STORE_RESTORE_KEY, NULL, NULL, NULL);
	if (rc == 0) {
		*err = hf_xasprintf("the store holds %s: a restore began and "
				    "did not finish; run `holdfast store "
				    "restore` again",
				    HF_STORE_RESTORE_KEY);
		return HF_EINVAL;
	}
	if (rc != HF_ENOTFOUND)
		goto fail;
	rc = load_cluster(s, err);
	if (rc == HF_EINVAL)
		goto out;
	if (rc)
		goto fail;
	rc = hf_store_list(s->store, "/nodes/", 0, &kvs);
	if (rc)
		goto fail;
	as_recs(&kvs, &recs);
	rc = hf_codec_load_nodes(&s->model, recs, kvs.len, err);
	free(recs);
	recs = NULL;
	hf_store_kvs_release(&kvs);
	if (rc)
		goto out;
	rc = hf_store_list(s->store, "/services/", 0, &kvs);
	if (rc)
		goto fail;
	as_recs(&kvs, &recs);
	rc = hf_codec_load_services(&s->model, recs, kvs.len, &warnings, err);
	free(recs);
	recs = NULL;
	for (size_t i = 0; i < warnings.len; i++)
		hf_log("%s", warnings.items[i]);
	hf_strlist_release(&warnings);
	hf_store_kvs_release(&kvs);
	if (rc)
		goto out;
	/* Replicated volumes, after the nodes their replicas name. */
	rc = hf_store_list(s->store, HF_CODEC_XVOL_PREFIX, 0, &kvs);
	if (rc)
		goto fail;
	as_recs(&kvs, &recs);
	rc = hf_codec_load_xvols(&s->model, recs, kvs.len, err);
	free(recs);
	recs = NULL;
	if (!rc)
		hf_codec_derive_volumes(&s->model);
	if (!rc)
		rc = check_volume_keys(s, err);
	goto out;
fail:
	*err = hf_xasprintf("cannot read the store: %s (%s)", hf_err_msg(rc),
			    hf_store_last_error(s->store));
out:
	hf_store_kvs_release(&kvs);
	if (rc) {
		hf_state_release(s);
	} else {
		for (size_t i = 0; i < s->model.nodes.len; i++)
			node_link(s, s->model.nodes.items[i]);
		hf_state_moved(s);
	}
	return rc;
}

void hf_state_endpoint(struct hf_srv *s, struct hf_service *svc,
		       const char *port, struct hf_strlist *addrs,
		       struct hf_strlist *dns)
{
	struct hf_config *cfg = hf_state_target(svc);

	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		struct hf_node *n = hf_state_node(s, in->node);
		const char *num = hf_kvlist_get(&in->ports, port);
		const struct hf_spec_pod *pod =
		    cfg && cfg->spec ? hf_spec_find_pod(cfg->spec, in->pod)
				     : NULL;
		char *a;

		if (!num || !pod || in->index >= pod->count)
			continue;
		a = hf_xasprintf("%s:%s",
				 n && n->address ? n->address : "127.0.0.1",
				 num);
		hf_strlist_push(addrs, a);
		free(a);
		if (dns && n && n->hostname && *n->hostname) {
			a = hf_xasprintf("%s:%s", n->hostname, num);
			hf_strlist_push(dns, a);
			free(a);
		}
	}
}
