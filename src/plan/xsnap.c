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
