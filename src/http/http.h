/*
 * http.h - the HTTP layer under the API, the agent protocol and the agents'
 * own task API: one route table over libmicrohttpd with bearer-token auth,
 * Host/Origin/Content-Type checks, body and connection limits, JSON errors,
 * deferred answers (long polls) and streamed responses; and a small libcurl
 * client.
 *
 * Server model. A few threads serve every connection, however many there
 * are: holdfast's acceptor thread takes new connections, refuses those over
 * the per-address or total limit (503), reads each request's head before
 * anything else does (a malformed head gets one clean JSON error; over TLS
 * the head is encrypted, and libmicrohttpd reads it first) and enforces
 * the request deadline; libmicrohttpd's epoll thread pool
 * (opts.threads) then reads bodies, runs handlers and writes answers; and a
 * few worker threads (opts.workers) run the handlers of BLOCKING routes.
 * Every answer closes its connection (one request per connection).
 *
 * Handlers therefore run CONCURRENTLY, on several threads at once, and
 * whatever they share through ctx must be locked by them. A handler runs on
 * a pool thread and must not block there beyond a lock or a store write:
 *   - a route whose handler waits on I/O (a proxied request to an agent, a
 *     command run to completion) is flagged HF_ROUTE_BLOCKING: its handler
 *     and its stream callback run on a worker thread instead;
 *   - a handler that waits for an event (the agents' long poll) defers its
 *     answer with hf_http_defer(): the connection is suspended, costing no
 *     thread, until hf_http_wake() or a deadline, and then a resume
 *     callback answers (or defers again);
 *   - a stream callback never waits: with nothing to send it returns, and
 *     the layer calls it again after hf_http_wake() on its wait queue or
 *     after its poll interval.
 *
 * What a handler can rely on when it is called:
 *   - the route matched, the caller's credential allows the route (auth),
 *     and the Host and Origin headers passed the checks below;
 *   - every query key is one of the route's query_keys and appears once; a
 *     key declared "name:bool" has the value true, false, 1 or 0;
 *   - path parameters and query keys and values are percent-decoded, valid
 *     UTF-8 without NUL bytes; path parameters hold no control characters;
 *   - the body is complete (never truncated), at most max_body bytes, and
 *     followed by a NUL byte not counted in body_len; a request of any
 *     method but GET/HEAD with a body came as application/json. GET bodies
 *     are read (up to max_body, else 413) but never shown to the handler.
 *
 * Limits. A Content-Length over max_body is answered 413 before any of the
 * body is read; a chunked body over it is read to its end, dropped and
 * answered 413. The whole request (head and body) must arrive within
 * opts.request_timeout seconds of the connection: a slow or stalled one is
 * cut, however it trickles, and so is a connection that sends nothing. One
 * client address holds at most opts.max_per_ip connections, all together
 * opts.max_connections (a connection counts until its request is answered,
 * a stream until it ends: a long poll waiting counts); more are answered
 * 503 and closed. A response that makes no progress for opts.idle_timeout
 * seconds is cut (SSE handlers send a comment line as heartbeat).
 *
 * Everything else is answered by the layer with a JSON error
 * {"error": code, "message": sentence}: 400 bad-request (malformed head,
 * Content-Length or query, a repeated or non-boolean query value),
 * 401 unauthorized (with WWW-Authenticate: Bearer), 403 forbidden (role,
 * Host or Origin), 404 not-found, 405 method-not-allowed (with Allow),
 * 413 too-large, 415 unsupported-media-type, 431 (head over 32 KiB),
 * 503 unavailable (connection limits, server stopping).
 *
 * Routing. A pattern is a path of '/'-separated segments; a segment is a
 * literal, "{name}" (one non-empty segment) or, last only, "{name*}" (the
 * rest of the path, '/' included, possibly empty). Segments are split on the
 * raw path and decoded afterwards, so "/v1/service/a%2Fb/plans" gives
 * svc = "a/b". Literals compare with the raw segment. The first route in
 * table order that matches path and method wins.
 *
 * Auth. Every route but a PUBLIC one needs a credential: a bearer token
 * from the configured list (roles admin, read, agent) or one the
 * authenticate callback knows (a node's own credential: role NODE, with the
 * node's id in req->principal). No or unknown token -> 401 (also for
 * unknown paths, so that endpoints cannot be probed without a token). READ
 * routes take read or admin; WRITE routes admin; JOIN routes (a new node
 * registering) agent or admin; AGENT routes (the sync protocol) a node
 * credential only; anything else -> 403. Tokens are compared in constant
 * time and never logged or echoed.
 *
 * Cross-site requests. A Host header must name this server: an IP literal,
 * "localhost", or one of opts.hosts (the advertised name, the machine's
 * name); a page on another site that rebinds its DNS name to this address
 * is refused (403). An Origin header, which browsers send on cross-site
 * requests, must be the Host's own origin (403 otherwise). A body of a
 * POST/PUT/DELETE must be application/json (415): a browser cannot send
 * that cross-site without a preflight, which is never granted.
 *
 * Errors: functions that can fail return 0 or a negative HF_E* code
 * (common/err.h) and a sentence in *err (owned by the caller).
 */
