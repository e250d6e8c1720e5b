/*
 * http_client.c - the small libcurl client the CLI and the agent use to
 * talk to the server: one easy handle per call (so any thread may call),
 * libcurl initialised once, TLS verified unless told otherwise.
 */
#include "http/http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/version.h"

/* Answers larger than this are refused rather than held in memory. */
#define HTTPC_MAX_BODY ((size_t)64 * 1024 * 1024)
/* Error bodies of a stream are kept up to this size. */
#define HTTPC_MAX_ERR_BODY ((size_t)64 * 1024)
#define HTTPC_CONNECT_TIMEOUT_MS 10000L

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static char *tls_ca_file;
static bool tls_insecure;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void hf_httpc_set_tls(const char *ca_file, bool insecure)
{
	pthread_mutex_lock(&tls_lock);
	free(tls_ca_file);
	tls_ca_file = ca_file ? hf_xstrdup(ca_file) : NULL;
	tls_insecure = insecure;
	pthread_mutex_unlock(&tls_lock);
}

char *hf_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_add(&b, "", 0);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			hf_buf_addc(&b, (char)c);
		} else {
			hf_buf_addc(&b, '%');
			hf_buf_addc(&b, hex[c >> 4]);
			hf_buf_addc(&b, hex[c & 15]);
		}
	}
	return hf_buf_detach(&b);
}

/* base_url + path_and_query, with "http://" when base_url has no scheme. */
static char *join_url(const char *base, const char *path)
{
	struct hf_buf b = HF_BUF_INIT;
	size_t n = strlen(base);

	if (!strstr(base, "://"))
		hf_buf_adds(&b, "http://");
	while (n > 0 && base[n - 1] == '/')
		n--;
	hf_buf_add(&b, base, n);
	if (path[0] != '/')
		hf_buf_addc(&b, '/');
	hf_buf_adds(&b, path);
	return hf_buf_detach(&b);
}

/* An answer body, bounded. */
struct sink {
	struct hf_buf buf;
	size_t max;
	bool too_big;
};

static size_t sink_write(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	if (s->buf.len + len > s->max) {
		s->too_big = true;
		return 0;
	}
	hf_buf_add(&s->buf, p, len);
	return len;
}

/*
 * The options every call shares. *hdrs collects the header list (freed by
 * the caller with curl_slist_free_all, after wiping the token line).
 */
static void easy_setup(CURL *h, const char *url, const char *token,
		       long timeout_ms, long connect_timeout_ms,
		       struct curl_slist **hdrs, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "holdfast/" HF_VERSION);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 connect_timeout_ms > 0 ? connect_timeout_ms
						: HTTPC_CONNECT_TIMEOUT_MS);
	pthread_mutex_lock(&tls_lock);
	if (tls_ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, tls_ca_file);
	if (tls_insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	pthread_mutex_unlock(&tls_lock);
	if (token) {
		char *line = hf_xasprintf("Authorization: Bearer %s", token);

		*hdrs = curl_slist_append(*hdrs, line);
		explicit_bzero(line, strlen(line));
		free(line);
	}
}

/* Frees a header list, wiping it first: it may hold the token. */
static void headers_free(struct curl_slist *hdrs)
{
	for (struct curl_slist *l = hdrs; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(hdrs);
}

/* Maps a failed transfer to an error code and sentence. */
static int transfer_error(CURLcode cc, const char *method, const char *url,
			  const char *errbuf, char **err)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);

	*err = hf_xasprintf("%s %s: %s", method, url, why);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return HF_EUNAVAIL;
	default:
		return HF_EIO;
	}
}

static int init_or_fail(char **err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		*err = hf_xasprintf("cannot initialise libcurl: %s",
				    curl_easy_strerror(curl_init_rc));
		return HF_EIO;
	}
	return 0;
}

int hf_httpc_request(const char *base_url, const char *method,
		     const char *path_and_query, const char *token,
		     const char *body, long timeout_ms, long *status,
		     char **resp_body, char **err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct sink sink = {HF_BUF_INIT, HTTPC_MAX_BODY, false};
	char *url = NULL;
	CURL *h = NULL;
	CURLcode cc;
	int rc;

	*status = 0;
	*err = NULL;
	if (resp_body)
		*resp_body = NULL;
	rc = init_or_fail(err);
	if (rc)
		return rc;
	h = curl_easy_init();
	if (!h) {
		*err = hf_xstrdup("cannot create a libcurl handle");
		return HF_EIO;
	}
	url = join_url(base_url, path_and_query);
	easy_setup(h, url, token, timeout_ms, 0, &hdrs, errbuf);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (strcmp(method, "GET") == 0 && !body) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (body || strcmp(method, "POST") == 0 ||
		    strcmp(method, "PUT") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(body ? strlen(body) : 0));
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
			hdrs = curl_slist_append(hdrs,
						 "Content-Type: application/json");
		}
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (cc == CURLE_WRITE_ERROR && sink.too_big) {
		*err = hf_xasprintf("%s %s: the answer is larger than %zu bytes",
				    method, url, HTTPC_MAX_BODY);
		rc = HF_ETOOBIG;
	} else if (cc != CURLE_OK) {
		rc = transfer_error(cc, method, url, errbuf, err);
	} else if (resp_body) {
		*resp_body = hf_buf_detach(&sink.buf);
	}
	headers_free(hdrs);
	curl_easy_cleanup(h);
	hf_buf_release(&sink.buf);
	free(url);
	return rc;
}

