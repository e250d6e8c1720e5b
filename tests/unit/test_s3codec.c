/*
 * test_s3codec.c - the S3 client's names and XML (src/volume/s3codec.h):
 * ListObjectsV2 pages as s3rver and AWS write them (entities, character
 * references, CDATA, URL-encoded keys, namespaces), each refusal of a
 * malformed page with its reason, error documents, the URI encoding that
 * SigV4 signs, and the key and bucket checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "volume/s3codec.h"

static int parse(const char *xml, struct hf_s3_list *l, char *err)
{
	*l = (struct hf_s3_list)HF_S3_LIST_INIT;
	err[0] = '\0';
	return hf_s3_parse_list(xml, strlen(xml), l, err);
}

static void test_s3rver_page(void **state)
{
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://doc.s3.amazonaws.com/"
		"2006-03-01/\"><Name>bkt</Name><Prefix></Prefix>"
		"<NextContinuationToken>1NED5g+zT/GV=</NextContinuationToken>"
		"<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<Contents><Key>a&amp;&lt;&gt;&quot;&#x27;b</Key>"
		"<ETag>&quot;9dd4&quot;</ETag><Size>1</Size></Contents>"
		"<Contents><Key>sp ace+plus%pct</Key>"
		"<Size>18446744073709551615</Size></Contents>"
		"</ListBucketResult>";
	struct hf_s3_list l;
	char err[HF_S3_ERRLEN];

	assert_int_equal(parse(xml, &l, err), 0);
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[0].key, "a&<>\"'b");
	assert_int_equal(l.items[0].size, 1);
	/* No EncodingType: '+' and '%' are the key's own. */
	assert_string_equal(l.items[1].key, "sp ace+plus%pct");
	assert_true(l.items[1].size == UINT64_MAX);
	assert_true(l.truncated);
	assert_string_equal(l.next_token, "1NED5g+zT/GV=");
	hf_s3_list_release(&l);
	assert_null(l.items);
	assert_int_equal(l.len, 0);
}

static void test_aws_page_url_encoded(void **state)
{
	const char *xml =
		"\xef\xbb\xbf<?xml version=\"1.0\"?>\n"
		"<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/"
		"2006-03-01/\">\n"
		"  <s3:IsTruncated> false </s3:IsTruncated>\n"
		"  <s3:Contents>\n"
		"    <s3:Key>photos%2F2006%2Fa+b%26c%E2%82%AC.jpg</s3:Key>\n"
		"    <s3:Size> 434234 </s3:Size>\n"
		"    <s3:Owner><s3:ID>x</s3:ID></s3:Owner>\n"
		"  </s3:Contents>\n"
		"  <!-- <Contents><Key>not me</Key></Contents> -->\n"
		"  <s3:Contents><s3:Key>c%01<![CDATA[d<e>]]>&#233;&#x1F389;"
		"</s3:Key><s3:Size>0</s3:Size></s3:Contents>\n"
		"  <s3:EncodingType>url</s3:EncodingType>\n"
		"  <s3:NextContinuationToken>ignored</s3:NextContinuationToken>\n"
		"</s3:ListBucketResult>\n";
	struct hf_s3_list l;
	char err[HF_S3_ERRLEN];

	assert_int_equal(parse(xml, &l, err), 0);
	assert_int_equal(l.len, 2);
	assert_string_equal(l.items[0].key,
			    "photos/2006/a b&c\xe2\x82\xac.jpg");
	assert_int_equal(l.items[0].size, 434234);
	assert_string_equal(l.items[1].key,
			    "c\x01" "d<e>\xc3\xa9\xf0\x9f\x8e\x89");
	assert_int_equal(l.items[1].size, 0);
	assert_false(l.truncated);
	assert_null(l.next_token); /* only a truncated page has one */
	hf_s3_list_release(&l);
}

