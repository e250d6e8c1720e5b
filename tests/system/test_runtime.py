"""The single-machine runtime, through the real binary: a server and an
agent as separate processes, real shims and tasks, the CLI and the API."""
import json
import os
import random
import signal
import time

import pytest

from holdfast_harness import REPO, Cluster, pid_alive, pid_cmdline, wait_for, write


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_hello_world_deploys_and_volumes_fill(cluster):
    p = cluster.deploy(os.path.join(REPO, "examples/hello-world.yml"))
    assert "deploy COMPLETE" in p.stdout
    plan = cluster.plan("hello-world")
    assert plan["status"] == "COMPLETE"
    assert [ph["name"] for ph in plan["phases"]] == ["hello", "world"]
    assert [s["name"] for ph in plan["phases"] for s in ph["steps"]] == [
        "hello-0:[server]", "world-0:[server]", "world-1:[server]"]
    tasks = cluster.tasks("hello-world")
    assert sorted(tasks) == ["hello-0-server", "world-0-server", "world-1-server"]
    assert all(t["status"] == "RUNNING" for t in tasks.values())
    hello = cluster.volume_dir("hello-world", "hello-0")
    wait_for(lambda: any("hello" in open(os.path.join(r, f)).read()
                         for r, _, fs in os.walk(hello) for f in fs if f == "output"),
             30, what="hello output in its volume")
    # The CLI shows the same tree.
    out = cluster.cli("-s", "hello-world", "plan", "show").stdout
    assert "world-1:[server] (COMPLETE)" in out
    out = cluster.cli("service", "list").stdout
    assert "hello-world" in out and "COMPLETE" in out


def test_task_env_ports_and_configs(cluster, tmp_path):
    tmpl = write(tmp_path / "app.conf.mustache", "port={{PORT_HTTP}} pod={{POD_INSTANCE_INDEX}} x={{X}}\n")
    spec = write(tmp_path / "env.yml", f"""
name: envsvc
pods:
  app:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: env > data/env && cp conf/app.conf data/app.conf && sleep 1000
        cpus: 0.1
        memory: 32
        env: {{X: from-spec}}
        ports:
          http: {{port: 0, env-key: PORT_HTTP}}
        volume: {{path: data, type: ROOT, size: 10}}
        configs:
          app: {{template: {os.path.basename(tmpl)}, dest: conf/app.conf}}
        readiness-check: {{cmd: test -s data/app.conf, interval: 1, timeout: 5}}
""")
    cluster.deploy(spec, "-o", "TASKCFG_ALL_EXTRA=routed")
    ports = set()
    for i in range(2):
        vol = cluster.volume_dir("envsvc", f"app-{i}")
        envf = [os.path.join(r, f) for r, _, fs in os.walk(vol) for f in fs if f == "env"][0]
        env = dict(l.split("=", 1) for l in open(envf).read().splitlines() if "=" in l)
        assert env["TASK_NAME"] == f"app-{i}-server"
        assert env["POD_INSTANCE_INDEX"] == str(i)
        assert env["FRAMEWORK_NAME"] == "envsvc" and env["SERVICE_NAME"] == "envsvc"
        assert env["MESOS_SANDBOX"] == env["HOLDFAST_SANDBOX"]
        assert env["X"] == "from-spec"
        assert env["EXTRA"] == "routed"
        port = int(env["PORT_HTTP"])
        assert 10000 <= port <= 20000
        ports.add(port)
        conf = open(os.path.join(os.path.dirname(envf), "app.conf")).read()
        assert conf == f"port={port} pod={i} x=from-spec\n"
    assert len(ports) == 2


def spec_two_pods(tmp_path, strategy, phase_strategy):
    return write(tmp_path / "s.yml", f"""
name: strat
pods:
  p:
    count: 3
    tasks:
      server:
        goal: RUNNING
        cmd: echo up > up && sleep 1000
        cpus: 0.1
        readiness-check: {{cmd: test -f up, interval: 1, timeout: 5}}
plans:
  deploy:
    strategy: {strategy}
    phases:
      p-phase:
        strategy: {phase_strategy}
        pod: p
""")


