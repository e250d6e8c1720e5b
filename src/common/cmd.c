/*
 * cmd.c - lookups over a command table and getopt_long's view of a flag
 * table (see cmd.h).
 */
#include "common/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

const struct hf_cmd *hf_cmd_find(hf_cmd_at_fn at, const char *noun,
				 const char *verb)
{
	const struct hf_cmd *c;

	for (size_t i = 0; (c = at(i)) != NULL; i++) {
		if (strcmp(c->noun, noun) != 0)
			continue;
		if (!c->verb || (verb && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

int hf_cmd_usage(const struct hf_cmd *c)
{
	if (c)
		fprintf(stderr, "usage: holdfast %s%s%s%s%s\n", c->noun,
			c->verb ? " " : "", c->verb ? c->verb : "",
			*c->usage ? " " : "", c->usage);
	if (c && c->flags)
		fprintf(stderr, "Run 'holdfast help %s' for its flags.\n",
			c->noun);
	return HF_EXIT_USAGE;
}

bool hf_cmd_hidden(const struct hf_cmd *c)
{
	return c->noun[0] == '_';
}

void hf_cmd_longopts(hf_cmd_flag_fn flags, struct option *out, size_t cap)
{
	const struct hf_cmd_flag *f;
	size_t n = 0;

	for (size_t i = 0; (f = flags(i)) != NULL && n + 1 < cap; i++) {
		out[n].name = f->name + 2; /* without the "--" */
		out[n].has_arg = f->arg ? required_argument : no_argument;
		out[n].flag = NULL;
		out[n].val = f->key;
		n++;
	}
	memset(&out[n], 0, sizeof(out[n]));
}
