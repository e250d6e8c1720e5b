/*
 * store.h - where the server keeps all cluster state: a key/value store with
 * revisions and multi-key transactions, with several backends behind one
 * interface.
 *
 * The model is etcd v3's, so that an etcd backend maps onto it one to one:
 *
 * Keys are non-empty strings without NUL bytes, at most HF_STORE_KEY_MAX
 * bytes, ordered bytewise (memcmp order, shorter first on a tie). Their layout
 * is the server's business; by convention they are '/'-separated paths such as
 * "/services/<name>/config/<id>", so that a prefix names a subtree.
 *
 * Values are arbitrary bytes (NULs included), at most HF_STORE_VALUE_MAX.
 * Every value handed out is followed by a NUL byte that is not counted in its
 * length, so text values can be used as C strings directly.
 *
 * Revisions: the store has one revision counter. A transaction that changes
 * at least one key (any put, or a delete that removes something) moves the
 * store to exactly one new revision, current + 1, and every key it writes
 * gets that revision as its mod_rev. A transaction that changes nothing (only
 * compares, or deletes of absent keys) creates no revision, as in etcd.
 * Revisions never go back and are never reused, not even after a delete.
 * Clients may rely on "+1 per changing transaction" but not on the starting
 * value (0 here for a new store; etcd starts at 1).
 *
 * Per key the store keeps create_rev (the revision that created the current
 * incarnation of the key), mod_rev (the revision of its last put) and
 * version (puts since creation, 1 after the first). A deleted key is gone:
 * recreating it starts a new incarnation. An absent key compares as
 * mod_rev 0, which is why a mod_rev compare against 0 means "absent".
 *
 * Transactions: all compares are evaluated against the state before the
 * transaction; if every one holds, all operations apply atomically under one
 * new revision, otherwise nothing applies and the call returns HF_ECONFLICT.
 * As in etcd, a transaction may not put the same key twice nor put a key that
 * one of its deletes covers (HF_EINVAL), so the order of its operations never
 * matters. Any failure - a compare, an invalid transaction, an I/O error -
 * leaves the store exactly as it was.
 *
 * Durability: when hf_store_txn (or put/delete) returns 0, the change is on
 * stable storage for durable backends (SQLite: WAL with synchronous=FULL) and
 * survives kill -9 and power loss. The "mem:" backend keeps nothing. The
 * etcd backend returns once etcd has committed the transaction, that is
 * once a majority of its members has it on disk.
 *
 * Leases and leader election: see "Leases" below. Several servers share one
 * etcd store; one of them leads, holding a key put with a lease it keeps
 * alive, and fences every write with that key's mod_rev so that a deposed
 * leader's writes fail.
 *
 * Errors: functions return 0 or a negative HF_E* code (common/err.h); the
 * detail sentence is available from hf_store_last_error(). The module never
 * prints, logs or exits.
 *
 * Threads: a handle may be used from several threads at once; every call
 * holds the handle's mutex for its duration, so calls are serialised and each
 * sees a consistent state. The server is the only writer (one thread); HTTP
 * threads may read. A handle must not be used in a child after fork(); its
 * descriptors are close-on-exec, but a forked child that does not exec
 * keeps the SQLite file's lock (see hf_store_open) held while it lives.
 */
#ifndef HF_STORE_STORE_H
#define HF_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* Longest key accepted, in bytes. */
#define HF_STORE_KEY_MAX 4096
/*
 * Largest value accepted, in bytes: etcd's default request limit (1.5 MiB).
 * That limit bounds a whole etcd request (keys, values and framing), so an
 * etcd with its defaults refuses a value this large with HF_ETOOBIG; the
 * etcd that holdfast runs on is given a larger --max-request-bytes
 * (docs/store.md) so that what the embedded store accepts fits.
 */
#define HF_STORE_VALUE_MAX (1536 * 1024)

/* An open store; opaque. */
struct hf_store;

/* One key and its value, as returned by hf_store_list(). */
struct hf_store_kv {
	char *key;
	char *value; /* len bytes followed by a NUL not counted in len */
	size_t len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
};

/* The result of hf_store_list(); everything in it is owned by it. */
struct hf_store_kvs {
	struct hf_store_kv *items;
	size_t len, cap;
	int64_t rev; /* the store revision the list was read at */
	bool more;   /* the limit cut the list short */
};

