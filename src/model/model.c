/*
 * model.c - names, lookups, creation and freeing of the cluster's records.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/model.h"

/* ------------------------------------------------------------------ */
/* Names                                                                */

static const char *const status_names[] = {
    [HF_STATUS_PENDING] = "PENDING",   [HF_STATUS_PREPARED] = "PREPARED",
    [HF_STATUS_STARTING] = "STARTING", [HF_STATUS_STARTED] = "STARTED",
    [HF_STATUS_COMPLETE] = "COMPLETE", [HF_STATUS_DELAYED] = "DELAYED",
    [HF_STATUS_WAITING] = "WAITING",   [HF_STATUS_ERROR] = "ERROR",
    [HF_STATUS_IN_PROGRESS] = "IN_PROGRESS",
};

const char *hf_status_name(enum hf_status s)
{
	if ((size_t)s < HF_ARRAY_LEN(status_names))
		return status_names[s];
	return "UNKNOWN";
}

bool hf_status_parse(const char *s, enum hf_status *out)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(status_names); i++) {
		if (strcmp(status_names[i], s) == 0) {
			*out = (enum hf_status)i;
			return true;
		}
	}
	return false;
}

const char *hf_volume_state_name(enum hf_volume_state s)
{
	switch (s) {
	case HF_VOL_IN_USE:
		return "in use";
	case HF_VOL_KEPT:
		return "kept";
	case HF_VOL_DELETING:
		return "deleting";
	}
	return "unknown";
}

/* ------------------------------------------------------------------ */
/* Lookups                                                              */

struct hf_service *hf_model_service(const struct hf_model *m, const char *name)
{
	return name ? hf_map_get(&m->service_index, name) : NULL;
}

struct hf_config *hf_model_config(const struct hf_service *svc, const char *id)
{
	for (size_t i = 0; id && i < svc->configs.len; i++)
		if (strcmp(svc->configs.items[i]->id, id) == 0)
			return svc->configs.items[i];
	return NULL;
}

struct hf_config *hf_model_target(const struct hf_service *svc)
{
	return hf_model_config(svc, svc->target);
}

struct hf_instance *hf_model_instance(const struct hf_service *svc,
				      const char *name)
{
	return name ? hf_map_get(&svc->instance_index, name) : NULL;
}

struct hf_task_slot *hf_model_slot_find(const struct hf_instance *in,
					const char *task)
{
	for (size_t i = 0; i < in->slots.len; i++)
		if (strcmp(in->slots.items[i].task, task) == 0)
			return &in->slots.items[i];
	return NULL;
}

struct hf_node *hf_model_node(const struct hf_model *m, const char *id)
{
	return id ? hf_map_get(&m->node_index, id) : NULL;
}

struct hf_plan_run *hf_model_run(const struct hf_service *svc,
				 const char *plan)
{
	for (size_t i = 0; i < svc->runs.len; i++)
		if (strcmp(svc->runs.items[i].plan, plan) == 0)
			return &svc->runs.items[i];
	return NULL;
}

const struct hf_spec_pod *hf_model_pod(const struct hf_config *cfg,
				       const char *pod)
{
	return cfg && cfg->spec ? hf_spec_find_pod(cfg->spec, pod) : NULL;
}

bool hf_model_instance_has_volumes(const struct hf_service *svc,
				   const struct hf_instance *in)
{
	const struct hf_spec_pod *pod = hf_model_pod(hf_model_target(svc),
						     in->pod);

	for (size_t i = svc->configs.len; !pod && i-- > 0;)
		pod = hf_model_pod(svc->configs.items[i], in->pod);
	/* A pod no config knows any more: keep what may be there. */
	if (!pod)
		return true;
	if (pod->volumes.len)
		return true;
	for (size_t i = 0; i < pod->resource_sets.len; i++)
		if (pod->resource_sets.items[i].volumes.len)
			return true;
	return false;
}

