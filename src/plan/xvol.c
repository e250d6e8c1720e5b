/*
 * xvol.c - the scheduler's rules for replicated (external) volumes
 * (decide.h, "Replicated volumes"; docs/design/volumes.md §3.2, §7.2,
 * §8.1). This stage serves one local replica per volume (repl=1): a
 * volume is made on the node its instance is placed on, which it then
 * never leaves.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "plan/decide.h"
#include "plan/placement.h"

static void xevent(struct hf_actions *out, const char *svc, const char *name,
		   const char *before, const char *after, const char *why)
{
	struct hf_action *x = hf_actions_push(out, HF_ACT_EVENT, svc, NULL, NULL);

	x->u.event.who = hf_xstrdup("scheduler");
	x->u.event.kind = hf_xstrdup("volume");
	x->u.event.object = hf_xstrdup(name);
	x->u.event.before = before ? hf_xstrdup(before) : NULL;
	x->u.event.after = hf_xstrdup(after);
	x->u.event.why = why ? hf_xstrdup(why) : NULL;
}

static struct hf_action *xvol_act(struct hf_actions *out, const char *svc,
				  const char *instance, enum hf_xvol_op op,
				  const char *name)
{
	struct hf_action *x =
	    hf_actions_push(out, HF_ACT_XVOL, svc, instance, NULL);

	x->u.xvol.op = op;
	x->u.xvol.name = hf_xstrdup(name);
	return x;
}

/* Bytes the server placed on node's pool (its live replicas' sizes). */
static int64_t provisioned(const struct hf_model *m, const char *node)
{
	int64_t sum = 0;

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (hf_xvol_replica_on(v, node))
			sum += v->size;
	}
	return sum;
}

/*
 * Whether replica r of v holds every acknowledged write, so an attach may
 * use it: in the in-sync set, or new on a volume never written (every
 * replica of a new volume starts empty and is a remote of its first
 * attach).
 */
static bool rep_usable(const struct hf_xvol *v, const struct hf_xrep *r)
{
	return r->state == HF_XREP_IN_SYNC ||
	       (r->state == HF_XREP_NEW && !v->formatted);
}

/* v's usable replica on node, or NULL. */
static const struct hf_xrep *usable_on(const struct hf_xvol *v,
				       const char *node)
{
	const struct hf_xrep *r = hf_xvol_replica_on(v, node);

	return r && rep_usable(v, r) ? r : NULL;
}

/* The nodes of v's usable replicas, "n1, n2" (caller frees), or NULL. */
static char *usable_nodes(const struct hf_xvol *v)
{
	struct hf_buf b = {0};

	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];

		if (!rep_usable(v, r))
			continue;
		hf_buf_addf(&b, "%s%s", b.len ? ", " : "", r->node);
	}
	return b.len ? hf_buf_detach(&b) : NULL;
}

/* Whether node n can take a new replica of size bytes now. */
static bool pool_takes(const struct hf_model *m, const struct hf_node *n,
		       int64_t size, int64_t now, int64_t timeout)
{
	return n->storage && !n->decommissioned &&
	       hf_model_node_reachable(n, now, timeout) &&
	       n->storage->capacity - provisioned(m, n->id) >= size;
}

static bool same_host(const struct hf_node *a, const struct hf_node *b)
{
	return a == b || (a->hostname && b->hostname &&
			  strcmp(a->hostname, b->hostname) == 0);
}

static const char *zone_of(const struct hf_node *n)
{
	return hf_kvlist_get(&n->attributes, "zone");
}

/*
 * Picks want nodes for a new volume's other replicas, besides the one on
 * first (§8.1): pools with room, never a node already holding one; among
 * those a hostname not yet holding one first, then a zone not yet used,
 * then the most room. Fills out[0..want) and returns how many it found.
 */
static size_t pick_replicas(const struct hf_model *m, const struct hf_node *first,
			    int64_t size, size_t want, int64_t now,
			    int64_t timeout, const struct hf_node **out)
{
	size_t got = 0;

	while (got < want) {
		const struct hf_node *best = NULL;
		int best_score = 0;
		int64_t best_room = 0;

		for (size_t i = 0; i < m->nodes.len; i++) {
			const struct hf_node *n = m->nodes.items[i];
			bool taken = n == first, new_host = !same_host(n, first);
			bool new_zone = zone_of(n) != NULL;
			int score;
			int64_t room;

			for (size_t k = 0; k < got && !taken; k++) {
				taken = n == out[k];
				new_host = new_host && !same_host(n, out[k]);
			}
			if (taken || !pool_takes(m, n, size, now, timeout))
				continue;
			if (new_zone && zone_of(first) &&
			    strcmp(zone_of(first), zone_of(n)) == 0)
				new_zone = false;
			for (size_t k = 0; k < got && new_zone; k++)
				if (zone_of(out[k]) &&
				    strcmp(zone_of(out[k]), zone_of(n)) == 0)
					new_zone = false;
			score = (new_host ? 2 : 0) + (new_zone ? 1 : 0);
			room = n->storage->capacity - provisioned(m, n->id);
			if (!best || score > best_score ||
			    (score == best_score && room > best_room)) {
				best = n;
				best_score = score;
				best_room = room;
			}
		}
		if (!best)
			break;
		out[got++] = best;
	}
	return got;
}

