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
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/clock.h"
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
    "  backup's bytes to FILE (sparse; it must not exist). backups lists a\n"
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

/* Progress, written to --status (atomically) at most once a second. */
struct progress {
	const char *path;
	int64_t total, done, uploaded, stored, reused, skipped;
	int64_t last_ms;
	char msg[768]; /* the last failure */
};

static void status(struct progress *p, const char *state, const char *msg,
		   bool force)
{
	int64_t now = hf_mono_ms();
	json_t *o;
	char *text;

	if (!p->path || (!force && now - p->last_ms < 1000))
		return;
	p->last_ms = now;
	/* The workers add to these as they go. */
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "state", state,
		      "total", (json_int_t)p->total, "done",
		      (json_int_t)__atomic_load_n(&p->done, __ATOMIC_RELAXED),
		      "uploaded",
		      (json_int_t)__atomic_load_n(&p->uploaded, __ATOMIC_RELAXED),
		      "stored",
		      (json_int_t)__atomic_load_n(&p->stored, __ATOMIC_RELAXED),
		      "reused", (json_int_t)p->reused, "present",
		      (json_int_t)__atomic_load_n(&p->skipped, __ATOMIC_RELAXED));
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

/* A backup's manifest from the store, or NULL with err. */
static json_t *get_manifest(struct opts *o, const char *id, char *err)
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
		}
	}
	hf_buf_release(&b);
	free(key);
	return m;
}

/*
 * Stores one chunk (unless the store has it): compressed when that is
 * smaller. Returns 0 or an HF_E* code with err.
 */
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

/* What the workers share: each takes the chunks c with c % WORKERS == w. */
struct work {
	struct opts *o;
	struct progress *p;
	const char *dir;
	int64_t size, nchunks;
	const unsigned char *todo; /* per chunk: 1 read it */
	char (*hex)[65];           /* per chunk: its hash, "" for zeros */
	char *const *have;         /* the store's chunks, sorted */
	size_t nhave;
	pthread_mutex_t mu;
	char err[512];             /* the first failure */
	bool failed;               /* atomic */
	int finished;              /* workers done (atomic) */
};

struct worker {
	struct work *w;
	int index;
};

static void work_fail(struct work *w, const char *fmt, ...) HF_PRINTF(2, 3);

