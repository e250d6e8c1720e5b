/*
 * http.c - the HTTP server layer: routing, auth, limits and JSON errors as a
 * pure dispatcher (hf_http_dispatch), and the libmicrohttpd glue that feeds
 * it from sockets, one thread per connection.
 *
 * A request's life under libmicrohttpd (all on the connection's thread):
 *   on_uri        request line read: allocate the call, keep the raw target
 *   on_access #1  headers read: route, auth, query (call_begin); answer the
 *                 errors at once, before any body byte is read, and refuse a
 *                 declared Content-Length over the limit the same way
 *   on_access #n  body pieces: kept up to max_body
 *   on_access end the handler (call_run), then the answer is queued
 *   stream_read   for streamed answers, until the stream ends
 *   on_completed  on_request hook, free the call
 * The pure path (hf_http_dispatch) runs call_begin and call_run on a body
 * it is given whole, so the fuzzer exercises the same code as the server.
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "common/err.h"

/* Per-connection memory in libmicrohttpd: bounds request line + headers. */
#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_MAX_CONNECTIONS 512
#define HTTP_IDLE_TIMEOUT 120
/* Longest piece of client input quoted back in an error message. */
#define HTTP_QUOTE_MAX 200
/* TLS PEM files larger than this are not certificates. */
#define HTTP_PEM_MAX (1024 * 1024)

struct hf_http_server {
	struct hf_http_conf conf;
	struct hf_kvlist tokens;
	struct MHD_Daemon *daemon;
	atomic_bool stopping;
	int port;
	void (*on_request)(void *ctx, const struct hf_http_req *req,
			   int status, double seconds);
	void (*log)(void *ctx, const char *msg);
	char *tls_cert, *tls_key;
	size_t tls_key_len;

	/* libmicrohttpd's messages while starting go into start_log. */
	pthread_mutex_t log_lock;
	bool starting;
	struct hf_buf start_log;
};

/* One request in flight; owns every string its req points to. */
struct http_call {
	struct hf_http_server *srv; /* NULL under hf_http_dispatch */
	char *target;
	struct timespec start;
	const struct hf_http_route *route;
	struct hf_http_req req;
	char *method, *path, *token, *last_event_id, *remote_addr;
	struct hf_buf body;
	unsigned long long body_seen;
	bool begun, too_large, answered;
	int status;
};

/* A streamed answer between the handler and libmicrohttpd's reader. */
struct http_stream {
	struct hf_http_server *srv;
	int (*fn)(void *arg, struct hf_buf *out);
	void (*free_fn)(void *arg);
	void *arg;
	struct hf_buf pending;
	size_t off;
	bool ended;
};

/* ---- text helpers ------------------------------------------------------ */

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

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
			hi = hex_val(s[i + 1]);
			lo = hex_val(s[i + 2]);
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
	if (strcmp(name, "agent") == 0)
		return HF_ROLE_AGENT;
	return HF_ROLE_NONE;
}