char *hf_decide_xvol_candidates(const struct hf_model *m,
				const struct hf_service *svc,
				const struct hf_spec_pod *pod,
				const struct hf_instance *in,
				struct hf_place_node *cands, size_t n,
				struct hf_decide_ctx *ctx,
				struct hf_strlist *notes)
{
	int64_t need = 0, timeout = (int64_t)(ctx->opts->node_timeout * 1000);
	int64_t biggest = 0;
	unsigned others = 0; /* most other replicas a new volume needs */
	struct hf_xvols held = {0};
	char *refuse = NULL;

	for (size_t i = 0; i < pod->external_volumes.len && !refuse; i++) {
		const struct hf_spec_external_volume *ev =
		    &pod->external_volumes.items[i];
		char *name = hf_spec_external_volume_name(svc->name, pod->name,
							  in->index, ev);
		const struct hf_xvol *v = name ? hf_model_xvol(m, name) : NULL;
		char *where;

		if (!name) {
			refuse = hf_xstrdup("cannot be placed: an external "
					    "volume has no valid name");
		} else if (!v) {
			need += ev->opts.size_bytes;
			if (ev->opts.repl > 1 + others)
				others = ev->opts.repl - 1;
			if (ev->opts.size_bytes > biggest)
				biggest = ev->opts.size_bytes;
		} else if (strcmp(v->service, svc->name) != 0) {
			refuse = hf_xasprintf("cannot be placed: volume '%s' "
					      "belongs to service '%s'",
					      name, v->service);
		} else if (v->state == HF_XVOL_DELETING) {
			refuse = hf_xasprintf("cannot be placed: volume '%s' "
					      "is being deleted",
					      name);
		} else if (v->state == HF_XVOL_ACTIVE && v->instance &&
			   strcmp(v->instance, in->name) != 0) {
			refuse = hf_xasprintf("cannot be placed: volume '%s' "
					      "is used by %s",
					      name, v->instance);
		} else if (!(where = usable_nodes(v))) {
			refuse = hf_xasprintf("cannot be placed: volume '%s' "
					      "has no in-sync replica",
					      name);
		} else {
			free(where);
			*HF_VEC_PUSH(&held) = (struct hf_xvol *)v;
		}
		free(name);
	}
	if (refuse) {
		HF_VEC_FREE(&held);
		return refuse;
	}
	/*
	 * Each candidate's rank: 2 when the pod's data is there (an in-sync
	 * replica of each volume it has, a pool with room for the local
	 * replica of each new one, and the others placeable), 1 when it can
	 * only reach its data over the network (remote access: its new
	 * volumes' replicas all on other nodes), 0 when not even that. Only
	 * the best rank found stays usable; the others say why.
	 */
	int *rank = hf_xcalloc(n + 1, sizeof(*rank));
	char **why = hf_xcalloc(n + 1, sizeof(*why));
	int best = 0;

