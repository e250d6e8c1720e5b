/*
 * xsnap.c - the scheduler's rules for snapshots of replicated volumes
 * (decide.h, "Snapshots"; docs/design/volumes.md §15). Pure: the model
 * in, actions out. A snapshot is taken, deleted and restored by the
 * volume's attach process, which the attachment's order asks; these
 * rules say when that may be asked and what its answers change.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "plan/decide.h"

/* Snapshots a volume may hold (the replicas' limit, volume/snap.h). */
#define SNAP_MAX 64

static struct hf_action *act(struct hf_actions *out, const struct hf_xvol *v,
			     enum hf_xvol_op op, const char *snap)
{
	struct hf_action *x =
	    hf_actions_push(out, HF_ACT_XVOL, v->service, v->instance, NULL);

	x->u.xvol.op = op;
	x->u.xvol.name = hf_xstrdup(v->name);
	x->u.xvol.snap = snap ? hf_xstrdup(snap) : NULL;
	return x;
}

static void snap_event(struct hf_actions *out, const struct hf_xvol *v,
		       const char *who, const char *snap, const char *before,
		       const char *after, const char *why)
{
	struct hf_action *x =
	    hf_actions_push(out, HF_ACT_EVENT, v->service, NULL, NULL);
	char *object = hf_xasprintf("%s@%s", v->name, snap);

	x->u.event.who = hf_xstrdup(who);
	x->u.event.kind = hf_xstrdup("snapshot");
	x->u.event.object = object;
	x->u.event.before = before ? hf_xstrdup(before) : NULL;
	x->u.event.after = hf_xstrdup(after);
	x->u.event.why = why ? hf_xstrdup(why) : NULL;
}

/* The volume, or NULL with *why (404). */
static const struct hf_xvol *volume_of(const struct hf_model *m,
				       const char *volume, char **why,
				       bool *conflict)
{
	const struct hf_xvol *v = hf_model_xvol(m, volume);

	*why = NULL;
	*conflict = false;
	if (!v || v->state == HF_XVOL_DELETING) {
		*why = hf_xasprintf("no volume %s", volume ? volume : "");
		return NULL;
	}
	return v;
}

static int refuse(char **why, bool *conflict, char *text)
{
	*why = text;
	*conflict = true;
	return -1;
}

int hf_decide_snap_take(const struct hf_model *m, const char *volume,
			const char *name, const char *id, int64_t now,
			const char *who, struct hf_actions *out, char **why,
			bool *conflict)
{
	const struct hf_xvol *v = volume_of(m, volume, why, conflict);
	char made[32];
	struct hf_action *x;
	size_t live = 0;

	if (!v)
		return -1;
	if (!name) {
		time_t t = (time_t)(now / 1000);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(made, sizeof(made), "%Y%m%d-%H%M%S", &tm);
		name = made;
	}
	if (!hf_xsnap_name_ok(name))
		return refuse(why, conflict,
			      hf_xasprintf("'%s' cannot name a snapshot: 1 to "
					   "64 letters, digits, '-', '_' or "
					   "'.'",
					   name));
	if (hf_xvol_snap(v, name, false))
		return refuse(why, conflict,
			      hf_xasprintf("volume %s has a snapshot named %s "
					   "already",
					   v->name, name));
	for (size_t i = 0; i < v->snaps.len; i++)
		live += v->snaps.items[i].state != HF_XSNAP_FAILED;
	if (live >= SNAP_MAX)
		return refuse(why, conflict,
			      hf_xasprintf("volume %s holds %d snapshots, the "
					   "most it may: delete one first",
					   v->name, SNAP_MAX));
	if (!v->attached || !v->formatted)
		return refuse(
		    why, conflict,
		    hf_xasprintf("volume %s is not attached: a snapshot is "
				 "taken by the attachment of the pod that uses "
				 "it (deploy or resume that pod first)",
				 v->name));
	if (v->restore)
		return refuse(why, conflict,
			      hf_xasprintf("volume %s is being restored to a "
					   "snapshot: take one once that is "
					   "done",
					   v->name));
	x = act(out, v, HF_XVOLOP_SNAP_ADD, id);
	x->u.xvol.snap_name = hf_xstrdup(name);
	x->u.xvol.size = v->size;
	x->u.xvol.at = now;
	hf_actions_log(out, "volume %s: snapshot %s asked of its attachment "
			    "on node %s",
		       v->name, name, v->attached);
	snap_event(out, v, who, name, NULL, "taking", NULL);
	return 1;
}

