"""What the pipeline's consumer and drain share: the stream, the group,
the connections, and storing a batch of messages exactly once."""
import os
import time

import psycopg2
import redis

STREAM = "events"
GROUP = "workers"


def connect_redis():
    return redis.Redis(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]),
                       decode_responses=True)


def ensure_group(r):
    """The consumer group, reading the stream from its start."""
    try:
        r.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def connect_pg():
    """PostgreSQL, and the table (its primary key makes a message stored
    twice, after a crash between the insert and the acknowledgement, one
    row)."""
    while True:
        try:
            conn = psycopg2.connect(host="127.0.0.1", port=int(os.environ["PG_PORT"]),
                                    user="postgres", dbname="postgres")
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS messages ("
                            " seq bigint PRIMARY KEY, payload text NOT NULL,"
                            " consumer text NOT NULL, stored_at timestamptz DEFAULT now())")
            return conn
        except psycopg2.Error as e:
            # Two consumers creating the table at once: one loses; again.
            print(f"postgres: {e}".strip(), flush=True)
            time.sleep(0.5)


def store(r, conn, me, entries, work_ms=0):
    """Stores entries [(id, fields)] in one transaction, then acknowledges
    them: a crash before the acknowledgement leaves them pending, and
    storing them again changes nothing."""
    if not entries:
        return 0
    if work_ms:
        time.sleep(work_ms * len(entries) / 1000)
    with conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO messages (seq, payload, consumer) VALUES (%s, %s, %s)"
            " ON CONFLICT (seq) DO NOTHING",
            [(int(f["seq"]), f.get("payload", ""), me) for _, f in entries])
    r.xack(STREAM, GROUP, *[i for i, _ in entries])
    return len(entries)


def own_pending(r, me, count=100):
    """Entries delivered to consumer me and not acknowledged."""
    resp = r.xreadgroup(GROUP, me, {STREAM: "0"}, count=count)
    return [(i, f) for _, entries in resp for i, f in entries if f]
