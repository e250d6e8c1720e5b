/*
 * store.c - the store's front: URL parsing, the transaction builder and its
 * validation, the handle's mutex, counters and error detail, dispatch to
 * the backends (store_mem.c, store_sqlite.c, store_etcd.c), and the
 * single-process leases of the backends that have none of their own.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/util.h"

/*
 * A lease of a backend without leases of its own (see "Leases" in
 * store.h): its deadline on the monotonic clock and the keys attached to
 * it. A key is attached to at most one lease; any later put or delete of
 * the key detaches it, as in etcd.
 */
struct local_lease {
	int64_t id;
	int ttl;
	int64_t deadline_ms;
	struct hf_strlist keys;
};

/*
 * One injected fault (see hf_store_set_fault in store.h): the write (or
 * read) calls numbered from..to (1-based, to == UINT64_MAX: no end), or
 * every one while the file `while_path` exists, fail with err; with
 * `applied` a write is made first and then reported as failed.
 */
struct fault_rule {
	bool reads;
	uint64_t from, to;
	char *while_path;
	int err;
	const char *what; /* the sentence for err */
	bool applied;
};

struct hf_store {
	const struct hf_store_backend *be;
	void *state;
	/* Serialises every call; also guards stats and leases. */
	pthread_mutex_t lock;
	struct hf_store_stats stats;
	/* Single-process leases, when the backend has none (be->lease_grant
	 * is NULL); IDs count up from 1. */
	HF_VEC(struct local_lease) leases;
	int64_t last_lease_id;
	/* Injected faults (hf_store_set_fault) and the calls counted. */
	HF_VEC(struct fault_rule) faults;
	uint64_t write_calls, read_calls;
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

size_t hf_store_txn_ops_max(const struct hf_store *s)
{
	return s->be->txn_ops_max;
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
/* Injected faults                                                      */

static void faults_clear(struct hf_store *s)
{
	for (size_t i = 0; i < s->faults.len; i++)
		free(s->faults.items[i].while_path);
	HF_VEC_FREE(&s->faults);
}

/* Parses "N", "N-M" or "N-" (1-based call numbers) into a rule. */
static int fault_range(const char *text, struct fault_rule *r,
		       struct hf_buf *err)
{
	char *end;
	unsigned long long a, b;

	errno = 0;
	a = strtoull(text, &end, 10);
	if (errno || end == text || a == 0 || *text == '-' || *text == '+')
		goto bad;
	r->from = r->to = a;
	if (*end == '-') {
		const char *m = end + 1;

		if (!*m) {
			r->to = UINT64_MAX;
			return 0;
		}
		b = strtoull(m, &end, 10);
		if (errno || end == m || *m == '-' || *m == '+' || b < a)
			goto bad;
		r->to = b;
	}
	if (*end)
		goto bad;
	return 0;
bad:
	hf_buf_addf(err,
		    "'%s' is not a call number or range (N, N-M or N-, "
		    "counting from 1)",
		    text);
	return HF_EINVAL;
}

/* The HF_E* code named by an error name ("io", "unavailable"), or 0. */
static int fault_error(const char *name, const char **what)
{
	if (strcmp(name, "full") == 0) {
		*what = "database or disk is full";
		return HF_EIO;
	}
	for (int e = HF_ERR_FIRST_ + 1; e < HF_ERR_LAST_; e++) {
		if (strcmp(hf_err_name(e), name) == 0) {
			*what = hf_err_msg(e);
			return e;
		}
	}
	return 0;
}

/* Parses one rule: TARGET[,error=NAME][,applied]. */
static int fault_rule_parse(char *text, struct fault_rule *r,
			    struct hf_buf *err)
{
	char *save = NULL, *part;
	bool first = true;
	int rc = 0;

	r->err = HF_EIO;
	r->what = "input/output error";
	for (part = strtok_r(text, ",", &save); part && !rc;
	     part = strtok_r(NULL, ",", &save), first = false) {
		char *eq = strchr(part, '=');
		const char *value = eq ? eq + 1 : "";
		size_t klen = eq ? (size_t)(eq - part) : strlen(part);

#define KEY_IS(k) (klen == strlen(k) && strncmp(part, k, klen) == 0)
		if (first && (KEY_IS("writes") || KEY_IS("reads")) && eq) {
			r->reads = KEY_IS("reads");
			rc = fault_range(value, r, err);
		} else if (first && (KEY_IS("writes-while") ||
				     KEY_IS("reads-while")) && eq && *value) {
			r->reads = KEY_IS("reads-while");
			r->while_path = hf_xstrdup(value);
		} else if (!first && KEY_IS("error") && eq) {
			r->err = fault_error(value, &r->what);
			if (!r->err) {
				hf_buf_addf(err,
					    "unknown error '%s' (full, io, "
					    "unavailable, conflict, not-found, "
					    "too-large, ...)",
					    value);
				rc = HF_EINVAL;
			}
		} else if (!first && KEY_IS("applied") && !eq) {
			r->applied = true;
		} else {
			hf_buf_addf(err,
				    first ? "a rule starts with writes=RANGE, "
					    "reads=RANGE, writes-while=PATH or "
					    "reads-while=PATH, not '%s'"
					  : "unknown option '%s' (error=NAME or "
					    "applied)",
				    part);
			rc = HF_EINVAL;
		}
#undef KEY_IS
	}
	if (!rc && first) {
		hf_buf_adds(err, "an empty rule");
		rc = HF_EINVAL;
	}
	if (!rc && r->applied && r->reads) {
		hf_buf_adds(err, "'applied' is for writes only");
		rc = HF_EINVAL;
	}
	return rc;
}

int hf_store_set_fault(struct hf_store *s, const char *spec)
{
	struct hf_buf err = HF_BUF_INIT;
	HF_VEC(struct fault_rule) rules = {0};
	char *copy = hf_xstrdup(spec ? spec : ""), *save = NULL, *text;
	int rc = 0;

	for (text = strtok_r(copy, ";", &save); text && !rc;
	     text = strtok_r(NULL, ";", &save)) {
		struct fault_rule *r = HF_VEC_PUSH(&rules);

		rc = fault_rule_parse(text, r, &err);
	}
	free(copy);
	pthread_mutex_lock(&s->lock);
	if (!rc) {
		faults_clear(s);
		s->faults.items = rules.items;
		s->faults.len = rules.len;
		s->faults.cap = rules.cap;
		s->write_calls = s->read_calls = 0;
	}
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		for (size_t i = 0; i < rules.len; i++)
			free(rules.items[i].while_path);
		HF_VEC_FREE(&rules);
		set_errorf(s, rc, "%s: %s", HF_STORE_FAULT_ENV, hf_buf_str(&err));
	}
	hf_buf_release(&err);
	return rc;
}

/*
 * Counts one call to the backend, a write or a read, and applies the
 * injected faults; s->lock is held. Returns 0 to go on, or the error to
 * fail the call with before the backend sees it, saying in err that it
 * was injected. For an 'applied' fault it returns 0 with *after set and
 * the sentence in later: the call goes to the backend and fault_after()
 * then reports it failed.
 */
static int fault_check(struct hf_store *s, bool write, int *after,
		       struct hf_buf *err, struct hf_buf *later)
{
	uint64_t n = write ? ++s->write_calls : ++s->read_calls;

