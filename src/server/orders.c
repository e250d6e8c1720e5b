/*
 * orders.c - what the server tells agents and what it hears back
 * (docs/protocol.md): each node's desired set of launch orders with the
 * volumes its agent is to delete, published under a generation. The
 * messages themselves are proto/'s: one encoder and decoder for both
 * sides.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "plan/decide.h"
#include "server/creds.h"
#include "server/dr.h"
#include "server/orders.h"
#include "volume/crypt.h"
#include "volume/ticket.h"

/* ------------------------------------------------------------------ */
/* Desired sets                                                         */

static bool desired_task(const struct hf_task_slot *sl)
{
	return sl->cur && !sl->cur->kill && hf_task_state_live(sl->cur->state);
}

/*
 * A desired set's digest: the sum of its task ids' and volume keys'
 * hashes, so it does not depend on the order they are visited in.
 */
static uint64_t volume_digest(const struct hf_srv *s, const struct hf_node *n)
{
	uint64_t d = 0;

	for (size_t k = 0; k < s->model.volumes.len; k++) {
		const struct hf_volume *v = s->model.volumes.items[k];

		if (v->state == HF_VOL_DELETING && strcmp(v->node, n->id) == 0)
			d += hf_hash_str(v->key) * 3;
	}
	return d;
}

/*
 * Whether the owner of volume v is placed on node; then *user is the
 * user its tasks run as (the pod's, else the service's), or NULL.
 */
static bool owner_on(const struct hf_model *m, const struct hf_xvol *v,
		     const char *node, const char **user)
{
	const struct hf_service *svc =
	    v->service ? hf_model_service(m, v->service) : NULL;
	const struct hf_instance *in =
	    svc && v->instance ? hf_model_instance(svc, v->instance) : NULL;
	const struct hf_config *cfg = svc ? hf_model_target(svc) : NULL;
	const struct hf_spec_pod *pod =
	    in && cfg ? hf_model_pod(cfg, in->pod) : NULL;

	*user = pod && pod->user ? pod->user
		: cfg && cfg->spec   ? cfg->spec->scheduler_user
				     : NULL;
	return in && in->node && strcmp(in->node, node) == 0;
}

/*
 * The ids of user name (a number is taken as is), as this machine knows
 * them: the nodes of one cluster share their users, as Mesos assumes.
 * 0:0 when unknown (the volume's root is then root's).
 */
static void user_ids(const char *user, int64_t *uid, int64_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	char *end;
	long n;

	*uid = *gid = 0;
	if (!user || !*user)
		return;
	n = strtol(user, &end, 10);
	if (!*end && n >= 0) {
		*uid = *gid = n;
		return;
	}
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res) {
		*uid = res->pw_uid;
		*gid = res->pw_gid;
	}
}

/*
 * The replicas on other nodes an attachment of v on node uses: v's usable
 * ones (hf_decide's rule: in sync, or new on a volume never written).
 * Fills out (up to max) and returns how many; -1 when one of them cannot
 * be reached yet (its node has no address or replica server port): the
 * attachment waits rather than start without it.
 */
static int remotes_of(const struct hf_model *m, const struct hf_xvol *v,
		      const char *node, const struct hf_xrep **out,
		      const struct hf_node **nodes, int max)
{
	int n = 0;

	for (size_t i = 0; i < v->replicas.len; i++) {
		const struct hf_xrep *r = &v->replicas.items[i];
		const struct hf_node *rn;

		if (strcmp(r->node, node) == 0 ||
		    !(r->state == HF_XREP_IN_SYNC ||
		      r->state == HF_XREP_RESYNCING ||
		      (r->state == HF_XREP_NEW && !v->formatted)))
			continue;
		rn = hf_model_node(m, r->node);
		if (!rn || !rn->address || !rn->storage || rn->storage->port <= 0) {
			if (r->state == HF_XREP_RESYNCING)
				continue; /* none of its writes are needed yet */
			return -1;
		}
		if (n < max) {
			out[n] = r;
			nodes[n] = rn;
			n++;
		}
	}
	return n;
}

#define MAX_REMOTES 8

/*
 * An attachment's part of its node's digest: a new epoch, or a remote
 * replica's server moving, is a new set.
 */
