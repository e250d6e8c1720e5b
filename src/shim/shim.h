/*
 * shim.h - holdfast-shim: one process per task, started by the agent. It
 * forks the task, owns its pipes, limits and exit status, and keeps running
 * when the agent dies, so a database never restarts with its agent.
 *
 * It is a program of its own (src/shim/main.c), linked with libc alone:
 * a node pays for it once per task, so it loads no library it does not
 * use, and reads and writes its JSON with shim/json.h. The release build
 * links it statically against musl (the Makefile): no dynamic loader at
 * its start, and none of glibc's 2 MB mapped into each shim. So its
 * sources keep to what musl 1.2.3 offers (common/sys.h for the system
 * calls it does not wrap). A task's `user` comes with its ids, which the
 * agent looked up through NSS (launch.json's ids): musl alone would read
 * only /etc/passwd and /etc/group, or nscd. The files of this
 * module that the agent alone uses (shim_client.c: formatting launch.json,
 * parsing a status, the client functions below) keep jansson and are not
 * linked into it; the Makefile's SHIM_SRCS lists what is.
 *
 * This header is the contract between the agent and the shim. The agent
 * should use the client functions at the bottom rather than speaking the
 * files and the socket by hand, but both are specified here.
 *
 * THE TASK DIRECTORY (TASKDIR), one per launch, private to the agent:
 *
 * Each file exists for crash safety or for the agent to reach the shim;
 * nothing else is written per launch.
 *
 *   launch.json  written by the agent (atomically, not fsync'd: see
 *                status.json) before it starts the
 *                shim; hf_shim_launch_write() does that. It is also the
 *                shim's lock: the shim holds an exclusive flock on it for
 *                its whole life (it exists before any shim can start and
 *                is never replaced), so hf_shim_alive() tells a live shim
 *                from a dead one without trusting a pid that may have
 *                been reused. Keys:
 *                  task_id        required; [A-Za-z0-9._:@+-], also the
 *                                 cgroup's name
 *                  cmd            required; run as /bin/sh -c cmd,
 *                                 or exec'd directly when it is plain
 *                                 words (the same outcome, one process
 *                                 creation fewer)
 *                  sandbox        required; absolute path of an existing
 *                                 directory: the task's cwd, and where its
 *                                 stdout/stderr files go
 *                  env            {"K": "V"}; the task's whole environment
 *                                 (nothing is inherited from the shim)
 *                  rlimits        [{"name": "RLIMIT_NOFILE", "soft": 1024,
 *                                 "hard": 4096}]; -1 means unlimited
 *                  cpus           CPU share for cpu.max / cfs_quota; 0 = none
 *                  memory_mb      memory limit; 0 = none
 *                  cgroup_parent  default "holdfast"; relative to the
 *                                 cgroup mount (v2) or each controller's
 *                                 mount (v1)
 *                  log_max_bytes  rotate stdout/stderr at this size;
 *                                 default 10 MiB; 0 = never rotate
 *                  log_keep       rotated files kept (stdout.1 is the
 *                                 newest); default 3; 0 = truncate instead
 *                  kill_grace_period  seconds between SIGTERM and SIGKILL
 *                                 on stop; default 5; may be fractional
 *                  user           null, or a user name to run the task as
 *                                 (needs a root shim; a non-root shim only
 *                                 accepts its own user)
 *                  ids            null, or {"uid": n, "gid": n, "groups":
 *                                 [n, ...]}: user's ids as the agent looked
 *                                 them up (its libc asks every source the
 *                                 node's nsswitch.conf names: LDAP, sssd,
 *                                 systemd). With them the shim does not
 *                                 look the user up; without them it reads
 *                                 /etc/passwd and /etc/group (or nscd) as
 *                                 musl does, so a user known only to
 *                                 another source is unknown to it.
 *                                 Only with user.
 *                  isolate        default false; true runs the task in a
 *                                 mount namespace of its own (ISOLATION
 *                                 below; needs a root shim)
 *                  mounts         [{"source": "/abs/dir", "target": "rel"}]
 *                                 directories bound at sandbox-relative
 *                                 targets inside that namespace (its
 *                                 volumes), in order; needs isolate. With
 *                                 "fstype": "ext4" the source is a file
 *                                 system image, mounted there through a
 *                                 loop device (VOLUME IMAGES)
 *                  hide           ["/abs/dir"]: covered by an empty,
 *                                 read-only tmpfs in that namespace (the
 *                                 sandbox itself stays visible); needs
 *                                 isolate
 *                  visible        ["/abs/path"]: files or directories under
 *                                 a hidden directory that stay visible,
 *                                 read-only (config files written next to
 *                                 the sandbox); needs isolate
 *                  capabilities   ["CAP_NET_ADMIN", ...]: capabilities the
 *                                 task gets beyond the default (ISOLATION)
 *                  privileged     default false; true keeps every
 *                                 capability, no_new_privs off, and the
 *                                 node's own /dev, /sys and /proc/sys
 *                  restart        null (the default: the shim ends with
 *                                 its task), or the policy of restarts in
 *                                 place (RESTARTS below):
 *                                 {"backoff_base": s (default 1),
 *                                  "backoff_max": s (60),
 *                                  "reset_after": s (120),
 *                                  "max": n (0 = no limit)}; the server's
 *                                 --backoff-base, --backoff-max and
 *                                 backoff reset, handed down as they are
 *                Unknown keys are errors, so typos fail loudly.
 *   status.json  written by the shim, atomically, at every state change
 *                (hf_write_file_replace(): x.new, then exchanged with
 *                status.json, so x.new keeps the previous status and no
 *                write frees an inode). Only a final state ("exited",
 *                "failed-to-start") is fsync'd with TASKDIR: after a
 *                power loss a live state means nothing (the task died
 *                with the machine) and a missing or older status reads
 *                as lost, but how a task ended must still be reported:
 *                  {"state": "starting"|"running"|"backoff"|"exited"|
 *                             "failed-to-start",
 *                   "task_id", "shim_pid", "pid", "pgid", "started_at",
 *                   "finished_at" (unix ms or null), "exit_code" (or null),
 *                   "signal" (number or null), "oom_killed": bool,
 *                   "stop_requested": bool, "cgroup": path or null,
 *                   "cgroup_note": sentence or null, "message": sentence
 *                   or null, "mnt_ns": the inode of the task's mount
 *                   namespace (with isolate) or null,
 *                   "restarts": restarts in place so far (0 without a
 *                   policy), "last_exit_code" and "last_signal" (of the
 *                   latest exit that was restarted, or null),
 *                   "last_exit_at", "last_restart_at" (unix ms or null),
 *                   "last_oom_killed" (that exit was the OOM killer's),
 *                   "restart_at": when the backoff ends (unix ms, or null
 *                   unless "backoff")}
 *                "exited" and "failed-to-start" are final and are written
 *                before the shim exits, so an agent that was down while the
 *                task ended still finds the exit status here. The first
 *                status ("starting") is written before the task is
 *                started and carries shim_pid, which is how a restarted
 *                agent learns the shim's pid (there is no pid file). A
 *                dead shim (its lock free) whose status.json still says
 *                "starting", "running" or "backoff" died without finishing
 *                (kill -9, a crash); its task's main process died with it
 *                (see PDEATHSIG below). The agent calls
 *                hf_shim_cleanup_lost() to kill what the task left and make
 *                the status final, and reports the task lost.
 *   shim.sock    the control socket (below): how the agent watches, stops
 *                and signals the task; present only while the shim runs.
 *   shim.log     the shim's own stderr once it has detached: it outlives
 *                the agent, so its messages have nowhere else to go.
 * Shims before holdfast-shim (`holdfast shim`) also wrote shim.pid and
 * locked shim.lock; hf_shim_alive() and hf_shim_cleanup_lost() honour
 * shim.lock still, for an agent upgraded while such shims run.
 *
 * A TASKDIR is used for one launch only: the shim refuses to start when
 * status.json already exists, or when another shim holds the lock. The
 * sandbox, however, may be reused by relaunches: the stdout/stderr files
 * there are appended to and keep rotating.
 *
 * STARTING A SHIM. Run as `holdfast-shim --dir TASKDIR`, the shim
 * validates launch.json, then forks: the child calls setsid() (its own
 * session and process group, so signals to the caller's group and the
 * caller's death do not reach it; it is reparented to init), writes
 * status "starting" with its pid, starts the task and writes status
 * "running" or "failed-to-start", and only then tells the first process,
 * which exits:
 *   0  the task is running;
 *   1  it failed to start, or launch.json is invalid: status.json says why
 *      (and the reason is also printed on stderr), or the TASKDIR is in use
 *      (nothing written; stderr says why);
 *   2  usage error.
 * The detached shim's parent is init, or the nearest
 * PR_SET_CHILD_SUBREAPER ancestor, which must reap exited shims. With
 * --foreground the shim does not fork or detach (for debugging and for
 * supervisors that want the shim as their direct child) and exits 0 when
 * the task has exited.
 *
 * The agent saves that fork (a launch costs one process less): it runs
 * `holdfast-shim --dir TASKDIR --ready-fd 3` with posix_spawn
 * (hf_shim_spawn() does it; the program is the holdfast-shim next to the
 * agent's own binary, hf_shim_bin_next_to()), fd 3 the write end of a
 * pipe. That shim does not fork: it calls setsid() itself, does all of the
 * above, and writes one byte to fd 3 where the first process would have
 * exited ('0' running, '1' failed to start); a pipe that closes without a
 * byte means it exited before starting anything. It stays the agent's
 * child: the agent reaps it when it exits (a pidfd in its poll); when the
 * agent exits first, it is reparented like a detached shim.
 *
 * THE TASK. Forked with every signal blocked (common/spawn.h); the child
 * resets all signal dispositions and its mask, calls setsid() (pgid =
 * pid), points stdin at /dev/null and stdout/stderr at pipes the shim
 * owns, sets PR_SET_PDEATHSIG=SIGKILL (the task's main process never
 * outlives its shim: an unowned database next to its relaunched successor
 * would corrupt its volume; the processes it started are left to
 * hf_shim_cleanup_lost), joins the cgroup, applies rlimits, builds its
 * mount namespace (with isolate), takes on its identity (ISOLATION),
 * chdir()s to the sandbox and execs /bin/sh -c cmd with exactly
 * launch.json's env. A failure of any of these steps (a bad sandbox, an
 * unknown user, a link where a volume goes) is reported back through a
 * close-on-exec pipe: the launch ends as "failed-to-start" with the step
 * and errno text in "message", never as a later exit. An rlimit above the
 * node's hard limit, which only CAP_SYS_RESOURCE could raise, fails before
 * the fork with the limit, the value asked and the node's limit. The shim
 * is a child subreaper, so descendants the task orphans are re-parented
 * to it.
 *
 * ISOLATION (shim/confine.h). With isolate, the task runs in a mount
 * namespace of its own, a slave of the node's (mounts the node makes later
 * appear in it; none of the task's appear in the node's): each `hide`
 * directory is covered by an empty read-only tmpfs, in which the sandbox
 * (and each `visible` path) is bound back at its own path; each `mounts`
 * entry is bound at its target below the sandbox, created if missing (as
 * the task's user) and refused if a symbolic link is on the way. Unless
 * privileged, the task also gets a private /dev (null, zero, full, random,
 * urandom, tty, a new devpts and its own /dev/shm), and /sys and
 * /proc/sys read-only. These mounts live and die with the namespace, so
 * none outlives the task. Identity: a root task (no `user`, or "root")
 * keeps only the default capability set (common/caps.h) plus
 * `capabilities`, in its bounding set too; a task run as another user
 * gets no capability but those in `capabilities` (as ambient ones); every
 * task but a privileged one has no_new_privs set, so no setuid program or
 * file capability gives it more. The namespace's inode is in status.json
 * ("mnt_ns"), for checks and exec to join (hf_confine_join).
 *
 * VOLUME IMAGES. A `mounts` entry with an fstype is a fixed-size volume:
 * an image file the agent made and formatted. In the task's namespace
 * the shim mounts it (nosuid, nodev, noatime) from the loop device that
 * already serves that image (its number is kept in "<source>.loop" and
 * checked against the device's backing inode), or else from a free loop
 * device it configures over it with autoclear and direct I/O. Looking up
 * and configuring happen under an exclusive flock of the image, so the
 * tasks of one pod always share one device and one file system (two
 * devices over one image would be two file systems writing one disk).
 * The device lives exactly as long as a mount of it does: when the last
 * task using it is gone, the kernel releases it; nothing is mounted in
 * the node's namespace.
 *
 * VOLUME DEVICES. A `mounts` entry with a device is a volume that
 * holdfast-volume attached on this node (src/volume/attach.h): the shim
 * opens the loop device, checks that its lo_file_name is exactly
 * `expect` (the volume's id and the attachment's epoch, so a device
 * number reused by another volume, or an older attachment of this one,
 * is never mounted: the start fails, saying so), and mounts ext4 from it
 * (nosuid, nodev, noatime; read-only with ro) in the task's namespace.
 * The tasks of a pod mount one device: one file system. Nothing is
 * mounted in the node's namespace; the device stays holdfast-volume's.
 *
 * LOGS. The shim copies the task's stdout/stderr to <sandbox>/stdout and
 * <sandbox>/stderr; when a file would exceed log_max_bytes it is rotated
 * (stdout -> stdout.1 -> ... -> stdout.<log_keep>, the oldest dropped). A
 * write error (disk full) drops that output but the pipes keep being
 * drained, so the task never blocks on its logs.
 *
 * CGROUPS. v2 (unified, <root>/cgroup.controllers exists): the task runs in
 * <root>/<cgroup_parent>/<task_id>, with +cpu +memory enabled in the
 * subtree_control of every level above it; the shim never puts a process in
 * an intermediate level (v2's "no internal processes" rule), and when a
 * level refuses (EBUSY, as a container's root may) the task runs without
 * cgroups. cpu.max = "<cpus*100000> 100000", memory.max = memory_mb MiB,
 * memory.swap.max = 0. v1 (memory and cpu controllers mounted at
 * <root>/memory and <root>/cpu): the same directory under each, with
 * memory.limit_in_bytes (and memsw when swap accounting is on),
 * cpu.cfs_period_us = 100000 and cpu.cfs_quota_us. The root is
 * /sys/fs/cgroup (the environment variable HOLDFAST_CGROUP_ROOT overrides it,
 * for tests). When cgroups are unusable (not mounted, read-only, not root,
 * refused) the task runs without them: "cgroup" is null and "cgroup_note"
 * says why (cgroup_note may also carry a partial problem, e.g. a missing
 * cpu controller, next to a non-null cgroup). "oom_killed" is true when the
 * task died of SIGKILL (or its shell exited 137, reporting a child's
 * SIGKILL) and the cgroup's oom_kill counter (memory.events in v2,
 * memory.oom_control in v1) is non-zero. The task cgroup is removed after
 * the task exits; an empty stale one of the same name is replaced.
 *
 * EXIT. When the task's main process exits, the shim SIGKILLs its process
 * group (before reaping it, so the pgid cannot have been reused), every
 * process left in its cgroup, and any re-parented descendant, so nothing
 * is orphaned; then, unless it restarts the task (RESTARTS), drains the
 * pipes (for at most two seconds), writes "exited", tells the watchers,
 * removes shim.sock and exits 0.
 *
 * RESTARTS. With a "restart" policy, when the task's main process exits for
 * any reason but a stop request (the socket's stop, or SIGTERM/SIGINT to
 * the shim), the shim kills what the task left (as at EXIT), copies what
 * its pipes hold to the logs, and starts the task again in place: the same
 * prepared plan (sandbox, cgroup, rlimits, user, capabilities, mount
 * namespace set-up), new pipes, the same log files. It counts exits in a
 * row (the count starts again once a process stayed up reset_after
 * seconds) and waits hf_task_backoff(count) (task/lifecycle.h) first: nothing for the first,
 * then backoff_base doubling up to backoff_max, with jitter; that is the
 * server's formula. While it waits the status is "backoff" (with
 * "restart_at"; "pid" is null); once the new process runs it is "running"
 * with the new pid and started_at, "restarts" one more, and the exit in
 * "last_exit_code"/"last_signal"/"last_exit_at", "last_oom_killed" true
 * when the cgroup's OOM killer ended it (exit_code, signal and
 * finished_at stay null until the launch ends). Each of these is written
 * to status.json (fsync'd) before the watchers hear of it, so an agent that
 * was down finds every restart. A stop request during the backoff ends the
 * launch at once; so does an exit beyond "max" in a row, or a restart
 * that fails (the message says why). The launch then ends as at EXIT:
 * "exited", with the last exit's code or signal. The cgroup's OOM counter
 * is read only then, and counts the whole launch. In hf_shim_status the
 * "backoff" state reads as STARTING with backoff set: live, not running.
 * Once the first start is reported, such a shim moves itself into the
 * task's cgroup (cgroup.h, hf_cgroup_enter): moving a process into a cgroup
 * waits for the kernel (an RCU grace period, 10-20 ms) while a fork is born
 * in its parent's, so restarts pay nothing for it. The shim (a few hundred
 * KB) then counts in the task's memory; killing the cgroup spares it; it
 * moves back to where it was before it removes the cgroup.
 *
 * SIGNALS TO THE SHIM. SIGTERM and SIGINT mean "stop" with the launch's
 * grace period. SIGHUP and SIGPIPE are ignored.
 *
 * THE CONTROL SOCKET. A unix stream socket TASKDIR/shim.sock (mode 0600).
 * If that path does not fit in sun_path (108 bytes), it is bound and
 * reached as "/proc/self/fd/<fd>/shim.sock" through an O_PATH descriptor of
 * TASKDIR, which names the same file without chdir() (thread-safe); the
 * client functions below do the same. Several clients may connect at once.
 * Requests and replies are JSON objects, one per line ('\n'):
 *   {"op":"status"}                  -> the status object, as in status.json
 *   {"op":"stop"} / {"op":"stop","grace":N}
 *                                     -> {"ok":true}; SIGTERM to the task's
 *      process group now, SIGKILL to the group and the cgroup N seconds later
 *      (default kill_grace_period; 0 kills at once). A later stop can only
 *      shorten the deadline. The exit itself is seen by watching.
 *   {"op":"signal","signal":"HUP"}   -> {"ok":true}; the signal (name, with
 *      or without SIG, or number) goes to the task's process group
 *      (refused while no process runs: after the exit, in a backoff).
 *   {"op":"watch"}                   -> the status object now and again
 *      after every change, until the shim exits and closes the connection.
 * Requests are read with shim/json.h (strict: a duplicate key or trailing
 * garbage is refused like any other bad request). Errors are answered
 * with {"ok":false,"error":"sentence"}; a line longer than 64 KiB closes
 * the connection.
 */
