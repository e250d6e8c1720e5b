"""A volume's disaster-recovery stream, standalone (src/volume/ship.h,
tls.h and serve.h's "dr" listener): an attach process on "site A" that
journals every write and sends the journal over mutually authenticated TLS
to a standby replica served on "site B", as the agents will drive them.
What is checked: the standby ends byte for byte equal to the primary and
consistent (a clean file system); a link that goes away only grows the
journal, and the standby catches up; a full journal blocks writers or
falls back to a copy, as its policy says; a journal left by a killed
process is sent after the restart; the wrong certificate, and a replica
that is no standby, are refused."""
import filecmp
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from holdfast_harness import wait_for
from test_remotes import make_pki
from test_volume_repl import (KEY, SIZE, VID, env, read_json,  # noqa: F401
                              replica_files, run_attach, start_serve)

MiB = 1 << 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("dr-pki"))
    make_pki(d)
    return d


def serve_b(d, procs, pki, standby=True, name="siteb"):
    """Site B's node server: a standby replica "rb" of the volume, and the
    DR listener that takes only what caA signed."""
    vol = {"id": VID, "replica": "rb", "size": SIZE, "key": KEY, "name": "svc-data-0"}
    if standby:
        vol["standby"] = True
    p, st, cfg = start_serve(d, procs, name, [vol], dr={
        "listen": "127.0.0.1:0", "tls_cert": f"{pki}/b-server.pem",
        "tls_key": f"{pki}/b-server.key", "tls_ca": f"{pki}/caA.pem"})
    assert st["state"] == "ready" and st["dr_port"] > 0, st
    return p, st, cfg


def attach_a(d, procs, pki, st_b, name="a", client="a-client", epoch=1, fmt=True, **dr):
    drc = {"address": "127.0.0.1", "port": st_b["dr_port"], "replica": "rb",
           "tls_ca": f"{pki}/caB.pem", "tls_cert": f"{pki}/{client}.pem",
           "tls_key": f"{pki}/{client}.key", "journal": os.path.join(d, name + "-journal")}
    drc.update(dr)
    cfg = {"volume": "svc-data-0", "id": VID, "epoch": epoch, "size": SIZE,
           "replica": os.path.join(d, "a-replica"), "format": fmt, "node": "na",
           "key": KEY, "dr": drc}
    p, st = run_attach(d, procs, name, cfg, 60)
    assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
    return p, st, cfg


def dr_status(d, name="a"):
    return read_json(os.path.join(d, name, "status.json")).get("dr") or {}


def caught_up(d, name="a"):
    s = dr_status(d, name)
    return (s.get("state") == "streaming" and s.get("lag_bytes") == 0 and s.get("consistent")
            and s)


