/*
 * launch.c - launch.json, the agent's order to a shim: parsing with
 * validation (every message names the key at fault), and formatting.
 * Pure: no I/O but hf_shim_launch_write.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/err.h"
#include "common/rlimit.h"
#include "common/util.h"
#include "shim/shim.h"

#define DEFAULT_LOG_MAX_BYTES (10 * 1024 * 1024)
#define DEFAULT_LOG_KEEP 3
#define DEFAULT_GRACE 5.0
#define MAX_LOG_KEEP 1000
#define MAX_ID_LEN 200

void hf_shim_launch_init(struct hf_shim_launch *l)
{
	memset(l, 0, sizeof(*l));
	l->cgroup_parent = hf_xstrdup("holdfast");
	l->log_max_bytes = DEFAULT_LOG_MAX_BYTES;
	l->log_keep = DEFAULT_LOG_KEEP;
	l->kill_grace_period = DEFAULT_GRACE;
}

void hf_shim_launch_release(struct hf_shim_launch *l)
{
	free(l->task_id);
	free(l->cmd);
	free(l->sandbox);
	hf_kvlist_release(&l->env);
	HF_VEC_FREE(&l->rlimits);
	free(l->cgroup_parent);
	free(l->user);
	for (size_t i = 0; i < l->mounts.len; i++) {
		free(l->mounts.items[i].source);
		free(l->mounts.items[i].target);
	}
	HF_VEC_FREE(&l->mounts);
	hf_strlist_release(&l->hide);
	hf_strlist_release(&l->visible);
	memset(l, 0, sizeof(*l));
}

/* A cgroup directory name: no separators, no dot files, a short charset. */
static bool is_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_ID_LEN || s[0] == '.')
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._:@+-", c)))
			return false;
	}
	return true;
}

/* A relative path of ids: "holdfast", "system.slice/holdfast". */
static bool is_id_path(const char *s)
{
	char *copy = hf_xstrdup(s), *save = NULL, *comp;
	bool ok = *s != '\0' && *s != '/' && s[strlen(s) - 1] != '/' &&
		  !strstr(s, "//");

	for (comp = strtok_r(copy, "/", &save); ok && comp;
	     comp = strtok_r(NULL, "/", &save))
		ok = is_id(comp);
	free(copy);
	return ok;
}

static const char *const known_keys[] = {
	"task_id",	 "cmd",		 "env",	      "sandbox",
	"rlimits",	 "cpus",	 "memory_mb", "cgroup_parent",
	"log_max_bytes", "log_keep",	 "kill_grace_period", "user",
	"isolate",	 "mounts",	 "hide",      "visible",
	"capabilities",	 "privileged",
};

/*
 * The readers below set *err to a message and return false; a missing
 * optional key (or JSON null) leaves the default.
 */
static bool get_string(json_t *root, const char *key, bool required,
		       char **dst, char **err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v)) {
		if (required)
			*err = hf_xasprintf("\"%s\" is required", key);
		return !required;
	}
	if (!json_is_string(v)) {
		*err = hf_xasprintf("\"%s\" must be a string", key);
		return false;
	}
	if (json_string_length(v) != strlen(json_string_value(v))) {
		*err = hf_xasprintf("\"%s\" must not contain NUL bytes", key);
		return false;
	}
	free(*dst);
	*dst = hf_xstrdup(json_string_value(v));
	return true;
}

static bool get_int(json_t *root, const char *key, int64_t min, int64_t max,
		    int64_t *dst, char **err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		*err = hf_xasprintf("\"%s\" must be an integer from %lld "
				    "to %lld", key, (long long)min,
				    (long long)max);
		return false;
	}
	*dst = json_integer_value(v);
	return true;
}

static bool get_number(json_t *root, const char *key, double max,
		       double *dst, char **err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
	    json_number_value(v) < 0 || json_number_value(v) > max) {
		*err = hf_xasprintf("\"%s\" must be a number from 0 to %g",
				    key, max);
		return false;
	}
	*dst = json_number_value(v);
	return true;
}

