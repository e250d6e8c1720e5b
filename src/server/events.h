/*
 * events.h - every state change the server makes, as an event: who did
 * what to which object, the state before and after, and why. Events live
 * in a ring in memory and in an append-only file in the data directory
 * (events.jsonl), so `GET /v1/events` (server-sent events) can resume from
 * a Last-Event-ID across server restarts. Events are observability, not
 * state: nothing is decided from them.
 *
 * hf_event() runs with srv->mu held. The stream handler takes the lock
 * itself. An event reports a decision, so it goes out only once the
 * decision is in the store: the events of an open batch (state.h) are
 * held until its records are written, and dropped with them when the
 * write fails; after a failed write no event is recorded.
 */
#ifndef HF_SERVER_EVENTS_H
#define HF_SERVER_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

struct hf_srv;

struct hf_events;

/* Opens (and reads back) <data>/events.jsonl. Returns NULL on failure. */
struct hf_events *hf_events_open(const char *data_dir);
void hf_events_close(struct hf_events *ev);

/*
 * Records an event. who: "operator", "scheduler", "agent:<node>"; kind:
 * "task", "plan", "service", "pod", "node", "step"; object: its name;
 * before/after/why may be NULL.
 */
void hf_event(struct hf_srv *s, const char *who, const char *service,
	      const char *kind, const char *object, const char *before,
	      const char *after, const char *why);

/*
 * Ends the hold of the events recorded during a batch: records them when
 * keep is true (the batch was written), drops them otherwise. srv->mu held.
 */
void hf_events_release_held(struct hf_srv *s, bool keep);

/*
 * GET /v1/events (SSE; ?follow=false&since=ID&service=NAME&tail=N): tail
 * starts with the last N events (of the service) instead of all.
 */
void hf_events_handler(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp);

/* The id of the newest event (0 when none). */
uint64_t hf_events_last_id(struct hf_events *ev);

#endif
