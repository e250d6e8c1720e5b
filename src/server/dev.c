/*
 * dev.c - `holdfast dev`: a server and one agent on this machine, each its
 * own process running the same code as `holdfast server` and `holdfast
 * agent`, talking the same protocol over loopback. dev supervises both:
 * a child that dies is started again; SIGINT/SIGTERM stops both (tasks
 * keep running under their shims and are picked up by the next dev).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cmd.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/spawn.h"
#include "http/cred.h"
#include "server/server.h"
#include "server/state.h"

struct child {
	const char *name;
	char **argv;
	/* An environment variable it gets, with dev's admin token. */
	const char *token_env;
	pid_t pid;
	int64_t started;
	int64_t restart_at; /* when to start it again (ms), 0: not waiting */
	unsigned quick_deaths; /* deaths in a row soon after starting */
};

/* A child that ran this long before dying is restarted at once. */
#define STEADY_MS 10000
/* The longest wait before starting a child that keeps dying. */
#define BACKOFF_MAX_MS 30000

/*
 * dev's admin token: the server takes it as its local credential (and
 * leaves it for this user's CLI), the agent joins with it. It reaches
 * them in their environment, which only this user can read, never in
 * argv; both take it out of their environment at start.
 */
static char *dev_token;

static bool is_token_var(const char *kv)
{
	return strncmp(kv, "HOLDFAST_TOKEN=", 15) == 0 ||
	       strncmp(kv, "HOLDFAST_ADMIN_TOKEN=", 21) == 0;
}

/*
 * Starts c with dev's stdio and environment, less any token, plus
 * c->token_env. Returns 0, or -1 with *err set (the caller frees it).
 */
static int spawn(struct child *c, char **err)
{
	extern char **environ;
	char *tok = hf_xasprintf("%s=%s", c->token_env, dev_token);
	struct hf_spawn sp;
	size_t n = 0, k = 0;
	char **env;
	pid_t pid;
	int rc;

	while (environ[n])
		n++;
	env = hf_xmalloc((n + 2) * sizeof(*env));
	for (size_t i = 0; i < n; i++)
		if (!is_token_var(environ[i]))
			env[k++] = environ[i];
	env[k++] = tok;
	env[k] = NULL;
	memset(&sp, 0, sizeof(sp));
	sp.path = c->argv[0];
	sp.argv = c->argv;
	sp.envp = env;
	sp.in = -1; /* /dev/null: neither reads a terminal */
	sp.out = STDOUT_FILENO;
	sp.err = STDERR_FILENO;
	rc = hf_spawn_start(&sp, &pid, err);
	explicit_bzero(tok, strlen(tok));
	free(tok);
	free(env);
	c->started = hf_now_ms();
	c->restart_at = 0;
	if (rc == 0)
		c->pid = pid;
	return rc;
}

static char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return hf_xstrdup(buf);
}

/* The parser's table, and what `holdfast help dev` prints. */
static const struct hf_cmd_flag dev_flags[] = {
    {"--data", "DIR", 'd',
     "the server's store under DIR/server, the agent's sandboxes and "
     "volumes under DIR/agent and its storage pool under DIR/agent/pool "
     "(default /var/lib/holdfast/dev)"},
    {"--listen", "ADDR", 'l',
     "the API's address and port (default 127.0.0.1:7070)"},
    {"--nodes", "N", 'n',
     "run N agents (1-9, default 1) as nodes dev-1 ... dev-N: data in "
     "DIR/agent-<i>, a pool in DIR/agent-<i>/pool with an N-th of the free "
     "space, attribute zone=dev-<i>, a share of the ports 10000-20000"},
};

const struct hf_cmd_flag *hf_dev_flag(size_t i)
{
	return i < HF_ARRAY_LEN(dev_flags) ? &dev_flags[i] : NULL;
}

const struct hf_cmd hf_dev_cmd = {
    "dev", NULL, hf_dev_main, "[FLAG...]",
    "run a server and one agent (or N) on this machine",
    "Starts `holdfast server` and `holdfast agent` as two processes on\n"
    "this machine (embedded SQLite store under DIR/server, the agent's\n"
    "sandboxes and volumes under DIR/agent, its storage pool in\n"
    "DIR/agent/pool) and restarts either if it dies. Tasks keep running\n"
    "when dev stops. With --nodes N it runs N agents, nodes dev-1 ...\n"
    "dev-N, each with its own data, pool, zone and ports, so placement,\n"
    "spreading and node loss can be tried on one machine.",
    hf_dev_flag};

