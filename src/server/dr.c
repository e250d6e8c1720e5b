/*
 * dr.c - disaster recovery: the service's configuration sent to its
 * standby (dr.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/map.h"
#include "common/rng.h"
#include "model/codec.h"
#include "model/model.h"
#include "proto/proto.h"
#include "server/dr.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/ops.h"
#include "server/remotes.h"
#include "server/sched.h"
#include "server/state.h"

/* Configurations are looked at this often, and sent again at least every
 * RESEND_MS even when unchanged (the standby shows how fresh it is). */
#define SHIP_EVERY_MS 1000
#define RESEND_MS 60000
/* A switchover's detaches wait this long for the standby to have all. */
#define SWITCH_DRAIN_MS 600000
/* ... and the switchover gives up after this. */
#define SWITCH_GIVE_UP_MS (15 * 60000)

/* Where the standby keeps one of the service's volumes. */
struct endpoint {
	char *volume, *replica, *address;
	int64_t port; /* its node's DR listener; 0: not known yet */
};

/* What the leader sent of one service (memory only). */
struct sent {
	char *svc, *to;
	char *config; /* the configuration id the standby acknowledged */
	char *target; /* the service's target when last looked at */
	int64_t at;   /* unix ms of that acknowledgement */
	char *error;  /* the last attempt's failure, NULL when it went */
	int64_t tried;
	bool seen;
	/*
	 * The standby's answer: its replica of each volume, and the TLS
	 * files the streams use (the remote's CA, this cluster's
	 * certificate and key: the key a secret). vols: the volume ids sent.
	 */
	HF_VEC(struct endpoint) eps;
	char *ca, *cert, *key;
	char *vols;
	bool complete; /* every volume has an endpoint with a port */
	int64_t journal_size; /* the record's, or the default */
	bool block;           /* when full: block writers, else resync */
	bool switching;       /* a switchover stops it: detaches drain long */
};

/* How a detached volume's stream ended, as its node said (memory only). */
struct final {
	char *volume, *node;
	int64_t epoch;
	bool drained;
};

static HF_VEC(struct final) finals;

/*
 * The standby replicas this cluster holds for other sites (from the
 * "/standby/" records; the leader's orders list them on their nodes).
 */
struct standby {
	char *svc, *name, *id, *key, *node, *replica;
	int64_t size;
	bool grouped; /* its service has several volumes: a group */
};

static HF_VEC(struct standby) standbys;
static uint64_t standbys_sig;

/*
 * Standby replicas whose standby went ("/standby-trash/<replica>"): their
 * nodes are told to delete the files, and the record goes once a node
 * says it did.
 */
struct trash {
	char *node, *id, *replica;
};

static HF_VEC(struct trash) trash;

static bool standbys_load(struct hf_srv *s);

static void standby_release(struct standby *x)
{
	free(x->svc);
	free(x->name);
	free(x->id);
	if (x->key)
		explicit_bzero(x->key, strlen(x->key));
	free(x->key);
	free(x->node);
	free(x->replica);
}

static void eps_release(struct sent *x)
{
	for (size_t i = 0; i < x->eps.len; i++) {
		free(x->eps.items[i].volume);
		free(x->eps.items[i].replica);
		free(x->eps.items[i].address);
	}
	x->eps.len = 0;
}

static HF_VEC(struct sent) sents;
static pthread_mutex_t sents_mu = PTHREAD_MUTEX_INITIALIZER;

static void sent_release(struct sent *x)
{
	free(x->svc);
	free(x->to);
	free(x->config);
	free(x->target);
	free(x->error);
	eps_release(x);
	HF_VEC_FREE(&x->eps);
	free(x->ca);
	free(x->cert);
	if (x->key)
		explicit_bzero(x->key, strlen(x->key));
	free(x->key);
	free(x->vols);
}

static struct sent *sent_of(const char *svc)
{
	struct sent *x;

	for (size_t i = 0; i < sents.len; i++)
		if (!strcmp(sents.items[i].svc, svc))
			return &sents.items[i];
	x = HF_VEC_PUSH(&sents);
	memset(x, 0, sizeof(*x));
	x->svc = hf_xstrdup(svc);
	return x;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? hf_xstrdup(v) : NULL;
}

/*
 * The service's volumes a standby keeps a replica of: name, id, key (a
 * secret, only ever sent to the standby over mutual TLS), size, epoch.
 * Their ids, in order, into *ids. Lock held.
 */
static json_t *volumes_json(const struct hf_model *m, const char *svc,
			    char **ids)
{
	json_t *a = json_array();
	struct hf_buf b = {0};

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (!v->service || strcmp(v->service, svc) != 0 ||
		    v->state != HF_XVOL_ACTIVE || !v->secret)
			continue;
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:I, s:I}", "name", v->name,
				 "id", v->id, "key", v->secret, "size",
				 (json_int_t)v->size, "epoch",
				 (json_int_t)v->epoch));
		hf_buf_addf(&b, "%s,", v->id);
	}
	*ids = b.len ? hf_xstrndup(b.data, b.len) : hf_xstrdup("");
	hf_buf_release(&b);
	return a;
}

/* The configuration a standby keeps. Lock held. */
static json_t *config_json(const struct hf_service *svc,
			   const struct hf_config *cfg)
{
	json_t *plans = json_object();

	for (size_t i = 0; i < svc->runs.len; i++)
		if (svc->runs.items[i].params.len)
			json_object_set_new(plans, svc->runs.items[i].plan,
					    hf_codec_kv_json(&svc->runs.items[i].params));
	return json_pack("{s:{s:s, s:s, s:s?, s:s?, s:o, s:o, s:o}, s:o}",
			 "config", "id", cfg->id, "text", cfg->text, "file",
			 cfg->file, "name", cfg->name,
			 "options", hf_codec_kv_json(&cfg->options), "templates",
			 hf_codec_kv_json(&cfg->templates), "counts",
			 hf_codec_kv_json(&cfg->counts), "plans", plans);
}

/* ---- the primary ------------------------------------------------------- */

void hf_dr_enable_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *svc = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	struct hf_ops_dr_journal j = {0};
	json_t *body = NULL, *js;
	bool updated = false;
	const char *to;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	to = json_string_value(json_object_get(body, "to"));
	js = json_object_get(body, "journal_size");
	j.when_full = json_string_value(json_object_get(body, "when_full"));
	if (json_is_integer(js))
		j.size = json_integer_value(js);
	if (!to || !*to) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"to\": REMOTE, \"journal_size\"?: "
			      "BYTES, \"when_full\"?: \"block\" or "
			      "\"resync\"}: a remote cluster (holdfast remote "
			      "list)");
	} else if ((js && !json_is_integer(js)) ||
		   (js && (j.size < HF_DR_JOURNAL_MIN ||
			   j.size > HF_DR_JOURNAL_MAX || j.size % 4096))) {
		hf_http_error(resp, HF_EINVAL,
			      "journal_size: a number of bytes, a multiple of "
			      "4096 from %lld (16 MiB) to %lld (1 TiB)",
			      (long long)HF_DR_JOURNAL_MIN,
			      (long long)HF_DR_JOURNAL_MAX);
	} else if ((json_object_get(body, "when_full") && !j.when_full) ||
		   (j.when_full && strcmp(j.when_full, "block") != 0 &&
		    strcmp(j.when_full, "resync") != 0)) {
		hf_http_error(resp, HF_EINVAL,
			      "when_full: \"block\" (writers wait for room) "
			      "or \"resync\" (writes go on, the regions they "
			      "write are copied once the journal drained)");
	} else if ((rc = hf_ops_dr_enable(s, svc, to, &j, &updated, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	} else {
		hf_log("service %s: replicated to remote cluster %s%s", svc, to,
		       updated ? " (its journal settings changed)" : "");
		hf_http_json(resp, updated ? 200 : 201,
			     json_pack("{s:s, s:s, s:s, s:b}", "service", svc,
				       "role", "primary", "to", to, "updated",
				       updated));
		hf_state_lock(s);
		if (s->leading)
			hf_sched_changed(s, true);
		hf_state_unlock(s);
	}
	hf_ops_err_release(&err);
	json_decref(body);
}

void hf_dr_disable_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *svc = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	char *to = NULL, *why = NULL, *path, *esc;
	json_t *out = NULL;
	long status = 0;
	int rc = hf_ops_dr_disable(s, svc, &to, &err);

	if (rc) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	/* The standby forgets it too, if it can be told now. */
	esc = hf_url_escape(svc);
	path = hf_xasprintf("/v1/dr/standby/%s", esc);
	free(esc);
	if (to && (hf_remotes_call(s, to, "DELETE", path, NULL, &status, &out,
				   &why) ||
		   (status != 200 && status != 404)))
		hf_log("service %s: remote cluster %s was not told to drop "
		       "its standby: %s",
		       svc, to, why ? why : "it refused");
	free(path);
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < sents.len; i++)
		if (!strcmp(sents.items[i].svc, svc)) {
			sent_release(&sents.items[i]);
			sents.items[i] = sents.items[--sents.len];
			break;
		}
	pthread_mutex_unlock(&sents_mu);
	/* Its volumes' streams end: the attachments lose their "dr". */
	hf_state_lock(s);
	if (s->leading)
		hf_sched_changed(s, true);
	hf_state_unlock(s);
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s?, s:b, s:b}", "service", svc, "to", to,
			       "disabled", 1, "standby_told",
			       status == 200 || status == 404));
out:
	hf_ops_err_release(&err);
	json_decref(out);
	free(to);
	free(why);
}

/*
 * The service's volumes and their streams (lock held): each volume's
 * node, its standby replica as the standby said, and the stream's state
 * as the attached node's agent last reported it.
 */
