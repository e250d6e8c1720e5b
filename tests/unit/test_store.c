/*
 * test_store.c - the store contract, run against every backend ("mem",
 * "sqlite" in a fresh temporary directory per test, and "etcd" against a
 * real etcd the test starts), plus leases, leader election and fencing on
 * every backend, the SQLite backend's own promises (persistence, the
 * exclusive lock, schema checks, rollback of a transaction that fails half
 * way, durability of every reported commit across kill -9) and the etcd
 * backend's (unreachable and dead endpoints, timeouts, etcd's own limits,
 * losing etcd under an open handle, namespaces, TLS). The contract runs
 * on etcd twice: on the whole keyspace and in a namespace (prefix=).
 *
 * The etcd group starts /usr/bin/etcd (HF_ETCD=<path> names another) on
 * free local ports with a data directory under $TMPDIR, and a watcher
 * process that kills it and removes the directory when this process ends,
 * however it ends. A missing etcd fails the group: it is never skipped.
 * Each etcd test starts from an empty keyspace with no leases; revisions
 * are asserted relative to the revision the test started at, since etcd's
 * revisions never go back. The TLS test makes its CA and certificates with
 * the openssl tool and starts an etcd of its own that serves only TLS and
 * wants client certificates; a missing openssl fails it too.
 *
 * HF_TEST_SEED=<n> replays the random choices of a run; the seed in use is
 * printed by the tests that use it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"

/* ------------------------------------------------------------------ */
/* Assertions                                                           */

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

static const char *tmp_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && *tmp ? tmp : "/tmp";
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* A real etcd                                                          */

/*
 * One etcd server, our child, on free local ports. Its watcher, also our
 * child, waits for EOF on keep_fd: when we stop etcd ourselves we tell it
 * so ('s') and it only removes the directory; when this process dies in any
 * way (a crash, abort, SIGKILL) the pipe closes unannounced and the
 * watcher kills etcd first. So no etcd and no data directory outlive a
 * run, whether its tests pass or not.
 */
struct etcd_proc {
	char root[PATH_MAX]; /* data/ and etcd.log */
	char *url;           /* etcd://127.0.0.1:PORT (etcds:// with TLS) */
	char *http;          /* http://127.0.0.1:PORT (https:// with TLS) */
	const struct etcd_tls *tls; /* NULL: plain HTTP; not owned */
	int port;
	pid_t pid;
	pid_t watcher;
	int keep_fd;
};

/*
 * The files of an etcd serving TLS to its clients and requiring client
 * certificates (--client-cert-auth), and of a client it accepts.
 */
struct etcd_tls {
	char *ca;          /* the CA that signed both certificates */
	char *server_cert; /* for 127.0.0.1 (subjectAltName IP:127.0.0.1) */
	char *server_key;
	char *client_cert;
	char *client_key;
	char *other_ca; /* a CA that signed neither */
};

/* The etcd the etcd group shares; started by etcd_group_setup(). */
static struct etcd_proc shared_etcd = {.pid = -1, .watcher = -1,
				       .keep_fd = -1};

static const char *etcd_binary(void)
{
	const char *env = getenv("HF_ETCD");

	return env && *env ? env : "/usr/bin/etcd";
}

/* Two ports nothing listens on right now (etcd binds them just after). */
static void free_ports(int *a, int *b)
{
	int fds[2];

	for (int i = 0; i < 2; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(bind(fds[i], (struct sockaddr *)&sa,
				      sizeof(sa)), 0);
		assert_int_equal(getsockname(fds[i], (struct sockaddr *)&sa,
					     &len), 0);
		*(i ? b : a) = ntohs(sa.sin_port);
	}
	close(fds[0]);
	close(fds[1]);
}

/* True while pid runs (not yet a zombie); for the watcher. */
static bool still_running(pid_t pid)
{
	char path[64], buf[512];
	const char *state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	state = strrchr(buf, ')');
	return state && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static void watcher_main(int keep_r, pid_t etcd, const char *root)
{
	char c = 0;
	ssize_t n;

	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Hold nothing of the test's but the pipe, or EOF never comes. */
	if (dup2(keep_r, 3) < 0)
		_exit(1);
	close_range(4, ~0U, 0);
	do
		n = read(3, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 's') {
		kill(etcd, SIGKILL);
		for (int i = 0; i < 100 && still_running(etcd); i++)
			sleep_ms(50);
	}
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	_exit(0);
}

static void etcd_exec(const struct etcd_proc *p, int peer_port,
		      const char *const *extra)
{
	char *data = hf_xasprintf("%s/data", p->root);
	char *log = hf_xasprintf("%s/etcd.log", p->root);
	char *client = hf_xasprintf("%s://127.0.0.1:%d",
				    p->tls ? "https" : "http", p->port);
	char *peer = hf_xasprintf("http://127.0.0.1:%d", peer_port);
	char *cluster = hf_xasprintf("t=%s", peer);
	const char *argv[40] = {
		etcd_binary(), "--name", "t", "--data-dir", data,
		"--listen-client-urls", client, "--advertise-client-urls",
		client, "--listen-peer-urls", peer, "--initial-cluster",
		cluster, "--initial-advertise-peer-urls", peer,
	};
	size_t n = 15;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int null = open("/dev/null", O_RDONLY);

	if (p->tls) {
		const char *tls[] = {
			"--cert-file", p->tls->server_cert, "--key-file",
			p->tls->server_key, "--trusted-ca-file", p->tls->ca,
			"--client-cert-auth",
		};

		for (size_t i = 0; i < HF_ARRAY_LEN(tls); i++)
			argv[n++] = tls[i];
	}
	for (; extra && *extra && n < HF_ARRAY_LEN(argv) - 1; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(126);
	close_range(3, ~0U, 0);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

static size_t on_http_data(char *data, size_t size, size_t n, void *arg)
{
	hf_buf_add(arg, data, n);
	return n;
}

/*
 * One HTTP request to a test etcd: POST body, or GET when body is NULL;
 * over TLS with tls's CA and client certificate when tls is not NULL.
 * Returns the HTTP status, 0 when nothing answered; *answer (may be NULL)
 * gets the body, which the caller frees.
 */
static long http_call(const struct etcd_tls *tls, const char *url,
		      const char *body, char **answer)
{
	struct hf_buf b = HF_BUF_INIT;
	long status = 0;
	CURL *c = curl_easy_init();

	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (tls) {
		curl_easy_setopt(c, CURLOPT_CAINFO, tls->ca);
		curl_easy_setopt(c, CURLOPT_SSLCERT, tls->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, tls->client_key);
	}
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_http_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (answer)
		*answer = hf_buf_detach(&b);
	hf_buf_release(&b);
	return status;
}

/* Prints the end of an etcd's log, to show why it would not start. */
static void print_log_tail(const struct etcd_proc *p)
{
	char *path = hf_xasprintf("%s/etcd.log", p->root);
	char *log = NULL;
	size_t len = 0;

	if (hf_read_file(path, 64 * 1024 * 1024, &log, &len) == 0)
		print_error("--- end of %s:\n%s\n", path,
			    log + (len > 3000 ? len - 3000 : 0));
	free(log);
	free(path);
}

static void etcd_stop(struct etcd_proc *p);

/*
 * Starts an etcd with the extra arguments (NULL-terminated, may be NULL)
 * and waits until it answers /health. With tls (not NULL; it must outlive
 * the etcd) it serves its clients HTTPS only and wants their
 * certificates. Returns 0, or -1 with the reason printed (etcd missing, or
 * not healthy in time, with its log).
 */
static int etcd_start_tls(struct etcd_proc *p, const char *const *extra,
			  const struct etcd_tls *tls)
{
	const char *bin = etcd_binary();
	const char *scheme = tls ? "https" : "http";

	memset(p, 0, sizeof(*p));
	p->pid = p->watcher = p->keep_fd = -1;
	p->tls = tls;
	if (access(bin, X_OK) != 0) {
		print_error("etcd is not installed: %s: %s (scripts/setup.sh "
			    "installs etcd-server; HF_ETCD=<path> names "
			    "another binary). The etcd store tests need it.\n",
			    bin, strerror(errno));
		return -1;
	}
	/* A port taken between free_ports() and etcd's bind: try again. */
	for (int attempt = 0; attempt < 3; attempt++) {
		int keep[2], peer_port, status;
		int64_t deadline = now_ms() + 30000;
		char *health;

		snprintf(p->root, sizeof(p->root), "%s/hf-etcd-XXXXXX",
			 tmp_dir());
		if (!mkdtemp(p->root)) {
			print_error("mkdtemp %s: %s\n", p->root, strerror(errno));
			return -1;
		}
		free_ports(&p->port, &peer_port);
		if (pipe2(keep, O_CLOEXEC) < 0)
			return -1;
		p->pid = fork();
		if (p->pid == 0)
			etcd_exec(p, peer_port, extra);
		p->watcher = fork();
		if (p->watcher == 0)
			watcher_main(keep[0], p->pid, p->root);
		close(keep[0]);
		p->keep_fd = keep[1];
		if (p->pid < 0 || p->watcher < 0) {
			print_error("fork: %s\n", strerror(errno));
			return -1;
		}
		p->http = hf_xasprintf("%s://127.0.0.1:%d", scheme, p->port);
		p->url = hf_xasprintf("%s://127.0.0.1:%d",
				      tls ? "etcds" : "etcd", p->port);
		health = hf_xasprintf("%s/health", p->http);
		while (now_ms() < deadline) {
			char *answer = NULL;
			long st = http_call(tls, health, NULL, &answer);
			bool ok = st == 200 && strstr(answer, "\"true\"");

			free(answer);
			if (ok) {
				free(health);
				return 0;
			}
			if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
				print_error("etcd exited with status %#x "
					    "while starting\n",
					    status);
				p->pid = -1;
				break;
			}
			sleep_ms(50);
		}
		free(health);
		print_log_tail(p);
		etcd_stop(p);
	}
	print_error("etcd (%s) did not become healthy\n", bin);
	return -1;
}

static int etcd_start(struct etcd_proc *p, const char *const *extra)
{
	return etcd_start_tls(p, extra, NULL);
}

/* Stops an etcd and removes its directory; safe on a stopped one. */
static void etcd_stop(struct etcd_proc *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = -1;
	}
	if (p->keep_fd >= 0) {
		/* etcd is gone and reaped: only the directory is left. */
		if (write(p->keep_fd, "s", 1) != 1)
			print_error("could not signal the etcd watcher\n");
		close(p->keep_fd);
		p->keep_fd = -1;
	}
	if (p->watcher > 0) {
		waitpid(p->watcher, NULL, 0);
		p->watcher = -1;
	}
	free(p->url);
	p->url = NULL;
	free(p->http);
	p->http = NULL;
}

/* POSTs a request to a test etcd and returns its JSON answer (decref it). */
static json_t *etcd_post(const struct etcd_proc *p, const char *path,
			 const char *body, long want_status)
{
	char *url = hf_xasprintf("%s%s", p->http, path);
	char *answer = NULL;
	long st = http_call(p->tls, url, body, &answer);
	json_t *j = json_loads(answer, 0, NULL);

	if (st != want_status) {
		print_error("POST %s %s: HTTP %ld, want %ld: %s\n", url, body,
			    st, want_status, answer);
		fail();
	}
	free(answer);
	free(url);
	return j;
}

/*
 * Empties a test etcd for the next test: revokes every lease (deleting
 * their keys) and deletes every key.
 */
static void etcd_reset(const struct etcd_proc *p)
{
	json_t *leases = etcd_post(p, "/v3/lease/leases", "{}", 200);
	json_t *list = json_object_get(leases, "leases");

	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *id = json_string_value(
			json_object_get(json_array_get(list, i), "ID"));
		char *body = hf_xasprintf("{\"ID\":\"%s\"}", id ? id : "0");
		char *url = hf_xasprintf("%s/v3/lease/revoke", p->http);

		/* 404: it expired meanwhile. */
		http_call(p->tls, url, body, NULL);
		free(url);
		free(body);
	}
	json_decref(leases);
	/* "\0" to "\0": every key. */
	json_decref(etcd_post(p, "/v3/kv/deleterange",
			      "{\"key\":\"AA==\",\"range_end\":\"AA==\"}", 200));
}

