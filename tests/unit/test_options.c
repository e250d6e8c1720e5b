/*
 * test_options.c - "-o KEY=VALUE" arguments and options files (JSON, YAML).
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

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

/* Each test gets a fresh directory for its files. */
struct fx {
	char dir[64];
	char *path;
	struct hf_kvlist vars;
	struct hf_diags diags;
};

static int setup(void **state)
{
	struct fx *f = hf_xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/hf-test-options-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->path)
		unlink(f->path);
	free(f->path);
	rmdir(f->dir);
	hf_kvlist_release(&f->vars);
	hf_diags_release(&f->diags);
	free(f);
	return 0;
}

/* Writes the options file (name under the test dir) and loads it. */
static int load(struct fx *f, const char *name, const char *text, size_t len)
{
	FILE *fp;

	if (f->path)
		unlink(f->path);
	free(f->path);
	f->path = hf_xasprintf("%s/%s", f->dir, name);
	fp = fopen(f->path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	return hf_options_load_file(&f->vars, f->path, &f->diags);
}

static int loads(struct fx *f, const char *name, const char *text)
{
	return load(f, name, text, strlen(text));
}

static void expect_var(const struct fx *f, const char *key, const char *want)
{
	const char *got = hf_kvlist_get(&f->vars, key);

	if (!got)
		fail_msg("option %s is not set (want \"%s\")", key, want);
	assert_string_equal(got, want);
}

static const struct hf_diag *diag_with(const struct fx *f, const char *s)
{
	for (size_t i = 0; i < f->diags.len; i++)
		if (strstr(f->diags.items[i].msg, s))
			return &f->diags.items[i];
	hf_diags_print(stderr, &f->diags);
	fail_msg("no diagnostic mentions \"%s\"", s);
	return NULL;
}

static void test_arg(void **state)
{
	struct fx *f = *state;

	assert_int_equal(hf_options_add_arg(&f->vars, "A=b", &f->diags), 0);
	expect_var(f, "A", "b");
	assert_int_equal(hf_options_add_arg(&f->vars, "A=b=c", &f->diags), 0);
	expect_var(f, "A", "b=c");
	assert_int_equal(hf_options_add_arg(&f->vars, "EMPTY=", &f->diags), 0);
	expect_var(f, "EMPTY", "");
	assert_int_equal(hf_options_add_arg(&f->vars, "S= spaced ", &f->diags), 0);
	expect_var(f, "S", " spaced ");
	assert_int_equal(f->vars.len, 3);
	assert_string_equal(f->vars.items[0].key, "A");
	assert_int_equal(f->diags.len, 0);
}

static void test_arg_errors(void **state)
{
	struct fx *f = *state;

	assert_int_equal(hf_options_add_arg(&f->vars, "NOEQUALS", &f->diags),
			 HF_EINVAL);
	assert_int_equal(f->diags.len, 1);
	assert_null(f->diags.items[0].file);
	assert_int_equal(f->diags.items[0].level, HF_DIAG_ERROR);
	assert_string_equal(f->diags.items[0].msg,
			    "option \"NOEQUALS\" has no '=': give options as -o KEY=VALUE");
	assert_int_equal(hf_options_add_arg(&f->vars, "=value", &f->diags),
			 HF_EINVAL);
	assert_int_equal(f->diags.len, 2);
	assert_string_equal(f->diags.items[1].msg,
			    "option \"=value\" has an empty name: give options as -o KEY=VALUE");
	assert_int_equal(hf_options_add_arg(&f->vars, "", &f->diags), HF_EINVAL);
	assert_int_equal(hf_options_add_arg(&f->vars, "A\x1b[0m", &f->diags),
			 HF_EINVAL);
	diag_with(f, "\"A\\x1b[0m\" has no '='");
	assert_int_equal(f->vars.len, 0);
}

static void test_json_flat(void **state)
{
	struct fx *f = *state;

	hf_kvlist_set(&f->vars, "KEEP", "old");
	hf_kvlist_set(&f->vars, "S", "replaced");
	assert_int_equal(loads(f, "o.json",
			       "  \n{\n"
			       "  \"S\": \"text\",\n"
			       "  \"I\": 128000,\n"
			       "  \"NEG\": -3,\n"
			       "  \"R\": 0.1,\n"
			       "  \"R2\": 0.2,\n"
			       "  \"W\": 2.0,\n"
			       "  \"BIG\": 1e300,\n"
			       "  \"T\": true,\n"
			       "  \"F\": false,\n"
			       "  \"N\": null,\n"
			       "  \"U\": \"caf\\u00e9\",\n"
			       "  \"D\": \"first\",\n"
			       "  \"D\": \"second\"\n"
			       "}\n"),
			 0);
	assert_int_equal(f->diags.len, 0);
	expect_var(f, "KEEP", "old");
	expect_var(f, "S", "text");
	expect_var(f, "I", "128000");
	expect_var(f, "NEG", "-3");
	expect_var(f, "R", "0.1");
	expect_var(f, "R2", "0.2");
	expect_var(f, "W", "2.0");
	expect_var(f, "BIG", "1e+300");
	expect_var(f, "T", "true");
	expect_var(f, "F", "false");
	expect_var(f, "N", "");
	expect_var(f, "U", "caf\xc3\xa9");
	expect_var(f, "D", "second");
}

static void test_json_sdk_options(void **state)
{
	struct fx *f = *state;
	const char *root = getenv("HF_TEST_ROOT");
	char *path = hf_xasprintf("%s/../shared/sdk-specs/helloworld-options.json",
				  root ? root : ".");

	assert_int_equal(hf_options_load_file(&f->vars, path, &f->diags), 0);
	free(path);
	assert_int_equal(f->vars.len, 34);
	expect_var(f, "FRAMEWORK_NAME", "hello-world");
	expect_var(f, "HELLO_CPUS", "0.1");
	expect_var(f, "HELLO_RLIMIT_NOFILE_SOFT", "128000");
	expect_var(f, "HELLO_PLACEMENT", "[[\"hostname\", \"UNIQUE\"]]");
	expect_var(f, "HELLO_LABELS", "");
	expect_var(f, "TEST_BOOLEAN", "true");
	/* The file's order is kept. */
	assert_string_equal(f->vars.items[0].key, "FRAMEWORK_NAME");
	assert_string_equal(f->vars.items[33].key, "NGINX_CONTAINER_VERSION");
}

static void test_json_nested(void **state)
{
	struct fx *f = *state;
	const struct hf_diag *d;

	hf_kvlist_set(&f->vars, "KEEP", "old");
	assert_int_equal(loads(f, "o.json",
			       "{\n"
			       "  \"A\": \"x\",\n"
			       "  \"INNER\": {\"LIST\": 1},\n"
			       "  \"LIST\": [1, 2]\n"
			       "}\n"),
			 HF_ESPEC);
	assert_int_equal(f->diags.len, 2);
	d = diag_with(f, "option \"INNER\" is an object");
	assert_string_equal(d->file, f->path);
	assert_int_equal(d->line, 3);
	assert_int_equal(d->col, 3);
	d = diag_with(f, "option \"LIST\" is a list");
	/* The top-level key, not the one inside INNER. */
	assert_int_equal(d->line, 4);
	/* A failed load changes nothing. */
	assert_int_equal(f->vars.len, 1);
	expect_var(f, "KEEP", "old");
}

static void test_json_syntax_error(void **state)
{
	struct fx *f = *state;
	const struct hf_diag *d;

	assert_int_equal(loads(f, "o.json",
			       "{\n  \"A\": \"x\",\n  \"B\" \"y\"\n}\n"),
			 HF_ESPEC);
	assert_int_equal(f->diags.len, 1);
	d = diag_with(f, "invalid JSON");
	assert_string_equal(d->file, f->path);
	assert_int_equal(d->line, 3);
	assert_true(d->col > 0);
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.json", "{\"A\": 1} trailing"), HF_ESPEC);
	assert_int_equal(diag_with(f, "invalid JSON")->line, 1);
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.json", "{\"A\": \"nul\\u0000\"}"),
			 HF_ESPEC);
	diag_with(f, "invalid JSON");
	assert_int_equal(f->vars.len, 0);
}

