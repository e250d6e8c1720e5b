/*
 * options.c - the values a spec is rendered with: "-o KEY=VALUE" arguments
 * and options files (a flat JSON object, as the SDK's options.json, or a
 * flat YAML mapping).
 *
 * Every value becomes the string the template will see. A file is loaded
 * into a list of its own first and merged only when all of it is good, so
 * a failed load leaves the caller's list as it was.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/err.h"
#include "spec/spec.h"

/* Options files are a few kilobytes; anything this big is a mistake. */
#define HF_OPTIONS_MAX_FILE (16u << 20)
/* Arguments and keys longer than this are shortened in messages. */
#define HF_OPTIONS_SHOW_MAX 80

/* Appends s for a message, escaping bytes that would not print. */
static void add_shown(struct hf_buf *b, const char *s, size_t n)
{
	size_t shown = n > HF_OPTIONS_SHOW_MAX ? HF_OPTIONS_SHOW_MAX : n;

	for (size_t i = 0; i < shown; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			hf_buf_addf(b, "\\x%02x", c);
		else
			hf_buf_addc(b, (char)c);
	}
	if (shown < n)
		hf_buf_adds(b, "...");
}

int hf_options_add_arg(struct hf_kvlist *vars, const char *arg,
		       struct hf_diags *diags)
{
	struct hf_buf shown = HF_BUF_INIT;
	const char *eq = arg ? strchr(arg, '=') : NULL;
	char *key;
	int rc = HF_EINVAL;

	if (!arg) {
		hf_diags_add(diags, HF_DIAG_ERROR, NULL, 0, 0, "",
			     "missing option: give options as -o KEY=VALUE");
		goto out;
	}
	add_shown(&shown, arg, strlen(arg));
	if (!eq) {
		hf_diags_add(diags, HF_DIAG_ERROR, NULL, 0, 0, "",
			     "option \"%s\" has no '=': give options as -o KEY=VALUE",
			     hf_buf_str(&shown));
		goto out;
	}
	if (eq == arg) {
		hf_diags_add(diags, HF_DIAG_ERROR, NULL, 0, 0, "",
			     "option \"%s\" has an empty name: give options as -o KEY=VALUE",
			     hf_buf_str(&shown));
		goto out;
	}
	key = hf_xstrndup(arg, (size_t)(eq - arg));
	hf_kvlist_set(vars, key, eq + 1);
	free(key);
	rc = 0;
out:
	hf_buf_release(&shown);
	return rc;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

/*
 * The shortest text that reads back as the same double, so 0.1 stays
 * "0.1"; whole numbers keep a ".0" as they were written as reals.
 */
static char *real_text(double v)
{
	char buf[64];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (!strpbrk(buf, ".eEn"))
		return hf_xasprintf("%s.0", buf);
	return hf_xstrdup(buf);
}

/*
 * Finds where a top-level key of a (valid) JSON object is written, for
 * messages: jansson keeps no positions. Keys written with escapes are not
 * matched (line 0 then). The last occurrence wins, as in jansson.
 */
static void json_key_pos(const char *s, size_t len, const char *key,
			 int *line, int *col)
{
	size_t klen = strlen(key), lstart = 0;
	int depth = 0, ln = 1;

	*line = *col = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '\n') {
			ln++;
			lstart = i + 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '"') {
			size_t b = i + 1, e = b, j;

			while (e < len && s[e] != '"')
				e += s[e] == '\\' ? 2 : 1;
			if (e >= len)
				return;
			for (j = e + 1; j < len && isspace((unsigned char)s[j]);
			     j++)
				;
			if (depth == 1 && j < len && s[j] == ':' &&
			    e - b == klen && memcmp(s + b, key, klen) == 0) {
				*line = ln;
				*col = (int)(i - lstart + 1);
			}
			i = e;
		}
	}
}