static json_t *streams_json(struct hf_srv *s, const char *svc)
{
	const struct hf_model *m = &s->model;
	json_t *a = json_array();

	for (size_t i = 0; svc && i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		const struct hf_node *n = v->attached
					      ? hf_model_node(m, v->attached)
					      : NULL;
		const struct hf_node_volrep *r =
		    n ? hf_model_node_volrep(n, v->name) : NULL;
		json_t *o;

		if (!v->service || strcmp(v->service, svc) != 0 ||
		    v->state != HF_XVOL_ACTIVE)
			continue;
		o = json_pack("{s:s, s:s?}", "volume", v->name, "node",
			      v->attached);
		pthread_mutex_lock(&sents_mu);
		for (size_t k = 0; k < sents.len; k++) {
			const struct sent *x = &sents.items[k];

			for (size_t j = 0; !strcmp(x->svc, svc) && j < x->eps.len;
			     j++) {
				const struct endpoint *e = &x->eps.items[j];

				if (strcmp(e->volume, v->name) != 0)
					continue;
				json_object_set_new(
				    o, "standby",
				    json_pack("{s:s, s:s?, s:I}", "replica",
					      e->replica, "address", e->address,
					      "port", (json_int_t)e->port));
			}
		}
		pthread_mutex_unlock(&sents_mu);
		if (r && r->dr.has) {
			const struct hf_node_dr *d = &r->dr;

			json_object_set_new(
			    o, "stream",
			    json_pack("{s:s, s:s?, s:b, s:b, s:f, s:I, s:I, "
				      "s:I, s:I, s:I, s:I, s:I}",
				      "state", d->state, "message", d->message,
				      "link_up", d->link_up, "consistent",
				      d->consistent, "lag_seconds",
				      d->lag_seconds, "lag_bytes",
				      (json_int_t)d->lag_bytes, "journal_bytes",
				      (json_int_t)d->journal_bytes,
				      "journal_size",
				      (json_int_t)d->journal_size,
				      "applied_time",
				      (json_int_t)d->applied_time, "shipped",
				      (json_int_t)d->shipped, "blocked",
				      (json_int_t)d->blocked, "overflows",
				      (json_int_t)d->overflows));
			json_object_set_new(json_object_get(o, "stream"),
					    "copy_same",
					    json_integer(d->copy_same));
			json_object_set_new(
			    json_object_get(o, "stream"), "sync",
			    d->sync_total
				? json_pack("{s:I, s:I}", "done",
					    (json_int_t)d->sync_done, "total",
					    (json_int_t)d->sync_total)
				: json_null());
		} else {
			json_object_set_new(o, "stream", json_null());
		}
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *primary_json(const json_t *rec, const char *target)
{
	const char *svc = json_string_value(json_object_get(rec, "service"));
	json_t *o = json_pack("{s:s?, s:s, s:s?, s:O?}", "service", svc,
			      "role", "primary", "to",
			      json_string_value(json_object_get(rec, "to")),
			      "since", json_object_get(rec, "since"));
	json_t *c = json_object();
	json_int_t js = json_integer_value(json_object_get(rec, "journal_size"));
	const char *wf = json_string_value(json_object_get(rec, "when_full"));

	if (json_is_object(json_object_get(rec, "switchover")))
		json_object_set(o, "switchover",
				json_object_get(rec, "switchover"));
	if (json_is_object(json_object_get(rec, "fenced")))
		json_object_set(o, "fenced", json_object_get(rec, "fenced"));
	json_object_set_new(o, "journal",
			    json_pack("{s:I, s:s}", "size",
				      js ? js : (json_int_t)HF_DR_JOURNAL_SIZE,
				      "when_full", wf ? wf : "resync"));

	json_object_set_new(c, "target", target ? json_string(target)
						: json_null());
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; svc && i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		if (strcmp(x->svc, svc) != 0)
			continue;
		json_object_set_new(c, "replicated",
				    x->config ? json_string(x->config)
					      : json_null());
		json_object_set_new(c, "replicated_at",
				    x->at ? json_integer(x->at) : json_null());
		json_object_set_new(c, "error", x->error ? json_string(x->error)
							 : json_null());
	}
	pthread_mutex_unlock(&sents_mu);
	if (!json_object_get(c, "replicated")) {
		json_object_set_new(c, "replicated", json_null());
		json_object_set_new(c, "replicated_at", json_null());
		json_object_set_new(c, "error", json_null());
	}
	json_object_set_new(
	    c, "in_sync",
	    json_boolean(target &&
			 json_is_string(json_object_get(c, "replicated")) &&
			 !strcmp(target, json_string_value(
					     json_object_get(c, "replicated")))));
	json_object_set_new(o, "config", c);
	return o;
}

/*
 * Each standby volume's mark as its node reported it (lock held): its
 * "applied_time" (ns: the newest write it holds was made then on the
 * primary; null while its copy is not consistent).
 */
static void add_marks(struct hf_srv *s, json_t *rec)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(rec, "volumes"), i, v) {
		const char *node = json_string_value(json_object_get(v, "node"));
		const char *rep = json_string_value(json_object_get(v, "replica"));
		const struct hf_node *n =
		    node ? hf_model_node(&s->model, node) : NULL;
		const struct hf_node_mark *mk = NULL;
		int64_t t = 0;

		for (size_t k = 0; rep && n && n->storage &&
				   k < n->storage->marks.len;
		     k++)
			if (!strcmp(n->storage->marks.items[k].replica, rep))
				mk = &n->storage->marks.items[k];
		if (mk)
			t = mk->time;
		json_object_set_new(v, "applied_time",
				    t > 0 ? json_integer(t) : json_null());
		/* A consistency group's: what waits for the others. */
		if (mk && mk->grouped)
			json_object_set_new(v, "spooled",
					    json_integer(mk->spooled));
	}
}

static json_t *standby_json(const json_t *rec)
{
	const json_t *cfg = json_object_get(rec, "config"), *v;
	json_t *vols = json_array();
	size_t i;

	/* Where each volume's standby replica is; never its key. */
	json_array_foreach(json_object_get(rec, "volumes"), i, v)
		json_array_append_new(
		    vols, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:b, s:O?}",
				    "volume", json_object_get(v, "name"), "node",
				    json_object_get(v, "node"), "replica",
				    json_object_get(v, "replica"), "size",
				    json_object_get(v, "size"), "applied_time",
				    json_object_get(v, "applied_time"),
				    "consistent",
				    json_integer_value(json_object_get(
					v, "applied_time")) > 0,
				    "spooled", json_object_get(v, "spooled")));
	return json_pack("{s:O?, s:s, s:O?, s:O?, s:{s:O?, s:O?}, s:b, s:o}",
			 "service", json_object_get(rec, "service"), "role",
			 "standby", "from", json_object_get(rec, "from"),
			 "cluster", json_object_get(rec, "cluster"), "config",
			 "id", json_object_get(cfg, "id"), "received_at",
			 json_object_get(rec, "received_at"),
			 "consistency_group",
			 json_array_size(json_object_get(rec, "volumes")) > 1,
			 "volumes", vols);
}

void hf_dr_status_handler(void *ctx, const struct hf_http_req *req,
			  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	char *key = hf_state_key("/dr/%s", name, NULL);
	char *skey = hf_state_key("/standby/%s", name, NULL);
	char *target = NULL;
	json_t *rec = NULL, *streams = NULL;
	struct hf_service *svc;
	int rc;

	bool known;

	hf_state_lock(s);
	svc = hf_state_service(s, name);
	known = svc != NULL;
	if (svc && svc->target)
		target = hf_xstrdup(svc->target);
	rc = hf_state_get_record(s, key, &rec);
	if (rc == HF_ENOTFOUND)
		rc = hf_state_get_record(s, skey, &rec) ? HF_ENOTFOUND : 1;
	streams = rc == 0 ? streams_json(s, name) : NULL;
	if (rc == 1)
		add_marks(s, rec);
	hf_state_unlock(s);
	if (rc == 0) {
		json_t *o = primary_json(rec, target);

		json_object_set_new(o, "volumes", streams);
		streams = NULL;
		hf_http_json(resp, 200, o);
	}
	else if (rc == 1)
		hf_http_json(resp, 200, standby_json(rec));
	else if (!known)
		hf_http_error(resp, HF_ENOTFOUND,
			      "no service '%s' (nor a standby of it) here",
			      name ? name : "");
	else
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' has no disaster recovery here (dr "
			      "enable --to REMOTE)",
			      name ? name : "");
	json_decref(rec);
	json_decref(streams);
	free(target);
	free(key);
	free(skey);
}

void hf_dr_list_handler(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *prim = NULL, *stand = NULL, *out = json_array(), *e;
	HF_VEC(char *) targets = {0};
	size_t i;
	int rc;

	(void)req;
	hf_state_lock(s);
	rc = hf_state_list_records(s, "/dr/", &prim);
	if (!rc)
		rc = hf_state_list_records(s, "/standby/", &stand);
	json_array_foreach(prim, i, e) {
		struct hf_service *svc = hf_state_service(
		    s, json_string_value(json_object_get(e, "service")));

		*HF_VEC_PUSH(&targets) =
		    svc && svc->target ? hf_xstrdup(svc->target) : NULL;
	}
	json_array_foreach(stand, i, e)
		add_marks(s, e);
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc, "the store cannot be read");
	} else {
		json_array_foreach(prim, i, e)
			json_array_append_new(out,
					      primary_json(e, targets.items[i]));
		json_array_foreach(stand, i, e)
			json_array_append_new(out, standby_json(e));
		hf_http_json(resp, 200, json_pack("{s:O}", "services", out));
	}
	for (i = 0; i < targets.len; i++)
		free(targets.items[i]);
	HF_VEC_FREE(&targets);
	json_decref(out);
	json_decref(prim);
	json_decref(stand);
}

/* ---- the standby ------------------------------------------------------- */

/*
 * Where this cluster keeps each volume the primary sent (lock held):
 * where it was kept before when the node is still there, else the node
 * with a storage pool (a DR listener first) and the most free space that
 * holds room for it. Fills "node" and "replica" in each of vols' entries
 * (those without a node are kept nowhere yet: no node has room).
 */
