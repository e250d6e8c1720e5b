/*
 * cli_store.c - `holdfast store backup` and `holdfast store restore`: a
 * consistent copy of a server's store, and putting one back.
 *
 * A backup is an SQLite holdfast store file (store.h, hf_store_snapshot),
 * whatever the backend: through the running server's API by default
 * (GET /v1/store/backup, admin only; it works remotely and while the
 * server acts), or by opening the store itself with --data/--store (for a
 * stopped server). A restore opens the stopped server's store itself,
 * after checking that a server could load every record of the backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"
#include "cli/cli.h"
#include "common/err.h"
#include "server/state.h"
#include "store/store.h"

/* The store URL of --data DIR / --store URL, or NULL after a message. */
static char *store_url(const char *data, const char *store, const char *verb)
{
	if (data && store) {
		fprintf(stderr, "holdfast store %s: --data and --store go alone\n",
			verb);
		return NULL;
	}
	if (store)
		return hf_xstrdup(store);
	return hf_xasprintf("sqlite:%s/holdfast.db", data);
}

/* Parses FILE [--data DIR] [--store URL] [--yes]; returns 0 or usage. */
static int parse(int argc, char **argv, const char *verb, const char **file,
		 const char **data, const char **store, bool *yes)
{
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--data") == 0 && k + 1 < argc)
			*data = argv[++k];
		else if (strcmp(argv[k], "--store") == 0 && k + 1 < argc)
			*store = argv[++k];
		else if (yes && (strcmp(argv[k], "--yes") == 0 ||
				 strcmp(argv[k], "-y") == 0))
			*yes = true;
		else if (!*file && argv[k][0] != '-')
			*file = argv[k];
		else
			return hf_cli_usage("store", verb);
	}
	return *file ? 0 : hf_cli_usage("store", verb);
}

/* The cluster id a list of keys holds, or "none"; the caller frees it. */
static char *cluster_of(const struct hf_store_kvs *kvs)
{
	for (size_t i = 0; i < kvs->len; i++) {
		json_t *c;
		char *id;

		if (strcmp(kvs->items[i].key, HF_CLUSTER_KEY) != 0)
			continue;
		c = json_loadb(kvs->items[i].value, kvs->items[i].len, 0, NULL);
		id = json_is_string(json_object_get(c, "id"))
			 ? hf_xstrdup(json_string_value(json_object_get(c, "id")))
			 : NULL;
		json_decref(c);
		if (id)
			return id;
	}
	return hf_xstrdup("none");
}

/* The keys of a backup a restore puts: all but a leader's key. */
static size_t restored_keys(const struct hf_store_kvs *kvs)
{
	size_t n = 0;

	for (size_t i = 0; i < kvs->len; i++)
		if (strcmp(kvs->items[i].key, HF_LEADER_KEY) != 0)
			n++;
	return n;
}

/* Says what a written backup file holds, checking it reads back. */
static int describe(const char *file)
{
	struct hf_store_kvs kvs = {0};
	char *cluster;

	if (hf_store_read_backup(file, &kvs)) {
		fprintf(stderr, "holdfast: the backup %s does not read back: %s\n",
			file, hf_store_last_error(NULL));
		return HF_EXIT_FAIL;
	}
	cluster = cluster_of(&kvs);
	printf("backup of %zu keys (revision %lld, cluster %s) written to %s\n",
	       restored_keys(&kvs), (long long)kvs.rev, cluster, file);
	free(cluster);
	hf_store_kvs_release(&kvs);
	return HF_EXIT_OK;
}

struct sink {
	int fd;
	int err; /* errno of a failed write */
};

