/*
 * agent.h - `holdfast agent`: one per node. It reports the node's resources
 * to the server, converges the node to the desired set of tasks the server
 * hands out (docs/protocol.md: POST /v1/agent/sync), prepares each task's
 * sandbox and volumes, starts a shim per task (shim/shim.h), runs health
 * and readiness checks, and reports task status. For replicated volumes
 * it keeps an attach process per attached volume and, with a storage
 * pool, the node's replica server (src/volume/attach.h, serve.h): both
 * started detached, so they outlive it like shims. Its local state
 * (<data>/agent.json and <data>/tasks/<id>/) lets a restarted agent
 * reattach to its shims without restarting any task and without losing an
 * exit that happened while it was down.
 *
 * Threads: hf_agent_run() owns the calling thread (the supervisor loop:
 * shim watches, checks, signals) and starts more: the long poll, the
 * immediate sync after a state change, and a bounded pool of workers for
 * slow jobs such as sandbox preparation, artifact fetches, shim starts and
 * volume deletion (several launches in flight at once). It blocks SIGTERM, SIGINT
 * and SIGHUP in the calling thread and reads them from a signalfd, so it
 * belongs in a process of its own (`holdfast dev` forks one).
 */
#ifndef HF_AGENT_AGENT_H
#define HF_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

struct hf_agent_port_range {
	int begin, end;
};

struct hf_agent_opts {
	struct hf_strlist servers;   /* base URLs, tried in turn; required */
	char *data_dir;              /* default /var/lib/holdfast/agent */
	char *node_id;               /* NULL: agent.json's, else hostname */
	struct hf_kvlist attributes;
	double cpus;                 /* 0: detected */
	int64_t memory_mb;           /* 0: detected */
	int64_t disk_mb;             /* 0: free space of data_dir */
	HF_VEC(struct hf_agent_port_range) ports; /* empty: 10000-20000 */
	/*
	 * A join token: lets this node register its own credential once
	 * (nodeauth.h); NULL: the local admin credential of a server on this
	 * machine (cred.h), if there is one.
	 */
	char *token;
	char *address;               /* how other hosts reach this node */
	char *holdfast_bin;          /* NULL: /proc/self/exe, resolved */
	char *ca_file;               /* verifies the server; NULL: system */
	bool tls_insecure;           /* do not verify the server (labs) */
	int64_t sandbox_keep_s;      /* keep exited sandboxes this long */
	int64_t launched_keep_s;     /* keep a gone task's id this long */
	int wait_s;                  /* long poll wait */
	int launch_workers;          /* jobs in flight at most; 0: default */
	int64_t log_max_bytes;       /* task log rotation, for launch.json */
	int log_keep;
	bool print_info;             /* print the info JSON and exit */
	/*
	 * Directories no task may see (besides the agent's data dir, and
	 * /etc/holdfast and /var/lib/holdfast where they exist): covered in
	 * each task's mount namespace.
	 */
	struct hf_strlist hide_from_tasks;
	/* Where file:// URIs may point; empty: file:// is refused. */
	struct hf_strlist artifact_dirs;
	/*
	 * The node's storage pool (--storage DIR[,size=N]): NULL for a
	 * storage-less node; storage_size in bytes, 0 without size=.
	 */
	char *storage_dir;
	int64_t storage_size;
	/*
	 * The TCP port of the node's replica server (--volume-port), on
	 * address when it is numeric; 0: one the kernel picks.
	 */
	int volume_port;
	/*
	 * Bytes per second each copy to a resyncing replica may read and
	 * send (--volume-resync-rate); 0: as fast as it goes.
	 */
	int64_t resync_rate;
	/*
	 * The replica server's TLS listener for other sites' disaster-
	 * recovery streams (--dr-listen HOST:PORT, --dr-cert, --dr-key,
	 * --dr-ca: absolute paths); NULL without one.
	 */
	char *dr_listen, *dr_cert, *dr_key, *dr_ca;
};

/* Sets the defaults above; every pointer NULL or an owned default. */
void hf_agent_opts_init(struct hf_agent_opts *o);
void hf_agent_opts_release(struct hf_agent_opts *o);

/*
 * Parses the `holdfast agent` flags (argv[0] is the verb) into *o, which
 * must be initialised. The join token comes from --token-file (a private
 * file), HOLDFAST_TOKEN (taken out of the environment) or --token (shown
 * to every local user by ps: warned about, and wiped from argv). Returns 0,
 * or HF_EINVAL with *errmsg set to one sentence (the caller frees it).
 */
int hf_agent_opts_parse(struct hf_agent_opts *o, int argc, char **argv,
			char **errmsg);

/*
 * Runs the agent until SIGTERM or SIGINT. Returns 0 after a clean
 * shutdown (tasks keep running under their shims), or a negative HF_E*
 * code when it cannot start (the reason is logged on stderr). *opts is
 * only read and must outlive the call.
 */
int hf_agent_run(const struct hf_agent_opts *opts);

/* The `holdfast agent` verb: flags as in hf_agent_opts_parse. */
int hf_agent_main(int argc, char **argv);

struct hf_cmd;
struct hf_cmd_flag;
/* `holdfast agent`'s row in the binary's command table (main.c). */
extern const struct hf_cmd hf_agent_cmd;
/* The i-th row of the table hf_agent_opts_parse reads; NULL past the end. */
const struct hf_cmd_flag *hf_agent_flag(size_t i);

#endif
