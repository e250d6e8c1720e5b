/*
 * shim_client.c - the agent's side of the shim: formatting launch.json,
 * reading a status, starting a shim and talking to it. Nothing here keeps
 * state between calls: every request is its own connection. Not linked
 * into the shim (it uses jansson; the shim reads and writes its JSON with
 * json.h), so the two sides' codecs check each other (tests/fuzz).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/caps.h"
#include "common/cmd.h"
#include "common/err.h"
#include "common/rlimit.h"
#include "common/util.h"
#include "shim/cgroup.h"
#include "shim/shim.h"
#include "shim/shim_int.h"

#define REQUEST_TIMEOUT_MS 5000
#define SPAWN_TIMEOUT_MS 10000

/* The states a shim writes: lifecycle.h's node side. */
static bool shim_state(enum hf_task_state s)
{
	return s == HF_TS_STARTING || s == HF_TS_RUNNING || s == HF_TS_EXITED ||
	       s == HF_TS_FAILED_TO_START;
}

static int64_t get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static char *get_str(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? hf_xstrdup(v) : NULL;
}

int hf_shim_status_parse(const char *json, size_t len,
			 struct hf_shim_status *s)
{
	json_t *o = json_loadb(json, len, 0, NULL), *ec;
	const char *state;
	int rc = HF_EPARSE;

	hf_shim_status_release(s);
	state = json_string_value(json_object_get(o, "state"));
	if (!state)
		goto out;
	if (strcmp(state, "backoff") == 0) {
		/* Between two processes of a task restarted in place. */
		s->state = HF_TS_STARTING;
		s->backoff = true;
	} else if (!hf_task_state_from_wire(state, &s->state) ||
		   !shim_state(s->state)) {
		goto out;
	}
	rc = 0;
	s->task_id = get_str(o, "task_id");
	s->shim_pid = (pid_t)get_int(o, "shim_pid");
	s->pid = (pid_t)get_int(o, "pid");
	s->pgid = (pid_t)get_int(o, "pgid");
	s->started_at = get_int(o, "started_at");
	s->finished_at = get_int(o, "finished_at");
	ec = json_object_get(o, "exit_code");
	s->has_exit_code = json_is_integer(ec);
	s->exit_code = (int)get_int(o, "exit_code");
	s->signal = (int)get_int(o, "signal");
	s->oom_killed = json_is_true(json_object_get(o, "oom_killed"));
	s->stop_requested = json_is_true(json_object_get(o, "stop_requested"));
	s->cgroup = get_str(o, "cgroup");
	s->cgroup_note = get_str(o, "cgroup_note");
	s->message = get_str(o, "message");
	s->mnt_ns = get_int(o, "mnt_ns") > 0 ? (uint64_t)get_int(o, "mnt_ns")
					      : 0;
	/* Absent in the status of a shim without restarts, or an older one. */
	s->restarts = get_int(o, "restarts") > 0 &&
			      get_int(o, "restarts") <= UINT32_MAX
			  ? (unsigned)get_int(o, "restarts")
			  : 0;
	s->has_last_exit_code =
	    json_is_integer(json_object_get(o, "last_exit_code"));
	s->last_exit_code = (int)get_int(o, "last_exit_code");
	s->last_signal = (int)get_int(o, "last_signal");
	s->last_exit_at = get_int(o, "last_exit_at");
	s->last_oom_killed =
	    json_is_true(json_object_get(o, "last_oom_killed"));
	s->last_restart_at = get_int(o, "last_restart_at");
	s->restart_at = get_int(o, "restart_at");
out:
	json_decref(o);
	return rc;
}

