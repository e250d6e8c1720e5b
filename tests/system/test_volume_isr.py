"""The attach process's in-sync set and local fencing (src/volume/attach.h,
docs/design/volumes.md §6.2, §7.3), driven as the agent drives it: a
remote replica that fails makes writes wait (status.json asks to drop it)
until attach.json comes back without it (SIGHUP), then they go on; a
volume attached where one of its replicas is local first tells that
node's replica server its epoch, so an older attachment's writes to that
replica are refused."""
import errno
import filecmp
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

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
    server_drops(d, p, cfg, "r2")
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


def test_each_failure_gets_its_own_wait_for_the_drop(env):  # noqa: F811
    """The wait for a drop (isr_wait_ms) starts at each failure: a remote
    that fails long after another one's drop still holds the write until
    the server takes it out, instead of failing it with EIO at once."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=3000, fmt=False)
    assert st["state"] == "ready", st
    dev = st["device"]
    status = os.path.join(d, "a", "status.json")
    for k, victim in enumerate(("r2", "r1")):
        serves[1 - k][0].kill()
        serves[1 - k][0].wait()
        w = dd_blocks(dev, 100 * (k + 1), 2)
        wait_for(lambda: read_json(status).get("isr_drop") == [victim], 15,
                 what=f"the drop request for {victim}")
        time.sleep(0.5)
        assert w.poll() is None, f"the write failed before {victim}'s drop: {w.stderr.read()}"
        server_drops(d, p, cfg, victim)
        assert w.wait(timeout=30) == 0, w.stderr.read()
        # Past the first failure's deadline before the next one.
        time.sleep(3.5)
    detach(p)


def test_a_silent_remote_is_found_while_the_volume_is_idle(env):  # noqa: F811
    """Keepalives: a remote that stops answering (its server stopped, its
    connection open) while nothing writes is found dead within the answer
    timeout of a PING, and status.json asks for its drop, before any write
    needs it."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=60000, fmt=False)
    assert st["state"] == "ready", st
    status = os.path.join(d, "a", "status.json")
    time.sleep(2.5)  # idle, every remote answering its PINGs
    assert "isr_drop" not in read_json(status), read_json(status)
    serves[1][0].send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st = wait_for(lambda: read_json(status).get("isr_drop") and read_json(status), 15,
                      what="the drop request for the silent r2")
        assert st["isr_drop"] == ["r2"] and "no answer" in st["isr_why"], st
        assert time.monotonic() - t0 < 8, "found later than a PING's timeout allows"
    finally:
        serves[1][0].send_signal(signal.SIGCONT)
    # The server takes it out; r1, alive, is still pinged and kept.
    server_drops(d, p, cfg, "r2")
    wait_for(lambda: "isr_drop" not in read_json(status), 10, what="r2 dropped")
    time.sleep(2.5)
    assert "isr_drop" not in read_json(status), read_json(status)
    assert dd_blocks(st["device"], 10, 2).wait() == 0
    detach(p)


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


def put_attach_json(d, name, cfg):
    tmp = os.path.join(d, name, "attach.json.new")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, os.path.join(d, name, "attach.json"))


def server_drops(d, p, cfg, *replicas, remotes=None):
    """What the agent does once the server took replicas out of the
    in-sync set: attach.json without them (of remotes, by default the
    current ones), then SIGHUP."""
    cfg["remotes"] = [r for r in (remotes if remotes is not None else cfg["remotes"])
                      if r["replica"] not in replicas]
    put_attach_json(d, "a", cfg)
    p.send_signal(signal.SIGHUP)


