/*
 * http.c - the HTTP layer's request handling without sockets: Host and
 * Origin checks, routing, auth, query rules, body limit and type, the
 * handler call and JSON errors, as the pure dispatcher hf_http_dispatch();
 * and the first check of a request's head (hf_http_head_check). The socket
 * glue in http_server.c feeds the same functions (http_int.h) from
 * libmicrohttpd, so the fuzzer exercises the same code as the server.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "http/http_int.h"
#include "common/err.h"
#include "common/util.h"

/* Longest piece of client input quoted back in an error message. */
#define HTTP_QUOTE_MAX 200

/* ---- text helpers ------------------------------------------------------ */

/*
 * Decodes n bytes of percent-encoding; plus_space turns '+' into ' ' (query
 * strings). Returns a new string, or NULL if a '%' is not followed by two
 * hex digits or the result would hold a NUL byte.
 */
static char *pct_decode(const char *s, size_t n, bool plus_space)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_add(&b, "", 0);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3)
				goto bad;
			hi = hf_hex_val(s[i + 1]);
			lo = hf_hex_val(s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		if (c == '\0')
			goto bad;
		hf_buf_addc(&b, c);
	}
	return hf_buf_detach(&b);
bad:
	hf_buf_release(&b);
	return NULL;
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the
 * bytes there are not one: the same rules as jansson's (no overlong forms,
 * no surrogates, nothing above U+10FFFF), so a string that passes can
 * always become a JSON string.
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0) {
		len = 2;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		len = 3;
		cp = c & 0x0f;
	} else if (c < 0xf5) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		size_t k = utf8_seq(p, n);

		if (!k)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Appends at most max bytes of s to b, with invalid UTF-8 bytes and control
 * characters replaced by '?', and "..." if it was cut: a safe way to quote
 * client input in a message.
 */
static void add_quoted(struct hf_buf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), done = 0;

	while (n > 0 && done < max) {
		size_t k = utf8_seq(p, n);

		if (!k || (k == 1 && (*p < 0x20 || *p == 0x7f))) {
			hf_buf_addc(b, '?');
			k = 1;
		} else {
			hf_buf_add(b, p, k);
		}
		p += k;
		n -= k;
		done += k;
	}
	if (n > 0)
		hf_buf_adds(b, "...");
}

/* A copy of s made valid UTF-8 (bad bytes -> '?'), controls kept. */
static char *utf8_sanitize(const char *s)
{
	struct hf_buf b = HF_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	hf_buf_add(&b, "", 0);
	while (n > 0) {
		size_t k = utf8_seq(p, n);

		if (!k) {
			hf_buf_addc(&b, '?');
			k = 1;
		} else {
			hf_buf_add(&b, p, k);
		}
		p += k;
		n -= k;
	}
	return hf_buf_detach(&b);
}

/*
 * Compares a presented token with a configured one in time that depends
 * only on the presented token's length, so that response times do not tell
 * an attacker how much of a guess was right. known_len > 0.
 */
static bool token_equal(const char *known, size_t known_len,
			const char *given, size_t given_len)
{
	volatile unsigned char diff = known_len != given_len;

	for (size_t i = 0; i < given_len; i++)
		diff |= (unsigned char)given[i] ^
			(unsigned char)known[i % known_len];
	return diff == 0;
}

static int role_of(const char *name)
{
	if (strcmp(name, "admin") == 0)
		return HF_ROLE_ADMIN;
	if (strcmp(name, "read") == 0)
		return HF_ROLE_READ;
	/* "agent" tokens let new nodes join; "join" says so. */
	if (strcmp(name, "agent") == 0 || strcmp(name, "join") == 0)
		return HF_ROLE_AGENT;
	return HF_ROLE_NONE;
}

/*
 * The role of a presented token: every configured token is compared; one
 * none of them matches goes to the authenticate callback (a node's own
 * credential), which may set *principal.
 */
static int token_role(const struct hf_http_conf *conf, const char *token,
		      char **principal)
{
	size_t len = strlen(token);
	int role = HF_ROLE_NONE;

	*principal = NULL;
	for (size_t i = 0; conf->tokens && i < conf->tokens->len; i++) {
		const struct hf_kv *kv = &conf->tokens->items[i];

		if (token_equal(kv->key, strlen(kv->key), token, len))
			role = role_of(kv->value);
	}
	if (role == HF_ROLE_NONE && conf->authenticate) {
		role = conf->authenticate(conf->ctx, token, principal);
		if (role == HF_ROLE_UNCHECKED) {
			free(*principal);
			*principal = NULL;
		} else if (role != HF_ROLE_NODE || !*principal) {
			free(*principal);
			*principal = NULL;
			role = HF_ROLE_NONE;
		}
	}
	return role;
}

/* The token of an "Authorization: Bearer X" header, or NULL. */
static char *bearer_token(const char *h)
{
	const char *end;

	if (!h)
		return NULL;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return NULL;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	end = h + strlen(h);
	while (end > h && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == h)
		return NULL;
	return hf_xstrndup(h, (size_t)(end - h));
}

