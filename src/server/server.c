/*
 * server.c - `holdfast server`: opens the store, loads the state, serves
 * the API and runs the scheduler until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "http/cred.h"
#include "http/http.h"
#include "common/cmd.h"
#include "common/err.h"
#include "common/version.h"
#include "server/api.h"
#include "server/cluster.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/autoscale.h"
#include "server/backups.h"
#include "server/dr.h"
#include "server/stacks.h"
#include "server/remotes.h"
#include "server/nodeauth.h"
#include "server/sched.h"
#include "server/server.h"
#include "server/state.h"
#include "volume/crypt.h"

#define TICK_MS 200
/*
 * After a tick that took longer than this, changes gather for as long as
 * it took before the next one: reports come in a few at a time (the HTTP
 * layer serves them from a small thread pool, and each waits for the lock
 * the tick holds), and one tick for many of them costs far less than one
 * each. So a busy scheduler holds the lock at most about half the time;
 * a quick tick (a few changes) is followed at once by the next.
 */
#define TICK_GATHER_MIN_MS 5

#define HF_SWAP(a, b)                                                          \
	do {                                                                   \
		__typeof__(a) swap_tmp_ = (a);                                 \
		(a) = (b);                                                     \
		(b) = swap_tmp_;                                               \
	} while (0)

static void *sched_thread(void *arg)
{
	struct hf_srv *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping && !s->store_failed) {
		struct timespec until;
		int64_t wake, took, began = hf_now_ms();

		/*
		 * One tick acts on everything that changed since the last one
		 * (reports of many agents, API calls); then the desired sets
		 * that changed are published to their agents' long polls.
		 * After a failed write nothing more is decided: the main loop
		 * steps down. A batch a handler is committing goes first.
		 */
		hf_state_wait_commit(s);
		hf_sched_tick(s);
		s->tick_wanted = false;
		if (s->store_failed)
			break;
		if (s->desired_dirty || !s->node_lists_valid) {
			s->desired_dirty = false;
			hf_sched_publish(s);
		}
		/* Let the next changes gather (the lock is free meanwhile). */
		took = hf_now_ms() - began;
		if (took > TICK_GATHER_MIN_MS) {
			int64_t gathered = hf_now_ms() + took;

			until.tv_sec = (time_t)(gathered / 1000);
			until.tv_nsec = (long)(gathered % 1000) * 1000000L;
			while (!s->stopping && hf_now_ms() < gathered)
				if (pthread_cond_timedwait(&s->changed, &s->mu,
							   &until) == ETIMEDOUT)
					break;
		}
		/* The next tick, or sooner when a restart backoff ends. */
		wake = hf_now_ms() + TICK_MS;
		if (s->next_wake_ms && s->next_wake_ms < wake)
			wake = s->next_wake_ms;
		until.tv_sec = (time_t)(wake / 1000);
		until.tv_nsec = (long)(wake % 1000) * 1000000L;
		while (!s->tick_wanted && !s->stopping)
			if (pthread_cond_timedwait(&s->changed, &s->mu, &until) ==
			    ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * Tokens file: one "<role> <token>" per line; '#' comments. Other users
 * must not be able to read it (cred.h): such a file is refused.
 */
static int load_tokens(const char *path, struct hf_kvlist *out, char **err)
{
	char *text = NULL, *line, *save = NULL;
	int rc = hf_cred_read_private(path, "tokens file", 1 << 20, &text,
				      NULL, err);
	int lineno = 0;

	if (rc)
		return rc;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char role[16], token[256];

		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		if (sscanf(line, "%15s %255s", role, token) != 2 ||
		    (strcmp(role, "admin") && strcmp(role, "read") &&
		     strcmp(role, "agent") && strcmp(role, "join"))) {
			*err = hf_xasprintf("%s:%d: expected '<admin|read|agent> "
					    "<token>'",
					    path, lineno);
			explicit_bzero(text, strlen(text));
			free(text);
			return HF_EINVAL;
		}
		hf_kvlist_set(out, token, role);
		explicit_bzero(token, sizeof(token));
	}
	explicit_bzero(text, strlen(text));
	free(text);
	return 0;
}

/*
 * The names clients may reach this server by, besides IP literals and
 * "localhost": the advertised URL's host, this machine's name, and
 * --allow-host. Lower case.
 */
static void allowed_hosts(const struct hf_server_opts *o, const char *advertise,
			  struct hf_strlist *out)
{
	char name[256] = "";

	if (gethostname(name, sizeof(name) - 1) == 0 && name[0])
		hf_strlist_push(out, name);
	if (advertise) {
		const char *h = strstr(advertise, "://");

		h = h ? h + 3 : advertise;
		if (*h != '[') {
			char *host = hf_xstrndup(h, strcspn(h, ":/"));

			if (*host)
				hf_strlist_push(out, host);
			free(host);
		}
	}
	for (size_t i = 0; o->allow_hosts && i < o->allow_hosts->len; i++)
		hf_strlist_push(out, o->allow_hosts->items[i]);
	for (size_t i = 0; i < out->len; i++)
		for (char *c = out->items[i]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
}

/*
 * The local admin credential (cred.h): HOLDFAST_ADMIN_TOKEN's, as `holdfast
 * dev` hands it over, else, for a server without a tokens file, a new one
 * each start; NULL for a server with a tokens file (its operator hands out
 * the credentials). Caller frees.
 */
static char *local_admin_token(bool tokens_file)
{
	char *t = hf_cred_take_env("HOLDFAST_ADMIN_TOKEN");

	return t || tokens_file ? t : hf_cred_new_token();
}

/*
 * Leaves the local credential where this user's CLI and agents look for
 * it (a server without a tokens file listens on loopback only). Returns
 * whether it was written (the file is removed again at exit).
 */
static bool save_local_credential(const char *listen, int port,
				  const char *token)
{
	char *path = NULL, *err = NULL;
	bool ok;

	if (!hf_http_listen_is_loopback(listen))
		return false;
	ok = hf_cred_local_save(port, token, &path, &err) == 0;
	if (ok)
		hf_log("this user's CLI and agents on this machine find the "
		       "admin credential in %s",
		       path);
	else
		hf_log("cannot leave the admin credential for this user's "
		       "CLI: %s; give it a token (HOLDFAST_TOKEN)",
		       err);
	free(path);
	free(err);
	return ok;
}

static void on_request(void *ctx, const struct hf_http_req *req, int status,
		       double seconds)
{
	struct hf_srv *s = ctx;

	hf_api_metrics_record(s->api_metrics, req->method, req->route, status,
			      seconds);
}

/* ------------------------------------------------------------------ */
/* Answers that do not come from the state                              */

/*
 * A store write failed, or the store cannot be written now: writes are
 * refused with the cause, so a client gets an answer, not a reset.
 */
static void answer_unwritable(struct hf_http_resp *resp, const char *why)
{
	hf_http_error(resp, HF_EUNWRITABLE,
		      "the store cannot be written: %s; this server answers "
		      "reads and takes writes again by itself once the store "
		      "does",
		      why);
}

/* The store could not be read, or holds a damaged record. */
static void answer_unreadable(struct hf_http_resp *resp, const char *why)
{
	hf_http_error(resp, HF_EUNREADABLE,
		      "%s; this server does not act or answer from the store "
		      "until it can read all of it",
		      why);
}

/* The route of api.c a request took. */
static const struct hf_http_route *route_find(const struct hf_http_req *req)
{
	size_t n;
	const struct hf_http_route *r = hf_server_routes(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].method, req->method) == 0 &&
		    strcmp(r[i].pattern, req->route) == 0)
			return &r[i];
	return NULL;
}