	*after = 0;
	for (size_t i = 0; i < s->faults.len; i++) {
		const struct fault_rule *r = &s->faults.items[i];
		struct hf_buf *out = r->applied ? later : err;

		if (r->reads == write)
			continue;
		if (r->while_path ? access(r->while_path, F_OK) != 0
				  : n < r->from || n > r->to)
			continue;
		hf_buf_reset(out);
		hf_buf_addf(out, "%s (injected by %s: %s call %llu%s)",
			    r->what, HF_STORE_FAULT_ENV,
			    write ? "write" : "read", (unsigned long long)n,
			    r->applied ? ", made before it failed" : "");
		if (r->applied) {
			*after = r->err;
			return 0;
		}
		return r->err;
	}
	return 0;
}

/* The second half of an 'applied' fault: rc is the backend's answer. */
static int fault_after(int rc, int after, struct hf_buf *err,
		       struct hf_buf *later)
{
	if (after && !rc) {
		hf_buf_reset(err);
		hf_buf_adds(err, hf_buf_str(later));
		rc = after;
	}
	hf_buf_release(later);
	return rc;
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
	{"etcd", &hf_store_backend_etcd},
	{"etcds", &hf_store_backend_etcds},
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
		    "sqlite:PATH, etcd://HOST:PORT[,HOST:PORT...], "
		    "etcds://HOST:PORT[,HOST:PORT...] (TLS) or a file path; "
		    "write ./%s for a file name with a colon)",
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
	if (getenv(HF_STORE_FAULT_ENV) && *getenv(HF_STORE_FAULT_ENV)) {
		rc = hf_store_set_fault(s, getenv(HF_STORE_FAULT_ENV));
		if (rc) {
			hf_buf_adds(&err, hf_store_last_error(s));
			hf_store_close(s);
			goto out;
		}
	}
	*out = s;
out:
	if (rc)
		set_error(NULL, rc, &err);
	hf_buf_release(&err);
	return rc;
}

static void leases_close(struct hf_store *s);

void hf_store_close(struct hf_store *s)
{
	if (!s)
		return;
	leases_close(s);
	faults_clear(s);
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
		if (op->lease < 0) {
			hf_buf_addf(err, "the put of '%s' has a negative lease %lld",
				    op->key, (long long)op->lease);
			rc = HF_EINVAL;
			goto out;
		}
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
/* Single-process leases                                                */

/*
 * Everything here runs with s->lock held, and only for a backend without
 * leases of its own (has_local_leases()). Such a backend has one writer -
 * this handle - so what the handle remembers of the leases is the truth.
 */

static bool has_local_leases(const struct hf_store *s)
{
	return s->be->lease_grant == NULL;
}

static struct local_lease *lease_find(struct hf_store *s, int64_t id)
{
	for (size_t i = 0; i < s->leases.len; i++)
		if (s->leases.items[i].id == id)
			return &s->leases.items[i];
	return NULL;
}

/* Detaches the keys that match (equal key, or start with it if prefix). */
static void lease_detach(struct hf_store *s, const char *key, bool prefix)
{
	for (size_t i = 0; i < s->leases.len; i++) {
		struct hf_strlist *keys = &s->leases.items[i].keys;

		for (size_t j = 0; j < keys->len;) {
			bool match = prefix ? hf_str_has_prefix(keys->items[j], key)
					    : strcmp(keys->items[j], key) == 0;

			if (!match) {
				j++;
				continue;
			}
			free(keys->items[j]);
			keys->items[j] = keys->items[--keys->len];
		}
	}
}

/*
 * Deletes the keys of lease i in one transaction of the backend, then
 * forgets the lease. On failure the lease stays (with its keys); its
 * callers decide (they forget it: see leases_expire).
 */
static int lease_drop(struct hf_store *s, size_t i, struct hf_buf *err)
{
	struct local_lease *l = &s->leases.items[i];
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_buf later = HF_BUF_INIT;
	int64_t rev = 0;
	int after = 0;
	int rc = 0;

	for (size_t j = 0; j < l->keys.len; j++)
		hf_store_txn_delete(&t, l->keys.items[j]);
	if (t.ops.len) {
		rc = fault_check(s, true, &after, err, &later);
		if (!rc)
			rc = s->be->txn(s->state, &t, &rev, err);
		rc = fault_after(rc, after, err, &later);
	}
	hf_store_txn_release(&t);
	if (rc)
		return rc;
	hf_strlist_release(&l->keys);
	s->leases.items[i] = s->leases.items[--s->leases.len];
	return 0;
}

/*
 * Drops the leases whose deadline has passed; called first by every call.
 * Never fails the call: see below.
 */
static int leases_expire(struct hf_store *s, struct hf_buf *err)
{
	int64_t now;

	if (!has_local_leases(s) || s->leases.len == 0)
		return 0;
	now = hf_mono_ms();
	for (size_t i = 0; i < s->leases.len;) {
		int rc;

		if (s->leases.items[i].deadline_ms > now) {
			i++;
			continue;
		}
		rc = lease_drop(s, i, err);
		if (rc) {
			/*
			 * The keys cannot be deleted now (a full disk, say).
			 * The lease is gone all the same: its keys stay as
			 * after a crash, which the next campaign handles
			 * (local_campaign), and the call goes on, so reads
			 * keep working while writes do not.
			 */
			struct local_lease *l = &s->leases.items[i];

			hf_strlist_release(&l->keys);
			s->leases.items[i] = s->leases.items[--s->leases.len];
			hf_buf_reset(err);
		}
	}
	return 0;
}

/*
 * Before a transaction: every lease it puts with must exist, as etcd
 * checks. Returns HF_ENOTFOUND naming the first missing one.
 */
static int leases_check_txn(struct hf_store *s, const struct hf_store_txn *t,
			    struct hf_buf *err)
{
	for (size_t i = 0; i < t->ops.len; i++) {
		const struct hf_store_op *op = &t->ops.items[i];

		if (op->kind != HF_STORE_OP_PUT || op->lease == 0 ||
		    lease_find(s, op->lease))
			continue;
		hf_buf_addf(err,
			    "the put of '%s' names lease %lld, which has expired "
			    "or was revoked",
			    op->key, (long long)op->lease);
		return HF_ENOTFOUND;
	}
	return 0;
}

/* After a transaction applied: moves its keys between leases. */
static void leases_apply_txn(struct hf_store *s, const struct hf_store_txn *t)
{
	for (size_t i = 0; i < t->ops.len; i++) {
		const struct hf_store_op *op = &t->ops.items[i];

		lease_detach(s, op->key, op->kind == HF_STORE_OP_DELETE_PREFIX);
		if (op->kind == HF_STORE_OP_PUT && op->lease)
			hf_strlist_push(&lease_find(s, op->lease)->keys, op->key);
	}
}

/*
 * On close: revokes every lease, so that a clean shutdown leaves no key
 * behind (a leader key, say). Failures cannot be reported from close; the
 * keys then stay, as after a crash.
 */
static void leases_close(struct hf_store *s)
{
	struct hf_buf err = HF_BUF_INIT;

	while (s->leases.len) {
		if (lease_drop(s, s->leases.len - 1, &err) != 0) {
			struct local_lease *l = &s->leases.items[--s->leases.len];

			hf_strlist_release(&l->keys);
		}
	}
	HF_VEC_FREE(&s->leases);
	hf_buf_release(&err);
}

static int local_lease_grant(struct hf_store *s, int ttl, int64_t *lease_id)
{
	struct local_lease *l = HF_VEC_PUSH(&s->leases);

	l->id = ++s->last_lease_id;
	l->ttl = ttl;
	l->deadline_ms = hf_mono_ms() + (int64_t)ttl * 1000;
	*lease_id = l->id;
	return 0;
}

static int lease_gone(int64_t lease_id, struct hf_buf *err)
{
	hf_buf_addf(err, "lease %lld has expired or was revoked",
		    (long long)lease_id);
	return HF_ENOTFOUND;
}

static int local_lease_keepalive(struct hf_store *s, int64_t lease_id,
				 int *ttl_left, struct hf_buf *err)
{
	struct local_lease *l = lease_find(s, lease_id);

	if (!l)
		return lease_gone(lease_id, err);
	l->deadline_ms = hf_mono_ms() + (int64_t)l->ttl * 1000;
	*ttl_left = l->ttl;
	return 0;
}

/*
 * Revokes a lease. Should its keys not be deleted (a full disk), the
 * lease is gone all the same and the call fails: its keys stay as after a
 * crash (see leases_expire).
 */
static int local_lease_revoke(struct hf_store *s, int64_t lease_id,
			      struct hf_buf *err)
{
	struct local_lease *l = lease_find(s, lease_id);
	size_t i;
	int rc;

	if (!l)
		return lease_gone(lease_id, err);
	i = (size_t)(l - s->leases.items);
	rc = lease_drop(s, i, err);
	if (rc) {
		hf_strlist_release(&s->leases.items[i].keys);
		s->leases.items[i] = s->leases.items[--s->leases.len];
	}
	return rc;
}

/* Whether key is attached to one of the handle's leases. */
static bool key_leased(const struct hf_store *s, const char *key)
{
	for (size_t i = 0; i < s->leases.len; i++)
		if (hf_strlist_has(&s->leases.items[i].keys, key))
			return true;
	return false;
}

/*
 * Campaign for a backend with one writer: the transaction and the read
 * that follows it run under the handle's mutex, so nothing comes between.
 * As with etcd, a gone lease only matters when the key is absent: with the
 * key present the campaign is simply lost.
 *
 * One handle owns such a store, and its leases live in the handle, so a
 * leader key that is attached to none of them was left by an owner that
 * crashed (or by a lease whose keys could not be deleted): nobody holds
 * it, and the campaign takes it over as if it were absent. Without that
 * a restarted server would find its own old key and follow itself.
 */
static int local_campaign(struct hf_store *s, const char *key,
			  const char *value, int64_t lease_id, bool *won,
			  struct hf_store_kv *leader, struct hf_buf *err)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct local_lease *l = lease_find(s, lease_id);
	struct hf_store_kv old = {0};
	int64_t rev = 0;
	int rc;

	if (!l) {
		rc = s->be->get(s->state, key, leader, err);
		if (rc == HF_ENOTFOUND)
			return lease_gone(lease_id, err);
		*won = false;
		return rc;
	}
	rc = s->be->get(s->state, key, &old, err);
	if (rc && rc != HF_ENOTFOUND)
		goto out;
	hf_buf_reset(err);
	if (rc == 0 && key_leased(s, key)) {
		/* Held by a lease of ours: ours, or another live one's. */
		*won = hf_strlist_has(&l->keys, key);
		rc = 0;
	} else {
		/* Absent, or left behind: put it, if still as seen. */
		hf_store_txn_cmp_mod_rev(&t, key, rc == 0 ? old.mod_rev : 0);
		hf_store_txn_put_lease(&t, key, value, strlen(value), lease_id);
		rc = s->be->txn(s->state, &t, &rev, err);
		if (rc)
			goto out;
		leases_apply_txn(s, &t);
		*won = true;
	}
	rc = s->be->get(s->state, key, leader, err);
out:
	hf_store_kv_release(&old);
	hf_store_txn_release(&t);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

/* The injected faults of a read call; s->lock held. */
static int read_fault(struct hf_store *s, struct hf_buf *err)
{
	struct hf_buf later = HF_BUF_INIT;
	int after = 0;
	int rc = fault_check(s, false, &after, err, &later);

	hf_buf_release(&later);
	return rc;
}

/*
 * The injected faults of a lease call: a write for a backend that keeps
 * leases (etcd); the single-process leases live in the handle and write
 * nothing, except the deletions of lease_drop(), which count there.
 */
static int lease_fault(struct hf_store *s, struct hf_buf *err)
{
	struct hf_buf later = HF_BUF_INIT;
	int after = 0;
	int rc = 0;

	if (!has_local_leases(s)) {
		rc = fault_check(s, true, &after, err, &later);
		if (!rc && after) {
			/* 'applied' makes no difference worth having here. */
			hf_buf_reset(err);
			hf_buf_adds(err, hf_buf_str(&later));
			rc = after;
		}
		hf_buf_release(&later);
	}
	return rc;
}

/*
 * Takes the handle's mutex and, unless the call already failed (rc, from
 * checking its arguments), expires what single-process leases are due, so
 * that every call sees them gone. Returns rc or the expiry's error. The
 * caller unlocks in every case.
 */
static int lock_call(struct hf_store *s, int rc, struct hf_buf *err)
{
	pthread_mutex_lock(&s->lock);
	return rc ? rc : leases_expire(s, err);
}

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

	rc = lock_call(s, check_key(key, "key", &err), &err);
	s->stats.gets++;
	if (!rc)
		rc = read_fault(s, &err);
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
	rc = lock_call(s, rc, &err);
	s->stats.lists++;
	if (!rc)
		rc = read_fault(s, &err);
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

	rc = lock_call(s, 0, &err);
	if (!rc)
		rc = read_fault(s, &err);
	if (!rc)
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
	struct hf_buf err = HF_BUF_INIT, later = HF_BUF_INIT;
	int64_t rev = 0;
	int after = 0;
	int rc;

	rc = lock_call(s, check_txn(txn, &err), &err);
	if (!rc && has_local_leases(s))
		rc = leases_check_txn(s, txn, &err);
	if (!rc)
		rc = fault_check(s, true, &after, &err, &later);
	if (!rc)
		rc = s->be->txn(s->state, txn, &rev, &err);
	if (!rc && has_local_leases(s))
		leases_apply_txn(s, txn);
	rc = fault_after(rc, after, &err, &later);
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

/* Checks a lease ID given by a caller. */
static int check_lease_id(int64_t lease_id, struct hf_buf *err)
{
	if (lease_id > 0)
		return 0;
	hf_buf_addf(err, "invalid lease ID %lld", (long long)lease_id);
	return HF_EINVAL;
}

/* Ends a lease or campaign call: counts a failure, records its detail. */
static int end_call(struct hf_store *s, int rc, struct hf_buf *err)
{
	if (rc)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		set_error(s, rc, err);
	hf_buf_release(err);
	return rc;
}

int hf_store_lease_grant(struct hf_store *s, int ttl_seconds,
			 int64_t *lease_id)
{
	struct hf_buf err = HF_BUF_INIT;
	int64_t id = 0;
	int rc = 0;

	if (ttl_seconds < 1) {
		hf_buf_addf(&err, "invalid lease TTL %d s (1 or more)",
			    ttl_seconds);
		rc = HF_EINVAL;
	}
	rc = lock_call(s, rc, &err);
	if (!rc)
		rc = lease_fault(s, &err);
	if (!rc)
		rc = has_local_leases(s) ?
			     local_lease_grant(s, ttl_seconds, &id) :
			     s->be->lease_grant(s->state, ttl_seconds, &id, &err);
	if (!rc)
		*lease_id = id;
	return end_call(s, rc, &err);
}

int hf_store_lease_keepalive(struct hf_store *s, int64_t lease_id,
			     int *ttl_left)
{
	struct hf_buf err = HF_BUF_INIT;
	int ttl = 0;
	int rc;

	rc = lock_call(s, check_lease_id(lease_id, &err), &err);
	if (!rc)
		rc = lease_fault(s, &err);
	if (!rc)
		rc = has_local_leases(s) ?
			     local_lease_keepalive(s, lease_id, &ttl, &err) :
			     s->be->lease_keepalive(s->state, lease_id, &ttl,
						    &err);
	if (!rc && ttl_left)
		*ttl_left = ttl;
	return end_call(s, rc, &err);
}

int hf_store_lease_revoke(struct hf_store *s, int64_t lease_id)
{
	struct hf_buf err = HF_BUF_INIT;
	int rc;

	rc = lock_call(s, check_lease_id(lease_id, &err), &err);
	if (!rc)
		rc = lease_fault(s, &err);
	if (!rc)
		rc = has_local_leases(s) ?
			     local_lease_revoke(s, lease_id, &err) :
			     s->be->lease_revoke(s->state, lease_id, &err);
	return end_call(s, rc, &err);
}

int hf_store_campaign(struct hf_store *s, const char *key, const char *value,
		      int64_t lease_id, bool *won, char **leader_value,
		      int64_t *leader_mod_rev)
{
	struct hf_buf err = HF_BUF_INIT, later = HF_BUF_INIT;
	struct hf_store_kv kv = {0};
	bool w = false;
	int after = 0;
	int rc;

	rc = check_key(key, "leader key", &err);
	if (!rc)
		rc = check_lease_id(lease_id, &err);
	if (!rc && !value) {
		hf_buf_adds(&err, "the leader value is NULL");
		rc = HF_EINVAL;
	}
	if (!rc && strlen(value) > HF_STORE_VALUE_MAX) {
		hf_buf_addf(&err, "the leader value is over the limit of %d "
				  "bytes",
			    HF_STORE_VALUE_MAX);
		rc = HF_ETOOBIG;
	}
	rc = lock_call(s, rc, &err);
	if (!rc)
		rc = fault_check(s, true, &after, &err, &later);
	if (!rc)
		rc = has_local_leases(s) ?
			     local_campaign(s, key, value, lease_id, &w, &kv,
					    &err) :
			     s->be->campaign(s->state, key, value, lease_id, &w,
					     &kv, &err);
	if (!rc && w)
		s->stats.txns++;
	rc = fault_after(rc, after, &err, &later);
	rc = end_call(s, rc, &err);
	if (!rc) {
		*won = w;
		if (leader_value) {
			*leader_value = kv.value;
			kv.value = NULL;
		}
		if (leader_mod_rev)
			*leader_mod_rev = kv.mod_rev;
	}
	hf_store_kv_release(&kv);
	return rc;
}

void hf_store_stats(struct hf_store *s, struct hf_store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Backups                                                              */

static int snapshot(struct hf_store *s, char **data, size_t *len,
		    size_t *keys)
{
	struct hf_buf err = HF_BUF_INIT;
	struct hf_store_kvs all = {0};
	int rc;

	*data = NULL;
	*len = 0;
	*keys = 0;
	rc = lock_call(s, 0, &err);
	if (!rc)
		rc = read_fault(s, &err);
	if (!rc && s->be->snapshot) {
		rc = s->be->snapshot(s->state, data, len, keys, &err);
	} else if (!rc) {
		/* One list is one read at one revision, in every backend. */
		rc = s->be->list(s->state, "", 0, &all, &err);
		if (!rc)
			rc = hf_store_sqlite_image(&all, data, len, &err);
		*keys = all.len;
		hf_store_kvs_release(&all);
	}
	if (rc)
		count_failure(s, rc);
	pthread_mutex_unlock(&s->lock);
	if (rc) {
		free(*data);
		*data = NULL;
		set_error(s, rc, &err);
	}
	hf_buf_release(&err);
	return rc;
}

int hf_store_snapshot(struct hf_store *s, char **data, size_t *len)
{
	size_t keys;

	return snapshot(s, data, len, &keys);
}

int hf_store_backup(struct hf_store *s, const char *path, size_t *keys)
{
	char *data = NULL;
	size_t len = 0, n = 0;
	int rc = snapshot(s, &data, &len, &n);

	if (rc)
		return rc;
	if (hf_write_file_atomic(path, data, len, 0600)) {
		rc = HF_EIO;
		set_errorf(s, rc, "could not write the backup %s: %s", path,
			   strerror(errno));
	} else if (keys) {
		*keys = n;
	}
	free(data);
	return rc;
}

int hf_store_read_backup(const char *path, struct hf_store_kvs *out)
{
	struct hf_buf err = HF_BUF_INIT;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = hf_store_sqlite_read_file(path, out, &err);
	if (rc)
		set_error(NULL, rc, &err);
	hf_buf_release(&err);
	return rc;
}

/* Whether the sorted list l holds key (binary search). */
static bool kvs_has(const struct hf_store_kvs *l, const char *key)
{
	size_t lo = 0, hi = l->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->items[mid].key, key);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Operations per transaction of a restore split in several. */
#define RESTORE_TXN_OPS 64

/*
 * Applies the ops of all (a transaction without compares) in pieces of
 * RESTORE_TXN_OPS, between a transaction that marks the restore as begun
 * and one that ends it.
 */
static int restore_in_pieces(struct hf_store *s, const struct hf_store_txn *all)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int rc;

	hf_store_txn_puts(&t, HF_STORE_RESTORE_KEY,
			  "{\"why\": \"a restore began and has not ended; "
			  "run it again\"}");
	rc = hf_store_txn(s, &t, NULL);
	hf_store_txn_release(&t);
	for (size_t i = 0; !rc && i < all->ops.len; i += RESTORE_TXN_OPS) {
		for (size_t k = i; k < all->ops.len && k < i + RESTORE_TXN_OPS;
		     k++) {
			const struct hf_store_op *op = &all->ops.items[k];

			if (op->kind == HF_STORE_OP_PUT)
				hf_store_txn_put(&t, op->key, op->value, op->len);
			else
				hf_store_txn_delete(&t, op->key);
		}
		rc = hf_store_txn(s, &t, NULL);
		hf_store_txn_release(&t);
	}
	if (!rc) {
		hf_store_txn_delete(&t, HF_STORE_RESTORE_KEY);
		rc = hf_store_txn(s, &t, NULL);
		hf_store_txn_release(&t);
	}
	return rc;
}

int hf_store_restore(struct hf_store *s, const struct hf_store_kvs *backup,
		     const char *skip_key, size_t *changed)
{
	struct hf_store_kvs now = {0};
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int rc;

	rc = hf_store_list(s, "", 0, &now);
	if (rc)
		return rc;
	if (skip_key && !has_local_leases(s) && kvs_has(&now, skip_key)) {
		rc = HF_ECONFLICT;
		set_errorf(s, rc,
			   "the store holds '%s': a server leads it; stop "
			   "every server before restoring",
			   skip_key);
		goto out;
	}
	for (size_t i = 0; i < backup->len; i++) {
		const struct hf_store_kv *kv = &backup->items[i];

		if (skip_key && strcmp(kv->key, skip_key) == 0)
			continue;
		if (strcmp(kv->key, HF_STORE_RESTORE_KEY) == 0)
			continue;
		hf_store_txn_put(&t, kv->key, kv->value, kv->len);
	}
	for (size_t i = 0; i < now.len; i++) {
		const char *key = now.items[i].key;

		if (!kvs_has(backup, key) || (skip_key && strcmp(key, skip_key) == 0) ||
		    strcmp(key, HF_STORE_RESTORE_KEY) == 0)
			hf_store_txn_delete(&t, key);
	}
	rc = t.ops.len ? hf_store_txn(s, &t, NULL) : 0;
	if (rc == HF_ETOOBIG)
		rc = restore_in_pieces(s, &t);
	if (!rc && changed)
		*changed = t.ops.len;
out:
	hf_store_txn_release(&t);
	hf_store_kvs_release(&now);
	return rc;
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

void hf_store_txn_put_lease(struct hf_store_txn *t, const char *key,
			    const void *value, size_t len, int64_t lease_id)
{
	hf_store_txn_put(t, key, value, len);
	t->ops.items[t->ops.len - 1].lease = lease_id;
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
