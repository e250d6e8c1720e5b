"""The dropbox example stack (issue 18): examples/dropbox/stack.yml as
shipped, deployed with one `holdfast stack deploy`. PostgreSQL, Redis and
s3rver each run as their own service; the API server starts only after
the three completed their deploy plans, with their endpoints as options.
Through the API server's HTTP interface the test signs up, uploads a file
and reads it back; it kills -9 each store's main process in turn and reads
the file back again once the API server is healthy; it scales the API
server from 1 to 2 while a client polls it, with no failed request; and a
stack update that changes only the API server's options relaunches only
the API server.

Everything is real: Debian's postgresql 15, redis-server and the Python
client libraries (scripts/setup.sh), and s3rver from the npm registry.
s3rver is installed beforehand into the spec's default S3RVER_CACHE
(/var/cache/holdfast/s3rver) with the test's own npm environment, as
tests/s3_harness.py does; a missing tool fails the test, saying so.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from holdfast_harness import REPO, Cluster, free_port_block, wait_for

sys.path.insert(0, os.path.join(REPO, "tests"))
import s3_harness  # noqa: E402

EXAMPLE = os.path.join(REPO, "examples", "dropbox")
STACK = os.path.join(EXAMPLE, "stack.yml")
STORES = {  # service -> (its task, the comm of its main process)
    "db": ("postgres-0-server", "postgres"),
    "cache": ("redis-0-server", "redis-server"),
    "blobs": ("s3-0-server", "node"),
}
TIMEOUT = 150


def require_tools():
    missing = []
    if not os.access("/usr/lib/postgresql/15/bin/postgres", os.X_OK):
        missing.append("postgresql 15 (/usr/lib/postgresql/15/bin)")
    for tool in ("redis-server", "redis-cli", "node", "npm", "curl"):
        if not shutil.which(tool):
            missing.append(tool)
    for mod in ("psycopg2", "redis", "boto3"):
        if subprocess.run(["/usr/bin/python3", "-c", f"import {mod}"],
                          capture_output=True).returncode != 0:
            missing.append(f"python3-{mod}")
    if missing:
        pytest.fail("missing for the dropbox example: " + ", ".join(missing) +
                    ": run scripts/setup.sh")


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    require_tools()
    # s3.yml installs s3rver on its first start; here it is installed first
    # with the test's environment (its npm registry settings), into the
    # spec's default place, under the same lock file as the spec's script.
    monkeypatch.setenv("HOLDFAST_TEST_CACHE", "/var/cache/holdfast")
    try:
        s3_harness.install()
    except RuntimeError as e:
        pytest.fail(str(e))
    base = free_port_block(40)
    c = Cluster(tmp_path)
    c.start_server()
    c.start_agent(("--resources", f"ports={base}-{base + 39}"))
    try:
        yield c
    finally:
        c.stop()


# ---- the API server as a client sees it ------------------------------------

def http(addr, method, path, body=None, token=None, timeout=10):
    """(status, headers, body bytes); a connection error raises OSError."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(f"http://{addr}{path}", data=body, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def endpoints(c, svc, port):
    st, body = c.api("GET", f"/v1/service/{svc}/endpoints/{port}")
    assert st == 200, (svc, port, body)
    return body["address"]


def ready_api_addresses(c):
    """The address of every API instance whose server task is ready, as a
    load balancer that follows readiness would use them."""
    out = {}
    for pod in c.pods("api"):
        if any(t["name"].endswith("-server") and t["status"] == "RUNNING" and t["ready"]
               for t in pod["tasks"]):
            st, info = c.api("GET", f"/v1/service/api/pod/{pod['name']}/info")
            if st == 200 and info.get("ports", {}).get("web"):
                out[pod["name"]] = f"127.0.0.1:{info['ports']['web']}"
    return out


def healthy(addr):
    try:
        st, _, body = http(addr, "GET", "/health", timeout=5)
    except OSError:
        return False
    return st == 200 and json.loads(body)["ok"] is True


def read_back(addr, token, name, data):
    st, hdrs, got = http(addr, "GET", "/api/files/" + urllib.parse.quote(name), token=token)
    assert st == 200, (addr, st, got[:300])
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), \
        f"{name} read back from {addr} differs ({len(got)} bytes, {len(data)} uploaded)"
    return hdrs.get("X-Dropbox-Instance")


