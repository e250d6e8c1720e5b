/*
 * test_http.c - the HTTP layer through real sockets: routing with encoded
 * parameters, 404/405, query rules, JSON errors, the body limit, the auth
 * matrix, blocking handlers running concurrently, streams (ended by the
 * server, by the client, by a stop), TLS, the metrics hook, and the pure
 * dispatcher on inputs a socket client cannot easily send.
 *
 * Each test starts its own server on 127.0.0.1:0 and stops it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "api/http.h"
#include "common/err.h"
#include "common/util.h"

/* ---- the test server's handlers ---------------------------------------- */

struct tctx {
	atomic_int calls;        /* handler calls, any route */
	atomic_int waiting;      /* long polls blocked right now */
	atomic_int stream_frees; /* stream_free calls */
	atomic_int streams_live; /* streams started and not freed */
	atomic_int requests;     /* on_request calls */
	atomic_int last_status;  /* status seen by on_request for /metrics */
	atomic_int hook_errors;  /* on_request calls with bad arguments */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool release;
	char last_route[128];
};

static void echo(void *vctx, const struct hf_http_req *req,
		 struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	json_t *o = json_object(), *params = json_object(), *q = json_array();

	atomic_fetch_add(&t->calls, 1);
	for (size_t i = 0; i < req->params.len; i++)
		json_object_set_new(params, req->params.items[i].key,
				    json_string(req->params.items[i].value));
	for (size_t i = 0; i < req->query.len; i++)
		json_array_append_new(q, json_pack("[ss]", req->query.items[i].key,
						   req->query.items[i].value));
	json_object_set_new(o, "method", json_string(req->method));
	json_object_set_new(o, "path", json_string(req->path));
	json_object_set_new(o, "route", json_string(req->route));
	json_object_set_new(o, "params", params);
	json_object_set_new(o, "query", q);
	json_object_set_new(o, "body_len", json_integer((json_int_t)req->body_len));
	json_object_set_new(o, "role", json_integer(req->role));
	json_object_set_new(o, "remote", json_string(req->remote_addr));
	json_object_set_new(o, "has_server", json_boolean(req->server != NULL));
	if (req->last_event_id)
		json_object_set_new(o, "last_event_id",
				    json_string(req->last_event_id));
	hf_http_json(resp, 200, o);
}

static void body_json(void *vctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	json_t *body;

	atomic_fetch_add(&t->calls, 1);
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 200, json_pack("{s:o, s:I}", "got", body, "len",
					  (json_int_t)req->body_len));
}

static void long_poll(void *vctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	struct timespec until;
	bool released;

	atomic_fetch_add(&t->calls, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&t->lock);
	atomic_fetch_add(&t->waiting, 1);
	while (!t->release)
		if (pthread_cond_timedwait(&t->cond, &t->lock, &until))
			break;
	released = t->release;
	atomic_fetch_sub(&t->waiting, 1);
	pthread_mutex_unlock(&t->lock);
	hf_http_json(resp, 200, json_pack("{s:b}", "released", released));
}

struct tstream {
	struct tctx *t;
	struct hf_http_server **srv;
	int next, limit; /* limit < 0: forever */
	int idle, idled; /* empty calls (heartbeats) before each event */
};

static int stream_next(void *arg, struct hf_buf *out)
{
	struct tstream *s = arg;

	if (hf_http_server_stopping(*s->srv))
		return 1;
	if (s->limit >= 0 && s->next >= s->limit)
		return 1;
	usleep(20 * 1000);
	if (s->idled < s->idle) {
		s->idled++;
		return 0;
	}
	s->idled = 0;
	hf_buf_addf(out, "data: %d\n\n", s->next++);
	return 0;
}

static void stream_free(void *arg)
{
	struct tstream *s = arg;

	atomic_fetch_add(&s->t->stream_frees, 1);
	atomic_fetch_sub(&s->t->streams_live, 1);
	free(s);
}

/* The test fixture; a global so that stream handlers can see the server. */
struct fx {
	struct tctx t;
	struct hf_http_server *srv;
	char base[64];
	struct hf_kvlist tokens;
};
static struct fx *cur;

static void events(void *vctx, const struct hf_http_req *req,
		   struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	struct tstream *s = hf_xcalloc(1, sizeof(*s));
	const char *n = hf_kvlist_get(&req->query, "n");

	atomic_fetch_add(&t->calls, 1);
	atomic_fetch_add(&t->streams_live, 1);
	s->t = t;
	s->srv = &cur->srv;
	s->limit = n ? atoi(n) : -1;
	n = hf_kvlist_get(&req->query, "idle");
	s->idle = n ? atoi(n) : 0;
	resp->status = 200;
	resp->content_type = "text/event-stream";
	resp->body = hf_xstrdup(": hello\n\n");
	resp->body_len = strlen(resp->body);
	resp->stream = stream_next;
	resp->stream_free = stream_free;
	resp->stream_arg = s;
}

static void metrics(void *vctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	const char text[] = "holdfast_up 1\n";

	atomic_fetch_add(&t->calls, 1);
	hf_http_text(resp, 200, "text/plain; version=0.0.4", text,
		     strlen(text));
}

static void no_answer(void *vctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	struct tctx *t = vctx;

	atomic_fetch_add(&t->calls, 1);
}

