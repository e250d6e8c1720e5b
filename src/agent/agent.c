/*
 * agent.c - `holdfast agent`: flags, the node's info, start-up (cgroup
 * probe, local state, reattach), the threads, and the supervisor loop that
 * watches the shims, runs the checks and sends stops.
 */
#include <sys/resource.h>

#include "agent/agent.h"
#include "agent/api.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "http/cred.h"
#include "http/http.h"
#include "common/cmd.h"
#include "common/err.h"
#include "common/util.h"
#include "common/version.h"
#include "shim/confine.h"
#include "shim/shim.h"

#define DEFAULT_DATA "/var/lib/holdfast/agent"
#define DEFAULT_PORTS_BEGIN 10000
#define DEFAULT_PORTS_END 20000
#define WATCH_RETRY_MS 200
#define STOP_RETRY_MS 500
#define GC_INTERVAL_MS 5000

/* ---- waking the supervisor and the sync ------------------------------ */

void ag_wake(struct hf_agent *ag)
{
	uint64_t one = 1;

	if (write(ag->wakefd, &one, sizeof(one)) < 0) {
		/* The counter is saturated: the supervisor wakes anyway. */
	}
}

void ag_attend(struct hf_agent *ag, struct ag_task *t)
{
	if (t->attn)
		return;
	t->attn = true;
	*HF_VEC_PUSH(&ag->attn) = t;
}

void ag_unattend(struct hf_agent *ag, struct ag_task *t)
{
	if (!t->attn)
		return;
	for (size_t i = 0; i < ag->attn.len; i++)
		if (ag->attn.items[i] == t) {
			ag->attn.items[i] = ag->attn.items[--ag->attn.len];
			break;
		}
	t->attn = false;
}

void ag_mark_dirty(struct hf_agent *ag)
{
	ag->sync_dirty = true;
	pthread_cond_broadcast(&ag->sync_cv);
}

/* ---- options -------------------------------------------------------- */

void hf_agent_opts_init(struct hf_agent_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->data_dir = hf_xstrdup(DEFAULT_DATA);
	o->address = hf_xstrdup("127.0.0.1");
	o->sandbox_keep_s = 3600;
	o->launched_keep_s = 7 * 24 * 3600;
	o->wait_s = 10;
	o->log_max_bytes = 10 * 1024 * 1024;
	o->log_keep = 3;
	o->resync_rate = 100LL << 20;
}

void hf_agent_opts_release(struct hf_agent_opts *o)
{
	hf_strlist_release(&o->servers);
	free(o->data_dir);
	free(o->node_id);
	hf_kvlist_release(&o->attributes);
	HF_VEC_FREE(&o->ports);
	if (o->token)
		explicit_bzero(o->token, strlen(o->token));
	free(o->token);
	free(o->address);
	free(o->holdfast_bin);
	free(o->ca_file);
	hf_strlist_release(&o->hide_from_tasks);
	hf_strlist_release(&o->artifact_dirs);
	free(o->storage_dir);
	free(o->dr_listen);
	free(o->dr_cert);
	free(o->dr_key);
	free(o->dr_ca);
	memset(o, 0, sizeof(*o));
}

static bool parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_range(const char *s, struct hf_agent_port_range *r)
{
	const char *dash = strchr(s, '-');
	char *first;
	int64_t a, b;
	bool ok;

	if (!dash)
		return false;
	first = hf_xstrndup(s, (size_t)(dash - s));
	ok = parse_i64(first, 1, 65535, &a) && parse_i64(dash + 1, 1, 65535, &b) &&
	     a <= b;
	free(first);
	if (ok) {
		r->begin = (int)a;
		r->end = (int)b;
	}
	return ok;
}

/* "k=v,k=v" into a list; NULL or an error sentence (caller frees). */
static char *parse_pairs(const char *flag, const char *arg,
			 struct hf_kvlist *out)
{
	char *copy = hf_xstrdup(arg), *save = NULL, *item, *err = NULL;

	for (item = strtok_r(copy, ",", &save); item && !err;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (!eq || eq == item) {
			err = hf_xasprintf("%s: \"%s\" is not key=value", flag,
					   item);
			break;
		}
		*eq = '\0';
		/* Repeated keys (ports=) are kept in order: no kvlist_set. */
		struct hf_kv *kv = HF_VEC_PUSH(out);

		kv->key = hf_xstrdup(item);
		kv->value = hf_xstrdup(eq + 1);
	}
	free(copy);
	return err;
}

static char *parse_resources(struct hf_agent_opts *o, const char *arg)
{
	struct hf_kvlist kv = {0};
	char *err = parse_pairs("--resources", arg, &kv);

	for (size_t i = 0; i < kv.len && !err; i++) {
		const char *k = kv.items[i].key, *v = kv.items[i].value;
		int64_t n;

		if (strcmp(k, "cpus") == 0) {
			char *end;

			o->cpus = strtod(v, &end);
			if (end == v || *end || !(o->cpus > 0))
				err = hf_xasprintf("--resources: cpus=%s is "
						   "not a positive number", v);
		} else if (strcmp(k, "memory") == 0 || strcmp(k, "disk") == 0) {
			if (!parse_i64(v, 1, INT64_MAX / 2, &n))
				err = hf_xasprintf("--resources: %s=%s is not "
						   "a positive number of MB",
						   k, v);
			else if (k[0] == 'm')
				o->memory_mb = n;
			else
				o->disk_mb = n;
		} else if (strcmp(k, "ports") == 0) {
			struct hf_agent_port_range r;

			if (!parse_range(v, &r))
				err = hf_xasprintf("--resources: ports=%s is "
						   "not a range A-B", v);
			else
				*HF_VEC_PUSH(&o->ports) = r;
		} else {
			err = hf_xasprintf("--resources: unknown resource "
					   "\"%s\" (cpus, memory, disk, ports)",
					   k);
		}
	}
	hf_kvlist_release(&kv);
	return err;
}

/*
 * The flags: each setter stores val (copied; NULL for a switch) or returns
 * an error sentence (the caller frees it).
 */
typedef char *(*flag_fn)(struct hf_agent_opts *o, const char *flag,
			 const char *val);

static void set_owned(char **dst, const char *val)
{
	free(*dst);
	*dst = hf_xstrdup(val);
}

static char *flag_server(struct hf_agent_opts *o, const char *flag,
			 const char *val)
{
	char *copy = hf_xstrdup(val), *save = NULL, *u;

	for (u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save))
		hf_strlist_push(&o->servers, u);
	free(copy);
	return NULL;
}

static char *flag_data(struct hf_agent_opts *o, const char *f, const char *v)
{
	set_owned(&o->data_dir, v);
	return NULL;
}

static char *flag_node_id(struct hf_agent_opts *o, const char *f,
			  const char *v)
{
	set_owned(&o->node_id, v);
	return NULL;
}

static char *flag_token(struct hf_agent_opts *o, const char *f, const char *v)
{
	set_owned(&o->token, v);
	fprintf(stderr, "holdfast agent: warning: --token shows the token to "
			"every local user (ps, /proc); use --token-file FILE "
			"or HOLDFAST_TOKEN\n");
	/* Gone from /proc/PID/cmdline from now on (not before). */
	hf_cred_scrub((char *)v);
	return NULL;
}