int hf_decide_snap_delete(const struct hf_model *m, const char *volume,
			  const char *name, const char *who,
			  struct hf_actions *out, char **why, bool *conflict)
{
	const struct hf_xvol *v = volume_of(m, volume, why, conflict);
	const struct hf_xsnap *s = v ? hf_xvol_snap(v, name, false) : NULL;

	if (!v)
		return -1;
	if (!s) {
		*why = hf_xasprintf("volume %s has no snapshot %s", v->name,
				    name ? name : "");
		return -1;
	}
	if (v->restore && strcmp(v->restore, s->id) == 0)
		return refuse(why, conflict,
			      hf_xasprintf("the volume is being restored to "
					   "%s: delete it once that is done",
					   s->name));
	if (s->state == HF_XSNAP_DELETING)
		return 0;
	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *c = m->xvols.items[i];

		for (size_t k = 0; k < c->replicas.len; k++) {
			const char *cl = c->replicas.items[k].clone;
			size_t n = cl ? strlen(cl) : 0, l = strlen(s->id);

			if (n > l && cl[n - l - 1] == '/' &&
			    strcmp(cl + n - l, s->id) == 0)
				return refuse(
				    why, conflict,
				    hf_xasprintf("volume %s is being made from "
						 "snapshot %s: delete it once "
						 "that is done",
						 c->name, s->name));
		}
	}
	if (s->state == HF_XSNAP_FAILED) {
		/* Never on a replica (or no longer): the record goes. */
		act(out, v, HF_XVOLOP_SNAP_GONE, s->id);
		snap_event(out, v, who, s->name, "failed", "deleted", NULL);
		return 1;
	}
	act(out, v, HF_XVOLOP_SNAP_DELETE, s->id);
	hf_actions_log(out, "volume %s: snapshot %s to be deleted%s", v->name,
		       s->name,
		       v->attached ? "" : " at the volume's next attach");
	snap_event(out, v, who, s->name, hf_xsnap_state_name(s->state),
		   "deleting",
		   v->attached ? NULL
			       : "the volume is not attached: its replicas "
				 "delete it at its next attach");
	return 1;
}

int hf_decide_snap_restore(const struct hf_model *m, const char *volume,
			   const char *name, const char *who,
			   struct hf_actions *out, char **why, bool *conflict)
{
	const struct hf_xvol *v = volume_of(m, volume, why, conflict);
	const struct hf_xsnap *s = v ? hf_xvol_snap(v, name, false) : NULL;

	if (!v)
		return -1;
	if (!s) {
		*why = hf_xasprintf("volume %s has no snapshot %s", v->name,
				    name ? name : "");
		return -1;
	}
	if (s->state != HF_XSNAP_READY)
		return refuse(why, conflict,
			      hf_xasprintf("snapshot %s is %s, not ready",
					   s->name,
					   hf_xsnap_state_name(s->state)));
	if (v->restore)
		return refuse(why, conflict,
			      hf_xasprintf("volume %s is being restored "
					   "already",
					   v->name));
	/*
	 * Each replica rewrites itself from its own copy: all of them
	 * must hold it and be in sync, or one would keep other bytes.
	 */
	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];

		if (r->state == HF_XREP_DELETING)
			continue;
		if (r->state != HF_XREP_IN_SYNC && r->state != HF_XREP_NEW)
			return refuse(
			    why, conflict,
			    hf_xasprintf("replica %s on node %s is %s: a "
					 "restore needs every replica in "
					 "sync",
					 r->id, r->node,
					 hf_xrep_state_name(r->state)));
		if (!hf_strlist_has(&s->replicas, r->id))
			return refuse(
			    why, conflict,
			    hf_xasprintf("replica %s on node %s does not hold "
					 "snapshot %s (it was not in sync "
					 "when it was taken, or is newer)",
					 r->id, r->node, s->name));
	}
	act(out, v, HF_XVOLOP_RESTORE, s->id);
	hf_actions_log(out, "volume %s: restored to snapshot %s at its next "
			    "attach",
		       v->name, s->name);
	snap_event(out, v, who, s->name, "ready", "restoring",
		   v->attached ? "the pod is restarted; the volume is "
				 "restored before it mounts it again"
			       : "at the volume's next attach");
	return 1;
}

