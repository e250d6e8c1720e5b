/*
 * test_package.c - DC/OS SDK packages (src/spec/package.c): defaults,
 * merging and schema checks of config.json, the Marathon template's
 * values as Cosmos wrote them, build placeholders, and positions of every
 * problem in the file at fault. Expected values are worked out by hand
 * from the inputs written here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

static void print_diags(const struct hf_diags *d)
{
	for (size_t i = 0; i < d->len; i++)
		print_error("  %s %s:%d:%d %s: %s\n",
			    d->items[i].level == HF_DIAG_ERROR ? "error"
							       : "warning",
			    d->items[i].file ? d->items[i].file : "-",
			    d->items[i].line, d->items[i].col, d->items[i].path,
			    d->items[i].msg);
}

/* A package with these files (NULL: absent) and one options file. */
static int render(const char *config, const char *marathon,
		  const char *resource, const char *package,
		  const char *options, const struct hf_kvlist *build,
		  struct hf_package *out, struct hf_diags *d)
{
	struct hf_package_file opt = {"options.json", options,
				      options ? strlen(options) : 0};
	struct hf_package_input in = {
	    .config = {"config.json", config, config ? strlen(config) : 0},
	    .marathon = {"marathon.json.mustache", marathon,
			 marathon ? strlen(marathon) : 0},
	    .resource = {"resource.json", resource,
			 resource ? strlen(resource) : 0},
	    .package = {"package.json", package,
			package ? strlen(package) : 0},
	    .options = options ? &opt : NULL,
	    .noptions = options ? 1 : 0,
	    .build = build,
	};
	int rc = hf_package_render(&in, out, d);

	if (d->len)
		print_diags(d);
	return rc;
}

static void expect_var(const struct hf_package *p, const char *k,
		       const char *want)
{
	const char *got = hf_kvlist_get(&p->vars, k);

	if (!got || strcmp(got, want) != 0)
		fail_msg("%s: want \"%s\", got %s%s%s", k, want, got ? "\"" : "",
			 got ? got : "(unset)", got ? "\"" : "");
}

/*
 * The first diagnostic of level at file (any when NULL) and path (any when
 * NULL) that says words.
 */
static const struct hf_diag *find_diag(const struct hf_diags *d,
				       enum hf_diag_level level,
				       const char *file, const char *path,
				       const char *words)
{
	for (size_t i = 0; i < d->len; i++)
		if (d->items[i].level == level &&
		    (!file || (d->items[i].file &&
			       strcmp(d->items[i].file, file) == 0)) &&
		    (!path || strcmp(d->items[i].path, path) == 0) &&
		    (!words || strstr(d->items[i].msg, words)))
			return &d->items[i];
	return NULL;
}

/* There is such a diagnostic, at line:col (col 0: any column). */
static void expect_diag(const struct hf_diags *d, enum hf_diag_level level,
			const char *file, const char *path, int line, int col,
			const char *words)
{
	const struct hf_diag *g = find_diag(d, level, file, path, words);

	if (!g)
		fail_msg("no %s in %s at path %s saying \"%s\"",
			 level ? "warning" : "error", file ? file : "(any)",
			 path ? path : "(any)", words ? words : "");
	if (g->line != line || (col && g->col != col))
		fail_msg("%s: at %d:%d, want %d:%d (%s)", path ? path : file,
			 g->line, g->col, line, col, g->msg);
}

/* ------------------------------------------------------------------ */

