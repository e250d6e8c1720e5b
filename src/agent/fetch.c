/*
 * fetch.c - a task's `uris`: file:// copied, http(s):// downloaded once
 * into <data>/cache/<sha256 of the content> (an index maps each URL to
 * its hash, so a URL already fetched is not fetched again, and two URLs
 * with the same content share one file), then copied into the sandbox;
 * archives are extracted there with tar or unzip, run without a shell.
 *
 * Several workers fetch at once. The index is read and written under
 * ag->cache_mu (held for the file's read or write only, never across a
 * download); a URL being downloaded is in ag->fetching, and a second task
 * that wants it waits for that download rather than starting its own.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/sha256.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define INDEX_MAX_BYTES (64 * 1024 * 1024)

static const char *const tool_dirs[] = {"/usr/local/bin", "/usr/bin", "/bin"};

static char *find_tool(const char *name)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(tool_dirs); i++) {
		char *p = hf_xasprintf("%s/%s", tool_dirs[i], name);

		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/*
 * The URL without credentials or query, for messages: a URL may carry a
 * token, and messages go to logs and to the server.
 */
static char *url_for_humans(const char *url)
{
	const char *scheme = strstr(url, "://"), *host, *at, *end;
	struct hf_buf b = HF_BUF_INIT;

	if (!scheme)
		return hf_xstrdup("(invalid URL)");
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	hf_buf_add(&b, url, (size_t)(host - url));
	host = at ? at + 1 : host;
	hf_buf_add(&b, host, strcspn(host, "?#"));
	return hf_buf_detach(&b);
}

/* The file name a URL is saved as: the last path component. */
static char *url_file_name(const char *url)
{
	const char *p = strstr(url, "://"), *slash, *end;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "?#");
	slash = end;
	while (slash > p && slash[-1] != '/')
		slash--;
	if (slash == p || end == slash ||
	    (end - slash == 1 && slash[0] == '.') ||
	    (end - slash == 2 && slash[0] == '.' && slash[1] == '.'))
		return NULL;
	return hf_xstrndup(slash, (size_t)(end - slash));
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int extract(const char *archive, const char *name, const char *dir,
		   uid_t uid, gid_t gid, char **err)
{
	static const char *const tar_suffixes[] = {".tar", ".tar.gz", ".tgz",
						   ".tar.bz2", ".tar.xz"};
	char *tool = NULL, *e = NULL;
	bool is_tar = false;
	int rc = 0;

	for (size_t i = 0; i < HF_ARRAY_LEN(tar_suffixes); i++)
		is_tar |= has_suffix(name, tar_suffixes[i]);
	if (!is_tar && !has_suffix(name, ".zip"))
		return 0;
	tool = find_tool(is_tar ? "tar" : "unzip");
	if (!tool) {
		*err = hf_xasprintf("cannot extract %s: %s is not installed",
				    name, is_tar ? "tar" : "unzip");
		return -1;
	}
	/* The archive path is absolute, so it cannot pass for an option. */
	if (is_tar) {
		char *argv[] = {tool, "-x", "--no-same-owner", "-f",
				(char *)archive, "-C", (char *)dir, NULL};

		rc = ag_run(argv, dir, uid, gid, &e);
	} else {
		char *argv[] = {tool, "-q", "-o", (char *)archive, "-d",
				(char *)dir, NULL};

		rc = ag_run(argv, dir, uid, gid, &e);
	}
	if (rc)
		*err = hf_xasprintf("cannot extract %s: %s", name, e);
	free(e);
	free(tool);
	return rc;
}

struct download {
	int fd;
	struct hf_sha256 sha;
	int64_t bytes;
	int werr;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct download *d = arg;
	size_t len = size * n, left = len;

	while (left > 0) {
		ssize_t w = write(d->fd, p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			d->werr = errno;
			return 0; /* aborts the transfer */
		}
		hf_sha256_update(&d->sha, p, (size_t)w);
		p += w;
		left -= (size_t)w;
	}
	d->bytes += (int64_t)len;
	return len;
}

static json_t *load_index(struct hf_agent *ag)
{
	char *path = hf_xasprintf("%s/index.json", ag->cache_dir), *text = NULL;
	json_t *o = NULL;

	if (hf_read_file(path, INDEX_MAX_BYTES, &text, NULL) == 0)
		o = json_loads(text, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_object();
	}
	free(text);
	free(path);
	return o;
}