def write_dev(dev, off_mib, mib, seed):
    """mib MiB of data at off_mib, straight to the device, synced."""
    block = (seed.to_bytes(4, "little") * (MiB // 4))
    fd = os.open(dev, os.O_WRONLY)
    try:
        for i in range(mib):
            os.pwrite(fd, block[i % 7:] + block[:i % 7], (off_mib + i) * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)


def restart_b(d, procs, cfg_b, st_b, name="siteb"):
    """B's server again, on the same pool and DR port."""
    os.unlink(os.path.join(d, name, "status.json"))
    dr = dict(cfg_b["dr"], listen=f"127.0.0.1:{st_b['dr_port']}")
    p, st, _ = start_serve(d, procs, name, cfg_b["volumes"], dr=dr)
    assert st["state"] == "ready" and st["dr_port"] == st_b["dr_port"], st
    return p


def stop(p, sig=signal.SIGTERM):
    p.send_signal(sig)
    out, _ = p.communicate(timeout=60)
    return p.returncode, out


def standby_file(cfg_b):
    return replica_files(cfg_b, "rb")[0]


def same(a_cfg, cfg_b):
    return filecmp.cmp(a_cfg["replica"], standby_file(cfg_b), shallow=False)


def test_the_standby_ends_equal_and_consistent(env, pki):
    """A mounted ext4 written with fsync: the stream copies the new volume
    once (the initial sync), then ships each write; lag goes to 0, the
    standby's mark records when, and after the detach (which drains) the
    standby's replica is byte for byte the primary's and a clean ext4."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b)
    s = wait_for(lambda: caught_up(d), 60, what="the initial sync")
    assert s["link_up"] and s["policy"] == "block" and s["shipped"] > 0, s
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    data = {}
    for i in range(5):
        b = os.urandom((i + 1) * 700_000)
        with open(os.path.join(mnt, f"f{i}"), "wb") as f:
            f.write(b)
            f.flush()
            os.fsync(f.fileno())
        data[f"f{i}"] = b
    t0 = time.time_ns()
    s = wait_for(lambda: caught_up(d), 30, what="the writes shipped")
    assert s["lag_seconds"] == 0 and s["applied_time"] >= t0 - 5 * 10**9, s
    subprocess.run(["umount", mnt], check=True)
    rc, out = stop(p)
    assert rc == 0, out
    assert read_json(os.path.join(d, "a", "status.json"))["dr"]["journal_bytes"] == 0
    rc, out = stop(pb)
    assert rc == 0, out
    assert same(cfg, cfg_b)
    fsck = subprocess.run(["e2fsck", "-fn", standby_file(cfg_b)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    for name, b in data.items():
        got = subprocess.run(["debugfs", "-R", f"cat /{name}", standby_file(cfg_b)],
                             capture_output=True).stdout
        assert got == b, name


def test_a_link_down_grows_the_journal_and_the_standby_catches_up(env, pki):
    """Site B's server goes away while writes go on: nothing blocks (the
    journal has room), the journal and the lag grow, and once B is back
    the stream resumes from B's mark and B ends equal."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False)
    wait_for(lambda: caught_up(d), 60, what="the initial sync")
    pb.kill()
    pb.wait()
    t0 = time.monotonic()
    write_dev(st["device"], 0, 24, 7)
    assert time.monotonic() - t0 < 20
    s = wait_for(lambda: (lambda s: s.get("journal_bytes", 0) >= 24 * MiB and
                          s.get("lag_bytes", 0) >= 24 * MiB and s)(dr_status(d)),
                 15, what="the journal holding the writes")
    assert s["lag_seconds"] > 0 and s["blocked"] == 0, s
    wait_for(lambda: not dr_status(d).get("link_up") and dr_status(d), 15, what="the link down")
    restart_b(d, procs, cfg_b, st_b)
    s = wait_for(lambda: caught_up(d), 60, what="B catching up")
    assert s["journal_bytes"] == 0, s
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)


def test_a_full_journal_blocks_writers_when_asked(env, pki):
    """when_full block: with B away and a 16 MiB journal, a 40 MiB write
    waits (the journal counts it blocked) until B is back, then ends, and B
    ends equal."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False, journal_size=16 * MiB)
    wait_for(lambda: caught_up(d), 60, what="the initial sync")
    pb.kill()
    pb.wait()
    done = threading.Event()
    err = []

    def writer():
        try:
            write_dev(st["device"], 10, 40, 3)
        except Exception as e:  # noqa: BLE001 - reported below
            err.append(e)
        done.set()

    threading.Thread(target=writer, daemon=True).start()
    wait_for(lambda: dr_status(d).get("blocked", 0) > 0, 30, what="a blocked writer")
    time.sleep(1)
    assert not done.is_set()
    assert dr_status(d)["journal_bytes"] > 15 * MiB
    restart_b(d, procs, cfg_b, st_b)
    assert done.wait(90) and not err, err
    wait_for(lambda: caught_up(d), 60, what="B catching up")
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)


def test_a_full_journal_falls_back_to_a_copy_when_asked(env, pki):
    """when_full resync: the same 40 MiB goes on at once; the chunks that
    did not fit are copied once B is back (the standby is inconsistent
    until then, and says so), and B ends equal."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False, journal_size=16 * MiB,
                          when_full="resync")
    wait_for(lambda: caught_up(d), 60, what="the initial sync")
    pb.kill()
    pb.wait()
    t0 = time.monotonic()
    write_dev(st["device"], 10, 40, 5)
    assert time.monotonic() - t0 < 30
    s = wait_for(lambda: (lambda s: s.get("overflows") and s)(dr_status(d)), 10,
                 what="overflows")
    assert s["overflows"] > 0 and not s["consistent"] and s["blocked"] == 0, s
    assert s["sync"]["total"] > 0, s
    restart_b(d, procs, cfg_b, st_b)
    wait_for(lambda: caught_up(d), 90, what="the copy and the catch-up")
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)