/* ---- responses ---------------------------------------------------------- */

static void resp_clear_body(struct hf_http_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->content_type = NULL;
	if (r->stream && r->stream_free)
		r->stream_free(r->stream_arg);
	r->stream = NULL;
	r->stream_free = NULL;
	r->stream_arg = NULL;
	r->stream_waitq = NULL;
	r->stream_poll_ms = 0;
}

/* Drops a deferral that will not run (freeing its argument). */
static void resp_clear_defer(struct hf_http_resp *r)
{
	if (r->resume && r->resume_free)
		r->resume_free(r->resume_arg);
	r->resume = NULL;
	r->resume_free = NULL;
	r->resume_arg = NULL;
	r->resume_ms = 0;
}

void hf_http_resp_release(struct hf_http_resp *r)
{
	resp_clear_body(r);
	resp_clear_defer(r);
	hf_kvlist_release(&r->headers);
	r->status = 0;
}

/* The answer when even an error cannot be encoded. */
static void resp_internal(struct hf_http_resp *r, const char *why)
{
	resp_clear_body(r);
	r->status = 500;
	r->body = hf_xasprintf("{\"error\":\"internal\",\"message\":\"%s\"}\n",
			       why);
	r->body_len = strlen(r->body);
}

void hf_http_json(struct hf_http_resp *r, int status, json_t *body)
{
	char *s;
	size_t n;

	resp_clear_body(r);
	if (!body) {
		resp_internal(r, "the handler produced no JSON body");
		return;
	}
	s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(body);
	if (!s) {
		resp_internal(r, "the response could not be encoded as JSON");
		return;
	}
	n = strlen(s);
	r->body = hf_xrealloc(s, n + 2);
	r->body[n] = '\n';
	r->body[n + 1] = '\0';
	r->body_len = n + 1;
	r->status = status;
}

static void error_v(struct hf_http_resp *r, int status, const char *code,
		    const char *fmt, va_list ap) HF_PRINTF(4, 0);

static void error_v(struct hf_http_resp *r, int status, const char *code,
		    const char *fmt, va_list ap)
{
	struct hf_buf b = HF_BUF_INIT;
	char *msg, *name;
	json_t *o;

	hf_buf_vaddf(&b, fmt, ap);
	msg = utf8_sanitize(hf_buf_str(&b));
	name = utf8_sanitize(code ? code : "error");
	hf_buf_release(&b);
	o = json_object();
	json_object_set_new(o, "error", json_string(name));
	json_object_set_new(o, "message", json_string(msg));
	free(msg);
	free(name);
	hf_http_json(r, status, o);
}

void hf_http_error_status(struct hf_http_resp *r, int status,
			  const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_v(r, status, code, fmt, ap);
	va_end(ap);
}

void hf_http_error(struct hf_http_resp *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (!fmt) {
		hf_http_error_status(r, hf_err_http(err), hf_err_name(err),
				     "%s", hf_err_msg(err));
		return;
	}
	va_start(ap, fmt);
	error_v(r, hf_err_http(err), hf_err_name(err), fmt, ap);
	va_end(ap);
}

void hf_http_text(struct hf_http_resp *r, int status, const char *content_type,
		  const char *text, size_t len)
{
	resp_clear_body(r);
	r->status = status;
	r->body = hf_xstrndup(text, len);
	r->body_len = len;
	r->content_type = content_type ? content_type : "text/plain; charset=utf-8";
}

int hf_http_body_json(const struct hf_http_req *req, struct hf_http_resp *resp,
		      json_t **out)
{
	json_error_t e;

	*out = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
	if (*out)
		return 0;
	hf_http_error_status(resp, 400, "bad-json", "line %d col %d: %s",
			     e.line, e.column, e.text);
	return HF_EPARSE;
}

/* The boolean spellings a ":bool" query key takes. */
static int bool_value(const char *v)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		return 1;
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		return 0;
	return -1;
}

bool hf_http_query_bool(const struct hf_http_req *req, const char *key,
			bool dflt)
{
	const char *v = hf_kvlist_get(&req->query, key);

	return v && bool_value(v) >= 0 ? bool_value(v) == 1 : dflt;
}

/* ---- the route table ---------------------------------------------------- */

