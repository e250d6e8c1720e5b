/*
 * apply.c - the one writer of the server's records (apply.h).
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "server/apply.h"
#include "server/creds.h"
#include "server/events.h"
#include "server/sched.h"
#include "volume/crypt.h"

/*
 * The server's random source, seeded once from the system's: task ids
 * must differ across servers and restarts, so no fixed seed here.
 */
static void seed_rng(struct hf_rng *r)
{
	char *hex;

	if (r->s[0] | r->s[1] | r->s[2] | r->s[3])
		return;
	hex = hf_random_hex(4 * sizeof(uint64_t));
	for (size_t i = 0; i < 4; i++) {
		char part[17];

		memcpy(part, hex + 16 * i, 16);
		part[16] = '\0';
		r->s[i] = strtoull(part, NULL, 16);
	}
	free(hex);
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1; /* xoshiro's one state that never moves */
}

void hf_apply_ctx(struct hf_srv *s, struct hf_decide_ctx *ctx)
{
	seed_rng(&s->rng);
	s->decide_opts.backoff_base = s->opts.backoff_base;
	s->decide_opts.backoff_max = s->opts.backoff_max;
	s->decide_opts.backoff_reset = s->opts.backoff_reset;
	s->decide_opts.node_timeout = s->opts.node_timeout;
	s->decide_opts.rereplicate_after = s->opts.rereplicate_after;
	s->decide_opts.no_restart_in_place = s->opts.no_restart_in_place;
	ctx->now = hf_now_ms();
	ctx->rng = &s->rng;
	ctx->opts = &s->decide_opts;
	ctx->place = &s->place;
}

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? hf_xstrdup(src) : NULL;
}

/* The current launch of the action's task, when it is still `id`. */
static struct hf_task_rec *launch_of(struct hf_instance *in, const char *task,
				     const char *id,
				     struct hf_task_slot **slot)
{
	struct hf_task_slot *sl = in && task ? hf_model_slot_find(in, task) : NULL;

	*slot = sl;
	if (!sl || !sl->cur || !id || strcmp(sl->cur->id, id) != 0)
		return NULL;
	return sl->cur;
}

/* The node whose record holds the volume: it is written with them. */
static void save_volume_node(struct hf_srv *s, const char *node)
{
	struct hf_node *n = hf_model_node(&s->model, node);

	if (n)
		hf_state_save_node(s, n);
}

/* Drops the IN_USE volume record of an instance that leaves its node. */
static void forget_in_use(struct hf_srv *s, const struct hf_service *svc,
			  const struct hf_instance *in)
{
	char *key;
	struct hf_volume *v;

	if (!in->node)
		return;
	key = hf_model_volume_key(svc->name, in->name);
	v = hf_model_volume_find(&s->model, key, in->node, HF_VOL_IN_USE);
	if (v)
		hf_model_volume_remove(&s->model, v);
	free(key);
}

static void apply_volume(struct hf_srv *s, const struct hf_act_volume *o)
{
	struct hf_model *m = &s->model;
	struct hf_volume *in_use =
	    hf_model_volume_find(m, o->key, o->node, HF_VOL_IN_USE);
	struct hf_volume *kept = hf_model_volume_find(m, o->key, o->node,
						      HF_VOL_KEPT);
	struct hf_volume *deleting =
	    hf_model_volume_find(m, o->key, o->node, HF_VOL_DELETING);

	switch (o->op) {
	case HF_VOLOP_KEEP:
		if (kept)
			break;
		if (!in_use)
			in_use = hf_model_volume_add(m, o->key, o->node,
						     HF_VOL_KEPT);
		in_use->state = HF_VOL_KEPT;
		set_str(&in_use->why, o->why);
		in_use->since = o->since;
		break;
	case HF_VOLOP_DELETE:
		if (deleting) {
			if (in_use)
				hf_model_volume_remove(m, in_use);
			break;
		}
		if (!in_use)
			in_use = hf_model_volume_add(m, o->key, o->node,
						     HF_VOL_DELETING);
		in_use->state = HF_VOL_DELETING;
		break;
	case HF_VOLOP_DELETE_KEPT:
		if (!kept)
			break;
		if (deleting) {
			hf_model_volume_remove(m, kept);
			break;
		}
		kept->state = HF_VOL_DELETING;
		break;
	case HF_VOLOP_ADOPT:
		if (!kept)
			break;
		if (in_use) {
			hf_model_volume_remove(m, kept);
			break;
		}
		kept->state = HF_VOL_IN_USE;
		free(kept->why);
		kept->why = NULL;
		kept->since = 0;
		break;
	case HF_VOLOP_DELETED:
		if (deleting)
			hf_model_volume_remove(m, deleting);
		break;
	}
	save_volume_node(s, o->node);
	hf_sched_changed(s, true);
}

