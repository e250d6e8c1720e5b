/*
 * shim.c - holdfast-shim --dir TASKDIR: detach from the agent, start the
 * task, then one poll() loop over a signalfd, the task's output pipes and
 * the control socket until the task has exited and its status is on disk.
 * The contract (files, socket protocol, exit codes) is in shim.h.
 *
 * Single-threaded. No logic runs in signal handlers: there are none;
 * SIGCHLD, SIGTERM and SIGINT arrive through the signalfd.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/rlimit.h"
#include "common/rng.h"
#include "common/spawn.h"
#include "common/sys.h"
#include "common/util.h"
#include "shim/cgroup.h"
#include "shim/confine.h"
#include "shim/json.h"
#include "shim/shim.h"
#include "shim/shim_int.h"
#include "shim/tasklog.h"
#include "task/lifecycle.h"

#define LAUNCH_MAX_BYTES (1024 * 1024)
#define DRAIN_MS 2000         /* wait for pipe EOF after the exit */
#define SETTLE_MS 1000        /* wait for leftovers to die after SIGKILL */
#define FLUSH_MS 1000         /* last status lines to watchers */
#define MAX_CLIENTS 64
#define CLIENT_OUT_MAX (1024 * 1024)
#define PIPE_SIZE (1024 * 1024)

struct exec_plan;

struct client {
	int fd;
	struct hf_buf in;
	struct hf_buf out;
	size_t out_off;     /* bytes of out already sent */
	bool watching;
	bool eof;           /* the peer will send nothing more */
	bool dead;          /* to be closed at the end of this loop turn */
};

struct shim {
	char *dir;                  /* absolute TASKDIR */
	bool foreground;
	struct hf_shim_launch launch;
	struct hf_shim_status st;
	struct hf_cgroup cg;
	struct hf_tasklog logs[2];  /* stdout, stderr */
	int pipes[2];               /* read ends; -1 at EOF */
	int lockfd, readyfd, sigfd, listenfd;
	int agent_err;              /* the agent's stderr until ready, or -1 */
	bool sock_bound;
	HF_VEC(struct client *) clients;
	pid_t pid;                  /* the task's main process (= its pgid);
				       0 between two (restart backoff) */
	bool main_exited;           /* the task has ended for good */
	int wstatus;
	int64_t kill_at;            /* monotonic ms of the SIGKILL; 0 none */
	int64_t drain_until;        /* monotonic ms; set once main exited */
	/* Restarts in place (launch.restart; RESTARTS in shim.h). */
	struct exec_plan *plan;     /* kept for the next start */
	unsigned failures;          /* exits in a row, reset by reset_after */
	int64_t up_since;           /* monotonic ms the process started */
	int64_t restart_at;         /* monotonic ms; 0: no restart pending */
	struct hf_rng rng;          /* the backoff's jitter */
	char *end_note;             /* why the task was not restarted */
	long long oom_kills;        /* the cgroup's OOM kills seen so far */
};

/* ---- small helpers -------------------------------------------------- */

static char *dir_path(const struct shim *sh, const char *name)
{
	return hf_xasprintf("%s/%s", sh->dir, name);
}

/*
 * The signals' names without "SIG", as glibc's sigabbrev_np() gives them
 * (musl has no such function; its strsignal() gives descriptions): one
 * name per number, so SIGIOT, SIGCLD and SIGIO are known as ABRT, CHLD
 * and POLL, and real-time signals only by number.
 */
static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{SIGHUP, "HUP"},       {SIGINT, "INT"},       {SIGQUIT, "QUIT"},
	{SIGILL, "ILL"},       {SIGTRAP, "TRAP"},     {SIGABRT, "ABRT"},
	{SIGBUS, "BUS"},       {SIGFPE, "FPE"},       {SIGKILL, "KILL"},
	{SIGUSR1, "USR1"},     {SIGSEGV, "SEGV"},     {SIGUSR2, "USR2"},
	{SIGPIPE, "PIPE"},     {SIGALRM, "ALRM"},     {SIGTERM, "TERM"},
#ifdef SIGSTKFLT
	{SIGSTKFLT, "STKFLT"},
#endif
	{SIGCHLD, "CHLD"},     {SIGCONT, "CONT"},     {SIGSTOP, "STOP"},
	{SIGTSTP, "TSTP"},     {SIGTTIN, "TTIN"},     {SIGTTOU, "TTOU"},
	{SIGURG, "URG"},       {SIGXCPU, "XCPU"},     {SIGXFSZ, "XFSZ"},
	{SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"},     {SIGWINCH, "WINCH"},
	{SIGPOLL, "POLL"},
#ifdef SIGPWR
	{SIGPWR, "PWR"},
#endif
	{SIGSYS, "SYS"},
};

/* "HUP" or "SIGHUP" or "1" -> 1; 0 when unknown. */
static int signal_by_name(const char *name)
{
	char *end;
	long n;

	if (hf_str_has_prefix(name, "SIG"))
		name += 3;
	for (size_t i = 0; i < HF_ARRAY_LEN(signal_names); i++)
		if (strcmp(signal_names[i].name, name) == 0)
			return signal_names[i].sig;
	n = strtol(name, &end, 10);
	return *name && !*end && n > 0 && n < NSIG ? (int)n : 0;
}

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(signal_names); i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return "?";
}

/* ---- status --------------------------------------------------------- */

static void client_send(struct client *c, const char *line);

/*
 * Writes status.json (atomically: a crash leaves the old or the new
 * status, never a torn one) and then tells the watchers, so a watcher
 * never sees a state that is not yet in the file. Only a final status is
 * made durable (fsync): it says how the task ended, which the agent
 * must still report after a power loss; a live status means nothing
 * once the machine is down (the task is gone with it, and a status.json
 * from before, or none, reads as lost). The previous status stays in
 * status.json.new to be swapped back in: a launch frees no inode.
 */
static void publish(struct shim *sh)
{
	char *text = hf_shim_status_format(&sh->st);
	char *file = hf_xasprintf("%s\n", text);
	char *path = dir_path(sh, "status.json");
	int flags = HF_WRITE_KEEP_OLD;

	if (hf_task_state_final(sh->st.state))
		flags |= HF_WRITE_DURABLE;
	if (hf_write_file_replace(path, file, strlen(file), 0644, flags))
		hf_log("cannot write %s: %s", path, strerror(errno));
	for (size_t i = 0; i < sh->clients.len; i++)
		if (sh->clients.items[i]->watching)
			client_send(sh->clients.items[i], text);
	free(text);
	free(file);
	free(path);
}