def events(c, svc):
    req = urllib.request.Request(
        f"{c.url}/v1/events?follow=false&service={svc}",
        headers={"Authorization": f"Bearer {c.token()}"})
    with urllib.request.urlopen(req, timeout=20) as r:
        text = r.read().decode()
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def task_ids(c, svc):
    return {name: (t["id"], t["restarts"]) for name, t in c.tasks(svc).items()}


def main_pid(c, svc):
    task, comm = STORES[svc]
    pid = c.task_pid(c.tasks(svc)[task]["id"])
    assert pid, (svc, task)
    got = open(f"/proc/{pid}/comm").read().strip()
    assert got == comm, f"{svc}'s main process {pid} is {got!r}, not {comm!r}"
    return pid


class Poller(threading.Thread):
    """Reads the file back, over and over, from each ready API instance in
    turn (the ready set is read again before every request), and records
    every failed request."""

    def __init__(self, c, token, name, data):
        super().__init__(daemon=True)
        self.c, self.token, self.name, self.data = c, token, name, data
        self.stop = threading.Event()
        self.ok = 0
        self.failed = []
        self.served_by = {}

    def run(self):
        i = 0
        while not self.stop.is_set():
            addrs = ready_api_addresses(self.c)
            if not addrs:
                self.failed.append("no ready API instance")
                time.sleep(0.1)
                continue
            inst = sorted(addrs)[i % len(addrs)]
            i += 1
            try:
                got = read_back(addrs[inst], self.token, self.name, self.data)
                self.ok += 1
                self.served_by[got] = self.served_by.get(got, 0) + 1
            except (AssertionError, OSError) as e:
                self.failed.append(f"{inst} {addrs[inst]}: {e}")
            time.sleep(0.02)


def stack(c, *args, timeout=TIMEOUT):
    return c.cli("stack", *args, timeout=timeout + 30)