/*
 * The contract's etcd: as deployed for holdfast (docs/store.md), with room
 * for a value of HF_STORE_VALUE_MAX and the 10,000-put transaction of
 * test_many_keys. test_etcd_default_limits runs one with etcd's defaults.
 */
static const char *const contract_etcd_args[] = {
	"--max-request-bytes", "4194304", "--max-txn-ops", "10240", NULL,
};

static int etcd_group_setup(void **state)
{
	return etcd_start(&shared_etcd, contract_etcd_args);
}

static int etcd_group_teardown(void **state)
{
	etcd_stop(&shared_etcd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

struct fx {
	/* "mem", "sqlite", "etcd" or "etcd_ns" (etcd, prefix=/hf-ns/) */
	const char *backend;
	char dir[PATH_MAX];  /* a fresh temporary directory */
	char *db;            /* dir/store.db */
	char *url;
	struct hf_store *s;
	/*
	 * The revision the test started at: 0 for a new mem or sqlite store,
	 * whatever the shared etcd is at for etcd. R(n) is "n revisions on".
	 */
	int64_t base;
	struct etcd_proc own_etcd; /* a test's own etcd, stopped by teardown */
	struct etcd_tls tls;       /* its TLS files, when it has them */
};

#define R(n) (f->base + (n))

static const char mem_backend[] = "mem";
static const char sqlite_backend[] = "sqlite";
static const char etcd_backend[] = "etcd";
static const char etcd_ns_backend[] = "etcd_ns";

/* The namespace of the etcd_ns fixture. */
#define NS_PREFIX "/hf-ns/"

static bool is_etcd(const struct fx *f)
{
	return strcmp(f->backend, etcd_backend) == 0 ||
	       strcmp(f->backend, etcd_ns_backend) == 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->backend = *state;
	f->own_etcd.pid = f->own_etcd.watcher = f->own_etcd.keep_fd = -1;
	snprintf(f->dir, sizeof(f->dir), "%s/hf-store-XXXXXX", tmp_dir());
	assert_non_null(mkdtemp(f->dir));
	f->db = hf_xasprintf("%s/store.db", f->dir);
	if (strcmp(f->backend, "mem") == 0) {
		f->url = hf_xstrdup("mem:");
	} else if (strcmp(f->backend, etcd_ns_backend) == 0) {
		etcd_reset(&shared_etcd);
		f->url = hf_xasprintf("%s?prefix=" NS_PREFIX, shared_etcd.url);
	} else if (is_etcd(f)) {
		etcd_reset(&shared_etcd);
		f->url = hf_xstrdup(shared_etcd.url);
	} else {
		f->url = hf_xasprintf("sqlite:%s", f->db);
	}
	assert_ok(NULL, hf_store_open(f->url, &f->s));
	assert_string_equal(hf_store_backend_name(f->s),
			    is_etcd(f) ? "etcd" : f->backend);
	assert_ok(f->s, hf_store_revision(f->s, &f->base));
	if (!is_etcd(f))
		assert_int_equal(f->base, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hf_store_close(f->s);
	etcd_stop(&f->own_etcd);
	free(f->tls.ca);
	free(f->tls.server_cert);
	free(f->tls.server_key);
	free(f->tls.client_cert);
	free(f->tls.client_key);
	free(f->tls.other_ca);
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

	assert_int_equal(rev_of(f->s), R(0));
	r1 = put_str(f->s, "/services/db/config/a", "hello");
	assert_int_equal(r1, R(1));
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
	assert_int_equal(l.items[1].mod_rev, R(5));
	assert_int_equal(l.items[1].create_rev, R(5));
	assert_int_equal(l.items[1].version, 1);
	assert_int_equal(l.rev, R((int64_t)HF_ARRAY_LEN(keys)));
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
	assert_int_equal(rev, R(1));
	assert_int_equal(rev_of(f->s), R(1));

	put_str(f->s, "/r/a", "2");
	assert_int_equal(put_str(f->s, "/r/a", "3"), R(3));
	assert_ok(f->s, hf_store_list(f->s, "/r/a", 0, &l));
	assert_int_equal(l.len, 1);
	assert_int_equal(l.items[0].create_rev, R(1));
	assert_int_equal(l.items[0].mod_rev, R(3));
	assert_int_equal(l.items[0].version, 3);
	hf_store_kvs_release(&l);

	/* Changing nothing creates no revision (etcd does the same). */
	hf_store_txn_delete(&t, "/r/none");
	hf_store_txn_delete_prefix(&t, "/none/");
	hf_store_txn_cmp_present(&t, "/r/a");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, R(3));
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev)); /* empty */
	assert_int_equal(rev, R(3));
	assert_int_equal(rev_of(f->s), R(3));

	/* A delete is a change; recreating starts a new incarnation. */
	assert_ok(f->s, hf_store_delete(f->s, "/r/a", &rev));
	assert_int_equal(rev, R(4));
	assert_absent(f->s, "/r/a");
	assert_int_equal(put_str(f->s, "/r/a", "new"), R(5));
	assert_ok(f->s, hf_store_list(f->s, "/r/a", 0, &l));
	assert_int_equal(l.items[0].create_rev, R(5));
	assert_int_equal(l.items[0].mod_rev, R(5));
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
	assert_int_equal(rev, R(1));
	hf_store_txn_release(&t);
	hf_store_txn_cmp_absent(&t, "/lock");
	hf_store_txn_puts(&t, "/lock", "second");
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_ECONFLICT);
	hf_store_txn_release(&t);
	assert_value(f->s, "/lock", "first", R(1));
	assert_int_equal(rev_of(f->s), R(1));

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
	assert_value(f->s, "/other", "x", R(2));
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
	assert_int_equal(rev_of(f->s), R(7));

	/* Two deletes that overlap, and a put elsewhere: one revision. */
	hf_store_txn_delete_prefix(&t, "/a/");
	hf_store_txn_delete(&t, "/a/x");
	hf_store_txn_delete(&t, "/b/y");
	hf_store_txn_puts(&t, "/c", "new");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, R(8));
	assert_keys(f->s, "/a", left, 3);
	assert_keys(f->s, "/b/", left + 3, 1);
	assert_value(f->s, "/c", "new", R(8));

	/* An empty prefix would wipe everything: refused. */
	hf_store_txn_delete_prefix(&t, "");
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_EINVAL);
	hf_store_txn_release(&t);
	assert_int_equal(rev_of(f->s), R(8));
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct hf_store_stats st;
	int64_t rev = -1;

	put_str(f->s, "/d", "1");
	assert_ok(f->s, hf_store_delete(f->s, "/d", &rev));
	assert_int_equal(rev, R(2));
	rev = -1;
	assert_rc(f->s, hf_store_delete(f->s, "/d", &rev), HF_ENOTFOUND);
	assert_int_equal(rev, -1);
	assert_contains(hf_store_last_error(f->s), "/d");
	assert_int_equal(rev_of(f->s), R(2));
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
	assert_int_equal(rev, R(2));

	assert_ok(f->s, hf_store_list(f->s, "/many/", 0, &l));
	assert_int_equal(l.len, n);
	for (size_t i = 0; i < l.len; i++) {
		snprintf(key, sizeof(key), "/many/%05zu", i);
		snprintf(value, sizeof(value), "value of %zu", i);
		assert_string_equal(l.items[i].key, key);
		assert_string_equal(l.items[i].value, value);
		assert_int_equal(l.items[i].mod_rev, R(2));
	}
	hf_store_kvs_release(&l);

	/* And away in one delete. */
	hf_store_txn_delete_prefix(&t, "/many/");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, R(3));
	assert_keys(f->s, "/many/", NULL, 0);
	assert_value(f->s, "/keep", "k", R(1));
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
		assert_value(f->s, "/x", "old", R(1));
		assert_int_equal(rev_of(f->s), R(1));
	}
	/* The longest key allowed works. */
	long_key[HF_STORE_KEY_MAX] = '\0';
	put_str(f->s, long_key, "ok");
	assert_value(f->s, long_key, "ok", R(2));
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
	assert_value(f->s, "/copy/a", "first", R(1));
	assert_value(f->s, "/copy/b", "other", R(1));
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
	assert_value(f->s, "/s", "1", R(1));                      /* get */
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
	assert_int_equal(rev_of(f->s), R(writes));
}

/* ------------------------------------------------------------------ */
/* Leases, leader election and fencing, for every backend               */

/*
 * A second server's handle on the fixture's store: a handle of its own on
 * etcd; for mem and sqlite, which one process owns, the same handle (two
 * contenders with two leases in one process).
 */