static void place_standbys(struct hf_srv *s, json_t *vols, const json_t *old,
			   const json_t *adopt)
{
	const struct hf_model *m = &s->model;
	const char *with = NULL; /* where the group's others are */
	int64_t taken = 0;       /* what they take there, new ones */
	json_t *v, *o;
	size_t i, k;

	/*
	 * A service's standby replicas go to one node where they can: its
	 * replica server then applies their writes together, up to their
	 * common mark (a consistency group, volume/spool.h).
	 */
	json_array_foreach(vols, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));

		json_array_foreach(json_object_get(old, "volumes"), k, o) {
			const char *oid = json_string_value(json_object_get(o, "id"));
			const char *node =
			    json_string_value(json_object_get(o, "node"));

			if (!with && id && oid && node && !strcmp(id, oid) &&
			    hf_model_node(m, node))
				with = node;
		}
	}
	json_array_foreach(vols, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		int64_t size = json_integer_value(json_object_get(v, "size"));
		const struct hf_node *best = NULL;
		json_t *both = json_array();

		/* Where it was; else the old primary's copy a failback kept. */
		json_array_extend(both, json_object_get(old, "volumes"));
		json_array_extend(both, json_object_get(adopt, "volumes"));
		json_array_foreach(both, k, o) {
			const char *oid = json_string_value(json_object_get(o, "id"));
			const char *node =
			    json_string_value(json_object_get(o, "node"));

			if (id && oid && node && !strcmp(id, oid) &&
			    hf_model_node(m, node) &&
			    json_is_string(json_object_get(o, "replica"))) {
				json_object_set(v, "node", json_object_get(o, "node"));
				json_object_set(v, "replica",
						json_object_get(o, "replica"));
				break;
			}
		}
		json_decref(both);
		if (json_object_get(v, "node")) {
			if (!with)
				with = json_string_value(
				    json_object_get(v, "node"));
			continue;
		}
		if (with) {
			const struct hf_node *n = hf_model_node(m, with);
			const struct hf_node_storage *st = n ? n->storage : NULL;

			if (st && st->pool && !n->decommissioned &&
			    st->free - taken >= size) {
				char *rid = hf_rng_hex(&s->rng, 8);

				json_object_set_new(v, "node", json_string(with));
				json_object_set_new(v, "replica",
						    json_string(rid));
				free(rid);
				taken += size;
				continue;
			}
		}
		for (k = 0; k < m->nodes.len; k++) {
			const struct hf_node *n = m->nodes.items[k];
			const struct hf_node_storage *st = n->storage;

			if (!st || !st->pool || n->decommissioned ||
			    st->free < size)
				continue;
			if (!best ||
			    (!!st->dr_port > !!best->storage->dr_port) ||
			    (!!st->dr_port == !!best->storage->dr_port &&
			     st->free > best->storage->free))
				best = n;
		}
		if (best) {
			char *rid = hf_rng_hex(&s->rng, 8);

			json_object_set_new(v, "node", json_string(best->id));
			json_object_set_new(v, "replica", json_string(rid));
			free(rid);
			if (!with) {
				with = best->id;
				taken = size;
			}
		}
	}
}

/* The standby's answer: where each volume's replica is (lock held). */
static json_t *endpoints_json(struct hf_srv *s, const json_t *vols)
{
	json_t *a = json_array(), *v;
	size_t i;

	json_array_foreach(vols, i, v) {
		const char *node = json_string_value(json_object_get(v, "node"));
		const struct hf_node *n = node ? hf_model_node(&s->model, node)
					       : NULL;
		json_t *e = json_pack("{s:O?, s:O?, s:s?}", "name",
				      json_object_get(v, "name"), "replica",
				      json_object_get(v, "replica"), "node", node);

		json_object_set_new(e, "address",
				    n && n->address ? json_string(n->address)
						    : json_null());
		json_object_set_new(e, "port",
				    n && n->storage && n->storage->dr_port
					? json_integer(n->storage->dr_port)
					: json_null());
		json_array_append_new(a, e);
	}
	return a;
}

void hf_dr_standby_put_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	struct hf_config *cand = hf_xcalloc(1, sizeof(*cand));
	json_t *body = NULL, *cfg, *rec = NULL, *vols = NULL;
	const char *id, *text;
	bool running;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		goto out;
	cfg = json_object_get(body, "config");
	id = json_string_value(json_object_get(cfg, "id"));
	text = json_string_value(json_object_get(cfg, "text"));
	if (!id || !text || !json_is_object(json_object_get(cfg, "options"))) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"cluster\", \"config\": {\"id\", "
			      "\"text\", \"file\"?, \"options\", \"templates\", "
			      "\"counts\"}, \"plans\"}");
		goto out;
	}
	/* The standby must be able to start it: it loads here. */
	cand->text = hf_xstrdup(text);
	if (json_is_string(json_object_get(cfg, "file")))
		cand->file = hf_xstrdup(
		    json_string_value(json_object_get(cfg, "file")));
	if (json_is_string(json_object_get(cfg, "name")))
		cand->name = hf_xstrdup(
		    json_string_value(json_object_get(cfg, "name")));
	hf_codec_kv_from_json(&cand->options, json_object_get(cfg, "options"));
	hf_codec_kv_from_json(&cand->templates,
			      json_object_get(cfg, "templates"));
	hf_codec_kv_from_json(&cand->counts, json_object_get(cfg, "counts"));
	if (hf_state_config_load(cand, &err.diags)) {
		hf_http_error(resp, HF_ESPEC,
			      "configuration %s of service '%s' does not load "
			      "on this cluster",
			      id, name);
		goto out;
	}
	if (strcmp(cand->spec->name, name) != 0) {
		hf_http_error(resp, HF_EINVAL, "the spec is for service '%s', "
					       "not '%s'",
			      cand->spec->name, name);
		goto out;
	}
	rec = json_pack("{s:s, s:s, s:O?, s:O, s:O?, s:I}", "service", name,
			"from", req->principal ? req->principal : "?",
			"cluster", json_object_get(body, "cluster"), "config",
			cfg, "plans", json_object_get(body, "plans"),
			"received_at", (json_int_t)hf_now_ms());
	vols = json_array();
	{
		json_t *v;
		size_t i;

		json_array_foreach(json_object_get(body, "volumes"), i, v) {
			const char *vn = json_string_value(json_object_get(v, "name"));
			const char *vid = json_string_value(json_object_get(v, "id"));
			const char *vk = json_string_value(json_object_get(v, "key"));
			json_int_t size = json_integer_value(json_object_get(v, "size"));

			if (!vn || !vid || !vk || !hf_xvol_name_ok(vn) ||
			    strlen(vk) != 64 || size < (64LL << 20) ||
			    size % 4096) {
				hf_http_error(resp, HF_EINVAL,
					      "volumes[%zu]: needs a name, an id, "
					      "a key of 64 hex digits and a size "
					      "(a multiple of 4096 of at least "
					      "64 MiB)",
					      i);
				goto out;
			}
			json_array_append_new(
			    vols, json_pack("{s:s, s:s, s:s, s:I, s:O?}", "name",
					    vn, "id", vid, "key", vk, "size",
					    size, "epoch",
					    json_object_get(v, "epoch")));
		}
	}
	{
		char *skey = hf_state_key("/standby/%s", name, NULL);
		char *akey = hf_state_key("/dr-adopt/%s", name, NULL);
		json_t *old = NULL, *adopt = NULL;

		hf_state_lock(s);
		hf_state_get_record(s, skey, &old);
		hf_state_get_record(s, akey, &adopt);
		place_standbys(s, vols, old, adopt);
		hf_state_unlock(s);
		json_decref(old);
		json_decref(adopt);
		free(skey);
		free(akey);
	}
	json_object_set(rec, "volumes", vols);
	rc = hf_ops_standby_put(s, name, rec, req->principal ? req->principal
							     : "?",
				&err);
	hf_state_lock(s);
	running = rc == HF_ECONFLICT && hf_state_service(s, name) != NULL;
	if (running) {
		/* Only where the service came here from that cluster. */
		char *tkey = hf_state_key("/dr-taken/%s", name, NULL);
		json_t *t = NULL;
		const char *from;

		running = !hf_state_get_record(s, tkey, &t) &&
			  (from = json_string_value(json_object_get(t, "from"))) &&
			  req->principal && !strcmp(from, req->principal);
		json_decref(t);
		free(tkey);
	}
	hf_state_unlock(s);
	if (running) {
		/*
		 * It runs here, moved from the sender by a failover or a
		 * switchover: the sender is the old primary, and "role" tells
		 * it to stop its copy (the fencing rule, docs/design/dr.md).
		 */
		hf_http_json(resp, 409,
			     json_pack("{s:s, s:s, s:s}", "error", "conflict",
				       "message", err.why ? err.why : "",
				       "role", "primary"));
	} else if (rc) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	} else {
		json_t *eps;
		char *akey = hf_state_key("/dr-adopt/%s", name, NULL);

		hf_state_lock(s);
		/* The standby record says where each copy is from now on. */
		hf_state_delete_record(s, akey);
		free(akey);
		if (standbys_load(s))
			hf_sched_changed(s, true);
		eps = endpoints_json(s, vols);
		hf_state_unlock(s);
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:s, s:s, s:o}", "service", name,
				       "role", "standby", "config", id,
				       "volumes", eps));
	}
out:
	json_decref(vols);
	hf_model_config_free(cand);
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
}

void hf_dr_standby_delete_handler(void *ctx, const struct hf_http_req *req,
				  struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	int rc = hf_ops_standby_delete(s, name, req->principal, &err);

	if (!rc) {
		hf_state_lock(s);
		if (standbys_load(s))
			hf_sched_changed(s, true);
		hf_state_unlock(s);
	}
	if (rc)
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	else
		hf_http_json(resp, 200,
			     json_pack("{s:s, s:b}", "service", name, "removed",
				       1));
	hf_ops_err_release(&err);
}

/* ---- failover ---------------------------------------------------------- */

/*
 * The standby starts the service from its standby volumes (failover's
 * and a switchover's last step): *answer gets what the API says.
 */
