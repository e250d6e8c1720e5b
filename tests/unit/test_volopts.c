/*
 * test_volopts.c - external volumes in the spec: driver-options (sizes,
 * repl, min_sync, shared, secure, syntax), their positions in the file,
 * names (the SDK's Portworx naming, collisions), the refusals a deploy
 * makes, the diff's refusals and the JSON model.
 *
 * The SDK corpus is read in place at $HF_TEST_ROOT/../shared/sdk-specs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

#define MIB ((int64_t)1 << 20)
#define GIB ((int64_t)1 << 30)
#define TIB ((int64_t)1 << 40)

/* ------------------------------------------------------------------ */
/* The options parser                                                  */

struct parsed {
	int rc;
	struct hf_spec_volopts o;
	struct hf_volopts_problems p;
};

static void parse(const char *s, struct parsed *r)
{
	memset(r, 0, sizeof(*r));
	r->rc = hf_spec_volopts_parse(s, s ? strlen(s) : 0, &r->o, &r->p);
	/* The contract: HF_ESPEC exactly when there is an error. */
	assert_int_equal(r->rc == 0, r->p.errors == 0);
}

static void parsed_release(struct parsed *r)
{
	hf_volopts_problems_release(&r->p);
}

/* The input has exactly one problem, an error at offset, saying want. */
static void one_error(const char *s, size_t offset, const char *want)
{
	struct parsed r;

	parse(s, &r);
	if (r.rc != HF_ESPEC || r.p.len != 1 || r.p.items[0].warning ||
	    r.p.items[0].offset != offset ||
	    !strstr(r.p.items[0].msg, want))
		fail_msg("'%s': want one error at %zu with \"%s\", got rc %d, "
			 "%zu problem(s), first at %zu: %s",
			 s, offset, want, r.rc, r.p.len,
			 r.p.len ? r.p.items[0].offset : 0,
			 r.p.len ? r.p.items[0].msg : "(none)");
	parsed_release(&r);
}

static void test_defaults(void **state)
{
	const char *empty[] = {NULL, "", "  ", ";", ";;", " ; ;"};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(empty); i++) {
		struct parsed r;

		parse(empty[i], &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.p.len, 0);
		/* Portworx's default: 1 GB, one replica. */
		assert_int_equal(r.o.size_bytes, GIB);
		assert_int_equal(r.o.repl, 1);
		assert_int_equal(r.o.min_sync, 1);
		assert_false(r.o.shared);
		assert_false(r.o.secure);
		parsed_release(&r);
	}
}

static void test_sizes(void **state)
{
	static const struct {
		const char *in;
		int64_t bytes;
	} ok[] = {
	    {"size=1", GIB},             /* a bare number is GiB, as px reads it */
	    {"size=10", 10 * GIB},
	    {"size=512M", 512 * MIB},
	    {"size=1G", GIB},
	    {"size=1.5G", 1536 * MIB},
	    {"size=2T", 2 * TIB},
	    {"size=64Mi", 64 * MIB},
	    {"size=4Gi", 4 * GIB},
	    {"size=1Ti", TIB},
	    {"size=1GB", GIB},
	    {"size=1GiB", GIB},
	    {"size=3g", 3 * GIB},
	    {"size=0.0625", 64 * MIB},   /* the smallest, in GiB */
	    {"size=64T", 64 * TIB},      /* the largest */
	    {"size=1.3G", 1332 * MIB},   /* 1331.2 MiB, rounded up */
	    {"size=0.5T", 512 * GIB},
	    {"size=1.0000000001G", GIB}, /* digits past nine: ignored */
	    {"size=65536", 64 * TIB},
	};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(ok); i++) {
		struct parsed r;

		parse(ok[i].in, &r);
		if (r.rc != 0 || r.o.size_bytes != ok[i].bytes)
			fail_msg("'%s': want %lld bytes, got rc %d, %lld bytes "
				 "(%s)",
				 ok[i].in, (long long)ok[i].bytes, r.rc,
				 (long long)r.o.size_bytes,
				 r.p.len ? r.p.items[0].msg : "no problem");
		assert_int_equal(r.o.size_bytes % MIB, 0);
		parsed_release(&r);
	}
}

static void test_size_errors(void **state)
{
	const char *bad[] = {"size=abc", "size=1.", "size=.5", "size=1K",
			     "size=1Gx", "size=10 G", "size=-1", "size=1e3",
			     "size=1GBB", "size=", "size=0x10"};
	const char *range[] = {"size=63M", "size=0", "size=0.06",
			       "size=65T", "size=64.001T", "size=65537",
			       "size=99999999999999999999999999",
			       "size=99999999999999999999999999M"};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		one_error(bad[i], 0,
			  "size must be a number of GiB (size=10) or a size "
			  "with a unit M, G or T");
	for (size_t i = 0; i < HF_ARRAY_LEN(range); i++)
		one_error(range[i], 0, "size must be at least 64M and at most "
				       "64T, not '");
	one_error("size=1T0", 0, "not '1T0'");
}