/* Bytes of live replicas on node (the pools' provisioned). */
static int64_t provisioned_on(const struct hf_model *m, const char *node)
{
	int64_t sum = 0;

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++)
			if (v->replicas.items[k].state != HF_XREP_DELETING &&
			    strcmp(v->replicas.items[k].node, node) == 0)
				sum += v->size;
	}
	return sum;
}

int hf_decide_snap_clone(const struct hf_model *m, const char *volume,
			 const char *snap, const char *new_name,
			 const char *new_service, const char *new_id,
			 const char *const *rids, int64_t now,
			 const char *who, struct hf_actions *out, char **why,
			 bool *conflict)
{
	const struct hf_xvol *v = volume_of(m, volume, why, conflict);
	const struct hf_xsnap *s = v ? hf_xvol_snap(v, snap, false) : NULL;
	const struct hf_xrep *src[3];
	size_t n = 0;
	struct hf_action *x;

	if (!v)
		return -1;
	if (!s) {
		*why = hf_xasprintf("volume %s has no snapshot %s", v->name,
				    snap ? snap : "");
		return -1;
	}
	if (s->state != HF_XSNAP_READY)
		return refuse(why, conflict,
			      hf_xasprintf("snapshot %s is %s, not ready",
					   s->name,
					   hf_xsnap_state_name(s->state)));
	if (!hf_xvol_name_ok(new_name))
		return refuse(why, conflict,
			      hf_xasprintf("'%s' cannot name a volume",
					   new_name ? new_name : ""));
	if (hf_model_xvol(m, new_name))
		return refuse(why, conflict,
			      hf_xasprintf("a volume named %s exists", new_name));
	if (!new_service || !*new_service)
		return refuse(why, conflict,
			      hf_xstrdup("a clone needs the service that will "
					 "use it"));
	for (size_t i = 0; i < s->replicas.len && n < 3; i++) {
		const struct hf_xrep *r = hf_xvol_replica(v, s->replicas.items[i]);
		const struct hf_node *node = r ? hf_model_node(m, r->node) : NULL;

		if (!r || r->state == HF_XREP_DELETING || !node ||
		    !node->storage)
			continue;
		if (node->storage->capacity - provisioned_on(m, r->node) <
		    s->size)
			return refuse(
			    why, conflict,
			    hf_xasprintf("the pool of node %s, which holds the "
					 "snapshot, has room for %" PRId64
					 " MiB, the clone needs %" PRId64,
					 r->node,
					 (node->storage->capacity -
					  provisioned_on(m, r->node)) >> 20,
					 s->size >> 20));
		src[n++] = r;
	}
	if (!n)
		return refuse(why, conflict,
			      hf_xasprintf("no replica that holds snapshot %s "
					   "is left",
					   s->name));
	x = hf_actions_push(out, HF_ACT_XVOL, new_service, NULL, NULL);
	x->u.xvol.op = HF_XVOLOP_CLONE;
	x->u.xvol.name = hf_xstrdup(new_name);
	x->u.xvol.id = hf_xstrdup(new_id);
	x->u.xvol.size = s->size;
	x->u.xvol.repl = (unsigned)n;
	x->u.xvol.min_sync = v->min_sync < n ? v->min_sync : (unsigned)n;
	x->u.xvol.secure = v->secure;
	x->u.xvol.at = now;
	x->u.xvol.snap = hf_xstrdup(s->id);
	x->u.xvol.snap_name = hf_xstrdup(v->name);
	x->u.xvol.node = hf_xstrdup(src[0]->node);
	x->u.xvol.replica = hf_xstrdup(rids[0]);
	for (size_t i = 1; i < n; i++) {
		x->u.xvol.more_node[i - 1] = hf_xstrdup(src[i]->node);
		x->u.xvol.more_replica[i - 1] = hf_xstrdup(rids[i]);
	}
	hf_actions_log(out, "volume %s: cloned from snapshot %s of %s on %zu "
			    "node(s), for service %s",
		       new_name, s->name, v->name, n, new_service);
	snap_event(out, v, who, s->name, NULL, "cloned", new_name);
	return 1;
}

