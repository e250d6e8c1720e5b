/*
 * fuzz_mustache.c - libFuzzer target for the mustache renderer.
 *
 * The first line of the input is a vars list "K=V;K2=V2" (values may hold
 * anything but ';' and newline); the rest is the template. Every input is
 * rendered with and without allow_missing, and the result is checked for
 * the contract: success gives text and a line map no longer than the
 * output's lines, failure gives HF_ESPEC, diagnostics and no output.
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
	hf_kvlist_release(&vars);
	return 0;
}
