"""Changing a running service (issue 5), through the real binary: rolling
configuration updates, scale-out, refusals, broken updates with rollback and
auto-revert, FINISH/ONCE reruns, scale-in through a drain task, cancelling a
scale-in, and kill -9 of the server in the middle of each of these.

Every test runs a real server and agent (holdfast_harness.Cluster) and drives
the CLI and the API. Tasks leave evidence in their volumes (one line per
launch) or, for drains, in files under the test's tmp dir that outlive the
instance's volumes; the server's event file (<server data>/events.jsonl)
gives the exact order of what the scheduler did.
"""
import json
import os
import random
import re
import time

import pytest

from holdfast_harness import Cluster, wait_for, write


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.stop()


# ---------------------------------------------------------------------------
# helpers


def update(c, svc, spec, *args, wait=False, timeout=120, check=True):
    argv = ["service", "update", svc, "-f", str(spec), *args]
    if wait:
        argv += ["--wait", "--timeout", str(timeout)]
    return c.cli(*argv, check=check, timeout=timeout + 30)


def vol_file(c, svc, inst, name="starts"):
    """Path of a file somewhere in an instance's volumes, or None."""
    for r, _, fs in os.walk(c.volume_dir(svc, inst)):
        if name in fs:
            return os.path.join(r, name)
    return None


