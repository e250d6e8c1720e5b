"""The operator CLI through the real binary (issue 4): every verb against a
real server (with --tokens) and agent, in human and --json form, with the
exit codes scripts rely on: 0 ok, 1 failed / refused / plan ERROR, 2 usage,
3 server unreachable.

One server + agent is shared by the module. Tests run in file order: the
ones that rely on there being exactly one service come first; the ones that
deploy more services remove them again.
"""
import json
import os
import pty
import re
import select
import socket
import subprocess
import time

import pytest

from holdfast_harness import BIN, Cluster, wait_for, write

ADMIN = "cli-admin-31c4d2"
READ = "cli-read-8e7f6a"
AGENT = "cli-agent-5b9d0c"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class AuthCluster(Cluster):
    """A Cluster whose server runs with --tokens; the CLI gets the admin
    token from HOLDFAST_TOKEN."""

    def __init__(self, tmp, **kw):
        super().__init__(tmp, tokens={"admin": ADMIN, "read": READ, "agent": AGENT}, **kw)

    def run(self, *args, env=None, stdin=subprocess.DEVNULL, timeout=120):
        """The CLI with any exit status; env entries set (None removes)."""
        e = self._env()
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return subprocess.run([BIN, *args], capture_output=True, text=True, env=e,
                              stdin=stdin, timeout=timeout)

    def ok(self, *args, **kw):
        p = self.run(*args, **kw)
        assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p

    def fails(self, code, *args, **kw):
        p = self.run(*args, **kw)
        assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
        return p

    def json(self, *args, **kw):
        return json.loads(self.ok(*args, **kw).stdout)


APP_SPEC = """
name: app
pods:
  web:
    count: 2
    volume: {path: shared, type: ROOT, size: 10}
    tasks:
      server:
        goal: RUNNING
        cmd: |
          echo line-1; echo line-2; echo line-3
          echo problem >&2
          while :; do touch shared/alive; sleep 0.5; done
        cpus: 0.1
        memory: 32
        kill-grace-period: 1
        env:
          API_SECRET: "{{API_SECRET}}"
          COLOR: blue
        ports:
          http: {port: 0, env-key: PORT_HTTP, advertise: true}
        readiness-check: {cmd: test -f shared/alive, interval: 1, delay: 0, timeout: 5}
      side:
        goal: FINISH
        cmd: echo "$MSG" > shared/msg
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      web:
        strategy: serial
        pod: web
        steps:
          - default: [[server]]
  side:
    strategy: serial
    phases:
      s:
        strategy: parallel
        pod: web
        steps:
          - default: [[side]]
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
        volume: {path: data, type: ROOT, size: 10}
        readiness-check: {cmd: "READY", interval: 1, delay: 0, timeout: 5}
plans:
  deploy:
    strategy: serial
    healthy-deadline: 2
    phases:
      b: {strategy: serial, pod: b}
"""

SECRET = "zebra-s3cret-77"


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    c = AuthCluster(tmp)
    c.start()
    c.specs = tmp
    try:
        write(tmp / "app.yml", APP_SPEC)
        c.deploy_out = c.run("service", "deploy", "-f", str(tmp / "app.yml"),
                             "-o", f"API_SECRET={SECRET}", "--wait", "--timeout", "90")
        yield c
    finally:
        c.stop()


def find_file(root, name):
    for r, _, fs in os.walk(root):
        if name in fs:
            return os.path.join(r, name)
    return None


def read_file(root, name):
    p = find_file(root, name)
    return open(p).read() if p else None


def task_id(cl, name, svc="app"):
    pods = cl.api("GET", f"/v1/service/{svc}/pod/status")[1]["pods"]
    return {t["name"]: t["id"] for p in pods for t in p["tasks"]}[name]


# ---------------------------------------------------------------------------
# service

