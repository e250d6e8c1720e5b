/*
 * json.c - the spec model as JSON: what `holdfast spec render --json`
 * prints, what the server stores as a service's target configuration view,
 * and what the diff compares pod by pod.
 */
#include <jansson.h>
#include <string.h>

#include "spec/internal.h"

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *kv_object(const struct hf_kvlist *l)
{
	json_t *o = json_object();

	for (size_t i = 0; i < l->len; i++)
		json_object_set_new(o, l->items[i].key,
				    json_string(l->items[i].value));
	return o;
}

static json_t *strlist_array(const struct hf_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->len; i++)
		json_array_append_new(a, json_string(l->items[i]));
	return a;
}

static json_t *volume_json(const struct hf_spec_volume *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(v->name));
	json_object_set_new(o, "path", str_or_null(v->path));
	json_object_set_new(o, "type", json_string(hf_volume_type_name(v->type)));
	json_object_set_new(o, "size", json_integer(v->size_mb));
	if (v->profiles.len)
		json_object_set_new(o, "profiles", strlist_array(&v->profiles));
	return o;
}

static json_t *volumes_json(const struct hf_spec_volume *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, volume_json(&v[i]));
	return a;
}

static json_t *port_json(const struct hf_spec_port *p)
{
	json_t *o = json_object();
	char *key = hf_spec_port_env_key(p);

	json_object_set_new(o, "name", json_string(p->name));
	json_object_set_new(o, "port", json_integer(p->port));
	json_object_set_new(o, "env-key", json_string(key));
	json_object_set_new(o, "advertise", json_boolean(p->advertise));
	free(key);
	if (p->has_vip) {
		json_t *vip = json_object();

		json_object_set_new(vip, "port", json_integer(p->vip_port));
		json_object_set_new(vip, "prefix",
				    json_string(p->vip_prefix ? p->vip_prefix
							      : p->name));
		json_object_set_new(vip, "protocol",
				    json_string(p->vip_protocol
						    ? p->vip_protocol
						    : "tcp"));
		json_object_set_new(o, "vip", vip);
	}
	if (p->ranges.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < p->ranges.len; i++) {
			const struct hf_spec_port_range *r = &p->ranges.items[i];

			json_array_append_new(
			    a, json_pack("{s:o, s:o}", "begin",
					 r->begin < 0 ? json_null()
						      : json_integer(r->begin),
					 "end",
					 r->end < 0 ? json_null()
						    : json_integer(r->end)));
		}
		json_object_set_new(o, "ranges", a);
	}
	return o;
}

static json_t *limit_json(double v)
{
	if (v < 0)
		return json_string("unlimited");
	if (v == 0)
		return json_null();
	return json_real(v);
}

static json_t *rs_json(const struct hf_spec_resource_set *rs)
{
	json_t *o = json_object();
	json_t *ports = json_array();

	json_object_set_new(o, "name", json_string(rs->name));
	json_object_set_new(o, "implicit", json_boolean(rs->implicit));
	json_object_set_new(o, "cpus", json_real(rs->cpus));
	json_object_set_new(o, "gpus", json_real(rs->gpus));
	json_object_set_new(o, "memory", json_real(rs->memory_mb));
	if (rs->has_limits)
		json_object_set_new(
		    o, "resource-limits",
		    json_pack("{s:o, s:o}", "cpus", limit_json(rs->limit_cpus),
			      "memory", limit_json(rs->limit_memory_mb)));
	for (size_t i = 0; i < rs->ports.len; i++)
		json_array_append_new(ports, port_json(&rs->ports.items[i]));
	json_object_set_new(o, "ports", ports);
	json_object_set_new(o, "volumes",
			    volumes_json(rs->volumes.items, rs->volumes.len));
	return o;
}