static void test_empty_elements_and_attributes(void **state)
{
	const char *xml =
		"<ListBucketResult a='1' b=\"x>y\"><Prefix/>"
		"<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct hf_s3_list l;
	char err[HF_S3_ERRLEN];

	assert_int_equal(parse(xml, &l, err), 0);
	assert_int_equal(l.len, 0);
	hf_s3_list_release(&l);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *xml, *why;
	} bad[] = {
		{"", "no XML element"},
		{"<Error><Code>AccessDenied</Code></Error>",
		 "root element is <Error>"},
		{"<ListBucketResult></ListBucketResult>", "no <IsTruncated>"},
		{"<ListBucketResult><IsTruncated>true</IsTruncated>"
		 "</ListBucketResult>", "without <NextContinuationToken>"},
		{"<ListBucketResult><IsTruncated>yes</IsTruncated>"
		 "</ListBucketResult>", "neither true nor false"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>k</Key></Contents></ListBucketResult>",
		 "without its <Size>"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Size>1</Size></Contents></ListBucketResult>",
		 "without its <Key>"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>k</Key><Size>-1</Size></Contents>"
		 "</ListBucketResult>", "bad or second <Size>"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>k</Key><Size>18446744073709551616</Size>"
		 "</Contents></ListBucketResult>", "bad or second <Size>"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>k</Key><Key>l</Key><Size>1</Size>"
		 "</Contents></ListBucketResult>", "two <Key>s"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key></Key><Size>1</Size></Contents>"
		 "</ListBucketResult>", "empty"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<EncodingType>url</EncodingType><Contents><Key>a%00b</Key>"
		 "<Size>1</Size></Contents></ListBucketResult>", "bad % escape"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<EncodingType>url</EncodingType><Contents><Key>a%4</Key>"
		 "<Size>1</Size></Contents></ListBucketResult>", "bad % escape"},
		{"<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>a&#0;b</Key><Size>1</Size></Contents>"
		 "</ListBucketResult>", "NUL or a surrogate"},
		{"<ListBucketResult><a>&#xD800;</a></ListBucketResult>",
		 "NUL or a surrogate"},
		{"<ListBucketResult><a>&#x110000;</a></ListBucketResult>",
		 "beyond Unicode"},
		{"<ListBucketResult><a>&nbsp;</a></ListBucketResult>",
		 "unknown entity"},
		{"<ListBucketResult><a>&amp</a></ListBucketResult>",
		 "unterminated '&'"},
		{"<ListBucketResult><a></b></ListBucketResult>",
		 "does not match"},
		{"<ListBucketResult><a>", "ends inside an element"},
		{"<ListBucketResult/><ListBucketResult/>", "second root"},
		{"<ListBucketResult/>junk", "text outside the root"},
		{"<!DOCTYPE x [<!ENTITY a \"b\">]><ListBucketResult/>",
		 "declaration"},
		{"<ListBucketResult a=1/>", "without quotes"},
		{"<ListBucketResult a='1'b='2'/>", "without space between"},
		{"<ListBucketResult><!-- x </ListBucketResult>",
		 "unterminated comment"},
		{"</ListBucketResult>", "end tag without a start tag"},
		{"<ListBucketResult><<a/></ListBucketResult>", "without a name"},
	};
	char err[HF_S3_ERRLEN];

	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		struct hf_s3_list l;
		int rc = parse(bad[i].xml, &l, err);

		if (rc != HF_EPARSE || !strstr(err, bad[i].why)) {
			print_error("case %zu: %s\n  rc %d, err \"%s\", want "
				    "\"%s\"\n", i, bad[i].xml, rc, err,
				    bad[i].why);
			fail();
		}
		assert_null(l.items);
		assert_null(l.next_token);
		assert_int_equal(strncmp(err, "not a ListObjectsV2 answer: ", 28),
				 0);
	}
}

static void test_nul_and_depth(void **state)
{
	static const char with_nul[] = "<ListBucketResult>\0</ListBucketResult>";
	struct hf_buf deep = HF_BUF_INIT;
	struct hf_s3_list l = HF_S3_LIST_INIT;
	char err[HF_S3_ERRLEN];

	assert_int_equal(hf_s3_parse_list(with_nul, sizeof(with_nul) - 1, &l,
					  err), HF_EPARSE);
	assert_non_null(strstr(err, "NUL byte"));
	hf_buf_adds(&deep, "<ListBucketResult>");
	for (int i = 0; i < 40; i++)
		hf_buf_adds(&deep, "<a>");
	assert_int_equal(hf_s3_parse_list(deep.data, deep.len, &l, err),
			 HF_EPARSE);
	assert_non_null(strstr(err, "nested too deep"));
	hf_buf_release(&deep);
}

