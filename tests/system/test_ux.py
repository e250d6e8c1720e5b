"""Plans that never livelock and tools that tell the truth (issue 10), through
the real binary: plan shapes where two steps share a pod instance, the SDK's
plan verbs, backoff after a fixing update, what --wait and pod status say
while a step waits, endpoints, volumes kept by a remove, a private CA, and
the CLI's messages.

One server + agent is shared by the module; each test deploys its own
service and removes it again.
"""
import json
import os
import re
import subprocess
import time

import pytest

from holdfast_harness import BIN, REPO, Cluster, wait_for, write


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("ux"), backoff="0.5")
    c.start()
    try:
        yield c
    finally:
        c.stop()


def events(c, svc):
    """The service's events, oldest first, as dicts."""
    out = c.cli("-s", svc, "events", "--json").stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def remove(c, svc):
    c.cli("service", "remove", svc, "--delete-volumes", "--wait", "--timeout", "60")


def launches_of(c, svc, task):
    """How often a task (e.g. db-0-prep) was launched, from the events."""
    return sum(1 for e in events(c, svc)
               if e["kind"] == "task" and e["after"] == "STAGING"
               and e["object"].startswith(task + "__"))


def stops_for_resource_set(c, svc):
    return [e for e in events(c, svc)
            if e["after"] == "stopping" and "resource set" in (e.get("why") or "")]


# ---------------------------------------------------------------------------
# Plans that never livelock

SHARED_RS_POD = """
  db:
    count: {count}
    resource-sets:
      rs: {{cpus: 0.05, memory: 16, volume: {{path: data, type: ROOT, size: 5}}}}
    tasks:
      prep:
        goal: ONCE
        resource-set: rs
        cmd: echo prepped >> data/prep
      run:
        goal: RUNNING
        resource-set: rs
        cmd: test -s data/prep && exec sleep 1000
"""


def test_steps_of_one_instance_sharing_a_resource_set_take_turns(cluster, tmp_path):
    # A parallel phase whose instances each have [prep] then [run] on one
    # resource set: prep runs once and completes, then run starts, while the
    # other instance does the same (the SDK's one step per pod instance).
    spec = write(tmp_path / "ll1.yml", "name: ll1\npods:" + SHARED_RS_POD.format(count=2) + """
plans:
  deploy:
    strategy: serial
    phases:
      main:
        strategy: parallel
        pod: db
        steps:
          - default: [[prep], [run]]
""")
    cluster.deploy(spec, wait=False)
    plan = cluster.wait_plan("ll1", timeout=60)
    assert [s["status"] for s in plan["phases"][0]["steps"]] == ["COMPLETE"] * 4
    for i in range(2):
        assert launches_of(cluster, "ll1", f"db-{i}-prep") == 1
        assert launches_of(cluster, "ll1", f"db-{i}-run") == 1
    assert stops_for_resource_set(cluster, "ll1") == []
    tasks = cluster.tasks("ll1")
    assert tasks["db-0-run"]["status"] == "RUNNING" and tasks["db-1-run"]["status"] == "RUNNING"
    remove(cluster, "ll1")


def test_parallel_phases_on_one_instance_take_turns(cluster, tmp_path):
    # A parallel plan whose two phases work on the same instance.
    spec = write(tmp_path / "ll2.yml", "name: ll2\npods:" + SHARED_RS_POD.format(count=1) + """
plans:
  deploy:
    strategy: parallel
    phases:
      prepare:
        strategy: serial
        pod: db
        steps:
          - default: [[prep]]
      serve:
        strategy: serial
        pod: db
        steps:
          - default: [[run]]
""")
    cluster.deploy(spec, wait=False)
    cluster.wait_plan("ll2", timeout=60)
    assert launches_of(cluster, "ll2", "db-0-prep") == 1
    assert stops_for_resource_set(cluster, "ll2") == []
    remove(cluster, "ll2")


def test_custom_plan_waits_for_the_deploy_step_on_its_instance(cluster, tmp_path):
    # deploy's step runs `server` (not ready until the test says so); a custom
    # plan's `backup` borrows the same resource set. The backup waits, says
    # for whom, and runs once the deploy step is complete; recovery then
    # relaunches the server. Neither stops the other's task in a loop.
    gate = tmp_path / "ready"
    spec = write(tmp_path / "ll3.yml", f"""
name: ll3
pods:
  db:
    count: 1
    resource-sets:
      rs: {{cpus: 0.05, memory: 16, volume: {{path: data, type: ROOT, size: 5}}}}
    tasks:
      server:
        goal: RUNNING
        resource-set: rs
        cmd: exec sleep 1000
        readiness-check: {{cmd: test -f {gate}, interval: 1, timeout: 5}}
      backup:
        goal: FINISH
        resource-set: rs
        cmd: echo backed-up >> data/backups
plans:
  deploy:
    strategy: serial
    phases:
      d:
        strategy: serial
        pod: db
        steps:
          - default: [[server]]
  backup:
    strategy: serial
    phases:
      b:
        strategy: serial
        pod: db
        steps:
          - default: [[backup]]
""")
    cluster.deploy(spec, wait=False)
    wait_for(lambda: cluster.tasks("ll3").get("db-0-server", {}).get("status") == "RUNNING",
             30, what="server running")
    cluster.cli("-s", "ll3", "plan", "start", "backup")
    msg = wait_for(lambda: (lambda s: "waits for" in s["message"] and s["message"])(
        cluster.plan("ll3", "backup")["phases"][0]["steps"][0]), 30, what="backup waits")
    assert "step db-0:[server] of plan deploy" in msg, msg
    assert launches_of(cluster, "ll3", "db-0-backup") == 0
    assert cluster.plan("ll3", "backup")["status"] != "COMPLETE"
    write(gate, "")
    cluster.wait_plan("ll3", "backup", timeout=60)
    assert cluster.plan("ll3")["status"] == "COMPLETE"
    assert launches_of(cluster, "ll3", "db-0-backup") == 1
    wait_for(lambda: cluster.tasks("ll3")["db-0-server"]["status"] == "RUNNING"
             and cluster.tasks("ll3")["db-0-server"]["ready"], 30, what="server back")
    vol = cluster.volume_dir("ll3", "db-0")
    backups = [os.path.join(r, f) for r, _, fs in os.walk(vol) for f in fs if f == "backups"]
    assert open(backups[0]).read() == "backed-up\n"
    remove(cluster, "ll3")


