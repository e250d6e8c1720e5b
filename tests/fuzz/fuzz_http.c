/*
 * fuzz_http.c - libFuzzer target for the HTTP layer's request handling
 * without sockets: Host and Origin checks, routing, percent-decoding, query
 * rules (repeats, booleans), credentials (configured tokens and a node's own
 * through the authenticate callback), the body limit and type, deferred
 * answers, JSON bodies and the error answers, all through
 * hf_http_dispatch(), the function the server runs for every request; and
 * the first check of a request's head (hf_http_head_check), which runs on
 * raw bytes before libmicrohttpd sees them.
 *
 * Input: one flags byte (bit 0: tokens configured, bit 1: a 64-byte body
 * limit, bit 2: node credentials known, bit 3: an extra allowed host name),
 * then "METHOD\nTARGET\nAUTHORIZATION\nHOST\nORIGIN\nCONTENT-TYPE\n" and the
 * body. An empty line means no such header. The whole input also goes to
 * hf_http_head_check as the bytes a client sent.
 *
 * Checked for every input: the handler only sees what the contract promises
 * (a route, a role the route allows, a Host and Origin that passed, a JSON
 * body type, decoded UTF-8 parameters and query without NUL, allowed query
 * keys given once, boolean keys with boolean values, a bounded
 * NUL-terminated body), the answer has a valid status, JSON answers parse
 * and errors have {"error", "message"} strings, no token is echoed, a stream
 * that is never run is freed exactly once, a deferred answer's argument is
 * freed exactly once, and the head check's answer is consistent.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "http/http.h"
#include "common/err.h"
#include "common/util.h"

#define SECRET_ADMIN "adm-Secret-0001"
#define SECRET_READ "rd-Secret-0002"
#define SECRET_AGENT "ag-Secret-0003"
#define SECRET_NODE "nd-Secret-0004-node-credential-xxxxxxxxxx"
#define NODE_ID "node-7"
#define EXTRA_HOST "holdfast.example"

struct fz {
	size_t max_body;
	bool nodes, extra_host;
	const struct hf_http_raw *raw;
	int calls, stream_frees, streams, defer_frees, defers;
};

static bool text_ok(const char *s)
{
	json_t *j = json_string(s); /* NULL unless valid UTF-8 */

	json_decref(j);
	return j != NULL;
}

static int authenticate(void *ctx, const char *token, char **principal)
{
	struct fz *z = ctx;

	*principal = NULL;
	if (!z->nodes || strcmp(token, SECRET_NODE) != 0)
		return HF_ROLE_NONE;
	*principal = hf_xstrdup(NODE_ID);
	return HF_ROLE_NODE;
}

/* The host of a Host value, lower case; "" when it has none. */
static void host_part(const char *h, char *out, size_t n)
{
	size_t len;

	if (*h == '[') {
		h++;
		len = strcspn(h, "]");
	} else {
		len = strcspn(h, ":");
	}
	if (len >= n)
		len = n - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
	out[len] = '\0';
}

/* Whether the Host and Origin the handler was reached with are allowed. */
static bool cross_site_ok(const struct fz *z)
{
	const struct hf_http_raw *raw = z->raw;
	char host[300];
	struct in6_addr a6;
	struct in_addr a4;

	if (raw->host) {
		host_part(raw->host, host, sizeof(host));
		if (inet_pton(AF_INET, host, &a4) != 1 &&
		    inet_pton(AF_INET6, host, &a6) != 1 &&
		    strcmp(host, "localhost") != 0 &&
		    !(z->extra_host && strcmp(host, EXTRA_HOST) == 0))
			return false;
	}
	if (raw->origin) {
		const char *o = raw->origin;

		if (!raw->host)
			return false;
		if (strncasecmp(o, "http://", 7) == 0)
			o += 7;
		else if (strncasecmp(o, "https://", 8) == 0)
			o += 8;
		else
			return false;
		if (strcasecmp(o, raw->host) != 0)
			return false;
	}
	return true;
}

