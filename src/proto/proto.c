/*
 * proto.c - the server <-> agent messages' encoders and decoders
 * (proto.h, docs/protocol.md).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "proto/proto.h"

/* ---- decoding helpers ------------------------------------------------- */

/*
 * Where a decoder is: the path of the object it reads ("tasks[2]", "" at
 * the top) and the first problem found. Decoders go on after a problem
 * only where it is simpler; the first sentence is the one returned.
 */
struct dec {
	const char *where;
	char **err;
};

static bool fail(const struct dec *d, const char *key, const char *fmt, ...)
	HF_PRINTF(3, 4);

static bool fail(const struct dec *d, const char *key, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	if (*d->err)
		return false;
	if (*d->where)
		hf_buf_adds(&b, d->where);
	if (key)
		hf_buf_addf(&b, "%s%s", *d->where ? "." : "", key);
	if (b.len)
		hf_buf_adds(&b, ": ");
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	*d->err = hf_buf_detach(&b);
	return false;
}

/* A value that is absent or null. */
static bool absent(const json_t *v)
{
	return !v || json_is_null(v);
}

static bool get_obj(const struct dec *d, const json_t *o, const char *key,
		    const json_t **out)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (absent(v))
		return true;
	if (!json_is_object(v))
		return fail(d, key, "must be an object");
	*out = v;
	return true;
}

static bool get_arr(const struct dec *d, const json_t *o, const char *key,
		    const json_t **out)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (absent(v))
		return true;
	if (!json_is_array(v))
		return fail(d, key, "must be an array");
	*out = v;
	return true;
}

static bool get_str(const struct dec *d, const json_t *o, const char *key,
		    bool required, char **out)
{
	const json_t *v = json_object_get(o, key);

	if (absent(v))
		return required ? fail(d, key, "is missing") : true;
	if (!json_is_string(v))
		return fail(d, key, "must be a string");
	free(*out);
	*out = hf_xstrdup(json_string_value(v));
	return true;
}

static bool get_int(const struct dec *d, const json_t *o, const char *key,
		    int64_t *out, bool *present)
{
	const json_t *v = json_object_get(o, key);

	if (present)
		*present = false;
	if (absent(v))
		return true;
	if (!json_is_integer(v))
		return fail(d, key, "must be an integer%s",
			    present ? " or null" : "");
	*out = json_integer_value(v);
	if (present)
		*present = true;
	return true;
}

static bool get_num(const struct dec *d, const json_t *o, const char *key,
		    double *out)
{
	const json_t *v = json_object_get(o, key);

	if (absent(v))
		return true;
	if (!json_is_number(v))
		return fail(d, key, "must be a number");
	*out = json_number_value(v);
	return true;
}

static bool get_bool(const struct dec *d, const json_t *o, const char *key,
		     bool *out)
{
	const json_t *v = json_object_get(o, key);

	if (absent(v))
		return true;
	if (!json_is_boolean(v))
		return fail(d, key, "must be true or false");
	*out = json_is_true(v);
	return true;
}

static bool get_strlist(const struct dec *d, const json_t *o, const char *key,
			struct hf_strlist *out)
{
	const json_t *a, *v;
	size_t i;

	if (!get_arr(d, o, key, &a) || !a)
		return !*d->err;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v)) {
			char *k = hf_xasprintf("%s[%zu]", key, i);

			fail(d, k, "must be a string");
			free(k);
			return false;
		}
		hf_strlist_push(out, json_string_value(v));
	}
	return true;
}

/* The path of an array's element below the current place. */
static char *elem_where(const struct dec *d, const char *key, size_t i)
{
	return hf_xasprintf("%s%s%s[%zu]", d->where, *d->where ? "." : "", key,
			    i);
}

static char *sub_where(const struct dec *d, const char *key)
{
	return hf_xasprintf("%s%s%s", d->where, *d->where ? "." : "", key);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *int_or_null(bool present, json_int_t v)
{
	return present ? json_integer(v) : json_null();
}

static json_t *strlist_encode(const struct hf_strlist *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->len; i++)
		json_array_append_new(a, json_string(l->items[i]));
	return a;
}

/* ---- checks ----------------------------------------------------------- */

static const char *const check_kinds[] = {
	[HF_CHECK_CMD] = "cmd",
	[HF_CHECK_HTTP] = "http",
	[HF_CHECK_TCP] = "tcp",
};

static void check_release(struct hf_proto_check *c)
{
	free(c->cmd);
	free(c->port);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

static json_t *check_encode(const struct hf_proto_check *c)
{
	json_t *o;

	if (c->kind == HF_CHECK_NONE)
		return json_null();
	o = json_object();
	json_object_set_new(o, "kind", json_string(check_kinds[c->kind]));
	if (c->cmd)
		json_object_set_new(o, "cmd", json_string(c->cmd));
	if (c->port)
		json_object_set_new(o, "port", json_string(c->port));
	if (c->path)
		json_object_set_new(o, "path", json_string(c->path));
	json_object_set_new(o, "interval", json_real(c->interval));
	json_object_set_new(o, "delay", json_real(c->delay));
	json_object_set_new(o, "timeout", json_real(c->timeout));
	json_object_set_new(o, "grace_period", json_real(c->grace_period));
	json_object_set_new(o, "max_consecutive_failures",
			    json_integer(c->max_consecutive_failures));
	return o;
}

static bool get_secs(const struct dec *d, const json_t *o, const char *key,
		     double dflt, double *out)
{
	*out = dflt;
	if (!get_num(d, o, key, out))
		return false;
	if (*out < 0)
		return fail(d, key, "must be a number of seconds");
	return true;
}

static bool check_decode(const struct dec *up, const json_t *o,
			 const char *key, struct hf_proto_check *c)
{
	char *where = sub_where(up, key);
	struct dec d = {where, up->err};
	const json_t *v = json_object_get(o, key), *port;
	const char *kind;
	bool ok = false;

	check_release(c);
	if (absent(v)) {
		ok = true;
		goto out;
	}
	if (!json_is_object(v)) {
		fail(up, key, "must be an object or null");
		goto out;
	}
	kind = json_string_value(json_object_get(v, "kind"));
	if (!kind)
		kind = json_object_get(v, "cmd") ? "cmd" : "";
	for (size_t i = 1; i < HF_ARRAY_LEN(check_kinds); i++)
		if (strcmp(kind, check_kinds[i]) == 0)
			c->kind = (enum hf_check_kind)i;
	if (c->kind == HF_CHECK_NONE) {
		fail(&d, "kind", "unknown kind \"%s\" (cmd, http, tcp)", kind);
		goto out;
	}
	if (!get_str(&d, v, "cmd", false, &c->cmd) ||
	    !get_str(&d, v, "path", false, &c->path))
		goto out;
	if (c->kind == HF_CHECK_CMD && (!c->cmd || !*c->cmd)) {
		fail(&d, "cmd", "must be a non-empty string");
		goto out;
	}
	/* A port is a name of the task's ports or a number. */
	port = json_object_get(v, "port");
	if (json_is_string(port))
		c->port = hf_xstrdup(json_string_value(port));
	else if (json_is_integer(port))
		c->port = hf_xasprintf("%lld",
				       (long long)json_integer_value(port));
	else if (!absent(port)) {
		fail(&d, "port", "must be a port number or the name of one of "
				 "the task's ports");
		goto out;
	}
	c->max_consecutive_failures = 3;
	if (!get_secs(&d, v, "interval", 5, &c->interval) ||
	    !get_secs(&d, v, "delay", 0, &c->delay) ||
	    !get_secs(&d, v, "timeout", 20, &c->timeout) ||
	    !get_secs(&d, v, "grace_period", 0, &c->grace_period) ||
	    !get_int(&d, v, "max_consecutive_failures",
		     &c->max_consecutive_failures, NULL))
		goto out;
	ok = true;
out:
	free(where);
	return ok;
}

/* ---- launch orders ---------------------------------------------------- */

void hf_proto_launch_init(struct hf_proto_launch *l)
{
	memset(l, 0, sizeof(*l));
	l->kill_grace_period = -1;
}

void hf_proto_launch_release(struct hf_proto_launch *l)
{
	free(l->task_id);
	free(l->service);
	free(l->pod);
	free(l->pod_instance);
	free(l->task);
	free(l->goal);
	free(l->config_id);
	free(l->cmd);
	hf_kvlist_release(&l->env);
	for (size_t i = 0; i < l->rlimits.len; i++)
		free(l->rlimits.items[i].name);
	HF_VEC_FREE(&l->rlimits);
	for (size_t i = 0; i < l->ports.len; i++)
		free(l->ports.items[i].name);
	HF_VEC_FREE(&l->ports);
	for (size_t i = 0; i < l->volumes.len; i++) {
		free(l->volumes.items[i].key);
		free(l->volumes.items[i].path);
		free(l->volumes.items[i].type);
	}
	HF_VEC_FREE(&l->volumes);
	for (size_t i = 0; i < l->configs.len; i++) {
		free(l->configs.items[i].name);
		free(l->configs.items[i].dest);
		free(l->configs.items[i].tmpl);
	}
	HF_VEC_FREE(&l->configs);
	hf_strlist_release(&l->uris);
	check_release(&l->health);
	check_release(&l->readiness);
	free(l->user);
	hf_strlist_release(&l->capabilities);
	free(l->invalid);
	hf_proto_launch_init(l);
}

int64_t hf_proto_launch_port(const struct hf_proto_launch *l,
			     const char *name)
{
	for (size_t i = 0; i < l->ports.len; i++)
		if (strcmp(l->ports.items[i].name, name) == 0)
			return l->ports.items[i].number;
	return -1;
}

static json_t *limit_encode(double v)
{
	if (v > 0)
		return json_real(v);
	return v < 0 ? json_string("unlimited") : json_null();
}

/* Whole seconds as an integer, as the server always wrote them. */
static json_t *secs_encode(double v)
{
	if (v == floor(v) && fabs(v) < 9e15)
		return json_integer((json_int_t)v);
	return json_real(v);
}

json_t *hf_proto_launch_encode(const struct hf_proto_launch *l)
{
	json_t *o, *env, *ports, *rl, *vols, *cfgs;

	if (l->known)
		return json_pack("{s:o, s:b}", "task_id",
				 str_or_null(l->task_id), "known", 1);
	o = json_object();
	env = json_object();
	ports = json_object();
	rl = json_array();
	vols = json_array();
	cfgs = json_array();

	for (size_t i = 0; i < l->env.len; i++)
		json_object_set_new(env, l->env.items[i].key,
				    json_string(l->env.items[i].value));
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_proto_rlimit *r = &l->rlimits.items[i];

		json_array_append_new(
		    rl, json_pack("{s:s, s:I, s:I}", "name", r->name, "soft",
				  (json_int_t)r->soft, "hard",
				  (json_int_t)r->hard));
	}
	for (size_t i = 0; i < l->ports.len; i++)
		json_object_set_new(ports, l->ports.items[i].name,
				    json_integer(l->ports.items[i].number));
	for (size_t i = 0; i < l->volumes.len; i++) {
		const struct hf_proto_volume *v = &l->volumes.items[i];
		json_t *e = json_pack("{s:s, s:s}", "key", v->key, "path",
				      v->path);

		if (v->type)
			json_object_set_new(e, "type", json_string(v->type));
		json_object_set_new(e, "size_mb", json_integer(v->size_mb));
		if (v->type && strcmp(v->type, "EXTERNAL") == 0) {
			json_object_set_new(e, "epoch", json_integer(v->epoch));
			json_object_set_new(e, "ro", json_boolean(v->ro));
		}
		json_array_append_new(vols, e);
	}
	for (size_t i = 0; i < l->configs.len; i++) {
		const struct hf_proto_config *c = &l->configs.items[i];
		json_t *e = json_object();

		if (c->name)
			json_object_set_new(e, "name", json_string(c->name));
		json_object_set_new(e, "dest", json_string(c->dest));
		json_object_set_new(e, "template",
				    json_stringn(c->tmpl ? c->tmpl : "",
						 c->tmpl_len));
		json_array_append_new(cfgs, e);
	}
	json_object_set_new(o, "task_id", str_or_null(l->task_id));
	json_object_set_new(o, "service", str_or_null(l->service));
	json_object_set_new(o, "pod", str_or_null(l->pod));
	json_object_set_new(o, "pod_instance", str_or_null(l->pod_instance));
	json_object_set_new(o, "index", json_integer(l->index));
	json_object_set_new(o, "task", str_or_null(l->task));
	json_object_set_new(o, "goal", str_or_null(l->goal));
	json_object_set_new(o, "config_id", str_or_null(l->config_id));
	json_object_set_new(o, "cmd", str_or_null(l->cmd));
	json_object_set_new(o, "env", env);
	json_object_set_new(o, "cpus", json_real(l->cpus));
	json_object_set_new(o, "memory_mb", json_real(l->memory_mb));
	json_object_set_new(o, "limit_cpus", limit_encode(l->limit_cpus));
	json_object_set_new(o, "limit_memory_mb",
			    limit_encode(l->limit_memory_mb));
	json_object_set_new(o, "rlimits", rl);
	json_object_set_new(o, "kill_grace_period",
			    l->kill_grace_period >= 0
				? secs_encode(l->kill_grace_period)
				: json_null());
	json_object_set_new(o, "ports", ports);
	json_object_set_new(o, "volumes", vols);
	json_object_set_new(o, "configs", cfgs);
	json_object_set_new(o, "uris", strlist_encode(&l->uris));
	json_object_set_new(o, "health_check", check_encode(&l->health));
	json_object_set_new(o, "readiness_check", check_encode(&l->readiness));
	json_object_set_new(o, "user", str_or_null(l->user));
	json_object_set_new(o, "capabilities",
			    strlist_encode(&l->capabilities));
	json_object_set_new(o, "privileged", json_boolean(l->privileged));
	json_object_set_new(o, "paused", json_boolean(l->paused));
	json_object_set_new(
	    o, "restart",
	    l->restart.on
		? json_pack("{s:o, s:o, s:o, s:I}", "backoff_base",
			    secs_encode(l->restart.backoff_base), "backoff_max",
			    secs_encode(l->restart.backoff_max), "reset_after",
			    secs_encode(l->restart.reset_after), "max",
			    (json_int_t)l->restart.max)
		: json_null());
	return o;
}