static char *flag_token_file(struct hf_agent_opts *o, const char *f,
			     const char *v)
{
	char *text = NULL, *err = NULL;
	size_t n;

	if (hf_cred_read_private(v, "token file", 4096, &text, NULL, &err))
		return err;
	n = strcspn(text, "\r\n");
	if (n == 0) {
		free(text);
		return hf_xasprintf("token file %s is empty", v);
	}
	free(o->token);
	o->token = hf_xstrndup(text, n);
	explicit_bzero(text, strlen(text));
	free(text);
	return NULL;
}

static char *flag_address(struct hf_agent_opts *o, const char *f,
			  const char *v)
{
	set_owned(&o->address, v);
	return NULL;
}

static char *flag_bin(struct hf_agent_opts *o, const char *f, const char *v)
{
	set_owned(&o->holdfast_bin, v);
	return NULL;
}

static char *flag_ca_file(struct hf_agent_opts *o, const char *f,
			  const char *v)
{
	set_owned(&o->ca_file, v);
	return NULL;
}

/* An absolute directory other than /, for the repeatable path flags. */
static char *add_dir(struct hf_strlist *l, const char *flag, const char *v)
{
	if (v[0] != '/' || strspn(v, "/") == strlen(v))
		return hf_xasprintf("%s: \"%s\" must be an absolute directory "
				    "other than /", flag, v);
	hf_strlist_push(l, v);
	return NULL;
}

static char *flag_hide(struct hf_agent_opts *o, const char *f, const char *v)
{
	return add_dir(&o->hide_from_tasks, f, v);
}

static char *flag_artifact_dir(struct hf_agent_opts *o, const char *f,
			       const char *v)
{
	return add_dir(&o->artifact_dirs, f, v);
}

static char *flag_attributes(struct hf_agent_opts *o, const char *flag,
			     const char *val)
{
	struct hf_kvlist kv = {0};
	char *err = parse_pairs(flag, val, &kv);

	for (size_t k = 0; k < kv.len && !err; k++)
		hf_kvlist_set(&o->attributes, kv.items[k].key,
			      kv.items[k].value);
	hf_kvlist_release(&kv);
	return err;
}

static char *flag_resources(struct hf_agent_opts *o, const char *flag,
			    const char *val)
{
	return parse_resources(o, val);
}

static char *flag_number(const char *flag, const char *val, int64_t min,
			 int64_t max, int64_t *out)
{
	if (parse_i64(val, min, max, out))
		return NULL;
	return hf_xasprintf("%s: expected a whole number from %lld to %lld, "
			    "not \"%s\"", flag, (long long)min,
			    (long long)max, val);
}

static char *flag_sandbox_keep(struct hf_agent_opts *o, const char *flag,
			       const char *val)
{
	return flag_number(flag, val, 0, INT64_MAX / 2000, &o->sandbox_keep_s);
}

static char *flag_launched_keep(struct hf_agent_opts *o, const char *flag,
				const char *val)
{
	return flag_number(flag, val, 0, INT64_MAX / 2000,
			   &o->launched_keep_s);
}

static char *flag_log_max_bytes(struct hf_agent_opts *o, const char *flag,
				const char *val)
{
	return flag_number(flag, val, 0, INT64_MAX / 2, &o->log_max_bytes);
}

static char *flag_log_keep(struct hf_agent_opts *o, const char *flag,
			   const char *val)
{
	int64_t n = o->log_keep;
	char *err = flag_number(flag, val, 0, 1000, &n);

	o->log_keep = (int)n;
	return err;
}

static char *flag_wait(struct hf_agent_opts *o, const char *flag,
		       const char *val)
{
	int64_t n = o->wait_s;
	char *err = flag_number(flag, val, 1, 300, &n);

	o->wait_s = (int)n;
	return err;
}

static char *flag_launch_workers(struct hf_agent_opts *o, const char *flag,
				 const char *val)
{
	int64_t n = o->launch_workers;
	char *err = flag_number(flag, val, 1, 256, &n);

	o->launch_workers = (int)n;
	return err;
}

static char *flag_storage(struct hf_agent_opts *o, const char *flag,
			  const char *val)
{
	return ag_pool_flag_parse(flag, val, &o->storage_dir,
				  &o->storage_size);
}

static char *flag_volume_port(struct hf_agent_opts *o, const char *flag,
			      const char *val)
{
	int64_t n = o->volume_port;
	char *err = flag_number(flag, val, 0, 65535, &n);

	o->volume_port = (int)n;
	return err;
}

static char *flag_resync_rate(struct hf_agent_opts *o, const char *flag,
			      const char *val)
{
	int64_t n;

	if (strcmp(val, "0") == 0) {
		o->resync_rate = 0;
		return NULL;
	}
	if (ag_size_parse(val, &n) || n < (1LL << 20))
		return hf_xasprintf("%s: %s is not a rate of at least 1M (a "
				    "size per second: 50M, 1G; 0 for no limit)",
				    flag, val);
	o->resync_rate = n;
	return NULL;
}

static char *flag_dr_listen(struct hf_agent_opts *o, const char *flag,
			    const char *val)
{
	const char *colon = strrchr(val, ':');
	int64_t port;

	if (!colon || colon == val || !parse_i64(colon + 1, 0, 65535, &port))
		return hf_xasprintf("%s: %s is not HOST:PORT (a numeric address; "
				    "port 0 picks one)", flag, val);
	free(o->dr_listen);
	o->dr_listen = hf_xstrdup(val);
	return NULL;
}

/* --dr-cert, --dr-key, --dr-ca: a readable file, kept as an absolute path. */
static char *dr_file(char **dst, const char *flag, const char *val)
{
	char *abs = realpath(val, NULL);

	if (!abs || access(abs, R_OK) != 0) {
		char *e = hf_xasprintf("%s: %s: %s", flag, val, strerror(errno));

		free(abs);
		return e;
	}
	free(*dst);
	*dst = abs;
	return NULL;
}

static char *flag_dr_cert(struct hf_agent_opts *o, const char *flag,
			  const char *val)
{
	return dr_file(&o->dr_cert, flag, val);
}

static char *flag_dr_key(struct hf_agent_opts *o, const char *flag,
			 const char *val)
{
	return dr_file(&o->dr_key, flag, val);
}

static char *flag_dr_ca(struct hf_agent_opts *o, const char *flag,
			const char *val)
{
	return dr_file(&o->dr_ca, flag, val);
}

static char *flag_tls_insecure(struct hf_agent_opts *o, const char *f,
			       const char *v)
{
	o->tls_insecure = true;
	return NULL;
}

static char *flag_print_info(struct hf_agent_opts *o, const char *f,
			     const char *v)
{
	o->print_info = true;
	return NULL;
}

