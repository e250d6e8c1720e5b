#include "cli/cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "common/util.h"
#include "common/version.h"
#include "agent/agent.h"
#include "server/server.h"
#include "shim/shim.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct hf_cli_cmd commands[] = {
    {"spec", "validate", hf_cmd_spec_validate,
     "(FILE | --package DIR [FILE]) [-o KEY=VALUE]... [--options FILE]... "
     "[--allow-missing] [--template-dir DIR] [--json]",
     "render and validate a service spec or an SDK package",
     "Renders FILE as a mustache template with the given options, parses it\n"
     "and validates it. Every problem is printed as file:line:col, the path\n"
     "in the spec, and a sentence. --template-dir adds a directory to search\n"
     "for `configs` templates after the spec's own directory.\n"
     "--package DIR (or DIR in place of FILE) takes a DC/OS SDK package: its\n"
     "universe/ files render the user's --options JSON into the spec's\n"
     "variables, and its spec comes from src/main/dist/ (FILE picks another).\n"
     "Exit status: 0 valid and deployable, 1 invalid, 2 usage, 4 valid but\n"
     "using features holdfast does not support yet (a deploy refuses it)."},
    {"spec", "render", hf_cmd_spec_render,
     "(FILE | --package DIR [FILE]) [-o KEY=VALUE]... [--options FILE]... "
     "[--allow-missing] [--template-dir DIR] [--json]",
     "print the normalised spec with defaults and plans",
     "Prints the spec as holdfast understands it: every pod, task and\n"
     "resource set with defaults filled in, and every plan with its phases\n"
     "and steps (generated ones included). --json prints the full model.\n"
     "With --package, also the variables the package rendered."},
    {"spec", "diff", hf_cmd_spec_diff,
     "OLD NEW [-o KEY=VALUE]... [--options FILE]... [--old-option KEY=VALUE]... "
     "[--allow-missing] [--template-dir DIR] [--json]",
     "show what changing OLD into NEW would do",
     "Compares two specs as a configuration update would: which pod\n"
     "instances relaunch, which are added or removed, and what must be\n"
     "refused. -o/--options apply to both; --old-option only to OLD.\n"
     "Exit status: 0 the change is allowed, 1 it would be refused."},
    {"dev", NULL, hf_dev_main, "[FLAG...]",
     "run a server and one agent on this machine",
     "Starts `holdfast server` and `holdfast agent` as two processes on\n"
     "this machine (embedded SQLite store under DIR/server, the agent's\n"
     "sandboxes and volumes under DIR/agent) and restarts either if it\n"
     "dies. Tasks keep running when dev stops."},
    {"server", NULL, hf_server_main, "[FLAG...]",
     "run the scheduler and the HTTP API",
     "Keeps every service at its goal. The store defaults to SQLite in\n"
     "DIR/holdfast.db. Every request needs a token: the tokens file's,\n"
     "or the admin credential the server leaves for the user running it\n"
     "(~/.config/holdfast/credentials/), which that user's CLI and agents\n"
     "on this machine find. Without --tokens it only listens on loopback."},
    {"agent", NULL, hf_agent_main, "--server URL[,URL...] [FLAG...]",
     "run the node agent: sandboxes, volumes, shims, checks",
     "Registers this node with the server and keeps its tasks at the\n"
     "desired set the server hands out. Tasks keep running when the agent\n"
     "stops; a restarted agent reattaches to them. It joins with the\n"
     "token in FILE (or $HOLDFAST_TOKEN; a server on this machine run by\n"
     "the same user needs none) and keeps a credential of its own in DIR."},
    {"store", "backup", hf_cmd_store_backup,
     "FILE [--data DIR | --store URL]",
     "write a consistent copy of the server's store to FILE",
     "Asks the running server (admin token) for a copy of its whole store\n"
     "at one moment and writes it to FILE (mode 0600: it holds every\n"
     "secret): an SQLite store file, whatever the backend. With --data or\n"
     "--store it opens the store itself instead, which needs the server\n"
     "stopped for SQLite. Safe while the server runs and acts, unlike\n"
     "copying holdfast.db, which loses what is still in its -wal file."},
    {"store", "restore", hf_cmd_store_restore,
     "FILE (--data DIR | --store URL) [--yes]",
     "make a stopped server's store hold exactly a backup's content",
     "Checks FILE (a backup, or any holdfast store file no server has\n"
     "open) and that a server can load every record in it, then makes the\n"
     "store of the stopped server (--data DIR: DIR/holdfast.db; --store\n"
     "URL: any store) hold exactly its keys: one transaction with SQLite.\n"
     "Agents keep their tasks: the restored store is the same cluster.\n"
     "Stop every server of the store first. Asks for confirmation on a\n"
     "terminal unless --yes is given."},
    {"shim", NULL, hf_shim_main, "--dir TASKDIR",
     "own one task's process (started by the agent)",
     "Runs the task described by TASKDIR/launch.json, owns its pipes and\n"
     "exit status, and outlives agent restarts. Not for interactive use."},
    {"help", NULL, cmd_help, "[COMMAND...]", "show help for a command", NULL},
    {"version", NULL, cmd_version, "", "print the version", NULL},
    /* Hidden: what the build and the tests generate from these tables. */
    {"_doc", NULL, hf_cmd_doc,
     "man | bash | api [--json] | flags COMMAND | commands",
     "print generated documentation",
     "Prints the man page (roff), the bash completion script, the HTTP\n"
     "API reference (docs/api.md), a command's flag table (one flag per\n"
     "line) or the list of commands, from the tables the code runs on."},
};

