/*
 * vserve.c - the node's replica server: one `holdfast-volume serve
 * <data>/vserve` (src/volume/serve.h) while the node has a storage pool,
 * serving the replicas the sync's `replicas` list (docs/protocol.md,
 * "Volumes") to the attach processes of other nodes.
 *
 * Started detached like the attach processes (it outlives the agent), and
 * found again by its lock (<data>/vserve/serve.lock) after an agent
 * restart; started again when it is gone. Its settings are
 * <data>/vserve/serve.json, rewritten atomically (0600: it holds the
 * volumes' keys) only when they change, then SIGHUP makes it reload. Its
 * status.json says the port it listens on (reported as the node info's
 * storage.port once it is ready) and the replicas it has open, which is
 * what lets attach.c delete a replica's files only once serve let go of
 * them.
 *
 * Everything here runs under ag->mu: the supervisor reconciles, the sync
 * applies and reports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"
#include "volume/volume.h"

/* A server that failed is started again after this long. */
#define RETRY_MS 5000
/* SIGHUP again when its set still differs this long after the last. */
#define HUP_AGAIN_MS 2000
/* SIGTERM again this often to a server that has to restart. */
#define TERM_AGAIN_MS 5000
/* The smallest replica serve accepts (serveconf.c). */
#define MIN_SIZE (64LL << 20)

/* What <data>/vserve says. */
struct seen {
	bool alive;   /* a process holds serve.lock */
	long pid;     /* that process, from the lock file */
	json_t *st;   /* status.json, or NULL */
};

static void look(const char *dir, struct seen *s)
{
	char *lock = hf_xasprintf("%s/serve.lock", dir);
	char *status = hf_xasprintf("%s/status.json", dir);

	memset(s, 0, sizeof(*s));
	s->alive = hf_lock_held(lock, &s->pid);
	s->st = json_load_file(status, 0, NULL);
	if (s->st && !json_is_object(s->st)) {
		json_decref(s->st);
		s->st = NULL;
	}
	free(lock);
	free(status);
}

static const char *st_str(const struct seen *s, const char *key)
{
	return json_string_value(json_object_get(s->st, key));
}

/* The status is the live process's, and it is serving. */
static bool ready(const struct seen *s)
{
	const char *state = st_str(s, "state");

	return s->alive && state && strcmp(state, "ready") == 0 &&
	       json_integer_value(json_object_get(s->st, "pid")) == s->pid;
}

static bool st_serves(const struct seen *s, const char *id,
		      const char *replica)
{
	json_t *served = json_object_get(s->st, "served"), *e;
	size_t i;

	json_array_foreach(served, i, e) {
		const char *a = json_string_value(json_object_get(e, "id"));
		const char *b = json_string_value(json_object_get(e, "replica"));

		if (a && b && strcmp(a, id) == 0 && strcmp(b, replica) == 0)
			return true;
	}
	return false;
}

static char *serve_dir(const struct hf_agent *ag)
{
	return hf_xasprintf("%s/vserve", ag->data);
}

/*
 * "HOST:PORT" for serve.json from --address and --volume-port: the
 * address as other nodes reach it, when it is numeric; else (a name)
 * every address, since serve listens on numeric ones only.
 */
static char *listen_text(const struct hf_agent *ag, char **host)
{
	const char *a = ag->opts->address;
	unsigned char buf[sizeof(struct in6_addr)];
	int port = ag->opts->volume_port;

	if (a && inet_pton(AF_INET, a, buf) == 1) {
		*host = hf_xstrdup(a);
		return hf_xasprintf("%s:%d", a, port);
	}
	if (a && inet_pton(AF_INET6, a, buf) == 1) {
		*host = hf_xstrdup(a);
		return hf_xasprintf("[%s]:%d", a, port);
	}
	*host = hf_xstrdup("0.0.0.0");
	return hf_xasprintf("0.0.0.0:%d", port);
}

/* Whether serve.json can list r as serve checks it (serveconf.c). */
static bool listable(const struct hf_proto_held_replica *r, json_t *vols)
{
	json_t *e;
	size_t i;

	if (r->size < MIN_SIZE || (uint64_t)r->size > HF_VOL_SIZE_MAX ||
	    r->size % 4096)
		return false;
	json_array_foreach(vols, i, e)
		if (strcmp(json_string_value(json_object_get(e, "id")),
			   r->id) == 0)
			return false; /* one replica of a volume per node */
	return true;
}

