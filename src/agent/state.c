/*
 * state.c - the task table: records, what a launch order means for the
 * agent, status changes, reports; agent.json; and reattaching to the
 * shims of <data>/tasks after a restart.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define ORDER_MAX_BYTES (16 * 1024 * 1024)
#define STATE_MAX_BYTES (256 * 1024 * 1024)
#define MAX_ID_LEN 200

bool ag_task_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MAX_ID_LEN || id[0] == '.')
		return false;
	for (; *id; id++) {
		char c = *id;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("._:@+-", c)))
			return false;
	}
	return true;
}

struct ag_task *ag_task_new(struct hf_agent *ag, const char *id)
{
	struct ag_task *t = hf_xcalloc(1, sizeof(*t));

	t->id = hf_xstrdup(id);
	t->dir = hf_xasprintf("%s/%s", ag->tasks_dir, id);
	t->sandbox = hf_xasprintf("%s/sandbox", t->dir);
	t->grace = AG_DEFAULT_GRACE;
	t->healthy = -1;
	t->watch_fd = -1;
	return t;
}

void ag_task_free(struct ag_task *t)
{
	if (!t)
		return;
	if (t->watch_fd >= 0)
		close(t->watch_fd);
	ag_check_free(t->health);
	ag_check_free(t->readiness);
	if (t->order) {
		hf_proto_launch_release(t->order);
		free(t->order);
	}
	free(t->order_error);
	hf_kvlist_release(&t->env);
	free(t->user);
	if (t->launch) {
		hf_shim_launch_release(t->launch);
		free(t->launch);
	}
	hf_strlist_release(&t->volume_keys);
	hf_strlist_release(&t->volume_paths);
	free(t->message);
	free(t->not_ready);
	free(t->stop_message);
	hf_proto_report_release(&t->sent);
	hf_proto_report_release(&t->acked);
	free(t->id);
	free(t->dir);
	free(t->sandbox);
	free(t);
}

struct ag_task *ag_task_find(struct hf_agent *ag, const char *id)
{
	for (size_t i = 0; i < ag->tasks.len; i++)
		if (strcmp(ag->tasks.items[i]->id, id) == 0)
			return ag->tasks.items[i];
	return NULL;
}

/* Sets *err to a sentence unless one is set already; returns false. */
static bool order_fail(char **err, const char *fmt, ...) HF_PRINTF(2, 3);
static bool order_fail(char **err, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	if (*err)
		return false;
	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	*err = hf_buf_detach(&b);
	return false;
}

static void derive_env(struct ag_task *t, const struct hf_kvlist *env)
{
	const char *path = getenv("PATH");

	hf_kvlist_copy(&t->env, env);
	/* The sandbox variables always name this launch's sandbox. */
	hf_kvlist_set(&t->env, "MESOS_SANDBOX", t->sandbox);
	hf_kvlist_set(&t->env, "HOLDFAST_SANDBOX", t->sandbox);
	if (!hf_kvlist_get(&t->env, "PATH"))
		hf_kvlist_set(&t->env, "PATH",
			      path && *path ? path
					    : "/usr/local/sbin:/usr/local/bin:"
					      "/usr/sbin:/usr/bin:/sbin:/bin");
	if (!hf_kvlist_get(&t->env, "HOME"))
		hf_kvlist_set(&t->env, "HOME", t->sandbox);
}

static void derive_volumes(struct ag_task *t, const struct hf_proto_launch *o,
			   char **err)
{
	for (size_t i = 0; i < o->volumes.len; i++) {
		const struct hf_proto_volume *v = &o->volumes.items[i];
		char *where;

		if (!ag_volume_key_valid(v->key)) {
			order_fail(err, "volumes[%zu]: \"key\" must be a "
				   "relative path without \"..\"", i);
			continue;
		}
		where = ag_path_join_within(t->sandbox, t->sandbox, v->path);
		if (!where) {
			order_fail(err, "volumes[%zu]: \"path\" must be a "
				   "relative path inside the sandbox", i);
			continue;
		}
		/* Kept normalised: "./data/" is "data". */
		hf_strlist_push(&t->volume_keys, v->key);
		hf_strlist_push(&t->volume_paths,
				where + strlen(t->sandbox) + 1);
		free(where);
	}
}

