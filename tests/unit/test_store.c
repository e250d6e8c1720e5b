/*
 * test_store.c - the store contract, run against every backend ("mem" and
 * "sqlite" in a fresh temporary directory per test), plus the SQLite
 * backend's own promises: persistence, the exclusive lock, schema checks,
 * rollback of a transaction that fails half way (fault loop), and
 * durability of every reported commit across kill -9 (crash loop).
 *
 * HF_TEST_SEED=<n> replays the random choices of a run; the seed in use is
 * printed by the tests that use it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

struct fx {
	const char *backend; /* "mem" or "sqlite" */
	char dir[PATH_MAX];  /* a fresh temporary directory */
	char *db;            /* dir/store.db */
	char *url;
	struct hf_store *s;
};

static const char mem_backend[] = "mem";
static const char sqlite_backend[] = "sqlite";

/* Fails the test with both sides and the store's detail sentence. */
#define assert_rc(s, expr, want)                                               \
	do {                                                                   \
		int rc_ = (expr);                                              \
		int want_ = (want);                                            \
		if (rc_ != want_) {                                            \
			print_error("%s\n  got  %s (%d)\n  want %s (%d)\n"     \
				    "  detail: %s\n",                          \
				    #expr, hf_err_name(rc_), rc_,              \
				    hf_err_name(want_), want_,                 \
				    hf_store_last_error(s));                   \
			fail();                                                \
		}                                                              \
	} while (0)

#define assert_ok(s, expr) assert_rc(s, expr, 0)

/* Fails unless haystack contains needle, printing both. */
#define assert_contains(haystack, needle)                                      \
	do {                                                                   \
		const char *h_ = (haystack), *n_ = (needle);                   \
		if (!strstr(h_, n_)) {                                         \
			print_error("expected \"%s\" to contain \"%s\"\n", h_, \
				    n_);                                       \
			fail();                                                \
		}                                                              \
	} while (0)

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	f->backend = *state;
	snprintf(f->dir, sizeof(f->dir), "%s/hf-store-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	f->db = hf_xasprintf("%s/store.db", f->dir);
	if (strcmp(f->backend, "mem") == 0)
		f->url = hf_xstrdup("mem:");
	else
		f->url = hf_xasprintf("sqlite:%s", f->db);
	assert_ok(NULL, hf_store_open(f->url, &f->s));
	assert_string_equal(hf_store_backend_name(f->s), f->backend);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hf_store_close(f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->db);
	free(f->url);
	free(f);
	return 0;
}