static void save_index(struct hf_agent *ag, json_t *index)
{
	char *path = hf_xasprintf("%s/index.json", ag->cache_dir);
	char *text = json_dumps(index, JSON_COMPACT);

	if (!text)
		abort(); /* only on allocation failure; see util.h */
	/* Losing the index only costs a download: no need to fail. */
	if (hf_write_file_atomic(path, text, strlen(text), 0600))
		hf_log("cannot write %s: %s", path, strerror(errno));
	free(text);
	free(path);
}

/* The cache file the index names for url, if it is there. cache_mu held. */
static char *cache_lookup(struct hf_agent *ag, const char *url)
{
	json_t *index = load_index(ag);
	const char *hash = json_string_value(json_object_get(index, url));
	char *path = NULL;

	if (hash && strlen(hash) == 64) {
		path = hf_xasprintf("%s/%s", ag->cache_dir, hash);
		if (access(path, R_OK) != 0) {
			free(path);
			path = NULL;
		}
	}
	json_decref(index);
	return path;
}

/*
 * Claims url's download: returns the cache file when it is cached (maybe
 * by a download another task waited for here), else NULL with url added
 * to ag->fetching (the caller downloads it, then calls release_url).
 */
static char *claim_url(struct hf_agent *ag, const char *url)
{
	char *path;

	pthread_mutex_lock(&ag->cache_mu);
	while (!(path = cache_lookup(ag, url)) &&
	       hf_strlist_has(&ag->fetching, url))
		pthread_cond_wait(&ag->cache_cv, &ag->cache_mu);
	if (!path)
		hf_strlist_push(&ag->fetching, url);
	pthread_mutex_unlock(&ag->cache_mu);
	return path;
}

/* Ends a claim; with hex, records url's content in the index first. */
static void release_url(struct hf_agent *ag, const char *url,
			const char *hex)
{
	pthread_mutex_lock(&ag->cache_mu);
	if (hex) {
		json_t *index = load_index(ag);

		json_object_set_new(index, url, json_string(hex));
		save_index(ag, index);
		json_decref(index);
	}
	for (size_t i = 0; i < ag->fetching.len; i++)
		if (strcmp(ag->fetching.items[i], url) == 0) {
			free(ag->fetching.items[i]);
			ag->fetching.items[i] =
			    ag->fetching.items[--ag->fetching.len];
			break;
		}
	pthread_cond_broadcast(&ag->cache_cv);
	pthread_mutex_unlock(&ag->cache_mu);
}

/*
 * Sets *cached to the cache file holding url's content. A failed
 * download lets a task waiting for the same URL try its own.
 */
