/*
 * plan.h - the plan engine. Pure: from a plan's definition, what the server
 * observed of each step's tasks, and the operator's overrides, it computes
 * step, phase and plan statuses and which steps may act now. It does no
 * I/O, keeps no globals and never blocks; the server applies its answer.
 *
 * Statuses follow the DC/OS SDK (enum hf_status, model/model-t.h).
 */
#ifndef HF_PLAN_PLAN_H
#define HF_PLAN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "spec/spec.h"

/* enum hf_status and its names are the model's (model/model-t.h). */

/*
 * What the server knows of one task of a step, reduced to what decides
 * the step's status.
 */
enum hf_task_fact {
	HF_FACT_NONE,      /* not launched (or its last run does not count) */
	HF_FACT_STAGED,    /* launch recorded, not yet seen by the agent */
	HF_FACT_STARTING,  /* the agent is starting it */
	HF_FACT_RUNNING,   /* running, not ready yet */
	HF_FACT_DONE,      /* RUNNING and ready; FINISH/ONCE exited 0 */
	HF_FACT_BACKOFF,   /* failed; waiting before the next launch */
	HF_FACT_FAILED,    /* failed; may be relaunched now */
	HF_FACT_ERROR,     /* failed for good (deadline passed, refused) */
};

/* The observed status of a step from its tasks' facts. */
enum hf_status hf_plan_step_observe(const enum hf_task_fact *facts, size_t n);

/* Per-step input. */
struct hf_step_in {
	enum hf_status observed; /* from hf_plan_step_observe */
	bool completed;          /* seen COMPLETE during this run of the plan */
	bool force_complete;     /* operator's force-complete */
};

/* Operator overrides of one plan run. */
struct hf_plan_overrides {
	bool interrupted;             /* whole plan stopped/paused */
	const bool *phase_interrupted; /* per phase; may be NULL */
	const int *canary_continues;  /* per phase: `continue`s given; may be NULL */
};

struct hf_step_out {
	enum hf_status status;
	bool act; /* the server should work on this step now */
};

struct hf_phase_out {
	enum hf_status status;
};

/*
 * Evaluates one plan run. steps_in is the flattened list of all phases'
 * steps in order (phase 0's steps, then phase 1's, ...); steps_out and
 * phases_out have the same shapes. Returns the plan's status.
 */
enum hf_status hf_plan_eval(const struct hf_plan_def *def,
			    const struct hf_step_in *steps_in,
			    const struct hf_plan_overrides *ov,
			    struct hf_step_out *steps_out,
			    struct hf_phase_out *phases_out);

/* Aggregates child statuses as the SDK does (for phases and plans). */
enum hf_status hf_plan_aggregate(const enum hf_status *children, size_t n,
				 bool interrupted);

#endif
