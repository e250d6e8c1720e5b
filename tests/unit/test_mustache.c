/*
 * test_mustache.c - the mustache renderer: tags, sections, standalone lines,
 * missing variables, errors with positions, the line map, and SDK specs.
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
#include "spec/spec.h"

/* A render with its inputs and outputs, released by fx_release(). */
struct fx {
	struct hf_kvlist vars;
	struct hf_diags diags;
	struct hf_linemap map;
	char *out;
	int rc;
};

static void fx_release(struct fx *f)
{
	hf_kvlist_release(&f->vars);
	hf_diags_release(&f->diags);
	hf_linemap_release(&f->map);
	free(f->out);
	f->out = NULL;
}

static int render_n(struct fx *f, const char *tmpl, size_t len,
		    bool allow_missing)
{
	free(f->out);
	f->out = NULL;
	f->rc = hf_mustache_render(tmpl, len, &f->vars, allow_missing,
				   "t.yml", &f->out, &f->map, &f->diags);
	return f->rc;
}

static int render(struct fx *f, const char *tmpl)
{
	return render_n(f, tmpl, strlen(tmpl), false);
}

/* Renders and asserts success and the exact output. */
static void expect(struct fx *f, const char *tmpl, const char *want)
{
	render(f, tmpl);
	if (f->rc != 0)
		hf_diags_print(stderr, &f->diags);
	assert_int_equal(f->rc, 0);
	assert_non_null(f->out);
	assert_string_equal(f->out, want);
	assert_int_equal(f->diags.len, 0);
}

/* Renders and asserts failure with one diagnostic containing msg at l:c. */
static void expect_error(struct fx *f, const char *tmpl, int line, int col,
			 const char *msg)
{
	render(f, tmpl);
	assert_int_equal(f->rc, HF_ESPEC);
	assert_null(f->out);
	assert_int_equal(f->map.len, 0);
	assert_null(f->map.items);
	if (f->diags.len != 1)
		hf_diags_print(stderr, &f->diags);
	assert_int_equal(f->diags.len, 1);
	assert_int_equal(f->diags.items[0].level, HF_DIAG_ERROR);
	assert_string_equal(f->diags.items[0].file, "t.yml");
	assert_string_equal(f->diags.items[0].path, "");
	assert_int_equal(f->diags.items[0].line, line);
	assert_int_equal(f->diags.items[0].col, col);
	if (!strstr(f->diags.items[0].msg, msg))
		fail_msg("message \"%s\" lacks \"%s\"", f->diags.items[0].msg,
			 msg);
}

/* Finds the diagnostic whose message contains s, or fails. */
static const struct hf_diag *diag_with(const struct fx *f, const char *s)
{
	for (size_t i = 0; i < f->diags.len; i++)
		if (strstr(f->diags.items[i].msg, s))
			return &f->diags.items[i];
	hf_diags_print(stderr, &f->diags);
	fail_msg("no diagnostic mentions \"%s\"", s);
	return NULL;
}

static void test_plain_text(void **state)
{
	struct fx f = {0};

	expect(&f, "", "");
	assert_int_equal(f.map.len, 0);
	expect(&f, "no tags at all\n", "no tags at all\n");
	expect(&f, "single { brace } and }} and {x}", "single { brace } and }} and {x}");
	expect(&f, "ends with {", "ends with {");
	fx_release(&f);
}

static void test_variables(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "A", "alpha");
	hf_kvlist_set(&f.vars, "Q", "<a & \"b\">");
	hf_kvlist_set(&f.vars, "EMPTY", "");
	hf_kvlist_set(&f.vars, "a.b", "dotted");
	expect(&f, "x: {{A}}\n", "x: alpha\n");
	expect(&f, "{{ A }}|{{{ A }}}|{{& A}}|{{&A}}", "alpha|alpha|alpha|alpha");
	/* Nothing is HTML-escaped: specs are YAML. */
	expect(&f, "{{Q}} {{{Q}}} {{&Q}}", "<a & \"b\"> <a & \"b\"> <a & \"b\">");
	expect(&f, "[{{EMPTY}}]", "[]");
	expect(&f, "{{a.b}}", "dotted");
	expect(&f, "{{A}}{{A}}", "alphaalpha");
	/* Whitespace, even newlines, around a name is trimmed. */
	expect(&f, "{{\n  A\n}}", "alpha");
	/* A variable tag is never standalone: its line stays. */
	expect(&f, "  {{A}}  \nz", "  alpha  \nz");
	fx_release(&f);
}

