/*
 * serve.c - holdfast-volume serve DIR: a node's replicas served to the
 * primaries of their volumes over TCP (serve.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/attach.h"
#include "volume/conn.h"
#include "volume/replica.h"
#include "volume/serve.h"
#include "volume/serveconf.h"
#include "volume/snap.h"
#include "volume/spool.h"
#include "volume/backup.h"
#include "volume/s3.h"
#include "volume/status.h"
#include "volume/ticket.h"
#include "volume/tls.h"

#define MAX_CONNS 256
#define STOP_WAIT_MS 3000
#define FILL_RETRY_MS 10000 /* a replica that could not be made: again after */

/* A replica of the served set. */
struct held {
	struct hf_replica r;
	int users;    /* connections bound to it (under server.mu) */
	bool standby; /* another site's stream may write it (under mu) */
	/*
	 * A standby's consistency group ("" none): its stream's timed
	 * writes go to its spool, applied up to the group's cut (spool.h).
	 * Written under server.mu and sp_mu, read under either.
	 */
	char group[HF_VOL_ID_MAX + 1];
	pthread_mutex_t sp_mu;
	struct hf_spool *spool; /* open while it has one (sp_mu) */
	bool sp_absent;         /* no spool file: none opened (sp_mu) */
};

struct server {
	char *dir;
	char *pool;
	char *host, *port;
	/*
	 * The served set: replaced whole by a reload, on the main thread,
	 * under mu (connections look replicas up under mu; the main thread
	 * reads it without).
	 */
	struct held **set;
	size_t nset;
	uint64_t generation; /* serve.json loads applied, from 1 */
	uint32_t config_crc; /* CRC-32C of the serve.json text applied last */
	/* Replicas dropped whose connections would not close: never freed. */
	HF_VEC(struct held *) stuck;
	int lfd;
	char address[64];
	int bound_port;
	/* The "dr" listener (serveconf.h): -1 and NULL without one. */
	char *dr_host, *dr_port;
	int dr_lfd, dr_bound_port;
	SSL_CTX *dr_ctx;
	pthread_mutex_t mu; /* conns, conn_held, nconns, stopping, set */
	pthread_mutex_t group_mu; /* one group's cut applied at a time */
	int conns[MAX_CONNS];
	bool conn_remote[MAX_CONNS]; /* from the "dr" listener */
	struct held *conn_held[MAX_CONNS]; /* the replica each one serves */
	int nconns;
	bool stopping;
	/*
	 * The replica being made (a clone's, or one from a backup) by the
	 * filler thread, one at a time, so reloads and the served set go
	 * on meanwhile: when it is made the thread signals a reload, which
	 * serves it. Under fill_mu.
	 */
	pthread_mutex_t fill_mu;
	pthread_t filler;
	bool filling, fill_joinable;
	struct hf_serve_volume fill_v; /* a copy: the thread's own */
	int64_t fill_progress[2];      /* bytes written, to write */
	/* The last failure, by "id/replica": not tried again too soon. */
	char *fail_what, *fail_msg;
	int64_t fail_at;
	char *last_msg; /* main thread: the message of the last publish */
};

struct conn {
	struct server *s;
	int fd;
	int slot;
	bool remote;     /* from the "dr" listener: TLS, standbys only */
	char peer[128];  /* then: its certificate's CN */
};

/* ---- status.json ------------------------------------------------------ */

/* Main thread only: it alone changes the set. */
static void publish(const struct server *s, const char *state,
		    const char *msg)
{
	json_t *o = json_pack("{s:s, s:i, s:i, s:I}", "state", state, "pid",
			      (int)getpid(), "replicas", (int)s->nset,
			      "generation", (json_int_t)s->generation);
	json_t *served = json_array();

	for (size_t i = 0; i < s->nset; i++)
		json_array_append_new(
		    served, json_pack("{s:s, s:s}", "id", s->set[i]->r.volume_id,
				      "replica", s->set[i]->r.replica_id));
	json_object_set_new(o, "served", served);
	{
		/* Standbys' marks: how far each other site's stream got. */
		json_t *marks = json_array();

		for (size_t i = 0; i < s->nset; i++) {
			uint64_t seq, t;

			if (!s->set[i]->standby ||
			    hf_replica_mark_get(&s->set[i]->r, &seq, &t))
				continue;
			json_t *e = json_pack(
			    "{s:s, s:s, s:b, s:I}", "id",
			    s->set[i]->r.volume_id, "replica",
			    s->set[i]->r.replica_id, "consistent",
			    seq != 0 && seq != UINT64_MAX, "time",
			    (json_int_t)(seq == UINT64_MAX ? 0 : t));
			struct held *h = s->set[i];

			pthread_mutex_lock(&h->sp_mu);
			if (h->group[0]) {
				/* Held back for the group's cut. */
				json_object_set_new(e, "group",
						    json_string(h->group));
				json_object_set_new(
				    e, "spooled",
				    json_integer(h->spool ? (json_int_t)
						     hf_spool_pending(h->spool)
							  : 0));
			}
			pthread_mutex_unlock(&h->sp_mu);
			json_array_append_new(marks, e);
		}
		if (json_array_size(marks))
			json_object_set_new(o, "marks", marks);
		else
			json_decref(marks);
	}
	pthread_mutex_lock((pthread_mutex_t *)&s->fill_mu);
	if (s->filling)
		json_object_set_new(
		    o, "filling",
		    json_pack("[{s:s, s:s, s:I, s:I}]", "id", s->fill_v.id,
			      "replica", s->fill_v.replica, "done",
			      (json_int_t)__atomic_load_n(&s->fill_progress[0],
							  __ATOMIC_RELAXED),
			      "total",
			      (json_int_t)__atomic_load_n(&s->fill_progress[1],
							  __ATOMIC_RELAXED)));
	pthread_mutex_unlock((pthread_mutex_t *)&s->fill_mu);
	/* The agent signals only when the file differs from this. */
	json_object_set_new(o, "config",
			    json_sprintf("%08x", (unsigned)s->config_crc));
	json_object_set_new(o, "pool", s->pool ? json_string(s->pool)
					       : json_null());
	json_object_set_new(o, "address", s->address[0]
						  ? json_string(s->address)
						  : json_null());
	json_object_set_new(o, "port", s->bound_port
					       ? json_integer(s->bound_port)
					       : json_null());
	if (s->dr_bound_port)
		json_object_set_new(o, "dr_port",
				    json_integer(s->dr_bound_port));
	hf_vol_status_write(s->dir, o, msg);
}

static int failed(const struct server *s, const char *fmt, ...) HF_PRINTF(2, 3);
static int failed(const struct server *s, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	hf_log("%s", msg ? msg : fmt);
	publish(s, "failed", msg ? msg : fmt);
	free(msg);
	return -1;
}

/* ---- serve.json ------------------------------------------------------- */

/*
 * Reads and checks serve.json into *c, and its text's CRC-32C into *crc.
 * Returns 0, or -1 with err set.
 */
static int read_config(const struct server *s, struct hf_serve_config *c,
		       uint32_t *crc, char *err, size_t n)
{
	char *path = hf_xasprintf("%s/serve.json", s->dir), *text = NULL;
	size_t len = 0;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (hf_read_file(path, 1 << 20, &text, &len))
		snprintf(err, n, "%s: %s", path, strerror(errno));
	else if (!hf_serve_config_parse(text, len, path, c, err, n))
		rc = 0;
	if (text) {
		*crc = hf_crc32c(0, text, len);
		explicit_bzero(text, len); /* it holds keys */
	}
	free(text);
	free(path);
	return rc;
}

static struct held *held_new(struct hf_serve_volume *v)
{
	struct held *h = hf_xcalloc(1, sizeof(*h));
	struct hf_replica *r = &h->r;

	r->fd = r->al_fd = -1;
	r->volume_id = v->id;
	r->replica_id = v->replica;
	r->name = v->name;
	v->id = v->replica = v->name = NULL;
	r->size = v->size;
	memcpy(r->key, v->key, sizeof(r->key));
	h->standby = v->standby;
	snprintf(h->group, sizeof(h->group), "%s",
		 v->standby && v->group ? v->group : "");
	pthread_mutex_init(&h->sp_mu, NULL);
	return h;
}

