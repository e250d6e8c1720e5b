/*
 * s3.h - a small synchronous client of S3-compatible object stores, for
 * volume backups ("cloud snaps", docs/design/s3.md): put an object from
 * memory, get one into memory, head, delete, list a prefix, create a
 * bucket.
 *
 * Requests. Path-style URLs (ENDPOINT/BUCKET/KEY, the key URI-encoded
 * with its slashes kept), over http or https (certificates verified,
 * against ca_file when given). libcurl signs every request with AWS
 * Signature Version 4 (CURLOPT_AWS_SIGV4, "aws:amz:REGION:s3"); the
 * client sets x-amz-content-sha256 to the SHA-256 of the body, which the
 * signature covers, and a PUT also carries Content-MD5, so the store
 * refuses a body changed on the way. Query parameters are written
 * sorted and encoded as SigV4 wants them (libcurl 7.88 signs the query
 * as it is given).
 *
 * Errors. Every call returns 0 or a negative HF_E* code (common/err.h)
 * and then writes one line into err (HF_S3_ERRLEN bytes), such as
 *   s3: PUT bkt/a/b: 403 SignatureDoesNotMatch: The request signature...
 *   s3: GET bkt/a/b: Couldn't connect to server (...); gave up after 4
 *   attempts
 * The codes: HF_ENOTFOUND (404: no such key or bucket), HF_EFORBIDDEN
 * (403: refused credentials, signature or permission), HF_EEXISTS (409
 * for a bucket that exists), HF_ETOOBIG (an object over the caller's
 * limit, 413), HF_EINVAL (a name or setting the client refuses, another
 * 4xx), HF_EUNAVAIL (the store could not be reached, or kept answering
 * 5xx, 429 or SlowDown), HF_EPARSE (an answer that is not what S3 sends),
 * HF_EIO (anything else). The secret key appears in no message, URL or
 * log, and the client prints nothing.
 *
 * Retries. A connection failure, timeout, reset, 5xx, 429, SlowDown or
 * RequestTimeout is tried again, up to `attempts` tries in all, after
 * 0.2 s, 0.4 s, 0.8 s ... (at most 5 s, with random jitter of up to half
 * of it). Other answers, 4xx among them, are final at once. Every
 * request here is idempotent, so a retried PUT or DELETE whose first try
 * did reach the store does no harm.
 *
 * Threads. libcurl is initialised once, by the first hf_s3_new (thread
 * safe). One struct hf_s3 holds one libcurl handle and its connections:
 * it is used by one thread at a time; threads that work in parallel make
 * one each. The process should ignore SIGPIPE, as holdfast's programs do
 * (a peer that closes a TLS connection may raise it).
 */
#ifndef HF_VOLUME_S3_H
#define HF_VOLUME_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "volume/s3codec.h"

#define HF_S3_DEFAULT_TIMEOUT_MS 120000L
#define HF_S3_DEFAULT_ATTEMPTS 4

/* What hf_s3_new copies; the caller keeps its strings. */
struct hf_s3_config {
	/* "http://host:port" or "https://host[/base path]", no query. */
	const char *endpoint;
	/* The signing region, such as "us-east-1". */
	const char *region;
	const char *access_key;
	const char *secret_key;
	/* PEM file of the CAs to trust; NULL: the system's. */
	const char *ca_file;
	/* One try's limit in ms (connection to last byte); 0: the default. */
	long timeout_ms;
	/* Tries of a transient failure, 1 or more; 0: the default. */
	int attempts;
};

struct hf_s3;

/*
 * Makes a client from cfg into *out (free it with hf_s3_free). Returns 0,
 * or HF_EINVAL for a missing or malformed setting (an endpoint that is
 * not http(s)://, or carries credentials, a query or a fragment), or
 * HF_EIO when libcurl cannot start; err says which. Connects to nothing.
 */
int hf_s3_new(const struct hf_s3_config *cfg, struct hf_s3 **out, char *err);

/* Closes the client's connections, wipes its keys and frees it. NULL: no-op. */
void hf_s3_free(struct hf_s3 *s);

/* Stores len bytes of data (the caller's) as bucket/key, replacing it. */
int hf_s3_put(struct hf_s3 *s, const char *bucket, const char *key,
	      const void *data, size_t len, char *err);

/*
 * Reads bucket/key into out (reset first; the caller's, who releases it;
 * NUL-terminated past out->len, so a text object is a C string). An
 * object over max_len bytes fails with HF_ETOOBIG. On failure out holds
 * no object (it may keep its allocation).
 */
int hf_s3_get(struct hf_s3 *s, const char *bucket, const char *key,
	      size_t max_len, struct hf_buf *out, char *err);

/* The size of bucket/key into *size; HF_ENOTFOUND when there is none. */
int hf_s3_head(struct hf_s3 *s, const char *bucket, const char *key,
	       uint64_t *size, char *err);

/* Deletes bucket/key. S3 answers a missing key with success too. */
int hf_s3_delete(struct hf_s3 *s, const char *bucket, const char *key,
		 char *err);

/*
 * One ListObjectsV2 page of the keys starting with prefix ("" or NULL:
 * all), after token (NULL: the first page), of at most max_keys keys
 * (0: the store's default, 1000 on S3), into *out, which must be empty
 * (HF_S3_LIST_INIT); the caller releases it. out->truncated and
 * out->next_token say whether and where to go on.
 */
int hf_s3_list_page(struct hf_s3 *s, const char *bucket, const char *prefix,
		    const char *token, int max_keys, struct hf_s3_list *out,
		    char *err);

/*
 * Every key starting with prefix, page after page (max_keys each, as
 * above), into *out (empty at the call; on failure left empty). A store
 * that hands the same continuation token twice fails with HF_EPARSE
 * rather than loop.
 */
int hf_s3_list(struct hf_s3 *s, const char *bucket, const char *prefix,
	       int max_keys, struct hf_s3_list *out, char *err);

/*
 * Creates bucket in the client's region (a LocationConstraint outside
 * us-east-1). HF_EEXISTS when it exists already, the caller's or not.
 */
int hf_s3_create_bucket(struct hf_s3 *s, const char *bucket, char *err);

#endif
