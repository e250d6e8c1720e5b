/*
 * serve.h - `holdfast-volume serve DIR`: a node's replica server
 * (docs/design/volumes.md §3.7, §6), one per node with a storage pool:
 * the agent keeps it running on <data>/vserve (src/agent/vserve.c) and
 * writes its serve.json from the sync's replicas.
 *
 * DIR/serve.json (written atomically by its owner; unknown keys refused;
 * parsed by serveconf.h):
 *   pool      absolute path of the node's pool directory
 *   listen    "HOST:PORT", "HOST" (port 7446) or "[V6]:PORT": the
 *             numeric address to listen on (default "0.0.0.0:7446");
 *             port 0 picks a free one, reported in status.json
 *   volumes   the replicas this node serves: [{"id": volume id,
 *             "replica": replica id (both 1-64 letters, digits, '-' or
 *             '_'), "size": bytes (a multiple of 4096, >= 64 MiB),
 *             "key": K_vol as 64 hex digits, "name": the volume's name
 *             (optional, default the id), and the keys serveconf.h
 *             lists: "standby" (another site's DR stream writes it) and
 *             "group" (its consistency group: timed writes are spooled
 *             and applied up to the group's common mark, spool.h; a
 *             standby's promotion applies its group to that cut first)}]
 *
 * At start it locks DIR/serve.lock (one serve per DIR: a second exits 3),
 * opens every replica at <pool>/replicas/<id>/<replica>/{data,meta}
 * (replica.h: created sparse with a fresh meta when missing), listens
 * (TCP, TCP_NODELAY, one thread per connection) and writes DIR/status.json
 * atomically: {"state": "ready", "pid", "pool", "address", "port",
 * "replicas": n, "served": [{"id", "replica"}], "generation": g,
 * "message": null}, or
 * "failed" with a message (exit 1). served lists the replicas of the set
 * in use (never a key); generation counts the serve.json loads applied
 * (1 at start), so whoever rewrote serve.json sees its reload taken.
 *
 * SIGHUP reads serve.json again (its writer replaces it atomically, then
 * signals): replicas newly listed are opened (created as at start), a
 * replica listed before keeps its files and takes the key listed now, and
 * a replica no longer listed leaves the set at once (no HELLO finds it),
 * its connections are shut down and waited for (3 s at most: one still
 * closing keeps its files open until exit), then it is synced and closed.
 * Then status.json is written again with generation + 1; a replica that
 * cannot be opened is left out and named in its message. A file that
 * does not parse, or that changes "pool" or "listen" (only a restart
 * applies those), is not applied at all: the set stays, the generation
 * too, and the message says why. Neither ends the process.
 *
 * A connection starts with HELLO (wire.h) for one replica; serve checks
 * its proof against ticket.h's T (from the replica's K_vol and the
 * HELLO's volume id, header epoch and node id): a mismatch is an ERROR
 * (EACCES) and the connection closes. Epochs fence (§6.2): a HELLO at an
 * epoch below the replica's gets FENCED; one above raises the replica's
 * epoch in its meta (durably) before HELLO_OK. Then, in order, one answer
 * per request: WRITE (pwrite; WRITE_OK once pwritten, not durable), FLUSH
 * (fdatasync; FLUSH_OK), READ (READ_DATA), TRIM (a punched hole; TRIM_OK),
 * PING (PONG), BYE (closes), and SNAP, AL, MARK and SUMS (wire.h). Any
 * of them but PING and BYE at an epoch not the replica's current one
 * gets FENCED and the connection closes: an attachment superseded by a
 * newer HELLO is refused frame by frame. Other types get ERROR (EOPNOTSUPP). The
 * listener is plain TCP (the ticket proves the sender); the "dr"
 * listener is TLS with client certificates (tls.h) and takes standbys
 * only.
 *
 * SIGTERM or SIGINT: stop accepting, close the connections, fdatasync
 * every replica, write "stopped" and exit 0.
 */
#ifndef HF_VOLUME_SERVE_H
#define HF_VOLUME_SERVE_H

/* Runs serve mode on dir; returns the process's exit code (attach.h's). */
int hf_volume_serve_main(const char *dir);

#endif