static void HF_PRINTF(2, 3) fail_start(struct shim *sh, const char *fmt, ...)
{
	va_list ap;

	free(sh->st.message);
	va_start(ap, fmt);
	{
		struct hf_buf b = HF_BUF_INIT;

		hf_buf_vaddf(&b, fmt, ap);
		sh->st.message = hf_buf_detach(&b);
	}
	va_end(ap);
	hf_log("%s: failed to start: %s", sh->dir, sh->st.message);
	if (sh->agent_err >= 0)
		dprintf(sh->agent_err, "holdfast-shim: %s: failed to start: "
			"%s\n", sh->dir, sh->st.message);
	sh->st.state = HF_TS_FAILED_TO_START;
	sh->st.finished_at = hf_now_ms();
	publish(sh);
}

/* Tells the first process (see detach) how startup went. */
static void notify_ready(struct shim *sh)
{
	char c = sh->st.state == HF_TS_RUNNING ? '0' : '1';

	if (sh->agent_err >= 0)
		close(sh->agent_err);
	sh->agent_err = -1;
	if (sh->readyfd < 0)
		return;
	if (write(sh->readyfd, &c, 1) < 0) {
		/* It was killed: nobody to tell. */
	}
	close(sh->readyfd);
	sh->readyfd = -1;
}

/*
 * A task the shim restarts in place: the shim moves into its cgroup once,
 * after the start was reported (the move waits for the kernel, 10-20 ms),
 * so each restart's process is born there instead of moving in on the
 * restart's path (cgroup.h, hf_cgroup_enter).
 */
static void enter_cgroup(struct shim *sh)
{
	int err;

	if (!sh->launch.restart.on || !sh->cg.version)
		return;
	err = hf_cgroup_enter(&sh->cg);
	if (err) {
		hf_log("restarts join the task's cgroup themselves: the shim "
		       "cannot move into it: %s", strerror(err));
		return;
	}
	hf_cgroup_close_fds(&sh->cg);
}

/* ---- clients -------------------------------------------------------- */

static void client_flush(struct client *c)
{
	while (!c->dead && c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off,
				 c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			c->dead = true;
			break;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out.len) {
		hf_buf_reset(&c->out);
		c->out_off = 0;
	}
}

/*
 * Queues one line and sends what the socket takes now. A client that lets
 * a megabyte pile up is not reading; it is dropped rather than allowed to
 * grow the shim without bound.
 */
static void client_send(struct client *c, const char *line)
{
	if (c->dead)
		return;
	hf_buf_adds(&c->out, line);
	hf_buf_addc(&c->out, '\n');
	if (c->out.len - c->out_off > CLIENT_OUT_MAX) {
		c->dead = true;
		return;
	}
	client_flush(c);
}

static void client_reply(struct client *c, bool ok, const char *error)
{
	struct hf_jw w;
	char *text;

	hf_jw_init(&w);
	hf_jw_open(&w, '{');
	hf_jw_key(&w, "ok");
	hf_jw_bool(&w, ok);
	if (error) {
		hf_jw_key(&w, "error");
		hf_jw_str(&w, error);
	}
	hf_jw_close(&w, '}');
	text = hf_jw_detach(&w);
	client_send(c, text);
	free(text);
}

static void client_free(struct client *c)
{
	close(c->fd);
	hf_buf_release(&c->in);
	hf_buf_release(&c->out);
	free(c);
}

/* ---- stopping ------------------------------------------------------- */

static void kill_task(struct shim *sh, int sig)
{
	/*
	 * Until the main process is reaped its pid cannot be reused, so
	 * -pid names only the task's process group.
	 */
	if (sh->pid > 0 && !sh->main_exited)
		kill(-sh->pid, sig);
	if (sig == SIGKILL)
		hf_cgroup_kill_all(&sh->cg);
}

static void end_for_good(struct shim *sh, const char *why);

static void request_stop(struct shim *sh, double grace)
{
	int64_t at = hf_mono_ms() + (int64_t)(grace * 1000);

	if (sh->main_exited)
		return;
	if (sh->restart_at) {
		/* Waiting to restart: nothing runs, so it ends now. */
		sh->st.stop_requested = true;
		hf_log("stop requested during the restart backoff");
		end_for_good(sh, NULL);
		return;
	}
	if (!sh->st.stop_requested) {
		sh->st.stop_requested = true;
		/* No grace: nothing to warn, the loop kills at once. */
		if (grace > 0) {
			hf_log("stopping the task (SIGTERM, SIGKILL in %gs)",
				 grace);
			kill_task(sh, SIGTERM);
		}
		publish(sh);
	}
	if (!sh->kill_at || at < sh->kill_at)
		sh->kill_at = at > 0 ? at : 1;
}

/* ---- the socket protocol -------------------------------------------- */

static void op_status(struct shim *sh, struct client *c, const struct hf_json *req)
{
	char *text = hf_shim_status_format(&sh->st);

	client_send(c, text);
	free(text);
}

static void op_watch(struct shim *sh, struct client *c, const struct hf_json *req)
{
	c->watching = true;
	op_status(sh, c, req);
}

static void op_stop(struct shim *sh, struct client *c, const struct hf_json *req)
{
	const struct hf_json *g = hf_json_get(req, "grace");
	double grace = sh->launch.kill_grace_period;

	if (!hf_json_is_null(g)) {
		if (!hf_json_is_number(g) || !isfinite(g->d) || g->d < 0 ||
		    g->d > 86400) {
			client_reply(c, false, "\"grace\" must be a number of "
					       "seconds from 0 to 86400");
			return;
		}
		grace = g->d;
	}
	request_stop(sh, grace);
	client_reply(c, true, NULL);
}

static void op_signal(struct shim *sh, struct client *c, const struct hf_json *req)
{
	const struct hf_json *v = hf_json_get(req, "signal");
	int sig = 0;

	if (hf_json_str(v))
		sig = signal_by_name(v->s);
	else if (v && v->type == HF_JSON_INT && v->i > 0 && v->i < NSIG)
		sig = (int)v->i;
	if (!sig) {
		client_reply(c, false, "\"signal\" must be a signal name such "
				       "as \"HUP\" or a number");
		return;
	}
	if (sh->main_exited) {
		client_reply(c, false, "the task has exited");
		return;
	}
	if (!sh->pid) {
		client_reply(c, false, "the task is waiting to be restarted");
		return;
	}
	hf_log("sending SIG%s to the task", signal_name(sig));
	kill_task(sh, sig);
	client_reply(c, true, NULL);
}

static const struct {
	const char *name;
	void (*run)(struct shim *sh, struct client *c, const struct hf_json *req);
} ops[] = {
	{"status", op_status},
	{"watch", op_watch},
	{"stop", op_stop},
	{"signal", op_signal},
};