static void test_repl_and_min_sync(void **state)
{
	static const struct {
		const char *in;
		unsigned repl, min_sync;
	} ok[] = {
	    {"repl=1", 1, 1},           {"repl=2", 2, 1},
	    {"repl=3", 3, 2},           {"repl=3;min_sync=3", 3, 3},
	    {"min_sync=1;repl=3", 3, 1}, {"repl=2;min_sync=2", 2, 2},
	    {"min_sync=1", 1, 1},
	};

	(void)state;
	for (size_t i = 0; i < HF_ARRAY_LEN(ok); i++) {
		struct parsed r;

		parse(ok[i].in, &r);
		if (r.rc || r.o.repl != ok[i].repl ||
		    r.o.min_sync != ok[i].min_sync)
			fail_msg("'%s': want repl %u min_sync %u, got rc %d, "
				 "%u, %u",
				 ok[i].in, ok[i].repl, ok[i].min_sync, r.rc,
				 r.o.repl, r.o.min_sync);
		parsed_release(&r);
	}
	one_error("repl=4", 0, "repl must be 1, 2 or 3, not '4'");
	one_error("repl=0", 0, "repl must be 1, 2 or 3, not '0'");
	one_error("repl=02", 0, "repl must be 1, 2 or 3, not '02'");
	one_error("repl=two", 0, "repl must be 1, 2 or 3, not 'two'");
	one_error("size=1;repl=", 7, "repl must be 1, 2 or 3, not ''");
	/* min_sync above repl: at min_sync's key, wherever repl is. */
	one_error("min_sync=3;repl=2", 0,
		  "min_sync must be from 1 to repl (2), not '3'");
	one_error("repl=2;min_sync=3", 7,
		  "min_sync must be from 1 to repl (2), not '3'");
	one_error("min_sync=2", 0,
		  "min_sync must be from 1 to repl (1), not '2'");
	one_error("repl=3;min_sync=0", 7,
		  "min_sync must be a number from 1 to repl, not '0'");
}

static void test_bools(void **state)
{
	struct parsed r;

	(void)state;
	parse("shared=true;secure=true", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.o.shared);
	assert_true(r.o.secure);
	parsed_release(&r);
	parse("shared=false;secure=false", &r);
	assert_int_equal(r.rc, 0);
	assert_false(r.o.shared);
	assert_false(r.o.secure);
	parsed_release(&r);
	/* The SDK names a volume shared only for "true", exactly. */
	one_error("shared=True", 0, "shared must be true or false, not 'True'");
	one_error("secure=yes", 0, "secure must be true or false, not 'yes'");
}

static void test_syntax(void **state)
{
	struct parsed r;

	(void)state;
	/* The SDK's own fixture (valid-external-volume.yml). */
	parse("shared=true;size=10;", &r);
	assert_int_equal(r.rc, 0);
	assert_true(r.o.shared);
	assert_int_equal(r.o.size_bytes, 10 * GIB);
	parsed_release(&r);
	/* Blanks around keys and values. */
	parse(" size = 2G ; repl=2 ;", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.o.size_bytes, 2 * GIB);
	assert_int_equal(r.o.repl, 2);
	parsed_release(&r);

	one_error(";size=1", 0, "an empty option");
	one_error("size=1;;repl=2", 7, "an empty option");
	one_error("size=1;repl", 7,
		  "option 'repl' has no value: driver-options is "
		  "key=value;key=value");
	one_error("size=1; =2", 8, "an option has no key before '='");
	one_error("size=1;io_priority=high", 7,
		  "unknown option 'io_priority': holdfast volumes take size, "
		  "repl, shared, secure, secret_key, fs and min_sync");
	one_error("secret_key=k1", 0,
		  "secret_key seals an encrypted volume's key: it needs "
		  "secure=true");
	one_error("secure=true;secret_key=a b", 12,
		  "secret_key names a key made with 'holdfast credential "
		  "create key NAME'");
	one_error("size=1;SIZE=1", 7, "unknown option 'SIZE'");
	one_error("size=1;repl=2;size=1", 14, "option 'size' is given twice");
	one_error("repl=2=3", 0, "repl must be 1, 2 or 3, not '2=3'");

	/* Every problem, in string order, each at its key. */
	parse("repl=9;io=xfs;min_sync=2;size=1;size=2", &r);
	assert_int_equal(r.rc, HF_ESPEC);
	assert_int_equal(r.p.len, 4);
	assert_int_equal(r.p.errors, 4);
	assert_int_equal(r.p.items[0].offset, 0);  /* repl */
	assert_int_equal(r.p.items[1].offset, 7);  /* io: unknown */
	assert_int_equal(r.p.items[2].offset, 14); /* min_sync > repl (1) */
	assert_int_equal(r.p.items[3].offset, 32); /* size again */
	assert_non_null(strstr(r.p.items[2].msg, "min_sync"));
	parsed_release(&r);

	/* Hostile bytes are quoted tamed and cut short. */
	{
		char s[200];
		const char *m;

		snprintf(s, sizeof(s), "k\x01\x1b[31m%0100d=1", 0);
		parse(s, &r);
		assert_int_equal(r.rc, HF_ESPEC);
		m = r.p.items[0].msg;
		assert_null(strchr(m, '\x1b'));
		assert_null(strchr(m, '\x01'));
		assert_non_null(strstr(m, "..."));
		assert_true(strlen(m) < 150);
		parsed_release(&r);
	}
	/* A NUL inside: the value is not a size. */
	{
		static const char s[] = "size=1\0G";

		memset(&r, 0, sizeof(r));
		r.rc = hf_spec_volopts_parse(s, sizeof(s) - 1, &r.o, &r.p);
		assert_int_equal(r.rc, HF_ESPEC);
		assert_non_null(strstr(r.p.items[0].msg, "size must be"));
		parsed_release(&r);
	}
}