static bool get_env(json_t *root, struct hf_kvlist *env, char **err)
{
	json_t *v = json_object_get(root, "env"), *val;
	const char *key;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_object(v)) {
		*err = hf_xstrdup("\"env\" must be an object of strings");
		return false;
	}
	json_object_foreach(v, key, val) {
		/*
		 * Names need not be shell identifiers (programs read
		 * "JAVA.OPTS" fine), but "=" or NUL would corrupt envp.
		 */
		if (!*key || strchr(key, '=')) {
			*err = hf_xasprintf("env name \"%s\" must be non-empty "
					    "and must not contain '='", key);
			return false;
		}
		if (!json_is_string(val) ||
		    json_string_length(val) != strlen(json_string_value(val))) {
			*err = hf_xasprintf("env \"%s\" must be a string "
					    "without NUL bytes", key);
			return false;
		}
		hf_kvlist_set(env, key, json_string_value(val));
	}
	return true;
}

static bool get_rlimit_value(json_t *o, const char *name, const char *key,
			     int64_t *dst, char **err)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < -1) {
		*err = hf_xasprintf("rlimit %s: \"%s\" must be an integer, "
				    "-1 for unlimited", name, key);
		return false;
	}
	*dst = json_integer_value(v);
	return true;
}

static bool get_rlimits(json_t *root, struct hf_shim_launch *l, char **err)
{
	json_t *v = json_object_get(root, "rlimits"), *o;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v)) {
		*err = hf_xstrdup("\"rlimits\" must be an array");
		return false;
	}
	json_array_foreach(v, i, o) {
		json_t *n = json_object_get(o, "name");
		const char *name = json_string_value(n);
		struct hf_shim_rlimit r;

		if (!json_is_object(o) || !name) {
			*err = hf_xasprintf("rlimits[%zu] must be an object "
					    "with a \"name\"", i);
			return false;
		}
		r.resource = hf_rlimit_by_name(name);
		if (r.resource < 0) {
			*err = hf_xasprintf("rlimits[%zu]: unknown limit "
					    "\"%s\" (expected RLIMIT_NOFILE "
					    "and the like)", i, name);
			return false;
		}
		if (!get_rlimit_value(o, name, "soft", &r.soft, err) ||
		    !get_rlimit_value(o, name, "hard", &r.hard, err))
			return false;
		if (r.hard != -1 && (r.soft == -1 || r.soft > r.hard)) {
			*err = hf_xasprintf("rlimit %s: soft %lld exceeds hard "
					    "%lld", name, (long long)r.soft,
					    (long long)r.hard);
			return false;
		}
		for (size_t j = 0; j < l->rlimits.len; j++) {
			if (l->rlimits.items[j].resource == r.resource) {
				*err = hf_xasprintf("rlimit %s is given twice",
						    name);
				return false;
			}
		}
		*HF_VEC_PUSH(&l->rlimits) = r;
	}
	return true;
}

static bool get_bool(json_t *root, const char *key, bool *dst, char **err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return true;
	if (!json_is_boolean(v)) {
		*err = hf_xasprintf("\"%s\" must be true or false", key);
		return false;
	}
	*dst = json_is_true(v);
	return true;
}

/* An absolute path without "." or ".." parts, without NUL. */
static bool abs_path_ok(json_t *v)
{
	const char *s = json_string_value(v);

	return s && json_string_length(v) == strlen(s) && s[0] == '/' &&
	       !strstr(s, "/./") && !strstr(s, "/../") &&
	       !hf_str_has_prefix(s, "/..") &&
	       !(strlen(s) >= 2 && strcmp(s + strlen(s) - 2, "/.") == 0) &&
	       !(strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0);
}

/* A relative path of plain components (no "", ".", ".."). */
static bool rel_path_ok(const char *s)
{
	const char *p = s;

	if (!*s || *s == '/')
		return false;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p == '/' && !*++p)
			return false;
	}
	return true;
}