static void test_json_not_object(void **state)
{
	struct fx *f = *state;

	/* A JSON array is read as YAML flow, and refused all the same. */
	assert_int_equal(loads(f, "o.json", "[1, 2]"), HF_ESPEC);
	diag_with(f, "one mapping of names to values");
	hf_diags_release(&f->diags);
	assert_int_equal(loads(f, "o.json", "{\"\": 1}"), HF_ESPEC);
	diag_with(f, "an option has an empty name");
	assert_int_equal(f->vars.len, 0);
}

static void test_yaml_flat(void **state)
{
	struct fx *f = *state;

	assert_int_equal(loads(f, "o.yml",
			       "# options\n"
			       "S: text\n"
			       "Q: \"quoted: yes\"\n"
			       "I: 128000\n"
			       "R: 0.1\n"
			       "W: 2.0\n"
			       "HEX: 0x1F\n"
			       "T: true\n"
			       "T2: True\n"
			       "F: FALSE\n"
			       "QF: 'false'\n"
			       "N: null\n"
			       "N2: ~\n"
			       "N3:\n"
			       "QN: \"null\"\n"
			       "LIT: |\n"
			       "  line1\n"
			       "  line2\n"
			       "ANCHOR: &a shared\n"
			       "ALIAS: *a\n"
			       "D: first\n"
			       "D: second\n"),
			 0);
	assert_int_equal(f->diags.len, 0);
	expect_var(f, "S", "text");
	expect_var(f, "Q", "quoted: yes");
	expect_var(f, "I", "128000");
	expect_var(f, "R", "0.1");
	expect_var(f, "W", "2.0");
	expect_var(f, "HEX", "0x1F");
	expect_var(f, "T", "true");
	expect_var(f, "T2", "true");
	expect_var(f, "F", "false");
	expect_var(f, "QF", "false");
	expect_var(f, "N", "");
	expect_var(f, "N2", "");
	expect_var(f, "N3", "");
	expect_var(f, "QN", "null");
	expect_var(f, "LIT", "line1\nline2\n");
	expect_var(f, "ALIAS", "shared");
	expect_var(f, "D", "second");
	assert_string_equal(f->vars.items[0].key, "S");
}

