/*
 * package.c - DC/OS SDK packages: the options a user gave to `dcos package
 * install --options`, turned into a spec's template variables the way
 * DC/OS did it (Cosmos, then Marathon):
 *
 *   1. universe/config.json is a JSON schema whose properties carry
 *      defaults. The defaults are collected (a property's "default", else
 *      its own "properties", recursively), the user's options are merged
 *      over them object by object, and the result is validated against the
 *      schema (the keywords SDK schemas use: type, enum, const, minimum,
 *      maximum and their exclusive forms, multipleOf, minLength,
 *      maxLength, pattern, required, properties, patternProperties,
 *      additionalProperties, items, minItems, maxItems, uniqueItems, allOf,
 *      anyOf, oneOf, not).
 *   2. universe/marathon.json.mustache is rendered with those options and
 *      `resource` (universe/resource.json, for its assets.uris), values
 *      written as Cosmos wrote them: strings JSON-escaped, whole numbers
 *      that fit an int without a fraction, other numbers as Java prints a
 *      double, no HTML escaping.
 *   3. The rendered Marathon app's "env" is the scheduler's environment:
 *      the spec's template variables.
 *
 * The placeholders the SDK's build tooling filled in ({{artifact-dir}},
 * {{package-version}}, ...) are filled from the caller's build values, then
 * from package.json, then by the rules in fill_placeholder().
 *
 * jansson keeps no positions, so a small scanner indexes every value of a
 * JSON text by its JSON pointer; errors point at the file at fault.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

/* Package files are kilobytes; anything this big is a mistake. */
#define HF_PACKAGE_MAX_FILE (16u << 20)
/* Deeper JSON than this is not indexed (jansson stops at 2048). */
#define HF_JPOS_MAX_DEPTH 256
/* Schemas nest; hostile ones must not recurse without end. */
#define HF_SCHEMA_MAX_DEPTH 64
/* After this many schema problems, stop listing them. */
#define HF_SCHEMA_MAX_ERRORS 100

/* ------------------------------------------------------------------ */
/* Positions: JSON pointer -> line and column                          */

struct jpos {
	char *ptr; /* "" for the root, "/a/b/0" */
	int line, col;
};

struct jpos_index {
	struct jpos *items;
	size_t len, cap;
};

static void jpos_release(struct jpos_index *ix)
{
	for (size_t i = 0; i < ix->len; i++)
		free(ix->items[i].ptr);
	HF_VEC_FREE(ix);
}

/* The last entry for ptr (JSON keeps the last of duplicate keys). */
static const struct jpos *jpos_find(const struct jpos_index *ix, const char *ptr)
{
	for (size_t i = ix->len; i-- > 0;)
		if (strcmp(ix->items[i].ptr, ptr) == 0)
			return &ix->items[i];
	return NULL;
}

struct scan {
	const char *s;
	size_t len, i, lstart;
	int line;
	const struct hf_linemap *map; /* rendered text: back to the template */
	struct jpos_index *out;
	int depth;
	bool stop;
};

static void scan_ws(struct scan *sc)
{
	while (sc->i < sc->len) {
		char c = sc->s[sc->i];

		if (c == '\n') {
			sc->line++;
			sc->lstart = sc->i + 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			break;
		}
		sc->i++;
	}
}

/* Appends a JSON pointer segment: '~' as "~0", '/' as "~1". */
static void ptr_push(struct hf_buf *b, const char *seg)
{
	hf_buf_addc(b, '/');
	for (; *seg; seg++) {
		if (*seg == '~')
			hf_buf_adds(b, "~0");
		else if (*seg == '/')
			hf_buf_adds(b, "~1");
		else
			hf_buf_addc(b, *seg);
	}
}

static void ptr_pop(struct hf_buf *b, size_t old)
{
	b->len = old;
	if (b->data)
		b->data[old] = '\0';
}

static void add_utf8(struct hf_buf *b, unsigned long cp)
{
	if (cp < 0x80) {
		hf_buf_addc(b, (char)cp);
	} else if (cp < 0x800) {
		hf_buf_addc(b, (char)(0xc0 | (cp >> 6)));
		hf_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		hf_buf_addc(b, (char)(0xe0 | (cp >> 12)));
		hf_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		hf_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		hf_buf_addc(b, (char)(0xf0 | (cp >> 18)));
		hf_buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		hf_buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		hf_buf_addc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

static unsigned long read_hex4(const struct scan *sc, size_t at, bool *ok)
{
	unsigned long v = 0;

	*ok = at + 4 <= sc->len;
	for (size_t k = 0; *ok && k < 4; k++) {
		int h = hf_hex_val(sc->s[at + k]);

		if (h < 0)
			*ok = false;
		v = v * 16 + (unsigned long)(h < 0 ? 0 : h);
	}
	return v;
}

/* Reads a string at sc->i (the opening quote), decoded into out. */
static bool scan_string(struct scan *sc, struct hf_buf *out)
{
	sc->i++;
	while (sc->i < sc->len) {
		char c = sc->s[sc->i];

		if (c == '"') {
			sc->i++;
			return true;
		}
		if (c == '\n')
			return false;
		if (c != '\\') {
			if (out)
				hf_buf_addc(out, c);
			sc->i++;
			continue;
		}
		if (sc->i + 1 >= sc->len)
			return false;
		c = sc->s[sc->i + 1];
		sc->i += 2;
		if (c == 'u') {
			bool ok;
			unsigned long cp = read_hex4(sc, sc->i, &ok);

			if (!ok)
				return false;
			sc->i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && sc->i + 6 <= sc->len &&
			    sc->s[sc->i] == '\\' && sc->s[sc->i + 1] == 'u') {
				unsigned long lo = read_hex4(sc, sc->i + 2, &ok);

				if (ok && lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
					sc->i += 6;
				}
			}
			if (out)
				add_utf8(out, cp);
			continue;
		}
		if (out)
			hf_buf_addc(out, c == 'n'   ? '\n'
					 : c == 't' ? '\t'
					 : c == 'r' ? '\r'
					 : c == 'b' ? '\b'
					 : c == 'f' ? '\f'
						    : c);
	}
	return false;
}

static void scan_record(struct scan *sc, const char *ptr)
{
	struct jpos *p = HF_VEC_PUSH(sc->out);
	size_t col = sc->i - sc->lstart + 1;

	p->ptr = hf_xstrdup(ptr);
	p->line = sc->map ? hf_linemap_lookup(sc->map, sc->line) : sc->line;
	p->col = col > 100000 ? 0 : (int)col;
}

static void scan_value(struct scan *sc, struct hf_buf *ptr)
{
	char c;

	scan_ws(sc);
	if (sc->stop || sc->i >= sc->len)
		return;
	scan_record(sc, hf_buf_str(ptr));
	c = sc->s[sc->i];
	if (c == '"') {
		if (!scan_string(sc, NULL))
			sc->stop = true;
		return;
	}
	if (c != '{' && c != '[') {
		while (sc->i < sc->len && !strchr(",]} \t\r\n", sc->s[sc->i]))
			sc->i++;
		return;
	}
	if (++sc->depth > HF_JPOS_MAX_DEPTH) {
		sc->stop = true;
		return;
	}
	sc->i++;
	for (size_t n = 0; !sc->stop; n++) {
		size_t old = ptr->len;

		scan_ws(sc);
		if (sc->i >= sc->len) {
			sc->stop = true;
			break;
		}
		if (sc->s[sc->i] == (c == '{' ? '}' : ']')) {
			sc->i++;
			break;
		}
		if (n > 0) {
			if (sc->s[sc->i] != ',') {
				sc->stop = true;
				break;
			}
			sc->i++;
			scan_ws(sc);
		}
		if (c == '{') {
			struct hf_buf key = HF_BUF_INIT;

			if (sc->i >= sc->len || sc->s[sc->i] != '"' ||
			    !scan_string(sc, &key)) {
				hf_buf_release(&key);
				sc->stop = true;
				break;
			}
			ptr_push(ptr, hf_buf_str(&key));
			hf_buf_release(&key);
			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i] != ':') {
				sc->stop = true;
				break;
			}
			sc->i++;
		} else {
			char idx[32];

			snprintf(idx, sizeof(idx), "%zu", n);
			ptr_push(ptr, idx);
		}
		scan_value(sc, ptr);
		ptr_pop(ptr, old);
	}
	sc->depth--;
}