/*
 * Routes whose answer does not come from the state: the backup reads the
 * store itself, so it is served whether or not this server leads, also
 * when the store cannot be written.
 */
static bool stateless(const struct hf_http_req *req)
{
	return strcmp(req->route, "/v1/version") == 0 ||
	       strcmp(req->route, "/v1/store/backup") == 0;
}

/*
 * Routes that copy what they need under srv->mu and then talk to an
 * agent for long (exec: up to two minutes): they need not hold the term,
 * so a step-down does not wait for them.
 */
static bool holds_no_state(const struct hf_http_req *req)
{
	return strncmp(req->route, "/v1/tasks/", 10) == 0;
}

static void h_follower(struct hf_srv *s, struct hf_http_resp *resp);
static void h_leader(struct hf_srv *s, struct hf_http_resp *resp);
static void h_follower_read(struct hf_srv *s, hf_http_handler fn,
			    const struct hf_http_req *req,
			    struct hf_http_resp *resp);
static bool follower_serves(const struct hf_http_route *r);

/*
 * Every request goes through here, on one API that serves for the
 * server's whole life, so that leading, stepping down and leading again
 * never close the port under a client. A leader's handler runs inside the
 * term (s->term held for reading): the state it points into is not freed
 * under it. Once a store write has failed, the memory may hold what the
 * store does not: the request is answered 503 with the cause, and so is
 * one that was running when the write failed (its answer, a desired set
 * or an acknowledgement, may rest on what was not written). A server that
 * does not lead answers from its view of the store (h_follower*).
 */
static void h_front(void *ctx, const struct hf_http_req *req,
		    struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	const struct hf_http_route *route = route_find(req);
	bool leading, term = !holds_no_state(req);
	char *why = NULL;

	if (!route) {
		hf_http_error(resp, HF_EINTERNAL, "no handler for %s %s",
			      req->method, req->route);
		return;
	}
	if (stateless(req)) {
		route->fn(s, req, resp);
		return;
	}
	/* A GET changes nothing: it need not wait for a commit (state.h). */
	hf_state_set_reader(strcmp(req->method, "GET") == 0 ||
			    strcmp(req->method, "HEAD") == 0);
	if (term)
		pthread_rwlock_rdlock(&s->term);
	pthread_mutex_lock(&s->mu);
	leading = s->leading;
	if (leading && s->store_failed)
		why = hf_xstrdup(s->store_error);
	pthread_mutex_unlock(&s->mu);
	if (leading && !why) {
		route->fn(s, req, resp);
		pthread_mutex_lock(&s->mu);
		if (s->store_failed)
			why = hf_xstrdup(s->store_error);
		pthread_mutex_unlock(&s->mu);
		if (why) {
			hf_http_resp_release(resp);
			memset(resp, 0, sizeof(*resp));
		}
	}
	hf_state_set_reader(false);
	if (term)
		pthread_rwlock_unlock(&s->term);
	if (why)
		answer_unwritable(resp, why);
	else if (leading)
		; /* answered by the leader's handler */
	else if (strcmp(req->route, "/v1/leader") == 0)
		h_leader(s->view, resp);
	else if (follower_serves(route))
		h_follower_read(s->view, route->fn, req, resp);
	else
		h_follower(s->view, resp);
	free(why);
}

/* The API's table: api.c's routes, each through h_front. */
static struct hf_http_route *front_table(size_t *n)
{
	size_t nroutes;
	const struct hf_http_route *routes = hf_server_routes(&nroutes);
	struct hf_http_route *t = hf_xcalloc(nroutes, sizeof(*t));

	for (size_t i = 0; i < nroutes; i++) {
		t[i] = routes[i];
		t[i].fn = h_front;
	}
	*n = nroutes;
	return t;
}

/* ------------------------------------------------------------------ */
/* Not leading                                                          */

/*
 * What a server that does not lead answers besides reads: the cause it
 * knows. A store that cannot be written (a single server whose disk is
 * full): 503 store-unwritable; a store it cannot read or that holds a
 * damaged record: 503 store-unreadable; another server leads: 503
 * not-leader with its URL, which the CLI and agents follow; nobody leads
 * yet (or the leader key still names this server, from before a restart):
 * 503 no-leader, without a URL, so nobody is sent in a circle.
 */
