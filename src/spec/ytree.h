/*
 * ytree.h - a YAML document as a tree of nodes that remember where they
 * came from (file line and column), built with libyaml. Internal to the
 * spec module: the validator walks this tree so every diagnostic can name
 * its position.
 */
#ifndef HF_SPEC_YTREE_H
#define HF_SPEC_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "spec/spec.h"

enum hf_ykind {
	HF_Y_SCALAR,
	HF_Y_MAP,
	HF_Y_SEQ,
};

struct hf_ynode;

struct hf_ypair {
	struct hf_ynode *key; /* always a scalar */
	struct hf_ynode *value;
};

struct hf_ynode {
	enum hf_ykind kind;
	int line, col;  /* 1-based position in the source file */
	/* HF_Y_SCALAR */
	char *str;      /* NUL-terminated; may contain NULs before len */
	size_t len;
	bool plain;     /* unquoted scalar (can be a number, bool or null) */
	bool one_line;  /* a scalar that starts and ends on one line */
	/* HF_Y_MAP: pairs in document order, duplicates kept */
	struct hf_ypair *pairs;
	size_t npairs, cap;
	/* HF_Y_SEQ */
	struct hf_ynode **items;
	size_t nitems, icap;
};

/*
 * Parses one YAML document. map (optional) turns rendered lines back into
 * template lines. On success *root owns the tree (NULL for an empty
 * document). On failure returns HF_ESPEC with the reason in diags.
 * Anchors and aliases are expanded with a bound on the tree's size.
 */
int hf_ytree_parse(const char *text, size_t len, const char *file,
		   const struct hf_linemap *map, struct hf_ynode **root,
		   struct hf_diags *diags);
void hf_ynode_free(struct hf_ynode *n);

/* True for a plain scalar "", "~", "null" or "Null"/"NULL". */
bool hf_ynode_is_null(const struct hf_ynode *n);
/* The first value for key in a map, or NULL. */
struct hf_ynode *hf_ynode_get(const struct hf_ynode *map, const char *key);
/* The pair of the first occurrence of key, or NULL. */
const struct hf_ypair *hf_ynode_pair(const struct hf_ynode *map,
				     const char *key);

#endif
