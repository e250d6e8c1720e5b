/*
 * s3.c - the S3 client on libcurl (see s3.h): one easy handle per client,
 * reset before each try so that no option of one request leaks into the
 * next, while its connection cache keeps connections open between them.
 */
#include "volume/s3.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/rng.h"
#include "common/version.h"

/* Bodies of failed requests are read up to this size for their error. */
#define S3_MAX_ERROR_BODY ((size_t)64 * 1024)
/* A ListObjectsV2 page of 1000 keys of 1 KiB each, with room to spare. */
#define S3_MAX_LIST_BODY ((size_t)16 * 1024 * 1024)
#define S3_CONNECT_TIMEOUT_MS 10000L
#define S3_BACKOFF_FIRST_MS 200
#define S3_BACKOFF_MAX_MS 5000
/* How much of bucket/key a message shows. */
#define S3_NAME_SHOWN 96
/* The SHA-256 of no bytes, the payload hash of a request without body. */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct hf_s3 {
	char *endpoint; /* no trailing '/' */
	char *region;
	char *access_key;
	char *secret_key;
	char *ca_file;
	char *sigv4; /* "aws:amz:<region>:s3" */
	long timeout_ms;
	int attempts;
	CURL *curl;
	struct hf_rng rng; /* the jitter of retries */
	char curl_err[CURL_ERROR_SIZE];
};

/* One request, as the operations describe it to s3_request(). */
struct s3_req {
	const char *method; /* GET, PUT, HEAD or DELETE */
	const char *bucket;
	const char *key;   /* NULL: the bucket itself */
	const char *query; /* encoded and sorted, without '?'; NULL: none */
	const void *body;  /* a PUT's body */
	size_t body_len;
	struct hf_buf *out; /* a 2xx answer's body; NULL: dropped */
	size_t max_len;     /* of *out */
	/* Filled in by s3_request on success. */
	long status;
	curl_off_t content_length; /* -1 when the answer had none */
};