#ifndef HF_HTTP_HTTP_H
#define HF_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/util.h"

/* Default request body limit (hf_http_opts.max_body == 0). */
#define HF_HTTP_MAX_BODY_DEFAULT ((size_t)1024 * 1024)

struct hf_http_server;
struct hf_http_resp;

/*
 * A request as a handler sees it. Everything is owned by the layer and valid
 * until the response is done (also in a resume callback); body only until
 * the handler returns (a resume callback sees "").
 */
struct hf_http_req {
	const char *method;        /* "GET", "POST", ... */
	const char *path;          /* decoded path, no query string */
	struct hf_kvlist query;    /* decoded query parameters, in order */
	struct hf_kvlist params;   /* route parameters: "svc" -> value (decoded, may contain '/') */
	const char *body;          /* request body (NUL-terminated), "" if none */
	size_t body_len;
	const char *token;         /* bearer token from "Authorization: Bearer X", or NULL */
	const char *last_event_id; /* "Last-Event-ID" header or NULL */
	const char *remote_addr;   /* "127.0.0.1", "::1"; "" if unknown */
	int role;                  /* HF_ROLE_* after auth */
	const char *route;         /* the matched pattern, e.g. "/v1/service/{svc}/plans" (metrics labels) */
	struct hf_http_server *server; /* NULL under hf_http_dispatch() */
	const char *principal;     /* HF_ROLE_NODE: the node id the credential belongs to; else NULL */
};

/*
 * Where deferred requests and idle streams wait for hf_http_wake(): embed
 * one in the object waited for (a node, the event log), initialised with
 * HF_HTTP_WAITQ_INIT. It is guarded by the server's own lock; it must stay
 * valid while anything may wait on it: hf_http_wake() empties it (before
 * freeing it, wake it with the owner's lock held, so that no handler
 * defers on it again), and hf_http_stop() empties every queue.
 */
struct hf_http_waitq {
	void *head;
};
#define HF_HTTP_WAITQ_INIT {NULL}

/*
 * Answers a deferred request (see hf_http_defer), on a pool thread: woken
 * is true after hf_http_wake() (or when the server stops), false when the
 * deadline passed. It fills resp like a handler, or calls hf_http_defer()
 * again to keep waiting. It must not block either.
 */
typedef void (*hf_http_resume_fn)(void *ctx, const struct hf_http_req *req,
				  struct hf_http_resp *resp, void *arg,
				  bool woken);

/*
 * A response as a handler fills it. The layer zeroes it before the handler
 * runs; a handler that leaves status at 0 yields a 500.
 */
