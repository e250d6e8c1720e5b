/*
 * attach.c - the node's attached volumes: one holdfast-volume attach
 * process per attachment of the desired set (docs/protocol.md, "Volumes";
 * src/volume/attach.h), started detached so it outlives the agent, found
 * again by its lock after an agent restart, stopped when its attachment
 * leaves the desired set or changes epoch; and the replicas the server
 * asks the node to delete.
 *
 * attach.json carries the attachment as the server gave it: the local
 * replica's path in the pool (null without a local replica: a node
 * without a pool serves such an attachment from its remotes alone), the
 * remotes, this node's id and the ticket. A process is started again only
 * at a new epoch, which is what a new set of replicas comes with; a
 * changed in-sync set or a larger size (volume resize) at the same epoch
 * is written to attach.json and signalled (SIGHUP).
 * TODO(issue 14, in-sync set): an attachment listed again at the same
 * epoch with fewer remotes (the server dropped a failed one) is not
 * applied to its running process yet; src/volume/attach.h wants
 * attach.json rewritten and a SIGHUP, and its status.json's "isr_drop"
 * relayed in the volume's report. Nor is "fence" written yet.
 *
 * Everything here runs under ag->mu: the supervisor reconciles at every
 * turn (ag_attach_reconcile), the sync reports and applies, a launch
 * worker asks whether a volume is ready (ag_attach_ready).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/loop.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"

/* A failed attach is tried again after this long, not in a hot loop. */
#define RETRY_MS 10000
/* SIGTERM is sent again this often to a process that has not detached. */
#define TERM_AGAIN_MS 5000

/* What one attach directory says. */
struct seen {
	bool alive;          /* its process holds attach.lock */
	long pid;            /* that process, from the lock file */
	int64_t epoch;       /* attach.json's; 0 when none */
	char *id;            /* attach.json's */
	char *state;         /* status.json's, or NULL */
	int64_t st_epoch;
	char *device, *message;
	/* Failed remotes it asks to drop from the in-sync set, and why. */
	struct hf_strlist isr_drop;
	char *isr_why;
	struct hf_strlist resynced; /* resyncing remotes now up to date */
	json_t *resync;             /* copies under way, as status.json says */
	json_t *missed;             /* [{"replica", "bytes"}], or NULL */
	int64_t io[5];              /* io_keys' counters */
	bool has_write_us;          /* the write latency histogram */
	int64_t write_us[HF_VOL_LAT_BUCKETS + 1], write_us_sum;
	json_t *snapshots;          /* {"op:id": result}, or NULL */
	json_t *dr;                 /* the DR stream's state, or NULL */
};

static const char *const io_keys[] = {"written", "replicated", "resync_sent",
				       "resync_planned", "nospace"};

static void seen_release(struct seen *s)
{
	free(s->id);
	free(s->state);
	free(s->device);
	hf_strlist_release(&s->isr_drop);
	free(s->isr_why);
	hf_strlist_release(&s->resynced);
	json_decref(s->resync);
	json_decref(s->missed);
	json_decref(s->snapshots);
	json_decref(s->dr);
	free(s->message);
	memset(s, 0, sizeof(*s));
}

/* A volume name usable as one directory entry. */
static bool name_ok(const char *n)
{
	return n && *n && strcmp(n, ".") != 0 && strcmp(n, "..") != 0 &&
	       !strchr(n, '/') && strlen(n) <= 255;
}

static char *attach_dir(const struct hf_agent *ag, const char *volume)
{
	return hf_xasprintf("%s/attach/%s", ag->data, volume);
}

static json_t *load_json(const char *dir, const char *name)
{
	char *path = hf_xasprintf("%s/%s", dir, name);
	json_t *j = json_load_file(path, 0, NULL);

	free(path);
	return j;
}

static char *jdup(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? hf_xstrdup(s) : NULL;
}

/* The strings of o's array `key` (others skipped) onto out. */
static void strings(const json_t *o, const char *key, struct hf_strlist *out)
{
	json_t *e;
	size_t k;

	json_array_foreach(json_object_get(o, key), k, e)
		if (json_is_string(e))
			hf_strlist_push(out, json_string_value(e));
}