static void test_yaml_nested(void **state)
{
	struct fx *f = *state;
	const struct hf_diag *d;

	hf_kvlist_set(&f->vars, "KEEP", "old");
	assert_int_equal(loads(f, "o.yml",
			       "A: x\n"
			       "MAP:\n"
			       "  inner: 1\n"
			       "LIST: [1, 2]\n"
			       "? [complex]\n"
			       ": v\n"
			       "\"\": empty\n"),
			 HF_ESPEC);
	assert_int_equal(f->diags.len, 4);
	d = diag_with(f, "option \"MAP\" is a mapping");
	assert_string_equal(d->file, f->path);
	assert_int_equal(d->line, 3);
	assert_int_equal(d->col, 3);
	d = diag_with(f, "option \"LIST\" is a list");
	assert_int_equal(d->line, 4);
	assert_int_equal(d->col, 7);
	assert_int_equal(diag_with(f, "names must be plain text")->line, 5);
	assert_int_equal(diag_with(f, "empty name")->line, 7);
	assert_int_equal(f->vars.len, 1);
	expect_var(f, "KEEP", "old");
}

static void test_yaml_errors(void **state)
{
	struct fx *f = *state;
	const struct hf_diag *d;

	assert_int_equal(loads(f, "o.yml", "A: x\nB: [unclosed\nC: y\n"),
			 HF_ESPEC);
	assert_int_equal(f->diags.len, 1);
	d = diag_with(f, "invalid YAML");
	assert_string_equal(d->file, f->path);
	assert_true(d->line >= 2);
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.yml", "- a\n- b\n"), HF_ESPEC);
	d = diag_with(f, "one mapping of names to values");
	assert_int_equal(d->line, 1);
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.yml", "just text\n"), HF_ESPEC);
	diag_with(f, "one mapping");
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.yml", "A: 1\n---\nB: 2\n"), HF_ESPEC);
	assert_int_equal(diag_with(f, "not several")->line, 2);
	hf_diags_release(&f->diags);

	assert_int_equal(loads(f, "o.yml", "A: \"nul\\0\"\n"), HF_ESPEC);
	diag_with(f, "option \"A\" contains a NUL character");
	hf_diags_release(&f->diags);

	/* A raw NUL byte is not text: libyaml refuses it. */
	assert_int_equal(load(f, "o.yml", "A: x\0y\n", 7), HF_ESPEC);
	diag_with(f, "invalid YAML");
	assert_int_equal(f->vars.len, 0);
}

static void test_yaml_empty(void **state)
{
	struct fx *f = *state;

	assert_int_equal(loads(f, "o.yml", ""), 0);
	assert_int_equal(loads(f, "o.yml", "# nothing here\n\n"), 0);
	assert_int_equal(loads(f, "o.yml", "---\n"), 0);
	assert_int_equal(f->vars.len, 0);
	assert_int_equal(f->diags.len, 0);
}

static void test_file_errors(void **state)
{
	struct fx *f = *state;
	char *path = hf_xasprintf("%s/absent.json", f->dir);
	char *big;

	assert_int_equal(hf_options_load_file(&f->vars, path, &f->diags),
			 HF_ENOTFOUND);
	free(path);
	/* A directory cannot be read as a file. */
	assert_int_equal(hf_options_load_file(&f->vars, f->dir, &f->diags),
			 HF_EIO);
	assert_int_equal(f->diags.len, 0);

	big = hf_xmalloc((16u << 20) + 2);
	memset(big, ' ', (16u << 20) + 2);
	big[0] = '{';
	big[(16u << 20) + 1] = '}';
	assert_int_equal(load(f, "big.json", big, (16u << 20) + 2),
			 HF_ETOOBIG);
	free(big);
	diag_with(f, "larger than 16 MiB");
	assert_int_equal(f->vars.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_arg, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arg_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_sdk_options, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_not_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yaml_flat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yaml_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yaml_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_yaml_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
