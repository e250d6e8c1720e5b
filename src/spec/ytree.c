/*
 * ytree.c - builds a position-carrying tree from libyaml's event stream.
 */
#include "spec/ytree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/err.h"

/* Bounds that keep hostile input from exhausting the stack or memory. */
#define YTREE_MAX_DEPTH 64
/*
 * A spec of fifty pod types with ten tasks each is about 10,000 nodes;
 * the bound leaves room for that many times over while keeping aliases
 * from expanding a few kilobytes into millions of nodes.
 */
#define YTREE_MAX_NODES 100000

struct anchor {
	char *name;
	struct hf_ynode *node;
};

struct builder {
	yaml_parser_t parser;
	const char *file;
	const struct hf_linemap *map;
	struct hf_diags *diags;
	struct {
		struct anchor *items;
		size_t len, cap;
	} anchors;
	size_t nodes;
	bool failed;
};

static void node_pos(struct builder *b, struct hf_ynode *n,
		     const yaml_mark_t *m)
{
	n->line = b->map ? hf_linemap_lookup(b->map, (int)m->line + 1)
			 : (int)m->line + 1;
	n->col = (int)m->column + 1;
}

static void fail_at(struct builder *b, const yaml_mark_t *m, const char *msg,
		    const char *detail)
{
	int line = b->map ? hf_linemap_lookup(b->map, (int)m->line + 1)
			  : (int)m->line + 1;

	if (b->failed)
		return;
	b->failed = true;
	if (detail)
		hf_diags_add(b->diags, HF_DIAG_ERROR, b->file, line,
			     (int)m->column + 1, "", "%s: %s", msg, detail);
	else
		hf_diags_add(b->diags, HF_DIAG_ERROR, b->file, line,
			     (int)m->column + 1, "", "%s", msg);
}

static struct hf_ynode *node_new(struct builder *b, enum hf_ykind kind,
				 const yaml_mark_t *m)
{
	struct hf_ynode *n;

	if (++b->nodes > YTREE_MAX_NODES) {
		fail_at(b, m, "the document is too large (over 100000 YAML nodes once aliases are expanded)", NULL);
		return NULL;
	}
	n = hf_xcalloc(1, sizeof(*n));
	n->kind = kind;
	node_pos(b, n, m);
	return n;
}

void hf_ynode_free(struct hf_ynode *n)
{
	if (!n)
		return;
	free(n->str);
	for (size_t i = 0; i < n->npairs; i++) {
		hf_ynode_free(n->pairs[i].key);
		hf_ynode_free(n->pairs[i].value);
	}
	free(n->pairs);
	for (size_t i = 0; i < n->nitems; i++)
		hf_ynode_free(n->items[i]);
	free(n->items);
	free(n);
}

/* Deep copy for alias expansion; counts against the node budget. */
static struct hf_ynode *node_copy(struct builder *b, const struct hf_ynode *src,
				  const yaml_mark_t *m)
{
	struct hf_ynode *n = node_new(b, src->kind, m);

	if (!n)
		return NULL;
	n->line = src->line;
	n->col = src->col;
	if (src->str) {
		n->str = hf_xmalloc(src->len + 1);
		memcpy(n->str, src->str, src->len + 1);
		n->len = src->len;
	}
	n->plain = src->plain;
	n->one_line = src->one_line;
	for (size_t i = 0; i < src->npairs; i++) {
		struct hf_ynode *k = node_copy(b, src->pairs[i].key, m);
		struct hf_ynode *v = k ? node_copy(b, src->pairs[i].value, m)
				       : NULL;

		if (!v) {
			hf_ynode_free(k);
			hf_ynode_free(n);
			return NULL;
		}
		if (n->npairs == n->cap) {
			n->cap = n->cap ? n->cap * 2 : 4;
			n->pairs = hf_xrealloc(n->pairs,
					       n->cap * sizeof(*n->pairs));
		}
		n->pairs[n->npairs].key = k;
		n->pairs[n->npairs++].value = v;
	}
	for (size_t i = 0; i < src->nitems; i++) {
		struct hf_ynode *c = node_copy(b, src->items[i], m);

		if (!c) {
			hf_ynode_free(n);
			return NULL;
		}
		if (n->nitems == n->icap) {
			n->icap = n->icap ? n->icap * 2 : 4;
			n->items = hf_xrealloc(n->items,
					       n->icap * sizeof(*n->items));
		}
		n->items[n->nitems++] = c;
	}
	return n;
}

static void remember_anchor(struct builder *b, const yaml_char_t *name,
			    struct hf_ynode *n)
{
	struct anchor *a;

	if (!name)
		return;
	a = HF_VEC_PUSH(&b->anchors);
	a->name = hf_xstrdup((const char *)name);
	a->node = n;
}

/*
 * Reads the node that starts with event ev (already taken from the
 * parser). Returns the node or NULL after recording why.
 */