/* The parser's table, and what `holdfast help agent` prints. */
static const struct {
	struct hf_cmd_flag doc;
	flag_fn set;
} flags[] = {
    {{"--server", "URL[,URL...]", 0,
      "the servers' URLs (required); several are tried in turn, and a "
      "follower's answer points the agent at the leader"},
     flag_server},
    {{"--data", "DIR", 0,
      "sandboxes, volumes and the agent's own state (default "
      DEFAULT_DATA ")"},
     flag_data},
    {{"--node-id", "ID", 0,
      "this node's name (default: the one it used before, else the host "
      "name)"},
     flag_node_id},
    {{"--attributes", "k=v,...", 0,
      "attributes for placement constraints, e.g. zone=a,rack=r1"},
     flag_attributes},
    {{"--resources", "cpus=N,memory=MB,disk=MB,ports=A-B", 0,
      "what the node offers; the server never reserves more (default: "
      "detected, ports 10000-20000)"},
     flag_resources},
    {{"--storage", "DIR[,size=N]", 0,
      "give the node a storage pool for replicated volumes' replicas "
      "(thin: sparse files in DIR, created 0700 if missing); size= caps "
      "it (500M, 10G, 1.5T; a bare number is GiB), else it may fill the "
      "filesystem's free space. Without it the node is storage-less"},
     flag_storage},
    {{"--volume-port", "N", 0,
      "the TCP port the node's replica server listens on, on --address "
      "when it is a numeric address (else on every address), with a "
      "storage pool; 0, the default, picks a free one, which the node "
      "reports"},
     flag_volume_port},
    {{"--volume-resync-rate", "RATE", 0,
      "how fast each copy to a replica that was away (resync, "
      "re-replication) may go, as a size per second (50M, 1G; default "
      "100M; 0 for no limit), so the volume's own writes keep the disk"},
     flag_resync_rate},
    {{"--dr-listen", "HOST:PORT", 0,
      "with a storage pool: a TLS listener of the replica server for "
      "other sites' disaster-recovery streams to the standby replicas "
      "this node holds (docs/operations.md, \"Disaster recovery\"); "
      "needs --dr-cert, --dr-key and --dr-ca"},
     flag_dr_listen},
    {{"--dr-cert", "FILE", 0,
      "the DR listener's certificate (PEM), which the other site's CA "
      "file must verify"},
     flag_dr_cert},
    {{"--dr-key", "FILE", 0, "the DR listener's private key (PEM)"},
     flag_dr_key},
    {{"--dr-ca", "FILE", 0,
      "the CA (PEM) that signs the other sites' client certificates: "
      "only their streams are taken"},
     flag_dr_ca},
    {{"--token-file", "FILE", 0,
      "the join token (the tokens file's agent role), read from a private "
      "file; $HOLDFAST_TOKEN also works; not needed for a server on this "
      "machine run by the same user"},
     flag_token_file},
    {{"--token", "TOKEN", 0,
      "the join token, shown to every local user by ps: prefer "
      "--token-file"},
     flag_token},
    {{"--address", "ADDR", 0,
      "how other hosts reach this node: its task log and exec API and the "
      "endpoints it advertises (default 127.0.0.1)"},
     flag_address},
    {{"--holdfast-bin", "PATH", 0,
      "the holdfast binary whose directory holds the holdfast-shim that "
      "runs tasks (default: this one)"},
     flag_bin},
    {{"--ca-file", "PEM", 0,
      "CA certificates that verify an https server (default: the "
      "system's)"},
     flag_ca_file},
    {{"--tls-insecure", NULL, 0,
      "do not verify the server's certificate (labs only)"},
     flag_tls_insecure},
    {{"--sandbox-keep", "SECONDS", 0,
      "how long an exited task's sandbox is kept for its logs (default "
      "3600)"},
     flag_sandbox_keep},
    {{"--launched-keep", "SECONDS", 0,
      "how long the id of a task that left the node is remembered, so "
      "that it is never launched again (default 604800, 7 days)"},
     flag_launched_keep},
    {{"--log-max-bytes", "N", 0,
      "rotate a task's stdout and stderr at this size (default 10485760; "
      "0 never)"},
     flag_log_max_bytes},
    {{"--log-keep", "N", 0,
      "rotated log files kept per stream (default 3)"},
     flag_log_keep},
    {{"--hide-from-tasks", "DIR", 0,
      "a directory no task may see (repeatable); the agent's data dir, "
      "/etc/holdfast and /var/lib/holdfast are always hidden"},
     flag_hide},
    {{"--artifact-dir", "DIR", 0,
      "where file:// URIs may point (repeatable; default none: file:// "
      "URIs are refused)"},
     flag_artifact_dir},
    {{"--launch-workers", "N", 0,
      "launches (and other slow jobs: artifact fetches, volume deletions) "
      "in flight at once (default 8)"},
     flag_launch_workers},
    /* Shorter waits make tests quick. */
    {{"--wait", "SECONDS", 0,
      "how long the server may hold a sync when nothing changes (default "
      "10; for tests)"},
     flag_wait},
    {{"--print-info", NULL, 0,
      "print what the agent would report about this node (JSON) and exit"},
     flag_print_info},
};

const struct hf_cmd_flag *hf_agent_flag(size_t i)
{
	return i < HF_ARRAY_LEN(flags) ? &flags[i].doc : NULL;
}

const struct hf_cmd hf_agent_cmd = {
    "agent", NULL, hf_agent_main, "--server URL[,URL...] [FLAG...]",
    "run the node agent: sandboxes, volumes, shims, checks",
    "Registers this node with the server and keeps its tasks at the\n"
    "desired set the server hands out. Tasks keep running when the agent\n"
    "stops; a restarted agent reattaches to them. It joins with the\n"
    "token in FILE (or $HOLDFAST_TOKEN; a server on this machine run by\n"
    "the same user needs none) and keeps a credential of its own in DIR.",
    hf_agent_flag};

int hf_agent_opts_parse(struct hf_agent_opts *o, int argc, char **argv,
			char **errmsg)
{
	char *env_token = hf_cred_take_env("HOLDFAST_TOKEN");
	char *err = NULL;

	*errmsg = NULL;
	for (int i = 1; i < argc && !err; i++) {
		const char *arg = argv[i], *val = NULL, *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct hf_cmd_flag *doc = NULL;
		flag_fn set = NULL;

		for (size_t k = 0; k < HF_ARRAY_LEN(flags) && !set; k++)
			if (strlen(flags[k].doc.name) == len &&
			    strncmp(arg, flags[k].doc.name, len) == 0) {
				doc = &flags[k].doc;
				set = flags[k].set;
			}
		/* A switch takes no value, not even after '='. */
		if (!set || (!doc->arg && eq)) {
			err = hf_xasprintf("unknown argument \"%s\"", arg);
			break;
		}
		if (doc->arg && eq)
			val = eq + 1;
		else if (doc->arg && i + 1 < argc)
			val = argv[++i];
		if (doc->arg && !val) {
			err = hf_xasprintf("%.*s needs a value", (int)len, arg);
			break;
		}
		{
			char *flag = hf_xstrndup(arg, len);

			err = set(o, flag, val);
			free(flag);
		}
	}
	if (!err && !o->token && env_token) {
		o->token = env_token;
		env_token = NULL;
	}
	if (env_token)
		explicit_bzero(env_token, strlen(env_token));
	free(env_token);
	if (!err && !o->print_info && o->servers.len == 0)
		err = hf_xstrdup("--server is required");
	if (!err && (o->dr_listen || o->dr_cert || o->dr_key || o->dr_ca) &&
	    !(o->dr_listen && o->dr_cert && o->dr_key && o->dr_ca))
		err = hf_xstrdup("--dr-listen, --dr-cert, --dr-key and --dr-ca "
				 "go together");
	if (!err && o->dr_listen && !o->storage_dir)
		err = hf_xstrdup("--dr-listen needs a storage pool (--storage): "
				 "standby replicas live there");
	if (err) {
		*errmsg = err;
		return HF_EINVAL;
	}
	return 0;
}

/* ---- the node's info ------------------------------------------------ */

