/*
 * plan.h - the plan engine (pure): from a service's plans, the persisted
 * state of its tasks and pod instances, and the operator's overrides, it
 * computes step, phase and plan statuses and the next actions (launch,
 * kill) for the server to apply. It performs no I/O.
 *
 * Filled in by the single-machine runtime (issue 3).
 */
#ifndef HF_PLAN_PLAN_H
#define HF_PLAN_PLAN_H
#endif