struct hf_http_resp {
	int status;
	char *body;                /* owned (malloc); freed by the layer */
	size_t body_len;
	const char *content_type;  /* default "application/json"; must be a static string */
	struct hf_kvlist headers;  /* extra headers; names and values without CR/LF */
	/*
	 * Streaming (server-sent events, log follow): when stream is set, the
	 * layer first sends body (if any), then calls stream repeatedly; it
	 * appends to *out and returns 0 to continue, 1 to end the response
	 * (after what it appended), <0 on error (the connection is cut; what
	 * it appended is dropped). With nothing to send it returns 0 at once
	 * (it must not wait): the layer calls it again after hf_http_wake()
	 * on stream_waitq (may be NULL) or after stream_poll_ms (0 = 1000),
	 * whichever comes first. On a BLOCKING route it runs on a worker and
	 * may make one bounded blocking call (a request to an agent) each
	 * time. It must return promptly when hf_http_server_stopping() is
	 * true; the layer also ends the response then. stream_free is called
	 * exactly once when the response is done or abandoned (client gone,
	 * server stopping, never sent), on a server thread or in
	 * hf_http_stop().
	 */
	int (*stream)(void *arg, struct hf_buf *out);
	void (*stream_free)(void *arg);
	void *stream_arg;
	struct hf_http_waitq *stream_waitq;
	long stream_poll_ms;
	/* Set by hf_http_defer(); handlers leave them alone. */
	hf_http_resume_fn resume;
	void *resume_arg;
	void (*resume_free)(void *arg);
	long resume_ms;
};

typedef void (*hf_http_handler)(void *ctx, const struct hf_http_req *req,
				struct hf_http_resp *resp);

enum {
	HF_ROUTE_READ = 0,
	HF_ROUTE_WRITE = 1 << 0,  /* needs an admin token */
	HF_ROUTE_AGENT = 1 << 1,  /* the sync protocol: a node credential only */
	HF_ROUTE_PUBLIC = 1 << 2, /* no auth at all (keep /metrics READ) */
	HF_ROUTE_STREAM = 1 << 3, /* documents a streamed response; no behaviour of its own */
	HF_ROUTE_JOIN = 1 << 4,   /* a node registering: agent (join) or admin token */
	HF_ROUTE_BLOCKING = 1 << 5, /* handler and stream run on a worker thread */
	/*
	 * A remote cluster's (disaster recovery): only a client certificate
	 * that opts.client_ca signed may call it (role REMOTE, the
	 * certificate's common name in req->principal), and that role may
	 * call nothing else.
	 */
	HF_ROUTE_REMOTE = 1 << 6,
};

/*
 * Roles. AGENT is the role of the tokens file's "agent" (join) tokens: it
 * may register a new node and nothing else. NODE is one node's own
 * credential, from the authenticate callback.
 */
enum {
	HF_ROLE_NONE, HF_ROLE_READ, HF_ROLE_AGENT, HF_ROLE_ADMIN, HF_ROLE_NODE,
	/* A remote cluster: a client certificate opts.client_ca signed. */
	HF_ROLE_REMOTE,
	/*
	 * From the authenticate callback only: the token is none of the
	 * configured ones and the callback cannot tell whose it is yet (the
	 * nodes' credentials could not be read). Answered 503, not 401, so
	 * an agent retries instead of concluding its credential is wrong.
	 */
	HF_ROLE_UNCHECKED
};

struct hf_http_route {
	const char *method;     /* "GET", "POST", "PUT", "DELETE" */
	const char *pattern;    /* "/v1/service/{svc}/plans/{plan}"; a final "{name*}" takes the rest */
	hf_http_handler fn;
	unsigned flags;         /* HF_ROUTE_* */
	/*
	 * Space-separated allowed keys, each at most once per request; a key
	 * written "follow:bool" only takes true, false, 1 or 0 (read it with
	 * hf_http_query_bool). NULL = none.
	 */
	const char *query_keys;
};

/*
 * Dynamic credentials (a node's own): returns HF_ROLE_NODE with *principal
 * (malloc'd node id) when token belongs to a node, HF_ROLE_UNCHECKED when
 * it cannot tell yet, else HF_ROLE_NONE. Runs
 * on a pool thread for every request whose token is not in the configured
 * list; it must be quick and must not take locks that handlers hold while
 * calling hf_http_defer or hf_http_wake.
 */
typedef int (*hf_http_auth_fn)(void *ctx, const char *token, char **principal);

