/*
 * events.c - the event ring, its file, and the server-sent events stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "server/events.h"
#include "server/state.h"

#define RING_CAP 10000
#define FILE_MAX (16L << 20)
#define HEARTBEAT_S 15

struct hf_events {
	char *path;
	FILE *f;
	json_t **ring; /* RING_CAP slots, oldest at head */
	size_t head, len;
	uint64_t next_id;
	long file_size;
	struct hf_http_waitq waitq; /* idle streams wait here */
};

static void ring_push(struct hf_events *ev, json_t *e)
{
	if (ev->len == RING_CAP) {
		json_decref(ev->ring[ev->head]);
		ev->ring[ev->head] = e;
		ev->head = (ev->head + 1) % RING_CAP;
	} else {
		ev->ring[(ev->head + ev->len) % RING_CAP] = e;
		ev->len++;
	}
}

static json_t *ring_at(const struct hf_events *ev, size_t i)
{
	return ev->ring[(ev->head + i) % RING_CAP];
}

static uint64_t event_id(const json_t *e)
{
	return (uint64_t)json_integer_value(json_object_get(e, "id"));
}

struct hf_events *hf_events_open(const char *data_dir)
{
	struct hf_events *ev = hf_xcalloc(1, sizeof(*ev));
	char *line = NULL;
	size_t cap = 0;
	FILE *r;

	ev->path = hf_xasprintf("%s/events.jsonl", data_dir);
	ev->ring = hf_xcalloc(RING_CAP, sizeof(*ev->ring));
	ev->next_id = 1;
	r = fopen(ev->path, "re");
	if (r) {
		while (getline(&line, &cap, r) > 0) {
			json_error_t jerr;
			json_t *e = json_loads(line, 0, &jerr);

			/* A torn last line after a crash is skipped. */
			if (!json_is_object(e) || !event_id(e)) {
				json_decref(e);
				continue;
			}
			if (event_id(e) >= ev->next_id)
				ev->next_id = event_id(e) + 1;
			ring_push(ev, e);
		}
		ev->file_size = ftell(r);
		fclose(r);
	}
	free(line);
	ev->f = fopen(ev->path, "ae");
	if (!ev->f) {
		hf_log("cannot open %s: %s; events are kept in memory only",
		       ev->path, strerror(errno));
	}
	return ev;
}

void hf_events_close(struct hf_events *ev)
{
	if (!ev)
		return;
	if (ev->f)
		fclose(ev->f);
	for (size_t i = 0; i < ev->len; i++)
		json_decref(ring_at(ev, i));
	free(ev->ring);
	free(ev->path);
	free(ev);
}

uint64_t hf_events_last_id(struct hf_events *ev)
{
	return ev && ev->next_id > 1 ? ev->next_id - 1 : 0;
}

/* Rewrites the file with the ring's content when it grew too big. */
static void compact(struct hf_events *ev)
{
	char *tmp = hf_xasprintf("%s.new", ev->path);
	FILE *w = fopen(tmp, "we");
	long size = 0;

	if (!w) {
		free(tmp);
		return;
	}
	for (size_t i = 0; i < ev->len; i++) {
		char *s = json_dumps(ring_at(ev, i), JSON_COMPACT);

		if (s) {
			size += fprintf(w, "%s\n", s);
			free(s);
		}
	}
	if (fclose(w) == 0 && rename(tmp, ev->path) == 0) {
		if (ev->f)
			fclose(ev->f);
		ev->f = fopen(ev->path, "ae");
		ev->file_size = size;
	}
	free(tmp);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Gives an event its id and records it: ring, file, waiting streams. */
static void emit(struct hf_srv *s, json_t *e)
{
	struct hf_events *ev = s->events;
	char *text;

	json_object_set_new(e, "id", json_integer((json_int_t)ev->next_id++));
	text = json_dumps(e, JSON_COMPACT);
	if (ev->f && text) {
		ev->file_size += fprintf(ev->f, "%s\n", text);
		fflush(ev->f);
	}
	free(text);
	ring_push(ev, e);
	if (ev->file_size > FILE_MAX)
		compact(ev);
	pthread_cond_broadcast(&s->changed);
	hf_http_wake(s->http, &ev->waitq);
}

void hf_event(struct hf_srv *s, const char *who, const char *service,
	      const char *kind, const char *object, const char *before,
	      const char *after, const char *why)
{
	struct hf_events *ev = s->events;
	int64_t now = hf_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	char when[40];
	json_t *e;

	if (!ev || s->store_failed)
		return;
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%03dZ",
		 (int)(now % 1000));
	/* "id" first; emit() sets it. */
	e = json_pack("{s:n, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "id",
		      "time", when, "who", str_or_null(who), "service",
		      str_or_null(service), "kind", kind, "object",
		      str_or_null(object), "before", str_or_null(before),
		      "after", str_or_null(after), "why", str_or_null(why));
	if (s->batching) {
		*HF_VEC_PUSH(&s->held_events) = e;
		return;
	}
	emit(s, e);
}

void hf_events_release_held(struct hf_srv *s, bool keep)
{
	for (size_t i = 0; i < s->held_events.len; i++) {
		if (keep && s->events)
			emit(s, s->held_events.items[i]);
		else
			json_decref(s->held_events.items[i]);
	}
	s->held_events.len = 0;
}