static void test_nodes_is_a_warning(void **state)
{
	struct parsed r;

	(void)state;
	parse("size=1;nodes=LocalNode", &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.p.len, 1);
	assert_true(r.p.items[0].warning);
	assert_int_equal(r.p.items[0].offset, 7);
	assert_non_null(strstr(r.p.items[0].msg, "option 'nodes' is ignored"));
	parsed_release(&r);
}

/* ------------------------------------------------------------------ */
/* Names                                                                */

static void test_name_function(void **state)
{
	struct hf_spec_external_volume e = {0};
	char *n;

	(void)state;
	n = hf_spec_external_volume_name("hello-world", "hello", 0, &e);
	assert_string_equal(n, "hello-world-hello-0");
	free(n);
	/* A service in a folder: '/' as "__", as the SDK escapes it. */
	n = hf_spec_external_volume_name("prod/db", "node", 12, &e);
	assert_string_equal(n, "prod__db-node-12");
	free(n);
	/* volume-name replaces "<service>-<pod>": no pod type in it. */
	e.volume_name = "data";
	n = hf_spec_external_volume_name("svc", "node", 1, &e);
	assert_string_equal(n, "data-1");
	free(n);
	e.volume_name = "team/data";
	n = hf_spec_external_volume_name("svc", "node", 0, &e);
	assert_string_equal(n, "team__data-0");
	free(n);
	/* Shared: one volume for every instance, no index. */
	e.opts.shared = true;
	n = hf_spec_external_volume_name("svc", "node", 7, &e);
	assert_string_equal(n, "team__data");
	free(n);
	/* The SDK refuses a name that already has "__". */
	e.volume_name = "a__b";
	assert_null(hf_spec_external_volume_name("svc", "node", 0, &e));
}

static char *sdk_dir(void)
{
	const char *root = getenv("HF_TEST_ROOT");

	return hf_xasprintf("%s/../shared/sdk-specs", root && *root ? root : ".");
}

/* Loads the SDK's helloworld/external-volumes.yml with extra options. */
static int load_sdk_external(const char *driver, const char *options,
			     struct hf_spec **spec, struct hf_diags *d)
{
	char *dir = sdk_dir();
	char *file = hf_xasprintf("%s/helloworld/external-volumes.yml", dir);
	char *o1 = hf_xasprintf("%s/helloworld-options.json", dir);
	char *o2 = hf_xasprintf("%s/helloworld-single-node.json", dir);
	struct hf_kvlist vars = {0};
	struct hf_spec_load_opts lo = {0};
	int rc;

	assert_int_equal(hf_options_load_file(&vars, o1, d), 0);
	assert_int_equal(hf_options_load_file(&vars, o2, d), 0);
	hf_kvlist_set(&vars, "EXTERNAL_VOLUME_DRIVER_NAME", driver);
	hf_kvlist_set(&vars, "EXTERNAL_VOLUME_DRIVER_OPTIONS", options);
	hf_kvlist_set(&vars, "HELLO_COUNT", "2");
	lo.options = &vars;
	lo.skip_templates = true;
	rc = hf_spec_load_file(file, &lo, spec, d);
	hf_kvlist_release(&vars);
	free(dir);
	free(file);
	free(o1);
	free(o2);
	return rc;
}

