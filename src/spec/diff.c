/*
 * diff.c - judges a configuration change: which pod instances relaunch,
 * which are added or removed, and which changes must be refused because
 * they would lose data or identity (volumes, users, roles, shrinking
 * without allow-decommission).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "spec/internal.h"

#define MAX_CHANGE_LINES 40


static const char *fs_name(int fs)
{
	return fs == HF_FS_XFS ? "xfs" : fs == HF_FS_EXT4 ? "ext4" : "auto";
}
static char *json_text(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS |
				    JSON_ENCODE_ANY);

	return s ? s : hf_xstrdup("?");
}

/* Shortened JSON text of a value for a change line. */
static char *short_text(const json_t *j)
{
	char *s = json_text(j);

	if (strlen(s) > 80) {
		size_t cut = 77;

		/* Never split a UTF-8 character. */
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		strcpy(s + cut, "...");
	}
	return s;
}

/* A named element's name; unnamed volumes (`volume:`) go by their path. */
static const char *elem_name(const json_t *e)
{
	const char *n;

	if (!json_is_object(e))
		return NULL;
	n = json_string_value(json_object_get(e, "name"));
	if (n && !*n && json_is_string(json_object_get(e, "path")))
		n = json_string_value(json_object_get(e, "path"));
	return n;
}

/* Arrays whose elements are named objects are compared by name. */
static bool named_array(const json_t *a)
{
	size_t i;
	json_t *e;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return false;
	json_array_foreach(a, i, e) if (!elem_name(e)) return false;
	return true;
}

static const json_t *find_named(const json_t *a, const char *name)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e)
	{
		const char *n = elem_name(e);

		if (n && strcmp(n, name) == 0)
			return e;
	}
	return NULL;
}

bool hf_spec_secret_name(const char *k)
{
	static const char *const words[] = {"PASSWORD", "PASSWD", "SECRET",
					    "TOKEN", "CREDENTIAL", "PRIVATE",
					    "_KEY", "APIKEY"};
	char up[256];
	size_t i;

	for (i = 0; k[i] && i < sizeof(up) - 1; i++)
		up[i] = (char)((k[i] >= 'a' && k[i] <= 'z') ? k[i] - 32 : k[i]);
	up[i] = '\0';
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
		if (strstr(up, words[w]))
			return true;
	return false;
}

/* Replaces, in place, string values of secret-named keys by "(hidden)". */
static void hide_secrets(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			if (json_is_string(v) && hf_spec_secret_name(k))
				json_object_set_new(j, k, json_string("(hidden)"));
			else
				hide_secrets(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) hide_secrets(v);
	}
}

/* A value's text for a change line, secrets hidden. */
static char *value_text(const json_t *v, bool secret)
{
	json_t *copy;
	char *s;

	if (!v)
		return hf_xstrdup("(none)");
	if (secret && !json_is_object(v) && !json_is_array(v))
		return hf_xstrdup("(hidden)");
	copy = json_deep_copy(v);
	hide_secrets(copy);
	s = short_text(copy);
	json_decref(copy);
	return s;
}

static void add_line(struct hf_strlist *out, const char *path, const json_t *a,
		     const json_t *b)
{
	const char *leaf = strrchr(path, '.');
	bool secret = hf_spec_secret_name(leaf ? leaf + 1 : path);
	char *sa, *sb, *line;

	if (out->len == MAX_CHANGE_LINES) {
		hf_strlist_push(out, "... (more changes)");
		return;
	}
	if (out->len > MAX_CHANGE_LINES)
		return;
	sa = value_text(a, secret);
	sb = value_text(b, secret);
	line = hf_xasprintf("%s: %s -> %s", *path ? path : "(pod)", sa, sb);
	hf_strlist_push(out, line);
	free(line);
	free(sa);
	free(sb);
}