static void look(const char *dir, struct seen *s)
{
	char *lock = hf_xasprintf("%s/attach.lock", dir);
	json_t *a, *st, *h;

	memset(s, 0, sizeof(*s));
	s->alive = hf_lock_held(lock, &s->pid);
	free(lock);
	a = load_json(dir, "attach.json");
	if (a) {
		s->epoch = json_integer_value(json_object_get(a, "epoch"));
		s->id = jdup(a, "id");
		json_decref(a);
	}
	st = load_json(dir, "status.json");
	if (st) {
		s->state = jdup(st, "state");
		s->st_epoch = json_integer_value(json_object_get(st, "epoch"));
		s->device = jdup(st, "device");
		s->message = jdup(st, "message");
		strings(st, "isr_drop", &s->isr_drop);
		s->isr_why = jdup(st, "isr_why");
		s->resync = json_incref(json_object_get(st, "resync"));
		s->missed = json_incref(json_object_get(st, "missed"));
		s->snapshots = json_incref(json_object_get(st, "snapshots"));
		s->dr = json_is_object(json_object_get(st, "dr"))
				? json_incref(json_object_get(st, "dr"))
				: NULL;
		for (size_t i = 0; i < HF_ARRAY_LEN(io_keys); i++) {
			json_int_t n = json_integer_value(
			    json_object_get(st, io_keys[i]));

			s->io[i] = n > 0 ? n : 0;
		}
		h = json_object_get(st, "write_us");
		if (json_array_size(h) == HF_VOL_LAT_BUCKETS + 1) {
			for (size_t i = 0; i <= HF_VOL_LAT_BUCKETS; i++) {
				json_int_t n = json_integer_value(
				    json_array_get(h, i));

				s->write_us[i] = n > 0 ? n : 0;
			}
			s->write_us_sum = json_integer_value(
			    json_object_get(st, "write_us_sum"));
			if (s->write_us_sum < 0)
				s->write_us_sum = 0;
			s->has_write_us = true;
		}
		strings(st, "resynced", &s->resynced);
		json_decref(st);
	}
}

static const struct hf_proto_attachment *wanted(const struct hf_agent *ag,
						const char *volume)
{
	for (size_t i = 0; i < ag->attach_want.len; i++)
		if (strcmp(ag->attach_want.items[i].volume, volume) == 0)
			return &ag->attach_want.items[i];
	return NULL;
}

static struct ag_attach *runtime(struct hf_agent *ag, const char *volume,
				 bool add)
{
	struct ag_attach *r;

	for (size_t i = 0; i < ag->attaches.len; i++)
		if (strcmp(ag->attaches.items[i].volume, volume) == 0)
			return &ag->attaches.items[i];
	if (!add)
		return NULL;
	r = HF_VEC_PUSH(&ag->attaches);
	memset(r, 0, sizeof(*r));
	r->volume = hf_xstrdup(volume);
	return r;
}

static char *replica_path(const struct hf_agent *ag,
			  const struct hf_proto_attachment *w)
{
	return hf_xasprintf("%s/replicas/%s/%s/data", ag->pool.dir, w->id,
			    w->replica);
}

/* A local replica needs the pool; remotes alone do not. */
static bool servable(const struct hf_agent *ag,
		     const struct hf_proto_attachment *w)
{
	return !w->replica || ag->pool.dir;
}

/* Whether the node's orders list w's local replica as held here. */
static bool held_here(const struct hf_agent *ag,
		      const struct hf_proto_attachment *w)
{
	for (size_t i = 0; w->replica && i < ag->held.len; i++)
		if (strcmp(ag->held.items[i].id, w->id) == 0 &&
		    strcmp(ag->held.items[i].replica, w->replica) == 0)
			return true;
	return false;
}

/* How long an attach waits for its fence (the replica server). */
#define AG_FENCE_WAIT_MS 10000

/*
 * How long the attach process holds writes after a remote failed, for
 * the server to drop it from the in-sync set (two syncs' round trips and
 * a store commit fit many times).
 */
#define AG_ISR_WAIT_MS 30000

/*
 * Writes attach.json for w atomically (0600: it holds the ticket and an
 * encrypted volume's key).
 */
static int write_config(const struct hf_agent *ag,
			const struct hf_proto_attachment *w, const char *dir,
			const char *replica);

/* The DR stream's files in the attach directory (0600). */
static const char *const dr_files[] = {"dr-ca.pem", "dr-cert.pem",
				       "dr-key.pem", "dr-journal"};

/* Writes w's DR PEM texts (the key a secret). Returns 0 or -1 (logged). */
static int write_dr_files(const struct hf_proto_attachment *w,
			  const char *dir)
{
	const char *texts[] = {w->dr->ca, w->dr->cert, w->dr->key};

	for (size_t i = 0; i < HF_ARRAY_LEN(texts); i++) {
		char *path = hf_xasprintf("%s/%s", dir, dr_files[i]);
		int rc = hf_write_file_atomic(path, texts[i], strlen(texts[i]),
					      0600);

		if (rc)
			hf_log("volume %s: cannot write %s: %s", w->volume,
			       path, strerror(errno));
		free(path);
		if (rc)
			return -1;
	}
	return 0;
}

