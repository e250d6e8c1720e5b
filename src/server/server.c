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

static void *sched_thread(void *arg)
{
	struct hf_srv *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct timespec until;

		hf_sched_tick(s);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->changed, &s->mu, &until);
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

int hf_server_run(const struct hf_server_opts *in_opts)
{
	struct hf_server_opts opts = *in_opts;
	struct hf_srv *s = hf_xcalloc(1, sizeof(*s));
	struct hf_kvlist tokens = {0};
	struct hf_http_opts ho = {0};
	const struct hf_http_route *routes;
	size_t nroutes;
	char *store_url = NULL, *err = NULL;
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
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->changed, NULL);
	s->opts = opts;
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
	if (hf_state_load(s, &err)) {
		hf_log("%s", err);
		goto out;
	}
	s->events = hf_events_open(opts.data);
	s->api_metrics = hf_api_metrics_new();
	hf_log("store %s: %zu service%s, %zu node%s", store_url,
	       s->services.len, s->services.len == 1 ? "" : "s", s->nodes.len,
	       s->nodes.len == 1 ? "" : "s");
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
	if (hf_http_start(&ho, routes, nroutes, s, &s->http, &err)) {
		hf_log("cannot serve the API on %s: %s", opts.listen,
		       err ? err : "unknown error");
		goto out;
	}
	s->api_port = hf_http_port(s->http);
	hf_log("holdfast %s server listening on %s (port %d)", HF_VERSION,
	       opts.listen, s->api_port);
	if (opts.port_file) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%d\n", s->api_port);
		hf_write_file_atomic(opts.port_file, buf, strlen(buf), 0644);
	}
	if (pthread_create(&s->sched, NULL, sched_thread, s) != 0) {
		hf_log("cannot start the scheduler thread");
		goto out;
	}
	sched_started = true;
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));

		if (n == (ssize_t)sizeof(si))
			break;
		if (n < 0 && errno != EINTR)
			break;
	}
	hf_log("stopping (tasks keep running on their nodes)");
	rc = HF_EXIT_OK;
out:
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->mu);
	if (sched_started)
		pthread_join(s->sched, NULL);
	if (s->http)
		hf_http_stop(s->http);
	if (sfd >= 0)
		close(sfd);
	for (size_t i = 0; i < s->services.len; i++)
		hf_state_service_free(s->services.items[i]);
	HF_VEC_FREE(&s->services);
	for (size_t i = 0; i < s->nodes.len; i++)
		hf_state_node_free(s->nodes.items[i]);
	HF_VEC_FREE(&s->nodes);
	if (s->store)
		hf_store_close(s->store);
	hf_events_close(s->events);
	hf_api_metrics_free(s->api_metrics);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->changed);
	free(s);
	hf_kvlist_release(&tokens);
	free(store_url);
	free(err);
	return rc;
}

int hf_server_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"data", required_argument, NULL, 'd'},
	    {"store", required_argument, NULL, 's'},
	    {"tokens", required_argument, NULL, 't'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"backoff", required_argument, NULL, 'b'},
	    {"backoff-max", required_argument, NULL, 'm'},
	    {"port-file", required_argument, NULL, 'p'},
	    {"node-timeout", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	struct hf_server_opts o = {0};
	int c;

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
