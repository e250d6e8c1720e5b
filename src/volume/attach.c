/*
 * attach.c - holdfast-volume attach DIR: a volume's local replica served
 * through FUSE as one file, with a loop device over it (attach.h).
 */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <jansson.h>
#include <limits.h>
#include <linux/loop.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/util.h"
#include "volume/attach.h"
#include "volume/bitmap.h"
#include "volume/status.h"
#include "volume/remote.h"
#include "volume/replica.h"
#include "volume/crypt.h"
#include "volume/ship.h"
#include "volume/snap.h"
#include "volume/ticket.h"

#define VOL_INO 2
#define BLOCK 4096
#define MIN_SIZE (64LL << 20)
#define DETACH_WAIT_MS 5000

/* Buffers of HF_VOL_DATA_MAX bytes for the FUSE threads' remote I/O. */
struct bufpool {
	pthread_mutex_t mu;
	uint8_t *free[16];
	int nfree;
};

/*
 * What a replica missed while out of the in-sync set (docs/design/
 * volumes.md §5.3): the regions written while no slot of it took the
 * write. Kept for each replica this process knew in sync (connected at
 * start without "resync", or resynced since), with that replica's data
 * generation (its HELLO_OK's gen.current): a returning replica of the
 * same generation is sent the regions set, nothing else; one without an
 * entry, or of another generation (made again empty), is copied whole.
 */
struct missed {
	char *replica;
	struct hf_vol_gen gen;
	struct hf_vol_bitmap bm;
	bool broken;             /* a range could not be set: copy it all */
	int fd;                  /* DIR/missed-<replica> (below), or -1 */
	bool paged;              /* the file has every page (else a header) */
	bool unsynced;           /* pages written since its last fdatasync */
};

/* One extent of the activity log. */
struct al_ext {
	uint64_t ext;     /* offset / HF_VOL_EXTENT_SIZE */
	int busy;         /* writes to it under way */
	uint64_t wseq;    /* v->fstart when its last write ended */
	int64_t last_ms;  /* when that was */
	bool stored;      /* a record holding it is on every replica */
};

struct vol {
	char *dir;
	char *volume, *id, *replica; /* replica NULL: storage-less */
	char *node;              /* this node's id (the ticket names it) */
	int64_t epoch, size;
	bool format;
	/*
	 * What format makes: "fs": "xfs" an XFS, "ext4" an ext4; absent,
	 * an XFS when this process lacks CAP_SYS_RESOURCE (ext4's online
	 * resize needs it, XFS's does not) and the volume is 320 MiB or
	 * more (mkfs.xfs's least), else an ext4.
	 */
	int fs_asked; /* 0 absent, 1 ext4, 2 xfs */
	unsigned uid, gid;
	uint8_t ticket[HF_VOL_TICKET_LEN];
	bool have_ticket;        /* node and ticket known: remotes may come */
	/*
	 * secure: every block is encrypted on its way to the replicas and
	 * decrypted on its way back (crypt.h); replicas and copies between
	 * them only ever see ciphertext.
	 */
	bool secure;
	struct hf_vol_crypt crypt;
	/*
	 * Growing (volume resize): attach.json's size grew to grow_to; the
	 * main thread grows every replica, the FUSE file and the loop
	 * device, then the mounted ext4 (fs_grow: waiting for a mount).
	 * size itself is read by the FUSE threads: changed atomically.
	 */
	int64_t grow_to;
	bool fs_grow;
	char *grow_msg;          /* why growing waits, for status.json */
	struct hf_remote *remotes;
	size_t nremotes;
	/*
	 * dropped[i]: remote i is out of the in-sync set (the server said
	 * so): no longer written or read. Guarded by isr_mu; isr_cv is
	 * broadcast when one is dropped.
	 */
	bool *dropped;
	/*
	 * resyncing[i]: remote i is being copied to (it was out of date):
	 * written like the others, but its failure holds no write, and it
	 * is in sync only once its copy is done (resynced[i]). failed_rs[i]:
	 * its copy failed (reported in isr_drop until the server agrees).
	 * All guarded by isr_mu; the arrays hold HF_VOL_MAX_PEERS.
	 */
	bool *resyncing, *resynced, *failed_rs;
	int64_t *rs_done;        /* bytes copied so far, of rs_total */
	int64_t *rs_total;       /* bytes a copy sets out to send */
	int64_t rs_sent;         /* bytes sent by every copy (WRITE frames) */
	int64_t rs_planned;      /* sum of every copy's rs_total */
	/*
	 * The activity log (meta.h; al_*() below): the extents this
	 * process may have written and not yet flushed on every in-sync
	 * replica, each stored in a record on all of them before its first
	 * write. al_mu guards the set; isr_mu may be taken under it
	 * (al_record), never the other way round, and no other lock is.
	 * al_wmu orders the records' writes (taken before al_mu).
	 */
	pthread_mutex_t al_mu, al_wmu;
	struct al_ext *al;       /* sorted by extent, nal of HF_VOL_AL_MAX */
	size_t nal;
	bool al_changed;         /* extents left since the last record */
	int al_fd;               /* the local replica's `al` file, or -1 */
	uint64_t al_seq;         /* its last record's seq (al_wmu) */
	struct hf_vol_gen local_gen; /* the local replica's (fence_local) */
	/* Flushes started, and the highest one done everywhere (al_mu). */
	uint64_t fstart, fdone;
	/* Replicas' missed regions; guarded by miss_mu (after isr_mu). */
	struct missed missed[HF_VOL_MAX_PEERS];
	size_t nmissed;
	pthread_mutex_t miss_mu;
	/* Bytes written to the volume, and to remotes (atomic). */
	int64_t written, replicated;
	/* Writes refused because the local replica's file system is full. */
	int64_t nospace;
	/* Writes answered per latency bucket, and their sum in us (atomic). */
	int64_t write_us[HF_VOL_LAT_BUCKETS + 1];
	int64_t write_us_sum;
	/*
	 * Writes hold it shared; adding a remote holds it exclusively, so
	 * no write is half-way when a copy starts (each either reached the
	 * new remote or finished before the copy reads its region).
	 */
	pthread_rwlock_t add_lock;
	/* A copy and a write of one region never interleave. */
	pthread_mutex_t stripes[64]; /* RS_STRIPES */
	int resyncs;             /* copies running (atomic) */
	pthread_t rs_threads[HF_VOL_MAX_PEERS];
	bool rs_thread_on[HF_VOL_MAX_PEERS];
	bool stopping;           /* detaching: copies and keepalives end */
	pthread_t ka_thread;     /* keepalive(): PINGs idle in-sync remotes */
	bool ka_on;
	/*
	 * How long a write whose remote failed waits for the server to take
	 * that replica out of the in-sync set (the agent relays the request
	 * and hands back attach.json without it, with SIGHUP) before it
	 * fails with EIO; 0: at once.
	 */
	int64_t isr_wait_ms;
	/* Bytes per second a copy reads and sends at most; 0: no limit. */
	int64_t resync_rate;
	/*
	 * The one deadline of the waits for a drop of one failure: set
	 * isr_wait_ms ahead by the first write that waits (isr_until_set),
	 * cleared when the last waiter is done (isr_waiters), so a failure
	 * later gets a wait of its own; brought to now for good by a detach
	 * (isr_final), whose writes need not wait for a server that moved on.
	 */
	struct timespec isr_until;
	bool isr_until_set, isr_final;
	size_t isr_waiters;
	pthread_mutex_t isr_mu;
	pthread_cond_t isr_cv;
	/* "fence": this node's replica server, told our epoch first. */
	char *fence_address, *fence_replica;
	int fence_port;
	struct bufpool pool;
	int rfd;                 /* the local replica's data file, or -1 */
	/* The local replica's snapshots (snap.h), or NULL without one. */
	struct hf_snaps *snaps;
	/*
	 * attach.json's "snapshots" (the agent's requests, main thread), and
	 * what became of each: {id: {"op", "ok", "replicas", "error"}},
	 * published in status.json. A request is carried out once per
	 * process.
	 */
	json_t *snap_want, *snap_done;
	pthread_mutex_t snap_mu; /* snap_done: publish reads it anywhere */
	/* "dr": the disaster-recovery stream (ship.h), or NULL. */
	struct hf_ship *ship;
	pthread_mutex_t ship_mu; /* ship, for flushes and status.json */
	char *dr_text;           /* its attach.json object, compact */
	int dr_drain_ms;
	json_t *dr_last;         /* its last status, once it ended */
	int loopfd;
	char dev[32];
	char identity[LO_NAME_SIZE];
	char *mnt;               /* DIR/fuse, in our namespace only */
	struct fuse_session *se;
	pthread_t loop_thread;
	bool loop_running;
};

/* ---- status.json ------------------------------------------------------ */

/*
 * "missed": [{"replica", "bytes"}]: what each replica this process keeps
 * an entry for lacks now (0 for one in sync), as the bytes of its regions.
 */
static json_t *missed_json(const struct vol *v)
{
	pthread_mutex_t *mu = (pthread_mutex_t *)&v->miss_mu;
	json_t *a = json_array();

	pthread_mutex_lock(mu);
	for (size_t i = 0; i < v->nmissed; i++)
		json_array_append_new(
		    a, json_pack("{s:s, s:I}", "replica", v->missed[i].replica,
				 "bytes",
				 (json_int_t)(v->missed[i].broken
						  ? (uint64_t)v->size
						  : hf_vol_bitmap_dirty_bytes(
							&v->missed[i].bm))));
	pthread_mutex_unlock(mu);
	return a;
}

/* The FUSE threads publish too (a remote's death): status.h serialises. */
/* What a dead remote r means for writes: status.json's message. */
static char *dead_msg(const struct vol *v, struct hf_remote *r)
{
	char why[256];

	hf_remote_dead(r, why, sizeof(why));
	if (r->fenced || !v->isr_wait_ms)
		return hf_xasprintf("replica %s on node %s: %s; every write and "
				    "flush fails with EIO from now on",
				    r->replica, r->node, why);
	return hf_xasprintf("replica %s on node %s: %s; writes wait until "
			    "the server takes it out of the in-sync set (at "
			    "most %lld ms, then they fail with EIO)",
			    r->replica, r->node, why,
			    (long long)v->isr_wait_ms);
}

/*
 * status.json anew. Without msg, a remote that died and is still in the
 * in-sync set keeps its message there (the counters' once-a-second
 * update does not hide it).
 */
static void publish(const struct vol *v, const char *state, const char *msg)
{
	char *sticky = NULL;

	json_t *o = json_pack("{s:s, s:i, s:s?, s:s?, s:I, s:I}", "state",
			      state, "pid", (int)getpid(), "volume", v->volume,
			      "id", v->id, "epoch", (json_int_t)v->epoch,
			      "size",
			      (json_int_t)__atomic_load_n(&v->size,
							  __ATOMIC_ACQUIRE));

	json_object_set_new(o, "device",
			    v->dev[0] ? json_string(v->dev) : json_null());
	json_object_set_new(o, "identity", v->identity[0]
						   ? json_string(v->identity)
						   : json_null());
	if (__atomic_load_n(&v->nospace, __ATOMIC_RELAXED))
		json_object_set_new(o, "nospace",
				    json_integer(__atomic_load_n(
					&v->nospace, __ATOMIC_RELAXED)));
	json_object_set_new(o, "written",
			    json_integer(__atomic_load_n(&v->written,
							 __ATOMIC_RELAXED)));
	pthread_mutex_lock((pthread_mutex_t *)&v->snap_mu);
	if (v->snap_done && json_object_size(v->snap_done))
		json_object_set_new(o, "snapshots",
				    json_deep_copy(v->snap_done));
	pthread_mutex_unlock((pthread_mutex_t *)&v->snap_mu);
	json_object_set_new(o, "replicated",
			    json_integer(__atomic_load_n(&v->replicated,
							 __ATOMIC_RELAXED)));
	{
		json_t *h = json_array();

		for (size_t i = 0; i <= HF_VOL_LAT_BUCKETS; i++)
			json_array_append_new(
			    h, json_integer(__atomic_load_n(&v->write_us[i],
							    __ATOMIC_RELAXED)));
		json_object_set_new(o, "write_us", h);
		json_object_set_new(
		    o, "write_us_sum",
		    json_integer(__atomic_load_n(&v->write_us_sum,
						 __ATOMIC_RELAXED)));
	}
	if (v->dropped) {
		/* Failed remotes the server has not dropped yet: ask it to. */
		json_t *drop = json_array();
		char why[256] = "";

		json_t *synced = json_array(), *prog = json_array();
		size_t nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);

		pthread_mutex_lock((pthread_mutex_t *)&v->isr_mu);
		for (size_t i = 0; i < nr; i++) {
			struct hf_remote *r = &v->remotes[i];

			if (v->resynced[i])
				json_array_append_new(synced,
						      json_string(r->replica));
			if (v->resyncing[i] && !v->dropped[i])
				json_array_append_new(
				    prog, json_pack("{s:s, s:I, s:I}", "replica",
						    r->replica, "done",
						    (json_int_t)v->rs_done[i],
						    "total", (json_int_t)v->rs_total[i]));
			if (v->failed_rs[i]) {
				json_array_append_new(drop,
						      json_string(r->replica));
				if (!why[0])
					snprintf(why, sizeof(why),
						 "replica on node %s misses "
						 "writes (its copy failed, or "
						 "it missed them before a "
						 "restart)", r->node);
				continue;
			}
			/* A fenced one is no failure to drop: we are old. */
			if (v->dropped[i] || !hf_remote_dead(r, NULL, 0) ||
			    r->fenced || v->resyncing[i])
				continue;
			json_array_append_new(drop, json_string(r->replica));
			if (!why[0]) {
				char w[200];

				hf_remote_dead(r, w, sizeof(w));
				snprintf(why, sizeof(why), "replica on node %s: %s",
					 r->node, w);
				if (!msg)
					sticky = dead_msg(v, r);
			}
		}
		json_object_set_new(o, "resync_sent",
				    json_integer((json_int_t)v->rs_sent));
		json_object_set_new(o, "resync_planned",
				    json_integer((json_int_t)v->rs_planned));
		pthread_mutex_unlock((pthread_mutex_t *)&v->isr_mu);
		json_object_set_new(o, "missed", missed_json(v));
		if (json_array_size(synced))
			json_object_set_new(o, "resynced", synced);
		else
			json_decref(synced);
		if (json_array_size(prog))
			json_object_set_new(o, "resync", prog);
		else
			json_decref(prog);
		if (json_array_size(drop)) {
			json_object_set_new(o, "isr_drop", drop);
			json_object_set_new(o, "isr_why", json_string(why));
		} else {
			json_decref(drop);
		}
	}
	pthread_mutex_lock((pthread_mutex_t *)&v->ship_mu);
	if (v->ship)
		json_object_set_new(o, "dr", hf_ship_status(v->ship));
	else if (v->dr_last)
		json_object_set(o, "dr", v->dr_last);
	pthread_mutex_unlock((pthread_mutex_t *)&v->ship_mu);
	hf_vol_status_write(v->dir, o, msg ? msg : sticky);
	free(sticky);
}

static int failed(const struct vol *v, const char *fmt, ...) HF_PRINTF(2, 3);
static int failed(const struct vol *v, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	hf_log("%s", msg ? msg : fmt);
	publish(v, "failed", msg ? msg : fmt);
	free(msg);
	return -1;
}

/* ---- attach.json ------------------------------------------------------ */

static bool id_ok(const char *s);

static int load_remote(struct vol *v, json_t *o, size_t i, const char *path)
{
	static const char *const keys[] = {"address", "port", "replica",
					   "node", "resync"};
	struct hf_remote *r = &v->remotes[i];
	json_t *addr = json_object_get(o, "address"),
	       *port = json_object_get(o, "port"),
	       *rep = json_object_get(o, "replica"),
	       *node = json_object_get(o, "node");
	const char *key;
	json_t *val;

	if (!json_is_object(o))
		return failed(v, "%s: remotes[%zu] is not an object", path, i);
	json_object_foreach(o, key, val) {
		bool known = false;

		for (size_t k = 0; k < HF_ARRAY_LEN(keys); k++)
			known = known || strcmp(key, keys[k]) == 0;
		if (!known)
			return failed(v, "%s: remotes[%zu]: unknown key \"%s\"",
				      path, i, key);
	}
	if (!json_is_string(addr) || !json_string_value(addr)[0])
		return failed(v, "%s: remotes[%zu]: \"address\" must be a "
				 "numeric IP address", path, i);
	if (!json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)
		return failed(v, "%s: remotes[%zu]: \"port\" must be 1-65535",
			      path, i);
	if (!json_is_string(rep) || !id_ok(json_string_value(rep)))
		return failed(v, "%s: remotes[%zu]: \"replica\" must be 1-64 "
				 "letters, digits, '-' or '_'", path, i);
	if (!json_is_string(node) ||
	    !hf_vol_id_ok(json_string_value(node),
			  strlen(json_string_value(node)), HF_VOL_NODE_MAX))
		return failed(v, "%s: remotes[%zu]: \"node\" must be a node id",
			      path, i);
	if (json_object_get(o, "resync") &&
	    !json_is_boolean(json_object_get(o, "resync")))
		return failed(v, "%s: remotes[%zu]: \"resync\" must be true or "
				 "false", path, i);
	v->resyncing[i] = json_is_true(json_object_get(o, "resync"));
	r->address = hf_xstrdup(json_string_value(addr));
	r->port = (int)json_integer_value(port);
	r->replica = hf_xstrdup(json_string_value(rep));
	r->node = hf_xstrdup(json_string_value(node));
	return 0;
}

/* "fence": {"address", "port", "replica"}: this node's replica server. */
static int load_fence(struct vol *v, json_t *f, const char *path)
{
	json_t *addr = json_object_get(f, "address"),
	       *port = json_object_get(f, "port"),
	       *rep = json_object_get(f, "replica");

	if (!json_is_object(f) || json_object_size(f) != 3 ||
	    !json_is_string(addr) || !json_string_value(addr)[0] ||
	    !json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535 || !json_is_string(rep) ||
	    !id_ok(json_string_value(rep)))
		return failed(v, "%s: \"fence\" must be {\"address\": numeric "
				 "IP, \"port\": 1-65535, \"replica\": the local "
				 "replica's id}", path);
	if (!v->replica)
		return failed(v, "%s: \"fence\" needs a local \"replica\"",
			      path);
	v->fence_address = hf_xstrdup(json_string_value(addr));
	v->fence_port = (int)json_integer_value(port);
	v->fence_replica = hf_xstrdup(json_string_value(rep));
	return 0;
}