struct hf_task_rec *hf_model_find_task(const struct hf_model *m,
				       const char *id,
				       struct hf_service **svc_out,
				       struct hf_instance **in_out,
				       struct hf_task_slot **slot_out)
{
	/*
	 * An id is "<pod>-<index>-<task>__<uuid>": every "-<digits>-" in it
	 * may end the instance's name (pod and task names may hold dashes
	 * and digits), so each such prefix is looked up; the slot's current
	 * id must then match exactly.
	 */
	const char *end = strstr(id, "__");

	if (!end)
		return NULL;
	for (const char *p = id; p < end; p++) {
		const char *q = p + 1;
		char *name;

		if (*p != '-' || !(*q >= '0' && *q <= '9'))
			continue;
		while (q < end && *q >= '0' && *q <= '9')
			q++;
		if (q >= end || *q != '-')
			continue;
		name = hf_xstrndup(id, (size_t)(q - id));
		for (size_t i = 0; i < m->services.len; i++) {
			struct hf_service *svc = m->services.items[i];
			struct hf_instance *in = hf_model_instance(svc, name);

			for (size_t t = 0; in && t < in->slots.len; t++) {
				struct hf_task_slot *sl = &in->slots.items[t];

				if (sl->cur && strcmp(sl->cur->id, id) == 0) {
					if (svc_out)
						*svc_out = svc;
					if (in_out)
						*in_out = in;
					if (slot_out)
						*slot_out = sl;
					free(name);
					return sl->cur;
				}
			}
		}
		free(name);
	}
	return NULL;
}

bool hf_model_node_reachable(const struct hf_node *n, int64_t now,
			     int64_t timeout_ms)
{
	return n && now - n->last_seen <= timeout_ms;
}

char *hf_model_instance_name(const char *pod, int64_t index)
{
	return hf_xasprintf("%s-%lld", pod, (long long)index);
}

