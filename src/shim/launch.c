/*
 * launch.c - launch.json, the agent's order to a shim: parsing with
 * validation (every message names the key at fault), in the shim's own
 * JSON reader (json.h); the agent formats it (shim_client.c). Pure: no I/O.
 */
#include <errno.h>
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
#include "shim/json.h"
#include "shim/shim.h"

#define DEFAULT_LOG_MAX_BYTES (10 * 1024 * 1024)
#define DEFAULT_LOG_KEEP 3
#define DEFAULT_GRACE 5.0
#define MAX_LOG_KEEP 1000
#define MAX_ID_LEN 200
/* The server's defaults (holdfast server --backoff-*). */
#define DEFAULT_BACKOFF_BASE 1.0
#define DEFAULT_BACKOFF_MAX 60.0
#define DEFAULT_RESET_AFTER 120.0

void hf_shim_launch_init(struct hf_shim_launch *l)
{
	memset(l, 0, sizeof(*l));
	l->cgroup_parent = hf_xstrdup("holdfast");
	l->log_max_bytes = DEFAULT_LOG_MAX_BYTES;
	l->log_keep = DEFAULT_LOG_KEEP;
	l->kill_grace_period = DEFAULT_GRACE;
	l->restart.backoff_base = DEFAULT_BACKOFF_BASE;
	l->restart.backoff_max = DEFAULT_BACKOFF_MAX;
	l->restart.reset_after = DEFAULT_RESET_AFTER;
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
	HF_VEC_FREE(&l->groups);
	for (size_t i = 0; i < l->mounts.len; i++) {
		free(l->mounts.items[i].source);
		free(l->mounts.items[i].target);
		free(l->mounts.items[i].fstype);
		free(l->mounts.items[i].device);
		free(l->mounts.items[i].expect);
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
	"capabilities",	 "privileged",	 "restart",   "ids",
};

static const char *const ids_keys[] = {"uid", "gid", "groups"};

static const char *const restart_keys[] = {
	"backoff_base", "backoff_max", "reset_after", "max",
};

/*
 * The readers below set *err to a message and return false; a missing
 * optional key (or JSON null) leaves the default. The reader has refused
 * NUL inside strings already (json.h), so every string is a C string.
 */
static bool get_string(const struct hf_json *root, const char *key, bool required,
		       char **dst, char **err)
{
	const struct hf_json *v = hf_json_get(root, key);

	if (hf_json_is_null(v)) {
		if (required)
			*err = hf_xasprintf("\"%s\" is required", key);
		return !required;
	}
	if (!hf_json_str(v)) {
		*err = hf_xasprintf("\"%s\" must be a string", key);
		return false;
	}
	free(*dst);
	*dst = hf_xstrdup(v->s);
	return true;
}

static bool get_int(const struct hf_json *root, const char *key, int64_t min, int64_t max,
		    int64_t *dst, char **err)
{
	const struct hf_json *v = hf_json_get(root, key);

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_INT || v->i < min || v->i > max) {
		*err = hf_xasprintf("\"%s\" must be an integer from %lld "
				    "to %lld", key, (long long)min,
				    (long long)max);
		return false;
	}
	*dst = v->i;
	return true;
}

static bool get_number(const struct hf_json *root, const char *key, double max,
		       double *dst, char **err)
{
	const struct hf_json *v = hf_json_get(root, key);

	if (hf_json_is_null(v))
		return true;
	if (!hf_json_is_number(v) || !isfinite(v->d) || v->d < 0 ||
	    v->d > max) {
		*err = hf_xasprintf("\"%s\" must be a number from 0 to %g",
				    key, max);
		return false;
	}
	*dst = v->d;
	return true;
}

