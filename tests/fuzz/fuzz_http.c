/*
 * fuzz_http.c - libFuzzer target for the HTTP layer's request handling
 * without sockets: routing, percent-decoding, query rules, auth, the body
 * limit, JSON bodies and the error answers, all through hf_http_dispatch(),
 * the function the server runs for every request.
 *
 * Input: one flags byte (bit 0: tokens configured, bit 1: a 64-byte body
 * limit), then "METHOD\nTARGET\nAUTHORIZATION\n" and the body. An empty
 * AUTHORIZATION line means no header.
 *
 * Checked for every input: the handler only sees what the contract promises
 * (a route, allowed role, decoded UTF-8 parameters and query without NUL,
 * allowed query keys, a bounded NUL-terminated body), the answer has a valid
 * status, JSON answers parse and errors have {"error", "message"} strings, no
 * token is echoed, and a stream that is never run is freed exactly once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/http.h"
#include "common/err.h"
#include "common/util.h"

#define SECRET_ADMIN "adm-Secret-0001"
#define SECRET_READ "rd-Secret-0002"
#define SECRET_AGENT "ag-Secret-0003"

struct fz {
	size_t max_body;
	bool auth;
	int calls, stream_frees, streams;
};

static bool text_ok(const char *s)
{
	json_t *j = json_string(s); /* NULL unless valid UTF-8 */

	json_decref(j);
	return j != NULL;
}

/* The contract a handler relies on; abort() on any breach. */
static void check_req(struct fz *z, const struct hf_http_req *req,
		      unsigned flags, const char *keys)
{
	z->calls++;
	if (!req->route || !req->method || !req->path || !req->body ||
	    !req->remote_addr)
		abort();
	if (req->body_len > z->max_body || req->body[req->body_len] != '\0')
		abort();
	if (z->auth && !(flags & HF_ROUTE_PUBLIC)) {
		if (req->role == HF_ROLE_NONE)
			abort();
		if ((flags & HF_ROUTE_AGENT) && req->role != HF_ROLE_AGENT &&
		    req->role != HF_ROLE_ADMIN)
			abort();
		if ((flags & HF_ROUTE_WRITE) && !(flags & HF_ROUTE_AGENT) &&
		    req->role != HF_ROLE_ADMIN)
			abort();
	}
	if (!z->auth && req->role != HF_ROLE_ADMIN)
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
		size_t n = strlen(k);
		const char *p = keys;
		bool found = false;

		if (!text_ok(k) || !text_ok(req->query.items[i].value))
			abort();
		while (p && (p = strstr(p, k))) {
			if ((p == keys || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\0'))
				found = true;
			p += n ? n : 1;
		}
		if (!found)
			abort();
	}
}

static void h_echo(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	json_t *o = json_object(), *p = json_object();

	check_req(ctx, req, 0, "phase step");
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

	check_req(ctx, req, HF_ROUTE_WRITE, NULL);
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 201, json_pack("{s:o}", "got", body));
}

static void h_agent(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	json_t *body;

	check_req(ctx, req, HF_ROUTE_AGENT, "wait");
	if (req->body_len == 0) {
		hf_http_json(resp, 200, json_object());
		return;
	}
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 200, body);
}

static void h_rest(void *ctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	check_req(ctx, req, HF_ROUTE_PUBLIC, NULL);
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

	check_req(ctx, req, HF_ROUTE_STREAM, "n");
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
	check_req(ctx, req, 0, NULL);
	if (req->query.len) /* a status out of range */
		resp->status = 42;
}

static const struct hf_http_route routes[] = {
	{"GET", "/v1/service/{svc}/plans/{plan}", h_echo, HF_ROUTE_READ, "phase step"},
	{"POST", "/v1/service/{svc}/plans/{plan}/start", h_write, HF_ROUTE_WRITE, NULL},
	{"PUT", "/v1/services/{svc}", h_write, HF_ROUTE_WRITE, NULL},
	{"DELETE", "/v1/services/{svc}", h_write, HF_ROUTE_WRITE, NULL},
	{"POST", "/v1/agent/sync", h_agent, HF_ROUTE_AGENT, "wait"},
	{"GET", "/v1/events", h_stream, HF_ROUTE_STREAM, "n"},
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
	       memmem(raw->body, raw->body_len, tok, strlen(tok));
}

static void check_resp(const struct hf_http_raw *raw,
		       const struct hf_http_resp *r)
{
	static const char *const secrets[] = {SECRET_ADMIN, SECRET_READ,
					      SECRET_AGENT};
	json_t *j, *e, *m;

	if (r->status < 100 || r->status > 599)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + (size ? 1 : 0);
	const char *end = (const char *)data + size;
	struct hf_kvlist tokens = {0};
	struct hf_http_conf conf = {routes, HF_ARRAY_LEN(routes), &tokens, 0, NULL};
	struct hf_http_raw raw = {0};
	struct hf_http_resp resp;
	struct fz z = {0};
	char *method, *target, *auth, *err = NULL;
	unsigned flags = size ? data[0] : 0;

	z.auth = flags & 1;
	z.max_body = flags & 2 ? 64 : HF_HTTP_MAX_BODY_DEFAULT;
	conf.max_body = flags & 2 ? 64 : 0;
	conf.ctx = &z;
	if (z.auth) {
		hf_kvlist_set(&tokens, SECRET_ADMIN, "admin");
		hf_kvlist_set(&tokens, SECRET_READ, "read");
		hf_kvlist_set(&tokens, SECRET_AGENT, "agent");
	}
	if (hf_http_conf_check(&conf, &err))
		abort();

	method = field(&p, end);
	target = field(&p, end);
	auth = field(&p, end);
	raw.method = method;
	raw.target = target;
	/* "A" / "R" / "G" stand for the real tokens, so the fuzzer finds them. */
	if (strcmp(auth, "A") == 0 || strcmp(auth, "R") == 0 ||
	    strcmp(auth, "G") == 0) {
		char *t = hf_xasprintf("Bearer %s", auth[0] == 'A' ? SECRET_ADMIN
						 : auth[0] == 'R' ? SECRET_READ
								  : SECRET_AGENT);

		free(auth);
		auth = t;
	}
	raw.authorization = *auth ? auth : NULL;
	raw.last_event_id = "7";
	raw.body = p;
	raw.body_len = (size_t)(end - p);

	hf_http_dispatch(&conf, &raw, &resp);
	check_resp(&raw, &resp);
	hf_http_resp_release(&resp);
	if (z.stream_frees != z.streams || z.calls > 1)
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
	hf_kvlist_release(&tokens);
	return 0;
}