static bool env_decode(const struct dec *d, const json_t *o,
		       struct hf_kvlist *env)
{
	const json_t *e, *v;
	const char *key;

	if (!get_obj(d, o, "env", &e) || !e)
		return !*d->err;
	json_object_foreach((json_t *)e, key, v) {
		char *text = NULL;

		if (!hf_is_env_name(key))
			return fail(d, "env", "\"%s\" is not a variable name",
				    key);
		if (json_is_string(v))
			text = hf_xstrdup(json_string_value(v));
		else if (json_is_integer(v))
			text = hf_xasprintf("%lld",
					    (long long)json_integer_value(v));
		else if (json_is_real(v))
			text = hf_xasprintf("%g", json_real_value(v));
		else if (json_is_boolean(v))
			text = hf_xstrdup(json_is_true(v) ? "true" : "false");
		else
			return fail(d, "env", "\"%s\" must be a string", key);
		hf_kvlist_set(env, key, text);
		free(text);
	}
	return true;
}

static bool limit_decode(const struct dec *d, const json_t *o,
			 const char *key, double *out)
{
	const json_t *v = json_object_get(o, key);

	*out = HF_PROTO_LIMIT_NONE;
	if (absent(v))
		return true;
	if (json_is_string(v) && strcmp(json_string_value(v), "unlimited") == 0)
		*out = HF_PROTO_LIMIT_UNLIMITED;
	else if (json_is_number(v) && json_number_value(v) > 0)
		*out = json_number_value(v);
	else
		return fail(d, key, "must be a positive number, \"unlimited\" "
				    "or null");
	return true;
}

static bool rlimits_decode(const struct dec *up, const json_t *o,
			   struct hf_proto_launch *l)
{
	const json_t *a, *v;
	size_t i;

	if (!get_arr(up, o, "rlimits", &a) || !a)
		return !*up->err;
	json_array_foreach(a, i, v) {
		char *where = elem_where(up, "rlimits", i);
		struct dec d = {where, up->err};
		struct hf_proto_rlimit *r = HF_VEC_PUSH(&l->rlimits);
		bool has;

		r->soft = r->hard = -1;
		if (!json_is_object(v))
			fail(&d, NULL, "must be an object");
		else if (get_str(&d, v, "name", true, &r->name) &&
			 get_int(&d, v, "soft", &r->soft, &has) && !has)
			r->soft = -1;
		if (!*up->err && get_int(&d, v, "hard", &r->hard, &has) &&
		    !has)
			r->hard = -1;
		free(where);
		if (*up->err)
			return false;
	}
	return true;
}

static bool ports_decode(const struct dec *d, const json_t *o,
			 struct hf_proto_launch *l)
{
	const json_t *p, *v;
	const char *name;

	if (!get_obj(d, o, "ports", &p) || !p)
		return !*d->err;
	json_object_foreach((json_t *)p, name, v) {
		struct hf_proto_port *e;

		if (!json_is_integer(v))
			return fail(d, "ports", "\"%s\" must be a port number",
				    name);
		e = HF_VEC_PUSH(&l->ports);
		e->name = hf_xstrdup(name);
		e->number = json_integer_value(v);
	}
	return true;
}

static bool volumes_decode(const struct dec *up, const json_t *o,
			   struct hf_proto_launch *l)
{
	const json_t *a, *v;
	size_t i;

	if (!get_arr(up, o, "volumes", &a) || !a)
		return !*up->err;
	json_array_foreach(a, i, v) {
		char *where = elem_where(up, "volumes", i);
		struct dec d = {where, up->err};
		struct hf_proto_volume *e = HF_VEC_PUSH(&l->volumes);

		if (!json_is_object(v))
			fail(&d, NULL, "must be an object");
		else if (get_str(&d, v, "key", true, &e->key) &&
			 get_str(&d, v, "path", true, &e->path) &&
			 get_str(&d, v, "type", false, &e->type) &&
			 get_int(&d, v, "size_mb", &e->size_mb, NULL) &&
			 get_int(&d, v, "epoch", &e->epoch, NULL) &&
			 get_bool(&d, v, "ro", &e->ro) && e->type &&
			 strcmp(e->type, "EXTERNAL") == 0 && e->epoch < 1)
			fail(&d, "epoch", "an EXTERNAL volume needs an epoch "
					  ">= 1");
		free(where);
		if (*up->err)
			return false;
	}
	return true;
}

static bool configs_decode(const struct dec *up, const json_t *o,
			   struct hf_proto_launch *l)
{
	const json_t *a, *v, *t;
	size_t i;

	if (!get_arr(up, o, "configs", &a) || !a)
		return !*up->err;
	json_array_foreach(a, i, v) {
		char *where = elem_where(up, "configs", i);
		struct dec d = {where, up->err};
		struct hf_proto_config *e = HF_VEC_PUSH(&l->configs);

		if (!json_is_object(v)) {
			fail(&d, NULL, "must be an object");
		} else if (get_str(&d, v, "name", false, &e->name) &&
			   get_str(&d, v, "dest", true, &e->dest)) {
			t = json_object_get(v, "template");
			if (!json_is_string(t)) {
				fail(&d, "template", "must be a string");
			} else {
				e->tmpl_len = json_string_length(t);
				e->tmpl = hf_xmalloc(e->tmpl_len + 1);
				memcpy(e->tmpl, json_string_value(t),
				       e->tmpl_len + 1);
			}
		}
		free(where);
		if (*up->err)
			return false;
	}
	return true;
}

