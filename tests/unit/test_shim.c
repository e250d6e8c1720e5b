/*
 * test_shim.c - the shim's pure parts: launch.json parsing and validation,
 * the status codec, log rotation, and the cgroup code's failure paths
 * against fake cgroup trees (HOLDFAST_CGROUP_ROOT).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/rlimit.h"
#include "common/util.h"
#include "shim/cgroup.h"
#include "shim/shim.h"
#include "plan/plan.h"
#include "shim/tasklog.h"

#define assert_contains(hay, needle)                                           \
	do {                                                                   \
		const char *h_ = (hay), *n_ = (needle);                        \
		if (!h_ || !strstr(h_, n_))                                    \
			fail_msg("expected \"%s\" to contain \"%s\"",          \
				 h_ ? h_ : "(null)", n_);                      \
	} while (0)

static const char *const full_launch =
	"{\"task_id\": \"hello-0-server__1234\", \"cmd\": \"echo hi\", "
	"\"env\": {\"K\": \"V\", \"PATH\": \"/bin\"}, "
	"\"sandbox\": \"/var/lib/hf/sb\", "
	"\"rlimits\": [{\"name\": \"RLIMIT_NOFILE\", \"soft\": 1024, "
	"\"hard\": 4096}, {\"name\": \"RLIMIT_CORE\", \"soft\": -1, "
	"\"hard\": -1}], \"cpus\": 0.5, \"memory_mb\": 256, "
	"\"cgroup_parent\": \"holdfast/tasks\", \"log_max_bytes\": 1000, "
	"\"log_keep\": 2, \"kill_grace_period\": 2.5, \"user\": \"nobody\"}";

static void test_launch_parse_full(void **state)
{
	struct hf_shim_launch l;
	char *err = NULL;

	hf_shim_launch_init(&l);
	assert_int_equal(hf_shim_launch_parse(full_launch, strlen(full_launch),
					      &l, &err),
			 0);
	assert_null(err);
	assert_string_equal(l.task_id, "hello-0-server__1234");
	assert_string_equal(l.cmd, "echo hi");
	assert_string_equal(l.sandbox, "/var/lib/hf/sb");
	assert_int_equal(l.env.len, 2);
	assert_string_equal(hf_kvlist_get(&l.env, "K"), "V");
	assert_int_equal(l.rlimits.len, 2);
	assert_int_equal(l.rlimits.items[0].resource, RLIMIT_NOFILE);
	assert_int_equal(l.rlimits.items[0].soft, 1024);
	assert_int_equal(l.rlimits.items[0].hard, 4096);
	assert_int_equal(l.rlimits.items[1].soft, -1);
	assert_true(l.cpus == 0.5);
	assert_int_equal(l.memory_mb, 256);
	assert_string_equal(l.cgroup_parent, "holdfast/tasks");
	assert_int_equal(l.log_max_bytes, 1000);
	assert_int_equal(l.log_keep, 2);
	assert_true(l.kill_grace_period == 2.5);
	assert_string_equal(l.user, "nobody");
	hf_shim_launch_release(&l);
}

static void test_launch_defaults(void **state)
{
	const char *doc = "{\"task_id\": \"t\", \"cmd\": \"true\", "
			  "\"sandbox\": \"/s\", \"user\": null}";
	struct hf_shim_launch l;
	char *err = NULL;

	hf_shim_launch_init(&l);
	assert_int_equal(hf_shim_launch_parse(doc, strlen(doc), &l, &err), 0);
	assert_int_equal(l.env.len, 0);
	assert_int_equal(l.rlimits.len, 0);
	assert_true(l.cpus == 0);
	assert_int_equal(l.memory_mb, 0);
	assert_string_equal(l.cgroup_parent, "holdfast");
	assert_int_equal(l.log_max_bytes, 10 * 1024 * 1024);
	assert_int_equal(l.log_keep, 3);
	assert_true(l.kill_grace_period == 5);
	assert_null(l.user);
	hf_shim_launch_release(&l);
}

static const struct {
	const char *doc;
	const char *msg;
} bad_launches[] = {
	{"", "not valid JSON"},
	{"[1]", "must be a JSON object"},
	{"{\"cmd\": \"x\", \"sandbox\": \"/s\"}", "\"task_id\" is required"},
	{"{\"task_id\": \"t\", \"sandbox\": \"/s\"}", "\"cmd\" is required"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\"}", "\"sandbox\" is required"},
	{"{\"task_id\": \"t\", \"cmd\": \"\", \"sandbox\": \"/s\"}",
	 "\"cmd\" must not be empty"},
	{"{\"task_id\": \"a/b\", \"cmd\": \"x\", \"sandbox\": \"/s\"}",
	 "\"task_id\" \"a/b\""},
	{"{\"task_id\": \"..\", \"cmd\": \"x\", \"sandbox\": \"/s\"}",
	 "\"task_id\" \"..\""},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"rel\"}",
	 "must be an absolute path"},
	{"{\"task_id\": \"t\", \"cmd\": 3, \"sandbox\": \"/s\"}",
	 "\"cmd\" must be a string"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"memory\": 1}",
	 "unknown key \"memory\""},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"env\": []}",
	 "\"env\" must be an object"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"env\": {\"A=B\": \"x\"}}",
	 "must not contain '='"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"env\": {\"A\": 1}}",
	 "env \"A\" must be a string"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"rlimits\": [{\"name\": \"RLIMIT_FOO\", \"soft\": 1, "
	 "\"hard\": 1}]}",
	 "unknown limit \"RLIMIT_FOO\""},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"rlimits\": [{\"name\": \"RLIMIT_NOFILE\", \"soft\": 10, "
	 "\"hard\": 5}]}",
	 "soft 10 exceeds hard 5"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"rlimits\": [{\"name\": \"RLIMIT_NOFILE\", \"soft\": -1, "
	 "\"hard\": 5}]}",
	 "exceeds hard"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"rlimits\": [{\"name\": \"RLIMIT_NOFILE\", \"soft\": 1}]}",
	 "\"hard\" must be an integer"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"rlimits\": [{\"name\": \"RLIMIT_NOFILE\", \"soft\": 1, "
	 "\"hard\": 1}, {\"name\": \"RLIMIT_NOFILE\", \"soft\": 1, "
	 "\"hard\": 1}]}",
	 "given twice"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"cpus\": -1}",
	 "\"cpus\" must be a number"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"memory_mb\": 1.5}",
	 "\"memory_mb\" must be an integer"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"log_keep\": 100000}",
	 "\"log_keep\" must be an integer from 0 to 1000"},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"cgroup_parent\": \"/abs\"}",
	 "\"cgroup_parent\" \"/abs\""},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"cgroup_parent\": \"a/../b\"}",
	 "\"cgroup_parent\" \"a/../b\""},
	{"{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	 "\"user\": \"\"}",
	 "\"user\" must be a user name"},
	{"{\"task_id\": \"t\", \"task_id\": \"u\", \"cmd\": \"x\", "
	 "\"sandbox\": \"/s\"}",
	 "duplicate"},
};

static void test_launch_invalid(void **state)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(bad_launches); i++) {
		struct hf_shim_launch l;
		char *err = NULL;
		int rc;

		hf_shim_launch_init(&l);
		rc = hf_shim_launch_parse(bad_launches[i].doc,
					  strlen(bad_launches[i].doc), &l,
					  &err);
		if (rc == 0)
			fail_msg("accepted: %s", bad_launches[i].doc);
		assert_true(rc == HF_EINVAL || rc == HF_EPARSE);
		assert_contains(err, bad_launches[i].msg);
		/* On error only the defaults are left. */
		assert_null(l.task_id);
		assert_string_equal(l.cgroup_parent, "holdfast");
		free(err);
		hf_shim_launch_release(&l);
	}
}