/* True if a pattern segment is "{name}" or (*star set) "{name*}". */
static bool seg_is_param(const char *p, size_t n, bool *star)
{
	if (n < 3 || p[0] != '{' || p[n - 1] != '}')
		return false;
	*star = p[n - 2] == '*';
	return true;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int check_pattern(const struct hf_http_route *r, char **err)
{
	const char *p = r->pattern;
	struct hf_strlist names = {0};
	int rc = HF_EINVAL;

	if (!p || p[0] != '/') {
		*err = hf_xasprintf("route pattern '%s' does not start with '/'",
				    p ? p : "(null)");
		return HF_EINVAL;
	}
	while (*p == '/') {
		const char *s = p + 1, *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s), name_len;
		bool star = false;
		char *name;

		if (!seg_is_param(s, n, &star)) {
			if (memchr(s, '{', n) || memchr(s, '}', n) ||
			    memchr(s, '%', n) || memchr(s, '?', n)) {
				*err = hf_xasprintf("route pattern '%s': bad segment '%.*s'",
						    r->pattern, (int)n, s);
				goto out;
			}
			p = e;
			continue;
		}
		name_len = n - 2 - (star ? 1 : 0);
		for (size_t i = 0; i < name_len; i++) {
			if (!name_char(s[1 + i])) {
				name_len = 0;
				break;
			}
		}
		if (name_len == 0 || (star && *e != '\0')) {
			*err = hf_xasprintf("route pattern '%s': bad parameter '%.*s'",
					    r->pattern, (int)n, s);
			goto out;
		}
		name = hf_xstrndup(s + 1, name_len);
		if (hf_strlist_has(&names, name)) {
			*err = hf_xasprintf("route pattern '%s': parameter '%s' twice",
					    r->pattern, name);
			free(name);
			goto out;
		}
		hf_strlist_push(&names, name);
		free(name);
		p = e;
	}
	rc = 0;
out:
	hf_strlist_release(&names);
	return rc;
}

/* Query keys are names, each optionally ":bool". */
static int check_query_keys(const struct hf_http_route *r, char **err)
{
	const char *k = r->query_keys;

	while (k && *k) {
		size_t w, n;

		while (*k == ' ')
			k++;
		w = strcspn(k, " ");
		n = strcspn(k, ": ");
		for (size_t i = 0; i < n; i++)
			if (!name_char(k[i]))
				n = 0;
		if (w && (n == 0 || (n < w && (w - n != 5 ||
					       strncmp(k + n, ":bool", 5))))) {
			*err = hf_xasprintf("route '%s': bad query key '%.*s'",
					    r->pattern, (int)w, k);
			return HF_EINVAL;
		}
		k += w;
	}
	return 0;
}

int hf_http_conf_check(const struct hf_http_conf *conf, char **err)
{
	const unsigned known = HF_ROUTE_WRITE | HF_ROUTE_AGENT |
			       HF_ROUTE_PUBLIC | HF_ROUTE_STREAM |
			       HF_ROUTE_JOIN | HF_ROUTE_BLOCKING |
			       HF_ROUTE_REMOTE;
	const unsigned roles = HF_ROUTE_WRITE | HF_ROUTE_AGENT |
			       HF_ROUTE_PUBLIC | HF_ROUTE_JOIN |
			       HF_ROUTE_REMOTE;

	*err = NULL;
	if (conf->nroutes && !conf->routes) {
		*err = hf_xstrdup("no route table");
		return HF_EINVAL;
	}
	for (size_t i = 0; i < conf->nroutes; i++) {
		const struct hf_http_route *r = &conf->routes[i];
		int rc;

		if (!r->method || !*r->method || !r->fn) {
			*err = hf_xasprintf("route %zu ('%s') has no method or handler",
					    i, r->pattern ? r->pattern : "(null)");
			return HF_EINVAL;
		}
		if (r->flags & ~known) {
			*err = hf_xasprintf("route '%s' has unknown flags %#x",
					    r->pattern ? r->pattern : "(null)",
					    r->flags & ~known);
			return HF_EINVAL;
		}
		if (__builtin_popcount(r->flags & roles) > 1) {
			*err = hf_xasprintf("route '%s' names more than one role",
					    r->pattern ? r->pattern : "(null)");
			return HF_EINVAL;
		}
		rc = check_pattern(r, err);
		if (!rc)
			rc = check_query_keys(r, err);
		if (rc)
			return rc;
	}
	for (size_t i = 0; conf->tokens && i < conf->tokens->len; i++) {
		const struct hf_kv *kv = &conf->tokens->items[i];

		if (!kv->key[0]) {
			*err = hf_xstrdup("empty token");
			return HF_EINVAL;
		}
		for (const char *c = kv->key; *c; c++) {
			if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
				/* Never quote the token itself. */
				*err = hf_xasprintf("token %zu holds whitespace or control characters",
						    i + 1);
				return HF_EINVAL;
			}
		}
		if (role_of(kv->value) == HF_ROLE_NONE) {
			*err = hf_xasprintf("token %zu has role '%s' (expected admin, read or agent)",
					    i + 1, kv->value);
			return HF_EINVAL;
		}
	}
	for (size_t i = 0; conf->hosts && i < conf->hosts->len; i++) {
		const char *h = conf->hosts->items[i];

		if (!*h || strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-_") !=
				   strlen(h)) {
			*err = hf_xasprintf("'%s' is not a host name in lower case",
					    h);
			return HF_EINVAL;
		}
	}
	return 0;
}

/*
 * Matches a raw path (starting with '/', percent-encoding already checked)
 * against a pattern; on a match the decoded parameters are appended to
 * params (which the caller empties either way).
 */
static bool route_match(const char *pattern, const char *path,
			struct hf_kvlist *params)
{
	const char *p = pattern, *s = path;