void ag_task_set_order(struct hf_agent *ag, struct ag_task *t,
		       struct hf_proto_launch *order)
{
	char *err = NULL, *cerr = NULL;

	if (t->order) {
		hf_proto_launch_release(t->order);
		free(t->order);
	}
	t->order = order;
	if (order->invalid) {
		order_fail(&err, "%s", order->invalid);
		goto out;
	}
	derive_env(t, &order->env);
	if (order->kill_grace_period >= 0)
		t->grace = order->kill_grace_period;
	t->paused = order->paused;
	if (order->user && *order->user)
		t->user = hf_xstrdup(order->user);
	derive_volumes(t, order, &err);
	t->health = ag_check_parse(&order->health, order, false, &cerr);
	if (cerr)
		order_fail(&err, "health_check: %s", cerr);
	free(cerr);
	t->readiness = ag_check_parse(&order->readiness, order, true, &cerr);
	if (cerr)
		order_fail(&err, "readiness_check: %s", cerr);
	free(cerr);
	if (t->health || t->readiness)
		ag_attend(ag, t);
out:
	free(t->order_error);
	t->order_error = err;
	(void)ag;
}

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? hf_xstrdup(src) : NULL;
}

static void log_end(const struct ag_task *t)
{
	if (t->state == HF_TS_EXITED && t->stop == AG_STOP_HEALTH && t->message)
		hf_log("task %s exited: %s", t->id, t->message);
	else if (t->state == HF_TS_EXITED && t->signal)
		hf_log("task %s exited: killed by signal %d%s", t->id,
		       t->signal, t->oom_killed ? " (out of memory)" : "");
	else if (t->state == HF_TS_EXITED)
		hf_log("task %s exited with code %d", t->id, t->exit_code);
	else
		hf_log("task %s %s%s%s", t->id, hf_task_state_wire(t->state),
		       t->message ? ": " : "", t->message ? t->message : "");
}

/* The restarts in place a shim status tells of (RESTARTS in shim.h). */
static void take_restarts(struct ag_task *t, const struct hf_shim_status *st)
{
	t->restarts = st->restarts;
	t->backoff = st->backoff && hf_task_state_live(st->state);
	t->restart_at = t->backoff ? st->restart_at : 0;
	t->has_last_exit_code = st->has_last_exit_code;
	t->last_exit_code = st->last_exit_code;
	t->last_signal = st->last_signal;
	t->last_exit_at = st->last_exit_at;
	t->last_oom_killed = st->last_oom_killed;
}

/*
 * Its process exited and its shim restarts it in place: the new process
 * must pass its checks again. Lock held.
 */
static void restarting(struct ag_task *t)
{
	char *path = hf_xasprintf("%s/%s", t->dir, AG_READY_FILE);

	t->ready = false;
	t->healthy = -1;
	t->health_failures = 0;
	free(t->not_ready);
	t->not_ready = NULL;
	/*
	 * A check in flight was of the old process; the new one is checked
	 * afresh once it runs (ag_checks_start).
	 */
	if (t->health)
		ag_check_cancel(t->health);
	if (t->readiness)
		ag_check_cancel(t->readiness);
	if (unlink(path) < 0 && errno != ENOENT)
		hf_log("task %s: cannot remove %s: %s", t->id, path,
		       strerror(errno));
	free(path);
	if (t->backoff)
		hf_log("task %s %s %d; its shim restarts it in place (restart "
		       "#%u)", t->id,
		       t->has_last_exit_code ? "exited with code"
					     : "was killed by signal",
		       t->has_last_exit_code ? t->last_exit_code
					     : t->last_signal,
		       t->restarts + 1);
}

/* Common to every way a task ends. Lock held. */
static void became_final(struct hf_agent *ag, struct ag_task *t)
{
	t->terminal_at = hf_now_ms();
	t->need_watch = false;
	/*
	 * The shim has killed the task's whole process group and cgroup
	 * before reporting the end, so nothing uses the volume binds any
	 * more; detaching them now means deleting a volume or removing the
	 * sandbox later never meets a mount.
	 */
	ag_unbind_volumes(t);
	log_end(t);
}

