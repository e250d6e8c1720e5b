/*
 * agent.h - one per node: registers with the server, reserves resources,
 * creates volumes and sandboxes, starts a shim per task, runs health and
 * readiness checks, and reports task status. Keeps a small local state so
 * it can reattach to its shims after a restart.
 *
 * Filled in by the single-machine runtime (issue 3).
 */
#ifndef HF_AGENT_AGENT_H
#define HF_AGENT_AGENT_H
#endif