/* attach.json's content for w (src/volume/attach.h); dir: its directory. */
static json_t *attach_config(const struct hf_agent *ag,
			     const struct hf_proto_attachment *w,
			     const char *replica, const char *dir)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:s}",
			      "volume", w->volume, "id", w->id, "epoch",
			      (json_int_t)w->epoch, "size",
			      (json_int_t)w->size, "format", w->format, "uid",
			      (json_int_t)w->uid, "gid", (json_int_t)w->gid,
			      "node", ag->node_id);

	if (w->fs == 1 || w->fs == 2)
		json_object_set_new(o, "fs",
				    json_string(w->fs == 2 ? "xfs" : "ext4"));
	json_object_set_new(o, "replica",
			    replica ? json_string(replica) : json_null());
	if (w->ticket)
		json_object_set_new(o, "ticket", json_string(w->ticket));
	if (w->encryption_key)
		json_object_set_new(o, "encryption_key",
				    json_string(w->encryption_key));
	if (w->snapshots.len) {
		json_t *arr = json_array();

		for (size_t i = 0; i < w->snapshots.len; i++)
			json_array_append_new(
			    arr, json_pack("{s:s, s:s}", "id",
					   w->snapshots.items[i].id, "op",
					   w->snapshots.items[i].op));
		json_object_set_new(o, "snapshots", arr);
	}
	if (replica && w->ticket && ag->info.storage.port > 0 &&
	    held_here(ag, w) &&
	    ag_vserve_serving((struct hf_agent *)ag, w->id, w->replica)) {
		/*
		 * This node's replica server learns our epoch first, so an
		 * older attachment elsewhere can no longer write the replica
		 * through it (attach.h, "fence").
		 */
		struct in6_addr a6;
		const char *addr = ag->info.address;

		if (!addr || (inet_pton(AF_INET, addr, &a6) != 1 &&
			      inet_pton(AF_INET6, addr, &a6) != 1))
			addr = "127.0.0.1"; /* it listens on every address */
		json_object_set_new(
		    o, "fence",
		    json_pack("{s:s, s:I, s:s}", "address", addr, "port",
			      (json_int_t)ag->info.storage.port, "replica",
			      w->replica));
	}
	if (w->dr && dir) {
		/* The PEM files are beside attach.json (write_dr_files). */
		static const char *const k[] = {"tls_ca", "tls_cert", "tls_key",
						"journal"};
		json_t *d = json_pack("{s:s, s:I, s:s, s:I, s:s}", "address",
				      w->dr->address, "port",
				      (json_int_t)w->dr->port, "replica",
				      w->dr->replica, "journal_size",
				      (json_int_t)w->dr->journal_size,
				      "when_full", w->dr->when_full);

		if (w->dr->drain_ms)
			json_object_set_new(d, "drain_ms",
					    json_integer(w->dr->drain_ms));
		for (size_t i = 0; i < HF_ARRAY_LEN(k); i++) {
			char *pth = hf_xasprintf("%s/%s", dir, dr_files[i]);

			json_object_set_new(d, k[i], json_string(pth));
			free(pth);
		}
		json_object_set_new(o, "dr", d);
	}
	if (w->remotes.len) {
		json_t *arr = json_array();

		for (size_t i = 0; i < w->remotes.len; i++) {
			const struct hf_proto_remote *r = &w->remotes.items[i];

			json_t *e = json_pack("{s:s, s:I, s:s, s:s}", "address",
					      r->address, "port",
					      (json_int_t)r->port, "replica",
					      r->replica, "node", r->node);

			if (r->resync)
				json_object_set_new(e, "resync", json_true());
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "remotes", arr);
		/* A failed remote holds writes this long for the server. */
		json_object_set_new(o, "isr_wait_ms",
				    json_integer(AG_ISR_WAIT_MS));
		if (ag->opts->resync_rate)
			json_object_set_new(
			    o, "resync_rate",
			    json_integer((json_int_t)ag->opts->resync_rate));
	}
	return o;
}

static int write_config(const struct hf_agent *ag,
			const struct hf_proto_attachment *w, const char *dir,
			const char *replica)
{
	char *path = hf_xasprintf("%s/attach.json", dir);
	json_t *o = attach_config(ag, w, replica, dir);
	char *text = json_dumps(o, JSON_INDENT(2));
	int rc = 0;

	json_decref(o);
	if (w->dr && write_dr_files(w, dir)) {
		if (text) {
			explicit_bzero(text, strlen(text));
			free(text);
		}
		free(path);
		return -1;
	}
	if (!text || hf_write_file_atomic(path, text, strlen(text), 0600)) {
		hf_log("volume %s: cannot write %s: %s", w->volume, path,
		       strerror(errno));
		rc = -1;
	}
	if (text) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	free(path);
	return rc;
}

/*
 * Writes attach.json (0600: it holds the ticket) and starts the process.
 * Returns 0 or -1 (logged).
 */