/*
 * When to start a child that died again: at once if it had been running
 * a while, else after a wait that doubles with each quick death (1 s, 2 s,
 * ... 30 s), so a child that cannot start does not spin.
 */
static void schedule_restart(struct child *c, const char *how)
{
	int64_t now = hf_now_ms(), wait = 0;
	char when[32];

	if (now - c->started < STEADY_MS) {
		unsigned n = c->quick_deaths < 5 ? c->quick_deaths : 5;

		wait = 1000LL << n;
		if (wait > BACKOFF_MAX_MS)
			wait = BACKOFF_MAX_MS;
		c->quick_deaths++;
	} else {
		c->quick_deaths = 0;
	}
	when[0] = '\0';
	if (wait)
		snprintf(when, sizeof(when), " in %lld s",
			 (long long)(wait / 1000));
	hf_log("dev: the %s %s; starting it again%s", c->name, how, when);
	c->restart_at = now + wait;
}

/* Starts c, or has it wait as a child that died at once would. */
static void start_or_wait(struct child *c)
{
	char *err = NULL, *how;

	if (spawn(c, &err) == 0)
		return;
	how = hf_xasprintf("could not be started (%s)", err);
	schedule_restart(c, how);
	free(how);
	free(err);
}

#define MAX_NODES 9

/* One agent's command line and the strings it points to. */
struct agent_args {
	char *name, *data, *pool, *node, *zone, *ports, *storage;
	char *argv[20];
};

static void agent_args_release(struct agent_args *a)
{
	free(a->name);
	free(a->data);
	free(a->pool);
	free(a->node);
	free(a->zone);
	free(a->ports);
	free(a->storage);
	memset(a, 0, sizeof(*a));
}

/*
 * Agent i of n. One agent keeps what dev always gave it (DIR/agent, the
 * host's name, a pool of the free space); several are nodes dev-<i> with
 * their own data, pool (an n-th of the free space: they share one disk),
 * zone and share of the ports 10000-20000 (tasks of two "nodes" never
 * bind the same port on this one machine). Returns 0 or -1 (errno).
 */
static int agent_args_build(struct agent_args *a, char *exe, char *url,
			    const char *data, int i, int n)
{
	size_t k = 0;

	memset(a, 0, sizeof(*a));
	if (n == 1) {
		a->name = hf_xstrdup("agent");
		a->data = hf_xasprintf("%s/agent", data);
		a->pool = hf_xasprintf("%s/pool", a->data);
		a->storage = hf_xstrdup(a->pool);
	} else {
		struct statvfs sv;
		int64_t share_mb = 0;
		int width = 10000 / n;

		a->name = hf_xasprintf("agent dev-%d", i + 1);
		a->data = hf_xasprintf("%s/agent-%d", data, i + 1);
		a->pool = hf_xasprintf("%s/pool", a->data);
		a->node = hf_xasprintf("dev-%d", i + 1);
		a->zone = hf_xasprintf("zone=dev-%d", i + 1);
		a->ports = hf_xasprintf("ports=%d-%d", 10000 + i * width,
					10000 + (i + 1) * width - 1);
		if (statvfs(data, &sv) == 0)
			share_mb = (int64_t)((double)sv.f_bavail *
					     (double)sv.f_frsize / n /
					     (1024 * 1024));
		if (share_mb < 64)
			share_mb = 64;
		a->storage = hf_xasprintf("%s,size=%lldM", a->pool,
					  (long long)share_mb);
	}
	if (hf_fs_mkdir_p(a->data, 0750, 0750))
		return -1;
	a->argv[k++] = exe;
	a->argv[k++] = (char *)"agent";
	a->argv[k++] = (char *)"--server";
	a->argv[k++] = url;
	a->argv[k++] = (char *)"--data";
	a->argv[k++] = a->data;
	/* The server's store is next to the agent's data: no task sees it. */
	a->argv[k++] = (char *)"--hide-from-tasks";
	a->argv[k++] = (char *)data;
	/* A storage pool (docs/design/volumes.md §8.3). */
	a->argv[k++] = (char *)"--storage";
	a->argv[k++] = a->storage;
	if (a->node) {
		a->argv[k++] = (char *)"--node-id";
		a->argv[k++] = a->node;
		a->argv[k++] = (char *)"--attributes";
		a->argv[k++] = a->zone;
		a->argv[k++] = (char *)"--resources";
		a->argv[k++] = a->ports;
	}
	a->argv[k] = NULL;
	return 0;
}