static void handle_line(struct shim *sh, struct client *c, const char *line)
{
	struct hf_json *req = NULL;
	const char *op;
	char *err = NULL;

	/* A request that is not JSON gets the same answer as one without op. */
	if (hf_json_parse(line, strlen(line), &req, &err))
		free(err);
	op = hf_json_str(hf_json_get(req, "op"));

	if (!op) {
		client_reply(c, false, "a request is a JSON object with an "
				       "\"op\" on one line");
		goto out;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(ops); i++) {
		if (strcmp(ops[i].name, op) == 0) {
			ops[i].run(sh, c, req);
			goto out;
		}
	}
	err = hf_xasprintf("unknown op \"%s\" (expected status, watch, stop "
			   "or signal)", op);
	client_reply(c, false, err);
	free(err);
out:
	hf_json_free(req);
}

static void client_read(struct shim *sh, struct client *c)
{
	char buf[4096];
	ssize_t n;
	char *nl;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/*
		 * EOF: a watcher may have half-closed and keep reading; any
		 * other client is closed once its replies are flushed (see
		 * drop_dead_clients).
		 */
		c->eof = true;
		c->dead = n < 0;
		return;
	}
	hf_buf_add(&c->in, buf, (size_t)n);
	while (!c->dead && (nl = memchr(c->in.data, '\n', c->in.len))) {
		size_t len = (size_t)(nl - c->in.data);
		char *line = hf_xstrndup(c->in.data, len);

		memmove(c->in.data, nl + 1, c->in.len - len - 1);
		c->in.len -= len + 1;
		c->in.data[c->in.len] = '\0';
		handle_line(sh, c, line);
		free(line);
	}
	if (c->in.len > HF_SHIM_MAX_LINE) {
		client_reply(c, false, "request line too long");
		c->eof = true;
		hf_buf_reset(&c->in);
	}
}

