"""The dropbox example's API server (examples/dropbox/api.yml).

Users sign up and sign in; each has a quota and a set of named files. The
state lives in the three services of the stack, never in this process, so
any number of instances serve the same users:

  PostgreSQL (DB_ADDRESS)     users, quotas, file metadata
  Redis (REDIS_ADDRESS)       sessions: session:<token> -> user id, with a TTL
  S3 (S3_ADDRESS)             the files' bytes, one object per upload

Each address is "host:port[,host:port...]" (a holdfast endpoint); the first
that answers is used. Debian's client libraries do the talking:
python3-psycopg2, python3-redis and python3-boto3.

HTTP, all JSON except the page and a file's bytes:
  GET    /                      the web page (index.html)
  POST   /api/signup            {"user", "password"} -> 201 {"token", "user"}
  POST   /api/login             {"user", "password"} -> {"token", "user"}
  POST   /api/logout
  GET    /api/files             -> {"files": [{"name", "size", "uploaded"}], "used", "quota"}
  PUT    /api/files/NAME        the body is the file -> 201 {"name", "size", "sha256"}
  GET    /api/files/NAME        the file's bytes
  DELETE /api/files/NAME        -> {"deleted": NAME}
  GET    /health, /ready        200 when PostgreSQL, Redis and S3 all answer, else 503
A session is a bearer token (Authorization: Bearer T) or the cookie
`session` that signup and login set for the page.
"""
import hashlib
import hmac
import http.server
import json
import os
import secrets
import signal
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid

import boto3
import botocore.config
import botocore.exceptions
import psycopg2
import redis

PORT = int(os.environ.get("API_PORT") or "8080")
BIND = os.environ.get("MESOS_CONTAINER_IP") or "127.0.0.1"
INSTANCE = os.environ.get("POD_NAME") or "api"
BUCKET = os.environ.get("S3_BUCKET") or "dropbox"
QUOTA = int(float(os.environ.get("QUOTA_MB") or "100") * 1024 * 1024)
SESSION_TTL = 24 * 3600
MAX_UPLOAD = 64 * 1024 * 1024
CHECK_TIMEOUT = 3
HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {INSTANCE}: {msg}", file=sys.stderr, flush=True)


def addresses(var):
    """[(host, port)] from "host:port[,host:port...]" in env var `var`."""
    raw = os.environ.get(var, "").strip()
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit(f"server.py: {var}={raw!r}: each address must be host:port")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise SystemExit(f"server.py: {var} is not set (host:port of the service; "
                         "the stack gives it from the service's endpoint)")
    return out


class HttpError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---- the stores ----------------------------------------------------------