/* Indexes every value of a JSON text jansson has accepted. */
static void jpos_build(const char *s, size_t len, const struct hf_linemap *map,
		       struct jpos_index *out)
{
	struct scan sc = {.s = s, .len = len, .line = 1, .map = map, .out = out};
	struct hf_buf ptr = HF_BUF_INIT;

	hf_buf_adds(&ptr, "");
	scan_value(&sc, &ptr);
	hf_buf_release(&ptr);
}

/* ------------------------------------------------------------------ */
/* JSON files                                                          */

/* A JSON text, parsed, with its positions. */
struct jdoc {
	const char *file;
	json_t *root;
	struct jpos_index pos;
};

static void jdoc_release(struct jdoc *d)
{
	json_decref(d->root);
	d->root = NULL;
	jpos_release(&d->pos);
}

/* Line for a position of rendered text (identity without a map). */
static int map_line(const struct hf_linemap *map, int line)
{
	return map ? hf_linemap_lookup(map, line) : line;
}

/*
 * Parses text as JSON (map: the line map when text was rendered from a
 * template). Returns 0, or HF_ESPEC with the reason at its position.
 */
static int jdoc_parse(struct jdoc *d, const char *file, const char *text,
		      size_t len, const struct hf_linemap *map, size_t flags,
		      const char *what, struct hf_diags *diags)
{
	json_error_t jerr;

	memset(d, 0, sizeof(*d));
	d->file = file;
	d->root = json_loadb(text, len, flags, &jerr);
	if (!d->root) {
		hf_diags_add(diags, HF_DIAG_ERROR, file,
			     jerr.line > 0 ? map_line(map, jerr.line) : 0,
			     jerr.line > 0 && jerr.column > 0 ? jerr.column : 0,
			     "", "%s is not valid JSON: %s", what, jerr.text);
		return HF_ESPEC;
	}
	jpos_build(text, len, map, &d->pos);
	return 0;
}

/* Adds a diagnostic at ptr of doc (its start when ptr is not indexed). */
static void at_ptr(struct hf_diags *diags, enum hf_diag_level level,
		   const struct jdoc *doc, const char *ptr, const char *path,
		   const char *fmt, ...) HF_PRINTF(6, 7);
static void at_ptr(struct hf_diags *diags, enum hf_diag_level level,
		   const struct jdoc *doc, const char *ptr, const char *path,
		   const char *fmt, ...)
{
	const struct jpos *p = ptr ? jpos_find(&doc->pos, ptr) : NULL;
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_diags_add(diags, level, doc->file, p ? p->line : 1, p ? p->col : 1,
		     path, "%s", hf_buf_str(&b));
	hf_buf_release(&b);
}

/* ------------------------------------------------------------------ */
/* Values as Cosmos wrote them into the Marathon template              */

/*
 * A double as Java's Double.toString prints it: shortest digits that read
 * back the same, plain between 1e-3 and 1e7 ("0.5", "1.15"), else
 * computerized scientific notation ("1.0E-4", "3.0E9").
 */
static void java_double(struct hf_buf *b, double v)
{
	char e[64], digits[32];
	int p, exp10, nd = 0;
	const char *m;
	double a = fabs(v);

	if (v == 0) {
		hf_buf_adds(b, signbit(v) ? "-0.0" : "0.0");
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, v);
		if (strtod(e, NULL) == v)
			break;
	}
	m = e;
	if (*m == '-') {
		hf_buf_addc(b, '-');
		m++;
	}
	for (; *m && *m != 'e'; m++)
		if (*m >= '0' && *m <= '9' && nd < (int)sizeof(digits) - 1)
			digits[nd++] = *m;
	digits[nd] = '\0';
	exp10 = *m == 'e' ? atoi(m + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	if (a >= 1e-3 && a < 1e7) {
		if (exp10 >= 0) {
			for (int i = 0; i <= exp10; i++)
				hf_buf_addc(b, i < nd ? digits[i] : '0');
			hf_buf_addc(b, '.');
			if (nd > exp10 + 1)
				hf_buf_adds(b, digits + exp10 + 1);
			else
				hf_buf_addc(b, '0');
		} else {
			hf_buf_adds(b, "0.");
			for (int i = 0; i < -exp10 - 1; i++)
				hf_buf_addc(b, '0');
			hf_buf_adds(b, digits);
		}
		return;
	}
	hf_buf_addc(b, digits[0]);
	hf_buf_addc(b, '.');
	hf_buf_adds(b, nd > 1 ? digits + 1 : "0");
	hf_buf_addf(b, "E%d", exp10);
}