def test_dropbox_stack(cluster, tmp_path):
    c = cluster

    # One command deploys the four services, in dependency order.
    p = stack(c, "deploy", "-f", STACK, "--wait", "--timeout", str(TIMEOUT))
    for svc in ("db", "cache", "blobs", "api"):
        assert c.plan(svc)["status"] == "COMPLETE", (svc, c.plan(svc), p.stdout)
    out = c.cli("stack", "status", "dropbox", "--json").stdout
    json.loads(out)
    for svc in ("db", "cache", "blobs", "api"):
        assert f'"{svc}"' in out, out

    # The API server never started before db, cache and blobs completed
    # their deploy plans: its first pod or task event comes after each
    # store's "deploy COMPLETE" event (event ids are one ordered sequence).
    api_first = min(e["id"] for e in events(c, "api") if e["kind"] in ("pod", "task"))
    for svc in STORES:
        done = [e["id"] for e in events(c, svc)
                if e["kind"] == "plan" and e["object"] == "deploy" and e["after"] == "COMPLETE"]
        assert done, (svc, events(c, svc))
        assert done[0] < api_first, \
            f"api's first task event {api_first} precedes {svc}'s deploy COMPLETE {done[0]}"

    # The API server was given the stores' endpoints.
    api_env = c.cli("-s", "api", "task", "exec", "api-0-server", "--", "sh", "-c",
                    "echo $DB_ADDRESS $REDIS_ADDRESS $S3_ADDRESS").stdout.split()
    assert api_env == [",".join(endpoints(c, "db", "postgres")),
                       ",".join(endpoints(c, "cache", "redis")),
                       ",".join(endpoints(c, "blobs", "s3"))], api_env
    [api] = endpoints(c, "api", "web")
    assert healthy(api)

    # Sign up, upload, list, read back.
    st, _, body = http(api, "POST", "/api/signup", {"user": "alice", "password": "s3cret!"})
    assert st == 201, body
    token = json.loads(body)["token"]
    data = os.urandom(300 * 1024) + "the end\n".encode()
    name = "holiday photos.tar"
    st, _, body = http(api, "PUT", "/api/files/" + urllib.parse.quote(name), data, token=token)
    assert st == 201, body
    assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()
    st, _, body = http(api, "GET", "/api/files", token=token)
    assert st == 200 and [f["name"] for f in json.loads(body)["files"]] == [name], body
    assert json.loads(body)["used"] == len(data)
    read_back(api, token, name, data)
    st, _, body = http(api, "GET", "/api/files", token="not-a-session")
    assert st == 401, body
    # The page is served.
    st, hdrs, body = http(api, "GET", "/")
    assert st == 200 and hdrs["Content-Type"].startswith("text/html") and b"Upload" in body

    # kill -9 of each store's main process: holdfast restarts it in place
    # on its volume; the file, its metadata and the session survive.
    for svc in STORES:
        before = c.tasks(svc)[STORES[svc][0]]
        pid = main_pid(c, svc)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: c.restarted(svc, STORES[svc][0], before), TIMEOUT, interval=0.2,
                 what=f"{svc} restarted after kill -9")
        wait_for(lambda: healthy(api), TIMEOUT, interval=0.2,
                 what=f"the API server healthy again after {svc}'s kill -9")
        assert main_pid(c, svc) != pid
        read_back(api, token, name, data)

    # Health needs every store: with Redis stopped (SIGSTOP) the API server
    # answers 503 naming Redis, and 200 again once it runs on (SIGCONT).
    pid = main_pid(c, "cache")
    os.kill(pid, signal.SIGSTOP)
    try:
        def unhealthy():
            st, _, body = http(api, "GET", "/health", timeout=15)
            return st == 503 and json.loads(body)
        got = wait_for(unhealthy, 30, what="the API server unhealthy without Redis")
        assert got["redis"] != "ok" and got["postgres"] == "ok" and got["s3"] == "ok", got
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: healthy(api), 30, what="the API server healthy with Redis back")

    # Scale to 2 while a client reads continuously: no request fails.
    poller = Poller(c, token, name, data)
    poller.start()
    try:
        wait_for(lambda: poller.ok >= 20, 60, what="the poller's first reads")
        c.cli("-s", "api", "pod", "scale", "api", "2", "--wait", "--timeout", str(TIMEOUT),
              timeout=TIMEOUT + 30)
        wait_for(lambda: len(ready_api_addresses(c)) == 2, TIMEOUT, what="two ready API servers")
        wait_for(lambda: poller.served_by.get("api-1", 0) >= 20, 60,
                 what="reads served by api-1")
    finally:
        poller.stop.set()
        poller.join(30)
    assert not poller.failed, f"{len(poller.failed)} failed of {poller.ok + len(poller.failed)}: " \
                              f"{poller.failed[:5]}"
    assert poller.served_by.get("api-0", 0) >= 20 and poller.served_by.get("api-1", 0) >= 20, \
        poller.served_by
    assert sorted(endpoints(c, "api", "web")) == sorted(ready_api_addresses(c).values())

    # A stack update that changes only the API server's options (a new
    # quota) relaunches only the API server.
    copy = tmp_path / "dropbox"
    shutil.copytree(EXAMPLE, copy)
    text = (copy / "stack.yml").read_text()
    assert text.count('API_COUNT: "1"') == 1, text
    (copy / "stack.yml").write_text(text.replace('API_COUNT: "1"',
                                                 'API_COUNT: "1"\n      QUOTA_MB: "1"'))
    diff = json.loads(stack(c, "diff", "-f", str(copy / "stack.yml"), "--json").stdout)
    assert {s["name"]: s["change"] for s in diff["services"]} == {
        "db": "none", "cache": "none", "blobs": "none", "api": "update"}, diff
    before = {svc: task_ids(c, svc) for svc in ("db", "cache", "blobs", "api")}
    stack(c, "update", "-f", str(copy / "stack.yml"), "--wait", "--timeout", str(TIMEOUT))
    for svc in STORES:
        assert task_ids(c, svc) == before[svc], f"{svc} was relaunched by an update of api only"
    after = task_ids(c, "api")
    assert sorted(after) == sorted(before["api"]) == ["api-0-server", "api-1-server"], after
    for t in after:
        assert after[t][0] != before["api"][t][0], f"{t} was not relaunched"
    addrs = ready_api_addresses(c)
    assert len(addrs) == 2, addrs
    for addr in addrs.values():
        wait_for(lambda: healthy(addr), TIMEOUT, what=f"{addr} healthy")
        read_back(addr, token, name, data)
    # The new option took effect: a new user's quota is 1 MiB.
    st, _, body = http(addrs["api-1"], "POST", "/api/signup", {"user": "bob", "password": "pw-bob"})
    assert st == 201, body
    bob = json.loads(body)["token"]
    st, _, body = http(addrs["api-0"], "GET", "/api/files", token=bob)
    assert st == 200 and json.loads(body)["quota"] == 1024 * 1024, body
    st, _, body = http(addrs["api-0"], "PUT", "/api/files/big", os.urandom(1024 * 1024 + 1),
                       token=bob)
    assert st == 413 and json.loads(body)["error"] == "over-quota", body