static bool get_paths(json_t *root, const char *key, struct hf_strlist *dst,
		      char **err)
{
	json_t *v = json_object_get(root, key), *e;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v)) {
		*err = hf_xasprintf("\"%s\" must be an array of absolute paths",
				    key);
		return false;
	}
	json_array_foreach(v, i, e) {
		if (!abs_path_ok(e) || strcmp(json_string_value(e), "/") == 0) {
			*err = hf_xasprintf("%s[%zu] must be an absolute path "
					    "other than / without . or .. parts",
					    key, i);
			return false;
		}
		hf_strlist_push(dst, json_string_value(e));
	}
	return true;
}

static bool get_mounts(json_t *root, struct hf_shim_launch *l, char **err)
{
	json_t *v = json_object_get(root, "mounts"), *o;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v)) {
		*err = hf_xstrdup("\"mounts\" must be an array");
		return false;
	}
	json_array_foreach(v, i, o) {
		json_t *src = json_object_get(o, "source");
		const char *dst = json_string_value(json_object_get(o, "target"));
		struct hf_shim_mount *m;

		if (!abs_path_ok(src) || !dst ||
		    strlen(dst) != json_string_length(json_object_get(o,
								    "target")) ||
		    !rel_path_ok(dst)) {
			*err = hf_xasprintf("mounts[%zu] needs an absolute "
					    "\"source\" and a relative "
					    "\"target\" without . or .. parts",
					    i);
			return false;
		}
		m = HF_VEC_PUSH(&l->mounts);
		m->source = hf_xstrdup(json_string_value(src));
		m->target = hf_xstrdup(dst);
	}
	return true;
}

static bool get_caps(json_t *root, struct hf_shim_launch *l, char **err)
{
	json_t *v = json_object_get(root, "capabilities"), *e;
	size_t i;

	if (!v || json_is_null(v))
		return true;
	if (!json_is_array(v)) {
		*err = hf_xstrdup("\"capabilities\" must be an array of names");
		return false;
	}
	json_array_foreach(v, i, e) {
		int cap = json_is_string(e) ? hf_cap_by_name(json_string_value(e))
					    : -1;

		if (cap < 0) {
			*err = hf_xasprintf("capabilities[%zu]: unknown "
					    "capability (expected a name such "
					    "as \"CAP_NET_ADMIN\")", i);
			return false;
		}
		l->caps |= HF_CAP_BIT(cap);
	}
	return true;
}

static bool check_keys(json_t *root, char **err)
{
	const char *key;
	json_t *v;

	json_object_foreach(root, key, v) {
		bool known = false;

		for (size_t i = 0; i < HF_ARRAY_LEN(known_keys); i++)
			known = known || strcmp(known_keys[i], key) == 0;
		if (!known) {
			*err = hf_xasprintf("unknown key \"%s\"", key);
			return false;
		}
	}
	return true;
}

static bool validate(struct hf_shim_launch *l, char **err)
{
	if (!is_id(l->task_id)) {
		*err = hf_xasprintf("\"task_id\" \"%s\" must be 1 to %d of "
				    "[A-Za-z0-9._:@+-], not starting with '.'",
				    l->task_id, MAX_ID_LEN);
		return false;
	}
	if (!*l->cmd) {
		*err = hf_xstrdup("\"cmd\" must not be empty");
		return false;
	}
	if (l->sandbox[0] != '/') {
		*err = hf_xasprintf("\"sandbox\" \"%s\" must be an absolute "
				    "path", l->sandbox);
		return false;
	}
	if (!is_id_path(l->cgroup_parent)) {
		*err = hf_xasprintf("\"cgroup_parent\" \"%s\" must be a "
				    "relative path of [A-Za-z0-9._:@+-] names",
				    l->cgroup_parent);
		return false;
	}
	if (l->user && !*l->user) {
		*err = hf_xstrdup("\"user\" must be a user name or null");
		return false;
	}
	if (!l->isolate && (l->mounts.len || l->hide.len || l->visible.len)) {
		*err = hf_xstrdup("\"mounts\", \"hide\" and \"visible\" need "
				  "\"isolate\"");
		return false;
	}
	return true;
}