static void accept_clients(struct shim *sh)
{
	for (;;) {
		int fd = accept4(sh->listenfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;

		if (fd < 0)
			return; /* EAGAIN, or a client that went away */
		if (sh->clients.len >= MAX_CLIENTS) {
			static const char busy[] = "{\"ok\":false,"
						   "\"error\":\"too many "
						   "clients\"}\n";

			send(fd, busy, sizeof(busy) - 1,
			     MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c = hf_xcalloc(1, sizeof(*c));
		c->fd = fd;
		*HF_VEC_PUSH(&sh->clients) = c;
	}
}

static void drop_dead_clients(struct shim *sh)
{
	size_t j = 0;

	for (size_t i = 0; i < sh->clients.len; i++) {
		struct client *c = sh->clients.items[i];

		if (c->dead || (c->eof && !c->watching &&
				c->out_off == c->out.len))
			client_free(c);
		else
			sh->clients.items[j++] = c;
	}
	sh->clients.len = j;
}

static int listen_socket(struct shim *sh)
{
	struct sockaddr_un sa;
	char *path = dir_path(sh, HF_SHIM_SOCK);
	int dirfd = -1, len, rc = -1;
	mode_t old;

	len = hf_shim_sock_addr(sh->dir, &sa, &dirfd);
	if (len < 0) {
		fail_start(sh, "cannot open %s: %s", sh->dir,
			   hf_err_msg(len));
		goto out;
	}
	/* We hold the lock: a socket file left here is stale. */
	unlink(path);
	sh->listenfd = socket(AF_UNIX,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sh->listenfd < 0) {
		fail_start(sh, "cannot create a socket: %s", strerror(errno));
		goto out;
	}
	old = umask(0177); /* the socket is for the agent (root) only */
	if (bind(sh->listenfd, (struct sockaddr *)&sa, (socklen_t)len) < 0) {
		umask(old);
		fail_start(sh, "cannot bind %s: %s", path, strerror(errno));
		goto out;
	}
	umask(old);
	sh->sock_bound = true;
	if (listen(sh->listenfd, 16) < 0) {
		fail_start(sh, "cannot listen on %s: %s", path,
			   strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (dirfd >= 0)
		close(dirfd);
	free(path);
	return rc;
}

static void remove_socket(struct shim *sh)
{
	char *path = dir_path(sh, HF_SHIM_SOCK);

	if (sh->listenfd >= 0)
		close(sh->listenfd);
	sh->listenfd = -1;
	if (sh->sock_bound)
		unlink(path);
	sh->sock_bound = false;
	free(path);
}

/* ---- starting the task ---------------------------------------------- */

/* Everything the child needs, prepared before fork (no allocation after). */
struct exec_plan {
	const struct shim *sh;
	pid_t shim_pid;
	char *argv[4];
	char **envp;
	/*
	 * A command of plain words, run without the shell (direct_plan):
	 * its words and the paths tried, in the shell's order; empty (items
	 * NULL) when the shell must run it.
	 */
	struct hf_strlist words, direct;
	struct hf_confine confine;
	/* Per rlimit: "set RLIMIT_NOFILE to 1024 (hard 4096)". */
	char **rlimit_what;
};

/*
 * The task's setup between fork and exec (hf_spawn runs it after the
 * signal reset, setsid and stdio). Only system calls.
 */
static int task_setup(void *arg, const char **what)
{
	const struct exec_plan *p = arg;
	const struct hf_shim_launch *l = &p->sh->launch;
	int err;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		*what = "set the parent-death signal";
		return errno;
	}
	/* The shim may have died before prctl: then we must not run. */
	if (getppid() != p->shim_pid) {
		*what = "start the task: the shim has gone";
		return ESRCH;
	}
	/* Born there already when the shim is inside (hf_cgroup_enter). */
	err = p->sh->cg.self_in ? 0 : hf_cgroup_join_self(&p->sh->cg);
	if (err) {
		*what = "join the task cgroup";
		return err;
	}
	/* Before dropping privileges: raising a hard limit needs root. */
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_shim_rlimit *r = &l->rlimits.items[i];
		struct rlimit rl = {
			r->soft < 0 ? RLIM_INFINITY : (rlim_t)r->soft,
			r->hard < 0 ? RLIM_INFINITY : (rlim_t)r->hard,
		};

		if (setrlimit(r->resource, &rl) < 0) {
			*what = p->rlimit_what[i];
			return errno;
		}
	}
	return hf_confine_apply(&p->confine, what);
}

static void plan_release(struct exec_plan *p)
{
	if (p->envp)
		for (char **e = p->envp; *e; e++)
			free(*e);
	free(p->envp);
	for (size_t i = 0; p->rlimit_what && i < p->sh->launch.rlimits.len; i++)
		free(p->rlimit_what[i]);
	free(p->rlimit_what);
	hf_strlist_release(&p->words);
	hf_strlist_release(&p->direct);
	hf_confine_release(&p->confine);
	memset(p, 0, sizeof(*p));
}

/*
 * The shell's reserved words and builtins (dash's): a command starting with
 * one of them means something only the shell can do.
 */
static const char *const shell_words[] = {
	"!", ".", ":", "[", "{", "}", "alias", "bg", "break", "case", "cd",
	"chdir", "command", "continue", "do", "done", "echo", "elif", "else",
	"esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi",
	"for", "getopts", "hash", "if", "in", "jobs", "kill", "local",
	"printf", "pwd", "read", "readonly", "return", "set", "shift", "test",
	"then", "times", "trap", "true", "type", "ulimit", "umask", "unalias",
	"unset", "until", "wait", "while",
};

/* The shell's search path when the environment has no PATH (dash's). */
#define SHELL_DEFAULT_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/*
 * A command made only of plain words ("sleep 3600", "exec ./bin/server
 * --port=8080") means to the shell: find the first word as it would and
 * exec it with the words as arguments. Running it that way directly saves
 * a process creation and an exec per start and restart, and the task's pid
 * is its program's, not a waiting shell's. Anything else (quotes,
 * expansions, redirections, operators, globs, comments, assignments,
 * builtins, reserved words) keeps the shell. Sets p->words and p->direct,
 * or leaves them NULL.
 */
static void direct_plan(struct exec_plan *p, const char *cmd, char **envp)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789_-./:,+@%^= \t";
	const char *path = SHELL_DEFAULT_PATH, *w;
	struct hf_strlist *words = &p->words, *direct = &p->direct;

	if (cmd[strspn(cmd, plain)] != '\0')
		return;
	for (const char *c = cmd; *c;) {
		size_t n;

		c += strspn(c, " \t");
		n = strcspn(c, " \t");
		/* "exec PROG ...": what the shell would exec is PROG. */
		if (n && !(words->len == 0 && n == 4 &&
			   strncmp(c, "exec", 4) == 0 && c[n] != '\0'))
			*HF_VEC_PUSH(words) = hf_xstrndup(c, n);
		c += n;
	}
	if (words->len == 0)
		goto shell;
	w = words->items[0];
	if (strchr(w, '=') || w[0] == '-')
		goto shell;
	for (size_t i = 0; i < HF_ARRAY_LEN(shell_words); i++)
		if (strcmp(w, shell_words[i]) == 0)
			goto shell;
	for (char **e = envp; *e; e++)
		if (hf_str_has_prefix(*e, "PATH="))
			path = *e + 5;
	if (strchr(w, '/')) {
		hf_strlist_push(direct, w);
	} else {
		/* Each entry in order; an empty one is the working directory. */
		for (const char *d = path;; d++) {
			size_t n = strcspn(d, ":");

			*HF_VEC_PUSH(direct) =
				n ? hf_xasprintf("%.*s/%s", (int)n, d, w)
				  : hf_xstrdup(w);
			d += n;
			if (*d == '\0')
				break;
		}
	}
	/* NULL-terminated for execve, the terminator outside len. */
	*HF_VEC_PUSH(words) = NULL;
	words->len--;
	*HF_VEC_PUSH(direct) = NULL;
	direct->len--;
	return;
shell:
	hf_strlist_release(words);
	hf_strlist_release(direct);
}

/* Resolves the user and the task's confinement, builds argv and envp. */
static int plan_build(struct shim *sh, struct exec_plan *p)
{
	const struct hf_shim_launch *l = &sh->launch;
	struct stat st;
	char *err = NULL;

	p->sh = sh;
	p->shim_pid = getpid();
	if (stat(l->sandbox, &st) < 0) {
		fail_start(sh, "sandbox %s: %s", l->sandbox, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fail_start(sh, "sandbox %s is not a directory", l->sandbox);
		return -1;
	}
	if (hf_shim_rlimits_check(l, &err) ||
	    hf_confine_prepare(&p->confine, l, true, &err)) {
		fail_start(sh, "%s", err);
		free(err);
		return -1;
	}
	p->rlimit_what = hf_xcalloc(l->rlimits.len + 1, sizeof(char *));
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_shim_rlimit *r = &l->rlimits.items[i];

		p->rlimit_what[i] = hf_xasprintf(
			"set %s to %lld (hard %lld; -1 is unlimited)",
			hf_rlimit_name(r->resource), (long long)r->soft,
			(long long)r->hard);
	}
	p->argv[0] = "sh";
	p->argv[1] = "-c";
	p->argv[2] = l->cmd;
	p->argv[3] = NULL;
	p->envp = hf_xcalloc(l->env.len + 1, sizeof(char *));
	for (size_t i = 0; i < l->env.len; i++)
		p->envp[i] = hf_xasprintf("%s=%s", l->env.items[i].key,
					  l->env.items[i].value);
	direct_plan(p, l->cmd, p->envp);
	return 0;
}

static int open_logs(struct shim *sh)
{
	static const char *const names[2] = {"stdout", "stderr"};
	const struct hf_shim_launch *l = &sh->launch;

	for (int i = 0; i < 2; i++) {
		char *path = hf_xasprintf("%s/%s", l->sandbox, names[i]);
		int rc = hf_tasklog_open(&sh->logs[i], path,
					 (uint64_t)l->log_max_bytes,
					 l->log_keep);

		if (rc)
			fail_start(sh, "cannot open %s: %s", path,
				   strerror(errno));
		free(path);
		if (rc)
			return -1;
	}
	return 0;
}

/* The inode of the task's mount namespace, for checks and exec to join. */
static uint64_t mount_ns_of(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/*
 * Starts the task's process from sh->plan: new pipes, the same sandbox,
 * cgroup, limits, identity and namespace set-up every time (the first
 * start and each restart in place). On success the status says "running"
 * with the new pid (not yet published); on failure *err says why (the
 * caller frees it).
 */
static int start_process(struct shim *sh, char **err)
{
	struct hf_spawn sp;
	int out[2] = {-1, -1}, errp[2] = {-1, -1};
	int rc = -1;

	*err = NULL;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		*err = hf_xasprintf("cannot create pipes: %s", strerror(errno));
		goto out;
	}
	/* A bigger pipe lets a chatty task run ahead of a slow disk. */
	fcntl(out[0], F_SETPIPE_SZ, PIPE_SIZE);
	fcntl(errp[0], F_SETPIPE_SZ, PIPE_SIZE);

	memset(&sp, 0, sizeof(sp));
	sp.path = "/bin/sh";
	sp.argv = sh->plan->argv;
	sp.envp = sh->plan->envp;
	sp.direct = sh->plan->direct.items;
	sp.direct_argv = sh->plan->words.items;
	sp.in = -1;
	sp.out = out[1];
	sp.err = errp[1];
	sp.new_session = true;
	sp.setup = task_setup;
	sp.setup_arg = sh->plan;
	/* One thread, and the setup is system calls on prepared data. */
	sp.share_memory = true;
	if (hf_spawn_start(&sp, &sh->pid, err)) {
		sh->pid = 0;
		goto out;
	}
	sh->up_since = hf_mono_ms();
	sh->pipes[0] = out[0];
	sh->pipes[1] = errp[0];
	out[0] = errp[0] = -1;
	fcntl(sh->pipes[0], F_SETFL, O_NONBLOCK);
	fcntl(sh->pipes[1], F_SETFL, O_NONBLOCK);
	/* A restart joins the cgroup again unless the shim is in it. */
	if (!sh->launch.restart.on || sh->cg.self_in)
		hf_cgroup_close_fds(&sh->cg);
	sh->st.pid = sh->pid;
	sh->st.pgid = sh->pid;
	if (sh->launch.isolate)
		sh->st.mnt_ns = mount_ns_of(sh->pid);
	sh->st.started_at = hf_now_ms();
	sh->st.state = HF_TS_RUNNING;
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return rc;
}

static int spawn_task(struct shim *sh)
{
	char *err = NULL;

	sh->plan = hf_xcalloc(1, sizeof(*sh->plan));
	sh->plan->confine.join_fd = -1;
	if (plan_build(sh, sh->plan) || open_logs(sh))
		return -1;
	if (start_process(sh, &err)) {
		fail_start(sh, "%s", err);
		free(err);
		return -1;
	}
	hf_log("task %s started as pid %d", sh->launch.task_id,
		 (int)sh->pid);
	publish(sh);
	return 0;
}

/* ---- the exit ------------------------------------------------------- */

/*
 * Nothing the task started may outlive it: its process group, its cgroup
 * and every orphan re-parented to us are killed, repeatedly, until none is
 * left (a dying parent re-parents its children to us; a forking one may
 * add members between two sweeps) or a second has passed.
 */
static void kill_leftovers(struct shim *sh)
{
	int64_t until = hf_mono_ms() + SETTLE_MS;

	for (;;) {
		int left = 0;

		if (kill(-sh->pid, SIGKILL) == 0)
			left++;
		left += hf_cgroup_kill_all(&sh->cg);
		/* As a child subreaper it inherits every orphan of the task. */
		left += hf_shim_kill_procs(getpid(), 0);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (!left || hf_mono_ms() > until)
			break;
		hf_sleep_ms(5);
	}
}

static int start_process(struct shim *sh, char **err);

/* Reads what the task's pipes hold now, then closes them. */
static void drain_pipes(struct shim *sh)
{
	char buf[65536];

	for (int i = 0; i < 2; i++) {
		/* Bounded: a leftover that keeps writing cannot hold us. */
		for (int round = 0; sh->pipes[i] >= 0 && round < 64; round++) {
			ssize_t n = read(sh->pipes[i], buf, sizeof(buf));

			if (n > 0)
				hf_tasklog_write(&sh->logs[i], buf, (size_t)n);
			else if (!(n < 0 && errno == EINTR))
				break;
		}
		if (sh->pipes[i] >= 0)
			close(sh->pipes[i]);
		sh->pipes[i] = -1;
	}
}

/*
 * The task has ended and will not run again: its last exit becomes the
 * exit of the launch (finish() writes it). why, when not NULL, is why a
 * restart did not happen.
 */
static void end_for_good(struct shim *sh, const char *why)
{
	struct hf_shim_status *st = &sh->st;

	if (sh->restart_at || why) {
		/* The exit was recorded as "last": it is the final one. */
		st->has_exit_code = st->has_last_exit_code;
		st->exit_code = st->last_exit_code;
		st->signal = st->last_signal;
		st->finished_at = st->last_exit_at;
	}
	sh->restart_at = 0;
	st->backoff = false;
	st->restart_at = 0;
	if (why) {
		hf_log("not restarting the task: %s", why);
		free(sh->end_note);
		sh->end_note = hf_xstrdup(why);
	}
	sh->main_exited = true;
	sh->kill_at = 0;
	sh->drain_until = hf_mono_ms() + DRAIN_MS;
}

/* Starts the task again after an exit (its backoff is over). */
static void restart_now(struct shim *sh)
{
	char *err = NULL;

	sh->restart_at = 0;
	if (start_process(sh, &err)) {
		char *why = hf_xasprintf("the restart failed: %s", err);

		end_for_good(sh, why);
		free(why);
		free(err);
		return;
	}
	sh->st.restarts++;
	sh->st.last_restart_at = sh->st.started_at;
	sh->st.backoff = false;
	sh->st.restart_at = 0;
	free(sh->st.message);
	sh->st.message = hf_xasprintf(
	    "restarted in place (%u so far) after it %s %d", sh->st.restarts,
	    sh->st.has_last_exit_code ? "exited with code"
				      : "was killed by signal",
	    sh->st.has_last_exit_code ? sh->st.last_exit_code
				      : sh->st.last_signal);
	hf_log("task %s restarted as pid %d (restart %u)",
	       sh->launch.task_id, (int)sh->pid, sh->st.restarts);
	publish(sh);
}

/*
 * After an exit with a restart policy: restart at once (the first exit in
 * a row), or after the backoff; or give up when the policy's max is
 * reached. Returns false when the task ends for good instead.
 */
static bool schedule_restart(struct shim *sh)
{
	const struct hf_shim_restart *p = &sh->launch.restart;
	struct hf_shim_status *st = &sh->st;
	int64_t now = hf_mono_ms(), delay;

	if (!p->on || st->stop_requested)
		return false;
	if (now - sh->up_since >= (int64_t)(p->reset_after * 1000))
		sh->failures = 0;
	sh->failures++;
	st->has_last_exit_code = st->has_exit_code;
	st->last_exit_code = st->exit_code;
	st->last_signal = st->signal;
	st->last_exit_at = st->finished_at;
	/*
	 * Whether the OOM killer ended this process: the cgroup outlives it,
	 * so its counter must have grown since the last exit (see finish()
	 * for the SIGKILL and 137 cases).
	 */
	st->last_oom_killed = false;
	if (st->last_signal == SIGKILL ||
	    (st->has_last_exit_code && st->last_exit_code == 128 + SIGKILL)) {
		long long kills = hf_cgroup_oom_kills(&sh->cg);

		st->last_oom_killed = kills > sh->oom_kills;
		if (kills > sh->oom_kills)
			sh->oom_kills = kills;
	}
	st->has_exit_code = false;
	st->exit_code = st->signal = 0;
	st->finished_at = 0;
	st->pid = st->pgid = 0;
	sh->pid = 0;
	drain_pipes(sh);
	if (p->max > 0 && sh->failures > (uint64_t)p->max) {
		char *why = hf_xasprintf("%u exits in a row, the policy's "
					 "max is %lld",
					 sh->failures, (long long)p->max);

		sh->restart_at = 1; /* what end_for_good takes as "last" */
		end_for_good(sh, why);
		free(why);
		return true;
	}
	delay = (int64_t)(1000 * hf_task_backoff(
				     sh->failures, p->backoff_base,
				     p->backoff_max,
				     (double)hf_rng_below(&sh->rng, 1000) /
					 1000.0));
	if (delay <= 0) {
		restart_now(sh);
		return true;
	}
	sh->restart_at = now + delay;
	st->state = HF_TS_STARTING;
	st->backoff = true;
	st->restart_at = hf_now_ms() + delay;
	free(st->message);
	st->message = hf_xasprintf("restarting in %lld ms (exit %u in a row)",
				   (long long)delay, sh->failures);
	hf_log("task %s exited; restarting in %lld ms", sh->launch.task_id,
	       (long long)delay);
	publish(sh);
	return true;
}

static void main_exited(struct shim *sh, int wstatus)
{
	sh->wstatus = wstatus;
	sh->st.finished_at = hf_now_ms();
	sh->st.has_exit_code = false;
	sh->st.exit_code = sh->st.signal = 0;
	if (WIFEXITED(wstatus)) {
		sh->st.has_exit_code = true;
		sh->st.exit_code = WEXITSTATUS(wstatus);
	} else if (WIFSIGNALED(wstatus)) {
		sh->st.signal = WTERMSIG(wstatus);
	}
	kill_leftovers(sh);
	sh->kill_at = 0;
	if (schedule_restart(sh))
		return;
	sh->main_exited = true;
	sh->drain_until = hf_mono_ms() + DRAIN_MS;
}

static void reap(struct shim *sh)
{
	siginfo_t si;
	int ws;
	pid_t p;

	if (sh->pid > 0 && !sh->main_exited) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)sh->pid, &si,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == sh->pid) {
			/*
			 * The main process is a zombie and still holds its
			 * pid, so its process group id cannot have been
			 * reused: kill the group before reaping.
			 */
			kill(-sh->pid, SIGKILL);
			if (waitpid(sh->pid, &ws, 0) == sh->pid)
				main_exited(sh, ws);
		}
	}
	/* Orphans re-parented to us, and a main that exited just now. */
	while ((p = waitpid(-1, &ws, WNOHANG)) > 0)
		if (p == sh->pid && !sh->main_exited)
			main_exited(sh, ws);
}

