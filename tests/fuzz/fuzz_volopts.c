/*
 * fuzz_volopts.c - libFuzzer target for external volumes' driver-options
 * (spec/volopts.c) and the volume names made from them.
 *
 * Every input is parsed as a driver-options string and the contract is
 * checked: HF_ESPEC exactly when an error was reported; problems in string
 * order, each at an offset inside the string, with a message free of
 * control bytes; on success, values inside their ranges and min_sync at
 * most repl. A success is written back in holdfast's own form and must
 * parse to the same options; a second parse gives the same problems. The
 * input also serves as a volume-name: a name is made unless the SDK would
 * refuse it ("__"), and it never holds '/'.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "spec/spec.h"

static bool same(const struct hf_spec_volopts *a,
		 const struct hf_spec_volopts *b)
{
	return a->size_bytes == b->size_bytes && a->repl == b->repl &&
	       a->min_sync == b->min_sync && a->shared == b->shared &&
	       a->secure == b->secure;
}

static void check_problems(const struct hf_volopts_problems *p, size_t len,
			   int rc)
{
	size_t errors = 0;

	if ((rc == 0) != (p->errors == 0) || (rc != 0 && rc != HF_ESPEC))
		abort();
	for (size_t i = 0; i < p->len; i++) {
		const struct hf_volopts_problem *pr = &p->items[i];

		if (!pr->warning)
			errors++;
		if (pr->offset > len || !pr->msg || !*pr->msg)
			abort();
		if (i && pr->offset < p->items[i - 1].offset)
			abort();
		for (const char *m = pr->msg; *m; m++)
			if ((unsigned char)*m < 0x20 || *m == 0x7f)
				abort();
	}
	if (errors != p->errors)
		abort();
}

static void check_roundtrip(const struct hf_spec_volopts *o)
{
	struct hf_spec_volopts again;
	struct hf_volopts_problems p = {0};
	char *s;

	if (o->size_bytes < HF_VOLOPTS_MIN_SIZE ||
	    o->size_bytes > HF_VOLOPTS_MAX_SIZE || o->size_bytes % (1 << 20) ||
	    o->repl < 1 || o->repl > HF_VOLOPTS_MAX_REPL || o->min_sync < 1 ||
	    o->min_sync > o->repl)
		abort();
	s = hf_xasprintf("size=%lldM;repl=%u;min_sync=%u;shared=%s;secure=%s",
			 (long long)(o->size_bytes >> 20), o->repl, o->min_sync,
			 o->shared ? "true" : "false",
			 o->secure ? "true" : "false");
	if (hf_spec_volopts_parse(s, strlen(s), &again, &p) != 0 || p.len ||
	    !same(o, &again))
		abort();
	hf_volopts_problems_release(&p);
	free(s);
}

static void check_name(const char *s, size_t size, bool shared)
{
	struct hf_spec_external_volume e = {0};
	char *vn = hf_xstrndup(s, size);
	char *name;

	e.volume_name = vn;
	e.opts.shared = shared;
	name = hf_spec_external_volume_name("svc", "pod", 3, &e);
	if (!name != (strstr(vn, "__") != NULL))
		abort();
	if (name && strchr(name, '/'))
		abort();
	if (name && !shared &&
	    (strlen(name) < 2 || strcmp(name + strlen(name) - 2, "-3") != 0))
		abort();
	free(name);
	free(vn);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct hf_spec_volopts o, o2;
	struct hf_volopts_problems p = {0}, p2 = {0};
	int rc, rc2;

	rc = hf_spec_volopts_parse(s, size, &o, &p);
	check_problems(&p, size, rc);
	rc2 = hf_spec_volopts_parse(s, size, &o2, &p2);
	if (rc != rc2 || p.len != p2.len || !same(&o, &o2))
		abort();
	for (size_t i = 0; i < p.len; i++)
		if (p.items[i].offset != p2.items[i].offset ||
		    strcmp(p.items[i].msg, p2.items[i].msg))
			abort();
	if (rc == 0)
		check_roundtrip(&o);
	check_name(s, size, size % 2);
	hf_volopts_problems_release(&p);
	hf_volopts_problems_release(&p2);
	return 0;
}
