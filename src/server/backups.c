/*
 * backups.c - volume backups to an S3 store, run by a node
 * (docs/design/volumes.md §16): POST and GET
 * /v1/external-volumes/{name}/backups.
 *
 * A backup is a snapshot ("backup-<id>"), then `holdfast-volume backup`
 * on a node that holds it (the attached one when it does: its disk, no
 * network), started through the node's agent API with the credential's
 * keys in its environment alone. The store's manifests are the catalogue
 * (so another cluster with the credential sees them); the server keeps
 * the volume's last completed backup, whose snapshot stays as the next
 * backup's base (incremental), and the jobs under way in memory. A job's
 * end is seen when its progress is asked for (GET, `volume backup
 * --wait`, the next backup): then the record moves on and the old base
 * snapshot goes, or, for a failed job, its snapshot goes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/err.h"
#include "common/log.h"
#include "server/backups.h"
#include "server/creds.h"
#include "server/events.h"
#include "server/ops.h"
#include "server/state.h"
#include "spec/spec.h"
#include "volume/s3.h"

#define SNAP_WAIT_MS 60000
#define AGENT_TIMEOUT_MS 10000
#define DRIVE_MS 1000 /* between passes of the backups thread */
#define RESTART_MS 5000 /* between attempts to start a lost one again */

/* What the server knows of a backup under way beyond its record. */
struct job {
	char *volume, *id, *node, *snap_name, *to, *base;
	int64_t started;  /* unix ms */
	json_t *last;     /* the agent's last word on it */
	bool over;        /* done or failed, and acted on */
	bool busy;        /* a thread asks its node now */
	int64_t next_post; /* monotonic ms: post it again (lost) from then */
	unsigned posts;   /* times it was started again */
	unsigned fails;   /* attempts to start it again since the last one */
};

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static HF_VEC(struct job) jobs;
/* Volumes whose store is being pruned (retention): no backup starts. */
static struct hf_strlist pruning;

static void job_release(struct job *j)
{
	free(j->volume);
	free(j->id);
	free(j->node);
	free(j->snap_name);
	free(j->to);
	free(j->base);
	json_decref(j->last);
}

static json_t *job_json(const struct job *j)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I}", "backup", j->id,
			      "node", j->node ? j->node : "", "snapshot",
			      j->snap_name, "to", j->to, "base", j->base,
			      "started", (json_int_t)j->started);
	const char *keys[] = {"state", "total", "done", "uploaded", "stored",
			      "reused", "present", "message"};

	for (size_t i = 0; i < HF_ARRAY_LEN(keys); i++) {
		json_t *v = j->last ? json_object_get(j->last, keys[i]) : NULL;

		if (v)
			json_object_set(o, keys[i], v);
		else
			json_object_set_new(o, keys[i],
					    i == 0 ? json_string("starting")
						   : json_null());
	}
	if (j->posts)
		json_object_set_new(o, "restarts", json_integer(j->posts));
	return o;
}

/* The job of backup id of volume (jobs_mu held), or NULL. */
static struct job *job_find(const char *volume, const char *id)
{
	for (size_t i = 0; i < jobs.len; i++)
		if (!strcmp(jobs.items[i].volume, volume) &&
		    !strcmp(jobs.items[i].id, id))
			return &jobs.items[i];
	return NULL;
}

/* ---- where a backup runs ---------------------------------------------- */

/* A node to run a backup on, and what it is asked. */
struct placed {
	char *node, *api, *key; /* the node's agent API */
	char *replica;		/* the replica's data file there */
	char *snap_id;
	char *base, *base_snap; /* incremental on backup base */
	char *volume_id;
	char *key_name, *sealed_key; /* a named key's volume: its data key */
	bool secure;
};

static void placed_release(struct placed *p)
{
	free(p->node);
	free(p->api);
	free(p->key);
	free(p->replica);
	free(p->snap_id);
	free(p->base);
	free(p->base_snap);
	free(p->volume_id);
	free(p->key_name);
	free(p->sealed_key);
	memset(p, 0, sizeof(*p));
}

/*
 * A connected node with a pool that holds snapshot snap (by name) of
 * volume: the attached one first (its disk, no network), then prefer,
 * then any. The base is the last backup to the same place when its
 * snapshot is on that replica too. Returns 0, or an HF_E* code with *why.
 */
static int place(struct hf_srv *s, const char *volume, const char *snap,
		 const char *to, const char *prefer, struct placed *p,
		 char **why)
{
	const struct hf_xvol *v;
	const struct hf_xsnap *sn;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	hf_state_lock(s);
	v = hf_model_xvol(&s->model, volume);
	sn = v ? hf_xvol_snap(v, snap, false) : NULL;
	if (!sn || sn->state != HF_XSNAP_READY) {
		*why = hf_xasprintf("the backup's snapshot %s of volume %s is %s",
				    snap, volume,
				    sn ? hf_xsnap_state_name(sn->state)
				       : "gone");
		rc = HF_ECONFLICT;
		goto out;
	}
	for (int pass = 0; pass < 3 && !p->node; pass++)
		for (size_t i = 0; i < sn->replicas.len && !p->node; i++) {
			const struct hf_xrep *r =
			    hf_xvol_replica(v, sn->replicas.items[i]);
			struct hf_node *n = r ? hf_state_node(s, r->node) : NULL;

			if (!n || !n->link->api || !n->storage ||
			    !n->storage->pool ||
			    (pass == 0 && (!v->attached ||
					   strcmp(v->attached, r->node))) ||
			    (pass == 1 && (!prefer || strcmp(prefer, r->node))))
				continue;
			p->node = hf_xstrdup(n->id);
			p->api = hf_xstrdup(n->link->api);
			p->key = n->link->api_key ? hf_xstrdup(n->link->api_key)
						  : NULL;
			p->replica = hf_xasprintf("%s/replicas/%s/%s/data",
						  n->storage->pool, v->id,
						  r->id);
			p->snap_id = hf_xstrdup(sn->id);
			/* The last backup's snapshot, where it was kept
			 * here: only what changed since is read. */
			if (v->bk_last && v->bk_to && v->bk_snap &&
			    !strcmp(v->bk_to, to)) {
				const struct hf_xsnap *b =
				    hf_xvol_snap(v, v->bk_snap, true);

				if (b && b->state == HF_XSNAP_READY &&
				    hf_strlist_has(&b->replicas, r->id)) {
					p->base = hf_xstrdup(v->bk_last);
					p->base_snap = hf_xstrdup(b->id);
				}
			}
		}
	p->secure = v->secure;
	p->volume_id = hf_xstrdup(v->id);
	/* Sealed, it can go to the store: only the named key opens it. */
	if (v->secure && v->key_name && v->data_key) {
		p->key_name = hf_xstrdup(v->key_name);
		p->sealed_key = hf_xstrdup(v->data_key);
	}
	if (!p->node) {
		*why = hf_xstrdup("no node that holds the snapshot is "
				  "connected");
		rc = HF_EUNAVAIL;
	}
out:
	hf_state_unlock(s);
	return rc;
}

