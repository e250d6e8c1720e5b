/*
 * engine.c - step, phase and plan statuses and strategies.
 */
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

enum hf_status hf_plan_step_observe(const enum hf_task_fact *facts, size_t n)
{
	bool all_done = true, any_error = false, any_backoff = false;
	bool any_progress = false;
	enum hf_status least = HF_STATUS_COMPLETE;

	for (size_t i = 0; i < n; i++) {
		enum hf_status s;

		switch (facts[i]) {
		case HF_FACT_DONE:
			continue;
		case HF_FACT_STAGED:
			s = HF_STATUS_PREPARED;
			any_progress = true;
			break;
		case HF_FACT_STARTING:
			s = HF_STATUS_STARTING;
			any_progress = true;
			break;
		case HF_FACT_RUNNING:
			s = HF_STATUS_STARTED;
			any_progress = true;
			break;
		case HF_FACT_BACKOFF:
			s = HF_STATUS_DELAYED;
			any_backoff = true;
			break;
		case HF_FACT_ERROR:
			s = HF_STATUS_ERROR;
			any_error = true;
			break;
		case HF_FACT_FAILED:
		case HF_FACT_NONE:
		default:
			s = HF_STATUS_PENDING;
			break;
		}
		all_done = false;
		/* The step is as far as its least advanced task. */
		if (s < least)
			least = s;
	}
	if (all_done)
		return HF_STATUS_COMPLETE;
	if (any_error)
		return HF_STATUS_ERROR;
	if (any_backoff)
		return HF_STATUS_DELAYED;
	if (least == HF_STATUS_PENDING && any_progress)
		return HF_STATUS_PREPARED;
	return least;
}

static bool in_progress(enum hf_status s)
{
	return s == HF_STATUS_PREPARED || s == HF_STATUS_STARTING ||
	       s == HF_STATUS_STARTED || s == HF_STATUS_IN_PROGRESS;
}

enum hf_status hf_plan_aggregate(const enum hf_status *c, size_t n,
				 bool interrupted)
{
	size_t complete = 0, pending = 0, waiting = 0;
	bool progress = false, delayed = false;

	for (size_t i = 0; i < n; i++) {
		if (c[i] == HF_STATUS_ERROR)
			return HF_STATUS_ERROR;
		if (c[i] == HF_STATUS_COMPLETE)
			complete++;
		else if (c[i] == HF_STATUS_PENDING)
			pending++;
		else if (c[i] == HF_STATUS_WAITING)
			waiting++;
		else if (c[i] == HF_STATUS_DELAYED)
			delayed = true;
		else if (in_progress(c[i]))
			progress = true;
	}
	if (complete == n)
		return HF_STATUS_COMPLETE;
	if (progress)
		return HF_STATUS_IN_PROGRESS;
	if (delayed)
		return HF_STATUS_DELAYED;
	if (interrupted || waiting + complete == n ||
	    (waiting > 0 && pending == 0))
		return HF_STATUS_WAITING;
	if (complete > 0 || waiting > 0)
		return HF_STATUS_IN_PROGRESS;
	return HF_STATUS_PENDING;
}

static bool done(const struct hf_step_out *o)
{
	return o->status == HF_STATUS_COMPLETE;
}

/*
 * Applies a phase's strategy to its steps (whose status is already set
 * from observations) and marks the ones that may act. may_start is false
 * while earlier phases of a serial plan are unfinished.
 */
static void phase_strategy(const struct hf_plan_phase_def *ph,
			   struct hf_step_out *out, bool may_start,
			   bool interrupted, int continues)
{
	size_t n = ph->steps.len;
	bool canary = ph->strategy == HF_STRATEGY_SERIAL_CANARY ||
		      ph->strategy == HF_STRATEGY_PARALLEL_CANARY;
	bool parallel = ph->strategy == HF_STRATEGY_PARALLEL ||
			ph->strategy == HF_STRATEGY_PARALLEL_CANARY;
	bool blocked = !may_start;

	for (size_t i = 0; i < n; i++) {
		struct hf_step_out *o = &out[i];
		/* A step already under way is always carried through. */
		bool started = o->status != HF_STATUS_PENDING &&
			       o->status != HF_STATUS_WAITING;

		if (done(o))
			continue;
		if (started) {
			o->act = o->status != HF_STATUS_ERROR;
			if (!parallel)
				blocked = true;
			continue;
		}
		/*
		 * Canary: the first step waits for one `continue`; the
		 * others wait until the first is complete and a second
		 * `continue` was given.
		 */
		if (canary && (continues < (i == 0 ? 1 : 2) ||
			       (i > 0 && !done(&out[0])))) {
			o->status = HF_STATUS_WAITING;
			if (!parallel)
				blocked = true;
			continue;
		}
		if (interrupted) {
			o->status = HF_STATUS_WAITING;
			continue;
		}
		if (blocked)
			continue;
		o->act = true;
		if (!parallel)
			blocked = true;
	}
}

enum hf_status hf_plan_eval(const struct hf_plan_def *def,
			    const struct hf_step_in *in,
			    const struct hf_plan_overrides *ov,
			    struct hf_step_out *out, struct hf_phase_out *phases)
{
	enum hf_status *tmp;
	size_t base = 0, maxn = 1;
	bool serial_block = false;
	bool parallel = def->strategy == HF_STRATEGY_PARALLEL ||
			def->strategy == HF_STRATEGY_PARALLEL_CANARY;
	enum hf_status *ph_status =
	    hf_xcalloc(def->phases.len ? def->phases.len : 1, sizeof(*ph_status));
	enum hf_status plan;

	for (size_t p = 0; p < def->phases.len; p++)
		if (def->phases.items[p].steps.len > maxn)
			maxn = def->phases.items[p].steps.len;
	tmp = hf_xcalloc(maxn, sizeof(*tmp));
	for (size_t p = 0; p < def->phases.len; p++) {
		const struct hf_plan_phase_def *ph = &def->phases.items[p];
		bool ph_int = ov->interrupted ||
			      (ov->phase_interrupted && ov->phase_interrupted[p]);
		int cont = ov->canary_continues ? ov->canary_continues[p] : 0;
		bool all_done = true;

		for (size_t s = 0; s < ph->steps.len; s++) {
			const struct hf_step_in *si = &in[base + s];
			struct hf_step_out *so = &out[base + s];

			so->act = false;
			if (si->completed || si->force_complete)
				so->status = HF_STATUS_COMPLETE;
			else if (si->observed == HF_STATUS_COMPLETE)
				so->status = HF_STATUS_COMPLETE;
			else
				so->status = si->observed;
			if (so->status != HF_STATUS_COMPLETE)
				all_done = false;
		}
		/* A serial plan starts a phase once the ones before are done. */
		phase_strategy(ph, &out[base], !serial_block, ph_int, cont);
		for (size_t s = 0; s < ph->steps.len; s++)
			tmp[s] = out[base + s].status;
		ph_status[p] = hf_plan_aggregate(tmp, ph->steps.len, ph_int);
		phases[p].status = ph_status[p];
		if (!parallel && !all_done)
			serial_block = true;
		base += ph->steps.len;
	}
	plan = hf_plan_aggregate(ph_status, def->phases.len, ov->interrupted);
	free(ph_status);
	free(tmp);
	return plan;
}
