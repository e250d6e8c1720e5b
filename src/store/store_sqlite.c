/*
 * store_sqlite.c - the embedded store backend: one SQLite file.
 *
 * Durability: the file runs in WAL mode with synchronous=FULL, so COMMIT
 * returns only after the transaction's WAL frames are fsync'ed: a committed
 * transaction survives kill -9 and power loss, and an interrupted one is
 * discarded by WAL recovery on the next open. Every transaction is one
 * BEGIN IMMEDIATE ... COMMIT, rolled back on any failure, so a failed
 * transaction changes nothing.
 *
 * Layout (schema version 1):
 *   meta(name, value)  'schema_version' and 'revision' (the store revision)
 *   kv(key, value, create_rev, mod_rev, version)
 * The file's application_id marks it as a holdfast store, so a stray SQLite
 * file is refused instead of being "migrated".
 *
 * Ownership: a handle takes an exclusive flock() on "<path>.lock" before it
 * touches the database and holds it until the database is closed, so only
 * one holdfast server ever writes a store file. The lock file is left in
 * place on close: removing it would let two openers lock two different
 * files of the same name.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/util.h"
#include "store/store.h"

/* "hfKV" in the database header marks a holdfast store file. */
#define SQL_APPLICATION_ID 0x68664b56
/* How long a statement waits for a lock held by another connection
 * (only external tools such as a backup can hold one). */
#define SQL_BUSY_TIMEOUT_MS 5000

/*
 * Migrations: migrations[v] takes a store from schema version v to v + 1.
 * Each runs in the open transaction together with the bump of
 * schema_version, so a crash mid-migration leaves the old version intact.
 * Never edit a released entry; append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE meta ("
	"  name TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE kv ("
	"  key TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL,"
	"  create_rev INTEGER NOT NULL,"
	"  mod_rev INTEGER NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  CHECK (create_rev > 0 AND mod_rev >= create_rev AND version > 0)"
	") WITHOUT ROWID;"
	"INSERT INTO meta (name, value) VALUES"
	"  ('schema_version', 0), ('revision', 0);",
};

/* The schema version this code writes and the newest it can read. */
#define SQL_SCHEMA_VERSION ((int64_t)HF_ARRAY_LEN(migrations))

/* Statements prepared once per handle. */
enum stmt_id {
	ST_BEGIN_WRITE,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GET_REV,
	ST_SET_REV,
	ST_GET,
	ST_MOD_REV,
	ST_LIST_RANGE,
	ST_LIST_FROM,
	ST_PUT,
	ST_DELETE,
	ST_DELETE_RANGE,
	ST_DELETE_FROM,
	ST_COUNT_
};

#define KV_COLUMNS "key, value, create_rev, mod_rev, version"

static const char *const stmt_sql[ST_COUNT_] = {
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN DEFERRED",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_GET_REV] = "SELECT value FROM meta WHERE name = 'revision'",
	[ST_SET_REV] = "UPDATE meta SET value = ?1 WHERE name = 'revision'",
	[ST_GET] = "SELECT " KV_COLUMNS " FROM kv WHERE key = ?1",
	[ST_MOD_REV] = "SELECT mod_rev FROM kv WHERE key = ?1",
	[ST_LIST_RANGE] = "SELECT " KV_COLUMNS " FROM kv"
			  " WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
	[ST_LIST_FROM] = "SELECT " KV_COLUMNS " FROM kv"
			 " WHERE key >= ?1 ORDER BY key LIMIT ?3",
	[ST_PUT] = "INSERT INTO kv (" KV_COLUMNS ")"
		   " VALUES (?1, ?2, ?3, ?3, 1)"
		   " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
		   " mod_rev = excluded.mod_rev, version = version + 1",
	[ST_DELETE] = "DELETE FROM kv WHERE key = ?1",
	[ST_DELETE_RANGE] = "DELETE FROM kv WHERE key >= ?1 AND key < ?2",
	[ST_DELETE_FROM] = "DELETE FROM kv WHERE key >= ?1",
};

struct store_sqlite {
	sqlite3 *db;
	char *path;
	int lock_fd;
	/*
	 * Set after an I/O error or corruption during a write. After a failed
	 * fsync the kernel may have dropped the dirty pages it could not write,
	 * so what SQLite's cache believes and what is on disk may differ; the
	 * only safe way on is to reopen, which recovers from the file itself.
	 */
	bool broken;
	int last_rc; /* SQLite's code for the latest failure, for `broken` */
	sqlite3_stmt *stmts[ST_COUNT_];
};

