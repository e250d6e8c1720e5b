/*
 * store_etcd.c - the cluster store backend: etcd v3 (3.4 or newer) through
 * its JSON gateway (POST /v3/kv/range, /v3/kv/txn, /v3/lease/...), with
 * libcurl and jansson. Keys and values travel base64-encoded; 64-bit
 * integers as decimal strings, as proto3's JSON mapping wants.
 *
 * The mapping is one to one (docs/store.md): a holdfast transaction is one
 * etcd Txn whose compares are the holdfast compares (absent: create_revision
 * == 0, present: create_revision > 0, mod_rev N: mod_revision == N) and
 * whose success branch holds the puts and deletes, a delete prefix being a
 * DeleteRange to hf_store_prefix_end(). Its failure branch reads every
 * compared key (keys only), so that a refused transaction can say which
 * compare failed, in the same words as the other backends. Revisions are
 * etcd's, from the response header. Reads are linearizable (etcd's
 * default): a read on a member cut off from the quorum fails rather than
 * answering from the past.
 *
 * TLS (etcds://) is the same backend over HTTPS: libcurl always verifies
 * the server's certificate (against cacert=, or the system's CA store) and
 * that it names the host as written in the URL, and presents cert= and
 * key= as the client certificate when given (for etcd's
 * --client-cert-auth). There is no option to skip the checks.
 *
 * Namespace: with prefix=/some/path every key holdfast names is stored
 * under that prefix in etcd. The mapping happens here and nowhere else:
 * every key or range sent gets the prefix (j_key(), add_prefix_range()),
 * every key read back loses it (parse_kv()), and the ranges never reach
 * outside it, so holdfast sees only its namespace. Revisions and leases
 * stay etcd-wide.
 *
 * Endpoints: every request starts with the endpoint that answered last and
 * moves on to the next when one cannot be reached, so a dead member costs
 * one connect timeout, once. A request that may have reached an endpoint
 * (sent, then no answer in time) is repeated elsewhere only when repeating
 * it is harmless - reads and lease grants and keep-alives; a transaction is
 * not, since it may have been applied, and fails with HF_EUNAVAIL saying
 * its outcome is unknown. etcd's own "no leader" answer means nothing was
 * applied, so that one moves on for every request.
 *
 * The backend is not thread-safe: store.c serialises calls with the
 * handle's mutex, which also makes the one curl easy handle (and its
 * kept-alive connection) safe to reuse.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"

#define ETCD_DEFAULT_PORT 2379
#define ETCD_TIMEOUT_MS 5000L
#define ETCD_CONNECT_TIMEOUT_MS 1000L
/* Bounds on the URL's timeout options, in ms. */
#define ETCD_TIMEOUT_MIN 10L
#define ETCD_TIMEOUT_MAX 600000L
/* Answers larger than this are refused rather than held in memory. */
#define ETCD_MAX_ANSWER ((size_t)1024 * 1024 * 1024)
/*
 * Longest prefix= accepted, in bytes. Every key carries it, and etcd counts
 * keys against its request limit, so it is kept short.
 */
#define ETCD_PREFIX_MAX 256
/*
 * Operations per transaction the server's batches are cut to: under etcd's
 * default --max-txn-ops (128) with the fence's compare, and a few hundred
 * kB of its default 1.5 MiB request.
 */
#define ETCD_TXN_OPS 64

/* The gRPC status codes etcd's gateway puts in its error bodies. */
enum grpc_code {
	GRPC_CANCELLED = 1,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/*
 * etcd errors holdfast knows by their message, with what they become and a
 * hint for the operator. Checked in order, before the code table below.
 */
static const struct {
	const char *match;
	int hf;
	const char *hint;
} known_errors[] = {
	{"request is too large", HF_ETOOBIG,
	 "the transaction is over the etcd server's --max-request-bytes "
	 "(1.5 MiB by default; it bounds a whole transaction, keys and "
	 "values together)"},
	{"too many operations in txn request", HF_ETOOBIG,
	 "the transaction has more operations than the etcd server's "
	 "--max-txn-ops (128 by default)"},
	{"larger than max", HF_ETOOBIG,
	 "the message is over a gRPC size limit of the etcd server"},
	{"requested lease not found", HF_ENOTFOUND,
	 "the lease has expired or was revoked"},
	{"no leader", HF_EUNAVAIL,
	 "the etcd member has lost its quorum (nothing was applied)"},
};

/* The rest, by gRPC code. */
static const struct {
	int code;
	int hf;
} code_map[] = {
	{GRPC_CANCELLED, HF_EUNAVAIL},
	{GRPC_INVALID_ARGUMENT, HF_EINVAL},
	{GRPC_DEADLINE_EXCEEDED, HF_EUNAVAIL},
	{GRPC_NOT_FOUND, HF_ENOTFOUND},
	{GRPC_PERMISSION_DENIED, HF_EFORBIDDEN},
	{GRPC_RESOURCE_EXHAUSTED, HF_ETOOBIG},
	{GRPC_FAILED_PRECONDITION, HF_EINVAL},
	{GRPC_OUT_OF_RANGE, HF_EINVAL},
	{GRPC_UNAVAILABLE, HF_EUNAVAIL},
	{GRPC_UNAUTHENTICATED, HF_EAUTH},
};

struct etcd_endpoint {
	char *name; /* host:port, for messages */
	char *base; /* http://host:port or https://host:port */
};

/* The answer being received. */
struct etcd_answer {
	struct hf_buf body;
	bool too_big;
};

struct store_etcd {
	HF_VEC(struct etcd_endpoint) eps;
	size_t cur; /* the endpoint that answered last: tried first */
	long timeout_ms;
	long connect_timeout_ms;
	bool tls; /* etcds://: HTTPS, peer and host name always verified */
	/*
	 * TLS files, absolute (made so at open, as the server may change its
	 * working directory); NULL when not given. cacert NULL means the
	 * system's CA store.
	 */
	char *cacert;
	char *cert;
	char *key;
	/* The namespace: every etcd key starts with it. NULL for none. */
	char *prefix;
	size_t prefix_len;
	CURL *curl;
	struct curl_slist *headers;
	struct etcd_answer answer;
	char curl_err[CURL_ERROR_SIZE];
};

/*
 * libcurl's global set-up is not thread-safe in every build and must run
 * once per process before the first handle; this is the module's only
 * static state.
 */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ------------------------------------------------------------------ */
/* Base64 (RFC 4648, with padding: what proto3's JSON mapping uses)     */

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Returns a new NUL-terminated string the caller frees. */
static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = hf_xmalloc((len + 2) / 3 * 4 + 1);
	size_t o = 0, i = 0;