# ---------------------------------------------------------------------------
# The SDK's plan verbs, and what a resume says

def test_canary_continue_says_what_it_let_go_and_what_waits(cluster):
    # examples/canary.yml: two canary phases of two gates each, so four
    # continues, as the README says.
    cluster.deploy(os.path.join(REPO, "examples/canary.yml"), wait=False)
    wait_for(lambda: cluster.plan("canary")["status"] == "WAITING", 30, what="canary waits")
    out = cluster.cli("-s", "canary", "plan", "continue", "deploy").stdout
    assert "plan deploy: canary gate 1 of 2 in phase web passed: web-0:[server] goes\n" in out, out
    assert "3 more continues are needed:" in out, out
    assert "  phase web: 1, the next for web-1:[server] (it waits for its first step to complete and a continue)\n" in out, out
    assert "  phase worker: 2, the next for worker-0:[worker] (it waits for a continue)\n" in out, out
    wait_for(lambda: cluster.plan("canary")["phases"][0]["steps"][0]["status"] == "COMPLETE",
             60, what="web-0")
    out = cluster.cli("-s", "canary", "plan", "resume", "deploy").stdout
    assert ("canary gate 2 of 2 in phase web passed: web-1:[server] and the rest go "
            "once web-0:[server] is complete") in out, out
    assert "2 more continues are needed:" in out, out
    wait_for(lambda: cluster.plan("canary")["phases"][0]["status"] == "COMPLETE", 90, what="web")
    js = json.loads(cluster.cli("-s", "canary", "--json", "plan", "continue", "deploy").stdout)
    assert js["continued"] == ["canary gate 1 of 2 in phase worker passed: worker-0:[worker] goes"]
    assert js["continues_needed"] == 1 and js["gates"][0]["phase"] == "worker", js
    wait_for(lambda: cluster.plan("canary")["phases"][1]["steps"][0]["status"] == "COMPLETE",
             60, what="worker-0")
    out = cluster.cli("-s", "canary", "plan", "continue", "deploy").stdout
    assert "no canary gate remains" in out, out
    cluster.wait_plan("canary", timeout=60)
    # Nothing left to continue: said, and exit 1.
    p = cluster.cli("-s", "canary", "plan", "resume", "deploy", check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "plan 'deploy' is already COMPLETE: there is nothing to continue" in p.stderr
    assert "resume done" not in p.stdout
    # interrupt / continue are the SDK's pause / resume.
    assert cluster.cli("-s", "canary", "plan", "interrupt", "deploy").stdout == \
        "plan deploy: interrupt done\n"
    assert cluster.plan("canary")["interrupted"] is True
    out = cluster.cli("-s", "canary", "plan", "continue", "deploy").stdout
    assert "plan deploy: the plan is no longer interrupted\n" in out, out
    assert cluster.plan("canary")["interrupted"] is False
    remove(cluster, "canary")


def test_resume_of_a_plan_nothing_holds_back_is_refused(cluster, tmp_path):
    gate = tmp_path / "go"
    spec = write(tmp_path / "rs.yml", f"""
name: held
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
        readiness-check: {{cmd: test -f {gate}, interval: 1, timeout: 5}}
""")
    cluster.deploy(spec, wait=False)
    wait_for(lambda: cluster.plan("held")["status"] == "IN_PROGRESS", 30, what="in progress")
    p = cluster.cli("-s", "held", "plan", "continue", "deploy", check=False)
    assert p.returncode == 1
    assert ("plan 'deploy' is IN_PROGRESS: it is not interrupted and no canary step "
            "waits for a continue") in p.stderr, p.stderr
    # A paused phase resumes, and says so.
    cluster.cli("-s", "held", "plan", "pause", "deploy", "--phase", "p")
    out = cluster.cli("-s", "held", "plan", "resume", "deploy", "--phase", "p").stdout
    assert out.startswith("plan deploy: phase p is no longer interrupted\n"), out
    write(gate, "")
    cluster.wait_plan("held", timeout=60)
    remove(cluster, "held")


# ---------------------------------------------------------------------------
# A fixing update

def test_a_fixing_update_resets_the_restart_backoff(cluster, tmp_path):
    spec = write(tmp_path / "fix.yml", """
name: fixme
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: "{{CMD}}"
        cpus: 0.05
        memory: 16
""")
    info = "/v1/service/fixme/pod/p-0/info"

    def slot():
        st, body = cluster.api("GET", info)
        return body["tasks"][0] if st == 200 and body["tasks"] else None

    cluster.deploy(spec, "-o", "CMD=exit 3", wait=False)
    # It failed more than once: the next relaunch waits out a backoff.
    wait_for(lambda: (slot() or {}).get("failures", 0) >= 3, 60, what="repeated failures")
    cluster.cli("service", "update", "fixme", "-f", spec, "-o", "CMD=exec sleep 1000")
    s = slot()
    assert s["failures"] == 0 and s["backoff_until"] == 0, s
    cluster.wait_plan("fixme", timeout=60)
    assert cluster.tasks("fixme")["p-0-server"]["status"] == "RUNNING"
    remove(cluster, "fixme")