/*
 * A new encrypted volume's data key, from the system's random source,
 * sealed for volume id by named key key_name, or by the cluster key when
 * it is NULL (volume/crypt.h); NULL when that key is missing (deploys are
 * refused then) or no key could be made: the volume is not created, and
 * decide asks again.
 */
static char *new_data_key(struct hf_srv *s, const char *id,
			  const char *key_name)
{
	const size_t half = HF_VOL_DATA_KEY_LEN / 2;
	uint8_t dk[HF_VOL_DATA_KEY_LEN];
	char *sealed = NULL, *why = NULL;

	if (RAND_bytes(dk, sizeof(dk)) == 1 &&
	    CRYPTO_memcmp(dk, dk + half, half) != 0)
		sealed = hf_cred_seal_data_key(s, key_name, id, dk, &why);
	else
		why = hf_xstrdup("the random source failed");
	OPENSSL_cleanse(dk, sizeof(dk));
	if (!sealed)
		hf_log("an encrypted volume waits: %s", why ? why : "?");
	free(why);
	return sealed;
}

/*
 * A new KEPT, formatted volume record for service holding another's bytes
 * (a clone, a backup): o's name, id, size, repl and min_sync. Encrypted
 * (the bytes are ciphertext), its data key is the source's sealed again
 * for the new id by the same key: key_of's (a clone, or a backup of a
 * volume this cluster holds), or o->sealed_key opened with named key
 * o->key_name for volume o->key_id (a backup's manifest). NULL when that
 * key cannot be opened.
 */
static struct hf_xvol *copy_volume(struct hf_srv *s, const struct hf_act_xvol *o,
				   const char *service,
				   const struct hf_xvol *key_of)
{
	struct hf_xvol *v;
	char *sealed = NULL, *why = NULL;
	const char *key_name = NULL;

	if ((key_of && key_of->secure) || (o->key_name && o->sealed_key)) {
		uint8_t dk[HF_VOL_DATA_KEY_LEN];
		bool own = key_of && key_of->secure;

		key_name = own ? key_of->key_name : o->key_name;
		if (hf_cred_open_data_key(s, key_name,
					  own ? key_of->id : o->key_id,
					  own ? key_of->data_key : o->sealed_key,
					  dk, &why) == 0)
			sealed = hf_cred_seal_data_key(s, key_name, o->id, dk,
						       &why);
		OPENSSL_cleanse(dk, sizeof(dk));
		if (!sealed) {
			hf_log("volume %s not made: %s", o->name, why);
			free(why);
			return NULL;
		}
	} else if (o->secure) {
		return NULL; /* an encrypted backup without its volume's key */
	}
	v = hf_model_xvol_add(&s->model, o->name);
	v->secure = sealed != NULL;
	v->data_key = sealed;
	v->key_name = sealed && key_name ? hf_xstrdup(key_name) : NULL;
	v->id = hf_xstrdup(o->id);
	v->service = hf_xstrdup(service);
	v->state = HF_XVOL_KEPT;
	v->size = o->size;
	v->repl = o->repl;
	v->min_sync = o->min_sync;
	v->formatted = true; /* the source's file system */
	v->secret = hf_random_hex(32);
	v->created = o->at;
	return v;
}

