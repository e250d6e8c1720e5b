/*
 * cmd.h - one command of the holdfast binary as its table row, and a
 * command's flag table.
 *
 * main.c holds the binary's table (git.c's shape): it lists the rows each
 * module defines next to the handler they describe (server, agent, shim,
 * dev, and the CLI's nouns through cli/'s table). A parser that reads a flag
 * table reads the same rows that `holdfast help`, the man page and the shell
 * completion print, so none of them can omit a flag the parser takes. This
 * header lets a module describe its command without including the CLI or
 * main.c.
 */
#ifndef HF_COMMON_CMD_H
#define HF_COMMON_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h" /* HF_EXIT_* */

struct option;

/*
 * One flag of a command whose parser reads a table (server, agent, dev and
 * the global flags).
 */
struct hf_cmd_flag {
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
typedef const struct hf_cmd_flag *(*hf_cmd_flag_fn)(size_t i);

struct hf_cmd {
	const char *noun; /* "spec", or the command itself ("dev") */
	const char *verb; /* "validate"; NULL for single-word commands */
	int (*run)(int argc, char **argv); /* argv[0] is the verb (or noun) */
	const char *usage;   /* arguments after the command words */
	const char *summary; /* one line for `holdfast --help` */
	const char *help;    /* longer text for `holdfast help <cmd>`; may be NULL */
	hf_cmd_flag_fn flags; /* the table its parser reads; NULL: none */
};

/* The i-th row of a command table, NULL past the end. */
typedef const struct hf_cmd *(*hf_cmd_at_fn)(size_t i);

/*
 * The row of table `at` for noun and verb (a single-word command matches
 * whatever verb); NULL if none.
 */
const struct hf_cmd *hf_cmd_find(hf_cmd_at_fn at, const char *noun,
				 const char *verb);
/* Prints c's usage line to stderr (nothing for NULL); returns HF_EXIT_USAGE. */
int hf_cmd_usage(const struct hf_cmd *c);
/* True for commands `holdfast --help` does not list (noun starts with '_'). */
bool hf_cmd_hidden(const struct hf_cmd *c);

/*
 * Fills out[0..n] with getopt_long's view of a flag table whose rows are all
 * "--name" (out[n] is the terminator); n is the table's length, which must
 * be less than cap.
 */
void hf_cmd_longopts(hf_cmd_flag_fn flags, struct option *out, size_t cap);

#endif