#ifndef HF_SHIM_SHIM_H
#define HF_SHIM_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "task/lifecycle.h"

/* The name of the shim's program, installed next to holdfast. */
#define HF_SHIM_BIN "holdfast-shim"
/*
 * The lock file of shims before holdfast-shim (`holdfast shim`, which
 * locked no launch.json): an agent upgraded while they run still honours
 * it.
 */
#define HF_SHIM_OLD_LOCK "shim.lock"

/*
 * `holdfast-shim --dir TASKDIR [--foreground]`: the shim's main (its
 * program is src/shim/main.c; the unit tests call it too).
 */
int hf_shim_main(int argc, char **argv);
struct hf_cmd;
/*
 * `holdfast shim`: kept for operators' scripts; it execs the holdfast-shim
 * next to the running binary with the same arguments (main.c's table).
 */
extern const struct hf_cmd hf_shim_cmd;

/* ---- launch.json ---------------------------------------------------- */

struct hf_shim_rlimit {
	int resource;         /* RLIMIT_* */
	int64_t soft, hard;   /* -1 = unlimited */
};

struct hf_shim_mount {
	char *source;         /* absolute directory (or image) on the node */
	char *target;         /* where in the sandbox (relative) */
	char *fstype;         /* NULL: bind source; "ext4": source is an
				 image of that file system (VOLUME IMAGES) */
	char *device;         /* instead of source: an attached volume's
				 loop device, "/dev/loopN" (VOLUME DEVICES) */
	char *expect;         /* the identity device must carry */
	bool ro;              /* device mounted read-only */
};

