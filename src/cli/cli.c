/*
 * cli.c - the CLI's own commands (spec, store; the nouns that talk to a
 * server are cli_client.c's) and the global flags. main.c's table lists
 * them after the programs the binary also is.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "common/util.h"

static const struct hf_cmd commands[] = {
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
     "using features holdfast does not support yet (a deploy refuses it).", NULL},
    {"spec", "render", hf_cmd_spec_render,
     "(FILE | --package DIR [FILE]) [-o KEY=VALUE]... [--options FILE]... "
     "[--allow-missing] [--template-dir DIR] [--json]",
     "print the normalised spec with defaults and plans",
     "Prints the spec as holdfast understands it: every pod, task and\n"
     "resource set with defaults filled in, and every plan with its phases\n"
     "and steps (generated ones included). --json prints the full model.\n"
     "With --package, also the variables the package rendered.", NULL},
    {"spec", "diff", hf_cmd_spec_diff,
     "OLD NEW [-o KEY=VALUE]... [--options FILE]... [--old-option KEY=VALUE]... "
     "[--allow-missing] [--template-dir DIR] [--json]",
     "show what changing OLD into NEW would do",
     "Compares two specs as a configuration update would: which pod\n"
     "instances relaunch, which are added or removed, and what must be\n"
     "refused. -o/--options apply to both; --old-option only to OLD.\n"
     "Exit status: 0 the change is allowed, 1 it would be refused.", NULL},
    {"store", "backup", hf_cmd_store_backup,
     "FILE [--data DIR | --store URL]",
     "write a consistent copy of the server's store to FILE",
     "Asks the running server (admin token) for a copy of its whole store\n"
     "at one moment and writes it to FILE (mode 0600: it holds every\n"
     "secret): an SQLite store file, whatever the backend. With --data or\n"
     "--store it opens the store itself instead, which needs the server\n"
     "stopped for SQLite. Safe while the server runs and acts, unlike\n"
     "copying holdfast.db, which loses what is still in its -wal file.", NULL},
    {"store", "restore", hf_cmd_store_restore,
     "FILE (--data DIR | --store URL) [--yes]",
     "make a stopped server's store hold exactly a backup's content",
     "Checks FILE (a backup, or any holdfast store file no server has\n"
     "open) and that a server can load every record in it, then makes the\n"
     "store of the stopped server (--data DIR: DIR/holdfast.db; --store\n"
     "URL: any store) hold exactly its keys: one transaction with SQLite.\n"
     "Agents keep their tasks: the restored store is the same cluster.\n"
     "Stop every server of the store first. Asks for confirmation on a\n"
     "terminal unless --yes is given.", NULL},
};

enum {
	G_SERVICE = 's',
	G_ADDR = 'a',
	G_TOKEN = 't',
	G_CA_FILE = 'c',
	G_JSON = 'j'
};

static const struct hf_cmd_flag globals[] = {
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

const struct hf_cmd_flag *hf_cli_global_flag(size_t i)
{
	return i < HF_ARRAY_LEN(globals) ? &globals[i] : NULL;
}

const struct hf_cmd *hf_cli_cmd_at(size_t i)
{
	size_t n = HF_ARRAY_LEN(commands);

	if (i < n)
		return &commands[i];
	for (size_t k = 0; hf_client_cmds[k].noun; k++)
		if (k == i - n)
			return &hf_client_cmds[k];
	return NULL;
}

int hf_cli_usage(const char *noun, const char *verb)
{
	return hf_cmd_usage(hf_cmd_find(hf_cli_cmd_at, noun, verb));
}

/* Consumes the global flags before the command; returns argv shift. */
static int parse_globals(int argc, char **argv)
{
	struct hf_cli_globals *g = hf_cli_globals();
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const struct hf_cmd_flag *f = NULL, *r;
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

int hf_cli_service_after(const struct hf_cmd *c, int argc, char **argv,
			 int from)
{
	struct hf_cli_globals *g = hf_cli_globals();
	bool client = false;
	int i = from;

	for (size_t k = 0; hf_client_cmds[k].noun; k++)
		client = client || c == &hf_client_cmds[k];
	if (!client)
		return argc;
	while (i < argc && strcmp(argv[i], "--") != 0) {
		if (strcmp(argv[i], "-s") != 0 &&
		    strcmp(argv[i], "--service") != 0) {
			i++;
			continue;
		}
		if (i + 1 >= argc || strcmp(argv[i + 1], "--") == 0) {
			fprintf(stderr, "holdfast: %s needs a service name\n",
				argv[i]);
			return -1;
		}
		if (g->service && strcmp(g->service, argv[i + 1]) != 0) {
			fprintf(stderr, "holdfast: two services named: '%s' "
					"and '%s'\n",
				g->service, argv[i + 1]);
			return -1;
		}
		g->service = argv[i + 1];
		memmove(&argv[i], &argv[i + 2],
			(size_t)(argc - i - 2 + 1) * sizeof(char *));
		argc -= 2;
	}
	return argc;
}

int hf_cli_globals_parse(int argc, char **argv, int *shift)
{
	struct hf_cli_globals *g = hf_cli_globals();

	*shift = parse_globals(argc, argv);
	if (!g->ca_file && getenv("HOLDFAST_CA_FILE") &&
	    *getenv("HOLDFAST_CA_FILE"))
		g->ca_file = getenv("HOLDFAST_CA_FILE");
	if (g->ca_file) {
		/* Said here, not as a TLS failure later. */
		if (access(g->ca_file, R_OK) != 0) {
			fprintf(stderr, "holdfast: cannot read the CA file %s: "
					"%s\n",
				g->ca_file, strerror(errno));
			return HF_EXIT_USAGE;
		}
		hf_httpc_set_tls(g->ca_file, false);
	}
	return HF_EXIT_OK;
}