static void apply_xvol(struct hf_srv *s, const struct hf_action *x)
{
	const struct hf_act_xvol *o = &x->u.xvol;
	struct hf_model *m = &s->model;
	struct hf_xvol *v = hf_model_xvol(m, o->name);
	struct hf_xrep *r;
	struct hf_xsnap *sn;
	int64_t now = hf_now_ms();

	if (o->op == HF_XVOLOP_CREATE) {
		char *sealed = NULL;

		if (v || !x->service || !x->instance)
			return;
		if (o->secure) {
			sealed = new_data_key(s, o->id, o->key_name);
			if (!sealed)
				return;
		}
		v = hf_model_xvol_add(m, o->name);
		v->secure = o->secure;
		v->fs = o->fs;
		v->data_key = sealed;
		v->key_name = o->secure && o->key_name ? hf_xstrdup(o->key_name)
						       : NULL;
		v->id = hf_xstrdup(o->id);
		v->service = hf_xstrdup(x->service);
		v->instance = hf_xstrdup(x->instance);
		v->state = HF_XVOL_ACTIVE;
		v->size = o->size;
		v->repl = o->repl;
		v->min_sync = o->min_sync;
		v->ro = o->ro;
		/* From the system's source, not the scheduler's generator. */
		v->secret = hf_random_hex(32);
		v->created = o->at;
		hf_xvol_replica_add(v, o->node, o->replica, o->at);
		for (size_t i = 0; i < HF_VOLOPTS_MAX_REPL - 1; i++)
			if (o->more_node[i] && o->more_replica[i])
				hf_xvol_replica_add(v, o->more_node[i],
						    o->more_replica[i], o->at);
		hf_state_save_xvol(s, v);
		hf_sched_changed(s, true);
		return;
	}
	if (o->op == HF_XVOLOP_STANDBY) {
		if (v || !x->service || !o->id || !o->sealed_key || !o->node ||
		    !o->replica)
			return;
		v = hf_model_xvol_add(m, o->name);
		v->id = hf_xstrdup(o->id);
		v->service = hf_xstrdup(x->service);
		v->state = HF_XVOL_KEPT;
		v->size = o->size;
		v->repl = 1;
		v->min_sync = 1;
		v->epoch = o->epoch;
		v->formatted = true;
		v->secret = hf_xstrdup(o->sealed_key);
		v->created = o->at;
		r = hf_xvol_replica_add(v, o->node, o->replica, o->at);
		r->state = HF_XREP_IN_SYNC;
		r->why = hf_xstrdup("the disaster-recovery standby's copy");
		hf_state_save_xvol(s, v);
		hf_sched_changed(s, true);
		return;
	}
	if (o->op == HF_XVOLOP_CLONE || o->op == HF_XVOLOP_FROM_BACKUP) {
		const struct hf_xvol *src = hf_model_xvol(m, o->snap_name);
		bool clone = o->op == HF_XVOLOP_CLONE;

		if (v || !x->service || !o->snap || (clone && !src) ||
		    (!clone && (!o->cred || !o->why)) ||
		    !(v = copy_volume(s, o, x->service,
				      clone || (o->secure && !o->sealed_key)
					  ? src
					  : NULL)))
			return;
		/* The bytes are the source's: its file system (a mount probes). */
		v->fs = src ? src->fs : HF_FS_AUTO;
		if (!clone) {
			v->rs_cred = hf_xstrdup(o->cred);
			v->rs_url = hf_xstrdup(o->why);
			v->rs_volume = hf_xstrdup(o->snap_name);
			v->rs_backup = hf_xstrdup(o->snap);
		}
		for (size_t i = 0; i < HF_VOLOPTS_MAX_REPL; i++) {
			const char *node = i ? o->more_node[i - 1] : o->node;
			const char *rid = i ? o->more_replica[i - 1] : o->replica;
			const struct hf_xrep *sr =
			    clone && node ? hf_xvol_replica_on(src, node) : NULL;

			if (!node || !rid || (clone && !sr))
				continue;
			/* Made by its node: from the source's replica there,
			 * or from the backup. */
			hf_xvol_replica_add(v, node, rid, o->at)->clone =
			    clone ? hf_xasprintf("%s/%s/%s", src->id, sr->id,
						 o->snap)
				  : hf_xstrdup("backup");
		}
		hf_state_save_xvol(s, v);
		hf_sched_changed(s, true);
		return;
	}
	if (!v)
		return;
	switch (o->op) {
	case HF_XVOLOP_CREATE:
	case HF_XVOLOP_CLONE:
	case HF_XVOLOP_FROM_BACKUP:
	case HF_XVOLOP_STANDBY:
		return;
	case HF_XVOLOP_BACKUP_DONE:
		set_str(&v->bk_last, o->snap_name);
		set_str(&v->bk_to, o->why);
		set_str(&v->bk_snap, o->snap);
		v->bk_at = o->at;
		if (v->bk_run.id && !strcmp(v->bk_run.id, o->snap_name))
			hf_xbk_run_release(&v->bk_run);
		break;
	case HF_XVOLOP_BACKUP_RUN:
		if (!o->id || !o->snap_name || !o->why || !o->cred)
			return;
		hf_xbk_run_release(&v->bk_run);
		v->bk_run.id = hf_xstrdup(o->id);
		v->bk_run.snap = hf_xstrdup(o->snap_name);
		v->bk_run.to = hf_xstrdup(o->why);
		v->bk_run.cred = hf_xstrdup(o->cred);
		v->bk_run.node = o->node ? hf_xstrdup(o->node) : NULL;
		v->bk_run.started = o->at;
		break;
	case HF_XVOLOP_BACKUP_END:
		if (!v->bk_run.id || !o->id || strcmp(v->bk_run.id, o->id))
			return;
		hf_xbk_run_release(&v->bk_run);
		break;
	case HF_XVOLOP_BACKUP_SCHEDULE:
		hf_xbk_sched_release(&v->bk_sched);
		if (o->why && o->cred && o->size > 0) {
			v->bk_sched.to = hf_xstrdup(o->why);
			v->bk_sched.cred = hf_xstrdup(o->cred);
			v->bk_sched.every_ms = o->size;
			v->bk_sched.keep = o->repl;
		}
		break;
	case HF_XVOLOP_REPLICA_FILLED:
		r = o->replica ? hf_xvol_replica(v, o->replica) : NULL;
		if (!r || r->state != HF_XREP_NEW || !r->clone)
			return;
		r->state = HF_XREP_IN_SYNC;
		r->since = now;
		set_str(&r->clone, NULL);
		set_str(&r->why, "made from its snapshot");
		break;
	case HF_XVOLOP_ADOPT:
		if (v->state != HF_XVOL_KEPT || !x->instance ||
		    !x->service || strcmp(v->service, x->service) != 0)
			return;
		v->state = HF_XVOL_ACTIVE;
		set_str(&v->instance, x->instance);
		break;
	case HF_XVOLOP_ATTACH:
		if (v->state != HF_XVOL_ACTIVE || o->epoch <= v->epoch)
			return;
		v->epoch = o->epoch;
		set_str(&v->attached, o->node);
		break;
	case HF_XVOLOP_READY:
		if (o->epoch != v->epoch)
			return;
		/*
		 * Every new replica was a replica of this first attach (the
		 * local one, the others its remotes): all hold what it wrote.
		 */
		if (!v->formatted)
			for (size_t i = 0; i < v->replicas.len; i++) {
				r = &v->replicas.items[i];
				if (r->state != HF_XREP_NEW)
					continue;
				r->state = HF_XREP_IN_SYNC;
				r->since = now;
			}
		v->formatted = true;
		break;
	case HF_XVOLOP_REPLICA_RESYNC:
		r = hf_xvol_replica_on(v, o->node);
		if (!r || r->state != HF_XREP_DOWN)
			return;
		r->state = HF_XREP_RESYNCING;
		r->since = now;
		r->resync_done = r->resync_total = 0;
		set_str(&r->why, o->why);
		break;
	case HF_XVOLOP_REPLICA_ADD:
		if (!o->node || !o->replica || hf_xvol_replica_on(v, o->node) ||
		    hf_xvol_replica(v, o->replica))
			return;
		r = hf_xvol_replica_add(v, o->node, o->replica, now);
		r->state = HF_XREP_RESYNCING;
		set_str(&r->why, o->why);
		break;
	case HF_XVOLOP_REPLICA_PROGRESS:
		r = o->replica ? hf_xvol_replica(v, o->replica) : NULL;
		if (!r || r->state != HF_XREP_RESYNCING)
			return;
		r->resync_done = o->done;
		r->resync_total = o->size;
		break;
	case HF_XVOLOP_REPLICA_RETIRE:
		r = o->replica ? hf_xvol_replica(v, o->replica) : NULL;
		if (!r || r->state == HF_XREP_DELETING)
			return;
		r->state = HF_XREP_DELETING;
		r->since = now;
		set_str(&r->why, o->why);
		break;
	case HF_XVOLOP_REPLICA_SYNCED:
		r = o->replica ? hf_xvol_replica(v, o->replica) : NULL;
		if (!r || r->state != HF_XREP_RESYNCING || o->epoch != v->epoch)
			return;
		r->state = HF_XREP_IN_SYNC;
		r->since = now;
		set_str(&r->why, o->why);
		break;
	case HF_XVOLOP_REPLICA_DOWN:
		r = hf_xvol_replica_on(v, o->node);
		if (!r || r->state == HF_XREP_DOWN)
			return;
		r->state = HF_XREP_DOWN;
		r->since = now;
		set_str(&r->why, o->why);
		break;
	case HF_XVOLOP_DETACH:
		set_str(&v->attached, NULL);
		break;
	case HF_XVOLOP_KEEP:
		if (v->state != HF_XVOL_ACTIVE)
			return;
		v->state = HF_XVOL_KEPT;
		set_str(&v->instance, NULL);
		set_str(&v->attached, NULL);
		break;
	case HF_XVOLOP_RESIZE:
		if (o->size <= v->size)
			return;
		v->size = o->size;
		break;
	case HF_XVOLOP_DELETE:
		v->state = HF_XVOL_DELETING;
		set_str(&v->attached, NULL);
		for (size_t i = 0; i < v->replicas.len; i++) {
			if (v->replicas.items[i].state == HF_XREP_DELETING)
				continue;
			v->replicas.items[i].state = HF_XREP_DELETING;
			v->replicas.items[i].since = now;
		}
		break;
	case HF_XVOLOP_SNAP_ADD:
		if (!o->snap || !o->snap_name ||
		    hf_xvol_snap(v, o->snap, true) ||
		    hf_xvol_snap(v, o->snap_name, false))
			return;
		sn = hf_xvol_snap_add(v, o->snap, o->snap_name, o->at);
		sn->size = o->size;
		sn->state = HF_XSNAP_TAKING;
		break;
	case HF_XVOLOP_SNAP_TAKEN:
		sn = hf_xvol_snap(v, o->snap, true);
		if (!sn || sn->state != HF_XSNAP_TAKING)
			return;
		sn->state = HF_XSNAP_READY;
		sn->taken = o->at;
		hf_strlist_release(&sn->replicas);
		for (size_t i = 0; i < o->holders.len; i++)
			hf_strlist_push(&sn->replicas, o->holders.items[i]);
		break;
	case HF_XVOLOP_SNAP_FAILED:
		sn = hf_xvol_snap(v, o->snap, true);
		if (!sn)
			return;
		if (sn->state == HF_XSNAP_TAKING)
			sn->state = HF_XSNAP_FAILED;
		set_str(&sn->why, o->why);
		break;
	case HF_XVOLOP_SNAP_DELETE:
		sn = hf_xvol_snap(v, o->snap, true);
		if (!sn || sn->state == HF_XSNAP_DELETING)
			return;
		sn->state = HF_XSNAP_DELETING;
		set_str(&sn->why, NULL);
		break;
	case HF_XVOLOP_SNAP_GONE:
		sn = hf_xvol_snap(v, o->snap, true);
		if (!sn)
			return;
		hf_xvol_snap_remove(v, sn);
		break;
	case HF_XVOLOP_RESTORE:
		set_str(&v->restore, o->snap);
		v->restore_after = v->epoch;
		break;
	case HF_XVOLOP_REPLICA_GONE:
		r = o->replica ? hf_xvol_replica(v, o->replica) : NULL;
		if (!r || r->state != HF_XREP_DELETING)
			return;
		/* Its snapshots went with it. */
		for (size_t i = 0; i < v->snaps.len; i++) {
			struct hf_strlist *h = &v->snaps.items[i].replicas;

			for (size_t k = 0; k < h->len; k++)
				if (strcmp(h->items[k], r->id) == 0) {
					free(h->items[k]);
					h->items[k] = h->items[--h->len];
					break;
				}
			if (!h->len &&
			    v->snaps.items[i].state == HF_XSNAP_READY) {
				v->snaps.items[i].state = HF_XSNAP_FAILED;
				set_str(&v->snaps.items[i].why,
					"every replica that held it is gone");
			}
		}
		hf_xvol_replica_remove(v, r);
		if (v->state == HF_XVOL_DELETING && !v->replicas.len) {
			hf_state_remove_xvol(s, v);
			hf_sched_changed(s, true);
			return;
		}
		break;
	}
	hf_state_save_xvol(s, v);
	hf_sched_changed(s, true);
}