/* A number as Cosmos passed it: an int when it is one, else a double. */
static void cosmos_number(struct hf_buf *b, const json_t *v)
{
	double d = json_number_value(v);

	if (json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
	    json_integer_value(v) <= INT32_MAX) {
		hf_buf_addf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	if (json_is_real(v) && d == floor(d) && d >= INT32_MIN && d <= INT32_MAX) {
		hf_buf_addf(b, "%d", (int)d);
		return;
	}
	java_double(b, d);
}

/* The text a template sees for a value. */
static char *template_text(const json_t *v)
{
	struct hf_buf b = HF_BUF_INIT;
	char *s;

	switch (json_typeof(v)) {
	case JSON_STRING:
		/* JSON-escaped, without the quotes, as Cosmos did. */
		s = json_dumps(v, JSON_ENCODE_ANY);
		if (s && strlen(s) >= 2)
			hf_buf_add(&b, s + 1, strlen(s) - 2);
		free(s);
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		cosmos_number(&b, v);
		break;
	case JSON_TRUE:
		hf_buf_adds(&b, "true");
		break;
	case JSON_FALSE:
		hf_buf_adds(&b, "false");
		break;
	case JSON_NULL:
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
				      JSON_PRESERVE_ORDER);
		hf_buf_adds(&b, s ? s : "");
		free(s);
		break;
	}
	hf_buf_addc(&b, '\0');
	b.len--;
	return hf_buf_detach(&b);
}

/*
 * Flattens a JSON value into vars under dotted names ("service.name"), the
 * way mustache resolves dotted tags. Objects are also set under their own
 * name (as JSON), so a section over one is true.
 */
static void flatten(struct hf_kvlist *vars, const char *name, const json_t *v,
		    int depth)
{
	const char *k;
	json_t *x;

	if (*name) {
		char *t = template_text(v);

		hf_kvlist_set(vars, name, t);
		free(t);
	}
	if (!json_is_object(v) || depth > HF_JPOS_MAX_DEPTH)
		return;
	json_object_foreach((json_t *)v, k, x) {
		char *child = *name ? hf_xasprintf("%s.%s", name, k)
				    : hf_xstrdup(k);

		flatten(vars, child, x, depth + 1);
		free(child);
	}
}

/* ------------------------------------------------------------------ */
/* The schema                                                           */

/* Cosmos' extractDefaultsFromSchema: a default, else nested properties. */
static json_t *schema_defaults(const json_t *schema, int depth)
{
	json_t *out = json_object(), *prop;
	const json_t *props = json_object_get(schema, "properties");
	const char *k;

	if (!json_is_object(props) || depth > HF_SCHEMA_MAX_DEPTH)
		return out;
	json_object_foreach((json_t *)props, k, prop) {
		json_t *d;

		if (!json_is_object(prop))
			continue;
		d = json_object_get(prop, "default");
		if (d)
			json_object_set(out, k, d);
		else if (json_is_object(json_object_get(prop, "properties")))
			json_object_set_new(out, k,
					    schema_defaults(prop, depth + 1));
	}
	return out;
}

/* Merges src into dst, object by object; other values replace. */
static void merge_into(json_t *dst, const json_t *src)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)src, k, v) {
		json_t *cur = json_object_get(dst, k);

		if (json_is_object(cur) && json_is_object(v)) {
			json_t *copy = json_deep_copy(cur);

			merge_into(copy, v);
			json_object_set_new(dst, k, copy);
		} else {
			json_object_set_new(dst, k, json_deep_copy(v));
		}
	}
}

struct vctx {
	const struct jdoc *config; /* the schema's file */
	const struct jdoc *options; /* the user's files, later ones win */
	size_t noptions;
	struct hf_diags *diags;
	size_t errors;
	bool quiet; /* inside anyOf/oneOf/not: count, do not report */
};

/* "hello.rlimits.rlimit_nofile.soft" from "/hello/rlimits/...": for users. */
static char *dotted(const char *ptr)
{
	struct hf_buf b = HF_BUF_INIT;

	for (const char *p = ptr; *p; p++) {
		if (*p == '/') {
			if (p != ptr)
				hf_buf_addc(&b, '.');
		} else if (*p == '~' && p[1] == '0') {
			hf_buf_addc(&b, '~');
			p++;
		} else if (*p == '~' && p[1] == '1') {
			hf_buf_addc(&b, '/');
			p++;
		} else {
			hf_buf_addc(&b, *p);
		}
	}
	hf_buf_addc(&b, '\0');
	b.len--;
	return hf_buf_detach(&b);
}

/*
 * Reports a problem with the option at inst_ptr: where the user wrote it,
 * else where config.json gives its default, else at the schema keyword.
 */
static void schema_problem(struct vctx *v, enum hf_diag_level level,
			   const char *inst_ptr, const char *schema_ptr,
			   const char *keyword, const char *fmt, ...)
	HF_PRINTF(6, 7);
static void schema_problem(struct vctx *v, enum hf_diag_level level,
			   const char *inst_ptr, const char *schema_ptr,
			   const char *keyword, const char *fmt, ...)
{
	struct hf_buf msg = HF_BUF_INIT, sp = HF_BUF_INIT;
	char *path;
	va_list ap;

	if (level == HF_DIAG_ERROR)
		v->errors++;
	if (v->quiet || (level == HF_DIAG_ERROR &&
			 v->errors > HF_SCHEMA_MAX_ERRORS))
		return;
	va_start(ap, fmt);
	hf_buf_vaddf(&msg, fmt, ap);
	va_end(ap);
	path = dotted(inst_ptr);
	for (size_t i = v->noptions; i-- > 0;) {
		const struct jpos *p = jpos_find(&v->options[i].pos, inst_ptr);

		if (p) {
			hf_diags_add(v->diags, level, v->options[i].file, p->line,
				     p->col, path, "%s", hf_buf_str(&msg));
			goto out;
		}
	}
	/* A default: "/a/b" is at "/properties/a/properties/b/default". */
	for (const char *p = inst_ptr; *p;) {
		const char *e = strchr(p + 1, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		hf_buf_adds(&sp, "/properties");
		hf_buf_add(&sp, p, n);
		p += n;
	}
	hf_buf_adds(&sp, "/default");
	if (jpos_find(&v->config->pos, hf_buf_str(&sp))) {
		at_ptr(v->diags, level, v->config, hf_buf_str(&sp), path, "%s",
		       hf_buf_str(&msg));
		goto out;
	}
	hf_buf_reset(&sp);
	hf_buf_addf(&sp, "%s/%s", schema_ptr, keyword);
	at_ptr(v->diags, level, v->config,
	       jpos_find(&v->config->pos, hf_buf_str(&sp)) ? hf_buf_str(&sp)
							    : schema_ptr,
	       path, "%s", hf_buf_str(&msg));
out:
	free(path);
	hf_buf_release(&msg);
	hf_buf_release(&sp);
}

static const char *type_of(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "a list";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

static bool is_type(const json_t *v, const char *t)
{
	if (strcmp(t, "string") == 0)
		return json_is_string(v);
	if (strcmp(t, "number") == 0)
		return json_is_number(v);
	if (strcmp(t, "integer") == 0)
		return json_is_integer(v) ||
		       (json_is_real(v) &&
			json_real_value(v) == floor(json_real_value(v)));
	if (strcmp(t, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(t, "object") == 0)
		return json_is_object(v);
	if (strcmp(t, "array") == 0)
		return json_is_array(v);
	if (strcmp(t, "null") == 0)
		return json_is_null(v);
	return true; /* an unknown type name checks nothing */
}

/* Equality where 1 and 1.0 are the same number. */
static bool same_value(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same_value(json_array_get(a, i),
					json_array_get(b, i)))
				return false;
		return true;
	}
	if (json_is_object(a) && json_is_object(b)) {
		const char *k;
		json_t *x;

		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)a, k, x) {
			json_t *y = json_object_get(b, k);

			if (!y || !same_value(x, y))
				return false;
		}
		return true;
	}
	return json_equal(a, b);
}

