/*
 * http_server.c - the HTTP layer on sockets (see http.h, "Server model").
 *
 * Threads and what they own:
 *   acceptor   the listening sockets and every connection until its
 *              request's head has arrived: per-address and total limits,
 *              the first check of the head (hf_http_head_check, on bytes
 *              peeked, so libmicrohttpd reads them again), early error
 *              answers; then hands the socket to libmicrohttpd. Once every
 *              tick it also enforces the request deadline (shutdown(2) of a
 *              connection whose request is still not in) and the deadlines
 *              of deferred answers and idle streams.
 *   pool       libmicrohttpd's epoll threads: read bodies, run handlers,
 *              send answers, run stream callbacks.
 *   workers    run the handlers and stream steps of BLOCKING routes while
 *              their connection is suspended.
 *
 * A request's life under libmicrohttpd:
 *   on_uri        request line read: allocate the call
 *   on_access #1  headers read: Host/Origin, route, auth, query
 *                 (http_call_begin); answer errors at once, before any body
 *                 byte is read, and refuse a declared Content-Length over
 *                 the limit the same way
 *   on_access #n  body pieces: kept up to max_body, then dropped
 *   on_access end the request is in (its deadline no longer applies): the
 *                 handler runs here, or on a worker (suspended meanwhile);
 *                 a deferred answer suspends the connection until a wake
 *                 or its deadline resumes it, and on_access runs again
 *   stream_read   streamed answers, suspending while there is nothing
 *   on_completed  on_request hook, free the call
 *
 * Locks. s->lock guards the waits (queues, the deadline list, the call's
 * wait fields) and the job queue, and is held around every
 * MHD_suspend_connection/MHD_resume_connection so that a wake can never
 * fall between "decided to wait" and "suspended". s->conn_lock guards the
 * connection table and per-address counts; libmicrohttpd's connection
 * notifications take only that one. Order: a handler's own locks, then
 * s->lock, then libmicrohttpd's; s->conn_lock is never held with another.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "common/clock.h"
#include "http/cred.h"
#include "http/http_int.h"
#include "common/err.h"
#include "common/map.h"

/* Per-connection memory in libmicrohttpd: bounds request line + headers. */
#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_MAX_CONNECTIONS 512
#define HTTP_MAX_PER_IP 64
#define HTTP_IDLE_TIMEOUT 120
#define HTTP_REQUEST_TIMEOUT 30
#define HTTP_THREADS 4
#define HTTP_WORKERS 8
/* How often deadlines are looked at. */
#define HTTP_TICK_MS 100
/* After an early error answer: read and drop this much, this long, then close. */
#define HTTP_DRAIN_MAX (64 * 1024)
#define HTTP_DRAIN_MS 2000
/* Stream calls in a row that may be woken before the stream waits anyway. */
#define HTTP_WAKE_SPINS 8
/* At stop, answers in flight get this long to go out. */
#define HTTP_STOP_DRAIN_S 2
/* TLS PEM files larger than this are not certificates. */
#define HTTP_PEM_MAX (1024 * 1024)

enum conn_phase {
	CONN_HEAD,  /* the acceptor waits for the request's head */
	CONN_DRAIN, /* answered early; dropping what the client still sends */
	CONN_MHD,   /* libmicrohttpd's */
};

/* Connections of one client address. */
struct ip_count {
	char ip[INET6_ADDRSTRLEN];
	unsigned n;
};

/* One client connection, from accept to close. */
struct conn {
	int fd;
	enum conn_phase phase;
	struct ip_count *ipc;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int64_t deadline; /* monotonic ms by which the request must be in; 0: none */
	size_t drained;
	bool in_epoll;
	/*
	 * Its request was answered: the connection closes once the answer is
	 * out and no longer counts against the limits. libmicrohttpd notices
	 * the end a while after the bytes left (its threads finish a round of
	 * connections first), and by then the client, an agent, has opened
	 * its next one.
	 */
	bool released;
};

enum job_kind { JOB_NONE, JOB_HANDLER, JOB_STREAM };

struct http_stream;

/* A request served by libmicrohttpd: the pure call and what it waits for. */
struct srv_call {
	struct http_call c;
	struct hf_http_server *s;
	struct MHD_Connection *con;
	struct conn *conn;
	struct hf_http_resp resp; /* an answer made on a worker */
	bool ready;               /* ... is in resp */
	bool complete;            /* the whole request has been read */
	/* A deferred answer. */
	hf_http_resume_fn resume;
	void *resume_arg;
	void (*resume_free)(void *arg);
	bool deferred;
	/* Waiting (all under s->lock). */
	struct hf_http_waitq *q;
	struct srv_call *qprev, *qnext;
	struct srv_call *wprev, *wnext; /* s->waits: suspended until a deadline */
	int64_t deadline;
	bool armed, woken, suspended, in_waits;
	/* Work on a worker thread (under s->lock). */
	enum job_kind job;
	struct srv_call *jnext;
	struct http_stream *st;
};

/* A streamed answer between the handler and libmicrohttpd's reader. */
struct http_stream {
	struct srv_call *sc;
	int (*fn)(void *arg, struct hf_buf *out);
	void (*free_fn)(void *arg);
	void *arg;
	struct hf_http_waitq *q;
	long poll_ms;
	bool blocking;
	struct hf_buf pending;
	size_t off;
	bool ended, failed;
	bool idle;      /* the last call brought nothing: wait before the next */
	bool step_done; /* a worker ran fn; step_rc is its result */
	int step_rc;
};

struct hf_http_server {
	struct hf_http_conf conf;
	struct hf_kvlist tokens;
	struct hf_strlist hosts;
	struct MHD_Daemon *daemon;
	atomic_bool stopping;
	int port;
	bool tls;
	void (*on_request)(void *ctx, const struct hf_http_req *req,
			   int status, double seconds);
	void (*log)(void *ctx, const char *msg);
	char *tls_cert, *tls_key;
	size_t tls_key_len;
	char *client_ca; /* PEM: client certificates it signed are remotes */
	unsigned max_conn, max_per_ip;
	int64_t request_ms;