def test_serial_strategy_one_at_a_time(cluster, tmp_path):
    cluster.deploy(spec_two_pods(tmp_path, "serial", "serial"), wait=False)
    # Never more than one step in flight while the others are pending.
    seen_pending_after_progress = False
    deadline = time.time() + 60
    while time.time() < deadline:
        steps = [s["status"] for s in cluster.plan("strat")["phases"][0]["steps"]]
        busy = [s for s in steps if s not in ("COMPLETE", "PENDING")]
        assert len(busy) <= 1, steps
        if busy and "PENDING" in steps:
            seen_pending_after_progress = True
        if all(s == "COMPLETE" for s in steps):
            break
        time.sleep(0.05)
    assert all(s == "COMPLETE" for s in steps)
    assert seen_pending_after_progress


def test_parallel_strategy_launches_together(cluster, tmp_path):
    cluster.deploy(spec_two_pods(tmp_path, "serial", "parallel"), wait=False)
    # All three launch before any is complete.
    def all_launched():
        t = cluster.tasks("strat")
        return len(t) == 3 and all(x["id"] for x in t.values())
    wait_for(all_launched, 30, what="three launches")
    cluster.wait_plan("strat")


def test_canary_waits_for_continue(cluster):
    cluster.deploy(os.path.join(REPO, "examples/canary.yml"), wait=False)
    time.sleep(2)
    plan = cluster.plan("canary")
    assert plan["status"] == "WAITING", plan
    assert cluster.tasks("canary") == {}
    cluster.cli("-s", "canary", "plan", "resume", "deploy")
    wait_for(lambda: cluster.plan("canary")["phases"][0]["steps"][0]["status"] == "COMPLETE",
             60, what="canary step web-0")
    time.sleep(1)
    steps = cluster.plan("canary")["phases"][0]["steps"]
    assert steps[1]["status"] == "WAITING", steps
    cluster.cli("-s", "canary", "plan", "resume", "deploy")
    wait_for(lambda: cluster.plan("canary")["phases"][0]["status"] == "COMPLETE", 60,
             what="web phase")
    # worker: a parallel canary needs its own continues.
    assert cluster.plan("canary")["phases"][1]["status"] == "WAITING"
    cluster.cli("-s", "canary", "plan", "resume", "deploy")
    wait_for(lambda: cluster.plan("canary")["phases"][1]["steps"][0]["status"] == "COMPLETE", 60)
    cluster.cli("-s", "canary", "plan", "resume", "deploy")
    cluster.wait_plan("canary")


def test_readiness_gates_the_step(cluster, tmp_path):
    gate = tmp_path / "gate"
    spec = write(tmp_path / "r.yml", f"""
name: ready
pods:
  p:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        readiness-check: {{cmd: test -f {gate}, interval: 0.5, timeout: 5}}
""")
    cluster.deploy(spec, wait=False)
    wait_for(lambda: cluster.tasks("ready").get("p-0-server", {}).get("status") == "RUNNING", 30)
    time.sleep(2)
    steps = cluster.plan("ready")["phases"][0]["steps"]
    assert steps[0]["status"] == "STARTED" and steps[1]["status"] == "PENDING", steps
    gate.write_text("ok")
    cluster.wait_plan("ready")


