/*
 * cli.h - the holdfast command line client: its commands' rows (spec, store
 * and the nouns that talk to a server), the global flags, and what the
 * binary's help and `_doc` print from the whole command table. main.c holds
 * that table; the exit codes are common/err.h's HF_EXIT_*.
 */
#ifndef HF_CLI_CLI_H
#define HF_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/cmd.h"
#include "common/util.h"
#include "spec/spec.h"

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

/* A diff's pod line: "pod web: changed (count 2)", "(count 2 -> 3)". */
void hf_cli_print_pod_change(const char *pod, const char *change,
			     long long old_count, long long new_count);

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
extern const struct hf_cmd hf_client_cmds[];

/*
 * The i-th row of the CLI's own table: spec and store commands, then
 * hf_client_cmds; NULL past the end.
 */
const struct hf_cmd *hf_cli_cmd_at(size_t i);
/* Prints the usage of one of the CLI's commands; returns HF_EXIT_USAGE. */
int hf_cli_usage(const char *noun, const char *verb);

/*
 * Consumes the global flags before the command (and reads
 * $HOLDFAST_CA_FILE). Sets *shift to the number of arguments taken; returns
 * HF_EXIT_OK, or the exit code when a global flag's value is unusable.
 */
int hf_cli_globals_parse(int argc, char **argv, int *shift);
/*
 * For a command of hf_client_cmds: takes "-s SERVICE" / "--service SERVICE"
 * given after the command too (before any "--"), as users of other
 * orchestrators' CLIs write it, and removes them from argv[from..]. Returns
 * the new argc, or -1 after saying why (no value, or two services named).
 */
int hf_cli_service_after(const struct hf_cmd *c, int argc, char **argv,
			 int from);
/* The global flags' table (given before the command). */
const struct hf_cmd_flag *hf_cli_global_flag(size_t i);

/* Prints title, then one entry per flag (alias rows merged), to f. */
void hf_cli_flags_print(FILE *f, const char *title, hf_cmd_flag_fn flags);

/*
 * `holdfast _doc`: the man page, completion, API reference, flag lists,
 * from the binary's whole command table `at`.
 */
int hf_cli_doc(int argc, char **argv, hf_cmd_at_fn at);

/* The server the client commands talk to, and its token (may be NULL). */
const char *hf_cli_addr(void);
const char *hf_cli_token(void);

/* Command handlers: argv[0] is the verb (or noun for single words). */
/*
 * One API call (cli_client.c): 0 with *out (a new reference) for any
 * HTTP status, or an exit code after saying why the server could not be
 * reached. hf_cli_api_error prints an error body and returns its exit
 * code; hf_cli_print_json prints JSON as --json does; hf_cli_print_diff a
 * service diff's body as `service diff` does.
 */
struct json_t;
int hf_cli_api(const char *method, const char *path,
	       const struct json_t *body, long *status, struct json_t **out);
int hf_cli_api_error(long status, const struct json_t *body);
void hf_cli_print_json(const struct json_t *j);
void hf_cli_print_diff(const struct json_t *d);

int hf_cmd_stack_deploy(int argc, char **argv);
int hf_cmd_stack_update(int argc, char **argv);
int hf_cmd_stack_diff(int argc, char **argv);
int hf_cmd_stack_status(int argc, char **argv);
int hf_cmd_stack_list(int argc, char **argv);
int hf_cmd_stack_remove(int argc, char **argv);
int hf_cmd_store_backup(int argc, char **argv);
int hf_cmd_store_restore(int argc, char **argv);
int hf_cmd_spec_validate(int argc, char **argv);
int hf_cmd_spec_render(int argc, char **argv);
int hf_cmd_spec_diff(int argc, char **argv);

#endif
