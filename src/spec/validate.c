/*
 * validate.c - checks that need the whole model (references between pods,
 * tasks, resource sets, ports and plans), placement strings, and the
 * model's lifecycle helpers.
 */
#include <jansson.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spec/internal.h"

/* ------------------------------------------------------------------ */
/* Placement                                                            */

static const char *const constraint_ops[] = {
    "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS", "IS_NOT",
};

static bool field_ok(const char *f)
{
	if (*f == '@')
		f++;
	if (!*f)
		return false;
	for (; *f; f++)
		if (!((*f >= 'a' && *f <= 'z') || (*f >= 'A' && *f <= 'Z') ||
		      (*f >= '0' && *f <= '9') || *f == '_' || *f == '-' ||
		      *f == '.'))
			return false;
	return true;
}

static bool positive_int(const char *s)
{
	char *end;
	long v;

	if (!*s)
		return false;
	v = strtol(s, &end, 10);
	return !*end && v > 0;
}

/* Checks one constraint; returns NULL or a sentence (static). */
static const char *check_constraint(const char *field, const char *op,
				    const char *arg, char **why)
{
	bool known = false;

	if (!field_ok(field))
		return "a constraint's field must be a name such as hostname, "
		       "zone, region or an attribute";
	for (size_t i = 0; i < HF_ARRAY_LEN(constraint_ops); i++)
		if (strcmp(op, constraint_ops[i]) == 0)
			known = true;
	if (!known) {
		*why = hf_xasprintf("unknown operator '%s' (use UNIQUE, "
				    "CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, "
				    "IS or IS_NOT)",
				    op);
		return NULL;
	}
	if (strcmp(op, "UNIQUE") == 0 && arg)
		return "UNIQUE takes no value";
	if ((strcmp(op, "LIKE") == 0 || strcmp(op, "UNLIKE") == 0 ||
	     strcmp(op, "CLUSTER") == 0 ||
	     strcmp(op, "IS") == 0 || strcmp(op, "IS_NOT") == 0) &&
	    (!arg || !*arg)) {
		*why = hf_xasprintf("%s needs a value", op);
		return NULL;
	}
	if (strcmp(op, "MAX_PER") == 0 && (!arg || !positive_int(arg))) {
		*why = hf_xasprintf("MAX_PER needs a positive count");
		return NULL;
	}
	if (strcmp(op, "GROUP_BY") == 0 && arg && !positive_int(arg)) {
		*why = hf_xasprintf("GROUP_BY takes an optional positive count, "
				    "not '%s'",
				    arg);
		return NULL;
	}
	if (strcmp(op, "LIKE") == 0 || strcmp(op, "UNLIKE") == 0) {
		regex_t re;
		int rc = regcomp(&re, arg, REG_EXTENDED | REG_NOSUB);

		if (rc != 0) {
			char msg[128];

			regerror(rc, &re, msg, sizeof(msg));
			*why = hf_xasprintf("'%s' is not a valid regular "
					    "expression: %s",
					    arg, msg);
			return NULL;
		}
		regfree(&re);
	}
	return NULL;
}

static int add_constraint(struct hf_spec_constraints *out, const char *field,
			  const char *op, const char *arg, char **why)
{
	const char *msg = check_constraint(field, op, arg, why);
	struct hf_spec_constraint *con;

	if (msg)
		*why = hf_xstrdup(msg);
	if (*why)
		return -1;
	con = HF_VEC_PUSH(out);
	con->field = hf_xstrdup(field[0] == '@' ? field + 1 : field);
	con->op = hf_xstrdup(op);
	con->arg = arg ? hf_xstrdup(arg) : NULL;
	return 0;
}

static int placement_json(const char *s, struct hf_spec_constraints *out,
			  char **why)
{
	json_error_t jerr;
	json_t *root = json_loads(s, JSON_DECODE_ANY, &jerr);
	json_t *list;
	size_t i;
	int rc = -1;

	if (!root) {
		*why = hf_xasprintf("not a valid constraint list (%s)",
				    jerr.text);
		return -1;
	}
	if (!json_is_array(root))
		goto bad;
	/* [["a","b"]] or a single ["a","b"] */
	if (json_array_size(root) > 0 && json_is_string(json_array_get(root, 0))) {
		list = json_array();
		json_array_append(list, root);
	} else {
		list = json_incref(root);
	}
	for (i = 0; i < json_array_size(list); i++) {
		json_t *c = json_array_get(list, i);
		size_t n = json_array_size(c);
		const char *parts[3] = {NULL, NULL, NULL};

		if (!json_is_array(c) || n < 2 || n > 3) {
			json_decref(list);
			goto bad;
		}
		for (size_t k = 0; k < n; k++) {
			json_t *p = json_array_get(c, k);

			if (!json_is_string(p)) {
				json_decref(list);
				goto bad;
			}
			parts[k] = json_string_value(p);
		}
		if (add_constraint(out, parts[0], parts[1], parts[2], why)) {
			json_decref(list);
			goto out;
		}
	}
	json_decref(list);
	rc = 0;
	goto out;
bad:
	*why = hf_xstrdup("expected a list of [field, OPERATOR] or "
			  "[field, OPERATOR, value] lists");
out:
	json_decref(root);
	return rc;
}

/* "hostname:UNIQUE,zone:GROUP_BY:3" */
static int placement_short(const char *s, struct hf_spec_constraints *out,
			   char **why)
{
	char *copy = hf_xstrdup(s), *save = NULL, *tok;
	int rc = 0;

	for (tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		char *parts[3] = {NULL, NULL, NULL};
		char *p = tok;
		int n = 0;

		while (*p == ' ')
			p++;
		parts[n++] = p;
		while ((p = strchr(p, ':')) != NULL) {
			*p++ = '\0';
			if (n == 3) {
				n = 4;
				break;
			}
			parts[n++] = p;
		}
		if (n < 2 || n > 3) {
			*why = hf_xasprintf("'%s' is not field:OPERATOR or "
					    "field:OPERATOR:value",
					    tok);
			rc = -1;
			break;
		}
		rc = add_constraint(out, parts[0], parts[1], parts[2], why);
	}
	free(copy);
	return rc;
}

int hf_spec_parse_placement(const char *s, void *constraints, char **why)
{
	struct hf_spec_constraints *out = constraints;
	const char *p = s;

	*why = NULL;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (!*p)
		return 0;
	if (*p == '[')
		return placement_json(p, out, why);
	return placement_short(p, out, why);
}

/* ------------------------------------------------------------------ */
/* Cross-checks                                                         */


/*
 * An autoscale policy's references: the task its command runs in (one
 * with goal RUNNING; default the pod's first such) and a task-metrics
 * port (a port of the pod by name, or a number). The autoscaler owns the
 * count, scale-in included: the policy implies allow-decommission.
 */