static void test_comments(void **state)
{
	struct fx f = {0};

	expect(&f, "a{{! a comment }}b", "ab");
	expect(&f, "a\n  {{! standalone }}  \nb\n", "a\nb\n");
	expect(&f, "a\n{{!\nmulti\nline\n}}\nb", "a\nb");
	/* Tags inside a comment are not read. */
	expect(&f, "{{! {{#X and {{MISSING }}ok", "ok");
	fx_release(&f);
}

static void test_sections(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "ON", "yes");
	hf_kvlist_set(&f.vars, "T", "true");
	hf_kvlist_set(&f.vars, "F", "false");
	hf_kvlist_set(&f.vars, "FU", "FaLsE");
	hf_kvlist_set(&f.vars, "E", "");
	hf_kvlist_set(&f.vars, "ZERO", "0");
	hf_kvlist_set(&f.vars, "V", "val");

	expect(&f, "[{{#ON}}in{{/ON}}]", "[in]");
	expect(&f, "[{{#T}}in{{/T}}]", "[in]");
	expect(&f, "[{{#ZERO}}in{{/ZERO}}]", "[in]");
	expect(&f, "[{{#F}}in{{/F}}]", "[]");
	expect(&f, "[{{#FU}}in{{/FU}}]", "[]");
	expect(&f, "[{{#E}}in{{/E}}]", "[]");
	expect(&f, "[{{#UNSET}}in{{/UNSET}}]", "[]");
	expect(&f, "[{{^ON}}in{{/ON}}]", "[]");
	expect(&f, "[{{^F}}in{{/F}}]", "[in]");
	expect(&f, "[{{^FU}}in{{/FU}}]", "[in]");
	expect(&f, "[{{^E}}in{{/E}}]", "[in]");
	expect(&f, "[{{^UNSET}}in{{/UNSET}}]", "[in]");
	/* Inside a section a value is the plain variable. */
	expect(&f, "{{#ON}}{{V}}-{{ON}}{{/ON}}", "val-yes");
	/* Whitespace after the sigil and around the name. */
	expect(&f, "{{# ON }}a{{/ ON }}{{ ^F}}b{{ /F }}", "ab");
	fx_release(&f);
}

static void test_nested_sections(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "A", "1");
	hf_kvlist_set(&f.vars, "B", "1");
	hf_kvlist_set(&f.vars, "N", "false");
	expect(&f, "{{#A}}a{{#B}}b{{/B}}{{^B}}x{{/B}}{{/A}}", "ab");
	expect(&f, "{{#A}}a{{#N}}n{{^B}}x{{/B}}{{/N}}c{{/A}}", "ac");
	/* An inverted section inside a false one stays off. */
	expect(&f, "{{#N}}{{^N}}never{{/N}}{{/N}}.", ".");
	/* The same name nested in itself. */
	expect(&f, "{{#A}}1{{#A}}2{{/A}}3{{/A}}", "123");
	/* Variables inside a section that does not render are not needed. */
	expect(&f, "{{#N}}{{NOT_SET}}{{/N}}{{^A}}{{ALSO_NOT}}{{/A}}ok", "ok");
	fx_release(&f);
}

static void test_standalone_lines(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "ON", "true");
	hf_kvlist_set(&f.vars, "OFF", "false");
	expect(&f,
	       "a:\n"
	       "        {{#ON}}\n"
	       "  b: 1\n"
	       "        {{/ON}}\n"
	       "        {{^ON}}\n"
	       "  c: 2\n"
	       "\t{{/ON}}  \t\n"
	       "d: 3\n",
	       "a:\n  b: 1\nd: 3\n");
	/* CRLF line ends go with the line. */
	expect(&f, "|\r\n{{#ON}}\r\n{{/ON}}\r\n|", "|\r\n|");
	/* A standalone tag on the last line, without a newline. */
	expect(&f, "x\n  {{#OFF}}\ny\n  {{/OFF}}", "x\n");
	expect(&f, "{{#ON}}\nfirst\n{{/ON}}\n", "first\n");
	/* Two tags on a line: neither is standalone. */
	expect(&f, "a\n {{#ON}}{{/ON}} \nb", "a\n  \nb");
	/* Text before or after the tag: not standalone. */
	expect(&f, "k: {{#ON}}v{{/ON}}\n", "k: v\n");
	expect(&f, "{{#ON}}  x\n{{/ON}}", "  x\n");
	fx_release(&f);
}