static void h_follower(struct hf_srv *s, struct hf_http_resp *resp)
{
	pthread_mutex_lock(&s->mu);
	if (s->store_error) {
		answer_unwritable(resp, s->store_error);
	} else if (s->load_error) {
		answer_unreadable(resp, s->load_error);
	} else if (s->leader_url && strcmp(s->leader_url, s->opts.advertise)) {
		hf_http_json(resp, hf_err_http(HF_ENOTLEADER),
			     json_pack("{s:s, s:s, s:s}", "error",
				       hf_err_name(HF_ENOTLEADER), "message",
				       "this server is not the leader; send "
				       "requests to the leader",
				       "leader", s->leader_url));
		hf_kvlist_set(&resp->headers, "X-Holdfast-Leader",
			      s->leader_url);
	} else {
		hf_http_error(resp, HF_ENOLEADER,
			      "no server leads yet%s; try again in a few "
			      "seconds",
			      s->leader_url ? " (the leader key still names "
					      "this server, from before it "
					      "restarted; its lease runs out "
					      "first)"
					    : "");
	}
	pthread_mutex_unlock(&s->mu);
}

static void h_leader(struct hf_srv *s, struct hf_http_resp *resp)
{
	pthread_mutex_lock(&s->mu);
	hf_http_json(resp, 200,
		     json_pack("{s:o, s:s, s:b}", "leader",
			       s->leader_url &&
				       strcmp(s->leader_url, s->opts.advertise)
				   ? json_string(s->leader_url)
				   : json_null(),
			       "self", s->opts.advertise, "leading", false));
	pthread_mutex_unlock(&s->mu);
}

/*
 * A follower's reads come from its view of the store; when the view could
 * not be loaded the answer says why, never an empty list.
 */
static void h_follower_read(struct hf_srv *s, hf_http_handler fn,
			    const struct hf_http_req *req,
			    struct hf_http_resp *resp)
{
	char *why = NULL;

	pthread_mutex_lock(&s->mu);
	if (s->load_error)
		why = hf_xstrdup(s->load_error);
	pthread_mutex_unlock(&s->mu);
	if (why)
		answer_unreadable(resp, why);
	else
		fn(s, req, resp);
	free(why);
}

/*
 * A follower answers the leader's plain reads (services, plans, pods,
 * endpoints, configurations, nodes) from a view of the store it reloads
 * about every second; the rest (writes, the agents' sync, events, logs,
 * exec, metrics) is the leader's.
 */
static bool follower_serves(const struct hf_http_route *r)
{
	return strcmp(r->method, "GET") == 0 && !(r->flags & HF_ROUTE_STREAM) &&
	       strcmp(r->pattern, "/v1/leader") != 0 &&
	       strcmp(r->pattern, "/metrics") != 0 &&
	       strncmp(r->pattern, "/v1/tasks/", 10) != 0;
}

/* Frees the services and nodes of a server or a follower's view. */
static void release_state(struct hf_srv *v)
{
	hf_state_release(v);
}

static void free_view(struct hf_srv *view)
{
	if (!view)
		return;
	release_state(view);
	free(view->leader_url);
	free(view->store_error);
	free(view->load_error);
	pthread_mutex_destroy(&view->mu);
	pthread_cond_destroy(&view->changed);
	pthread_cond_destroy(&view->commit_done);
	free(view);
}

static void set_str(char **dst, const char *src)
{
	if (*dst && src && strcmp(*dst, src) == 0)
		return;
	free(*dst);
	*dst = src ? hf_xstrdup(src) : NULL;
}

/*
 * Reloads a follower's view from the store. When the store cannot be
 * read, the view keeps no stale state: its reads answer the reason.
 * Returns whether it loaded.
 */
static bool refresh_view(struct hf_srv *s, struct hf_srv *view)
{
	struct hf_srv fresh = {0};
	char *err = NULL;

	fresh.store = s->store;
	fresh.opts = s->opts;
	hf_state_load(&fresh, &err);
	pthread_mutex_lock(&view->mu);
	HF_SWAP(view->model, fresh.model);
	HF_SWAP(view->cluster_id, fresh.cluster_id);
	set_str(&view->load_error, err);
	pthread_mutex_unlock(&view->mu);
	release_state(&fresh);
	free(err);
	return err == NULL;
}

/*
 * What a follower's answers say about the leader and the store:
 * store_error (may be NULL) is why the store cannot be written.
 */
static void view_status(struct hf_srv *s, struct hf_srv *view,
			const char *store_error)
{
	pthread_mutex_lock(&s->mu);
	pthread_mutex_lock(&view->mu);
	set_str(&view->leader_url, s->leader_url);
	set_str(&view->store_error, store_error);
	pthread_mutex_unlock(&view->mu);
	pthread_mutex_unlock(&s->mu);
}

/*
 * Campaigns for the leader key with a lease. Returns 1 when this server
 * leads (s->fence_rev set), 0 when another one does (s->leader_url set),
 * <0 on a store error.
 */