static const char *check_kind_name(enum hf_check_kind k)
{
	switch (k) {
	case HF_CHECK_CMD:
		return "cmd";
	case HF_CHECK_HTTP:
		return "http";
	case HF_CHECK_TCP:
		return "tcp";
	case HF_CHECK_NONE:
		break;
	}
	return "none";
}

static json_t *check_json(const struct hf_spec_check *c, bool health)
{
	json_t *o;

	if (c->kind == HF_CHECK_NONE)
		return json_null();
	o = json_object();
	json_object_set_new(o, "kind", json_string(check_kind_name(c->kind)));
	if (c->cmd)
		json_object_set_new(o, "cmd", json_string(c->cmd));
	if (c->port)
		json_object_set_new(o, "port", json_string(c->port));
	if (c->http_path)
		json_object_set_new(o, "path", json_string(c->http_path));
	json_object_set_new(o, "interval", json_real(c->interval));
	json_object_set_new(o, "delay", json_real(c->delay));
	json_object_set_new(o, "timeout", json_real(c->timeout));
	if (health) {
		json_object_set_new(o, "grace-period",
				    json_real(c->grace_period));
		json_object_set_new(o, "max-consecutive-failures",
				    json_integer(c->max_consecutive_failures));
	}
	return o;
}

static json_t *task_json(const struct hf_spec *spec,
			 const struct hf_spec_pod *pod,
			 const struct hf_spec_task *t)
{
	json_t *o = json_object();
	json_t *configs = json_array();
	struct hf_kvlist env = {0};

	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "goal", json_string(hf_goal_name(t->goal)));
	json_object_set_new(o, "essential", json_boolean(t->essential));
	json_object_set_new(o, "cmd", str_or_null(t->cmd));
	hf_spec_task_env(spec, pod, t, &env);
	json_object_set_new(o, "env", kv_object(&env));
	hf_kvlist_release(&env);
	for (size_t i = 0; i < t->configs.len; i++) {
		const struct hf_spec_config *c = &t->configs.items[i];

		json_array_append_new(
		    configs, json_pack("{s:s, s:o, s:o, s:o}", "name", c->name,
				       "template", str_or_null(c->template_path),
				       "dest", str_or_null(c->dest), "content",
				       str_or_null(c->content)));
	}
	json_object_set_new(o, "configs", configs);
	json_object_set_new(
	    o, "resource-set",
	    t->resource_set < pod->resource_sets.len
		? json_string(pod->resource_sets.items[t->resource_set].name)
		: json_null());
	json_object_set_new(o, "health-check", check_json(&t->health, true));
	json_object_set_new(o, "readiness-check",
			    check_json(&t->readiness, false));
	json_object_set_new(o, "kill-grace-period",
			    json_integer(t->kill_grace_period));
	if (t->discovery_prefix)
		json_object_set_new(o, "discovery",
				    json_pack("{s:s, s:o}", "prefix",
					      t->discovery_prefix, "visibility",
					      str_or_null(t->discovery_visibility)));
	json_object_set_new(o, "labels", kv_object(&t->labels));
	if (t->tls.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < t->tls.len; i++)
			json_array_append_new(
			    a, json_pack("{s:o, s:o}", "name",
					 str_or_null(t->tls.items[i].name),
					 "type",
					 str_or_null(t->tls.items[i].type)));
		json_object_set_new(o, "transport-encryption", a);
	}
	if (t->ipc_mode)
		json_object_set_new(o, "ipc-mode", json_string(t->ipc_mode));
	if (t->shm_size)
		json_object_set_new(o, "shm-size", json_integer(t->shm_size));
	return o;
}


json_t *hf_spec_hooks_json(const struct hf_spec_pod *pod)
{
	if (!pod->has_hooks)
		return NULL;
	return json_pack("{s:s?, s:s?, s:s?, s:f}", "task", pod->hook_task,
			 "before", pod->hook_before, "after", pod->hook_after,
			 "timeout", pod->hook_timeout);
}