static void conflict(void *vctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct tctx *t = vctx;

	atomic_fetch_add(&t->calls, 1);
	hf_http_error(resp, HF_ECONFLICT, "plan %s is already running",
		      hf_kvlist_get(&req->params, "plan"));
}

static const struct hf_http_route routes[] = {
	{"GET", "/v1/service/{svc}/plans", echo, HF_ROUTE_READ, NULL},
	{"GET", "/v1/service/{svc}/plans/{plan}", echo, HF_ROUTE_READ, "phase step"},
	{"POST", "/v1/service/{svc}/plans/{plan}/start", body_json, HF_ROUTE_WRITE, NULL},
	{"POST", "/v1/service/{svc}/plans/{plan}/stop", conflict, HF_ROUTE_WRITE, NULL},
	{"GET", "/v1/files/{rest*}", echo, HF_ROUTE_READ, NULL},
	{"DELETE", "/v1/services/{svc}", echo, HF_ROUTE_WRITE, NULL},
	{"PUT", "/v1/services/{svc}", body_json, HF_ROUTE_WRITE, NULL},
	{"GET", "/v1/services/{svc}", echo, HF_ROUTE_READ, NULL},
	{"POST", "/v1/agent/sync", body_json, HF_ROUTE_AGENT, NULL},
	{"GET", "/v1/agent/poll", long_poll, HF_ROUTE_AGENT, NULL},
	{"GET", "/v1/events", events, HF_ROUTE_READ | HF_ROUTE_STREAM, "n idle"},
	{"GET", "/v1/noanswer", no_answer, HF_ROUTE_READ, NULL},
	{"GET", "/metrics", metrics, HF_ROUTE_PUBLIC, NULL},
	{"GET", "/", echo, HF_ROUTE_READ, NULL},
};

static void on_request(void *vctx, const struct hf_http_req *req, int status,
		       double seconds)
{
	struct tctx *t = vctx;

	/* Not cmocka's asserts: this runs on a server thread. */
	if (!(seconds >= 0 && seconds < 60) || strcmp(req->body, "") != 0)
		atomic_fetch_add(&t->hook_errors, 1);
	atomic_fetch_add(&t->requests, 1);
	if (strcmp(req->path, "/metrics") == 0)
		atomic_store(&t->last_status, status);
	pthread_mutex_lock(&t->lock);
	snprintf(t->last_route, sizeof(t->last_route), "%s",
		 req->route ? req->route : "(none)");
	pthread_mutex_unlock(&t->lock);
}

static void fx_start(struct fx *f, struct hf_http_opts *o)
{
	char *err = NULL;
	int rc;

	o->listen = o->listen ? o->listen : "127.0.0.1:0";
	o->on_request = on_request;
	rc = hf_http_start(o, routes, HF_ARRAY_LEN(routes), &f->t, &f->srv,
			   &err);
	if (rc)
		fprintf(stderr, "hf_http_start: %s\n", err);
	assert_int_equal(rc, 0);
	assert_null(err);
	assert_true(hf_http_port(f->srv) > 0);
	snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d",
		 o->tls_cert ? "https" : "http", hf_http_port(f->srv));
}

static int setup(void **state)
{
	struct fx *f = hf_xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->t.lock, NULL);
	pthread_cond_init(&f->t.cond, NULL);
	cur = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hf_http_stop(f->srv);
	f->srv = NULL;
	/* Every stream that was started has been freed, once. */
	assert_int_equal(atomic_load(&f->t.streams_live), 0);
	assert_int_equal(atomic_load(&f->t.hook_errors), 0);
	hf_kvlist_release(&f->tokens);
	pthread_mutex_destroy(&f->t.lock);
	pthread_cond_destroy(&f->t.cond);
	free(f);
	cur = NULL;
	return 0;
}

static void start_plain(struct fx *f)
{
	struct hf_http_opts o = {0};

	fx_start(f, &o);
}

/* Polls cond for up to 5 s. */
static bool wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 500; i++) {
		if (atomic_load(v) == want)
			return true;
		usleep(10 * 1000);
	}
	return atomic_load(v) == want;
}

/* ---- client helpers ----------------------------------------------------- */

/* A request through hf_httpc_request; asserts the transfer worked. */
static long req(struct fx *f, const char *method, const char *path,
		const char *token, const char *body, json_t **out)
{
	char *resp = NULL, *err = NULL;
	long status = 0;
	json_error_t e;
	int rc;

	rc = hf_httpc_request(f->base, method, path, token, body, 10000,
			      &status, &resp, &err);
	if (rc)
		fprintf(stderr, "%s %s: %s\n", method, path, err);
	assert_int_equal(rc, 0);
	assert_non_null(resp);
	if (out) {
		*out = json_loads(resp, 0, &e);
		if (!*out)
			fprintf(stderr, "not JSON: %s\n", resp);
		assert_non_null(*out);
	}
	free(resp);
	return status;
}