static bool any_running(const struct child *kids, int n)
{
	for (int i = 0; i < n; i++)
		if (kids[i].pid > 0)
			return true;
	return false;
}

static bool any_waiting(const struct child *kids, int n)
{
	for (int i = 0; i < n; i++)
		if (kids[i].restart_at)
			return true;
	return false;
}

int hf_dev_main(int argc, char **argv)
{
	struct option longopts[HF_ARRAY_LEN(dev_flags) + 1];
	const char *data = "/var/lib/holdfast/dev";
	const char *listen = "127.0.0.1:7070";
	char *exe, *sdata, *url, *port, *port_file, *lock, *key_file = NULL;
	char *err = NULL;
	char *server_argv[12];
	struct agent_args agents[MAX_NODES];
	struct child kids[1 + MAX_NODES];
	int nodes = 1, nkids, built = 0;
	sigset_t mask, oldmask;
	int sfd, c, lock_fd = -1, rc = HF_EXIT_OK;
	bool stopping = false, server_up = false;
	long holder = 0;

	hf_cmd_longopts(hf_dev_flag, longopts, HF_ARRAY_LEN(longopts));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'd') {
			data = optarg;
		} else if (c == 'l') {
			listen = optarg;
		} else if (c == 'n') {
			char *end;
			long n = strtol(optarg, &end, 10);

			if (end == optarg || *end || n < 1 || n > MAX_NODES) {
				fprintf(stderr, "holdfast dev: --nodes %s: a "
						"number of nodes from 1 to %d\n",
					optarg, MAX_NODES);
				return hf_cmd_usage(&hf_dev_cmd);
			}
			nodes = (int)n;
		} else {
			fprintf(stderr, "holdfast dev: unknown or incomplete "
					"flag %s\n",
				argv[optind - 1]);
			return hf_cmd_usage(&hf_dev_cmd);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "holdfast dev: unexpected argument '%s'\n",
			argv[optind]);
		return hf_cmd_usage(&hf_dev_cmd);
	}
	exe = self_exe();
	if (!exe) {
		fprintf(stderr, "holdfast dev: cannot find its own binary\n");
		return HF_EXIT_FAIL;
	}
	sdata = hf_xasprintf("%s/server", data);
	lock = hf_xasprintf("%s/dev.lock", data);
	port_file = hf_xasprintf("%s/port", sdata);
	if (hf_fs_mkdir_p(data, 0750, 0750) ||
	    hf_fs_mkdir_p(sdata, 0750, 0700)) {
		fprintf(stderr, "holdfast dev: cannot create %s: %s%s\n", data,
			strerror(errno),
			errno == EACCES || errno == EPERM
			    ? " (run it as root, or give --data a directory "
			      "you can write)"
			    : "");
		rc = HF_EXIT_FAIL;
		goto out;
	}
	/* One dev per data directory: a second would run a second agent
	 * on the same tasks. */
	c = hf_lock_file(lock, &lock_fd, &holder);
	if (c) {
		if (c == HF_EUNAVAIL)
			fprintf(stderr,
				"holdfast dev: %s is in use by another holdfast "
				"dev%s%.0ld%s; stop it first, or give this one "
				"another --data\n",
				data, holder ? " (pid " : "", holder,
				holder ? ")" : "");
		else
			fprintf(stderr, "holdfast dev: cannot lock %s: %s\n",
				lock, strerror(errno));
		rc = HF_EXIT_FAIL;
		goto out;
	}
	unlink(port_file);
	port = strrchr(listen, ':');
	url = hf_xasprintf("http://127.0.0.1:%s", port ? port + 1 : "7070");
	server_argv[0] = exe;
	server_argv[1] = (char *)"server";
	server_argv[2] = (char *)"--data";
	server_argv[3] = sdata;
	server_argv[4] = (char *)"--listen";
	server_argv[5] = (char *)listen;
	server_argv[6] = (char *)"--port-file";
	server_argv[7] = port_file;
	server_argv[8] = NULL;
	/* Encrypted volumes work out of the box: a cluster key of its own. */
	key_file = hf_xasprintf("%s/cluster.key", sdata);
	if (access(key_file, F_OK) != 0) {
		char *hex = hf_random_hex(32), *line = hf_xasprintf("%s\n", hex);

		c = hf_write_file_atomic(key_file, line, strlen(line), 0600);
		explicit_bzero(hex, strlen(hex));
		explicit_bzero(line, strlen(line));
		free(hex);
		free(line);
		if (c) {
			fprintf(stderr, "holdfast dev: cannot write %s: %s\n",
				key_file, strerror(errno));
			free(url);
			rc = HF_EXIT_FAIL;
			goto out;
		}
	}
	server_argv[8] = (char *)"--cluster-key-file";
	server_argv[9] = key_file;
	server_argv[10] = NULL;
	kids[0] = (struct child){"server", server_argv, "HOLDFAST_ADMIN_TOKEN",
				 0, 0, 0, 0};
	for (int i = 0; i < nodes; i++) {
		built = i + 1;
		if (agent_args_build(&agents[i], exe, url, data, i, nodes)) {
			fprintf(stderr, "holdfast dev: cannot create %s: %s\n",
				agents[i].data, strerror(errno));
			free(url);
			rc = HF_EXIT_FAIL;
			goto out;
		}
		kids[1 + i] = (struct child){agents[i].name, agents[i].argv,
					     "HOLDFAST_TOKEN", 0, 0, 0, 0};
	}
	nkids = 1 + nodes;
	dev_token = hf_cred_new_token();

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	hf_log("dev: data in %s, API on %s", data, url);
	/*
	 * The agent starts once the server is up: were the port taken by
	 * another server, the agent would join that one.
	 */
	if (spawn(&kids[0], &err)) {
		hf_log("dev: the server could not start (%s); stopping", err);
		free(err);
		stopping = true;
		rc = HF_EXIT_FAIL;
	}
	while (any_running(kids, nkids) ||
	       (!stopping && (any_waiting(kids, nkids) || !server_up))) {
		struct signalfd_siginfo si;
		struct pollfd pfd = {sfd, POLLIN, 0};
		int64_t now = hf_now_ms(), next = -1;
		pid_t pid;
		int status;
		ssize_t n;

		if (!server_up && !stopping) {
			if (access(port_file, F_OK) == 0) {
				server_up = true;
				for (int i = 1; i < nkids; i++)
					start_or_wait(&kids[i]);
			} else {
				next = 100;
			}
		}
		for (int i = 0; i < nkids && !stopping; i++) {
			if (!kids[i].restart_at)
				continue;
			if (kids[i].restart_at <= now)
				start_or_wait(&kids[i]);
			else if (next < 0 || kids[i].restart_at - now < next)
				next = kids[i].restart_at - now;
		}
		if (poll(&pfd, 1, (int)next) <= 0)
			continue;
		n = read(sfd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			stopping = true;
			for (int i = 0; i < nkids; i++)
				if (kids[i].pid > 0)
					kill(kids[i].pid, SIGTERM);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			char *how;

			for (int i = 0; i < nkids; i++) {
				if (kids[i].pid != pid)
					continue;
				kids[i].pid = 0;
				if (stopping)
					continue;
				/*
				 * A server that never came up (its port is
				 * taken, its store cannot be opened) will not
				 * on its own: say so and stop, rather than
				 * loop.
				 */
				if (i == 0 && !server_up) {
					hf_log("dev: the server could not start "
					       "(%s %d; its log is above); "
					       "stopping",
					       WIFEXITED(status) ? "status"
								 : "signal",
					       WIFEXITED(status)
						   ? WEXITSTATUS(status)
						   : WTERMSIG(status));
					stopping = true;
					rc = HF_EXIT_FAIL;
					for (int k = 1; k < nkids; k++)
						if (kids[k].pid > 0)
							kill(kids[k].pid,
							     SIGTERM);
					continue;
				}
				how = hf_xasprintf(
				    "stopped (%s %d)",
				    WIFEXITED(status) ? "status" : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status)
						      : WTERMSIG(status));
				schedule_restart(&kids[i], how);
				free(how);
			}
		}
	}
	close(sfd);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	hf_log("dev: stopped");
	free(url);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(exe);
	free(sdata);
	for (int k = 0; k < built; k++)
		agent_args_release(&agents[k]);
	free(lock);
	free(port_file);
	free(key_file);
	if (dev_token)
		explicit_bzero(dev_token, strlen(dev_token));
	free(dev_token);
	dev_token = NULL;
	return rc;
}
