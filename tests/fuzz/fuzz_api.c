/*
 * fuzz_api.c - the server's own route table and handlers under arbitrary
 * requests (paths, query strings, JSON bodies), without sockets: requests
 * go through hf_http_dispatch() into a server state backed by an in-memory
 * store. Input: "<METHOD> <target>\n<body>", sent as JSON with the admin
 * token (the agents' sync with the credential of the node its body names,
 * /v1/dr/... as a remote cluster's client certificate).
 * Every answer must be a status the API documents, with a JSON body for
 * errors; nothing may crash or leak.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "http/http.h"
#include "server/api.h"
#include "server/metrics.h"
#include "server/nodeauth.h"
#include "server/sched.h"
#include "server/state.h"

static struct hf_srv *srv;
static struct hf_kvlist tokens;
/* The node the current request's body names: its sync is its own. */
static char *body_node;

#define ADMIN "fuzz-admin-token"
#define NODE "fuzz-node-token"

static int authenticate(void *ctx, const char *token, char **principal)
{
	*principal = NULL;
	if (strcmp(token, NODE) != 0 || !body_node)
		return HF_ROLE_NONE;
	*principal = hf_xstrdup(body_node);
	return HF_ROLE_NODE;
}

static void setup(void)
{
	srv = hf_xcalloc(1, sizeof(*srv));
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->changed, NULL);
	/* Held polls must not wait: half of this is no time at all. */
	srv->opts.node_timeout = 0.001;
	srv->opts.backoff_base = 1;
	srv->opts.backoff_max = 60;
	srv->opts.backoff_reset = 120;
	srv->opts.advertise = "http://127.0.0.1:1";
	srv->leading = true;
	srv->api_metrics = hf_api_metrics_new();
	hf_nodeauth_init(srv);
	hf_kvlist_set(&tokens, ADMIN, "admin");
	if (hf_store_open("mem:", &srv->store))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_http_conf conf = {0};
	struct hf_http_raw raw = {0};
	struct hf_http_resp resp = {0};
	const struct hf_http_route *routes;
	char *text, *nl, *sp;

	if (!srv)
		setup();
	if (size > 65536)
		return 0;
	text = hf_xstrndup((const char *)data, size);
	nl = memchr(text, '\n', size);
	if (nl)
		*nl = '\0';
	sp = strchr(text, ' ');
	if (!sp) {
		free(text);
		return 0;
	}
	*sp = '\0';
	raw.method = text;
	raw.target = sp + 1;
	raw.body = nl ? nl + 1 : NULL;
	raw.body_len = nl ? size - (size_t)(nl + 1 - text) : 0;
	raw.content_type = "application/json";
	/*
	 * The agents' sync goes as the node its body names, a remote
	 * cluster's routes with a client certificate, the rest as admin.
	 */
	if (strncmp(raw.target, "/v1/dr/", 7) == 0)
		raw.peer_cn = "fuzz-remote";
	else
		raw.authorization =
		    strncmp(raw.target, "/v1/agent/sync", 14) == 0
			? "Bearer " NODE
			: "Bearer " ADMIN;
	free(body_node);
	body_node = NULL;
	if (raw.body_len) {
		json_t *b = json_loadb(raw.body, raw.body_len, 0, NULL);
		const char *id = json_string_value(json_object_get(b, "node_id"));

		body_node = id ? hf_xstrdup(id) : NULL;
		json_decref(b);
	}
	routes = hf_server_routes(&conf.nroutes);
	conf.routes = routes;
	conf.ctx = srv;
	conf.tokens = &tokens;
	conf.authenticate = authenticate;
	hf_http_dispatch(&conf, &raw, &resp);
	if (resp.status < 200 || resp.status > 599)
		abort();
	/* What the scheduler thread would do next. */
	pthread_mutex_lock(&srv->mu);
	if (srv->tick_wanted) {
		hf_sched_tick(srv);
		srv->tick_wanted = false;
	}
	if (srv->desired_dirty || !srv->node_lists_valid) {
		srv->desired_dirty = false;
		hf_sched_publish(srv);
	}
	pthread_mutex_unlock(&srv->mu);
	/* Streams (events, logs) are not followed here. */
	hf_http_resp_release(&resp);
	/* Keep the state small: forget what the inputs created. */
	pthread_mutex_lock(&srv->mu);
	if (srv->model.services.len > 8 || srv->model.nodes.len > 8) {
		hf_state_release(srv);
		srv->node_lists_valid = false;
		hf_nodeauth_release(srv);
		hf_nodeauth_init(srv);
	}
	pthread_mutex_unlock(&srv->mu);
	free(text);
	return 0;
}