static void apply_task(struct hf_srv *s, struct hf_service *svc,
		       struct hf_instance *in, const struct hf_action *x)
{
	const struct hf_act_task *t = &x->u.tsk;
	struct hf_task_slot *sl;
	struct hf_task_rec *r = launch_of(in, x->task, t->id, &sl);

	if (!r)
		return;
	if (t->set & HF_TASK_NOT_READY)
		set_str(&r->not_ready, t->not_ready);
	if (t->set & HF_TASK_STATE)
		r->state = t->state;
	if (t->set & HF_TASK_READY)
		r->ready = t->ready;
	if (t->set & HF_TASK_HEALTHY)
		r->healthy = t->healthy;
	if (t->set & HF_TASK_EXIT) {
		r->exit_code = t->exit_code;
		r->signal = t->signal;
		r->oom_killed = t->oom_killed;
	}
	if (t->set & HF_TASK_PERMANENT)
		r->permanent = t->permanent;
	if (t->set & HF_TASK_KILL)
		r->kill = t->kill;
	if (t->set & HF_TASK_RESTART)
		r->restart = t->restart;
	if (t->set & HF_TASK_STARTED_AT)
		r->started_at = t->started_at;
	if (t->set & HF_TASK_FINISHED_AT)
		r->finished_at = t->finished_at;
	if (t->set & HF_TASK_MESSAGE)
		set_str(&r->message, t->message);
	if (t->set & HF_TASK_IN_PLACE) {
		r->in_place_restarts = t->in_place_restarts;
		r->backoff = t->backoff;
		r->restart_at = t->restart_at;
		r->last_exit_code = t->last_exit_code;
		r->last_signal = t->last_signal;
		r->last_exit_at = t->last_exit_at;
	}
	if (t->set & ~(unsigned)HF_TASK_NOT_READY)
		hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, (t->set & HF_TASK_STATE) &&
				!hf_task_state_live(r->state));
}

