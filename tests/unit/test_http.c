/*
 * test_http.c - the HTTP layer through real sockets: routing with encoded
 * parameters, 404/405, query rules (repeats, booleans), JSON errors, the
 * body limit (also chunked), the auth matrix (configured tokens, a node's
 * own credential), Host/Origin/Content-Type checks, the head check before
 * libmicrohttpd (one clean 400 for a malformed Content-Length), the
 * per-address connection limit and the request deadline, deferred answers
 * (woken, expired, a wake before the suspension, answered at stop) that
 * hold no thread, BLOCKING handlers on workers while others are served,
 * streams (ended by the server, by the client, by a stop), TLS, the
 * metrics hook, and the pure dispatcher on inputs a socket client cannot
 * easily send.
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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http/http.h"
#include "common/err.h"
#include "common/util.h"

/* ---- the test server's handlers ---------------------------------------- */

#define ADMIN_TOK "admintok"
#define NODE_TOK "nodetok-0123456789abcdef0123456789abcdef"

struct tctx {
	atomic_int calls;        /* handler calls, any route */
	atomic_int waiting;      /* deferred polls not answered yet */
	atomic_int blocked;      /* BLOCKING handlers waiting right now */
	atomic_int stream_frees; /* stream_free calls */
	atomic_int streams_live; /* streams started and not freed */
	atomic_int requests;     /* on_request calls */
	atomic_int last_status;  /* status seen by on_request for /metrics */
	atomic_int hook_errors;  /* on_request calls with bad arguments */
	atomic_int defer_frees;  /* deferred answers' arguments freed */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool release;
	char last_route[128];
	struct hf_http_waitq pollq; /* deferred polls wait here */
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
	json_object_set_new(o, "force",
			    json_boolean(hf_http_query_bool(req, "force", false)));
	if (req->principal)
		json_object_set_new(o, "principal", json_string(req->principal));
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
	if (req->body_len == 0) {
		hf_http_json(resp, 200, json_pack("{s:I}", "len", (json_int_t)0));
		return;
	}
	if (hf_http_body_json(req, resp, &body))
		return;
	hf_http_json(resp, 200, json_pack("{s:o, s:I}", "got", body, "len",
					  (json_int_t)req->body_len));
}

static void poll_free(void *arg)
{
	struct tctx *t = arg;

	atomic_fetch_add(&t->defer_frees, 1);
}

static void poll_resume(void *vctx, const struct hf_http_req *req,
			struct hf_http_resp *resp, void *arg, bool woken)
{
	struct tctx *t = vctx;

	atomic_fetch_sub(&t->waiting, 1);
	hf_http_json(resp, 200, json_pack("{s:b, s:b}", "woken", woken,
					  "stopping",
					  hf_http_server_stopping(req->server)));
}

/*
 * A long poll: the answer waits, holding no thread, for a wake of pollq or
 * ?ms (default 10 s). ?early=1 wakes the queue itself before returning,
 * as a change made between "decided to wait" and the suspension.
 */
static void long_poll(void *vctx, const struct hf_http_req *req,
		      struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	const char *ms = hf_kvlist_get(&req->query, "ms");

	atomic_fetch_add(&t->calls, 1);
	atomic_fetch_add(&t->waiting, 1);
	hf_http_defer(req, resp, &t->pollq, ms ? atol(ms) : 10000, poll_resume,
		      t, poll_free);
	if (hf_http_query_bool(req, "early", false))
		hf_http_wake(req->server, &t->pollq);
}

/* A handler that blocks (on a worker: the route is BLOCKING). */
static void blocking(void *vctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct tctx *t = vctx;
	struct timespec until;
	bool released;

	atomic_fetch_add(&t->calls, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&t->lock);
	atomic_fetch_add(&t->blocked, 1);
	while (!t->release)
		if (pthread_cond_timedwait(&t->cond, &t->lock, &until))
			break;
	released = t->release;
	atomic_fetch_sub(&t->blocked, 1);
	pthread_mutex_unlock(&t->lock);
	hf_http_json(resp, 200, json_pack("{s:b}", "released", released));
}

struct tstream {
	struct tctx *t;
	struct hf_http_server **srv;
	int next, limit; /* limit < 0: forever */
	int idle, idled; /* empty calls (heartbeats) before each event */
};