static int campaign(struct hf_srv *s)
{
	char *value = NULL, *leader = NULL;
	int64_t rev = 0;
	bool won = false;
	json_t *v;
	int rc;

	/*
	 * A lease kept from an earlier campaign may have run out meanwhile
	 * (nobody renews it while following): campaigning with it would
	 * lose to any key, a stale one included, forever.
	 */
	if (s->lease && hf_store_lease_keepalive(s->store, s->lease, NULL))
		s->lease = 0;
	if (!s->lease) {
		rc = hf_store_lease_grant(s->store, s->opts.lease_ttl, &s->lease);
		if (rc)
			return rc;
	}
	v = json_pack("{s:s, s:I}", "url", s->opts.advertise, "since",
		      (json_int_t)hf_now_ms());
	value = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	rc = hf_store_campaign(s->store, HF_LEADER_KEY, value, s->lease, &won,
			       &leader, &rev);
	free(value);
	if (rc == HF_ENOTFOUND) {
		/* Our lease expired before we won: start with a new one. */
		s->lease = 0;
		return 0;
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	free(s->leader_url);
	s->leader_url = NULL;
	if (leader) {
		json_error_t jerr;
		json_t *l = json_loads(leader, 0, &jerr);
		const char *url = json_string_value(json_object_get(l, "url"));

		s->leader_url = url ? hf_xstrdup(url) : NULL;
		json_decref(l);
	}
	if (won) {
		free(s->leader_url);
		s->leader_url = hf_xstrdup(s->opts.advertise);
		s->fence_rev = rev;
	}
	pthread_mutex_unlock(&s->mu);
	free(leader);
	return won ? 1 : 0;
}

static char *default_advertise(const char *listen, int port, bool tls)
{
	const char *colon = strrchr(listen, ':');
	size_t hostlen = colon ? (size_t)(colon - listen) : 0;
	char *host = hf_xstrndup(listen, hostlen);
	char *url;

	if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0) {
		free(host);
		host = hf_xstrdup("127.0.0.1");
	}
	url = hf_xasprintf("%s://%s:%d", tls ? "https" : "http", host, port);
	free(host);
	return url;
}

/* ------------------------------------------------------------------ */
/* The main loop: follow (or wait for a usable store), lead, step down  */

struct run {
	struct hf_srv *s;
	struct hf_srv *view;           /* what a server that does not lead serves */
	int sfd;                       /* signals */
	int wakefd;                    /* eventfd: a store write failed */
	bool single;                   /* a single-process store: no other server */
	char *said;                    /* the last state logged, not to repeat it */
	bool sched_started;
};

/* Logs a line about the server's state when it differs from the last. */
static void say(struct run *r, const char *fmt, ...) HF_PRINTF(2, 3);

static void say(struct run *r, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (!r->said || strcmp(r->said, hf_buf_str(&b)) != 0) {
		hf_log("%s", hf_buf_str(&b));
		free(r->said);
		r->said = hf_buf_detach(&b);
	}
	hf_buf_release(&b);
}

/* Called by state.c, mu held, when a store write fails. */
static void wake_main(struct hf_srv *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		errno = 0; /* an eventfd write only fails when it is full */
}

/* Waits up to ms for a signal (returns 1) or the wake fd (returns 2). */
static int wait_events(struct run *r, int ms)
{
	struct pollfd p[2] = {{r->sfd, POLLIN, 0}, {r->wakefd, POLLIN, 0}};
	uint64_t n;

	if (poll(p, 2, ms) <= 0)
		return 0;
	if (p[0].revents)
		return 1;
	if (read(r->wakefd, &n, sizeof(n)) < 0)
		errno = 0;
	return 2;
}

static void loaded_state_free(struct hf_srv *s)
{
	release_state(s);
	hf_cluster_release(s);
}

/*
 * Until this server may lead: about every second, reload the view that
 * answers reads, and campaign when it loaded (a store with a damaged
 * record is not led: its reads answer why); once the campaign is won,
 * load the state. Returns 1 with the state loaded and the lead held, 0 on
 * SIGINT/SIGTERM.
 */
static int follow(struct run *r)
{
	struct hf_srv *s = r->s;
	char *unwritable = NULL;
	int rc = 0;

	for (;;) {
		char *err = NULL, *cred_err = NULL;
		bool creds;
		int won;

		/*
		 * Nodes' credentials too, so an agent that syncs here is told
		 * where the leader is or why none leads (503), not that it is
		 * unknown (401). Those that cannot be read keep the last ones.
		 */
		creds = hf_nodeauth_load(s, &cred_err) == 0;
		if (!refresh_view(s, r->view)) {
			pthread_mutex_lock(&r->view->mu);
			say(r, "cannot lead: %s", r->view->load_error);
			pthread_mutex_unlock(&r->view->mu);
			free(cred_err);
			goto wait;
		}
		if (!creds) {
			pthread_mutex_lock(&r->view->mu);
			set_str(&r->view->load_error, cred_err);
			pthread_mutex_unlock(&r->view->mu);
			say(r, "cannot lead: %s", cred_err);
			free(cred_err);
			goto wait;
		}
		won = campaign(s);
		free(unwritable);
		unwritable = NULL;
		if (won == 1) {
			if (hf_state_load(s, &err) == 0 &&
			    hf_nodeauth_load(s, &err) == 0) {
				rc = 1;
				break;
			}
			/* It changed since the view loaded: give the lead up. */
			say(r, "cannot lead: %s", err);
			free(err);
			loaded_state_free(s);
			if (s->lease)
				hf_store_lease_revoke(s->store, s->lease);
			s->lease = 0;
			s->fence_rev = 0;
			pthread_mutex_lock(&s->mu);
			free(s->leader_url);
			s->leader_url = NULL;
			pthread_mutex_unlock(&s->mu);
		} else if (won < 0) {
			if (r->single)
				unwritable =
				    hf_xstrdup(hf_store_last_error(s->store));
			say(r, "cannot campaign: %s (%s); retrying",
			    hf_err_msg(won), hf_store_last_error(s->store));
		} else if (s->leader_url &&
			   strcmp(s->leader_url, s->opts.advertise) == 0) {
			say(r, "the leader key still names this server (from "
			       "before a restart); waiting for its lease to "
			       "run out");
		} else if (s->leader_url) {
			say(r, "following the leader at %s", s->leader_url);
		}
		view_status(s, r->view, unwritable);
wait:
		if (wait_events(r, 1000) == 1)
			break;
	}
	free(unwritable);
	return rc;
}

/*
 * Stops acting on the state in memory after a failed store write: the
 * scheduler stops, the leader's handlers in flight finish (answered 503 by
 * h_front; long polls are woken), then, inside the term, the state is
 * freed and the server no longer leads; its lease is given up. Its API
 * goes on answering, from the view of the store.
 */