static void apply_slot(struct hf_srv *s, struct hf_service *svc,
		       struct hf_instance *in, const struct hf_action *x)
{
	const struct hf_act_slot *o = &x->u.slot;
	struct hf_task_slot *sl = hf_model_slot(in, x->task);

	if (o->set & HF_SLOT_FORGET) {
		hf_task_rec_free(sl->cur);
		sl->cur = NULL;
	}
	if (o->set & HF_SLOT_FAILURES)
		sl->failures = o->failures;
	if (o->set & HF_SLOT_BACKOFF)
		sl->backoff_until = o->backoff_until;
	if (o->set & HF_SLOT_ONCE_DONE)
		sl->once_done = o->once_done;
	if (o->set & HF_SLOT_WANT_RUNNING)
		sl->want_running = o->want_running;
	if (o->set & HF_SLOT_FAILED)
		s->failures += o->failed ? o->failed : 1;
	/* Restarts in place its agent reported (no launch of the server's). */
	if (o->set & HF_SLOT_RESTARTS) {
		sl->restarts += o->restarts;
		s->restarts += o->restarts;
	}
	hf_state_save_instance(s, svc, in);
}

static void apply_instance(struct hf_srv *s, struct hf_service *svc,
			   struct hf_instance *in, const struct hf_act_instance *o)
{
	const unsigned quiet = HF_INST_MESSAGE | HF_INST_UNREACHABLE;

