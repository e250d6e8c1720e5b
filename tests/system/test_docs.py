"""The documentation generated from the code stays true (issue 10, "tools
that tell the truth").

- docs/api.md is exactly what `holdfast _doc api` writes from the server's
  route table and its descriptions, and every route's live answers (status,
  content type, JSON shape, error names) are the documented ones.
- Every flag the server, agent and dev parsers accept, probed on the real
  binary, is listed by `holdfast help <command>` and in docs/operations.md,
  and help lists no flag the parser refuses.
"""
import http.client
import json
import os
import re
import subprocess

import pytest

from holdfast_harness import BIN, REPO, Cluster, wait_for

OPERATIONS = os.path.join(REPO, "docs", "operations.md")


def run(*args, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# docs/api.md

def test_api_md_is_generated_from_the_route_table():
    p = run("_doc", "api")
    assert p.returncode == 0, p.stderr
    with open(os.path.join(REPO, "docs", "api.md")) as f:
        on_disk = f.read()
    assert on_disk == p.stdout, (
        "docs/api.md is out of date: run `make docs` (or `holdfast _doc api > docs/api.md`)")


def api_reference():
    p = run("_doc", "api", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# ---------------------------------------------------------------------------
# Flags: parser, help and docs/operations.md agree

FLAG_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-z])(?![\w-])")


def flags_in(text):
    return set(FLAG_RE.findall(text))


def table(cmd):
    p = run("_doc", "flags", cmd)
    assert p.returncode == 0, p.stderr
    return {line.split()[0] for line in p.stdout.splitlines() if line}


def accepted(cmd, flag):
    """Whether cmd's parser takes flag, asked of the binary itself. Each
    probe ends in a usage error, so nothing is ever started."""
    if cmd == "agent":
        # A value-taking flag eats "x"; a switch leaves "x" to be refused.
        p = run("agent", flag, "x", "--zz-not-a-flag")
        refused = f'unknown argument "{flag}"' in p.stderr
    elif cmd == "global":
        # A known flag lets `version` run or is followed by "x"; an
        # unknown one is taken for the command.
        p = run(flag, "x", "version")
        refused = f"no such command '{flag}'" in p.stderr
        return not refused
    else:
        # getopt_long: "--" ends the flags (or is a flag's value), and the
        # argument after it is refused either way.
        p = run(cmd, flag, "--", "zz")
        refused = f"unknown or incomplete flag {flag}" in p.stderr
    assert p.returncode == 2, (cmd, flag, p.returncode, p.stderr)
    return not refused


@pytest.mark.parametrize("cmd", ["server", "agent", "dev"])
def test_every_flag_the_parser_takes_is_in_help_and_operations(cmd):
    help_text = run("help", cmd).stdout
    with open(OPERATIONS) as f:
        ops = f.read()
    tab = table(cmd)
    # Candidates: the table, whatever help and the docs mention, and a few
    # that no parser takes, so that the probe is shown to tell them apart.
    candidates = tab | flags_in(help_text) | flags_in(ops) | {"--bogus", "--help-me"}
    taken = {f for f in candidates if accepted(cmd, f)}
    assert "--bogus" not in taken and "--help-me" not in taken
    # getopt_long also takes an unambiguous abbreviation (--token for
    # --tokens): that is the full flag, documented under its own name.
    abbreviations = {f for f in taken - tab if len([t for t in tab if t.startswith(f)]) == 1}
    taken -= abbreviations
    assert taken == tab, f"{cmd}: the parser takes {sorted(taken)}, its table lists {sorted(tab)}"
    missing_help = sorted(f for f in taken if f not in flags_in(help_text))
    assert not missing_help, f"`holdfast help {cmd}` omits {missing_help}"
    missing_ops = sorted(f for f in taken if f not in flags_in(ops))
    assert not missing_ops, f"docs/operations.md does not document {cmd}'s {missing_ops}"


def test_help_lists_the_global_flags_the_parser_takes():
    help_text = run("--help").stdout
    tab = table("global")
    taken = {f for f in tab | flags_in(help_text) | {"--bogus"} if accepted("global", f)}
    assert taken == tab
    assert not sorted(f for f in taken if f not in flags_in(help_text))


def test_server_help_names_the_flags_operations_md_documents():
    # The newcomer's finding: help omitted --backoff, --node-timeout,
    # --advertise and others.
    out = run("help", "server").stdout
    for flag in ("--backoff", "--backoff-max", "--node-timeout", "--advertise",
                 "--lease-ttl", "--port-file", "--max-connections", "--store"):
        assert re.search(rf"^  {flag} ", out, re.M), (flag, out)