def lines_of(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [l for l in f.read().splitlines() if l.strip()]


def vol_lines(c, svc, inst, name="starts"):
    return lines_of(vol_file(c, svc, inst, name))


def target_id(c, svc, cli=True):
    """The target config id, by the API and by the CLI (they must agree;
    cli=False while it may change)."""
    code, api_id = c.api("GET", f"/v1/service/{svc}/configurations/targetId")
    assert code == 200, api_id
    if not cli:
        return api_id
    cli_id = c.cli("-s", svc, "config", "target", "--id").stdout.strip()
    assert cli_id == api_id, (cli_id, api_id)
    return api_id


def config_ids(c, svc):
    code, ids = c.api("GET", f"/v1/service/{svc}/configurations")
    assert code == 200, ids
    return ids


def ids_of(c, svc):
    return {n: t["id"] for n, t in c.tasks(svc).items()}


def events(c, svc=None):
    out = []
    path = os.path.join(c.server_data, "events.jsonl")
    if not os.path.exists(path):
        return out
    for line in open(path).read().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if svc is None or e.get("service") == svc:
            out.append(e)
    return out


def plan_status(c, svc, plan="deploy"):
    return c.plan(svc, plan).get("status")


def step_statuses(c, svc, plan="deploy"):
    p = c.plan(svc, plan)
    return {s["name"]: (s["status"], s.get("message", "")) for ph in p.get("phases", [])
            for s in ph["steps"]}


def live_sleeps(c):
    out = []
    for p in Cluster.pids_matching(c.tmp):
        try:
            if open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sleep\0"):
                state = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    out.append(p)
        except OSError:
            pass
    return out


def diag(c):
    """Server and agent log tails, for assertion messages."""
    return ("\n--- server.log (tail) ---\n" + c.server_log()[-4000:]
            + "\n--- agent.log (tail) ---\n" + c.agent_log()[-2000:])


def restart_server(c):
    c.kill_server()
    c.start_server()


# ---------------------------------------------------------------------------
# rolling updates


def rolling_spec(tmp_path, version, a_count=3, b_count=2, fname=None):
    """Pod `a` runs `version`; a new version becomes ready only a second
    after it started, so a relaunch is visible for a while. Pod `b` never
    changes."""
    return write(tmp_path / (fname or f"roll-{version}-{a_count}.yml"), f"""
name: roll
pods:
  a:
    count: {a_count}
    tasks:
      server:
        goal: RUNNING
        cmd: rm -f up && echo "{version} $POD_NAME" >> data/starts && sleep 1 && touch up && sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: test -f up, interval: 0.3, timeout: 5}}
  b:
    count: {b_count}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "b $POD_NAME" >> data/starts && sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: test -s data/starts, interval: 0.3, timeout: 5}}
""")


def test_cmd_change_relaunches_only_that_pod_one_at_a_time(cluster, tmp_path):
    c = cluster
    c.deploy(rolling_spec(tmp_path, "v1"))
    before = ids_of(c, "roll")
    assert sorted(before) == ["a-0-server", "a-1-server", "a-2-server",
                              "b-0-server", "b-1-server"]
    assert target_id(c, "roll") == "1"

    new = rolling_spec(tmp_path, "v2")
    # The dry run says what the update will do, and does nothing.
    d = c.cli("service", "diff", "roll", "-f", new)
    assert "relaunch a-0" in d.stdout and "relaunch a-2" in d.stdout, d.stdout
    assert "relaunch b-" not in d.stdout, d.stdout
    assert "pod b: unchanged" in d.stdout, d.stdout
    assert target_id(c, "roll") == "1"

    out = update(c, "roll", new).stdout
    assert "config 1 -> 2" in out, out
    a_old = [before[f"a-{i}-server"] for i in range(3)]
    b_ids = {k: v for k, v in before.items() if k.startswith("b-")}
    seen_flux = set()
    history = []
    deadline = time.time() + 90
    done = False
    while time.time() < deadline:
        t = c.tasks("roll")
        labels = []
        for i in range(3):
            x = t[f"a-{i}-server"]
            if x["id"] == a_old[i]:
                labels.append("old" if x["status"] == "RUNNING" else "flux")
            elif x["status"] == "RUNNING" and x["ready"]:
                labels.append("new")
            else:
                labels.append("flux")
        history.append(labels)
        # Pod b is never touched.
        assert {k: v["id"] for k, v in t.items() if k.startswith("b-")} == b_ids, t
        # Never two instances of `a` relaunching at once, and in order:
        # every instance before the one in flux is new and ready, every
        # one after it still runs the old config.
        assert labels.count("flux") <= 1, history[-5:]
        assert re.fullmatch(r"(new )*(flux )?(old )*", " ".join(labels) + " "), history[-5:]
        for i, l in enumerate(labels):
            if l == "flux":
                seen_flux.add(i)
        if labels == ["new"] * 3 and plan_status(c, "roll") == "COMPLETE":
            done = True
            break
        time.sleep(0.03)
    assert done, f"update did not complete: {history[-3:]} {c.plan('roll')}" + diag(c)
    # Each relaunch was seen while it happened (the update really was serial).
    assert seen_flux == {0, 1, 2}, seen_flux

    # The scheduler's own record: a-i is stopped only after a-(i-1) is ready.
    ev = events(c, "roll")
    new_ids = ids_of(c, "roll")
    pos = {}
    for n, e in enumerate(ev):
        if e["kind"] != "task":
            continue
        if e["after"] == "stopping":
            pos.setdefault(("stop", e["object"]), n)
        if e["after"] == "RUNNING" and e["why"] == "ready":
            pos.setdefault(("ready", e["object"]), n)
    for i in range(1, 3):
        assert pos[("stop", a_old[i])] > pos[("ready", new_ids[f"a-{i-1}-server"])], ev
    assert not any(e["kind"] == "task" and e["object"] in b_ids.values()
                   and e["after"] in ("stopping", "KILLED") for e in ev)

    # Exactly one launch per version per instance; b launched once.
    for i in range(3):
        assert vol_lines(c, "roll", f"a-{i}") == [f"v1 a-{i}", f"v2 a-{i}"]
    for i in range(2):
        assert vol_lines(c, "roll", f"b-{i}") == [f"b b-{i}"]
    assert target_id(c, "roll") == "2"
    assert config_ids(c, "roll") == ["1", "2"]
    assert c.cli("-s", "roll", "config", "list").stdout.split() == ["1", "2"]
    assert "v2 $POD_NAME" in c.cli("-s", "roll", "config", "show", "2").stdout
    assert "v1 $POD_NAME" in c.cli("-s", "roll", "config", "show", "1").stdout
    assert len(live_sleeps(c)) == 5


def test_scale_out_keeps_running_instances(cluster, tmp_path):
    c = cluster
    c.deploy(rolling_spec(tmp_path, "v1", a_count=2, b_count=1))
    before = ids_of(c, "roll")
    bigger = rolling_spec(tmp_path, "v1", a_count=4, b_count=1)
    d = c.cli("service", "diff", "roll", "-f", bigger).stdout
    assert "add      a-2" in d and "add      a-3" in d, d
    assert "relaunch" not in d, d
    update(c, "roll", bigger, wait=True)
    after = ids_of(c, "roll")
    for name, tid in before.items():
        assert after[name] == tid, (name, before, after)
    assert sorted(after) == ["a-0-server", "a-1-server", "a-2-server", "a-3-server",
                             "b-0-server"]
    assert all(t["status"] == "RUNNING" and t["restarts"] == 0
               for t in c.tasks("roll").values()), c.tasks("roll")
    for i in range(4):
        assert vol_lines(c, "roll", f"a-{i}") == [f"v1 a-{i}"]
    assert vol_lines(c, "roll", "b-0") == ["b b-0"]
    assert not any(e["kind"] == "task" and e["after"] == "stopping"
                   for e in events(c, "roll"))
    assert target_id(c, "roll") == "2"


# ---------------------------------------------------------------------------
# refusals


def refusal_spec(tmp_path, fname, count=3, size=10, allow=False):
    return write(tmp_path / fname, f"""
name: refuse
pods:
  db:
    count: {count}
    allow-decommission: {"true" if allow else "false"}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$POD_NAME" >> store/starts && sleep 1000
        cpus: 0.1
        volumes:
          store: {{path: store, type: ROOT, size: {size}}}
""")


def test_refused_changes_leave_the_target_alone(cluster, tmp_path):
    c = cluster
    c.deploy(refusal_spec(tmp_path, "r1.yml"))
    ids = ids_of(c, "refuse")
    assert target_id(c, "refuse") == "1"

    # A volume size change: refused, naming the volume and both sizes.
    grown = refusal_spec(tmp_path, "r2.yml", size=20)
    p = update(c, "refuse", grown, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    text = p.stdout + p.stderr
    assert re.search(r"volume 'store'.*10 MB.*20 MB", text), text
    assert target_id(c, "refuse") == "1"
    assert config_ids(c, "refuse") == ["1"]
    # The API answers 409 with the same reasons.
    body = {"spec": open(grown).read(), "file": "r2.yml", "options": {}, "templates": {}}
    code, out = c.api("PUT", "/v1/services/refuse", body)
    assert code == 409, (code, out)
    assert re.search(r"volume 'store'.*10 MB.*20 MB", out["message"]), out
    assert any("store" in r and "10 MB" in r and "20 MB" in r for r in out["refusals"]), out
    code, tid = c.api("GET", "/v1/service/refuse/configurations/targetId")
    assert (code, tid) == (200, "1")
    # diff says the same and exits non-zero.
    p = c.cli("service", "diff", "refuse", "-f", grown, check=False)
    assert p.returncode == 1 and "refused" in p.stdout, (p.stdout, p.stderr)

    # A count decrease without allow-decommission: refused too.
    shrunk = refusal_spec(tmp_path, "r3.yml", count=1)
    p = update(c, "refuse", shrunk, check=False)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    text = p.stdout + p.stderr
    assert "count cannot decrease from 3 to 1" in text and "allow-decommission" in text, text
    assert target_id(c, "refuse") == "1"

    # Both at once: every reason is printed.
    both = refusal_spec(tmp_path, "r4.yml", count=1, size=20)
    p = update(c, "refuse", both, check=False)
    text = p.stdout + p.stderr
    assert p.returncode == 1
    assert "count cannot decrease" in text and re.search(r"10 MB.*20 MB", text), text
    assert target_id(c, "refuse") == "1"
    assert config_ids(c, "refuse") == ["1"]

    # Nothing was touched.
    time.sleep(1)
    assert ids_of(c, "refuse") == ids
    for i in range(3):
        assert vol_lines(c, "refuse", f"db-{i}") == [f"db-{i}"]
    assert plan_status(c, "refuse") == "COMPLETE"


# ---------------------------------------------------------------------------
# broken updates: rollback and auto-revert


def broken_spec(tmp_path, version, auto_revert=False, count=3):
    """`old` writes its mode file and becomes ready; `broken` exits 1 and
    its mode file can never pass the (unchanged) readiness check."""
    if version == "old":
        cmd = 'echo "old $POD_NAME" >> data/starts && echo old > mode && sleep 1000'
    else:
        cmd = 'echo "broken $POD_NAME" >> data/starts; echo broken > mode; exit 1'
    return write(tmp_path / f"brk-{version}-{auto_revert}.yml", f"""
name: brk
pods:
  a:
    count: {count}
    tasks:
      server:
        goal: RUNNING
        cmd: {cmd}
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: grep -qx old mode, interval: 0.3, timeout: 5}}
plans:
  deploy:
    healthy-deadline: 4
    auto-revert: {"true" if auto_revert else "false"}
    phases:
      a-phase:
        pod: a
""")


def assert_stopped_after_first(c, ids):
    steps = step_statuses(c, "brk")
    assert steps["a-0:[server]"][0] == "ERROR", steps
    assert "healthy-deadline" in steps["a-0:[server]"][1], steps
    assert steps["a-1:[server]"][0] == "PENDING", steps
    assert steps["a-2:[server]"][0] == "PENDING", steps
    t = c.tasks("brk")
    for i in (1, 2):
        assert t[f"a-{i}-server"]["id"] == ids[f"a-{i}-server"], t
        assert t[f"a-{i}-server"]["status"] == "RUNNING", t
        assert vol_lines(c, "brk", f"a-{i}") == [f"old a-{i}"]
    assert t["a-0-server"]["id"] != ids["a-0-server"]
    assert "broken a-0" in vol_lines(c, "brk", "a-0")


def test_broken_update_stops_and_rollback_restores(cluster, tmp_path):
    c = cluster
    c.deploy(broken_spec(tmp_path, "old"))
    ids = ids_of(c, "brk")
    p = update(c, "brk", broken_spec(tmp_path, "broken"), wait=True, timeout=90, check=False)
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "ERROR" in p.stdout, p.stdout
    assert plan_status(c, "brk") == "ERROR"
    assert target_id(c, "brk") == "2"
    assert_stopped_after_first(c, ids)
    # The update stays stopped: no further instance is touched.
    time.sleep(3)
    assert plan_status(c, "brk") == "ERROR"
    assert_stopped_after_first(c, ids)

    p = c.cli("service", "rollback", "brk", "--wait", "--timeout", "90", check=False)
    assert p.returncode == 0, (p.stdout, p.stderr, c.plan("brk")) + (diag(c),)
    assert "config 2 -> 1" in p.stdout, p.stdout
    assert plan_status(c, "brk") == "COMPLETE"
    assert target_id(c, "brk") == "1"
    t = c.tasks("brk")
    assert all(x["status"] == "RUNNING" and x["ready"] for x in t.values()), t
    # a-0 runs the old command again; the others were never relaunched.
    starts = vol_lines(c, "brk", "a-0")
    assert starts[0] == "old a-0" and starts[-1] == "old a-0", starts
    assert starts.count("old a-0") == 2, starts
    assert set(starts[1:-1]) == {"broken a-0"}, starts
    for i in (1, 2):
        assert t[f"a-{i}-server"]["id"] == ids[f"a-{i}-server"]
        assert vol_lines(c, "brk", f"a-{i}") == [f"old a-{i}"]
    assert len(live_sleeps(c)) == 3


def test_auto_revert_rolls_back_unattended(cluster, tmp_path):
    c = cluster
    c.deploy(broken_spec(tmp_path, "old", auto_revert=True))
    ids = ids_of(c, "brk")
    update(c, "brk", broken_spec(tmp_path, "broken", auto_revert=True))
    wait_for(lambda: vol_lines(c, "brk", "a-0")[-1:] == ["broken a-0"], 60,
             what="the broken version launched")
    wait_for(lambda: target_id(c, "brk", cli=False) == "1", 90, what="auto-revert to config 1")
    wait_for(lambda: plan_status(c, "brk") == "COMPLETE"
             and all(x["status"] == "RUNNING" and x["ready"] for x in c.tasks("brk").values()),
             90, what="deploy COMPLETE after the revert")
    starts = vol_lines(c, "brk", "a-0")
    assert starts[0] == "old a-0" and starts[-1] == "old a-0", starts
    assert starts.count("old a-0") == 2, starts
    t = c.tasks("brk")
    for i in (1, 2):
        assert t[f"a-{i}-server"]["id"] == ids[f"a-{i}-server"], t
        assert vol_lines(c, "brk", f"a-{i}") == [f"old a-{i}"]
    assert any("auto-revert" in (e.get("why") or "") for e in events(c, "brk"))
    # It settles: no ping-pong back to the broken config.
    time.sleep(3)
    assert target_id(c, "brk") == "1"
    assert plan_status(c, "brk") == "COMPLETE"
    assert vol_lines(c, "brk", "a-0") == starts


def gated_spec(tmp_path, version):
    """v2 becomes ready only once the test creates the gate file, so the
    update can be held at its first instance."""
    gate = tmp_path / "gate"
    ready = "test -s data/starts" if version == "v1" else f"test -f {gate}"
    return write(tmp_path / f"gated-{version}.yml", f"""
name: gated
pods:
  a:
    count: 3
    tasks:
      server:
        goal: RUNNING
        cmd: echo "{version} $POD_NAME" >> data/starts && exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: {ready}, interval: 0.3, timeout: 5}}
""")


def test_crash_during_update_recovers_with_its_config(cluster, tmp_path):
    c = cluster
    c.deploy(gated_spec(tmp_path, "v1"))
    ids = ids_of(c, "gated")
    update(c, "gated", gated_spec(tmp_path, "v2"))
    wait_for(lambda: vol_lines(c, "gated", "a-0") == ["v1 a-0", "v2 a-0"], 30,
             what="the update working on a-0")
    time.sleep(1)
    assert step_statuses(c, "gated")["a-2:[server]"][0] == "PENDING"
    # a-2, not reached by the update yet, crashes: recovery relaunches it
    # with the config it was running (v1).
    before = c.tasks("gated")["a-2-server"]
    os.kill(c.task_pid(ids["a-2-server"]), 9)
    wait_for(lambda: c.restarted("gated", "a-2-server", before)
             and c.tasks("gated")["a-2-server"]["status"] == "RUNNING", 30,
             what="a-2 recovered during the update (it stays down)")
    # RUNNING is reported when the shim has started the shell, which may
    # not have written its line yet.
    wait_for(lambda: len(vol_lines(c, "gated", "a-2")) >= 2, 10,
             what="a-2's second start line")
    assert vol_lines(c, "gated", "a-2") == ["v1 a-2", "v1 a-2"]
    # Then the update takes it over.
    (tmp_path / "gate").write_text("open")
    c.wait_plan("gated", timeout=90)
    for i in range(3):
        assert vol_lines(c, "gated", f"a-{i}")[-1] == f"v2 a-{i}"
    assert vol_lines(c, "gated", "a-2") == ["v1 a-2", "v1 a-2", "v2 a-2"]


def test_crash_while_an_update_is_stopped_in_error_is_recovered(cluster, tmp_path):
    c = cluster
    c.deploy(broken_spec(tmp_path, "old"))
    ids = ids_of(c, "brk")
    update(c, "brk", broken_spec(tmp_path, "broken"), wait=True, timeout=90, check=False)
    assert plan_status(c, "brk") == "ERROR"
    # a-1 still runs the old config; it crashes: recovery relaunches it
    # with that config while the update stays stopped.
    before = c.tasks("brk")["a-1-server"]
    os.kill(c.task_pid(ids["a-1-server"]), 9)
    wait_for(lambda: c.restarted("brk", "a-1-server", before)
             and c.tasks("brk")["a-1-server"]["status"] == "RUNNING", 30,
             what="a-1 recovered (it stays down)")
    wait_for(lambda: len(vol_lines(c, "brk", "a-1")) >= 2, 10,
             what="a-1's second start line")
    assert vol_lines(c, "brk", "a-1") == ["old a-1", "old a-1"]
    assert plan_status(c, "brk") == "ERROR"
    assert c.tasks("brk")["a-2-server"]["id"] == ids["a-2-server"]


def test_rollback_to_a_config_id(cluster, tmp_path):
    c = cluster
    c.deploy(rolling_spec(tmp_path, "v1", a_count=2, b_count=1))
    update(c, "roll", rolling_spec(tmp_path, "v2", a_count=2, b_count=1), wait=True)
    update(c, "roll", rolling_spec(tmp_path, "v3", a_count=2, b_count=1), wait=True)
    assert target_id(c, "roll") == "3"
    # Rolling back to the target itself, or to a config that does not exist, is refused.
    p = c.cli("service", "rollback", "roll", "--to", "3", check=False)
    assert p.returncode != 0 and "already the target" in p.stderr, (p.stdout, p.stderr)
    p = c.cli("service", "rollback", "roll", "--to", "99", check=False)
    assert p.returncode != 0 and "99" in p.stderr, (p.stdout, p.stderr)
    assert target_id(c, "roll") == "3"
    b_id = c.tasks("roll")["b-0-server"]["id"]
    p = c.cli("service", "rollback", "roll", "--to", "1", "--wait", "--timeout", "90")
    assert "config 3 -> 1" in p.stdout, p.stdout
    assert target_id(c, "roll") == "1"
    for i in range(2):
        assert vol_lines(c, "roll", f"a-{i}") == [f"v1 a-{i}", f"v2 a-{i}", f"v3 a-{i}",
                                                  f"v1 a-{i}"]
    assert c.tasks("roll")["b-0-server"]["id"] == b_id
    # Plain rollback goes back to the target before the last change (3).
    c.cli("service", "rollback", "roll", "--wait", "--timeout", "90")
    assert target_id(c, "roll") == "3"
    for i in range(2):
        assert vol_lines(c, "roll", f"a-{i}")[-1] == f"v3 a-{i}"
    assert len(live_sleeps(c)) == 3


def update_plan_spec(tmp_path, version):
    return write(tmp_path / f"up-{version}.yml", f"""
name: upl
pods:
  a:
    count: 3
    tasks:
      server:
        goal: RUNNING
        cmd: rm -f up && echo "{version} $POD_NAME" >> data/starts && sleep 1 && touch up && sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: test -f up, interval: 0.3, timeout: 5}}
plans:
  deploy:
    strategy: serial
    phases:
      a-deploy:
        strategy: serial
        pod: a
  update:
    strategy: serial
    phases:
      a-update:
        strategy: parallel
        pod: a
""")


def test_update_runs_the_update_plan_with_its_strategy(cluster, tmp_path):
    c = cluster
    c.deploy(update_plan_spec(tmp_path, "v1"))
    old = ids_of(c, "upl")
    deploy_before = c.plan("upl", "deploy")
    p = update(c, "upl", update_plan_spec(tmp_path, "v2"), wait=True)
    assert "update COMPLETE" in p.stdout, p.stdout
    plan = c.plan("upl", "update")
    assert plan["status"] == "COMPLETE"
    assert [ph["name"] for ph in plan["phases"]] == ["a-update"]
    for i in range(3):
        assert vol_lines(c, "upl", f"a-{i}") == [f"v1 a-{i}", f"v2 a-{i}"]
    # The update plan's phase is parallel: every old task was stopped before
    # any new one was ready.
    ev = events(c, "upl")
    stops = [n for n, e in enumerate(ev) if e["kind"] == "task" and e["after"] == "stopping"
             and e["object"] in old.values()]
    new_ids = set(ids_of(c, "upl").values())
    readies = [n for n, e in enumerate(ev) if e["kind"] == "task" and e["why"] == "ready"
               and e["object"] in new_ids]
    assert len(stops) == 3 and len(readies) == 3, ev
    assert max(stops) < min(readies), ev
    # The deploy plan did not run again.
    assert not any(e["kind"] == "plan" and e["object"] == "deploy" and e["after"] == "started"
                   for e in ev[[n for n, e in enumerate(ev) if e["why"] == "update"][0]:]), ev
    assert c.plan("upl", "deploy")["status"] == deploy_before["status"] == "COMPLETE"


# ---------------------------------------------------------------------------
# FINISH and ONCE goals


def goals_spec(tmp_path, version):
    return write(tmp_path / f"goals-{version}.yml", f"""
name: goals
pods:
  p:
    count: 2
    resource-sets:
      rs: {{cpus: 0.1, volume: {{path: data, type: ROOT, size: 10}}}}
    tasks:
      init:
        goal: ONCE
        cmd: echo once >> data/log
        resource-set: rs
      fmt:
        goal: FINISH
        cmd: echo finish >> data/log
        resource-set: rs
      server:
        goal: RUNNING
        cmd: echo "server $V" >> data/log && sleep 1000
        env: {{V: "{version}"}}
        resource-set: rs
  q:
    count: 1
    resource-sets:
      rs: {{cpus: 0.1, volume: {{path: data, type: ROOT, size: 10}}}}
    tasks:
      fmt:
        goal: FINISH
        cmd: echo finish >> data/log
        resource-set: rs
      server:
        goal: RUNNING
        cmd: echo server >> data/log && sleep 1000
        resource-set: rs
plans:
  deploy:
    phases:
      p-phase:
        pod: p
        steps:
          - default: [[init], [fmt], [server]]
      q-phase:
        pod: q
        steps:
          - default: [[fmt], [server]]
""")


def test_finish_reruns_on_change_once_never(cluster, tmp_path):
    c = cluster
    c.deploy(goals_spec(tmp_path, "1"))
    for i in range(2):
        wait_for(lambda: vol_lines(c, "goals", f"p-{i}", "log") == ["once", "finish", "server 1"],
                 30, what=f"p-{i} first deployment")
    assert vol_lines(c, "goals", "q-0", "log") == ["finish", "server"]
    q_id = c.tasks("goals")["q-0-server"]["id"]
    update(c, "goals", goals_spec(tmp_path, "2"), wait=True)
    for i in range(2):
        wait_for(lambda: vol_lines(c, "goals", f"p-{i}", "log")[-1:] == ["server 2"], 30)
        assert vol_lines(c, "goals", f"p-{i}", "log") == [
            "once", "finish", "server 1", "finish", "server 2"], i
    # q did not change: its FINISH task did not rerun, its server kept running.
    assert vol_lines(c, "goals", "q-0", "log") == ["finish", "server"]
    assert c.tasks("goals")["q-0-server"]["id"] == q_id
    # A third config: FINISH reruns once more, ONCE still never.
    update(c, "goals", goals_spec(tmp_path, "3"), wait=True)
    for i in range(2):
        wait_for(lambda: vol_lines(c, "goals", f"p-{i}", "log")[-1:] == ["server 3"], 30)
        assert vol_lines(c, "goals", f"p-{i}", "log") == [
            "once", "finish", "server 1", "finish", "server 2", "finish", "server 3"], i
    assert vol_lines(c, "goals", "q-0", "log") == ["finish", "server"]


# ---------------------------------------------------------------------------
# scale-in through a drain task


def decom_spec(tmp_path, count, drain, retain=False, fname=None):
    """A pod-level volume shared by the server and the drain task; the drain
    leaves its evidence in $MARKERS/<instance> (outside the volumes)."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    return write(tmp_path / (fname or f"decom-{count}.yml"), f"""
name: decom
pods:
  a:
    count: {count}
    allow-decommission: true
    {"volume-retention: retain" if retain else ""}
    volume: {{path: data, type: ROOT, size: 10}}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$POD_NAME" >> data/starts && echo $$ > data/pid && exec sleep 1000
        cpus: 0.1
        memory: 32
        readiness-check: {{cmd: test -s data/pid, interval: 0.3, timeout: 5}}
      decommission:
        goal: FINISH
        cmd: {drain}
        cpus: 0.1
        memory: 32
        env: {{MARKERS: "{markers}"}}
""")


# Records whether the instance's server still ran during the drain.
GOOD_DRAIN = ('if kill -0 $(cat data/pid); then s=alive; else s=dead; fi; '
              'echo "drained $s" >> $MARKERS/$POD_NAME && echo drained > data/drained')


def marker(tmp_path, inst):
    return lines_of(str(tmp_path / "markers" / inst))


def pods_of(c, svc):
    return sorted(p["name"] for p in c.pods(svc))


def test_decommission_drains_then_deletes_volumes(cluster, tmp_path):
    c = cluster
    drain = "sleep 1; " + GOOD_DRAIN
    c.deploy(decom_spec(tmp_path, 3, drain))
    a0 = c.tasks("decom")["a-0-server"]["id"]
    for i in range(3):
        assert os.path.isdir(c.volume_dir("decom", f"a-{i}"))
    d = c.cli("service", "diff", "decom", "-f", decom_spec(tmp_path, 1, drain)).stdout
    assert "remove   a-1" in d and "remove   a-2" in d and "relaunch" not in d, d
    update(c, "decom", decom_spec(tmp_path, 1, drain))
    # The decommission plan lists the highest index first; a-2 drains first.
    shown = c.cli("-s", "decom", "plan", "show", "decommission", check=False).stdout
    assert "a-1:[decommission]" in shown and "a-2:[decommission]" in shown, shown
    assert shown.index("a-2:[decommission]") < shown.index("a-1:[decommission]"), shown
    steps = step_statuses(c, "decom", "decommission")
    assert list(steps) == ["a-2:[decommission]", "a-1:[decommission]"], steps
    assert steps["a-1:[decommission]"][0] == "PENDING", steps
    wait_for(lambda: pods_of(c, "decom") == ["a-0"], 90,
             what="a-1 and a-2 removed")
    wait_for(lambda: not os.path.exists(c.volume_dir("decom", "a-1"))
             and not os.path.exists(c.volume_dir("decom", "a-2")), 60,
             what="volumes of a-1 and a-2 deleted")
    # Each drain ran once, while its server still ran.
    assert marker(tmp_path, "a-2") == ["drained alive"], diag(c)
    assert marker(tmp_path, "a-1") == ["drained alive"], diag(c)
    assert marker(tmp_path, "a-0") == []
    # Highest index first: a-2 was removed before a-1 was drained.
    ev = [e for e in events(c, "decom") if e["kind"] == "pod"]
    order = [(e["object"], e["after"]) for e in ev
             if e["after"] in ("decommissioning", "removed")]
    assert order == [("a-2", "decommissioning"), ("a-2", "removed"),
                     ("a-1", "decommissioning"), ("a-1", "removed")], order
    assert any(e["object"] == "a-2" and e["after"] == "removed" and e["why"] == "volumes deleted"
               for e in ev), ev
    # a-0 untouched; its volume is there.
    assert c.tasks("decom")["a-0-server"]["id"] == a0
    assert vol_lines(c, "decom", "a-0") == ["a-0"]
    assert plan_status(c, "decom", "decommission") == "COMPLETE"
    assert plan_status(c, "decom") == "COMPLETE"
    assert len(live_sleeps(c)) == 1


def test_failing_drain_keeps_volume_until_force_complete(cluster, tmp_path):
    c = cluster
    drain = 'echo attempt >> $MARKERS/$POD_NAME; exit 1'
    c.deploy(decom_spec(tmp_path, 2, drain))
    a1 = c.tasks("decom")["a-1-server"]["id"]
    update(c, "decom", decom_spec(tmp_path, 1, drain))
    wait_for(lambda: step_statuses(c, "decom", "decommission")
             .get("a-1:[decommission]", ("",))[0] == "ERROR", 90,
             what="the failed drain in ERROR")
    assert marker(tmp_path, "a-1"), "the drain never ran" + diag(c)
    st = step_statuses(c, "decom", "decommission")["a-1:[decommission]"]
    assert "drain failed" in st[1] and "volumes are kept" in st[1], st
    assert plan_status(c, "decom", "decommission") == "ERROR"
    # The instance is still there, its server still running, its volume kept.
    t = c.tasks("decom")
    assert t["a-1-server"]["id"] == a1 and t["a-1-server"]["status"] == "RUNNING", t
    assert vol_lines(c, "decom", "a-1") == ["a-1"]
    attempts = len(marker(tmp_path, "a-1"))
    time.sleep(2)
    assert len(marker(tmp_path, "a-1")) == attempts, "the drain keeps being retried"

    p = c.cli("-s", "decom", "plan", "force-complete", "decommission", "decommission",
              "a-1:[decommission]", check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    wait_for(lambda: pods_of(c, "decom") == ["a-0"], 60, what="a-1 removed")
    time.sleep(2)
    # Removed, but its volume is kept.
    assert vol_lines(c, "decom", "a-1") == ["a-1"], "volume of a-1 was deleted"
    assert any(e["object"] == "a-1" and e["after"] == "removed" and e["why"] == "volumes kept"
               for e in events(c, "decom")), events(c, "decom")
    assert len(live_sleeps(c)) == 1
    assert plan_status(c, "decom", "decommission") == "COMPLETE"


def test_volume_retention_retain_keeps_volumes(cluster, tmp_path):
    c = cluster
    c.deploy(decom_spec(tmp_path, 2, GOOD_DRAIN, retain=True))
    update(c, "decom", decom_spec(tmp_path, 1, GOOD_DRAIN, retain=True))
    wait_for(lambda: pods_of(c, "decom") == ["a-0"], 90, what="a-1 removed")
    assert marker(tmp_path, "a-1") == ["drained alive"]
    time.sleep(2)
    assert vol_lines(c, "decom", "a-1") == ["a-1"], "retained volume was deleted"
    assert vol_lines(c, "decom", "a-1", "drained") == ["drained"]
    assert len(live_sleeps(c)) == 1


SLOW_DRAIN = 'sleep 5; echo drained >> $MARKERS/$POD_NAME'


def test_scaling_up_cancels_a_decommission(cluster, tmp_path):
    c = cluster
    c.deploy(decom_spec(tmp_path, 3, SLOW_DRAIN, fname="d3.yml"))
    ids = ids_of(c, "decom")
    update(c, "decom", decom_spec(tmp_path, 1, SLOW_DRAIN, fname="d1.yml"))
    wait_for(lambda: c.tasks("decom").get("a-2-decommission", {}).get("status") == "RUNNING",
             30, what="a-2 draining")
    update(c, "decom", decom_spec(tmp_path, 3, SLOW_DRAIN, fname="d3b.yml"))
    # Wait past the drain's own duration: nothing is removed.
    time.sleep(7)
    assert pods_of(c, "decom") == ["a-0", "a-1", "a-2"], diag(c)
    t = c.tasks("decom")
    for i in range(3):
        assert t[f"a-{i}-server"]["id"] == ids[f"a-{i}-server"], t
        assert t[f"a-{i}-server"]["status"] == "RUNNING", t
        assert vol_lines(c, "decom", f"a-{i}") == [f"a-{i}"]
    # a-1 was never drained.
    assert marker(tmp_path, "a-1") == []
    dec = c.plan("decom", "decommission")
    assert dec["status"] == "COMPLETE" and not any(ph["steps"] for ph in dec["phases"]), dec
    assert plan_status(c, "decom") == "COMPLETE"
    assert len(live_sleeps(c)) == 3
    assert any(e["kind"] == "pod" and e["object"] == "a-2" and e["after"] == "kept"
               for e in events(c, "decom"))
    assert not any(e["kind"] == "pod" and e["object"] == "a-1" and e["after"] == "decommissioning"
                   for e in events(c, "decom"))


def test_cancelling_a_decommission_stops_its_drain(cluster, tmp_path):
    """The drain of an instance that is kept after all must not run to its
    end: for Redis it would take a replica that stays out of the cluster."""
    c = cluster
    c.deploy(decom_spec(tmp_path, 2, SLOW_DRAIN, fname="c2.yml"))
    update(c, "decom", decom_spec(tmp_path, 1, SLOW_DRAIN, fname="c1.yml"))
    wait_for(lambda: c.tasks("decom").get("a-1-decommission", {}).get("status") == "RUNNING",
             30, what="a-1 draining")
    update(c, "decom", decom_spec(tmp_path, 2, SLOW_DRAIN, fname="c2b.yml"))
    time.sleep(7)
    assert pods_of(c, "decom") == ["a-0", "a-1"]
    st = c.tasks("decom")["a-1-decommission"]["status"]
    assert marker(tmp_path, "a-1") == [] and st != "FINISHED", (
        f"the drain of a-1 ran to its end after its decommission was cancelled "
        f"(drain task {st}, marker {marker(tmp_path, 'a-1')})" + diag(c))


def test_scale_in_after_a_cancelled_decommission_drains_again(cluster, tmp_path):
    c = cluster
    c.deploy(decom_spec(tmp_path, 3, SLOW_DRAIN, fname="d3.yml"))
    update(c, "decom", decom_spec(tmp_path, 2, SLOW_DRAIN, fname="d2.yml"))
    wait_for(lambda: c.tasks("decom").get("a-2-decommission", {}).get("status") == "RUNNING",
             30, what="a-2 draining")
    update(c, "decom", decom_spec(tmp_path, 3, SLOW_DRAIN, fname="d3b.yml"))
    time.sleep(7)  # whatever the cancelled drain does, it is over
    assert pods_of(c, "decom") == ["a-0", "a-1", "a-2"]
    drained_before = len(marker(tmp_path, "a-2"))
    # A new scale-in of the same instance: its drain runs again (a drain
    # from a cancelled decommission does not count) before it is removed.
    update(c, "decom", decom_spec(tmp_path, 2, SLOW_DRAIN, fname="d2b.yml"))
    wait_for(lambda: pods_of(c, "decom") == ["a-0", "a-1"], 60, what="a-2 removed")
    assert len(marker(tmp_path, "a-2")) == drained_before + 1, (
        f"a-2 was removed without running its drain again "
        f"(marker lines before: {drained_before}, now: {marker(tmp_path, 'a-2')})" + diag(c))


def test_scaling_up_mid_decommission_keeps_the_rest(cluster, tmp_path):
    """3 -> 1 with a slow drain: once a-2 is gone and a-1 drains, back to 3.
    a-1 stays as it was; a-2, already removed, comes back as a new instance
    with a fresh volume."""
    c = cluster
    c.deploy(decom_spec(tmp_path, 3, SLOW_DRAIN, fname="m3.yml"))
    ids = ids_of(c, "decom")
    update(c, "decom", decom_spec(tmp_path, 1, SLOW_DRAIN, fname="m1.yml"))
    wait_for(lambda: "a-2" not in pods_of(c, "decom")
             and c.tasks("decom").get("a-1-decommission", {}).get("status") == "RUNNING",
             60, what="a-2 removed and a-1 draining")
    wait_for(lambda: not os.path.exists(c.volume_dir("decom", "a-2")), 30,
             what="a-2's volume deleted")
    update(c, "decom", decom_spec(tmp_path, 3, SLOW_DRAIN, fname="m3b.yml"))
    c.wait_plan("decom", timeout=60)
    time.sleep(7)
    assert pods_of(c, "decom") == ["a-0", "a-1", "a-2"], diag(c)
    t = c.tasks("decom")
    assert t["a-0-server"]["id"] == ids["a-0-server"]
    assert t["a-1-server"]["id"] == ids["a-1-server"], t
    assert t["a-2-server"]["id"] != ids["a-2-server"]
    assert all(t[f"a-{i}-server"]["status"] == "RUNNING" for i in range(3)), t
    assert vol_lines(c, "decom", "a-1") == ["a-1"]
    assert vol_lines(c, "decom", "a-2") == ["a-2"]  # fresh volume, one launch
    assert marker(tmp_path, "a-2") == ["drained"]
    assert len(live_sleeps(c)) == 3


def test_removing_a_pod_type_drains_it(cluster, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    text = f"""
name: twopods
pods:
  a:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$POD_NAME" >> data/starts && exec sleep 1000
        cpus: 0.1
        volume: {{path: data, type: ROOT, size: 10}}
  b:
    count: 2
    allow-decommission: true
    volume: {{path: data, type: ROOT, size: 10}}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$POD_NAME" >> data/starts && exec sleep 1000
        cpus: 0.1
      decommission:
        goal: FINISH
        cmd: echo drained >> {markers}/$POD_NAME
        cpus: 0.1
"""
    c = cluster
    c.deploy(write(tmp_path / "two.yml", text))
    a0 = c.tasks("twopods")["a-0-server"]["id"]
    only_a = text.split("  b:\n")[0]
    update(c, "twopods", write(tmp_path / "one.yml", only_a))
    wait_for(lambda: pods_of(c, "twopods") == ["a-0"], 60, what="pod type b removed")
    wait_for(lambda: not os.path.exists(c.volume_dir("twopods", "b-0"))
             and not os.path.exists(c.volume_dir("twopods", "b-1")), 30,
             what="b volumes deleted")
    assert lines_of(str(markers / "b-0")) == ["drained"]
    assert lines_of(str(markers / "b-1")) == ["drained"]
    assert c.tasks("twopods")["a-0-server"]["id"] == a0
    assert len(live_sleeps(c)) == 1


# ---------------------------------------------------------------------------
# kill -9 of the server in the middle of each


def test_server_kill9_during_update(cluster, tmp_path):
    c = cluster
    c.deploy(rolling_spec(tmp_path, "v1", b_count=1))
    b_id = c.tasks("roll")["b-0-server"]["id"]
    update(c, "roll", rolling_spec(tmp_path, "v2", b_count=1))
    restart_server(c)  # right after the change was accepted
    rng = random.Random(5)
    for _ in range(4):
        time.sleep(rng.uniform(0.2, 1.2))
        restart_server(c)
    c.wait_plan("roll", timeout=120)
    wait_for(lambda: all(x["status"] == "RUNNING" and x["ready"]
                         for x in c.tasks("roll").values()), 30)
    assert target_id(c, "roll") == "2"
    for i in range(3):
        assert vol_lines(c, "roll", f"a-{i}") == [f"v1 a-{i}", f"v2 a-{i}"], (i, diag(c))
    assert c.tasks("roll")["b-0-server"]["id"] == b_id
    assert vol_lines(c, "roll", "b-0") == ["b b-0"]
    assert len(live_sleeps(c)) == 4, live_sleeps(c)


def test_server_kill9_during_rollback(cluster, tmp_path):
    c = cluster
    c.deploy(broken_spec(tmp_path, "old"))
    ids = ids_of(c, "brk")
    update(c, "brk", broken_spec(tmp_path, "broken"), wait=True, timeout=90, check=False)
    assert plan_status(c, "brk") == "ERROR"
    c.cli("service", "rollback", "brk")
    restart_server(c)  # right after the rollback was accepted
    time.sleep(0.3)
    restart_server(c)
    c.wait_plan("brk", timeout=120)
    assert target_id(c, "brk") == "1"
    wait_for(lambda: all(x["status"] == "RUNNING" and x["ready"]
                         for x in c.tasks("brk").values()), 30)
    starts = vol_lines(c, "brk", "a-0")
    # Exactly one launch of the old command after the broken ones.
    assert starts[0] == "old a-0" and starts[-1] == "old a-0", starts
    assert starts.count("old a-0") == 2, starts
    t = c.tasks("brk")
    for i in (1, 2):
        assert t[f"a-{i}-server"]["id"] == ids[f"a-{i}-server"]
        assert vol_lines(c, "brk", f"a-{i}") == [f"old a-{i}"]
    time.sleep(1)
    assert len(live_sleeps(c)) == 3, live_sleeps(c)
    assert vol_lines(c, "brk", "a-0") == starts


def test_server_kill9_during_decommission(cluster, tmp_path):
    c = cluster
    drain = ('sleep 2; if kill -0 $(cat data/pid); then s=alive; else s=dead; fi; '
             'echo "drained $s" >> $MARKERS/$POD_NAME')
    c.deploy(decom_spec(tmp_path, 3, drain))
    a0 = c.tasks("decom")["a-0-server"]["id"]
    update(c, "decom", decom_spec(tmp_path, 1, drain))
    restart_server(c)  # right after the change was accepted
    # And again while a drain runs.
    wait_for(lambda: c.tasks("decom").get("a-2-decommission", {}).get("status") == "RUNNING"
             or "a-2" not in pods_of(c, "decom"), 30, what="a-2 draining")
    restart_server(c)
    wait_for(lambda: c.tasks("decom").get("a-1-decommission", {}).get("status") == "RUNNING"
             or "a-1" not in pods_of(c, "decom"), 60, what="a-1 draining")
    restart_server(c)
    wait_for(lambda: pods_of(c, "decom") == ["a-0"], 90, what="a-1 and a-2 removed")
    wait_for(lambda: not os.path.exists(c.volume_dir("decom", "a-1"))
             and not os.path.exists(c.volume_dir("decom", "a-2")), 60,
             what="volumes deleted")
    # Each drain ran exactly once, before its server was stopped.
    assert marker(tmp_path, "a-2") == ["drained alive"], diag(c)
    assert marker(tmp_path, "a-1") == ["drained alive"], diag(c)
    assert c.tasks("decom")["a-0-server"]["id"] == a0
    assert vol_lines(c, "decom", "a-0") == ["a-0"]
    assert len(live_sleeps(c)) == 1
