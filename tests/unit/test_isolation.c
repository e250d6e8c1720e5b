/*
 * test_isolation.c - the small parts of task isolation that run without a
 * node: name escaping for volume paths, capability names, launch.json's
 * isolation keys, the rlimit check, link-proof writes below a directory,
 * and spawning with failures reported over the pipe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/spawn.h"
#include "common/util.h"
#include "shim/shim.h"

#define assert_contains(hay, needle)                                           \
	do {                                                                   \
		const char *h_ = (hay), *n_ = (needle);                        \
		if (!h_ || !strstr(h_, n_))                                    \
			fail_msg("expected \"%s\" to contain \"%s\"",          \
				 h_ ? h_ : "(null)", n_);                      \
	} while (0)

static void check_escape(const char *in, const char *want)
{
	char *got = hf_name_escape(in), *back;

	if (strcmp(got, want) != 0)
		fail_msg("escape(\"%s\") = \"%s\", want \"%s\"", in, got, want);
	back = hf_name_unescape(got, strlen(got));
	if (strcmp(back, in) != 0)
		fail_msg("unescape(\"%s\") = \"%s\", want \"%s\"", got, back,
			 in);
	free(back);
	free(got);
}

static void test_name_escape(void **state)
{
	/* Ordinary names stay as they are: existing data dirs are found. */
	check_escape("hello-world", "hello-world");
	check_escape("p-0", "p-0");
	check_escape("server-resource-set", "server-resource-set");
	check_escape("data_dir", "data_dir");
	/* What could nest or climb is escaped, and so is the escape. */
	check_escape("vol/p-0", "vol%2Fp-0");
	check_escape("a%2Fb", "a%252Fb");
	check_escape("..", "%2E.");
	check_escape(".hidden", "%2Ehidden");
	check_escape("a b", "a%20b");
}

static void test_name_escape_is_injective(void **state)
{
	static const char *const names[] = {
		"vol", "vol/p-0", "vol%2Fp-0", "vol_p-0", "vol/p", "vol/p/0",
		".x", "%2Ex", "x.", "a/b/c", "a%2Fb/c", "a/b%2Fc",
	};

	for (size_t i = 0; i < HF_ARRAY_LEN(names); i++) {
		char *a = hf_name_escape(names[i]);

		assert_null(strchr(a, '/'));
		for (size_t k = 0; k < i; k++) {
			char *b = hf_name_escape(names[k]);

			if (strcmp(a, b) == 0)
				fail_msg("\"%s\" and \"%s\" both escape to "
					 "\"%s\"", names[i], names[k], a);
			free(b);
		}
		free(a);
	}
}

static void test_caps(void **state)
{
	uint64_t def = hf_cap_default_set();

	assert_int_equal(hf_cap_by_name("NET_ADMIN"), 12);
	assert_int_equal(hf_cap_by_name("CAP_NET_ADMIN"), 12);
	assert_int_equal(hf_cap_by_name("net_admin"), -1);
	assert_int_equal(hf_cap_by_name("CAP_NOPE"), -1);
	assert_string_equal(hf_cap_name(21), "CAP_SYS_ADMIN");
	assert_null(hf_cap_name(hf_cap_last() + 1));
	for (int c = 0; c <= hf_cap_last(); c++)
		assert_int_equal(hf_cap_by_name(hf_cap_name(c)), c);
	/* Docker's set, without MKNOD, and nothing that reaches the node. */
	assert_true(def & HF_CAP_BIT(hf_cap_by_name("CHOWN")));
	assert_true(def & HF_CAP_BIT(hf_cap_by_name("NET_BIND_SERVICE")));
	assert_false(def & HF_CAP_BIT(hf_cap_by_name("MKNOD")));
	assert_false(def & HF_CAP_BIT(hf_cap_by_name("SYS_ADMIN")));
	assert_false(def & HF_CAP_BIT(hf_cap_by_name("SYS_PTRACE")));
	assert_false(def & HF_CAP_BIT(hf_cap_by_name("DAC_READ_SEARCH")));
}

static const char *const iso_launch =
	"{\"task_id\": \"a-0-s__1\", \"cmd\": \"true\", "
	"\"sandbox\": \"/d/tasks/a-0-s__1/sandbox\", \"isolate\": true, "
	"\"mounts\": [{\"source\": \"/d/volumes/a/a-0/rs/v\", "
	"\"target\": \"data/sub\"}], \"hide\": [\"/d\"], "
	"\"visible\": [\"/d/tasks/a-0-s__1/pod.conf\"], "
	"\"capabilities\": [\"CAP_NET_ADMIN\", \"SYS_NICE\"], "
	"\"privileged\": false}";