/* The contract a handler relies on; abort() on any breach. */
static void check_req(struct fz *z, const struct hf_http_req *req,
		      unsigned flags, const char *keys, const char *bools)
{
	const char *ct = z->raw->content_type;

	z->calls++;
	if (!req->route || !req->method || !req->path || !req->body ||
	    !req->remote_addr)
		abort();
	if (req->body_len > z->max_body || req->body[req->body_len] != '\0')
		abort();
	if (!cross_site_ok(z))
		abort();
	/* A body came as JSON (GET bodies are never shown). */
	if (req->body_len &&
	    (!ct || strncasecmp(ct + strspn(ct, " \t"), "application/json", 16)))
		abort();
	if (!(flags & HF_ROUTE_PUBLIC)) {
		int r = req->role;

		if (r == HF_ROLE_NONE)
			abort();
		if ((flags & HF_ROUTE_AGENT) &&
		    (r != HF_ROLE_NODE || !req->principal ||
		     strcmp(req->principal, NODE_ID) != 0))
			abort();
		if ((flags & HF_ROUTE_JOIN) && r != HF_ROLE_AGENT &&
		    r != HF_ROLE_ADMIN)
			abort();
		if ((flags & HF_ROUTE_WRITE) && r != HF_ROLE_ADMIN)
			abort();
		if (!(flags & (HF_ROUTE_AGENT | HF_ROUTE_JOIN | HF_ROUTE_WRITE)) &&
		    r != HF_ROLE_READ && r != HF_ROLE_ADMIN)
			abort();
	}
	if ((req->role == HF_ROLE_NODE) != (req->principal != NULL))
		abort();
	for (size_t i = 0; i < req->params.len; i++) {
		const char *v = req->params.items[i].value;

		if (!text_ok(v))
			abort();
		for (const char *c = v; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				abort();
	}
	for (size_t i = 0; i < req->query.len; i++) {
		const char *k = req->query.items[i].key;
		const char *v = req->query.items[i].value;
		size_t n = strlen(k);
		const char *p = keys;
		bool found = false;

		if (!text_ok(k) || !text_ok(v))
			abort();
		while (p && (p = strstr(p, k))) {
			if ((p == keys || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\0'))
				found = true;
			p += n ? n : 1;
		}
		if (!found)
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(req->query.items[j].key, k) == 0)
				abort();
		if (bools && strstr(bools, k) && strcmp(v, "true") &&
		    strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
			abort();
	}
}

static void h_echo(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	json_t *o = json_object(), *p = json_object();

	check_req(ctx, req, 0, "phase step", NULL);
	for (size_t i = 0; i < req->params.len; i++)
		json_object_set_new(p, req->params.items[i].key,
				    json_string(req->params.items[i].value));
	json_object_set_new(o, "params", p);
	json_object_set_new(o, "path", json_string(req->path));
	hf_http_json(resp, 200, o);
}

static void h_write(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	json_t *body;

	check_req(ctx, req, HF_ROUTE_WRITE, "force", "force");
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 201, json_pack("{s:o}", "got", body));
}

static void defer_free(void *arg)
{
	((struct fz *)arg)->defer_frees++;
}

static void h_resume(void *ctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp, void *arg, bool woken)
{
	/* Without a server a deferred answer expires. */
	if (woken || arg != ctx || strcmp(req->body, "") != 0)
		abort();
	hf_http_json(resp, 200, json_object());
}

static void h_agent(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	struct fz *z = ctx;
	json_t *body;

	check_req(ctx, req, HF_ROUTE_AGENT, "wait", NULL);
	if (req->body_len == 0) {
		z->defers++;
		hf_http_defer(req, resp, NULL, 1000, h_resume, z, defer_free);
		return;
	}
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 200, body);
}

static void h_join(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	check_req(ctx, req, HF_ROUTE_JOIN, NULL, NULL);
	hf_http_json(resp, 200, json_object());
}

static void h_rest(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	check_req(ctx, req, HF_ROUTE_PUBLIC, NULL, NULL);
	hf_http_error(resp, HF_ENOTFOUND, "no file '%s'",
		      hf_kvlist_get(&req->params, "rest"));
}

static int s_next(void *arg, struct hf_buf *out)
{
	abort(); /* never run by the dispatcher */
}

static void s_free(void *arg)
{
	((struct fz *)arg)->stream_frees++;
}

static void h_stream(void *ctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct fz *z = ctx;

	check_req(ctx, req, HF_ROUTE_STREAM, "n follow", "follow");
	z->streams++;
	resp->status = 200;
	resp->content_type = "text/event-stream";
	resp->stream = s_next;
	resp->stream_free = s_free;
	resp->stream_arg = z;
}

static void h_lazy(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	check_req(ctx, req, 0, NULL, NULL);
	if (req->query.len) /* a status out of range */
		resp->status = 42;
}

static const struct hf_http_route routes[] = {
	{"GET", "/v1/service/{svc}/plans/{plan}", h_echo, HF_ROUTE_READ, "phase step"},
	{"POST", "/v1/service/{svc}/plans/{plan}/start", h_write, HF_ROUTE_WRITE, "force:bool"},
	{"PUT", "/v1/services/{svc}", h_write, HF_ROUTE_WRITE, "force:bool"},
	{"DELETE", "/v1/services/{svc}", h_write, HF_ROUTE_WRITE, "force:bool"},
	{"POST", "/v1/agent/sync", h_agent, HF_ROUTE_AGENT, "wait"},
	{"POST", "/v1/agent/register", h_join, HF_ROUTE_JOIN, NULL},
	{"GET", "/v1/events", h_stream, HF_ROUTE_STREAM, "n follow:bool"},
	{"GET", "/ui/{rest*}", h_rest, HF_ROUTE_PUBLIC, NULL},
	{"GET", "/v1/lazy", h_lazy, HF_ROUTE_READ, NULL},
	{"GET", "/", h_echo, HF_ROUTE_READ, "phase step"},
};

/* The next '\n'-terminated field of the input, or the rest. */
static char *field(const char **p, const char *end)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl ? nl : end;
	char *s = hf_xstrndup(*p, (size_t)(stop - *p));

	*p = nl ? nl + 1 : end;
	return s;
}