static void check_autoscale(struct hf_pctx *c, struct hf_spec_pod *pod)
{
	struct hf_spec_autoscale *a = pod->autoscale;

	pod->allow_decommission = true;
	if (a->source == HF_AS_COMMAND) {
		const struct hf_spec_task *t =
		    a->task ? hf_spec_find_task(pod, a->task) : NULL;

		for (size_t k = 0; !a->task && !t && k < pod->tasks.len; k++)
			if (pod->tasks.items[k].goal == HF_GOAL_RUNNING)
				t = &pod->tasks.items[k];
		if (!t || t->goal != HF_GOAL_RUNNING) {
			char *path = hf_xasprintf("pods.%s.autoscale.metric",
						  pod->name);

			hf_pctx_err_pos(
			    c, a->pos, path,
			    "a command metric runs in a task of the pod with "
			    "goal RUNNING: %s%s%s",
			    a->task ? "'" : "", a->task ? a->task : "it has none",
			    a->task ? (t ? "' is not one"
					 : "' is not a task of this pod")
				    : "");
			free(path);
		} else if (!a->task) {
			a->task = hf_xstrdup(t->name);
		}
	}
	if (a->source == HF_AS_METRICS && a->port) {
		char *end;
		long n = strtol(a->port, &end, 10);
		bool found = !*end && n > 0 && n < 65536;

		for (size_t r = 0; !found && r < pod->resource_sets.len; r++)
			for (size_t k = 0;
			     k < pod->resource_sets.items[r].ports.len; k++)
				found = found ||
					strcmp(pod->resource_sets.items[r]
						   .ports.items[k]
						   .name,
					       a->port) == 0;
		if (!found) {
			char *path = hf_xasprintf(
			    "pods.%s.autoscale.metric.task-metrics.port",
			    pod->name);

			hf_pctx_err_pos(c, a->pos, path,
					"'%s' is neither a port of pod '%s' nor "
					"a port number",
					a->port, pod->name);
			free(path);
		}
	}
}

/* The spec path of a resource set: explicit ones, or the owning task's. */
static char *rs_path(const struct hf_spec_pod *pod, size_t rs_idx)
{
	const struct hf_spec_resource_set *rs = &pod->resource_sets.items[rs_idx];

	if (rs->implicit) {
		for (size_t t = 0; t < pod->tasks.len; t++)
			if (pod->tasks.items[t].resource_set == rs_idx &&
			    !pod->tasks.items[t].resource_set_name)
				return hf_xasprintf("pods.%s.tasks.%s",
						    pod->name,
						    pod->tasks.items[t].name);
	}
	return hf_xasprintf("pods.%s.resource-sets.%s", pod->name, rs->name);
}

static char *vol_path(const char *base, const struct hf_spec_volume *v,
		      const char *field)
{
	if (!*v->name)
		return hf_xasprintf("%s.volume%s%s", base, field ? "." : "",
				    field ? field : "");
	return hf_xasprintf("%s.volumes.%s%s%s", base, v->name,
			    field ? "." : "", field ? field : "");
}

static void resolve_resource_sets(struct hf_pctx *c, struct hf_spec_pod *pod)
{
	for (size_t t = 0; t < pod->tasks.len; t++) {
		struct hf_spec_task *task = &pod->tasks.items[t];
		char *path;

		if (!task->resource_set_name)
			continue;
		for (size_t r = 0; r < pod->resource_sets.len; r++) {
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[r];

			if (!rs->implicit &&
			    strcmp(rs->name, task->resource_set_name) == 0)
				task->resource_set = r;
		}
		if (task->resource_set != (size_t)-1)
			continue;
		path = hf_xasprintf("pods.%s.tasks.%s.resource-set", pod->name,
				    task->name);
		hf_pctx_err_pos(c, task->rs_pos, path,
				"resource set '%s' is not declared in pod '%s'",
				task->resource_set_name, pod->name);
		free(path);
	}
	for (size_t r = 0; r < pod->resource_sets.len; r++) {
		const struct hf_spec_resource_set *rs =
		    &pod->resource_sets.items[r];
		bool used = false;
		char *path;

		for (size_t t = 0; t < pod->tasks.len; t++)
			if (pod->tasks.items[t].resource_set == r)
				used = true;
		if (used || rs->implicit)
			continue;
		path = rs_path(pod, r);
		hf_pctx_warn_pos(c, rs->pos, path,
				 "resource set '%s' is not used by any task",
				 rs->name);
		free(path);
	}
}

static void check_volumes(struct hf_pctx *c, const struct hf_spec_pod *pod)
{
	char *pod_base = hf_xasprintf("pods.%s", pod->name);

	/* Pod volumes among themselves. */
	for (size_t i = 0; i < pod->volumes.len; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct hf_spec_volume *a = &pod->volumes.items[j];
			const struct hf_spec_volume *b = &pod->volumes.items[i];
			char *p;

			if (!a->path || !b->path || strcmp(a->path, b->path))
				continue;
			p = vol_path(pod_base, b, "path");
			hf_pctx_err_pos(c, b->path_pos, p,
					"two volumes use the path '%s'", b->path);
			free(p);
		}
	}
	for (size_t r = 0; r < pod->resource_sets.len; r++) {
		const struct hf_spec_resource_set *rs =
		    &pod->resource_sets.items[r];
		char *base = rs_path(pod, r);

		for (size_t i = 0; i < rs->volumes.len; i++) {
			const struct hf_spec_volume *b = &rs->volumes.items[i];
			const char *clash = NULL;
			char *p;

			if (!b->path)
				continue;
			for (size_t j = 0; j < i; j++)
				if (rs->volumes.items[j].path &&
				    strcmp(rs->volumes.items[j].path, b->path) ==
					0)
					clash = "another volume of this task";
			for (size_t j = 0; j < pod->volumes.len; j++)
				if (pod->volumes.items[j].path &&
				    strcmp(pod->volumes.items[j].path, b->path) ==
					0)
					clash = "a pod volume";
			if (!clash)
				continue;
			p = vol_path(base, b, "path");
			hf_pctx_err_pos(c, b->path_pos, p,
					"volume path '%s' is already used by %s",
					b->path, clash);
			free(p);
		}
		free(base);
	}
	free(pod_base);
}

struct port_ref {
	const struct hf_spec_pod *pod;
	size_t rs;
	const struct hf_spec_port *port;
};