/* A value for a message, shortened. */
static char *shown(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s && strlen(s) > 60) {
		strcpy(s + 57, "...");
	}
	return s ? s : hf_xstrdup("?");
}

/* Code points of a UTF-8 string. */
static size_t utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void validate(struct vctx *v, const json_t *schema,
		     const char *schema_ptr, const json_t *inst,
		     const char *inst_ptr, int depth);

/* Runs validate() quietly; returns the errors it found. */
static size_t trial(struct vctx *v, const json_t *schema, const char *sp,
		    const json_t *inst, const char *ip, int depth)
{
	size_t before = v->errors;
	bool quiet = v->quiet;
	size_t n;

	v->quiet = true;
	validate(v, schema, sp, inst, ip, depth);
	v->quiet = quiet;
	n = v->errors - before;
	v->errors = before;
	return n;
}

static void check_type(struct vctx *v, const json_t *schema, const char *sp,
		       const json_t *inst, const char *ip)
{
	const json_t *t = json_object_get(schema, "type");
	struct hf_buf want = HF_BUF_INIT;
	bool ok = false;

	if (json_is_string(t)) {
		ok = is_type(inst, json_string_value(t));
		hf_buf_adds(&want, json_string_value(t));
	} else if (json_is_array(t)) {
		for (size_t i = 0; i < json_array_size(t); i++) {
			const char *n = json_string_value(json_array_get(t, i));

			if (!n)
				continue;
			if (is_type(inst, n))
				ok = true;
			hf_buf_addf(&want, "%s%s", want.len ? " or " : "", n);
		}
		if (!want.len)
			ok = true;
	} else {
		ok = true;
	}
	if (!ok)
		schema_problem(v, HF_DIAG_ERROR, ip, sp, "type",
			       "must be of type %s, not %s", hf_buf_str(&want),
			       type_of(inst));
	hf_buf_release(&want);
}

static void check_number(struct vctx *v, const json_t *schema, const char *sp,
			 const json_t *inst, const char *ip)
{
	double x = json_number_value(inst);
	const json_t *lim;
	struct hf_buf b = HF_BUF_INIT;

	for (int k = 0; k < 2; k++) {
		const char *kw = k == 0 ? "minimum" : "maximum";
		const char *ex = k == 0 ? "exclusiveMinimum" : "exclusiveMaximum";
		const json_t *exv = json_object_get(schema, ex);
		bool exclusive = json_is_true(exv);
		double l;
		bool bad;

		lim = json_object_get(schema, kw);
		if (json_is_number(exv)) {
			/* draft 6: the exclusive bound is a number of its own */
			l = json_number_value(exv);
			bad = k == 0 ? x <= l : x >= l;
			if (bad) {
				hf_buf_reset(&b);
				java_double(&b, l);
				schema_problem(v, HF_DIAG_ERROR, ip, sp, ex,
					       "must be %s %s",
					       k == 0 ? "above" : "below",
					       hf_buf_str(&b));
			}
		}
		if (!json_is_number(lim))
			continue;
		l = json_number_value(lim);
		bad = k == 0 ? (exclusive ? x <= l : x < l)
			     : (exclusive ? x >= l : x > l);
		if (bad) {
			char *got = shown(inst), *want = shown(lim);

			schema_problem(v, HF_DIAG_ERROR, ip, sp, kw,
				       "%s is %s the %s %s%s", got,
				       k == 0 ? "below" : "above",
				       k == 0 ? "minimum" : "maximum", want,
				       exclusive ? " (exclusive)" : "");
			free(got);
			free(want);
		}
	}
	lim = json_object_get(schema, "multipleOf");
	if (json_is_number(lim) && json_number_value(lim) > 0) {
		double q = x / json_number_value(lim);

		if (fabs(q - nearbyint(q)) > 1e-9) {
			char *want = shown(lim);

			schema_problem(v, HF_DIAG_ERROR, ip, sp, "multipleOf",
				       "must be a multiple of %s", want);
			free(want);
		}
	}
	hf_buf_release(&b);
}

static void check_string(struct vctx *v, const json_t *schema, const char *sp,
			 const json_t *inst, const char *ip)
{
	const char *s = json_string_value(inst);
	size_t n = utf8_len(s);
	const json_t *lim = json_object_get(schema, "minLength");
	const char *pat;

	if (json_is_integer(lim) && (json_int_t)n < json_integer_value(lim))
		schema_problem(v, HF_DIAG_ERROR, ip, sp, "minLength",
			       "must be at least %" JSON_INTEGER_FORMAT
			       " characters long",
			       json_integer_value(lim));
	lim = json_object_get(schema, "maxLength");
	if (json_is_integer(lim) && (json_int_t)n > json_integer_value(lim))
		schema_problem(v, HF_DIAG_ERROR, ip, sp, "maxLength",
			       "must be at most %" JSON_INTEGER_FORMAT
			       " characters long",
			       json_integer_value(lim));
	pat = json_string_value(json_object_get(schema, "pattern"));
	if (pat) {
		regex_t re;

		/* ECMA patterns as POSIX ERE: the common subset agrees. */
		if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0) {
			schema_problem(v, HF_DIAG_WARNING, ip, sp, "pattern",
				       "the package's pattern '%s' is not one "
				       "holdfast can check; the value is not "
				       "checked against it",
				       pat);
			return;
		}
		if (regexec(&re, s, 0, NULL, 0) != 0)
			schema_problem(v, HF_DIAG_ERROR, ip, sp, "pattern",
				       "'%s' does not match the pattern '%s'",
				       s, pat);
		regfree(&re);
	}
}

/* Whether key matches one of the schema's patternProperties. */
static const json_t *pattern_prop(const json_t *schema, const char *key,
				  const char **which)
{
	const json_t *pp = json_object_get(schema, "patternProperties");
	const char *pat;
	json_t *sub;

	json_object_foreach((json_t *)pp, pat, sub) {
		regex_t re;
		bool match;

		if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
			continue;
		match = regexec(&re, key, 0, NULL, 0) == 0;
		regfree(&re);
		if (match) {
			*which = pat;
			return sub;
		}
	}
	return NULL;
}

