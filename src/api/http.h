/*
 * http.h - the HTTP layer under the API, the agent protocol and the web UI:
 * one route table over libmicrohttpd with bearer-token auth, body limits,
 * JSON errors and streamed responses; and a small libcurl client.
 *
 * Server model. hf_http_start() runs libmicrohttpd with one thread per
 * connection, so a handler may block (the agent long poll waits up to ~10 s
 * on a condition variable) without holding up anyone else. Handlers therefore
 * run CONCURRENTLY, on many threads at once, and whatever they share through
 * ctx must be locked by them. Each request is handled entirely on its
 * connection's thread: the handler, then its stream callback, then
 * stream_free, then on_request.
 *
 * What a handler can rely on when it is called:
 *   - the route matched, and the caller's token allows the route (auth);
 *   - every query key is one of the route's query_keys;
 *   - path parameters and query keys and values are percent-decoded, valid
 *     UTF-8 without NUL bytes; path parameters hold no control characters;
 *   - the body is complete (never truncated), at most max_body bytes, and
 *     followed by a NUL byte not counted in body_len. GET bodies are read
 *     (up to max_body, else 413) but never shown to the handler.
 * Body limit: a Content-Length over max_body is answered 413 before any of
 * the body is read. A chunked body has no announced length: it is read and
 * dropped up to twice max_body and answered 413, and the connection is cut
 * beyond that (libmicrohttpd 0.9.75 cannot answer in the middle of a body).
 * Everything else is answered by the layer with a JSON error
 * {"error": code, "message": sentence}: 400 bad-request, 401 unauthorized
 * (with WWW-Authenticate: Bearer), 403 forbidden, 404 not-found,
 * 405 method-not-allowed (with Allow), 413 too-large. Requests libmicrohttpd
 * itself refuses (a request line or headers over its 32 KiB per-connection
 * memory, malformed HTTP) get its own short answers and never reach the
 * route table nor on_request.
 *
 * Routing. A pattern is a path of '/'-separated segments; a segment is a
 * literal, "{name}" (one non-empty segment) or, last only, "{name*}" (the
 * rest of the path, '/' included, possibly empty). Segments are split on the
 * raw path and decoded afterwards, so "/v1/service/a%2Fb/plans" gives
 * svc = "a/b". Literals compare with the raw segment. The first route in
 * table order that matches path and method wins.
 *
 * Auth. With tokens configured: no or unknown token -> 401 (also for unknown
 * paths, so that endpoints cannot be probed without a token); READ routes
 * take any valid token; WRITE routes need admin (read or agent -> 403);
 * AGENT routes take agent or admin (read -> 403); PUBLIC routes take
 * anything. Tokens are compared in constant time and never logged or echoed.
 * Without tokens every route is open and req->role is HF_ROLE_ADMIN.
 *
 * Errors: functions that can fail return 0 or a negative HF_E* code
 * (common/err.h) and a sentence in *err (owned by the caller).
 */
#ifndef HF_API_HTTP_H
#define HF_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "common/util.h"

/* Default request body limit (hf_http_opts.max_body == 0). */
#define HF_HTTP_MAX_BODY_DEFAULT ((size_t)1024 * 1024)

struct hf_http_server;

/*
 * A request as a handler sees it. Everything is owned by the layer and valid
 * until the handler returns; copy what a stream needs to keep.
 */
struct hf_http_req {
	const char *method;        /* "GET", "POST", ... */
	const char *path;          /* decoded path, no query string */
	struct hf_kvlist query;    /* decoded query parameters, in order, repeats kept */
	struct hf_kvlist params;   /* route parameters: "svc" -> value (decoded, may contain '/') */
	const char *body;          /* request body (NUL-terminated), "" if none */
	size_t body_len;
	const char *token;         /* bearer token from "Authorization: Bearer X", or NULL */
	const char *last_event_id; /* "Last-Event-ID" header or NULL */
	const char *remote_addr;   /* "127.0.0.1", "::1"; "" if unknown */
	int role;                  /* HF_ROLE_* after auth; HF_ROLE_ADMIN when auth is off */
	/* Added: */
	const char *route;         /* the matched pattern, e.g. "/v1/service/{svc}/plans" (metrics labels) */
	struct hf_http_server *server; /* NULL under hf_http_dispatch() */
};

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
	 * layer first sends body (if any), then calls stream repeatedly from the
	 * connection's thread; it appends to *out and returns 0 to continue, 1 to
	 * end the response (after what it appended), <0 on error (the connection
	 * is cut; what it appended is dropped). It may block for up to ~1 s
	 * waiting for data (returning 0 with nothing appended is fine). It must
	 * return promptly when hf_http_server_stopping() is true; the layer also
	 * ends the response then. A stream that sends nothing for 120 s is cut
	 * as idle, so SSE handlers send a comment line as heartbeat.
	 * stream_free is called exactly once when the response is done or
	 * abandoned (client gone, server stopping, never sent), on the
	 * connection's thread or in hf_http_stop().
	 */
	int (*stream)(void *arg, struct hf_buf *out);
	void (*stream_free)(void *arg);
	void *stream_arg;
};