static const char *jstr(const json_t *o, const char *path)
{
	const json_t *v = o;
	char *copy = hf_xstrdup(path), *save = NULL;

	for (char *k = strtok_r(copy, ".", &save); k && v;
	     k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	free(copy);
	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void expect_error(json_t *o, const char *code, const char *msg)
{
	assert_string_equal(jstr(o, "error"), code);
	if (msg)
		assert_string_equal(jstr(o, "message"), msg);
	assert_int_equal(json_object_size(o), 2);
}

/* A raw libcurl exchange, for headers and odd requests. */
struct raw {
	long status;
	struct hf_buf body, headers;
	CURLcode cc;
};

static size_t raw_write(char *p, size_t size, size_t n, void *arg)
{
	hf_buf_add(arg, p, size * n);
	return size * n;
}

static void raw_req(struct fx *f, const char *method, const char *path,
		    const char *header, const char *body, size_t body_len,
		    bool chunked, struct raw *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char *url = hf_xasprintf("%s%s", f->base, path);

	memset(out, 0, sizeof(*out));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (header)
		hdrs = curl_slist_append(hdrs, header);
	if (chunked)
		hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		if (!chunked)
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)body_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, raw_write);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->headers);
	out->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	free(url);
}

/* The value of a response header (last one), or NULL; caller frees. */
static char *raw_header(const struct raw *r, const char *name)
{
	const char *p = hf_buf_str(&r->headers);
	size_t n = strlen(name);
	char *found = NULL;

	while (*p) {
		size_t line = strcspn(p, "\r\n");

		if (line > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;

			while (*v == ' ')
				v++;
			free(found);
			found = hf_xstrndup(v, line - (size_t)(v - p));
		}
		p += line;
		while (*p == '\r' || *p == '\n')
			p++;
	}
	return found;
}

static void raw_release(struct raw *r)
{
	hf_buf_release(&r->body);
	hf_buf_release(&r->headers);
}

/* ---- tests ------------------------------------------------------------- */

static void test_routing(void **state)
{
	struct fx *f = *state;
	json_t *o;

	start_plain(f);
	assert_int_equal(req(f, "GET", "/v1/service/a%2Fb/plans", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "a/b");
	assert_string_equal(jstr(o, "route"), "/v1/service/{svc}/plans");
	assert_string_equal(jstr(o, "path"), "/v1/service/a/b/plans");
	assert_string_equal(jstr(o, "remote"), "127.0.0.1");
	assert_true(json_is_true(json_object_get(o, "has_server")));
	/* No token configured: everything is open, as admin. */
	assert_int_equal(json_integer_value(json_object_get(o, "role")),
			 HF_ROLE_ADMIN);
	json_decref(o);

	assert_int_equal(req(f, "GET", "/v1/service/hello%20world/plans/deploy",
			     NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "hello world");
	assert_string_equal(jstr(o, "params.plan"), "deploy");
	json_decref(o);

	assert_int_equal(req(f, "GET", "/v1/files/a/b%2Fc/d%20e", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.rest"), "a/b/c/d e");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/files/", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.rest"), "");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "route"), "/");
	json_decref(o);

	/* An empty {svc} segment and a trailing slash match nothing. */
	assert_int_equal(req(f, "GET", "/v1/service//plans", NULL, NULL, &o), 404);
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/x/plans/", NULL, NULL, &o), 404);
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/files", NULL, NULL, &o), 404);
	json_decref(o);

	assert_int_equal(req(f, "GET", "/x", NULL, NULL, &o), 404);
	expect_error(o, "not-found", "no such endpoint: GET /x");
	json_decref(o);

	/* Bad encodings and control characters are refused. */
	assert_int_equal(req(f, "GET", "/v1/service/%zz/plans", NULL, NULL, &o), 400);
	expect_error(o, "bad-request", "invalid percent-encoding in the path");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/a%00b/plans", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/a%0Ab/plans", NULL, NULL, &o), 400);
	assert_string_equal(jstr(o, "error"), "bad-request");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/%ff/plans", NULL, NULL, &o), 400);
	json_decref(o);

	/* A handler that sets nothing gives a 500, not a hang. */
	assert_int_equal(req(f, "GET", "/v1/noanswer", NULL, NULL, &o), 500);
	assert_string_equal(jstr(o, "error"), "internal");
	json_decref(o);

	/* hf_http_error maps the error list onto statuses. */
	assert_int_equal(req(f, "POST", "/v1/service/s/plans/deploy/stop", NULL,
			     NULL, &o), 409);
	expect_error(o, "conflict", "plan deploy is already running");
	json_decref(o);
}

static void test_method_not_allowed(void **state)
{
	struct fx *f = *state;
	struct raw r;
	char *allow, *ctype, *cache;
	json_t *o;

	start_plain(f);
	raw_req(f, "POST", "/v1/services/foo", NULL, "{}", 2, false, &r);
	assert_int_equal(r.cc, CURLE_OK);
	assert_int_equal(r.status, 405);
	allow = raw_header(&r, "Allow");
	assert_non_null(allow);
	assert_string_equal(allow, "DELETE, PUT, GET");
	o = json_loads(hf_buf_str(&r.body), 0, NULL);
	assert_non_null(o);
	expect_error(o, "method-not-allowed",
		     "method not allowed: POST /v1/services/foo (allowed: DELETE, PUT, GET)");
	json_decref(o);
	ctype = raw_header(&r, "Content-Type");
	cache = raw_header(&r, "Cache-Control");
	assert_string_equal(ctype, "application/json");
	assert_string_equal(cache, "no-store");
	free(allow);
	free(ctype);
	free(cache);
	raw_release(&r);
	assert_int_equal(atomic_load(&f->t.calls), 0);

	/* Content types a handler sets are kept. */
	raw_req(f, "GET", "/metrics", NULL, NULL, 0, false, &r);
	assert_int_equal(r.status, 200);
	ctype = raw_header(&r, "Content-Type");
	assert_string_equal(ctype, "text/plain; version=0.0.4");
	assert_string_equal(hf_buf_str(&r.body), "holdfast_up 1\n");
	free(ctype);
	raw_release(&r);
}

static void test_query(void **state)
{
	struct fx *f = *state;
	json_t *o, *q;

	start_plain(f);
	assert_int_equal(req(f, "GET",
			     "/v1/service/s/plans/deploy?phase=a+b&step=x%2Fy&&phase=2&step",
			     NULL, NULL, &o), 200);
	q = json_object_get(o, "query");
	assert_int_equal(json_array_size(q), 4);
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 0), 0)), "phase");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 0), 1)), "a b");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 1), 1)), "x/y");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 2), 1)), "2");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 3), 0)), "step");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 3), 1)), "");
	json_decref(o);

	assert_int_equal(req(f, "GET", "/v1/service/s/plans/deploy?phase=1&x=1",
			     NULL, NULL, &o), 400);
	expect_error(o, "bad-request",
		     "unknown query parameter 'x' (allowed: phase, step)");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/s/plans?phase=1", NULL,
			     NULL, &o), 400);
	expect_error(o, "bad-request",
		     "unknown query parameter 'phase' (this endpoint takes none)");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/s/plans/deploy?phase=%zz",
			     NULL, NULL, &o), 400);
	expect_error(o, "bad-request", "invalid percent-encoding in the query string");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/s/plans/deploy?phase=%C0%AF",
			     NULL, NULL, &o), 400);
	expect_error(o, "bad-request", "a query parameter is not valid UTF-8");
	json_decref(o);
	/* An unknown key with invalid UTF-8 is quoted safely. */
	assert_int_equal(req(f, "GET", "/v1/service/s/plans?%E2%82=1", NULL,
			     NULL, &o), 400);
	json_decref(o);
	assert_int_equal(atomic_load(&f->t.calls), 1);
}