/*
 * Asks p's node to run backup id (again: it resumes). Returns 0 when it
 * runs, or -1 with *why.
 */
static int post(const struct placed *p, const char *volume, const char *id,
		const char *to, const struct hf_cred *cred, char **why)
{
	json_t *ab, *aout = NULL;
	char *aerr = NULL;
	long status = 0;
	int rc;

	ab = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
		       "id", id, "replica", p->replica, "snapshot", p->snap_id,
		       "volume", volume, "to", to, "endpoint", cred->endpoint,
		       "region", cred->region, "access_key", cred->access_key,
		       "secret_key", cred->secret_key, "encrypted", p->secure);
	if (cred->ca)
		json_object_set_new(ab, "ca", json_string(cred->ca));
	json_object_set_new(ab, "volume_id", json_string(p->volume_id));
	if (p->key_name) {
		json_object_set_new(ab, "key_name", json_string(p->key_name));
		json_object_set_new(ab, "sealed_key",
				    json_string(p->sealed_key));
	}
	if (p->base) {
		json_object_set_new(ab, "base", json_string(p->base));
		json_object_set_new(ab, "base_snapshot",
				    json_string(p->base_snap));
	}
	rc = hf_httpc_json(p->api, "POST", "/v1/agent/backups", p->key, ab,
			   AGENT_TIMEOUT_MS, &status, &aout, &aerr);
	if (rc || status != 202) {
		const char *m = json_string_value(json_object_get(aout, "message"));

		*why = hf_xasprintf("node %s did not start the backup: %s",
				    p->node, aerr ? aerr : m ? m : "an error");
		rc = -1;
	}
	json_object_del(ab, "secret_key");
	json_decref(ab);
	json_decref(aout);
	free(aerr);
	return rc;
}

/* The snapshot's state, by name ("gone" when there is none). */
static const char *snap_state(struct hf_srv *s, const char *volume,
			      const char *name, char **id, char **why)
{
	const struct hf_xvol *v;
	const struct hf_xsnap *sn;
	const char *st = "gone";

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, volume);
	sn = v ? hf_xvol_snap(v, name, false) : NULL;
	if (sn) {
		st = hf_xsnap_state_name(sn->state);
		if (id && !*id)
			*id = hf_xstrdup(sn->id);
		if (why && sn->why && !*why)
			*why = hf_xstrdup(sn->why);
	}
	hf_state_unlock(s);
	return st;
}

/*
 * Backup id of volume ends without completing: no longer under way, and
 * its snapshot goes. Returns 0, or an HF_E* code (it is tried again).
 */
static int end_job(struct hf_srv *s, const char *volume, const char *id,
		   const char *snap, const char *why)
{
	struct hf_ops_err e = {0};
	bool changed;
	int rc = hf_ops_xvol_backup_end(s, volume, id, why, false, &e);

	hf_ops_err_release(&e);
	if (rc == 0 || rc == HF_ENOTFOUND) {
		hf_ops_xvol_snapshot_delete(s, volume, snap, &changed, &e);
		hf_ops_err_release(&e);
		rc = 0;
	}
	return rc;
}

/* ---- following a backup ------------------------------------------------- */

/*
 * Asks the job's node how it goes (jobs_mu not held; copy holds the
 * job's strings) and acts on its end once: *last gets the node's word,
 * *over whether it ended and was acted on, *lost whether the node has
 * no such backup running (it is to be started again).
 */
static void poll_job(struct hf_srv *s, const struct job *copy, json_t **last,
		     bool *over, bool *lost)
{
	char *path = hf_xasprintf("/v1/agent/backups/%s", copy->id), *err = NULL;
	char *api = NULL, *key = NULL;
	json_t *st = NULL;
	long status = 0;
	const char *state;
	struct hf_node *n;

	*last = NULL;
	*over = *lost = false;
	hf_state_lock(s);
	n = copy->node ? hf_state_node(s, copy->node) : NULL;
	if (n && n->link->api) {
		api = hf_xstrdup(n->link->api);
		key = n->link->api_key ? hf_xstrdup(n->link->api_key) : NULL;
	}
	hf_state_unlock(s);
	if (!api) {
		*lost = !n; /* a node that left: elsewhere */
		goto out;
	}
	if (hf_httpc_json(api, "GET", path, key, NULL, AGENT_TIMEOUT_MS,
			  &status, &st, &err) != 0)
		goto out; /* asked again later */
	if (status == 404) {
		*lost = true;
		goto out;
	}
	if (status != 200)
		goto out;
	state = json_string_value(json_object_get(st, "state"));
	if (state && strcmp(state, "lost") == 0) {
		*lost = true;
	} else if (state && strcmp(state, "done") == 0) {
		struct hf_ops_err e = {0};
		char *snap_id = NULL;

		/* Its snapshot deleted meanwhile: the next one is full. */
		snap_state(s, copy->volume, copy->snap_name, &snap_id, NULL);
		if (hf_ops_xvol_backup_done(s, copy->volume, copy->id, snap_id,
					    copy->to, &e) == 0)
			*over = true;
		hf_log("volume %s: backup %s done (%s)", copy->volume,
		       copy->id, copy->to);
		hf_ops_err_release(&e);
		free(snap_id);
	} else if (state && strcmp(state, "failed") == 0) {
		const char *m = json_string_value(json_object_get(st, "message"));

		hf_log("volume %s: backup %s failed: %s", copy->volume,
		       copy->id, m ? m : "?");
		*over = end_job(s, copy->volume, copy->id, copy->snap_name,
				m ? m : "failed") == 0;
	}
	*last = st;
	st = NULL;
out:
	json_decref(st);
	free(err);
	free(path);
	free(api);
	free(key);
}

/*
 * A backup its node lost (the agent's data went, the process was killed,
 * the node left): started again with the same id on a node that holds
 * its snapshot; what the store already holds is not sent again.
 */
