"""Contract tests of the operator HTTP API (issue 4): every route in the
table of src/server/api.c, its JSON shapes and status codes, its errors
({"error", "message"}), auth with admin / read / agent tokens, the body
limit, server-sent events, Prometheus metrics, task logs and exec, plan
parameters and overrides (also across `kill -9` of the server), pod
restart / replace / pause / resume, endpoints, configurations and secrets.

One server + agent (with --tokens) is shared by the module; tests that need
a fresh server (kill -9) start their own.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import time

import pytest

from holdfast_harness import BIN, REPO, Cluster, wait_for, write

ADMIN = "admin-7f3c9e1d2b"
READ = "read-5a8b2c4e6f"
AGENT = "agent-9d1e3f5a7c"


class AuthCluster(Cluster):
    """A Cluster whose server runs with --tokens (admin, read, agent),
    with raw requests for status codes and headers."""

    def __init__(self, tmp, **kw):
        super().__init__(tmp, tokens={"admin": ADMIN, "read": READ, "agent": AGENT}, **kw)

    def request(self, method, path, body=None, token=ADMIN, headers=None, timeout=30):
        """(status, headers (lower-case names), body bytes). body: bytes, str or JSON value."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def api(self, method, path, body=None, token=ADMIN):
        st, _, data = self.request(method, path, body, token=token)
        return st, json.loads(data or b"null")


# ---------------------------------------------------------------------------
# Specs

SVC_SPEC = """
name: svc
pods:
  app:
    count: 2
    volume: {path: shared, type: ROOT, size: 10}
    tasks:
      server:
        goal: RUNNING
        cmd: |
          echo "$DB_PASSWORD" > shared/pw
          echo out-line-1; echo out-line-2; echo out-line-3
          echo err-line >&2
          exec sleep 1000
        cpus: 0.1
        memory: 32
        env:
          DB_PASSWORD: "{{DB_PASSWORD}}"
          GREETING: hello
        ports:
          http: {port: 0, env-key: PORT_HTTP, advertise: true}
          admin: {port: 0, env-key: PORT_ADMIN}
        readiness-check: {cmd: test -s shared/pw, interval: 1, delay: 0, timeout: 5}
      side:
        goal: FINISH
        cmd: echo "$PARAM" > shared/param
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      app:
        strategy: parallel
        pod: app
        steps:
          - default: [[server]]
  side:
    strategy: serial
    phases:
      s:
        strategy: parallel
        pod: app
        steps:
          - default: [[side]]
  never:
    strategy: serial
    phases:
      n:
        strategy: serial
        pod: app
        steps:
          - default: [[side]]
"""

PODS_SPEC = """
name: pods
pods:
  db:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: |
          test -f data/born || date +%s%N > data/born
          echo start >> data/starts
          while :; do touch data/alive; sleep 0.5; done
        cpus: 0.1
        memory: 32
        kill-grace-period: 1
        volume: {path: data, type: ROOT, size: 10}
        readiness-check: {cmd: test -f data/alive, interval: 1, delay: 0, timeout: 5}
"""

WAITING_SPEC = """
name: waiting
pods:
  c:
    count: 2
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.1, memory: 32}
plans:
  deploy:
    strategy: serial
    phases:
      c: {strategy: serial-canary, pod: c}
"""

BAD_SPEC = """
name: bad
pods:
  b:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.1
        memory: 32
        kill-grace-period: 1
        readiness-check: {cmd: "false", interval: 1, delay: 0, timeout: 5}
plans:
  deploy:
    strategy: serial
    healthy-deadline: 2
    phases:
      b: {strategy: serial, pod: b}
"""


def spec_body(text, options=None, file="spec.yml"):
    return {"spec": text, "file": file, "options": options or {}, "templates": {}}


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    c = AuthCluster(tmp)
    c.start()
    try:
        c.deploy(write(tmp / "svc.yml", SVC_SPEC), "-o", "DB_PASSWORD=hunter2")
        c.deploy(write(tmp / "pods.yml", PODS_SPEC))
        c.deploy(write(tmp / "waiting.yml", WAITING_SPEC), wait=False)
        c.deploy(write(tmp / "bad.yml", BAD_SPEC), wait=False)
        yield c
    finally:
        c.stop()


# ---------------------------------------------------------------------------
# Helpers

def is_error(resp, status, code=None):
    st, body = resp
    assert st == status, resp
    assert isinstance(body, dict), resp
    assert isinstance(body.get("error"), str) and body["error"], resp
    assert isinstance(body.get("message"), str) and len(body["message"]) > 5, resp
    if code:
        assert body["error"] == code, resp
    return body


def types_of(d, spec):
    """Asserts that d has every key of spec with a value of that type."""
    assert isinstance(d, dict), d
    for k, t in spec.items():
        assert k in d, (k, d)
        assert isinstance(d[k], t), (k, d[k], t)


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            fields[k] = v[1:] if v.startswith(" ") else v
        if "data" in fields:
            fields["json"] = json.loads(fields["data"])
            events.append(fields)
    return events


def find_file(root, name):
    for r, _, fs in os.walk(root):
        if name in fs:
            return os.path.join(r, name)
    return None


def read_file(root, name):
    p = find_file(root, name)
    return open(p).read() if p else None


def route_table():
    """(method, pattern, flags) of every route in src/server/api.c."""
    src = open(os.path.join(REPO, "src/server/api.c")).read()
    table = src[src.index("static const struct hf_http_route routes[]"):]
    table = table[:table.index("};")]
    return [(m, p, f) for m, p, f in
            re.findall(r'\{\s*"(\w+)",\s*"([^"]+)",\s*\w+,\s*([A-Z_ |]+)', table)]


