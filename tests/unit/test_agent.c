/*
 * test_agent.c - the agent's pure pieces: SHA-256 (the artifact cache's
 * key), path containment for config destinations, volume keys and task
 * ids, check parsing, flag parsing, and the removal that must never
 * follow a link out of the tree.
 */
#include <errno.h>
#include <fcntl.h>
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

static void expect_size(const char *text, int64_t want)
{
	int64_t got = -1;
	int rc = ag_size_parse(text, &got);

	if (rc || got != want)
		fail_msg("size \"%s\": rc %d, %lld bytes; want %lld", text, rc,
			 (long long)got, (long long)want);
}

static void expect_no_size(const char *text, int want_rc)
{
	int64_t got = -1;
	int rc = ag_size_parse(text, &got);

	if (rc != want_rc || got != -1)
		fail_msg("size \"%s\": rc %d (%lld bytes), want rc %d",
			 text, rc, (long long)got, want_rc);
}

static void test_sizes(void **state)
{
	(void)state;
	/* A bare number is GiB, as the volumes' size option reads it. */
	expect_size("1", 1LL << 30);
	expect_size("10", 10LL << 30);
	expect_size("500M", 500LL << 20);
	expect_size("500m", 500LL << 20);
	expect_size("10G", 10LL << 30);
	expect_size("10Gi", 10LL << 30);
	expect_size("10GB", 10LL << 30);
	expect_size("10GiB", 10LL << 30);
	expect_size("10gib", 10LL << 30);
	expect_size("1.5T", 3LL << 39);
	expect_size("0.5", 1LL << 29);
	expect_size("1048576T", 1LL << 60);
	/* A fraction of a byte is dropped. */
	expect_size("1.0000001M", 1LL << 20);
	expect_no_size("", HF_EINVAL);
	expect_no_size("G", HF_EINVAL);
	expect_no_size(".", HF_EINVAL);
	expect_no_size(".5", HF_EINVAL);
	expect_no_size("1.", HF_EINVAL);
	expect_no_size("1.G", HF_EINVAL);
	expect_no_size("-1G", HF_EINVAL);
	expect_no_size("+1G", HF_EINVAL);
	expect_no_size("1..5G", HF_EINVAL);
	expect_no_size("1e3M", HF_EINVAL);
	expect_no_size("64K", HF_EINVAL);
	expect_no_size("1P", HF_EINVAL);
	expect_no_size("10X", HF_EINVAL);
	expect_no_size("10GG", HF_EINVAL);
	expect_no_size("10 G", HF_EINVAL);
	expect_no_size("10Gx", HF_EINVAL);
	expect_no_size("1048577T", HF_ETOOBIG);
	expect_no_size("99999999999999999999999", HF_ETOOBIG);
}

static void expect_storage_flag(const char *val, const char *dir,
				int64_t size)
{
	char *argv[] = {"agent", "--server", "http://a:1", "--storage",
			(char *)val, NULL};
	struct hf_agent_opts o;
	char *err = NULL;

	hf_agent_opts_init(&o);
	if (hf_agent_opts_parse(&o, 5, argv, &err))
		fail_msg("--storage %s: %s", val, err);
	assert_string_equal(o.storage_dir, dir);
	assert_int_equal(o.storage_size, size);
	hf_agent_opts_release(&o);
}

static void expect_storage_error(const char *val, const char *want)
{
	char *argv[] = {"agent", "--server", "http://a:1", "--storage",
			(char *)val, NULL};
	struct hf_agent_opts o;
	char *err = NULL;

	hf_agent_opts_init(&o);
	assert_int_equal(hf_agent_opts_parse(&o, 5, argv, &err), HF_EINVAL);
	assert_non_null(err);
	if (strcmp(err, want) != 0)
		fail_msg("--storage %s: got \"%s\", want \"%s\"", val, err,
			 want);
	assert_null(o.storage_dir);
	free(err);
	hf_agent_opts_release(&o);
}

static void test_storage_flag(void **state)
{
	struct hf_agent_opts o;

	(void)state;
	hf_agent_opts_init(&o);
	assert_null(o.storage_dir); /* storage-less unless asked */
	hf_agent_opts_release(&o);
	expect_storage_flag("/srv/pool", "/srv/pool", 0);
	expect_storage_flag("/srv/pool,size=10G", "/srv/pool", 10LL << 30);
	expect_storage_flag("rel/pool,size=64M", "rel/pool", 64LL << 20);
	expect_storage_flag("/srv/pool,size=2", "/srv/pool", 2LL << 30);
	expect_storage_error("", "--storage: \"\" names no directory (DIR "
				 "or DIR,size=N)");
	expect_storage_error(",size=1G", "--storage: \",size=1G\" names no "
					 "directory (DIR or DIR,size=N)");
	expect_storage_error("/", "--storage: the pool cannot be /: give it "
				  "a directory of its own");
	expect_storage_error("/srv/pool,", "--storage: \"/srv/pool,\" ends "
					   "with a comma (DIR or DIR,size=N)");
	expect_storage_error("/srv/pool,size=lots",
			     "--storage: size=lots is not a size (a number of "
			     "GiB, or with a unit: 500M, 10G, 1.5T)");
	expect_storage_error("/srv/pool,size=1M",
			     "--storage: size=1M is out of range (64M to "
			     "1048576T)");
	expect_storage_error("/srv/pool,size=2000000T",
			     "--storage: size=2000000T is out of range (64M to "
			     "1048576T)");
	expect_storage_error("/srv/pool,sise=1G",
			     "--storage: unknown option \"sise=1G\" (the only "
			     "one is size=N)");
	expect_storage_error("/srv/pool,sizes=1G",
			     "--storage: unknown option \"sizes=1G\" (the only "
			     "one is size=N)");
	expect_storage_error("/srv/pool,size=1G,size=2G",
			     "--storage: size is given twice");
}