/* serve.json's text for the held set (it holds keys: never logged). */
static char *config_text(struct hf_agent *ag)
{
	json_t *vols = json_array(), *o;
	char *host, *listen = listen_text(ag, &host), *text;

	for (size_t i = 0; i < ag->held.len; i++) {
		const struct hf_proto_held_replica *r = &ag->held.items[i];
		json_t *v;

		if (!listable(r, vols)) {
			if (!hf_strlist_has(&ag->vserve.skipped, r->replica)) {
				hf_log("replica %s of volume %s cannot be "
				       "served (%lld bytes, or a second "
				       "replica of the volume here): left out",
				       r->replica, r->id, (long long)r->size);
				hf_strlist_push(&ag->vserve.skipped,
						r->replica);
			}
			continue;
		}
		v = json_pack("{s:s, s:s, s:I, s:s}", "id", r->id, "replica",
			      r->replica, "size", (json_int_t)r->size, "key",
			      r->key);
		if (hf_vol_id_ok(r->volume, strlen(r->volume),
				 HF_VOL_NAME_MAX))
			json_object_set_new(v, "name",
					    json_string(r->volume));
		if (r->restore_from)
			json_object_set(v, "restore_from", r->restore_from);
		if (r->standby)
			json_object_set_new(v, "standby", json_true());
		if (r->standby && r->group)
			json_object_set_new(v, "group", json_string(r->group));
		if (r->clone_id)
			json_object_set_new(
			    v, "clone_from",
			    json_pack("{s:s, s:s, s:s}", "id", r->clone_id,
				      "replica", r->clone_replica, "snapshot",
				      r->clone_snap));
		json_array_append_new(vols, v);
	}
	o = json_pack("{s:s, s:s, s:o}", "pool", ag->pool.dir, "listen",
		      listen, "volumes", vols);
	if (ag->opts->dr_listen)
		json_object_set_new(
		    o, "dr",
		    json_pack("{s:s, s:s, s:s, s:s}", "listen",
			      ag->opts->dr_listen, "tls_cert", ag->opts->dr_cert,
			      "tls_key", ag->opts->dr_key, "tls_ca",
			      ag->opts->dr_ca));
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	free(listen);
	free(host);
	if (!text)
		abort(); /* only on allocation failure */
	return text;
}

/*
 * Writes serve.json when its content changes. Returns 1 when it was
 * written, 0 when it was already so, -1 when it cannot be (logged).
 */
static int write_config(struct hf_agent *ag, const char *dir)
{
	char *path = hf_xasprintf("%s/serve.json", dir), *old = NULL;
	char *text = config_text(ag);
	size_t len = strlen(text);
	int rc = 0;

	ag->vserve.config_crc = hf_crc32c(0, text, len);
	if (hf_read_file(path, 16 << 20, &old, NULL) == 0 &&
	    strcmp(old, text) == 0)
		goto out;
	if (hf_write_file_atomic(path, text, len, 0600)) {
		hf_log("cannot write %s: %s", path, strerror(errno));
		rc = -1;
		goto out;
	}
	ag->vserve.written = true;
	rc = 1;
out:
	if (old)
		explicit_bzero(old, strlen(old));
	explicit_bzero(text, len);
	free(old);
	free(text);
	free(path);
	return rc;
}

static bool has_config(const char *dir)
{
	char *path = hf_xasprintf("%s/serve.json", dir);
	bool has = access(path, F_OK) == 0;

	free(path);
	return has;
}

/* Whether the live server applied serve.json as it was last written. */
static bool applied(const struct ag_vserve *v, const struct seen *s)
{
	char want[9];

	snprintf(want, sizeof(want), "%08x", (unsigned)v->config_crc);
	return st_str(s, "config") && strcmp(st_str(s, "config"), want) == 0;
}

/* Whether the live server serves exactly the replicas serve.json lists. */
static bool same_set(struct hf_agent *ag, const struct seen *s)
{
	json_t *served = json_object_get(s->st, "served");
	size_t n = 0;

	for (size_t i = 0; i < ag->held.len; i++) {
		const struct hf_proto_held_replica *r = &ag->held.items[i];

		if (hf_strlist_has(&ag->vserve.skipped, r->replica))
			continue;
		if (!st_serves(s, r->id, r->replica))
			return false;
		n++;
	}
	return json_array_size(served) == n;
}