/* SQLite primary result codes and the holdfast errors they become. */
static const struct {
	int sqlite;
	int hf;
} rc_map[] = {
	{SQLITE_BUSY, HF_EUNAVAIL},   {SQLITE_LOCKED, HF_EUNAVAIL},
	{SQLITE_NOMEM, HF_ENOMEM},    {SQLITE_IOERR, HF_EIO},
	{SQLITE_FULL, HF_EIO},        {SQLITE_CORRUPT, HF_EIO},
	{SQLITE_CANTOPEN, HF_EIO},    {SQLITE_READONLY, HF_EIO},
	{SQLITE_PERM, HF_EIO},        {SQLITE_NOTADB, HF_EINVAL},
	{SQLITE_TOOBIG, HF_ETOOBIG},
};

static int map_rc(int rc)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(rc_map); i++)
		if (rc_map[i].sqlite == (rc & 0xff))
			return rc_map[i].hf;
	return HF_EINTERNAL;
}

/*
 * Turns a failed SQLite call into a holdfast error with a sentence naming
 * what was being done. Must be called before any other call on the
 * connection, which would replace SQLite's message.
 */
static int sql_fail(struct store_sqlite *q, int rc, const char *what,
		    struct hf_buf *err)
{
	q->last_rc = rc;
	hf_buf_addf(err, "%s in %s: %s", what, q->path,
		    q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
	/*
	 * What SQLite's cache holds may be what failed (a page read before
	 * the file was repaired or restored in place): the next call
	 * reconnects and reads the file afresh.
	 */
	if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_CORRUPT ||
	    (rc & 0xff) == SQLITE_NOTADB)
		q->broken = true;
	return map_rc(rc);
}

/* Runs a statement that returns no rows (or whose rows are not wanted). */
static int run(struct store_sqlite *q, sqlite3_stmt *st, const char *what,
	       struct hf_buf *err)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		rc = 0;
	else
		rc = sql_fail(q, rc, what, err);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Runs a cached statement without parameters. */
static int run_id(struct store_sqlite *q, enum stmt_id id, const char *what,
		  struct hf_buf *err)
{
	return run(q, q->stmts[id], what, err);
}

/* Runs SQL text (schema work at open; not worth caching). */
static int exec_sql(struct store_sqlite *q, const char *sql, const char *what,
		    struct hf_buf *err)
{
	int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_fail(q, rc, what, err);
}

/* Runs SQL text that yields one integer (pragmas, counts) into *out. */
static int query_int(struct store_sqlite *q, const char *sql, int64_t *out,
		     const char *what, struct hf_buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(q, rc, what, err);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		hf_buf_addf(err, "%s in %s: no result", what, q->path);
		rc = HF_EINVAL;
	} else {
		rc = sql_fail(q, rc, what, err);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Reads the store revision; must run inside a transaction to be current. */
static int get_rev(struct store_sqlite *q, int64_t *rev, struct hf_buf *err)
{
	sqlite3_stmt *st = q->stmts[ST_GET_REV];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*rev = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		hf_buf_addf(err, "%s has no revision row: the store is damaged",
			    q->path);
		rc = HF_EIO;
	} else {
		rc = sql_fail(q, rc, "could not read the revision", err);
	}
	sqlite3_reset(st);
	return rc;
}

static void bind_key(sqlite3_stmt *st, int idx, const char *key)
{
	sqlite3_bind_text(st, idx, key, (int)strlen(key), SQLITE_STATIC);
}

/* Copies the current row of a KV_COLUMNS statement into kv. */
static void read_kv(sqlite3_stmt *st, struct hf_store_kv *kv)
{
	const void *value = sqlite3_column_blob(st, 1);
	size_t len = (size_t)sqlite3_column_bytes(st, 1);

	kv->key = hf_xstrndup((const char *)sqlite3_column_text(st, 0),
			      (size_t)sqlite3_column_bytes(st, 0));
	kv->value = hf_xstrndup(value ? value : "", value ? len : 0);
	kv->len = value ? len : 0;
	kv->create_rev = sqlite3_column_int64(st, 2);
	kv->mod_rev = sqlite3_column_int64(st, 3);
	kv->version = sqlite3_column_int64(st, 4);
}

