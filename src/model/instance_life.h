/*
 * instance_life.h - a pod instance's life, as one state and one table of
 * transitions (state x event -> next state), like task/lifecycle.h for a
 * launch.
 *
 *   ACTIVE            placed (or waiting to be): its tasks are kept at
 *                     their goal by the plans and recovery
 *   REPLACING         pod replace, or its node is gone: its tasks are
 *                     being stopped (or given up as LOST)
 *   REPLACE_DELETING  ... they stopped: its old volumes are being deleted
 *                     on its node; then it forgets node and ports and is
 *                     ACTIVE again, to be launched afresh
 *   DRAINING          scale-in: its pod's decommission task drains it
 *   DRAIN_FAILED      the drain failed for good: it waits for the operator
 *                     to force-complete its decommission step
 *   STOPPING          scale-in: its tasks are being stopped; then its
 *                     volumes go (or are kept) and so does its record
 *
 *   ACTIVE --REPLACE--> REPLACING --OLD_VOLUMES_DELETING--> REPLACE_DELETING
 *   REPLACING, REPLACE_DELETING --REPLACED--> ACTIVE
 *   ACTIVE --DECOMMISSION--> DRAINING --DRAINED, NO_DRAIN--> STOPPING
 *   DRAINING --DRAIN_FAILED--> DRAIN_FAILED --SKIP_DRAIN, NO_DRAIN--> STOPPING
 *   DRAINING --SKIP_DRAIN--> STOPPING
 *   DRAINING, DRAIN_FAILED, STOPPING --CANCEL--> ACTIVE
 *   DRAINING, DRAIN_FAILED, STOPPING --REPLACE--> REPLACING
 * Every other pair is refused: the state stays as it is.
 *
 * A replace wins over a scale-in under way: its node is gone (the drain
 * cannot finish there) or the operator asked; the instance comes back
 * ACTIVE and unplaced, and scale-in then removes it if it is still not
 * wanted.
 *
 * How the drain ended (enum hf_drain) is decided with the state: it is
 * what STOPPING does with the volumes (a drain that did not finish keeps
 * them). What is not a stage of this life stays a field of the instance:
 * `paused` (debug mode, whatever the state) and `replace_pending` (its
 * fresh volumes still wait for the pod's replace tasks, even across a
 * scale-in that was cancelled).
 *
 * Names: "ACTIVE" ... for states, "NONE" ... for drain outcomes, as the
 * store keeps them (model/codec.c). Pure: no I/O, no allocation.
 */
#ifndef HF_MODEL_INSTANCE_LIFE_H
#define HF_MODEL_INSTANCE_LIFE_H

#include <stdbool.h>

enum hf_instance_state {
	HF_IS_ACTIVE, /* the zero value: a new instance is ACTIVE */
	HF_IS_REPLACING,
	HF_IS_REPLACE_DELETING,
	HF_IS_DRAINING,
	HF_IS_DRAIN_FAILED,
	HF_IS_STOPPING,
	HF_IS_COUNT
};

/* How a scale-in's drain ended; NONE outside DRAIN_FAILED and STOPPING. */
enum hf_drain {
	HF_DRAIN_NONE,    /* no drain ran: no decommission task or no node */
	HF_DRAIN_DONE,    /* the decommission task finished */
	HF_DRAIN_FAILED,  /* it failed for good (whether or not the operator
			     then skipped it): the volumes are kept */
	HF_DRAIN_SKIPPED, /* the operator force-completed it first */
	HF_DRAIN_COUNT
};

enum hf_instance_event {
	HF_IEV_REPLACE,              /* pod replace, or its node is gone */
	HF_IEV_OLD_VOLUMES_DELETING, /* its tasks stopped; its old volumes'
					deletion is ordered */
	HF_IEV_REPLACED,             /* it forgot its node: launched afresh */
	HF_IEV_DECOMMISSION,         /* scale-in takes it */
	HF_IEV_DRAINED,              /* its decommission task finished */
	HF_IEV_NO_DRAIN,             /* there is no drain to run (no task in
					its spec, or no node) */
	HF_IEV_DRAIN_FAILED,         /* the drain failed too often */
	HF_IEV_SKIP_DRAIN,           /* the operator force-completed its
					decommission step */
	HF_IEV_CANCEL,               /* its pod's count was raised again */
	HF_IEV_COUNT
};

struct hf_instance_step {
	bool ok;                     /* false: refused, nothing changes */
	enum hf_instance_state next; /* == the state given when refused */
	enum hf_drain drain;         /* the drain outcome that goes with it */
};

/*
 * The cell for an instance in state s that sees event ev. Never fails: an
 * out-of-range state or event is refused.
 */
struct hf_instance_step hf_instance_step(enum hf_instance_state s,
					 enum hf_instance_event ev);

struct hf_instance;
/*
 * Moves in by ev (its state and drain outcome) as the table says. Returns
 * false, changing nothing, when the table refuses it.
 */
bool hf_instance_event(struct hf_instance *in, enum hf_instance_event ev);

/* REPLACING or REPLACE_DELETING. */
bool hf_instance_replacing(const struct hf_instance *in);
/* DRAINING, DRAIN_FAILED or STOPPING: a scale-in is under way. */
bool hf_instance_decommissioning(const struct hf_instance *in);

/* "REPLACING": static storage; "UNKNOWN" out of range. */
const char *hf_instance_state_name(enum hf_instance_state s);
bool hf_instance_state_parse(const char *s, enum hf_instance_state *out);
/* "SKIPPED": static storage; "UNKNOWN" out of range. */
const char *hf_drain_name(enum hf_drain d);
bool hf_drain_parse(const char *s, enum hf_drain *out);
/* "DECOMMISSION": for messages and tests. */
const char *hf_instance_event_name(enum hf_instance_event ev);

#endif