	for (size_t k = 0; k < n; k++) {
		struct hf_place_node *cd = &cands[k];
		const struct hf_node *nd = hf_model_node(m, cd->id);
		const struct hf_node *pick[HF_VOLOPTS_MAX_REPL];
		char *note = NULL;

		if (!cd->usable || !nd)
			continue;
		for (size_t i = 0; i < held.len && !note; i++) {
			char *where;

			if (usable_on(held.items[i], cd->id))
				continue;
			where = usable_nodes(held.items[i]);
			note = hf_xasprintf("volume '%s' has its in-sync "
					    "replicas on %s",
					    held.items[i]->name, where);
			free(where);
		}
		if (note) {
		} else if (need > 0 && !nd->storage) {
			note = hf_xstrdup("it has no storage pool (agent "
					  "--storage) for the pod's volumes");
		} else if (need > 0) {
			int64_t left = nd->storage->capacity -
				       provisioned(m, nd->id);

			if (left < need)
				note = hf_xasprintf(
				    "its storage pool has %" PRId64 " MiB "
				    "free, the pod's new volumes need %" PRId64
				    " MiB",
				    left > 0 ? left >> 20 : 0, need >> 20);
			else if (others &&
				 pick_replicas(m, nd, biggest, others, ctx->now,
					       timeout, pick) < others)
				note = hf_xasprintf(
				    "the pod's new volumes need %u more "
				    "replica%s on other nodes, and fewer "
				    "nodes with a storage pool and %" PRId64
				    " MiB free are connected",
				    others, others == 1 ? "" : "s",
				    biggest >> 20);
		}
		if (!note) {
			rank[k] = 2;
		} else if (!need ||
			   pick_replicas(m, nd, biggest, others + 1, ctx->now,
					 timeout, pick) == others + 1) {
			rank[k] = 1; /* its data elsewhere, over the network */
		}
		why[k] = note;
		if (rank[k] > best)
			best = rank[k];
	}
	for (size_t k = 0; k < n; k++) {
		struct hf_place_node *cd = &cands[k];

		if (cd->usable && (rank[k] == 0 || rank[k] < best) && why[k]) {
			hf_strlist_push(notes, why[k]);
			cd->usable = false;
			cd->unusable_why = notes->items[notes->len - 1];
			cd->fallback = rank[k] > 0;
		}
		free(why[k]);
	}
	free(why);
	free(rank);
	HF_VEC_FREE(&held);
	return NULL;
}

/* Sets the instance's message when it changed (NULL clears it). */
static void say(const struct hf_service *svc, const struct hf_instance *in,
		const char *msg, struct hf_actions *out)
{
	struct hf_action *x;

	if ((!msg && !in->message) ||
	    (msg && in->message && strcmp(msg, in->message) == 0))
		return;
	x = hf_actions_push(out, HF_ACT_INSTANCE, svc->name, in->name, NULL);
	x->u.inst.set = HF_INST_MESSAGE;
	x->u.inst.message = msg ? hf_xstrdup(msg) : NULL;
}

#define WAIT_PREFIX "waiting for volume "

