/*
 * check.c - health and readiness checks: one small scheduler for all
 * tasks, run by the supervisor loop without ever blocking it. A `cmd`
 * check is a child (/bin/sh -c cmd in the sandbox, the task's
 * environment, its own process group) watched through a pidfd and an
 * output pipe; `tcp` and `http` are non-blocking sockets to 127.0.0.1.
 * Every run has a deadline; a late one is killed (the whole group).
 *
 * All of it runs in the supervisor with ag->mu held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"
#include "shim/confine.h"

#define OUTPUT_TAIL 1024
#define REASON_MAX 300
#define HTTP_MAX 8192

/* ---- parsing ---------------------------------------------------------- */

/* A port number, or the name of one of the task's ports. */
static int resolve_port(const char *s, const struct hf_proto_launch *order,
			char **err)
{
	int64_t n = -1;

	if (s) {
		char *end;
		long x = strtol(s, &end, 10);

		if (*s && !*end)
			n = x;
		else if ((n = hf_proto_launch_port(order, s)) < 0) {
			*err = hf_xasprintf("\"port\": \"%s\" is not one of "
					    "the task's ports", s);
			return -1;
		}
	}
	if (n < 1 || n > 65535) {
		*err = hf_xstrdup("\"port\" must be a port number or the name "
				  "of one of the task's ports");
		return -1;
	}
	return (int)n;
}

struct ag_check *ag_check_parse(const struct hf_proto_check *o,
				const struct hf_proto_launch *order,
				bool readiness, char **err)
{
	struct ag_check *c;

	*err = NULL;
	if (o->kind == HF_CHECK_NONE)
		return NULL;
	c = hf_xcalloc(1, sizeof(*c));
	c->readiness = readiness;
	c->pidfd = c->outfd = c->sockfd = -1;
	c->kind = o->kind;
	if (o->kind == HF_CHECK_CMD) {
		c->cmd = hf_xstrdup(o->cmd);
	} else {
		const char *s = o->path;

		c->port = resolve_port(o->port, order, err);
		if (c->port < 0)
			goto bad;
		c->path = hf_xstrdup(s && *s == '/' ? s : "/");
		if (s && *s && *s != '/') {
			*err = hf_xstrdup("\"path\" must start with /");
			goto bad;
		}
		if (strpbrk(c->path, " \r\n")) {
			*err = hf_xstrdup("\"path\" must not contain spaces "
					  "or line breaks");
			goto bad;
		}
	}
	c->interval_ms = (int64_t)(o->interval * 1000);
	c->delay_ms = (int64_t)(o->delay * 1000);
	c->timeout_ms = (int64_t)(o->timeout * 1000);
	c->grace_ms = (int64_t)(o->grace_period * 1000);
	if (c->interval_ms < 100)
		c->interval_ms = 100;
	if (c->timeout_ms < 100)
		c->timeout_ms = 100;
	c->max_failures = o->max_consecutive_failures < 1
				  ? 1
			  : o->max_consecutive_failures > INT_MAX
				  ? INT_MAX
				  : (int)o->max_consecutive_failures;
	return c;
bad:
	ag_check_free(c);
	return NULL;
}

void ag_check_free(struct ag_check *c)
{
	if (!c)
		return;
	ag_check_cancel(c);
	free(c->cmd);
	free(c->path);
	hf_buf_release(&c->io);
	free(c);
}

/* ---- running ---------------------------------------------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Releases a run's resources; the child (if any) is already reaped. */
static void end_run(struct ag_check *c)
{
	close_fd(&c->pidfd);
	close_fd(&c->outfd);
	close_fd(&c->sockfd);
	c->phase = AG_CHECK_IDLE;
	c->pid = 0;
	c->sent = 0;
}