void hf_model_node_insts(const struct hf_model *m, const char *id,
			 struct hf_node_insts *out)
{
	for (size_t i = 0; i < m->services.len; i++) {
		struct hf_service *svc = m->services.items[i];

		for (size_t k = 0; k < svc->instances.len; k++) {
			struct hf_instance *in = svc->instances.items[k];
			struct hf_node_inst *ni;

			if (!in->node || strcmp(in->node, id) != 0)
				continue;
			ni = HF_VEC_PUSH(out);
			ni->svc = svc;
			ni->in = in;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Volumes                                                              */

char *hf_model_volume_key(const char *svc, const char *instance)
{
	char *s = hf_name_escape(svc), *i = hf_name_escape(instance);
	char *key = hf_xasprintf("%s/%s", s, i);

	free(s);
	free(i);
	return key;
}

bool hf_model_volume_of(const char *key, const char *svc,
			const char *instance)
{
	char *esvc = hf_name_escape(svc);
	char *einst = instance ? hf_name_escape(instance) : NULL;
	size_t n = strlen(esvc);
	bool yes = strncmp(key, esvc, n) == 0 && key[n] == '/' &&
		   (!einst || strcmp(key + n + 1, einst) == 0);

	free(esvc);
	free(einst);
	return yes;
}

struct hf_volume *hf_model_volume_find(const struct hf_model *m,
				       const char *key, const char *node,
				       enum hf_volume_state state)
{
	for (struct hf_volume *v = hf_map_get(&m->volume_index, key); v;
	     v = v->next_same_key)
		if (v->state == state && strcmp(v->node, node) == 0)
			return v;
	return NULL;
}

struct hf_volume *hf_model_volumes_of_key(const struct hf_model *m,
					  const char *key)
{
	return hf_map_get(&m->volume_index, key);
}

struct hf_volume *hf_model_volume_add(struct hf_model *m, const char *key,
				      const char *node,
				      enum hf_volume_state state)
{
	struct hf_volume *v = hf_xcalloc(1, sizeof(*v));
	const char *slash = strchr(key, '/');

	v->key = hf_xstrdup(key);
	v->node = hf_xstrdup(node);
	v->state = state;
	v->kind = HF_VOLUME_ROOT;
	v->service = hf_name_unescape(key, slash ? (size_t)(slash - key) : 0);
	v->instance = slash ? hf_name_unescape(slash + 1, strlen(slash + 1))
			    : hf_xstrdup("");
	v->next_same_key = hf_map_get(&m->volume_index, key);
	hf_map_put(&m->volume_index, v->key, v);
	*HF_VEC_PUSH(&m->volumes) = v;
	return v;
}

void hf_model_volume_describe(struct hf_volume *v,
			      const struct hf_spec_pod *pod)
{
	const struct hf_spec_volume *vols;
	size_t n;

	if (!pod)
		return;
	v->size_mb = 0;
	v->kind = HF_VOLUME_ROOT;
	for (size_t r = 0; r <= pod->resource_sets.len; r++) {
		if (r == pod->resource_sets.len) {
			vols = pod->volumes.items;
			n = pod->volumes.len;
		} else {
			vols = pod->resource_sets.items[r].volumes.items;
			n = pod->resource_sets.items[r].volumes.len;
		}
		for (size_t i = 0; i < n; i++) {
			v->size_mb += vols[i].size_mb;
			if (vols[i].type == HF_VOLUME_MOUNT)
				v->kind = HF_VOLUME_MOUNT;
		}
	}
}

static void volume_free(struct hf_volume *v)
{
	free(v->key);
	free(v->service);
	free(v->instance);
	free(v->node);
	free(v->why);
	free(v);
}

void hf_model_volume_remove(struct hf_model *m, struct hf_volume *v)
{
	struct hf_volume *head = hf_map_get(&m->volume_index, v->key);

	if (head == v) {
		if (v->next_same_key)
			hf_map_put(&m->volume_index, v->next_same_key->key,
				   v->next_same_key);
		else
			hf_map_del(&m->volume_index, v->key);
	} else {
		for (struct hf_volume *p = head; p; p = p->next_same_key)
			if (p->next_same_key == v) {
				p->next_same_key = v->next_same_key;
				break;
			}
	}
	for (size_t i = 0; i < m->volumes.len; i++) {
		if (m->volumes.items[i] == v) {
			memmove(&m->volumes.items[i], &m->volumes.items[i + 1],
				(m->volumes.len - i - 1) *
				    sizeof(m->volumes.items[0]));
			m->volumes.len--;
			break;
		}
	}
	volume_free(v);
}

/* ------------------------------------------------------------------ */
/* Replicated volumes                                                   */

static const char *const xvol_state_names[] = {
    [HF_XVOL_ACTIVE] = "active",
    [HF_XVOL_KEPT] = "kept",
    [HF_XVOL_DELETING] = "deleting",
};

static const char *const xrep_state_names[] = {
    [HF_XREP_NEW] = "new",		 [HF_XREP_IN_SYNC] = "in_sync",
    [HF_XREP_RESYNCING] = "resyncing", [HF_XREP_DOWN] = "down",
    [HF_XREP_STALE] = "stale",		 [HF_XREP_DELETING] = "deleting",
};

/* The index of s in names, or -1 (s may be NULL). */
static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

const char *hf_xvol_state_name(enum hf_xvol_state s)
{
	if ((size_t)s < HF_ARRAY_LEN(xvol_state_names))
		return xvol_state_names[s];
	return "unknown";
}

bool hf_xvol_state_parse(const char *s, enum hf_xvol_state *out)
{
	int i = name_index(xvol_state_names, HF_ARRAY_LEN(xvol_state_names), s);

	if (i < 0)
		return false;
	*out = (enum hf_xvol_state)i;
	return true;
}

const char *hf_xrep_state_name(enum hf_xrep_state s)
{
	if ((size_t)s < HF_ARRAY_LEN(xrep_state_names))
		return xrep_state_names[s];
	return "unknown";
}

bool hf_xrep_state_parse(const char *s, enum hf_xrep_state *out)
{
	int i = name_index(xrep_state_names, HF_ARRAY_LEN(xrep_state_names), s);

	if (i < 0)
		return false;
	*out = (enum hf_xrep_state)i;
	return true;
}

static const char *const xsnap_state_names[] = {"taking", "ready", "failed",
						"deleting"};

const char *hf_xsnap_state_name(enum hf_xsnap_state s)
{
	if ((size_t)s < HF_ARRAY_LEN(xsnap_state_names))
		return xsnap_state_names[s];
	return "unknown";
}

bool hf_xsnap_state_parse(const char *s, enum hf_xsnap_state *out)
{
	int i = name_index(xsnap_state_names, HF_ARRAY_LEN(xsnap_state_names),
			   s);

	if (i < 0)
		return false;
	*out = (enum hf_xsnap_state)i;
	return true;
}

struct hf_xsnap *hf_xvol_snap(const struct hf_xvol *v, const char *key,
			      bool by_id)
{
	for (size_t i = 0; key && i < v->snaps.len; i++) {
		struct hf_xsnap *s = &v->snaps.items[i];

		if (strcmp(by_id ? s->id : s->name, key) == 0)
			return s;
	}
	return NULL;
}

struct hf_xsnap *hf_xvol_snap_add(struct hf_xvol *v, const char *id,
				  const char *name, int64_t created)
{
	struct hf_xsnap *s = HF_VEC_PUSH(&v->snaps);

	memset(s, 0, sizeof(*s));
	s->id = hf_xstrdup(id);
	s->name = hf_xstrdup(name);
	s->created = created;
	return s;
}

static void xsnap_release(struct hf_xsnap *s)
{
	free(s->id);
	free(s->name);
	free(s->why);
	hf_strlist_release(&s->replicas);
}

void hf_xvol_snap_remove(struct hf_xvol *v, struct hf_xsnap *s)
{
	size_t i = (size_t)(s - v->snaps.items);

	if (i >= v->snaps.len)
		return;
	xsnap_release(s);
	memmove(&v->snaps.items[i], &v->snaps.items[i + 1],
		(v->snaps.len - i - 1) * sizeof(v->snaps.items[0]));
	v->snaps.len--;
}

bool hf_xsnap_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789-_.") == n;
}

bool hf_xvol_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > HF_XVOL_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

struct hf_xvol *hf_model_xvol(const struct hf_model *m, const char *name)
{
	return name ? hf_map_get(&m->xvol_index, name) : NULL;
}

void hf_model_xvols_of_instance(const struct hf_model *m, const char *svc,
				const char *instance, struct hf_xvols *out)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		struct hf_xvol *v = m->xvols.items[i];

		if (v->service && v->instance && strcmp(v->service, svc) == 0 &&
		    strcmp(v->instance, instance) == 0)
			*HF_VEC_PUSH(out) = v;
	}
}