/*
 * One step of the lifecycle table (task/lifecycle.h), node side: what the
 * shim or the agent itself saw happen to the task. st holds what the shim
 * said with it (NULL for an end without a shim status); message, when not
 * NULL, is the reason to report. Lock held.
 */
static void task_step(struct hf_agent *ag, struct ag_task *t,
		      enum hf_task_event ev, const struct hf_shim_status *st,
		      const char *message)
{
	struct hf_task_step step = hf_task_step(t->state, ev, HF_TASK_NODE);
	bool changed = step.next != t->state;

	if (step.act == HF_TACT_IGNORE)
		return;
	if (st) {
		changed = changed || st->pid != t->pid;
		t->pid = st->pid;
		t->mnt_ns = st->mnt_ns;
		t->started_at = st->started_at;
		t->finished_at = st->finished_at;
		t->has_exit_code = st->has_exit_code;
		t->exit_code = st->exit_code;
		t->signal = st->signal;
		t->oom_killed = st->oom_killed;
	}
	if (st || message || step.act == HF_TACT_END)
		set_str(&t->message, message);
	switch (step.act) {
	case HF_TACT_RESTART:
		changed = true;
		restarting(t);
		break;
	case HF_TACT_RUN:
		if (t->restarts)
			hf_log("task %s running as pid %d (restarted in place, "
			       "#%u)", t->id, (int)t->pid, t->restarts);
		else
			hf_log("task %s running as pid %d", t->id,
			       (int)t->pid);
		/* Without a readiness check a running task is ready. */
		if (!t->readiness && !t->paused)
			t->ready = true;
		ag_checks_start(t);
		break;
	case HF_TACT_END:
		/* The shim's status says when; without one, it is now. */
		if (!st && !t->finished_at)
			t->finished_at = hf_now_ms();
		break;
	default:
		break;
	}
	t->state = step.next;
	if (step.act == HF_TACT_END)
		became_final(ag, t);
	if (changed || !st) {
		ag_mark_dirty(ag);
		ag_wake(ag);
	}
}

void ag_task_apply_status(struct hf_agent *ag, struct ag_task *t,
			  const struct hf_shim_status *st)
{
	/* Killed on order only if the stop came before the end. */
	bool ordered = t->stop == AG_STOP_ORDER && st->stop_requested;
	bool health = t->stop == AG_STOP_HEALTH && st->stop_requested;
	enum hf_task_event ev = hf_task_event_of(
	    st->state, st->has_exit_code && st->exit_code == 0 && !st->signal,
	    ordered);

	/*
	 * Restarts in place: a status further on than the last one means
	 * the process exited and the launch goes on (however many lines
	 * were missed); one that is not is an older line.
	 */
	if (hf_task_state_live(st->state) && hf_task_state_live(t->state)) {
		unsigned long long had =
		    hf_task_restart_pos(t->restarts, t->backoff);
		unsigned long long now =
		    hf_task_restart_pos(st->restarts, st->backoff);

		if (now < had)
			return;
		if (now > had) {
			take_restarts(t, st);
			task_step(ag, t, HF_TEV_RESTARTING, st, st->message);
		}
	} else if (st->restarts >= t->restarts) {
		take_restarts(t, st);
	}
	/* A task the agent stopped for its health check says why. */
	task_step(ag, t, ev, st,
		  health && st->state == HF_TS_EXITED ? t->stop_message
						     : st->message);
}

void ag_task_shim_up(struct ag_task *t)
{
	struct hf_task_step step =
	    hf_task_step(t->state, HF_TEV_STARTING, HF_TASK_NODE);

	if (step.act == HF_TACT_START)
		t->state = step.next;
}

void ag_task_lost(struct hf_agent *ag, struct ag_task *t, const char *message)
{
	int rc = hf_shim_cleanup_lost(t->dir);

	/* No status.json: no shim ever started, nothing to clean. */
	if (rc && rc != HF_ENOTFOUND)
		hf_log("task %s: cleaning up after its shim: %s", t->id,
		       rc == HF_ECONFLICT ? "a shim holds its directory"
					  : hf_err_msg(rc));
	ag_task_end(ag, t, HF_TEV_LOST, message);
}

void ag_task_end(struct hf_agent *ag, struct ag_task *t,
		 enum hf_task_event ev, const char *message)
{
	task_step(ag, t, ev, NULL, message);
}