void ag_check_cancel(struct ag_check *c)
{
	if (c->phase == AG_CHECK_CMD && c->pid > 0) {
		kill(-c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	end_run(c);
	c->next_at = 0;
	hf_buf_reset(&c->io);
}

void ag_checks_start(struct ag_task *t)
{
	int64_t now = hf_mono_ms();
	struct ag_check *cs[] = {t->health, t->readiness};

	for (size_t i = 0; i < HF_ARRAY_LEN(cs); i++) {
		if (!cs[i])
			continue;
		ag_check_cancel(cs[i]);
		cs[i]->failures = 0;
		cs[i]->next_at = now + cs[i]->delay_ms;
	}
}

/* The last non-empty line of s, trimmed and shortened. */
static char *last_line(const char *s)
{
	const char *end = s + strlen(s), *start;

	while (end > s && (end[-1] == '\n' || end[-1] == '\r' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	start = end;
	while (start > s && start[-1] != '\n')
		start--;
	if (end - start > REASON_MAX)
		start = end - REASON_MAX;
	return hf_xstrndup(start, (size_t)(end - start));
}

static void finish(struct hf_agent *ag, struct ag_task *t, struct ag_check *c,
		   bool pass, char *reason)
{
	int64_t now = hf_now_ms();
	bool in_grace;

	end_run(c);
	hf_buf_reset(&c->io);
	c->next_at = hf_mono_ms() + c->interval_ms;
	if (c->readiness) {
		if (pass && !t->ready) {
			char *path = hf_xasprintf("%s/%s", t->dir,
						  AG_READY_FILE);
			int fd = open(path,
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      0644);

			/*
			 * Readiness stays true for this process, also for a
			 * restarted agent: the marker says so, with the
			 * restarts in place it came after.
			 */
			if (fd >= 0) {
				dprintf(fd, "%u\n", t->restarts);
				close(fd);
			}
			free(path);
			t->ready = true;
			hf_log("task %s is ready", t->id);
			ag_mark_dirty(ag);
		} else if (!pass && !t->ready && reason &&
			   (!t->not_ready || strcmp(t->not_ready, reason))) {
			/* Why it is not ready yet: the server shows it. */
			free(t->not_ready);
			t->not_ready = reason;
			reason = NULL;
			ag_mark_dirty(ag);
		}
		free(reason);
		return;
	}
	in_grace = t->started_at && now < t->started_at + c->grace_ms;
	if (pass) {
		if (t->healthy != 1 || t->health_failures) {
			if (t->health_failures)
				hf_log("task %s is healthy again", t->id);
			t->healthy = 1;
			t->health_failures = 0;
			ag_mark_dirty(ag);
		}
		c->failures = 0;
	} else if (!in_grace) {
		c->failures++;
		t->healthy = 0;
		t->health_failures = c->failures;
		hf_log("task %s: health check failed (%d of %d): %s", t->id,
		       c->failures, c->max_failures, reason);
		ag_mark_dirty(ag);
		if (c->failures >= c->max_failures &&
		    t->stop == AG_STOP_NONE) {
			free(t->stop_message);
			t->stop_message = hf_xasprintf(
				"health check failed %d times: %s",
				c->failures, reason);
			t->stop = AG_STOP_HEALTH;
			ag_attend(ag, t);
			ag_wake(ag);
		}
	}
	free(reason);
}

/* Builds "K=V" strings for execve before forking. */
static char **make_envp(const struct hf_kvlist *env)
{
	char **envp = hf_xcalloc(env->len + 1, sizeof(*envp));

	for (size_t i = 0; i < env->len; i++)
		envp[i] = hf_xasprintf("%s=%s", env->items[i].key,
				       env->items[i].value);
	return envp;
}

static void free_envp(char **envp)
{
	for (size_t i = 0; envp[i]; i++)
		free(envp[i]);
	free(envp);
}

static int confine_setup(void *arg, const char **what)
{
	return hf_confine_apply(arg, what);
}

/*
 * A cmd check runs where the task runs: in its mount namespace, as its
 * user, with its capabilities (shim/confine.h), so it sees the task's
 * volumes and cannot do more than the task could.
 */
static void start_cmd(struct hf_agent *ag, struct ag_task *t,
		      struct ag_check *c)
{
	char *argv[] = {"sh", "-c", c->cmd, NULL};
	const struct hf_shim_launch *l = ag_task_launch(t);
	struct hf_shim_launch fallback;
	struct hf_confine conf;
	struct hf_spawn sp;
	char **envp = NULL, *err = NULL;
	int p[2] = {-1, -1};
	pid_t pid;

	memset(&conf, 0, sizeof(conf));
	conf.join_fd = -1;
	hf_shim_launch_init(&fallback);
	if (!l) {
		/* No launch.json to read: the task's user and sandbox. */
		fallback.user = t->user ? hf_xstrdup(t->user) : NULL;
		fallback.sandbox = hf_xstrdup(t->sandbox);
		l = &fallback;
	}
	if (hf_confine_prepare(&conf, l, false, &err) ||
	    hf_confine_join(&conf, t->pid, t->mnt_ns, &err))
		goto failed;
	if (pipe2(p, O_CLOEXEC) < 0) {
		err = hf_xasprintf("pipe: %s", strerror(errno));
		goto failed;
	}
	envp = make_envp(&t->env);
	memset(&sp, 0, sizeof(sp));
	sp.path = "/bin/sh";
	sp.argv = argv;
	sp.envp = envp;
	sp.in = -1;
	sp.out = sp.err = p[1];
	/* Its own group, so a late check is killed with all it started. */
	sp.new_group = true;
	sp.setup = confine_setup;
	sp.setup_arg = &conf;
	if (hf_spawn_start(&sp, &pid, &err))
		goto failed;
	close(p[1]);
	p[1] = -1;
	c->pid = pid;
	c->phase = AG_CHECK_CMD;
	c->outfd = p[0];
	p[0] = -1;
	fcntl(c->outfd, F_SETFL, fcntl(c->outfd, F_GETFL) | O_NONBLOCK);
	c->pidfd = pidfd_open(pid, 0);
	if (c->pidfd < 0) {
		int e = errno;

		ag_check_cancel(c);
		err = hf_xasprintf("pidfd_open: %s", strerror(e));
		goto failed;
	}
	goto out;
failed:
	finish(ag, t, c, false, err);
	err = NULL;
out:
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	if (envp)
		free_envp(envp);
	hf_confine_release(&conf);
	hf_shim_launch_release(&fallback);
}

static void start_socket(struct hf_agent *ag, struct ag_task *t,
			 struct ag_check *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)c->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	c->sockfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			   0);
	if (c->sockfd < 0) {
		finish(ag, t, c, false, hf_xasprintf("socket: %s",
						     strerror(errno)));
		return;
	}
	c->phase = AG_CHECK_CONNECT;
	if (connect(c->sockfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	    errno == EINPROGRESS)
		return; /* the poll reports POLLOUT either way */
	finish(ag, t, c, false, hf_xasprintf("connect to 127.0.0.1:%d: %s",
					     c->port, strerror(errno)));
}

static void start_run(struct hf_agent *ag, struct ag_task *t,
		      struct ag_check *c)
{
	hf_buf_reset(&c->io);
	c->deadline = hf_mono_ms() + c->timeout_ms;
	if (c->kind == HF_CHECK_CMD)
		start_cmd(ag, t, c);
	else
		start_socket(ag, t, c);
}

/* Keeps the last OUTPUT_TAIL bytes of a check's output. */
static void read_output(struct ag_check *c)
{
	char buf[4096];
	ssize_t n;

	while (c->outfd >= 0) {
		n = read(c->outfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close_fd(&c->outfd);
			return;
		}
		hf_buf_add(&c->io, buf, (size_t)n);
		if (c->io.len > 2 * OUTPUT_TAIL) {
			memmove(c->io.data, c->io.data + c->io.len - OUTPUT_TAIL,
				OUTPUT_TAIL);
			c->io.len = OUTPUT_TAIL;
			c->io.data[c->io.len] = '\0';
		}
	}
}

static void cmd_exited(struct hf_agent *ag, struct ag_task *t,
		       struct ag_check *c)
{
	int ws = 0;
	char *line;

	/*
	 * The pidfd is readable once the child has exited; until it is
	 * reaped its pid (our group id) cannot be reused, so whatever the
	 * check left running in its group is killed first, safely.
	 */
	kill(-c->pid, SIGKILL);
	while (waitpid(c->pid, &ws, 0) < 0 && errno == EINTR)
		;
	c->pid = 0;
	read_output(c);
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
		finish(ag, t, c, true, NULL);
		return;
	}
	line = last_line(hf_buf_str(&c->io));
	if (WIFEXITED(ws))
		finish(ag, t, c, false,
		       hf_xasprintf("exit code %d%s%s", WEXITSTATUS(ws),
				    *line ? ": " : "", line));
	else
		finish(ag, t, c, false,
		       hf_xasprintf("killed by signal %d%s%s", WTERMSIG(ws),
				    *line ? ": " : "", line));
	free(line);
}

static void http_progress(struct hf_agent *ag, struct ag_task *t,
			  struct ag_check *c)
{
	char buf[2048];
	ssize_t n;
	int code;

	if (c->phase == AG_CHECK_SEND) {
		n = send(c->sockfd, c->io.data + c->sent, c->io.len - c->sent,
			 MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			finish(ag, t, c, false,
			       hf_xasprintf("sending the request: %s",
					    strerror(errno)));
			return;
		}
		c->sent += (size_t)n;
		if (c->sent == c->io.len) {
			hf_buf_reset(&c->io);
			c->phase = AG_CHECK_RECV;
		}
		return;
	}
	n = recv(c->sockfd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		finish(ag, t, c, false, hf_xasprintf("reading the response: %s",
						     strerror(errno)));
		return;
	}
	if (n > 0 && c->io.len < HTTP_MAX) {
		hf_buf_add(&c->io, buf, (size_t)n);
		if (!strchr(hf_buf_str(&c->io), '\n'))
			return;
	}
	/* The status line is in (or the peer closed): judge it. */
	if (sscanf(hf_buf_str(&c->io), "HTTP/%*d.%*d %3d", &code) != 1) {
		finish(ag, t, c, false,
		       hf_xstrdup(c->io.len ? "not an HTTP response"
					    : "connection closed without a "
					      "response"));
		return;
	}
	if (code >= 200 && code < 400)
		finish(ag, t, c, true, NULL);
	else
		finish(ag, t, c, false, hf_xasprintf("GET %s answered %d",
						     c->path, code));
}

void ag_check_event(struct hf_agent *ag, struct ag_task *t,
		    struct ag_check *c, int fd, short revents)
{
	int err = 0;
	socklen_t len = sizeof(err);

	switch (c->phase) {
	case AG_CHECK_IDLE:
		return; /* finished earlier in this round */
	case AG_CHECK_CMD:
		if (fd == c->outfd)
			read_output(c);
		else if (fd == c->pidfd)
			cmd_exited(ag, t, c);
		return;
	case AG_CHECK_CONNECT:
		if (fd != c->sockfd)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			finish(ag, t, c, false,
			       hf_xasprintf("connect to 127.0.0.1:%d: %s",
					    c->port, strerror(err)));
			return;
		}
		if (c->kind == HF_CHECK_TCP) {
			finish(ag, t, c, true, NULL);
			return;
		}
		hf_buf_addf(&c->io,
			    "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n"
			    "User-Agent: holdfast-agent\r\n"
			    "Connection: close\r\n\r\n",
			    c->path, c->port);
		c->sent = 0;
		c->phase = AG_CHECK_SEND;
		http_progress(ag, t, c);
		return;
	case AG_CHECK_SEND:
	case AG_CHECK_RECV:
		if (fd == c->sockfd)
			http_progress(ag, t, c);
		return;
	}
	(void)revents;
}

static void add_fd(struct pollfd **pfds, struct ag_pollref **refs, size_t *n,
		   size_t *cap, int fd, short events, struct ag_task *t,
		   struct ag_check *c)
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

int64_t ag_checks_tick(struct hf_agent *ag, struct ag_task *t,
		       struct pollfd **pfds, struct ag_pollref **refs,
		       size_t *n, size_t *cap)
{
	struct ag_check *cs[] = {t->health, t->readiness};
	int64_t now, next = INT64_MAX;

	/* Most tasks have no check: no clock read for them (every wake-up). */
	if (!t->health && !t->readiness)
		return next;
	now = hf_mono_ms();
	for (size_t i = 0; i < HF_ARRAY_LEN(cs); i++) {
		struct ag_check *c = cs[i];
		bool wanted;

		if (!c)
			continue;
		/*
		 * Checks run while the task runs and nobody is stopping it;
		 * a paused task is not checked (its readiness never passes);
		 * readiness stops at its first pass.
		 */
		wanted = t->state == HF_TS_RUNNING && t->stop == AG_STOP_NONE &&
			 !t->paused && !(c->readiness && t->ready);
		if (!wanted) {
			if (c->phase != AG_CHECK_IDLE || c->next_at)
				ag_check_cancel(c);
			continue;
		}
		if (c->phase == AG_CHECK_IDLE && c->next_at &&
		    now >= c->next_at)
			start_run(ag, t, c);
		if (c->phase != AG_CHECK_IDLE && now >= c->deadline) {
			if (c->phase == AG_CHECK_CMD)
				read_output(c);
			{
				char *line = last_line(hf_buf_str(&c->io));
				char *why = hf_xasprintf(
					"timed out after %gs%s%s",
					(double)c->timeout_ms / 1000,
					*line ? ": " : "", line);

				free(line);
				ag_check_cancel(c);
				finish(ag, t, c, false, why);
			}
		}
		switch (c->phase) {
		case AG_CHECK_IDLE:
			if (c->next_at && c->next_at < next)
				next = c->next_at;
			continue;
		case AG_CHECK_CMD:
			if (c->outfd >= 0)
				add_fd(pfds, refs, n, cap, c->outfd, POLLIN, t,
				       c);
			add_fd(pfds, refs, n, cap, c->pidfd, POLLIN, t, c);
			break;
		case AG_CHECK_CONNECT:
		case AG_CHECK_SEND:
			add_fd(pfds, refs, n, cap, c->sockfd, POLLOUT, t, c);
			break;
		case AG_CHECK_RECV:
			add_fd(pfds, refs, n, cap, c->sockfd, POLLIN, t, c);
			break;
		}
		if (c->deadline < next)
			next = c->deadline;
	}
	return next;
}