/*
 * "remotes", "fence", "node", and the ticket ("ticket", or derived from
 * "key").
 */
static int load_remotes(struct vol *v, json_t *o, const char *path)
{
	json_t *rs = json_object_get(o, "remotes"),
	       *node = json_object_get(o, "node"),
	       *key = json_object_get(o, "key"),
	       *ticket = json_object_get(o, "ticket"),
	       *fence = json_object_get(o, "fence");
	uint8_t k[HF_VOL_KEY_LEN];
	size_t n;

	if (fence && !json_is_null(fence) && load_fence(v, fence, path))
		return -1;
	if (rs && !json_is_array(rs))
		return failed(v, "%s: \"remotes\" must be an array", path);
	n = rs ? json_array_size(rs) : 0;
	if (!n && !v->replica)
		return failed(v, "%s: a volume needs a local \"replica\" or "
				 "\"remotes\"", path);
	if (n > HF_VOL_MAX_PEERS)
		return failed(v, "%s: %zu remotes, over the limit of %d", path,
			      n, HF_VOL_MAX_PEERS);
	v->remotes = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->remotes));
	v->dropped = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->dropped));
	v->resyncing = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->resyncing));
	v->resynced = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->resynced));
	v->failed_rs = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->failed_rs));
	v->rs_done = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->rs_done));
	v->rs_total = hf_xcalloc(HF_VOL_MAX_PEERS, sizeof(*v->rs_total));
	for (size_t i = 0; i < HF_VOL_MAX_PEERS; i++)
		hf_remote_init(&v->remotes[i]);
	/* Without remotes now, one may come to be resynced: keep these. */
	if (!n && !v->fence_address && (!node || !(key || ticket)))
		return 0;
	if (!json_is_string(node) ||
	    !hf_vol_id_ok(json_string_value(node),
			  strlen(json_string_value(node)), HF_VOL_NODE_MAX))
		return failed(v, "%s: \"node\" (this node's id) is needed with "
				 "remotes or a fence", path);
	v->node = hf_xstrdup(json_string_value(node));
	if (!key == !ticket)
		return failed(v, "%s: remotes and a fence need exactly one of "
				 "\"ticket\" and \"key\"", path);
	if (ticket && (!json_is_string(ticket) ||
		       hf_vol_hex_decode(json_string_value(ticket), v->ticket,
					 HF_VOL_TICKET_LEN)))
		return failed(v, "%s: \"ticket\" must be %d hex digits", path,
			      2 * HF_VOL_TICKET_LEN);
	if (key) {
		if (!json_is_string(key) ||
		    hf_vol_hex_decode(json_string_value(key), k,
				      HF_VOL_KEY_LEN))
			return failed(v, "%s: \"key\" must be %d hex digits",
				      path, 2 * HF_VOL_KEY_LEN);
		hf_vol_ticket(k, v->id, (uint64_t)v->epoch, v->node,
			      v->ticket);
		explicit_bzero(k, sizeof(k));
	}
	v->have_ticket = true;
	v->nremotes = n;
	for (size_t i = 0; i < v->nremotes; i++)
		if (load_remote(v, json_array_get(rs, i), i, path))
			return -1;
	return 0;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_") == n;
}

/*
 * "encryption_key": the data key as 128 hex digits (crypt.h); never
 * repeated in a message.
 */
static int load_key(struct vol *v, json_t *val, const char *path)
{
	uint8_t k[HF_VOL_DATA_KEY_LEN];
	int rc;

	if (!val)
		return 0;
	if (!json_is_string(val) ||
	    hf_vol_hex_decode(json_string_value(val), k, sizeof(k)) != 0) {
		failed(v, "%s: \"encryption_key\" must be %d hex digits", path,
		       2 * HF_VOL_DATA_KEY_LEN);
		return -1;
	}
	rc = hf_vol_crypt_init(&v->crypt, k);
	explicit_bzero(k, sizeof(k));
	if (rc) {
		failed(v, "%s: \"encryption_key\" is no AES-XTS key (its two "
			  "halves are equal)", path);
		return -1;
	}
	v->secure = true;
	return 0;
}

/*
 * "snapshots": [{"id": snapshot id (snap.h), "op": "take" | "delete" |
 * "restore"}] (at most HF_SNAP_MAX * 2): kept in v->snap_want for
 * snap_work. Returns 0, or -1 having failed (at start) or logged (when
 * path is NULL: a reload, which then keeps the old list).
 */
static int snap_requests(struct vol *v, json_t *a, const char *path)
{
	size_t i;
	json_t *e;

	if (!a) {
		json_decref(v->snap_want);
		v->snap_want = json_array();
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > 2 * HF_SNAP_MAX)
		goto bad;
	json_array_foreach(a, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *op = json_string_value(json_object_get(e, "op"));

		if (!json_is_object(e) || json_object_size(e) != 2 ||
		    !hf_snap_id_ok(id) || !op ||
		    (strcmp(op, "take") && strcmp(op, "delete") &&
		     strcmp(op, "restore")))
			goto bad;
	}
	json_decref(v->snap_want);
	v->snap_want = json_deep_copy(a);
	return 0;
bad:
	if (!path) {
		hf_log("reload: \"snapshots\" is malformed: the requests stay "
		       "as they were");
		return -1;
	}
	return failed(v, "%s: \"snapshots\" must be a list of {\"id\": a "
			 "snapshot id, \"op\": \"take\", \"delete\" or "
			 "\"restore\"}", path);
}

static int local_read(struct vol *v, uint8_t *dst, uint64_t off, size_t len);
static int remote_read(struct vol *v, uint8_t *dst, uint64_t off,
		       uint32_t len);

/* The DR copy's reads: the bytes as the replicas hold them. */
static int ship_read(void *arg, uint8_t *dst, uint64_t off, size_t len)
{
	struct vol *v = arg;

	return v->rfd >= 0 ? local_read(v, dst, off, len)
			   : remote_read(v, dst, off, (uint32_t)len);
}

/* A dr object as text, drain_ms left out (it changes no stream). */
static char *dr_text_of(const json_t *d)
{
	json_t *c = json_deep_copy(d);
	char *text;

	json_object_del(c, "drain_ms");
	text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(c);
	return text;
}

/*
 * "dr": {"address", "port", "replica", "tls_ca", "tls_cert", "tls_key",
 * "journal", "journal_size", "when_full", "drain_ms"}: the stream to a
 * standby replica on another site (ship.h). The standby holds the same
 * volume (id and key): the attachment's ticket opens it too.
 */
HF_PRINTF(3, 4)
static struct hf_ship *dr_fail(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return NULL;
}

static struct hf_ship *open_dr(struct vol *v, json_t *d, const char *path,
			      int64_t size, char *msg, size_t msg_n)
{
	static const char *const keys[] = {
	    "address", "port", "replica", "tls_ca", "tls_cert", "tls_key",
	    "journal", "journal_size", "when_full", "drain_ms"};
	static const char *const strs[] = {"address", "replica", "tls_ca",
					   "tls_cert", "tls_key", "journal"};
	struct hf_ship_config c;
	struct hf_ship *ship;
	const char *k, *wf;
	json_t *val;
	char err[512];

	if (!json_is_object(d))
		return dr_fail(msg, msg_n, "%s: \"dr\" must be an object", path);
	json_object_foreach(d, k, val) {
		bool known = false;

		for (size_t i = 0; i < HF_ARRAY_LEN(keys); i++)
			known = known || strcmp(k, keys[i]) == 0;
		if (!known)
			return dr_fail(msg, msg_n, "%s: \"dr\": unknown key \"%s\"",
				      path, k);
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(strs); i++)
		if (!json_is_string(json_object_get(d, strs[i])) ||
		    !*json_string_value(json_object_get(d, strs[i])))
			return dr_fail(msg, msg_n, "%s: \"dr\": \"%s\" is needed (a "
					 "string)", path, strs[i]);
	if (!v->have_ticket)
		return dr_fail(msg, msg_n, "%s: \"dr\" needs \"node\" and the "
				 "attachment's ticket (or key)", path);
	memset(&c, 0, sizeof(c));
	c.address = (char *)json_string_value(json_object_get(d, "address"));
	c.replica = (char *)json_string_value(json_object_get(d, "replica"));
	c.ca = (char *)json_string_value(json_object_get(d, "tls_ca"));
	c.cert = (char *)json_string_value(json_object_get(d, "tls_cert"));
	c.key = (char *)json_string_value(json_object_get(d, "tls_key"));
	c.journal = (char *)json_string_value(json_object_get(d, "journal"));
	c.node = v->node;
	memcpy(c.ticket, v->ticket, sizeof(c.ticket));
	val = json_object_get(d, "port");
	if (!json_is_integer(val) || json_integer_value(val) < 1 ||
	    json_integer_value(val) > 65535)
		return dr_fail(msg, msg_n, "%s: \"dr\": \"port\" must be 1-65535",
			      path);
	c.port = (int)json_integer_value(val);
	if (!id_ok(c.replica))
		return dr_fail(msg, msg_n, "%s: \"dr\": \"replica\" must be 1-64 "
				 "letters, digits, '-' or '_'", path);
	val = json_object_get(d, "journal_size");
	c.journal_size = val ? json_integer_value(val) : 256LL << 20;
	if ((val && !json_is_integer(val)) ||
	    c.journal_size < HF_SHIP_JOURNAL_MIN || c.journal_size % 4096)
		return dr_fail(msg, msg_n, "%s: \"dr\": \"journal_size\" must be a "
				 "multiple of 4096 of at least %lld bytes",
			      path, HF_SHIP_JOURNAL_MIN);
	val = json_object_get(d, "when_full");
	wf = val ? json_string_value(val) : "block";
	if (!wf || (strcmp(wf, "block") && strcmp(wf, "resync")))
		return dr_fail(msg, msg_n, "%s: \"dr\": \"when_full\" must be "
				 "\"block\" or \"resync\"", path);
	c.block = !strcmp(wf, "block");
	val = json_object_get(d, "drain_ms");
	if ((val && !json_is_integer(val)) || json_integer_value(val) < 0 ||
	    json_integer_value(val) > 3600000)
		return dr_fail(msg, msg_n, "%s: \"dr\": \"drain_ms\" must be "
				 "0-3600000", path);
	v->dr_drain_ms = val ? (int)json_integer_value(val) : 5000;
	ship = hf_ship_open(&c, v->id, (uint64_t)v->epoch, (uint64_t)size,
			    ship_read, v, err, sizeof(err));
	if (!ship)
		return dr_fail(msg, msg_n, "%s: \"dr\": %s", path, err);
	return ship;
}

/* attach.json's "dr" at start: the stream opened, or the attach fails. */
static int load_dr(struct vol *v, json_t *d, const char *path)
{
	char msg[768];

	if (!(v->ship = open_dr(v, d, path, v->size, msg, sizeof(msg))))
		return failed(v, "%s", msg);
	v->dr_text = dr_text_of(d);
	return 0;
}

/*
 * A SIGHUP's "dr" (NULL: none): a stream begun, changed or ended on the
 * running attachment. Writes wait meanwhile (add_lock), so none is
 * missed between the old stream and the new one; a new journal starts
 * with a copy of the whole volume.
 */
static void reload_dr(struct vol *v, json_t *d)
{
	char *text = d ? dr_text_of(d) : NULL;
	struct hf_ship *old, *ship = NULL;
	char msg[768];
	bool had;

	if ((!text && !v->dr_text) ||
	    (text && v->dr_text && !strcmp(text, v->dr_text))) {
		/* The same stream; only how long a detach drains may change. */
		json_t *val = d ? json_object_get(d, "drain_ms") : NULL;
		int ms = json_is_integer(val) && json_integer_value(val) >= 0 &&
				 json_integer_value(val) <= 3600000
			     ? (int)json_integer_value(val)
			     : 5000;

		if (text && ms != v->dr_drain_ms) {
			hf_log("reload: a detach waits up to %d ms for the DR "
			       "standby",
			       ms);
			__atomic_store_n(&v->dr_drain_ms, ms, __ATOMIC_RELEASE);
		}
		free(text);
		return;
	}
	pthread_rwlock_wrlock(&v->add_lock);
	pthread_mutex_lock(&v->ship_mu);
	old = v->ship;
	had = old != NULL;
	v->ship = NULL;
	pthread_mutex_unlock(&v->ship_mu);
	/* The old one's journal header is durable before the new one reads it. */
	hf_ship_close(old);
	if (text && !(ship = open_dr(v, d, "attach.json",
				     __atomic_load_n(&v->size,
						     __ATOMIC_ACQUIRE),
				     msg, sizeof(msg))))
		hf_log("reload: %s: no DR stream now", msg);
	pthread_mutex_lock(&v->ship_mu);
	v->ship = ship;
	pthread_mutex_unlock(&v->ship_mu);
	pthread_rwlock_unlock(&v->add_lock);
	if (ship)
		hf_ship_start(ship);
	hf_log("reload: the DR stream %s", !ship ? "ended" : had ? "changed"
							     : "began");
	free(v->dr_text);
	v->dr_text = ship ? text : NULL;
	if (!ship)
		free(text);
}


static int load(struct vol *v)
{
	static const char *const keys[] = {
	    "volume", "id",  "epoch", "size",    "replica", "format", "uid",
	    "gid",    "node", "key",  "ticket", "remotes", "fence",
	    "isr_wait_ms", "resync_rate", "encryption_key", "snapshots", "fs",
	    "dr"};
	char *path = hf_xasprintf("%s/attach.json", v->dir);
	json_error_t je;
	json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	const char *key;
	json_t *val;
	int rc = -1;

	if (!o || !json_is_object(o)) {
		/* jansson quotes a short token: maybe a piece of the key. */
		char *near = strstr(je.text, " near ");

		if (!o && near)
			*near = 0;
		failed(v, "%s: %s", path, o ? "not a JSON object" : je.text);
		goto out;
	}
	json_object_foreach(o, key, val) {
		bool known = false;

		for (size_t i = 0; i < HF_ARRAY_LEN(keys); i++)
			known = known || strcmp(key, keys[i]) == 0;
		if (!known) {
			failed(v, "%s: unknown key \"%s\"", path, key);
			goto out;
		}
	}
	if (!json_is_string(json_object_get(o, "volume")) ||
	    !json_is_string(json_object_get(o, "id")) ||
	    !id_ok(json_string_value(json_object_get(o, "id")))) {
		failed(v, "%s: \"volume\" must be a string and \"id\" 1-64 "
			  "letters, digits, '-' or '_'", path);
		goto out;
	}
	v->volume = hf_xstrdup(json_string_value(json_object_get(o, "volume")));
	v->id = hf_xstrdup(json_string_value(json_object_get(o, "id")));
	v->epoch = json_integer_value(json_object_get(o, "epoch"));
	v->size = json_integer_value(json_object_get(o, "size"));
	if (!json_is_integer(json_object_get(o, "epoch")) || v->epoch < 1) {
		failed(v, "%s: \"epoch\" must be an integer >= 1", path);
		goto out;
	}
	if (!json_is_integer(json_object_get(o, "size")) ||
	    v->size < MIN_SIZE || v->size % BLOCK) {
		failed(v, "%s: \"size\" must be a multiple of 4096 bytes of "
			  "at least 64 MiB", path);
		goto out;
	}
	val = json_object_get(o, "replica");
	if (!json_is_null(val) &&
	    (!json_is_string(val) || json_string_value(val)[0] != '/')) {
		failed(v, "%s: \"replica\" must be an absolute path, or null "
			  "on a node without one", path);
		goto out;
	}
	v->replica = json_is_string(val) ? hf_xstrdup(json_string_value(val))
					 : NULL;
	if (load_remotes(v, o, path))
		goto out;
	if ((val = json_object_get(o, "dr")) && !json_is_null(val) &&
	    load_dr(v, val, path))
		goto out;
	val = json_object_get(o, "isr_wait_ms");
	if (val && (!json_is_integer(val) || json_integer_value(val) < 0 ||
		    json_integer_value(val) > 3600000)) {
		failed(v, "%s: \"isr_wait_ms\" must be 0-3600000", path);
		goto out;
	}
	v->isr_wait_ms = val ? json_integer_value(val) : 0;
	val = json_object_get(o, "resync_rate");
	if (val && (!json_is_integer(val) || json_integer_value(val) < 0)) {
		failed(v, "%s: \"resync_rate\" must be bytes per second, 0 "
			  "or more", path);
		goto out;
	}
	v->resync_rate = val ? json_integer_value(val) : 0;
	val = json_object_get(o, "format");
	if (val && !json_is_boolean(val)) {
		failed(v, "%s: \"format\" must be true or false", path);
		goto out;
	}
	v->format = json_is_true(val);
	val = json_object_get(o, "fs");
	if (val && !(json_is_string(val) &&
		     (!strcmp(json_string_value(val), "ext4") ||
		      !strcmp(json_string_value(val), "xfs")))) {
		failed(v, "%s: \"fs\" must be \"ext4\" or \"xfs\"", path);
		goto out;
	}
	v->fs_asked = !val ? 0 : !strcmp(json_string_value(val), "xfs") ? 2 : 1;
	if (load_key(v, json_object_get(o, "encryption_key"), path))
		goto out;
	if (snap_requests(v, json_object_get(o, "snapshots"), path))
		goto out;
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "gid" : "uid";
		json_t *n = json_object_get(o, k);

		if (n && (!json_is_integer(n) || json_integer_value(n) < 0 ||
			  json_integer_value(n) > 0x7fffffff)) {
			failed(v, "%s: \"%s\" must be an id >= 0", path, k);
			goto out;
		}
		*(i ? &v->gid : &v->uid) = n ? (unsigned)json_integer_value(n)
					     : 0;
	}
	snprintf(v->identity, sizeof(v->identity), "hf:%s:%lld", v->id,
		 (long long)v->epoch);
	rc = 0;
out:
	json_decref(o);
	free(path);
	return rc;
}