	/*
	 * The rules ask for transitions the table allows; one it refuses
	 * means the model moved under them: the whole action is dropped.
	 */
	if ((o->set & HF_INST_EVENT) && !hf_instance_event(in, o->event)) {
		hf_log("service %s: %s: lifecycle event %s refused in state %s",
		       svc->name, in->name, hf_instance_event_name(o->event),
		       hf_instance_state_name(in->state));
		return;
	}
	if (o->set & HF_INST_MESSAGE)
		set_str(&in->message, o->message);
	if (o->set & HF_INST_PAUSED)
		in->paused = o->paused;
	if (o->set & HF_INST_REPLACED) {
		set_str(&in->replaced_node, o->replaced_node);
		set_str(&in->replaced_address, o->replaced_address);
	}
	if (o->set & HF_INST_REPLACE_PENDING)
		in->replace_pending = o->replace_pending;
	if (o->set & HF_INST_UNREACHABLE)
		in->unreachable_since = o->unreachable_since;
	if (!o->memory_only && o->set != HF_INST_UNREACHABLE)
		hf_state_save_instance(s, svc, in);
	if (o->set & ~quiet)
		hf_sched_changed(s, true);
}

/* Removes every copy of str from a list. */
static void strlist_drop(struct hf_strlist *l, const char *str)
{
	struct hf_strlist keep = {0};

	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i], str) != 0)
			hf_strlist_push(&keep, l->items[i]);
	hf_strlist_release(l);
	*l = keep;
}

static void strlist_add_once(struct hf_strlist *l, const char *str)
{
	if (!hf_strlist_has(l, str))
		hf_strlist_push(l, str);
}

static void apply_run(struct hf_srv *s, struct hf_service *svc,
		      const struct hf_act_run *o)
{
	struct hf_plan_run *run = hf_model_run(svc, o->plan);
	const unsigned memory = HF_RUN_WAITS_CLEAR | HF_RUN_WAIT;

	if (!run)
		return;
	if (o->set & HF_RUN_WAITS_CLEAR)
		hf_kvlist_release(&run->waits);
	if (o->set & HF_RUN_WAIT)
		hf_kvlist_append(&run->waits, o->key, o->value);
	if (o->set & HF_RUN_COMPLETED)
		hf_strlist_push(&run->completed, o->key);
	if (o->set & HF_RUN_STEP_STARTED)
		hf_kvlist_append(&run->step_started, o->key, o->value);
	if (o->set & HF_RUN_STATUS)
		run->status = o->status;
	if (o->set & HF_RUN_ACTIVE)
		run->active = o->active;
	if (o->set & HF_RUN_FINISHED_AT)
		run->finished_at = o->finished_at;
	if (o->set & HF_RUN_REVERTED)
		run->reverted = o->reverted;
	if (o->set & HF_RUN_INTERRUPTED)
		run->interrupted = o->interrupted;
	if (o->set & HF_RUN_INTERRUPT_PHASE)
		strlist_add_once(&run->interrupted_phases, o->key);
	if (o->set & HF_RUN_RESUME_PHASE)
		strlist_drop(&run->interrupted_phases, o->key);
	if (o->set & HF_RUN_CONTINUES)
		hf_kvlist_set(&run->continues, o->key, o->value);
	if (o->set & HF_RUN_FORCE_COMPLETE)
		strlist_add_once(&run->force_complete, o->key);
	if (o->set & HF_RUN_RESTART_STEP) {
		strlist_drop(&run->completed, o->key);
		strlist_drop(&run->force_complete, o->key);
	}
	if (o->set & HF_RUN_COMPLETED_CLEAR)
		hf_strlist_release(&run->completed);
	if (o->set & ~memory)
		hf_state_save_run(s, svc, run);
	if (o->set & HF_RUN_STATUS)
		hf_sched_changed(s, false);
}

