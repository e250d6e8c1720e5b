"""A consistency group across a service's volumes (src/volume/spool.h):
two volumes, each with its own attach process and DR stream, to standby
replicas of one group on site B's node server. The application writes a
counter to volume 1, waits for it to be durable, then writes the same
counter to volume 2, and between counters writes 4 MiB more to volume 1,
so volume 1's stream is always behind volume 2's. Applied as they came,
B's volume 2 would soon hold a counter volume 1 does not have yet; B
holds the group's writes back in spools and applies them up to the
volumes' common mark, so whatever B is promoted with, volume 2's counter
is never ahead of volume 1's.

What is checked: a failover (site A killed with -9 mid-write, B's
standbys promoted) leaves c2 <= c1 <= c2 + 1, also after B's own server
was killed with -9 and restarted while it spooled; a switchover (both
attach processes detached, which drains and ends each stream with a final
mark) leaves both standbys byte for byte equal to A's replicas. Then the
same through two clusters: a service with two volumes, `dr enable`, all of
site A killed, `dr failover` on B."""
import json
import os
import signal
import struct
import subprocess
import threading
import time

import pytest

from holdfast_harness import wait_for
from test_dr_volumes import sites  # noqa: F401  (clusters A and B)
from test_remotes import make_pki
from test_volume_repl import (KEY, SIZE, env, read_json,  # noqa: F401
                              run_attach, start_serve)

MiB = 1 << 20
VIDS = ("vol-g1", "vol-g2")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("drg-pki"))
    make_pki(d)
    return d


def serve_b(d, procs, pki, group="g-svc", port=0):
    """Site B: a standby replica of each volume, one group."""
    vols = []
    for i, vid in enumerate(VIDS):
        v = {"id": vid, "replica": f"rb{i + 1}", "size": SIZE, "key": KEY,
             "name": f"svc-data-{i}", "standby": True}
        if group:
            v["group"] = group
        vols.append(v)
    try:
        os.unlink(os.path.join(d, "siteb", "status.json"))  # a restart's
    except FileNotFoundError:
        pass
    p, st, cfg = start_serve(d, procs, "siteb", vols, dr={
        "listen": f"127.0.0.1:{port}", "tls_cert": f"{pki}/b-server.pem",
        "tls_key": f"{pki}/b-server.key", "tls_ca": f"{pki}/caA.pem"})
    assert st["state"] == "ready" and st["dr_port"] > 0, st
    return p, st, cfg


def b_file(cfg_b, i):
    return os.path.join(cfg_b["pool"], "replicas", VIDS[i], f"rb{i + 1}", "data")


def attach_a(d, procs, pki, st_b, i):
    name = f"a{i + 1}"
    cfg = {"volume": f"svc-data-{i}", "id": VIDS[i], "epoch": 1, "size": SIZE,
           "replica": os.path.join(d, f"{name}-replica"), "format": False, "node": "na",
           "key": KEY,
           "dr": {"address": "127.0.0.1", "port": st_b["dr_port"], "replica": f"rb{i + 1}",
                  "tls_ca": f"{pki}/caB.pem", "tls_cert": f"{pki}/a-client.pem",
                  "tls_key": f"{pki}/a-client.key",
                  "journal": os.path.join(d, f"{name}-journal")}}
    p, st = run_attach(d, procs, name, cfg, 60)
    assert st["state"] == "ready", st
    return p, st, cfg


def applied_time(d):
    """The older of the two standbys' marks, as A's streams last heard."""
    ts = [(read_json(os.path.join(d, f"a{i + 1}", "status.json")).get("dr") or {})
          .get("applied_time", 0) for i in range(2)]
    return min(ts)


def streaming(d, i):
    s = read_json(os.path.join(d, f"a{i + 1}", "status.json")).get("dr") or {}
    return s.get("state") == "streaming" and s.get("lag_bytes") == 0 and s.get("consistent")


def counter_block(i):
    return struct.pack("<Q", i) * 512


def counter_of(path):
    with open(path, "rb") as f:
        b = f.read(4096)
    return struct.unpack_from("<Q", b, 0)[0] if len(b) == 4096 else 0


