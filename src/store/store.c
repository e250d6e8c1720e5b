/*
 * store.c - the store's front: URL parsing, the transaction builder and its
 * validation, the handle's mutex, counters and error detail, and dispatch to
 * the backends (store_mem.c, store_sqlite.c).
 */
#include "store/store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

struct hf_store {
	const struct hf_store_backend *be;
	void *state;
	/* Serialises every call; also guards stats. */
	pthread_mutex_t lock;
	struct hf_store_stats stats;
};

/*
 * The detail of the latest failure, per thread, like errno or dlerror().
 * This is the module's one piece of static state: it lets hf_store_open()
 * explain a failure when there is no handle to hang it on, and lets
 * several threads share a handle without one overwriting the message
 * another is about to read. It records which handle failed so a message is
 * never attributed to the wrong one.
 */
static _Thread_local struct {
	const struct hf_store *who;
	char msg[1024];
} last_err;

static void set_error(const struct hf_store *s, int rc,
		      const struct hf_buf *detail)
{
	const char *msg = hf_buf_str(detail);

	last_err.who = s;
	if (!*msg)
		msg = hf_err_msg(rc);
	snprintf(last_err.msg, sizeof(last_err.msg), "%s", msg);
}

static void set_errorf(const struct hf_store *s, int rc, const char *fmt, ...)
	HF_PRINTF(3, 4);

static void set_errorf(const struct hf_store *s, int rc, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	set_error(s, rc, &b);
	hf_buf_release(&b);
}

const char *hf_store_last_error(const struct hf_store *s)
{
	return last_err.who == s ? last_err.msg : "";
}

const char *hf_store_backend_name(const struct hf_store *s)
{
	return s->be->name;
}

/* ------------------------------------------------------------------ */
/* Shared helpers                                                       */

char *hf_store_prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end;

	/* Drop trailing 0xff bytes, then bump the last remaining byte. */
	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0)
		return NULL;
	end = hf_xstrndup(prefix, n);
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	return end;
}