static void work_fail(struct work *w, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&w->mu);
	if (!w->failed) {
		va_start(ap, fmt);
		vsnprintf(w->err, sizeof(w->err), fmt, ap);
		va_end(ap);
		__atomic_store_n(&w->failed, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *worker_main(void *arg)
{
	struct worker *me = arg;
	struct work *w = me->w;
	struct opts *o = w->o;
	char err[HF_S3_ERRLEN], serr[HF_VOL_ERR_MAX];
	uint8_t *buf = hf_xmalloc(HF_BACKUP_CHUNK);
	struct hf_snaps *sn = NULL;
	struct hf_s3 *s3 = NULL;
	int fd = open(o->replica, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0) {
		work_fail(w, "%s: %s", o->replica, strerror(errno));
		goto out;
	}
	/* A reader store of its own: one is for one thread. */
	if (!(sn = hf_snaps_open_reader(w->dir, fd, serr, sizeof(serr)))) {
		work_fail(w, "%s", serr);
		goto out;
	}
	if (hf_s3_new(&o->cfg, &s3, err)) {
		work_fail(w, "%s", err);
		goto out;
	}
	for (int64_t c = me->index; c < w->nchunks; c += WORKERS) {
		size_t len = w->size - c * HF_BACKUP_CHUNK < HF_BACKUP_CHUNK
				     ? (size_t)(w->size - c * HF_BACKUP_CHUNK)
				     : HF_BACKUP_CHUNK;

		if (__atomic_load_n(&w->failed, __ATOMIC_ACQUIRE))
			break;
		if (!w->todo[c])
			continue;
		if ((e = hf_snaps_read(sn, o->snapshot,
				       (uint64_t)(c * HF_BACKUP_CHUNK), buf,
				       len))) {
			work_fail(w, "reading snapshot %s at %lld: %s",
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
				work_fail(w, "%s", err);
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
	__atomic_add_fetch(&w->finished, 1, __ATOMIC_RELEASE);
	return NULL;
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

		if (!(base = get_manifest(o, o->base, err))) {
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
		struct worker ws[WORKERS];
		pthread_t t[WORKERS];
		int started = 0;

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
		pthread_mutex_init(&w.mu, NULL);
		for (int i = 0; i < WORKERS; i++) {
			ws[i].w = &w;
			ws[i].index = i;
			if (pthread_create(&t[i], NULL, worker_main, &ws[i]) == 0)
				started++;
			else
				work_fail(&w, "cannot start a thread");
		}
		while (__atomic_load_n(&w.finished, __ATOMIC_ACQUIRE) < started) {
			status(p, "running", NULL, false);
			usleep(100 * 1000);
		}
		for (int i = 0; i < started; i++)
			pthread_join(t[i], NULL);
		pthread_mutex_destroy(&w.mu);
		if (w.failed || started < WORKERS) {
			rc = fail(p, "%s", w.err);
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

static int do_restore(struct opts *o, struct progress *p)
{
	char err[HF_S3_ERRLEN], why[128];
	json_t *m = get_manifest(o, o->backup, err), *pair;
	uint8_t *buf = hf_xmalloc(HF_BACKUP_CHUNK);
	struct hf_buf b = HF_BUF_INIT;
	int64_t size;
	int fd = -1, rc = EXIT_FAIL;
	size_t i;

	if (!m) {
		rc = fail(p, "backup %s of volume %s: %s", o->backup, o->volume,
			  err);
		goto out;
	}
	size = json_integer_value(json_object_get(m, "size"));
	if (size <= 0) {
		rc = fail(p, "backup %s has no size", o->backup);
		goto out;
	}
	fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, size) < 0) {
		rc = fail(p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	p->total = size;
	status(p, "running", NULL, true);
	json_array_foreach(json_object_get(m, "chunks"), i, pair) {
		json_int_t c = json_integer_value(json_array_get(pair, 0));
		const char *hex = json_string_value(json_array_get(pair, 1));
		size_t len;
		char *key;
		int r;

		if (c < 0 || c * HF_BACKUP_CHUNK >= size || !hex ||
		    strlen(hex) != 64) {
			rc = fail(p, "backup %s: entry %zu of its manifest is "
				     "not a chunk of it",
				  o->backup, i);
			goto out;
		}
		len = size - c * HF_BACKUP_CHUNK < HF_BACKUP_CHUNK
			  ? (size_t)(size - c * HF_BACKUP_CHUNK)
			  : HF_BACKUP_CHUNK;
		key = chunk_key(o, hex);
		hf_buf_release(&b);
		r = hf_s3_get(o->s3, o->bucket, key, HDR + compressBound(len),
			      &b, err);
		if (r == 0 && decode_chunk(&b, hex, buf, len, why,
					   sizeof(why))) {
			rc = fail(p, "chunk %s: %s", key, why);
			free(key);
			goto out;
		}
		free(key);
		if (r) {
			rc = fail(p, "%s", err);
			goto out;
		}
		if (pwrite(fd, buf, len, (off_t)(c * HF_BACKUP_CHUNK)) !=
		    (ssize_t)len) {
			rc = fail(p, "%s: %s", o->out, strerror(errno));
			goto out;
		}
		p->done += (int64_t)len;
		p->uploaded += (int64_t)b.len;
		status(p, "running", NULL, false);
	}
	if (fdatasync(fd) < 0) {
		rc = fail(p, "%s: %s", o->out, strerror(errno));
		goto out;
	}
	p->done = size;
	status(p, "done", NULL, true);
	printf("backup %s of volume %s restored to %s: %lld bytes, %zu "
	       "chunks with data\n",
	       o->backup, o->volume, o->out, (long long)size,
	       json_array_size(json_object_get(m, "chunks")));
	rc = EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	if (rc != EXIT_OK && fd >= 0)
		unlink(o->out); /* nothing half restored is left */
	hf_buf_release(&b);
	json_decref(m);
	free(buf);
	return rc;
}

int hf_backup_restore_file(const struct hf_s3_config *cfg, const char *url,
			   const char *volume, const char *backup,
			   const char *path, char *err, size_t err_len)
{
	struct opts o;
	struct progress p;
	char e[HF_S3_ERRLEN];
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
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
		m = get_manifest(o, id, err);
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
