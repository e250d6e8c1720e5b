"""Setting a pod type's count (issue 12, "set a pod's count"; the operation
issue 17's autoscaler calls): `holdfast pod scale` and
PUT/DELETE /v1/service/{svc}/pod-types/{pod}/count, through the real binary.

A count set over the spec's goes the way of an update: scale-out launches
the new instances, scale-in drains the highest indexes through their
decommission task; bad requests change nothing; the count survives a
server restart and updates that leave the spec's count alone, an update
that changes the spec's count wins, and a rollback brings back the
configuration with its count.
"""
import json
import urllib.request

import pytest

from holdfast_harness import Cluster, wait_for, write


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("podcount"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def spec(tmp_path, name, count, version="1"):
    """Pod type `a`: its server says which version it runs; its drain
    leaves a line in $MARKERS/<instance>, outside the instance's volume."""
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    return write(tmp_path / f"{name}-{count}-{version}.yml", f"""
name: {name}
pods:
  a:
    count: {count}
    allow-decommission: true
    volume: {{path: data, type: ROOT, size: 10}}
    tasks:
      server:
        goal: RUNNING
        cmd: echo $$ > data/pid && exec sleep 1000
        cpus: 0.1
        memory: 32
        env: {{VERSION: "{version}"}}
        readiness-check: {{cmd: test -s data/pid, interval: 0.3, timeout: 5}}
      decommission:
        goal: FINISH
        cmd: if kill -0 $(cat data/pid); then s=alive; else s=dead; fi; echo "drained $s" >> $MARKERS/$POD_NAME
        cpus: 0.1
        memory: 32
        env: {{MARKERS: "{markers}"}}
""")


def scale(c, svc, *args):
    return c.cli("-s", svc, "pod", "scale", *args, "--wait", "--timeout", "90", timeout=120)


def pod_type(c, svc, pod="a"):
    code, s = c.api("GET", f"/v1/services/{svc}")
    assert code == 200, s
    return next(p for p in s["pod_types"] if p["name"] == pod)


def running(c, svc):
    """instance -> its server's task id, for instances whose server runs."""
    out = {}
    for p in c.pods(svc):
        t = next(t for t in p["tasks"] if t["name"].endswith("-server"))
        if t["status"] == "RUNNING":
            out[p["name"]] = t["id"]
    return out


def raw_put(c, path, data):
    req = urllib.request.Request(c.url + path, data=data, method="PUT",
                                 headers={"Content-Type": "application/json", **c._auth()})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def markers(tmp_path, inst):
    p = tmp_path / "markers" / inst
    return p.read_text().split("\n")[:-1] if p.exists() else []


def test_scale_out_and_in_with_a_drain(cluster, tmp_path):
    c = cluster
    c.deploy(spec(tmp_path, "sc", 1))
    a0 = running(c, "sc")["a-0"]

    p = scale(c, "sc", "a", "3")
    assert "scaled a of sc: count 1 -> 3 (config 1 -> 2)" in p.stdout, p.stdout
    assert "add      a-1" in p.stdout and "add      a-2" in p.stdout, p.stdout
    assert sorted(running(c, "sc")) == ["a-0", "a-1", "a-2"]
    assert running(c, "sc")["a-0"] == a0, "a-0 was relaunched by a count change"
    assert pod_type(c, "sc") == {"name": "a", "count": 3, "spec_count": 1, "overridden": True}

    # Bad requests answer with the error list's names and change nothing.
    base = "/v1/service/sc/pod-types"
    code, e = c.api("PUT", f"{base}/nosuch/count", {"count": 2})
    assert (code, e["error"]) == (404, "not-found") and "nosuch" in e["message"], e
    code, e = c.api("PUT", f"{base}/a/count", {"count": -1})
    assert (code, e["error"]) == (400, "invalid"), e
    code, e = c.api("PUT", f"{base}/a/count", {"count": "2"})
    assert (code, e["error"]) == (400, "invalid"), e
    code, e = raw_put(c, f"{base}/a/count", b"{nope")
    assert (code, e["error"]) == (400, "bad-json"), e
    code, e = c.api("PUT", "/v1/service/nosuch/pod-types/a/count", {"count": 2})
    assert (code, e["error"]) == (404, "not-found"), e
    p = c.cli("-s", "sc", "pod", "scale", "nosuch", "2", check=False)
    assert p.returncode != 0 and "no pod type 'nosuch'" in p.stderr, (p.stdout, p.stderr)
    # The same count as now: no new configuration.
    code, d = c.api("PUT", f"{base}/a/count", {"count": 3})
    assert code == 200 and d["changed"] is False and d["from"] == "2" and d["to"] is None, d
    assert sorted(c.api("GET", "/v1/service/sc/configurations")[1]) == ["1", "2"]
    assert c.api("GET", "/v1/services/sc")[1]["config_id"] == "2"
    assert sorted(running(c, "sc")) == ["a-0", "a-1", "a-2"]

    # Scale-in: the highest indexes are drained while they run, then removed.
    p = scale(c, "sc", "a", "1")
    assert "scaled a of sc: count 3 -> 1 (config 2 -> 3)" in p.stdout, p.stdout
    wait_for(lambda: [x["name"] for x in c.pods("sc")] == ["a-0"], 60, what="a-1, a-2 removed")
    assert markers(tmp_path, "a-2") == ["drained alive"]
    assert markers(tmp_path, "a-1") == ["drained alive"]
    assert markers(tmp_path, "a-0") == []
    assert running(c, "sc") == {"a-0": a0}
    # The spec's count again: nothing is set over it.
    assert pod_type(c, "sc") == {"name": "a", "count": 1, "spec_count": 1, "overridden": False}


def test_count_survives_restart_and_updates_until_the_spec_changes_it(cluster, tmp_path):
    c = cluster
    c.deploy(spec(tmp_path, "keep", 1))
    p = c.cli("-s", "keep", "pod", "scale", "a", "2", "--json")
    d = json.loads(p.stdout)
    assert d["changed"] and (d["from"], d["to"], d["plan"]) == ("1", "2", "deploy"), d
    c.wait_plan("keep")
    wait_for(lambda: sorted(running(c, "keep")) == ["a-0", "a-1"], 60, what="a-1 running")

    # A restart of the server reads the count back from the store.
    c.kill_server()
    c.start_server()
    assert pod_type(c, "keep") == {"name": "a", "count": 2, "spec_count": 1, "overridden": True}
    assert sorted(running(c, "keep")) == ["a-0", "a-1"]

    # An update that changes something else keeps it, and says so.
    p = c.cli("service", "update", "keep", "-f", spec(tmp_path, "keep", 1, "2"),
              "--wait", "--timeout", "90", timeout=120)
    assert "count 2 kept" in p.stdout and "remove" not in p.stdout, p.stdout
    assert "relaunch a-0" in p.stdout and "relaunch a-1" in p.stdout, p.stdout
    assert pod_type(c, "keep")["count"] == 2 and pod_type(c, "keep")["overridden"]
    assert sorted(running(c, "keep")) == ["a-0", "a-1"]
    assert markers(tmp_path, "a-1") == []

    # An update that changes the spec's count wins: the count set is dropped.
    p = c.cli("service", "update", "keep", "-f", spec(tmp_path, "keep", 3, "2"),
              "--wait", "--timeout", "90", timeout=120)
    assert "count 2 set over the spec's 1 dropped: the spec's count changed to 3" in p.stdout, \
        p.stdout
    assert pod_type(c, "keep") == {"name": "a", "count": 3, "spec_count": 3, "overridden": False}
    wait_for(lambda: sorted(running(c, "keep")) == ["a-0", "a-1", "a-2"], 60, what="a-2")

    # A rollback goes back to the configuration before, with its count.
    c.cli("service", "rollback", "keep", "--wait", "--timeout", "90", timeout=120)
    assert pod_type(c, "keep") == {"name": "a", "count": 2, "spec_count": 1, "overridden": True}
    wait_for(lambda: [x["name"] for x in c.pods("keep")] == ["a-0", "a-1"], 60,
             what="a-2 removed by the rollback")
    assert markers(tmp_path, "a-2") == ["drained alive"]

    # --reset hands the count back to the spec; a second one changes nothing.
    p = scale(c, "keep", "a", "--reset")
    assert "count handed back to the spec (1)" in p.stdout, p.stdout
    wait_for(lambda: [x["name"] for x in c.pods("keep")] == ["a-0"], 60, what="a-1 removed")
    assert pod_type(c, "keep") == {"name": "a", "count": 1, "spec_count": 1, "overridden": False}
    p = c.cli("-s", "keep", "pod", "scale", "a", "--reset")
    assert "no change" in p.stdout, p.stdout