static void json_diff(const char *path, const json_t *a, const json_t *b,
		      struct hf_strlist *out)
{
	if (a && b && json_equal(a, b))
		return;
	if (json_is_object(a) && json_is_object(b)) {
		const char *k;
		json_t *v;

		json_object_foreach((json_t *)a, k, v)
		{
			char *p = hf_xasprintf("%s%s%s", path, *path ? "." : "",
					       k);

			json_diff(p, v, json_object_get(b, k), out);
			free(p);
		}
		json_object_foreach((json_t *)b, k, v)
		{
			if (json_object_get(a, k))
				continue;
			char *p = hf_xasprintf("%s%s%s", path, *path ? "." : "",
					       k);

			json_diff(p, NULL, v, out);
			free(p);
		}
		return;
	}
	if (named_array(a) && named_array(b)) {
		size_t i;
		json_t *e;

		json_array_foreach(a, i, e)
		{
			char *p = hf_xasprintf("%s.%s", path, elem_name(e));

			json_diff(p, e, find_named(b, elem_name(e)), out);
			free(p);
		}
		json_array_foreach(b, i, e)
		{
			if (find_named(a, elem_name(e)))
				continue;
			char *p = hf_xasprintf("%s.%s", path, elem_name(e));

			json_diff(p, NULL, e, out);
			free(p);
		}
		return;
	}
	add_line(out, path, a, b);
}

static void refuse(struct hf_spec_diff *d, const char *fmt, ...)
    HF_PRINTF(2, 3);
static void refuse(struct hf_spec_diff *d, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_strlist_push(&d->refusals, hf_buf_str(&b));
	hf_buf_release(&b);
}