/* A URI is a string, or an object with "uri" (the SDK's form). */
static bool uris_decode(const struct dec *d, const json_t *o,
			struct hf_strlist *out)
{
	const json_t *a, *v;
	size_t i;

	if (!get_arr(d, o, "uris", &a) || !a)
		return !*d->err;
	json_array_foreach(a, i, v) {
		const char *uri = json_is_string(v)
				      ? json_string_value(v)
				      : json_string_value(
					    json_object_get(v, "uri"));
		char *k;

		if (uri) {
			hf_strlist_push(out, uri);
			continue;
		}
		k = hf_xasprintf("uris[%zu]", i);
		fail(d, k, "is not a URI");
		free(k);
		return false;
	}
	return true;
}

/* "restart": null (none), or the policy with the shim's defaults. */
static bool restart_decode(const struct dec *up, const json_t *o,
			   struct hf_proto_restart *r)
{
	const json_t *v;
	char *where;
	struct dec d;
	bool ok;

	memset(r, 0, sizeof(*r));
	if (!get_obj(up, o, "restart", &v) || !v)
		return !*up->err;
	where = sub_where(up, "restart");
	d = (struct dec){where, up->err};
	r->on = true;
	ok = get_secs(&d, v, "backoff_base", 1, &r->backoff_base) &&
	     get_secs(&d, v, "backoff_max", 60, &r->backoff_max) &&
	     get_secs(&d, v, "reset_after", 120, &r->reset_after) &&
	     get_int(&d, v, "max", &r->max, NULL);
	if (ok && r->max < 0)
		ok = fail(&d, "max", "must not be negative");
	free(where);
	return ok;
}

static bool launch_decode(const struct dec *d, const json_t *o,
			  struct hf_proto_launch *l)
{
	const json_t *grace;

	if (!json_is_object(o))
		return fail(d, NULL, "the launch order is not an object");
	if (!get_bool(d, o, "known", &l->known))
		return false;
	if (l->known) {
		/* An id alone: the agent has the order (sync_req.brief). */
		if (!get_str(d, o, "task_id", true, &l->task_id))
			return false;
		if (!l->task_id || !*l->task_id)
			return fail(d, "task_id", "must be a non-empty string");
		return true;
	}
	if (!get_str(d, o, "task_id", true, &l->task_id) ||
	    !get_str(d, o, "service", false, &l->service) ||
	    !get_str(d, o, "pod", false, &l->pod) ||
	    !get_str(d, o, "pod_instance", false, &l->pod_instance) ||
	    !get_int(d, o, "index", &l->index, NULL) ||
	    !get_str(d, o, "task", false, &l->task) ||
	    !get_str(d, o, "goal", false, &l->goal) ||
	    !get_str(d, o, "config_id", false, &l->config_id) ||
	    !get_str(d, o, "cmd", false, &l->cmd))
		return false;
	if (!l->cmd || !*l->cmd)
		return fail(d, "cmd", "must be a non-empty string");
	if (!env_decode(d, o, &l->env) || !get_num(d, o, "cpus", &l->cpus) ||
	    !get_num(d, o, "memory_mb", &l->memory_mb) ||
	    !limit_decode(d, o, "limit_cpus", &l->limit_cpus) ||
	    !limit_decode(d, o, "limit_memory_mb", &l->limit_memory_mb) ||
	    !rlimits_decode(d, o, l))
		return false;
	grace = json_object_get(o, "kill_grace_period");
	if (json_is_number(grace) && json_number_value(grace) >= 0)
		l->kill_grace_period = json_number_value(grace);
	else if (!absent(grace))
		return fail(d, "kill_grace_period",
			    "must be a number of seconds");
	return ports_decode(d, o, l) && volumes_decode(d, o, l) &&
	       configs_decode(d, o, l) && uris_decode(d, o, &l->uris) &&
	       check_decode(d, o, "health_check", &l->health) &&
	       check_decode(d, o, "readiness_check", &l->readiness) &&
	       get_str(d, o, "user", false, &l->user) &&
	       get_strlist(d, o, "capabilities", &l->capabilities) &&
	       get_bool(d, o, "privileged", &l->privileged) &&
	       get_bool(d, o, "paused", &l->paused) &&
	       restart_decode(d, o, &l->restart);
}

int hf_proto_launch_decode(const json_t *j, struct hf_proto_launch *out,
			   char **err)
{
	struct dec d = {"", err};

	*err = NULL;
	return launch_decode(&d, j, out) ? 0 : HF_EINVAL;
}

/* ---- reports ---------------------------------------------------------- */

void hf_proto_report_release(struct hf_proto_report *r)
{
	free(r->task_id);
	free(r->message);
	free(r->not_ready);
	memset(r, 0, sizeof(*r));
	r->healthy = -1;
}

bool hf_proto_report_exit_ok(const struct hf_proto_report *r)
{
	return r->has_exit_code && r->exit_code == 0 && r->signal == 0;
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool hf_proto_report_equal(const struct hf_proto_report *a,
			   const struct hf_proto_report *b)
{
	return str_same(a->task_id, b->task_id) && a->state == b->state &&
	       a->pid == b->pid && a->started_at == b->started_at &&
	       a->finished_at == b->finished_at &&
	       a->has_exit_code == b->has_exit_code &&
	       a->exit_code == b->exit_code && a->signal == b->signal &&
	       a->oom_killed == b->oom_killed && a->ready == b->ready &&
	       a->healthy == b->healthy &&
	       a->health_failures == b->health_failures &&
	       str_same(a->message, b->message) &&
	       str_same(a->not_ready, b->not_ready) &&
	       a->permanent == b->permanent && a->restarts == b->restarts &&
	       a->backoff == b->backoff && a->restart_at == b->restart_at &&
	       a->has_last_exit_code == b->has_last_exit_code &&
	       a->last_exit_code == b->last_exit_code &&
	       a->last_signal == b->last_signal &&
	       a->last_exit_at == b->last_exit_at &&
	       a->last_oom_killed == b->last_oom_killed;
}

void hf_proto_report_copy(struct hf_proto_report *dst,
			  const struct hf_proto_report *src)
{
	*dst = *src;
	dst->task_id = src->task_id ? hf_xstrdup(src->task_id) : NULL;
	dst->message = src->message ? hf_xstrdup(src->message) : NULL;
	dst->not_ready = src->not_ready ? hf_xstrdup(src->not_ready) : NULL;
}

json_t *hf_proto_report_encode(const struct hf_proto_report *r)
{
	bool final = hf_task_state_final(r->state);
	json_t *o = json_object();

	json_object_set_new(o, "task_id", json_string(r->task_id));
	json_object_set_new(o, "state",
			    json_string(hf_task_state_wire(r->state)));
	json_object_set_new(o, "pid", int_or_null(r->pid > 0 && !final,
						  r->pid));
	json_object_set_new(o, "started_at",
			    int_or_null(r->started_at > 0, r->started_at));
	json_object_set_new(o, "finished_at",
			    int_or_null(final && r->finished_at > 0,
					r->finished_at));
	json_object_set_new(o, "exit_code",
			    int_or_null(final && r->has_exit_code,
					r->exit_code));
	json_object_set_new(o, "signal", int_or_null(final && r->signal > 0,
						     r->signal));
	json_object_set_new(o, "oom_killed", json_boolean(r->oom_killed));
	json_object_set_new(o, "ready", json_boolean(r->ready));
	json_object_set_new(o, "healthy", r->healthy < 0
					      ? json_null()
					      : json_boolean(r->healthy));
	json_object_set_new(o, "health_failures",
			    json_integer(r->health_failures));
	json_object_set_new(o, "message", str_or_null(r->message));
	json_object_set_new(o, "not_ready",
			    str_or_null(r->ready ? NULL : r->not_ready));
	/* Only when true: what older servers do not know, they never see. */
	if (r->state == HF_TS_FAILED_TO_START && r->permanent)
		json_object_set_new(o, "permanent", json_true());
	json_object_set_new(o, "restarts", json_integer(r->restarts));
	json_object_set_new(o, "backoff",
			    json_boolean(r->backoff && !final));
	json_object_set_new(o, "restart_at",
			    int_or_null(r->backoff && !final &&
					    r->restart_at > 0,
					r->restart_at));
	json_object_set_new(o, "last_exit_code",
			    int_or_null(r->has_last_exit_code,
					r->last_exit_code));
	json_object_set_new(o, "last_signal",
			    int_or_null(r->last_signal > 0, r->last_signal));
	json_object_set_new(o, "last_exit_at",
			    int_or_null(r->last_exit_at > 0, r->last_exit_at));
	json_object_set_new(o, "last_oom_killed",
			    json_boolean(r->last_oom_killed));
	return o;
}

static bool report_decode(const struct dec *d, const json_t *o,
			  struct hf_proto_report *r)
{
	char *state = NULL;
	const json_t *h;
	bool ok;

	r->healthy = -1;
	if (!json_is_object(o))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, o, "task_id", true, &r->task_id) ||
	    !get_str(d, o, "state", true, &state))
		return false;
	/* A newer agent's state this build does not know: gone to us. */
	if (!hf_task_state_from_wire(state, &r->state))
		r->state = HF_TS_LOST;
	free(state);
	ok = get_int(d, o, "pid", &r->pid, NULL) &&
	     get_int(d, o, "started_at", &r->started_at, NULL) &&
	     get_int(d, o, "finished_at", &r->finished_at, NULL) &&
	     get_int(d, o, "exit_code", &r->exit_code, &r->has_exit_code) &&
	     get_int(d, o, "signal", &r->signal, NULL) &&
	     get_bool(d, o, "oom_killed", &r->oom_killed) &&
	     get_bool(d, o, "ready", &r->ready) &&
	     get_int(d, o, "health_failures", &r->health_failures, NULL) &&
	     get_str(d, o, "message", false, &r->message) &&
	     get_str(d, o, "not_ready", false, &r->not_ready) &&
	     get_bool(d, o, "permanent", &r->permanent) &&
	     get_int(d, o, "restarts", &r->restarts, NULL) &&
	     get_bool(d, o, "backoff", &r->backoff) &&
	     get_int(d, o, "restart_at", &r->restart_at, NULL) &&
	     get_int(d, o, "last_exit_code", &r->last_exit_code,
		     &r->has_last_exit_code) &&
	     get_int(d, o, "last_signal", &r->last_signal, NULL) &&
	     get_int(d, o, "last_exit_at", &r->last_exit_at, NULL) &&
	     get_bool(d, o, "last_oom_killed", &r->last_oom_killed);
	if (!ok)
		return false;
	if (r->restarts < 0 || r->restarts > UINT32_MAX)
		return fail(d, "restarts", "must be 0 to %lu",
			    (unsigned long)UINT32_MAX);
	/* Only a live launch waits for its next restart. */
	if (hf_task_state_final(r->state))
		r->backoff = false;
	h = json_object_get(o, "healthy");
	if (json_is_boolean(h))
		r->healthy = json_is_true(h);
	else if (!absent(h))
		return fail(d, "healthy", "must be true, false or null");
	return true;
}