/* launch.json's "restart": the policy of restarts in place (RESTARTS). */
struct hf_shim_restart {
	bool on;              /* false: the shim ends with its task */
	double backoff_base;  /* seconds; the server's --backoff-base */
	double backoff_max;   /* seconds; the cap */
	double reset_after;   /* seconds up after which the count restarts */
	int64_t max;          /* restarts in a row; 0 = no limit */
};

struct hf_shim_launch {
	char *task_id;
	char *cmd;
	char *sandbox;
	struct hf_kvlist env;
	HF_VEC(struct hf_shim_rlimit) rlimits;
	double cpus;          /* 0 = no cpu limit */
	int64_t memory_mb;    /* 0 = no memory limit */
	char *cgroup_parent;  /* never NULL after init */
	int64_t log_max_bytes;
	int log_keep;
	double kill_grace_period;
	char *user;           /* NULL = the shim's own user */
	bool has_ids;         /* "ids": user's uid, gid and groups */
	uint32_t uid, gid;
	HF_VEC(uint32_t) groups;
	bool isolate;         /* a mount namespace of its own */
	HF_VEC(struct hf_shim_mount) mounts;
	struct hf_strlist hide, visible;
	uint64_t caps;        /* HF_CAP_BIT()s beyond the default */
	bool privileged;
	struct hf_shim_restart restart;
};