static void print_diags(const struct hf_diags *d)
{
	hf_diags_print(stderr, d);
}

static void test_sdk_external_volumes(void **state)
{
	static const char *const want[] = {
	    "hello-world-hello-0", "hello-world-hello-1",
	    "hello-world-world-0", "hello-world-world-1",
	};
	struct hf_spec *spec = NULL;
	struct hf_diags d = {0}, u = {0};
	size_t k = 0;

	(void)state;
	if (load_sdk_external("holdfast", "size=1;repl=2", &spec, &d) != 0) {
		print_diags(&d);
		fail_msg("external-volumes.yml did not load");
	}
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	assert_string_equal(spec->name, "hello-world");
	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		assert_int_equal(pod->external_volumes.len, 1);
		for (int64_t i = 0; i < pod->count; i++) {
			const struct hf_spec_external_volume *e =
			    &pod->external_volumes.items[0];
			char *n = hf_spec_external_volume_name(
			    spec->name, pod->name, i, e);

			assert_true(e->has_opts);
			assert_int_equal(e->opts.size_bytes, GIB);
			assert_int_equal(e->opts.repl, 2);
			assert_int_equal(e->opts.min_sync, 1);
			assert_true(k < HF_ARRAY_LEN(want));
			assert_string_equal(n, want[k++]);
			free(n);
		}
	}
	assert_int_equal(k, HF_ARRAY_LEN(want));
	/* Valid and deployable as it is: nothing refused. */
	assert_int_equal(hf_spec_check_supported(spec, &u), 0);
	hf_diags_release(&u);
	hf_diags_release(&d);
	hf_spec_free(spec);

	/* pxd is the same driver; its options are read the same way. */
	assert_int_equal(load_sdk_external("pxd", "size=10", &spec, &d), 0);
	assert_int_equal(spec->pods.items[0].external_volumes.items[0]
			     .opts.size_bytes,
			 10 * GIB);
	hf_diags_release(&d);
	hf_spec_free(spec);

	/*
	 * A bad option rendered from a variable: an error at the value (its
	 * column in the template: the text there is "{{...}}"), in each pod.
	 */
	assert_int_equal(load_sdk_external("holdfast", "size=1;repl=4", &spec,
					   &d),
			 HF_ESPEC);
	assert_null(spec);
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.items[0].line, 15);
	assert_int_equal(d.items[0].col, 25);
	assert_string_equal(d.items[0].path,
			    "pods.hello.external-volumes.hello-volume."
			    "driver-options");
	assert_string_equal(d.items[0].msg, "repl must be 1, 2 or 3, not '4'");
	assert_int_equal(d.items[1].line, 45);
	assert_int_equal(d.items[1].col, 27);
	hf_diags_release(&d);
}

/* ------------------------------------------------------------------ */
/* Specs written here                                                   */

#define SPEC_HEAD \
    "name: svc\n" \
    "pods:\n" \
    "  db:\n" \
    "    count: 2\n" \
    "    external-volumes:\n" \
    "      data:\n" \
    "        type: DOCKER\n" \
    "        container-path: data\n" \
    "        driver-name: %s\n" \
    "        driver-options: %s\n" \
    "%s" \
    "    tasks:\n" \
    "      server: {goal: RUNNING, cmd: \"sleep 1\", cpus: 0.1, memory: 32}\n"

static int load_text(const char *text, struct hf_spec **spec,
		     struct hf_diags *d)
{
	struct hf_spec_load_opts lo = {0};

	lo.skip_templates = true;
	return hf_spec_load_string(text, strlen(text), "svc.yml", &lo, spec, d);
}

static int load_db(const char *driver, const char *options, const char *more,
		   struct hf_spec **spec, struct hf_diags *d)
{
	char *text = hf_xasprintf(SPEC_HEAD, driver, options, more);
	int rc = load_text(text, spec, d);

	free(text);
	return rc;
}

/* The spec fails with exactly one error at line:col saying want. */
static void db_error(const char *driver, const char *options,
		     const char *more, int line, int col, const char *path,
		     const char *want)
{
	struct hf_spec *spec = NULL;
	struct hf_diags d = {0};
	int rc = load_db(driver, options, more, &spec, &d);

	if (rc != HF_ESPEC || d.errors != 1 || d.items[0].line != line ||
	    d.items[0].col != col || strcmp(d.items[0].path, path) ||
	    !strstr(d.items[0].msg, want)) {
		print_diags(&d);
		fail_msg("options '%s': want one error at %d:%d %s \"%s\"",
			 options, line, col, path, want);
	}
	hf_diags_release(&d);
	hf_spec_free(spec);
}

