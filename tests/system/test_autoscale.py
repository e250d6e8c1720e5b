"""Autoscaling (issue 17): a pod type's `autoscale:` policy, evaluated by
the server's autoscaler, through the real binary.

The metric is a command run in the pod's task that prints a number the
test writes into a file: the count rises step by step to max while the
value is high (each step after the up cooldown, each new instance ready
before the next), holds inside the band, falls to min after the value
drops (after the down cooldown); an oscillating value inside the band
never changes it; a failing metric changes nothing and is an event. The
policy owns the count (pod scale and updates that change it are
refused), dry-run policies only log, HTTP and target-per-instance
policies work, every decision is visible (events, `autoscale status`,
/metrics), and a bad policy is a spec error at file:line:col.
"""
import calendar
import http.server
import json
import os
import re
import threading
import time
import urllib.request

import pytest

from holdfast_harness import Cluster, wait_for, write


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("autoscale"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def spec(tmp_path, name, *, value_file=None, policy=None, count=1, drain="true",
         extra_task=""):
    """Pod type `worker` with the policy given (YAML under autoscale:,
    indented 6), its metric the number in value_file by default."""
    if policy is None:
        policy = f"""
      min: 1
      max: 3
      interval: 200ms
      metric:
        command: cat {value_file}
      up: {{above: 500, step: 1, cooldown: 1s}}
      down: {{below: 100, step: 1, cooldown: 2s}}"""
    return write(tmp_path / f"{name}.yml", f"""
name: {name}
pods:
  worker:
    count: {count}
    autoscale:{policy}
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 100000
        cpus: 0.05
        memory: 32
        readiness-check: {{cmd: "true", interval: 0.2, timeout: 5}}
      decommission:
        goal: FINISH
        cmd: {drain}
        cpus: 0.05
        memory: 32
{extra_task}""")


def set_value(path, v):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{v}\n")
    os.replace(tmp, path)


def value_file(tmp_path, name, v):
    d = tmp_path / "metrics"
    d.mkdir(exist_ok=True)
    f = d / name
    set_value(f, v)
    return f


def count(c, svc):
    code, s = c.api("GET", f"/v1/services/{svc}")
    assert code == 200, s
    return next(p for p in s["pod_types"] if p["name"] == "worker")["count"]


def instances(c, svc):
    return sorted(p["name"] for p in c.pods(svc))


def events(c, svc):
    req = urllib.request.Request(
        c.url + f"/v1/events?follow=false&service={svc}", headers=c._auth())
    with urllib.request.urlopen(req, timeout=20) as r:
        text = r.read().decode()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def scalings(c, svc):
    """(unix s, before, after) of each change the autoscaler made."""
    out = []
    for e in events(c, svc):
        if e["who"] == "autoscaler" and e["kind"] == "autoscale" and e["before"] and \
                e["after"] and e["before"] != e["after"]:
            t = calendar.timegm(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S"))
            out.append((t + int(e["time"][20:23]) / 1000, int(e["before"]), int(e["after"])))
    return out


def ready_count(c, svc):
    return sum(1 for p in c.pods(svc) for t in p["tasks"]
               if t["name"].endswith("-server") and t["status"] == "RUNNING")


def test_count_rises_to_max_holds_in_band_and_falls_to_min(cluster, tmp_path):
    c = cluster
    vf = value_file(tmp_path, "rise", 300)
    c.deploy(spec(tmp_path, "rise", value_file=vf))
    time.sleep(1.5)
    assert count(c, "rise") == 1  # inside the band: nothing
    set_value(vf, 1000)
    wait_for(lambda: count(c, "rise") == 3 and ready_count(c, "rise") == 3, 60,
             what="the count at max")
    ups = scalings(c, "rise")
    assert [(b, a) for _, b, a in ups] == [(1, 2), (2, 3)], ups
    # The up cooldown (1 s) between the two steps (counted between the
    # evaluations that decided them: the events come once each change is
    # stored, a few tens of ms later), and the second waited for worker-1
    # to be ready. Without the cooldown they would be 0.2 s apart.
    assert ups[1][0] - ups[0][0] >= 0.8, ups
    # At max with the value high: it holds, and says so once.
    time.sleep(1.5)
    assert count(c, "rise") == 3
    held = [e for e in events(c, "rise") if e["who"] == "autoscaler" and "at max" in (e["why"] or "")]
    assert len(held) == 1, held
    # Back inside the band: it holds.
    set_value(vf, 300)
    time.sleep(3)
    assert count(c, "rise") == 3 and len(scalings(c, "rise")) == 2
    # Low: down to min, a step per down cooldown (2 s), counted from the
    # last change too.
    set_value(vf, 10)
    t_low = time.time()
    wait_for(lambda: count(c, "rise") == 1 and instances(c, "rise") == ["worker-0"], 60,
             what="the count back at min")
    downs = scalings(c, "rise")[2:]
    assert [(b, a) for _, b, a in downs] == [(3, 2), (2, 1)], downs
    assert downs[1][0] - downs[0][0] >= 1.8, downs
    assert downs[0][0] >= t_low - 0.5
    # The changes went through the service's configuration, as pod scale's do.
    whys = [e["why"] for e in events(c, "rise") if e["kind"] == "service" and e["who"] == "autoscaler"]
    assert len(whys) == 4 and all("autoscale:" in w for w in whys), whys
    assert "1000 above 500" in whys[0] and "10 below 100" in whys[3], whys
    c.cli("service", "remove", "rise", "--wait", "--timeout", "60", timeout=90)


def test_an_oscillating_value_inside_the_band_changes_nothing(cluster, tmp_path):
    c = cluster
    vf = value_file(tmp_path, "osc", 150)
    c.deploy(spec(tmp_path, "osc", value_file=vf, count=2))
    end = time.time() + 5
    i = 0
    while time.time() < end:
        set_value(vf, (120, 480, 101, 499)[i % 4])
        i += 1
        time.sleep(0.15)
    assert count(c, "osc") == 2
    assert scalings(c, "osc") == []
    said = [e["why"] for e in events(c, "osc") if e["who"] == "autoscaler"]
    assert not said, said
    c.cli("service", "remove", "osc", "--wait", "--timeout", "60", timeout=90)


def test_a_failing_metric_changes_nothing_and_is_an_event(cluster, tmp_path):
    c = cluster
    vf = value_file(tmp_path, "fail", 300)
    c.deploy(spec(tmp_path, "fail", value_file=vf, count=2))
    # No number, then a command that fails: neither scales; each is said.
    set_value(vf, "no number here")
    wait_for(lambda: any("printed no number" in (e["why"] or "") for e in events(c, "fail")), 20,
             what="the metric error event")
    os.unlink(vf)
    wait_for(lambda: any("exited with status" in (e["why"] or "") for e in events(c, "fail")), 20,
             what="the failing command's event")
    time.sleep(1)
    assert count(c, "fail") == 2 and scalings(c, "fail") == []
    st = c.api("GET", "/v1/service/fail/autoscale")[1]["pods"][0]
    assert st["error"] and "exited with status" in st["error"], st
    assert st["value"] is None
    # Repeats of one error are one event.
    errs = [e for e in events(c, "fail") if "exited with status" in (e["why"] or "")]
    assert len(errs) == 1, errs
    m = urllib.request.urlopen(urllib.request.Request(c.url + "/metrics", headers=c._auth())).read().decode()
    errors = re.search(r'holdfast_autoscale_metric_errors_total\{service="fail",pod="worker"\} (\d+)', m)
    assert errors and int(errors.group(1)) >= 3, m[-2000:]
    # The value back: it reads again (a low one scales in to min, after
    # the 2 s cooldown).
    set_value(vf, 10)
    wait_for(lambda: count(c, "fail") == 1, 30, what="scale-in once the metric reads")
    c.cli("service", "remove", "fail", "--wait", "--timeout", "60", timeout=90)


def test_the_policy_owns_the_count(cluster, tmp_path):
    c = cluster
    vf = value_file(tmp_path, "own", 300)
    f = c.deploy(spec(tmp_path, "own", value_file=vf, count=2)) and tmp_path / "own.yml"
    p = c.cli("-s", "own", "pod", "scale", "worker", "3", check=False)
    assert p.returncode != 0 and "autoscale" in p.stderr, (p.stdout, p.stderr)
    p = c.cli("-s", "own", "pod", "scale", "worker", "--reset", check=False)
    assert p.returncode != 0 and "autoscale" in p.stderr, (p.stdout, p.stderr)
    # An update that changes `count` is refused; one that changes the
    # bounds is taken, and the count follows them.
    text = open(f).read()
    write(tmp_path / "own-count.yml", text.replace("count: 2", "count: 3"))
    p = c.cli("service", "update", "own", "-f", str(tmp_path / "own-count.yml"), check=False)
    assert p.returncode != 0 and "autoscale" in (p.stderr + p.stdout), (p.stdout, p.stderr)
    assert count(c, "own") == 2
    write(tmp_path / "own-max.yml", text.replace("max: 3", "max: 1"))
    c.cli("service", "update", "own", "-f", str(tmp_path / "own-max.yml"))
    wait_for(lambda: count(c, "own") == 1 and instances(c, "own") == ["worker-0"], 30,
             what="the count within the new max")
    assert any("outside min 1 and max 1" in (e["why"] or "") for e in events(c, "own"))
    c.cli("service", "remove", "own", "--wait", "--timeout", "60", timeout=90)


def test_a_dry_run_policy_only_says_what_it_would_do(cluster, tmp_path):
    c = cluster
    vf = value_file(tmp_path, "dry", 1000)
    policy = f"""
      min: 1
      max: 3
      interval: 200ms
      dry-run: true
      metric: {{command: cat {vf}}}
      up: {{above: 500}}"""
    c.deploy(spec(tmp_path, "dry", policy=policy))
    wait_for(lambda: any("dry run: would scale worker 1 -> 2" in (e["why"] or "")
                         for e in events(c, "dry")), 20, what="the dry run's event")
    time.sleep(0.5)
    assert count(c, "dry") == 1
    # The count is still the operator's.
    c.cli("-s", "dry", "pod", "scale", "worker", "2", "--wait", "--timeout", "60")
    assert count(c, "dry") == 2
    c.cli("service", "remove", "dry", "--wait", "--timeout", "60", timeout=90)


class _Metric(http.server.BaseHTTPRequestHandler):
    value = 0

    def do_GET(self):
        body = json.dumps({"queue": {"depth": _Metric.value, "name": "jobs"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_an_http_metric_and_a_target_per_instance(cluster, tmp_path):
    c = cluster
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metric)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _Metric.value = 150
        policy = f"""
      min: 1
      max: 5
      interval: 200ms
      metric:
        http: {{url: "http://127.0.0.1:{srv.server_port}/stats", path: queue.depth}}
      target: 100
      tolerance: 0.1
      up: {{cooldown: 0s}}
      down: {{cooldown: 0s}}"""
        c.deploy(spec(tmp_path, "tgt", policy=policy))
        # 150 for 1 is 1.5 each: ceil(150 / 100) = 2.
        wait_for(lambda: count(c, "tgt") == 2, 30, what="2 instances for 150")
        # 420: 5 (at most max, here 5); in one step (a target needs no steps).
        _Metric.value = 420
        wait_for(lambda: count(c, "tgt") == 5 and ready_count(c, "tgt") == 5, 60,
                 what="5 instances for 420")
        assert (2, 5) in [(b, a) for _, b, a in scalings(c, "tgt")]
        # 520 for 5 is 104 each: inside the tolerance, no change.
        _Metric.value = 520
        time.sleep(1.5)
        assert count(c, "tgt") == 5
        _Metric.value = 90
        wait_for(lambda: count(c, "tgt") == 1, 60, what="1 instance for 90")
        out = c.cli("-s", "tgt", "autoscale", "status").stdout
        assert "worker: count 1, min 1, max 5" in out, out
        assert "target 100 per instance" in out and "value         90" in out, out
        j = json.loads(c.cli("-s", "tgt", "autoscale", "status", "--json").stdout)
        p = j["pods"][0]
        assert p["policy"]["metric"]["http"]["path"] == "queue.depth", p
        assert p["value"] == 90 and p["history"][-1]["value"] == 90, p
        m = urllib.request.urlopen(urllib.request.Request(c.url + "/metrics", headers=c._auth())).read().decode()
        assert 'holdfast_autoscale_count{service="tgt",pod="worker"} 1' in m
        assert 'holdfast_autoscale_value{service="tgt",pod="worker"} 90' in m
        assert re.search(r'holdfast_autoscale_actions_total\{service="tgt",pod="worker",direction="up"\} [1-9]', m)
        c.cli("service", "remove", "tgt", "--wait", "--timeout", "60", timeout=90)
    finally:
        srv.shutdown()


def test_a_bad_policy_is_a_spec_error_with_its_position(tmp_path):
    from holdfast_harness import BIN
    import subprocess
    f = write(tmp_path / "bad.yml", """\
name: bad
pods:
  worker:
    count: 1
    autoscale:
      min: 4
      max: 2
      interval: 15s
      metric: {command: "echo 1", http: "http://x/"}
      up: {above: 10, stepp: 1}
      down: {below: 20}
    tasks:
      server: {goal: RUNNING, cmd: sleep 10, cpus: 0.1, memory: 32}
""")
    p = subprocess.run([BIN, "spec", "validate", str(f)], capture_output=True, text=True)
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = p.stderr
    assert re.search(rf"{re.escape(str(f))}:7:\d+: error: pods\.worker\.autoscale\.max: 'max' \(2\) is less than 'min' \(4\)", err), err
    assert re.search(r":9:\d+: error: pods\.worker\.autoscale\.metric: a metric has one source", err), err
    assert re.search(r":10:\d+: error: pods\.worker\.autoscale\.up\.stepp: unknown key 'stepp' \(did you mean 'step'\?\)", err), err
    # Said where down.below is written.
    assert re.search(r":11:21: error: pods\.worker\.autoscale\.down\.below: down\.below \(20\) must be less than up\.above \(10\)", err), err


def test_a_server_killed_during_a_scale_in_leaves_no_duplicate_and_no_half_drain(tmp_path):
    """kill -9 of the server while the autoscaler's scale-in drains an
    instance: after the restart the drain is not run twice, the instance
    is removed once drained, and the count goes on to min; no instance is
    left twice or half-drained."""
    c = Cluster(tmp_path / "cl")
    c.start()
    try:
        vf = value_file(tmp_path, "kill", 300)
        marks = tmp_path / "marks"
        marks.mkdir()
        drain = f"echo start >> {marks}/$POD_NAME; sleep 3; echo done >> {marks}/$POD_NAME"
        policy = f"""
      min: 1
      max: 3
      interval: 200ms
      metric: {{command: cat {vf}}}
      up: {{above: 500}}
      down: {{below: 100, cooldown: 1s}}"""
        c.deploy(spec(tmp_path, "kill", policy=policy, count=3, drain=f'"{drain}"'))
        assert instances(c, "kill") == ["worker-0", "worker-1", "worker-2"]
        set_value(vf, 10)
        wait_for(lambda: os.path.exists(marks / "worker-2"), 30, what="worker-2's drain started")
        c.kill_server()
        c.start_server()
        wait_for(lambda: count(c, "kill") == 1 and instances(c, "kill") == ["worker-0"], 90,
                 what="scaled in to min after the restart")
        for inst in ("worker-2", "worker-1"):
            assert open(marks / inst).read().split() == ["start", "done"], inst
        assert not os.path.exists(marks / "worker-0")
        # Nothing left of the removed instances on the node.
        pods = c.pods("kill")
        assert [p["name"] for p in pods] == ["worker-0"]
        assert all(t["status"] == "RUNNING" for t in pods[0]["tasks"] if t["name"].endswith("server"))
        time.sleep(1.5)
        assert count(c, "kill") == 1
        c.cli("service", "remove", "kill", "--wait", "--timeout", "60", timeout=90)
    finally:
        c.stop()


class _Exposition(http.server.BaseHTTPRequestHandler):
    value = 0

    def do_GET(self):
        body = (f"# TYPE jobs_waiting gauge\njobs_waiting{{queue=\"a\"}} {_Exposition.value}\n"
                "jobs_waiting{queue=\"b\"} 0\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_a_prometheus_query(cluster, tmp_path):
    """A Prometheus server (Debian's) scrapes an exposition the test
    controls; the policy's query sums it. A query with no series is an
    error that changes nothing."""
    import socket
    import subprocess
    c = cluster
    exp = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exposition)
    threading.Thread(target=exp.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        pport = s.getsockname()[1]
    cfg = write(tmp_path / "prometheus.yml", f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: jobs
    static_configs: [{{targets: ["127.0.0.1:{exp.server_port}"]}}]
""")
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path}/tsdb",
         f"--web.listen-address=127.0.0.1:{pport}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    url = f"http://127.0.0.1:{pport}"

    def answers():
        try:
            q = urllib.request.urlopen(url + "/api/v1/query?query=sum(jobs_waiting)", timeout=2)
            return json.loads(q.read())["data"]["result"]
        except Exception:
            return None
    try:
        _Exposition.value = 5
        wait_for(answers, 60, what="Prometheus scraping the exposition")
        policy = f"""
      min: 1
      max: 3
      interval: 300ms
      metric:
        prometheus: {{url: "{url}", query: "sum(jobs_waiting)"}}
      up: {{above: 100}}
      down: {{below: 10, cooldown: 0s}}"""
        c.deploy(spec(tmp_path, "prom", policy=policy))
        _Exposition.value = 500
        wait_for(lambda: count(c, "prom") == 3, 60, what="scaled out on the query")
        whys = [e["why"] for e in events(c, "prom") if e["kind"] == "autoscale" and e["after"]]
        assert any("500 above 100" in w for w in whys), whys
        _Exposition.value = 2
        wait_for(lambda: count(c, "prom") == 1, 60, what="scaled in on the query")
        # A query with no series: an error, nothing moves.
        write(tmp_path / "prom2.yml", open(tmp_path / "prom.yml").read().replace(
            "sum(jobs_waiting)", "jobs_nowhere"))
        c.cli("service", "update", "prom", "-f", str(tmp_path / "prom2.yml"))
        _Exposition.value = 500
        wait_for(lambda: any("no series" in (e["why"] or "") for e in events(c, "prom")), 30,
                 what="the empty query's event")
        time.sleep(2.5)  # a few Prometheus scrapes of 500
        assert count(c, "prom") == 1
        c.cli("service", "remove", "prom", "--wait", "--timeout", "60", timeout=90)
    finally:
        prom.terminate()
        prom.wait(30)
        exp.shutdown()


def test_the_tasks_own_metrics(cluster, tmp_path):
    """task-metrics: each running instance's exposition on its port; the
    series of the sample are summed, then the instances'; a target per
    instance sets the count."""
    c = cluster
    vf = value_file(tmp_path, "tm", 25)
    extra = f"""      web:
        goal: RUNNING
        cpus: 0.05
        memory: 64
        ports: {{metrics: {{port: 0, env-key: METRICS_PORT}}}}
        cmd: |
          mkdir -p srv
          while :; do
            v=0; [ "$POD_INSTANCE_INDEX" = 0 ] && v=$(cat {vf})
            printf 'queue_depth{{q="a"}} %s\\nqueue_depth{{q="b"}} 0\\n' "$v" > srv/m.tmp && mv srv/m.tmp srv/metrics
            sleep 0.2
          done &
          exec /usr/bin/python3 -m http.server "$METRICS_PORT" --bind 0.0.0.0 --directory srv
"""
    policy = """
      min: 1
      max: 4
      interval: 300ms
      metric:
        task-metrics: {port: metrics, name: queue_depth, path: /metrics, aggregate: sum}
      target: 10
      up: {cooldown: 0s}
      down: {cooldown: 0s}"""
    c.deploy(spec(tmp_path, "tm", policy=policy, extra_task=extra))
    wait_for(lambda: count(c, "tm") == 3, 60, what="3 instances for 25 at 10 each")
    set_value(vf, 5)
    wait_for(lambda: count(c, "tm") == 1, 60, what="1 instance for 5")
    st = c.api("GET", "/v1/service/tm/autoscale")[1]["pods"][0]
    assert st["value"] == 5, st
    c.cli("service", "remove", "tm", "--wait", "--timeout", "60", timeout=90)


def test_no_room_for_more_holds_and_does_not_block_scale_in(cluster, tmp_path):
    """Instances of 0.9 cpus on the harness node (2 cpus): the third one
    cannot be placed. The autoscaler says so and adds no more; once the
    value falls, scale-in goes ahead (the unplaced one first)."""
    c = cluster
    vf = value_file(tmp_path, "room", 300)
    f = write(tmp_path / "room.yml", f"""
name: room
pods:
  worker:
    count: 1
    autoscale:
      min: 1
      max: 4
      interval: 200ms
      metric: {{command: cat {vf}}}
      up: {{above: 500}}
      down: {{below: 100, cooldown: 0s}}
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 100000
        cpus: 0.9
        memory: 32
""")
    c.deploy(str(f))
    set_value(vf, 1000)
    wait_for(lambda: count(c, "room") == 3, 60, what="a third instance asked for")
    wait_for(lambda: any("no room for more" in (e["why"] or "") for e in events(c, "room")), 30,
             what="the no-room hold")
    time.sleep(1.5)
    assert count(c, "room") == 3
    assert ready_count(c, "room") == 2
    set_value(vf, 10)
    wait_for(lambda: count(c, "room") == 1 and instances(c, "room") == ["worker-0"], 60,
             what="scaled in past the unplaced instance")
    c.cli("service", "remove", "room", "--wait", "--timeout", "60", timeout=90)