static void check_ports(struct hf_pctx *c)
{
	HF_VEC(struct port_ref) all = {0};
	const struct hf_spec *spec = c->spec;

	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		for (size_t r = 0; r < pod->resource_sets.len; r++) {
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[r];

			for (size_t k = 0; k < rs->ports.len; k++) {
				struct port_ref *ref = HF_VEC_PUSH(&all);

				ref->pod = pod;
				ref->rs = r;
				ref->port = &rs->ports.items[k];
			}
		}
	}
	for (size_t i = 0; i < all.len; i++) {
		const struct port_ref *b = &all.items[i];
		char *base = rs_path(b->pod, b->rs);

		for (size_t j = 0; j < i; j++) {
			const struct port_ref *a = &all.items[j];
			bool same_pod = a->pod == b->pod;
			char *p;

			if (!a->port->name || !b->port->name)
				continue;
			if (same_pod && a->rs != b->rs &&
			    strcmp(a->port->name, b->port->name) == 0) {
				p = hf_xasprintf("%s.ports.%s", base,
						 b->port->name);
				hf_pctx_err_pos(c, b->port->pos, p,
						"port name '%s' is already used "
						"in pod '%s'",
						b->port->name, b->pod->name);
				free(p);
				break;
			}
			if (same_pod && a->port->port != 0 &&
			    a->port->port == b->port->port) {
				p = hf_xasprintf("%s.ports.%s.port", base,
						 b->port->name);
				hf_pctx_err_pos(c, b->port->value_pos, p,
						"port %lld is already used by "
						"port '%s' in pod '%s'",
						(long long)b->port->port,
						a->port->name, b->pod->name);
				free(p);
				break;
			}
			if (!same_pod && a->port->advertise &&
			    b->port->advertise &&
			    strcmp(a->port->name, b->port->name) == 0) {
				p = hf_xasprintf("%s.ports.%s", base,
						 b->port->name);
				hf_pctx_err_pos(c, b->port->pos, p,
						"advertised port name '%s' is "
						"already used by pod '%s'; "
						"endpoints are named after "
						"ports",
						b->port->name, a->pod->name);
				free(p);
				break;
			}
			if (a->port->has_vip && b->port->has_vip) {
				const char *va = a->port->vip_prefix
						     ? a->port->vip_prefix
						     : a->port->name;
				const char *vb = b->port->vip_prefix
						     ? b->port->vip_prefix
						     : b->port->name;

				if (strcmp(va, vb) == 0 &&
				    a->port->vip_port == b->port->vip_port) {
					p = hf_xasprintf("%s.ports.%s.vip", base,
							 b->port->name);
					hf_pctx_err_pos(c, b->port->pos, p,
							"VIP '%s:%lld' is "
							"already used",
							vb,
							(long long)b->port
							    ->vip_port);
					free(p);
					break;
				}
			}
		}
		free(base);
	}
	HF_VEC_FREE(&all);
}

static bool task_has_port(const struct hf_spec_pod *pod,
			  const struct hf_spec_task *t, const char *name)
{
	const struct hf_spec_resource_set *rs;

	if (t->resource_set >= pod->resource_sets.len)
		return true; /* already reported */
	rs = &pod->resource_sets.items[t->resource_set];
	for (size_t i = 0; i < rs->ports.len; i++)
		if (rs->ports.items[i].name &&
		    strcmp(rs->ports.items[i].name, name) == 0)
			return true;
	return false;
}

static void check_task_refs(struct hf_pctx *c, const struct hf_spec_pod *pod)
{
	for (size_t t = 0; t < pod->tasks.len; t++) {
		const struct hf_spec_task *task = &pod->tasks.items[t];

		for (int k = 0; k < 2; k++) {
			const struct hf_spec_check *chk =
			    k == 0 ? &task->health : &task->readiness;
			int64_t num;
			char *end;
			char *p;

			if ((chk->kind != HF_CHECK_HTTP &&
			     chk->kind != HF_CHECK_TCP) ||
			    !chk->port)
				continue;
			num = strtoll(chk->port, &end, 10);
			if (!*end && num > 0 && num < 65536)
				continue;
			if (task_has_port(pod, task, chk->port))
				continue;
			p = hf_xasprintf("pods.%s.tasks.%s.%s.%s.port",
					 pod->name, task->name,
					 k == 0 ? "health-check"
						: "readiness-check",
					 chk->kind == HF_CHECK_HTTP ? "http"
								    : "tcp");
			hf_pctx_err_pos(c, chk->port_pos, p,
					"'%s' is neither a port number nor a "
					"port of task '%s'",
					chk->port, task->name);
			free(p);
		}
	}
}

static void check_discovery(struct hf_pctx *c)
{
	const struct hf_spec *spec = c->spec;

	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		for (size_t t = 0; t < pod->tasks.len; t++) {
			const struct hf_spec_task *b = &pod->tasks.items[t];
			bool clash = false;

			if (!b->discovery_prefix)
				continue;
			for (size_t q = 0; q <= p && !clash; q++) {
				const struct hf_spec_pod *qp = &spec->pods.items[q];
				size_t lim = q == p ? t : qp->tasks.len;

				for (size_t u = 0; u < lim; u++) {
					const struct hf_spec_task *a =
					    &qp->tasks.items[u];

					/*
					 * Tasks of one pod that share a
					 * resource set never run together,
					 * so they may share a name.
					 */
					if (a->discovery_prefix &&
					    strcmp(a->discovery_prefix,
						   b->discovery_prefix) == 0 &&
					    (qp != pod ||
					     a->resource_set != b->resource_set))
						clash = true;
				}
			}
			if (clash) {
				char *path = hf_xasprintf(
				    "pods.%s.tasks.%s.discovery.prefix",
				    pod->name, b->name);

				hf_pctx_err_pos(c, b->discovery_pos, path,
						"discovery prefix '%s' is already "
						"used by another task",
						b->discovery_prefix);
				free(path);
			}
		}
	}
}

static void check_phase(struct hf_pctx *c, const struct hf_spec_plan *pl,
			const struct hf_spec_phase *ph)
{
	const struct hf_spec_pod *pod;
	char *base = hf_xasprintf("plans.%s.phases.%s", pl->name, ph->name);
	bool has_default = false;
	char *path;

	if (!ph->pod)
		goto out;
	pod = hf_spec_find_pod(c->spec, ph->pod);
	if (!pod) {
		/* The SDK's plan generator refuses it; so does a deploy. */
		path = hf_xasprintf("%s.pod", base);
		hf_pctx_err_pos(c, ph->pod_pos, path,
				"plan '%s' phase '%s' refers to pod '%s', which "
				"the spec does not declare",
				pl->name, ph->name, ph->pod);
		free(path);
		goto out;
	}
	for (size_t i = 0; i < ph->steps.len; i++) {
		const struct hf_spec_step_entry *se = &ph->steps.items[i];

		path = hf_xasprintf("%s.steps[%zu]", base, i);
		if (se->index == -1)
			has_default = true;
		if (se->index >= pod->count) {
			hf_pctx_err_pos(c, se->pos, path,
					"pod '%s' has %lld instance%s, so there "
					"is no instance %lld",
					pod->name, (long long)pod->count,
					pod->count == 1 ? "" : "s",
					(long long)se->index);
		}
		for (size_t g = 0; g < se->groups.len; g++) {
			const struct hf_strlist *grp = &se->groups.items[g];
			/* Each name is looked up once; pairs compare sets. */
			const struct hf_spec_task **tks =
			    hf_xcalloc(grp->len + 1, sizeof(*tks));

			for (size_t k = 0; k < grp->len; k++) {
				const struct hf_spec_task *tk =
				    hf_spec_find_task(pod, grp->items[k]);

				tks[k] = tk;
				if (!tk) {
					hf_pctx_err_pos(c, se->pos, path,
							"pod '%s' has no task "
							"'%s'",
							pod->name, grp->items[k]);
					continue;
				}
				for (size_t m = 0; m < k; m++) {
					const struct hf_spec_task *o = tks[m];

					if (o && o->resource_set ==
						     tk->resource_set &&
					    tk->resource_set !=
						(size_t)-1)
						hf_pctx_err_pos(
						    c, se->pos, path,
						    "tasks '%s' and '%s' share "
						    "resource set '%s' and "
						    "cannot run in one step",
						    o->name, tk->name,
						    pod->resource_sets
							.items[tk->resource_set]
							.name);
				}
			}
			free(tks);
		}
		free(path);
	}
	if (ph->has_steps && ph->steps.len && !has_default) {
		struct hf_buf missing = HF_BUF_INIT;
		size_t nmissing = 0;

		for (int64_t i = 0; i < pod->count; i++) {
			bool covered = false;

			for (size_t k = 0; k < ph->steps.len; k++)
				if (ph->steps.items[k].index == i)
					covered = true;
			if (!covered) {
				if (nmissing < 10)
					hf_buf_addf(&missing, "%s%lld",
						    nmissing ? ", " : "",
						    (long long)i);
				nmissing++;
			}
		}
		if (nmissing)
			hf_pctx_err_pos(c, ph->pos, base,
					"instance%s %s%s of pod '%s' %s no step "
					"and the phase has no 'default' entry",
					nmissing == 1 ? "" : "s",
					hf_buf_str(&missing),
					nmissing > 10 ? ", ..." : "", pod->name,
					nmissing == 1 ? "has" : "have");
		hf_buf_release(&missing);
	}
out:
	free(base);
}

