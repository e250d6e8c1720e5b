/*
 * shim.h - `holdfast shim`: one process per task, started by the agent. It
 * forks the task, owns its pipes, limits and exit status, and keeps running
 * when the agent dies, so a database never restarts with its agent.
 */
#ifndef HF_SHIM_SHIM_H
#define HF_SHIM_SHIM_H

int hf_shim_main(int argc, char **argv);

#endif
