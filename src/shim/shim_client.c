/*
 * shim_client.c - the status codec shared by the shim and the agent, and
 * the functions the agent uses to start a shim and talk to it. Nothing
 * here keeps state between calls: every request is its own connection.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/spawn.h"
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

void hf_shim_status_init(struct hf_shim_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = HF_TS_STARTING;
}

void hf_shim_status_release(struct hf_shim_status *s)
{
	free(s->task_id);
	free(s->cgroup);
	free(s->cgroup_note);
	free(s->message);
	hf_shim_status_init(s);
}

static json_t *int_or_null(bool present, json_int_t v)
{
	return present ? json_integer(v) : json_null();
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *hf_shim_status_format(const struct hf_shim_status *s)
{
	json_t *o = json_object();
	char *text;

	json_object_set_new(o, "state",
			    json_string(hf_task_state_wire(s->state)));
	json_object_set_new(o, "task_id", str_or_null(s->task_id));
	json_object_set_new(o, "shim_pid", int_or_null(s->shim_pid > 0,
						       s->shim_pid));
	json_object_set_new(o, "pid", int_or_null(s->pid > 0, s->pid));
	json_object_set_new(o, "pgid", int_or_null(s->pgid > 0, s->pgid));
	json_object_set_new(o, "started_at",
			    int_or_null(s->started_at > 0, s->started_at));
	json_object_set_new(o, "finished_at",
			    int_or_null(s->finished_at > 0, s->finished_at));
	json_object_set_new(o, "exit_code",
			    int_or_null(s->has_exit_code, s->exit_code));
	json_object_set_new(o, "signal", int_or_null(s->signal > 0,
						     s->signal));
	json_object_set_new(o, "oom_killed", json_boolean(s->oom_killed));
	json_object_set_new(o, "stop_requested",
			    json_boolean(s->stop_requested));
	json_object_set_new(o, "cgroup", str_or_null(s->cgroup));
	json_object_set_new(o, "cgroup_note", str_or_null(s->cgroup_note));
	json_object_set_new(o, "message", str_or_null(s->message));
	json_object_set_new(o, "mnt_ns", int_or_null(s->mnt_ns > 0,
						     (json_int_t)s->mnt_ns));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	return text;
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
	if (!hf_task_state_from_wire(state, &s->state) ||
	    !shim_state(s->state))
		goto out;
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
out:
	json_decref(o);
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

int hf_shim_sock_addr(const char *taskdir, struct sockaddr_un *sa,
		      int *dirfd)
{
	char *path = hf_xasprintf("%s/%s", taskdir, HF_SHIM_SOCK);
	int rc;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if (strlen(path) < sizeof(sa->sun_path)) {
		memcpy(sa->sun_path, path, strlen(path) + 1);
	} else {
		/*
		 * Too long for sun_path. The magic link /proc/self/fd/N
		 * resolves to the directory itself, so bind() and connect()
		 * reach TASKDIR/shim.sock without a process-wide chdir().
		 */
		*dirfd = open(taskdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (*dirfd < 0) {
			rc = errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
			goto out;
		}
		snprintf(sa->sun_path, sizeof(sa->sun_path),
			 "/proc/self/fd/%d/%s", *dirfd, HF_SHIM_SOCK);
	}
	rc = (int)(offsetof(struct sockaddr_un, sun_path) +
		   strlen(sa->sun_path) + 1);
out:
	free(path);
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

int hf_shim_spawn(const char *taskdir, const char *holdfast_bin,
		  pid_t *shim_pid)
{
	char *status = hf_xasprintf("%s/status.json", taskdir);
	char *pidfile = hf_xasprintf("%s/shim.pid", taskdir), *text = NULL;
	char *argv[] = {(char *)holdfast_bin, "shim", "--dir",
			(char *)taskdir, NULL};
	struct hf_spawn sp;
	char *err = NULL;
	int64_t deadline;
	pid_t pid;
	int rc = HF_EIO, wstatus;

	if (shim_pid)
		*shim_pid = 0;
	if (access(status, F_OK) == 0) {
		rc = HF_EEXISTS;
		goto out;
	}
	/*
	 * common/spawn.h: the agent's signal handlers, blocked signals and
	 * descriptors do not reach the shim, and a binary that cannot run is
	 * said at once, in the agent's log.
	 */
	memset(&sp, 0, sizeof(sp));
	sp.path = holdfast_bin;
	sp.argv = argv;
	sp.envp = environ;
	sp.in = -1;
	sp.out = STDOUT_FILENO;
	sp.err = STDERR_FILENO;
	if (hf_spawn_start(&sp, &pid, &err)) {
		fprintf(stderr, "holdfast: cannot start the shim of %s: %s\n",
			taskdir, err);
		free(err);
		goto out;
	}
	/*
	 * The first shim process exits as soon as the detached one has
	 * started the task; a stuck start is abandoned, not waited for.
	 */
	deadline = hf_mono_ms() + SPAWN_TIMEOUT_MS;
	for (;;) {
		pid_t w = waitpid(pid, &wstatus, WNOHANG);

		if (w == pid)
			break;
		/* An agent with SIGCHLD ignored has it reaped for it. */
		if (w < 0 && errno == ECHILD)
			break;
		if (w < 0 && errno != EINTR)
			goto out;
		if (hf_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			rc = HF_EUNAVAIL;
			goto out;
		}
		hf_sleep_ms(2);
	}
	if (access(status, F_OK) != 0)
		goto out;
	if (shim_pid && hf_read_file(pidfile, 64, &text, NULL) == 0)
		*shim_pid = (pid_t)strtol(text, NULL, 10);
	rc = 0;
out:
	free(status);
	free(pidfile);
	free(text);
	return rc;
}

int hf_shim_alive(const char *taskdir)
{
	char *path = hf_xasprintf("%s/shim.lock", taskdir);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	free(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : HF_EIO;
	/*
	 * A shared lock cannot be had while the shim holds its exclusive
	 * one; it is dropped at once, so a shim starting right now (which
	 * the agent would not do on a used TASKDIR) could only be refused.
	 */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		rc = 0;
	else
		rc = errno == EWOULDBLOCK ? 1 : HF_EIO;
	close(fd);
	return rc;
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

int hf_shim_kill_procs(pid_t ppid, pid_t sid)
{
	DIR *d = opendir("/proc");
	pid_t self = getpid();
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], buf[512], *p;
		long pid = strtol(de->d_name, &p, 10), pp, pgrp, sess;
		char state;
		ssize_t len;
		int fd;

		if (*p || pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* pid (comm) state ppid pgrp session ...; comm may hold ')'. */
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %c %ld %ld %ld", &state, &pp, &pgrp,
				 &sess) != 4)
			continue;
		if (ppid > 0 ? pp == ppid
			     : sess == sid && state != 'Z' && state != 'X') {
			kill((pid_t)pid, SIGKILL);
			n++;
		}
	}
	closedir(d);
	return n;
}

int hf_shim_cleanup_lost(const char *taskdir)
{
	char *lock = hf_xasprintf("%s/shim.lock", taskdir);
	char *path = hf_xasprintf("%s/status.json", taskdir);
	char *sock = hf_xasprintf("%s/%s", taskdir, HF_SHIM_SOCK), *text;
	struct hf_shim_status st;
	int fd, rc;

	hf_shim_status_init(&st);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = HF_EIO;
		goto out;
	}
	/* Held while we work, so no shim can start here meanwhile. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? HF_ECONFLICT : HF_EIO;
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
	hf_shim_status_release(&st);
	free(lock);
	free(path);
	free(sock);
	return rc;
}