static bool get_env(const struct hf_json *root, struct hf_kvlist *env, char **err)
{
	const struct hf_json *v = hf_json_get(root, "env");

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_OBJECT) {
		*err = hf_xstrdup("\"env\" must be an object of strings");
		return false;
	}
	for (size_t k = 0; k < v->n; k++) {
		const char *key = v->keys[k];

		/*
		 * Names need not be shell identifiers (programs read
		 * "JAVA.OPTS" fine), but "=" would corrupt envp.
		 */
		if (!*key || strchr(key, '=')) {
			*err = hf_xasprintf("env name \"%s\" must be non-empty "
					    "and must not contain '='", key);
			return false;
		}
		if (!hf_json_str(&v->items[k])) {
			*err = hf_xasprintf("env \"%s\" must be a string "
					    "without NUL bytes", key);
			return false;
		}
		hf_kvlist_set(env, key, v->items[k].s);
	}
	return true;
}

static bool get_rlimit_value(const struct hf_json *o, const char *name, const char *key,
			     int64_t *dst, char **err)
{
	const struct hf_json *v = hf_json_get(o, key);

	if (!v || v->type != HF_JSON_INT || v->i < -1) {
		*err = hf_xasprintf("rlimit %s: \"%s\" must be an integer, "
				    "-1 for unlimited", name, key);
		return false;
	}
	*dst = v->i;
	return true;
}

static bool get_rlimits(const struct hf_json *root, struct hf_shim_launch *l, char **err)
{
	const struct hf_json *v = hf_json_get(root, "rlimits");

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_ARRAY) {
		*err = hf_xstrdup("\"rlimits\" must be an array");
		return false;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct hf_json *o = &v->items[i];
		const char *name = hf_json_str(hf_json_get(o, "name"));
		struct hf_shim_rlimit r;

		if (!name) {
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

static bool get_bool(const struct hf_json *root, const char *key, bool *dst, char **err)
{
	const struct hf_json *v = hf_json_get(root, key);

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_BOOL) {
		*err = hf_xasprintf("\"%s\" must be true or false", key);
		return false;
	}
	*dst = v->b;
	return true;
}

/* An absolute path without "." or ".." parts. */
static bool abs_path_ok(const struct hf_json *v)
{
	const char *s = hf_json_str(v);

	return s && s[0] == '/' && !strstr(s, "/./") && !strstr(s, "/../") &&
	       !hf_str_has_prefix(s, "/..") &&
	       !(strlen(s) >= 2 && strcmp(s + strlen(s) - 2, "/.") == 0) &&
	       !(strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0);
}

/* A relative path of plain components (no "", ".", ".."). */
static bool rel_path_ok(const char *s)
{
	const char *p = s;

	if (!s || !*s || *s == '/')
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

static bool get_paths(const struct hf_json *root, const char *key, struct hf_strlist *dst,
		      char **err)
{
	const struct hf_json *v = hf_json_get(root, key);

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_ARRAY) {
		*err = hf_xasprintf("\"%s\" must be an array of absolute paths",
				    key);
		return false;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct hf_json *e = &v->items[i];

		if (!abs_path_ok(e) || strcmp(e->s, "/") == 0) {
			*err = hf_xasprintf("%s[%zu] must be an absolute path "
					    "other than / without . or .. parts",
					    key, i);
			return false;
		}
		hf_strlist_push(dst, e->s);
	}
	return true;
}

/* A device entry: /dev/loopN, an identity, ext4, a target, ro a boolean. */
static bool device_mount_ok(const struct hf_json *e, const char *dev,
			    char **err, size_t i)
{
	const char *expect = hf_json_str(hf_json_get(e, "expect"));
	const char *fs = hf_json_str(hf_json_get(e, "fstype"));
	const struct hf_json *ro = hf_json_get(e, "ro");
	const char *digits = dev + strlen("/dev/loop");

	if (!hf_str_has_prefix(dev, "/dev/loop") || !*digits ||
	    strspn(digits, "0123456789") != strlen(digits) ||
	    strlen(digits) > 7 || hf_json_get(e, "source")) {
		*err = hf_xasprintf("mounts[%zu]: \"device\" must be a loop "
				    "device (/dev/loopN), without "
				    "\"source\"", i);
		return false;
	}
	if (!expect || !*expect || strlen(expect) >= 64 || !fs ||
	    strcmp(fs, "ext4") != 0 ||
	    !rel_path_ok(hf_json_str(hf_json_get(e, "target")))) {
		*err = hf_xasprintf("mounts[%zu]: a device needs \"expect\" "
				    "(its identity, 1-63 bytes), \"fstype\": "
				    "\"ext4\" and a relative \"target\"", i);
		return false;
	}
	if (!hf_json_is_null(ro) && ro->type != HF_JSON_BOOL) {
		*err = hf_xasprintf("mounts[%zu]: \"ro\" must be true or "
				    "false", i);
		return false;
	}
	return true;
}

static bool get_mounts(const struct hf_json *root, struct hf_shim_launch *l, char **err)
{
	const struct hf_json *v = hf_json_get(root, "mounts");

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_ARRAY) {
		*err = hf_xstrdup("\"mounts\" must be an array");
		return false;
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct hf_json *e = &v->items[i];
		const struct hf_json *src = hf_json_get(e, "source");
		const char *dst = hf_json_str(hf_json_get(e, "target"));
		const struct hf_json *fs = hf_json_get(e, "fstype");
		const char *dev = hf_json_str(hf_json_get(e, "device"));
		const struct hf_json *ro = hf_json_get(e, "ro");
		struct hf_shim_mount *m;

		if (dev) {
			if (!device_mount_ok(e, dev, err, i))
				return false;
		} else if (!abs_path_ok(src) || !rel_path_ok(dst)) {
			*err = hf_xasprintf("mounts[%zu] needs an absolute "
					    "\"source\" (or a \"device\") and a "
					    "relative \"target\" without . or .. "
					    "parts",
					    i);
			return false;
		}
		if (!hf_json_is_null(fs) && !(hf_json_str(fs) &&
					      strcmp(hf_json_str(fs),
						     "ext4") == 0)) {
			*err = hf_xasprintf("mounts[%zu]: \"fstype\" must be "
					    "\"ext4\" or null", i);
			return false;
		}
		m = HF_VEC_PUSH(&l->mounts);
		m->source = dev ? NULL : hf_xstrdup(src->s);
		m->target = hf_xstrdup(dst);
		m->fstype = hf_json_is_null(fs) ? NULL : hf_xstrdup(fs->s);
		m->device = dev ? hf_xstrdup(dev) : NULL;
		m->expect = dev ? hf_xstrdup(hf_json_str(hf_json_get(e,
								    "expect")))
				: NULL;
		m->ro = !hf_json_is_null(ro) && ro->b;
	}
	return true;
}