void hf_model_node_replicas(const struct hf_model *m, const char *node,
			    struct hf_xrep_refs *out)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		struct hf_xvol *v = m->xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++) {
			struct hf_xrep *r = &v->replicas.items[k];
			struct hf_xrep_ref *ref;

			if (strcmp(r->node, node) != 0)
				continue;
			ref = HF_VEC_PUSH(out);
			ref->vol = v;
			ref->rep = r;
		}
	}
}

struct hf_xrep *hf_xvol_replica(const struct hf_xvol *v, const char *id)
{
	for (size_t i = 0; id && i < v->replicas.len; i++)
		if (strcmp(v->replicas.items[i].id, id) == 0)
			return &v->replicas.items[i];
	return NULL;
}

struct hf_xrep *hf_xvol_replica_on(const struct hf_xvol *v, const char *node)
{
	for (size_t i = 0; node && i < v->replicas.len; i++) {
		struct hf_xrep *r = &v->replicas.items[i];

		if (r->state != HF_XREP_DELETING && strcmp(r->node, node) == 0)
			return r;
	}
	return NULL;
}

unsigned hf_xvol_in_sync(const struct hf_xvol *v)
{
	unsigned n = 0;

	for (size_t i = 0; i < v->replicas.len; i++)
		n += v->replicas.items[i].state == HF_XREP_IN_SYNC;
	return n;
}