static void restart_job(struct hf_srv *s, const struct job *copy,
			char **node_out)
{
	struct hf_xbk_run run = {0};
	struct hf_cred cred = {0};
	struct placed p;
	struct hf_ops_err e = {0};
	char *why = NULL, *cname = NULL;
	const struct hf_xvol *v;
	int rc;

	*node_out = NULL;
	hf_state_lock(s);
	v = hf_model_xvol(&s->model, copy->volume);
	if (v && v->bk_run.id && !strcmp(v->bk_run.id, copy->id))
		cname = hf_xstrdup(v->bk_run.cred);
	hf_state_unlock(s);
	if (!cname)
		return;
	if ((rc = hf_cred_s3(s, cname, &cred, &why)) != 0) {
		if (rc == HF_ENOTFOUND)
			end_job(s, copy->volume, copy->id, copy->snap_name, why);
		goto out;
	}
	rc = place(s, copy->volume, copy->snap_name, copy->to, copy->node, &p,
		   &why);
	if (rc == HF_ECONFLICT) {
		/* Its snapshot is gone: it cannot go on. */
		end_job(s, copy->volume, copy->id, copy->snap_name, why);
		goto out;
	}
	if (rc || post(&p, copy->volume, copy->id, copy->to, &cred, &why)) {
		hf_log("volume %s: backup %s waits to run again: %s",
		       copy->volume, copy->id, why);
		placed_release(&p);
		goto out;
	}
	run.id = copy->id;
	run.snap = copy->snap_name;
	run.to = copy->to;
	run.cred = cname;
	run.node = p.node;
	run.started = copy->started;
	hf_ops_xvol_backup_run(s, copy->volume, &run, false, "scheduler", &e);
	hf_log("volume %s: backup %s started again on node %s (it resumes)",
	       copy->volume, copy->id, p.node);
	*node_out = hf_xstrdup(p.node);
	placed_release(&p);
out:
	hf_ops_err_release(&e);
	hf_cred_release(&cred);
	free(cname);
	free(why);
}

/*
 * Brings the jobs of volume (NULL: all) up to date with the volumes'
 * records (a server that took over adopts what they say runs), asking
 * their nodes; returns the jobs known, as JSON, in *out (may be NULL).
 */
static void refresh_jobs(struct hf_srv *s, const char *volume, json_t **out)
{
	int64_t now = hf_mono_ms();

	if (out)
		*out = json_array();
	/* Adopt the records' backups under way. */
	hf_state_lock(s);
	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		struct job *j;

		if (!v->bk_run.id || (volume && strcmp(v->name, volume)) ||
		    job_find(v->name, v->bk_run.id))
			continue;
		j = HF_VEC_PUSH(&jobs);
		memset(j, 0, sizeof(*j));
		j->volume = hf_xstrdup(v->name);
		j->id = hf_xstrdup(v->bk_run.id);
		j->node = v->bk_run.node ? hf_xstrdup(v->bk_run.node) : NULL;
		j->snap_name = hf_xstrdup(v->bk_run.snap);
		j->to = hf_xstrdup(v->bk_run.to);
		j->started = v->bk_run.started;
	}
	pthread_mutex_unlock(&jobs_mu);
	hf_state_unlock(s);

	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < jobs.len; i++) {
		struct job *j = &jobs.items[i], copy;
		json_t *last;
		bool over, lost;
		char *node = NULL;

		if (volume && strcmp(j->volume, volume) != 0)
			continue;
		if (j->over && hf_now_ms() - j->started > 24 * 3600 * 1000LL) {
			/* A day after: the store's catalogue says the rest. */
			job_release(j);
			jobs.items[i--] = jobs.items[--jobs.len];
			continue;
		}
		if (!j->over && !j->busy) {
			bool may_post = now >= j->next_post;

			memset(&copy, 0, sizeof(copy));
			copy.volume = hf_xstrdup(j->volume);
			copy.id = hf_xstrdup(j->id);
			copy.node = j->node ? hf_xstrdup(j->node) : NULL;
			copy.snap_name = hf_xstrdup(j->snap_name);
			copy.to = hf_xstrdup(j->to);
			copy.started = j->started;
			j->busy = true;
			pthread_mutex_unlock(&jobs_mu);
			poll_job(s, &copy, &last, &over, &lost);
			if (lost && may_post)
				restart_job(s, &copy, &node);
			job_release(&copy);
			pthread_mutex_lock(&jobs_mu);
			j = &jobs.items[i]; /* the vector may have moved */
			j->busy = false;
			if (last) {
				json_decref(j->last);
				j->last = last;
			}
			if (lost && may_post) {
				/* 5 s, then longer while it cannot (60 s). */
				int64_t wait = RESTART_MS << (j->fails < 4 ? j->fails
									  : 4);

				j->next_post = now + (wait < 60000 ? wait : 60000);
				j->fails = node ? 0 : j->fails + 1;
				if (node) {
					free(j->node);
					j->node = node;
					j->posts++;
					json_decref(j->last);
					j->last = NULL;
				}
			}
			j->over = j->over || over;
		}
		if (out)
			json_array_append_new(*out, job_json(j));
	}
	pthread_mutex_unlock(&jobs_mu);
}

/* Whether a backup of volume is under way (its id in *id). */
static bool running(struct hf_srv *s, const char *volume, char **id)
{
	const struct hf_xvol *v;

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, volume);
	if (v && v->bk_run.id)
		*id = hf_xstrdup(v->bk_run.id);
	hf_state_unlock(s);
	return *id != NULL;
}

/*
 * Starts a backup of volume to `to` with credential cname: a snapshot
 * ("backup-<id>"), the job in the volume's record, then a node that holds
 * the snapshot runs it; who ("operator", "scheduler") asked, for the
 * event. Returns 0 with the answer in *out, or an HF_E* code with *why.
 */