static int open_replica(struct vol *v)
{
	struct stat st;

	if (!v->replica)
		return 0;
	v->rfd = open(v->replica, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	if (v->rfd < 0 || fstat(v->rfd, &st) < 0)
		return failed(v, "replica %s: %s", v->replica,
			      strerror(errno));
	/* Made sparse, or grown: the volume grew while it was closed. */
	if (st.st_size < v->size && ftruncate(v->rfd, v->size) < 0)
		return failed(v, "replica %s: cannot make it %lld bytes: %s",
			      v->replica, (long long)v->size,
			      strerror(errno));
	if (st.st_size > v->size)
		return failed(v, "replica %s is %lld bytes, more than the "
				 "volume's %lld (volumes never shrink)",
			      v->replica, (long long)st.st_size,
			      (long long)v->size);
	{
		char *dir = hf_xstrdup(v->replica), *slash = strrchr(dir, '/');
		char err[HF_VOL_ERR_MAX];

		if (slash && slash != dir)
			*slash = '\0';
		v->snaps = hf_snaps_open(dir, v->rfd, err, sizeof(err));
		free(dir);
		if (!v->snaps)
			return failed(v, "replica %s: snapshots: %s", v->replica,
				      err);
	}
	return 0;
}

/* ---- the remote replicas --------------------------------------------- */

static void remote_died(struct hf_remote *r, void *arg)
{
	struct vol *v = arg;
	char *msg = dead_msg(v, r);

	publish(v, "ready", msg);
	free(msg);
}

/*
 * Tells this node's replica server our epoch for the local replica (a
 * HELLO, then BYE): from then on it refuses an older attachment's writes
 * to it (FENCED), as the remote replicas do. One that knows a newer
 * epoch already fails the attach.
 */
static int fence_local(struct vol *v)
{
	struct hf_remote r;
	char err[512];
	int rc = 0;

	if (!v->fence_address)
		return 0;
	hf_remote_init(&r);
	r.address = hf_xstrdup(v->fence_address);
	r.port = v->fence_port;
	r.replica = hf_xstrdup(v->fence_replica);
	r.node = hf_xstrdup(v->node);
	if (hf_remote_connect(&r, v->id, (uint64_t)v->epoch, v->node,
			      v->ticket, (uint64_t)v->size, err, sizeof(err)))
		rc = failed(v, "local replica %s (this node's replica server, "
			       "%s port %d): %s", v->fence_replica,
			    v->fence_address, v->fence_port, err);
	else
		v->local_gen = r.gen;
	hf_remote_close(&r, rc == 0);
	return rc;
}

/* ---- what replicas out of the in-sync set missed ---------------------- */

/*
 * Each entry is kept in DIR/missed-<replica> too, for an attach process
 * that starts again at the same epoch (killed, or its node's agent
 * restarted it): at one epoch only this directory's processes write the
 * volume, so what the file says the replica missed is all it missed from
 * them. Page 0 is a header, then the bitmap's pages (bitmap.h; one that
 * does not decode counts as all dirty); a file of the header alone is a
 * replica that missed nothing (an entry starts so: a big volume's pages
 * are written only once it misses something):
 *
 *   off   size  field
 *   0     8     magic "HFMISS01"
 *   8     8     epoch
 *   16    8     the volume's size
 *   24    16    the replica's data generation
 *   40    65    the volume id, NUL-padded
 *   105   65    the replica id, NUL-padded
 *   170   3922  zero
 *   4092  4     CRC-32C of bytes 0..4091
 *
 * A bit's page is written (pwrite) before the write that set it is
 * answered and made durable at the next flush, as the data is. Files of
 * another epoch or volume are removed at start.
 */
#define MISS_MAGIC "HFMISS01"
#define MISS_ID 65

static char *miss_path(const struct vol *v, const char *id)
{
	return hf_xasprintf("%s/missed-%s", v->dir, id);
}

static void miss_header(const struct vol *v, const struct missed *m,
			uint8_t page[HF_VOL_BITMAP_PAGE])
{
	memset(page, 0, HF_VOL_BITMAP_PAGE);
	memcpy(page, MISS_MAGIC, 8);
	hf_vol_put64(page + 8, (uint64_t)v->epoch);
	hf_vol_put64(page + 16, (uint64_t)v->size);
	memcpy(page + 24, m->gen.b, HF_VOL_GEN_LEN);
	snprintf((char *)page + 40, MISS_ID, "%s", v->id);
	snprintf((char *)page + 40 + MISS_ID, MISS_ID, "%s", m->replica);
	hf_vol_put32(page + HF_VOL_BITMAP_PAGE - 4,
		     hf_crc32c(0, page, HF_VOL_BITMAP_PAGE - 4));
}

/* Writes pages [first, last] of m's bitmap to its file. */
static void miss_pages(struct missed *m, uint64_t first, uint64_t last)
{
	uint8_t page[HF_VOL_BITMAP_PAGE];

	for (uint64_t i = first; m->fd >= 0 && i <= last; i++) {
		if (hf_vol_bitmap_page_encode(&m->bm, i, page) ||
		    pwrite(m->fd, page, sizeof(page),
			   (off_t)((i + 1) * HF_VOL_BITMAP_PAGE)) !=
			(ssize_t)sizeof(page)) {
			/* Without its file the entry is this process's only. */
			hf_log("missed-%s: cannot write it: %s; a copy after a "
			       "restart will be whole", m->replica,
			       strerror(errno ? errno : EIO));
			close(m->fd);
			m->fd = -1;
		}
		m->unsynced = true;
	}
}

/*
 * m's file anew: the header, then every page when m's bitmap has a bit
 * set, else nothing more. miss_mu held (or no thread yet).
 */
static void miss_save(const struct vol *v, struct missed *m)
{
	uint8_t page[HF_VOL_BITMAP_PAGE];
	char *path = miss_path(v, m->replica);

	if (m->fd < 0)
		m->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			     0600);
	free(path);
	if (m->fd < 0)
		return;
	miss_header(v, m, page);
	m->paged = hf_vol_bitmap_count(&m->bm) > 0 || m->broken;
	if (pwrite(m->fd, page, sizeof(page), 0) != (ssize_t)sizeof(page) ||
	    ftruncate(m->fd, (off_t)((m->paged ? hf_vol_bitmap_pages(&m->bm)
					       : 0) +
				     1) * HF_VOL_BITMAP_PAGE) < 0) {
		close(m->fd);
		m->fd = -1;
		return;
	}
	m->unsynced = true;
	if (m->paged)
		miss_pages(m, 0, hf_vol_bitmap_pages(&m->bm) - 1);
}

/*
 * The files DIR/missed-* of this volume at this epoch become entries;
 * others are removed. Before any thread exists. Never fails: a file it
 * cannot use is no entry (a later copy is whole).
 */
static int miss_load(struct vol *v)
{
	DIR *d = opendir(v->dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		const char *id = e->d_name + strlen("missed-");
		char *path, why[HF_VOL_ERR_MAX];
		uint8_t page[HF_VOL_BITMAP_PAGE];
		struct missed *m = NULL;
		bool ok = false;
		int fd;

		if (strncmp(e->d_name, "missed-", 7) != 0)
			continue;
		path = miss_path(v, id);
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0 && id_ok(id) && v->nmissed < HF_VOL_MAX_PEERS &&
		    pread(fd, page, sizeof(page), 0) == (ssize_t)sizeof(page) &&
		    memcmp(page, MISS_MAGIC, 8) == 0 &&
		    hf_vol_get32(page + HF_VOL_BITMAP_PAGE - 4) ==
			hf_crc32c(0, page, HF_VOL_BITMAP_PAGE - 4) &&
		    hf_vol_get64(page + 8) == (uint64_t)v->epoch &&
		    hf_vol_get64(page + 16) == (uint64_t)v->size &&
		    strncmp((char *)page + 40, v->id, MISS_ID) == 0 &&
		    strncmp((char *)page + 40 + MISS_ID, id, MISS_ID) == 0) {
			m = &v->missed[v->nmissed];
			ok = hf_vol_bitmap_init(&m->bm, (uint64_t)v->size) == 0;
		}
		/* The header alone: it missed nothing. */
		if (ok)
			m->paged = lseek(fd, 0, SEEK_END) != HF_VOL_BITMAP_PAGE;
		for (uint64_t i = 0; ok && m->paged &&
				     i < hf_vol_bitmap_pages(&m->bm); i++) {
			uint8_t b[HF_VOL_BITMAP_PAGE];
			ssize_t n = pread(fd, b, sizeof(b),
					  (off_t)((i + 1) * HF_VOL_BITMAP_PAGE));

			if (hf_vol_bitmap_page_decode(&m->bm, i, b,
						      n > 0 ? (size_t)n : 0,
						      why)) {
				uint64_t off, len;

				/* Torn or never written: all of it. */
				hf_vol_bitmap_page_range(&m->bm, i, &off, &len);
				hf_vol_bitmap_set(&m->bm, off, len);
			}
		}
		if (ok) {
			m->replica = hf_xstrdup(id);
			memcpy(m->gen.b, page + 24, HF_VOL_GEN_LEN);
			m->fd = fd;
			v->nmissed++;
			hf_log("replica %s: it misses %llu bytes of this epoch's "
			       "writes (kept from the process before)",
			       id, (unsigned long long)
					   hf_vol_bitmap_dirty_bytes(&m->bm));
		} else {
			if (m)
				hf_vol_bitmap_release(&m->bm);
			if (fd >= 0)
				close(fd);
			unlink(path);
		}
		free(path);
	}
	if (d)
		closedir(d);
	return 0;
}

/* Makes every file written since the last call durable. */
static int miss_sync(struct vol *v)
{
	int e = 0;

	pthread_mutex_lock(&v->miss_mu);
	for (size_t i = 0; i < v->nmissed; i++) {
		struct missed *m = &v->missed[i];

		if (m->unsynced && m->fd >= 0 && fdatasync(m->fd) < 0)
			e = errno;
		m->unsynced = false;
	}
	pthread_mutex_unlock(&v->miss_mu);
	return e;
}

/* The entry of replica id, or NULL. miss_mu held. */
static struct missed *missed_of(struct vol *v, const char *id)
{
	for (size_t i = 0; i < v->nmissed; i++)
		if (strcmp(v->missed[i].replica, id) == 0)
			return &v->missed[i];
	return NULL;
}

/*
 * Replica id, of data generation gen, holds every write from now on: its
 * entry starts (or starts again) clean, in memory and in its file. A
 * zero generation is unknown: no entry (a later copy to it is whole).
 * One that cannot be kept (no room, no memory) is simply absent, with the
 * same effect.
 */
static void track(struct vol *v, const char *id, const struct hf_vol_gen *gen)
{
	struct missed *m;

	pthread_mutex_lock(&v->miss_mu);
	m = missed_of(v, id);
	if (m && hf_vol_gen_is_zero(gen)) {
		char *path = miss_path(v, id);

		unlink(path);
		free(path);
		if (m->fd >= 0)
			close(m->fd);
		hf_vol_bitmap_release(&m->bm);
		free(m->replica);
		*m = v->missed[--v->nmissed];
		memset(&v->missed[v->nmissed], 0, sizeof(*m));
	} else if (m) {
		hf_vol_bitmap_reset(&m->bm);
		m->gen = *gen;
		m->broken = false;
		miss_save(v, m);
	} else if (!hf_vol_gen_is_zero(gen) && v->nmissed < HF_VOL_MAX_PEERS) {
		m = &v->missed[v->nmissed];
		if (hf_vol_bitmap_init(&m->bm, (uint64_t)v->size) == 0) {
			m->replica = hf_xstrdup(id);
			m->gen = *gen;
			m->broken = false;
			m->fd = -1;
			v->nmissed++;
			miss_save(v, m);
		}
	}
	pthread_mutex_unlock(&v->miss_mu);
}

/*
 * [off, off + len) was written, and no live slot of remote i's replica
 * took it: that replica misses it. Called before the write is answered;
 * the pages whose bits changed go to the entry's file.
 */
/* miss_id's work on entry m; miss_mu held. */
static void miss_entry(struct vol *v, struct missed *m, uint64_t off,
		       uint64_t len)
{
	uint64_t before = hf_vol_bitmap_count(&m->bm);

	if (hf_vol_bitmap_set(&m->bm, off, len)) {
		m->broken = true;
	} else if (hf_vol_bitmap_count(&m->bm) != before && !m->paged) {
		/* Its first miss: every page (absent ones are dirty). */
		miss_save(v, m);
	} else if (hf_vol_bitmap_count(&m->bm) != before && len) {
		uint64_t per = HF_VOL_BITMAP_PAGE_REGIONS * HF_VOL_REGION_SIZE;

		miss_pages(m, off / per, (off + len - 1) / per);
	}
}

static void miss_id(struct vol *v, const char *id, uint64_t off, uint64_t len)
{
	struct missed *m;

	pthread_mutex_lock(&v->miss_mu);
	m = missed_of(v, id);
	if (m)
		miss_entry(v, m, off, len);
	pthread_mutex_unlock(&v->miss_mu);
}

/*
 * Remote i is in sync, attach.json says: its entry starts clean. Unless
 * the process before this one (same epoch) kept that it missed writes,
 * or it is another copy than the one kept: then it is taken out of the
 * in-sync set (asked of the server, isr_drop) and will be resynced.
 */
static void keep_in_sync(struct vol *v, size_t i)
{
	struct hf_remote *r = &v->remotes[i];
	struct missed *m;
	bool behind;

	pthread_mutex_lock(&v->miss_mu);
	m = missed_of(v, r->replica);
	behind = m && (m->broken || hf_vol_bitmap_count(&m->bm) ||
		       !hf_vol_gen_equal(&m->gen, &r->gen));
	pthread_mutex_unlock(&v->miss_mu);
	if (!behind) {
		track(v, r->replica, &r->gen);
		return;
	}
	hf_log("replica %s on node %s misses writes of the process before "
	       "this one: asking to take it out of the in-sync set",
	       r->replica, r->node);
	v->dropped[i] = v->failed_rs[i] = true;
}

/* HELLO to every remote; no thread may exist yet (see mount_fuse). */
static int connect_remotes(struct vol *v)
{
	char err[512];

	for (size_t i = 0; i < v->nremotes; i++) {
		struct hf_remote *r = &v->remotes[i];

		if (hf_remote_connect(r, v->id, (uint64_t)v->epoch, v->node,
				      v->ticket, (uint64_t)v->size, err,
				      sizeof(err)))
			return failed(v, "replica %s on node %s (%s port %d): "
					 "%s", r->replica, r->node, r->address,
				      r->port, err);
		if (!v->resyncing[i])
			keep_in_sync(v, i);
	}
	return 0;
}

/* Ends the connections (BYE first when bye); safe to call twice. */
static void close_remotes(struct vol *v, bool bye)
{
	for (size_t i = 0; i < v->nremotes; i++)
		hf_remote_close(&v->remotes[i], bye);
	free(v->remotes);
	v->remotes = NULL;
	v->nremotes = 0;
}

static int start_remotes(struct vol *v)
{
	for (size_t i = 0; i < v->nremotes; i++) {
		v->remotes[i].on_dead = remote_died;
		v->remotes[i].on_dead_arg = v;
	}
	return 0;
}

static void *resync_thread(void *arg);

struct rs_arg {
	struct vol *v;
	size_t i;
};

/* Starts the copies of the remotes attach.json marks "resync". */
static void start_resyncs(struct vol *v)
{
	for (size_t i = 0; i < v->nremotes; i++) {
		struct rs_arg *a;

		if (!v->resyncing[i] || v->rs_thread_on[i])
			continue;
		a = hf_xmalloc(sizeof(*a));
		a->v = v;
		a->i = i;
		__atomic_add_fetch(&v->resyncs, 1, __ATOMIC_RELEASE);
		if (pthread_create(&v->rs_threads[i], NULL, resync_thread, a)) {
			free(a);
			__atomic_sub_fetch(&v->resyncs, 1, __ATOMIC_RELEASE);
			v->dropped[i] = v->failed_rs[i] = true;
			v->resyncing[i] = false;
			continue;
		}
		v->rs_thread_on[i] = true;
	}
}

#define KEEPALIVE_MS 1000

/*
 * Every KEEPALIVE_MS, a PING to each in-sync remote that answered nothing
 * for that long: one that died or went silent while the volume was idle
 * is found now (status.json then asks for its drop, as a failed write
 * would), not by the next write, which would wait for the answer's
 * timeout and then for the drop.
 */
static void al_trim(struct vol *v, bool all);

static void *keepalive(void *arg)
{
	struct vol *v = arg;

	for (;;) {
		size_t nr;

		for (int t = 0; t < KEEPALIVE_MS / 100; t++) {
			bool stop;

			hf_sleep_ms(100);
			pthread_mutex_lock(&v->isr_mu);
			stop = v->stopping;
			pthread_mutex_unlock(&v->isr_mu);
			if (stop)
				return NULL;
		}
		pthread_rwlock_rdlock(&v->add_lock);
		nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);
		for (size_t i = 0; i < nr; i++) {
			bool live;

			pthread_mutex_lock(&v->isr_mu);
			live = !v->dropped[i] && !v->resyncing[i];
			pthread_mutex_unlock(&v->isr_mu);
			if (live)
				hf_remote_ping(&v->remotes[i], KEEPALIVE_MS);
		}
		pthread_rwlock_unlock(&v->add_lock);
		al_trim(v, false);
	}
}

static void start_keepalive(struct vol *v)
{
	/* Always: remotes may come later (a replica back, resynced). */
	v->ka_on = pthread_create(&v->ka_thread, NULL, keepalive, v) == 0;
}

/* Ends the copies and the keepalive (detach) and waits for their threads. */
static void stop_resyncs(struct vol *v)
{
	pthread_mutex_lock(&v->isr_mu);
	v->stopping = true;
	pthread_mutex_unlock(&v->isr_mu);
	if (v->ka_on) {
		pthread_join(v->ka_thread, NULL);
		v->ka_on = false;
	}
	for (size_t i = 0; i < HF_VOL_MAX_PEERS; i++)
		if (v->rs_thread_on[i]) {
			pthread_join(v->rs_threads[i], NULL);
			v->rs_thread_on[i] = false;
		}
}

static uint8_t *buf_take(struct vol *v)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&v->pool.mu);
	if (v->pool.nfree)
		b = v->pool.free[--v->pool.nfree];
	pthread_mutex_unlock(&v->pool.mu);
	return b ? b : hf_xmalloc(HF_VOL_DATA_MAX);
}

