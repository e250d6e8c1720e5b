"""The fast-data pipeline example (issue 17): examples/pipeline.yml as
shipped, with a faster clock (options). A producer at a rate one consumer
cannot keep up with drives the consumer count up on the group's lag;
once it stops, the count comes back down, each consumer scaled in
drained first; every message produced is in PostgreSQL exactly once and
the stream has no pending entry left.
"""
import json
import os
import socket
import subprocess

import pytest

from holdfast_harness import Cluster, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(REPO, "examples", "pipeline.yml")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("pipeline"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def redis_cli(port, *args):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")


def field(lines, name):
    return lines[lines.index(name) + 1]


def psql(port, sql):
    p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-d", "postgres", "-At", "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def consumers(c):
    code, s = c.api("GET", "/v1/services/pipeline")
    assert code == 200, s
    return next(p for p in s["pod_types"] if p["name"] == "consumer")["count"]


def test_consumers_follow_the_lag_and_no_message_is_lost(cluster):
    c = cluster
    rport, pport = free_port(), free_port()
    c.deploy(SPEC, "-o", f"REDIS_PORT={rport}", "-o", f"PG_PORT={pport}",
             "-o", "INTERVAL=1s", "-o", "UP_COOLDOWN=2s", "-o", "DOWN_COOLDOWN=3s",
             "-o", "MAX_CONSUMERS=4", "-o", "WORK_MS=20", timeout=180)
    assert consumers(c) == 1
    total = 3000
    c.cli("-s", "pipeline", "plan", "start", "produce", "-p", "RATE=150", "-p", f"TOTAL={total}")
    seen = {1}
    lags = []

    def produced():
        seen.add(consumers(c))
        lags.append(int(field(redis_cli(rport, "XINFO", "GROUPS", "events"), "lag") or 0))
        return c.plan("pipeline", "produce").get("status") == "COMPLETE"
    wait_for(produced, 120, interval=0.5, what="the producer done")
    # One consumer stores ~50 a second: the lag passed 500 and consumers
    # were added, one step at a time.
    assert max(lags) > 500, lags
    assert max(seen) >= 3, seen
    # The producer stopped: the lag drains, the count returns to 1.
    wait_for(lambda: consumers(c) == 1 and [p["name"] for p in c.pods("pipeline")
                                            if p["name"].startswith("consumer-")] == ["consumer-0"],
             120, interval=0.5, what="back to one consumer")
    wait_for(lambda: psql(pport, "SELECT count(*) FROM messages") == str(total), 60,
             what="every message stored")
    assert psql(pport, "SELECT count(DISTINCT seq), min(seq), max(seq) FROM messages") == \
        f"{total}|1|{total}"
    groups = redis_cli(rport, "XINFO", "GROUPS", "events")
    assert field(groups, "pending") == "0" and field(groups, "lag") == "0", groups
    # The consumers scaled in left the group with nothing pending.
    assert field(groups, "consumers") == "1", groups
    assert redis_cli(rport, "XPENDING", "events", "workers")[0] == "0"
    # More than one consumer did the work, and each scale-in was drained.
    assert int(psql(pport, "SELECT count(DISTINCT consumer) FROM messages")) >= 2
    st = json.loads(c.cli("-s", "pipeline", "autoscale", "status", "--json").stdout)["pods"][0]
    ups, downs = st["actions"]["up"], st["actions"]["down"]
    assert ups >= 2 and downs == ups, st
    c.cli("service", "remove", "pipeline", "--wait", "--timeout", "120", timeout=150)