static int start(struct hf_agent *ag, struct ag_attach *r,
		 const struct hf_proto_attachment *w, const char *dir)
{
	char *replica = w->replica ? replica_path(ag, w) : NULL;
	char *rdir = replica ? hf_xstrdup(replica) : NULL;
	char *status = hf_xasprintf("%s/status.json", dir);
	char *logp = hf_xasprintf("%s/volume.log", dir), *err = NULL;
	char *argv[] = {ag->volume_bin, "attach", (char *)dir, NULL};
	struct hf_spawn sp;
	pid_t pid;
	int logfd = -1, rc = -1;

	if (rdir)
		*strrchr(rdir, '/') = '\0';
	if (hf_fs_mkdir_p(dir, 0700, 0700) < 0 ||
	    (rdir && hf_fs_mkdir_p(rdir, 0700, 0700) < 0)) {
		hf_log("volume %s: cannot make its directories: %s", w->volume,
		       strerror(errno));
		goto out;
	}
	unlink(status);
	if (write_config(ag, w, dir, replica))
		goto out;
	logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	memset(&sp, 0, sizeof(sp));
	sp.path = ag->volume_bin;
	sp.argv = argv;
	sp.envp = NULL;
	sp.in = -1;
	sp.out = sp.err = logfd;
	sp.new_session = true; /* it outlives the agent, as shims do */
	if (hf_spawn_start(&sp, &pid, &err)) {
		hf_log("volume %s: cannot start %s: %s", w->volume,
		       ag->volume_bin, err);
		free(err);
		goto out;
	}
	hf_log("volume %s: attaching at epoch %lld (process %d; %s replica, "
	       "%zu remotes)", w->volume, (long long)w->epoch, (int)pid,
	       replica ? "a local" : "no local", w->remotes.len);
	r->pid = pid;
	r->term_at = 0;
	rc = 0;
out:
	if (logfd >= 0)
		close(logfd);
	free(replica);
	free(rdir);
	free(status);
	free(logp);
	return rc;
}

/*
 * The attach process of a volume died without detaching (kill -9, a
 * crash): its device fails every I/O from now on. The tasks that mounted
 * it are stopped as failed, so the server launches them again on the
 * volume served anew; the dead device is cleared (deferred by the kernel
 * until their mounts are gone).
 */
static void lost_process(struct hf_agent *ag, const char *vol,
			 const char *dir, const struct seen *s)
{
	char *fuse = hf_xasprintf("%s/fuse/vol", dir);

	hf_log("volume %s: its attach process died without detaching",
	       vol);
	for (size_t i = 0; i < ag->tasks.len; i++) {
		struct ag_task *t = ag->tasks.items[i];
		bool uses = false;

		if (hf_task_state_final(t->state) || t->stop != AG_STOP_NONE ||
		    !t->order)
			continue;
		for (size_t k = 0; k < t->order->volumes.len && !uses; k++) {
			const struct hf_proto_volume *v =
			    &t->order->volumes.items[k];

			uses = v->type && strcmp(v->type, "EXTERNAL") == 0 &&
			       strcmp(v->key, vol) == 0;
		}
		if (!uses)
			continue;
		free(t->stop_message);
		t->stop_message = hf_xasprintf(
		    "volume %s stopped being served (its attach process "
		    "died): the task is stopped to mount it again",
		    vol);
		t->stop = AG_STOP_HEALTH;
		ag_attend(ag, t);
		ag_wake(ag);
	}
	if (s->device && strncmp(s->device, "/dev/loop", 9) == 0) {
		char *sys = hf_xasprintf("/sys/block/%s/loop/backing_file",
					 s->device + 5);
		char *backing = NULL;

		if (hf_read_file(sys, 4096, &backing, NULL) == 0 &&
		    strncmp(backing, fuse, strlen(fuse)) == 0) {
			int fd = open(s->device, O_RDWR | O_CLOEXEC);

			if (fd >= 0) {
				ioctl(fd, LOOP_CLR_FD, 0);
				close(fd);
			}
		}
		free(backing);
		free(sys);
	}
	free(fuse);
}

static void terminate(struct ag_attach *r, const struct seen *s,
		      const char *why)
{
	int64_t now = hf_mono_ms();

	if (s->pid <= 0 || (r->term_at && now - r->term_at < TERM_AGAIN_MS))
		return;
	if (!r->term_at)
		hf_log("volume %s: detaching (%s)", r->volume, why);
	kill((pid_t)s->pid, SIGTERM);
	r->term_at = now;
}

/* Reaps a process this agent started, once it exited. */
static void reap(struct ag_attach *r)
{
	int st;

	if (r->pid > 0 && waitpid(r->pid, &st, WNOHANG) == r->pid)
		r->pid = 0;
}

