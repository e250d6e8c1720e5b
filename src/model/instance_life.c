/*
 * instance_life.c - a pod instance's lifecycle table (instance_life.h) and
 * the names of its states.
 */
#include <stddef.h>
#include <string.h>

#include "model/instance_life.h"
#include "model/model-t.h"

/* A cell: zero (refused) unless the table below fills it in. */
struct cell {
	bool ok;
	enum hf_instance_state next;
	enum hf_drain drain;
};

#define TO(s) {true, s, HF_DRAIN_NONE}
#define TO_DRAIN(s, d) {true, s, d}

/* What every stage of a scale-in does with a replace or a cancel. */
#define SCALE_IN_EXITS                                                      \
	[HF_IEV_REPLACE] = TO(HF_IS_REPLACING),                             \
	[HF_IEV_CANCEL] = TO(HF_IS_ACTIVE)

static const struct cell table[HF_IS_COUNT][HF_IEV_COUNT] = {
    [HF_IS_ACTIVE] = {
	[HF_IEV_REPLACE] = TO(HF_IS_REPLACING),
	[HF_IEV_DECOMMISSION] = TO(HF_IS_DRAINING),
    },
    [HF_IS_REPLACING] = {
	[HF_IEV_OLD_VOLUMES_DELETING] = TO(HF_IS_REPLACE_DELETING),
	/* Its node is gone with its volumes: nothing to delete there. */
	[HF_IEV_REPLACED] = TO(HF_IS_ACTIVE),
    },
    [HF_IS_REPLACE_DELETING] = {
	[HF_IEV_REPLACED] = TO(HF_IS_ACTIVE),
    },
    [HF_IS_DRAINING] = {
	[HF_IEV_DRAINED] = TO_DRAIN(HF_IS_STOPPING, HF_DRAIN_DONE),
	[HF_IEV_NO_DRAIN] = TO_DRAIN(HF_IS_STOPPING, HF_DRAIN_NONE),
	[HF_IEV_DRAIN_FAILED] = TO_DRAIN(HF_IS_DRAIN_FAILED, HF_DRAIN_FAILED),
	[HF_IEV_SKIP_DRAIN] = TO_DRAIN(HF_IS_STOPPING, HF_DRAIN_SKIPPED),
	SCALE_IN_EXITS,
    },
    [HF_IS_DRAIN_FAILED] = {
	/* The operator gave up on the drain: it goes, its volumes kept. */
	[HF_IEV_SKIP_DRAIN] = TO_DRAIN(HF_IS_STOPPING, HF_DRAIN_FAILED),
	/* Its spec no longer has a drain: likewise, without waiting. */
	[HF_IEV_NO_DRAIN] = TO_DRAIN(HF_IS_STOPPING, HF_DRAIN_FAILED),
	SCALE_IN_EXITS,
    },
    [HF_IS_STOPPING] = {
	SCALE_IN_EXITS,
    },
};

struct hf_instance_step hf_instance_step(enum hf_instance_state s,
					 enum hf_instance_event ev)
{
	struct hf_instance_step st = {false, s, HF_DRAIN_NONE};

	if ((unsigned)s >= HF_IS_COUNT || (unsigned)ev >= HF_IEV_COUNT ||
	    !table[s][ev].ok)
		return st;
	st.ok = true;
	st.next = table[s][ev].next;
	st.drain = table[s][ev].drain;
	return st;
}

bool hf_instance_event(struct hf_instance *in, enum hf_instance_event ev)
{
	struct hf_instance_step st = hf_instance_step(in->state, ev);

	if (!st.ok)
		return false;
	in->state = st.next;
	in->drain = st.drain;
	return true;
}

bool hf_instance_replacing(const struct hf_instance *in)
{
	return in->state == HF_IS_REPLACING ||
	       in->state == HF_IS_REPLACE_DELETING;
}

bool hf_instance_decommissioning(const struct hf_instance *in)
{
	return in->state == HF_IS_DRAINING || in->state == HF_IS_DRAIN_FAILED ||
	       in->state == HF_IS_STOPPING;
}

static const char *const state_names[HF_IS_COUNT] = {
    [HF_IS_ACTIVE] = "ACTIVE",
    [HF_IS_REPLACING] = "REPLACING",
    [HF_IS_REPLACE_DELETING] = "REPLACE_DELETING",
    [HF_IS_DRAINING] = "DRAINING",
    [HF_IS_DRAIN_FAILED] = "DRAIN_FAILED",
    [HF_IS_STOPPING] = "STOPPING",
};

static const char *const drain_names[HF_DRAIN_COUNT] = {
    [HF_DRAIN_NONE] = "NONE",
    [HF_DRAIN_DONE] = "DONE",
    [HF_DRAIN_FAILED] = "FAILED",
    [HF_DRAIN_SKIPPED] = "SKIPPED",
};

static const char *const event_names[HF_IEV_COUNT] = {
    [HF_IEV_REPLACE] = "REPLACE",
    [HF_IEV_OLD_VOLUMES_DELETING] = "OLD_VOLUMES_DELETING",
    [HF_IEV_REPLACED] = "REPLACED",
    [HF_IEV_DECOMMISSION] = "DECOMMISSION",
    [HF_IEV_DRAINED] = "DRAINED",
    [HF_IEV_NO_DRAIN] = "NO_DRAIN",
    [HF_IEV_DRAIN_FAILED] = "DRAIN_FAILED",
    [HF_IEV_SKIP_DRAIN] = "SKIP_DRAIN",
    [HF_IEV_CANCEL] = "CANCEL",
};

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
	return i < n ? names[i] : "UNKNOWN";
}

static bool parse_name(const char *const *names, size_t n, const char *s,
		       unsigned *out)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0) {
			*out = (unsigned)i;
			return true;
		}
	return false;
}

const char *hf_instance_state_name(enum hf_instance_state s)
{
	return name_of(state_names, HF_IS_COUNT, (unsigned)s);
}

bool hf_instance_state_parse(const char *s, enum hf_instance_state *out)
{
	unsigned i;

	if (!parse_name(state_names, HF_IS_COUNT, s, &i))
		return false;
	*out = (enum hf_instance_state)i;
	return true;
}

const char *hf_drain_name(enum hf_drain d)
{
	return name_of(drain_names, HF_DRAIN_COUNT, (unsigned)d);
}

bool hf_drain_parse(const char *s, enum hf_drain *out)
{
	unsigned i;

	if (!parse_name(drain_names, HF_DRAIN_COUNT, s, &i))
		return false;
	*out = (enum hf_drain)i;
	return true;
}

const char *hf_instance_event_name(enum hf_instance_event ev)
{
	return name_of(event_names, HF_IEV_COUNT, (unsigned)ev);
}