# Every route with a request that exercises it on the module's cluster, and
# the status an admin gets. Mutating ones target things that do not exist
# (404) or need a body (400) so that the auth checks change nothing.
ROUTES = {
    ("POST", "/v1/agent/sync"): ("/v1/agent/sync", {"node_id": "node-1", "wait": 0}, 200),
    ("POST", "/v1/agent/register"): ("/v1/agent/register", {}, 400),
    ("POST", "/v1/nodes/{node}/reset-identity"): ("/v1/nodes/nosuch/reset-identity", None, 404),
    ("GET", "/v1/version"): ("/v1/version", None, 200),
    # The web UI's files are public; the page calls the API with a token.
    ("GET", "/ui"): ("/ui", None, 308),
    ("GET", "/ui/{asset*}"): ("/ui/", None, 200),
    ("GET", "/v1/whoami"): ("/v1/whoami", None, 200),
    ("GET", "/v1/leader"): ("/v1/leader", None, 200),
    ("GET", "/v1/services"): ("/v1/services", None, 200),
    ("POST", "/v1/services"): ("/v1/services", {}, 400),
    ("GET", "/v1/services/{svc}"): ("/v1/services/svc", None, 200),
    ("DELETE", "/v1/services/{svc}"): ("/v1/services/nosuch", None, 404),
    ("PUT", "/v1/services/{svc}"): ("/v1/services/svc", {}, 400),
    ("POST", "/v1/services/{svc}/diff"): ("/v1/services/svc/diff", {}, 400),
    ("POST", "/v1/services/{svc}/rollback"): ("/v1/services/nosuch/rollback", None, 404),
    ("GET", "/v1/nodes"): ("/v1/nodes", None, 200),
    ("POST", "/v1/nodes/{node}/decommission"): ("/v1/nodes/nosuch/decommission", None, 404),
    ("POST", "/v1/nodes/{node}/adopt"): ("/v1/nodes/nosuch/adopt", None, 404),
    ("GET", "/v1/store/backup"): ("/v1/store/backup", None, 200),
    ("GET", "/v1/volumes"): ("/v1/volumes?service=svc", None, 200),
    ("GET", "/v1/external-volumes"): ("/v1/external-volumes", None, 200),
    ("GET", "/v1/external-volumes/{name}"): ("/v1/external-volumes/nosuch", None, 404),
    ("POST", "/v1/external-volumes/{name}/resize"): ("/v1/external-volumes/nosuch/resize",
                                                     {"size": "2G"}, 404),
    ("GET", "/v1/external-volumes/{name}/snapshots"): ("/v1/external-volumes/nosuch/snapshots",
                                                        None, 404),
    ("POST", "/v1/external-volumes/{name}/snapshots"): ("/v1/external-volumes/nosuch/snapshots",
                                                        {"name": "s1"}, 404),
    ("DELETE", "/v1/external-volumes/{name}/snapshots/{snap}"): (
        "/v1/external-volumes/nosuch/snapshots/s1", None, 404),
    ("POST", "/v1/external-volumes/{name}/snapshots/{snap}/clone"): (
        "/v1/external-volumes/nosuch/snapshots/s1/clone", {"name": "n-db-0"}, 404),
    ("GET", "/v1/credentials"): ("/v1/credentials", None, 200),
    ("POST", "/v1/credentials"): ("/v1/credentials", {"type": "s3"}, 400),
    ("DELETE", "/v1/credentials/{name}"): ("/v1/credentials/nosuch", None, 404),
    ("POST", "/v1/external-volumes/{name}/backups"): (
        "/v1/external-volumes/nosuch/backups", {"to": "bad"}, 400),
    ("GET", "/v1/external-volumes/{name}/backups"): (
        "/v1/external-volumes/nosuch/backups", None, 404),
    ("DELETE", "/v1/external-volumes/{name}/backups/{id}"): (
        "/v1/external-volumes/nosuch/backups/b1", None, 404),
    ("PUT", "/v1/external-volumes/{name}/backup-schedule"): (
        "/v1/external-volumes/nosuch/backup-schedule", {"to": "bad"}, 400),
    ("DELETE", "/v1/external-volumes/{name}/backup-schedule"): (
        "/v1/external-volumes/nosuch/backup-schedule", None, 404),
    ("POST", "/v1/external-volumes/{name}/from-backup"): (
        "/v1/external-volumes/nosuch/from-backup", {"from": "bad"}, 400),
    ("POST", "/v1/external-volumes/{name}/restore"): ("/v1/external-volumes/nosuch/restore",
                                                      {"snapshot": "s1"}, 404),
    ("DELETE", "/v1/volumes/{svc}"): ("/v1/volumes/nosuch", None, 404),
    ("DELETE", "/v1/volumes/{svc}/{pod}"): ("/v1/volumes/nosuch/nosuch-0", None, 404),
    ("GET", "/v1/events"): ("/v1/events?follow=false", None, 200),
    ("GET", "/metrics"): ("/metrics", None, 200),
    ("GET", "/v1/tasks/{task}/logs"): ("/v1/tasks/nosuch-0-x/logs", None, 404),
    ("POST", "/v1/tasks/{task}/exec"): ("/v1/tasks/nosuch-0-x/exec", {"cmd": "true"}, 404),
    ("GET", "/v1/service/{svc}/plans"): ("/v1/service/svc/plans", None, 200),
    ("GET", "/v1/service/{svc}/plans/{plan}"): ("/v1/service/svc/plans/deploy", None, 200),
    ("POST", "/v1/service/{svc}/plans/{plan}/start"): ("/v1/service/svc/plans/nosuch/start", None, 404),
    ("POST", "/v1/service/{svc}/plans/{plan}/stop"): ("/v1/service/svc/plans/nosuch/stop", None, 404),
    ("POST", "/v1/service/{svc}/plans/{plan}/interrupt"): ("/v1/service/svc/plans/nosuch/interrupt", None, 404),
    ("POST", "/v1/service/{svc}/plans/{plan}/continue"): ("/v1/service/svc/plans/nosuch/continue", None, 404),
    ("POST", "/v1/service/{svc}/plans/{plan}/forceComplete"):
        ("/v1/service/svc/plans/nosuch/forceComplete?phase=a&step=b", None, 404),
    ("POST", "/v1/service/{svc}/plans/{plan}/restart"):
        ("/v1/service/svc/plans/nosuch/restart?phase=a&step=b", None, 404),
    ("GET", "/v1/service/{svc}/pod"): ("/v1/service/svc/pod", None, 200),
    ("GET", "/v1/service/{svc}/pod/status"): ("/v1/service/svc/pod/status", None, 200),
    ("GET", "/v1/service/{svc}/pod/{pod}/status"): ("/v1/service/svc/pod/app-0/status", None, 200),
    ("POST", "/v1/service/{svc}/pod/{pod}/restart"): ("/v1/service/svc/pod/nosuch-0/restart", None, 404),
    ("POST", "/v1/service/{svc}/pod/{pod}/replace"): ("/v1/service/svc/pod/nosuch-0/replace", None, 404),
    ("POST", "/v1/service/{svc}/pod/{pod}/pause"): ("/v1/service/svc/pod/nosuch-0/pause", None, 404),
    ("POST", "/v1/service/{svc}/pod/{pod}/resume"): ("/v1/service/svc/pod/nosuch-0/resume", None, 404),
    ("PUT", "/v1/service/{svc}/pod-types/{pod}/count"):
        ("/v1/service/svc/pod-types/nosuch/count", {"count": 1}, 404),
    ("DELETE", "/v1/service/{svc}/pod-types/{pod}/count"):
        ("/v1/service/svc/pod-types/nosuch/count", None, 404),
    ("GET", "/v1/service/{svc}/autoscale"): ("/v1/service/svc/autoscale", None, 200),
    ("GET", "/v1/service/{svc}/endpoints"): ("/v1/service/svc/endpoints", None, 200),
    ("GET", "/v1/service/{svc}/endpoints/{name}"): ("/v1/service/svc/endpoints/http", None, 200),
    ("GET", "/v1/service/{svc}/configurations"): ("/v1/service/svc/configurations", None, 200),
    ("GET", "/v1/service/{svc}/configurations/{id}"): ("/v1/service/svc/configurations/target", None, 200),
    ("GET", "/v1/service/{svc}/configurations/{id}/source"):
        ("/v1/service/svc/configurations/target/source", None, 200),
    ("GET", "/v1/service/{svc}/health"): ("/v1/service/svc/health", None, 200),
    ("GET", "/v1/service/{svc}/pod/{pod}/info"): ("/v1/service/svc/pod/app-0/info", None, 200),
    ("GET", "/v1/stacks"): ("/v1/stacks", None, 200),
    ("POST", "/v1/stacks"): ("/v1/stacks", {}, 400),
    ("GET", "/v1/stacks/{stack}"): ("/v1/stacks/nosuch", None, 404),
    ("PUT", "/v1/stacks/{stack}"): ("/v1/stacks/nosuch", {}, 400),
    ("DELETE", "/v1/stacks/{stack}"): ("/v1/stacks/nosuch", None, 404),
    ("POST", "/v1/stacks/{stack}/diff"): ("/v1/stacks/nosuch/diff", {}, 400),
    ("GET", "/v1/remotes"): ("/v1/remotes", None, 200),
    ("POST", "/v1/remotes"): ("/v1/remotes", {}, 400),
    ("GET", "/v1/remotes/{name}"): ("/v1/remotes/nosuch", None, 404),
    ("DELETE", "/v1/remotes/{name}"): ("/v1/remotes/nosuch", None, 404),
    # Only a remote cluster's client certificate (test_remotes.py): no token.
    ("GET", "/v1/dr/hello"): ("/v1/dr/hello", None, 403),
    ("PUT", "/v1/dr/standby/{svc}"): ("/v1/dr/standby/svc", {}, 403),
    ("DELETE", "/v1/dr/standby/{svc}"): ("/v1/dr/standby/svc", None, 403),
    ("GET", "/v1/dr"): ("/v1/dr", None, 200),
    ("POST", "/v1/service/{svc}/dr"): ("/v1/service/nosuch/dr", {"to": "b"}, 404),
    ("DELETE", "/v1/service/{svc}/dr"): ("/v1/service/nosuch/dr", None, 404),
    ("GET", "/v1/service/{svc}/dr"): ("/v1/service/nosuch/dr", None, 404),
    ("POST", "/v1/service/{svc}/dr/failover"): ("/v1/service/nosuch/dr/failover", {}, 404),
    ("POST", "/v1/service/{svc}/dr/switchover"): ("/v1/service/nosuch/dr/switchover", {}, 404),
    ("POST", "/v1/dr/standby/{svc}/promote"): ("/v1/dr/standby/svc/promote", {}, 403),
    ("POST", "/v1/service/{svc}/dr/failback"): ("/v1/service/nosuch/dr/failback", {}, 404),
    ("POST", "/v1/dr/failback/{svc}"): ("/v1/dr/failback/svc", {}, 403),
}


