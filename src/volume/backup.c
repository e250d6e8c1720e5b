/*
 * backup.c - `holdfast-volume backup|restore|backups` (backup.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "volume/attach.h"
#include "volume/backup.h"
#include "volume/s3.h"
#include "volume/snap.h"

#define EXIT_OK HF_VOLUME_EXIT_OK
#define EXIT_FAIL HF_VOLUME_EXIT_FAIL
#define EXIT_USAGE HF_VOLUME_EXIT_USAGE
#define HDR 12
#define SNAPS_PER_CHUNK (HF_BACKUP_CHUNK / HF_SNAP_CHUNK)
#define MANIFEST_MAX ((size_t)256 << 20)

static const char USAGE[] =
    "usage: holdfast-volume backup --endpoint URL [--region R] [--ca FILE]\n"
    "           --to s3://BUCKET[/PREFIX] --volume NAME [--volume-id ID]\n"
    "           --replica DATAFILE --snapshot ID [--id BACKUP]\n"
    "           [--base BACKUP --base-snapshot ID] [--encrypted\n"
    "           [--key-name NAME --sealed-key HEX]]\n"
    "           [--status FILE]\n"
    "       holdfast-volume restore --endpoint URL [--region R] [--ca FILE]\n"
    "           --from s3://BUCKET[/PREFIX] --volume NAME --backup BACKUP\n"
    "           --to FILE [--status FILE]\n"
    "       holdfast-volume backups --endpoint URL [--region R] [--ca FILE]\n"
    "           --from s3://BUCKET[/PREFIX] --volume NAME\n"
    "  backup stores snapshot ID of the replica whose data file is\n"
    "  DATAFILE (its snapshots are in the snaps/ next to it): every chunk\n"
    "  with data, or with --base, only what changed since BACKUP's\n"
    "  snapshot (ID, which the replica must still hold). restore writes a\n"
    "  backup's bytes to FILE (sparse; it must not exist, unless a restore\n"
    "  of the same backup to it was cut short: FILE.progress says what it\n"
    "  wrote, and the same command goes on from there). backups lists a\n"
    "  volume's backups. Keys: HOLDFAST_S3_ACCESS_KEY and\n"
    "  HOLDFAST_S3_SECRET_KEY in the environment.\n";

struct opts {
	const char *endpoint, *region, *ca, *url, *volume, *volume_id;
	const char *replica, *snapshot, *id, *base, *base_snapshot, *out;
	const char *backup, *status;
	const char *key_name, *sealed_key; /* the data key, sealed by a named key */
	bool encrypted;
	char *bucket, *prefix; /* of url */
	struct hf_s3 *s3;
	struct hf_s3_config cfg; /* workers make clients of their own */
};

/*
 * Progress, written to --status (atomically) at most once a second. A
 * backup's total is the snapshot's size and done what was read or reused
 * of it; a restore's total is the bytes of the chunks with data (zeros
 * are holes, nothing to do) and done what of them is written and synced
 * (so a restore killed now and run again finds at least that present).
 */
struct progress {
	const char *path;
	bool restore;
	int64_t total, done, uploaded, stored, reused;
	int64_t skipped; /* "present": in the store, or (restore) in the file */
	int64_t size, fetched; /* restore: the volume's bytes, objects' bytes */
	int64_t last_ms;
	int64_t *ext; /* [done, total] for hf_backup_restore_file's caller */
	char msg[768]; /* the last failure */
};

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void status(struct progress *p, const char *state, const char *msg,
		   bool force)
{
	int64_t now = hf_mono_ms();
	json_t *o;
	char *text;

	if (p->ext) {
		__atomic_store_n(&p->ext[1], p->total, __ATOMIC_RELAXED);
		__atomic_store_n(&p->ext[0], LOAD(p->done), __ATOMIC_RELAXED);
	}
	if (!p->path || (!force && now - p->last_ms < 1000))
		return;
	p->last_ms = now;
	/* The workers add to these as they go. */
	o = json_pack("{s:s, s:I, s:I, s:I}", "state", state, "total",
		      (json_int_t)p->total, "done", (json_int_t)LOAD(p->done),
		      "present", (json_int_t)LOAD(p->skipped));
	if (p->restore) {
		json_object_set_new(o, "size", json_integer(p->size));
		json_object_set_new(o, "fetched",
				    json_integer(LOAD(p->fetched)));
	} else {
		json_object_set_new(o, "uploaded",
				    json_integer(LOAD(p->uploaded)));
		json_object_set_new(o, "stored", json_integer(LOAD(p->stored)));
		json_object_set_new(o, "reused", json_integer(p->reused));
	}
	json_object_set_new(o, "message", msg ? json_string(msg) : json_null());
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text && hf_write_file_atomic(p->path, text, strlen(text), 0600))
		fprintf(stderr, "holdfast-volume: %s: %s\n", p->path,
			strerror(errno));
	free(text);
}

static int fail(struct progress *p, const char *fmt, ...) HF_PRINTF(2, 3);

static int fail(struct progress *p, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->msg, sizeof(p->msg), "%s", msg);
	fprintf(stderr, "holdfast-volume: %s\n", msg);
	status(p, "failed", msg, true);
	return EXIT_FAIL;
}

