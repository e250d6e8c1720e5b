"""Who may call the API and what one peer can cost (issue 11, "The API").

- Nobody without a credential changes anything: as `nobody` against
  `holdfast dev`, every mutating route answers 401 and nothing changes; a
  cross-site ("simple") request is refused even with a valid token; the
  dev's owner runs the same commands with no extra step.
- A read token cannot read secrets through the diff route, and `service
  diff` / `service update` do not print them.
- One peer's idle or trickling connections do not shut out others, and a
  request that trickles in is cut at the request deadline.
- Each agent has its own identity: one node cannot report for another; a
  node's credential and the join token read nothing else.
- Credentials stay out of argv, the environment and readable files.
- The HTTP rough edges: chunked bodies past the limit get 413, a malformed
  Content-Length one clean 400, booleans and repeated query keys are
  checked.

Every test drives the real binary (HOLDFAST_BIN) and asserts on what a user
or a peer sees. Waits are deadlines with polling; no timing is asserted.
"""
import http.client
import json
import os
import re
import resource
import secrets
import signal
import socket
import stat
import subprocess
import time

import pytest

from holdfast_harness import BIN, REPO, Cluster, local_credential, wait_for, write

SPEC = """
name: sec
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo "started" && exec sleep 1000
        cpus: 0.1
        memory: 32
        env:
          DB_PASSWORD: "{{DB_PASSWORD}}"
          GREETING: hello
"""


def route_table():
    """(method, pattern, flags) of every route in src/server/api.c."""
    src = open(os.path.join(REPO, "src/server/api.c")).read()
    table = src[src.index("static const struct hf_http_route routes[]"):]
    table = table[:table.index("};")]
    return [(m, p, f) for m, p, f in
            re.findall(r'\{\s*"(\w+)",\s*"([^"]+)",\s*\w+,\s*([A-Z_ |]+)', table)]


def concrete(pattern):
    return re.sub(r"\{(\w+)\*?\}", lambda m: {"svc": "sec", "node": "node-1"}.get(m.group(1), "x"),
                  pattern)


def raw_request(port, data, src=None, timeout=10):
    """Sends raw bytes; returns what the server sent before closing."""
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        pass
    s.close()
    return out


def request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# holdfast dev, used by another local user and by a web page


