"""The store fault loop: a deploy, an update and a scale-in, with the Nth
store write failing, for every N the scenario makes.

SQLite's fault loops are the model: the store fault hook
(HOLDFAST_STORE_FAULT, docs/store.md) fails exactly one write call, the
Nth, in one of two ways: the write is not made ("io"), or it is made and
its answer is lost ("applied", the worst case of a commit). For every N,
each operation either succeeds or answers a clean error, or the server
stops; the server is then restarted without the fault (as an operator or
systemd would), the scenario goes on from where it stood, and the cluster
must converge: the plans COMPLETE, one instance left running the updated
configuration, no task running twice (a duplicate), no task the server
does not know (an orphan), no step lost.

Real server, real agent, real tasks (`sleep`), the ASan binary.
"""
import concurrent.futures
import os
import re
import shutil
import subprocess

import pytest

import holdfast_harness as h

SPEC = """name: fl
pods:
  p:
    count: {n}
    allow-decommission: true
    tasks:
      t:
        goal: RUNNING
        cmd: exec sleep 3600
        cpus: 0.01
        memory: 8
        env:
          V: "{v}"
"""

# How many scenarios run at once (each is its own cluster).
PARALLEL = 4

# The scenario: what the service should be after each operation.
STEPS = [(3, "a"), (3, "b"), (1, "b")]


class Run:
    """One cluster for one N: the server with the fault, its agent."""

    def __init__(self, tmp):
        self.c = h.Cluster(tmp)
        self.spec = os.path.join(str(tmp), "svc.yml")
        self.errors = []  # the clean errors the operations answered

    def start_server(self, fault=None):
        self.c.server_env = {"HOLDFAST_STORE_FAULT": fault} if fault else {}
        try:
            self.c.start_server()
        finally:
            self.c.server_env = {}

    def server_alive(self):
        return self.c.server is not None and self.c.server.poll() is None

    def apply(self, n, v, timeout=60):
        """Deploys or updates fl to (n, v) and waits: True when done."""
        h.write(self.spec, SPEC.format(n=n, v=v))
        st, _ = self.c.api("GET", "/v1/service/fl/plans/deploy")
        if st == 404:
            args = ["service", "deploy", "-f", self.spec]
        else:
            args = ["service", "update", "fl", "-f", self.spec]
        p = self.c.cli(*args, "--wait", "--timeout", str(timeout), check=False,
                       timeout=timeout + 30)
        if p.returncode == 0:
            return True
        # A failed operation says why in one line (a JSON error turned into
        # "holdfast: <message> (<name>)"), or the server has stopped.
        if self.server_alive():
            assert p.stderr.startswith("holdfast: ") and p.stderr.strip().endswith(")"), \
                f"{' '.join(args)}: not a clean error:\n{p.stderr}"
        self.errors.append(p.stderr.strip())
        return False

    def restart_server(self):
        self.c.kill_server()
        self.start_server()

    def running_task_ids(self):
        """Task ids of this cluster's live `sleep` processes, from the
        sandbox directory each runs in (the agent's tasks/<id>/...)."""
        return sorted(self.running_tasks())

    def running_tasks(self):
        """{task id: pid} of this cluster's live `sleep` processes."""
        out = {}
        root = os.path.join(self.c.agent_data, "tasks") + "/"
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read()
                cwd = os.readlink(f"/proc/{d}/cwd")
            except OSError:
                continue
            if cmd.startswith(b"sleep\x00") and cwd.startswith(root):
                out[cwd[len(root):].split("/")[0]] = int(d)
        return out

    def stop(self):
        for p in (self.c.agent, self.c.server):
            if p and p.poll() is None:
                p.kill()
                p.wait(10)
        self.c.kill_tasks()
        subprocess.run(["sh", "-c", f"grep ' {self.c.tmp}' /proc/mounts | cut -d' ' -f2 | "
                        f"sort -r | xargs -r -n1 umount -l"], check=False)
        for log in self.c.logs:
            log.close()


