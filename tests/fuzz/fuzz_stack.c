/*
 * fuzz_stack.c - libFuzzer target for stack files (spec/stack.c).
 *
 * Every input is parsed as a stack file and the contract is checked:
 * HF_ESPEC exactly when an error was reported, every diagnostic at a
 * position inside the input with a message free of control bytes; on
 * success, every service comes after those it depends on in the order,
 * each dependency names a service of the stack, and rendering each
 * service's options with a fixed value for every reference succeeds and
 * leaves no "{{services." behind. A second parse gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/stack.h"

static char *fixed(void *arg, const struct hf_stack_ref *ref)
{
	(void)arg;
	return hf_xstrdup(ref->endpoint ? "10.0.0.1:1" : "name");
}

static const struct hf_strlist *no_ports(void *arg, const char *key)
{
	(void)key;
	return arg;
}

static void check_diags(const struct hf_diags *d, const char *text)
{
	int lines = 1;

	for (const char *p = text; *p; p++)
		lines += *p == '\n' || *p == '\r'; /* YAML breaks at either */
	for (size_t i = 0; i < d->len; i++) {
		if (!d->items[i].msg || !*d->items[i].msg)
			abort();
		if (d->items[i].line > lines + 1)
			abort();
		for (const char *m = d->items[i].msg; *m; m++)
			if ((unsigned char)*m < 0x20 && *m != '\n' && *m != '\t')
				abort();
	}
}

static void check_stack(const struct hf_stack *st)
{
	size_t n = st->services.len;
	size_t *at = calloc(n + 1, sizeof(*at));

	for (size_t k = 0; k < n; k++)
		at[st->order[k]] = k + 1;
	for (size_t i = 0; i < n; i++) {
		const struct hf_stack_service *sv = &st->services.items[i];
		struct hf_kvlist out = {0};
		char *missing = NULL;

		if (!at[i] || !sv->spec || !sv->name)
			abort();
		for (size_t d = 0; d < sv->depends_on.len; d++) {
			const struct hf_stack_service *dep =
			    hf_stack_find(st, sv->depends_on.items[d]);

			if (!dep || dep == sv ||
			    at[dep - st->services.items] >= at[i])
				abort();
		}
		if (hf_stack_render_options(sv, fixed, NULL, &out, &missing))
			abort();
		for (size_t k = 0; k < out.len; k++)
			if (strstr(out.items[k].value, "{{services."))
				abort();
		hf_kvlist_release(&out);
		free(missing);
	}
	free(at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = hf_xstrndup((const char *)data, size);
	struct hf_diags d = {0}, d2 = {0};
	struct hf_stack *st = NULL, *st2 = NULL;
	struct hf_strlist none = {0};
	int rc = hf_stack_parse(text, strlen(text), "f.yml", &st, &d);
	int rc2 = hf_stack_parse(text, strlen(text), "f.yml", &st2, &d2);

	if ((rc == 0) != (d.errors == 0) || (rc && rc != HF_ESPEC) ||
	    (rc == 0) != (st != NULL))
		abort();
	if (rc != rc2 || d.len != d2.len)
		abort();
	check_diags(&d, text);
	if (st) {
		check_stack(st);
		/* No port anywhere: every endpoint reference is an error. */
		hf_stack_check_endpoints(st, no_ports, &none, &d);
		check_diags(&d, text);
	}
	hf_stack_free(st);
	hf_stack_free(st2);
	hf_diags_release(&d);
	hf_diags_release(&d2);
	free(text);
	return 0;
}