bool hf_decide_xvols_attached(const struct hf_model *m,
			      const struct hf_service *svc,
			      const struct hf_spec_pod *pod,
			      const struct hf_instance *in, const char *node,
			      struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	const struct hf_node *nd = hf_model_node(m, node);
	char *wait = NULL;

	for (size_t i = 0; i < pod->external_volumes.len; i++) {
		const struct hf_spec_external_volume *ev =
		    &pod->external_volumes.items[i];
		char *name = hf_spec_external_volume_name(svc->name, pod->name,
							  in->index, ev);
		const struct hf_xvol *v = name ? hf_model_xvol(m, name) : NULL;
		const struct hf_node_volrep *rep;
		struct hf_action *x;
		char *why;

		if (!name) {
			free(wait);
			wait = hf_xstrdup("an external volume has no valid "
					  "name");
			break;
		}
		if (!v) {
			/*
			 * One replica on the instance's node (Portworx's
			 * LocalNode), the others where pick_replicas says.
			 */
			const struct hf_node *more[HF_VOLOPTS_MAX_REPL];
			int64_t timeout =
			    (int64_t)(ctx->opts->node_timeout * 1000);
			/* Storage-less (or full) here: all of them elsewhere. */
			bool local = nd && pool_takes(m, nd, ev->opts.size_bytes,
						      ctx->now, timeout);
			size_t nmore = ev->opts.repl - (local ? 1 : 0);
			const char *first;
			struct hf_buf on = {0};

			if (!nd || pick_replicas(m, nd, ev->opts.size_bytes,
						 nmore, ctx->now, timeout,
						 more) < nmore) {
				free(wait);
				wait = hf_xasprintf(
				    WAIT_PREFIX "'%s': %u replicas need as "
						"many connected nodes with "
						"room in their pools",
				    name, ev->opts.repl);
				free(name);
				break;
			}
			x = xvol_act(out, svc->name, in->name, HF_XVOLOP_CREATE,
				     name);
			x->u.xvol.id = hf_rng_hex(ctx->rng, 16);
			x->u.xvol.replica = hf_rng_hex(ctx->rng, 16);
			first = local ? node : more[0]->id;
			x->u.xvol.node = hf_xstrdup(first);
			hf_buf_addf(&on, "%s", first);
			for (size_t k = local ? 0 : 1; k < nmore; k++) {
				size_t j = local ? k : k - 1;

				x->u.xvol.more_node[j] = hf_xstrdup(more[k]->id);
				x->u.xvol.more_replica[j] =
				    hf_rng_hex(ctx->rng, 16);
				hf_buf_addf(&on, ", %s", more[k]->id);
			}
			x->u.xvol.size = ev->opts.size_bytes;
			x->u.xvol.repl = ev->opts.repl;
			x->u.xvol.min_sync = ev->opts.min_sync;
			x->u.xvol.secure = ev->opts.secure;
			x->u.xvol.fs = ev->opts.fs;
			x->u.xvol.key_name =
			    ev->opts.secure && ev->opts.secret_key[0]
				? hf_xstrdup(ev->opts.secret_key)
				: NULL;
			x->u.xvol.ro = ev->volume_mode &&
				       strcmp(ev->volume_mode, "RO") == 0;
			x->u.xvol.at = ctx->now;
			why = hf_xasprintf("for %s, %" PRId64 " MiB, %u "
					   "replica%s on node%s %s",
					   in->name, ev->opts.size_bytes >> 20,
					   ev->opts.repl,
					   ev->opts.repl == 1 ? "" : "s",
					   ev->opts.repl == 1 ? "" : "s",
					   hf_buf_str(&on));
			hf_buf_release(&on);
			hf_actions_log(out, "service %s: volume %s created %s",
				       svc->name, name, why);
			xevent(out, svc->name, name, NULL, "created", why);
			free(why);
			if (!wait)
				wait = hf_xasprintf(WAIT_PREFIX "'%s' to be "
						    "created",
						    name);
			free(name);
			continue;
		}
		if (strcmp(v->service, svc->name) != 0 ||
		    v->state == HF_XVOL_DELETING ||
		    (v->state == HF_XVOL_ACTIVE && v->instance &&
		     strcmp(v->instance, in->name) != 0)) {
			free(wait);
			wait = hf_xasprintf(
			    WAIT_PREFIX "'%s': %s", name,
			    strcmp(v->service, svc->name) != 0
				? "it belongs to another service"
			    : v->state == HF_XVOL_DELETING
				? "it is being deleted"
				: "another instance uses it");
			free(name);
			break;
		}
		if (v->state == HF_XVOL_KEPT) {
			why = hf_xasprintf("kept volume taken back by %s",
					   in->name);
			xvol_act(out, svc->name, in->name, HF_XVOLOP_ADOPT,
				 name);
			hf_actions_log(out, "service %s: volume %s: %s",
				       svc->name, name, why);
			xevent(out, svc->name, name, "kept", "active", why);
			free(why);
		}
		if (!usable_on(v, node) && !hf_xvol_in_sync(v) &&
		    v->formatted) {
			/* Remote access needs an in-sync replica somewhere. */
			free(wait);
			wait = hf_xasprintf(WAIT_PREFIX "'%s': it has no "
						       "in-sync replica",
					    name);
			free(name);
			break;
		}
		if (!v->attached || strcmp(v->attached, node) != 0) {
			/* Intent first: the epoch is stored before any agent
			 * is told of the attachment. */
			x = xvol_act(out, svc->name, in->name, HF_XVOLOP_ATTACH,
				     name);
			x->u.xvol.node = hf_xstrdup(node);
			x->u.xvol.epoch = v->epoch + 1;
			why = hf_xasprintf("on node %s at epoch %" PRIu64 "%s",
					   node, v->epoch + 1,
					   v->formatted ? "" : " (new file system)");
			hf_actions_log(out, "service %s: volume %s attached %s",
				       svc->name, name, why);
			xevent(out, svc->name, name, v->attached, "attached",
			       why);
			free(why);
			if (!wait)
				wait = hf_xasprintf(WAIT_PREFIX "'%s' to be "
						    "attached on node %s",
						    name, node);
			free(name);
			continue;
		}
		rep = hf_model_node_volrep(nd, name);
		if (!rep || !rep->ready || rep->epoch != v->epoch) {
			if (!wait && rep && rep->failed &&
			    rep->epoch == v->epoch)
				wait = hf_xasprintf(
				    WAIT_PREFIX "'%s' to be ready on node %s "
						"(epoch %" PRIu64 "): its attach "
						"failed: %s",
				    name, node, v->epoch,
				    *rep->failed ? rep->failed : "no reason "
								 "given");
			else if (!wait)
				wait = hf_xasprintf(WAIT_PREFIX "'%s' to be "
						    "ready on node %s (epoch "
						    "%" PRIu64 ")",
						    name, node, v->epoch);
			free(name);
			continue;
		}
		{
			const struct hf_xrep *r = hf_xvol_replica_on(v, node);

			if (!v->formatted || (r && r->state == HF_XREP_NEW)) {
				x = xvol_act(out, svc->name, in->name,
					     HF_XVOLOP_READY, name);
				x->u.xvol.node = hf_xstrdup(node);
				x->u.xvol.epoch = v->epoch;
				xevent(out, svc->name, name, "attached",
				       "ready", node);
			}
		}
		free(name);
	}
	if (wait) {
		say(svc, in, wait, out);
		free(wait);
		return false;
	}
	if (in->message && strncmp(in->message, WAIT_PREFIX,
				   strlen(WAIT_PREFIX)) == 0)
		say(svc, in, NULL, out);
	return true;
}