int hf_proto_report_decode(const json_t *j, struct hf_proto_report *out,
			   char **err)
{
	struct dec d = {"", err};

	*err = NULL;
	return report_decode(&d, j, out) ? 0 : HF_EINVAL;
}

/* ---- the node's info -------------------------------------------------- */

void hf_proto_node_info_init(struct hf_proto_node_info *n)
{
	memset(n, 0, sizeof(*n));
	n->cpus = -1;
	n->memory_mb = n->disk_mb = -1;
	n->cgroups_version = -1;
	n->started_at = -1;
}

void hf_proto_node_info_release(struct hf_proto_node_info *n)
{
	free(n->hostname);
	free(n->address);
	hf_kvlist_release(&n->attributes);
	HF_VEC_FREE(&n->ports);
	free(n->cgroups_note);
	free(n->isolation_note);
	hf_strlist_release(&n->hidden);
	free(n->agent_version);
	free(n->api);
	free(n->api_key);
	free(n->storage.pool);
	json_decref(n->storage.marks);
	hf_proto_node_info_init(n);
}

json_t *hf_proto_node_info_encode(const struct hf_proto_node_info *n)
{
	json_t *o = json_object(), *attrs = json_object(), *res = json_object();
	json_t *ports = json_array();

	if (n->hostname)
		json_object_set_new(o, "hostname", json_string(n->hostname));
	if (n->address)
		json_object_set_new(o, "address", json_string(n->address));
	for (size_t i = 0; i < n->attributes.len; i++)
		json_object_set_new(attrs, n->attributes.items[i].key,
				    json_string(n->attributes.items[i].value));
	json_object_set_new(o, "attributes", attrs);
	if (n->cpus >= 0)
		json_object_set_new(res, "cpus", json_real(n->cpus));
	if (n->memory_mb >= 0)
		json_object_set_new(res, "memory_mb",
				    json_integer(n->memory_mb));
	if (n->disk_mb >= 0)
		json_object_set_new(res, "disk_mb", json_integer(n->disk_mb));
	for (size_t i = 0; i < n->ports.len; i++)
		json_array_append_new(
		    ports, json_pack("{s:I, s:I}", "begin",
				     (json_int_t)n->ports.items[i].begin, "end",
				     (json_int_t)n->ports.items[i].end));
	json_object_set_new(res, "ports", ports);
	json_object_set_new(o, "resources", res);
	if (n->cgroups_version >= 0 || n->cgroups_note) {
		json_t *cg = json_object();

		if (n->cgroups_version >= 0)
			json_object_set_new(cg, "version",
					    json_integer(n->cgroups_version));
		if (n->cgroups_note)
			json_object_set_new(cg, "note",
					    json_string(n->cgroups_note));
		json_object_set_new(o, "cgroups", cg);
	}
	if (n->has_isolation)
		json_object_set_new(
		    o, "isolation",
		    json_pack("{s:b, s:s?, s:o}", "mount_namespaces",
			      n->mount_namespaces, "note", n->isolation_note,
			      "hidden", strlist_encode(&n->hidden)));
	if (n->agent_version)
		json_object_set_new(o, "agent_version",
				    json_string(n->agent_version));
	if (n->started_at >= 0)
		json_object_set_new(o, "started_at",
				    json_integer(n->started_at));
	if (n->api)
		json_object_set_new(o, "api", json_string(n->api));
	if (n->api_key)
		json_object_set_new(o, "api_key", json_string(n->api_key));
	if (n->has_storage)
		json_object_set_new(
		    o, "storage",
		    json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "pool",
			      n->storage.pool, "capacity",
			      (json_int_t)n->storage.capacity, "provisioned",
			      (json_int_t)n->storage.provisioned, "used",
			      (json_int_t)n->storage.used, "free",
			      (json_int_t)n->storage.free, "port",
			      (json_int_t)n->storage.port, "dr_port",
			      (json_int_t)n->storage.dr_port));
	if (n->has_storage && n->storage.marks)
		json_object_set(json_object_get(o, "storage"), "marks",
				n->storage.marks);
	return o;
}

/* A byte count: a whole number, 0 or more; absent or null is 0. */
static bool get_bytes(const struct dec *d, const json_t *o, const char *key,
		      int64_t *out)
{
	if (!get_int(d, o, key, out, NULL))
		return false;
	if (*out < 0)
		return fail(d, key, "must not be negative");
	return true;
}

static bool storage_decode(const struct dec *up, const json_t *o,
			   struct hf_proto_storage *st)
{
	char *where = sub_where(up, "storage");
	struct dec d = {where, up->err};
	bool ok = get_str(&d, o, "pool", false, &st->pool) &&
		  get_bytes(&d, o, "capacity", &st->capacity) &&
		  get_bytes(&d, o, "provisioned", &st->provisioned) &&
		  get_bytes(&d, o, "used", &st->used) &&
		  get_bytes(&d, o, "free", &st->free) &&
		  get_int(&d, o, "port", &st->port, NULL) &&
		  get_int(&d, o, "dr_port", &st->dr_port, NULL);

	if (ok && (st->port < 0 || st->port > 65535))
		ok = fail(&d, "port", "must be 0-65535");
	if (ok && (st->dr_port < 0 || st->dr_port > 65535))
		ok = fail(&d, "dr_port", "must be 0-65535");
	if (ok && !absent(json_object_get(o, "marks"))) {
		const json_t *m = json_object_get(o, "marks"), *e;
		size_t i;

		if (!json_is_array(m))
			ok = fail(&d, "marks", "must be an array");
		json_array_foreach(m, i, e)
			if (ok && (!json_is_string(json_object_get(e, "replica")) ||
				   !json_is_integer(json_object_get(e, "time"))))
				ok = fail(&d, "marks",
					  "must list {\"replica\", \"time\"}");
		if (ok)
			st->marks = json_deep_copy(m);
	}
	free(where);
	return ok;
}

static bool node_info_decode(const struct dec *up, const json_t *o,
			     struct hf_proto_node_info *n)
{
	const json_t *attrs, *res, *ports, *cg, *iso, *st, *v;
	const char *key;
	size_t i;

	if (!json_is_object(o))
		return fail(up, NULL, "must be an object");
	if (!get_str(up, o, "hostname", false, &n->hostname) ||
	    !get_str(up, o, "address", false, &n->address) ||
	    !get_obj(up, o, "attributes", &attrs) ||
	    !get_obj(up, o, "resources", &res) ||
	    !get_obj(up, o, "cgroups", &cg) ||
	    !get_obj(up, o, "isolation", &iso) ||
	    !get_str(up, o, "agent_version", false, &n->agent_version) ||
	    !get_int(up, o, "started_at", &n->started_at, NULL) ||
	    !get_str(up, o, "api", false, &n->api) ||
	    !get_str(up, o, "api_key", false, &n->api_key) ||
	    !get_obj(up, o, "storage", &st))
		return false;
	if (st) {
		n->has_storage = true;
		if (!storage_decode(up, st, &n->storage))
			return false;
	}
	json_object_foreach((json_t *)attrs, key, v) {
		if (!json_is_string(v))
			return fail(up, "attributes", "\"%s\" must be a string",
				    key);
		hf_kvlist_set(&n->attributes, key, json_string_value(v));
	}
	if (res) {
		char *where = sub_where(up, "resources");
		struct dec d = {where, up->err};
		bool ok = get_num(&d, res, "cpus", &n->cpus) &&
			  get_int(&d, res, "memory_mb", &n->memory_mb, NULL) &&
			  get_int(&d, res, "disk_mb", &n->disk_mb, NULL) &&
			  get_arr(&d, res, "ports", &ports);

		json_array_foreach(ok ? ports : NULL, i, v) {
			char *w = elem_where(&d, "ports", i);
			struct dec pd = {w, up->err};
			struct hf_proto_port_range *r = HF_VEC_PUSH(&n->ports);

			r->begin = r->end = -1;
			if (!json_is_object(v))
				ok = fail(&pd, NULL, "must be an object");
			else
				ok = get_int(&pd, v, "begin", &r->begin, NULL) &&
				     get_int(&pd, v, "end", &r->end, NULL);
			free(w);
			if (!ok)
				break;
		}
		free(where);
		if (!ok)
			return false;
	}
	if (cg) {
		char *where = sub_where(up, "cgroups");
		struct dec d = {where, up->err};
		bool ok = get_int(&d, cg, "version", &n->cgroups_version,
				  NULL) &&
			  get_str(&d, cg, "note", false, &n->cgroups_note);

		free(where);
		if (!ok)
			return false;
	}
	if (iso) {
		char *where = sub_where(up, "isolation");
		struct dec d = {where, up->err};
		bool ok = get_bool(&d, iso, "mount_namespaces",
				   &n->mount_namespaces) &&
			  get_str(&d, iso, "note", false, &n->isolation_note) &&
			  get_strlist(&d, iso, "hidden", &n->hidden);

		n->has_isolation = true;
		free(where);
		if (!ok)
			return false;
	}
	return true;
}