	for (; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = b64_chars[(v >> 6) & 63];
		out[o++] = b64_chars[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = b64_chars[v >> 18];
		out[o++] = b64_chars[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

/*
 * Decodes base64 text into a new buffer of *len bytes followed by a NUL
 * (the caller frees it). Returns -1, with *out NULL, for text that is not
 * base64.
 */
static int b64_decode(const char *in, char **out, size_t *len)
{
	size_t n = strlen(in), o = 0;
	char *buf;

	*out = NULL;
	if (n % 4)
		return -1;
	buf = hf_xmalloc(n / 4 * 3 + 1);
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_value(in[i + k]);
			if (v[k] >= 0 && pad == 0)
				continue;
			/* Padding: only the last one or two of the text. */
			if (in[i + k] != '=' || i + 4 != n || k < 2)
				goto bad;
			v[k] = 0;
			pad++;
		}
		buf[o++] = (char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			buf[o++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			buf[o++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return 0;
bad:
	free(buf);
	return -1;
}

/* ------------------------------------------------------------------ */
/* JSON helpers                                                         */

/* A JSON string of base64 text for len bytes of data. */
static json_t *j_b64(const void *data, size_t len)
{
	char *text = b64_encode(data, len);
	json_t *j = json_string_nocheck(text);

	free(text);
	return j;
}

static json_t *j_b64s(const char *s)
{
	return j_b64(s, strlen(s));
}

/* A 64-bit integer as proto3's JSON mapping writes it: a string. */
static json_t *j_int64(int64_t v)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", (long long)v);
	return json_string_nocheck(text);
}

/* Reads a 64-bit field (string or number); 0 when absent, as in proto3. */
static int64_t field_int64(const json_t *obj, const char *name)
{
	const json_t *j = json_object_get(obj, name);

	if (json_is_integer(j))
		return (int64_t)json_integer_value(j);
	if (json_is_string(j))
		return (int64_t)strtoll(json_string_value(j), NULL, 10);
	return 0;
}

static int64_t header_revision(const json_t *answer)
{
	return field_int64(json_object_get(answer, "header"), "revision");
}

/* The etcd key of a holdfast key: the namespace prefix, then the key. */
static char *etcd_key(const struct store_etcd *e, const char *key)
{
	return hf_xasprintf("%s%s", e->prefix ? e->prefix : "", key);
}

/* A JSON string of base64 text for the etcd key of a holdfast key. */
static json_t *j_key(const struct store_etcd *e, const char *key)
{
	char *full;
	json_t *j;

	if (!e->prefix)
		return j_b64s(key);
	full = etcd_key(e, key);
	j = j_b64s(full);
	free(full);
	return j;
}

/*
 * The etcd key range of a holdfast prefix: [key, range_end), range_end
 * "\0" meaning "to the end". etcd has no empty key: "\0" is the smallest,
 * and as range_end it means "every key from key on".
 *
 * In a namespace the range is that of namespace + prefix. For the empty
 * holdfast prefix (list "") it is exactly the namespace, less the key
 * equal to the namespace itself (another client's, as a holdfast key is
 * never empty): it starts at namespace + "\0", the next key after it.
 */
static void add_prefix_range(const struct store_etcd *e, json_t *req,
			     const char *prefix)
{
	char *full = etcd_key(e, prefix);
	char *end = hf_store_prefix_end(full);

	if (*prefix)
		json_object_set_new(req, "key", j_b64s(full));
	else /* "\0", or namespace + "\0": the string's own NUL */
		json_object_set_new(req, "key", j_b64(full, strlen(full) + 1));
	if (end)
		json_object_set_new(req, "range_end", j_b64s(end));
	else
		json_object_set_new(req, "range_end", j_b64("", 1));
	free(end);
	free(full);
}

/*
 * Fills kv from one of etcd's KeyValue objects, the namespace taken off
 * its key; *lease may be NULL. Every request stays within the namespace,
 * so a key outside it is etcd answering something other than asked.
 */
static int parse_kv(const struct store_etcd *e, const json_t *j,
		    struct hf_store_kv *kv, int64_t *lease, struct hf_buf *err)
{
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *value = json_string_value(json_object_get(j, "value"));
	size_t len = 0;

	if (!key || b64_decode(key, &kv->key, &len) < 0 || len == 0 ||
	    strlen(kv->key) != len) {
		hf_buf_adds(err, "etcd answered a key that is not valid base64 "
				 "of a holdfast key");
		goto bad;
	}
	if (e->prefix) {
		if (len <= e->prefix_len ||
		    memcmp(kv->key, e->prefix, e->prefix_len) != 0) {
			hf_buf_addf(err, "etcd answered the key '%s', which is "
					 "not under the store's prefix '%s'",
				    kv->key, e->prefix);
			goto bad;
		}
		memmove(kv->key, kv->key + e->prefix_len,
			len - e->prefix_len + 1);
	}
	/* proto3 leaves empty values out. */
	if (b64_decode(value ? value : "", &kv->value, &kv->len) < 0) {
		hf_buf_addf(err, "etcd answered a value for '%s' that is not "
				 "valid base64",
			    kv->key);
		goto bad;
	}
	kv->create_rev = field_int64(j, "create_revision");
	kv->mod_rev = field_int64(j, "mod_revision");
	kv->version = field_int64(j, "version");
	if (lease)
		*lease = field_int64(j, "lease");
	return 0;
bad:
	hf_store_kv_release(kv);
	return HF_EIO;
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct etcd_answer *a = arg;

	if (a->body.len + n > ETCD_MAX_ANSWER) {
		a->too_big = true;
		return 0;
	}
	hf_buf_add(&a->body, data, n);
	return n;
}

/*
 * What to check, as "; ..." to follow the reason, when a connection
 * failed in a way that points at the set-up rather than at the network
 * (TLS, or a scheme that does not match what etcd serves); "" otherwise.
 */
static const char *connect_hint(const struct store_etcd *e, CURLcode cc)
{
	if (!e->tls) {
		/* etcd closes a plain HTTP connection to a TLS port. */
		if (cc == CURLE_GOT_NOTHING)
			return "; if this etcd serves TLS, use etcds://";
		return "";
	}
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return e->cacert ?
			       "; the etcd server's certificate must be signed "
			       "by a CA in cacert= and name the host as the "
			       "URL writes it" :
			       "; the etcd server's certificate must be signed "
			       "by a CA of the system's CA store, as no "
			       "cacert= is given, and name the host as the URL "
			       "writes it";
	case CURLE_SSL_CERTPROBLEM:
		return "; check the client certificate cert= and its key key=: "
		       "PEM files, the key matching the certificate";
	case CURLE_SSL_CACERT_BADFILE:
		return "; cacert= must be a PEM file of CA certificates";
	case CURLE_SSL_CONNECT_ERROR:
		/*
		 * A handshake that the server broke off without a TLS alert
		 * ("wrong version number", or etcd hanging up on a client
		 * hello): the port speaks plain HTTP. With an alert, the
		 * server refused us, as below.
		 */
		if (!strstr(e->curl_err, "alert"))
			return "; does this etcd serve TLS on this port? For "
			       "plain HTTP use etcd://";
		/* fall through */
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/*
		 * etcd checks the client certificate when the handshake is
		 * done as far as we can tell (TLS 1.3), so a refusal shows
		 * as an alert or a dropped connection at the first send or
		 * receive.
		 */
		return e->cert ? "; if etcd runs with --client-cert-auth, the "
				 "client certificate cert= must be signed by a "
				 "CA of its --trusted-ca-file" :
				 "; if etcd runs with --client-cert-auth, it "
				 "needs a client certificate: give cert= and "
				 "key=";
	default:
		return "";
	}
}

/*
 * Posts body to one endpoint. Returns 0 once an HTTP answer came (any
 * status: *status and e->answer have it), or HF_EUNAVAIL with the reason in
 * why and *maybe_sent telling whether the request may have reached etcd.
 */
static int post_once(struct store_etcd *e, size_t ep, const char *path,
		     const char *body, long *status, bool *maybe_sent,
		     struct hf_buf *why)
{
	char *url = hf_xasprintf("%s%s", e->eps.items[ep].base, path);
	curl_off_t pretransfer = 0;
	long sent = 0, os_errno = 0;
	CURLcode cc;
	int rc = 0;

	hf_buf_reset(&e->answer.body);
	e->answer.too_big = false;
	e->curl_err[0] = '\0';
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(body));
	cc = curl_easy_perform(e->curl);
	*maybe_sent = false;
	if (cc == CURLE_OK) {
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
		goto out;
	}
	if (cc == CURLE_WRITE_ERROR && e->answer.too_big) {
		hf_buf_addf(why, "the answer is over %zu bytes", ETCD_MAX_ANSWER);
		*maybe_sent = true;
		rc = HF_EUNAVAIL;
		goto out;
	}
	/* Once curl began sending, etcd may have the request. */
	curl_easy_getinfo(e->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	curl_easy_getinfo(e->curl, CURLINFO_REQUEST_SIZE, &sent);
	curl_easy_getinfo(e->curl, CURLINFO_OS_ERRNO, &os_errno);
	*maybe_sent = pretransfer > 0 || sent > 0;
	if (cc == CURLE_OPERATION_TIMEDOUT && *maybe_sent)
		hf_buf_addf(why, "no answer within %ld ms", e->timeout_ms);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		hf_buf_addf(why, "could not connect within %ld ms",
			    e->connect_timeout_ms);
	else if (os_errno)
		hf_buf_addf(why, "%s: %s", curl_easy_strerror(cc),
			    strerror((int)os_errno));
	else if (e->curl_err[0])
		hf_buf_addf(why, "%s", e->curl_err);
	else
		hf_buf_adds(why, curl_easy_strerror(cc));
	hf_buf_adds(why, connect_hint(e, cc));
	rc = HF_EUNAVAIL;
out:
	free(url);
	return rc;
}

/*
 * Turns a non-200 answer into an error. *elsewhere is set when the error
 * says the request was not applied and another member may do better.
 */
static int answer_error(struct store_etcd *e, const char *name,
			const char *path, long status, bool *elsewhere,
			struct hf_buf *err)
{
	const struct hf_buf *body = &e->answer.body;
	json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
	const char *msg = NULL;
	int code = 0, rc = HF_EIO;

	*elsewhere = false;
	if (json_is_object(j)) {
		msg = json_string_value(json_object_get(j, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(j, "error"));
		code = (int)json_integer_value(json_object_get(j, "code"));
	}
	if (!msg) {
		/* A gateway or proxy in front of etcd failing: unavailable. */
		if (status >= 500)
			rc = HF_EUNAVAIL;
		if (status == 404) {
			hf_buf_addf(err,
				    "%s answered HTTP 404 to POST %s: is it "
				    "etcd 3.4 or newer (older ones serve the "
				    "gateway elsewhere)?",
				    name, path);
			rc = HF_EUNSUPPORTED;
		} else {
			hf_buf_addf(err, "%s answered HTTP %ld to POST %s: %.200s",
				    name, status, path, hf_buf_str(body));
		}
		goto out;
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(known_errors); i++) {
		if (!strstr(msg, known_errors[i].match))
			continue;
		hf_buf_addf(err, "etcd at %s: %s: %s", name, msg,
			    known_errors[i].hint);
		rc = known_errors[i].hf;
		*elsewhere = rc == HF_EUNAVAIL;
		goto out;
	}
	hf_buf_addf(err, "etcd at %s: %s", name, msg);
	for (size_t i = 0; i < HF_ARRAY_LEN(code_map); i++)
		if (code_map[i].code == code)
			rc = code_map[i].hf;
out:
	json_decref(j);
	return rc;
}

/*
 * Posts a request (req, consumed) to path, trying the endpoints in turn,
 * and parses the answer into *answer (the caller decrefs it). repeatable
 * says whether the request may be sent to another endpoint after it may
 * have reached one.
 */
static int etcd_call(struct store_etcd *e, const char *path, json_t *req,
		     bool repeatable, json_t **answer, struct hf_buf *err)
{
	char *body = json_dumps(req, JSON_COMPACT);
	struct hf_buf tried = HF_BUF_INIT, why = HF_BUF_INIT;
	size_t n = e->eps.len;
	int rc = HF_EUNAVAIL;

	*answer = NULL;
	json_decref(req);
	if (!body) {
		hf_buf_adds(err, "could not encode a request to etcd");
		rc = HF_EINTERNAL;
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		size_t ep = (e->cur + k) % n;
		const char *name = e->eps.items[ep].name;
		bool maybe_sent = false, elsewhere = false;
		long status = 0;
		json_error_t jerr;

		hf_buf_reset(&why);
		rc = post_once(e, ep, path, body, &status, &maybe_sent, &why);
		if (rc && maybe_sent && !repeatable) {
			hf_buf_addf(err,
				    "etcd at %s: %s, after the request was "
				    "sent: whether it was applied is unknown",
				    name, hf_buf_str(&why));
			/* The next request starts with the next endpoint: a
			 * member cut off from its quorum accepts connections
			 * but never answers, and would hold every write. */
			e->cur = (ep + 1) % n;
			goto out;
		}
		if (rc) {
			hf_buf_addf(&tried, "%s%s (%s)", tried.len ? "; " : "",
				    name, hf_buf_str(&why));
			continue;
		}
		if (status != 200) {
			rc = answer_error(e, name, path, status, &elsewhere,
					  &why);
			/* A read may go on after any unavailability (a
			 * member cut off from its quorum times out). */
			if (elsewhere || (repeatable && rc == HF_EUNAVAIL)) {
				hf_buf_addf(&tried, "%s%s", tried.len ? "; " : "",
					    hf_buf_str(&why));
				continue;
			}
			hf_buf_adds(err, hf_buf_str(&why));
			if (rc == HF_EUNAVAIL) {
				hf_buf_adds(err, " (whether the request was "
						 "applied is unknown)");
				e->cur = (ep + 1) % n;
			}
			goto out;
		}
		*answer = json_loadb(e->answer.body.data ? e->answer.body.data :
							   "",
				     e->answer.body.len, 0, &jerr);
		if (!json_is_object(*answer)) {
			json_decref(*answer);
			*answer = NULL;
			hf_buf_addf(err, "etcd at %s answered POST %s with "
					 "invalid JSON: %s",
				    name, path, jerr.text);
			rc = HF_EIO;
			goto out;
		}
		e->cur = ep;
		rc = 0;
		goto out;
	}
	hf_buf_addf(err, "no etcd endpoint could serve the request: %s",
		    hf_buf_str(&tried));
	rc = HF_EUNAVAIL;
out:
	/* Do not hold on to the memory of one large answer. */
	if (e->answer.body.cap > 1024 * 1024)
		hf_buf_release(&e->answer.body);
	free(body);
	hf_buf_release(&tried);
	hf_buf_release(&why);
	return rc;
}

/* ------------------------------------------------------------------ */
/* URL: endpoints                                                       */

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* Adds one "host[:port]" or "[v6][:port]" endpoint of length n. */
static int add_endpoint(struct store_etcd *e, const char *s, size_t n,
			struct hf_buf *err)
{
	const char *host_end, *colon = NULL;
	struct etcd_endpoint *ep;
	long port = ETCD_DEFAULT_PORT;

	if (n == 0) {
		hf_buf_adds(err, "the etcd store URL has an empty endpoint");
		return HF_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' || s[i] == '@' || s[i] == '#' ||
		    isspace((unsigned char)s[i]) || !isprint((unsigned char)s[i])) {
			hf_buf_addf(err,
				    "the etcd endpoint '%.*s' is not HOST:PORT "
				    "(no paths, users or spaces)",
				    (int)n, s);
			return HF_EINVAL;
		}
	}
	if (s[0] == '[') {
		host_end = memchr(s, ']', n);
		if (!host_end)
			goto bad;
		host_end++;
		if (host_end < s + n) {
			if (*host_end != ':')
				goto bad;
			colon = host_end;
		}
	} else {
		colon = memchr(s, ':', n);
		host_end = colon ? colon : s + n;
		if (colon && memchr(colon + 1, ':', (size_t)(s + n - colon - 1)))
			goto bad;
	}
	if (host_end == s)
		goto bad;
	if (colon) {
		size_t plen = (size_t)(s + n - colon - 1);

		if (!all_digits(colon + 1, plen) || plen > 5)
			goto bad;
		port = strtol(colon + 1, NULL, 10);
		if (port < 1 || port > 65535)
			goto bad;
	}
	ep = HF_VEC_PUSH(&e->eps);
	ep->name = hf_xasprintf("%.*s:%ld", (int)(host_end - s), s, port);
	ep->base = hf_xasprintf("%s://%s", e->tls ? "https" : "http",
				ep->name);
	return 0;
bad:
	hf_buf_addf(err,
		    "the etcd endpoint '%.*s' is not HOST:PORT or [IPv6]:PORT "
		    "with a port from 1 to 65535",
		    (int)n, s);
	return HF_EINVAL;
}

/* ------------------------------------------------------------------ */
/* URL options                                                          */

enum etcd_opt_kind {
	OPT_MS,     /* milliseconds, into a long */
	OPT_PREFIX, /* the namespace, into a char * */
	OPT_FILE,   /* a TLS file, into a char *; etcds:// only */
};

static const struct etcd_option {
	const char *name;
	enum etcd_opt_kind kind;
	size_t offset; /* of the field in struct store_etcd */
} etcd_options[] = {
	{"timeout_ms", OPT_MS, offsetof(struct store_etcd, timeout_ms)},
	{"connect_timeout_ms", OPT_MS,
	 offsetof(struct store_etcd, connect_timeout_ms)},
	{"prefix", OPT_PREFIX, offsetof(struct store_etcd, prefix)},
	{"cacert", OPT_FILE, offsetof(struct store_etcd, cacert)},
	{"cert", OPT_FILE, offsetof(struct store_etcd, cert)},
	{"key", OPT_FILE, offsetof(struct store_etcd, key)},
};

#define ETCD_OPTIONS_USAGE                                                     \
	"timeout_ms=N, connect_timeout_ms=N, prefix=/PATH, and for etcds:// " \
	"cacert=FILE, cert=FILE, key=FILE"

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Decodes the %XX escapes of an option's value (n bytes) into a new string
 * the caller frees, so that a path may hold '&', '?' or '%'. *len gets the
 * decoded length, which differs from strlen() when the value has a %00.
 * Returns -1, allocating nothing, for a '%' not followed by two hex digits.
 */
static int pct_decode(const char *s, size_t n, char **out, size_t *len)
{
	char *buf = hf_xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '%') {
			buf[o++] = s[i];
			continue;
		}
		if (i + 2 >= n) {
			free(buf);
			return -1;
		}
		hi = hex_value(s[i + 1]);
		lo = hex_value(s[i + 2]);
		if (hi < 0 || lo < 0) {
			free(buf);
			return -1;
		}
		buf[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return 0;
}

/*
 * Checks a prefix= value (len bytes, NUL-terminated) and keeps it: the
 * store takes ownership of v on success only.
 */
static int set_prefix(struct store_etcd *e, char *v, size_t len,
		      struct hf_buf *err)
{
	if (len == 0) {
		hf_buf_adds(err, "the etcd store option prefix= is empty: give "
				 "a path such as prefix=/holdfast/, or leave "
				 "the option out to use etcd's whole keyspace");
		return HF_EINVAL;
	}
	if (strlen(v) != len) {
		hf_buf_adds(err, "the etcd store prefix has a NUL byte (%00): "
				 "holdfast's keys hold none");
		return HF_EINVAL;
	}
	if (len > ETCD_PREFIX_MAX) {
		hf_buf_addf(err, "the etcd store prefix '%.40s...' is longer "
				 "than %d bytes (it is part of every key)",
			    v, ETCD_PREFIX_MAX);
		return HF_ETOOBIG;
	}
	if (v[0] != '/') {
		hf_buf_addf(err, "the etcd store prefix '%s' does not start "
				 "with '/' (write it as a path, such as "
				 "/holdfast/)",
			    v);
		return HF_EINVAL;
	}
	e->prefix = v;
	e->prefix_len = len;
	return 0;
}

/* Parses the value of one option (text: the whole "name=value"). */
static int set_option(struct store_etcd *e, const struct etcd_option *o,
		      const char *text, size_t n, struct hf_buf *err)
{
	const char *v = text + strlen(o->name) + 1;
	size_t vn = n - strlen(o->name) - 1, len = 0;
	char *decoded = NULL;
	int rc = 0;

	if (o->kind == OPT_MS) {
		if (!all_digits(v, vn) || vn > 6 ||
		    strtol(v, NULL, 10) < ETCD_TIMEOUT_MIN ||
		    strtol(v, NULL, 10) > ETCD_TIMEOUT_MAX) {
			hf_buf_addf(err,
				    "the etcd store option '%.*s' needs a number "
				    "of milliseconds from %ld to %ld",
				    (int)n, text, ETCD_TIMEOUT_MIN,
				    ETCD_TIMEOUT_MAX);
			return HF_EINVAL;
		}
		*(long *)((char *)e + o->offset) = strtol(v, NULL, 10);
		return 0;
	}
	if (o->kind == OPT_FILE && !e->tls) {
		hf_buf_addf(err,
			    "the etcd store option '%.*s' is for etcds:// "
			    "(etcd over TLS) only: etcd:// speaks plain HTTP",
			    (int)n, text);
		return HF_EINVAL;
	}
	if (pct_decode(v, vn, &decoded, &len) < 0) {
		hf_buf_addf(err,
			    "the etcd store option '%.*s' has a '%%' that is "
			    "not followed by two hex digits (write %%25 for "
			    "'%%')",
			    (int)n, text);
		return HF_EINVAL;
	}
	if (o->kind == OPT_PREFIX) {
		rc = set_prefix(e, decoded, len, err);
	} else if (len == 0) {
		hf_buf_addf(err, "the etcd store option %s= names no file",
			    o->name);
		rc = HF_EINVAL;
	} else if (strlen(decoded) != len) {
		hf_buf_addf(err, "the etcd store option %s= has a NUL byte "
				 "(%%00)",
			    o->name);
		rc = HF_EINVAL;
	} else {
		*(char **)((char *)e + o->offset) = decoded;
	}
	if (rc)
		free(decoded);
	return rc;
}

/* Parses "name=value&..." options, each at most once. */
static int parse_options(struct store_etcd *e, const char *opts,
			 struct hf_buf *err)
{
	unsigned int seen = 0;

	while (*opts) {
		size_t n = strcspn(opts, "&");
		const char *eq = memchr(opts, '=', n);
		size_t i;
		int rc;

		for (i = 0; i < HF_ARRAY_LEN(etcd_options); i++)
			if (eq && (size_t)(eq - opts) ==
					  strlen(etcd_options[i].name) &&
			    strncmp(opts, etcd_options[i].name,
				    (size_t)(eq - opts)) == 0)
				break;
		if (i == HF_ARRAY_LEN(etcd_options)) {
			hf_buf_addf(err,
				    "unknown etcd store option '%.*s' (known: "
				    ETCD_OPTIONS_USAGE ")",
				    (int)n, opts);
			return HF_EINVAL;
		}
		if (seen & 1u << i) {
			hf_buf_addf(err, "the etcd store option %s= is given "
					 "twice",
				    etcd_options[i].name);
			return HF_EINVAL;
		}
		seen |= 1u << i;
		rc = set_option(e, &etcd_options[i], opts, n, err);
		if (rc)
			return rc;
		opts += n;
		if (*opts == '&')
			opts++;
	}
	if (e->connect_timeout_ms > e->timeout_ms)
		e->connect_timeout_ms = e->timeout_ms;
	return 0;
}

/*
 * Checks that a TLS file can be read now, so that a wrong path is an
 * error at open that names it, not a TLS failure at the first connection;
 * and makes *path absolute, as libcurl reads the file again for every new
 * connection and the server may change its working directory. Symbolic
 * links are kept as such: a certificate renewed by swapping a link (as
 * Kubernetes does with secrets) is picked up by the next connection.
 */
static int check_file(const char *name, char **path, struct hf_buf *err)
{
	struct stat st;
	char cwd[PATH_MAX];
	int fd, rc = 0;

	fd = open(*path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int errnum = errno;

		hf_buf_addf(err, "the etcd store option %s=%s: cannot read "
				 "the file: %s",
			    name, *path, strerror(errnum));
		return errnum == ENOENT || errnum == ENOTDIR ? HF_ENOTFOUND :
							      HF_EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		hf_buf_addf(err, "the etcd store option %s=%s: not a file",
			    name, *path);
		rc = HF_EINVAL;
		goto out;
	}
	if ((*path)[0] != '/') {
		char *abs;

		if (!getcwd(cwd, sizeof(cwd))) {
			hf_buf_addf(err, "the etcd store option %s=%s: cannot "
					 "tell the working directory it is "
					 "relative to: %s",
				    name, *path, strerror(errno));
			rc = HF_EIO;
			goto out;
		}
		abs = hf_xasprintf("%s/%s", cwd, *path);
		free(*path);
		*path = abs;
	}
out:
	close(fd);
	return rc;
}

/* The TLS options together: cert and key in pairs, every file readable. */
static int check_tls(struct store_etcd *e, struct hf_buf *err)
{
	int rc;

	if (!e->cert != !e->key) {
		hf_buf_addf(err,
			    "the etcd store options cert= and key= go "
			    "together (a client certificate and its private "
			    "key): %s= is given without %s=",
			    e->cert ? "cert" : "key", e->cert ? "key" : "cert");
		return HF_EINVAL;
	}
	if (e->cacert && (rc = check_file("cacert", &e->cacert, err)))
		return rc;
	if (e->cert && (rc = check_file("cert", &e->cert, err)))
		return rc;
	if (e->key && (rc = check_file("key", &e->key, err)))
		return rc;
	return 0;
}

static int parse_url(struct store_etcd *e, const char *path,
		     struct hf_buf *err)
{
	const char *scheme = e->tls ? "etcds" : "etcd";
	const char *p, *q;
	int rc;

	if (strncmp(path, "//", 2) != 0) {
		hf_buf_addf(err,
			    "the etcd store URL '%s:%s' is not "
			    "%s://HOST:PORT[,HOST:PORT...][?OPTIONS]",
			    scheme, path, scheme);
		return HF_EINVAL;
	}
	p = path + 2;
	q = p + strcspn(p, "?");
	if (q == p) {
		hf_buf_adds(err, "the etcd store URL names no endpoint");
		return HF_EINVAL;
	}
	while (p < q) {
		size_t n = strcspn(p, ",?");

		rc = add_endpoint(e, p, n, err);
		if (rc)
			return rc;
		p += n;
		if (*p == ',') {
			p++;
			if (p == q) {
				hf_buf_adds(err, "the etcd store URL has an "
						 "empty endpoint");
				return HF_EINVAL;
			}
		}
	}
	rc = *q == '?' ? parse_options(e, q + 1, err) : 0;
	if (!rc && e->tls)
		rc = check_tls(e, err);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

static void etcd_close(void *be)
{
	struct store_etcd *e = be;

	if (!e)
		return;
	for (size_t i = 0; i < e->eps.len; i++) {
		free(e->eps.items[i].name);
		free(e->eps.items[i].base);
	}
	HF_VEC_FREE(&e->eps);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	hf_buf_release(&e->answer.body);
	free(e->cacert);
	free(e->cert);
	free(e->key);
	free(e->prefix);
	free(e);
}

/* The HTTPS settings: everything checked, nothing optional. */
static void set_tls(struct store_etcd *e)
{
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e->curl, CURLOPT_SSLVERSION,
			 (long)CURL_SSLVERSION_TLSv1_2);
	if (e->cacert) {
		/* cacert= replaces the system's CAs; it does not add to
		 * them (libcurl would also look in its default CA
		 * directory otherwise). */
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->cacert);
		curl_easy_setopt(e->curl, CURLOPT_CAPATH, NULL);
	}
	if (e->cert) {
		curl_easy_setopt(e->curl, CURLOPT_SSLCERT, e->cert);
		curl_easy_setopt(e->curl, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e->curl, CURLOPT_SSLKEY, e->key);
		curl_easy_setopt(e->curl, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

static int etcd_revision(void *be, int64_t *rev, struct hf_buf *err);

static int open_common(const char *path, bool tls, void **be,
		       struct hf_buf *err)
{
	struct store_etcd *e = hf_xcalloc(1, sizeof(*e));
	int64_t rev = 0;
	int rc;

	e->tls = tls;
	e->timeout_ms = ETCD_TIMEOUT_MS;
	e->connect_timeout_ms = ETCD_CONNECT_TIMEOUT_MS;
	rc = parse_url(e, path, err);
	if (rc)
		goto out;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK || !(e->curl = curl_easy_init())) {
		hf_buf_addf(err, "could not set up libcurl: %s",
			    curl_easy_strerror(curl_init_rc));
		rc = HF_EINTERNAL;
		goto out;
	}
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	/* No "Expect: 100-continue" round trip before large bodies. */
	e->headers = curl_slist_append(e->headers, "Expect:");
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
	if (e->tls)
		set_tls(e);
	else
		curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http");
	/* etcd is reached directly, whatever http_proxy says. */
	curl_easy_setopt(e->curl, CURLOPT_PROXY, "");
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 e->connect_timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->curl_err);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &e->answer);
	/* Connection check: a store that cannot be reached is refused now,
	 * with every endpoint's reason, rather than at the first write. For
	 * etcds:// this is also where a certificate problem shows. */
	rc = etcd_revision(e, &rev, err);
out:
	if (rc) {
		etcd_close(e);
		return rc;
	}
	*be = e;
	return 0;
}

static int etcd_open(const char *path, void **be, struct hf_buf *err)
{
	return open_common(path, false, be, err);
}

static int etcds_open(const char *path, void **be, struct hf_buf *err)
{
	return open_common(path, true, be, err);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

static int etcd_get(void *be, const char *key, struct hf_store_kv *out,
		    struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL, *kvs;
	int rc;

	json_object_set_new(req, "key", j_key(be, key));
	rc = etcd_call(be, "/v3/kv/range", req, true, &answer, err);
	if (rc)
		return rc;
	kvs = json_object_get(answer, "kvs");
	if (json_array_size(kvs) == 0)
		rc = HF_ENOTFOUND;
	else
		rc = parse_kv(be, json_array_get(kvs, 0), out, NULL, err);
	json_decref(answer);
	return rc;
}

static int etcd_list(void *be, const char *prefix, size_t limit,
		     struct hf_store_kvs *out, struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL, *kvs;
	int rc;

	add_prefix_range(be, req, prefix);
	if (limit)
		json_object_set_new(req, "limit",
				    j_int64(limit > INT64_MAX ? INT64_MAX :
								(int64_t)limit));
	/* Sorted by key, ascending: what etcd does unless told otherwise. */
	rc = etcd_call(be, "/v3/kv/range", req, true, &answer, err);
	if (rc)
		return rc;
	out->rev = header_revision(answer);
	out->more = json_is_true(json_object_get(answer, "more"));
	kvs = json_object_get(answer, "kvs");
	for (size_t i = 0; !rc && i < json_array_size(kvs); i++)
		rc = parse_kv(be, json_array_get(kvs, i), HF_VEC_PUSH(out),
			      NULL, err);
	json_decref(answer);
	return rc;
}

static int etcd_revision(void *be, int64_t *rev, struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL;
	int rc;

	/* Counting one key is the cheapest request with a header. */
	json_object_set_new(req, "key", j_b64("", 1));
	json_object_set_new(req, "count_only", json_true());
	rc = etcd_call(be, "/v3/kv/range", req, true, &answer, err);
	if (rc)
		return rc;
	*rev = header_revision(answer);
	json_decref(answer);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

static json_t *compare_json(const struct store_etcd *e,
			    const struct hf_store_cmp *c)
{
	json_t *j = json_object();

	json_object_set_new(j, "key", j_key(e, c->key));
	switch (c->kind) {
	case HF_STORE_CMP_ABSENT:
	case HF_STORE_CMP_PRESENT:
		json_object_set_new(j, "target", json_string("CREATE"));
		json_object_set_new(j, "result",
				    json_string(c->kind == HF_STORE_CMP_ABSENT ?
							"EQUAL" :
							"GREATER"));
		json_object_set_new(j, "create_revision", j_int64(0));
		break;
	case HF_STORE_CMP_MOD_REV:
		/* An absent key's mod_revision is 0 in etcd too. */
		json_object_set_new(j, "target", json_string("MOD"));
		json_object_set_new(j, "result", json_string("EQUAL"));
		json_object_set_new(j, "mod_revision", j_int64(c->mod_rev));
		break;
	}
	return j;
}

static json_t *op_json(const struct store_etcd *e,
		       const struct hf_store_op *op)
{
	json_t *j = json_object(), *r = json_object();

	switch (op->kind) {
	case HF_STORE_OP_PUT:
		json_object_set_new(r, "key", j_key(e, op->key));
		json_object_set_new(r, "value", j_b64(op->value, op->len));
		if (op->lease)
			json_object_set_new(r, "lease", j_int64(op->lease));
		json_object_set_new(j, "request_put", r);
		break;
	case HF_STORE_OP_DELETE:
		json_object_set_new(r, "key", j_key(e, op->key));
		json_object_set_new(j, "request_delete_range", r);
		break;
	case HF_STORE_OP_DELETE_PREFIX:
		add_prefix_range(e, r, op->key);
		json_object_set_new(j, "request_delete_range", r);
		break;
	}
	return j;
}

/* A failure-branch read of one key: enough to tell why a compare failed. */
static json_t *read_key_json(const struct store_etcd *e, const char *key)
{
	json_t *j = json_object(), *r = json_object();

	json_object_set_new(r, "key", j_key(e, key));
	json_object_set_new(r, "keys_only", json_true());
	json_object_set_new(j, "request_range", r);
	return j;
}

/* The mod_rev of the only key a failure-branch read returned, or 0. */
static int64_t read_mod_rev(const json_t *response, int64_t *lease)
{
	const json_t *range = json_object_get(response, "response_range");
	const json_t *kv = json_array_get(json_object_get(range, "kvs"), 0);

	if (lease)
		*lease = field_int64(kv, "lease");
	return field_int64(kv, "mod_revision");
}

/*
 * Says which compare of a refused transaction failed, from the reads of
 * its failure branch (the state the compares saw), in the words of
 * hf_store_cmp_eval() like every backend.
 */
static int explain_conflict(const struct hf_store_txn *txn,
			    const json_t *answer, struct hf_buf *err)
{
	const json_t *responses = json_object_get(answer, "responses");

	for (size_t i = 0; i < txn->cmps.len; i++) {
		int64_t mod_rev = read_mod_rev(json_array_get(responses, i),
					       NULL);

		if (hf_store_cmp_eval(&txn->cmps.items[i], mod_rev, err))
			return HF_ECONFLICT;
	}
	hf_buf_adds(err, "a compare of the transaction failed in etcd");
	return HF_ECONFLICT;
}

static int etcd_txn(void *be, const struct hf_store_txn *txn, int64_t *rev_out,
		    struct hf_buf *err)
{
	json_t *req = json_object(), *cmps = json_array(), *ops = json_array();
	json_t *reads = json_array(), *answer = NULL;
	size_t bytes = 0;
	int rc;

	for (size_t i = 0; i < txn->cmps.len; i++) {
		json_array_append_new(cmps,
				      compare_json(be, &txn->cmps.items[i]));
		json_array_append_new(reads,
				      read_key_json(be, txn->cmps.items[i].key));
	}
	for (size_t i = 0; i < txn->ops.len; i++) {
		json_array_append_new(ops, op_json(be, &txn->ops.items[i]));
		bytes += strlen(txn->ops.items[i].key) + txn->ops.items[i].len;
	}
	json_object_set_new(req, "compare", cmps);
	json_object_set_new(req, "success", ops);
	json_object_set_new(req, "failure", reads);
	rc = etcd_call(be, "/v3/kv/txn", req, false, &answer, err);
	if (rc == HF_ETOOBIG)
		hf_buf_addf(err,
			    " (this transaction: %zu compare(s), %zu "
			    "operation(s), %zu bytes of keys and values)",
			    txn->cmps.len, txn->ops.len, bytes);
	if (rc)
		return rc;
	if (json_is_true(json_object_get(answer, "succeeded")))
		*rev_out = header_revision(answer);
	else
		rc = explain_conflict(txn, answer, err);
	json_decref(answer);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Leases and campaigns                                                 */

static int etcd_lease_grant(void *be, int ttl, int64_t *lease_id,
			    struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL;
	const char *error;
	int rc;

	json_object_set_new(req, "TTL", j_int64(ttl));
	/* Granting twice is harmless: the spare lease just expires. */
	rc = etcd_call(be, "/v3/lease/grant", req, true, &answer, err);
	if (rc)
		return rc;
	error = json_string_value(json_object_get(answer, "error"));
	*lease_id = field_int64(answer, "ID");
	if ((error && *error) || *lease_id <= 0) {
		hf_buf_addf(err, "etcd granted no lease: %s",
			    error && *error ? error : "no ID in its answer");
		rc = HF_EIO;
	}
	json_decref(answer);
	return rc;
}

static int etcd_lease_keepalive(void *be, int64_t lease_id, int *ttl_left,
				struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL, *result;
	int64_t ttl;
	int rc;

	json_object_set_new(req, "ID", j_int64(lease_id));
	/* A stream in gRPC; through the gateway, one request, one answer. */
	rc = etcd_call(be, "/v3/lease/keepalive", req, true, &answer, err);
	if (rc)
		return rc;
	result = json_object_get(answer, "result");
	if (!json_is_object(result)) {
		const char *msg = json_string_value(json_object_get(
			json_object_get(answer, "error"), "message"));

		hf_buf_addf(err, "etcd could not renew lease %lld: %s",
			    (long long)lease_id, msg ? msg : "no result");
		rc = HF_EIO;
		goto out;
	}
	/* etcd answers an unknown lease with TTL 0, left out by proto3. */
	ttl = field_int64(result, "TTL");
	if (ttl <= 0) {
		hf_buf_addf(err, "lease %lld has expired or was revoked",
			    (long long)lease_id);
		rc = HF_ENOTFOUND;
		goto out;
	}
	*ttl_left = ttl > INT32_MAX ? INT32_MAX : (int)ttl;
out:
	json_decref(answer);
	return rc;
}

static int etcd_lease_revoke(void *be, int64_t lease_id, struct hf_buf *err)
{
	json_t *req = json_object(), *answer = NULL;
	int rc;

	json_object_set_new(req, "ID", j_int64(lease_id));
	rc = etcd_call(be, "/v3/lease/revoke", req, false, &answer, err);
	json_decref(answer);
	return rc;
}

/*
 * One etcd transaction: if key was never created (is absent), put it with
 * the lease; otherwise read it. Whoever puts it first leads; its mod_rev,
 * the transaction's revision, is the fencing token.
 */
static int etcd_campaign(void *be, const char *key, const char *value,
			 int64_t lease_id, bool *won, struct hf_store_kv *leader,
			 struct hf_buf *err)
{
	struct hf_store_cmp absent = {HF_STORE_CMP_ABSENT, (char *)key, 0};
	struct hf_store_op put = {HF_STORE_OP_PUT, (char *)key, (char *)value,
				  strlen(value), lease_id};
	json_t *req = json_object(), *answer = NULL, *range, *kv;
	int64_t holder = 0;
	int rc;

	json_object_set_new(req, "compare",
			    json_pack("[o]", compare_json(be, &absent)));
	json_object_set_new(req, "success",
			    json_pack("[o]", op_json(be, &put)));
	json_object_set_new(req, "failure", json_pack("[{s:{s:o}}]",
						      "request_range", "key",
						      j_key(be, key)));
	rc = etcd_call(be, "/v3/kv/txn", req, false, &answer, err);
	if (rc)
		return rc;
	if (json_is_true(json_object_get(answer, "succeeded"))) {
		*won = true;
		leader->key = hf_xstrdup(key);
		leader->value = hf_xstrdup(value);
		leader->len = strlen(value);
		leader->create_rev = leader->mod_rev = header_revision(answer);
		leader->version = 1;
		goto out;
	}
	range = json_object_get(json_array_get(json_object_get(answer,
							       "responses"),
					       0),
				"response_range");
	kv = json_array_get(json_object_get(range, "kvs"), 0);
	if (!kv) {
		hf_buf_addf(err, "etcd refused the campaign for '%s' but "
				 "returned no holder",
			    key);
		rc = HF_EIO;
		goto out;
	}
	rc = parse_kv(be, kv, leader, &holder, err);
	*won = !rc && holder == lease_id;
out:
	json_decref(answer);
	return rc;
}

/* Everything but opening is the same for etcd:// and etcds://. */
#define ETCD_BACKEND_OPS                                                       \
	.close = etcd_close, .get = etcd_get, .list = etcd_list,               \
	.txn = etcd_txn, .revision = etcd_revision,                            \
	.lease_grant = etcd_lease_grant,                                       \
	.lease_keepalive = etcd_lease_keepalive,                               \
	.lease_revoke = etcd_lease_revoke, .campaign = etcd_campaign

const struct hf_store_backend hf_store_backend_etcd = {
	.name = "etcd",
	.txn_ops_max = ETCD_TXN_OPS,
	.open = etcd_open,
	ETCD_BACKEND_OPS,
};

/*
 * etcds://: the same backend over TLS. Its name is "etcd" as well, since
 * the server treats both alike.
 */
const struct hf_store_backend hf_store_backend_etcds = {
	.name = "etcd",
	.txn_ops_max = ETCD_TXN_OPS,
	.open = etcds_open,
	ETCD_BACKEND_OPS,
};
