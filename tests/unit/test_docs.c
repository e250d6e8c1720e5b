/*
 * test_docs.c - what keeps the generated documentation true: the API
 * reference refuses a route table that its descriptions do not cover (a
 * route without a description, a description without a route, a query key
 * nobody described), and the flag tables the parsers read are what
 * getopt_long is given and what help prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <getopt.h>

#include "agent/agent.h"
#include "http/http.h"
#include "cli/cli.h"
#include "common/err.h"
#include "common/util.h"
#include "server/api.h"
#include "server/api_doc.h"
#include "server/server.h"
#include "shim/shim.h"

/* A writable copy of the server's route table, with room for one more. */
static struct hf_http_route *routes_copy(size_t *n)
{
	const struct hf_http_route *r = hf_server_routes(n);
	struct hf_http_route *c = calloc(*n + 1, sizeof(*c));

	memcpy(c, r, *n * sizeof(*c));
	return c;
}

static void test_real_table_is_described(void **state)
{
	size_t n;
	const struct hf_http_route *r = hf_server_routes(&n);
	char *err = NULL;
	int rc = hf_api_doc_check(r, n, &err);

	if (rc)
		fail_msg("the route table is not described: %s", err);
	assert_null(err);
}

static void expect_refused(const struct hf_http_route *r, size_t n,
			   const char *words)
{
	char *err = NULL;

	assert_int_equal(hf_api_doc_check(r, n, &err), HF_EINVAL);
	assert_non_null(err);
	if (!strstr(err, words))
		fail_msg("expected \"%s\" in \"%s\"", words, err);
	free(err);
}

static void test_route_without_description(void **state)
{
	size_t n;
	struct hf_http_route *c = routes_copy(&n);

	c[n] = c[0];
	c[n].method = "GET";
	c[n].pattern = "/v1/undocumented";
	expect_refused(c, n + 1,
		       "route GET /v1/undocumented has no description");
	free(c);
}

static void test_description_without_route(void **state)
{
	size_t n;
	struct hf_http_route *c = routes_copy(&n);
	char *want;

	/* Drop the last route: its description is left over. */
	want = hf_xasprintf("the description of %s %s has no route",
			    c[n - 1].method, c[n - 1].pattern);
	expect_refused(c, n - 1, want);
	free(want);
	free(c);
}

static void test_undescribed_query_key(void **state)
{
	size_t n;
	struct hf_http_route *c = routes_copy(&n);
	bool found = false;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(c[i].method, "DELETE") == 0 &&
		    strcmp(c[i].pattern, "/v1/services/{svc}") == 0) {
			c[i].query_keys = "delete_volumes force";
			found = true;
		}
	}
	assert_true(found);
	expect_refused(c, n, "query key 'force' has no description");
	free(c);
}

static void test_unknown_route_flags(void **state)
{
	size_t n;
	struct hf_http_route *c = routes_copy(&n);

	c[0].flags |= 1u << 12;
	expect_refused(c, n, "unknown route flags");
	free(c);
}

static void check_table(hf_cmd_flag_fn flags)
{
	const struct hf_cmd_flag *f;
	size_t n = 0;

	for (size_t i = 0; (f = flags(i)) != NULL; i++, n++) {
		assert_true(f->name[0] == '-');
		/* An alias row follows the row it spells differently. */
		if (!f->help) {
			assert_true(i > 0);
			assert_int_equal(flags(i - 1)->key, f->key);
		} else {
			assert_true(strlen(f->help) > 0);
		}
	}
	assert_true(n > 0);
}

static void test_flag_tables(void **state)
{
	check_table(hf_server_flag);
	check_table(hf_dev_flag);
	check_table(hf_agent_flag);
	check_table(hf_cli_global_flag);
}

static void test_longopts_from_table(void **state)
{
	struct option o[64];
	const struct hf_cmd_flag *f;
	size_t i;

	hf_cmd_longopts(hf_server_flag, o, HF_ARRAY_LEN(o));
	for (i = 0; (f = hf_server_flag(i)) != NULL; i++) {
		assert_string_equal(o[i].name, f->name + 2);
		assert_int_equal(o[i].has_arg,
				 f->arg ? required_argument : no_argument);
		assert_int_equal(o[i].val, f->key);
	}
	assert_null(o[i].name);
}

static void test_help_tables_found(void **state)
{
	/* The rows main.c lists: the programs', then the CLI's. */
	const struct hf_cmd *const programs[] = {&hf_server_cmd, &hf_agent_cmd,
						  &hf_dev_cmd, &hf_shim_cmd};
	const struct hf_cmd *c;
	size_t tables = 0, n = HF_ARRAY_LEN(programs);

	for (size_t i = 0; (c = i < n ? programs[i] : hf_cli_cmd_at(i - n));
	     i++) {
		if (!c->flags)
			continue;
		tables++;
		if (strcmp(c->noun, "server") == 0)
			assert_ptr_equal(c->flags, hf_server_flag);
		else if (strcmp(c->noun, "agent") == 0)
			assert_ptr_equal(c->flags, hf_agent_flag);
		else if (strcmp(c->noun, "dev") == 0)
			assert_ptr_equal(c->flags, hf_dev_flag);
		else
			fail_msg("unexpected flag table for %s", c->noun);
	}
	assert_int_equal(tables, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_real_table_is_described),
	    cmocka_unit_test(test_route_without_description),
	    cmocka_unit_test(test_description_without_route),
	    cmocka_unit_test(test_undescribed_query_key),
	    cmocka_unit_test(test_unknown_route_flags),
	    cmocka_unit_test(test_flag_tables),
	    cmocka_unit_test(test_longopts_from_table),
	    cmocka_unit_test(test_help_tables_found),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
