"""A real S3 server for tests: s3rver (Node.js, from the npm registry),
behind a proxy that checks every request's AWS Signature Version 4.

s3rver 3.7.1 stores objects in a directory and answers the S3 REST API, but
it does not check V4 signatures (its authentication middleware says "Signature
version 4 calculation is unimplemented"): it only wants a known access key
(S3RVER) and an x-amz-content-sha256 header. So that a wrong secret key, a
signature over the wrong canonical request (a key's encoding, the order of
query parameters) or a body changed on the way is refused as real S3 refuses
it, the clients under test talk to SigV4Proxy, which recomputes the signature
with its own secret, checks x-amz-content-sha256 and Content-MD5 against the
body, and forwards what passes to s3rver. The proxy also records what it saw
and can fail requests on purpose (a 503 SlowDown, a dropped connection) to
test retries. It listens on http and, with a certificate made for the run,
on https.

s3rver is installed, when missing, with `npm install --prefix CACHE
s3rver@3.7.1` (CACHE: /var/cache/holdfast-test/s3rver, or
$HOLDFAST_TEST_CACHE/s3rver), under a lock so that parallel test workers
install it once; never into the repository, never at build time. npm comes
from scripts/setup.sh (Debian's nodejs and npm where Node.js is not already
installed). Without npm or node the harness fails with a message saying so:
it never skips silently.

s3rver makes its continuation tokens with DES, which OpenSSL 3 keeps in its
legacy provider: without NODE_OPTIONS=--openssl-legacy-provider, every
truncated listing fails with 500 InternalError on Node.js 17 and later.

    python3 tests/s3_harness.py install     # install s3rver only
    python3 tests/s3_harness.py serve       # run one until Ctrl-C
"""
import base64
import datetime
import fcntl
import hashlib
import hmac
import http.client
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

S3RVER_VERSION = "3.7.1"
ACCESS_KEY = "S3RVER"  # the one account s3rver knows
REGION = "us-east-1"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def cache_dir():
    base = os.environ.get("HOLDFAST_TEST_CACHE", "/var/cache/holdfast-test")
    return os.path.join(base, "s3rver")


def _installed(prefix):
    try:
        with open(os.path.join(prefix, "node_modules", "s3rver", "package.json")) as f:
            return json.load(f).get("version") == S3RVER_VERSION
    except (OSError, ValueError):
        return False