static void buf_put(struct vol *v, uint8_t *b)
{
	pthread_mutex_lock(&v->pool.mu);
	if (v->pool.nfree < (int)HF_ARRAY_LEN(v->pool.free)) {
		v->pool.free[v->pool.nfree++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&v->pool.mu);
	free(b);
}

/*
 * The ranged request f (WRITE or TRIM) is missed by each replica with an
 * entry no slot of which has[] (none at all, for a replica this process
 * has no connection to: one away since an attach at this epoch, §5.4):
 * its regions are set in that entry.
 */
static void mark_missing(struct vol *v, const struct hf_volw_frame *f,
			 const bool *has, size_t nr)
{
	uint64_t len = f->type == HF_VOLW_WRITE ? f->data_len : f->u.range.len;

	pthread_mutex_lock(&v->miss_mu);
	for (size_t k = 0; k < v->nmissed; k++) {
		struct missed *m = &v->missed[k];
		bool any = false;

		for (size_t j = 0; j < nr && !any; j++)
			any = has[j] &&
			      strcmp(v->remotes[j].replica, m->replica) == 0;
		if (!any)
			miss_entry(v, m, f->off, len);
	}
	pthread_mutex_unlock(&v->miss_mu);
}

/*
 * Sends one request to every remote (pipelined: all are sent before any
 * answer is awaited), runs local (the local replica's share, done while
 * the frames travel) and waits for every answer. Returns 0 or an errno:
 * a remote that fails fails the request (EIO).
 */
static int fan_out(struct vol *v, struct hf_volw_frame *f,
		   int (*local)(struct vol *v, void *arg), void *arg)
{
	struct hf_remote_req q[HF_VOL_MAX_PEERS];
	bool sent[HF_VOL_MAX_PEERS] = {0}, bad[HF_VOL_MAX_PEERS];
	bool copying[HF_VOL_MAX_PEERS], got[HF_VOL_MAX_PEERS] = {0};
	bool ranged = f->type == HF_VOLW_WRITE || f->type == HF_VOLW_TRIM;
	size_t nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);
	int e = 0, le = 0;
	bool waits = false;

	pthread_mutex_lock(&v->isr_mu);
	for (size_t i = 0; i < nr; i++) {
		sent[i] = !v->dropped[i];
		copying[i] = v->resyncing[i];
	}
	pthread_mutex_unlock(&v->isr_mu);
	/*
	 * A replica no live slot of which gets this write misses it: said
	 * before any replica has it, so that the process dying half-way
	 * leaves no region written here and not marked for it. (One that
	 * fails below is marked once it has.)
	 */
	if (ranged)
		mark_missing(v, f, sent, nr);
	for (size_t i = 0; i < nr; i++) {
		struct hf_volw_frame g = *f;

		memset(&q[i], 0, sizeof(q[i]));
		bad[i] = false;
		got[i] = sent[i];
		if (sent[i])
			hf_remote_submit(&v->remotes[i], &g, &q[i]);
	}
	if (local)
		le = local(v, arg);
	for (size_t i = 0; i < nr; i++)
		if (sent[i] && hf_remote_wait(&v->remotes[i], &q[i])) {
			bool still = false;

			got[i] = false;
			if (copying[i]) {
				/*
				 * Not in sync yet: it holds no write back,
				 * unless its copy ended meanwhile (then it
				 * is in sync and fails as such).
				 */
				pthread_mutex_lock(&v->isr_mu);
				if (v->resyncing[i] && !v->dropped[i]) {
					v->dropped[i] = v->failed_rs[i] = true;
					v->resyncing[i] = false;
				}
				still = !v->dropped[i];
				pthread_mutex_unlock(&v->isr_mu);
				if (!still)
					continue;
			}
			waits = bad[i] = true;
		}
	if (ranged) {
		mark_missing(v, f, got, nr);
		for (size_t i = 0; i < nr; i++)
			if (got[i] && f->type == HF_VOLW_WRITE)
				__atomic_add_fetch(&v->replicated,
						   (int64_t)f->data_len,
						   __ATOMIC_RELAXED);
	}
	for (size_t i = 0; i < nr && waits; i++)
		if (bad[i] && v->remotes[i].fenced)
			return EIO; /* superseded: never acknowledged again */
	if (waits) {
		/*
		 * A replica that failed may lack this write: it is not
		 * acknowledged until that replica left the in-sync set.
		 */
		bool pending = true;

		pthread_mutex_lock(&v->isr_mu);
		if (!v->isr_until_set) {
			hf_deadline_after_ms(&v->isr_until, v->isr_wait_ms);
			v->isr_until_set = true;
		}
		v->isr_waiters++;
		while (pending) {
			pending = false;
			for (size_t i = 0; i < nr; i++)
				pending = pending || (bad[i] && !v->dropped[i]);
			if (pending && pthread_cond_timedwait(&v->isr_cv,
							      &v->isr_mu,
							      &v->isr_until) != 0)
				break;
		}
		if (--v->isr_waiters == 0 && !v->isr_final)
			v->isr_until_set = false;
		pthread_mutex_unlock(&v->isr_mu);
		if (pending)
			e = EIO;
	}
	return le ? le : e;
}

static int remote_read(struct vol *v, uint8_t *dst, uint64_t off,
		       uint32_t len);

#define RS_REGION (1u << 20)   /* a copy's unit: one WRITE or TRIM */
#define RS_STRIPES 64

/* The stripe locks of [off, off + len): at most two, in order. */
static void stripes_lock(struct vol *v, uint64_t off, uint64_t len, bool on)
{
	size_t a = (size_t)(off / RS_REGION) % RS_STRIPES;
	size_t b = (size_t)((off + len - 1) / RS_REGION) % RS_STRIPES;

	if (a > b) {
		size_t t = a;

		a = b;
		b = t;
	}
	if (on) {
		pthread_mutex_lock(&v->stripes[a]);
		if (b != a)
			pthread_mutex_lock(&v->stripes[b]);
	} else {
		if (b != a)
			pthread_mutex_unlock(&v->stripes[b]);
		pthread_mutex_unlock(&v->stripes[a]);
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Copies [off, off + len) (len <= RS_REGION) to remote r under its stripe
 * locks (a write to it waits, so the copy never carries older bytes over
 * newer ones): zeros as TRIM (a hole there), the rest as WRITE. Returns
 * 0 or an errno; *sent gets the WRITE's bytes.
 */
static int copy_range(struct vol *v, struct hf_remote *r, uint8_t *buf,
		      uint64_t off, uint64_t len, int64_t *sent)
{
	struct hf_volw_frame f;
	struct hf_remote_req q;
	int err;

	*sent = 0;
	stripes_lock(v, off, len, true);
	if (v->rfd >= 0) {
		ssize_t n = pread(v->rfd, buf, len, (off_t)off);

		err = n == (ssize_t)len ? 0 : n < 0 ? errno : EIO;
	} else {
		err = remote_read(v, buf, off, (uint32_t)len);
	}
	memset(&f, 0, sizeof(f));
	memset(&q, 0, sizeof(q));
	f.off = off;
	if (all_zero(buf, len)) {
		f.type = HF_VOLW_TRIM;
		f.u.range.len = len;
	} else {
		f.type = HF_VOLW_WRITE;
		f.data = buf;
		f.data_len = (uint32_t)len;
	}
	if (!err && (hf_remote_submit(r, &f, &q) || hf_remote_wait(r, &q)))
		err = EIO;
	stripes_lock(v, off, len, false);
	if (!err && f.type == HF_VOLW_WRITE)
		*sent = (int64_t)len;
	return err;
}

/*
 * Holds copy i back to the rate (resync_rate): done bytes since t0 are
 * due no earlier than done / rate seconds after it. Sleeps in slices of
 * at most 100 ms so that a detach or a drop is not kept waiting.
 */
static void pace(struct vol *v, size_t i, int64_t t0, int64_t done)
{
	int64_t due;

	if (v->resync_rate <= 0)
		return;
	due = t0 + (int64_t)((long double)done * 1000 / v->resync_rate);
	for (int64_t now = hf_mono_ms(); now < due; now = hf_mono_ms()) {
		int64_t ms = due - now < 100 ? due - now : 100;
		bool stop;

		pthread_mutex_lock(&v->isr_mu);
		stop = v->stopping || v->dropped[i] || !v->resyncing[i];
		pthread_mutex_unlock(&v->isr_mu);
		if (stop)
			return;
		hf_sleep_ms(ms);
	}
}

/*
 * The copy of remote i (resyncing). When this process kept what the
 * replica missed (an entry of its generation, §5.3), only those regions
 * are sent; else the whole volume, 1 MiB region by region. Then a FLUSH.
 * Done: the entry starts clean again, resynced[i], reported in
 * status.json for the server. A failure or a detach ends it, the entry
 * kept as it was (the next copy sends its regions again).
 */
/* ---- the activity log (docs/design/volumes.md §5.4) ------------------- */

/*
 * An extent leaves the log once a flush everywhere followed its last
 * write and it has been idle this long (a hot extent stays: entering
 * costs a record on every replica).
 */
#define AL_IDLE_MS 5000
/* Extents after one written in sequence that enter the log with it. */
#define AL_AHEAD 8
/* A TRIM enters the log this many extents at a time. */
#define AL_CHUNK 16

/* The index of extent e in the set, or where it would go. al_mu held. */
static size_t al_find(const struct vol *v, uint64_t e, bool *found)
{
	size_t lo = 0, hi = v->nal;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->al[mid].ext < e)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < v->nal && v->al[lo].ext == e;
	return lo;
}

static bool al_clean(const struct vol *v, const struct al_ext *x)
{
	return x->busy == 0 && x->wseq < v->fdone;
}

/*
 * Room for n more extents: clean ones leave, the longest idle first.
 * al_mu held. False when too few are clean (a flush makes them so).
 */
static bool al_room(struct vol *v, size_t n)
{
	while (v->nal + n > HF_VOL_AL_MAX) {
		size_t best = v->nal;

		for (size_t i = 0; i < v->nal; i++)
			if (al_clean(v, &v->al[i]) &&
			    (best == v->nal ||
			     v->al[i].last_ms < v->al[best].last_ms))
				best = i;
		if (best == v->nal)
			return false;
		memmove(&v->al[best], &v->al[best + 1],
			(v->nal - best - 1) * sizeof(v->al[0]));
		v->nal--;
		v->al_changed = true;
	}
	return true;
}

/* Adds extent e (not busy) unless present; al_mu held, room made. */
static struct al_ext *al_add(struct vol *v, uint64_t e, int64_t now)
{
	bool found;
	size_t at = al_find(v, e, &found);

	if (!found) {
		memmove(&v->al[at + 1], &v->al[at],
			(v->nal - at) * sizeof(v->al[0]));
		v->al[at] = (struct al_ext){e, 0, 0, now, false};
		v->nal++;
	}
	return &v->al[at];
}

/*
 * The record of the log as it is: this epoch, the in-sync replicas with
 * their generations (the local one first; one of unknown generation is
 * left out: it would be copied whole anyway), and every extent. extra,
 * a remote whose copy just ended, counts as in sync. al_mu held; isr_mu
 * is taken under it.
 */
static void al_record(struct vol *v, const struct hf_remote *extra,
		      struct hf_vol_al *a)
{
	size_t nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);

	memset(a, 0, sizeof(*a));
	a->epoch = (uint64_t)v->epoch;
	if (v->rfd >= 0 && v->fence_replica &&
	    !hf_vol_gen_is_zero(&v->local_gen)) {
		snprintf(a->members[0].id, sizeof(a->members[0].id), "%s",
			 v->fence_replica);
		a->members[0].gen = v->local_gen;
		a->nmembers = 1;
	}
	pthread_mutex_lock(&v->isr_mu);
	for (size_t i = 0; i < nr && a->nmembers < HF_VOL_AL_MEMBERS; i++) {
		const struct hf_remote *r = &v->remotes[i];
		bool dup = false;

		if ((v->dropped[i] || v->resyncing[i]) && r != extra)
			continue;
		if (hf_vol_gen_is_zero(&r->gen))
			continue;
		for (unsigned k = 0; k < a->nmembers; k++)
			dup = dup || strcmp(a->members[k].id, r->replica) == 0;
		if (dup)
			continue;
		snprintf(a->members[a->nmembers].id,
			 sizeof(a->members[0].id), "%s", r->replica);
		a->members[a->nmembers++].gen = r->gen;
	}
	pthread_mutex_unlock(&v->isr_mu);
	for (size_t i = 0; i < v->nal; i++)
		a->extents[a->count++] = v->al[i].ext;
}

static int al_store_local(struct vol *v, void *arg)
{
	struct hf_vol_al *a = arg;
	int rc;

	if (v->al_fd < 0)
		return 0;
	a->seq = ++v->al_seq;
	rc = hf_vol_al_store(v->al_fd, a);
	return rc < 0 ? -rc : 0;
}

/*
 * Writes the log's record to every replica (AL frames to the remotes,
 * the local `al` file meanwhile) unless every extent is in one already
 * and none left (force: always). Returns 0 or an errno (fan_out's: a
 * remote that fails holds it until the server took that one out of the
 * in-sync set). The caller holds add_lock shared.
 */
static int al_commit(struct vol *v, const struct hf_remote *extra, bool force)
{
	struct hf_vol_al *a = hf_xmalloc(sizeof(*a));
	struct hf_volw_frame f;
	uint8_t *bulk;
	bool need = force;
	int e = 0;

	pthread_mutex_lock(&v->al_wmu);
	pthread_mutex_lock(&v->al_mu);
	need = need || v->al_changed;
	for (size_t i = 0; i < v->nal && !need; i++)
		need = !v->al[i].stored;
	if (need) {
		al_record(v, extra, a);
		v->al_changed = false;
	}
	pthread_mutex_unlock(&v->al_mu);
	if (!need || a->nmembers == 0)
		goto done;
	bulk = hf_xmalloc((size_t)a->count * 8 + 1);
	for (uint32_t i = 0; i < a->count; i++)
		hf_vol_put64(bulk + 8 * i, a->extents[i]);
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_AL;
	f.u.al.nmembers = a->nmembers;
	memcpy(f.u.al.members, a->members,
	       sizeof(a->members[0]) * a->nmembers);
	f.u.al.count = a->count;
	f.data = bulk;
	f.data_len = a->count * 8;
	e = fan_out(v, &f, al_store_local, a);
	free(bulk);
done:
	pthread_mutex_lock(&v->al_mu);
	if (e) {
		v->al_changed = true; /* the next write tries again */
	} else if (need) {
		for (uint32_t i = 0; i < a->count; i++) {
			bool found;
			size_t at = al_find(v, a->extents[i], &found);

			if (found)
				v->al[at].stored = true;
		}
	}
	pthread_mutex_unlock(&v->al_mu);
	pthread_mutex_unlock(&v->al_wmu);
	free(a);
	return e;
}

static int flush_all(struct vol *v);

/*
 * Before a write or TRIM of [off, off + len) (at most AL_CHUNK extents)
 * goes to any replica: its extents in the log, and the log on every
 * replica. An extent following one in the log enters with AL_AHEAD
 * more (a sequential writer pays one record per AL_AHEAD extents).
 * Returns 0 (al_leave must follow) or an errno (nothing to undo).
 */
static int al_enter(struct vol *v, uint64_t off, uint64_t len)
{
	uint64_t first = off / HF_VOL_EXTENT_SIZE;
	uint64_t last = (off + len - 1) / HF_VOL_EXTENT_SIZE;
	uint64_t end = ((uint64_t)v->size + HF_VOL_EXTENT_SIZE - 1) /
		       HF_VOL_EXTENT_SIZE;
	int64_t now = hf_mono_ms();
	bool need = false;
	int e;

	for (int tries = 0;; tries++) {
		bool found, ahead = false;
		size_t want = (size_t)(last - first + 1);

		pthread_mutex_lock(&v->al_mu);
		if (first > 0) {
			al_find(v, first - 1, &found);
			ahead = found;
		}
		if (al_room(v, want + (ahead ? AL_AHEAD : 0))) {
			for (uint64_t x = first; x <= last; x++)
				al_add(v, x, now)->busy++;
			for (uint64_t x = last + 1;
			     ahead && x <= last + AL_AHEAD && x < end; x++)
				al_add(v, x, now);
			for (uint64_t x = first; x <= last && !need; x++)
				need = !v->al[al_find(v, x, &found)].stored;
			pthread_mutex_unlock(&v->al_mu);
			break;
		}
		pthread_mutex_unlock(&v->al_mu);
		/* Every extent has writes not yet flushed: flush them. */
		if (tries || (e = flush_all(v)))
			return tries ? EIO : e;
	}
	if (need && (e = al_commit(v, NULL, false))) {
		pthread_mutex_lock(&v->al_mu);
		for (uint64_t x = first; x <= last; x++) {
			bool found;
			size_t at = al_find(v, x, &found);

			if (found)
				v->al[at].busy--;
		}
		pthread_mutex_unlock(&v->al_mu);
		return e;
	}
	return 0;
}

/* After the write al_enter let through ended (well or not). */
static void al_leave(struct vol *v, uint64_t off, uint64_t len)
{
	uint64_t first = off / HF_VOL_EXTENT_SIZE;
	uint64_t last = (off + len - 1) / HF_VOL_EXTENT_SIZE;
	uint64_t seq = __atomic_load_n(&v->fstart, __ATOMIC_ACQUIRE);
	int64_t now = hf_mono_ms();

	pthread_mutex_lock(&v->al_mu);
	for (uint64_t x = first; x <= last; x++) {
		bool found;
		size_t at = al_find(v, x, &found);

		if (!found)
			continue;
		v->al[at].busy--;
		v->al[at].wseq = seq;
		v->al[at].last_ms = now;
	}
	pthread_mutex_unlock(&v->al_mu);
}

/*
 * Extents flushed everywhere and idle for AL_IDLE_MS (all: idle or not)
 * leave the log (a record without them). The keepalive thread's, once a
 * second; and once the new file system is made and flushed.
 */
static void al_trim(struct vol *v, bool all)
{
	int64_t now = hf_mono_ms();
	bool changed;
	size_t k = 0;

	pthread_mutex_lock(&v->al_mu);
	for (size_t i = 0; i < v->nal; i++) {
		if (al_clean(v, &v->al[i]) &&
		    (all || now - v->al[i].last_ms >= AL_IDLE_MS))
			continue;
		v->al[k++] = v->al[i];
	}
	if (k != v->nal)
		v->al_changed = true;
	v->nal = k;
	changed = v->al_changed;
	pthread_mutex_unlock(&v->al_mu);
	if (changed) {
		pthread_rwlock_rdlock(&v->add_lock);
		al_commit(v, NULL, false);
		pthread_rwlock_unlock(&v->add_lock);
	}
}