void hf_decide_xvols_release(const struct hf_model *m,
			     const struct hf_service *svc,
			     const struct hf_instance *in, enum hf_xvol_op op,
			     const char *why, struct hf_actions *out)
{
	struct hf_xvols vols = {0};

	hf_model_xvols_of_instance(m, svc->name, in->name, &vols);
	for (size_t i = 0; i < vols.len; i++) {
		const struct hf_xvol *v = vols.items[i];
		const char *after;

		if (v->state == HF_XVOL_DELETING)
			continue;
		if (op == HF_XVOLOP_DETACH && !v->attached)
			continue;
		xvol_act(out, svc->name, in->name, op, v->name);
		after = op == HF_XVOLOP_DETACH ? "detached"
			: op == HF_XVOLOP_KEEP ? "kept"
					       : "deleting";
		hf_actions_log(out, "service %s: volume %s %s: %s", svc->name,
			       v->name, after, why);
		xevent(out, svc->name, v->name, v->attached ? "attached" : NULL,
		       after, why);
	}
	HF_VEC_FREE(&vols);
}

size_t hf_decide_xvols_delete_kept(const struct hf_model *m, const char *svc,
				   const char *who, struct hf_actions *out)
{
	size_t count = 0;

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		struct hf_action *x;

		if (v->state != HF_XVOL_KEPT || strcmp(v->service, svc) != 0)
			continue;
		xvol_act(out, svc, NULL, HF_XVOLOP_DELETE, v->name);
		hf_actions_log(out, "volume %s: kept volume is deleted",
			       v->name);
		x = hf_actions_push(out, HF_ACT_EVENT, svc, NULL, NULL);
		x->u.event.who = hf_xstrdup(who);
		x->u.event.kind = hf_xstrdup("volume");
		x->u.event.object = hf_xstrdup(v->name);
		x->u.event.before = hf_xstrdup("kept");
		x->u.event.after = hf_xstrdup("deleting");
		count++;
	}
	return count;
}

void hf_decide_replicas_deleted(const struct hf_model *m, const char *node,
				const char *const *ids, size_t n,
				struct hf_actions *out)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			struct hf_action *x;
			bool done = false;

			if (r->state != HF_XREP_DELETING ||
			    strcmp(r->node, node) != 0)
				continue;
			for (size_t j = 0; j < n && !done; j++)
				done = strcmp(ids[j], r->id) == 0;
			if (!done)
				continue;
			x = xvol_act(out, v->service, NULL,
				     HF_XVOLOP_REPLICA_GONE, v->name);
			x->u.xvol.replica = hf_xstrdup(r->id);
			x->u.xvol.node = hf_xstrdup(node);
			hf_actions_log(out, "volume %s: replica %s deleted on "
					    "node %s",
				       v->name, r->id, node);
			if (v->state == HF_XVOL_DELETING && v->replicas.len == 1)
				xevent(out, v->service, v->name, "deleting",
				       "deleted", node);
		}
	}
}

void hf_decide_isr_drop(const struct hf_model *m, const char *node,
			const char *volume, uint64_t epoch,
			const char *const *drop, size_t n, const char *why,
			struct hf_actions *out)
{
	const struct hf_xvol *v = hf_model_xvol(m, volume);
	unsigned left, need;
	size_t dropping = 0;