/* The attach directories on disk, wanted or not. */
static void scan(struct hf_agent *ag, struct hf_strlist *out)
{
	char *root = hf_xasprintf("%s/attach", ag->data);
	DIR *d = opendir(root);
	struct dirent *e;

	for (size_t i = 0; i < ag->attach_want.len; i++)
		if (name_ok(ag->attach_want.items[i].volume))
			hf_strlist_push(out, ag->attach_want.items[i].volume);
	while (d && (e = readdir(d)))
		if (name_ok(e->d_name) && !hf_strlist_has(out, e->d_name))
			hf_strlist_push(out, e->d_name);
	if (d)
		closedir(d);
	free(root);
}

int64_t ag_attach_reconcile(struct hf_agent *ag)
{
	struct hf_strlist names = {0};
	int64_t now = hf_mono_ms(), next = now + 2000;

	scan(ag, &names);
	for (size_t i = 0; i < names.len; i++) {
		const char *vol = names.items[i];
		const struct hf_proto_attachment *w = wanted(ag, vol);
		struct ag_attach *r = runtime(ag, vol, true);
		char *dir = attach_dir(ag, vol);
		struct seen s;

		reap(r);
		look(dir, &s);
		if (w && s.alive && s.epoch != w->epoch) {
			terminate(r, &s, "a new epoch");
			next = now + 200;
		} else if (!w && s.alive) {
			terminate(r, &s, "no longer in the desired set");
			next = now + 200;
		} else if (w && !s.alive && servable(ag, w) && held_here(ag, w) &&
			   !(ag->info.storage.port > 0 &&
			     ag_vserve_serving(ag, w->id, w->replica)) &&
			   (!r->fence_wait ||
			    now - r->fence_wait < AG_FENCE_WAIT_MS)) {
			/*
			 * Its fence needs this node's replica server serving
			 * the replica: soon (else it goes without, in time).
			 */
			if (!r->fence_wait)
				r->fence_wait = now;
			next = now + 200;
		} else if (w && !s.alive && servable(ag, w)) {
			bool failed = s.state && strcmp(s.state, "failed") == 0 &&
				      s.epoch == w->epoch;

			if (s.state && strcmp(s.state, "ready") == 0)
				lost_process(ag, vol, dir, &s);

			r->fence_wait = 0;
			if (!failed || now - r->failed_at >= RETRY_MS) {
				if (failed)
					hf_log("volume %s: attaching again after "
					       "a failure: %s",
					       vol, s.message ? s.message : "?");
				/* The next try waits RETRY_MS if this fails. */
				r->failed_at = now;
				start(ag, r, w, dir);
				next = now + 100;
			} else if (r->failed_at + RETRY_MS < next) {
				next = r->failed_at + RETRY_MS;
			}
		} else if (!w && !s.alive && r->pid == 0) {
			/*
			 * Detached and not wanted: nothing left to report but
			 * how its DR stream ended. A journal the standby has
			 * not acknowledged all of stays (the server hears of
			 * it; a new attach here sends it on).
			 */
			bool drained = !s.dr ||
				       (s.state && !strcmp(s.state, "detached") &&
					json_is_true(json_object_get(s.dr,
								     "drained")));

			if (s.dr && (!r->final_at || r->final_epoch != s.epoch)) {
				r->final_epoch = s.epoch;
				r->final_drained = drained;
				r->final_at = now;
				if (drained)
					hf_log("volume %s: detached at epoch "
					       "%lld; its DR standby has every "
					       "write",
					       vol, (long long)s.epoch);
				ag_mark_dirty(ag); /* the server hears of it */
			}
			if (!drained) {
				if (!r->final_kept)
					hf_log("volume %s: detached, but its DR "
					       "standby lacks writes: %s keeps "
					       "its journal",
					       vol, dir);
				r->final_kept = true;
			} else if (ag_rm_rf(dir) < 0) {
				hf_log("volume %s: cannot remove %s: %s", vol,
				       dir, strerror(errno));
			}
		}
		if (w)
			r->final_kept = false;
		if (w && s.alive && s.epoch == w->epoch)
			r->failed_at = 0;
		if (w && s.alive && s.epoch == w->epoch && r->hup) {
			/* The in-sync set shrank: the new set, then SIGHUP. */
			char *rp = w->replica ? replica_path(ag, w) : NULL;

			if (write_config(ag, w, dir, rp) == 0 && s.pid > 0 &&
			    kill((pid_t)s.pid, SIGHUP) == 0) {
				hf_log("volume %s: %zu remote replica(s) in sync "
				       "now, %lld bytes", vol, w->remotes.len,
				       (long long)w->size);
				r->hup = false;
			}
			free(rp);
		}
		if (s.alive && s.state && strcmp(s.state, "ready") == 0 &&
		    s.st_epoch != r->ready_seen) {
			/*
			 * Ready at a new epoch: its tasks launch once the
			 * server hears it, so it hears it now, not at the end
			 * of the long poll.
			 */
			r->ready_seen = s.st_epoch;
			ag_mark_dirty(ag);
		}
		if (s.alive && json_object_size(s.snapshots) != r->snaps_seen) {
			/* A snapshot taken, deleted or restored: say so. */
			r->snaps_seen = json_object_size(s.snapshots);
			ag_mark_dirty(ag);
		}
		if (s.alive && s.resynced.len != r->resynced_seen) {
			/* The server marks them in sync: tell it at once. */
			r->resynced_seen = s.resynced.len;
			if (s.resynced.len)
				ag_mark_dirty(ag);
		}
		if (s.alive && s.isr_drop.len != r->isr_asked) {
			/* Its writes wait for the server: ask at once. */
			r->isr_asked = s.isr_drop.len;
			if (s.isr_drop.len) {
				hf_log("volume %s: asks to drop %zu failed remote "
				       "replica(s): %s",
				       vol, s.isr_drop.len,
				       s.isr_why ? s.isr_why : "?");
				ag_mark_dirty(ag);
			}
		}
		if (w && s.alive && w->remotes.len && next > now + 500)
			next = now + 500; /* a failed remote is noticed soon */
		if (w && s.alive && s.epoch == w->epoch &&
		    !(s.state && strcmp(s.state, "ready") == 0 &&
		      s.st_epoch == w->epoch))
			next = now + 100; /* attaching: report it soon */
		seen_release(&s);
		free(dir);
	}
	/*
	 * Forget what has no directory and no process any more (once how
	 * its DR stream ended was reported for a while).
	 */
	for (size_t i = 0; i < ag->attaches.len;) {
		struct ag_attach *r = &ag->attaches.items[i];

		if (r->pid == 0 && !hf_strlist_has(&names, r->volume) &&
		    (!r->final_at || now - r->final_at > 120000)) {
			free(r->volume);
			ag->attaches.items[i] =
			    ag->attaches.items[--ag->attaches.len];
		} else {
			i++;
		}
	}
	hf_strlist_release(&names);
	return next;
}