/*
 * At start, before anything is mounted and with no other thread: the
 * local replica's last record says which extents the primary before
 * (or this epoch's process before this one) may have written without a
 * flush everywhere. If the record lists the local replica at its
 * present generation, those extents go at once to every remote in sync
 * (so that no two in-sync replicas differ there), and each replica the
 * record lists that is not in sync now gets an entry of what it misses:
 * those extents, then whatever this process writes while it is away. It
 * is sent them, not the whole volume, when it comes back at that
 * generation. Then this epoch's first record, with no extent, goes to
 * every replica in sync; a remote that takes neither is left out of the
 * in-sync set (asked of the server).
 */
static void al_start(struct vol *v)
{
	struct hf_vol_al *r = hf_xcalloc(1, sizeof(*r));
	const struct hf_vol_al_member *me;
	uint8_t *buf = NULL;
	bool use = false;

	v->al = hf_xcalloc(HF_VOL_AL_MAX, sizeof(v->al[0]));
	if (v->rfd >= 0 && v->replica) {
		char *dir = hf_xstrdup(v->replica), *slash = strrchr(dir, '/');
		char *path;

		if (slash && slash != dir)
			*slash = '\0';
		path = hf_xasprintf("%s/al", dir);
		v->al_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
				0600);
		if (v->al_fd < 0)
			hf_log("%s: %s; the next primary copies more after a "
			       "failover", path, strerror(errno));
		free(path);
		free(dir);
	}
	if (v->al_fd >= 0 && hf_vol_al_load(v->al_fd, r) == 0) {
		v->al_seq = r->seq;
		me = v->fence_replica ? hf_vol_al_member(r, v->fence_replica)
				      : NULL;
		use = me && !hf_vol_gen_is_zero(&v->local_gen) &&
		      hf_vol_gen_equal(&me->gen, &v->local_gen) &&
		      r->epoch <= (uint64_t)v->epoch;
	}
	if (use) {
		uint64_t bytes = 0;

		buf = hf_xmalloc(RS_REGION);
		for (uint32_t k = 0; k < r->count; k++)
			if (r->extents[k] * HF_VOL_EXTENT_SIZE <
			    (uint64_t)v->size)
				bytes += HF_VOL_EXTENT_SIZE;
		hf_log("activity log of epoch %llu: %u extents (%llu bytes) "
		       "may differ between the replicas it lists",
		       (unsigned long long)r->epoch, r->count,
		       (unsigned long long)bytes);
		for (size_t i = 0; i < v->nremotes && r->count; i++) {
			struct hf_remote *rm = &v->remotes[i];
			int err = 0;

			if (v->dropped[i] || v->resyncing[i])
				continue;
			for (uint32_t k = 0; k < r->count && !err; k++) {
				uint64_t o = r->extents[k] * HF_VOL_EXTENT_SIZE;

				for (uint64_t at = o;
				     !err && at < o + HF_VOL_EXTENT_SIZE &&
				     at < (uint64_t)v->size;
				     at += RS_REGION) {
					uint64_t n = (uint64_t)v->size - at;
					int64_t sent;

					err = copy_range(v, rm, buf, at,
							 n < RS_REGION
							     ? n
							     : RS_REGION,
							 &sent);
					v->rs_sent += sent;
				}
			}
			if (err) {
				hf_log("replica %s on node %s: cannot send it "
				       "the activity log's extents: asking to "
				       "take it out of the in-sync set",
				       rm->replica, rm->node);
				v->dropped[i] = v->failed_rs[i] = true;
			} else {
				hf_log("replica %s on node %s: sent it the "
				       "activity log's extents",
				       rm->replica, rm->node);
			}
		}
		for (unsigned m = 0; r->epoch < (uint64_t)v->epoch &&
				     m < r->nmembers; m++) {
			const char *id = r->members[m].id;
			bool live = strcmp(id, v->fence_replica) == 0;
			struct missed *had;

			for (size_t i = 0; i < v->nremotes && !live; i++)
				live = strcmp(v->remotes[i].replica, id) == 0 &&
				       !v->dropped[i] && !v->resyncing[i];
			pthread_mutex_lock(&v->miss_mu);
			had = missed_of(v, id);
			pthread_mutex_unlock(&v->miss_mu);
			if (live || had)
				continue;
			track(v, id, &r->members[m].gen);
			for (uint32_t k = 0; k < r->count; k++) {
				uint64_t o = r->extents[k] * HF_VOL_EXTENT_SIZE;

				if (o < (uint64_t)v->size)
					miss_id(v, id, o,
						(uint64_t)v->size - o <
							HF_VOL_EXTENT_SIZE
						    ? (uint64_t)v->size - o
						    : HF_VOL_EXTENT_SIZE);
			}
			hf_log("replica %s is out of sync: it misses the "
			       "activity log's extents and what is written "
			       "from now on, no more (a resync sends it "
			       "those)", id);
		}
		miss_sync(v);
	}
	free(buf);
	/* This epoch's first record. */
	{
		struct hf_vol_al *a = r;
		struct hf_volw_frame f;

		memset(&f, 0, sizeof(f));
		al_record(v, NULL, a);
		if (a->nmembers) {
			int le = al_store_local(v, a);

			if (le)
				hf_log("the local activity log: %s",
				       strerror(le));
			f.type = HF_VOLW_AL;
			f.u.al.nmembers = a->nmembers;
			memcpy(f.u.al.members, a->members,
			       sizeof(a->members[0]) * a->nmembers);
			for (size_t i = 0; i < v->nremotes; i++) {
				struct hf_remote_req q;
				struct hf_volw_frame g = f;

				if (v->dropped[i])
					continue;
				memset(&q, 0, sizeof(q));
				if (hf_remote_submit(&v->remotes[i], &g, &q) ||
				    hf_remote_wait(&v->remotes[i], &q)) {
					hf_log("replica %s on node %s: it "
					       "takes no activity log: asking "
					       "to take it out of the in-sync "
					       "set",
					       v->remotes[i].replica,
					       v->remotes[i].node);
					v->dropped[i] = v->failed_rs[i] = true;
					v->resyncing[i] = false;
				}
			}
		}
	}
	free(r);
}

static void *resync_thread(void *arg)
{
	struct rs_arg *a = arg;
	struct vol *v = a->v;
	size_t i = a->i;
	struct hf_remote *r = &v->remotes[i];
	uint8_t *buf = hf_xmalloc(RS_REGION);
	int64_t last = hf_mono_ms(), t0 = last, total, done = 0;
	struct hf_vol_bitmap plan = {0};
	bool partial = false;
	uint64_t from = 0;
	int err = 0;

	free(a);
	pthread_mutex_lock(&v->miss_mu);
	{
		struct missed *m = missed_of(v, r->replica);

		/* The regions to send: a copy of the entry as it is now. */
		partial = m && !m->broken && !hf_vol_gen_is_zero(&r->gen) &&
			  hf_vol_gen_equal(&m->gen, &r->gen) &&
			  hf_vol_bitmap_init(&plan, (uint64_t)v->size) == 0;
		if (partial)
			hf_vol_bitmap_union(&plan, &m->bm);
	}
	pthread_mutex_unlock(&v->miss_mu);
	total = partial ? (int64_t)hf_vol_bitmap_dirty_bytes(&plan) : v->size;
	pthread_mutex_lock(&v->isr_mu);
	v->rs_total[i] = total;
	v->rs_done[i] = 0;
	v->rs_planned += total;
	pthread_mutex_unlock(&v->isr_mu);
	if (partial)
		hf_log("replica %s on node %s: sending it the %lld bytes it "
		       "missed", r->replica, r->node, (long long)total);
	else
		hf_log("replica %s on node %s: copying the whole volume to it",
		       r->replica, r->node);
	for (;;) {
		uint64_t off, len;
		int64_t sent = 0;
		bool stop;

		if (partial) {
			if (!hf_vol_bitmap_next(&plan, from, RS_REGION, &off,
						&len))
				break;
		} else {
			if (from >= (uint64_t)v->size)
				break;
			off = from;
			len = (uint64_t)v->size - off < RS_REGION
				  ? (uint64_t)v->size - off
				  : RS_REGION;
		}
		from = off + len;
		pthread_mutex_lock(&v->isr_mu);
		stop = v->stopping || v->dropped[i] || !v->resyncing[i];
		pthread_mutex_unlock(&v->isr_mu);
		if (stop) {
			err = ECANCELED;
			break;
		}
		err = copy_range(v, r, buf, off, len, &sent);
		done += (int64_t)len;
		if (!err)
			pace(v, i, t0, done);
		pthread_mutex_lock(&v->isr_mu);
		v->rs_done[i] = done < total ? done : total;
		v->rs_sent += sent;
		pthread_mutex_unlock(&v->isr_mu);
		if (err)
			break;
		if (hf_mono_ms() - last > 1000) {
			last = hf_mono_ms();
			publish(v, "ready", NULL);
		}
	}
	if (!err) {
		struct hf_volw_frame f;
		struct hf_remote_req q;

		memset(&f, 0, sizeof(f));
		memset(&q, 0, sizeof(q));
		f.type = HF_VOLW_FLUSH;
		if (hf_remote_submit(r, &f, &q) || hf_remote_wait(r, &q))
			err = EIO;
	}
	/*
	 * Before it counts as in sync, every replica (it too) holds a
	 * record that lists it: an older one it kept would otherwise tell
	 * it, as a later primary, that replicas missed less than they did.
	 */
	if (!err) {
		pthread_rwlock_rdlock(&v->add_lock);
		if (al_commit(v, r, true))
			err = EIO;
		pthread_rwlock_unlock(&v->add_lock);
	}
	pthread_mutex_lock(&v->isr_mu);
	if (!err && v->resyncing[i] && !v->dropped[i]) {
		/*
		 * From now on an ordinary in-sync remote: it misses nothing.
		 * Under isr_mu, so a write that failed on it after this
		 * marks its entry after this reset, not before.
		 */
		v->resyncing[i] = false;
		v->resynced[i] = true;
		track(v, r->replica, &r->gen);
	} else if (err != ECANCELED && !v->dropped[i]) {
		v->dropped[i] = v->failed_rs[i] = true;
		v->resyncing[i] = false;
	}
	pthread_cond_broadcast(&v->isr_cv);
	pthread_mutex_unlock(&v->isr_mu);
	__atomic_sub_fetch(&v->resyncs, 1, __ATOMIC_RELEASE);
	hf_log("replica %s on node %s: %s", r->replica, r->node,
	       !err ? "resynced: it holds every write"
	       : err == ECANCELED ? "copy stopped"
				  : "copy failed");
	hf_vol_bitmap_release(&plan);
	free(buf);
	publish(v, "ready", NULL);
	return NULL;
}

/*
 * A remote attach.json lists that no live slot has: one to resync. It is
 * connected (HELLO at our epoch), then, with no write half-way
 * (add_lock), made visible to writes and its copy started. One that
 * cannot be reached is reported as a failed copy.
 */
static void add_remote(struct vol *v, json_t *e)
{
	const char *id = json_string_value(json_object_get(e, "replica"));
	const char *addr = json_string_value(json_object_get(e, "address"));
	const char *node = json_string_value(json_object_get(e, "node"));
	json_int_t port = json_integer_value(json_object_get(e, "port"));
	size_t n = v->nremotes;
	struct hf_remote *r;
	struct rs_arg *a;
	char err[512];

	if (!id || !addr || !node || port < 1 || port > 65535 || !id_ok(id) ||
	    !v->have_ticket)
		return;
	for (size_t i = 0; i < n; i++)
		if (!v->dropped[i] && strcmp(v->remotes[i].replica, id) == 0)
			return; /* known and live */
	/* Earlier slots of it are history: neither failed nor resynced. */
	pthread_mutex_lock(&v->isr_mu);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v->remotes[i].replica, id) == 0)
			v->failed_rs[i] = v->resynced[i] = false;
	pthread_mutex_unlock(&v->isr_mu);
	if (n >= HF_VOL_MAX_PEERS) {
		hf_log("replica %s: no room for one more remote (%d)", id,
		       HF_VOL_MAX_PEERS);
		return;
	}
	r = &v->remotes[n];
	r->address = hf_xstrdup(addr);
	r->port = (int)port;
	r->replica = hf_xstrdup(id);
	r->node = hf_xstrdup(node);
	if (hf_remote_connect(r, v->id, (uint64_t)v->epoch, v->node, v->ticket,
			      (uint64_t)v->size, err, sizeof(err))) {
		hf_log("replica %s on node %s: cannot resync it: %s", id, node,
		       err);
		pthread_mutex_lock(&v->isr_mu);
		v->dropped[n] = v->failed_rs[n] = true;
		pthread_mutex_unlock(&v->isr_mu);
		__atomic_store_n(&v->nremotes, n + 1, __ATOMIC_RELEASE);
		return;
	}
	r->on_dead = remote_died;
	r->on_dead_arg = v;
	pthread_rwlock_wrlock(&v->add_lock);
	pthread_mutex_lock(&v->isr_mu);
	v->resyncing[n] = true;
	pthread_mutex_unlock(&v->isr_mu);
	__atomic_add_fetch(&v->resyncs, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&v->nremotes, n + 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&v->add_lock);
	a = hf_xmalloc(sizeof(*a));
	a->v = v;
	a->i = n;
	if (pthread_create(&v->rs_threads[n], NULL, resync_thread, a) == 0) {
		v->rs_thread_on[n] = true;
	} else {
		free(a);
		pthread_mutex_lock(&v->isr_mu);
		v->dropped[n] = v->failed_rs[n] = true;
		v->resyncing[n] = false;
		pthread_mutex_unlock(&v->isr_mu);
		__atomic_sub_fetch(&v->resyncs, 1, __ATOMIC_RELEASE);
	}
}

/*
 * attach.json again (SIGHUP from the agent): the remotes it no longer
 * lists, at the same epoch, left the in-sync set; writes waiting for them
 * go on. Anything else that changed is ignored (a new epoch is a new
 * process).
 */
static void reload_isr(struct vol *v)
{
	char *path = hf_xasprintf("%s/attach.json", v->dir);
	json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	json_t *rs = o ? json_object_get(o, "remotes") : NULL;
	json_t *ep = o ? json_object_get(o, "epoch") : NULL;
	json_t *sz;

	if (!o || !json_is_integer(ep) || json_integer_value(ep) != v->epoch ||
	    (rs && !json_is_array(rs))) {
		hf_log("reload: %s is unreadable or of another epoch: nothing "
		       "changes", path);
		goto out;
	}
	pthread_mutex_lock(&v->isr_mu);
	for (size_t i = 0; i < v->nremotes; i++) {
		struct hf_remote *r = &v->remotes[i];
		bool listed = false;
		size_t k;
		json_t *e;

		json_array_foreach(rs, k, e) {
			const char *id = json_string_value(
			    json_object_get(e, "replica"));

			listed = listed || (id && strcmp(id, r->replica) == 0);
		}
		if (!listed)
			v->resynced[i] = false; /* its word is old now */
		if (!listed && !v->dropped[i]) {
			v->dropped[i] = true;
			hf_log("replica %s on node %s left the in-sync set",
			       r->replica, r->node);
		}
	}
	pthread_cond_broadcast(&v->isr_cv);
	pthread_mutex_unlock(&v->isr_mu);
	{
		size_t k;
		json_t *e;

		json_array_foreach(rs, k, e)
			add_remote(v, e);
	}
	snap_requests(v, json_object_get(o, "snapshots"), NULL);
	reload_dr(v, json_is_object(json_object_get(o, "dr"))
			 ? json_object_get(o, "dr")
			 : NULL);
	sz = json_object_get(o, "size");
	if (json_is_integer(sz) && json_integer_value(sz) > v->grow_to &&
	    json_integer_value(sz) > v->size) {
		if (json_integer_value(sz) % BLOCK)
			hf_log("reload: a size of %lld bytes is no multiple of "
			       "4096: not grown",
			       (long long)json_integer_value(sz));
		else
			v->grow_to = json_integer_value(sz);
	}
	publish(v, "ready", NULL);
out:
	json_decref(o);
	free(path);
}

/* Reads [off, off + len) (aligned, len <= HF_VOL_DATA_MAX) from a remote. */
static int remote_read(struct vol *v, uint8_t *dst, uint64_t off,
		       uint32_t len)
{
	size_t nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);

	for (size_t i = 0; i < nr; i++) {
		struct hf_remote *r = &v->remotes[i];
		struct hf_remote_req q;
		struct hf_volw_frame f;

		bool dropped;

		pthread_mutex_lock(&v->isr_mu);
		dropped = v->dropped[i] || v->resyncing[i];
		pthread_mutex_unlock(&v->isr_mu);
		if (dropped || hf_remote_dead(r, NULL, 0))
			continue;
		memset(&f, 0, sizeof(f));
		memset(&q, 0, sizeof(q));
		f.type = HF_VOLW_READ;
		f.off = off;
		f.u.range.len = len;
		q.dst = dst;
		q.dst_len = len;
		if (hf_remote_submit(r, &f, &q) == 0 &&
		    hf_remote_wait(r, &q) == 0)
			return 0;
	}
	return EIO;
}

/* ---- the FUSE file ---------------------------------------------------- */

static void fill_attr(const struct vol *v, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		st->st_size = __atomic_load_n(&v->size, __ATOMIC_ACQUIRE);
		st->st_blksize = BLOCK;
		st->st_blocks = st->st_size / 512;
	}
}