static int begin(struct hf_srv *s, const char *name, const char *to,
		 const char *cname, const char *who, json_t **out, char **why)
{
	struct hf_ops_err err = {0};
	struct hf_cred cred = {0};
	struct hf_xbk_run run = {0};
	struct placed p = {0};
	const char *st;
	char *id = hf_random_hex(8), *snap = NULL, *made = NULL;
	char *snap_id = NULL, *other = NULL, *swhy = NULL;
	bool changed, busy;
	int64_t until;
	int rc;
	struct job *j;

	*out = NULL;
	if ((rc = hf_cred_s3(s, cname, &cred, why))) {
		rc = rc == HF_ENOTFOUND ? HF_ECONFLICT : rc;
		goto out;
	}
	refresh_jobs(s, name, NULL);
	if (running(s, name, &other)) {
		*why = hf_xasprintf("backup %s of volume %s is under way: one "
				    "at a time",
				    other, name);
		rc = HF_ECONFLICT;
		goto out;
	}
	pthread_mutex_lock(&jobs_mu);
	busy = hf_strlist_has(&pruning, name);
	pthread_mutex_unlock(&jobs_mu);
	if (busy) {
		*why = hf_xasprintf("volume %s's old backups are being "
				    "deleted (retention): try again shortly",
				    name);
		rc = HF_ECONFLICT;
		goto out;
	}
	snap = hf_xasprintf("backup-%s", id);
	if ((rc = hf_ops_xvol_snapshot(s, name, snap, who, &made, &err))) {
		*why = hf_xstrdup(err.why ? err.why : "");
		goto out;
	}
	until = hf_mono_ms() + SNAP_WAIT_MS;
	while (!strcmp((st = snap_state(s, name, snap, &snap_id, &swhy)),
		       "taking") &&
	       hf_mono_ms() < until)
		usleep(50 * 1000);
	if (strcmp(st, "ready") != 0) {
		*why = hf_xasprintf("the backup's snapshot %s is %s%s%s: no "
				    "backup",
				    snap, st, swhy ? ": " : "", swhy ? swhy : "");
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		rc = HF_ECONFLICT;
		goto out;
	}
	if ((rc = place(s, name, snap, to, NULL, &p, why))) {
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		goto out;
	}
	/* In the record first: whoever leads next follows it. */
	run.id = id;
	run.snap = snap;
	run.to = (char *)to;
	run.cred = (char *)cname;
	run.node = p.node;
	run.started = hf_now_ms();
	if ((rc = hf_ops_xvol_backup_run(s, name, &run, true, who, &err))) {
		*why = hf_xstrdup(err.why ? err.why : "");
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		goto out;
	}
	if (post(&p, name, id, to, &cred, why)) {
		end_job(s, name, id, snap, *why);
		rc = HF_EUNAVAIL;
		goto out;
	}
	pthread_mutex_lock(&jobs_mu);
	if (!(j = job_find(name, id))) {
		j = HF_VEC_PUSH(&jobs);
		memset(j, 0, sizeof(*j));
		j->volume = hf_xstrdup(name);
		j->id = hf_xstrdup(id);
		j->snap_name = hf_xstrdup(snap);
		j->to = hf_xstrdup(to);
		j->started = run.started;
	}
	free(j->node);
	j->node = hf_xstrdup(p.node);
	free(j->base);
	j->base = p.base ? hf_xstrdup(p.base) : NULL;
	pthread_mutex_unlock(&jobs_mu);
	hf_log("volume %s: backup %s to %s started on node %s (%s)", name, id,
	       to, p.node, p.base ? "incremental" : "full");
	*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "volume", name,
			 "backup", id, "snapshot", snap, "node", p.node, "to",
			 to, "base", p.base, "state", "running");
out:
	placed_release(&p);
	hf_cred_release(&cred);
	hf_ops_err_release(&err);
	free(id);
	free(snap);
	free(made);
	free(swhy);
	free(snap_id);
	free(other);
	return rc;
}

void hf_backup_start_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	json_t *body = NULL, *out = NULL;
	const char *to, *cname;
	char *why = NULL;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	to = json_string_value(json_object_get(body, "to"));
	cname = json_string_value(json_object_get(body, "credential"));
	if (!hf_spec_s3_place_ok(to) || !cname) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"to\": \"s3://bucket[/prefix]\", "
			      "\"credential\": \"a credential's name\"}");
	} else if ((rc = begin(s, name, to, cname, "operator", &out, &why))) {
		hf_http_error(resp, rc, "%s", why ? why : "?");
	} else {
		hf_http_json(resp, 202, out);
	}
	json_decref(body);
	free(why);
}

/*
 * DELETE /v1/external-volumes/{name}/backups/{id}: the backup under way
 * stops. Its node is asked to end the process (best effort: a node that
 * is away cannot be, and a process that outlives this only adds a
 * manifest to the store), the volume's record lets it go so that no
 * server starts it again, and its snapshot is deleted. 404 when it is
 * not the one under way, 409 when it completed meanwhile.
 */
void hf_backup_cancel_handler(void *ctx, const struct hf_http_req *req,
			      struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	const char *id = hf_kvlist_get(&req->params, "id");
	char *snap = NULL, *api = NULL, *key = NULL, *node = NULL, *aerr = NULL;
	const struct hf_xvol *v;
	struct hf_ops_err e = {0};
	struct hf_node *n;
	json_t *aout = NULL;
	bool stopped = false, completed, changed;
	long status = 0;
	int rc;

	hf_state_lock(s);
	v = name ? hf_model_xvol(&s->model, name) : NULL;
	if (v && v->bk_run.id && id && strcmp(v->bk_run.id, id) == 0) {
		snap = hf_xstrdup(v->bk_run.snap);
		node = v->bk_run.node ? hf_xstrdup(v->bk_run.node) : NULL;
		n = node ? hf_state_node(s, node) : NULL;
		if (n && n->link->api) {
			api = hf_xstrdup(n->link->api);
			key = n->link->api_key ? hf_xstrdup(n->link->api_key)
					       : NULL;
		}
	}
	hf_state_unlock(s);
	if (!v) {
		hf_http_error(resp, HF_ENOTFOUND, "no volume %s",
			      name ? name : "");
		goto out;
	}
	if (!snap) {
		hf_http_error(resp, HF_ENOTFOUND,
			      "no backup %s of volume %s is under way", id, name);
		goto out;
	}
	/* The backups thread leaves it alone from now on. */
	pthread_mutex_lock(&jobs_mu);
	{
		struct job *j = job_find(name, id);

		if (j) {
			j->over = true;
			json_decref(j->last);
			j->last = json_pack("{s:s, s:s}", "state", "cancelled",
					    "message",
					    "cancelled by the operator");
		}
	}
	pthread_mutex_unlock(&jobs_mu);
	if (api) {
		char *path = hf_xasprintf("/v1/agent/backups/%s", id);

		if (hf_httpc_json(api, "DELETE", path, key, NULL,
				  AGENT_TIMEOUT_MS, &status, &aout, &aerr) == 0 &&
		    status == 200)
			stopped = json_is_true(json_object_get(aout, "stopped"));
		free(path);
	}
	rc = hf_ops_xvol_backup_end(s, name, id, "cancelled by the operator",
				    true, &e);
	hf_state_lock(s);
	v = hf_model_xvol(&s->model, name);
	completed = v && v->bk_last && strcmp(v->bk_last, id) == 0;
	hf_state_unlock(s);
	if (rc) {
		hf_http_error(resp, rc, "%s", e.why ? e.why : "?");
		goto out;
	}
	if (completed) {
		hf_http_error(resp, HF_ECONFLICT,
			      "backup %s of volume %s completed before it could "
			      "be cancelled",
			      id, name);
		goto out;
	}
	hf_ops_err_release(&e);
	hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &e);
	hf_log("volume %s: backup %s cancelled (%s)", name, id,
	       stopped ? "its process stopped" : "its node not reached");
	hf_http_json(resp, 200,
		     json_pack("{s:s, s:s, s:s, s:b, s:s?}", "volume", name,
			       "backup", id, "state", "cancelled", "stopped",
			       stopped, "node", node));