json_t *hf_spec_backup_schedule_json(const struct hf_spec_pod *pod)
{
	if (!pod->bk_to)
		return NULL;
	return json_pack("{s:s, s:s?, s:f, s:I}", "to", pod->bk_to,
			 "credential", pod->bk_cred, "every", pod->bk_every,
			 "keep", (json_int_t)pod->bk_keep);
}

json_t *hf_spec_autoscale_json(const struct hf_spec_autoscale *a)
{
	json_t *o = json_object(), *m = json_object();

	json_object_set_new(o, "min", json_integer(a->min));
	json_object_set_new(o, "max", json_integer(a->max));
	json_object_set_new(o, "interval", json_real(a->interval));
	json_object_set_new(o, "timeout", json_real(a->timeout));
	json_object_set_new(o, "samples", json_integer(a->samples));
	json_object_set_new(o, "dry-run", json_boolean(a->dry_run));
	json_object_set_new(o, "on-error",
			    a->error_count < 0 ? json_string("hold")
					       : json_integer(a->error_count));
	switch (a->source) {
	case HF_AS_COMMAND:
		json_object_set_new(m, "command", json_string(a->command));
		json_object_set_new(m, "task", str_or_null(a->task));
		break;
	case HF_AS_HTTP:
		json_object_set_new(m, "http",
				    json_pack("{s:s, s:o}", "url", a->url,
					      "path", str_or_null(a->json_path)));
		break;
	case HF_AS_PROMETHEUS:
		json_object_set_new(m, "prometheus",
				    json_pack("{s:s, s:s}", "url", a->url,
					      "query", a->query));
		break;
	case HF_AS_METRICS:
		json_object_set_new(
		    m, "task-metrics",
		    json_pack("{s:s, s:s, s:s, s:s}", "port", a->port, "name",
			      a->sample, "path", a->path ? a->path : "/metrics",
			      "aggregate",
			      a->aggregate ? a->aggregate : "sum"));
		break;
	}
	json_object_set_new(o, "metric", m);
	if (a->has_target) {
		json_object_set_new(o, "target", json_real(a->target));
		json_object_set_new(o, "tolerance", json_real(a->tolerance));
	}
	json_object_set_new(
	    o, "up",
	    json_pack("{s:o, s:o, s:f}", "above",
		      a->has_up ? json_real(a->above) : json_null(), "step",
		      a->up_step ? json_integer(a->up_step) : json_null(),
		      "cooldown", a->up_cooldown));
	json_object_set_new(
	    o, "down",
	    json_pack("{s:o, s:o, s:f}", "below",
		      a->has_down ? json_real(a->below) : json_null(), "step",
		      a->down_step ? json_integer(a->down_step) : json_null(),
		      "cooldown", a->down_cooldown));
	return o;
}

/*
 * An external volume. A driver holdfast serves has its options parsed
 * ("options", with size in bytes) and no raw string, so that rewriting
 * the string the same way ("repl=2;size=1") changes nothing; another
 * driver's options are shown as written.
 */