int hf_proto_node_info_decode(const json_t *j, struct hf_proto_node_info *out,
			      char **err)
{
	struct dec d = {"", err};

	*err = NULL;
	return node_info_decode(&d, j, out) ? 0 : HF_EINVAL;
}

/* ---- sync ------------------------------------------------------------- */

/* ---- volumes ---------------------------------------------------------- */

/* An id of a volume or replica: 1-64 of letters, digits, '-', '_'. */
static bool vol_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == n;
}

/* Decodes array key of o with one element decoder; NULL array: none. */
#define DECODE_ARRAY(d, o, key, vec, decoder)                                \
	({                                                                  \
		const json_t *arr_, *el_;                                   \
		size_t i_;                                                  \
		bool ok_ = get_arr(d, o, key, &arr_);                       \
		json_array_foreach(arr_, i_, el_) {                         \
			char *w_ = elem_where(d, key, i_);                  \
			struct dec ed_ = {w_, (d)->err};                    \
			__typeof__((vec)->items) e_ = HF_VEC_PUSH(vec);     \
			memset(e_, 0, sizeof(*e_));                         \
			ok_ = decoder(&ed_, el_, e_);                       \
			free(w_);                                           \
			if (!ok_)                                           \
				break;                                      \
		}                                                           \
		ok_;                                                        \
	})

void hf_proto_attachment_release(struct hf_proto_attachment *a)
{
	free(a->volume);
	free(a->id);
	free(a->replica);
	for (size_t i = 0; i < a->remotes.len; i++) {
		free(a->remotes.items[i].replica);
		free(a->remotes.items[i].node);
		free(a->remotes.items[i].address);
	}
	HF_VEC_FREE(&a->remotes);
	free(a->ticket);
	if (a->encryption_key) {
		explicit_bzero(a->encryption_key, strlen(a->encryption_key));
		free(a->encryption_key);
	}
	for (size_t i = 0; i < a->snapshots.len; i++) {
		free(a->snapshots.items[i].id);
		free(a->snapshots.items[i].op);
	}
	HF_VEC_FREE(&a->snapshots);
	if (a->dr) {
		free(a->dr->address);
		free(a->dr->replica);
		free(a->dr->ca);
		free(a->dr->cert);
		if (a->dr->key) {
			explicit_bzero(a->dr->key, strlen(a->dr->key));
			free(a->dr->key);
		}
		free(a->dr->when_full);
		free(a->dr);
		a->dr = NULL;
	}
}

static bool snap_op_ok(const char *op)
{
	return op && (!strcmp(op, "take") || !strcmp(op, "delete") ||
		      !strcmp(op, "restore"));
}

static bool snap_req_decode(const struct dec *d, const json_t *v,
			    struct hf_proto_snap_req *q)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "id", true, &q->id) ||
	    !get_str(d, v, "op", true, &q->op))
		return false;
	if (!vol_id_ok(q->id))
		return fail(d, "id", "must be 1-64 letters, digits, '-' or '_'");
	if (!snap_op_ok(q->op))
		return fail(d, "op", "must be take, delete or restore");
	return true;
}

static bool snap_result_decode(const struct dec *d, const json_t *v,
			       struct hf_proto_snap_result *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "id", true, &r->id) ||
	    !get_str(d, v, "op", true, &r->op) ||
	    !get_bool(d, v, "ok", &r->ok) ||
	    !get_strlist(d, v, "replicas", &r->replicas) ||
	    !get_str(d, v, "error", false, &r->error))
		return false;
	if (!vol_id_ok(r->id))
		return fail(d, "id", "must be 1-64 letters, digits, '-' or '_'");
	if (!snap_op_ok(r->op))
		return fail(d, "op", "must be take, delete or restore");
	for (size_t i = 0; i < r->replicas.len; i++)
		if (!vol_id_ok(r->replicas.items[i]))
			return fail(d, "replicas", "must list replica ids");
	return true;
}

static json_t *attachment_encode(const struct hf_proto_attachment *a)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:I}", "volume",
			      a->volume, "id", a->id, "epoch",
			      (json_int_t)a->epoch, "size", (json_int_t)a->size,
			      "format", a->format, "uid", (json_int_t)a->uid,
			      "gid", (json_int_t)a->gid);

	json_object_set_new(o, "replica", str_or_null(a->replica));
	if (a->fs == 1 || a->fs == 2)
		json_object_set_new(o, "fs", json_string(a->fs == 2 ? "xfs"
								    : "ext4"));
	if (a->remotes.len) {
		json_t *arr = json_array();

		for (size_t i = 0; i < a->remotes.len; i++) {
			const struct hf_proto_remote *r = &a->remotes.items[i];

			json_t *e = json_pack("{s:s, s:s, s:s, s:I}", "replica",
					      r->replica, "node", r->node,
					      "address", r->address, "port",
					      (json_int_t)r->port);

			if (r->resync)
				json_object_set_new(e, "resync", json_true());
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "remotes", arr);
	}
	if (a->ticket)
		json_object_set_new(o, "ticket", json_string(a->ticket));
	if (a->encryption_key)
		json_object_set_new(o, "encryption_key",
				    json_string(a->encryption_key));
	if (a->snapshots.len) {
		json_t *arr = json_array();

		for (size_t i = 0; i < a->snapshots.len; i++)
			json_array_append_new(
			    arr, json_pack("{s:s, s:s}", "id",
					   a->snapshots.items[i].id, "op",
					   a->snapshots.items[i].op));
		json_object_set_new(o, "snapshots", arr);
	}
	if (a->dr)
		json_object_set_new(
		    o, "dr",
		    json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:I, s:s}",
			      "address", a->dr->address, "port",
			      (json_int_t)a->dr->port, "replica",
			      a->dr->replica, "ca", a->dr->ca, "cert",
			      a->dr->cert, "key", a->dr->key, "journal_size",
			      (json_int_t)a->dr->journal_size, "when_full",
			      a->dr->when_full));
	if (a->dr && a->dr->drain_ms)
		json_object_set_new(json_object_get(o, "dr"), "drain_ms",
				    json_integer(a->dr->drain_ms));
	return o;
}

static bool dr_decode(const struct dec *up, const json_t *o,
		      struct hf_proto_dr *r)
{
	struct dec d = {"dr", up->err};

	if (!json_is_object(o))
		return fail(up, "dr", "must be an object");
	if (!get_str(&d, o, "address", true, &r->address) ||
	    !get_int(&d, o, "port", &r->port, NULL) ||
	    !get_str(&d, o, "replica", true, &r->replica) ||
	    !get_str(&d, o, "ca", true, &r->ca) ||
	    !get_str(&d, o, "cert", true, &r->cert) ||
	    !get_str(&d, o, "key", true, &r->key) ||
	    !get_int(&d, o, "journal_size", &r->journal_size, NULL) ||
	    !get_int(&d, o, "drain_ms", &r->drain_ms, NULL) ||
	    !get_str(&d, o, "when_full", true, &r->when_full))
		return false;
	if (!*r->address)
		return fail(&d, "address", "must not be empty");
	if (r->port < 1 || r->port > 65535)
		return fail(&d, "port", "must be 1-65535");
	if (!vol_id_ok(r->replica))
		return fail(&d, "replica",
			    "must be 1-64 letters, digits, '-' or '_'");
	if (r->journal_size < (16LL << 20) || r->journal_size % 4096)
		return fail(&d, "journal_size",
			    "must be a multiple of 4096 of at least 16 MiB");
	if (strcmp(r->when_full, "block") && strcmp(r->when_full, "resync"))
		return fail(&d, "when_full", "must be \"block\" or \"resync\"");
	if (r->drain_ms < 0 || r->drain_ms > 3600000)
		return fail(&d, "drain_ms", "must be 0 to 3600000");
	return true;
}

/* "fs": absent (0), "ext4" (1) or "xfs" (2). */
static bool get_fs(const struct dec *d, const json_t *o, int *fs)
{
	const json_t *f = json_object_get(o, "fs");
	const char *s = json_string_value(f);

	*fs = 0;
	if (absent(f))
		return true;
	if (s && !strcmp(s, "ext4"))
		*fs = 1;
	else if (s && !strcmp(s, "xfs"))
		*fs = 2;
	else
		return fail(d, "fs", "must be \"ext4\" or \"xfs\"");
	return true;
}

static bool remote_decode(const struct dec *d, const json_t *v,
			  struct hf_proto_remote *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "replica", true, &r->replica) ||
	    !get_str(d, v, "node", true, &r->node) ||
	    !get_str(d, v, "address", true, &r->address) ||
	    !get_int(d, v, "port", &r->port, NULL) ||
	    !get_bool(d, v, "resync", &r->resync))
		return false;
	if (!vol_id_ok(r->replica))
		return fail(d, "replica",
			    "must be 1-64 letters, digits, '-' or '_'");
	if (!*r->node || !*r->address)
		return fail(d, NULL, "node and address must not be empty");
	if (r->port < 1 || r->port > 65535)
		return fail(d, "port", "must be 1-65535");
	return true;
}