class Writer(threading.Thread):
    """c to volume 1 (synced), then c to volume 2 (synced), and 4 MiB
    more to volume 1 before the next: until stopped or a write fails."""

    def __init__(self, dev1, dev2):
        super().__init__(daemon=True)
        self.devs = (dev1, dev2)
        self.done = 0
        self.times = {}  # counter: when volume 2's copy was durable
        self.stop = threading.Event()

    def run(self):
        blob = os.urandom(4 * MiB)
        try:
            fd1 = os.open(self.devs[0], os.O_WRONLY)
            fd2 = os.open(self.devs[1], os.O_WRONLY)
        except OSError:
            return
        try:
            c = 0
            while not self.stop.is_set():
                c += 1
                os.pwrite(fd1, blob, (8 + (c % 16) * 4) * MiB)
                os.pwrite(fd1, counter_block(c), 0)
                os.fsync(fd1)
                os.pwrite(fd2, counter_block(c), 0)
                os.fsync(fd2)
                self.times[c] = time.time_ns()
                self.done = c
        except OSError:
            pass
        finally:
            for fd in (fd1, fd2):
                try:
                    os.close(fd)
                except OSError:
                    pass


def promote(d):
    """B's standbys become plain replicas (as a failover's orders make
    them): serve.json rewritten, SIGHUP, the new set applied."""
    sdir = os.path.join(d, "siteb")
    gen = read_json(os.path.join(sdir, "status.json"))["generation"]
    cfg = read_json(os.path.join(sdir, "serve.json"))
    cfg["volumes"] = [{k: v for k, v in vol.items() if k not in ("standby", "group")}
                      for vol in cfg["volumes"]]
    with open(os.path.join(sdir, "serve.json"), "w") as f:
        json.dump(cfg, f)
    pid = read_json(os.path.join(sdir, "status.json"))["pid"]
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: read_json(os.path.join(sdir, "status.json")).get("generation", 0) > gen,
             60, what="the promotion applied")


def spooled(d):
    st = read_json(os.path.join(d, "siteb", "status.json"))
    return {m["id"]: m.get("spooled") for m in st.get("marks", [])}


def start_both(d, procs, pki, st_b):
    a = [attach_a(d, procs, pki, st_b, i) for i in range(2)]
    for i in range(2):
        wait_for(lambda i=i: streaming(d, i), 90, what=f"volume {i + 1}'s initial sync")
    return a


def test_a_failover_finds_the_volumes_at_one_cut(env, pki):
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    (p1, s1, _), (p2, s2, _) = start_both(d, procs, pki, st_b)
    w = Writer(s1["device"], s2["device"])
    w.start()
    wait_for(lambda: w.done >= 15, 120, what="15 counters written")
    # B spools: volume 2's writes wait for volume 1's stream.
    wait_for(lambda: (spooled(d).get(VIDS[1]) or 0) > 0, 30, what="volume 2 spooling")
    # B's own server dies mid-stream and comes back: spools are kept.
    pb.kill()
    pb.wait()
    pb, st_b2, _ = serve_b(d, procs, pki, port=st_b["dr_port"])
    wait_for(lambda: w.done >= 30, 120, what="30 counters written")
    # Both streams marked past some counters since B came back.
    t30 = w.times[30]
    wait_for(lambda: applied_time(d) > t30, 120, what="marks past counter 30")
    # Site A dies at once.
    t_marked = applied_time(d)
    for p in (p1, p2):
        p.kill()
    for p in (p1, p2):
        p.wait()
    w.stop.set()
    w.join(30)
    last = w.done
    promote(d)
    c1, c2 = counter_of(b_file(cfg_b, 0)), counter_of(b_file(cfg_b, 1))
    # One cut: volume 2 never ahead of volume 1, at most one behind.
    assert c2 <= c1 <= c2 + 1, (c1, c2, last)
    # Every counter durable before the marks A last heard of is there.
    need = max(c for c, t in w.times.items() if t < t_marked)
    assert need >= 30 and c2 >= need and c1 <= last + 1, (c1, c2, need, last)
    pool = os.path.join(cfg_b["pool"], "replicas")
    left = [os.path.join(r, f) for r, _, fs in os.walk(pool) for f in fs if f.startswith("spool")]
    assert not left, left