static const char *or_none(const char *s)
{
	return s ? s : "(none)";
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Where a volume lives, for messages: "pod volume" or "task server". */
static char *rs_owner(const struct hf_spec_pod *pod,
		      const struct hf_spec_resource_set *rs)
{
	if (!rs)
		return hf_xstrdup("pod-level");
	if (rs->implicit)
		return hf_xasprintf("task %.*s", (int)(strlen(rs->name) -
						      strlen("-resource-set")),
				    rs->name);
	return hf_xasprintf("resource set %s", rs->name);
}

static const char *vol_label(const struct hf_spec_volume *v)
{
	return *v->name ? v->name : v->path;
}

static void compare_volume_lists(struct hf_spec_diff *d,
				 const struct hf_spec_pod *pod,
				 const struct hf_spec_resource_set *ors,
				 const struct hf_spec_resource_set *nrs,
				 const struct hf_spec_volume *ov, size_t on,
				 const struct hf_spec_volume *nv, size_t nn)
{
	char *owner = rs_owner(pod, nrs ? nrs : ors);

	for (size_t i = 0; i < on; i++) {
		const struct hf_spec_volume *a = &ov[i], *b = NULL;

		for (size_t k = 0; k < nn; k++)
			if (strcmp(nv[k].name, a->name) == 0)
				b = &nv[k];
		if (!b) {
			refuse(d,
			       "pod '%s': volume '%s' (%s) cannot be removed: "
			       "volumes cannot change",
			       pod->name, vol_label(a), owner);
			continue;
		}
		if (!same_str(a->path, b->path))
			refuse(d,
			       "pod '%s': volume '%s' (%s) path cannot change "
			       "from '%s' to '%s'",
			       pod->name, vol_label(a), owner, or_none(a->path),
			       or_none(b->path));
		if (a->type != b->type)
			refuse(d,
			       "pod '%s': volume '%s' (%s) type cannot change "
			       "from %s to %s",
			       pod->name, vol_label(a), owner,
			       hf_volume_type_name(a->type),
			       hf_volume_type_name(b->type));
		if (a->size_mb != b->size_mb)
			refuse(d,
			       "pod '%s': volume '%s' (%s) size cannot change "
			       "from %lld MB to %lld MB",
			       pod->name, vol_label(a), owner,
			       (long long)a->size_mb, (long long)b->size_mb);
	}
	for (size_t k = 0; k < nn; k++) {
		bool found = false;

		for (size_t i = 0; i < on; i++)
			if (strcmp(nv[k].name, ov[i].name) == 0)
				found = true;
		if (!found)
			refuse(d,
			       "pod '%s': volume '%s' (%s) cannot be added to "
			       "existing instances: volumes cannot change",
			       pod->name, vol_label(&nv[k]), owner);
	}
	free(owner);
}

static const struct hf_spec_resource_set *
find_rs(const struct hf_spec_pod *pod, const char *name)
{
	for (size_t i = 0; i < pod->resource_sets.len; i++)
		if (strcmp(pod->resource_sets.items[i].name, name) == 0)
			return &pod->resource_sets.items[i];
	return NULL;
}

static void compare_volumes(struct hf_spec_diff *d,
			    const struct hf_spec_pod *op,
			    const struct hf_spec_pod *np)
{
	compare_volume_lists(d, np, NULL, NULL, op->volumes.items,
			     op->volumes.len, np->volumes.items,
			     np->volumes.len);
	for (size_t i = 0; i < op->resource_sets.len; i++) {
		const struct hf_spec_resource_set *a = &op->resource_sets.items[i];
		const struct hf_spec_resource_set *b = find_rs(np, a->name);

		compare_volume_lists(d, np, a, b, a->volumes.items,
				     a->volumes.len, b ? b->volumes.items : NULL,
				     b ? b->volumes.len : 0);
	}
	for (size_t i = 0; i < np->resource_sets.len; i++) {
		const struct hf_spec_resource_set *b = &np->resource_sets.items[i];

		if (!find_rs(op, b->name))
			compare_volume_lists(d, np, NULL, b, NULL, 0,
					     b->volumes.items, b->volumes.len);
	}
}

static char *size_text(int64_t bytes)
{
	if (bytes % ((int64_t)1 << 30) == 0)
		return hf_xasprintf("%lldG", (long long)(bytes >> 30));
	return hf_xasprintf("%lldM", (long long)(bytes >> 20));
}

/*
 * An existing external volume keeps its data, so what would make it a
 * different volume, or needs what holdfast cannot do to one yet (resize,
 * re-replication), is refused. Adding one, dropping one (it is kept, not
 * deleted) and its volume-mode are ordinary changes.
 */
static void compare_external_volumes(struct hf_spec_diff *d,
				     const struct hf_spec_pod *op,
				     const struct hf_spec_pod *np)
{
	for (size_t i = 0; i < op->external_volumes.len; i++) {
		const struct hf_spec_external_volume *a =
		    &op->external_volumes.items[i];
		const struct hf_spec_external_volume *b = NULL;

		for (size_t k = 0; k < np->external_volumes.len; k++)
			if (strcmp(np->external_volumes.items[k].name,
				   a->name) == 0)
				b = &np->external_volumes.items[k];
		if (!b)
			continue;
		/* holdfast and pxd are two names of one driver. */
		if (!same_str(a->driver_name, b->driver_name) &&
		    !(hf_spec_volume_driver_ok(a->driver_name) &&
		      hf_spec_volume_driver_ok(b->driver_name)))
			refuse(d,
			       "pod '%s': external volume '%s' driver cannot "
			       "change from '%s' to '%s' (its data stays with "
			       "the old driver)",
			       np->name, a->name, or_none(a->driver_name),
			       or_none(b->driver_name));
		if (!same_str(a->container_path, b->container_path))
			refuse(d,
			       "pod '%s': external volume '%s' container-path "
			       "cannot change from '%s' to '%s'",
			       np->name, a->name, or_none(a->container_path),
			       or_none(b->container_path));
		if (!same_str(a->volume_name, b->volume_name))
			refuse(d,
			       "pod '%s': external volume '%s' volume-name "
			       "cannot change from '%s' to '%s' (the name is "
			       "the volume: the new one would be empty)",
			       np->name, a->name, or_none(a->volume_name),
			       or_none(b->volume_name));
		if (a->opts.size_bytes > b->opts.size_bytes) {
			/* Growing is a resize of each instance's volume. */
			char *sa = size_text(a->opts.size_bytes);
			char *sb = size_text(b->opts.size_bytes);

			refuse(d,
			       "pod '%s': external volume '%s' size cannot "
			       "shrink from %s to %s (volumes grow, never "
			       "shrink)",
			       np->name, a->name, sa, sb);
			free(sa);
			free(sb);
		}
		if (a->opts.shared != b->opts.shared)
			refuse(d,
			       "pod '%s': external volume '%s' shared cannot "
			       "change from %s to %s (it changes the volumes' "
			       "names)",
			       np->name, a->name,
			       a->opts.shared ? "true" : "false",
			       b->opts.shared ? "true" : "false");
		if (a->opts.secure != b->opts.secure)
			refuse(d,
			       "pod '%s': external volume '%s' secure cannot "
			       "change from %s to %s",
			       np->name, a->name,
			       a->opts.secure ? "true" : "false",
			       b->opts.secure ? "true" : "false");
		if (a->opts.fs != b->opts.fs)
			refuse(d,
			       "pod '%s': external volume '%s' fs cannot change "
			       "from %s to %s",
			       np->name, a->name, fs_name(a->opts.fs),
			       fs_name(b->opts.fs));
		if (strcmp(a->opts.secret_key, b->opts.secret_key) != 0)
			refuse(d,
			       "pod '%s': external volume '%s' secret_key "
			       "cannot change (its volumes' keys are sealed by "
			       "%s%s)",
			       np->name, a->name,
			       a->opts.secret_key[0] ? "key " : "the cluster key",
			       a->opts.secret_key);
		if (a->opts.repl != b->opts.repl)
			refuse(d,
			       "pod '%s': external volume '%s' repl cannot "
			       "change from %u to %u: that needs "
			       "re-replication, which holdfast does not do "
			       "yet",
			       np->name, a->name, a->opts.repl, b->opts.repl);
		if (a->opts.min_sync != b->opts.min_sync)
			refuse(d,
			       "pod '%s': external volume '%s' min_sync cannot "
			       "change from %u to %u: not in place yet",
			       np->name, a->name, a->opts.min_sync,
			       b->opts.min_sync);
	}
}

static void push_instances(struct hf_strlist *l, const char *pod, int64_t from,
			   int64_t to)
{
	for (int64_t i = from; i < to; i++) {
		char *n = hf_xasprintf("%s-%lld", pod, (long long)i);

		hf_strlist_push(l, n);
		free(n);
	}
}

/*
 * A plan as the diff compares it: only its steps for instances both specs
 * have, so that a count change (shown with its pod) is not also reported
 * as a change of every plan.
 */
static json_t *plan_shape(const struct hf_plan_def *def,
			  const struct hf_spec *a, const struct hf_spec *b)
{
	json_t *j = hf_plan_def_to_json(def), *ph;
	size_t i;

	json_array_foreach(json_object_get(j, "phases"), i, ph)
	{
		json_t *steps = json_object_get(ph, "steps");

		for (size_t k = json_array_size(steps); k-- > 0;) {
			json_t *st = json_array_get(steps, k);
			const char *pod =
			    json_string_value(json_object_get(st, "pod"));
			json_int_t idx =
			    json_integer_value(json_object_get(st, "index"));
			const struct hf_spec_pod *pa = hf_spec_find_pod(a, pod);
			const struct hf_spec_pod *pb = hf_spec_find_pod(b, pod);

			if (!pa || !pb || idx >= pa->count || idx >= pb->count)
				json_array_remove(steps, k);
		}
	}
	return j;
}

/*
 * A pod's settings that relaunch nothing (its fingerprint leaves them out)
 * but take effect from the next decision on: where new instances may go,
 * whether a scale-in may happen and what it keeps.
 */
static json_t *pod_settings(const struct hf_spec_pod *pod)
{
	json_t *o = json_object();

	/* As written: the constraints are what it says. */
	json_object_set_new(o, "placement",
			    pod->placement && *pod->placement
				? json_string(pod->placement)
				: json_null());
	json_object_set_new(o, "allow-decommission",
			    json_boolean(pod->allow_decommission));
	json_object_set_new(o, "volume-retention",
			    json_string(pod->retain_volumes ? "retain"
							    : "delete"));
	/* The autoscaler reads its policy at each evaluation. */
	json_object_set_new(o, "autoscale",
			    pod->autoscale
				? hf_spec_autoscale_json(pod->autoscale)
				: json_null());
	/* Read where they are used: at the next snapshot, the next backup. */
	json_object_set_new(o, "snapshot-hooks", pod->has_hooks
						     ? hf_spec_hooks_json(pod)
						     : json_null());
	json_object_set_new(o, "backup-schedule",
			    pod->bk_to ? hf_spec_backup_schedule_json(pod)
				       : json_null());
	/* Grown in place (compare_external_volumes refuses shrinking). */
	for (size_t i = 0; i < pod->external_volumes.len; i++) {
		const struct hf_spec_external_volume *e =
		    &pod->external_volumes.items[i];
		char *k;

		if (!e->has_opts || !e->name)
			continue;
		k = hf_xasprintf("external-volumes.%s.size", e->name);
		json_object_set_new(o, k, json_integer(e->opts.size_bytes));
		free(k);
	}
	return o;
}

void hf_spec_diff(const struct hf_spec *old, const struct hf_spec *new_spec,
		  struct hf_spec_diff *out)
{
	memset(out, 0, sizeof(*out));
	if (!same_str(old->name, new_spec->name))
		refuse(out, "the service name cannot change from '%s' to '%s'",
		       or_none(old->name), or_none(new_spec->name));
	if (!same_str(old->scheduler_user, new_spec->scheduler_user))
		refuse(out,
		       "the service user cannot change from '%s' to '%s' "
		       "(files on its volumes belong to the old user)",
		       or_none(old->scheduler_user),
		       or_none(new_spec->scheduler_user));
	if (!same_str(old->web_url, new_spec->web_url)) {
		char *l = hf_xasprintf("web-url: %s -> %s", or_none(old->web_url),
				       or_none(new_spec->web_url));

		hf_strlist_push(&out->changes, l);
		free(l);
	}
	{
		struct hf_plan_defs a = {0}, b = {0};

		hf_spec_build_plans(old, &a);
		hf_spec_build_plans(new_spec, &b);
		for (size_t i = 0; i < b.len; i++) {
			const struct hf_plan_def *pb = &b.items[i];
			const struct hf_plan_def *pa =
			    hf_plan_defs_find(&a, pb->name);
			json_t *ja = pa ? plan_shape(pa, old, new_spec) : NULL;
			json_t *jb = plan_shape(pb, old, new_spec);

			if (!ja || !json_equal(ja, jb)) {
				char *l = hf_xasprintf("plan %s: %s", pb->name,
						       ja ? "changed" : "added");

				hf_strlist_push(&out->changes, l);
				free(l);
			}
			json_decref(ja);
			json_decref(jb);
		}
		for (size_t i = 0; i < a.len; i++) {
			if (!hf_plan_defs_find(&b, a.items[i].name)) {
				char *l = hf_xasprintf("plan %s: removed",
						       a.items[i].name);

				hf_strlist_push(&out->changes, l);
				free(l);
			}
		}
		hf_plan_defs_release(&a);
		hf_plan_defs_release(&b);
	}

	for (size_t i = 0; i < new_spec->pods.len; i++) {
		const struct hf_spec_pod *np = &new_spec->pods.items[i];
		const struct hf_spec_pod *op = hf_spec_find_pod(old, np->name);
		struct hf_pod_diff *pd = HF_VEC_PUSH(&out->pods);
		json_t *ja, *jb;
		int64_t common;

		pd->pod = hf_xstrdup(np->name);
		pd->new_count = np->count;
		if (!op) {
			pd->change = HF_POD_ADDED;
			push_instances(&pd->added, np->name, 0, np->count);
			continue;
		}
		pd->old_count = op->count;
		common = op->count < np->count ? op->count : np->count;
		ja = hf_spec_pod_to_json(old, op, true);
		jb = hf_spec_pod_to_json(new_spec, np, true);
		if (!json_equal(ja, jb)) {
			pd->change = HF_POD_CHANGED;
			json_diff("", ja, jb, &pd->changes);
			push_instances(&pd->relaunch, np->name, 0, common);
		}
		json_decref(ja);
		json_decref(jb);
		ja = pod_settings(op);
		jb = pod_settings(np);
		if (!json_equal(ja, jb)) {
			/* Changed, with nothing to relaunch for it. */
			pd->change = HF_POD_CHANGED;
			json_diff("", ja, jb, &pd->changes);
		}
		json_decref(ja);
		json_decref(jb);
		push_instances(&pd->added, np->name, op->count, np->count);
		push_instances(&pd->removed, np->name, np->count, op->count);
		if (op->autoscale && np->autoscale && !op->autoscale->dry_run &&
		    !np->autoscale->dry_run && op->spec_count != np->spec_count)
			refuse(out,
			       "pod '%s': its count is its autoscale policy's to "
			       "set (now %lld, within %lld to %lld): change "
			       "autoscale.min and autoscale.max, not count",
			       np->name, (long long)op->count,
			       (long long)np->autoscale->min,
			       (long long)np->autoscale->max);
		if (np->count < op->count && !np->allow_decommission)
			refuse(out,
			       "pod '%s': count cannot decrease from %lld to "
			       "%lld without 'allow-decommission: true'",
			       np->name, (long long)op->count,
			       (long long)np->count);
		compare_volumes(out, op, np);
		compare_external_volumes(out, op, np);
		if (!same_str(op->pre_reserved_role, np->pre_reserved_role))
			refuse(out,
			       "pod '%s': pre-reserved-role cannot change from "
			       "'%s' to '%s'",
			       np->name, or_none(op->pre_reserved_role),
			       or_none(np->pre_reserved_role));
		if (!same_str(op->user, np->user))
			refuse(out,
			       "pod '%s': user cannot change from '%s' to '%s'",
			       np->name, or_none(op->user), or_none(np->user));
	}
	for (size_t i = 0; i < old->pods.len; i++) {
		const struct hf_spec_pod *op = &old->pods.items[i];
		struct hf_pod_diff *pd;

		if (hf_spec_find_pod(new_spec, op->name))
			continue;
		pd = HF_VEC_PUSH(&out->pods);
		pd->pod = hf_xstrdup(op->name);
		pd->change = HF_POD_REMOVED;
		pd->old_count = op->count;
		push_instances(&pd->removed, op->name, 0, op->count);
		if (!op->allow_decommission)
			refuse(out,
			       "pod '%s' cannot be removed: its current spec "
			       "does not set 'allow-decommission: true'",
			       op->name);
	}
}

void hf_spec_diff_release(struct hf_spec_diff *d)
{
	for (size_t i = 0; i < d->pods.len; i++) {
		struct hf_pod_diff *p = &d->pods.items[i];

		free(p->pod);
		hf_strlist_release(&p->relaunch);
		hf_strlist_release(&p->added);
		hf_strlist_release(&p->removed);
		hf_strlist_release(&p->changes);
	}
	HF_VEC_FREE(&d->pods);
	hf_strlist_release(&d->refusals);
	hf_strlist_release(&d->changes);
}

bool hf_spec_diff_is_empty(const struct hf_spec_diff *d)
{
	if (d->refusals.len || d->changes.len)
		return false;
	for (size_t i = 0; i < d->pods.len; i++) {
		const struct hf_pod_diff *p = &d->pods.items[i];

		if (p->change != HF_POD_UNCHANGED || p->added.len ||
		    p->removed.len)
			return false;
	}
	return true;
}