static json_t *external_volume_json(const struct hf_spec *spec,
				    const struct hf_spec_pod *pod,
				    const struct hf_spec_external_volume *e,
				    bool for_diff)
{
	json_t *o = json_object();
	struct hf_spec_external_volume pattern = *e;
	char *name;

	json_object_set_new(o, "name", json_string(e->name));
	json_object_set_new(o, "type", str_or_null(e->type));
	json_object_set_new(o, "container-path",
			    str_or_null(e->container_path));
	json_object_set_new(o, "driver-name", str_or_null(e->driver_name));
	json_object_set_new(o, "volume-name", str_or_null(e->volume_name));
	json_object_set_new(o, "volume-mode",
			    json_string(e->volume_mode ? e->volume_mode
						       : "RW"));
	if (!e->has_opts) {
		json_object_set_new(o, "driver-options",
				    str_or_null(e->driver_options));
		return o;
	}
	json_object_set_new(
	    o, "options",
	    json_pack("{s:I, s:i, s:i, s:b, s:b}", "size",
		      (json_int_t)e->opts.size_bytes, "repl", (int)e->opts.repl,
		      "min_sync", (int)e->opts.min_sync, "shared",
		      e->opts.shared, "secure", e->opts.secure));
	if (e->opts.secret_key[0])
		json_object_set_new(json_object_get(o, "options"), "secret_key",
				    json_string(e->opts.secret_key));
	if (e->opts.fs != HF_FS_AUTO)
		json_object_set_new(json_object_get(o, "options"), "fs",
				    json_string(e->opts.fs == HF_FS_XFS ? "xfs"
									: "ext4"));
	/* A larger size grows the volume under its running tasks. */
	if (for_diff)
		json_object_del(json_object_get(o, "options"), "size");
	/* The names instances get: "<index>" stands for the index. */
	pattern.opts.shared = true;
	name = hf_spec_external_volume_name(spec->name ? spec->name : "",
					    pod->name, 0, &pattern);
	if (name && !e->opts.shared) {
		char *n2 = hf_xasprintf("%s-<index>", name);

		free(name);
		name = n2;
	}
	json_object_set_new(o, "volume-names", str_or_null(name));
	free(name);
	return o;
}