def install():
    """Installs s3rver S3RVER_VERSION into cache_dir() unless it is there;
    returns the path of its command script. Raises RuntimeError with what
    to do when npm is missing or the install fails."""
    prefix = cache_dir()
    script = os.path.join(prefix, "node_modules", "s3rver", "bin", "s3rver.js")
    if _installed(prefix):
        return script
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError(
            "s3_harness: npm is not installed, so s3rver (the S3 server the "
            "S3 tests use) cannot be installed: run scripts/setup.sh, or "
            "apt-get install nodejs npm")
    os.makedirs(prefix, exist_ok=True)
    with open(os.path.join(os.path.dirname(prefix), ".s3rver.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(prefix):
            return script
        r = subprocess.run(
            [npm, "install", "--prefix", prefix, "--no-audit", "--no-fund",
             "--no-update-notifier", f"s3rver@{S3RVER_VERSION}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=600, cwd=prefix)
        if r.returncode != 0 or not _installed(prefix):
            raise RuntimeError(
                f"s3_harness: npm install s3rver@{S3RVER_VERSION} into "
                f"{prefix} failed (exit {r.returncode}):\n{r.stdout[-3000:]}")
    return script


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- Signature Version 4, as AWS documents it for S3 ----

def _encode(raw, keep_slash):
    """URI-encodes bytes: unreserved characters kept, the rest %XX."""
    return urllib.parse.quote(raw, safe="-_.~" + ("/" if keep_slash else ""))


def canonical_request(method, target, headers, signed, payload_hash):
    """target is the request line's path and query as sent (encoded);
    headers maps lower-case names to lists of values."""
    path, _, query = target.partition("?")
    uri = _encode(urllib.parse.unquote_to_bytes(path), True)
    pairs = []
    for part in query.split("&") if query else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((_encode(urllib.parse.unquote_to_bytes(k), False),
                      _encode(urllib.parse.unquote_to_bytes(v), False)))
    pairs.sort()
    canon_query = "&".join(f"{k}={v}" for k, v in pairs)
    canon_headers = "".join(
        f"{n}:{','.join(' '.join(v.split()) for v in headers.get(n, []))}\n"
        for n in signed)
    return "\n".join([method, uri, canon_query, canon_headers,
                      ";".join(signed), payload_hash])


def _signature(secret, date, region, service, string_to_sign):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign(method, host, target, body, secret, access=ACCESS_KEY, region=REGION,
         extra=None):
    """Headers that sign a request (for the tests' own requests)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-date": amz_date,
               "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    headers.update({k.lower(): v for k, v in (extra or {}).items()})
    signed = sorted(headers)
    creq = canonical_request(method, target, {k: [v] for k, v in headers.items()},
                             signed, headers["x-amz-content-sha256"])
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = _signature(secret, amz_date[:8], region, "s3", sts)
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return headers


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def verify(method, target, headers, body, secret):
    """Checks a request as S3 does; raises Refusal. headers: lower-case
    names to lists of values."""
    auth = (headers.get("authorization") or [""])[0]
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise Refusal(403, "AccessDenied", "not signed with AWS4-HMAC-SHA256")
    try:
        parts = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
        access, date, region, service, term = parts["Credential"].split("/")
        signed = parts["SignedHeaders"].split(";")
        given = parts["Signature"]
    except (KeyError, ValueError):
        raise Refusal(400, "AuthorizationHeaderMalformed", "bad Authorization")
    if access != ACCESS_KEY:
        raise Refusal(403, "InvalidAccessKeyId", "unknown access key")
    if service != "s3" or term != "aws4_request":
        raise Refusal(400, "AuthorizationHeaderMalformed", "bad credential scope")
    if signed != sorted(signed) or "host" not in signed:
        raise Refusal(400, "AuthorizationHeaderMalformed", "bad SignedHeaders")
    unsigned = [n for n in headers if n.startswith("x-amz-") and n not in signed]
    if unsigned:
        raise Refusal(403, "AccessDenied",
                      f"headers present but not signed: {unsigned}")
    amz_date = (headers.get("x-amz-date") or [""])[0]
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Refusal(403, "AccessDenied", "no valid x-amz-date")
    now = datetime.datetime.now(datetime.timezone.utc)
    if abs((now - when).total_seconds()) > 900 or amz_date[:8] != date:
        raise Refusal(403, "RequestTimeTooSkewed", "request time too skewed")
    payload = (headers.get("x-amz-content-sha256") or [""])[0]
    if not payload:
        raise Refusal(400, "InvalidRequest",
                      "Missing required header for this request: x-amz-content-sha256")
    if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
        raise Refusal(400, "XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not "
                      "match what was computed.")
    md5 = (headers.get("content-md5") or [None])[0]
    if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
        raise Refusal(400, "BadDigest", "The Content-MD5 you specified did not "
                      "match what we received.")
    creq = canonical_request(method, target, headers, signed, payload)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, f"{date}/{region}/s3/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    if not hmac.compare_digest(_signature(secret, date, region, "s3", sts), given):
        raise Refusal(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.")
    return {"region": region, "signed": signed, "payload": payload}


# ---- the proxy ----

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "expect"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "holdfast-sigv4-proxy"

    def log_message(self, *args):
        pass

    def _answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status, code, message):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message><RequestId>proxy</RequestId></Error>").encode()
        self._answer(status, [("Content-Type", "application/xml")], body)

    def _any(self):
        proxy = self.server.proxy
        proxy._busy(1)
        try:
            self._serve()
        finally:
            proxy._busy(-1)

    def _serve(self):
        proxy = self.server.proxy
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._refuse(411, "MissingContentLength", "chunked bodies are not supported here")
            self.close_connection = True
            return
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        entry = {"method": self.command, "target": self.path,
                 "headers": {k: ", ".join(v) for k, v in headers.items()},
                 "body_len": len(body)}
        try:
            entry["sig"] = verify(self.command, self.path, headers, body, proxy.secret)
        except Refusal as r:
            entry["status"] = r.status
            entry["refused"] = r.code
            proxy.record(entry)
            self._refuse(r.status, r.code, r.message)
            return
        if self.command == "PUT":
            proxy.gate_put()
        if self.command == "GET":
            proxy.gate_get(self.path)
        fault = proxy.take_fault()
        if fault is not None:
            entry["fault"] = fault
            proxy.record(entry)
            if fault[0] == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            else:
                self._refuse(fault[0], fault[1], "injected by the test proxy")
            return
        conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
        try:
            fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            conn.request(self.command, self.path, body=body if body or self.command == "PUT" else None,
                         headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
            keep = [(k, v) for k, v in resp.getheaders()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            entry["status"] = resp.status
            proxy.record(entry)
            if self.command == "HEAD":
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.end_headers()
            else:
                self._answer(resp.status, keep, data)
        finally:
            conn.close()

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (a refused certificate) is no news


class SigV4Proxy:
    """Listens on 127.0.0.1 (https when given a certificate and key),
    checks signatures with secret and forwards to upstream_port."""

    def __init__(self, upstream_port, secret, certfile=None, keyfile=None):
        self.upstream_port = upstream_port
        self.secret = secret
        self.log = []
        self._faults = []
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.held = 0  # PUTs waiting at the gate
        self._get_open = threading.Event()
        self._get_open.set()
        self._get_pass = None  # while GETs are held: how many more pass
        self._get_match = None
        self.held_gets = 0  # GETs waiting at their gate
        self.in_flight = 0  # requests read and not yet answered
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        if certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.endpoint = f"{'https' if certfile else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def record(self, entry):
        with self._lock:
            self.log.append(entry)

    def take_fault(self):
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def gate_put(self):
        with self._lock:
            self.held += 1
        self._open.wait(120)
        with self._lock:
            self.held -= 1

    def hold_puts(self):
        """PUTs wait (signature checked, nothing stored) until
        release_puts(): a transfer stays in the middle for as long as a
        test needs."""
        self._open.clear()

    def release_puts(self):
        self._open.set()

    def _busy(self, d):
        with self._lock:
            self.in_flight += d

    def gate_get(self, target):
        with self._lock:
            if self._get_pass is None or (self._get_match and
                                          self._get_match not in target):
                return
            if self._get_pass > 0:
                self._get_pass -= 1
                return
            self.held_gets += 1
        self._get_open.wait(120)
        with self._lock:
            self.held_gets -= 1

    def hold_gets(self, after=0, match=None):
        """GETs (those whose path and query contain match, when given)
        wait, signature checked, after the next `after` of them have
        passed, until release_gets(): a download stays in the middle, at
        a known point, for as long as a test needs."""
        with self._lock:
            self._get_pass = after
            self._get_match = match
            self._get_open.clear()

    def release_gets(self):
        with self._lock:
            self._get_pass = None
            self._get_match = None
        self._get_open.set()

    def fail_next(self, n, status=503, code="SlowDown"):
        """The next n signed requests get status/code (status "drop": the
        connection is closed without an answer) instead of s3rver's."""
        with self._lock:
            self._faults = [(status, code)] * n

    def clear(self):
        with self._lock:
            self._faults = []
            self.log = []

    def entries(self):
        with self._lock:
            return list(self.log)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


class S3Server:
    """s3rver on a free loopback port with a temporary directory, behind an
    http and an https SigV4Proxy. Use as a context manager, or start() and
    stop(). endpoint / tls_endpoint are the proxies' URLs, ca_file the
    certificate that tls_endpoint presents, secret_key the proxies' secret
    (the access key is ACCESS_KEY)."""

    def __init__(self):
        self.tmp = None
        self.proc = None
        self.proxy = self.tls_proxy = None
        self.secret_key = "holdfast-test-" + secrets.token_hex(12)
        self.access_key = ACCESS_KEY
        self.region = REGION

    def start(self, timeout=30.0):
        script = install()
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            raise RuntimeError("s3_harness: node is not installed: run scripts/setup.sh")
        self.tmp = tempfile.mkdtemp(prefix="hf-s3rver-")
        data = os.path.join(self.tmp, "data")
        os.mkdir(data)
        env = dict(os.environ)
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        last = None
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            self._log = open(os.path.join(self.tmp, "s3rver.log"), "w")
            self.proc = subprocess.Popen(
                [node, script, "--directory", data, "--address", "127.0.0.1",
                 "--port", str(self.port), "--silent"],
                stdout=self._log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
            try:
                self._wait(timeout)
                break
            except RuntimeError as e:
                last = e
                self._kill()
        else:
            self.stop()
            raise last
        self.ca_file = os.path.join(self.tmp, "cert.pem")
        key = os.path.join(self.tmp, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", self.ca_file, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proxy = SigV4Proxy(self.port, self.secret_key)
        self.tls_proxy = SigV4Proxy(self.port, self.secret_key, self.ca_file, key)
        self.endpoint = self.proxy.endpoint
        self.tls_endpoint = self.tls_proxy.endpoint
        self.direct_endpoint = f"http://127.0.0.1:{self.port}"
        return self

    def _wait(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3_harness: s3rver exited ({self.proc.returncode}): "
                                   f"{self._read_log()}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/")
                c.getresponse().read()
                c.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"s3_harness: s3rver did not answer within {timeout}s: "
                           f"{self._read_log()}")

    def _read_log(self):
        try:
            with open(os.path.join(self.tmp, "s3rver.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def stop(self):
        for p in (self.proxy, self.tls_proxy):
            if p:
                p.stop()
        self.proxy = self.tls_proxy = None
        self._kill()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # The tests' own requests, signed here, through the http proxy.
    def request(self, method, bucket, key="", body=b"", query="", conn=None):
        target = "/" + urllib.parse.quote(bucket, safe="")
        if key:
            target += "/" + urllib.parse.quote(key, safe="/-_.~")
        if query:
            target += "?" + query
        host = f"127.0.0.1:{self.proxy.port}"
        headers = sign(method, host, target, body, self.secret_key)
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        try:
            conn.request(method, target, body=body if method == "PUT" else None,
                         headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            if own:
                conn.close()

    def put_many(self, bucket, items):
        """Stores (key, bytes) pairs over one connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=30)
        try:
            for key, body in items:
                status, data = self.request("PUT", bucket, key, body, conn=conn)
                if status != 200:
                    raise RuntimeError(f"PUT {bucket}/{key}: {status} {data[:200]!r}")
        finally:
            conn.close()


def main(argv):
    if argv[1:2] == ["install"]:
        print(install())
        return 0
    if argv[1:2] == ["serve"]:
        with S3Server() as s:
            print(f"endpoint {s.endpoint} (https: {s.tls_endpoint}, CA {s.ca_file})")
            print(f"HOLDFAST_S3_ACCESS_KEY={s.access_key} HOLDFAST_S3_SECRET_KEY={s.secret_key}")
            sys.stdout.flush()
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