/*
 * Ends the open transaction, if any, without applying it. SQLite may have
 * rolled back by itself already (after an I/O error, for one). A failing
 * ROLLBACK marks the handle broken: the transaction was never committed,
 * so reopening recovers the state before it.
 */
static void rollback(struct store_sqlite *q)
{
	sqlite3_stmt *st = q->stmts[ST_ROLLBACK];

	if (sqlite3_get_autocommit(q->db))
		return;
	sqlite3_step(st);
	sqlite3_reset(st);
	/* Still in a transaction: the next BEGIN would fail; say why now. */
	if (!sqlite3_get_autocommit(q->db))
		q->broken = true;
}

static int connect_db(struct store_sqlite *q, bool *created,
		      struct hf_buf *err);
static void disconnect_db(struct store_sqlite *q);

/*
 * After an I/O error during a write, every call first reconnects to the
 * file (the lock stays held): SQLite then recovers from what is on disk,
 * as after a crash. Should that fail too (the disk still fails), the call
 * fails and the next one tries again.
 */
static int check_broken(struct store_sqlite *q, struct hf_buf *err)
{
	int rc;

	if (!q->broken)
		return 0;
	disconnect_db(q);
	rc = connect_db(q, NULL, err);
	if (rc) {
		disconnect_db(q);
		hf_buf_adds(err, " (reconnecting after an I/O error during a "
				 "write)");
		return rc;
	}
	q->broken = false;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                  */

/* Closes the connection, keeping the lock. */
static void disconnect_db(struct store_sqlite *q)
{
	for (int i = 0; i < ST_COUNT_; i++) {
		sqlite3_finalize(q->stmts[i]);
		q->stmts[i] = NULL;
	}
	/* Closing the last connection checkpoints the WAL; only then may
	 * another server take the file. */
	sqlite3_close(q->db);
	q->db = NULL;
}

static void sqlite_close(void *be)
{
	struct store_sqlite *q = be;

	if (!q)
		return;
	disconnect_db(q);
	if (q->lock_fd >= 0)
		close(q->lock_fd);
	free(q->path);
	free(q);
}

/* Checks that the directory the store file goes in exists. */
static int check_dir(const char *path, struct hf_buf *err)
{
	char *copy = hf_xstrdup(path);
	const char *dir = dirname(copy);
	struct stat st;
	int rc = 0;

	if (stat(dir, &st) < 0) {
		hf_buf_addf(err, "the directory %s for the store file %s %s",
			    dir, path,
			    errno == ENOENT ? "does not exist" : strerror(errno));
		rc = errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
	} else if (!S_ISDIR(st.st_mode)) {
		hf_buf_addf(err, "%s (for the store file %s) is not a directory",
			    dir, path);
		rc = HF_EINVAL;
	}
	free(copy);
	return rc;
}

/* fsyncs the directory holding path, so a new file's name is durable. */
static int sync_dir(const char *path, struct hf_buf *err)
{
	char *copy = hf_xstrdup(path);
	const char *dir = dirname(copy);
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		hf_buf_addf(err, "could not sync the directory %s: %s", dir,
			    strerror(errno));
		rc = HF_EIO;
	}
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

/*
 * Store files are the owner's only: they hold every secret of every
 * service. A file found readable by others (made by an older holdfast, or
 * copied in) is made 0600; SQLite gives its -wal and -shm files the mode
 * of the database file.
 */
static void tighten(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && (st.st_mode & 077))
		(void)fchmod(fd, st.st_mode & 0700);
}

static void tighten_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0) {
		tighten(fd);
		close(fd);
	}
}

/*
 * Creates the database file 0600 before SQLite does (SQLite would use
 * 0644 less the umask), and tightens an existing one and its companions.
 * *created says whether the file is new.
 */
static int make_private(struct store_sqlite *q, bool *created,
			struct hf_buf *err)
{
	static const char *const companions[] = {"-wal", "-shm"};
	int fd = open(q->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		*created = true;
		return 0;
	}
	if (errno != EEXIST) {
		hf_buf_addf(err, "could not create the store file %s: %s",
			    q->path, strerror(errno));
		return HF_EIO;
	}
	*created = false;
	tighten_path(q->path);
	for (size_t i = 0; i < HF_ARRAY_LEN(companions); i++) {
		char *p = hf_xasprintf("%s%s", q->path, companions[i]);

		tighten_path(p);
		free(p);
	}
	return 0;
}