static int take_over(struct hf_srv *s, const char *name, const char *who,
		     bool force, json_t **answer, struct hf_ops_err *err)
{
	struct hf_ops_err derr = {0};
	struct hf_ops_deployed dep = {0};
	struct hf_kvlist options = {0}, templates = {0};
	json_t *cfg = NULL;
	int64_t loss = 0;
	int rc;

	*answer = NULL;
	rc = hf_ops_dr_failover(s, name, who, force, &cfg, &loss, err);
	if (rc)
		return rc;
	hf_state_lock(s);
	if (standbys_load(s))
		hf_sched_changed(s, true);
	hf_state_unlock(s);
	/* Its stored configuration, deployed on the kept volumes. */
	hf_codec_kv_from_json(&options, json_object_get(cfg, "options"));
	hf_codec_kv_from_json(&templates, json_object_get(cfg, "templates"));
	{
		struct hf_ops_spec spec = {
		    json_string_value(json_object_get(cfg, "text")),
		    json_string_value(json_object_get(cfg, "file")), &options,
		    &templates, json_string_value(json_object_get(cfg, "name"))};

		rc = hf_ops_deploy(s, &spec, &dep, &derr);
	}
	*answer = json_pack("{s:s, s:s, s:b}", "service", name, "role",
			    "primary", "deployed", rc == 0);
	/* Pod counts set over the spec on the primary (pod count). */
	if (!rc) {
		const char *pod;
		json_t *n;

		json_object_foreach(json_object_get(cfg, "counts"), pod, n) {
			struct hf_ops_change chg = {0};
			struct hf_ops_err cerr = {0};
			long long want = json_is_integer(n)
					     ? (long long)json_integer_value(n)
					     : json_is_string(n)
						   ? atoll(json_string_value(n))
						   : -1;

			if (want < 0 ||
			    hf_ops_pod_count(s, name, pod, want, &chg, &cerr)) {
				char *msg = hf_xasprintf(
				    "pod %s's count %lld: %s", pod, want,
				    cerr.why ? cerr.why : "not a count");

				hf_log("service %s: after the failover: %s",
				       name, msg);
				json_object_set_new(*answer, "counts_error",
						    json_string(msg));
				free(msg);
			}
			hf_ops_change_release(&chg);
			hf_ops_err_release(&cerr);
		}
	}
	json_object_set_new(*answer, "last_write_applied",
			    loss ? json_integer(loss) : json_null());
	if (rc)
		json_object_set_new(*answer, "deploy_error",
				    json_string(derr.why ? derr.why : "?"));
	hf_ops_deployed_release(&dep);
	hf_kvlist_release(&options);
	hf_kvlist_release(&templates);
	hf_ops_err_release(&derr);
	json_decref(cfg);
	return 0;
}

void hf_dr_failover_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	json_t *body = NULL, *o = NULL;
	int rc;

	if (req->body_len && hf_http_body_json(req, resp, &body))
		return;
	rc = take_over(s, name, req->principal ? req->principal : "operator",
		       json_is_true(json_object_get(body, "force")), &o, &err);
	if (rc)
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
	else
		hf_http_json(resp, 200, o);
	hf_ops_err_release(&err);
	json_decref(body);
}

/* ---- standby replicas that went ----------------------------------------- */

void hf_dr_replicas_deleted(struct hf_srv *s, const char *node,
			    const struct hf_strlist *deleted)
{
	bool any = false;

	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < trash.len; i++) {
		char *key;

		if (strcmp(trash.items[i].node, node) != 0 ||
		    !hf_strlist_has(deleted, trash.items[i].replica))
			continue;
		key = hf_state_key("/standby-trash/%s", trash.items[i].replica,
				   NULL);
		if (hf_state_delete_record(s, key) == 0) {
			hf_log("standby replica %s of volume %s deleted on node "
			       "%s",
			       trash.items[i].replica, trash.items[i].id, node);
			any = true;
		}
		free(key);
	}
	pthread_mutex_unlock(&sents_mu);
	if (any && standbys_load(s))
		hf_sched_changed(s, true);
}

/* ---- switchover -------------------------------------------------------- */

void hf_dr_final_note(struct hf_srv *s, const char *node,
		      const struct hf_proto_dr_final *f)
{
	struct final *x = NULL;
	bool news;

	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < finals.len && !x; i++)
		if (!strcmp(finals.items[i].volume, f->volume))
			x = &finals.items[i];
	news = !x || x->epoch != f->epoch || x->drained != f->drained ||
	       strcmp(x->node, node) != 0;
	if (!x) {
		x = HF_VEC_PUSH(&finals);
		memset(x, 0, sizeof(*x));
		x->volume = hf_xstrdup(f->volume);
	}
	set_str(&x->node, node);
	x->epoch = f->epoch;
	x->drained = f->drained;
	pthread_mutex_unlock(&sents_mu);
	if (news && f->drained)
		hf_log("volume %s: detached from node %s at epoch %lld, its DR "
		       "standby holding every write",
		       f->volume, node, (long long)f->epoch);
	if (news && !f->drained) {
		const struct hf_xvol *v = hf_model_xvol(&s->model, f->volume);
		char *why = hf_xasprintf("detached from node %s while its DR "
					 "standby lacked writes: the node keeps "
					 "the journal (an attach there sends "
					 "it on)",
					 node);

		hf_event(s, "agent", v ? v->service : NULL, "dr", f->volume,
			 "detaching", "undrained", why);
		hf_log("volume %s: %s", f->volume, why);
		free(why);
	}
}

/* How volume name's stream ended at epoch (sents_mu held): 1 drained,
 * 0 not, -1 not reported. */
static int final_of(const char *name, uint64_t epoch)
{
	for (size_t i = 0; i < finals.len; i++)
		if (!strcmp(finals.items[i].volume, name))
			return (uint64_t)finals.items[i].epoch != epoch
				   ? -1
				   : finals.items[i].drained;
	return -1;
}

/*
 * Whether service svc can switch over now (lock held): the standby has
 * its configuration, and every volume streams to a consistent standby
 * replica over a live link. Names the volumes into vols; else says why.
 */
static char *switch_ready(struct hf_srv *s, const char *svc,
			  const struct hf_config *cfg, json_t *vols)
{
	const struct hf_model *m = &s->model;
	char *why = NULL;

	pthread_mutex_lock(&sents_mu);
	for (size_t k = 0; k < sents.len; k++) {
		const struct sent *x = &sents.items[k];

		if (strcmp(x->svc, svc) != 0)
			continue;
		if (!x->config || strcmp(x->config, cfg->id) != 0)
			why = hf_xasprintf("the standby has not acknowledged "
					   "configuration %s yet%s%s",
					   cfg->id, x->error ? ": " : "",
					   x->error ? x->error : "");
		else if (!x->complete)
			why = hf_xstrdup("the standby has not placed a replica "
					 "of every volume yet");
	}
	pthread_mutex_unlock(&sents_mu);
	for (size_t i = 0; !why && i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		const struct hf_node *n =
		    v->attached ? hf_model_node(m, v->attached) : NULL;
		const struct hf_node_volrep *r =
		    n ? hf_model_node_volrep(n, v->name) : NULL;

		if (!v->service || strcmp(v->service, svc) != 0 ||
		    v->state != HF_XVOL_ACTIVE)
			continue;
		json_array_append_new(vols, json_string(v->name));
		if (!r || !r->dr.has)
			why = hf_xasprintf("volume %s has no stream to the "
					   "standby (not attached, or not "
					   "reported yet)",
					   v->name);
		else if (strcmp(r->dr.state, "streaming") != 0 ||
			 !r->dr.consistent || !r->dr.link_up)
			why = hf_xasprintf("volume %s's stream is %s%s%s: the "
					   "standby's copy must be consistent "
					   "and the link up",
					   v->name, r->dr.state,
					   r->dr.link_up ? "" : ", link down",
					   r->dr.consistent
					       ? ""
					       : ", the standby not consistent");
	}
	return why;
}