/* Closes and reopens the fixture's store (sqlite: same file). */
static void reopen(struct fx *f)
{
	hf_store_close(f->s);
	f->s = NULL;
	assert_ok(NULL, hf_store_open(f->url, &f->s));
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static unsigned int test_seed(void)
{
	const char *env = getenv("HF_TEST_SEED");
	unsigned int seed;

	if (env && *env)
		seed = (unsigned int)strtoul(env, NULL, 10);
	else
		seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	print_message("    seed %u (HF_TEST_SEED=%u replays it)\n", seed, seed);
	return seed;
}

static int64_t rev_of(struct hf_store *s)
{
	int64_t rev = -1;

	assert_ok(s, hf_store_revision(s, &rev));
	return rev;
}

static int64_t put_str(struct hf_store *s, const char *key, const char *value)
{
	int64_t rev = -1;

	assert_ok(s, hf_store_put(s, key, value, strlen(value), &rev));
	return rev;
}

/* Asserts key holds value (a C string) and, if want_rev >= 0, its mod_rev. */
static void assert_value(struct hf_store *s, const char *key,
			 const char *value, int64_t want_rev)
{
	char *got = NULL;
	size_t len = 0;
	int64_t mod_rev = -1;

	assert_ok(s, hf_store_get(s, key, &got, &len, &mod_rev));
	if (strcmp(got, value) != 0 || len != strlen(value) ||
	    (want_rev >= 0 && mod_rev != want_rev)) {
		print_error("key '%s'\n  got  \"%s\" (%zu bytes) mod_rev %lld\n"
			    "  want \"%s\" (%zu bytes) mod_rev %lld\n",
			    key, got, len, (long long)mod_rev, value,
			    strlen(value), (long long)want_rev);
		free(got);
		fail();
	}
	free(got);
}

static void assert_absent(struct hf_store *s, const char *key)
{
	char *got = NULL;

	assert_rc(s, hf_store_get(s, key, &got, NULL, NULL), HF_ENOTFOUND);
	assert_null(got);
}

/* Asserts the keys under prefix, in order, are exactly those in want. */
static void assert_keys(struct hf_store *s, const char *prefix,
			const char *const *want, size_t n)
{
	struct hf_store_kvs l;

	assert_ok(s, hf_store_list(s, prefix, 0, &l));
	for (size_t i = 0; i < l.len && i < n; i++)
		assert_string_equal(l.items[i].key, want[i]);
	assert_int_equal(l.len, n);
	assert_false(l.more);
	hf_store_kvs_release(&l);
}

/* ------------------------------------------------------------------ */
/* The contract, for every backend                                      */

static void test_put_get(void **state)
{
	struct fx *f = *state;
	int64_t r1, r2;

	assert_int_equal(rev_of(f->s), 0);
	r1 = put_str(f->s, "/services/db/config/a", "hello");
	assert_int_equal(r1, 1);
	assert_value(f->s, "/services/db/config/a", "hello", r1);
	/* Outputs are optional. */
	assert_ok(f->s, hf_store_get(f->s, "/services/db/config/a", NULL, NULL,
				     NULL));

	r2 = put_str(f->s, "/services/db/config/a", "world, longer");
	assert_int_equal(r2, r1 + 1);
	assert_value(f->s, "/services/db/config/a", "world, longer", r2);

	/* Empty values are values. */
	put_str(f->s, "/empty", "");
	assert_value(f->s, "/empty", "", -1);
}

static void test_get_absent(void **state)
{
	struct fx *f = *state;
	char *value = (char *)"untouched";
	size_t len = 42;
	int64_t mod_rev = 42;

	assert_rc(f->s, hf_store_get(f->s, "/nope", &value, &len, &mod_rev),
		  HF_ENOTFOUND);
	assert_string_equal(value, "untouched");
	assert_int_equal(len, 42);
	assert_int_equal(mod_rev, 42);
	assert_contains(hf_store_last_error(f->s), "/nope");
	/* The detail belongs to the handle that failed. */
	assert_string_equal(hf_store_last_error(NULL), "");

	assert_rc(f->s, hf_store_get(f->s, "", &value, &len, &mod_rev),
		  HF_EINVAL);
}

static void test_list_prefix_sorted(void **state)
{
	struct fx *f = *state;
	/* Inserted out of order, each in its own transaction. */
	const char *keys[] = {"/b",  "/a/c", "/ab",  "/a",  "/a/b/x",
			      "/a/b", "/a/", "/\xc3\xa9", "/z", "/a/a"};
	const char *under_a[] = {"/a/", "/a/a", "/a/b", "/a/b/x", "/a/c"};
	const char *all[] = {"/a",   "/a/",  "/a/a", "/a/b",        "/a/b/x",
			     "/a/c", "/ab",  "/b",   "/z", "/\xc3\xa9"};
	struct hf_store_kvs l;

	for (size_t i = 0; i < HF_ARRAY_LEN(keys); i++)
		put_str(f->s, keys[i], keys[i]);
	assert_keys(f->s, "/a/", under_a, HF_ARRAY_LEN(under_a));
	/* Bytewise order: the UTF-8 'é' (0xc3) sorts after 'z'. */
	assert_keys(f->s, "", all, HF_ARRAY_LEN(all));
	assert_keys(f->s, "/nothing/", NULL, 0);

	/* Values and revisions come along. */
	assert_ok(f->s, hf_store_list(f->s, "/a/b", 0, &l));
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[1].key, "/a/b/x");
	assert_string_equal(l.items[1].value, "/a/b/x");
	assert_int_equal(l.items[1].len, 6);
	assert_int_equal(l.items[1].mod_rev, 5);
	assert_int_equal(l.items[1].create_rev, 5);
	assert_int_equal(l.items[1].version, 1);
	assert_int_equal(l.rev, (int64_t)HF_ARRAY_LEN(keys));
	hf_store_kvs_release(&l);

	/* A limit cuts the list and says so. */
	assert_ok(f->s, hf_store_list(f->s, "/a/", 2, &l));
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[0].key, "/a/");
	assert_string_equal(l.items[1].key, "/a/a");
	assert_true(l.more);
	hf_store_kvs_release(&l);
	assert_ok(f->s, hf_store_list(f->s, "/a/", 5, &l));
	assert_int_equal(l.len, 5);
	assert_false(l.more);
	hf_store_kvs_release(&l);
}

static void test_list_prefix_high_bytes(void **state)
{
	struct fx *f = *state;
	const char *want[] = {"/x\xff", "/x\xff\x61", "/x\xff\xff"};
	const char *want_ff[] = {"/x\xff\xff"};

	put_str(f->s, "/x\xff\xff", "1");
	put_str(f->s, "/x\xff", "2");
	put_str(f->s, "/x\xff\x61", "3");
	put_str(f->s, "/y", "4");
	put_str(f->s, "/x", "5");
	assert_keys(f->s, "/x\xff", want, HF_ARRAY_LEN(want));
	assert_keys(f->s, "/x\xff\xff", want_ff, 1);
}

static void test_revisions(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_store_kvs l;
	int64_t rev = -1;

	/* Several operations, one revision. */
	hf_store_txn_puts(&t, "/r/a", "1");
	hf_store_txn_puts(&t, "/r/b", "1");
	hf_store_txn_puts(&t, "/r/c", "1");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, 1);
	assert_int_equal(rev_of(f->s), 1);

	put_str(f->s, "/r/a", "2");
	assert_int_equal(put_str(f->s, "/r/a", "3"), 3);
	assert_ok(f->s, hf_store_list(f->s, "/r/a", 0, &l));
	assert_int_equal(l.len, 1);
	assert_int_equal(l.items[0].create_rev, 1);
	assert_int_equal(l.items[0].mod_rev, 3);
	assert_int_equal(l.items[0].version, 3);
	hf_store_kvs_release(&l);

	/* Changing nothing creates no revision (etcd does the same). */
	hf_store_txn_delete(&t, "/r/none");
	hf_store_txn_delete_prefix(&t, "/none/");
	hf_store_txn_cmp_present(&t, "/r/a");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, 3);
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev)); /* empty */
	assert_int_equal(rev, 3);
	assert_int_equal(rev_of(f->s), 3);

	/* A delete is a change; recreating starts a new incarnation. */
	assert_ok(f->s, hf_store_delete(f->s, "/r/a", &rev));
	assert_int_equal(rev, 4);
	assert_absent(f->s, "/r/a");
	assert_int_equal(put_str(f->s, "/r/a", "new"), 5);
	assert_ok(f->s, hf_store_list(f->s, "/r/a", 0, &l));
	assert_int_equal(l.items[0].create_rev, 5);
	assert_int_equal(l.items[0].mod_rev, 5);
	assert_int_equal(l.items[0].version, 1);
	hf_store_kvs_release(&l);
}