#define OPTS_PATH "pods.db.external-volumes.data.driver-options"

static void test_positions(void **state)
{
	(void)state;
	/* Written as it reads: the column of the key at fault. */
	db_error("holdfast", "size=1;repl=4", "", 10, 32, OPTS_PATH,
		 "repl must be 1, 2 or 3, not '4'");
	db_error("holdfast", "size=1;repl=2;io=xfs", "", 10, 39, OPTS_PATH,
		 "unknown option 'io'");
	db_error("holdfast", "size=256M;fs=xfs", "", 10, 35, OPTS_PATH,
		 "fs=xfs needs size of at least 320M");
	db_error("holdfast", "size=1;fs=zfs", "", 10, 32, OPTS_PATH,
		 "fs must be ext4, xfs or auto, not 'zfs'");
	db_error("pxd", "size=1;size=2", "", 10, 32, OPTS_PATH,
		 "option 'size' is given twice");
	db_error("pxd", "size=1;repl", "", 10, 32, OPTS_PATH,
		 "option 'repl' has no value");
	db_error("pxd", "size=1K", "", 10, 25, OPTS_PATH, "size must be");
	/* Characters, not bytes, as libyaml counts columns. */
	db_error("pxd", "size=1;\xc3\xa9t\xc3\xa9=1", "", 10, 32, OPTS_PATH,
		 "unknown option '\xc3\xa9t\xc3\xa9'");
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0};

		/* 'x' is 12 bytes but 11 characters past the value's start. */
		assert_int_equal(load_db("pxd", "size=1;\xc3\xa9=1;x=1", "",
					 &spec, &d),
				 HF_ESPEC);
		assert_int_equal(d.errors, 2);
		assert_int_equal(d.items[0].col, 32);
		assert_int_equal(d.items[1].col, 36);
		assert_non_null(strstr(d.items[1].msg, "unknown option 'x'"));
		hf_diags_release(&d);
	}
	/* Quoted: escapes make offsets unreliable, so the value's column. */
	db_error("pxd", "\"size=1;repl=4\"", "", 10, 25, OPTS_PATH,
		 "repl must be");
	/* Over two lines: the value's start. */
	db_error("pxd", "size=1;\n          repl=4", "", 10, 25, OPTS_PATH,
		 "repl must be");
}

static void test_volume_level_errors(void **state)
{
	(void)state;
	db_error("holdfast", "size=1", "        volume-name: a__b\n", 11, 22,
		 "pods.db.external-volumes.data.volume-name",
		 "volume-name 'a__b' must be 1-200 letters");
	db_error("holdfast", "size=1", "        volume-name: /abs\n", 11, 22,
		 "pods.db.external-volumes.data.volume-name",
		 "volume-name '/abs'");
	db_error("holdfast", "size=1", "        volume-name: x/\n", 11, 22,
		 "pods.db.external-volumes.data.volume-name",
		 "volume-name 'x/'");
	/* The SDK knows DOCKER external volumes only. */
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0};
		const char *t =
		    "name: svc\npods:\n  db:\n    count: 1\n"
		    "    external-volumes:\n      data:\n"
		    "        type: MOUNT\n        container-path: data\n"
		    "        driver-name: pxd\n"
		    "    tasks:\n      server: {goal: RUNNING, cmd: x, "
		    "cpus: 0.1}\n";

		assert_int_equal(load_text(t, &spec, &d), HF_ESPEC);
		assert_int_equal(d.errors, 1);
		assert_int_equal(d.items[0].line, 7);
		assert_int_equal(d.items[0].col, 15);
		assert_string_equal(d.items[0].msg,
				    "only DOCKER external volumes are "
				    "supported, not 'MOUNT'");
		hf_diags_release(&d);
	}
	/* No driver-name: nothing says who serves it. */
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0};
		const char *t =
		    "name: svc\npods:\n  db:\n    count: 1\n"
		    "    external-volumes:\n      data:\n"
		    "        type: DOCKER\n        container-path: data\n"
		    "    tasks:\n      server: {goal: RUNNING, cmd: x, "
		    "cpus: 0.1}\n";

		assert_int_equal(load_text(t, &spec, &d), HF_ESPEC);
		assert_int_equal(d.errors, 1);
		assert_int_equal(d.items[0].line, 6);
		assert_non_null(strstr(d.items[0].msg, "has no driver-name"));
		hf_diags_release(&d);
	}
	/* container-path stays in the sandbox, as for host volumes. */
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0};
		const char *t =
		    "name: svc\npods:\n  db:\n    count: 1\n"
		    "    external-volumes:\n      data:\n"
		    "        type: DOCKER\n        container-path: ../x\n"
		    "        driver-name: pxd\n"
		    "    tasks:\n      server: {goal: RUNNING, cmd: x, "
		    "cpus: 0.1}\n";

		assert_int_equal(load_text(t, &spec, &d), HF_ESPEC);
		assert_int_equal(d.errors, 1);
		assert_int_equal(d.items[0].line, 8);
		assert_non_null(strstr(d.items[0].msg, "stay inside it"));
		hf_diags_release(&d);
	}
}

