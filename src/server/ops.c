/*
 * ops.c - the operations on a cluster (ops.h): each checks, then says what
 * changes as a list of actions (plan/decide-t.h: its own, and the
 * scheduler's rules' for what follows, such as a plan run's start), which
 * the one writer of records (server/apply.h) carries out in the
 * operation's batch; the batch is written before the operation returns,
 * and its events and log lines go out after it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "server/apply.h"
#include "server/cluster.h"
#include "server/nodeauth.h"
#include "common/log.h"
#include "server/creds.h"
#include "server/events.h"
#include "server/ops.h"
#include "server/sched.h"
#include "server/state.h"
#include "volume/crypt.h"

void hf_ops_err_release(struct hf_ops_err *err)
{
	free(err->why);
	err->why = NULL;
	hf_diags_release(&err->diags);
}

/* Sets err's sentence (once: the first failure is the one to tell). */
static int fail(struct hf_ops_err *err, int code, const char *fmt, ...)
    HF_PRINTF(3, 4);
static int fail(struct hf_ops_err *err, int code, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	if (err->why)
		return code;
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	err->why = hf_buf_detach(&b);
	return code;
}

/*
 * Takes srv->mu and opens the operation's batch, as hf_state_lock() does,
 * so that everything the operation saves is committed together; fails
 * (holding nothing) where no operation may act: on a server that does not
 * lead, or whose memory is ahead of its store.
 */
static int enter(struct hf_srv *s, struct hf_ops_err *err)
{
	pthread_mutex_lock(&s->mu);
	hf_state_wait_commit(s); /* a mutator: see state.h */
	if (!s->leading || hf_state_failed(s)) {
		int rc = !s->leading
			     ? fail(err, HF_EUNAVAIL, "this server does not lead")
			     : fail(err, HF_EUNAVAIL,
				    "the store cannot be written: %s",
				    s->store_error ? s->store_error : "");

		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	hf_state_batch_begin(s);
	return 0;
}

/*
 * Writes the batch (its events follow it out; srv->mu is let go while the
 * store commits) and lets go of srv->mu, as hf_state_unlock() does;
 * returns rc, or HF_EUNAVAIL when the write failed (read with the lock
 * held again).
 */
static int leave(struct hf_srv *s, int rc, struct hf_ops_err *err)
{
	hf_state_batch_end(s);
	if (!rc && hf_state_failed(s))
		rc = fail(err, HF_EUNAVAIL,
			  "the store cannot be written: %s; this server stops "
			  "acting until it can",
			  s->store_error ? s->store_error : "");
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static struct hf_service *find_service(struct hf_srv *s, const char *name,
				       struct hf_ops_err *err)
{
	struct hf_service *svc = name ? hf_state_service(s, name) : NULL;

	if (!svc)
		fail(err, HF_ENOTFOUND, "no service named '%s'",
		     name ? name : "");
	return svc;
}

/*
 * Has the one writer carry out what the operation decided so far, into
 * its batch, and empties the list for what follows from it.
 */
static void carry_out(struct hf_srv *s, struct hf_actions *a)
{
	hf_apply(s, a);
	hf_actions_reset(a);
}

static char *dup_or_null(const char *str)
{
	return str ? hf_xstrdup(str) : NULL;
}

/* The operator's event, as hf_event() takes it; every string may be NULL. */
/* An event of who ("operator" for note_event) carried out with a. */
static void note_event_by(struct hf_actions *a, const char *who,
			  const char *svc, const char *kind,
			  const char *object, const char *before,
			  const char *after, const char *why)
{
	struct hf_action *x = hf_actions_push(a, HF_ACT_EVENT, svc, NULL, NULL);

	x->u.event.who = hf_xstrdup(who);
	x->u.event.kind = dup_or_null(kind);
	x->u.event.object = dup_or_null(object);
	x->u.event.before = dup_or_null(before);
	x->u.event.after = dup_or_null(after);
	x->u.event.why = dup_or_null(why);
}

static void note_event(struct hf_actions *a, const char *svc,
		       const char *kind, const char *object,
		       const char *before, const char *after, const char *why)
{
	note_event_by(a, "operator", svc, kind, object, before, after, why);
}

/* ------------------------------------------------------------------ */
/* Volumes                                                              */

void hf_ops_volumes_release(struct hf_ops_volumes *v)
{
	for (size_t i = 0; i < v->len; i++) {
		struct hf_ops_volume *e = &v->items[i];

		free(e->key);
		free(e->service);
		free(e->instance);
		free(e->node);
		free(e->why);
	}
	HF_VEC_FREE(v);
}

struct hf_ops_volume *hf_ops_volumes_add(struct hf_ops_volumes *v,
					const char *key, const char *node)
{
	struct hf_ops_volume *e = HF_VEC_PUSH(v);
	const char *slash = strchr(key, '/');

	memset(e, 0, sizeof(*e));
	e->key = hf_xstrdup(key);
	e->service = hf_name_unescape(key, slash ? (size_t)(slash - key) : 0);
	e->instance = slash ? hf_name_unescape(slash + 1, strlen(slash + 1))
			    : hf_xstrdup("");
	e->node = hf_xstrdup(node);
	return e;
}

void hf_ops_kept_volumes(struct hf_srv *s, const char *svc,
			 struct hf_ops_volumes *out)
{
	for (size_t k = 0; k < s->model.volumes.len; k++) {
		const struct hf_volume *kv = s->model.volumes.items[k];
		struct hf_ops_volume *e;

		if (kv->state != HF_VOL_KEPT ||
		    (svc && !hf_sched_volume_of(kv->key, svc, NULL)))
			continue;
		e = hf_ops_volumes_add(out, kv->key, kv->node);
		e->why = hf_xstrdup(kv->why ? kv->why : "kept");
		e->since = kv->since;
	}
}

/* The volumes a list's actions act on (the kept volumes it deletes). */
static void volumes_of(const struct hf_model *m, const struct hf_actions *a,
		       struct hf_ops_volumes *out)
{
	for (size_t i = 0; i < a->len; i++) {
		const struct hf_xvol *v;

		if (a->items[i].kind == HF_ACT_VOLUME)
			hf_ops_volumes_add(out, a->items[i].u.vol.key,
					   a->items[i].u.vol.node);
		if (a->items[i].kind != HF_ACT_XVOL ||
		    a->items[i].u.xvol.op != HF_XVOLOP_DELETE ||
		    !(v = hf_model_xvol(m, a->items[i].u.xvol.name)))
			continue;
		/* A replicated volume: one row per replica's node. */
		for (size_t k = 0; k < v->replicas.len; k++)
			hf_ops_volumes_add(out, v->name,
					   v->replicas.items[k].node);
	}
}

/*
 * A spec update that raised an external volume's size in driver-options
 * grows the instances' volumes now, while their tasks run (the diff
 * allows growth only). A growth a pool has no room for is a log line
 * only, and the volume stays as it is (`volume resize` says why).
 */
static void grow_volumes(struct hf_srv *s, const struct hf_service *svc,
			 const struct hf_config *cfg, struct hf_actions *a)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		const struct hf_instance *in = svc->instances.items[i];
		const struct hf_spec_pod *pod =
		    hf_spec_find_pod(cfg->spec, in->pod);

		for (size_t k = 0; pod && k < pod->external_volumes.len; k++) {
			const struct hf_spec_external_volume *ev =
			    &pod->external_volumes.items[k];
			char *name = hf_spec_external_volume_name(
			    svc->name, pod->name, in->index, ev);
			const struct hf_xvol *v =
			    name ? hf_model_xvol(&s->model, name) : NULL;
			char *why = NULL;

			if (v && ev->has_opts && ev->opts.size_bytes > v->size &&
			    hf_decide_xvol_resize(&s->model, name,
						  ev->opts.size_bytes, "update",
						  a, &why) < 0)
				hf_log("service %s: volume %s not grown: %s",
				       svc->name, name, why);
			free(why);
			free(name);
		}
	}
	carry_out(s, a);
}