	if (!v || v->state != HF_XVOL_ACTIVE || !v->attached ||
	    strcmp(v->attached, node) != 0 || v->epoch != epoch)
		return; /* an old attachment's word counts for nothing */
	left = hf_xvol_in_sync(v);
	need = v->min_sync ? v->min_sync : 1;
	for (size_t i = 0; i < n; i++) {
		const struct hf_xrep *r = hf_xvol_replica(v, drop[i]);

		if (r && r->state == HF_XREP_IN_SYNC &&
		    strcmp(r->node, node) != 0)
			dropping++;
		if (r && r->state == HF_XREP_RESYNCING &&
		    strcmp(r->node, node) != 0) {
			/* A failed copy: down again, tried again later. */
			struct hf_action *x = xvol_act(
			    out, v->service, v->instance, HF_XVOLOP_REPLICA_DOWN,
			    v->name);

			x->u.xvol.node = hf_xstrdup(r->node);
			x->u.xvol.why = hf_xstrdup(why ? why : "its resync failed");
			xevent(out, v->service, v->name, "resyncing", "down",
			       why ? why : "its resync failed");
		}
	}
	if (!dropping)
		return;
	if (left - dropping < need) {
		char *msg = hf_xasprintf(
		    "writes wait: %zu of its %u in-sync replicas failed (%s), "
		    "and its policy needs %u (min_sync)",
		    dropping, left, why ? why : "no reason given", need);

		hf_actions_log(out, "volume %s: %s", v->name, msg);
		free(msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct hf_xrep *r = hf_xvol_replica(v, drop[i]);
		struct hf_action *x;
		char *msg;

		if (!r || r->state != HF_XREP_IN_SYNC ||
		    strcmp(r->node, node) == 0)
			continue;
		x = xvol_act(out, v->service, v->instance, HF_XVOLOP_REPLICA_DOWN,
			     v->name);
		x->u.xvol.node = hf_xstrdup(r->node);
		x->u.xvol.why = hf_xstrdup(why ? why : "it failed a write");
		left--;
		msg = hf_xasprintf("replica on node %s out of sync (%s); writes "
				   "continue on %u of %u replicas, policy "
				   "min_sync=%u",
				   r->node, why ? why : "it failed a write", left,
				   v->repl, need);
		hf_actions_log(out, "volume %s: %s", v->name, msg);
		xevent(out, v->service, v->name, "in sync", "down", msg);
		free(msg);
	}
}

int hf_decide_xvol_delete(const struct hf_model *m, const char *name,
			  const char *who, struct hf_actions *out)
{
	const struct hf_xvol *v = hf_model_xvol(m, name);
	struct hf_action *x;

	if (!v)
		return 0;
	if (v->state == HF_XVOL_ACTIVE)
		return -1;
	if (v->state == HF_XVOL_DELETING)
		return 1;
	xvol_act(out, v->service, NULL, HF_XVOLOP_DELETE, v->name);
	hf_actions_log(out, "volume %s: kept volume is deleted", v->name);
	x = hf_actions_push(out, HF_ACT_EVENT, v->service, NULL, NULL);
	x->u.event.who = hf_xstrdup(who);
	x->u.event.kind = hf_xstrdup("volume");
	x->u.event.object = hf_xstrdup(v->name);
	x->u.event.before = hf_xstrdup("kept");
	x->u.event.after = hf_xstrdup("deleting");
	return 1;
}

int hf_decide_xvol_resize(const struct hf_model *m, const char *name,
			  int64_t size, const char *who,
			  struct hf_actions *out, char **why)
{
	const struct hf_xvol *v = hf_model_xvol(m, name);
	struct hf_action *x;
	char before[32], after[32];

	*why = NULL;
	if (!v || v->state == HF_XVOL_DELETING) {
		*why = hf_xasprintf("no volume %s", name);
		return -1;
	}
	if (size == v->size)
		return 0;
	if (size < v->size) {
		*why = hf_xasprintf("volume %s is %" PRId64 " MiB: volumes grow "
				    "but never shrink (asked for %" PRId64
				    " MiB)",
				    name, v->size >> 20, size >> 20);
		return -1;
	}
	if (size > HF_VOLOPTS_MAX_SIZE || size % (1 << 20)) {
		*why = hf_xasprintf("a volume's size is a whole number of MiB "
				    "up to 64 TiB");
		return -1;
	}
	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];
		const struct hf_node *n = hf_model_node(m, r->node);