/* Whether the option at ptr was written by the user (not a default). */
static bool user_wrote(const struct vctx *v, const char *ptr)
{
	for (size_t i = 0; i < v->noptions; i++)
		if (jpos_find(&v->options[i].pos, ptr))
			return true;
	return false;
}

static void check_object(struct vctx *v, const json_t *schema, const char *sp,
			 const json_t *inst, const char *ip, int depth)
{
	const json_t *props = json_object_get(schema, "properties");
	const json_t *addl = json_object_get(schema, "additionalProperties");
	const json_t *req = json_object_get(schema, "required");
	const char *k;
	json_t *x;

	for (size_t i = 0; json_is_array(req) && i < json_array_size(req); i++) {
		const char *name = json_string_value(json_array_get(req, i));

		if (name && !json_object_get(inst, name))
			schema_problem(v, HF_DIAG_ERROR, ip, sp, "required",
				       "needs '%s' (config.json requires it and "
				       "gives it no default)",
				       name);
	}
	json_object_foreach((json_t *)inst, k, x) {
		struct hf_buf ip2 = HF_BUF_INIT, sp2 = HF_BUF_INIT;
		const json_t *sub = json_object_get(props, k);
		const char *pat = NULL;
		const json_t *psub = pattern_prop(schema, k, &pat);

		hf_buf_adds(&ip2, ip);
		ptr_push(&ip2, k);
		if (sub) {
			hf_buf_addf(&sp2, "%s/properties", sp);
			ptr_push(&sp2, k);
			validate(v, sub, hf_buf_str(&sp2), x, hf_buf_str(&ip2),
				 depth + 1);
		}
		if (psub) {
			hf_buf_reset(&sp2);
			hf_buf_addf(&sp2, "%s/patternProperties", sp);
			ptr_push(&sp2, pat);
			validate(v, psub, hf_buf_str(&sp2), x, hf_buf_str(&ip2),
				 depth + 1);
		}
		if (!sub && !psub) {
			if (json_is_false(addl)) {
				schema_problem(v, HF_DIAG_ERROR,
					       hf_buf_str(&ip2), sp,
					       "additionalProperties",
					       "is not an option of this package "
					       "(config.json allows no other)");
			} else if (json_is_object(addl)) {
				hf_buf_reset(&sp2);
				hf_buf_addf(&sp2, "%s/additionalProperties", sp);
				validate(v, addl, hf_buf_str(&sp2), x,
					 hf_buf_str(&ip2), depth + 1);
			} else if (json_is_object(props) &&
				   user_wrote(v, hf_buf_str(&ip2))) {
				/* DC/OS took it silently; likely a typo. */
				const char *best = NULL, *pk;
				json_t *pv;
				int bestd = 3;

				json_object_foreach((json_t *)props, pk, pv) {
					int d = hf_edit_distance(pk, k);

					if (d < bestd) {
						bestd = d;
						best = pk;
					}
				}
				if (best)
					schema_problem(
					    v, HF_DIAG_WARNING, hf_buf_str(&ip2),
					    sp, "properties",
					    "is not an option config.json "
					    "describes (did you mean '%s'?); "
					    "it is passed on unchecked",
					    best);
				else
					schema_problem(
					    v, HF_DIAG_WARNING, hf_buf_str(&ip2),
					    sp, "properties",
					    "is not an option config.json "
					    "describes; it is passed on "
					    "unchecked");
			}
		}
		hf_buf_release(&ip2);
		hf_buf_release(&sp2);
	}
}

static void check_array(struct vctx *v, const json_t *schema, const char *sp,
			const json_t *inst, const char *ip, int depth)
{
	const json_t *items = json_object_get(schema, "items");
	const json_t *lim;
	size_t n = json_array_size(inst);

	lim = json_object_get(schema, "minItems");
	if (json_is_integer(lim) && (json_int_t)n < json_integer_value(lim))
		schema_problem(v, HF_DIAG_ERROR, ip, sp, "minItems",
			       "needs at least %" JSON_INTEGER_FORMAT " items",
			       json_integer_value(lim));
	lim = json_object_get(schema, "maxItems");
	if (json_is_integer(lim) && (json_int_t)n > json_integer_value(lim))
		schema_problem(v, HF_DIAG_ERROR, ip, sp, "maxItems",
			       "takes at most %" JSON_INTEGER_FORMAT " items",
			       json_integer_value(lim));
	if (json_is_true(json_object_get(schema, "uniqueItems")))
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < i; j++)
				if (same_value(json_array_get(inst, i),
					       json_array_get(inst, j))) {
					schema_problem(v, HF_DIAG_ERROR, ip, sp,
						       "uniqueItems",
						       "item %zu repeats item %zu",
						       i, j);
					i = n;
					break;
				}
	for (size_t i = 0; i < n; i++) {
		struct hf_buf ip2 = HF_BUF_INIT, sp2 = HF_BUF_INIT;
		const json_t *sub = NULL;

		hf_buf_addf(&ip2, "%s/%zu", ip, i);
		if (json_is_object(items)) {
			sub = items;
			hf_buf_addf(&sp2, "%s/items", sp);
		} else if (json_is_array(items) && i < json_array_size(items)) {
			sub = json_array_get(items, i);
			hf_buf_addf(&sp2, "%s/items/%zu", sp, i);
		}
		if (sub)
			validate(v, sub, hf_buf_str(&sp2), json_array_get(inst, i),
				 hf_buf_str(&ip2), depth + 1);
		hf_buf_release(&ip2);
		hf_buf_release(&sp2);
	}
}

static void check_combinators(struct vctx *v, const json_t *schema,
			      const char *sp, const json_t *inst,
			      const char *ip, int depth)
{
	static const char *const kws[] = {"allOf", "anyOf", "oneOf"};

	for (size_t k = 0; k < HF_ARRAY_LEN(kws); k++) {
		const json_t *list = json_object_get(schema, kws[k]);
		size_t passing = 0;

		if (!json_is_array(list) || json_array_size(list) == 0)
			continue;
		for (size_t i = 0; i < json_array_size(list); i++) {
			char *sp2 = hf_xasprintf("%s/%s/%zu", sp, kws[k], i);

			if (k == 0)
				validate(v, json_array_get(list, i), sp2, inst,
					 ip, depth + 1);
			else if (trial(v, json_array_get(list, i), sp2, inst, ip,
				       depth + 1) == 0)
				passing++;
			free(sp2);
		}
		if (k == 1 && passing == 0)
			schema_problem(v, HF_DIAG_ERROR, ip, sp, kws[k],
				       "matches none of the choices config.json "
				       "allows (anyOf)");
		if (k == 2 && passing != 1)
			schema_problem(v, HF_DIAG_ERROR, ip, sp, kws[k],
				       "must match exactly one of the choices "
				       "config.json allows (oneOf), not %zu",
				       passing);
	}
	if (json_is_object(json_object_get(schema, "not"))) {
		char *sp2 = hf_xasprintf("%s/not", sp);

		if (trial(v, json_object_get(schema, "not"), sp2, inst, ip,
			  depth + 1) == 0)
			schema_problem(v, HF_DIAG_ERROR, ip, sp, "not",
				       "is a value config.json rules out (not)");
		free(sp2);
	}
}