/* A minimal agent for ag_pool_open: data dir, node id, options. */
static void pool_agent(struct hf_agent *ag, struct hf_agent_opts *o,
		       const char *data, const char *node, const char *pool,
		       int64_t size)
{
	memset(ag, 0, sizeof(*ag));
	hf_agent_opts_init(o);
	o->storage_dir = pool ? hf_xstrdup(pool) : NULL;
	o->storage_size = size;
	ag->opts = o;
	ag->data = hf_xstrdup(data);
	ag->node_id = hf_xstrdup(node);
	ag->pool.lock_fd = -1;
	hf_proto_node_info_init(&ag->info);
}

static void pool_agent_release(struct hf_agent *ag, struct hf_agent_opts *o)
{
	ag_pool_close(&ag->pool);
	hf_proto_node_info_release(&ag->info);
	free(ag->data);
	free(ag->node_id);
	hf_agent_opts_release(o);
}

static void test_pool_open(void **state)
{
	char dir[] = "/tmp/hf-test-pool-XXXXXX";
	struct hf_agent a, b;
	struct hf_agent_opts oa, ob;
	char *data, *pool, *path, *text = NULL, *sub;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	data = hf_xasprintf("%s/data", dir);
	pool = hf_xasprintf("%s/p/pool", dir);
	assert_int_equal(hf_fs_mkdir_p(data, 0755, 0755), 0);

	/* Without --storage: storage-less, nothing made. */
	pool_agent(&a, &oa, data, "n1", NULL, 0);
	assert_int_equal(ag_pool_open(&a), 0);
	assert_false(a.info.has_storage);
	assert_null(a.pool.dir);
	pool_agent_release(&a, &oa);

	/* Made on first use, 0700, with its marker and replicas/. */
	pool_agent(&a, &oa, data, "n1", pool, 100LL << 20);
	assert_int_equal(ag_pool_open(&a), 0);
	assert_true(a.info.has_storage);
	assert_string_equal(a.info.storage.pool, pool);
	assert_int_equal(stat(pool, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	path = hf_xasprintf("%s/replicas", pool);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(path);
	path = hf_xasprintf("%s/pool.json", pool);
	assert_int_equal(hf_read_file(path, 4096, &text, NULL), 0);
	assert_non_null(strstr(text, "\"node\": \"n1\""));
	free(text);
	text = NULL;
	free(path);
	/* size= caps the capacity; an empty pool provisions and uses 0. */
	assert_int_equal(a.info.storage.capacity, 100LL << 20);
	assert_int_equal(a.info.storage.provisioned, 0);
	assert_int_equal(a.info.storage.used, 0);
	assert_true(a.info.storage.free > 0);

	/* A second agent (its own data dir) is refused while a holds it. */
	sub = hf_xasprintf("%s/data2", dir);
	assert_int_equal(hf_fs_mkdir_p(sub, 0755, 0755), 0);
	pool_agent(&b, &ob, sub, "n1", pool, 0);
	assert_int_equal(ag_pool_open(&b), HF_EUNAVAIL);
	assert_false(b.info.has_storage);
	pool_agent_release(&b, &ob);
	pool_agent_release(&a, &oa);

	/* Free again, but the pool belongs to n1: n2 is refused. */
	pool_agent(&b, &ob, sub, "n2", pool, 0);
	assert_int_equal(ag_pool_open(&b), HF_EINVAL);
	pool_agent_release(&b, &ob);
	/* n1 again (a restarted agent): fine, capacity from the fs. */
	pool_agent(&a, &oa, data, "n1", pool, 0);
	assert_int_equal(ag_pool_open(&a), 0);
	assert_true(a.info.storage.capacity >= a.info.storage.free);

	/* Replica files count: provisioned by size, used by blocks. */
	path = hf_xasprintf("%s/replicas/vol1/rep1", pool);
	assert_int_equal(hf_fs_mkdir_p(path, 0700, 0700), 0);
	free(path);
	path = hf_xasprintf("%s/replicas/vol1/rep1/data", pool);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), 1LL << 30), 0); /* sparse */
	assert_int_equal(fputs("written", f) >= 0, 1);
	fclose(f);
	free(path);
	path = hf_xasprintf("%s/replicas/vol1/rep1/meta", pool);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("meta", f);
	fclose(f);
	free(path);
	{
		struct hf_proto_storage s2 = {0};

		assert_int_equal(ag_pool_stat(a.pool.dir, 0, &s2), 0);
		assert_int_equal(s2.provisioned, 1LL << 30);
		assert_true(s2.used > 0 && s2.used < (1LL << 20));
		assert_true(s2.capacity == s2.free + s2.used);
		assert_int_equal(ag_pool_stat(a.pool.dir, 64LL << 20, &s2), 0);
		assert_int_equal(s2.capacity, 64LL << 20);
	}
	pool_agent_release(&a, &oa);

	/* A pool inside the agent's own volumes, or holding its data dir. */
	path = hf_xasprintf("%s/volumes/x/y/", data);
	pool_agent(&a, &oa, data, "n1", path, 0);
	assert_int_equal(ag_pool_open(&a), HF_EINVAL);
	pool_agent_release(&a, &oa);
	free(path);
	/* ... refused before anything was made. */
	path = hf_xasprintf("%s/volumes", data);
	assert_int_not_equal(access(path, F_OK), 0);
	free(path);
	pool_agent(&a, &oa, data, "n1", dir, 0);
	assert_int_equal(ag_pool_open(&a), HF_EINVAL);
	pool_agent_release(&a, &oa);

	/* A directory with a foreign pool.json is not taken over. */
	path = hf_xasprintf("%s/other", dir);
	assert_int_equal(hf_fs_mkdir_p(path, 0700, 0700), 0);
	free(path);
	path = hf_xasprintf("%s/other/pool.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"something\": 1}", f);
	fclose(f);
	free(path);
	path = hf_xasprintf("%s/other", dir);
	pool_agent(&a, &oa, data, "n1", path, 0);
	assert_int_equal(ag_pool_open(&a), HF_EINVAL);
	pool_agent_release(&a, &oa);
	free(path);

	assert_int_equal(ag_rm_rf(dir), 0);
	free(sub);
	free(data);
	free(pool);
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

