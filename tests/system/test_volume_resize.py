"""Online growth of a replicated volume in the volume processes
(`holdfast volume resize`'s data path): node servers grow their replica
files when serve.json lists a larger size; the attach process, given the
larger size in attach.json (SIGHUP), waits until every remote replica
holds it, grows its local replica, the FUSE file and the loop device,
then the mounted ext4 (online, in whichever namespace mounts it), while
a writer keeps writing. Driven as the agent drives them."""
import filecmp
import json
import os
import signal
import subprocess
import threading

import pytest

from holdfast_harness import wait_for
from test_volume_repl import (KEY, SIZE, VID, detach, env, read_json,  # noqa: F401
                              replica_files, rewrite_serve, start_attach, start_serve,
                              two_serves)

NEW = 3 * SIZE


def _has_cap_sys_resource():
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


# ext4's online resize needs CAP_SYS_RESOURCE: where the machine does not
# give it, the file system grows at the volume's next attach instead.
ONLINE = _has_cap_sys_resource()


def rewrite(path, cfg):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, path)


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "encrypted"])
def test_a_volume_grows_online_under_a_writer(env, secure):
    d, procs = env
    serves = two_serves(d, procs)
    extra = {"encryption_key": bytes(range(64)).hex()} if secure else {}
    p, st, cfg = start_attach(d, procs, "a", serves, **extra)
    assert st["state"] == "ready" and st["size"] == SIZE, st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    before = os.statvfs(mnt)
    # A writer appending and syncing all along.
    stop, errors, written = threading.Event(), [], [0]

    def writer():
        block = os.urandom(64 << 10)
        try:
            with open(os.path.join(mnt, "log"), "ab") as f:
                while not stop.is_set():
                    f.write(block)
                    f.flush()
                    os.fsync(f.fileno())
                    written[0] += len(block)
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=writer)
    t.start()
    try:
        # The attach process first: it waits for the replicas.
        adir = os.path.join(d, "a")
        rewrite(os.path.join(adir, "attach.json"), {**cfg, "size": NEW})
        p.send_signal(signal.SIGHUP)
        msg = wait_for(lambda: (read_json(os.path.join(adir, "status.json")).get("message")
                                or "") if "waiting for replica" in (read_json(
                                    os.path.join(adir, "status.json")).get("message") or "")
                       else None, 20, what="the attach waiting for the replicas")
        assert "r1" in msg and "less than" in msg, msg
        assert read_json(os.path.join(adir, "status.json"))["size"] == SIZE
        for i, (sp, _, scfg) in enumerate(serves):
            scfg["volumes"][0]["size"] = NEW
            rewrite_serve(os.path.join(d, f"n{i + 1}"), scfg)
            sp.send_signal(signal.SIGHUP)
        st = wait_for(lambda: (lambda s: s.get("size") == NEW and s)(
            read_json(os.path.join(adir, "status.json"))), 60, what="the device grown")
        # The loop device grew under the mounted file system.
        with open(f"/sys/block/{os.path.basename(st['device'])}/size") as f:
            assert int(f.read()) * 512 == NEW
        if ONLINE:
            wait_for(lambda: not read_json(os.path.join(adir, "status.json")).get("message"),
                     30, what="the file system grown")
            after = os.statvfs(mnt)
            assert after.f_blocks * after.f_frsize > 2 * SIZE, (before, after)
        else:
            msg = wait_for(lambda: (lambda m: m if "CAP_SYS_RESOURCE" in m else None)(
                read_json(os.path.join(adir, "status.json")).get("message") or ""),
                30, what="the attach saying the file system grows at the next attach")
            assert "next attached" in msg, msg
            after = os.statvfs(mnt)
            assert after.f_blocks * after.f_frsize < SIZE
        assert before.f_blocks * before.f_frsize < SIZE
        n0 = written[0]
        wait_for(lambda: written[0] > n0 + (1 << 20), 30, what="the writer writing on")
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    detach(p, mnt)
    files = [cfg["replica"]] + [replica_files(c, f"r{i + 1}")[0]
                                for i, (_, _, c) in enumerate(serves)]
    for f in files:
        assert os.path.getsize(f) == NEW, f
    for f in files[1:]:
        assert filecmp.cmp(files[0], f, shallow=False), f
    # The node servers and a new attach take the grown replicas as they are.
    for sp, _, _ in serves:
        sp.send_signal(signal.SIGTERM)
        sp.wait(30)
    serves2 = []
    for i in (1, 2):
        sp, sst, scfg = start_serve(d, procs, f"n{i}", [
            {"id": VID, "replica": f"r{i}", "size": NEW, "key": KEY, "name": "svc-data-0"}])
        assert sst["state"] == "ready", sst
        serves2.append((sp, sst, scfg))
    p, st, _ = start_attach(d, procs, "b", serves2, epoch=2, fmt=False, size=NEW, **extra)
    assert st["state"] == "ready", st
    # Whole, and (grown offline at this attach, if not online before) as
    # big as the volume; what the writer wrote is there.
    fsck = subprocess.run(["e2fsck", "-fn", st["device"]], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    sv = os.statvfs(mnt)
    assert sv.f_blocks * sv.f_frsize > 2 * SIZE, sv
    assert os.path.getsize(os.path.join(mnt, "log")) == written[0]
    # More than the old size fits now.
    big = os.urandom(1 << 20)
    with open(os.path.join(mnt, "big"), "wb") as f:
        for _ in range(SIZE >> 20):
            f.write(big)
        f.flush()
        os.fsync(f.fileno())
    detach(p, mnt)


def test_a_replica_never_shrinks(env):
    """A serve.json listing a smaller size keeps the replica at its size,
    still served: an attach of the old size works over it."""
    d, procs = env
    serves = two_serves(d, procs)
    sp, _, scfg = serves[0]
    scfg["volumes"][0]["size"] = NEW
    rewrite_serve(os.path.join(d, "n1"), scfg)
    sp.send_signal(signal.SIGHUP)
    data = replica_files(scfg, "r1")[0]
    wait_for(lambda: os.path.getsize(data) == NEW, 20, what="r1 grown")
    scfg["volumes"][0]["size"] = SIZE
    rewrite_serve(os.path.join(d, "n1"), scfg)
    sp.send_signal(signal.SIGHUP)
    p, st, _ = start_attach(d, procs, "a", serves[:1])
    assert st["state"] == "ready", st
    detach(p)
    assert sp.poll() is None
    assert os.path.getsize(data) == NEW