static void validate(struct vctx *v, const json_t *schema,
		     const char *schema_ptr, const json_t *inst,
		     const char *inst_ptr, int depth)
{
	const json_t *e;

	if (!json_is_object(schema) || depth > HF_SCHEMA_MAX_DEPTH ||
	    v->errors > HF_SCHEMA_MAX_ERRORS)
		return;
	check_type(v, schema, schema_ptr, inst, inst_ptr);
	e = json_object_get(schema, "enum");
	if (json_is_array(e)) {
		bool found = false;

		for (size_t i = 0; i < json_array_size(e) && !found; i++)
			found = same_value(json_array_get(e, i), inst);
		if (!found) {
			char *got = shown(inst), *list = shown(e);

			schema_problem(v, HF_DIAG_ERROR, inst_ptr, schema_ptr,
				       "enum", "%s is not one of %s", got, list);
			free(got);
			free(list);
		}
	}
	e = json_object_get(schema, "const");
	if (e && !same_value(e, inst)) {
		char *got = shown(inst), *want = shown(e);

		schema_problem(v, HF_DIAG_ERROR, inst_ptr, schema_ptr, "const",
			       "%s must be %s", got, want);
		free(got);
		free(want);
	}
	if (json_is_number(inst))
		check_number(v, schema, schema_ptr, inst, inst_ptr);
	else if (json_is_string(inst))
		check_string(v, schema, schema_ptr, inst, inst_ptr);
	else if (json_is_object(inst))
		check_object(v, schema, schema_ptr, inst, inst_ptr, depth);
	else if (json_is_array(inst))
		check_array(v, schema, schema_ptr, inst, inst_ptr, depth);
	check_combinators(v, schema, schema_ptr, inst, inst_ptr, depth);
}

/* ------------------------------------------------------------------ */
/* Build placeholders                                                  */

/* "sha256:dcos-service-cli.exe" -> "TEMPLATE_SHA256_DCOS_SERVICE_CLI_EXE". */
static char *template_env_name(const char *name)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_adds(&b, "TEMPLATE_");
	for (const char *p = name; *p; p++)
		hf_buf_addc(&b, isalnum((unsigned char)*p)
				    ? (char)toupper((unsigned char)*p)
				    : '_');
	return hf_buf_detach(&b);
}

static bool concrete(const char *s)
{
	return s && *s && !strstr(s, "{{");
}

/*
 * The value of a build placeholder the caller did not give, or NULL when
 * holdfast has none (it then renders empty, with a warning).
 */
static char *fill_placeholder(const char *name, const struct hf_kvlist *build,
			      const json_t *package_json)
{
	const char *pv = json_string_value(json_object_get(package_json, "version"));
	const char *pn = json_string_value(json_object_get(package_json, "name"));
	const char *ad = build ? hf_kvlist_get(build, "artifact-dir") : NULL;
	size_t n = strlen(name);

	if (strcmp(name, "package-name") == 0 && concrete(pn))
		return hf_xstrdup(pn);
	if (strcmp(name, "package-version") == 0)
		return hf_xstrdup(concrete(pv) ? pv : "unversioned");
	if (strcmp(name, "package-build-time-epoch-ms") == 0)
		return hf_xstrdup("0");
	if (strcmp(name, "package-build-time-str") == 0)
		return hf_xstrdup("unknown");
	/* Checksums of the CLI binaries DC/OS downloaded: unused here. */
	if (hf_str_has_prefix(name, "sha256:"))
		return hf_xstrdup("");
	/* Artifact URLs (jre-url, ...): files in the artifact directory. */
	if (ad && n > 4 && strcmp(name + n - 4, "-url") == 0)
		return hf_xasprintf("%s/%.*s", ad, (int)(n - 4), name);
	return NULL;
}

/*
 * Renders a universe file as the SDK's build tooling did: its build
 * placeholders filled. ctx holds the values a template may use (options
 * and resource for marathon.json.mustache; nothing for the others), which
 * are never placeholders. Unset names with a dot are options without a
 * value (they render empty, as on DC/OS); others are placeholders, filled
 * by fill_placeholder() or left empty with a warning.
 */
static int render_universe(const struct hf_package_file *f,
			   const struct hf_kvlist *ctx,
			   const struct hf_kvlist *build,
			   const json_t *package_json, char **out,
			   struct hf_linemap *map, struct hf_diags *diags)
{
	struct hf_kvlist vars = {0};
	int rc = 0;

	if (ctx)
		hf_kvlist_copy(&vars, ctx);
	for (size_t i = 0; build && i < build->len; i++)
		if (!hf_kvlist_get(&vars, build->items[i].key))
			hf_kvlist_set(&vars, build->items[i].key,
				      build->items[i].value);
	/*
	 * The placeholders holdfast always knows are set first: a section
	 * tag on one ({{#package-version}}) is never reported missing.
	 */
	{
		static const char *const known[] = {
		    "package-name", "package-version",
		    "package-build-time-epoch-ms", "package-build-time-str"};

		for (size_t i = 0; i < HF_ARRAY_LEN(known); i++) {
			char *val;

			if (hf_kvlist_get(&vars, known[i]))
				continue;
			val = fill_placeholder(known[i], build, package_json);
			if (val)
				hf_kvlist_set(&vars, known[i], val);
			free(val);
		}
	}
	/*
	 * A filled name can open a section that uses another name, so fill
	 * until nothing is missing (a few rounds: sections nest shallowly).
	 */
	for (int round = 0; round < 8; round++) {
		struct hf_mustache_uses missing = {0};

		rc = hf_mustache_render_missing(f->text, f->len, &vars, f->name,
						out, NULL, &missing, diags);
		free(*out);
		*out = NULL;
		if (rc || missing.len == 0) {
			hf_mustache_uses_release(&missing);
			break;
		}
		for (size_t i = 0; i < missing.len; i++) {
			const struct hf_mustache_use *u = &missing.items[i];
			char *val;

			/* Only the Marathon template sees options. */
			if (ctx && strchr(u->name, '.') &&
			    !hf_str_has_prefix(u->name, "sha256:")) {
				hf_diags_add(diags, HF_DIAG_WARNING, f->name,
					     u->line, u->col, "",
					     "option %s has no value (no default "
					     "in config.json and none in the "
					     "options); it renders empty, as on "
					     "DC/OS",
					     u->name);
				hf_kvlist_set(&vars, u->name, "");
				continue;
			}
			val = fill_placeholder(u->name, build, package_json);
			if (!val) {
				char *env = template_env_name(u->name);

				hf_diags_add(diags, HF_DIAG_WARNING, f->name,
					     u->line, u->col, "",
					     "build placeholder {{%s}} is not "
					     "filled; it renders empty (set %s in "
					     "the environment to give it, as for "
					     "the SDK's build tooling)",
					     u->name, env);
				free(env);
				val = hf_xstrdup("");
			}
			hf_kvlist_set(&vars, u->name, val);
			free(val);
		}
		hf_mustache_uses_release(&missing);
	}
	/* Anything still unset after the rounds renders empty. */
	if (rc == 0)
		rc = hf_mustache_render(f->text, f->len, &vars, true, f->name,
					out, map, diags);
	hf_kvlist_release(&vars);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The whole package                                                   */

void hf_package_release(struct hf_package *p)
{
	hf_kvlist_release(&p->vars);
	free(p->spec_name);
	free(p->spec_file);
	free(p->dir);
	json_decref(p->options);
	memset(p, 0, sizeof(*p));
}

/* A spec name from the `service.yaml` option: a plain file name. */
static bool spec_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100 || s[0] == '.')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == n;
}