static void step_down(struct run *r)
{
	struct hf_srv *s = r->s;

	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	/* Held long polls are answered now (api.c's sync_resume). */
	for (size_t i = 0; i < s->model.nodes.len; i++)
		hf_http_wake(s->http, &s->model.nodes.items[i]->link->waitq);
	pthread_mutex_unlock(&s->mu);
	hf_backups_stop();
	hf_autoscale_stop();
	hf_remotes_stop();
	hf_dr_stop();
	hf_stacks_stop();
	if (r->sched_started)
		pthread_join(s->sched, NULL);
	r->sched_started = false;
	refresh_view(s, r->view);
	view_status(s, r->view, s->store_error);
	pthread_rwlock_wrlock(&s->term);
	pthread_mutex_lock(&s->mu);
	loaded_state_free(s);
	hf_state_batch_discard(s);
	s->batching = 0;
	hf_events_release_held(s, false);
	hf_strlist_release(&s->held_logs);
	s->leading = false;
	s->stopping = false;
	s->store_failed = false;
	free(s->store_error);
	s->store_error = NULL;
	s->fence_rev = 0;
	s->tick_wanted = s->desired_dirty = false;
	s->next_wake_ms = 0;
	free(s->leader_url);
	s->leader_url = NULL;
	hf_state_moved(s);
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_unlock(&s->term);
	if (s->lease)
		hf_store_lease_revoke(s->store, s->lease);
	s->lease = 0;
	free(r->said);
	r->said = NULL;
}

/*
 * Leads: the state is loaded and the lease held. Returns 1 on
 * SIGINT/SIGTERM, 0 after stepping down (a store write failed), <0 when
 * the scheduler cannot start.
 */
static int lead(struct run *r)
{
	struct hf_srv *s = r->s;
	int64_t ttl_ms = (int64_t)s->opts.lease_ttl * 1000, last_ok;

	if (!s->events)
		s->events = hf_events_open(s->opts.data);
	if (!s->api_metrics)
		s->api_metrics = hf_api_metrics_new();
	pthread_rwlock_wrlock(&s->term);
	pthread_mutex_lock(&s->mu);
	hf_cluster_ensure(s);
	/* Reports acknowledged before are not in this term's memory. */
	{
		char *e = hf_random_hex(16);

		snprintf(s->reports_epoch, sizeof(s->reports_epoch), "%s", e);
		free(e);
	}
	s->leading = true;
	pthread_mutex_unlock(&s->mu);
	pthread_rwlock_unlock(&s->term);
	hf_log("leading (fencing revision %lld, cluster %s): %zu service%s, "
	       "%zu node%s",
	       (long long)s->fence_rev, s->cluster_id ? s->cluster_id : "-",
	       s->model.services.len, s->model.services.len == 1 ? "" : "s", s->model.nodes.len,
	       s->model.nodes.len == 1 ? "" : "s");
	free(r->said);
	r->said = NULL;
	if (pthread_create(&s->sched, NULL, sched_thread, s) != 0) {
		hf_log("cannot start the scheduler thread");
		return -1;
	}
	r->sched_started = true;
	hf_backups_start(s);
	hf_autoscale_start(s);
	hf_remotes_start(s);
	hf_dr_start(s);
	hf_stacks_start(s);
	/*
	 * Keep the lease. A leader that cannot renew it in time stops acting
	 * before it could have expired: another server may lead by then.
	 */
	last_ok = hf_now_ms();
	for (;;) {
		int left = 0, krc, ev;
		bool failed;

		pthread_mutex_lock(&s->mu);
		failed = s->store_failed;
		pthread_mutex_unlock(&s->mu);
		if (failed)
			break;
		ev = wait_events(r, (int)(ttl_ms / 3));
		if (ev == 1)
			return 1;
		if (ev == 2)
			continue;
		krc = hf_store_lease_keepalive(s->store, s->lease, &left);
		if (krc == 0) {
			last_ok = hf_now_ms();
			continue;
		}
		if (krc == HF_ENOTFOUND ||
		    hf_now_ms() - last_ok > ttl_ms * 2 / 3) {
			hf_log("lost the lead (%s); stopping at once so "
			       "no two servers act",
			       krc == HF_ENOTFOUND ? "lease expired"
						   : "store unreachable");
			_exit(1);
		}
	}
	hf_log("stepping down: the store cannot be written (%s); answering "
	       "reads from the store until it can",
	       s->store_error);
	step_down(r);
	return 0;
}

/*
 * The data directory holds the store, events and secrets: the owner's
 * only. One that exists with a looser mode is tightened, and the log says
 * so. The lock on <data>/server.lock keeps a second server off it.
 */
static int prepare_data_dir(const char *dir, int *lock_fd)
{
	char *lock = hf_xasprintf("%s/server.lock", dir);
	struct stat st;
	long holder = 0;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		hf_log("cannot create the data directory %s: %s", dir,
		       strerror(errno));
		rc = -1;
		goto out;
	}
	if (stat(dir, &st) == 0 && (st.st_mode & 077)) {
		if (chmod(dir, st.st_mode & 0700) == 0)
			hf_log("the data directory %s was readable by others "
			       "(mode %03o): made it %03o, as it holds the "
			       "store and its secrets",
			       dir, (unsigned)(st.st_mode & 0777),
			       (unsigned)(st.st_mode & 0700));
		else
			hf_log("the data directory %s is readable by others "
			       "(mode %03o) and cannot be changed: %s",
			       dir, (unsigned)(st.st_mode & 0777),
			       strerror(errno));
	}
	rc = hf_lock_file(lock, lock_fd, &holder);
	if (rc == HF_EUNAVAIL)
		hf_log("the data directory %s is in use by another holdfast "
		       "server%s%.0ld%s; give each server its own --data",
		       dir, holder ? " (pid " : "", holder, holder ? ")" : "");
	else if (rc)
		hf_log("cannot lock %s: %s", lock, strerror(errno));