static void test_launch_format_roundtrip(void **state)
{
	struct hf_shim_launch a, b;
	char *err = NULL, *text, *again;

	hf_shim_launch_init(&a);
	hf_shim_launch_init(&b);
	assert_int_equal(hf_shim_launch_parse(full_launch, strlen(full_launch),
					      &a, &err),
			 0);
	text = hf_shim_launch_format(&a);
	assert_int_equal(hf_shim_launch_parse(text, strlen(text), &b, &err), 0);
	again = hf_shim_launch_format(&b);
	assert_string_equal(text, again);
	free(text);
	free(again);
	hf_shim_launch_release(&a);
	hf_shim_launch_release(&b);
}

static void test_rlimit_names(void **state)
{
	assert_int_equal(hf_rlimit_by_name("RLIMIT_NOFILE"),
			 RLIMIT_NOFILE);
	assert_int_equal(hf_rlimit_by_name("RLIMIT_STACK"), RLIMIT_STACK);
	assert_int_equal(hf_rlimit_by_name("NOFILE"), -1);
	assert_string_equal(hf_rlimit_name(RLIMIT_AS), "RLIMIT_AS");
	assert_null(hf_rlimit_name(-5));
}

/* The restart policy, read and formatted (jansson) and read again. */
static void test_launch_restart_policy(void **state)
{
	static const char doc[] =
	    "{\"task_id\": \"t\", \"cmd\": \"x\", \"sandbox\": \"/s\", "
	    "\"restart\": {\"backoff_base\": 0.5, \"backoff_max\": 30, "
	    "\"reset_after\": 90, \"max\": 7}}";
	struct hf_shim_launch a, b;
	char *err = NULL, *text;

	hf_shim_launch_init(&a);
	hf_shim_launch_init(&b);
	assert_false(a.restart.on);
	assert_int_equal(hf_shim_launch_parse(doc, strlen(doc), &a, &err), 0);
	assert_true(a.restart.on);
	assert_true(a.restart.backoff_base == 0.5);
	assert_true(a.restart.backoff_max == 30);
	assert_true(a.restart.reset_after == 90);
	assert_int_equal(a.restart.max, 7);
	text = hf_shim_launch_format(&a);
	assert_int_equal(hf_shim_launch_parse(text, strlen(text), &b, &err), 0);
	assert_true(b.restart.on && b.restart.max == 7 &&
		    b.restart.backoff_base == 0.5 &&
		    b.restart.reset_after == 90);
	free(text);
	/* No policy: none formatted, none read back; defaults kept. */
	hf_shim_launch_release(&a);
	hf_shim_launch_init(&a);
	a.task_id = hf_xstrdup("t");
	a.cmd = hf_xstrdup("x");
	a.sandbox = hf_xstrdup("/s");
	text = hf_shim_launch_format(&a);
	assert_null(strstr(text, "restart"));
	assert_int_equal(hf_shim_launch_parse(text, strlen(text), &b, &err), 0);
	assert_false(b.restart.on);
	assert_true(b.restart.backoff_base == 1 && b.restart.backoff_max == 60 &&
		    b.restart.reset_after == 120 && b.restart.max == 0);
	free(text);
	hf_shim_launch_release(&a);
	hf_shim_launch_release(&b);
}