static void test_error_document(void **state)
{
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
		"<Code>SignatureDoesNotMatch</Code><Message>The request "
		"signature &amp; more\nsecond line</Message>"
		"<StringToSign>x</StringToSign></Error>";
	char code[32], message[24];

	assert_int_equal(hf_s3_parse_error(xml, strlen(xml), code, message,
					   sizeof(message)), 0);
	assert_string_equal(code, "SignatureDoesNotMatch");
	/* Cut to its buffer, the newline made printable. */
	assert_string_equal(message, "The request signatur...");
	assert_int_equal(hf_s3_parse_error("<html>502</html>", 16, code,
					   message, sizeof(message)),
			 HF_EPARSE);
	assert_string_equal(code, "");
	xml = "<Error><Message>m</Message></Error>";
	assert_int_equal(hf_s3_parse_error(xml, strlen(xml), code, message,
					   sizeof(message)), HF_EPARSE);
	assert_string_equal(message, "");
	xml = "<Error><Code>C</Code><Message>a\nb</Message></Error>";
	assert_int_equal(hf_s3_parse_error(xml, strlen(xml), code, message,
					   sizeof(message)), 0);
	assert_string_equal(message, "a?b");
}

static void test_uri_encode(void **state)
{
	struct hf_buf b = HF_BUF_INIT;

	hf_s3_uri_encode(&b, "a b/c+d=e&f?g#h%~._-\xc3\xa9", true);
	assert_string_equal(hf_buf_str(&b),
			    "a%20b/c%2Bd%3De%26f%3Fg%23h%25~._-%C3%A9");
	hf_buf_reset(&b);
	hf_s3_uri_encode(&b, "x/y z", false);
	assert_string_equal(hf_buf_str(&b), "x%2Fy%20z");
	hf_buf_reset(&b);
	hf_s3_uri_encode(&b, "", false);
	assert_string_equal(hf_buf_str(&b), "");
	hf_buf_release(&b);
}

static void test_names(void **state)
{
	char err[HF_S3_ERRLEN], big[HF_S3_MAX_KEY + 2];

	assert_int_equal(hf_s3_check_key("a/b c/..d/.e/x..", err), 0);
	assert_int_equal(hf_s3_check_key("a//b/", err), 0);
	assert_int_equal(hf_s3_check_key("..", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_key("a/./b", err), HF_EINVAL);
	assert_non_null(strstr(err, "\".\" or \"..\" segment"));
	assert_int_equal(hf_s3_check_key("a/..", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_key("./a", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_key("", err), HF_EINVAL);
	memset(big, 'k', sizeof(big));
	big[HF_S3_MAX_KEY] = '\0';
	assert_int_equal(hf_s3_check_key(big, err), 0);
	big[HF_S3_MAX_KEY] = 'k';
	big[HF_S3_MAX_KEY + 1] = '\0';
	assert_int_equal(hf_s3_check_key(big, err), HF_EINVAL);

	assert_int_equal(hf_s3_check_bucket("my-bucket.v2_old", err), 0);
	assert_int_equal(hf_s3_check_bucket("", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_bucket("a/b", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_bucket("a?b", err), HF_EINVAL);
	assert_int_equal(hf_s3_check_bucket("a\nb", err), HF_EINVAL);
	assert_non_null(strstr(err, "\"a?b\""));
}

static void test_printable(void **state)
{
	char out[20];
	/* 23 bytes: cut to 16 and "..." in 20. */
	const char *s = "\x01h\xc3\xa9llo wonderful world";

	hf_s3_printable(out, sizeof(out), "ab\ncd\x7f", 6);
	assert_string_equal(out, "ab?cd?");
	hf_s3_printable(out, sizeof(out), s, strlen(s));
	assert_string_equal(out, "?h\xc3\xa9llo wonderfu...");
	/* A cut never splits a character. */
	hf_s3_printable(out, 6, "ab\xc3\xa9\xc3\xa9", 6);
	assert_string_equal(out, "ab\xc3\xa9");
	hf_s3_printable(out, 1, "abc", 3);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3rver_page),
		cmocka_unit_test(test_aws_page_url_encoded),
		cmocka_unit_test(test_empty_elements_and_attributes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_nul_and_depth),
		cmocka_unit_test(test_error_document),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_printable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