/* Free space (MB) of dir, or of its nearest existing ancestor. */
static int64_t free_disk_mb(const char *dir)
{
	char *p = hf_xstrdup(dir);
	struct statvfs vfs;
	int64_t mb = 0;

	for (;;) {
		char *slash;

		if (statvfs(p, &vfs) == 0) {
			mb = (int64_t)((unsigned long long)vfs.f_bavail *
				       vfs.f_frsize / (1024 * 1024));
			break;
		}
		slash = strrchr(p, '/');
		if (!slash || slash == p) {
			if (statvfs("/", &vfs) == 0)
				mb = (int64_t)((unsigned long long)vfs.f_bavail *
					       vfs.f_frsize / (1024 * 1024));
			break;
		}
		*slash = '\0';
	}
	free(p);
	return mb;
}

static void build_info(const struct hf_agent_opts *o, int cg_version,
		       const char *cg_note, int64_t started_at,
		       struct hf_proto_node_info *info)
{
	char host[256] = "";
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	gethostname(host, sizeof(host) - 1);
	info->hostname = hf_xstrdup(host);
	info->address = o->address ? hf_xstrdup(o->address) : NULL;
	hf_kvlist_copy(&info->attributes, &o->attributes);
	for (size_t i = 0; i < o->ports.len; i++) {
		struct hf_proto_port_range *r = HF_VEC_PUSH(&info->ports);

		r->begin = o->ports.items[i].begin;
		r->end = o->ports.items[i].end;
	}
	if (o->ports.len == 0) {
		struct hf_proto_port_range *r = HF_VEC_PUSH(&info->ports);

		r->begin = DEFAULT_PORTS_BEGIN;
		r->end = DEFAULT_PORTS_END;
	}
	info->cpus = o->cpus > 0 ? o->cpus : (double)(ncpu > 0 ? ncpu : 1);
	info->memory_mb = o->memory_mb > 0
			      ? o->memory_mb
			      : (int64_t)pages * psize / (1024 * 1024);
	info->disk_mb =
	    o->disk_mb > 0 ? o->disk_mb : free_disk_mb(o->data_dir);
	info->cgroups_version = cg_version;
	info->cgroups_note = hf_xstrdup(cg_note);
	info->agent_version = hf_xstrdup(HF_VERSION);
	info->started_at = started_at;
}

static int print_info(const struct hf_agent_opts *o)
{
	char *note = NULL, *text;
	int version = hf_cgroup_probe(&note);
	struct hf_proto_node_info info;
	json_t *j;

	hf_proto_node_info_init(&info);
	build_info(o, version, note ? note : "", hf_now_ms(), &info);
	/* The pool as it is now, if it exists; nothing is created. */
	if (o->storage_dir) {
		info.storage.pool = realpath(o->storage_dir, NULL);
		info.has_storage =
		    info.storage.pool &&
		    ag_pool_stat(info.storage.pool, o->storage_size,
				 &info.storage) == 0;
	}
	j = hf_proto_node_info_encode(&info);
	text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("%s\n", text);
	free(text);
	json_decref(j);
	hf_proto_node_info_release(&info);
	free(note);
	return 0;
}

/* ---- start-up --------------------------------------------------------- */

static void agent_release(struct hf_agent *ag)
{
	if (ag->api)
		hf_agent_api_stop(ag->api);
	for (size_t i = 0; i < ag->tasks.len; i++)
		ag_task_free(ag->tasks.items[i]);
	HF_VEC_FREE(&ag->tasks);
	HF_VEC_FREE(&ag->attn);
	for (size_t i = 0; i < ag->jobs.len; i++)
		free(ag->jobs.items[i].key);
	HF_VEC_FREE(&ag->jobs);
	HF_VEC_FREE(&ag->running);
	free(ag->workers);
	hf_strlist_release(&ag->fetching);
	pthread_mutex_destroy(&ag->cache_mu);
	pthread_cond_destroy(&ag->cache_cv);
	ag_launched_release(ag);
	hf_strlist_release(&ag->volumes_deleted);
	hf_strlist_release(&ag->volumes_queued);
	hf_proto_node_info_release(&ag->info);
	ag_pool_close(&ag->pool);
	if (ag->wakefd >= 0)
		close(ag->wakefd);
	if (ag->watchfd >= 0)
		close(ag->watchfd);
	for (size_t i = 0; i < ag->children.len; i++)
		if (ag->children.items[i].pidfd >= 0)
			close(ag->children.items[i].pidfd);
	HF_VEC_FREE(&ag->children);
	if (ag->childfd >= 0)
		close(ag->childfd);
	pthread_mutex_destroy(&ag->mu);
	pthread_cond_destroy(&ag->sync_cv);
	pthread_cond_destroy(&ag->work_cv);
	free(ag->data);
	free(ag->tasks_dir);
	free(ag->volumes_dir);
	free(ag->cache_dir);
	free(ag->state_path);
	free(ag->node_id);
	free(ag->cluster_id);
	free(ag->refused);
	free(ag->link_msg);
	free(ag->reports_epoch);
	if (ag->node_token)
		explicit_bzero(ag->node_token, strlen(ag->node_token));
	free(ag->node_token);
	free(ag->shim_bin);
	free(ag->volume_bin);
	for (size_t i = 0; i < ag->attach_want.len; i++) {
		hf_proto_attachment_release(&ag->attach_want.items[i]);
	}
	HF_VEC_FREE(&ag->attach_want);
	for (size_t i = 0; i < ag->attaches.len; i++)
		free(ag->attaches.items[i].volume);
	HF_VEC_FREE(&ag->attaches);
	hf_strlist_release(&ag->replicas_deleted);
	ag_vserve_clear(ag);
	HF_VEC_FREE(&ag->held);
	free(ag->vserve.failure);
	hf_strlist_release(&ag->vserve.skipped);
	if (ag->lock_fd >= 0)
		close(ag->lock_fd);
	hf_strlist_release(&ag->hide);
	hf_strlist_release(&ag->artifact_dirs);
}

/*
 * The agent's own API for task logs and exec (agent/api.h), on this
 * node's address with a random key; both go to the server in the info.
 * Its threads start here, so the caller has blocked the signals first.
 */
/*
 * The agent keeps a socket per task's shim: raise the soft limit on open
 * files to the hard one so a node can hold thousands of tasks.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			hf_log("cannot raise the open files limit: %s",
			       strerror(errno));
	}
}

static void start_task_api(struct hf_agent *ag, const struct hf_agent_opts *o)
{
	const char *addr = o->address ? o->address : "127.0.0.1";
	char *listen = hf_xasprintf("%s:0", addr);
	const char *url = NULL, *key = NULL;
	char *err = NULL;

	if (hf_agent_api_start(o->data_dir, listen, addr, &ag->api, &url, &key,
			       &err) == 0) {
		ag->info.api = hf_xstrdup(url);
		ag->info.api_key = hf_xstrdup(key);
		hf_log("task logs and exec served at %s", url);
	} else {
		hf_log("cannot serve task logs and exec on %s: %s", listen,
		       err ? err : "unknown error");
	}
	free(err);
	free(listen);
}

/* Adds dir's canonical form to l, if it exists and is not there yet. */
static void add_canonical(struct hf_strlist *l, const char *dir,
			  const char *why)
{
	char *real = realpath(dir, NULL);

	if (!real) {
		if (why)
			hf_log("%s %s: %s", why, dir, strerror(errno));
		return;
	}
	if (!hf_strlist_has(l, real))
		hf_strlist_push(l, real);
	free(real);
}

/*
 * A task run as another user reaches its sandbox through the directories
 * above the hidden one that holds it: say so at start if one is closed.
 */
