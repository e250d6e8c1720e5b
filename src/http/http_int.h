/*
 * http_int.h - what the two halves of the HTTP server layer share: the pure
 * request handling of http.c (routing, auth, checks, the handler call) and
 * the socket glue of http_server.c. Internal to src/api.
 */
#ifndef HF_HTTP_HTTP_INT_H
#define HF_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "http/http.h"

/* One request in flight; owns every string its req points to. */
struct http_call {
	struct hf_http_server *srv; /* NULL under hf_http_dispatch */
	char *target;
	int64_t start_ns; /* hf_mono_ns() when the request arrived */
	const struct hf_http_route *route;
	struct hf_http_req req;
	char *method, *path, *token, *last_event_id, *remote_addr;
	char *principal, *content_type;
	struct hf_buf body;
	unsigned long long body_seen;
	bool begun, too_large, answered;
	int status;
};

/* The call a request belongs to. */
#define HTTP_CALL_OF(r)                                                        \
	((struct http_call *)((char *)(r) - offsetof(struct http_call, req)))

void http_call_init(struct http_call *c, struct hf_http_server *srv,
		    const char *target);
void http_call_release(struct http_call *c);

/*
 * Everything that can be decided from the request line and headers: Host
 * and Origin, the route, auth, parameters and query. Returns true with
 * c->route set when the handler should run once the body is in; false
 * with the answer in resp otherwise. resp is zeroed here.
 */
bool http_call_begin(const struct hf_http_conf *conf, struct http_call *c,
		     const struct hf_http_raw *raw, struct hf_http_resp *resp);

/*
 * The checks of the complete body (its type), then the handler, into resp
 * (zeroed here). A handler that deferred leaves resp->resume set.
 */
void http_call_run(const struct hf_http_conf *conf, struct http_call *c,
		   struct hf_http_resp *resp);

/*
 * Runs a deferred answer's resume callback into resp (zeroed here, keeping
 * nothing of the deferral but what fn/arg say). A callback that defers
 * again leaves resp->resume set.
 */
void http_call_resume(const struct hf_http_conf *conf, struct http_call *c,
		      struct hf_http_resp *resp, hf_http_resume_fn fn,
		      void *arg, bool woken);

/* Makes resp a valid answer: a status in range, a body length. */
void http_resp_finish(struct hf_http_resp *resp);

size_t http_max_body(const struct hf_http_conf *conf);
bool http_method_has_body(const char *method);
void http_answer_413(const struct hf_http_conf *conf, struct hf_http_resp *r);

/*
 * Server side of hf_http_defer (http_server.c): puts the call on q (or on
 * no queue) armed for a wake before its connection is suspended.
 */
void http_server_arm(struct hf_http_server *s, struct http_call *c,
		     struct hf_http_waitq *q);

#endif