/* Sets the defaults listed above; every string but cgroup_parent NULL. */
void hf_shim_launch_init(struct hf_shim_launch *l);
void hf_shim_launch_release(struct hf_shim_launch *l);

/*
 * Parses and validates launch.json text into *l (which must be initialised;
 * it is released and re-filled). Returns 0, or HF_EPARSE / HF_EINVAL with
 * *errmsg set to one sentence naming the key at fault (the caller frees
 * it); on error *l holds only defaults.
 */
int hf_shim_launch_parse(const char *json, size_t len,
			 struct hf_shim_launch *l, char **errmsg);

/* Formats *l as launch.json text; the caller frees it. */
char *hf_shim_launch_format(const struct hf_shim_launch *l);

/* Writes TASKDIR/launch.json atomically. Returns 0 or HF_EIO (errno set). */
int hf_shim_launch_write(const char *taskdir, const struct hf_shim_launch *l);

/*
 * Checks l's rlimits against this process's hard limits, which only
 * CAP_SYS_RESOURCE may raise (the shim inherits the agent's). Returns 0,
 * or HF_EINVAL with *msg set to a sentence naming the limit, the value
 * asked and the node's limit (the caller frees it): retrying cannot help.
 */
int hf_shim_rlimits_check(const struct hf_shim_launch *l, char **msg);