static int load_json(struct hf_kvlist *vars, const char *data, size_t len,
		     const char *path, struct hf_diags *diags)
{
	json_error_t jerr;
	json_t *root, *v;
	const char *key;
	int rc = HF_ESPEC, line, col;

	root = json_loadb(data, len, 0, &jerr);
	if (!root) {
		hf_diags_add(diags, HF_DIAG_ERROR, path,
			     jerr.line > 0 ? jerr.line : 0,
			     jerr.line > 0 && jerr.column > 0 ? jerr.column : 0,
			     "", "invalid JSON: %s", jerr.text);
		return HF_ESPEC;
	}
	if (!json_is_object(root)) {
		hf_diags_add(diags, HF_DIAG_ERROR, path, 1, 1, "",
			     "an options file holds one JSON object of names and values");
		goto out;
	}
	rc = 0;
	json_object_foreach(root, key, v) {
		struct hf_buf shown = HF_BUF_INIT;
		char *text = NULL;

		add_shown(&shown, key, strlen(key));
		switch (json_typeof(v)) {
		case JSON_STRING:
			text = hf_xstrdup(json_string_value(v));
			break;
		case JSON_INTEGER:
			text = hf_xasprintf("%" JSON_INTEGER_FORMAT,
					    json_integer_value(v));
			break;
		case JSON_REAL:
			text = real_text(json_real_value(v));
			break;
		case JSON_TRUE:
			text = hf_xstrdup("true");
			break;
		case JSON_FALSE:
			text = hf_xstrdup("false");
			break;
		case JSON_NULL:
			text = hf_xstrdup("");
			break;
		case JSON_OBJECT:
		case JSON_ARRAY:
			json_key_pos(data, len, key, &line, &col);
			hf_diags_add(diags, HF_DIAG_ERROR, path, line, col, "",
				     "option \"%s\" is %s; option values must be strings, numbers or booleans",
				     hf_buf_str(&shown),
				     json_is_object(v) ? "an object" : "a list");
			rc = HF_ESPEC;
			break;
		}
		if (!*key) {
			json_key_pos(data, len, key, &line, &col);
			hf_diags_add(diags, HF_DIAG_ERROR, path, line, col, "",
				     "an option has an empty name");
			rc = HF_ESPEC;
		}
		if (text && rc == 0)
			hf_kvlist_set(vars, key, text);
		free(text);
		hf_buf_release(&shown);
	}
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------------ */
/* YAML                                                                 */

static void yaml_problem(struct hf_diags *diags, const char *path,
			 const yaml_node_t *n, const char *fmt, ...)
	HF_PRINTF(4, 5);
static void yaml_problem(struct hf_diags *diags, const char *path,
			 const yaml_node_t *n, const char *fmt, ...)
{
	struct hf_buf b = HF_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	hf_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	hf_diags_add(diags, HF_DIAG_ERROR, path,
		     (int)n->start_mark.line + 1, (int)n->start_mark.column + 1,
		     "", "%s", hf_buf_str(&b));
	hf_buf_release(&b);
}

/*
 * The string a YAML scalar stands for. Plain null and booleans are
 * normalised (YAML 1.2 core schema); everything else, numbers included,
 * is the text as written. Quoted scalars are always strings.
 */
static char *yaml_scalar_text(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;
	size_t len = n->data.scalar.length;

	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
		    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
			return hf_xstrdup("");
		if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
		    strcmp(s, "TRUE") == 0)
			return hf_xstrdup("true");
		if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
		    strcmp(s, "FALSE") == 0)
			return hf_xstrdup("false");
	}
	return hf_xstrndup(s, len);
}

static const char *node_kind(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE ? "a mapping" : "a list";
}

static int yaml_pairs(struct hf_kvlist *vars, yaml_document_t *doc,
		      yaml_node_t *root, const char *path,
		      struct hf_diags *diags)
{
	int rc = 0;

	for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
	     p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		struct hf_buf shown = HF_BUF_INIT;
		char *text;