char *hf_spec_volume_key(const char *service, const char *instance,
			 const char *owner, const struct hf_spec_volume *v)
{
	const char *vn = *v->name ? v->name : v->path;
	char *name = hf_xstrdup(vn ? vn : ""), *parts[4], *key;

	/*
	 * A volume path's '/' has always been '_' here; kept so the volumes
	 * of existing services are found where they are (check_volume_dirs
	 * refuses the clashes it could cause).
	 */
	for (char *p = name; *p; p++)
		if (*p == '/')
			*p = '_';
	parts[0] = hf_name_escape(service);
	parts[1] = hf_name_escape(instance);
	parts[2] = hf_name_escape(owner);
	parts[3] = hf_name_escape(name);
	key = hf_xasprintf("%s/%s/%s/%s", parts[0], parts[1], parts[2],
			   parts[3]);
	for (size_t i = 0; i < 4; i++)
		free(parts[i]);
	free(name);
	return key;
}

/*
 * Two volumes of one instance must not share a directory on the agent:
 * the pod's own volumes live under "pod", a resource set's under its name,
 * each named after the volume (or its path, '/' as '_').
 */
static void check_volume_dirs(struct hf_pctx *c, const struct hf_spec_pod *pod)
{
	struct hf_strlist seen = {0};
	char *base;

	for (size_t r = 0; r <= pod->resource_sets.len; r++) {
		const struct hf_spec_volume *vols;
		size_t n;
		const char *owner;

		if (r == pod->resource_sets.len) {
			vols = pod->volumes.items;
			n = pod->volumes.len;
			owner = "pod";
			base = hf_xasprintf("pods.%s", pod->name);
		} else {
			vols = pod->resource_sets.items[r].volumes.items;
			n = pod->resource_sets.items[r].volumes.len;
			owner = pod->resource_sets.items[r].name;
			base = rs_path(pod, r);
		}
		for (size_t i = 0; i < n; i++) {
			char *key, *p;

			if (!vols[i].path)
				continue;
			key = hf_spec_volume_key("", "", owner, &vols[i]);
			if (!hf_strlist_has(&seen, key)) {
				hf_strlist_push(&seen, key);
				free(key);
				continue;
			}
			p = vol_path(base, &vols[i], NULL);
			hf_pctx_err_pos(c, vols[i].pos, p,
					"volume '%s' would share its directory "
					"'%s' with another volume of pod '%s'; "
					"rename one of them",
					*vols[i].name ? vols[i].name
						      : vols[i].path,
					key + 2, pod->name);
			free(p);
			free(key);
		}
		free(base);
	}
	hf_strlist_release(&seen);
}

/*
 * Task names "<pod>-<i>-<task>" must name one task of the service: with
 * '-' in pod and task names, pod "a" task "b-1-c" and pod "a-0-b" task "c"
 * would both have a task named "a-0-b-1-c". That happens only when a pod's
 * name is another's plus "-<index>-", so only those pairs are compared.
 */
static void check_task_names(struct hf_pctx *c)
{
	const struct hf_spec *spec = c->spec;

	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *a = &spec->pods.items[p];
		size_t al = strlen(a->name);

		for (size_t q = 0; q < spec->pods.len; q++) {
			const struct hf_spec_pod *b = &spec->pods.items[q];
			const char *rest = b->name + al, *r2;
			int64_t k;

			/* b = a + "-<k>-" + rest, with instance k of a. */
			if (p == q || strncmp(b->name, a->name, al) != 0 ||
			    rest[0] != '-' || !(rest[1] >= '0' && rest[1] <= '9'))
				continue;
			k = strtoll(rest + 1, (char **)&r2, 10);
			if (*r2 != '-' || k >= a->count)
				continue;
			r2++;
			for (size_t t = 0; t < a->tasks.len; t++) {
				const struct hf_spec_task *ta = &a->tasks.items[t];
				size_t rl = strlen(r2);
				const char *tail = ta->name + rl, *u;
				int64_t j;

				/* ta = rest + "-<j>-" + a task of b. */
				if (strncmp(ta->name, r2, rl) != 0 ||
				    tail[0] != '-' ||
				    !(tail[1] >= '0' && tail[1] <= '9'))
					continue;
				j = strtoll(tail + 1, (char **)&u, 10);
				if (*u != '-' || j >= b->count ||
				    !hf_spec_find_task(b, u + 1))
					continue;
				{
					char *path = hf_xasprintf(
					    "pods.%s.tasks.%s", a->name,
					    ta->name);

					hf_pctx_err_pos(
					    c, ta->pos, path,
					    "task '%s' of instance %s-%lld "
					    "and task '%s' of instance %s-%lld "
					    "would both be named '%s-%lld-%s'; "
					    "rename one of them",
					    ta->name, a->name, (long long)k,
					    u + 1, b->name, (long long)j,
					    a->name, (long long)k, ta->name);
					free(path);
				}
			}
		}
	}
}

/* An external volume's name without its index ('/' already as "__"). */
static char *xvol_base(const struct hf_spec *spec,
		       const struct hf_spec_pod *pod,
		       const struct hf_spec_external_volume *e)
{
	struct hf_spec_external_volume copy = *e;

	copy.opts.shared = true;
	return hf_spec_external_volume_name(spec->name ? spec->name : "",
					    pod->name, 0, &copy);
}