static void test_missing_variables(void **state)
{
	struct fx f = {0};
	const struct hf_diag *d;

	hf_kvlist_set(&f.vars, "SET", "1");
	render(&f, "a: {{SET}}\nb: {{HELLO_COUNT}}\nc:\n  d: {{OTHER}} {{HELLO_COUNT}}\n"
		   "e: {{HELLO_COUNT}}\n");
	assert_int_equal(f.rc, HF_ESPEC);
	assert_null(f.out);
	assert_int_equal(f.map.len, 0);
	/* Each missing name once, at its first use. */
	assert_int_equal(f.diags.len, 2);
	assert_int_equal(f.diags.errors, 2);
	d = diag_with(&f, "HELLO_COUNT");
	assert_int_equal(d->line, 2);
	assert_int_equal(d->col, 4);
	assert_string_equal(d->file, "t.yml");
	assert_string_equal(d->path, "");
	assert_string_equal(d->msg,
			    "variable HELLO_COUNT is not set (give it with -o HELLO_COUNT=VALUE, or use --allow-missing)");
	d = diag_with(&f, "OTHER");
	assert_int_equal(d->line, 4);
	assert_int_equal(d->col, 6);
	fx_release(&f);

	/* Triple and & tags count as variables too. */
	render(&f, "{{{T3}}}\n{{&AMP}}");
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(diag_with(&f, "T3")->line, 1);
	assert_int_equal(diag_with(&f, "AMP")->line, 2);
	fx_release(&f);

	/* A section variable is never missing. */
	expect(&f, "{{#NOPE}}x{{/NOPE}}{{^NOPE}}y{{/NOPE}}", "y");
	fx_release(&f);
}

static void test_allow_missing(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "SET", "1");
	{
		const char *t = "a: [{{MISSING}}] {{{M2}}} {{SET}}\n";

		render_n(&f, t, strlen(t), true);
	}
	assert_int_equal(f.rc, 0);
	assert_string_equal(f.out, "a: []  1\n");
	assert_int_equal(f.diags.len, 0);
	fx_release(&f);
}

static void test_errors(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "A", "1");
	expect_error(&f, "ok\nx: {{A\n", 2, 4, "\"{{\" is never closed");
	fx_release(&f);
	expect_error(&f, "x: {{{A}}\n", 1, 4, "\"{{{\" is never closed");
	fx_release(&f);
	expect_error(&f, "{{", 1, 1, "never closed");
	fx_release(&f);
}

static void test_error_positions(void **state)
{
	struct fx f = {0};
	const struct hf_diag *d;

	hf_kvlist_set(&f.vars, "A", "1");
	hf_kvlist_set(&f.vars, "B", "1");
	expect_error(&f, "a\n  {{#A}}\nb\n", 2, 3,
		     "section {{#A}} is never closed (no {{/A}})");
	fx_release(&f);
	expect_error(&f, "a\n{{^A}}x", 2, 1, "section {{^A}} is never closed");
	fx_release(&f);
	expect_error(&f, "x\ny {{/A}}", 2, 3, "{{/A}} closes no open section");
	fx_release(&f);
	expect_error(&f, "{{#A}}\n  {{/B}}\n{{/A}}", 2, 3,
		     "{{/B}} does not close the open section {{#A}} from line 1:1");
	fx_release(&f);
	expect_error(&f, "\n\n   {{> part}}", 3, 4,
		     "partials (\"{{>\") are not supported in service specs");
	fx_release(&f);
	expect_error(&f, "{{=<% %>=}}", 1, 1,
		     "set-delimiter tags (\"{{=\") are not supported in service specs");
	fx_release(&f);
	expect_error(&f, "a {{}}", 1, 3, "tag has no name");
	fx_release(&f);
	expect_error(&f, "a {{  }}", 1, 3, "tag has no name");
	fx_release(&f);
	expect_error(&f, "{{#}}", 1, 1, "tag has no name");
	fx_release(&f);
	expect_error(&f, "ab{{/\n}}", 1, 3, "tag has no name");
	fx_release(&f);
	expect_error(&f, "{{^ }}", 1, 1, "tag has no name");
	fx_release(&f);
	expect_error(&f, "{{{}}}", 1, 1, "tag has no name");
	fx_release(&f);
	expect_error(&f, "{{A B}}", 1, 1, "\"A B\" is not a valid tag name");
	fx_release(&f);
	expect_error(&f, "x{{{{A}}}}", 1, 2, "\"{A\" is not a valid tag name");
	fx_release(&f);

	/* Mismatched close inside nesting: recover at the outer section. */
	render(&f, "{{#A}}\n{{#B}}\n{{/A}}\nafter {{C}}\n");
	assert_int_equal(f.rc, HF_ESPEC);
	d = diag_with(&f, "does not close");
	assert_int_equal(d->line, 3);
	assert_string_equal(d->msg,
			    "{{/A}} does not close the open section {{#B}} from line 2:1");
	/* The scan went on: the missing C is reported, and nothing more. */
	assert_int_equal(diag_with(&f, "variable C")->line, 4);
	assert_int_equal(f.diags.len, 2);
	fx_release(&f);

	/* Several problems are all reported. */
	hf_kvlist_set(&f.vars, "A", "1");
	render(&f, "{{X}}\n{{/Q}}\n{{#A}}\n{{Y}}\n");
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(f.diags.len, 4);
	assert_int_equal(diag_with(&f, "variable X")->line, 1);
	assert_int_equal(diag_with(&f, "closes no open")->line, 2);
	assert_int_equal(diag_with(&f, "variable Y")->line, 4);
	assert_int_equal(diag_with(&f, "never closed")->line, 3);
	fx_release(&f);

	/* Names with control characters are shown escaped. */
	render(&f, "{{A\x01Z}}");
	assert_int_equal(f.rc, HF_ESPEC);
	diag_with(&f, "\"A\\x01Z\" is not a valid tag name");
	fx_release(&f);
}