const struct hf_shim_launch *ag_task_launch(struct ag_task *t)
{
	char *path, *text = NULL, *err = NULL;
	size_t len = 0;

	if (t->launch)
		return t->launch;
	path = hf_xasprintf("%s/launch.json", t->dir);
	if (hf_read_file(path, ORDER_MAX_BYTES, &text, &len) == 0) {
		struct hf_shim_launch *l = hf_xcalloc(1, sizeof(*l));

		hf_shim_launch_init(l);
		if (hf_shim_launch_parse(text, len, l, &err) == 0) {
			t->launch = l;
		} else {
			hf_shim_launch_release(l);
			free(l);
		}
	}
	free(err);
	free(text);
	free(path);
	return t->launch;
}

void ag_task_report(const struct ag_task *t, struct hf_proto_report *r)
{
	r->task_id = hf_xstrdup(t->id);
	r->state = t->state;
	r->pid = t->pid;
	r->started_at = t->started_at;
	r->finished_at = t->finished_at;
	r->has_exit_code = t->has_exit_code;
	r->exit_code = t->exit_code;
	r->signal = t->signal;
	r->oom_killed = t->oom_killed;
	r->ready = t->ready;
	r->healthy = t->healthy;
	r->health_failures = t->health_failures;
	r->message = t->message ? hf_xstrdup(t->message) : NULL;
	r->not_ready = t->not_ready ? hf_xstrdup(t->not_ready) : NULL;
	r->permanent = t->permanent;
	r->restarts = t->restarts;
	r->backoff = t->backoff && hf_task_state_live(t->state);
	r->restart_at = r->backoff ? t->restart_at : 0;
	r->has_last_exit_code = t->has_last_exit_code;
	r->last_exit_code = t->last_exit_code;
	r->last_signal = t->last_signal;
	r->last_exit_at = t->last_exit_at;
	r->last_oom_killed = t->last_oom_killed;
}

/* ---- agent.json ------------------------------------------------------ */

int ag_state_save(struct hf_agent *ag)
{
	json_t *o = json_object(), *ids = json_array(), *ats = json_array();
	char *text;
	size_t dropped = ag_launched_prune(ag, hf_now_ms());
	int rc;

	if (dropped)
		hf_log("forgot %zu launched task id(s) older than %llds whose "
		       "tasks left this node", dropped,
		       (long long)ag->opts->launched_keep_s);
	/*
	 * "launched" stays a list of ids (what older agents read); the
	 * times are beside it, one per id.
	 */
	for (size_t i = 0; i < ag->launched.len; i++) {
		json_array_append_new(ids, json_string(ag->launched.items[i].id));
		json_array_append_new(ats,
				      json_integer(ag->launched.items[i].at));
	}
	json_object_set_new(o, "node_id", json_string(ag->node_id));
	if (ag->cluster_id)
		json_object_set_new(o, "cluster", json_string(ag->cluster_id));
	json_object_set_new(o, "generation", json_integer(ag->generation));
	json_object_set_new(o, "launched", ids);
	json_object_set_new(o, "launched_at", ats);
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		abort(); /* only on allocation failure; see util.h */
	/* Rewritten at every batch of launches: reuse the inodes. */
	rc = hf_write_file_replace(ag->state_path, text, strlen(text), 0600,
				   HF_WRITE_DURABLE | HF_WRITE_KEEP_OLD);
	if (rc)
		hf_log("cannot write %s: %s", ag->state_path, strerror(errno));
	free(text);
	return rc;
}