/* Whether name is base "-" and a number: instance index's volume of base. */
static bool is_indexed(const char *name, const char *base)
{
	size_t n = strlen(base);

	if (strncmp(name, base, n) != 0 || name[n] != '-' || !name[n + 1])
		return false;
	for (const char *p = name + n + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/*
 * External volume names are cluster-wide (Portworx's are), so two volumes
 * of one spec must never get one name: two pod types with one
 * volume-name, two volumes of a pod without one, or a shared volume named
 * like another's instance volume. Only volumes holdfast serves count.
 */
struct xv {
	const struct hf_spec_pod *pod;
	const struct hf_spec_external_volume *e;
	char *base;
};

static void check_external_volume_names(struct hf_pctx *c)
{
	const struct hf_spec *spec = c->spec;
	HF_VEC(struct xv) all = {0};

	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		for (size_t i = 0; pod->name && i < pod->external_volumes.len;
		     i++) {
			const struct hf_spec_external_volume *e =
			    &pod->external_volumes.items[i];
			char *base;

			if (!hf_spec_volume_driver_ok(e->driver_name))
				continue;
			base = xvol_base(spec, pod, e);
			/* A volume-name with "__" was reported at parse. */
			if (!base)
				continue;
			for (size_t k = 0; k < all.len; k++) {
				const struct xv *o = &all.items[k];
				const char *clash = NULL;
				char *path, *ex = NULL;
				struct hf_pos at, first;

				if (strcmp(o->base, base) == 0 &&
				    o->e->opts.shared == e->opts.shared)
					clash = ex = e->opts.shared
						? hf_xstrdup(base)
						: hf_xasprintf("%s-0", base);
				else if (e->opts.shared && !o->e->opts.shared &&
					 is_indexed(base, o->base))
					clash = base;
				else if (!e->opts.shared && o->e->opts.shared &&
					 is_indexed(o->base, base))
					clash = o->base;
				if (!clash)
					continue;
				at = e->volume_name ? e->name_pos : e->pos;
				first = o->e->volume_name ? o->e->name_pos
							  : o->e->pos;
				path = hf_xasprintf(
				    "pods.%s.external-volumes.%s%s", pod->name,
				    e->name,
				    e->volume_name ? ".volume-name" : "");
				hf_pctx_err_pos(
				    c, at, path,
				    "external volume '%s' of pod '%s' and "
				    "external volume '%s' of pod '%s' (line "
				    "%d:%d) would both be named '%s'; volume "
				    "names are cluster-wide: give %s its own "
				    "volume-name",
				    e->name, pod->name, o->e->name,
				    o->pod->name, first.line, first.col, clash,
				    pod == o->pod ? "one" : "each");
				free(ex);
				free(path);
				break;
			}
			*HF_VEC_PUSH(&all) = (struct xv){pod, e, base};
		}
	}
	for (size_t k = 0; k < all.len; k++)
		free(all.items[k].base);
	HF_VEC_FREE(&all);
}

/* Pod instances a spec may ask for in all. */
#define HF_SPEC_MAX_INSTANCES 100000

void hf_spec_validate(struct hf_pctx *c)
{
	struct hf_spec *spec = c->spec;
	int64_t total = 0;

	for (size_t p = 0; p < spec->pods.len; p++) {
		struct hf_spec_pod *pod = &spec->pods.items[p];

		total += pod->count;
		if (total > HF_SPEC_MAX_INSTANCES) {
			char *path = hf_xasprintf("pods.%s.count", pod->name);

			hf_pctx_err_pos(c, pod->pos, path,
					"the spec asks for more than %d pod "
					"instances in all",
					HF_SPEC_MAX_INSTANCES);
			free(path);
			break;
		}
		/* An explicit set may not take an implicit set's name. */
		for (size_t r = 0; r < pod->resource_sets.len; r++) {
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[r];

			for (size_t q = 0; !rs->implicit && q < pod->resource_sets.len;
			     q++) {
				const struct hf_spec_resource_set *im =
				    &pod->resource_sets.items[q];
				char *path;

				if (!im->implicit || strcmp(im->name, rs->name))
					continue;
				path = hf_xasprintf("pods.%s.resource-sets.%s",
						    pod->name, rs->name);
				hf_pctx_err_pos(c, rs->pos, path,
						"resource set name '%s' is "
						"reserved for the resources of "
						"a task declared without a "
						"resource-set",
						rs->name);
				free(path);
			}
		}
	}

	for (size_t p = 0; p < spec->pods.len; p++) {
		struct hf_spec_pod *pod = &spec->pods.items[p];

		resolve_resource_sets(c, pod);
		check_volumes(c, pod);
		check_volume_dirs(c, pod);
		check_task_refs(c, pod);
		if (pod->has_hooks) {
			const struct hf_spec_task *t =
			    pod->hook_task
				? hf_spec_find_task(pod, pod->hook_task)
				: NULL;

			for (size_t k = 0; !pod->hook_task && !t &&
					   k < pod->tasks.len;
			     k++)
				if (pod->tasks.items[k].goal == HF_GOAL_RUNNING)
					t = &pod->tasks.items[k];
			if (!t || t->goal != HF_GOAL_RUNNING) {
				char *path = hf_xasprintf(
				    "pods.%s.snapshot-hooks.task", pod->name);

				hf_pctx_err_pos(
				    c, pod->hooks_pos, path,
				    "snapshot hooks run in a task with goal "
				    "RUNNING: %s%s%s",
				    pod->hook_task ? "'" : "",
				    pod->hook_task ? pod->hook_task
						   : "the pod has none",
				    pod->hook_task
					? (t ? "' is not one"
					     : "' is not a task of this pod")
					: "");
				free(path);
			} else if (!pod->hook_task) {
				pod->hook_task = hf_xstrdup(t->name);
			}
			if (pod->hook_timeout <= 0)
				pod->hook_timeout = 60;
		}
		if (pod->autoscale)
			check_autoscale(c, pod);
		if (pod->bk_to) {
			bool served = false;

			for (size_t k = 0; k < pod->external_volumes.len; k++)
				served = served ||
					 pod->external_volumes.items[k].has_opts;
			if (!served) {
				char *path = hf_xasprintf(
				    "pods.%s.backup-schedule", pod->name);

				hf_pctx_err_pos(
				    c, pod->bk_pos, path,
				    "a backup schedule backs up the pod's "
				    "external volumes served by holdfast "
				    "(driver-name holdfast or pxd): pod '%s' "
				    "has none",
				    pod->name);
				free(path);
			}
		}
		for (size_t r = 0; r < pod->replace_tasks.len; r++) {
			const struct hf_spec_task *t =
			    hf_spec_find_task(pod, pod->replace_tasks.items[r]);

			if (!t || t->goal == HF_GOAL_RUNNING) {
				char *path = hf_xasprintf("pods.%s.replace.tasks",
							  pod->name);

				hf_pctx_err_pos(c, pod->pos, path,
						"replace task '%s' %s",
						pod->replace_tasks.items[r],
						t ? "must have goal ONCE or "
						    "FINISH"
						  : "is not a task of this pod");
				free(path);
			}
		}
	}
	check_ports(c);
	check_discovery(c);
	check_task_names(c);
	check_external_volume_names(c);
	for (size_t i = 0; i < spec->plans.len; i++) {
		const struct hf_spec_plan *pl = &spec->plans.items[i];

		for (size_t k = 0; k < pl->phases.len; k++)
			check_phase(c, pl, &pl->phases.items[k]);
	}
}

/* ------------------------------------------------------------------ */
/* Lookups, names, environment                                          */

struct hf_spec_pod *hf_spec_find_pod(const struct hf_spec *spec,
				     const char *name)
{
	for (size_t i = 0; i < spec->pods.len; i++)
		if (spec->pods.items[i].name &&
		    strcmp(spec->pods.items[i].name, name) == 0)
			return &spec->pods.items[i];
	return NULL;
}

bool hf_spec_secure_volume(const struct hf_spec *spec, const char **pod,
			   const char **vol)
{
	for (size_t i = 0; spec && i < spec->pods.len; i++) {
		const struct hf_spec_pod *p = &spec->pods.items[i];

		for (size_t k = 0; k < p->external_volumes.len; k++) {
			const struct hf_spec_external_volume *e =
			    &p->external_volumes.items[k];

			if (!e->has_opts || !e->opts.secure)
				continue;
			*pod = p->name ? p->name : "";
			*vol = e->name ? e->name : "";
			return true;
		}
	}
	return false;
}

bool hf_spec_next_secure(const struct hf_spec *spec, size_t *at,
			 const char **pod, const char **vol, const char **key)
{
	size_t n = 0;

	for (size_t i = 0; spec && i < spec->pods.len; i++) {
		const struct hf_spec_pod *p = &spec->pods.items[i];

		for (size_t k = 0; k < p->external_volumes.len; k++) {
			const struct hf_spec_external_volume *e =
			    &p->external_volumes.items[k];

			if (!e->has_opts || !e->opts.secure || n++ < *at)
				continue;
			*at = n;
			*pod = p->name ? p->name : "";
			*vol = e->name ? e->name : "";
			*key = e->opts.secret_key;
			return true;
		}
	}
	return false;
}

struct hf_spec_task *hf_spec_find_task(const struct hf_spec_pod *pod,
				       const char *name)
{
	for (size_t i = 0; i < pod->tasks.len; i++)
		if (pod->tasks.items[i].name &&
		    strcmp(pod->tasks.items[i].name, name) == 0)
			return &pod->tasks.items[i];
	return NULL;
}

struct hf_spec_plan *hf_spec_find_plan(const struct hf_spec *spec,
				       const char *name)
{
	for (size_t i = 0; i < spec->plans.len; i++)
		if (strcmp(spec->plans.items[i].name, name) == 0)
			return &spec->plans.items[i];
	return NULL;
}

const char *hf_goal_name(enum hf_goal g)
{
	switch (g) {
	case HF_GOAL_RUNNING:
		return "RUNNING";
	case HF_GOAL_FINISH:
		return "FINISH";
	case HF_GOAL_ONCE:
		return "ONCE";
	}
	return "?";
}

const char *hf_strategy_name(enum hf_strategy s)
{
	switch (s) {
	case HF_STRATEGY_SERIAL:
		return "serial";
	case HF_STRATEGY_PARALLEL:
		return "parallel";
	case HF_STRATEGY_SERIAL_CANARY:
		return "serial-canary";
	case HF_STRATEGY_PARALLEL_CANARY:
		return "parallel-canary";
	}
	return "?";
}

const char *hf_volume_type_name(enum hf_volume_type t)
{
	return t == HF_VOLUME_MOUNT ? "MOUNT" : "ROOT";
}

char *hf_spec_port_env_key(const struct hf_spec_port *p)
{
	struct hf_buf b = HF_BUF_INIT;

	if (p->env_key)
		return hf_xstrdup(p->env_key);
	hf_buf_adds(&b, "PORT_");
	for (const char *c = p->name; *c; c++) {
		char ch = *c;

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (ch == '-')
			ch = '_';
		hf_buf_addc(&b, ch);
	}
	return hf_buf_detach(&b);
}

/* TASKCFG_<POD>_ prefix: pod name upper-cased with '-' as '_'. */
static char *taskcfg_prefix(const char *pod)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_adds(&b, "TASKCFG_");
	for (const char *p = pod; *p; p++) {
		char ch = *p;

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (ch == '-')
			ch = '_';
		hf_buf_addc(&b, ch);
	}
	hf_buf_addc(&b, '_');
	return hf_buf_detach(&b);
}

