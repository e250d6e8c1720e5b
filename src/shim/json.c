/*
 * json.c - the shim's strict JSON reader and its writer (json.h).
 *
 * The reader is recursive descent over the bytes, bounded by
 * HF_JSON_MAX_DEPTH, and builds the whole tree: launch.json is small, and
 * a tree lets launch.c ask for keys in any order. Duplicate keys are found
 * as they are read, through a small hash set per object, so a large
 * object costs linear time.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/json.h"

struct reader {
	const char *start, *p, *end;
	char *err;         /* the first error; later ones are not kept */
};

static void HF_PRINTF(3, 4) fail_at(struct reader *r, const char *at,
				    const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	int line = 1, col = 1;
	va_list ap;

	if (r->err)
		return;
	for (const char *q = r->start; q < at && q < r->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	hf_buf_addf(&b, "line %d, column %d: ", line, col);
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	r->err = hf_buf_detach(&b);
}

/* Says what is at p, for "unexpected ..." messages. */
static void fail_unexpected(struct reader *r, const char *p, const char *want)
{
	unsigned char c;

	if (p >= r->end) {
		fail_at(r, p, "unexpected end of input (expected %s)", want);
		return;
	}
	c = (unsigned char)*p;
	if (c > 0x20 && c < 0x7f)
		fail_at(r, p, "unexpected '%c' (expected %s)", c, want);
	else
		fail_at(r, p, "unexpected byte 0x%02x (expected %s)", c, want);
}

static void skip_ws(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
				 *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/*
 * The length (1 to 4) of the well-formed UTF-8 sequence at p (n bytes
 * available), or 0: no overlong forms, no surrogates, nothing above
 * U+10FFFF.
 */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

static void put_utf8(struct hf_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	hf_buf_add(b, u, n);
}

/* Four hex digits at p (r->end permitting) into *v; false if not. */
static bool hex4(const struct reader *r, const char *p, uint32_t *v)
{
	*v = 0;
	if (r->end - p < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		*v = *v << 4 | (uint32_t)d;
	}
	return true;
}

/* At '\\u': the code point of one escape or surrogate pair. */
static bool read_u_escape(struct reader *r, uint32_t *cp)
{
	const char *at = r->p;
	uint32_t lo;

	if (!hex4(r, r->p + 2, cp)) {
		fail_at(r, at, "\\u must be followed by four hex digits");
		return false;
	}
	r->p += 6;
	if (*cp >= 0xdc00 && *cp <= 0xdfff) {
		fail_at(r, at, "lone UTF-16 low surrogate \\u%04" PRIX32, *cp);
		return false;
	}
	if (*cp >= 0xd800 && *cp <= 0xdbff) {
		if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
		    !hex4(r, r->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
			fail_at(r, at, "UTF-16 high surrogate \\u%04" PRIX32
				       " without its low half", *cp);
			return false;
		}
		r->p += 6;
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (*cp == 0) {
		fail_at(r, at, "strings must not contain NUL (\\u0000)");
		return false;
	}
	return true;
}

/* At the opening quote; the string, without NUL inside, or NULL. */
static char *read_string(struct reader *r)
{
	struct hf_buf b = HF_BUF_INIT;

	r->p++;
	for (;;) {
		const char *at = r->p;
		unsigned char c;
		uint32_t cp;
		size_t n;

		if (r->p >= r->end) {
			fail_at(r, at, "unterminated string");
			goto fail;
		}
		c = (unsigned char)*r->p;
		if (c == '"') {
			r->p++;
			break;
		}
		if (c < 0x20) {
			fail_at(r, at, "control character 0x%02x in a string "
				       "(write it as an escape)", c);
			goto fail;
		}
		if (c != '\\') {
			n = utf8_len((const unsigned char *)r->p,
				     (size_t)(r->end - r->p));
			if (!n) {
				fail_at(r, at, "byte 0x%02x is not UTF-8", c);
				goto fail;
			}
			hf_buf_add(&b, r->p, n);
			r->p += n;
			continue;
		}
		if (r->end - r->p < 2) {
			fail_at(r, at, "unterminated string");
			goto fail;
		}
		switch (r->p[1]) {
		case '"': hf_buf_addc(&b, '"'); break;
		case '\\': hf_buf_addc(&b, '\\'); break;
		case '/': hf_buf_addc(&b, '/'); break;
		case 'b': hf_buf_addc(&b, '\b'); break;
		case 'f': hf_buf_addc(&b, '\f'); break;
		case 'n': hf_buf_addc(&b, '\n'); break;
		case 'r': hf_buf_addc(&b, '\r'); break;
		case 't': hf_buf_addc(&b, '\t'); break;
		case 'u':
			if (!read_u_escape(r, &cp))
				goto fail;
			put_utf8(&b, cp);
			continue;
		default:
			fail_at(r, at, "invalid escape in a string (expected "
				       "one of \\\" \\\\ \\/ \\b \\f \\n \\r "
				       "\\t \\uXXXX)");
			goto fail;
		}
		r->p += 2;
	}
	return hf_buf_detach(&b);
fail:
	hf_buf_release(&b);
	return NULL;
}

static bool is_digit(const struct reader *r, const char *p)
{
	return p < r->end && *p >= '0' && *p <= '9';
}

static bool read_number(struct reader *r, struct hf_json *v)
{
	const char *at = r->p, *p = r->p;
	bool real = false;
	char small[64], *tok, *end;

	if (*p == '-')
		p++;
	if (!is_digit(r, p)) {
		fail_unexpected(r, p, "a digit");
		return false;
	}
	if (*p == '0')
		p++;
	else
		while (is_digit(r, p))
			p++;
	if (p < r->end && *p == '.') {
		real = true;
		if (!is_digit(r, ++p)) {
			fail_unexpected(r, p, "a digit after '.'");
			return false;
		}
		while (is_digit(r, p))
			p++;
	}
	if (p < r->end && (*p == 'e' || *p == 'E')) {
		real = true;
		p++;
		if (p < r->end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(r, p)) {
			fail_unexpected(r, p, "a digit in the exponent");
			return false;
		}
		while (is_digit(r, p))
			p++;
	}
	/* strtoll and strtod need a terminated copy of the token. */
	tok = (size_t)(p - at) < sizeof(small) ? small
					       : hf_xmalloc((size_t)(p - at) + 1);
	memcpy(tok, at, (size_t)(p - at));
	tok[p - at] = '\0';
	errno = 0;
	if (real) {
		v->type = HF_JSON_NUMBER;
		v->d = strtod(tok, &end);
		if (!isfinite(v->d))
			fail_at(r, at, "number out of range");
	} else {
		v->type = HF_JSON_INT;
		v->i = strtoll(tok, &end, 10);
		v->d = (double)v->i;
		if (errno == ERANGE)
			fail_at(r, at, "integer out of range (%" PRId64
				       " to %" PRId64 ")", INT64_MIN,
				       INT64_MAX);
	}
	if (tok != small)
		free(tok);
	r->p = p;
	return !r->err;
}

static bool read_literal(struct reader *r, struct hf_json *v)
{
	static const struct {
		const char *word;
		enum hf_json_type type;
		bool b;
	} words[] = {
		{"true", HF_JSON_BOOL, true},
		{"false", HF_JSON_BOOL, false},
		{"null", HF_JSON_NULL, false},
	};

	for (size_t i = 0; i < HF_ARRAY_LEN(words); i++) {
		size_t n = strlen(words[i].word);

		if ((size_t)(r->end - r->p) >= n &&
		    memcmp(r->p, words[i].word, n) == 0) {
			v->type = words[i].type;
			v->b = words[i].b;
			r->p += n;
			return true;
		}
	}
	fail_unexpected(r, r->p, "a value");
	return false;
}

/* The keys of one object being read: open addressing, slot = index + 1. */
struct keyset {
	size_t *slots;
	size_t cap;
};

static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Adds keys[idx]; false if an earlier key is the same. */
static bool keyset_add(struct keyset *ks, char **keys, size_t idx)
{
	size_t i;

	if ((idx + 1) * 2 > ks->cap) {
		struct keyset bigger = {NULL, ks->cap ? ks->cap * 2 : 16};

		bigger.slots = hf_xcalloc(bigger.cap, sizeof(size_t));
		for (size_t k = 0; k < idx; k++) {
			i = key_hash(keys[k]) & (bigger.cap - 1);
			while (bigger.slots[i])
				i = (i + 1) & (bigger.cap - 1);
			bigger.slots[i] = k + 1;
		}
		free(ks->slots);
		*ks = bigger;
	}
	i = key_hash(keys[idx]) & (ks->cap - 1);
	while (ks->slots[i]) {
		if (strcmp(keys[ks->slots[i] - 1], keys[idx]) == 0)
			return false;
		i = (i + 1) & (ks->cap - 1);
	}
	ks->slots[i] = idx + 1;
	return true;
}

static bool read_value(struct reader *r, struct hf_json *v, int depth);

/* Appends one zeroed member to an array or object; returns it. */
static struct hf_json *add_member(struct hf_json *v, size_t *cap)
{
	if (v->n == *cap) {
		*cap = *cap ? *cap * 2 : 4;
		v->items = hf_xrealloc(v->items, *cap * sizeof(*v->items));
		if (v->type == HF_JSON_OBJECT)
			v->keys = hf_xrealloc(v->keys,
					      *cap * sizeof(*v->keys));
	}
	memset(&v->items[v->n], 0, sizeof(v->items[0]));
	if (v->type == HF_JSON_OBJECT)
		v->keys[v->n] = NULL;
	return &v->items[v->n++];
}

static bool read_container(struct reader *r, struct hf_json *v, int depth)
{
	bool object = *r->p == '{';
	char close = object ? '}' : ']';
	struct keyset ks = {NULL, 0};
	size_t cap = 0;
	bool ok = false;

	if (depth >= HF_JSON_MAX_DEPTH) {
		fail_at(r, r->p, "nested deeper than %d arrays and objects",
			HF_JSON_MAX_DEPTH);
		return false;
	}
	v->type = object ? HF_JSON_OBJECT : HF_JSON_ARRAY;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return true;
	}
	for (;;) {
		struct hf_json *m;

		skip_ws(r);
		if (object) {
			const char *at = r->p;
			char *key;

			if (r->p >= r->end || *r->p != '"') {
				fail_unexpected(r, r->p, "a key in quotes");
				goto out;
			}
			key = read_string(r);
			if (!key)
				goto out;
			m = add_member(v, &cap);
			v->keys[v->n - 1] = key;
			if (!keyset_add(&ks, v->keys, v->n - 1)) {
				fail_at(r, at, "duplicate key \"%s\" (a key "
					       "may appear once in an object)",
					key);
				goto out;
			}
			skip_ws(r);
			if (r->p >= r->end || *r->p != ':') {
				fail_unexpected(r, r->p, "':'");
				goto out;
			}
			r->p++;
		} else {
			m = add_member(v, &cap);
		}
		if (!read_value(r, m, depth + 1))
			goto out;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == close) {
			r->p++;
			break;
		}
		fail_unexpected(r, r->p, object ? "',' or '}'" : "',' or ']'");
		goto out;
	}
	ok = true;
out:
	free(ks.slots);
	return ok;
}

static bool read_value(struct reader *r, struct hf_json *v, int depth)
{
	skip_ws(r);
	if (r->p >= r->end) {
		fail_unexpected(r, r->p, "a value");
		return false;
	}
	switch (*r->p) {
	case '{':
	case '[':
		return read_container(r, v, depth);
	case '"':
		v->type = HF_JSON_STRING;
		v->s = read_string(r);
		return v->s != NULL;
	case '-':
	case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return read_number(r, v);
	default:
		return read_literal(r, v);
	}
}

static void release(struct hf_json *v)
{
	for (size_t k = 0; k < v->n; k++) {
		release(&v->items[k]);
		if (v->keys)
			free(v->keys[k]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
}

int hf_json_parse(const char *text, size_t len, struct hf_json **out,
		  char **err)
{
	struct reader r = {text, text, text + len, NULL};
	struct hf_json *v = hf_xcalloc(1, sizeof(*v));

	*out = NULL;
	*err = NULL;
	if (read_value(&r, v, 0)) {
		skip_ws(&r);
		if (r.p < r.end)
			fail_at(&r, r.p, "trailing garbage after the value");
	}
	if (r.err) {
		hf_json_free(v);
		*err = r.err;
		return HF_EPARSE;
	}
	*out = v;
	return 0;
}

void hf_json_free(struct hf_json *v)
{
	if (!v)
		return;
	release(v);
	free(v);
}

const struct hf_json *hf_json_get(const struct hf_json *v, const char *key)
{
	if (!v || v->type != HF_JSON_OBJECT)
		return NULL;
	for (size_t k = 0; k < v->n; k++)
		if (strcmp(v->keys[k], key) == 0)
			return &v->items[k];
	return NULL;
}

bool hf_json_is_null(const struct hf_json *v)
{
	return !v || v->type == HF_JSON_NULL;
}

bool hf_json_is_number(const struct hf_json *v)
{
	return v && (v->type == HF_JSON_INT || v->type == HF_JSON_NUMBER);
}

const char *hf_json_str(const struct hf_json *v)
{
	return v && v->type == HF_JSON_STRING ? v->s : NULL;
}

/* ---- the writer ----------------------------------------------------- */

void hf_jw_init(struct hf_jw *w)
{
	hf_buf_init(&w->b);
	w->comma = false;
}

static void sep(struct hf_jw *w)
{
	if (w->comma)
		hf_buf_addc(&w->b, ',');
	w->comma = true;
}

void hf_jw_open(struct hf_jw *w, char bracket)
{
	sep(w);
	hf_buf_addc(&w->b, bracket);
	w->comma = false;
}

void hf_jw_close(struct hf_jw *w, char bracket)
{
	hf_buf_addc(&w->b, bracket);
	w->comma = true;
}

static void put_string(struct hf_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	hf_buf_addc(b, '"');
	while (left) {
		unsigned char c = *p;
		size_t n;

		if (c == '"' || c == '\\') {
			hf_buf_addc(b, '\\');
			hf_buf_addc(b, (char)c);
			n = 1;
		} else if (c < 0x20) {
			static const char short_esc[] = "btn\0fr";

			if (c >= '\b' && c <= '\r' && short_esc[c - '\b'])
				hf_buf_addf(b, "\\%c", short_esc[c - '\b']);
			else
				hf_buf_addf(b, "\\u%04x", c);
			n = 1;
		} else {
			n = utf8_len(p, left);
			if (n)
				hf_buf_add(b, p, n);
			else {
				hf_buf_adds(b, "\\ufffd");
				n = 1;
			}
		}
		p += n;
		left -= n;
	}
	hf_buf_addc(b, '"');
}

void hf_jw_key(struct hf_jw *w, const char *key)
{
	sep(w);
	put_string(&w->b, key);
	hf_buf_addc(&w->b, ':');
	w->comma = false;
}

void hf_jw_str(struct hf_jw *w, const char *s)
{
	if (!s) {
		hf_jw_null(w);
		return;
	}
	sep(w);
	put_string(&w->b, s);
}

void hf_jw_int(struct hf_jw *w, int64_t v)
{
	sep(w);
	hf_buf_addf(&w->b, "%" PRId64, v);
}

void hf_jw_null(struct hf_jw *w)
{
	sep(w);
	hf_buf_adds(&w->b, "null");
}

void hf_jw_bool(struct hf_jw *w, bool v)
{
	sep(w);
	hf_buf_adds(&w->b, v ? "true" : "false");
}

char *hf_jw_detach(struct hf_jw *w)
{
	w->comma = false;
	return hf_buf_detach(&w->b);
}
