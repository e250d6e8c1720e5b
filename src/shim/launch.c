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
#include <sys/resource.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/shim.h"

#define DEFAULT_LOG_MAX_BYTES (10 * 1024 * 1024)
#define DEFAULT_LOG_KEEP 3
#define DEFAULT_GRACE 5.0
#define MAX_LOG_KEEP 1000
#define MAX_ID_LEN 200

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{"RLIMIT_AS", RLIMIT_AS},
	{"RLIMIT_CORE", RLIMIT_CORE},
	{"RLIMIT_CPU", RLIMIT_CPU},
	{"RLIMIT_DATA", RLIMIT_DATA},
	{"RLIMIT_FSIZE", RLIMIT_FSIZE},
	{"RLIMIT_LOCKS", RLIMIT_LOCKS},
	{"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
	{"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
	{"RLIMIT_NICE", RLIMIT_NICE},
	{"RLIMIT_NOFILE", RLIMIT_NOFILE},
	{"RLIMIT_NPROC", RLIMIT_NPROC},
	{"RLIMIT_RSS", RLIMIT_RSS},
	{"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
	{"RLIMIT_RTTIME", RLIMIT_RTTIME},
	{"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
	{"RLIMIT_STACK", RLIMIT_STACK},
};

int hf_shim_rlimit_by_name(const char *name)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(rlimit_names); i++)
		if (strcmp(rlimit_names[i].name, name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

const char *hf_shim_rlimit_name(int resource)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(rlimit_names); i++)
		if (rlimit_names[i].resource == resource)
			return rlimit_names[i].name;
	return NULL;
}

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
		r.resource = hf_shim_rlimit_by_name(name);
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
				      hf_shim_rlimit_name(r->resource), "soft",
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