/* The standbys' marks, reported with the node's info when they move. */
static void set_marks(struct hf_agent *ag, json_t *marks)
{
	json_t *old = ag->info.storage.marks;

	if (!json_is_array(marks))
		marks = NULL;
	if ((!old && !marks) || (old && marks && json_equal(old, marks)))
		return;
	json_decref(old);
	ag->info.storage.marks = marks ? json_deep_copy(marks) : NULL;
	ag_mark_dirty(ag);
}

static void set_dr_port(struct hf_agent *ag, int64_t port)
{
	if (ag->info.storage.dr_port == port)
		return;
	if (port)
		hf_log("replica server's DR listener on port %lld",
		       (long long)port);
	ag->info.storage.dr_port = port;
	ag_mark_dirty(ag);
}

static void set_port(struct hf_agent *ag, int64_t port)
{
	if (ag->info.storage.port == port)
		return;
	if (port)
		hf_log("replica server listening on port %lld",
		       (long long)port);
	ag->info.storage.port = port;
	ag_mark_dirty(ag);
}

static void start(struct hf_agent *ag, const char *dir)
{
	char *logp = hf_xasprintf("%s/serve.log", dir), *err = NULL;
	char *argv[] = {ag->volume_bin, "serve", (char *)dir, NULL};
	struct hf_spawn sp;
	pid_t pid;
	int logfd;

	logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	memset(&sp, 0, sizeof(sp));
	sp.path = ag->volume_bin;
	sp.argv = argv;
	sp.in = -1;
	sp.out = sp.err = logfd;
	sp.new_session = true; /* it outlives the agent, as shims do */
	ag->vserve.start_at = hf_mono_ms();
	if (hf_spawn_start(&sp, &pid, &err)) {
		hf_log("cannot start the replica server %s: %s",
		       ag->volume_bin, err);
		free(err);
	} else {
		hf_log("replica server starting (process %d)", (int)pid);
		ag->vserve.pid = pid;
	}
	if (logfd >= 0)
		close(logfd);
	free(logp);
}

/* The live server runs with another pool or listen address than ours. */
static bool outdated(struct hf_agent *ag, const struct seen *s)
{
	const char *pool = st_str(s, "pool"), *addr = st_str(s, "address");
	char *host, *listen = listen_text(ag, &host);
	bool old = (pool && strcmp(pool, ag->pool.dir) != 0) ||
		   (addr && strcmp(addr, host) != 0) ||
		   (ag->opts->volume_port &&
		    json_integer_value(json_object_get(s->st, "port")) !=
			ag->opts->volume_port) ||
		   !ag->opts->dr_listen !=
			   !json_integer_value(json_object_get(s->st, "dr_port"));

	free(listen);
	free(host);
	return old;
}