		if (r->state == HF_XREP_DELETING || !n || !n->storage)
			continue;
		if (n->storage->capacity - provisioned(m, n->id) <
		    size - v->size) {
			*why = hf_xasprintf(
			    "the pool of node %s, which holds replica %s, has "
			    "room for %" PRId64 " MiB more, not %" PRId64,
			    n->id, r->id,
			    (n->storage->capacity - provisioned(m, n->id)) >>
				20,
			    (size - v->size) >> 20);
			return -1;
		}
	}
	x = xvol_act(out, v->service, v->instance, HF_XVOLOP_RESIZE, v->name);
	x->u.xvol.size = size;
	hf_actions_log(out, "volume %s grows from %" PRId64 " to %" PRId64
			    " MiB",
		       v->name, v->size >> 20, size >> 20);
	x = hf_actions_push(out, HF_ACT_EVENT, v->service, v->instance, NULL);
	snprintf(before, sizeof(before), "%" PRId64 " MiB", v->size >> 20);
	snprintf(after, sizeof(after), "%" PRId64 " MiB", size >> 20);
	x->u.event.who = hf_xstrdup(who);
	x->u.event.kind = hf_xstrdup("volume");
	x->u.event.object = hf_xstrdup(v->name);
	x->u.event.before = hf_xstrdup(before);
	x->u.event.after = hf_xstrdup(after);
	return 1;
}

/*
 * Whether replica r of v is lost for good: on a decommissioned node (in
 * any state), or down longer than the re-replication delay.
 */
static bool rep_lost(const struct hf_model *m, const struct hf_xrep *r,
		     const struct hf_decide_ctx *ctx)
{
	const struct hf_node *n = hf_model_node(m, r->node);

	if (r->state == HF_XREP_DELETING)
		return false;
	if (!n || n->decommissioned)
		return true;
	return r->state == HF_XREP_DOWN && ctx->opts->rereplicate_after > 0 &&
	       ctx->now - r->since >=
		   (int64_t)(ctx->opts->rereplicate_after * 1000);
}

/*
 * A node for a new replica of v: a connected pool with room, holding no
 * replica of v; another hostname than theirs first, then the most room.
 * NULL when none.
 */
static const struct hf_node *new_home(const struct hf_model *m,
				      const struct hf_xvol *v, int64_t now,
				      int64_t timeout)
{
	const struct hf_node *best = NULL;
	bool best_new_host = false;
	int64_t best_room = 0;

	for (size_t i = 0; i < m->nodes.len; i++) {
		const struct hf_node *n = m->nodes.items[i];
		bool new_host = true, holds = false;
		int64_t room;

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			const struct hf_node *rn = hf_model_node(m, r->node);

			holds = holds || strcmp(r->node, n->id) == 0;
			if (rn && r->state != HF_XREP_DELETING &&
			    same_host(n, rn))
				new_host = false;
		}
		if (holds || !pool_takes(m, n, v->size, now, timeout))
			continue;
		room = n->storage->capacity - provisioned(m, n->id);
		if (!best || (new_host && !best_new_host) ||
		    (new_host == best_new_host && room > best_room)) {
			best = n;
			best_new_host = new_host;
			best_room = room;
		}
	}
	return best;
}

/*
 * Re-replication (§7.6): while v has fewer than repl replicas that are
 * not lost, one more is made on another node (resyncing from the start:
 * the attach process copies the volume to it); once repl replicas are in
 * sync, the lost ones are given up (deleted where their nodes return).
 */
static void rereplicate(const struct hf_model *m, const struct hf_xvol *v,
			struct hf_decide_ctx *ctx, int64_t timeout,
			struct hf_actions *out)
{
	unsigned kept = 0, in_sync = 0, lost = 0;
	const struct hf_node *home;
	struct hf_action *x;
	char *why;

	for (size_t k = 0; k < v->replicas.len; k++) {
		const struct hf_xrep *r = &v->replicas.items[k];

		if (r->state == HF_XREP_DELETING)
			continue;
		if (rep_lost(m, r, ctx)) {
			lost++;
			continue;
		}
		kept++;
		in_sync += r->state == HF_XREP_IN_SYNC;
	}
	if (!lost)
		return;
	if (in_sync >= v->repl) {
		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];

			if (!rep_lost(m, r, ctx))
				continue;
			why = hf_xasprintf("replaced by a replica in sync on "
					   "another node (node %s %s)",
					   r->node,
					   hf_model_node(m, r->node) &&
						   !hf_model_node(m, r->node)
							->decommissioned
					       ? "stayed down"
					       : "is decommissioned");
			x = xvol_act(out, v->service, v->instance,
				     HF_XVOLOP_REPLICA_RETIRE, v->name);
			x->u.xvol.replica = hf_xstrdup(r->id);
			x->u.xvol.why = hf_xstrdup(why);
			hf_actions_log(out, "volume %s: replica on node %s "
					    "given up: %s",
				       v->name, r->node, why);
			xevent(out, v->service, v->name,
			       hf_xrep_state_name(r->state), "deleting", why);
			free(why);
		}
		return;
	}
	if (kept >= v->repl)
		return; /* a new one is being copied to already */
	home = new_home(m, v, ctx->now, timeout);
	if (!home)
		return;
	why = hf_xasprintf("re-replication: a replica on node %s replaces "
			   "a lost one",
			   home->id);
	x = xvol_act(out, v->service, v->instance, HF_XVOLOP_REPLICA_ADD,
		     v->name);
	x->u.xvol.node = hf_xstrdup(home->id);
	x->u.xvol.replica = hf_rng_hex(ctx->rng, 16);
	x->u.xvol.why = hf_xstrdup(why);
	hf_actions_log(out, "volume %s: %s", v->name, why);
	xevent(out, v->service, v->name, NULL, "resyncing", why);
	free(why);
}