def killed_with_a_journal(d, procs, pki):
    """B goes away, A journals 12 MiB, then A's attach process is killed
    with -9 and its loop device cleared: B's status and config, and A's
    journal's path."""
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False)
    wait_for(lambda: caught_up(d), 60, what="the initial sync")
    pb.kill()
    pb.wait()
    write_dev(st["device"], 30, 12, 9)
    wait_for(lambda: dr_status(d).get("journal_bytes", 0) >= 12 * MiB, 15, what="journaled")
    p.kill()
    p.wait()
    subprocess.run(["losetup", "-d", st["device"]], check=False)
    return st_b, cfg_b, os.path.join(d, "a-journal")


def test_a_killed_primary_sends_its_journal_after_the_restart(env, pki):
    """Writes journaled while B is away, then the attach process is killed
    with -9: a new one at the same epoch reads the journal back (CRCs,
    consecutive seqs) and sends it once B is there; B ends equal."""
    d, procs = env
    st_b, cfg_b, jpath = killed_with_a_journal(d, procs, pki)
    restart_b(d, procs, cfg_b, st_b)
    p, st, cfg = attach_a(d, procs, pki, st_b, name="a2", fmt=False, journal=jpath)
    s = wait_for(lambda: caught_up(d, "a2"), 60, what="the journal sent")
    assert s["shipped"] >= 12 * MiB, s
    # The journal was sent, not the whole volume copied again.
    assert s["shipped"] < SIZE, s
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)


def scribble(path, off, n):
    """n random bytes at byte off into a replica's data file."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(n), off)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_standby_that_holds_the_volume_receives_only_what_differs(env, pki):
    """As after a failback: B's replica held the volume once, then the
    sites diverged (A wrote 5 MiB more; B's copy holds 3 MiB A never had,
    an old primary's last writes). A new stream, whose journal B's mark is
    not in, owes B a copy: it asks B for a digest of each 32 KiB and sends
    only what differs (a 4 KiB block changed costs its 32 KiB), not the
    128 MiB volume; B ends equal."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False)
    write_dev(st["device"], 0, 48, 3)
    s = wait_for(lambda: caught_up(d), 60, what="the first copy and the writes")
    first = s["shipped"]
    rc, out = stop(p)
    assert rc == 0, out
    rc, out = stop(pb)
    assert rc == 0, out
    assert same(cfg, cfg_b)
    scribble(cfg["replica"], 20 * MiB, 5 * MiB)
    # Two 4 KiB blocks far apart in one MiB: two runs of 32 KiB.
    scribble(cfg["replica"], 30 * MiB + 100 * 1024, 4096)
    scribble(cfg["replica"], 30 * MiB + 900 * 1024, 4096)
    scribble(standby_file(cfg_b), 60 * MiB, 3 * MiB)
    assert not same(cfg, cfg_b)
    restart_b(d, procs, cfg_b, st_b)
    p, st, cfg = attach_a(d, procs, pki, st_b, name="a2", fmt=False, epoch=2)
    s = wait_for(lambda: caught_up(d, "a2"), 60, what="the copy of what differs")
    print(f"\nDR-DIFF-COPY: first stream shipped {first} B; the copy after the "
          f"divergence shipped {s['shipped']} B for 8 MiB and 8 KiB that differ; "
          f"{s['copy_same']} B found equal")
    # B's 3 MiB are zeros on A: a TRIM, no bytes.
    assert s["shipped"] == 5 * MiB + 64 * 1024, s
    assert s["copy_same"] == SIZE - 8 * MiB - 64 * 1024, s
    rc, out = stop(p)
    assert rc == 0, out
    rc, out = stop(pb)
    assert rc == 0, out
    assert same(cfg, cfg_b)


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def journal_boot(path):
    """The boot id and flags in a DR journal's header (ship.h), checked."""
    with open(path, "rb") as f:
        h = f.read(160)[128:160]
    assert int.from_bytes(h[24:28], "little") == crc32c(h[:24]), h
    return h[:16], int.from_bytes(h[16:24], "little")


def test_a_journal_from_a_boot_that_crashed_is_not_trusted(env, pki):
    """Journal records are not synced with the volume's flushes, so a
    journal another boot left open (the machine crashed) may lack records
    the replica has. Writes go on while B is away, the attach process is
    killed and its journal made to look left by an earlier boot: the next
    attach does not send the journal's records but compares B whole (by
    digests), and B ends equal. A journal closed cleanly says so."""
    d, procs = env
    st_b, cfg_b, jpath = killed_with_a_journal(d, procs, pki)
    boot, flags = journal_boot(jpath)
    assert boot == bytes.fromhex(open("/proc/sys/kernel/random/boot_id").read()
                                 .strip().replace("-", "")) and flags == 0, (boot, flags)
    # As if the machine had crashed: another boot, not closed cleanly.
    with open(jpath, "r+b") as f:
        part = os.urandom(16) + (0).to_bytes(8, "little")
        f.seek(128)
        f.write(part + crc32c(part).to_bytes(4, "little"))
    restart_b(d, procs, cfg_b, st_b)
    p, st, cfg = attach_a(d, procs, pki, st_b, name="a2", fmt=False, journal=jpath)
    s = wait_for(lambda: caught_up(d, "a2"), 60, what="the comparison")
    # The 12 MiB written while B was away, found by their digests.
    assert 12 * MiB <= s["shipped"] < 13 * MiB and s["copy_same"] >= SIZE - 13 * MiB, s
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)
    assert "ended without closing it" in out, out
    assert journal_boot(jpath)[1] == 1  # closed cleanly