/* Never waits: an empty call makes the layer wait stream_poll_ms. */
static int stream_next(void *arg, struct hf_buf *out)
{
	struct tstream *s = arg;

	if (hf_http_server_stopping(*s->srv))
		return 1;
	if (s->limit >= 0 && s->next >= s->limit)
		return 1;
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
	int port;
	struct hf_kvlist tokens;
	struct hf_strlist hosts;
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
	resp->stream_poll_ms = 20;
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
	{"DELETE", "/v1/services/{svc}", echo, HF_ROUTE_WRITE, "force:bool"},
	{"PUT", "/v1/services/{svc}", body_json, HF_ROUTE_WRITE, NULL},
	{"GET", "/v1/services/{svc}", echo, HF_ROUTE_READ, NULL},
	{"POST", "/v1/agent/sync", echo, HF_ROUTE_AGENT, NULL},
	{"POST", "/v1/agent/register", body_json, HF_ROUTE_JOIN, NULL},
	{"GET", "/v1/poll", long_poll, HF_ROUTE_READ, "ms early:bool"},
	{"GET", "/v1/slow", blocking, HF_ROUTE_READ | HF_ROUTE_BLOCKING, NULL},
	{"GET", "/v1/events", events, HF_ROUTE_READ | HF_ROUTE_STREAM, "n idle"},
	{"GET", "/v1/noanswer", no_answer, HF_ROUTE_READ, NULL},
	{"GET", "/v1/dr/hello", echo, HF_ROUTE_REMOTE, NULL},
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

/* A node's own credential, as the server's callback would know it. */
static int t_auth(void *ctx, const char *token, char **principal)
{
	*principal = NULL;
	if (strcmp(token, NODE_TOK) != 0)
		return HF_ROLE_NONE;
	*principal = hf_xstrdup("n1");
	return HF_ROLE_NODE;
}

static void fx_start(struct fx *f, struct hf_http_opts *o)
{
	char *err = NULL;
	int rc;

	o->listen = o->listen ? o->listen : "127.0.0.1:0";
	o->on_request = on_request;
	if (!hf_kvlist_get(&f->tokens, ADMIN_TOK))
		hf_kvlist_set(&f->tokens, ADMIN_TOK, "admin");
	o->tokens = &f->tokens;
	o->authenticate = t_auth;
	o->hosts = &f->hosts;
	rc = hf_http_start(o, routes, HF_ARRAY_LEN(routes), &f->t, &f->srv,
			   &err);
	if (rc)
		fprintf(stderr, "hf_http_start: %s\n", err);
	assert_int_equal(rc, 0);
	assert_null(err);
	f->port = hf_http_port(f->srv);
	assert_true(f->port > 0);
	snprintf(f->base, sizeof(f->base), "%s://127.0.0.1:%d",
		 o->tls_cert ? "https" : "http", f->port);
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
	/* Every deferred poll was answered, and its argument freed once. */
	assert_int_equal(atomic_load(&f->t.waiting), 0);
	hf_kvlist_release(&f->tokens);
	hf_strlist_release(&f->hosts);
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

/* Polls for up to 10 s. */
static bool wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 1000; i++) {
		if (atomic_load(v) == want)
			return true;
		usleep(10 * 1000);
	}
	return atomic_load(v) == want;
}

static int thread_count(void)
{
	char *text = NULL;
	const char *p;
	int n = -1;

	if (hf_read_file("/proc/self/status", 1 << 16, &text, NULL) == 0 &&
	    (p = strstr(text, "\nThreads:")))
		n = atoi(p + 9);
	free(text);
	return n;
}

/* ---- client helpers ----------------------------------------------------- */

/* No Authorization header at all (NULL means the admin token). */
#define NOTOKEN ""

/* A request through hf_httpc_request; asserts the transfer worked. */
static long req(struct fx *f, const char *method, const char *path,
		const char *token, const char *body, json_t **out)
{
	char *resp = NULL, *err = NULL;
	long status = 0;
	json_error_t e;
	int rc;

	if (!token)
		token = ADMIN_TOK;
	rc = hf_httpc_request(f->base, method, path, *token ? token : NULL,
			      body, 10000, &status, &resp, &err);
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

static bool has_header(const char *const *hdrs, const char *name)
{
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		if (strncasecmp(hdrs[i], name, strlen(name)) == 0 &&
		    hdrs[i][strlen(name)] == ':')
			return true;
	return false;
}

/*
 * hdrs: extra header lines (NULL-terminated; may be NULL). The admin token
 * and a JSON Content-Type for a body are added unless hdrs has its own
 * (an empty "Authorization:" sends none).
 */
static void raw_req(struct fx *f, const char *method, const char *path,
		    const char *const *hdrs, const char *body,
		    size_t body_len, bool chunked, struct raw *out)
{
	CURL *h = curl_easy_init();
	struct curl_slist *list = NULL;
	char *url = hf_xasprintf("%s%s", f->base, path);

	memset(out, 0, sizeof(out[0]));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	for (size_t i = 0; hdrs && hdrs[i]; i++)
		list = curl_slist_append(list, hdrs[i]);
	if (!has_header(hdrs, "Authorization"))
		list = curl_slist_append(list, "Authorization: Bearer " ADMIN_TOK);
	if (body && !has_header(hdrs, "Content-Type"))
		list = curl_slist_append(list, "Content-Type: application/json");
	if (chunked)
		list = curl_slist_append(list, "Transfer-Encoding: chunked");
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		if (!chunked)
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)body_len);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, raw_write);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->headers);
	out->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	curl_slist_free_all(list);
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

/* A plain socket to the server, from a chosen loopback source address. */
static int sock_connect(struct fx *f, const char *src)
{
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)f->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (src) {
		struct sockaddr_in from = {.sin_family = AF_INET};

		assert_int_equal(inet_pton(AF_INET, src, &from.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&from,
				      sizeof(from)), 0);
	}
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	return fd;
}