/* Two pods, each with a volume: "%s" for each one's extra lines. */
#define TWO_PODS \
    "name: svc\n" \
    "pods:\n" \
    "  a:\n" \
    "    count: 1\n" \
    "    external-volumes:\n" \
    "      data:\n" \
    "        type: DOCKER\n" \
    "        container-path: data\n" \
    "        driver-name: pxd\n" \
    "%s" \
    "    tasks:\n" \
    "      server: {goal: RUNNING, cmd: x, cpus: 0.1}\n" \
    "  b:\n" \
    "    count: 1\n" \
    "    external-volumes:\n" \
    "      data:\n" \
    "        type: DOCKER\n" \
    "        container-path: data\n" \
    "        driver-name: holdfast\n" \
    "%s" \
    "    tasks:\n" \
    "      server: {goal: RUNNING, cmd: x, cpus: 0.1}\n"

static void collide(const char *a, const char *b, int line, int col,
		    const char *path, const char *want)
{
	char *t = hf_xasprintf(TWO_PODS, a, b);
	struct hf_spec *spec = NULL;
	struct hf_diags d = {0};
	int rc = load_text(t, &spec, &d);

	if (want && (rc != HF_ESPEC || d.errors != 1 ||
		     d.items[0].line != line || d.items[0].col != col ||
		     strcmp(d.items[0].path, path) ||
		     !strstr(d.items[0].msg, want))) {
		print_diags(&d);
		fail_msg("want one error at %d:%d %s: %s", line, col, path,
			 want);
	}
	if (!want && rc != 0) {
		print_diags(&d);
		fail_msg("want no error");
	}
	hf_spec_free(spec);
	hf_diags_release(&d);
	free(t);
}

static void test_name_collisions(void **state)
{
	(void)state;
	/* Two pod types with one volume-name: both positions named. */
	collide("        volume-name: data\n", "        volume-name: data\n",
		20, 22, "pods.b.external-volumes.data.volume-name",
		"external volume 'data' of pod 'b' and external volume 'data' "
		"of pod 'a' (line 10:22) would both be named 'data-0'");
	/* volume-name equal to the other's default base. */
	collide("        volume-name: svc-b\n", "", 16, 7,
		"pods.b.external-volumes.data", "would both be named 'svc-b-0'");
	/* A shared volume named like another's instance volume. */
	collide("        volume-name: x\n",
		"        volume-name: x-0\n        driver-options: shared=true\n",
		20, 22, "pods.b.external-volumes.data.volume-name",
		"would both be named 'x-0'");
	/* Distinct names are fine, and so are "x" shared and "x" not. */
	collide("        volume-name: x\n", "        volume-name: y\n", 0, 0,
		NULL, NULL);
	collide("        volume-name: x\n",
		"        volume-name: x\n        driver-options: shared=true\n",
		0, 0, NULL, NULL);
	/* Two volumes of one pod without a volume-name. */
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0};
		const char *t =
		    "name: svc\npods:\n  db:\n    count: 1\n"
		    "    external-volumes:\n"
		    "      one: {type: DOCKER, container-path: one, "
		    "driver-name: pxd}\n"
		    "      two: {type: DOCKER, container-path: two, "
		    "driver-name: pxd}\n"
		    "    tasks:\n      server: {goal: RUNNING, cmd: x, "
		    "cpus: 0.1}\n";

		assert_int_equal(load_text(t, &spec, &d), HF_ESPEC);
		assert_int_equal(d.errors, 1);
		assert_int_equal(d.items[0].line, 7);
		assert_string_equal(d.items[0].path,
				    "pods.db.external-volumes.two");
		assert_non_null(strstr(d.items[0].msg,
				       "(line 6:7) would both be named "
				       "'svc-db-0'; volume names are "
				       "cluster-wide: give one its own "
				       "volume-name"));
		hf_diags_release(&d);
	}
}

/* ------------------------------------------------------------------ */
/* Refusals at deploy                                                   */