out:
	hf_ops_err_release(&e);
	json_decref(aout);
	free(aerr);
	free(snap);
	free(node);
	free(api);
	free(key);
}

/* The manifests in the store under from (s3://bucket[/prefix])/volume. */
static json_t *catalogue(const struct hf_cred *c, const char *from,
			 const char *volume, char *err)
{
	struct hf_s3_config cfg = {0};
	struct hf_s3 *s3 = NULL;
	struct hf_s3_list l = HF_S3_LIST_INIT;
	const char *b = from + 5, *slash = strchr(b, '/');
	char *bucket = slash ? hf_xstrndup(b, (size_t)(slash - b))
			     : hf_xstrdup(b);
	char *prefix = hf_xasprintf("%s%s%s/backups/", slash ? slash + 1 : "",
				    slash ? "/" : "", volume);
	json_t *out = NULL;

	cfg.endpoint = c->endpoint;
	cfg.region = c->region;
	cfg.access_key = c->access_key;
	cfg.secret_key = c->secret_key;
	cfg.ca_file = c->ca;
	if (hf_s3_new(&cfg, &s3, err) ||
	    hf_s3_list(s3, bucket, prefix, 0, &l, err))
		goto out;
	out = json_array();
	for (size_t i = 0; i < l.len; i++) {
		struct hf_buf body = HF_BUF_INIT;
		json_t *m;

		if (hf_s3_get(s3, bucket, l.items[i].key, (size_t)256 << 20,
			      &body, err))
			continue;
		m = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
		hf_buf_release(&body);
		if (!m)
			continue;
		json_array_append_new(
		    out, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}",
				   "backup", json_object_get(m, "backup"),
				   "parent", json_object_get(m, "parent"),
				   "created", json_object_get(m, "created"),
				   "size", json_object_get(m, "size"),
				   "encrypted", json_object_get(m, "encrypted"),
				   "stats", json_object_get(m, "stats"),
				   "snapshot", json_object_get(m, "snapshot")));
		json_decref(m);
	}
out:
	hf_s3_list_release(&l);
	hf_s3_free(s3);
	free(bucket);
	free(prefix);
	return out;
}

/*
 * POST /v1/external-volumes/{name}/from-backup {"from": "s3://...",
 * "volume": the backed-up volume's name (default: name), "backup",
 * "credential", "service" (required: the one that will use it), "repl"
 * (default 1)}: a new volume `name` made by its nodes from the backup.
 */
void hf_backup_restore_handler(void *ctx, const struct hf_http_req *req,
			       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	struct hf_cred cred = {0};
	struct hf_s3_config cfg = {0};
	struct hf_s3 *s3 = NULL;
	struct hf_buf mb = HF_BUF_INIT;
	json_t *body = NULL, *m = NULL;
	const char *from, *vol, *backup, *cname, *svc;
	char *why = NULL, e[HF_S3_ERRLEN], *bucket = NULL, *key = NULL;
	char *newest = NULL;
	json_int_t repl;
	int rc;

	if (hf_http_body_json(req, resp, &body))
		return;
	from = json_string_value(json_object_get(body, "from"));
	vol = json_string_value(json_object_get(body, "volume"));
	backup = json_string_value(json_object_get(body, "backup"));
	cname = json_string_value(json_object_get(body, "credential"));
	svc = json_string_value(json_object_get(body, "service"));
	repl = json_object_get(body, "repl")
		   ? json_integer_value(json_object_get(body, "repl"))
		   : 1;
	if (!vol)
		vol = name;
	if (!hf_spec_s3_place_ok(from) || !cname || !svc || !*svc ||
	    repl < 1 || repl > 3 || (backup && strchr(backup, '/')) ||
	    strchr(vol, '/')) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"from\": \"s3://bucket[/prefix]\", "
			      "\"backup\"?: ID (default: the newest), "
			      "\"credential\": NAME, "
			      "\"service\": the service that will use it, "
			      "\"volume\"?: the backed-up volume's name, "
			      "\"repl\"?: 1-3}");
		goto out;
	}
	if ((rc = hf_cred_s3(s, cname, &cred, &why))) {
		hf_http_error(resp, rc == HF_ENOTFOUND ? HF_ECONFLICT : rc, "%s",
			      why);
		goto out;
	}
	if (!backup) {
		/* The newest the store's catalogue holds. */
		json_t *cat = catalogue(&cred, from, vol, e), *c;
		json_int_t best = -1;
		size_t i;

		json_array_foreach(cat, i, c) {
			json_int_t at = json_integer_value(
			    json_object_get(c, "created"));

			if (json_is_string(json_object_get(c, "backup")) &&
			    at > best) {
				best = at;
				free(newest);
				newest = hf_xstrdup(json_string_value(
				    json_object_get(c, "backup")));
			}
		}
		if (!newest) {
			hf_http_error(resp, cat ? HF_ECONFLICT : HF_EUNAVAIL,
				      "%s: %s", from,
				      cat ? "it holds no backup of that volume"
					  : e);
			json_decref(cat);
			goto out;
		}
		json_decref(cat);
		backup = newest;
	}
	/* The manifest says how large, and whether encrypted. */
	{
		const char *b = from + 5, *slash = strchr(b, '/');

		bucket = slash ? hf_xstrndup(b, (size_t)(slash - b))
			       : hf_xstrdup(b);
		key = hf_xasprintf("%s%s%s/backups/%s.json",
				   slash ? slash + 1 : "", slash ? "/" : "",
				   vol, backup);
	}
	cfg.endpoint = cred.endpoint;
	cfg.region = cred.region;
	cfg.access_key = cred.access_key;
	cfg.secret_key = cred.secret_key;
	cfg.ca_file = cred.ca;
	if (hf_s3_new(&cfg, &s3, e) ||
	    hf_s3_get(s3, bucket, key, (size_t)256 << 20, &mb, e) ||
	    !(m = json_loadb(mb.data ? mb.data : "", mb.len, 0, NULL)) ||
	    json_integer_value(json_object_get(m, "size")) <= 0) {
		hf_http_error(resp, HF_ECONFLICT,
			      "backup %s of volume %s at %s: %s", backup, vol,
			      from, m || !mb.len ? e : "not a backup manifest");
		goto out;
	}
	{
		/* A named key's volume: its sealed data key is in there. */
		const json_t *mk = json_object_get(m, "key");
		const char *kt[3] = {
		    json_string_value(json_object_get(mk, "name")),
		    json_string_value(json_object_get(mk, "sealed")),
		    json_string_value(json_object_get(m, "volume_id"))};
		bool keyed = kt[0] && kt[1] && kt[2];

		rc = hf_ops_xvol_from_backup(
		    s, name, svc, (unsigned)repl,
		    json_integer_value(json_object_get(m, "size")),
		    json_is_true(json_object_get(m, "encrypted")),
		    keyed ? kt : NULL, cname, from, vol, backup, &err);
	}
	if (rc) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	hf_log("volume %s: to be made from backup %s of %s (%s)", name, backup,
	       vol, from);
	hf_http_json(resp, 202,
		     json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "volume", name,
			       "service", svc, "from", from, "backup", backup,
			       "state", "restoring", "size",
			       json_integer_value(json_object_get(m, "size"))));