/* The restart fields, written by the shim and read by the agent. */
static void test_status_restart_fields(void **state)
{
	struct hf_shim_status a, b;
	char *text, *again;

	hf_shim_status_init(&a);
	hf_shim_status_init(&b);
	a.state = HF_TS_STARTING;
	a.backoff = true;
	a.task_id = hf_xstrdup("t");
	a.shim_pid = 10;
	a.restarts = 3;
	a.has_last_exit_code = true;
	a.last_exit_code = 2;
	a.last_exit_at = 1700000000100;
	a.last_oom_killed = true;
	a.last_restart_at = 1700000000050;
	a.restart_at = 1700000000900;
	text = hf_shim_status_format(&a);
	assert_contains(text, "\"state\":\"backoff\"");
	assert_contains(text, "\"last_oom_killed\":true");
	assert_contains(text, "\"restarts\":3");
	assert_contains(text, "\"last_signal\":null");
	assert_int_equal(hf_shim_status_parse(text, strlen(text), &b), 0);
	assert_int_equal(b.state, HF_TS_STARTING);
	assert_true(b.backoff);
	assert_int_equal(b.restarts, 3);
	assert_true(b.has_last_exit_code);
	assert_int_equal(b.last_exit_code, 2);
	assert_int_equal(b.last_signal, 0);
	assert_int_equal(b.last_exit_at, 1700000000100);
	assert_true(b.last_oom_killed);
	assert_int_equal(b.last_restart_at, 1700000000050);
	assert_int_equal(b.restart_at, 1700000000900);
	again = hf_shim_status_format(&b);
	assert_string_equal(text, again);
	free(text);
	free(again);
	/* A status without them (a shim from before) reads as no restart. */
	assert_int_equal(hf_shim_status_parse("{\"state\":\"running\"}", 19,
					      &b),
			 0);
	assert_false(b.backoff);
	assert_int_equal(b.restarts, 0);
	assert_false(b.has_last_exit_code);
	hf_shim_status_release(&a);
	hf_shim_status_release(&b);
}

