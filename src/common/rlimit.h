/*
 * rlimit.h - the names of the resource limits (setrlimit(2)) a spec may set
 * on a task, as the SDK spells them ("RLIMIT_NOFILE"). One table for the
 * spec parser, which refuses an unknown name, and the agent and shim, which
 * apply the limits.
 */
#ifndef HF_COMMON_RLIMIT_H
#define HF_COMMON_RLIMIT_H

/* RLIMIT_* for a name such as "RLIMIT_NOFILE", -1 if unknown. */
int hf_rlimit_by_name(const char *name);
/* The name of an RLIMIT_* value, NULL if unknown. */
const char *hf_rlimit_name(int resource);

#endif