static void exit_message(struct shim *sh)
{
	struct hf_shim_status *st = &sh->st;
	struct hf_buf b = HF_BUF_INIT;

	if (st->has_exit_code)
		hf_buf_addf(&b, "exited with code %d", st->exit_code);
	else
		hf_buf_addf(&b, "killed by signal %d (SIG%s)", st->signal,
			    signal_name(st->signal));
	if (st->oom_killed)
		hf_buf_adds(&b, ": out of memory");
	if (st->stop_requested)
		hf_buf_adds(&b, " after a stop request");
	if (st->restarts)
		hf_buf_addf(&b, " (restarted in place %u time%s before)",
			    st->restarts, st->restarts == 1 ? "" : "s");
	if (sh->end_note)
		hf_buf_addf(&b, "; not restarted: %s", sh->end_note);
	free(st->message);
	st->message = hf_buf_detach(&b);
}

static void flush_clients(struct shim *sh)
{
	int64_t until = hf_mono_ms() + FLUSH_MS;

	for (;;) {
		struct pollfd pfds[MAX_CLIENTS];
		int n = 0;

		for (size_t i = 0; i < sh->clients.len; i++) {
			struct client *c = sh->clients.items[i];

			client_flush(c);
			if (!c->dead && c->out_off < c->out.len)
				pfds[n++] = (struct pollfd){c->fd, POLLOUT, 0};
		}
		if (!n || hf_mono_ms() > until)
			break;
		poll(pfds, (nfds_t)n, 50);
	}
}