static struct hf_store *other_handle(struct fx *f)
{
	struct hf_store *s = NULL;

	if (!is_etcd(f))
		return f->s;
	assert_ok(NULL, hf_store_open(f->url, &s));
	return s;
}

static void close_other(struct fx *f, struct hf_store *s)
{
	if (s != f->s)
		hf_store_close(s);
}

static int64_t grant(struct hf_store *s, int ttl)
{
	int64_t lease = 0;

	assert_ok(s, hf_store_lease_grant(s, ttl, &lease));
	assert_true(lease > 0);
	return lease;
}

static void put_lease(struct hf_store *s, const char *key, const char *value,
		      int64_t lease)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;

	hf_store_txn_put_lease(&t, key, value, strlen(value), lease);
	assert_ok(s, hf_store_txn(s, &t, NULL));
	hf_store_txn_release(&t);
}

/*
 * Campaigns for "/leader" and checks the outcome and who leads; returns
 * the leader key's mod_rev (the winner's fencing token).
 */
static int64_t campaign(struct hf_store *s, const char *me, int64_t lease,
			bool want_won, const char *want_leader)
{
	bool won = !want_won;
	char *leader = NULL;
	int64_t token = -1;

	assert_ok(s, hf_store_campaign(s, "/leader", me, lease, &won, &leader,
				       &token));
	if (won != want_won || strcmp(leader, want_leader) != 0) {
		print_error("campaign of %s: got won=%d leader \"%s\", want "
			    "won=%d leader \"%s\"\n",
			    me, won, leader, want_won, want_leader);
		free(leader);
		fail();
	}
	free(leader);
	assert_true(token > 0);
	return token;
}

/* A leader's write, fenced by its token: what the server does. */
static int fenced_put(struct hf_store *s, int64_t token, const char *key,
		      const char *value)
{
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int rc;

	hf_store_txn_cmp_mod_rev(&t, "/leader", token);
	hf_store_txn_puts(&t, key, value);
	rc = hf_store_txn(s, &t, NULL);
	hf_store_txn_release(&t);
	return rc;
}

static void test_lease_keys(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	int64_t l1, l2, rev = -1, none = 0;
	int ttl = -1;

	l1 = grant(f->s, 30);
	l2 = grant(f->s, 30);
	assert_true(l1 != l2);
	assert_ok(f->s, hf_store_lease_keepalive(f->s, l1, &ttl));
	assert_in_range(ttl, 1, 30);
	assert_ok(f->s, hf_store_lease_keepalive(f->s, l1, NULL));

	hf_store_txn_put_lease(&t, "/l/a", "a", 1, l1);
	hf_store_txn_put_lease(&t, "/l/c", "c", 1, l1);
	hf_store_txn_put_lease(&t, "/l/d", "d", 1, l2);
	hf_store_txn_put_lease(&t, "/l/e", "e", 1, 0); /* no lease */
	hf_store_txn_puts(&t, "/l/b", "b");
	assert_ok(f->s, hf_store_txn(f->s, &t, &rev));
	hf_store_txn_release(&t);
	assert_int_equal(rev, R(1));
	/* A put without the lease detaches the key from it. */
	assert_int_equal(put_str(f->s, "/l/c", "c2"), R(2));

	/* Revoking deletes the lease's keys, in one revision, and no other. */
	assert_ok(f->s, hf_store_lease_revoke(f->s, l1));
	assert_int_equal(rev_of(f->s), R(3));
	assert_absent(f->s, "/l/a");
	assert_value(f->s, "/l/c", "c2", R(2));
	assert_value(f->s, "/l/b", "b", R(1));
	assert_value(f->s, "/l/d", "d", R(1));
	assert_value(f->s, "/l/e", "e", R(1));

	/* Gone for good. */
	assert_rc(f->s, hf_store_lease_keepalive(f->s, l1, &ttl), HF_ENOTFOUND);
	assert_contains(hf_store_last_error(f->s), "expired or was revoked");
	assert_rc(f->s, hf_store_lease_revoke(f->s, l1), HF_ENOTFOUND);
	/* A put with a gone lease fails whole. */
	hf_store_txn_puts(&t, "/l/f", "f");
	hf_store_txn_put_lease(&t, "/l/g", "g", 1, l1);
	assert_rc(f->s, hf_store_txn(f->s, &t, &rev), HF_ENOTFOUND);
	hf_store_txn_release(&t);
	assert_absent(f->s, "/l/f");
	assert_absent(f->s, "/l/g");
	assert_int_equal(rev_of(f->s), R(3));

	/* Deleting a leased key detaches it; revoking changes nothing then. */
	assert_ok(f->s, hf_store_delete(f->s, "/l/d", NULL));
	put_str(f->s, "/l/d", "plain");
	assert_ok(f->s, hf_store_lease_revoke(f->s, l2));
	assert_value(f->s, "/l/d", "plain", R(5));
	assert_int_equal(rev_of(f->s), R(5));

	/* Bad arguments. */
	assert_rc(f->s, hf_store_lease_grant(f->s, 0, &none), HF_EINVAL);
	assert_int_equal(none, 0);
	assert_rc(f->s, hf_store_lease_keepalive(f->s, 0, &ttl), HF_EINVAL);
	assert_rc(f->s, hf_store_lease_revoke(f->s, -1), HF_EINVAL);
	hf_store_txn_put_lease(&t, "/l/h", "h", 1, -5);
	assert_rc(f->s, hf_store_txn(f->s, &t, NULL), HF_EINVAL);
	hf_store_txn_release(&t);
}

static void test_lease_expiry(void **state)
{
	struct fx *f = *state;
	int64_t lease = grant(f->s, 2), start;
	char *value = NULL;
	int ttl = 0;

	put_lease(f->s, "/e/k", "v", lease);
	/* Kept alive, it outlives its TTL. */
	for (start = now_ms(); now_ms() - start < 3500; sleep_ms(500)) {
		assert_ok(f->s, hf_store_lease_keepalive(f->s, lease, &ttl));
		assert_in_range(ttl, 1, 2);
	}
	assert_value(f->s, "/e/k", "v", -1);
	/* Left alone, it expires and takes its key along. */
	for (start = now_ms();
	     hf_store_get(f->s, "/e/k", &value, NULL, NULL) == 0;
	     sleep_ms(100)) {
		free(value);
		value = NULL;
		if (now_ms() - start > 15000) {
			print_error("/e/k still there 15 s after its lease of "
				    "2 s was last renewed\n");
			fail();
		}
	}
	assert_absent(f->s, "/e/k");
	assert_rc(f->s, hf_store_lease_keepalive(f->s, lease, &ttl),
		  HF_ENOTFOUND);
}

static void test_campaign_fencing(void **state)
{
	struct fx *f = *state;
	struct hf_store *a = f->s, *b = other_handle(f);
	int64_t la = grant(a, 30), lb = grant(b, 30), ta, tb, rev;
	bool won = true;

	/* A wins; B loses and learns who leads; A again is still A. */
	ta = campaign(a, "server-a", la, true, "server-a");
	assert_int_equal(ta, R(1));
	assert_int_equal(campaign(b, "server-b", lb, false, "server-a"), ta);
	assert_int_equal(campaign(a, "server-a", la, true, "server-a"), ta);
	assert_int_equal(rev_of(a), R(1));

	/* Only the leader's fenced writes go through. */
	assert_ok(a, fenced_put(a, ta, "/data", "from a"));
	assert_rc(b, fenced_put(b, 0, "/data", "from b"), HF_ECONFLICT);
	assert_rc(b, fenced_put(b, ta - 1, "/data", "from b"), HF_ECONFLICT);
	assert_contains(hf_store_last_error(b), "/leader");
	assert_value(a, "/data", "from a", R(2));

	/* A steps down (revokes its lease): the key goes, B wins. */
	assert_ok(a, hf_store_lease_revoke(a, la));
	assert_rc(a, hf_store_get(a, "/leader", NULL, NULL, NULL),
		  HF_ENOTFOUND);
	tb = campaign(b, "server-b", lb, true, "server-b");
	assert_true(tb > ta);
	/* A deposed leader's writes fail, whatever it believes. */
	rev = rev_of(a);
	assert_rc(a, fenced_put(a, ta, "/data", "stale a"), HF_ECONFLICT);
	assert_contains(hf_store_last_error(a), "/leader");
	assert_int_equal(rev_of(a), rev);
	assert_ok(b, fenced_put(b, tb, "/data", "from b"));
	assert_value(a, "/data", "from b", rev + 1);
	/* Its lease is gone: a campaign with it loses to B, not an error. */
	assert_int_equal(campaign(a, "server-a", la, false, "server-b"), tb);
	/* With the key absent, a gone lease is the error. */
	assert_ok(b, hf_store_lease_revoke(b, lb));
	assert_rc(a, hf_store_campaign(a, "/leader", "server-a", la, &won,
				       NULL, NULL),
		  HF_ENOTFOUND);
	assert_rc(a, hf_store_campaign(a, "", "x", la, &won, NULL, NULL),
		  HF_EINVAL);
	assert_rc(a, hf_store_campaign(a, "/leader", "x", 0, &won, NULL, NULL),
		  HF_EINVAL);
	close_other(f, b);
}

/*
 * The failover the fencing is for: the leader stops renewing (hung,
 * partitioned), its lease expires, another server takes over, and the old
 * leader's writes - still fenced with its old token - fail.
 */