void hf_spec_task_env(const struct hf_spec *spec, const struct hf_spec_pod *pod,
		      const struct hf_spec_task *task, struct hf_kvlist *env)
{
	static const char all[] = "TASKCFG_ALL_";
	char *mine = taskcfg_prefix(pod->name);
	size_t ml = strlen(mine);

	for (size_t i = 0; i < spec->options.len; i++) {
		const struct hf_kv *kv = &spec->options.items[i];

		if (hf_str_has_prefix(kv->key, all) && kv->key[sizeof(all) - 1])
			hf_kvlist_set(env, kv->key + sizeof(all) - 1, kv->value);
	}
	for (size_t i = 0; i < spec->options.len; i++) {
		const struct hf_kv *kv = &spec->options.items[i];

		if (hf_str_has_prefix(kv->key, mine) && kv->key[ml])
			hf_kvlist_set(env, kv->key + ml, kv->value);
	}
	hf_kvlist_copy(env, &task->env);
	free(mine);
}

/* ------------------------------------------------------------------ */
/* Config templates against the environment their task will have       */

/*
 * What every launch adds to a task's environment: the server's launch
 * order (src/server/orders.c: hf_orders_launch) and the agent
 * (src/agent/state.c: derive_env). docs/spec.md lists them; a system test
 * renders a template that uses each one at launch.
 */
static const char *const launch_env[] = {
	"TASK_NAME",	   "POD_INSTANCE_INDEX", "POD_NAME",
	"FRAMEWORK_NAME",  "SERVICE_NAME",	 "MESOS_CONTAINER_IP",
	"MESOS_SANDBOX",   "HOLDFAST_SANDBOX",	 "PATH",
	"HOME",
};

/* What a replacement instance's tasks also get (pod `replace:`). */
static const char *const replace_env[] = {
	"REPLACED_NODE", "REPLACED_ADDRESS", "REPLACED_INSTANCE",
};

/*
 * What the SDK's scheduler or DC/OS gave tasks and holdfast does not:
 * named in messages so a user knows it is not a typo.
 */
static const char *const sdk_only_env[] = {
	"FRAMEWORK_HOST",	  "FRAMEWORK_VIP_HOST", "SERVICE_ZK_ROOT",
	"SCHEDULER_API_HOSTNAME", "SCHEDULER_API_PORT", "STATSD_UDP_HOST",
	"STATSD_UDP_PORT",	  "MESOS_EXECUTOR_ID",	"MESOS_FRAMEWORK_ID",
	"MESOS_AGENT_ENDPOINT",	  "MESOS_ALLOCATION_ROLE", "DCOS_SPACE",
	"LIBPROCESS_IP",	  "TASK_ID",
};

/* One variable one template lacks, with every task it lacks it in. */
struct missing_var {
	const char *source; /* template file */
	char *name;
	int line, col;
	char *path; /* the first task's config entry */
	struct hf_strlist tasks; /* "pod.task" */
	struct hf_strlist pods;
	struct hf_strlist custom_plans; /* plans that alone launch them */
	bool by_deploy; /* launched without plan parameters */
};

/* How each task of a pod is launched, from the built plans. */
struct task_launch {
	bool by_deploy; /* deploy, update, decommission or replacement */
	struct hf_strlist custom_plans;
};

static void mark_launches(const struct hf_spec *spec,
			  const struct hf_spec_pod *pod,
			  const struct hf_plan_defs *defs,
			  struct task_launch *tl)
{
	for (size_t t = 0; t < pod->tasks.len; t++) {
		const char *name = pod->tasks.items[t].name;

		if (strcmp(name, HF_DECOMMISSION_TASK) == 0 ||
		    hf_strlist_has(&pod->replace_tasks, name))
			tl[t].by_deploy = true;
	}
	for (size_t i = 0; i < defs->len; i++) {
		const struct hf_plan_def *p = &defs->items[i];

		for (size_t k = 0; k < p->phases.len; k++) {
			const struct hf_plan_phase_def *ph = &p->phases.items[k];

			if (strcmp(ph->pod, pod->name) != 0)
				continue;
			for (size_t st = 0; st < ph->steps.len; st++) {
				const struct hf_strlist *tk =
				    &ph->steps.items[st].tasks;

				for (size_t t = 0; t < pod->tasks.len; t++) {
					if (!hf_strlist_has(
						tk, pod->tasks.items[t].name))
						continue;
					if (p->kind != HF_PLAN_CUSTOM)
						tl[t].by_deploy = true;
					else if (!hf_strlist_has(
						     &tl[t].custom_plans,
						     p->name))
						hf_strlist_push(
						    &tl[t].custom_plans,
						    p->name);
				}
			}
		}
	}
	(void)spec;
}