static void finish(struct shim *sh)
{
	int err;

	for (int i = 0; i < 2; i++) {
		if (sh->pipes[i] >= 0) {
			hf_log("%s still open %d ms after the exit; closing "
				 "it", i ? "stderr" : "stdout", DRAIN_MS);
			close(sh->pipes[i]);
			sh->pipes[i] = -1;
		}
		if (sh->logs[i].dropped)
			hf_log("dropped %llu bytes of %s: %s",
				 (unsigned long long)sh->logs[i].dropped,
				 i ? "stderr" : "stdout",
				 strerror(sh->logs[i].last_errno));
	}
	/*
	 * The OOM killer sends SIGKILL. With `sh -c` the main process may be
	 * the shell, which reports its child's SIGKILL as exit code 137; the
	 * cgroup's counter tells whether the kernel's OOM killer did it.
	 */
	if ((sh->st.signal == SIGKILL ||
	     (sh->st.has_exit_code && sh->st.exit_code == 128 + SIGKILL)) &&
	    hf_cgroup_oom_killed(&sh->cg))
		sh->st.oom_killed = true;
	err = hf_cgroup_remove(&sh->cg);
	if (err)
		hf_log("cannot remove cgroup %s: %s", sh->cg.path,
			 strerror(err));
	exit_message(sh);
	sh->st.state = HF_TS_EXITED;
	hf_log("task %s %s", sh->launch.task_id, sh->st.message);
	publish(sh);
	flush_clients(sh);
	remove_socket(sh);
}

/* ---- the loop ------------------------------------------------------- */