char *hf_shim_launch_format(const struct hf_shim_launch *l)
{
	json_t *root = json_object(), *env = json_object(), *rl = json_array();
	char *text, *out;

	for (size_t i = 0; i < l->env.len; i++)
		json_object_set_new(env, l->env.items[i].key,
				    json_string(l->env.items[i].value));
	for (size_t i = 0; i < l->rlimits.len; i++) {
		const struct hf_shim_rlimit *r = &l->rlimits.items[i];

		json_array_append_new(
			rl, json_pack("{s:s, s:I, s:I}", "name",
				      hf_rlimit_name(r->resource), "soft",
				      (json_int_t)r->soft, "hard",
				      (json_int_t)r->hard));
	}
	json_object_set_new(root, "task_id", json_string(l->task_id));
	json_object_set_new(root, "cmd", json_string(l->cmd));
	json_object_set_new(root, "env", env);
	json_object_set_new(root, "sandbox", json_string(l->sandbox));
	json_object_set_new(root, "rlimits", rl);
	json_object_set_new(root, "cpus", json_real(l->cpus));
	json_object_set_new(root, "memory_mb", json_integer(l->memory_mb));
	json_object_set_new(root, "cgroup_parent",
			    json_string(l->cgroup_parent));
	json_object_set_new(root, "log_max_bytes",
			    json_integer(l->log_max_bytes));
	json_object_set_new(root, "log_keep", json_integer(l->log_keep));
	json_object_set_new(root, "kill_grace_period",
			    json_real(l->kill_grace_period));
	json_object_set_new(root, "user",
			    l->user ? json_string(l->user) : json_null());
	if (l->has_ids) {
		json_t *g = json_array();

		for (size_t i = 0; i < l->groups.len; i++)
			json_array_append_new(g,
					      json_integer(l->groups.items[i]));
		json_object_set_new(root, "ids",
				    json_pack("{s:I, s:I, s:o}", "uid",
					      (json_int_t)l->uid, "gid",
					      (json_int_t)l->gid, "groups", g));
	}
	json_object_set_new(root, "isolate", json_boolean(l->isolate));
	{
		json_t *m = json_array(), *hide = json_array();
		json_t *vis = json_array(), *caps = json_array();

		for (size_t i = 0; i < l->mounts.len; i++) {
			const struct hf_shim_mount *mt = &l->mounts.items[i];
			json_t *e = mt->device
					    ? json_pack("{s:s, s:s, s:s, s:b}",
							"device", mt->device,
							"expect", mt->expect,
							"target", mt->target,
							"ro", mt->ro)
					    : json_pack("{s:s, s:s}", "source",
							mt->source, "target",
							mt->target);

			if (mt->fstype)
				json_object_set_new(e, "fstype",
						    json_string(mt->fstype));
			json_array_append_new(m, e);
		}
		for (size_t i = 0; i < l->hide.len; i++)
			json_array_append_new(hide,
					      json_string(l->hide.items[i]));
		for (size_t i = 0; i < l->visible.len; i++)
			json_array_append_new(vis,
					      json_string(l->visible.items[i]));
		for (int c = 0; c <= hf_cap_last(); c++)
			if (l->caps & HF_CAP_BIT(c))
				json_array_append_new(
					caps, json_string(hf_cap_name(c)));
		json_object_set_new(root, "mounts", m);
		json_object_set_new(root, "hide", hide);
		json_object_set_new(root, "visible", vis);
		json_object_set_new(root, "capabilities", caps);
	}
	json_object_set_new(root, "privileged", json_boolean(l->privileged));
	if (l->restart.on)
		json_object_set_new(
		    root, "restart",
		    json_pack("{s:f, s:f, s:f, s:I}", "backoff_base",
			      l->restart.backoff_base, "backoff_max",
			      l->restart.backoff_max, "reset_after",
			      l->restart.reset_after, "max",
			      (json_int_t)l->restart.max));
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	out = hf_xasprintf("%s\n", text);
	free(text);
	return out;
}

int hf_shim_launch_write(const char *taskdir, const struct hf_shim_launch *l)
{
	char *path = hf_xasprintf("%s/launch.json", taskdir);
	char *text = hf_shim_launch_format(l);
	/*
	 * Not fsync'd: the shim reads it through the page cache, and after a
	 * power loss there is no shim to read it (the task is reported lost).
	 */
	int rc = hf_write_file_replace(path, text, strlen(text), 0600, 0);
	int saved = errno;

	free(path);
	free(text);
	errno = saved;
	return rc;
}

int hf_shim_status_read(const char *taskdir, struct hf_shim_status *s)
{
	char *path = hf_xasprintf("%s/status.json", taskdir), *text = NULL;
	size_t len = 0;
	int rc = hf_read_file(path, HF_SHIM_MAX_LINE, &text, &len);

	if (rc == 0)
		rc = hf_shim_status_parse(text, len, s);
	free(path);
	free(text);
	return rc;
}

int hf_shim_connect(const char *taskdir)
{
	struct sockaddr_un sa;
	int dirfd, fd = -1, rc, len;

	len = hf_shim_sock_addr(taskdir, &sa, &dirfd);
	if (len < 0)
		return len == HF_ENOTFOUND ? HF_EUNAVAIL : len;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = HF_EIO;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ||
				     errno == ENOTDIR
			     ? HF_EUNAVAIL
			     : HF_EIO;
		close(fd);
		goto out;
	}
	rc = fd;