/* The environment a task will have, as far as a template can tell. */
static void model_env(const struct hf_spec *spec, const struct hf_spec_pod *pod,
		      const struct hf_spec_task *task, struct hf_kvlist *env)
{
	const struct hf_spec_resource_set *rs =
	    &pod->resource_sets.items[task->resource_set];

	/* Placeholders are non-empty, so sections on them render. */
	for (size_t i = 0; i < HF_ARRAY_LEN(launch_env); i++)
		hf_kvlist_set(env, launch_env[i], "1");
	if (hf_strlist_has(&pod->replace_tasks, task->name))
		for (size_t i = 0; i < HF_ARRAY_LEN(replace_env); i++)
			hf_kvlist_set(env, replace_env[i], "1");
	for (size_t p = 0; p < rs->ports.len; p++) {
		char *key = hf_spec_port_env_key(&rs->ports.items[p]);

		hf_kvlist_set(env, key, "1");
		free(key);
	}
	hf_spec_task_env(spec, pod, task, env);
}

static struct missing_var *find_missing(void *vec_v, const char *source,
					const char *name)
{
	HF_VEC(struct missing_var) *vec = vec_v;

	for (size_t i = 0; i < vec->len; i++)
		if (strcmp(vec->items[i].source, source) == 0 &&
		    strcmp(vec->items[i].name, name) == 0)
			return &vec->items[i];
	return NULL;
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static void report_missing(struct hf_pctx *c, const struct missing_var *m)
{
	struct hf_buf b = HF_BUF_INIT;
	bool err = m->by_deploy && !c->opts->allow_missing && !c->opts->stored;

	hf_buf_addf(&b, "variable %s is not in the environment of task%s ",
		    m->name, m->tasks.len == 1 ? "" : "s");
	for (size_t i = 0; i < m->tasks.len && i < 4; i++)
		hf_buf_addf(&b, "%s%s", i ? ", " : "", m->tasks.items[i]);
	if (m->tasks.len > 4)
		hf_buf_addf(&b, " and %zu more", m->tasks.len - 4);
	if (in_list(sdk_only_env, HF_ARRAY_LEN(sdk_only_env), m->name))
		hf_buf_addf(&b, " (the SDK's scheduler set %s; holdfast does "
				"not, see docs/spec.md)",
			    m->name);
	hf_buf_addf(&b, "; give it with -o TASKCFG_ALL_%s=VALUE", m->name);
	if (m->pods.len == 1) {
		char *pre = taskcfg_prefix(m->pods.items[0]);

		hf_buf_addf(&b, " (or -o %s%s=VALUE for pod '%s' only)", pre,
			    m->name, m->pods.items[0]);
		free(pre);
	}
	if (!m->by_deploy && m->custom_plans.len)
		hf_buf_addf(&b, ", or start plan '%s' with -p %s=VALUE",
			    m->custom_plans.items[0], m->name);
	hf_diags_add(c->diags, err ? HF_DIAG_ERROR : HF_DIAG_WARNING, m->source,
		     m->line, m->col, m->path, "%s", hf_buf_str(&b));
	hf_buf_release(&b);
}

void hf_spec_check_config_vars(struct hf_pctx *c)
{
	const struct hf_spec *spec = c->spec;
	HF_VEC(struct missing_var) missing = {0};
	struct hf_plan_defs defs = {0};

	hf_spec_build_plans(spec, &defs);
	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];
		struct task_launch *tl =
		    hf_xcalloc(pod->tasks.len + 1, sizeof(*tl));

		mark_launches(spec, pod, &defs, tl);
		for (size_t t = 0; t < pod->tasks.len; t++) {
			const struct hf_spec_task *task = &pod->tasks.items[t];
			struct hf_kvlist env = {0};

			if (task->resource_set >= pod->resource_sets.len ||
			    task->configs.len == 0 ||
			    (!tl[t].by_deploy && tl[t].custom_plans.len == 0))
				continue; /* never launched */
			model_env(spec, pod, task, &env);
			for (size_t k = 0; k < task->configs.len; k++) {
				const struct hf_spec_config *cf =
				    &task->configs.items[k];
				const char *src = cf->source ? cf->source
							     : cf->template_path;
				struct hf_mustache_uses uses = {0};
				struct hf_diags d = {0};
				char *out = NULL;

				if (!cf->content)
					continue;
				hf_mustache_render_missing(
				    cf->content, strlen(cf->content), &env, src,
				    &out, NULL, &uses, &d);
				free(out);
				/* Template syntax: the agent would fail too. */
				if (d.len) {
					char *cp = hf_xasprintf(
					    "pods.%s.tasks.%s.configs.%s",
					    pod->name, task->name, cf->name);

					for (size_t i = 0; i < d.len; i++)
						hf_diags_add(
						    c->diags, d.items[i].level,
						    d.items[i].file,
						    d.items[i].line,
						    d.items[i].col, cp, "%s",
						    d.items[i].msg);
					free(cp);
				}
				hf_diags_release(&d);
				for (size_t i = 0; i < uses.len; i++) {
					const struct hf_mustache_use *u =
					    &uses.items[i];
					struct missing_var *m =
					    find_missing(&missing, src, u->name);
					char *tn = hf_xasprintf("%s.%s", pod->name,
								task->name);

					if (!m) {
						m = HF_VEC_PUSH(&missing);
						m->source = src;
						m->name = hf_xstrdup(u->name);
						m->line = u->line;
						m->col = u->col;
						m->path = hf_xasprintf(
						    "pods.%s.tasks.%s.configs.%s",
						    pod->name, task->name,
						    cf->name);
					}
					if (!hf_strlist_has(&m->tasks, tn))
						hf_strlist_push(&m->tasks, tn);
					if (!hf_strlist_has(&m->pods, pod->name))
						hf_strlist_push(&m->pods,
								pod->name);
					if (tl[t].by_deploy)
						m->by_deploy = true;
					for (size_t q = 0;
					     q < tl[t].custom_plans.len; q++)
						if (!hf_strlist_has(
							&m->custom_plans,
							tl[t].custom_plans.items[q]))
							hf_strlist_push(
							    &m->custom_plans,
							    tl[t].custom_plans
								.items[q]);
					free(tn);
				}
				hf_mustache_uses_release(&uses);
			}
			hf_kvlist_release(&env);
		}
		for (size_t t = 0; t < pod->tasks.len; t++)
			hf_strlist_release(&tl[t].custom_plans);
		free(tl);
	}
	for (size_t i = 0; i < missing.len; i++) {
		struct missing_var *m = &missing.items[i];

		report_missing(c, m);
		free(m->name);
		free(m->path);
		hf_strlist_release(&m->tasks);
		hf_strlist_release(&m->pods);
		hf_strlist_release(&m->custom_plans);
	}
	HF_VEC_FREE(&missing);
	hf_plan_defs_release(&defs);
}

