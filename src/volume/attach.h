/*
 * attach.h - `holdfast-volume attach DIR`: one process per attached volume
 * (docs/design/volumes.md §3.7, §4). This first stage serves a volume
 * from its local replica only (repl=1): the network replicas, resync and
 * fencing of the design come with the wire protocol.
 *
 * DIR/attach.json (written atomically by the agent; unknown keys refused):
 *   volume    the volume's name ("hello-world-hello-0")
 *   id        the volume's id: 1-64 letters, digits, '-' or '_'
 *   epoch     the attachment's epoch, >= 1
 *   size      bytes, a multiple of 4096, at least 64 MiB
 *   replica   absolute path of the local replica's data file; created
 *             sparse at size when missing, refused when its size differs
 *   format    true: make an ext4 on the device once it is configured,
 *             unless the replica already holds one (a retried first
 *             attach never wipes data)
 *   uid, gid  owner of the file system's root when formatting (default 0)
 *
 * What it does, in order: locks DIR/attach.lock (one attach process per
 * DIR: a second exits 3), opens the replica, enters a private mount
 * namespace (before any thread: the FUSE mount is never seen by the node
 * or its tasks, and goes with the process), serves the replica as the one
 * file DIR/fuse/vol through FUSE (libfuse3 low-level API, direct I/O, no
 * writeback cache: a write is acknowledged only once it is in the
 * replica, a flush only once the replica is fdatasync'ed), configures a
 * free loop device over that file (direct I/O, 4096-byte blocks,
 * lo_file_name "hf:<id>:<epoch>", the identity the shim checks), formats
 * it when asked, and writes DIR/status.json:
 *
 *   {"state": "ready", "pid": n, "volume", "id", "epoch",
 *    "device": "/dev/loopN", "identity": "hf:<id>:<epoch>",
 *    "message": null}
 *
 * (atomically; "failed" with a message when any step failed, and then the
 * process exits 1). On SIGTERM or SIGINT it detaches: clears the loop
 * device once nothing holds it open (a mounted file system does: it waits,
 * saying so in status.json's message), waits until the device has let go
 * of the file, fdatasyncs the replica, unmounts FUSE, writes "detached"
 * and exits 0. Killed with -9 it leaves no mount (its namespace dies with
 * it); the loop device then fails every I/O until it is cleared, and the
 * replica holds every write that was acknowledged.
 */
#ifndef HF_VOLUME_ATTACH_H
#define HF_VOLUME_ATTACH_H

/* Exit codes of holdfast-volume. */
enum {
	HF_VOLUME_EXIT_OK = 0,
	HF_VOLUME_EXIT_FAIL = 1,     /* see status.json's message, stderr */
	HF_VOLUME_EXIT_USAGE = 2,
	HF_VOLUME_EXIT_LOCKED = 3,   /* another attach process has DIR */
};

/* Runs attach mode on dir; returns the process's exit code. */
int hf_volume_attach_main(const char *dir);

#endif