int hf_shim_launch_parse(const char *json, size_t len,
			 struct hf_shim_launch *l, char **errmsg)
{
	json_error_t jerr;
	json_t *root;
	int64_t keep, mem;
	char *err = NULL;
	int rc = HF_EINVAL;

	*errmsg = NULL;
	hf_shim_launch_release(l);
	hf_shim_launch_init(l);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		*errmsg = hf_xasprintf("not valid JSON: %s (line %d, "
				       "column %d)", jerr.text, jerr.line,
				       jerr.column);
		return HF_EPARSE;
	}
	if (!json_is_object(root)) {
		err = hf_xstrdup("must be a JSON object");
		goto out;
	}
	keep = l->log_keep;
	mem = l->memory_mb;
	if (!check_keys(root, &err) ||
	    !get_string(root, "task_id", true, &l->task_id, &err) ||
	    !get_string(root, "cmd", true, &l->cmd, &err) ||
	    !get_string(root, "sandbox", true, &l->sandbox, &err) ||
	    !get_string(root, "cgroup_parent", false, &l->cgroup_parent,
			&err) ||
	    !get_string(root, "user", false, &l->user, &err) ||
	    !get_env(root, &l->env, &err) || !get_rlimits(root, l, &err) ||
	    !get_number(root, "cpus", 4096, &l->cpus, &err) ||
	    !get_int(root, "memory_mb", 0, INT64_MAX / (1024 * 1024), &mem,
		     &err) ||
	    !get_int(root, "log_max_bytes", 0, INT64_MAX, &l->log_max_bytes,
		     &err) ||
	    !get_int(root, "log_keep", 0, MAX_LOG_KEEP, &keep, &err) ||
	    !get_number(root, "kill_grace_period", 86400,
			&l->kill_grace_period, &err) ||
	    !get_bool(root, "isolate", &l->isolate, &err) ||
	    !get_mounts(root, l, &err) ||
	    !get_paths(root, "hide", &l->hide, &err) ||
	    !get_paths(root, "visible", &l->visible, &err) ||
	    !get_caps(root, l, &err) ||
	    !get_bool(root, "privileged", &l->privileged, &err) ||
	    !validate(l, &err))
		goto out;
	l->log_keep = (int)keep;
	l->memory_mb = mem;
	rc = 0;
out:
	json_decref(root);
	if (rc) {
		*errmsg = err;
		hf_shim_launch_release(l);
		hf_shim_launch_init(l);
	}
	return rc;
}