int ag_state_load(struct hf_agent *ag)
{
	const char *want = ag->opts->node_id, *have;
	char *text = NULL, host[256] = "";
	json_error_t jerr;
	json_t *o = NULL, *ids, *ats, *v;
	int64_t now = hf_now_ms();
	size_t len = 0, i;
	int rc = hf_read_file(ag->state_path, STATE_MAX_BYTES, &text, &len);

	if (rc == HF_ENOTFOUND) {
		if (!want && gethostname(host, sizeof(host) - 1) == 0 &&
		    host[0])
			want = host;
		ag->node_id = hf_xstrdup(want ? want : "node");
		hf_log("new data directory %s: node id %s", ag->data,
		       ag->node_id);
		return ag_state_save(ag);
	}
	if (rc) {
		hf_log("cannot read %s: %s", ag->state_path, strerror(errno));
		return rc;
	}
	o = json_loadb(text, len, 0, &jerr);
	have = json_string_value(json_object_get(o, "node_id"));
	ids = json_object_get(o, "launched");
	if (!have || !json_is_array(ids)) {
		hf_log("%s is not the agent's state file (line %d: %s); "
		       "refusing to start rather than launch tasks twice",
		       ag->state_path, jerr.line, o ? "missing keys" : jerr.text);
		rc = HF_EPARSE;
		goto out;
	}
	if (want && strcmp(want, have) != 0) {
		hf_log("%s belongs to node \"%s\", not \"%s\": use "
		       "--node-id %s or another --data directory",
		       ag->data, have, want, have);
		rc = HF_ECONFLICT;
		goto out;
	}
	ag->node_id = hf_xstrdup(have);
	v = json_object_get(o, "cluster");
	if (json_is_string(v))
		ag->cluster_id = hf_xstrdup(json_string_value(v));
	/* Without a time (an older agent's file): the time of this start. */
	ats = json_object_get(o, "launched_at");
	json_array_foreach(ids, i, v) {
		json_t *at = json_array_get(ats, i);

		if (json_is_string(v))
			ag_launched_add(ag, json_string_value(v),
					json_is_integer(at)
						? (int64_t)json_integer_value(at)
						: now);
	}
	rc = 0;
out:
	json_decref(o);
	free(text);
	return rc;
}

/* ---- reattach ------------------------------------------------------- */

/* A holdfast-shim, or a shim of older holdfasts (`holdfast shim`). */
static bool pid_is_shim(pid_t pid)
{
	char *path = hf_xasprintf("/proc/%d/cmdline", (int)pid), *text = NULL;
	size_t len = 0;
	bool yes = false;

	if (pid > 0 && hf_read_file(path, 65536, &text, &len) == 0) {
		const char *slash = strrchr(text, '/');

		yes = strcmp(slash ? slash + 1 : text, HF_SHIM_BIN) == 0;
		/* argv is NUL-separated: look at each word. */
		for (size_t off = 0; off < len && !yes;
		     off += strlen(text + off) + 1)
			yes = strcmp(text + off, "shim") == 0;
	}
	free(path);
	free(text);
	return yes;
}

bool ag_shim_alive(const char *taskdir)
{
	struct hf_shim_status st;
	int rc = hf_shim_alive(taskdir);
	bool alive;

	/*
	 * The shim holds its lock for its whole life: the answer cannot be
	 * fooled by a recycled pid.
	 */
	if (rc >= 0)
		return rc == 1;
	/* Cannot test the lock: fall back to the pid's command line. */
	hf_shim_status_init(&st);
	alive = hf_shim_status_read(taskdir, &st) == 0 &&
		pid_is_shim(st.shim_pid);
	hf_shim_status_release(&st);
	return alive;
}

static char *read_small(const char *dir, const char *name)
{
	char *path = hf_xasprintf("%s/%s", dir, name), *text = NULL;

	if (hf_read_file(path, ORDER_MAX_BYTES, &text, NULL))
		text = NULL;
	free(path);
	return text;
}

/*
 * What the previous agent knew: the order, a stop it sent, readiness (and
 * after how many restarts in place it passed: *ready_restarts).
 */
static void restore_task(struct hf_agent *ag, struct ag_task *t,
			 unsigned *ready_restarts)
{
	char *text = read_small(t->dir, AG_ORDER_FILE), *err = NULL;
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	if (j) {
		struct hf_proto_launch *order = hf_xmalloc(sizeof(*order));

		hf_proto_launch_init(order);
		if (hf_proto_launch_decode(j, order, &err)) {
			/* Only the task's checks read it from here on. */
			hf_proto_launch_release(order);
			order->invalid = err;
		}
		ag_task_set_order(ag, t, order);
	}
	json_decref(j);
	free(text);
	text = read_small(t->dir, AG_STOP_FILE);
	if (text && hf_str_has_prefix(text, "health\n")) {
		t->stop = AG_STOP_HEALTH;
		t->stop_message = hf_xstrndup(text + 7,
					      strcspn(text + 7, "\n"));
		ag_attend(ag, t);
	} else if (text && hf_str_has_prefix(text, "order")) {
		t->stop = AG_STOP_ORDER;
		ag_attend(ag, t);
	}
	free(text);
	text = read_small(t->dir, AG_READY_FILE);
	t->ready = text != NULL;
	*ready_restarts = text ? (unsigned)strtoul(text, NULL, 10) : 0;
	free(text);
}