static void apply_start_plan(struct hf_srv *s, struct hf_service *svc,
			     const struct hf_act_start_plan *o)
{
	struct hf_plan_run *run = hf_model_run(svc, o->plan);

	if (!run) {
		run = HF_VEC_PUSH(&svc->runs);
		run->plan = hf_xstrdup(o->plan);
	}
	run->number++;
	run->active = true;
	run->interrupted = false;
	run->status = HF_STATUS_PENDING;
	set_str(&run->config_id, svc->target);
	hf_strlist_release(&run->completed);
	hf_strlist_release(&run->force_complete);
	hf_strlist_release(&run->interrupted_phases);
	hf_kvlist_release(&run->continues);
	hf_kvlist_release(&run->step_started);
	run->reverted = false;
	if (o->has_params) {
		hf_kvlist_release(&run->params);
		hf_kvlist_copy(&run->params, &o->params);
	}
	run->started_at = o->at;
	run->finished_at = 0;
	hf_state_save_run(s, svc, run);
	hf_sched_changed(s, false);
}

static void apply_launch(struct hf_srv *s, struct hf_service *svc,
			 struct hf_instance *in, const struct hf_action *x)
{
	const struct hf_act_launch *l = &x->u.launch;
	struct hf_task_slot *sl = hf_model_slot(in, x->task);
	struct hf_task_rec *r = hf_xcalloc(1, sizeof(*r));

	r->id = hf_xstrdup(l->id);
	r->config_id = hf_xstrdup(l->config_id);
	r->run = hf_xstrdup(l->run);
	r->state = HF_TS_STAGING;
	r->exit_code = -1;
	r->last_exit_code = -1;
	r->healthy = -1;
	r->launched_at = l->at;
	r->paused = l->paused;
	hf_kvlist_copy(&r->params, &l->params);
	hf_task_rec_free(sl->cur);
	sl->cur = r;
	sl->launches++;
	if (l->restart) {
		sl->restarts++;
		s->restarts++;
	}
	if (l->want_running)
		sl->want_running = true;
	s->launches++;
	hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, true);
}

static void apply_kill(struct hf_srv *s, struct hf_service *svc,
		       struct hf_instance *in, const struct hf_action *x)
{
	struct hf_task_slot *sl;
	struct hf_task_rec *r = launch_of(in, x->task, x->u.kill.id, &sl);

	if (!r || r->kill || !hf_task_state_live(r->state))
		return;
	r->kill = true;
	r->restart = x->u.kill.restart;
	hf_state_save_instance(s, svc, in);
	hf_sched_changed(s, true);
}

static void apply_place(struct hf_srv *s, struct hf_service *svc,
			struct hf_instance *in, const struct hf_act_place *o)
{
	char *key = hf_model_volume_key(svc->name, in->name);
	struct hf_volume *v;

	set_str(&in->node, o->node);
	hf_kvlist_release(&in->ports);
	hf_kvlist_copy(&in->ports, &o->ports);
	set_str(&in->message, NULL);
	v = hf_model_volume_find(&s->model, key, o->node, HF_VOL_IN_USE);
	if (!v)
		v = hf_model_volume_add(&s->model, key, o->node, HF_VOL_IN_USE);
	v->size_mb = o->volume_size_mb;
	v->kind = o->volume_kind;
	free(key);
	hf_state_save_instance(s, svc, in);
	/* Placement's scratch recorded it; only the nodes' lists are stale. */
	s->node_lists_valid = false;
}

static void apply_unplace(struct hf_srv *s, struct hf_service *svc,
			  struct hf_instance *in)
{
	forget_in_use(s, svc, in);
	free(in->node);
	in->node = NULL;
	hf_kvlist_release(&in->ports);
	hf_state_save_instance(s, svc, in);
	hf_state_moved(s);
	hf_sched_changed(s, true);
}

static void apply_remove_service(struct hf_srv *s, struct hf_service *svc)
{
	for (size_t i = 0; i < svc->instances.len; i++)
		forget_in_use(s, svc, svc->instances.items[i]);
	hf_state_delete_service(s, svc);
	hf_model_service_remove(&s->model, svc);
	hf_state_moved(s);
	hf_sched_changed(s, true);
}

/* Takes o's config into svc's, as config o->id; false if it has none. */
static bool add_config(struct hf_srv *s, struct hf_service *svc,
		       struct hf_act_config *o)
{
	struct hf_config *cfg = o->config;

	if (!cfg || hf_model_config(svc, o->id))
		return false;
	o->config = NULL; /* the service's now */
	cfg->id = hf_xstrdup(o->id);
	*HF_VEC_PUSH(&svc->configs) = cfg;
	svc->next_config = o->next_config;
	hf_state_save_config(s, svc, cfg);
	return true;
}

static void apply_add_service(struct hf_srv *s, const char *name,
			      struct hf_act_config *o)
{
	struct hf_service *svc;