json_t *hf_spec_pod_to_json(const struct hf_spec *spec,
			    const struct hf_spec_pod *pod, bool for_diff)
{
	json_t *o = json_object();
	json_t *a;

	json_object_set_new(o, "name", json_string(pod->name));
	if (!for_diff) {
		json_object_set_new(o, "count", json_integer(pod->count));
		json_object_set_new(o, "allow-decommission",
				    json_boolean(pod->allow_decommission));
		json_object_set_new(o, "volume-retention",
				    json_string(pod->retain_volumes ? "retain"
								    : "delete"));
		json_object_set_new(o, "placement", str_or_null(pod->placement));
		a = json_array();
		for (size_t i = 0; i < pod->constraints.len; i++) {
			const struct hf_spec_constraint *c =
			    &pod->constraints.items[i];

			json_array_append_new(
			    a, c->arg ? json_pack("[s, s, s]", c->field, c->op,
						  c->arg)
				      : json_pack("[s, s]", c->field, c->op));
		}
		json_object_set_new(o, "constraints", a);
	}
	json_object_set_new(o, "uris", strlist_array(&pod->uris));
	if (pod->replace_tasks.len)
		json_object_set_new(o, "replace",
				    json_pack("{s:o}", "tasks",
					      strlist_array(&pod->replace_tasks)));
	/*
	 * Hooks run around snapshots: changing them relaunches nothing, nor
	 * does a backup schedule (diff.c's pod settings have both).
	 */
	if (pod->has_hooks && !for_diff)
		json_object_set_new(o, "snapshot-hooks",
				    hf_spec_hooks_json(pod));
	if (pod->bk_to && !for_diff)
		json_object_set_new(o, "backup-schedule",
				    hf_spec_backup_schedule_json(pod));
	/* Nor does an autoscale policy (diff.c's pod settings have it). */
	if (pod->autoscale && !for_diff)
		json_object_set_new(o, "autoscale",
				    hf_spec_autoscale_json(pod->autoscale));
	json_object_set_new(o, "volumes",
			    volumes_json(pod->volumes.items, pod->volumes.len));
	a = json_array();
	for (size_t i = 0; i < pod->resource_sets.len; i++)
		json_array_append_new(a, rs_json(&pod->resource_sets.items[i]));
	json_object_set_new(o, "resource-sets", a);
	a = json_array();
	for (size_t i = 0; i < pod->rlimits.len; i++) {
		const struct hf_spec_rlimit *r = &pod->rlimits.items[i];

		json_array_append_new(
		    a, json_pack("{s:s, s:o, s:o}", "name", r->name, "soft",
				 r->has_soft ? json_integer(r->soft) : json_null(),
				 "hard",
				 r->has_hard ? json_integer(r->hard)
					     : json_null()));
	}
	json_object_set_new(o, "rlimits", a);
	if (pod->pre_reserved_role)
		json_object_set_new(o, "pre-reserved-role",
				    json_string(pod->pre_reserved_role));
	if (pod->image)
		json_object_set_new(o, "image", json_string(pod->image));
	if (pod->user)
		json_object_set_new(o, "user", json_string(pod->user));
	if (pod->capabilities.len)
		json_object_set_new(o, "capabilities",
				    strlist_array(&pod->capabilities));
	if (pod->networks.len) {
		a = json_array();
		for (size_t i = 0; i < pod->networks.len; i++)
			json_array_append_new(
			    a, json_string(pod->networks.items[i].name));
		json_object_set_new(o, "networks", a);
	}
	if (pod->secrets.len) {
		/* Secret paths only; holdfast never prints secret values. */
		a = json_array();
		for (size_t i = 0; i < pod->secrets.len; i++) {
			const struct hf_spec_secret *s = &pod->secrets.items[i];

			json_array_append_new(
			    a, json_pack("{s:s, s:o, s:o, s:o}", "name", s->name,
					 "secret", str_or_null(s->secret),
					 "env-key", str_or_null(s->env_key),
					 "file", str_or_null(s->file)));
		}
		json_object_set_new(o, "secrets", a);
	}
	if (pod->host_volumes.len) {
		a = json_array();
		for (size_t i = 0; i < pod->host_volumes.len; i++) {
			const struct hf_spec_host_volume *h =
			    &pod->host_volumes.items[i];

			json_array_append_new(
			    a, json_pack("{s:s, s:o, s:o, s:o}", "name", h->name,
					 "host-path", str_or_null(h->host_path),
					 "container-path",
					 str_or_null(h->container_path), "mode",
					 str_or_null(h->mode)));
		}
		json_object_set_new(o, "host-volumes", a);
	}
	if (pod->external_volumes.len) {
		a = json_array();
		for (size_t i = 0; i < pod->external_volumes.len; i++)
			json_array_append_new(
			    a, external_volume_json(
				   spec, pod, &pod->external_volumes.items[i],
				   for_diff));
		json_object_set_new(o, "external-volumes", a);
	}
	if (pod->share_pid_namespace)
		json_object_set_new(o, "share-pid-namespace", json_true());
	if (pod->ipc_mode)
		json_object_set_new(o, "ipc-mode", json_string(pod->ipc_mode));
	if (pod->shm_size)
		json_object_set_new(o, "shm-size", json_integer(pod->shm_size));
	a = json_array();
	for (size_t i = 0; i < pod->tasks.len; i++)
		json_array_append_new(a,
				      task_json(spec, pod, &pod->tasks.items[i]));
	json_object_set_new(o, "tasks", a);
	return o;
}

static const char *kind_name(enum hf_plan_kind k)
{
	switch (k) {
	case HF_PLAN_DEPLOY:
		return "deploy";
	case HF_PLAN_UPDATE:
		return "update";
	case HF_PLAN_CUSTOM:
		break;
	}
	return "custom";
}

json_t *hf_plan_def_to_json(const struct hf_plan_def *def)
{
	json_t *phases = json_array();

	for (size_t i = 0; i < def->phases.len; i++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[i];
		json_t *steps = json_array();

		for (size_t k = 0; k < ph->steps.len; k++) {
			const struct hf_plan_step_def *st = &ph->steps.items[k];

			json_array_append_new(
			    steps, json_pack("{s:s, s:s, s:I, s:o}", "name",
					     st->name, "pod", st->pod, "index",
					     (json_int_t)st->index, "tasks",
					     strlist_array(&st->tasks)));
		}
		json_array_append_new(
		    phases, json_pack("{s:s, s:s, s:s, s:o}", "name", ph->name,
				      "pod", ph->pod, "strategy",
				      hf_strategy_name(ph->strategy), "steps",
				      steps));
	}
	return json_pack("{s:s, s:s, s:b, s:s, s:f, s:b, s:o}", "name",
			 def->name, "kind", kind_name(def->kind), "generated",
			 def->generated, "strategy",
			 hf_strategy_name(def->strategy), "healthy-deadline",
			 def->healthy_deadline, "auto-revert", def->auto_revert,
			 "phases", phases);
}