static uint64_t attach_hash(const struct hf_model *m, const struct hf_xvol *v)
{
	const struct hf_xrep *rs[MAX_REMOTES];
	const struct hf_node *ns[MAX_REMOTES];
	int nr = remotes_of(m, v, v->attached, rs, ns, MAX_REMOTES);
	uint64_t h;
	char buf[48];

	snprintf(buf, sizeof(buf), "%llu/%d/%lld", (unsigned long long)v->epoch,
		 v->formatted, (long long)v->size);
	h = hf_hash_str(v->name) ^ hf_hash_str(buf);
	/* Snapshot requests: each one asked is news to the node. */
	if (v->restore && v->epoch > v->restore_after)
		h += hf_hash_str(v->restore) * 17;
	for (size_t i = 0; i < v->snaps.len; i++)
		if (v->snaps.items[i].state == HF_XSNAP_TAKING ||
		    v->snaps.items[i].state == HF_XSNAP_DELETING)
			h += hf_hash_str(v->snaps.items[i].id) *
			     (v->snaps.items[i].state == HF_XSNAP_TAKING ? 19
									 : 23);
	for (int i = 0; i < nr; i++) {
		snprintf(buf, sizeof(buf), "%lld/%d",
			 (long long)ns[i]->storage->port,
			 rs[i]->state == HF_XREP_RESYNCING);
		h += hf_hash_str(ns[i]->address) * 3 + hf_hash_str(buf) * 5 +
		     hf_hash_str(rs[i]->id) * 13;
	}
	return nr < 0 ? 0 : h * 5;
}

/*
 * The attachment's snapshot requests: a restore first (it runs before
 * the volume is served), then takes and deletes, oldest first.
 */
static void snap_requests(const struct hf_xvol *v,
			  struct hf_proto_attachment *a)
{
	if (v->restore && v->epoch > v->restore_after) {
		struct hf_proto_snap_req *q = HF_VEC_PUSH(&a->snapshots);

		q->id = hf_xstrdup(v->restore);
		q->op = hf_xstrdup("restore");
	}
	for (size_t i = 0; i < v->snaps.len && a->snapshots.len < 128; i++) {
		const struct hf_xsnap *sn = &v->snaps.items[i];
		struct hf_proto_snap_req *q;

		if (sn->state != HF_XSNAP_TAKING &&
		    sn->state != HF_XSNAP_DELETING)
			continue;
		q = HF_VEC_PUSH(&a->snapshots);
		q->id = hf_xstrdup(sn->id);
		q->op = hf_xstrdup(sn->state == HF_XSNAP_TAKING ? "take"
								 : "delete");
	}
}

/*
 * A replica made from a backup: where from, with the credential's keys
 * (read from the store). Returns whether it could be said.
 */
static bool restore_from(struct hf_srv *s, const struct hf_xvol *v,
			 struct hf_proto_held_replica *h)
{
	struct hf_cred c;
	char *why = NULL;

	if (!v->rs_cred || !v->rs_url || !v->rs_volume || !v->rs_backup ||
	    hf_cred_s3(s, v->rs_cred, &c, &why)) {
		/* The credential was deleted: `volume show` has it. */
		free(why);
		return false;
	}
	h->restore_from = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "endpoint", c.endpoint,
	    "region", c.region, "url", v->rs_url, "volume", v->rs_volume,
	    "backup", v->rs_backup, "access_key", c.access_key, "secret_key",
	    c.secret_key);
	if (c.ca)
		json_object_set_new(h->restore_from, "ca", json_string(c.ca));
	hf_cred_release(&c);
	return true;
}

/* A held replica's part of its node's digest. */
static uint64_t held_hash(const struct hf_xvol *v, const struct hf_xrep *r)
{
	/* The size too: a grown volume's replicas are listed again. */
	return hf_hash_str(r->id) * 11 + (uint64_t)v->size * 7 +
	       (r->clone ? hf_hash_str(r->clone) * 29 : 0);
}

/* Whether v is attached on node for its owner, which runs there. */
static bool attached_here(const struct hf_model *m, const struct hf_xvol *v,
			  const char *node, const char **user)
{
	return v->state == HF_XVOL_ACTIVE && v->attached &&
	       strcmp(v->attached, node) == 0 && owner_on(m, v, node, user);
}

