/*
 * fuzz_s3list.c - libFuzzer target for the S3 client's XML reader
 * (volume/s3codec.h): ListObjectsV2 pages and error documents.
 *
 * A refusal is HF_EPARSE with a sentence free of control bytes. A page
 * that is read has only keys of 1 to HF_S3_MAX_KEY bytes, a token exactly
 * when it is truncated, and, written back as XML (every '&', '<' and '>'
 * as an entity, every other byte as it is), reads again to the same keys,
 * sizes and token. An error document gives a code and a message within
 * their buffers and free of control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "volume/s3codec.h"

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

static void add_escaped(struct hf_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			hf_buf_adds(b, "&amp;");
		else if (*s == '<')
			hf_buf_adds(b, "&lt;");
		else if (*s == '>')
			hf_buf_adds(b, "&gt;");
		else
			hf_buf_addc(b, *s);
	}
}

static void round_trip(const struct hf_s3_list *l)
{
	struct hf_buf b = HF_BUF_INIT;
	struct hf_s3_list again = HF_S3_LIST_INIT;
	char err[HF_S3_ERRLEN];

	hf_buf_adds(&b, "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>");
	hf_buf_adds(&b, l->truncated ? "true" : "false");
	hf_buf_adds(&b, "</IsTruncated>");
	if (l->next_token) {
		hf_buf_adds(&b, "<NextContinuationToken>");
		add_escaped(&b, l->next_token);
		hf_buf_adds(&b, "</NextContinuationToken>");
	}
	for (size_t i = 0; i < l->len; i++) {
		hf_buf_adds(&b, "<Contents><Key>");
		add_escaped(&b, l->items[i].key);
		hf_buf_addf(&b, "</Key><Size>%llu</Size></Contents>",
			    (unsigned long long)l->items[i].size);
	}
	hf_buf_adds(&b, "</ListBucketResult>");
	if (hf_s3_parse_list(b.data, b.len, &again, err) != 0 ||
	    again.len != l->len || again.truncated != l->truncated)
		abort();
	if (!l->next_token != !again.next_token ||
	    (l->next_token && strcmp(l->next_token, again.next_token) != 0))
		abort();
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(again.items[i].key, l->items[i].key) != 0 ||
		    again.items[i].size != l->items[i].size)
			abort();
	hf_s3_list_release(&again);
	hf_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_s3_list l = HF_S3_LIST_INIT;
	char err[HF_S3_ERRLEN] = "", code[64], message[96];
	int rc;

	rc = hf_s3_parse_list((const char *)data, size, &l, err);
	if (rc != 0) {
		if (rc != HF_EPARSE || l.items || l.next_token || !err[0])
			abort();
		check_text(err, sizeof(err));
	} else {
		if (l.truncated != (l.next_token != NULL))
			abort();
		for (size_t i = 0; i < l.len; i++) {
			size_t n = strlen(l.items[i].key);

			if (n == 0 || n > HF_S3_MAX_KEY)
				abort();
		}
		round_trip(&l);
		hf_s3_list_release(&l);
	}
	rc = hf_s3_parse_error((const char *)data, size, code, message,
			       sizeof(code));
	if (rc != 0 && (rc != HF_EPARSE || code[0] || message[0]))
		abort();
	if (rc == 0 && !code[0])
		abort();
	check_text(code, sizeof(code));
	check_text(message, sizeof(code));
	return 0;
}