def test_every_route_is_covered():
    table = route_table()
    assert len(table) >= 30
    assert {(m, p) for m, p, _ in table} == set(ROUTES)


# ---------------------------------------------------------------------------
# Auth

def node_token(cl):
    """The harness agent's own credential (nodeauth.h), from its data dir."""
    with open(os.path.join(cl.agent_data, "node-token")) as f:
        return f.read().strip()


def test_auth_matrix(cl):
    node = node_token(cl)
    for (method, pattern), (path, body, admin_status) in ROUTES.items():
        flags = [f for m, p, f in route_table() if (m, p) == (method, pattern)][0]
        write_route = "HF_ROUTE_WRITE" in flags or "HF_ROUTE_REMOTE" in flags
        agent_route = "HF_ROUTE_AGENT" in flags
        join_route = "HF_ROUTE_JOIN" in flags
        public = "HF_ROUTE_PUBLIC" in flags
        # No token, or a token the server does not know: 401 with a challenge.
        for tok in (None, "not-a-token"):
            st, hdrs, data = cl.request(method, path, body, token=tok)
            if public:
                assert st == admin_status, (method, path, tok, st, data)
                continue
            assert st == 401, (method, path, tok, st, data)
            assert json.loads(data)["error"] == "unauthorized"
            assert hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs
        if public:
            continue
        # Read token: reads yes, writes and the agent protocol no.
        st, _, data = cl.request(method, path, body, token=READ)
        if write_route or agent_route or join_route:
            assert st == 403, (method, path, st, data)
            assert json.loads(data)["error"] == "forbidden"
        else:
            assert st == admin_status, (method, path, st, data)
        # Agent (join) token: registering a node, nothing else.
        st, _, data = cl.request(method, path, body, token=AGENT)
        if join_route:
            assert st == admin_status, (method, path, st, data)
        else:
            assert st == 403, (method, path, st, data)
        # A node's own credential: its sync only.
        st, _, data = cl.request(method, path, body, token=node)
        if agent_route:
            assert st == admin_status, (method, path, st, data)
        else:
            assert st == 403, (method, path, st, data)
        # Admin: everything but a node's sync (the status the handler gives).
        st, _, data = cl.request(method, path, body, token=ADMIN)
        if agent_route:
            assert st == 403, (method, path, st, data)
        else:
            assert st == admin_status, (method, path, st, data)
    # Nothing was changed by the refused calls.
    assert [s["name"] for s in cl.api("GET", "/v1/services")[1]] == ["svc", "pods", "waiting", "bad"]
    assert all(n["connected"] and not n["decommissioned"] for n in cl.api("GET", "/v1/nodes")[1])


def test_unknown_path_needs_a_token_too(cl):
    st, hdrs, _ = cl.request("GET", "/v1/no/such/thing", token=None)
    assert st == 401
    is_error(cl.api("GET", "/v1/no/such/thing"), 404, "not-found")


def test_tokens_are_never_echoed(cl):
    st, _, data = cl.request("GET", "/v1/services", token="wrong-" + ADMIN)
    assert st == 401 and ADMIN.encode() not in data
    st, _, data = cl.request("POST", "/v1/services", {"spec": "x"}, token=READ)
    assert st == 403 and READ.encode() not in data
    assert ADMIN not in cl.server_log() and READ not in cl.server_log()


def test_agent_sync_shape(cl):
    node = node_token(cl)
    st, body = cl.api("POST", "/v1/agent/sync", {"node_id": "node-1", "wait": 0}, token=node)
    assert st == 200
    types_of(body, {"generation": int, "tasks": list, "delete_volumes": list,
                    "heartbeat_interval": int})
    ids = {t["task_id"] for t in body["tasks"]}
    assert {t["id"] for t in cl.tasks("svc").values() if t["status"] == "RUNNING"} <= ids
    is_error(cl.api("POST", "/v1/agent/sync", {"wait": 0}, token=node), 400)


# ---------------------------------------------------------------------------
# Services

def test_services_shapes(cl):
    st, lst = cl.api("GET", "/v1/services")
    assert st == 200 and isinstance(lst, list)
    for s in lst:
        types_of(s, {"name": str, "config_id": str, "removing": bool, "plans": dict,
                     "tasks": dict, "created": int})
    svc = [s for s in lst if s["name"] == "svc"][0]
    assert svc["plans"]["deploy"] == "COMPLETE"
    assert set(svc["plans"]) >= {"deploy", "side", "never"}
    assert svc["tasks"].get("RUNNING") == 2
    st, one = cl.api("GET", "/v1/services/svc")
    assert st == 200 and one["name"] == "svc" and one["config_id"] == "1"
    is_error(cl.api("GET", "/v1/services/nosuch"), 404, "not-found")
    st, ver = cl.api("GET", "/v1/version")
    assert st == 200 and isinstance(ver["version"], str)


def test_deploy_errors(cl, tmp_path):
    # Malformed JSON.
    st, _, data = cl.request("POST", "/v1/services", b'{"spec": "name: x",')
    body = is_error((st, json.loads(data)), 400, "bad-json")
    assert "line" in body["message"]
    # JSON that is not an object with a spec.
    is_error(cl.api("POST", "/v1/services", ["spec"]), 400)
    is_error(cl.api("POST", "/v1/services", {"spec": 3}), 400)
    # Duplicate keys are rejected.
    st, _, data = cl.request("POST", "/v1/services", b'{"spec": "a", "spec": "b"}')
    assert st == 400
    # An invalid spec: 400 with diagnostics.
    st, body = cl.api("POST", "/v1/services", spec_body("name: x\npods: {}\n"))
    is_error((st, body), 400, "invalid-spec")
    assert isinstance(body.get("diagnostics"), list) and body["diagnostics"]
    # Options must be strings (or scalars).
    is_error(cl.api("POST", "/v1/services", {"spec": SVC_SPEC, "options": {"DB_PASSWORD": ["x"]}}), 400)
    # The service exists: 409.
    st, body = cl.api("POST", "/v1/services", spec_body(SVC_SPEC, {"DB_PASSWORD": "x"}))
    assert "svc" in is_error((st, body), 409)["message"]
    # A spec with an unsupported feature: 422 naming it.
    img = PODS_SPEC.replace("name: pods", "name: img").replace("    count: 1\n", "    count: 1\n    image: nginx:1.25\n")
    st, body = cl.api("POST", "/v1/services", spec_body(img))
    is_error((st, body), 422, "not-supported")
    assert "image" in json.dumps(body)
    # None of these created anything.
    assert "img" not in [s["name"] for s in cl.api("GET", "/v1/services")[1]]
    assert "x" not in [s["name"] for s in cl.api("GET", "/v1/services")[1]]


