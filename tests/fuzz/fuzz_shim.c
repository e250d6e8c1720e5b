/*
 * fuzz_shim.c - libFuzzer target for the shim's wire formats: launch.json
 * (the agent's order to a shim, isolation keys included) and status.json.
 *
 * Every input is parsed as both. A launch that parses must format to text
 * that parses again and formats the same (a round trip loses nothing); a
 * refused one must come with a message and leave only defaults. A status
 * that parses must survive format and parse alike.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "shim/shim.h"

static void check_launch(const char *s, size_t n)
{
	struct hf_shim_launch l, again;
	char *err = NULL, *text, *text2;
	int rc;

	hf_shim_launch_init(&l);
	hf_shim_launch_init(&again);
	rc = hf_shim_launch_parse(s, n, &l, &err);
	if (rc) {
		if (!err || (rc != HF_EINVAL && rc != HF_EPARSE) || l.task_id ||
		    l.mounts.len || l.hide.len || l.caps)
			abort();
		free(err);
		goto out;
	}
	if (err || !l.task_id || !l.cmd || !l.sandbox)
		abort();
	text = hf_shim_launch_format(&l);
	if (hf_shim_launch_parse(text, strlen(text), &again, &err))
		abort();
	text2 = hf_shim_launch_format(&again);
	if (strcmp(text, text2) != 0 || again.caps != l.caps ||
	    again.isolate != l.isolate || again.mounts.len != l.mounts.len)
		abort();
	free(text);
	free(text2);
out:
	hf_shim_launch_release(&l);
	hf_shim_launch_release(&again);
}

static void check_status(const char *s, size_t n)
{
	struct hf_shim_status st, again;
	char *text, *text2;

	hf_shim_status_init(&st);
	hf_shim_status_init(&again);
	if (hf_shim_status_parse(s, n, &st) == 0) {
		text = hf_shim_status_format(&st);
		if (hf_shim_status_parse(text, strlen(text), &again))
			abort();
		text2 = hf_shim_status_format(&again);
		if (strcmp(text, text2) != 0 || again.mnt_ns != st.mnt_ns)
			abort();
		free(text);
		free(text2);
	}
	hf_shim_status_release(&st);
	hf_shim_status_release(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_launch((const char *)data, size);
	check_status((const char *)data, size);
	return 0;
}