/* Frees the contents of a list and empties it; safe on an empty list. */
void hf_store_kvs_release(struct hf_store_kvs *l);

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

/*
 * Opens the store named by url:
 *   "mem:"                    a new, empty in-memory store (tests)
 *   "sqlite:/abs/path.db"     an SQLite file (also "sqlite:///abs/path.db"
 *                             and "sqlite:relative/path.db")
 *   "/abs/path.db", "x.db"    a plain path: SQLite
 *   "etcd://host:port[,host:port...][?OPTIONS]"
 *                             an etcd v3 cluster (3.4 or newer), through
 *                             its JSON gateway over plain HTTP; port 2379
 *                             when left out
 *   "etcds://host:port[,host:port...][?OPTIONS]"
 *                             the same over HTTPS: the server's
 *                             certificate and host name are always
 *                             verified
 * etcd OPTIONS, '&'-separated, each at most once, %XX escapes allowed in
 * paths: timeout_ms=N, connect_timeout_ms=N; prefix=/PATH, a namespace
 * under which every key is kept in etcd (keys read back come without it;
 * revisions and leases stay etcd-wide); and for etcds:// only
 * cacert=FILE (the CAs to verify etcd with, instead of the system's),
 * cert=FILE and key=FILE (a client certificate and its key, both or
 * neither). The files must be readable at open (HF_ENOTFOUND when one is
 * missing); a misused option is HF_EINVAL naming it.
 * Any other "scheme:" prefix is HF_EINVAL; write "./a:b.db" for a file whose
 * name contains a colon.
 *
 * etcd: every call tries the endpoints in turn, starting with the one that
 * answered last, when one cannot be reached; each request may take
 * timeout_ms (default 5000), of which connect_timeout_ms (default 1000) to
 * connect. Opening reads the store revision, so an unreachable cluster is
 * HF_EUNAVAIL at once, with every endpoint and why it failed in
 * hf_store_last_error(NULL). A transaction whose request reached an
 * endpoint that then did not answer is not sent elsewhere (it may have been
 * applied): it fails with HF_EUNAVAIL saying its outcome is unknown.
 *
 * An SQLite file is created when missing, but its directory must exist
 * (HF_ENOTFOUND otherwise). Only one handle, in any process, may have a file
 * open: the handle holds an exclusive lock on "<path>.lock" for its life and
 * a second open fails with HF_EUNAVAIL ("in use by another holdfast server").
 * A file written by a newer holdfast (schema version unknown here) is
 * refused with HF_EUNSUPPORTED; a file that is not a holdfast store with
 * HF_EINVAL.
 *
 * On success *out is a handle the caller owns and frees with
 * hf_store_close(). On failure *out is NULL, nothing was created and
 * hf_store_last_error(NULL) tells why.
 */
int hf_store_open(const char *url, struct hf_store **out);

/* Closes a store and frees the handle; NULL is allowed. */
void hf_store_close(struct hf_store *s);

/*
 * A sentence describing the latest failure of a store call made by the
 * calling thread on s, or on hf_store_open() when s is NULL; "" when there
 * is none. The string is owned by the module, is per thread, and stays valid
 * until the calling thread's next store call.
 */
const char *hf_store_last_error(const struct hf_store *s);

/* The backend's name: "mem", "sqlite" or "etcd". Owned by the module. */
const char *hf_store_backend_name(const struct hf_store *s);
/*
 * The most operations a transaction should carry on this backend (etcd's
 * default --max-txn-ops is 128, compares included), or 0: no bound, one
 * transaction takes any number.
 */
size_t hf_store_txn_ops_max(const struct hf_store *s);

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/*
 * Reads one key. value, len and mod_rev may each be NULL when not wanted.
 * On success *value is a copy the caller frees (len bytes and a NUL).
 * Returns HF_ENOTFOUND when the key is absent, leaving the outputs untouched
 * on any failure.
 */
int hf_store_get(struct hf_store *s, const char *key, char **value,
		 size_t *len, int64_t *mod_rev);

/*
 * Lists the keys that start with prefix ("" for all), sorted by key, with
 * at most limit entries (0 for no limit; out->more says whether it cut the
 * list short). *out is initialised by the call - pass an empty or released
 * list - and on success the caller releases it with hf_store_kvs_release();
 * on failure it is left empty.
 */