/* v's replica on node that is up to date, or NULL. */
static const struct hf_xrep *local_of(const struct hf_xvol *v, const char *node)
{
	const struct hf_xrep *r = hf_xvol_replica_on(v, node);

	return r && (r->state == HF_XREP_IN_SYNC ||
		     (r->state == HF_XREP_NEW && !v->formatted))
		   ? r
		   : NULL;
}

/*
 * Whether v's attachment on node can be listed: every remote it uses can
 * be reached, and it has at least one replica. Returns the number of
 * remotes (filling rs, ns up to MAX_REMOTES when not NULL) and sets
 * *local, or -1 when it waits.
 */
static int listed(const struct hf_model *m, const struct hf_xvol *v,
		  const char *node, const struct hf_xrep **local,
		  const struct hf_xrep **rs, const struct hf_node **ns)
{
	const struct hf_xrep *scratch_r[MAX_REMOTES];
	const struct hf_node *scratch_n[MAX_REMOTES];
	const struct hf_xrep *lr = local_of(v, node);
	int nr = remotes_of(m, v, node, rs ? rs : scratch_r,
			    ns ? ns : scratch_n, MAX_REMOTES);

	if (local)
		*local = lr;
	return nr < 0 || (!lr && nr == 0) ? -1 : nr;
}

/* Adds every volume's part to its nodes' digest_scratch (publish). */
static void xvols_digest(struct hf_srv *s)
{
	struct hf_model *m = &s->model;

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		const char *user;
		struct hf_node *n;

		if (v->attached && attached_here(m, v, v->attached, &user) &&
		    listed(m, v, v->attached, NULL, NULL, NULL) >= 0) {
			n = hf_model_node(m, v->attached);
			if (n)
				n->link->digest_scratch += attach_hash(m, v);
		}
		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];

			n = hf_model_node(m, r->node);
			if (!n)
				continue;
			n->link->digest_scratch += r->state == HF_XREP_DELETING
						       ? hf_hash_str(r->id) * 7
						       : held_hash(v, r);
		}
	}
}

/* The hex text of the attach ticket for v at its epoch on node. */
static char *ticket_hex(const struct hf_xvol *v, const char *node)
{
	uint8_t key[HF_VOL_KEY_LEN], t[HF_VOL_TICKET_LEN];
	char *hex = hf_xmalloc(2 * HF_VOL_TICKET_LEN + 1);

	if (!v->secret ||
	    hf_vol_hex_decode(v->secret, key, sizeof(key)) != 0)
		memset(key, 0, sizeof(key)); /* a ticket no replica takes */
	hf_vol_ticket(key, v->id, v->epoch, node, t);
	for (size_t i = 0; i < sizeof(t); i++)
		snprintf(hex + 2 * i, 3, "%02x", t[i]);
	explicit_bzero(key, sizeof(key));
	return hex;
}

/*
 * The opened data key of encrypted volume v as hex, for its attached
 * node's order alone; NULL when the cluster key does not open it (the
 * server then does not lead: state.c's check).
 */
static char *data_key_hex(const struct hf_srv *s, const struct hf_xvol *v)
{
	uint8_t dk[HF_VOL_DATA_KEY_LEN];
	char *hex, *why = NULL;

	/* A named key is read from the store (hf_state_get_record). */
	if (hf_cred_open_data_key((struct hf_srv *)s, v->key_name, v->id,
				  v->data_key, dk, &why)) {
		free(why);
		return NULL;
	}
	hex = hf_xmalloc(2 * sizeof(dk) + 1);
	for (size_t i = 0; i < sizeof(dk); i++)
		snprintf(hex + 2 * i, 3, "%02x", dk[i]);
	explicit_bzero(dk, sizeof(dk));
	return hex;
}

uint64_t hf_orders_xvols(struct hf_srv *s, const struct hf_node *n,
			 struct hf_proto_sync_resp *out)
{
	const struct hf_model *m = &s->model;
	uint64_t d = 0;

