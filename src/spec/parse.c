/*
 * parse.c - turns a rendered spec (a YAML tree with positions) into the
 * model of spec.h, reporting every problem it meets rather than stopping at
 * the first. Cross-checks that need the whole model live in validate.c.
 */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "common/caps.h"
#include "common/err.h"
#include "common/rlimit.h"
#include "spec/internal.h"

/* Bounds that keep validation fast on hostile specs. */
#define HF_SPEC_MAX_PORTS 1000
#define HF_SPEC_MAX_TASKS 1000

/* ------------------------------------------------------------------ */
/* Paths and diagnostics                                               */

size_t hf_pctx_push(struct hf_pctx *c, const char *seg)
{
	size_t old = c->path.len;

	if (c->path.len)
		hf_buf_addc(&c->path, '.');
	hf_buf_adds(&c->path, seg);
	return old;
}

size_t hf_pctx_push_idx(struct hf_pctx *c, size_t i)
{
	size_t old = c->path.len;

	hf_buf_addf(&c->path, "[%zu]", i);
	return old;
}

void hf_pctx_pop(struct hf_pctx *c, size_t old)
{
	c->path.len = old;
	if (c->path.data)
		c->path.data[old] = '\0';
}

static void vdiag(struct hf_pctx *c, enum hf_diag_level level, int line,
		  int col, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void vdiag(struct hf_pctx *c, enum hf_diag_level level, int line,
		  int col, const char *path, const char *fmt, va_list ap)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_vaddf(&b, fmt, ap);
	hf_diags_add(c->diags, level, c->file, line, col, path, "%s",
		     hf_buf_str(&b));
	hf_buf_release(&b);
}

void hf_pctx_err(struct hf_pctx *c, const struct hf_ynode *at,
		 const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(c, HF_DIAG_ERROR, at ? at->line : 1, at ? at->col : 1,
	      hf_buf_str(&c->path), fmt, ap);
	va_end(ap);
}

void hf_pctx_warn(struct hf_pctx *c, const struct hf_ynode *at,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(c, HF_DIAG_WARNING, at ? at->line : 1, at ? at->col : 1,
	      hf_buf_str(&c->path), fmt, ap);
	va_end(ap);
}

void hf_pctx_err_pos(struct hf_pctx *c, struct hf_pos pos, const char *path,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(c, HF_DIAG_ERROR, pos.line, pos.col, path, fmt, ap);
	va_end(ap);
}

void hf_pctx_warn_pos(struct hf_pctx *c, struct hf_pos pos, const char *path,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(c, HF_DIAG_WARNING, pos.line, pos.col, path, fmt, ap);
	va_end(ap);
}

static struct hf_pos pos_of(const struct hf_ynode *n)
{
	struct hf_pos p = {n ? n->line : 1, n ? n->col : 1};

	return p;
}

/* Records a use of a feature holdfast cannot honour yet, at the current path. */
static void unsupported(struct hf_pctx *c, const struct hf_ynode *at,
			const char *feature)
{
	struct hf_spec_feature_use *u = HF_VEC_PUSH(&c->spec->unsupported);

	u->feature = hf_xstrdup(feature);
	u->path = hf_xstrdup(hf_buf_str(&c->path));
	u->pos = pos_of(at);
}

/* The same, with the whole message (hf_spec_check_supported says it). */
static void unsupported_msg(struct hf_pctx *c, struct hf_pos pos,
			    const char *feature, const char *fmt, ...)
    HF_PRINTF(4, 5);
static void unsupported_msg(struct hf_pctx *c, struct hf_pos pos,
			    const char *feature, const char *fmt, ...)
{
	struct hf_spec_feature_use *u = HF_VEC_PUSH(&c->spec->unsupported);
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	u->feature = hf_xstrdup(feature);
	u->msg = hf_buf_detach(&b);
	u->path = hf_xstrdup(hf_buf_str(&c->path));
	u->pos = pos;
}

/* An earlier key of map equal to key i (a duplicate), or NULL. */
static const struct hf_ynode *earlier_key(const struct hf_ynode *map, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(map->pairs[j].key->str, map->pairs[i].key->str) == 0)
			return map->pairs[j].key;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                 */

enum {
	K_REQUIRED = 1 << 0,
	K_IGNORED = 1 << 1, /* accepted with a warning (the SDK dropped it) */
};

struct keydef {
	const char *name;
	unsigned flags;
};

/*
 * Reports duplicate, unknown and ignored keys of a mapping, and required
 * keys that are missing (at `owner`, the key that holds the mapping).
 */
static void check_keys(struct hf_pctx *c, const struct hf_ynode *map,
		       const struct hf_ynode *owner, const struct keydef *keys)
{
	for (size_t i = 0; i < map->npairs; i++) {
		const struct hf_ynode *k = map->pairs[i].key;
		const struct keydef *kd = NULL;
		size_t old = hf_pctx_push(c, k->str);

		for (size_t j = 0; j < i; j++) {
			if (strcmp(map->pairs[j].key->str, k->str) == 0) {
				hf_pctx_err(c, k,
					    "duplicate key '%s' (first given "
					    "at line %d)",
					    k->str, map->pairs[j].key->line);
				break;
			}
		}
		for (const struct keydef *d = keys; d->name; d++)
			if (strcmp(d->name, k->str) == 0)
				kd = d;
		if (!kd) {
			const char *best = NULL;
			int bestd = 100;

			for (const struct keydef *d = keys; d->name; d++) {
				int dist = hf_edit_distance(d->name, k->str);

				if (dist < bestd) {
					bestd = dist;
					best = d->name;
				}
			}
			if (best && (bestd <= 2 ||
				     (hf_str_has_prefix(k->str, best) &&
				      strlen(k->str) <= strlen(best) + 2)))
				hf_pctx_err(c, k,
					    "unknown key '%s' (did you mean "
					    "'%s'?)",
					    k->str, best);
			else
				hf_pctx_err(c, k, "unknown key '%s'", k->str);
		} else if (kd->flags & K_IGNORED) {
			hf_pctx_warn(c, k,
				     "'%s' is ignored by holdfast (the SDK "
				     "dropped or ignored it too)",
				     k->str);
		}
		hf_pctx_pop(c, old);
	}
	for (const struct keydef *d = keys; d->name; d++) {
		if (!(d->flags & K_REQUIRED) || hf_ynode_get(map, d->name))
			continue;
		size_t old = hf_pctx_push(c, d->name);

		hf_pctx_err(c, owner, "'%s' is required", d->name);
		hf_pctx_pop(c, old);
	}
}

/* ------------------------------------------------------------------ */
/* Scalars                                                              */

static const char *kind_name(const struct hf_ynode *n)
{
	if (n->kind == HF_Y_MAP)
		return "a mapping";
	if (n->kind == HF_Y_SEQ)
		return "a list";
	return "a scalar";
}

/* Requires n to be a mapping; reports an error at the current path. */
bool hf_pctx_want_map(struct hf_pctx *c, const struct hf_ynode *n)
{
	if (n && n->kind == HF_Y_MAP)
		return true;
	if (n && hf_ynode_is_null(n))
		hf_pctx_err(c, n, "must be a mapping, found nothing");
	else if (n)
		hf_pctx_err(c, n, "must be a mapping, found %s", kind_name(n));
	return false;
}

static bool want_seq(struct hf_pctx *c, const struct hf_ynode *n)
{
	if (n && n->kind == HF_Y_SEQ)
		return true;
	if (n)
		hf_pctx_err(c, n, "must be a list, found %s", kind_name(n));
	return false;
}

static bool want_scalar(struct hf_pctx *c, const struct hf_ynode *n)
{
	if (n->kind == HF_Y_SCALAR) {
		if (strlen(n->str) != n->len) {
			hf_pctx_err(c, n, "must not contain NUL bytes");
			return false;
		}
		return true;
	}
	hf_pctx_err(c, n, "must be a single value, found %s", kind_name(n));
	return false;
}

/* Parses a finite decimal number; false on trailing garbage. */
static bool parse_double(const char *s, double *out)
{
	char *end;
	double v;

	while (*s == ' ')
		s++;
	if (!*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v))
		return false;
	while (*end == ' ')
		end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

