/*
 * cgroup.h - the task's cgroup, v2 or v1, as the shim uses it: create with
 * limits, join from the forked child, kill everything in it, read the OOM
 * verdict, remove. See shim.h for the layout and the policy (a cgroup that
 * cannot be made is a note, not an error). hf_cgroup_probe is in shim.h.
 *
 * Single-threaded use by one shim; no globals.
 */
#ifndef HF_SHIM_CGROUP_H
#define HF_SHIM_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#define HF_CGROUP_MAX_FDS 2

struct hf_cgroup {
	int version;      /* 0: none (see note), 1 or 2 */
	char *path;       /* v2: the task cgroup; v1: its memory cgroup */
	char *cpu_path;   /* v1: its cpu cgroup, or NULL */
	char *note;       /* why cgroups are not used, or what is missing */
	/*
	 * cgroup.procs of each directory, opened before fork so the child
	 * joins with one write(2) (async-signal-safe); -1 when unused.
	 */
	int procs_fd[HF_CGROUP_MAX_FDS];
	/*
	 * The shim itself is in the cgroup (hf_cgroup_enter), so a restart's
	 * process is born there; home_fd are the cgroup.procs of where the
	 * shim was, to go back to before the cgroup is removed.
	 */
	bool self_in;
	int home_fd[HF_CGROUP_MAX_FDS];
};

void hf_cgroup_init(struct hf_cgroup *cg);

/*
 * Creates <root>/<parent>/<name> with the limits (cpus 0 and memory_bytes 0
 * mean none) and opens it for joining. Never fails: when cgroups cannot be
 * used, cg->version is 0 and cg->note says why. A stale, empty cgroup of
 * the same name is replaced; one that still has processes is not touched.
 */
void hf_cgroup_setup(struct hf_cgroup *cg, const char *parent,
		     const char *name, double cpus, int64_t memory_bytes);

/*
 * Moves the calling process into the cgroup. For the child between fork
 * and exec: only write(2). Returns 0 or an errno value.
 */
int hf_cgroup_join_self(const struct hf_cgroup *cg);

/* Closes the join descriptors (in the shim, once the child has joined). */
void hf_cgroup_close_fds(struct hf_cgroup *cg);

/*
 * Moves the calling shim into the cgroup, so that the processes it forks
 * from now on are born there. Moving a process into a cgroup waits for an
 * RCU grace period in the kernel (10-20 ms on an idle machine) while a
 * fork inherits its parent's cgroup for free: with the shim inside, a
 * restart in place pays nothing. The shim's own few hundred KB then count
 * in the task's memory, and hf_cgroup_kill_all spares the shim. Returns 0,
 * or an errno value with the shim where it was.
 */
int hf_cgroup_enter(struct hf_cgroup *cg);

/* Moves the shim back to where it was before hf_cgroup_enter (if it is in). */
void hf_cgroup_leave(struct hf_cgroup *cg);

/*
 * Sends SIGKILL to every process in the cgroup but the calling shim
 * (cgroup.kill on v2 when the kernel has it and the shim is not inside).
 * Returns how many processes were still listed, so the caller can repeat
 * until 0.
 */
int hf_cgroup_kill_all(const struct hf_cgroup *cg);

/* True when the cgroup's OOM killer has killed something in it. */
bool hf_cgroup_oom_killed(const struct hf_cgroup *cg);
/*
 * How many OOM kills the cgroup has seen (its oom_kill counter; where v1
 * has none, how often it hit its limit), or -1 when it cannot tell.
 */
long long hf_cgroup_oom_kills(const struct hf_cgroup *cg);

/*
 * Removes the task cgroup directories (retrying for up to a second while
 * dying processes leave), after taking the shim out (hf_cgroup_leave).
 * Returns 0 or an errno value; leaves the parents.
 */
int hf_cgroup_remove(struct hf_cgroup *cg);

/*
 * For a cgroup whose shim died: SIGKILLs everything in the cgroup at path
 * (a status.json "cgroup"; for v1 also its sibling under the cpu mount),
 * waits up to a second for them to die and removes the directories, as far
 * as it can (zombies nobody reaps keep a v1 cgroup busy).
 */
void hf_cgroup_destroy(const char *path);

/* Frees the strings and closes descriptors; does not remove anything. */
void hf_cgroup_release(struct hf_cgroup *cg);

#endif