static bool get_caps(const struct hf_json *root, struct hf_shim_launch *l, char **err)
{
	const struct hf_json *v = hf_json_get(root, "capabilities");

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_ARRAY) {
		*err = hf_xstrdup("\"capabilities\" must be an array of names");
		return false;
	}
	for (size_t i = 0; i < v->n; i++) {
		const char *name = hf_json_str(&v->items[i]);
		int cap = name ? hf_cap_by_name(name) : -1;

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

static bool check_keys(const struct hf_json *o, const char *where,
		       const char *const *known, size_t n_known, char **err)
{
	for (size_t k = 0; k < o->n; k++) {
		bool ok = false;

		for (size_t i = 0; i < n_known; i++)
			ok = ok || strcmp(known[i], o->keys[k]) == 0;
		if (!ok) {
			*err = hf_xasprintf("unknown key \"%s\"%s", o->keys[k],
					    where);
			return false;
		}
	}
	return true;
}

/* "ids": absent or null, the shim looks the user up itself. */
static bool get_ids(const struct hf_json *root, struct hf_shim_launch *l,
		    char **err)
{
	const struct hf_json *v = hf_json_get(root, "ids"), *g;
	int64_t uid = -1, gid = -1;
	char *sub = NULL;

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_OBJECT) {
		*err = hf_xstrdup("\"ids\" must be an object or null");
		return false;
	}
	if (!check_keys(v, " in \"ids\"", ids_keys, HF_ARRAY_LEN(ids_keys),
			err))
		return false;
	if (!get_int(v, "uid", 0, UINT32_MAX - 1, &uid, &sub) ||
	    !get_int(v, "gid", 0, UINT32_MAX - 1, &gid, &sub)) {
		*err = hf_xasprintf("ids: %s", sub);
		free(sub);
		return false;
	}
	if (uid < 0 || gid < 0) {
		*err = hf_xstrdup("ids: \"uid\" and \"gid\" are required");
		return false;
	}
	g = hf_json_get(v, "groups");
	if (!hf_json_is_null(g) && g->type != HF_JSON_ARRAY) {
		*err = hf_xstrdup("ids: \"groups\" must be an array of group "
				  "ids");
		return false;
	}
	for (size_t i = 0; g && g->type == HF_JSON_ARRAY && i < g->n; i++) {
		const struct hf_json *e = &g->items[i];

		if (e->type != HF_JSON_INT || e->i < 0 ||
		    e->i > (int64_t)UINT32_MAX - 1 || i >= 65536) {
			*err = hf_xasprintf("ids: groups[%zu] must be a group "
					    "id (at most 65536 of them)", i);
			return false;
		}
		*HF_VEC_PUSH(&l->groups) = (uint32_t)e->i;
	}
	l->has_ids = true;
	l->uid = (uint32_t)uid;
	l->gid = (uint32_t)gid;
	return true;
}