	for (size_t i = 0; i < m->xvols.len; i++) {
		const struct hf_xvol *v = m->xvols.items[i];
		const struct hf_xrep *r = NULL;
		const struct hf_xrep *rs[MAX_REMOTES];
		const struct hf_node *ns[MAX_REMOTES];
		const char *user = NULL;
		int nr;

		/*
		 * An encrypted volume is never attached without its key
		 * (the attach would see noise, or write plaintext); the
		 * server has the key that opens it (state.c checks at load).
		 */
		bool keyed = !v->secure || v->key_name ||
			     s->opts.have_cluster_key;

		if (attached_here(m, v, n->id, &user) && keyed &&
		    (nr = listed(m, v, n->id, &r, rs, ns)) >= 0) {
			d += attach_hash(m, v);
			if (out) {
				struct hf_proto_attachment *a =
				    HF_VEC_PUSH(&out->attachments);

				memset(a, 0, sizeof(*a));
				a->volume = hf_xstrdup(v->name);
				a->id = hf_xstrdup(v->id);
				/* Only an up-to-date local replica serves. */
				a->replica = r ? hf_xstrdup(r->id) : NULL;
				a->epoch = (int64_t)v->epoch;
				a->size = v->size;
				a->format = !v->formatted;
				a->fs = v->fs;
				/* A new file system is its tasks' user's. */
				user_ids(user, &a->uid, &a->gid);
				for (int k = 0; k < nr; k++) {
					struct hf_proto_remote *rm =
					    HF_VEC_PUSH(&a->remotes);

					rm->replica = hf_xstrdup(rs[k]->id);
					rm->node = hf_xstrdup(ns[k]->id);
					rm->address = hf_xstrdup(ns[k]->address);
					rm->port = ns[k]->storage->port;
					rm->resync =
					    rs[k]->state == HF_XREP_RESYNCING;
				}
				/*
				 * Also without remotes: the attach proves its
				 * epoch to its own node's replica server, which
				 * then fences older attachments' writes.
				 */
				a->ticket = ticket_hex(v, n->id);
				snap_requests(v, a);
				if (v->secure) {
					a->encryption_key = data_key_hex(s, v);
					if (!a->encryption_key) {
						hf_proto_attachment_release(a);
						out->attachments.len--;
					}
				}
			}
		}
		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *hr = &v->replicas.items[k];

			if (strcmp(hr->node, n->id) != 0)
				continue;
			if (hr->state != HF_XREP_DELETING) {
				/* Its node's replica server keeps it. */
				d += held_hash(v, hr);
				if (out && v->secret) {
					struct hf_proto_held_replica *h =
					    HF_VEC_PUSH(&out->replicas);

					h->volume = hf_xstrdup(v->name);
					h->id = hf_xstrdup(v->id);
					h->replica = hf_xstrdup(hr->id);
					h->key = hf_xstrdup(v->secret);
					h->size = v->size;
					if (hr->clone &&
					    !strcmp(hr->clone, "backup") &&
					    !restore_from(s, v, h)) {
						/* Not listed until it can be
						 * made: an empty one would be
						 * served as made. */
						free(h->volume);
						free(h->id);
						free(h->replica);
						free(h->key);
						out->replicas.len--;
						continue;
					}
					if (hr->clone &&
					    strcmp(hr->clone, "backup") != 0) {
						char *c = hf_xstrdup(hr->clone);
						char *a = strtok(c, "/");
						char *b = strtok(NULL, "/");
						char *sn = strtok(NULL, "/");

						if (a && b && sn) {
							h->clone_id = hf_xstrdup(a);
							h->clone_replica =
							    hf_xstrdup(b);
							h->clone_snap =
							    hf_xstrdup(sn);
						}
						free(c);
					}
				}
				continue;
			}
			d += hf_hash_str(hr->id) * 7;
			if (out) {
				struct hf_proto_replica_ref *ref =
				    HF_VEC_PUSH(&out->delete_replicas);

				ref->id = hf_xstrdup(v->id);
				ref->replica = hf_xstrdup(hr->id);
			}
		}
	}
	return d;
}

/* Gives n a new generation when its set's digest changed. */
static bool node_settle(struct hf_srv *s, struct hf_node *n, uint64_t digest)
{
	if (digest == n->link->digest)
		return false;
	n->link->digest = digest;
	n->link->gen = ++s->generation;
	return true;
}