static void sock_send(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/*
 * Everything the server sends until it closes (or ms pass without a
 * byte): caller frees. *closed says whether it closed.
 */
static char *sock_read_all(int fd, int ms, bool *closed)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_add(&b, "", 0);
	*closed = false;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		char buf[4096];
		ssize_t n;

		if (poll(&p, 1, ms) <= 0)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			*closed = true;
			break;
		}
		hf_buf_add(&b, buf, (size_t)n);
	}
	return hf_buf_detach(&b);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
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
	char *allow, *ctype, *cache, *conn;
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
	conn = raw_header(&r, "Connection");
	assert_string_equal(ctype, "application/json");
	assert_string_equal(cache, "no-store");
	/* One request per connection. */
	assert_string_equal(conn, "close");
	free(allow);
	free(ctype);
	free(cache);
	free(conn);
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
			     "/v1/service/s/plans/deploy?phase=a+b&step=x%2Fy&&",
			     NULL, NULL, &o), 200);
	q = json_object_get(o, "query");
	assert_int_equal(json_array_size(q), 2);
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 0), 0)), "phase");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 0), 1)), "a b");
	assert_string_equal(json_string_value(json_array_get(json_array_get(q, 1), 1)), "x/y");
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

	/* Each key once: a repeat is refused, not read one way or another. */
	assert_int_equal(req(f, "GET", "/v1/service/s/plans/deploy?phase=1&phase=2",
			     NULL, NULL, &o), 400);
	expect_error(o, "bad-request",
		     "query parameter 'phase' is given more than once");
	json_decref(o);
	assert_int_equal(req(f, "GET", "/v1/service/s/plans/deploy?step&step",
			     NULL, NULL, &o), 400);
	json_decref(o);

	/* Booleans are true, false, 1 or 0; nothing else is taken as true. */
	assert_int_equal(req(f, "DELETE", "/v1/services/x?force=maybe", NULL,
			     NULL, &o), 400);
	expect_error(o, "bad-request",
		     "query parameter 'force' is true or false, not 'maybe'");
	json_decref(o);
	assert_int_equal(req(f, "DELETE", "/v1/services/x?force=", NULL, NULL,
			     &o), 400);
	json_decref(o);
	assert_int_equal(req(f, "DELETE", "/v1/services/x?force=true", NULL,
			     NULL, &o), 200);
	assert_true(json_is_true(json_object_get(o, "force")));
	json_decref(o);
	assert_int_equal(req(f, "DELETE", "/v1/services/x?force=0", NULL, NULL,
			     &o), 200);
	assert_true(json_is_false(json_object_get(o, "force")));
	json_decref(o);
	assert_int_equal(req(f, "DELETE", "/v1/services/x", NULL, NULL, &o), 200);
	assert_true(json_is_false(json_object_get(o, "force")));
	json_decref(o);
	assert_int_equal(atomic_load(&f->t.calls), 4);
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
	assert_int_equal(req(f, "PUT", "/v1/services/x", NULL, big, &o), 200);
	assert_int_equal(json_integer_value(json_object_get(o, "len")), 1024);
	json_decref(o);
	calls = atomic_load(&f->t.calls);

	/* One byte over: 413, the handler is not called. */
	big[1023] = ' ';
	big[1024] = '}';
	big[1025] = '\0';
	assert_int_equal(req(f, "PUT", "/v1/services/x", NULL, big, &o), 413);
	expect_error(o, "too-large",
		     "the request body is larger than the limit of 1024 bytes");
	json_decref(o);

	/* Megabytes (sent with Expect: 100-continue by libcurl). */
	memset(big, ' ', 8 * 1024 * 1024);
	big[8 * 1024 * 1024] = '\0';
	assert_int_equal(req(f, "PUT", "/v1/services/x", NULL, big, &o), 413);
	json_decref(o);

	/* Chunked, with no length announced. */
	raw_req(f, "PUT", "/v1/services/x", NULL, "{\"a\": \"", 0, true, &r);
	assert_int_equal(r.status, 400); /* short chunked body: reaches the handler */
	raw_release(&r);
	calls++;
	/* Over the limit: read to its end and answered 413, never cut. */
	memset(big, 'x', 1500);
	big[1500] = '\0';
	raw_req(f, "PUT", "/v1/services/x", NULL, big, 0, true, &r);
	assert_int_equal(r.cc, CURLE_OK);
	assert_int_equal(r.status, 413);
	o = json_loads(hf_buf_str(&r.body), 0, NULL);
	expect_error(o, "too-large", NULL);
	json_decref(o);
	raw_release(&r);
	/* Far over (eight times the old cut-off of twice the limit). */
	memset(big, 'x', 16 * 1024);
	big[16 * 1024] = '\0';
	raw_req(f, "PUT", "/v1/services/x", NULL, big, 0, true, &r);
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
		{"GET", "/v1/services/x", NOTOKEN, 401},
		{"GET", "/v1/services/x", "nope", 401},
		{"GET", "/v1/services/x", "admintok0", 401}, /* a prefix is no token */
		{"GET", "/v1/services/x", "readtok", 200},
		{"GET", "/v1/services/x", "agenttok", 403}, /* join tokens only join */
		{"GET", "/v1/services/x", NODE_TOK, 403},
		{"GET", "/v1/services/x", "admintok", 200},
		/* WRITE route */
		{"DELETE", "/v1/services/x", NOTOKEN, 401},
		{"DELETE", "/v1/services/x", "nope", 401},
		{"DELETE", "/v1/services/x", "readtok", 403},
		{"DELETE", "/v1/services/x", "agenttok", 403},
		{"DELETE", "/v1/services/x", NODE_TOK, 403},
		{"DELETE", "/v1/services/x", "admintok", 200},
		/* AGENT route: a node's own credential only */
		{"POST", "/v1/agent/sync", NOTOKEN, 401},
		{"POST", "/v1/agent/sync", "nope", 401},
		{"POST", "/v1/agent/sync", "readtok", 403},
		{"POST", "/v1/agent/sync", "agenttok", 403},
		{"POST", "/v1/agent/sync", "admintok", 403},
		{"POST", "/v1/agent/sync", NODE_TOK, 200},
		/* JOIN route */
		{"POST", "/v1/agent/register", NOTOKEN, 401},
		{"POST", "/v1/agent/register", "readtok", 403},
		{"POST", "/v1/agent/register", NODE_TOK, 403},
		{"POST", "/v1/agent/register", "agenttok", 200},
		{"POST", "/v1/agent/register", "admintok", 200},
		/* PUBLIC route */
		{"GET", "/metrics", NOTOKEN, 200},
		{"GET", "/metrics", "nope", 200},
		/* Unknown paths do not tell without a token. */
		{"GET", "/nowhere", NOTOKEN, 401},
		{"GET", "/nowhere", "nope", 401},
		{"GET", "/nowhere", "readtok", 404},
		{"POST", "/v1/services/x", NOTOKEN, 401},
		{"POST", "/v1/services/x", "readtok", 405},
	};
	static const int roles[] = {HF_ROLE_READ, HF_ROLE_ADMIN};
	static const char *const names[] = {"readtok", "admintok"};

	hf_kvlist_set(&f->tokens, "admintok", "admin");
	hf_kvlist_set(&f->tokens, "readtok", "read");
	hf_kvlist_set(&f->tokens, "agenttok", "agent");
	fx_start(f, &opts);

	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		const struct auth_case *c = &cases[i];
		char *resp = NULL, *err = NULL;
		long status = 0;
		int rc;

		rc = hf_httpc_request(f->base, c->method, c->path,
				      *c->token ? c->token : NULL,
				      strcmp(c->method, "POST") == 0 ? "{}" : NULL,
				      10000, &status, &resp, &err);
		assert_int_equal(rc, 0);
		if (status != c->want)
			fprintf(stderr, "case %zu: %s %s token %s: got %ld want %ld: %s\n",
				i, c->method, c->path,
				*c->token ? c->token : "(none)", status, c->want,
				resp);
		assert_int_equal(status, c->want);
		/* The token never comes back. */
		if (*c->token)
			assert_null(strstr(resp, c->token));
		if (c->want == 401)
			assert_non_null(strstr(resp, "\"error\":\"unauthorized\""));
		if (c->want == 403)
			assert_non_null(strstr(resp, "\"error\":\"forbidden\""));
		free(resp);
	}

	/* The handler sees the role, and a node's id. */
	for (size_t i = 0; i < HF_ARRAY_LEN(roles); i++) {
		json_t *o;

		assert_int_equal(req(f, "GET", "/v1/services/x", names[i], NULL, &o), 200);
		assert_int_equal(json_integer_value(json_object_get(o, "role")),
				 roles[i]);
		assert_null(json_object_get(o, "principal"));
		json_decref(o);
	}
	{
		json_t *o;

		assert_int_equal(req(f, "POST", "/v1/agent/sync", NODE_TOK, "{}", &o),
				 200);
		assert_int_equal(json_integer_value(json_object_get(o, "role")),
				 HF_ROLE_NODE);
		assert_string_equal(jstr(o, "principal"), "n1");
		json_decref(o);
	}

	/* 401 says how to authenticate. */
	{
		struct raw r;
		char *www;
		static const char *const none[] = {"Authorization:", NULL};
		static const char *const basic[] = {"Authorization: Basic YTpi", NULL};
		static const char *const spaced[] = {
			"Authorization: bearer   readtok  ", NULL};

		raw_req(f, "GET", "/v1/services/x", none, NULL, 0, false, &r);
		assert_int_equal(r.status, 401);
		www = raw_header(&r, "WWW-Authenticate");
		assert_non_null(www);
		assert_true(hf_str_has_prefix(www, "Bearer"));
		free(www);
		raw_release(&r);
		raw_req(f, "GET", "/v1/services/x", basic, NULL, 0, false, &r);
		assert_int_equal(r.status, 401);
		raw_release(&r);
		raw_req(f, "GET", "/v1/services/x", spaced, NULL, 0, false, &r);
		assert_int_equal(r.status, 200);
		raw_release(&r);
	}
}