size_t hf_spec_check_supported(const struct hf_spec *spec,
			       struct hf_diags *diags)
{
	for (size_t i = 0; i < spec->unsupported.len; i++) {
		const struct hf_spec_feature_use *u = &spec->unsupported.items[i];

		if (u->msg)
			hf_diags_add(diags, HF_DIAG_ERROR, spec->file,
				     u->pos.line, u->pos.col, u->path, "%s",
				     u->msg);
		else
			hf_diags_add(diags, HF_DIAG_ERROR, spec->file,
				     u->pos.line, u->pos.col, u->path,
				     "%s: not supported yet by holdfast, so "
				     "this spec cannot be deployed",
				     u->feature);
	}
	return spec->unsupported.len;
}

/* ------------------------------------------------------------------ */
/* Freeing                                                              */

static void volumes_free(struct hf_spec_volume *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].path);
		hf_strlist_release(&v[i].profiles);
	}
	free(v);
}

static void rs_release(struct hf_spec_resource_set *rs)
{
	free(rs->name);
	for (size_t i = 0; i < rs->ports.len; i++) {
		struct hf_spec_port *p = &rs->ports.items[i];

		free(p->name);
		free(p->env_key);
		free(p->vip_prefix);
		free(p->vip_protocol);
		HF_VEC_FREE(&p->ranges);
	}
	HF_VEC_FREE(&rs->ports);
	volumes_free(rs->volumes.items, rs->volumes.len);
}

static void check_release(struct hf_spec_check *c)
{
	free(c->cmd);
	free(c->port);
	free(c->http_path);
}

static void task_release(struct hf_spec_task *t)
{
	free(t->name);
	free(t->cmd);
	hf_kvlist_release(&t->env);
	for (size_t i = 0; i < t->configs.len; i++) {
		free(t->configs.items[i].name);
		free(t->configs.items[i].template_path);
		free(t->configs.items[i].dest);
		free(t->configs.items[i].content);
		free(t->configs.items[i].source);
	}
	HF_VEC_FREE(&t->configs);
	free(t->resource_set_name);
	check_release(&t->health);
	check_release(&t->readiness);
	free(t->discovery_prefix);
	free(t->discovery_visibility);
	hf_kvlist_release(&t->labels);
	for (size_t i = 0; i < t->tls.len; i++) {
		free(t->tls.items[i].name);
		free(t->tls.items[i].type);
	}
	HF_VEC_FREE(&t->tls);
	free(t->ipc_mode);
}

static void pod_release(struct hf_spec_pod *p)
{
	free(p->name);
	free(p->placement);
	for (size_t i = 0; i < p->constraints.len; i++) {
		free(p->constraints.items[i].field);
		free(p->constraints.items[i].op);
		free(p->constraints.items[i].arg);
	}
	HF_VEC_FREE(&p->constraints);
	hf_strlist_release(&p->uris);
	hf_strlist_release(&p->replace_tasks);
	free(p->hook_task);
	free(p->hook_before);
	free(p->hook_after);
	free(p->bk_to);
	free(p->bk_cred);
	hf_spec_autoscale_free(p->autoscale);
	volumes_free(p->volumes.items, p->volumes.len);
	for (size_t i = 0; i < p->resource_sets.len; i++)
		rs_release(&p->resource_sets.items[i]);
	HF_VEC_FREE(&p->resource_sets);
	for (size_t i = 0; i < p->rlimits.len; i++)
		free(p->rlimits.items[i].name);
	HF_VEC_FREE(&p->rlimits);
	free(p->pre_reserved_role);
	free(p->image);
	free(p->user);
	hf_strlist_release(&p->capabilities);
	for (size_t i = 0; i < p->networks.len; i++) {
		free(p->networks.items[i].name);
		hf_kvlist_release(&p->networks.items[i].labels);
		HF_VEC_FREE(&p->networks.items[i].host_ports);
		HF_VEC_FREE(&p->networks.items[i].container_ports);
	}
	HF_VEC_FREE(&p->networks);
	for (size_t i = 0; i < p->secrets.len; i++) {
		free(p->secrets.items[i].name);
		free(p->secrets.items[i].secret);
		free(p->secrets.items[i].env_key);
		free(p->secrets.items[i].file);
	}
	HF_VEC_FREE(&p->secrets);
	for (size_t i = 0; i < p->host_volumes.len; i++) {
		free(p->host_volumes.items[i].name);
		free(p->host_volumes.items[i].host_path);
		free(p->host_volumes.items[i].container_path);
		free(p->host_volumes.items[i].mode);
	}
	HF_VEC_FREE(&p->host_volumes);
	for (size_t i = 0; i < p->external_volumes.len; i++) {
		struct hf_spec_external_volume *e = &p->external_volumes.items[i];

		free(e->name);
		free(e->type);
		free(e->container_path);
		free(e->driver_name);
		free(e->driver_options);
		free(e->volume_name);
		free(e->volume_mode);
	}
	HF_VEC_FREE(&p->external_volumes);
	free(p->ipc_mode);
	free(p->seccomp_profile_name);
	for (size_t i = 0; i < p->tasks.len; i++)
		task_release(&p->tasks.items[i]);
	HF_VEC_FREE(&p->tasks);
}

void hf_spec_autoscale_free(struct hf_spec_autoscale *a)
{
	if (!a)
		return;
	free(a->command);
	free(a->task);
	free(a->url);
	free(a->json_path);
	free(a->query);
	free(a->port);
	free(a->path);
	free(a->sample);
	free(a->aggregate);
	free(a);
}

void hf_spec_free(struct hf_spec *spec)
{
	if (!spec)
		return;
	free(spec->name);
	free(spec->web_url);
	free(spec->scheduler_user);
	free(spec->scheduler_principal);
	hf_kvlist_release(&spec->scheduler_other);
	for (size_t i = 0; i < spec->pods.len; i++)
		pod_release(&spec->pods.items[i]);
	HF_VEC_FREE(&spec->pods);
	for (size_t i = 0; i < spec->plans.len; i++) {
		struct hf_spec_plan *pl = &spec->plans.items[i];

		free(pl->name);
		for (size_t k = 0; k < pl->phases.len; k++) {
			struct hf_spec_phase *ph = &pl->phases.items[k];

			free(ph->name);
			free(ph->pod);
			for (size_t e = 0; e < ph->steps.len; e++) {
				struct hf_spec_step_entry *se =
				    &ph->steps.items[e];

				for (size_t g = 0; g < se->groups.len; g++)
					hf_strlist_release(&se->groups.items[g]);
				HF_VEC_FREE(&se->groups);
			}
			HF_VEC_FREE(&ph->steps);
		}
		HF_VEC_FREE(&pl->phases);
	}
	HF_VEC_FREE(&spec->plans);
	for (size_t i = 0; i < spec->unsupported.len; i++) {
		free(spec->unsupported.items[i].feature);
		free(spec->unsupported.items[i].msg);
		free(spec->unsupported.items[i].path);
	}
	HF_VEC_FREE(&spec->unsupported);
	hf_kvlist_release(&spec->options);
	free(spec->file);
	free(spec);
}
