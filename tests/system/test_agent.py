"""System tests for `holdfast agent`, driven against a fake server written
here in Python that speaks docs/protocol.md (POST /v1/agent/sync): it hands
out desired sets and records every sync the agent sends.

The agent and its shims are the real binary (HOLDFAST_BIN, default the
sanitizer build); tasks are real processes; what is asserted is what the
server is told, and what a user finds on disk (volumes, sandboxes).
Waits are generous deadlines with polling; nothing asserts on timing.
"""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time

import pytest

BIN = os.environ.get("HOLDFAST_BIN", "/work/main/build-asan/holdfast")
DEADLINE = 40.0


# ---- the fake server ----------------------------------------------------


class FakeServer:
    """Holds the desired set; answers syncs as docs/protocol.md says."""

    def __init__(self, port=0):
        self.cond = threading.Condition()
        self.generation = 1
        self.desired = {}          # task_id -> launch order
        self.delete_volumes = []
        self.syncs = []            # every request body, in order
        self.reports = {}          # task_id -> every report seen, in order
        self.deleted_volumes = set()
        self.closing = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n))
                if self.path != "/v1/agent/sync":
                    self.send_error(404)
                    return
                out = json.dumps(server.sync(body)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the agent went away (killed by a test)

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def sync(self, body):
        with self.cond:
            self.syncs.append(body)
            for t in body["tasks"]:
                self.reports.setdefault(t["task_id"], []).append(t)
            self.deleted_volumes.update(body.get("deleted_volumes", []))
            self.cond.notify_all()
            # Long poll: hold while nothing changed for this agent.
            end = time.monotonic() + body["wait"]
            while (body["generation"] == self.generation and
                   not self.closing and time.monotonic() < end):
                self.cond.wait(end - time.monotonic())
            return {"generation": self.generation,
                    "tasks": list(self.desired.values()),
                    "delete_volumes": list(self.delete_volumes),
                    "heartbeat_interval": 2}

    def set_desired(self, orders, delete_volumes=None):
        with self.cond:
            self.desired = {o["task_id"]: o for o in orders}
            if delete_volumes is not None:
                self.delete_volumes = list(delete_volumes)
            self.generation += 1
            self.cond.notify_all()

    def last(self, task_id):
        with self.cond:
            r = self.reports.get(task_id)
            return r[-1] if r else None

    def wait_report(self, task_id, pred, what, timeout=DEADLINE):
        """Waits until the latest report of task_id satisfies pred."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                r = self.reports.get(task_id)
                if r and pred(r[-1]):
                    return r[-1]
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {task_id} {what}; last "
                        f"report: {r[-1] if r else None}")
                self.cond.wait(min(left, 0.2))

    def wait_state(self, task_id, state, timeout=DEADLINE):
        return self.wait_report(task_id, lambda r: r["state"] == state,
                                f"to be {state}", timeout)

    def syncs_since(self, n):
        with self.cond:
            return self.syncs[n:]

    def count(self):
        with self.cond:
            return len(self.syncs)

    def wait_syncs(self, n, timeout=DEADLINE):
        """Waits until n more syncs arrived; returns them."""
        start = self.count()
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.syncs) < start + n:
                left = end - time.monotonic()
                assert left > 0, "timed out waiting for syncs"
                self.cond.wait(min(left, 0.2))
            return self.syncs[start:]

    def close(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the agent ------------------------------------------------------------


def alive(pid):
    """True when pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_for(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read(path):
    with open(path) as f:
        return f.read()


class Agent:
    def __init__(self, tmp_path, server, extra=()):
        self.data = tmp_path / "data"
        self.server = server
        self.extra = list(extra)
        self.logs = []
        self.proc = None
        self.tmp_path = tmp_path

    def start(self):
        log = self.tmp_path / ("agent-%d.log" % len(self.logs))
        self.logs.append(log)
        env = dict(os.environ)
        env.pop("HOLDFAST_TOKEN", None)
        self.proc = subprocess.Popen(
            [BIN, "agent", "--server", self.server.url, "--data",
             str(self.data), "--node-id", "test-node", *self.extra],
            stdin=subprocess.DEVNULL, stdout=open(log, "w"),
            stderr=subprocess.STDOUT, env=env)
        return self

    def log(self):
        return "".join(read(l) for l in self.logs if l.exists())

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=DEADLINE)

    def stop(self):
        """SIGTERM; the agent must exit 0 (and clean under ASan)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert rc == 0, f"agent exited {rc}:\n{self.log()}"

    def taskdir(self, task_id):
        return self.data / "tasks" / task_id

    def sandbox(self, task_id):
        return self.taskdir(task_id) / "sandbox"

    def volume(self, key):
        return self.data / "volumes" / key


def shim_pids(data):
    pids = []
    tasks = data / "tasks"
    if tasks.exists():
        for d in tasks.iterdir():
            try:
                pid = int(json.loads(read(d / "status.json"))["shim_pid"])
            except (FileNotFoundError, ValueError, TypeError, KeyError):
                continue
            try:
                if b"shim" in open(f"/proc/{pid}/cmdline", "rb").read():
                    pids.append(pid)
            except FileNotFoundError:
                pass
    return pids


def stop_shims(data):
    """SIGTERM makes a shim stop its task and everything the task started
    (SIGKILL would leave the task's own children behind); SIGKILL only
    for a shim that does not finish in time."""
    pids = shim_pids(data)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def volume_pids(data, mode):
    """The holdfast-volume processes (attach or serve) of an agent's data
    directory: they outlive the agent by design."""
    root = os.path.realpath(data) + "/"
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            argv = open(f"/proc/{d}/cmdline", "rb").read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (argv[0].endswith("holdfast-volume") and argv[1:2] == [mode] and len(argv) > 2
                and os.path.realpath(argv[2]).startswith(root)):
            found.append(int(d))
    return found


def stop_volume_processes(data):
    """SIGTERM to the attach processes (they detach once no task mounts
    their device), then to the replica server; SIGKILL for one that does
    not exit in time."""
    for mode in ("attach", "serve"):
        pids = volume_pids(data, mode)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 20
        while time.monotonic() < end and any(alive(p) for p in pids):
            time.sleep(0.05)
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def strays(data):
    """Processes still working in one of the agent's sandboxes."""
    root = os.path.realpath(data) + "/"
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            continue
        if cwd.startswith(root) and alive(int(d)):
            found.append(int(d))
    return found


def unmount_below(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [l.split()[4] for l in f]
    for p in sorted(points, key=len, reverse=True):
        p = p.encode().decode("unicode_escape")
        if p == path or p.startswith(path + "/"):
            subprocess.run(["umount", "-l", p], check=False)


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def finish(a, server, tmp_path):
    """Stops the agent (it must exit 0 with a clean sanitizer report),
    then the shims it left running, then any mount left under tmp_path."""
    try:
        if a.proc and a.proc.poll() is None:
            # Held long polls end at once when the server closes.
            with server.cond:
                server.closing = True
                server.cond.notify_all()
            a.stop()
        log = a.log()
        assert "Sanitizer" not in log and "runtime error" not in log, log
        for root, _, files in os.walk(a.data / "tasks"):
            if "shim.log" in files:
                log = read(os.path.join(root, "shim.log"))
                assert "Sanitizer" not in log and \
                    "runtime error" not in log, log
    finally:
        stop_shims(a.data)
        stop_volume_processes(a.data)
        left = strays(a.data)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        unmount_below(tmp_path)
    assert not left, f"processes outlived their shims: {left}"


# Short long polls keep the tests quick; the protocol is the same.
FAST = ["--wait", "1"]


@pytest.fixture
def agent(tmp_path, server):
    a = Agent(tmp_path, server, FAST).start()
    yield a
    finish(a, server, tmp_path)


def order(task_id, cmd, **kw):
    """A launch order as the server sends it (docs/protocol.md)."""
    name = task_id.split("__")[0]
    o = {
        "task_id": task_id,
        "service": "svc",
        "pod": "pod",
        "pod_instance": "pod-0",
        "index": 0,
        "task": "server",
        "goal": "RUNNING",
        "config_id": "1",
        "cmd": cmd,
        "env": {"TASK_NAME": name, "POD_INSTANCE_INDEX": "0",
                "FRAMEWORK_NAME": "svc", "SERVICE_NAME": "svc"},
        "cpus": 0.1, "memory_mb": 64,
        "limit_cpus": None, "limit_memory_mb": None,
        "rlimits": [],
        "kill_grace_period": 3,
        "ports": {},
        "volumes": [],
        "configs": [],
        "uris": [],
        "health_check": None,
        "readiness_check": None,
        "user": None,
        "paused": False,
    }
    o.update(kw)
    return o


VOL_KEY = "svc/pod-0/server-resource-set/data"


def vol(path="data", key=VOL_KEY):
    return [{"key": key, "path": path, "type": "ROOT", "size_mb": 10}]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- tests -------------------------------------------------------------------


def test_print_info_reports_resources_and_cgroups(tmp_path):
    r = subprocess.run(
        [BIN, "agent", "--print-info", "--data", str(tmp_path / "d"),
         "--attributes", "zone=a,rack=r1",
         "--resources", "cpus=3,memory=2048,ports=31000-32000",
         "--address", "10.1.2.3"],
        capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["resources"]["cpus"] == 3
    assert info["resources"]["memory_mb"] == 2048
    assert info["resources"]["disk_mb"] > 0
    assert info["resources"]["ports"] == [{"begin": 31000, "end": 32000}]
    assert info["attributes"] == {"zone": "a", "rack": "r1"}
    assert info["address"] == "10.1.2.3"
    assert info["cgroups"]["version"] in (0, 1, 2)
    assert len(info["cgroups"]["note"]) > 10


def test_usage_errors(tmp_path):
    r = subprocess.run([BIN, "agent", "--data", str(tmp_path)],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 2 and "--server is required" in r.stderr
    r = subprocess.run([BIN, "agent", "--server", "http://x",
                        "--resources", "gpus=1"],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 2 and "unknown resource" in r.stderr


def test_launch_prepares_sandbox_and_runs_task(agent, server):
    tid = "pod-0-server__aaa1"
    server.set_desired([order(
        tid,
        "env > env.txt; echo hello > data/out.txt; exec sleep 1000",
        volumes=vol(),
        env={"TASK_NAME": "pod-0-server", "SECRET_THING": "s3cr3t-value",
             "PORT_HTTP": "12345"},
        configs=[{"dest": "conf/app.conf",
                  "template": "port={{PORT_HTTP}} dir={{MESOS_SANDBOX}}\n"},
                 {"dest": "../pod-level.conf", "template": "x={{TASK_NAME}}"}])])
    rep = server.wait_state(tid, "running")
    assert rep["pid"] and alive(rep["pid"])
    # The first sync reports node info.
    first = server.syncs[0]
    assert first["node_id"] == "test-node"
    assert "cgroups" in first["info"] and "resources" in first["info"]
    sandbox = agent.sandbox(tid)
    wait_for(lambda: (agent.volume(VOL_KEY) / "out.txt").exists(),
             "the task's write to reach the volume directory")
    assert read(agent.volume(VOL_KEY) / "out.txt") == "hello\n"
    # The volume is bound in the task's own mount namespace, never in the
    # node's (tests/system/test_isolation.py looks closer).
    assert not os.path.ismount(sandbox / "data")
    wait_for(lambda: (sandbox / "env.txt").exists() and
             "PATH=" in read(sandbox / "env.txt"), "env.txt")
    env = dict(l.split("=", 1) for l in read(sandbox / "env.txt").splitlines()
               if "=" in l)
    real = os.path.realpath(sandbox)
    assert env["TASK_NAME"] == "pod-0-server"
    assert os.path.realpath(env["MESOS_SANDBOX"]) == real
    assert os.path.realpath(env["HOLDFAST_SANDBOX"]) == real
    assert os.path.realpath(env["HOME"]) == real
    assert env["PATH"]
    assert read(sandbox / "conf" / "app.conf") == \
        f"port=12345 dir={env['MESOS_SANDBOX']}\n"
    assert read(agent.taskdir(tid) / "pod-level.conf") == "x=pod-0-server"
    boot = sandbox / "bootstrap"
    assert boot.exists() and os.access(boot, os.X_OK)
    assert boot.stat().st_size == 0
    # The launch was recorded, and secrets never reach the agent's log.
    assert tid in json.loads(read(agent.data / "agent.json"))["launched"]
    assert "s3cr3t-value" not in agent.log()
    assert rep["ready"] is True and rep["healthy"] is None


def test_exit_is_reported_and_the_id_never_relaunched(agent, server):
    tid = "pod-0-server__bbb1"
    o = order(tid, "echo run >> data/runs; exit 3", volumes=vol())
    server.set_desired([o])
    rep = server.wait_state(tid, "exited")
    assert rep["exit_code"] == 3 and rep["signal"] is None
    assert rep["finished_at"] and rep["pid"] is None
    # The server keeps listing the exited id: it must not run again, and
    # the agent keeps reporting the exit.
    n = server.count()
    server.set_desired([o])
    server.wait_syncs(2)
    assert read(agent.volume(VOL_KEY) / "runs") == "run\n"
    later = [t for s in server.syncs_since(n) for t in s["tasks"]
             if t["task_id"] == tid]
    assert later and all(t["state"] == "exited" for t in later)
    # Once the server stops listing it, the agent stops reporting it.
    server.set_desired([])
    syncs = server.wait_syncs(3)
    assert not any(t["task_id"] == tid for t in syncs[-1]["tasks"]), syncs


def test_removed_task_is_stopped_with_its_grace_period(agent, server):
    tid = "pod-0-server__ccc1"
    cmd = ("trap 'sleep 1; echo graceful > data/term; exit 0' TERM; "
           "echo up > data/up; while true; do sleep 0.1; done")
    server.set_desired([order(tid, cmd, volumes=vol(), kill_grace_period=20)])
    rep = server.wait_state(tid, "running")
    pid = rep["pid"]
    wait_for(lambda: (agent.volume(VOL_KEY) / "up").exists(), "the task up")
    server.set_desired([])
    rep = server.wait_state(tid, "killed")
    assert not alive(pid)
    # The TERM trap ran to the end: the grace period was honoured.
    assert read(agent.volume(VOL_KEY) / "term") == "graceful\n"
    assert rep["exit_code"] == 0


def test_unlisted_task_found_after_restart_is_killed(tmp_path, agent, server):
    tid = "pod-0-server__ddd1"
    server.set_desired([order(tid, "exec sleep 1000")])
    pid = server.wait_state(tid, "running")["pid"]
    agent.kill9()
    assert alive(pid)
    server.set_desired([])
    agent.start()
    server.wait_state(tid, "killed")
    wait_for(lambda: not alive(pid), "the unlisted task to die")


def test_agent_kill9_reattaches_and_keeps_exits(agent, server):
    run = "pod-0-server__eee1"
    ends = "pod-1-server__eee2"
    trigger = agent.tmp_path / "trigger"
    server.set_desired([
        order(run, "exec sleep 1000"),
        order(ends, f"while [ ! -e {trigger} ]; do sleep 0.05; done; exit 7"),
    ])
    pid = server.wait_state(run, "running")["pid"]
    server.wait_state(ends, "running")
    agent.kill9()
    # The second task ends while no agent is watching.
    trigger.write_text("go")
    status = agent.taskdir(ends) / "status.json"
    wait_for(lambda: json.loads(read(status))["state"] == "exited",
             "the task to exit while the agent is down")
    n = server.count()
    agent.start()
    rep = server.wait_report(
        run, lambda r: r["state"] == "running" and
        server.count() > n, "to be reported by the new agent")
    assert rep["pid"] == pid and alive(pid)
    rep = server.wait_state(ends, "exited")
    assert rep["exit_code"] == 7
    assert "reattached" in agent.log()
    # Still watched: a kill of the reattached task is seen.
    os.kill(pid, signal.SIGKILL)
    rep = server.wait_state(run, "exited")
    assert rep["signal"] == signal.SIGKILL


def test_a_killed_shim_leaves_nothing_of_its_task(agent, server):
    """shim.h: a shim killed -9 takes the task's main process with it
    (PDEATHSIG), not what the task started. The agent, finding the shim
    gone without a final status, kills what is left in the task's session
    and cgroup, removes the cgroup, and reports the task lost."""
    tid = "pod-0-server__fff1"
    child = agent.tmp_path / "child.pid"
    server.set_desired([order(tid, f"sleep 1000 & echo $! > {child}; exec sleep 1000")])
    rep = server.wait_state(tid, "running")
    wait_for(lambda: child.exists() and read(child).strip(), "the child's pid")
    kid = int(read(child).strip())
    st = json.loads(read(agent.taskdir(tid) / "status.json"))
    cgroup = st.get("cgroup")
    assert alive(kid) and alive(rep["pid"])
    os.kill(st["shim_pid"], signal.SIGKILL)
    rep = server.wait_state(tid, "lost")
    assert "shim is gone" in (rep.get("message") or ""), rep
    wait_for(lambda: not alive(kid), "the task's child to be killed")
    if cgroup:
        wait_for(lambda: not os.path.exists(cgroup), f"cgroup {cgroup} to be removed")
    final = json.loads(read(agent.taskdir(tid) / "status.json"))
    assert final["state"] == "exited" and final["message"].startswith("lost:"), final


def ppid_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_the_agent_reaps_the_shims_it_started(agent, server):
    """shim.h, STARTING A SHIM: the agent starts each shim as one process
    (no first process that forks and exits), so the shim is the agent's
    child, in a session of its own; however it ends (its task exits, the
    server takes the task away, the shim is killed), the agent reaps it:
    no zombie is left behind."""
    done, gone, killed = ("pod-0-a__rr1", "pod-0-b__rr2", "pod-0-c__rr3")
    server.set_desired([order(done, "sleep 0.5; exit 0"),
                        order(gone, "exec sleep 1000"),
                        order(killed, "exec sleep 1000")])
    shims = {}
    for tid in (done, gone, killed):
        server.wait_state(tid, "running")
        st = json.loads(read(agent.taskdir(tid) / "status.json"))
        shims[tid] = st["shim_pid"]
    for tid, pid in shims.items():
        if alive(pid):
            assert ppid_of(pid) == agent.proc.pid, (tid, pid)
            assert os.getsid(pid) == pid, (tid, pid)
    server.wait_state(done, "exited")
    server.set_desired([order(killed, "exec sleep 1000")])
    os.kill(shims[killed], signal.SIGKILL)
    server.wait_state(gone, "killed")
    server.wait_state(killed, "lost")
    for tid, pid in shims.items():
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"),
                 f"the shim of {tid} (pid {pid}) to be reaped", timeout=10)


def test_readiness_cmd_check_flips_ready(agent, server):
    tid = "pod-0-server__fff1"
    server.set_desired([order(
        tid, "exec sleep 1000",
        readiness_check={"kind": "cmd", "cmd": "test -e ready-flag",
                         "interval": 0.2, "delay": 0, "timeout": 5})])
    server.wait_state(tid, "running")
    # Not ready while the check fails.
    server.wait_syncs(2)
    assert server.last(tid)["ready"] is False
    (agent.sandbox(tid) / "ready-flag").write_text("")
    server.wait_report(tid, lambda r: r["ready"] is True, "to be ready")
    # Ready stays true for this id even when the check would fail again.
    os.unlink(agent.sandbox(tid) / "ready-flag")
    time.sleep(1)
    server.wait_syncs(1)
    assert server.last(tid)["ready"] is True


def test_failing_health_check_stops_the_task(agent, server):
    tid = "pod-0-server__ggg1"
    server.set_desired([order(
        tid, "exec sleep 1000",
        health_check={"kind": "cmd", "cmd": "echo boom-reason; exit 1",
                      "interval": 0.2, "delay": 0, "timeout": 5,
                      "grace_period": 0, "max_consecutive_failures": 3})])
    pid = server.wait_state(tid, "running")["pid"]
    rep = server.wait_state(tid, "exited")
    assert rep["message"] == \
        "health check failed 3 times: exit code 1: boom-reason", rep
    assert rep["healthy"] is False and rep["health_failures"] == 3
    assert not alive(pid)


def test_health_grace_period_and_passing_check(agent, server):
    tid = "pod-0-server__ggg2"
    server.set_desired([order(
        tid, "sleep 1; touch healthy; exec sleep 1000",
        health_check={"kind": "cmd", "cmd": "test -e healthy",
                      "interval": 0.2, "grace_period": 60,
                      "max_consecutive_failures": 1})])
    server.wait_state(tid, "running")
    rep = server.wait_report(tid, lambda r: r["healthy"] is True,
                             "to be healthy")
    assert rep["state"] == "running" and rep["health_failures"] == 0


def test_http_and_tcp_checks(agent, server):
    tid = "pod-0-server__hhh1"
    port = free_port()
    server.set_desired([order(
        tid, f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1",
        ports={"http": port},
        readiness_check={"kind": "http", "port": "http", "path": "/",
                         "interval": 0.2, "timeout": 5},
        # The grace period covers python's start-up.
        health_check={"kind": "tcp", "port": port, "interval": 0.2,
                      "timeout": 5, "grace_period": 60,
                      "max_consecutive_failures": 3})])
    server.wait_state(tid, "running")
    rep = server.wait_report(
        tid, lambda r: r["ready"] is True and r["healthy"] is True,
        "to be ready (http) and healthy (tcp)")
    assert rep["state"] == "running"


def test_http_check_on_a_missing_page_and_tcp_on_a_closed_port(agent, server):
    port = free_port()
    closed = free_port()
    a, b = "pod-0-server__hhh2", "pod-1-server__hhh3"
    server.set_desired([
        order(a, f"exec {sys.executable} -m http.server {port} "
                 "--bind 127.0.0.1",
              ports={"http": port},
              readiness_check={"kind": "http", "port": port,
                               "path": "/no-such-page", "interval": 0.2}),
        order(b, "exec sleep 1000",
              health_check={"kind": "tcp", "port": closed, "interval": 0.2,
                            "max_consecutive_failures": 2}),
    ])
    rep = server.wait_state(b, "exited")
    assert rep["message"].startswith("health check failed 2 times: connect"), rep
    server.wait_state(a, "running")
    server.wait_syncs(3)
    assert server.last(a)["ready"] is False


def test_file_uri_archive_is_extracted(tmp_path, server):
    # file:// URIs are served from the agent's --artifact-dir only.
    served = tmp_path / "artifacts"
    src = tmp_path / "art"
    (src / "app").mkdir(parents=True)
    (src / "app" / "hello.txt").write_text("from the archive\n")
    served.mkdir()
    archive = served / "app.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "app", arcname="app")
    plain = served / "plain.sh"
    plain.write_text("echo plain\n")
    agent = Agent(tmp_path, server, FAST + ["--artifact-dir", str(served)])
    agent.start()
    try:
        tid = "pod-0-server__iii1"
        server.set_desired([order(
            tid, "cat app/hello.txt > copied.txt; sh plain.sh >> copied.txt; "
                 "exec sleep 1000",
            uris=[f"file://{archive}", f"file://{plain}"])])
        server.wait_state(tid, "running")
        sandbox = agent.sandbox(tid)
        wait_for(lambda: (sandbox / "copied.txt").exists() and
                 read(sandbox / "copied.txt").endswith("plain\n"),
                 "copied.txt")
        assert read(sandbox / "copied.txt") == "from the archive\nplain\n"
        assert (sandbox / "app.tar.gz").exists()
    finally:
        finish(agent, server, tmp_path)


def test_http_uri_is_fetched_once_into_the_cache(tmp_path, agent, server):
    import hashlib
    root = tmp_path / "www"
    root.mkdir()
    payload = b"#!/bin/sh\necho fetched\n"
    (root / "tool.sh").write_bytes(payload)
    hits = []

    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args):
            hits.append(args)

    www = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=www.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/tool.sh" % www.server_address[1]
        ids = ["pod-0-server__jjj1", "pod-1-server__jjj2"]
        server.set_desired([order(ids[0], "sh tool.sh > out; sleep 1000",
                                  uris=[url])])
        server.wait_state(ids[0], "running")
        server.set_desired([order(i, "sh tool.sh > out; sleep 1000",
                                  uris=[url]) for i in ids])
        server.wait_state(ids[1], "running")
        for i in ids:
            out = agent.sandbox(i) / "out"
            wait_for(lambda: out.exists() and read(out) == "fetched\n",
                     f"{i} to run the fetched script")
        digest = hashlib.sha256(payload).hexdigest()
        assert (agent.data / "cache" / digest).read_bytes() == payload
        assert len(hits) == 1, hits
    finally:
        www.shutdown()
        www.server_close()


def test_volume_survives_relaunch_and_delete_volumes(agent, server):
    first, second = "pod-0-server__kkk1", "pod-0-server__kkk2"
    server.set_desired([order(first, "echo kept > data/file; exit 0",
                              volumes=vol())])
    server.wait_state(first, "exited")
    server.set_desired([order(second, "cat other/place/file > seen; exit 0",
                              volumes=vol("other/place"))])
    server.wait_state(second, "exited")
    assert read(agent.sandbox(second) / "seen") == "kept\n"
    # The binds are gone once the tasks ended: deleting the volume is safe.
    voldir = agent.volume(VOL_KEY)
    assert voldir.exists()
    server.set_desired([], delete_volumes=[VOL_KEY])
    wait_for(lambda: VOL_KEY in server.deleted_volumes,
             "the deletion to be reported")
    assert not voldir.exists()
    # The old sandboxes (kept for logs) still show the task's output.
    assert read(agent.sandbox(second) / "seen") == "kept\n"
    # Acknowledged: once the server stops asking, the agent stops saying.
    server.set_desired([], delete_volumes=[])
    syncs = server.wait_syncs(2)
    assert syncs[-1]["deleted_volumes"] == []


def test_volume_in_use_is_not_deleted(agent, server):
    tid = "pod-0-server__kkk3"
    server.set_desired([order(tid, "exec sleep 1000", volumes=vol())],
                       delete_volumes=[VOL_KEY])
    server.wait_state(tid, "running")
    server.wait_syncs(2)
    assert agent.volume(VOL_KEY).exists()
    assert VOL_KEY not in server.deleted_volumes


def test_bad_template_and_escaping_config_fail_to_start(agent, server):
    a, b = "pod-0-server__lll1", "pod-1-server__lll2"
    server.set_desired([
        order(a, "true", configs=[{"dest": "x.conf",
                                   "template": "v={{NOT_SET_ANYWHERE}}"}]),
        order(b, "true", configs=[{"dest": "../../escape.conf",
                                   "template": "x"}]),
    ])
    rep = server.wait_state(a, "failed-to-start")
    assert "NOT_SET_ANYWHERE" in rep["message"], rep
    rep = server.wait_state(b, "failed-to-start")
    assert "escape.conf" in rep["message"], rep
    assert not (agent.data / "tasks" / "escape.conf").exists()


def test_paused_task_sleeps_and_is_never_ready(agent, server):
    tid = "pod-0-server__mmm1"
    server.set_desired([order(
        tid, "echo should-not-run > ran; exit 1", paused=True,
        readiness_check={"kind": "cmd", "cmd": "true", "interval": 0.2})])
    rep = server.wait_state(tid, "running")
    server.wait_syncs(3)
    assert server.last(tid)["ready"] is False
    assert not (agent.sandbox(tid) / "ran").exists()
    cmdline = open(f"/proc/{rep['pid']}/cmdline", "rb").read()
    assert cmdline.split(b"\0")[:2] == [b"sleep", b"2147483647"], cmdline


def test_server_unreachable_then_back(tmp_path):
    """Tasks keep running while no server answers; the agent retries."""
    port = free_port()
    first = FakeServer(port)
    a = Agent(tmp_path, first, FAST).start()
    second = None
    try:
        tid = "pod-0-server__nnn1"
        first.set_desired([order(tid, "exec sleep 1000")])
        pid = first.wait_state(tid, "running")["pid"]
        first.close()
        wait_for(lambda: "cannot reach server" in a.log(),
                 "the agent to notice the server is gone")
        assert alive(pid) and a.proc.poll() is None
        second = FakeServer(port)
        second.set_desired([order(tid, "exec sleep 1000")])
        rep = second.wait_state(tid, "running")
        assert rep["pid"] == pid
        wait_for(lambda: "answers again" in a.log(),
                 "the agent to say the server is back")
    finally:
        finish(a, second or first, tmp_path)
        if second:
            second.close()


def test_sigterm_leaves_tasks_running(tmp_path, agent, server):
    tid = "pod-0-server__ooo1"
    server.set_desired([order(tid, "exec sleep 1000")])
    pid = server.wait_state(tid, "running")["pid"]
    with server.cond:
        server.closing = True
        server.cond.notify_all()
    agent.stop()
    assert alive(pid)
    with server.cond:
        server.closing = False
    n = server.count()
    agent.start()
    rep = server.wait_report(tid, lambda r: server.count() > n,
                             "to be reported after the restart")
    assert rep["state"] == "running" and rep["pid"] == pid


def test_recorded_but_never_started_is_lost_not_launched(tmp_path, server):
    """kill -9 between recording a launch and starting its shim: the ids
    are in agent.json (one without a directory, one with launch.json but
    no shim); neither may ever run."""
    data = tmp_path / "data"
    (data / "tasks" / "pod-1-server__ppp2").mkdir(parents=True)
    o2 = order("pod-1-server__ppp2", "touch /dev/null; echo ran > ran")
    (data / "tasks" / "pod-1-server__ppp2" / "order.json").write_text(
        json.dumps(o2))
    (data / "agent.json").write_text(json.dumps({
        "node_id": "test-node", "generation": 5,
        "launched": ["pod-0-server__ppp1", "pod-1-server__ppp2"]}))
    a = Agent(tmp_path, server, FAST).start()
    try:
        o1 = order("pod-0-server__ppp1", "echo ran > ran; sleep 1000")
        server.set_desired([o1, o2])
        for tid in ("pod-0-server__ppp1", "pod-1-server__ppp2"):
            rep = server.wait_state(tid, "lost")
            assert rep["message"], rep
        server.wait_syncs(2)
        assert not (data / "tasks" / "pod-0-server__ppp1").exists()
        assert not (data / "tasks" / "pod-1-server__ppp2" / "sandbox" /
                    "ran").exists()
    finally:
        finish(a, server, tmp_path)


def test_data_dir_of_another_node_is_refused(tmp_path, server):
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent.json").write_text(json.dumps(
        {"node_id": "node-a", "generation": 0, "launched": []}))
    r = subprocess.run([BIN, "agent", "--server", server.url, "--data",
                        str(data), "--node-id", "node-b"],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 1
    assert 'belongs to node "node-a"' in r.stderr


def test_old_sandboxes_are_removed_and_ids_stay_launched(tmp_path, server):
    a = Agent(tmp_path, server, FAST + ["--sandbox-keep", "0"]).start()
    try:
        tid = "pod-0-server__qqq1"
        o = order(tid, "echo bye > data/left; exit 0", volumes=vol())
        server.set_desired([o])
        server.wait_state(tid, "exited")
        server.set_desired([])
        wait_for(lambda: not a.taskdir(tid).exists(),
                 "the acknowledged task's directory to be removed")
        # The volume is untouched by the sandbox removal.
        assert read(a.volume(VOL_KEY) / "left") == "bye\n"
        # Listed again, the id is reported, never relaunched.
        server.set_desired([o])
        rep = server.wait_state(tid, "lost")
        assert "before" in rep["message"]
        assert read(a.volume(VOL_KEY) / "left") == "bye\n"
    finally:
        finish(a, server, tmp_path)


def test_launched_ids_are_forgotten_only_once_old_and_gone(tmp_path, server):
    """agent.json keeps each launched id with its time; an id goes once
    its task left the node (directory removed) and it is older than
    --launched-keep, never while its task is there. Ids from an agent.json
    without times count from this start."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent.json").write_text(json.dumps({
        "node_id": "test-node", "generation": 0,
        "launched": ["pod-9-server__old1"]}))
    a = Agent(tmp_path, server, FAST + ["--sandbox-keep", "0",
                                        "--launched-keep", "2"]).start()
    try:
        def state():
            return json.loads(read(data / "agent.json"))

        gone, kept = "pod-0-server__lkp1", "pod-1-server__lkp2"
        og = order(gone, "exit 0")
        ok = order(kept, "sleep 1000")
        server.set_desired([og, ok])
        server.wait_state(gone, "exited")
        server.wait_state(kept, "running")
        st = state()
        assert {gone, kept, "pod-9-server__old1"} <= set(st["launched"])
        assert len(st["launched_at"]) == len(st["launched"])
        server.set_desired([ok])
        wait_for(lambda: not a.taskdir(gone).exists(),
                 "the ended task's directory to be removed")
        time.sleep(2.5)
        # The record is rewritten with the next launch: the old ids whose
        # tasks left go, the running one stays however old it is.
        third = "pod-2-server__lkp3"
        server.set_desired([ok, order(third, "sleep 1000")])
        server.wait_state(third, "running")
        st = state()
        assert gone not in st["launched"] and \
            "pod-9-server__old1" not in st["launched"]
        assert kept in st["launched"] and third in st["launched"]
        assert "forgot 2 launched task id(s)" in a.log()
        # The running task is still there, launched once.
        assert server.wait_state(kept, "running")["pid"]
    finally:
        finish(a, server, tmp_path)