/* Numbers: ints as ints, other numbers as Java's Double.toString. */
static void test_numbers_as_cosmos_wrote_them(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\"n\": {\"type\": "
	    "\"object\", \"properties\": {\n"
	    "  \"i\": {\"type\": \"integer\", \"default\": 128000},\n"
	    "  \"whole\": {\"type\": \"number\", \"default\": 1.0},\n"
	    "  \"tenth\": {\"type\": \"number\", \"default\": 0.1},\n"
	    "  \"factor\": {\"type\": \"number\", \"default\": 1.15},\n"
	    "  \"small\": {\"type\": \"number\", \"default\": 0.0001},\n"
	    "  \"big\": {\"type\": \"integer\", \"default\": 3000000000},\n"
	    "  \"large\": {\"type\": \"number\", \"default\": 12345678.9},\n"
	    "  \"neg\": {\"type\": \"number\", \"default\": -0.5},\n"
	    "  \"huge\": {\"type\": \"number\", \"default\": 1e21},\n"
	    "  \"milli\": {\"type\": \"number\", \"default\": 0.001},\n"
	    "  \"t\": {\"type\": \"boolean\", \"default\": true},\n"
	    "  \"f\": {\"type\": \"boolean\", \"default\": false}\n"
	    "}}}}\n";
	static const char marathon[] =
	    "{\"env\": {\"I\": \"{{n.i}}\", \"WHOLE\": \"{{n.whole}}\", "
	    "\"TENTH\": \"{{n.tenth}}\", \"FACTOR\": \"{{n.factor}}\", "
	    "\"SMALL\": \"{{n.small}}\", \"BIG\": \"{{n.big}}\", "
	    "\"LARGE\": \"{{n.large}}\", \"NEG\": \"{{n.neg}}\", "
	    "\"HUGE\": \"{{n.huge}}\", \"MILLI\": \"{{n.milli}}\", "
	    "\"T\": \"{{n.t}}\", \"F\": \"{{n.f}}\"}}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(config, marathon, NULL, NULL, NULL, NULL, &p,
				&d),
			 0);
	expect_var(&p, "I", "128000");
	expect_var(&p, "WHOLE", "1");
	expect_var(&p, "TENTH", "0.1");
	expect_var(&p, "FACTOR", "1.15");
	expect_var(&p, "SMALL", "1.0E-4");
	expect_var(&p, "BIG", "3.0E9");
	expect_var(&p, "LARGE", "1.23456789E7");
	expect_var(&p, "NEG", "-0.5");
	expect_var(&p, "HUGE", "1.0E21");
	expect_var(&p, "MILLI", "0.001");
	expect_var(&p, "T", "true");
	expect_var(&p, "F", "false");
	hf_package_release(&p);
	hf_diags_release(&d);
}

/*
 * Strings are JSON-escaped into the template, so a placement with quotes
 * survives "{{{x}}}" inside a JSON string; objects and lists render as
 * JSON; user options merge over the defaults leaf by leaf; sections on
 * empty strings and false are false, on 0 true (as in mustache.java).
 */
static void test_strings_objects_merge_and_sections(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\n"
	    " \"svc\": {\"type\": \"object\", \"properties\": {\n"
	    "  \"name\": {\"type\": \"string\", \"default\": \"hello\"},\n"
	    "  \"place\": {\"type\": \"string\", \"default\": "
	    "\"[[\\\"hostname\\\", \\\"UNIQUE\\\"]]\"},\n"
	    "  \"text\": {\"type\": \"string\", \"default\": \"a\\\\b\\nc\"},\n"
	    "  \"role\": {\"type\": \"string\", \"default\": \"\"},\n"
	    "  \"zero\": {\"type\": \"integer\", \"default\": 0},\n"
	    "  \"list\": {\"type\": \"array\", \"default\": []},\n"
	    "  \"nested\": {\"type\": \"object\", \"properties\": {\n"
	    "    \"a\": {\"type\": \"integer\", \"default\": 1},\n"
	    "    \"b\": {\"type\": \"integer\", \"default\": 2}}}\n"
	    " }}}}\n";
	static const char marathon[] =
	    "{\"constraints\": {{svc.list}},\n"
	    " \"env\": {\n"
	    "  \"NAME\": \"{{svc.name}}\",\n"
	    "  \"PLACE\": \"{{{svc.place}}}\",\n"
	    "  \"TEXT\": \"{{svc.text}}\",\n"
	    "  {{#svc.role}}\"ROLE\": \"{{svc.role}}\",{{/svc.role}}\n"
	    "  {{#svc.zero}}\"ZERO\": \"{{svc.zero}}\",{{/svc.zero}}\n"
	    "  \"A\": \"{{svc.nested.a}}\", \"B\": \"{{svc.nested.b}}\",\n"
	    "  \"LIST\": \"{{svc.list}}\"\n"
	    " }}\n";
	static const char options[] =
	    "{\"svc\": {\"nested\": {\"b\": 20}, \"name\": \"mine\"}}";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(config, marathon, NULL, NULL, options, NULL,
				&p, &d),
			 0);
	expect_var(&p, "NAME", "mine");
	expect_var(&p, "PLACE", "[[\"hostname\", \"UNIQUE\"]]");
	expect_var(&p, "TEXT", "a\\b\nc");
	assert_null(hf_kvlist_get(&p.vars, "ROLE"));
	expect_var(&p, "ZERO", "0");
	expect_var(&p, "A", "1");
	expect_var(&p, "B", "20");
	expect_var(&p, "LIST", "[]");
	assert_string_equal(p.spec_name, "svc");
	hf_package_release(&p);
	hf_diags_release(&d);
}

