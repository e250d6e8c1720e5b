/*
 * attach.h - `holdfast-volume attach DIR`: one process per attached volume
 * (docs/design/volumes.md §3.7, §4): the volume served from its local
 * replica and/or remote ones (node servers, serve.h). Not yet here:
 * DIRTY frames (a bitmap that survives a failover), generation rotation,
 * the activity log, TLS.
 *
 * DIR/attach.json (written atomically by the agent; unknown keys refused):
 *   volume    the volume's name ("hello-world-hello-0")
 *   id        the volume's id: 1-64 letters, digits, '-' or '_'
 *   epoch     the attachment's epoch, >= 1
 *   size      bytes, a multiple of 4096, at least 64 MiB
 *   replica   absolute path of the local replica's data file; created
 *             sparse at size when missing, refused when its size differs;
 *             null on a node without a replica (storage-less: remotes only)
 *   remotes   optional: the remote replicas, [{"address": numeric IP,
 *             "port": the node server's, "replica": replica id, "node":
 *             its node's id, "resync": true for one out of date, below}]
 *             (at most 8)
 *   node      this node's id; needed with remotes (the ticket names it)
 *   ticket    with remotes, the attach ticket as 64 hex digits (ticket.h:
 *             HMAC-SHA256(K_vol, "attach" | id | epoch | node)); this is
 *             what the agent passes: the server hands the attaching
 *             node a ticket, never the volume's key (design §6.2)
 *   key       instead of ticket (tests, the benchmark): K_vol as 64 hex
 *             digits, from which the ticket is derived here
 *   fence     optional, with a local replica: {"address", "port",
 *             "replica": the local replica's id}, this node's replica
 *             server, told the attachment's epoch (HELLO with the
 *             ticket, then BYE) before anything is served, so that it
 *             refuses an older attachment's writes to this replica
 *             (FENCED); a server that knows a newer epoch fails the
 *             attach. Needs "node" and the ticket like remotes.
 *   isr_wait_ms  optional, 0-3600000 (default 0): how long writes wait,
 *             after a remote first failed, for it to leave the in-sync
 *             set (below); then they fail with EIO, as they do at once
 *             once the process is detaching
 *   resync_rate  optional, bytes per second >= 0 (default 0: no limit):
 *             how fast each copy to a resyncing remote reads and sends
 *   format    true: make an ext4 on the device once it is configured,
 *             unless the replica already holds one (a retried first
 *             attach never wipes data)
 *   uid, gid  owner of the file system's root when formatting (default 0)
 *   encryption_key  optional: an encrypted volume's data key, 128 hex
 *             digits (crypt.h). Every block is then AES-XTS encrypted
 *             before it reaches any replica and decrypted on its way
 *             back; an all-zero block of a replica reads as zeros. A
 *             volume whose written first block does not decrypt to an
 *             ext4 with it fails the attach (a wrong key), and is never
 *             formatted over. The key is never repeated in a message.
 *
 * What it does, in order: locks DIR/attach.lock (one attach process per
 * DIR: a second exits 3), enters a private mount namespace (before any
 * thread: the FUSE mount is never seen by the node or its tasks, and goes
 * with the process), opens the local replica, says HELLO to every remote
 * at the epoch with the ticket (a replica that refuses the ticket or has
 * seen a newer epoch, FENCED, fails the attach with its reason in
 * status.json; one at an older epoch records ours first), serves the
 * volume as the one
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
 * process exits 1).
 *
 * With remotes, each FUSE write is sent as WRITE to every remote
 * (pipelined on one TCP connection per remote), pwritten to the local
 * replica meanwhile, and answered once every remote acknowledged it; a
 * flush (FUSE fsync) sends FLUSH to every remote, fdatasyncs the local
 * replica meanwhile, and returns 0 only when every remote answered
 * FLUSH_OK. Reads come from the local replica, else from a remote;
 * discards go to every replica as TRIM. Writes and discards must be
 * 4096-aligned (the loop device's blocks are). The kernel serialises
 * direct writes to the one file, so overlapping writes never race.
 *
 * A remote that fails - its connection breaks, it answers ERROR, or it
 * does not answer within 3 s - is not written again; the requests it
 * failed, and every later write and flush, wait (up to isr_wait_ms, then
 * EIO) until it left the in-sync set: status.json (still "ready") says
 * why in its message and asks for that with "isr_drop": [its replica
 * id] and "isr_why"; the agent relays the request to the server, which
 * takes the replica out (as its min_sync policy allows: docs/design/
 * volumes.md §7.3) and lists the attachment without it; the agent
 * rewrites attach.json (same epoch, fewer remotes) and sends SIGHUP,
 * and the waiting writes are acknowledged (they are on every replica
 * still in sync). A remote that answers FENCED (a newer attachment
 * exists) fails that request and every later write and flush with EIO
 * at once: this attachment is superseded.
 *
 * RESYNC. A remote marked "resync" (in attach.json at start, or one a
 * SIGHUP's attach.json adds) is out of date: it gets every new write like
 * the others, and a thread copies to it meanwhile, in runs of at most
 * 1 MiB (zeros as TRIM, so a returning replica's extra bytes go too),
 * each under a lock a write to it waits for, so the copy never carries
 * older bytes over newer ones; then a FLUSH. What it copies: for a
 * replica this process knew in sync, of the same data generation
 * (HELLO_OK), the 4 KiB regions written while no slot of it took the
 * write (status.json's "missed": [{"replica", "bytes"}], kept in
 * DIR/missed-<replica> for a process started again at the same epoch,
 * which asks to drop a replica attach.json lists in sync if it kept that
 * it missed writes); else the whole volume, at most "resync_rate" bytes a second. Its failure
 * holds no write (it is not in sync): it is reported in "isr_drop". Done,
 * status.json lists it in "resynced" (and "resync": [{"replica", "done",
 * "total"}] while copying; "resync_sent" and "resync_planned": bytes
 * written by copies and what they set out to send; "written" and
 * "replicated": bytes the task wrote, and live writes sent to remotes;
 * "write_us": writes per latency bucket (volume.h's bounds), with
 * "write_us_sum";
 * refreshed once a second while they move), the
 * server marks it in sync, and from then on it is an ordinary remote.
 *
 * SIGHUP re-reads attach.json for the in-sync set (above) and remotes to
 * resync; anything else in it that changed is ignored (a new epoch is a
 * new process).
 *
 * On SIGTERM or SIGINT it detaches: clears the loop
 * device once nothing holds it open (a mounted file system does: it waits,
 * saying so in status.json's message), waits until the device has let go
 * of the file, flushes every replica (as a FUSE fsync does; a failure is
 * "failed" and exit 1), unmounts FUSE, says BYE to the remotes, writes
 * "detached" and exits 0. Killed with -9 it leaves no mount (its namespace dies with
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