def test_finish_and_once_goals(cluster, tmp_path):
    spec = write(tmp_path / "f.yml", """
name: goals
pods:
  p:
    count: 1
    resource-sets:
      rs: {cpus: 0.1, volume: {path: data, type: ROOT, size: 10}}
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
        cmd: echo server >> data/log && sleep 1000
        resource-set: rs
plans:
  deploy:
    phases:
      ph:
        pod: p
        steps:
          - default: [[init], [fmt], [server]]
""")
    cluster.deploy(spec)
    log = [os.path.join(r, "log") for r, _, fs in os.walk(cluster.volume_dir("goals", "p-0")) if "log" in fs][0]
    wait_for(lambda: open(log).read().split() == ["once", "finish", "server"], 20,
             what="sequence once, finish, server")
    # Restarting the plan reruns nothing that is done; ONCE stays done.
    cluster.cli("-s", "goals", "plan", "start", "deploy", "--wait", "--timeout", "60")
    time.sleep(1)
    assert open(log).read().split() == ["once", "finish", "server"]


def test_essential_and_nonessential(cluster, tmp_path):
    spec = write(tmp_path / "e.yml", """
name: ess
pods:
  p:
    count: 1
    tasks:
      main:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
      helper:
        goal: RUNNING
        essential: false
        cmd: sleep 1000
        cpus: 0.1
""")
    cluster.deploy(spec)
    t = cluster.tasks("ess")
    main_id, helper_id = t["p-0-main"]["id"], t["p-0-helper"]["id"]
    # A non-essential task failing restarts only itself.
    os.kill(cluster.task_pid(helper_id), signal.SIGKILL)
    wait_for(lambda: cluster.restarted("ess", "p-0-helper", t["p-0-helper"])
             and cluster.tasks("ess")["p-0-helper"]["status"] == "RUNNING", 30)
    assert cluster.tasks("ess")["p-0-main"]["id"] == main_id
    # An essential task failing restarts its whole pod.
    helper_id = cluster.tasks("ess")["p-0-helper"]["id"]
    os.kill(cluster.task_pid(main_id), signal.SIGKILL)
    wait_for(lambda: cluster.tasks("ess")["p-0-main"]["id"] != main_id
             and cluster.tasks("ess")["p-0-helper"]["id"] != helper_id
             and all(x["status"] == "RUNNING" for x in cluster.tasks("ess").values()), 30,
             what="pod relaunched")


def test_volume_survives_crash_and_restarts(cluster, tmp_path):
    spec = write(tmp_path / "v.yml", """
name: vol
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$TASK_NAME $$" >> data/log && sleep 1000
        cpus: 0.1
        volume: {path: data, type: ROOT, size: 10}
""")
    cluster.deploy(spec)
    vol = cluster.volume_dir("vol", "p-0")
    logf = [os.path.join(r, "log") for r, _, fs in os.walk(vol) if "log" in fs][0]
    assert len(open(logf).read().splitlines()) == 1
    tid = cluster.tasks("vol")["p-0-server"]["id"]
    os.kill(cluster.task_pid(tid), signal.SIGKILL)
    wait_for(lambda: len(open(logf).read().splitlines()) == 2, 30, what="relaunch on the same volume")
    cluster.kill_server()
    cluster.start_server()
    cluster.kill_agent()
    cluster.start_agent()
    time.sleep(2)
    # Neither restart relaunched the task; the volume holds both runs.
    assert len(open(logf).read().splitlines()) == 2
    assert cluster.tasks("vol")["p-0-server"]["status"] == "RUNNING"


def test_health_check_relaunches(cluster, tmp_path):
    spec = write(tmp_path / "h.yml", """
name: health
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: touch alive && sleep 1000
        cpus: 0.1
        health-check: {cmd: test -f alive, interval: 0.5, grace-period: 0, timeout: 2, max-consecutive-failures: 2}
""")
    cluster.deploy(spec)
    t = cluster.tasks("health")["p-0-server"]
    sandbox = os.path.join(cluster.agent_data, "tasks", t["id"], "sandbox")
    os.unlink(os.path.join(sandbox, "alive"))
    wait_for(lambda: cluster.tasks("health")["p-0-server"]["id"] != t["id"], 30,
             what="health-check relaunch")
    assert cluster.tasks("health")["p-0-server"]["restarts"] >= 1


