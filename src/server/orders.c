/*
 * orders.c - what the server tells agents and what it hears back
 * (docs/protocol.md): each node's desired set of launch orders with the
 * volumes its agent is to delete, published under a generation, and the
 * task reports of a sync decoded for the scheduler's rules. The one place
 * that writes or reads these messages on the server.
 */
#include <stdlib.h>
#include <string.h>

#include "server/orders.h"

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

json_t *hf_orders_volume_deletions(struct hf_srv *s, const struct hf_node *n)
{
	json_t *a = json_array();

	for (size_t k = 0; k < s->model.volumes.len; k++) {
		const struct hf_volume *v = s->model.volumes.items[k];

		if (v->state == HF_VOL_DELETING && strcmp(v->node, n->id) == 0)
			json_array_append_new(a, json_string(v->key));
	}
	return a;
}

json_t *hf_orders_desired(struct hf_srv *s, struct hf_node *n)
{
	json_t *a = json_array();
	uint64_t digest = volume_digest(s, n);
	struct hf_node_insts scratch = {0};
	const struct hf_node_insts *l = hf_orders_node_insts(s, n, &scratch);

	for (size_t i = 0; i < l->len; i++) {
		const struct hf_service *svc = l->items[i].svc;
		const struct hf_instance *in = l->items[i].in;

		for (size_t t = 0; t < in->slots.len; t++) {
			const struct hf_task_slot *sl = &in->slots.items[t];
			json_t *o;

			if (!desired_task(sl))
				continue;
			o = hf_orders_launch(s, svc, in, sl);
			if (!o)
				continue;
			json_array_append_new(a, o);
			digest += hf_hash_str(sl->cur->id);
		}
	}
	HF_VEC_FREE(&scratch);
	node_settle(s, n, digest);
	return a;
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
	s->node_lists_valid = true;
	for (size_t i = 0; i < m->nodes.len; i++) {
		struct hf_node *n = m->nodes.items[i];

		if (node_settle(s, n, n->link->digest_scratch))
			hf_http_wake(s->http, &n->link->waitq);
	}
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

void hf_orders_report(const json_t *t, struct hf_task_report *out)
{
	const char *st = json_string_value(json_object_get(t, "state"));
	json_t *code = json_object_get(t, "exit_code");
	json_t *sig = json_object_get(t, "signal");
	json_t *h = json_object_get(t, "healthy");

	memset(out, 0, sizeof(*out));
	out->task_id = json_string_value(json_object_get(t, "task_id"));
	if (!st)
		out->state = HF_REPORT_NONE;
	else if (strcmp(st, "starting") == 0)
		out->state = HF_REPORT_STARTING;
	else if (strcmp(st, "running") == 0)
		out->state = HF_REPORT_RUNNING;
	else if (strcmp(st, "exited") == 0)
		out->state = HF_REPORT_EXITED;
	else if (strcmp(st, "killed") == 0)
		out->state = HF_REPORT_KILLED;
	else if (strcmp(st, "failed-to-start") == 0)
		out->state = HF_REPORT_FAILED_TO_START;
	else
		out->state = HF_REPORT_NONE;
	out->has_exit_code = json_is_integer(code);
	out->exit_code = out->has_exit_code ? (int)json_integer_value(code) : -1;
	out->has_signal = json_is_integer(sig);
	out->signal = out->has_signal ? (int)json_integer_value(sig) : 0;
	out->oom_killed = json_is_true(json_object_get(t, "oom_killed"));
	out->permanent = json_is_true(json_object_get(t, "permanent"));
	out->message = json_string_value(json_object_get(t, "message"));
	out->ready = json_is_true(json_object_get(t, "ready"));
	out->healthy = json_is_boolean(h) ? json_is_true(h) : -1;
	out->not_ready = json_string_value(json_object_get(t, "not_ready"));
}

/* ------------------------------------------------------------------ */
/* Launch orders                                                        */

static json_t *check_order(const struct hf_spec_check *c)
{
	json_t *o;

	if (c->kind == HF_CHECK_NONE)
		return json_null();
	o = json_object();
	json_object_set_new(o, "kind",
			    json_string(c->kind == HF_CHECK_CMD    ? "cmd"
					: c->kind == HF_CHECK_HTTP ? "http"
								   : "tcp"));
	if (c->cmd)
		json_object_set_new(o, "cmd", json_string(c->cmd));
	if (c->port)
		json_object_set_new(o, "port", json_string(c->port));
	if (c->http_path)
		json_object_set_new(o, "path", json_string(c->http_path));
	json_object_set_new(o, "interval", json_real(c->interval));
	json_object_set_new(o, "delay", json_real(c->delay));
	json_object_set_new(o, "timeout", json_real(c->timeout));
	json_object_set_new(o, "grace_period", json_real(c->grace_period));
	json_object_set_new(o, "max_consecutive_failures",
			    json_integer(c->max_consecutive_failures));
	return o;
}

static void add_volumes(json_t *arr, const struct hf_service *svc,
			const struct hf_instance *in, const char *owner,
			const struct hf_spec_volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *key = hf_spec_volume_key(svc->name, in->name, owner, &v[i]);

		json_array_append_new(
		    arr, json_pack("{s:s, s:s, s:s, s:I}", "key", key, "path",
				   v[i].path, "type",
				   hf_volume_type_name(v[i].type), "size_mb",
				   (json_int_t)v[i].size_mb));
		free(key);
	}
}