/* "s3://bucket[/prefix]" into o->bucket and o->prefix ("" or "p/"). */
static int parse_url(struct opts *o)
{
	const char *u = o->url, *slash;
	size_t n;

	if (!u || strncmp(u, "s3://", 5) != 0 || !u[5])
		return -1;
	u += 5;
	slash = strchr(u, '/');
	o->bucket = slash ? hf_xstrndup(u, (size_t)(slash - u)) : hf_xstrdup(u);
	u = slash ? slash + 1 : "";
	n = strlen(u);
	while (n && u[n - 1] == '/')
		n--;
	o->prefix = n ? hf_xasprintf("%.*s/", (int)n, u) : hf_xstrdup("");
	return *o->bucket ? 0 : -1;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sha256_hex(const uint8_t *p, size_t n, char hex[65])
{
	uint8_t md[32];
	unsigned len = 0;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static char *chunk_key(const struct opts *o, const char *hex)
{
	return hf_xasprintf("%s%s/chunks/%s", o->prefix, o->volume, hex);
}

static char *manifest_key(const struct opts *o, const char *id)
{
	return hf_xasprintf("%s%s/backups/%s.json", o->prefix, o->volume, id);
}

/*
 * A backup's manifest from the store, or NULL with err; with hash, the
 * SHA-256 of its bytes too (what a restore's journal is bound to).
 */
static json_t *get_manifest(struct opts *o, const char *id, char *err,
			    char hash[65])
{
	struct hf_buf b = HF_BUF_INIT;
	char *key = manifest_key(o, id);
	json_t *m = NULL;
	json_error_t je;
	int rc = hf_s3_get(o->s3, o->bucket, key, MANIFEST_MAX, &b, err);

	if (rc == 0) {
		m = json_loadb(b.data ? b.data : "", b.len, 0, &je);
		if (!m || !json_is_array(json_object_get(m, "chunks")) ||
		    json_integer_value(json_object_get(m, "chunk_size")) !=
			HF_BACKUP_CHUNK) {
			snprintf(err, HF_S3_ERRLEN,
				 "%s is not a backup manifest of this format",
				 key);
			json_decref(m);
			m = NULL;
		} else if (hash) {
			sha256_hex((const uint8_t *)(b.data ? b.data : ""),
				   b.len, hash);
		}
	}
	hf_buf_release(&b);
	free(key);
	return m;
}

/* Whether hex is among the store's chunks (sorted), listed at the start. */
static bool present(char *const *have, size_t n, const char *hex)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(have[mid], hex);

		if (!c)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * Stores one chunk: compressed when that is smaller. Returns 0 or an
 * HF_E* code with err.
 */
static int put_chunk(struct opts *o, struct hf_s3 *s3, const char *hex,
		     const uint8_t *data, size_t len, struct progress *p,
		     char *err)
{
	char *key = chunk_key(o, hex);
	uLongf zlen = compressBound((uLong)len);
	uint8_t *obj = hf_xmalloc(HDR + zlen);
	int rc = 0;

	memcpy(obj, "HFB1", 4);
	obj[5] = obj[6] = obj[7] = 0;
	for (int i = 0; i < 4; i++)
		obj[8 + i] = (uint8_t)(len >> (8 * i));
	if (compress2(obj + HDR, &zlen, data, (uLong)len, 1) == Z_OK &&
	    zlen < len) {
		obj[4] = 1;
	} else {
		obj[4] = 0;
		memcpy(obj + HDR, data, len);
		zlen = len;
	}
	rc = hf_s3_put(s3, o->bucket, key, obj, HDR + zlen, err);
	if (rc == 0) {
		__atomic_add_fetch(&p->uploaded, (int64_t)len, __ATOMIC_RELAXED);
		__atomic_add_fetch(&p->stored, (int64_t)(HDR + zlen),
				   __ATOMIC_RELAXED);
	}
	free(obj);
	free(key);
	return rc;
}

#define WORKERS 4

/*
 * What a crew of WORKERS threads shares besides its work: the first
 * failure (after which each stops at its next chunk) and how many have
 * finished.
 */
struct crew {
	pthread_mutex_t mu; /* err; the restore's list of chunks to sync */
	char err[512];
	bool failed;  /* atomic */
	int finished; /* atomic */
};

struct worker {
	struct crew *cr;
	void (*fn)(void *w, int index);
	void *w;
	int index;
};

static void crew_fail(struct crew *cr, const char *fmt, ...) HF_PRINTF(2, 3);

static void crew_fail(struct crew *cr, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&cr->mu);
	if (!cr->failed) {
		va_start(ap, fmt);
		vsnprintf(cr->err, sizeof(cr->err), fmt, ap);
		va_end(ap);
		__atomic_store_n(&cr->failed, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&cr->mu);
}

static bool crew_failed(struct crew *cr)
{
	return __atomic_load_n(&cr->failed, __ATOMIC_ACQUIRE);
}

static void *worker_start(void *arg)
{
	struct worker *me = arg;

	me->fn(me->w, me->index);
	__atomic_add_fetch(&me->cr->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Runs fn(w, 0) ... fn(w, WORKERS - 1) on threads of their own and
 * calls tick(arg) on this one every 50 ms until they have finished. A
 * thread that cannot start is a failure in cr. cr->mu is the caller's
 * (initialised before, destroyed after).
 */
static void crew_run(struct crew *cr, void (*fn)(void *w, int index), void *w,
		     void (*tick)(void *arg), void *arg)
{
	struct worker ws[WORKERS];
	pthread_t t[WORKERS];
	int started = 0;

	for (int i = 0; i < WORKERS; i++) {
		ws[started] = (struct worker){cr, fn, w, i};
		if (pthread_create(&t[started], NULL, worker_start,
				   &ws[started]) == 0)
			started++;
		else
			crew_fail(cr, "cannot start a thread");
	}
	while (__atomic_load_n(&cr->finished, __ATOMIC_ACQUIRE) < started) {
		tick(arg);
		usleep(50 * 1000);
	}
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

/* What a backup's workers share: worker w reads the chunks c % WORKERS == w. */
struct work {
	struct crew cr;
	struct opts *o;
	struct progress *p;
	const char *dir;
	int64_t size, nchunks;
	const unsigned char *todo; /* per chunk: 1 read it */
	char (*hex)[65];           /* per chunk: its hash, "" for zeros */
	char *const *have;         /* the store's chunks, sorted */
	size_t nhave;
};

static void backup_worker(void *arg, int index)
{
	struct work *w = arg;
	struct opts *o = w->o;
	char err[HF_S3_ERRLEN], serr[HF_VOL_ERR_MAX];
	uint8_t *buf = hf_xmalloc(HF_BACKUP_CHUNK);
	struct hf_snaps *sn = NULL;
	struct hf_s3 *s3 = NULL;
	int fd = open(o->replica, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0) {
		crew_fail(&w->cr, "%s: %s", o->replica, strerror(errno));
		goto out;
	}
	/* A reader store of its own: one is for one thread. */
	if (!(sn = hf_snaps_open_reader(w->dir, fd, serr, sizeof(serr)))) {
		crew_fail(&w->cr, "%s", serr);
		goto out;
	}
	if (hf_s3_new(&o->cfg, &s3, err)) {
		crew_fail(&w->cr, "%s", err);
		goto out;
	}
	for (int64_t c = index; c < w->nchunks; c += WORKERS) {
		size_t len = w->size - c * HF_BACKUP_CHUNK < HF_BACKUP_CHUNK
				     ? (size_t)(w->size - c * HF_BACKUP_CHUNK)
				     : HF_BACKUP_CHUNK;

		if (crew_failed(&w->cr))
			break;
		if (!w->todo[c])
			continue;
		if ((e = hf_snaps_read(sn, o->snapshot,
				       (uint64_t)(c * HF_BACKUP_CHUNK), buf,
				       len))) {
			crew_fail(&w->cr, "reading snapshot %s at %lld: %s",
				  o->snapshot, (long long)(c * HF_BACKUP_CHUNK),
				  strerror(e));
			break;
		}
		if (!all_zero(buf, len)) {
			sha256_hex(buf, len, w->hex[c]);
			if (present(w->have, w->nhave, w->hex[c])) {
				/* There already: an earlier backup, or a run
				 * cut short. */
				__atomic_add_fetch(&w->p->skipped, (int64_t)len,
						   __ATOMIC_RELAXED);
			} else if (put_chunk(o, s3, w->hex[c], buf, len, w->p,
					     err)) {
				crew_fail(&w->cr, "%s", err);
				break;
			}
		}
		__atomic_add_fetch(&w->p->done, (int64_t)len, __ATOMIC_RELAXED);
	}
out:
	hf_s3_free(s3);
	hf_snaps_close(sn);
	if (fd >= 0)
		close(fd);
	free(buf);
}

static void backup_tick(void *arg)
{
	status(arg, "running", NULL, false);
}

/* The store's chunk objects of the volume, as sorted hashes. */
static int list_chunks(struct opts *o, char ***have, size_t *n, char *err)
{
	struct hf_s3_list l = HF_S3_LIST_INIT;
	char *prefix = hf_xasprintf("%s%s/chunks/", o->prefix, o->volume);
	int rc = hf_s3_list(o->s3, o->bucket, prefix, 0, &l, err);

	*have = NULL;
	*n = 0;
	if (!rc) {
		*have = hf_xcalloc(l.len + 1, sizeof(**have));
		for (size_t i = 0; i < l.len; i++)
			if (strlen(l.items[i].key) == strlen(prefix) + 64)
				(*have)[(*n)++] =
				    hf_xstrdup(l.items[i].key + strlen(prefix));
		qsort(*have, *n, sizeof(**have), by_str);
	}
	hf_s3_list_release(&l);
	free(prefix);
	return rc;
}

static int do_backup(struct opts *o, struct progress *p)
{
	char err[HF_S3_ERRLEN], serr[HF_VOL_ERR_MAX];
	struct hf_snap_info info[HF_SNAP_MAX];
	struct hf_snaps *sn = NULL;
	json_t *base = NULL, *chunks = json_array(), *man;
	const char **base_of = NULL; /* base manifest: index -> hash */
	unsigned char *todo = NULL;
	char(*hexes)[65] = NULL, **have = NULL;
	int64_t size = -1, nchunks, base_n = 0;
	char *dir = hf_xstrdup(o->replica), *slash, *id, *key = NULL, *text;
	int fd = -1, rc = EXIT_FAIL;
	size_t n, nhave = 0;

	id = o->id ? hf_xstrdup(o->id) : hf_random_hex(8);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	if ((fd = open(o->replica, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = fail(p, "%s: %s", o->replica, strerror(errno));
		goto out;
	}
	if (!(sn = hf_snaps_open_reader(slash ? dir : ".", fd, serr,
					sizeof(serr)))) {
		rc = fail(p, "%s", serr);
		goto out;
	}
	n = hf_snaps_list(sn, info, HF_SNAP_MAX);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(info[i].id, o->snapshot))
			size = info[i].size;
	if (size < 0) {
		rc = fail(p, "the replica holds no snapshot %s", o->snapshot);
		goto out;
	}
	nchunks = (size + HF_BACKUP_CHUNK - 1) / HF_BACKUP_CHUNK;
	if (o->base) {
		size_t i;
		json_t *pair;

		if (!(base = get_manifest(o, o->base, err, NULL))) {
			rc = fail(p, "the base backup %s: %s", o->base, err);
			goto out;
		}
		if (hf_snaps_changed_since(sn, o->base_snapshot, o->snapshot,
					   0) < 0) {
			rc = fail(p, "the replica does not hold the base "
				     "snapshot %s (older than %s): a full "
				     "backup is needed",
				  o->base_snapshot, o->snapshot);
			goto out;
		}
		base_n = (json_integer_value(json_object_get(base, "size")) +
			  HF_BACKUP_CHUNK - 1) /
			 HF_BACKUP_CHUNK;
		base_of = hf_xcalloc((size_t)base_n + 1, sizeof(*base_of));
		json_array_foreach(json_object_get(base, "chunks"), i, pair) {
			json_int_t k = json_integer_value(json_array_get(pair, 0));
			const char *h =
			    json_string_value(json_array_get(pair, 1));

			if (k >= 0 && k < base_n && h && strlen(h) == 64)
				base_of[k] = h;
		}
	}
	p->total = size;
	status(p, "running", NULL, true);
	/* What to read: all, or what some snapshot kept since the base's. */
	todo = hf_xcalloc((size_t)nchunks + 1, 1);
	hexes = hf_xcalloc((size_t)nchunks + 1, sizeof(*hexes));
	for (int64_t c = 0; c < nchunks; c++) {
		size_t len = size - c * HF_BACKUP_CHUNK < HF_BACKUP_CHUNK
				     ? (size_t)(size - c * HF_BACKUP_CHUNK)
				     : HF_BACKUP_CHUNK;
		bool changed = !base || c >= base_n;

		for (int k = 0; !changed && k < SNAPS_PER_CHUNK; k++)
			changed = hf_snaps_changed_since(
				      sn, o->base_snapshot, o->snapshot,
				      (uint64_t)(c * SNAPS_PER_CHUNK + k)) != 0;
		todo[c] = changed;
		if (!changed) {
			/* The base has it as it is now (or it is zeros). */
			if (base_of[c])
				snprintf(hexes[c], sizeof(hexes[c]), "%s",
					 base_of[c]);
			p->reused += (int64_t)len;
			p->done += (int64_t)len;
		}
	}
	if (list_chunks(o, &have, &nhave, err)) {
		rc = fail(p, "%s", err);
		goto out;
	}
	{
		struct work w;

		memset(&w, 0, sizeof(w));
		w.o = o;
		w.p = p;
		w.dir = slash ? dir : ".";
		w.size = size;
		w.nchunks = nchunks;
		w.todo = todo;
		w.hex = hexes;
		w.have = have;
		w.nhave = nhave;
		pthread_mutex_init(&w.cr.mu, NULL);
		crew_run(&w.cr, backup_worker, &w, backup_tick, p);
		pthread_mutex_destroy(&w.cr.mu);
		if (w.cr.failed) {
			rc = fail(p, "%s", w.cr.err);
			goto out;
		}
	}
	for (int64_t c = 0; c < nchunks; c++)
		if (hexes[c][0])
			json_array_append_new(
			    chunks, json_pack("[I, s]", (json_int_t)c, hexes[c]));
	man = json_pack("{s:i, s:s, s:s?, s:s, s:s?, s:s, s:I, s:i, s:I, s:b, "
			"s:o, s:{s:I, s:I, s:I, s:I}}",
			"format", 1, "volume", o->volume, "volume_id",
			o->volume_id, "backup", id, "parent", o->base,
			"snapshot", o->snapshot, "size", (json_int_t)size,
			"chunk_size", HF_BACKUP_CHUNK, "created",
			(json_int_t)hf_now_ms(), "encrypted", o->encrypted,
			"chunks", chunks, "stats", "read",
			(json_int_t)(p->done - p->reused), "reused",
			(json_int_t)p->reused, "uploaded",
			(json_int_t)p->uploaded, "stored",
			(json_int_t)p->stored);
	chunks = NULL;
	/* Another cluster with the named key can open the data key. */
	if (o->encrypted && o->key_name && o->sealed_key)
		json_object_set_new(man, "key",
				    json_pack("{s:s, s:s}", "name", o->key_name,
					      "sealed", o->sealed_key));
	text = json_dumps(man, JSON_COMPACT);
	json_decref(man);
	key = manifest_key(o, id);
	if (!text || hf_s3_put(o->s3, o->bucket, key, text, strlen(text),
			       err)) {
		free(text);
		rc = fail(p, "the manifest: %s", text ? err : "out of memory");
		goto out;
	}
	free(text);
	status(p, "done", NULL, true);
	printf("backup %s of volume %s: %lld bytes, %lld read, %lld reused "
	       "from %s, %lld uploaded (%lld stored), s3://%s/%s\n",
	       id, o->volume, (long long)size,
	       (long long)(p->done - p->reused), (long long)p->reused,
	       o->base ? o->base : "no base", (long long)p->uploaded,
	       (long long)p->stored, o->bucket, key);
	rc = EXIT_OK;
out:
	json_decref(chunks);
	json_decref(base);
	free(base_of);
	free(todo);
	free(hexes);
	for (size_t i = 0; i < nhave; i++)
		free(have[i]);
	free(have);
	hf_snaps_close(sn);
	if (fd >= 0)
		close(fd);
	free(key);
	free(id);
	free(dir);
	return rc;
}

/* One chunk object back into len bytes at out; checks its hash. */
static int decode_chunk(const struct hf_buf *b, const char *hex, uint8_t *out,
			size_t len, char *why, size_t why_len)
{
	const uint8_t *d = (const uint8_t *)b->data;
	uint32_t raw = 0;
	uLongf got = len;
	char h[65];

	if (b->len < HDR || memcmp(d, "HFB1", 4) || d[4] > 1 || d[5] ||
	    d[6] || d[7]) {
		snprintf(why, why_len, "not a chunk object");
		return -1;
	}
	for (int i = 3; i >= 0; i--)
		raw = raw << 8 | d[8 + i];
	if (raw != len) {
		snprintf(why, why_len, "holds %u bytes, not %zu", raw, len);
		return -1;
	}
	if (d[4] == 0 ? b->len - HDR != len
		      : uncompress(out, &got, d + HDR, b->len - HDR) != Z_OK ||
			    got != len) {
		snprintf(why, why_len, "does not decompress to %zu bytes", len);
		return -1;
	}
	if (d[4] == 0)
		memcpy(out, d + HDR, len);
	sha256_hex(out, len, h);
	if (strcmp(h, hex) != 0) {
		snprintf(why, why_len, "its bytes do not match its SHA-256");
		return -1;
	}
	return 0;
}

/*
 * Restore.
 *
 * The manifest's chunks with data are fetched by WORKERS threads, each
 * with a client of its own, taking the next chunk from a shared cursor;
 * each is decoded, checked against its SHA-256 and written at its own
 * offset (pwrite: the chunks are disjoint, no lock needed). Chunks of
 * zeros are never written, so FILE stays sparse.
 *
 * Resume. FILE.progress, the journal, says which chunks of FILE are on
 * disk. It is a sequence of records, appended (never rewritten: it is
 * only cut back to its whole records, or emptied to start afresh):
 *   "HFRJ", u8 type, 3 zero bytes, u32 payload length, the payload,
 *   u32 CRC-32C of all of that (integers little-endian)
 * of three types:
 *   'H' first: u64 the volume's size, the manifest's SHA-256 (64 hex
 *       digits), then which backup it is, as text (for messages);
 *   'F' FILE's st_dev and st_ino (u64 each), once FILE is made;
 *   'C' u64 indexes of chunks written to FILE and fdatasync'ed before
 *       the record was appended (one record per commit, about 1 s).
 * A record cut short or whose CRC does not match ends the journal (a
 * write torn by a crash): the next run cuts it off before appending.
 * The order makes every state a crash can leave safe. The header is
 * synced before FILE is created, so a FILE without a journal is never
 * one of ours and is refused, as it always was. A 'C' record names only
 * chunks already synced, so a record lost or torn costs fetching them
 * again, never a hole taken for data; hence the records themselves need
 * no sync.
 *
 * A restore that finds FILE.progress goes on from it when its header
 * names the same manifest (by hash: the same bytes at the same offsets)
 * and FILE is the file it recorded; when FILE is missing, the journal is
 * of nothing and the restore starts afresh; otherwise it refuses, saying
 * to remove both. The journal is locked (flock) while a restore runs, so
 * two never write one FILE. Once every chunk is written and FILE synced,
 * the journal is removed. A restore that fails once it has begun leaves
 * FILE and its journal for the next run.
 */
#define JOURNAL_SUFFIX ".progress"
#define JREC_HDR 12
#define JREC_TAIL 4
/* A journal's bytes beyond its 'C' records (24 bytes a chunk at most). */
#define JOURNAL_SLACK ((size_t)64 << 10)
#define COMMIT_MS 1000

enum { J_HEAD = 'H', J_FILE = 'F', J_CHUNKS = 'C' };

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Writes len bytes: at off, or appended when off < 0. Returns 0 or -1
 * with errno.
 */
static int write_all(int fd, const void *data, size_t len, off_t off)
{
	const uint8_t *d = data;

	while (len) {
		ssize_t n = off < 0 ? write(fd, d, len)
				    : pwrite(fd, d, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		d += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

/* Appends one record to the journal. Returns 0 or -1 with errno. */
static int journal_append(int fd, int type, const void *payload, size_t len)
{
	uint8_t *rec = hf_xmalloc(JREC_HDR + len + JREC_TAIL);
	int rc;

	memcpy(rec, "HFRJ", 4);
	rec[4] = (uint8_t)type;
	rec[5] = rec[6] = rec[7] = 0;
	put_le(rec + 8, len, 4);
	if (len)
		memcpy(rec + JREC_HDR, payload, len);
	put_le(rec + JREC_HDR + len, hf_crc32c(0, rec, JREC_HDR + len), 4);
	rc = write_all(fd, rec, JREC_HDR + len + JREC_TAIL, -1);
	free(rec);
	return rc;
}

/* What a journal says. */
struct journal {
	bool head; /* a whole header */
	int64_t size;
	char manifest[65];
	char what[256];
	bool file; /* an 'F' record */
	uint64_t dev, ino;
	int64_t *chunks; /* of the 'C' records; the caller frees */
	size_t nchunks;
	size_t valid; /* bytes of whole records, from the start */
};

/* Reads len bytes of a journal into j, up to the first torn record. */
static void journal_parse(const uint8_t *d, size_t len, struct journal *j)
{
	size_t off = 0, cap = 0;

	memset(j, 0, sizeof(*j));
	while (len - off >= JREC_HDR + JREC_TAIL) {
		const uint8_t *r = d + off, *pl = r + JREC_HDR;
		uint64_t n = get_le(r + 8, 4);
		int type = r[4];

		if (memcmp(r, "HFRJ", 4) || r[5] || r[6] || r[7] ||
		    n > len - off - JREC_HDR - JREC_TAIL ||
		    get_le(pl + n, 4) != hf_crc32c(0, r, JREC_HDR + n))
			break;
		if (!j->head) {
			if (type != J_HEAD || n < 8 + 64)
				break;
			j->head = true;
			j->size = (int64_t)get_le(pl, 8);
			memcpy(j->manifest, pl + 8, 64);
			snprintf(j->what, sizeof(j->what), "%.*s",
				 (int)(n - 72 < sizeof(j->what) - 1
					   ? n - 72
					   : sizeof(j->what) - 1),
				 (const char *)pl + 72);
		} else if (type == J_FILE && n == 16 && !j->file) {
			j->file = true;
			j->dev = get_le(pl, 8);
			j->ino = get_le(pl + 8, 8);
		} else if (type == J_CHUNKS && n % 8 == 0 && j->file) {
			if (j->nchunks + n / 8 > cap) {
				cap = 2 * (j->nchunks + n / 8);
				j->chunks = hf_xrealloc(
				    j->chunks, cap * sizeof(*j->chunks));
			}
			for (uint64_t k = 0; k < n / 8; k++)
				j->chunks[j->nchunks++] =
				    (int64_t)get_le(pl + 8 * k, 8);
		} else {
			break;
		}
		off += JREC_HDR + n + JREC_TAIL;
		j->valid = off;
	}
}

/* A chunk of the backup with data. */
struct chunk {
	int64_t c; /* its index */
	char hex[65];
	bool done; /* in FILE (and synced) already */
};

static int by_index(const void *a, const void *b)
{
	int64_t x = ((const struct chunk *)a)->c;
	int64_t y = ((const struct chunk *)b)->c;

	return (x > y) - (x < y);
}

static size_t chunk_len(int64_t size, int64_t c)
{
	return size - c * HF_BACKUP_CHUNK < HF_BACKUP_CHUNK
		   ? (size_t)(size - c * HF_BACKUP_CHUNK)
		   : HF_BACKUP_CHUNK;
}

/* A restore under way; its workers share the part below the line. */
struct restore {
	struct opts *o;
	struct progress *p;
	int64_t size;
	char manifest[65];    /* the manifest's SHA-256 */
	struct chunk *chunks; /* those with data, by index */
	size_t nchunks;
	char *jpath;       /* FILE.progress */
	int fd, jfd;       /* FILE and the journal (locked), or -1 */
	bool made_journal; /* by this run */
	bool locked;       /* the journal's lock is ours */
	bool began;        /* the header is written: FILE and it stay */
	bool commit_failed;
	int64_t last_commit_ms;
	uint8_t *batch; /* commit's payload */
	/* ---- */
	struct crew cr;
	struct chunk **todo; /* the chunks to fetch */
	size_t ntodo;
	size_t next;      /* the next of todo to take (atomic) */
	int64_t *written; /* chunks written, not yet synced (under cr.mu) */
	size_t nwritten;
};

static void restore_worker(void *arg, int index)
{
	struct restore *r = arg;
	struct opts *o = r->o;
	char err[HF_S3_ERRLEN], why[128];
	uint8_t *buf = hf_xmalloc(HF_BACKUP_CHUNK);
	struct hf_buf b = HF_BUF_INIT;
	struct hf_s3 *s3 = NULL;
	size_t i;

	(void)index; /* they take chunks in turn, not by index */
	if (hf_s3_new(&o->cfg, &s3, err)) {
		crew_fail(&r->cr, "%s", err);
		goto out;
	}
	while (!crew_failed(&r->cr) &&
	       (i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED)) <
		   r->ntodo) {
		const struct chunk *ch = r->todo[i];
		size_t len = chunk_len(r->size, ch->c);
		char *key = chunk_key(o, ch->hex);
		bool ok = false;

		if (hf_s3_get(s3, o->bucket, key, HDR + compressBound(len), &b,
			      err))
			crew_fail(&r->cr, "%s", err);
		else if (decode_chunk(&b, ch->hex, buf, len, why, sizeof(why)))
			crew_fail(&r->cr, "chunk %s: %s", key, why);
		else if (write_all(r->fd, buf, len,
				   (off_t)(ch->c * HF_BACKUP_CHUNK)))
			crew_fail(&r->cr, "%s: %s", o->out, strerror(errno));
		else
			ok = true;
		free(key);
		if (!ok)
			break;
		__atomic_add_fetch(&r->p->fetched, (int64_t)b.len,
				   __ATOMIC_RELAXED);
		pthread_mutex_lock(&r->cr.mu);
		r->written[r->nwritten++] = ch->c;
		pthread_mutex_unlock(&r->cr.mu);
	}
out:
	hf_s3_free(s3);
	hf_buf_release(&b);
	free(buf);
}

/*
 * Makes the chunks written so far durable and says so in the journal:
 * FILE is synced first, then their record appended. Returns 0, or -1
 * with err (the journal may then end in a torn record, which the next
 * run cuts off). The workers may run meanwhile; one thread commits.
 */
static int commit(struct restore *r, char *err, size_t err_len)
{
	int64_t bytes = 0;
	size_t n;

	r->last_commit_ms = hf_mono_ms();
	pthread_mutex_lock(&r->cr.mu);
	n = r->nwritten;
	for (size_t i = 0; i < n; i++) {
		put_le(r->batch + 8 * i, (uint64_t)r->written[i], 8);
		bytes += (int64_t)chunk_len(r->size, r->written[i]);
	}
	r->nwritten = 0;
	pthread_mutex_unlock(&r->cr.mu);
	if (!n)
		return 0;
	/* The data before the record that names it. */
	if (fdatasync(r->fd) < 0) {
		snprintf(err, err_len, "%s: %s", r->o->out, strerror(errno));
		return -1;
	}
	if (journal_append(r->jfd, J_CHUNKS, r->batch, 8 * n) < 0) {
		snprintf(err, err_len, "%s: %s", r->jpath, strerror(errno));
		return -1;
	}
	__atomic_add_fetch(&r->p->done, bytes, __ATOMIC_RELAXED);
	return 0;
}

static void restore_tick(void *arg)
{
	struct restore *r = arg;
	char err[512];

	if (!r->commit_failed &&
	    hf_mono_ms() - r->last_commit_ms >= COMMIT_MS &&
	    commit(r, err, sizeof(err))) {
		r->commit_failed = true;
		crew_fail(&r->cr, "%s", err);
	}
	status(r->p, "running", NULL, false);
}

/* Records FILE (st) in the journal. Returns 0 or -1 with errno. */
static int journal_file(struct restore *r, const struct stat *st)
{
	uint8_t pl[16];

	put_le(pl, (uint64_t)st->st_dev, 8);
	put_le(pl + 8, (uint64_t)st->st_ino, 8);
	return journal_append(r->jfd, J_FILE, pl, sizeof(pl));
}

/* Up to max bytes of fd from its start into *out (the caller frees it). */
static int read_upto(int fd, size_t max, uint8_t **out, size_t *len)
{
	uint8_t *d = hf_xmalloc(max + 1);
	size_t got = 0;

	while (got < max) {
		ssize_t n = pread(fd, d + got, max - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(d);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*out = d;
	*len = got;
	return 0;
}

/* A new journal's header, and FILE, made in that order (see above). */
static int restore_afresh(struct restore *r)
{
	struct opts *o = r->o;
	char *what = hf_xasprintf("backup %s of volume %s in s3://%s/%s",
				  o->backup, o->volume, o->bucket, o->prefix);
	size_t n = 8 + 64 + strlen(what);
	uint8_t *h = hf_xmalloc(n);
	struct stat st;
	int rc = EXIT_FAIL;

	put_le(h, (uint64_t)r->size, 8);
	memcpy(h + 8, r->manifest, 64);
	memcpy(h + 72, what, strlen(what));
	if (ftruncate(r->jfd, 0) < 0 ||
	    journal_append(r->jfd, J_HEAD, h, n) < 0 ||
	    fdatasync(r->jfd) < 0 || hf_fsync_parent(r->jpath) < 0) {
		rc = fail(r->p, "%s: %s", r->jpath, strerror(errno));
		goto out;
	}
	r->fd = open(o->out, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		/* Made by someone else since: the header must not make it
		 * ours. */
		rc = fail(r->p, "%s: %s", o->out, strerror(errno));
		if (ftruncate(r->jfd, 0) < 0)
			fprintf(stderr, "holdfast-volume: %s: %s\n", r->jpath,
				strerror(errno));
		goto out;
	}
	r->began = true;
	if (fstat(r->fd, &st) < 0 || ftruncate(r->fd, r->size) < 0 ||
	    journal_file(r, &st) < 0) {
		rc = fail(r->p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	rc = EXIT_OK;
out:
	free(h);
	free(what);
	return rc;
}

/*
 * Opens FILE and its journal for r: afresh, or to go on from the journal
 * (its chunks marked done). Returns EXIT_OK, or EXIT_FAIL after fail().
 */
static int restore_open(struct restore *r)
{
	struct opts *o = r->o;
	struct progress *p = r->p;
	struct journal j;
	struct stat st;
	uint8_t *data = NULL;
	size_t len = 0, max = JOURNAL_SLACK + 24 * (r->nchunks + 1);
	off_t jsize;
	int rc = EXIT_FAIL;

	memset(&j, 0, sizeof(j));
	r->jfd = open(r->jpath, O_RDWR | O_APPEND | O_CLOEXEC);
	if (r->jfd < 0 && errno == ENOENT) {
		if (lstat(o->out, &st) == 0) {
			rc = fail(p, "%s: %s (and there is no %s to resume "
				     "from)",
				  o->out, strerror(EEXIST), r->jpath);
			goto out;
		}
		r->jfd = open(r->jpath,
			      O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
			      0600);
		r->made_journal = r->jfd >= 0;
	}
	if (r->jfd < 0) {
		rc = fail(p, "%s: %s", r->jpath, strerror(errno));
		goto out;
	}
	if (flock(r->jfd, LOCK_EX | LOCK_NB) < 0 || fstat(r->jfd, &st) < 0) {
		rc = fail(p, "%s: %s", r->jpath,
			  errno == EWOULDBLOCK
			      ? "another restore to this file is running"
			      : strerror(errno));
		goto out;
	}
	if (st.st_nlink == 0) {
		/* Opened as another restore finished and removed it. */
		rc = fail(p, "%s: another restore to this file has just "
			     "ended",
			  r->jpath);
		goto out;
	}
	r->locked = true;
	jsize = st.st_size;
	if (read_upto(r->jfd, (size_t)jsize < max ? (size_t)jsize : max, &data,
		      &len) < 0) {
		rc = fail(p, "%s: %s", r->jpath, strerror(errno));
		goto out;
	}
	journal_parse(data, len, &j);
	r->fd = open(o->out, O_RDWR | O_CLOEXEC);
	if (r->fd < 0 && errno == ENOENT) {
		/* No FILE: a journal there is of nothing. */
		rc = restore_afresh(r);
		goto out;
	}
	if (r->fd < 0 || fstat(r->fd, &st) < 0) {
		rc = fail(p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	/* FILE is there: go on only from a journal of this very restore. */
	if (!j.head) {
		rc = fail(p, "%s exists and %s is not a restore's journal: "
			     "remove both to restore",
			  o->out, r->jpath);
		goto out;
	}
	if (j.size != r->size || strcmp(j.manifest, r->manifest) != 0) {
		rc = fail(p, "%s is the journal of another restore (%s): "
			     "remove it and %s to restore this one",
			  r->jpath, j.what, o->out);
		goto out;
	}
	if (j.file && (j.dev != (uint64_t)st.st_dev ||
		       j.ino != (uint64_t)st.st_ino)) {
		rc = fail(p, "%s is not the file %s was written for: remove "
			     "both to restore",
			  o->out, r->jpath);
		goto out;
	}
	if (j.nchunks && st.st_size != r->size) {
		rc = fail(p, "%s is %lld bytes, not %lld as %s has it: "
			     "remove both to restore",
			  o->out, (long long)st.st_size, (long long)r->size,
			  r->jpath);
		goto out;
	}
	r->began = true;
	/* A torn tail is cut off, or what is appended next goes unread. */
	if ((off_t)j.valid < jsize && ftruncate(r->jfd, (off_t)j.valid) < 0) {
		rc = fail(p, "%s: %s", r->jpath, strerror(errno));
		goto out;
	}
	/* Killed between making FILE and recording it: it is ours (the
	 * header came first, and FILE did not exist then). */
	if (!j.file &&
	    (ftruncate(r->fd, r->size) < 0 || journal_file(r, &st) < 0)) {
		rc = fail(p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	for (size_t k = 0; k < j.nchunks; k++) {
		struct chunk key = {.c = j.chunks[k]};
		struct chunk *ch = bsearch(&key, r->chunks, r->nchunks,
					   sizeof(*r->chunks), by_index);

		if (ch && !ch->done) {
			ch->done = true;
			p->skipped += (int64_t)chunk_len(r->size, ch->c);
		}
	}
	p->done = p->skipped;
	rc = EXIT_OK;
out:
	free(j.chunks);
	free(data);
	return rc;
}

static int do_restore(struct opts *o, struct progress *p)
{
	char err[HF_S3_ERRLEN];
	struct restore r;
	json_t *m, *pair;
	size_t i, present = 0;
	int rc = EXIT_FAIL;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.p = p;
	r.fd = r.jfd = -1;
	r.jpath = hf_xasprintf("%s" JOURNAL_SUFFIX, o->out);
	p->restore = true;
	m = get_manifest(o, o->backup, err, r.manifest);
	if (!m) {
		rc = fail(p, "backup %s of volume %s: %s", o->backup, o->volume,
			  err);
		goto out;
	}
	r.size = json_integer_value(json_object_get(m, "size"));
	if (r.size <= 0) {
		rc = fail(p, "backup %s has no size", o->backup);
		goto out;
	}
	r.chunks = hf_xcalloc(json_array_size(json_object_get(m, "chunks")) + 1,
			      sizeof(*r.chunks));
	json_array_foreach(json_object_get(m, "chunks"), i, pair) {
		json_int_t c = json_integer_value(json_array_get(pair, 0));
		const char *hex = json_string_value(json_array_get(pair, 1));

		if (c < 0 || c > (r.size - 1) / HF_BACKUP_CHUNK || !hex ||
		    strlen(hex) != 64) {
			rc = fail(p, "backup %s: entry %zu of its manifest is "
				     "not a chunk of it",
				  o->backup, i);
			goto out;
		}
		r.chunks[r.nchunks].c = c;
		memcpy(r.chunks[r.nchunks++].hex, hex, 65);
	}
	qsort(r.chunks, r.nchunks, sizeof(*r.chunks), by_index);
	p->size = r.size;
	for (i = 0; i < r.nchunks; i++)
		p->total += (int64_t)chunk_len(r.size, r.chunks[i].c);
	if ((rc = restore_open(&r)) != EXIT_OK)
		goto out;
	rc = EXIT_FAIL;
	r.todo = hf_xcalloc(r.nchunks + 1, sizeof(*r.todo));
	for (i = 0; i < r.nchunks; i++) {
		if (r.chunks[i].done)
			present++;
		else
			r.todo[r.ntodo++] = &r.chunks[i];
	}
	r.written = hf_xcalloc(r.ntodo + 1, sizeof(*r.written));
	r.batch = hf_xmalloc(8 * (r.ntodo + 1));
	r.last_commit_ms = hf_mono_ms();
	status(p, "running", NULL, true);
	pthread_mutex_init(&r.cr.mu, NULL);
	crew_run(&r.cr, restore_worker, &r, restore_tick, &r);
	/* What was written is kept even when a chunk failed: the next run
	 * need not fetch it again. */
	if (!r.commit_failed && commit(&r, err, sizeof(err)))
		crew_fail(&r.cr, "%s", err);
	pthread_mutex_destroy(&r.cr.mu);
	if (r.cr.failed) {
		rc = fail(p, "%s", r.cr.err);
		goto out;
	}
	if (fdatasync(r.fd) < 0) {
		rc = fail(p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	/* FILE is whole and synced: the journal goes (a crash before it is
	 * gone leaves one whose run finds FILE written). */
	if (unlink(r.jpath) < 0 || hf_fsync_parent(r.jpath) < 0) {
		rc = fail(p, "%s: %s", r.jpath, strerror(errno));
		goto out;
	}
	p->done = p->total;
	status(p, "done", NULL, true);
	printf("backup %s of volume %s restored to %s: %lld bytes, %zu "
	       "chunks with data",
	       o->backup, o->volume, o->out, (long long)r.size, r.nchunks);
	if (present)
		printf(", %zu of them written by a run before", present);
	printf("\n");
	rc = EXIT_OK;
out:
	/* Nothing of a restore that never began is left behind; what one
	 * that began has written is kept for the next run. */
	if (rc != EXIT_OK && r.made_journal && r.locked && !r.began)
		unlink(r.jpath);
	else if (rc != EXIT_OK && r.began)
		fprintf(stderr, "holdfast-volume: %s and %s are kept: the same "
				"restore run again goes on from there\n",
			o->out, r.jpath);
	if (r.fd >= 0)
		close(r.fd);
	if (r.jfd >= 0)
		close(r.jfd); /* and its lock */
	json_decref(m);
	free(r.chunks);
	free(r.todo);
	free(r.written);
	free(r.batch);
	free(r.jpath);
	return rc;
}

int hf_backup_restore_file(const struct hf_s3_config *cfg, const char *url,
			   const char *volume, const char *backup,
			   const char *path, int64_t *progress, char *err,
			   size_t err_len)
{
	struct opts o;
	struct progress p;
	char e[HF_S3_ERRLEN];
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	p.ext = progress;
	o.url = url;
	o.volume = volume;
	o.backup = backup;
	o.out = path;
	o.cfg = *cfg;
	if (parse_url(&o)) {
		snprintf(err, err_len, "%s is not s3://bucket[/prefix]", url);
		rc = -1;
	} else if (hf_s3_new(cfg, &o.s3, e)) {
		snprintf(err, err_len, "%s", e);
		rc = -1;
	} else {
		rc = do_restore(&o, &p) == EXIT_OK ? 0 : -1;
		if (rc)
			snprintf(err, err_len, "%s", p.msg);
	}
	hf_s3_free(o.s3);
	free(o.bucket);
	free(o.prefix);
	return rc;
}

static int do_list(struct opts *o)
{
	char err[HF_S3_ERRLEN], *prefix;
	struct hf_s3_list l = HF_S3_LIST_INIT;
	int rc;

	prefix = hf_xasprintf("%s%s/backups/", o->prefix, o->volume);
	rc = hf_s3_list(o->s3, o->bucket, prefix, 0, &l, err);
	if (rc) {
		fprintf(stderr, "holdfast-volume: %s\n", err);
		free(prefix);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < l.len; i++) {
		const char *k = l.items[i].key + strlen(prefix);
		size_t n = strlen(k);
		char *id;
		json_t *m;

		if (n < 6 || strcmp(k + n - 5, ".json") != 0)
			continue;
		id = hf_xstrndup(k, n - 5);
		m = get_manifest(o, id, err, NULL);
		if (m)
			printf("%s created_ms=%lld parent=%s snapshot=%s "
			       "size=%lld chunks=%zu encrypted=%s\n",
			       id,
			       (long long)json_integer_value(
				   json_object_get(m, "created")),
			       json_string_value(json_object_get(m, "parent"))
				   ? json_string_value(
					 json_object_get(m, "parent"))
				   : "-",
			       json_string_value(json_object_get(m, "snapshot"))
				   ? json_string_value(
					 json_object_get(m, "snapshot"))
				   : "-",
			       (long long)json_integer_value(
				   json_object_get(m, "size")),
			       json_array_size(json_object_get(m, "chunks")),
			       json_is_true(json_object_get(m, "encrypted"))
				   ? "yes"
				   : "no");
		else
			fprintf(stderr, "holdfast-volume: %s\n", err);
		json_decref(m);
		free(id);
	}
	hf_s3_list_release(&l);
	free(prefix);
	return EXIT_OK;
}

int hf_volume_backup_main(int argc, char **argv)
{
	struct opts o;
	struct progress p;
	struct hf_s3_config cfg;
	char err[HF_S3_ERRLEN];
	const char *what = argv[0];
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	o.region = "us-east-1";
	for (int i = 1; i < argc; i++) {
		static const struct {
			const char *flag;
			size_t off;
		} flags[] = {
		    {"--endpoint", offsetof(struct opts, endpoint)},
		    {"--region", offsetof(struct opts, region)},
		    {"--ca", offsetof(struct opts, ca)},
		    {"--to", offsetof(struct opts, out)},
		    {"--from", offsetof(struct opts, url)},
		    {"--volume", offsetof(struct opts, volume)},
		    {"--volume-id", offsetof(struct opts, volume_id)},
		    {"--replica", offsetof(struct opts, replica)},
		    {"--snapshot", offsetof(struct opts, snapshot)},
		    {"--id", offsetof(struct opts, id)},
		    {"--base", offsetof(struct opts, base)},
		    {"--base-snapshot", offsetof(struct opts, base_snapshot)},
		    {"--backup", offsetof(struct opts, backup)},
		    {"--status", offsetof(struct opts, status)},
		    {"--key-name", offsetof(struct opts, key_name)},
		    {"--sealed-key", offsetof(struct opts, sealed_key)},
		};
		bool known = false;

		if (!strcmp(argv[i], "--encrypted")) {
			o.encrypted = true;
			continue;
		}
		for (size_t k = 0; k < HF_ARRAY_LEN(flags) && !known; k++)
			if (!strcmp(argv[i], flags[k].flag) && i + 1 < argc) {
				*(const char **)((char *)&o + flags[k].off) =
				    argv[++i];
				known = true;
			}
		if (!known) {
			fputs(USAGE, stderr);
			return EXIT_USAGE;
		}
	}
	/* backup names its destination --to, the others their source --from. */
	if (!strcmp(what, "backup")) {
		o.url = o.out;
		o.out = NULL;
	}
	p.path = o.status;
	if (!o.endpoint || !o.volume || parse_url(&o) ||
	    !hf_vol_id_ok(o.volume, strlen(o.volume), HF_VOL_NAME_MAX) ||
	    (!strcmp(what, "backup") &&
	     (!o.replica || !o.snapshot || !hf_snap_id_ok(o.snapshot) ||
	      !o.base != !o.base_snapshot ||
	      (o.base && (!hf_snap_id_ok(o.base) ||
			  !hf_snap_id_ok(o.base_snapshot))) ||
	      (o.id && !hf_snap_id_ok(o.id)))) ||
	    (!strcmp(what, "restore") &&
	     (!o.out || !o.backup || !hf_snap_id_ok(o.backup)))) {
		fputs(USAGE, stderr);
		free(o.bucket);
		free(o.prefix);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&cfg, 0, sizeof(cfg));
	o.cfg.endpoint = o.endpoint;
	o.cfg.region = o.region;
	o.cfg.ca_file = o.ca;
	o.cfg.access_key = getenv("HOLDFAST_S3_ACCESS_KEY");
	o.cfg.secret_key = getenv("HOLDFAST_S3_SECRET_KEY");
	cfg.endpoint = o.endpoint;
	cfg.region = o.region;
	cfg.ca_file = o.ca;
	cfg.access_key = getenv("HOLDFAST_S3_ACCESS_KEY");
	cfg.secret_key = getenv("HOLDFAST_S3_SECRET_KEY");
	if (!cfg.access_key || !cfg.secret_key) {
		rc = fail(&p, "HOLDFAST_S3_ACCESS_KEY and HOLDFAST_S3_SECRET_KEY "
			      "must be set");
	} else if (hf_s3_new(&cfg, &o.s3, err)) {
		rc = fail(&p, "%s", err);
	} else if (!strcmp(what, "backup")) {
		rc = do_backup(&o, &p);
	} else if (!strcmp(what, "restore")) {
		rc = do_restore(&o, &p);
	} else {
		rc = do_list(&o);
	}
	hf_s3_free(o.s3);
	free(o.bucket);
	free(o.prefix);
	return rc;
}
