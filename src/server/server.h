/*
 * server.h - the scheduler: owns cluster state in the store, runs the plan
 * engine, records each intent before acting, hands orders to agents and
 * reconciles with them after any restart.
 *
 * Filled in by the single-machine runtime (issue 3).
 */
#ifndef HF_SERVER_SERVER_H
#define HF_SERVER_SERVER_H
#endif
