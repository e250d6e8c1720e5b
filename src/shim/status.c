/*
 * status.c - what the shim and its clients share and the shim itself
 * needs: the status record and its writer (status.json, the socket's
 * status lines), where the control socket is, and the /proc sweep that
 * kills what a task left. The agent's side (parsing a status, starting a
 * shim, requests) is shim_client.c; this file links into the shim, so it
 * uses libc and the shim's own JSON writer only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/json.h"
#include "shim/shim.h"
#include "shim/shim_int.h"

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

static void int_or_null(struct hf_jw *w, const char *key, bool present,
			int64_t v)
{
	hf_jw_key(w, key);
	if (present)
		hf_jw_int(w, v);
	else
		hf_jw_null(w);
}

char *hf_shim_status_format(const struct hf_shim_status *s)
{
	struct hf_jw w;

	hf_jw_init(&w);
	hf_jw_open(&w, '{');
	hf_jw_key(&w, "state");
	hf_jw_str(&w, s->backoff ? "backoff" : hf_task_state_wire(s->state));
	hf_jw_key(&w, "task_id");
	hf_jw_str(&w, s->task_id);
	int_or_null(&w, "shim_pid", s->shim_pid > 0, s->shim_pid);
	int_or_null(&w, "pid", s->pid > 0, s->pid);
	int_or_null(&w, "pgid", s->pgid > 0, s->pgid);
	int_or_null(&w, "started_at", s->started_at > 0, s->started_at);
	int_or_null(&w, "finished_at", s->finished_at > 0, s->finished_at);
	int_or_null(&w, "exit_code", s->has_exit_code, s->exit_code);
	int_or_null(&w, "signal", s->signal > 0, s->signal);
	hf_jw_key(&w, "oom_killed");
	hf_jw_bool(&w, s->oom_killed);
	hf_jw_key(&w, "stop_requested");
	hf_jw_bool(&w, s->stop_requested);
	hf_jw_key(&w, "cgroup");
	hf_jw_str(&w, s->cgroup);
	hf_jw_key(&w, "cgroup_note");
	hf_jw_str(&w, s->cgroup_note);
	hf_jw_key(&w, "message");
	hf_jw_str(&w, s->message);
	int_or_null(&w, "mnt_ns", s->mnt_ns > 0 && s->mnt_ns <= INT64_MAX,
		    (int64_t)s->mnt_ns);
	hf_jw_key(&w, "restarts");
	hf_jw_int(&w, s->restarts);
	int_or_null(&w, "last_exit_code", s->has_last_exit_code,
		    s->last_exit_code);
	int_or_null(&w, "last_signal", s->last_signal > 0, s->last_signal);
	int_or_null(&w, "last_exit_at", s->last_exit_at > 0, s->last_exit_at);
	hf_jw_key(&w, "last_oom_killed");
	hf_jw_bool(&w, s->last_oom_killed);
	int_or_null(&w, "last_restart_at", s->last_restart_at > 0,
		    s->last_restart_at);
	int_or_null(&w, "restart_at", s->restart_at > 0, s->restart_at);
	hf_jw_close(&w, '}');
	return hf_jw_detach(&w);
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

/*
 * The children of this process (single-threaded: its own thread's list),
 * SIGKILLed; -1 when the kernel has no such file (CONFIG_PROC_CHILDREN).
 * One read instead of a scan of /proc: it is on the path of a restart.
 */
static int kill_own_children(void)
{
	char path[64], buf[4096], *p, *end;
	ssize_t len;
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
		 (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	/* A list too long for one read: let the scan find them all. */
	if (len < 0 || len == (ssize_t)sizeof(buf) - 1)
		return -1;
	buf[len] = '\0';
	for (p = buf;; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 0 && kill((pid_t)pid, SIGKILL) == 0)
			n++;
	}
	return n;
}

int hf_shim_kill_procs(pid_t ppid, pid_t sid)
{
	DIR *d;
	pid_t self = getpid();
	struct dirent *de;
	int n = 0;

	if (ppid == self && (n = kill_own_children()) >= 0)
		return n;
	n = 0;
	d = opendir("/proc");
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