static void test_bad_json(void **state)
{
	struct fx *f = *state;
	json_t *o;
	const char *msg;

	start_plain(f);
	assert_int_equal(req(f, "POST", "/v1/service/s/plans/deploy/start",
			     NULL, "{\"A\": 1,\n  \"B\": }", &o), 400);
	assert_string_equal(jstr(o, "error"), "bad-json");
	msg = jstr(o, "message");
	if (!hf_str_has_prefix(msg, "line 2 col 8: "))
		fprintf(stderr, "message: %s\n", msg);
	assert_true(hf_str_has_prefix(msg, "line 2 col 8: "));
	json_decref(o);

	assert_int_equal(req(f, "POST", "/v1/service/s/plans/deploy/start",
			     NULL, "{\"A\": 1, \"A\": 2}", &o), 400);
	assert_string_equal(jstr(o, "error"), "bad-json");
	json_decref(o);
	assert_int_equal(req(f, "POST", "/v1/service/s/plans/deploy/start",
			     NULL, "", &o), 400);
	assert_string_equal(jstr(o, "error"), "bad-json");
	json_decref(o);

	assert_int_equal(req(f, "POST", "/v1/service/s/plans/deploy/start",
			     NULL, "{\"A\": \"\\u00e9\"}", &o), 200);
	assert_string_equal(jstr(o, "got.A"), "\xc3\xa9");
	json_decref(o);
}

static void test_body_limit(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts opts = {.max_body = 1024};
	char *big = hf_xmalloc(8 * 1024 * 1024 + 1);
	json_t *o;
	struct raw r;
	int calls;

	fx_start(f, &opts);
	/* Exactly the limit passes, whole. */
	memset(big, ' ', 1024);
	big[0] = '{';
	big[1023] = '}';
	big[1024] = '\0';
	assert_int_equal(req(f, "POST", "/v1/agent/sync", NULL, big, &o), 200);
	assert_int_equal(json_integer_value(json_object_get(o, "len")), 1024);
	json_decref(o);
	calls = atomic_load(&f->t.calls);

	/* One byte over: 413, the handler is not called. */
	big[1023] = ' ';
	big[1024] = '}';
	big[1025] = '\0';
	assert_int_equal(req(f, "POST", "/v1/agent/sync", NULL, big, &o), 413);
	expect_error(o, "too-large",
		     "the request body is larger than the limit of 1024 bytes");
	json_decref(o);

	/* Megabytes (sent with Expect: 100-continue by libcurl). */
	memset(big, ' ', 8 * 1024 * 1024);
	big[8 * 1024 * 1024] = '\0';
	assert_int_equal(req(f, "POST", "/v1/agent/sync", NULL, big, &o), 413);
	json_decref(o);

	/* Chunked, with no length announced. */
	raw_req(f, "POST", "/v1/agent/sync", NULL, "{\"a\": \"", 0, true, &r);
	assert_int_equal(r.status, 400); /* short chunked body: reaches the handler */
	raw_release(&r);
	calls++;
	memset(big, 'x', 1500);
	big[1500] = '\0';
	raw_req(f, "POST", "/v1/agent/sync", NULL, big, 0, true, &r);
	assert_int_equal(r.cc, CURLE_OK);
	assert_int_equal(r.status, 413);
	raw_release(&r);

	/* A GET body is read but never shown, and bounded too. */
	raw_req(f, "GET", "/v1/services/x", NULL, "{}", 2, false, &r);
	assert_int_equal(r.status, 200);
	o = json_loads(hf_buf_str(&r.body), 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(o, "body_len")), 0);
	json_decref(o);
	raw_release(&r);
	calls++;

	assert_int_equal(atomic_load(&f->t.calls), calls);
	free(big);
}