int hf_store_list(struct hf_store *s, const char *prefix, size_t limit,
		  struct hf_store_kvs *out);

/* Stores the current revision of the store in *rev. */
int hf_store_revision(struct hf_store *s, int64_t *rev);

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

enum hf_store_cmp_kind {
	HF_STORE_CMP_ABSENT,  /* the key does not exist */
	HF_STORE_CMP_PRESENT, /* the key exists */
	HF_STORE_CMP_MOD_REV, /* the key's mod_rev is mod_rev (0: absent) */
};

struct hf_store_cmp {
	enum hf_store_cmp_kind kind;
	char *key;
	int64_t mod_rev;
};

enum hf_store_op_kind {
	HF_STORE_OP_PUT,           /* key = value, attached to lease if set */
	HF_STORE_OP_DELETE,        /* remove key if present */
	HF_STORE_OP_DELETE_PREFIX, /* remove every key starting with key */
};

struct hf_store_op {
	enum hf_store_op_kind kind;
	char *key; /* the prefix for HF_STORE_OP_DELETE_PREFIX */
	char *value; /* PUT only: len bytes and a NUL */
	size_t len;
	int64_t lease; /* PUT only: the lease to attach the key to, 0: none */
};

/*
 * A transaction under construction: compares, then operations. The builder
 * functions copy their arguments, so the caller's buffers may be reused at
 * once; they cannot fail (problems are reported by hf_store_txn()).
 */
struct hf_store_txn {
	HF_VEC(struct hf_store_cmp) cmps;
	HF_VEC(struct hf_store_op) ops;
};

#define HF_STORE_TXN_INIT {{NULL, 0, 0}, {NULL, 0, 0}}
void hf_store_txn_init(struct hf_store_txn *t);
/* Frees everything the transaction holds and leaves it empty for reuse. */
void hf_store_txn_release(struct hf_store_txn *t);

void hf_store_txn_cmp_absent(struct hf_store_txn *t, const char *key);
void hf_store_txn_cmp_present(struct hf_store_txn *t, const char *key);
void hf_store_txn_cmp_mod_rev(struct hf_store_txn *t, const char *key,
			      int64_t mod_rev);
void hf_store_txn_put(struct hf_store_txn *t, const char *key,
		      const void *value, size_t len);
/* As hf_store_txn_put() with a C string value. */
void hf_store_txn_puts(struct hf_store_txn *t, const char *key,
		       const char *value);
/*
 * As hf_store_txn_put(), and attaches the key to lease_id (from
 * hf_store_lease_grant()): the store deletes the key when the lease expires
 * or is revoked, unless a later put without this lease replaced it. The
 * transaction fails with HF_ENOTFOUND, applying nothing, when the lease has
 * expired or was revoked. lease_id 0 is a plain put.
 */
void hf_store_txn_put_lease(struct hf_store_txn *t, const char *key,
			    const void *value, size_t len, int64_t lease_id);
void hf_store_txn_delete(struct hf_store_txn *t, const char *key);
/* The prefix must not be empty: wiping the whole store takes "/" or so. */
void hf_store_txn_delete_prefix(struct hf_store_txn *t, const char *prefix);

/*
 * Runs a transaction as described at the top of this file. Returns 0 and
 * the store revision after it in *rev_out (may be NULL), HF_ECONFLICT when a
 * compare fails, HF_EINVAL for an invalid transaction (bad key, duplicate
 * put, put under a delete, empty delete prefix), HF_ETOOBIG for an oversized
 * key or value (or, with etcd, a transaction over the server's
 * --max-request-bytes or --max-txn-ops), HF_ENOTFOUND when a put's lease is
 * gone, or a backend error (HF_EIO, HF_EUNAVAIL, ...). On any failure the
 * store is unchanged, except that etcd's HF_EUNAVAIL for a transaction that
 * reached it without an answer leaves its outcome unknown. The transaction is only read; the caller still
 * owns and releases it.
 */
int hf_store_txn(struct hf_store *s, const struct hf_store_txn *txn,
		 int64_t *rev_out);

/* Unconditionally sets key to value (len bytes): a one-put transaction. */
int hf_store_put(struct hf_store *s, const char *key, const void *value,
		 size_t len, int64_t *rev_out);

