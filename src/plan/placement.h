/*
 * placement.h - where a pod instance may run. Pure: from a pod's placement
 * constraints (the SDK's Marathon-style language), the candidate nodes and
 * where the pod's other instances already are, it says for every node
 * whether the instance may go there and, when not, which constraint stops
 * it; among the nodes that pass it prefers the least loaded (spread).
 */
#ifndef HF_PLAN_PLACEMENT_H
#define HF_PLAN_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "spec/spec.h"

struct hf_place_node {
	const char *id;
	const char *hostname;              /* falls back to id when NULL */
	const struct hf_kvlist *attributes; /* zone, region, rack, ... */
	size_t load;                       /* instances already on it (any pod) */
	bool usable;                       /* connected, not draining */
	const char *unusable_why;          /* when !usable */
	/*
	 * Unusable only because better nodes exist (a pod's data is on
	 * others: hf_decide_xvol_candidates); tried when none of those fits.
	 */
	bool fallback;
};

/*
 * Chooses a node for one more instance of a pod. `placed` holds, for every
 * other instance of the same pod type, the index into nodes where it runs.
 * Returns the chosen node's index, or -1 with *why (owned by the caller)
 * naming, for each node, the constraint or condition that ruled it out.
 */
long hf_place_choose(const struct hf_spec_constraint *cons, size_t ncons,
		     const struct hf_place_node *nodes, size_t nnodes,
		     const size_t *placed, size_t nplaced, char **why);

/* The value of a constraint field on a node (NULL when it has none). */
const char *hf_place_field(const struct hf_place_node *n, const char *field);

#endif
