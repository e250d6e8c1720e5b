"""Restarts decided on the node: a RUNNING task whose process exits is
restarted in place by its shim (the launch order's restart policy, the
server's backoff), keeping its task id, sandbox and shim, and its agent
reports each restart so the server shows it (pod status, events) without
relaunching anything. Also across an agent that was down, and a server
killed -9 while tasks crash and restart in a loop: no duplicate, no
orphan, no restart counted twice.

Real server, real agent, real shims and tasks (the ASan binary).
"""
import json
import os
import signal
import time

import pytest

from holdfast_harness import Cluster, pid_alive, wait_for, write


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("rip"), backoff="0.5")
    c.start()
    yield c
    c.stop()


def status(c, task_id):
    """The shim's status.json of a launch."""
    with open(os.path.join(c.agent_data, "tasks", task_id, "status.json")) as f:
        return json.load(f)


def pod_status(c, svc):
    """`holdfast pod status --json`, by task name."""
    out = c.cli("-s", svc, "pod", "status", "--json").stdout
    return {t["name"]: t for p in json.loads(out)["pods"] for t in p["tasks"]}


def events(c, obj):
    """The events on one object (a task id), from `holdfast events --json`."""
    out = c.cli("events", "--json").stdout
    evs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [e for e in evs if e.get("object") == obj]


def restarted(evs):
    return [e for e in evs if e.get("after") == "restarted"]


def test_killed_five_times_restarts_in_place_with_backoff(cluster, tmp_path):
    c = cluster
    spec = write(tmp_path / "k.yml", """
name: kill5
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$$" >> data/pids && exec sleep 100000
        cpus: 0.05
        memory: 32
        volume: {path: data, type: ROOT, size: 10}
""")
    c.deploy(spec)
    t = c.tasks("kill5")["p-0-server"]
    tid = t["id"]
    assert t["restarts"] == 0
    first = status(c, tid)
    shim_pid, sandbox = first["shim_pid"], os.path.join(c.agent_data, "tasks", tid, "sandbox")
    pids, gaps = [first["pid"]], []
    for k in range(1, 6):
        # Kill it only once its shell wrote its pid and became sleep: a kill
        # before the echo would leave one pid short in the volume.
        wait_for(lambda: open(f"/proc/{pids[-1]}/comm").read().strip() == "sleep", 10,
                 what=f"process {pids[-1]} to exec sleep")
        os.kill(pids[-1], signal.SIGKILL)
        wait_for(lambda: status(c, tid).get("restarts") == k and status(c, tid)["state"] == "running",
                 60, what=f"restart #{k} in place")
        st = status(c, tid)
        assert st["shim_pid"] == shim_pid, st      # the same shim ...
        assert st["task_id"] == tid                 # ... the same launch
        assert st["pid"] not in pids, (st, pids)    # a new process
        assert os.readlink(f"/proc/{st['pid']}/cwd") == sandbox  # in the same sandbox
        assert st["last_signal"] == signal.SIGKILL and st["last_exit_code"] is None, st
        pids.append(st["pid"])
        gaps.append(st["started_at"] - st["last_exit_at"])
        # The server hears of it: same id, one more restart, running.
        wait_for(lambda: c.tasks("kill5")["p-0-server"]["restarts"] == k
                 and c.tasks("kill5")["p-0-server"]["status"] == "RUNNING", 30,
                 what=f"restart #{k} reported")
        assert c.tasks("kill5")["p-0-server"]["id"] == tid
    assert pid_alive(shim_pid)
    # The policy's backoff: the first restart at once, then each wait
    # longer than the one before (doubling, with jitter of at most 20 %).
    assert gaps == sorted(gaps) and len(set(gaps)) == len(gaps), gaps
    # Every process ran in the same sandbox on the same volume.
    logf = [os.path.join(r, "pids") for r, _, fs in os.walk(c.volume_dir("kill5", "p-0")) if "pids" in fs]
    assert len(logf) == 1
    # (The shim says "running" once the process exists; its shell writes
    # its pid a moment later.)
    wait_for(lambda: len(open(logf[0]).read().split()) == 6, 10,
             what="six processes' pids in the volume")
    # pod status (CLI, --json) shows the count on the same task id.
    ps = pod_status(c, "kill5")["p-0-server"]
    assert ps["id"] == tid and ps["restarts"] == 5 and ps["status"] == "RUNNING", ps
    human = c.cli("-s", "kill5", "pod", "status").stdout
    row = next(line for line in human.splitlines() if "p-0-server" in line)
    assert " 5 " in f" {row} ", human
    # pod info: the launch's own count and its latest exit.
    info = c.api("GET", "/v1/service/kill5/pod/p-0/info")[1]
    slot = info["tasks"][0]
    assert slot["restarts"] == 5 and slot["launches"] == 1, slot
    cur = slot["current"]
    assert cur["id"] == tid and cur["in_place_restarts"] == 5, cur
    assert cur["last_signal"] == signal.SIGKILL and cur["last_exit_code"] is None, cur
    # An event per restart, numbered, with the signal.
    evs = restarted(events(c, tid))
    assert [e["why"] for e in evs] == [
        f"restarted in place after signal 9, restart #{k}" for k in range(1, 6)], evs
    # The server launched nothing: the plan is done, the id unchanged.
    assert c.plan("kill5")["status"] == "COMPLETE"
    c.cli("service", "remove", "kill5", "--wait")