static void test_unclosed_at_end(void **state)
{
	struct fx f = {0};

	hf_kvlist_set(&f.vars, "A", "1");
	/* An unclosed "{{" stops the scan; open sections are not piled on. */
	expect_error(&f, "{{#A}}\nx {{A", 2, 3, "never closed");
	fx_release(&f);
	expect_error(&f, "{{{A}}", 1, 1, "\"{{{\" is never closed");
	fx_release(&f);
	expect_error(&f, "{{{", 1, 1, "never closed");
	fx_release(&f);
	expect_error(&f, "x{{A}", 1, 2, "never closed");
	fx_release(&f);
}

static void test_deep_nesting(void **state)
{
	struct fx f = {0};
	struct hf_buf t = HF_BUF_INIT;

	hf_kvlist_set(&f.vars, "A", "1");
	for (int i = 0; i < 64; i++)
		hf_buf_adds(&t, "{{#A}}");
	hf_buf_adds(&t, "deep");
	for (int i = 0; i < 64; i++)
		hf_buf_adds(&t, "{{/A}}");
	expect(&f, hf_buf_str(&t), "deep");
	fx_release(&f);

	hf_buf_reset(&t);
	for (int i = 0; i < 100000; i++)
		hf_buf_adds(&t, "{{#A}}");
	render(&f, hf_buf_str(&t));
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(f.diags.len, 1);
	assert_int_equal(f.diags.items[0].col, 64 * 6 + 1);
	diag_with(&f, "nested deeper than 64");
	fx_release(&f);
	hf_buf_release(&t);
}

static void test_many_errors_capped(void **state)
{
	struct fx f = {0};
	struct hf_buf t = HF_BUF_INIT;

	for (int i = 0; i < 1000; i++)
		hf_buf_addf(&t, "{{V%d}}\n", i);
	render(&f, hf_buf_str(&t));
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(f.diags.len, 101);
	assert_int_equal(diag_with(&f, "variable V99 ")->line, 100);
	diag_with(&f, "too many template problems");
	fx_release(&f);
	hf_buf_release(&t);
}

static void test_nul_bytes(void **state)
{
	struct fx f = {0};
	static const char t[] = "ok\nab\0{{A}}\n";

	hf_kvlist_set(&f.vars, "A", "1");
	render_n(&f, t, sizeof(t) - 1, false);
	assert_int_equal(f.rc, HF_ESPEC);
	assert_null(f.out);
	assert_int_equal(f.diags.len, 1);
	assert_int_equal(f.diags.items[0].line, 2);
	assert_int_equal(f.diags.items[0].col, 3);
	diag_with(&f, "NUL byte");
	fx_release(&f);

	/* len is authoritative: bytes past it are never read. */
	hf_kvlist_set(&f.vars, "A", "1");
	render_n(&f, "{{A}}{{B}}", 5, false);
	assert_int_equal(f.rc, 0);
	assert_string_equal(f.out, "1");
	render_n(&f, "{{A}}", 4, false);
	assert_int_equal(f.rc, HF_ESPEC);
	fx_release(&f);

	/* NULL vars is an empty list. */
	assert_int_equal(hf_mustache_render("x {{#A}}y{{/A}}", 15, NULL, false,
					    NULL, &f.out, NULL, &f.diags),
			 0);
	assert_string_equal(f.out, "x ");
	fx_release(&f);
}