static void test_launch_isolation_keys_round_trip(void **state)
{
	struct hf_shim_launch l, back;
	char *err = NULL, *text;

	hf_shim_launch_init(&l);
	hf_shim_launch_init(&back);
	assert_int_equal(hf_shim_launch_parse(iso_launch, strlen(iso_launch),
					      &l, &err),
			 0);
	assert_true(l.isolate);
	assert_int_equal(l.mounts.len, 1);
	assert_string_equal(l.mounts.items[0].target, "data/sub");
	assert_string_equal(l.hide.items[0], "/d");
	assert_int_equal(l.caps, HF_CAP_BIT(12) | HF_CAP_BIT(23));
	text = hf_shim_launch_format(&l);
	assert_int_equal(hf_shim_launch_parse(text, strlen(text), &back, &err),
			 0);
	assert_int_equal(back.caps, l.caps);
	assert_string_equal(back.mounts.items[0].source,
			    "/d/volumes/a/a-0/rs/v");
	assert_string_equal(back.visible.items[0],
			    "/d/tasks/a-0-s__1/pod.conf");
	free(text);
	hf_shim_launch_release(&l);
	hf_shim_launch_release(&back);
}

static void expect_launch_error(const char *json, const char *want)
{
	struct hf_shim_launch l;
	char *err = NULL;

	hf_shim_launch_init(&l);
	assert_int_equal(hf_shim_launch_parse(json, strlen(json), &l, &err),
			 HF_EINVAL);
	assert_contains(err, want);
	free(err);
	hf_shim_launch_release(&l);
}

static void test_launch_isolation_keys_refused(void **state)
{
#define BASE "{\"task_id\": \"t\", \"cmd\": \"true\", \"sandbox\": \"/s\", "
	expect_launch_error(BASE "\"isolate\": true, \"mounts\": "
			    "[{\"source\": \"/v\", \"target\": \"../x\"}]}",
			    "mounts[0]");
	expect_launch_error(BASE "\"isolate\": true, \"mounts\": "
			    "[{\"source\": \"v\", \"target\": \"x\"}]}",
			    "mounts[0]");
	expect_launch_error(BASE "\"isolate\": true, \"hide\": [\"/\"]}",
			    "hide[0]");
	expect_launch_error(BASE "\"isolate\": true, \"hide\": [\"/a/../b\"]}",
			    "hide[0]");
	expect_launch_error(BASE "\"mounts\": [{\"source\": \"/v\", "
			    "\"target\": \"x\"}]}", "need \"isolate\"");
	expect_launch_error(BASE "\"capabilities\": [\"CAP_FLY\"]}",
			    "capabilities[0]");
	expect_launch_error(BASE "\"privileged\": 1}", "\"privileged\"");
#undef BASE
}

/* Whether this process holds CAP_SYS_RESOURCE (may raise hard limits). */
static bool may_raise_limits(void)
{
	char *text = NULL, *eff;
	bool yes = true;

	if (hf_read_file("/proc/self/status", 1 << 16, &text, NULL) == 0 &&
	    (eff = strstr(text, "CapEff:")))
		yes = (strtoull(eff + 7, NULL, 16) >> 24) & 1;
	free(text);
	return yes;
}

static void test_rlimits_check(void **state)
{
	struct hf_shim_launch l;
	struct hf_shim_rlimit *r;
	struct rlimit cur;
	char *msg = NULL, want[64];

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &cur), 0);
	hf_shim_launch_init(&l);
	r = HF_VEC_PUSH(&l.rlimits);
	r->resource = RLIMIT_NOFILE;
	r->soft = r->hard = cur.rlim_max == RLIM_INFINITY
				    ? 1024
				    : (int64_t)cur.rlim_max;
	assert_int_equal(hf_shim_rlimits_check(&l, &msg), 0);
	assert_null(msg);
	if (cur.rlim_max != RLIM_INFINITY && !may_raise_limits()) {
		/* Without CAP_SYS_RESOURCE: above the hard limit is refused. */
		r->soft = r->hard = (int64_t)cur.rlim_max + 1000;
		assert_int_equal(hf_shim_rlimits_check(&l, &msg), HF_EINVAL);
		assert_contains(msg, "RLIMIT_NOFILE");
		snprintf(want, sizeof(want), "%lld",
			 (long long)cur.rlim_max + 1000);
		assert_contains(msg, want);
		snprintf(want, sizeof(want), "hard limit of %llu",
			 (unsigned long long)cur.rlim_max);
		assert_contains(msg, want);
		free(msg);
	}
	hf_shim_launch_release(&l);
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/hf-unit-iso-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return hf_xstrdup(tmpl);
}