struct hf_xrep *hf_xvol_replica_add(struct hf_xvol *v, const char *node,
				    const char *id, int64_t since)
{
	struct hf_xrep *r = HF_VEC_PUSH(&v->replicas);

	r->node = hf_xstrdup(node);
	r->id = hf_xstrdup(id);
	r->state = HF_XREP_NEW;
	r->since = since;
	return r;
}

static void xrep_release(struct hf_xrep *r)
{
	free(r->node);
	r->node = NULL;
	free(r->id);
	r->id = NULL;
	free(r->why);
	r->why = NULL;
	free(r->clone);
	r->clone = NULL;
}

void hf_xvol_replica_remove(struct hf_xvol *v, struct hf_xrep *r)
{
	size_t i = (size_t)(r - v->replicas.items);

	if (i >= v->replicas.len)
		return;
	xrep_release(r);
	memmove(&v->replicas.items[i], &v->replicas.items[i + 1],
		(v->replicas.len - i - 1) * sizeof(v->replicas.items[0]));
	v->replicas.len--;
}

struct hf_xvol *hf_model_xvol_add(struct hf_model *m, const char *name)
{
	struct hf_xvol *v = hf_xcalloc(1, sizeof(*v));

	v->name = hf_xstrdup(name);
	v->state = HF_XVOL_ACTIVE;
	*HF_VEC_PUSH(&m->xvols) = v;
	hf_map_put(&m->xvol_index, v->name, v);
	return v;
}

void hf_xvol_free(struct hf_xvol *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->id);
	free(v->service);
	free(v->instance);
	free(v->attached);
	/* The key is not left behind in freed memory for a heap dump. */
	if (v->secret)
		explicit_bzero(v->secret, strlen(v->secret));
	free(v->secret);
	free(v->data_key);
	free(v->key_name);
	for (size_t i = 0; i < v->replicas.len; i++)
		xrep_release(&v->replicas.items[i]);
	HF_VEC_FREE(&v->replicas);
	for (size_t i = 0; i < v->snaps.len; i++)
		xsnap_release(&v->snaps.items[i]);
	HF_VEC_FREE(&v->snaps);
	free(v->restore);
	free(v->bk_last);
	free(v->bk_to);
	free(v->bk_snap);
	hf_xbk_run_release(&v->bk_run);
	hf_xbk_sched_release(&v->bk_sched);
	free(v->rs_cred);
	free(v->rs_url);
	free(v->rs_volume);
	free(v->rs_backup);
	free(v);
}

void hf_xbk_run_release(struct hf_xbk_run *r)
{
	free(r->id);
	free(r->snap);
	free(r->to);
	free(r->cred);
	free(r->node);
	memset(r, 0, sizeof(*r));
}

void hf_xbk_sched_release(struct hf_xbk_sched *sc)
{
	free(sc->to);
	free(sc->cred);
	memset(sc, 0, sizeof(*sc));
}

void hf_model_xvol_remove(struct hf_model *m, struct hf_xvol *v)
{
	for (size_t i = 0; i < m->xvols.len; i++) {
		if (m->xvols.items[i] == v) {
			memmove(&m->xvols.items[i], &m->xvols.items[i + 1],
				(m->xvols.len - i - 1) *
				    sizeof(m->xvols.items[0]));
			m->xvols.len--;
			break;
		}
	}
	if (hf_map_get(&m->xvol_index, v->name) == v)
		hf_map_del(&m->xvol_index, v->name);
	hf_xvol_free(v);
}

/* ------------------------------------------------------------------ */
/* Creation                                                             */

struct hf_service *hf_model_service_add(struct hf_model *m, const char *name)
{
	struct hf_service *svc = hf_xcalloc(1, sizeof(*svc));

	svc->name = hf_xstrdup(name);
	hf_model_service_insert(m, svc);
	return svc;
}

void hf_model_service_insert(struct hf_model *m, struct hf_service *svc)
{
	*HF_VEC_PUSH(&m->services) = svc;
	hf_map_put(&m->service_index, svc->name, svc);
}

