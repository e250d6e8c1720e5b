"""The attach process's in-sync set and local fencing (src/volume/attach.h,
docs/design/volumes.md §6.2, §7.3), driven as the agent drives it: a
remote replica that fails makes writes wait (status.json asks to drop it)
until attach.json comes back without it (SIGHUP), then they go on; a
volume attached where one of its replicas is local first tells that
node's replica server its epoch, so an older attachment's writes to that
replica are refused."""
import json
import os
import signal
import subprocess
import time

from holdfast_harness import wait_for
from test_volume_repl import (KEY, SIZE, VID, WRITER, detach, env, read_json,  # noqa: F401
                              replica_files, start_attach, start_serve, two_serves)


def acked_count(path):
    try:
        with open(path) as f:
            return len(f.read().split())
    except OSError:
        return 0


def test_a_failed_remote_holds_writes_until_it_leaves_the_in_sync_set(env):  # noqa: F811
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=60000)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    log = os.path.join(d, "acked")
    writer = subprocess.Popen(["python3", "-c", WRITER, mnt, log], stdout=subprocess.PIPE,
                              text=True)
    procs.append(writer)
    wait_for(lambda: acked_count(log) > 50, 30, what="the writer's first commits")
    serves[1][0].kill()
    serves[1][0].wait()
    status = os.path.join(d, "a", "status.json")
    st = wait_for(lambda: read_json(status).get("isr_drop") and read_json(status), 15,
                  what="the request to drop r2")
    assert st["isr_drop"] == ["r2"] and st["state"] == "ready", st
    assert "node n2" in st["isr_why"], st
    # Writes wait: nothing more is acknowledged, and nothing fails.
    n = acked_count(log)
    time.sleep(1.5)
    assert acked_count(log) <= n + 1, "a write was acknowledged without r2 or its drop"
    assert writer.poll() is None, writer.stdout.read()
    # The server took r2 out: attach.json without it, then SIGHUP.
    cfg["remotes"] = [r for r in cfg["remotes"] if r["replica"] != "r2"]
    tmp = os.path.join(d, "a", "attach.json.new")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, os.path.join(d, "a", "attach.json"))
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: acked_count(log) > n + 50, 30, what="writes going on without r2")
    assert "isr_drop" not in read_json(status), read_json(status)
    writer.kill()
    writer.wait()
    detach(p, mnt)
    # The local replica and r1 hold the same bytes; r2 was left behind.
    local = cfg["replica"]
    r1 = replica_files(serves[0][2], "r1")[0]
    with open(local, "rb") as a, open(r1, "rb") as b:
        assert a.read() == b.read()


def test_a_local_attach_fences_an_older_attachment_through_its_server(env):  # noqa: F811
    """Failover onto a node holding a replica: the new attachment uses the
    replica's file directly, and first says HELLO at its epoch to that
    node's replica server; the old attachment (storage-less here, its
    only replica that server's) is FENCED from then on."""
    d, procs = env
    p1, st1, c1 = start_serve(d, procs, "n1", [
        {"id": VID, "replica": "r1", "size": SIZE, "key": KEY, "name": "svc-data-0"}])
    assert st1["state"] == "ready", st1
    serves = [(p1, st1, c1)]
    old, st_old, _ = start_attach(d, procs, "old", serves, local=False, fmt=True)
    assert st_old["state"] == "ready", st_old

    def dd(dev):
        return subprocess.run(["dd", "if=/dev/urandom", f"of={dev}", "bs=4096", "count=4",
                               "seek=100", "oflag=direct,sync"], capture_output=True, text=True)
    assert dd(st_old["device"]).returncode == 0
    data, meta = replica_files(c1, "r1")
    new, st_new, _ = start_attach(
        d, procs, "new", [], epoch=2, fmt=False, node="n1", replica=data, remotes=[],
        fence={"address": "127.0.0.1", "port": st1["port"], "replica": "r1"})
    assert st_new["state"] == "ready", st_new
    r = dd(st_old["device"])
    assert r.returncode != 0, r
    st = read_json(os.path.join(d, "old", "status.json"))
    assert "fenced" in st["message"] and "epoch 2" in st["message"], st
    assert "isr_drop" not in st, st
    assert dd(st_new["device"]).returncode == 0
    # The fence is not a write: an attach at an epoch the server has
    # passed fails before serving anything.
    again, st_again, _ = start_attach(
        d, procs, "again", [], epoch=1, fmt=False, node="n1", replica=data, remotes=[],
        fence={"address": "127.0.0.1", "port": st1["port"], "replica": "r1"})
    assert st_again["state"] == "failed" and "fenced" in st_again["message"], st_again
    detach(new)
    old.kill()
    old.wait()