/*
 * Without a mount namespace per task, a task that runs as another user
 * reaches its sandbox through the node's own directories: say so when one
 * above the data directory is closed to other users. (With namespaces the
 * shim covers such a directory in the task's view; see shim/confine.c.)
 */
static void check_reachable(const struct hf_agent *ag)
{
	char *dir, *slash;
	struct stat st;

	if (ag->isolate)
		return;
	dir = hf_xstrdup(ag->data);
	while ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH)) {
			hf_log("tasks that run as another user cannot reach "
			       "their sandboxes: %s is closed to other users "
			       "(mode %04o) and this agent cannot give tasks a "
			       "mount namespace of their own",
			       dir, (unsigned)st.st_mode & 07777);
			break;
		}
	}
	free(dir);
}

/*
 * What tasks may reach: a mount namespace each (with holdfast's own
 * directories hidden in it) where the node allows it, and the
 * directories file:// URIs may read from.
 */
static void init_isolation(struct hf_agent *ag, const struct hf_agent_opts *o)
{
	static const char *const defaults[] = {"/etc/holdfast",
					       "/var/lib/holdfast"};
	char *why = NULL;

	add_canonical(&ag->hide, ag->data, NULL);
	for (size_t i = 0; i < HF_ARRAY_LEN(defaults); i++)
		add_canonical(&ag->hide, defaults[i], NULL);
	for (size_t i = 0; i < o->hide_from_tasks.len; i++)
		add_canonical(&ag->hide, o->hide_from_tasks.items[i],
			      "--hide-from-tasks: cannot use");
	for (size_t i = 0; i < o->artifact_dirs.len; i++)
		add_canonical(&ag->artifact_dirs, o->artifact_dirs.items[i],
			      "--artifact-dir: cannot use");
	ag->isolate = hf_confine_probe(&why);
	if (ag->isolate)
		hf_log("tasks run in mount namespaces of their own; hidden "
		       "from them: %zu director%s (first %s)", ag->hide.len,
		       ag->hide.len == 1 ? "y" : "ies", ag->hide.items[0]);
	else
		hf_log("tasks are NOT isolated: %s; volumes are linked into "
		       "sandboxes and holdfast's files stay visible to root "
		       "tasks", why);
	check_reachable(ag);
	ag->info.has_isolation = true;
	ag->info.mount_namespaces = ag->isolate;
	ag->info.isolation_note = hf_xstrdup(
	    why ? why : "tasks run in mount namespaces of their own");
	for (size_t i = 0; i < ag->hide.len; i++)
		hf_strlist_push(&ag->info.hidden, ag->hide.items[i]);
	free(why);
}

/*
 * Replica files are no task's business: the pool is hidden like the data
 * directory (unless it lies inside a hidden directory already).
 */
static void hide_pool(struct hf_agent *ag)
{
	for (size_t i = 0; i < ag->hide.len; i++) {
		size_t n = strlen(ag->hide.items[i]);

		if (strncmp(ag->pool.dir, ag->hide.items[i], n) == 0 &&
		    (ag->pool.dir[n] == '/' || !ag->pool.dir[n]))
			return;
	}
	hf_strlist_push(&ag->hide, ag->pool.dir);
	hf_strlist_push(&ag->info.hidden, ag->pool.dir);
}

/*
 * This node's own credential (nodeauth.h): made once, kept private in the
 * data directory before the server ever hears of it, so a registration
 * whose answer was lost is simply repeated with the same token.
 */
static int load_node_token(struct hf_agent *ag)
{
	char *path = hf_xasprintf("%s/node-token", ag->data);
	char *text = NULL, *err = NULL;
	int rc = hf_cred_read_private(path, "node credential", 4096, &text,
				      NULL, &err);

	if (rc == HF_ENOTFOUND) {
		char *tok = hf_cred_new_token(), *line;

		line = hf_xasprintf("%s\n", tok);
		rc = hf_write_file_atomic(path, line, strlen(line), 0600);
		explicit_bzero(line, strlen(line));
		free(line);
		if (rc) {
			hf_log("cannot write %s: %s", path, strerror(errno));
			free(tok);
			goto out;
		}
		ag->node_token = tok;
		goto out;
	}
	if (rc) {
		hf_log("%s", err);
		goto out;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if (!*text) {
		hf_log("%s is empty: remove it, and have an operator reset "
		       "this node's identity",
		       path);
		rc = HF_EINVAL;
		goto out;
	}
	ag->node_token = hf_xstrdup(text);
out:
	if (text)
		explicit_bzero(text, strlen(text));
	free(text);
	free(err);
	free(path);
	return rc;
}

static int agent_init(struct hf_agent *ag, const struct hf_agent_opts *o)
{
	char *note = NULL, *bin;
	int version, rc;

	memset(ag, 0, sizeof(*ag));
	hf_proto_node_info_init(&ag->info);
	ag->opts = o;
	ag->wakefd = -1;
	ag->watchfd = -1;
	ag->childfd = -1;
	ag->lock_fd = -1;
	ag->pool.lock_fd = -1;
	pthread_mutex_init(&ag->mu, NULL);
	pthread_cond_init(&ag->sync_cv, NULL);
	pthread_cond_init(&ag->work_cv, NULL);
	pthread_mutex_init(&ag->cache_mu, NULL);
	pthread_cond_init(&ag->cache_cv, NULL);
	ag->started_at = hf_now_ms();
	if (hf_fs_mkdir_p(o->data_dir, 0750, 0750) < 0) {
		hf_log("cannot create %s: %s", o->data_dir, strerror(errno));
		return HF_EIO;
	}
	/*
	 * Every path the agent keeps is canonical, so the mount table (which
	 * lists canonical paths) can be matched against them.
	 */
	ag->data = realpath(o->data_dir, NULL);
	if (!ag->data) {
		hf_log("%s: %s", o->data_dir, strerror(errno));
		return HF_EIO;
	}
	/*
	 * One agent per data directory: a second one would reattach to the
	 * same shims and report them as the same node.
	 */
	{
		char *lock = hf_xasprintf("%s/agent.lock", ag->data);
		long holder = 0;
		int lrc = hf_lock_file(lock, &ag->lock_fd, &holder);

		if (lrc == HF_EUNAVAIL)
			hf_log("the data directory %s is in use by another "
			       "holdfast agent%s%.0ld%s; give each agent its "
			       "own --data",
			       ag->data, holder ? " (pid " : "", holder,
			       holder ? ")" : "");
		else if (lrc)
			hf_log("cannot lock %s: %s", lock, strerror(errno));
		free(lock);
		if (lrc)
			return lrc;
	}
	ag->tasks_dir = hf_xasprintf("%s/tasks", ag->data);
	ag->volumes_dir = hf_xasprintf("%s/volumes", ag->data);
	ag->cache_dir = hf_xasprintf("%s/cache", ag->data);
	ag->state_path = hf_xasprintf("%s/agent.json", ag->data);
	if (hf_fs_mkdir_p(ag->tasks_dir, 0750, 0750) < 0 ||
	    hf_fs_mkdir_p(ag->volumes_dir, 0750, 0750) < 0 ||
	    hf_fs_mkdir_p(ag->cache_dir, 0750, 0750) < 0) {
		hf_log("cannot create the directories under %s: %s", ag->data,
		       strerror(errno));
		return HF_EIO;
	}
	bin = o->holdfast_bin ? realpath(o->holdfast_bin, NULL)
			      : realpath("/proc/self/exe", NULL);
	if (!bin) {
		hf_log("cannot resolve the holdfast binary %s: %s",
		       o->holdfast_bin ? o->holdfast_bin : "/proc/self/exe",
		       strerror(errno));
		return HF_EIO;
	}
	/* Checked now: a missing shim would fail every launch, later. */
	ag->shim_bin = hf_shim_bin_next_to(bin);
	{
		/* holdfast-volume serves attached volumes: checked at use. */
		char *slash = strrchr(bin, '/');

		ag->volume_bin = hf_xasprintf("%.*s/holdfast-volume",
					      (int)(slash - bin), bin);
	}
	free(bin);
	rc = hf_shim_bin_check(ag->shim_bin, &note);
	if (rc) {
		hf_log("cannot start tasks: %s", note);
		free(note);
		return rc;
	}
	note = NULL;
	ag->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ag->wakefd < 0) {
		hf_log("eventfd: %s", strerror(errno));
		return HF_EIO;
	}
	ag->watchfd = epoll_create1(EPOLL_CLOEXEC);
	ag->childfd = epoll_create1(EPOLL_CLOEXEC);
	if (ag->watchfd < 0 || ag->childfd < 0) {
		hf_log("epoll: %s", strerror(errno));
		return HF_EIO;
	}
	version = hf_cgroup_probe(&note);
	if (version)
		hf_log("task cpu and memory limits are enforced with cgroups "
		       "(%s)", note ? note : "no details");
	else
		hf_log("task cpu and memory limits are NOT enforced: %s",
		       note ? note : "cgroups are not usable");
	build_info(o, version, note ? note : "", ag->started_at, &ag->info);
	free(note);
	init_isolation(ag, o);
	raise_nofile();
	start_task_api(ag, o);
	rc = ag_state_load(ag);
	/* After the state: a data directory of another node stays as it is. */
	if (!rc && load_node_token(ag))
		rc = HF_EIO;
	/* After the state too: the pool belongs to the node id it holds. */
	if (!rc)
		rc = ag_pool_open(ag);
	if (!rc && ag->pool.dir)
		hide_pool(ag);
	return rc;
}