void hf_store_kv_release(struct hf_store_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

int hf_store_cmp_eval(const struct hf_store_cmp *c, int64_t mod_rev,
		      struct hf_buf *err)
{
	switch (c->kind) {
	case HF_STORE_CMP_ABSENT:
		if (mod_rev == 0)
			return 0;
		hf_buf_addf(err,
			    "compare failed: '%s' exists (mod_rev %lld), "
			    "expected it absent",
			    c->key, (long long)mod_rev);
		break;
	case HF_STORE_CMP_PRESENT:
		if (mod_rev != 0)
			return 0;
		hf_buf_addf(err,
			    "compare failed: '%s' is absent, expected it to "
			    "exist",
			    c->key);
		break;
	case HF_STORE_CMP_MOD_REV:
		if (mod_rev == c->mod_rev)
			return 0;
		hf_buf_addf(err,
			    "compare failed: '%s' has mod_rev %lld, expected "
			    "%lld",
			    c->key, (long long)mod_rev, (long long)c->mod_rev);
		break;
	default:
		hf_buf_addf(err, "compare on '%s': unknown kind %d", c->key,
			    (int)c->kind);
		return HF_EINVAL;
	}
	return HF_ECONFLICT;
}

void hf_store_kvs_release(struct hf_store_kvs *l)
{
	for (size_t i = 0; i < l->len; i++)
		hf_store_kv_release(&l->items[i]);
	HF_VEC_FREE(l);
	l->rev = 0;
	l->more = false;
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/*
 * Scheme table. A NULL backend marks a scheme holdfast knows about but
 * does not implement yet.
 */
static const struct {
	const char *scheme;
	const struct hf_store_backend *be;
} schemes[] = {
	{"mem", &hf_store_backend_mem},
	{"sqlite", &hf_store_backend_sqlite},
	{"etcd", NULL},
	{"etcds", NULL},
};

/* Length of a "scheme:" prefix of url (without the colon), or 0. */
static size_t scheme_len(const char *url)
{
	size_t n = 0;

	if (!isalpha((unsigned char)url[0]))
		return 0;
	while (isalnum((unsigned char)url[n]) || url[n] == '+' ||
	       url[n] == '-' || url[n] == '.')
		n++;
	return url[n] == ':' ? n : 0;
}

/*
 * Splits url into a backend and the path it is given. Returns 0 or an
 * error with err filled in.
 */
static int parse_url(const char *url, const struct hf_store_backend **be,
		     const char **path, struct hf_buf *err)
{
	size_t n = scheme_len(url);

	if (!*url) {
		hf_buf_adds(err, "the store URL is empty");
		return HF_EINVAL;
	}
	if (n == 0) {
		*be = &hf_store_backend_sqlite;
		*path = url;
		return 0;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(schemes); i++) {
		if (strlen(schemes[i].scheme) != n ||
		    strncmp(schemes[i].scheme, url, n) != 0)
			continue;
		if (!schemes[i].be) {
			hf_buf_addf(err, "the %s store backend is not available yet",
				    schemes[i].scheme);
			return HF_EUNSUPPORTED;
		}
		*be = schemes[i].be;
		*path = url + n + 1;
		return 0;
	}
	hf_buf_addf(err,
		    "unknown store URL scheme '%.*s' in '%s' (expected mem:, "
		    "sqlite:PATH or a file path; write ./%s for a file name "
		    "with a colon)",
		    (int)n, url, url, url);
	return HF_EINVAL;
}

int hf_store_open(const char *url, struct hf_store **out)
{
	struct hf_buf err = HF_BUF_INIT;
	const struct hf_store_backend *be = NULL;
	const char *path = NULL;
	struct hf_store *s = NULL;
	void *state = NULL;
	int rc;

	*out = NULL;
	rc = parse_url(url, &be, &path, &err);
	if (rc)
		goto out;
	rc = be->open(path, &state, &err);
	if (rc)
		goto out;
	s = hf_xcalloc(1, sizeof(*s));
	s->be = be;
	s->state = state;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		be->close(state);
		free(s);
		s = NULL;
		hf_buf_adds(&err, "could not create the store's mutex");
		rc = HF_EINTERNAL;
		goto out;
	}
	*out = s;
out:
	if (rc)
		set_error(NULL, rc, &err);
	hf_buf_release(&err);
	return rc;
}

void hf_store_close(struct hf_store *s)
{
	if (!s)
		return;
	s->be->close(s->state);
	pthread_mutex_destroy(&s->lock);
	if (last_err.who == s)
		last_err.who = NULL;
	free(s);
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */

/* Checks one key; what names it in messages ("key", "prefix"). */
static int check_key(const char *key, const char *what, struct hf_buf *err)
{
	size_t n;

	if (!key || !*key) {
		hf_buf_addf(err, "the %s is empty", what);
		return HF_EINVAL;
	}
	n = strnlen(key, HF_STORE_KEY_MAX + 1);
	if (n > HF_STORE_KEY_MAX) {
		hf_buf_addf(err, "the %s '%.40s...' is longer than %d bytes",
			    what, key, HF_STORE_KEY_MAX);
		return HF_ETOOBIG;
	}
	return 0;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of the first of n sorted keys that is >= key. */
static size_t lower_bound(const char *const *keys, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(keys[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Checks a transaction before a backend sees it. Puts are sorted so that
 * duplicates are neighbours and each delete finds the puts it would cover
 * by binary search: O((puts + deletes) log puts) even for huge batches.
 */
static int check_txn(const struct hf_store_txn *t, struct hf_buf *err)
{
	const char **puts = NULL;
	size_t nputs = 0;
	int rc = 0;

	for (size_t i = 0; i < t->cmps.len; i++) {
		const struct hf_store_cmp *c = &t->cmps.items[i];

		rc = check_key(c->key, "compared key", err);
		if (rc)
			goto out;
		if (c->kind != HF_STORE_CMP_ABSENT &&
		    c->kind != HF_STORE_CMP_PRESENT &&
		    c->kind != HF_STORE_CMP_MOD_REV) {
			hf_buf_addf(err, "compare on '%s': unknown kind %d",
				    c->key, (int)c->kind);
			rc = HF_EINVAL;
			goto out;
		}
		if (c->kind == HF_STORE_CMP_MOD_REV && c->mod_rev < 0) {
			hf_buf_addf(err, "compare on '%s': negative mod_rev %lld",
				    c->key, (long long)c->mod_rev);
			rc = HF_EINVAL;
			goto out;
		}
	}
	puts = hf_xcalloc(t->ops.len, sizeof(*puts));
	for (size_t i = 0; i < t->ops.len; i++) {
		const struct hf_store_op *op = &t->ops.items[i];

		rc = check_key(op->key, op->kind == HF_STORE_OP_DELETE_PREFIX ?
						"prefix to delete" : "key",
			       err);
		if (rc)
			goto out;
		if (op->kind != HF_STORE_OP_PUT &&
		    op->kind != HF_STORE_OP_DELETE &&
		    op->kind != HF_STORE_OP_DELETE_PREFIX) {
			hf_buf_addf(err, "operation on '%s': unknown kind %d",
				    op->key, (int)op->kind);
			rc = HF_EINVAL;
			goto out;
		}
		if (op->kind != HF_STORE_OP_PUT)
			continue;
		if (!op->value) {
			hf_buf_addf(err, "the put of '%s' has no value", op->key);
			rc = HF_EINVAL;
			goto out;
		}
		if (op->len > HF_STORE_VALUE_MAX) {
			hf_buf_addf(err,
				    "the value of '%s' is %zu bytes, over the "
				    "limit of %d",
				    op->key, op->len, HF_STORE_VALUE_MAX);
			rc = HF_ETOOBIG;
			goto out;
		}
		puts[nputs++] = op->key;
	}
	qsort(puts, nputs, sizeof(*puts), cmp_strp);
	for (size_t i = 1; i < nputs; i++) {
		if (strcmp(puts[i - 1], puts[i]) == 0) {
			hf_buf_addf(err, "the transaction puts '%s' twice",
				    puts[i]);
			rc = HF_EINVAL;
			goto out;
		}
	}
	for (size_t i = 0; i < t->ops.len; i++) {
		const struct hf_store_op *op = &t->ops.items[i];
		size_t j;

		if (op->kind == HF_STORE_OP_PUT)
			continue;
		j = lower_bound(puts, nputs, op->key);
		if (j == nputs)
			continue;
		if (op->kind == HF_STORE_OP_DELETE &&
		    strcmp(puts[j], op->key) == 0) {
			hf_buf_addf(err,
				    "the transaction both puts and deletes '%s'",
				    op->key);
			rc = HF_EINVAL;
			goto out;
		}
		if (op->kind == HF_STORE_OP_DELETE_PREFIX &&
		    hf_str_has_prefix(puts[j], op->key)) {
			hf_buf_addf(err,
				    "the transaction puts '%s' and deletes the "
				    "prefix '%s' that covers it",
				    puts[j], op->key);
			rc = HF_EINVAL;
			goto out;
		}
	}
out:
	free(puts);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

/* Counts a failed call; not-found and conflicts are answers, not errors. */
static void count_failure(struct hf_store *s, int rc)
{
	if (rc == HF_ECONFLICT)
		s->stats.conflicts++;
	else if (rc != HF_ENOTFOUND)
		s->stats.errors++;
}

int hf_store_get(struct hf_store *s, const char *key, char **value,
		 size_t *len, int64_t *mod_rev)
{
	struct hf_buf err = HF_BUF_INIT;
	struct hf_store_kv kv = {0};
	int rc;

	rc = check_key(key, "key", &err);
	pthread_mutex_lock(&s->lock);
	s->stats.gets++;
	if (!rc)
		rc = s->be->get(s->state, key, &kv, &err);
	if (rc)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		if (rc == HF_ENOTFOUND && !err.len)
			hf_buf_addf(&err, "key '%s' not found", key);
		set_error(s, rc, &err);
		goto out;
	}
	if (value) {
		*value = kv.value;
		kv.value = NULL;
	}
	if (len)
		*len = kv.len;
	if (mod_rev)
		*mod_rev = kv.mod_rev;
out:
	hf_store_kv_release(&kv);
	hf_buf_release(&err);
	return rc;
}

int hf_store_list(struct hf_store *s, const char *prefix, size_t limit,
		  struct hf_store_kvs *out)
{
	struct hf_buf err = HF_BUF_INIT;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!prefix) {
		hf_buf_adds(&err, "the prefix is NULL");
		rc = HF_EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->stats.lists++;
	if (!rc)
		rc = s->be->list(s->state, prefix, limit, out, &err);
	if (rc)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		hf_store_kvs_release(out);
		set_error(s, rc, &err);
	}
	hf_buf_release(&err);
	return rc;
}

int hf_store_revision(struct hf_store *s, int64_t *rev)
{
	struct hf_buf err = HF_BUF_INIT;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = s->be->revision(s->state, rev, &err);
	if (rc)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		set_error(s, rc, &err);
	hf_buf_release(&err);
	return rc;
}

/*
 * Runs a transaction. A conflict is counted only when count_conflict is
 * set: hf_store_delete() uses a compare to detect an absent key, which is a
 * not-found answer, not a lost race.
 */
static int run_txn(struct hf_store *s, const struct hf_store_txn *txn,
		   int64_t *rev_out, bool count_conflict)
{
	struct hf_buf err = HF_BUF_INIT;
	int64_t rev = 0;
	int rc;

	rc = check_txn(txn, &err);
	pthread_mutex_lock(&s->lock);
	if (!rc)
		rc = s->be->txn(s->state, txn, &rev, &err);
	if (!rc)
		s->stats.txns++;
	else if (rc != HF_ECONFLICT || count_conflict)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		set_error(s, rc, &err);
	else if (rev_out)
		*rev_out = rev;
	hf_buf_release(&err);
	return rc;
}

int hf_store_txn(struct hf_store *s, const struct hf_store_txn *txn,
		 int64_t *rev_out)
{
	return run_txn(s, txn, rev_out, true);
}

int hf_store_put(struct hf_store *s, const char *key, const void *value,
		 size_t len, int64_t *rev_out)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int rc;

	hf_store_txn_put(&t, key, value, len);
	rc = run_txn(s, &t, rev_out, true);
	hf_store_txn_release(&t);
	return rc;
}

int hf_store_delete(struct hf_store *s, const char *key, int64_t *rev_out)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int rc;

	hf_store_txn_cmp_present(&t, key);
	hf_store_txn_delete(&t, key);
	rc = run_txn(s, &t, rev_out, false);
	hf_store_txn_release(&t);
	if (rc == HF_ECONFLICT) {
		rc = HF_ENOTFOUND;
		set_errorf(s, rc, "key '%s' not found", key);
	}
	return rc;
}

void hf_store_stats(struct hf_store *s, struct hf_store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Transaction builder                                                  */

void hf_store_txn_init(struct hf_store_txn *t)
{
	memset(t, 0, sizeof(*t));
}

void hf_store_txn_release(struct hf_store_txn *t)
{
	for (size_t i = 0; i < t->cmps.len; i++)
		free(t->cmps.items[i].key);
	for (size_t i = 0; i < t->ops.len; i++) {
		free(t->ops.items[i].key);
		free(t->ops.items[i].value);
	}
	HF_VEC_FREE(&t->cmps);
	HF_VEC_FREE(&t->ops);
}

/*
 * A NULL key is kept as NULL (not copied) so that hf_store_txn() reports
 * it as an invalid transaction instead of the builder crashing.
 */
static char *dup_key(const char *key)
{
	return key ? hf_xstrdup(key) : NULL;
}

static void add_cmp(struct hf_store_txn *t, enum hf_store_cmp_kind kind,
		    const char *key, int64_t mod_rev)
{
	struct hf_store_cmp *c = HF_VEC_PUSH(&t->cmps);

	c->kind = kind;
	c->key = dup_key(key);
	c->mod_rev = mod_rev;
}

void hf_store_txn_cmp_absent(struct hf_store_txn *t, const char *key)
{
	add_cmp(t, HF_STORE_CMP_ABSENT, key, 0);
}

void hf_store_txn_cmp_present(struct hf_store_txn *t, const char *key)
{
	add_cmp(t, HF_STORE_CMP_PRESENT, key, 0);
}

void hf_store_txn_cmp_mod_rev(struct hf_store_txn *t, const char *key,
			      int64_t mod_rev)
{
	add_cmp(t, HF_STORE_CMP_MOD_REV, key, mod_rev);
}

void hf_store_txn_put(struct hf_store_txn *t, const char *key,
		      const void *value, size_t len)
{
	struct hf_store_op *op = HF_VEC_PUSH(&t->ops);

	op->kind = HF_STORE_OP_PUT;
	op->key = dup_key(key);
	op->value = hf_xstrndup(len ? value : "", len);
	op->len = len;
}

void hf_store_txn_puts(struct hf_store_txn *t, const char *key,
		       const char *value)
{
	hf_store_txn_put(t, key, value, strlen(value));
}

void hf_store_txn_delete(struct hf_store_txn *t, const char *key)
{
	struct hf_store_op *op = HF_VEC_PUSH(&t->ops);

	op->kind = HF_STORE_OP_DELETE;
	op->key = dup_key(key);
}

void hf_store_txn_delete_prefix(struct hf_store_txn *t, const char *prefix)
{
	struct hf_store_op *op = HF_VEC_PUSH(&t->ops);

	op->kind = HF_STORE_OP_DELETE_PREFIX;
	op->key = dup_key(prefix);
}