int64_t ag_vserve_reconcile(struct hf_agent *ag)
{
	struct ag_vserve *v = &ag->vserve;
	int64_t now = hf_mono_ms(), next = now + 2000;
	char *dir;
	struct seen s;
	int st;

	dir = serve_dir(ag);
	if (!ag->pool.dir) {
		/* One an earlier run with a pool left has nothing to serve. */
		look(dir, &s);
		if (s.alive && (!v->term_at || now - v->term_at >= TERM_AGAIN_MS)) {
			hf_log("replica server: stopping it (no storage pool)");
			kill((pid_t)s.pid, SIGTERM);
			v->term_at = now;
		}
		next = s.alive ? now + 1000 : INT64_MAX;
		json_decref(s.st);
		free(dir);
		return next;
	}
	if (hf_fs_mkdir_p(dir, 0700, 0700) < 0) {
		hf_log("cannot make %s: %s", dir, strerror(errno));
		free(dir);
		return now + RETRY_MS;
	}
	if (v->pid > 0 && waitpid(v->pid, &st, WNOHANG) == v->pid)
		v->pid = 0;
	if (v->known || !has_config(dir))
		write_config(ag, dir);
	look(dir, &s);
	if (s.alive && ready(&s) && outdated(ag, &s)) {
		/* Only a restart applies a new pool or listen address. */
		if (!v->term_at || now - v->term_at >= TERM_AGAIN_MS) {
			hf_log("replica server: restarting it on the new "
			       "listen address or pool");
			kill((pid_t)s.pid, SIGTERM);
			v->term_at = now;
		}
		set_port(ag, 0);
		set_dr_port(ag, 0);
		next = now + 200;
	} else if (s.alive) {
		v->term_at = 0;
		if (ready(&s)) {
			set_port(ag, json_integer_value(
					 json_object_get(s.st, "port")));
			set_dr_port(ag, json_integer_value(json_object_get(
					    s.st, "dr_port")));
			set_marks(ag, json_object_get(s.st, "marks"));
			/*
			 * Standbys' marks are what a failover's loss window
			 * is told from: looked at twice a second (the replica
			 * server writes them each second).
			 */
			if (json_array_size(json_object_get(s.st, "marks")) &&
			    next > now + 500)
				next = now + 500;
			/*
			 * A server that read the file as written (it started
			 * after the write) needs no signal.
			 */
			if (v->written && applied(v, &s))
				v->written = false;
			if (v->written ||
			    (v->known && !same_set(ag, &s) &&
			     now - v->hup_at >= HUP_AGAIN_MS)) {
				kill((pid_t)s.pid, SIGHUP);
				v->written = false;
				v->hup_at = now;
				next = now + 100;
			}
		} else {
			next = now + 100; /* loading: ready soon */
		}
	} else if (v->pid > 0) {
		next = now + 100; /* started, not locked yet */
	} else {
		const char *state = st_str(&s, "state");
		const char *msg = st_str(&s, "message");
		bool failed = state && strcmp(state, "failed") == 0;

		set_port(ag, 0);
		set_dr_port(ag, 0);
		if (failed && msg &&
		    !(v->failure && strcmp(v->failure, msg) == 0)) {
			hf_log("replica server failed: %s", msg);
			free(v->failure);
			v->failure = hf_xstrdup(msg);
		}
		if (failed && v->start_at && now - v->start_at < RETRY_MS) {
			next = v->start_at + RETRY_MS;
		} else {
			v->written = false; /* it reads the file as it is */
			start(ag, dir);
			next = now + 100;
		}
	}
	if (ready(&s) && !outdated(ag, &s) && v->failure) {
		free(v->failure);
		v->failure = NULL;
	}
	if (ready(&s)) {
		/* A clone's replica made: the server hears it at once. */
		size_t filled = 0;

		for (size_t i = 0; i < ag->held.len; i++)
			filled += (ag->held.items[i].clone_id ||
				   ag->held.items[i].restore_from) &&
				  st_serves(&s, ag->held.items[i].id,
					    ag->held.items[i].replica);
		if (filled != v->filled_seen) {
			v->filled_seen = filled;
			if (filled)
				ag_mark_dirty(ag);
		}
	}
	{
		/* A replica being made: the server hears how far. */
		const json_t *f = json_array_get(json_object_get(s.st, "filling"), 0);
		int64_t done = f ? json_integer_value(json_object_get(f, "done"))
				 : -1;

		if (done != v->fill_seen) {
			v->fill_seen = done;
			ag_mark_dirty(ag);
		}
		if (f && next > now + 1000)
			next = now + 1000;
	}
	json_decref(s.st);
	free(dir);
	return next;
}

static bool held_equal(const struct hf_proto_held_replica *a,
		       const struct hf_proto_held_replica *b)
{
	return strcmp(a->volume, b->volume) == 0 && strcmp(a->id, b->id) == 0 &&
	       strcmp(a->replica, b->replica) == 0 &&
	       strcmp(a->key, b->key) == 0 && a->size == b->size &&
	       a->standby == b->standby && !a->group == !b->group &&
	       (!a->group || !strcmp(a->group, b->group)) &&
	       !a->clone_id == !b->clone_id &&
	       !a->restore_from == !b->restore_from &&
	       (!a->restore_from ||
		json_equal(a->restore_from, b->restore_from)) &&
	       (!a->clone_id || (!strcmp(a->clone_id, b->clone_id) &&
				 !strcmp(a->clone_replica, b->clone_replica) &&
				 !strcmp(a->clone_snap, b->clone_snap)));
}

static void held_release(struct hf_proto_held_replica *r)
{
	free(r->volume);
	free(r->id);
	free(r->replica);
	if (r->key)
		explicit_bzero(r->key, strlen(r->key));
	free(r->key);
	free(r->clone_id);
	free(r->clone_replica);
	free(r->clone_snap);
	free(r->group);
	json_decref(r->restore_from);
}

