/*
 * confine.h - what a task may see and do: its own mount namespace (built
 * by the shim when it starts the task), its user, its capabilities and
 * no_new_privs. The rules are in shim.h (ISOLATION); this is the code
 * that applies them, shared by the shim's task and the agent's health
 * and readiness checks and `task exec`, which join the task's namespace
 * and take on its identity, so they see and may do what the task sees
 * and may do.
 *
 * Two halves: hf_confine_prepare (and hf_confine_join) run before fork
 * and do everything that allocates or looks things up; hf_confine_apply
 * runs in the forked child and only makes system calls, so it is safe in
 * a child of a multi-threaded process.
 */
#ifndef HF_SHIM_CONFINE_H
#define HF_SHIM_CONFINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shim/shim.h"

struct hf_confine_ns; /* the prepared steps of a namespace build */

struct hf_confine {
	bool switch_user;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	bool limit_caps;    /* drop all capabilities but keep (needs root) */
	uint64_t keep;      /* HF_CAP_BIT()s kept */
	bool ambient;       /* keep is raised as ambient (a non-root user) */
	bool no_new_privs;
	int join_fd;        /* a mount namespace to enter; -1: none */
	struct hf_confine_ns *build; /* a namespace to build; NULL: none */
	char *cwd;          /* where the child starts; NULL: unchanged */
	char *cwd_what;     /* "enter the sandbox <path>" */
	/*
	 * The task's rlimits, for checks and exec (a copy; the shim sets
	 * the task's own, with messages of its own); nrlimits 0: none.
	 */
	struct hf_shim_rlimit *rlimits;
	size_t nrlimits;
};

/*
 * Works out l's confinement: resolves its user, the capabilities it
 * keeps, and (with build, for the shim starting the task) the steps of
 * its namespace. Returns 0, or -1 with *err set to one sentence (the
 * caller frees it): 'unknown user "x"', a user a non-root process cannot
 * switch to. *c is released by hf_confine_release either way.
 */
int hf_confine_prepare(struct hf_confine *c, const struct hf_shim_launch *l,
		       bool build, char **err);

/*
 * For a check or exec: arranges for the child to enter the mount
 * namespace of the task's process pid, provided it is still the one the
 * shim recorded (status.json's mnt_ns; a pid reused by another process
 * never matches). mnt_ns 0 (a task without a namespace of its own) joins
 * nothing. Returns 0, or -1 with *err set (the task has exited).
 */
int hf_confine_join(struct hf_confine *c, pid_t pid, uint64_t mnt_ns,
		    char **err);

/*
 * In the forked child: enters or builds the namespace, sets the rlimits,
 * drops capabilities, switches user, sets no_new_privs and changes to cwd. Returns 0, or an
 * errno value with *what set to the step that failed (for hf_spawn).
 * Only system calls: async-signal-safe.
 */
int hf_confine_apply(const struct hf_confine *c, const char **what);

void hf_confine_release(struct hf_confine *c);

/*
 * Whether tasks can have a mount namespace of their own on this node: a
 * child tries the first steps of a build (it needs root and the
 * capability to mount). Returns true, or false with *why set to a
 * sentence (the caller frees it). Forks: call it before starting threads.
 */
bool hf_confine_probe(char **why);

#endif