json_t *hf_orders_launch(struct hf_srv *s, const struct hf_service *svc,
			 const struct hf_instance *in,
			 const struct hf_task_slot *sl)
{
	const struct hf_task_rec *r = sl->cur;
	const struct hf_config *cfg = hf_model_config(svc, r->config_id);
	const struct hf_spec_pod *pod = hf_model_pod(cfg, in->pod);
	const struct hf_spec_task *t =
	    pod ? hf_spec_find_task(pod, sl->task) : NULL;
	const struct hf_spec_resource_set *rs;
	struct hf_kvlist env = {0};
	json_t *o, *env_j, *ports_j, *vols, *cfgs, *uris, *rl;
	char buf[32];

	if (!t || t->resource_set >= pod->resource_sets.len)
		return NULL;
	rs = &pod->resource_sets.items[t->resource_set];
	snprintf(buf, sizeof(buf), "%lld", (long long)in->index);
	{
		char *tn = hf_xasprintf("%s-%s", in->name, t->name);

		hf_kvlist_set(&env, "TASK_NAME", tn);
		free(tn);
	}
	hf_kvlist_set(&env, "POD_INSTANCE_INDEX", buf);
	hf_kvlist_set(&env, "FRAMEWORK_NAME", svc->name);
	hf_kvlist_set(&env, "SERVICE_NAME", svc->name);
	hf_kvlist_set(&env, "POD_NAME", in->name);
	{
		/* Tasks share their node's network, as on Mesos' host mode. */
		const struct hf_node *node =
		    in->node ? hf_model_node(&s->model, in->node) : NULL;

		hf_kvlist_set(&env, "MESOS_CONTAINER_IP",
			      node && node->address ? node->address
						    : "127.0.0.1");
	}
	if (in->replaced_node) {
		hf_kvlist_set(&env, "REPLACED_NODE", in->replaced_node);
		hf_kvlist_set(&env, "REPLACED_ADDRESS",
			      in->replaced_address ? in->replaced_address : "");
		hf_kvlist_set(&env, "REPLACED_INSTANCE", in->name);
	}
	ports_j = json_object();
	for (size_t p = 0; p < rs->ports.len; p++) {
		const struct hf_spec_port *sp = &rs->ports.items[p];
		const char *num = hf_kvlist_get(&in->ports, sp->name);
		char *key;

		if (!num)
			continue;
		key = hf_spec_port_env_key(sp);
		hf_kvlist_set(&env, key, num);
		free(key);
		json_object_set_new(ports_j, sp->name,
				    json_integer(atoll(num)));
	}
	hf_spec_task_env(cfg->spec, pod, t, &env);
	hf_kvlist_copy(&env, &r->params);
	env_j = json_object();
	for (size_t i = 0; i < env.len; i++)
		json_object_set_new(env_j, env.items[i].key,
				    json_string(env.items[i].value));
	hf_kvlist_release(&env);

	vols = json_array();
	add_volumes(vols, svc, in, "pod", pod->volumes.items, pod->volumes.len);
	add_volumes(vols, svc, in, rs->name, rs->volumes.items,
		    rs->volumes.len);
	cfgs = json_array();
	for (size_t i = 0; i < t->configs.len; i++)
		json_array_append_new(
		    cfgs, json_pack("{s:s, s:s, s:s}", "name",
				    t->configs.items[i].name, "dest",
				    t->configs.items[i].dest, "template",
				    t->configs.items[i].content
					? t->configs.items[i].content
					: ""));
	uris = json_array();
	for (size_t i = 0; i < pod->uris.len; i++)
		json_array_append_new(uris, json_string(pod->uris.items[i]));
	rl = json_array();
	for (size_t i = 0; i < pod->rlimits.len; i++) {
		const struct hf_spec_rlimit *l = &pod->rlimits.items[i];

		if (!l->has_soft)
			continue;
		json_array_append_new(rl, json_pack("{s:s, s:I, s:I}", "name",
						    l->name, "soft",
						    (json_int_t)l->soft, "hard",
						    (json_int_t)l->hard));
	}
	o = json_object();
	json_object_set_new(o, "task_id", json_string(r->id));
	json_object_set_new(o, "service", json_string(svc->name));
	json_object_set_new(o, "pod", json_string(in->pod));
	json_object_set_new(o, "pod_instance", json_string(in->name));
	json_object_set_new(o, "index", json_integer(in->index));
	json_object_set_new(o, "task", json_string(t->name));
	json_object_set_new(o, "goal", json_string(hf_goal_name(t->goal)));
	json_object_set_new(o, "config_id", json_string(r->config_id));
	json_object_set_new(o, "cmd", json_string(t->cmd ? t->cmd : "true"));
	json_object_set_new(o, "env", env_j);
	json_object_set_new(o, "cpus", json_real(rs->cpus));
	json_object_set_new(o, "memory_mb", json_real(rs->memory_mb));
	json_object_set_new(o, "limit_cpus",
			    rs->limit_cpus > 0 ? json_real(rs->limit_cpus)
			    : rs->limit_cpus < 0 ? json_string("unlimited")
						 : json_null());
	json_object_set_new(o, "limit_memory_mb",
			    rs->limit_memory_mb > 0
				? json_real(rs->limit_memory_mb)
			    : rs->limit_memory_mb < 0 ? json_string("unlimited")
						      : json_null());
	json_object_set_new(o, "rlimits", rl);
	json_object_set_new(o, "kill_grace_period",
			    json_integer(t->kill_grace_period));
	json_object_set_new(o, "ports", ports_j);
	json_object_set_new(o, "volumes", vols);
	json_object_set_new(o, "configs", cfgs);
	json_object_set_new(o, "uris", uris);
	json_object_set_new(o, "health_check", check_order(&t->health));
	json_object_set_new(o, "readiness_check", check_order(&t->readiness));
	/* A pod's own user wins over the service's, as in the SDK. */
	json_object_set_new(o, "user",
			    pod->user ? json_string(pod->user)
			    : cfg->spec->scheduler_user
				? json_string(cfg->spec->scheduler_user)
				: json_null());
	{
		bool all = pod->capabilities.len == 1 &&
			   strcmp(pod->capabilities.items[0], "ALL") == 0;
		json_t *caps = json_array();

		for (size_t i = 0; !all && i < pod->capabilities.len; i++)
			json_array_append_new(
			    caps, json_string(pod->capabilities.items[i]));
		json_object_set_new(o, "capabilities", caps);
		json_object_set_new(o, "privileged", json_boolean(all));
	}
	json_object_set_new(o, "paused", json_boolean(r->paused));
	return o;
}