struct hf_http_opts {
	const char *listen;        /* "127.0.0.1:7070", "[::1]:7070", ":7070" (all, dual stack), "0.0.0.0:0" */
	const char *tls_cert, *tls_key;  /* PEM files; both or neither (the key must be private, see cred.h) */
	/*
	 * PEM file of the CA (or CAs) whose client certificates are remote
	 * clusters (HF_ROUTE_REMOTE); needs TLS. NULL: no client certificate
	 * is asked for.
	 */
	const char *client_ca;
	const struct hf_kvlist *tokens;  /* token -> "admin" | "read" | "agent"; NULL = none */
	hf_http_auth_fn authenticate;    /* may be NULL */
	const struct hf_strlist *hosts;  /* Host names besides IP literals and "localhost"; may be NULL */
	size_t max_body;           /* 0 = HF_HTTP_MAX_BODY_DEFAULT; larger bodies -> 413 */
	unsigned threads;          /* libmicrohttpd's pool; 0 = 4 */
	unsigned workers;          /* threads for BLOCKING routes; 0 = 8 */
	/*
	 * Metrics hook, may be NULL: called once per request the route table
	 * answered, on a server thread after the response was sent (or the
	 * client went away), with the time since the request line arrived.
	 * req->body is gone by then ("").
	 */
	void (*on_request)(void *ctx, const struct hf_http_req *req, int status,
			   double seconds);
	/* libmicrohttpd's own error messages (one line, no newline); NULL = dropped. Any thread. */
	void (*log)(void *ctx, const char *msg);
	unsigned max_connections;  /* 0 = 512 */
	unsigned max_per_ip;       /* connections one client address may hold; 0 = 64, at most a quarter of max_connections */
	unsigned idle_timeout;     /* seconds without traffic before a response is cut; 0 = 120 */
	unsigned request_timeout;  /* seconds for a request's head and body to arrive; 0 = 30 */
};

/*
 * Starts serving routes (borrowed: the table must outlive the server) with
 * ctx passed to every handler. opts, the tokens and hosts lists are copied.
 * Checks the table (patterns, flags, query keys), the tokens (non-empty, no
 * whitespace, known roles) and TLS files before binding. Returns 0 and
 * *out, or HF_EINVAL / HF_EIO / HF_EFORBIDDEN (a TLS key others can read) /
 * HF_EUNSUPPORTED (no TLS in libmicrohttpd) with *err set.
 */
int hf_http_start(const struct hf_http_opts *opts,
		  const struct hf_http_route *routes, size_t nroutes, void *ctx,
		  struct hf_http_server **out, char **err);

/* The bound port (useful after ":0"). */
int hf_http_port(const struct hf_http_server *s);

/*
 * Stops accepting, answers every deferred request (its resume callback
 * runs with woken = true; one that defers again gets 503), ends streams
 * (their callbacks see hf_http_server_stopping()), waits for handlers and
 * BLOCKING work in progress, joins all threads and frees s. Not from a
 * handler. s may be NULL.
 */
void hf_http_stop(struct hf_http_server *s);

/* True once hf_http_stop() began; false for NULL. Any thread. */
bool hf_http_server_stopping(const struct hf_http_server *s);

/*
 * Defers the answer to req: called by a handler (or a resume callback) as
 * its last act instead of answering. The request waits on q (may be NULL:
 * the deadline only) without holding a thread, until hf_http_wake(q), the
 * server stopping, or timeout_ms; then fn(ctx, req, resp, arg, woken)
 * answers. A wake that comes between this call and the handler's return is
 * not lost, so a handler may decide to wait under its own lock, call this,
 * and unlock. arg_free (may be NULL) frees arg once, whatever happens.
 * Under hf_http_dispatch() (no server) fn runs at once with woken = false.
 */
void hf_http_defer(const struct hf_http_req *req, struct hf_http_resp *resp,
		   struct hf_http_waitq *q, long timeout_ms,
		   hf_http_resume_fn fn, void *arg, void (*arg_free)(void *));

/*
 * Wakes every request and stream waiting on q. Any thread, any lock held
 * (it takes only the server's own). s may be NULL (nothing waits then).
 */