def test_body_limit(cl):
    big = b'{"spec": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", cl.port, timeout=30)
    try:
        conn.putrequest("POST", "/v1/services")
        conn.putheader("Authorization", f"Bearer {ADMIN}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(big)))
        conn.endheaders()
        try:
            conn.send(big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        status, data = r.status, r.read()
    finally:
        conn.close()
    body = is_error((status, json.loads(data)), 413, "too-large")
    assert "1048576" in body["message"]
    # Chunked, with no announced length.
    conn = http.client.HTTPConnection("127.0.0.1", cl.port, timeout=30)
    try:
        def chunks():
            for _ in range(24):
                yield b"x" * 65536
        try:
            conn.request("POST", "/v1/services", body=chunks(), encode_chunked=True,
                         headers={"Authorization": f"Bearer {ADMIN}",
                                  "Transfer-Encoding": "chunked"})
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        assert r.status == 413, (r.status, r.read())
    finally:
        conn.close()
    # A body just under the limit is read (and refused as a bad spec).
    ok = b'{"spec": "' + b"#" * (1024 * 1024 - 100) + b'"}'
    st, _, data = cl.request("POST", "/v1/services", ok)
    assert st == 400, (st, data[:200])
    # The server is fine.
    assert cl.api("GET", "/v1/version")[0] == 200


def test_update_diff_rollback_remove(cl, tmp_path):
    # Its task ignores SIGTERM, so that stopping it takes its grace period:
    # time to see the service "being removed".
    spec = PODS_SPEC.replace("name: pods", "name: upd").replace("db:", "u:") \
        .replace("kill-grace-period: 1", "kill-grace-period: 4") \
        .replace("test -f data/born", "trap '' TERM; test -f data/born")
    st, body = cl.api("POST", "/v1/services", spec_body(spec))
    assert st == 201, body
    assert body == {"name": "upd", "config_id": "1", "plan": "deploy"}
    cl.wait_plan("upd")
    # Same spec: 200, nothing changed.
    st, body = cl.api("PUT", "/v1/services/upd", spec_body(spec))
    assert st == 200 and body["changed"] is False and body["from"] == "1" and body["to"] is None, body
    # A refused change: volume size. Dry run says so with 200; update is 409.
    refused = spec.replace("size: 10", "size: 20")
    st, body = cl.api("POST", "/v1/services/upd/diff", spec_body(refused))
    assert st == 200 and body["refusals"] and body["changed"] is False, body
    st, body = cl.api("PUT", "/v1/services/upd", spec_body(refused))
    is_error((st, body), 409, "refused")
    assert body["refusals"] and isinstance(body["refusals"], list)
    assert cl.api("GET", "/v1/service/upd/configurations")[1] == ["1"]
    # The spec of another service: refused.
    is_error(cl.api("PUT", "/v1/services/upd", spec_body(PODS_SPEC)), 409)
    # No previous config to roll back to.
    is_error(cl.api("POST", "/v1/services/upd/rollback"), 409)
    # An allowed change.
    changed = spec.replace("sleep 0.5", "sleep 0.6")
    st, body = cl.api("POST", "/v1/services/upd/diff", spec_body(changed))
    assert st == 200 and body["refusals"] == [] and body["pods"], body
    st, body = cl.api("PUT", "/v1/services/upd", spec_body(changed))
    assert st == 200 and body["changed"] is True and body["from"] == "1" and body["to"] == "2", body
    for k in ("pods", "refusals", "changes"):
        assert isinstance(body[k], list), (k, body)
    assert cl.api("GET", "/v1/service/upd/configurations/targetId")[1] == "2"
    wait_for(lambda: cl.api("GET", "/v1/services/upd")[1]["plans"].get(
        "update", cl.api("GET", "/v1/services/upd")[1]["plans"]["deploy"]) == "COMPLETE",
        60, what="update complete")
    # Rollback to an unknown config: 404; to the previous one: 200.
    is_error(cl.api("POST", "/v1/services/upd/rollback?to=99"), 404)
    is_error(cl.api("POST", "/v1/services/upd/rollback?bogus=1"), 400, "bad-request")
    st, body = cl.api("POST", "/v1/services/upd/rollback")
    assert st == 200 and body["from"] == "2" and body["to"] == "1", body
    assert cl.api("GET", "/v1/service/upd/configurations/targetId")[1] == "1"
    is_error(cl.api("POST", "/v1/services/upd/rollback?to=1"), 409)
    # Remove: 202 with the volumes it keeps.
    is_error(cl.api("DELETE", "/v1/services/upd?bogus=1"), 400, "bad-request")
    st, body = cl.api("DELETE", "/v1/services/upd")
    assert st == 202, body
    types_of(body, {"name": str, "delete_volumes": bool, "volumes": list})
    assert body["delete_volumes"] is False
    assert [v["instance"] for v in body["volumes"]] == ["u-0"]
    types_of(body["volumes"][0], {"instance": str, "node": str, "key": str})
    # While it is being removed: deploying it again, updating it, acting on
    # its plans and pods conflict.
    assert cl.api("GET", "/v1/services/upd")[1]["removing"] is True
    assert "being removed" in is_error(cl.api("POST", "/v1/services", spec_body(spec)), 409)["message"]
    is_error(cl.api("PUT", "/v1/services/upd", spec_body(changed)), 409, "conflict")
    is_error(cl.api("POST", "/v1/service/upd/plans/deploy/start"), 409, "conflict")
    is_error(cl.api("POST", "/v1/service/upd/pod/u-0/restart"), 409, "conflict")
    wait_for(lambda: cl.api("GET", "/v1/services/upd")[0] == 404, 60, what="upd removed")
    is_error(cl.api("DELETE", "/v1/services/upd"), 404)


# ---------------------------------------------------------------------------
# Plans

def test_plans_shapes_and_codes(cl):
    st, plans = cl.api("GET", "/v1/service/svc/plans")
    assert st == 200 and plans[:3] == ["deploy", "side", "never"], plans
    assert "recovery" in plans
    st, p = cl.api("GET", "/v1/service/svc/plans/deploy")
    assert st == 200
    types_of(p, {"name": str, "status": str, "strategy": str, "phases": list, "errors": list})
    assert p["status"] == "COMPLETE" and p["errors"] == []
    ph = p["phases"][0]
    types_of(ph, {"id": str, "name": str, "status": str, "strategy": str, "steps": list})
    assert ph["name"] == "app" and ph["strategy"] == "parallel"
    for s in ph["steps"]:
        types_of(s, {"id": str, "name": str, "status": str, "message": str})
    assert [s["name"] for s in ph["steps"]] == ["app-0:[server]", "app-1:[server]"]
    # In progress (a canary waits): 202.
    st, p = cl.api("GET", "/v1/service/waiting/plans/deploy")
    assert st == 202 and p["status"] == "WAITING", p
    # ERROR (healthy-deadline passed): 417 with the errors listed.
    p = wait_for(lambda: (lambda r: r[0] == 417 and r[1])(cl.api("GET", "/v1/service/bad/plans/deploy")),
                 60, what="bad deploy in ERROR")
    assert p["status"] == "ERROR" and p["errors"], p
    assert "healthy-deadline" in p["phases"][0]["steps"][0]["message"]
    # Not started custom plan: 202 (PENDING).
    st, p = cl.api("GET", "/v1/service/svc/plans/never")
    assert st == 202 and p["status"] == "PENDING"
    # 404s.
    is_error(cl.api("GET", "/v1/service/nosuch/plans"), 404, "not-found")
    is_error(cl.api("GET", "/v1/service/nosuch/plans/deploy"), 404, "not-found")
    is_error(cl.api("GET", "/v1/service/svc/plans/nosuch"), 404, "not-found")
    # Unknown query keys and wrong methods.
    body = is_error(cl.api("GET", "/v1/service/svc/plans/deploy?verbose=1"), 400, "bad-request")
    assert "verbose" in body["message"]
    st, hdrs, data = cl.request("DELETE", "/v1/service/svc/plans/deploy")
    is_error((st, json.loads(data)), 405, "method-not-allowed")
    assert hdrs.get("allow") == "GET"
    st, hdrs, data = cl.request("GET", "/v1/service/svc/plans/deploy/start")
    assert st == 405 and "POST" in hdrs.get("allow", "")
    st, hdrs, data = cl.request("PUT", "/v1/services")
    assert st == 405 and set(hdrs.get("allow", "").replace(" ", "").split(",")) == {"GET", "POST"}


def test_health(cl):
    st, h = cl.api("GET", "/v1/service/svc/health")
    assert st == 200, h
    assert h == {"service": "svc", "health": "HEALTHY", "deploy": "COMPLETE", "recovery": "COMPLETE"}
    st, h = cl.api("GET", "/v1/service/waiting/health")
    assert st == 202 and h["health"] == "DEPLOYING_OR_RECOVERING" and h["deploy"] == "WAITING", h
    wait_for(lambda: cl.api("GET", "/v1/service/bad/health")[0] == 417, 60, what="bad health 417")
    st, h = cl.api("GET", "/v1/service/bad/health")
    assert h["health"] == "ERROR" and h["deploy"] == "ERROR"
    is_error(cl.api("GET", "/v1/service/nosuch/health"), 404)


def test_plan_operation_errors(cl):
    base = "/v1/service/svc/plans"
    # Bad parameter names and values: 400, nothing started.
    for params in ({"1BAD": "x"}, {"A-B": "x"}, {"": "x"}, {"A=B": "x"}, {"OK": {"nested": 1}},
                   {"OK": ["x"]}, ["PARAM"]):
        is_error(cl.api("POST", f"{base}/never/start", params), 400)
    st, _, data = cl.request("POST", f"{base}/never/start", b"{PARAM: 1}")
    assert st == 400 and json.loads(data)["error"] == "bad-json"
    assert cl.api("GET", f"{base}/never")[1]["status"] == "PENDING"
    # Not started: stop / interrupt / continue conflict.
    for op in ("stop", "interrupt", "continue"):
        is_error(cl.api("POST", f"{base}/never/{op}"), 409, "conflict")
    # Unknown service, plan, phase, step.
    is_error(cl.api("POST", "/v1/service/nosuch/plans/side/start"), 404)
    is_error(cl.api("POST", f"{base}/nosuch/start"), 404)
    is_error(cl.api("POST", f"{base}/side/interrupt?phase=nosuch"), 404)
    is_error(cl.api("POST", f"{base}/side/continue?phase=nosuch"), 404)
    is_error(cl.api("POST", f"{base}/side/forceComplete?phase=nosuch&step=app-0:[side]"), 404)
    is_error(cl.api("POST", f"{base}/side/forceComplete?phase=s&step=nosuch"), 404)
    is_error(cl.api("POST", f"{base}/side/restart?phase=s&step=nosuch"), 404)
    # forceComplete / restart need phase and step.
    is_error(cl.api("POST", f"{base}/side/forceComplete?phase=s"), 400)
    is_error(cl.api("POST", f"{base}/side/restart"), 400)
    # Unknown query keys.
    is_error(cl.api("POST", f"{base}/side/interrupt?step=x"), 400, "bad-request")
    is_error(cl.api("POST", f"{base}/side/start?phase=s"), 400, "bad-request")
    # Still not started.
    assert cl.api("GET", f"{base}/never")[1]["status"] == "PENDING"


def test_plan_parameters_reach_task_env(cl):
    st, body = cl.api("POST", "/v1/service/svc/plans/side/start", {"PARAM": "from-the-api"})
    assert st == 200 and body == {"message": "ok", "plan": "side"}, body
    cl.wait_plan("svc", "side")
    for i in range(2):
        vol = cl.volume_dir("svc", f"app-{i}")
        wait_for(lambda: read_file(vol, "param") == "from-the-api\n", 30, what=f"app-{i} param")
    # Numbers and booleans are env values too; a restart of one step reruns it
    # with the run's parameters.
    st, _ = cl.api("POST", "/v1/service/svc/plans/side/start", {"PARAM": 42})
    assert st == 200
    cl.wait_plan("svc", "side")
    vol0 = cl.volume_dir("svc", "app-0")
    wait_for(lambda: read_file(vol0, "param") == "42\n", 30, what="param 42")
    os.unlink(find_file(vol0, "param"))
    old = cl.tasks("svc")["app-0-side"]["id"]
    st, body = cl.api("POST", "/v1/service/svc/plans/side/restart?phase=s&step=app-0:[side]")
    assert st == 200, body
    wait_for(lambda: read_file(vol0, "param") == "42\n", 30, what="param rerun")
    assert cl.tasks("svc")["app-0-side"]["id"] != old
    cl.wait_plan("svc", "side")


def test_plan_interrupt_continue_force_complete_stop(cl):
    base = "/v1/service/waiting/plans/deploy"
    # The canary waits; continue lets its first step go.
    st, body = cl.api("POST", f"{base}/interrupt?phase=c")
    assert st == 200 and body == {"message": "ok", "plan": "deploy"}
    st, body = cl.api("POST", f"{base}/forceComplete?phase=c&step=c-1:[server]")
    assert st == 200
    p = cl.api("GET", base)[1]
    assert [s["status"] for s in p["phases"][0]["steps"]] == ["WAITING", "COMPLETE"], p
    assert cl.api("POST", f"{base}/continue?phase=c")[0] == 200
    wait_for(lambda: cl.api("GET", base)[0] == 200, 60, what="waiting deploy COMPLETE")
    assert "c-1-server" not in cl.tasks("waiting"), "a force-completed step launched"
    # Stop a running plan; then it does not act.
    assert cl.api("POST", f"{base}/stop")[0] == 200
    assert cl.api("POST", f"{base}/interrupt")[0] == 200
    assert cl.api("POST", f"{base}/continue")[0] == 200


# ---------------------------------------------------------------------------
# Pods

def test_pods_shapes(cl):
    st, lst = cl.api("GET", "/v1/service/svc/pod")
    assert st == 200 and lst == ["app-0", "app-1"]
    st, body = cl.api("GET", "/v1/service/svc/pod/status")
    assert st == 200 and body["service"] == "svc" and len(body["pods"]) == 2
    for p in body["pods"]:
        types_of(p, {"name": str, "pod": str, "node": str, "node_reachable": bool,
                     "paused": bool, "replacing": bool, "tasks": list})
        assert "message" in p
        for t in p["tasks"]:
            types_of(t, {"name": str, "status": str, "ready": bool, "restarts": int})
            assert "id" in t and "message" in t
    st, one = cl.api("GET", "/v1/service/svc/pod/app-1/status")
    assert st == 200 and [p["name"] for p in one["pods"]] == ["app-1"]
    st, info = cl.api("GET", "/v1/service/svc/pod/app-0/info")
    assert st == 200
    types_of(info, {"name": str, "pod": str, "index": int, "node": str, "ports": dict,
                    "paused": bool, "replacing": bool, "tasks": list})
    assert set(info["ports"]) == {"http", "admin"}
    srv = [t for t in info["tasks"] if t["task"] == "server"][0]
    types_of(srv, {"task": str, "current": dict, "launches": int, "restarts": int})
    types_of(srv["current"], {"id": str, "state": str, "config_id": str})
    for path in ("/pod/nosuch-0/status", "/pod/nosuch-0/info", "/pod/app-9/info"):
        is_error(cl.api("GET", "/v1/service/svc" + path), 404, "not-found")
    for op in ("restart", "replace", "pause", "resume"):
        is_error(cl.api("POST", f"/v1/service/svc/pod/nosuch-0/{op}"), 404)
        is_error(cl.api("POST", f"/v1/service/nosuch/pod/app-0/{op}"), 404)
        st, hdrs, _ = cl.request("GET", f"/v1/service/svc/pod/app-0/{op}")
        assert st == 405 and hdrs.get("allow") == "POST"
    is_error(cl.api("GET", "/v1/service/nosuch/pod"), 404)


def cmdline(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()


def running_task(cl, svc, name, old=None):
    def ok():
        t = cl.tasks(svc).get(name)
        return t if t and t["status"] == "RUNNING" and t["id"] != old else None
    return wait_for(ok, 60, what=f"{name} running (not {old})")


def pid_of(cl, task_id):
    return wait_for(lambda: os.path.exists(os.path.join(cl.agent_data, "tasks", task_id, "status.json"))
                    and cl.task_pid(task_id), 30, what=f"pid of {task_id}")


def test_pod_restart(cl):
    vol = cl.volume_dir("pods", "db-0")
    t0 = running_task(cl, "pods", "db-0-server")
    node0 = cl.api("GET", "/v1/service/pods/pod/db-0/info")[1]["node"]
    born = wait_for(lambda: read_file(vol, "born"), 30, what="born")
    st, body = cl.api("POST", "/v1/service/pods/pod/db-0/restart")
    assert st == 200 and body == {"pod": "db-0", "tasks": ["db-0-server"]}, body
    t1 = running_task(cl, "pods", "db-0-server", old=t0["id"])
    assert cl.api("GET", "/v1/service/pods/pod/db-0/info")[1]["node"] == node0
    assert read_file(vol, "born") == born, "the volume was not kept"
    wait_for(lambda: read_file(vol, "starts") == "start\nstart\n", 30, what="second start")
    wait_for(lambda: cl.tasks("pods")["db-0-server"]["ready"], 30, what="ready again")
    assert t1["id"].startswith("db-0-server__")


def test_pod_pause_and_resume(cl):
    base = "/v1/service/pods/pod/db-0"
    t0 = running_task(cl, "pods", "db-0-server")
    wait_for(lambda: cl.tasks("pods")["db-0-server"]["ready"], 30, what="ready")
    is_error(cl.api("POST", f"{base}/resume"), 409, "conflict")
    st, body = cl.api("POST", f"{base}/pause")
    assert st == 200 and body["pod"] == "db-0"
    is_error(cl.api("POST", f"{base}/pause"), 409, "conflict")
    t1 = running_task(cl, "pods", "db-0-server", old=t0["id"])
    assert cl.api("GET", f"{base}/info")[1]["paused"] is True
    assert [p["paused"] for p in cl.pods("pods")] == [True]
    # The task runs a sleep instead of its command.
    pid = pid_of(cl, t1["id"])
    cmd = cmdline(pid)
    assert "sleep" in cmd and "touch data/alive" not in cmd, cmd
    # Readiness is forced to fail (data/alive exists from before), so the
    # service is not healthy and the pod's step is not COMPLETE.
    time.sleep(3)
    t = cl.tasks("pods")["db-0-server"]
    assert t["status"] == "RUNNING" and t["ready"] is False, t
    st, h = cl.api("GET", "/v1/service/pods/health")
    assert st == 202, (st, h)
    steps = [s for plan in ("deploy", "recovery")
             for ph in cl.plan("pods", plan)["phases"] for s in ph["steps"] if s["name"].startswith("db-0")]
    assert steps and any(s["status"] != "COMPLETE" for s in steps), steps
    # Resume: the real command again, ready, healthy.
    st, body = cl.api("POST", f"{base}/resume")
    assert st == 200
    t2 = running_task(cl, "pods", "db-0-server", old=t1["id"])
    assert "touch data/alive" in cmdline(pid_of(cl, t2["id"]))
    wait_for(lambda: cl.tasks("pods")["db-0-server"]["ready"], 30, what="ready after resume")
    wait_for(lambda: cl.api("GET", "/v1/service/pods/health")[0] == 200, 30, what="healthy")
    assert cl.api("GET", f"{base}/info")[1]["paused"] is False


def test_pod_replace(cl):
    vol = cl.volume_dir("pods", "db-0")
    t0 = running_task(cl, "pods", "db-0-server")
    born = wait_for(lambda: read_file(vol, "born"), 30, what="born")
    st, body = cl.api("POST", "/v1/service/pods/pod/db-0/replace")
    assert st == 200 and body == {"pod": "db-0", "tasks": ["db-0-server"]}, body
    running_task(cl, "pods", "db-0-server", old=t0["id"])
    # (The task writes born, then starts: both are waited for.)
    wait_for(lambda: read_file(vol, "born") not in (None, born) and read_file(vol, "starts"),
             60, what="fresh volume")
    assert read_file(vol, "starts") == "start\n", "the volume was not emptied"
    info = cl.api("GET", "/v1/service/pods/pod/db-0/info")[1]
    assert info["replacing"] is False and info["node"] == "node-1"
    cl.wait_plan("pods")


# ---------------------------------------------------------------------------
# Endpoints, configurations, secrets

def test_endpoints(cl):
    st, names = cl.api("GET", "/v1/service/svc/endpoints")
    assert st == 200 and names == ["http"], names   # admin is not advertised
    st, ep = cl.api("GET", "/v1/service/svc/endpoints/http")
    assert st == 200
    types_of(ep, {"address": list, "dns": list})
    ports = {cl.api("GET", f"/v1/service/svc/pod/app-{i}/info")[1]["ports"]["http"] for i in range(2)}
    assert len(ep["address"]) == 2
    for a in ep["address"]:
        host, port = a.rsplit(":", 1)
        assert host == "127.0.0.1" and port in ports, (a, ports)
    is_error(cl.api("GET", "/v1/service/svc/endpoints/admin"), 404)
    is_error(cl.api("GET", "/v1/service/svc/endpoints/nosuch"), 404)
    is_error(cl.api("GET", "/v1/service/nosuch/endpoints"), 404)
    st, ep = cl.api("GET", "/v1/service/pods/endpoints")
    assert st == 200 and ep == []


def test_configurations(cl):
    st, ids = cl.api("GET", "/v1/service/svc/configurations")
    assert st == 200 and ids == ["1"]
    st, tid = cl.api("GET", "/v1/service/svc/configurations/targetId")
    assert st == 200 and tid == "1"
    st, target = cl.api("GET", "/v1/service/svc/configurations/target")
    assert st == 200
    types_of(target, {"name": str, "id": str, "pods": list, "plans": list, "options": dict,
                      "created": int})
    st, one = cl.api("GET", "/v1/service/svc/configurations/1")
    assert st == 200 and one == target
    # Secret-looking variables are hidden; others are shown.
    assert target["options"] == {"DB_PASSWORD": "(hidden)"}
    env = [t for t in target["pods"][0]["tasks"] if t["name"] == "server"][0]["env"]
    assert env["DB_PASSWORD"] == "(hidden)" and env["GREETING"] == "hello", env
    is_error(cl.api("GET", "/v1/service/svc/configurations/99"), 404, "not-found")
    is_error(cl.api("GET", "/v1/service/nosuch/configurations"), 404)
    is_error(cl.api("GET", "/v1/service/svc/configurations?all=1"), 400)


def all_responses(cl, svc):
    out = []
    for path in ["/v1/services", f"/v1/services/{svc}", f"/v1/service/{svc}/configurations",
                 f"/v1/service/{svc}/configurations/target", f"/v1/service/{svc}/configurations/1",
                 f"/v1/service/{svc}/pod", f"/v1/service/{svc}/pod/status",
                 f"/v1/service/{svc}/endpoints", f"/v1/service/{svc}/endpoints/http",
                 f"/v1/service/{svc}/health", "/v1/nodes", "/v1/events?follow=false", "/metrics"]:
        out.append((path, cl.request("GET", path)[2]))
    for plan in cl.api("GET", f"/v1/service/{svc}/plans")[1]:
        p = f"/v1/service/{svc}/plans/{plan}"
        out.append((p, cl.request("GET", p)[2]))
    for pod in cl.api("GET", f"/v1/service/{svc}/pod")[1]:
        for what in ("info", "status"):
            p = f"/v1/service/{svc}/pod/{pod}/{what}"
            out.append((p, cl.request("GET", p)[2]))
    return out


def test_secrets_never_appear(cl):
    # The task did get the password.
    vol = cl.volume_dir("svc", "app-0")
    assert wait_for(lambda: read_file(vol, "pw"), 30, what="pw") == "hunter2\n"
    for path, data in all_responses(cl, "svc"):
        assert b"hunter2" not in data, path


def test_secret_plan_parameters_never_appear(cl):
    st, _ = cl.api("POST", "/v1/service/svc/plans/side/start",
                   {"PARAM": "p", "API_TOKEN": "tok-s3cr3t", "DB_PASSWORD": "pw-s3cr3t"})
    assert st == 200
    cl.wait_plan("svc", "side")
    leaks = [path for path, data in all_responses(cl, "svc") if b"s3cr3t" in data]
    assert not leaks, f"secret plan parameters shown by {leaks}"


# ---------------------------------------------------------------------------
# Events

def events(cl, query="follow=false", headers=None, token=ADMIN):
    st, hdrs, data = cl.request("GET", "/v1/events?" + query, headers=headers, token=token,
                                timeout=20)
    assert st == 200, (st, data)
    assert hdrs["content-type"].startswith("text/event-stream")
    return parse_sse(data.decode())


def test_events_backlog_and_resume(cl):
    evs = events(cl)
    assert len(evs) > 10
    ids = [int(e["id"]) for e in evs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for e in evs:
        j = e["json"]
        assert set(j) >= {"id", "time", "who", "service", "kind", "object", "before", "after", "why"}
        assert j["id"] == int(e["id"]) and e["event"] == j["kind"]
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", j["time"]), j
    kinds = {(e["json"]["kind"], e["json"]["after"]) for e in evs}
    assert ("service", "deployed") in kinds and ("node", "registered") in kinds
    assert any(e["json"]["who"] == "operator" for e in evs)
    # Resume after an id: Last-Event-ID, or ?since=.
    mid = ids[len(ids) // 2]
    after = events(cl, headers={"Last-Event-ID": str(mid)})
    assert [int(e["id"]) for e in after][:len(ids) - len(ids) // 2 - 1] == ids[len(ids) // 2 + 1:]
    after = events(cl, f"follow=false&since={mid}")
    assert int(after[0]["id"]) == mid + 1
    # One service's events.
    only = events(cl, "follow=false&service=pods")
    assert only and all(e["json"]["service"] == "pods" for e in only)
    # Readable with a read token.
    assert events(cl, token=READ)


def test_events_errors(cl):
    st, _, data = cl.request("GET", "/v1/events?follow=false", headers={"Last-Event-ID": "abc"})
    is_error((st, json.loads(data)), 400)
    is_error(cl.api("GET", "/v1/events?follow=false&since=1x"), 400)
    is_error(cl.api("GET", "/v1/events?follow=false&level=x"), 400, "bad-request")
    is_error(cl.api("GET", "/v1/events?follow=false&since="), 400)
    # A negative id is not an event id either (strtoull takes "-1" as 2^64-1,
    # and a follow from there would never show anything).
    is_error(cl.api("GET", "/v1/events?follow=false&since=-1"), 400)


def test_events_follow(cl):
    last = int(events(cl)[-1]["id"])
    conn = http.client.HTTPConnection("127.0.0.1", cl.port, timeout=20)
    try:
        conn.request("GET", "/v1/events?service=svc",
                     headers={"Authorization": f"Bearer {ADMIN}", "Last-Event-ID": str(last)})
        r = conn.getresponse()
        assert r.status == 200
        assert cl.api("POST", "/v1/service/svc/plans/side/start", {"PARAM": "follow"})[0] == 200
        buf = b""
        deadline = time.time() + 20
        while time.time() < deadline:
            buf += r.readline()
            evs = parse_sse(buf.decode())
            if any(e["json"]["object"] == "side" and e["json"]["who"] == "operator" for e in evs):
                break
        evs = parse_sse(buf.decode())
        assert evs and int(evs[0]["id"]) > last, buf
        assert any(e["json"]["object"] == "side" and e["json"]["who"] == "operator" for e in evs), buf
    finally:
        conn.close()
    cl.wait_plan("svc", "side")


# ---------------------------------------------------------------------------
# Metrics

def parse_metrics(text):
    """{name: [(labels dict, value)]}, and the family order of samples."""
    samples, order, types = {}, [], {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            assert parts[1] in ("HELP", "TYPE"), line
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert parts[2] not in types, f"second TYPE line for {parts[2]}"
                types[parts[2]] = parts[3]
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, f"bad sample line: {line!r}"
        name, labels = m.group(1), {}
        if m.group(3):
            for k, v in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3)):
                labels[k] = v
        float(m.group(4))
        samples.setdefault(name, []).append((labels, float(m.group(4))))
        order.append(name)
    return samples, order, types


def family(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def get_metrics(cl, token=ADMIN):
    st, hdrs, data = cl.request("GET", "/metrics", token=token)
    assert st == 200
    assert hdrs["content-type"].startswith("text/plain"), hdrs
    return data.decode()


def test_metrics(cl):
    cl.api("GET", "/v1/service/svc/plans/deploy")
    cl.api("GET", "/v1/service/nosuch/plans")
    samples, _, types = parse_metrics(get_metrics(cl))
    for name, t in [("holdfast_tasks", "gauge"), ("holdfast_plan_status", "gauge"),
                    ("holdfast_task_launches_total", "counter"),
                    ("holdfast_api_requests_total", "counter"),
                    ("holdfast_api_request_seconds", "histogram"),
                    ("holdfast_store_operations_total", "counter")]:
        assert types.get(name) == t, (name, types.get(name))
    running = {l["service"]: v for l, v in samples["holdfast_tasks"] if l["state"] == "RUNNING"}
    assert running["svc"] >= 2
    assert ({"service": "svc", "plan": "deploy", "status": "COMPLETE"}, 1.0) in samples["holdfast_plan_status"]
    assert any(l == {"service": "bad", "plan": "deploy", "status": "ERROR"} and v == 1
               for l, v in samples["holdfast_plan_status"])
    assert samples["holdfast_task_launches_total"][0][1] >= 6
    reqs = {(l["method"], l["route"], l["code"]): v for l, v in samples["holdfast_api_requests_total"]}
    assert reqs[("GET", "/v1/service/{svc}/plans/{plan}", "200")] >= 1
    assert ("POST", "/v1/services", "201") in reqs
    assert any(code == "404" for _, _, code in reqs)
    buckets = [l for l, _ in samples["holdfast_api_request_seconds_bucket"]]
    assert any(l["le"] == "+Inf" for l in buckets)
    assert samples["holdfast_api_request_seconds_count"] and samples["holdfast_api_request_seconds_sum"]
    ops = {l["op"]: v for l, v in samples["holdfast_store_operations_total"]}
    assert ops.get("txn", 0) > 0
    # Counters only grow.
    before = samples["holdfast_api_requests_total"]
    again, _, _ = parse_metrics(get_metrics(cl, token=READ))
    b = {tuple(sorted(l.items())): v for l, v in before}
    for l, v in again["holdfast_api_requests_total"]:
        assert v >= b.get(tuple(sorted(l.items())), 0)


def test_metrics_families_are_contiguous(cl):
    """The exposition format: 'All lines for a given metric must be provided
    as one single group'; each family has its TYPE line."""
    _, order, types = parse_metrics(get_metrics(cl))
    seen, prev = [], None
    for name in order:
        fam = family(name, types)
        if fam != prev:
            assert fam not in seen, f"samples of {fam} are split into several groups"
            seen.append(fam)
            prev = fam
    untyped = [f for f in seen if f not in types]
    assert not untyped, f"families without a TYPE line: {untyped}"


# ---------------------------------------------------------------------------
# Task logs and exec

def test_task_logs_and_exec_errors(cl):
    is_error(cl.api("GET", "/v1/tasks/nosuch-0-server/logs"), 404, "not-found")
    is_error(cl.api("POST", "/v1/tasks/nosuch-0-server/exec", {"cmd": "true"}), 404)
    is_error(cl.api("GET", "/v1/tasks/app-0-server/logs?stream=stdin"), 400)
    is_error(cl.api("GET", "/v1/tasks/app-0-server/logs?tail=abc"), 400)
    is_error(cl.api("GET", "/v1/tasks/app-0-server/logs?lines=3"), 400, "bad-request")
    is_error(cl.api("POST", "/v1/tasks/app-0-server/exec", {"command": "true"}), 400)
    st, _, data = cl.request("POST", "/v1/tasks/app-0-server/exec", b"echo hi")
    assert st == 400 and json.loads(data)["error"] == "bad-json"
    is_error(cl.api("POST", "/v1/tasks/app-0-server/exec", {"cmd": "true"}, token=READ), 403)


def test_task_logs(cl):
    tid = cl.tasks("svc")["app-0-server"]["id"]
    for name in ("app-0-server", tid):
        st, hdrs, data = cl.request("GET", f"/v1/tasks/{name}/logs")
        assert st == 200, (st, data)
        assert hdrs["content-type"].startswith("text/plain")
        assert data.decode() == "out-line-1\nout-line-2\nout-line-3\n", data
    st, _, data = cl.request("GET", f"/v1/tasks/{tid}/logs?stream=stderr")
    assert st == 200 and data.decode() == "err-line\n", data
    st, _, data = cl.request("GET", f"/v1/tasks/{tid}/logs?follow=false", token=READ)
    assert st == 200 and data.decode() == "out-line-1\nout-line-2\nout-line-3\n"


TWIN_SPEC = """
name: {name}
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo {name}-says-hi; exec sleep 1000
        cpus: 0.1
        memory: 32
"""


def test_task_name_in_two_services(tmp_path):
    # "app-0-server" names a task of both services: logs and exec refuse
    # to guess, and serve the one a service or task id picks.
    c = AuthCluster(tmp_path)
    c.start()
    try:
        for name in ("one", "two"):
            c.deploy(write(tmp_path / f"{name}.yml", TWIN_SPEC.format(name=name)))
        body = is_error(c.api("GET", "/v1/tasks/app-0-server/logs"), 409)
        assert "several services" in body["message"], body
        is_error(c.api("POST", "/v1/tasks/app-0-server/exec", {"cmd": "true"}), 409)
        for name in ("one", "two"):
            st, _, data = c.request("GET", f"/v1/tasks/app-0-server/logs?service={name}")
            assert st == 200 and data.decode() == f"{name}-says-hi\n", (st, data)
        tid = c.tasks("two")["app-0-server"]["id"]
        st, _, data = c.request("GET", f"/v1/tasks/{tid}/logs")
        assert st == 200 and data.decode() == "two-says-hi\n", (st, data)
    finally:
        c.stop()


def test_task_logs_tail(cl):
    tid = cl.tasks("svc")["app-1-server"]["id"]
    for n, want in ((1, "out-line-3\n"), (2, "out-line-2\nout-line-3\n"),
                    (3, "out-line-1\nout-line-2\nout-line-3\n"), (10, "out-line-1\nout-line-2\nout-line-3\n")):
        st, _, data = cl.request("GET", f"/v1/tasks/{tid}/logs?tail={n}")
        assert st == 200 and data.decode() == want, (n, data)


def test_task_exec(cl):
    st, body = cl.api("POST", "/v1/tasks/app-0-server/exec",
                      {"cmd": 'echo "port=$PORT_HTTP"; echo oops >&2; test -s shared/pw; exit 3'})
    assert st == 200, body
    types_of(body, {"exit_code": int, "stdout": str, "stderr": str})
    port = cl.api("GET", "/v1/service/svc/pod/app-0/info")[1]["ports"]["http"]
    assert body["stdout"] == f"port={port}\n" and body["stderr"] == "oops\n" and body["exit_code"] == 3


# ---------------------------------------------------------------------------
# The server's own flags

def test_port_file_names_the_listening_port(tmp_path):
    """`--listen 127.0.0.1:0 --port-file F`: F must name the port the API
    answers on (tests and scripts rely on it)."""
    pf = tmp_path / "port"
    log = open(tmp_path / "server.log", "ab")
    p = subprocess.Popen([BIN, "server", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                          "--port-file", str(pf)], stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for(lambda: pf.exists() and pf.read_text().strip(), 30, what="port file")
        port = int(pf.read_text())

        def answers():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v1/version")
                return c.getresponse().status == 200
            except OSError:
                return False
        wait_for(answers, 10, what=f"the API on the port-file port {port}")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)
        log.close()


# ---------------------------------------------------------------------------
# Plan overrides and parameters across kill -9 of the server

OVR_SPEC = """
name: ovr
pods:
  w:
    count: 2
    volume: {path: shared, type: ROOT, size: 10}
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.1
        memory: 32
      gate:
        goal: FINISH
        cmd: while [ ! -f shared/go ]; do sleep 0.2; done; echo "$PARAM" > shared/gate
        cpus: 0.1
        memory: 32
      writer:
        goal: FINISH
        cmd: echo "$PARAM" > shared/writer
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      w:
        strategy: parallel
        pod: w
        steps:
          - default: [[server]]
  work:
    strategy: serial
    phases:
      first:
        strategy: serial
        pod: w
        steps:
          - default: [[gate]]
      second:
        strategy: parallel
        pod: w
        steps:
          - default: [[writer]]
"""


def statuses(plan):
    return {s["id"]: s["status"] for ph in plan["phases"] for s in ph["steps"]} | \
        {ph["id"]: ph["status"] for ph in plan["phases"]}


@pytest.fixture
def ovr(tmp_path):
    c = AuthCluster(tmp_path)
    c.start()
    try:
        c.deploy(write(tmp_path / "ovr.yml", OVR_SPEC))
        yield c
    finally:
        c.stop()


def start_work_with_overrides(c):
    base = "/v1/service/ovr/plans/work"
    assert c.api("POST", f"{base}/start", {"PARAM": "alpha"})[0] == 200
    assert c.api("POST", f"{base}/interrupt?phase=second")[0] == 200
    assert c.api("POST", f"{base}/forceComplete?phase=second&step=w-1:[writer]")[0] == 200
    wait_for(lambda: c.tasks("ovr").get("w-0-gate", {}).get("status") == "RUNNING", 30,
             what="the first gate running")
    return base


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill9", "sigterm"])
def test_plan_overrides_and_parameters_survive_a_server_restart(ovr, sig):
    c = ovr
    base = start_work_with_overrides(c)
    before = c.plan("ovr", "work")
    assert before["status"] == "IN_PROGRESS", before
    assert statuses(before)["work/second/w-0:[writer]"] == "WAITING"
    assert statuses(before)["work/second/w-1:[writer]"] == "COMPLETE"
    c.kill_server(sig)
    c.start_server()
    after = c.plan("ovr", "work")
    assert statuses(after) == statuses(before), (before, after)
    # Let the first phase finish: the second gate launches after the restart
    # and gets the parameter from the stored run.
    for i in range(2):
        root = c.volume_dir("ovr", f"w-{i}")
        d = [r for r, ds, _ in os.walk(root) if os.path.basename(r) == "shared"][0]
        open(os.path.join(d, "go"), "w").close()
    wait_for(lambda: c.plan("ovr", "work")["phases"][0]["status"] == "COMPLETE", 60,
             what="first phase complete")
    for i in range(2):
        assert read_file(c.volume_dir("ovr", f"w-{i}"), "gate") == "alpha\n", i
    # The interrupt holds: the second phase does not run.
    time.sleep(2)
    p = c.plan("ovr", "work")
    assert statuses(p)["work/second/w-0:[writer]"] == "WAITING", p
    assert p["status"] == "WAITING", p
    assert find_file(c.volume_dir("ovr", "w-0"), "writer") is None
    # Another restart while waiting; then continue: only w-0 writes (w-1 was
    # force-completed), with the parameter.
    c.kill_server(sig)
    c.start_server()
    assert statuses(c.plan("ovr", "work")) == statuses(p)
    assert c.api("POST", f"{base}/continue?phase=second")[0] == 200
    c.wait_plan("ovr", "work")
    wait_for(lambda: read_file(c.volume_dir("ovr", "w-0"), "writer") == "alpha\n", 30,
             what="w-0 writer")
    assert find_file(c.volume_dir("ovr", "w-1"), "writer") is None


def test_plan_view_shows_overrides_and_parameters(ovr):
    """An operator can see what a run was started with and what was
    overridden, also after a restart."""
    c = ovr
    start_work_with_overrides(c)
    c.kill_server(signal.SIGTERM)
    c.start_server()
    plan = c.plan("ovr", "work")
    text = json.dumps(plan)
    params = plan.get("parameters", plan.get("params"))
    assert params == {"PARAM": "alpha"}, f"the plan view does not show its parameters: {text}"
    assert "interrupt" in text.lower() and "force" in text.lower(), \
        f"the plan view does not show the interrupt / force-complete: {text}"