out:
	json_decref(m);
	hf_buf_release(&mb);
	hf_s3_free(s3);
	hf_cred_release(&cred);
	hf_ops_err_release(&err);
	json_decref(body);
	free(why);
	free(bucket);
	free(key);
	free(newest);
}

static const struct hf_spec_pod *spec_schedule(struct hf_srv *s,
					       const struct hf_xvol *v);

/*
 * {"volume", "schedule": the one that applies, with "source" ("volume":
 * its own; "spec": its pod's) and "next" (unix ms; 0: as soon as it is
 * attached), or null}.
 */
static json_t *schedule_json(struct hf_srv *s, const char *name)
{
	const struct hf_xvol *v;
	const struct hf_spec_pod *pod;
	json_t *sc = json_null();
	const char *to = NULL, *cred = NULL, *src = NULL;
	int64_t every = 0;
	unsigned keep = 0;

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, name);
	if (v && v->bk_sched.to) {
		to = v->bk_sched.to;
		cred = v->bk_sched.cred;
		every = v->bk_sched.every_ms;
		keep = v->bk_sched.keep;
		src = "volume";
	} else if (v && (pod = spec_schedule(s, v))) {
		to = pod->bk_to;
		cred = pod->bk_cred;
		every = (int64_t)(pod->bk_every * 1000);
		keep = (unsigned)pod->bk_keep;
		src = "spec";
	}
	if (to) {
		int64_t last = v->bk_to && !strcmp(v->bk_to, to) ? v->bk_at : 0;

		sc = json_pack("{s:s, s:s, s:f, s:i, s:s, s:I}", "to", to,
			       "credential", cred, "every", (double)every / 1000,
			       "keep", (int)keep, "source", src, "next",
			       (json_int_t)(last ? last + every : 0));
	}
	hf_state_unlock(s);
	return json_pack("{s:s, s:o}", "volume", name, "schedule", sc);
}

void hf_backup_list_handler(void *ctx, const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	const char *cname = hf_kvlist_get(&req->query, "credential");
	const char *from = hf_kvlist_get(&req->query, "from");
	struct hf_cred cred = {0};
	json_t *run = NULL, *out, *cat;
	char *why = NULL, err[HF_S3_ERRLEN];
	const struct hf_xvol *v;
	int rc;

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, name);
	out = v ? json_pack("{s:s, s:{s:s?, s:s?}}", "volume", name,
			    "last_backup", "id", v->bk_last, "to", v->bk_to)
		: NULL;
	hf_state_unlock(s);
	if (!out && !(cname && from)) {
		hf_http_error(resp, HF_ENOTFOUND, "no external volume '%s'",
			      name);
		return;
	}
	if (!out)
		out = json_pack("{s:s}", "volume", name);
	else {
		json_t *sc = schedule_json(s, name);

		json_object_set(out, "schedule", json_object_get(sc, "schedule"));
		json_decref(sc);
	}
	refresh_jobs(s, name, &run);
	json_object_set_new(out, "jobs", run);
	if (cname || from) {
		if (!cname || !hf_spec_s3_place_ok(from)) {
			hf_http_error(resp, HF_EINVAL,
				      "?credential=NAME&from=s3://bucket[/prefix] "
				      "go together");
			json_decref(out);
			return;
		}
		if ((rc = hf_cred_s3(s, cname, &cred, &why))) {
			hf_http_error(resp, rc == HF_ENOTFOUND ? HF_ECONFLICT : rc,
				      "%s", why);
			free(why);
			json_decref(out);
			return;
		}
		cat = catalogue(&cred, from, name, err);
		hf_cred_release(&cred);
		if (!cat) {
			hf_http_error(resp, HF_EUNAVAIL, "%s", err);
			json_decref(out);
			return;
		}
		json_object_set_new(out, "backups", cat);
	}
	hf_http_json(resp, 200, out);
}

/* ---- schedules, retention, and the thread that drives them -------------- */

/* A volume's schedule as it applies now (its own, or its pod's). */
struct sched {
	char *volume, *to, *cred, *last;
	int64_t every_ms, at; /* at: its last backup to `to`, unix ms */
	unsigned keep;
};

struct scheds {
	struct sched *items;
	size_t len, cap;
};

static void sched_release(struct sched *sc)
{
	free(sc->volume);
	free(sc->to);
	free(sc->cred);
	free(sc->last);
}

/* The spec's backup-schedule of volume v's pod, or NULL (state locked). */
static const struct hf_spec_pod *spec_schedule(struct hf_srv *s,
					       const struct hf_xvol *v)
{
	const struct hf_service *svc =
	    v->service ? hf_model_service(&s->model, v->service) : NULL;
	const struct hf_instance *in =
	    svc && v->instance ? hf_model_instance(svc, v->instance) : NULL;
	const struct hf_config *cfg = svc ? hf_model_target(svc) : NULL;
	const struct hf_spec_pod *pod =
	    in && cfg ? hf_spec_find_pod(cfg->spec, in->pod) : NULL;

	return pod && pod->bk_to && pod->bk_cred && pod->bk_every > 0 ? pod
								       : NULL;
}

/*
 * The volumes with a schedule, attached (a snapshot needs its writer),
 * and no backup under way.
 */