typedef void (*hf_http_handler)(void *ctx, const struct hf_http_req *req,
				struct hf_http_resp *resp);

enum {
	HF_ROUTE_READ = 0,
	HF_ROUTE_WRITE = 1 << 0,  /* needs an admin token */
	HF_ROUTE_AGENT = 1 << 1,  /* agent protocol: agent or admin token */
	HF_ROUTE_PUBLIC = 1 << 2, /* no auth at all (keep /metrics READ) */
	HF_ROUTE_STREAM = 1 << 3, /* documents a streamed response; no behaviour of its own */
};

enum { HF_ROLE_NONE, HF_ROLE_READ, HF_ROLE_AGENT, HF_ROLE_ADMIN };

struct hf_http_route {
	const char *method;     /* "GET", "POST", "PUT", "DELETE" */
	const char *pattern;    /* "/v1/service/{svc}/plans/{plan}"; a final "{name*}" takes the rest */
	hf_http_handler fn;
	unsigned flags;         /* HF_ROUTE_* */
	const char *query_keys; /* space-separated allowed keys, e.g. "phase step"; NULL = none */
};

struct hf_http_opts {
	const char *listen;        /* "127.0.0.1:7070", "[::1]:7070", ":7070" (all, dual stack), "0.0.0.0:0" */
	const char *tls_cert, *tls_key;  /* PEM files; both or neither */
	const struct hf_kvlist *tokens;  /* token -> "admin" | "read" | "agent"; NULL or empty = no auth */
	size_t max_body;           /* 0 = HF_HTTP_MAX_BODY_DEFAULT; larger bodies -> 413 */
	unsigned threads;          /* unused: one thread per connection */
	/*
	 * Metrics hook, may be NULL: called once per request the route table
	 * answered, on the connection's thread after the response was sent (or
	 * the client went away), with the time since the request line arrived.
	 * req->body is gone by then ("").
	 */
	void (*on_request)(void *ctx, const struct hf_http_req *req, int status,
			   double seconds);
	/* Added: */
	/* libmicrohttpd's own error messages (one line, no newline); NULL = dropped. Any thread. */
	void (*log)(void *ctx, const char *msg);
	unsigned max_connections;  /* 0 = 512; each is a thread */
	unsigned idle_timeout;     /* seconds without traffic before a connection is cut; 0 = 120 */
};

/*
 * Starts serving routes (borrowed: the table must outlive the server) with
 * ctx passed to every handler. opts and the tokens list are copied. Checks
 * the table (patterns, flags), the tokens (non-empty, no whitespace, known
 * roles) and TLS files before binding. Returns 0 and *out, or HF_EINVAL /
 * HF_EIO / HF_EUNSUPPORTED (no TLS in libmicrohttpd) with *err set.
 */
int hf_http_start(const struct hf_http_opts *opts,
		  const struct hf_http_route *routes, size_t nroutes, void *ctx,
		  struct hf_http_server **out, char **err);

/* The bound port (useful after ":0"). */
int hf_http_port(const struct hf_http_server *s);

/*
 * Stops accepting, ends streams (their callbacks see
 * hf_http_server_stopping()), waits for running handlers to return, joins all
 * threads and frees s. Not from a handler. s may be NULL. A handler blocked
 * in a long poll holds this up until it returns, so wake such handlers
 * (broadcast their condition) right before calling it.
 */
void hf_http_stop(struct hf_http_server *s);

/* True once hf_http_stop() began; false for NULL. Any thread. */
bool hf_http_server_stopping(const struct hf_http_server *s);

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
/* Frees what resp holds, calling stream_free if a stream was set. */
void hf_http_resp_release(struct hf_http_resp *r);

/*
 * The route table, auth and limits without sockets: what the server runs for
 * every request, exposed for the fuzzer and tests.
 */
struct hf_http_conf {
	const struct hf_http_route *routes;
	size_t nroutes;
	const struct hf_kvlist *tokens; /* as in hf_http_opts */
	size_t max_body;                /* 0 = HF_HTTP_MAX_BODY_DEFAULT */
	void *ctx;
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
};

/*
 * Validates conf (as hf_http_start does). Returns 0 or HF_EINVAL with *err.
 */
int hf_http_conf_check(const struct hf_http_conf *conf, char **err);

/*
 * Answers one request: routing, auth, query, body limit, then the handler,
 * into resp (zeroed here; release it with hf_http_resp_release()). Calls the
 * handler on this thread. conf must have passed hf_http_conf_check().
 */
void hf_http_dispatch(const struct hf_http_conf *conf,
		      const struct hf_http_raw *raw, struct hf_http_resp *resp);

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