static void test_cmp_mod_rev(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int64_t r1, r2, rev = -1;

	r1 = put_str(f->s, "/c/x", "x1");
	r2 = put_str(f->s, "/c/y", "y1");

	/* A stale mod_rev: nothing of the transaction applies. */
	hf_store_txn_cmp_mod_rev(&t, "/c/y", r2);
	hf_store_txn_cmp_mod_rev(&t, "/c/x", r1 - 1);
	hf_store_txn_puts(&t, "/c/x", "x2");
	hf_store_txn_puts(&t, "/c/new", "n");
	hf_store_txn_delete(&t, "/c/y");
	rev = -7;
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_ECONFLICT);
	assert_int_equal(rev, -7);
	assert_contains(hf_store_last_error(f->s), "/c/x");
	hf_store_txn_release(&t);
	assert_int_equal(rev_of(f->s), r2);
	assert_value(f->s, "/c/x", "x1", r1);
	assert_value(f->s, "/c/y", "y1", r2);
	assert_absent(f->s, "/c/new");

	/* The right mod_revs: all of it applies at one new revision. */
	hf_store_txn_cmp_mod_rev(&t, "/c/y", r2);
	hf_store_txn_cmp_mod_rev(&t, "/c/x", r1);
	hf_store_txn_puts(&t, "/c/x", "x2");
	hf_store_txn_puts(&t, "/c/new", "n");
	hf_store_txn_delete(&t, "/c/y");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, r2 + 1);
	assert_value(f->s, "/c/x", "x2", rev);
	assert_value(f->s, "/c/new", "n", rev);
	assert_absent(f->s, "/c/y");

	/* mod_rev 0 means absent. */
	hf_store_txn_cmp_mod_rev(&t, "/c/y", 0);
	assert_ok(f->s, hf_store_txn(f->s, &t, NULL));
	hf_store_txn_release(&t);
	hf_store_txn_cmp_mod_rev(&t, "/c/x", 0);
	assert_rc(f->s, hf_store_txn(f->s, &t, NULL), HF_ECONFLICT);
	hf_store_txn_release(&t);
}

static void test_cmp_absent_present(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int64_t rev;

	/* Create-if-absent, twice: the second loses. */
	hf_store_txn_cmp_absent(&t, "/lock");
	hf_store_txn_puts(&t, "/lock", "first");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	assert_int_equal(rev, 1);
	hf_store_txn_release(&t);
	hf_store_txn_cmp_absent(&t, "/lock");
	hf_store_txn_puts(&t, "/lock", "second");
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_ECONFLICT);
	hf_store_txn_release(&t);
	assert_value(f->s, "/lock", "first", 1);
	assert_int_equal(rev_of(f->s), 1);

	/* Present. */
	hf_store_txn_cmp_present(&t, "/missing");
	hf_store_txn_puts(&t, "/other", "x");
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_ECONFLICT);
	assert_contains(hf_store_last_error(f->s), "/missing");
	hf_store_txn_release(&t);
	assert_absent(f->s, "/other");
	hf_store_txn_cmp_present(&t, "/lock");
	hf_store_txn_puts(&t, "/other", "x");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_value(f->s, "/other", "x", 2);
}

static void test_delete_prefix(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	const char *left[] = {"/a", "/ab", "/ab/c", "/b/x"};
	int64_t rev;

	put_str(f->s, "/a", "1");
	put_str(f->s, "/a/x", "1");
	put_str(f->s, "/a/y/z", "1");
	put_str(f->s, "/ab", "1");
	put_str(f->s, "/ab/c", "1");
	put_str(f->s, "/b/x", "1");
	put_str(f->s, "/b/y", "1");
	assert_int_equal(rev_of(f->s), 7);

	/* Two deletes that overlap, and a put elsewhere: one revision. */
	hf_store_txn_delete_prefix(&t, "/a/");
	hf_store_txn_delete(&t, "/a/x");
	hf_store_txn_delete(&t, "/b/y");
	hf_store_txn_puts(&t, "/c", "new");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, 8);
	assert_keys(f->s, "/a", left, 3);
	assert_keys(f->s, "/b/", left + 3, 1);
	assert_value(f->s, "/c", "new", 8);

	/* An empty prefix would wipe everything: refused. */
	hf_store_txn_delete_prefix(&t, "");
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_EINVAL);
	hf_store_txn_release(&t);
	assert_int_equal(rev_of(f->s), 8);
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct hf_store_stats st;
	int64_t rev = -1;

	put_str(f->s, "/d", "1");
	assert_ok(f->s, hf_store_delete(f->s, "/d", &rev));
	assert_int_equal(rev, 2);
	rev = -1;
	assert_rc(f->s, hf_store_delete(f->s, "/d", &rev), HF_ENOTFOUND);
	assert_int_equal(rev, -1);
	assert_contains(hf_store_last_error(f->s), "/d");
	assert_int_equal(rev_of(f->s), 2);
	/* An absent key is an answer, not a conflict or an error. */
	hf_store_stats(f->s, &st);
	assert_int_equal(st.conflicts, 0);
	assert_int_equal(st.errors, 0);
}

