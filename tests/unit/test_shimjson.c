/*
 * test_shimjson.c - the shim's own JSON reader and writer (shim/json.h):
 * what it accepts and builds, what it refuses and how it says where and
 * why, and that what the writer escapes reads back the same (here and in
 * jansson, which the agent reads status lines with).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/json.h"

#define assert_contains(hay, needle)                                           \
	do {                                                                   \
		const char *h_ = (hay), *n_ = (needle);                        \
		if (!h_ || !strstr(h_, n_))                                    \
			fail_msg("expected \"%s\" to contain \"%s\"",          \
				 h_ ? h_ : "(null)", n_);                      \
	} while (0)

static struct hf_json *parse_ok(const char *text, size_t len)
{
	struct hf_json *v = NULL;
	char *err = NULL;

	if (hf_json_parse(text, len, &v, &err))
		fail_msg("refused %s: %s", text, err);
	assert_null(err);
	assert_non_null(v);
	return v;
}

static void test_values(void **state)
{
	static const char doc[] =
	    " {\"s\": \"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"i\": -42, "
	    "\"big\": 9223372036854775807, \"small\": -9223372036854775808, "
	    "\"d\": 2.5e-1, \"z\": 0, \"t\": true, \"f\": false, \"n\": null, "
	    "\"a\": [1, [], {}, \"x\"], \"o\": {\"k\": {\"deep\": [null]}}} \n";
	struct hf_json *v = parse_ok(doc, strlen(doc));
	const struct hf_json *a;

	assert_int_equal(v->type, HF_JSON_OBJECT);
	assert_int_equal(v->n, 11);
	assert_string_equal(v->keys[0], "s"); /* order kept */
	assert_string_equal(hf_json_str(hf_json_get(v, "s")),
			    "a\"b\\c/d\b\f\n\r\t");
	assert_int_equal(hf_json_get(v, "i")->type, HF_JSON_INT);
	assert_int_equal(hf_json_get(v, "i")->i, -42);
	assert_true(hf_json_get(v, "big")->i == INT64_MAX);
	assert_true(hf_json_get(v, "small")->i == INT64_MIN);
	assert_int_equal(hf_json_get(v, "d")->type, HF_JSON_NUMBER);
	assert_true(hf_json_get(v, "d")->d == 0.25);
	assert_true(hf_json_is_number(hf_json_get(v, "z")));
	assert_true(hf_json_get(v, "t")->b);
	assert_int_equal(hf_json_get(v, "f")->type, HF_JSON_BOOL);
	assert_false(hf_json_get(v, "f")->b);
	assert_true(hf_json_is_null(hf_json_get(v, "n")));
	assert_true(hf_json_is_null(hf_json_get(v, "missing")));
	assert_null(hf_json_get(v, "missing"));
	a = hf_json_get(v, "a");
	assert_int_equal(a->type, HF_JSON_ARRAY);
	assert_int_equal(a->n, 4);
	assert_int_equal(a->items[1].type, HF_JSON_ARRAY);
	assert_int_equal(a->items[1].n, 0);
	assert_int_equal(a->items[2].type, HF_JSON_OBJECT);
	assert_string_equal(a->items[3].s, "x");
	assert_null(hf_json_get(a, "x")); /* not an object */
	assert_int_equal(hf_json_get(hf_json_get(hf_json_get(v, "o"), "k"),
				     "deep")->items[0].type,
			 HF_JSON_NULL);
	hf_json_free(v);

	/* Scalars are documents too. */
	v = parse_ok("\"x\"", 3);
	assert_string_equal(v->s, "x");
	hf_json_free(v);
	v = parse_ok("-0.5", 4);
	assert_true(v->d == -0.5);
	hf_json_free(v);
}

static void test_unicode(void **state)
{
	/* \u escapes, a surrogate pair, and raw UTF-8 pass through. */
	static const char doc[] =
	    "[\"\\u00e9\\u20AC\\ud83d\\ude00\", \"\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80\"]";
	struct hf_json *v = parse_ok(doc, strlen(doc));

	assert_string_equal(v->items[0].s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_string_equal(v->items[1].s, v->items[0].s);
	hf_json_free(v);
}

static const struct {
	const char *doc;
	size_t len;     /* 0: strlen(doc) */
	const char *msg;
} bad[] = {
	{"", 0, "line 1, column 1: unexpected end of input"},
	{"   \n  ", 0, "line 2, column 3: unexpected end of input"},
	{"{\"a\": 1} x", 0, "line 1, column 10: trailing garbage"},
	{"{\"a\": 1}{}", 0, "trailing garbage"},
	{"{\"a\": 1,\n \"a\": 2}", 0, "line 2, column 2: duplicate key \"a\""},
	{"{\"e\": {\"x\": 1, \"y\": 2, \"x\": 3}}", 0, "duplicate key \"x\""},
	{"[\"a\\u0000b\"]", 0, "must not contain NUL"},
	{"[\"a\0b\"]", 6, "control character 0x00"},
	{"[\"a\nb\"]", 0, "control character 0x0a"},
	{"[\"\\x\"]", 0, "invalid escape"},
	{"[\"\\u12\"]", 0, "four hex digits"},
	{"[\"\\ud800\"]", 0, "without its low half"},
	{"[\"\\ud800\\u0041\"]", 0, "without its low half"},
	{"[\"\\udc00\"]", 0, "lone UTF-16 low surrogate"},
	{"[\"\xc3\"]", 0, "not UTF-8"},
	{"[\"\xc0\xaf\"]", 0, "not UTF-8"},          /* overlong '/' */
	{"[\"\xed\xa0\x80\"]", 0, "not UTF-8"},      /* encoded surrogate */
	{"[\"\xf4\x90\x80\x80\"]", 0, "not UTF-8"},  /* above U+10FFFF */
	{"[\"abc", 0, "unterminated string"},
	{"[01]", 0, "expected ',' or ']'"},
	{"[1.]", 0, "a digit after '.'"},
	{"[1e]", 0, "a digit in the exponent"},
	{"[-]", 0, "expected a digit"},
	{"[+1]", 0, "unexpected '+'"},
	{"[9223372036854775808]", 0, "integer out of range"},
	{"[1e999]", 0, "number out of range"},
	{"[tru]", 0, "expected a value"},
	{"[nul", 0, "expected a value"},
	{"[1,]", 0, "unexpected ']' (expected a value)"},
	{"{\"a\" 1}", 0, "expected ':'"},
	{"{a: 1}", 0, "expected a key in quotes"},
	{"{\"a\": 1,}", 0, "expected a key in quotes"},
	{"[1 2]", 0, "expected ',' or ']'"},
	{"\x01", 0, "unexpected byte 0x01"},
};

static void test_refused(void **state)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].doc);
		struct hf_json *v = (struct hf_json *)1;
		char *err = NULL;

		if (hf_json_parse(bad[i].doc, len, &v, &err) != HF_EPARSE)
			fail_msg("accepted %s", bad[i].doc);
		assert_null(v);
		assert_contains(err, bad[i].msg);
		assert_contains(err, "line ");
		free(err);
	}
}