	if (!o->config || !name || hf_model_service(&s->model, name))
		return;
	svc = hf_model_service_add(&s->model, name);
	svc->created = o->at;
	svc->target = hf_xstrdup(o->id);
	/* The config first: a service record never points at nothing. */
	add_config(s, svc, o);
	hf_state_save_service(s, svc);
	hf_sched_changed(s, false);
}

static void apply_service(struct hf_srv *s, struct hf_service *svc,
			  const struct hf_act_service *o)
{
	if (o->set & HF_SVC_REMOVING)
		svc->removing = o->removing;
	if (o->set & HF_SVC_DELETE_VOLUMES)
		svc->delete_volumes = o->delete_volumes;
	hf_state_save_service(s, svc);
	hf_sched_changed(s, true);
}

static void apply_node(struct hf_srv *s, const struct hf_act_node *o)
{
	struct hf_node *n = hf_model_node(&s->model, o->node);

	if (!n)
		return;
	if (o->set & HF_NODE_DECOMMISSIONED)
		n->decommissioned = o->decommissioned;
	hf_state_save_node(s, n);
	hf_sched_changed(s, true);
}

static void apply_one(struct hf_srv *s, struct hf_action *x)
{
	struct hf_service *svc =
	    x->service ? hf_model_service(&s->model, x->service) : NULL;
	struct hf_instance *in =
	    svc && x->instance ? hf_model_instance(svc, x->instance) : NULL;

	switch (x->kind) {
	case HF_ACT_EVENT:
		hf_event(s, x->u.event.who, x->service, x->u.event.kind,
			 x->u.event.object, x->u.event.before,
			 x->u.event.after, x->u.event.why);
		return;
	case HF_ACT_LOG:
		/* Said once the decision is stored, as its events are. */
		if (s->batching)
			hf_strlist_push(&s->held_logs, x->u.log);
		else
			hf_log("%s", x->u.log);
		return;
	case HF_ACT_WAKE_AT:
		s->next_wake_ms = x->u.wake_at;
		return;
	case HF_ACT_VOLUME:
		apply_volume(s, &x->u.vol);
		return;
	case HF_ACT_XVOL:
		apply_xvol(s, x);
		return;
	case HF_ACT_NODE:
		apply_node(s, &x->u.node);
		return;
	case HF_ACT_ADD_SERVICE:
		apply_add_service(s, x->service, &x->u.config);
		return;
	default:
		break;
	}
	if (!svc)
		return;
	switch (x->kind) {
	case HF_ACT_ADD_CONFIG:
		add_config(s, svc, &x->u.config);
		return;
	case HF_ACT_SERVICE:
		apply_service(s, svc, &x->u.svc);
		return;
	case HF_ACT_CREATE_INSTANCE:
		/*
		 * Stored with what follows (its placement, launches, why it
		 * waits): before any agent registered, nothing is.
		 */
		if (!in)
			hf_model_instance_add(svc, x->u.create.pod,
					      x->u.create.index);
		return;
	case HF_ACT_START_PLAN:
		apply_start_plan(s, svc, &x->u.start);
		return;
	case HF_ACT_SET_TARGET:
		if (!hf_model_config(svc, x->u.target.config_id))
			return;
		free(svc->previous);
		svc->previous = svc->target;
		svc->target = hf_xstrdup(x->u.target.config_id);
		/* Reservations follow the target. */
		hf_place_cache_stale(&s->place);
		hf_state_save_service(s, svc);
		return;
	case HF_ACT_RUN:
		apply_run(s, svc, &x->u.run);
		return;
	case HF_ACT_REMOVE_SERVICE:
		apply_remove_service(s, svc);
		return;
	default:
		break;
	}
	if (!in)
		return;
	switch (x->kind) {
	case HF_ACT_PLACE:
		apply_place(s, svc, in, &x->u.place);
		break;
	case HF_ACT_UNPLACE:
		apply_unplace(s, svc, in);
		break;
	case HF_ACT_LAUNCH:
		apply_launch(s, svc, in, x);
		break;
	case HF_ACT_KILL:
		apply_kill(s, svc, in, x);
		break;
	case HF_ACT_TASK:
		apply_task(s, svc, in, x);
		break;
	case HF_ACT_SLOT:
		apply_slot(s, svc, in, x);
		break;
	case HF_ACT_INSTANCE:
		apply_instance(s, svc, in, &x->u.inst);
		break;
	case HF_ACT_REMOVE_INSTANCE:
		forget_in_use(s, svc, in);
		hf_state_remove_instance(s, svc, in);
		hf_sched_changed(s, true);
		break;
	default:
		break;
	}
}

void hf_apply(struct hf_srv *s, struct hf_actions *a)
{
	for (size_t i = 0; i < a->len; i++)
		apply_one(s, &a->items[i]);
}