	for (;;) {
		const char *pe, *se;
		size_t pn, sn;
		bool star;

		/* Both p and s are at a '/'. */
		p++;
		s++;
		pe = strchrnul(p, '/');
		se = strchrnul(s, '/');
		pn = (size_t)(pe - p);
		sn = (size_t)(se - s);
		if (seg_is_param(p, pn, &star)) {
			struct hf_kv *kv;

			if (star) {
				kv = HF_VEC_PUSH(params);
				kv->key = hf_xstrndup(p + 1, pn - 3);
				kv->value = pct_decode(s, strlen(s), false);
				return kv->value != NULL;
			}
			if (sn == 0)
				return false;
			kv = HF_VEC_PUSH(params);
			kv->key = hf_xstrndup(p + 1, pn - 2);
			kv->value = pct_decode(s, sn, false);
			if (!kv->value)
				return false;
		} else if (pn != sn || memcmp(p, s, pn) != 0) {
			return false;
		}
		p = pe;
		s = se;
		if (!*p || !*s)
			return !*p && !*s;
	}
}

/* True if every '%' in s[0..n) starts a valid escape of a non-NUL byte. */
static bool pct_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%')
			continue;
		if (n - i < 3)
			return false;
		if (hf_hex_val(s[i + 1]) < 0 || hf_hex_val(s[i + 2]) < 0 ||
		    (s[i + 1] == '0' && s[i + 2] == '0'))
			return false;
		i += 2;
	}
	return true;
}

/*
 * True if key is one of the space-separated words of allowed (a word may
 * end in ":bool": *is_bool, when not NULL, says so).
 */
static bool key_allowed(const char *allowed, const char *key, bool *is_bool)
{
	size_t n = strlen(key);

	if (!allowed)
		return false;
	while (*allowed) {
		size_t w;

		while (*allowed == ' ')
			allowed++;
		w = strcspn(allowed, " ");
		if (w && strcspn(allowed, ": ") == n &&
		    memcmp(allowed, key, n) == 0) {
			if (is_bool)
				*is_bool = w > n;
			return true;
		}
		allowed += w;
	}
	return false;
}

static void add_allowed_list(struct hf_buf *b, const char *allowed)
{
	bool first = true;

	while (allowed && *allowed) {
		size_t w;

		while (*allowed == ' ')
			allowed++;
		w = strcspn(allowed, " ");
		if (w) {
			if (!first)
				hf_buf_adds(b, ", ");
			hf_buf_add(b, allowed, strcspn(allowed, ": "));
			first = false;
		}
		allowed += w;
	}
}

/*
 * Parses a raw query string into q. Returns NULL or an error sentence
 * (owned by the caller).
 */
static char *query_parse(const char *qs, struct hf_kvlist *q)
{
	while (*qs) {
		size_t n = strcspn(qs, "&"), kn;
		const char *eq = memchr(qs, '=', n);
		char *k, *v;

		if (n == 0) {
			qs++;
			continue;
		}
		kn = eq ? (size_t)(eq - qs) : n;
		k = pct_decode(qs, kn, true);
		v = eq ? pct_decode(eq + 1, n - kn - 1, true) : hf_xstrdup("");
		if (!k || !v) {
			free(k);
			free(v);
			return hf_xstrdup("invalid percent-encoding in the query string");
		}
		if (!utf8_valid(k) || !utf8_valid(v)) {
			free(k);
			free(v);
			return hf_xstrdup("a query parameter is not valid UTF-8");
		}
		{
			struct hf_kv *kv = HF_VEC_PUSH(q);

			kv->key = k;
			kv->value = v;
		}
		qs += n;
		if (*qs == '&')
			qs++;
	}
	return NULL;
}

/*
 * The first route in table order matching method and raw path, with its
 * decoded parameters in params; or NULL, with the methods of the routes
 * that match the path ("GET, PUT", each once) in allow.
 */
static const struct hf_http_route *find_route(const struct hf_http_conf *conf,
					      const char *method,
					      const char *raw_path,
					      struct hf_kvlist *params,
					      struct hf_buf *allow)
{
	struct hf_strlist methods = {0};

	for (size_t i = 0; i < conf->nroutes; i++) {
		const struct hf_http_route *r = &conf->routes[i];

		hf_kvlist_release(params);
		if (!route_match(r->pattern, raw_path, params))
			continue;
		if (strcmp(r->method, method) == 0) {
			hf_strlist_release(&methods);
			return r;
		}
		if (!hf_strlist_has(&methods, r->method)) {
			hf_strlist_push(&methods, r->method);
			if (allow->len)
				hf_buf_adds(allow, ", ");
			hf_buf_adds(allow, r->method);
		}
	}
	hf_kvlist_release(params);
	hf_strlist_release(&methods);
	return NULL;
}