struct auth_case {
	const char *method, *path, *token;
	long want;
};

static void test_auth(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts opts = {0};
	static const struct auth_case cases[] = {
		/* READ route */
		{"GET", "/v1/services/x", NULL, 401},
		{"GET", "/v1/services/x", "nope", 401},
		{"GET", "/v1/services/x", "admintok0", 401}, /* a prefix is no token */
		{"GET", "/v1/services/x", "readtok", 200},
		{"GET", "/v1/services/x", "agenttok", 200},
		{"GET", "/v1/services/x", "admintok", 200},
		/* WRITE route */
		{"DELETE", "/v1/services/x", NULL, 401},
		{"DELETE", "/v1/services/x", "nope", 401},
		{"DELETE", "/v1/services/x", "readtok", 403},
		{"DELETE", "/v1/services/x", "agenttok", 403},
		{"DELETE", "/v1/services/x", "admintok", 200},
		/* AGENT route */
		{"POST", "/v1/agent/sync", NULL, 401},
		{"POST", "/v1/agent/sync", "nope", 401},
		{"POST", "/v1/agent/sync", "readtok", 403},
		{"POST", "/v1/agent/sync", "agenttok", 200},
		{"POST", "/v1/agent/sync", "admintok", 200},
		/* PUBLIC route */
		{"GET", "/metrics", NULL, 200},
		{"GET", "/metrics", "nope", 200},
		/* Unknown paths do not tell without a token. */
		{"GET", "/nowhere", NULL, 401},
		{"GET", "/nowhere", "nope", 401},
		{"GET", "/nowhere", "readtok", 404},
		{"POST", "/v1/services/x", NULL, 401},
		{"POST", "/v1/services/x", "readtok", 405},
	};
	static const int roles[] = {HF_ROLE_READ, HF_ROLE_AGENT, HF_ROLE_ADMIN};
	static const char *const names[] = {"readtok", "agenttok", "admintok"};

	hf_kvlist_set(&f->tokens, "admintok", "admin");
	hf_kvlist_set(&f->tokens, "readtok", "read");
	hf_kvlist_set(&f->tokens, "agenttok", "agent");
	opts.tokens = &f->tokens;
	fx_start(f, &opts);

	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		const struct auth_case *c = &cases[i];
		char *resp = NULL, *err = NULL;
		long status = 0;
		int rc;

		rc = hf_httpc_request(f->base, c->method, c->path, c->token,
				      strcmp(c->method, "POST") == 0 ? "{}" : NULL,
				      10000, &status, &resp, &err);
		assert_int_equal(rc, 0);
		if (status != c->want)
			fprintf(stderr, "case %zu: %s %s token %s: got %ld want %ld: %s\n",
				i, c->method, c->path,
				c->token ? c->token : "(none)", status, c->want,
				resp);
		assert_int_equal(status, c->want);
		/* The token never comes back. */
		if (c->token)
			assert_null(strstr(resp, c->token));
		if (c->want == 401)
			assert_non_null(strstr(resp, "\"error\":\"unauthorized\""));
		if (c->want == 403)
			assert_non_null(strstr(resp, "\"error\":\"forbidden\""));
		free(resp);
	}

	/* The handler sees the role. */
	for (size_t i = 0; i < HF_ARRAY_LEN(roles); i++) {
		json_t *o;

		assert_int_equal(req(f, "GET", "/v1/services/x", names[i], NULL, &o), 200);
		assert_int_equal(json_integer_value(json_object_get(o, "role")),
				 roles[i]);
		json_decref(o);
	}

	/* 401 says how to authenticate. */
	{
		struct raw r;
		char *www;

		raw_req(f, "GET", "/v1/services/x", NULL, NULL, 0, false, &r);
		assert_int_equal(r.status, 401);
		www = raw_header(&r, "WWW-Authenticate");
		assert_non_null(www);
		assert_true(hf_str_has_prefix(www, "Bearer"));
		free(www);
		raw_release(&r);
		raw_req(f, "GET", "/v1/services/x", "Authorization: Basic YTpi",
			NULL, 0, false, &r);
		assert_int_equal(r.status, 401);
		raw_release(&r);
		raw_req(f, "GET", "/v1/services/x", "Authorization: bearer   readtok  ",
			NULL, 0, false, &r);
		assert_int_equal(r.status, 200);
		raw_release(&r);
	}
}