static void test_linemap(void **state)
{
	struct fx f = {0};
	struct hf_linemap empty = {0};

	hf_kvlist_set(&f.vars, "ON", "true");
	hf_kvlist_set(&f.vars, "OFF", "false");
	hf_kvlist_set(&f.vars, "MULTI", "m1\nm2\n");
	expect(&f,
	       "l1\n"		/* out 1 */
	       "{{#OFF}}\n"
	       "l3\n"
	       "{{/OFF}}\n"
	       "{{#ON}}\n"
	       "l6\n"		/* out 2 */
	       "{{/ON}}\n"
	       "{{! note }}\n"
	       "l9 {{MULTI}}"	/* out 3, 4 */
	       "l9b\n"		/* out 5 */
	       "l10",		/* out 6 */
	       "l1\nl6\nl9 m1\nm2\nl9b\nl10");
	assert_int_equal(f.map.len, 6);
	assert_int_equal(f.map.items[0], 1);
	assert_int_equal(f.map.items[1], 6);
	assert_int_equal(f.map.items[2], 9);
	assert_int_equal(f.map.items[3], 9);
	assert_int_equal(f.map.items[4], 9);
	assert_int_equal(f.map.items[5], 10);
	assert_int_equal(hf_linemap_lookup(&f.map, 1), 1);
	assert_int_equal(hf_linemap_lookup(&f.map, 2), 6);
	assert_int_equal(hf_linemap_lookup(&f.map, 6), 10);
	/* Past the map (the parser's end of input): the last mapped line. */
	assert_int_equal(hf_linemap_lookup(&f.map, 7), 10);
	/* Out of range below: the line is its own. */
	assert_int_equal(hf_linemap_lookup(&f.map, 0), 0);
	assert_int_equal(hf_linemap_lookup(&f.map, -3), -3);
	assert_int_equal(hf_linemap_lookup(&empty, 4), 4);

	/* A trailing newline ends the last line; a rerender replaces the map. */
	expect(&f, "a\n\nb\n", "a\n\nb\n");
	assert_int_equal(f.map.len, 3);
	assert_int_equal(f.map.items[1], 2);
	assert_int_equal(f.map.items[2], 3);

	/* A line made only by a value maps to the tag's line. */
	expect(&f, "\n\n{{MULTI}}x", "\n\nm1\nm2\nx");
	assert_int_equal(f.map.len, 5);
	assert_int_equal(f.map.items[2], 3);
	assert_int_equal(f.map.items[3], 3);
	assert_int_equal(f.map.items[4], 3);
	fx_release(&f);
}

/* Reads a file of the shared SDK corpus; the caller frees it. */
static char *read_shared(const char *rel, size_t *len)
{
	const char *root = getenv("HF_TEST_ROOT");
	char *path, *data = NULL;
	int rc;

	path = hf_xasprintf("%s/../shared/sdk-specs/%s", root ? root : ".",
			    rel);
	rc = hf_read_file(path, 1 << 20, &data, len);
	if (rc)
		fail_msg("cannot read %s: %s", path, hf_err_msg(rc));
	free(path);
	return data;
}