static void test_binary_values(void **state)
{
	struct fx *f = *state;
	const char bin[] = {'\0', 'a', '\0', (char)0xff, '\n', '\0'};
	struct hf_store_kvs l;
	char *value = NULL;
	size_t len = 0;

	assert_ok(f->s, hf_store_put(f->s, "/bin", bin, sizeof(bin), NULL));
	assert_ok(f->s, hf_store_get(f->s, "/bin", &value, &len, NULL));
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(value, bin, sizeof(bin));
	assert_int_equal(value[len], '\0');
	free(value);

	assert_ok(f->s, hf_store_list(f->s, "/bin", 0, &l));
	assert_int_equal(l.len, 1);
	assert_int_equal(l.items[0].len, sizeof(bin));
	assert_memory_equal(l.items[0].value, bin, sizeof(bin));
	assert_int_equal(l.items[0].value[sizeof(bin)], '\0');
	hf_store_kvs_release(&l);
}

static void test_large_value(void **state)
{
	struct fx *f = *state;
	size_t n = 1024 * 1024;
	char *big = hf_xmalloc(HF_STORE_VALUE_MAX + 1);
	unsigned int seed = test_seed();
	char *value = NULL;
	size_t len = 0;
	int64_t rev;

	for (size_t i = 0; i < HF_STORE_VALUE_MAX + 1; i++)
		big[i] = (char)rand_r(&seed);
	assert_ok(f->s, hf_store_put(f->s, "/big", big, n, &rev));
	assert_ok(f->s, hf_store_get(f->s, "/big", &value, &len, NULL));
	assert_int_equal(len, n);
	assert_memory_equal(value, big, n);
	free(value);

	/* The limit itself is fine; one byte more is refused. */
	assert_ok(f->s, hf_store_put(f->s, "/max", big, HF_STORE_VALUE_MAX,
				     NULL));
	assert_rc(f->s,
		  hf_store_put(f->s, "/over", big, HF_STORE_VALUE_MAX + 1,
			       NULL),
		  HF_ETOOBIG);
	assert_absent(f->s, "/over");
	assert_int_equal(rev_of(f->s), rev + 1);
	free(big);
}

static void test_many_keys(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_store_kvs l;
	const size_t n = 10000;
	char key[64], value[64];
	int64_t rev;

	put_str(f->s, "/keep", "k");
	/* Insert in a scrambled order; the store sorts. */
	for (size_t i = 0; i < n; i++) {
		size_t k = (i * 7919) % n;

		snprintf(key, sizeof(key), "/many/%05zu", k);
		snprintf(value, sizeof(value), "value of %zu", k);
		hf_store_txn_puts(&t, key, value);
	}
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, 2);

	assert_ok(f->s, hf_store_list(f->s, "/many/", 0, &l));
	assert_int_equal(l.len, n);
	for (size_t i = 0; i < l.len; i++) {
		snprintf(key, sizeof(key), "/many/%05zu", i);
		snprintf(value, sizeof(value), "value of %zu", i);
		assert_string_equal(l.items[i].key, key);
		assert_string_equal(l.items[i].value, value);
		assert_int_equal(l.items[i].mod_rev, 2);
	}
	hf_store_kvs_release(&l);

	/* And away in one delete. */
	hf_store_txn_delete_prefix(&t, "/many/");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, 3);
	assert_keys(f->s, "/many/", NULL, 0);
	assert_value(f->s, "/keep", "k", 1);
}

static void test_invalid_txns(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	char *long_key = hf_xmalloc(HF_STORE_KEY_MAX + 2);
	const struct {
		const char *name;
		int want;
	} cases[] = {
		{"empty key", HF_EINVAL},
		{"NULL key", HF_EINVAL},
		{"put twice", HF_EINVAL},
		{"put and delete", HF_EINVAL},
		{"put under deleted prefix", HF_EINVAL},
		{"empty delete prefix", HF_EINVAL},
		{"key too long", HF_ETOOBIG},
		{"negative mod_rev", HF_EINVAL},
		{"empty compared key", HF_EINVAL},
	};

	memset(long_key, 'k', HF_STORE_KEY_MAX + 1);
	long_key[0] = '/';
	long_key[HF_STORE_KEY_MAX + 1] = '\0';
	put_str(f->s, "/x", "old");
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		print_message("    case: %s\n", cases[i].name);
		/* Each carries a valid put that must not apply. */
		hf_store_txn_puts(&t, "/valid", "v");
		switch (i) {
		case 0: hf_store_txn_puts(&t, "", "v"); break;
		case 1: hf_store_txn_delete(&t, NULL); break;
		case 2: hf_store_txn_puts(&t, "/x", "1");
			hf_store_txn_puts(&t, "/x", "2"); break;
		case 3: hf_store_txn_puts(&t, "/x", "1");
			hf_store_txn_delete(&t, "/x"); break;
		case 4: hf_store_txn_puts(&t, "/p/q/r", "1");
			hf_store_txn_delete_prefix(&t, "/p/"); break;
		case 5: hf_store_txn_delete_prefix(&t, ""); break;
		case 6: hf_store_txn_puts(&t, long_key, "1"); break;
		case 7: hf_store_txn_cmp_mod_rev(&t, "/x", -1); break;
		case 8: hf_store_txn_cmp_absent(&t, ""); break;
		}
		assert_rc(f->s, hf_store_txn(f->s, &t, NULL), cases[i].want);
		assert_true(*hf_store_last_error(f->s) != '\0');
		hf_store_txn_release(&t);
		assert_absent(f->s, "/valid");
		assert_value(f->s, "/x", "old", 1);
		assert_int_equal(rev_of(f->s), 1);
	}
	/* The longest key allowed works. */
	long_key[HF_STORE_KEY_MAX] = '\0';
	put_str(f->s, long_key, "ok");
	assert_value(f->s, long_key, "ok", 2);
	free(long_key);
}

