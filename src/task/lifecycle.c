/*
 * lifecycle.c - the task lifecycle table (lifecycle.h) and the names of
 * its states.
 */
#include <stddef.h>
#include <string.h>

#include "task/lifecycle.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * One cell: the action and the next state of each side. A launch that
 * has ended ignores everything (reports are idempotent), and a running
 * one never goes back to starting (reports can arrive out of order).
 */
struct cell {
	enum hf_task_action act;
	enum hf_task_state next[2]; /* [HF_TASK_NODE], [HF_TASK_RECORD] */
};

#define ALL(a, s) {a, {s, s}}
#define SIDES(a, node, record) {a, {node, record}}

/*
 * How a live launch ends, by event, and how it restarts in place: the
 * same from every live state.
 */
#define ENDINGS                                                             \
	[HF_TEV_EXIT_OK] = SIDES(HF_TACT_END, HF_TS_EXITED, HF_TS_FINISHED), \
	[HF_TEV_EXIT_FAIL] = SIDES(HF_TACT_END, HF_TS_EXITED, HF_TS_FAILED), \
	[HF_TEV_STOPPED] = ALL(HF_TACT_END, HF_TS_KILLED),                   \
	[HF_TEV_FAILED_TO_START] =                                           \
	    SIDES(HF_TACT_END, HF_TS_FAILED_TO_START, HF_TS_FAILED),         \
	[HF_TEV_LOST] = ALL(HF_TACT_END, HF_TS_LOST),                        \
	[HF_TEV_RESTARTING] = ALL(HF_TACT_RESTART, HF_TS_STARTING)

static const struct cell table[HF_TS_COUNT][HF_TEV_COUNT] = {
    [HF_TS_STAGING] = {
	[HF_TEV_STARTING] = ALL(HF_TACT_START, HF_TS_STARTING),
	[HF_TEV_RUNNING] = ALL(HF_TACT_RUN, HF_TS_RUNNING),
	ENDINGS,
    },
    [HF_TS_STARTING] = {
	[HF_TEV_STARTING] = ALL(HF_TACT_UPDATE, HF_TS_STARTING),
	[HF_TEV_RUNNING] = ALL(HF_TACT_RUN, HF_TS_RUNNING),
	ENDINGS,
    },
    [HF_TS_RUNNING] = {
	/* An older line or report: never go back. */
	[HF_TEV_STARTING] = ALL(HF_TACT_IGNORE, HF_TS_RUNNING),
	[HF_TEV_RUNNING] = ALL(HF_TACT_UPDATE, HF_TS_RUNNING),
	ENDINGS,
    },
    /* The final rows are all IGNORE (filled in by hf_task_step). */
};

struct hf_task_step hf_task_step(enum hf_task_state s, enum hf_task_event ev,
				 enum hf_task_side side)
{
	struct hf_task_step st = {HF_TACT_IGNORE, s};

	if ((unsigned)s >= HF_TS_COUNT || (unsigned)ev >= HF_TEV_COUNT ||
	    (unsigned)side > HF_TASK_RECORD || hf_task_state_final(s))
		return st;
	st.act = table[s][ev].act;
	st.next = table[s][ev].next[side];
	return st;
}

enum hf_task_event hf_task_event_of(enum hf_task_state seen, bool exit_ok,
				    bool stop_ordered)
{
	switch (seen) {
	case HF_TS_STAGING:
	case HF_TS_STARTING:
		return HF_TEV_STARTING;
	case HF_TS_RUNNING:
		return HF_TEV_RUNNING;
	case HF_TS_EXITED:
		if (stop_ordered)
			return HF_TEV_STOPPED;
		return exit_ok ? HF_TEV_EXIT_OK : HF_TEV_EXIT_FAIL;
	case HF_TS_KILLED:
		/* Killed without being asked to: a failure. */
		return stop_ordered ? HF_TEV_STOPPED : HF_TEV_EXIT_FAIL;
	case HF_TS_FAILED_TO_START:
		return HF_TEV_FAILED_TO_START;
	default:
		return HF_TEV_LOST;
	}
}

bool hf_task_state_live(enum hf_task_state s)
{
	return s == HF_TS_STAGING || s == HF_TS_STARTING || s == HF_TS_RUNNING;
}

static const struct {
	const char *record, *wire;
} names[HF_TS_COUNT] = {
    [HF_TS_STAGING] = {"STAGING", "starting"},
    [HF_TS_STARTING] = {"STARTING", "starting"},
    [HF_TS_RUNNING] = {"RUNNING", "running"},
    [HF_TS_FINISHED] = {"FINISHED", NULL},
    [HF_TS_FAILED] = {"FAILED", NULL},
    [HF_TS_KILLED] = {"KILLED", "killed"},
    [HF_TS_LOST] = {"LOST", "lost"},
    [HF_TS_EXITED] = {"EXITED", "exited"},
    [HF_TS_FAILED_TO_START] = {"FAILED_TO_START", "failed-to-start"},
};

const char *hf_task_state_name(enum hf_task_state s)
{
	return (unsigned)s < HF_TS_COUNT ? names[s].record : "UNKNOWN";
}

bool hf_task_state_parse(const char *s, enum hf_task_state *out)
{
	for (size_t i = 0; s && i < ARRAY_LEN(names); i++)
		if (strcmp(names[i].record, s) == 0) {
			*out = (enum hf_task_state)i;
			return true;
		}
	return false;
}

const char *hf_task_state_wire(enum hf_task_state s)
{
	return (unsigned)s < HF_TS_COUNT && names[s].wire ? names[s].wire
							  : "unknown";
}

bool hf_task_state_from_wire(const char *s, enum hf_task_state *out)
{
	/* STAGING shares "starting" with STARTING: STARTING is first found. */
	for (size_t i = HF_TS_STARTING; s && i < ARRAY_LEN(names); i++)
		if (names[i].wire && strcmp(names[i].wire, s) == 0) {
			*out = (enum hf_task_state)i;
			return true;
		}
	return false;
}

double hf_task_backoff(unsigned failures, double base, double max,
		       double jitter)
{
	double d;

	if (failures <= 1)
		return 0;
	d = base;
	for (unsigned i = 2; i < failures && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	return d * (0.8 + 0.2 * jitter);
}