/*
 * Deletes key: a transaction "key present, then delete it". Returns
 * HF_ENOTFOUND (and changes nothing) when the key is absent.
 */
int hf_store_delete(struct hf_store *s, const char *key, int64_t *rev_out);

/* ------------------------------------------------------------------ */
/* Leases and leader election                                           */

/*
 * A lease is a time to live that the store counts down for a client. Keys
 * put with it (hf_store_txn_put_lease) are deleted by the store, all in one
 * new revision, when it expires or is revoked. The client keeps it alive by
 * calling hf_store_lease_keepalive() well within its TTL (every third of
 * it, as etcd's own clients do).
 *
 * etcd: leases are the cluster's, shared by every client; expiry follows
 * the etcd leader's clock, and a TTL below etcd's minimum (1.5 election
 * timeouts, 2 s with etcd's defaults) is raised to it. Lease IDs are
 * etcd's.
 *
 * mem and sqlite: one process owns such a store, so there is no one to
 * elect and the leases are a single-process stand-in kept in the handle.
 * They expire when the handle is next called (every call first deletes the
 * keys of the leases whose deadline passed, on the monotonic clock), are
 * revoked when the handle is closed, and are lost in a crash: a key put with
 * a lease then stays in the SQLite file as a plain key, and the next owner
 * of the file should delete it. Lease IDs count up from 1 per handle.
 */

/*
 * Grants a lease of ttl_seconds (1 or more) and stores its ID (> 0) in
 * *lease_id. HF_EINVAL for a bad TTL.
 */
int hf_store_lease_grant(struct hf_store *s, int ttl_seconds,
			 int64_t *lease_id);

/*
 * Renews a lease for its full TTL; *ttl_left (may be NULL) gets the
 * seconds it now has. HF_ENOTFOUND when it has expired or was revoked:
 * its keys are gone, and whatever it stood for (leadership) is lost.
 */
int hf_store_lease_keepalive(struct hf_store *s, int64_t lease_id,
			     int *ttl_left);

/*
 * Revokes a lease at once, deleting its keys (a step-down). HF_ENOTFOUND
 * when it had already expired or been revoked.
 */
int hf_store_lease_revoke(struct hf_store *s, int64_t lease_id);

/*
 * Runs for leadership under key, atomically: if key is absent, puts
 * key = value attached to lease_id and *won is true; otherwise the key is
 * left alone and *won is false, unless it is already attached to lease_id
 * (we lead already: a repeated campaign is harmless), in which case *won is
 * true too. Either way *leader_value (may be NULL; the caller frees it)
 * gets the value of the key as it now is - the leader's - and
 * *leader_mod_rev (may be NULL) its mod_rev.
 *
 * The winner's leader_mod_rev is its fencing token: adding
 * hf_store_txn_cmp_mod_rev(txn, key, token) to every write makes the
 * writes of a deposed leader fail with HF_ECONFLICT once its lease has
 * expired (the key is deleted, and a new leader's put gives it a new
 * mod_rev, revisions never being reused).
 *
 * Returns 0 whether won or lost; HF_ENOTFOUND when lease_id has expired
 * or was revoked and the key is absent (with the key present the campaign
 * is lost either way: check the lease with hf_store_lease_keepalive());
 * HF_EINVAL for a bad key or lease; a backend error otherwise. The outputs
 * are untouched on failure.
 */
int hf_store_campaign(struct hf_store *s, const char *key, const char *value,
		      int64_t lease_id, bool *won, char **leader_value,
		      int64_t *leader_mod_rev);

/* ------------------------------------------------------------------ */
/* Counters (for /metrics)                                              */

struct hf_store_stats {
	uint64_t gets;      /* hf_store_get calls, found or not */
	uint64_t lists;     /* hf_store_list calls */
	uint64_t txns;      /* transactions that succeeded (puts, deletes too) */
	uint64_t conflicts; /* transactions refused by a compare */
	uint64_t errors;    /* calls failed for another reason than
			       not-found or conflict */
};

/* Copies the handle's counters into *out (a consistent snapshot). */
void hf_store_stats(struct hf_store *s, struct hf_store_stats *out);

/* ------------------------------------------------------------------ */
/* Backups                                                              */