out:
	free(lock);
	return rc;
}

/*
 * Reads the cluster key into o (--cluster-key-file, else the environment's
 * HOLDFAST_CLUSTER_KEY). Returns 0 (none given is fine), or -1 after
 * saying why; the key's text never goes into a message.
 */
static int load_cluster_key(struct hf_server_opts *o)
{
	const char *env = getenv("HOLDFAST_CLUSTER_KEY");
	char *text = NULL;
	const char *from;
	int rc;

	if (o->cluster_key_file) {
		struct stat st;

		from = o->cluster_key_file;
		if (hf_read_file(from, 4096, &text, NULL)) {
			hf_log("cannot read the cluster key file %s: %s", from,
			       strerror(errno));
			return -1;
		}
		if (stat(from, &st) == 0 && (st.st_mode & 077))
			hf_log("warning: the cluster key file %s can be read "
			       "by others than its owner (chmod 600 it)",
			       from);
	} else if (env && *env) {
		from = "HOLDFAST_CLUSTER_KEY";
		text = hf_xstrdup(env);
	} else {
		return 0;
	}
	rc = hf_vol_cluster_key_parse(text, o->cluster_key);
	explicit_bzero(text, strlen(text));
	free(text);
	if (rc) {
		hf_log("%s is no cluster key: it must hold 64 hex digits (32 "
		       "bytes; `openssl rand -hex 32` makes one)",
		       from);
		return -1;
	}
	o->have_cluster_key = true;
	return 0;
}

int hf_server_run(const struct hf_server_opts *in_opts)
{
	struct hf_server_opts opts = *in_opts;
	struct hf_srv *s = hf_xcalloc(1, sizeof(*s));
	struct run r = {0};
	struct hf_kvlist tokens = {0};
	struct hf_strlist hosts = {0};
	struct hf_http_opts ho = {0};
	struct hf_http_route *table = NULL;
	char *admin_token = NULL;
	bool cred_saved = false;
	size_t file_tokens;
	pthread_rwlockattr_t rwa;
	char *store_url = NULL, *err = NULL, *advertise = NULL;
	size_t ntable = 0;
	sigset_t mask;
	int lock_fd = -1, rc = HF_EXIT_FAIL;

	if (!opts.listen)
		opts.listen = "127.0.0.1:7070";
	if (!opts.data)
		opts.data = "/var/lib/holdfast/server";
	if (opts.backoff_base <= 0)
		opts.backoff_base = 1;
	if (opts.backoff_max <= 0)
		opts.backoff_max = 60;
	if (opts.backoff_reset <= 0)
		opts.backoff_reset = 120;
	if (opts.node_timeout <= 0)
		opts.node_timeout = 15;
	if (opts.rereplicate_after <= 0)
		opts.rereplicate_after = 600;
	if (opts.lease_ttl <= 0)
		opts.lease_ttl = 5;
	if (!opts.max_connections)
		opts.max_connections = 2048;
	/* Whatever the server writes is its owner's only. */
	umask(077);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->changed, NULL);
	pthread_cond_init(&s->commit_done, NULL);
	/*
	 * Writers first: once a step-down waits for the term, new requests
	 * wait for it too, so a stream of them cannot hold it off.
	 */
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(&rwa,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->term, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	hf_nodeauth_init(s);
	s->opts = opts;
	s->wake_fd = -1;
	r.s = s;
	r.sfd = r.wakefd = -1;
	/*
	 * Desired-set generations start from the clock (in µs), so they grow
	 * across restarts and leader changes: an agent never mistakes a new
	 * server's set for one it already has.
	 */
	s->generation = (uint64_t)hf_now_ms() * 1000;
	if (load_cluster_key(&s->opts))
		goto out;
	if (prepare_data_dir(opts.data, &lock_fd))
		goto out;
	store_url = opts.store ? hf_xstrdup(opts.store)
			       : hf_xasprintf("sqlite:%s/holdfast.db", opts.data);
	rc = hf_store_open(store_url, &s->store);
	if (rc) {
		hf_log("cannot open the store %s: %s", store_url,
		       hf_store_last_error(NULL));
		rc = HF_EXIT_FAIL;
		goto out;
	}
	rc = HF_EXIT_FAIL;
	hf_log("store %s", store_url);
	/*
	 * A single-process store (SQLite, memory) is ours alone (its file
	 * lock says so): there is no other server to lead or to hand over
	 * to. A leader key left by a crash is taken over by the campaign.
	 */
	r.single = strcmp(hf_store_backend_name(s->store), "etcd") != 0;
	if (opts.tokens && load_tokens(opts.tokens, &tokens, &err)) {
		hf_log("%s", err);
		goto out;
	}
	file_tokens = tokens.len;
	if (!file_tokens && !hf_http_listen_is_loopback(opts.listen)) {
		hf_log("refusing to listen on %s without tokens: no agent "
		       "elsewhere could join nor any client use the API. Give "
		       "--tokens FILE, or listen on a loopback address",
		       opts.listen);
		goto out;
	}
	/* Every request needs a credential; this user's is this one. */
	admin_token = local_admin_token(file_tokens > 0);
	if (admin_token)
		hf_kvlist_set(&tokens, admin_token, "admin");

	/* Signals become a file descriptor; no logic in handlers. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	r.sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	r.wakefd = s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r.sfd < 0 || r.wakefd < 0) {
		hf_log("cannot make the server's event descriptors: %s",
		       strerror(errno));
		goto out;
	}
	s->on_store_failed = wake_main;

	ho.listen = opts.listen;
	ho.tls_cert = opts.tls_cert;
	ho.tls_key = opts.tls_key;
	ho.client_ca = opts.client_ca;
	ho.tokens = &tokens;
	ho.on_request = on_request;
	ho.max_connections = opts.max_connections;
	ho.max_per_ip = opts.max_connections_per_ip;
	ho.request_timeout = opts.request_timeout;
	allowed_hosts(&opts, opts.advertise, &hosts);
	ho.hosts = &hosts;
	/* Nodes' own credentials (loaded with the state, nodeauth.c). */
	ho.authenticate = hf_nodeauth_authenticate;
	table = front_table(&ntable);

	/*
	 * Until it leads, a server answers reads from a view of the store,
	 * and everything else with why it does not act (h_follower).
	 */
	r.view = s->view = hf_xcalloc(1, sizeof(*r.view));
	pthread_mutex_init(&r.view->mu, NULL);
	pthread_cond_init(&r.view->changed, NULL);
	pthread_cond_init(&r.view->commit_done, NULL);
	r.view->opts = s->opts;
	r.view->store = s->store;
	r.view->generation = 1;
	/* Known agents are recognised from the first request (see follow). */
	if (hf_nodeauth_load(s, &err)) {
		hf_log("%s", err); /* and follow() says what it means */
		free(err);
		err = NULL;
	}
	if (hf_http_start(&ho, table, ntable, s, &s->http, &err)) {
		hf_log("cannot serve the API on %s: %s", opts.listen,
		       err ? err : "unknown error");
		goto out;
	}
	s->api_port = hf_http_port(s->http);
	if (!opts.advertise) {
		advertise = default_advertise(opts.listen, s->api_port,
					      opts.tls_cert != NULL);
		s->opts.advertise = advertise;
	}
	if (!file_tokens) {
		cred_saved = save_local_credential(opts.listen, s->api_port,
						   admin_token);
		hf_log("no tokens file: only this user, on this machine, can "
		       "use the API (and run agents)");
	}
	if (opts.port_file) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%d\n", s->api_port);
		hf_write_file_atomic(opts.port_file, buf, strlen(buf), 0644);
	}
	pthread_mutex_lock(&r.view->mu);
	r.view->opts.advertise = s->opts.advertise;
	pthread_mutex_unlock(&r.view->mu);
	hf_log("holdfast %s server on %s (%s); campaigning for the lead",
	       HF_VERSION, opts.listen, s->opts.advertise);
	for (;;) {
		int lrc;

		if (!follow(&r))
			break;
		lrc = lead(&r);
		if (lrc < 0)
			goto out;
		if (lrc == 1)
			break;
	}
	hf_log("stopping (tasks keep running on their nodes)");
	if (s->leading && s->lease)
		hf_store_lease_revoke(s->store, s->lease);
	rc = HF_EXIT_OK;