static void test_campaign_lease_expiry(void **state)
{
	struct fx *f = *state;
	struct hf_store *a = f->s, *b = other_handle(f);
	int64_t la = grant(a, 2), lb = grant(b, 2), ta, tb = 0, start;
	bool won = false;
	char *leader = NULL;

	ta = campaign(a, "server-a", la, true, "server-a");
	campaign(b, "server-b", lb, false, "server-a");
	assert_ok(a, fenced_put(a, ta, "/data", "from a"));
	/* A goes quiet; B keeps its own lease and campaigns until it wins. */
	for (start = now_ms(); !won; sleep_ms(250)) {
		if (now_ms() - start > 15000) {
			print_error("B did not win 15 s after A's lease of 2 s "
				    "was last renewed\n");
			fail();
		}
		assert_ok(b, hf_store_lease_keepalive(b, lb, NULL));
		free(leader);
		leader = NULL;
		assert_ok(b, hf_store_campaign(b, "/leader", "server-b", lb,
					       &won, &leader, &tb));
	}
	assert_string_equal(leader, "server-b");
	free(leader);
	assert_true(tb > ta);
	/* A, unaware, writes with its old token: refused, nothing applied. */
	assert_rc(a, fenced_put(a, ta, "/data", "stale a"), HF_ECONFLICT);
	assert_value(b, "/data", "from a", -1);
	assert_ok(b, fenced_put(b, tb, "/data", "from b"));
	/* A's keep-alive tells it it was deposed. */
	assert_rc(a, hf_store_lease_keepalive(a, la, NULL), HF_ENOTFOUND);
	assert_ok(b, hf_store_lease_revoke(b, lb));
	close_other(f, b);
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
	/* TLS options: the store file is a file that exists, the directory
	 * one that is not a file; no etcd is reached in any of these. */
	char *cert_alone = hf_xasprintf("etcds://h:1?cert=%s", f->db);
	char *key_alone = hf_xasprintf("etcds://h:1?key=%s", f->db);
	char *missing = hf_xasprintf("etcds://h:1?cacert=%s/none.pem",
				     f->dir);
	char *missing_key = hf_xasprintf("etcds://h:1?cert=%s&key=%s/k.pem",
					 f->db, f->dir);
	char *dir_ca = hf_xasprintf("etcds://h:1?cacert=%s", f->dir);
	char *plain_ca = hf_xasprintf("etcd://h:1?cacert=%s", f->db);
	char *plain_cert = hf_xasprintf("etcd://h:1?cert=%s&key=%s", f->db,
					f->db);
	char *long_prefix = hf_xmalloc(300);
	char *long_url;
	const struct {
		const char *url;
		int want;
		const char *backend;
		const char *says; /* part of the error, or NULL */
	} cases[] = {
		{"mem:", 0, "mem", NULL},
		{abs3, 0, "sqlite", NULL},
		{plain, 0, "sqlite", NULL},
		{colon, 0, "sqlite", NULL},
		{"", HF_EINVAL, NULL, NULL},
		{"mem:x", HF_EINVAL, NULL, NULL},
		{"sqlite:", HF_EINVAL, NULL, NULL},
		{"sqlite://host/x.db", HF_EINVAL, NULL, NULL},
		{"etcd:", HF_EINVAL, NULL, NULL},
		{"etcd:127.0.0.1:2379", HF_EINVAL, NULL, "etcd://HOST:PORT"},
		{"etcd://", HF_EINVAL, NULL, NULL},
		{"etcd://?timeout_ms=100", HF_EINVAL, NULL, NULL},
		{"etcd://h:0", HF_EINVAL, NULL, NULL},
		{"etcd://h:65536", HF_EINVAL, NULL, NULL},
		{"etcd://h:x", HF_EINVAL, NULL, NULL},
		{"etcd://:2379", HF_EINVAL, NULL, NULL},
		{"etcd://h:1:2", HF_EINVAL, NULL, NULL},
		{"etcd://h:2379/v3", HF_EINVAL, NULL, NULL},
		{"etcd://user@h:2379", HF_EINVAL, NULL, NULL},
		{"etcd://a:1,,b:2", HF_EINVAL, NULL, NULL},
		{"etcd://a:1,", HF_EINVAL, NULL, NULL},
		{"etcd://[::1", HF_EINVAL, NULL, NULL},
		{"etcd://[::1]x", HF_EINVAL, NULL, NULL},
		{"etcd://h:1?bogus=1", HF_EINVAL, NULL, "unknown etcd store "
						       "option 'bogus=1'"},
		{"etcd://h:1?timeout_ms=5", HF_EINVAL, NULL, NULL},
		{"etcd://h:1?timeout_ms=", HF_EINVAL, NULL, NULL},
		{"etcd://h:1?timeout_ms", HF_EINVAL, NULL, NULL},
		{"etcd://h:1?timeout_ms=100&timeout_ms=200", HF_EINVAL, NULL,
		 "timeout_ms= is given twice"},
		/* etcds: same URL, TLS options, and the same checks. */
		{"etcds:", HF_EINVAL, NULL, "etcds://HOST:PORT"},
		{"etcds://", HF_EINVAL, NULL, "names no endpoint"},
		{"etcds://h:0", HF_EINVAL, NULL, "h:0"},
		{"etcds://h:1?bogus=1", HF_EINVAL, NULL, "cacert=FILE"},
		{cert_alone, HF_EINVAL, NULL, "cert= is given without key="},
		{key_alone, HF_EINVAL, NULL, "key= is given without cert="},
		{missing, HF_ENOTFOUND, NULL, "none.pem: cannot read the file: "
					      "No such file"},
		{missing_key, HF_ENOTFOUND, NULL, "option key="},
		{dir_ca, HF_EINVAL, NULL, "not a file"},
		{"etcds://h:1?cacert=", HF_EINVAL, NULL, "cacert= names no "
							 "file"},
		{"etcds://h:1?cert=%zz&key=k", HF_EINVAL, NULL,
		 "not followed by two hex digits"},
		{"etcds://h:1?cacert=/a%00b", HF_EINVAL, NULL, "NUL byte"},
		{plain_ca, HF_EINVAL, NULL, "is for etcds:// (etcd over TLS) "
					    "only"},
		{plain_cert, HF_EINVAL, NULL, "'cert="},
		{"etcd://h:1?key=/k", HF_EINVAL, NULL, "'key=/k' is for "
						       "etcds://"},
		/* The namespace. */
		{"etcd://h:1?prefix=", HF_EINVAL, NULL, "prefix= is empty"},
		{"etcds://h:1?prefix=", HF_EINVAL, NULL, "prefix= is empty"},
		{"etcd://h:1?prefix=hf/", HF_EINVAL, NULL, "'hf/' does not "
							   "start with '/'"},
		{"etcd://h:1?prefix=/hf%00/", HF_EINVAL, NULL, "NUL byte"},
		{"etcd://h:1?prefix=/hf%", HF_EINVAL, NULL, "two hex digits"},
		{"etcd://h:1?prefix=/a&prefix=/b", HF_EINVAL, NULL,
		 "prefix= is given twice"},
		{NULL /* long_url */, HF_ETOOBIG, NULL, "longer than 256 bytes"},
		{"redis://x", HF_EINVAL, NULL, "etcds://"},
	};

	memset(long_prefix, 'p', 299);
	long_prefix[0] = '/';
	long_prefix[299] = '\0';
	long_url = hf_xasprintf("etcd://h:1?prefix=%s", long_prefix);
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		const char *url = cases[i].url ? cases[i].url : long_url;
		struct hf_store *s = NULL;

		print_message("    url: '%s'\n", url);
		assert_rc(NULL, hf_store_open(url, &s), cases[i].want);
		if (cases[i].want) {
			assert_null(s);
			assert_true(*hf_store_last_error(NULL) != '\0');
			if (cases[i].says)
				assert_contains(hf_store_last_error(NULL),
						cases[i].says);
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
	free(cert_alone);
	free(key_alone);
	free(missing);
	free(missing_key);
	free(dir_ca);
	free(plain_ca);
	free(plain_cert);
	free(long_prefix);
	free(long_url);
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
/* etcd backend                                                         */

/* A local port that accepts connections but never answers: a hung host. */
static int silent_listener(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void test_etcd_unreachable(void **state)
{
	struct hf_store *s = (struct hf_store *)0x1;
	int dead1, dead2, silent, fd = silent_listener(&silent);
	char *url, *name1, *name2;

	free_ports(&dead1, &dead2);
	name1 = hf_xasprintf("127.0.0.1:%d", dead1);
	name2 = hf_xasprintf("127.0.0.1:%d", dead2);

	/* Nothing listens: refused at open, saying where and why. */
	url = hf_xasprintf("etcd://%s", name1);
	assert_rc(NULL, hf_store_open(url, &s), HF_EUNAVAIL);
	assert_null(s);
	print_message("    %s\n", hf_store_last_error(NULL));
	assert_contains(hf_store_last_error(NULL), "no etcd endpoint");
	assert_contains(hf_store_last_error(NULL), name1);
	assert_contains(hf_store_last_error(NULL), "Connection refused");
	free(url);

	/* Every endpoint tried, every one named. */
	url = hf_xasprintf("etcd://%s,%s", name1, name2);
	assert_rc(NULL, hf_store_open(url, &s), HF_EUNAVAIL);
	assert_contains(hf_store_last_error(NULL), name1);
	assert_contains(hf_store_last_error(NULL), name2);
	free(url);

	/* Connected but never answered: the request timeout. */
	url = hf_xasprintf("etcd://127.0.0.1:%d?timeout_ms=300", silent);
	assert_rc(NULL, hf_store_open(url, &s), HF_EUNAVAIL);
	print_message("    %s\n", hf_store_last_error(NULL));
	assert_contains(hf_store_last_error(NULL), "no answer within 300 ms");
	free(url);
	close(fd);
	free(name1);
	free(name2);
}

static void test_etcd_failover(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = NULL;
	struct hf_store_kvs l;
	int dead, unused, silent, fd = silent_listener(&silent);
	int64_t rev;
	char *url;

	/* The first of three endpoints is dead: every call still works. */
	free_ports(&dead, &unused);
	url = hf_xasprintf("etcd://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d",
			   dead, shared_etcd.port, shared_etcd.port);
	assert_ok(NULL, hf_store_open(url, &s));
	free(url);
	rev = put_str(s, "/fo/a", "1");
	assert_int_equal(rev, R(1));
	assert_value(s, "/fo/a", "1", rev);
	assert_value(f->s, "/fo/a", "1", rev);
	assert_ok(s, hf_store_list(s, "/fo/", 0, &l));
	assert_int_equal(l.len, 1);
	assert_int_equal(l.rev, rev);
	hf_store_kvs_release(&l);
	assert_ok(s, hf_store_delete(s, "/fo/a", NULL));
	assert_string_equal(hf_store_last_error(s), "");
	hf_store_close(s);

	/* A hung first endpoint costs one timeout, then the next serves. */
	url = hf_xasprintf("etcd://127.0.0.1:%d,127.0.0.1:%d?timeout_ms=500",
			   silent, shared_etcd.port);
	assert_ok(NULL, hf_store_open(url, &s));
	free(url);
	assert_int_equal(put_str(s, "/fo/b", "2"), R(3));
	assert_value(f->s, "/fo/b", "2", R(3));
	hf_store_close(s);
	close(fd);
}

/*
 * A fake etcd member that answers the first request (a range, with a
 * header) and then goes quiet without closing: a member cut off from its
 * quorum. Runs in a thread, so it reports instead of asserting.
 */
struct quiet_member {
	int listen_fd;
	int answered;
	char failure[128];
};

/* Reads one HTTP request (headers and Content-Length body); 0 at EOF. */
static int read_request(int fd)
{
	char buf[8192];
	size_t len = 0;
	long body = -1;

	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		char *end, *cl;

		if (n <= 0)
			return 0;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "content-length:");
		body = cl ? strtol(cl + 15, NULL, 10) : 0;
		if ((long)(len - (size_t)(end + 4 - buf)) >= body)
			return 1;
		if (len == sizeof(buf) - 1)
			return 1; /* long enough: we only need to know it came */
	}
}

static void *quiet_member_main(void *arg)
{
	struct quiet_member *q = arg;
	static const char answer[] = "{\"header\":{\"revision\":\"1\"}}";
	char reply[256];
	int fd = accept(q->listen_fd, NULL, NULL), n;

	if (fd < 0) {
		snprintf(q->failure, sizeof(q->failure), "accept: %s",
			 strerror(errno));
		return NULL;
	}
	n = snprintf(reply, sizeof(reply),
		     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     sizeof(answer) - 1, answer);
	if (read_request(fd) && write(fd, reply, (size_t)n) == n)
		q->answered++;
	/* Then read whatever comes and never answer, until the client
	 * gives up and closes. */
	while (read_request(fd))
		;
	close(fd);
	return NULL;
}

/*
 * A transaction sent to a member that then does not answer may have been
 * applied: it is not resent to another endpoint, and says its outcome is
 * unknown; the next request starts with the next endpoint.
 */
static void test_etcd_txn_outcome_unknown(void **state)
{
	struct fx *f = *state;
	struct quiet_member q = {0};
	struct hf_store *s = NULL;
	pthread_t tid;
	int port;
	char *url;

	q.listen_fd = silent_listener(&port);
	assert_int_equal(pthread_create(&tid, NULL, quiet_member_main, &q), 0);
	url = hf_xasprintf("etcd://127.0.0.1:%d,127.0.0.1:%d?timeout_ms=400",
			   port, shared_etcd.port);
	/* The quiet member answers the open's read: it is the one in use. */
	assert_ok(NULL, hf_store_open(url, &s));
	free(url);
	assert_rc(s, hf_store_put(s, "/unknown", "1", 1, NULL), HF_EUNAVAIL);
	print_message("    %s\n", hf_store_last_error(s));
	assert_contains(hf_store_last_error(s), "whether it was applied is "
						"unknown");
	/* Not resent: the real etcd never saw it. */
	assert_absent(f->s, "/unknown");
	assert_int_equal(rev_of(f->s), R(0));
	/* The next request goes to the next endpoint, which answers. */
	assert_absent(s, "/unknown");
	assert_int_equal(put_str(s, "/unknown", "2"), R(1));
	hf_store_close(s);
	pthread_join(tid, NULL);
	close(q.listen_fd);
	assert_string_equal(q.failure, "");
	assert_int_equal(q.answered, 1);
}

/*
 * etcd with its default limits, which are lower than the embedded store's:
 * what goes over them is HF_ETOOBIG naming the flag, and nothing applies.
 * Then etcd goes away under the open handle.
 */
static void test_etcd_default_limits(void **state)
{
	struct fx *f = *state;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_store *s = NULL;
	struct hf_store_kvs l;
	char key[32], *name, *big;
	int64_t rev, lease = 0;

	assert_int_equal(etcd_start(&f->own_etcd, NULL), 0);
	name = hf_xasprintf("127.0.0.1:%d", f->own_etcd.port);
	assert_ok(NULL, hf_store_open(f->own_etcd.url, &s));
	rev = rev_of(s);

	/* 128 operations per transaction, by default. */
	for (int i = 0; i < 129; i++) {
		snprintf(key, sizeof(key), "/ops/%03d", i);
		hf_store_txn_puts(&t, key, "x");
	}
	assert_rc(s, hf_store_txn(s, &t, NULL), HF_ETOOBIG);
	print_message("    %s\n", hf_store_last_error(s));
	assert_contains(hf_store_last_error(s), "--max-txn-ops");
	assert_contains(hf_store_last_error(s), "129 operation");
	hf_store_txn_release(&t);
	assert_ok(s, hf_store_list(s, "/ops/", 0, &l));
	assert_int_equal(l.len, 0);
	hf_store_kvs_release(&l);
	assert_int_equal(rev_of(s), rev);
	for (int i = 0; i < 128; i++) {
		snprintf(key, sizeof(key), "/ops/%03d", i);
		hf_store_txn_puts(&t, key, "x");
	}
	assert_ok(s, hf_store_txn(s, &t, NULL));
	hf_store_txn_release(&t);

	/* 1.5 MiB per request: a value of HF_STORE_VALUE_MAX does not fit. */
	big = hf_xmalloc(HF_STORE_VALUE_MAX);
	memset(big, 'b', HF_STORE_VALUE_MAX);
	assert_rc(s, hf_store_put(s, "/big", big, HF_STORE_VALUE_MAX, NULL),
		  HF_ETOOBIG);
	print_message("    %s\n", hf_store_last_error(s));
	assert_contains(hf_store_last_error(s), "--max-request-bytes");
	assert_absent(s, "/big");
	assert_ok(s, hf_store_put(s, "/big", big, 1024 * 1024, NULL));
	free(big);

	/* etcd goes away: every call is HF_EUNAVAIL and says where. */
	etcd_stop(&f->own_etcd);
	assert_rc(s, hf_store_get(s, "/big", NULL, NULL, NULL), HF_EUNAVAIL);
	print_message("    %s\n", hf_store_last_error(s));
	assert_contains(hf_store_last_error(s), name);
	assert_rc(s, hf_store_put(s, "/x", "1", 1, NULL), HF_EUNAVAIL);
	assert_contains(hf_store_last_error(s), name);
	assert_rc(s, hf_store_revision(s, &rev), HF_EUNAVAIL);
	assert_rc(s, hf_store_lease_grant(s, 5, &lease), HF_EUNAVAIL);
	assert_int_equal(lease, 0);
	hf_store_close(s);
	free(name);
}

/* Keys and values that are not text survive the base64 round trip. */
static void test_etcd_bytes(void **state)
{
	struct fx *f = *state;
	char value[256];
	char *got = NULL;
	size_t len = 0;

	for (int i = 0; i < 256; i++)
		value[i] = (char)i;
	for (size_t n = 0; n <= 4; n++) {
		char key[16];

		snprintf(key, sizeof(key), "/b/\x01\x7f\xfe%zu", n);
		assert_ok(f->s, hf_store_put(f->s, key, value + 250, n, NULL));
		assert_ok(f->s, hf_store_get(f->s, key, &got, &len, NULL));
		assert_int_equal(len, n);
		assert_memory_equal(got, value + 250, n);
		assert_int_equal(got[n], '\0');
		free(got);
	}
	assert_ok(f->s, hf_store_put(f->s, "/b/all", value, sizeof(value),
				     NULL));
	assert_ok(f->s, hf_store_get(f->s, "/b/all", &got, &len, NULL));
	assert_int_equal(len, sizeof(value));
	assert_memory_equal(got, value, sizeof(value));
	free(got);
}

/*
 * Two namespaces on one etcd, and a handle on the whole keyspace: each
 * namespace sees its own keys only, under the names holdfast gave them,
 * and the whole keyspace sees them under prefix + name. One prefix ends
 * with '/', the other does not; keys equal to a prefix itself, or just
 * outside it, are another client's and never show.
 */
static void test_etcd_prefix_isolation(void **state)
{
	struct fx *f = *state;
	struct hf_store *a = NULL, *a2 = NULL, *b = NULL;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	struct hf_store_kvs l;
	char *url_a = hf_xasprintf("%s?prefix=/hf-a/", f->url);
	char *url_b = hf_xasprintf("%s?timeout_ms=3000&prefix=/hf-b", f->url);
	const char *in_a[] = {"/k", "/x/1", "/x/2"};
	const char *in_b[] = {"/k", "/x/1"};
	const char *a_after[] = {"/k", "/k2", "/leader"};
	const char *whole[] = {"/hf-", "/hf-a", "/hf-a/", "/hf-a//k",
			       "/hf-a//x/1", "/hf-a//x/2", "/hf-a0", "/hf-b",
			       "/hf-b/k", "/hf-b/x/1", "/hf-c", "/k"};
	int64_t la, lb, ta, tb;
	bool won = false;
	char *leader = NULL;

	assert_ok(NULL, hf_store_open(url_a, &a));
	assert_ok(NULL, hf_store_open(url_a, &a2));
	assert_ok(NULL, hf_store_open(url_b, &b));
	assert_string_equal(hf_store_backend_name(a), "etcd");

	/* Keys of other clients, around and at the namespaces' edges. */
	for (size_t i = 0; i < HF_ARRAY_LEN(whole); i++)
		if (!strstr(whole[i], "/k") && !strstr(whole[i], "/x/"))
			put_str(f->s, whole[i], "other");
	put_str(f->s, "/k", "whole");
	put_str(a, "/k", "in a");
	put_str(a, "/x/1", "a1");
	put_str(a, "/x/2", "a2");
	put_str(b, "/k", "in b");
	put_str(b, "/x/1", "b1");

	assert_value(a, "/k", "in a", -1);
	assert_value(b, "/k", "in b", -1);
	assert_value(f->s, "/k", "whole", -1);
	assert_value(f->s, "/hf-a//k", "in a", -1);
	assert_value(f->s, "/hf-b/k", "in b", -1);
	assert_absent(a, "/hf-a//k");
	assert_absent(b, "/x/2");
	/* A list of everything: the namespace, nothing around it. */
	assert_keys(a, "", in_a, HF_ARRAY_LEN(in_a));
	assert_keys(b, "", in_b, HF_ARRAY_LEN(in_b));
	assert_keys(a, "/x/", in_a + 1, 2);
	assert_keys(f->s, "", whole, HF_ARRAY_LEN(whole));
	/* A limit counts namespace keys only, and revisions are etcd's. */
	assert_ok(a, hf_store_list(a, "", 2, &l));
	assert_int_equal(l.len, 2);
	assert_true(l.more);
	assert_string_equal(l.items[1].key, "/x/1");
	assert_string_equal(l.items[1].value, "a1");
	assert_int_equal(l.rev, rev_of(f->s));
	hf_store_kvs_release(&l);

	/* Compares see the namespace's keys; a conflict names the key as
	 * holdfast knows it. */
	hf_store_txn_cmp_absent(&t, "/k");
	hf_store_txn_puts(&t, "/k2", "no");
	assert_rc(a, hf_store_txn(a, &t, NULL), HF_ECONFLICT);
	assert_contains(hf_store_last_error(a), "'/k'");
	assert_true(strstr(hf_store_last_error(a), "hf-a") == NULL);
	hf_store_txn_release(&t);
	hf_store_txn_cmp_absent(&t, "/k2");
	hf_store_txn_cmp_present(&t, "/k");
	hf_store_txn_puts(&t, "/k2", "yes");
	hf_store_txn_delete_prefix(&t, "/x/");
	assert_ok(a, hf_store_txn(a, &t, NULL));
	hf_store_txn_release(&t);
	assert_value(f->s, "/hf-a//k2", "yes", -1);
	assert_absent(f->s, "/hf-a//x/1");
	/* b's "/x/" and the whole keyspace's keys are untouched. */
	assert_keys(b, "", in_b, HF_ARRAY_LEN(in_b));
	assert_value(f->s, "/hf-a/", "other", -1);
	assert_ok(b, hf_store_delete(b, "/k", NULL));
	assert_value(a, "/k", "in a", -1);
	assert_value(f->s, "/k", "whole", -1);

	/* Campaigns: one leader per namespace, under the same key. */
	la = grant(a, 30);
	lb = grant(b, 30);
	ta = campaign(a, "server-a", la, true, "server-a");
	tb = campaign(b, "server-b", lb, true, "server-b");
	assert_true(tb > ta);
	assert_value(f->s, "/hf-a//leader", "server-a", ta);
	assert_value(f->s, "/hf-b/leader", "server-b", tb);
	assert_absent(f->s, "/leader");
	/* A second server in a loses to the first, and learns its name. */
	assert_ok(a2, hf_store_campaign(a2, "/leader", "server-a2",
					grant(a2, 30), &won, &leader, NULL));
	assert_false(won);
	assert_string_equal(leader, "server-a");
	free(leader);
	assert_ok(a, fenced_put(a, ta, "/k", "fenced"));
	assert_rc(b, fenced_put(b, ta, "/k", "wrong token"), HF_ECONFLICT);
	assert_keys(a, "", a_after, HF_ARRAY_LEN(a_after));
	assert_ok(a, hf_store_lease_revoke(a, la));
	assert_absent(a, "/leader");
	assert_value(b, "/leader", "server-b", tb);

	hf_store_close(a);
	hf_store_close(a2);
	hf_store_close(b);
	free(url_a);
	free(url_b);
}

/* ------------------------------------------------------------------ */
/* etcd over TLS                                                        */

/*
 * Runs a command (argv[0] found in PATH) in dir, with its output in
 * dir/cmd.log; fails the test, printing the command and its output,
 * unless it exits 0.
 */
static void run_in(const char *dir, const char *const *argv)
{
	char *log = hf_xasprintf("%s/cmd.log", dir);
	char *out = NULL;
	size_t len = 0;
	int status = -1;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int null = open("/dev/null", O_RDONLY);

		if (fd < 0 || null < 0 || chdir(dir) < 0 || dup2(null, 0) < 0 ||
		    dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s (scripts/setup.sh installs it)\n",
			argv[0], strerror(errno));
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("command failed (status %#x):", status);
		for (const char *const *a = argv; *a; a++)
			print_error(" %s", *a);
		if (hf_read_file(log, 1024 * 1024, &out, &len) == 0)
			print_error("\n%s\n", out);
		free(out);
		fail();
	}
	free(log);
}