static struct hf_ynode *read_node(struct builder *b, yaml_event_t *ev,
				  int depth)
{
	struct hf_ynode *n = NULL;
	yaml_event_t next;

	if (depth > YTREE_MAX_DEPTH) {
		fail_at(b, &ev->start_mark, "the document nests too deeply",
			NULL);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n = node_new(b, HF_Y_SCALAR, &ev->start_mark);
		if (!n)
			return NULL;
		n->len = ev->data.scalar.length;
		n->str = hf_xmalloc(n->len + 1);
		memcpy(n->str, ev->data.scalar.value, n->len);
		n->str[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		n->one_line = ev->start_mark.line == ev->end_mark.line;
		remember_anchor(b, ev->data.scalar.anchor, n);
		return n;
	case YAML_ALIAS_EVENT:
		for (size_t i = b->anchors.len; i-- > 0;) {
			if (strcmp(b->anchors.items[i].name,
				   (const char *)ev->data.alias.anchor) == 0)
				return node_copy(b, b->anchors.items[i].node,
						 &ev->start_mark);
		}
		fail_at(b, &ev->start_mark, "unknown YAML alias",
			(const char *)ev->data.alias.anchor);
		return NULL;
	case YAML_SEQUENCE_START_EVENT:
		n = node_new(b, HF_Y_SEQ, &ev->start_mark);
		if (!n)
			return NULL;
		for (;;) {
			struct hf_ynode *item;

			if (!yaml_parser_parse(&b->parser, &next)) {
				fail_at(b, &b->parser.problem_mark,
					"invalid YAML", b->parser.problem);
				goto fail;
			}
			if (next.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&next);
				break;
			}
			item = read_node(b, &next, depth + 1);
			yaml_event_delete(&next);
			if (!item)
				goto fail;
			if (n->nitems == n->icap) {
				n->icap = n->icap ? n->icap * 2 : 4;
				n->items = hf_xrealloc(
				    n->items, n->icap * sizeof(*n->items));
			}
			n->items[n->nitems++] = item;
		}
		/* Anchored collections are remembered once complete. */
		remember_anchor(b, ev->data.sequence_start.anchor, n);
		return n;
	case YAML_MAPPING_START_EVENT:
		n = node_new(b, HF_Y_MAP, &ev->start_mark);
		if (!n)
			return NULL;
		for (;;) {
			struct hf_ynode *k, *v;

			if (!yaml_parser_parse(&b->parser, &next)) {
				fail_at(b, &b->parser.problem_mark,
					"invalid YAML", b->parser.problem);
				goto fail;
			}
			if (next.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&next);
				break;
			}
			if (next.type != YAML_SCALAR_EVENT) {
				fail_at(b, &next.start_mark,
					"mapping keys must be plain strings",
					NULL);
				yaml_event_delete(&next);
				goto fail;
			}
			k = read_node(b, &next, depth + 1);
			yaml_event_delete(&next);
			if (!k)
				goto fail;
			if (!yaml_parser_parse(&b->parser, &next)) {
				hf_ynode_free(k);
				fail_at(b, &b->parser.problem_mark,
					"invalid YAML", b->parser.problem);
				goto fail;
			}
			v = read_node(b, &next, depth + 1);
			yaml_event_delete(&next);
			if (!v) {
				hf_ynode_free(k);
				goto fail;
			}
			if (n->npairs == n->cap) {
				n->cap = n->cap ? n->cap * 2 : 4;
				n->pairs = hf_xrealloc(
				    n->pairs, n->cap * sizeof(*n->pairs));
			}
			n->pairs[n->npairs].key = k;
			n->pairs[n->npairs++].value = v;
		}
		remember_anchor(b, ev->data.mapping_start.anchor, n);
		return n;
	default:
		fail_at(b, &ev->start_mark, "unexpected YAML structure", NULL);
		return NULL;
	}
fail:
	hf_ynode_free(n);
	return NULL;
}

int hf_ytree_parse(const char *text, size_t len, const char *file,
		   const struct hf_linemap *map, struct hf_ynode **root,
		   struct hf_diags *diags)
{
	struct builder b = {.file = file, .map = map, .diags = diags};
	struct hf_ynode *doc = NULL;
	yaml_event_t ev;
	bool done = false, have_doc = false;
	int rc = HF_ESPEC;

	*root = NULL;
	if (!yaml_parser_initialize(&b.parser)) {
		hf_diags_add(diags, HF_DIAG_ERROR, file, 0, 0, "",
			     "cannot start the YAML parser");
		return HF_ESPEC;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text,
				     len);
	while (!done) {
		if (!yaml_parser_parse(&b.parser, &ev)) {
			fail_at(&b, &b.parser.problem_mark, "invalid YAML",
				b.parser.problem);
			goto out;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (have_doc) {
				fail_at(&b, &ev.start_mark,
					"a spec holds one YAML document, "
					"this is a second one",
					NULL);
				yaml_event_delete(&ev);
				goto out;
			}
			have_doc = true;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
		case YAML_ALIAS_EVENT:
			doc = read_node(&b, &ev, 0);
			if (!doc) {
				yaml_event_delete(&ev);
				goto out;
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	*root = doc;
	doc = NULL;
	rc = 0;
out:
	if (b.failed)
		rc = HF_ESPEC;
	hf_ynode_free(doc);
	if (rc) {
		hf_ynode_free(*root);
		*root = NULL;
	}
	for (size_t i = 0; i < b.anchors.len; i++)
		free(b.anchors.items[i].name);
	HF_VEC_FREE(&b.anchors);
	yaml_parser_delete(&b.parser);
	return rc;
}

bool hf_ynode_is_null(const struct hf_ynode *n)
{
	if (!n)
		return true;
	if (n->kind != HF_Y_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->str, "~") == 0 ||
	       strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
	       strcmp(n->str, "NULL") == 0;
}

const struct hf_ypair *hf_ynode_pair(const struct hf_ynode *map,
				     const char *key)
{
	if (!map || map->kind != HF_Y_MAP)
		return NULL;
	for (size_t i = 0; i < map->npairs; i++)
		if (strcmp(map->pairs[i].key->str, key) == 0)
			return &map->pairs[i];
	return NULL;
}

struct hf_ynode *hf_ynode_get(const struct hf_ynode *map, const char *key)
{
	const struct hf_ypair *p = hf_ynode_pair(map, key);

	return p ? p->value : NULL;
}