struct hf_instance *hf_model_instance_add(struct hf_service *svc,
					  const char *pod, int64_t index)
{
	struct hf_instance *in = hf_xcalloc(1, sizeof(*in));

	in->name = hf_model_instance_name(pod, index);
	in->pod = hf_xstrdup(pod);
	in->index = index;
	*HF_VEC_PUSH(&svc->instances) = in;
	hf_map_put(&svc->instance_index, in->name, in);
	return in;
}

struct hf_task_slot *hf_model_slot(struct hf_instance *in, const char *task)
{
	struct hf_task_slot *sl = hf_model_slot_find(in, task);

	if (sl)
		return sl;
	sl = HF_VEC_PUSH(&in->slots);
	sl->task = hf_xstrdup(task);
	return sl;
}

void hf_model_node_add(struct hf_model *m, struct hf_node *n)
{
	n->idx = m->nodes.len;
	*HF_VEC_PUSH(&m->nodes) = n;
	hf_map_put(&m->node_index, n->id, n);
}

/* ------------------------------------------------------------------ */
/* Removal and freeing                                                  */

void hf_task_rec_free(struct hf_task_rec *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->config_id);
	free(r->run);
	free(r->message);
	free(r->not_ready);
	hf_kvlist_release(&r->params);
	free(r);
}

void hf_model_instance_free(struct hf_instance *in)
{
	if (!in)
		return;
	free(in->name);
	free(in->pod);
	free(in->node);
	free(in->message);
	free(in->replaced_node);
	free(in->replaced_address);
	hf_kvlist_release(&in->ports);
	for (size_t i = 0; i < in->slots.len; i++) {
		free(in->slots.items[i].task);
		hf_task_rec_free(in->slots.items[i].cur);
	}
	HF_VEC_FREE(&in->slots);
	free(in);
}

void hf_model_instance_remove(struct hf_service *svc, struct hf_instance *in)
{
	for (size_t i = 0; i < svc->instances.len; i++) {
		if (svc->instances.items[i] == in) {
			memmove(&svc->instances.items[i],
				&svc->instances.items[i + 1],
				(svc->instances.len - i - 1) *
				    sizeof(svc->instances.items[0]));
			svc->instances.len--;
			break;
		}
	}
	hf_map_del(&svc->instance_index, in->name);
	hf_model_instance_free(in);
}

void hf_plan_run_release(struct hf_plan_run *r)
{
	free(r->plan);
	free(r->config_id);
	hf_strlist_release(&r->completed);
	hf_strlist_release(&r->force_complete);
	hf_strlist_release(&r->interrupted_phases);
	hf_kvlist_release(&r->continues);
	hf_kvlist_release(&r->params);
	hf_kvlist_release(&r->step_started);
	hf_kvlist_release(&r->waits);
}

void hf_model_config_free(struct hf_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->id);
	free(cfg->text);
	free(cfg->file);
	free(cfg->name);
	free(cfg->load_error);
	hf_kvlist_release(&cfg->options);
	hf_kvlist_release(&cfg->templates);
	hf_kvlist_release(&cfg->counts);
	hf_kvlist_release(&cfg->fingerprints);
	hf_spec_free(cfg->spec);
	hf_plan_defs_release(&cfg->plans);
	free(cfg);
}

void hf_model_service_free(struct hf_service *svc)
{
	if (!svc)
		return;
	free(svc->name);
	free(svc->target);
	free(svc->previous);
	for (size_t i = 0; i < svc->configs.len; i++)
		hf_model_config_free(svc->configs.items[i]);
	HF_VEC_FREE(&svc->configs);
	for (size_t i = 0; i < svc->instances.len; i++)
		hf_model_instance_free(svc->instances.items[i]);
	HF_VEC_FREE(&svc->instances);
	hf_map_release(&svc->instance_index);
	for (size_t i = 0; i < svc->runs.len; i++)
		hf_plan_run_release(&svc->runs.items[i]);
	HF_VEC_FREE(&svc->runs);
	free(svc);
}