static int64_t dir_mtime_ms(const char *dir)
{
	struct stat sb;

	if (stat(dir, &sb) < 0)
		return hf_now_ms();
	return (int64_t)sb.st_mtim.tv_sec * 1000 +
	       sb.st_mtim.tv_nsec / 1000000;
}

static bool is_dir_at(DIR *d, const struct dirent *de)
{
	struct stat sb;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	/* Some file systems do not fill d_type in. */
	return fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(sb.st_mode);
}

void ag_reattach(struct hf_agent *ag)
{
	DIR *d = opendir(ag->tasks_dir);
	struct dirent *de;
	int live = 0, ended = 0, lost = 0;
	bool save = false;

	if (!d) {
		hf_log("cannot read %s: %s", ag->tasks_dir, strerror(errno));
		return;
	}
	pthread_mutex_lock(&ag->mu);
	while ((de = readdir(d))) {
		struct hf_shim_status st;
		struct ag_task *t;
		unsigned ready_restarts = 0;
		char *lock;
		int rc;

		if (!ag_task_id_valid(de->d_name) || !is_dir_at(d, de))
			continue;
		t = ag_task_new(ag, de->d_name);
		*HF_VEC_PUSH(&ag->tasks) = t;
		restore_task(ag, t, &ready_restarts);
		if (!ag_launched_has(ag, t->id)) {
			ag_launched_add(ag, t->id, hf_now_ms());
			save = true;
		}
		/* A task directory: its shim ran, or was about to. */
		ag_task_shim_up(t);
		hf_shim_status_init(&st);
		rc = hf_shim_status_read(t->dir, &st);
		if (rc == 0) {
			/*
			 * Restarts in place while no agent watched are not
			 * news here: the report carries the count and the
			 * server counts what it had not heard of. Readiness
			 * holds only for the process that passed it.
			 */
			take_restarts(t, &st);
			if (ready_restarts != st.restarts || st.backoff)
				t->ready = false;
		}
		if (rc == 0 && hf_task_state_final(st.state)) {
			/* It ended, maybe while no agent was watching. */
			ag_task_apply_status(ag, t, &st);
			ended++;
		} else if (ag_shim_alive(t->dir)) {
			if (rc == 0)
				ag_task_apply_status(ag, t, &st);
			t->need_watch = true;
			ag_attend(ag, t);
			live++;
		} else {
			/* A final status may have landed since the read. */
			hf_shim_status_release(&st);
			rc = hf_shim_status_read(t->dir, &st);
			if (rc == 0 && hf_task_state_final(st.state)) {
				ag_task_apply_status(ag, t, &st);
				ended++;
			} else {
				/*
				 * No shim and no final status: the shim was
				 * killed, or the agent died between recording
				 * the launch and starting the shim (then
				 * there is no status.json, nor the shim.lock
				 * of an older shim). Either way the task is
				 * not running and never will: lost.
				 */
				lock = hf_xasprintf("%s/%s", t->dir,
						    HF_SHIM_OLD_LOCK);
				ag_task_lost(ag, t,
					     rc != HF_ENOTFOUND ||
						     access(lock, F_OK) == 0
						     ? "the shim is gone and "
						       "left no final status"
						     : "the agent stopped "
						       "before the task's shim "
						       "started");
				lost++;
				free(lock);
			}
		}
		hf_shim_status_release(&st);
		if (hf_task_state_final(t->state))
			t->terminal_at = t->finished_at ? t->finished_at
							: dir_mtime_ms(t->dir);
	}
	closedir(d);
	if (save)
		ag_state_save(ag);
	pthread_mutex_unlock(&ag->mu);
	if (live + ended + lost)
		hf_log("reattached: %d live task(s), %d ended, %d lost", live,
		       ended, lost);
}
