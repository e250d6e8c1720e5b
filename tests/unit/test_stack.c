/*
 * test_stack.c - stack files (spec/stack.c): the format, dependencies and
 * their order, references to other services in options, and every error
 * at its file:line:col.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/stack.h"

static struct hf_stack *parse_ok(const char *text)
{
	struct hf_diags d = {0};
	struct hf_stack *st = NULL;
	int rc = hf_stack_parse(text, strlen(text), "s.yml", &st, &d);

	if (rc)
		hf_diags_print(stderr, &d);
	assert_int_equal(rc, 0);
	assert_non_null(st);
	assert_int_equal(d.errors, 0);
	hf_diags_release(&d);
	return st;
}

/* The input fails with an error at line:col whose message holds want. */
static void parse_err(const char *text, int line, int col, const char *want)
{
	struct hf_diags d = {0};
	struct hf_stack *st = NULL;
	bool found = false;

	assert_int_equal(hf_stack_parse(text, strlen(text), "s.yml", &st, &d),
			 HF_ESPEC);
	assert_null(st);
	for (size_t i = 0; i < d.len; i++)
		if (d.items[i].line == line && d.items[i].col == col &&
		    strstr(d.items[i].msg, want) &&
		    strcmp(d.items[i].file, "s.yml") == 0)
			found = true;
	if (!found)
		hf_diags_print(stderr, &d);
	assert_true(found);
	hf_diags_release(&d);
}

static size_t pos_of(const struct hf_stack *st, const char *key)
{
	for (size_t k = 0; k < st->services.len; k++)
		if (strcmp(st->services.items[st->order[k]].key, key) == 0)
			return k;
	fail_msg("no service %s", key);
	return 0;
}

static void test_order_and_names(void **state)
{
	struct hf_stack *st = parse_ok(
	    "stack: dropbox\n"
	    "services:\n"
	    "  api:\n"
	    "    spec: api.yml\n"
	    "    depends-on: [db, cache]\n"
	    "  cache: {spec: redis.yml, name: dropbox-cache}\n"
	    "  db:\n"
	    "    spec: pg.yml\n"
	    "    options: {DB_PASSWORD: secret, PORT: 5432, ON: true}\n"
	    "  web:\n"
	    "    spec: web.yml\n"
	    "    options:\n"
	    "      API: \"http://{{services.api.endpoints.http}}/v1\"\n");
	const struct hf_stack_service *db = hf_stack_find(st, "db");
	const struct hf_stack_service *web = hf_stack_find(st, "web");

	(void)state;
	assert_string_equal(st->name, "dropbox");
	assert_int_equal(st->services.len, 4);
	assert_string_equal(hf_stack_find(st, "cache")->name, "dropbox-cache");
	assert_string_equal(db->name, "db");
	assert_string_equal(db->spec, "pg.yml");
	assert_string_equal(hf_kvlist_get(&db->options, "PORT"), "5432");
	assert_string_equal(hf_kvlist_get(&db->options, "ON"), "true");
	/* A reference is a dependency. */
	assert_true(hf_strlist_has(&web->depends_on, "api"));
	assert_int_equal(web->refs.len, 1);
	assert_string_equal(web->refs.items[0].endpoint, "http");
	assert_int_equal(web->refs.items[0].pos.line, 13);
	assert_true(pos_of(st, "db") < pos_of(st, "api"));
	assert_true(pos_of(st, "cache") < pos_of(st, "api"));
	assert_true(pos_of(st, "api") < pos_of(st, "web"));
	assert_null(hf_stack_find(st, "nosuch"));
	hf_stack_free(st);
}

static char *addr_of(void *arg, const struct hf_stack_ref *ref)
{
	(void)arg;
	if (!ref->endpoint)
		return hf_xasprintf("svc-%s", ref->service);
	if (strcmp(ref->service, "late") == 0)
		return NULL;
	return hf_xasprintf("%s:%s%s", ref->service, ref->endpoint,
			    ref->dns ? "/dns" : "");
}

