/*
 * placement.c - constraint checks and spread scoring.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "common/map.h"
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

/*
 * What one constraint needs to know of the pod's other instances, counted
 * once per call: instances per field value, and for GROUP_BY the values
 * seen on usable nodes (in node order) with the smallest count.
 */
struct con_counts {
	struct hf_map by_value; /* value -> size_t * into cells */
	size_t *cells;
	size_t ncells;
	const char **distinct; /* GROUP_BY: usable values, node order */
	size_t ndistinct;
	size_t min_count;      /* GROUP_BY: fewest instances of a value */
};

static size_t *cell(struct con_counts *cc, const char *v)
{
	size_t *c = hf_map_get(&cc->by_value, v);

	if (!c) {
		c = &cc->cells[cc->ncells++];
		*c = 0;
		hf_map_put(&cc->by_value, v, c);
	}
	return c;
}

static size_t count_of(const struct con_counts *cc, const char *v)
{
	const size_t *c = v ? hf_map_get(&cc->by_value, v) : NULL;

	return c ? *c : 0;
}

/* per_node[i]: the pod's instances on node i. */
static void counts_init(struct con_counts *cc,
			const struct hf_spec_constraint *c,
			const struct hf_place_node *nodes, size_t nnodes,
			const size_t *per_node)
{
	memset(cc, 0, sizeof(*cc));
	/* Every value is a node's: at most one cell per node. */
	cc->cells = hf_xcalloc(nnodes + 1, sizeof(*cc->cells));
	for (size_t i = 0; i < nnodes; i++) {
		const char *v;

		if (!per_node[i])
			continue;
		v = hf_place_field(&nodes[i], c->field);
		if (v)
			*cell(cc, v) += per_node[i];
	}
	if (strcmp(c->op, "GROUP_BY") != 0)
		return;
	cc->distinct = hf_xcalloc(nnodes + 1, sizeof(*cc->distinct));
	{
		struct hf_map seen = {0};

		for (size_t i = 0; i < nnodes; i++) {
			const char *o = hf_place_field(&nodes[i], c->field);
			size_t n;

			if (!o || !nodes[i].usable || hf_map_get(&seen, o))
				continue;
			hf_map_put(&seen, o, (void *)o);
			n = count_of(cc, o);
			if (!cc->ndistinct || n < cc->min_count)
				cc->min_count = n;
			cc->distinct[cc->ndistinct++] = o;
		}
		hf_map_release(&seen);
	}
}

static void counts_release(struct con_counts *cc)
{
	hf_map_release(&cc->by_value);
	free(cc->cells);
	free(cc->distinct);
}

/*
 * Checks one constraint for a node: true when it passes. When it does
 * not and why is not NULL, *why says which constraint and why.
 */
static bool check(const struct hf_spec_constraint *c,
		  const struct con_counts *cc, const struct hf_place_node *node,
		  size_t nplaced, const char *first_value, char **why)
{
	const char *v = hf_place_field(node, c->field);
	const char *op = c->op;
	char *no = NULL;
	bool ok = true;

#define FAIL(...)                                                              \
	do {                                                                   \
		ok = false;                                                    \
		if (why)                                                       \
			no = hf_xasprintf(__VA_ARGS__);                        \
	} while (0)
	if (!v) {
		FAIL("it has no '%s' attribute (%s %s)", c->field, c->field, op);
	} else if (strcmp(op, "UNIQUE") == 0) {
		if (count_of(cc, v))
			FAIL("%s UNIQUE: an instance already runs where %s is "
			     "'%s'",
			     c->field, c->field, v);
	} else if (strcmp(op, "CLUSTER") == 0) {
		if (c->arg && strcmp(v, c->arg) != 0)
			FAIL("%s CLUSTER %s: its %s is '%s'", c->field, c->arg,
			     c->field, v);
		else if (!c->arg && nplaced && !same(first_value, v))
			FAIL("%s CLUSTER: the other instances run where %s is "
			     "'%s'",
			     c->field, c->field,
			     first_value ? first_value : "(none)");
	} else if (strcmp(op, "GROUP_BY") == 0) {
		/*
		 * Spread evenly over the values seen on usable nodes: a
		 * value may take one more instance only while no other
		 * value has fewer.
		 */
		size_t mine = count_of(cc, v);
		size_t want = c->arg ? (size_t)atol(c->arg) : 0;

		if (cc->ndistinct && cc->min_count < mine) {
			const char *o = NULL;

			for (size_t i = 0; !o && i < cc->ndistinct; i++)
				if (count_of(cc, cc->distinct[i]) < mine)
					o = cc->distinct[i];
			FAIL("%s GROUP_BY: '%s' already has %zu instance%s while "
			     "'%s' has fewer",
			     c->field, v, mine, mine == 1 ? "" : "s", o);
		} else if (want > cc->ndistinct && mine > 0 && nplaced < want) {
			FAIL("%s GROUP_BY %zu: only %zu value%s of %s %s "
			     "available",
			     c->field, want, cc->ndistinct,
			     cc->ndistinct == 1 ? "" : "s", c->field,
			     cc->ndistinct == 1 ? "is" : "are");
		}
	} else if (strcmp(op, "LIKE") == 0) {
		if (!like(v, c->arg ? c->arg : ""))
			FAIL("%s LIKE %s: its %s is '%s'", c->field, c->arg,
			     c->field, v);
	} else if (strcmp(op, "UNLIKE") == 0) {
		if (like(v, c->arg ? c->arg : ""))
			FAIL("%s UNLIKE %s: its %s is '%s'", c->field, c->arg,
			     c->field, v);
	} else if (strcmp(op, "MAX_PER") == 0) {
		size_t max = c->arg ? (size_t)atol(c->arg) : 0;
		size_t have = count_of(cc, v);

		if (have >= max)
			FAIL("%s MAX_PER %zu: '%s' already has %zu", c->field,
			     max, v, have);
	} else if (strcmp(op, "IS") == 0) {
		if (!c->arg || strcmp(v, c->arg) != 0)
			FAIL("%s IS %s: its %s is '%s'", c->field,
			     c->arg ? c->arg : "", c->field, v);
	} else if (strcmp(op, "IS_NOT") == 0) {
		if (c->arg && strcmp(v, c->arg) == 0)
			FAIL("%s IS_NOT %s", c->field, c->arg);
	}
#undef FAIL
	if (why)
		*why = no;
	return ok;
}