/* The extensions of the test certificates, for openssl. */
static const char tls_cnf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"prompt = no\n"
	"[dn]\n"
	"CN = holdfast test\n"
	"[ca_ext]\n"
	"basicConstraints = critical,CA:TRUE\n"
	"keyUsage = critical,keyCertSign,cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	/* etcd's gateway connects to etcd itself with the server
	 * certificate as a client certificate: it needs clientAuth too. */
	"[server_ext]\n"
	"basicConstraints = CA:FALSE\n"
	"keyUsage = critical,digitalSignature,keyEncipherment\n"
	"extendedKeyUsage = serverAuth,clientAuth\n"
	"subjectAltName = IP:127.0.0.1\n"
	"[client_ext]\n"
	"basicConstraints = CA:FALSE\n"
	"keyUsage = critical,digitalSignature,keyEncipherment\n"
	"extendedKeyUsage = clientAuth\n";

/* Makes a key and a certificate signed by ca.crt, with the extensions. */
static void make_cert(const char *dir, const char *name, const char *cn,
		      const char *ext)
{
	char *key = hf_xasprintf("%s.key", name);
	char *csr = hf_xasprintf("%s.csr", name);
	char *crt = hf_xasprintf("%s.crt", name);
	char *subj = hf_xasprintf("/CN=%s", cn);
	const char *req[] = {
		"openssl", "req", "-new", "-config", "tls.cnf", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", key, "-out", csr, "-subj", subj, NULL,
	};
	const char *sign[] = {
		"openssl", "x509", "-req", "-in", csr, "-CA", "ca.crt",
		"-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out",
		crt, "-extfile", "tls.cnf", "-extensions", ext, NULL,
	};

	run_in(dir, req);
	run_in(dir, sign);
	free(key);
	free(csr);
	free(crt);
	free(subj);
}