static void test_txn_copies_arguments(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	char key[16] = "/copy/a", value[16] = "first";

	hf_store_txn_puts(&t, key, value);
	strcpy(key, "/copy/b");
	strcpy(value, "other");
	hf_store_txn_puts(&t, key, value);
	memset(key, 'X', sizeof(key) - 1);
	memset(value, 'X', sizeof(value) - 1);
	assert_ok(f->s, hf_store_txn(f->s, &t, NULL));
	hf_store_txn_release(&t);
	assert_value(f->s, "/copy/a", "first", 1);
	assert_value(f->s, "/copy/b", "other", 1);
	/* A released transaction is empty and reusable. */
	assert_int_equal(t.ops.len, 0);
	assert_int_equal(t.cmps.len, 0);
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_store_stats st;
	struct hf_store_kvs l;

	put_str(f->s, "/s", "1");                              /* txn */
	assert_value(f->s, "/s", "1", 1);                      /* get */
	assert_absent(f->s, "/none");                          /* get */
	assert_ok(f->s, hf_store_list(f->s, "/", 0, &l));      /* list */
	hf_store_kvs_release(&l);
	hf_store_txn_cmp_absent(&t, "/s");                     /* conflict */
	assert_rc(f->s, hf_store_txn(f->s, &t, NULL), HF_ECONFLICT);
	hf_store_txn_release(&t);
	hf_store_txn_puts(&t, "", "x");                        /* error */
	assert_rc(f->s, hf_store_txn(f->s, &t, NULL), HF_EINVAL);
	hf_store_txn_release(&t);
	hf_store_stats(f->s, &st);
	assert_int_equal(st.gets, 2);
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.txns, 1);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.errors, 1);
}

/* Several readers list while a writer commits; each list is a snapshot. */
struct reader {
	struct hf_store *s;
	int iterations;
	char failure[256]; /* cmocka cannot assert off the main thread */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	int64_t last_rev = 0;

	for (int i = 0; i < r->iterations && !r->failure[0]; i++) {
		struct hf_store_kvs l;
		long count;
		int rc = hf_store_list(r->s, "/t/", 0, &l);

		if (rc) {
			snprintf(r->failure, sizeof(r->failure), "list: %s: %s",
				 hf_err_name(rc), hf_store_last_error(r->s));
			break;
		}
		/* "/t/count" sorts before "/t/k/...": it is items[0]. */
		count = l.len ? strtol(l.items[0].value, NULL, 10) : 0;
		if (l.len && (long)l.len != count + 1)
			snprintf(r->failure, sizeof(r->failure),
				 "torn read: count %ld but %zu keys", count,
				 l.len - 1);
		if (l.rev < last_rev)
			snprintf(r->failure, sizeof(r->failure),
				 "revision went back from %lld to %lld",
				 (long long)last_rev, (long long)l.rev);
		last_rev = l.rev;
		hf_store_kvs_release(&l);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	struct reader readers[4];
	pthread_t tids[4];
	const int writes = 200;

	for (int i = 0; i < 4; i++) {
		memset(&readers[i], 0, sizeof(readers[i]));
		readers[i].s = f->s;
		readers[i].iterations = 300;
		assert_int_equal(pthread_create(&tids[i], NULL, reader_main,
						&readers[i]), 0);
	}
	for (int i = 1; i <= writes; i++) {
		struct hf_store_txn t = HF_STORE_TXN_INIT;
		char key[32], count[32];

		snprintf(key, sizeof(key), "/t/k/%04d", i);
		snprintf(count, sizeof(count), "%d", i);
		hf_store_txn_puts(&t, key, "x");
		hf_store_txn_puts(&t, "/t/count", count);
		assert_ok(f->s, hf_store_txn(f->s, &t, NULL));
		hf_store_txn_release(&t);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tids[i], NULL);
		assert_string_equal(readers[i].failure, "");
	}
	assert_int_equal(rev_of(f->s), writes);
}

/* ------------------------------------------------------------------ */
/* SQLite backend                                                       */

/* Asserts the journal mode of a database file, read with a new connection. */
static void assert_journal_mode(const char *db, const char *want)
{
	sqlite3 *conn = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(db, &conn), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA journal_mode", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
	sqlite3_finalize(st);
	sqlite3_close(conn);
}

static void test_sqlite_reopen_persists(void **state)
{
	struct fx *f = *state;
	const char bin[] = {'a', '\0', 'b'};
	struct hf_store_kvs l;
	char *value = NULL;
	size_t len;

	put_str(f->s, "/p/a", "1");
	put_str(f->s, "/p/a", "2");
	assert_ok(f->s, hf_store_put(f->s, "/p/bin", bin, sizeof(bin), NULL));
	put_str(f->s, "/p/gone", "x");
	assert_ok(f->s, hf_store_delete(f->s, "/p/gone", NULL));
	reopen(f);
	assert_int_equal(rev_of(f->s), 5);
	assert_absent(f->s, "/p/gone");
	assert_ok(f->s, hf_store_get(f->s, "/p/bin", &value, &len, NULL));
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(value, bin, sizeof(bin));
	free(value);
	assert_ok(f->s, hf_store_list(f->s, "/p/a", 0, &l));
	assert_int_equal(l.len, 1);
	assert_string_equal(l.items[0].value, "2");
	assert_int_equal(l.items[0].create_rev, 1);
	assert_int_equal(l.items[0].mod_rev, 2);
	assert_int_equal(l.items[0].version, 2);
	hf_store_kvs_release(&l);
	/* Revisions go on from where they were. */
	assert_int_equal(put_str(f->s, "/p/b", "x"), 6);
	/* The durability promise rests on WAL mode (a property of the file). */
	assert_journal_mode(f->db, "wal");
}