const struct hf_node_insts *hf_orders_node_insts(struct hf_srv *s,
						 const struct hf_node *n,
						 struct hf_node_insts *scratch)
{
	if (s->node_lists_valid)
		return &n->link->insts;
	hf_model_node_insts(&s->model, n->id, scratch);
	return scratch;
}

void hf_orders_volume_deletions(struct hf_srv *s, const struct hf_node *n,
				struct hf_strlist *out)
{
	for (size_t k = 0; k < s->model.volumes.len; k++) {
		const struct hf_volume *v = s->model.volumes.items[k];

		if (v->state == HF_VOL_DELETING && strcmp(v->node, n->id) == 0)
			hf_strlist_push(out, v->key);
	}
}

/*
 * The spec's task of slot sl, when it can be launched (hf_orders_launch()
 * makes an order of it); *pod_out its pod. NULL otherwise.
 */
static const struct hf_spec_task *order_task(const struct hf_service *svc,
					     const struct hf_instance *in,
					     const struct hf_task_slot *sl,
					     const struct hf_spec_pod **pod_out)
{
	const struct hf_config *cfg = hf_model_config(svc, sl->cur->config_id);
	const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);
	const struct hf_spec_task *t =
	    pod ? hf_spec_find_task(pod, sl->task) : NULL;

	*pod_out = pod;
	return t && t->resource_set < pod->resource_sets.len ? t : NULL;
}

void hf_orders_desired(struct hf_srv *s, struct hf_node *n,
		       const struct hf_map *known,
		       struct hf_proto_sync_resp *out)
{
	uint64_t digest = volume_digest(s, n) + hf_orders_xvols(s, n, out);
	struct hf_node_insts scratch = {0};
	const struct hf_node_insts *l = hf_orders_node_insts(s, n, &scratch);

	/* After the attachments: it gives them their streams. */
	digest += hf_dr_orders(s, n, out);

	for (size_t i = 0; i < l->len; i++) {
		const struct hf_service *svc = l->items[i].svc;
		const struct hf_instance *in = l->items[i].in;

		for (size_t t = 0; t < in->slots.len; t++) {
			const struct hf_task_slot *sl = &in->slots.items[t];
			const struct hf_spec_pod *pod;
			struct hf_proto_launch *o;

			if (!desired_task(sl))
				continue;
			o = HF_VEC_PUSH(&out->tasks);
			hf_proto_launch_init(o);
			if (known && hf_map_get(known, sl->cur->id) &&
			    order_task(svc, in, sl, &pod)) {
				o->task_id = hf_xstrdup(sl->cur->id);
				o->known = true;
			} else if (!hf_orders_launch(s, svc, in, sl, o)) {
				hf_proto_launch_release(o);
				out->tasks.len--;
				continue;
			}
			digest += hf_hash_str(sl->cur->id);
		}
	}
	HF_VEC_FREE(&scratch);
	node_settle(s, n, digest);
}

void hf_orders_publish(struct hf_srv *s)
{
	struct hf_model *m = &s->model;

	for (size_t i = 0; i < m->nodes.len; i++) {
		struct hf_node *n = m->nodes.items[i];

		n->link->digest_scratch = 0;
		n->link->insts.len = 0;
	}
	for (size_t k = 0; k < m->volumes.len; k++) {
		const struct hf_volume *v = m->volumes.items[k];
		struct hf_node *n;

		if (v->state != HF_VOL_DELETING)
			continue;
		n = hf_model_node(m, v->node);
		if (n)
			n->link->digest_scratch += hf_hash_str(v->key) * 3;
	}
	for (size_t i = 0; i < m->services.len; i++) {
		struct hf_service *svc = m->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			struct hf_node *n = hf_model_node(m, in->node);
			struct hf_node_inst *ni;

			if (!n)
				continue;
			ni = HF_VEC_PUSH(&n->link->insts);
			ni->svc = svc;
			ni->in = in;
			for (size_t t = 0; t < in->slots.len; t++)
				if (desired_task(&in->slots.items[t]))
					n->link->digest_scratch += hf_hash_str(
					    in->slots.items[t].cur->id);
		}
	}
	xvols_digest(s);
	for (size_t i = 0; i < m->nodes.len; i++)
		m->nodes.items[i]->link->digest_scratch +=
		    hf_dr_orders(s, m->nodes.items[i], NULL);
	s->node_lists_valid = true;
	for (size_t i = 0; i < m->nodes.len; i++) {
		struct hf_node *n = m->nodes.items[i];

		if (node_settle(s, n, n->link->digest_scratch))
			hf_http_wake(s->http, &n->link->waitq);
	}
}