/* Host, Origin and the body's type: what a web page could send is refused. */
static void test_cross_site(void **state)
{
	struct fx *f = *state;
	struct raw r;
	json_t *o;
	static const char *const evil_host[] = {"Host: evil.example:7070", NULL};
	static const char *const upper_ok[] = {"Host: LOCALHOST:1", NULL};
	static const char *const v6[] = {"Host: [::1]:7070", NULL};
	static const char *const named[] = {"Host: holdfast.example", NULL};
	static const char *const evil_origin[] = {"Origin: http://evil.example",
						  NULL};
	static const char *const null_origin[] = {"Origin: null", NULL};
	static const char *const text[] = {"Content-Type: text/plain", NULL};
	static const char *const form[] = {
		"Content-Type: application/x-www-form-urlencoded", NULL};
	static const char *const json_cs[] = {
		"Content-Type: Application/JSON; charset=utf-8", NULL};
	static const char *const simple[] = {
		"Host: evil.example:7070", "Origin: http://evil.example",
		"Content-Type: text/plain", NULL};
	char same[96];
	const char *same_origin[] = {same, NULL};

	hf_strlist_push(&f->hosts, "holdfast.example");
	start_plain(f);
	/* A name this server was not told about: a rebinding page's. */
	raw_req(f, "GET", "/v1/services/x", evil_host, NULL, 0, false, &r);
	assert_int_equal(r.status, 403);
	o = json_loads(hf_buf_str(&r.body), 0, NULL);
	expect_error(o, "forbidden", NULL);
	assert_non_null(strstr(jstr(o, "message"), "evil.example"));
	json_decref(o);
	raw_release(&r);
	/* IP literals, localhost and configured names pass. */
	raw_req(f, "GET", "/v1/services/x", upper_ok, NULL, 0, false, &r);
	assert_int_equal(r.status, 200);
	raw_release(&r);
	raw_req(f, "GET", "/v1/services/x", v6, NULL, 0, false, &r);
	assert_int_equal(r.status, 200);
	raw_release(&r);
	raw_req(f, "GET", "/v1/services/x", named, NULL, 0, false, &r);
	assert_int_equal(r.status, 200);
	raw_release(&r);
	/* Another site's Origin, or an opaque one: refused. */
	raw_req(f, "GET", "/v1/services/x", evil_origin, NULL, 0, false, &r);
	assert_int_equal(r.status, 403);
	raw_release(&r);
	raw_req(f, "DELETE", "/v1/services/x", null_origin, NULL, 0, false, &r);
	assert_int_equal(r.status, 403);
	raw_release(&r);
	/* Its own origin passes. */
	snprintf(same, sizeof(same), "Origin: http://127.0.0.1:%d", f->port);
	raw_req(f, "DELETE", "/v1/services/x", same_origin, NULL, 0, false, &r);
	assert_int_equal(r.status, 200);
	raw_release(&r);
	/* Bodies a browser may send cross-site without asking: 415. */
	raw_req(f, "PUT", "/v1/services/x", text, "{}", 2, false, &r);
	assert_int_equal(r.status, 415);
	o = json_loads(hf_buf_str(&r.body), 0, NULL);
	expect_error(o, "unsupported-media-type",
		     "the request body must be JSON (Content-Type: "
		     "application/json), not 'text/plain'");
	json_decref(o);
	raw_release(&r);
	raw_req(f, "PUT", "/v1/services/x", form, "a=1", 3, false, &r);
	assert_int_equal(r.status, 415);
	raw_release(&r);
	raw_req(f, "PUT", "/v1/services/x", json_cs, "{}", 2, false, &r);
	assert_int_equal(r.status, 200);
	raw_release(&r);
	/* The review's "simple request", with a valid token even: refused. */
	raw_req(f, "PUT", "/v1/services/x", simple, "{}", 2, false, &r);
	assert_int_equal(r.status, 403);
	raw_release(&r);
	/* A POST without a body needs no type. */
	assert_int_equal(req(f, "POST", "/v1/service/s/plans/p/start", NULL,
			     NULL, &o), 200);
	json_decref(o);
	/* Only the requests that passed reached a handler. */
	assert_int_equal(atomic_load(&f->t.calls), 6);
}