def test_kill_grace_period(cluster, tmp_path):
    spec = write(tmp_path / "g.yml", """
name: grace
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: trap 'sleep 1; echo graceful > data/bye; exit 0' TERM; while :; do sleep 0.1; done
        cpus: 0.1
        kill-grace-period: 10
        volume: {path: data, type: ROOT, size: 10}
""")
    cluster.deploy(spec)
    cluster.cli("service", "remove", "grace", "--wait")
    bye = [os.path.join(r, "bye") for r, _, fs in os.walk(cluster.volume_dir("grace", "p-0")) if "bye" in fs]
    assert bye and open(bye[0]).read().strip() == "graceful"


def test_memory_limit_kill_is_reported(cluster, tmp_path):
    info = json.loads(cluster.cli("node", "list", "--json").stdout)[0]
    spec = write(tmp_path / "m.yml", """
name: oom
pods:
  p:
    count: 1
    tasks:
      hog:
        goal: RUNNING
        cmd: python3 -c "x = bytearray(400 * 1024 * 1024); import time; time.sleep(1000)"
        cpus: 0.5
        memory: 64
""")
    cluster.deploy(spec, wait=False)
    if info["cgroups"] and "not" not in info["cgroups"].lower().split()[:3]:
        wait_for(lambda: "out of memory" in (cluster.tasks("oom")["p-0-hog"].get("message") or "")
                 or cluster.tasks("oom")["p-0-hog"]["restarts"] > 0 and
                 "memory" in json.dumps(cluster.api("GET", "/v1/service/oom/pod/p-0/info")[1]),
                 60, what="OOM kill reported")
    else:
        pytest.fail("cgroups unavailable on this machine: " + str(info["cgroups"]))


def test_ports_stable_across_restarts(cluster, tmp_path):
    spec = write(tmp_path / "p.yml", """
name: ports
pods:
  p:
    count: 2
    tasks:
      server:
        goal: RUNNING
        cmd: echo $PORT_WEB > port && sleep 1000
        cpus: 0.1
        ports:
          web: {port: 0}
          fixed: {port: 18080}
""")
    cluster.deploy(spec, wait=False)
    # Two instances on one node cannot both have port 18080.
    wait_for(lambda: "18080" in json.dumps(cluster.plan("ports")), 30, what="port conflict message")
    cluster.cli("service", "remove", "ports", "--wait")
    spec = spec.replace("\n          fixed: {port: 18080}", "")
    write(tmp_path / "p.yml", open(spec).read().replace("          fixed: {port: 18080}\n", ""))
    cluster.deploy(str(tmp_path / "p.yml"))
    before = {i: cluster.api("GET", f"/v1/service/ports/pod/p-{i}/info")[1]["ports"]["web"] for i in range(2)}
    t = cluster.tasks("ports")["p-0-server"]
    tid = t["id"]
    os.kill(cluster.task_pid(tid), signal.SIGKILL)
    wait_for(lambda: cluster.restarted("ports", "p-0-server", t) and
             cluster.tasks("ports")["p-0-server"]["status"] == "RUNNING", 30)
    cluster.kill_server()
    cluster.start_server()
    after = {i: cluster.api("GET", f"/v1/service/ports/pod/p-{i}/info")[1]["ports"]["web"] for i in range(2)}
    assert before == after


def test_agent_kill9_restarts_no_task(cluster):
    cluster.deploy(os.path.join(REPO, "examples/hello-world.yml"))
    ids = {n: t["id"] for n, t in cluster.tasks("hello-world").items()}
    pids = {n: cluster.task_pid(i) for n, i in ids.items()}
    cluster.kill_agent()
    time.sleep(1)
    for pid in pids.values():
        os.kill(pid, 0)  # still running without their agent
    cluster.start_agent()
    time.sleep(3)
    assert {n: t["id"] for n, t in cluster.tasks("hello-world").items()} == ids
    assert {n: cluster.task_pid(i) for n, i in ids.items()} == pids
    assert all(t["restarts"] == 0 for t in cluster.tasks("hello-world").values())