static bool hex64_ok(const char *s)
{
	return s && strlen(s) == 64 &&
	       strspn(s, "0123456789abcdefABCDEF") == 64;
}

static bool attachment_decode(const struct dec *d, const json_t *v,
			      struct hf_proto_attachment *a)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "volume", true, &a->volume) ||
	    !get_str(d, v, "id", true, &a->id) ||
	    !get_str(d, v, "replica", false, &a->replica) ||
	    !get_int(d, v, "epoch", &a->epoch, NULL) ||
	    !get_int(d, v, "size", &a->size, NULL) ||
	    !get_bool(d, v, "format", &a->format) ||
	    !get_fs(d, v, &a->fs) ||
	    !get_int(d, v, "uid", &a->uid, NULL) ||
	    !get_int(d, v, "gid", &a->gid, NULL) ||
	    !DECODE_ARRAY(d, v, "remotes", &a->remotes, remote_decode) ||
	    !get_str(d, v, "ticket", false, &a->ticket) ||
	    !get_str(d, v, "encryption_key", false, &a->encryption_key) ||
	    !DECODE_ARRAY(d, v, "snapshots", &a->snapshots, snap_req_decode))
		return false;
	if (!absent(json_object_get(v, "dr"))) {
		a->dr = hf_xcalloc(1, sizeof(*a->dr));
		if (!dr_decode(d, json_object_get(v, "dr"), a->dr))
			return false;
	}
	if (a->dr && !hex64_ok(a->ticket))
		return fail(d, "ticket", "must be 64 hex digits with dr");
	if (a->snapshots.len > 128)
		return fail(d, "snapshots", "must list at most 128 requests");
	if (a->encryption_key && (strlen(a->encryption_key) != 128 ||
				  strspn(a->encryption_key,
					 "0123456789abcdefABCDEF") != 128))
		return fail(d, "encryption_key", "must be 128 hex digits");
	if (!*a->volume)
		return fail(d, "volume", "must not be empty");
	if (!vol_id_ok(a->id))
		return fail(d, "id", "must be 1-64 letters, digits, '-' or '_'");
	if (a->replica && !vol_id_ok(a->replica))
		return fail(d, "replica",
			    "must be 1-64 letters, digits, '-' or '_'");
	if (!a->replica && !a->remotes.len)
		return fail(d, NULL, "has neither a replica nor remotes");
	if (a->remotes.len > 8)
		return fail(d, "remotes", "must list at most 8 replicas");
	if (a->remotes.len && !hex64_ok(a->ticket))
		return fail(d, "ticket", "must be 64 hex digits with remotes");
	if (a->epoch < 1)
		return fail(d, "epoch", "must be >= 1");
	if (a->size <= 0 || a->size % 4096)
		return fail(d, "size", "must be a positive multiple of 4096");
	if (a->uid < 0 || a->uid > 0x7fffffff || a->gid < 0 ||
	    a->gid > 0x7fffffff)
		return fail(d, "uid", "uid and gid must be ids >= 0");
	return true;
}

static void volume_report_release(struct hf_proto_volume_report *r)
{
	free(r->volume);
	free(r->id);
	free(r->state);
	free(r->device);
	free(r->message);
	hf_strlist_release(&r->isr_drop);
	free(r->isr_why);
	hf_strlist_release(&r->resynced);
	for (size_t i = 0; i < r->resync.len; i++)
		free(r->resync.items[i].replica);
	HF_VEC_FREE(&r->resync);
	for (size_t i = 0; i < r->missed.len; i++)
		free(r->missed.items[i].replica);
	HF_VEC_FREE(&r->missed);
	for (size_t i = 0; i < r->snapshots.len; i++) {
		free(r->snapshots.items[i].id);
		free(r->snapshots.items[i].op);
		free(r->snapshots.items[i].error);
		hf_strlist_release(&r->snapshots.items[i].replicas);
	}
	HF_VEC_FREE(&r->snapshots);
	json_decref(r->dr);
	r->dr = NULL;
}

static json_t *volume_report_encode(const struct hf_proto_volume_report *r)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "volume", r->volume, "id",
			      r->id, "epoch", (json_int_t)r->epoch, "state",
			      r->state ? r->state : "attaching");

	json_object_set_new(o, "device", str_or_null(r->device));
	json_object_set_new(o, "message", str_or_null(r->message));
	if (r->isr_drop.len) {
		json_object_set_new(o, "isr_drop", strlist_encode(&r->isr_drop));
		json_object_set_new(o, "isr_why", str_or_null(r->isr_why));
	}
	if (r->resynced.len)
		json_object_set_new(o, "resynced", strlist_encode(&r->resynced));
	if (r->resync.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->resync.len; i++)
			json_array_append_new(
			    a, json_pack("{s:s, s:I, s:I}", "replica",
					 r->resync.items[i].replica, "done",
					 (json_int_t)r->resync.items[i].done,
					 "total",
					 (json_int_t)r->resync.items[i].total));
		json_object_set_new(o, "resync", a);
	}
	{
		const struct {
			const char *key;
			int64_t v;
		} io[] = {{"written", r->written},
			  {"replicated", r->replicated},
			  {"resync_sent", r->resync_sent},
			  {"resync_planned", r->resync_planned},
			  {"nospace", r->nospace}};

		for (size_t i = 0; i < HF_ARRAY_LEN(io); i++)
			if (io[i].v)
				json_object_set_new(o, io[i].key,
						    json_integer(io[i].v));
	}
	if (r->missed.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->missed.len; i++)
			json_array_append_new(
			    a, json_pack("{s:s, s:I}", "replica",
					 r->missed.items[i].replica, "bytes",
					 (json_int_t)r->missed.items[i].bytes));
		json_object_set_new(o, "missed", a);
	}
	if (r->dr)
		json_object_set(o, "dr", r->dr);
	if (r->has_write_us) {
		json_t *a = json_array();

		for (size_t i = 0; i <= HF_VOL_LAT_BUCKETS; i++)
			json_array_append_new(a, json_integer(r->write_us[i]));
		json_object_set_new(o, "write_us", a);
		json_object_set_new(o, "write_us_sum",
				    json_integer(r->write_us_sum));
	}
	if (r->snapshots.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->snapshots.len; i++) {
			const struct hf_proto_snap_result *q =
			    &r->snapshots.items[i];
			json_t *e = json_pack("{s:s, s:s, s:b, s:o}", "id",
					      q->id, "op", q->op, "ok", q->ok,
					      "replicas",
					      strlist_encode(&q->replicas));

			if (q->error)
				json_object_set_new(e, "error",
						    json_string(q->error));
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "snapshots", a);
	}
	return o;
}

/* "write_us": HF_VOL_LAT_BUCKETS + 1 counts >= 0, with write_us_sum. */
static bool write_us_decode(const struct dec *d, const json_t *v,
			    struct hf_proto_volume_report *r)
{
	const json_t *a = json_object_get(v, "write_us");
	size_t i;
	json_t *e;

	if (absent(a))
		return true;
	if (!json_is_array(a) || json_array_size(a) != HF_VOL_LAT_BUCKETS + 1)
		return fail(d, "write_us", "must be an array of %d counts",
			    HF_VOL_LAT_BUCKETS + 1);
	json_array_foreach(a, i, e) {
		if (!json_is_integer(e) || json_integer_value(e) < 0)
			return fail(d, "write_us", "must be an array of %d "
						   "counts",
				    HF_VOL_LAT_BUCKETS + 1);
		r->write_us[i] = json_integer_value(e);
	}
	if (!get_int(d, v, "write_us_sum", &r->write_us_sum, NULL))
		return false;
	if (r->write_us_sum < 0)
		return fail(d, "write_us_sum", "must be 0 or more");
	r->has_write_us = true;
	return true;
}

static bool missed_decode(const struct dec *d, const json_t *v,
			  struct hf_proto_missed *m)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "replica", true, &m->replica) ||
	    !get_int(d, v, "bytes", &m->bytes, NULL))
		return false;
	if (!vol_id_ok(m->replica))
		return fail(d, "replica", "must be a replica id");
	if (m->bytes < 0)
		return fail(d, "bytes", "must be 0 or more");
	return true;
}

static bool resync_decode(const struct dec *d, const json_t *v,
			  struct hf_proto_resync *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "replica", true, &r->replica) ||
	    !get_int(d, v, "done", &r->done, NULL) ||
	    !get_int(d, v, "total", &r->total, NULL))
		return false;
	if (!vol_id_ok(r->replica))
		return fail(d, "replica", "must be a replica id");
	if (r->done < 0 || r->total < 0 || r->done > r->total)
		return fail(d, "done", "must be 0 to total");
	return true;
}

static bool dr_final_decode(const struct dec *d, const json_t *v,
			    struct hf_proto_dr_final *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "volume", true, &r->volume) ||
	    !get_int(d, v, "epoch", &r->epoch, NULL) ||
	    !get_bool(d, v, "drained", &r->drained))
		return false;
	if (r->epoch < 0)
		return fail(d, "epoch", "must be 0 or more");
	return true;
}

