/*
 * spawn.h - starting a child program the one way holdfast does it.
 *
 * Every signal is blocked around fork() (vfork() for a caller that asks
 * with share_memory), so no handler of the parent runs in the child; the
 * child resets every disposition and its mask, sets up its standard
 * descriptors and closes every other one, runs the caller's setup step
 * (entering a task's confinement, for instance), changes directory and
 * execs. A failure of any of these steps comes back to the
 * parent through a close-on-exec pipe as "cannot <step>: <errno text>", so
 * a bad command fails when it is started, never as a later exit 127.
 *
 * Any thread may call hf_spawn_start; the child only makes
 * async-signal-safe calls (the setup step must do the same). Every fork()
 * of holdfast is here: hf_spawn_start for a program, hf_spawn_fork for a
 * child that runs on in this one (tests/unit/test_layout.py checks).
 */
#ifndef HF_COMMON_SPAWN_H
#define HF_COMMON_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* What a child step that failed says: "cannot <what>: <strerror(err)>". */
#define HF_SPAWN_WHAT_MAX 200

/*
 * A setup step, run in the child after the descriptors are in place and
 * before chdir and exec. Returns 0, or an errno value with *what set to a
 * static sentence fragment ("enter the task's mount namespace").
 */
typedef int (*hf_spawn_setup_fn)(void *arg, const char **what);

struct hf_spawn {
	const char *path;          /* absolute path of the program */
	char *const *argv;
	char *const *envp;         /* NULL: an empty environment */
	const char *cwd;           /* NULL: the parent's */
	int in, out, err;          /* descriptors for 0, 1, 2; -1: /dev/null */
	bool new_session;          /* setsid(): its own session and group */
	bool new_group;            /* setpgid(0, 0) (ignored with a session) */
	hf_spawn_setup_fn setup;   /* NULL: none */
	void *setup_arg;
	/*
	 * Optional programs tried before path, in order, each with
	 * direct_argv (a shell command of plain words run without the
	 * shell): the first that execs wins. When none does, path runs as
	 * the fallback, so a shell given the same command says why, as it
	 * always would. A program that is not an executable format (ENOEXEC)
	 * goes straight to the fallback, which runs it as a script.
	 */
	char *const *direct;       /* NULL-terminated; NULL: none */
	char *const *direct_argv;
	/*
	 * vfork() instead of fork(): the child borrows the parent's memory
	 * until it execs (no page tables copied, no copy-on-write faults,
	 * nothing torn down at exec) while the calling thread waits. Only
	 * for a single-threaded caller whose setup step makes system calls
	 * alone (the shim); sanitizer builds fork all the same.
	 */
	bool share_memory;
};

/*
 * Starts sp's program. Returns 0 with *pid set once exec has succeeded,
 * or -1 with *err set to one sentence (the caller frees it) and no child
 * left behind (a child that failed before exec has been reaped). sp and
 * every string it points to are only read.
 */
int hf_spawn_start(const struct hf_spawn *sp, pid_t *pid, char **err);

/*
 * fork() for a child that goes on running this program instead of exec'ing
 * one (the shim detaching from the agent, a probe of what the kernel
 * allows): every signal is blocked around the fork, and the child resets
 * every disposition to the default before it restores the caller's mask,
 * so no handler of the parent runs in it. Returns as fork() does.
 */
pid_t hf_spawn_fork(void);

#endif