void hf_model_service_remove(struct hf_model *m, struct hf_service *svc)
{
	/* The last service takes its place, as the scheduler's loop expects. */
	for (size_t i = 0; i < m->services.len; i++) {
		if (m->services.items[i] == svc) {
			m->services.items[i] =
			    m->services.items[--m->services.len];
			break;
		}
	}
	hf_map_del(&m->service_index, svc->name);
	hf_model_service_free(svc);
}

void hf_model_node_storage_free(struct hf_node_storage *st)
{
	if (!st)
		return;
	free(st->pool);
	for (size_t i = 0; i < st->marks.len; i++)
		free(st->marks.items[i].replica);
	HF_VEC_FREE(&st->marks);
	free(st);
}

void hf_model_node_volreps_clear(struct hf_node *n)
{
	for (size_t i = 0; i < n->volreps.len; i++) {
		struct hf_node_volrep *r = &n->volreps.items[i];

		free(r->volume);
		free(r->failed);
		free(r->note);
		for (size_t k = 0; k < r->missed.len; k++)
			free(r->missed.items[k].replica);
		HF_VEC_FREE(&r->missed);
		free(r->dr.state);
		free(r->dr.message);
	}
	n->volreps.len = 0;
}

const struct hf_node_volrep *hf_model_node_volrep(const struct hf_node *n,
						  const char *volume)
{
	for (size_t i = 0; n && i < n->volreps.len; i++)
		if (strcmp(n->volreps.items[i].volume, volume) == 0)
			return &n->volreps.items[i];
	return NULL;
}

void hf_model_node_free(struct hf_node *n)
{
	if (!n)
		return;
	free(n->id);
	free(n->hostname);
	free(n->address);
	free(n->cgroups);
	hf_kvlist_release(&n->attributes);
	hf_model_node_storage_free(n->storage);
	hf_model_node_volreps_clear(n);
	HF_VEC_FREE(&n->volreps);
	for (size_t i = 0; i < n->fills.len; i++)
		free(n->fills.items[i].replica);
	HF_VEC_FREE(&n->fills);
	free(n);
}

void hf_model_release(struct hf_model *m)
{
	for (size_t i = 0; i < m->services.len; i++)
		hf_model_service_free(m->services.items[i]);
	HF_VEC_FREE(&m->services);
	hf_map_release(&m->service_index);
	for (size_t i = 0; i < m->nodes.len; i++)
		hf_model_node_free(m->nodes.items[i]);
	HF_VEC_FREE(&m->nodes);
	hf_map_release(&m->node_index);
	for (size_t i = 0; i < m->volumes.len; i++)
		volume_free(m->volumes.items[i]);
	HF_VEC_FREE(&m->volumes);
	hf_map_release(&m->volume_index);
	for (size_t i = 0; i < m->xvols.len; i++)
		hf_xvol_free(m->xvols.items[i]);
	HF_VEC_FREE(&m->xvols);
	hf_map_release(&m->xvol_index);
}

/* ------------------------------------------------------------------ */
/* Configs                                                              */

int hf_model_config_load(struct hf_config *cfg, bool stored,
			 struct hf_diags *diags)
{
	struct hf_spec_load_opts lo = {
	    .options = &cfg->options,
	    .template_files = &cfg->templates,
	    .stored = stored,
	    .counts = &cfg->counts,
	    .name = cfg->name,
	};
	int rc;

	rc = hf_spec_load_string(cfg->text, strlen(cfg->text), cfg->file, &lo,
				 &cfg->spec, diags);
	if (rc)
		return rc;
	hf_spec_build_plans(cfg->spec, &cfg->plans);
	for (size_t i = 0; i < cfg->spec->pods.len; i++) {
		const struct hf_spec_pod *pod = &cfg->spec->pods.items[i];
		json_t *j = hf_spec_pod_to_json(cfg->spec, pod, true);
		char *fp = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

		hf_kvlist_set(&cfg->fingerprints, pod->name, fp ? fp : "");
		free(fp);
		json_decref(j);
	}
	return 0;
}