void ag_attach_reports(struct hf_agent *ag, struct hf_proto_sync_req *req)
{
	struct hf_strlist names = {0};
	int64_t now = hf_mono_ms();

	/* How detached volumes' DR streams ended: for two minutes, or while
	 * the journal is kept. */
	for (size_t i = 0; i < ag->attaches.len; i++) {
		const struct ag_attach *r = &ag->attaches.items[i];
		struct hf_proto_dr_final *f;

		if (!r->final_at ||
		    (!r->final_kept && now - r->final_at > 120000))
			continue;
		f = HF_VEC_PUSH(&req->dr_final);
		f->volume = hf_xstrdup(r->volume);
		f->epoch = r->final_epoch;
		f->drained = r->final_drained;
	}

	scan(ag, &names);
	for (size_t i = 0; i < names.len; i++) {
		const struct hf_proto_attachment *w = wanted(ag,
							     names.items[i]);
		char *dir = attach_dir(ag, names.items[i]);
		struct hf_proto_volume_report *v;
		struct seen s;
		const char *state;

		look(dir, &s);
		free(dir);
		if (!w && !s.alive) {
			seen_release(&s);
			continue;
		}
		if (!w || (s.alive && s.epoch != w->epoch))
			state = "detaching";
		else if (w && !servable(ag, w))
			state = "failed";
		else if (s.alive && s.state && strcmp(s.state, "ready") == 0 &&
			 s.st_epoch == w->epoch)
			state = "ready";
		else if (s.state && strcmp(s.state, "failed") == 0 &&
			 s.epoch == w->epoch)
			state = "failed";
		else
			state = "attaching";
		v = HF_VEC_PUSH(&req->volumes);
		memset(v, 0, sizeof(*v));
		v->volume = hf_xstrdup(names.items[i]);
		v->id = hf_xstrdup(w ? w->id : s.id ? s.id : "unknown");
		v->epoch = w ? w->epoch : s.epoch;
		v->state = hf_xstrdup(state);
		if (strcmp(state, "ready") == 0 && s.device)
			v->device = hf_xstrdup(s.device);
		if (strcmp(state, "ready") == 0 && s.message)
			v->message = hf_xstrdup(s.message);
		for (size_t k = 0; strcmp(state, "ready") == 0 &&
				   k < s.resynced.len; k++)
			hf_strlist_push(&v->resynced, s.resynced.items[k]);
		if (strcmp(state, "ready") == 0 && json_is_array(s.resync)) {
			size_t k;
			json_t *e;

			json_array_foreach(s.resync, k, e) {
				const char *id = json_string_value(
				    json_object_get(e, "replica"));
				struct hf_proto_resync *p;

				if (!id)
					continue;
				p = HF_VEC_PUSH(&v->resync);
				p->replica = hf_xstrdup(id);
				p->done = json_integer_value(
				    json_object_get(e, "done"));
				p->total = json_integer_value(
				    json_object_get(e, "total"));
			}
		}
		if (strcmp(state, "ready") == 0) {
			size_t k;
			json_t *e;

			v->written = s.io[0];
			v->replicated = s.io[1];
			v->resync_sent = s.io[2];
			v->resync_planned = s.io[3];
			v->nospace = s.io[4];
			v->has_write_us = s.has_write_us;
			memcpy(v->write_us, s.write_us, sizeof(v->write_us));
			v->write_us_sum = s.write_us_sum;
			v->dr = json_incref(s.dr);
			json_array_foreach(s.missed, k, e) {
				const char *id = json_string_value(
				    json_object_get(e, "replica"));
				json_int_t b = json_integer_value(
				    json_object_get(e, "bytes"));
				struct hf_proto_missed *m;

				if (!id || b < 0)
					continue;
				m = HF_VEC_PUSH(&v->missed);
				m->replica = hf_xstrdup(id);
				m->bytes = b;
			}
		}
		if (json_is_object(s.snapshots)) {
			const char *key;
			json_t *e;

			json_object_foreach(s.snapshots, key, e) {
				const char *id = json_string_value(
				    json_object_get(e, "id"));
				const char *op = json_string_value(
				    json_object_get(e, "op"));
				const char *why = json_string_value(
				    json_object_get(e, "error"));
				struct hf_proto_snap_result *q;
				size_t k;
				json_t *x;

				if (!id || !op)
					continue;
				q = HF_VEC_PUSH(&v->snapshots);
				memset(q, 0, sizeof(*q));
				q->id = hf_xstrdup(id);
				q->op = hf_xstrdup(op);
				q->ok = json_is_true(json_object_get(e, "ok"));
				q->error = why ? hf_xstrdup(why) : NULL;
				json_array_foreach(json_object_get(e, "replicas"),
						   k, x)
					if (json_is_string(x))
						hf_strlist_push(
						    &q->replicas,
						    json_string_value(x));
			}
		}
		if (strcmp(state, "ready") == 0 && s.isr_drop.len) {
			for (size_t k = 0; k < s.isr_drop.len; k++)
				hf_strlist_push(&v->isr_drop, s.isr_drop.items[k]);
			v->isr_why = s.isr_why ? hf_xstrdup(s.isr_why) : NULL;
		}
		if (strcmp(state, "failed") == 0)
			v->message = hf_xstrdup(
			    w && !servable(ag, w)
				? "this node has no storage pool (--storage) "
				  "for the volume's local replica"
			    : s.message ? s.message
					: "the attach process failed");
		seen_release(&s);
	}
	hf_strlist_release(&names);
	for (size_t i = 0; i < ag->replicas_deleted.len; i++)
		hf_strlist_push(&req->deleted_replicas,
				ag->replicas_deleted.items[i]);
}

