/*
 * server.h - `holdfast server`: the scheduler and the HTTP API. It owns
 * cluster state in the store, runs the plan engine, records each intent
 * before acting, hands desired task sets to agents (docs/protocol.md) and
 * reconciles with them after any restart.
 */
#ifndef HF_SERVER_SERVER_H
#define HF_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct hf_http_server;

struct hf_server_opts {
	const char *listen;   /* default "127.0.0.1:7070" */
	const char *data;     /* data directory (SQLite store lives here) */
	const char *store;    /* store URL; default sqlite:<data>/holdfast.db */
	const char *tokens;   /* tokens file, or NULL */
	const char *tls_cert, *tls_key;
	const char *client_ca; /* remote clusters' CA (--client-ca) */
	/* Restart backoff for failed tasks (seconds). */
	double backoff_base, backoff_max;
	/* A task healthy (running) this long resets its backoff (seconds). */
	double backoff_reset;
	/*
	 * No restarts in place: every relaunch is the server's, with a new
	 * task id (plan/decide.h, hf_decide_restart_policy).
	 */
	bool no_restart_in_place;
	/* The URL other servers, agents and the CLI reach this server at. */
	const char *advertise;
	/* Leader lease time to live (s): a dead leader is replaced this fast. */
	int lease_ttl;
	/* A node whose agent has not synced this long is unreachable (s). */
	double node_timeout;
	/*
	 * A replica down this long (s), or on a decommissioned node, is
	 * rebuilt on another node (re-replication). 0: the default, 600.
	 */
	double rereplicate_after;
	/*
	 * Most HTTP connections served at once; every agent holds one long
	 * poll (which costs no thread). 0: 2048.
	 */
	unsigned max_connections;
	/* Connections one client address may hold. 0: 64 (at most a quarter). */
	unsigned max_connections_per_ip;
	/* Seconds for a request's head and body to arrive. 0: 30. */
	unsigned request_timeout;
	/* Host names clients may use besides IP literals and localhost. */
	const struct hf_strlist *allow_hosts;
	/* Written once the API listens: "<port>\n" (for dev and tests). */
	const char *port_file;
	/*
	 * The cluster key that seals encrypted volumes' data keys
	 * (volume/crypt.h): from --cluster-key-file, else the environment's
	 * HOLDFAST_CLUSTER_KEY (64 hex digits); read by hf_server_run.
	 */
	const char *cluster_key_file;
	bool have_cluster_key;
	uint8_t cluster_key[32];
};

int hf_server_main(int argc, char **argv);
struct hf_cmd;
struct hf_cmd_flag;
/* `holdfast server`'s row in the binary's command table (main.c). */
extern const struct hf_cmd hf_server_cmd;
/* The i-th row of the flag table hf_server_main parses; NULL past the end. */
const struct hf_cmd_flag *hf_server_flag(size_t i);
/* Runs a server until SIGINT/SIGTERM. Returns an exit code. */
int hf_server_run(const struct hf_server_opts *opts);
/* `holdfast dev`: a server and one agent on this machine. */
int hf_dev_main(int argc, char **argv);
/* `holdfast dev`'s row in the binary's command table (main.c). */
extern const struct hf_cmd hf_dev_cmd;
/* The i-th row of the flag table hf_dev_main parses; NULL past the end. */
const struct hf_cmd_flag *hf_dev_flag(size_t i);

#endif