/* The state of one try, for libcurl's callbacks. */
struct s3_try {
	CURL *curl;
	const char *body;
	size_t body_len, body_off;
	struct hf_buf *out;
	size_t max_len;
	bool too_big;
	long status; /* read at the first byte of the body */
	struct hf_buf error_body;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- hashes ---- */

static int sha256_hex(const void *data, size_t len, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return HF_EIO;
	for (unsigned i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	return 0;
}

static int md5_base64(const void *data, size_t len, char b64[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL) || n != 16)
		return HF_EIO;
	EVP_EncodeBlock((unsigned char *)b64, md, 16);
	return 0;
}

/* ---- the client ---- */

static void free_secret(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Letters, digits and "-._": what a region or key id may hold here. */
static bool plain_word(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return false;
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Checks an endpoint; returns its length without trailing slashes, or 0. */
static size_t check_endpoint(const char *url, char *err)
{
	const char *auth, *path;
	size_t n;

	if (strncmp(url, "http://", 7) == 0)
		auth = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		auth = url + 8;
	else {
		hf_s3_seterr(err, "s3: the endpoint must start with "
			     "http:// or https://");
		return 0;
	}
	path = auth + strcspn(auth, "/");
	if (path == auth || memchr(auth, '@', (size_t)(path - auth))) {
		hf_s3_seterr(err, "s3: the endpoint needs a host and "
			     "no user name or password (the keys are given "
			     "apart)");
		return 0;
	}
	if (!printable(url) || strpbrk(url, "?#")) {
		hf_s3_seterr(err, "s3: the endpoint may hold no "
			     "query, fragment, space or control character");
		return 0;
	}
	n = strlen(url);
	while (n > (size_t)(path - url) && url[n - 1] == '/')
		n--;
	return n;
}

int hf_s3_new(const struct hf_s3_config *cfg, struct hf_s3 **out, char *err)
{
	struct hf_s3 *s;
	size_t n;

	*out = NULL;
	if (!cfg->endpoint) {
		hf_s3_seterr(err, "s3: no endpoint");
		return HF_EINVAL;
	}
	n = check_endpoint(cfg->endpoint, err);
	if (n == 0)
		return HF_EINVAL;
	if (!plain_word(cfg->region)) {
		hf_s3_seterr(err, "s3: the region must be letters, "
			     "digits, '-', '.' or '_' (such as us-east-1)");
		return HF_EINVAL;
	}
	if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key ||
	    !*cfg->secret_key || !printable(cfg->access_key) ||
	    !printable(cfg->secret_key)) {
		hf_s3_seterr(err, "s3: the access key and the secret "
			     "key must be given, without spaces or control "
			     "characters");
		return HF_EINVAL;
	}
	if (cfg->timeout_ms < 0 || cfg->attempts < 0) {
		hf_s3_seterr(err, "s3: a negative timeout or number "
			     "of attempts");
		return HF_EINVAL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		hf_s3_seterr(err, "s3: libcurl does not start: %s",
			     curl_easy_strerror(curl_init_rc));
		return HF_EIO;
	}
	s = hf_xcalloc(1, sizeof(*s));
	s->curl = curl_easy_init();
	if (!s->curl) {
		free(s);
		hf_s3_seterr(err, "s3: libcurl does not start");
		return HF_EIO;
	}
	s->sigv4 = hf_xasprintf("aws:amz:%s:s3", cfg->region);
	if (curl_easy_setopt(s->curl, CURLOPT_AWS_SIGV4, s->sigv4) !=
	    CURLE_OK) {
		hf_s3_seterr(err, "s3: this libcurl cannot sign "
			     "requests with AWS SigV4 (7.75 or later needed)");
		curl_easy_cleanup(s->curl);
		free(s->sigv4);
		free(s);
		return HF_EIO;
	}
	s->endpoint = hf_xstrndup(cfg->endpoint, n);
	s->region = hf_xstrdup(cfg->region);
	s->access_key = hf_xstrdup(cfg->access_key);
	s->secret_key = hf_xstrdup(cfg->secret_key);
	s->ca_file = cfg->ca_file ? hf_xstrdup(cfg->ca_file) : NULL;
	s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms :
					  HF_S3_DEFAULT_TIMEOUT_MS;
	s->attempts = cfg->attempts ? cfg->attempts : HF_S3_DEFAULT_ATTEMPTS;
	hf_rng_seed(&s->rng, (uint64_t)hf_mono_ns() ^ (uint64_t)getpid() ^
				     (uint64_t)(uintptr_t)s);
	*out = s;
	return 0;
}

void hf_s3_free(struct hf_s3 *s)
{
	if (!s)
		return;
	/* A reset drops libcurl's copy of the password before cleanup. */
	curl_easy_reset(s->curl);
	curl_easy_cleanup(s->curl);
	free(s->endpoint);
	free(s->region);
	free_secret(s->access_key);
	free_secret(s->secret_key);
	free(s->ca_file);
	free(s->sigv4);
	free(s);
}

/* ---- one request ---- */

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct s3_try *t = arg;
	size_t n = size * nmemb;

	if (t->status == 0)
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->status < 200 || t->status > 299) {
		size_t room = S3_MAX_ERROR_BODY - t->error_body.len;

		hf_buf_add(&t->error_body, data, n < room ? n : room);
		return n;
	}
	if (!t->out)
		return n;
	if (n > t->max_len - t->out->len) {
		t->too_big = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	hf_buf_add(t->out, data, n);
	return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_try *t = arg;
	size_t n = size * nitems, left = t->body_len - t->body_off;

	if (n > left)
		n = left;
	if (n)
		memcpy(buf, t->body + t->body_off, n);
	t->body_off += n;
	return n;
}

/* libcurl rewinds the body when it must send it again (a redirect, an
 * answer before the body was sent on a connection it reuses). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct s3_try *t = arg;

	if (origin != SEEK_SET || offset < 0 ||
	    (uint64_t)offset > (uint64_t)t->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static bool transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		return true;
	default:
		return false;
	}
}

static bool transient_http(long status, const char *code)
{
	return status >= 500 || status == 429 ||
	       strcmp(code, "SlowDown") == 0 ||
	       strcmp(code, "RequestTimeout") == 0;
}

static int http_error(long status, const char *code)
{
	if (status == 404)
		return HF_ENOTFOUND;
	if (status == 403)
		return HF_EFORBIDDEN;
	if (status == 401)
		return HF_EAUTH;
	if (status == 409)
		return strncmp(code, "BucketAlready", 13) == 0 ? HF_EEXISTS :
								 HF_ECONFLICT;
	if (status == 413 || strcmp(code, "EntityTooLarge") == 0)
		return HF_ETOOBIG;
	if (transient_http(status, code))
		return HF_EUNAVAIL;
	if (status >= 400 && status < 500)
		return HF_EINVAL;
	return HF_EIO;
}

static const char *reason(long status)
{
	static const struct {
		long status;
		const char *text;
	} reasons[] = {
		{301, "Moved Permanently"}, {307, "Temporary Redirect"},
		{400, "Bad Request"}, {401, "Unauthorized"},
		{403, "Forbidden"}, {404, "Not Found"},
		{405, "Method Not Allowed"}, {409, "Conflict"},
		{411, "Length Required"}, {412, "Precondition Failed"},
		{413, "Payload Too Large"}, {429, "Too Many Requests"},
		{500, "Internal Server Error"}, {501, "Not Implemented"},
		{502, "Bad Gateway"}, {503, "Service Unavailable"},
		{504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < HF_ARRAY_LEN(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].text;
	return "HTTP error";
}

/* "bucket/key" (or "bucket"), cut for a message. */
static void object_name(char *out, size_t cap, const struct s3_req *r)
{
	char *full = r->key ? hf_xasprintf("%s/%s", r->bucket, r->key) :
			      hf_xstrdup(r->bucket);

	hf_s3_printable(out, cap, full, strlen(full));
	free(full);
}

static char *request_url(const struct hf_s3 *s, const struct s3_req *r)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_buf_adds(&b, s->endpoint);
	hf_buf_addc(&b, '/');
	hf_buf_adds(&b, r->bucket); /* checked: nothing to encode */
	if (r->key) {
		hf_buf_addc(&b, '/');
		hf_s3_uri_encode(&b, r->key, true);
	}
	if (r->query) {
		hf_buf_addc(&b, '?');
		hf_buf_adds(&b, r->query);
	}
	return hf_buf_detach(&b);
}

