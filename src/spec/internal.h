/*
 * internal.h - what the spec module's files share: the parse context that
 * carries the current spec path and the diagnostics, and helpers used by
 * both the parser and the validator.
 */
#ifndef HF_SPEC_INTERNAL_H
#define HF_SPEC_INTERNAL_H

#include "spec/spec.h"
#include "spec/ytree.h"

struct hf_pctx {
	const char *file;
	struct hf_diags *diags;
	struct hf_buf path; /* "pods.world.tasks.server" */
	struct hf_spec *spec;
	const struct hf_spec_load_opts *opts;
	char *spec_dir; /* for relative template paths; may be NULL */
	/* The template as written (positions point into it); may be NULL. */
	const char *src;
	size_t src_len;
};

/* Path stack: push returns the old length to pop back to. */
size_t hf_pctx_push(struct hf_pctx *c, const char *seg);
size_t hf_pctx_push_idx(struct hf_pctx *c, size_t i);
void hf_pctx_pop(struct hf_pctx *c, size_t old);

/* Diagnostics at a node (NULL = 1:1) with the current path. */
void hf_pctx_err(struct hf_pctx *c, const struct hf_ynode *at,
		 const char *fmt, ...) HF_PRINTF(3, 4);
void hf_pctx_warn(struct hf_pctx *c, const struct hf_ynode *at,
		  const char *fmt, ...) HF_PRINTF(3, 4);
void hf_pctx_err_pos(struct hf_pctx *c, struct hf_pos pos, const char *path,
		     const char *fmt, ...) HF_PRINTF(4, 5);
void hf_pctx_warn_pos(struct hf_pctx *c, struct hf_pos pos, const char *path,
		      const char *fmt, ...) HF_PRINTF(4, 5);
bool hf_pctx_want_map(struct hf_pctx *c, const struct hf_ynode *n);

/* Builds the model from the tree (parse.c). */
void hf_spec_parse_tree(struct hf_pctx *c, const struct hf_ynode *root);
/* Cross-checks over the whole model (validate.c). Safe on partial models. */
void hf_spec_validate(struct hf_pctx *c);
/* Config templates against task environments (validate.c); valid models. */
void hf_spec_check_config_vars(struct hf_pctx *c);

bool hf_spec_is_label(const char *s, bool allow_upper);
bool hf_spec_name_ok(const char *s);
bool hf_spec_path_inside(const char *p);
bool hf_spec_service_name_ok(const char *name);
bool hf_spec_parse_strategy(const char *s, enum hf_strategy *out);

/*
 * Parses a Marathon-style placement string into constraints (appended).
 * Returns 0, or -1 with *why (owned by the caller) saying what is wrong.
 */
struct hf_spec_constraints {
	struct hf_spec_constraint *items;
	size_t len, cap;
};
int hf_spec_parse_placement(const char *s, void *constraints, char **why);

#endif
