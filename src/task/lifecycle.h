/*
 * lifecycle.h - a task launch's life, one enum and one table for every
 * program that follows it: the shim (status.json), the agent (its task
 * table and its reports) and the server (task records), and the names the
 * wire and the store give each state.
 *
 * A launch is seen from two sides. The NODE side (shim, agent) sees a
 * process: it starts, runs, and exits with a code, is stopped on an order,
 * never starts, or disappears. The RECORD side (the server) sees what that
 * means for the service: an exit 0 finished, anything else failed. Both
 * sides feed the same events into the same table (hf_task_step); a cell
 * gives the action to take and the state each side moves to.
 *
 * Names: a state has a record name (the store, the operator API, events:
 * "RUNNING") and a wire name (status.json and agent reports, docs/
 * protocol.md: "running"). STAGING and STARTING are both "starting" on the
 * wire: an agent preparing a sandbox reports the task starting.
 *
 * Pure: no I/O, no allocation, no globals but constant tables.
 */
#ifndef HF_TASK_LIFECYCLE_H
#define HF_TASK_LIFECYCLE_H

#include <stdbool.h>

enum hf_task_state {
	/* Live states, seen by both sides. */
	HF_TS_STAGING,  /* recorded: the server wrote the launch, or the
			   agent is preparing its sandbox */
	HF_TS_STARTING, /* the shim is up; the task not confirmed running */
	HF_TS_RUNNING,
	/* Final states of a record (the server). */
	HF_TS_FINISHED, /* exited 0 on its own */
	HF_TS_FAILED,   /* exited non-zero, killed by a signal, or never
			   started */
	/* Final states of both sides. */
	HF_TS_KILLED,   /* stopped on an order */
	HF_TS_LOST,     /* gone without a status */
	/* Final states of the node side (shim, agent). */
	HF_TS_EXITED,   /* ended on its own; its exit code or signal says how */
	HF_TS_FAILED_TO_START, /* bad command, bad sandbox: never ran */
	HF_TS_COUNT
};

/* The events that move a launch: what its shim or its agent reports. */
enum hf_task_event {
	HF_TEV_STARTING,  /* the shim is up */
	HF_TEV_RUNNING,   /* the task runs */
	HF_TEV_EXIT_OK,   /* it exited 0 on its own */
	HF_TEV_EXIT_FAIL, /* it exited non-zero or by a signal, or (seen from
			     the server) was killed without being asked to */
	HF_TEV_STOPPED,   /* it ended after the stop this side ordered */
	HF_TEV_FAILED_TO_START,
	HF_TEV_LOST,      /* it is gone and left no status */
	/*
	 * Its process exited and its shim starts it again in place, within
	 * the same launch (RESTARTS in shim/shim.h): not an end. Seen when a
	 * status or report is further on than the last one
	 * (hf_task_restart_pos).
	 */
	HF_TEV_RESTARTING,
	HF_TEV_COUNT
};

/* What a cell asks of the side that applies it. */
enum hf_task_action {
	HF_TACT_IGNORE, /* nothing: a late report, or the launch has ended */
	HF_TACT_UPDATE, /* same state: take what the report says (pid,
			   readiness, health) */
	HF_TACT_START,  /* now starting */
	HF_TACT_RUN,    /* now running: the agent starts its checks, the
			   server notes when it started */
	HF_TACT_END,    /* ended: record how (exit, message); the agent
			   detaches its volumes, the server counts a failure
			   and backs off */
	HF_TACT_RESTART, /* its process exited and the launch goes on: the
			   agent stops its checks and forgets its readiness,
			   the server records the exit and the restart */
};

enum hf_task_side {
	HF_TASK_NODE,   /* shim and agent */
	HF_TASK_RECORD, /* the server */
};

struct hf_task_step {
	enum hf_task_action act;
	enum hf_task_state next; /* == the state given when nothing changes */
};

/*
 * The cell of the lifecycle table for a launch in state s that sees event
 * ev, on one side. Never fails: an out-of-range state or event is ignored.
 */
struct hf_task_step hf_task_step(enum hf_task_state s, enum hf_task_event ev,
				 enum hf_task_side side);

/*
 * The event a state seen on the wire (a shim status, an agent's report)
 * is for the side that sees it. exit_ok: it exited with code 0 and no
 * signal. stop_ordered: this side had asked it to stop (the agent sent the
 * stop before it ended; the server no longer wants it). A state the wire
 * never carries reads as LOST.
 */
enum hf_task_event hf_task_event_of(enum hf_task_state seen, bool exit_ok,
				    bool stop_ordered);

/*
 * Where a launch restarted in place stands: after `restarts` restarts,
 * running (or starting), or waiting out the backoff before the next one.
 * Positions only grow (2 * restarts, plus 1 in a backoff), so a status or
 * report at a lower position than the last one applied is older and
 * changes nothing, and one at a higher position means the process exited
 * meanwhile (HF_TEV_RESTARTING) whatever was missed in between.
 */
static inline unsigned long long hf_task_restart_pos(unsigned long long restarts,
						     bool backoff)
{
	return 2 * restarts + (backoff ? 1 : 0);
}

/* STAGING, STARTING and RUNNING: the launch may still run. */
bool hf_task_state_live(enum hf_task_state s);

static inline bool hf_task_state_final(enum hf_task_state s)
{
	return !hf_task_state_live(s);
}

/* "RUNNING": the record name; "UNKNOWN" out of range. Static storage. */
const char *hf_task_state_name(enum hf_task_state s);
/* The state with record name s; false when there is none. */
bool hf_task_state_parse(const char *s, enum hf_task_state *out);

/*
 * "running": the wire name (status.json, reports); "unknown" for a state
 * the wire never carries (FINISHED, FAILED). Static storage.
 */
const char *hf_task_state_wire(enum hf_task_state s);
/*
 * The state a wire name stands for ("starting" is STARTING); false for a
 * name the protocol does not have.
 */
bool hf_task_state_from_wire(const char *s, enum hf_task_state *out);

/*
 * Restart backoff: the wait in seconds before restart number `failures`
 * in a row of a task (1 for the first exit): 0 for the first, then base
 * doubling per exit up to max, times 0.8 + 0.2 * jitter (jitter in
 * [0, 1)). The server's recovery (plan/decide.c) and the shim's restarts
 * in place (shim/shim.c) both wait this long, so the policy the server
 * uses is handed down unchanged.
 */
double hf_task_backoff(unsigned failures, double base, double max,
		       double jitter);

#endif
