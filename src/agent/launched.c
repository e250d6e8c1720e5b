/*
 * launched.c - the ids launched on this node. An id in the record is never
 * launched again: an agent that restarts, or a desired set that names a
 * task whose directory is gone, gets the task reported lost instead of a
 * second start. The record is in agent.json (state.c), written before any
 * shim of a batch starts.
 *
 * It is kept in launch order with a hash set beside it, so a launch costs
 * one lookup whatever the node's history. Without pruning it would hold
 * every id the node ever ran: on a node that runs for months with tasks
 * replaced now and then, agent.json (rewritten at each batch of launches)
 * would grow without end. An id goes once its task has left the node (the
 * server acknowledged it final and stopped listing it, and its directory
 * was removed after --sandbox-keep) and it was launched more than
 * --launched-keep ago (default 7 days): past that, only a server that lost
 * its state (a store restored from an old backup) could name it again,
 * and such a server's orders are new launches anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "common/util.h"

/* Any non-NULL value: the set stores presence. */
#define PRESENT ((void *)1)

bool ag_launched_has(const struct hf_agent *ag, const char *id)
{
	return hf_map_get(&ag->launched_set, id) != NULL;
}

void ag_launched_add(struct hf_agent *ag, const char *id, int64_t at)
{
	struct ag_launched *l;

	if (ag_launched_has(ag, id))
		return;
	l = HF_VEC_PUSH(&ag->launched);
	l->id = hf_xstrdup(id);
	l->at = at;
	/* The map's key is the entry's string, which never moves. */
	hf_map_put(&ag->launched_set, l->id, PRESENT);
}

void ag_launched_remove(struct hf_agent *ag, const char *id)
{
	if (!hf_map_del(&ag->launched_set, id))
		return;
	/* Recent ids are the ones taken back: search from the end. */
	for (size_t i = ag->launched.len; i-- > 0;) {
		if (strcmp(ag->launched.items[i].id, id) != 0)
			continue;
		free(ag->launched.items[i].id);
		memmove(&ag->launched.items[i], &ag->launched.items[i + 1],
			(ag->launched.len - i - 1) *
				sizeof(*ag->launched.items));
		ag->launched.len--;
		return;
	}
}

size_t ag_launched_prune(struct hf_agent *ag, int64_t now)
{
	int64_t cutoff = now - ag->opts->launched_keep_s * 1000;
	struct hf_map here = {0};
	size_t j = 0, dropped;

	/*
	 * Oldest first (ids recorded at start without a time got the time
	 * of that start): nothing to do while the oldest is recent.
	 */
	if (ag->launched.len == 0 || ag->launched.items[0].at >= cutoff)
		return 0;
	for (size_t i = 0; i < ag->tasks.len; i++)
		if (!ag->tasks.items[i]->removed)
			hf_map_put(&here, ag->tasks.items[i]->id, PRESENT);
	for (size_t i = 0; i < ag->launched.len; i++) {
		struct ag_launched *l = &ag->launched.items[i];

		if (l->at < cutoff && !hf_map_get(&here, l->id)) {
			hf_map_del(&ag->launched_set, l->id);
			free(l->id);
			continue;
		}
		ag->launched.items[j++] = *l;
	}
	hf_map_release(&here);
	dropped = ag->launched.len - j;
	ag->launched.len = j;
	return dropped;
}

void ag_launched_release(struct hf_agent *ag)
{
	for (size_t i = 0; i < ag->launched.len; i++)
		free(ag->launched.items[i].id);
	HF_VEC_FREE(&ag->launched);
	hf_map_release(&ag->launched_set);
}