def dd_blocks(dev, seek, count):
    """count 4 KiB blocks of random bytes at block seek, direct and synced."""
    return subprocess.Popen(["dd", "if=/dev/urandom", f"of={dev}", "bs=4096",
                             f"count={count}", f"seek={seek}", "oflag=direct,sync"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("how", ["kept", "wiped", "restarted"])
def test_a_returning_replica_is_sent_only_what_it_missed(env, how):  # noqa: F811
    """docs/design/volumes.md §5.3, §7.5: r2's server dies; the write in
    flight then, and every write after the drop, are kept as regions r2
    missed (status.json's "missed"); when r2 comes back ("resync") exactly
    those regions are sent to it ("resync_planned", "resync_sent"), and the
    three replicas end byte-identical. A replica made again empty (its
    pool's copy wiped: a new data generation) gets the whole volume. An
    attach process killed -9 meanwhile and started again at the same epoch
    finds what r2 missed in its directory (missed-r2)."""
    wiped = how == "wiped"
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=60000, fmt=False)
    assert st["state"] == "ready", st
    dev = st["device"]
    status = os.path.join(d, "a", "status.json")
    assert dd_blocks(dev, 0, 512).wait() == 0  # 2 MiB everyone holds
    assert {m["replica"]: m["bytes"] for m in read_json(status)["missed"]} == {"r1": 0, "r2": 0}

    serves[1][0].kill()
    serves[1][0].wait()
    # The write in flight: it fails on r2 and waits for r2's drop.
    w = dd_blocks(dev, 1000, 3)
    wait_for(lambda: read_json(status).get("isr_drop") == ["r2"], 15, what="the drop request")
    server_drops(d, p, cfg, "r2")
    assert w.wait(timeout=30) == 0, w.stderr.read()
    # Writes r2 is not sent: 1 MiB, one block twice, and a block already
    # missed (counted once).
    for seek, count in ((4096, 256), (9000, 1), (9000, 1), (1001, 1)):
        assert dd_blocks(dev, seek, count).wait() == 0
    missed = (3 + 256 + 1) * 4096
    wait_for(lambda: {m["replica"]: m["bytes"] for m in read_json(status)["missed"]}
             == {"r1": 0, "r2": missed}, 10, what="r2's missed regions in status.json")
    if how == "restarted":
        p.kill()
        p.wait()
        os.unlink(status)
        p, st, cfg = start_attach(d, procs, "a", [], isr_wait_ms=60000, fmt=False,
                                  remotes=cfg["remotes"])
        assert st["state"] == "ready", st
        dev = st["device"]
        assert {m["replica"]: m["bytes"] for m in st["missed"]} == {"r1": 0, "r2": missed}, st
        # r1 missed nothing (its file is a header alone): still in sync.
        assert os.path.getsize(os.path.join(d, "a", "missed-r1")) == 4096
        time.sleep(0.5)
        assert "isr_drop" not in read_json(status), read_json(status)

    rdir = os.path.join(serves[1][2]["pool"], "replicas", VID, "r2")
    if wiped:
        shutil.rmtree(rdir)
    os.unlink(os.path.join(d, "n2", "status.json"))  # the dead server's
    p2, st2, c2 = start_serve(d, procs, "n2", [
        {"id": VID, "replica": "r2", "size": SIZE, "key": KEY, "name": "svc-data-0"}])
    assert st2["state"] == "ready", st2
    cfg["remotes"].append({"address": "127.0.0.1", "port": st2["port"], "replica": "r2",
                           "node": "n2", "resync": True})
    put_attach_json(d, "a", cfg)
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: "r2" in read_json(status).get("resynced", []) and read_json(status),
                  60, what="r2 resynced")
    planned = SIZE if wiped else missed
    assert st["resync_planned"] == planned, st
    # Random bytes: every region planned is sent as data, unless the
    # whole volume goes (its never-written regions go as holes).
    if wiped:
        assert 0 < st["resync_sent"] <= planned, st
    else:
        assert st["resync_sent"] == planned, st
    assert {m["replica"]: m["bytes"] for m in st["missed"]} == {"r1": 0, "r2": 0}, st
    # Every write is in the latency histogram (13 buckets, a sum in us);
    # the counters start again with the process.
    if how != "restarted":
        assert len(st["write_us"]) == 13 and sum(st["write_us"]) >= 5, st
        assert st["write_us_sum"] > 0 and st["written"] >= missed + (2 << 20), st
    # In sync again: it gets the next write like the others.
    assert dd_blocks(dev, 20000, 2).wait() == 0
    detach(p)
    files = [cfg["replica"], replica_files(serves[0][2], "r1")[0], os.path.join(rdir, "data")]
    for f in files[1:]:
        assert filecmp.cmp(files[0], f, shallow=False), f"{f} differs from the local replica"