static char *nested(int depth)
{
	struct hf_buf b = HF_BUF_INIT;

	for (int i = 0; i < depth; i++)
		hf_buf_adds(&b, i % 2 ? "{\"k\":" : "[");
	hf_buf_adds(&b, "1");
	for (int i = depth - 1; i >= 0; i--)
		hf_buf_adds(&b, i % 2 ? "}" : "]");
	return hf_buf_detach(&b);
}

static void test_depth_limit(void **state)
{
	char *ok = nested(HF_JSON_MAX_DEPTH), *deep = nested(HF_JSON_MAX_DEPTH + 1);
	char *huge = nested(100000); /* must not exhaust the stack */
	struct hf_json *v;
	char *err = NULL;

	v = parse_ok(ok, strlen(ok));
	hf_json_free(v);
	assert_int_equal(hf_json_parse(deep, strlen(deep), &v, &err), HF_EPARSE);
	assert_contains(err, "nested deeper than 32");
	free(err);
	assert_int_equal(hf_json_parse(huge, strlen(huge), &v, &err), HF_EPARSE);
	assert_contains(err, "nested deeper");
	free(err);
	free(ok);
	free(deep);
	free(huge);
}

static void test_many_keys(void **state)
{
	/* Duplicates are found through a hash set, also far apart. */
	struct hf_buf b = HF_BUF_INIT;
	struct hf_json *v;
	char *err = NULL, *text;

	hf_buf_addc(&b, '{');
	for (int i = 0; i < 5000; i++)
		hf_buf_addf(&b, "%s\"k%d\": %d", i ? ", " : "", i, i);
	hf_buf_addc(&b, '}');
	v = parse_ok(b.data, b.len);
	assert_int_equal(v->n, 5000);
	assert_int_equal(hf_json_get(v, "k4999")->i, 4999);
	hf_json_free(v);
	b.len--;
	hf_buf_adds(&b, ", \"k17\": 0}");
	text = hf_buf_detach(&b);
	assert_int_equal(hf_json_parse(text, strlen(text), &v, &err), HF_EPARSE);
	assert_contains(err, "duplicate key \"k17\"");
	free(err);
	free(text);
}

static void test_writer(void **state)
{
	static const char nasty[] = "q\"b\\s\x01\x1f\n\t\r\b\f\x7f/\xc3\xa9";
	struct hf_jw w;
	struct hf_json *v;
	json_t *j;
	char *text;

	hf_jw_init(&w);
	hf_jw_open(&w, '{');
	hf_jw_key(&w, "s");
	hf_jw_str(&w, nasty);
	hf_jw_key(&w, "bad\xff");
	hf_jw_str(&w, "a\xc3(b");
	hf_jw_key(&w, "n");
	hf_jw_str(&w, NULL);
	hf_jw_key(&w, "i");
	hf_jw_int(&w, INT64_MIN);
	hf_jw_key(&w, "a");
	hf_jw_open(&w, '[');
	hf_jw_bool(&w, true);
	hf_jw_bool(&w, false);
	hf_jw_null(&w);
	hf_jw_open(&w, '{');
	hf_jw_close(&w, '}');
	hf_jw_close(&w, ']');
	hf_jw_close(&w, '}');
	text = hf_jw_detach(&w);
	assert_string_equal(
	    text, "{\"s\":\"q\\\"b\\\\s\\u0001\\u001f\\n\\t\\r\\b\\f\x7f/"
		  "\xc3\xa9\",\"bad\\ufffd\":\"a\\ufffd(b\",\"n\":null,"
		  "\"i\":-9223372036854775808,\"a\":[true,false,null,{}]}");
	/* Reads back the same, in ours and in jansson. */
	v = parse_ok(text, strlen(text));
	assert_string_equal(hf_json_get(v, "s")->s, nasty);
	assert_string_equal(hf_json_get(v, "bad\xef\xbf\xbd")->s,
			    "a\xef\xbf\xbd(b");
	hf_json_free(v);
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "s")), nasty);
	json_decref(j);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