void hf_dr_switchover_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	const char *who = req->principal ? req->principal : "operator";
	struct hf_ops_err err = {0};
	struct hf_ops_removed removed = {0};
	json_t *body = NULL, *rec = NULL, *sw = NULL, *vols = json_array();
	const char *back = NULL;
	char *key = hf_state_key("/dr/%s", name, NULL), *why = NULL;
	struct hf_service *svc;
	int rc;

	if (req->body_len && hf_http_body_json(req, resp, &body))
		goto out;
	back = json_string_value(json_object_get(body, "back"));
	if (json_object_get(body, "back") && (!back || !*back)) {
		hf_http_error(resp, HF_EINVAL,
			      "back: the name the remote cluster knows this "
			      "one by (its `remote add`)");
		goto out;
	}
	hf_state_lock(s);
	svc = hf_state_service(s, name);
	rc = hf_state_get_record(s, key, &rec);
	if (rc == HF_ENOTFOUND)
		why = hf_xasprintf("service '%s' is not replicated to a remote "
				   "cluster (dr enable)",
				   name);
	else if (rc)
		why = hf_xstrdup("the store cannot be read");
	else if (!svc || svc->removing || !hf_state_target(svc))
		why = hf_xasprintf("service '%s' does not run here", name);
	else
		why = switch_ready(s, name, hf_state_target(svc), vols);
	hf_state_unlock(s);
	if (why) {
		hf_http_error(resp, rc == HF_ENOTFOUND ? HF_ENOTFOUND
			      : rc			? HF_EUNAVAIL
						: HF_ECONFLICT,
			      "%s", why);
		goto out;
	}
	sw = json_pack("{s:s, s:I, s:s?, s:O, s:s, s:s}", "phase", "stopping",
		       "since", (json_int_t)hf_now_ms(), "back", back,
		       "volumes", vols, "by", who, "message",
		       "stopping the service here: its volumes detach once "
		       "the standby has every write");
	if ((rc = hf_ops_dr_switchover(s, name, sw, true, false, who,
				       "switchover: the service stops here, "
				       "then starts on the standby",
				       &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	/* Its detaches wait for the standby from now on. */
	pthread_mutex_lock(&sents_mu);
	for (size_t k = 0; k < sents.len; k++)
		if (!strcmp(sents.items[k].svc, name))
			sents.items[k].switching = true;
	pthread_mutex_unlock(&sents_mu);
	hf_state_lock(s);
	if (s->leading)
		hf_sched_changed(s, true);
	hf_state_unlock(s);
	/* Its tasks stop and its volumes detach; the volumes stay. */
	if ((rc = hf_ops_remove(s, name, false, &removed, &err))) {
		struct hf_ops_err e2 = {0};

		hf_ops_dr_switchover(s, name, NULL, false, false, who,
				     "switchover abandoned: the service could "
				     "not be stopped",
				     &e2);
		hf_ops_err_release(&e2);
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	hf_http_json(resp, 202,
		     json_pack("{s:s, s:s, s:O}", "service", name, "role",
			       "primary", "switchover", sw));
out:
	hf_ops_removed_release(&removed);
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
	json_decref(sw);
	json_decref(vols);
	free(key);
	free(why);
}

/* The name of the only remote cluster here, or NULL (lock held). */
static char *only_remote(struct hf_srv *s)
{
	json_t *all = NULL;
	char *name = NULL;

	if (!hf_state_list_records(s, "/remotes/", &all) &&
	    json_array_size(all) == 1)
		name = hf_xstrdup(json_string_value(
		    json_object_get(json_array_get(all, 0), "name")));
	json_decref(all);
	return name;
}

void hf_dr_promote_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	struct hf_ops_dr_journal j = {0};
	json_t *body = NULL, *rec = NULL, *r = NULL, *o = NULL;
	char *skey = hf_state_key("/standby/%s", name, NULL);
	char *back = NULL, *rkey = NULL, *why = NULL;
	const char *from;
	bool updated;
	int rc, code = 0;

	if (req->body_len && hf_http_body_json(req, resp, &body))
		goto out;
	hf_state_lock(s);
	rc = hf_state_get_record(s, skey, &rec);
	from = json_string_value(json_object_get(rec, "from"));
	if (json_is_string(json_object_get(body, "back")))
		back = hf_xstrdup(
		    json_string_value(json_object_get(body, "back")));
	else if (!rc)
		back = only_remote(s);
	if (back) {
		rkey = hf_state_key("/remotes/%s", back, NULL);
		if (hf_state_get_record(s, rkey, &r)) {
			why = hf_xasprintf("no remote cluster '%s' here to "
					   "replicate back to",
					   back);
			code = HF_ECONFLICT;
		}
	}
	hf_state_unlock(s);
	if (rc) {
		why = hf_xasprintf("service '%s' is no standby here", name);
		code = rc == HF_ENOTFOUND ? HF_ENOTFOUND : HF_EUNAVAIL;
	} else if (!from || !req->principal || strcmp(from, req->principal)) {
		why = hf_xasprintf("only the cluster that replicates service "
				   "'%s' here may hand it over",
				   name);
		code = HF_EFORBIDDEN;
	} else if (!back && !why) {
		why = hf_xstrdup("name the remote cluster that is the primary "
				 "here (this cluster has none, or several: "
				 "back)");
		code = HF_ECONFLICT;
	}
	if (why) {
		hf_http_error(resp, code, "%s", why);
		goto out;
	}
	if ((rc = take_over(s, name, req->principal, false, &o, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	/* Replication reverses: the old primary becomes the standby. */
	hf_ops_err_release(&err);
	rc = hf_ops_dr_enable(s, name, back, &j, &updated, &err);
	json_object_set_new(o, "replicated_to", rc ? json_null()
						   : json_string(back));
	if (rc)
		json_object_set_new(o, "replicate_error",
				    json_string(err.why ? err.why : "?"));
	hf_log("service %s: switched over from %s; %s", name, from,
	       rc ? "not replicated back" : "replicated back");
	hf_http_json(resp, 200, o);
	o = NULL;
out:
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
	json_decref(r);
	json_decref(o);
	free(skey);
	free(rkey);
	free(back);
	free(why);
}

/*
 * The kept volumes of svc whose copy here becomes the standby replica a
 * failback's stream compares against: an in-sync replica of each, on a
 * node with a pool (lock held). NULL with *why when one is attached
 * still (its service's stop is not over).
 */
static json_t *adoptable(struct hf_srv *s, const char *svc, char **why)
{
	const struct hf_model *m = &s->model;
	json_t *a = json_array();

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (v->state != HF_XVOL_KEPT || !v->service ||
		    strcmp(v->service, svc) != 0)
			continue;
		if (v->attached) {
			*why = hf_xasprintf("volume %s is still attached on "
					    "node %s (the service's stop is "
					    "not over): try again",
					    v->name, v->attached);
			json_decref(a);
			return NULL;
		}
		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			const struct hf_node *n = hf_model_node(m, r->node);

			if (r->state != HF_XREP_IN_SYNC || !n || !n->storage ||
			    !n->storage->pool || n->decommissioned)
				continue;
			json_array_append_new(
			    a, json_pack("{s:s, s:s, s:s, s:s}", "name", v->name,
					 "id", v->id, "node", r->node,
					 "replica", r->id));
			break;
		}
	}
	return a;
}

/*
 * Before the other site is asked to replicate svc here (a failback, a
 * switchover's promotion): this cluster's copies of its kept volumes
 * are recorded in /dr-adopt/<svc> as the standby replicas, since the
 * standby configuration may come at once. The adopted replicas (a new
 * reference; maybe empty), or NULL with *why and *code (HF_ECONFLICT:
 * a volume is still attached; HF_EUNAVAIL: the store).
 */
static json_t *adopt_begin(struct hf_srv *s, const char *svc, char **why,
			   int *code)
{
	char *akey = hf_state_key("/dr-adopt/%s", svc, NULL);
	json_t *adopt;

	hf_state_lock(s);
	adopt = adoptable(s, svc, why);
	*code = HF_ECONFLICT;
	if (adopt && json_array_size(adopt)) {
		json_t *ar = json_pack("{s:s, s:O}", "service", svc, "volumes",
				       adopt);

		if (hf_state_put_record(s, akey, ar)) {
			*why = hf_xstrdup("the store cannot be written");
			*code = HF_EUNAVAIL;
			json_decref(adopt);
			adopt = NULL;
		}
		json_decref(ar);
	}
	hf_state_unlock(s);
	free(akey);
	return adopt;
}

/* The other site did not take it: the adoption adopt_begin recorded goes. */
static void adopt_abort(struct hf_srv *s, const char *svc, const json_t *adopt)
{
	char *akey = hf_state_key("/dr-adopt/%s", svc, NULL);

	if (json_array_size(adopt)) {
		hf_state_lock(s);
		hf_state_delete_record(s, akey);
		hf_state_unlock(s);
	}
	free(akey);
}

/* Sets the phase of service name's switchover (a fresh object). */
static void switch_phase(struct hf_srv *s, const char *name,
			 const json_t *cur, const char *phase,
			 const char *message, bool event)
{
	struct hf_ops_err err = {0};
	json_t *sw = json_deep_copy(cur);
	const char *was = json_string_value(json_object_get(cur, "message"));

	if (!strcmp(json_string_value(json_object_get(cur, "phase")), phase) &&
	    was && !strcmp(was, message)) {
		json_decref(sw);
		return;
	}
	json_object_set_new(sw, "phase", json_string(phase));
	json_object_set_new(sw, "message", json_string(message));
	/* An event when the phase changes; progress alone has none. */
	if (hf_ops_dr_switchover(s, name, sw, false, false, "scheduler",
				 event || strcmp(json_string_value(json_object_get(
						     cur, "phase")),
						 phase) != 0
				     ? message
				     : NULL,
				 &err))
		hf_log("service %s: switchover: %s", name,
		       err.why ? err.why : "?");
	hf_ops_err_release(&err);
	json_decref(sw);
}

/*
 * Drives each switchover on: once the service is stopped and every
 * volume detached with its standby holding every write, the standby is
 * asked to take over (and to replicate back); then this cluster's copy
 * goes (the standby's replicas hold the data; the new primary's stream
 * makes new standby replicas here).
 */
static void switch_pass(struct hf_srv *s)
{
	json_t *all = NULL, *e;
	size_t i;

	hf_state_lock(s);
	if (!s->leading || hf_state_list_records(s, "/dr/", &all)) {
		hf_state_unlock(s);
		json_decref(all);
		return;
	}
	hf_state_unlock(s);
	json_array_foreach(all, i, e) {
		const char *name = json_string_value(json_object_get(e, "service"));
		const char *to = json_string_value(json_object_get(e, "to"));
		const json_t *sw = json_object_get(e, "switchover"), *vn;
		const char *phase = json_string_value(json_object_get(sw, "phase"));
		int64_t since = json_integer_value(json_object_get(sw, "since"));
		char *wait = NULL, *bad = NULL;
		size_t k;

		if (!name || !to || !phase || !strcmp(phase, "failed")) {
			/* A failed one ends when the service runs here again. */
			if (phase && !strcmp(phase, "failed")) {
				struct hf_ops_err err = {0};
				bool back;

				hf_state_lock(s);
				back = hf_state_service(s, name) != NULL;
				hf_state_unlock(s);
				if (back)
					hf_ops_dr_switchover(
					    s, name, NULL, false, false,
					    "scheduler",
					    "the service runs here again: the "
					    "failed switchover is over",
					    &err);
				hf_ops_err_release(&err);
			}
			continue;
		}
		hf_state_lock(s);
		if (hf_state_service(s, name))
			wait = hf_xstrdup("stopping the service here");
		json_array_foreach(json_object_get(sw, "volumes"), k, vn) {
			const struct hf_xvol *v =
			    hf_model_xvol(&s->model, json_string_value(vn));
			int f;

			if (wait || bad || !v)
				continue;
			if (v->attached) {
				wait = hf_xasprintf("volume %s detaching from "
						    "node %s: the standby "
						    "receives what its journal "
						    "holds",
						    v->name, v->attached);
				continue;
			}
			pthread_mutex_lock(&sents_mu);
			f = final_of(v->name, v->epoch);
			pthread_mutex_unlock(&sents_mu);
			if (f < 0)
				wait = hf_xasprintf("volume %s detached: waiting "
						    "for its node to say how its "
						    "stream ended",
						    v->name);
			else if (!f)
				bad = hf_xasprintf(
				    "volume %s detached before its standby had "
				    "every write (its node keeps the journal): "
				    "deploy the service here again to send it "
				    "on, then switch over again",
				    v->name);
		}
		hf_state_unlock(s);
		if (!bad && wait && hf_now_ms() - since > SWITCH_GIVE_UP_MS)
			bad = hf_xasprintf("gave up after %d minutes: %s",
					   SWITCH_GIVE_UP_MS / 60000, wait);
		if (bad) {
			switch_phase(s, name, sw, "failed", bad, true);
		} else if (wait) {
			switch_phase(s, name, sw, "stopping", wait, false);
		} else {
			/* Everything is there: the standby takes over. */
			char *esc = hf_url_escape(name);
			char *path = hf_xasprintf("/v1/dr/standby/%s/promote", esc);
			json_t *b = json_object(), *out = NULL;
			const char *bk = json_string_value(json_object_get(sw, "back"));
			char *why = NULL;
			long status = 0;
			/* This site's copies: the reversed stream's standby. */
			int code;
			json_t *adopt = adopt_begin(s, name, &why, &code);

			if (bk)
				json_object_set_new(b, "back", json_string(bk));
			if (adopt &&
			    hf_remotes_call(s, to, "POST", path, b, &status,
					    &out, &why) == 0 &&
			    status != 200) {
				const char *m = json_string_value(
				    json_object_get(out, "message"));

				why = hf_xasprintf("%s answered %ld: %s", to,
						   status, m ? m : "?");
			}
			if (why) {
				char *msg = hf_xasprintf("the standby did not "
							 "take over yet: %s",
							 why);

				adopt_abort(s, name, adopt);
				/* Refusals end it; an unreachable one is
				 * asked again. */
				switch_phase(s, name, sw,
					     status == 409 || status == 403 ||
						     status == 404
						 ? "failed"
						 : "promoting",
					     msg, status != 0);
				free(msg);
			} else {
				struct hf_ops_err err = {0};
				char *msg = hf_xasprintf(
				    "switchover done: service %s runs on %s%s%s",
				    name, to,
				    json_is_string(json_object_get(
					out, "replicated_to"))
					? ", replicated back here"
					: "",
				    json_is_true(json_object_get(out, "deployed"))
					? ""
					: " (its deploy there failed: see "
					  "there)");

				/*
				 * The data is the standby's now; this site's
				 * copies stay as the reversed stream's
				 * standby replicas.
				 */
				if (hf_ops_dr_adopt(s, name, adopt, "scheduler",
						    &err) &&
				    err.why)
					hf_log("service %s: its volumes here: %s",
					       name, err.why);
				hf_ops_err_release(&err);
				if (hf_ops_dr_switchover(s, name, NULL, false,
							 true, "scheduler", msg,
							 &err))
					hf_log("service %s: %s", name,
					       err.why ? err.why : "?");
				hf_ops_err_release(&err);
				hf_log("service %s: %s", name, msg);
				pthread_mutex_lock(&sents_mu);
				for (size_t q = 0; q < sents.len; q++)
					if (!strcmp(sents.items[q].svc, name)) {
						sent_release(&sents.items[q]);
						sents.items[q] =
						    sents.items[--sents.len];
						break;
					}
				pthread_mutex_unlock(&sents_mu);
				free(msg);
			}
			free(why);
			free(esc);
			free(path);
			json_decref(b);
			json_decref(out);
			json_decref(adopt);
		}
		free(wait);
		free(bad);
	}
	json_decref(all);
}

/* ---- the nodes' orders ------------------------------------------------- */

/*
 * Whether standby x's replica is still a volume's here: a failback's
 * adopted copy between the standby's arrival and its kept volume's end.
 * Listed once, as the volume's, until then.
 */
static bool held_by_xvol(const struct hf_model *m, const struct standby *x)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (v->id && !strcmp(v->id, x->id) &&
		    hf_xvol_replica(v, x->replica))
			return true;
	}
	return false;
}

uint64_t hf_dr_orders(struct hf_srv *s, const struct hf_node *n,
		      struct hf_proto_sync_resp *out)
{
	const struct hf_model *m = &s->model;
	uint64_t d = 0;

	pthread_mutex_lock(&sents_mu);
	/* The primary's side: streams of the volumes attached on n. */
	for (size_t i = 0; sents.len && i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		const struct endpoint *ep = NULL;
		struct sent *x = NULL;

		if (!v->attached || strcmp(v->attached, n->id) || !v->service)
			continue;
		for (size_t k = 0; k < sents.len && !x; k++)
			if (!strcmp(sents.items[k].svc, v->service))
				x = &sents.items[k];
		for (size_t k = 0; x && k < x->eps.len && !ep; k++)
			if (!strcmp(x->eps.items[k].volume, v->name) &&
			    x->eps.items[k].port)
				ep = &x->eps.items[k];
		if (!ep || !x->cert)
			continue;
		d += hf_hash_str(v->name) * 5 + hf_hash_str(ep->address) +
		     hf_hash_str(ep->replica) * 11 + (uint64_t)ep->port * 17 +
		     hf_hash_str(x->cert) + (uint64_t)x->journal_size * 23 +
		     x->block + (uint64_t)x->switching * 29;
		for (size_t k = 0; out && k < out->attachments.len; k++) {
			struct hf_proto_attachment *a = &out->attachments.items[k];

			if (strcmp(a->volume, v->name) != 0 || a->dr ||
			    !a->ticket)
				continue;
			a->dr = hf_xcalloc(1, sizeof(*a->dr));
			a->dr->address = hf_xstrdup(ep->address);
			a->dr->port = ep->port;
			a->dr->replica = hf_xstrdup(ep->replica);
			a->dr->ca = hf_xstrdup(x->ca);
			a->dr->cert = hf_xstrdup(x->cert);
			a->dr->key = hf_xstrdup(x->key);
			a->dr->journal_size = x->journal_size
						  ? x->journal_size
						  : HF_DR_JOURNAL_SIZE;
			a->dr->when_full =
			    hf_xstrdup(x->block ? "block" : "resync");
			/* A switchover's detach waits for the standby. */
			a->dr->drain_ms = x->switching ? SWITCH_DRAIN_MS : 0;
		}
	}
	/* Standby replicas whose standby went: their files are deleted. */
	for (size_t i = 0; i < trash.len; i++) {
		struct hf_proto_replica_ref *ref;

		if (strcmp(trash.items[i].node, n->id) != 0)
			continue;
		d += hf_hash_str(trash.items[i].replica) * 31;
		if (!out)
			continue;
		ref = HF_VEC_PUSH(&out->delete_replicas);
		ref->id = hf_xstrdup(trash.items[i].id);
		ref->replica = hf_xstrdup(trash.items[i].replica);
	}
	/* The standby's side: the replicas n keeps for other sites. */
	for (size_t i = 0; i < standbys.len; i++) {
		const struct standby *x = &standbys.items[i];
		struct hf_proto_held_replica *h;

		if (strcmp(x->node, n->id) != 0 || held_by_xvol(m, x))
			continue;
		d += hf_hash_str(x->replica) * 13 + hf_hash_str(x->id) * 19 +
		     (uint64_t)x->size + (x->grouped ? 7 : 0);
		if (!out)
			continue;
		h = HF_VEC_PUSH(&out->replicas);
		memset(h, 0, sizeof(*h));
		h->volume = hf_xstrdup(x->name);
		h->id = hf_xstrdup(x->id);
		h->replica = hf_xstrdup(x->replica);
		h->key = hf_xstrdup(x->key);
		h->size = x->size;
		h->standby = true;
		if (x->grouped)
			/* Ids' characters only: a hash of the service. */
			h->group = hf_xasprintf("g%016llx",
						(unsigned long long)
						    hf_hash_str(x->svc));
	}
	pthread_mutex_unlock(&sents_mu);
	return d;
}

/* ---- shipping ---------------------------------------------------------- */

static struct hf_ticker dr_ticker = HF_TICKER_INIT;

struct ship {
	char *svc, *to, *target, *vols;
	json_t *payload; /* NULL: nothing to send now */
};

/* The standby's answer's "volumes" into x->eps; true when they changed. */
static bool take_endpoints(struct sent *x, const json_t *out)
{
	const json_t *a = json_object_get(out, "volumes"), *e;
	HF_VEC(struct endpoint) old = {0};
	bool changed, complete = true;
	size_t i;

	old.items = x->eps.items;
	old.len = x->eps.len;
	old.cap = x->eps.cap;
	memset(&x->eps, 0, sizeof(x->eps));
	json_array_foreach(a, i, e) {
		const char *v = json_string_value(json_object_get(e, "name"));
		const char *r = json_string_value(json_object_get(e, "replica"));
		const char *ad = json_string_value(json_object_get(e, "address"));
		json_int_t port = json_integer_value(json_object_get(e, "port"));
		struct endpoint *p;

		if (!v || !r)
			continue;
		p = HF_VEC_PUSH(&x->eps);
		p->volume = hf_xstrdup(v);
		p->replica = hf_xstrdup(r);
		p->address = ad ? hf_xstrdup(ad) : NULL;
		p->port = ad && port > 0 && port <= 65535 ? port : 0;
		complete = complete && p->port;
	}
	changed = old.len != x->eps.len;
	for (i = 0; !changed && i < old.len; i++) {
		const struct endpoint *o = &old.items[i], *n = &x->eps.items[i];

		changed = strcmp(o->volume, n->volume) ||
			  strcmp(o->replica, n->replica) || o->port != n->port ||
			  !o->address != !n->address ||
			  (o->address && strcmp(o->address, n->address));
	}
	for (i = 0; i < old.len; i++) {
		free(old.items[i].volume);
		free(old.items[i].replica);
		free(old.items[i].address);
	}
	HF_VEC_FREE(&old);
	x->complete = complete;
	return changed;
}

/* ---- the standby's replicas -------------------------------------------- */

/*
 * The standby replicas held here, from the "/standby/" records (lock
 * held): true when the set changed (the nodes' orders change).
 */
static bool standbys_load(struct hf_srv *s)
{
	json_t *all = NULL, *gone = NULL, *e, *v;
	uint64_t sig = 0;
	size_t i, k;

	if (hf_state_list_records(s, "/standby/", &all) ||
	    hf_state_list_records(s, "/standby-trash/", &gone)) {
		json_decref(all);
		json_decref(gone);
		return false;
	}
	json_array_foreach(gone, i, e)
		sig += hf_hash_str(json_string_value(
			   json_object_get(e, "replica"))) *
		       5;
	json_array_foreach(all, i, e)
		json_array_foreach(json_object_get(e, "volumes"), k, v) {
			const char *node =
			    json_string_value(json_object_get(v, "node"));
			const char *rep =
			    json_string_value(json_object_get(v, "replica"));

			if (node && rep)
				sig += hf_hash_str(node) * 3 + hf_hash_str(rep) +
				       (uint64_t)json_integer_value(
					   json_object_get(v, "size"));
		}
	pthread_mutex_lock(&sents_mu);
	if (sig == standbys_sig && (sig || (!standbys.len && !trash.len))) {
		pthread_mutex_unlock(&sents_mu);
		json_decref(all);
		json_decref(gone);
		return false;
	}
	for (i = 0; i < standbys.len; i++)
		standby_release(&standbys.items[i]);
	standbys.len = 0;
	for (i = 0; i < trash.len; i++) {
		free(trash.items[i].node);
		free(trash.items[i].id);
		free(trash.items[i].replica);
	}
	trash.len = 0;
	json_array_foreach(gone, i, e) {
		const char *f[3] = {
		    json_string_value(json_object_get(e, "node")),
		    json_string_value(json_object_get(e, "id")),
		    json_string_value(json_object_get(e, "replica"))};
		struct trash *t;

		if (!f[0] || !f[1] || !f[2])
			continue;
		t = HF_VEC_PUSH(&trash);
		t->node = hf_xstrdup(f[0]);
		t->id = hf_xstrdup(f[1]);
		t->replica = hf_xstrdup(f[2]);
	}
	json_decref(gone);
	json_array_foreach(all, i, e)
		json_array_foreach(json_object_get(e, "volumes"), k, v) {
			const char *f[6] = {
			    json_string_value(json_object_get(e, "service")),
			    json_string_value(json_object_get(v, "name")),
			    json_string_value(json_object_get(v, "id")),
			    json_string_value(json_object_get(v, "key")),
			    json_string_value(json_object_get(v, "node")),
			    json_string_value(json_object_get(v, "replica"))};
			struct standby *x;
			bool ok = true;

			for (size_t j = 0; j < 6; j++)
				ok = ok && f[j];
			if (!ok)
				continue;
			x = HF_VEC_PUSH(&standbys);
			x->svc = hf_xstrdup(f[0]);
			x->name = hf_xstrdup(f[1]);
			x->id = hf_xstrdup(f[2]);
			x->key = hf_xstrdup(f[3]);
			x->node = hf_xstrdup(f[4]);
			x->replica = hf_xstrdup(f[5]);
			x->size = json_integer_value(json_object_get(v, "size"));
			x->grouped =
			    json_array_size(json_object_get(e, "volumes")) > 1;
		}
	standbys_sig = sig;
	pthread_mutex_unlock(&sents_mu);
	json_decref(all);
	return true;
}

/*
 * The fencing rule's other half: the standby answered that the service
 * runs there (it failed over, or a switchover moved it). This cluster is
 * the old primary: its copy stops at once, its volumes kept, and the
 * record says so until `dr failback` makes this cluster the standby.
 */
static void fence(struct hf_srv *s, const char *svc, const char *to)
{
	struct hf_ops_err err = {0};
	struct hf_ops_removed removed = {0};
	char *why = hf_xasprintf("service %s runs on remote cluster %s now (a "
				 "failover there): stopped here, its volumes "
				 "kept; `dr failback` makes this cluster its "
				 "standby",
				 svc, to);
	json_t *f = json_pack("{s:s, s:I, s:s}", "by", to, "at",
			      (json_int_t)hf_now_ms(), "message", why);

	hf_log("service %s: %s", svc, why);
	if (hf_ops_dr_set(s, svc, "fenced", f, "scheduler", why, &err))
		hf_log("service %s: %s", svc, err.why ? err.why : "?");
	hf_ops_err_release(&err);
	if (hf_ops_remove(s, svc, false, &removed, &err) &&
	    err.why)
		hf_log("service %s: cannot stop it here: %s", svc, err.why);
	hf_ops_removed_release(&removed);
	hf_ops_err_release(&err);
	json_decref(f);
	free(why);
}

void hf_dr_failback_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	const char *who = req->principal ? req->principal : "operator";
	struct hf_ops_err err = {0};
	char *key = hf_state_key("/dr/%s", name, NULL), *why = NULL;
	char *to = NULL, *esc, *path;
	json_t *body = NULL, *rec = NULL, *out = NULL, *b, *adopt = NULL;
	struct hf_service *svc;
	long status = 0;
	bool running, stopping;
	int rc, code;

	if (req->body_len && hf_http_body_json(req, resp, &body))
		goto out;
	if (json_object_get(body, "back") &&
	    !json_is_string(json_object_get(body, "back"))) {
		hf_http_error(resp, HF_EINVAL,
			      "back: the name the remote cluster knows this "
			      "one by (its `remote add`)");
		goto out;
	}
	hf_state_lock(s);
	rc = hf_state_get_record(s, key, &rec);
	svc = hf_state_service(s, name);
	running = svc != NULL;
	stopping = svc && svc->removing;
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc == HF_ENOTFOUND ? rc : HF_EUNAVAIL,
			      "service '%s' was not replicated from here to a "
			      "remote cluster (dr status)",
			      name);
		goto out;
	}
	if (running && stopping &&
	    json_is_object(json_object_get(rec, "fenced"))) {
		/* The fenced copy stops; its volumes are in use until then. */
		hf_http_error(resp, HF_EUNAVAIL,
			      "service '%s' is still stopping here after the "
			      "fence (its tasks end and its volumes detach "
			      "first): try again in a few seconds",
			      name);
		goto out;
	}
	if (running) {
		hf_http_error(resp, HF_ECONFLICT,
			      "service '%s' runs here: failback is for the old "
			      "primary the standby took over from (`dr "
			      "switchover` moves a running service)",
			      name);
		goto out;
	}
	to = hf_xstrdup(json_string_value(json_object_get(rec, "to")));
	/*
	 * This cluster's copies become the standby replicas, so the new
	 * primary's stream sends only what differs: said before the new
	 * primary is asked, as its standby configuration may come at once.
	 */
	if (!(adopt = adopt_begin(s, name, &why, &code))) {
		hf_http_error(resp, code, "%s", why);
		goto out;
	}
	/* The new primary replicates the service here. */
	b = json_object();
	if (json_is_string(json_object_get(body, "back")))
		json_object_set(b, "back", json_object_get(body, "back"));
	esc = hf_url_escape(name);
	path = hf_xasprintf("/v1/dr/failback/%s", esc);
	if (hf_remotes_call(s, to, "POST", path, b, &status, &out, &why) == 0 &&
	    status != 200) {
		const char *m = json_string_value(json_object_get(out, "message"));

		why = hf_xasprintf("%s answered %ld: %s", to, status,
				   m ? m : "?");
	}
	free(esc);
	free(path);
	json_decref(b);
	if (why) {
		adopt_abort(s, name, adopt);
		hf_http_error(resp, status == 409 || status == 404
					? HF_ECONFLICT
					: HF_EUNAVAIL,
			      "%s", why);
		goto out;
	}
	/*
	 * Its volumes here go, but not the adopted replicas' files: the new
	 * primary's stream sends them only what differs.
	 */
	if (hf_ops_dr_adopt(s, name, adopt, who, &err) && err.why)
		hf_log("service %s: its volumes here: %s", name, err.why);
	hf_ops_err_release(&err);
	{
		char *msg = hf_xasprintf("failback: this cluster is the "
					 "standby of service %s on %s now",
					 name, to);

		rc = hf_ops_dr_switchover(s, name, NULL, false, true, who, msg,
					  &err);
		free(msg);
	}
	if (rc) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s, s:s, s:O?}", "service", name,
			       "role", "standby", "from", to, "replicated_to",
			       json_object_get(out, "replicated_to")));