/* The commands whose parsers read a flag table, and their tables. */
static const struct {
	const char *noun;
	hf_cli_flag_fn flags;
} flag_tables[] = {
    {"server", hf_server_flag},
    {"agent", hf_agent_flag},
    {"dev", hf_dev_flag},
};

enum {
	G_SERVICE = 's',
	G_ADDR = 'a',
	G_TOKEN = 't',
	G_CA_FILE = 'c',
	G_JSON = 'j'
};

static const struct hf_cli_flag globals[] = {
    {"-s", "SERVICE", G_SERVICE, "the service the command acts on"},
    {"--service", "SERVICE", G_SERVICE, NULL},
    {"--addr", "URL", G_ADDR,
     "the server's URL; default $HOLDFAST_ADDR, else http://127.0.0.1:7070"},
    {"--token", "TOKEN", G_TOKEN,
     "the bearer token; default $HOLDFAST_TOKEN, which keeps it out of ps"},
    {"--ca-file", "PEM", G_CA_FILE,
     "a CA to trust for an https server (its certificate comes from a "
     "private CA); default $HOLDFAST_CA_FILE"},
    {"--json", NULL, G_JSON, "print JSON instead of text"},
};

const struct hf_cli_flag *hf_cli_global_flag(size_t i)
{
	return i < HF_ARRAY_LEN(globals) ? &globals[i] : NULL;
}

hf_cli_flag_fn hf_cli_cmd_flags(const struct hf_cli_cmd *c)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(flag_tables); i++)
		if (!c->verb && strcmp(c->noun, flag_tables[i].noun) == 0)
			return flag_tables[i].flags;
	return NULL;
}

bool hf_cli_cmd_hidden(const struct hf_cli_cmd *c)
{
	return c->noun[0] == '_';
}

const struct hf_cli_cmd *hf_cli_cmd_at(size_t i)
{
	size_t n = sizeof(commands) / sizeof(commands[0]);

	if (i < n)
		return &commands[i];
	for (size_t k = 0; hf_client_cmds[k].noun; k++)
		if (k == i - n)
			return &hf_client_cmds[k];
	return NULL;
}

static const struct hf_cli_cmd *find_cmd(const char *noun, const char *verb)
{
	const struct hf_cli_cmd *c;

	for (size_t i = 0; (c = hf_cli_cmd_at(i)) != NULL; i++) {

		if (strcmp(c->noun, noun) != 0)
			continue;
		if (!c->verb || (verb && strcmp(c->verb, verb) == 0))
			return c;
	}
	return NULL;
}

static bool noun_exists(const char *noun)
{
	const struct hf_cli_cmd *c;

	for (size_t i = 0; (c = hf_cli_cmd_at(i)) != NULL; i++)
		if (strcmp(c->noun, noun) == 0)
			return true;
	return false;
}