/* True if the token text appears in what the client sent outside its header. */
static bool sent_elsewhere(const struct hf_http_raw *raw, const char *tok)
{
	return strstr(raw->method, tok) || strstr(raw->target, tok) ||
	       (raw->host && strstr(raw->host, tok)) ||
	       (raw->origin && strstr(raw->origin, tok)) ||
	       (raw->content_type && strstr(raw->content_type, tok)) ||
	       memmem(raw->body, raw->body_len, tok, strlen(tok));
}

static void check_resp(const struct hf_http_raw *raw,
		       const struct hf_http_resp *r)
{
	static const char *const secrets[] = {SECRET_ADMIN, SECRET_READ,
					      SECRET_AGENT, SECRET_NODE};
	json_t *j, *e, *m;

	if (r->status < 100 || r->status > 599 || r->resume)
		abort();
	if (r->stream)
		return;
	if (!r->body || strlen(r->body) != r->body_len)
		abort();
	/* Answers never quote the token of the Authorization header. */
	for (size_t i = 0; i < HF_ARRAY_LEN(secrets); i++)
		if (strstr(r->body, secrets[i]) &&
		    !sent_elsewhere(raw, secrets[i]))
			abort();
	if (r->content_type)
		return;
	j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
	if (!j)
		abort();
	if (r->status >= 400) {
		e = json_object_get(j, "error");
		m = json_object_get(j, "message");
		if (!json_is_string(e) || !json_is_string(m) ||
		    json_object_size(j) != 2)
			abort();
	}
	json_decref(j);
}