/* The env of the rendered Marathon app: the spec's template variables. */
static int take_env(const struct jdoc *app, struct hf_kvlist *vars,
		    struct hf_diags *diags)
{
	const json_t *env;
	const char *k;
	json_t *x;
	int rc = 0;

	if (!json_is_object(app->root)) {
		at_ptr(diags, HF_DIAG_ERROR, app, "", "",
		       "the rendered Marathon app must be a JSON object");
		return HF_ESPEC;
	}
	env = json_object_get(app->root, "env");
	if (!env) {
		at_ptr(diags, HF_DIAG_WARNING, app, "", "",
		       "the Marathon app has no \"env\": the spec gets no "
		       "variables from the package");
		return 0;
	}
	if (!json_is_object(env)) {
		at_ptr(diags, HF_DIAG_ERROR, app, "/env", "env",
		       "\"env\" must be an object of names and values");
		return HF_ESPEC;
	}
	json_object_foreach((json_t *)env, k, x) {
		struct hf_buf ptr = HF_BUF_INIT;

		hf_buf_adds(&ptr, "/env");
		ptr_push(&ptr, k);
		if (json_is_string(x)) {
			hf_kvlist_set(vars, k, json_string_value(x));
		} else if (json_is_object(x) && json_object_get(x, "secret")) {
			at_ptr(diags, HF_DIAG_ERROR, app, hf_buf_str(&ptr), "env",
			       "env %s comes from a DC/OS secret; holdfast has "
			       "no secret store (give it with -o %s=VALUE)",
			       k, k);
			rc = HF_ESPEC;
		} else {
			at_ptr(diags, HF_DIAG_ERROR, app, hf_buf_str(&ptr), "env",
			       "env %s must be a string, not %s", k, type_of(x));
			rc = HF_ESPEC;
		}
		hf_buf_release(&ptr);
	}
	return rc;
}

int hf_package_render(const struct hf_package_input *in, struct hf_package *out,
		      struct hf_diags *diags)
{
	struct jdoc config = {0}, resource = {0}, app = {0};
	struct jdoc *opts = hf_xcalloc(in->noptions + 1, sizeof(*opts));
	struct hf_kvlist ctx = {0};
	struct hf_linemap map = {0};
	json_t *package_json = NULL, *merged = NULL;
	char *text = NULL;
	const char *yaml;
	size_t errors_before = diags->errors;
	struct vctx v = {0};
	int rc = HF_ESPEC;

	memset(out, 0, sizeof(*out));
	if (!in->config.text || !in->marathon.text) {
		hf_diags_add(diags, HF_DIAG_ERROR,
			     !in->config.text ? in->config.name
					      : in->marathon.name,
			     0, 0, "",
			     "a package needs universe/config.json and "
			     "universe/marathon.json.mustache");
		goto out;
	}
	if (in->package.text) {
		json_error_t jerr;

		/* Only name and version are read; the rest is DC/OS's. */
		package_json = json_loadb(in->package.text, in->package.len, 0,
					  &jerr);
		if (!json_is_object(package_json))
			hf_diags_add(diags, HF_DIAG_WARNING, in->package.name,
				     jerr.line > 0 ? jerr.line : 0, 0, "",
				     "package.json is not a JSON object; its "
				     "name and version are not used");
	}

	/* config.json: the schema, after the build placeholders. */
	if (render_universe(&in->config, NULL, in->build, package_json, &text,
			    &map, diags) ||
	    jdoc_parse(&config, in->config.name, text, strlen(text), &map,
		       JSON_REJECT_DUPLICATES, "config.json", diags))
		goto out;
	free(text);
	text = NULL;
	if (!json_is_object(config.root)) {
		at_ptr(diags, HF_DIAG_ERROR, &config, "", "",
		       "config.json must be a JSON schema object");
		goto out;
	}

	/* The user's options, merged over the defaults. */
	merged = schema_defaults(config.root, 0);
	for (size_t i = 0; i < in->noptions; i++) {
		const struct hf_package_file *f = &in->options[i];

		if (jdoc_parse(&opts[i], f->name, f->text, f->len, NULL,
			       JSON_REJECT_DUPLICATES, "the options file",
			       diags))
			goto out;
		if (!json_is_object(opts[i].root)) {
			at_ptr(diags, HF_DIAG_ERROR, &opts[i], "", "",
			       "an options file holds one JSON object, as "
			       "for `dcos package install --options`");
			goto out;
		}
		merge_into(merged, opts[i].root);
	}
	v.config = &config;
	v.options = opts;
	v.noptions = in->noptions;
	v.diags = diags;
	validate(&v, config.root, "", merged, "", 0);
	if (v.errors)
		goto out;

	/* resource.json, for resource.assets.uris. */
	if (in->resource.text) {
		if (render_universe(&in->resource, NULL, in->build,
				    package_json, &text, &map, diags) ||
		    jdoc_parse(&resource, in->resource.name, text,
			       strlen(text), &map, 0, "resource.json", diags))
			goto out;
		free(text);
		text = NULL;
	}

	/* marathon.json.mustache with the options and resource. */
	flatten(&ctx, "", merged, 0);
	if (resource.root)
		flatten(&ctx, "resource", resource.root, 0);
	if (render_universe(&in->marathon, &ctx, in->build, package_json, &text,
			    &map, diags) ||
	    jdoc_parse(&app, in->marathon.name, text, strlen(text), &map, 0,
		       "the rendered Marathon app", diags) ||
	    take_env(&app, &out->vars, diags))
		goto out;