class Dev:
    """`holdfast dev` as the machine's owner would run it: default config
    dir (~/.config/holdfast), no tokens, no environment of its own."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        with socket.socket() as so:
            so.bind(("127.0.0.1", 0))
            self.port = so.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        for k in ("HOLDFAST_CONFIG_DIR", "HOLDFAST_TOKEN", "HOLDFAST_ADMIN_TOKEN", "HOLDFAST_ADDR"):
            env.pop(k, None)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        self.env = env
        self.log = open(os.path.join(self.tmp, "dev.log"), "ab")
        self.proc = subprocess.Popen(
            [BIN, "dev", "--data", os.path.join(self.tmp, "d"), "--listen",
             f"127.0.0.1:{self.port}"], stdout=self.log, stderr=self.log, env=env,
            start_new_session=True)

    def cli(self, *args, env=None, check=True, timeout=120):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([BIN, "--addr", self.url, *args], capture_output=True, text=True,
                           env=e, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"holdfast {args}: {p.returncode}\n{p.stdout}\n{p.stderr}"
                                 f"\n{self.logtext()[-3000:]}")
        return p

    def logtext(self):
        return open(os.path.join(self.tmp, "dev.log"), errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in Cluster.pids_matching(self.tmp):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["sh", "-c", f"grep ' {self.tmp}' /proc/mounts | cut -d' ' -f2 | sort -r | "
                        "xargs -r -n1 umount -l"], check=False)
        self.log.close()


def as_nobody(*argv, timeout=30):
    return subprocess.run(["runuser", "-u", "nobody", "--", *argv], capture_output=True,
                          text=True, timeout=timeout)


def test_dev_is_not_open_to_other_users_or_web_pages(tmp_path):
    dev = Dev(tmp_path)
    try:
        # The owner: no token, no flag, nothing to configure.
        wait_for(lambda: dev.cli("node", "list", check=False).returncode == 0 and
                 "yes" in dev.cli("node", "list").stdout, 60, what="dev's agent")
        spec = write(tmp_path / "sec.yml", SPEC)
        dev.cli("service", "deploy", "-f", spec, "-o", "DB_PASSWORD=hunter2", "--wait",
                "--timeout", "60")
        # Also with HOLDFAST_ADDR naming the dev (and no --addr).
        p = subprocess.run([BIN, "service", "list"], capture_output=True, text=True,
                           env={**dev.env, "HOLDFAST_ADDR": dev.url}, timeout=60)
        assert p.returncode == 0 and "sec" in p.stdout, p.stderr
        before = dev.cli("--json", "service", "list").stdout
        marker = tmp_path / "pwned"
        evil = {"spec": f"name: evil\npods:\n  p:\n    count: 1\n    tasks:\n      t:\n"
                        f"        goal: RUNNING\n        cmd: id > {marker}; sleep 1000\n"
                        f"        cpus: 0.1\n        memory: 32\n", "options": {}, "templates": {}}
        body = json.dumps(evil)
        # As nobody: every mutating route answers 401, whatever it is sent.
        mutating = [(m, p) for m, p, f in route_table() if m != "GET"]
        assert len(mutating) >= 15
        for method, pattern in mutating:
            for ctype in ("application/json", "text/plain"):
                p = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                              "-H", f"Content-Type: {ctype}", "--data-binary", body,
                              dev.url + concrete(pattern))
                assert p.stdout == "401", (method, pattern, ctype, p.stdout, p.stderr)
        # ... and reads too: logs and events may hold anything.
        for path in ("/v1/services", "/v1/events?follow=false", "/v1/tasks/app-0-server/logs",
                     "/v1/service/sec/configurations/target"):
            p = as_nobody("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", dev.url + path)
            assert p.stdout == "401", (path, p.stdout)
        # nobody finds no credential: its own would be under its home.
        p = as_nobody("curl", "-s", dev.url + "/v1/version")
        assert json.loads(p.stdout)["version"]

        # A web page: the browser sends a "simple" request with its Host
        # and Origin. Even carrying the owner's token it is refused.
        token = local_credential(dev.url)
        for hdrs in ([f"Host: evil.example:{dev.port}", "Origin: http://evil.example",
                      "Content-Type: text/plain"],
                     [f"Host: 127.0.0.1:{dev.port}", "Origin: http://evil.example",
                      "Content-Type: text/plain"],
                     [f"Host: 127.0.0.1:{dev.port}", "Content-Type: text/plain"],
                     [f"Host: 127.0.0.1:{dev.port}",
                      "Content-Type: application/x-www-form-urlencoded"]):
            args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                    "-H", f"Authorization: Bearer {token}", "--data-binary", body]
            for h in hdrs:
                args += ["-H", h]
            code = subprocess.run(args + [dev.url + "/v1/services"], capture_output=True,
                                  text=True).stdout
            assert code in ("403", "415"), (hdrs, code)

        # Nothing changed: no service, nothing ran.
        assert dev.cli("--json", "service", "list").stdout == before
        time.sleep(1)
        assert not marker.exists()
        # The owner still operates it, as before.
        dev.cli("-s", "sec", "pod", "restart", "app-0")
        dev.cli("-s", "sec", "plan", "show", "deploy")
        # The credential is the owner's alone.
        cred = os.path.join(os.path.expanduser("~root"), ".config", "holdfast", "credentials",
                            f"local-{dev.port}")
        st = os.stat(cred)
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
        assert stat.S_IMODE(os.stat(os.path.dirname(cred)).st_mode) == 0o700
        assert token
    finally:
        dev.stop()
    # A stopped dev takes its credential away.
    assert local_credential(dev.url) is None


def test_local_credential_others_can_read_is_not_used(tmp_path):
    cl = Cluster(tmp_path).start()
    try:
        assert cl.cli("node", "list").returncode == 0
        path = os.path.join(cl.config_dir, "credentials", f"local-{cl.port}")
        os.chmod(path, 0o644)
        p = cl.cli("node", "list", check=False)
        assert p.returncode == 1 and "not a private file" in p.stderr, p.stderr
        os.chmod(path, 0o600)
        # A non-loopback address never gets it.
        p = cl.cli("--addr", f"http://10.255.255.1:{cl.port}", "node", "list", check=False,
                   timeout=60)
        assert p.returncode == 3
    finally:
        cl.stop()


# ---------------------------------------------------------------------------
# Secrets in the diff

ADMIN = "sec-admin-" + secrets.token_hex(8)
READ = "sec-read-" + secrets.token_hex(8)
AGENT = "sec-agent-" + secrets.token_hex(8)


class AuthCluster(Cluster):
    def __init__(self, tmp, **kw):
        super().__init__(tmp, tokens={"admin": ADMIN, "read": READ, "agent": AGENT}, **kw)

    def req(self, method, path, body=None, token=ADMIN):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        st, data = request(self.port, method, path,
                           json.dumps(body) if body is not None else None, h)
        try:
            return st, json.loads(data or b"null")
        except ValueError:
            return st, data


@pytest.fixture(scope="module")
def acl(tmp_path_factory):
    cl = AuthCluster(tmp_path_factory.mktemp("sec"))
    cl.start()
    spec = write(os.path.join(cl.tmp, "sec.yml"), SPEC)
    cl.deploy(spec, "-o", "DB_PASSWORD=hunter2-PASSWORD-VALUE")
    yield cl
    cl.stop()


def test_diff_does_not_show_secret_values(acl):
    new = {"spec": SPEC.replace("GREETING: hello", "GREETING: bye"),
           "options": {"DB_PASSWORD": "changed-PASSWORD-VALUE"}, "templates": {}}
    st, body = acl.req("POST", "/v1/services/sec/diff", new, token=READ)
    assert st == 200, body
    text = json.dumps(body)
    assert "GREETING" in text and "bye" in text  # ordinary values are shown
    assert "DB_PASSWORD" in text and "(hidden)" in text
    assert "hunter2" not in text and "changed-PASSWORD" not in text
    # The CLI's diff and update print no value either.
    spec2 = write(os.path.join(acl.tmp, "sec2.yml"), new["spec"])
    p = acl.cli("service", "diff", "sec", "-f", spec2, "-o", "DB_PASSWORD=changed-PASSWORD-VALUE",
                check=False)
    assert "DB_PASSWORD" in p.stdout + p.stderr
    assert "hunter2" not in p.stdout + p.stderr and "changed-PASSWORD" not in p.stdout + p.stderr
    p = acl.cli("service", "update", "sec", "-f", spec2, "-o",
                "DB_PASSWORD=changed-PASSWORD-VALUE", "--wait", "--timeout", "60")
    assert "DB_PASSWORD" in p.stdout + p.stderr
    assert "hunter2" not in p.stdout + p.stderr and "changed-PASSWORD" not in p.stdout + p.stderr


# ---------------------------------------------------------------------------
# Each node its own identity


def node_token(cl):
    with open(os.path.join(cl.agent_data, "node-token")) as f:
        return f.read().strip()


def test_a_node_cannot_act_as_another(acl):
    st, pods = acl.req("GET", "/v1/service/sec/pod/status")
    task = pods["pods"][0]["tasks"][0]
    assert task["status"] == "RUNNING"
    forged = {"node_id": "node-1", "seq": time.time() * 1000 + 1e9, "generation": 0, "wait": 0,
              "info": {"api": "http://127.0.0.1:1", "api_key": "stolen"},
              "tasks": [{"task_id": task["id"], "state": "exited", "exit_code": 1}]}
    # The shared join token no longer syncs, for node-1 or anyone.
    st, body = acl.req("POST", "/v1/agent/sync", forged, token=AGENT)
    assert st == 403, body
    # Another node, registered with the join token, cannot report for node-1.
    other = secrets.token_hex(32)
    st, body = acl.req("POST", "/v1/agent/register", {"node_id": "intruder", "token": other},
                       token=AGENT)
    assert st == 200, body
    st, body = acl.req("POST", "/v1/agent/sync", forged, token=other)
    assert st == 403 and "node intruder" in body["message"], body
    # Nor take node-1's identity with the join token alone.
    st, body = acl.req("POST", "/v1/agent/register",
                       {"node_id": "node-1", "token": secrets.token_hex(32)}, token=AGENT)
    assert st == 409 and "reset-identity" in body["message"], body
    # node-1's task was not replaced, and its agent still serves its logs.
    time.sleep(1)
    st, pods = acl.req("GET", "/v1/service/sec/pod/status")
    now = pods["pods"][0]["tasks"][0]
    assert now["id"] == task["id"] and now["status"] == "RUNNING", now
    assert "started" in acl.cli("task", "logs", "app-0-server").stdout
    # The node's own credential syncs as itself.
    st, body = acl.req("POST", "/v1/agent/sync", {"node_id": "node-1", "wait": 0},
                       token=node_token(acl))
    assert st == 200 and task["id"] in {t["task_id"] for t in body["tasks"]}


def test_agent_credentials_read_nothing_else(acl):
    paths = ("/v1/services", "/v1/nodes", "/v1/events?follow=false", "/metrics",
             "/v1/tasks/app-0-server/logs", "/v1/service/sec/configurations/target")
    for path in paths:
        st, body = acl.req("GET", path, token=AGENT)
        assert st == 403, (path, st, body)
    node = node_token(acl)
    for path in paths:
        st, body = acl.req("GET", path, token=node)
        assert st == 403, (path, st, body)


def test_reset_identity(acl):
    t1, t2 = secrets.token_hex(32), secrets.token_hex(32)
    reg = lambda t: acl.req("POST", "/v1/agent/register", {"node_id": "ghost", "token": t},
                            token=AGENT)[0]
    assert reg(t1) == 200
    assert reg(t1) == 200  # the same agent again (a lost answer): fine
    assert reg(t2) == 409  # a rebuilt machine, or an impostor
    # Reading nodes: the operator resets the identity.
    p = acl.cli("node", "reset-identity", "ghost")
    assert "identity reset" in p.stdout
    assert reg(t2) == 200
    st, _ = acl.req("POST", "/v1/agent/sync", {"node_id": "ghost", "wait": 0}, token=t1)
    assert st == 401
    st, _ = acl.req("POST", "/v1/agent/sync", {"node_id": "ghost", "wait": 0}, token=t2)
    assert st == 200
    assert acl.cli("node", "reset-identity", "nosuch", check=False).returncode == 1
    # An agent whose identity was reset registers again with its join
    # token and goes on (its credential file is the same).
    acl.cli("node", "reset-identity", "node-1")
    wait_for(lambda: "node-1: its credential is registered" in acl.agent_log() and
             acl.agent_log().count("its credential is registered") >= 2, 30,
             what="the agent to register again")
    wait_for(lambda: all(n["connected"] for n in acl.api("GET", "/v1/nodes")[1]
                         if n["id"] == "node-1"), 30, what="node-1 connected")


# ---------------------------------------------------------------------------
# Credentials out of argv, the environment and readable files


def test_credential_files_must_be_private(tmp_path):
    tokens = write(tmp_path / "tokens", f"admin {ADMIN}\n")
    os.chmod(tokens, 0o644)
    p = subprocess.run([BIN, "server", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                        "--tokens", tokens], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "every local user read it" in p.stderr and "chmod 600" in p.stderr, p.stderr
    tf = write(tmp_path / "agent-token", AGENT + "\n")
    os.chmod(tf, 0o644)
    p = subprocess.run([BIN, "agent", "--server", "http://127.0.0.1:1", "--data",
                        str(tmp_path / "a"), "--token-file", tf], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "chmod 600" in p.stderr, p.stderr


def test_tokens_stay_out_of_argv_and_environ(tmp_path):
    cl = AuthCluster(tmp_path)
    cl.start_server()
    try:
        log = open(tmp_path / "agent2.log", "ab")
        agent = subprocess.Popen(
            [BIN, "agent", "--server", cl.url, "--data", str(tmp_path / "a2"), "--node-id",
             "argv-node", "--token", AGENT], stdout=log, stderr=log,
            env={**cl._env(), "HOLDFAST_TOKEN": AGENT}, start_new_session=True)
        try:
            wait_for(lambda: any(n["id"] == "argv-node" and n["connected"]
                                 for n in cl.api("GET", "/v1/nodes")[1]), 30,
                     what="the agent to join")
            cmdline = open(f"/proc/{agent.pid}/cmdline", "rb").read()
            environ = open(f"/proc/{agent.pid}/environ", "rb").read()
            assert AGENT.encode() not in cmdline
            assert AGENT.encode() not in environ
            assert "--token shows the token to every local user" in \
                open(tmp_path / "agent2.log").read()
            # Its own credential is private.
            st = os.stat(tmp_path / "a2" / "node-token")
            assert stat.S_IMODE(st.st_mode) == 0o600
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
            log.close()
    finally:
        cl.stop()


# ---------------------------------------------------------------------------
# What one peer can cost


def test_idle_and_trickling_peers_do_not_shut_out_others(tmp_path):
    cl = Cluster(tmp_path)
    # Few connections in all, so that one peer could take them all.
    cl.server_args = ["--max-connections", "64"]
    cl.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    held = []
    try:
        # One peer (127.0.0.2) opens more idle connections than the server
        # takes in all.
        for _ in range(100):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", cl.port))
            held.append(s)
        # Others are served: the CLI, and the agent (its node stays connected
        # and a deploy runs on it).
        assert "node-1" in cl.cli("node", "list").stdout
        spec = write(tmp_path / "sec.yml", SPEC)
        cl.deploy(spec, "-o", "DB_PASSWORD=x", timeout=60)
        assert all(n["connected"] for n in cl.api("GET", "/v1/nodes")[1])
        # Past its share, the peer was refused at once (503), not queued.
        refused = 0
        for s in held:
            s.settimeout(5)
            try:
                if s.recv(64).startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                pass
        assert refused >= 100 - 16, refused
    finally:
        for s in held:
            s.close()
        cl.stop()


def test_a_trickled_request_is_cut_at_the_deadline(tmp_path):
    cl = Cluster(tmp_path)
    # The default deadline is 30 s; this server is started with 2 s.
    cl.server_args = ["--request-timeout", "2"]
    cl.start_server()
    try:
        head = (f"GET /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {cl.token()}\r\nX-Pad: {'a' * 150}\r\n\r\n").encode()
        s = socket.create_connection(("127.0.0.1", cl.port))
        s.settimeout(0.2)
        sent, answer = 0, b""
        # A byte every 0.2 s keeps any idle timeout from firing; the whole
        # head would take over 40 s.
        while sent < len(head):
            s.send(head[sent:sent + 1])
            sent += 1
            try:
                answer = s.recv(4096)
                break
            except socket.timeout:
                pass
        s.settimeout(10)
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                answer += b
        except OSError:
            pass
        s.close()
        assert sent < len(head), "the trickled head was read to its end"
        assert answer.startswith(b"HTTP/1.1 408"), answer
        # The server is fine.
        assert cl.api("GET", "/v1/services")[0] == 200
    finally:
        cl.stop()


# ---------------------------------------------------------------------------
# HTTP rough edges


def test_http_rough_edges(acl):
    port = acl.port
    # A chunked body far over the limit: 413, not a cut connection.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        def chunks():
            for _ in range(48):
                yield b"x" * 65536
        conn.request("POST", "/v1/services", body=chunks(), encode_chunked=True,
                     headers={"Authorization": f"Bearer {ADMIN}",
                              "Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        assert r.status == 413, (r.status, r.read())
        assert json.loads(r.read())["error"] == "too-large"
    finally:
        conn.close()
    # A malformed Content-Length: one status line, a JSON error.
    for cl in (b"-5", b"abc", b"5, 6", b"99999999999999999999999"):
        out = raw_request(port, b"POST /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Length: " + cl + b"\r\n\r\nhello")
        assert out.count(b"HTTP/1.1 ") == 1, (cl, out)
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.1 413"), out
        assert json.loads(body)["error"] in ("bad-request", "too-large"), out
    # Headers that decide how a request is trusted or read are given once:
    # two readers could each believe a different one.
    for extra in (b"Host: evil.example\r\n",
                  b"Origin: http://127.0.0.1\r\nOrigin: http://evil.example\r\n",
                  b"Authorization: Bearer " + ADMIN.encode() + b"\r\n"):
        out = raw_request(port, b"GET /v1/services HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Authorization: Bearer " + ADMIN.encode() + b"\r\n" + extra +
                          b"Connection: close\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), (extra, out)
        assert b"is given more than once" in body, out
    # Booleans are booleans; single-valued keys are given once.
    for path in ("/v1/events?follow=maybe", "/v1/events?follow=false&since=1&since=2",
                 "/v1/tasks/app-0-server/logs?follow=yes", "/v1/events?follow=",
                 "/v1/events?service=a&service=b"):
        st, body = acl.req("GET", path)
        assert st == 400 and body["error"] == "bad-request", (path, st, body)
    st, body = acl.req("DELETE", "/v1/services/nosuch?delete_volumes=yes")
    assert st == 400, body
    st, _ = acl.req("GET", "/v1/events?follow=false&since=1")
    assert st == 200
