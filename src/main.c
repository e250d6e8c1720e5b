/*
 * main.c - the holdfast binary: one table of commands (git.c's shape). The
 * programs the binary is (server, agent, shim, dev) and the CLI's nouns
 * (through cli/'s table) each describe their own row next to their handler;
 * this file lists them, dispatches, and prints help. No module includes it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "common/cmd.h"
#include "common/util.h"
#include "common/version.h"
#include "server/server.h"
#include "shim/shim.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_doc(int argc, char **argv);

/* The programs, listed before the CLI's commands. */
static const struct hf_cmd *const programs[] = {
    &hf_server_cmd, &hf_agent_cmd, &hf_dev_cmd, &hf_shim_cmd,
};

/* Listed after the CLI's commands. */
static const struct hf_cmd last[] = {
    {"help", NULL, cmd_help, "[COMMAND...]", "show help for a command", NULL,
     NULL},
    {"version", NULL, cmd_version, "", "print the version", NULL, NULL},
    /* Hidden: what the build and the tests generate from these tables. */
    {"_doc", NULL, cmd_doc,
     "man | bash | api [--json] | flags COMMAND | commands",
     "print generated documentation",
     "Prints the man page (roff), the bash completion script, the HTTP\n"
     "API reference (docs/api.md), a command's flag table (one flag per\n"
     "line) or the list of commands, from the tables the code runs on.",
     NULL},
};

/* The i-th row of the binary's table, hidden ones included. */
static const struct hf_cmd *cmd_at(size_t i)
{
	size_t n = 0;

	if (i < HF_ARRAY_LEN(programs))
		return programs[i];
	i -= HF_ARRAY_LEN(programs);
	while (hf_cli_cmd_at(n))
		n++;
	if (i < n)
		return hf_cli_cmd_at(i);
	i -= n;
	return i < HF_ARRAY_LEN(last) ? &last[i] : NULL;
}

static bool noun_exists(const char *noun)
{
	const struct hf_cmd *c;

	for (size_t i = 0; (c = cmd_at(i)) != NULL; i++)
		if (strcmp(c->noun, noun) == 0)
			return true;
	return false;
}

static void print_overview(FILE *f)
{
	const struct hf_cmd *c;
	const struct hf_cmd_flag *g;

	fprintf(f, "usage: holdfast");
	for (size_t i = 0; (g = hf_cli_global_flag(i)) != NULL; i++)
		if (g->help)
			fprintf(f, " [%s%s%s]", g->name, g->arg ? " " : "",
				g->arg ? g->arg : "");
	fprintf(f, " <command> [arguments]\n\n"
		   "holdfast deploys and operates stateful services from a "
		   "service spec.\n\nCommands:\n");
	for (size_t i = 0; (c = cmd_at(i)) != NULL; i++) {
		char name[64];

		if (hf_cmd_hidden(c))
			continue;
		snprintf(name, sizeof(name), "%s%s%s", c->noun,
			 c->verb ? " " : "", c->verb ? c->verb : "");
		fprintf(f, "  %-22s %s\n", name, c->summary);
	}
	fputc('\n', f);
	hf_cli_flags_print(f, "Global flags (before the command; -s SERVICE "
			      "may also follow it):",
			   hf_cli_global_flag);
	fprintf(f, "\nThe server is $HOLDFAST_ADDR (default "
		   "http://127.0.0.1:7070); $HOLDFAST_TOKEN is its token (a\n"
		   "server on this machine leaves one for the user running it);\n"
		   "$HOLDFAST_CA_FILE is a CA to trust for an https server.\n"
		   "Exit status: 0 ok, 1 failed (invalid spec, plan in ERROR, "
		   "refused), 2 usage, 3 server unreachable or failing,\n"
		   "4 spec valid but not deployable by holdfast (spec validate).\n"
		   "Run 'holdfast help <command>' for a command's "
		   "arguments.\n");
}

static void print_cmd_help(FILE *f, const struct hf_cmd *c)
{
	fprintf(f, "usage: holdfast %s%s%s%s%s\n\n%s\n", c->noun,
		c->verb ? " " : "", c->verb ? c->verb : "",
		*c->usage ? " " : "", c->usage, c->summary);
	if (c->help)
		fprintf(f, "\n%s\n", c->help);
	if (c->flags) {
		fputc('\n', f);
		hf_cli_flags_print(f, "Flags:", c->flags);
	}
}

static void print_noun_verbs(FILE *f, const char *noun)
{
	const struct hf_cmd *c;

	fprintf(f, "'holdfast %s' takes one of:\n", noun);
	for (size_t i = 0; (c = cmd_at(i)) != NULL; i++)
		if (strcmp(c->noun, noun) == 0 && c->verb)
			fprintf(f, "  %-15s %s\n", c->verb, c->summary);
}

static int cmd_help(int argc, char **argv)
{
	const struct hf_cmd *c;

	if (argc < 2) {
		print_overview(stdout);
		return HF_EXIT_OK;
	}
	c = hf_cmd_find(cmd_at, argv[1], argc > 2 ? argv[2] : NULL);
	if (c && (c->verb == NULL || argc > 2)) {
		print_cmd_help(stdout, c);
		return HF_EXIT_OK;
	}
	if (noun_exists(argv[1])) {
		print_noun_verbs(stdout, argv[1]);
		return HF_EXIT_OK;
	}
	fprintf(stderr, "holdfast: no such command '%s'\n", argv[1]);
	return HF_EXIT_USAGE;
}

static int cmd_version(int argc, char **argv)
{
	printf("holdfast %s\n", HF_VERSION);
	return HF_EXIT_OK;
}

static int cmd_doc(int argc, char **argv)
{
	return hf_cli_doc(argc, argv, cmd_at);
}

int main(int argc, char **argv)
{
	const struct hf_cmd *c;
	int skip, shift, rc;

	rc = hf_cli_globals_parse(argc, argv, &shift);
	if (rc != HF_EXIT_OK)
		return rc;
	argc -= shift;
	argv += shift;
	if (argc < 2) {
		print_overview(stderr);
		return HF_EXIT_USAGE;
	}
	if (shift)
		argv[0] = argv[-shift];
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_overview(stdout);
		return HF_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(0, NULL);
	c = hf_cmd_find(cmd_at, argv[1], argc > 2 ? argv[2] : NULL);
	if (!c) {
		if (noun_exists(argv[1])) {
			if (argc > 2)
				fprintf(stderr,
					"holdfast: '%s %s' is not a command\n",
					argv[1], argv[2]);
			print_noun_verbs(stderr, argv[1]);
			return HF_EXIT_USAGE;
		}
		fprintf(stderr,
			"holdfast: no such command '%s' (see 'holdfast --help')\n",
			argv[1]);
		return HF_EXIT_USAGE;
	}
	skip = c->verb ? 2 : 1;
	argc = hf_cli_service_after(c, argc, argv, skip + 1);
	if (argc < 0)
		return HF_EXIT_USAGE;
	for (int i = skip + 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			print_cmd_help(stdout, c);
			return HF_EXIT_OK;
		}
	}
	/* Handlers see their verb as argv[0], like a program of their own. */
	return c->run(argc - skip, argv + skip);
}