static void test_bad_config(void **state)
{
	struct fx *f = *state;
	struct hf_http_server *s = NULL;
	struct hf_http_opts o = {.listen = "127.0.0.1:0"};
	struct hf_kvlist tokens = {0};
	static const struct hf_http_route bad_star[] = {
		{"GET", "/a/{rest*}/b", echo, 0, NULL},
	};
	static const struct hf_http_route bad_name[] = {
		{"GET", "/a/{}", echo, 0, NULL},
	};
	static const struct hf_http_route bad_dup[] = {
		{"GET", "/a/{x}/{x}", echo, 0, NULL},
	};
	static const struct hf_http_route bad_flags[] = {
		{"GET", "/a", echo, 1u << 9, NULL},
	};
	static const char *const bad_listen[] = {
		"", "7070", "127.0.0.1", "127.0.0.1:x", "127.0.0.1:70000",
		"::1:7070", "[::1", "not-a-host.invalid:1",
	};
	char *err = NULL;

	assert_int_equal(hf_http_start(&o, bad_star, 1, &f->t, &s, &err), HF_EINVAL);
	assert_non_null(strstr(err, "{rest*}"));
	free(err);
	assert_int_equal(hf_http_start(&o, bad_name, 1, &f->t, &s, &err), HF_EINVAL);
	free(err);
	assert_int_equal(hf_http_start(&o, bad_dup, 1, &f->t, &s, &err), HF_EINVAL);
	free(err);
	assert_int_equal(hf_http_start(&o, bad_flags, 1, &f->t, &s, &err), HF_EINVAL);
	free(err);

	hf_kvlist_set(&tokens, "secret-value", "root");
	o.tokens = &tokens;
	assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EINVAL);
	assert_null(strstr(err, "secret-value"));
	assert_non_null(strstr(err, "root"));
	free(err);
	hf_kvlist_release(&tokens);
	hf_kvlist_set(&tokens, "has space", "admin");
	assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EINVAL);
	assert_null(strstr(err, "has space"));
	free(err);
	hf_kvlist_release(&tokens);
	o.tokens = NULL;

	for (size_t i = 0; i < HF_ARRAY_LEN(bad_listen); i++) {
		o.listen = bad_listen[i];
		assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err),
				 HF_EINVAL);
		assert_null(s);
		free(err);
	}

	o.listen = "127.0.0.1:0";
	o.tls_cert = "/nonexistent/cert.pem";
	assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EINVAL);
	assert_string_equal(err, "TLS needs both a certificate and a key");
	free(err);
	o.tls_key = "/nonexistent/key.pem";
	assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EIO);
	assert_string_equal(err, "cannot read TLS certificate /nonexistent/cert.pem: No such file or directory");
	free(err);

	/* A port in use is a clear error. */
	start_plain(f);
	{
		char *listen = hf_xasprintf("127.0.0.1:%d", hf_http_port(f->srv));

		o.listen = listen;
		o.tls_cert = o.tls_key = NULL;
		assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EIO);
		fprintf(stderr, "(expected) %s\n", err);
		assert_non_null(strstr(err, listen));
		free(err);
		free(listen);
	}
}

static void test_loopback_and_escape(void **state)
{
	static const struct {
		const char *listen;
		bool loop;
	} cases[] = {
		{"127.0.0.1:7070", true}, {"127.1.2.3:1", true},
		{"[::1]:7070", true}, {"localhost:7070", true},
		{"[::ffff:127.0.0.1]:1", true}, {":7070", false},
		{"0.0.0.0:7070", false}, {"[::]:7070", false},
		{"10.0.0.1:7070", false}, {"*:7070", false},
		{"example.com:80", false}, {"garbage", false},
		{"", false}, {NULL, false},
	};
	char *e;

	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		if (hf_http_listen_is_loopback(cases[i].listen) != cases[i].loop)
			fprintf(stderr, "%s\n", cases[i].listen);
		assert_int_equal(hf_http_listen_is_loopback(cases[i].listen),
				 cases[i].loop);
	}
	e = hf_url_escape("a/b c%+~._-\xc3\xa9");
	assert_string_equal(e, "a%2Fb%20c%25%2B~._-%C3%A9");
	free(e);
	e = hf_url_escape("");
	assert_string_equal(e, "");
	free(e);
}

static void test_dual_stack(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts o = {.listen = ":0"};
	json_t *j;

	/* All addresses; an IPv4 client still reads as IPv4. */
	fx_start(f, &o);
	assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &j), 200);
	assert_string_equal(jstr(j, "remote"), "127.0.0.1");
	json_decref(j);
}

struct poller {
	struct fx *f;
	pthread_t th;
	long status;
	bool released;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	json_t *o = NULL;
	char *resp = NULL, *err = NULL;
	int rc;

	rc = hf_httpc_request(p->f->base, "GET", "/v1/agent/poll", NULL, NULL,
			      20000, &p->status, &resp, &err);
	if (rc == 0)
		o = json_loads(resp, 0, NULL);
	p->released = o && json_is_true(json_object_get(o, "released"));
	json_decref(o);
	free(resp);
	free(err);
	return NULL;
}

static void test_concurrent_long_polls(void **state)
{
	struct fx *f = *state;
	struct poller p[8];

	start_plain(f);
	for (size_t i = 0; i < HF_ARRAY_LEN(p); i++) {
		p[i].f = f;
		pthread_create(&p[i].th, NULL, poll_thread, &p[i]);
	}
	assert_true(wait_for(&f->t.waiting, 8));
	/* All eight are blocked in their handlers; others are still served. */
	for (int i = 0; i < 20; i++) {
		json_t *o;

		assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
		json_decref(o);
	}
	assert_int_equal(atomic_load(&f->t.waiting), 8);
	pthread_mutex_lock(&f->t.lock);
	f->t.release = true;
	pthread_cond_broadcast(&f->t.cond);
	pthread_mutex_unlock(&f->t.lock);
	for (size_t i = 0; i < HF_ARRAY_LEN(p); i++) {
		pthread_join(p[i].th, NULL);
		assert_int_equal(p[i].status, 200);
		assert_true(p[i].released);
	}
}