static bool volume_report_decode(const struct dec *d, const json_t *v,
				 struct hf_proto_volume_report *r)
{
	static const char *const states[] = {"attaching", "ready", "detaching",
					     "failed"};
	bool known = false;

	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "volume", true, &r->volume) ||
	    !get_str(d, v, "id", true, &r->id) ||
	    !get_int(d, v, "epoch", &r->epoch, NULL) ||
	    !get_str(d, v, "state", true, &r->state) ||
	    !get_str(d, v, "device", false, &r->device) ||
	    !get_str(d, v, "message", false, &r->message) ||
	    !get_strlist(d, v, "isr_drop", &r->isr_drop) ||
	    !get_str(d, v, "isr_why", false, &r->isr_why) ||
	    !get_strlist(d, v, "resynced", &r->resynced) ||
	    !DECODE_ARRAY(d, v, "resync", &r->resync, resync_decode) ||
	    !get_int(d, v, "written", &r->written, NULL) ||
	    !get_int(d, v, "replicated", &r->replicated, NULL) ||
	    !get_int(d, v, "resync_sent", &r->resync_sent, NULL) ||
	    !get_int(d, v, "resync_planned", &r->resync_planned, NULL) ||
	    !get_int(d, v, "nospace", &r->nospace, NULL) ||
	    !DECODE_ARRAY(d, v, "missed", &r->missed, missed_decode) ||
	    !write_us_decode(d, v, r) ||
	    !DECODE_ARRAY(d, v, "snapshots", &r->snapshots,
			  snap_result_decode))
		return false;
	if (!absent(json_object_get(v, "dr"))) {
		if (!json_is_object(json_object_get(v, "dr")))
			return fail(d, "dr", "must be an object");
		r->dr = json_deep_copy(json_object_get(v, "dr"));
	}
	if (r->written < 0 || r->replicated < 0)
		return fail(d, r->written < 0 ? "written" : "replicated",
			    "must be 0 or more");
	if (r->nospace < 0)
		return fail(d, "nospace", "must be 0 or more");
	if (r->resync_sent < 0 || r->resync_planned < 0)
		return fail(d, r->resync_sent < 0 ? "resync_sent"
						  : "resync_planned",
			    "must be 0 or more");
	for (size_t i = 0; i < r->resynced.len; i++)
		if (!vol_id_ok(r->resynced.items[i]))
			return fail(d, "resynced", "must list replica ids");
	for (size_t i = 0; i < r->isr_drop.len; i++)
		if (!vol_id_ok(r->isr_drop.items[i]))
			return fail(d, "isr_drop", "must list replica ids");
	for (size_t i = 0; i < HF_ARRAY_LEN(states); i++)
		known = known || strcmp(r->state, states[i]) == 0;
	if (!known)
		return fail(d, "state", "must be attaching, ready, detaching or "
					"failed");
	return true;
}

static bool held_replica_decode(const struct dec *d, const json_t *v,
				struct hf_proto_held_replica *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "volume", true, &r->volume) ||
	    !get_str(d, v, "id", true, &r->id) ||
	    !get_str(d, v, "replica", true, &r->replica) ||
	    !get_str(d, v, "key", true, &r->key) ||
	    !get_int(d, v, "size", &r->size, NULL) ||
	    !get_bool(d, v, "standby", &r->standby) ||
	    !get_str(d, v, "group", false, &r->group))
		return false;
	if (r->group && (!r->standby || !vol_id_ok(r->group)))
		return fail(d, "group", "must be 1-64 letters, digits, '-' or "
					"'_', on a standby");
	if (!*r->volume)
		return fail(d, "volume", "must not be empty");
	if (!vol_id_ok(r->id) || !vol_id_ok(r->replica))
		return fail(d, NULL, "id and replica must be 1-64 letters, "
				     "digits, '-' or '_'");
	if (!hex64_ok(r->key))
		return fail(d, "key", "must be 64 hex digits");
	if (r->size <= 0 || r->size % 4096)
		return fail(d, "size", "must be a positive multiple of 4096");
	{
		const json_t *c = json_object_get(v, "clone_from");
		struct dec cd = {"clone_from", d->err};

		const json_t *rf = json_object_get(v, "restore_from");

		if (!absent(rf)) {
			static const char *const rk[] = {
			    "endpoint", "region",     "url",
			    "volume",	"backup",     "access_key",
			    "secret_key"};

			if (!json_is_object(rf))
				return fail(d, "restore_from",
					    "must be an object");
			for (size_t i = 0; i < HF_ARRAY_LEN(rk); i++)
				if (!json_is_string(json_object_get(rf, rk[i])))
					return fail(d, "restore_from",
						    "needs endpoint, region, "
						    "url, volume, backup and "
						    "the keys");
			r->restore_from = json_deep_copy(rf);
		}
		if (absent(c))
			return true;
		if (!json_is_object(c))
			return fail(d, "clone_from", "must be an object");
		if (!get_str(&cd, c, "id", true, &r->clone_id) ||
		    !get_str(&cd, c, "replica", true, &r->clone_replica) ||
		    !get_str(&cd, c, "snapshot", true, &r->clone_snap))
			return false;
		if (!vol_id_ok(r->clone_id) || !vol_id_ok(r->clone_replica) ||
		    !vol_id_ok(r->clone_snap))
			return fail(d, "clone_from", "must name a volume id, a "
						     "replica id and a snapshot "
						     "id");
	}
	return true;
}

static bool replica_ref_decode(const struct dec *d, const json_t *v,
			       struct hf_proto_replica_ref *r)
{
	if (!json_is_object(v))
		return fail(d, NULL, "must be an object");
	if (!get_str(d, v, "id", true, &r->id) ||
	    !get_str(d, v, "replica", true, &r->replica))
		return false;
	if (!vol_id_ok(r->id) || !vol_id_ok(r->replica))
		return fail(d, NULL, "id and replica must be 1-64 letters, "
				     "digits, '-' or '_'");
	return true;
}


void hf_proto_sync_req_init(struct hf_proto_sync_req *r)
{
	memset(r, 0, sizeof(*r));
	hf_proto_node_info_init(&r->info);
}

void hf_proto_sync_req_release(struct hf_proto_sync_req *r)
{
	free(r->node_id);
	free(r->cluster);
	hf_proto_node_info_release(&r->info);
	for (size_t i = 0; i < r->tasks.len; i++)
		hf_proto_report_release(&r->tasks.items[i]);
	HF_VEC_FREE(&r->tasks);
	hf_strlist_release(&r->deleted_volumes);
	for (size_t i = 0; i < r->volumes.len; i++)
		volume_report_release(&r->volumes.items[i]);
	HF_VEC_FREE(&r->volumes);
	hf_strlist_release(&r->deleted_replicas);
	hf_strlist_release(&r->filled_replicas);
	for (size_t i = 0; i < r->filling.len; i++)
		free(r->filling.items[i].replica);
	HF_VEC_FREE(&r->filling);
	for (size_t i = 0; i < r->dr_final.len; i++)
		free(r->dr_final.items[i].volume);
	HF_VEC_FREE(&r->dr_final);
	hf_strlist_release(&r->same);
	free(r->reports_epoch);
	hf_proto_sync_req_init(r);
}

json_t *hf_proto_sync_req_encode(const struct hf_proto_sync_req *r)
{
	json_t *o = json_object(), *tasks = json_array();

	json_object_set_new(o, "node_id", str_or_null(r->node_id));
	json_object_set_new(o, "seq", json_integer(r->seq));
	json_object_set_new(o, "generation", json_integer(r->generation));
	json_object_set_new(o, "wait", secs_encode(r->wait));
	if (r->has_info)
		json_object_set_new(o, "info",
				    hf_proto_node_info_encode(&r->info));
	for (size_t i = 0; i < r->tasks.len; i++)
		json_array_append_new(tasks,
				      hf_proto_report_encode(&r->tasks.items[i]));
	if (r->has_tasks)
		json_object_set_new(o, "tasks", tasks);
	else
		json_decref(tasks);
	json_object_set_new(o, "deleted_volumes",
			    strlist_encode(&r->deleted_volumes));
	if (r->volumes.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->volumes.len; i++)
			json_array_append_new(
			    a, volume_report_encode(&r->volumes.items[i]));
		json_object_set_new(o, "volumes", a);
	}
	if (r->deleted_replicas.len)
		json_object_set_new(o, "deleted_replicas",
				    strlist_encode(&r->deleted_replicas));
	if (r->filled_replicas.len)
		json_object_set_new(o, "filled_replicas",
				    strlist_encode(&r->filled_replicas));
	if (r->filling.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->filling.len; i++)
			json_array_append_new(
			    a, json_pack("{s:s, s:I, s:I}", "replica",
					 r->filling.items[i].replica, "done",
					 (json_int_t)r->filling.items[i].done,
					 "total",
					 (json_int_t)r->filling.items[i].total));
		json_object_set_new(o, "filling_replicas", a);
	}
	if (r->dr_final.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->dr_final.len; i++)
			json_array_append_new(
			    a, json_pack("{s:s, s:I, s:b}", "volume",
					 r->dr_final.items[i].volume, "epoch",
					 (json_int_t)r->dr_final.items[i].epoch,
					 "drained",
					 r->dr_final.items[i].drained));
		json_object_set_new(o, "dr_final", a);
	}
	if (r->cluster)
		json_object_set_new(o, "cluster", json_string(r->cluster));
	if (r->brief)
		json_object_set_new(o, "brief", json_true());
	if (r->same.len)
		json_object_set_new(o, "same", strlist_encode(&r->same));
	if (r->reports_epoch)
		json_object_set_new(o, "reports_epoch",
				    json_string(r->reports_epoch));
	if (r->held)
		json_object_set_new(o, "held", json_true());
	return o;
}

static bool sync_req_decode(const struct dec *d, const json_t *j,
			    struct hf_proto_sync_req *out)
{
	const json_t *info, *tasks, *seq, *v;
	size_t i;