static void test_sqlite_exclusive_lock(void **state)
{
	struct fx *f = *state;
	struct hf_store *second = (struct hf_store *)0x1;
	char *pid = hf_xasprintf("pid %ld", (long)getpid());
	pid_t child;
	int status;

	/* Same process, other spellings of the same file. */
	assert_rc(NULL, hf_store_open(f->db, &second), HF_EUNAVAIL);
	assert_null(second);
	assert_contains(hf_store_last_error(NULL),
			"in use by another holdfast server");
	assert_contains(hf_store_last_error(NULL), pid);
	free(pid);

	/* Another process. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct hf_store *s = NULL;
		int rc = hf_store_open(f->url, &s);

		_exit(rc == HF_EUNAVAIL ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* Free again once closed. */
	hf_store_close(f->s);
	f->s = NULL;
	assert_ok(NULL, hf_store_open(f->db, &second));
	hf_store_close(second);
	assert_ok(NULL, hf_store_open(f->url, &f->s));
}

static void test_sqlite_missing_dir(void **state)
{
	struct fx *f = *state;
	char *url = hf_xasprintf("sqlite:%s/no/such/dir/store.db", f->dir);
	char *file = hf_xasprintf("%s/a-file", f->dir);
	char *under_file = hf_xasprintf("%s/store.db", file);
	struct hf_store *s = NULL;
	struct stat st;

	assert_rc(NULL, hf_store_open(url, &s), HF_ENOTFOUND);
	assert_null(s);
	assert_contains(hf_store_last_error(NULL), "does not exist");
	assert_contains(hf_store_last_error(NULL), "/no/such/dir");
	assert_int_equal(stat(url + 7, &st), -1);

	assert_int_equal(hf_write_file_atomic(file, "x", 1, 0600), 0);
	assert_rc(NULL, hf_store_open(under_file, &s), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "not a directory");
	free(url);
	free(file);
	free(under_file);
}

