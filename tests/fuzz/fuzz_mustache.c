/*
 * fuzz_mustache.c - libFuzzer target for the mustache renderer.
 *
 * The first line of the input is a vars list "K=V;K2=V2" (values may hold
 * anything but ';' and newline); the rest is the template. Every input is
 * rendered with and without allow_missing, and the result is checked for
 * the contract: success gives text and a line map no longer than the
 * output's lines, failure gives HF_ESPEC, diagnostics and no output.
 * hf_mustache_render_missing must agree with allow_missing (same outcome,
 * same text), list each unset name once, none of them set, and list
 * nothing exactly when the strict render has no unset variable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

static void parse_vars(const char *s, size_t n, struct hf_kvlist *vars)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, eq;
		char *k, *v;

		while (j < n && s[j] != ';')
			j++;
		for (eq = i; eq < j && s[eq] != '='; eq++)
			;
		if (eq < j && eq > i) {
			k = hf_xstrndup(s + i, eq - i);
			v = hf_xstrndup(s + eq + 1, j - eq - 1);
			/* Keys and values with NUL cannot be C strings. */
			if (strlen(k) == eq - i && strlen(v) == j - eq - 1)
				hf_kvlist_set(vars, k, v);
			free(k);
			free(v);
		}
		i = j + 1;
	}
}

static void check(const char *tmpl, size_t len, const struct hf_kvlist *vars,
		  bool allow_missing)
{
	struct hf_diags diags = {0};
	struct hf_linemap map = {0};
	char *out = (char *)1;
	int rc;

	rc = hf_mustache_render(tmpl, len, vars, allow_missing, "fuzz.yml",
				&out, &map, &diags);
	if (rc == 0) {
		size_t lines = 0, n = strlen(out);

		for (size_t i = 0; i < n; i++)
			if (out[i] == '\n' && i + 1 < n)
				lines++;
		if (n)
			lines++;
		if (map.len != lines || diags.errors != 0)
			abort();
		for (size_t i = 0; i < map.len; i++)
			if (map.items[i] < 1 || (size_t)map.items[i] > len + 1)
				abort();
		/* Rendering never makes text without tags from tags alone. */
		if (!memmem(tmpl, len, "{{", 2) && (n != len ||
						    memcmp(out, tmpl, n)))
			abort();
	} else {
		if (rc != HF_ESPEC || out || map.len || map.items ||
		    diags.errors == 0)
			abort();
		if (allow_missing)
			for (size_t i = 0; i < diags.len; i++)
				if (hf_str_has_prefix(diags.items[i].msg,
						      "variable "))
					abort();
	}
	free(out);
	hf_linemap_release(&map);
	hf_diags_release(&diags);
}

static void check_missing(const char *tmpl, size_t len,
			  const struct hf_kvlist *vars)
{
	struct hf_diags d1 = {0}, d2 = {0}, d3 = {0};
	struct hf_mustache_uses missing = {0};
	char *lenient = NULL, *listed = NULL, *strict = NULL;
	int rc1, rc2, rc3;
	bool strict_missing = false;

	rc1 = hf_mustache_render(tmpl, len, vars, true, "f", &lenient, NULL,
				 &d1);
	rc2 = hf_mustache_render_missing(tmpl, len, vars, "f", &listed, NULL,
					 &missing, &d2);
	rc3 = hf_mustache_render(tmpl, len, vars, false, "f", &strict, NULL,
				 &d3);
	if (rc1 != rc2 || d1.errors != d2.errors)
		abort();
	if (rc1 == 0 && strcmp(lenient, listed) != 0)
		abort();
	for (size_t i = 0; i < missing.len; i++) {
		if (hf_kvlist_get(vars, missing.items[i].name) ||
		    missing.items[i].line < 1 || missing.items[i].col < 1)
			abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(missing.items[i].name, missing.items[j].name))
				abort();
	}
	for (size_t i = 0; i < d3.len; i++)
		if (hf_str_has_prefix(d3.items[i].msg, "variable "))
			strict_missing = true;
	if (rc2 == 0 && (missing.len > 0) != strict_missing)
		abort();
	/* Nothing missing: the strict render agrees. */
	if (rc2 == 0 && missing.len == 0 && (rc3 != 0 || strcmp(strict, listed)))
		abort();
	free(lenient);
	free(listed);
	free(strict);
	hf_mustache_uses_release(&missing);
	hf_diags_release(&d1);
	hf_diags_release(&d2);
	hf_diags_release(&d3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	size_t head = nl ? (size_t)(nl - s) : 0;
	size_t body = nl ? head + 1 : 0;
	struct hf_kvlist vars = {0};

	parse_vars(s, head, &vars);
	check(s + body, size - body, &vars, false);
	check(s + body, size - body, &vars, true);
	check_missing(s + body, size - body, &vars);
	hf_kvlist_release(&vars);
	return 0;
}