json_t *hf_spec_to_json(const struct hf_spec *spec)
{
	json_t *o = json_object();
	json_t *pods = json_array();
	json_t *plans = json_array();
	json_t *unsup = json_array();
	struct hf_plan_defs defs = {0};

	json_object_set_new(o, "name", str_or_null(spec->name));
	json_object_set_new(o, "web-url", str_or_null(spec->web_url));
	json_object_set_new(
	    o, "scheduler",
	    json_pack("{s:o, s:o}", "user", str_or_null(spec->scheduler_user),
		      "principal", str_or_null(spec->scheduler_principal)));
	for (size_t i = 0; i < spec->pods.len; i++)
		json_array_append_new(
		    pods, hf_spec_pod_to_json(spec, &spec->pods.items[i], false));
	json_object_set_new(o, "pods", pods);
	hf_spec_build_plans(spec, &defs);
	for (size_t i = 0; i < defs.len; i++)
		json_array_append_new(plans, hf_plan_def_to_json(&defs.items[i]));
	hf_plan_defs_release(&defs);
	json_object_set_new(o, "plans", plans);
	for (size_t i = 0; i < spec->unsupported.len; i++) {
		const struct hf_spec_feature_use *u = &spec->unsupported.items[i];
		json_t *f = json_pack("{s:s, s:s, s:i}", "feature", u->feature,
				      "path", u->path, "line", u->pos.line);

		/* The whole sentence, where the feature's name says little. */
		if (u->msg)
			json_object_set_new(f, "message", json_string(u->msg));
		json_array_append_new(unsup, f);
	}
	json_object_set_new(o, "not-supported-yet", unsup);
	return o;
}

json_t *hf_diags_to_json(const struct hf_diags *d)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->len; i++) {
		const struct hf_diag *g = &d->items[i];

		json_array_append_new(
		    a, json_pack("{s:s, s:o, s:i, s:i, s:s, s:s}", "level",
				 g->level == HF_DIAG_ERROR ? "error" : "warning",
				 "file", str_or_null(g->file), "line", g->line,
				 "col", g->col, "path", g->path ? g->path : "",
				 "message", g->msg));
	}
	return a;
}

static const char *change_name(enum hf_pod_change c)
{
	switch (c) {
	case HF_POD_UNCHANGED:
		return "unchanged";
	case HF_POD_CHANGED:
		return "changed";
	case HF_POD_ADDED:
		return "added";
	case HF_POD_REMOVED:
		return "removed";
	}
	return "?";
}

json_t *hf_spec_diff_to_json(const struct hf_spec_diff *d)
{
	json_t *pods = json_array();

	for (size_t i = 0; i < d->pods.len; i++) {
		const struct hf_pod_diff *p = &d->pods.items[i];

		json_array_append_new(
		    pods,
		    json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o}", "pod",
			      p->pod, "change", change_name(p->change),
			      "old-count", (json_int_t)p->old_count,
			      "new-count", (json_int_t)p->new_count, "relaunch",
			      strlist_array(&p->relaunch), "added",
			      strlist_array(&p->added), "removed",
			      strlist_array(&p->removed), "changes",
			      strlist_array(&p->changes)));
	}
	return json_pack("{s:b, s:o, s:o, s:o}", "allowed", d->refusals.len == 0,
			 "refusals", strlist_array(&d->refusals), "changes",
			 strlist_array(&d->changes), "pods", pods);
}