/* ------------------------------------------------------------------ */
/* The stream                                                           */

struct stream {
	struct hf_srv *srv;
	const struct hf_http_server *http;
	uint64_t since;
	char *service;
	bool follow;
	int64_t last_sent; /* hf_mono_ms() */
};

static void stream_free(void *arg)
{
	struct stream *st = arg;

	free(st->service);
	free(st);
}

/* Appends events after st->since; returns how many. Lock held. */
static size_t collect(struct stream *st, struct hf_buf *out)
{
	struct hf_events *ev = st->srv->events;
	size_t n = 0, start = ev ? ev->len : 0;

	/*
	 * Ids grow along the ring (emit() numbers them in order, and the
	 * file is read back in order): the new ones are at its end, found
	 * from there, so a follower woken at every event costs the events
	 * it gets, not the whole ring.
	 */
	while (start > 0 && event_id(ring_at(ev, start - 1)) > st->since)
		start--;
	for (size_t i = start; ev && i < ev->len; i++) {
		json_t *e = ring_at(ev, i);
		uint64_t id = event_id(e);
		const char *svc;
		char *text;

		if (id <= st->since)
			continue;
		st->since = id;
		svc = json_string_value(json_object_get(e, "service"));
		if (st->service && (!svc || strcmp(svc, st->service) != 0))
			continue;
		text = json_dumps(e, JSON_COMPACT);
		hf_buf_addf(out, "id: %llu\nevent: %s\ndata: %s\n\n",
			    (unsigned long long)id,
			    json_string_value(json_object_get(e, "kind")),
			    text ? text : "{}");
		free(text);
		n++;
	}
	return n;
}

/*
 * Never waits: with nothing new it returns, and the HTTP layer calls again
 * when hf_event() wakes the stream (or after the heartbeat interval).
 */
static int stream_next(void *arg, struct hf_buf *out)
{
	struct stream *st = arg;
	struct hf_srv *s = st->srv;
	size_t n;

	if (hf_http_server_stopping(st->http))
		return 1;
	pthread_mutex_lock(&s->mu);
	n = collect(st, out);
	pthread_mutex_unlock(&s->mu);
	if (n)
		st->last_sent = hf_mono_ms();
	if (!st->follow)
		return 1;
	if (!n && hf_mono_ms() - st->last_sent >= HEARTBEAT_S * 1000) {
		hf_buf_adds(out, ": keepalive\n\n");
		st->last_sent = hf_mono_ms();
	}
	return 0;
}

/*
 * The id after which the last n events (of service, when set) begin: the
 * stream then starts with them. Lock held.
 */
static uint64_t tail_start(struct hf_events *ev, const char *service,
			   unsigned long long n)
{
	unsigned long long seen = 0;

	if (!ev || !ev->len)
		return 0;
	if (n == 0)
		return event_id(ring_at(ev, ev->len - 1));
	for (size_t i = ev->len; i-- > 0;) {
		json_t *e = ring_at(ev, i);
		const char *svc = json_string_value(json_object_get(e, "service"));

		if (service && (!svc || strcmp(svc, service) != 0))
			continue;
		if (++seen == n)
			return event_id(e) - 1;
	}
	return 0;
}

void hf_events_handler(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const char *since = hf_kvlist_get(&req->query, "since");
	const char *svc = hf_kvlist_get(&req->query, "service");
	const char *tail = hf_kvlist_get(&req->query, "tail");
	struct stream *st;
	char *end;

	st = hf_xcalloc(1, sizeof(*st));
	st->srv = s;
	st->http = req->server;
	st->follow = hf_http_query_bool(req, "follow", true);
	st->service = svc ? hf_xstrdup(svc) : NULL;
	st->last_sent = hf_mono_ms();
	if (req->last_event_id)
		since = req->last_event_id;
	if (since) {
		unsigned long long v;

		errno = 0;
		v = strtoull(since, &end, 10);
		if (errno || *end || end == since || *since == '-' ||
		    *since == '+' || *since == ' ') {
			stream_free(st);
			hf_http_error(resp, HF_EINVAL,
				      "since / Last-Event-ID must be an event "
				      "id, not '%s'",
				      since);
			return;
		}
		st->since = v;
	}
	if (tail) {
		unsigned long long n;
		uint64_t from;

		errno = 0;
		n = strtoull(tail, &end, 10);
		if (errno || *end || end == tail || *tail < '0' || *tail > '9') {
			stream_free(st);
			hf_http_error(resp, HF_EINVAL,
				      "tail must be a number of events, not '%s'",
				      tail);
			return;
		}
		pthread_mutex_lock(&s->mu);
		from = tail_start(s->events, st->service, n);
		pthread_mutex_unlock(&s->mu);
		if (from > st->since)
			st->since = from;
	}
	resp->status = 200;
	resp->content_type = "text/event-stream";
	resp->stream = stream_next;
	resp->stream_free = stream_free;
	resp->stream_arg = st;
	resp->stream_waitq = s->events ? &s->events->waitq : NULL;
	resp->stream_poll_ms = 5000;
}