static int by_free(const void *a, const void *b)
{
	const int64_t *x = a, *y = b; /* free, index pairs */

	return x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : (x[1] > y[1]) - (x[1] < y[1]);
}

int hf_decide_from_backup(const struct hf_model *m, const char *new_name,
			  const char *new_service, const char *new_id,
			  const char *const *rids, unsigned repl, int64_t size,
			  bool secure, const char *const *key,
			  const char *cred, const char *url,
			  const char *volume, const char *backup, int64_t now,
			  struct hf_actions *out, char **why, bool *conflict)
{
	int64_t (*cand)[2] = hf_xcalloc(m->nodes.len + 1, sizeof(*cand));
	size_t n = 0;
	struct hf_action *x;
	const struct hf_xvol *src = hf_model_xvol(m, volume);

	*why = NULL;
	*conflict = true;
	if (!hf_xvol_name_ok(new_name) || hf_model_xvol(m, new_name)) {
		free(cand);
		return refuse(why, conflict,
			      hf_xasprintf(hf_xvol_name_ok(new_name)
					       ? "a volume named %s exists"
					       : "'%s' cannot name a volume",
					   new_name ? new_name : ""));
	}
	if (secure && !key && (!src || !src->secure || !src->data_key)) {
		free(cand);
		return refuse(why, conflict,
			      hf_xasprintf("backup %s is encrypted with a key "
					   "only the cluster that holds volume "
					   "%s has: only it can restore it (a "
					   "volume with secret_key=NAME can be "
					   "restored where key NAME is)",
					   backup, volume));
	}
	if (repl < 1 || repl > 3 || size <= 0) {
		free(cand);
		return refuse(why, conflict, hf_xstrdup("repl is 1 to 3"));
	}
	for (size_t i = 0; i < m->nodes.len; i++) {
		const struct hf_node *nd = m->nodes.items[i];
		int64_t free_b;

		if (!nd->storage || nd->decommissioned)
			continue;
		free_b = nd->storage->capacity - provisioned_on(m, nd->id);
		if (free_b < size)
			continue;
		cand[n][0] = free_b;
		cand[n][1] = (int64_t)i;
		n++;
	}
	if (n < repl) {
		free(cand);
		return refuse(why, conflict,
			      hf_xasprintf("%zu pool(s) have room for %" PRId64
					   " MiB, %u replica(s) are wanted",
					   n, size >> 20, repl));
	}
	qsort(cand, n, sizeof(*cand), by_free);
	x = hf_actions_push(out, HF_ACT_XVOL, new_service, NULL, NULL);
	x->u.xvol.op = HF_XVOLOP_FROM_BACKUP;
	x->u.xvol.name = hf_xstrdup(new_name);
	x->u.xvol.id = hf_xstrdup(new_id);
	x->u.xvol.size = size;
	x->u.xvol.repl = repl;
	x->u.xvol.min_sync = 1;
	x->u.xvol.secure = secure;
	if (secure && key) {
		x->u.xvol.key_name = hf_xstrdup(key[0]);
		x->u.xvol.sealed_key = hf_xstrdup(key[1]);
		x->u.xvol.key_id = hf_xstrdup(key[2]);
	}
	x->u.xvol.at = now;
	x->u.xvol.snap = hf_xstrdup(backup);
	x->u.xvol.snap_name = hf_xstrdup(volume);
	x->u.xvol.why = hf_xstrdup(url);
	x->u.xvol.cred = hf_xstrdup(cred);
	x->u.xvol.node = hf_xstrdup(m->nodes.items[cand[0][1]]->id);
	x->u.xvol.replica = hf_xstrdup(rids[0]);
	for (unsigned i = 1; i < repl; i++) {
		x->u.xvol.more_node[i - 1] =
		    hf_xstrdup(m->nodes.items[cand[i][1]]->id);
		x->u.xvol.more_replica[i - 1] = hf_xstrdup(rids[i]);
	}
	hf_actions_log(out, "volume %s: made from backup %s of %s (%s), %u "
			    "replica(s), for service %s",
		       new_name, backup, volume, url, repl, new_service);
	free(cand);
	return 1;
}

