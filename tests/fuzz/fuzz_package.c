/*
 * fuzz_package.c - libFuzzer target for DC/OS SDK packages: config.json
 * schemas (defaults, merging, validation), the options file, resource.json
 * and the Marathon template, and the JSON position index behind their
 * messages (src/spec/package.c).
 *
 * Input: up to five parts separated by lines "%%": config.json, the
 * Marathon template, an options file, resource.json, package.json. Missing
 * parts are absent files. Each input is rendered with and without build
 * values, and these contracts are checked (abort() on a violation):
 *
 *   - success returns 0 with a spec name that is a plain file name, and
 *     adds no error; failure returns HF_ESPEC, adds at least one error
 *     and leaves the output empty;
 *   - every diagnostic has a message, a path and no negative position;
 *   - a package rendered twice gives the same variables.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

#define SEP "\n%%\n"

static void check_diags(const struct hf_diags *d)
{
	size_t errors = 0;

	for (size_t i = 0; i < d->len; i++) {
		const struct hf_diag *g = &d->items[i];

		if (!g->msg || !*g->msg || !g->path || g->line < 0 || g->col < 0)
			abort();
		if (g->level == HF_DIAG_ERROR)
			errors++;
	}
	if (errors != d->errors)
		abort();
}

static int render(const struct hf_package_input *in, struct hf_package *out)
{
	struct hf_diags d = {0};
	int rc = hf_package_render(in, out, &d);

	check_diags(&d);
	if (rc == 0) {
		if (d.errors || !out->spec_name || !*out->spec_name ||
		    strchr(out->spec_name, '/') || out->spec_name[0] == '.')
			abort();
		for (size_t i = 0; i < out->vars.len; i++)
			if (!out->vars.items[i].key || !out->vars.items[i].value)
				abort();
	} else {
		if (rc != HF_ESPEC || d.errors == 0 || out->spec_name ||
		    out->vars.len)
			abort();
	}
	hf_diags_release(&d);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hf_package_file parts[5] = {
	    {"config.json", NULL, 0},	 {"marathon.json.mustache", NULL, 0},
	    {"options.json", NULL, 0}, {"resource.json", NULL, 0},
	    {"package.json", NULL, 0},
	};
	char *copy = hf_xmalloc(size + 1);
	const char *p = copy, *end = copy + size;
	struct hf_kvlist build = {0};
	struct hf_package a, b;
	struct hf_package_input in;
	int rc;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (size_t i = 0; i < 5 && p <= end; i++) {
		const char *s = memmem(p, (size_t)(end - p), SEP, strlen(SEP));

		parts[i].text = p;
		parts[i].len = s ? (size_t)(s - p) : (size_t)(end - p);
		p = s ? s + strlen(SEP) : end + 1;
	}
	in = (struct hf_package_input){
	    .config = parts[0],
	    .marathon = parts[1],
	    .options = parts[2].text ? &parts[2] : NULL,
	    .noptions = parts[2].text ? 1 : 0,
	    .resource = parts[3],
	    .package = parts[4],
	};
	rc = render(&in, &a);
	if (render(&in, &b) != rc)
		abort();
	if (rc == 0) {
		if (a.vars.len != b.vars.len || strcmp(a.spec_name, b.spec_name))
			abort();
		for (size_t i = 0; i < a.vars.len; i++)
			if (strcmp(a.vars.items[i].key, b.vars.items[i].key) ||
			    strcmp(a.vars.items[i].value, b.vars.items[i].value))
				abort();
	}
	hf_package_release(&a);
	hf_package_release(&b);

	hf_kvlist_set(&build, "artifact-dir", "file:///pkg/artifacts");
	hf_kvlist_set(&build, "package-version", "1.0");
	in.build = &build;
	rc = render(&in, &a);
	hf_package_release(&a);
	(void)rc;

	hf_kvlist_release(&build);
	free(copy);
	return 0;
}