static void op_init(void *data, struct fuse_conn_info *conn)
{
	/*
	 * Never the writeback cache: it would acknowledge writes before
	 * they reached the replica. A loop request of 1 MiB is one write.
	 */
	struct vol *v = data;

	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Remote writes need the bytes in memory, not in a pipe. */
	if (v->nremotes)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	if (conn->max_write < (1u << 20))
		conn->max_write = 1u << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vol *v = fuse_req_userdata(req);
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "vol") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = VOL_INO;
	e.attr_timeout = e.entry_timeout = 3600;
	fill_attr(v, VOL_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vol *v = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID && ino != VOL_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(v, ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != VOL_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* No page cache in FUSE: the loop device does direct I/O already. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

static bool in_range(const struct vol *v, off_t off, size_t len)
{
	int64_t size = __atomic_load_n(&v->size, __ATOMIC_ACQUIRE);

	return off >= 0 && (int64_t)off <= size &&
	       (int64_t)len <= size - (int64_t)off;
}

/* Reads [off, off + len) of the local replica; holes read as zeros. */
static int local_read(struct vol *v, uint8_t *dst, uint64_t off, size_t len)
{
	while (len) {
		ssize_t k = pread(v->rfd, dst, len, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno;
		if (k == 0) {
			/* Past a short file's end: never written. */
			memset(dst, 0, len);
			return 0;
		}
		dst += k;
		off += (uint64_t)k;
		len -= (size_t)k;
	}
	return 0;
}

/*
 * A read through a buffer: the aligned range around [off, off + size), a
 * frame of up to HF_VOL_DATA_MAX at a time, from a remote replica (a node
 * without one) or the local one, decrypted when the volume is secure.
 */
static void op_read_blocks(fuse_req_t req, struct vol *v, size_t size,
			   off_t off)
{
	uint64_t start = (uint64_t)off & ~(uint64_t)(BLOCK - 1);
	uint64_t end = ((uint64_t)off + size + BLOCK - 1) & ~(uint64_t)(BLOCK - 1);
	uint8_t *out, *tmp = buf_take(v);
	int e = 0;

	if (end - start > (uint64_t)HF_VOL_DATA_MAX) {
		/* Larger than max_read would allow: the kernel never asks. */
		buf_put(v, tmp);
		fuse_reply_err(req, EINVAL);
		return;
	}
	out = tmp;
	if (v->rfd >= 0)
		e = local_read(v, out, start, (size_t)(end - start));
	else
		e = remote_read(v, out, start, (uint32_t)(end - start));
	if (!e && v->secure &&
	    hf_vol_decrypt(&v->crypt, start, out, out, (size_t)(end - start)))
		e = EIO;
	if (e)
		fuse_reply_err(req, e);
	else
		fuse_reply_buf(req, (const char *)out + ((uint64_t)off - start),
			       size);
	buf_put(v, tmp);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vol *v = fuse_req_userdata(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	int64_t vsize = __atomic_load_n(&v->size, __ATOMIC_ACQUIRE);

	if (off >= vsize) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((int64_t)size > vsize - off)
		size = (size_t)(vsize - off);
	if (v->rfd < 0 || v->secure) {
		op_read_blocks(req, v, size, off);
		return;
	}
	buf.buf[0].size = size;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = v->rfd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * The local replica's file system is full: the write fails with ENOSPC
 * (the task sees it through ext4), counted in status.json's "nospace",
 * which the server turns into an event. Logged at the first and then at
 * most once a minute.
 */
static void no_space(struct vol *v)
{
	static int64_t logged;
	int64_t n = __atomic_add_fetch(&v->nospace, 1, __ATOMIC_RELAXED);
	int64_t now = hf_mono_ms(), last = __atomic_load_n(&logged,
							    __ATOMIC_RELAXED);

	if (n > 1 && now - last < 60000)
		return;
	__atomic_store_n(&logged, now, __ATOMIC_RELAXED);
	hf_log("the local replica %s: no space left on its file system; "
	       "writes fail with ENOSPC (%lld so far)",
	       v->replica ? v->replica : "-", (long long)n);
	publish(v, "ready", NULL);
}

struct local_write {
	const uint8_t *p;
	size_t len;
	off_t off;
};

static int local_write(struct vol *v, void *arg)
{
	struct local_write *w = arg;
	const uint8_t *p = w->p;
	size_t n = w->len;
	off_t off = w->off;
	int ce;

	if (v->rfd < 0)
		return 0;
	if ((ce = hf_snaps_before_write(v->snaps, (uint64_t)off, n)))
		return ce;
	while (n) {
		ssize_t k = pwrite(v->rfd, p, n, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;

			if (e == ENOSPC)
				no_space(v);
			return e;
		}
		p += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

/*
 * A write with remote replicas: WRITE to each (pipelined), pwrite of the
 * local replica meanwhile, then every acknowledgement, then the reply.
 */
static void op_write_remote(fuse_req_t req, struct vol *v,
			    struct fuse_bufvec *in, off_t off, size_t len)
{
	uint8_t *tmp = NULL;
	const uint8_t *data;
	int e = 0;

	if (off % BLOCK || len % BLOCK || len == 0 || len > HF_VOL_DATA_MAX) {
		/* The loop device's 4096-byte blocks never do this. */
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD) &&
	    !v->secure) {
		data = (const uint8_t *)in->buf[0].mem + in->off;
	} else {
		struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);
		ssize_t n;

		tmp = buf_take(v);
		mem.buf[0].mem = tmp;
		n = fuse_buf_copy(&mem, in, 0);
		if (n != (ssize_t)len) {
			buf_put(v, tmp);
			fuse_reply_err(req, n < 0 ? (int)-n : EIO);
			return;
		}
		if (v->secure &&
		    hf_vol_encrypt(&v->crypt, (uint64_t)off, tmp, tmp, len)) {
			buf_put(v, tmp);
			fuse_reply_err(req, EIO);
			return;
		}
		data = tmp;
	}
	{
		struct hf_volw_frame f;
		struct local_write w = {data, len, off};

		memset(&f, 0, sizeof(f));
		f.type = HF_VOLW_WRITE;
		f.off = (uint64_t)off;
		f.data = data;
		f.data_len = (uint32_t)len;
		if (!(e = al_enter(v, (uint64_t)off, len))) {
			e = fan_out(v, &f, local_write, &w);
			/* In the stream before the answer: in causal order. */
			if (!e && v->ship)
				hf_ship_write(v->ship, (uint64_t)off, data, len);
			al_leave(v, (uint64_t)off, len);
		}
	}
	if (tmp)
		buf_put(v, tmp);
	if (e) {
		fuse_reply_err(req, e);
	} else {
		__atomic_add_fetch(&v->written, (int64_t)len,
				   __ATOMIC_RELAXED);
		fuse_reply_write(req, len);
	}
}

static void write_buf(fuse_req_t req, struct fuse_bufvec *in, off_t off);

/*
 * Whether writes take the replicated path (fan_out): with remotes, and
 * also without any while a replica away has an entry (what it misses is
 * marked there; the activity log is kept).
 */
static bool replicated(struct vol *v)
{
	return __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&v->nmissed, __ATOMIC_ACQUIRE) || v->ship;
}

/*
 * A write of a secure volume to its local replica alone: encrypted in a
 * buffer, then pwritten. Returns the bytes written or -errno.
 */
static ssize_t write_secure(struct vol *v, struct fuse_bufvec *in, off_t off,
			    size_t len)
{
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);
	struct local_write w;
	uint8_t *tmp;
	ssize_t n;
	int e;

	if (off % BLOCK || len % BLOCK || len > HF_VOL_DATA_MAX)
		return -EINVAL; /* the loop device's blocks never do this */
	tmp = buf_take(v);
	mem.buf[0].mem = tmp;
	n = fuse_buf_copy(&mem, in, 0);
	if (n == (ssize_t)len &&
	    hf_vol_encrypt(&v->crypt, (uint64_t)off, tmp, tmp, len))
		n = -EIO;
	else if (n == (ssize_t)len) {
		w = (struct local_write){tmp, len, off};
		e = local_write(v, &w);
		n = e ? -e : (ssize_t)len;
	} else if (n >= 0) {
		n = -EIO;
	}
	buf_put(v, tmp);
	return n;
}

/* A write, timed from its receipt to its answer (write_us). */
static void op_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct vol *v = fuse_req_userdata(req);
	int64_t t0 = hf_mono_ns(), us;

	write_buf(req, in, off);
	us = (hf_mono_ns() - t0) / 1000;
	__atomic_add_fetch(&v->write_us[hf_vol_lat_bucket(us)], 1,
			   __ATOMIC_RELAXED);
	__atomic_add_fetch(&v->write_us_sum, us, __ATOMIC_RELAXED);
}

static void write_buf(fuse_req_t req, struct fuse_bufvec *in, off_t off)
{
	struct vol *v = fuse_req_userdata(req);
	size_t len = fuse_buf_size(in);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
	ssize_t n;

	if (!in_range(v, off, len)) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	pthread_rwlock_rdlock(&v->add_lock);
	if (replicated(v)) {
		bool copying = __atomic_load_n(&v->resyncs, __ATOMIC_ACQUIRE) > 0;

		if (copying && len)
			stripes_lock(v, (uint64_t)off, len, true);
		op_write_remote(req, v, in, off, len);
		if (copying && len)
			stripes_lock(v, (uint64_t)off, len, false);
		pthread_rwlock_unlock(&v->add_lock);
		return;
	}
	if (v->secure) {
		n = write_secure(v, in, off, len);
	} else if ((n = hf_snaps_before_write(v->snaps, (uint64_t)off, len))) {
		n = -n;
	} else {
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = v->rfd;
		out.buf[0].pos = off;
		n = fuse_buf_copy(&out, in, 0);
	}
	pthread_rwlock_unlock(&v->add_lock);
	if (n == -ENOSPC)
		no_space(v);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
	} else {
		__atomic_add_fetch(&v->written, (int64_t)n, __ATOMIC_RELAXED);
		fuse_reply_write(req, (size_t)n);
	}
}

static int local_flush(struct vol *v, void *arg)
{
	int e, me;

	/*
	 * Not the DR journal's records: they need no sync of their own
	 * (ship.h, "Durability").
	 */
	e = v->rfd >= 0 && fdatasync(v->rfd) < 0 ? errno : 0;
	me = miss_sync(v);

	if (e == ENOSPC || me == ENOSPC)
		no_space(v);
	return e ? e : me;
}

/*
 * FLUSH to every remote, fdatasync of the local replica meanwhile: 0 only
 * when every replica has made every acknowledged write durable.
 */
static int flush_all(struct vol *v)
{
	struct hf_volw_frame f;
	uint64_t my = __atomic_add_fetch(&v->fstart, 1, __ATOMIC_ACQ_REL);
	int e;

	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_FLUSH;
	e = fan_out(v, &f, local_flush, NULL);
	if (!e) {
		/* Writes that ended before it started are durable everywhere. */
		pthread_mutex_lock(&v->al_mu);
		if (my > v->fdone)
			v->fdone = my;
		pthread_mutex_unlock(&v->al_mu);
	}
	return e;
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct vol *v = fuse_req_userdata(req);

	fuse_reply_err(req, flush_all(v));
}

static void op_flush(fuse_req_t req, fuse_ino_t ino,
		     struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

struct local_trim {
	int mode;
	off_t off, len;
};

static int local_trim(struct vol *v, void *arg)
{
	struct local_trim *t = arg;
	int e;

	if (v->rfd < 0)
		return 0;
	if ((e = hf_snaps_before_write(v->snaps, (uint64_t)t->off,
				       (uint64_t)t->len)))
		return e;
	return fallocate(v->rfd, t->mode | FALLOC_FL_KEEP_SIZE, t->off,
			 t->len) < 0
		       ? errno
		       : 0;
}

/*
 * TRIM of [off, off + len) (at most AL_CHUNK extents) on every replica,
 * in the activity log first; region by region while a copy runs (so the
 * copy and the discard never interleave within one).
 */
static int trim_part(struct vol *v, int mode, uint64_t off, uint64_t len,
		     bool copying)
{
	struct hf_volw_frame f;
	struct local_trim t = {mode, (off_t)off, (off_t)len};
	int e;

	if ((e = al_enter(v, off, len)))
		return e;
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_TRIM;
	f.off = off;
	f.u.range.len = len;
	if (copying) {
		for (uint64_t o = off; o < off + len && !e;) {
			uint64_t end = (o / RS_REGION + 1) * RS_REGION;
			struct local_trim pt = {mode, (off_t)o, 0};

			if (end > off + len)
				end = off + len;
			pt.len = (off_t)(end - o);
			f.off = o;
			f.u.range.len = end - o;
			stripes_lock(v, o, end - o, true);
			e = fan_out(v, &f, local_trim, &pt);
			stripes_lock(v, o, end - o, false);
			o = end;
		}
	} else {
		e = fan_out(v, &f, local_trim, &t);
	}
	if (!e && v->ship)
		hf_ship_trim(v->ship, off, len);
	al_leave(v, off, len);
	return e;
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct vol *v = fuse_req_userdata(req);

	if (len < 0 || !in_range(v, off, (size_t)len)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Discards keep the replica thin; nothing may grow the file. */
	if (!(mode & FALLOC_FL_KEEP_SIZE) && !(mode & FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	pthread_rwlock_rdlock(&v->add_lock);
	if (replicated(v)) {
		bool copying = __atomic_load_n(&v->resyncs, __ATOMIC_ACQUIRE) > 0;
		int e = 0;

		/*
		 * A replica punches a hole for TRIM: the same zeros as
		 * ZERO_RANGE, never a partial block (which would differ).
		 */
		if (off % BLOCK || len % BLOCK || len == 0 ||
		    !(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
			pthread_rwlock_unlock(&v->add_lock);
			fuse_reply_err(req, EOPNOTSUPP);
			return;
		}
		/*
		 * The activity log takes AL_CHUNK extents at a time: a long
		 * discard goes as that many TRIMs.
		 */
		for (uint64_t o = (uint64_t)off; o < (uint64_t)(off + len) && !e;) {
			uint64_t step = (uint64_t)AL_CHUNK * HF_VOL_EXTENT_SIZE;
			uint64_t end = (o / step + 1) * step;

			if (end > (uint64_t)(off + len))
				end = (uint64_t)(off + len);
			e = trim_part(v, mode, o, end - o, copying);
			o = end;
		}
		pthread_rwlock_unlock(&v->add_lock);
		fuse_reply_err(req, e);
		return;
	}
	pthread_rwlock_unlock(&v->add_lock);
	if (v->secure && (off % BLOCK || len % BLOCK)) {
		/* A part of a block zeroed would decrypt to noise. */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	{
		int e = hf_snaps_before_write(v->snaps, (uint64_t)off,
					      (uint64_t)len);

		if (e) {
			fuse_reply_err(req, e);
			return;
		}
	}
	fuse_reply_err(req, fallocate(v->rfd, mode | FALLOC_FL_KEEP_SIZE, off,
				      len) < 0
				    ? errno
				    : 0);
}

/* ---- snapshots ------------------------------------------------------- */

static char *find_mount(const struct vol *v, int *fd);

/* The kernel's freeze and thaw of a mounted file system (linux/fs.h). */
#define HF_FIFREEZE _IOWR('X', 119, int)
#define HF_FITHAW _IOWR('X', 120, int)

/*
 * Freezes the file system a task mounted from our device, if any: it
 * writes out everything it holds (through us) and its journal, and
 * holds new writes at its level, so a snapshot taken meanwhile is a
 * clean file system, not only a crash-consistent one. Returns the
 * mount's descriptor to thaw, or -1 (none, or the kernel refused: the
 * snapshot is then crash-consistent, which ext4's journal recovers).
 */
static int freeze_fs(struct vol *v)
{
	int fd = -1;
	char *mnt = v->dev[0] ? find_mount(v, &fd) : NULL;

	if (!mnt)
		return -1;
	if (ioctl(fd, HF_FIFREEZE, 0) < 0) {
		hf_log("snapshot: the file system at %s was not frozen (%s): "
		       "the snapshot is crash-consistent",
		       mnt, strerror(errno));
		close(fd);
		fd = -1;
	}
	free(mnt);
	return fd;
}

static void thaw_fs(int fd)
{
	if (fd < 0)
		return;
	if (ioctl(fd, HF_FITHAW, 0) < 0)
		hf_log("snapshot: thawing the file system failed: %s",
		       strerror(errno));
	close(fd);
}

/*
 * One snapshot request to the local replica and every in-sync remote
 * (not one being copied to: its bytes are not the volume's yet). Taking
 * one holds every write (add_lock) and flushes first, so each replica
 * keeps the same point of the volume: crash-consistent. Returns the
 * record of what happened ({"op", "ok", "replicas", "error"}).
 */
static json_t *snap_one(struct vol *v, const char *id, const char *op)
{
	struct hf_remote_req q[HF_VOL_MAX_PEERS];
	bool sent[HF_VOL_MAX_PEERS] = {0};
	struct hf_volw_frame f;
	json_t *reps = json_array(), *r;
	char err[512] = "";
	size_t nr;
	int e = 0, frozen = -1;

	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_SNAP;
	f.u.snap.op = !strcmp(op, "take")     ? HF_VOLW_SNAP_TAKE
		      : !strcmp(op, "delete") ? HF_VOLW_SNAP_DELETE
					      : HF_VOLW_SNAP_RESTORE;
	snprintf(f.u.snap.id, sizeof(f.u.snap.id), "%s", id);
	/* Before the write lock: freezing writes through us. */
	if (f.u.snap.op == HF_VOLW_SNAP_TAKE)
		frozen = freeze_fs(v);
	pthread_rwlock_wrlock(&v->add_lock);
	nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);
	if (f.u.snap.op == HF_VOLW_SNAP_RESTORE) {
		/*
		 * Every replica rewrites itself from its own copy: one that
		 * is being copied to, or out of the set, would keep the old
		 * bytes in regions no resync knows of.
		 */
		pthread_mutex_lock(&v->isr_mu);
		for (size_t i = 0; i < nr && !e; i++)
			if (v->dropped[i] || v->resyncing[i]) {
				e = EBUSY;
				snprintf(err, sizeof(err),
					 "replica %s is not in sync: a restore "
					 "needs every replica in sync",
					 v->remotes[i].replica);
			}
		pthread_mutex_unlock(&v->isr_mu);
	}
	if (f.u.snap.op == HF_VOLW_SNAP_TAKE) {
		f.u.snap.size = (uint64_t)v->size;
		if ((e = flush_all(v)))
			snprintf(err, sizeof(err),
				 "the flush before it failed: %s",
				 strerror(e));
	}
	pthread_mutex_lock(&v->isr_mu);
	for (size_t i = 0; i < nr && !e; i++)
		sent[i] = !v->dropped[i] && !v->resyncing[i];
	pthread_mutex_unlock(&v->isr_mu);
	for (size_t i = 0; i < nr; i++) {
		struct hf_volw_frame g = f;

		memset(&q[i], 0, sizeof(q[i]));
		if (sent[i] && hf_remote_submit(&v->remotes[i], &g, &q[i]))
			sent[i] = false;
	}
	if (!e && v->snaps) {
		int le;
		int64_t bytes = 0;

		switch (f.u.snap.op) {
		case HF_VOLW_SNAP_TAKE:
			le = hf_snaps_create(v->snaps, id, v->size);
			break;
		case HF_VOLW_SNAP_DELETE:
			le = hf_snaps_delete(v->snaps, id);
			break;
		default:
			le = hf_snaps_restore(v->snaps, id, &bytes);
			break;
		}
		if (le)
			snprintf(err, sizeof(err), "the local replica %s: %s",
				 v->replica, strerror(le));
		else
			json_array_append_new(
			    reps, json_string(v->fence_replica
						  ? v->fence_replica
						  : "local"));
	}
	for (size_t i = 0; i < nr; i++) {
		if (!sent[i])
			continue;
		if (hf_remote_wait(&v->remotes[i], &q[i]) == 0) {
			json_array_append_new(
			    reps, json_string(v->remotes[i].replica));
		} else if (!err[0]) {
			char why[256];

			hf_remote_dead(&v->remotes[i], why, sizeof(why));
			snprintf(err, sizeof(err), "replica %s on node %s: %s",
				 v->remotes[i].replica, v->remotes[i].node,
				 why[0] ? why : "refused");
		}
	}
	pthread_rwlock_unlock(&v->add_lock);
	thaw_fs(frozen);
	r = json_pack("{s:s, s:b, s:o}", "op", op,
		      "ok", json_array_size(reps) > 0 && !err[0], "replicas",
		      reps);
	if (err[0])
		json_object_set_new(r, "error", json_string(err));
	if (f.u.snap.op == HF_VOLW_SNAP_TAKE)
		json_object_set_new(r, "frozen", json_boolean(frozen >= 0));
	hf_log("snapshot %s: %s on %zu replica(s)%s%s", id, op,
	       json_array_size(reps), err[0] ? ": " : "", err);
	return r;
}

/*
 * Carries out the requests not done yet by this process, in order;
 * restore only before the volume is served (start: nothing has it
 * mounted), else it is refused. Returns whether anything was done.
 */
static bool snap_work(struct vol *v, bool starting)
{
	bool any = false;
	size_t i;
	json_t *e;

	json_array_foreach(v->snap_want, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *op = json_string_value(json_object_get(e, "op"));
		json_t *done, *r;
		char key[HF_VOL_ID_MAX + 16];

		snprintf(key, sizeof(key), "%s:%s", op, id);
		pthread_mutex_lock(&v->snap_mu);
		done = json_object_get(v->snap_done, key);
		pthread_mutex_unlock(&v->snap_mu);
		if (done)
			continue;
		if (!strcmp(op, "restore") && !starting)
			r = json_pack("{s:s, s:b, s:[], s:s}", "op", op, "ok", 0,
				      "replicas", "error",
				      "a restore is done by a new attach, "
				      "before anything mounts the volume");
		else
			r = snap_one(v, id, op);
		json_object_set_new(r, "id", json_string(id));
		pthread_mutex_lock(&v->snap_mu);
		json_object_set_new(v->snap_done, key, r);
		pthread_mutex_unlock(&v->snap_mu);
		any = true;
	}
	return any;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.write_buf = op_write_buf,
	.fsync = op_fsync,
	.flush = op_flush,
	.fallocate = op_fallocate,
};

static void *serve_fuse(void *arg)
{
	struct vol *v = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	fuse_loop_cfg_set_max_threads(cfg, 8);
	fuse_loop_cfg_set_idle_threads(cfg, 2);
	fuse_session_loop_mt(v->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return NULL;
}

/*
 * A mount namespace of our own for the FUSE mount, made before any thread
 * exists (unshare refuses a thread that shares its file system info). A
 * slave of the one it came from: mounts and unmounts made there still
 * reach it (so it never holds another volume's file system after that
 * one's detach), and its own FUSE mount stays in it.
 */
static int private_namespace(struct vol *v)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return failed(v, "cannot make a private mount namespace: %s",
			      strerror(errno));
	return 0;
}

static int mount_fuse(struct vol *v)
{
	char *fsname = hf_xasprintf("fsname=holdfast-volume:%s,subtype=holdfast",
				    v->id);
	char *argv[] = {"holdfast-volume", "-o", fsname, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc = -1;

	v->mnt = hf_xasprintf("%s/fuse", v->dir);
	if (mkdir(v->mnt, 0700) < 0 && errno != EEXIST) {
		rc = failed(v, "%s: %s", v->mnt, strerror(errno));
		goto out;
	}
	v->se = fuse_session_new(&args, &ops, sizeof(ops), v);
	if (!v->se || fuse_session_mount(v->se, v->mnt) != 0) {
		rc = failed(v, "cannot mount FUSE at %s (is /dev/fuse there, "
			       "and the fuse module loaded?)", v->mnt);
		goto out;
	}
	if (pthread_create(&v->loop_thread, NULL, serve_fuse, v) != 0) {
		rc = failed(v, "cannot start the FUSE thread");
		goto out;
	}
	v->loop_running = true;
	rc = 0;
out:
	fuse_opt_free_args(&args);
	free(fsname);
	return rc;
}

/* ---- the loop device -------------------------------------------------- */

static int configure_loop(struct vol *v)
{
	char *file = hf_xasprintf("%s/vol", v->mnt);
	int ffd = open(file, O_RDWR | O_CLOEXEC);
	int ctl = -1, e = EBUSY;

	v->loopfd = -1;
	if (ffd < 0) {
		failed(v, "cannot open the FUSE file %s: %s", file,
		       strerror(errno));
		goto out;
	}
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		failed(v, "/dev/loop-control: %s", strerror(errno));
		goto out;
	}
	for (int tries = 0; tries < 16 && e == EBUSY; tries++) {
		struct loop_config cfg;
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0) {
			e = errno;
			break;
		}
		snprintf(v->dev, sizeof(v->dev), "/dev/loop%d", n);
		v->loopfd = open(v->dev, O_RDWR | O_CLOEXEC);
		if (v->loopfd < 0) {
			e = errno;
			break;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.fd = (uint32_t)ffd;
		cfg.block_size = BLOCK;
		/*
		 * AUTOCLEAR: the device lets go of the file once nothing
		 * holds it, so an attach process killed outright leaves no
		 * loop device behind once the task's mount is gone.
		 */
		cfg.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
		memcpy(cfg.info.lo_file_name, v->identity,
		       sizeof(cfg.info.lo_file_name));
		if (ioctl(v->loopfd, LOOP_CONFIGURE, &cfg) == 0) {
			e = 0;
			break;
		}
		e = errno;
		close(v->loopfd);
		v->loopfd = -1;
	}
	if (v->loopfd < 0) {
		v->dev[0] = '\0';
		failed(v, "cannot configure a loop device: %s", strerror(e));
	}
out:
	if (ctl >= 0)
		close(ctl);
	if (ffd >= 0)
		close(ffd); /* the loop device keeps its own reference */
	free(file);
	return v->loopfd < 0 ? -1 : 0;
}

/*
 * What the volume holds (its first block): FS_EXT4 an ext4 (its
 * superblock's magic at byte 1080): "format" then means nothing, so a
 * retried first attach (the server had not yet stored that the volume
 * was formatted) never wipes what a task already wrote; FS_NONE nothing
 * recognised (a new volume reads as zeros); FS_UNREADABLE, on a secure
 * volume only, a first block that was written but does not decrypt to
 * an ext4 with this key. FS_XFS: an XFS (its magic "XFSB" at byte 0),
 * which counts as a file system as an ext4 does.
 */
enum fs_kind { FS_NONE, FS_EXT4, FS_UNREADABLE, FS_XFS };

static enum fs_kind file_system(struct vol *v)
{
	uint8_t *block = buf_take(v);
	enum fs_kind k = FS_NONE;
	bool written;

	if ((v->rfd >= 0 ? local_read(v, block, 0, BLOCK)
			 : remote_read(v, block, 0, BLOCK)) != 0)
		goto out;
	written = !all_zero(block, BLOCK);
	if (v->secure &&
	    hf_vol_decrypt(&v->crypt, 0, block, block, BLOCK) != 0)
		goto out;
	if (block[1080] == 0x53 && block[1081] == 0xEF)
		k = FS_EXT4;
	else if (memcmp(block, "XFSB", 4) == 0)
		k = FS_XFS;
	else if (v->secure && written)
		k = FS_UNREADABLE;
out:
	buf_put(v, block);
	return k;
}

/* Runs argv (a program of e2fsprogs) to its end; its exit status or -1. */
static int run_tool(char **argv)
{
	static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				     "LC_ALL=C", NULL};
	struct hf_spawn sp;
	char *err = NULL;
	pid_t pid;
	int status = 0;

	memset(&sp, 0, sizeof(sp));
	sp.path = argv[0];
	sp.argv = argv;
	sp.envp = envp;
	sp.in = -1;
	sp.out = sp.err = STDERR_FILENO;
	if (hf_spawn_start(&sp, &pid, &err)) {
		hf_log("%s: %s", argv[0], err);
		free(err);
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *sbin(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "/sbin/%s", name);
	if (access(buf, X_OK) != 0)
		snprintf(buf, n, "/usr/sbin/%s", name);
	return buf;
}

/*
 * The ext4 on the device is smaller than the device (the volume grew
 * while its file system could not: detached, or a node without
 * CAP_SYS_RESOURCE for the online resize): grown offline before anything
 * mounts it (no task can yet: the process is not "ready"), after the
 * check resize2fs asks for. A failure is logged and leaves the file
 * system as it was: it still mounts, at its old size.
 */
static void grow_fs_offline(struct vol *v)
{
	uint8_t *block = buf_take(v);
	uint64_t blocks, bsize;
	char fsck[64], resize[64];

	if ((v->rfd >= 0 ? local_read(v, block, 0, BLOCK)
			 : remote_read(v, block, 0, BLOCK)) != 0 ||
	    (v->secure &&
	     hf_vol_decrypt(&v->crypt, 0, block, block, BLOCK) != 0) ||
	    block[1080] != 0x53 || block[1081] != 0xEF) {
		buf_put(v, block);
		return;
	}
	/* The superblock at 1024: blocks (lo at +4, hi at +0x150), log size. */
	blocks = hf_vol_get32(block + 1024 + 4) |
		 ((hf_vol_get32(block + 1024 + 0x60) & 0x80) /* 64bit */
		      ? (uint64_t)hf_vol_get32(block + 1024 + 0x150) << 32
		      : 0);
	bsize = 1024ULL << hf_vol_get32(block + 1024 + 24);
	buf_put(v, block);
	if (bsize < 1024 || bsize > 65536 ||
	    blocks * bsize + bsize > (uint64_t)v->size)
		return;
	hf_log("the file system (%llu bytes) is smaller than the volume "
	       "(%lld): growing it", (unsigned long long)(blocks * bsize),
	       (long long)v->size);
	{
		char *fa[] = {(char *)sbin("e2fsck", fsck, sizeof(fsck)),
			      "-f", "-p", v->dev, NULL};
		char *ra[] = {(char *)sbin("resize2fs", resize, sizeof(resize)),
			      v->dev, NULL};
		int rc = run_tool(fa);

		/* 0: clean, 1: errors corrected. */
		if (rc != 0 && rc != 1) {
			hf_log("e2fsck -f -p %s exited %d: the file system is "
			       "not grown", v->dev, rc);
			return;
		}
		rc = run_tool(ra);
		if (rc != 0)
			hf_log("resize2fs %s exited %d: the file system is not "
			       "grown", v->dev, rc);
		else
			hf_log("the file system grew to the volume's %lld "
			       "bytes", (long long)v->size);
	}
}

/*
 * An XFS made on the device: -K keeps mkfs from discarding (a new
 * replica is sparse), and a protofile gives the root directory to the
 * tasks' user, as ext4's root_owner does.
 */
static int format_xfs(struct vol *v)
{
	char proto[] = "/tmp/hf-xfs-proto-XXXXXX", mkfs[64];
	char *text = hf_xasprintf("/dev/null\n0 0\nd--755 %u %u\n$\n", v->uid,
				  v->gid);
	char *argv[] = {(char *)sbin("mkfs.xfs", mkfs, sizeof(mkfs)), "-q",
			"-f", "-K", "-p", proto, v->dev, NULL};
	int fd = mkstemp(proto), status = -1;

	if (fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text))
		status = run_tool(argv);
	if (fd >= 0) {
		close(fd);
		unlink(proto);
	}
	free(text);
	return status == 0 ? 0
			   : failed(v, "mkfs.xfs on %s failed (exit status %d; "
				       "its messages are on stderr)",
				    v->dev, status);
}

/* Whether this process has CAP_SYS_RESOURCE (effective). */
static bool has_sys_resource(void)
{
	char *text = NULL, *line;
	bool has = true; /* unknown: as root usually is */

	if (hf_read_file("/proc/self/status", 1 << 16, &text, NULL) == 0 &&
	    (line = strstr(text, "\nCapEff:")))
		has = (strtoull(line + 8, NULL, 16) >> 24) & 1;
	free(text);
	return has;
}

static int format(struct vol *v)
{
	char xmkfs[64];
	bool xfs = v->fs_asked == 2;

	if (v->fs_asked == 0 && v->size >= ((int64_t)320 << 20) &&
	    !has_sys_resource() &&
	    access(sbin("mkfs.xfs", xmkfs, sizeof(xmkfs)), X_OK) == 0) {
		hf_log("making an XFS: this node lacks CAP_SYS_RESOURCE, which "
		       "an ext4 would need to grow online");
		xfs = true;
	}
	if (xfs)
		return format_xfs(v);
	/*
	 * A new replica is sparse, so it reads as zeros: nothing to zero
	 * at mkfs, nor later in the background (which would cost every
	 * inode table's size in writes through the volume).
	 */
	char *owner = hf_xasprintf("nodiscard,assume_storage_prezeroed=1,"
				   "root_owner=%u:%u",
				   v->uid, v->gid);
	char mkfs[64];
	char *argv[] = {(char *)sbin("mkfs.ext4", mkfs, sizeof(mkfs)),
			"-q", "-F", "-b", "4096", "-m", "0", "-E", owner, v->dev,
			NULL};
	int status = run_tool(argv), rc;

	rc = status == 0 ? 0
			 : failed(v, "mkfs.ext4 on %s failed (exit status %d; "
				     "its messages are on stderr)",
				  v->dev, status);
	free(owner);
	return rc;
}

/* ---- detach ----------------------------------------------------------- */

static bool device_in_use(const struct vol *v)
{
	/* A mounted file system holds the device exclusively. */
	int fd = open(v->dev, O_RDONLY | O_EXCL | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EBUSY;
}

static bool backing_gone(const struct vol *v)
{
	char *path = hf_xasprintf("/sys/block/%s/loop/backing_file",
				  v->dev + 5);
	bool gone = access(path, F_OK) != 0;

	free(path);
	return gone;
}

static void stop_fuse(struct vol *v)
{
	if (!v->se)
		return;
	fuse_session_exit(v->se);
	/* The unmount makes the loop's read of /dev/fuse return. */
	fuse_session_unmount(v->se);
	if (v->loop_running)
		pthread_join(v->loop_thread, NULL);
	v->loop_running = false;
	fuse_session_destroy(v->se);
	v->se = NULL;
}

static int detach(struct vol *v, sigset_t *mask)
{
	bool said = false;
	int e;

	while (device_in_use(v)) {
		struct timespec ts = {0, 200 * 1000 * 1000};

		if (!said) {
			publish(v, "ready", "detaching: waiting for the file "
					    "system on the device to be "
					    "unmounted");
			hf_log("detach: %s is still mounted; waiting", v->dev);
			said = true;
		}
		/* A second signal while waiting changes nothing. */
		if (sigtimedwait(mask, NULL, &ts) == SIGHUP)
			reload_isr(v);
	}
	if (ioctl(v->loopfd, LOOP_CLR_FD, 0) < 0)
		hf_log("detach: LOOP_CLR_FD on %s: %s", v->dev,
		       strerror(errno));
	close(v->loopfd);
	v->loopfd = -1;
	/* The device lets go of the file a little after the ioctl returns. */
	for (int64_t end = hf_mono_ms() + DETACH_WAIT_MS;
	     !backing_gone(v) && hf_mono_ms() < end;)
		hf_sleep_ms(5);
	if (!backing_gone(v))
		hf_log("detach: %s still names its file after %d ms", v->dev,
		       DETACH_WAIT_MS);
	if ((e = flush_all(v))) {
		failed(v, "the last flush failed: %s", strerror(e));
		stop_fuse(v);
		return -1;
	}
	if (v->ship) {
		bool all;

		publish(v, "ready", "detaching: sending what the DR journal "
				    "holds to the standby");
		all = hf_ship_drain(v->ship, __atomic_load_n(&v->dr_drain_ms,
							      __ATOMIC_ACQUIRE));
		pthread_mutex_lock(&v->ship_mu);
		v->dr_last = hf_ship_status(v->ship);
		/* What the agent tells the server (a switchover waits on it). */
		json_object_set_new(v->dr_last, "drained", json_boolean(all));
		hf_ship_close(v->ship);
		v->ship = NULL;
		pthread_mutex_unlock(&v->ship_mu);
		hf_log("detach: the DR standby %s", all ? "has every write"
							: "still lacks writes "
							  "(the journal keeps "
							  "them)");
	}
	/*
	 * Nothing unflushed anywhere now: a record without extents, so the
	 * next attach has none to copy (it is no error when one fails).
	 */
	pthread_mutex_lock(&v->al_mu);
	v->nal = 0;
	v->al_changed = true;
	pthread_mutex_unlock(&v->al_mu);
	if (replicated(v)) {
		pthread_rwlock_rdlock(&v->add_lock);
		al_commit(v, NULL, false);
		pthread_rwlock_unlock(&v->add_lock);
	}
	stop_fuse(v);
	stop_resyncs(v);
	close_remotes(v, true);
	v->dev[0] = '\0';
	publish(v, "detached", NULL);
	return 0;
}

/* ---- growing (volume resize) ------------------------------------------ */

/*
 * Whether remote i's replica holds size bytes yet (its node's replica
 * server grows it when the server lists the new size): asked with a HELLO
 * on a connection of its own at this epoch, whose HELLO_OK gives the
 * replica's size; the remote's own connection is not touched.
 */
static bool remote_grown(struct vol *v, size_t i, int64_t size, char *why,
			 size_t n)
{
	const struct hf_remote *r = &v->remotes[i];
	struct hf_remote probe;
	int rc;

	hf_remote_init(&probe);
	probe.address = hf_xstrdup(r->address);
	probe.port = r->port;
	probe.replica = hf_xstrdup(r->replica);
	probe.node = hf_xstrdup(r->node);
	rc = hf_remote_connect(&probe, v->id, (uint64_t)v->epoch, v->node,
			       v->ticket, (uint64_t)size, why, n);
	hf_remote_close(&probe, rc == 0);
	return rc == 0;
}

static void grow_wait(struct vol *v, char *msg)
{
	if (!v->grow_msg || strcmp(v->grow_msg, msg) != 0) {
		hf_log("%s", msg);
		free(v->grow_msg);
		v->grow_msg = msg;
		publish(v, "ready", msg);
	} else {
		free(msg);
	}
}

/*
 * A mount of our device in some process's namespace that this process
 * can open (the directory, in *fd), and its path; NULL when none.
 */
static char *find_mount(const struct vol *v, int *fd)
{
	struct stat st;
	char want[32], *found = NULL;
	DIR *d;
	struct dirent *e;

	if (stat(v->dev, &st) < 0)
		return NULL;
	snprintf(want, sizeof(want), "%u:%u", major(st.st_rdev),
		 minor(st.st_rdev));
	d = opendir("/proc");
	while (d && !found && (e = readdir(d))) {
		char *path, *text = NULL, *line, *save = NULL;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		path = hf_xasprintf("/proc/%s/mountinfo", e->d_name);
		if (hf_read_file(path, 1 << 22, &text, NULL) != 0) {
			free(path);
			continue;
		}
		for (line = strtok_r(text, "\n", &save); line && !found;
		     line = strtok_r(NULL, "\n", &save)) {
			char id[32], mnt[4096], dec[4096];
			size_t k = 0;

			/* "36 35 7:3 / /mnt/x rw ..." */
			if (sscanf(line, "%*s %*s %31s %*s %4095s", id, mnt) != 2 ||
			    strcmp(id, want) != 0)
				continue;
			/* Octal escapes (\040 for a space). */
			for (size_t j = 0; mnt[j] && k + 1 < sizeof(dec); j++) {
				if (mnt[j] == '\\' && mnt[j + 1] && mnt[j + 2] &&
				    mnt[j + 3]) {
					dec[k++] = (char)(((mnt[j + 1] - '0') << 6) |
							  ((mnt[j + 2] - '0') << 3) |
							  (mnt[j + 3] - '0'));
					j += 3;
				} else {
					dec[k++] = mnt[j];
				}
			}
			dec[k] = 0;
			found = hf_xasprintf("/proc/%s/root%s", e->d_name, dec);
			*fd = open(found, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (*fd < 0) {
				/* Not ours to enter: another namespace may do. */
				free(found);
				found = NULL;
				break;
			}
		}
		free(text);
		free(path);
	}
	if (d)
		closedir(d);
	return found;
}

/* ext4's online resize (what resize2fs does on a mounted file system). */
#define HF_EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)

/* XFS's (what xfs_growfs does): its geometry, then the new data size. */
struct hf_xfs_geom_v1 {
	uint32_t blocksize, rtextsize, agblocks, agcount, logblocks, sectsize;
	uint32_t inodesize, imaxpct;
	uint64_t datablocks, rtblocks, rtextents, logstart;
	unsigned char uuid[16];
	uint32_t sunit, swidth;
	int32_t version;
	uint32_t flags, logsectsize, rtsectsize, dirblocksize;
};
struct hf_xfs_growfs_data {
	uint64_t newblocks;
	uint32_t imaxpct;
};
#define HF_XFS_IOC_FSGEOMETRY_V1 _IOR('X', 100, struct hf_xfs_geom_v1)
#define HF_XFS_IOC_FSGROWFSDATA _IOW('X', 110, struct hf_xfs_growfs_data)
#define HF_XFS_MAGIC 0x58465342

/* Grows the XFS open at fd to the device's size: 0 or -1 with errno. */
static int grow_xfs(const struct vol *v, int fd, uint64_t *blocks,
		    long *bsize)
{
	struct hf_xfs_geom_v1 g;
	struct hf_xfs_growfs_data in;

	memset(&g, 0, sizeof(g));
	if (ioctl(fd, HF_XFS_IOC_FSGEOMETRY_V1, &g) < 0)
		return -1;
	if (g.blocksize == 0) {
		errno = EINVAL;
		return -1;
	}
	memset(&in, 0, sizeof(in));
	in.newblocks = (uint64_t)v->size / g.blocksize;
	in.imaxpct = g.imaxpct;
	*blocks = in.newblocks;
	*bsize = (long)g.blocksize;
	if (in.newblocks <= g.datablocks)
		return 0; /* grown already */
	return ioctl(fd, HF_XFS_IOC_FSGROWFSDATA, &in);
}

/*
 * The mounted file system grows to the device: ext4's online resize on
 * a mount of the device in whichever namespace has one (a task's); none
 * yet: later. Returns whether it is done.
 */
static bool grow_fs(struct vol *v)
{
	int fd = -1, rc;
	char *mnt = find_mount(v, &fd);
	struct statfs sf;
	uint64_t blocks;

	if (!mnt) {
		grow_wait(v, hf_xasprintf("the device grew to %lld bytes; its "
					  "file system grows once a task "
					  "mounts it",
					  (long long)v->size));
		return false;
	}
	if (fstatfs(fd, &sf) < 0 ||
	    (sf.f_type != 0xEF53 && sf.f_type != HF_XFS_MAGIC) ||
	    sf.f_bsize <= 0) {
		grow_wait(v, hf_xasprintf("the file system at %s cannot be "
					  "grown: neither an ext4 nor an XFS",
					  mnt));
		close(fd);
		free(mnt);
		return false;
	}
	if (sf.f_type == HF_XFS_MAGIC) {
		long bsize = 0;

		rc = grow_xfs(v, fd, &blocks, &bsize);
		sf.f_bsize = bsize;
		if (rc < 0 && errno == EPERM)
			errno = EACCES; /* not ext4's EPERM: no later try */
	} else {
		blocks = (uint64_t)v->size / (uint64_t)sf.f_bsize;
		rc = ioctl(fd, HF_EXT4_IOC_RESIZE_FS, &blocks);
	}
	if (rc < 0 && errno == EPERM) {
		/* The kernel asks for CAP_SYS_RESOURCE; offline needs none. */
		grow_wait(v, hf_xasprintf(
				 "the device grew to %lld bytes; its file "
				 "system grows when the volume is next "
				 "attached (ext4's online resize needs "
				 "CAP_SYS_RESOURCE, which this node does not "
				 "give)",
				 (long long)v->size));
		close(fd);
		free(mnt);
		v->fs_grow = false;
		return false;
	}
	if (rc < 0) {
		grow_wait(v, hf_xasprintf("growing the file system to %llu "
					  "blocks failed: %s",
					  (unsigned long long)blocks,
					  strerror(errno)));
		close(fd);
		free(mnt);
		return false;
	}
	close(fd);
	hf_log("the file system grew to %llu blocks of %ld bytes (%s)",
	       (unsigned long long)blocks, (long)sf.f_bsize, mnt);
	free(mnt);
	return true;
}

/*
 * One step of growing to grow_to: every remote still written must hold
 * the new size first (a write past a replica's end is refused, which
 * would drop it), then the local replica, then the volume's size, the
 * FUSE file's (the kernel asked again), the loop device's capacity; the
 * file system last (grow_fs). Called by the main thread each second
 * while anything is left; status.json's message says what it waits for.
 */
static void grow(struct vol *v)
{
	int64_t to = v->grow_to;
	char why[512], *fuse_file;
	struct stat st;

	if (to > v->size) {
		size_t nr = __atomic_load_n(&v->nremotes, __ATOMIC_ACQUIRE);

		for (size_t i = 0; i < nr; i++) {
			bool dropped;

			pthread_mutex_lock(&v->isr_mu);
			dropped = v->dropped[i];
			pthread_mutex_unlock(&v->isr_mu);
			if (dropped || hf_remote_dead(&v->remotes[i], NULL, 0) ||
			    remote_grown(v, i, to, why, sizeof(why)))
				continue;
			grow_wait(v, hf_xasprintf(
					 "growing to %lld bytes: waiting for "
					 "replica %s on node %s (%s)",
					 (long long)to, v->remotes[i].replica,
					 v->remotes[i].node, why));
			return;
		}
		if (v->rfd >= 0 &&
		    (ftruncate(v->rfd, to) < 0 || fdatasync(v->rfd) < 0)) {
			grow_wait(v, hf_xasprintf("growing to %lld bytes: the "
						  "local replica: %s",
						  (long long)to,
						  strerror(errno)));
			return;
		}
		__atomic_store_n(&v->size, to, __ATOMIC_RELEASE);
		if (v->ship)
			hf_ship_grow(v->ship, (uint64_t)to);
		/*
		 * The missed-region bitmaps cover the new size (nothing past
		 * the old end is written until the device grows, below); one
		 * that had missed anything is copied whole, as a resync
		 * planned on the old size could not say what it lacks.
		 */
		pthread_mutex_lock(&v->miss_mu);
		for (size_t i = 0; i < v->nmissed; i++) {
			struct missed *m = &v->missed[i];
			bool dirty = m->broken ||
				     hf_vol_bitmap_count(&m->bm) > 0;

			hf_vol_bitmap_release(&m->bm);
			if (hf_vol_bitmap_init(&m->bm, (uint64_t)to) != 0)
				m->broken = true;
			else if (dirty)
				hf_vol_bitmap_set(&m->bm, 0, (uint64_t)to);
			miss_save(v, m);
		}
		pthread_mutex_unlock(&v->miss_mu);
		/* The kernel's idea of the file's size, then the device's. */
		fuse_lowlevel_notify_inval_inode(v->se, VOL_INO, 0, 0);
		fuse_file = hf_xasprintf("%s/vol", v->mnt);
		if (stat(fuse_file, &st) < 0 || st.st_size != to)
			hf_log("growing: %s shows %lld bytes, not %lld",
			       fuse_file, (long long)st.st_size,
			       (long long)to);
		free(fuse_file);
		if (ioctl(v->loopfd, LOOP_SET_CAPACITY, 0) < 0)
			hf_log("growing: %s: LOOP_SET_CAPACITY: %s", v->dev,
			       strerror(errno));
		hf_log("volume %s grew to %lld bytes", v->volume,
		       (long long)to);
		v->fs_grow = true;
	}
	if (v->fs_grow && to <= v->size) {
		/*
		 * Before each try: the kernel's size of the FUSE file (a
		 * getattr answered before the growth and applied after it
		 * puts the old one back; a read past it gets 0 bytes, which
		 * the loop device ends with EIO) and the device's again.
		 */
		char *ff = hf_xasprintf("%s/vol", v->mnt);

		fuse_lowlevel_notify_inval_inode(v->se, VOL_INO, 0, 0);
		if (stat(ff, &st) < 0 || st.st_size != v->size)
			hf_log("growing: %s shows %lld bytes, not %lld", ff,
			       (long long)st.st_size, (long long)v->size);
		free(ff);
		if (ioctl(v->loopfd, LOOP_SET_CAPACITY, 0) < 0)
			hf_log("growing: %s: LOOP_SET_CAPACITY: %s", v->dev,
			       strerror(errno));
	}
	if (v->fs_grow && grow_fs(v)) {
		v->fs_grow = false;
		free(v->grow_msg);
		v->grow_msg = NULL;
		publish(v, "ready", NULL);
	}
}

/* Whether the counters or the missed regions moved since the last call. */
static bool io_changed(struct vol *v)
{
	static int64_t last[3];
	int64_t now[3] = {__atomic_load_n(&v->written, __ATOMIC_RELAXED), 0,
			  0};

	pthread_mutex_lock(&v->miss_mu);
	for (size_t i = 0; i < v->nmissed; i++)
		now[1] += (int64_t)hf_vol_bitmap_count(&v->missed[i].bm);
	pthread_mutex_unlock(&v->miss_mu);
	pthread_mutex_lock(&v->isr_mu);
	now[2] = v->rs_sent;
	pthread_mutex_unlock(&v->isr_mu);
	if (memcmp(now, last, sizeof(now)) == 0)
		return false;
	memcpy(last, now, sizeof(now));
	return true;
}

int hf_volume_attach_main(const char *dir)
{
	struct vol v;
	sigset_t mask;
	int lockfd = -1, code = HF_VOLUME_EXIT_FAIL, sig, werr;
	enum fs_kind fs;
	char *lock;
	long holder = 0;

	memset(&v, 0, sizeof(v));
	v.rfd = v.loopfd = -1;
	hf_log_init("holdfast-volume", true);
	v.dir = realpath(dir, NULL);
	if (!v.dir) {
		fprintf(stderr, "holdfast-volume: %s: %s\n", dir,
			strerror(errno));
		return HF_VOLUME_EXIT_USAGE;
	}
	lock = hf_xasprintf("%s/attach.lock", v.dir);
	switch (hf_lock_file(lock, &lockfd, &holder)) {
	case 0:
		break;
	case HF_EUNAVAIL:
		fprintf(stderr, "holdfast-volume: %s is attached by process "
				"%ld\n", v.dir, holder);
		free(lock);
		free(v.dir);
		return HF_VOLUME_EXIT_LOCKED;
	default:
		fprintf(stderr, "holdfast-volume: %s: %s\n", lock,
			strerror(errno));
		free(lock);
		free(v.dir);
		return HF_VOLUME_EXIT_FAIL;
	}
	free(lock);
	/* Every thread inherits this mask: the signals come to sigwait. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&v.pool.mu, NULL);
	pthread_mutex_init(&v.isr_mu, NULL);
	pthread_mutex_init(&v.miss_mu, NULL);
	pthread_mutex_init(&v.al_mu, NULL);
	pthread_mutex_init(&v.al_wmu, NULL);
	v.al_fd = -1;
	pthread_cond_init(&v.isr_cv, NULL);
	pthread_rwlock_init(&v.add_lock, NULL);
	pthread_mutex_init(&v.snap_mu, NULL);
	pthread_mutex_init(&v.ship_mu, NULL);
	v.snap_done = json_object();
	for (size_t i = 0; i < RS_STRIPES; i++)
		pthread_mutex_init(&v.stripes[i], NULL);
	if (load(&v) || private_namespace(&v) || open_replica(&v) ||
	    miss_load(&v) || fence_local(&v) || connect_remotes(&v) ||
	    start_remotes(&v))
		goto out;
	al_start(&v);
	/* A restore before anything can mount the volume. */
	snap_work(&v, true);
	if (mount_fuse(&v) || configure_loop(&v))
		goto out;
	fs = v.format || v.secure ? file_system(&v) : FS_NONE;
	if (fs == FS_UNREADABLE) {
		/* Formatting would wipe it; mounting would see noise. */
		failed(&v, "the volume holds data that does not decrypt to a "
			   "file system with the key this attach was given: "
			   "a wrong encryption key (nothing was written)");
		goto out;
	}
	if (v.format && (fs == FS_EXT4 || fs == FS_XFS))
		hf_log("the replica already holds a file system: not "
		       "formatting it again");
	else if (v.format && format(&v))
		goto out;
	else if (v.format && flush_all(&v) == 0)
		/*
		 * mkfs's writes (an XFS's log is 64 MiB of them) are on every
		 * replica: a failover soon after need not send them again.
		 */
		al_trim(&v, true);
	if (!v.format || fs == FS_EXT4)
		grow_fs_offline(&v); /* an XFS grows online only */
	start_resyncs(&v);
	start_keepalive(&v);
	if (v.ship)
		hf_ship_start(v.ship);
	publish(&v, "ready", NULL);
	hf_log("volume %s (%s, epoch %lld) attached at %s, %s local replica "
	       "and %zu remote", v.volume, v.id, (long long)v.epoch, v.dev,
	       v.rfd >= 0 ? "a" : "no", v.nremotes);
	do {
		/*
		 * Once a second, status.json's counters and missed regions
		 * follow the writes (the agent reports them at its syncs).
		 */
		static const struct timespec second = {1, 0};

		sig = sigtimedwait(&mask, NULL, &second);
		werr = sig < 0 ? errno : 0;
		if (sig == SIGHUP) {
			reload_isr(&v);
			if (snap_work(&v, false))
				publish(&v, "ready", v.grow_msg);
		} else if (sig < 0 && werr == EAGAIN &&
			   (io_changed(&v) || v.ship))
			publish(&v, "ready", v.grow_msg);
		if (v.grow_to > v.size || v.fs_grow)
			grow(&v);
	} while ((sig < 0 && (werr == EINTR || werr == EAGAIN)) ||
		 sig == SIGHUP);
	hf_log("detaching on signal %d", sig);
	/* Writes waiting for a failed remote's drop fail now. */
	pthread_mutex_lock(&v.isr_mu);
	hf_deadline_after_ms(&v.isr_until, 0);
	v.isr_until_set = v.isr_final = true;
	pthread_cond_broadcast(&v.isr_cv);
	pthread_mutex_unlock(&v.isr_mu);
	if (detach(&v, &mask) == 0)
		code = HF_VOLUME_EXIT_OK;
out:
	if (v.loopfd >= 0) {
		ioctl(v.loopfd, LOOP_CLR_FD, 0);
		close(v.loopfd);
	}
	stop_fuse(&v);
	stop_resyncs(&v);
	hf_ship_close(v.ship);
	json_decref(v.dr_last);
	free(v.dr_text);
	pthread_mutex_destroy(&v.ship_mu);
	close_remotes(&v, false);
	while (v.pool.nfree)
		free(v.pool.free[--v.pool.nfree]);
	pthread_mutex_destroy(&v.pool.mu);
	if (v.rfd >= 0)
		close(v.rfd);
	if (lockfd >= 0)
		close(lockfd);
	free(v.volume);
	free(v.id);
	free(v.replica);
	free(v.node);
	free(v.dropped);
	free(v.resyncing);
	free(v.resynced);
	free(v.failed_rs);
	free(v.rs_done);
	free(v.rs_total);
	for (size_t i = 0; i < v.nmissed; i++) {
		hf_vol_bitmap_release(&v.missed[i].bm);
		free(v.missed[i].replica);
		if (v.missed[i].fd >= 0)
			close(v.missed[i].fd);
	}
	pthread_mutex_destroy(&v.miss_mu);
	if (v.al_fd >= 0)
		close(v.al_fd);
	free(v.al);
	pthread_mutex_destroy(&v.al_mu);
	pthread_mutex_destroy(&v.al_wmu);
	pthread_rwlock_destroy(&v.add_lock);
	for (size_t i = 0; i < RS_STRIPES; i++)
		pthread_mutex_destroy(&v.stripes[i]);
	free(v.fence_address);
	free(v.fence_replica);
	hf_snaps_close(v.snaps);
	json_decref(v.snap_want);
	json_decref(v.snap_done);
	pthread_mutex_destroy(&v.snap_mu);
	hf_vol_crypt_release(&v.crypt);
	free(v.grow_msg);
	pthread_cond_destroy(&v.isr_cv);
	pthread_mutex_destroy(&v.isr_mu);
	free(v.mnt);
	free(v.dir);
	return code;
}