static void schedules(struct hf_srv *s, struct scheds *out)
{
	hf_state_lock(s);
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		const struct hf_spec_pod *pod;
		struct sched *sc;

		if (v->state != HF_XVOL_ACTIVE || !v->attached || v->bk_run.id)
			continue;
		pod = v->bk_sched.to ? NULL : spec_schedule(s, v);
		if (!v->bk_sched.to && !pod)
			continue;
		sc = HF_VEC_PUSH(out);
		memset(sc, 0, sizeof(*sc));
		sc->volume = hf_xstrdup(v->name);
		if (pod) {
			sc->to = hf_xstrdup(pod->bk_to);
			sc->cred = hf_xstrdup(pod->bk_cred);
			sc->every_ms = (int64_t)(pod->bk_every * 1000);
			sc->keep = (unsigned)pod->bk_keep;
		} else {
			sc->to = hf_xstrdup(v->bk_sched.to);
			sc->cred = hf_xstrdup(v->bk_sched.cred);
			sc->every_ms = v->bk_sched.every_ms;
			sc->keep = v->bk_sched.keep;
		}
		if (v->bk_to && !strcmp(v->bk_to, sc->to)) {
			sc->at = v->bk_at;
			sc->last = v->bk_last ? hf_xstrdup(v->bk_last) : NULL;
		}
	}
	hf_state_unlock(s);
}

/*
 * Per volume: when to try a scheduled backup again, the last pruned, and
 * why the last one did not start (said once, not at every retry).
 */
struct mark {
	char *volume, *pruned, *failed;
	bool said;        /* failed is in the events */
	int64_t retry_at; /* unix ms */
};
static HF_VEC(struct mark) marks; /* the driver thread's own */

static struct mark *mark_of(const char *volume)
{
	struct mark *m;

	for (size_t i = 0; i < marks.len; i++)
		if (!strcmp(marks.items[i].volume, volume))
			return &marks.items[i];
	m = HF_VEC_PUSH(&marks);
	memset(m, 0, sizeof(*m));
	m->volume = hf_xstrdup(volume);
	return m;
}

struct manifest {
	char *id;
	int64_t created;
	json_t *chunks;
};

static int by_created_desc(const void *a, const void *b)
{
	const struct manifest *x = a, *y = b;

	return x->created < y->created ? 1 : x->created > y->created ? -1 : 0;
}

static struct hf_ticker drive_ticker = HF_TICKER_INIT;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void backup_event(struct hf_srv *s, const char *volume,
			 const char *after, const char *why)
{
	const struct hf_xvol *v;

	hf_state_lock(s);
	v = hf_model_xvol(&s->model, volume);
	if (v && s->leading)
		hf_event(s, "scheduler", v->service, "backup", volume, NULL,
			 after, why);
	hf_state_unlock(s);
}

static void prune_event(struct hf_srv *s, const char *volume, const char *what)
{
	backup_event(s, volume, "pruned", what);
}

/*
 * Retention: of volume's backups at `to`, the newest keep stay (and
 * `last`, the next one's base); the others' manifests are deleted, then
 * every chunk no remaining manifest names. No backup of the volume runs
 * meanwhile (begin refuses). Returns 0, or -1 (logged; tried again after
 * the next backup).
 */
static int prune(struct hf_srv *s, const struct sched *sc)
{
	struct hf_cred cred = {0};
	struct hf_s3_config cfg = {0};
	struct hf_s3 *s3 = NULL;
	struct hf_s3_list l = HF_S3_LIST_INIT, cl = HF_S3_LIST_INIT;
	HF_VEC(struct manifest) ms = {0};
	struct hf_strlist keep = {0};
	const char *b = sc->to + 5, *slash = strchr(b, '/');
	char *bucket = slash ? hf_xstrndup(b, (size_t)(slash - b))
			     : hf_xstrdup(b);
	char *base = hf_xasprintf("%s%s%s/", slash ? slash + 1 : "",
				  slash ? "/" : "", sc->volume);
	char *mprefix = hf_xasprintf("%sbackups/", base);
	char *cprefix = hf_xasprintf("%schunks/", base);
	char err[HF_S3_ERRLEN] = "", *why = NULL, *other = NULL;
	size_t gone = 0, chunks_gone = 0;
	int rc = -1;
	bool ok = true;

	pthread_mutex_lock(&jobs_mu);
	hf_strlist_push(&pruning, sc->volume);
	pthread_mutex_unlock(&jobs_mu);
	if (running(s, sc->volume, &other))
		goto out; /* after it */
	if (hf_cred_s3(s, sc->cred, &cred, &why)) {
		snprintf(err, sizeof(err), "%s", why);
		goto out;
	}
	cfg.endpoint = cred.endpoint;
	cfg.region = cred.region;
	cfg.access_key = cred.access_key;
	cfg.secret_key = cred.secret_key;
	cfg.ca_file = cred.ca;
	if (hf_s3_new(&cfg, &s3, err) ||
	    hf_s3_list(s3, bucket, mprefix, 0, &l, err))
		goto out;
	for (size_t i = 0; i < l.len; i++) {
		const char *k = l.items[i].key + strlen(mprefix);
		size_t n = strlen(k);
		struct hf_buf body = HF_BUF_INIT;
		json_t *m;
		struct manifest *e;

		if (n <= 5 || strcmp(k + n - 5, ".json") || strchr(k, '/'))
			continue;
		if (hf_s3_get(s3, bucket, l.items[i].key, (size_t)256 << 20,
			      &body, err)) {
			hf_buf_release(&body);
			goto out;
		}
		m = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
		hf_buf_release(&body);
		if (!m || !json_is_array(json_object_get(m, "chunks"))) {
			/* Not understood: nothing is deleted. */
			snprintf(err, sizeof(err), "%s is not a manifest",
				 l.items[i].key);
			json_decref(m);
			goto out;
		}
		e = HF_VEC_PUSH(&ms);
		e->id = hf_xstrndup(k, n - 5);
		e->created = json_integer_value(json_object_get(m, "created"));
		e->chunks = json_incref(json_object_get(m, "chunks"));
		json_decref(m);
	}
	qsort(ms.items, ms.len, sizeof(*ms.items), by_created_desc);
	for (size_t i = 0; i < ms.len && !hf_ticker_stopping(&drive_ticker); i++) {
		char *key;

		if (i < sc->keep || (sc->last && !strcmp(ms.items[i].id, sc->last))) {
			size_t k;
			json_t *pair;

			json_array_foreach(ms.items[i].chunks, k, pair) {
				const char *h = json_string_value(
				    json_array_get(pair, 1));

				if (h)
					hf_strlist_push(&keep, h);
			}
			continue;
		}
		key = hf_xasprintf("%s%s.json", mprefix, ms.items[i].id);
		if (hf_s3_delete(s3, bucket, key, err)) {
			free(key);
			goto out;
		}
		free(key);
		gone++;
	}
	if (!gone || hf_ticker_stopping(&drive_ticker))
		goto done;
	qsort(keep.items, keep.len, sizeof(*keep.items), cmp_str);
	if (hf_s3_list(s3, bucket, cprefix, 0, &cl, err))
		goto out;
	for (size_t i = 0; i < cl.len && !hf_ticker_stopping(&drive_ticker); i++) {
		const char *h = cl.items[i].key + strlen(cprefix);

		if (bsearch(&h, keep.items, keep.len, sizeof(*keep.items),
			    cmp_str))
			continue;
		if (hf_s3_delete(s3, bucket, cl.items[i].key, err)) {
			ok = false;
			break;
		}
		chunks_gone++;
	}
done:
	if (gone) {
		char *what = hf_xasprintf("%zu old backups and %zu chunks "
					  "deleted from %s (keep %u)",
					  gone, chunks_gone, sc->to, sc->keep);

		hf_log("volume %s: %s", sc->volume, what);
		prune_event(s, sc->volume, what);
		free(what);
	}
	rc = ok ? 0 : -1;
out:
	if (rc)
		hf_log("volume %s: old backups at %s not pruned: %s",
		       sc->volume, sc->to, other ? "a backup runs" : err);
	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < pruning.len; i++)
		if (!strcmp(pruning.items[i], sc->volume)) {
			free(pruning.items[i]);
			pruning.items[i] = pruning.items[--pruning.len];
			break;
		}
	pthread_mutex_unlock(&jobs_mu);
	for (size_t i = 0; i < ms.len; i++) {
		free(ms.items[i].id);
		json_decref(ms.items[i].chunks);
	}
	HF_VEC_FREE(&ms);
	hf_strlist_release(&keep);
	hf_s3_list_release(&l);
	hf_s3_list_release(&cl);
	hf_s3_free(s3);
	hf_cred_release(&cred);
	free(bucket);
	free(base);
	free(mprefix);
	free(cprefix);
	free(why);
	free(other);
	return rc;
}