static const char schema[] =
    "{\n"                                                        /* 1 */
    "  \"type\": \"object\",\n"                                  /* 2 */
    "  \"properties\": {\n"                                      /* 3 */
    "    \"pod\": {\n"                                           /* 4 */
    "      \"type\": \"object\",\n"                              /* 5 */
    "      \"properties\": {\n"                                  /* 6 */
    "        \"count\": {\"type\": \"integer\", \"default\": 1},\n" /* 7 */
    "        \"soft\": {\"type\": \"integer\", \"default\": 128000, "
    "\"minimum\": 128000},\n"                                    /* 8 */
    "        \"level\": {\"type\": \"string\", \"enum\": [\"INFO\", "
    "\"DEBUG\"], \"default\": \"INFO\"},\n"                      /* 9 */
    "        \"secret\": {\"type\": \"string\"},\n"              /* 10 */
    "        \"heap\": {\"type\": \"object\", \"additionalProperties\": "
    "false, \"properties\": {\"size\": {\"type\": \"integer\", "
    "\"default\": 2048}}}\n"                                     /* 11 */
    "      },\n"                                                 /* 12 */
    "      \"required\": [\"count\", \"secret\"]\n"              /* 13 */
    "    }\n"                                                    /* 14 */
    "  }\n"                                                      /* 15 */
    "}\n";

static const char small_marathon[] =
    "{\"env\": {\"COUNT\": \"{{pod.count}}\"}}\n";

/* Every schema problem at once, each in the file at fault. */
static void test_schema_problems_point_at_the_file_at_fault(void **state)
{
	static const char options[] =
	    "{\n"                                     /* 1 */
	    "  \"pod\": {\n"                          /* 2 */
	    "    \"count\": \"three\",\n"             /* 3 */
	    "    \"soft\": 20000,\n"                  /* 4 */
	    "    \"level\": \"LOUD\",\n"              /* 5 */
	    "    \"heap\": {\"size\": 1, \"sise\": 2},\n" /* 6 */
	    "    \"levle\": \"INFO\"\n"               /* 7 */
	    "  }\n"
	    "}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(schema, small_marathon, NULL, NULL, options,
				NULL, &p, &d),
			 HF_ESPEC);
	assert_null(p.spec_name);
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "pod.count", 3, 14,
		    "must be of type integer, not a string");
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "pod.soft", 4, 13,
		    "20000 is below the minimum 128000");
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "pod.level", 5, 14,
		    "\"LOUD\" is not one of [\"INFO\",\"DEBUG\"]");
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "pod.heap.sise", 6, 33,
		    "not an option of this package");
	/* The user's `pod` lacks `secret`, which has no default. */
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "pod", 2, 10,
		    "needs 'secret'");
	expect_diag(&d, HF_DIAG_WARNING, "options.json", "pod.levle", 7, 14,
		    "did you mean 'level'?");
	assert_int_equal(d.errors, 5);
	hf_diags_release(&d);

	/* Nobody wrote `pod`: the schema's `required` is at fault. */
	assert_int_equal(render(schema, small_marathon, NULL, NULL, "{}", NULL,
				&p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "config.json", "pod", 13, 19,
		    "needs 'secret'");
	assert_int_equal(d.errors, 1);
	hf_diags_release(&d);
}