/* The 404 or 405 (allow: the methods the path has) for an unrouted request. */
static void answer_no_route(struct hf_http_resp *resp, const char *method,
			    const char *raw_path, const struct hf_buf *allow)
{
	struct hf_buf msg = HF_BUF_INIT;

	hf_buf_adds(&msg, allow->len ? "method not allowed: "
				     : "no such endpoint: ");
	add_quoted(&msg, method, 16);
	hf_buf_addc(&msg, ' ');
	add_quoted(&msg, raw_path, HTTP_QUOTE_MAX);
	if (allow->len) {
		hf_buf_addf(&msg, " (allowed: %s)", hf_buf_str(allow));
		hf_http_error_status(resp, 405, "method-not-allowed", "%s",
				     hf_buf_str(&msg));
		hf_kvlist_set(&resp->headers, "Allow", hf_buf_str(allow));
	} else {
		hf_http_error(resp, HF_ENOTFOUND, "%s", hf_buf_str(&msg));
	}
	hf_buf_release(&msg);
}

/* True if every key of q is allowed; else a 400 naming the first one. */
static bool query_keys_ok(const struct hf_kvlist *q, const char *allowed,
			  struct hf_http_resp *resp)
{
	struct hf_buf msg = HF_BUF_INIT;

	for (size_t i = 0; i < q->len; i++) {
		bool is_bool = false;

		if (key_allowed(allowed, q->items[i].key, &is_bool)) {
			if (is_bool && bool_value(q->items[i].value) < 0) {
				hf_buf_adds(&msg, "query parameter '");
				add_quoted(&msg, q->items[i].key, 64);
				hf_buf_adds(&msg, "' is true or false, not '");
				add_quoted(&msg, q->items[i].value, 64);
				hf_buf_addc(&msg, '\'');
			}
			for (size_t k = 0; k < i && !msg.len; k++) {
				if (strcmp(q->items[k].key, q->items[i].key))
					continue;
				hf_buf_adds(&msg, "query parameter '");
				add_quoted(&msg, q->items[i].key, 64);
				hf_buf_adds(&msg, "' is given more than once");
				break;
			}
			if (!msg.len)
				continue;
			hf_http_error_status(resp, 400, "bad-request", "%s",
					     hf_buf_str(&msg));
			hf_buf_release(&msg);
			return false;
		}
		hf_buf_adds(&msg, "unknown query parameter '");
		add_quoted(&msg, q->items[i].key, 64);
		if (allowed && strspn(allowed, " ") != strlen(allowed)) {
			hf_buf_adds(&msg, "' (allowed: ");
			add_allowed_list(&msg, allowed);
			hf_buf_addc(&msg, ')');
		} else {
			hf_buf_adds(&msg, "' (this endpoint takes none)");
		}
		hf_http_error_status(resp, 400, "bad-request", "%s",
				     hf_buf_str(&msg));
		hf_buf_release(&msg);
		return false;
	}
	return true;
}

/* ---- one request ---------------------------------------------------------- */

void http_call_init(struct http_call *c, struct hf_http_server *srv,
		    const char *target)
{
	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->target = hf_xstrdup(target ? target : "");
	c->start_ns = hf_mono_ns();
	c->req.method = "";
	c->req.path = "";
	c->req.body = "";
	c->req.remote_addr = "";
	c->req.server = srv;
}

void http_call_release(struct http_call *c)
{
	free(c->target);
	free(c->method);
	free(c->path);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->last_event_id);
	free(c->remote_addr);
	free(c->principal);
	free(c->content_type);
	hf_kvlist_release(&c->req.query);
	hf_kvlist_release(&c->req.params);
	hf_buf_release(&c->body);
	memset(c, 0, sizeof(*c));
}

static void answer_401(struct hf_http_resp *r, const struct http_call *c)
{
	if (c->token)
		hf_http_error(r, HF_EAUTH, "the bearer token is not valid");
	else
		hf_http_error(r, HF_EAUTH,
			      "this endpoint needs a bearer token (Authorization: Bearer TOKEN)");
	hf_kvlist_set(&r->headers, "WWW-Authenticate",
		      c->token ? "Bearer realm=\"holdfast\", error=\"invalid_token\""
			       : "Bearer realm=\"holdfast\"");
}

/*
 * 0 if the caller's role may use the route, else the status to answer;
 * *needs says what the route takes.
 */
static int authorize(unsigned flags, int role, const char **needs)
{
	bool ok;

	if (flags & HF_ROUTE_PUBLIC)
		return 0;
	if (role == HF_ROLE_NONE)
		return 401;
	if (flags & HF_ROUTE_REMOTE) {
		*needs = "a remote cluster's client certificate (signed by "
			 "this server's --client-ca)";
		ok = role == HF_ROLE_REMOTE;
	} else if (flags & HF_ROUTE_AGENT) {
		*needs = "a node's own credential (the agent registers for one)";
		ok = role == HF_ROLE_NODE;
	} else if (flags & HF_ROUTE_JOIN) {
		*needs = "an agent (join) or admin token";
		ok = role == HF_ROLE_AGENT || role == HF_ROLE_ADMIN;
	} else if (flags & HF_ROUTE_WRITE) {
		*needs = "an admin token";
		ok = role == HF_ROLE_ADMIN;
	} else {
		*needs = "a read or admin token";
		ok = role == HF_ROLE_READ || role == HF_ROLE_ADMIN;
	}
	return ok ? 0 : 403;
}