struct collector {
	struct hf_buf got;
	int chunks, stop_after, idle_calls;
};

static int collect(void *arg, const char *data, size_t len)
{
	struct collector *c = arg;

	if (len == 0) {
		c->idle_calls++;
		return 0;
	}
	hf_buf_add(&c->got, data, len);
	c->chunks++;
	return c->stop_after && c->chunks >= c->stop_after;
}

static void test_stream(void **state)
{
	struct fx *f = *state;
	struct collector c = {0};
	char *err = NULL, *err_body = NULL;
	long status = 0;

	start_plain(f);
	/* The server ends the stream after five events. */
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=5", NULL, "41",
					 0, collect, &c, &status, &err_body,
					 &err), 0);
	assert_int_equal(status, 200);
	assert_null(err_body);
	assert_string_equal(hf_buf_str(&c.got),
			    ": hello\n\ndata: 0\n\ndata: 1\n\ndata: 2\n\n"
			    "data: 3\n\ndata: 4\n\n");
	assert_true(wait_for(&f->t.stream_frees, 1));
	hf_buf_release(&c.got);

	/* Calls that bring nothing (heartbeats) keep the stream going. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=2&idle=75", NULL,
					 NULL, 0, collect, &c, &status,
					 &err_body, &err), 0);
	assert_string_equal(hf_buf_str(&c.got),
			    ": hello\n\ndata: 0\n\ndata: 1\n\n");
	/*
	 * 1.5 s gaps: libcurl wakes up at least once a second, and the
	 * client was asked whether to give up.
	 */
	assert_true(c.idle_calls >= 1);
	assert_true(wait_for(&f->t.stream_frees, 2));
	hf_buf_release(&c.got);

	/* The client goes away mid-stream: the stream is freed, once. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events", NULL, NULL, 0,
					 collect, &c, &status, &err_body, &err), 0);
	assert_int_equal(c.chunks, 3);
	assert_true(wait_for(&f->t.stream_frees, 3));
	assert_true(wait_for(&f->t.streams_live, 0));
	usleep(200 * 1000);
	assert_int_equal(atomic_load(&f->t.stream_frees), 3);
	hf_buf_release(&c.got);

	/* Errors of a stream come back as a body, not as chunks. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?bad=1", NULL,
					 NULL, 0, collect, &c, &status,
					 &err_body, &err), 0);
	assert_int_equal(status, 400);
	assert_int_equal(c.chunks, 0);
	assert_non_null(err_body);
	assert_non_null(strstr(err_body, "unknown query parameter 'bad'"));
	free(err_body);
	hf_buf_release(&c.got);

	/* Last-Event-ID reaches the handler. */
	{
		struct raw r;
		json_t *o;

		raw_req(f, "GET", "/v1/services/x", "Last-Event-ID: 42", NULL,
			0, false, &r);
		o = json_loads(hf_buf_str(&r.body), 0, NULL);
		assert_string_equal(jstr(o, "last_event_id"), "42");
		json_decref(o);
		raw_release(&r);
	}
}

struct streamer {
	struct fx *f;
	pthread_t th;
	struct collector c;
	int rc;
	long status;
};

static void *stream_thread(void *arg)
{
	struct streamer *s = arg;
	char *err = NULL, *err_body = NULL;

	s->rc = hf_httpc_stream(s->f->base, "/v1/events", NULL, NULL, 0,
				collect, &s->c, &s->status, &err_body, &err);
	free(err);
	free(err_body);
	return NULL;
}

static void test_stop_ends_streams(void **state)
{
	struct fx *f = *state;
	struct streamer s[3];

	start_plain(f);
	for (size_t i = 0; i < HF_ARRAY_LEN(s); i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].f = f;
		pthread_create(&s[i].th, NULL, stream_thread, &s[i]);
	}
	assert_true(wait_for(&f->t.streams_live, 3));
	usleep(100 * 1000);
	hf_http_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(atomic_load(&f->t.stream_frees), 3);
	assert_int_equal(atomic_load(&f->t.streams_live), 0);
	for (size_t i = 0; i < HF_ARRAY_LEN(s); i++) {
		pthread_join(s[i].th, NULL);
		assert_int_equal(s[i].status, 200);
		assert_true(s[i].c.chunks >= 1);
		hf_buf_release(&s[i].c.got);
	}
}