static void set_options(struct hf_s3 *s, const struct s3_req *r,
			struct s3_try *t, const char *url,
			struct curl_slist *headers)
{
	CURL *c = s->curl;

	curl_easy_reset(c);
	s->curl_err[0] = '\0';
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->curl_err);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The key is encoded: "." segments are refused, "%2F" stays. */
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "holdfast/" HF_VERSION);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 s->timeout_ms < S3_CONNECT_TIMEOUT_MS ?
				 s->timeout_ms : S3_CONNECT_TIMEOUT_MS);
	if (s->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, t);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, t);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
}

/* The headers every try sends; the signature covers them. */
static int request_headers(const struct s3_req *r, struct curl_slist **out)
{
	struct curl_slist *h = NULL, *n;
	char hex[65], md5[25], line[128];
	bool put = strcmp(r->method, "PUT") == 0;

	*out = NULL;
	if (put) {
		if (sha256_hex(r->body ? r->body : "", r->body_len, hex) < 0 ||
		    md5_base64(r->body ? r->body : "", r->body_len, md5) < 0)
			return HF_EIO;
	} else {
		memcpy(hex, S3_EMPTY_SHA256, sizeof(hex));
	}
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hex);
	if (!(n = curl_slist_append(h, line)))
		goto nomem;
	h = n;
	if (put) {
		snprintf(line, sizeof(line), "Content-MD5: %s", md5);
		if (!(n = curl_slist_append(h, line)))
			goto nomem;
		h = n;
		if (!(n = curl_slist_append(h, "Content-Type: "
						"application/octet-stream")))
			goto nomem;
		h = n;
	}
	*out = h;
	return 0;
nomem:
	curl_slist_free_all(h);
	return HF_ENOMEM;
}

/* The delay before try `attempt` + 1 (attempt >= 1), with jitter. */
static int64_t backoff_ms(struct hf_s3 *s, int attempt)
{
	int64_t d = S3_BACKOFF_FIRST_MS;

	for (int i = 1; i < attempt && d < S3_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > S3_BACKOFF_MAX_MS)
		d = S3_BACKOFF_MAX_MS;
	return d / 2 + (int64_t)hf_rng_below(&s->rng, (uint64_t)d / 2 + 1);
}

/* Ends err with tail, cutting what is before it if it must. */
static void add_tail(char *err, const char *tail)
{
	size_t n = strlen(err), t = strlen(tail);
	char *head;

	if (n + t >= HF_S3_ERRLEN) {
		head = hf_xstrndup(err, n);
		hf_s3_printable(err, HF_S3_ERRLEN - t, head, n);
		free(head);
		n = strlen(err);
	}
	memcpy(err + n, tail, t + 1);
}

/*
 * Sends r, trying again what is transient. Returns 0 for a 2xx answer
 * (r->status, r->content_length set; r->out holds its body), or an error
 * code with err written.
 */