/* ------------------------------------------------------------------ */
/* Launch orders                                                        */

static void check_order(const struct hf_spec_check *c,
			struct hf_proto_check *o)
{
	o->kind = c->kind;
	if (c->kind == HF_CHECK_NONE)
		return;
	o->cmd = c->cmd ? hf_xstrdup(c->cmd) : NULL;
	o->port = c->port ? hf_xstrdup(c->port) : NULL;
	o->path = c->http_path ? hf_xstrdup(c->http_path) : NULL;
	o->interval = c->interval;
	o->delay = c->delay;
	o->timeout = c->timeout;
	o->grace_period = c->grace_period;
	o->max_consecutive_failures = c->max_consecutive_failures;
}

static void add_volumes(struct hf_proto_launch *o,
			const struct hf_service *svc,
			const struct hf_instance *in, const char *owner,
			const struct hf_spec_volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct hf_proto_volume *pv = HF_VEC_PUSH(&o->volumes);

		pv->key = hf_spec_volume_key(svc->name, in->name, owner, &v[i]);
		pv->path = hf_xstrdup(v[i].path);
		pv->type = hf_xstrdup(hf_volume_type_name(v[i].type));
		pv->size_mb = v[i].size_mb;
	}
}

/* A resource set's limit on the wire: a number, unlimited (< 0) or none. */
static double limit_order(double v)
{
	return v > 0 ? v : v < 0 ? HF_PROTO_LIMIT_UNLIMITED : HF_PROTO_LIMIT_NONE;
}