/* How long a replica stays down before a copy to it is tried (again). */
#define HF_XVOL_RESYNC_RETRY_MS 5000

void hf_decide_xvols_heal(const struct hf_model *m, const char *svc,
			  struct hf_decide_ctx *ctx, struct hf_actions *out)
{
	int64_t timeout = (int64_t)(ctx->opts->node_timeout * 1000);

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];

		if (strcmp(v->service, svc) != 0 || v->state != HF_XVOL_ACTIVE ||
		    !v->attached || !v->formatted)
			continue;
		rereplicate(m, v, ctx, timeout, out);
		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];
			const struct hf_node *n = hf_model_node(m, r->node);
			struct hf_action *x;
			char *why;

			/* A copy that failed is tried again, not in a loop. */
			if (ctx->now - r->since < HF_XVOL_RESYNC_RETRY_MS)
				continue;
			if (r->state != HF_XREP_DOWN || !n || n->decommissioned ||
			    rep_lost(m, r, ctx) ||
			    !n->storage || n->storage->port <= 0 ||
			    !hf_model_node_reachable(n, ctx->now, timeout) ||
			    strcmp(r->node, v->attached) == 0)
				continue;
			why = hf_xasprintf("node %s is back: the volume is "
					   "copied to its replica",
					   r->node);
			x = xvol_act(out, v->service, v->instance,
				     HF_XVOLOP_REPLICA_RESYNC, v->name);
			x->u.xvol.node = hf_xstrdup(r->node);
			x->u.xvol.why = hf_xstrdup(why);
			hf_actions_log(out, "volume %s: %s", v->name, why);
			xevent(out, v->service, v->name, "down", "resyncing", why);
			free(why);
		}
	}
}

void hf_decide_resynced(const struct hf_model *m, const char *node,
			const char *volume, uint64_t epoch,
			const char *const *ids, size_t n,
			struct hf_actions *out)
{
	const struct hf_xvol *v = hf_model_xvol(m, volume);

	if (!v || v->state != HF_XVOL_ACTIVE || !v->attached ||
	    strcmp(v->attached, node) != 0 || v->epoch != epoch)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct hf_xrep *r = hf_xvol_replica(v, ids[i]);
		struct hf_action *x;
		char *why;

		if (!r || r->state != HF_XREP_RESYNCING)
			continue;
		why = hf_xasprintf("replica on node %s holds every write "
				   "again (resynced)",
				   r->node);
		x = xvol_act(out, v->service, v->instance,
			     HF_XVOLOP_REPLICA_SYNCED, v->name);
		x->u.xvol.replica = hf_xstrdup(r->id);
		x->u.xvol.epoch = epoch;
		x->u.xvol.why = hf_xstrdup("resynced");
		hf_actions_log(out, "volume %s: %s", v->name, why);
		xevent(out, v->service, v->name, "resyncing", "in sync", why);
		free(why);
	}
}

void hf_decide_resync_progress(const struct hf_model *m, const char *node,
			       const char *volume, uint64_t epoch,
			       const char *replica, int64_t done,
			       int64_t total, struct hf_actions *out)
{
	const struct hf_xvol *v = hf_model_xvol(m, volume);
	const struct hf_xrep *r = v ? hf_xvol_replica(v, replica) : NULL;
	struct hf_action *x;

	if (!r || r->state != HF_XREP_RESYNCING || !v->attached ||
	    strcmp(v->attached, node) != 0 || v->epoch != epoch ||
	    total <= 0 || done < 0 || done > total)
		return;
	/* A new percent is news; bytes within one are not worth a write. */
	if (r->resync_total == total &&
	    done * 100 / total == (r->resync_done * 100) / total)
		return;
	x = xvol_act(out, v->service, v->instance, HF_XVOLOP_REPLICA_PROGRESS,
		     v->name);
	x->u.xvol.replica = hf_xstrdup(r->id);
	x->u.xvol.done = done;
	x->u.xvol.size = total;
}