size_t http_max_body(const struct hf_http_conf *conf)
{
	return conf->max_body ? conf->max_body : HF_HTTP_MAX_BODY_DEFAULT;
}

bool http_method_has_body(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

void http_answer_413(const struct hf_http_conf *conf, struct hf_http_resp *r)
{
	hf_http_error(r, HF_ETOOBIG,
		      "the request body is larger than the limit of %zu bytes",
		      http_max_body(conf));
}

/*
 * The host of a Host header ("name:port", "[v6]:port", "name"), lower
 * case, into out; false when it is not one.
 */
static bool host_of(const char *h, char *out, size_t n)
{
	const char *end;
	size_t len;

	if (*h == '[') {
		h++;
		end = strchr(h, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
	} else {
		end = h + strcspn(h, ":");
	}
	len = (size_t)(end - h);
	if (len == 0 || len >= n)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '@')
			return false;
		out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	out[len] = '\0';
	if (*end == ']')
		end++;
	if (*end == ':' && strspn(end + 1, "0123456789") != strlen(end + 1))
		return false;
	return true;
}

/*
 * Whether a Host names this server. An IP literal cannot be a DNS-rebinding
 * name, "localhost" resolves here, the rest must be configured.
 */
static bool host_allowed(const struct hf_http_conf *conf, const char *host)
{
	char name[256];
	struct in_addr a4;
	struct in6_addr a6;

	if (!host_of(host, name, sizeof(name)))
		return false;
	if (inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1 ||
	    strcmp(name, "localhost") == 0)
		return true;
	return conf->hosts && hf_strlist_has(conf->hosts, name);
}

/*
 * Whether an Origin is the Host's own origin: "http(s)://" followed by
 * exactly the Host header (case aside). A browser sends Origin on
 * cross-site requests; other clients send none.
 */
static bool origin_allowed(const char *origin, const char *host)
{
	const char *rest;

	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return false;
	return host && strcasecmp(rest, host) == 0;
}

/* "application/json", optionally with parameters ("; charset=utf-8"). */
static bool is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

bool http_call_begin(const struct hf_http_conf *conf, struct http_call *c,
		     const struct hf_http_raw *raw, struct hf_http_resp *resp)
{
	const char *target = c->target, *qs, *needs = "";
	struct hf_buf allow = HF_BUF_INIT, msg = HF_BUF_INIT;
	char *raw_path = NULL, *why;
	bool ok = false;
	int status;

	memset(resp, 0, sizeof(*resp));
	c->method = hf_xstrdup(raw->method ? raw->method : "");
	c->req.method = c->method;
	if (raw->remote_addr) {
		c->remote_addr = hf_xstrdup(raw->remote_addr);
		c->req.remote_addr = c->remote_addr;
	}
	if (raw->last_event_id) {
		c->last_event_id = hf_xstrdup(raw->last_event_id);
		c->req.last_event_id = c->last_event_id;
	}
	if (raw->content_type)
		c->content_type = hf_xstrdup(raw->content_type);

	if (raw->repeated) {
		hf_http_error_status(resp, 400, "bad-request",
				     "the %s header is given more than once",
				     raw->repeated);
		goto out;
	}
	/*
	 * Cross-site requests first, whatever else they carry: a page that
	 * rebinds its name to this address, or posts from another origin.
	 */
	if (raw->host && !host_allowed(conf, raw->host)) {
		hf_buf_adds(&msg, "this server does not answer to the name '");
		add_quoted(&msg, raw->host, 100);
		hf_buf_adds(&msg, "' (Host header); use its address, or start "
				  "it with --advertise or --allow-host");
		hf_http_error_status(resp, 403, "forbidden", "%s",
				     hf_buf_str(&msg));
		goto out;
	}
	if (raw->origin && !origin_allowed(raw->origin, raw->host)) {
		hf_buf_adds(&msg, "cross-origin requests are refused (Origin '");
		add_quoted(&msg, raw->origin, 100);
		hf_buf_adds(&msg, "')");
		hf_http_error_status(resp, 403, "forbidden", "%s",
				     hf_buf_str(&msg));
		goto out;
	}

	c->token = bearer_token(raw->authorization);
	c->req.token = c->token;
	if (c->token)
		c->req.role = token_role(conf, c->token, &c->principal);
	else if (raw->peer_cn && *raw->peer_cn) {
		/* A token goes before a certificate: one credential a request. */
		c->req.role = HF_ROLE_REMOTE;
		c->principal = hf_xstrdup(raw->peer_cn);
	}
	if (raw->peer_error && !c->token) {
		hf_http_error_status(resp, 401, "unauthorized",
				     "the client certificate was refused: %s",
				     raw->peer_error);
		goto out;
	}
	c->req.principal = c->principal;
	if (c->req.role == HF_ROLE_UNCHECKED) {
		hf_http_error(resp, HF_EUNAVAIL,
			      "this credential cannot be checked now: the "
			      "server cannot read its nodes' credentials yet "
			      "(its log says why)");
		goto out;
	}

	/* An absolute-form target (RFC 9112 3.2.2) names a path too. */
	if (strncasecmp(target, "http://", 7) == 0 ||
	    strncasecmp(target, "https://", 8) == 0) {
		target = strchr(target, ':') + 3;
		target += strcspn(target, "/?");
		if (*target != '/') {
			hf_http_error_status(resp, 400, "bad-request",
					     "the request target has no path");
			goto out;
		}
	}
	if (*target != '/' || !*c->method) {
		hf_http_error_status(resp, 400, "bad-request",
				     "the request target must be a path starting with '/'");
		goto out;
	}
	qs = strchr(target, '?');
	raw_path = hf_xstrndup(target, qs ? (size_t)(qs - target)
					  : strlen(target));
	if (!pct_valid(raw_path, strlen(raw_path))) {
		hf_http_error_status(resp, 400, "bad-request",
				     "invalid percent-encoding in the path");
		goto out;
	}
	c->path = pct_decode(raw_path, strlen(raw_path), false);
	c->req.path = c->path;

	c->route = find_route(conf, c->method, raw_path, &c->req.params,
			      &allow);
	if (!c->route) {
		/* Without a valid token nothing says whether a path exists. */
		if (c->req.role == HF_ROLE_NONE) {
			answer_401(resp, c);
			goto out;
		}
		answer_no_route(resp, c->method, raw_path, &allow);
		goto out;
	}
	c->req.route = c->route->pattern;

	status = authorize(c->route->flags, c->req.role, &needs);
	if (status == 401) {
		answer_401(resp, c);
		goto out;
	}
	if (status == 403) {
		hf_http_error(resp, HF_EFORBIDDEN, "%s %s needs %s",
			      c->route->method, c->route->pattern, needs);
		goto out;
	}

	for (size_t i = 0; i < c->req.params.len; i++) {
		const struct hf_kv *kv = &c->req.params.items[i];

		if (!utf8_valid(kv->value) || has_control(kv->value)) {
			hf_buf_reset(&msg);
			hf_buf_addf(&msg, "path parameter '%s' must be UTF-8 text without control characters: '",
				    kv->key);
			add_quoted(&msg, kv->value, HTTP_QUOTE_MAX);
			hf_buf_addc(&msg, '\'');
			hf_http_error_status(resp, 400, "bad-request", "%s",
					     hf_buf_str(&msg));
			goto out;
		}
	}

	why = qs ? query_parse(qs + 1, &c->req.query) : NULL;
	if (why) {
		hf_http_error_status(resp, 400, "bad-request", "%s", why);
		free(why);
		goto out;
	}
	if (!query_keys_ok(&c->req.query, c->route->query_keys, resp))
		goto out;
	ok = true;
out:
	free(raw_path);
	hf_buf_release(&allow);
	hf_buf_release(&msg);
	return ok;
}

void http_resp_finish(struct hf_http_resp *resp)
{
	if (resp->status < 100 || resp->status > 599) {
		int bad = resp->status;

		hf_http_resp_release(resp);
		if (bad == 0)
			resp_internal(resp, "the handler gave no answer");
		else
			resp_internal(resp, "the handler gave an invalid HTTP status");
	}
	if (resp->body && !resp->stream && resp->body_len == 0)
		resp->body_len = strlen(resp->body);
}

/*
 * A body of any method but GET must be JSON: a browser cannot send that to
 * another site without a preflight (which this server never grants).
 */
static bool body_type_ok(const struct http_call *c, struct hf_http_resp *resp)
{
	const char *ct = c->content_type;

	if (!http_method_has_body(c->method))
		return true;
	if (ct ? is_json_type(ct) : c->body.len == 0)
		return true;
	if (ct) {
		struct hf_buf msg = HF_BUF_INIT;

		hf_buf_adds(&msg, "the request body must be JSON (Content-Type: "
				  "application/json), not '");
		add_quoted(&msg, ct, 100);
		hf_buf_addc(&msg, '\'');
		hf_http_error_status(resp, 415, "unsupported-media-type", "%s",
				     hf_buf_str(&msg));
		hf_buf_release(&msg);
	} else {
		hf_http_error_status(resp, 415, "unsupported-media-type",
				     "the request body must be JSON "
				     "(Content-Type: application/json)");
	}
	return false;
}

void http_call_run(const struct hf_http_conf *conf, struct http_call *c,
		   struct hf_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (!body_type_ok(c, resp))
		return;
	if (http_method_has_body(c->method)) {
		c->req.body = hf_buf_str(&c->body);
		c->req.body_len = c->body.len;
	}
	c->route->fn(conf->ctx, &c->req, resp);
	c->req.body = "";
	c->req.body_len = 0;
	if (!resp->resume)
		http_resp_finish(resp);
}

void http_call_resume(const struct hf_http_conf *conf, struct http_call *c,
		      struct hf_http_resp *resp, hf_http_resume_fn fn,
		      void *arg, bool woken)
{
	memset(resp, 0, sizeof(*resp));
	fn(conf->ctx, &c->req, resp, arg, woken);
	if (!resp->resume)
		http_resp_finish(resp);
}

void hf_http_defer(const struct hf_http_req *req, struct hf_http_resp *resp,
		   struct hf_http_waitq *q, long timeout_ms,
		   hf_http_resume_fn fn, void *arg, void (*arg_free)(void *))
{
	resp->resume = fn;
	resp->resume_arg = arg;
	resp->resume_free = arg_free;
	resp->resume_ms = timeout_ms > 0 ? timeout_ms : 0;
	if (req->server)
		http_server_arm(req->server, HTTP_CALL_OF(req), q);
}

void hf_http_dispatch(const struct hf_http_conf *conf,
		      const struct hf_http_raw *raw, struct hf_http_resp *resp)
{
	struct http_call c;

	http_call_init(&c, NULL, raw->target);
	if (http_call_begin(conf, &c, raw, resp)) {
		if (raw->body_len > http_max_body(conf)) {
			http_answer_413(conf, resp);
		} else {
			if (http_method_has_body(c.method) && raw->body_len)
				hf_buf_add(&c.body, raw->body, raw->body_len);
			http_call_run(conf, &c, resp);
		}
	}
	/* Without a server nothing can wake a deferred answer: it expires. */
	if (resp->resume) {
		hf_http_resume_fn fn = resp->resume;
		void *arg = resp->resume_arg;
		void (*arg_free)(void *) = resp->resume_free;

		resp->resume = NULL;
		resp->resume_free = NULL;
		http_call_resume(conf, &c, resp, fn, arg, false);
		if (arg_free && resp->resume_arg != arg)
			arg_free(arg);
		if (resp->resume) {
			hf_http_resp_release(resp);
			resp_internal(resp, "the answer was deferred twice");
		}
	}
	http_call_release(&c);
}

/* ---- the first check of a request's head ------------------------------- */

static bool ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

int hf_http_head_check(const char *buf, size_t n, size_t max_head,
		       size_t *head_len, int *status, char **msg)
{
	size_t start = 0, end = 0, i, lines = 0, cl_count = 0;
	bool te = false, cl_bad = false, cl_huge = false, last_cl = false;

	*status = 0;
	*msg = NULL;
	*head_len = 0;
	/* Empty lines before a request line are tolerated (RFC 9112 2.2). */
	while (start < n && (buf[start] == '\r' || buf[start] == '\n'))
		start++;
	for (i = start; i < n; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < n && buf[i + 1] == '\n') {
			end = i + 2;
			break;
		}
		if (i + 2 < n && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
			end = i + 3;
			break;
		}
	}
	if (!end) {
		if (n < max_head)
			return 0;
		*head_len = n;
		*status = 431;
		*msg = hf_xasprintf("the request line and headers are larger "
				    "than %zu bytes",
				    max_head);
		return 1;
	}
	*head_len = end;
	for (i = start; i < end;) {
		size_t len = 0, name_len, k;
		const char *line = buf + i, *colon;

		while (i + len < end && buf[i + len] != '\n')
			len++;
		i += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		if (lines++ == 0 || len == 0)
			continue;
		/* A folded line continues the header before it. */
		if (ows(line[0])) {
			if (last_cl)
				cl_bad = true;
			continue;
		}
		last_cl = false;
		colon = memchr(line, ':', len);
		if (!colon)
			continue;
		name_len = (size_t)(colon - line);
		while (name_len && ows(line[name_len - 1]))
			name_len--;
		if (name_len == 17 &&
		    strncasecmp(line, "transfer-encoding", 17) == 0) {
			te = true;
		} else if (name_len == 14 &&
			   strncasecmp(line, "content-length", 14) == 0) {
			const char *v = colon + 1, *ve = line + len;
			unsigned long long val = 0;

			last_cl = true;
			cl_count++;
			while (v < ve && ows(*v))
				v++;
			while (ve > v && ows(ve[-1]))
				ve--;
			if (v == ve)
				cl_bad = true;
			for (k = 0; v + k < ve; k++) {
				unsigned d = (unsigned char)v[k] - '0';

				if (d > 9) {
					cl_bad = true;
					break;
				}
				/* Beyond 2^63: no body is ever that large. */
				if (val > (1ULL << 63) / 10)
					cl_huge = true;
				else
					val = val * 10 + d;
			}
		}
	}
	if (cl_count > 1 || cl_bad || (cl_count && te)) {
		*status = 400;
		*msg = hf_xstrdup(cl_count > 1 ? "the request has more than one "
						 "Content-Length header"
				  : cl_bad     ? "the Content-Length header is not "
						 "a number of bytes"
					       : "the request has both "
						 "Content-Length and "
						 "Transfer-Encoding");
	} else if (cl_huge) {
		*status = 413;
		*msg = hf_xstrdup("the Content-Length header announces more "
				  "than any request body may hold");
	}
	return 1;
}