class Stores:
    """Connections to the three services. PostgreSQL: one connection per
    request (a restarted server costs nothing but that request's
    reconnect). Redis and S3: clients that reconnect by themselves; each
    operation is retried once on a connection error, so the first request
    after a store restarted does not fail for a stale connection."""

    def __init__(self):
        self.pg = addresses("DB_ADDRESS")
        self.pg_password = os.environ.get("DB_PASSWORD", "")
        self.redis_addrs = addresses("REDIS_ADDRESS")
        self.s3_addrs = addresses("S3_ADDRESS")
        self._redis = {}
        self._s3 = {}
        self.schema_ready = False
        self._schema_lock = threading.Lock()

    # PostgreSQL
    def db(self, timeout=CHECK_TIMEOUT):
        last = None
        for host, port in self.pg:
            try:
                return psycopg2.connect(host=host, port=port, user="dropbox",
                                        password=self.pg_password, dbname="dropbox",
                                        connect_timeout=timeout,
                                        application_name=INSTANCE)
            except psycopg2.OperationalError as e:
                last = e
        raise HttpError(503, "db-unavailable", f"PostgreSQL: {str(last).strip()}")

    def ensure_schema(self):
        if self.schema_ready:
            return
        with self._schema_lock:
            if self.schema_ready:
                return
            conn = self.db()
            try:
                with conn, conn.cursor() as cur:
                    # Several instances may start at once: one at a time.
                    cur.execute("SELECT pg_advisory_xact_lock(4242)")
                    cur.execute("""
                        CREATE TABLE IF NOT EXISTS users (
                            id BIGSERIAL PRIMARY KEY,
                            name TEXT UNIQUE NOT NULL,
                            salt BYTEA NOT NULL,
                            pwhash BYTEA NOT NULL,
                            quota_bytes BIGINT NOT NULL,
                            created TIMESTAMPTZ NOT NULL DEFAULT now())""")
                    cur.execute("""
                        CREATE TABLE IF NOT EXISTS files (
                            user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                            name TEXT NOT NULL,
                            object_key TEXT NOT NULL,
                            size BIGINT NOT NULL,
                            sha256 TEXT NOT NULL,
                            uploaded TIMESTAMPTZ NOT NULL DEFAULT now(),
                            PRIMARY KEY (user_id, name))""")
            finally:
                conn.close()
            self.s3_call(self._ensure_bucket)
            self.schema_ready = True
            log("schema and bucket ready")

    # Redis
    def _redis_client(self, host, port):
        key = (host, port)
        if key not in self._redis:
            self._redis[key] = redis.Redis(host=host, port=port,
                                           socket_timeout=CHECK_TIMEOUT,
                                           socket_connect_timeout=CHECK_TIMEOUT,
                                           decode_responses=True)
        return self._redis[key]

    def redis_call(self, fn):
        last = None
        for host, port in self.redis_addrs:
            for _attempt in range(2):
                try:
                    return fn(self._redis_client(host, port))
                except (redis.ConnectionError, redis.TimeoutError) as e:
                    last = e
        raise HttpError(503, "cache-unavailable", f"Redis: {last}")

    # S3
    def _s3_client(self, host, port):
        key = (host, port)
        if key not in self._s3:
            # boto3 clients are thread-safe once made; making one is not.
            self._s3[key] = boto3.session.Session().client(
                "s3", endpoint_url=f"http://{host}:{port}",
                aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                region_name="us-east-1",
                config=botocore.config.Config(
                    s3={"addressing_style": "path"},
                    connect_timeout=CHECK_TIMEOUT, read_timeout=30,
                    retries={"max_attempts": 2, "mode": "standard"}))
        return self._s3[key]

    def s3_call(self, fn):
        last = None
        for host, port in self.s3_addrs:
            for _attempt in range(2):
                try:
                    return fn(self._s3_client(host, port))
                except (botocore.exceptions.EndpointConnectionError,
                        botocore.exceptions.ConnectionClosedError,
                        botocore.exceptions.ReadTimeoutError,
                        botocore.exceptions.ConnectTimeoutError) as e:
                    last = e
        raise HttpError(503, "blobs-unavailable", f"S3: {last}")

    @staticmethod
    def _ensure_bucket(s3):
        try:
            s3.head_bucket(Bucket=BUCKET)
        except botocore.exceptions.ClientError:
            try:
                s3.create_bucket(Bucket=BUCKET)
            except botocore.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def check(self):
        """{"postgres": "ok" | error, "redis": ..., "s3": ...}"""
        out = {}
        try:
            conn = self.db()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchone()
            finally:
                conn.close()
            out["postgres"] = "ok"
        except Exception as e:  # noqa: BLE001 - reported, not raised
            out["postgres"] = str(getattr(e, "message", e)).strip()
        try:
            self.redis_call(lambda r: r.ping())
            out["redis"] = "ok"
        except Exception as e:  # noqa: BLE001
            out["redis"] = str(getattr(e, "message", e))
        try:
            self.s3_call(lambda s3: s3.head_bucket(Bucket=BUCKET) if self.schema_ready
                         else s3.list_buckets())
            out["s3"] = "ok"
        except Exception as e:  # noqa: BLE001
            out["s3"] = str(getattr(e, "message", e))
        return out


STORES = None


def pw_hash(password, salt):
    return hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)


def valid_user(name):
    return isinstance(name, str) and 1 <= len(name) <= 64 and \
        all(c.isalnum() or c in "._-@" for c in name)


def valid_file_name(name):
    return 1 <= len(name) <= 255 and "/" not in name and name not in (".", "..") and \
        all(ord(c) >= 32 for c in name)