/* "restart": absent or null, no policy: the shim ends with its task. */
static bool get_restart(const struct hf_json *root, struct hf_shim_launch *l, char **err)
{
	const struct hf_json *v = hf_json_get(root, "restart");
	struct hf_shim_restart *r = &l->restart;
	char *sub = NULL;
	bool ok;

	if (hf_json_is_null(v))
		return true;
	if (v->type != HF_JSON_OBJECT) {
		*err = hf_xstrdup("\"restart\" must be an object or null");
		return false;
	}
	r->on = true;
	ok = check_keys(v, " in \"restart\"", restart_keys,
			HF_ARRAY_LEN(restart_keys), err) &&
	     get_number(v, "backoff_base", 86400, &r->backoff_base, &sub) &&
	     get_number(v, "backoff_max", 86400, &r->backoff_max, &sub) &&
	     get_number(v, "reset_after", 86400 * 365.0, &r->reset_after,
			&sub) &&
	     get_int(v, "max", 0, INT32_MAX, &r->max, &sub);
	if (sub) {
		*err = hf_xasprintf("restart: %s", sub);
		free(sub);
	}
	return ok;
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
	if (l->has_ids && !l->user) {
		*err = hf_xstrdup("\"ids\" needs \"user\"");
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
	struct hf_json *root = NULL;
	int64_t keep, mem;
	char *err = NULL;
	int rc = HF_EINVAL;

	*errmsg = NULL;
	hf_shim_launch_release(l);
	hf_shim_launch_init(l);
	if (hf_json_parse(json, len, &root, &err)) {
		*errmsg = hf_xasprintf("not valid JSON: %s", err);
		free(err);
		return HF_EPARSE;
	}
	if (root->type != HF_JSON_OBJECT) {
		err = hf_xstrdup("must be a JSON object");
		goto out;
	}
	keep = l->log_keep;
	mem = l->memory_mb;
	if (!check_keys(root, "", known_keys, HF_ARRAY_LEN(known_keys),
			&err) ||
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
	    !get_restart(root, l, &err) || !get_ids(root, l, &err) ||
	    !validate(l, &err))
		goto out;
	l->log_keep = (int)keep;
	l->memory_mb = mem;
	rc = 0;
out:
	hf_json_free(root);
	if (rc) {
		*errmsg = err;
		hf_shim_launch_release(l);
		hf_shim_launch_init(l);
	}
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

		if (getrlimit(r->resource, &cur) < 0 ||
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
