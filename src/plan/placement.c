/*
 * placement.c - constraint checks and spread scoring.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "plan/placement.h"

const char *hf_place_field(const struct hf_place_node *n, const char *field)
{
	if (strcmp(field, "hostname") == 0)
		return n->hostname ? n->hostname : n->id;
	if (strcmp(field, "id") == 0 || strcmp(field, "node") == 0)
		return n->id;
	return n->attributes ? hf_kvlist_get(n->attributes, field) : NULL;
}

static bool same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Full-string regex match, as Marathon's LIKE. */
static bool like(const char *value, const char *pattern)
{
	char *anchored = hf_xasprintf("^(%s)$", pattern);
	regex_t re;
	bool ok = false;

	if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) == 0) {
		ok = regexec(&re, value, 0, NULL, 0) == 0;
		regfree(&re);
	}
	free(anchored);
	return ok;
}

/* Instances of the pod whose node has this field value. */
static size_t count_value(const struct hf_spec_constraint *c,
			  const struct hf_place_node *nodes,
			  const size_t *placed, size_t nplaced, const char *v)
{
	size_t n = 0;

	for (size_t i = 0; i < nplaced; i++)
		if (same(hf_place_field(&nodes[placed[i]], c->field), v))
			n++;
	return n;
}

/* Checks one constraint for a node; NULL when it passes, else why. */
static char *check(const struct hf_spec_constraint *c,
		   const struct hf_place_node *nodes, size_t nnodes,
		   size_t cand, const size_t *placed, size_t nplaced)
{
	const char *v = hf_place_field(&nodes[cand], c->field);
	const char *op = c->op;

	if (!v)
		return hf_xasprintf("it has no '%s' attribute (%s %s)", c->field,
				    c->field, op);
	if (strcmp(op, "UNIQUE") == 0) {
		if (count_value(c, nodes, placed, nplaced, v))
			return hf_xasprintf("%s UNIQUE: an instance already "
					    "runs where %s is '%s'",
					    c->field, c->field, v);
	} else if (strcmp(op, "CLUSTER") == 0) {
		if (c->arg && strcmp(v, c->arg) != 0)
			return hf_xasprintf("%s CLUSTER %s: its %s is '%s'",
					    c->field, c->arg, c->field, v);
		if (!c->arg && nplaced &&
		    !same(hf_place_field(&nodes[placed[0]], c->field), v))
			return hf_xasprintf("%s CLUSTER: the other instances "
					    "run where %s is '%s'",
					    c->field, c->field,
					    hf_place_field(&nodes[placed[0]],
							   c->field));
	} else if (strcmp(op, "GROUP_BY") == 0) {
		/*
		 * Spread evenly over the values seen on usable nodes: a
		 * value may take one more instance only while no other
		 * value has fewer.
		 */
		size_t mine = count_value(c, nodes, placed, nplaced, v);
		size_t distinct = 0, want = c->arg ? (size_t)atol(c->arg) : 0;

		for (size_t i = 0; i < nnodes; i++) {
			const char *o = hf_place_field(&nodes[i], c->field);
			bool seen = false;

			if (!o || !nodes[i].usable)
				continue;
			for (size_t j = 0; j < i; j++)
				if (nodes[j].usable &&
				    same(hf_place_field(&nodes[j], c->field), o))
					seen = true;
			if (seen)
				continue;
			distinct++;
			if (count_value(c, nodes, placed, nplaced, o) < mine)
				return hf_xasprintf(
				    "%s GROUP_BY: '%s' already has %zu "
				    "instance%s while '%s' has fewer",
				    c->field, v, mine, mine == 1 ? "" : "s", o);
		}
		if (want > distinct && mine > 0 && nplaced < want)
			return hf_xasprintf("%s GROUP_BY %zu: only %zu value%s "
					    "of %s %s available",
					    c->field, want, distinct,
					    distinct == 1 ? "" : "s", c->field,
					    distinct == 1 ? "is" : "are");
	} else if (strcmp(op, "LIKE") == 0) {
		if (!like(v, c->arg ? c->arg : ""))
			return hf_xasprintf("%s LIKE %s: its %s is '%s'",
					    c->field, c->arg, c->field, v);
	} else if (strcmp(op, "UNLIKE") == 0) {
		if (like(v, c->arg ? c->arg : ""))
			return hf_xasprintf("%s UNLIKE %s: its %s is '%s'",
					    c->field, c->arg, c->field, v);
	} else if (strcmp(op, "MAX_PER") == 0) {
		size_t max = c->arg ? (size_t)atol(c->arg) : 0;
		size_t have = count_value(c, nodes, placed, nplaced, v);

		if (have >= max)
			return hf_xasprintf("%s MAX_PER %zu: '%s' already has "
					    "%zu",
					    c->field, max, v, have);
	} else if (strcmp(op, "IS") == 0) {
		if (!c->arg || strcmp(v, c->arg) != 0)
			return hf_xasprintf("%s IS %s: its %s is '%s'", c->field,
					    c->arg ? c->arg : "", c->field, v);
	} else if (strcmp(op, "IS_NOT") == 0) {
		if (c->arg && strcmp(v, c->arg) == 0)
			return hf_xasprintf("%s IS_NOT %s", c->field, c->arg);
	}
	return NULL;
}

long hf_place_choose(const struct hf_spec_constraint *cons, size_t ncons,
		     const struct hf_place_node *nodes, size_t nnodes,
		     const size_t *placed, size_t nplaced, char **why)
{
	struct hf_buf reasons = HF_BUF_INIT;
	long best = -1;
	size_t best_mine = 0;

	*why = NULL;
	for (size_t i = 0; i < nnodes; i++) {
		char *no = NULL;
		size_t mine = 0;

		if (!nodes[i].usable)
			no = hf_xstrdup(nodes[i].unusable_why
					    ? nodes[i].unusable_why
					    : "it is not available");
		for (size_t k = 0; !no && k < ncons; k++)
			no = check(&cons[k], nodes, nnodes, i, placed, nplaced);
		if (no) {
			hf_buf_addf(&reasons, "%snode %s: %s",
				    reasons.len ? "; " : "", nodes[i].id, no);
			free(no);
			continue;
		}
		for (size_t k = 0; k < nplaced; k++)
			if (placed[k] == i)
				mine++;
		/* Spread: fewest of this pod, then fewest overall. */
		if (best < 0 || mine < best_mine ||
		    (mine == best_mine && nodes[i].load < nodes[best].load)) {
			best = (long)i;
			best_mine = mine;
		}
	}
	if (best < 0)
		*why = reasons.len ? hf_buf_detach(&reasons)
				   : hf_xstrdup("no node has registered yet");
	hf_buf_release(&reasons);
	return best;
}