static int s3_request(struct hf_s3 *s, struct s3_req *r, char *err)
{
	struct s3_try t = {.curl = s->curl};
	struct curl_slist *headers = NULL;
	char name[S3_NAME_SHOWN + 4];
	char *url;
	int rc, attempt;

	object_name(name, sizeof(name), r);
	rc = request_headers(r, &headers);
	if (rc < 0) {
		hf_s3_seterr(err, "s3: %s %s: cannot hash the body",
			     r->method, name);
		return rc;
	}
	url = request_url(s, r);
	hf_buf_init(&t.error_body);
	for (attempt = 1;; attempt++) {
		/* parse_error fills both, each of sizeof(message). */
		char code[160], message[160];
		bool transient;
		CURLcode crc;

		t.body = r->body;
		t.body_len = r->body_len;
		t.body_off = 0;
		t.out = r->out;
		t.max_len = r->max_len;
		t.too_big = false;
		t.status = 0;
		hf_buf_reset(&t.error_body);
		if (r->out)
			hf_buf_reset(r->out);
		set_options(s, r, &t, url, headers);
		crc = curl_easy_perform(s->curl);
		if (crc == CURLE_WRITE_ERROR && t.too_big) {
			hf_s3_seterr(err, "s3: %s %s: the object is "
				     "larger than %zu bytes", r->method, name,
				     r->max_len);
			rc = HF_ETOOBIG;
			break;
		}
		if (crc != CURLE_OK) {
			transient = transient_curl(crc);
			hf_s3_seterr(err, "s3: %s %s: %s%s%s%s",
				     r->method, name, curl_easy_strerror(crc),
				     s->curl_err[0] ? " (" : "", s->curl_err,
				     s->curl_err[0] ? ")" : "");
			rc = transient ? HF_EUNAVAIL : HF_EIO;
		} else {
			curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE,
					  &r->status);
			if (r->status >= 200 && r->status <= 299) {
				curl_easy_getinfo(
					s->curl,
					CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
					&r->content_length);
				rc = 0;
				break;
			}
			if (hf_s3_parse_error(t.error_body.data ?
						      t.error_body.data : "",
					      t.error_body.len, code, message,
					      sizeof(message)) == 0) {
				hf_s3_seterr(err, "s3: %s %s: %ld %s%s%s",
					     r->method, name, r->status, code,
					     message[0] ? ": " : "", message);
			} else {
				code[0] = '\0';
				hf_s3_seterr(err, "s3: %s %s: %ld %s",
					     r->method, name, r->status,
					     reason(r->status));
			}
			transient = transient_http(r->status, code);
			rc = http_error(r->status, code);
		}
		if (!transient || attempt >= s->attempts)
			break;
		hf_sleep_ms(backoff_ms(s, attempt));
	}
	if (rc < 0 && attempt > 1) {
		char tail[48];

		snprintf(tail, sizeof(tail), "; gave up after %d attempts",
			 attempt);
		add_tail(err, tail);
	}
	if (rc < 0 && r->out)
		hf_buf_reset(r->out);
	hf_buf_release(&t.error_body);
	curl_slist_free_all(headers);
	free(url);
	/* Drop libcurl's references to this call's buffers. */
	curl_easy_reset(s->curl);
	return rc;
}

static int check_names(const char *bucket, const char *key, char *err)
{
	int rc = hf_s3_check_bucket(bucket, err);

	if (rc == 0 && key)
		rc = hf_s3_check_key(key, err);
	return rc;
}

/* ---- operations ---- */

int hf_s3_put(struct hf_s3 *s, const char *bucket, const char *key,
	      const void *data, size_t len, char *err)
{
	struct s3_req r = {.method = "PUT", .bucket = bucket, .key = key,
			   .body = data, .body_len = len};
	int rc = check_names(bucket, key, err);

	return rc < 0 ? rc : s3_request(s, &r, err);
}

int hf_s3_get(struct hf_s3 *s, const char *bucket, const char *key,
	      size_t max_len, struct hf_buf *out, char *err)
{
	struct s3_req r = {.method = "GET", .bucket = bucket, .key = key,
			   .out = out, .max_len = max_len};
	int rc = check_names(bucket, key, err);

	hf_buf_reset(out);
	/* Keep out a C string even for an empty object. */
	hf_buf_add(out, "", 0);
	return rc < 0 ? rc : s3_request(s, &r, err);
}

int hf_s3_head(struct hf_s3 *s, const char *bucket, const char *key,
	       uint64_t *size, char *err)
{
	struct s3_req r = {.method = "HEAD", .bucket = bucket, .key = key};
	char name[S3_NAME_SHOWN + 4];
	int rc = check_names(bucket, key, err);

	if (rc == 0)
		rc = s3_request(s, &r, err);
	if (rc < 0)
		return rc;
	if (r.content_length < 0) {
		object_name(name, sizeof(name), &r);
		hf_s3_seterr(err, "s3: HEAD %s: the answer has no "
			     "Content-Length", name);
		return HF_EPARSE;
	}
	*size = (uint64_t)r.content_length;
	return 0;
}

