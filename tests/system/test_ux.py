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


def test_a_later_step_borrows_the_resource_set_once(cluster, tmp_path):
    # [run] then [prep] in a parallel phase: run completes, then prep takes
    # the resource set (run stops for it), and recovery brings run back once
    # prep is done; nothing is launched twice for the plan.
    spec = write(tmp_path / "ll4.yml", "name: ll4\npods:" + SHARED_RS_POD.format(count=1).replace(
        "test -s data/prep && exec sleep 1000", "exec sleep 1000") + """
plans:
  deploy:
    strategy: serial
    phases:
      main:
        strategy: parallel
        pod: db
        steps:
          - default: [[run], [prep]]
""")
    cluster.deploy(spec, wait=False)
    cluster.wait_plan("ll4", timeout=60)
    assert launches_of(cluster, "ll4", "db-0-prep") == 1
    wait_for(lambda: cluster.tasks("ll4")["db-0-run"]["status"] == "RUNNING", 30,
             what="run relaunched after prep")
    assert launches_of(cluster, "ll4", "db-0-run") == 2
    assert len(stops_for_resource_set(cluster, "ll4")) == 1
    remove(cluster, "ll4")


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


# ---------------------------------------------------------------------------
# --wait and pod status say why a step waits

def first_step(c, svc, plan="deploy"):
    """The first step of a plan ({} while the service is not there yet)."""
    st, body = c.api("GET", f"/v1/service/{svc}/plans/{plan}")
    return body["phases"][0]["steps"][0] if st in (200, 202, 417) else {}


def cli_bg(c, *args):
    return subprocess.Popen([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=c._env())


def test_wait_shows_a_failing_readiness_check_with_its_output(cluster, tmp_path):
    gate = tmp_path / "gate"
    spec = write(tmp_path / "unready.yml", f"""
name: unready
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
        readiness-check: {{cmd: 'echo "still warming up"; test -f {gate}', interval: 1, timeout: 5}}
""")
    proc = cli_bg(cluster, "service", "deploy", "-f", spec, "--wait", "--timeout", "90")
    wait_for(lambda: "not ready" in first_step(cluster, "unready").get("message", ""),
             60, what="readiness message")
    write(gate, "")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)
    assert ("deploy p p-0:[server] STARTED: server: not ready: readiness check: "
            "exit code 1: still warming up\n") in out, out
    assert out.splitlines()[-1] == "deploy COMPLETE"
    remove(cluster, "unready")