def test_a_copy_keeps_to_its_rate(env):  # noqa: F811
    """attach.json's resync_rate paces a copy: 8 MiB missed at 2 MiB/s
    cannot be sent in much under 4 s (a lower bound only: a slower
    machine makes it longer, never shorter); the replicas still end
    identical."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=60000, fmt=False,
                              resync_rate=2 << 20)
    assert st["state"] == "ready", st
    dev = st["device"]
    status = os.path.join(d, "a", "status.json")
    # r2 leaves the in-sync set (as the server would say), then 8 MiB.
    server_drops(d, p, cfg, "r2")
    wait_for(lambda: [r for r in read_json(status)["missed"] if r["replica"] == "r2"], 10,
             what="r2 out of the in-sync set")
    assert dd_blocks(dev, 0, 2048).wait() == 0
    cfg["remotes"].append({"address": "127.0.0.1", "port": serves[1][1]["port"],
                           "replica": "r2", "node": "n2", "resync": True})
    put_attach_json(d, "a", cfg)
    t0 = time.monotonic()
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: "r2" in read_json(status).get("resynced", []) and read_json(status),
                  60, what="r2 resynced")
    took = time.monotonic() - t0
    assert st["resync_planned"] == 8 << 20, st
    assert took >= 3.0, f"8 MiB at 2 MiB/s took {took:.2f} s"
    detach(p)
    a, b = cfg["replica"], os.path.join(serves[1][2]["pool"], "replicas", VID, "r2", "data")
    assert filecmp.cmp(a, b, shallow=False)


def test_a_full_pool_fails_writes_with_enospc_and_says_so(env):  # noqa: F811
    """docs/design/volumes.md §10.3: the local replica's file system fills
    up (a 40 MiB tmpfs under a 128 MiB volume): the task's writes fail with
    ENOSPC, status.json counts them ("nospace", which the server turns
    into an event), and the file system is whole: e2fsck on a copy finds
    nothing it cannot preen. A later small write then fails too: with
    ENOSPC at its fsync, or, when one of ext4's journal writes was the one
    refused (the journal is sparse in the replica like the rest; which
    write meets the full pool first depends on timing), with EIO or EROFS
    from the moment jbd2 aborted: ext4 stops writing rather than write
    half. Either way nothing is acknowledged that is not on the replica."""
    d, procs = env
    fs = os.path.join(d, "small")
    os.mkdir(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40M", "tmpfs", fs], check=True)
    try:
        p, st, cfg = start_attach(d, procs, "a", [], replica=os.path.join(fs, "data"),
                                  remotes=[])
        assert st["state"] == "ready", st
        mnt = os.path.join(d, "mnt")
        os.mkdir(mnt)
        subprocess.run(["mount", st["device"], mnt], check=True)
        r = subprocess.run(["dd", "if=/dev/urandom", f"of={mnt}/big", "bs=1M", "count=60",
                            "conv=fsync"], capture_output=True, text=True)
        assert r.returncode != 0 and "No space left on device" in r.stderr, r.stderr
        with pytest.raises(OSError) as e:
            fd = os.open(os.path.join(mnt, "small"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
        assert e.value.errno in (errno.ENOSPC, errno.EIO, errno.EROFS), e.value
        status = os.path.join(d, "a", "status.json")
        st = wait_for(lambda: read_json(status).get("nospace") and read_json(status), 10,
                      what="nospace in status.json")
        assert st["nospace"] > 0 and st["state"] == "ready", st
        detach(p, mnt)
        copy = os.path.join(d, "copy")
        shutil.copyfile(os.path.join(fs, "data"), copy)
        r = subprocess.run(["e2fsck", "-fp", copy], capture_output=True, text=True)
        assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    finally:
        subprocess.run(["umount", "-l", fs], check=False)


def test_a_restart_asks_to_drop_a_replica_it_knows_is_behind(env):  # noqa: F811
    """An attach process killed -9 after r2 left the in-sync set, started
    again at the same epoch with r2 listed in sync (the server had not
    taken it out yet): what missed-r2 keeps makes it ask for r2's drop
    (isr_drop) at once instead of trusting it; then r2 is sent just those
    regions."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, isr_wait_ms=60000, fmt=False)
    assert st["state"] == "ready", st
    status = os.path.join(d, "a", "status.json")
    assert dd_blocks(st["device"], 0, 512).wait() == 0
    every = list(cfg["remotes"])
    server_drops(d, p, cfg, "r2", remotes=every)
    assert dd_blocks(st["device"], 8192, 256).wait() == 0
    wait_for(lambda: {m["replica"]: m["bytes"] for m in read_json(status)["missed"]}
             .get("r2") == 1 << 20, 10, what="r2's missed MiB")
    p.kill()
    p.wait()
    os.unlink(status)
    p, st, cfg = start_attach(d, procs, "a", [], isr_wait_ms=60000, fmt=False, remotes=every)
    assert st["state"] == "ready", st
    st = wait_for(lambda: read_json(status).get("isr_drop") and read_json(status), 10,
                  what="the drop request")
    assert st["isr_drop"] == ["r2"] and "misses writes" in st["isr_why"], st
    # The server agrees, then lists it to resync.
    server_drops(d, p, cfg, "r2", remotes=every)
    cfg["remotes"] = [dict(r, resync=True) if r["replica"] == "r2" else r for r in every]
    put_attach_json(d, "a", cfg)
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: "r2" in read_json(status).get("resynced", []) and read_json(status),
                  60, what="r2 resynced")
    assert st["resync_planned"] == 1 << 20 and st["resync_sent"] == 1 << 20, st
    detach(p)
    a, b = cfg["replica"], os.path.join(serves[1][2]["pool"], "replicas", VID, "r2", "data")
    assert filecmp.cmp(a, b, shallow=False)