static mode_t mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	return sb.st_mode & 07777;
}

/* mkdir -p: parents and the last with their modes; what exists stays. */
static void test_mkdir_p(void **state)
{
	char dir[] = "/tmp/hf-test-mkdir-XXXXXX";
	char *deep, *mid, *top, *file, *under, *rel, *cwd;
	mode_t um = umask(0);

	(void)state;
	assert_non_null(mkdtemp(dir));
	top = hf_xasprintf("%s/a", dir);
	mid = hf_xasprintf("%s/a/b", dir);
	deep = hf_xasprintf("%s/a/b/c", dir);
	assert_int_equal(hf_fs_mkdir_p(deep, 0751, 0700), 0);
	assert_int_equal(mode_of(top), 0751);
	assert_int_equal(mode_of(mid), 0751);
	assert_int_equal(mode_of(deep), 0700);
	/* Again: nothing to do, modes untouched. */
	assert_int_equal(hf_fs_mkdir_p(deep, 0755, 0755), 0);
	assert_int_equal(mode_of(deep), 0700);
	/* Trailing and doubled slashes. */
	free(deep);
	deep = hf_xasprintf("%s/a//b/d//e/", dir);
	assert_int_equal(hf_fs_mkdir_p(deep, 0750, 0710), 0);
	free(deep);
	deep = hf_xasprintf("%s/a/b/d", dir);
	assert_int_equal(mode_of(deep), 0750);
	free(deep);
	deep = hf_xasprintf("%s/a/b/d/e", dir);
	assert_int_equal(mode_of(deep), 0710);
	/* A file in the way, as the path or as one of its parents. */
	file = hf_xasprintf("%s/f", dir);
	close(open(file, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(hf_fs_mkdir_p(file, 0755, 0755), -1);
	assert_int_equal(errno, ENOTDIR);
	under = hf_xasprintf("%s/f/x/y", dir);
	assert_int_equal(hf_fs_mkdir_p(under, 0755, 0755), -1);
	assert_int_equal(errno, ENOTDIR);
	/* Relative to the working directory. */
	cwd = getcwd(NULL, 0);
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(hf_fs_mkdir_p("r1/r2", 0755, 0700), 0);
	assert_int_equal(hf_fs_mkdir_p("r1", 0755, 0700), 0);
	assert_int_equal(chdir(cwd), 0);
	rel = hf_xasprintf("%s/r1/r2", dir);
	assert_int_equal(mode_of(rel), 0700);
	assert_int_equal(hf_fs_mkdir_p("", 0755, 0755), -1);
	assert_int_equal(hf_fs_mkdir_p("/", 0755, 0755), 0);
	umask(um);
	assert_int_equal(ag_rm_rf(dir), 0);
	free(cwd);
	free(rel);
	free(under);
	free(file);
	free(deep);
	free(mid);
	free(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdir_p),
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_config_destinations_stay_inside),
		cmocka_unit_test(test_volume_keys_and_task_ids),
		cmocka_unit_test(test_check_parsing),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_storage_flag),
		cmocka_unit_test(test_pool_open),
		cmocka_unit_test(test_rm_rf_does_not_follow_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