def test_a_switchover_ends_with_both_volumes_whole(env, pki):
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    (p1, s1, c1cfg), (p2, s2, c2cfg) = start_both(d, procs, pki, st_b)
    w = Writer(s1["device"], s2["device"])
    w.start()
    wait_for(lambda: w.done >= 10, 120, what="10 counters written")
    w.stop.set()
    w.join(60)
    last = w.done
    # Detached (a switchover's drain): each stream ends with a final mark.
    for p in (p1, p2):
        p.send_signal(signal.SIGTERM)
    for p in (p1, p2):
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    for i in range(2):
        st = read_json(os.path.join(d, f"a{i + 1}", "status.json"))
        assert st["dr"]["journal_bytes"] == 0, st
    promote(d)
    assert counter_of(b_file(cfg_b, 0)) == last
    assert counter_of(b_file(cfg_b, 1)) == last
    for i, cfg in enumerate((c1cfg, c2cfg)):
        with open(cfg["replica"], "rb") as fa, open(b_file(cfg_b, i), "rb") as fb:
            while True:
                x, y = fa.read(MiB), fb.read(MiB)
                assert x == y, f"volume {i + 1} differs at {fa.tell()}"
                if not x:
                    break


# ---- the same, through both clusters -------------------------------------

GROUP_SPEC = """
name: twovol
pods:
  app:
    count: 1
    external-volumes:
      log:
        type: DOCKER
        volume-mode: RW
        container-path: log
        volume-name: twolog
        driver-name: holdfast
        driver-options: size=1;repl=1
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        volume-name: twodata
        driver-name: holdfast
        driver-options: size=1;repl=1
    tasks:
      writer:
        goal: RUNNING
        cmd: >-
          tail -n 1 log/c > first 2>/dev/null; tail -n 1 data/c >> first 2>/dev/null;
          i=0; while true; do i=$((i+1));
          head -c 1048576 /dev/urandom > log/bulk;
          echo $i >> log/c; sync log/c; echo $i >> data/c; sync data/c; done
        cpus: 0.2
        memory: 64
"""


def test_a_service_with_two_volumes_fails_over_at_one_cut(sites):
    """Through both clusters: B's server places the two standby replicas
    on one node and orders them as one group (`dr status` on B says so);
    A's task appends i to log/c (synced), then i to data/c (synced), with
    1 MiB more to the log volume each time. After all of A is killed,
    `dr failover` starts the task on B, which first records the last line
    of each file: data's is never past log's, and log's at most one
    past data's."""
    a, b, d, tmp = sites
    spec = tmp / "twovol.yml"
    spec.write_text(GROUP_SPEC)
    a.deploy(str(spec), timeout=240)
    a.cli("-s", "twovol", "dr", "enable", "--to", "b", "--wait", "--timeout", "200",
          timeout=240)

    def grouped():
        code, st = b.api("GET", "/v1/service/twovol/dr")
        return (code == 200 and st.get("consistency_group") and len(st["volumes"]) == 2 and
                all(v.get("applied_time") and "spooled" in v for v in st["volumes"]) and st)
    st = wait_for(grouped, 120, what="B's group reported")
    assert {v["node"] for v in st["volumes"]} == {"b-node-1"}, st
    text = b.cli("-s", "twovol", "dr", "status").stdout
    assert "consistency group" in text, text
    time.sleep(5)  # the task writes on
    a.kill_server()
    a.kill_agent()
    subprocess.run(["pkill", "-9", "-f", f"holdfast-volume attach {a.agent_data}"], check=False)
    a.kill_tasks()
    out = json.loads(b.cli("-s", "twovol", "dr", "failover", "--yes", "--json").stdout)
    assert out["deployed"] and out["last_write_applied"], out

    def first():
        p = b.cli("-s", "twovol", "task", "exec", "app-0-writer", "--", "cat", "first",
                  check=False)
        return p.returncode == 0 and len(p.stdout.split()) == 2 and p.stdout.split()
    c1, c2 = (int(x) for x in wait_for(first, 180, what="the task on B"))
    print(f"\nDR-GROUP: log {c1}, data {c2}")
    assert c2 >= 1 and c2 <= c1 <= c2 + 1, (c1, c2)