static void test_render(void **state)
{
	struct hf_stack *st = parse_ok(
	    "stack: s\n"
	    "services:\n"
	    "  db: {spec: a.yml}\n"
	    "  late: {spec: a.yml}\n"
	    "  api:\n"
	    "    spec: b.yml\n"
	    "    options:\n"
	    "      A: \"{{services.db.endpoints.pg}}\"\n"
	    "      B: \"x {{ services.db.endpoints.pg.dns }} {{services.db.name}}\"\n"
	    "      C: plain\n"
	    "  other:\n"
	    "    spec: b.yml\n"
	    "    options: {L: \"{{services.late.endpoints.p}}\"}\n");
	struct hf_kvlist out = {0};
	char *missing = NULL;

	(void)state;
	assert_int_equal(hf_stack_render_options(hf_stack_find(st, "api"),
						 addr_of, NULL, &out, &missing),
			 0);
	assert_string_equal(hf_kvlist_get(&out, "A"), "db:pg");
	assert_string_equal(hf_kvlist_get(&out, "B"), "x db:pg/dns svc-db");
	assert_string_equal(hf_kvlist_get(&out, "C"), "plain");
	hf_kvlist_release(&out);
	assert_int_equal(hf_stack_render_options(hf_stack_find(st, "other"),
						 addr_of, NULL, &out, &missing),
			 -1);
	assert_string_equal(missing, "services.late.endpoints.p");
	free(missing);
	hf_kvlist_release(&out);
	hf_stack_free(st);
}

static const struct hf_strlist *ports(void *arg, const char *key)
{
	static struct hf_strlist web;

	(void)arg;
	if (!web.len)
		hf_strlist_push(&web, "http");
	return strcmp(key, "db") == 0 ? &web : NULL;
}

static void test_endpoints_checked(void **state)
{
	struct hf_stack *st = parse_ok(
	    "stack: s\n"
	    "services:\n"
	    "  db: {spec: a.yml}\n"
	    "  nospec: {spec: a.yml}\n"
	    "  api:\n"
	    "    spec: b.yml\n"
	    "    options:\n"
	    "      OK: \"{{services.db.endpoints.http}}\"\n"
	    "      BAD: \"{{services.db.endpoints.postgres}}\"\n"
	    "      UNKNOWN: \"{{services.nospec.endpoints.x}}\"\n");
	struct hf_diags d = {0};

	(void)state;
	assert_int_equal(hf_stack_check_endpoints(st, ports, NULL, &d),
			 HF_ESPEC);
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.items[0].line, 9);
	assert_int_equal(d.items[0].col, 12);
	assert_non_null(strstr(d.items[0].msg, "'postgres'"));
	assert_non_null(strstr(d.items[0].msg, "only: http"));
	assert_string_equal(d.items[0].path, "services.api.options.BAD");
	hf_diags_release(&d);
	hf_stack_free(st);
}

static void test_errors(void **state)
{
	(void)state;
	parse_err("", 1, 1, "empty");
	parse_err("stack: s\n", 1, 1, "needs 'services'");
	parse_err("services:\n  a: {spec: a.yml}\n", 1, 1, "needs 'stack'");
	parse_err("stack: Bad_Name\nservices:\n  a: {spec: a.yml}\n", 1, 8,
		  "lowercase");
	parse_err("stack: s\nextra: 1\nservices:\n  a: {spec: a.yml}\n", 2, 1,
		  "unknown key 'extra'");
	parse_err("stack: s\nservices:\n  a: {}\n", 3, 3, "needs 'spec'");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, colour: x}\n", 3,
		  20, "unknown key 'colour'");
	parse_err("stack: s\nservices:\n  A_b: {spec: a.yml}\n", 3, 3,
		  "lowercase");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, name: \"x__y\"}\n",
		  3, 26, "service name");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml}\n  b: {spec: b.yml, "
		  "name: a}\n",
		  4, 3, "same name 'a'");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, depends-on: a}\n", 3,
		  32, "list");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, depends-on: [b]}\n",
		  3, 33, "'b' is not in the stack");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, depends-on: [a]}\n",
		  3, 33, "cannot depend on itself");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml, depends-on: [b]}\n"
		  "  b: {spec: b.yml, depends-on: [c]}\n"
		  "  c: {spec: c.yml, depends-on: [a]}\n",
		  5, 33, "dependency cycle: a -> b -> c -> a");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      1X: y\n",
		  6, 7, "not a variable name");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: [1]\n",
		  6, 10, "must be a string");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{service.b}}\"\n",
		  6, 10, "may only name another service");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{services.b.ports.p}}\"\n",
		  6, 10, "{{services.NAME.endpoints.PORT}}");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{services.b.name\"\n",
		  6, 10, "without '}}'");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{services.nosuch.name}}\"\n",
		  6, 10, "'nosuch', which is not in the stack");
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{services.a.name}}\"\n",
		  6, 10, "names service 'a' itself");
	parse_err("stack: s\nservices:\n  a: {spec: a.yml}\n  a: {spec: b.yml}\n",
		  4, 3, "given twice");
	/* The spec's control characters (a YAML "\b") are not echoed. */
	parse_err("stack: s\nservices:\n  a:\n    spec: a.yml\n    options:\n"
		  "      X: \"{{services.\\b.name}}\"\n",
		  6, 10, "names service '?', which is not in the stack");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_names),
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_endpoints_checked),
	    cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