/* ---- the supervisor ------------------------------------------------- */

/* The shim does not answer: find out whether it is starting or gone. */
static void settle_without_shim(struct hf_agent *ag, struct ag_task *t)
{
	struct hf_shim_status st;

	if (hf_task_state_final(t->state)) {
		t->need_watch = false;
		return;
	}
	if (ag_shim_alive(t->dir)) {
		/* Starting (no socket yet) or exiting (socket gone). */
		t->need_watch = true;
		t->watch_retry_at = hf_mono_ms() + WATCH_RETRY_MS;
		ag_attend(ag, t);
		return;
	}
	/*
	 * The shim has exited or died. It writes its final status before
	 * it exits (and releases the lock), so a status that is still not
	 * final now means it was killed without finishing.
	 */
	t->need_watch = false;
	hf_shim_status_init(&st);
	if (hf_shim_status_read(t->dir, &st) == 0 &&
	    hf_task_state_final(st.state))
		ag_task_apply_status(ag, t, &st);
	else
		ag_task_lost(ag, t, "the shim is gone and left no final status");
	hf_shim_status_release(&st);
}

/*
 * The shims' watch sockets are in one epoll set (ag->watchfd), so a
 * wake-up of the supervisor costs what became readable, not a look at
 * every task's socket. A socket leaves the set before it is closed: a
 * child being spawned may hold a copy of it for a moment, and its events
 * must not outlive the task they name.
 */
static void close_watch(struct hf_agent *ag, struct ag_task *t)
{
	if (t->watch_fd < 0)
		return;
	if (epoll_ctl(ag->watchfd, EPOLL_CTL_DEL, t->watch_fd, NULL) < 0 &&
	    errno != ENOENT)
		hf_log("task %s: epoll_ctl DEL: %s", t->id, strerror(errno));
	close(t->watch_fd);
	t->watch_fd = -1;
}

static void open_watch(struct hf_agent *ag, struct ag_task *t)
{
	int fd, rc = hf_shim_watch_open(t->dir, &fd);

	if (rc == 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = t};

		if (epoll_ctl(ag->watchfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			/* Out of memory or the watch limit: try again later. */
			hf_log("task %s: epoll_ctl ADD: %s", t->id,
			       strerror(errno));
			close(fd);
			t->need_watch = true;
			t->watch_retry_at = hf_mono_ms() + WATCH_RETRY_MS;
			ag_attend(ag, t);
			return;
		}
		t->watch_fd = fd;
		t->need_watch = false;
		return;
	}
	settle_without_shim(ag, t);
}

static void read_watch(struct hf_agent *ag, struct ag_task *t)
{
	struct hf_shim_status st;

	hf_shim_status_init(&st);
	for (;;) {
		int rc = hf_shim_watch_read(t->watch_fd, &st);

		if (rc == 0) {
			ag_task_apply_status(ag, t, &st);
			continue;
		}
		if (rc == HF_EUNAVAIL)
			break;
		if (rc == HF_EPARSE) {
			hf_log("task %s: the shim sent a line that is not a "
			       "status; ignored", t->id);
			continue;
		}
		/* EOF (the shim exited) or a broken connection. */
		close_watch(ag, t);
		settle_without_shim(ag, t);
		break;
	}
	hf_shim_status_release(&st);
}

void ag_child_add(struct hf_agent *ag, pid_t pid)
{
	struct ag_child *c = HF_VEC_PUSH(&ag->children);

	c->pid = pid;
	c->pidfd = AG_PIDFD_LATER;
	ag->children_later++;
}

/*
 * Opens the pidfds of the children added since the last wake-up, in the
 * supervisor's descriptor table. A child that exited meanwhile is still
 * a zombie (only this agent reaps it): its pidfd reads as exited at once.
 */
static void watch_children(struct hf_agent *ag)
{
	/* New ones are at the end (a reaped one's place takes the last). */
	for (size_t i = ag->children.len; i-- > 0 && ag->children_later;) {
		struct ag_child *c = &ag->children.items[i];
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.u64 = (uint64_t)c->pid};

		if (c->pidfd != AG_PIDFD_LATER)
			continue;
		ag->children_later--;
		c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
		if (c->pidfd >= 0 &&
		    epoll_ctl(ag->childfd, EPOLL_CTL_ADD, c->pidfd, &ev) < 0) {
			close(c->pidfd);
			c->pidfd = -1;
		}
	}
}

/*
 * Reaps the children that exited: pid's (its pidfd became readable), or
 * with pid 0 every child without a pidfd (tried now and then).
 */
static void reap_child(struct hf_agent *ag, pid_t pid)
{
	for (size_t i = 0; i < ag->children.len; i++) {
		struct ag_child *c = &ag->children.items[i];
		pid_t w;

		if (pid ? c->pid != pid : c->pidfd >= 0)
			continue;
		do
			w = waitpid(c->pid, NULL, WNOHANG);
		while (w < 0 && errno == EINTR);
		if (w == 0)
			continue; /* not yet */
		if (c->pidfd >= 0) {
			epoll_ctl(ag->childfd, EPOLL_CTL_DEL, c->pidfd, NULL);
			close(c->pidfd);
		}
		if (c->pidfd == AG_PIDFD_LATER)
			ag->children_later--;
		ag->children.items[i--] =
			ag->children.items[--ag->children.len];
		if (pid)
			return;
	}
}