/* Whether an attach process serves this volume id and replica now. */
static bool replica_served(struct hf_agent *ag, const char *id)
{
	struct hf_strlist names = {0};
	bool served = false;

	scan(ag, &names);
	for (size_t i = 0; i < names.len && !served; i++) {
		char *dir = attach_dir(ag, names.items[i]);
		struct seen s;

		look(dir, &s);
		served = s.alive && s.id && strcmp(s.id, id) == 0;
		seen_release(&s);
		free(dir);
	}
	hf_strlist_release(&names);
	return served;
}

bool ag_attach_apply(struct hf_agent *ag, struct hf_proto_sync_resp *r)
{
	struct hf_strlist still = {0};
	bool changed = r->attachments.len != ag->attach_want.len;

	for (size_t i = 0; i < r->attachments.len; i++) {
		const struct hf_proto_attachment *a = &r->attachments.items[i];
		const struct hf_proto_attachment *w = wanted(ag, a->volume);

		if (!w || w->epoch != a->epoch) {
			changed = true;
			continue;
		}
		if (a->size != w->size) {
			/* The volume grew (volume resize): the process grows it. */
			runtime(ag, a->volume, true)->hup = true;
			changed = true;
		}
		/* New snapshot requests: the process carries them out. */
		for (size_t k = 0; k < a->snapshots.len; k++) {
			bool same = false;

			for (size_t j = 0; j < w->snapshots.len && !same; j++)
				same = !strcmp(w->snapshots.items[j].id,
					       a->snapshots.items[k].id) &&
				       !strcmp(w->snapshots.items[j].op,
					       a->snapshots.items[k].op);
			if (!same) {
				runtime(ag, a->volume, true)->hup = true;
				changed = true;
			}
		}
		/* A DR stream begun, changed or ended: the process is told. */
		if (!a->dr != !w->dr ||
		    (a->dr && (strcmp(a->dr->address, w->dr->address) ||
			       a->dr->port != w->dr->port ||
			       strcmp(a->dr->replica, w->dr->replica) ||
			       strcmp(a->dr->ca, w->dr->ca) ||
			       strcmp(a->dr->cert, w->dr->cert) ||
			       strcmp(a->dr->key, w->dr->key) ||
			       a->dr->journal_size != w->dr->journal_size ||
			       a->dr->drain_ms != w->dr->drain_ms ||
			       strcmp(a->dr->when_full, w->dr->when_full)))) {
			runtime(ag, a->volume, true)->hup = true;
			changed = true;
		}
		/*
		 * Same epoch, a remote gone (the server shrank the set) or
		 * come (one to resync), or in sync now: the process is told.
		 */
		for (size_t k = 0; k < a->remotes.len; k++) {
			bool same = false;

			for (size_t j = 0; j < w->remotes.len && !same; j++)
				same = strcmp(w->remotes.items[j].replica,
					      a->remotes.items[k].replica) == 0 &&
				       w->remotes.items[j].resync ==
					   a->remotes.items[k].resync;
			if (!same) {
				runtime(ag, a->volume, true)->hup = true;
				changed = true;
			}
		}
		for (size_t k = 0; k < w->remotes.len; k++) {
			bool kept = false;

			for (size_t j = 0; j < a->remotes.len && !kept; j++)
				kept = strcmp(w->remotes.items[k].replica,
					      a->remotes.items[j].replica) == 0;
			if (!kept) {
				runtime(ag, a->volume, true)->hup = true;
				changed = true;
			}
		}
	}
	for (size_t i = 0; i < ag->attach_want.len; i++) {
		hf_proto_attachment_release(&ag->attach_want.items[i]);
	}
	ag->attach_want.len = 0;
	/* Moved: the answer is released after this. */
	for (size_t i = 0; i < r->attachments.len; i++) {
		*HF_VEC_PUSH(&ag->attach_want) = r->attachments.items[i];
		memset(&r->attachments.items[i], 0,
		       sizeof(r->attachments.items[i]));
	}
	for (size_t i = 0; i < r->delete_replicas.len; i++) {
		const struct hf_proto_replica_ref *d =
		    &r->delete_replicas.items[i];
		char *path;

		hf_strlist_push(&still, d->replica);
		if (hf_strlist_has(&ag->replicas_deleted, d->replica))
			continue;
		if (!ag->pool.dir || replica_served(ag, d->id) ||
		    ag_vserve_holds(ag, d->id, d->replica))
			continue; /* asked again at the next sync */
		path = hf_xasprintf("%s/replicas/%s/%s", ag->pool.dir, d->id,
				    d->replica);
		if (ag_rm_rf(path) == 0) {
			char *parent = hf_xasprintf("%s/replicas/%s",
						    ag->pool.dir, d->id);

			rmdir(parent); /* the volume's last replica here */
			free(parent);
			hf_log("replica %s of volume %s deleted", d->replica,
			       d->id);
			hf_strlist_push(&ag->replicas_deleted, d->replica);
		} else {
			hf_log("cannot delete replica %s: %s", path,
			       strerror(errno));
		}
		free(path);
	}
	/* Reported until the server stops asking. */
	for (size_t i = 0; i < ag->replicas_deleted.len;) {
		if (!hf_strlist_has(&still, ag->replicas_deleted.items[i])) {
			free(ag->replicas_deleted.items[i]);
			ag->replicas_deleted.items[i] =
			    ag->replicas_deleted
				.items[--ag->replicas_deleted.len];
		} else {
			i++;
		}
	}
	hf_strlist_release(&still);
	if (changed)
		ag->attach_next = 0;
	return changed;
}