/* ---- status --------------------------------------------------------- */

/*
 * A shim's status holds one of the task states of task/lifecycle.h:
 * HF_TS_STARTING, HF_TS_RUNNING, HF_TS_EXITED or HF_TS_FAILED_TO_START
 * (the last two final), written by their wire names; STARTING with
 * backoff set is written "backoff" (RESTARTS).
 */
struct hf_shim_status {
	enum hf_task_state state; /* one of the four above */
	char *task_id;
	pid_t shim_pid;         /* 0 when unknown */
	pid_t pid, pgid;        /* the task; 0 before it started */
	int64_t started_at;     /* unix ms; 0 = null */
	int64_t finished_at;    /* unix ms; 0 = null */
	bool has_exit_code;
	int exit_code;          /* valid when has_exit_code */
	int signal;             /* the signal that killed the task; 0 = null */
	bool oom_killed;
	bool stop_requested;
	char *cgroup;           /* NULL = null, likewise below */
	char *cgroup_note;
	char *message;
	uint64_t mnt_ns;        /* the task's mount namespace inode; 0 = null */
	/* Restarts in place (RESTARTS in the header comment). */
	bool backoff;           /* "backoff" on the wire; state is STARTING */
	unsigned restarts;      /* how many so far */
	bool has_last_exit_code;
	int last_exit_code;     /* the latest exit that was restarted */
	int last_signal;        /* 0 = null */
	int64_t last_exit_at;   /* unix ms; 0 = null */
	bool last_oom_killed;   /* the OOM killer ended that process */
	int64_t last_restart_at; /* unix ms; 0 = null */
	int64_t restart_at;     /* unix ms the backoff ends; 0 = null */
};

