/*
 * shim_int.h - what the shim and its client functions share beyond the
 * public contract in shim.h: where the control socket is and how long a
 * protocol line may be.
 */
#ifndef HF_SHIM_SHIM_INT_H
#define HF_SHIM_SHIM_INT_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#define HF_SHIM_SOCK "shim.sock"
#define HF_SHIM_MAX_LINE 65536

/*
 * Fills *sa with the address of TASKDIR/shim.sock. When that path does not
 * fit in sun_path, opens an O_PATH descriptor of TASKDIR into *dirfd and
 * uses "/proc/self/fd/<dirfd>/shim.sock", which names the same file as
 * long as the descriptor is open (the caller closes it after bind/connect);
 * otherwise *dirfd is -1. Returns the address length, or a negative HF_E*
 * code (HF_ENOTFOUND when TASKDIR cannot be opened).
 */
int hf_shim_sock_addr(const char *taskdir, struct sockaddr_un *sa,
		      int *dirfd);

/*
 * SIGKILLs every process (but the caller) whose parent is ppid, or, with
 * ppid 0, every live (not zombie) process of session sid. Returns how many
 * it found. A scan of /proc: what a child subreaper inherits, or what a
 * task's session started, has no other list.
 */
int hf_shim_kill_procs(pid_t ppid, pid_t sid);

#endif