bool hf_orders_launch(struct hf_srv *s, const struct hf_service *svc,
		      const struct hf_instance *in,
		      const struct hf_task_slot *sl, struct hf_proto_launch *o)
{
	const struct hf_task_rec *r = sl->cur;
	const struct hf_config *cfg = hf_model_config(svc, r->config_id);
	const struct hf_spec_pod *pod;
	const struct hf_spec_task *t = order_task(svc, in, sl, &pod);
	const struct hf_spec_resource_set *rs;
	struct hf_kvlist *env = &o->env;
	char buf[32];

	if (!t)
		return false;
	rs = &pod->resource_sets.items[t->resource_set];
	snprintf(buf, sizeof(buf), "%lld", (long long)in->index);
	{
		char *tn = hf_xasprintf("%s-%s", in->name, t->name);

		hf_kvlist_set(env, "TASK_NAME", tn);
		free(tn);
	}
	hf_kvlist_set(env, "POD_INSTANCE_INDEX", buf);
	hf_kvlist_set(env, "FRAMEWORK_NAME", svc->name);
	hf_kvlist_set(env, "SERVICE_NAME", svc->name);
	hf_kvlist_set(env, "POD_NAME", in->name);
	{
		/* Tasks share their node's network, as on Mesos' host mode. */
		const struct hf_node *node =
		    in->node ? hf_model_node(&s->model, in->node) : NULL;

		hf_kvlist_set(env, "MESOS_CONTAINER_IP",
			      node && node->address ? node->address
						    : "127.0.0.1");
	}
	if (in->replaced_node) {
		hf_kvlist_set(env, "REPLACED_NODE", in->replaced_node);
		hf_kvlist_set(env, "REPLACED_ADDRESS",
			      in->replaced_address ? in->replaced_address : "");
		hf_kvlist_set(env, "REPLACED_INSTANCE", in->name);
	}
	for (size_t p = 0; p < rs->ports.len; p++) {
		const struct hf_spec_port *sp = &rs->ports.items[p];
		const char *num = hf_kvlist_get(&in->ports, sp->name);
		struct hf_proto_port *pp;
		char *key;

		if (!num)
			continue;
		key = hf_spec_port_env_key(sp);
		hf_kvlist_set(env, key, num);
		free(key);
		pp = HF_VEC_PUSH(&o->ports);
		pp->name = hf_xstrdup(sp->name);
		pp->number = atoll(num);
	}
	hf_spec_task_env(cfg->spec, pod, t, env);
	hf_kvlist_copy(env, &r->params);

	add_volumes(o, svc, in, "pod", pod->volumes.items, pod->volumes.len);
	add_volumes(o, svc, in, rs->name, rs->volumes.items, rs->volumes.len);
	for (size_t i = 0; i < pod->external_volumes.len; i++) {
		const struct hf_spec_external_volume *ev =
		    &pod->external_volumes.items[i];
		char *name = hf_spec_external_volume_name(svc->name, pod->name,
							  in->index, ev);
		const struct hf_xvol *v = name ? hf_model_xvol(&s->model, name)
					       : NULL;
		struct hf_proto_volume *pv = HF_VEC_PUSH(&o->volumes);

		/* The epoch it was attached at (decide waited for it). */
		pv->key = name;
		pv->path = hf_xstrdup(ev->container_path);
		pv->type = hf_xstrdup("EXTERNAL");
		pv->size_mb = ev->opts.size_bytes >> 20;
		pv->epoch = v ? (int64_t)v->epoch : 0;
		pv->ro = ev->volume_mode && strcmp(ev->volume_mode, "RO") == 0;
	}
	for (size_t i = 0; i < t->configs.len; i++) {
		const struct hf_spec_config *sc = &t->configs.items[i];
		struct hf_proto_config *pc = HF_VEC_PUSH(&o->configs);

		pc->name = hf_xstrdup(sc->name);
		pc->dest = hf_xstrdup(sc->dest);
		pc->tmpl = hf_xstrdup(sc->content ? sc->content : "");
		pc->tmpl_len = strlen(pc->tmpl);
	}
	for (size_t i = 0; i < pod->uris.len; i++)
		hf_strlist_push(&o->uris, pod->uris.items[i]);
	for (size_t i = 0; i < pod->rlimits.len; i++) {
		const struct hf_spec_rlimit *l = &pod->rlimits.items[i];
		struct hf_proto_rlimit *pr;

		if (!l->has_soft)
			continue;
		pr = HF_VEC_PUSH(&o->rlimits);
		pr->name = hf_xstrdup(l->name);
		pr->soft = l->soft;
		pr->hard = l->hard;
	}
	o->task_id = hf_xstrdup(r->id);
	o->service = hf_xstrdup(svc->name);
	o->pod = hf_xstrdup(in->pod);
	o->pod_instance = hf_xstrdup(in->name);
	o->index = in->index;
	o->task = hf_xstrdup(t->name);
	o->goal = hf_xstrdup(hf_goal_name(t->goal));
	o->config_id = hf_xstrdup(r->config_id);
	o->cmd = hf_xstrdup(t->cmd ? t->cmd : "true");
	o->cpus = rs->cpus;
	o->memory_mb = rs->memory_mb;
	o->limit_cpus = limit_order(rs->limit_cpus);
	o->limit_memory_mb = limit_order(rs->limit_memory_mb);
	o->kill_grace_period = (double)t->kill_grace_period;
	check_order(&t->health, &o->health);
	check_order(&t->readiness, &o->readiness);
	/* A pod's own user wins over the service's, as in the SDK. */
	if (pod->user)
		o->user = hf_xstrdup(pod->user);
	else if (cfg->spec->scheduler_user)
		o->user = hf_xstrdup(cfg->spec->scheduler_user);
	o->privileged = pod->capabilities.len == 1 &&
			strcmp(pod->capabilities.items[0], "ALL") == 0;
	for (size_t i = 0; !o->privileged && i < pod->capabilities.len; i++)
		hf_strlist_push(&o->capabilities, pod->capabilities.items[i]);
	o->paused = r->paused;
	/* What the node may restart in place, by the server's backoff. */
	{
		struct hf_decide_opts dopts = {
		    .backoff_base = s->opts.backoff_base,
		    .backoff_max = s->opts.backoff_max,
		    .backoff_reset = s->opts.backoff_reset,
		    .no_restart_in_place = s->opts.no_restart_in_place,
		};

		hf_decide_restart_policy(svc, in, sl, &dopts, &o->restart);
	}
	return true;
}