out:
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(rec);
	json_decref(out);
	json_decref(adopt);
	free(key);
	free(to);
	free(why);
}

void hf_dr_reverse_handler(void *ctx, const struct hf_http_req *req,
			   struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "svc");
	struct hf_ops_err err = {0};
	struct hf_ops_dr_journal j = {0};
	json_t *body = NULL, *r = NULL;
	char *back = NULL, *rkey = NULL;
	bool running, updated;
	int rc;

	if (req->body_len && hf_http_body_json(req, resp, &body))
		goto out;
	hf_state_lock(s);
	running = hf_state_service(s, name) != NULL;
	if (json_is_string(json_object_get(body, "back")))
		back = hf_xstrdup(
		    json_string_value(json_object_get(body, "back")));
	else
		back = only_remote(s);
	if (back) {
		rkey = hf_state_key("/remotes/%s", back, NULL);
		if (hf_state_get_record(s, rkey, &r)) {
			free(back);
			back = NULL;
		}
	}
	hf_state_unlock(s);
	if (!running) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "service '%s' does not run here", name);
		goto out;
	}
	if (!back) {
		hf_http_error(resp, HF_ECONFLICT,
			      "name the remote cluster to replicate service "
			      "'%s' to (this cluster has none by that name, "
			      "or several: back)",
			      name);
		goto out;
	}
	if ((rc = hf_ops_dr_enable(s, name, back, &j, &updated, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	hf_log("service %s: replicated to remote cluster %s, at %s's request "
	       "(failback)",
	       name, back, req->principal ? req->principal : "?");
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s, s:s}", "service", name, "role",
			       "primary", "replicated_to", back));