static void test_head_check(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *head;
		int status;
	} cases[] = {
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"\r\nGET / HTTP/1.1\nHost: a\n\n", 0},
		{"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nContent-Length:  12 \r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\ncontent-length: 5\r\nContent-Length: 5\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\n 6\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
		{"POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", 0},
	};
	size_t head_len;
	char *msg, *got;
	bool closed;
	int status, fd;

	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		size_t n = strlen(cases[i].head);

		assert_int_equal(hf_http_head_check(cases[i].head, n, 4096,
						    &head_len, &status, &msg),
				 1);
		if (status != cases[i].status)
			fprintf(stderr, "case %zu: %d\n", i, status);
		assert_int_equal(status, cases[i].status);
		assert_int_equal(head_len, n);
		assert_true((msg != NULL) == (status != 0));
		free(msg);
		/* Without its last byte the head is not complete yet. */
		assert_int_equal(hf_http_head_check(cases[i].head, n - 1, 4096,
						    &head_len, &status, &msg),
				 0);
	}
	/* No end within the limit: 431. */
	assert_int_equal(hf_http_head_check("GET / HTTP/1.1\r\nX: aaaa", 24, 24,
					    &head_len, &status, &msg),
			 1);
	assert_int_equal(status, 431);
	free(msg);

	/*
	 * On the wire: one clean JSON answer (libmicrohttpd 0.9.75 would
	 * send its status line twice).
	 */
	start_plain(f);
	fd = sock_connect(f, NULL);
	sock_send(fd, "POST /v1/services/x HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: -5\r\n\r\nhello");
	got = sock_read_all(fd, 5000, &closed);
	close(fd);
	assert_true(closed);
	assert_int_equal(count_of(got, "HTTP/1.1"), 1);
	assert_true(hf_str_has_prefix(got, "HTTP/1.1 400 "));
	assert_non_null(strstr(got, "\r\n\r\n{\"error\":\"bad-request\",\"message\":"
				    "\"the Content-Length header is not a "
				    "number of bytes\"}\n"));
	free(got);
	fd = sock_connect(f, NULL);
	sock_send(fd, "PUT /v1/services/x HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: 99999999999999999999999\r\n\r\n");
	got = sock_read_all(fd, 5000, &closed);
	close(fd);
	assert_int_equal(count_of(got, "HTTP/1.1"), 1);
	assert_true(hf_str_has_prefix(got, "HTTP/1.1 413 "));
	free(got);
	assert_int_equal(atomic_load(&f->t.calls), 0);
}

/*
 * One client address cannot hold every connection: idle sockets from
 * 127.0.0.2 up to its limit, one more is refused, and others (127.0.0.1)
 * still get answers.
 */