static void test_status_roundtrip(void **state)
{
	struct hf_shim_status a, b;
	char *text, *again;

	hf_shim_status_init(&a);
	hf_shim_status_init(&b);
	a.state = HF_TS_EXITED;
	a.task_id = hf_xstrdup("t");
	a.shim_pid = 10;
	a.pid = a.pgid = 11;
	a.started_at = 1700000000000;
	a.finished_at = 1700000000500;
	a.signal = 9;
	a.oom_killed = true;
	a.cgroup_note = hf_xstrdup("no \"cgroups\"");
	text = hf_shim_status_format(&a);
	assert_contains(text, "\"exit_code\":null");
	assert_contains(text, "\"cgroup\":null");
	assert_contains(text, "\"state\":\"exited\"");
	assert_int_equal(hf_shim_status_parse(text, strlen(text), &b), 0);
	assert_int_equal(b.state, HF_TS_EXITED);
	assert_false(b.has_exit_code);
	assert_int_equal(b.signal, 9);
	assert_true(b.oom_killed);
	assert_int_equal(b.pid, 11);
	assert_int_equal(b.finished_at, 1700000000500);
	assert_null(b.cgroup);
	assert_null(b.message);
	again = hf_shim_status_format(&b);
	assert_string_equal(text, again);
	assert_int_equal(hf_shim_status_parse("{\"state\":\"dancing\"}", 20,
					      &b),
			 HF_EPARSE);
	assert_int_equal(hf_shim_status_parse("nope", 4, &b), HF_EPARSE);
	assert_null(b.task_id);
	free(text);
	free(again);
	hf_shim_status_release(&a);
	hf_shim_status_release(&b);
}

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/hf-test-shim-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return hf_xstrdup(tmpl);
}