/* Runs SQL on the store file through a connection of the test's own. */
static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *conn = NULL;
	char *msg = NULL;
	int rc;

	assert_int_equal(sqlite3_open(db, &conn), SQLITE_OK);
	sqlite3_busy_timeout(conn, 5000);
	rc = sqlite3_exec(conn, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		print_error("%s: %s\n", sql, msg ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	sqlite3_close(conn);
	assert_int_equal(rc, SQLITE_OK);
}

static void test_sqlite_newer_schema_refused(void **state)
{
	struct fx *f = *state;

	put_str(f->s, "/x", "1");
	hf_store_close(f->s);
	f->s = NULL;
	raw_exec(f->db, "UPDATE meta SET value = 99 WHERE name = 'schema_version'");
	assert_rc(NULL, hf_store_open(f->url, &f->s), HF_EUNSUPPORTED);
	assert_null(f->s);
	assert_contains(hf_store_last_error(NULL), "schema version 99");
	assert_contains(hf_store_last_error(NULL), "newer holdfast");

	/* The refusal changed nothing: back to 1, and it opens. */
	raw_exec(f->db, "UPDATE meta SET value = 1 WHERE name = 'schema_version'");
	assert_ok(NULL, hf_store_open(f->url, &f->s));
	assert_value(f->s, "/x", "1", 1);
}

static void test_sqlite_not_a_store(void **state)
{
	struct fx *f = *state;
	char *text = hf_xasprintf("%s/notes.txt", f->dir);
	char *other = hf_xasprintf("%s/other.db", f->dir);
	char *empty_other = hf_xasprintf("%s/empty-other.db", f->dir);
	const char junk[] = "this is not a database, not even close. "
			    "it is a text file that is long enough to have a "
			    "header, which sqlite reads before it says no.\n";
	struct hf_store *s = NULL;
	char *content = NULL;

	assert_int_equal(hf_write_file_atomic(text, junk, sizeof(junk) - 1,
					      0600), 0);
	assert_rc(NULL, hf_store_open(text, &s), HF_EINVAL);
	assert_null(s);
	assert_contains(hf_store_last_error(NULL), "not an SQLite database");
	/* Untouched. */
	assert_int_equal(hf_read_file(text, 4096, &content, NULL), 0);
	assert_string_equal(content, junk);
	free(content);

	raw_exec(other, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
	assert_rc(NULL, hf_store_open(other, &s), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "not a holdfast store");
	/* Still a database of one table, not in WAL mode: untouched. */
	raw_exec(other, "SELECT x FROM t");
	assert_journal_mode(other, "delete");

	/* Another application's file, even without tables. */
	raw_exec(empty_other, "PRAGMA application_id = 42");
	assert_rc(NULL, hf_store_open(empty_other, &s), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "not a holdfast store");
	free(empty_other);
	free(text);
	free(other);
}

static void test_urls(void **state)
{
	struct fx *f = *state;
	char *abs3 = hf_xasprintf("sqlite://%s/three.db", f->dir);
	char *plain = hf_xasprintf("%s/plain.db", f->dir);
	char *colon = hf_xasprintf("%s/a:b.db", f->dir);
	const struct {
		const char *url;
		int want;
		const char *backend;
	} cases[] = {
		{"mem:", 0, "mem"},
		{abs3, 0, "sqlite"},
		{plain, 0, "sqlite"},
		{colon, 0, "sqlite"},
		{"", HF_EINVAL, NULL},
		{"mem:x", HF_EINVAL, NULL},
		{"sqlite:", HF_EINVAL, NULL},
		{"sqlite://host/x.db", HF_EINVAL, NULL},
		{"etcd://127.0.0.1:2379", HF_EUNSUPPORTED, NULL},
		{"redis://x", HF_EINVAL, NULL},
	};

	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		struct hf_store *s = NULL;

		print_message("    url: '%s'\n", cases[i].url);
		assert_rc(NULL, hf_store_open(cases[i].url, &s), cases[i].want);
		if (cases[i].want) {
			assert_null(s);
			assert_true(*hf_store_last_error(NULL) != '\0');
			continue;
		}
		assert_string_equal(hf_store_backend_name(s), cases[i].backend);
		put_str(s, "/u", "1");
		hf_store_close(s);
	}
	/* sqlite:///abs and the plain path made their files. */
	assert_int_equal(access(abs3 + strlen("sqlite://"), F_OK), 0);
	assert_int_equal(access(plain, F_OK), 0);
	free(abs3);
	free(plain);
	free(colon);
}

/*
 * Fault loop: a trigger makes the Nth write of a transaction fail (as a
 * full disk or an I/O error would, half way through), for every N. Each
 * time the transaction must leave no trace, and the store must go on.
 */
static void test_sqlite_failed_txn_rolls_back(void **state)
{
	struct fx *f = *state;
	const char *faults[] = {
		/* inserts and updates of each put */
		"BEFORE INSERT ON kv WHEN NEW.key = '/f/a'",
		"BEFORE INSERT ON kv WHEN NEW.key = '/f/b'",
		"BEFORE UPDATE ON kv WHEN NEW.key = '/f/a'",
		"BEFORE DELETE ON kv WHEN OLD.key = '/f/old'",
		"BEFORE DELETE ON kv WHEN OLD.key = '/g/2'",
		"BEFORE INSERT ON kv WHEN NEW.key = '/f/z'",
		/* the revision bump, after every key was written */
		"BEFORE UPDATE ON meta",
	};
	int64_t base;

	put_str(f->s, "/f/a", "a0");
	put_str(f->s, "/f/old", "old");
	put_str(f->s, "/g/1", "g");
	put_str(f->s, "/g/2", "g");
	base = rev_of(f->s);
	for (size_t i = 0; i <= HF_ARRAY_LEN(faults); i++) {
		struct hf_store_txn t = HF_STORE_TXN_INIT;
		int64_t rev = -1;
		char *sql;

		raw_exec(f->db, "DROP TRIGGER IF EXISTS fault");
		if (i < HF_ARRAY_LEN(faults)) {
			print_message("    fault: %s\n", faults[i]);
			sql = hf_xasprintf("CREATE TRIGGER fault %s BEGIN "
					   "SELECT RAISE(ABORT, 'injected "
					   "fault'); END",
					   faults[i]);
			raw_exec(f->db, sql);
			free(sql);
		}
		hf_store_txn_cmp_mod_rev(&t, "/f/a", 1);
		hf_store_txn_puts(&t, "/f/a", "a1");
		hf_store_txn_puts(&t, "/f/b", "b1");
		hf_store_txn_delete(&t, "/f/old");
		hf_store_txn_delete_prefix(&t, "/g/");
		hf_store_txn_puts(&t, "/f/z", "z1");
		if (i == HF_ARRAY_LEN(faults)) {
			/* No fault: all of it, at exactly one new revision. */
			assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
			hf_store_txn_release(&t);
			assert_int_equal(rev, base + 1);
			assert_value(f->s, "/f/a", "a1", rev);
			assert_value(f->s, "/f/b", "b1", rev);
			assert_value(f->s, "/f/z", "z1", rev);
			assert_absent(f->s, "/f/old");
			assert_keys(f->s, "/g/", NULL, 0);
			break;
		}
		assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_EINTERNAL);
		assert_contains(hf_store_last_error(f->s), "injected fault");
		hf_store_txn_release(&t);
		assert_int_equal(rev, -1);
		assert_int_equal(rev_of(f->s), base);
		assert_value(f->s, "/f/a", "a0", 1);
		assert_absent(f->s, "/f/b");
		assert_absent(f->s, "/f/z");
		assert_value(f->s, "/f/old", "old", 2);
		assert_value(f->s, "/g/1", "g", 3);
		assert_value(f->s, "/g/2", "g", 4);
		/* Also as seen from disk by a new handle. */
		reopen(f);
		assert_int_equal(rev_of(f->s), base);
		assert_absent(f->s, "/f/b");
	}
}

/*
 * Crash loop. A child commits transactions as fast as it can and reports
 * each one's number and revision through a pipe once hf_store_txn returned
 * 0; the parent kills it with SIGKILL at a random moment, reopens the file
 * and checks that every reported commit is there, that the one commit that
 * may have finished unreported is there whole or not at all, and that the
 * file is intact. Each transaction writes a new key, rewrites a counter
 * under a mod_rev compare and rewrites one of a few 8 KiB blobs, so the WAL
 * grows and checkpoints happen while the child is killed.
 *
 * kill -9 proves the committed data reached the OS; power-loss durability
 * rests on synchronous=FULL, which this test cannot cut the power on.
 */
struct report {
	int64_t n;
	int64_t rev;
};

