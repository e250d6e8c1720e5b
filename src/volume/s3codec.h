/*
 * s3codec.h - what the S3 client (volume/s3.h) sends and reads besides
 * bytes of objects: names in URLs, and the two XML documents it parses,
 * a ListObjectsV2 page and an error. Pure: no I/O, no clock, no globals;
 * the fuzz target tests/fuzz/fuzz_s3list.c drives the parsers.
 *
 * XML. libxml2 is not among holdfast's dependencies, and the client needs
 * five leaf elements of two fixed documents, so a small walker reads
 * them: elements (with namespace prefixes ignored), attributes (skipped,
 * quotes respected), text with the five predefined entities and numeric
 * character references, CDATA sections, comments and processing
 * instructions. A document type declaration, a NUL byte, an unbalanced or
 * mismatched tag, nesting deeper than 32, a second root, text outside the
 * root or a bad reference is refused: nothing an S3 server sends needs
 * them, and a body that has them is not one.
 */
#ifndef HF_VOLUME_S3CODEC_H
#define HF_VOLUME_S3CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* The size of every error message buffer of the S3 client. */
#define HF_S3_ERRLEN 256
/* S3's limit on a key's length, in bytes of UTF-8. */
#define HF_S3_MAX_KEY 1024
/* The longest bucket name accepted (path-style, legacy names included). */
#define HF_S3_MAX_BUCKET 255

/* One object of a listing. */
struct hf_s3_entry {
	char *key; /* owned by the list */
	uint64_t size;
};

/*
 * A listing: entries in the order the server sent them (S3: ascending
 * UTF-8 byte order of keys). truncated and next_token describe the last
 * page read. Start from HF_S3_LIST_INIT (or zeroes); free the contents
 * with hf_s3_list_release().
 */
struct hf_s3_list {
	struct hf_s3_entry *items;
	size_t len, cap;
	bool truncated;
	char *next_token; /* NULL unless truncated */
};

#define HF_S3_LIST_INIT {NULL, 0, 0, false, NULL}

/* Frees every entry and the token; the list is empty again. */
void hf_s3_list_release(struct hf_s3_list *l);

/*
 * Reads a ListObjectsV2 answer (len bytes of xml, not necessarily
 * NUL-terminated) into *out, which must be empty: every <Contents>'s
 * <Key> and <Size>, <IsTruncated> and <NextContinuationToken>. Keys are
 * decoded from XML, and also from URL encoding ('+' is a space) when the
 * answer says <EncodingType>url</EncodingType>. Returns 0, or HF_EPARSE
 * with a sentence in err (HF_S3_ERRLEN bytes) and *out untouched: the
 * body is not such a document, a <Contents> lacks its key or size, a key
 * is empty, holds a NUL or is over HF_S3_MAX_KEY bytes, a size is no
 * decimal number that fits 64 bits, or a truncated page has no token.
 */
int hf_s3_parse_list(const char *xml, size_t len, struct hf_s3_list *out,
		     char *err);

/*
 * Reads an S3 error document (<Error><Code>..</Code><Message>..</Message>)
 * into code and message (each cap bytes, cap > 0, NUL-terminated, cut at
 * a UTF-8 character boundary, control bytes replaced by '?'). Returns 0
 * when the body is one with a <Code>, or HF_EPARSE (both set to "").
 */
int hf_s3_parse_error(const char *xml, size_t len, char *code,
		      char *message, size_t cap);

/*
 * Appends s to b URI-encoded as SigV4 and S3 want it: A-Z a-z 0-9 - . _ ~
 * as they are, every other byte as %XX (upper-case hex), '/' kept when
 * keep_slash (an object key in a path) and encoded otherwise (a query
 * value).
 */
void hf_s3_uri_encode(struct hf_buf *b, const char *s, bool keep_slash);

/*
 * Checks a bucket name (1 to HF_S3_MAX_BUCKET bytes of A-Z a-z 0-9 . _ -)
 * and a key (1 to HF_S3_MAX_KEY bytes, no "." or ".." segment between
 * slashes: proxies and URL libraries rewrite those, so another object
 * would be read or written). Return 0, or HF_EINVAL with a sentence in
 * err (HF_S3_ERRLEN bytes).
 */
int hf_s3_check_bucket(const char *bucket, char *err);
int hf_s3_check_key(const char *key, char *err);

/*
 * Formats a message into err (HF_S3_ERRLEN bytes), cut to fit: the
 * messages here end with the least important part.
 */
void hf_s3_seterr(char *err, const char *fmt, ...) HF_PRINTF(2, 3);

/*
 * Copies at most cap - 1 bytes of s (n bytes) to out for a message: a
 * control byte becomes '?', and a cut string ends on a UTF-8 character
 * boundary, with "..." when something was cut and cap leaves room.
 */
void hf_s3_printable(char *out, size_t cap, const char *s, size_t n);

#endif