/* Loads a valid spec and returns check_supported's messages, joined. */
static char *refusals(const char *driver, const char *options)
{
	struct hf_spec *spec = NULL;
	struct hf_diags d = {0}, u = {0};
	struct hf_buf b = HF_BUF_INIT;
	size_t n;

	if (load_db(driver, options, "", &spec, &d) != 0) {
		print_diags(&d);
		fail_msg("'%s' / '%s' did not load", driver, options);
	}
	n = hf_spec_check_supported(spec, &u);
	assert_int_equal(n, u.len);
	for (size_t i = 0; i < u.len; i++)
		hf_buf_addf(&b, "%d:%d %s: %s\n", u.items[i].line,
			    u.items[i].col, u.items[i].path, u.items[i].msg);
	hf_diags_release(&u);
	hf_diags_release(&d);
	hf_spec_free(spec);
	return hf_buf_detach(&b);
}

static void test_refusals(void **state)
{
	char *r;

	(void)state;
	/* One replica or three deploy. */
	r = refusals("holdfast", "size=2G;repl=1");
	assert_string_equal(r, "");
	free(r);
	r = refusals("pxd", "");
	assert_string_equal(r, "");
	free(r);
	r = refusals("holdfast", "size=2G;repl=3");
	assert_string_equal(r, "");
	free(r);
	r = refusals("pxd", "size=1;shared=true");
	assert_non_null(strstr(
	    r, "10:32 " OPTS_PATH ": shared (multi-writer) volumes are not "
	       "supported: every instance would use one volume, 'svc-db'\n"));
	free(r);
	/* With a volume-name, the name is that (no index when shared). */
	{
		struct hf_spec *spec = NULL;
		struct hf_diags d = {0}, u = {0};

		assert_int_equal(load_db("pxd", "size=1; shared=true",
					 "        volume-name: team/logs\n",
					 &spec, &d),
				 0);
		assert_int_equal(hf_spec_check_supported(spec, &u), 1);
		assert_int_equal(u.items[0].col, 33);
		assert_string_equal(u.items[0].msg,
				    "shared (multi-writer) volumes are not "
				    "supported: every instance would use one "
				    "volume, 'team__logs'");
		hf_diags_release(&u);
		hf_diags_release(&d);
		hf_spec_free(spec);
	}
	/* Encrypted volumes are supported: nothing to refuse. */
	r = refusals("pxd", "secure=true");
	assert_string_equal(r, "");
	free(r);
	/*
	 * Another driver: a valid SDK spec holdfast cannot serve; its
	 * options are that driver's, not read.
	 */
	r = refusals("rexray", "iops=100;whatever");
	assert_non_null(strstr(r, "9:22 pods.db.external-volumes.data."
				  "driver-name: volume driver 'rexray' is not "
				  "available: holdfast serves 'holdfast' and "
				  "'pxd'\n"));
	free(r);
}

/* ------------------------------------------------------------------ */
/* Diff and JSON                                                        */

static struct hf_spec *db(const char *driver, const char *options,
			  const char *more)
{
	struct hf_spec *spec = NULL;
	struct hf_diags d = {0};

	if (load_db(driver, options, more, &spec, &d) != 0) {
		print_diags(&d);
		fail_msg("'%s' did not load", options);
	}
	hf_diags_release(&d);
	return spec;
}

/* The diff's refusals, joined with '\n'. */
static char *diff_refusals(struct hf_spec *a, struct hf_spec *b, bool *empty)
{
	struct hf_spec_diff d;
	struct hf_buf s = HF_BUF_INIT;

	hf_spec_diff(a, b, &d);
	for (size_t i = 0; i < d.refusals.len; i++)
		hf_buf_addf(&s, "%s\n", d.refusals.items[i]);
	if (empty)
		*empty = hf_spec_diff_is_empty(&d);
	hf_spec_diff_release(&d);
	hf_spec_free(a);
	hf_spec_free(b);
	return hf_buf_detach(&s);
}

static void refused(struct hf_spec *a, struct hf_spec *b, const char *want)
{
	char *r = diff_refusals(a, b, NULL);

	if (strcmp(r, want) != 0)
		fail_msg("refusals:\n%swant:\n%s", r, want);
	free(r);
}