int ag_attach_ready(struct hf_agent *ag, const char *volume, int64_t epoch,
		    char **device, char **identity, char **why)
{
	const struct hf_proto_attachment *w = wanted(ag, volume);
	char *dir;
	struct seen s;
	int rc = 1;

	*device = *identity = *why = NULL;
	if (!name_ok(volume)) {
		*why = hf_xasprintf("volume name '%s' cannot be attached",
				    volume);
		return -1;
	}
	if (!w || w->epoch != epoch) {
		*why = hf_xasprintf("volume %s is not attached to this node at "
				    "epoch %lld yet",
				    volume, (long long)epoch);
		return 1;
	}
	dir = attach_dir(ag, volume);
	look(dir, &s);
	free(dir);
	if (s.alive && s.epoch == epoch && s.state &&
	    strcmp(s.state, "ready") == 0 && s.st_epoch == epoch && s.device) {
		*device = hf_xstrdup(s.device);
		*identity = hf_xasprintf("hf:%s:%lld", w->id, (long long)epoch);
		rc = 0;
	} else if (s.state && strcmp(s.state, "failed") == 0 &&
		   s.epoch == epoch) {
		*why = hf_xasprintf("volume %s failed to attach: %s", volume,
				    s.message ? s.message : "?");
	} else {
		*why = hf_xasprintf("volume %s is still attaching", volume);
	}
	seen_release(&s);
	return rc;
}