static void test_on_request(void **state)
{
	struct fx *f = *state;
	json_t *o;

	start_plain(f);
	assert_int_equal(req(f, "GET", "/metrics", NULL, NULL, NULL), 200);
	assert_true(wait_for(&f->t.requests, 1));
	assert_int_equal(atomic_load(&f->t.last_status), 200);
	assert_int_equal(req(f, "GET", "/metrics?x=1", NULL, NULL, &o), 400);
	json_decref(o);
	assert_true(wait_for(&f->t.requests, 2));
	assert_int_equal(atomic_load(&f->t.last_status), 400);
	assert_int_equal(req(f, "GET", "/v1/service/s/plans/p", NULL, NULL, &o), 200);
	json_decref(o);
	assert_true(wait_for(&f->t.requests, 3));
	pthread_mutex_lock(&f->t.lock);
	assert_string_equal(f->t.last_route, "/v1/service/{svc}/plans/{plan}");
	pthread_mutex_unlock(&f->t.lock);
	assert_int_equal(req(f, "GET", "/x", NULL, NULL, &o), 404);
	json_decref(o);
	assert_true(wait_for(&f->t.requests, 4));
	pthread_mutex_lock(&f->t.lock);
	assert_string_equal(f->t.last_route, "(none)");
	pthread_mutex_unlock(&f->t.lock);
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tls(void **state)
{
	struct fx *f = *state;
	char dir[] = "/tmp/hf-http-tls-XXXXXX";
	char *cert, *key, *cmd, *resp = NULL, *err = NULL;
	struct hf_http_opts opts = {0};
	long status = 0;
	json_t *o;

	assert_non_null(mkdtemp(dir));
	cert = hf_xasprintf("%s/cert.pem", dir);
	key = hf_xasprintf("%s/key.pem", dir);
	cmd = hf_xasprintf("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
			   "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
			   "-days 1 -keyout %s -out %s 2>/dev/null",
			   key, cert);
	/* No openssl is a failure of this test, not a skip. */
	if (run(cmd) != 0)
		fail_msg("openssl could not make a test certificate: %s", cmd);
	opts.tls_cert = cert;
	opts.tls_key = key;
	fx_start(f, &opts);

	/* Verified against the test certificate as CA. */
	hf_httpc_set_tls(cert, false);
	assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "x");
	json_decref(o);
	assert_int_equal(req(f, "POST", "/v1/agent/sync", NULL, "{\"a\":1}", &o), 200);
	json_decref(o);
	{
		struct collector c = {0};
		char *eb = NULL;

		assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=2", NULL,
						 NULL, 0, collect, &c, &status,
						 &eb, &err), 0);
		assert_string_equal(hf_buf_str(&c.got),
				    ": hello\n\ndata: 0\n\ndata: 1\n\n");
		hf_buf_release(&c.got);
	}

	/* Without the CA the server is not trusted. */
	hf_httpc_set_tls(NULL, false);
	assert_int_equal(hf_httpc_request(f->base, "GET", "/v1/services/x", NULL,
					  NULL, 10000, &status, &resp, &err),
			 HF_EIO);
	assert_null(resp);
	assert_non_null(err);
	free(err);
	err = NULL;
	/* Plain HTTP to the TLS port gets no answer. */
	{
		char *plain = hf_xasprintf("http://127.0.0.1:%d", hf_http_port(f->srv));

		assert_int_not_equal(hf_httpc_request(plain, "GET", "/v1/services/x",
						      NULL, NULL, 5000, &status,
						      &resp, &err), 0);
		free(err);
		free(plain);
	}

	unlink(cert);
	unlink(key);
	rmdir(dir);
	free(cert);
	free(key);
	free(cmd);
}

/* ---- the pure dispatcher ------------------------------------------------- */

static long dispatch(struct fx *f, const char *method, const char *target,
		     const char *auth, const char *body, json_t **out)
{
	struct hf_http_conf conf = {routes, HF_ARRAY_LEN(routes), &f->tokens, 64, &f->t};
	struct hf_http_raw raw = {method, target, auth, NULL, NULL, body,
				  body ? strlen(body) : 0};
	struct hf_http_resp resp;
	long status;
	char *err = NULL;

	assert_int_equal(hf_http_conf_check(&conf, &err), 0);
	hf_http_dispatch(&conf, &raw, &resp);
	status = resp.status;
	*out = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(*out);
	hf_http_resp_release(&resp);
	return status;
}

static void test_dispatch(void **state)
{
	struct fx *f = *state;
	char b65[66];
	json_t *o;

	assert_int_equal(dispatch(f, "GET", "http://h:1/v1/services/a?", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "a");
	assert_true(json_is_false(json_object_get(o, "has_server")));
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "http://h:1", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "*", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "", "/", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/service/%", NULL, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/service/%4", NULL, NULL, &o), 400);
	json_decref(o);
	/* Invalid UTF-8 in the path is quoted safely in the 404. */
	assert_int_equal(dispatch(f, "GET", "/\xff\xfe", NULL, NULL, &o), 404);
	expect_error(o, "not-found", "no such endpoint: GET /??");
	json_decref(o);
	assert_int_equal(dispatch(f, "GET\x01", "/", NULL, NULL, &o), 405);
	json_decref(o);
	/* The body limit (64 here): 65 bytes. */
	memset(b65, ' ', 65);
	b65[0] = '[';
	b65[64] = ']';
	b65[65] = '\0';
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", NULL, b65, &o), 413);
	json_decref(o);
	b65[63] = ']';
	b65[64] = '\0';
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", NULL, b65, &o), 200);
	json_decref(o);
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", NULL, "[1]", &o), 200);
	json_decref(o);
	/* Tokens, without sockets. */
	hf_kvlist_set(&f->tokens, "tok", "read");
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", "Bearer tok", "[1]", &o), 403);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearer tok", NULL, &o), 200);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearer", NULL, &o), 401);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearertok", NULL, &o), 401);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_and_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_long_polls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_ends_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
	};

	/* The tests talk to 127.0.0.1 directly, whatever the environment says. */
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