def test_the_wrong_certificate_and_a_replica_no_standby_are_refused(env, pki):
    """A client certificate caA did not sign never gets a stream (B's
    server says why; A keeps journaling); a replica that is not flagged
    standby cannot be written over the DR listener at all."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, client="x-client", fmt=False)
    s = wait_for(lambda: (lambda s: s.get("message") and s)(dr_status(d)), 30,
                 what="a refusal")
    time.sleep(1)
    s = dr_status(d)
    assert not s["link_up"] and s["state"] == "connecting", s
    assert "TLS" in s["message"] or "certificate" in s["message"], s
    rc, out = stop(p)
    assert rc == 0, out
    rc, out = stop(pb)
    assert rc == 0
    assert "DR listener" in out or "certificate" in out, out
    # Not a standby: refused by name even with the right certificate.
    pb, st_b, cfg_b = serve_b(d, procs, pki, standby=False, name="siteb2")
    p, st, cfg = attach_a(d, procs, pki, st_b, name="a3", fmt=False,
                          journal=os.path.join(d, "a3-journal"))
    s = wait_for(lambda: (lambda s: "no standby" in (s.get("message") or "") and s)(
        dr_status(d, "a3")), 30, what="the refusal")
    assert not s["link_up"], s
    rc, out = stop(p)
    assert rc == 0, out


def test_a_sighup_begins_and_ends_the_stream_on_a_running_attachment(env, pki):
    """DR enabled on a volume already attached and written (attach.json
    rewritten, SIGHUP, as the agent does): the stream begins with a copy of
    the whole volume and B ends equal; taken out again, the stream ends and
    the volume goes on."""
    d, procs = env
    pb, st_b, cfg_b = serve_b(d, procs, pki)
    p, st, cfg = attach_a(d, procs, pki, st_b, fmt=False)
    wait_for(lambda: caught_up(d), 60, what="the initial sync")
    # Start again without a stream, write, then ask for one.
    rc, out = stop(p)
    assert rc == 0, out
    os.unlink(os.path.join(d, "a-journal"))
    adir = os.path.join(d, "a")
    drc = cfg.pop("dr")
    os.unlink(os.path.join(adir, "status.json"))
    p, st = run_attach(d, procs, "a", dict(cfg, epoch=2))
    assert st["state"] == "ready" and "dr" not in st, st
    write_dev(st["device"], 50, 8, 11)
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(dict(cfg, epoch=2, dr=drc), f)
    p.send_signal(signal.SIGHUP)
    s = wait_for(lambda: caught_up(d), 60, what="the stream begun by SIGHUP")
    assert s["shipped"] > 0, s
    write_dev(st["device"], 60, 4, 12)
    wait_for(lambda: caught_up(d), 30, what="the new writes")
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(dict(cfg, epoch=2), f)
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: "dr" not in read_json(os.path.join(adir, "status.json")), 15,
             what="the stream ended")
    rc, out = stop(p)
    assert rc == 0, out
    assert same(cfg, cfg_b)