out:
	hf_ops_err_release(&err);
	json_decref(body);
	json_decref(r);
	free(back);
	free(rkey);
}

/* Whether a volume of service svc is attached somewhere. */
static bool attached_volumes(const struct hf_model *m, const char *svc)
{
	for (size_t i = 0; i < m->xvols.len; i++)
		if (m->xvols.items[i]->service && m->xvols.items[i]->attached &&
		    !strcmp(m->xvols.items[i]->service, svc))
			return true;
	return false;
}

static void ship_pass(struct hf_srv *s)
{
	HF_VEC(struct ship) jobs = {0};
	json_t *all = NULL, *e;
	int64_t now = hf_now_ms();
	size_t i;

	hf_state_lock(s);
	if (s->leading && standbys_load(s))
		hf_sched_changed(s, true);
	if (!s->leading || hf_state_list_records(s, "/dr/", &all)) {
		hf_state_unlock(s);
		json_decref(all);
		return;
	}
	pthread_mutex_lock(&sents_mu);
	for (i = 0; i < sents.len; i++)
		sents.items[i].seen = false;
	json_array_foreach(all, i, e) {
		const char *name = json_string_value(json_object_get(e, "service"));
		const char *to = json_string_value(json_object_get(e, "to"));
		struct hf_service *svc = name ? hf_state_service(s, name) : NULL;
		struct hf_config *cfg = svc ? hf_state_target(svc) : NULL;
		struct sent *x;
		struct ship *j;
		json_t *vols;
		char *ids;

		if (!name || !to)
			continue;
		if (!cfg || svc->removing) {
			/*
			 * Removed (or switching over): its streams go on while
			 * its volumes are attached, so that each detach sends
			 * the standby what the journal holds.
			 */
			for (size_t k = 0; k < sents.len; k++)
				if (!strcmp(sents.items[k].svc, name) &&
				    (json_is_object(json_object_get(
					 e, "switchover")) ||
				     attached_volumes(&s->model, name)))
					sents.items[k].seen = true;
			continue;
		}
		x = sent_of(name);
		x->seen = true;
		set_str(&x->to, to);
		{
			json_int_t js = json_integer_value(
			    json_object_get(e, "journal_size"));
			const char *wf = json_string_value(
			    json_object_get(e, "when_full"));
			int64_t size = js ? js : HF_DR_JOURNAL_SIZE;
			bool block = wf && !strcmp(wf, "block");

			bool sw = json_is_object(json_object_get(e, "switchover"));

			if (x->switching != sw) {
				x->switching = sw;
				hf_sched_changed(s, true);
			}
			/* Its streams' attachments change with them. */
			if (x->journal_size != size || x->block != block) {
				if (x->journal_size)
					hf_sched_changed(s, true);
				x->journal_size = size;
				x->block = block;
			}
		}
		set_str(&x->target, cfg->id);
		vols = volumes_json(&s->model, name, &ids);
		/*
		 * Again when the target, the volumes or the remote changed,
		 * while a volume's standby has no endpoint yet (every few
		 * seconds), and at least every RESEND_MS.
		 */
		if ((x->config && !strcmp(x->config, cfg->id) &&
		     now - x->at < RESEND_MS && x->vols &&
		     !strcmp(x->vols, ids) && x->complete) ||
		    (x->config && !x->complete && x->vols &&
		     !strcmp(x->vols, ids) && now - x->tried < 3000) ||
		    /* A failing remote is tried again after a while. */
		    (x->error && now - x->tried < 5000)) {
			json_decref(vols);
			free(ids);
			continue;
		}
		j = HF_VEC_PUSH(&jobs);
		j->svc = hf_xstrdup(name);
		j->to = hf_xstrdup(to);
		j->target = hf_xstrdup(cfg->id);
		j->vols = ids;
		j->payload = config_json(svc, cfg);
		json_object_set_new(j->payload, "volumes", vols);
		json_object_set_new(j->payload, "cluster",
				    json_string(s->cluster_id ? s->cluster_id
							      : ""));
	}
	for (i = 0; i < sents.len;) {
		if (sents.items[i].seen) {
			i++;
			continue;
		}
		sent_release(&sents.items[i]);
		sents.items[i] = sents.items[--sents.len];
	}
	pthread_mutex_unlock(&sents_mu);
	hf_state_unlock(s);
	json_decref(all);
	for (i = 0; i < jobs.len; i++) {
		struct ship *j = &jobs.items[i];
		char *esc = hf_url_escape(j->svc);
		char *path = hf_xasprintf("/v1/dr/standby/%s", esc);
		char *why = NULL, *said = NULL;
		char *ca = NULL, *cert = NULL, *key = NULL;
		json_t *out = NULL;
		long status = 0;
		bool moved = false;
		struct sent *x;

		if (!hf_ticker_stopping(&dr_ticker) &&
		    hf_remotes_call(s, j->to, "PUT", path, j->payload, &status,
				    &out, &why) == 0 &&
		    status != 200) {
			const char *m =
			    json_string_value(json_object_get(out, "message"));

			why = hf_xasprintf("%s answered %ld: %s", j->to, status,
					   m ? m : "?");
		}
		if (!why && hf_remotes_tls(s, j->to, &ca, &cert, &key))
			why = hf_xasprintf("remote cluster %s is gone", j->to);
		if (status == 409 &&
		    json_is_string(json_object_get(out, "role")) &&
		    !strcmp(json_string_value(json_object_get(out, "role")),
			    "primary"))
			fence(s, j->svc, j->to);
		pthread_mutex_lock(&sents_mu);
		x = sent_of(j->svc);
		x->seen = true;
		x->tried = hf_now_ms();
		if (!why) {
			if (!x->config || strcmp(x->config, j->target))
				said = hf_xasprintf("configuration %s is on %s",
						    j->target, j->to);
			set_str(&x->config, j->target);
			set_str(&x->vols, j->vols);
			x->at = x->tried;
			set_str(&x->error, NULL);
			moved = take_endpoints(x, out);
			moved = moved || !x->cert || strcmp(x->cert, cert) ||
				strcmp(x->ca, ca) || strcmp(x->key, key);
			free(x->ca);
			free(x->cert);
			if (x->key)
				explicit_bzero(x->key, strlen(x->key));
			free(x->key);
			x->ca = ca;
			x->cert = cert;
			x->key = key;
			ca = cert = key = NULL;
		} else if (!x->error || strcmp(x->error, why)) {
			said = hf_xasprintf("configuration %s not sent to %s: "
					    "%s",
					    j->target, j->to, why);
			set_str(&x->error, why);
		}
		pthread_mutex_unlock(&sents_mu);
		free(ca);
		free(cert);
		if (key)
			explicit_bzero(key, strlen(key));
		free(key);
		if (moved) {
			/* The volumes' streams go to these standbys now. */
			hf_state_lock(s);
			if (s->leading)
				hf_sched_changed(s, true);
			hf_state_unlock(s);
		}
		if (said) {
			hf_log("service %s: %s", j->svc, said);
			hf_state_lock(s);
			if (s->leading)
				hf_event(s, "scheduler", j->svc, "dr", j->svc,
					 NULL, why ? "behind" : "replicated",
					 said);
			hf_state_unlock(s);
		}
		free(said);
		free(why);
		free(esc);
		free(path);
		json_decref(out);
		free(j->svc);
		free(j->to);
		free(j->target);
		free(j->vols);
		json_decref(j->payload);
	}
	HF_VEC_FREE(&jobs);
}