/*
 * A status owns its strings: every function below that fills one releases
 * what it held first; the caller releases it when done.
 */
void hf_shim_status_init(struct hf_shim_status *s);
void hf_shim_status_release(struct hf_shim_status *s);

/* Formats a status as one line of JSON without the '\n'; caller frees. */
char *hf_shim_status_format(const struct hf_shim_status *s);

/*
 * Parses status JSON into *s (released and re-filled). Returns 0 or
 * HF_EPARSE; on error *s is left initialised.
 */
int hf_shim_status_parse(const char *json, size_t len,
			 struct hf_shim_status *s);

/* ---- client functions for the agent ------------------------------- */

/*
 * The holdfast-shim next to holdfast_bin (the running binary, resolved):
 * "<dir of holdfast_bin>/holdfast-shim". The caller frees it.
 */
char *hf_shim_bin_next_to(const char *holdfast_bin);

/*
 * Whether shim_bin is an executable file: 0, or HF_ENOTFOUND / HF_EINVAL
 * / HF_EIO with *msg set to a sentence naming the path (caller frees).
 */
int hf_shim_bin_check(const char *shim_bin, char **msg);

/*
 * Starts `shim_bin --dir taskdir --ready-fd 3` with posix_spawn and waits
 * (at most ten seconds) for its byte, which comes once the shim has
 * started the task or failed to. The child gets default signal
 * dispositions, an empty signal mask, /dev/null on stdin, the pipe on fd
 * 3 and no other descriptor above 2. It is the caller's child: *shim_pid
 * receives its pid whenever it was started (whatever the result), and
 * the caller reaps it with waitpid(pid) once it exits.
 * Returns:
 *   0             status.json exists: "running", or "failed-to-start" (read
 *                 it; a shim that refused launch.json has exited, or is
 *                 exiting, with 1);
 *   HF_EEXISTS    TASKDIR already holds a status.json (use a fresh dir;
 *                 nothing started, *shim_pid 0);
 *   HF_EUNAVAIL   the shim did not finish starting in time (it may still;
 *                 watch status.json);
 *   HF_EIO        the binary could not be run (stderr says why, naming
 *                 it; *shim_pid 0), or the shim refused the TASKDIR
 *                 without writing a status (its stderr says why).
 * shim_pid may be NULL only for a caller that does not mind a zombie.
 */