void hf_http_wake(struct hf_http_server *s, struct hf_http_waitq *q);

/*
 * True if a listen address only accepts connections from this host:
 * 127.0.0.0/8, ::1, ::ffff:127.x, "localhost". ":port" is not loopback.
 */
bool hf_http_listen_is_loopback(const char *listen);

/* Response helpers for handlers. Each replaces what resp held before. */

/* Steals the reference to body; sends compact JSON + "\n". NULL -> 500. */
void hf_http_json(struct hf_http_resp *r, int status, json_t *body);
/*
 * err is an HF_E* code: status hf_err_http(err), body {"error":
 * hf_err_name(err), "message": ...}. fmt is a printf format (a NULL
 * fmt, which the compiler warns about, means hf_err_msg(err)).
 * Messages are made valid UTF-8 (bad bytes become '?').
 */
void hf_http_error(struct hf_http_resp *r, int err, const char *fmt, ...)
	HF_PRINTF(3, 4);
void hf_http_error_status(struct hf_http_resp *r, int status,
			  const char *code, const char *fmt, ...)
	HF_PRINTF(4, 5);
/* Sets a text/plain body (copied). */
void hf_http_text(struct hf_http_resp *r, int status, const char *content_type,
		  const char *text, size_t len);
/*
 * Parses the body as a JSON object or array (duplicate keys rejected) into
 * *out (a new reference). On failure sets a 400 {"error":"bad-json",
 * "message":"line L col C: ..."} on resp and returns HF_EPARSE. An empty
 * body is an error too: handlers with optional bodies check body_len first.
 */
int hf_http_body_json(const struct hf_http_req *req, struct hf_http_resp *resp,
		      json_t **out);
/* A ":bool" query key's value: dflt when absent. */
bool hf_http_query_bool(const struct hf_http_req *req, const char *key,
			bool dflt);
/* Frees what resp holds, calling stream_free / resume_free if set. */
void hf_http_resp_release(struct hf_http_resp *r);

/*
 * The route table, auth and request checks without sockets: what the server
 * runs for every request, exposed for the fuzzer and tests.
 */
struct hf_http_conf {
	const struct hf_http_route *routes;
	size_t nroutes;
	const struct hf_kvlist *tokens; /* as in hf_http_opts */
	size_t max_body;                /* 0 = HF_HTTP_MAX_BODY_DEFAULT */
	void *ctx;
	hf_http_auth_fn authenticate;   /* as in hf_http_opts */
	const struct hf_strlist *hosts; /* as in hf_http_opts (lower case) */
};

/* A request as it arrived on the wire. Strings may be NULL where noted. */
struct hf_http_raw {
	const char *method;
	const char *target;        /* request-target as sent: "/path?query", not decoded */
	const char *authorization; /* Authorization header or NULL */
	const char *last_event_id; /* Last-Event-ID header or NULL */
	const char *remote_addr;   /* or NULL */
	const char *body;          /* body_len bytes, any content; may be NULL if 0 */
	size_t body_len;
	const char *host;          /* Host header or NULL */
	const char *origin;        /* Origin header or NULL */
	const char *content_type;  /* Content-Type header or NULL */
	/*
	 * A header that decides how the request is read or trusted (Host,
	 * Origin, Authorization, Content-Type, Content-Length) given more
	 * than once, or NULL: such a request is refused with 400, as two
	 * readers could each believe a different one.
	 */
	const char *repeated;
	/*
	 * A client certificate that the client CA signed: its common name;
	 * NULL when none was presented or it did not verify (peer_error then
	 * says why, NULL when none was presented).
	 */
	const char *peer_cn, *peer_error;
};

/*
 * Validates conf (as hf_http_start does). Returns 0 or HF_EINVAL with *err.
 */
int hf_http_conf_check(const struct hf_http_conf *conf, char **err);

/*
 * Answers one request: Host and Origin, routing, auth, query, body limit and
 * type, then the handler (and, for a deferred answer, its resume callback),
 * into resp (zeroed here; release it with hf_http_resp_release()). Calls
 * the handler on this thread. conf must have passed hf_http_conf_check().
 */