	/* libmicrohttpd's messages while starting go into start_log. */
	pthread_mutex_t log_lock;
	bool starting;
	struct hf_buf start_log;

	/* The acceptor. */
	int lfd[2];
	int nlfd;
	int epfd, evfd;
	pthread_t acceptor;
	bool acceptor_started;

	/* Connections (conn_lock). */
	pthread_mutex_t conn_lock;
	struct conn **conns; /* by descriptor */
	size_t nslots;
	unsigned nconns;
	struct hf_map ips; /* address -> struct ip_count */

	/* Waits and jobs (lock). */
	pthread_mutex_t lock;
	struct srv_call *waits;
	unsigned answering;    /* requests read in full and not completed */
	pthread_cond_t done_cv; /* answering went down */
	pthread_cond_t job_cv;
	struct srv_call *job_head, *job_tail;
	bool workers_stop;
	pthread_t *workers;
	unsigned nworkers;
};

static bool stopping(const struct hf_http_server *s)
{
	return atomic_load(&((struct hf_http_server *)s)->stopping);
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

/* ---- waiting ------------------------------------------------------------ */

/* Takes sc off its queue and the deadline list. Lock held. */
static void disarm(struct hf_http_server *s, struct srv_call *sc)
{
	if (sc->q) {
		if (sc->qprev)
			sc->qprev->qnext = sc->qnext;
		else
			sc->q->head = sc->qnext;
		if (sc->qnext)
			sc->qnext->qprev = sc->qprev;
	}
	sc->q = NULL;
	sc->qprev = sc->qnext = NULL;
	if (sc->in_waits) {
		if (sc->wprev)
			sc->wprev->wnext = sc->wnext;
		else
			s->waits = sc->wnext;
		if (sc->wnext)
			sc->wnext->wprev = sc->wprev;
	}
	sc->wprev = sc->wnext = NULL;
	sc->in_waits = false;
	sc->armed = false;
}

/* Puts sc on q, ready for a wake before it is suspended. Lock held. */
static void arm(struct srv_call *sc, struct hf_http_waitq *q)
{
	sc->woken = false;
	sc->armed = true;
	if (!q)
		return;
	sc->q = q;
	sc->qprev = NULL;
	sc->qnext = q->head;
	if (sc->qnext)
		sc->qnext->qprev = sc;
	q->head = sc;
}

/*
 * Suspends an armed call until a wake or deadline (0: none). Lock held;
 * from on_access or stream_read only (libmicrohttpd's rule).
 */
static void suspend_waiting(struct hf_http_server *s, struct srv_call *sc,
			    int64_t deadline)
{
	sc->deadline = deadline;
	sc->suspended = true;
	sc->in_waits = true;
	sc->wprev = NULL;
	sc->wnext = s->waits;
	if (sc->wnext)
		sc->wnext->wprev = sc;
	s->waits = sc;
	MHD_suspend_connection(sc->con);
}

/* Resumes a waiting call (woken says why). Lock held. */
static void resume_waiting(struct hf_http_server *s, struct srv_call *sc,
			   bool woken)
{
	bool was_suspended = sc->suspended;

	disarm(s, sc);
	sc->woken = woken;
	sc->suspended = false;
	if (was_suspended)
		MHD_resume_connection(sc->con);
}

void http_server_arm(struct hf_http_server *s, struct http_call *c,
		     struct hf_http_waitq *q)
{
	struct srv_call *sc = (struct srv_call *)c;

	pthread_mutex_lock(&s->lock);
	disarm(s, sc);
	arm(sc, q);
	pthread_mutex_unlock(&s->lock);
}

void hf_http_wake(struct hf_http_server *s, struct hf_http_waitq *q)
{
	if (!s || !q)
		return;
	pthread_mutex_lock(&s->lock);
	while (q->head) {
		struct srv_call *sc = q->head;

		if (sc->suspended) {
			resume_waiting(s, sc, true);
		} else {
			/* Armed, not yet suspended: it will not wait. */
			disarm(s, sc);
			sc->woken = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- answering ------------------------------------------------------------ */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max);
static void stream_done(void *cls);

static bool header_ok(const char *s)
{
	return !strpbrk(s, "\r\n");
}

static void conn_release_locked(struct hf_http_server *s, struct conn *cn);

/* One request per connection: once it is answered the connection is done. */
static void answered(struct srv_call *sc)
{
	struct hf_http_server *s = sc->s;

	if (!sc->conn)
		return;
	pthread_mutex_lock(&s->conn_lock);
	sc->conn->deadline = 0;
	conn_release_locked(s, sc->conn);
	pthread_mutex_unlock(&s->conn_lock);
}

/*
 * Queues resp on the connection and releases it. Returns what the access
 * handler returns: MHD_NO closes the connection.
 */
static enum MHD_Result answer(struct srv_call *sc, struct hf_http_resp *resp)
{
	bool streamed = resp->stream != NULL;
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (streamed) {
		struct http_stream *st = hf_xcalloc(1, sizeof(*st));

		st->sc = sc;
		st->fn = resp->stream;
		st->free_fn = resp->stream_free;
		st->arg = resp->stream_arg;
		st->q = resp->stream_waitq;
		st->poll_ms = resp->stream_poll_ms > 0 ? resp->stream_poll_ms
						       : 1000;
		st->blocking = sc->c.route &&
			       (sc->c.route->flags & HF_ROUTE_BLOCKING);
		if (resp->body)
			hf_buf_add(&st->pending, resp->body, resp->body_len);
		resp->stream = NULL;
		resp->stream_free = NULL;
		resp->stream_arg = NULL;
		sc->st = st;
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
	sc->c.answered = true;
	sc->c.status = resp->status;
	/* A stream goes on: it counts until it ends (on_completed). */
	if (!streamed)
		answered(sc);
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
	/* One request per connection: every request passes the acceptor. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	for (size_t i = 0; i < resp->headers.len; i++) {
		const struct hf_kv *kv = &resp->headers.items[i];

		/* A bad header from a handler is dropped, not sent. */
		if (header_ok(kv->key) && header_ok(kv->value) &&
		    strcasecmp(kv->key, MHD_HTTP_HEADER_CONNECTION) != 0)
			MHD_add_response_header(r, kv->key, kv->value);
	}
	ret = MHD_queue_response(sc->con, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	hf_http_resp_release(resp);
	return ret;
}

static void answer_stopping(struct hf_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	hf_http_error(resp, HF_EUNAVAIL, "the server is stopping");
}

/* Queues sc on the workers and suspends its connection. Lock held. */
static void job_push(struct hf_http_server *s, struct srv_call *sc,
		     enum job_kind kind)
{
	sc->job = kind;
	sc->jnext = NULL;
	if (s->job_tail)
		s->job_tail->jnext = sc;
	else
		s->job_head = sc;
	s->job_tail = sc;
	MHD_suspend_connection(sc->con);
	pthread_cond_signal(&s->job_cv);
}

/*
 * Answers resp, or, when the handler deferred, waits: suspended until a
 * wake or the deadline, or at once when a wake already came or the server
 * stops. Runs on a pool thread (from on_access).
 */
static enum MHD_Result settle(struct srv_call *sc, struct hf_http_resp *resp)
{
	struct hf_http_server *s = sc->s;

	for (;;) {
		hf_http_resume_fn fn;
		void *arg;
		void (*arg_free)(void *);
		bool woken;

		if (!resp->resume) {
			pthread_mutex_lock(&s->lock);
			disarm(s, sc);
			pthread_mutex_unlock(&s->lock);
			return answer(sc, resp);
		}
		fn = resp->resume;
		arg = resp->resume_arg;
		arg_free = resp->resume_free;
		pthread_mutex_lock(&s->lock);
		if (!sc->woken && !stopping(s)) {
			sc->resume = fn;
			sc->resume_arg = arg;
			sc->resume_free = arg_free;
			sc->deferred = true;
			if (!sc->armed)
				arm(sc, NULL);
			suspend_waiting(s, sc,
					resp->resume_ms
						? hf_mono_ms() + resp->resume_ms
						: 0);
			pthread_mutex_unlock(&s->lock);
			resp->resume = NULL;
			resp->resume_free = NULL;
			hf_http_resp_release(resp);
			return MHD_YES;
		}
		woken = true;
		disarm(s, sc);
		pthread_mutex_unlock(&s->lock);
		resp->resume = NULL;
		resp->resume_free = NULL;
		hf_http_resp_release(resp);
		if (stopping(s) && sc->deferred) {
			/* A second deferral while stopping: end it. */
			if (arg_free)
				arg_free(arg);
			answer_stopping(resp);
			continue;
		}
		sc->deferred = true;
		http_call_resume(&s->conf, &sc->c, resp, fn, arg, woken);
		if (arg_free && resp->resume_arg != arg)
			arg_free(arg);
	}
}

/* ---- libmicrohttpd callbacks ------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct srv_call *sc = hf_xcalloc(1, sizeof(*sc));
	const union MHD_ConnectionInfo *ci;

	http_call_init(&sc->c, cls, uri);
	sc->s = cls;
	sc->con = con;
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	sc->conn = ci ? ci->socket_context : NULL;
	return sc;
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

static const char *header(struct MHD_Connection *con, const char *name)
{
	return MHD_lookup_connection_value(con, MHD_HEADER_KIND, name);
}

/* The headers that may be given once only (hf_http_raw's repeated). */
static const char *const single_headers[] = {
	MHD_HTTP_HEADER_HOST, "Origin", MHD_HTTP_HEADER_AUTHORIZATION,
	MHD_HTTP_HEADER_CONTENT_TYPE, MHD_HTTP_HEADER_CONTENT_LENGTH,
};

struct header_count {
	unsigned seen[HF_ARRAY_LEN(single_headers)];
	const char *repeated;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	struct header_count *hc = cls;

	(void)kind;
	(void)value;
	for (size_t i = 0; i < HF_ARRAY_LEN(single_headers); i++)
		if (strcasecmp(key, single_headers[i]) == 0 &&
		    ++hc->seen[i] == 2 && !hc->repeated)
			hc->repeated = single_headers[i];
	return MHD_YES;
}

static const char *repeated_header(struct MHD_Connection *con)
{
	struct header_count hc = {{0}, NULL};

	MHD_get_connection_values(con, MHD_HEADER_KIND, count_header, &hc);
	return hc.repeated;
}

/* The request is in: its deadline no longer applies. */
static void request_complete(struct srv_call *sc)
{
	struct hf_http_server *s = sc->s;

	if (sc->complete)
		return;
	sc->complete = true;
	pthread_mutex_lock(&s->lock);
	s->answering++;
	pthread_mutex_unlock(&s->lock);
	if (!sc->conn)
		return;
	pthread_mutex_lock(&s->conn_lock);
	sc->conn->deadline = 0;
	pthread_mutex_unlock(&s->conn_lock);
}

/*
 * The client certificate of a TLS connection, checked against the client
 * CA (libmicrohttpd gave GnuTLS that trust list): raw->peer_cn is its
 * common name when it verifies, raw->peer_error why not when it does not;
 * both stay NULL when the client sent none.
 */
static void peer_certificate(struct MHD_Connection *con, char *cn,
			     size_t cn_size, struct hf_http_raw *raw)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(con, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	gnutls_session_t sess = ci ? (gnutls_session_t)ci->tls_session : NULL;
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crt;
	unsigned int n = 0, status = 0;
	size_t len = cn_size - 1;

	if (!sess ||
	    gnutls_certificate_type_get(sess) != GNUTLS_CRT_X509 ||
	    !(peers = gnutls_certificate_get_peers(sess, &n)) || !n)
		return;
	if (gnutls_certificate_verify_peers2(sess, &status) < 0 || status) {
		raw->peer_error =
		    status & GNUTLS_CERT_EXPIRED
			? "it has expired"
		    : status & GNUTLS_CERT_NOT_ACTIVATED
			? "it is not valid yet"
		    : status & GNUTLS_CERT_REVOKED
			? "it is revoked"
			: "it is not signed by this server's --client-ca";
		return;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, cn, &len) < 0 ||
	    !len) {
		raw->peer_error = "it has no common name (CN): the name of the "
				  "remote cluster";
	} else {
		cn[len < cn_size ? len : cn_size - 1] = '\0';
		raw->peer_cn = cn;
	}
	gnutls_x509_crt_deinit(crt);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *con,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct hf_http_server *s = cls;
	struct srv_call *sc = *con_cls;
	struct http_call *c;
	struct hf_http_resp resp;
	size_t max = http_max_body(&s->conf);

	(void)version;
	if (!sc) {
		/* Not reached: on_uri runs first. Kept for safety. */
		sc = on_uri(s, url, con);
		*con_cls = sc;
	}
	c = &sc->c;
	if (!c->begun) {
		const union MHD_ConnectionInfo *ci;
		struct hf_http_raw raw = {0};
		char addr[INET6_ADDRSTRLEN], peer_cn[256];

		c->begun = true;
		ci = MHD_get_connection_info(con,
					     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		addr_text(ci ? ci->client_addr : NULL, addr, sizeof(addr));
		raw.method = method;
		raw.target = c->target;
		raw.remote_addr = addr;
		raw.authorization = header(con, MHD_HTTP_HEADER_AUTHORIZATION);
		raw.last_event_id = header(con, "Last-Event-ID");
		raw.host = header(con, MHD_HTTP_HEADER_HOST);
		raw.origin = header(con, "Origin");
		raw.content_type = header(con, MHD_HTTP_HEADER_CONTENT_TYPE);
		raw.repeated = repeated_header(con);
		if (s->client_ca)
			peer_certificate(con, peer_cn, sizeof(peer_cn), &raw);
		if (!http_call_begin(&s->conf, c, &raw, &resp))
			return answer(sc, &resp);
		/*
		 * Refuse an announced oversized body now, so that none of it
		 * is read (no 100 Continue is sent either).
		 */
		if (declared_too_large(header(con, MHD_HTTP_HEADER_CONTENT_LENGTH),
				       max)) {
			memset(&resp, 0, sizeof(resp));
			http_answer_413(&s->conf, &resp);
			return answer(sc, &resp);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (c->answered)
			return MHD_YES;
		c->body_seen += n;
		/*
		 * A chunked body has no announced length: past the limit it
		 * is read to its end and dropped (the request deadline bounds
		 * how long that may take), then answered 413.
		 */
		if (c->body_seen > max && !c->too_large) {
			c->too_large = true;
			hf_buf_release(&c->body);
		}
		if (!c->too_large && http_method_has_body(c->method))
			hf_buf_add(&c->body, upload_data, n);
		return MHD_YES;
	}
	if (c->answered)
		return MHD_YES;
	if (sc->ready) {
		/* A worker made the answer. */
		sc->ready = false;
		resp = sc->resp;
		memset(&sc->resp, 0, sizeof(sc->resp));
		return settle(sc, &resp);
	}
	if (sc->deferred && sc->resume) {
		/* Woken, or the deadline passed. */
		hf_http_resume_fn fn = sc->resume;
		void *arg = sc->resume_arg;
		void (*arg_free)(void *) = sc->resume_free;
		bool woken;

		pthread_mutex_lock(&s->lock);
		woken = sc->woken || stopping(s);
		sc->woken = false;
		pthread_mutex_unlock(&s->lock);
		sc->resume = NULL;
		sc->resume_free = NULL;
		sc->resume_arg = NULL;
		http_call_resume(&s->conf, c, &resp, fn, arg, woken);
		if (arg_free && resp.resume_arg != arg)
			arg_free(arg);
		return settle(sc, &resp);
	}
	request_complete(sc);
	if (c->too_large) {
		memset(&resp, 0, sizeof(resp));
		http_answer_413(&s->conf, &resp);
		return answer(sc, &resp);
	}
	if (c->route->flags & HF_ROUTE_BLOCKING) {
		pthread_mutex_lock(&s->lock);
		if (!stopping(s)) {
			job_push(s, sc, JOB_HANDLER);
			pthread_mutex_unlock(&s->lock);
			return MHD_YES;
		}
		pthread_mutex_unlock(&s->lock);
		answer_stopping(&resp);
		return answer(sc, &resp);
	}
	http_call_run(&s->conf, c, &resp);
	/* The body is not needed any more; streams may live long. */
	hf_buf_release(&c->body);
	return settle(sc, &resp);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	struct srv_call *sc = st->sc;
	struct hf_http_server *s = sc->s;

	(void)pos;
	for (int spins = 0;; spins++) {
		size_t n;
		int rc;

		if (st->off < st->pending.len) {
			n = st->pending.len - st->off;
			if (n > max)
				n = max;
			memcpy(buf, st->pending.data + st->off, n);
			st->off += n;
			return (ssize_t)n;
		}
		if (st->failed)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (st->ended || stopping(s))
			return MHD_CONTENT_READER_END_OF_STREAM;
		hf_buf_reset(&st->pending);
		st->off = 0;
		if (st->blocking) {
			if (st->step_done) {
				st->step_done = false;
				if (st->step_rc < 0)
					st->failed = true;
				else if (st->step_rc > 0)
					st->ended = true;
				else if (!st->pending.len)
					st->idle = true;
				continue;
			}
			pthread_mutex_lock(&s->lock);
			if (stopping(s)) {
				pthread_mutex_unlock(&s->lock);
				return MHD_CONTENT_READER_END_OF_STREAM;
			}
			if (st->idle) {
				/* Nothing last time: wait before asking again. */
				st->idle = false;
				disarm(s, sc);
				arm(sc, st->q);
				suspend_waiting(s, sc, hf_mono_ms() + st->poll_ms);
			} else {
				job_push(s, sc, JOB_STREAM);
			}
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		/* Armed first: a wake during the call is not lost. */
		pthread_mutex_lock(&s->lock);
		disarm(s, sc);
		arm(sc, st->q);
		pthread_mutex_unlock(&s->lock);
		rc = st->fn(st->arg, &st->pending);
		pthread_mutex_lock(&s->lock);
		if (rc < 0 || rc > 0 || st->pending.len || stopping(s) ||
		    (sc->woken && spins < HTTP_WAKE_SPINS)) {
			disarm(s, sc);
			pthread_mutex_unlock(&s->lock);
			if (rc < 0) {
				st->failed = true;
				hf_buf_reset(&st->pending);
			} else if (rc > 0) {
				st->ended = true;
			}
			continue;
		}
		suspend_waiting(s, sc, hf_mono_ms() + st->poll_ms);
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
}

static void stream_done(void *cls)
{
	struct http_stream *st = cls;

	if (st->free_fn)
		st->free_fn(st->arg);
	hf_buf_release(&st->pending);
	free(st);
}

/* The connection no longer counts against the limits. conn_lock held. */
static void conn_release_locked(struct hf_http_server *s, struct conn *cn)
{
	if (cn->released)
		return;
	cn->released = true;
	if (cn->ipc && --cn->ipc->n == 0) {
		hf_map_del(&s->ips, cn->ipc->ip);
		free(cn->ipc);
	}
	cn->ipc = NULL;
	s->nconns--;
}

static void conn_free_locked(struct hf_http_server *s, struct conn *cn)
{
	if ((size_t)cn->fd < s->nslots && s->conns[cn->fd] == cn)
		s->conns[cn->fd] = NULL;
	conn_release_locked(s, cn);
	free(cn);
}

static void on_completed(void *cls, struct MHD_Connection *con,
			 void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct hf_http_server *s = cls;
	struct srv_call *sc = *con_cls;

	(void)con;
	(void)toe;
	if (!sc)
		return;
	/*
	 * A completed call waits for nothing: it is never suspended, nor
	 * armed outside on_access and stream_read.
	 */
	if (sc->c.answered && s->on_request) {
		s->on_request(s->conf.ctx, &sc->c.req, sc->c.status,
			      (double)(hf_mono_ns() - sc->c.start_ns) / 1e9);
	}
	if (sc->complete) {
		pthread_mutex_lock(&s->lock);
		s->answering--;
		pthread_cond_broadcast(&s->done_cv);
		pthread_mutex_unlock(&s->lock);
	}
	/* Unanswered (the client went away): over all the same. */
	answered(sc);
	if (sc->resume && sc->resume_free)
		sc->resume_free(sc->resume_arg);
	hf_http_resp_release(&sc->resp);
	http_call_release(&sc->c);
	free(sc);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *con,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct hf_http_server *s = cls;
	const union MHD_ConnectionInfo *ci;

	pthread_mutex_lock(&s->conn_lock);
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(con,
					     MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && ci->connect_fd >= 0 &&
		    (size_t)ci->connect_fd < s->nslots)
			*socket_context = s->conns[ci->connect_fd];
	} else if (*socket_context) {
		conn_free_locked(s, *socket_context);
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&s->conn_lock);
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

/* ---- workers --------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct hf_http_server *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct srv_call *sc = s->job_head;
		enum job_kind kind;

		if (!sc) {
			if (s->workers_stop)
				break;
			pthread_cond_wait(&s->job_cv, &s->lock);
			continue;
		}
		s->job_head = sc->jnext;
		if (!s->job_head)
			s->job_tail = NULL;
		kind = sc->job;
		pthread_mutex_unlock(&s->lock);
		if (kind == JOB_HANDLER) {
			http_call_run(&s->conf, &sc->c, &sc->resp);
			hf_buf_release(&sc->c.body);
			sc->ready = true;
		} else {
			struct http_stream *st = sc->st;

			st->step_rc = st->fn(st->arg, &st->pending);
			st->step_done = true;
		}
		pthread_mutex_lock(&s->lock);
		sc->job = JOB_NONE;
		MHD_resume_connection(sc->con);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the acceptor ------------------------------------------------------------ */

/*
 * Sends a short answer on a socket libmicrohttpd does not own, without
 * waiting (a client that does not read loses it).
 */
static void send_early(int fd, int status, const char *code, const char *msg)
{
	struct hf_http_resp r = {0};
	const char *reason = status == 400   ? "Bad Request"
			     : status == 408 ? "Request Timeout"
			     : status == 413 ? "Content Too Large"
			     : status == 431 ? "Request Header Fields Too Large"
					     : "Service Unavailable";
	char *text;

	hf_http_error_status(&r, status, code, "%s", msg);
	text = hf_xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			    "Cache-Control: no-store\r\nConnection: close\r\n"
			    "Content-Length: %zu\r\n\r\n%s",
			    status, reason, r.body_len, r.body);
	(void)!send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
	free(text);
	hf_http_resp_release(&r);
}

/* Forgets and closes a connection the acceptor owns. */
static void conn_close(struct hf_http_server *s, struct conn *cn)
{
	int fd = cn->fd;

	if (cn->in_epoll)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	pthread_mutex_lock(&s->conn_lock);
	conn_free_locked(s, cn);
	pthread_mutex_unlock(&s->conn_lock);
	close(fd);
}

/*
 * Answers an error before libmicrohttpd saw the connection, then keeps
 * reading (and dropping) a little while, so that closing with unread data
 * does not reset the connection before the client read the answer.
 */
static void conn_answer_early(struct hf_http_server *s, struct conn *cn,
			      int status, const char *code, const char *msg)
{
	char scratch[4096];

	while (recv(cn->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
		;
	send_early(cn->fd, status, code, msg);
	shutdown(cn->fd, SHUT_WR);
	pthread_mutex_lock(&s->conn_lock);
	cn->phase = CONN_DRAIN;
	cn->deadline = hf_mono_ms() + HTTP_DRAIN_MS;
	pthread_mutex_unlock(&s->conn_lock);
}

/* Gives the connection to libmicrohttpd, which closes it from now on. */
static void conn_handover(struct hf_http_server *s, struct conn *cn)
{
	int fd = cn->fd;

	if (cn->in_epoll)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
	cn->in_epoll = false;
	pthread_mutex_lock(&s->conn_lock);
	cn->phase = CONN_MHD;
	pthread_mutex_unlock(&s->conn_lock);
	if (MHD_add_connection(s->daemon, fd, (struct sockaddr *)&cn->addr,
			       cn->addrlen) != MHD_YES) {
		/* Closed by libmicrohttpd; forget it unless its notice did. */
		pthread_mutex_lock(&s->conn_lock);
		if ((size_t)fd < s->nslots && s->conns[fd] == cn)
			conn_free_locked(s, cn);
		pthread_mutex_unlock(&s->conn_lock);
	}
}

/* A readable connection in its head phase: is the head all there? */
static void conn_readable(struct hf_http_server *s, struct conn *cn)
{
	char buf[HTTP_CONN_MEMORY];
	size_t head_len;
	char *msg = NULL;
	ssize_t n;
	int status;

	if (cn->phase == CONN_DRAIN) {
		char scratch[4096];

		while ((n = recv(cn->fd, scratch, sizeof(scratch),
				 MSG_DONTWAIT)) > 0)
			cn->drained += (size_t)n;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
		    cn->drained > HTTP_DRAIN_MAX)
			conn_close(s, cn);
		return;
	}
	n = recv(cn->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(s, cn);
		return;
	}
	if (!hf_http_head_check(buf, (size_t)n, sizeof(buf), &head_len,
				&status, &msg))
		return;
	if (status == 0)
		conn_handover(s, cn);
	else
		conn_answer_early(s, cn, status,
				  status == 413   ? "too-large"
				  : status == 431 ? "headers-too-large"
						  : "bad-request",
				  msg);
	free(msg);
}

static void conn_accept(struct hf_http_server *s, int lfd)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char ip[INET6_ADDRSTRLEN];
		struct ip_count *ipc;
		struct conn *cn;
		const char *refused = NULL;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			/* Out of descriptors: the socket stays readable, so
			 * pause rather than spin; existing connections end. */
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				usleep(20 * 1000);
			return;
		}
		addr_text((struct sockaddr *)&ss, ip, sizeof(ip));
		pthread_mutex_lock(&s->conn_lock);
		ipc = hf_map_get(&s->ips, ip);
		if (s->nconns >= s->max_conn)
			refused = "the server holds as many connections as it "
				  "may; try again later";
		else if (ipc && ipc->n >= s->max_per_ip)
			refused = "this address holds as many connections as "
				  "one address may; try again later";
		if (refused) {
			pthread_mutex_unlock(&s->conn_lock);
			send_early(fd, 503, "unavailable", refused);
			close(fd);
			continue;
		}
		if (!ipc) {
			ipc = hf_xcalloc(1, sizeof(*ipc));
			snprintf(ipc->ip, sizeof(ipc->ip), "%s", ip);
			hf_map_put(&s->ips, ipc->ip, ipc);
		}
		ipc->n++;
		cn = hf_xcalloc(1, sizeof(*cn));
		cn->fd = fd;
		cn->ipc = ipc;
		memcpy(&cn->addr, &ss, sl);
		cn->addrlen = sl;
		cn->deadline = hf_mono_ms() + s->request_ms;
		cn->phase = CONN_HEAD;
		if ((size_t)fd >= s->nslots) {
			size_t n = s->nslots ? s->nslots : 64;

			while (n <= (size_t)fd)
				n *= 2;
			s->conns = hf_xrealloc(s->conns, n * sizeof(*s->conns));
			memset(s->conns + s->nslots, 0,
			       (n - s->nslots) * sizeof(*s->conns));
			s->nslots = n;
		}
		s->conns[fd] = cn;
		s->nconns++;
		pthread_mutex_unlock(&s->conn_lock);
		/* TLS heads cannot be read here: libmicrohttpd's at once. */
		if (s->tls) {
			conn_handover(s, cn);
			continue;
		}
		{
			struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP |
							   EPOLLET,
						 .data.ptr = cn};

			if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
				conn_close(s, cn);
				continue;
			}
			cn->in_epoll = true;
		}
		conn_readable(s, cn);
	}
}

/*
 * Deadlines: requests that did not arrive in time, drains that are over,
 * deferred answers and idle streams whose wait is up.
 */
static void tick(struct hf_http_server *s)
{
	int64_t now = hf_mono_ms();
	struct conn **expired = NULL;
	size_t nexp = 0;

	pthread_mutex_lock(&s->conn_lock);
	for (size_t fd = 0; fd < s->nslots; fd++) {
		struct conn *cn = s->conns[fd];

		if (!cn || !cn->deadline || now < cn->deadline)
			continue;
		if (cn->phase == CONN_MHD) {
			/*
			 * libmicrohttpd reads this one: end the connection
			 * under it. The descriptor is still its (it is
			 * forgotten here before libmicrohttpd closes it).
			 */
			shutdown(cn->fd, SHUT_RDWR);
			cn->deadline = 0;
			continue;
		}
		expired = hf_xrealloc(expired, (nexp + 1) * sizeof(*expired));
		expired[nexp++] = cn;
	}
	pthread_mutex_unlock(&s->conn_lock);
	for (size_t i = 0; i < nexp; i++) {
		struct conn *cn = expired[i];

		if (cn->phase == CONN_DRAIN) {
			conn_close(s, cn);
		} else {
			char *msg = hf_xasprintf("the request did not arrive "
						 "within %lld s",
						 (long long)(s->request_ms / 1000));

			conn_answer_early(s, cn, 408, "request-timeout", msg);
			free(msg);
		}
	}
	free(expired);

	pthread_mutex_lock(&s->lock);
	for (struct srv_call *sc = s->waits, *next; sc; sc = next) {
		next = sc->wnext;
		if (sc->deadline && now >= sc->deadline)
			resume_waiting(s, sc, false);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *acceptor_main(void *arg)
{
	struct hf_http_server *s = arg;
	int64_t last_tick = hf_mono_ms();

	while (!stopping(s)) {
		struct epoll_event evs[64];
		int n = epoll_wait(s->epfd, evs, 64, HTTP_TICK_MS);

		for (int i = 0; i < n && !stopping(s); i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->evfd)
				continue;
			if (p == &s->lfd[0] || p == &s->lfd[1])
				conn_accept(s, *(int *)p);
			else
				conn_readable(s, p);
		}
		if (hf_mono_ms() - last_tick >= HTTP_TICK_MS) {
			last_tick = hf_mono_ms();
			tick(s);
		}
	}
	/* Connections that never reached libmicrohttpd end here. */
	for (size_t fd = 0; fd < s->nslots; fd++) {
		struct conn *cn;

		pthread_mutex_lock(&s->conn_lock);
		cn = s->conns[fd];
		pthread_mutex_unlock(&s->conn_lock);
		if (cn && cn->phase != CONN_MHD)
			conn_close(s, cn);
	}
	return NULL;
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
		const char *close_br = strchr(listen, ']');

		if (!close_br || close_br[1] != ':') {
			*err = hf_xasprintf("bad listen address '%s' (expected [ADDRESS]:PORT)",
					    listen);
			return HF_EINVAL;
		}
		host = listen + 1;
		host_len = (size_t)(close_br - host);
		port_s = close_br + 2;
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

/* A listening socket; -1 with errno on failure. */
static int listen_on(const struct sockaddr *sa, socklen_t len, bool v6only)
{
	int one = 1, off = 0;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &off,
			   sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Binds the listening socket(s) for la; 0 or HF_EIO with *err. */
static int bind_listen(struct hf_http_server *s, const struct listen_addr *la,
		       const char *listen, char **err)
{
	if (la->any) {
		struct sockaddr_in6 six = {.sin6_family = AF_INET6,
					   .sin6_addr = IN6ADDR_ANY_INIT,
					   .sin6_port = htons(la->port)};
		struct sockaddr_in four = {.sin_family = AF_INET,
					   .sin_port = htons(la->port)};

		/* Dual stack; every IPv4 address when there is no IPv6. */
		s->lfd[0] = listen_on((struct sockaddr *)&six, sizeof(six),
				      false);
		if (s->lfd[0] < 0) {
			four.sin_addr.s_addr = htonl(INADDR_ANY);
			s->lfd[0] = listen_on((struct sockaddr *)&four,
					      sizeof(four), false);
		}
	} else {
		s->lfd[0] = listen_on((const struct sockaddr *)&la->ss,
				      la->ss.ss_family == AF_INET6
					      ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in),
				      true);
	}
	if (s->lfd[0] < 0) {
		*err = hf_xasprintf("cannot serve HTTP%s on %s: %s",
				    s->tls ? "S" : "", listen, strerror(errno));
		return HF_EIO;
	}
	s->nlfd = 1;
	{
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);

		getsockname(s->lfd[0], (struct sockaddr *)&got, &gl);
		s->port = got.ss_family == AF_INET6
				  ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
				  : ntohs(((struct sockaddr_in *)&got)->sin_port);
	}
	return 0;
}

static struct MHD_Daemon *start_daemon(struct hf_http_server *s,
				       unsigned threads, unsigned idle)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET |
			 MHD_USE_ERROR_LOG;

	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
		flags |= MHD_USE_POLL;
	if (s->tls)
		flags |= MHD_USE_TLS;
	/* The TLS options come last: without TLS the list ends before them. */
	return MHD_start_daemon(
		flags, 0, NULL, NULL, on_access, s,
		/* The logger first, so that it sees every message. */
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
		/*
		 * The acceptor counts connections until they are answered; this
		 * bounds, as a backstop, those answered and still being sent.
		 */
		MHD_OPTION_CONNECTION_LIMIT, s->max_conn * 2 + threads * 16,
		MHD_OPTION_CONNECTION_TIMEOUT, idle,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		s->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END,
		s->tls_key, MHD_OPTION_HTTPS_MEM_CERT, s->tls_cert,
		/* A trust list makes the server ask for a client certificate. */
		s->client_ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
		s->client_ca, MHD_OPTION_END);
}

static void ip_free(void *v)
{
	free(v);
}

static void server_free(struct hf_http_server *s)
{
	for (int i = 0; i < s->nlfd; i++)
		if (s->lfd[i] >= 0)
			close(s->lfd[i]);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	for (size_t i = 0; i < s->nslots; i++)
		free(s->conns[i]);
	free(s->conns);
	for (size_t i = 0; i < s->ips.cap; i++)
		if (s->ips.slots[i].key)
			ip_free(s->ips.slots[i].value);
	hf_map_release(&s->ips);
	hf_kvlist_release(&s->tokens);
	hf_strlist_release(&s->hosts);
	if (s->tls_key)
		explicit_bzero(s->tls_key, s->tls_key_len);
	free(s->tls_key);
	free(s->tls_cert);
	free(s->client_ca);
	free(s->workers);
	hf_buf_release(&s->start_log);
	pthread_mutex_destroy(&s->log_lock);
	pthread_mutex_destroy(&s->conn_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->job_cv);
	pthread_cond_destroy(&s->done_cv);
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
	unsigned idle = opts->idle_timeout ? opts->idle_timeout
					   : HTTP_IDLE_TIMEOUT;
	unsigned threads = opts->threads ? opts->threads : HTTP_THREADS;
	struct listen_addr la;
	int rc;

	*out = NULL;
	*err = NULL;
	s->lfd[0] = s->lfd[1] = s->epfd = s->evfd = -1;
	pthread_mutex_init(&s->log_lock, NULL);
	pthread_mutex_init(&s->conn_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->job_cv, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	atomic_init(&s->stopping, false);
	s->max_conn = opts->max_connections ? opts->max_connections
					    : HTTP_MAX_CONNECTIONS;
	/* By default no one address takes more than a quarter of them all. */
	s->max_per_ip = opts->max_per_ip ? opts->max_per_ip
		      : s->max_conn / 4 < HTTP_MAX_PER_IP
			  ? (s->max_conn / 4 ? s->max_conn / 4 : 1)
			  : HTTP_MAX_PER_IP;
	s->request_ms = (int64_t)(opts->request_timeout ? opts->request_timeout
							 : HTTP_REQUEST_TIMEOUT) *
			1000;
	if (opts->tokens)
		for (size_t i = 0; i < opts->tokens->len; i++)
			*HF_VEC_PUSH(&s->tokens) = (struct hf_kv){
				hf_xstrdup(opts->tokens->items[i].key),
				hf_xstrdup(opts->tokens->items[i].value)};
	if (opts->hosts)
		for (size_t i = 0; i < opts->hosts->len; i++)
			hf_strlist_push(&s->hosts, opts->hosts->items[i]);
	s->conf.routes = routes;
	s->conf.nroutes = nroutes;
	s->conf.tokens = &s->tokens;
	s->conf.hosts = &s->hosts;
	s->conf.authenticate = opts->authenticate;
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
			rc = hf_cred_read_private(opts->tls_key, "TLS key",
						  HTTP_PEM_MAX, &s->tls_key,
						  &s->tls_key_len, err);
		if (rc)
			goto fail;
		s->tls = true;
	}
	if (opts->client_ca) {
		size_t n;

		if (!s->tls) {
			*err = hf_xstrdup("a client CA needs TLS (--tls-cert and "
					  "--tls-key)");
			rc = HF_EINVAL;
			goto fail;
		}
		rc = read_pem("client CA", opts->client_ca, &s->client_ca, &n,
			      err);
		if (rc)
			goto fail;
	}
	rc = bind_listen(s, &la, opts->listen, err);
	if (rc)
		goto fail;

	s->starting = true;
	s->daemon = start_daemon(s, threads, idle);
	pthread_mutex_lock(&s->log_lock);
	s->starting = false;
	pthread_mutex_unlock(&s->log_lock);
	if (!s->daemon) {
		*err = hf_xasprintf("cannot serve HTTP%s on %s: %s",
				    s->tls ? "S" : "", opts->listen,
				    s->start_log.len ? s->start_log.data
						     : "libmicrohttpd failed to start");
		rc = HF_EIO;
		goto fail;
	}
	hf_buf_release(&s->start_log);

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->evfd < 0) {
		*err = hf_xasprintf("cannot serve HTTP on %s: %s", opts->listen,
				    strerror(errno));
		rc = HF_EIO;
		goto fail_daemon;
	}
	{
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->evfd};

		epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev);
		for (int i = 0; i < s->nlfd; i++) {
			ev.data.ptr = &s->lfd[i];
			epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd[i], &ev);
		}
	}
	s->nworkers = opts->workers ? opts->workers : HTTP_WORKERS;
	s->workers = hf_xcalloc(s->nworkers, sizeof(*s->workers));
	for (unsigned i = 0; i < s->nworkers; i++) {
		if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
			s->nworkers = i;
			*err = hf_xstrdup("cannot start the HTTP worker threads");
			rc = HF_EIO;
			goto fail_workers;
		}
	}
	if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0) {
		*err = hf_xstrdup("cannot start the HTTP acceptor thread");
		rc = HF_EIO;
		goto fail_workers;
	}
	s->acceptor_started = true;
	*out = s;
	return 0;