out:
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	/* Held long polls are answered now (api.c's sync_resume). */
	for (size_t i = 0; i < s->model.nodes.len; i++)
		hf_http_wake(s->http, &s->model.nodes.items[i]->link->waitq);
	pthread_mutex_unlock(&s->mu);
	hf_backups_stop();
	hf_autoscale_stop();
	hf_remotes_stop();
	hf_dr_stop();
	hf_stacks_stop();
	if (r.sched_started)
		pthread_join(s->sched, NULL);
	/* Held long polls are answered as the layer stops. */
	if (s->http)
		hf_http_stop(s->http);
	if (cred_saved)
		hf_cred_local_forget(s->api_port, admin_token);
	free_view(r.view);
	free(table);
	free(r.said);
	if (r.sfd >= 0)
		close(r.sfd);
	if (r.wakefd >= 0)
		close(r.wakefd);
	loaded_state_free(s);
	hf_state_batch_discard(s);
	HF_VEC_FREE(&s->batch);
	hf_map_release(&s->batch_index);
	hf_events_release_held(s, false);
	hf_strlist_release(&s->held_logs);
	HF_VEC_FREE(&s->held_events);
	hf_place_cache_release(&s->place);
	if (s->store)
		hf_store_close(s->store);
	hf_events_close(s->events);
	hf_api_metrics_free(s->api_metrics);
	hf_nodeauth_release(s);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	pthread_cond_destroy(&s->commit_done);
	pthread_rwlock_destroy(&s->term);
	free(s->leader_url);
	free(s->store_error);
	free(s);
	for (size_t i = 0; i < tokens.len; i++)
		explicit_bzero(tokens.items[i].key, strlen(tokens.items[i].key));
	hf_kvlist_release(&tokens);
	hf_strlist_release(&hosts);
	if (admin_token)
		explicit_bzero(admin_token, strlen(admin_token));
	free(admin_token);
	free(store_url);
	free(advertise);
	free(err);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}