def test_wait_shows_a_backoff_and_until_when_and_times_out(cluster, tmp_path):
    spec = write(tmp_path / "crashy.yml", """
name: crashy
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 0.2; exit 3
        cpus: 0.05
        memory: 16
        readiness-check: {cmd: "false", interval: 1, timeout: 5}
""")
    p = cluster.cli("service", "deploy", "-f", spec, "--wait", "--timeout", "6", check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert re.search(r"deploy p p-0:\[server\] DELAYED: server: exited with code 3; "
                     r"server: in backoff after \d+ failures, relaunches at "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n", p.stdout), p.stdout
    assert "holdfast: plan deploy is still DELAYED after 6 s" in p.stderr, p.stderr
    remove(cluster, "crashy")


def cols(line, header):
    """The cells of a pod status line, cut where the header's columns start."""
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
    # The message follows the last column after two spaces.
    return cells[:-1] + re.split(r"\s{2,}", cells[-1], maxsplit=1)


def test_pod_status_lists_unplaced_instances_and_keeps_its_columns(cluster, tmp_path):
    spec = write(tmp_path / "toobig.yml", """
name: toobig
pods:
  p:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 4000
        memory: 16
""")
    p = cluster.cli("service", "deploy", "-f", spec, "--wait", "--timeout", "4", check=False)
    assert p.returncode == 1
    assert "deploy p p-0:[server] PENDING: cannot be placed: node node-1: it has" in p.stdout, p.stdout
    lines = cluster.cli("-s", "toobig", "pod", "status").stdout.splitlines()
    head = lines[0]
    rows = {cols(l, head)[0]: cols(l, head) for l in lines[1:]}
    assert rows["p-0"][1:6] == ["-", "NOT_PLACED", "no", "0", "-"], rows
    assert rows["p-0"][6].startswith("cannot be placed: node node-1: it has"), rows
    assert rows["p-1"][2] == "NOT_PLACED", rows
    assert rows["p-1"][6] == ("not placed yet: its step p-1:[server] of plan deploy is PENDING"), rows
    st = cluster.api("GET", "/v1/service/toobig/pod/status")[1]
    assert [(x["name"], x["placed"]) for x in st["pods"]] == [("p-0", False), ("p-1", False)]
    assert cluster.cli("-s", "toobig", "pod", "list").stdout == \
        "p-0  (not placed)\np-1  (not placed)\n"
    remove(cluster, "toobig")


def test_pod_status_columns_hold_with_a_task_not_launched(cluster, tmp_path):
    spec = write(tmp_path / "nl.yml", """
name: nl
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
      job:
        goal: FINISH
        cmd: "true"
        cpus: 0.05
        memory: 16
plans:
  deploy:
    strategy: serial
    phases:
      d: {pod: p, steps: [default: [[server]]]}
  job:
    strategy: serial
    phases:
      j: {pod: p, steps: [default: [[job]]]}
""")
    cluster.deploy(spec)
    cluster.cli("-s", "nl", "plan", "start", "job", "--wait", "--timeout", "60")
    # An interrupted plan's restarted step is not launched again.
    cluster.cli("-s", "nl", "plan", "pause", "job")
    cluster.cli("-s", "nl", "plan", "force-restart", "job", "j", "p-0:[job]")
    lines = cluster.cli("-s", "nl", "pod", "status").stdout.splitlines()
    head = lines[0]
    rows = {cols(l, head)[1]: cols(l, head) for l in lines[1:]}
    assert rows["p-0-job"][:6] == ["p-0", "p-0-job", "NOT_LAUNCHED", "no", "0", "node-1"], lines
    assert rows["p-0-server"][:6] == ["p-0", "p-0-server", "RUNNING", "yes", "0", "node-1"], lines
    remove(cluster, "nl")


# ---------------------------------------------------------------------------
# Endpoints

def test_endpoints_say_when_there_are_none_and_print_names_that_resolve(cluster, tmp_path):
    import socket
    spec = write(tmp_path / "ep.yml", """
name: ep
pods:
  web:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
        ports:
          http: {port: 0, advertise: true}
          admin: {port: 0}
""")
    quiet = write(tmp_path / "quiet.yml", """
name: quiet
pods:
  q:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
        ports: {redis: {port: 0}}
""")
    cluster.deploy(spec)
    cluster.deploy(quiet)
    p = cluster.cli("-s", "quiet", "endpoints")
    assert p.stdout == ("quiet advertises no endpoints: none of its ports has 'advertise: true' "
                        "(its pods' ports are in 'holdfast -s quiet pod info POD')\n"), p.stdout
    assert cluster.cli("-s", "ep", "endpoints").stdout == "http\n"
    ep = json.loads(cluster.cli("-s", "ep", "endpoints", "http", "--json").stdout)
    ports = [json.loads(cluster.cli("-s", "ep", "pod", "info", f"web-{i}", "--json").stdout)
             ["ports"]["http"] for i in range(2)]
    assert sorted(ep["address"]) == sorted(f"127.0.0.1:{p}" for p in ports)
    assert sorted(cluster.cli("-s", "ep", "endpoints", "http").stdout.splitlines()) == \
        sorted(ep["address"])
    # The names are the node's host name: they resolve like it does.
    host = socket.gethostname()
    assert sorted(ep["dns"]) == sorted(f"{host}:{p}" for p in ports), ep
    for name in ep["dns"]:
        h, port = name.rsplit(":", 1)
        assert socket.getaddrinfo(h, int(port)), name
    remove(cluster, "ep")
    remove(cluster, "quiet")


def test_rollback_wait_returns_once_the_scale_in_is_done(cluster, tmp_path):
    spec = write(tmp_path / "shrink.yml", """
name: shrink
pods:
  p:
    count: {{N}}
    allow-decommission: true
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.05
        memory: 16
      decommission:
        goal: FINISH
        cmd: sleep 2
        cpus: 0.05
        memory: 16
""")
    cluster.deploy(spec, "-o", "N=1")
    cluster.cli("service", "update", "shrink", "-f", spec, "-o", "N=3", "--wait", "--timeout", "60")
    assert cluster.cli("-s", "shrink", "pod", "list").stdout.split() == ["p-0", "p-1", "p-2"]
    p = cluster.cli("service", "rollback", "shrink", "--wait", "--timeout", "90")
    assert "decommission" in p.stdout and p.stdout.splitlines()[-1] == "decommission COMPLETE", p.stdout
    # Returned only once the instances beyond the count are gone.
    assert cluster.cli("-s", "shrink", "pod", "list").stdout.split() == ["p-0"]
    remove(cluster, "shrink")


# ---------------------------------------------------------------------------
# Volumes kept by a remove

KEEP_SPEC = """
name: {name}
pods:
  p:
    count: 2
    volume: {{path: data, type: ROOT, size: 5}}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$LIFE" >> data/lives && exec sleep 1000
        cpus: 0.05
        memory: 16
        env: {{LIFE: "{{{{LIFE}}}}"}}
        readiness-check: {{cmd: "{{{{READY}}}}", interval: 1, timeout: 5}}
plans:
  deploy:
    strategy: serial
    phases:
      p: {{pod: p, strategy: serial}}
"""


def lives(c, svc, inst):
    root = c.volume_dir(svc, inst)
    f = [os.path.join(r, x) for r, _, fs in os.walk(root) for x in fs if x == "lives"]
    return open(f[0]).read() if f else None


def volume_list(c, svc=None):
    args = (("-s", svc) if svc else ()) + ("volume", "list", "--json")
    return sorted((v["key"], v["status"]) for v in json.loads(c.cli(*args).stdout))


def test_volume_list_shows_only_instances_with_volumes(cluster, tmp_path):
    """A pod without ROOT or MOUNT volumes has nothing to list."""
    spec = write(tmp_path / "novol.yml", """
name: novol
pods:
  bare:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: "sleep 1000", cpus: 0.1, memory: 32}
  disk:
    count: 1
    volume: {path: data, type: ROOT, size: 10}
    tasks:
      server: {goal: RUNNING, cmd: "sleep 1000", cpus: 0.1, memory: 32}
""")
    cluster.deploy(spec)
    try:
        assert volume_list(cluster, "novol") == [("novol/disk-0", "in use")]
    finally:
        cluster.cli("service", "remove", "novol", "--delete-volumes", "--wait",
                    "--timeout", "60")


def test_kept_volumes_are_listed_reused_and_deleted_after_the_remove(cluster, tmp_path):
    spec = write(tmp_path / "keep.yml", KEEP_SPEC.format(name="keep"))
    cluster.deploy(spec, "-o", "LIFE=one", "-o", "READY=true")
    p = cluster.cli("service", "remove", "keep", "--wait", "--timeout", "60")
    assert "keeping volumes of p-0 on node node-1 (volumes/keep/p-0)" in p.stdout, p.stdout
    assert volume_list(cluster) == [("keep/p-0", "kept"), ("keep/p-1", "kept")]
    out = cluster.cli("volume", "list").stdout.splitlines()
    assert out[0].split() == ["VOLUME", "NODE", "STATUS", "SINCE"], out
    assert re.match(r"keep/p-0 +node-1 +kept +\d{4}-\d\d-\d\dT\S+Z +service keep was removed "
                    r"with its volumes kept$", out[1]), out
    # Deployed again: it says it reuses them, and it does.
    p = cluster.deploy(spec, "-o", "LIFE=two", "-o", "READY=true")
    assert ("volumes kept from an earlier keep are reused by its instances placed on their "
            "node") in p.stdout, p.stdout
    assert "  keep/p-1 on node node-1 (service keep was removed with its volumes kept)" in p.stdout
    assert lives(cluster, "keep", "p-0") == "one\ntwo\n"
    reused = [e for e in events(cluster, "keep") if e["after"] == "reuses kept volumes"]
    assert sorted(e["object"] for e in reused) == ["p-0", "p-1"], reused
    assert "reuses the volumes kept on node node-1 since" in reused[0]["why"]
    assert volume_list(cluster, "keep") == [("keep/p-0", "in use"), ("keep/p-1", "in use")]
    # Removed again, plainly; then the volumes are deleted afterwards.
    cluster.cli("service", "remove", "keep", "--wait", "--timeout", "60")
    p = cluster.cli("service", "remove", "keep", "--delete-volumes", "--wait", "--timeout", "60")
    assert p.stdout.startswith("keep was already removed; deleting the volumes it kept:\n"), p.stdout
    assert "  deleting keep/p-0 on node node-1\n" in p.stdout
    assert not os.path.exists(os.path.join(cluster.agent_data, "volumes", "keep"))
    assert volume_list(cluster, "keep") == []
    p = cluster.cli("service", "remove", "keep", check=False)
    assert p.returncode == 1 and "no service named 'keep'" in p.stderr


NO_VOLUME_SPEC = """
name: {name}
pods:
  p:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.05
        memory: 16
"""


def test_a_pod_without_volumes_keeps_none(cluster, tmp_path):
    """Removed without --delete-volumes, a service whose pods declare no
    volume says nothing is kept and leaves no kept-volume record behind."""
    spec = write(tmp_path / "novol.yml", NO_VOLUME_SPEC.format(name="novol"))
    cluster.deploy(spec)
    p = cluster.cli("service", "remove", "novol", "--wait", "--timeout", "60")
    assert "keeping volumes" not in p.stdout, p.stdout
    assert volume_list(cluster, "novol") == []
    p = cluster.cli("service", "remove", "novol", check=False)
    assert p.returncode == 1 and "no service named 'novol'" in p.stderr, p.stderr


def test_volume_delete(cluster, tmp_path):
    spec = write(tmp_path / "vd.yml", KEEP_SPEC.format(name="vd"))
    cluster.deploy(spec, "-o", "LIFE=one", "-o", "READY=true")
    # In use: refused, and the way to delete them is named.
    p = cluster.cli("volume", "delete", "vd", "--yes", check=False)
    assert p.returncode == 1 and "in use by the deployed service" in p.stderr, p.stderr
    cluster.cli("service", "remove", "vd", "--wait", "--timeout", "60")
    p = cluster.cli("service", "remove", "vd", check=False)
    assert p.returncode == 1 and "was already removed; its volumes are kept" in p.stderr
    p = cluster.cli("volume", "delete", "vd/p-1", check=False)
    assert p.returncode == 2 and "confirm with --yes" in p.stderr
    p = cluster.cli("volume", "delete", "vd/p-1", "--yes", "--wait", "--timeout", "60")
    assert p.stdout == "deleting vd/p-1 on node node-1\ndeleted\n"
    wait_for(lambda: volume_list(cluster, "vd") == [("vd/p-0", "kept")], 30, what="p-1 gone")
    assert not os.path.exists(cluster.volume_dir("vd", "p-1"))
    assert os.path.exists(cluster.volume_dir("vd", "p-0"))
    cluster.cli("volume", "delete", "vd", "--yes", "--wait", "--timeout", "60")
    assert volume_list(cluster, "vd") == []
    p = cluster.cli("volume", "delete", "vd", "--yes", check=False)
    assert p.returncode == 1 and "no kept volume vd" in p.stderr


def test_remove_during_a_redeploy_leaves_no_orphaned_volume(cluster, tmp_path):
    spec = write(tmp_path / "orph.yml", KEEP_SPEC.format(name="orph"))
    cluster.deploy(spec, "-o", "LIFE=one", "-o", "READY=true")
    cluster.cli("service", "remove", "orph", "--wait", "--timeout", "60")
    # Again, but p-0 never gets ready: p-1 is not placed when it is removed.
    cluster.deploy(spec, "-o", "LIFE=two", "-o", "READY=false", wait=False)
    wait_for(lambda: "p-0-server" in cluster.tasks("orph"), 30, what="p-0 launched")
    assert volume_list(cluster, "orph") == [("orph/p-0", "in use"), ("orph/p-1", "kept")]
    cluster.cli("service", "remove", "orph", "--delete-volumes", "--wait", "--timeout", "60")
    assert not os.path.exists(os.path.join(cluster.agent_data, "volumes", "orph"))
    assert volume_list(cluster, "orph") == []


# ---------------------------------------------------------------------------
# A private CA

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca_and_cert(d):
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=holdfast test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    write(os.path.join(d, "ext.cnf"), "subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=d)
    # Another CA, which did not sign the server's certificate.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=some other CA", "-keyout", "other.key", "-out", "other.pem", cwd=d)


def test_server_agent_and_cli_over_tls_with_a_private_ca(tmp_path):
    d = str(tmp_path)
    make_ca_and_cert(d)
    tokens = write(tmp_path / "tokens", "admin tls-admin-7f3a\nagent tls-agent-19c2\n")
    os.chmod(tokens, 0o600)  # a tokens file others can read is refused
    os.makedirs(tmp_path / "server")
    os.makedirs(tmp_path / "agent")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
    procs = []
    try:
        port_file = str(tmp_path / "port")
        procs.append(subprocess.Popen(
            [BIN, "server", "--data", str(tmp_path / "server"), "--listen", "127.0.0.1:0",
             "--port-file", port_file, "--backoff", "0.5", "--tokens", tokens,
             "--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server.key")],
            stdout=open(tmp_path / "server.log", "w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True))
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30,
                 what="server port")
        url = f"https://127.0.0.1:{open(port_file).read().strip()}"
        # The URL it advertises (where other servers send writes) is https.
        wait_for(lambda: f"({url})" in open(tmp_path / "server.log").read(), 30,
                 what="the advertised URL in the log")
        procs.append(subprocess.Popen(
            [BIN, "agent", "--server", url, "--data", str(tmp_path / "agent"), "--node-id", "tls-1",
             "--token", "tls-agent-19c2", "--ca-file", os.path.join(d, "ca.pem")],
            stdout=open(tmp_path / "agent.log", "w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True))
        cli_env = dict(env, HOLDFAST_ADDR=url, HOLDFAST_TOKEN="tls-admin-7f3a")

        def cli(*args, ca=None, **extra):
            e = dict(cli_env, **extra)
            if ca:
                e["HOLDFAST_CA_FILE"] = os.path.join(d, ca)
            else:
                e.pop("HOLDFAST_CA_FILE", None)
            return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=120)

        # Without the CA (or with another one) the CLI refuses the server.
        for ca in (None, "other.pem"):
            p = cli("node", "list", ca=ca)
            assert p.returncode == 3, (p.stdout, p.stderr)
            assert f"cannot reach the server at {url}" in p.stderr and "certificate" in p.stderr, p.stderr
            assert "--ca-file or $HOLDFAST_CA_FILE" in p.stderr, p.stderr
        # With it: the agent (over TLS too) registers, and a service deploys.
        wait_for(lambda: "yes" in cli("node", "list", ca="ca.pem").stdout, 30, what="agent over TLS")
        p = cli("--ca-file", os.path.join(d, "ca.pem"), "node", "list")
        assert p.returncode == 0 and "tls-1" in p.stdout, (p.stdout, p.stderr)
        spec = write(tmp_path / "t.yml", """
name: tls
pods:
  p:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.05, memory: 16}
""")
        p = cli("service", "deploy", "-f", spec, "--wait", "--timeout", "60", ca="ca.pem")
        assert p.returncode == 0 and p.stdout.splitlines()[-1] == "deploy COMPLETE", (p.stdout, p.stderr)
        p = cli("--ca-file", os.path.join(d, "nosuch.pem"), "service", "list")
        assert p.returncode == 2 and "cannot read the CA file" in p.stderr, p.stderr
        p = cli("service", "remove", "tls", "--wait", "--timeout", "60", ca="ca.pem")
        assert p.returncode == 0, (p.stdout, p.stderr)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        for pid in Cluster.pids_matching(d):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------
# Messages

def test_a_refused_update_gives_each_reason_once(cluster, tmp_path):
    spec = write(tmp_path / "usr.yml", """
name: usr
scheduler: {user: "{{U}}"}
pods:
  p:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.05, memory: 16}
""")
    cluster.deploy(spec, "-o", "U=root")
    p = cluster.cli("service", "update", "usr", "-f", spec, "-o", "U=nobody", check=False)
    assert p.returncode == 1
    assert ("refused: the service user cannot change from 'root' to 'nobody' (files on its "
            "volumes belong to the old user)\n") in p.stdout, p.stdout
    assert p.stderr == "holdfast: the update of usr is refused; nothing changed\n", p.stderr
    remove(cluster, "usr")


def test_an_update_of_the_placement_alone_places_the_waiting_instance(cluster, tmp_path):
    """A pod that cannot be placed under its placement rule is placed once an
    update changes the rule, though the update relaunches nothing."""
    text = """
name: plc
pods:
  p:
    count: 1
{placement}    tasks:
      server: {{goal: RUNNING, cmd: sleep 1000, cpus: 0.05, memory: 16}}
"""
    bad = write(tmp_path / "plc1.yml", text.format(placement="    placement: 'hostname:IS:nosuch'\n"))
    good = write(tmp_path / "plc2.yml", text.format(placement=""))
    cluster.deploy(bad, wait=False)
    wait_for(lambda: "cannot be placed" in json.dumps(cluster.plan("plc")), 30, what="unplaced")
    p = cluster.cli("service", "update", "plc", "-f", good, "--wait", "--timeout", "60")
    assert 'placement: "hostname:IS:nosuch" -> null' in p.stdout, p.stdout
    assert "relaunch" not in p.stdout, p.stdout
    assert cluster.plan("plc")["status"] == "COMPLETE"
    assert cluster.tasks("plc")["p-0-server"]["status"] == "RUNNING"
    cluster.cli("service", "remove", "plc", "--wait")


def test_a_count_change_is_not_a_plan_change(tmp_path):
    spec = write(tmp_path / "cnt.yml", """
name: cnt
pods:
  web:
    count: {{N}}
    allow-decommission: true
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1, cpus: 0.1, memory: 16}
plans:
  deploy:
    strategy: serial
    phases:
      web: {pod: web, strategy: parallel}
""")
    out = subprocess.run([BIN, "spec", "diff", spec, spec, "--old-option", "N=2", "-o", "N=3"],
                         capture_output=True, text=True).stdout
    assert out == "pod web: unchanged (count 2 -> 3)\n  add      web-2\nthe change is allowed\n", out
    # A real change of the plan still shows.
    other = write(tmp_path / "cnt2.yml", open(spec).read().replace("strategy: parallel",
                                                                   "strategy: serial"))
    out = subprocess.run([BIN, "spec", "diff", spec, other, "-o", "N=2"],
                         capture_output=True, text=True).stdout
    assert "service: plan deploy: changed\n" in out, out


def test_messages_when_the_server_is_not_there_or_not_holdfast(tmp_path):
    import http.server
    import socket
    import threading

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    env = dict(os.environ, HOLDFAST_ADDR=f"http://127.0.0.1:{free}")
    p = subprocess.run([BIN, "service", "list"], capture_output=True, text=True, env=env)
    assert p.returncode == 3
    assert f"holdfast: cannot reach the server at http://127.0.0.1:{free}: " in p.stderr
    assert ("holdfast: is `holdfast dev` (or `holdfast server`) running there? The address "
            "comes from $HOLDFAST_ADDR\n") in p.stderr, p.stderr

    class Empty404(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Empty404)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        addr = f"http://127.0.0.1:{httpd.server_address[1]}"
        p = subprocess.run([BIN, "--addr", addr, "service", "list"], capture_output=True, text=True)
        assert p.returncode == 1
        assert p.stderr == (f"holdfast: GET /v1/services at {addr}: the server answered HTTP 404 "
                            "without an error message (is it a holdfast server?)\n"), p.stderr
    finally:
        httpd.shutdown()


def test_dev_as_non_root_says_permission_denied(tmp_path):
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="hf-dev-")
    try:
        os.chmod(base, 0o755)
        exe = os.path.join(base, "holdfast")
        shutil.copy(BIN, exe)
        os.chmod(exe, 0o755)
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            exe, "dev", "--data", os.path.join(base, "x", "dev"),
                            "--listen", "127.0.0.1:1"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert p.stderr == (f"holdfast dev: cannot create {base}/x/dev: Permission denied (run it "
                            "as root, or give --data a directory you can write)\n"), p.stderr
    finally:
        shutil.rmtree(base)


# ---------------------------------------------------------------------------
# The README's walk

def test_events_tail(cluster, tmp_path):
    spec = write(tmp_path / "tl.yml", """
name: tl
pods:
  p:
    count: 2
    tasks:
      server: {goal: RUNNING, cmd: exec sleep 1000, cpus: 0.05, memory: 16}
""")
    cluster.deploy(spec)
    every = events(cluster, "tl")
    assert len(every) > 4
    out = cluster.cli("-s", "tl", "events", "--tail", "3", "--json").stdout
    assert [json.loads(l) for l in out.splitlines()] == every[-3:]
    human = cluster.cli("-s", "tl", "events", "-n", "2").stdout.splitlines()
    assert len(human) == 2 and human[-1].split()[1] == str(every[-1]["id"]), human
    assert cluster.cli("-s", "tl", "events", "--tail", "0").stdout == ""
    assert cluster.cli("events", "--tail", "x", check=False).returncode == 2
    remove(cluster, "tl")


def test_hello_world_logs_what_it_writes(cluster):
    cluster.deploy(os.path.join(REPO, "examples/hello-world.yml"))
    wait_for(lambda: " hello\n" in cluster.cli("-s", "hello-world", "task", "logs",
                                               "hello-0-server").stdout,
             30, what="hello in the task's log")
    out = cluster.cli("-s", "hello-world", "task", "logs", "hello-0-server").stdout
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ hello started\n", out), out
    remove(cluster, "hello-world")