		if (!k || !v)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			yaml_problem(diags, path, k,
				     "option names must be plain text, not %s",
				     node_kind(k));
			rc = HF_ESPEC;
			continue;
		}
		add_shown(&shown, (const char *)k->data.scalar.value,
			  k->data.scalar.length);
		if (k->data.scalar.length == 0) {
			yaml_problem(diags, path, k,
				     "an option has an empty name");
			rc = HF_ESPEC;
		} else if (memchr(k->data.scalar.value, '\0',
				  k->data.scalar.length)) {
			yaml_problem(diags, path, k,
				     "option name \"%s\" contains a NUL character",
				     hf_buf_str(&shown));
			rc = HF_ESPEC;
		} else if (v->type != YAML_SCALAR_NODE) {
			yaml_problem(diags, path, v,
				     "option \"%s\" is %s; option values must be strings, numbers or booleans",
				     hf_buf_str(&shown), node_kind(v));
			rc = HF_ESPEC;
		} else if (memchr(v->data.scalar.value, '\0',
				  v->data.scalar.length)) {
			yaml_problem(diags, path, v,
				     "option \"%s\" contains a NUL character",
				     hf_buf_str(&shown));
			rc = HF_ESPEC;
		} else if (rc == 0) {
			text = yaml_scalar_text(v);
			hf_kvlist_set(vars, (const char *)k->data.scalar.value,
				      text);
			free(text);
		}
		hf_buf_release(&shown);
	}
	return rc;
}

static void yaml_syntax_error(const yaml_parser_t *parser, const char *path,
			      struct hf_diags *diags)
{
	const char *problem = parser->problem ? parser->problem : "syntax error";

	if (parser->context)
		hf_diags_add(diags, HF_DIAG_ERROR, path,
			     (int)parser->problem_mark.line + 1,
			     (int)parser->problem_mark.column + 1, "",
			     "invalid YAML: %s (%s at line %d)", problem,
			     parser->context,
			     (int)parser->context_mark.line + 1);
	else
		hf_diags_add(diags, HF_DIAG_ERROR, path,
			     (int)parser->problem_mark.line + 1,
			     (int)parser->problem_mark.column + 1, "",
			     "invalid YAML: %s", problem);
}

static int load_yaml(struct hf_kvlist *vars, const char *data, size_t len,
		     const char *path, struct hf_diags *diags)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	bool have_doc = false, have_extra = false;
	yaml_node_t *root;
	int rc = HF_ESPEC;

	if (!yaml_parser_initialize(&parser))
		return HF_ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_syntax_error(&parser, path, diags);
		goto out;
	}
	have_doc = true;
	root = yaml_document_get_root_node(&doc);
	/* An empty file, or one with only comments, sets nothing. */
	if (!root || (root->type == YAML_SCALAR_NODE &&
		      root->data.scalar.length == 0 &&
		      root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
		rc = 0;
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		yaml_problem(diags, path, root,
			     "an options file holds one mapping of names to values");
		goto out;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_syntax_error(&parser, path, diags);
		goto out;
	}
	have_extra = true;
	if (yaml_document_get_root_node(&extra)) {
		hf_diags_add(diags, HF_DIAG_ERROR, path,
			     (int)extra.start_mark.line + 1,
			     (int)extra.start_mark.column + 1, "",
			     "an options file holds one YAML document, not several");
		goto out;
	}
	rc = yaml_pairs(vars, &doc, root, path, diags);
out:
	if (have_extra)
		yaml_document_delete(&extra);
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int hf_options_load_file(struct hf_kvlist *vars, const char *path,
			 struct hf_diags *diags)
{
	struct hf_kvlist loaded = {0};
	char *data = NULL;
	size_t len = 0, i = 0;
	int rc;

	rc = hf_read_file(path, HF_OPTIONS_MAX_FILE, &data, &len);
	if (rc == HF_ETOOBIG)
		hf_diags_add(diags, HF_DIAG_ERROR, path, 0, 0, "",
			     "the options file is larger than %u MiB",
			     HF_OPTIONS_MAX_FILE >> 20);
	if (rc)
		goto out;
	while (i < len && isspace((unsigned char)data[i]))
		i++;
	if (i < len && data[i] == '{')
		rc = load_json(&loaded, data, len, path, diags);
	else
		rc = load_yaml(&loaded, data, len, path, diags);
	if (rc == 0)
		hf_kvlist_copy(vars, &loaded);
out:
	hf_kvlist_release(&loaded);
	free(data);
	return rc;
}