/* A default that breaks its own schema is config.json's fault. */
static void test_bad_default_points_at_config_json(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\n"
	    "  \"pod\": {\"type\": \"object\", \"properties\": {\n"
	    "    \"count\": {\"type\": \"integer\", \"minimum\": 3, "
	    "\"default\": 1}}}}}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(config, small_marathon, NULL, NULL, "{}", NULL,
				&p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "config.json", "pod.count", 3, 59,
		    "1 is below the minimum 3");
	hf_diags_release(&d);
}

/*
 * A template line that renders to broken JSON is reported at its line in
 * the template (hello-world's own marathon.json.mustache has one, in a
 * section its defaults leave out).
 */
static void test_broken_marathon_json_at_template_line(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\"pod\": {\"type\": "
	    "\"object\", \"properties\": {\"vol\": {\"type\": \"string\", "
	    "\"default\": \"\"}}}}}\n";
	static const char marathon[] =
	    "{\n"                                             /* 1 */
	    "  \"env\": {\n"                                  /* 2 */
	    "    \"A\": \"a\",\n"                             /* 3 */
	    "    {{#pod.vol}}\n"                              /* 4 */
	    "    \"VOL: \"{{pod.vol}}\",\n"                   /* 5 */
	    "    {{/pod.vol}}\n"                              /* 6 */
	    "    \"B\": \"b\"\n"                              /* 7 */
	    "  }\n"
	    "}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(config, marathon, NULL, NULL, NULL, NULL, &p,
				&d),
			 0);
	expect_var(&p, "A", "a");
	hf_package_release(&p);
	hf_diags_release(&d);
	assert_int_equal(render(config, marathon, NULL, NULL,
				"{\"pod\": {\"vol\": \"x\"}}", NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "marathon.json.mustache", "", 5, 0,
		    "not valid JSON");
	hf_diags_release(&d);
}

/* Env values must be strings; a DC/OS secret has no store here. */
static void test_env_secret_and_non_string(void **state)
{
	static const char marathon[] =
	    "{\"env\": {\n"
	    "  \"OK\": \"{{pod.count}}\",\n"
	    "  \"NUM\": {{pod.count}},\n"
	    "  \"PW\": {\"secret\": \"pw\"}\n"
	    "}}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(schema, marathon, NULL, NULL,
				"{\"pod\": {\"secret\": \"s\"}}", NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "marathon.json.mustache", "env", 3, 10,
		    "env NUM must be a string");
	expect_diag(&d, HF_DIAG_ERROR, NULL, "env", 4, 9, "DC/OS secret");
	hf_diags_release(&d);
}

/*
 * Build placeholders: package-name and package-version from package.json
 * when concrete, "unversioned" when not, *-url under artifact-dir, sha256:
 * empty; others empty with a warning naming TEMPLATE_<NAME>. Options
 * without a value render empty with a warning.
 */