/*
 * Makes, in dir, a CA, a server certificate for 127.0.0.1 and a client
 * certificate it signed, and another CA, with the openssl tool.
 */
static void make_tls_files(const char *dir, struct etcd_tls *tls)
{
	char *cnf = hf_xasprintf("%s/tls.cnf", dir);
	FILE *fp = fopen(cnf, "w");
	const char *ca[] = {
		"openssl", "req", "-x509", "-config", "tls.cnf", "-extensions",
		"ca_ext", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
		"-out", "ca.crt", "-days", "2", "-subj",
		"/CN=holdfast test CA", NULL,
	};
	const char *other[] = {
		"openssl", "req", "-x509", "-config", "tls.cnf", "-extensions",
		"ca_ext", "-newkey", "ec", "-pkeyopt",
		"ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
		"other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj",
		"/CN=another CA", NULL,
	};

	assert_non_null(fp);
	assert_int_equal(fputs(tls_cnf, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	run_in(dir, ca);
	run_in(dir, other);
	make_cert(dir, "server", "127.0.0.1", "server_ext");
	make_cert(dir, "client", "holdfast", "client_ext");
	tls->ca = hf_xasprintf("%s/ca.crt", dir);
	tls->server_cert = hf_xasprintf("%s/server.crt", dir);
	tls->server_key = hf_xasprintf("%s/server.key", dir);
	tls->client_cert = hf_xasprintf("%s/client.crt", dir);
	tls->client_key = hf_xasprintf("%s/client.key", dir);
	tls->other_ca = hf_xasprintf("%s/other-ca.crt", dir);
	free(cnf);
}

/* Asserts that url cannot be opened, with want and a sentence saying. */
static void assert_open_fails(const char *url, int want, const char *says)
{
	struct hf_store *s = NULL;

	print_message("    %s\n", url);
	assert_rc(NULL, hf_store_open(url, &s), want);
	assert_null(s);
	print_message("      %s\n", hf_store_last_error(NULL));
	assert_contains(hf_store_last_error(NULL), says);
}

/*
 * etcds:// against an etcd that serves only TLS and wants client
 * certificates: with the CA, a certificate and its key every call works;
 * without the client certificate, with another CA, with the system's CAs,
 * with a host name the certificate does not name, or over plain HTTP, the
 * open fails saying why. No option turns the checks off.
 */
static void test_etcd_tls(void **state)
{
	struct fx *f = *state;
	struct etcd_tls *tls = &f->tls;
	struct hf_store *s = NULL, *ns = NULL;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	const char *keys[] = {"/tls/a", "/tls/b"};
	char *base, *url, *name;
	int64_t rev, lease, token;
	int ttl = 0;

	make_tls_files(f->dir, tls);
	assert_int_equal(etcd_start_tls(&f->own_etcd, NULL, tls), 0);
	name = hf_xasprintf("127.0.0.1:%d", f->own_etcd.port);
	base = hf_xasprintf("etcds://%s", name);

	/* The right CA and a client certificate: the whole interface. */
	url = hf_xasprintf("%s?cacert=%s&cert=%s&key=%s&timeout_ms=3000", base,
			   tls->ca, tls->client_cert, tls->client_key);
	assert_ok(NULL, hf_store_open(url, &s));
	assert_string_equal(hf_store_backend_name(s), "etcd");
	rev = put_str(s, "/tls/a", "1");
	assert_value(s, "/tls/a", "1", rev);
	hf_store_txn_cmp_mod_rev(&t, "/tls/a", rev);
	hf_store_txn_cmp_absent(&t, "/tls/b");
	hf_store_txn_puts(&t, "/tls/b", "2");
	assert_ok(s, hf_store_txn(s, &t, NULL));
	assert_rc(s, hf_store_txn(s, &t, NULL), HF_ECONFLICT);
	hf_store_txn_release(&t);
	assert_keys(s, "/tls/", keys, 2);
	lease = grant(s, 30);
	assert_ok(s, hf_store_lease_keepalive(s, lease, &ttl));
	token = campaign(s, "server-a", lease, true, "server-a");
	assert_ok(s, fenced_put(s, token, "/tls/c", "3"));
	assert_ok(s, hf_store_lease_revoke(s, lease));
	assert_absent(s, "/leader");
	assert_ok(s, hf_store_delete(s, "/tls/c", NULL));
	/* A namespace over TLS, seen from the whole keyspace. */
	free(url);
	url = hf_xasprintf("%s?prefix=/ns&key=%s&cert=%s&cacert=%s", base,
			   tls->client_key, tls->client_cert, tls->ca);
	assert_ok(NULL, hf_store_open(url, &ns));
	put_str(ns, "/tls/a", "in ns");
	assert_value(s, "/ns/tls/a", "in ns", -1);
	assert_keys(ns, "", keys, 1);
	hf_store_close(ns);
	/* What the test's own client reads is what the store wrote. */
	assert_value(s, "/tls/a", "1", rev);
	hf_store_close(s);
	free(url);

	/* No client certificate: etcd refuses the connection. */
	url = hf_xasprintf("%s?cacert=%s", base, tls->ca);
	assert_open_fails(url, HF_EUNAVAIL, "give cert= and key=");
	assert_contains(hf_store_last_error(NULL), name);
	free(url);
	/* Another CA, or the system's: etcd's certificate is not trusted. */
	url = hf_xasprintf("%s?cacert=%s&cert=%s&key=%s", base, tls->other_ca,
			   tls->client_cert, tls->client_key);
	assert_open_fails(url, HF_EUNAVAIL, "certificate problem");
	assert_contains(hf_store_last_error(NULL), "signed by a CA in cacert=");
	free(url);
	url = hf_xasprintf("%s?cert=%s&key=%s", base, tls->client_cert,
			   tls->client_key);
	assert_open_fails(url, HF_EUNAVAIL, "the system's CA store");
	free(url);
	/* A client certificate its CA did not sign: refused by etcd. The
	 * other CA's own certificate stands in for one (any certificate
	 * and key of another CA would do). */
	url = hf_xasprintf("%s?cacert=%s&cert=%s&key=%s/other-ca.key", base,
			   tls->ca, tls->other_ca, f->dir);
	assert_open_fails(url, HF_EUNAVAIL, "--trusted-ca-file");
	free(url);
	/* A key that is not the certificate's: libcurl says so. */
	url = hf_xasprintf("%s?cacert=%s&cert=%s&key=%s", base, tls->ca,
			   tls->client_cert, tls->server_key);
	assert_open_fails(url, HF_EUNAVAIL, "cert= and its key key=");
	free(url);
	/* The certificate names 127.0.0.1, not localhost. */
	url = hf_xasprintf("etcds://localhost:%d?cacert=%s&cert=%s&key=%s",
			   f->own_etcd.port, tls->ca, tls->client_cert,
			   tls->client_key);
	assert_open_fails(url, HF_EUNAVAIL, "localhost");
	assert_contains(hf_store_last_error(NULL), "name the host");
	free(url);
	/* Plain HTTP to the TLS port. */
	url = hf_xasprintf("etcd://%s", name);
	assert_open_fails(url, HF_EUNAVAIL, "use etcds://");
	free(url);
	/* TLS to the shared etcd, which speaks plain HTTP. */
	url = hf_xasprintf("etcds://127.0.0.1:%d?cacert=%s&cert=%s&key=%s",
			   shared_etcd.port, tls->ca, tls->client_cert,
			   tls->client_key);
	assert_open_fails(url, HF_EUNAVAIL, "use etcd://");
	free(url);

	/* Misused options: refused before any connection. */
	url = hf_xasprintf("%s?cacert=%s&cert=%s", base, tls->ca,
			   tls->client_cert);
	assert_open_fails(url, HF_EINVAL, "cert= is given without key=");
	free(url);
	url = hf_xasprintf("etcd://%s?cacert=%s", name, tls->ca);
	assert_open_fails(url, HF_EINVAL, "is for etcds://");
	free(url);
	url = hf_xasprintf("%s?cacert=%s/nope.crt&cert=%s&key=%s", base,
			   f->dir, tls->client_cert, tls->client_key);
	assert_open_fails(url, HF_ENOTFOUND, "cacert=");
	assert_contains(hf_store_last_error(NULL), "/nope.crt");
	free(url);

	free(base);
	free(name);
}

/* ------------------------------------------------------------------ */
/* Injected faults                                                      */

/* The store's detail sentence contains want. */
#define assert_detail(s, want) assert_contains(hf_store_last_error(s), want)

static void test_fault_writes(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	struct hf_store_txn t = HF_STORE_TXN_INIT;
	char *v = NULL;
	int64_t rev, lease = grant(s, 30);
	bool won = false;

	/* The 2nd write call fails, before the backend sees it. */
	assert_ok(s, hf_store_set_fault(s, "writes=2"));
	put_str(s, "/a", "1");
	rev = rev_of(s);
	assert_rc(s, hf_store_put(s, "/b", "2", 1, NULL), HF_EIO);
	assert_detail(s, "injected by HOLDFAST_STORE_FAULT: write call 2");
	assert_int_equal(rev_of(s), rev);
	assert_rc(s, hf_store_get(s, "/b", NULL, NULL, NULL), HF_ENOTFOUND);
	put_str(s, "/b", "3");

	/* From the 1st on, with the sentence of a full disk; reads work. */
	assert_ok(s, hf_store_set_fault(s, "writes=1-,error=full"));
	assert_rc(s, hf_store_put(s, "/c", "x", 1, NULL), HF_EIO);
	assert_detail(s, "database or disk is full");
	assert_rc(s, hf_store_delete(s, "/a", NULL), HF_EIO);
	assert_value(s, "/a", "1", -1);
	/* A campaign is a write too. */
	assert_rc(s, hf_store_campaign(s, "/leader", "me", lease, &won, NULL,
				       NULL),
		  HF_EIO);
	assert_rc(s, hf_store_get(s, "/leader", NULL, NULL, NULL), HF_ENOTFOUND);

	/* Made, then reported failed: a commit whose answer was lost. */
	assert_ok(s, hf_store_set_fault(s, "writes=1,error=unavailable,applied"));
	rev = rev_of(s);
	assert_rc(s, hf_store_put(s, "/d", "made", 4, NULL), HF_EUNAVAIL);
	assert_detail(s, "made before it failed");
	assert_value(s, "/d", "made", rev + 1);

	/* Reads, by number. */
	assert_ok(s, hf_store_set_fault(s, "reads=2-3,error=io"));
	assert_ok(s, hf_store_get(s, "/a", &v, NULL, NULL));
	free(v);
	assert_rc(s, hf_store_revision(s, &rev), HF_EIO);
	assert_detail(s, "read call 2");

	/* A spec that does not parse changes nothing. */
	assert_ok(s, hf_store_set_fault(s, "writes=1"));
	assert_rc(s, hf_store_set_fault(s, "writes=0"), HF_EINVAL);
	assert_rc(s, hf_store_set_fault(s, "writes=3-1"), HF_EINVAL);
	assert_rc(s, hf_store_set_fault(s, "bogus=1"), HF_EINVAL);
	assert_detail(s, "HOLDFAST_STORE_FAULT");
	assert_rc(s, hf_store_set_fault(s, "writes=1,error=nope"), HF_EINVAL);
	assert_detail(s, "unknown error 'nope'");
	assert_rc(s, hf_store_set_fault(s, "reads=1,applied"), HF_EINVAL);
	assert_rc(s, hf_store_set_fault(s, "writes=1;"), 0);
	hf_store_txn_puts(&t, "/e", "x");
	assert_rc(s, hf_store_txn(s, &t, NULL), HF_EIO);
	assert_ok(s, hf_store_txn(s, &t, NULL));
	hf_store_txn_release(&t);
	/* Cleared. */
	assert_ok(s, hf_store_set_fault(s, NULL));
	put_str(s, "/f", "y");
}

static void test_fault_while_file_exists(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	char *file = hf_xasprintf("%s/full", f->dir), *spec;
	int fd;

	spec = hf_xasprintf("writes-while=%s,error=full", file);
	assert_ok(s, hf_store_set_fault(s, spec));
	put_str(s, "/a", "1");
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_rc(s, hf_store_put(s, "/a", "2", 1, NULL), HF_EIO);
	assert_value(s, "/a", "1", -1);
	unlink(file);
	put_str(s, "/a", "3");
	free(spec);
	free(file);
}

/* The environment variable is read at open; a bad one fails the open. */
static void test_fault_from_environment(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = NULL;

	hf_store_close(f->s);
	f->s = NULL;
	setenv(HF_STORE_FAULT_ENV, "writes=1", 1);
	assert_ok(NULL, hf_store_open(f->url, &s));
	assert_rc(s, hf_store_put(s, "/a", "1", 1, NULL), HF_EIO);
	put_str(s, "/a", "2");
	hf_store_close(s);
	setenv(HF_STORE_FAULT_ENV, "writes=x", 1);
	assert_rc(NULL, hf_store_open(f->url, &s), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "HOLDFAST_STORE_FAULT");
	unsetenv(HF_STORE_FAULT_ENV);
	assert_ok(NULL, hf_store_open(f->url, &f->s));
	assert_value(f->s, "/a", "2", -1);
}

/* ------------------------------------------------------------------ */
/* Single-process leases after a crash or a failed write                */

/*
 * A leader key that no lease of the handle holds was left by a crash: a
 * campaign takes it over, so that a restarted server never follows
 * itself. One held by a live lease still wins over it.
 */
static void test_local_campaign_takes_a_stale_key(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	int64_t a, b, token;

	put_str(s, "/leader", "a server that crashed");
	a = grant(s, 30);
	token = campaign(s, "me", a, true, "me");
	assert_int_equal(token, rev_of(s));
	b = grant(s, 30);
	campaign(s, "other", b, false, "me");
	assert_ok(s, fenced_put(s, token, "/x", "mine"));
}

/*
 * A lease whose keys cannot be deleted when it expires (a full disk) is
 * forgotten all the same: the call that noticed goes on, reads keep
 * working, and the key it leaves is taken over by the next campaign.
 */
static void test_lease_expiry_with_a_failed_delete(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	int64_t a, b;
	char *v = NULL;

	a = grant(s, 1);
	campaign(s, "me", a, true, "me");
	assert_ok(s, hf_store_set_fault(s, "writes=1-,error=full"));
	sleep_ms(1300);
	assert_ok(s, hf_store_get(s, "/leader", &v, NULL, NULL));
	assert_string_equal(v, "me");
	free(v);
	assert_rc(s, hf_store_lease_keepalive(s, a, NULL), HF_ENOTFOUND);
	/* Revoking fails the same way, and forgets the lease too. */
	assert_ok(s, hf_store_set_fault(s, NULL));
	b = grant(s, 30);
	campaign(s, "again", b, true, "again");
	assert_ok(s, hf_store_set_fault(s, "writes=1-,error=full"));
	assert_rc(s, hf_store_lease_revoke(s, b), HF_EIO);
	assert_rc(s, hf_store_lease_keepalive(s, b, NULL), HF_ENOTFOUND);
	assert_ok(s, hf_store_set_fault(s, NULL));
	campaign(s, "third", grant(s, 30), true, "third");
}

/* ------------------------------------------------------------------ */
/* Backups                                                              */

static void assert_kvs_equal(const struct hf_store_kvs *got,
			     const struct hf_store_kvs *want, const char *skip)
{
	size_t j = 0;

	for (size_t i = 0; i < want->len; i++) {
		if (skip && strcmp(want->items[i].key, skip) == 0)
			continue;
		if (j >= got->len || strcmp(got->items[j].key, want->items[i].key) ||
		    got->items[j].len != want->items[i].len ||
		    memcmp(got->items[j].value, want->items[i].value,
			   want->items[i].len)) {
			print_error("key %zu: got '%s', want '%s'\n", j,
				    j < got->len ? got->items[j].key : "(none)",
				    want->items[i].key);
			fail();
		}
		j++;
	}
	assert_int_equal(j, got->len);
}

static void test_backup_and_restore(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	struct hf_store_kvs before = {0}, file = {0}, after = {0};
	char *path = hf_xasprintf("%s/backup.db", f->dir);
	const char bin[] = {'a', 0, 'b', (char)0xff};
	struct stat st;
	size_t keys = 0, changed = 0;
	int64_t rev, lease = grant(s, 30);

	put_str(s, "/services/a", "{\"name\":\"a\"}");
	assert_ok(s, hf_store_put(s, "/bin", bin, sizeof(bin), NULL));
	put_str(s, "/nodes/n1", "{}");
	put_lease(s, "/leased", "lease", lease);
	assert_ok(s, hf_store_list(s, "", 0, &before));

	assert_ok(s, hf_store_backup(s, path, &keys));
	assert_int_equal(keys, before.len);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_ok(NULL, hf_store_read_backup(path, &file));
	assert_kvs_equal(&file, &before, NULL);
	assert_int_equal(file.rev, before.rev);

	/*
	 * The store moves on (its leader went away); the restore brings back
	 * exactly the backup, but for the leader's key.
	 */
	assert_ok(s, hf_store_lease_revoke(s, lease));
	put_str(s, "/services/a", "{\"name\":\"changed\"}");
	put_str(s, "/services/new", "{}");
	assert_ok(s, hf_store_delete(s, "/nodes/n1", NULL));
	rev = rev_of(s);
	assert_ok(s, hf_store_restore(s, &file, "/leased", &changed));
	assert_true(changed > 0);
	assert_true(rev_of(s) > rev);
	assert_ok(s, hf_store_list(s, "", 0, &after));
	assert_kvs_equal(&after, &before, "/leased");
	hf_store_kvs_release(&after);
	/* Again: nothing to do but rewrite the same values. */
	assert_ok(s, hf_store_restore(s, &file, "/leased", NULL));
	assert_ok(s, hf_store_list(s, "", 0, &after));
	assert_kvs_equal(&after, &before, "/leased");

	hf_store_kvs_release(&before);
	hf_store_kvs_release(&file);
	hf_store_kvs_release(&after);
	free(path);
}

/* With leases of its own (etcd), a store that has a leader is not restored. */
static void test_restore_refused_while_a_server_leads(void **state)
{
	struct fx *f = *state;
	struct hf_store *s = f->s;
	struct hf_store_kvs empty = {0};

	campaign(s, "leader", grant(s, 30), true, "leader");
	put_str(s, "/x", "1");
	assert_rc(s, hf_store_restore(s, &empty, "/leader", NULL), HF_ECONFLICT);
	assert_detail(s, "stop every server");
	assert_value(s, "/x", "1", -1);
}

static void test_read_backup_refuses_what_is_not_one(void **state)
{
	struct fx *f = *state;
	struct hf_store_kvs l = {0};
	char *path = hf_xasprintf("%s/x.db", f->dir);
	sqlite3 *db = NULL;
	FILE *w;

	assert_rc(NULL, hf_store_read_backup(path, &l), HF_ENOTFOUND);
	w = fopen(path, "w");
	for (int i = 0; i < 200; i++)
		fputs("not a database at all ", w);
	fclose(w);
	assert_rc(NULL, hf_store_read_backup(path, &l), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "not an SQLite database");
	unlink(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_rc(NULL, hf_store_read_backup(path, &l), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "not a holdfast store");
	/* A store file with a page of garbage in its table. */
	put_str(f->s, "/a", "1");
	reopen(f);
	hf_store_close(f->s);
	f->s = NULL;
	{
		int64_t root = 0;
		int fd;
		char junk[4096];

		assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
		{
			sqlite3_stmt *st = NULL;

			sqlite3_prepare_v2(db,
					   "SELECT rootpage FROM sqlite_master "
					   "WHERE name = 'kv'",
					   -1, &st, NULL);
			assert_int_equal(sqlite3_step(st), SQLITE_ROW);
			root = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
		sqlite3_close(db);
		memset(junk, 0x5a, sizeof(junk));
		fd = open(f->db, O_WRONLY);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, junk, sizeof(junk),
					(off_t)(root - 1) * 4096),
				 (ssize_t)sizeof(junk));
		close(fd);
	}
	assert_rc(NULL, hf_store_read_backup(f->db, &l), HF_EINVAL);
	assert_contains(hf_store_last_error(NULL), "damaged");
	free(path);
	assert_ok(NULL, hf_store_open("mem:", &f->s));
}

/* The store's files are the owner's only, also ones found looser. */
static void test_sqlite_file_modes(void **state)
{
	struct fx *f = *state;
	const char *const suffixes[] = {"", "-wal", "-shm", ".lock"};
	struct stat st;

	put_str(f->s, "/a", "1");
	for (size_t i = 0; i < HF_ARRAY_LEN(suffixes); i++) {
		char *p = hf_xasprintf("%s%s", f->db, suffixes[i]);

		assert_int_equal(stat(p, &st), 0);
		if ((st.st_mode & 0777) != 0600) {
			print_error("%s has mode %03o\n", p,
				    (unsigned)(st.st_mode & 0777));
			fail();
		}
		free(p);
	}
	hf_store_close(f->s);
	f->s = NULL;
	assert_int_equal(chmod(f->db, 0644), 0);
	assert_ok(NULL, hf_store_open(f->url, &f->s));
	assert_int_equal(stat(f->db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* ------------------------------------------------------------------ */

#define ON(backend, fn)                                                        \
	{                                                                      \
		#backend "/" #fn, fn, setup, teardown, (void *)backend##_backend \
	}
#define BOTH(fn) ON(mem, fn), ON(sqlite, fn)

/* The contract and the leases: every backend runs them. */
#define EVERY_BACKEND(X)                                                       \
	X(test_put_get), X(test_get_absent), X(test_list_prefix_sorted),       \
	X(test_list_prefix_high_bytes), X(test_revisions),                     \
	X(test_cmp_mod_rev), X(test_cmp_absent_present),                       \
	X(test_delete_prefix), X(test_delete), X(test_binary_values),          \
	X(test_large_value), X(test_many_keys), X(test_invalid_txns),          \
	X(test_txn_copies_arguments), X(test_stats), X(test_threads),          \
	X(test_lease_keys), X(test_lease_expiry), X(test_campaign_fencing),    \
	X(test_campaign_lease_expiry), X(test_fault_writes),                   \
	X(test_fault_while_file_exists), X(test_backup_and_restore)
#define ON_ETCD(fn) ON(etcd, fn)
#define ON_ETCD_NS(fn) ON(etcd_ns, fn)

/*
 * The contract again in a namespace: every test that names keys. Left
 * out, as they take 11 s and test what the prefix does not touch:
 * test_threads (the handle's mutex) and test_lease_expiry (etcd's own
 * TTL; test_campaign_lease_expiry has a leased key expire in the
 * namespace).
 */
#define NAMESPACED(X)                                                          \
	X(test_put_get), X(test_get_absent), X(test_list_prefix_sorted),       \
	X(test_list_prefix_high_bytes), X(test_revisions),                     \
	X(test_cmp_mod_rev), X(test_cmp_absent_present),                       \
	X(test_delete_prefix), X(test_delete), X(test_binary_values),          \
	X(test_large_value), X(test_many_keys), X(test_invalid_txns),          \
	X(test_txn_copies_arguments), X(test_stats), X(test_lease_keys),       \
	X(test_campaign_fencing), X(test_campaign_lease_expiry),               \
	X(test_etcd_bytes)

int main(void)
{
	const struct CMUnitTest local_tests[] = {
		EVERY_BACKEND(BOTH),
		ON(sqlite, test_urls),
		ON(sqlite, test_sqlite_reopen_persists),
		ON(sqlite, test_sqlite_exclusive_lock),
		ON(sqlite, test_sqlite_missing_dir),
		ON(sqlite, test_sqlite_newer_schema_refused),
		ON(sqlite, test_sqlite_not_a_store),
		ON(sqlite, test_sqlite_failed_txn_rolls_back),
		ON(sqlite, test_sqlite_crash_durability),
		ON(sqlite, test_fault_from_environment),
		BOTH(test_local_campaign_takes_a_stale_key),
		BOTH(test_lease_expiry_with_a_failed_delete),
		ON(sqlite, test_read_backup_refuses_what_is_not_one),
		ON(sqlite, test_sqlite_file_modes),
	};
	const struct CMUnitTest etcd_tests[] = {
		EVERY_BACKEND(ON_ETCD),
		ON(etcd, test_etcd_bytes),
		ON(etcd, test_etcd_failover),
		ON(etcd, test_etcd_txn_outcome_unknown),
		ON(etcd, test_etcd_unreachable),
		ON(etcd, test_etcd_default_limits),
		ON(etcd, test_etcd_prefix_isolation),
		ON(etcd, test_etcd_tls),
		ON(etcd, test_restore_refused_while_a_server_leads),
	};
	const struct CMUnitTest etcd_ns_tests[] = {
		NAMESPACED(ON_ETCD_NS),
	};
	int failed;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	failed = cmocka_run_group_tests_name("mem and sqlite", local_tests,
					     NULL, NULL);
	/* A missing etcd fails the group setup, so the run: never a skip. */
	failed += cmocka_run_group_tests_name("etcd", etcd_tests,
					      etcd_group_setup,
					      etcd_group_teardown);
	failed += cmocka_run_group_tests_name("etcd, prefix=" NS_PREFIX,
					      etcd_ns_tests, etcd_group_setup,
					      etcd_group_teardown);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
