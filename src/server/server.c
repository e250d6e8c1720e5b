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
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/version.h"
#include "server/api.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/sched.h"
#include "server/server.h"
#include "server/state.h"

#define TICK_MS 200

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
	while (!s->stopping) {
		struct timespec until;
		int64_t wake;

		/*
		 * One tick acts on everything that changed since the last one
		 * (reports of many agents, API calls); then the desired sets
		 * that changed are published to their agents' long polls.
		 */
		hf_sched_tick(s);
		s->tick_wanted = false;
		if (s->desired_dirty || !s->node_lists_valid) {
			s->desired_dirty = false;
			hf_sched_publish(s);
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

/* Tokens file: one "<role> <token>" per line; '#' comments. */
static int load_tokens(const char *path, struct hf_kvlist *out, char **err)
{
	char *text = NULL, *line, *save = NULL;
	int rc = hf_read_file(path, 1 << 20, &text, NULL);
	int lineno = 0;

	if (rc) {
		*err = hf_xasprintf("cannot read tokens file %s: %s", path,
				    rc == HF_ENOTFOUND ? "no such file"
						       : strerror(errno));
		return rc;
	}
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
		     strcmp(role, "agent"))) {
			*err = hf_xasprintf("%s:%d: expected '<admin|read|agent> "
					    "<token>'",
					    path, lineno);
			free(text);
			return HF_EINVAL;
		}
		hf_kvlist_set(out, token, role);
	}
	free(text);
	return 0;
}

static void on_request(void *ctx, const struct hf_http_req *req, int status,
		       double seconds)
{
	struct hf_srv *s = ctx;

	hf_api_metrics_record(s->api_metrics, req->method, req->route, status,
			      seconds);
}

/* ------------------------------------------------------------------ */
/* Leadership                                                           */

static void h_follower(void *ctx, const struct hf_http_req *req,
		       struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	json_t *body;

	(void)req;
	pthread_mutex_lock(&s->mu);
	body = json_pack("{s:s, s:s, s:o}", "error", "not-leader", "message",
			 "this server is not the leader; send requests to the "
			 "leader",
			 "leader",
			 s->leader_url ? json_string(s->leader_url) : json_null());
	if (s->leader_url)
		hf_kvlist_set(&resp->headers, "X-Holdfast-Leader", s->leader_url);
	pthread_mutex_unlock(&s->mu);
	hf_http_json(resp, 503, body);
}

static void h_leader(void *ctx, const struct hf_http_req *req,
		     struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;

	(void)req;
	pthread_mutex_lock(&s->mu);
	hf_http_json(resp, 200,
		     json_pack("{s:o, s:s, s:b}", "leader",
			       s->leader_url ? json_string(s->leader_url)
					     : json_null(),
			       "self", s->opts.advertise, "leading", s->leading));
	pthread_mutex_unlock(&s->mu);
}

#define ALL_QUERY_KEYS "delete_volumes phase step to since follow service stream tail"

/* What a server that does not lead answers besides reads. */
static const struct hf_http_route follower_routes[] = {
    {"GET", "/v1/leader", h_leader, HF_ROUTE_READ, NULL},
    {"GET", "/{rest*}", h_follower, HF_ROUTE_READ, ALL_QUERY_KEYS},
    {"POST", "/{rest*}", h_follower, HF_ROUTE_READ, ALL_QUERY_KEYS},
    {"PUT", "/{rest*}", h_follower, HF_ROUTE_READ, ALL_QUERY_KEYS},
    {"DELETE", "/{rest*}", h_follower, HF_ROUTE_READ, ALL_QUERY_KEYS},
};

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

static struct hf_http_route *follower_table(size_t *n)
{
	size_t nroutes, k = 0;
	const struct hf_http_route *routes = hf_server_routes(&nroutes);
	struct hf_http_route *t = hf_xcalloc(
	    nroutes + HF_ARRAY_LEN(follower_routes), sizeof(*t));

	for (size_t i = 0; i < nroutes; i++)
		if (follower_serves(&routes[i]))
			t[k++] = routes[i];
	for (size_t i = 0; i < HF_ARRAY_LEN(follower_routes); i++)
		t[k++] = follower_routes[i];
	*n = k;
	return t;
}

