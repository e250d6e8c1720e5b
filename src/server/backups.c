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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "server/backups.h"
#include "server/creds.h"
#include "server/ops.h"
#include "server/state.h"
#include "volume/s3.h"

#define SNAP_WAIT_MS 60000
#define AGENT_TIMEOUT_MS 10000

struct job {
	char *volume, *id, *node, *snap_name, *snap_id, *to, *base;
	char *api, *key; /* the node's agent API */
	int64_t started;  /* unix ms */
	json_t *last;     /* the agent's last word on it */
	bool over;        /* done or failed, and acted on */
};

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static HF_VEC(struct job) jobs;

static void job_release(struct job *j)
{
	free(j->volume);
	free(j->id);
	free(j->node);
	free(j->snap_name);
	free(j->snap_id);
	free(j->to);
	free(j->base);
	free(j->api);
	free(j->key);
	json_decref(j->last);
}

static json_t *job_json(const struct job *j)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I}", "backup", j->id,
			      "node", j->node, "snapshot", j->snap_name, "to",
			      j->to, "base", j->base, "started",
			      (json_int_t)j->started);
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
	return o;
}

/*
 * Asks the agent how job j goes (jobs_mu not held: the copy's strings)
 * and acts on its end once. Returns the job's state.
 */
static void poll_job(struct hf_srv *s, struct job *copy, json_t **last,
		     bool *over)
{
	char *path = hf_xasprintf("/v1/agent/backups/%s", copy->id), *err = NULL;
	json_t *st = NULL;
	long status = 0;
	const char *state;

	*last = NULL;
	*over = false;
	if (hf_httpc_json(copy->api, "GET", path, copy->key, NULL,
			  AGENT_TIMEOUT_MS, &status, &st, &err) != 0 ||
	    status != 200) {
		free(err);
		free(path);
		json_decref(st);
		return; /* asked again later */
	}
	free(path);
	state = json_string_value(json_object_get(st, "state"));
	if (state && strcmp(state, "done") == 0) {
		struct hf_ops_err e = {0};

		if (hf_ops_xvol_backup_done(s, copy->volume, copy->id,
					    copy->snap_id, copy->to, &e) == 0)
			*over = true;
		hf_log("volume %s: backup %s done (%s)", copy->volume,
		       copy->id, copy->to);
		hf_ops_err_release(&e);
	} else if (state && strcmp(state, "failed") == 0) {
		struct hf_ops_err e = {0};
		bool changed;

		hf_log("volume %s: backup %s failed: %s", copy->volume,
		       copy->id,
		       json_string_value(json_object_get(st, "message"))
			   ? json_string_value(json_object_get(st, "message"))
			   : "?");
		hf_ops_xvol_snapshot_delete(s, copy->volume, copy->snap_name,
					    &changed, &e);
		hf_ops_err_release(&e);
		*over = true;
	}
	*last = st;
}

/*
 * Brings the jobs of volume (NULL: all) up to date; returns those still
 * known, as JSON, in *out (may be NULL).
 */
static void refresh_jobs(struct hf_srv *s, const char *volume, json_t **out)
{
	if (out)
		*out = json_array();
	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < jobs.len; i++) {
		struct job *j = &jobs.items[i], copy;
		json_t *last;
		bool over;

		if (volume && strcmp(j->volume, volume) != 0)
			continue;
		if (j->over && hf_now_ms() - j->started > 24 * 3600 * 1000LL) {
			/* A day after: the store's catalogue says the rest. */
			job_release(j);
			jobs.items[i--] = jobs.items[--jobs.len];
			continue;
		}
		if (!j->over) {
			memset(&copy, 0, sizeof(copy));
			copy.volume = hf_xstrdup(j->volume);
			copy.id = hf_xstrdup(j->id);
			copy.snap_id = hf_xstrdup(j->snap_id);
			copy.snap_name = hf_xstrdup(j->snap_name);
			copy.to = hf_xstrdup(j->to);
			copy.api = hf_xstrdup(j->api);
			copy.key = j->key ? hf_xstrdup(j->key) : NULL;
			pthread_mutex_unlock(&jobs_mu);
			poll_job(s, &copy, &last, &over);
			job_release(&copy);
			pthread_mutex_lock(&jobs_mu);
			j = &jobs.items[i]; /* the vector may have moved */
			if (last) {
				json_decref(j->last);
				j->last = last;
			}
			j->over = j->over || over;
		}
		if (out)
			json_array_append_new(*out, job_json(j));
	}
	pthread_mutex_unlock(&jobs_mu);
}