def test_exit_while_agent_down_is_not_lost(cluster, tmp_path):
    spec = write(tmp_path / "x.yml", """
name: down
pods:
  p:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: sleep 1000, cpus: 0.1}
""")
    cluster.deploy(spec)
    t = cluster.tasks("down")["p-0-server"]
    tid = t["id"]
    cluster.kill_agent()
    os.kill(cluster.task_pid(tid), signal.SIGKILL)
    time.sleep(1)
    cluster.start_agent()
    wait_for(lambda: cluster.restarted("down", "p-0-server", t), 30,
             what="relaunch after an exit the agent missed")
    info = cluster.api("GET", "/v1/service/down/pod/p-0/info")[1]
    assert info["tasks"][0]["restarts"] == 1


def test_unknown_task_on_agent_is_killed(cluster, tmp_path):
    spec = write(tmp_path / "u.yml", """
name: unknown
pods:
  p:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: sleep 1000, cpus: 0.1}
""")
    cluster.deploy(spec)
    tid = cluster.tasks("unknown")["p-0-server"]["id"]
    pid = cluster.task_pid(tid)
    # The server forgets the service behind the agent's back.
    cluster.kill_server()
    import sqlite3
    db = sqlite3.connect(os.path.join(cluster.server_data, "holdfast.db"))
    db.execute("DELETE FROM kv WHERE key LIKE '/services/unknown%'")
    db.commit()
    db.close()
    cluster.start_server()
    wait_for(lambda: not pid_alive(pid), 30, what="unknown task killed")


def test_server_kill9_during_deploy_no_duplicates(cluster, tmp_path):
    spec = write(tmp_path / "k.yml", """
name: crash
pods:
  p:
    count: 6
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$TASK_NAME" >> data/starts && sleep 1000
        cpus: 0.1
        volume: {path: data, type: ROOT, size: 10}
        readiness-check: {cmd: test -s data/starts, interval: 0.3, timeout: 5}
""")
    cluster.deploy(spec, wait=False)
    rng = random.Random(7)
    for _ in range(8):
        time.sleep(rng.uniform(0.05, 0.6))
        cluster.kill_server()
        cluster.start_server()
    cluster.wait_plan("crash", timeout=120)
    # Exactly one launch per instance: no duplicate and no orphan.
    for i in range(6):
        starts = [os.path.join(r, "starts") for r, _, fs in os.walk(cluster.volume_dir("crash", f"p-{i}"))
                  if "starts" in fs]
        assert starts and open(starts[0]).read().split() == [f"p-{i}-server"]
    sleeps = [p for p in Cluster.pids_matching(cluster.tmp)
              if pid_cmdline(p).startswith(b"sleep")]
    assert len(sleeps) == 6, sleeps


def test_remove_keeps_or_deletes_volumes(cluster, tmp_path):
    spec = write(tmp_path / "rm.yml", """
name: rm
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo x > data/x && sleep 1000
        cpus: 0.1
        volume: {path: data, type: ROOT, size: 10}
""")
    cluster.deploy(spec)
    vol = cluster.volume_dir("rm", "p-0")
    out = cluster.cli("service", "remove", "rm", "--wait").stdout
    assert "keeping volumes of p-0 on node node-1" in out
    assert os.path.isdir(vol)
    assert cluster.api("GET", "/v1/services")[1] == []
    cluster.deploy(spec)
    cluster.cli("service", "remove", "rm", "--delete-volumes", "--wait")
    wait_for(lambda: not os.path.exists(vol), 30, what="volume deleted")


def test_unsupported_spec_is_refused(cluster):
    p = cluster.cli("service", "deploy", "-f",
                    os.path.join(REPO, "tests/fixtures/valid/028-unsupported-gpus.yml"), check=False)
    assert p.returncode == 1
    assert "not supported yet" in p.stderr
    assert cluster.api("GET", "/v1/services")[1] == []