/* The parser's table, and what `holdfast help server` prints. */
static const struct hf_cmd_flag server_flags[] = {
    {"--listen", "ADDR", 'l',
     "the API's address and port: 10.0.0.1:7070, [::1]:7070, :7070 (every "
     "address) (default 127.0.0.1:7070)"},
    {"--data", "DIR", 'd',
     "the data directory: the SQLite store, the event log (default "
     "/var/lib/holdfast/server)"},
    {"--store", "URL", 's',
     "sqlite:FILE, etcd://HOST:PORT,... or etcds://... (default "
     "sqlite:DIR/holdfast.db)"},
    {"--tokens", "FILE", 't',
     "one \"<role> <token>\" per line, roles admin, read and agent (joins "
     "a new node); private to the user (chmod 600); without it the server "
     "only listens on loopback"},
    {"--tls-cert", "PEM", 'c', "serve HTTPS with this certificate"},
    {"--tls-key", "PEM", 'k', "the certificate's private key"},
    {"--client-ca", "PEM", 'A',
     "remote clusters (disaster recovery) are clients whose certificates "
     "this CA signed, named by their common name; needs --tls-cert"},
    {"--backoff", "SECONDS", 'b',
     "restart backoff of a failed task (doubles up to --backoff-max; the "
     "first restart is immediate) (default 1)"},
    {"--backoff-max", "SECONDS", 'm', "the longest backoff (default 60)"},
    {"--no-restart-in-place", NULL, 'N',
     "a RUNNING task that exits is relaunched by the server under a new "
     "task id, never restarted in place by its node"},
    {"--node-timeout", "SECONDS", 'n',
     "a node whose agent has not synced this long is unreachable (default "
     "15)"},
    {"--volume-rereplicate-after", "SECONDS", 'r',
     "a replicated volume's replica down this long is rebuilt on another "
     "node, as one on a decommissioned node is at once (default 600)"},
    {"--advertise", "URL", 'a',
     "the URL other servers, agents and the CLI reach this server at "
     "(default from --listen)"},
    {"--lease-ttl", "SECONDS", 'L',
     "the leader's lease with etcd: a dead leader is replaced this fast "
     "(default 5)"},
    {"--max-connections", "N", 'C',
     "HTTP connections served at once, 16 to 65536; every agent holds one "
     "(default 2048)"},
    {"--max-connections-per-ip", "N", 'I',
     "connections one client address may hold, 1 to 65536 (default 64, at "
     "most a quarter of --max-connections)"},
    {"--request-timeout", "SECONDS", 'R',
     "a request's headers and body must arrive within this, however they "
     "trickle, 1 to 3600 (default 30)"},
    {"--allow-host", "NAME[,NAME]", 'H',
     "more host names clients may reach the server by (besides IP "
     "addresses, localhost, this machine's name and --advertise's)"},
    {"--port-file", "FILE", 'p',
     "write the API's port here once it listens (for --listen ADDR:0)"},
    {"--cluster-key-file", "FILE", 'K',
     "the cluster key, 64 hex digits (openssl rand -hex 32), that seals "
     "encrypted volumes' keys (secure=true); every server of a cluster "
     "needs the same one (default: $HOLDFAST_CLUSTER_KEY, else none: "
     "encrypted volumes are refused)"},
};

const struct hf_cmd_flag *hf_server_flag(size_t i)
{
	return i < HF_ARRAY_LEN(server_flags) ? &server_flags[i] : NULL;
}

const struct hf_cmd hf_server_cmd = {
    "server", NULL, hf_server_main, "[FLAG...]",
    "run the scheduler and the HTTP API",
    "Keeps every service at its goal. The store defaults to SQLite in\n"
    "DIR/holdfast.db. Every request needs a token: the tokens file's,\n"
    "or the admin credential the server leaves for the user running it\n"
    "(~/.config/holdfast/credentials/), which that user's CLI and agents\n"
    "on this machine find. Without --tokens it only listens on loopback.",
    hf_server_flag};

int hf_server_main(int argc, char **argv)
{
	struct option longopts[HF_ARRAY_LEN(server_flags) + 1];
	struct hf_server_opts o = {0};
	struct hf_strlist allow = {0};
	int c, rc;

	hf_cmd_longopts(hf_server_flag, longopts, HF_ARRAY_LEN(longopts));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case 'd':
			o.data = optarg;
			break;
		case 's':
			o.store = optarg;
			break;
		case 't':
			o.tokens = optarg;
			break;
		case 'c':
			o.tls_cert = optarg;
			break;
		case 'k':
			o.tls_key = optarg;
			break;
		case 'A':
			o.client_ca = optarg;
			break;
		case 'b':
			o.backoff_base = atof(optarg);
			break;
		case 'm':
			o.backoff_max = atof(optarg);
			break;
		case 'N':
			o.no_restart_in_place = true;
			break;
		case 'p':
			o.port_file = optarg;
			break;
		case 'K':
			o.cluster_key_file = optarg;
			break;
		case 'n':
			o.node_timeout = atof(optarg);
			break;
		case 'r':
			o.rereplicate_after = atof(optarg);
			break;
		case 'a':
			o.advertise = optarg;
			break;
		case 'L':
			o.lease_ttl = atoi(optarg);
			break;
		case 'C': {
			long v = atol(optarg);

			if (v < 16 || v > 65536) {
				fprintf(stderr, "holdfast server: --max-connections "
						"takes 16 to 65536\n");
				return HF_EXIT_USAGE;
			}
			o.max_connections = (unsigned)v;
			break;
		}
		case 'I':
		case 'R': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < 1 ||
			    v > (c == 'I' ? 65536 : 3600)) {
				fprintf(stderr, "holdfast server: --%s takes 1 "
						"to %d\n",
					c == 'I' ? "max-connections-per-ip"
						 : "request-timeout",
					c == 'I' ? 65536 : 3600);
				hf_strlist_release(&allow);
				return HF_EXIT_USAGE;
			}
			if (c == 'I')
				o.max_connections_per_ip = (unsigned)v;
			else
				o.request_timeout = (unsigned)v;
			break;
		}
		case 'H': {
			char *copy = hf_xstrdup(optarg), *save = NULL;

			for (char *h = strtok_r(copy, ",", &save); h;
			     h = strtok_r(NULL, ",", &save))
				hf_strlist_push(&allow, h);
			free(copy);
			break;
		}
		default:
			fprintf(stderr, "holdfast server: unknown or incomplete "
					"flag %s\n",
				argv[optind - 1]);
			hf_strlist_release(&allow);
			return hf_cmd_usage(&hf_server_cmd);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "holdfast server: unexpected argument '%s'\n",
			argv[optind]);
		hf_strlist_release(&allow);
		return HF_EXIT_USAGE;
	}
	if (o.client_ca && !o.tls_cert) {
		fprintf(stderr, "holdfast server: --client-ca needs --tls-cert "
				"and --tls-key: remote clusters connect with "
				"TLS\n");
		hf_strlist_release(&allow);
		return HF_EXIT_USAGE;
	}
	if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
		fprintf(stderr,
			"holdfast server: --tls-cert and --tls-key go together\n");
		hf_strlist_release(&allow);
		return HF_EXIT_USAGE;
	}
	o.allow_hosts = &allow;
	rc = hf_server_run(&o);
	hf_strlist_release(&allow);
	return rc;
}