static int to_file(void *arg, const char *data, size_t len)
{
	struct sink *k = arg;

	while (len > 0) {
		ssize_t n = write(k->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			k->err = errno;
			return 1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* GET /v1/store/backup into file (atomically: file.new, fsync, rename). */
static int backup_from_server(const char *file)
{
	char *tmp = hf_xasprintf("%s.new", file), *err = NULL, *err_body = NULL;
	struct sink k = {-1, 0};
	long status = 0;
	int rc;

	k.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (k.fd < 0) {
		fprintf(stderr, "holdfast: cannot write %s: %s\n", tmp,
			strerror(errno));
		free(tmp);
		return HF_EXIT_FAIL;
	}
	rc = hf_httpc_stream(hf_cli_addr(), "/v1/store/backup", hf_cli_token(),
			     NULL, 0, to_file, &k, &status, &err_body, &err);
	if (rc) {
		fprintf(stderr, "holdfast: cannot reach the server at %s: %s\n",
			hf_cli_addr(), err ? err : hf_err_msg(rc));
		rc = HF_EXIT_SERVER;
	} else if (status != 200) {
		json_t *e = err_body ? json_loads(err_body, 0, NULL) : NULL;
		const char *msg = json_string_value(json_object_get(e, "message"));

		fprintf(stderr, "holdfast: the server refused the backup (%ld): "
				"%s\n",
			status, msg ? msg : (err_body ? err_body : "no reason"));
		json_decref(e);
		rc = status >= 500 ? HF_EXIT_SERVER : HF_EXIT_FAIL;
	} else if (k.err) {
		fprintf(stderr, "holdfast: cannot write %s: %s\n", tmp,
			strerror(k.err));
		rc = HF_EXIT_FAIL;
	} else if (fsync(k.fd) < 0 || close(k.fd) < 0 ||
		   rename(tmp, file) < 0) {
		k.fd = -1;
		fprintf(stderr, "holdfast: cannot write %s: %s\n", file,
			strerror(errno));
		rc = HF_EXIT_FAIL;
	} else {
		k.fd = -1;
	}
	if (k.fd >= 0)
		close(k.fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	free(err);
	free(err_body);
	return rc ? rc : describe(file);
}

int hf_cmd_store_backup(int argc, char **argv)
{
	const char *file = NULL, *data = NULL, *store = NULL;
	struct hf_store *s = NULL;
	char *url;
	int rc = parse(argc, argv, "backup", &file, &data, &store, NULL);

	if (rc)
		return rc;
	if (!data && !store)
		return backup_from_server(file);
	url = store_url(data, store, "backup");
	if (!url)
		return HF_EXIT_USAGE;
	if (hf_store_open(url, &s)) {
		fprintf(stderr,
			"holdfast: cannot open the store %s: %s (to back up "
			"through a running server, leave out --data and "
			"--store)\n",
			url, hf_store_last_error(NULL));
		free(url);
		return HF_EXIT_FAIL;
	}
	if (hf_store_backup(s, file, NULL)) {
		fprintf(stderr, "holdfast: cannot back up %s: %s\n", url,
			hf_store_last_error(s));
		rc = HF_EXIT_FAIL;
	}
	hf_store_close(s);
	free(url);
	return rc ? rc : describe(file);
}

/*
 * Whether a server could load kvs: copies them into a memory store and
 * loads that as a server would. *why (the caller frees it) says what is
 * wrong.
 */
static int loadable(const struct hf_store_kvs *kvs, char **why)
{
	struct hf_srv srv = {0};
	int rc;

	*why = NULL;
	if (hf_store_open("mem:", &srv.store))
		return HF_EINTERNAL;
	pthread_mutex_init(&srv.mu, NULL);
	rc = hf_store_restore(srv.store, kvs, HF_LEADER_KEY, NULL);
	if (rc)
		*why = hf_xstrdup(hf_store_last_error(srv.store));
	else
		rc = hf_state_load(&srv, why);
	hf_state_release(&srv);
	pthread_mutex_destroy(&srv.mu);
	hf_store_close(srv.store);
	return rc;
}

/*
 * Asks on a terminal: 0 when confirmed, else the exit code (a usage
 * error without a terminal: --yes is needed).
 */
static int confirm(const char *what)
{
	char answer[16] = "";

	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "holdfast: %s; confirm with --yes\n", what);
		return HF_EXIT_USAGE;
	}
	fprintf(stderr, "%s. Type 'yes' to go on: ", what);
	if (fgets(answer, sizeof(answer), stdin) &&
	    strncmp(answer, "yes", 3) == 0)
		return 0;
	fprintf(stderr, "holdfast: not restored\n");
	return HF_EXIT_FAIL;
}

int hf_cmd_store_restore(int argc, char **argv)
{
	const char *file = NULL, *data = NULL, *store = NULL;
	struct hf_store_kvs backup = {0}, now = {0};
	struct hf_store *s = NULL;
	char *url = NULL, *why = NULL, *what = NULL, *c_now = NULL, *c_new = NULL;
	size_t changed = 0;
	bool yes = false;
	int rc = parse(argc, argv, "restore", &file, &data, &store, &yes);

	if (rc)
		return rc;
	if (!data && !store) {
		fprintf(stderr, "holdfast store restore: name the stopped "
				"server's store: --data DIR or --store URL\n");
		return HF_EXIT_USAGE;
	}
	url = store_url(data, store, "restore");
	if (!url)
		return HF_EXIT_USAGE;
	rc = HF_EXIT_FAIL;
	if (hf_store_read_backup(file, &backup)) {
		fprintf(stderr, "holdfast: %s\n", hf_store_last_error(NULL));
		goto out;
	}
	if (loadable(&backup, &why)) {
		fprintf(stderr,
			"holdfast: %s cannot be restored: a server could not "
			"load it: %s\n",
			file, why ? why : "unknown error");
		goto out;
	}
	if (data && mkdir(data, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "holdfast: cannot create %s: %s\n", data,
			strerror(errno));
		goto out;
	}
	if (hf_store_open(url, &s)) {
		fprintf(stderr, "holdfast: cannot open the store %s: %s (stop "
				"its server first)\n",
			url, hf_store_last_error(NULL));
		goto out;
	}
	if (hf_store_list(s, "", 0, &now)) {
		fprintf(stderr, "holdfast: cannot read the store %s: %s\n", url,
			hf_store_last_error(s));
		goto out;
	}
	c_now = cluster_of(&now);
	c_new = cluster_of(&backup);
	what = hf_xasprintf("The store %s holds %zu keys (cluster %s); it will "
			    "hold exactly the %zu keys of %s (cluster %s)",
			    url, now.len, c_now, restored_keys(&backup), file,
			    c_new);
	if (!yes && (rc = confirm(what)) != 0)
		goto out;
	rc = HF_EXIT_FAIL;
	if (hf_store_restore(s, &backup, HF_LEADER_KEY, &changed)) {
		fprintf(stderr, "holdfast: cannot restore %s: %s\n", url,
			hf_store_last_error(s));
		goto out;
	}
	printf("restored %s into %s: %zu keys (cluster %s), %zu written or "
	       "deleted; start the server\n",
	       file, url, restored_keys(&backup), c_new, changed);
	rc = HF_EXIT_OK;
out:
	free(c_now);
	free(c_new);
	hf_store_kvs_release(&backup);
	hf_store_kvs_release(&now);
	hf_store_close(s);
	free(url);
	free(why);
	free(what);
	return rc;
}