/* Nodes named one by one in a reason; the rest are counted. */
#define REASON_NODES 8

long hf_place_choose(const struct hf_spec_constraint *cons, size_t ncons,
		     const struct hf_place_node *nodes, size_t nnodes,
		     const size_t *placed, size_t nplaced, char **why)
{
	struct con_counts *cc = hf_xcalloc(ncons + 1, sizeof(*cc));
	const char **first = hf_xcalloc(ncons + 1, sizeof(*first));
	size_t *mine = hf_xcalloc(nnodes + 1, sizeof(*mine));
	long best = -1;

	*why = NULL;
	for (size_t k = 0; k < nplaced; k++)
		if (placed[k] < nnodes)
			mine[placed[k]]++;
	for (size_t k = 0; k < ncons; k++) {
		counts_init(&cc[k], &cons[k], nodes, nnodes, mine);
		first[k] = nplaced && placed[0] < nnodes
			       ? hf_place_field(&nodes[placed[0]], cons[k].field)
			       : NULL;
	}
	for (size_t i = 0; i < nnodes; i++) {
		bool ok = nodes[i].usable;

		for (size_t k = 0; ok && k < ncons; k++)
			ok = check(&cons[k], &cc[k], &nodes[i], nplaced, first[k],
				   NULL);
		if (!ok)
			continue;
		/* Spread: fewest of this pod, then fewest overall. */
		if (best < 0 || mine[i] < mine[best] ||
		    (mine[i] == mine[best] && nodes[i].load < nodes[best].load))
			best = (long)i;
	}
	if (best < 0) {
		/* Say why, node by node: the first few in full. */
		struct hf_buf reasons = HF_BUF_INIT;
		size_t named = 0;

		for (size_t i = 0; i < nnodes; i++) {
			char *no = NULL;

			if (named == REASON_NODES) {
				hf_buf_addf(&reasons, "; and %zu more node%s",
					    nnodes - i, nnodes - i == 1 ? "" : "s");
				break;
			}
			if (!nodes[i].usable)
				no = hf_xstrdup(nodes[i].unusable_why
						    ? nodes[i].unusable_why
						    : "it is not available");
			for (size_t k = 0; !no && k < ncons; k++)
				check(&cons[k], &cc[k], &nodes[i], nplaced,
				      first[k], &no);
			if (!no)
				continue;
			hf_buf_addf(&reasons, "%snode %s: %s",
				    reasons.len ? "; " : "", nodes[i].id, no);
			free(no);
			named++;
		}
		*why = reasons.len ? hf_buf_detach(&reasons)
				   : hf_xstrdup("no node has registered yet");
		hf_buf_release(&reasons);
	}
	for (size_t k = 0; k < ncons; k++)
		counts_release(&cc[k]);
	free(cc);
	free(first);
	free(mine);
	return best;
}