static void test_build_placeholders(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\"service\": {\"type\": "
	    "\"object\", \"properties\": {\"yaml\": {\"type\": \"string\", "
	    "\"default\": \"{{default-yaml}}\"}, \"opt\": {\"type\": "
	    "\"string\"}}}}}\n";
	static const char resource[] =
	    "{\"assets\": {\"uris\": {\"jre\": \"{{jre-url}}\", \"boot\": "
	    "\"{{artifact-dir}}/bootstrap.zip\", \"sum\": "
	    "\"{{sha256:cli.exe}}\"}}}\n";
	static const char marathon[] =
	    "{\"env\": {\n"
	    "  \"NAME\": \"{{package-name}}\",\n"
	    "  \"VERSION\": \"{{package-version}}\",\n"
	    "  \"JAVA_URI\": \"{{resource.assets.uris.jre}}\",\n"
	    "  \"BOOTSTRAP_URI\": \"{{resource.assets.uris.boot}}\",\n"
	    "  \"SUM\": \"{{resource.assets.uris.sum}}\",\n"
	    "  \"KAFKA\": \"{{kafka-version}}\",\n"
	    "  \"OPT\": \"{{service.opt}}\"\n"
	    "}}\n";
	struct hf_kvlist build = {0};
	struct hf_package p;
	struct hf_diags d = {0};

	hf_kvlist_set(&build, "artifact-dir", "file:///pkg/artifacts");
	hf_kvlist_set(&build, "default-yaml", "simple");
	assert_int_equal(render(config, marathon, resource,
				"{\"name\": \"kafka\", \"version\": "
				"\"{{package-version}}\"}",
				NULL, &build, &p, &d),
			 0);
	expect_var(&p, "NAME", "kafka");
	expect_var(&p, "VERSION", "unversioned");
	expect_var(&p, "JAVA_URI", "file:///pkg/artifacts/jre");
	expect_var(&p, "BOOTSTRAP_URI", "file:///pkg/artifacts/bootstrap.zip");
	expect_var(&p, "SUM", "");
	expect_var(&p, "KAFKA", "");
	expect_var(&p, "OPT", "");
	assert_string_equal(p.spec_name, "simple");
	expect_diag(&d, HF_DIAG_WARNING, "marathon.json.mustache", "", 7, 13,
		    "TEMPLATE_KAFKA_VERSION");
	expect_diag(&d, HF_DIAG_WARNING, "marathon.json.mustache", "", 8, 11,
		    "option service.opt has no value");
	assert_int_equal(d.warnings, 2);
	hf_package_release(&p);
	hf_diags_release(&d);

	/* A concrete version wins; the caller's values win over it. */
	hf_kvlist_set(&build, "kafka-version", "2.8");
	assert_int_equal(render(config, marathon, resource,
				"{\"name\": \"kafka\", \"version\": \"1.2-3\"}",
				NULL, &build, &p, &d),
			 0);
	expect_var(&p, "VERSION", "1.2-3");
	expect_var(&p, "KAFKA", "2.8");
	hf_package_release(&p);
	hf_diags_release(&d);
	hf_kvlist_release(&build);
}

/* A filled placeholder that opens a section needs what the section uses. */
static void test_placeholder_opening_a_section(void **state)
{
	static const char marathon[] =
	    "{\"env\": {\n"
	    "{{#package-version}}\n"
	    "  \"V\": \"{{package-version}}\", \"K\": \"{{kafka-version}}\",\n"
	    "{{/package-version}}\n"
	    "  \"C\": \"{{pod.count}}\"\n"
	    "}}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(schema, marathon, NULL, NULL,
				"{\"pod\": {\"secret\": \"s\"}}", NULL, &p, &d),
			 0);
	expect_var(&p, "V", "unversioned");
	expect_var(&p, "K", "");
	expect_var(&p, "C", "1");
	expect_diag(&d, HF_DIAG_WARNING, "marathon.json.mustache", "", 3, 37,
		    "TEMPLATE_KAFKA_VERSION");
	hf_package_release(&p);
	hf_diags_release(&d);
}

/* `service.yaml` picks the spec; it must be a plain name. */
static void test_spec_name_must_be_a_plain_name(void **state)
{
	static const char config[] =
	    "{\"type\": \"object\", \"properties\": {\"service\": {\"type\": "
	    "\"object\", \"properties\": {\"yaml\": {\"type\": \"string\", "
	    "\"default\": \"svc\"}}}}}\n";
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render(config, "{\"env\": {}}", NULL, NULL,
				"{\"service\": {\"yaml\": \"../../etc/x\"}}",
				NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "service.yaml", 1, 22,
		    "not a spec name");
	hf_diags_release(&d);
}