/*
 * A clone's replica, made once from snapshot v->clone_snap of replica
 * v->clone_replica of volume v->clone_id in this pool: read as the
 * snapshot was (even while an attach process writes the source: a
 * reader's store), written sparse to data.clone, made durable, renamed
 * to data. Nothing when data exists (made before). Returns 0, or -1
 * with a sentence in err.
 */
static int fill_clone(const char *pool, const struct hf_serve_volume *v,
		      int64_t *progress, char *err, size_t err_len)
{
	char *dir = hf_xasprintf("%s/replicas/%s/%s", pool, v->id, v->replica);
	char *data = hf_xasprintf("%s/data", dir);
	char *tmp = hf_xasprintf("%s/data.clone", dir);
	char *sdir = hf_xasprintf("%s/replicas/%s/%s", pool, v->clone_id,
				  v->clone_replica);
	char *sdata = hf_xasprintf("%s/data", sdir);
	struct hf_snap_info info[HF_SNAP_MAX];
	struct hf_snaps *sn = NULL;
	uint8_t *buf = NULL;
	int64_t size = -1, kept = 0;
	int sfd = -1, out = -1, rc = -1, e = 0;
	size_t n;

	if (access(data, F_OK) == 0) {
		rc = 0;
		goto out;
	}
	if (hf_fs_mkdir_p(dir, 0700, 0700) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if ((sfd = open(sdata, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, err_len, "the source replica %s of volume %s is "
				       "not in this pool: %s",
			 v->clone_replica, v->clone_id, strerror(errno));
		goto out;
	}
	if (!(sn = hf_snaps_open_reader(sdir, sfd, err, err_len)))
		goto out;
	n = hf_snaps_list(sn, info, HF_SNAP_MAX);
	for (size_t i = 0; i < n; i++)
		if (strcmp(info[i].id, v->clone_snap) == 0)
			size = info[i].size;
	if (size < 0) {
		snprintf(err, err_len, "the source replica %s holds no snapshot "
				       "%s",
			 v->clone_replica, v->clone_snap);
		goto out;
	}
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, v->size > size ? v->size : size) < 0) {
		snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	buf = hf_xmalloc(HF_SNAP_CHUNK);
	__atomic_store_n(&progress[1], size, __ATOMIC_RELAXED);
	for (int64_t off = 0; off < size && !e; off += HF_SNAP_CHUNK) {
		size_t len = size - off < HF_SNAP_CHUNK ? (size_t)(size - off)
							: HF_SNAP_CHUNK;
		bool zero = true;

		__atomic_store_n(&progress[0], off, __ATOMIC_RELAXED);
		if ((e = hf_snaps_read(sn, v->clone_snap, (uint64_t)off, buf,
				       len)))
			break;
		for (size_t k = 0; k < len && zero; k++)
			zero = buf[k] == 0;
		if (zero)
			continue; /* thin, as the source */
		if (pwrite(out, buf, len, off) != (ssize_t)len)
			e = errno ? errno : EIO;
		kept += (int64_t)len;
	}
	if (!e && fdatasync(out) < 0)
		e = errno;
	if (!e && rename(tmp, data) < 0)
		e = errno;
	if (e) {
		snprintf(err, err_len, "making it from snapshot %s: %s",
			 v->clone_snap, strerror(e));
		goto out;
	}
	{
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	hf_log("replica %s of volume %s: made from snapshot %s of replica %s "
	       "(%lld bytes of data)",
	       v->replica, v->id, v->clone_snap, v->clone_replica,
	       (long long)kept);
	rc = 0;
out:
	if (out >= 0)
		close(out);
	hf_snaps_close(sn);
	if (sfd >= 0)
		close(sfd);
	free(buf);
	free(sdata);
	free(sdir);
	free(tmp);
	free(data);
	free(dir);
	return rc;
}

/*
 * A replica made once from a backup in an S3 store (v->rf): written to
 * data.clone, then renamed to data. Nothing when data exists.
 */
static int fill_backup(const char *pool, const struct hf_serve_volume *v,
		       int64_t *progress, char *err, size_t err_len)
{
	char *dir = hf_xasprintf("%s/replicas/%s/%s", pool, v->id, v->replica);
	char *data = hf_xasprintf("%s/data", dir);
	char *tmp = hf_xasprintf("%s/data.clone", dir);
	char *journal = hf_xasprintf("%s/data.clone.progress", dir);
	struct hf_s3_config cfg;
	int rc = -1;

	if (access(data, F_OK) == 0) {
		rc = 0;
		goto out;
	}
	if (hf_fs_mkdir_p(dir, 0700, 0700) < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* A run cut short goes on from its journal; without one, afresh. */
	if (access(journal, F_OK) != 0)
		unlink(tmp);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = v->rf[HF_RF_ENDPOINT];
	cfg.region = v->rf[HF_RF_REGION];
	cfg.ca_file = v->rf[HF_RF_CA];
	cfg.access_key = v->rf[HF_RF_ACCESS];
	cfg.secret_key = v->rf[HF_RF_SECRET];
	if (hf_backup_restore_file(&cfg, v->rf[HF_RF_URL], v->rf[HF_RF_VOLUME],
				   v->rf[HF_RF_BACKUP], tmp, progress, err,
				   err_len))
		goto out;
	if (truncate(tmp, v->size) < 0 || rename(tmp, data) < 0) {
		snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	hf_log("replica %s of volume %s: made from backup %s of %s",
	       v->replica, v->id, v->rf[HF_RF_BACKUP], v->rf[HF_RF_VOLUME]);
	rc = 0;
out:
	free(journal);
	free(tmp);
	free(data);
	free(dir);
	return rc;
}

/* Whether v's replica is still to be made (a clone's, or from a backup). */
static bool to_fill(const char *pool, const struct hf_serve_volume *v)
{
	char *data;
	bool missing;

	if (!v->clone_id && !v->rf[HF_RF_URL])
		return false;
	data = hf_xasprintf("%s/replicas/%s/%s/data", pool, v->id, v->replica);
	missing = access(data, F_OK) != 0;
	free(data);
	return missing;
}

static char *dup_or_null(const char *s)
{
	return s ? hf_xstrdup(s) : NULL;
}

static void volume_copy(struct hf_serve_volume *to,
			const struct hf_serve_volume *v)
{
	memset(to, 0, sizeof(*to));
	to->id = hf_xstrdup(v->id);
	to->replica = hf_xstrdup(v->replica);
	to->name = dup_or_null(v->name);
	to->size = v->size;
	memcpy(to->key, v->key, sizeof(to->key));
	to->clone_id = dup_or_null(v->clone_id);
	to->clone_replica = dup_or_null(v->clone_replica);
	to->clone_snap = dup_or_null(v->clone_snap);
	for (size_t i = 0; i < HF_ARRAY_LEN(to->rf); i++)
		to->rf[i] = dup_or_null(v->rf[i]);
}

static void volume_free(struct hf_serve_volume *v)
{
	free(v->id);
	free(v->replica);
	free(v->name);
	free(v->clone_id);
	free(v->clone_replica);
	free(v->clone_snap);
	for (size_t i = 0; i < HF_ARRAY_LEN(v->rf); i++) {
		if (v->rf[i])
			explicit_bzero(v->rf[i], strlen(v->rf[i]));
		free(v->rf[i]);
	}
	explicit_bzero(v->key, sizeof(v->key));
	memset(v, 0, sizeof(*v));
}

/* The filler thread: makes s->fill_v's replica, then asks for a reload. */
static void *fill_main(void *arg)
{
	struct server *s = arg;
	struct hf_serve_volume *v = &s->fill_v;
	char err[768] = "";
	int rc;

	rc = v->clone_id ? fill_clone(s->pool, v, s->fill_progress, err,
				      sizeof(err))
			 : fill_backup(s->pool, v, s->fill_progress, err,
				       sizeof(err));
	pthread_mutex_lock(&s->fill_mu);
	if (rc) {
		hf_log("replica %s of volume %s not made: %s", v->replica,
		       v->id, err);
		free(s->fail_what);
		free(s->fail_msg);
		s->fail_what = hf_xasprintf("%s/%s", v->id, v->replica);
		s->fail_msg = hf_xstrdup(err);
		s->fail_at = hf_mono_ms();
	}
	s->filling = false;
	pthread_mutex_unlock(&s->fill_mu);
	/* The main thread reloads: the made replica is served (a failed
	 * one is not tried again for FILL_RETRY_MS). */
	kill(getpid(), SIGHUP);
	return NULL;
}

/*
 * Starts making v's replica in the background unless one is being made
 * (it comes next) or it failed a moment ago. *why: why it is not served
 * yet (malloc'ed).
 */
static void fill_start(struct server *s, const struct hf_serve_volume *v,
		       char **why)
{
	char *what = hf_xasprintf("%s/%s", v->id, v->replica);

	pthread_mutex_lock(&s->fill_mu);
	if (s->filling) {
		*why = hf_xstrdup(!strcmp(s->fill_v.id, v->id) &&
					  !strcmp(s->fill_v.replica, v->replica)
				      ? "being made"
				      : "waiting to be made");
	} else if (s->fail_what && !strcmp(s->fail_what, what) &&
		   hf_mono_ms() - s->fail_at < FILL_RETRY_MS) {
		*why = hf_xasprintf("not made: %s", s->fail_msg);
	} else {
		if (s->fill_joinable)
			pthread_join(s->filler, NULL);
		s->fill_joinable = false;
		volume_free(&s->fill_v);
		volume_copy(&s->fill_v, v);
		s->fill_progress[0] = s->fill_progress[1] = 0;
		s->filling = true;
		if (pthread_create(&s->filler, NULL, fill_main, s)) {
			s->filling = false;
			*why = hf_xstrdup("not made: cannot start a thread");
		} else {
			s->fill_joinable = true;
			*why = hf_xstrdup("being made");
		}
	}
	pthread_mutex_unlock(&s->fill_mu);
	free(what);
}

static void held_free(struct held *h)
{
	hf_spool_close(h->spool);
	pthread_mutex_destroy(&h->sp_mu);
	hf_replica_release(&h->r);
	free(h);
}

/* ---- consistency groups (spool.h) -------------------------------------- */

/*
 * h's spool (sp_mu held): the open one; else opened when its file exists
 * or with create; NULL when there is none (or it cannot be opened:
 * logged).
 */
static struct hf_spool *spool_of(struct held *h, bool create)
{
	char err[512];

	if (h->spool || (h->sp_absent && !create))
		return h->spool;
	if (!create) {
		char *path = hf_xasprintf("%s/spool", h->r.dir);
		bool has = access(path, F_OK) == 0;

		free(path);
		if (!has) {
			h->sp_absent = true;
			return NULL;
		}
	}
	h->spool = hf_spool_open(h->r.dir, h->r.fd,
				 (uint64_t)__atomic_load_n(&h->r.size,
							   __ATOMIC_ACQUIRE),
				 err, sizeof(err));
	if (!h->spool)
		hf_log("volume %s replica %s: %s", h->r.volume_id,
		       h->r.replica_id, err);
	else
		h->sp_absent = false;
	return h->spool;
}

/* Applies every record h's spool holds (sp_mu held). 0 or an errno. */
static int spool_drain(struct held *h)
{
	struct hf_spool *sp = spool_of(h, false);
	int e;

	if (!sp || !hf_spool_pending(sp))
		return 0;
	if ((e = hf_spool_apply(sp, 0, true, NULL)))
		hf_log("volume %s replica %s: applying its spool: %s",
		       h->r.volume_id, h->r.replica_id, strerror(-e));
	return -e;
}

struct member {
	struct held *h;
	bool consistent, final;
	int64_t time;
};

/*
 * The cut of members m[0..n): the oldest mark among the members that are
 * in step and still streaming, so every record made before it has
 * reached each of them. A member whose stream ended at a final mark (a
 * detach's drain) holds everything it will send until it attaches again
 * and holds no one back; when every member's ended (a switchover), the
 * cut is past everything. A member without a consistent mark (a copy in
 * progress) is not in step anyway: its spool is applied whole.
 */
static int64_t group_cut(struct member *m, size_t n)
{
	int64_t cut = INT64_MAX;
	bool bound = false, ended = false;

	for (size_t i = 0; i < n; i++) {
		uint64_t seq, t;
		bool final;

		hf_replica_mark_read(&m[i].h->r, &seq, &t, &final);
		m[i].consistent = seq && seq != UINT64_MAX;
		m[i].final = final && m[i].consistent;
		m[i].time = (int64_t)t;
		if (m[i].final)
			ended = true;
		else if (m[i].consistent && m[i].time < cut) {
			cut = m[i].time;
			bound = true;
		}
	}
	return bound || ended ? cut : 0;
}

/* Applies members m[0..n) up to their cut (group_mu held). */
static void group_apply_members(struct member *m, size_t n, bool drop)
{
	int64_t cut = group_cut(m, n);

	for (size_t i = 0; i < n; i++) {
		struct held *h = m[i].h;
		struct hf_spool *sp;
		uint64_t k = 0;
		int e;

		pthread_mutex_lock(&h->sp_mu);
		if ((sp = spool_of(h, false)) && hf_spool_pending(sp)) {
			e = hf_spool_apply(sp, cut, !m[i].consistent, &k);
			if (e)
				hf_log("volume %s replica %s: applying its "
				       "spool: %s", h->r.volume_id,
				       h->r.replica_id, strerror(-e));
		}
		if (drop) {
			/* Promoted: what is after the cut is not kept. */
			if (sp && hf_spool_pending(sp))
				hf_log("volume %s replica %s: %llu bytes "
				       "written after the group's cut (%lld) "
				       "are dropped",
				       h->r.volume_id, h->r.replica_id,
				       (unsigned long long)hf_spool_pending(sp),
				       (long long)cut);
			hf_spool_close(sp);
			h->spool = NULL;
			hf_spool_remove(h->r.dir);
			h->sp_absent = true;
			h->group[0] = 0;
		}
		pthread_mutex_unlock(&h->sp_mu);
	}
}

/* After a mark on a member of group g: the group's cut applied. */
static void group_apply(struct server *s, const char *g)
{
	struct member *m;
	size_t n = 0;

	pthread_mutex_lock(&s->group_mu);
	pthread_mutex_lock(&s->mu);
	m = hf_xcalloc(s->nset ? s->nset : 1, sizeof(*m));
	for (size_t i = 0; i < s->nset; i++)
		if (s->set[i]->standby && !strcmp(s->set[i]->group, g)) {
			s->set[i]->users++; /* not freed meanwhile */
			m[n++].h = s->set[i];
		}
	pthread_mutex_unlock(&s->mu);
	group_apply_members(m, n, false);
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++)
		m[i].h->users--;
	pthread_mutex_unlock(&s->mu);
	pthread_mutex_unlock(&s->group_mu);
	free(m);
}

/*
 * Standbys of set[0..n) that stop being standbys (a failover, a
 * switchover's promotion: promoted[i]), or that are none but kept a
 * spool (a promotion this process did not finish): each group's cut
 * applied, what is after it dropped, the spools removed. Main thread,
 * before the set changes; the members' groups as they were.
 */
static void promote(struct server *s, struct held **set, size_t n,
		    const bool *promoted)
{
	struct member *m = hf_xcalloc(n ? n : 1, sizeof(*m));
	bool *done = hf_xcalloc(n ? n : 1, sizeof(*done));

	pthread_mutex_lock(&s->group_mu);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		char g[HF_VOL_ID_MAX + 1];

		if (done[i] || !promoted[i])
			continue;
		snprintf(g, sizeof(g), "%s", set[i]->group);
		for (size_t j = i; j < n; j++)
			if (!done[j] && promoted[j] &&
			    !strcmp(set[j]->group, g)) {
				done[j] = true;
				m[k++].h = set[j];
			}
		if (g[0])
			hf_log("consistency group %s: %zu standby replicas "
			       "promoted at their common cut", g, k);
		group_apply_members(m, k, true);
	}
	pthread_mutex_unlock(&s->group_mu);
	free(done);
	free(m);
}


/* The replica of the served set with these ids, or NULL. Under mu. */
static struct held *find(struct server *s, const char *vid, const char *rid)
{
	for (size_t i = 0; i < s->nset; i++)
		if (!strcmp(s->set[i]->r.volume_id, vid) &&
		    !strcmp(s->set[i]->r.replica_id, rid))
			return s->set[i];
	return NULL;
}

/*
 * The set c lists: the replicas served now are kept (their key taken
 * from c), the others opened (replica.h: created when missing). With
 * strict, the first that cannot be opened fails the whole (-1, reported
 * in status.json); without, it is left out and named in *msg (the caller
 * frees it). *out gets the new set (the caller owns the array; its
 * members are the kept ones or new ones).
 */
static int build_set(struct server *s, struct hf_serve_config *c, bool strict,
		     struct held ***out, size_t *nout, char **msg)
{
	struct held **set = hf_xcalloc(c->nvols ? c->nvols : 1, sizeof(*set));
	char err[512];
	size_t n = 0, bad = 0;

	*msg = NULL;
	for (size_t i = 0; i < c->nvols; i++) {
		struct hf_serve_volume *v = &c->vols[i];
		struct held *h = find(s, v->id, v->replica);

		if (h && h->r.size >= v->size) {
			if (h->r.size > v->size)
				hf_log("replica %s of volume %s: listed at %lld "
				       "bytes, it is %lld: kept (volumes never "
				       "shrink)", h->r.replica_id,
				       h->r.volume_id, (long long)v->size,
				       (long long)h->r.size);
			set[n++] = h;
			continue;
		}
		if (h) {
			/* The volume grew (volume resize). */
			int e = hf_replica_grow(&h->r, v->size);

			if (e)
				hf_log("replica %s of volume %s: cannot grow "
				       "it to %lld bytes: %s", h->r.replica_id,
				       h->r.volume_id, (long long)v->size,
				       strerror(-e));
			else
				hf_log("replica %s of volume %s: grown to %lld "
				       "bytes", h->r.replica_id,
				       h->r.volume_id, (long long)v->size);
			set[n++] = h;
			continue;
		}
		if (to_fill(s->pool, v)) {
			char *why = NULL;

			fill_start(s, v, &why);
			if (!bad++)
				*msg = hf_xasprintf("replica %s of volume %s "
						    "is not served yet: %s",
						    v->replica, v->id, why);
			free(why);
			continue;
		}
		h = held_new(v);
		if (hf_replica_open(&h->r, s->pool, err, sizeof(err))) {
			if (strict) {
				failed(s, "replica %s of volume %s: %s",
				       h->r.replica_id, h->r.volume_id, err);
				held_free(h);
				for (size_t k = 0; k < n; k++)
					held_free(set[k]);
				free(set);
				return -1;
			}
			hf_log("replica %s of volume %s not served: %s",
			       h->r.replica_id, h->r.volume_id, err);
			if (!bad++)
				*msg = hf_xasprintf("replica %s of volume %s "
						    "is not served: %s",
						    h->r.replica_id,
						    h->r.volume_id, err);
			held_free(h);
			continue;
		}
		set[n++] = h;
	}
	if (bad > 1) {
		char *m = hf_xasprintf("%s (and %zu more replicas)", *msg,
				       bad - 1);

		free(*msg);
		*msg = m;
	}
	*out = set;
	*nout = n;
	return 0;
}

/* At start: serve.json read, every replica opened, or a failed status. */
static int load(struct server *s)
{
	struct hf_serve_config c;
	char err[512], *msg = NULL;
	uint32_t crc = 0;
	int rc = -1;

	if (read_config(s, &c, &crc, err, sizeof(err))) {
		failed(s, "%s", err);
		goto out;
	}
	s->config_crc = crc;
	s->pool = c.pool;
	s->host = c.host;
	c.pool = c.host = NULL;
	s->port = hf_xasprintf("%d", c.port);
	if (c.dr_host) {
		s->dr_host = c.dr_host;
		c.dr_host = NULL;
		s->dr_port = hf_xasprintf("%d", c.dr_port);
		s->dr_ctx = hf_vtls_ctx(true, c.dr_ca, c.dr_cert, c.dr_key, err,
					sizeof(err));
		if (!s->dr_ctx) {
			failed(s, "%s/serve.json: \"dr\": %s", s->dir, err);
			goto out;
		}
	}
	if (build_set(s, &c, true, &s->set, &s->nset, &msg))
		goto out;
	{
		/*
		 * Replicas no standby now that kept a spool: promoted while
		 * this process was not running; together, as one group.
		 */
		bool *up = hf_xcalloc(s->nset ? s->nset : 1, sizeof(*up));
		bool any = false;

		for (size_t i = 0; i < s->nset; i++) {
			pthread_mutex_lock(&s->set[i]->sp_mu);
			if (!s->set[i]->standby && spool_of(s->set[i], false))
				any = up[i] = true;
			pthread_mutex_unlock(&s->set[i]->sp_mu);
		}
		if (any)
			promote(s, s->set, s->nset, up);
		free(up);
	}
	s->generation = 1;
	s->last_msg = msg;
	msg = NULL;
	rc = 0;
out:
	free(msg);
	hf_serve_config_release(&c);
	return rc;
}

static bool in_set(struct held **set, size_t n, const struct held *h)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == h)
			return true;
	return false;
}