/* The role of a presented token; every configured token is compared. */
static int token_role(const struct hf_kvlist *tokens, const char *token)
{
	size_t len = strlen(token);
	int role = HF_ROLE_NONE;

	for (size_t i = 0; i < tokens->len; i++) {
		const struct hf_kv *kv = &tokens->items[i];

		if (token_equal(kv->key, strlen(kv->key), token, len))
			role = role_of(kv->value);
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
}

void hf_http_resp_release(struct hf_http_resp *r)
{
	resp_clear_body(r);
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

int hf_http_conf_check(const struct hf_http_conf *conf, char **err)
{
	const unsigned known = HF_ROUTE_WRITE | HF_ROUTE_AGENT |
			       HF_ROUTE_PUBLIC | HF_ROUTE_STREAM;

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
		rc = check_pattern(r, err);
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
		if (hex_val(s[i + 1]) < 0 || hex_val(s[i + 2]) < 0 ||
		    (s[i + 1] == '0' && s[i + 2] == '0'))
			return false;
		i += 2;
	}
	return true;
}

/* True if key is one of the space-separated words of allowed. */
static bool key_allowed(const char *allowed, const char *key)
{
	size_t n = strlen(key);

	if (!allowed)
		return false;
	while (*allowed) {
		size_t w;

		while (*allowed == ' ')
			allowed++;
		w = strcspn(allowed, " ");
		if (w && w == n && memcmp(allowed, key, n) == 0)
			return true;
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
			hf_buf_add(b, allowed, w);
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
		if (key_allowed(allowed, q->items[i].key))
			continue;
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

static void call_init(struct http_call *c, struct hf_http_server *srv,
		      const char *target)
{
	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->target = hf_xstrdup(target ? target : "");
	clock_gettime(CLOCK_MONOTONIC, &c->start);
	c->req.method = "";
	c->req.path = "";
	c->req.body = "";
	c->req.remote_addr = "";
	c->req.server = srv;
}

static void call_release(struct http_call *c)
{
	free(c->target);
	free(c->method);
	free(c->path);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->last_event_id);
	free(c->remote_addr);
	hf_kvlist_release(&c->req.query);
	hf_kvlist_release(&c->req.params);
	hf_buf_release(&c->body);
	memset(c, 0, sizeof(*c));
}

static bool auth_on(const struct hf_http_conf *conf)
{
	return conf->tokens && conf->tokens->len > 0;
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

/* 0 if the caller's role may use the route, else the status to answer. */
static int authorize(const struct hf_http_conf *conf, unsigned flags, int role)
{
	if (!auth_on(conf) || (flags & HF_ROUTE_PUBLIC))
		return 0;
	if (role == HF_ROLE_NONE)
		return 401;
	if (flags & HF_ROUTE_AGENT)
		return role == HF_ROLE_AGENT || role == HF_ROLE_ADMIN ? 0 : 403;
	if (flags & HF_ROUTE_WRITE)
		return role == HF_ROLE_ADMIN ? 0 : 403;
	return 0;
}

static size_t max_body(const struct hf_http_conf *conf)
{
	return conf->max_body ? conf->max_body : HF_HTTP_MAX_BODY_DEFAULT;
}

static bool method_has_body(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static void answer_413(const struct hf_http_conf *conf, struct hf_http_resp *r)
{
	hf_http_error(r, HF_ETOOBIG,
		      "the request body is larger than the limit of %zu bytes",
		      max_body(conf));
}

/*
 * Everything that can be decided from the request line and headers: the
 * route, auth, parameters and query. Returns true with c->route set when
 * the handler should run once the body is in; false with the answer in
 * resp otherwise. resp is zeroed here.
 */
static bool call_begin(const struct hf_http_conf *conf, struct http_call *c,
		       const struct hf_http_raw *raw, struct hf_http_resp *resp)
{
	const char *target = c->target, *qs;
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
	c->token = bearer_token(raw->authorization);
	c->req.token = c->token;
	if (!auth_on(conf))
		c->req.role = HF_ROLE_ADMIN;
	else if (c->token)
		c->req.role = token_role(conf->tokens, c->token);

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
		if (auth_on(conf) && c->req.role == HF_ROLE_NONE) {
			answer_401(resp, c);
			goto out;
		}
		answer_no_route(resp, c->method, raw_path, &allow);
		goto out;
	}
	c->req.route = c->route->pattern;

	status = authorize(conf, c->route->flags, c->req.role);
	if (status == 401) {
		answer_401(resp, c);
		goto out;
	}
	if (status == 403) {
		hf_http_error(resp, HF_EFORBIDDEN, "%s %s needs %s token",
			      c->route->method, c->route->pattern,
			      c->route->flags & HF_ROUTE_AGENT
				      ? "an agent or admin"
				      : "an admin");
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

/* Runs the handler on the complete body; resp gets a valid answer. */
static void call_run(const struct hf_http_conf *conf, struct http_call *c,
		     struct hf_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	if (method_has_body(c->method)) {
		c->req.body = hf_buf_str(&c->body);
		c->req.body_len = c->body.len;
	}
	c->route->fn(conf->ctx, &c->req, resp);
	c->req.body = "";
	c->req.body_len = 0;
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

void hf_http_dispatch(const struct hf_http_conf *conf,
		      const struct hf_http_raw *raw, struct hf_http_resp *resp)
{
	struct http_call c;

	call_init(&c, NULL, raw->target);
	if (call_begin(conf, &c, raw, resp)) {
		if (raw->body_len > max_body(conf)) {
			answer_413(conf, resp);
		} else {
			if (method_has_body(c.method) && raw->body_len)
				hf_buf_add(&c.body, raw->body, raw->body_len);
			call_run(conf, &c, resp);
		}
	}
	call_release(&c);
}

/* ---- libmicrohttpd glue --------------------------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	size_t n;

	(void)pos;
	while (st->off >= st->pending.len) {
		int rc;

		if (st->ended || hf_http_server_stopping(st->srv))
			return MHD_CONTENT_READER_END_OF_STREAM;
		hf_buf_reset(&st->pending);
		st->off = 0;
		rc = st->fn(st->arg, &st->pending);
		if (rc < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (rc > 0)
			st->ended = true;
		/* Nothing yet: libmicrohttpd calls again (the stream waited). */
		if (st->pending.len == 0 && !st->ended)
			return 0;
	}
	n = st->pending.len - st->off;
	if (n > max)
		n = max;
	memcpy(buf, st->pending.data + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

static void stream_done(void *cls)
{
	struct http_stream *st = cls;

	if (st->free_fn)
		st->free_fn(st->arg);
	hf_buf_release(&st->pending);
	free(st);
}

static bool header_ok(const char *s)
{
	return !strpbrk(s, "\r\n");
}

/*
 * Queues resp on the connection and releases it. Returns what the access
 * handler returns: MHD_NO closes the connection.
 */
static enum MHD_Result answer(struct http_call *c, struct MHD_Connection *con,
			      struct hf_http_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (resp->stream) {
		struct http_stream *st = hf_xcalloc(1, sizeof(*st));

		st->srv = c->srv;
		st->fn = resp->stream;
		st->free_fn = resp->stream_free;
		st->arg = resp->stream_arg;
		if (resp->body)
			hf_buf_add(&st->pending, resp->body, resp->body_len);
		resp->stream = NULL;
		resp->stream_free = NULL;
		resp->stream_arg = NULL;
		/* From here on stream_done owns the stream, called once. */
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
						      16 * 1024, stream_read,
						      st, stream_done);
		if (!r)
			stream_done(st);
	} else {
		r = MHD_create_response_from_buffer(resp->body_len, resp->body,
						    MHD_RESPMEM_MUST_FREE);
		if (r)
			resp->body = NULL;
	}
	c->answered = true;
	c->status = resp->status;
	if (!r) {
		hf_http_resp_release(resp);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				resp->content_type && header_ok(resp->content_type)
					? resp->content_type
					: "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	for (size_t i = 0; i < resp->headers.len; i++) {
		const struct hf_kv *kv = &resp->headers.items[i];

		/* A bad header from a handler is dropped, not sent. */
		if (header_ok(kv->key) && header_ok(kv->value))
			MHD_add_response_header(r, kv->key, kv->value);
	}
	ret = MHD_queue_response(con, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	hf_http_resp_release(resp);
	return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct http_call *c = hf_xmalloc(sizeof(*c));

	(void)con;
	call_init(c, cls, uri);
	return c;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t n)
{
	out[0] = '\0';
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  out, (socklen_t)n);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)sa)->sin6_addr;

		/* IPv4 clients of a dual-stack socket read as IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)n);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)n);
	}
}

/* True if a Content-Length header announces more than max bytes. */
static bool declared_too_large(const char *cl, size_t max)
{
	unsigned long long v;
	char *end;

	if (!cl)
		return false;
	errno = 0;
	v = strtoull(cl, &end, 10);
	if (errno == ERANGE)
		return true;
	return end != cl && v > max;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct hf_http_server *s = cls;
	struct http_call *c = *con_cls;
	struct hf_http_resp resp;
	size_t max = max_body(&s->conf);

	(void)version;
	if (!c) {
		/* Not reached: on_uri runs first. Kept for safety. */
		c = on_uri(s, url, con);
		*con_cls = c;
	}
	if (!c->begun) {
		const union MHD_ConnectionInfo *ci;
		struct hf_http_raw raw = {0};
		char addr[INET6_ADDRSTRLEN];

		c->begun = true;
		ci = MHD_get_connection_info(con,
					     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		addr_text(ci ? ci->client_addr : NULL, addr, sizeof(addr));
		raw.method = method;
		raw.target = c->target;
		raw.remote_addr = addr;
		raw.authorization = MHD_lookup_connection_value(
			con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		raw.last_event_id = MHD_lookup_connection_value(
			con, MHD_HEADER_KIND, "Last-Event-ID");
		if (!call_begin(&s->conf, c, &raw, &resp))
			return answer(c, con, &resp);
		/*
		 * Refuse an announced oversized body now, so that none of it
		 * is read (no 100 Continue is sent either).
		 */
		if (declared_too_large(MHD_lookup_connection_value(
					       con, MHD_HEADER_KIND,
					       MHD_HTTP_HEADER_CONTENT_LENGTH),
				       max)) {
			memset(&resp, 0, sizeof(resp));
			answer_413(&s->conf, &resp);
			return answer(c, con, &resp);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (c->answered)
			return MHD_YES;
		c->body_seen += n;
		if (c->body_seen > max && !c->too_large) {
			c->too_large = true;
			hf_buf_release(&c->body);
		}
		/*
		 * A chunked body has no announced length: it is drained up
		 * to twice the limit to answer 413, then the connection is
		 * cut.
		 */
		if (c->too_large)
			return c->body_seen > 2ULL * max ? MHD_NO : MHD_YES;
		if (method_has_body(c->method))
			hf_buf_add(&c->body, upload_data, n);
		return MHD_YES;
	}
	if (c->answered)
		return MHD_YES;
	if (c->too_large) {
		memset(&resp, 0, sizeof(resp));
		answer_413(&s->conf, &resp);
		return answer(c, con, &resp);
	}
	call_run(&s->conf, c, &resp);
	/* The body is not needed any more; streams may live long. */
	hf_buf_release(&c->body);
	return answer(c, con, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *con,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct hf_http_server *s = cls;
	struct http_call *c = *con_cls;
	struct timespec now;

	(void)con;
	(void)toe;
	if (!c)
		return;
	if (c->answered && s->on_request) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		s->on_request(s->conf.ctx, &c->req, c->status,
			      (double)(now.tv_sec - c->start.tv_sec) +
				      (double)(now.tv_nsec - c->start.tv_nsec) /
					      1e9);
	}
	call_release(c);
	free(c);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) HF_PRINTF(2, 0);

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct hf_http_server *s = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' ||
			 msg[n - 1] == ' ' || msg[n - 1] == '.'))
		msg[--n] = '\0';
	pthread_mutex_lock(&s->log_lock);
	if (s->starting) {
		if (s->start_log.len)
			hf_buf_adds(&s->start_log, "; ");
		hf_buf_adds(&s->start_log, msg);
		pthread_mutex_unlock(&s->log_lock);
		return;
	}
	pthread_mutex_unlock(&s->log_lock);
	if (s->log)
		s->log(s->conf.ctx, msg);
}

/* ---- listening ----------------------------------------------------------- */

struct listen_addr {
	struct sockaddr_storage ss;
	bool any; /* ":port": every address, dual stack */
	uint16_t port;
};

/*
 * Parses "host:port", "[v6]:port" or ":port". Names are resolved only when
 * resolve is set (else only numeric hosts and "localhost" parse).
 */
static int parse_listen(const char *listen, bool resolve,
			struct listen_addr *la, char **err)
{
	const char *host, *port_s;
	size_t host_len;
	struct addrinfo hints = {0}, *ai = NULL;
	char *host_c = NULL;
	unsigned long port;
	char *end;
	int rc = HF_EINVAL, gai;

	memset(la, 0, sizeof(*la));
	if (!listen || !*listen) {
		*err = hf_xstrdup("no listen address");
		return HF_EINVAL;
	}
	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':') {
			*err = hf_xasprintf("bad listen address '%s' (expected [ADDRESS]:PORT)",
					    listen);
			return HF_EINVAL;
		}
		host = listen + 1;
		host_len = (size_t)(close - host);
		port_s = close + 2;
	} else {
		const char *colon = strrchr(listen, ':');

		if (!colon || memchr(listen, ':', (size_t)(colon - listen))) {
			*err = hf_xasprintf("bad listen address '%s' (expected HOST:PORT, [IPV6]:PORT or :PORT)",
					    listen);
			return HF_EINVAL;
		}
		host = listen;
		host_len = (size_t)(colon - listen);
		port_s = colon + 1;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port > 65535 || *port_s == '-' ||
	    *port_s == '+' || *port_s == ' ') {
		*err = hf_xasprintf("bad port in listen address '%s'", listen);
		return HF_EINVAL;
	}
	la->port = (uint16_t)port;
	if (host_len == 0 || (host_len == 1 && host[0] == '*')) {
		la->any = true;
		return 0;
	}
	host_c = hf_xstrndup(host, host_len);
	if (strcmp(host_c, "localhost") == 0 && !resolve) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&la->ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(la->port);
		rc = 0;
		goto out;
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = resolve ? 0 : AI_NUMERICHOST;
	gai = getaddrinfo(host_c, NULL, &hints, &ai);
	if (gai || !ai || ai->ai_addrlen > sizeof(la->ss)) {
		*err = hf_xasprintf("cannot resolve listen address '%s': %s",
				    listen, gai ? gai_strerror(gai) : "no address");
		goto out;
	}
	memcpy(&la->ss, ai->ai_addr, ai->ai_addrlen);
	if (la->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&la->ss)->sin_port = htons(la->port);
	else if (la->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&la->ss)->sin6_port = htons(la->port);
	else {
		*err = hf_xasprintf("listen address '%s' is not IPv4 or IPv6",
				    listen);
		goto out;
	}
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	free(host_c);
	return rc;
}

bool hf_http_listen_is_loopback(const char *listen)
{
	struct listen_addr la;
	char *err = NULL;

	if (parse_listen(listen, false, &la, &err)) {
		free(err);
		return false;
	}
	if (la.any)
		return false;
	if (la.ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&la.ss;

		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (la.ss.ss_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)&la.ss)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

static struct MHD_Daemon *start_daemon(struct hf_http_server *s,
				       const struct listen_addr *la, bool dual,
				       unsigned max_conn, unsigned idle)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const struct sockaddr *sa = NULL;

	if (MHD_is_feature_supported(MHD_FEATURE_POLL))
		flags |= MHD_USE_POLL;
	if (s->tls_cert)
		flags |= MHD_USE_TLS;
	if (la->any && dual)
		flags |= MHD_USE_DUAL_STACK;
	else if (!la->any)
		sa = (const struct sockaddr *)&la->ss;
	if (sa && sa->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The TLS options come last: without TLS the list ends before them. */
	return MHD_start_daemon(
		flags, la->port, NULL, NULL, on_access, s,
		/* The logger first, so that it sees every message. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		MHD_OPTION_CONNECTION_LIMIT, max_conn,
		MHD_OPTION_CONNECTION_TIMEOUT, idle,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_SOCK_ADDR, sa,
		s->tls_cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END,
		s->tls_key, MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert,
		MHD_OPTION_END);
}

static void server_free(struct hf_http_server *s)
{
	hf_kvlist_release(&s->tokens);
	if (s->tls_key)
		explicit_bzero(s->tls_key, s->tls_key_len);
	free(s->tls_key);
	free(s->tls_cert);
	hf_buf_release(&s->start_log);
	pthread_mutex_destroy(&s->log_lock);
	free(s);
}

static int read_pem(const char *what, const char *path, char **out,
		    size_t *len, char **err)
{
	int rc = hf_read_file(path, HTTP_PEM_MAX, out, len);

	if (rc == HF_ETOOBIG)
		*err = hf_xasprintf("cannot read TLS %s %s: larger than %d bytes",
				    what, path, HTTP_PEM_MAX);
	else if (rc)
		*err = hf_xasprintf("cannot read TLS %s %s: %s", what, path,
				    strerror(errno));
	return rc ? HF_EIO : 0;
}

int hf_http_start(const struct hf_http_opts *opts,
		  const struct hf_http_route *routes, size_t nroutes, void *ctx,
		  struct hf_http_server **out, char **err)
{
	struct hf_http_server *s = hf_xcalloc(1, sizeof(*s));
	unsigned max_conn = opts->max_connections ? opts->max_connections
						  : HTTP_MAX_CONNECTIONS;
	unsigned idle = opts->idle_timeout ? opts->idle_timeout
					   : HTTP_IDLE_TIMEOUT;
	const union MHD_DaemonInfo *info;
	struct listen_addr la;
	int rc;

	*out = NULL;
	*err = NULL;
	pthread_mutex_init(&s->log_lock, NULL);
	atomic_init(&s->stopping, false);
	if (opts->tokens)
		for (size_t i = 0; i < opts->tokens->len; i++)
			*HF_VEC_PUSH(&s->tokens) = (struct hf_kv){
				hf_xstrdup(opts->tokens->items[i].key),
				hf_xstrdup(opts->tokens->items[i].value)};
	s->conf.routes = routes;
	s->conf.nroutes = nroutes;
	s->conf.tokens = &s->tokens;
	s->conf.max_body = opts->max_body ? opts->max_body
					  : HF_HTTP_MAX_BODY_DEFAULT;
	s->conf.ctx = ctx;
	s->on_request = opts->on_request;
	s->log = opts->log;
	rc = hf_http_conf_check(&s->conf, err);
	if (rc)
		goto fail;
	rc = parse_listen(opts->listen, true, &la, err);
	if (rc)
		goto fail;
	if (!opts->tls_cert != !opts->tls_key) {
		*err = hf_xstrdup("TLS needs both a certificate and a key");
		rc = HF_EINVAL;
		goto fail;
	}
	if (opts->tls_cert) {
		size_t n;

		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			*err = hf_xstrdup("this libmicrohttpd was built without TLS support");
			rc = HF_EUNSUPPORTED;
			goto fail;
		}
		rc = read_pem("certificate", opts->tls_cert, &s->tls_cert, &n,
			      err);
		if (!rc)
			rc = read_pem("key", opts->tls_key, &s->tls_key,
				      &s->tls_key_len, err);
		if (rc)
			goto fail;
	}

	s->starting = true;
	s->daemon = start_daemon(s, &la, true, max_conn, idle);
	if (!s->daemon && la.any) {
		/* No IPv6 on this host: every IPv4 address then. */
		hf_buf_reset(&s->start_log);
		s->daemon = start_daemon(s, &la, false, max_conn, idle);
	}
	pthread_mutex_lock(&s->log_lock);
	s->starting = false;
	pthread_mutex_unlock(&s->log_lock);
	if (!s->daemon) {
		*err = hf_xasprintf("cannot serve HTTP%s on %s: %s",
				    s->tls_cert ? "S" : "", opts->listen,
				    s->start_log.len ? s->start_log.data
						     : "libmicrohttpd failed to start");
		rc = HF_EIO;
		goto fail;
	}
	hf_buf_release(&s->start_log);
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : la.port;
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

int hf_http_port(const struct hf_http_server *s)
{
	return s->port;
}

bool hf_http_server_stopping(const struct hf_http_server *s)
{
	return s && atomic_load(&((struct hf_http_server *)s)->stopping);
}

void hf_http_stop(struct hf_http_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stopping, true);
	/*
	 * Joins every connection thread: streams see the flag within their
	 * ~1 s wait, long polls finish their wait.
	 */
	MHD_stop_daemon(s->daemon);
	server_free(s);
}