static void dr_pass(void *arg)
{
	ship_pass(arg);
	switch_pass(arg);
}

void hf_dr_start(struct hf_srv *s)
{
	dr_ticker.name = "the disaster recovery thread";
	dr_ticker.without = "no configuration is sent to a standby";
	dr_ticker.every_ms = SHIP_EVERY_MS;
	hf_ticker_start(&dr_ticker, dr_pass, s);
}

void hf_dr_stop(void)
{
	hf_ticker_stop(&dr_ticker);
	pthread_mutex_lock(&sents_mu);
	for (size_t i = 0; i < sents.len; i++)
		sent_release(&sents.items[i]);
	sents.len = 0;
	pthread_mutex_unlock(&sents_mu);
}

void hf_dr_stream_metrics(struct hf_srv *s, struct hf_buf *b)
{
	static const char *const names[] = {
	    "holdfast_dr_lag_seconds", "holdfast_dr_lag_bytes",
	    "holdfast_dr_journal_bytes", "holdfast_dr_link_up",
	    "holdfast_dr_applied_timestamp_seconds", "holdfast_dr_sent_bytes",
	    "holdfast_dr_copy_same_bytes"};
	static const char *const helps[] = {
	    "How old the oldest write the standby may lack is (the current "
	    "RPO).",
	    "Bytes written here that the standby may lack.",
	    "Bytes the volume's DR journal holds.",
	    "Whether the volume's stream to its standby is connected.",
	    "When the newest write the standby holds at its last mark was "
	    "made.",
	    "Bytes this attachment sent to the standby (records and copied "
	    "chunks).",
	    "Bytes of this attachment's copies the standby held already "
	    "(compared by digest, not sent)."};
	const struct hf_model *m = &s->model;

	for (size_t k = 0; k < HF_ARRAY_LEN(names); k++) {
		hf_buf_addf(b, "# HELP %s %s\n# TYPE %s gauge\n", names[k],
			    helps[k], names[k]);
		for (size_t i = 0; i < m->xvols.len; i++) {
			const struct hf_xvol *v = m->xvols.items[i];
			const struct hf_node *n =
			    v->attached ? hf_model_node(m, v->attached) : NULL;
			const struct hf_node_volrep *r =
			    n ? hf_model_node_volrep(n, v->name) : NULL;
			const struct hf_node_dr *d = r ? &r->dr : NULL;

			if (!d || !d->has || !v->service)
				continue;
			hf_buf_addf(b, "%s{service=\"", names[k]);
			hf_metrics_label(b, v->service);
			hf_buf_adds(b, "\",volume=\"");
			hf_metrics_label(b, v->name);
			if (k == 0)
				hf_buf_addf(b, "\"} %.3f\n", d->lag_seconds);
			else if (k == 1)
				hf_buf_addf(b, "\"} %lld\n",
					    (long long)d->lag_bytes);
			else if (k == 2)
				hf_buf_addf(b, "\"} %lld\n",
					    (long long)d->journal_bytes);
			else if (k == 3)
				hf_buf_addf(b, "\"} %d\n", d->link_up);
			else if (k == 4)
				hf_buf_addf(b, "\"} %.3f\n",
					    (double)d->applied_time / 1e9);
			else
				hf_buf_addf(b, "\"} %lld\n",
					    (long long)(k == 5 ? d->shipped
							       : d->copy_same));
		}
	}
}

void hf_dr_metrics(struct hf_buf *b)
{
	pthread_mutex_lock(&sents_mu);
	hf_buf_adds(b, "# HELP holdfast_dr_config_behind Whether the standby "
		       "lacks the service's target configuration.\n"
		       "# TYPE holdfast_dr_config_behind gauge\n");
	for (size_t i = 0; i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		hf_buf_adds(b, "holdfast_dr_config_behind{service=\"");
		hf_metrics_label(b, x->svc);
		hf_buf_adds(b, "\",remote=\"");
		hf_metrics_label(b, x->to ? x->to : "");
		hf_buf_addf(b, "\"} %d\n",
			    !x->config || !x->target ||
				strcmp(x->config, x->target) != 0);
	}
	hf_buf_adds(b, "# HELP holdfast_dr_config_sent_timestamp_seconds When "
		       "the standby last acknowledged the configuration.\n"
		       "# TYPE holdfast_dr_config_sent_timestamp_seconds "
		       "gauge\n");
	for (size_t i = 0; i < sents.len; i++) {
		const struct sent *x = &sents.items[i];

		if (!x->at)
			continue;
		hf_buf_adds(b, "holdfast_dr_config_sent_timestamp_seconds{"
			       "service=\"");
		hf_metrics_label(b, x->svc);
		hf_buf_adds(b, "\",remote=\"");
		hf_metrics_label(b, x->to ? x->to : "");
		hf_buf_addf(b, "\"} %.3f\n", (double)x->at / 1000);
	}
	pthread_mutex_unlock(&sents_mu);
}