int hf_shim_spawn(const char *taskdir, const char *shim_bin,
		  pid_t *shim_pid);

/*
 * Whether a shim holds the lock on TASKDIR/launch.json (or shim.lock, for
 * shims older than holdfast-shim): 1 yes, 0 no (never started, or exited
 * or died), or a negative HF_E* code. With status.json, this tells
 * an agent after its restart what to do: alive -> watch it; dead and final
 * status -> report it; dead and not final -> the task was lost.
 */
int hf_shim_alive(const char *taskdir);

/*
 * Cleans up after a shim that died without finishing (hf_shim_alive() is 0
 * and status.json is not final). Its task's main process died with it, but
 * the processes the task started may live on: this SIGKILLs every live
 * process in the task's session and cgroup, removes the cgroup, and writes
 * a final status.json: "exited" with exit_code and signal both null and a
 * message starting with "lost:". Holds the shim's lock meanwhile. Returns
 * 0 (also when the status was already final), HF_ECONFLICT when a shim is
 * alive, HF_ENOTFOUND when there is no status.json, HF_EIO.
 */
int hf_shim_cleanup_lost(const char *taskdir);

/*
 * Reads TASKDIR/status.json into *s (initialised by the caller). Returns 0,
 * HF_ENOTFOUND (no status yet), HF_EIO or HF_EPARSE.
 */
