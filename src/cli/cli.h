/*
 * cli.h - the holdfast command line: one table of commands (noun, verb,
 * handler, usage), global flags, and the exit codes scripts rely on.
 *
 * Exit codes: 0 success, 1 the command ran and failed (invalid spec, plan
 * in ERROR, refused change), 2 usage error, 3 could not reach the server or
 * the server failed.
 */
#ifndef HF_CLI_CLI_H
#define HF_CLI_CLI_H

#include <stdbool.h>

enum {
	HF_EXIT_OK = 0,
	HF_EXIT_FAIL = 1,
	HF_EXIT_USAGE = 2,
	HF_EXIT_SERVER = 3,
};

struct hf_cli_cmd {
	const char *noun; /* "spec", or the command itself ("dev") */
	const char *verb; /* "validate"; NULL for single-word commands */
	int (*run)(int argc, char **argv);
	const char *usage;   /* arguments after the command words */
	const char *summary; /* one line for `holdfast --help` */
	const char *help;    /* longer text for `holdfast help <cmd>`; may be NULL */
};

/* Flags given before the command: holdfast [-s SVC] [--addr URL] ... */
struct hf_cli_globals {
	const char *service; /* -s, --service */
	const char *addr;    /* --addr, else $HOLDFAST_ADDR */
	const char *token;   /* --token, else $HOLDFAST_TOKEN */
	bool json;           /* --json */
};
struct hf_cli_globals *hf_cli_globals(void);

/* The commands that talk to a server (cli_client.c); NULL-terminated. */
extern const struct hf_cli_cmd hf_client_cmds[];

int hf_cli_main(int argc, char **argv);
/* Prints a command's usage to stderr and returns HF_EXIT_USAGE. */
int hf_cli_usage(const char *noun, const char *verb);

/* Command handlers: argv[0] is the verb (or noun for single words). */
int hf_cmd_spec_validate(int argc, char **argv);
int hf_cmd_spec_render(int argc, char **argv);
int hf_cmd_spec_diff(int argc, char **argv);

#endif