static void test_sdk_render_inverted(void **state)
{
	struct fx f = {0};
	size_t len;
	char *t = read_shared("scheduler-tests/test-render-inverted.yml", &len);
	const char *head = "name: test-render\npods:\n  hello:\n    count: 1\n"
			   "    tasks:\n      server:\n        goal: RUNNING\n";
	const char *tail = "        cpus: 1.0\n        memory: 256\n";
	char *want;

	hf_kvlist_set(&f.vars, "ENABLED", "true");
	render_n(&f, t, len, false);
	assert_int_equal(f.rc, 0);
	want = hf_xasprintf("%s        cmd: ./enabled true\n%s", head, tail);
	assert_string_equal(f.out, want);
	free(want);
	/* "cmd" is output line 8, written on template line 9. */
	assert_int_equal(hf_linemap_lookup(&f.map, 8), 9);
	assert_int_equal(hf_linemap_lookup(&f.map, 9), 14);
	assert_int_equal(hf_linemap_lookup(&f.map, 10), 15);
	assert_int_equal(f.map.len, 10);

	hf_kvlist_set(&f.vars, "ENABLED", "False");
	render_n(&f, t, len, false);
	assert_int_equal(f.rc, 0);
	want = hf_xasprintf("%s        cmd: ./disabled False\n%s", head, tail);
	assert_string_equal(f.out, want);
	free(want);
	assert_int_equal(hf_linemap_lookup(&f.map, 8), 12);
	assert_int_equal(hf_linemap_lookup(&f.map, 9), 14);

	/* Unset: the inverted section renders and needs the value. */
	hf_kvlist_release(&f.vars);
	render_n(&f, t, len, false);
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(f.diags.len, 1);
	assert_int_equal(f.diags.items[0].line, 12);
	diag_with(&f, "variable ENABLED is not set");
	hf_diags_release(&f.diags);
	render_n(&f, t, len, true);
	assert_int_equal(f.rc, 0);
	want = hf_xasprintf("%s        cmd: ./disabled \n%s", head, tail);
	assert_string_equal(f.out, want);
	free(want);
	free(t);
	fx_release(&f);
}

static void load_helloworld_options(struct hf_kvlist *vars)
{
	const char *root = getenv("HF_TEST_ROOT");
	struct hf_diags d = {0};
	char *path = hf_xasprintf("%s/../shared/sdk-specs/helloworld-options.json",
				  root ? root : ".");

	assert_int_equal(hf_options_load_file(vars, path, &d), 0);
	assert_int_equal(d.len, 0);
	free(path);
}

static void test_sdk_enable_disable(void **state)
{
	struct fx f = {0};
	size_t len;
	char *t = read_shared("helloworld/enable-disable.yml", &len);

	load_helloworld_options(&f.vars);
	render_n(&f, t, len, false);
	if (f.rc)
		hf_diags_print(stderr, &f.diags);
	assert_int_equal(f.rc, 0);
	assert_non_null(strstr(f.out, "name: hello-world\n"));
	assert_non_null(strstr(f.out, "  principal: hello-world-principal\n"));
	assert_non_null(strstr(f.out, "    placement: '[[\"hostname\", \"UNIQUE\"]]'\n"));
	assert_non_null(strstr(f.out, "        cpus: 0.1\n"));
	assert_non_null(strstr(f.out, "        steps:\n"
				      "          - default: [[server-a], [server-b]]\n"));
	assert_null(strstr(f.out, "[[server-b]]"));
	assert_null(strstr(f.out, "{{"));
	/* The file's 44 lines lose four section lines and one section body. */
	assert_int_equal(f.map.len, 39);
	assert_int_equal(hf_linemap_lookup(&f.map, 38), 38);
	assert_int_equal(hf_linemap_lookup(&f.map, 39), 40);

	hf_kvlist_set(&f.vars, "TEST_BOOLEAN", "false");
	render_n(&f, t, len, false);
	assert_int_equal(f.rc, 0);
	assert_non_null(strstr(f.out, "        steps:\n"
				      "          - default: [[server-b]]\n"));
	assert_int_equal(f.map.len, 39);
	assert_int_equal(hf_linemap_lookup(&f.map, 39), 43);

	/* Without the options, every variable is named once. */
	hf_kvlist_release(&f.vars);
	render_n(&f, t, len, false);
	assert_int_equal(f.rc, HF_ESPEC);
	assert_int_equal(diag_with(&f, "FRAMEWORK_NAME")->line, 1);
	assert_int_equal(diag_with(&f, "HELLO_PLACEMENT")->line, 8);
	assert_int_equal(diag_with(&f, "SLEEP_DURATION")->line, 20);
	assert_int_equal(diag_with(&f, "HELLO_DISK")->line, 18);
	assert_int_equal(f.diags.len, 9);
	free(t);
	fx_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_text),
		cmocka_unit_test(test_variables),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_nested_sections),
		cmocka_unit_test(test_standalone_lines),
		cmocka_unit_test(test_missing_variables),
		cmocka_unit_test(test_allow_missing),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_unclosed_at_end),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_errors_capped),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_linemap),
		cmocka_unit_test(test_sdk_render_inverted),
		cmocka_unit_test(test_sdk_enable_disable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