static void rm_rf(const char *dir)
{
	char *cmd = hf_xasprintf("rm -rf '%s'", dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static char *slurp(const char *dir, const char *name)
{
	char *path = hf_xasprintf("%s/%s", dir, name), *text = NULL;

	if (hf_read_file(path, 1 << 20, &text, NULL))
		text = NULL;
	free(path);
	return text;
}

static void test_tasklog_rotation(void **state)
{
	char *dir = make_tmpdir(), *path = hf_xasprintf("%s/out", dir);
	struct hf_tasklog l;
	char *a, *b, *c;

	assert_int_equal(hf_tasklog_open(&l, path, 10, 2), 0);
	/* 35 bytes in uneven writes: files split exactly at 10 bytes. */
	hf_tasklog_write(&l, "0123456", 7);
	hf_tasklog_write(&l, "789abcdefghij", 13);
	hf_tasklog_write(&l, "klmnopqrstuvwxy", 15);
	hf_tasklog_close(&l);
	a = slurp(dir, "out.2");
	b = slurp(dir, "out.1");
	c = slurp(dir, "out");
	assert_string_equal(a, "abcdefghij");
	assert_string_equal(b, "klmnopqrst");
	assert_string_equal(c, "uvwxy");
	free(a);
	free(b);
	free(c);
	a = slurp(dir, "out.3");
	assert_null(a);
	/* Reopening appends and counts the existing size. */
	assert_int_equal(hf_tasklog_open(&l, path, 10, 0), 0);
	hf_tasklog_write(&l, "12345", 5);
	hf_tasklog_write(&l, "Z", 1);
	hf_tasklog_close(&l);
	c = slurp(dir, "out");
	assert_string_equal(c, "Z"); /* keep 0: truncated, nothing kept */
	free(c);
	free(path);
	rm_rf(dir);
	free(dir);
}

static void test_tasklog_write_errors_are_counted(void **state)
{
	struct hf_tasklog l;

	if (access("/dev/full", W_OK) != 0)
		skip();
	assert_int_equal(hf_tasklog_open(&l, "/dev/full", 0, 0), 0);
	hf_tasklog_write(&l, "abc", 3);
	hf_tasklog_write(&l, "de", 2);
	assert_int_equal(l.dropped, 5);
	assert_int_equal(l.last_errno, ENOSPC);
	hf_tasklog_close(&l);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char *path = hf_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

static void test_cgroup_probe_none(void **state)
{
	char *dir = make_tmpdir(), *desc = NULL;

	setenv("HOLDFAST_CGROUP_ROOT", dir, 1);
	assert_int_equal(hf_cgroup_probe(&desc), 0);
	assert_contains(desc, "no usable cgroups");
	assert_contains(desc, dir);
	free(desc);
	unsetenv("HOLDFAST_CGROUP_ROOT");
	rm_rf(dir);
	free(dir);
}

/*
 * A fake v2 tree made of plain files: enabling controllers in the new
 * parent fails (no cgroup.subtree_control there), which must become a
 * note and leave no task directory behind.
 */
static void test_cgroup_v2_failure_is_a_note(void **state)
{
	char *dir = make_tmpdir(), *task;
	struct hf_cgroup cg;

	if (geteuid() != 0)
		skip();
	write_text(dir, "cgroup.controllers", "cpu memory\n");
	write_text(dir, "cgroup.subtree_control", "");
	setenv("HOLDFAST_CGROUP_ROOT", dir, 1);
	hf_cgroup_init(&cg);
	hf_cgroup_setup(&cg, "holdfast", "t1", 0.5, 1 << 20);
	assert_int_equal(cg.version, 0);
	assert_null(cg.path);
	assert_contains(cg.note, "cannot enable the cpu controller in");
	task = hf_xasprintf("%s/holdfast/t1", dir);
	assert_int_not_equal(access(task, F_OK), 0);
	hf_cgroup_release(&cg);
	unsetenv("HOLDFAST_CGROUP_ROOT");
	free(task);
	rm_rf(dir);
	free(dir);
}

/* The same for v1: the limit file is missing in the made directory. */
static void test_cgroup_v1_failure_is_a_note(void **state)
{
	char *dir = make_tmpdir(), *mem = hf_xasprintf("%s/memory", dir);
	char *task = hf_xasprintf("%s/holdfast/t1", mem);
	struct hf_cgroup cg;

	if (geteuid() != 0)
		skip();
	assert_int_equal(mkdir(mem, 0755), 0);
	write_text(mem, "memory.limit_in_bytes", "0\n");
	setenv("HOLDFAST_CGROUP_ROOT", dir, 1);
	hf_cgroup_init(&cg);
	hf_cgroup_setup(&cg, "holdfast", "t1", 0, 1 << 20);
	assert_int_equal(cg.version, 0);
	assert_contains(cg.note, "memory.limit_in_bytes");
	assert_int_not_equal(access(task, F_OK), 0);
	assert_int_equal(hf_cgroup_kill_all(&cg), 0);
	assert_false(hf_cgroup_oom_killed(&cg));
	assert_int_equal(hf_cgroup_remove(&cg), 0);
	hf_cgroup_release(&cg);
	unsetenv("HOLDFAST_CGROUP_ROOT");
	free(task);
	free(mem);
	rm_rf(dir);
	free(dir);
}

/* Waits for the next status on a watch fd; 0, or the error. */
static int watch_next(int fd, struct hf_shim_status *st)
{
	for (int i = 0; i < 300; i++) {
		struct pollfd p = {fd, POLLIN, 0};
		int rc = hf_shim_watch_read(fd, st);

		if (rc != HF_EUNAVAIL)
			return rc;
		poll(&p, 1, 100);
	}
	return HF_EUNAVAIL;
}

static char *self_exe(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	assert_true(n > 0);
	return hf_xstrndup(buf, (size_t)n);
}

/*
 * The client functions against a real shim: this test binary doubles as
 * the holdfast binary (see main), so hf_shim_spawn can exec it.
 */
static void run_client_roundtrip(const char *subdir)
{
	char *dir = make_tmpdir(), *exe = self_exe();
	char *taskdir = hf_xasprintf("%s/%s", dir, subdir);
	char *sandbox = hf_xasprintf("%s/sb", dir), *mk;
	struct hf_shim_launch l;
	struct hf_shim_status st;
	pid_t pid = 0;
	int fd = -1, rc;

	mk = hf_xasprintf("mkdir -p '%s'", taskdir);
	assert_int_equal(system(mk), 0);
	free(mk);
	assert_int_equal(mkdir(sandbox, 0755), 0);
	hf_shim_launch_init(&l);
	l.task_id = hf_xstrdup("unit-client");
	/* "trapped" says the trap is set: a TERM before it would kill sh. */
	l.cmd = hf_xstrdup("trap 'exit 3' TERM; : > trapped; "
			   "while :; do sleep 0.05; done");
	l.sandbox = hf_xstrdup(sandbox);
	hf_kvlist_set(&l.env, "PATH", "/usr/bin:/bin");
	assert_int_equal(hf_shim_launch_write(taskdir, &l), 0);
	hf_shim_launch_release(&l);

	assert_int_equal(hf_shim_alive(taskdir), 0);
	assert_int_equal(hf_shim_spawn(taskdir, exe, &pid), 0);
	assert_true(pid > 0);
	assert_int_equal(hf_shim_alive(taskdir), 1);
	assert_int_equal(hf_shim_spawn(taskdir, exe, NULL), HF_EEXISTS);
	hf_shim_status_init(&st);
	assert_int_equal(hf_shim_status_read(taskdir, &st), 0);
	assert_int_equal(st.state, HF_TS_RUNNING);
	assert_int_equal(st.shim_pid, pid);
	assert_string_equal(st.task_id, "unit-client");
	assert_int_equal(hf_shim_status_query(taskdir, &st), 0);
	assert_int_equal(st.state, HF_TS_RUNNING);

	assert_int_equal(hf_shim_watch_open(taskdir, &fd), 0);
	assert_int_equal(watch_next(fd, &st), 0);
	assert_int_equal(st.state, HF_TS_RUNNING);
	assert_int_equal(hf_shim_signal(taskdir, "NOPE"), HF_EINVAL);
	mk = hf_xasprintf("%s/trapped", sandbox);
	for (int i = 0; i < 1000 && access(mk, F_OK) != 0; i++)
		usleep(10000);
	assert_int_equal(access(mk, F_OK), 0);
	free(mk);
	assert_int_equal(hf_shim_stop(taskdir, 20), 0);
	do
		rc = watch_next(fd, &st);
	while (rc == 0 && st.state == HF_TS_RUNNING);
	assert_int_equal(rc, 0);
	assert_int_equal(st.state, HF_TS_EXITED);
	assert_true(st.has_exit_code);
	assert_int_equal(st.exit_code, 3);
	assert_true(st.stop_requested);
	assert_int_equal(watch_next(fd, &st), HF_ENOTFOUND);
	close(fd);
	assert_int_equal(hf_shim_status_read(taskdir, &st), 0);
	assert_int_equal(st.state, HF_TS_EXITED);
	assert_int_equal(st.exit_code, 3);
	/* The shim is gone; the agent falls back to status.json. */
	assert_int_equal(hf_shim_stop(taskdir, -1), HF_EUNAVAIL);
	for (int i = 0; i < 500 && hf_shim_alive(taskdir) == 1; i++)
		usleep(10000);
	assert_int_equal(hf_shim_alive(taskdir), 0);
	hf_shim_status_release(&st);
	free(exe);
	free(taskdir);
	free(sandbox);
	rm_rf(dir);
	free(dir);
}

static void test_client_roundtrip(void **state)
{
	run_client_roundtrip("task");
}

static void test_client_roundtrip_long_path(void **state)
{
	/* shim.sock's path exceeds sun_path: reached via /proc/self/fd. */
	run_client_roundtrip("a-rather-long-directory-name-for-a-task/"
			     "another-rather-long-directory-name/"
			     "hello-0-server__6f1c1f2e-4b7e-4ad5-9c33");
}

static bool pid_live(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	bool live = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		live = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return live;
}

static void wait_dead(pid_t pid)
{
	for (int i = 0; i < 1000 && pid_live(pid); i++)
		usleep(10000);
	if (pid_live(pid))
		fail_msg("pid %d is still alive", (int)pid);
}

/*
 * Fault: the shim is killed with SIGKILL while the task runs. The task's
 * main process dies with it (PDEATHSIG), a child it started lives on until
 * hf_shim_cleanup_lost, which also makes the status final.
 */
static void test_client_cleanup_after_shim_death(void **state)
{
	char *dir = make_tmpdir(), *exe = self_exe();
	char *taskdir = hf_xasprintf("%s/task", dir);
	char *sandbox = hf_xasprintf("%s/sb", dir), *text = NULL;
	struct hf_shim_launch l;
	struct hf_shim_status st;
	pid_t shim = 0, child = 0;

	assert_int_equal(mkdir(taskdir, 0755), 0);
	assert_int_equal(mkdir(sandbox, 0755), 0);
	hf_shim_launch_init(&l);
	l.task_id = hf_xstrdup("unit-lost");
	l.cmd = hf_xstrdup("sleep 3145 & echo $! > child.new && "
			   "mv child.new child; wait");
	l.sandbox = hf_xstrdup(sandbox);
	hf_kvlist_set(&l.env, "PATH", "/usr/bin:/bin");
	assert_int_equal(hf_shim_launch_write(taskdir, &l), 0);
	hf_shim_launch_release(&l);
	assert_int_equal(hf_shim_spawn(taskdir, exe, &shim), 0);
	hf_shim_status_init(&st);
	assert_int_equal(hf_shim_status_read(taskdir, &st), 0);
	assert_int_equal(st.state, HF_TS_RUNNING);
	assert_int_equal(hf_shim_cleanup_lost(taskdir), HF_ECONFLICT);
	for (int i = 0; i < 1000 && !text; i++) {
		char *p = hf_xasprintf("%s/child", sandbox);

		if (hf_read_file(p, 64, &text, NULL))
			usleep(10000);
		free(p);
	}
	assert_non_null(text);
	child = (pid_t)atoi(text);
	free(text);
	assert_true(pid_live(child));

	assert_int_equal(kill(shim, SIGKILL), 0);
	wait_dead(st.pid);
	assert_true(pid_live(child)); /* the leftover the agent must handle */
	assert_int_equal(hf_shim_alive(taskdir), 0);
	assert_int_equal(hf_shim_cleanup_lost(taskdir), 0);
	wait_dead(child);
	assert_int_equal(hf_shim_status_read(taskdir, &st), 0);
	assert_int_equal(st.state, HF_TS_EXITED);
	assert_false(st.has_exit_code);
	assert_int_equal(st.signal, 0);
	assert_contains(st.message, "lost:");
	/* Idempotent once final. */
	assert_int_equal(hf_shim_cleanup_lost(taskdir), 0);
	hf_shim_status_release(&st);
	free(exe);
	free(taskdir);
	free(sandbox);
	rm_rf(dir);
	free(dir);
}

static void test_client_spawn_failures(void **state)
{
	char *dir = make_tmpdir(), *exe = self_exe();
	char *bad = hf_xasprintf("%s/launch.json", dir);
	struct hf_shim_status st;
	pid_t pid = 1;
	int ws = 0;

	/*
	 * Invalid launch.json: the shim writes the status and exits 1; it
	 * is the caller's child, reaped by the caller.
	 */
	write_text(dir, "launch.json", "{\"cmd\": \"true\"}");
	assert_int_equal(hf_shim_spawn(dir, exe, &pid), 0);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 1);
	hf_shim_status_init(&st);
	assert_int_equal(hf_shim_status_read(dir, &st), 0);
	assert_int_equal(st.state, HF_TS_FAILED_TO_START);
	assert_contains(st.message, "\"task_id\" is required");
	hf_shim_status_release(&st);
	assert_int_equal(hf_shim_spawn(dir, "/nonexistent/holdfast", &pid),
			 HF_EEXISTS);
	unlink(bad);
	free(bad);
	rm_rf(dir);
	free(dir);

	dir = make_tmpdir();
	assert_int_equal(hf_shim_spawn(dir, "/nonexistent/holdfast", &pid),
			 HF_EIO);
	assert_int_equal(hf_shim_status_read(dir, &st), HF_ENOTFOUND);
	assert_int_equal(hf_shim_stop(dir, 1), HF_EUNAVAIL);
	rm_rf(dir);
	free(dir);
	free(exe);
}

static void test_state_names(void **state)
{
	assert_string_equal(hf_task_state_wire(HF_TS_FAILED_TO_START),
			    "failed-to-start");
	assert_true(hf_task_state_final(HF_TS_EXITED));
	assert_false(hf_task_state_final(HF_TS_RUNNING));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_roundtrip),
		cmocka_unit_test(test_client_roundtrip_long_path),
		cmocka_unit_test(test_client_spawn_failures),
		cmocka_unit_test(test_client_cleanup_after_shim_death),
		cmocka_unit_test(test_launch_parse_full),
		cmocka_unit_test(test_launch_defaults),
		cmocka_unit_test(test_launch_invalid),
		cmocka_unit_test(test_launch_format_roundtrip),
		cmocka_unit_test(test_rlimit_names),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_launch_restart_policy),
		cmocka_unit_test(test_status_restart_fields),
		cmocka_unit_test(test_tasklog_rotation),
		cmocka_unit_test(test_tasklog_write_errors_are_counted),
		cmocka_unit_test(test_cgroup_probe_none),
		cmocka_unit_test(test_cgroup_v2_failure_is_a_note),
		cmocka_unit_test(test_cgroup_v1_failure_is_a_note),
		cmocka_unit_test(test_state_names),
	};

	/* Started by hf_shim_spawn in the client tests: be the shim. */
	if (argc > 1 && strcmp(argv[1], "--dir") == 0)
		return hf_shim_main(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