static bool parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	while (*s == ' ')
		s++;
	if (!*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return false;
	while (*end == ' ')
		end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

/* The value under key, with the path pushed; NULL (no push) when absent. */
static const struct hf_ynode *enter(struct hf_pctx *c,
				    const struct hf_ynode *map,
				    const char *key, size_t *old)
{
	const struct hf_ynode *n = hf_ynode_get(map, key);

	if (n)
		*old = hf_pctx_push(c, key);
	return n;
}

/*
 * Field getters: each returns true when the key is present with a valid
 * value (stored in *out), false when absent (nothing reported) or invalid
 * (reported at the value with the field's path).
 */
static bool get_str(struct hf_pctx *c, const struct hf_ynode *map,
		    const char *key, bool allow_empty, char **out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;

	if (!n)
		return false;
	if (hf_ynode_is_null(n) && n->kind == HF_Y_SCALAR && !allow_empty) {
		hf_pctx_err(c, n, "'%s' must not be empty", key);
	} else if (want_scalar(c, n)) {
		if (!allow_empty && n->len == 0) {
			hf_pctx_err(c, n, "'%s' must not be empty", key);
		} else {
			free(*out);
			*out = hf_xstrdup(hf_ynode_is_null(n) ? "" : n->str);
			ok = true;
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

static bool get_bool(struct hf_pctx *c, const struct hf_ynode *map,
		     const char *key, bool *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		if (strcasecmp(n->str, "true") == 0) {
			*out = true;
			ok = true;
		} else if (strcasecmp(n->str, "false") == 0) {
			*out = false;
			ok = true;
		} else {
			hf_pctx_err(c, n, "'%s' must be true or false, not '%s'",
				    key, n->str);
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

static bool get_int(struct hf_pctx *c, const struct hf_ynode *map,
		    const char *key, int64_t min, int64_t max, int64_t *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;
	int64_t v;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		if (!parse_int(n->str, &v))
			hf_pctx_err(c, n, "'%s' must be a whole number, not '%s'",
				    key, n->str);
		else if (v < min)
			hf_pctx_err(c, n, "'%s' must be at least %lld, not %lld",
				    key, (long long)min, (long long)v);
		else if (v > max)
			hf_pctx_err(c, n, "'%s' must be at most %lld, not %lld",
				    key, (long long)max, (long long)v);
		else {
			*out = v;
			ok = true;
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

/* A positive number of cpus or gpus. */
static bool get_cpus(struct hf_pctx *c, const struct hf_ynode *map,
		     const char *key, bool allow_zero, double *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;
	double v;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		if (!parse_double(n->str, &v))
			hf_pctx_err(c, n, "'%s' must be a number, not '%s'", key,
				    n->str);
		else if (v < 0 || (!allow_zero && v == 0))
			hf_pctx_err(c, n, "'%s' must be greater than 0, not %s",
				    key, n->str);
		else if (v > 100000)
			hf_pctx_err(c, n, "'%s' of %s is not a plausible amount",
				    key, n->str);
		else {
			*out = v;
			ok = true;
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

/*
 * A size in megabytes: a plain number (the SDK's unit, MB = MiB), or a
 * number with a unit: M/Mi/MB/MiB, G/Gi/GB/GiB, T/Ti/TB/TiB (binary units,
 * as memory and disk sizes are in holdfast and Mesos).
 */
static bool parse_size_mb(const char *s, double *out, const char **why)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
	    {"", 1},       {"M", 1},       {"Mi", 1},      {"MB", 1},
	    {"MiB", 1},    {"G", 1024},    {"Gi", 1024},   {"GB", 1024},
	    {"GiB", 1024}, {"T", 1048576}, {"Ti", 1048576}, {"TB", 1048576},
	    {"TiB", 1048576},
	};
	char *end;
	double v;

	*why = NULL;
	while (*s == ' ')
		s++;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v)) {
		*why = "is not a number";
		return false;
	}
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < HF_ARRAY_LEN(units); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*out = v * units[i].mult;
			return true;
		}
	}
	*why = "has an unknown unit (use a number of MB, or MB/MiB/GB/GiB/TB)";
	return false;
}

static bool get_size(struct hf_pctx *c, const struct hf_ynode *map,
		     const char *key, double *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;
	const char *why;
	double v;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		if (!parse_size_mb(n->str, &v, &why))
			hf_pctx_err(c, n, "'%s' value '%s' %s", key, n->str, why);
		else if (v <= 0)
			hf_pctx_err(c, n, "'%s' must be greater than 0, not %s",
				    key, n->str);
		else if (v > 1e12)
			hf_pctx_err(c, n, "'%s' of %s is not a plausible size",
				    key, n->str);
		else {
			*out = v;
			ok = true;
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

/* A duration in seconds: a number, or a number with ms, s, m or h. */
static bool get_seconds(struct hf_pctx *c, const struct hf_ynode *map,
			const char *key, bool positive, double *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		char *end;
		double v, mult = -1;

		errno = 0;
		v = strtod(n->str, &end);
		if (!errno && end != n->str && isfinite(v)) {
			if (!*end || strcmp(end, "s") == 0)
				mult = 1;
			else if (strcmp(end, "ms") == 0)
				mult = 0.001;
			else if (strcmp(end, "m") == 0)
				mult = 60;
			else if (strcmp(end, "h") == 0)
				mult = 3600;
		}
		if (mult < 0)
			hf_pctx_err(c, n,
				    "'%s' must be a number of seconds (or with "
				    "a unit: ms, s, m, h), not '%s'",
				    key, n->str);
		else if (v < 0 || (positive && v == 0))
			hf_pctx_err(c, n, "'%s' must be %s, not %s", key,
				    positive ? "greater than 0" : "at least 0",
				    n->str);
		else if (v * mult > 1e7)
			hf_pctx_err(c, n,
				    "'%s' of %s is too long (at most 10000000 "
				    "seconds)",
				    key, n->str);
		else {
			*out = v * mult;
			ok = true;
		}
	}
	hf_pctx_pop(c, old);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Names and paths                                                      */

/* A DNS label: letters, digits and '-', starting and ending alphanumeric. */
bool hf_spec_is_label(const char *s, bool allow_upper)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') ||
			     (allow_upper && ch >= 'A' && ch <= 'Z');

		if (!alnum && !(ch == '-' && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

/*
 * A relative path that stays inside the sandbox: not absolute, no ".."
 * that climbs above the start, no empty name.
 */
bool hf_spec_path_inside(const char *p)
{
	int depth = 0;
	const char *s = p;

	if (!*p || *p == '/')
		return false;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == 2 && strncmp(s, "..", 2) == 0) {
			if (--depth < 0)
				return false;
		} else if (!(n == 0 || (n == 1 && *s == '.'))) {
			depth++;
		}
		s += n;
		if (*s == '/')
			s++;
	}
	return depth > 0;
}

/*
 * A name the SDK accepts that is also safe where holdfast uses it: in task
 * ids ("<pod>-<index>-<task>__<uuid>", so no "__"), in directory and
 * volume names (no '/', '.' or control characters), in step names
 * ("<pod>-<i>:[a, b]") and in TASKCFG_<POD>_ options. So: 1-63 letters,
 * digits, '-' or '_', starting and ending with a letter or digit, without
 * "__". The SDK itself only asks for a non-empty name; Cassandra's
 * `init_system_keyspaces` needs the '_'.
 */
bool hf_spec_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || strstr(s, "__"))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (!alnum && !((ch == '-' || ch == '_') && i > 0 && i < n - 1))
			return false;
	}
	return true;
}

/* Checks a key used as a name (pod, task, resource set, plan, volume). */
static void check_name(struct hf_pctx *c, const struct hf_ynode *key,
		       const char *what)
{
	if (!hf_spec_name_ok(key->str))
		hf_pctx_err(c, key,
			    "%s name '%s' must be 1-63 letters, digits, '-' or "
			    "'_', starting and ending with a letter or digit, "
			    "without '__'",
			    what, key->str);
}

/* ------------------------------------------------------------------ */
/* Labels ("k:v,k2:v2")                                                */

static void get_labels(struct hf_pctx *c, const struct hf_ynode *map,
		       const char *key, struct hf_kvlist *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	char *copy, *save = NULL, *tok;

	if (!n)
		return;
	if (hf_ynode_is_null(n) || !want_scalar(c, n))
		goto out;
	if (strspn(n->str, " \t") == n->len) {
		hf_pctx_err(c, n, "labels must not be blank");
		goto out;
	}
	copy = hf_xstrdup(n->str);
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');

		while (*tok == ' ')
			tok++;
		if (!colon || colon == tok) {
			hf_pctx_err(c, n,
				    "label '%s' must be written key:value "
				    "(labels are 'k1:v1,k2:v2')",
				    tok);
			continue;
		}
		*colon = '\0';
		hf_kvlist_set(out, tok, colon + 1);
	}
	free(copy);
out:
	hf_pctx_pop(c, old);
}

/* ------------------------------------------------------------------ */
/* Volumes, ports, checks                                               */

/* What a volume's directory name may hold on the agent (its volume key). */
#define VOLUME_PATH_CHARS                                                     \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:@+"

static const struct keydef volume_keys[] = {
    {"path", K_REQUIRED}, {"type", K_REQUIRED}, {"size", K_REQUIRED},
    {"profiles", 0},      {NULL, 0},
};

static void parse_volume(struct hf_pctx *c, const struct hf_ynode *key,
			 const struct hf_ynode *n, const char *name,
			 struct hf_spec_volume *v)
{
	char *type = NULL;
	const struct hf_ynode *pn;
	double size = 0;

	v->name = hf_xstrdup(name);
	v->pos = pos_of(key);
	v->path_pos = v->pos;
	if (!hf_pctx_want_map(c, n))
		return;
	check_keys(c, n, key, volume_keys);
	if (get_str(c, n, "path", false, &v->path)) {
		pn = hf_ynode_get(n, "path");
		v->path_pos = pos_of(pn);
		if (!hf_spec_path_inside(v->path)) {
			size_t old = hf_pctx_push(c, "path");

			hf_pctx_err(c, pn,
				    "volume path '%s' must be relative to the "
				    "task sandbox and stay inside it",
				    v->path);
			hf_pctx_pop(c, old);
		} else if (strspn(v->path, VOLUME_PATH_CHARS) !=
			   strlen(v->path)) {
			size_t old = hf_pctx_push(c, "path");

			/* The agent names the volume's directory after it. */
			hf_pctx_err(c, pn,
				    "volume path '%s' may hold only letters, "
				    "digits, '/' and . _ - : @ +",
				    v->path);
			hf_pctx_pop(c, old);
		}
	}
	if (get_str(c, n, "type", false, &type)) {
		if (strcmp(type, "ROOT") == 0) {
			v->type = HF_VOLUME_ROOT;
		} else if (strcmp(type, "MOUNT") == 0) {
			v->type = HF_VOLUME_MOUNT;
		} else {
			size_t old = hf_pctx_push(c, "type");

			hf_pctx_err(c, hf_ynode_get(n, "type"),
				    "volume type must be ROOT or MOUNT, not '%s'",
				    type);
			hf_pctx_pop(c, old);
		}
	}
	free(type);
	if (get_size(c, n, "size", &size))
		v->size_mb = (int64_t)ceil(size);
	{
		size_t old;
		const struct hf_ynode *pr = enter(c, n, "profiles", &old);

		if (pr) {
			if (want_seq(c, pr)) {
				for (size_t i = 0; i < pr->nitems; i++)
					if (want_scalar(c, pr->items[i]))
						hf_strlist_push(&v->profiles,
								pr->items[i]->str);
				if (pr->nitems)
					unsupported(c, pr, "volume profiles");
			}
			hf_pctx_pop(c, old);
		}
	}
}

/*
 * Parses `volume:` or `volumes:` of a task, resource set or pod into vols.
 * Both set is an error at the second one.
 */
static void parse_volumes(struct hf_pctx *c, const struct hf_ynode *map,
			  void *vols_v)
{
	HF_VEC(struct hf_spec_volume) *vols = vols_v;
	const struct hf_ypair *one = hf_ynode_pair(map, "volume");
	const struct hf_ypair *many = hf_ynode_pair(map, "volumes");
	size_t old;

	if (one && many) {
		const struct hf_ypair *second =
		    one->key->line > many->key->line ||
			    (one->key->line == many->key->line &&
			     one->key->col > many->key->col)
			? one
			: many;

		old = hf_pctx_push(c, second->key->str);
		hf_pctx_err(c, second->key,
			    "'volume' and 'volumes' cannot both be set");
		hf_pctx_pop(c, old);
	}
	if (one) {
		old = hf_pctx_push(c, "volume");
		parse_volume(c, one->key, one->value, "", HF_VEC_PUSH(vols));
		hf_pctx_pop(c, old);
	}
	if (many) {
		old = hf_pctx_push(c, "volumes");
		if (hf_pctx_want_map(c, many->value)) {
			for (size_t i = 0; i < many->value->npairs; i++) {
				const struct hf_ypair *p =
				    &many->value->pairs[i];
				size_t o2 = hf_pctx_push(c, p->key->str);
				bool dup = false;

				if (earlier_key(many->value, i))
					dup = true;
				if (dup)
					hf_pctx_err(c, p->key,
						    "duplicate volume '%s'",
						    p->key->str);
				else
					check_name(c, p->key, "volume");
				if (!dup)
					parse_volume(c, p->key, p->value,
						     p->key->str,
						     HF_VEC_PUSH(vols));
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
}

static const struct keydef vip_keys[] = {
    {"port", K_REQUIRED}, {"prefix", 0}, {"protocol", 0}, {NULL, 0},
};
static const struct keydef range_keys[] = {
    {"begin", 0}, {"end", 0}, {NULL, 0},
};
static const struct keydef port_keys[] = {
    {"port", K_REQUIRED}, {"env-key", 0}, {"advertise", 0},
    {"vip", 0},           {"ranges", 0},  {NULL, 0},
};

static void parse_port(struct hf_pctx *c, const struct hf_ynode *key,
		       const struct hf_ynode *n, struct hf_spec_port *p)
{
	size_t old;
	const struct hf_ynode *v;

	p->name = hf_xstrdup(key->str);
	p->pos = pos_of(key);
	p->value_pos = p->pos;
	/* Port names become env keys (PORT_<NAME>): '_' is fine here. */
	if (!*key->str || strspn(key->str, "abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789-_") != key->len ||
	    key->len > 63)
		hf_pctx_err(c, key,
			    "port name '%s' must be 1-63 letters, digits, '-' "
			    "or '_'",
			    key->str);
	if (!hf_pctx_want_map(c, n))
		return;
	check_keys(c, n, key, port_keys);
	if (get_int(c, n, "port", 0, 65535, &p->port))
		p->value_pos = pos_of(hf_ynode_get(n, "port"));
	if (get_str(c, n, "env-key", false, &p->env_key) &&
	    !hf_is_env_name(p->env_key)) {
		old = hf_pctx_push(c, "env-key");
		hf_pctx_err(c, hf_ynode_get(n, "env-key"),
			    "'%s' is not a valid environment variable name",
			    p->env_key);
		hf_pctx_pop(c, old);
	}
	get_bool(c, n, "advertise", &p->advertise);
	v = enter(c, n, "vip", &old);
	if (v) {
		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(n, "vip")->key, vip_keys);
			p->has_vip = true;
			get_int(c, v, "port", 1, 65535, &p->vip_port);
			get_str(c, v, "prefix", false, &p->vip_prefix);
			get_str(c, v, "protocol", false, &p->vip_protocol);
			unsupported(c, v, "virtual IPs (vip)");
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, n, "ranges", &old);
	if (v) {
		if (want_seq(c, v)) {
			for (size_t i = 0; i < v->nitems; i++) {
				const struct hf_ynode *r = v->items[i];
				size_t o2 = hf_pctx_push_idx(c, i);
				struct hf_spec_port_range *pr =
				    HF_VEC_PUSH(&p->ranges);

				pr->begin = pr->end = -1;
				if (hf_pctx_want_map(c, r)) {
					check_keys(c, r, r, range_keys);
					if (!hf_ynode_is_null(
						hf_ynode_get(r, "begin")))
						get_int(c, r, "begin", 0, 65535,
							&pr->begin);
					if (!hf_ynode_is_null(
						hf_ynode_get(r, "end")))
						get_int(c, r, "end", 0, 65535,
							&pr->end);
					if (pr->begin >= 0 && pr->end >= 0 &&
					    pr->begin > pr->end)
						hf_pctx_err(c, r,
							    "range begins at "
							    "%lld after its end "
							    "%lld",
							    (long long)pr->begin,
							    (long long)pr->end);
				}
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
}

static void parse_ports(struct hf_pctx *c, const struct hf_ynode *map,
			void *ports_v)
{
	HF_VEC(struct hf_spec_port) *ports = ports_v;
	size_t old;
	const struct hf_ynode *n = enter(c, map, "ports", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n) &&
	    n->npairs > HF_SPEC_MAX_PORTS) {
		hf_pctx_err(c, n, "a task or resource set takes at most %d ports",
			    HF_SPEC_MAX_PORTS);
	} else if (!hf_ynode_is_null(n) && n->kind == HF_Y_MAP) {
		for (size_t i = 0; i < n->npairs; i++) {
			size_t o2 = hf_pctx_push(c, n->pairs[i].key->str);
			bool dup = false;

			if (earlier_key(n, i))
				dup = true;
			if (dup)
				hf_pctx_err(c, n->pairs[i].key,
					    "duplicate port name '%s'",
					    n->pairs[i].key->str);
			else
				parse_port(c, n->pairs[i].key,
					   n->pairs[i].value, HF_VEC_PUSH(ports));
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static const struct keydef health_keys[] = {
    {"cmd", 0},      {"http", 0},  {"tcp", 0},         {"interval", 0},
    {"delay", 0},    {"timeout", 0}, {"grace-period", 0},
    {"max-consecutive-failures", 0}, {NULL, 0},
};
static const struct keydef readiness_keys[] = {
    {"cmd", 0},   {"http", 0},    {"tcp", 0}, {"interval", 0},
    {"delay", 0}, {"timeout", 0}, {NULL, 0},
};
static const struct keydef http_check_keys[] = {
    {"port", K_REQUIRED}, {"path", 0}, {NULL, 0},
};
static const struct keydef tcp_check_keys[] = {
    {"port", K_REQUIRED}, {NULL, 0},
};

static void parse_check(struct hf_pctx *c, const struct hf_ynode *task,
			const char *key, bool health, struct hf_spec_check *chk)
{
	size_t old;
	const struct hf_ynode *n = enter(c, task, key, &old);
	const struct hf_ynode *kn;
	int forms = 0;

	/* Defaults, documented in docs/spec.md. */
	chk->interval = health ? 10 : 5;
	chk->delay = 0;
	chk->timeout = health ? 20 : 10;
	chk->grace_period = health ? 10 : 0;
	chk->max_consecutive_failures = 3;
	if (!n)
		return;
	kn = hf_ynode_pair(task, key)->key;
	chk->pos = pos_of(kn);
	if (!hf_pctx_want_map(c, n))
		goto out;
	check_keys(c, n, kn, health ? health_keys : readiness_keys);
	if (get_str(c, n, "cmd", false, &chk->cmd)) {
		chk->kind = HF_CHECK_CMD;
		forms++;
	}
	for (int form = 0; form < 2; form++) {
		const char *fk = form == 0 ? "http" : "tcp";
		size_t o2;
		const struct hf_ynode *f = enter(c, n, fk, &o2);

		if (!f)
			continue;
		forms++;
		if (hf_pctx_want_map(c, f)) {
			check_keys(c, f, hf_ynode_pair(n, fk)->key,
				   form == 0 ? http_check_keys : tcp_check_keys);
			chk->kind = form == 0 ? HF_CHECK_HTTP : HF_CHECK_TCP;
			if (get_str(c, f, "port", false, &chk->port))
				chk->port_pos = pos_of(hf_ynode_get(f, "port"));
			if (form == 0) {
				if (!get_str(c, f, "path", false,
					     &chk->http_path))
					chk->http_path = hf_xstrdup("/");
				else if (chk->http_path[0] != '/') {
					size_t o3 = hf_pctx_push(c, "path");

					hf_pctx_err(c, hf_ynode_get(f, "path"),
						    "an HTTP check path starts "
						    "with '/'");
					hf_pctx_pop(c, o3);
				}
			}
		}
		hf_pctx_pop(c, o2);
	}
	if (forms == 0)
		hf_pctx_err(c, kn, "a check needs one of 'cmd', 'http' or 'tcp'");
	else if (forms > 1)
		hf_pctx_err(c, kn,
			    "a check takes only one of 'cmd', 'http' or 'tcp'");
	get_seconds(c, n, "interval", true, &chk->interval);
	get_seconds(c, n, "delay", false, &chk->delay);
	get_seconds(c, n, "timeout", true, &chk->timeout);
	if (health) {
		get_seconds(c, n, "grace-period", false, &chk->grace_period);
		get_int(c, n, "max-consecutive-failures", 1, 1000000,
			&chk->max_consecutive_failures);
	}
out:
	hf_pctx_pop(c, old);
}

/* ------------------------------------------------------------------ */
/* Resource sets and tasks                                              */

static const struct keydef limits_keys[] = {
    {"cpus", 0}, {"memory", 0}, {NULL, 0},
};

/* resource-limits: numbers, "unlimited", or empty (not set). */
static void parse_limits(struct hf_pctx *c, const struct hf_ynode *map,
			 struct hf_spec_resource_set *rs)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, "resource-limits", &old);

	if (!n)
		return;
	if (hf_ynode_is_null(n))
		goto out;
	if (!hf_pctx_want_map(c, n))
		goto out;
	check_keys(c, n, hf_ynode_pair(map, "resource-limits")->key,
		   limits_keys);
	rs->has_limits = true;
	for (int i = 0; i < 2; i++) {
		const char *k = i == 0 ? "cpus" : "memory";
		double *dst = i == 0 ? &rs->limit_cpus : &rs->limit_memory_mb;
		const struct hf_ynode *v = hf_ynode_get(n, k);

		if (!v || hf_ynode_is_null(v))
			continue;
		if (v->kind == HF_Y_SCALAR &&
		    strcasecmp(v->str, "unlimited") == 0) {
			*dst = -1;
			continue;
		}
		if (i == 0)
			get_cpus(c, n, k, false, dst);
		else
			get_size(c, n, k, dst);
	}
out:
	hf_pctx_pop(c, old);
}

/* Checks limits against requests; positions are looked up in map. */
static void check_limits(struct hf_pctx *c, const struct hf_ynode *map,
			 const struct hf_spec_resource_set *rs)
{
	const struct hf_ynode *lim = hf_ynode_get(map, "resource-limits");
	size_t old;

	if (!rs->has_limits || !lim)
		return;
	old = hf_pctx_push(c, "resource-limits");
	if (rs->limit_cpus > 0 && rs->limit_cpus < rs->cpus) {
		size_t o2 = hf_pctx_push(c, "cpus");

		hf_pctx_err(c, hf_ynode_get(lim, "cpus"),
			    "the cpus limit %g is below the request %g",
			    rs->limit_cpus, rs->cpus);
		hf_pctx_pop(c, o2);
	}
	if (rs->limit_memory_mb > 0 && rs->limit_memory_mb < rs->memory_mb) {
		size_t o2 = hf_pctx_push(c, "memory");

		hf_pctx_err(c, hf_ynode_get(lim, "memory"),
			    "the memory limit %g MB is below the request %g MB",
			    rs->limit_memory_mb, rs->memory_mb);
		hf_pctx_pop(c, o2);
	}
	hf_pctx_pop(c, old);
}

/* The resource fields shared by resource sets and tasks. */
static void parse_resources(struct hf_pctx *c, const struct hf_ynode *map,
			    struct hf_spec_resource_set *rs)
{
	size_t old;

	get_cpus(c, map, "cpus", false, &rs->cpus);
	if (get_cpus(c, map, "gpus", true, &rs->gpus) && rs->gpus > 0) {
		old = hf_pctx_push(c, "gpus");
		unsupported(c, hf_ynode_get(map, "gpus"), "GPUs");
		hf_pctx_pop(c, old);
	}
	get_size(c, map, "memory", &rs->memory_mb);
	parse_limits(c, map, rs);
	check_limits(c, map, rs);
	parse_ports(c, map, &rs->ports);
	parse_volumes(c, map, &rs->volumes);
}

static const struct keydef rs_keys[] = {
    {"cpus", 0},   {"gpus", 0},    {"memory", 0}, {"resource-limits", 0},
    {"ports", 0},  {"volume", 0},  {"volumes", 0}, {NULL, 0},
};

static const struct keydef config_keys[] = {
    {"template", K_REQUIRED}, {"dest", K_REQUIRED}, {NULL, 0},
};

/* Reads a config template: the spec's directory first, then template_dirs. */
static void load_template(struct hf_pctx *c, const struct hf_ynode *at,
			  struct hf_spec_config *cfg)
{
	struct hf_strlist tried = {0};
	char *path;
	int err;

	if (c->opts->skip_templates)
		return;
	if (c->opts->template_files) {
		const char *content = hf_kvlist_get(c->opts->template_files,
						    cfg->template_path);

		if (content) {
			cfg->content = hf_xstrdup(content);
			cfg->source = hf_xstrdup(cfg->template_path);
		} else
			hf_pctx_err(c, at,
				    "template file '%s' was not sent with the "
				    "spec",
				    cfg->template_path);
		return;
	}
	if (cfg->template_path[0] == '/') {
		hf_strlist_push(&tried, cfg->template_path);
	} else {
		if (c->spec_dir) {
			path = hf_xasprintf("%s/%s", c->spec_dir,
					    cfg->template_path);
			hf_strlist_push(&tried, path);
			free(path);
		}
		for (size_t i = 0; c->opts->template_dirs &&
				   i < c->opts->template_dirs->len;
		     i++) {
			path = hf_xasprintf("%s/%s",
					    c->opts->template_dirs->items[i],
					    cfg->template_path);
			hf_strlist_push(&tried, path);
			free(path);
		}
	}
	for (size_t i = 0; i < tried.len; i++) {
		err = hf_read_file(tried.items[i], 4 << 20, &cfg->content,
				   NULL);
		if (err == 0) {
			cfg->source = hf_xstrdup(tried.items[i]);
			goto out;
		}
		if (err != HF_ENOTFOUND) {
			hf_pctx_err(c, at, "cannot read template %s: %s",
				    tried.items[i],
				    err == HF_ETOOBIG ? "larger than 4 MiB"
						      : strerror(errno));
			goto out;
		}
	}
	{
		struct hf_buf b = HF_BUF_INIT;

		hf_buf_addf(&b, "template file '%s' not found",
			    cfg->template_path);
		for (size_t i = 0; i < tried.len; i++)
			hf_buf_addf(&b, "%s%s", i ? ", " : " (looked in ",
				    tried.items[i]);
		if (tried.len)
			hf_buf_adds(&b, ")");
		hf_pctx_err(c, at, "%s", hf_buf_str(&b));
		hf_buf_release(&b);
	}
out:
	hf_strlist_release(&tried);
}

/*
 * The files the agent and the shim keep in a task's directory, beside its
 * sandbox (src/agent: launch.json, status.json, the shim's pid, lock,
 * socket and log, the order, stop and ready markers, and their ".new"
 * files while they are written atomically). A config written
 * there would overwrite one of them, so the agent refuses it; so does
 * validation, by this one list.
 */
static const char *const task_dir_files[] = {
	"launch.json", "status.json", "shim.pid", "shim.lock", "shim.sock",
	"shim.log", "order.json", "agent-stop", "agent-ready",
};

const char *hf_spec_config_dest_problem(const char *dest, bool *outside)
{
	/* Components of the resolved path below the task's directory. */
	HF_VEC(const char *) comps = {0};
	char *copy, *save = NULL, *tok;
	const char *why = NULL;

	if (outside)
		*outside = false;
	if (!*dest)
		return "it is empty";
	if (dest[0] == '/')
		return "it must be relative to the task sandbox";
	copy = hf_xstrdup(dest);
	*HF_VEC_PUSH(&comps) = "sandbox";
	for (tok = strtok_r(copy, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (comps.len == 0) {
				why = "it climbs above the task's directory "
				      "(a config may go at most one level out "
				      "of the sandbox, into the task's "
				      "directory)";
				goto out;
			}
			comps.len--;
			continue;
		}
		*HF_VEC_PUSH(&comps) = tok;
	}
	if (comps.len == 0) {
		why = "it names the task's directory itself, not a file";
		goto out;
	}
	if (strcmp(comps.items[0], "sandbox") == 0) {
		if (comps.len == 1)
			why = "it names the task sandbox itself, not a file";
		goto out;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(task_dir_files); i++) {
		size_t fl = strlen(task_dir_files[i]);

		/* "status.json.new": the atomic writes' temporary files. */
		if (strncmp(comps.items[0], task_dir_files[i], fl) != 0 ||
		    (comps.items[0][fl] != '\0' && comps.items[0][fl] != '.'))
			continue;
		why = comps.len == 1 ? "it would overwrite a file holdfast keeps "
				       "in the task's directory"
				     : "it lies under a file holdfast keeps in "
				       "the task's directory";
		break;
	}
	if (!why && outside && strcmp(comps.items[0], "sandbox") != 0)
		*outside = true;
out:
	HF_VEC_FREE(&comps);
	free(copy);
	return why;
}

static void parse_configs(struct hf_pctx *c, const struct hf_ynode *task,
			  struct hf_spec_task *t)
{
	size_t old;
	const struct hf_ynode *n = enter(c, task, "configs", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n)) {
		for (size_t i = 0; i < n->npairs; i++) {
			const struct hf_ypair *p = &n->pairs[i];
			size_t o2 = hf_pctx_push(c, p->key->str);
			struct hf_spec_config *cfg;

			if (earlier_key(n, i))
				hf_pctx_err(c, p->key,
					    "duplicate config '%s'",
					    p->key->str);
			cfg = HF_VEC_PUSH(&t->configs);
			cfg->name = hf_xstrdup(p->key->str);
			if (hf_pctx_want_map(c, p->value)) {
				check_keys(c, p->value, p->key, config_keys);
				if (get_str(c, p->value, "dest", false,
					    &cfg->dest)) {
					size_t o3 = hf_pctx_push(c, "dest");
					const struct hf_ynode *dn =
					    hf_ynode_get(p->value, "dest");
					bool out;
					const char *why =
					    hf_spec_config_dest_problem(
						cfg->dest, &out);

					if (why)
						hf_pctx_err(c, dn,
							    "config dest '%s' "
							    "cannot be written: "
							    "%s",
							    cfg->dest, why);
					else if (out)
						hf_pctx_warn(
						    c, dn,
						    "config dest '%s' leaves the "
						    "task sandbox; holdfast writes "
						    "it in the task's directory, "
						    "beside the sandbox",
						    cfg->dest);
					hf_pctx_pop(c, o3);
				}
				if (get_str(c, p->value, "template", false,
					    &cfg->template_path)) {
					size_t o3 = hf_pctx_push(c, "template");

					load_template(
					    c, hf_ynode_get(p->value, "template"),
					    cfg);
					hf_pctx_pop(c, o3);
				}
			}
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static void parse_env(struct hf_pctx *c, const struct hf_ynode *map,
		      struct hf_kvlist *env)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, "env", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n)) {
		for (size_t i = 0; i < n->npairs; i++) {
			const struct hf_ypair *p = &n->pairs[i];
			size_t o2 = hf_pctx_push(c, p->key->str);

			for (size_t j = 0; j < i; j++)
				if (strcmp(n->pairs[j].key->str, p->key->str) ==
				    0)
					hf_pctx_err(c, p->key,
						    "duplicate key '%s' (first "
						    "given at line %d)",
						    p->key->str,
						    n->pairs[j].key->line);
			if (!hf_is_env_name(p->key->str))
				hf_pctx_err(c, p->key,
					    "'%s' is not a valid environment "
					    "variable name",
					    p->key->str);
			else if (hf_ynode_is_null(p->value))
				hf_kvlist_set(env, p->key->str, "");
			else if (want_scalar(c, p->value))
				hf_kvlist_set(env, p->key->str, p->value->str);
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static const struct keydef discovery_keys[] = {
    {"prefix", 0}, {"visibility", 0}, {NULL, 0},
};
static const struct keydef tls_keys[] = {
    {"name", K_REQUIRED}, {"type", K_REQUIRED}, {NULL, 0},
};

static const struct keydef task_keys[] = {
    {"goal", K_REQUIRED},
    {"essential", 0},
    {"cmd", K_REQUIRED},
    {"env", 0},
    {"configs", 0},
    {"cpus", 0},
    {"gpus", 0},
    {"memory", 0},
    {"resource-limits", 0},
    {"ports", 0},
    {"volume", 0},
    {"volumes", 0},
    {"resource-set", 0},
    {"health-check", 0},
    {"readiness-check", 0},
    {"kill-grace-period", 0},
    {"discovery", 0},
    {"labels", 0},
    {"transport-encryption", 0},
    {"ipc-mode", 0},
    {"shm-size", 0},
    {NULL, 0},
};

static const char *const resource_fields[] = {
    "cpus", "gpus", "memory", "resource-limits", "ports", "volume", "volumes",
};

static void parse_task(struct hf_pctx *c, struct hf_spec_pod *pod,
		       const struct hf_ynode *key, const struct hf_ynode *n)
{
	struct hf_spec_task *t = HF_VEC_PUSH(&pod->tasks);
	char *goal = NULL;
	size_t old;
	const struct hf_ynode *v;

	t->name = hf_xstrdup(key->str);
	t->pos = pos_of(key);
	t->essential = true;
	t->kill_grace_period = 3;
	t->resource_set = (size_t)-1;
	check_name(c, key, "task");
	if (!hf_pctx_want_map(c, n)) {
		parse_check(c, NULL, "health-check", true, &t->health);
		parse_check(c, NULL, "readiness-check", false, &t->readiness);
		return;
	}
	check_keys(c, n, key, task_keys);
	if (get_str(c, n, "goal", false, &goal)) {
		if (strcmp(goal, "RUNNING") == 0)
			t->goal = HF_GOAL_RUNNING;
		else if (strcmp(goal, "FINISH") == 0 ||
			 strcmp(goal, "FINISHED") == 0)
			t->goal = HF_GOAL_FINISH;
		else if (strcmp(goal, "ONCE") == 0)
			t->goal = HF_GOAL_ONCE;
		else {
			old = hf_pctx_push(c, "goal");
			hf_pctx_err(c, hf_ynode_get(n, "goal"),
				    "goal must be RUNNING, FINISH or ONCE, not "
				    "'%s'",
				    goal);
			hf_pctx_pop(c, old);
		}
	}
	free(goal);
	if (strcmp(t->name, HF_DECOMMISSION_TASK) == 0 &&
	    hf_ynode_get(n, "goal") && t->goal != HF_GOAL_FINISH) {
		old = hf_pctx_push(c, "goal");
		hf_pctx_err(c, hf_ynode_get(n, "goal"),
			    "the decommission task drains an instance once; its "
			    "goal must be FINISH");
		hf_pctx_pop(c, old);
	}
	get_bool(c, n, "essential", &t->essential);
	get_str(c, n, "cmd", false, &t->cmd);
	parse_env(c, n, &t->env);
	parse_configs(c, n, t);
	get_int(c, n, "kill-grace-period", 0, 86400, &t->kill_grace_period);
	get_labels(c, n, "labels", &t->labels);
	parse_check(c, n, "health-check", true, &t->health);
	parse_check(c, n, "readiness-check", false, &t->readiness);

	v = enter(c, n, "discovery", &old);
	if (v) {
		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(n, "discovery")->key,
				   discovery_keys);
			if (get_str(c, v, "prefix", false,
				    &t->discovery_prefix)) {
				size_t o2 = hf_pctx_push(c, "prefix");
				const struct hf_ynode *pv =
				    hf_ynode_get(v, "prefix");

				t->discovery_pos = pos_of(pv);
				if (!hf_spec_is_label(t->discovery_prefix,
						      false))
					hf_pctx_err(c, pv,
						    "discovery prefix '%s' must "
						    "be a DNS label",
						    t->discovery_prefix);
				hf_pctx_pop(c, o2);
			}
			get_str(c, v, "visibility", false,
				&t->discovery_visibility);
			unsupported(c, v, "discovery names");
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, n, "transport-encryption", &old);
	if (v) {
		if (want_seq(c, v)) {
			for (size_t i = 0; i < v->nitems; i++) {
				size_t o2 = hf_pctx_push_idx(c, i);
				const struct hf_ynode *e = v->items[i];
				struct hf_spec_tls *tls = HF_VEC_PUSH(&t->tls);

				if (hf_pctx_want_map(c, e)) {
					check_keys(c, e, e, tls_keys);
					get_str(c, e, "name", false, &tls->name);
					if (get_str(c, e, "type", false,
						    &tls->type) &&
					    strcmp(tls->type, "TLS") != 0 &&
					    strcmp(tls->type, "KEYSTORE") != 0) {
						size_t o3 =
						    hf_pctx_push(c, "type");

						hf_pctx_err(
						    c, hf_ynode_get(e, "type"),
						    "transport-encryption type "
						    "must be TLS or KEYSTORE");
						hf_pctx_pop(c, o3);
					}
				}
				hf_pctx_pop(c, o2);
			}
			if (v->nitems)
				unsupported(c, v,
					    "transport encryption from a "
					    "cluster CA");
		}
		hf_pctx_pop(c, old);
	}
	if (get_str(c, n, "ipc-mode", false, &t->ipc_mode)) {
		old = hf_pctx_push(c, "ipc-mode");
		if (strcmp(t->ipc_mode, "PRIVATE") != 0 &&
		    strcmp(t->ipc_mode, "SHARE_PARENT") != 0)
			hf_pctx_err(c, hf_ynode_get(n, "ipc-mode"),
				    "ipc-mode must be PRIVATE or SHARE_PARENT");
		unsupported(c, hf_ynode_get(n, "ipc-mode"), "IPC namespaces");
		hf_pctx_pop(c, old);
	}
	if (hf_ynode_get(n, "shm-size") && !t->ipc_mode) {
		old = hf_pctx_push(c, "shm-size");
		unsupported(c, hf_ynode_get(n, "shm-size"),
			    "shared memory sizes");
		hf_pctx_pop(c, old);
	}
	if (get_int(c, n, "shm-size", 1, INT64_MAX, &t->shm_size) &&
	    t->ipc_mode && strcmp(t->ipc_mode, "SHARE_PARENT") == 0) {
		old = hf_pctx_push(c, "shm-size");
		hf_pctx_err(c, hf_ynode_get(n, "shm-size"),
			    "a task with ipc-mode SHARE_PARENT uses its pod's "
			    "shared memory and cannot set shm-size");
		hf_pctx_pop(c, old);
	}

	/* Resources: a named resource set, or the task's own. */
	if (get_str(c, n, "resource-set", false, &t->resource_set_name)) {
		t->rs_pos = pos_of(hf_ynode_get(n, "resource-set"));
		for (size_t i = 0; i < HF_ARRAY_LEN(resource_fields); i++) {
			const struct hf_ypair *p =
			    hf_ynode_pair(n, resource_fields[i]);

			if (!p)
				continue;
			old = hf_pctx_push(c, resource_fields[i]);
			hf_pctx_err(c, p->key,
				    "a task with a resource-set takes its "
				    "resources from it; move '%s' into "
				    "resource set '%s'",
				    resource_fields[i], t->resource_set_name);
			hf_pctx_pop(c, old);
		}
	} else {
		struct hf_spec_resource_set *rs =
		    HF_VEC_PUSH(&pod->resource_sets);
		bool any = false;

		rs->name = hf_xasprintf("%s-resource-set", t->name);
		rs->implicit = true;
		rs->pos = t->pos;
		parse_resources(c, n, rs);
		t->resource_set = pod->resource_sets.len - 1;
		for (size_t i = 0; i < HF_ARRAY_LEN(resource_fields); i++)
			if (hf_ynode_get(n, resource_fields[i]))
				any = true;
		if (!any)
			hf_pctx_err(c, key,
				    "task '%s' declares no resources: give it "
				    "cpus, memory, ports or a volume, or a "
				    "resource-set",
				    t->name);
	}
}

/* ------------------------------------------------------------------ */
/* Pods                                                                 */

static const struct keydef rlimit_keys[] = {
    {"soft", 0}, {"hard", 0}, {NULL, 0},
};

/* An rlimit value: a whole number >= 0, or "unlimited" / -1. */
static bool get_rlimit_value(struct hf_pctx *c, const struct hf_ynode *map,
			     const char *key, int64_t *out)
{
	const struct hf_ynode *v = hf_ynode_get(map, key);

	if (v && v->kind == HF_Y_SCALAR && strcasecmp(v->str, "unlimited") == 0) {
		*out = -1;
		return true;
	}
	/* Empty is not set, as in the SDK (both or neither must be set). */
	if (v && hf_ynode_is_null(v))
		return false;
	return get_int(c, map, key, -1, INT64_MAX, out);
}

static void parse_rlimits(struct hf_pctx *c, const struct hf_ynode *pod,
			  struct hf_spec_pod *p)
{
	size_t old;
	const struct hf_ynode *n = enter(c, pod, "rlimits", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n)) {
		for (size_t i = 0; i < n->npairs; i++) {
			const struct hf_ypair *pr = &n->pairs[i];
			size_t o2 = hf_pctx_push(c, pr->key->str);
			struct hf_spec_rlimit *rl;
			int res = hf_rlimit_by_name(pr->key->str);

			if (res < 0) {
				hf_pctx_err(c, pr->key,
					    "'%s' is not an rlimit (see "
					    "setrlimit(2): RLIMIT_NOFILE, "
					    "RLIMIT_NPROC, ...)",
					    pr->key->str);
				hf_pctx_pop(c, o2);
				continue;
			}
			if (earlier_key(n, i))
				hf_pctx_err(c, pr->key,
					    "duplicate rlimit '%s'",
					    pr->key->str);
			rl = HF_VEC_PUSH(&p->rlimits);
			rl->name = hf_xstrdup(pr->key->str);
			rl->resource = res;
			rl->soft = rl->hard = -1;
			if (!hf_ynode_is_null(pr->value) &&
			    hf_pctx_want_map(c, pr->value)) {
				check_keys(c, pr->value, pr->key, rlimit_keys);
				rl->has_soft = get_rlimit_value(c, pr->value,
								"soft", &rl->soft);
				rl->has_hard = get_rlimit_value(c, pr->value,
								"hard", &rl->hard);
				if (rl->has_soft != rl->has_hard)
					hf_pctx_err(c, pr->key,
						    "rlimit '%s' needs both soft "
						    "and hard, or neither",
						    pr->key->str);
				else if (rl->has_soft && rl->hard >= 0 &&
					 (rl->soft < 0 || rl->soft > rl->hard)) {
					size_t o3 = hf_pctx_push(c, "soft");

					hf_pctx_err(
					    c, hf_ynode_get(pr->value, "soft"),
					    "the soft limit is above the hard "
					    "limit %lld",
					    (long long)rl->hard);
					hf_pctx_pop(c, o3);
				}
			}
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static void parse_resource_sets(struct hf_pctx *c, const struct hf_ynode *pod,
				struct hf_spec_pod *p)
{
	size_t old;
	const struct hf_ynode *n = enter(c, pod, "resource-sets", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n)) {
		for (size_t i = 0; i < n->npairs; i++) {
			const struct hf_ypair *pr = &n->pairs[i];
			size_t o2 = hf_pctx_push(c, pr->key->str);
			bool dup = false;

			if (earlier_key(n, i))
				dup = true;
			if (dup) {
				hf_pctx_err(c, pr->key,
					    "duplicate resource set '%s'",
					    pr->key->str);
			} else {
				struct hf_spec_resource_set *rs =
				    HF_VEC_PUSH(&p->resource_sets);

				rs->name = hf_xstrdup(pr->key->str);
				rs->pos = pos_of(pr->key);
				check_name(c, pr->key, "resource set");
				if (hf_pctx_want_map(c, pr->value)) {
					check_keys(c, pr->value, pr->key,
						   rs_keys);
					parse_resources(c, pr->value, rs);
				}
			}
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static const struct keydef network_keys[] = {
    {"labels", 0}, {"host-ports", 0}, {"container-ports", 0}, {NULL, 0},
};

static void get_port_list(struct hf_pctx *c, const struct hf_ynode *map,
			  const char *key, void *vec_v)
{
	HF_VEC(int64_t) *vec = vec_v;
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);

	if (!n)
		return;
	if (want_seq(c, n)) {
		for (size_t i = 0; i < n->nitems; i++) {
			int64_t v;

			if (!want_scalar(c, n->items[i]))
				continue;
			if (!parse_int(n->items[i]->str, &v) || v < 1 ||
			    v > 65535) {
				size_t o2 = hf_pctx_push_idx(c, i);

				hf_pctx_err(c, n->items[i],
					    "'%s' is not a port number (1-65535)",
					    n->items[i]->str);
				hf_pctx_pop(c, o2);
				continue;
			}
			*HF_VEC_PUSH(vec) = v;
		}
	}
	hf_pctx_pop(c, old);
}

/* Networks that map host ports to container ports (bridge networking). */
static bool network_maps_ports(const char *name)
{
	return strcmp(name, "mesos-bridge") == 0 || strcmp(name, "bridge") == 0;
}

static void parse_networks(struct hf_pctx *c, const struct hf_ynode *n,
			   struct hf_spec_pod *p)
{
	if (hf_ynode_is_null(n) || !hf_pctx_want_map(c, n))
		return;
	for (size_t i = 0; i < n->npairs; i++) {
		const struct hf_ypair *pr = &n->pairs[i];
		size_t o2 = hf_pctx_push(c, pr->key->str);
		struct hf_spec_network *net = HF_VEC_PUSH(&p->networks);

		net->name = hf_xstrdup(pr->key->str);
		if (earlier_key(n, i))
			hf_pctx_err(c, pr->key, "duplicate network '%s'",
				    pr->key->str);
		if (!hf_ynode_is_null(pr->value) &&
		    hf_pctx_want_map(c, pr->value)) {
			check_keys(c, pr->value, pr->key, network_keys);
			get_labels(c, pr->value, "labels", &net->labels);
			get_port_list(c, pr->value, "host-ports",
				      &net->host_ports);
			get_port_list(c, pr->value, "container-ports",
				      &net->container_ports);
			if ((net->host_ports.len || net->container_ports.len) &&
			    !network_maps_ports(net->name))
				hf_pctx_err(c, pr->key,
					    "network '%s' does not map ports; "
					    "host-ports and container-ports "
					    "need a bridge network "
					    "(mesos-bridge)",
					    net->name);
			else if (net->host_ports.len !=
				 net->container_ports.len)
				hf_pctx_err(c, pr->key,
					    "host-ports and container-ports "
					    "must have the same length (%zu "
					    "and %zu)",
					    net->host_ports.len,
					    net->container_ports.len);
		}
		unsupported(c, pr->key, "container networks");
		hf_pctx_pop(c, o2);
	}
}

static const struct keydef secret_keys[] = {
    {"secret", K_REQUIRED}, {"env-key", 0}, {"file", 0}, {NULL, 0},
};
static const struct keydef host_volume_keys[] = {
    {"host-path", K_REQUIRED}, {"container-path", K_REQUIRED}, {"mode", 0},
    {NULL, 0},
};
static const struct keydef external_volume_keys[] = {
    {"type", K_REQUIRED},  {"container-path", K_REQUIRED},
    {"driver-name", 0},    {"driver-options", 0},
    {"volume-name", 0},    {"volume-mode", 0},
    {"volume-sharing", 0}, {NULL, 0},
};
static const struct keydef container_keys[] = {
    {"image-name", 0}, {"networks", 0}, {"rlimits", 0}, {NULL, 0},
};

static void parse_named_maps(struct hf_pctx *c, const struct hf_ynode *pod,
			     const char *key, const struct keydef *keys,
			     const char *feature,
			     void (*each)(struct hf_pctx *c,
					  const struct hf_ypair *pr,
					  struct hf_spec_pod *p),
			     struct hf_spec_pod *p)
{
	size_t old;
	const struct hf_ynode *n = enter(c, pod, key, &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && hf_pctx_want_map(c, n)) {
		for (size_t i = 0; i < n->npairs; i++) {
			const struct hf_ypair *pr = &n->pairs[i];
			size_t o2 = hf_pctx_push(c, pr->key->str);

			if (earlier_key(n, i))
				hf_pctx_err(c, pr->key,
					    "duplicate name '%s'",
					    pr->key->str);
			if (hf_pctx_want_map(c, pr->value)) {
				check_keys(c, pr->value, pr->key, keys);
				each(c, pr, p);
			}
			hf_pctx_pop(c, o2);
		}
		if (n->npairs && feature)
			unsupported(c, n, feature);
	}
	hf_pctx_pop(c, old);
}

static void each_secret(struct hf_pctx *c, const struct hf_ypair *pr,
			struct hf_spec_pod *p)
{
	struct hf_spec_secret *s = HF_VEC_PUSH(&p->secrets);

	s->name = hf_xstrdup(pr->key->str);
	get_str(c, pr->value, "secret", false, &s->secret);
	get_str(c, pr->value, "env-key", false, &s->env_key);
	get_str(c, pr->value, "file", false, &s->file);
}

static void check_mode(struct hf_pctx *c, const struct hf_ynode *map,
		       const char *key, const char *mode)
{
	if (mode && strcmp(mode, "RO") != 0 && strcmp(mode, "RW") != 0) {
		size_t old = hf_pctx_push(c, key);

		hf_pctx_err(c, hf_ynode_get(map, key),
			    "mode must be RO or RW, not '%s'", mode);
		hf_pctx_pop(c, old);
	}
}

static void each_host_volume(struct hf_pctx *c, const struct hf_ypair *pr,
			     struct hf_spec_pod *p)
{
	struct hf_spec_host_volume *h = HF_VEC_PUSH(&p->host_volumes);

	h->name = hf_xstrdup(pr->key->str);
	if (get_str(c, pr->value, "host-path", false, &h->host_path) &&
	    h->host_path[0] != '/') {
		size_t old = hf_pctx_push(c, "host-path");

		hf_pctx_err(c, hf_ynode_get(pr->value, "host-path"),
			    "host-path must be absolute");
		hf_pctx_pop(c, old);
	}
	if (get_str(c, pr->value, "container-path", false,
		    &h->container_path) &&
	    !hf_spec_path_inside(h->container_path)) {
		size_t old = hf_pctx_push(c, "container-path");

		hf_pctx_err(c, hf_ynode_get(pr->value, "container-path"),
			    "container-path '%s' must be relative to the task "
			    "sandbox and stay inside it",
			    h->container_path);
		hf_pctx_pop(c, old);
	}
	if (get_str(c, pr->value, "mode", false, &h->mode))
		check_mode(c, pr->value, "mode", h->mode);
}

/* The position of map's value for key, or of fallback when it has none. */
static struct hf_pos value_pos(const struct hf_ynode *map, const char *key,
			       const struct hf_ynode *fallback)
{
	const struct hf_ynode *n = hf_ynode_get(map, key);

	return pos_of(n ? n : fallback);
}

/*
 * Whether the template, at line:col (col counting characters), holds the
 * n bytes s: the rendered text there is the text as written.
 */
static bool source_has(const struct hf_pctx *c, struct hf_pos pos,
		       const char *s, size_t n)
{
	const char *p = c->src, *end = c->src + c->src_len;

	if (!p)
		return false;
	for (int l = 1; l < pos.line; l++) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			return false;
		p++;
	}
	for (int k = 1; k < pos.col; k++) {
		if (p >= end || *p == '\n')
			return false;
		p++;
		while (p < end && ((unsigned char)*p & 0xc0) == 0x80)
			p++;
	}
	return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/*
 * Where byte offset off of a scalar's text is in the file: past the
 * scalar's start when the scalar is plain, on one line and written there
 * as it reads (not rendered from a {{variable}}), else the scalar's
 * start. Columns count characters, as libyaml's do.
 */
static struct hf_pos scalar_offset_pos(const struct hf_pctx *c,
				       const struct hf_ynode *n, size_t off)
{
	struct hf_pos pos = pos_of(n);

	if (n->kind != HF_Y_SCALAR || !n->plain || !n->one_line ||
	    off > n->len || !source_has(c, pos, n->str, off))
		return pos;
	for (size_t i = 0; i < off; i++)
		if (((unsigned char)n->str[i] & 0xc0) != 0x80)
			pos.col++;
	return pos;
}

/*
 * A volume-name becomes part of a cluster-wide volume name and of store
 * keys: 1-200 letters, digits, '-', '_' and '.', in '/'-separated parts
 * (a service folder, written "__" in the name as the SDK does) that start
 * with a letter or digit, without "__" (the SDK refuses it).
 */
static bool volume_name_ok(const char *s)
{
	size_t n = strlen(s);
	bool part_start = true;

	if (n == 0 || n > 200 || strstr(s, "__") || s[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool alnum = (ch >= 'a' && ch <= 'z') ||
			     (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');

		if (part_start && !alnum)
			return false;
		if (!alnum && ch != '-' && ch != '_' && ch != '.' && ch != '/')
			return false;
		part_start = ch == '/';
	}
	return true;
}

/*
 * Where, in a driver-options string that parsed, option key is given: its
 * byte offset, or len when it is not there.
 */
static size_t option_offset(const char *s, size_t len, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && (s[j] == ' ' || s[j] == '\t'))
			j++;
		if (len - j > klen && memcmp(s + j, key, klen) == 0 &&
		    (s[j + klen] == '=' || s[j + klen] == ' ' ||
		     s[j + klen] == '\t'))
			return j;
		while (i < len && s[i] != ';')
			i++;
		i++;
	}
	return len;
}

/* Reads driver-options for a driver holdfast serves (volopts.c). */
static void external_volume_options(struct hf_pctx *c,
				    const struct hf_ypair *pr,
				    const struct hf_spec_pod *p,
				    struct hf_spec_external_volume *e)
{
	const struct hf_ynode *n = hf_ynode_get(pr->value, "driver-options");
	struct hf_volopts_problems probs = {0};
	/* The scalar itself: its text may hold NULs, which are errors. */
	bool given = n && e->driver_options && n->kind == HF_Y_SCALAR &&
		     !hf_ynode_is_null(n);
	const char *text = given ? n->str : "";
	size_t len = given ? n->len : 0;
	size_t old = hf_pctx_push(c, "driver-options");
	int rc;

	rc = hf_spec_volopts_parse(text, len, &e->opts, &probs);
	for (size_t i = 0; i < probs.len; i++) {
		struct hf_pos pos =
		    n ? scalar_offset_pos(c, n, probs.items[i].offset) : e->pos;

		if (probs.items[i].warning)
			hf_pctx_warn_pos(c, pos, hf_buf_str(&c->path), "%s",
					 probs.items[i].msg);
		else
			hf_pctx_err_pos(c, pos, hf_buf_str(&c->path), "%s",
					probs.items[i].msg);
	}
	e->has_opts = rc == 0;
	if (rc == 0 && e->opts.shared) {
		char *name = hf_spec_external_volume_name(
		    c->spec->name ? c->spec->name : "", p->name, 0, e);

		unsupported_msg(c,
				scalar_offset_pos(c, n,
						  option_offset(text, len,
								"shared")),
				"shared volumes",
				"shared (multi-writer) volumes are not "
				"supported: every instance would use one "
				"volume, '%s'",
				name ? name : e->volume_name);
		free(name);
	}
	hf_volopts_problems_release(&probs);
	hf_pctx_pop(c, old);
}

static void each_external_volume(struct hf_pctx *c, const struct hf_ypair *pr,
				 struct hf_spec_pod *p)
{
	struct hf_spec_external_volume *e = HF_VEC_PUSH(&p->external_volumes);
	const struct hf_ynode *v = pr->value;
	size_t old;

	e->name = hf_xstrdup(pr->key->str);
	e->pos = pos_of(pr->key);
	e->type_pos = value_pos(v, "type", pr->key);
	e->driver_pos = value_pos(v, "driver-name", pr->key);
	e->options_pos = value_pos(v, "driver-options", pr->key);
	e->name_pos = value_pos(v, "volume-name", pr->key);
	e->opts.size_bytes = HF_VOLOPTS_DEFAULT_SIZE;
	e->opts.repl = e->opts.min_sync = 1;
	/* The SDK knows one type of external volume. */
	if (get_str(c, v, "type", false, &e->type) &&
	    strcmp(e->type, "DOCKER") != 0) {
		old = hf_pctx_push(c, "type");
		hf_pctx_err_pos(c, e->type_pos, hf_buf_str(&c->path),
				"only DOCKER external volumes are supported, "
				"not '%s'",
				e->type);
		hf_pctx_pop(c, old);
	}
	if (get_str(c, v, "container-path", false, &e->container_path) &&
	    !hf_spec_path_inside(e->container_path)) {
		old = hf_pctx_push(c, "container-path");
		hf_pctx_err(c, hf_ynode_get(v, "container-path"),
			    "container-path '%s' must be relative to the task "
			    "sandbox and stay inside it",
			    e->container_path);
		hf_pctx_pop(c, old);
	}
	if (get_str(c, v, "volume-name", false, &e->volume_name) &&
	    !volume_name_ok(e->volume_name)) {
		old = hf_pctx_push(c, "volume-name");
		hf_pctx_err_pos(c, e->name_pos, hf_buf_str(&c->path),
				"volume-name '%s' must be 1-200 letters, "
				"digits, '-', '_' or '.', in '/'-separated "
				"parts that start with a letter or digit, "
				"without '__'",
				e->volume_name);
		hf_pctx_pop(c, old);
	}
	/* Empty is fine: the SDK only passes options that are set. */
	get_str(c, v, "driver-options", true, &e->driver_options);
	/* After volume-name: a refusal of a shared volume names it. */
	if (get_str(c, v, "driver-name", false, &e->driver_name)) {
		/*
		 * Another driver's options are its own business: a spec for
		 * rexray is a valid SDK spec holdfast cannot deploy.
		 */
		if (hf_spec_volume_driver_ok(e->driver_name)) {
			external_volume_options(c, pr, p, e);
		} else {
			old = hf_pctx_push(c, "driver-name");
			unsupported_msg(c, e->driver_pos, "volume drivers",
					"volume driver '%s' is not available: "
					"holdfast serves 'holdfast' and 'pxd'",
					e->driver_name);
			hf_pctx_pop(c, old);
		}
	} else if (!hf_ynode_get(v, "driver-name")) {
		hf_pctx_err_pos(c, e->pos, hf_buf_str(&c->path),
				"external volume '%s' has no driver-name: "
				"holdfast serves 'holdfast' and 'pxd'",
				e->name);
	}
	if (get_str(c, v, "volume-mode", false, &e->volume_mode))
		check_mode(c, v, "volume-mode", e->volume_mode);
}

static const struct keydef pod_keys[] = {
    {"count", K_REQUIRED},
    {"allow-decommission", 0},
    {"placement", 0},
    {"uris", 0},
    {"volume", 0},
    {"volumes", 0},
    {"resource-sets", 0},
    {"rlimits", 0},
    {"pre-reserved-role", 0},
    {"image", 0},
    {"networks", 0},
    {"secrets", 0},
    {"host-volumes", 0},
    {"external-volumes", 0},
    {"share-pid-namespace", 0},
    {"ipc-mode", 0},
    {"shm-size", 0},
    {"seccomp-unconfined", 0},
    {"seccomp-profile-name", 0},
    {"container", 0},
    {"user", 0},
    {"capabilities", 0},
    {"volume-retention", 0},
    {"replace", 0},
    {"snapshot-hooks", 0},
    {"backup-schedule", 0},
    {"autoscale", 0},
    {"tasks", K_REQUIRED},
    {NULL, 0},
};

/* ------------------------------------------------------------------ */
/* autoscale (holdfast)                                                 */

/* Any finite number. */
static bool get_number(struct hf_pctx *c, const struct hf_ynode *map,
		       const char *key, double *out)
{
	size_t old;
	const struct hf_ynode *n = enter(c, map, key, &old);
	bool ok = false;

	if (!n)
		return false;
	if (want_scalar(c, n)) {
		if (!parse_double(n->str, out))
			hf_pctx_err(c, n, "'%s' must be a number, not '%s'", key,
				    n->str);
		else
			ok = true;
	}
	hf_pctx_pop(c, old);
	return ok;
}

static void as_metric(struct hf_pctx *c, const struct hf_ynode *owner,
		      const struct hf_ynode *m, struct hf_spec_autoscale *a)
{
	static const struct keydef keys[] = {
	    {"command", 0}, {"task", 0},       {"http", 0},
	    {"prometheus", 0}, {"task-metrics", 0}, {NULL, 0},
	};
	static const struct keydef http_keys[] = {
	    {"url", K_REQUIRED}, {"path", 0}, {NULL, 0},
	};
	static const struct keydef prom_keys[] = {
	    {"url", K_REQUIRED}, {"query", K_REQUIRED}, {NULL, 0},
	};
	static const struct keydef tm_keys[] = {
	    {"port", K_REQUIRED}, {"name", K_REQUIRED}, {"path", 0},
	    {"aggregate", 0},     {NULL, 0},
	};
	const char *names[] = {"command", "http", "prometheus", "task-metrics"};
	const struct hf_ynode *v;
	unsigned given = 0;
	size_t old;

	if (!hf_pctx_want_map(c, m))
		return;
	check_keys(c, m, owner, keys);
	for (size_t i = 0; i < HF_ARRAY_LEN(names); i++)
		given += hf_ynode_get(m, names[i]) != NULL;
	if (given != 1) {
		hf_pctx_err(c, m,
			    "a metric has one source: 'command', 'http', "
			    "'prometheus' or 'task-metrics' (%u given)",
			    given);
		return;
	}
	if (get_str(c, m, "command", false, &a->command))
		a->source = HF_AS_COMMAND;
	get_str(c, m, "task", false, &a->task);
	if (a->task && !a->command) {
		old = hf_pctx_push(c, "task");
		hf_pctx_err(c, hf_ynode_get(m, "task"),
			    "'task' says where a 'command' metric runs; this "
			    "metric has no command");
		hf_pctx_pop(c, old);
	}
	if ((v = enter(c, m, "http", &old))) {
		a->source = HF_AS_HTTP;
		if (v->kind == HF_Y_SCALAR) {
			get_str(c, m, "http", false, &a->url);
		} else if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(m, "http")->key,
				   http_keys);
			get_str(c, v, "url", false, &a->url);
			get_str(c, v, "path", false, &a->json_path);
		}
		hf_pctx_pop(c, old);
	}
	if ((v = enter(c, m, "prometheus", &old))) {
		a->source = HF_AS_PROMETHEUS;
		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(m, "prometheus")->key,
				   prom_keys);
			get_str(c, v, "url", false, &a->url);
			get_str(c, v, "query", false, &a->query);
		}
		hf_pctx_pop(c, old);
	}
	if ((v = enter(c, m, "task-metrics", &old))) {
		a->source = HF_AS_METRICS;
		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(m, "task-metrics")->key,
				   tm_keys);
			get_str(c, v, "port", false, &a->port);
			get_str(c, v, "name", false, &a->sample);
			get_str(c, v, "path", false, &a->path);
			if (get_str(c, v, "aggregate", false, &a->aggregate) &&
			    strcmp(a->aggregate, "sum") != 0 &&
			    strcmp(a->aggregate, "avg") != 0 &&
			    strcmp(a->aggregate, "max") != 0 &&
			    strcmp(a->aggregate, "min") != 0) {
				size_t o2 = hf_pctx_push(c, "aggregate");

				hf_pctx_err(c, hf_ynode_get(v, "aggregate"),
					    "'aggregate' is sum, avg, max or "
					    "min, not '%s'",
					    a->aggregate);
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
	if (a->url && (a->source == HF_AS_HTTP ||
		       a->source == HF_AS_PROMETHEUS) &&
	    !hf_str_has_prefix(a->url, "http://") &&
	    !hf_str_has_prefix(a->url, "https://")) {
		v = hf_ynode_get(m, a->source == HF_AS_HTTP ? "http"
							    : "prometheus");
		old = hf_pctx_push(c, a->source == HF_AS_HTTP ? "http"
							      : "prometheus");
		hf_pctx_err(c, v->kind == HF_Y_MAP ? hf_ynode_get(v, "url") : v,
			    "the metric's url is http:// or https://, not '%s'",
			    a->url);
		hf_pctx_pop(c, old);
	}
}

/* up: {above, step, cooldown} or down: {below, step, cooldown}. */
static void as_rule(struct hf_pctx *c, const struct hf_ynode *map,
		    const char *key, struct hf_spec_autoscale *a)
{
	bool up = strcmp(key, "up") == 0;
	const char *bound = up ? "above" : "below";
	const struct keydef keys[] = {
	    {bound, 0}, {"step", 0}, {"cooldown", 0}, {NULL, 0},
	};
	const struct hf_ynode *v;
	size_t old;

	if (!(v = enter(c, map, key, &old)))
		return;
	if (hf_pctx_want_map(c, v)) {
		check_keys(c, v, hf_ynode_pair(map, key)->key, keys);
		if (up) {
			a->has_up = get_number(c, v, "above", &a->above);
			get_int(c, v, "step", 1, HF_SPEC_POD_COUNT_MAX,
				&a->up_step);
			get_seconds(c, v, "cooldown", false, &a->up_cooldown);
		} else {
			a->has_down = get_number(c, v, "below", &a->below);
			get_int(c, v, "step", 1, HF_SPEC_POD_COUNT_MAX,
				&a->down_step);
			get_seconds(c, v, "cooldown", false, &a->down_cooldown);
		}
	}
	hf_pctx_pop(c, old);
}

static void parse_autoscale(struct hf_pctx *c, const struct hf_ynode *pod,
			    struct hf_spec_pod *p)
{
	static const struct keydef keys[] = {
	    {"min", 0},     {"max", K_REQUIRED}, {"interval", 0},
	    {"timeout", 0}, {"samples", 0},      {"dry-run", 0},
	    {"on-error", 0}, {"metric", K_REQUIRED}, {"up", 0},
	    {"down", 0},    {"target", 0},       {"tolerance", 0},
	    {NULL, 0},
	};
	struct hf_spec_autoscale *a;
	const struct hf_ynode *n, *v;
	size_t old, o2;

	if (!(n = enter(c, pod, "autoscale", &old)))
		return;
	if (!hf_pctx_want_map(c, n)) {
		hf_pctx_pop(c, old);
		return;
	}
	a = p->autoscale = hf_xcalloc(1, sizeof(*a));
	a->min = 1;
	a->max = -1;
	a->interval = 15;
	a->samples = 1;
	a->up_cooldown = -1;
	a->down_cooldown = -1;
	a->tolerance = 0.1;
	a->error_count = -1;
	a->pos = pos_of(n);
	check_keys(c, n, hf_ynode_pair(pod, "autoscale")->key, keys);
	get_int(c, n, "min", 0, HF_SPEC_POD_COUNT_MAX, &a->min);
	get_int(c, n, "max", 0, HF_SPEC_POD_COUNT_MAX, &a->max);
	if (a->max >= 0 && a->min > a->max) {
		o2 = hf_pctx_push(c, "max");
		hf_pctx_err(c, hf_ynode_get(n, "max"),
			    "'max' (%lld) is less than 'min' (%lld)",
			    (long long)a->max, (long long)a->min);
		hf_pctx_pop(c, o2);
	}
	if (get_seconds(c, n, "interval", true, &a->interval) &&
	    a->interval < 0.1) {
		o2 = hf_pctx_push(c, "interval");
		hf_pctx_err(c, hf_ynode_get(n, "interval"),
			    "the autoscaler evaluates at most ten times a "
			    "second: 'interval' is at least 100ms");
		hf_pctx_pop(c, o2);
	}
	if (!get_seconds(c, n, "timeout", true, &a->timeout))
		a->timeout = a->interval < 10 ? (a->interval < 1 ? 1
								: a->interval)
					      : 10;
	get_int(c, n, "samples", 1, 1000, &a->samples);
	get_bool(c, n, "dry-run", &a->dry_run);
	if ((v = enter(c, n, "on-error", &o2))) {
		if (want_scalar(c, v) && strcmp(v->str, "hold") != 0 &&
		    (!parse_int(v->str, &a->error_count) ||
		     a->error_count < 0 ||
		     a->error_count > HF_SPEC_POD_COUNT_MAX)) {
			a->error_count = -1;
			hf_pctx_err(c, v,
				    "'on-error' is 'hold' or a count to go "
				    "to, not '%s'",
				    v->str);
		}
		hf_pctx_pop(c, o2);
	}
	if ((v = enter(c, n, "metric", &o2))) {
		as_metric(c, hf_ynode_pair(n, "metric")->key, v, a);
		hf_pctx_pop(c, o2);
	}
	as_rule(c, n, "up", a);
	as_rule(c, n, "down", a);
	if ((a->has_target = get_number(c, n, "target", &a->target)) &&
	    a->target <= 0) {
		o2 = hf_pctx_push(c, "target");
		hf_pctx_err(c, hf_ynode_get(n, "target"),
			    "'target' is the value per instance: greater "
			    "than 0, not %g",
			    a->target);
		hf_pctx_pop(c, o2);
	}
	if (get_number(c, n, "tolerance", &a->tolerance) &&
	    (a->tolerance < 0 || a->tolerance >= 1)) {
		o2 = hf_pctx_push(c, "tolerance");
		hf_pctx_err(c, hf_ynode_get(n, "tolerance"),
			    "'tolerance' is a fraction from 0 to below 1, "
			    "not %g",
			    a->tolerance);
		hf_pctx_pop(c, o2);
	}
	if (a->has_target && (a->has_up || a->has_down))
		hf_pctx_err(c, n,
			    "a policy scales either to a 'target' per "
			    "instance or on thresholds (up.above, "
			    "down.below), not both");
	else if (!a->has_target && !a->has_up && !a->has_down)
		hf_pctx_err(c, n,
			    "a policy needs a rule: 'target' (a value per "
			    "instance), or up.above and/or down.below");
	if (a->has_up && a->has_down && a->below >= a->above) {
		const struct hf_ynode *dn = hf_ynode_get(n, "down");
		const struct hf_ynode *below = dn ? hf_ynode_get(dn, "below")
						  : NULL;

		/* Said where down.below is written. */
		o2 = hf_pctx_push(c, "down.below");
		hf_pctx_err(c, below ? below : n,
			    "down.below (%g) must be less than up.above (%g): "
			    "the band between them is where the count holds",
			    a->below, a->above);
		hf_pctx_pop(c, o2);
	}
	/* Thresholds move one at a time; a target goes straight to it. */
	if (!a->has_target) {
		a->up_step = a->up_step ? a->up_step : 1;
		a->down_step = a->down_step ? a->down_step : 1;
	}
	/* Defaults: up as soon as the interval allows, down after a minute. */
	if (a->up_cooldown < 0)
		a->up_cooldown = 0;
	if (a->down_cooldown < 0)
		a->down_cooldown = 60;
	hf_pctx_pop(c, old);
}

static void parse_uris(struct hf_pctx *c, const struct hf_ynode *pod,
		       struct hf_spec_pod *p)
{
	size_t old;
	const struct hf_ynode *n = enter(c, pod, "uris", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && want_seq(c, n)) {
		for (size_t i = 0; i < n->nitems; i++) {
			const struct hf_ynode *u = n->items[i];
			size_t o2 = hf_pctx_push_idx(c, i);

			if (want_scalar(c, u)) {
				if (hf_str_has_prefix(u->str, "http://") ||
				    hf_str_has_prefix(u->str, "https://") ||
				    hf_str_has_prefix(u->str, "file:///"))
					hf_strlist_push(&p->uris, u->str);
				else
					hf_pctx_err(c, u,
						    "uri '%s' must start with "
						    "http://, https:// or "
						    "file:///",
						    u->str);
			}
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

/* ext: `capabilities: [NET_ADMIN, SYS_NICE]`, or `[ALL]`. */
static void parse_capabilities(struct hf_pctx *c, const struct hf_ynode *pod,
			       struct hf_spec_pod *p)
{
	size_t old;
	const struct hf_ynode *n = enter(c, pod, "capabilities", &old);

	if (!n)
		return;
	if (!hf_ynode_is_null(n) && want_seq(c, n)) {
		for (size_t i = 0; i < n->nitems; i++) {
			const struct hf_ynode *v = n->items[i];
			size_t o2 = hf_pctx_push_idx(c, i);
			int cap;

			if (!want_scalar(c, v)) {
				hf_pctx_pop(c, o2);
				continue;
			}
			cap = hf_cap_by_name(v->str);
			if (strcmp(v->str, "ALL") == 0 && n->nitems == 1)
				hf_strlist_push(&p->capabilities, "ALL");
			else if (strcmp(v->str, "ALL") == 0)
				hf_pctx_err(c, v, "ALL gives every capability: "
					    "list nothing else with it");
			else if (cap < 0)
				hf_pctx_err(c, v,
					    "unknown capability '%s' (a name "
					    "such as NET_ADMIN or "
					    "CAP_NET_ADMIN, or ALL)",
					    v->str);
			else if (!hf_strlist_has(&p->capabilities,
						 hf_cap_name(cap)))
				hf_strlist_push(&p->capabilities,
						hf_cap_name(cap));
			hf_pctx_pop(c, o2);
		}
	}
	hf_pctx_pop(c, old);
}

static void parse_pod(struct hf_pctx *c, const struct hf_ynode *key,
		      const struct hf_ynode *n)
{
	struct hf_spec_pod *p = HF_VEC_PUSH(&c->spec->pods);
	size_t old;
	const struct hf_ynode *v;

	p->name = hf_xstrdup(key->str);
	p->pos = pos_of(key);
	check_name(c, key, "pod");
	if (!hf_pctx_want_map(c, n))
		return;
	check_keys(c, n, key, pod_keys);
	get_int(c, n, "count", 0, HF_SPEC_POD_COUNT_MAX, &p->count);
	p->spec_count = p->count;
	get_bool(c, n, "allow-decommission", &p->allow_decommission);
	{
		char *ret = NULL;

		if (get_str(c, n, "volume-retention", false, &ret)) {
			if (strcmp(ret, "retain") == 0) {
				p->retain_volumes = true;
			} else if (strcmp(ret, "delete") != 0) {
				old = hf_pctx_push(c, "volume-retention");
				hf_pctx_err(c, hf_ynode_get(n, "volume-retention"),
					    "volume-retention must be delete or "
					    "retain, not '%s'",
					    ret);
				hf_pctx_pop(c, old);
			}
		}
		free(ret);
	}
	if (get_str(c, n, "placement", true, &p->placement)) {
		char *why = NULL;

		old = hf_pctx_push(c, "placement");
		if (hf_spec_parse_placement(p->placement, &p->constraints,
					    &why) != 0) {
			hf_pctx_err(c, hf_ynode_get(n, "placement"),
				    "invalid placement '%s': %s", p->placement,
				    why);
			free(why);
		}
		hf_pctx_pop(c, old);
	}
	parse_uris(c, n, p);
	v = enter(c, n, "replace", &old);
	if (v) {
		static const struct keydef replace_keys[] = {
		    {"tasks", K_REQUIRED}, {NULL, 0},
		};

		if (hf_pctx_want_map(c, v)) {
			const struct hf_ynode *tl;
			size_t o2;

			check_keys(c, v, hf_ynode_pair(n, "replace")->key,
				   replace_keys);
			tl = enter(c, v, "tasks", &o2);
			if (tl) {
				if (want_seq(c, tl))
					for (size_t i = 0; i < tl->nitems; i++)
						if (want_scalar(c, tl->items[i]))
							hf_strlist_push(
							    &p->replace_tasks,
							    tl->items[i]->str);
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, n, "snapshot-hooks", &old);
	if (v) {
		static const struct keydef hook_keys[] = {
		    {"task", 0}, {"before", 0}, {"after", 0},
		    {"timeout", 0}, {NULL, 0},
		};

		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(n, "snapshot-hooks")->key,
				   hook_keys);
			p->has_hooks = true;
			p->hooks_pos = pos_of(v);
			get_str(c, v, "task", false, &p->hook_task);
			get_str(c, v, "before", false, &p->hook_before);
			get_str(c, v, "after", false, &p->hook_after);
			if (get_seconds(c, v, "timeout", true,
					&p->hook_timeout) &&
			    p->hook_timeout > 3600) {
				size_t o2 = hf_pctx_push(c, "timeout");

				hf_pctx_err(c, hf_ynode_get(v, "timeout"),
					    "a snapshot hook's timeout is at "
					    "most 3600 seconds");
				hf_pctx_pop(c, o2);
			}
			if (!p->hook_before && !p->hook_after)
				hf_pctx_err(c, v,
					    "snapshot-hooks needs 'before', "
					    "'after' or both: the commands run "
					    "in the task around a snapshot");
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, n, "backup-schedule", &old);
	if (v) {
		static const struct keydef bk_keys[] = {
		    {"to", K_REQUIRED}, {"credential", K_REQUIRED},
		    {"every", K_REQUIRED}, {"keep", 0}, {NULL, 0},
		};

		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, hf_ynode_pair(n, "backup-schedule")->key,
				   bk_keys);
			p->bk_pos = pos_of(v);
			get_str(c, v, "to", false, &p->bk_to);
			get_str(c, v, "credential", false, &p->bk_cred);
			get_seconds(c, v, "every", true, &p->bk_every);
			get_int(c, v, "keep", 0, 10000, &p->bk_keep);
			if (p->bk_to && !hf_spec_s3_place_ok(p->bk_to)) {
				size_t o2 = hf_pctx_push(c, "to");

				hf_pctx_err(c, hf_ynode_get(v, "to"),
					    "'to' is a place in an S3 store, "
					    "s3://BUCKET or s3://BUCKET/PREFIX "
					    "(no trailing '/'), not '%s'",
					    p->bk_to);
				hf_pctx_pop(c, o2);
			}
			if (p->bk_every > 0 && p->bk_every < 1) {
				size_t o2 = hf_pctx_push(c, "every");

				hf_pctx_err(c, hf_ynode_get(v, "every"),
					    "backups run at most once a "
					    "second: 'every' is at least 1s");
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
	parse_autoscale(c, n, p);
	parse_volumes(c, n, &p->volumes);
	parse_resource_sets(c, n, p);
	parse_rlimits(c, n, p);
	if (get_str(c, n, "pre-reserved-role", false, &p->pre_reserved_role)) {
		old = hf_pctx_push(c, "pre-reserved-role");
		unsupported(c, hf_ynode_get(n, "pre-reserved-role"),
			    "pre-reserved roles");
		hf_pctx_pop(c, old);
	}
	if (get_str(c, n, "image", false, &p->image)) {
		old = hf_pctx_push(c, "image");
		unsupported(c, hf_ynode_get(n, "image"), "container images");
		hf_pctx_pop(c, old);
	}
	if (get_str(c, n, "user", true, &p->user) && !*p->user) {
		free(p->user);
		p->user = NULL;
	}
	parse_capabilities(c, n, p);
	v = enter(c, n, "networks", &old);
	if (v) {
		parse_networks(c, v, p);
		hf_pctx_pop(c, old);
	}
	v = enter(c, n, "container", &old);
	if (v) {
		const struct hf_ynode *ck = hf_ynode_pair(n, "container")->key;

		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v, ck, container_keys);
			if (hf_ynode_get(v, "networks") &&
			    hf_ynode_get(n, "networks"))
				hf_pctx_err(c, ck,
					    "networks are given both here and "
					    "in the pod's 'networks'; the old "
					    "'container' section is replaced "
					    "by pod-level image, networks and "
					    "rlimits");
			else if ((hf_ynode_get(v, "image-name") &&
				  hf_ynode_get(n, "image")) ||
				 (hf_ynode_get(v, "rlimits") &&
				  hf_ynode_get(n, "rlimits")))
				hf_pctx_err(c, ck,
					    "the old 'container' section repeats "
					    "a pod-level setting");
			else
				hf_pctx_warn(c, ck,
					     "the 'container' section is "
					     "deprecated; use pod-level image, "
					     "networks and rlimits");
			unsupported(c, ck, "the 'container' section");
		}
		hf_pctx_pop(c, old);
	}
	parse_named_maps(c, n, "secrets", secret_keys, "secrets", each_secret,
			 p);
	parse_named_maps(c, n, "host-volumes", host_volume_keys, "host volumes",
			 each_host_volume, p);
	parse_named_maps(c, n, "external-volumes", external_volume_keys, NULL,
			 each_external_volume, p);
	if (get_bool(c, n, "share-pid-namespace", &p->share_pid_namespace) &&
	    p->share_pid_namespace) {
		old = hf_pctx_push(c, "share-pid-namespace");
		unsupported(c, hf_ynode_get(n, "share-pid-namespace"),
			    "shared PID namespaces");
		hf_pctx_pop(c, old);
	}
	if (get_str(c, n, "ipc-mode", false, &p->ipc_mode)) {
		old = hf_pctx_push(c, "ipc-mode");
		if (strcmp(p->ipc_mode, "SHARE_PARENT") == 0)
			hf_pctx_err(c, hf_ynode_get(n, "ipc-mode"),
				    "a pod has no parent to share IPC with; use "
				    "PRIVATE");
		else if (strcmp(p->ipc_mode, "PRIVATE") != 0)
			hf_pctx_err(c, hf_ynode_get(n, "ipc-mode"),
				    "ipc-mode must be PRIVATE");
		unsupported(c, hf_ynode_get(n, "ipc-mode"), "IPC namespaces");
		hf_pctx_pop(c, old);
	}
	if (get_int(c, n, "shm-size", 1, INT64_MAX, &p->shm_size) &&
	    !p->ipc_mode) {
		old = hf_pctx_push(c, "shm-size");
		hf_pctx_err(c, hf_ynode_get(n, "shm-size"),
			    "shm-size needs ipc-mode PRIVATE");
		hf_pctx_pop(c, old);
	}
	get_bool(c, n, "seccomp-unconfined", &p->seccomp_unconfined);
	if (get_str(c, n, "seccomp-profile-name", false,
		    &p->seccomp_profile_name) &&
	    p->seccomp_unconfined) {
		old = hf_pctx_push(c, "seccomp-profile-name");
		hf_pctx_err(c, hf_ynode_get(n, "seccomp-profile-name"),
			    "a seccomp profile cannot be given when "
			    "seccomp-unconfined is true");
		hf_pctx_pop(c, old);
	}
	if (p->seccomp_unconfined || p->seccomp_profile_name) {
		const struct hf_ynode *at = hf_ynode_get(n, "seccomp-unconfined");

		if (!at)
			at = hf_ynode_get(n, "seccomp-profile-name");
		old = hf_pctx_push(c, hf_ynode_get(n, "seccomp-unconfined")
					  ? "seccomp-unconfined"
					  : "seccomp-profile-name");
		unsupported(c, at, "seccomp profiles");
		hf_pctx_pop(c, old);
	}

	v = enter(c, n, "tasks", &old);
	if (v) {
		if (hf_pctx_want_map(c, v) && v->npairs > HF_SPEC_MAX_TASKS) {
			hf_pctx_err(c, v, "a pod takes at most %d tasks",
				    HF_SPEC_MAX_TASKS);
		} else if (v->kind == HF_Y_MAP) {
			if (v->npairs == 0)
				hf_pctx_err(c, v, "a pod needs at least one task");
			for (size_t i = 0; i < v->npairs; i++) {
				const struct hf_ypair *pr = &v->pairs[i];
				size_t o2 = hf_pctx_push(c, pr->key->str);
				bool dup = false;

				if (earlier_key(v, i))
					dup = true;
				if (dup)
					hf_pctx_err(c, pr->key,
						    "duplicate task '%s'",
						    pr->key->str);
				else
					parse_task(c, p, pr->key, pr->value);
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
}

/* ------------------------------------------------------------------ */
/* Plans                                                                */

bool hf_spec_parse_strategy(const char *s, enum hf_strategy *out)
{
	if (strcmp(s, "serial") == 0)
		*out = HF_STRATEGY_SERIAL;
	else if (strcmp(s, "parallel") == 0)
		*out = HF_STRATEGY_PARALLEL;
	else if (strcmp(s, "serial-canary") == 0 || strcmp(s, "canary") == 0)
		*out = HF_STRATEGY_SERIAL_CANARY;
	else if (strcmp(s, "parallel-canary") == 0)
		*out = HF_STRATEGY_PARALLEL_CANARY;
	else
		return false;
	return true;
}

static void get_strategy(struct hf_pctx *c, const struct hf_ynode *map,
			 enum hf_strategy *out)
{
	char *s = NULL;

	*out = HF_STRATEGY_SERIAL;
	if (!get_str(c, map, "strategy", false, &s))
		return;
	if (!hf_spec_parse_strategy(s, out)) {
		size_t old = hf_pctx_push(c, "strategy");

		hf_pctx_err(c, hf_ynode_get(map, "strategy"),
			    "strategy must be serial, parallel, serial-canary, "
			    "canary or parallel-canary, not '%s'",
			    s);
		hf_pctx_pop(c, old);
	}
	free(s);
}

/* One steps entry: a mapping of one key (index or "default") to groups. */
static void parse_step_entry(struct hf_pctx *c, const struct hf_ynode *e,
			     struct hf_spec_phase *ph)
{
	struct hf_spec_step_entry *se;
	const struct hf_ynode *k, *v;

	if (!e || e->kind != HF_Y_MAP || e->npairs != 1) {
		hf_pctx_err(c, e,
			    "a steps entry is '- <index>: [[task, ...], ...]' "
			    "or '- default: [[task, ...], ...]'");
		return;
	}
	k = e->pairs[0].key;
	v = e->pairs[0].value;
	se = HF_VEC_PUSH(&ph->steps);
	se->pos = pos_of(e);
	se->index = -1;
	if (strcmp(k->str, "default") != 0) {
		if (!parse_int(k->str, &se->index) || se->index < 0) {
			hf_pctx_err(c, k,
				    "step key must be a pod instance index or "
				    "'default', not '%s'",
				    k->str);
			se->index = -2;
		}
	}
	if (hf_ynode_is_null(v))
		return;
	if (v->kind != HF_Y_SEQ) {
		hf_pctx_err(c, v, "steps are a list of task lists, such as "
				  "[[format], [server]]");
		return;
	}
	for (size_t i = 0; i < v->nitems; i++) {
		const struct hf_ynode *g = v->items[i];
		struct hf_strlist *grp;

		if (g->kind != HF_Y_SEQ) {
			hf_pctx_err(c, g,
				    "each step is a list of task names, such as "
				    "[server]");
			continue;
		}
		if (g->nitems == 0) {
			hf_pctx_err(c, g, "a step must name at least one task");
			continue;
		}
		grp = HF_VEC_PUSH(&se->groups);
		for (size_t j = 0; j < g->nitems; j++) {
			if (!want_scalar(c, g->items[j]))
				continue;
			if (hf_strlist_has(grp, g->items[j]->str))
				hf_pctx_err(c, g->items[j],
					    "task '%s' appears twice in one step",
					    g->items[j]->str);
			else
				hf_strlist_push(grp, g->items[j]->str);
		}
	}
}

static const struct keydef phase_keys[] = {
    {"pod", K_REQUIRED}, {"strategy", 0}, {"steps", 0}, {NULL, 0},
};
static const struct keydef plan_keys[] = {
    {"strategy", 0},         {"phases", K_REQUIRED}, {"healthy-deadline", 0},
    {"auto-revert", 0},      {NULL, 0},
};

static void parse_phase(struct hf_pctx *c, struct hf_spec_plan *pl,
			const struct hf_ynode *key, const struct hf_ynode *n)
{
	struct hf_spec_phase *ph = HF_VEC_PUSH(&pl->phases);
	size_t old;
	const struct hf_ynode *v;

	ph->name = hf_xstrdup(key->str);
	ph->pos = pos_of(key);
	ph->pod_pos = ph->pos;
	if (!hf_pctx_want_map(c, n))
		return;
	check_keys(c, n, key, phase_keys);
	if (get_str(c, n, "pod", false, &ph->pod))
		ph->pod_pos = pos_of(hf_ynode_get(n, "pod"));
	get_strategy(c, n, &ph->strategy);
	v = enter(c, n, "steps", &old);
	if (v) {
		ph->has_steps = true;
		if (!hf_ynode_is_null(v) && want_seq(c, v)) {
			for (size_t i = 0; i < v->nitems; i++) {
				size_t o2 = hf_pctx_push_idx(c, i);

				parse_step_entry(c, v->items[i], ph);
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
}

static void parse_plans(struct hf_pctx *c, const struct hf_ynode *n)
{
	if (hf_ynode_is_null(n) || !hf_pctx_want_map(c, n))
		return;
	for (size_t i = 0; i < n->npairs; i++) {
		const struct hf_ypair *pr = &n->pairs[i];
		size_t old = hf_pctx_push(c, pr->key->str);
		struct hf_spec_plan *pl;
		bool dup = false;

		if (earlier_key(n, i))
			dup = true;
		if (dup) {
			hf_pctx_err(c, pr->key, "duplicate plan '%s'",
				    pr->key->str);
			hf_pctx_pop(c, old);
			continue;
		}
		check_name(c, pr->key, "plan");
		pl = HF_VEC_PUSH(&c->spec->plans);
		pl->name = hf_xstrdup(pr->key->str);
		pl->pos = pos_of(pr->key);
		if (hf_pctx_want_map(c, pr->value)) {
			const struct hf_ynode *ph;
			size_t o2;

			check_keys(c, pr->value, pr->key, plan_keys);
			get_strategy(c, pr->value, &pl->strategy);
			get_seconds(c, pr->value, "healthy-deadline", true,
				    &pl->healthy_deadline);
			get_bool(c, pr->value, "auto-revert", &pl->auto_revert);
			ph = enter(c, pr->value, "phases", &o2);
			if (ph) {
				if (hf_pctx_want_map(c, ph)) {
					for (size_t k = 0; k < ph->npairs; k++) {
						const struct hf_ypair *pp =
						    &ph->pairs[k];
						size_t o3 = hf_pctx_push(
						    c, pp->key->str);
						bool d2 = false;

						for (size_t j = 0; j < k; j++)
							if (strcmp(ph->pairs[j]
								       .key->str,
								   pp->key->str) ==
							    0)
								d2 = true;
						if (d2)
							hf_pctx_err(
							    c, pp->key,
							    "duplicate phase "
							    "'%s'",
							    pp->key->str);
						else
							parse_phase(c, pl,
								    pp->key,
								    pp->value);
						hf_pctx_pop(c, o3);
					}
				}
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
}

/* ------------------------------------------------------------------ */
/* The whole spec                                                       */

static const struct keydef top_keys[] = {
    {"name", K_REQUIRED}, {"web-url", 0}, {"scheduler", 0},
    {"pods", K_REQUIRED}, {"plans", 0},   {"replacement-failure-policy", 0},
    {NULL, 0},
};
static const struct keydef rfp_keys[] = {
    {"permanent-failure-timeout-ms", 0}, {"min-replace-delay-ms", 0},
    {NULL, 0},
};

/*
 * A service name: '/'-separated segments, each a lowercase DNS label; no
 * "__" (holdfast uses it as a separator in task ids).
 */
bool hf_spec_service_name_ok(const char *name)
{
	char *copy, *save = NULL, *seg;
	bool ok = true;

	if (!*name || strlen(name) > 200 || strstr(name, "__") ||
	    name[0] == '/' || name[strlen(name) - 1] == '/' ||
	    strstr(name, "//"))
		return false;
	copy = hf_xstrdup(name);
	for (seg = strtok_r(copy, "/", &save); seg;
	     seg = strtok_r(NULL, "/", &save))
		if (!hf_spec_is_label(seg, false) || (*seg >= '0' && *seg <= '9'))
			ok = false;
	free(copy);
	return ok;
}

static void parse_scheduler(struct hf_pctx *c, const struct hf_ynode *n)
{
	if (hf_ynode_is_null(n) || !hf_pctx_want_map(c, n))
		return;
	for (size_t i = 0; i < n->npairs; i++) {
		const struct hf_ypair *pr = &n->pairs[i];
		size_t old = hf_pctx_push(c, pr->key->str);

		for (size_t j = 0; j < i; j++)
			if (strcmp(n->pairs[j].key->str, pr->key->str) == 0)
				hf_pctx_err(c, pr->key,
					    "duplicate key '%s' (first given at "
					    "line %d)",
					    pr->key->str, n->pairs[j].key->line);
		hf_pctx_pop(c, old);
	}
	/*
	 * Empty is as good as absent for both, as in the SDK: every
	 * package's default service_account is "", and FRAMEWORK_USER may
	 * be rendered empty.
	 */
	if (get_str(c, n, "user", true, &c->spec->scheduler_user) &&
	    !*c->spec->scheduler_user) {
		free(c->spec->scheduler_user);
		c->spec->scheduler_user = NULL;
	}
	if (get_str(c, n, "principal", true, &c->spec->scheduler_principal) &&
	    !*c->spec->scheduler_principal) {
		free(c->spec->scheduler_principal);
		c->spec->scheduler_principal = NULL;
	}
	for (size_t i = 0; i < n->npairs; i++) {
		const struct hf_ypair *pr = &n->pairs[i];
		size_t old;

		if (strcmp(pr->key->str, "user") == 0 ||
		    strcmp(pr->key->str, "principal") == 0)
			continue;
		old = hf_pctx_push(c, pr->key->str);
		if (pr->value->kind == HF_Y_SCALAR)
			hf_kvlist_set(&c->spec->scheduler_other, pr->key->str,
				      pr->value->str);
		hf_pctx_warn(c, pr->key,
			     "scheduler setting '%s' is accepted and ignored "
			     "by holdfast",
			     pr->key->str);
		hf_pctx_pop(c, old);
	}
}

void hf_spec_parse_tree(struct hf_pctx *c, const struct hf_ynode *root)
{
	size_t old;
	const struct hf_ynode *v;

	if (!root || hf_ynode_is_null(root)) {
		hf_pctx_err(c, NULL, "the spec is empty");
		return;
	}
	if (!hf_pctx_want_map(c, root))
		return;
	check_keys(c, root, NULL, top_keys);
	if (c->opts->name) {
		/* The name comes from elsewhere (a stack), checked there. */
		c->spec->name = hf_xstrdup(c->opts->name);
	} else if (get_str(c, root, "name", false, &c->spec->name) &&
		   !hf_spec_service_name_ok(c->spec->name)) {
		old = hf_pctx_push(c, "name");
		hf_pctx_err(c, hf_ynode_get(root, "name"),
			    "service name '%s' must be lowercase letters, "
			    "digits and '-' (segments may be separated by "
			    "'/', each starting with a letter), without '__'",
			    c->spec->name);
		hf_pctx_pop(c, old);
	}
	if (get_str(c, root, "web-url", true, &c->spec->web_url) &&
	    !*c->spec->web_url) {
		free(c->spec->web_url);
		c->spec->web_url = NULL;
	}
	c->spec->permanent_failure_timeout_ms = -1;
	v = enter(c, root, "replacement-failure-policy", &old);
	if (v) {
		if (hf_pctx_want_map(c, v)) {
			check_keys(c, v,
				   hf_ynode_pair(root, "replacement-failure-policy")
				       ->key,
				   rfp_keys);
			get_int(c, v, "permanent-failure-timeout-ms", 0,
				INT64_C(10000000000),
				&c->spec->permanent_failure_timeout_ms);
			get_int(c, v, "min-replace-delay-ms", 0,
				INT64_C(10000000000),
				&c->spec->min_replace_delay_ms);
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, root, "scheduler", &old);
	if (v) {
		parse_scheduler(c, v);
		hf_pctx_pop(c, old);
	}
	v = enter(c, root, "pods", &old);
	if (v) {
		if (hf_pctx_want_map(c, v)) {
			if (v->npairs == 0)
				hf_pctx_err(c, v,
					    "a service needs at least one pod");
			for (size_t i = 0; i < v->npairs; i++) {
				const struct hf_ypair *pr = &v->pairs[i];
				size_t o2 = hf_pctx_push(c, pr->key->str);
				bool dup = false;

				if (earlier_key(v, i))
					dup = true;
				if (dup)
					hf_pctx_err(c, pr->key,
						    "duplicate pod '%s'",
						    pr->key->str);
				else
					parse_pod(c, pr->key, pr->value);
				hf_pctx_pop(c, o2);
			}
		}
		hf_pctx_pop(c, old);
	}
	v = enter(c, root, "plans", &old);
	if (v) {
		parse_plans(c, v);
		hf_pctx_pop(c, old);
	}
	if (!c->spec->scheduler_principal && c->spec->name)
		c->spec->scheduler_principal =
		    hf_xasprintf("%s-principal", c->spec->name);
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

/* Puts counts set over the spec's in place, before it is validated. */
static void set_counts(struct hf_spec *spec, const struct hf_kvlist *counts)
{
	for (size_t i = 0; counts && i < spec->pods.len; i++) {
		struct hf_spec_pod *pod = &spec->pods.items[i];
		const char *v = hf_kvlist_get(counts, pod->name);
		char *end;
		long long n;

		if (!v || *v < '0' || *v > '9')
			continue;
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!errno && !*end && n <= HF_SPEC_POD_COUNT_MAX)
			pod->count = n;
	}
}

int hf_spec_load_string(const char *text, size_t len, const char *file,
			const struct hf_spec_load_opts *opts,
			struct hf_spec **out, struct hf_diags *diags)
{
	static const struct hf_spec_load_opts no_opts;
	struct hf_kvlist vars = {0};
	struct hf_linemap map = {0};
	struct hf_pctx c = {0};
	struct hf_ynode *root = NULL;
	char *rendered = NULL;
	size_t errors_before = diags->errors;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &no_opts;
	/*
	 * Variables: the options, then the caller's defaults, then the
	 * built-ins; only the options are kept with the spec.
	 */
	if (opts->options)
		hf_kvlist_copy(&vars, opts->options);
	for (size_t i = 0; opts->defaults && i < opts->defaults->len; i++)
		if (!hf_kvlist_get(&vars, opts->defaults->items[i].key))
			hf_kvlist_set(&vars, opts->defaults->items[i].key,
				      opts->defaults->items[i].value);
	if (!hf_kvlist_get(&vars, "PORT_API")) {
		char port[16];

		snprintf(port, sizeof(port), "%d", HF_DEFAULT_API_PORT);
		hf_kvlist_set(&vars, "PORT_API", port);
	}
	rc = hf_mustache_render(text, len, &vars, opts->allow_missing, file,
				&rendered, &map, diags);
	if (rc)
		goto out;
	rc = hf_ytree_parse(rendered, strlen(rendered), file, &map, &root,
			    diags);
	if (rc)
		goto out;
	c.file = file;
	c.diags = diags;
	c.opts = opts;
	c.src = text;
	c.src_len = len;
	c.spec = hf_xcalloc(1, sizeof(*c.spec));
	c.spec->file = file ? hf_xstrdup(file) : NULL;
	if (opts->options)
		hf_kvlist_copy(&c.spec->options, opts->options);
	if (file) {
		char *copy = hf_xstrdup(file);

		c.spec_dir = hf_xstrdup(dirname(copy));
		free(copy);
	}
	hf_spec_parse_tree(&c, root);
	set_counts(c.spec, opts->counts);
	hf_spec_validate(&c);
	if (diags->errors == errors_before)
		hf_spec_check_config_vars(&c);
	hf_diags_sort(diags);
	if (diags->errors > errors_before) {
		rc = HF_ESPEC;
		hf_spec_free(c.spec);
	} else {
		*out = c.spec;
	}
out:
	if (rc && diags->errors == errors_before)
		hf_diags_add(diags, HF_DIAG_ERROR, file, 0, 0, "", "%s",
			     hf_err_msg(rc));
	hf_buf_release(&c.path);
	hf_kvlist_release(&vars);
	free(c.spec_dir);
	hf_ynode_free(root);
	free(rendered);
	hf_linemap_release(&map);
	return rc;
}

int hf_spec_load_file(const char *path, const struct hf_spec_load_opts *opts,
		      struct hf_spec **out, struct hf_diags *diags)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = hf_read_file(path, 16 << 20, &text, &len);
	if (rc)
		return rc;
	rc = hf_spec_load_string(text, len, path, opts, out, diags);
	free(text);
	return rc;
}