# ---------------------------------------------------------------------------
# Live answers against the documented shapes

SPEC = """
name: docs
pods:
  web:
    count: 2
    volume: {path: data, type: ROOT, size: 5}
    tasks:
      server:
        goal: RUNNING
        cmd: "echo out-line; exec sleep 1000"
        cpus: 0.1
        memory: 32
        kill-grace-period: 1
        ports:
          http: {port: 0, advertise: true}
      job:
        goal: FINISH
        cmd: "echo {{GREETING}}"
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      web: {strategy: parallel, pod: web, steps: [{default: [[server]]}]}
  job:
    strategy: serial
    phases:
      run: {strategy: serial, pod: web, steps: [{default: [[job]]}]}
"""

TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


def conforms(value, shape, where="$"):
    """Checks value against a documented shape (see src/server/api_doc.h);
    returns a list of problems."""
    if isinstance(shape, str):
        kinds = re.sub(r"\s*\(.*\)\s*$", "", shape, flags=re.S).split("|")
        for k in kinds:
            assert k in TYPES, f"unknown type {k!r} in a documented shape"
        return [] if any(TYPES[k](value) for k in kinds) else [
            f"{where}: {value!r} is not {shape!r}"]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not an array"]
        out = []
        for i, v in enumerate(value):
            out += conforms(v, shape[0], f"{where}[{i}]")
        return out
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object"]
    out = []
    named = {}
    wildcard = None
    for k, sub in shape.items():
        if k == "...":
            continue
        if k.startswith("<"):
            wildcard = sub
            continue
        named[k.rstrip("?")] = (k.endswith("?"), sub)
    for name, (optional, sub) in named.items():
        if name in value:
            out += conforms(value[name], sub, f"{where}.{name}")
        elif not optional:
            out.append(f"{where}: documented key {name!r} is missing")
    for k, v in value.items():
        if k in named:
            continue
        if wildcard is not None:
            out += conforms(v, wildcard, f"{where}.{k}")
        elif "..." not in shape:
            out.append(f"{where}: key {k!r} is not documented")
    return out


COMMON_ERRORS = {"bad-request", "unauthorized", "forbidden", "internal", "not-leader",
                 "no-leader", "store-unwritable", "store-unreadable"}


