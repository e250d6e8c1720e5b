"""Encrypted volumes in the volume process (src/volume/crypt.h): with an
"encryption_key" in attach.json every block is AES-XTS ciphertext on
every replica (local, remote, and a resynced one) while the task's ext4
reads and writes plaintext; a wrong key fails the attach clearly and
writes nothing. Driven as the agent drives holdfast-volume
(test_volume_repl.py's helpers); the server side of keys is in
test_volume_keys.py."""
import json
import os
import signal
import subprocess

from holdfast_harness import wait_for

from test_volume_repl import (SIZE, detach, env, read_json, replica_files,  # noqa: F401
                              start_attach, two_serves)

DATA_KEY = bytes(range(64)).hex()
OTHER_KEY = bytes(range(1, 65)).hex()
MARKER = b"HOLDFAST-SECRET-MARKER-7f3a"


def write_marker(mnt, name="secret.txt", copies=20000):
    payload = MARKER * copies
    with open(os.path.join(mnt, name), "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    return payload


def holds(path, needle):
    with open(path, "rb") as f:
        return needle in f.read()


def mount(st, d, name="mnt"):
    mnt = os.path.join(d, name)
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    return mnt


def test_replicas_hold_only_ciphertext_and_the_key_reads_it_back(env):
    """repl=3 (a local replica and two node servers) with a data key: the
    task's file is readable through the volume, the marker is in none of
    the three replica files, which are identical, are no ext4 without
    the key, and stay thin; a new attach with the key reads the file."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, encryption_key=DATA_KEY)
    assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
    mnt = mount(st, d)
    payload = write_marker(mnt)
    # Zeros written by the task are encrypted like anything else.
    with open(os.path.join(mnt, "zeros"), "wb") as f:
        f.write(bytes(1 << 20))
        os.fsync(f.fileno())
    detach(p, mnt)
    files = [cfg["replica"]] + [replica_files(c, f"r{i + 1}")[0]
                                for i, (_, _, c) in enumerate(serves)]
    for f in files:
        assert not holds(f, MARKER), f
        assert not holds(f, MARKER[:12]), f
        fsck = subprocess.run(["e2fsck", "-fn", f], capture_output=True, text=True)
        assert fsck.returncode != 0, f"{f} reads as an ext4 without its key"
        assert os.stat(f).st_blocks * 512 < 48 << 20, f
    with open(files[0], "rb") as a, open(files[1], "rb") as b:
        assert a.read() == b.read()
    # Again, with the key: the file is there, in plaintext.
    p, st, _ = start_attach(d, procs, "b", serves, epoch=2, fmt=False,
                            encryption_key=DATA_KEY)
    assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
    # Through the volume (decrypted) the replica is a clean ext4.
    fsck = subprocess.run(["e2fsck", "-fn", st["device"]], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    mnt = mount(st, d, "mnt2")
    with open(os.path.join(mnt, "secret.txt"), "rb") as f:
        assert f.read() == payload
    with open(os.path.join(mnt, "zeros"), "rb") as f:
        assert f.read() == bytes(1 << 20)
    detach(p, mnt)


def test_a_wrong_key_fails_the_attach_and_writes_nothing(env):
    """An attach given another key (format asked, as a retried first
    attach would) does not format over the data: it fails saying the data
    does not decrypt with its key, and no replica changes."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, encryption_key=DATA_KEY)
    assert st["state"] == "ready", st
    mnt = mount(st, d)
    write_marker(mnt)
    detach(p, mnt)
    files = [cfg["replica"]] + [replica_files(c, f"r{i + 1}")[0]
                                for i, (_, _, c) in enumerate(serves)]
    before = [open(f, "rb").read() for f in files]
    p, st, _ = start_attach(d, procs, "b", serves, epoch=2, fmt=True,
                            encryption_key=OTHER_KEY)
    assert st["state"] == "failed", st
    assert "does not decrypt" in st["message"] and "wrong encryption key" in st["message"], st
    assert OTHER_KEY[:16] not in st["message"]
    p.wait(timeout=30)
    assert p.returncode == 1
    assert [open(f, "rb").read() for f in files] == before
    # The right key still opens it.
    p, st, _ = start_attach(d, procs, "c", serves, epoch=3, fmt=True,
                            encryption_key=DATA_KEY)
    assert st["state"] == "ready", st
    mnt = mount(st, d, "mnt3")
    assert os.path.getsize(os.path.join(mnt, "secret.txt")) == len(MARKER) * 20000
    detach(p, mnt)


def test_bad_keys_are_refused_without_quoting_them(env):
    d, procs = env
    serves = two_serves(d, procs)
    for bad, why in (("ab" * 32, "hex digits"), ("zz" * 64, "hex digits"),
                     ("11" * 64, "halves are equal"), (7, "hex digits")):
        name = f"x{abs(hash(str(bad))) % 100000}"
        p, st, _ = start_attach(d, procs, name, serves, encryption_key=bad)
        assert st["state"] == "failed" and why in st["message"], st
        assert "encryption_key" in st["message"]
        if isinstance(bad, str):
            assert bad[:10] not in st["message"], st
        p.wait(timeout=10)


def test_a_resynced_replica_gets_ciphertext(env):
    """A replica added out of date (resync) is copied from the others'
    bytes: it ends identical to them, with no plaintext."""
    d, procs = env
    serves = two_serves(d, procs)
    # Attach with the first node server only, write, then add the second
    # one as "resync" with SIGHUP.
    p, st, cfg = start_attach(d, procs, "a", serves[:1], encryption_key=DATA_KEY)
    assert st["state"] == "ready", st
    mnt = mount(st, d)
    write_marker(mnt)
    cfg2 = dict(cfg)
    cfg2["remotes"] = cfg["remotes"] + [{"address": "127.0.0.1", "port": serves[1][1]["port"],
                                         "replica": "r2", "node": "n2", "resync": True}]
    with open(os.path.join(d, "a", "attach.json.tmp"), "w") as f:
        json.dump(cfg2, f)
    os.rename(os.path.join(d, "a", "attach.json.tmp"), os.path.join(d, "a", "attach.json"))
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: "r2" in (read_json(os.path.join(d, "a", "status.json")).get("resynced") or []),
             60, what="r2 resynced")
    detach(p, mnt)
    r1 = replica_files(serves[0][2], "r1")[0]
    r2 = replica_files(serves[1][2], "r2")[0]
    for f in (cfg["replica"], r1, r2):
        assert not holds(f, MARKER), f
    with open(cfg["replica"], "rb") as a, open(r2, "rb") as b:
        assert a.read() == b.read()