def converged(r):
    """None when the cluster is where the scenario ends, else what is not."""
    st, plan = r.c.api("GET", "/v1/service/fl/plans/deploy")
    if st != 200:
        return f"plans/deploy answered {st}: {plan}"
    if plan.get("status") != "COMPLETE":
        return f"deploy plan {plan.get('status')}"
    st, body = r.c.api("GET", "/v1/service/fl/pod/status")
    if st != 200:
        return f"pod status answered {st}"
    pods = body["pods"]
    names = sorted(p["name"] for p in pods)
    if names != ["p-0"]:
        return f"instances {names}"
    tasks = [t for p in pods for t in p["tasks"]]
    if len(tasks) != 1 or tasks[0].get("status") != "RUNNING":
        return f"tasks {tasks}"
    want = tasks[0]["id"]
    running = r.running_task_ids()
    if running != [want]:
        return f"processes {running}, the server knows {want}"
    return None


def scenario(tmp, fault):
    """Runs the scenario with `fault` on the first server; returns the run
    (stopped) and whether the fault was met."""
    r = Run(tmp)
    try:
        try:
            r.start_server(fault)
        except AssertionError:
            # The fault hit the server's start (its cluster id, its
            # leadership): it stopped; restarted, it must start.
            assert r.c.server.poll() is not None
            r.start_server()
        r.c.start_agent()
        i = 0
        restarted = False
        while i < len(STEPS):
            if r.apply(*STEPS[i]):
                i += 1
                continue
            # A failed operation: restart the server once (without the
            # fault) and go on from the same step; a second failure of a
            # fault-free server is a bug.
            assert not restarted, f"step {STEPS[i]} failed twice: {r.errors}\n" \
                + r.c.server_log()[-3000:]
            r.restart_server()
            restarted = True
        # However the operations went, a restarted server converges too.
        if not restarted:
            r.restart_server()
        h.wait_for(lambda: converged(r) is None, 60,
                   what=f"convergence with {fault} ({converged(r)})")
        # The surviving task runs the updated configuration.
        (pid,) = r.running_tasks().values()
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert b"V=b" in env, env
        met = "injected by HOLDFAST_STORE_FAULT" in r.c.server_log()
        return r, met
    except BaseException:
        print(r.c.server_log()[-4000:])
        print(r.c.agent_log()[-2000:])
        raise
    finally:
        r.stop()


def write_calls_of_the_scenario(tmp):
    """The store write calls a fault-free run makes, from the metrics."""
    r = Run(tmp)
    try:
        r.start_server()
        r.c.start_agent()
        for n, v in STEPS:
            assert r.apply(n, v), r.errors
        h.wait_for(lambda: converged(r) is None, 60, what="fault-free convergence")
        req = __import__("urllib.request").request
        with req.urlopen(req.Request(r.c.url + "/metrics",
                                     headers=r.c._auth()), timeout=10) as f:
            text = f.read().decode()
        m = re.search(r'holdfast_store_operations_total\{op="txn"\} (\d+)', text)
        assert m, text[:2000]
        return int(m.group(1))
    finally:
        r.stop()


@pytest.mark.parametrize("how", ["io", "applied"])
def test_every_failed_store_write_ends_in_a_clean_error_and_convergence(tmp_path, how):
    writes = write_calls_of_the_scenario(tmp_path / "count")
    assert writes > 10, writes

    def one(n):
        fault = f"writes={n},error=io" + (",applied" if how == "applied" else "")
        d = tmp_path / f"n{n}"
        d.mkdir()
        _, hit = scenario(d, fault)
        shutil.rmtree(d, ignore_errors=True)
        return hit

    # Each N is a cluster of its own (server, agent, tasks in its own
    # directories, on ports of its own): a few run at once, as most of a
    # scenario's time is spent waiting on processes and plans.
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        met = sum(pool.map(one, range(1, writes + 1)))
    # The loop proves something only if the faults were met: most Ns fall
    # inside the scenario (a few may land after it, in the restart).
    assert met >= writes * 3 // 4, (met, writes)