static void read_pipe(struct shim *sh, int i)
{
	char buf[65536];

	/* Bounded, so one chatty stream cannot starve the socket. */
	for (int round = 0; round < 16; round++) {
		ssize_t n = read(sh->pipes[i], buf, sizeof(buf));

		if (n > 0) {
			hf_tasklog_write(&sh->logs[i], buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close(sh->pipes[i]);
		sh->pipes[i] = -1;
		return;
	}
}

static void read_signals(struct shim *sh)
{
	struct signalfd_siginfo si;

	while (read(sh->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			reap(sh);
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			request_stop(sh, sh->launch.kill_grace_period);
	}
}

static int poll_timeout(const struct shim *sh)
{
	int64_t now = hf_mono_ms(), t = -1;

	if (sh->kill_at)
		t = sh->kill_at - now;
	if (sh->main_exited && (t < 0 || sh->drain_until - now < t))
		t = sh->drain_until - now;
	if (sh->restart_at && (t < 0 || sh->restart_at - now < t))
		t = sh->restart_at - now;
	if (t < 0 && (sh->kill_at || sh->main_exited || sh->restart_at))
		t = 0;
	return t > INT_MAX ? INT_MAX : (int)t;
}

static void run_loop(struct shim *sh)
{
	HF_VEC(struct pollfd) pfds = {0};
	HF_VEC(struct client *) polled = {0};

	for (;;) {
		size_t first_client;

		if (sh->main_exited &&
		    ((sh->pipes[0] < 0 && sh->pipes[1] < 0) ||
		     hf_mono_ms() >= sh->drain_until))
			break;
		pfds.len = polled.len = 0;
		*HF_VEC_PUSH(&pfds) = (struct pollfd){sh->sigfd, POLLIN, 0};
		*HF_VEC_PUSH(&pfds) = (struct pollfd){sh->listenfd, POLLIN, 0};
		for (int i = 0; i < 2; i++)
			*HF_VEC_PUSH(&pfds) =
				(struct pollfd){sh->pipes[i], POLLIN, 0};
		first_client = pfds.len;
		for (size_t i = 0; i < sh->clients.len; i++) {
			struct client *c = sh->clients.items[i];
			short ev = c->eof ? 0 : POLLIN;

			if (c->out_off < c->out.len)
				ev |= POLLOUT;
			/* A closed peer reports POLLHUP forever: skip it. */
			if (!ev)
				continue;
			*HF_VEC_PUSH(&pfds) = (struct pollfd){c->fd, ev, 0};
			*HF_VEC_PUSH(&polled) = c;
		}
		if (poll(pfds.items, (nfds_t)pfds.len, poll_timeout(sh)) < 0 &&
		    errno != EINTR) {
			hf_log("poll: %s", strerror(errno));
			hf_sleep_ms(10);
			continue;
		}
		if (pfds.items[0].revents)
			read_signals(sh);
		for (int i = 0; i < 2; i++)
			if (pfds.items[2 + i].revents && sh->pipes[i] >= 0)
				read_pipe(sh, i);
		for (size_t i = 0; i < polled.len; i++) {
			struct client *c = polled.items[i];
			short rev = pfds.items[first_client + i].revents;

			if (rev & POLLOUT)
				client_flush(c);
			if (rev & (POLLIN | POLLHUP | POLLERR))
				client_read(sh, c);
		}
		if (pfds.items[1].revents)
			accept_clients(sh);
		if (sh->kill_at && hf_mono_ms() >= sh->kill_at) {
			hf_log("grace period over: SIGKILL");
			sh->kill_at = 0;
			kill_task(sh, SIGKILL);
		}
		if (sh->restart_at && hf_mono_ms() >= sh->restart_at)
			restart_now(sh);
		drop_dead_clients(sh);
	}
	HF_VEC_FREE(&pfds);
	HF_VEC_FREE(&polled);
}

/* ---- startup -------------------------------------------------------- */

static void shim_init(struct shim *sh)
{
	memset(sh, 0, sizeof(*sh));
	hf_shim_launch_init(&sh->launch);
	hf_shim_status_init(&sh->st);
	hf_cgroup_init(&sh->cg);
	for (int i = 0; i < 2; i++) {
		sh->logs[i].fd = -1;
		sh->pipes[i] = -1;
	}
	sh->lockfd = sh->readyfd = sh->sigfd = sh->listenfd = -1;
	sh->agent_err = -1;
	hf_rng_seed(&sh->rng, (uint64_t)hf_now_ms() ^
				  ((uint64_t)getpid() << 32));
}

/* Frees memory and closes descriptors; never touches TASKDIR. */
static void shim_release(struct shim *sh)
{
	for (size_t i = 0; i < sh->clients.len; i++)
		client_free(sh->clients.items[i]);
	HF_VEC_FREE(&sh->clients);
	for (int i = 0; i < 2; i++) {
		hf_tasklog_close(&sh->logs[i]);
		if (sh->pipes[i] >= 0)
			close(sh->pipes[i]);
	}
	if (sh->listenfd >= 0)
		close(sh->listenfd);
	if (sh->sigfd >= 0)
		close(sh->sigfd);
	if (sh->readyfd >= 0)
		close(sh->readyfd);
	if (sh->lockfd >= 0)
		close(sh->lockfd);
	if (sh->agent_err >= 0)
		close(sh->agent_err);
	if (sh->plan) {
		plan_release(sh->plan);
		free(sh->plan);
	}
	free(sh->end_note);
	hf_cgroup_release(&sh->cg);
	hf_shim_status_release(&sh->st);
	hf_shim_launch_release(&sh->launch);
	free(sh->dir);
	memset(sh, 0, sizeof(*sh));
}

/*
 * Descriptors 0-2 must be open, or the task's pipes could land on them;
 * every other inherited descriptor is closed, so that neither the
 * long-lived shim nor its task keeps the caller's pipes and sockets open.
 */
static void close_from(int first, int upto)
{
	if (first > upto)
		return;
	if (hf_sys_close_range((unsigned)first, (unsigned)upto, 0) < 0) {
		struct rlimit rl;
		int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
					  rl.rlim_cur < 65536
				  ? (int)rl.rlim_cur
				  : 65536;

		for (int fd = first; fd < max && fd <= upto; fd++)
			close(fd);
	}
}

/* keep: the --ready-fd descriptor, or -1. */
static void sanitize_fds(int keep)
{
	if (keep >= 3) {
		close_from(3, keep - 1);
		close_from(keep + 1, INT_MAX);
	} else {
		close_from(3, INT_MAX);
	}
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			open("/dev/null", O_RDWR);
}

/*
 * Refuses a TASKDIR that another shim owns or that has been launched
 * before. The shim's lock is launch.json's flock, taken before status.json
 * is looked at, so two shims started at once cannot both pass that test;
 * the file exists before any shim can start (the agent writes it first)
 * and nobody replaces it, so the lock needs no file of its own.
 */
static int claim_dir(struct shim *sh)
{
	char *launch = dir_path(sh, "launch.json");
	char *status = dir_path(sh, "status.json");
	int rc = -1;

	sh->lockfd = open(launch, O_RDONLY | O_CLOEXEC);
	if (sh->lockfd < 0) {
		fprintf(stderr, "holdfast-shim: cannot open %s: %s\n", launch,
			strerror(errno));
		goto out;
	}
	if (flock(sh->lockfd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "holdfast-shim: another shim owns %s\n",
			sh->dir);
		goto out;
	}
	if (access(status, F_OK) == 0) {
		fprintf(stderr,
			"holdfast-shim: %s was launched before (status.json "
			"exists); each launch needs a fresh task directory\n",
			sh->dir);
		goto out;
	}
	rc = 0;
out:
	free(launch);
	free(status);
	return rc;
}

/* Reads launch.json through the locked descriptor. */
static int load_launch(struct shim *sh)
{
	char *path = dir_path(sh, "launch.json"), *msg = NULL;
	struct hf_buf text = HF_BUF_INIT;
	char buf[16384];
	ssize_t n;
	int rc = 0;

	while ((n = read(sh->lockfd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			msg = hf_xstrdup(strerror(errno));
			rc = HF_EIO;
			break;
		}
		hf_buf_add(&text, buf, (size_t)n);
		if (text.len > LAUNCH_MAX_BYTES) {
			msg = hf_xasprintf("larger than %d bytes",
					   LAUNCH_MAX_BYTES);
			rc = HF_ETOOBIG;
			break;
		}
	}
	if (!rc)
		rc = hf_shim_launch_parse(text.data ? text.data : "", text.len,
					  &sh->launch, &msg);
	if (rc) {
		fprintf(stderr, "holdfast-shim: %s: %s\n", path, msg);
		/* No detached shim will run: shim_pid stays null. */
		sh->st.state = HF_TS_FAILED_TO_START;
		sh->st.finished_at = hf_now_ms();
		sh->st.message = hf_xasprintf("invalid launch.json: %s", msg);
		publish(sh);
	}
	free(path);
	hf_buf_release(&text);
	free(msg);
	return rc ? -1 : 0;
}

/*
 * Returns -1 in the detached shim (carry on), or the exit code of the
 * first process once the shim has reported how the start went. The pipe
 * closes without a byte only if the shim died during startup.
 */
static int detach(struct shim *sh)
{
	int p[2];
	char c = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "holdfast-shim: pipe: %s\n", strerror(errno));
		return HF_EXIT_FAIL;
	}
	fflush(NULL);
	pid = hf_spawn_fork();
	if (pid < 0) {
		fprintf(stderr, "holdfast-shim: fork: %s\n", strerror(errno));
		close(p[0]);
		close(p[1]);
		return HF_EXIT_FAIL;
	}
	if (pid == 0) {
		close(p[0]);
		sh->readyfd = p[1];
		/*
		 * A fresh child is never a group leader, so setsid() works:
		 * the shim leaves the agent's session and process group,
		 * and is re-parented to init when the first process exits.
		 */
		setsid();
		return -1;
	}
	close(p[1]);
	do
		n = read(p[0], &c, 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == 1)
		return c == '0' ? HF_EXIT_OK : HF_EXIT_FAIL;
	fprintf(stderr, "holdfast-shim: the shim died while starting; see "
			"%s/shim.log\n", sh->dir);
	return HF_EXIT_FAIL;
}

static int setup_signals(struct shim *sh)
{
	struct sigaction ign;
	sigset_t mask;

	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sh->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sh->sigfd < 0) {
		fail_start(sh, "signalfd: %s", strerror(errno));
		return -1;
	}
	/* Orphaned descendants come to us, not to init: see kill_leftovers. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		hf_log("cannot become a child subreaper: %s",
			 strerror(errno));
	return 0;
}

/*
 * From here on stdout and stderr are shim.log, so the shim holds none of
 * the agent's descriptors; a copy of the agent's stderr is kept until the
 * start is reported, for failed-to-start messages.
 */
static void redirect_stdio(struct shim *sh)
{
	char *path = dir_path(sh, "shim.log");
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	sh->agent_err = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	if (fd < 0)
		fd = null;
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd >= 0 && fd != null)
		close(fd);
	if (null >= 0)
		close(null);
	free(path);
}

static int shim_run(struct shim *sh, const char *dir)
{
	int code;

	sanitize_fds(sh->readyfd);
	sh->dir = realpath(dir, NULL);
	if (!sh->dir) {
		fprintf(stderr, "holdfast-shim: %s: %s\n", dir,
			strerror(errno));
		return HF_EXIT_FAIL;
	}
	if (claim_dir(sh))
		return HF_EXIT_FAIL;
	if (load_launch(sh))
		return HF_EXIT_FAIL;
	sh->st.task_id = hf_xstrdup(sh->launch.task_id);
	if (sh->readyfd >= 0) {
		/*
		 * Started by the agent with --ready-fd: no fork. The shim
		 * stays the agent's child (the agent reaps it), in a session
		 * of its own; the agent reads how the start went from fd.
		 */
		if (setsid() < 0)
			fprintf(stderr, "holdfast-shim: setsid: %s\n",
				strerror(errno));
	} else if (!sh->foreground) {
		code = detach(sh);
		if (code >= 0)
			return code;
	}
	sh->st.shim_pid = getpid();
	if (!sh->foreground)
		redirect_stdio(sh);
	if (chdir("/") < 0)
		hf_log("chdir /: %s", strerror(errno));
	sh->st.state = HF_TS_STARTING;
	if (setup_signals(sh))
		goto failed;
	publish(sh);
	if (listen_socket(sh))
		goto failed;
	hf_cgroup_setup(&sh->cg, sh->launch.cgroup_parent,
			sh->launch.task_id, sh->launch.cpus,
			sh->launch.memory_mb * 1024 * 1024);
	if (sh->cg.version)
		sh->st.cgroup = hf_xstrdup(sh->cg.path);
	if (sh->cg.note) {
		sh->st.cgroup_note = hf_xstrdup(sh->cg.note);
		hf_log("cgroup: %s", sh->cg.note);
	}
	if (spawn_task(sh))
		goto failed;
	notify_ready(sh);
	enter_cgroup(sh);
	run_loop(sh);
	finish(sh);
	return HF_EXIT_OK;
failed:
	hf_cgroup_kill_all(&sh->cg);
	hf_cgroup_remove(&sh->cg);
	notify_ready(sh);
	remove_socket(sh);
	return HF_EXIT_FAIL;
}

/* --ready-fd's value: an open descriptor above 2 (made close-on-exec), or -2. */
static int ready_fd(const char *arg)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(arg, &end, 10);
	if (errno || end == arg || *end || fd < 3 || fd > INT_MAX ||
	    fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		return -2;
	return (int)fd;
}

int hf_shim_main(int argc, char **argv)
{
	struct shim sh;
	const char *dir = NULL;
	bool bad = false;
	int rc;

	hf_log_init("holdfast-shim", true);
	shim_init(&sh);
	for (int i = 1; i < argc && !bad; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (hf_str_has_prefix(argv[i], "--dir="))
			dir = argv[i] + 6;
		else if (strcmp(argv[i], "--foreground") == 0)
			sh.foreground = true;
		else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc)
			sh.readyfd = ready_fd(argv[++i]);
		else
			bad = true;
	}
	if (sh.readyfd == -2 || (sh.readyfd >= 0 && sh.foreground))
		bad = true;
	if (bad || !dir || !*dir) {
		shim_release(&sh);
		fprintf(stderr, "usage: holdfast-shim --dir TASKDIR "
				"[--foreground | --ready-fd FD]\n(started by "
				"the holdfast agent; see shim.h)\n");
		return HF_EXIT_USAGE;
	}
	rc = shim_run(&sh, dir);
	shim_release(&sh);
	return rc;
}
