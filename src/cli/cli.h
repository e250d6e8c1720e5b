/*
 * cli.h - the holdfast command line: one table of commands (noun, verb,
 * handler, usage), global flags, and the exit codes scripts rely on.
 *
 * Exit codes: 0 success, 1 the command ran and failed (invalid spec, plan
 * in ERROR, refused change), 2 usage error, 3 could not reach the server or
 * the server failed, 4 (spec validate) the spec is valid but uses features
 * holdfast does not support yet, so a deploy would refuse it.
 */
#ifndef HF_CLI_CLI_H
#define HF_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct option;

#include "common/util.h"
#include "spec/spec.h"

enum {
	HF_EXIT_OK = 0,
	HF_EXIT_FAIL = 1,
	HF_EXIT_USAGE = 2,
	HF_EXIT_SERVER = 3,
	HF_EXIT_UNSUPPORTED = 4,
};

/*
 * One flag of a command whose parser reads a table (server, agent, dev and
 * the global flags). The parser reads the same rows that `holdfast help`,
 * the man page and the shell completion print, so none of them can omit a
 * flag the parser takes.
 */
struct hf_cli_flag {
	const char *name; /* "--listen", or "-s" */
	const char *arg;  /* the value's name ("ADDR"); NULL for a switch */
	int key;          /* what the parser switches on (getopt_long's val) */
	/*
	 * What it does and its default, in sentences. NULL marks another
	 * spelling of the row before it (same key), printed with that row.
	 */
	const char *help;
};

/* The i-th row of a command's flag table, or NULL past the end. */
typedef const struct hf_cli_flag *(*hf_cli_flag_fn)(size_t i);

/*
 * Where a spec comes from, as the spec and service commands take it: a
 * spec file with -o and flat options files, or an SDK package directory
 * (--package DIR, or a directory given as the spec) whose --options files
 * are the user's package options. Fill the inputs, then resolve.
 */
struct hf_cli_spec_src {
	/* Inputs. */
	const char *file;    /* the spec, or a package directory; may be NULL */
	const char *package; /* --package; may be NULL */
	struct hf_strlist options_files; /* --options, in order */
	struct hf_kvlist cli_opts;       /* -o, in order: they win */
	struct hf_strlist template_dirs; /* --template-dir */
	/* Outputs of hf_cli_spec_resolve(). */
	const char *spec_file;   /* the spec to load */
	struct hf_kvlist options; /* the values it renders with */
	bool is_package;
	struct hf_package pkg;   /* when is_package */
};

/*
 * Resolves the spec and its values: loads flat options files (or renders
 * the package with the user's options and TEMPLATE_* build values from the
 * environment), then applies -o. Prints problems to stderr. Returns 0, or
 * the exit code to use.
 */
int hf_cli_spec_resolve(struct hf_cli_spec_src *s);
void hf_cli_spec_src_release(struct hf_cli_spec_src *s);

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
	const char *ca_file; /* --ca-file, else $HOLDFAST_CA_FILE: a private CA */
	bool json;           /* --json */
};
struct hf_cli_globals *hf_cli_globals(void);

/* The commands that talk to a server (cli_client.c); NULL-terminated. */
extern const struct hf_cli_cmd hf_client_cmds[];

int hf_cli_main(int argc, char **argv);
/* Prints a command's usage to stderr and returns HF_EXIT_USAGE. */
int hf_cli_usage(const char *noun, const char *verb);

/*
 * The i-th command of the whole command table (cli.c's own commands, then
 * hf_client_cmds), hidden ones included; NULL past the end.
 */
const struct hf_cli_cmd *hf_cli_cmd_at(size_t i);
/* The flag table c's parser reads, or NULL (its usage names its flags). */
hf_cli_flag_fn hf_cli_cmd_flags(const struct hf_cli_cmd *c);
/* The global flags' table (given before the command). */
const struct hf_cli_flag *hf_cli_global_flag(size_t i);
/* True for commands `holdfast --help` does not list (noun starts with '_'). */
bool hf_cli_cmd_hidden(const struct hf_cli_cmd *c);

/*
 * Fills out[0..n] with getopt_long's view of a flag table whose rows are all
 * "--name" (out[n] is the terminator); n is the table's length, which must
 * be less than cap.
 */
void hf_cli_longopts(hf_cli_flag_fn flags, struct option *out, size_t cap);
/* Prints title, then one entry per flag (alias rows merged), to f. */
void hf_cli_flags_print(FILE *f, const char *title, hf_cli_flag_fn flags);

/* `holdfast _doc`: the man page, completion, API reference, flag lists. */
int hf_cmd_doc(int argc, char **argv);

/* The server the client commands talk to, and its token (may be NULL). */
const char *hf_cli_addr(void);
const char *hf_cli_token(void);

/* Command handlers: argv[0] is the verb (or noun for single words). */
int hf_cmd_store_backup(int argc, char **argv);
int hf_cmd_store_restore(int argc, char **argv);
int hf_cmd_spec_validate(int argc, char **argv);
int hf_cmd_spec_render(int argc, char **argv);
int hf_cmd_spec_diff(int argc, char **argv);

#endif
