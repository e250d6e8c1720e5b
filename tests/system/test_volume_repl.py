"""Replicated volumes' data path, standalone (src/volume/serve.h and
attach.h's remotes): node servers (`holdfast-volume serve`) with pools of
their own on loopback, an attach process that writes every block to its
local replica and to the remote ones, and the fencing and failure rules
of docs/design/volumes.md §6.2 and §4.4. The agent does not drive these
processes yet; the tests drive them as it will."""
import filecmp
import hashlib
import hmac
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest

from holdfast_harness import BIN, wait_for

VOLUME_BIN = os.path.join(os.path.dirname(BIN), "holdfast-volume")
SIZE = 128 << 20
VID = "vol-1"
KEY = "5a" * 32


def ticket(key_hex, vid, epoch, node):
    """docs: src/volume/ticket.h."""
    msg = b"attach\0" + vid.encode() + b"\0" + str(epoch).encode() + b"\0" + node.encode()
    return hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).hexdigest()


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def mounts_under(d):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(d)]


def loops_under(d):
    out = []
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                b = f.read().strip()
        except OSError:
            continue
        if b.startswith(d):
            out.append("/dev/" + name)
    return out


@pytest.fixture
def env():
    d = tempfile.mkdtemp(prefix="hf-vrepl-", dir="/var/tmp")
    procs = []
    yield d, procs
    for m in reversed(mounts_under(d)):
        subprocess.run(["umount", "-l", m], check=False)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for dev in loops_under(d):
        subprocess.run(["losetup", "-d", dev], check=False)
    shutil.rmtree(d, ignore_errors=True)


def start_serve(d, procs, name, volumes, replica_of=None, **over):
    sdir = os.path.join(d, name)
    os.makedirs(sdir, exist_ok=True)
    cfg = {"pool": os.path.join(d, name + "-pool"), "listen": "127.0.0.1:0",
           "volumes": volumes}
    cfg.update(over)
    with open(os.path.join(sdir, "serve.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([VOLUME_BIN, "serve", sdir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    procs.append(p)
    st = wait_for(lambda: read_json(os.path.join(sdir, "status.json")).get("state")
                  in ("ready", "failed") and read_json(os.path.join(sdir, "status.json")),
                  30, what=f"serve {name} ready")
    return p, st, cfg


def replica_files(cfg, replica):
    base = os.path.join(cfg["pool"], "replicas", VID, replica)
    return os.path.join(base, "data"), os.path.join(base, "meta")


def meta_epoch(path):
    """meta.h: the epoch is the u64 at byte 32."""
    with open(path, "rb") as f:
        block = f.read()
    assert len(block) == 4096 and block[:8] == b"HFVOLMD1"
    return struct.unpack_from("<Q", block, 32)[0]


def two_serves(d, procs):
    out = []
    for i in (1, 2):
        p, st, cfg = start_serve(d, procs, f"n{i}", [
            {"id": VID, "replica": f"r{i}", "size": SIZE, "key": KEY, "name": "svc-data-0"}])
        assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
        assert st["port"] > 0 and st["address"] == "127.0.0.1" and st["replicas"] == 1, st
        out.append((p, st, cfg))
    return out


def start_attach(d, procs, name, serves, local=True, epoch=1, fmt=True, **over):
    adir = os.path.join(d, name)
    os.makedirs(adir, exist_ok=True)
    cfg = {"volume": "svc-data-0", "id": VID, "epoch": epoch, "size": SIZE,
           "replica": os.path.join(d, "n0-replica") if local else None,
           "format": fmt, "node": "n0", "key": KEY,
           "remotes": [{"address": "127.0.0.1", "port": st["port"], "replica": f"r{i + 1}",
                        "node": f"n{i + 1}"} for i, (_, st, _) in enumerate(serves)]}
    cfg.update(over)
    cfg = {k: v for k, v in cfg.items() if v is not ...}
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([VOLUME_BIN, "attach", adir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    procs.append(p)
    st = wait_for(lambda: read_json(os.path.join(adir, "status.json")).get("state")
                  in ("ready", "failed") and read_json(os.path.join(adir, "status.json")),
                  30, what=f"attach {name}")
    return p, st, cfg


def detach(p, mnt=None):
    if mnt:
        subprocess.run(["umount", mnt], check=True)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out


def write_files(mnt, n=8):
    data = {}
    for i in range(n):
        b = os.urandom((i + 1) * 300_000)
        with open(os.path.join(mnt, f"f{i}"), "wb") as f:
            f.write(b)
            f.flush()
            os.fsync(f.fileno())
        data[f"f{i}"] = b
    return data


def test_bad_serve_files_fail_clearly_and_one_dir_has_one_process(env):
    d, procs = env
    p, st, _ = start_serve(d, procs, "s1", [{"id": VID, "replica": "r1", "size": SIZE,
                                            "key": "xyz"}])
    assert st["state"] == "failed" and '"key"' in st["message"], st
    assert p.wait(timeout=10) == 1
    p, st, _ = start_serve(d, procs, "s2", [], speed=1)
    assert st["state"] == "failed" and 'unknown key "speed"' in st["message"], st
    p, st, _ = start_serve(d, procs, "s3", [], listen="127.0.0.1:99999")
    assert st["state"] == "failed" and "port" in st["message"], st
    # A replica of another size is never served as this volume.
    p, st, cfg = start_serve(d, procs, "s4", [{"id": VID, "replica": "r1", "size": SIZE,
                                              "key": KEY}])
    assert st["state"] == "ready", st
    second = subprocess.run([VOLUME_BIN, "serve", os.path.join(d, "s4")],
                            capture_output=True, text=True, timeout=10)
    assert second.returncode == 3 and str(p.pid) in second.stderr, second.stderr
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    p, st, _ = start_serve(d, procs, "s4", [{"id": VID, "replica": "r1", "size": SIZE * 2,
                                            "key": KEY}], pool=cfg["pool"])
    assert st["state"] == "failed" and "not the volume's" in st["message"], st