static int fetch_cached(struct hf_agent *ag, const char *url, char **cached,
			char **err)
{
	char *tmp = NULL, *human = url_for_humans(url), hex[65];
	char ebuf[CURL_ERROR_SIZE] = "";
	struct download d = {.fd = -1};
	bool stored = false;
	CURL *c = NULL;
	CURLcode cc;
	int rc = -1;

	*cached = claim_url(ag, url);
	if (*cached) {
		free(human);
		return 0;
	}
	tmp = hf_xasprintf("%s/.fetch-XXXXXX", ag->cache_dir);
	d.fd = mkostemp(tmp, O_CLOEXEC);
	if (d.fd < 0) {
		*err = hf_xasprintf("cannot fetch %s: %s", human,
				    strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	hf_sha256_init(&d.sha);
	c = curl_easy_init();
	if (!c)
		abort(); /* only on allocation failure; see util.h */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled transfer ends; a slow but moving one may take long. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		*err = hf_xasprintf("cannot fetch %s: %s", human,
				    d.werr ? strerror(d.werr)
				    : ebuf[0] ? ebuf
					      : curl_easy_strerror(cc));
		goto out;
	}
	if (fsync(d.fd) < 0) {
		*err = hf_xasprintf("cannot fetch %s: %s", human,
				    strerror(errno));
		goto out;
	}
	hf_sha256_final_hex(&d.sha, hex);
	*cached = hf_xasprintf("%s/%s", ag->cache_dir, hex);
	/* Same content fetched before under another URL: keep one copy. */
	if (access(*cached, F_OK) == 0 ? unlink(tmp) < 0
				       : rename(tmp, *cached) < 0) {
		*err = hf_xasprintf("cannot store %s in the cache: %s", human,
				    strerror(errno));
		free(*cached);
		*cached = NULL;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	stored = true;
	hf_log("fetched %s: %lld bytes, sha256 %.12s", human,
	       (long long)d.bytes, hex);
	rc = 0;
out:
	release_url(ag, url, stored ? hex : NULL);
	if (c)
		curl_easy_cleanup(c);
	if (d.fd >= 0)
		close(d.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(human);
	return rc;
}

/*
 * The file a file:// URI names, when it lies in one of the agent's
 * --artifact-dir directories (links resolved first, so none leads out).
 * Anything else (/proc/self/environ, /etc/shadow) is refused: a spec must
 * not read the node's files through the agent. Returns the canonical path
 * (the caller frees it) or NULL with *err set.
 */
static char *served_file(struct hf_agent *ag, const char *src, char **err)
{
	char *real = realpath(src, NULL);

	for (size_t i = 0; real && i < ag->artifact_dirs.len; i++) {
		const char *dir = ag->artifact_dirs.items[i];
		size_t n = strlen(dir);

		if (strncmp(real, dir, n) == 0 && real[n] == '/')
			return real;
	}
	if (!real && errno != ENOENT) {
		*err = hf_xasprintf("cannot copy %s: %s", src, strerror(errno));
		return NULL;
	}
	if (ag->artifact_dirs.len == 0)
		*err = hf_xasprintf("cannot copy %s: this agent serves no "
				    "files to tasks (start it with "
				    "--artifact-dir DIR to allow file:// URIs "
				    "below DIR)", src);
	else if (!real)
		*err = hf_xasprintf("cannot copy %s: %s", src, strerror(ENOENT));
	else
		*err = hf_xasprintf("cannot copy %s: it is not in a directory "
				    "this agent serves to tasks (its "
				    "--artifact-dir, first %s)", src,
				    ag->artifact_dirs.items[0]);
	free(real);
	return NULL;
}

static int fetch_one(struct hf_agent *ag, struct ag_task *t, const char *url,
		     uid_t uid, gid_t gid, char **err)
{
	char *name = url_file_name(url), *dest = NULL, *cached = NULL;
	struct stat sb;
	int rc = -1;

	if (!name) {
		char *human = url_for_humans(url);

		*err = hf_xasprintf("uri %s does not name a file", human);
		free(human);
		return -1;
	}
	dest = hf_xasprintf("%s/%s", t->sandbox, name);
	if (hf_str_has_prefix(url, "file://")) {
		char *src = served_file(ag, url + 7, err);

		if (!src)
			goto out;
		cached = src; /* freed at the end */
		if (stat(src, &sb) < 0) {
			*err = hf_xasprintf("cannot copy %s: %s", src,
					    strerror(errno));
			goto out;
		}
		if (!S_ISREG(sb.st_mode)) {
			*err = hf_xasprintf("cannot copy %s: not a regular "
					    "file", src);
			goto out;
		}
		if (ag_copy_file(src, dest, sb.st_mode & 0777) < 0) {
			*err = hf_xasprintf("cannot copy %s: %s", src,
					    strerror(errno));
			goto out;
		}
	} else if (hf_str_has_prefix(url, "http://") ||
		   hf_str_has_prefix(url, "https://")) {
		if (fetch_cached(ag, url, &cached, err))
			goto out;
		if (ag_copy_file(cached, dest, 0644) < 0) {
			*err = hf_xasprintf("cannot copy %s into the sandbox: "
					    "%s", name, strerror(errno));
			goto out;
		}
	} else {
		char *human = url_for_humans(url);

		*err = hf_xasprintf("uri %s: only file://, http:// and "
				    "https:// are supported", human);
		free(human);
		goto out;
	}
	if (uid != (uid_t)-1 && lchown(dest, uid, gid) < 0) {
		*err = hf_xasprintf("cannot give %s to the task's user: %s",
				    name, strerror(errno));
		goto out;
	}
	rc = extract(dest, name, t->sandbox, uid, gid, err);
out:
	free(name);
	free(dest);
	free(cached);
	return rc;
}

int ag_fetch_uris(struct hf_agent *ag, struct ag_task *t,
		  const struct hf_strlist *uris, uid_t uid, gid_t gid,
		  char **err)
{
	for (size_t i = 0; i < uris->len; i++)
		if (fetch_one(ag, t, uris->items[i], uid, gid, err))
			return -1;
	return 0;
}