# ---- HTTP ----------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dropbox-api"

    def log_message(self, fmt, *args):  # one line per request on stderr
        log(f"{self.address_string()} {fmt % args}")

    # plumbing
    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Dropbox-Instance", INSTANCE)
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self, limit):
        n = int(self.headers.get("Content-Length") or "0")
        if n > limit:
            raise HttpError(413, "too-large", f"the body is {n} bytes, over {limit}")
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                raise HttpError(400, "short-body", "the body ended early")
            data += chunk
        return data

    def json_body(self):
        try:
            obj = json.loads(self.read_body(64 * 1024) or b"{}")
        except ValueError as e:
            raise HttpError(400, "bad-json", f"the body is not JSON: {e}")
        if not isinstance(obj, dict):
            raise HttpError(400, "bad-json", "the body must be a JSON object")
        return obj

    def token(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:].strip()
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "session":
                return v
        return None

    def user(self):
        """The signed-in user's id, or 401."""
        tok = self.token()
        uid = STORES.redis_call(lambda r: r.get(f"session:{tok}")) if tok else None
        if not uid:
            raise HttpError(401, "unauthorized", "sign in first")
        return int(uid)

    def dispatch(self):
        path, _, query = self.path.partition("?")
        parts = path.split("/")
        m = self.command
        if path in ("/health", "/ready"):
            return self.health(path == "/ready")
        if path in ("/", "/index.html") and m in ("GET", "HEAD"):
            return self.page()
        if path in ("/api/signup", "/api/login") and m == "POST":
            return self.sign_in(path == "/api/signup")
        if path == "/api/logout" and m == "POST":
            return self.logout()
        if path == "/api/files" and m == "GET":
            return self.list_files()
        if len(parts) == 4 and parts[:3] == ["", "api", "files"] and parts[3]:
            name = urllib.parse.unquote(parts[3])
            if not valid_file_name(name):
                raise HttpError(400, "bad-name", f"{name!r} is not a valid file name")
            if m == "PUT":
                return self.upload(name)
            if m in ("GET", "HEAD"):
                return self.download(name, "download=1" in query.split("&"))
            if m == "DELETE":
                return self.delete(name)
        raise HttpError(404, "not-found", f"no route {m} {path}")

    def handle_any(self):
        try:
            if STORES.schema_ready is False and self.path not in ("/health", "/ready"):
                STORES.ensure_schema()
            self.dispatch()
        except HttpError as e:
            self.send_json(e.status, {"error": e.code, "message": e.message})
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
            self.send_json(503, {"error": "db-unavailable", "message": f"PostgreSQL: {e}".strip()})
        except BrokenPipeError:
            pass
        except Exception as e:  # noqa: BLE001 - a request never kills the server
            log(f"{self.command} {self.path}: {type(e).__name__}: {e}")
            self.send_json(500, {"error": "internal", "message": f"{type(e).__name__}: {e}"})

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any

    # handlers
    def health(self, ready):
        st = STORES.check()
        ok = all(v == "ok" for v in st.values())
        if ok and ready:
            try:
                STORES.ensure_schema()
            except Exception as e:  # noqa: BLE001
                st["schema"] = str(getattr(e, "message", e))
                ok = False
        self.send_json(200 if ok else 503, {"ok": ok, "instance": INSTANCE, **st})

    def page(self):
        with open(os.path.join(HERE, "index.html"), "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def sign_in(self, signup):
        req = self.json_body()
        name, password = req.get("user"), req.get("password")
        if not valid_user(name):
            raise HttpError(400, "bad-user", "a user name is 1-64 letters, digits or ._-@")
        if not isinstance(password, str) or len(password) < 4:
            raise HttpError(400, "bad-password", "a password has at least 4 characters")
        conn = STORES.db()
        try:
            with conn, conn.cursor() as cur:
                if signup:
                    salt = secrets.token_bytes(16)
                    cur.execute("INSERT INTO users (name, salt, pwhash, quota_bytes) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING "
                                "RETURNING id",
                                (name, salt, pw_hash(password, salt), QUOTA))
                    row = cur.fetchone()
                    if not row:
                        raise HttpError(409, "exists", f"user {name} exists")
                    uid = row[0]
                else:
                    cur.execute("SELECT id, salt, pwhash FROM users WHERE name = %s", (name,))
                    row = cur.fetchone()
                    if not row or not hmac.compare_digest(
                            pw_hash(password, bytes(row[1])), bytes(row[2])):
                        raise HttpError(401, "unauthorized", "wrong user name or password")
                    uid = row[0]
        finally:
            conn.close()
        tok = secrets.token_urlsafe(24)
        STORES.redis_call(lambda r: r.set(f"session:{tok}", uid, ex=SESSION_TTL))
        self.send_json(201 if signup else 200, {"token": tok, "user": name}, headers=[
            ("Set-Cookie", f"session={tok}; Path=/; HttpOnly; SameSite=Strict; "
                           f"Max-Age={SESSION_TTL}")])

    def logout(self):
        tok = self.token()
        if tok:
            STORES.redis_call(lambda r: r.delete(f"session:{tok}"))
        self.send_json(200, {"ok": True}, headers=[
            ("Set-Cookie", "session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")])

    def list_files(self):
        uid = self.user()
        conn = STORES.db()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT name, size, uploaded FROM files WHERE user_id = %s "
                            "ORDER BY name", (uid,))
                files = [{"name": n, "size": s, "uploaded": u.isoformat()}
                         for n, s, u in cur.fetchall()]
                cur.execute("SELECT name, quota_bytes FROM users WHERE id = %s", (uid,))
                uname, quota = cur.fetchone()
        finally:
            conn.close()
        self.send_json(200, {"user": uname, "files": files,
                             "used": sum(f["size"] for f in files), "quota": quota})

    def upload(self, name):
        uid = self.user()
        data = self.read_body(MAX_UPLOAD)
        digest = hashlib.sha256(data).hexdigest()
        key = f"{uid}/{uuid.uuid4().hex}"
        # The object first, then its row: a crash between leaves an object
        # no row names (garbage), never a row without its object.
        STORES.s3_call(lambda s3: s3.put_object(Bucket=BUCKET, Key=key, Body=data))
        old = None
        conn = STORES.db()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT quota_bytes FROM users WHERE id = %s FOR UPDATE", (uid,))
                quota = cur.fetchone()[0]
                cur.execute("SELECT coalesce(sum(size), 0) FROM files "
                            "WHERE user_id = %s AND name <> %s", (uid, name))
                used = cur.fetchone()[0]
                if used + len(data) > quota:
                    raise HttpError(413, "over-quota",
                                    f"{name}: {len(data)} bytes over the quota "
                                    f"({used} of {quota} used)")
                cur.execute("SELECT object_key FROM files WHERE user_id = %s AND name = %s",
                            (uid, name))
                row = cur.fetchone()
                old = row[0] if row else None
                cur.execute("INSERT INTO files (user_id, name, object_key, size, sha256) "
                            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, name) DO "
                            "UPDATE SET object_key = EXCLUDED.object_key, size = EXCLUDED.size, "
                            "sha256 = EXCLUDED.sha256, uploaded = now()",
                            (uid, name, key, len(data), digest))
        except HttpError:
            STORES.s3_call(lambda s3: s3.delete_object(Bucket=BUCKET, Key=key))
            raise
        finally:
            conn.close()
        if old:
            STORES.s3_call(lambda s3: s3.delete_object(Bucket=BUCKET, Key=old))
        self.send_json(201, {"name": name, "size": len(data), "sha256": digest})

    def _row(self, uid, name):
        conn = STORES.db()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT object_key, size, sha256 FROM files "
                            "WHERE user_id = %s AND name = %s", (uid, name))
                row = cur.fetchone()
        finally:
            conn.close()
        if not row:
            raise HttpError(404, "no-file", f"no file {name!r}")
        return row

    def download(self, name, attachment):
        uid = self.user()
        key, size, digest = self._row(uid, name)
        obj = STORES.s3_call(lambda s3: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        if hashlib.sha256(obj).hexdigest() != digest:
            raise HttpError(500, "corrupt", f"{name}: the stored object does not match "
                                            "its checksum")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(obj)))
        self.send_header("X-Dropbox-Instance", INSTANCE)
        self.send_header("X-Content-SHA256", digest)
        if attachment:
            self.send_header("Content-Disposition", "attachment; filename*=UTF-8''" +
                             urllib.parse.quote(name))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(obj)

    def delete(self, name):
        uid = self.user()
        conn = STORES.db()
        try:
            with conn, conn.cursor() as cur:
                cur.execute("DELETE FROM files WHERE user_id = %s AND name = %s "
                            "RETURNING object_key", (uid, name))
                row = cur.fetchone()
        finally:
            conn.close()
        if not row:
            raise HttpError(404, "no-file", f"no file {name!r}")
        STORES.s3_call(lambda s3: s3.delete_object(Bucket=BUCKET, Key=row[0]))
        self.send_json(200, {"deleted": name})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    global STORES
    STORES = Stores()
    srv = Server((BIND, PORT), Handler)
    log(f"listening on {BIND}:{PORT}; PostgreSQL {STORES.pg}, Redis {STORES.redis_addrs}, "
        f"S3 {STORES.s3_addrs}")
    # SIGTERM (holdfast stopping the task: an update, a scale-in): stop
    # accepting, let the requests under way finish (kill-grace-period is
    # 5 s), then exit. shutdown() waits for serve_forever, which runs in
    # this thread, so another thread calls it.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    try:
        STORES.ensure_schema()
    except Exception as e:  # noqa: BLE001 - /ready retries it
        log(f"not ready yet: {getattr(e, 'message', e)}")
    srv.serve_forever()
    srv.server_close()
    deadline = time.time() + 3
    while time.time() < deadline and threading.active_count() > 1:
        time.sleep(0.05)
    log("stopped")


if __name__ == "__main__":
    main()