fail_workers:
	pthread_mutex_lock(&s->lock);
	s->workers_stop = true;
	pthread_cond_broadcast(&s->job_cv);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
fail_daemon:
	MHD_stop_daemon(s->daemon);
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
	return s && stopping(s);
}

void hf_http_stop(struct hf_http_server *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	atomic_store(&s->stopping, true);
	/* No new connections; those still in their head phase are closed. */
	(void)!write(s->evfd, &one, sizeof(one));
	if (s->acceptor_started)
		pthread_join(s->acceptor, NULL);
	/*
	 * Everything suspended is resumed: deferred answers (they see
	 * woken), idle streams (they see stopping) and work not started
	 * (answered 503). Nothing suspends again once stopping is set.
	 */
	pthread_mutex_lock(&s->lock);
	while (s->waits)
		resume_waiting(s, s->waits, true);
	while (s->job_head) {
		struct srv_call *sc = s->job_head;

		s->job_head = sc->jnext;
		if (sc->job == JOB_HANDLER) {
			answer_stopping(&sc->resp);
			sc->ready = true;
		} else {
			sc->st->step_rc = 1;
			sc->st->step_done = true;
		}
		sc->job = JOB_NONE;
		MHD_resume_connection(sc->con);
	}
	s->job_tail = NULL;
	s->workers_stop = true;
	pthread_cond_broadcast(&s->job_cv);
	pthread_mutex_unlock(&s->lock);
	/* Work in progress finishes (and resumes its connection). */
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	/*
	 * The answers just made (and streams' last bytes) go out before the
	 * connections close, for a little while at most.
	 */
	{
		struct timespec until;

		hf_deadline_after_ms(&until, HTTP_STOP_DRAIN_S * 1000);
		pthread_mutex_lock(&s->lock);
		while (s->answering > 0)
			if (pthread_cond_timedwait(&s->done_cv, &s->lock,
						   &until))
				break;
		pthread_mutex_unlock(&s->lock);
	}
	MHD_stop_daemon(s->daemon);
	server_free(s);
}