	if (!json_is_object(j))
		return fail(d, NULL, "the sync must be a JSON object");
	if (!get_str(d, j, "node_id", false, &out->node_id))
		return false;
	if (!out->node_id || !*out->node_id)
		return fail(d, NULL, "the sync needs a node_id");
	/* Some agents (the bench's) write seq as a real number. */
	seq = json_object_get(j, "seq");
	if (json_is_number(seq) && fabs(json_number_value(seq)) < 9e18)
		out->seq = (int64_t)json_number_value(seq);
	else if (!absent(seq))
		return fail(d, "seq", "must be a number of at most 18 digits");
	if (!get_str(d, j, "cluster", false, &out->cluster) ||
	    !get_int(d, j, "generation", &out->generation, NULL) ||
	    !get_num(d, j, "wait", &out->wait) ||
	    !get_obj(d, j, "info", &info) || !get_arr(d, j, "tasks", &tasks) ||
	    !get_strlist(d, j, "deleted_volumes", &out->deleted_volumes) ||
	    !get_bool(d, j, "brief", &out->brief) ||
	    !DECODE_ARRAY(d, j, "volumes", &out->volumes,
			  volume_report_decode) ||
	    !get_strlist(d, j, "deleted_replicas", &out->deleted_replicas) ||
	    !get_strlist(d, j, "filled_replicas", &out->filled_replicas) ||
	    !DECODE_ARRAY(d, j, "filling_replicas", &out->filling,
			  resync_decode) ||
	    !DECODE_ARRAY(d, j, "dr_final", &out->dr_final, dr_final_decode) ||
	    !get_strlist(d, j, "same", &out->same) ||
	    !get_str(d, j, "reports_epoch", false, &out->reports_epoch) ||
	    !get_bool(d, j, "held", &out->held))
		return false;
	if (info) {
		struct dec id = {"info", d->err};

		out->has_info = true;
		if (!node_info_decode(&id, info, &out->info))
			return false;
	}
	out->has_tasks = tasks != NULL;
	json_array_foreach(tasks, i, v) {
		char *where = elem_where(d, "tasks", i);
		struct dec td = {where, d->err};
		bool ok = report_decode(&td, v, HF_VEC_PUSH(&out->tasks));

		free(where);
		if (!ok)
			return false;
	}
	return true;
}

int hf_proto_sync_req_decode(const json_t *j, struct hf_proto_sync_req *out,
			     char **err)
{
	struct dec d = {"", err};

	*err = NULL;
	return sync_req_decode(&d, j, out) ? 0 : HF_EINVAL;
}

void hf_proto_sync_resp_init(struct hf_proto_sync_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->heartbeat_interval = 2;
}

void hf_proto_sync_resp_release(struct hf_proto_sync_resp *r)
{
	for (size_t i = 0; i < r->tasks.len; i++)
		hf_proto_launch_release(&r->tasks.items[i]);
	HF_VEC_FREE(&r->tasks);
	hf_strlist_release(&r->delete_volumes);
	for (size_t i = 0; i < r->attachments.len; i++)
		hf_proto_attachment_release(&r->attachments.items[i]);
	HF_VEC_FREE(&r->attachments);
	for (size_t i = 0; i < r->delete_replicas.len; i++) {
		free(r->delete_replicas.items[i].id);
		free(r->delete_replicas.items[i].replica);
	}
	HF_VEC_FREE(&r->delete_replicas);
	for (size_t i = 0; i < r->replicas.len; i++) {
		struct hf_proto_held_replica *h = &r->replicas.items[i];

		free(h->volume);
		free(h->id);
		free(h->replica);
		free(h->key);
		free(h->clone_id);
		free(h->clone_replica);
		free(h->clone_snap);
		free(h->group);
		json_decref(h->restore_from);
	}
	HF_VEC_FREE(&r->replicas);
	free(r->cluster);
	free(r->reports_epoch);
	hf_proto_sync_resp_init(r);
}

json_t *hf_proto_sync_resp_encode(const struct hf_proto_sync_resp *r)
{
	json_t *o = json_object(), *tasks = json_array();

	for (size_t i = 0; i < r->tasks.len; i++)
		json_array_append_new(tasks,
				      hf_proto_launch_encode(&r->tasks.items[i]));
	json_object_set_new(o, "generation", json_integer(r->generation));
	if (r->tasks_unchanged) {
		json_decref(tasks);
		json_object_set_new(o, "tasks_unchanged", json_true());
	} else {
		json_object_set_new(o, "tasks", tasks);
	}
	json_object_set_new(o, "delete_volumes",
			    strlist_encode(&r->delete_volumes));
	if (r->attachments.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->attachments.len; i++)
			json_array_append_new(
			    a, attachment_encode(&r->attachments.items[i]));
		json_object_set_new(o, "attachments", a);
	}
	if (r->delete_replicas.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->delete_replicas.len; i++)
			json_array_append_new(
			    a, json_pack("{s:s, s:s}", "id",
					 r->delete_replicas.items[i].id,
					 "replica",
					 r->delete_replicas.items[i].replica));
		json_object_set_new(o, "delete_replicas", a);
	}
	if (r->replicas.len) {
		json_t *a = json_array();

		for (size_t i = 0; i < r->replicas.len; i++) {
			const struct hf_proto_held_replica *h =
			    &r->replicas.items[i];

			json_t *e = json_pack(
			    "{s:s, s:s, s:s, s:s, s:I}", "volume", h->volume,
			    "id", h->id, "replica", h->replica, "key", h->key,
			    "size", (json_int_t)h->size);

			if (h->restore_from)
				json_object_set(e, "restore_from",
						h->restore_from);
			if (h->standby)
				json_object_set_new(e, "standby", json_true());
			if (h->group)
				json_object_set_new(e, "group",
						    json_string(h->group));
			if (h->clone_id)
				json_object_set_new(
				    e, "clone_from",
				    json_pack("{s:s, s:s, s:s}", "id",
					      h->clone_id, "replica",
					      h->clone_replica, "snapshot",
					      h->clone_snap));
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "replicas", a);
	}
	json_object_set_new(o, "heartbeat_interval",
			    json_integer(r->heartbeat_interval));
	if (r->cluster)
		json_object_set_new(o, "cluster", json_string(r->cluster));
	if (r->reports_epoch)
		json_object_set_new(o, "reports_epoch",
				    json_string(r->reports_epoch));
	if (r->resend)
		json_object_set_new(o, "resend", json_true());
	return o;
}

static bool sync_resp_decode(const struct dec *d, const json_t *j,
			     struct hf_proto_sync_resp *out)
{
	const json_t *tasks = NULL, *v;
	bool has_gen = false;
	size_t i;

	if (!json_is_object(j))
		return fail(d, NULL, "the answer must be a JSON object");
	if (!get_int(d, j, "generation", &out->generation, &has_gen) ||
	    !get_arr(d, j, "tasks", &tasks) ||
	    !get_strlist(d, j, "delete_volumes", &out->delete_volumes) ||
	    !DECODE_ARRAY(d, j, "attachments", &out->attachments,
			  attachment_decode) ||
	    !DECODE_ARRAY(d, j, "delete_replicas", &out->delete_replicas,
			  replica_ref_decode) ||
	    !DECODE_ARRAY(d, j, "replicas", &out->replicas,
			  held_replica_decode) ||
	    !get_int(d, j, "heartbeat_interval", &out->heartbeat_interval,
		     NULL) ||
	    !get_str(d, j, "cluster", false, &out->cluster) ||
	    !get_str(d, j, "reports_epoch", false, &out->reports_epoch) ||
	    !get_bool(d, j, "resend", &out->resend) ||
	    !get_bool(d, j, "tasks_unchanged", &out->tasks_unchanged))
		return false;
	if (out->tasks_unchanged && tasks)
		return fail(d, "tasks", "must be absent when tasks_unchanged is "
					"true");
	if (!has_gen || (!tasks && !out->tasks_unchanged))
		return fail(d, NULL, "the answer has no %s",
			    has_gen ? "tasks" : "generation");
	json_array_foreach(tasks, i, v) {
		struct hf_proto_launch *l = HF_VEC_PUSH(&out->tasks);
		/* Its sentence is the task's: no "tasks[i]" in it. */
		char *why = NULL;
		struct dec ld = {"", &why};

		hf_proto_launch_init(l);
		if (!launch_decode(&ld, v, l)) {
			/* Kept for its task_id: the agent fails it alone. */
			const char *id = json_string_value(
			    json_object_get(v, "task_id"));

			hf_proto_launch_release(l);
			l->task_id = id ? hf_xstrdup(id) : NULL;
			l->invalid = why;
			why = NULL;
		}
		free(why);
	}
	return true;
}

int hf_proto_sync_resp_decode(const json_t *j, struct hf_proto_sync_resp *out,
			      char **err)
{
	struct dec d = {"", err};

	*err = NULL;
	return sync_resp_decode(&d, j, out) ? 0 : HF_EINVAL;
}

/* ---- register --------------------------------------------------------- */

void hf_proto_register_release(struct hf_proto_register *r)
{
	free(r->node_id);
	free(r->token);
	memset(r, 0, sizeof(*r));
}

json_t *hf_proto_register_encode(const struct hf_proto_register *r)
{
	return json_pack("{s:s?, s:s?}", "node_id", r->node_id, "token",
			 r->token);
}

int hf_proto_register_decode(const json_t *j, struct hf_proto_register *out,
			     char **err)
{
	struct dec d = {"", err};
	bool ok;

	*err = NULL;
	if (!json_is_object(j))
		ok = fail(&d, NULL, "the body must be a JSON object");
	else
		ok = get_str(&d, j, "node_id", true, &out->node_id) &&
		     get_str(&d, j, "token", true, &out->token);
	return ok ? 0 : HF_EINVAL;
}