	/* The spec: hello-world's `service.yaml` option, else svc.yml. */
	yaml = json_string_value(
	    json_object_get(json_object_get(merged, "service"), "yaml"));
	if (yaml && *yaml) {
		if (!spec_name_ok(yaml)) {
			schema_problem(&v, HF_DIAG_ERROR, "/service/yaml", "",
				       "properties",
				       "'%s' is not a spec name (the spec is "
				       "src/main/dist/<name>.yml)",
				       yaml);
			goto out;
		}
		out->spec_name = hf_xstrdup(yaml);
	} else {
		out->spec_name = hf_xstrdup("svc");
	}
	out->options = json_incref(merged);
	rc = diags->errors > errors_before ? HF_ESPEC : 0;
out:
	if (rc)
		hf_package_release(out);
	for (size_t i = 0; i < in->noptions; i++)
		jdoc_release(&opts[i]);
	free(opts);
	jdoc_release(&config);
	jdoc_release(&resource);
	jdoc_release(&app);
	json_decref(package_json);
	json_decref(merged);
	hf_kvlist_release(&ctx);
	hf_linemap_release(&map);
	free(text);
	if (rc && diags->errors == errors_before)
		hf_diags_add(diags, HF_DIAG_ERROR, in->config.name, 0, 0, "",
			     "the package cannot be rendered");
	return rc;
}

/*
 * Reads dir/rel into f (text NULL when it does not exist). Returns 0, or
 * HF_EIO / HF_ETOOBIG after saying why in diags.
 */
static int read_part(const char *dir, const char *rel, bool required,
		     struct hf_package_file *f, char **name_out,
		     struct hf_diags *diags)
{
	char *path = hf_xasprintf("%s/%s", dir, rel), *text = NULL;
	size_t len = 0;
	int rc = hf_read_file(path, HF_PACKAGE_MAX_FILE, &text, &len);

	*name_out = path;
	f->name = path;
	if (rc == HF_ENOTFOUND && !required)
		return 0;
	if (rc == HF_ENOTFOUND)
		hf_diags_add(diags, HF_DIAG_ERROR, path, 0, 0, "",
			     "the package has no %s (is %s an SDK package "
			     "directory?)",
			     rel, dir);
	else if (rc == HF_ETOOBIG)
		hf_diags_add(diags, HF_DIAG_ERROR, path, 0, 0, "",
			     "%s is larger than 16 MiB", rel);
	else if (rc)
		hf_diags_add(diags, HF_DIAG_ERROR, path, 0, 0, "",
			     "cannot read %s: %s", rel, strerror(errno));
	if (rc)
		return rc == HF_ENOTFOUND ? HF_ENOTFOUND : HF_EIO;
	f->text = text;
	f->len = len;
	return 0;
}

int hf_package_load(const char *dir, const struct hf_strlist *options_files,
		    const struct hf_kvlist *build, struct hf_package *out,
		    struct hf_diags *diags)
{
	static const char *const parts[] = {
	    "universe/config.json", "universe/marathon.json.mustache",
	    "universe/resource.json", "universe/package.json"};
	struct hf_package_input in = {0};
	struct hf_package_file *files[] = {&in.config, &in.marathon,
					   &in.resource, &in.package};
	char *names[4] = {NULL, NULL, NULL, NULL};
	struct hf_package_file *opts = NULL;
	struct hf_kvlist b = {0};
	char *abs = NULL, *copy = NULL, *spec = NULL;
	size_t nopts = options_files ? options_files->len : 0;
	struct stat st;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < HF_ARRAY_LEN(parts) && rc == 0; i++)
		rc = read_part(dir, parts[i], i < 2, files[i], &names[i], diags);
	if (rc)
		goto out;
	opts = hf_xcalloc(nopts + 1, sizeof(*opts));
	for (size_t i = 0; i < nopts; i++) {
		char *text = NULL;
		size_t len = 0;

		opts[i].name = options_files->items[i];
		rc = hf_read_file(options_files->items[i], HF_PACKAGE_MAX_FILE,
				  &text, &len);
		if (rc) {
			hf_diags_add(diags, HF_DIAG_ERROR,
				     options_files->items[i], 0, 0, "",
				     "cannot read the options file: %s",
				     rc == HF_ENOTFOUND ? "no such file"
							: hf_err_msg(rc));
			rc = rc == HF_ENOTFOUND ? HF_ENOTFOUND : HF_EIO;
			goto out;
		}
		opts[i].text = text;
		opts[i].len = len;
	}
	/* The caller's build values, then holdfast's for this directory. */
	if (build)
		hf_kvlist_copy(&b, build);
	abs = realpath(dir, NULL);
	if (!hf_kvlist_get(&b, "artifact-dir")) {
		char *ad = hf_xasprintf("file://%s/artifacts",
					abs ? abs : dir);

		hf_kvlist_set(&b, "artifact-dir", ad);
		free(ad);
	}
	copy = hf_xstrdup(abs ? abs : dir);
	if (!hf_kvlist_get(&b, "package-name")) {
		/* package.json's name wins when concrete; see below. */
		json_t *pj = in.package.text
				 ? json_loadb(in.package.text, in.package.len,
					      0, NULL)
				 : NULL;
		const char *pn = json_string_value(json_object_get(pj, "name"));

		hf_kvlist_set(&b, "package-name",
			      concrete(pn) ? pn : basename(copy));
		json_decref(pj);
	}
	in.options = opts;
	in.noptions = nopts;
	in.build = &b;
	rc = hf_package_render(&in, out, diags);
	if (rc)
		goto out;
	out->dir = hf_xstrdup(dir);
	spec = hf_xasprintf("%s/src/main/dist/%s.yml", dir, out->spec_name);
	if (stat(spec, &st) != 0) {
		hf_diags_add(diags, HF_DIAG_ERROR, spec, 0, 0, "",
			     "the package has no spec src/main/dist/%s.yml "
			     "(chosen by %s)",
			     out->spec_name,
			     strcmp(out->spec_name, "svc") == 0 &&
				     !json_object_get(json_object_get(
							  out->options,
							  "service"),
						      "yaml")
				 ? "default"
				 : "the option service.yaml");
		hf_package_release(out);
		rc = HF_ENOTFOUND;
		goto out;
	}
	out->spec_file = spec;
	spec = NULL;
out:
	for (size_t i = 0; i < HF_ARRAY_LEN(parts); i++) {
		free((char *)files[i]->text);
		free(names[i]);
	}
	for (size_t i = 0; opts && i < nopts; i++)
		free((char *)opts[i].text);
	free(opts);
	hf_kvlist_release(&b);
	free(abs);
	free(copy);
	free(spec);
	return rc;
}