/*
 * A consistent copy of the whole store at one revision, as the bytes of a
 * holdfast SQLite store file (any backend: an etcd store's keys are
 * copied too, in its namespace, without the prefix). SQLite copies its
 * pages with SQLite's online backup (revisions kept); the other backends
 * list every key in one read and write them into a new file (one
 * revision). Keys of leases are copied as plain keys. On success *data
 * (the caller frees it) holds *len bytes; the store is never written.
 */
int hf_store_snapshot(struct hf_store *s, char **data, size_t *len);

/*
 * hf_store_snapshot() into the file path, written atomically with mode
 * 0600 (path.new, fsync, rename, fsync of the directory). *keys (may be
 * NULL) gets the number of keys it holds. The file is a store of its own:
 * `sqlite:<path>` opens it.
 */
int hf_store_backup(struct hf_store *s, const char *path, size_t *keys);

/*
 * Reads a backup file (or any holdfast SQLite store file that no server
 * has open) without writing to it: its keys, sorted, into *out (released
 * by the caller with hf_store_kvs_release; out->rev is the file's
 * revision). The file must be a holdfast store of a schema this holdfast
 * knows and pass SQLite's integrity check. Errors name the file:
 * HF_ENOTFOUND, HF_EINVAL (not a holdfast store, damaged),
 * HF_EUNSUPPORTED (newer schema), HF_EIO.
 */
int hf_store_read_backup(const char *path, struct hf_store_kvs *out);

/*
 * Makes the store hold exactly the keys of backup (from
 * hf_store_read_backup), except skip_key (may be NULL), which is neither
 * copied nor kept: the key of a leader's lease, a plain key in a backup.
 * It puts every key of the backup and deletes every other key, in one
 * transaction when the backend takes it (always for mem and SQLite: the
 * restore is atomic). A backend that refuses so large a transaction
 * (etcd's --max-txn-ops, --max-request-bytes) gets several, the first of
 * which puts HF_STORE_RESTORE_KEY and the last deletes it, so that a
 * restore that did not finish can be told (a server refuses to load such
 * a store; run the restore again). Revisions go on from the store's (they
 * never go back); values are the backup's.
 *
 * With a backend that keeps leases (etcd), a store that holds skip_key
 * has a live leader: HF_ECONFLICT, nothing changed; stop the servers
 * first. (A single-process store is locked by its server, so it cannot be
 * opened to restore while one runs.) *changed (may be NULL) gets the
 * number of keys put and deleted.
 */
int hf_store_restore(struct hf_store *s, const struct hf_store_kvs *backup,
		     const char *skip_key, size_t *changed);

/* The mark of a restore in progress: see hf_store_restore(). */
#define HF_STORE_RESTORE_KEY "/restore-in-progress"

/* ------------------------------------------------------------------ */
/* Injected faults (tests and fault loops)                              */

/*
 * The environment variable hf_store_open() reads injected faults from;
 * see hf_store_set_fault() for its syntax. Unset or empty: none.
 */
#define HF_STORE_FAULT_ENV "HOLDFAST_STORE_FAULT"

/*
 * Replaces the handle's injected faults with those of spec (NULL or ""
 * clears them) and restarts its call counters. spec is rules separated by
 * ';', each a target then options separated by ',':
 *   writes=N | writes=N-M | writes=N-     the Nth write call (N to M, N
 *                                         and every later one; from 1)
 *   reads=N | reads=N-M | reads=N-        the same for read calls
 *   writes-while=PATH | reads-while=PATH  every write (read) call while
 *                                         the file PATH exists
 *   error=NAME    what the call fails with: an error name of common/err.h
 *                 ("io", "unavailable", "conflict", "not-found", ...) or
 *                 "full" (io, "database or disk is full"); default io
 *   applied       (writes) the call is made, then reported as failed: a
 *                 commit whose answer was lost
 * Write calls are every transaction (put and delete included), campaign,
 * and lease grant, keep-alive and revoke of a backend with leases of its
 * own (etcd), and the deletions that expire or revoke a single-process
 * lease; read calls are get, list, revision and snapshot (backup). A
 * failed call fails as a real one would, with hf_store_last_error()
 * saying it was injected and which call it was; it is counted in the
 * stats' errors. HF_EINVAL, with the handle's faults unchanged, for a
 * spec that does not parse.
 */
int hf_store_set_fault(struct hf_store *s, const char *spec);

