/*
 * test_agent.c - the agent's pure pieces: SHA-256 (the artifact cache's
 * key), path containment for config destinations, volume keys and task
 * ids, check parsing, flag parsing, and the removal that must never
 * follow a link out of the tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/agent_int.h"
#include "agent/sha256.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/util.h"

static void sha_of(const char *data, size_t len, size_t chunk, char hex[65])
{
	struct hf_sha256 s;

	hf_sha256_init(&s);
	for (size_t off = 0; off < len; off += chunk)
		hf_sha256_update(&s, data + off,
				 len - off < chunk ? len - off : chunk);
	hf_sha256_final_hex(&s, hex);
}

static void test_sha256_vectors(void **state)
{
	/* FIPS 180-4 examples, fed whole and in awkward pieces. */
	static const char *const abc =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char *const two_blocks =
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
	static const char *const empty =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char *million = hf_xmalloc(1000000);
	char hex[65];

	sha_of("abc", 3, 3, hex);
	assert_string_equal(hex, abc);
	sha_of("abc", 3, 1, hex);
	assert_string_equal(hex, abc);
	sha_of("", 0, 1, hex);
	assert_string_equal(hex, empty);
	for (size_t chunk = 1; chunk <= 64; chunk += 7) {
		sha_of(msg, strlen(msg), chunk, hex);
		assert_string_equal(hex, two_blocks);
	}
	memset(million, 'a', 1000000);
	sha_of(million, 1000000, 4093, hex);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67"
				 "f1809a48a497200e046d39ccc7112cd0");
	free(million);
}

static void expect_join(const char *root, const char *base, const char *rel,
			const char *want)
{
	char *got = ag_path_join_within(root, base, rel);

	if (!want) {
		if (got)
			fail_msg("%s + %s: expected refusal, got %s", base, rel,
				 got);
		return;
	}
	if (!got)
		fail_msg("%s + %s: expected %s, got a refusal", base, rel,
			 want);
	assert_string_equal(got, want);
	free(got);
}

static void test_config_destinations_stay_inside(void **state)
{
	const char *root = "/d/tasks/t1", *sb = "/d/tasks/t1/sandbox";

	expect_join(root, sb, "conf/app.conf", "/d/tasks/t1/sandbox/conf/app.conf");
	expect_join(root, sb, "./a//b/./c", "/d/tasks/t1/sandbox/a/b/c");
	expect_join(root, sb, "../pod.conf", "/d/tasks/t1/pod.conf");
	expect_join(root, sb, "x/../../y", "/d/tasks/t1/y");
	expect_join(root, sb, "../../t2/sandbox/x", NULL);
	expect_join(root, sb, "../../../../../etc/passwd", NULL);
	expect_join(root, sb, "/etc/passwd", NULL);
	expect_join(root, sb, "", NULL);
	/* The root itself is not a file destination. */
	expect_join(root, sb, "..", NULL);
	expect_join(root, sb, "../..", NULL);
	/* A sibling sharing the root's prefix is outside. */
	expect_join(root, sb, "../../t1x/a", NULL);
}

static void test_volume_keys_and_task_ids(void **state)
{
	assert_true(ag_volume_key_valid("hello-world/hello-0/rs/data"));
	assert_true(ag_volume_key_valid("a"));
	assert_false(ag_volume_key_valid(""));
	assert_false(ag_volume_key_valid("/abs"));
	assert_false(ag_volume_key_valid("a/../b"));
	assert_false(ag_volume_key_valid("a/./b"));
	assert_false(ag_volume_key_valid("a//b"));
	assert_false(ag_volume_key_valid("a/"));
	assert_false(ag_volume_key_valid("a b"));
	assert_true(ag_task_id_valid("hello-0-server__6f1c2b"));
	assert_false(ag_task_id_valid(".."));
	assert_false(ag_task_id_valid("a/b"));
	assert_false(ag_task_id_valid(".hidden"));
	assert_false(ag_task_id_valid(""));
}

/* The check as a launch order's health_check (the order decoded first). */
static struct ag_check *parse_check(const char *text, char **err)
{
	json_t *o = json_loads(text, 0, NULL);
	json_t *order = json_pack("{s:s, s:s, s:{s:i}, s:O}", "task_id", "t",
				  "cmd", "true", "ports", "http", 8080,
				  "health_check", o);
	struct hf_proto_launch l;
	struct ag_check *c = NULL;

	assert_non_null(o);
	hf_proto_launch_init(&l);
	if (hf_proto_launch_decode(order, &l, err) == 0)
		c = ag_check_parse(&l.health, &l, false, err);
	hf_proto_launch_release(&l);
	json_decref(o);
	json_decref(order);
	return c;
}