/* The head check on the raw input: a consistent verdict, no crash. */
static void check_head(const uint8_t *data, size_t size)
{
	size_t head_len = 0, max = size / 2 + 16;
	int status = -1;
	char *msg = NULL;
	int rc = hf_http_head_check((const char *)data, size, max, &head_len,
				    &status, &msg);

	if (rc == 0) {
		if (size >= max || status != 0 || msg || head_len)
			abort();
		return;
	}
	if (head_len == 0 || head_len > size)
		abort();
	if (status != 0 && status != 400 && status != 413 && status != 431)
		abort();
	if ((status != 0) != (msg != NULL))
		abort();
	if (msg && !text_ok(msg))
		abort();
	free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + (size ? 1 : 0);
	const char *end = (const char *)data + size;
	struct hf_kvlist tokens = {0};
	struct hf_strlist hosts = {0};
	struct hf_http_conf conf = {routes, HF_ARRAY_LEN(routes), &tokens, 0, NULL,
				    authenticate, &hosts};
	struct hf_http_raw raw = {0};
	struct hf_http_resp resp;
	struct fz z = {0};
	char *method, *target, *auth, *host, *origin, *ctype, *err = NULL;
	unsigned flags = size ? data[0] : 0;

	check_head(data, size);
	z.max_body = flags & 2 ? 64 : HF_HTTP_MAX_BODY_DEFAULT;
	z.nodes = flags & 4;
	z.extra_host = flags & 8;
	conf.max_body = flags & 2 ? 64 : 0;
	conf.ctx = &z;
	if (flags & 1) {
		hf_kvlist_set(&tokens, SECRET_ADMIN, "admin");
		hf_kvlist_set(&tokens, SECRET_READ, "read");
		hf_kvlist_set(&tokens, SECRET_AGENT, "agent");
	}
	if (z.extra_host)
		hf_strlist_push(&hosts, EXTRA_HOST);
	if (hf_http_conf_check(&conf, &err))
		abort();

	method = field(&p, end);
	target = field(&p, end);
	auth = field(&p, end);
	host = field(&p, end);
	origin = field(&p, end);
	ctype = field(&p, end);
	raw.method = method;
	raw.target = target;
	/* One letter stands for a real token, so the fuzzer finds them. */
	if (strlen(auth) == 1 && strchr("ARGN", auth[0])) {
		char *t = hf_xasprintf("Bearer %s", auth[0] == 'A' ? SECRET_ADMIN
						 : auth[0] == 'R' ? SECRET_READ
						 : auth[0] == 'G' ? SECRET_AGENT
								  : SECRET_NODE);

		free(auth);
		auth = t;
	}
	raw.authorization = *auth ? auth : NULL;
	raw.last_event_id = "7";
	raw.host = *host ? host : NULL;
	raw.origin = *origin ? origin : NULL;
	raw.content_type = *ctype ? ctype : NULL;
	raw.body = p;
	raw.body_len = (size_t)(end - p);
	z.raw = &raw;

	hf_http_dispatch(&conf, &raw, &resp);
	check_resp(&raw, &resp);
	hf_http_resp_release(&resp);
	if (z.stream_frees != z.streams || z.calls > 1 ||
	    z.defer_frees != z.defers)
		abort();

	/* The loopback helper on the same text: no crash, no lookup. */
	(void)hf_http_listen_is_loopback(target);
	{
		char *esc = hf_url_escape(target);

		for (const char *c = esc; *c; c++)
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%",
				    *c))
				abort();
		free(esc);
	}
	free(method);
	free(target);
	free(auth);
	free(host);
	free(origin);
	free(ctype);
	hf_kvlist_release(&tokens);
	hf_strlist_release(&hosts);
	return 0;
}