int hf_ops_xvol_resize(struct hf_srv *s, const char *name, int64_t size,
		       bool *changed, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL;
	int rc = enter(s, err);

	*changed = false;
	if (rc)
		return rc;
	switch (hf_decide_xvol_resize(&s->model, name, size, "operator", &a,
				      &why)) {
	case 1:
		carry_out(s, &a);
		*changed = true;
		break;
	case 0:
		break;
	default:
		rc = fail(err,
			  hf_model_xvol(&s->model, name) ? HF_ECONFLICT
							 : HF_ENOTFOUND,
			  "%s", why ? why : "cannot resize");
		break;
	}
	free(why);
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/* The answer of a snapshot rule: 1, 0 or -1 with why into err. */
static int snap_rule(int r, char *why, bool conflict, struct hf_ops_err *err)
{
	int rc = 0;

	if (r < 0)
		rc = fail(err, conflict ? HF_ECONFLICT : HF_ENOTFOUND, "%s",
			  why ? why : "refused");
	free(why);
	return rc;
}

int hf_ops_xvol_snapshot(struct hf_srv *s, const char *volume,
			 const char *snap, const char *who, char **made,
			 struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL, *id = hf_random_hex(8);
	bool conflict = false;
	int rc = enter(s, err), r;

	*made = NULL;
	if (rc) {
		free(id);
		return rc;
	}
	r = hf_decide_snap_take(&s->model, volume, snap, id, hf_now_ms(), who,
				&a, &why, &conflict);
	if (!(rc = snap_rule(r, why, conflict, err))) {
		const struct hf_xvol *v;
		const struct hf_xsnap *sn;

		carry_out(s, &a);
		v = hf_model_xvol(&s->model, volume);
		sn = v ? hf_xvol_snap(v, id, true) : NULL;
		if (sn)
			*made = hf_xstrdup(sn->name);
		else
			rc = fail(err, HF_EIO, "the snapshot's record was not "
					       "stored");
	}
	free(id);
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_snapshot_delete(struct hf_srv *s, const char *volume,
				const char *snap, bool *changed,
				struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL;
	bool conflict = false;
	int rc = enter(s, err), r;

	*changed = false;
	if (rc)
		return rc;
	r = hf_decide_snap_delete(&s->model, volume, snap, "operator", &a,
				  &why, &conflict);
	if (!(rc = snap_rule(r, why, conflict, err)) && r > 0) {
		carry_out(s, &a);
		*changed = true;
	}
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_restore(struct hf_srv *s, const char *volume,
			const char *snap, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL;
	bool conflict = false;
	int rc = enter(s, err), r;
	const struct hf_xvol *v;

	if (rc)
		return rc;
	r = hf_decide_snap_restore(&s->model, volume, snap, "operator", &a,
				   &why, &conflict);
	if ((rc = snap_rule(r, why, conflict, err)))
		goto out;
	v = hf_model_xvol(&s->model, volume);
	if (v && v->attached) {
		/*
		 * Its pod stops, the volume is attached again (a new epoch,
		 * a new attach process), restored before it is served, and
		 * the pod's tasks start on it.
		 */
		struct hf_service *svc = v->instance
					     ? hf_state_service(s, v->service)
					     : NULL;
		struct hf_instance *in =
		    svc ? hf_state_instance(svc, v->instance) : NULL;
		struct hf_action *x = hf_actions_push(
		    &a, HF_ACT_XVOL, v->service, v->instance, NULL);

		x->u.xvol.op = HF_XVOLOP_DETACH;
		x->u.xvol.name = hf_xstrdup(v->name);
		if (svc && in) {
			struct hf_decide_ctx ctx;

			hf_apply_ctx(s, &ctx);
			hf_decide_pod_restart(&s->model, svc, in,
					      "volume restore requested", &ctx,
					      &a);
		}
	}
	carry_out(s, &a);
	hf_sched_changed(s, true);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_clone(struct hf_srv *s, const char *volume, const char *snap,
		      const char *new_name, const char *new_service,
		      struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL, *id = hf_random_hex(16), *rids[3];
	bool conflict = false;
	int rc = enter(s, err), r;
	const struct hf_xvol *v;

	for (size_t i = 0; i < 3; i++)
		rids[i] = hf_random_hex(16);
	if (rc)
		goto done;
	v = hf_model_xvol(&s->model, volume);
	r = hf_decide_snap_clone(&s->model, volume, snap, new_name,
				 new_service ? new_service
				 : v	     ? v->service
					     : NULL,
				 id, (const char *const *)rids, hf_now_ms(),
				 "operator", &a, &why, &conflict);
	if (!(rc = snap_rule(r, why, conflict, err))) {
		carry_out(s, &a);
		if (!hf_model_xvol(&s->model, new_name))
			rc = fail(err, HF_EIO, "the clone's record was not "
					       "stored");
	}
	hf_actions_release(&a);
	rc = leave(s, rc, err);
done:
	free(id);
	for (size_t i = 0; i < 3; i++)
		free(rids[i]);
	return rc;
}

int hf_ops_xvol_backup_done(struct hf_srv *s, const char *volume,
			    const char *backup, const char *snap_id,
			    const char *to, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	const struct hf_xvol *v;
	const struct hf_xsnap *old = NULL;
	struct hf_action *x;
	char *old_name = NULL, *why = NULL;
	bool conflict = false;
	int rc = enter(s, err);

	if (rc)
		return rc;
	v = hf_model_xvol(&s->model, volume);
	if (!v) {
		rc = fail(err, HF_ENOTFOUND, "no volume %s", volume);
		goto out;
	}
	if (v->bk_snap && (!snap_id || strcmp(v->bk_snap, snap_id) != 0))
		old = hf_xvol_snap(v, v->bk_snap, true);
	old_name = old ? hf_xstrdup(old->name) : NULL;
	x = hf_actions_push(&a, HF_ACT_XVOL, v->service, v->instance, NULL);
	x->u.xvol.op = HF_XVOLOP_BACKUP_DONE;
	x->u.xvol.name = hf_xstrdup(v->name);
	x->u.xvol.snap = snap_id ? hf_xstrdup(snap_id) : NULL;
	x->u.xvol.snap_name = hf_xstrdup(backup);
	x->u.xvol.why = hf_xstrdup(to);
	x->u.xvol.at = hf_now_ms();
	note_event_by(&a, "scheduler", v->service, "backup", backup, "running",
		      "done", to);
	/* The old base is no longer needed: this one is the base now. */
	if (old_name && hf_decide_snap_delete(&s->model, volume, old_name,
					      "scheduler", &a, &why,
					      &conflict) < 0)
		hf_log("volume %s: the previous backup's snapshot %s stays: %s",
		       volume, old_name, why ? why : "?");
	carry_out(s, &a);
out:
	free(why);
	free(old_name);
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/*
 * The action of op on volume's record (the caller fills the rest), or
 * NULL with *rc and err set: no such volume (or one being deleted, with
 * live). Under enter().
 */
static struct hf_action *xvol_action(struct hf_srv *s, struct hf_actions *a,
				     const char *volume, enum hf_xvol_op op,
				     bool live, struct hf_ops_err *err,
				     int *rc)
{
	const struct hf_xvol *v = hf_model_xvol(&s->model, volume);
	struct hf_action *x;

	if (!v || (live && v->state == HF_XVOL_DELETING)) {
		*rc = fail(err, HF_ENOTFOUND, "no external volume '%s'", volume);
		return NULL;
	}
	x = hf_actions_push(a, HF_ACT_XVOL, v->service, v->instance, NULL);
	x->u.xvol.op = op;
	x->u.xvol.name = hf_xstrdup(v->name);
	return x;
}

int hf_ops_xvol_backup_run(struct hf_srv *s, const char *volume,
			   const struct hf_xbk_run *run, bool first,
			   const char *who, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	struct hf_action *x;
	char *why;
	int rc = enter(s, err);

	if (rc)
		return rc;
	if (!(x = xvol_action(s, &a, volume, HF_XVOLOP_BACKUP_RUN, false, err,
			      &rc)))
		goto out;
	x->u.xvol.id = hf_xstrdup(run->id);
	x->u.xvol.snap_name = hf_xstrdup(run->snap);
	x->u.xvol.why = hf_xstrdup(run->to);
	x->u.xvol.cred = hf_xstrdup(run->cred);
	x->u.xvol.node = dup_or_null(run->node);
	x->u.xvol.at = run->started;
	why = hf_xasprintf("to %s on node %s", run->to,
			   run->node ? run->node : "?");
	note_event_by(&a, who, x->service, "backup", run->id,
		      first ? NULL : "running", "running", why);
	free(why);
	carry_out(s, &a);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_backup_end(struct hf_srv *s, const char *volume,
			   const char *backup, const char *why, bool cancelled,
			   struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	if (!(x = xvol_action(s, &a, volume, HF_XVOLOP_BACKUP_END, false, err,
			      &rc)))
		goto out;
	x->u.xvol.id = hf_xstrdup(backup);
	note_event_by(&a, cancelled ? "operator" : "scheduler", x->service,
		      "backup", backup, "running",
		      cancelled ? "cancelled" : "failed", why);
	carry_out(s, &a);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_backup_schedule(struct hf_srv *s, const char *volume,
				const struct hf_xbk_sched *sc,
				struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	struct hf_action *x;
	char *after = NULL;
	int rc = enter(s, err);

	if (rc)
		return rc;
	if (!(x = xvol_action(s, &a, volume, HF_XVOLOP_BACKUP_SCHEDULE, true,
			      err, &rc)))
		goto out;
	x->u.xvol.why = sc ? hf_xstrdup(sc->to) : NULL;
	x->u.xvol.cred = sc ? hf_xstrdup(sc->cred) : NULL;
	x->u.xvol.size = sc ? sc->every_ms : 0;
	x->u.xvol.repl = sc ? sc->keep : 0;
	if (sc)
		after = hf_xasprintf("every %llds to %s, keep %u",
				     (long long)(sc->every_ms / 1000), sc->to,
				     sc->keep);
	note_event(&a, x->service, "backup-schedule", volume, NULL,
		   after ? after : "none", NULL);
	free(after);
	carry_out(s, &a);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_xvol_from_backup(struct hf_srv *s, const char *new_name,
			    const char *new_service, unsigned repl,
			    int64_t size, bool secure,
			    const char *const *key, const char *cred,
			    const char *url, const char *volume,
			    const char *backup, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	char *why = NULL, *id = hf_random_hex(16), *rids[3];
	bool conflict = false;
	int rc, r;

	for (size_t i = 0; i < 3; i++)
		rids[i] = hf_random_hex(16);
	if ((rc = enter(s, err)))
		goto done;
	r = hf_decide_from_backup(&s->model, new_name, new_service, id,
				  (const char *const *)rids, repl, size, secure,
				  key, cred, url, volume, backup, hf_now_ms(),
				  &a, &why, &conflict);
	/* The named key opens the backup's data key, or nothing is made. */
	if (r >= 0 && secure && key) {
		uint8_t dk[HF_VOL_DATA_KEY_LEN];
		char *kwhy = NULL;
		int krc = hf_cred_open_data_key(s, key[0], key[2], key[1], dk,
						&kwhy);

		explicit_bzero(dk, sizeof(dk));
		if (krc) {
			free(why);
			why = hf_xasprintf("backup %s of volume %s is "
					   "encrypted and sealed by key %s: %s",
					   backup, volume, key[0], kwhy);
			conflict = true;
			r = -1;
			hf_actions_reset(&a);
		}
		free(kwhy);
	}
	if (!(rc = snap_rule(r, why, conflict, err))) {
		carry_out(s, &a);
		if (!hf_model_xvol(&s->model, new_name))
			rc = fail(err, HF_EIO, "the volume's record was not "
					       "stored");
	}
	hf_actions_release(&a);
	rc = leave(s, rc, err);
done:
	free(id);
	for (size_t i = 0; i < 3; i++)
		free(rids[i]);
	return rc;
}

/*
 * A new record at key (lock held): exists_code with exists_why when one is
 * there, else rec written.
 */
static int new_record(struct hf_srv *s, const char *key, json_t *rec,
		      int exists_code, const char *exists_why,
		      struct hf_ops_err *err)
{
	json_t *old = NULL;
	int rc = hf_state_get_record(s, key, &old);

	json_decref(old);
	if (rc == 0)
		return fail(err, exists_code, "%s", exists_why);
	if (rc != HF_ENOTFOUND)
		return fail(err, rc, "the store cannot be read");
	if ((rc = hf_state_put_record(s, key, rec)))
		return fail(err, rc, "the store cannot be written");
	return 0;
}

/*
 * The record at key deleted (lock held); HF_ENOTFOUND with missing_why.
 * *was (may be NULL) gets what it held.
 */
static int drop_record(struct hf_srv *s, const char *key,
		       const char *missing_why, json_t **was,
		       struct hf_ops_err *err)
{
	json_t *old = NULL;
	int rc = hf_state_get_record(s, key, &old);

	if (rc == HF_ENOTFOUND)
		rc = fail(err, rc, "%s", missing_why);
	else if (rc)
		rc = fail(err, rc, "the store cannot be read");
	else if ((rc = hf_state_delete_record(s, key)))
		rc = fail(err, rc, "the store cannot be written");
	if (!rc && was)
		*was = old;
	else
		json_decref(old);
	return rc;
}

int hf_ops_credential_create(struct hf_srv *s, const char *name, json_t *rec,
			     struct hf_ops_err *err)
{
	char *key = hf_state_key("/credentials/%s", name, NULL);
	char *why = hf_xasprintf("a credential named %s exists (delete it "
				 "first)",
				 name);
	int rc = enter(s, err);

	if (!rc)
		rc = leave(s, new_record(s, key, rec, HF_ECONFLICT, why, err),
			   err);
	free(why);
	free(key);
	return rc;
}

int hf_ops_credential_delete(struct hf_srv *s, const char *name,
			     struct hf_ops_err *err)
{
	char *key = hf_state_key("/credentials/%s", name, NULL);
	json_t *old = NULL;
	int rc = enter(s, err);

	if (rc) {
		free(key);
		return rc;
	}
	rc = hf_state_get_record(s, key, &old);
	for (size_t i = 0; !rc && i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		/* Without it, the volume's data could never be read again. */
		if (v->key_name && !strcmp(v->key_name, name))
			rc = fail(err, HF_ECONFLICT,
				  "key %s seals the data key of volume %s: "
				  "delete the volume first",
				  name, v->name);
		/* Nor could its schedule back it up. */
		else if (v->bk_sched.cred && !strcmp(v->bk_sched.cred, name))
			rc = fail(err, HF_ECONFLICT,
				  "credential %s is in use by the backup "
				  "schedule of volume %s: end it first "
				  "(holdfast volume backup-schedule %s --off)",
				  name, v->name, v->name);
	}
	for (size_t i = 0; !rc && i < s->model.services.len; i++) {
		const struct hf_service *svc = s->model.services.items[i];
		const struct hf_config *cfg = hf_model_target(svc);

		for (size_t k = 0; !rc && cfg && cfg->spec &&
				   k < cfg->spec->pods.len;
		     k++) {
			const struct hf_spec_pod *pod = &cfg->spec->pods.items[k];

			if (pod->bk_cred && !strcmp(pod->bk_cred, name))
				rc = fail(err, HF_ECONFLICT,
					  "credential %s is in use by the "
					  "backup schedule of service %s, pod "
					  "%s: take it out of the spec first",
					  name, svc->name, pod->name);
		}
	}
	if (rc == HF_ENOTFOUND)
		rc = fail(err, rc, "no credential %s", name);
	else if (rc == HF_ECONFLICT)
		;
	else if (rc)
		rc = fail(err, rc, "the store cannot be read");
	else if ((rc = hf_state_delete_record(s, key)))
		rc = fail(err, rc, "the store cannot be written");
	json_decref(old);
	free(key);
	return leave(s, rc, err);
}

int hf_ops_remote_add(struct hf_srv *s, const char *name, json_t *rec,
		      struct hf_ops_err *err)
{
	char *key = hf_state_key("/remotes/%s", name, NULL);
	char *why = hf_xasprintf("a remote cluster named %s exists (remove it "
				 "first)",
				 name);
	int rc = enter(s, err);

	if (!rc) {
		rc = new_record(s, key, rec, HF_EEXISTS, why, err);
		if (!rc)
			hf_event(s, "operator", NULL, "remote", name, NULL,
				 "added",
				 json_string_value(json_object_get(rec, "url")));
		rc = leave(s, rc, err);
	}
	free(why);
	free(key);
	return rc;
}

int hf_ops_remote_remove(struct hf_srv *s, const char *name,
			 struct hf_ops_err *err)
{
	char *key = hf_state_key("/remotes/%s", name, NULL);
	char *why = hf_xasprintf("no remote cluster '%s'", name);
	int rc = enter(s, err);

	if (!rc) {
		rc = drop_record(s, key, why, NULL, err);
		if (!rc)
			hf_event(s, "operator", NULL, "remote", name, NULL,
				 "removed", NULL);
		rc = leave(s, rc, err);
	}
	free(why);
	free(key);
	return rc;
}

int hf_ops_dr_enable(struct hf_srv *s, const char *name, const char *remote,
		     const struct hf_ops_dr_journal *j, bool *updated,
		     struct hf_ops_err *err)
{
	char *key = hf_state_key("/dr/%s", name, NULL);
	char *rkey = hf_state_key("/remotes/%s", remote, NULL);
	json_t *old = NULL, *r = NULL, *rec = NULL;
	struct hf_service *svc;
	const char *was;
	int rc = enter(s, err);

	*updated = false;
	if (rc)
		goto out;
	svc = hf_state_service(s, name);
	if (!svc || svc->removing) {
		rc = fail(err, HF_ENOTFOUND, "no service '%s'", name);
	} else if ((rc = hf_state_get_record(s, rkey, &r))) {
		rc = rc == HF_ENOTFOUND
			 ? fail(err, HF_ENOTFOUND,
				"no remote cluster '%s' (holdfast remote add)",
				remote)
			 : fail(err, rc, "the store cannot be read");
	} else if ((rc = hf_state_get_record(s, key, &old)) == 0 &&
		   (!(was = json_string_value(json_object_get(old, "to"))) ||
		    strcmp(was, remote) != 0)) {
		rc = fail(err, HF_ECONFLICT,
			  "service '%s' is replicated to %s already (dr "
			  "disable first)",
			  name, was ? was : "?");
	} else if (rc && rc != HF_ENOTFOUND) {
		rc = fail(err, rc, "the store cannot be read");
	} else if (rc == 0 && !j->size && !j->when_full) {
		rc = fail(err, HF_ECONFLICT,
			  "service '%s' is replicated to %s already (a journal "
			  "size or policy changes its journal)",
			  name, remote);
	} else {
		/* Again to the same remote: its journal settings change. */
		*updated = rc == 0;
		rec = *updated ? json_deep_copy(old)
			       : json_pack("{s:s, s:s, s:I}", "service", name,
					   "to", remote, "since",
					   (json_int_t)hf_now_ms());
		if (j->size)
			json_object_set_new(rec, "journal_size",
					    json_integer(j->size));
		if (j->when_full)
			json_object_set_new(rec, "when_full",
					    json_string(j->when_full));
		rc = hf_state_put_record(s, key, rec);
		if (rc) {
			rc = fail(err, rc, "the store cannot be written");
		} else if (*updated) {
			char *what = hf_xasprintf(
			    "journal %lld bytes, when full: %s",
			    (long long)json_integer_value(
				json_object_get(rec, "journal_size")),
			    json_string_value(json_object_get(rec, "when_full"))
				? json_string_value(
				      json_object_get(rec, "when_full"))
				: "resync");

			hf_event(s, "operator", name, "dr", name, "primary",
				 "primary", what);
			free(what);
		} else {
			hf_event(s, "operator", name, "dr", name, NULL,
				 "primary", remote);
		}
	}
	rc = leave(s, rc, err);
out:
	json_decref(rec);
	json_decref(old);
	json_decref(r);
	free(key);
	free(rkey);
	return rc;
}

int hf_ops_dr_set(struct hf_srv *s, const char *name, const char *field,
		  json_t *val, const char *who, const char *why,
		  struct hf_ops_err *err)
{
	char *key = hf_state_key("/dr/%s", name, NULL);
	json_t *rec = NULL;
	int rc = enter(s, err);

	if (rc)
		goto out;
	rc = hf_state_get_record(s, key, &rec);
	if (rc) {
		rc = fail(err, rc, rc == HF_ENOTFOUND
				       ? "service is not replicated"
				       : "the store cannot be read");
		goto done;
	}
	if (val)
		json_object_set(rec, field, val);
	else
		json_object_del(rec, field);
	if ((rc = hf_state_put_record(s, key, rec)))
		rc = fail(err, rc, "the store cannot be written");
	else if (why)
		hf_event(s, who, name, "dr", name, "primary",
			 val ? field : "primary", why);
done:
	rc = leave(s, rc, err);
out:
	json_decref(rec);
	free(key);
	return rc;
}

int hf_ops_dr_switchover(struct hf_srv *s, const char *name, json_t *sw,
			 bool begin, bool done, const char *who,
			 const char *why, struct hf_ops_err *err)
{
	char *key = hf_state_key("/dr/%s", name, NULL);
	json_t *rec = NULL, *cur;
	const char *phase, *was = NULL;
	int rc = enter(s, err);

	if (rc)
		goto out;
	rc = hf_state_get_record(s, key, &rec);
	if (rc) {
		rc = rc == HF_ENOTFOUND
			 ? fail(err, rc, "service '%s' is not replicated to a "
					 "remote cluster (dr enable)",
				name)
			 : fail(err, rc, "the store cannot be read");
		goto done;
	}
	cur = json_object_get(rec, "switchover");
	if (cur)
		was = json_string_value(json_object_get(cur, "phase"));
	phase = sw ? json_string_value(json_object_get(sw, "phase")) : NULL;
	/* One at a time: a new one only where none is, or one failed. */
	if (begin && was && strcmp(was, "failed") != 0) {
		rc = fail(err, HF_ECONFLICT,
			  "a switchover of service '%s' is under way (%s)",
			  name, was);
		goto done;
	}
	if (done)
		rc = hf_state_delete_record(s, key);
	else {
		if (sw)
			json_object_set(rec, "switchover", sw);
		else
			json_object_del(rec, "switchover");
		rc = hf_state_put_record(s, key, rec);
	}
	if (rc) {
		rc = fail(err, rc, "the store cannot be written");
		goto done;
	}
	if (why)
		hf_event(s, who, name, "dr", name, was ? was : "primary",
			 done ? "standby" : phase ? phase : "primary", why);
done:
	rc = leave(s, rc, err);
out:
	json_decref(rec);
	free(key);
	return rc;
}

int hf_ops_dr_disable(struct hf_srv *s, const char *name, char **remote,
		      struct hf_ops_err *err)
{
	char *key = hf_state_key("/dr/%s", name, NULL);
	char *why = hf_xasprintf("service '%s' is not replicated to a remote "
				 "cluster",
				 name);
	json_t *old = NULL;
	int rc = enter(s, err);

	*remote = NULL;
	if (!rc) {
		rc = drop_record(s, key, why, &old, err);
		if (!rc) {
			const char *to =
			    json_string_value(json_object_get(old, "to"));

			*remote = to ? hf_xstrdup(to) : NULL;
			hf_event(s, "operator", name, "dr", name, "primary",
				 "none", to);
		}
		rc = leave(s, rc, err);
	}
	json_decref(old);
	free(why);
	free(key);
	return rc;
}

int hf_ops_standby_put(struct hf_srv *s, const char *name, json_t *rec,
		       const char *from, struct hf_ops_err *err)
{
	char *key = hf_state_key("/standby/%s", name, NULL);
	json_t *old = NULL;
	const char *was_from, *was_id, *id;
	struct hf_service *svc;
	int rc = enter(s, err);

	if (rc) {
		free(key);
		return rc;
	}
	svc = hf_state_service(s, name);
	rc = hf_state_get_record(s, key, &old);
	was_from = json_string_value(json_object_get(old, "from"));
	was_id = json_string_value(
	    json_object_get(json_object_get(old, "config"), "id"));
	id = json_string_value(json_object_get(json_object_get(rec, "config"),
					       "id"));
	if (svc) {
		/* Two sites never both run it. */
		rc = fail(err, HF_ECONFLICT,
			  "service '%s' runs on this cluster: it cannot be a "
			  "standby here",
			  name);
	} else if (rc && rc != HF_ENOTFOUND) {
		rc = fail(err, rc, "the store cannot be read");
	} else if (!rc && was_from && strcmp(was_from, from) != 0) {
		rc = fail(err, HF_ECONFLICT,
			  "service '%s' is the standby of remote cluster %s "
			  "here",
			  name, was_from);
	} else if ((rc = hf_state_put_record(s, key, rec))) {
		rc = fail(err, rc, "the store cannot be written");
	} else if (!was_id || !id || strcmp(was_id, id) != 0) {
		char *who = hf_xasprintf("remote:%s", from);

		hf_event(s, who, name, "dr", name, was_id ? "standby" : NULL,
			 "standby",
			 id ? id : "?");
		free(who);
	}
	json_decref(old);
	free(key);
	return leave(s, rc, err);
}

int hf_ops_standby_delete(struct hf_srv *s, const char *name,
			  const char *from, struct hf_ops_err *err)
{
	char *key = hf_state_key("/standby/%s", name, NULL);
	json_t *old = NULL;
	const char *was_from;
	int rc = enter(s, err);

	if (rc) {
		free(key);
		return rc;
	}
	rc = hf_state_get_record(s, key, &old);
	was_from = json_string_value(json_object_get(old, "from"));
	if (rc == HF_ENOTFOUND)
		rc = fail(err, rc, "service '%s' is no standby here", name);
	else if (rc)
		rc = fail(err, rc, "the store cannot be read");
	else if (from && (!was_from || strcmp(was_from, from) != 0))
		rc = fail(err, HF_ENOTFOUND, "service '%s' is no standby of %s "
					     "here",
			  name, from);
	else if ((rc = hf_state_delete_record(s, key)))
		rc = fail(err, rc, "the store cannot be written");
	else {
		char *who = hf_xasprintf("remote:%s", from ? from : "?");
		json_t *v;
		size_t i;

		/* Its standby replicas' files go too (dr.c: orders). */
		json_array_foreach(json_object_get(old, "volumes"), i, v) {
			const char *node =
			    json_string_value(json_object_get(v, "node"));
			const char *rep =
			    json_string_value(json_object_get(v, "replica"));
			const char *id = json_string_value(json_object_get(v, "id"));
			char *tkey;
			json_t *t;

			if (!node || !rep || !id)
				continue;
			tkey = hf_state_key("/standby-trash/%s", rep, NULL);
			t = json_pack("{s:s, s:s, s:s, s:O?, s:I}", "node", node,
				      "id", id, "replica", rep, "volume",
				      json_object_get(v, "name"), "since",
				      (json_int_t)hf_now_ms());
			if (hf_state_put_record(s, tkey, t))
				rc = fail(err, HF_EIO,
					  "the store cannot be written");
			json_decref(t);
			free(tkey);
		}
		hf_event(s, from ? who : "operator", name, "dr", name,
			 "standby", "none", NULL);
		free(who);
	}
	json_decref(old);
	free(key);
	return leave(s, rc, err);
}

/* The mark of the standby replica `replica` on node `node` (ns; 0: none). */
static int64_t mark_of(const struct hf_model *m, const char *node,
		       const char *replica)
{
	const struct hf_node *n = hf_model_node(m, node);

	for (size_t i = 0; n && n->storage && i < n->storage->marks.len; i++)
		if (!strcmp(n->storage->marks.items[i].replica, replica))
			return n->storage->marks.items[i].time;
	return 0;
}

int hf_ops_dr_failover(struct hf_srv *s, const char *name, const char *who,
		       bool force, json_t **config, int64_t *loss_ns,
		       struct hf_ops_err *err)
{
	char *key = hf_state_key("/standby/%s", name, NULL);
	json_t *rec = NULL, *v;
	int64_t now = hf_now_ms(), loss = 0;
	struct hf_actions acts = {0};
	size_t i;
	int rc = enter(s, err);

	*config = NULL;
	*loss_ns = 0;
	if (rc) {
		free(key);
		return rc;
	}
	rc = hf_state_get_record(s, key, &rec);
	if (rc == HF_ENOTFOUND) {
		rc = fail(err, rc, "service '%s' is no standby here (dr list)",
			  name);
		goto out;
	}
	if (rc) {
		rc = fail(err, rc, "the store cannot be read");
		goto out;
	}
	/* Every volume has its copy here, consistent, and a free name. */
	json_array_foreach(json_object_get(rec, "volumes"), i, v) {
		const char *vn = json_string_value(json_object_get(v, "name"));
		const char *node = json_string_value(json_object_get(v, "node"));
		const char *rep = json_string_value(json_object_get(v, "replica"));
		int64_t t;

		if (!node || !rep) {
			rc = fail(err, HF_ECONFLICT,
				  "volume %s has no standby replica here yet "
				  "(no node with a storage pool had room)",
				  vn ? vn : "?");
			goto out;
		}
		if (hf_model_xvol(&s->model, vn)) {
			rc = fail(err, HF_ECONFLICT,
				  "a volume named %s exists here already", vn);
			goto out;
		}
		t = mark_of(&s->model, node, rep);
		if (!t && !force) {
			rc = fail(err, HF_ECONFLICT,
				  "the standby copy of volume %s on node %s is "
				  "not known to be consistent (its first copy "
				  "was not done, or its node has not reported "
				  "it): --force starts the service on it anyway",
				  vn, node);
			goto out;
		}
		if (!loss || (t && t < loss))
			loss = t;
	}
	/* The volumes become the service's kept volumes, in sync here. */
	json_array_foreach(json_object_get(rec, "volumes"), i, v) {
		struct hf_action *x = hf_actions_push(&acts, HF_ACT_XVOL, name,
						      NULL, NULL);
		struct hf_act_xvol *o = &x->u.xvol;

		o->op = HF_XVOLOP_STANDBY;
		o->name = dup_or_null(json_string_value(json_object_get(v, "name")));
		o->id = dup_or_null(json_string_value(json_object_get(v, "id")));
		o->sealed_key =
		    dup_or_null(json_string_value(json_object_get(v, "key")));
		o->node = dup_or_null(json_string_value(json_object_get(v, "node")));
		o->replica =
		    dup_or_null(json_string_value(json_object_get(v, "replica")));
		o->size = json_integer_value(json_object_get(v, "size"));
		/*
		 * Above every attachment the primary made (its last one may
		 * postdate the configuration it sent): the standby replica
		 * then refuses the old primary's stream (fencing).
		 */
		o->epoch = (uint64_t)json_integer_value(
			       json_object_get(v, "epoch")) + 1000;
		o->at = now;
	}
	carry_out(s, &acts);
	if ((rc = hf_state_delete_record(s, key))) {
		rc = fail(err, rc, "the store cannot be written");
		goto out;
	}
	{
		/*
		 * Where it came from: that cluster, should it send its
		 * configuration again, is told the service runs here now and
		 * stops its copy (dr.c, the fencing rule).
		 */
		char *tkey = hf_state_key("/dr-taken/%s", name, NULL);
		json_t *t = json_pack("{s:s, s:O?, s:I}", "service", name,
				      "from", json_object_get(rec, "from"),
				      "at", (json_int_t)now);

		if (hf_state_put_record(s, tkey, t))
			rc = fail(err, HF_EIO, "the store cannot be written");
		json_decref(t);
		free(tkey);
		if (rc)
			goto out;
	}
	{
		char *why = loss ? hf_xasprintf("failover from %s: its volumes' "
						"data is as of %.3f s ago; "
						"writes made there since are "
						"lost",
						json_string_value(json_object_get(
						    rec, "from")),
						(double)(hf_now_ms() * 1000000 -
							 loss) /
						    1e9)
				 : hf_xasprintf("failover from %s (forced: a "
						"volume's copy may not be "
						"consistent)",
						json_string_value(json_object_get(
						    rec, "from")));

		hf_event(s, who, name, "dr", name, "standby", "primary", why);
		hf_log("service %s: %s", name, why);
		free(why);
	}
	*config = json_incref(json_object_get(rec, "config"));
	*loss_ns = loss;
out:
	hf_actions_release(&acts);
	json_decref(rec);
	free(key);
	return leave(s, rc, err);
}

int hf_ops_dr_adopt(struct hf_srv *s, const char *name, const json_t *adopt,
		    const char *who, struct hf_ops_err *err)
{
	struct hf_actions a = {0};
	const json_t *v;
	size_t i;
	int rc = enter(s, err);

	if (rc)
		return rc;
	hf_decide_xvols_delete_kept(&s->model, name, who, &a);
	/* After its DELETE: out of the record before any order lists it. */
	json_array_foreach(adopt, i, v) {
		const char *vn = json_string_value(json_object_get(v, "name"));
		const char *rep =
		    json_string_value(json_object_get(v, "replica"));
		const struct hf_xvol *x = vn ? hf_model_xvol(&s->model, vn)
					     : NULL;
		struct hf_action *act;

		if (!x || !rep || !hf_xvol_replica(x, rep))
			continue;
		act = hf_actions_push(&a, HF_ACT_XVOL, name, NULL, NULL);
		act->u.xvol.op = HF_XVOLOP_REPLICA_GONE;
		act->u.xvol.name = hf_xstrdup(vn);
		act->u.xvol.replica = hf_xstrdup(rep);
		act->u.xvol.node = dup_or_null(
		    json_string_value(json_object_get(v, "node")));
	}
	carry_out(s, &a);
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_volume_delete(struct hf_srv *s, const char *name,
			 const char *inst, struct hf_ops_volumes *out,
			 struct hf_ops_err *err)
{
	struct hf_service *svc;
	struct hf_actions a = {0};
	int rc = enter(s, err);

	if (rc)
		return rc;
	if (!name) {
		rc = fail(err, HF_ENOTFOUND, "no kept volume of no service");
		goto out;
	}
	/* An external volume by its own name (holdfast volume show NAME). */
	if (!inst && !hf_state_service(s, name)) {
		const struct hf_xvol *v = hf_model_xvol(&s->model, name);

		switch (hf_decide_xvol_delete(&s->model, name, "operator", &a)) {
		case 1:
			volumes_of(&s->model, &a, out);
			carry_out(s, &a);
			goto out;
		case -1:
			rc = fail(err, HF_ECONFLICT,
				  "volume %s is in use by %s/%s; 'holdfast "
				  "service remove %s --delete-volumes' deletes "
				  "it with its service",
				  name, v->service,
				  v->instance ? v->instance : "?", v->service);
			goto out;
		default:
			break;
		}
	}
	/* A service's kept external volumes go with its kept directories. */
	if (hf_decide_delete_kept(&s->model, name, inst, "operator", &a) +
	    (inst ? 0
		  : hf_decide_xvols_delete_kept(&s->model, name, "operator",
						&a))) {
		volumes_of(&s->model, &a, out);
		carry_out(s, &a);
		goto out;
	}
	svc = hf_state_service(s, name);
	if (svc && svc->removing)
		rc = fail(err, HF_ECONFLICT,
			  "service '%s' is still being removed: its volumes "
			  "are kept once it is gone ('holdfast service "
			  "remove %s --wait' waits for that); 'holdfast "
			  "service remove %s --delete-volumes' deletes them "
			  "instead",
			  name, name, name);
	else if (svc && (!inst || hf_state_instance(svc, inst)))
		rc = fail(err, HF_ECONFLICT,
			  "the volumes of %s%s%s are in use by the deployed "
			  "service; 'holdfast service remove %s "
			  "--delete-volumes' (or 'pod replace') deletes them",
			  name, inst ? "/" : "", inst ? inst : "", name);
	else
		rc = fail(err, HF_ENOTFOUND, "no kept volume %s%s%s", name,
			  inst ? "/" : "", inst ? inst : "");
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/* ------------------------------------------------------------------ */
/* Services                                                             */

/*
 * The service `name` and its target configuration, when a change may be
 * made to it: it exists, is not being removed and its target loads.
 */
static int changeable(struct hf_srv *s, const char *name,
		      struct hf_service **svc, struct hf_config **cur,
		      struct hf_ops_err *err)
{
	*svc = find_service(s, name, err);
	if (!*svc)
		return HF_ENOTFOUND;
	if ((*svc)->removing)
		return fail(err, HF_ECONFLICT, "service '%s' is being removed",
			    (*svc)->name);
	*cur = hf_state_target(*svc);
	if (!*cur || !(*cur)->spec)
		return fail(err, HF_EINTERNAL,
			    "service '%s' has no usable target configuration",
			    (*svc)->name);
	return 0;
}

/*
 * A new configuration (no id yet) from a spec, with counts set over its
 * own (may be NULL): loaded, and checked for what holdfast supports and
 * for plans that name undeclared pods. Pure: no lock needed. It is a
 * candidate, not a record: it joins the model only through an
 * HF_ACT_ADD_SERVICE or HF_ACT_ADD_CONFIG action (apply.h).
 */
static int config_new(const struct hf_ops_spec *in,
		      const struct hf_kvlist *counts, struct hf_config **out,
		      struct hf_ops_err *err)
{
	struct hf_config *cand;
	int rc = 0;

	*out = NULL;
	if (!in->text)
		return fail(err, HF_EINVAL, "a service needs its spec text");
	cand = hf_xcalloc(1, sizeof(*cand));
	cand->text = hf_xstrdup(in->text);
	if (in->file)
		cand->file = hf_xstrdup(in->file);
	if (in->name)
		cand->name = hf_xstrdup(in->name);
	if (in->options)
		hf_kvlist_copy(&cand->options, in->options);
	if (in->templates)
		hf_kvlist_copy(&cand->templates, in->templates);
	if (counts)
		hf_kvlist_copy(&cand->counts, counts);
	cand->created = hf_now_ms();
	if (hf_state_config_load(cand, &err->diags)) {
		rc = fail(err, HF_ESPEC, "the service spec is invalid");
		goto out;
	}
	/* Warnings of a spec that loads are not an answer's business. */
	hf_diags_release(&err->diags);
	if (hf_spec_check_supported(cand->spec, &err->diags)) {
		rc = fail(err, HF_EUNSUPPORTED,
			  "the spec uses what holdfast does not support yet");
		goto out;
	}
	hf_diags_release(&err->diags);
	for (size_t p = 0; p < cand->spec->plans.len; p++) {
		const struct hf_spec_plan *pl = &cand->spec->plans.items[p];

		for (size_t k = 0; k < pl->phases.len; k++) {
			const struct hf_spec_phase *ph = &pl->phases.items[k];

			if (ph->pod && !hf_spec_find_pod(cand->spec, ph->pod)) {
				rc = fail(err, HF_ESPEC,
					  "plan '%s' phase '%s' refers to pod "
					  "'%s', which the spec does not "
					  "declare",
					  pl->name, ph->name, ph->pod);
				goto out;
			}
		}
	}
out:
	if (rc)
		hf_state_config_free(cand);
	else
		*out = cand;
	return rc;
}

/*
 * Encrypted volumes need the server's cluster key to seal their keys: a
 * spec declaring one is refused by a server without it, before anything
 * changes.
 */
static int keys_available(struct hf_srv *s, const struct hf_config *cfg,
			  struct hf_ops_err *err)
{
	const char *pod, *vol, *key;
	size_t at = 0;

	while (hf_spec_next_secure(cfg->spec, &at, &pod, &vol, &key)) {
		uint8_t k[HF_VOL_CLUSTER_KEY_LEN];
		char *why = NULL;
		int rc;

		if (!key[0] && s->opts.have_cluster_key)
			continue;
		if (!key[0])
			goto no_cluster_key;
		rc = hf_cred_sealing_key(s, key, k, &why);
		explicit_bzero(k, sizeof(k));
		if (rc) {
			rc = fail(err, rc == HF_EUNAVAIL ? rc : HF_EREFUSED,
				  "pod '%s': external volume '%s' is sealed by "
				  "secret_key=%s: %s",
				  pod, vol, key, why);
			free(why);
			return rc;
		}
	}
	return 0;
no_cluster_key:
	return fail(err, HF_EREFUSED,
		    "pod '%s': external volume '%s' is encrypted "
		    "(secure=true) and this server has no cluster key to seal "
		    "its key with: start the server with --cluster-key-file "
		    "FILE (64 hex digits: openssl rand -hex 32) or "
		    "HOLDFAST_CLUSTER_KEY",
		    pod, vol);
}

void hf_ops_deployed_release(struct hf_ops_deployed *d)
{
	free(d->service);
	free(d->config_id);
	hf_ops_volumes_release(&d->kept);
	memset(d, 0, sizeof(*d));
}

int hf_ops_deploy(struct hf_srv *s, const struct hf_ops_spec *spec,
		  struct hf_ops_deployed *out, struct hf_ops_err *err)
{
	const char *id = "1";
	struct hf_config *cfg;
	struct hf_service *svc;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = config_new(spec, NULL, &cfg, err);

	if (rc)
		return rc;
	rc = keys_available(s, cfg, err);
	if (rc)
		goto out;
	rc = enter(s, err);
	if (rc)
		goto out;
	svc = hf_state_service(s, cfg->spec->name);
	if (!svc) {
		char *skey = hf_state_key("/standby/%s", cfg->spec->name, NULL);
		json_t *sb = NULL;

		if (hf_state_get_record(s, skey, &sb) == 0)
			rc = fail(err, HF_ECONFLICT,
				  "service '%s' is the standby of remote "
				  "cluster %s here (disaster recovery): it does "
				  "not run while that cluster is its primary",
				  cfg->spec->name,
				  json_string_value(json_object_get(sb, "from"))
				      ? json_string_value(
					    json_object_get(sb, "from"))
				      : "?");
		json_decref(sb);
		free(skey);
		if (rc)
			goto leave;
	}
	if (svc) {
		rc = fail(err, HF_EEXISTS,
			  svc->removing
			      ? "service '%s' is being removed; deploy it again "
				"once it is gone"
			      : "service '%s' already exists; use an update to "
				"change it",
			  svc->name);
		goto leave;
	}
	x = hf_actions_push(&a, HF_ACT_ADD_SERVICE, cfg->spec->name, NULL,
			    NULL);
	x->u.config.id = hf_xstrdup(id);
	x->u.config.config = cfg;
	x->u.config.next_config = 2;
	x->u.config.at = hf_now_ms();
	cfg = NULL; /* the list's, then the service's */
	/* The service first: the deploy run's start is decided on it. */
	hf_apply(s, &a);
	svc = hf_state_service(s, x->service);
	hf_actions_reset(&a);
	if (!svc) {
		rc = fail(err, HF_EINTERNAL, "the service was not added");
		goto leave;
	}
	hf_apply_ctx(s, &ctx);
	hf_decide_start_plan(&s->model, svc, "deploy", NULL, &ctx, &a);
	hf_actions_log(&a, "service %s: deployed config %s", svc->name, id);
	note_event(&a, svc->name, "service", svc->name, NULL, "deployed",
		   spec->file);
	carry_out(s, &a);
	out->service = hf_xstrdup(svc->name);
	out->config_id = hf_xstrdup(id);
	out->plan = "deploy";
	hf_ops_kept_volumes(s, svc->name, &out->kept);
leave:
	rc = leave(s, rc, err);
out:
	hf_actions_release(&a);
	hf_state_config_free(cfg);
	return rc;
}

void hf_ops_change_release(struct hf_ops_change *c)
{
	hf_spec_diff_release(&c->diff);
	free(c->from);
	free(c->to);
	free(c->refused);
	memset(c, 0, sizeof(*c));
}

/* A pod count's change (ci below): the new target's counts, made from base. */
struct counts_in {
	const char *base;               /* the target they were made from */
	const struct hf_kvlist *counts; /* all the new target's */
	const char *why;                /* its event's */
	const char *who;                /* its event's; NULL: operator */
};
static int counts_carry(const struct hf_config *cur, struct hf_config **cfg,
			const struct counts_in *ci, struct hf_ops_err *err);
static void counts_note(const struct hf_config *cur,
			const struct hf_config *cfg, const struct counts_in *ci,
			struct hf_spec_diff *d);

/*
 * Update (apply) or diff: the new spec is diffed against the target; a
 * refused change leaves everything as it was and says every reason. ci:
 * a pod count's (else counts set over the target's spec are carried over
 * by counts_carry's rule).
 */
static int change(struct hf_srv *s, const char *name,
		  const struct hf_ops_spec *spec, bool apply,
		  const struct counts_in *ci, struct hf_ops_change *out,
		  struct hf_ops_err *err)
{
	struct hf_config *cfg, *cur, *added;
	struct hf_service *svc;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	struct hf_action *x;
	struct hf_ops_spec named = *spec;
	char *given = NULL;
	int rc;

	/*
	 * A service named over its spec's name (a stack's) keeps that name:
	 * a spec given without one is read under it.
	 */
	if (!spec->name) {
		hf_state_lock(s);
		svc = name ? hf_state_service(s, name) : NULL;
		cur = svc ? hf_state_target(svc) : NULL;
		if (cur && cur->name)
			given = hf_xstrdup(cur->name);
		hf_state_unlock(s);
		named.name = given;
	}
	rc = config_new(&named, ci ? ci->counts : NULL, &cfg, err);
	free(given);
	if (rc)
		return rc;
	rc = keys_available(s, cfg, err);
	if (rc)
		goto out;
	rc = enter(s, err);
	if (rc)
		goto out;
	rc = changeable(s, name, &svc, &cur, err);
	if (rc)
		goto leave;
	if (strcmp(cfg->spec->name, svc->name) != 0) {
		rc = fail(err, HF_EREFUSED,
			  "the spec is for service '%s', not '%s'; a service's "
			  "name cannot change",
			  cfg->spec->name, svc->name);
		goto leave;
	}
	rc = counts_carry(cur, &cfg, ci, err);
	if (rc)
		goto leave;
	hf_spec_diff(cur->spec, cfg->spec, &out->diff);
	counts_note(cur, cfg, ci, &out->diff);
	out->from = hf_xstrdup(cur->id);
	if (out->diff.refusals.len) {
		char *why = hf_xasprintf("the change is refused: %s%s",
					 out->diff.refusals.items[0],
					 out->diff.refusals.len > 1
					     ? " (and more)"
					     : "");

		if (apply)
			rc = fail(err, HF_EREFUSED, "%s", why);
		else
			out->refused = hf_xstrdup(why);
		free(why);
		goto leave;
	}
	if (!apply || hf_spec_diff_is_empty(&out->diff))
		goto leave;
	x = hf_actions_push(&a, HF_ACT_ADD_CONFIG, svc->name, NULL, NULL);
	x->u.config.id = hf_xasprintf("%u", svc->next_config);
	x->u.config.config = cfg;
	x->u.config.next_config = svc->next_config + 1;
	cfg = NULL; /* the list's, then the service's */
	note_event_by(&a, ci && ci->who ? ci->who : "operator", svc->name,
		      "service", svc->name, cur->id, x->u.config.id,
		      ci ? ci->why : "update");
	/* The config first: the change is decided on it. */
	hf_apply(s, &a);
	added = hf_state_config(svc, a.items[0].u.config.id);
	hf_actions_reset(&a);
	if (!added) {
		rc = fail(err, HF_EINTERNAL, "the configuration was not added");
		goto leave;
	}
	out->to = hf_xstrdup(added->id);
	out->changed = true;
	out->plan = hf_spec_update_plan_name(added->spec, false);
	hf_apply_ctx(s, &ctx);
	hf_decide_set_target(&s->model, svc, added, false, &ctx, &a);
	carry_out(s, &a);
	hf_actions_reset(&a);
	grow_volumes(s, svc, added, &a);
leave:
	rc = leave(s, rc, err);
out:
	hf_actions_release(&a);
	hf_state_config_free(cfg);
	return rc;
}

int hf_ops_update(struct hf_srv *s, const char *svc,
		  const struct hf_ops_spec *spec, struct hf_ops_change *out,
		  struct hf_ops_err *err)
{
	return change(s, svc, spec, true, NULL, out, err);
}

int hf_ops_diff(struct hf_srv *s, const char *svc,
		const struct hf_ops_spec *spec, struct hf_ops_change *out,
		struct hf_ops_err *err)
{
	return change(s, svc, spec, false, NULL, out, err);
}

int hf_ops_rollback(struct hf_srv *s, const char *name, const char *to,
		    struct hf_ops_change *out, struct hf_ops_err *err)
{
	struct hf_service *svc;
	struct hf_config *cur, *dst;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	int rc = enter(s, err);

	if (rc)
		return rc;
	svc = find_service(s, name, err);
	if (!svc) {
		rc = HF_ENOTFOUND;
		goto out;
	}
	cur = hf_state_target(svc);
	if (!to)
		to = svc->previous;
	dst = to ? hf_state_config(svc, to) : NULL;
	if (!dst || !dst->spec || !cur || !cur->spec) {
		rc = to ? fail(err, HF_ENOTFOUND,
			       "service '%s' has no usable configuration '%s'",
			       svc->name, to)
			: fail(err, HF_ECONFLICT,
			       "service '%s' has no previous configuration to "
			       "roll back to",
			       svc->name);
		goto out;
	}
	if (strcmp(dst->id, cur->id) == 0) {
		rc = fail(err, HF_ECONFLICT,
			  "configuration %s is already the target", dst->id);
		goto out;
	}
	hf_spec_diff(cur->spec, dst->spec, &out->diff);
	out->from = hf_xstrdup(cur->id);
	if (out->diff.refusals.len) {
		rc = fail(err, HF_EREFUSED, "the rollback is refused: %s",
			  out->diff.refusals.items[0]);
		goto out;
	}
	out->to = hf_xstrdup(dst->id);
	out->changed = true;
	note_event(&a, svc->name, "service", svc->name, cur->id, dst->id,
		   "rollback");
	hf_apply_ctx(s, &ctx);
	hf_decide_set_target(&s->model, svc, dst, true, &ctx, &a);
	carry_out(s, &a);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

void hf_ops_removed_release(struct hf_ops_removed *r)
{
	free(r->service);
	hf_ops_volumes_release(&r->volumes);
	memset(r, 0, sizeof(*r));
}

int hf_ops_remove(struct hf_srv *s, const char *name, bool delete_volumes,
		  struct hf_ops_removed *out, struct hf_ops_err *err)
{
	struct hf_service *svc;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	svc = name ? hf_state_service(s, name) : NULL;
	if (!svc) {
		struct hf_ops_volumes kept = {0};

		/*
		 * Removed before with its volumes kept: a remove that deletes
		 * volumes deletes them now.
		 */
		if (name && delete_volumes &&
		    hf_decide_delete_kept(&s->model, name, NULL, "operator",
					  &a)) {
			volumes_of(&s->model, &a, &out->volumes);
			carry_out(s, &a);
			out->service = hf_xstrdup(name);
			out->delete_volumes = true;
			out->already_removed = true;
			goto out;
		}
		if (name && !delete_volumes)
			hf_ops_kept_volumes(s, name, &kept);
		if (kept.len)
			rc = fail(err, HF_ENOTFOUND,
				  "service '%s' was already removed; its "
				  "volumes are kept (remove with "
				  "--delete-volumes, or 'holdfast volume "
				  "delete %s', deletes them)",
				  name, name);
		else
			find_service(s, name, err);
		hf_ops_volumes_release(&kept);
		rc = HF_ENOTFOUND;
		goto out;
	}
	x = hf_actions_push(&a, HF_ACT_SERVICE, svc->name, NULL, NULL);
	x->u.svc.set = HF_SVC_REMOVING | HF_SVC_DELETE_VOLUMES;
	x->u.svc.removing = true;
	x->u.svc.delete_volumes = delete_volumes;
	hf_actions_log(&a, "service %s: removal requested (%s volumes)",
		       svc->name, delete_volumes ? "deleting" : "keeping");
	note_event(&a, svc->name, "service", svc->name, "active", "removing",
		   delete_volumes ? "delete volumes" : "keep volumes");
	carry_out(s, &a);
	out->service = hf_xstrdup(svc->name);
	out->delete_volumes = delete_volumes;
	for (size_t i = 0; i < svc->instances.len; i++) {
		struct hf_instance *in = svc->instances.items[i];
		struct hf_ops_volume *e;

		if (!in->node || !hf_model_instance_has_volumes(svc, in))
			continue;
		e = HF_VEC_PUSH(&out->volumes);
		memset(e, 0, sizeof(*e));
		e->key = hf_sched_instance_volume_key(svc, in);
		e->service = hf_xstrdup(svc->name);
		e->instance = hf_xstrdup(in->name);
		e->node = hf_xstrdup(in->node);
	}
	hf_sched_changed(s, true);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/* ------------------------------------------------------------------ */
/* Plans                                                                */

/* What a plan operation acts on. */
struct plan_ctx {
	struct hf_service *svc;
	const struct hf_plan_def *def; /* NULL: the target has no such plan */
	struct hf_plan_run *run;       /* NULL: not started */
};

/* Finds a phase (by name) in a plan definition; -1 if absent. */
static long phase_index(const struct hf_plan_def *def, const char *name)
{
	for (size_t p = 0; name && p < def->phases.len; p++)
		if (strcmp(def->phases.items[p].name, name) == 0)
			return (long)p;
	return -1;
}

/* The service, and the plan of its target (pc->def may be NULL). */
static int plan_lookup(struct hf_srv *s, const char *svc, const char *plan,
		       struct plan_ctx *pc, struct hf_ops_err *err)
{
	struct hf_config *cfg;

	memset(pc, 0, sizeof(*pc));
	pc->svc = find_service(s, svc, err);
	if (!pc->svc)
		return HF_ENOTFOUND;
	cfg = hf_state_target(pc->svc);
	pc->def = cfg && plan ? hf_plan_defs_find(&cfg->plans, plan) : NULL;
	return 0;
}

/* Whether the plan (and phase, when named) may be acted on now. */
static int plan_usable(struct plan_ctx *pc, const char *plan,
		       const char *phase, struct hf_ops_err *err)
{
	if (!pc->def)
		return fail(err, HF_ENOTFOUND, "service '%s' has no plan '%s'",
			    pc->svc->name, plan ? plan : "");
	if (phase && phase_index(pc->def, phase) < 0)
		return fail(err, HF_ENOTFOUND, "plan '%s' has no phase '%s'",
			    plan, phase);
	if (pc->svc->removing)
		return fail(err, HF_ECONFLICT, "service '%s' is being removed",
			    pc->svc->name);
	pc->run = hf_state_run(pc->svc, plan);
	return 0;
}

/* plan_lookup, then plan_usable. */
static int plan_find(struct hf_srv *s, const char *svc, const char *plan,
		     const char *phase, struct plan_ctx *pc,
		     struct hf_ops_err *err)
{
	int rc = plan_lookup(s, svc, plan, pc, err);

	return rc ? rc : plan_usable(pc, plan, phase, err);
}

/* A change to the run of plan `plan` (the action's set and fields). */
static struct hf_action *run_act(struct hf_actions *a,
				 const struct plan_ctx *pc, const char *plan,
				 unsigned set)
{
	struct hf_action *x = hf_actions_push(a, HF_ACT_RUN, pc->svc->name,
					      NULL, NULL);

	x->u.run.plan = hf_xstrdup(plan);
	x->u.run.set = set;
	return x;
}

/*
 * A plan operation is decided: the event says what the operator did to
 * which plan, phase or step, the list is carried out (the run's actions
 * write its record) and the scheduler looks.
 */
static void plan_done(struct hf_srv *s, const struct plan_ctx *pc,
		      struct hf_actions *a, const char *plan,
		      const char *phase, const char *step, const char *what)
{
	char *obj = hf_xasprintf("%s%s%s%s%s", plan, phase ? "/" : "",
				 phase ? phase : "", step ? "/" : "",
				 step ? step : "");

	note_event(a, pc->svc->name, "plan", obj, NULL, what, NULL);
	free(obj);
	carry_out(s, a);
	hf_sched_changed(s, true);
}

int hf_ops_plan_start(struct hf_srv *s, const char *svc, const char *plan,
		      const struct hf_kvlist *params, struct hf_ops_err *err)
{
	struct plan_ctx pc;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = plan_find(s, svc, plan, NULL, &pc, err);
	if (rc)
		goto out;
	hf_apply_ctx(s, &ctx);
	hf_decide_start_plan(&s->model, pc.svc, plan, params, &ctx, &a);
	plan_done(s, &pc, &a, plan, NULL, NULL, "start");
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_plan_stop(struct hf_srv *s, const char *svc, const char *plan,
		     struct hf_ops_err *err)
{
	struct plan_ctx pc;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = plan_find(s, svc, plan, NULL, &pc, err);
	if (rc)
		goto out;
	if (!pc.run) {
		rc = fail(err, HF_ECONFLICT, "plan '%s' is not running", plan);
		goto out;
	}
	x = run_act(&a, &pc, plan,
		    HF_RUN_ACTIVE | HF_RUN_INTERRUPTED | HF_RUN_COMPLETED_CLEAR);
	x->u.run.active = false;
	x->u.run.interrupted = true;
	plan_done(s, &pc, &a, plan, NULL, NULL, "stop");
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_plan_interrupt(struct hf_srv *s, const char *svc,
			  const char *plan, const char *phase,
			  struct hf_ops_err *err)
{
	struct plan_ctx pc;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = plan_find(s, svc, plan, phase, &pc, err);
	if (rc)
		goto out;
	if (!pc.run) {
		rc = fail(err, HF_ECONFLICT, "plan '%s' has not been started",
			  plan);
		goto out;
	}
	if (!phase) {
		x = run_act(&a, &pc, plan, HF_RUN_INTERRUPTED);
		x->u.run.interrupted = true;
	} else {
		x = run_act(&a, &pc, plan, HF_RUN_INTERRUPT_PHASE);
		x->u.run.key = hf_xstrdup(phase);
	}
	plan_done(s, &pc, &a, plan, phase, NULL, "interrupt");
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/*
 * The continues a canary phase still needs: one lets its first step go,
 * a second the rest once the first is complete (plan/engine.c). *next is
 * the step the next one lets go (-1 when none is needed).
 */
static int canary_left(const struct hf_plan_phase_def *ph,
		       const struct hf_step_out *steps, int continues,
		       long *next)
{
	bool first_done, rest_left = false;
	int need, left;

	*next = -1;
	if (ph->strategy != HF_STRATEGY_SERIAL_CANARY &&
	    ph->strategy != HF_STRATEGY_PARALLEL_CANARY)
		return 0;
	if (!ph->steps.len)
		return 0;
	first_done = steps[0].status == HF_STATUS_COMPLETE;
	for (size_t i = 1; i < ph->steps.len; i++)
		if (steps[i].status != HF_STATUS_COMPLETE)
			rest_left = true;
	need = rest_left ? 2 : first_done ? 0 : 1;
	left = need > continues ? need - continues : 0;
	if (!left)
		return 0;
	if (continues < 1 && !first_done) {
		*next = 0;
	} else {
		for (size_t i = 1; i < ph->steps.len && *next < 0; i++)
			if (steps[i].status != HF_STATUS_COMPLETE)
				*next = (long)i;
	}
	return left;
}

static int run_continues(const struct hf_plan_run *run, const char *phase)
{
	const char *c = hf_kvlist_get(&run->continues, phase);

	return c ? atoi(c) : 0;
}

/* The canary gates a run still has, after its view v, and their sum. */
static void canary_gates(const struct hf_plan_def *def,
			 const struct hf_plan_run *run,
			 const struct hf_plan_view *v,
			 struct hf_ops_continued *out)
{
	size_t base = 0;

	out->continues_needed = 0;
	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		long next;
		int left = canary_left(ph, &v->steps[base],
				       run_continues(run, ph->name), &next);

		if (left) {
			struct hf_ops_gate *g = HF_VEC_PUSH(&out->gates);

			g->phase = hf_xstrdup(ph->name);
			g->step = hf_xstrdup(ph->steps.items[next].name);
			g->continues_left = left;
			g->first_step = next == 0;
			out->continues_needed += left;
		}
		base += ph->steps.len;
	}
}

void hf_ops_continued_release(struct hf_ops_continued *c)
{
	hf_strlist_release(&c->did);
	for (size_t i = 0; i < c->gates.len; i++) {
		free(c->gates.items[i].phase);
		free(c->gates.items[i].step);
	}
	HF_VEC_FREE(&c->gates);
	memset(c, 0, sizeof(*c));
}

/* Adds a formatted sentence to a list. */
static void say(struct hf_strlist *l, const char *fmt, ...) HF_PRINTF(2, 3);
static void say(struct hf_strlist *l, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_strlist_push(l, hf_buf_str(&b));
	hf_buf_release(&b);
}

int hf_ops_plan_continue(struct hf_srv *s, const char *svc,
			 const char *plan, const char *phase,
			 struct hf_ops_continued *out, struct hf_ops_err *err)
{
	const struct hf_plan_def *def;
	struct hf_plan_run *run;
	struct plan_ctx pc;
	struct hf_plan_view v;
	struct hf_actions a = {0};
	struct hf_action *x;
	bool whole, ph_int;
	long gate_phase = -1, gate_step = -1;
	enum hf_status before;
	size_t base = 0;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = plan_find(s, svc, plan, phase, &pc, err);
	if (rc)
		goto out;
	def = pc.def;
	run = pc.run;
	if (!run) {
		rc = fail(err, HF_ECONFLICT, "plan '%s' has not been started",
			  plan);
		goto out;
	}
	if (hf_sched_plan_view(s, pc.svc, def->name, &v)) {
		rc = fail(err, HF_EINTERNAL, "plan '%s' cannot be evaluated",
			  plan);
		goto out;
	}
	whole = run->interrupted;
	ph_int = phase && hf_strlist_has(&run->interrupted_phases, phase);
	before = v.status;
	for (size_t p = 0; p < def->phases.len && gate_phase < 0; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		long next;

		if ((!phase || strcmp(ph->name, phase) == 0) &&
		    canary_left(ph, &v.steps[base],
				run_continues(run, ph->name), &next)) {
			gate_phase = (long)p;
			gate_step = next;
		}
		base += ph->steps.len;
	}
	hf_plan_view_release(&v);
	/* A run that stopped short (a newer config's plan took over). */
	if (!run->active && before != HF_STATUS_COMPLETE)
		whole = true;
	if (before == HF_STATUS_COMPLETE && !run->interrupted && !ph_int) {
		rc = fail(err, HF_ECONFLICT,
			  "plan '%s' is already COMPLETE: there is nothing to "
			  "continue",
			  def->name);
		goto out;
	}
	if (!whole && !ph_int && gate_phase < 0) {
		rc = fail(err, HF_ECONFLICT,
			  "plan '%s' is %s: %s is not interrupted and no "
			  "canary step waits for a continue",
			  def->name, hf_status_name(before),
			  phase ? "the phase" : "it");
		goto out;
	}
	if (run->interrupted)
		say(&out->did, "the plan is no longer interrupted");
	else if (whole)
		say(&out->did, "the plan runs again");
	x = run_act(&a, &pc, plan, HF_RUN_INTERRUPTED | HF_RUN_ACTIVE);
	x->u.run.interrupted = false;
	x->u.run.active = true;
	if (ph_int) {
		x = run_act(&a, &pc, plan, HF_RUN_RESUME_PHASE);
		x->u.run.key = hf_xstrdup(phase);
		say(&out->did, "phase %s is no longer interrupted", phase);
	}
	if (gate_phase >= 0) {
		const struct hf_plan_phase_def *ph =
		    &def->phases.items[gate_phase];
		int c = run_continues(run, ph->name) + 1;
		char num[16];

		snprintf(num, sizeof(num), "%d", c);
		x = run_act(&a, &pc, plan, HF_RUN_CONTINUES);
		x->u.run.key = hf_xstrdup(ph->name);
		x->u.run.value = hf_xstrdup(num);
		if (gate_step == 0)
			say(&out->did,
			    "canary gate %d of %d in phase %s passed: %s goes",
			    c, ph->steps.len > 1 ? 2 : 1, ph->name,
			    ph->steps.items[0].name);
		else
			say(&out->did,
			    "canary gate %d of 2 in phase %s passed: %s%s go%s "
			    "once %s is complete",
			    c, ph->name, ph->steps.items[gate_step].name,
			    ph->steps.len > 2 ? " and the rest" : "",
			    ph->steps.len > 2 ? "" : "es",
			    ph->steps.items[0].name);
	}
	plan_done(s, &pc, &a, plan, phase, NULL, "continue");
	/* What is left to continue, as the run now stands. */
	run = hf_state_run(pc.svc, plan);
	if (run && hf_sched_plan_view(s, pc.svc, def->name, &v) == 0) {
		out->has_status = true;
		out->status = v.status;
		canary_gates(def, run, &v, out);
		hf_plan_view_release(&v);
	}
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

/*
 * Resolves a step (its name, or "plan/phase/step") in a phase; *key is
 * "phase/step" (the caller frees it).
 */
static int find_step(const struct hf_plan_def *def, const char *phase,
		     const char *step, const struct hf_plan_step_def **st_out,
		     char **key, struct hf_ops_err *err)
{
	const struct hf_plan_phase_def *ph;
	long p = phase_index(def, phase);

	if (!phase || !step)
		return fail(err, HF_EINVAL,
			    "this call needs ?phase=NAME&step=NAME");
	if (p < 0)
		return fail(err, HF_ENOTFOUND, "plan '%s' has no phase '%s'",
			    def->name, phase);
	ph = &def->phases.items[p];
	for (size_t k = 0; k < ph->steps.len; k++) {
		const struct hf_plan_step_def *st = &ph->steps.items[k];
		char *id = hf_xasprintf("%s/%s/%s", def->name, phase, st->name);
		bool match = strcmp(st->name, step) == 0 || strcmp(id, step) == 0;

		free(id);
		if (match) {
			*st_out = st;
			*key = hf_xasprintf("%s/%s", ph->name, st->name);
			return 0;
		}
	}
	return fail(err, HF_ENOTFOUND, "phase '%s' has no step '%s'", phase,
		    step);
}

/*
 * The run a step operation changes: started first (ahead of the
 * operation's changes in list a) if it has none.
 */
static void step_run(struct hf_srv *s, const struct plan_ctx *pc,
		     const char *plan, struct hf_actions *a)
{
	struct hf_decide_ctx ctx;

	if (pc->run)
		return;
	hf_apply_ctx(s, &ctx);
	hf_decide_start_plan(&s->model, pc->svc, plan, NULL, &ctx, a);
}

int hf_ops_plan_force_complete(struct hf_srv *s, const char *svc,
			       const char *plan, const char *phase,
			       const char *step, bool *drain_skipped,
			       struct hf_ops_err *err)
{
	const struct hf_plan_step_def *st;
	struct plan_ctx pc;
	struct hf_actions a = {0};
	struct hf_action *x;
	char *key = NULL;
	int rc = enter(s, err);

	*drain_skipped = false;
	if (rc)
		return rc;
	rc = plan_lookup(s, svc, plan, &pc, err);
	if (rc)
		goto out;
	/* The generated decommission plan: a drain that is not waited for. */
	if (!pc.def && plan && strcmp(plan, "decommission") == 0) {
		char *inst = step ? hf_xstrndup(step, strcspn(step, ":")) : NULL;
		struct hf_instance *in =
		    inst ? hf_state_instance(pc.svc, inst) : NULL;

		if (in) {
			hf_decide_skip_drain(pc.svc, in, &a);
			carry_out(s, &a);
			hf_sched_changed(s, false);
			*drain_skipped = true;
		} else
			rc = fail(err, HF_ENOTFOUND,
				  "no instance is being decommissioned as "
				  "'%s'",
				  step ? step : "");
		free(inst);
		goto out;
	}
	rc = plan_usable(&pc, plan, phase, err);
	if (!rc)
		rc = find_step(pc.def, phase, step, &st, &key, err);
	if (rc)
		goto out;
	step_run(s, &pc, plan, &a);
	x = run_act(&a, &pc, plan, HF_RUN_FORCE_COMPLETE | HF_RUN_ACTIVE);
	x->u.run.key = hf_xstrdup(key);
	x->u.run.active = true;
	plan_done(s, &pc, &a, plan, phase, step, "forceComplete");
out:
	hf_actions_release(&a);
	free(key);
	return leave(s, rc, err);
}

int hf_ops_plan_restart(struct hf_srv *s, const char *svc, const char *plan,
			const char *phase, const char *step,
			struct hf_ops_err *err)
{
	const struct hf_plan_step_def *st;
	const struct hf_instance *in;
	struct plan_ctx pc;
	struct hf_actions a = {0};
	struct hf_action *x;
	char *key = NULL, *iname;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = plan_find(s, svc, plan, phase, &pc, err);
	if (!rc)
		rc = find_step(pc.def, phase, step, &st, &key, err);
	if (rc)
		goto out;
	step_run(s, &pc, plan, &a);
	iname = hf_xasprintf("%s-%lld", st->pod, (long long)st->index);
	in = hf_state_instance(pc.svc, iname);
	free(iname);
	for (size_t t = 0; in && t < st->tasks.len; t++) {
		const char *task = st->tasks.items[t];
		const struct hf_task_slot *sl = hf_model_slot_find(in, task);
		const struct hf_task_rec *r = sl ? sl->cur : NULL;
		bool live = r && hf_task_state_live(r->state);

		x = hf_actions_push(&a, HF_ACT_SLOT, pc.svc->name, in->name,
				    task);
		x->u.slot.set = HF_SLOT_ONCE_DONE;
		x->u.slot.once_done = false;
		/* A result that is not live is forgotten: run it again. */
		if (r && !live)
			x->u.slot.set |= HF_SLOT_FORGET;
		if (!live)
			continue;
		x = hf_actions_push(&a, HF_ACT_TASK, pc.svc->name, in->name,
				    task);
		x->u.tsk.id = hf_xstrdup(r->id);
		x->u.tsk.set = HF_TASK_KILL | HF_TASK_RESTART;
		x->u.tsk.kill = true;
		x->u.tsk.restart = false;
	}
	x = run_act(&a, &pc, plan, HF_RUN_RESTART_STEP | HF_RUN_ACTIVE);
	x->u.run.key = hf_xstrdup(key);
	x->u.run.active = true;
	plan_done(s, &pc, &a, plan, phase, step, "restart");
out:
	hf_actions_release(&a);
	free(key);
	return leave(s, rc, err);
}

/* ------------------------------------------------------------------ */
/* Pods                                                                 */

enum pod_op { POD_RESTART, POD_REPLACE, POD_PAUSE, POD_RESUME };

static int pod_op(struct hf_srv *s, const char *name, const char *pod,
		  enum pod_op op, struct hf_strlist *tasks,
		  struct hf_ops_err *err)
{
	static const char *const names[] = {"restart", "replace", "pause",
					    "resume"};
	struct hf_service *svc;
	struct hf_instance *in;
	struct hf_decide_ctx ctx;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	svc = find_service(s, name, err);
	if (!svc) {
		rc = HF_ENOTFOUND;
		goto out;
	}
	in = pod ? hf_state_instance(svc, pod) : NULL;
	if (!in) {
		rc = fail(err, HF_ENOTFOUND, "service '%s' has no pod '%s'",
			  svc->name, pod ? pod : "");
		goto out;
	}
	if (svc->removing || hf_instance_replacing(in)) {
		rc = fail(err, HF_ECONFLICT, "%s is being %s", pod,
			  svc->removing ? "removed" : "replaced");
		goto out;
	}
	if ((op == POD_PAUSE && in->paused) ||
	    (op == POD_RESUME && !in->paused)) {
		rc = fail(err, HF_ECONFLICT, "pod %s is %s paused", pod,
			  in->paused ? "already" : "not");
		goto out;
	}
	for (size_t k = 0; k < in->slots.len; k++)
		say(tasks, "%s-%s", in->name, in->slots.items[k].task);
	hf_apply_ctx(s, &ctx);
	switch (op) {
	case POD_RESTART:
		hf_decide_pod_restart(&s->model, svc, in,
				      "pod restart requested", &ctx, &a);
		break;
	case POD_REPLACE:
		x = hf_actions_push(&a, HF_ACT_INSTANCE, svc->name, in->name,
				    NULL);
		x->u.inst.set = HF_INST_EVENT;
		x->u.inst.event = HF_IEV_REPLACE;
		break;
	case POD_PAUSE:
	case POD_RESUME:
		x = hf_actions_push(&a, HF_ACT_INSTANCE, svc->name, in->name,
				    NULL);
		x->u.inst.set = HF_INST_PAUSED;
		x->u.inst.paused = op == POD_PAUSE;
		hf_decide_pod_restart(&s->model, svc, in,
				      op == POD_PAUSE ? "pod pause requested"
						      : "pod resume requested",
				      &ctx, &a);
		break;
	}
	hf_actions_log(&a, "service %s: pod %s %s requested", svc->name, pod,
		       names[op]);
	note_event(&a, svc->name, "pod", pod, NULL, names[op], NULL);
	carry_out(s, &a);
	hf_sched_changed(s, true);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

int hf_ops_pod_restart(struct hf_srv *s, const char *svc, const char *pod,
		       struct hf_strlist *tasks, struct hf_ops_err *err)
{
	return pod_op(s, svc, pod, POD_RESTART, tasks, err);
}

int hf_ops_pod_replace(struct hf_srv *s, const char *svc, const char *pod,
		       struct hf_strlist *tasks, struct hf_ops_err *err)
{
	return pod_op(s, svc, pod, POD_REPLACE, tasks, err);
}

int hf_ops_pod_pause(struct hf_srv *s, const char *svc, const char *pod,
		     struct hf_strlist *tasks, struct hf_ops_err *err)
{
	return pod_op(s, svc, pod, POD_PAUSE, tasks, err);
}

int hf_ops_pod_resume(struct hf_srv *s, const char *svc, const char *pod,
		      struct hf_strlist *tasks, struct hf_ops_err *err)
{
	return pod_op(s, svc, pod, POD_RESUME, tasks, err);
}

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

int hf_ops_node_decommission(struct hf_srv *s, const char *id,
			     struct hf_strlist *moved, struct hf_ops_err *err)
{
	struct hf_node *n;
	struct hf_actions a = {0};
	struct hf_action *x;
	int rc = enter(s, err);

	if (rc)
		return rc;
	n = id ? hf_state_node(s, id) : NULL;
	if (!n) {
		rc = fail(err, HF_ENOTFOUND, "no node '%s'", id ? id : "");
		goto out;
	}
	x = hf_actions_push(&a, HF_ACT_NODE, NULL, NULL, NULL);
	x->u.node.node = hf_xstrdup(n->id);
	x->u.node.set = HF_NODE_DECOMMISSIONED;
	x->u.node.decommissioned = true;
	hf_actions_log(&a, "node %s decommissioned by the operator", id);
	note_event(&a, NULL, "node", id, NULL, "decommissioned",
		   "its pods are replaced elsewhere");
	carry_out(s, &a);
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];

			if (in->node && strcmp(in->node, id) == 0)
				say(moved, "%s/%s", svc->name, in->name);
		}
	}
	hf_sched_changed(s, true);
out:
	hf_actions_release(&a);
	return leave(s, rc, err);
}

void hf_ops_adopted_release(struct hf_ops_adopted *a)
{
	free(a->cluster);
	memset(a, 0, sizeof(*a));
}

int hf_ops_node_adopt(struct hf_srv *s, const char *node,
		      struct hf_ops_adopted *out, struct hf_ops_err *err)
{
	char *why = NULL;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = hf_cluster_adopt(s, node ? node : "", &out->live_tasks, &why);
	if (rc) {
		fail(err, rc, "%s", why);
		free(why);
		goto out;
	}
	out->cluster = s->cluster_id ? hf_xstrdup(s->cluster_id) : NULL;
	hf_sched_changed(s, true);
out:
	return leave(s, rc, err);
}

int hf_ops_node_reset_identity(struct hf_srv *s, const char *node,
			       struct hf_ops_err *err)
{
	char *why = NULL;
	int rc = enter(s, err);

	if (rc)
		return rc;
	rc = hf_nodeauth_reset(s, node ? node : "", &why);
	if (rc) {
		fail(err, rc, "%s", why);
		free(why);
	}
	return leave(s, rc, err);
}

/* ------------------------------------------------------------------ */
/* Pod types                                                            */

/*
 * The counts a change's new configuration *cfg gets. A pod count's (ci)
 * were made from the target `base`: if the target changed meanwhile, the
 * change is refused (HF_ECONFLICT) rather than made over the new one. An
 * update keeps each count set over the target's spec for a pod type
 * whose count the new spec does not change (an operator who changes it
 * means it); *cfg is then loaded again, with them, since the spec is
 * validated with its counts.
 */
static int counts_carry(const struct hf_config *cur, struct hf_config **cfg,
			const struct counts_in *ci, struct hf_ops_err *err)
{
	struct hf_kvlist keep = {0};
	struct hf_config *fresh;
	int rc;

	if (ci)
		return strcmp(cur->id, ci->base) == 0
			   ? 0
			   : fail(err, HF_ECONFLICT,
				  "the target of service '%s' became "
				  "configuration %s meanwhile; try again",
				  (*cfg)->spec->name, cur->id);
	for (size_t i = 0; i < cur->counts.len; i++) {
		const char *pod = cur->counts.items[i].key;
		const struct hf_spec_pod *op = hf_spec_find_pod(cur->spec, pod);
		const struct hf_spec_pod *np =
		    hf_spec_find_pod((*cfg)->spec, pod);

		if (op && np && op->spec_count == np->spec_count)
			hf_kvlist_set(&keep, pod, cur->counts.items[i].value);
	}
	if (!keep.len)
		return 0;
	rc = config_new(&(struct hf_ops_spec){.text = (*cfg)->text,
					      .file = (*cfg)->file,
					      .name = (*cfg)->name,
					      .options = &(*cfg)->options,
					      .templates = &(*cfg)->templates},
			&keep, &fresh, err);
	if (rc) {
		free(err->why);
		err->why = NULL;
		fail(err, rc,
		     "the spec does not load with the counts set over it "
		     "('holdfast pod scale POD-TYPE --reset' hands a count "
		     "back to the spec)");
	} else {
		hf_state_config_free(*cfg);
		*cfg = fresh;
	}
	hf_kvlist_release(&keep);
	return rc;
}

static struct hf_pod_diff *pod_diff(struct hf_spec_diff *d, const char *pod)
{
	for (size_t i = 0; i < d->pods.len; i++)
		if (strcmp(d->pods.items[i].pod, pod) == 0)
			return &d->pods.items[i];
	return NULL;
}

/*
 * Says in d what became of the counts set over the specs' from the
 * target cur to cfg. A count set or dropped is a change of the service
 * (d->changes); one kept is said with its pod type only.
 */
static void counts_note(const struct hf_config *cur,
			const struct hf_config *cfg, const struct counts_in *ci,
			struct hf_spec_diff *d)
{
	for (size_t i = 0; i < cfg->counts.len; i++) {
		const char *pod = cfg->counts.items[i].key;
		const char *v = cfg->counts.items[i].value;
		const char *was = hf_kvlist_get(&cur->counts, pod);
		const struct hf_spec_pod *np = hf_spec_find_pod(cfg->spec, pod);
		struct hf_pod_diff *pd = pod_diff(d, pod);

		if (!np)
			continue;
		if (!was || strcmp(was, v) != 0)
			say(&d->changes,
			    "pod %s: count %s set over the spec's %lld", pod, v,
			    (long long)np->spec_count);
		else if (pd)
			say(&pd->changes,
			    "count %s kept: it was set over the spec's %lld, "
			    "which this spec does not change",
			    v, (long long)np->spec_count);
	}
	for (size_t i = 0; i < cur->counts.len; i++) {
		const char *pod = cur->counts.items[i].key;
		const char *was = cur->counts.items[i].value;
		const struct hf_spec_pod *op = hf_spec_find_pod(cur->spec, pod);
		const struct hf_spec_pod *np = hf_spec_find_pod(cfg->spec, pod);

		if (!op || hf_kvlist_get(&cfg->counts, pod))
			continue;
		if (!np)
			say(&d->changes,
			    "pod %s: count %s set over the spec's is dropped "
			    "with its pod type",
			    pod, was);
		else if (ci)
			say(&d->changes,
			    "pod %s: count handed back to the spec (%lld)", pod,
			    (long long)np->spec_count);
		else
			say(&d->changes,
			    "pod %s: count %s set over the spec's %lld "
			    "dropped: the spec's count changed to %lld",
			    pod, was, (long long)op->spec_count,
			    (long long)np->spec_count);
	}
}

/* hf_ops_pod_count (reset false) and hf_ops_pod_count_reset. */
static int pod_count(struct hf_srv *s, const char *name, const char *pod,
		     int64_t count, bool reset, const char *who,
		     const char *as_why, struct hf_ops_change *out,
		     struct hf_ops_err *err)
{
	struct hf_kvlist counts = {0}, options = {0}, templates = {0};
	char *base = NULL, *text = NULL, *file = NULL, *why = NULL;
	char *cname = NULL;
	const struct hf_spec_pod *sp;
	struct hf_service *svc;
	struct hf_config *cur;
	bool same = false;
	int rc;

	if (!reset && (count < 0 || count > HF_SPEC_POD_COUNT_MAX))
		return fail(err, HF_EINVAL,
			    "a pod type's count is 0 to %d; %lld is not",
			    HF_SPEC_POD_COUNT_MAX, (long long)count);
	rc = enter(s, err);
	if (rc)
		return rc;
	rc = changeable(s, name, &svc, &cur, err);
	if (rc)
		goto leave;
	sp = pod ? hf_spec_find_pod(cur->spec, pod) : NULL;
	if (!sp) {
		rc = fail(err, HF_ENOTFOUND,
			  "service '%s' has no pod type '%s'", svc->name,
			  pod ? pod : "");
		goto leave;
	}
	/* One owner of the count: an active autoscale policy. */
	if (!who && sp->autoscale && !sp->autoscale->dry_run) {
		rc = fail(err, HF_EREFUSED,
			  "pod %s's count is its autoscale policy's to set "
			  "(now %lld, within %lld to %lld): change "
			  "autoscale.min and autoscale.max in the spec, or set "
			  "the policy's dry-run",
			  pod, (long long)sp->count,
			  (long long)sp->autoscale->min,
			  (long long)sp->autoscale->max);
		goto leave;
	}
	/* The same count, or none set to drop: no new configuration. */
	same = reset ? !hf_kvlist_get(&cur->counts, pod) : count == sp->count;
	if (same) {
		out->from = hf_xstrdup(cur->id);
		goto leave;
	}
	/* A count equal to the spec's is no count set over it. */
	for (size_t i = 0; i < cur->counts.len; i++)
		if (strcmp(cur->counts.items[i].key, pod) != 0)
			hf_kvlist_set(&counts, cur->counts.items[i].key,
				      cur->counts.items[i].value);
	if (!reset && count != sp->spec_count) {
		char num[32];

		snprintf(num, sizeof(num), "%lld", (long long)count);
		hf_kvlist_set(&counts, pod, num);
	}
	why = as_why ? hf_xstrdup(as_why)
	      : reset || count == sp->spec_count
		  ? hf_xasprintf("count of pod %s handed back to the spec "
				 "(%lld)",
				 pod, (long long)sp->spec_count)
		  : hf_xasprintf("count of pod %s set to %lld", pod,
				 (long long)count);
	/* Copies: the configuration is parsed without the lock held. */
	base = hf_xstrdup(cur->id);
	text = hf_xstrdup(cur->text);
	file = cur->file ? hf_xstrdup(cur->file) : NULL;
	cname = cur->name ? hf_xstrdup(cur->name) : NULL;
	hf_kvlist_copy(&options, &cur->options);
	hf_kvlist_copy(&templates, &cur->templates);
leave:
	rc = leave(s, rc, err);
	if (!rc && !same)
		rc = change(s, name,
			    &(struct hf_ops_spec){.text = text,
						  .file = file,
						  .name = cname,
						  .options = &options,
						  .templates = &templates},
			    true,
			    &(struct counts_in){.base = base,
						.counts = &counts,
						.why = why,
						.who = who},
			    out, err);
	hf_kvlist_release(&counts);
	hf_kvlist_release(&options);
	hf_kvlist_release(&templates);
	free(base);
	free(text);
	free(file);
	free(cname);
	free(why);
	return rc;
}

int hf_ops_pod_count(struct hf_srv *s, const char *svc, const char *pod,
		     int64_t count, struct hf_ops_change *out,
		     struct hf_ops_err *err)
{
	return pod_count(s, svc, pod, count, false, NULL, NULL, out, err);
}

int hf_ops_pod_autoscale(struct hf_srv *s, const char *svc, const char *pod,
			 int64_t count, const char *why,
			 struct hf_ops_change *out, struct hf_ops_err *err)
{
	return pod_count(s, svc, pod, count, false, "autoscaler", why, out,
			 err);
}

int hf_ops_pod_count_reset(struct hf_srv *s, const char *svc,
			   const char *pod, struct hf_ops_change *out,
			   struct hf_ops_err *err)
{
	return pod_count(s, svc, pod, 0, true, NULL, NULL, out, err);
}