/* One pass: the backups under way followed, the scheduled ones started. */
static void drive(struct hf_srv *s)
{
	struct scheds due = {0};
	int64_t now = hf_now_ms();

	refresh_jobs(s, NULL, NULL);
	schedules(s, &due);
	for (size_t i = 0; i < due.len && !hf_ticker_stopping(&drive_ticker); i++) {
		struct sched *sc = &due.items[i];
		struct mark *m = mark_of(sc->volume);
		json_t *out = NULL;
		char *why = NULL;

		/* Retention once per new backup. */
		if (sc->keep && sc->last &&
		    (!m->pruned || strcmp(m->pruned, sc->last))) {
			if (prune(s, sc) == 0) {
				free(m->pruned);
				m->pruned = hf_xstrdup(sc->last);
			}
		}
		if (now < sc->at + sc->every_ms || now < m->retry_at)
			continue;
		if (begin(s, sc->volume, sc->to, sc->cred, "scheduler", &out,
			  &why)) {
			/* Again after a while, not at every pass. */
			m->retry_at = now + (sc->every_ms < 30000 ? sc->every_ms
								  : 30000);
			hf_log("volume %s: the scheduled backup did not start: "
			       "%s",
			       sc->volume, why ? why : "?");
			/*
			 * The same reason twice in a row: the schedule is
			 * stuck (not a volume still attaching), said once.
			 */
			if (!m->failed || strcmp(m->failed, why ? why : "?")) {
				free(m->failed);
				m->failed = hf_xstrdup(why ? why : "?");
				m->said = false;
			} else if (!m->said) {
				backup_event(s, sc->volume, "not started",
					     m->failed);
				m->said = true;
			}
		} else {
			m->retry_at = 0;
			free(m->failed);
			m->failed = NULL;
			m->said = false;
		}
		json_decref(out);
		free(why);
	}
	for (size_t i = 0; i < due.len; i++)
		sched_release(&due.items[i]);
	HF_VEC_FREE(&due);
}

static void drive_pass(void *arg)
{
	drive(arg);
}

void hf_backups_start(struct hf_srv *s)
{
	drive_ticker.name = "the backups thread";
	drive_ticker.without = "backups under way are followed when asked "
			       "about, and none is scheduled";
	drive_ticker.every_ms = DRIVE_MS;
	hf_ticker_start(&drive_ticker, drive_pass, s);
}

void hf_backups_stop(void)
{
	hf_ticker_stop(&drive_ticker);
	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < jobs.len; i++)
		job_release(&jobs.items[i]);
	jobs.len = 0;
	pthread_mutex_unlock(&jobs_mu);
	for (size_t i = 0; i < marks.len; i++) {
		free(marks.items[i].volume);
		free(marks.items[i].pruned);
		free(marks.items[i].failed);
	}
	marks.len = 0;
}

/*
 * PUT /v1/external-volumes/{name}/backup-schedule {"to", "credential",
 * "every": seconds (at least 1), "keep"?: the newest backups kept (0, the
 * default: all)}; DELETE: none of its own (the spec's applies, if any).
 */
void hf_backup_schedule_handler(void *ctx, const struct hf_http_req *req,
				struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	struct hf_xbk_sched sc = {0};
	struct hf_cred cred = {0};
	json_t *body = NULL, *every, *keep;
	char *why = NULL;
	bool del = strcmp(req->method, "DELETE") == 0;
	int rc;

	if (!del) {
		if (hf_http_body_json(req, resp, &body))
			return;
		sc.to = (char *)json_string_value(json_object_get(body, "to"));
		sc.cred = (char *)json_string_value(
		    json_object_get(body, "credential"));
		every = json_object_get(body, "every");
		keep = json_object_get(body, "keep");
		if (!hf_spec_s3_place_ok(sc.to) || !sc.cred ||
		    !json_is_number(every) || json_number_value(every) < 1 ||
		    json_number_value(every) > 1e7 ||
		    (keep && (!json_is_integer(keep) ||
			      json_integer_value(keep) < 0 ||
			      json_integer_value(keep) > 10000))) {
			hf_http_error(resp, HF_EINVAL,
				      "the body is {\"to\": "
				      "\"s3://bucket[/prefix]\", \"credential\": "
				      "NAME, \"every\": seconds (1 to "
				      "10000000), \"keep\"?: the newest backups "
				      "kept, 0 (all) to 10000}");
			goto out;
		}
		if ((rc = hf_cred_s3(s, sc.cred, &cred, &why))) {
			hf_http_error(resp, rc == HF_ENOTFOUND ? HF_ECONFLICT : rc,
				      "%s", why);
			goto out;
		}
		sc.every_ms = (int64_t)(json_number_value(every) * 1000);
		sc.keep = keep ? (unsigned)json_integer_value(keep) : 0;
	}
	if ((rc = hf_ops_xvol_backup_schedule(s, name, del ? NULL : &sc, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	hf_http_json(resp, 200, schedule_json(s, name));
out:
	hf_cred_release(&cred);
	hf_ops_err_release(&err);
	json_decref(body);
	free(why);
}