static void print_overview(FILE *f)
{
	const struct hf_cli_cmd *c;
	const struct hf_cli_flag *g;

	fprintf(f, "usage: holdfast");
	for (size_t i = 0; (g = hf_cli_global_flag(i)) != NULL; i++)
		if (g->help)
			fprintf(f, " [%s%s%s]", g->name, g->arg ? " " : "",
				g->arg ? g->arg : "");
	fprintf(f, " <command> [arguments]\n\n"
		   "holdfast deploys and operates stateful services from a "
		   "service spec.\n\nCommands:\n");
	for (size_t i = 0; (c = hf_cli_cmd_at(i)) != NULL; i++) {
		char name[64];

		if (hf_cli_cmd_hidden(c))
			continue;
		snprintf(name, sizeof(name), "%s%s%s", c->noun,
			 c->verb ? " " : "", c->verb ? c->verb : "");
		fprintf(f, "  %-22s %s\n", name, c->summary);
	}
	fputc('\n', f);
	hf_cli_flags_print(f, "Global flags:", hf_cli_global_flag);
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

static void print_cmd_help(FILE *f, const struct hf_cli_cmd *c)
{
	fprintf(f, "usage: holdfast %s%s%s %s\n\n%s\n", c->noun,
		c->verb ? " " : "", c->verb ? c->verb : "", c->usage,
		c->summary);
	if (c->help)
		fprintf(f, "\n%s\n", c->help);
	if (hf_cli_cmd_flags(c)) {
		fputc('\n', f);
		hf_cli_flags_print(f, "Flags:", hf_cli_cmd_flags(c));
	}
}

int hf_cli_usage(const char *noun, const char *verb)
{
	const struct hf_cli_cmd *c = find_cmd(noun, verb);

	if (c)
		fprintf(stderr, "usage: holdfast %s%s%s %s\n", c->noun,
			c->verb ? " " : "", c->verb ? c->verb : "", c->usage);
	if (c && hf_cli_cmd_flags(c))
		fprintf(stderr, "Run 'holdfast help %s' for its flags.\n",
			c->noun);
	return HF_EXIT_USAGE;
}

static void print_noun_verbs(FILE *f, const char *noun)
{
	const struct hf_cli_cmd *c;

	fprintf(f, "'holdfast %s' takes one of:\n", noun);
	for (size_t i = 0; (c = hf_cli_cmd_at(i)) != NULL; i++)
		if (strcmp(c->noun, noun) == 0 && c->verb)
			fprintf(f, "  %-15s %s\n", c->verb, c->summary);
}

static int cmd_help(int argc, char **argv)
{
	const struct hf_cli_cmd *c;

	if (argc < 2) {
		print_overview(stdout);
		return HF_EXIT_OK;
	}
	c = find_cmd(argv[1], argc > 2 ? argv[2] : NULL);
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

/* Consumes the global flags before the command; returns argv shift. */
static int parse_globals(int argc, char **argv)
{
	struct hf_cli_globals *g = hf_cli_globals();
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const struct hf_cli_flag *f = NULL, *r;
		const char *val;

		for (size_t k = 0; (r = hf_cli_global_flag(k)) != NULL; k++)
			if (strcmp(r->name, argv[i]) == 0)
				f = r;
		if (!f || (f->arg && i + 1 >= argc))
			break;
		val = f->arg ? argv[i + 1] : NULL;
		switch (f->key) {
		case G_SERVICE:
			g->service = val;
			break;
		case G_ADDR:
			g->addr = val;
			break;
		case G_TOKEN:
			g->token = val;
			break;
		case G_CA_FILE:
			g->ca_file = val;
			break;
		case G_JSON:
			g->json = true;
			break;
		}
		i += f->arg ? 2 : 1;
	}
	return i - 1;
}

int hf_cli_main(int argc, char **argv)
{
	const struct hf_cli_cmd *c;
	int skip, shift;

	shift = parse_globals(argc, argv);
	argc -= shift;
	argv += shift;
	if (!hf_cli_globals()->ca_file && getenv("HOLDFAST_CA_FILE") &&
	    *getenv("HOLDFAST_CA_FILE"))
		hf_cli_globals()->ca_file = getenv("HOLDFAST_CA_FILE");
	if (hf_cli_globals()->ca_file) {
		/* Said here, not as a TLS failure later. */
		if (access(hf_cli_globals()->ca_file, R_OK) != 0) {
			fprintf(stderr, "holdfast: cannot read the CA file %s: "
					"%s\n",
				hf_cli_globals()->ca_file, strerror(errno));
			return HF_EXIT_USAGE;
		}
		hf_httpc_set_tls(hf_cli_globals()->ca_file, false);
	}

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
	c = find_cmd(argv[1], argc > 2 ? argv[2] : NULL);
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