void hf_http_dispatch(const struct hf_http_conf *conf,
		      const struct hf_http_raw *raw, struct hf_http_resp *resp);

/*
 * The first check of every plain-HTTP request, made on the bytes of its
 * head before libmicrohttpd reads them: buf holds the first n bytes the
 * client sent. Returns 0 when the head is not complete yet (no empty line
 * within n bytes and n < max_head), or >0 when it is decided: *head_len
 * is the length of the head (up to and including the empty line) and
 * *status is 0 (pass it on) or the status of the error to answer (400
 * a malformed or repeated Content-Length, or one with Transfer-Encoding;
 * 413 a Content-Length beyond 2^63; 431 no end of head within max_head
 * bytes), with *msg (caller frees) saying why. libmicrohttpd 0.9.75 would
 * answer a malformed Content-Length itself, with its status line twice.
 */
int hf_http_head_check(const char *buf, size_t n, size_t max_head,
		       size_t *head_len, int *status, char **msg);

/*
 * The client (libcurl). Thread-safe: every call uses its own handle;
 * libcurl is initialised once. TLS peers are verified against the system
 * CAs, or against the file given to hf_httpc_set_tls().
 *
 * base_url is "http://host:port", "https://host:port" or "host:port"
 * (http); path_and_query starts with '/' and is sent as is (escape
 * parameters with hf_url_escape). token, when not NULL, goes in
 * "Authorization: Bearer". A transfer failure returns HF_EUNAVAIL (could
 * not connect, timeout) or HF_EIO (TLS, protocol) with *err; any HTTP
 * answer returns 0 with *status, whatever the status.
 */

/*
 * Sets the CA file used to verify servers (NULL = system CAs) and whether
 * to skip verification altogether (insecure, for tests and lab setups).
 * Copies ca_file. Any thread; applies to requests started afterwards.
 */
void hf_httpc_set_tls(const char *ca_file, bool insecure);

/*
 * One request. body (NULL = none) is sent as application/json. timeout_ms
 * bounds the whole exchange (0 = none). *resp_body (may be NULL to
 * discard) gets the answer's body, NUL-terminated, owned by the caller;
 * answers over 64 MiB fail with HF_ETOOBIG.
 */
int hf_httpc_request(const char *base_url, const char *method,
		     const char *path_and_query, const char *token,
		     const char *body, long timeout_ms, long *status,
		     char **resp_body, char **err);

/*
 * Like hf_httpc_request with JSON both ways: body (borrowed, may be NULL)
 * is serialised; *out gets the parsed answer (a new reference; json_null()
 * for an empty body) for any status. An answer that is not JSON returns
 * HF_EPARSE, with *status set and a sentence quoting the start of the body
 * in *err.
 */
int hf_httpc_json(const char *base_url, const char *method,
		  const char *path_and_query, const char *token,
		  const json_t *body, long timeout_ms, long *status,
		  json_t **out, char **err);

/*
 * Called with each piece of a streamed body as it arrives; also with len 0
 * about once a second while nothing arrives, so that the caller can give
 * up. Return 0 to go on, non-zero to stop (hf_httpc_stream then returns 0).
 */
typedef int (*hf_httpc_chunk_fn)(void *arg, const char *data, size_t len);

/*
 * A streaming GET (server-sent events, log follow). last_event_id (may be
 * NULL) is sent as Last-Event-ID. connect_timeout_ms bounds connecting
 * (0 = 10 s). With a 2xx answer the body goes to fn piece by piece;
 * otherwise it is collected into *err_body (may be NULL; owned by the
 * caller, NULL for 2xx) and fn is not called with data. Returns 0 when the
 * server ended the stream or fn stopped it, with *status.
 */
int hf_httpc_stream(const char *base_url, const char *path_and_query,
		    const char *token, const char *last_event_id,
		    long connect_timeout_ms, hf_httpc_chunk_fn fn, void *arg,
		    long *status, char **err_body, char **err);

/* Percent-encodes everything but A-Z a-z 0-9 - . _ ~; caller frees. */
char *hf_url_escape(const char *s);

#endif