/* A watch socket became readable (its task is the event's data). */
static void on_watch(struct hf_agent *ag, epoll_data_t d)
{
	struct ag_task *t = d.ptr;

	if (t->watch_fd >= 0)
		read_watch(ag, t);
}

/* A shim's pidfd became readable: it exited (its pid is the data). */
static void on_child(struct hf_agent *ag, epoll_data_t d)
{
	reap_child(ag, (pid_t)d.u64);
}

/* What became ready in one of the supervisor's epoll sets, in batches. */
static void drain(struct hf_agent *ag, int epfd,
		  void (*fn)(struct hf_agent *, epoll_data_t))
{
	struct epoll_event ev[64];
	int k;

	do {
		k = epoll_wait(epfd, ev, 64, 0);
		for (int i = 0; i < k; i++)
			fn(ag, ev[i].data);
	} while (k == 64);
}

struct pending_stop {
	struct ag_task *t;
	double grace;
	char *why;     /* for the log and the stop file */
	char *record;  /* AG_STOP_FILE contents */
};

struct pending_stops {
	struct pending_stop *items;
	size_t len, cap;
};

static void add_poll(struct pollfd **pfds, struct ag_pollref **refs,
		     size_t *n, size_t *cap, int fd, short events,
		     struct ag_task *t, struct ag_check *c)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*pfds = hf_xrealloc(*pfds, *cap * sizeof(**pfds));
		*refs = hf_xrealloc(*refs, *cap * sizeof(**refs));
	}
	(*pfds)[*n] = (struct pollfd){fd, events, 0};
	(*refs)[*n] = (struct ag_pollref){t, c};
	(*n)++;
}

/*
 * Frees records whose directory a worker removed, once no job names them
 * (a worker may still be leaving the job that ended the task).
 */
static void reap_removed(struct hf_agent *ag)
{
	size_t j = 0;

	if (!ag->removed_pending)
		return; /* every wake-up comes here: no pass for nothing */
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (t->removed && t->watch_fd < 0 && !t->jobs) {
			ag_unattend(ag, t);
			ag_task_free(t);
			ag->removed_pending--;
		} else {
			ag->tasks.items[j++] = t;
		}
	}
	ag->tasks.len = j;
}

/* Sandboxes of acknowledged tasks go once they are old enough. */
static void collect_garbage(struct hf_agent *ag)
{
	int64_t now = hf_now_ms(), keep = ag->opts->sandbox_keep_s * 1000;

	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (!t->forgotten || t->removing || t->watch_fd >= 0 ||
		    t->jobs ||
		    t->terminal_at + keep > now)
			continue;
		t->removing = true;
		ag_job_push(ag, AG_JOB_REMOVE_DIR, t, NULL);
	}
}

/* Whether t still belongs on ag->attn: what prepare_poll does for it. */
static bool wants_attention(const struct ag_task *t)
{
	return (t->need_watch && t->watch_fd < 0) ||
	       (t->stop != AG_STOP_NONE && !t->stop_sent &&
		!hf_task_state_final(t->state)) ||
	       t->health || t->readiness;
}

/*
 * One pass over the tasks that need it (ag->attn) with the lock held:
 * watches to open, stops to send, checks to start or time out. Returns
 * the next deadline. A task the pass puts back on the list (a watch to
 * try again) lands at its end and is seen in this same pass.
 */
static int64_t prepare_poll(struct hf_agent *ag, struct pollfd **pfds,
			    struct ag_pollref **refs, size_t *n, size_t *cap,
			    struct pending_stops *stops)
{
	int64_t now = hf_mono_ms(), next = INT64_MAX;
	size_t j = 0;

	for (size_t i = 0; i < ag->attn.len; i++) {
		struct ag_task *t = ag->attn.items[i];
		int64_t d;

		if (t->need_watch && t->watch_fd < 0 &&
		    now >= t->watch_retry_at)
			open_watch(ag, t);
		if (t->need_watch && t->watch_fd < 0 &&
		    t->watch_retry_at < next)
			next = t->watch_retry_at;
		if (t->stop != AG_STOP_NONE && !t->stop_sent &&
		    !hf_task_state_final(t->state) && t->state != HF_TS_STAGING) {
			if (now >= t->stop_retry_at) {
				struct pending_stop *p = HF_VEC_PUSH(stops);

				p->t = t;
				p->grace = t->grace;
				p->why = hf_xstrdup(
					t->stop == AG_STOP_HEALTH
						? t->stop_message
						: "not in the desired set");
				p->record = t->stop == AG_STOP_HEALTH
						    ? hf_xasprintf("health\n%s\n",
								   t->stop_message)
						    : hf_xstrdup("order\n");
				t->stop_retry_at = now + STOP_RETRY_MS;
			}
			if (t->stop_retry_at < next)
				next = t->stop_retry_at;
		}
		d = ag_checks_tick(ag, t, pfds, refs, n, cap);
		if (d < next)
			next = d;
		if (wants_attention(t))
			ag->attn.items[j++] = t;
		else
			t->attn = false;
	}
	ag->attn.len = j;
	return next;
}

/*
 * Sends the stops with the lock released (each is a round trip to a
 * shim). The reason is written first: a restarted agent that finds the
 * task ended must still know it was stopped on the server's order (and
 * report "killed") or for its health (and report the health message).
 */
static void send_stops(struct hf_agent *ag, struct pending_stop *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct ag_task *t = s[i].t;
		char *path = hf_xasprintf("%s/%s", t->dir, AG_STOP_FILE);
		int rc;

		if (hf_write_file_atomic(path, s[i].record, strlen(s[i].record),
					 0600))
			hf_log("task %s: cannot record the stop in %s: %s",
			       t->id, path, strerror(errno));
		free(path);
		rc = hf_shim_stop(t->dir, s[i].grace);
		pthread_mutex_lock(&ag->mu);
		if (rc == 0 && !t->stop_sent) {
			t->stop_sent = true;
			hf_log("task %s: stopping (%s; SIGKILL after %gs)",
			       t->id, s[i].why, s[i].grace);
		} else if (rc == HF_EUNAVAIL) {
			/* Not listening (exiting, or starting): watch it. */
			if (t->watch_fd < 0 &&
			    !hf_task_state_final(t->state)) {
				t->need_watch = true;
				ag_attend(ag, t);
			}
		} else if (rc) {
			hf_log("task %s: the shim refused the stop: %s", t->id,
			       hf_err_msg(rc));
		}
		pthread_mutex_unlock(&ag->mu);
		free(s[i].why);
		free(s[i].record);
	}
}

/* Returns true when the agent should shut down. */
static bool read_signals(int sigfd, int *count)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			hf_log("SIGHUP ignored");
			continue;
		}
		if (++*count > 1) {
			hf_log("second %s: exiting at once",
			       strsignal((int)si.ssi_signo));
			_exit(1);
		}
		hf_log("%s: shutting down; tasks keep running under their "
		       "shims", strsignal((int)si.ssi_signo));
		stop = true;
	}
	return stop;
}