out:
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

static int send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return HF_EIO;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_line(int fd, const char *request)
{
	char *line = hf_xasprintf("%s\n", request);
	int rc = send_all(fd, line, strlen(line));

	free(line);
	return rc;
}

/* Reads one line (without '\n') from a blocking socket; caller frees. */
static int read_line(int fd, int timeout_ms, char **line)
{
	struct hf_buf b = HF_BUF_INIT;
	int64_t deadline = hf_mono_ms() + timeout_ms;
	char c[4096];
	int rc = HF_EIO;

	*line = NULL;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = deadline - hf_mono_ms();
		char *nl;
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			rc = HF_EUNAVAIL;
			break;
		}
		/* Peek, then take only up to the newline: the rest stays. */
		n = recv(fd, c, sizeof(c), MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		nl = memchr(c, '\n', (size_t)n);
		if (nl)
			n = nl - c + 1;
		n = recv(fd, c, (size_t)n, 0);
		if (n <= 0)
			break;
		hf_buf_add(&b, c, (size_t)n);
		if (nl) {
			b.data[--b.len] = '\0';
			*line = hf_buf_detach(&b);
			rc = 0;
			break;
		}
		if (b.len > HF_SHIM_MAX_LINE)
			break;
	}
	hf_buf_release(&b);
	return rc;
}

int hf_shim_request(const char *taskdir, const char *request, char **reply)
{
	char *line = NULL;
	json_t *o = NULL;
	int fd, rc;

	if (reply)
		*reply = NULL;
	fd = hf_shim_connect(taskdir);
	if (fd < 0)
		return fd;
	rc = send_line(fd, request);
	if (rc)
		goto out;
	rc = read_line(fd, REQUEST_TIMEOUT_MS, &line);
	if (rc)
		goto out;
	o = json_loads(line, 0, NULL);
	if (!json_is_object(o))
		rc = HF_EIO;
	else if (json_is_false(json_object_get(o, "ok")))
		rc = HF_EINVAL;
	if (reply) {
		*reply = line;
		line = NULL;
	}
out:
	json_decref(o);
	free(line);
	close(fd);
	return rc;
}

/* Formats a request object and sends it; steals o. */
static int request_json(const char *taskdir, json_t *o, char **reply)
{
	char *text = json_dumps(o, JSON_COMPACT);
	int rc;

	json_decref(o);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	rc = hf_shim_request(taskdir, text, reply);
	free(text);
	return rc;
}

int hf_shim_status_query(const char *taskdir, struct hf_shim_status *s)
{
	char *reply = NULL;
	int rc = hf_shim_request(taskdir, "{\"op\":\"status\"}", &reply);

	if (rc == 0 && hf_shim_status_parse(reply, strlen(reply), s))
		rc = HF_EIO;
	free(reply);
	return rc;
}

int hf_shim_stop(const char *taskdir, double grace_seconds)
{
	json_t *o = json_pack("{s:s}", "op", "stop");

	if (grace_seconds >= 0)
		json_object_set_new(o, "grace", json_real(grace_seconds));
	return request_json(taskdir, o, NULL);
}

int hf_shim_signal(const char *taskdir, const char *signal_name)
{
	return request_json(taskdir,
			    json_pack("{s:s, s:s}", "op", "signal", "signal",
				      signal_name),
			    NULL);
}

int hf_shim_watch_open(const char *taskdir, int *fd)
{
	int s = hf_shim_connect(taskdir), rc;

	*fd = -1;
	if (s < 0)
		return s;
	rc = send_line(s, "{\"op\":\"watch\"}");
	if (rc == 0 && fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0)
		rc = HF_EIO;
	if (rc) {
		close(s);
		return rc;
	}
	*fd = s;
	return 0;
}

int hf_shim_watch_read(int fd, struct hf_shim_status *s)
{
	char *buf = hf_xmalloc(HF_SHIM_MAX_LINE);
	char *nl;
	ssize_t n;
	int rc;

	/*
	 * The shim writes each status line with one write(2), so a line
	 * that has begun to arrive completes at once; peeking keeps the
	 * caller free of any buffer of ours.
	 */
	do
		n = recv(fd, buf, HF_SHIM_MAX_LINE, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = errno == EAGAIN || errno == EWOULDBLOCK ? HF_EUNAVAIL
							    : HF_EIO;
		goto out;
	}
	if (n == 0) {
		rc = HF_ENOTFOUND;
		goto out;
	}
	nl = memchr(buf, '\n', (size_t)n);
	if (!nl) {
		rc = n == HF_SHIM_MAX_LINE ? HF_EPARSE : HF_EUNAVAIL;
		goto out;
	}
	n = recv(fd, buf, (size_t)(nl - buf + 1), MSG_DONTWAIT);
	if (n != nl - buf + 1) {
		rc = HF_EIO;
		goto out;
	}
	rc = hf_shim_status_parse(buf, (size_t)(nl - buf), s);
out:
	free(buf);
	return rc;
}