def test_task_killed_while_its_agent_is_down_is_restarted_and_reported(cluster, tmp_path):
    c = cluster
    spec = write(tmp_path / "d.yml", """
name: down
pods:
  p:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 100000, cpus: 0.05, memory: 32}
""")
    c.deploy(spec)
    tid = c.tasks("down")["p-0-server"]["id"]
    before = status(c, tid)
    c.kill_agent()
    os.kill(before["pid"], signal.SIGKILL)
    # Its shim restarts it with no agent around.
    wait_for(lambda: status(c, tid).get("restarts") == 1 and status(c, tid)["state"] == "running",
             30, what="restart by the shim alone")
    after = status(c, tid)
    assert after["shim_pid"] == before["shim_pid"] and after["pid"] != before["pid"]
    assert after["last_signal"] == signal.SIGKILL
    time.sleep(0.5)
    # The server has not heard of it yet.
    assert c.tasks("down")["p-0-server"]["restarts"] == 0
    c.start_agent()
    wait_for(lambda: c.tasks("down")["p-0-server"]["restarts"] == 1, 30,
             what="the restart reported by the agent back")
    t = c.tasks("down")["p-0-server"]
    assert t["id"] == tid and t["status"] == "RUNNING", t
    evs = restarted(events(c, tid))
    assert len(evs) == 1 and "signal 9" in evs[0]["why"] and "#1" in evs[0]["why"], evs
    # Nothing else started: the same process still runs, counted once.
    time.sleep(1)
    assert status(c, tid)["pid"] == after["pid"]
    assert c.tasks("down")["p-0-server"]["restarts"] == 1
    c.cli("service", "remove", "down", "--wait")


def ancestors(pid):
    """The pids above pid, nearest first (stops where /proc says no more)."""
    out = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.append(pid)
    return out


def live_task_processes(c):
    """[(task id, pid, cmdline)] of the processes running in a sandbox of
    this cluster's agent (a task's shell and what it started)."""
    root = os.path.join(c.agent_data, "tasks") + "/"
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            continue
        if cwd.startswith(root) and b"holdfast-shim" not in cmd[0]:
            out.append((cwd[len(root):].split("/")[0], int(d), cmd[0].decode(errors="replace")))
    return out


def test_server_killed_while_tasks_crash_and_restart_leaves_no_duplicate_or_orphan(tmp_path):
    c = Cluster(tmp_path, backoff="0.2")
    c.server_args = ["--backoff-max", "0.8"]
    c.start()
    try:
        # Each process lives 0.2 to 0.8 s, then fails: a crash loop.
        spec = write(tmp_path / "loop.yml", """
name: loop
pods:
  p:
    count: 3
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 0.$(($$ % 7 + 2)); exit 3
        cpus: 0.01
        memory: 16
""")
        c.deploy(spec, wait=False)
        names = [f"p-{i}-server" for i in range(3)]
        wait_for(lambda: all(c.tasks("loop").get(n, {}).get("restarts", 0) >= 2 for n in names),
                 60, what="every task crashing and restarting in place")
        ids = {n: t["id"] for n, t in c.tasks("loop").items()}
        for _ in range(3):
            time.sleep(1.0)
            c.kill_server()
            time.sleep(0.7)  # crashes and restarts go on meanwhile
            c.start_server()
        # The restarts go on being counted after the last server restart.
        shim_counts = {n: status(c, ids[n])["restarts"] for n in names}
        wait_for(lambda: all(c.tasks("loop")[n]["restarts"] >= shim_counts[n] for n in names),
                 60, what="restarts while the server was down reported")
        for _ in range(20):
            tasks = c.tasks("loop")
            procs = live_task_processes(c)
            shim_now = {n: status(c, ids[n])["restarts"] for n in names}
            # The same launches throughout: restarts in place, no relaunch.
            assert {n: t["id"] for n, t in tasks.items()} == ids, tasks
            # Never counted twice (a report applied again after a restart
            # of the server counts nothing): at most what the shims did.
            for n in names:
                assert tasks[n]["restarts"] <= shim_now[n], (n, tasks[n], shim_now[n])
            # No orphan: every process belongs to a launch the server
            # has, under that launch's one shim (the one it started with).
            assert {tid for tid, _, _ in procs} <= set(ids.values()), (procs, ids)
            shims = {tid: status(c, tid)["shim_pid"] for tid in ids.values()}
            assert all(pid_alive(p) for p in shims.values()), shims
            for tid, pid, cmd in procs:
                up = ancestors(pid)
                assert not up or shims[tid] in up or not pid_alive(pid), (tid, pid, cmd, up)
            # No duplicate: one task process per launch at most (the
            # shim's child; what it forks hangs below it).
            tops = [tid for tid, pid, _ in procs if ancestors(pid)[:1] == [shims[tid]]]
            assert len(tops) == len(set(tops)), procs
            time.sleep(0.2)
        c.cli("service", "remove", "loop", "--wait")
        wait_for(lambda: not live_task_processes(c), 30, what="every task process gone")
    finally:
        c.stop()