/* Frees the services and nodes of a server or a follower's view. */
static void release_state(struct hf_srv *v)
{
	for (size_t i = 0; i < v->services.len; i++)
		hf_state_service_free(v->services.items[i]);
	HF_VEC_FREE(&v->services);
	for (size_t i = 0; i < v->nodes.len; i++)
		hf_state_node_free(v->nodes.items[i]);
	HF_VEC_FREE(&v->nodes);
	hf_map_release(&v->node_index);
}

static void free_view(struct hf_srv *view)
{
	if (!view)
		return;
	release_state(view);
	free(view->leader_url);
	pthread_mutex_destroy(&view->mu);
	pthread_cond_destroy(&view->changed);
	free(view);
}

/* Reloads a follower's view from the store; keeps the old one on errors. */
static void refresh_view(struct hf_srv *s, struct hf_srv *view)
{
	struct hf_srv fresh = {0};
	char *err = NULL;

	bool loaded;

	fresh.store = s->store;
	fresh.opts = s->opts;
	loaded = hf_state_load(&fresh, &err) == 0;
	free(err);
	pthread_mutex_lock(&view->mu);
	if (loaded) {
		HF_SWAP(view->services, fresh.services);
		HF_SWAP(view->nodes, fresh.nodes);
		HF_SWAP(view->node_index, fresh.node_index);
	}
	free(view->leader_url);
	view->leader_url = s->leader_url ? hf_xstrdup(s->leader_url) : NULL;
	pthread_mutex_unlock(&view->mu);
	release_state(&fresh);
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

static char *default_advertise(const char *listen, int port)
{
	const char *colon = strrchr(listen, ':');
	size_t hostlen = colon ? (size_t)(colon - listen) : 0;
	char *host = hf_xstrndup(listen, hostlen);
	char *url;

	if (!*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0) {
		free(host);
		host = hf_xstrdup("127.0.0.1");
	}
	url = hf_xasprintf("http://%s:%d", host, port);
	free(host);
	return url;
}

int hf_server_run(const struct hf_server_opts *in_opts)
{
	struct hf_server_opts opts = *in_opts;
	struct hf_srv *s = hf_xcalloc(1, sizeof(*s));
	struct hf_kvlist tokens = {0};
	struct hf_http_opts ho = {0};
	const struct hf_http_route *routes;
	size_t nroutes, nftable = 0;
	struct hf_http_route *ftable = NULL; /* a follower's routes */
	struct hf_srv *view = NULL;          /* a follower's view of the state */
	char *store_url = NULL, *err = NULL, *advertise = NULL;
	char *leader_listen = NULL, *last_leader = NULL;
	sigset_t mask;
	int sfd = -1, rc = HF_EXIT_FAIL;
	bool sched_started = false;

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
	if (opts.lease_ttl <= 0)
		opts.lease_ttl = 5;
	if (!opts.max_connections)
		opts.max_connections = 2048;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->changed, NULL);
	s->opts = opts;
	/*
	 * Desired-set generations start from the clock (in µs), so they grow
	 * across restarts and leader changes: an agent never mistakes a new
	 * server's set for one it already has.
	 */
	s->generation = (uint64_t)hf_now_ms() * 1000;
	if (mkdir(opts.data, 0750) < 0 && errno != EEXIST) {
		hf_log("cannot create data directory %s: %s", opts.data,
		       strerror(errno));
		goto out;
	}
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
	 * A single-process store (SQLite, memory) is ours alone (SQLite's
	 * file lock says so), and its leases died with the last server: a
	 * leader key left behind is stale.
	 */
	if (strcmp(hf_store_backend_name(s->store), "etcd") != 0) {
		int drc = hf_store_delete(s->store, HF_LEADER_KEY, NULL);

		if (drc && drc != HF_ENOTFOUND)
			hf_log("cannot clear the old leader key: %s",
			       hf_err_msg(drc));
	}
	if (opts.tokens && load_tokens(opts.tokens, &tokens, &err)) {
		hf_log("%s", err);
		goto out;
	}
	if (!tokens.len && !hf_http_listen_is_loopback(opts.listen)) {
		hf_log("refusing to listen on %s without tokens: anyone could "
		       "change the cluster. Give --tokens FILE, or listen on "
		       "a loopback address",
		       opts.listen);
		goto out;
	}
	if (!tokens.len)
		hf_log("no tokens configured: the API is open to local users "
		       "only (listening on loopback %s)",
		       opts.listen);

	/* Signals become a file descriptor; no logic in handlers. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	routes = hf_server_routes(&nroutes);
	ho.listen = opts.listen;
	ho.tls_cert = opts.tls_cert;
	ho.tls_key = opts.tls_key;
	ho.tokens = &tokens;
	ho.on_request = on_request;
	ho.max_connections = opts.max_connections;

	/*
	 * Until it leads, a server answers every request with the leader's
	 * address (503: agents and the CLI move on to it).
	 */
	view = hf_xcalloc(1, sizeof(*view));
	pthread_mutex_init(&view->mu, NULL);
	pthread_cond_init(&view->changed, NULL);
	view->opts = s->opts;
	view->generation = 1;
	ftable = follower_table(&nftable);
	if (hf_http_start(&ho, ftable, nftable, view, &s->http, &err)) {
		hf_log("cannot serve the API on %s: %s", opts.listen,
		       err ? err : "unknown error");
		goto out;
	}
	s->api_port = hf_http_port(s->http);
	if (!opts.advertise) {
		advertise = default_advertise(opts.listen, s->api_port);
		s->opts.advertise = advertise;
	}
	if (opts.port_file) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%d\n", s->api_port);
		hf_write_file_atomic(opts.port_file, buf, strlen(buf), 0644);
	}
	pthread_mutex_lock(&view->mu);
	view->opts.advertise = s->opts.advertise;
	pthread_mutex_unlock(&view->mu);
	hf_log("holdfast %s server on %s (%s); campaigning for the lead",
	       HF_VERSION, opts.listen, s->opts.advertise);
	for (;;) {
		struct pollfd pfd = {sfd, POLLIN, 0};
		int won = campaign(s);

		if (won == 1)
			break;
		if (won == 0)
			refresh_view(s, view);
		if (won < 0)
			hf_log("cannot campaign: %s (%s); retrying",
			       hf_err_msg(won), hf_store_last_error(s->store));
		else if (s->leader_url &&
			 (!last_leader || strcmp(last_leader, s->leader_url))) {
			hf_log("following the leader at %s", s->leader_url);
			free(last_leader);
			last_leader = hf_xstrdup(s->leader_url);
		}
		if (poll(&pfd, 1, 1000) > 0)
			goto stopped;
	}
	/*
	 * We lead: load the state as the store has it now, then act. The
	 * leader's API takes over the follower's port (":0" was resolved).
	 */
	hf_http_stop(s->http);
	s->http = NULL;
	free_view(view);
	view = NULL;
	{
		const char *colon = strrchr(opts.listen, ':');

		leader_listen = hf_xasprintf("%.*s:%d",
					     colon ? (int)(colon - opts.listen) : 0,
					     opts.listen, s->api_port);
		ho.listen = leader_listen;
	}
	if (hf_state_load(s, &err)) {
		hf_log("%s", err);
		goto out;
	}
	s->events = hf_events_open(opts.data);
	s->api_metrics = hf_api_metrics_new();
	s->leading = true;
	hf_log("leading (fencing revision %lld): %zu service%s, %zu node%s",
	       (long long)s->fence_rev, s->services.len,
	       s->services.len == 1 ? "" : "s", s->nodes.len,
	       s->nodes.len == 1 ? "" : "s");
	if (hf_http_start(&ho, routes, nroutes, s, &s->http, &err)) {
		hf_log("cannot serve the API on %s: %s", opts.listen,
		       err ? err : "unknown error");
		goto out;
	}
	if (pthread_create(&s->sched, NULL, sched_thread, s) != 0) {
		hf_log("cannot start the scheduler thread");
		goto out;
	}
	sched_started = true;
	/*
	 * Keep the lease. A leader that cannot renew it in time stops acting
	 * before it could have expired: another server may lead by then.
	 */
	{
		int64_t last_ok = hf_now_ms();
		int64_t ttl_ms = (int64_t)opts.lease_ttl * 1000;

		for (;;) {
			struct pollfd pfd = {sfd, POLLIN, 0};
			int left = 0;
			int krc;

			if (poll(&pfd, 1, (int)(ttl_ms / 3)) > 0)
				break;
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
	}
stopped:
	hf_log("stopping (tasks keep running on their nodes)");
	if (s->leading && s->lease)
		hf_store_lease_revoke(s->store, s->lease);
	rc = HF_EXIT_OK;
out:
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	for (size_t i = 0; i < s->nodes.len; i++)
		pthread_cond_broadcast(&s->nodes.items[i]->wake);
	pthread_mutex_unlock(&s->mu);
	if (sched_started)
		pthread_join(s->sched, NULL);
	if (s->http)
		hf_http_stop(s->http);
	free_view(view);
	free(ftable);
	if (sfd >= 0)
		close(sfd);
	release_state(s);
	HF_VEC_FREE(&s->batch);
	hf_map_release(&s->batch_index);
	free(s->pc_pod);
	HF_VEC_FREE(&s->pc_placed);
	if (s->store)
		hf_store_close(s->store);
	hf_events_close(s->events);
	hf_api_metrics_free(s->api_metrics);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	free(s->leader_url);
	free(s);
	hf_kvlist_release(&tokens);
	free(store_url);
	free(advertise);
	free(leader_listen);
	free(last_leader);
	free(err);
	return rc;
}