char *hf_shim_bin_next_to(const char *holdfast_bin)
{
	const char *slash = strrchr(holdfast_bin, '/');

	if (!slash)
		return hf_xstrdup(HF_SHIM_BIN);
	return hf_xasprintf("%.*s/%s", (int)(slash - holdfast_bin),
			    holdfast_bin, HF_SHIM_BIN);
}

int hf_shim_bin_check(const char *shim_bin, char **msg)
{
	struct stat st;

	*msg = NULL;
	if (stat(shim_bin, &st) < 0) {
		*msg = hf_xasprintf("the shim binary %s: %s (it is built and "
				    "installed next to holdfast: make, make "
				    "install)", shim_bin, strerror(errno));
		return errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
	}
	if (!S_ISREG(st.st_mode) || access(shim_bin, X_OK) < 0) {
		*msg = hf_xasprintf("the shim binary %s is not an executable "
				    "file", shim_bin);
		return HF_EINVAL;
	}
	return 0;
}

/*
 * Waits for the shim's byte on fd: 0 once it came ('0' running, '1'
 * failed to start: status.json says which), HF_EIO when the pipe closed
 * without one (the shim exited before starting anything), HF_EUNAVAIL
 * after timeout_ms.
 */
static int wait_ready(int fd, int timeout_ms)
{
	int64_t deadline = hf_mono_ms() + timeout_ms;
	char c;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = deadline - hf_mono_ms();
		ssize_t n;

		if (left <= 0)
			return HF_EUNAVAIL;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return HF_EIO;
		if (!p.revents)
			continue;
		n = read(fd, &c, 1);
		if (n == 1)
			return 0;
		if (n == 0 || errno != EINTR)
			return HF_EIO;
	}
}

/*
 * The write end anywhere but 3: dup2 onto the same number would leave it
 * close-on-exec, and the shim would find no fd 3.
 */
static int not_three(int fd)
{
	int moved;

	if (fd != 3)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, 4);
	close(fd);
	return moved;
}