static bool deleting(const struct hf_proto_sync_resp *r,
		     const struct hf_proto_held_replica *h)
{
	for (size_t i = 0; i < r->delete_replicas.len; i++)
		if (strcmp(r->delete_replicas.items[i].id, h->id) == 0 &&
		    strcmp(r->delete_replicas.items[i].replica,
			   h->replica) == 0)
			return true;
	return false;
}

bool ag_vserve_apply(struct hf_agent *ag, struct hf_proto_sync_resp *r)
{
	size_t n = 0;
	bool changed = !ag->vserve.known;

	ag->vserve.known = true;
	for (size_t i = 0; i < r->replicas.len && !changed; i++) {
		if (deleting(r, &r->replicas.items[i]))
			continue; /* dropped first, then deleted */
		changed = n >= ag->held.len ||
			  !held_equal(&r->replicas.items[i],
				      &ag->held.items[n]);
		n++;
	}
	if (!changed && n == ag->held.len)
		return false;
	ag_vserve_clear(ag);
	/* Moved: the answer is released after this. */
	for (size_t i = 0; i < r->replicas.len; i++) {
		if (deleting(r, &r->replicas.items[i]))
			continue;
		*HF_VEC_PUSH(&ag->held) = r->replicas.items[i];
		memset(&r->replicas.items[i], 0, sizeof(r->replicas.items[i]));
	}
	hf_strlist_release(&ag->vserve.skipped);
	ag->vserve_next = 0;
	return true;
}

void ag_vserve_clear(struct hf_agent *ag)
{
	for (size_t i = 0; i < ag->held.len; i++)
		held_release(&ag->held.items[i]);
	ag->held.len = 0;
}

bool ag_vserve_holds(struct hf_agent *ag, const char *id, const char *replica)
{
	char *dir;
	struct seen s;
	bool holds;

	if (!ag->pool.dir)
		return false;
	dir = serve_dir(ag);
	/* A server started from now on reads the set without it. */
	if (ag->vserve.known && hf_fs_mkdir_p(dir, 0700, 0700) == 0)
		write_config(ag, dir);
	look(dir, &s);
	free(dir);
	/* A server starting or loading may still open it: not yet. */
	holds = (s.alive && (!ready(&s) || st_serves(&s, id, replica))) ||
		(!s.alive && ag->vserve.pid > 0);
	json_decref(s.st);
	return holds;
}

void ag_vserve_reports(struct hf_agent *ag, struct hf_proto_sync_req *req)
{
	char *dir;
	struct seen s;

	if (!ag->pool.dir)
		return;
	dir = serve_dir(ag);
	look(dir, &s);
	free(dir);
	for (size_t i = 0; ready(&s) && i < ag->held.len; i++)
		if ((ag->held.items[i].clone_id ||
		     ag->held.items[i].restore_from) &&
		    st_serves(&s, ag->held.items[i].id,
			      ag->held.items[i].replica))
			hf_strlist_push(&req->filled_replicas,
					ag->held.items[i].replica);
	/* The one being made, and how far. */
	{
		const json_t *f;
		size_t i;

		json_array_foreach(json_object_get(s.st, "filling"), i, f) {
			const char *rid =
			    json_string_value(json_object_get(f, "replica"));
			int64_t done = json_integer_value(json_object_get(f, "done"));
			int64_t total =
			    json_integer_value(json_object_get(f, "total"));
			struct hf_proto_resync *e;

			if (!rid || !hf_vol_id_ok(rid, strlen(rid), 64) ||
			    total < 0)
				continue;
			e = HF_VEC_PUSH(&req->filling);
			e->replica = hf_xstrdup(rid);
			e->total = total;
			e->done = done < 0 ? 0 : done > total ? total : done;
		}
	}
	json_decref(s.st);
}

bool ag_vserve_serving(struct hf_agent *ag, const char *id,
		       const char *replica)
{
	char *dir;
	struct seen s;
	bool serving;

	if (!ag->pool.dir)
		return false;
	dir = serve_dir(ag);
	look(dir, &s);
	free(dir);
	serving = ready(&s) && st_serves(&s, id, replica);
	json_decref(s.st);
	return serving;
}