/* ------------------------------------------------------------------ */
/* Backend interface: for store.c and the store_*.c backends only.      */

/*
 * A backend implements these on its own state (`be`). store.c validates
 * arguments and transactions, holds the handle's mutex around every call
 * (so a backend need not be thread-safe), keeps the counters and turns the
 * sentence a backend writes into err on failure into hf_store_last_error().
 * A backend's txn may assume a valid transaction: keys and values within
 * limits, no duplicate put, no put under a delete, no empty delete prefix.
 * get and list fill a zeroed struct hf_store_kv / initialised list.
 *
 * Leases are optional. A backend that keeps them (etcd) sets all of
 * lease_grant, lease_keepalive, lease_revoke and campaign, and its txn
 * attaches puts to op->lease. A backend that leaves them NULL (mem,
 * sqlite) gets store.c's single-process leases: its txn ignores op->lease,
 * and store.c records which keys belong to which lease and deletes them
 * through txn; its campaign is a txn then a get under the handle's mutex,
 * atomic because such a backend has one writer. campaign fills *leader
 * with the key as it is after the call (key, value, mod_rev at least).
 */
struct hf_store_backend {
	const char *name;
	size_t txn_ops_max; /* hf_store_txn_ops_max(); 0: no bound */
	int (*open)(const char *path, void **be, struct hf_buf *err);
	void (*close)(void *be);
	int (*get)(void *be, const char *key, struct hf_store_kv *out,
		   struct hf_buf *err);
	int (*list)(void *be, const char *prefix, size_t limit,
		    struct hf_store_kvs *out, struct hf_buf *err);
	int (*txn)(void *be, const struct hf_store_txn *txn, int64_t *rev_out,
		   struct hf_buf *err);
	int (*revision)(void *be, int64_t *rev, struct hf_buf *err);
	int (*lease_grant)(void *be, int ttl, int64_t *lease_id,
			   struct hf_buf *err);
	int (*lease_keepalive)(void *be, int64_t lease_id, int *ttl_left,
			       struct hf_buf *err);
	int (*lease_revoke)(void *be, int64_t lease_id, struct hf_buf *err);
	int (*campaign)(void *be, const char *key, const char *value,
			int64_t lease_id, bool *won, struct hf_store_kv *leader,
			struct hf_buf *err);
	/*
	 * Optional: a consistent copy of the store as the bytes of a store
	 * file (hf_store_snapshot) and the number of keys in it. Without it
	 * store.c lists every key and builds the file with
	 * hf_store_sqlite_image().
	 */
	int (*snapshot)(void *be, char **data, size_t *len, size_t *keys,
			struct hf_buf *err);
};

extern const struct hf_store_backend hf_store_backend_mem;
extern const struct hf_store_backend hf_store_backend_sqlite;
extern const struct hf_store_backend hf_store_backend_etcd;
/* etcds://: the etcd backend over TLS; its name is "etcd" too. */
extern const struct hf_store_backend hf_store_backend_etcds;

/*
 * Helpers shared by the backends. hf_store_prefix_end() computes the
 * smallest key greater than every key with the given prefix (etcd's
 * range_end): it returns a new string the caller frees, or NULL when there is
 * none (empty prefix, or a prefix of 0xff bytes only), meaning "to the end".
 */
char *hf_store_prefix_end(const char *prefix);
/* Frees the strings of one kv and zeroes it. */
void hf_store_kv_release(struct hf_store_kv *kv);
/*
 * Evaluates one compare against the key's current state (mod_rev 0 when
 * absent). Returns 0 when it holds, or HF_ECONFLICT with a sentence in err
 * naming the key and what was found, so every backend says the same.
 */
int hf_store_cmp_eval(const struct hf_store_cmp *c, int64_t mod_rev,
		      struct hf_buf *err);
/*
 * The bytes of a new holdfast SQLite store file holding exactly kvs (keys
 * sorted and unique, as a list gives them) at revision kvs->rev. The
 * caller frees *data.
 */
int hf_store_sqlite_image(const struct hf_store_kvs *kvs, char **data,
			  size_t *len, struct hf_buf *err);
/* hf_store_read_backup() without the store front's error reporting. */
int hf_store_sqlite_read_file(const char *path, struct hf_store_kvs *out,
			      struct hf_buf *err);

#endif