int hf_s3_delete(struct hf_s3 *s, const char *bucket, const char *key,
		 char *err)
{
	struct s3_req r = {.method = "DELETE", .bucket = bucket, .key = key};
	int rc = check_names(bucket, key, err);

	return rc < 0 ? rc : s3_request(s, &r, err);
}

int hf_s3_create_bucket(struct hf_s3 *s, const char *bucket, char *err)
{
	struct s3_req r = {.method = "PUT", .bucket = bucket};
	char *body = NULL;
	int rc = check_names(bucket, NULL, err);

	if (rc < 0)
		return rc;
	/* us-east-1 is S3's default and refuses to be named. */
	if (strcmp(s->region, "us-east-1") != 0) {
		body = hf_xasprintf("<CreateBucketConfiguration xmlns=\"http://"
				    "s3.amazonaws.com/doc/2006-03-01/\">"
				    "<LocationConstraint>%s"
				    "</LocationConstraint>"
				    "</CreateBucketConfiguration>",
				    s->region);
		r.body = body;
		r.body_len = strlen(body);
	}
	rc = s3_request(s, &r, err);
	free(body);
	return rc;
}

int hf_s3_list_page(struct hf_s3 *s, const char *bucket, const char *prefix,
		    const char *token, int max_keys, struct hf_s3_list *out,
		    char *err)
{
	struct s3_req r = {.method = "GET", .bucket = bucket,
			   .max_len = S3_MAX_LIST_BODY};
	struct hf_buf query = HF_BUF_INIT, body = HF_BUF_INIT;
	char why[HF_S3_ERRLEN], name[S3_NAME_SHOWN + 4];
	int rc = check_names(bucket, NULL, err);

	if (rc < 0)
		return rc;
	if (max_keys < 0) {
		hf_s3_seterr(err, "s3: list: max_keys is negative");
		return HF_EINVAL;
	}
	/*
	 * Sorted by name, as the signature's canonical query must be and
	 * libcurl 7.88 does not make it. encoding-type=url lets S3 send keys
	 * that XML 1.0 cannot carry; the answer says when it did.
	 */
	if (token) {
		hf_buf_adds(&query, "continuation-token=");
		hf_s3_uri_encode(&query, token, false);
		hf_buf_addc(&query, '&');
	}
	hf_buf_adds(&query, "encoding-type=url&list-type=2");
	if (max_keys > 0)
		hf_buf_addf(&query, "&max-keys=%d", max_keys);
	if (prefix && *prefix) {
		hf_buf_adds(&query, "&prefix=");
		hf_s3_uri_encode(&query, prefix, false);
	}
	r.query = hf_buf_str(&query);
	r.out = &body;
	rc = s3_request(s, &r, err);
	if (rc == 0) {
		rc = hf_s3_parse_list(hf_buf_str(&body), body.len, out, why);
		if (rc < 0) {
			object_name(name, sizeof(name), &r);
			hf_s3_seterr(err, "s3: GET %s: %s", name,
				     why);
		}
	}
	hf_buf_release(&body);
	hf_buf_release(&query);
	return rc;
}

int hf_s3_list(struct hf_s3 *s, const char *bucket, const char *prefix,
	       int max_keys, struct hf_s3_list *out, char *err)
{
	struct hf_s3_list all = HF_S3_LIST_INIT;
	char *token = NULL;
	int rc;

	for (;;) {
		struct hf_s3_list page = HF_S3_LIST_INIT;

		rc = hf_s3_list_page(s, bucket, prefix, token, max_keys, &page,
				     err);
		if (rc < 0)
			break;
		for (size_t i = 0; i < page.len; i++) {
			*HF_VEC_PUSH(&all) = page.items[i];
			page.items[i].key = NULL;
		}
		if (!page.truncated) {
			hf_s3_list_release(&page);
			break;
		}
		if (token && strcmp(token, page.next_token) == 0) {
			hf_s3_seterr(err, "s3: GET %s: the store "
				     "handed the same continuation token twice",
				     bucket);
			hf_s3_list_release(&page);
			rc = HF_EPARSE;
			break;
		}
		free(token);
		token = page.next_token;
		page.next_token = NULL;
		hf_s3_list_release(&page);
	}
	free(token);
	if (rc < 0) {
		hf_s3_list_release(&all);
		return rc;
	}
	*out = all;
	return 0;
}