/* Whether a job of volume is still under way (its id in *id). */
static bool running(const char *volume, char **id)
{
	bool r = false;

	pthread_mutex_lock(&jobs_mu);
	for (size_t i = 0; i < jobs.len && !r; i++)
		if (!jobs.items[i].over &&
		    strcmp(jobs.items[i].volume, volume) == 0) {
			r = true;
			*id = hf_xstrdup(jobs.items[i].id);
		}
	pthread_mutex_unlock(&jobs_mu);
	return r;
}

/* "s3://bucket[/prefix]", without a trailing slash. */
static bool target_ok(const char *to)
{
	size_t n = to ? strlen(to) : 0;

	return n > 5 && n < 1024 && strncmp(to, "s3://", 5) == 0 &&
	       to[5] != '/' && to[n - 1] != '/' && !strchr(to, '?') &&
	       !strchr(to, ' ');
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

void hf_backup_start_handler(void *ctx, const struct hf_http_req *req,
			     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *name = hf_kvlist_get(&req->params, "name");
	struct hf_ops_err err = {0};
	struct hf_cred cred = {0};
	json_t *body = NULL, *ab = NULL, *aout = NULL;
	const char *to, *cname, *st;
	char *id = hf_random_hex(8), *snap = NULL, *made = NULL, *why = NULL;
	char *snap_id = NULL, *other = NULL, *node = NULL, *api = NULL;
	char *key = NULL, *replica = NULL, *base = NULL, *base_snap = NULL;
	char *aerr = NULL;
	bool secure = false, changed;
	int64_t until;
	long status = 0;
	int rc;
	struct job *j;

	if (hf_http_body_json(req, resp, &body))
		goto out;
	to = json_string_value(json_object_get(body, "to"));
	cname = json_string_value(json_object_get(body, "credential"));
	if (!target_ok(to) || !cname) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"to\": \"s3://bucket[/prefix]\", "
			      "\"credential\": \"a credential's name\"}");
		goto out;
	}
	if ((rc = hf_cred_s3(s, cname, &cred, &why))) {
		hf_http_error(resp, rc == HF_ENOTFOUND ? HF_ECONFLICT : rc,
			      "%s", why);
		goto out;
	}
	refresh_jobs(s, name, NULL);
	if (running(name, &other)) {
		hf_http_error(resp, HF_ECONFLICT,
			      "backup %s of volume %s is under way: one at a "
			      "time",
			      other, name);
		goto out;
	}
	snap = hf_xasprintf("backup-%s", id);
	if ((rc = hf_ops_xvol_snapshot(s, name, snap, &made, &err))) {
		hf_http_error(resp, rc, "%s", err.why ? err.why : "");
		goto out;
	}
	until = hf_mono_ms() + SNAP_WAIT_MS;
	while (!strcmp((st = snap_state(s, name, snap, &snap_id, &why)),
		       "taking") &&
	       hf_mono_ms() < until)
		usleep(50 * 1000);
	if (strcmp(st, "ready") != 0) {
		hf_http_error(resp, HF_ECONFLICT,
			      "the backup's snapshot %s is %s%s%s: no backup",
			      snap, st, why ? ": " : "", why ? why : "");
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		goto out;
	}
	/* A node that holds it: the attached one first. */
	hf_state_lock(s);
	{
		const struct hf_xvol *v = hf_model_xvol(&s->model, name);
		const struct hf_xsnap *sn = v ? hf_xvol_snap(v, snap, false)
					      : NULL;

		for (int pass = 0; sn && pass < 2 && !node; pass++)
			for (size_t i = 0; i < sn->replicas.len && !node; i++) {
				const struct hf_xrep *r =
				    hf_xvol_replica(v, sn->replicas.items[i]);
				struct hf_node *n =
				    r ? hf_state_node(s, r->node) : NULL;

				if (!n || !n->link->api || !n->storage ||
				    !n->storage->pool ||
				    (pass == 0 && (!v->attached ||
						   strcmp(v->attached,
							  r->node) != 0)))
					continue;
				node = hf_xstrdup(n->id);
				api = hf_xstrdup(n->link->api);
				key = n->link->api_key
					  ? hf_xstrdup(n->link->api_key)
					  : NULL;
				replica = hf_xasprintf(
				    "%s/replicas/%s/%s/data", n->storage->pool,
				    v->id, r->id);
				/* The last backup's snapshot, where it was
				 * kept here: only what changed since is read. */
				if (v->bk_last && v->bk_to && v->bk_snap &&
				    !strcmp(v->bk_to, to)) {
					const struct hf_xsnap *b =
					    hf_xvol_snap(v, v->bk_snap, true);

					if (b && b->state == HF_XSNAP_READY &&
					    hf_strlist_has(&b->replicas,
							   r->id)) {
						base = hf_xstrdup(v->bk_last);
						base_snap = hf_xstrdup(b->id);
					}
				}
			}
		secure = v && v->secure;
		if (v && !node)
			why = why ? why
				  : hf_xstrdup("no node that holds the "
					       "snapshot is connected");
	}
	hf_state_unlock(s);
	if (!node) {
		hf_http_error(resp, HF_EUNAVAIL, "%s", why ? why : "?");
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		goto out;
	}
	ab = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
		       "id", id, "replica", replica, "snapshot", snap_id,
		       "volume", name, "to", to, "endpoint", cred.endpoint,
		       "region", cred.region, "access_key", cred.access_key,
		       "secret_key", cred.secret_key, "encrypted", secure);
	if (cred.ca)
		json_object_set_new(ab, "ca", json_string(cred.ca));
	if (base) {
		json_object_set_new(ab, "base", json_string(base));
		json_object_set_new(ab, "base_snapshot", json_string(base_snap));
	}
	rc = hf_httpc_json(api, "POST", "/v1/agent/backups", key, ab,
			   AGENT_TIMEOUT_MS, &status, &aout, &aerr);
	if (rc || status != 202) {
		hf_http_error(resp, HF_EUNAVAIL,
			      "node %s did not start the backup: %s", node,
			      aerr ? aerr
			      : json_string_value(json_object_get(aout,
								  "message"))
				  ? json_string_value(
					json_object_get(aout, "message"))
				  : "an error");
		hf_ops_xvol_snapshot_delete(s, name, snap, &changed, &err);
		goto out;
	}
	pthread_mutex_lock(&jobs_mu);
	j = HF_VEC_PUSH(&jobs);
	memset(j, 0, sizeof(*j));
	j->volume = hf_xstrdup(name);
	j->id = hf_xstrdup(id);
	j->node = hf_xstrdup(node);
	j->snap_name = hf_xstrdup(snap);
	j->snap_id = hf_xstrdup(snap_id);
	j->to = hf_xstrdup(to);
	j->base = base ? hf_xstrdup(base) : NULL;
	j->api = hf_xstrdup(api);
	j->key = key ? hf_xstrdup(key) : NULL;
	j->started = hf_now_ms();
	pthread_mutex_unlock(&jobs_mu);
	hf_log("volume %s: backup %s to %s started on node %s (%s)", name, id,
	       to, node, base ? "incremental" : "full");
	hf_http_json(resp, 202,
		     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "volume",
			       name, "backup", id, "snapshot", snap, "node", node,
			       "to", to, "base", base, "state", "running"));
out:
	if (ab) {
		json_object_del(ab, "secret_key");
		json_decref(ab);
	}
	json_decref(aout);
	json_decref(body);
	hf_cred_release(&cred);
	hf_ops_err_release(&err);
	free(aerr);
	free(id);
	free(snap);
	free(made);
	free(why);
	free(snap_id);
	free(other);
	free(node);
	free(api);
	free(key);
	free(replica);
	free(base);
	free(base_snap);
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
	if (!target_ok(from) || !backup || !cname || !svc || !*svc ||
	    repl < 1 || repl > 3 || strchr(backup, '/') ||
	    strchr(vol, '/')) {
		hf_http_error(resp, HF_EINVAL,
			      "the body is {\"from\": \"s3://bucket[/prefix]\", "
			      "\"backup\": ID, \"credential\": NAME, "
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
	rc = hf_ops_xvol_from_backup(
	    s, name, svc, (unsigned)repl,
	    json_integer_value(json_object_get(m, "size")),
	    json_is_true(json_object_get(m, "encrypted")), cname, from, vol,
	    backup, &err);
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
	refresh_jobs(s, name, &run);
	json_object_set_new(out, "jobs", run);
	if (cname || from) {
		if (!cname || !target_ok(from)) {
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