static void rm_tree(const char *dir)
{
	char *cmd = hf_xasprintf("rm -rf '%s'", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_write_beneath_refuses_links(void **state)
{
	char *dir = make_tmpdir(), *outside = make_tmpdir();
	char *link = hf_xasprintf("%s/conf", dir);
	char *path, *text = NULL;
	int root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd;

	assert_true(root >= 0);
	/* A normal write creates the directories on the way. */
	assert_int_equal(hf_fs_write_beneath(root, "a/b/c.conf", "x\n", 2, 0640,
					     HF_FS_KEEP_OWNER, 0),
			 0);
	path = hf_xasprintf("%s/a/b/c.conf", dir);
	assert_int_equal(hf_read_file(path, 100, &text, NULL), 0);
	assert_string_equal(text, "x\n");
	free(text);
	free(path);
	/* A link planted on the way is never followed. */
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(hf_fs_write_beneath(root, "conf/app.conf", "y", 1,
					     0644, HF_FS_KEEP_OWNER, 0),
			 -1);
	assert_int_equal(errno, ELOOP);
	path = hf_xasprintf("%s/app.conf", outside);
	assert_int_equal(access(path, F_OK), -1);
	free(path);
	assert_int_equal(hf_fs_open_dir_beneath(root, "conf", true, 0755,
						HF_FS_KEEP_OWNER, 0),
			 -1);
	assert_int_equal(errno, ELOOP);
	/* A link at the file itself is replaced, not written through. */
	path = hf_xasprintf("%s/shadow", outside);
	assert_int_equal(hf_fs_write_beneath(root, "f", "1", 1, 0644,
					     HF_FS_KEEP_OWNER, 0),
			 0);
	free(link);
	link = hf_xasprintf("%s/f", dir);
	assert_int_equal(unlink(link), 0);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(hf_fs_write_beneath(root, "f", "2", 1, 0644,
					     HF_FS_KEEP_OWNER, 0),
			 0);
	assert_int_equal(access(path, F_OK), -1);
	/* ".." never climbs out. */
	assert_int_equal(hf_fs_write_beneath(root, "a/../../x", "z", 1, 0644,
					     HF_FS_KEEP_OWNER, 0),
			 -1);
	assert_int_equal(errno, EXDEV);
	fd = hf_fs_open_dir_beneath(root, "a/b", false, 0, HF_FS_KEEP_OWNER, 0);
	assert_true(fd >= 0);
	close(fd);
	close(root);
	free(path);
	free(link);
	rm_tree(dir);
	rm_tree(outside);
	free(dir);
	free(outside);
}

static int fail_setup(void *arg, const char **what)
{
	*what = "enter the test's confinement";
	return EPERM;
}

static void test_spawn_reports_failures_before_exec(void **state)
{
	char *argv[] = {"/nonexistent/prog", NULL}, *err = NULL;
	char *ok_argv[] = {"/bin/sh", "-c", "exit 7", NULL};
	struct hf_spawn sp;
	pid_t pid = 0;
	int status;

	memset(&sp, 0, sizeof(sp));
	sp.in = sp.out = sp.err = -1;
	sp.path = argv[0];
	sp.argv = argv;
	assert_int_equal(hf_spawn_start(&sp, &pid, &err), -1);
	assert_string_equal(err, "cannot run /nonexistent/prog: No such file "
				 "or directory");
	free(err);
	sp.path = "/bin/sh";
	sp.argv = ok_argv;
	sp.cwd = "/nonexistent-dir";
	assert_int_equal(hf_spawn_start(&sp, &pid, &err), -1);
	assert_contains(err, "cannot enter /nonexistent-dir");
	free(err);
	sp.cwd = NULL;
	sp.setup = fail_setup;
	assert_int_equal(hf_spawn_start(&sp, &pid, &err), -1);
	assert_string_equal(err, "cannot enter the test's confinement: "
				 "Operation not permitted");
	free(err);
	/* A command that runs and fails is the command's own exit status. */
	sp.setup = NULL;
	assert_int_equal(hf_spawn_start(&sp, &pid, &err), 0);
	assert_null(err);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_escape),
		cmocka_unit_test(test_name_escape_is_injective),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_launch_isolation_keys_round_trip),
		cmocka_unit_test(test_launch_isolation_keys_refused),
		cmocka_unit_test(test_rlimits_check),
		cmocka_unit_test(test_write_beneath_refuses_links),
		cmocka_unit_test(test_spawn_reports_failures_before_exec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