int hf_shim_status_read(const char *taskdir, struct hf_shim_status *s);

/*
 * Asks the running shim for its status over the socket. Same returns as
 * hf_shim_request below.
 */
int hf_shim_status_query(const char *taskdir, struct hf_shim_status *s);

/*
 * Stops the task: SIGTERM now, SIGKILL after grace_seconds (< 0: the
 * launch's kill_grace_period). Returns once the shim has acknowledged, not
 * once the task has exited (watch or poll the status for that). Returns 0,
 * HF_EUNAVAIL when no shim is listening (it has exited: read status.json),
 * HF_EINVAL when the shim refused the request, HF_EIO otherwise.
 */
int hf_shim_stop(const char *taskdir, double grace_seconds);

/* Sends a signal ("HUP", "SIGUSR1", "10") to the task's process group. */
int hf_shim_signal(const char *taskdir, const char *signal_name);

/*
 * Sends one request line (a JSON object without '\n') and reads one reply
 * line (at most five seconds). *reply (may be NULL) receives the reply
 * without its '\n', owned by the caller. Returns 0 (the shim answered; an
 * {"ok":false} answer returns HF_EINVAL with the reply still set),
 * HF_EUNAVAIL (nothing listens on shim.sock), HF_EIO.
 */
int hf_shim_request(const char *taskdir, const char *request, char **reply);

/*
 * Connects to the shim (the same path rules as the shim: a long TASKDIR is
 * reached through /proc/self/fd). Returns a connected, close-on-exec socket
 * or a negative HF_E* code (HF_EUNAVAIL when nothing listens).
 */
int hf_shim_connect(const char *taskdir);

/*
 * Opens a watch connection: *fd receives a non-blocking, close-on-exec
 * socket on which the shim sends the current status at once and then a
 * status line after every change; EOF means the shim has exited (its last
 * line was the final status, and status.json holds it too). Poll *fd for
 * POLLIN and call hf_shim_watch_read. Returns 0, HF_EUNAVAIL, HF_EIO.
 */
int hf_shim_watch_open(const char *taskdir, int *fd);

/*
 * Reads the next status line from a watch fd into *s (initialised by the
 * caller). The fd keeps no buffer in user space: complete lines are taken
 * from the socket with MSG_PEEK, so calling this after poll() is all that
 * is needed. Returns 0 with *s filled, HF_EUNAVAIL when no complete line
 * has arrived yet (poll again), HF_ENOTFOUND at EOF (the shim has gone;
 * close the fd), HF_EPARSE for a line that is not a status, HF_EIO.
 */
int hf_shim_watch_read(int fd, struct hf_shim_status *s);

/*
 * Describes cgroup availability on this machine, for the agent's startup
 * log and its node attributes: returns 2 (v2), 1 (v1) or 0 (tasks will run
 * without cgroups) and sets *description to one sentence (caller frees).
 */
int hf_cgroup_probe(char **description);

#endif