char *hf_shim_launch_format(const struct hf_shim_launch *l)
{
	json_t *root = json_object(), *env = json_object(), *rl = json_array();
	char *text, *out;

	for (size_t i = 0; i < l->env.len; i++)
		json_object_set_new(env, l->env.items[i].key,
				    json_string(l->env.items[i].value));
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_shim_rlimit *r = &l->rlimits.items[i];

		json_array_append_new(
			rl, json_pack("{s:s, s:I, s:I}", "name",
				      hf_rlimit_name(r->resource), "soft",
				      (json_int_t)r->soft, "hard",
				      (json_int_t)r->hard));
	}
	json_object_set_new(root, "task_id", json_string(l->task_id));
	json_object_set_new(root, "cmd", json_string(l->cmd));
	json_object_set_new(root, "env", env);
	json_object_set_new(root, "sandbox", json_string(l->sandbox));
	json_object_set_new(root, "rlimits", rl);
	json_object_set_new(root, "cpus", json_real(l->cpus));
	json_object_set_new(root, "memory_mb", json_integer(l->memory_mb));
	json_object_set_new(root, "cgroup_parent",
			    json_string(l->cgroup_parent));
	json_object_set_new(root, "log_max_bytes",
			    json_integer(l->log_max_bytes));
	json_object_set_new(root, "log_keep", json_integer(l->log_keep));
	json_object_set_new(root, "kill_grace_period",
			    json_real(l->kill_grace_period));
	json_object_set_new(root, "user",
			    l->user ? json_string(l->user) : json_null());
	json_object_set_new(root, "isolate", json_boolean(l->isolate));
	{
		json_t *m = json_array(), *hide = json_array();
		json_t *vis = json_array(), *caps = json_array();

		for (size_t i = 0; i < l->mounts.len; i++)
			json_array_append_new(
				m, json_pack("{s:s, s:s}", "source",
					     l->mounts.items[i].source, "target",
					     l->mounts.items[i].target));
		for (size_t i = 0; i < l->hide.len; i++)
			json_array_append_new(hide,
					      json_string(l->hide.items[i]));
		for (size_t i = 0; i < l->visible.len; i++)
			json_array_append_new(vis,
					      json_string(l->visible.items[i]));
		for (int c = 0; c <= hf_cap_last(); c++)
			if (l->caps & HF_CAP_BIT(c))
				json_array_append_new(
					caps, json_string(hf_cap_name(c)));
		json_object_set_new(root, "mounts", m);
		json_object_set_new(root, "hide", hide);
		json_object_set_new(root, "visible", vis);
		json_object_set_new(root, "capabilities", caps);
	}
	json_object_set_new(root, "privileged", json_boolean(l->privileged));
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	out = hf_xasprintf("%s\n", text);
	free(text);
	return out;
}

int hf_shim_launch_write(const char *taskdir, const struct hf_shim_launch *l)
{
	char *path = hf_xasprintf("%s/launch.json", taskdir);
	char *text = hf_shim_launch_format(l);
	int rc = hf_write_file_atomic(path, text, strlen(text), 0600);
	int saved = errno;

	free(path);
	free(text);
	errno = saved;
	return rc;
}

/* Whether this process may raise hard limits (CAP_SYS_RESOURCE). */
static bool can_raise_limits(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return geteuid() == 0;
	return (data[CAP_SYS_RESOURCE / 32].effective >>
		(CAP_SYS_RESOURCE % 32)) & 1;
}

static void limit_text(struct hf_buf *b, rlim_t v)
{
	if (v == RLIM_INFINITY)
		hf_buf_adds(b, "unlimited");
	else
		hf_buf_addf(b, "%llu", (unsigned long long)v);
}

int hf_shim_rlimits_check(const struct hf_shim_launch *l, char **msg)
{
	int may_raise = -1;

	*msg = NULL;
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_shim_rlimit *r = &l->rlimits.items[i];
		rlim_t want = r->hard < 0 ? RLIM_INFINITY : (rlim_t)r->hard;
		struct rlimit cur;
		struct hf_buf b = HF_BUF_INIT;

		if (getrlimit((__rlimit_resource_t)r->resource, &cur) < 0 ||
		    want <= cur.rlim_max)
			continue;
		if (may_raise == -1)
			may_raise = can_raise_limits();
		if (may_raise)
			continue;
		hf_buf_addf(&b, "rlimit %s: the task asks for ",
			    hf_rlimit_name(r->resource));
		limit_text(&b, r->soft < 0 ? RLIM_INFINITY : (rlim_t)r->soft);
		hf_buf_adds(&b, " (hard ");
		limit_text(&b, want);
		hf_buf_adds(&b, "), above this node's hard limit of ");
		limit_text(&b, cur.rlim_max);
		hf_buf_adds(&b, ", which only a holdfast agent with "
				"CAP_SYS_RESOURCE could raise: lower it in the "
				"spec, or raise the agent's limit");
		*msg = hf_buf_detach(&b);
		return HF_EINVAL;
	}
	return 0;
}