void hf_decide_replicas_filled(const struct hf_model *m, const char *node,
			       const char *const *ids, size_t n,
			       struct hf_actions *out)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			struct hf_action *x;
			bool listed = false;

			for (size_t j = 0; j < n && !listed; j++)
				listed = strcmp(ids[j], r->id) == 0;
			if (!listed || !r->clone || r->state != HF_XREP_NEW ||
			    strcmp(r->node, node) != 0)
				continue;
			x = act(out, v, HF_XVOLOP_REPLICA_FILLED, NULL);
			x->u.xvol.replica = hf_xstrdup(r->id);
			hf_actions_log(out, "volume %s: replica %s on node %s "
					    "made from its snapshot",
				       v->name, r->id, node);
		}
	}
}

/*
 * "local" in an answer is the attached node's own replica (an attach
 * process may not know its id).
 */
static const char *holder_id(const struct hf_xvol *v, const char *node,
			     const char *id)
{
	if (strcmp(id, "local") == 0) {
		const struct hf_xrep *r = hf_xvol_replica_on(v, node);

		return r ? r->id : NULL;
	}
	return hf_xvol_replica(v, id) ? id : NULL;
}

void hf_decide_snap_results(const struct hf_model *m, const char *node,
			    const char *volume, uint64_t epoch,
			    const struct hf_snap_outcome *res, size_t n,
			    int64_t now, struct hf_actions *out)
{
	const struct hf_xvol *v = hf_model_xvol(m, volume);

	if (!v || !v->attached || strcmp(v->attached, node) != 0 ||
	    v->epoch != epoch)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct hf_snap_outcome *o = &res[i];
		const struct hf_xsnap *s = hf_xvol_snap(v, o->id, true);
		struct hf_action *x;

		if (strcmp(o->op, "restore") == 0) {
			if (!v->restore || strcmp(v->restore, o->id) != 0 ||
			    epoch <= v->restore_after)
				continue;
			act(out, v, HF_XVOLOP_RESTORE, NULL);
			hf_actions_log(out, "volume %s: restore to %s %s%s%s",
				       v->name, s ? s->name : o->id,
				       o->ok ? "done" : "failed",
				       o->error ? ": " : "",
				       o->error ? o->error : "");
			snap_event(out, v, "scheduler", s ? s->name : o->id,
				   "restoring", o->ok ? "restored" : "failed",
				   o->error);
			continue;
		}
		if (!s)
			continue;
		if (strcmp(o->op, "take") == 0 && s->state == HF_XSNAP_TAKING) {
			if (o->ok) {
				x = act(out, v, HF_XVOLOP_SNAP_TAKEN, s->id);
				for (size_t k = 0; k < o->nreplicas; k++) {
					const char *h = holder_id(
					    v, node, o->replicas[k]);

					if (h && !hf_strlist_has(
						     &x->u.xvol.holders, h))
						hf_strlist_push(
						    &x->u.xvol.holders, h);
				}
				x->u.xvol.at = now;
				snap_event(out, v, "scheduler", s->name,
					   "taking", "ready", o->error);
			} else {
				x = act(out, v, HF_XVOLOP_SNAP_FAILED, s->id);
				x->u.xvol.why = hf_xstrdup(
				    o->error ? o->error : "not taken");
				snap_event(out, v, "scheduler", s->name,
					   "taking", "failed", o->error);
			}
			hf_actions_log(out, "volume %s: snapshot %s %s",
				       v->name, s->name,
				       o->ok ? "taken" : "failed");
		} else if (strcmp(o->op, "delete") == 0 &&
			   s->state == HF_XSNAP_DELETING) {
			if (o->ok) {
				act(out, v, HF_XVOLOP_SNAP_GONE, s->id);
				snap_event(out, v, "scheduler", s->name,
					   "deleting", "deleted", NULL);
			} else if (!s->why && o->error) {
				x = act(out, v, HF_XVOLOP_SNAP_FAILED, s->id);
				/* Still DELETING: the why says what failed. */
				x->u.xvol.why = hf_xstrdup(o->error);
			}
		}
	}
}