/*
 * Takes the exclusive lock that makes this handle the file's only user, and
 * writes our pid into the lock file so that a refused opener can say who
 * holds it.
 */
static int take_lock(struct store_sqlite *q, struct hf_buf *err)
{
	char *lock_path = hf_xasprintf("%s.lock", q->path);
	char pid[32];
	int n, rc = 0;

	q->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lock_fd < 0) {
		hf_buf_addf(err, "could not open the lock file %s: %s",
			    lock_path, strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	while (flock(q->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t got;

		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			hf_buf_addf(err, "could not lock %s: %s", lock_path,
				    strerror(errno));
			rc = HF_EIO;
			goto out;
		}
		got = pread(q->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[got > 0 ? got : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		hf_buf_addf(err,
			    "the store %s is in use by another holdfast server%s%s%s",
			    q->path, *pid ? " (pid " : "", pid, *pid ? ")" : "");
		rc = HF_EUNAVAIL;
		goto out;
	}
	tighten(q->lock_fd);
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* The pid is only a hint for messages: failing to write it is fine. */
	if (ftruncate(q->lock_fd, 0) == 0 &&
	    pwrite(q->lock_fd, pid, (size_t)n, 0) < 0)
		errno = 0;
out:
	if (rc && q->lock_fd >= 0) {
		close(q->lock_fd);
		q->lock_fd = -1;
	}
	free(lock_path);
	return rc;
}

/*
 * Reads the file's application id and table count without writing
 * anything, so that a file that is not ours is refused untouched. This is
 * the first statement that reads the file: a non-database fails here.
 */
static int identify(struct store_sqlite *q, int64_t *app_id, int64_t *tables,
		    struct hf_buf *err)
{
	int rc;

	rc = query_int(q, "PRAGMA application_id", app_id,
		       "could not read the application id", err);
	if (rc == HF_EINVAL && (q->last_rc & 0xff) == SQLITE_NOTADB) {
		hf_buf_reset(err);
		hf_buf_addf(err,
			    "%s is not an SQLite database, so not a holdfast "
			    "store",
			    q->path);
		return HF_EINVAL;
	}
	if (!rc)
		rc = query_int(q, "SELECT count(*) FROM sqlite_master", tables,
			       "could not read the schema", err);
	if (rc)
		return rc;
	if (*app_id != SQL_APPLICATION_ID && (*app_id != 0 || *tables != 0)) {
		hf_buf_addf(err,
			    "%s is an SQLite database but not a holdfast store "
			    "(application id %#llx, %lld tables)",
			    q->path, (unsigned long long)*app_id,
			    (long long)*tables);
		return HF_EINVAL;
	}
	return 0;
}

/* Sets the pragmas the durability promise rests on, and checks them. */
static int set_pragmas(struct store_sqlite *q, struct hf_buf *err)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int64_t sync = -1;
	int rc;

	rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sql_fail(q, rc, "could not switch to WAL mode", err);
		goto out;
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	if (!mode || strcmp(mode, "wal") != 0) {
		hf_buf_addf(err,
			    "%s could not be put in WAL mode (journal mode is "
			    "%s); is it on a file system without shared memory?",
			    q->path, mode ? mode : "unknown");
		rc = HF_EIO;
		goto out;
	}
	rc = exec_sql(q, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON",
		      "could not set the store's pragmas", err);
	if (!rc)
		rc = query_int(q, "PRAGMA synchronous", &sync,
			       "could not read the synchronous pragma", err);
	if (!rc && sync != 2) {
		hf_buf_addf(err, "%s: synchronous is %lld, not FULL (2)",
			    q->path, (long long)sync);
		rc = HF_EINTERNAL;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Brings the schema to SQL_SCHEMA_VERSION inside one write transaction:
 * a new, empty file gets the whole schema; an older store is migrated; a
 * newer one, or a database that is not a holdfast store, is refused.
 */
static int prepare_schema(struct store_sqlite *q, struct hf_buf *err)
{
	int64_t app_id = 0, tables = 0, version = 0;
	int rc;

	rc = exec_sql(q, "BEGIN IMMEDIATE", "could not start the schema check",
		      err);
	if (rc)
		return rc;
	/* Again, now under the write lock: the answer must not change
	 * between the look and the schema work. */
	rc = identify(q, &app_id, &tables, err);
	if (rc)
		goto out;
	if (app_id == 0 && tables == 0) {
		char *sql = hf_xasprintf("PRAGMA application_id = %d",
					 SQL_APPLICATION_ID);

		rc = exec_sql(q, sql, "could not mark the store file", err);
		free(sql);
		if (rc)
			goto out;
	} else {
		rc = query_int(q,
			       "SELECT value FROM meta WHERE name = "
			       "'schema_version'",
			       &version, "could not read the schema version",
			       err);
		if (rc)
			goto out;
	}
	if (version > SQL_SCHEMA_VERSION) {
		hf_buf_addf(err,
			    "%s has store schema version %lld, but this holdfast "
			    "only knows versions up to %lld: it was written by a "
			    "newer holdfast; run that version",
			    q->path, (long long)version,
			    (long long)SQL_SCHEMA_VERSION);
		rc = HF_EUNSUPPORTED;
		goto out;
	}
	for (; version < SQL_SCHEMA_VERSION; version++) {
		char *bump = hf_xasprintf("UPDATE meta SET value = %lld WHERE "
					  "name = 'schema_version'",
					  (long long)version + 1);

		rc = exec_sql(q, migrations[version],
			      "could not migrate the store schema", err);
		if (!rc)
			rc = exec_sql(q, bump,
				      "could not record the schema version",
				      err);
		free(bump);
		if (rc)
			goto out;
	}
	rc = exec_sql(q, "COMMIT", "could not commit the schema", err);
out:
	if (rc && !sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * Opens the SQLite connection of a handle that holds the lock: checks the
 * file is ours, sets the pragmas, brings the schema up to date and
 * prepares the statements. On failure the caller disconnects.
 */
static int connect_db(struct store_sqlite *q, bool *created,
		      struct hf_buf *err)
{
	int64_t app_id = 0, tables = 0;
	bool fresh = false;
	int rc;

	rc = make_private(q, &fresh, err);
	if (rc)
		return rc;
	if (created)
		*created = fresh;
	rc = sqlite3_open_v2(q->path, &q->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(q, rc, "could not open the store", err);
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, SQL_BUSY_TIMEOUT_MS);
	rc = identify(q, &app_id, &tables, err);
	if (!rc)
		rc = set_pragmas(q, err);
	if (!rc)
		rc = prepare_schema(q, err);
	for (int i = 0; !rc && i < ST_COUNT_; i++) {
		int src = sqlite3_prepare_v3(q->db, stmt_sql[i], -1,
					     SQLITE_PREPARE_PERSISTENT,
					     &q->stmts[i], NULL);

		if (src != SQLITE_OK)
			rc = sql_fail(q, src, "could not prepare a statement",
				      err);
	}
	return rc;
}

static int sqlite_open(const char *path, void **be, struct hf_buf *err)
{
	struct store_sqlite *q;
	bool created = false;
	int rc;

	if (!*path) {
		hf_buf_adds(err, "the sqlite: store URL has no file path");
		return HF_EINVAL;
	}
	if (path[0] == '/' && path[1] == '/') {
		if (path[2] != '/') {
			hf_buf_addf(err,
				    "the sqlite: URL 'sqlite:%s' names a host; "
				    "use sqlite:/abs/path or sqlite:///abs/path",
				    path);
			return HF_EINVAL;
		}
		path += 2;
	}
	rc = check_dir(path, err);
	if (rc)
		return rc;
	q = hf_xcalloc(1, sizeof(*q));
	q->path = hf_xstrdup(path);
	q->lock_fd = -1;
	rc = take_lock(q, err);
	if (!rc)
		rc = connect_db(q, &created, err);
	if (!rc && created)
		rc = sync_dir(path, err);
	if (rc) {
		sqlite_close(q);
		return rc;
	}
	*be = q;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

static int sqlite_get(void *be, const char *key, struct hf_store_kv *out,
		      struct hf_buf *err)
{
	struct store_sqlite *q = be;
	sqlite3_stmt *st;
	int rc;

	/* A reconnect prepares the statements anew: take them after it. */
	rc = check_broken(q, err);
	if (rc)
		return rc;
	st = q->stmts[ST_GET];
	bind_key(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_kv(st, out);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = HF_ENOTFOUND;
	} else {
		rc = sql_fail(q, rc, "could not read a key", err);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int sqlite_list(void *be, const char *prefix, size_t limit,
		       struct hf_store_kvs *out, struct hf_buf *err)
{
	struct store_sqlite *q = be;
	char *end = hf_store_prefix_end(prefix);
	sqlite3_stmt *st;
	/* One row past the limit tells whether there are more. */
	sqlite3_int64 max = -1;
	int rc;

	if (limit && limit < INT64_MAX)
		max = (sqlite3_int64)limit + 1;
	rc = check_broken(q, err);
	if (!rc)
		rc = run_id(q, ST_BEGIN_READ, "could not start a read", err);
	if (rc)
		goto out;
	/* After check_broken, which may have prepared them anew. */
	st = q->stmts[end ? ST_LIST_RANGE : ST_LIST_FROM];
	rc = get_rev(q, &out->rev, err);
	if (rc)
		goto rollback;
	bind_key(st, 1, prefix);
	if (end)
		bind_key(st, 2, end);
	sqlite3_bind_int64(st, 3, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (limit && out->len == limit) {
			out->more = true;
			break;
		}
		read_kv(st, HF_VEC_PUSH(out));
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ?
		     0 :
		     sql_fail(q, rc, "could not list keys", err);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!rc)
		rc = run_id(q, ST_COMMIT, "could not end a read", err);
rollback:
	if (rc)
		rollback(q);
out:
	free(end);
	return rc;
}

static int sqlite_revision(void *be, int64_t *rev, struct hf_buf *err)
{
	struct store_sqlite *q = be;
	int rc = check_broken(q, err);

	return rc ? rc : get_rev(q, rev, err);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */

/* The key's mod_rev, 0 when absent. */
static int lookup_mod_rev(struct store_sqlite *q, const char *key,
			  int64_t *mod_rev, struct hf_buf *err)
{
	sqlite3_stmt *st = q->stmts[ST_MOD_REV];
	int rc;

	bind_key(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*mod_rev = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		*mod_rev = 0;
		rc = 0;
	} else {
		rc = sql_fail(q, rc, "could not read a compared key", err);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

/* Applies one operation; *changed is set when it changed a row. */
static int apply_op(struct store_sqlite *q, const struct hf_store_op *op,
		    int64_t rev, bool *changed, struct hf_buf *err)
{
	sqlite3_stmt *st;
	char *end = NULL;
	int rc;

	switch (op->kind) {
	case HF_STORE_OP_PUT:
		st = q->stmts[ST_PUT];
		bind_key(st, 1, op->key);
		sqlite3_bind_blob(st, 2, op->value, (int)op->len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, rev);
		break;
	case HF_STORE_OP_DELETE:
		st = q->stmts[ST_DELETE];
		bind_key(st, 1, op->key);
		break;
	case HF_STORE_OP_DELETE_PREFIX:
		end = hf_store_prefix_end(op->key);
		st = q->stmts[end ? ST_DELETE_RANGE : ST_DELETE_FROM];
		bind_key(st, 1, op->key);
		if (end)
			bind_key(st, 2, end);
		break;
	default:
		hf_buf_addf(err, "unknown operation %d on '%s'", (int)op->kind,
			    op->key);
		return HF_EINVAL;
	}
	rc = run(q, st, "could not write a key", err);
	if (!rc && sqlite3_changes(q->db) > 0)
		*changed = true;
	free(end);
	return rc;
}

static int sqlite_snapshot(void *be, char **data, size_t *len, size_t *keys,
			   struct hf_buf *err);

static int sqlite_txn(void *be, const struct hf_store_txn *txn,
		      int64_t *rev_out, struct hf_buf *err)
{
	struct store_sqlite *q = be;
	bool changed = false;
	int64_t rev = 0;
	int rc;

	q->last_rc = 0;
	rc = check_broken(q, err);
	if (!rc)
		rc = run_id(q, ST_BEGIN_WRITE, "could not start a transaction",
			    err);
	if (rc)
		return rc;
	for (size_t i = 0; i < txn->cmps.len; i++) {
		int64_t mod_rev = 0;

		rc = lookup_mod_rev(q, txn->cmps.items[i].key, &mod_rev, err);
		if (!rc)
			rc = hf_store_cmp_eval(&txn->cmps.items[i], mod_rev, err);
		if (rc)
			goto out;
	}
	rc = get_rev(q, &rev, err);
	for (size_t i = 0; !rc && i < txn->ops.len; i++)
		rc = apply_op(q, &txn->ops.items[i], rev + 1, &changed, err);
	if (rc)
		goto out;
	if (changed) {
		sqlite3_bind_int64(q->stmts[ST_SET_REV], 1, ++rev);
		rc = run_id(q, ST_SET_REV, "could not bump the revision", err);
		if (rc)
			goto out;
	}
	rc = run_id(q, ST_COMMIT, "could not commit a transaction", err);
out:
	if (rc)
		rollback(q);
	if (!rc)
		*rev_out = rev;
	return rc;
}

const struct hf_store_backend hf_store_backend_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.get = sqlite_get,
	.list = sqlite_list,
	.txn = sqlite_txn,
	.revision = sqlite_revision,
	.snapshot = sqlite_snapshot,
};

/* ------------------------------------------------------------------ */
/* Backups                                                              */

/*
 * Turns the in-memory database mem into the bytes of a store file. The
 * header's file format bytes say "rollback journal", not WAL, so that the
 * file can be read as it is, without its -wal and -shm: the first server
 * that opens it switches it to WAL again.
 */
static int serialize_db(sqlite3 *mem, char **data, size_t *len,
			size_t *keys, struct hf_buf *err)
{
	sqlite3_int64 size = 0;
	sqlite3_stmt *st = NULL;
	unsigned char *image;

	if (keys && sqlite3_prepare_v2(mem, "SELECT count(*) FROM kv", -1,
				       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		*keys = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	image = sqlite3_serialize(mem, "main", &size, 0);
	if (!image || size < 100) {
		sqlite3_free(image);
		hf_buf_addf(err, "could not serialise the copy of the store: %s",
			    sqlite3_errmsg(mem));
		return HF_EIO;
	}
	*data = hf_xmalloc((size_t)size);
	memcpy(*data, image, (size_t)size);
	sqlite3_free(image);
	(*data)[18] = 1;
	(*data)[19] = 1;
	*len = (size_t)size;
	return 0;
}

static int open_memory(sqlite3 **mem, struct hf_buf *err)
{
	int rc = sqlite3_open_v2(":memory:", mem,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
				 NULL);

	if (rc != SQLITE_OK) {
		hf_buf_addf(err, "could not open an in-memory database: %s",
			    sqlite3_errstr(rc));
		return HF_ENOMEM;
	}
	return 0;
}

/*
 * SQLite's online backup copies every page of the store into memory in
 * one step, under a read transaction: a consistent copy at one revision,
 * revisions included, while writes wait for the copy (milliseconds for a
 * store of a few MB).
 */
static int sqlite_snapshot(void *be, char **data, size_t *len, size_t *keys,
			   struct hf_buf *err)
{
	struct store_sqlite *q = be;
	sqlite3 *mem = NULL;
	sqlite3_backup *b;
	int rc;

	rc = check_broken(q, err);
	if (!rc)
		rc = open_memory(&mem, err);
	if (rc)
		goto out;
	b = sqlite3_backup_init(mem, "main", q->db, "main");
	if (!b) {
		hf_buf_addf(err, "could not start a backup of %s: %s", q->path,
			    sqlite3_errmsg(mem));
		rc = HF_EIO;
		goto out;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		rc = sql_fail(q, rc, "could not copy the store", err);
		goto out;
	}
	rc = serialize_db(mem, data, len, keys, err);
out:
	sqlite3_close(mem);
	return rc;
}

int hf_store_sqlite_image(const struct hf_store_kvs *kvs, char **data,
			  size_t *len, struct hf_buf *err)
{
	sqlite3 *mem = NULL;
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	int rc;

	rc = open_memory(&mem, err);
	if (rc)
		goto out;
	sql = hf_xasprintf("PRAGMA application_id = %d; BEGIN;",
			   SQL_APPLICATION_ID);
	rc = sqlite3_exec(mem, sql, NULL, NULL, NULL);
	for (size_t v = 0; rc == SQLITE_OK && v < HF_ARRAY_LEN(migrations); v++)
		rc = sqlite3_exec(mem, migrations[v], NULL, NULL, NULL);
	free(sql);
	sql = hf_xasprintf("UPDATE meta SET value = %lld WHERE name = "
			   "'schema_version'; UPDATE meta SET value = %lld "
			   "WHERE name = 'revision'",
			   (long long)SQL_SCHEMA_VERSION, (long long)kvs->rev);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(mem, sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(mem,
					"INSERT INTO kv (" KV_COLUMNS ") VALUES "
					"(?1, ?2, ?3, ?4, ?5)",
					-1, &st, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < kvs->len; i++) {
		const struct hf_store_kv *kv = &kvs->items[i];

		bind_key(st, 1, kv->key);
		sqlite3_bind_blob(st, 2, kv->value, (int)kv->len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, kv->create_rev > 0 ? kv->create_rev : 1);
		sqlite3_bind_int64(st, 4,
				   kv->mod_rev >= kv->create_rev && kv->mod_rev > 0
					   ? kv->mod_rev
					   : (kv->create_rev > 0 ? kv->create_rev
								 : 1));
		sqlite3_bind_int64(st, 5, kv->version > 0 ? kv->version : 1);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
		sqlite3_reset(st);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(mem, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		hf_buf_addf(err, "could not write the copy of the store: %s",
			    sqlite3_errmsg(mem));
		rc = HF_EIO;
		goto out;
	}
	rc = serialize_db(mem, data, len, NULL, err);
out:
	sqlite3_finalize(st);
	free(sql);
	sqlite3_close(mem);
	return rc;
}

/* One integer from a query on a plain connection, or -1 with err set. */
static int file_int(sqlite3 *db, const char *path, const char *sql,
		    int64_t *out, struct hf_buf *err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		hf_buf_addf(err, "%s: %s", path,
			    (rc & 0xff) == SQLITE_NOTADB
				    ? "not an SQLite database, so not a "
				      "holdfast store or backup"
				    : sqlite3_errmsg(db));
		rc = (rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT
			     ? HF_EINVAL
			     : HF_EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

int hf_store_sqlite_read_file(const char *path, struct hf_store_kvs *out,
			      struct hf_buf *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t app_id = 0, version = 0, tables = 0;
	const char *check = NULL;
	int rc;

	if (access(path, F_OK) != 0) {
		hf_buf_addf(err, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? HF_ENOTFOUND : HF_EIO;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		hf_buf_addf(err, "could not open %s: %s", path,
			    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		rc = HF_EIO;
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	rc = file_int(db, path, "PRAGMA application_id", &app_id, err);
	if (!rc)
		rc = file_int(db, path, "SELECT count(*) FROM sqlite_master",
			      &tables, err);
	if (rc)
		goto out;
	if (app_id != SQL_APPLICATION_ID) {
		hf_buf_addf(err, "%s is %s, not a holdfast store or backup",
			    path, tables ? "an SQLite database" : "empty");
		rc = HF_EINVAL;
		goto out;
	}
	rc = file_int(db, path,
		      "SELECT value FROM meta WHERE name = 'schema_version'",
		      &version, err);
	if (rc)
		goto out;
	if (version > SQL_SCHEMA_VERSION) {
		hf_buf_addf(err,
			    "%s has store schema version %lld, but this "
			    "holdfast only knows versions up to %lld: it was "
			    "written by a newer holdfast",
			    path, (long long)version,
			    (long long)SQL_SCHEMA_VERSION);
		rc = HF_EUNSUPPORTED;
		goto out;
	}
	if (version < SQL_SCHEMA_VERSION) {
		hf_buf_addf(err,
			    "%s has the older store schema version %lld: open "
			    "it once as a store (sqlite:%s) to migrate it",
			    path, (long long)version, path);
		rc = HF_EUNSUPPORTED;
		goto out;
	}
	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st,
				NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		check = (const char *)sqlite3_column_text(st, 0);
	if (!check || strcmp(check, "ok") != 0) {
		hf_buf_addf(err, "%s is damaged: %s", path,
			    check ? check : sqlite3_errmsg(db));
		rc = HF_EINVAL;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	rc = file_int(db, path, "SELECT value FROM meta WHERE name = 'revision'",
		      &out->rev, err);
	if (rc)
		goto out;
	rc = sqlite3_prepare_v2(db,
				"SELECT " KV_COLUMNS " FROM kv ORDER BY key",
				-1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_kv(st, HF_VEC_PUSH(out));
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE) {
		hf_buf_addf(err, "could not read the keys of %s: %s", path,
			    sqlite3_errmsg(db));
		rc = HF_EIO;
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc)
		hf_store_kvs_release(out);
	return rc;
}