int hf_shim_spawn(const char *taskdir, const char *shim_bin, pid_t *shim_pid)
{
	char *status = hf_xasprintf("%s/status.json", taskdir);
	char *argv[] = {(char *)shim_bin, "--dir", (char *)taskdir,
			"--ready-fd", "3", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid;
	int rc = HF_EIO, err, p[2];

	if (shim_pid)
		*shim_pid = 0;
	if (access(status, F_OK) == 0) {
		rc = HF_EEXISTS;
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "holdfast: cannot start the shim of %s: pipe: "
				"%s\n", taskdir, strerror(errno));
		goto out;
	}
	p[1] = not_three(p[1]);
	if (p[1] < 0) {
		fprintf(stderr, "holdfast: cannot start the shim of %s: "
				"fcntl: %s\n", taskdir, strerror(errno));
		close(p[0]);
		goto out;
	}
	/*
	 * posix_spawn, not fork: the agent is large and threaded, and
	 * glibc's posix_spawn creates the child with CLONE_VM|CLONE_VFORK,
	 * copying no page tables; it blocks every signal around the clone
	 * and returns exec's errno, so a binary that cannot run is said at
	 * once (common/spawn.h's rules, kept by other means). The child
	 * gets default signal dispositions, an empty mask, /dev/null on
	 * stdin, the pipe's write end as fd 3 and nothing above it.
	 */
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
					    POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
					 O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	err = posix_spawn(&pid, shim_bin, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (err) {
		close(p[0]);
		fprintf(stderr, "holdfast: cannot start the shim of %s: %s: "
				"%s\n", taskdir, shim_bin, strerror(err));
		goto out;
	}
	if (shim_pid)
		*shim_pid = pid;
	rc = wait_ready(p[0], SPAWN_TIMEOUT_MS);
	close(p[0]);
	/*
	 * Closed without a byte: the shim refused launch.json (status.json
	 * says why) or the TASKDIR (nothing written; its stderr says why).
	 */
	if (rc == HF_EIO && access(status, F_OK) == 0)
		rc = 0;
out:
	free(status);
	return rc;
}

/*
 * Opens TASKDIR/name and tries its flock without blocking: 0 with *fd set
 * (the lock held until *fd is closed), 1 when a shim holds it (*fd -1),
 * 0 with *fd -1 when there is no such file, or HF_EIO.
 */
static int try_lock(const char *taskdir, const char *name, int how, int *fd)
{
	char *path = hf_xasprintf("%s/%s", taskdir, name);
	int rc = 0;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (*fd < 0)
		return errno == ENOENT ? 0 : HF_EIO;
	if (flock(*fd, how | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? 1 : HF_EIO;
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int hf_shim_alive(const char *taskdir)
{
	/*
	 * A shared lock cannot be had while the shim holds its exclusive
	 * one; it is dropped at once, so a shim starting right now (which
	 * the agent would not do on a used TASKDIR) could only be refused.
	 * shim.lock is what shims before holdfast-shim locked: an agent
	 * upgraded under them must still see them alive.
	 */
	static const char *const locks[] = {"launch.json", HF_SHIM_OLD_LOCK};

	for (size_t i = 0; i < HF_ARRAY_LEN(locks); i++) {
		int fd, rc = try_lock(taskdir, locks[i], LOCK_SH, &fd);

		if (fd >= 0)
			close(fd);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * SIGKILLs every live process in session sid; returns how many it found.
 * The task's main process called setsid(), so its pid is the session id of
 * everything it started that did not leave the session itself. A session
 * id can only be taken by a new setsid() once no process holds it, so a
 * process found here belongs to the task.
 */
static int kill_session(pid_t sid)
{
	return hf_shim_kill_procs(0, sid);
}

int hf_shim_cleanup_lost(const char *taskdir)
{
	char *path = hf_xasprintf("%s/status.json", taskdir);
	char *sock = hf_xasprintf("%s/%s", taskdir, HF_SHIM_SOCK), *text;
	struct hf_shim_status st;
	int fd, old_fd = -1, rc;

	hf_shim_status_init(&st);
	/*
	 * Held while we work, so no shim can start here meanwhile (a shim
	 * needs launch.json: without one, none can).
	 */
	rc = try_lock(taskdir, "launch.json", LOCK_EX, &fd);
	if (rc == 0)
		rc = try_lock(taskdir, HF_SHIM_OLD_LOCK, LOCK_EX, &old_fd);
	if (rc) {
		rc = rc == 1 ? HF_ECONFLICT : rc;
		goto out;
	}
	rc = hf_shim_status_read(taskdir, &st);
	if (rc || hf_task_state_final(st.state))
		goto out;
	if (st.pid > 0) {
		for (int i = 0; i < 100 && kill_session(st.pid) > 0; i++)
			hf_sleep_ms(10);
	}
	if (st.cgroup)
		hf_cgroup_destroy(st.cgroup);
	st.state = HF_TS_EXITED;
	st.backoff = false;
	st.restart_at = 0;
	st.finished_at = hf_now_ms();
	st.has_exit_code = false;
	st.signal = 0;
	free(st.message);
	st.message = hf_xstrdup("lost: the shim died before the task's exit "
				"was recorded; what was left of the task was "
				"killed");
	text = hf_shim_status_format(&st);
	rc = hf_write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	unlink(sock);
out:
	if (fd >= 0)
		close(fd);
	if (old_fd >= 0)
		close(old_fd);
	hf_shim_status_release(&st);
	free(path);
	free(sock);
	return rc;
}

/* `holdfast shim ARGS` -> `<dir of this binary>/holdfast-shim ARGS`. */
static int shim_alias(int argc, char **argv)
{
	char *self = realpath("/proc/self/exe", NULL);
	char *bin = hf_shim_bin_next_to(self ? self : "holdfast");

	free(self);
	argv[0] = bin;
	execv(bin, argv);
	fprintf(stderr, "holdfast shim: cannot run %s: %s\n", bin,
		strerror(errno));
	free(bin);
	return HF_EXIT_FAIL;
}

const struct hf_cmd hf_shim_cmd = {
    "shim", NULL, shim_alias, "--dir TASKDIR [--foreground]",
    "own one task's process (started by the agent)",
    "Runs holdfast-shim, installed next to this binary, with the same\n"
    "arguments: it runs the task described by TASKDIR/launch.json, owns its\n"
    "pipes and exit status, and outlives agent restarts. Not for interactive\n"
    "use.",
    NULL};