/*
 * SIGHUP: serve.json read again. New replicas are opened; the ones no
 * longer listed are dropped from the set (no new HELLO finds them), their
 * connections shut down and waited for, then they are synced and closed.
 * A file that does not parse, or changes the pool or the listen address
 * (which only a restart applies), changes nothing: the status says why.
 */
static void reload(struct server *s)
{
	struct hf_serve_config c;
	struct held **set = NULL, **old = s->set;
	size_t n = 0, nold = s->nset, gone = 0, added = 0;
	char err[512], *msg = NULL;
	uint32_t crc = 0;

	if (read_config(s, &c, &crc, err, sizeof(err))) {
		msg = hf_xasprintf("%s: not applied, the %zu replicas before "
				   "it are still served",
				   err, s->nset);
		goto out;
	}
	if (strcmp(c.pool, s->pool) || strcmp(c.host, s->host) ||
	    c.port != atoi(s->port) || !c.dr_host != !s->dr_host ||
	    (c.dr_host && (strcmp(c.dr_host, s->dr_host) ||
			   c.dr_port != atoi(s->dr_port)))) {
		msg = hf_xasprintf("%s/serve.json: a new \"pool\", \"listen\" "
				   "or \"dr\" takes a restart: not applied, "
				   "the %zu replicas before it are still "
				   "served",
				   s->dir, s->nset);
		goto out;
	}
	build_set(s, &c, false, &set, &n, &msg);
	for (size_t i = 0; i < n; i++)
		added += !in_set(old, nold, set[i]);
	{
		/* Standbys promoted here: their groups' cuts first. */
		bool *up = hf_xcalloc(n ? n : 1, sizeof(*up)), any = false;

		for (size_t i = 0; i < n; i++)
			for (size_t k = 0; k < c.nvols; k++)
				if (in_set(old, nold, set[i]) &&
				    set[i]->standby && !c.vols[k].standby &&
				    !strcmp(c.vols[k].id, set[i]->r.volume_id) &&
				    !strcmp(c.vols[k].replica,
					    set[i]->r.replica_id))
					any = up[i] = true;
		if (any)
			promote(s, set, n, up);
		free(up);
	}
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		/* A kept replica takes the key listed now. */
		for (size_t k = 0; k < c.nvols; k++)
			if (c.vols[k].id && c.vols[k].replica &&
			    !strcmp(c.vols[k].id, set[i]->r.volume_id) &&
			    !strcmp(c.vols[k].replica, set[i]->r.replica_id))
			{
				const char *g = c.vols[k].standby &&
							c.vols[k].group
						    ? c.vols[k].group : "";

				memcpy(set[i]->r.key, c.vols[k].key,
				       sizeof(set[i]->r.key));
				set[i]->standby = c.vols[k].standby;
				if (strcmp(g, set[i]->group)) {
					/*
					 * In a group now, or no more: its
					 * stream connects again, to learn
					 * whether to time its writes.
					 */
					pthread_mutex_lock(&set[i]->sp_mu);
					if (!g[0] && !spool_drain(set[i]) &&
					    set[i]->spool) {
						hf_spool_close(set[i]->spool);
						set[i]->spool = NULL;
						hf_spool_remove(set[i]->r.dir);
						set[i]->sp_absent = true;
					}
					snprintf(set[i]->group,
						 sizeof(set[i]->group), "%s", g);
					pthread_mutex_unlock(&set[i]->sp_mu);
					for (int q = 0; q < MAX_CONNS; q++)
						if (s->conn_held[q] == set[i] &&
						    s->conn_remote[q] &&
						    s->conns[q] >= 0)
							shutdown(s->conns[q],
								 SHUT_RDWR);
				}
			}
	}
	for (size_t i = 0; i < nold; i++) {
		if (in_set(set, n, old[i]))
			continue;
		gone++;
		for (int k = 0; k < MAX_CONNS; k++)
			if (s->conn_held[k] == old[i] && s->conns[k] >= 0)
				shutdown(s->conns[k], SHUT_RDWR);
	}
	s->set = set;
	s->nset = n;
	s->generation++;
	s->config_crc = crc;
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < nold; i++) {
		struct held *h = old[i];
		int users = 0;

		if (in_set(set, n, h))
			continue;
		for (int64_t end = hf_mono_ms() + STOP_WAIT_MS;;) {
			pthread_mutex_lock(&s->mu);
			users = h->users;
			pthread_mutex_unlock(&s->mu);
			if (!users || hf_mono_ms() >= end)
				break;
			hf_sleep_ms(10);
		}
		if (users) {
			hf_log("volume %s replica %s: no longer listed, but %d "
			       "connections are still closing: its files stay "
			       "open", h->r.volume_id, h->r.replica_id, users);
			*HF_VEC_PUSH(&s->stuck) = h;
			continue;
		}
		if (fdatasync(h->r.fd) < 0)
			hf_log("volume %s replica %s: fdatasync: %s",
			       h->r.volume_id, h->r.replica_id,
			       strerror(errno));
		hf_log("volume %s replica %s: no longer served",
		       h->r.volume_id, h->r.replica_id);
		held_free(h);
	}
	free(old);
	hf_log("serve.json applied (generation %llu): %zu replicas, %zu new, "
	       "%zu dropped", (unsigned long long)s->generation, s->nset,
	       added, gone);
