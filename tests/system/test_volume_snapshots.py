"""Snapshots of replicated volumes at the data path (src/volume/snap.h,
attach.h's "snapshots"): an attach process with a local replica and two
node servers takes a snapshot on every in-sync replica at one point of the
write stream, keeps it by copy-on-write while the volume is written on,
deletes one without disturbing the others, and restores the volume to one
at a new attach. What a snapshot holds is read back offline with
`holdfast-volume snap export` and checked as a file system."""
import filecmp
import json
import os
import signal
import subprocess

from holdfast_harness import wait_for
from test_volume_repl import (VOLUME_BIN, detach, env, read_json,  # noqa: F401
                              replica_files, start_attach, two_serves)


def request(d, name, items):
    """As the agent does: attach.json again with "snapshots", then SIGHUP."""
    path = os.path.join(d, name, "attach.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["snapshots"] = items
    with open(path + ".new", "w") as f:
        json.dump(cfg, f)
    os.rename(path + ".new", path)


def done(d, name, key):
    return read_json(os.path.join(d, name, "status.json")).get("snapshots", {}).get(key)


def write(mnt, name, data):
    with open(os.path.join(mnt, name), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def export(data_file, snap, out):
    r = subprocess.run([VOLUME_BIN, "snap", "export", data_file, snap, out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def cat(image, name):
    """A file of the image's ext4 (its journal replayed first, on a copy:
    a snapshot of a mounted file system is crash-consistent)."""
    fsck = subprocess.run(["e2fsck", "-fy", image], capture_output=True, text=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
    out = subprocess.run(["debugfs", "-R", f"cat /{name}", image], capture_output=True)
    return out.stdout


def stop_serves(serves):
    for sp, _, _ in serves:
        sp.send_signal(signal.SIGTERM)
        out, _ = sp.communicate(timeout=30)
        assert sp.returncode == 0, out


def test_snapshots_keep_their_point_on_every_replica_and_restore(env):
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, epoch=1)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    v1 = os.urandom(700_000)
    write(mnt, "a", v1)
    # Taken while the file system is mounted and in use.
    request(d, "a", [{"id": "s1", "op": "take"}])
    p.send_signal(signal.SIGHUP)
    r = wait_for(lambda: done(d, "a", "take:s1"), 30, what="s1 taken")
    assert r["ok"] and r["id"] == "s1" and sorted(r["replicas"]) == ["local", "r1", "r2"], r
    # The mounted file system was frozen for it: a clean file system.
    assert r["frozen"] is True, r
    v2 = os.urandom(900_000)
    write(mnt, "a", v2)
    write(mnt, "b", b"only after s1")
    request(d, "a", [{"id": "s1", "op": "take"}, {"id": "s2", "op": "take"}])
    p.send_signal(signal.SIGHUP)
    r = wait_for(lambda: done(d, "a", "take:s2"), 30, what="s2 taken")
    assert r["ok"], r
    write(mnt, "a", os.urandom(300_000))
    write(mnt, "c", b"after both")
    # A bad request is refused by the reload, the rest goes on.
    request(d, "a", [{"id": "../x", "op": "take"}])
    p.send_signal(signal.SIGHUP)
    detach(p, mnt)
    stop_serves(serves)
    files = [cfg["replica"]] + [replica_files(c, f"r{i + 1}")[0]
                                for i, (_, _, c) in enumerate(serves)]
    # Every replica kept the same point: the exports are identical.
    for snap, want_a, has_b in (("s1", v1, False), ("s2", v2, True)):
        imgs = [export(f, snap, os.path.join(d, f"{snap}-{i}.img"))
                for i, f in enumerate(files)]
        for img in imgs[1:]:
            assert filecmp.cmp(imgs[0], img, shallow=False), (snap, img)
        # Frozen when taken: clean as it is, no journal to replay.
        fsck = subprocess.run(["e2fsck", "-fn", imgs[1]], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert cat(imgs[0], "a") == want_a, snap
        assert (cat(imgs[0], "b") == b"only after s1") == has_b, snap
        assert cat(imgs[0], "c") == b"", snap
    listing = subprocess.run([VOLUME_BIN, "snap", "list", files[1]],
                             capture_output=True, text=True, check=True).stdout
    assert [ln.split()[0] for ln in listing.splitlines()] == ["s1", "s2"], listing

    # A new attach restores s1 before anything mounts the volume, and
    # deletes s2; every replica ends byte for byte the same.
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "b", serves, epoch=2, fmt=False,
                              snapshots=[{"id": "s1", "op": "restore"},
                                         {"id": "s2", "op": "delete"}])
    assert st["state"] == "ready", st
    r = done(d, "b", "restore:s1")
    assert r and r["ok"] and len(r["replicas"]) == 3, st
    assert done(d, "b", "delete:s2")["ok"], st
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    with open(os.path.join(mnt, "a"), "rb") as f:
        assert f.read() == v1
    assert not os.path.exists(os.path.join(mnt, "b"))
    assert not os.path.exists(os.path.join(mnt, "c"))
    # A restore asked of a running attachment is refused, not done.
    request(d, "b", [{"id": "s3", "op": "take"}, {"id": "s3", "op": "restore"}])
    p.send_signal(signal.SIGHUP)
    r = wait_for(lambda: done(d, "b", "restore:s3"), 10, what="the answer")
    assert not r["ok"] and "new attach" in r["error"], r
    assert done(d, "b", "take:s3")["ok"]
    write(mnt, "d", b"after the restore")
    detach(p, mnt)
    stop_serves(serves)
    for f in files[1:]:
        assert filecmp.cmp(files[0], f, shallow=False), f
    listing = subprocess.run([VOLUME_BIN, "snap", "list", files[2]],
                             capture_output=True, text=True, check=True).stdout
    assert [ln.split()[0] for ln in listing.splitlines()] == ["s1", "s3"], listing
    # s1 still reads as it was taken, after the restore and later writes.
    img = export(files[2], "s1", os.path.join(d, "s1-again.img"))
    assert cat(img, "a") == v1 and cat(img, "d") == b""