/* The parser's table, and what `holdfast help server` prints. */
static const struct hf_cli_flag server_flags[] = {
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
     "one \"<role> <token>\" per line, roles admin, read and agent; "
     "without it the server only listens on loopback"},
    {"--tls-cert", "PEM", 'c', "serve HTTPS with this certificate"},
    {"--tls-key", "PEM", 'k', "the certificate's private key"},
    {"--backoff", "SECONDS", 'b',
     "restart backoff of a failed task (doubles up to --backoff-max; the "
     "first restart is immediate) (default 1)"},
    {"--backoff-max", "SECONDS", 'm', "the longest backoff (default 60)"},
    {"--node-timeout", "SECONDS", 'n',
     "a node whose agent has not synced this long is unreachable (default "
     "15)"},
    {"--advertise", "URL", 'a',
     "the URL other servers, agents and the CLI reach this server at "
     "(default from --listen)"},
    {"--lease-ttl", "SECONDS", 'L',
     "the leader's lease with etcd: a dead leader is replaced this fast "
     "(default 5)"},
    {"--max-connections", "N", 'C',
     "HTTP connections served at once, 16 to 65536; every agent holds one "
     "(default 2048)"},
    {"--port-file", "FILE", 'p',
     "write the API's port here once it listens (for --listen ADDR:0)"},
};

const struct hf_cli_flag *hf_server_flag(size_t i)
{
	return i < HF_ARRAY_LEN(server_flags) ? &server_flags[i] : NULL;
}

int hf_server_main(int argc, char **argv)
{
	struct option longopts[HF_ARRAY_LEN(server_flags) + 1];
	struct hf_server_opts o = {0};
	int c;

	hf_cli_longopts(hf_server_flag, longopts, HF_ARRAY_LEN(longopts));
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
		case 'b':
			o.backoff_base = atof(optarg);
			break;
		case 'm':
			o.backoff_max = atof(optarg);
			break;
		case 'p':
			o.port_file = optarg;
			break;
		case 'n':
			o.node_timeout = atof(optarg);
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
		default:
			fprintf(stderr, "holdfast server: unknown or incomplete "
					"flag %s\n",
				argv[optind - 1]);
			return hf_cli_usage("server", NULL);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "holdfast server: unexpected argument '%s'\n",
			argv[optind]);
		return HF_EXIT_USAGE;
	}
	if ((o.tls_cert == NULL) != (o.tls_key == NULL)) {
		fprintf(stderr,
			"holdfast server: --tls-cert and --tls-key go together\n");
		return HF_EXIT_USAGE;
	}
	return hf_server_run(&o);
}