static void test_diff(void **state)
{
	bool empty = false;
	char *r;

	(void)state;
	/* Growing is allowed (each volume grows in place); shrinking not. */
	refused(db("pxd", "size=1", ""), db("pxd", "size=2", ""), "");
	refused(db("pxd", "size=100M", ""), db("pxd", "", ""), "");
	refused(db("pxd", "size=2", ""), db("pxd", "size=1", ""),
		"pod 'db': external volume 'data' size cannot shrink from 2G "
		"to 1G (volumes grow, never shrink)\n");
	refused(db("pxd", "", ""), db("pxd", "shared=true", ""),
		"pod 'db': external volume 'data' shared cannot change from "
		"false to true (it changes the volumes' names)\n");
	refused(db("pxd", "repl=2", ""), db("pxd", "repl=3", ""),
		"pod 'db': external volume 'data' repl cannot change from 2 "
		"to 3: that needs re-replication, which holdfast does not do "
		"yet\n"
		"pod 'db': external volume 'data' min_sync cannot change from "
		"1 to 2: not in place yet\n");
	refused(db("pxd", "", ""), db("rexray", "", ""),
		"pod 'db': external volume 'data' driver cannot change from "
		"'pxd' to 'rexray' (its data stays with the old driver)\n");
	refused(db("pxd", "", ""), db("pxd", "", "        volume-name: v\n"),
		"pod 'db': external volume 'data' volume-name cannot change "
		"from '(none)' to 'v' (the name is the volume: the new one "
		"would be empty)\n");
	{
		char *t = hf_xasprintf(SPEC_HEAD, "pxd", "size=1", "");
		char *t2 = hf_xstrdup(t);
		struct hf_spec *a = NULL, *b = NULL;
		struct hf_diags d = {0};

		memcpy(strstr(t2, "container-path: data"),
		       "container-path: dat2", 20);
		assert_int_equal(load_text(t, &a, &d), 0);
		assert_int_equal(load_text(t2, &b, &d), 0);
		refused(a, b,
			"pod 'db': external volume 'data' container-path "
			"cannot change from 'data' to 'dat2'\n");
		free(t);
		free(t2);
		hf_diags_release(&d);
	}
	/* pxd and holdfast are one driver; options written another way. */
	r = diff_refusals(db("pxd", "size=1;repl=2", ""),
			  db("holdfast", "repl=2;size=1024M;", ""), &empty);
	assert_string_equal(r, "");
	free(r);
	/* The driver's name still shows as a change of the pod. */
	assert_false(empty);
	r = diff_refusals(db("pxd", "size=1;repl=2", ""),
			  db("pxd", "repl=2; size=1G", ""), &empty);
	assert_string_equal(r, "");
	assert_true(empty);
	free(r);
	/* volume-mode is an ordinary change. */
	r = diff_refusals(db("pxd", "", ""),
			  db("pxd", "", "        volume-mode: RO\n"), &empty);
	assert_string_equal(r, "");
	assert_false(empty);
	free(r);
}

static void test_json(void **state)
{
	struct hf_spec *spec;
	json_t *j, *ev, *o;

	(void)state;
	spec = db("holdfast", "size=1.5G;repl=3;min_sync=3", "");
	j = hf_spec_to_json(spec);
	ev = json_array_get(
	    json_object_get(json_array_get(json_object_get(j, "pods"), 0),
			    "external-volumes"),
	    0);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "name")),
			    "data");
	assert_string_equal(
	    json_string_value(json_object_get(ev, "volume-names")),
	    "svc-db-<index>");
	assert_null(json_object_get(ev, "driver-options"));
	o = json_object_get(ev, "options");
	assert_int_equal(json_integer_value(json_object_get(o, "size")),
			 1536 * MIB);
	assert_int_equal(json_integer_value(json_object_get(o, "repl")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "min_sync")), 3);
	assert_true(json_is_false(json_object_get(o, "shared")));
	assert_true(json_is_false(json_object_get(o, "secure")));
	json_decref(j);
	hf_spec_free(spec);

	/* Shared: one name. Another driver: its options as written. */
	spec = db("pxd", "shared=true", "        volume-name: a/b\n");
	j = hf_spec_pod_to_json(spec, &spec->pods.items[0], false);
	ev = json_array_get(json_object_get(j, "external-volumes"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(ev, "volume-names")), "a__b");
	json_decref(j);
	hf_spec_free(spec);
	spec = db("rexray", "iops=1", "");
	j = hf_spec_pod_to_json(spec, &spec->pods.items[0], false);
	ev = json_array_get(json_object_get(j, "external-volumes"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(ev, "driver-options")), "iops=1");
	assert_null(json_object_get(ev, "options"));
	json_decref(j);
	hf_spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_size_errors),
	    cmocka_unit_test(test_repl_and_min_sync),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_syntax),
	    cmocka_unit_test(test_nodes_is_a_warning),
	    cmocka_unit_test(test_name_function),
	    cmocka_unit_test(test_sdk_external_volumes),
	    cmocka_unit_test(test_positions),
	    cmocka_unit_test(test_volume_level_errors),
	    cmocka_unit_test(test_name_collisions),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