out:
	if (msg && !set)
		hf_log("%s", msg);
	publish(s, "ready", msg);
	free(s->last_msg);
	s->last_msg = msg;
	hf_serve_config_release(&c);
}

static int listen_at(struct server *s, const char *host, const char *port,
		     int *lfd, int *bound)
{
	struct addrinfo hints, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &ai)))
		return failed(s, "listen address %s: %s", host,
			      gai_strerror(rc));
	*lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*lfd < 0 ||
	    setsockopt(*lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(*lfd, ai->ai_addr, ai->ai_addrlen) || listen(*lfd, 64) ||
	    getsockname(*lfd, (struct sockaddr *)&ss, &sl)) {
		rc = failed(s, "cannot listen on %s port %s: %s", host, port,
			    strerror(errno));
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	*bound = ntohs(ss.ss_family == AF_INET6
			       ? ((struct sockaddr_in6 *)&ss)->sin6_port
			       : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static int listen_on(struct server *s)
{
	if (listen_at(s, s->host, s->port, &s->lfd, &s->bound_port))
		return -1;
	snprintf(s->address, sizeof(s->address), "%s", s->host);
	return s->dr_host ? listen_at(s, s->dr_host, s->dr_port, &s->dr_lfd,
				      &s->dr_bound_port)
			  : 0;
}

/* ---- a connection ----------------------------------------------------- */

static int send_error(int fd, const struct hf_volw_frame *req, int errnum,
		      const char *fmt, ...) HF_PRINTF(4, 5);
static int send_error(int fd, const struct hf_volw_frame *req, int errnum,
		      const char *fmt, ...)
{
	struct hf_volw_frame a;
	char text[HF_VOLW_TEXT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	hf_volc_error(&a, req ? req->id : 0, req ? req->epoch : 0, errnum,
		      text);
	return hf_volc_send(fd, &a);
}

static int send_fenced(int fd, const struct hf_volw_frame *req, uint64_t e)
{
	struct hf_volw_frame a;

	memset(&a, 0, sizeof(a));
	a.type = HF_VOLW_FENCED;
	a.id = req->id;
	a.epoch = e;
	a.u.fenced_epoch = e;
	return hf_volc_send(fd, &a);
}

/*
 * HELLO: the replica, the ticket, the epoch. Returns the replica, bound
 * to c until it closes, or NULL once the refusal was sent (the connection
 * then closes).
 */
static struct hf_replica *hello(struct server *s, struct conn *c,
				const struct hf_volw_frame *f)
{
	const struct hf_volw_hello *h = &f->u.hello;
	struct hf_replica *r = NULL;
	uint8_t t[HF_VOL_TICKET_LEN], key[HF_VOL_KEY_LEN];
	struct hf_volw_frame a;
	struct held *held;
	uint64_t cur;
	int fd = c->fd, rc;
	bool standby = false;

	pthread_mutex_lock(&s->mu);
	held = find(s, h->volume_id, h->replica_id);
	if (held) {
		/* Bound before the lock goes: a reload sees it. */
		held->users++;
		s->conn_held[c->slot] = held;
		r = &held->r;
		memcpy(key, r->key, sizeof(key));
		standby = held->standby;
	}
	pthread_mutex_unlock(&s->mu);
	if (!r) {
		send_error(fd, f, ENOENT, "no replica %s of volume %s here",
			   h->replica_id, h->volume_id);
		return NULL;
	}
	if (c->remote && !standby) {
		hf_log("volume %s replica %s: HELLO over the DR listener from "
		       "%s (node %s): refused, it is no standby",
		       r->volume_id, r->replica_id, c->peer, h->node_id);
		send_error(fd, f, EACCES,
			   "replica %s of volume %s is no standby: another "
			   "site may write standbys only",
			   h->replica_id, h->volume_id);
		return NULL;
	}
	if (h->role != HF_VOLW_ROLE_PRIMARY) {
		send_error(fd, f, EOPNOTSUPP,
			   "only primaries connect yet (no resync)");
		return NULL;
	}
	if (!c->remote) {
		/* This site's primary: not before a spool is applied. */
		bool pending;

		struct hf_spool *sp;

		pthread_mutex_lock(&held->sp_mu);
		sp = spool_of(held, false);
		pending = held->group[0] || (sp && hf_spool_pending(sp));
		pthread_mutex_unlock(&held->sp_mu);
		if (pending) {
			send_error(fd, f, EAGAIN,
				   "replica %s of volume %s is a DR standby "
				   "whose spool is not applied yet",
				   h->replica_id, h->volume_id);
			return NULL;
		}
	}
	hf_vol_ticket(key, h->volume_id, f->epoch, h->node_id, t);
	explicit_bzero(key, sizeof(key));
	if (!hf_vol_ticket_equal(t, h->proof)) {
		hf_log("volume %s replica %s: HELLO from node %s at epoch "
		       "%llu with a ticket that does not match: refused",
		       r->volume_id, r->replica_id, h->node_id,
		       (unsigned long long)f->epoch);
		send_error(fd, f, EACCES,
			   "the ticket for node %s at epoch %llu does not "
			   "match volume %s's key",
			   h->node_id, (unsigned long long)f->epoch,
			   h->volume_id);
		return NULL;
	}
	cur = hf_replica_epoch(r);
	if (f->epoch < cur) {
		hf_log("volume %s replica %s: HELLO from node %s at epoch "
		       "%llu, older than %llu: fenced",
		       r->volume_id, r->replica_id, h->node_id,
		       (unsigned long long)f->epoch, (unsigned long long)cur);
		send_fenced(fd, f, cur);
		return NULL;
	}
	if ((rc = hf_replica_raise_epoch(r, f->epoch))) {
		send_error(fd, f, -rc, "cannot record epoch %llu: %s",
			   (unsigned long long)f->epoch, strerror(-rc));
		return NULL;
	}
	memset(&a, 0, sizeof(a));
	a.type = HF_VOLW_HELLO_OK;
	a.id = f->id;
	a.epoch = f->epoch;
	if (c->remote) {
		pthread_mutex_lock(&held->sp_mu);
		if (held->group[0])
			a.flags = HF_VOLW_F_SPOOLS; /* timed writes, please */
		pthread_mutex_unlock(&held->sp_mu);
	}
	pthread_mutex_lock(&r->mu);
	a.u.hello_ok.size = r->meta.size;
	a.u.hello_ok.epoch = r->meta.epoch;
	a.u.hello_ok.replica.flags = r->meta.flags;
	a.u.hello_ok.replica.gens = r->meta.gens;
	pthread_mutex_unlock(&r->mu);
	if (hf_volc_send(fd, &a))
		return NULL;
	hf_log("volume %s replica %s: primary on node %s at epoch %llu",
	       r->volume_id, r->replica_id, h->node_id,
	       (unsigned long long)f->epoch);
	return r;
}

static bool in_volume(const struct hf_replica *r, uint64_t off, uint64_t len)
{
	uint64_t size = (uint64_t)__atomic_load_n(&r->size, __ATOMIC_ACQUIRE);

	return off <= size && len <= size - off;
}

static int full_pwrite(int fd, const uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static int full_pread(int fd, uint8_t *p, size_t n, off_t off)
{
	while (n) {
		ssize_t got = pread(fd, p, n, off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno;
		if (got == 0) { /* sparse tail: zeros */
			memset(p, 0, n);
			return 0;
		}
		p += got;
		n -= (size_t)got;
		off += got;
	}
	return 0;
}

/*
 * SUMS: the digest of each unit-sized piece of [off, off + len) of r's
 * data into a new *out. A stretch of whole units that is all hole is not
 * read: each reads as zeros. buf holds HF_VOL_DATA_MAX bytes. Returns 0
 * or an errno.
 */
static int sums(struct hf_replica *r, uint64_t off, uint64_t len,
		uint32_t unit, uint8_t *buf, uint8_t **out)
{
	uint64_t units = (len + unit - 1) / unit, u = 0;
	uint8_t *p = hf_xmalloc(units * HF_VOLW_SUM_LEN);
	uint8_t zero[HF_VOLW_SUM_LEN];

	memset(buf, 0, unit);
	hf_vol_sum(buf, unit, zero);
	while (u < units) {
		uint64_t at = off + u * unit, hole_end;
		off_t d = lseek(r->fd, (off_t)at, SEEK_DATA);
		size_t n;
		int e;

		if (d < 0 && errno != ENXIO) {
			free(p);
			return errno;
		}
		/* Whole units of hole before the next data, or the end. */
		hole_end = d < 0 ? off + len : (uint64_t)d;
		for (; u < units && off + (u + 1) * unit <= hole_end &&
		       off + (u + 1) * unit <= off + len;
		     u++)
			memcpy(p + u * HF_VOLW_SUM_LEN, zero, HF_VOLW_SUM_LEN);
		if (u == units)
			break;
		/* Then up to a buffer of units, read at once. */
		at = off + u * unit;
		n = (size_t)(off + len - at < HF_VOL_DATA_MAX ? off + len - at
							     : HF_VOL_DATA_MAX);
		if ((e = full_pread(r->fd, buf, n, (off_t)at))) {
			free(p);
			return e;
		}
		for (size_t k = 0; k < n; k += unit, u++)
			hf_vol_sum(buf + k, n - k < unit ? n - k : unit,
				   p + u * HF_VOLW_SUM_LEN);
	}
	*out = p;
	return 0;
}


/*
 * SNAP: a snapshot taken (after every earlier write of the connection:
 * the primary sends it once they were acknowledged and flushed), deleted
 * or restored. Returns 0 or an errno.
 */
static int snap_request(struct hf_replica *r, struct hf_snaps *snaps,
			const struct hf_volw_snap *q)
{
	int64_t bytes = 0;
	int e;

	if (!snaps)
		return EIO;
	switch (q->op) {
	case HF_VOLW_SNAP_TAKE:
		if (q->size > (uint64_t)__atomic_load_n(&r->size,
							 __ATOMIC_ACQUIRE))
			return EINVAL;
		if ((e = fdatasync(r->fd) < 0 ? errno : 0) ||
		    (e = hf_snaps_create(snaps, q->id, (int64_t)q->size)))
			break;
		hf_log("volume %s replica %s: snapshot %s taken",
		       r->volume_id, r->replica_id, q->id);
		break;
	case HF_VOLW_SNAP_DELETE:
		if (!(e = hf_snaps_delete(snaps, q->id)))
			hf_log("volume %s replica %s: snapshot %s deleted",
			       r->volume_id, r->replica_id, q->id);
		break;
	default:
		if (!(e = hf_snaps_restore(snaps, q->id, &bytes)))
			hf_log("volume %s replica %s: restored to snapshot "
			       "%s (%lld bytes written)",
			       r->volume_id, r->replica_id, q->id,
			       (long long)bytes);
		break;
	}
	return e;
}

/* One request after HELLO; returns false when the connection must close. */
/*
 * An AL frame (the primary's activity log, meta.h) into the replica's
 * `al` file, durable before AL_OK. ESTALE: the epoch moved meanwhile.
 */
static int store_al(struct hf_replica *r, const struct hf_volw_frame *f)
{
	struct hf_vol_al *a = hf_xcalloc(1, sizeof(*a));
	int rc;

	a->epoch = f->epoch;
	a->nmembers = f->u.al.nmembers;
	memcpy(a->members, f->u.al.members,
	       sizeof(a->members[0]) * a->nmembers);
	a->count = f->u.al.count;
	for (uint32_t i = 0; i < a->count; i++)
		a->extents[i] = hf_volw_al_extent(f, i);
	rc = hf_replica_store_al(r, a);
	free(a);
	if (rc && rc != -ESTALE)
		hf_log("volume %s replica %s: activity log: %s", r->volume_id,
		       r->replica_id, strerror(-rc));
	return -rc;
}

/*
 * One frame on replica r. stream: another site's DR stream, whose writes
 * start their writeback at once (sync_file_range), so that a MARK's
 * fdatasync finds little left to write and holds the stream up briefly.
 */
static bool request(int fd, struct held *h, struct hf_snaps **snapsp,
		    const struct hf_volw_frame *f, uint8_t *rbuf, bool stream,
		    bool *marked)
{
	struct hf_replica *r = &h->r;
	struct hf_snaps *snaps;
	struct hf_volw_frame a;
	uint64_t cur = hf_replica_epoch(r);
	uint8_t *sbuf = NULL;
	bool ok;
	int e = 0;

	memset(&a, 0, sizeof(a));
	a.id = f->id;
	a.epoch = f->epoch;
	switch (f->type) {
	case HF_VOLW_PING:
		a.type = HF_VOLW_PONG;
		return hf_volc_send(fd, &a) == 0;
	case HF_VOLW_BYE:
		return false;
	case HF_VOLW_WRITE:
	case HF_VOLW_FLUSH:
	case HF_VOLW_TRIM:
	case HF_VOLW_READ:
	case HF_VOLW_SNAP:
	case HF_VOLW_AL:
	case HF_VOLW_MARK:
	case HF_VOLW_SUMS:
		break;
	default:
		send_error(fd, f, EOPNOTSUPP, "%s is not served yet",
			   hf_volw_type_name(f->type));
		return false;
	}
	if (f->epoch != cur) {
		hf_log("volume %s replica %s: %s at epoch %llu, not %llu: "
		       "fenced", r->volume_id, r->replica_id,
		       hf_volw_type_name(f->type),
		       (unsigned long long)f->epoch, (unsigned long long)cur);
		send_fenced(fd, f, cur);
		return false;
	}
	/*
	 * The snapshots as their files say when this connection first
	 * writes (not at HELLO: a local attach's fencing HELLO must not
	 * touch the files it is about to use).
	 */
	if (!*snapsp && f->type != HF_VOLW_FLUSH && f->type != HF_VOLW_READ &&
	    f->type != HF_VOLW_AL && f->type != HF_VOLW_MARK &&
	    f->type != HF_VOLW_SUMS) {
		char err[HF_VOL_ERR_MAX];

		if (!(*snapsp = hf_snaps_open(r->dir, r->fd, err,
					      sizeof(err)))) {
			hf_log("volume %s replica %s: %s", r->volume_id,
			       r->replica_id, err);
			send_error(fd, f, EIO, "%s", err);
			return false;
		}
	}
	snaps = *snapsp;
	if (stream && (f->type == HF_VOLW_WRITE || f->type == HF_VOLW_TRIM ||
		       f->type == HF_VOLW_READ || f->type == HF_VOLW_SNAP)) {
		/*
		 * A group member's stream: its timed writes are spooled; what
		 * else writes or reads the data (a copy's chunks) comes after
		 * every record spooled, which are applied first. (Digests are
		 * of the data as applied: a copy compares them and sends what
		 * differs, the records still spooled then included.)
		 */
		pthread_mutex_lock(&h->sp_mu);
		if (h->group[0] && (f->flags & HF_VOLW_F_TIMED)) {
			struct hf_spool *sp = spool_of(h, true);
			bool trim = f->type == HF_VOLW_TRIM;
			uint64_t len = trim ? f->u.range.len : f->data_len;

			if (!sp)
				e = EIO;
			else if (!in_volume(r, f->off, len))
				e = trim ? EINVAL : ENOSPC;
			else {
				hf_spool_grow(sp, (uint64_t)__atomic_load_n(
						      &r->size, __ATOMIC_ACQUIRE));
				e = -hf_spool_add(sp, trim, f->off, len,
						  (int64_t)f->time_ns, f->data);
			}
			pthread_mutex_unlock(&h->sp_mu);
			memset(&a, 0, sizeof(a));
			a.id = f->id;
			a.epoch = f->epoch;
			a.type = trim ? HF_VOLW_TRIM_OK : HF_VOLW_WRITE_OK;
			if (e) {
				send_error(fd, f, e, "%s at %llu: spooling: %s",
					   hf_volw_type_name(f->type),
					   (unsigned long long)f->off,
					   strerror(e));
				return false;
			}
			return hf_volc_send(fd, &a) == 0;
		}
		e = spool_drain(h);
		pthread_mutex_unlock(&h->sp_mu);
		if (e) {
			send_error(fd, f, e, "the spool cannot be applied: %s",
				   strerror(e));
			return false;
		}
	}
	switch (f->type) {
	case HF_VOLW_WRITE:
		if (!in_volume(r, f->off, f->data_len))
			e = ENOSPC;
		else if (!(e = hf_snaps_before_write(snaps, f->off,
						     f->data_len)))
			e = full_pwrite(r->fd, f->data, f->data_len,
					(off_t)f->off);
		if (!e && stream)
			sync_file_range(r->fd, (off_t)f->off,
					(off_t)f->data_len,
					SYNC_FILE_RANGE_WRITE);
		a.type = HF_VOLW_WRITE_OK;
		break;
	case HF_VOLW_FLUSH:
		e = fdatasync(r->fd) < 0 ? errno : 0;
		a.type = HF_VOLW_FLUSH_OK;
		break;
	case HF_VOLW_TRIM:
		if (!in_volume(r, f->off, f->u.range.len))
			e = EINVAL;
		else if ((e = hf_snaps_before_write(snaps, f->off,
						    f->u.range.len)))
			;
		else if (fallocate(r->fd,
				   FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				   (off_t)f->off, (off_t)f->u.range.len) < 0)
			e = errno;
		a.type = HF_VOLW_TRIM_OK;
		break;
	case HF_VOLW_SNAP:
		e = snap_request(r, snaps, &f->u.snap);
		a.type = HF_VOLW_SNAP_OK;
		break;
	case HF_VOLW_MARK:
		if (f->u.mark.seq) {
			/* The spooled records durable before the mark. */
			pthread_mutex_lock(&h->sp_mu);
			if (h->spool)
				e = -hf_spool_sync(h->spool);
			*marked = h->group[0] != 0;
			pthread_mutex_unlock(&h->sp_mu);
			if (!e)
				e = -hf_replica_mark_put(
				    r, f->u.mark.seq, f->u.mark.time_ns,
				    f->flags & HF_VOLW_F_FINAL ? HF_MARK_FINAL
							       : 0);
		}
		if (!e)
			e = -hf_replica_mark_get(r, &a.u.mark.seq,
						 &a.u.mark.time_ns);
		a.type = HF_VOLW_MARK_OK;
		break;
	case HF_VOLW_SUMS:
		if (!in_volume(r, f->off, f->u.sums.len))
			e = EINVAL;
		else
			e = sums(r, f->off, f->u.sums.len, f->u.sums.unit, rbuf,
				 &sbuf);
		a.type = HF_VOLW_SUMS_DATA;
		a.off = f->off;
		a.u.sums = f->u.sums;
		a.data = sbuf;
		a.data_len = (uint32_t)((f->u.sums.len + f->u.sums.unit - 1) /
					f->u.sums.unit * HF_VOLW_SUM_LEN);
		break;
	case HF_VOLW_AL:
		e = store_al(r, f);
		a.type = HF_VOLW_AL_OK;
		if (e == ESTALE) {
			send_fenced(fd, f, hf_replica_epoch(r));
			return false;
		}
		break;
	default: /* READ */
		if (!in_volume(r, f->off, f->u.range.len))
			e = EINVAL;
		else
			e = full_pread(r->fd, rbuf, f->u.range.len,
				       (off_t)f->off);
		a.type = HF_VOLW_READ_DATA;
		a.off = f->off;
		a.data = rbuf;
		a.data_len = (uint32_t)f->u.range.len;
		break;
	}
	if (e) {
		hf_log("volume %s replica %s: %s at %llu: %s", r->volume_id,
		       r->replica_id, hf_volw_type_name(f->type),
		       (unsigned long long)f->off, strerror(e));
		send_error(fd, f, e, "%s at %llu: %s",
			   hf_volw_type_name(f->type),
			   (unsigned long long)f->off, strerror(e));
		free(sbuf);
		return false;
	}
	ok = hf_volc_send(fd, &a) == 0;
	free(sbuf);
	return ok;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	struct hf_volc_rx rx;
	struct hf_volw_frame f;
	struct hf_replica *r = NULL;
	struct hf_snaps *snaps = NULL;
	char err[HF_VOL_ERR_MAX];
	uint8_t *rbuf = NULL;
	int rc;

	if (c->remote) {
		int pfd = hf_vtls_wrap(s->dr_ctx, true, c->fd, 5000, c->peer,
				       sizeof(c->peer), err, sizeof(err));

		pthread_mutex_lock(&s->mu);
		c->fd = s->conns[c->slot] = pfd;
		pthread_mutex_unlock(&s->mu);
		if (pfd < 0) {
			hf_log("a connection to the DR listener: %s", err);
			goto end;
		}
		hf_log("a DR connection from %s", c->peer[0] ? c->peer : "?");
	}
	hf_volc_rx_init(&rx);
	for (;;) {
		rc = hf_volc_recv(c->fd, &rx, &f, -1, err);
		if (rc == HF_EPARSE || rc == HF_ETOOBIG) {
			hf_log("a connection sent a bad frame: %s", err);
			send_error(c->fd, NULL, EPROTO, "%s", err);
			break;
		}
		if (rc)
			break;
		if (!r) {
			if (f.type != HF_VOLW_HELLO) {
				send_error(c->fd, &f, EPROTO,
					   "HELLO must come first, not %s",
					   hf_volw_type_name(f.type));
				break;
			}
			if (!(r = hello(s, c, &f)))
				break;
			rbuf = hf_xmalloc(HF_VOL_DATA_MAX);
			continue;
		}
		{
			struct held *h = (struct held *)((char *)r -
							 offsetof(struct held, r));
			bool marked = false;

			if (!request(c->fd, h, &snaps, &f, rbuf, c->remote,
				     &marked))
				break;
			if (marked) {
				char g[HF_VOL_ID_MAX + 1];

				pthread_mutex_lock(&h->sp_mu);
				snprintf(g, sizeof(g), "%s", h->group);
				pthread_mutex_unlock(&h->sp_mu);
				if (g[0])
					group_apply(s, g);
			}
		}
	}
	hf_volc_rx_release(&rx);
end:
	pthread_mutex_lock(&s->mu);
	if (s->conn_held[c->slot])
		s->conn_held[c->slot]->users--;
	s->conn_held[c->slot] = NULL;
	s->conns[c->slot] = -1;
	s->nconns--;
	pthread_mutex_unlock(&s->mu);
	if (c->fd >= 0)
		hf_volc_close(c->fd);
	hf_snaps_close(snaps);
	free(rbuf);
	free(c);
	return NULL;
}

struct acceptor {
	struct server *s;
	int lfd;
	bool remote;
	pthread_t thread;
	bool on;
};

static void *accept_main(void *arg)
{
	struct acceptor *ac = arg;
	struct server *s = ac->s;

	for (;;) {
		int fd = accept4(ac->lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;
		struct conn *c;
		pthread_attr_t at;
		pthread_t t;
		int slot = -1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE) {
				if (errno == EMFILE || errno == ENFILE)
					hf_sleep_ms(100);
				continue;
			}
			break; /* shut down */
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < MAX_CONNS && slot < 0 && !s->stopping; i++)
			if (s->conns[i] < 0)
				slot = i;
		if (slot >= 0) {
			s->conns[slot] = fd;
			s->conn_remote[slot] = ac->remote;
			s->nconns++;
		}
		pthread_mutex_unlock(&s->mu);
		if (slot < 0) {
			close(fd);
			continue;
		}
		c = hf_xcalloc(1, sizeof(*c));
		*c = (struct conn){s, fd, slot, ac->remote, ""};
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &at, conn_main, c)) {
			pthread_mutex_lock(&s->mu);
			s->conns[slot] = -1;
			s->nconns--;
			pthread_mutex_unlock(&s->mu);
			close(fd);
			free(c);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

/* Stops accepting, closes every connection and waits (bounded) for them. */
static int stop(struct server *s, struct acceptor *ac)
{
	int left;

	for (int i = 0; i < 2; i++)
		if (ac[i].on) {
			shutdown(ac[i].lfd, SHUT_RDWR);
			pthread_join(ac[i].thread, NULL);
		}
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i] >= 0)
			shutdown(s->conns[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	for (int64_t end = hf_mono_ms() + STOP_WAIT_MS;;) {
		pthread_mutex_lock(&s->mu);
		left = s->nconns;
		pthread_mutex_unlock(&s->mu);
		if (!left || hf_mono_ms() >= end)
			break;
		hf_sleep_ms(10);
	}
	if (left)
		hf_log("%d connections still closing", left);
	return left;
}

int hf_volume_serve_main(const char *dir)
{
	struct server s;
	sigset_t mask;
	struct acceptor ac[2];
	int lockfd = -1, code = HF_VOLUME_EXIT_FAIL, sig, bad = 0, left = 0;
	char *lock = NULL;
	long holder = 0;

	/*
	 * Blocked before the lock is taken: whoever sees the lock held may
	 * send SIGHUP, whose default action would end the process.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&s, 0, sizeof(s));
	s.lfd = s.dr_lfd = -1;
	for (int i = 0; i < MAX_CONNS; i++)
		s.conns[i] = -1;
	pthread_mutex_init(&s.mu, NULL);
	pthread_mutex_init(&s.group_mu, NULL);
	pthread_mutex_init(&s.fill_mu, NULL);
	hf_log_init("holdfast-volume", true);
	s.dir = realpath(dir, NULL);
	if (!s.dir) {
		fprintf(stderr, "holdfast-volume: %s: %s\n", dir,
			strerror(errno));
		return HF_VOLUME_EXIT_USAGE;
	}
	lock = hf_xasprintf("%s/serve.lock", s.dir);
	switch (hf_lock_file(lock, &lockfd, &holder)) {
	case 0:
		break;
	case HF_EUNAVAIL:
		fprintf(stderr, "holdfast-volume: %s is served by process "
				"%ld\n", s.dir, holder);
		code = HF_VOLUME_EXIT_LOCKED;
		goto out;
	default:
		fprintf(stderr, "holdfast-volume: %s: %s\n", lock,
			strerror(errno));
		goto out;
	}
	if (load(&s) || listen_on(&s))
		goto out;
	memset(ac, 0, sizeof(ac));
	ac[0].s = ac[1].s = &s;
	ac[0].lfd = s.lfd;
	ac[1].lfd = s.dr_lfd;
	ac[1].remote = true;
	for (int i = 0; i < 2; i++) {
		if (ac[i].lfd < 0)
			continue;
		if (pthread_create(&ac[i].thread, NULL, accept_main, &ac[i])) {
			failed(&s, "cannot start the accepting thread");
			stop(&s, ac);
			goto out;
		}
		ac[i].on = true;
	}
	publish(&s, "ready", s.last_msg);
	hf_log("serving %zu replicas of pool %s on %s port %d", s.nset,
	       s.pool, s.address, s.bound_port);
	for (;;) {
		/* While a replica is being made, its progress each second. */
		struct timespec tick = {1, 0};
		bool filling;

		pthread_mutex_lock(&s.fill_mu);
		filling = s.filling;
		pthread_mutex_unlock(&s.fill_mu);
		/* With a DR listener, the standbys' marks each second too. */
		sig = filling || s.dr_lfd >= 0 ? sigtimedwait(&mask, NULL, &tick)
					       : sigwaitinfo(&mask, NULL);
		if (sig < 0 && errno == EAGAIN)
			publish(&s, "ready", s.last_msg);
		else if (sig == SIGHUP)
			reload(&s);
		else if (sig >= 0 || errno != EINTR)
			break;
	}
	hf_log("stopping on signal %d", sig);
	left = stop(&s, ac);
	for (size_t i = 0; i < s.nset; i++)
		if (fdatasync(s.set[i]->r.fd) < 0) {
			hf_log("volume %s replica %s: fdatasync: %s",
			       s.set[i]->r.volume_id, s.set[i]->r.replica_id,
			       strerror(errno));
			bad++;
		}
	if (bad)
		failed(&s, "%d replicas could not be synced", bad);
	else {
		publish(&s, "stopped", NULL);
		code = HF_VOLUME_EXIT_OK;
	}
out:
	free(lock);
	if (left) /* a connection still uses them: the exit frees them */
		goto out_exit;
	pthread_mutex_lock(&s.fill_mu);
	left = s.filling; /* a replica is being made: its journal resumes it */
	pthread_mutex_unlock(&s.fill_mu);
	if (left)
		goto out_exit;
	if (s.fill_joinable)
		pthread_join(s.filler, NULL);
	volume_free(&s.fill_v);
	free(s.fail_what);
	free(s.fail_msg);
	free(s.last_msg);
	for (size_t i = 0; i < s.nset; i++)
		held_free(s.set[i]);
	free(s.set);
	for (size_t i = 0; i < s.stuck.len; i++)
		held_free(s.stuck.items[i]);
	HF_VEC_FREE(&s.stuck);
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.dr_lfd >= 0)
		close(s.dr_lfd);
	if (s.dr_ctx)
		SSL_CTX_free(s.dr_ctx);
	free(s.dr_host);
	free(s.dr_port);
	if (lockfd >= 0)
		close(lockfd);
	free(s.pool);
	free(s.host);
	free(s.port);
	free(s.dir);
out_exit:
	return code;
}