static void test_check_parsing(void **state)
{
	struct ag_check *c;
	char *err = NULL;

	c = parse_check("{\"kind\":\"http\",\"port\":\"http\",\"path\":\"/h\","
			"\"interval\":0.5,\"timeout\":2,\"grace_period\":30,"
			"\"max_consecutive_failures\":4}", &err);
	assert_non_null(c);
	assert_null(err);
	assert_int_equal(c->kind, HF_CHECK_HTTP);
	assert_int_equal(c->port, 8080);
	assert_string_equal(c->path, "/h");
	assert_int_equal(c->interval_ms, 500);
	assert_int_equal(c->timeout_ms, 2000);
	assert_int_equal(c->grace_ms, 30000);
	assert_int_equal(c->max_failures, 4);
	ag_check_free(c);

	c = parse_check("{\"kind\":\"tcp\",\"port\":9000}", &err);
	assert_non_null(c);
	assert_int_equal(c->port, 9000);
	assert_int_equal(c->max_failures, 3);
	ag_check_free(c);

	c = parse_check("{\"cmd\":\"true\"}", &err);
	assert_non_null(c);
	assert_int_equal(c->kind, HF_CHECK_CMD);
	ag_check_free(c);

	c = parse_check("{\"kind\":\"tcp\",\"port\":\"nope\"}", &err);
	assert_null(c);
	assert_non_null(err);
	assert_non_null(strstr(err, "nope"));
	free(err);

	c = parse_check("{\"kind\":\"grpc\"}", &err);
	assert_null(c);
	assert_non_null(strstr(err, "grpc"));
	free(err);

	c = parse_check("{\"kind\":\"http\",\"port\":1,\"path\":\"/a b\"}", &err);
	assert_null(c);
	free(err);

	{
		struct hf_proto_launch none;

		hf_proto_launch_init(&none);
		assert_null(ag_check_parse(&none.readiness, &none, true, &err));
		assert_null(err);
	}
}

static void test_flags(void **state)
{
	char *argv[] = {"agent", "--server", "http://a:1,http://b:2",
			"--resources", "cpus=2.5,memory=100,ports=1-2,ports=5-9",
			"--attributes=zone=z1,rack=r", "--sandbox-keep", "0",
			NULL};
	char *bad[] = {"agent", "--server", "x", "--resources", "ports=9-1",
		       NULL};
	struct hf_agent_opts o;
	char *err = NULL;

	hf_agent_opts_init(&o);
	assert_int_equal(hf_agent_opts_parse(&o, 8, argv, &err), 0);
	assert_int_equal(o.servers.len, 2);
	assert_string_equal(o.servers.items[1], "http://b:2");
	assert_true(o.cpus == 2.5);
	assert_int_equal(o.memory_mb, 100);
	assert_int_equal(o.ports.len, 2);
	assert_int_equal(o.ports.items[1].begin, 5);
	assert_string_equal(hf_kvlist_get(&o.attributes, "rack"), "r");
	assert_int_equal(o.sandbox_keep_s, 0);
	assert_string_equal(o.address, "127.0.0.1");
	hf_agent_opts_release(&o);

	hf_agent_opts_init(&o);
	assert_int_equal(hf_agent_opts_parse(&o, 5, bad, &err), HF_EINVAL);
	assert_non_null(strstr(err, "ports=9-1"));
	free(err);
	hf_agent_opts_release(&o);
}

static void test_rm_rf_does_not_follow_links(void **state)
{
	char dir[] = "/tmp/hf-test-agent-XXXXXX";
	char *tree, *outside, *keep, *path;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	tree = hf_xasprintf("%s/tree", dir);
	outside = hf_xasprintf("%s/outside", dir);
	keep = hf_xasprintf("%s/keep", outside);
	assert_int_equal(hf_fs_mkdir_p(tree, 0755, 0755), 0);
	assert_int_equal(hf_fs_mkdir_p(outside, 0755, 0755), 0);
	f = fopen(keep, "w");
	assert_non_null(f);
	fclose(f);
	path = hf_xasprintf("%s/a/b", tree);
	assert_int_equal(hf_fs_mkdir_p(path, 0755, 0755), 0);
	free(path);
	/* A link to outside, as a volume symlinked into a sandbox. */
	path = hf_xasprintf("%s/a/vol", tree);
	assert_int_equal(symlink(outside, path), 0);
	free(path);
	assert_int_equal(ag_rm_rf(tree), 0);
	assert_int_not_equal(access(tree, F_OK), 0);
	assert_int_equal(access(keep, F_OK), 0);
	assert_int_equal(ag_rm_rf(tree), 0); /* gone already: fine */
	assert_int_equal(ag_rm_rf(dir), 0);
	free(tree);
	free(outside);
	free(keep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_config_destinations_stay_inside),
		cmocka_unit_test(test_volume_keys_and_task_ids),
		cmocka_unit_test(test_check_parsing),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_rm_rf_does_not_follow_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