static void test_per_address_limit(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts opts = {.max_per_ip = 4, .max_connections = 16};
	int fds[8];
	char *got;
	bool closed;
	json_t *o;

	fx_start(f, &opts);
	for (int i = 0; i < 4; i++)
		fds[i] = sock_connect(f, "127.0.0.2");
	/* The fifth from the same address: 503, closed. */
	fds[4] = sock_connect(f, "127.0.0.2");
	got = sock_read_all(fds[4], 5000, &closed);
	assert_true(closed);
	assert_true(hf_str_has_prefix(got, "HTTP/1.1 503 "));
	assert_non_null(strstr(got, "this address holds as many connections"));
	free(got);
	close(fds[4]);
	/* Another address is served meanwhile. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
		json_decref(o);
	}
	/* Closing one lets the address in again. */
	close(fds[0]);
	for (int tries = 0;; tries++) {
		fds[0] = sock_connect(f, "127.0.0.2");
		sock_send(fds[0], "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
		got = sock_read_all(fds[0], 5000, &closed);
		close(fds[0]);
		if (hf_str_has_prefix(got, "HTTP/1.1 200 ") || tries == 50) {
			assert_true(hf_str_has_prefix(got, "HTTP/1.1 200 "));
			free(got);
			break;
		}
		free(got);
		usleep(100 * 1000); /* the server may not have seen the close */
	}
	for (int i = 1; i < 4; i++)
		close(fds[i]);
}

/*
 * The request deadline: a head trickled a byte at a time, and a body
 * trickled the same way, are cut however slowly they come; a connection
 * that sends nothing too. Other clients are served meanwhile.
 */
static void test_request_deadline(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts opts = {.request_timeout = 1};
	const char *head = "GET /v1/services/x HTTP/1.1\r\nHost: a\r\n"
			   "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	char *got;
	bool closed = false;
	size_t sent = 0;
	int fd, idle;
	json_t *o;

	fx_start(f, &opts);
	/* A trickled head: cut with a 408 before it is all sent. */
	fd = sock_connect(f, NULL);
	while (sent < strlen(head)) {
		struct pollfd p = {fd, POLLIN, 0};

		if (send(fd, head + sent, 1, MSG_NOSIGNAL) != 1)
			break;
		sent++;
		/* The server answered (and closes): stop trickling. */
		if (poll(&p, 1, 100) > 0)
			break;
	}
	assert_true(sent < strlen(head));
	got = sock_read_all(fd, 10000, &closed);
	close(fd);
	assert_true(closed);
	assert_true(hf_str_has_prefix(got, "HTTP/1.1 408 "));
	free(got);

	/* A body trickled after a complete head: the connection is cut. */
	fd = sock_connect(f, NULL);
	sock_send(fd, "PUT /v1/services/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		      "Authorization: Bearer " ADMIN_TOK "\r\n"
		      "Content-Type: application/json\r\n"
		      "Content-Length: 100\r\n\r\n{");
	closed = false;
	for (int i = 0; i < 100 && !closed; i++) {
		struct pollfd p = {fd, POLLIN, 0};

		if (send(fd, " ", 1, MSG_NOSIGNAL) != 1)
			closed = true;
		else if (poll(&p, 1, 100) > 0)
			closed = true;
	}
	assert_true(closed);
	got = sock_read_all(fd, 10000, &closed);
	close(fd);
	assert_true(closed);
	/* The handler never saw it. */
	assert_null(strstr(got, "\"len\""));
	free(got);

	/* A connection that sends nothing is closed too. */
	fd = sock_connect(f, NULL);
	got = sock_read_all(fd, 10000, &closed);
	assert_true(closed);
	free(got);
	close(fd);

	/* Nothing of this held up anyone else. */
	assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
	json_decref(o);
	idle = atomic_load(&f->t.calls);
	assert_int_equal(idle, 1);
}

static void test_bad_config(void **state)
{
	struct fx *f = *state;
	struct hf_http_server *s = NULL;
	struct hf_http_opts o = {.listen = "127.0.0.1:0"};
	struct hf_kvlist tokens = {0};
	struct hf_strlist hosts = {0};
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
	static const struct hf_http_route two_roles[] = {
		{"GET", "/a", echo, HF_ROUTE_WRITE | HF_ROUTE_PUBLIC, NULL},
	};
	static const struct hf_http_route bad_key[] = {
		{"GET", "/a", echo, 0, "follow:int"},
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
	assert_int_equal(hf_http_start(&o, two_roles, 1, &f->t, &s, &err), HF_EINVAL);
	free(err);
	assert_int_equal(hf_http_start(&o, bad_key, 1, &f->t, &s, &err), HF_EINVAL);
	assert_non_null(strstr(err, "follow:int"));
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
	hf_strlist_push(&hosts, "Upper.Case");
	o.hosts = &hosts;
	assert_int_equal(hf_http_start(&o, routes, 1, &f->t, &s, &err), HF_EINVAL);
	free(err);
	hf_strlist_release(&hosts);
	o.hosts = NULL;

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
	const char *path;
	long status;
	bool woken;
};

static void *poll_thread(void *arg)
{
	struct poller *p = arg;
	json_t *o = NULL;
	char *resp = NULL, *err = NULL;
	int rc;

	rc = hf_httpc_request(p->f->base, "GET", p->path, ADMIN_TOK, NULL,
			      30000, &p->status, &resp, &err);
	if (rc == 0)
		o = json_loads(resp, 0, NULL);
	p->woken = o && json_is_true(json_object_get(o, "woken"));
	json_decref(o);
	free(resp);
	free(err);
	return NULL;
}

/*
 * Deferred answers hold no thread: 200 waiting polls add no thread to the
 * server, others are served meanwhile, one wake answers them all.
 */
static void test_deferred_polls(void **state)
{
	struct fx *f = *state;
	struct poller *p = hf_xcalloc(200, sizeof(*p));
	struct hf_http_opts opts = {.max_per_ip = 512};
	int threads;
	json_t *o;

	fx_start(f, &opts);
	threads = thread_count();
	for (size_t i = 0; i < 200; i++) {
		p[i].f = f;
		p[i].path = "/v1/poll";
		pthread_create(&p[i].th, NULL, poll_thread, &p[i]);
	}
	assert_true(wait_for(&f->t.waiting, 200));
	/* 200 client threads were added here; the server added none. */
	assert_int_equal(thread_count(), threads + 200);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
		json_decref(o);
	}
	assert_int_equal(atomic_load(&f->t.waiting), 200);
	hf_http_wake(f->srv, &f->t.pollq);
	for (size_t i = 0; i < 200; i++) {
		pthread_join(p[i].th, NULL);
		assert_int_equal(p[i].status, 200);
		assert_true(p[i].woken);
	}
	assert_int_equal(atomic_load(&f->t.defer_frees), 200);

	/* The deadline answers one nobody wakes: woken is false. */
	p[0].path = "/v1/poll?ms=200";
	poll_thread(&p[0]);
	assert_int_equal(p[0].status, 200);
	assert_false(p[0].woken);

	/*
	 * A wake between the handler's decision and the suspension is not
	 * lost: with a 60 s deadline the answer still comes, woken.
	 */
	p[0].path = "/v1/poll?ms=60000&early=true";
	poll_thread(&p[0]);
	assert_int_equal(p[0].status, 200);
	assert_true(p[0].woken);

	/* Polls waiting at stop are answered (woken) before it returns. */
	for (size_t i = 0; i < 3; i++) {
		p[i].path = "/v1/poll?ms=60000";
		pthread_create(&p[i].th, NULL, poll_thread, &p[i]);
	}
	assert_true(wait_for(&f->t.waiting, 3));
	hf_http_stop(f->srv);
	f->srv = NULL;
	for (size_t i = 0; i < 3; i++) {
		pthread_join(p[i].th, NULL);
		assert_int_equal(p[i].status, 200);
		assert_true(p[i].woken);
	}
	assert_int_equal(atomic_load(&f->t.defer_frees), 205);
	free(p);
}

struct slow {
	struct fx *f;
	pthread_t th;
	long status;
	bool released;
};

static void *slow_thread(void *arg)
{
	struct slow *p = arg;
	char *resp = NULL, *err = NULL;
	json_t *o = NULL;

	if (hf_httpc_request(p->f->base, "GET", "/v1/slow", ADMIN_TOK, NULL,
			     30000, &p->status, &resp, &err) == 0)
		o = json_loads(resp, 0, NULL);
	p->released = o && json_is_true(json_object_get(o, "released"));
	json_decref(o);
	free(resp);
	free(err);
	return NULL;
}

/* BLOCKING handlers wait on workers; the pool keeps serving. */
static void test_blocking_on_workers(void **state)
{
	struct fx *f = *state;
	struct hf_http_opts opts = {.threads = 1, .workers = 3};
	struct slow s[3];
	json_t *o;

	fx_start(f, &opts);
	for (size_t i = 0; i < HF_ARRAY_LEN(s); i++) {
		s[i].f = f;
		pthread_create(&s[i].th, NULL, slow_thread, &s[i]);
	}
	assert_true(wait_for(&f->t.blocked, 3));
	/* Every worker is taken and the pool has one thread: still served. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
		json_decref(o);
	}
	assert_int_equal(atomic_load(&f->t.blocked), 3);
	pthread_mutex_lock(&f->t.lock);
	f->t.release = true;
	pthread_cond_broadcast(&f->t.cond);
	pthread_mutex_unlock(&f->t.lock);
	for (size_t i = 0; i < HF_ARRAY_LEN(s); i++) {
		pthread_join(s[i].th, NULL);
		assert_int_equal(s[i].status, 200);
		assert_true(s[i].released);
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
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=5", ADMIN_TOK,
					 "41", 0, collect, &c, &status,
					 &err_body, &err), 0);
	assert_int_equal(status, 200);
	assert_null(err_body);
	assert_string_equal(hf_buf_str(&c.got),
			    ": hello\n\ndata: 0\n\ndata: 1\n\ndata: 2\n\n"
			    "data: 3\n\ndata: 4\n\n");
	assert_true(wait_for(&f->t.stream_frees, 1));
	hf_buf_release(&c.got);

	/* Calls that bring nothing (heartbeats) keep the stream going. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=2&idle=75",
					 ADMIN_TOK, NULL, 0, collect, &c,
					 &status, &err_body, &err), 0);
	assert_string_equal(hf_buf_str(&c.got),
			    ": hello\n\ndata: 0\n\ndata: 1\n\n");
	/*
	 * 1.5 s gaps (75 empty calls, 20 ms apart): libcurl wakes up at
	 * least once a second, and the client was asked whether to give up.
	 */
	assert_true(c.idle_calls >= 1);
	assert_true(wait_for(&f->t.stream_frees, 2));
	hf_buf_release(&c.got);

	/* The client goes away mid-stream: the stream is freed, once. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events", ADMIN_TOK, NULL,
					 0, collect, &c, &status, &err_body,
					 &err), 0);
	assert_int_equal(c.chunks, 3);
	assert_true(wait_for(&f->t.stream_frees, 3));
	assert_true(wait_for(&f->t.streams_live, 0));
	usleep(200 * 1000);
	assert_int_equal(atomic_load(&f->t.stream_frees), 3);
	hf_buf_release(&c.got);

	/* Errors of a stream come back as a body, not as chunks. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(hf_httpc_stream(f->base, "/v1/events?bad=1", ADMIN_TOK,
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
		static const char *const lei[] = {"Last-Event-ID: 42", NULL};
		struct raw r;
		json_t *o;

		raw_req(f, "GET", "/v1/services/x", lei, NULL, 0, false, &r);
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

	s->rc = hf_httpc_stream(s->f->base, "/v1/events?idle=10", ADMIN_TOK,
				NULL, 0, collect, &s->c, &s->status, &err_body,
				&err);
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
	struct hf_http_server *s = NULL;
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
	/* A key other users can read is refused. */
	chmod(key, 0644);
	opts.listen = "127.0.0.1:0";
	hf_kvlist_set(&f->tokens, ADMIN_TOK, "admin");
	opts.tokens = &f->tokens;
	assert_int_equal(hf_http_start(&opts, routes, HF_ARRAY_LEN(routes), &f->t,
				       &s, &err),
			 HF_EFORBIDDEN);
	assert_non_null(strstr(err, "chmod 600"));
	free(err);
	err = NULL;
	chmod(key, 0600);
	fx_start(f, &opts);

	/* Verified against the test certificate as CA. */
	hf_httpc_set_tls(cert, false);
	assert_int_equal(req(f, "GET", "/v1/services/x", NULL, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "x");
	json_decref(o);
	assert_int_equal(req(f, "PUT", "/v1/services/x", NULL, "{\"a\":1}", &o), 200);
	json_decref(o);
	{
		struct collector c = {0};
		char *eb = NULL;

		assert_int_equal(hf_httpc_stream(f->base, "/v1/events?n=2",
						 ADMIN_TOK, NULL, 0, collect,
						 &c, &status, &eb, &err),
				 0);
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
	struct hf_http_conf conf = {routes, HF_ARRAY_LEN(routes), &f->tokens, 64,
				    &f->t, t_auth, NULL};
	struct hf_http_raw raw = {.method = method,
				  .target = target,
				  .authorization = auth,
				  .body = body,
				  .body_len = body ? strlen(body) : 0,
				  .content_type =
				      body ? "application/json" : NULL};
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

static void expect_error_with(json_t *o, const char *code, const char *part)
{
	assert_string_equal(jstr(o, "error"), code);
	if (!strstr(jstr(o, "message"), part))
		fail_msg("'%s' does not say '%s'", jstr(o, "message"), part);
}

/* A request over TLS with a client certificate (cn, or refused: why). */
static long dispatch_peer(struct fx *f, const char *method, const char *target,
			  const char *auth, const char *cn, const char *why,
			  json_t **out)
{
	struct hf_http_conf conf = {routes, HF_ARRAY_LEN(routes), &f->tokens, 64,
				    &f->t, t_auth, NULL};
	struct hf_http_raw raw = {.method = method,
				  .target = target,
				  .authorization = auth,
				  .peer_cn = cn,
				  .peer_error = why};
	struct hf_http_resp resp;
	long status;

	hf_http_dispatch(&conf, &raw, &resp);
	status = resp.status;
	*out = json_loadb(resp.body, resp.body_len, 0, NULL);
	assert_non_null(*out);
	hf_http_resp_release(&resp);
	return status;
}

/*
 * A remote cluster: a verified client certificate is role REMOTE, named
 * by its CN, for REMOTE routes only; those take nothing else; a refused
 * certificate is 401 with why; a token goes before a certificate.
 */
static void test_remote_role(void **state)
{
	struct fx *f = *state;
	const char *adm = "Bearer " ADMIN_TOK;
	json_t *o;

	hf_kvlist_set(&f->tokens, ADMIN_TOK, "admin");
	assert_int_equal(dispatch_peer(f, "GET", "/v1/dr/hello", NULL, "site-a",
				       NULL, &o),
			 200);
	assert_string_equal(jstr(o, "principal"), "site-a");
	json_decref(o);
	assert_int_equal(dispatch_peer(f, "GET", "/v1/services/x", NULL, "site-a",
				       NULL, &o),
			 403);
	expect_error_with(o, "forbidden", "needs a read or admin token");
	json_decref(o);
	assert_int_equal(dispatch_peer(f, "POST", "/v1/agent/sync", NULL,
				       "site-a", NULL, &o),
			 403);
	json_decref(o);
	assert_int_equal(dispatch_peer(f, "GET", "/v1/dr/hello", NULL, NULL,
				       "it is not signed by this server's "
				       "--client-ca",
				       &o),
			 401);
	expect_error_with(o, "unauthorized", "the client certificate was "
					     "refused: it is not signed");
	json_decref(o);
	assert_int_equal(dispatch_peer(f, "GET", "/v1/dr/hello", NULL, NULL,
				       NULL, &o),
			 401);
	json_decref(o);
	/* A token, with or without a certificate, is the token's role. */
	assert_int_equal(dispatch_peer(f, "GET", "/v1/dr/hello", adm, "site-a",
				       NULL, &o),
			 403);
	expect_error_with(o, "forbidden", "--client-ca");
	json_decref(o);
	assert_int_equal(dispatch_peer(f, "GET", "/v1/services/x", adm,
				       "site-a", NULL, &o),
			 200);
	json_decref(o);
}

static void test_dispatch(void **state)
{
	struct fx *f = *state;
	const char *adm = "Bearer " ADMIN_TOK;
	char b65[66];
	json_t *o;

	hf_kvlist_set(&f->tokens, ADMIN_TOK, "admin");
	assert_int_equal(dispatch(f, "GET", "http://h:1/v1/services/a?", adm, NULL, &o), 200);
	assert_string_equal(jstr(o, "params.svc"), "a");
	assert_true(json_is_false(json_object_get(o, "has_server")));
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "http://h:1", adm, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "*", adm, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "", adm, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "", "/", adm, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/service/%", adm, NULL, &o), 400);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/service/%4", adm, NULL, &o), 400);
	json_decref(o);
	/* Invalid UTF-8 in the path is quoted safely in the 404. */
	assert_int_equal(dispatch(f, "GET", "/\xff\xfe", adm, NULL, &o), 404);
	expect_error(o, "not-found", "no such endpoint: GET /??");
	json_decref(o);
	assert_int_equal(dispatch(f, "GET\x01", "/", adm, NULL, &o), 405);
	json_decref(o);
	/* The body limit (64 here): 65 bytes. */
	memset(b65, ' ', 65);
	b65[0] = '[';
	b65[64] = ']';
	b65[65] = '\0';
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", adm, b65, &o), 413);
	json_decref(o);
	b65[63] = ']';
	b65[64] = '\0';
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", adm, b65, &o), 200);
	json_decref(o);
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", adm, "[1]", &o), 200);
	json_decref(o);
	/* Tokens, without sockets. */
	hf_kvlist_set(&f->tokens, "tok", "read");
	assert_int_equal(dispatch(f, "PUT", "/v1/services/x", "Bearer tok", "[1]", &o), 403);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearer tok", NULL, &o), 200);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", NULL, NULL, &o), 401);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearer", NULL, &o), 401);
	json_decref(o);
	assert_int_equal(dispatch(f, "GET", "/v1/services/x", "Bearertok", NULL, &o), 401);
	json_decref(o);
	assert_int_equal(dispatch(f, "POST", "/v1/agent/sync", "Bearer " NODE_TOK,
				  "{}", &o), 200);
	assert_string_equal(jstr(o, "principal"), "n1");
	json_decref(o);
	/* Without a server, a deferred answer expires at once. */
	assert_int_equal(dispatch(f, "GET", "/v1/poll", adm, NULL, &o), 200);
	assert_true(json_is_false(json_object_get(o, "woken")));
	json_decref(o);
	assert_int_equal(atomic_load(&f->t.defer_frees), 1);
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
		cmocka_unit_test_setup_teardown(test_remote_role, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cross_site, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_address_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_and_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dual_stack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_polls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocking_on_workers, setup, teardown),
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