static void supervise(struct hf_agent *ag, int sigfd)
{
	struct pollfd *pfds = NULL;
	struct ag_pollref *refs = NULL;
	struct pending_stops stops = {0};
	size_t n, cap = 0;
	int64_t next_gc = 0;
	int signals = 0;

	pthread_mutex_lock(&ag->mu);
	for (;;) {
		int64_t next, now;
		int timeout;

		now = hf_mono_ms();
		n = 0;
		add_poll(&pfds, &refs, &n, &cap, sigfd, POLLIN, NULL, NULL);
		add_poll(&pfds, &refs, &n, &cap, ag->wakefd, POLLIN, NULL,
			 NULL);
		add_poll(&pfds, &refs, &n, &cap, ag->watchfd, POLLIN, NULL,
			 NULL);
		add_poll(&pfds, &refs, &n, &cap, ag->childfd, POLLIN, NULL,
			 NULL);
		reap_removed(ag);
		watch_children(ag);
		if (now >= next_gc) {
			reap_child(ag, 0);
			collect_garbage(ag);
			next_gc = now + GC_INTERVAL_MS;
		}
		stops.len = 0;
		next = prepare_poll(ag, &pfds, &refs, &n, &cap, &stops);
		if (next > next_gc)
			next = next_gc;
		if (now >= ag->attach_next)
			ag->attach_next = ag_attach_reconcile(ag);
		if (ag->attach_next < next)
			next = ag->attach_next;
		if (now >= ag->vserve_next)
			ag->vserve_next = ag_vserve_reconcile(ag);
		if (ag->vserve_next < next)
			next = ag->vserve_next;
		pthread_mutex_unlock(&ag->mu);

		send_stops(ag, stops.items, stops.len);
		now = hf_mono_ms();
		timeout = next <= now ? 0 : next - now > 60000 ? 60000
							       : (int)(next - now);
		if (stops.len)
			timeout = 0; /* the loop re-reads what changed */
		if (poll(pfds, n, timeout) < 0 && errno != EINTR) {
			hf_log("poll: %s", strerror(errno));
			sleep(1);
		}

		pthread_mutex_lock(&ag->mu);
		if (pfds[0].revents && read_signals(sigfd, &signals))
			break;
		if (pfds[1].revents) {
			uint64_t v;

			if (read(ag->wakefd, &v, sizeof(v)) < 0) {
				/* EAGAIN: already drained. */
			}
		}
		if (pfds[2].revents)
			drain(ag, ag->watchfd, on_watch);
		if (pfds[3].revents)
			drain(ag, ag->childfd, on_child);
		for (size_t i = 4; i < n; i++) {
			struct ag_pollref *r = &refs[i];

			if (!pfds[i].revents)
				continue;
			if (r->c)
				ag_check_event(ag, r->t, r->c, pfds[i].fd,
					       pfds[i].revents);
		}
	}
	ag->stopping = true;
	pthread_cond_broadcast(&ag->sync_cv);
	pthread_cond_broadcast(&ag->work_cv);
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (t->health)
			ag_check_cancel(t->health);
		if (t->readiness)
			ag_check_cancel(t->readiness);
		close_watch(ag, t);
	}
	pthread_mutex_unlock(&ag->mu);
	free(pfds);
	free(refs);
	HF_VEC_FREE(&stops);
}

/*
 * After the workers have stopped, launches still queued have created
 * nothing: taking their ids back out of agent.json lets the next agent
 * launch them instead of reporting them lost.
 */
static void unrecord_unstarted(struct hf_agent *ag)
{
	size_t before = ag->launched.len;

	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];

		if (t->state == HF_TS_STAGING)
			ag_launched_remove(ag, t->id);
	}
	if (ag->launched.len != before)
		ag_state_save(ag);
}

/*
 * Joins a thread while still reading signals: a second SIGTERM or SIGINT
 * ends the agent at once instead of waiting for a long poll to return.
 */
static void join_watching(pthread_t th, int sigfd, int *signals,
			  const char *what)
{
	bool said = false;
	int64_t start = hf_mono_ms();

	for (;;) {
		struct pollfd p = {sigfd, POLLIN, 0};

		if (pthread_tryjoin_np(th, NULL) == 0)
			return;
		if (!said && hf_mono_ms() - start > 1000) {
			hf_log("waiting for %s to finish (send the signal "
			       "again to exit now)", what);
			said = true;
		}
		if (poll(&p, 1, 50) > 0)
			read_signals(sigfd, signals);
	}
}

int hf_agent_run(const struct hf_agent_opts *opts)
{
	struct hf_agent ag;
	pthread_t longpoll, shortsync;
	size_t nworkers;
	sigset_t mask, old;
	struct sigaction ign;
	int sigfd = -1, rc, signals = 1;

	/*
	 * Signals are read from a descriptor. They are blocked before any
	 * thread starts (the task API's included), as threads inherit the
	 * mask: a SIGTERM must never land in a thread where its default
	 * action would end the agent. SIGPIPE is ignored: a check's peer
	 * may close first. SIGCHLD keeps its default action so children
	 * stay waitable by pid (the checks reap their own; shims are
	 * reaped through pidfds, ag_child_add).
	 */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, NULL);
	ign.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &ign, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, &old);

	/* Before any thread: both libraries initialise globals lazily. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_object_seed(0);
	if (opts->ca_file || opts->tls_insecure)
		hf_httpc_set_tls(opts->ca_file, opts->tls_insecure);
	rc = agent_init(&ag, opts);
	if (rc)
		goto out;
	hf_log("node %s, data %s, servers %zu (first %s), shim %s",
	       ag.node_id, ag.data, opts->servers.len,
	       opts->servers.len ? opts->servers.items[0] : "-", ag.shim_bin);
	sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sigfd < 0) {
		hf_log("signalfd: %s", strerror(errno));
		rc = HF_EIO;
		goto out;
	}

	ag_reattach(&ag);
	nworkers = opts->launch_workers > 0 ? (size_t)opts->launch_workers
					    : AG_DEFAULT_WORKERS;
	ag.workers = hf_xcalloc(nworkers, sizeof(*ag.workers));
	for (; ag.nworkers < nworkers; ag.nworkers++)
		if (pthread_create(&ag.workers[ag.nworkers], NULL,
				   ag_worker_thread, &ag))
			break;
	if (!ag.nworkers) {
		hf_log("cannot start a thread");
		rc = HF_EIO;
		goto out;
	}
	if (pthread_create(&longpoll, NULL, ag_long_poll_thread, &ag)) {
		hf_log("cannot start a thread");
		abort();
	}
	if (pthread_create(&shortsync, NULL, ag_short_sync_thread, &ag)) {
		hf_log("cannot start a thread");
		abort();
	}
	supervise(&ag, sigfd);
	join_watching(shortsync, sigfd, &signals, "the sync in flight");
	for (size_t i = 0; i < ag.nworkers; i++)
		join_watching(ag.workers[i], sigfd, &signals,
			      "the jobs in progress");
	join_watching(longpoll, sigfd, &signals, "the long poll");
	unrecord_unstarted(&ag);
	hf_log("stopped");
	rc = 0;
out:
	if (sigfd >= 0)
		close(sigfd);
	agent_release(&ag);
	curl_global_cleanup();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int hf_agent_main(int argc, char **argv)
{
	struct hf_agent_opts o;
	char *err = NULL;
	int rc;

	hf_log_init("holdfast-agent", false);
	hf_agent_opts_init(&o);
	if (hf_agent_opts_parse(&o, argc, argv, &err)) {
		fprintf(stderr, "holdfast agent: %s\n", err);
		hf_cmd_usage(&hf_agent_cmd);
		free(err);
		hf_agent_opts_release(&o);
		return 2;
	}
	if (o.print_info)
		rc = print_info(&o);
	else
		rc = hf_agent_run(&o) ? 1 : 0;
	hf_agent_opts_release(&o);
	return rc;
}