class Checker:
    def __init__(self, cluster, reference):
        self.c = cluster
        self.ref = {(r["method"], r["pattern"]): r for r in reference}
        self.seen = set()

    def call(self, method, pattern, path, body=None, raw=None, expect_error=None, token=None):
        """Sends one request for the route (method, pattern) and checks the
        answer against its documentation (with the admin token, or token).
        Returns (status, parsed body)."""
        r = self.ref[(method, pattern)]
        self.seen.add((method, pattern))
        headers = {"Content-Type": "application/json"}
        headers.update({"Authorization": f"Bearer {token}"} if token else self.c._auth())
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn = http.client.HTTPConnection("127.0.0.1", self.c.port, timeout=60)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            status, ctype = resp.status, resp.getheader("Content-Type")
            text = resp.read().decode(errors="replace")
        finally:
            conn.close()
        what = f"{method} {path} -> {status} {text[:500]}"
        if expect_error:
            doc = json.loads(text)
            assert doc["error"] == expect_error, what
            assert doc["error"] in set(r["errors"]) | COMMON_ERRORS, (
                f"{what}: error {doc['error']!r} is not documented for {method} {pattern}")
            return status, doc
        assert status in r["status"], f"{what}: status not documented ({r['status']})"
        assert ctype == r["content_type"], f"{what}: content type {ctype!r}"
        if r["content_type"] == "text/event-stream":
            events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
            assert events, what
            for e in events:
                problems = conforms(e, r["response"])
                assert not problems, (what, problems)
            return status, events
        if r["response"] is None:
            return status, text
        doc = json.loads(text)
        problems = conforms(doc, r["response"])
        assert not problems, (what, problems)
        return status, doc


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("docs"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_every_route_answers_as_documented(cl):
    ck = Checker(cl, api_reference())
    body = {"spec": SPEC, "file": "docs.yml", "options": {"GREETING": "a"}, "templates": {}}

    # Errors first, while nothing exists; each name must be documented.
    ck.call("POST", "/v1/services", "/v1/services", {}, expect_error="invalid")
    ck.call("POST", "/v1/services", "/v1/services", raw=b"{nope", expect_error="bad-json")
    bad = dict(body, spec=SPEC.replace("cpus: 0.1", "cpus: 0", 1))
    st, doc = ck.call("POST", "/v1/services", "/v1/services", bad, expect_error="invalid-spec")
    assert doc["diagnostics"] and doc["diagnostics"][0]["line"] > 0
    ck.call("GET", "/v1/services/{svc}", "/v1/services/nosuch", expect_error="not-found")
    ck.call("GET", "/v1/events", "/v1/events?since=x", expect_error="invalid")
    ck.call("GET", "/v1/tasks/{task}/logs", "/v1/tasks/nosuch-0-x/logs", expect_error="not-found")

    st, _ = ck.call("POST", "/v1/services", "/v1/services", body)
    assert st == 201
    ck.call("POST", "/v1/services", "/v1/services", body, expect_error="exists")
    wait_for(lambda: cl.api("GET", "/v1/service/docs/plans/deploy")[0] == 200, 120,
             what="deploy COMPLETE")

    ck.call("GET", "/v1/version", "/v1/version")
    ck.call("GET", "/v1/whoami", "/v1/whoami")
    ck.call("GET", "/ui", "/ui")
    ck.call("GET", "/ui/{asset*}", "/ui/")
    ck.call("GET", "/ui/{asset*}", "/ui/nosuch.js", expect_error="not-found")
    ck.call("GET", "/v1/leader", "/v1/leader")
    ck.call("GET", "/v1/services", "/v1/services")
    ck.call("GET", "/v1/services/{svc}", "/v1/services/docs")
    _, nodes = ck.call("GET", "/v1/nodes", "/v1/nodes")
    ck.call("GET", "/metrics", "/metrics")
    ck.call("GET", "/v1/events", "/v1/events?follow=false")
    # An agent syncs with its node's own credential; a new node registers one.
    with open(os.path.join(cl.agent_data, "node-token")) as f:
        node_token = f.read().strip()
    ck.call("POST", "/v1/agent/sync", "/v1/agent/sync", {"node_id": nodes[0]["id"], "wait": 0},
            token=node_token)
    ck.call("POST", "/v1/agent/register", "/v1/agent/register",
            {"node_id": "docs-probe", "token": "p" * 40})
    ck.call("POST", "/v1/agent/register", "/v1/agent/register",
            {"node_id": "docs-probe", "token": "q" * 40}, expect_error="conflict")
    ck.call("POST", "/v1/nodes/{node}/reset-identity", "/v1/nodes/docs-probe/reset-identity")
    ck.call("GET", "/v1/service/{svc}/plans", "/v1/service/docs/plans")
    ck.call("GET", "/v1/service/{svc}/plans/{plan}", "/v1/service/docs/plans/deploy")
    ck.call("GET", "/v1/service/{svc}/pod", "/v1/service/docs/pod")
    ck.call("GET", "/v1/service/{svc}/pod/status", "/v1/service/docs/pod/status")
    ck.call("GET", "/v1/service/{svc}/pod/{pod}/status", "/v1/service/docs/pod/web-0/status")
    ck.call("GET", "/v1/service/{svc}/pod/{pod}/info", "/v1/service/docs/pod/web-0/info")
    ck.call("GET", "/v1/service/{svc}/endpoints", "/v1/service/docs/endpoints")
    ck.call("GET", "/v1/service/{svc}/endpoints/{name}", "/v1/service/docs/endpoints/http")
    ck.call("GET", "/v1/service/{svc}/configurations", "/v1/service/docs/configurations")
    ck.call("GET", "/v1/service/{svc}/configurations/{id}", "/v1/service/docs/configurations/1")
    _, src = ck.call("GET", "/v1/service/{svc}/configurations/{id}/source",
                     "/v1/service/docs/configurations/1/source")
    assert src["spec"] == SPEC and src["options"] == {"GREETING": "a"}, src
    ck.call("GET", "/v1/service/{svc}/configurations/{id}/source",
            "/v1/service/docs/configurations/99/source", expect_error="not-found")
    ck.call("GET", "/v1/service/{svc}/health", "/v1/service/docs/health")

    # Tasks: the server fetches logs and runs exec through the agent.
    _, text = ck.call("GET", "/v1/tasks/{task}/logs", "/v1/tasks/web-0-server/logs?tail=5")
    assert "out-line" in text
    _, out = ck.call("POST", "/v1/tasks/{task}/exec", "/v1/tasks/web-0-server/exec",
                     {"cmd": "echo from-exec"})
    assert out["exit_code"] == 0 and "from-exec" in out["stdout"]

    # Configuration changes.
    changed = dict(body, options={"GREETING": "b"})
    _, d = ck.call("POST", "/v1/services/{svc}/diff", "/v1/services/docs/diff", changed)
    assert d["allowed"] and not d["changed"]
    _, d = ck.call("PUT", "/v1/services/{svc}", "/v1/services/docs", changed)
    assert d["changed"] and d["to"] == "2"
    _, d = ck.call("POST", "/v1/services/{svc}/rollback", "/v1/services/docs/rollback")
    assert d["to"] == "1"

    # A custom plan and its controls.
    base = "/v1/service/docs/plans/job"
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/start", base + "/start", {"X": "1"})
    _, plan = ck.call("GET", "/v1/service/{svc}/plans/{plan}", base)
    step = plan["phases"][0]["steps"][0]["name"]
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/interrupt", base + "/interrupt?phase=run")
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/continue", base + "/continue?phase=run")
    q = "?phase=run&step=" + step.replace("[", "%5B").replace("]", "%5D").replace(":", "%3A")
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/forceComplete", base + "/forceComplete" + q)
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/restart", base + "/restart" + q)
    ck.call("POST", "/v1/service/{svc}/plans/{plan}/stop", base + "/stop")

    # Pods.
    pod = "/v1/service/docs/pod/"
    ck.call("POST", "/v1/service/{svc}/pod/{pod}/restart", pod + "web-0/restart")
    ck.call("POST", "/v1/service/{svc}/pod/{pod}/pause", pod + "web-1/pause")
    ck.call("POST", "/v1/service/{svc}/pod/{pod}/resume", pod + "web-1/resume", expect_error=None)
    ck.call("POST", "/v1/service/{svc}/pod/{pod}/resume", pod + "web-1/resume",
            expect_error="conflict")
    ck.call("POST", "/v1/service/{svc}/pod/{pod}/replace", pod + "web-0/replace")
    # A pod type's count: the same as now, then ones refused.
    count = "/v1/service/docs/pod-types/web/count"
    _, d = ck.call("PUT", "/v1/service/{svc}/pod-types/{pod}/count", count, {"count": 2})
    assert d["changed"] is False, d
    ck.call("PUT", "/v1/service/{svc}/pod-types/{pod}/count", count, {"count": -1},
            expect_error="invalid")
    ck.call("PUT", "/v1/service/{svc}/pod-types/{pod}/count", count, {"count": 1},
            expect_error="refused")
    ck.call("PUT", "/v1/service/{svc}/pod-types/{pod}/count",
            "/v1/service/docs/pod-types/nosuch/count", {"count": 1}, expect_error="not-found")
    _, d = ck.call("DELETE", "/v1/service/{svc}/pod-types/{pod}/count", count)
    assert d["changed"] is False, d
    _, d = ck.call("GET", "/v1/service/{svc}/autoscale", "/v1/service/docs/autoscale")
    assert d == {"service": "docs", "pods": []}, d
    ck.call("GET", "/v1/service/{svc}/autoscale", "/v1/service/nosuch/autoscale",
            expect_error="not-found")

    # Stacks: a one-service stack deployed, shown, diffed and removed.
    _, d = ck.call("GET", "/v1/stacks", "/v1/stacks")
    assert d == {"stacks": []}, d
    one = ("name: x\npods:\n  a:\n    count: 1\n    tasks:\n      s:\n        goal: RUNNING\n"
           "        cmd: exec sleep 1000\n        cpus: 0.1\n        memory: 16\n"
           "        ports: {p: {port: 0, advertise: true}}\n")
    body = {"file": "s.yml", "text": "stack: docstack\nservices:\n  docstack-a:\n    spec: a.yml\n"
            "    options: {X: '{{services.docstack-a.name}}'}\n",
            "specs": {"a.yml": {"text": one}}}
    ck.call("POST", "/v1/stacks", "/v1/stacks", body, expect_error="invalid-spec")
    body["text"] = "stack: docstack\nservices:\n  docstack-a:\n    spec: a.yml\n"
    ck.call("POST", "/v1/stacks", "/v1/stacks", {"text": 1}, expect_error="invalid")
    _, d = ck.call("POST", "/v1/stacks", "/v1/stacks", body)
    assert d["phase"] == "deploying", d
    ck.call("POST", "/v1/stacks", "/v1/stacks", body, expect_error="exists")
    wait_for(lambda: cl.api("GET", "/v1/stacks/docstack")[1]["phase"] == "deployed", 60,
             what="docstack deployed")
    _, d = ck.call("GET", "/v1/stacks/{stack}", "/v1/stacks/docstack")
    assert d["services"][0]["plan"]["status"] == "COMPLETE", d
    ck.call("GET", "/v1/stacks/{stack}", "/v1/stacks/nosuch", expect_error="not-found")
    _, d = ck.call("POST", "/v1/stacks/{stack}/diff", "/v1/stacks/docstack/diff", body)
    assert d["services"][0]["change"] == "none", d
    ck.call("POST", "/v1/stacks/{stack}/diff", "/v1/stacks/nosuch/diff", body,
            expect_error="invalid")
    _, d = ck.call("PUT", "/v1/stacks/{stack}", "/v1/stacks/docstack", body)
    assert d["generation"] == 2, d
    ck.call("PUT", "/v1/stacks/{stack}", "/v1/stacks/docstack", {}, expect_error="invalid")
    _, d = ck.call("DELETE", "/v1/stacks/{stack}", "/v1/stacks/docstack?delete_volumes=true")
    assert d["phase"] == "removing", d
    ck.call("DELETE", "/v1/stacks/{stack}", "/v1/stacks/nosuch", expect_error="not-found")
    wait_for(lambda: cl.api("GET", "/v1/stacks/docstack")[0] == 404, 60, what="docstack removed")

    # Remote clusters: none yet; bad ones refused. The remote route is a
    # remote cluster's only (test_remotes.py): a token is forbidden.
    _, d = ck.call("GET", "/v1/remotes", "/v1/remotes")
    assert d == {"remotes": []}, d
    ck.call("POST", "/v1/remotes", "/v1/remotes", {"name": "b", "url": "http://x"},
            expect_error="invalid")
    ck.call("GET", "/v1/remotes/{name}", "/v1/remotes/nosuch", expect_error="not-found")
    ck.call("DELETE", "/v1/remotes/{name}", "/v1/remotes/nosuch", expect_error="not-found")
    ck.call("GET", "/v1/dr/hello", "/v1/dr/hello", expect_error="forbidden")
    ck.call("PUT", "/v1/dr/standby/{svc}", "/v1/dr/standby/docs", {}, expect_error="forbidden")
    ck.call("DELETE", "/v1/dr/standby/{svc}", "/v1/dr/standby/docs", expect_error="forbidden")
    _, d = ck.call("GET", "/v1/dr", "/v1/dr")
    assert d == {"services": []}, d
    ck.call("POST", "/v1/service/{svc}/dr", "/v1/service/docs/dr", {"to": "nowhere"},
            expect_error="not-found")
    ck.call("POST", "/v1/service/{svc}/dr", "/v1/service/docs/dr", {}, expect_error="invalid")
    ck.call("DELETE", "/v1/service/{svc}/dr", "/v1/service/docs/dr", expect_error="not-found")
    ck.call("GET", "/v1/service/{svc}/dr", "/v1/service/docs/dr", expect_error="not-found")
    ck.call("POST", "/v1/service/{svc}/dr/failover", "/v1/service/docs/dr/failover", {},
            expect_error="not-found")
    ck.call("POST", "/v1/service/{svc}/dr/switchover", "/v1/service/docs/dr/switchover", {},
            expect_error="not-found")
    ck.call("POST", "/v1/service/{svc}/dr/switchover", "/v1/service/docs/dr/switchover",
            {"back": ""}, expect_error="invalid")
    ck.call("POST", "/v1/dr/standby/{svc}/promote", "/v1/dr/standby/docs/promote", {},
            expect_error="forbidden")
    ck.call("POST", "/v1/service/{svc}/dr/failback", "/v1/service/docs/dr/failback", {},
            expect_error="not-found")
    ck.call("POST", "/v1/dr/failback/{svc}", "/v1/dr/failback/docs", {},
            expect_error="forbidden")
    ck.call("POST", "/v1/nodes/{node}/adopt", "/v1/nodes/nosuch/adopt", expect_error="not-found")
    _, data = ck.call("GET", "/v1/store/backup", "/v1/store/backup")
    assert data.startswith("SQLite format 3"), data[:20]
    # Volumes: in use, then kept by a plain remove, then deleted.
    def replaced():
        p = cl.api("GET", "/v1/service/docs/pod/web-0/status")[1]["pods"][0]
        return p["placed"] and not p["replacing"] and p["tasks"][0]["status"] == "RUNNING"
    wait_for(replaced, 60, what="web-0 replaced")
    ck.call("GET", "/v1/volumes", "/v1/volumes?service=docs")
    ck.call("GET", "/v1/external-volumes", "/v1/external-volumes?service=docs")
    ck.call("GET", "/v1/external-volumes/{name}", "/v1/external-volumes/docs-web-0",
            expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/resize", "/v1/external-volumes/docs-web-0/resize",
            body={"size": "2G"}, expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/resize", "/v1/external-volumes/docs-web-0/resize",
            body={"size": []}, expect_error="invalid")
    ck.call("GET", "/v1/external-volumes/{name}/snapshots",
            "/v1/external-volumes/docs-web-0/snapshots", expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/snapshots",
            "/v1/external-volumes/docs-web-0/snapshots", body={"name": "s1"},
            expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/snapshots",
            "/v1/external-volumes/docs-web-0/snapshots", body={"name": []},
            expect_error="invalid")
    ck.call("DELETE", "/v1/external-volumes/{name}/snapshots/{snap}",
            "/v1/external-volumes/docs-web-0/snapshots/s1", expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/restore",
            "/v1/external-volumes/docs-web-0/restore", body={"snapshot": "s1"},
            expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/snapshots/{snap}/clone",
            "/v1/external-volumes/docs-web-0/snapshots/s1/clone", body={"name": "c-web-0"},
            expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/snapshots/{snap}/clone",
            "/v1/external-volumes/docs-web-0/snapshots/s1/clone", body={}, expect_error="invalid")
    ck.call("POST", "/v1/external-volumes/{name}/restore",
            "/v1/external-volumes/docs-web-0/restore", body={}, expect_error="invalid")
    ck.call("GET", "/v1/credentials", "/v1/credentials")
    ck.call("POST", "/v1/credentials", "/v1/credentials", body={"type": "s3", "name": "c1"},
            expect_error="invalid")
    ck.call("DELETE", "/v1/credentials/{name}", "/v1/credentials/c1", expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/backups",
            "/v1/external-volumes/docs-web-0/backups", body={"to": "x"}, expect_error="invalid")
    ck.call("GET", "/v1/external-volumes/{name}/backups",
            "/v1/external-volumes/docs-web-0/backups", expect_error="not-found")
    ck.call("DELETE", "/v1/external-volumes/{name}/backups/{id}",
            "/v1/external-volumes/docs-web-0/backups/b1", expect_error="not-found")
    ck.call("POST", "/v1/external-volumes/{name}/from-backup",
            "/v1/external-volumes/new-web-0/from-backup", body={"from": "x"},
            expect_error="invalid")
    ck.call("PUT", "/v1/external-volumes/{name}/backup-schedule",
            "/v1/external-volumes/docs-web-0/backup-schedule", body={"to": "x"},
            expect_error="invalid")
    ck.call("DELETE", "/v1/external-volumes/{name}/backup-schedule",
            "/v1/external-volumes/nosuch-web-0/backup-schedule", expect_error="not-found")
    ck.call("DELETE", "/v1/volumes/{svc}", "/v1/volumes/docs", expect_error="conflict")
    st, _ = ck.call("DELETE", "/v1/services/{svc}", "/v1/services/docs")
    assert st == 202
    wait_for(lambda: cl.api("GET", "/v1/services/docs")[0] == 404, 60, what="docs removed")
    _, vols = ck.call("GET", "/v1/volumes", "/v1/volumes?service=docs")
    assert sorted((v["key"], v["status"]) for v in vols) == [
        ("docs/web-0", "kept"), ("docs/web-1", "kept")], vols
    ck.call("DELETE", "/v1/volumes/{svc}/{pod}", "/v1/volumes/docs/web-1")
    ck.call("DELETE", "/v1/volumes/{svc}/{pod}", "/v1/volumes/docs/web-1",
            expect_error="not-found")
    ck.call("DELETE", "/v1/volumes/{svc}", "/v1/volumes/docs")
    ck.call("DELETE", "/v1/volumes/{svc}", "/v1/volumes/docs", expect_error="not-found")
    ck.call("DELETE", "/v1/services/{svc}", "/v1/services/docs?delete_volumes=true",
            expect_error="not-found")
    ck.call("POST", "/v1/nodes/{node}/decommission", f"/v1/nodes/{nodes[0]['id']}/decommission")

    unexercised = sorted(set(ck.ref) - ck.seen)
    assert not unexercised, f"routes this test does not check yet: {unexercised}"