def test_deploy_wait_prints_plain_lines(cl):
    p = cl.deploy_out
    assert p.returncode == 0, (p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert lines[0] == "deployed app (config 1); plan deploy started", lines
    assert "deploy web web-0:[server] COMPLETE" in lines, lines
    assert "deploy web web-1:[server] COMPLETE" in lines, lines
    assert lines[-1] == "deploy COMPLETE", lines
    assert "\033[" not in p.stdout, "terminal escapes while not on a terminal"


def test_service_list_and_status(cl):
    out = cl.ok("service", "list").stdout.splitlines()
    assert out[0].split() == ["NAME", "CONFIG", "DEPLOY", "TASKS"]
    assert re.match(r"app\s+1\s+COMPLETE\s+2 RUNNING", out[1]), out
    for args in (("service", "list", "--json"), ("--json", "service", "list")):
        lst = cl.json(*args)
        assert [s["name"] for s in lst] == ["app"] and lst[0]["plans"]["deploy"] == "COMPLETE"
    out = cl.ok("service", "status").stdout
    assert out.startswith("service app, config 1\n"), out
    assert re.search(r"plan deploy\s+COMPLETE", out) and "tasks: 2 RUNNING" in out
    st = cl.json("service", "status", "app", "--json")
    assert st["name"] == "app" and st["config_id"] == "1"
    p = cl.fails(1, "service", "status", "nosuch")
    assert "no service named 'nosuch'" in p.stderr


def test_plan_list_and_show(cl):
    assert cl.ok("plan", "list").stdout.split() == ["deploy", "side", "recovery", "decommission"]
    assert cl.json("plan", "list", "--json")[:2] == ["deploy", "side"]
    out = cl.ok("plan", "show").stdout
    assert out.splitlines() == [
        "deploy (serial strategy) (COMPLETE)",
        "└─ web (serial strategy) (COMPLETE)",
        "   ├─ web-0:[server] (COMPLETE)",
        "   └─ web-1:[server] (COMPLETE)",
    ], out
    assert cl.ok("-s", "app", "plan", "show", "deploy").stdout == out
    # -s may also follow the command, as in other orchestrators' CLIs.
    assert cl.ok("plan", "show", "deploy", "-s", "app").stdout == out
    assert cl.ok("plan", "show", "--service", "app", "deploy").stdout == out
    p = cl.fails(2, "-s", "app", "plan", "show", "-s", "other")
    assert "two services named: 'app' and 'other'" in p.stderr, p.stderr
    p = cl.fails(2, "plan", "show", "-s")
    assert "-s needs a service name" in p.stderr, p.stderr
    p = cl.json("plan", "show", "deploy", "--json")
    assert p["status"] == "COMPLETE" and [ph["name"] for ph in p["phases"]] == ["web"]
    out = cl.ok("plan", "show", "side").stdout
    assert out.startswith("side (serial strategy) (PENDING)"), out
    p = cl.fails(1, "plan", "show", "nosuch")
    assert "no plan 'nosuch'" in p.stderr and "(not-found)" in p.stderr
    p = cl.fails(1, "--json", "plan", "show", "nosuch")
    assert json.loads(p.stdout)["error"] == "not-found"


def test_plan_start_with_parameters_and_wait(cl):
    p = cl.ok("plan", "start", "side", "-p", "MSG=hello there", "--wait", "--timeout", "60")
    lines = p.stdout.splitlines()
    assert lines[0] == "plan side: start done", lines
    assert any(l.startswith("side s web-0:[side] COMPLETE") for l in lines), lines
    assert lines[-1] == "side COMPLETE", lines
    for i in range(2):
        assert read_file(cl.volume_dir("app", f"web-{i}"), "msg") == "hello there\n"
    out = cl.json("plan", "start", "side", "-p", "MSG=json", "--json")
    assert out == {"message": "ok", "plan": "side"}
    cl.ok("plan", "start", "side", "--wait", "--timeout", "60", "--json")
    # Bad parameters are usage errors; nothing is sent.
    p = cl.fails(2, "plan", "start", "side", "-p", "1BAD=x")
    assert "1BAD" in p.stderr
    cl.fails(2, "plan", "start", "side", "-p", "NOEQUALS")
    cl.fails(2, "plan", "start")
    p = cl.fails(1, "plan", "start", "nosuch")
    assert "no plan 'nosuch'" in p.stderr


def test_plan_pause_resume_force_and_stop(cl):
    # Started here too: pytest-xdist may run this test on a worker where
    # the test that starts it did not run.
    cl.ok("plan", "start", "side", "--wait", "--timeout", "60")
    assert cl.ok("plan", "pause", "side", "--phase", "s").stdout == "plan side: pause s\n"
    assert cl.ok("plan", "resume", "side", "--phase", "s").stdout.startswith(
        "plan side: phase s is no longer interrupted\nplan side is ")
    assert cl.json("plan", "pause", "side", "--json") == {"message": "ok", "plan": "side"}
    assert cl.ok("plan", "resume", "side").stdout.startswith(
        "plan side: the plan is no longer interrupted\n")
    p = cl.ok("plan", "force-complete", "side", "s", "web-0:[side]")
    assert p.stdout == "plan side: force-complete s\n"
    old = task_id(cl, "web-1-side")
    p = cl.ok("plan", "force-restart", "side", "s", "web-1:[side]", "--wait", "--timeout", "60")
    assert p.stdout.splitlines()[-1] == "side COMPLETE", p.stdout
    wait_for(lambda: task_id(cl, "web-1-side") != old, 30, what="web-1-side rerun")
    assert cl.json("plan", "force-complete", "side", "s", "web-1:[side]", "--json")["plan"] == "side"
    assert cl.ok("plan", "stop", "side").stdout == "plan side: stop done\n"
    # Errors: unknown phase or step (1), missing arguments (2).
    p = cl.fails(1, "plan", "force-complete", "side", "s", "nosuch")
    assert "no step 'nosuch'" in p.stderr
    cl.fails(1, "plan", "pause", "side", "--phase", "nosuch")
    cl.fails(2, "plan", "force-complete", "side", "s")
    cl.fails(2, "plan", "force-restart", "side")
    cl.fails(2, "plan", "pause", "side", "--bogus")


def test_pod_list_status_info(cl):
    assert cl.ok("pod", "list").stdout.split() == ["web-0", "web-1"]
    assert [p["name"] for p in cl.json("pod", "list", "--json")["pods"]] == ["web-0", "web-1"]
    lines = cl.ok("pod", "status").stdout.splitlines()
    assert lines[0].split() == ["POD", "TASK", "STATUS", "READY", "RESTARTS", "NODE"]
    rows = {l.split()[1]: l.split() for l in lines[1:]}
    assert rows["web-0-server"][:6] == ["web-0", "web-0-server", "RUNNING", "yes", "0", "node-1"], rows
    only = cl.ok("pod", "status", "web-1").stdout.splitlines()
    assert all(l.startswith("web-1") for l in only[1:]) and len(only) > 1
    st = cl.json("pod", "status", "--json")
    assert st["service"] == "app" and len(st["pods"]) == 2
    info = cl.json("pod", "info", "web-0", "--json")
    assert info["name"] == "web-0" and info["node"] == "node-1" and "http" in info["ports"]
    human = cl.ok("pod", "info", "web-0").stdout
    assert human.startswith("web-0 (pod web, instance 0)\n  node:      node-1\n"), human
    assert f"http {info['ports']['http']}" in human and "task server: RUNNING, ready" in human
    p = cl.fails(1, "pod", "info", "web-9")
    assert "no pod 'web-9'" in p.stderr
    cl.fails(2, "pod", "info")


def test_pod_restart_pause_resume(cl):
    old = task_id(cl, "web-0-server")
    assert cl.ok("pod", "restart", "web-0").stdout == "pod web-0: restart requested\n"
    wait_for(lambda: task_id(cl, "web-0-server") != old, 30, what="new web-0 task")
    out = cl.json("pod", "pause", "web-0", "--json")
    assert out["pod"] == "web-0" and "web-0-server" in out["tasks"], out
    p = cl.fails(1, "pod", "pause", "web-0")
    assert "already paused" in p.stderr and "(conflict)" in p.stderr
    wait_for(lambda: cl.json("pod", "info", "web-0", "--json")["paused"], 10, what="paused")
    assert cl.ok("pod", "resume", "web-0").stdout == "pod web-0: resume requested\n"
    p = cl.fails(1, "pod", "resume", "web-0")
    assert "not paused" in p.stderr
    wait_for(lambda: cl.api("GET", "/v1/service/app/health")[0] == 200, 60, what="healthy again")
    cl.fails(1, "pod", "restart", "web-9")
    cl.fails(2, "pod", "restart")


def test_endpoints(cl):
    assert cl.ok("endpoints").stdout == "http\n"
    assert cl.json("endpoints", "--json") == ["http"]
    ports = [cl.json("pod", "info", f"web-{i}", "--json")["ports"]["http"] for i in range(2)]
    ep = cl.json("endpoints", "http", "--json")
    assert sorted(ep["address"]) == sorted(f"127.0.0.1:{p}" for p in ports), ep
    assert sorted(cl.ok("endpoints", "http").stdout.splitlines()) == sorted(ep["address"])
    p = cl.fails(1, "endpoints", "nosuch")
    assert "no advertised port 'nosuch'" in p.stderr


def test_config_list_show_target(cl):
    assert cl.ok("config", "list").stdout == "1\n"
    assert cl.json("config", "list", "--json") == ["1"]
    one = cl.json("config", "show", "1")
    assert one["id"] == "1" and one["options"] == {"API_SECRET": "(hidden)"}
    env = [t for t in one["pods"][0]["tasks"] if t["name"] == "server"][0]["env"]
    assert env == {"API_SECRET": "(hidden)", "COLOR": "blue"}
    assert cl.json("config", "target") == one
    assert cl.ok("config", "target", "--id").stdout == "1\n"
    cl.fails(1, "config", "show", "99")
    cl.fails(2, "config", "show")
    # The secret is nowhere the CLI can show.
    outs = [cl.run(*a).stdout for a in (
        ("config", "show", "1"), ("config", "target"), ("pod", "info", "web-0"), ("pod", "info", "web-1"),
        ("pod", "status", "--json"), ("plan", "show", "--json"), ("events", "--json"),
        ("service", "status", "--json"))]
    assert all(SECRET not in o for o in outs)


def test_task_logs(cl):
    out = cl.ok("task", "logs", "web-1-server").stdout
    assert out == "line-1\nline-2\nline-3\n", out
    assert cl.ok("task", "logs", task_id(cl, "web-1-server")).stdout == out
    assert cl.ok("task", "logs", "web-1-server", "--stderr").stdout == "problem\n"
    p = cl.fails(1, "task", "logs", "nosuch-0-server")
    assert "no task named" in p.stderr
    cl.fails(2, "task", "logs", "web-1-server", "--tail", "x")
    cl.fails(2, "task", "logs")


def test_task_logs_tail(cl):
    assert cl.ok("task", "logs", "web-1-server", "--tail", "3").stdout == "line-1\nline-2\nline-3\n"
    assert cl.ok("task", "logs", "web-1-server", "--tail", "1").stdout == "line-3\n"


def test_task_exec(cl):
    p = cl.run("task", "exec", "web-1-server", "--", "sh", "-c",
               'echo "color=$COLOR port=$PORT_HTTP"; echo warn >&2; exit 4')
    port = cl.json("pod", "info", "web-1", "--json")["ports"]["http"]
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == f"color=blue port={port}\n" and p.stderr == "warn\n"
    out = cl.json("task", "exec", "web-1-server", "--json", "--", "test", "-f", "shared/alive")
    assert out["exit_code"] == 0 and out["stdout"] == "" and out["stderr"] == ""
    # Arguments are passed as they are, not re-split by a shell.
    p = cl.ok("task", "exec", "web-1-server", "--", "echo", "a  b", "$HOME;x")
    assert p.stdout == "a  b $HOME;x\n"
    cl.fails(2, "task", "exec", "web-1-server")
    cl.fails(1, "task", "exec", "nosuch-0-server", "--", "true")
    p = cl.fails(1, "--token", READ, "task", "exec", "web-1-server", "--", "true")
    assert "forbidden" in p.stderr


def test_node_list(cl):
    lines = cl.ok("node", "list").stdout.splitlines()
    assert lines[0].split() == ["NODE", "ADDRESS", "CONNECTED", "CPUS", "MEMORY", "LIMITS"]
    assert lines[1].split()[:3] == ["node-1", "127.0.0.1", "yes"], lines
    nodes = cl.json("node", "list", "--json")
    assert [n["id"] for n in nodes] == ["node-1"] and nodes[0]["connected"] is True


def test_events(cl):
    out = cl.ok("events").stdout.splitlines()
    assert any(re.search(r"operator\s+app\s+service\s+app: deployed \(app.yml\)$", l) for l in out), out[:10]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\S+Z \d+ ", l) for l in out), out[:5]
    evs = [json.loads(l) for l in cl.ok("events", "--json").stdout.splitlines()]
    assert [e["id"] for e in evs][:len(out)] == [int(l.split()[1]) for l in out]
    assert all(set(e) >= {"id", "time", "who", "service", "kind", "object", "before", "after", "why"}
               for e in evs)
    mid = evs[len(evs) // 2]["id"]
    later = [json.loads(l) for l in cl.ok("events", "--json", "--since", str(mid)).stdout.splitlines()]
    assert later and later[0]["id"] == mid + 1
    assert [e["id"] for e in later] == [e["id"] for e in evs if e["id"] > mid][:len(later)]
    svc = [json.loads(l) for l in cl.ok("-s", "app", "events", "--json").stdout.splitlines()]
    assert svc and all(e["service"] == "app" for e in svc)
    cl.fails(2, "events", "--bogus")
    p = cl.fails(1, "events", "--since", "abc")
    assert "event id" in p.stderr


def test_events_follow(cl):
    proc = subprocess.Popen([BIN, "events", "-f", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cl._env(), text=True)
    try:
        time.sleep(1)
        cl.ok("plan", "start", "side", "-p", "MSG=followed")
        seen = []
        deadline = time.time() + 20
        while time.time() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 1)
            if r:
                line = proc.stdout.readline()
                seen.append(json.loads(line))
                if any(e["kind"] == "plan" and e["object"] == "side" and e["who"] == "operator"
                       for e in seen):
                    break
        assert any(e["object"] == "side" and e["who"] == "operator" for e in seen), seen[-5:]
        assert proc.poll() is None, "events -f ended"
    finally:
        proc.terminate()
        proc.wait(10)


# ---------------------------------------------------------------------------
# Addresses, tokens, exit codes

def test_addr_and_token(cl):
    dead = f"http://127.0.0.1:{free_port()}"
    p = cl.fails(3, "service", "list", env={"HOLDFAST_ADDR": dead})
    assert "cannot reach the server" in p.stderr and dead in p.stderr
    # --addr wins over HOLDFAST_ADDR.
    assert "app" in cl.ok("--addr", cl.url, "service", "list", env={"HOLDFAST_ADDR": dead}).stdout
    cl.fails(3, "--addr", dead, "service", "list")
    # Without HOLDFAST_ADDR the default address is used.
    p = cl.run("service", "list", env={"HOLDFAST_ADDR": None})
    if p.returncode == 3:
        assert "http://127.0.0.1:7070" in p.stderr, p.stderr
    # Tokens: none, unknown, read-only, from the flag or the environment.
    p = cl.fails(1, "service", "list", env={"HOLDFAST_TOKEN": None})
    assert "(unauthorized)" in p.stderr
    cl.fails(1, "--token", "wrong", "service", "list")
    assert "app" in cl.ok("--token", READ, "service", "list", env={"HOLDFAST_TOKEN": None}).stdout
    assert "app" in cl.ok("service", "list", env={"HOLDFAST_TOKEN": READ}).stdout
    p = cl.fails(1, "plan", "start", "side", env={"HOLDFAST_TOKEN": READ})
    assert "(forbidden)" in p.stderr
    p = cl.fails(1, "--token", READ, "pod", "restart", "web-0")
    assert "(forbidden)" in p.stderr
    cl.ok("--token", ADMIN, "plan", "show", env={"HOLDFAST_TOKEN": READ})
    p = cl.fails(1, "--token", AGENT, "service", "remove", "app")
    assert "(forbidden)" in p.stderr
    assert "app" in cl.ok("service", "list").stdout


@pytest.mark.parametrize("args", [
    (), ("plan",), ("pod", "frobnicate"), ("nosuch",), ("service", "deploy"),
    ("service", "deploy", "-f"), ("plan", "force-complete", "side"), ("pod", "restart"),
    ("config", "show"), ("task", "exec", "web-0-server"), ("service", "list", "extra"),
    ("service", "deploy", "-f", "/nonexistent/spec.yml"),
])
def test_usage_errors_exit_2(cl, args):
    p = cl.fails(2, *args)
    assert p.stderr.strip(), "a usage error says why"


def test_help(cl):
    out = cl.ok("--help").stdout
    for verb in ("service deploy", "plan force-complete", "pod replace", "task exec", "events",
                 "endpoints", "config target", "node list"):
        assert verb in out, verb
    assert "pod replace" in cl.ok("help", "pod", "replace").stdout
    assert "--yes" in cl.ok("pod", "replace", "--help").stdout


def test_pod_replace_needs_confirmation(cl):
    old = task_id(cl, "web-1-server")
    p = cl.fails(2, "pod", "replace", "web-1")
    assert "confirm with --yes" in p.stderr
    # On a terminal it asks; anything but yes keeps the pod.
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([BIN, "pod", "replace", "web-1"], stdin=slave, stdout=slave,
                                stderr=slave, env=cl._env())
        out = b""
        deadline = time.time() + 20
        while b"Type 'yes'" not in out and time.time() < deadline:
            if select.select([master], [], [], 1)[0]:
                out += os.read(master, 4096)
        assert b"discards its volumes" in out, out
        os.write(master, b"no\n")
        assert proc.wait(20) == 1
    finally:
        os.close(master)
        os.close(slave)
    assert task_id(cl, "web-1-server") == old
    # --yes replaces it.
    assert cl.ok("pod", "replace", "web-1", "--yes").stdout == "pod web-1: replace requested\n"
    wait_for(lambda: task_id(cl, "web-1-server") not in (None, old), 60, what="a new web-1 task")
    cl.fails(1, "pod", "replace", "web-9", "--yes")


# ---------------------------------------------------------------------------
# Two services: -s required; deploy --wait ending in ERROR; update, diff,
# rollback, remove.

def test_two_services(cl):
    bad = write(cl.specs / "bad.yml", BAD_SPEC.replace("READY", "false"))
    p = cl.run("service", "deploy", "-f", bad, "--wait", "--timeout", "60")
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert lines[0] == "deployed bad (config 1); plan deploy started"
    assert any(l.startswith("deploy b b-0:[server] ERROR") and "healthy-deadline" in l for l in lines), lines
    assert lines[-1] == "deploy ERROR" and "\033[" not in p.stdout
    try:
        # -s is needed now.
        for args in (("plan", "show"), ("pod", "status"), ("endpoints",), ("config", "list"),
                     ("pod", "restart", "web-0")):
            p = cl.fails(2, *args)
            assert "there are several services; name one with -s SERVICE" in p.stderr, args
        cl.ok("-s", "app", "plan", "show")
        p = cl.fails(1, "-s", "bad", "plan", "show")
        assert "deploy (serial strategy) (ERROR)" in p.stdout and "error: b-0:[server]" in p.stdout
        assert cl.fails(1, "-s", "bad", "--json", "plan", "show").stdout.count('"ERROR"') >= 1
        # diff: allowed / refused.
        good = write(cl.specs / "good.yml", BAD_SPEC.replace("READY", "true"))
        p = cl.ok("service", "diff", "bad", "-f", good)
        assert p.stdout.splitlines()[-1] == "the update is allowed" and "relaunch" in p.stdout
        assert cl.json("service", "diff", "bad", "-f", good, "--json")["refusals"] == []
        bigger = write(cl.specs / "bigger.yml", BAD_SPEC.replace("size: 10", "size: 20"))
        p = cl.fails(1, "service", "diff", "bad", "-f", bigger)
        assert "refused:" in p.stdout and p.stdout.splitlines()[-1] == "the update would be refused"
        # update: refused (1, nothing changes), then accepted with --wait.
        p = cl.fails(1, "service", "update", "bad", "-f", bigger)
        assert "refused" in p.stderr + p.stdout
        assert cl.ok("-s", "bad", "config", "list").stdout == "1\n"
        p = cl.ok("service", "update", "bad", "-f", good, "--wait", "--timeout", "60")
        assert "updated bad: config 1 -> 2" in p.stdout and p.stdout.splitlines()[-1].endswith("COMPLETE"), p.stdout
        p = cl.ok("-s", "bad", "service", "update", "-f", good)
        assert "no change: bad stays at config 2" in p.stdout
        assert cl.json("service", "update", "bad", "-f", good, "--json")["changed"] is False
        # rollback.
        p = cl.ok("service", "rollback", "bad")
        assert p.stdout == "rolling bad back: config 2 -> 1\n"
        out = cl.json("service", "rollback", "bad", "--to", "2", "--json")
        assert out["from"] == "1" and out["to"] == "2"
        cl.fails(1, "service", "rollback", "bad", "--to", "2")
        cl.fails(1, "service", "rollback", "bad", "--to", "99")
        # deploying an existing service: refused.
        p = cl.fails(1, "service", "deploy", "-f", good)
        assert "already exists" in p.stderr
    finally:
        p = cl.run("service", "remove", "bad", "--wait")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stdout.startswith("removing bad: its tasks are being stopped\n")
    assert "keeping volumes of b-0 on node node-1" in p.stdout and p.stdout.endswith("bad removed\n")
    # One service again: -s may be omitted.
    cl.ok("plan", "show")


def test_deploy_and_remove_json(cl):
    tiny = write(cl.specs / "tiny.yml", """
name: tiny
pods:
  t:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.1, memory: 32, kill-grace-period: 1}
""")
    out = cl.json("service", "deploy", "-f", tiny, "--json")
    assert out == {"name": "tiny", "config_id": "1", "plan": "deploy"}
    try:
        plan = cl.json("-s", "tiny", "plan", "show", "--json")
        assert plan["name"] == "deploy"
        p = cl.run("-s", "tiny", "--json", "plan", "start", "deploy", "--wait", "--timeout", "60")
        assert p.returncode == 0 and json.loads(p.stdout)["status"] == "COMPLETE", p
    finally:
        p = cl.run("service", "remove", "tiny", "--delete-volumes", "--json")
    assert p.returncode == 0, p
    out = json.loads(p.stdout)
    assert out["name"] == "tiny" and out["delete_volumes"] is True
    wait_for(lambda: cl.api("GET", "/v1/services/tiny")[0] == 404, 60, what="tiny removed")
    cl.fails(1, "service", "remove", "tiny")
    cl.fails(2, "service", "remove")


def test_unsupported_spec_is_refused(cl):
    img = write(cl.specs / "img.yml", """
name: img
pods:
  i:
    count: 1
    image: nginx:1.25
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.1, memory: 32}
""")
    p = cl.fails(1, "service", "deploy", "-f", img)
    assert "image" in p.stderr and "(not-supported)" in p.stderr
    invalid = write(cl.specs / "invalid.yml", "name: inv\npods:\n  p:\n    count: 1\n    tasks: {}\n")
    p = cl.fails(1, "service", "deploy", "-f", invalid)
    assert "invalid.yml:" in p.stderr
    assert [s["name"] for s in cl.json("service", "list", "--json")] == ["app"]