/* Files that are not what they should be. */
static void test_bad_files(void **state)
{
	struct hf_package p;
	struct hf_diags d = {0};

	assert_int_equal(render("{\"type\": \"object\",\n \"x\": }", "{}",
				NULL, NULL, NULL, NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "config.json", "", 2, 0,
		    "config.json is not valid JSON");
	hf_diags_release(&d);
	assert_int_equal(render(schema, small_marathon, NULL, NULL, "[1, 2]",
				NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "", 1, 1,
		    "one JSON object");
	hf_diags_release(&d);
	assert_int_equal(render(schema, small_marathon, NULL, NULL,
				"{\"pod\": {\"secret\": \"a\", \"secret\": "
				"\"b\"}}",
				NULL, &p, &d),
			 HF_ESPEC);
	expect_diag(&d, HF_DIAG_ERROR, "options.json", "", 1, 0,
		    "duplicate");
	hf_diags_release(&d);
	assert_int_equal(render(NULL, small_marathon, NULL, NULL, NULL, NULL,
				&p, &d),
			 HF_ESPEC);
	hf_diags_release(&d);
}

/* The SDK's own hello-world package, read from its directory. */
static void test_load_helloworld_package(void **state)
{
	const char *root = getenv("HF_TEST_ROOT");
	char *dir = hf_xasprintf("%s/../shared/sdk-specs/helloworld-package",
				 root && *root ? root : ".");
	char *opts = hf_xasprintf("%s/single-node-options.json", dir);
	struct hf_strlist files = {0};
	struct hf_package p;
	struct hf_diags d = {0};
	int rc;

	hf_strlist_push(&files, opts);
	rc = hf_package_load(dir, &files, NULL, &p, &d);
	if (rc)
		print_diags(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.len, 0);
	assert_true(strstr(p.spec_file, "/src/main/dist/svc.yml") != NULL);
	expect_var(&p, "FRAMEWORK_NAME", "hello-world");
	expect_var(&p, "FRAMEWORK_PRINCIPAL", "");
	expect_var(&p, "HELLO_PLACEMENT", "");
	expect_var(&p, "PACKAGE_NAME", "hello-world");
	hf_package_release(&p);
	hf_diags_release(&d);

	/* A missing options file and a missing package are named. */
	hf_strlist_release(&files);
	hf_strlist_push(&files, "/nonexistent/options.json");
	assert_int_equal(hf_package_load(dir, &files, NULL, &p, &d),
			 HF_ENOTFOUND);
	expect_diag(&d, HF_DIAG_ERROR, "/nonexistent/options.json", "", 0, 0,
		    "no such file");
	hf_diags_release(&d);
	assert_int_equal(hf_package_load("/nonexistent", NULL, NULL, &p, &d),
			 HF_ENOTFOUND);
	expect_diag(&d, HF_DIAG_ERROR, "/nonexistent/universe/config.json", "",
		    0, 0, "SDK package directory");
	hf_diags_release(&d);
	hf_strlist_release(&files);
	free(dir);
	free(opts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_numbers_as_cosmos_wrote_them),
	    cmocka_unit_test(test_strings_objects_merge_and_sections),
	    cmocka_unit_test(test_schema_problems_point_at_the_file_at_fault),
	    cmocka_unit_test(test_bad_default_points_at_config_json),
	    cmocka_unit_test(test_broken_marathon_json_at_template_line),
	    cmocka_unit_test(test_env_secret_and_non_string),
	    cmocka_unit_test(test_build_placeholders),
	    cmocka_unit_test(test_placeholder_opening_a_section),
	    cmocka_unit_test(test_spec_name_must_be_a_plain_name),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_load_helloworld_package),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