static void crash_child(const char *url, int round, int wfd)
{
	struct hf_store *s = NULL;
	char key[64], value[64], last_key[64];
	char blob[8192];
	int64_t last_rev = 0;

	if (hf_store_open(url, &s))
		_exit(3);
	snprintf(last_key, sizeof(last_key), "/crash/%d/last", round);
	for (int64_t n = 1;; n++) {
		struct hf_store_txn t = HF_STORE_TXN_INIT;
		struct report r;

		snprintf(key, sizeof(key), "/crash/%d/k/%08lld", round,
			 (long long)n);
		snprintf(value, sizeof(value), "value %d/%lld", round,
			 (long long)n);
		memset(blob, 'a' + (int)(n % 26), sizeof(blob));
		hf_store_txn_cmp_mod_rev(&t, last_key, last_rev);
		hf_store_txn_puts(&t, key, value);
		snprintf(value, sizeof(value), "%lld", (long long)n);
		hf_store_txn_puts(&t, last_key, value);
		snprintf(key, sizeof(key), "/crash/%d/blob/%lld", round,
			 (long long)(n % 8));
		hf_store_txn_put(&t, key, blob, sizeof(blob));
		if (hf_store_txn(s, &t, &r.rev))
			_exit(4);
		hf_store_txn_release(&t);
		last_rev = r.rev;
		r.n = n;
		if (write(wfd, &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(5);
	}
}

/* Checks the SQLite file's own consistency. */
static void assert_integrity(const char *db)
{
	sqlite3 *conn = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(conn, "PRAGMA integrity_check", -1,
					    &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	sqlite3_close(conn);
}

static void test_sqlite_crash_durability(void **state)
{
	struct fx *f = *state;
	unsigned int seed = test_seed();
	const int rounds = 5;

	for (int round = 0; round < rounds; round++) {
		HF_VEC(struct report) got = {0};
		struct hf_store_kvs l;
		struct report r;
		int64_t base, last_n = 0, last_rev = -1;
		size_t target = 1 + (size_t)(rand_r(&seed) % 300);
		int p[2], status;
		char prefix[32], key[128], want[64];
		char *value = NULL;
		pid_t child;
		ssize_t n;

		base = rev_of(f->s);
		/* The child opens the file itself: we must let go of it. */
		hf_store_close(f->s);
		f->s = NULL;
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			close(p[0]);
			crash_child(f->url, round, p[1]);
		}
		close(p[1]);
		while (got.len < target &&
		       (n = read(p[0], &r, sizeof(r))) == (ssize_t)sizeof(r))
			*HF_VEC_PUSH(&got) = r;
		if (got.len < target) {
			waitpid(child, &status, 0);
			print_error("the child stopped after %zu commits: "
				    "status %#x (exit 3 open, 4 txn, 5 pipe)\n",
				    got.len, status);
			fail();
		}
		usleep((useconds_t)(rand_r(&seed) % 5000));
		assert_int_equal(kill(child, SIGKILL), 0);
		/* Reports written before death count as commits too. */
		while ((n = read(p[0], &r, sizeof(r))) == (ssize_t)sizeof(r))
			*HF_VEC_PUSH(&got) = r;
		assert_int_equal(n, 0);
		close(p[0]);
		assert_int_equal(waitpid(child, &status, 0), child);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		print_message("    round %d: killed after %zu reported commits\n",
			      round, got.len);

		assert_integrity(f->db);
		assert_ok(NULL, hf_store_open(f->url, &f->s));
		/* Every reported commit, with the revision reported. */
		for (size_t i = 0; i < got.len; i++) {
			assert_int_equal(got.items[i].n, (int64_t)i + 1);
			assert_int_equal(got.items[i].rev, base + (int64_t)i + 1);
			snprintf(key, sizeof(key), "/crash/%d/k/%08lld", round,
				 (long long)got.items[i].n);
			snprintf(want, sizeof(want), "value %d/%lld", round,
				 (long long)got.items[i].n);
			assert_value(f->s, key, want, got.items[i].rev);
		}
		/* At most one more, unreported, and only whole. */
		snprintf(prefix, sizeof(prefix), "/crash/%d/k/", round);
		assert_ok(f->s, hf_store_list(f->s, prefix, 0, &l));
		assert_in_range(l.len, got.len, got.len + 1);
		for (size_t i = 0; i < l.len; i++) {
			snprintf(key, sizeof(key), "%s%08zu", prefix, i + 1);
			assert_string_equal(l.items[i].key, key);
			assert_int_equal(l.items[i].mod_rev,
					 base + (int64_t)i + 1);
		}
		last_n = (int64_t)l.len;
		last_rev = base + last_n;
		hf_store_kvs_release(&l);
		snprintf(key, sizeof(key), "/crash/%d/last", round);
		assert_ok(f->s, hf_store_get(f->s, key, &value, NULL, NULL));
		assert_int_equal(strtoll(value, NULL, 10), last_n);
		free(value);
		assert_int_equal(rev_of(f->s), last_rev);
		HF_VEC_FREE(&got);
	}
}

/* ------------------------------------------------------------------ */

#define ON(backend, fn)                                                        \
	{                                                                      \
		#backend "/" #fn, fn, setup, teardown, (void *)backend##_backend \
	}
#define BOTH(fn) ON(mem, fn), ON(sqlite, fn)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_put_get),
		BOTH(test_get_absent),
		BOTH(test_list_prefix_sorted),
		BOTH(test_list_prefix_high_bytes),
		BOTH(test_revisions),
		BOTH(test_cmp_mod_rev),
		BOTH(test_cmp_absent_present),
		BOTH(test_delete_prefix),
		BOTH(test_delete),
		BOTH(test_binary_values),
		BOTH(test_large_value),
		BOTH(test_many_keys),
		BOTH(test_invalid_txns),
		BOTH(test_txn_copies_arguments),
		BOTH(test_stats),
		BOTH(test_threads),
		ON(sqlite, test_urls),
		ON(sqlite, test_sqlite_reopen_persists),
		ON(sqlite, test_sqlite_exclusive_lock),
		ON(sqlite, test_sqlite_missing_dir),
		ON(sqlite, test_sqlite_newer_schema_refused),
		ON(sqlite, test_sqlite_not_a_store),
		ON(sqlite, test_sqlite_failed_txn_rolls_back),
		ON(sqlite, test_sqlite_crash_durability),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