int hf_httpc_json(const char *base_url, const char *method,
		  const char *path_and_query, const char *token,
		  const json_t *body, long timeout_ms, long *status,
		  json_t **out, char **err)
{
	char *req = NULL, *resp = NULL;
	json_error_t e;
	int rc;

	*out = NULL;
	*err = NULL;
	if (body) {
		req = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!req) {
			*err = hf_xstrdup("cannot encode the request as JSON");
			*status = 0;
			return HF_EINVAL;
		}
	}
	rc = hf_httpc_request(base_url, method, path_and_query, token, req,
			      timeout_ms, status, &resp, err);
	free(req);
	if (rc)
		return rc;
	if (strspn(resp, " \t\r\n") == strlen(resp)) {
		*out = json_null();
		goto out;
	}
	*out = json_loads(resp, JSON_DECODE_ANY, &e);
	if (!*out) {
		struct hf_buf b = HF_BUF_INIT;
		size_t n = strlen(resp);

		hf_buf_addf(&b, "%s %s: the server answered %ld with a body that is not JSON: ",
			    method, path_and_query, *status);
		for (size_t i = 0; i < n && i < 200; i++)
			hf_buf_addc(&b, (unsigned char)resp[i] < 0x20 ||
						(unsigned char)resp[i] >= 0x7f
					      ? '?'
					      : resp[i]);
		if (n > 200)
			hf_buf_adds(&b, "...");
		*err = hf_buf_detach(&b);
		rc = HF_EPARSE;
	}
out:
	free(resp);
	return rc;
}

/* A streaming GET in progress. */
struct stream_ctx {
	CURL *h;
	hf_httpc_chunk_fn fn;
	void *arg;
	bool checked, ok, stopped;
	int64_t last_call; /* hf_mono_ms() */
	struct hf_buf err_body;
};

static void mark_call(struct stream_ctx *s)
{
	s->last_call = hf_mono_ms();
}

static size_t stream_write(char *p, size_t size, size_t n, void *arg)
{
	struct stream_ctx *s = arg;
	size_t len = size * n;

	if (!s->checked) {
		long code = 0;

		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
		s->ok = code >= 200 && code < 300;
		s->checked = true;
	}
	if (!s->ok) {
		if (s->err_body.len + len <= HTTPC_MAX_ERR_BODY)
			hf_buf_add(&s->err_body, p, len);
		return len;
	}
	mark_call(s);
	if (s->fn(s->arg, p, len)) {
		s->stopped = true;
		return 0;
	}
	return len;
}

/* Lets the caller give up while nothing arrives (about once a second). */
static int stream_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	struct stream_ctx *s = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (s->stopped)
		return 1;
	if (hf_mono_ms() - s->last_call < 250)
		return 0;
	mark_call(s);
	if (s->fn(s->arg, "", 0)) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

int hf_httpc_stream(const char *base_url, const char *path_and_query,
		    const char *token, const char *last_event_id,
		    long connect_timeout_ms, hf_httpc_chunk_fn fn, void *arg,
		    long *status, char **err_body, char **err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct stream_ctx s = {0};
	char *url = NULL;
	CURLcode cc;
	int rc;

	*status = 0;
	*err = NULL;
	if (err_body)
		*err_body = NULL;
	rc = init_or_fail(err);
	if (rc)
		return rc;
	s.h = curl_easy_init();
	if (!s.h) {
		*err = hf_xstrdup("cannot create a libcurl handle");
		return HF_EIO;
	}
	s.fn = fn;
	s.arg = arg;
	mark_call(&s);
	url = join_url(base_url, path_and_query);
	easy_setup(s.h, url, token, 0, connect_timeout_ms, &hdrs, errbuf);
	if (last_event_id && !strpbrk(last_event_id, "\r\n")) {
		char *line = hf_xasprintf("Last-Event-ID: %s", last_event_id);

		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	curl_easy_setopt(s.h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(s.h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s.h, CURLOPT_XFERINFOFUNCTION, stream_progress);
	curl_easy_setopt(s.h, CURLOPT_XFERINFODATA, &s);
	cc = curl_easy_perform(s.h);
	curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK && !s.stopped)
		rc = transfer_error(cc, "GET", url, errbuf, err);
	if (!rc && err_body && *status && !(*status >= 200 && *status < 300))
		*err_body = hf_buf_detach(&s.err_body);
	headers_free(hdrs);
	curl_easy_cleanup(s.h);
	hf_buf_release(&s.err_body);
	free(url);
	return rc;
}
