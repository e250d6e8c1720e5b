"""Backups of volume snapshots to an S3 store (src/volume/backup.h:
`holdfast-volume backup|restore|backups`) against s3rver behind the
harness's SigV4-checking proxy: a full backup of a snapshot taken while
the file system is mounted and written on, an incremental one that reads
and uploads only what changed, a run cut short that uploads only what is
missing when run again, restores that give back each snapshot's files,
a restore killed in the middle that goes on where it was, and refusals
that say why."""
import hashlib
import json
import os
import random
import signal
import subprocess

from holdfast_harness import wait_for
from test_volume_repl import VOLUME_BIN, detach, env, read_json, start_attach  # noqa: F401
from test_volume_snapshots import cat, done, request, write
from xvol_s3 import s3  # noqa: F401

MiB = 1 << 20


def run(s3, *args, secret=None):
    e = dict(os.environ)
    e["HOLDFAST_S3_ACCESS_KEY"] = s3.access_key
    e["HOLDFAST_S3_SECRET_KEY"] = secret or s3.secret_key
    return subprocess.run([VOLUME_BIN, *args], env=e, capture_output=True, text=True,
                          timeout=300)


def s3cmd_ls(s3, tmp, prefix):
    r = run(s3, "s3", "--endpoint", s3.endpoint, "ls", prefix)
    assert r.returncode == 0, r.stderr
    return [ln.split(" ", 1)[1] for ln in r.stdout.splitlines()]


def take(d, p, name, ids):
    request(d, "a", [{"id": i, "op": "take"} for i in ids])
    p.send_signal(signal.SIGHUP)
    r = wait_for(lambda: done(d, "a", f"take:{name}"), 30, what=f"{name} taken")
    assert r["ok"], r


def test_full_incremental_resume_restore(env, s3, tmp_path):
    d, procs = env
    assert run(s3, "s3", "--endpoint", s3.endpoint, "mb", "backups").returncode == 0
    p, st, cfg = start_attach(d, procs, "a", [], epoch=1)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    rnd = random.Random(5)
    big = rnd.randbytes(12 * MiB)
    small = b"version one\n"
    write(mnt, "big", big)
    write(mnt, "small", small)
    take(d, p, "s1", ["s1"])
    # Written after s1: the backup of s1 must not see it.
    write(mnt, "small", b"version two\n")
    common = ["--endpoint", s3.endpoint, "--volume", "vol-a"]
    status = str(tmp_path / "status.json")
    r = run(s3, "backup", *common, "--to", "s3://backups/site1", "--replica",
            cfg["replica"], "--snapshot", "s1", "--id", "b1", "--status", status)
    assert r.returncode == 0, r.stderr
    st1 = read_json(status)
    assert st1["state"] == "done" and st1["done"] == st1["total"] == 128 * MiB, st1
    assert st1["uploaded"] >= 12 * MiB and st1["stored"] < st1["uploaded"] + MiB, st1
    take(d, p, "s2", ["s1", "s2"])
    # b2: incremental on b1; only the small file's chunks changed.
    r = run(s3, "backup", *common, "--to", "s3://backups/site1", "--replica",
            cfg["replica"], "--snapshot", "s2", "--id", "b2", "--base", "b1",
            "--base-snapshot", "s1", "--status", status)
    assert r.returncode == 0, r.stderr
    st2 = read_json(status)
    assert st2["reused"] > 100 * MiB, st2
    assert st2["uploaded"] < 4 * MiB, st2
    man = json.loads(run(s3, "s3", "--endpoint", s3.endpoint, "get",
                         "backups/site1/vol-a/backups/b2.json", "-").stdout)
    assert man["parent"] == "b1" and man["snapshot"] == "s2" and man["size"] == 128 * MiB
    # The list.
    r = run(s3, "backups", *common, "--from", "s3://backups/site1")
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert lines[0].startswith("b1 ") and "parent=-" in lines[0], lines
    assert lines[1].startswith("b2 ") and "parent=b1" in lines[1], lines
    detach(p, mnt)
    # Restores give back each snapshot's files.
    for b, want in (("b1", b"version one\n"), ("b2", b"version two\n")):
        out = str(tmp_path / f"{b}.img")
        r = run(s3, "restore", *common, "--from", "s3://backups/site1", "--backup", b,
                "--to", out)
        assert r.returncode == 0, r.stderr
        assert cat(out, "small") == want, b
        assert cat(out, "big") == big, b
    # A run cut short: the manifest and half the chunks are missing; the
    # same backup run again uploads only those, then restores whole.
    keys = s3cmd_ls(s3, tmp_path, "backups/site1/vol-a/chunks/")
    assert len(keys) >= 12, keys
    for k in keys[::2]:
        assert run(s3, "s3", "--endpoint", s3.endpoint, "rm", "backups/" + k).returncode == 0
    assert run(s3, "s3", "--endpoint", s3.endpoint, "rm",
               "backups/site1/vol-a/backups/b1.json").returncode == 0
    r = run(s3, "backup", *common, "--to", "s3://backups/site1", "--replica",
            cfg["replica"], "--snapshot", "s1", "--id", "b1", "--status", status)
    assert r.returncode == 0, r.stderr
    st3 = read_json(status)
    assert st3["present"] > 0 and 0 < st3["uploaded"] < st1["uploaded"], (st1, st3)
    out = str(tmp_path / "again.img")
    assert run(s3, "restore", *common, "--from", "s3://backups/site1", "--backup", "b1",
               "--to", out).returncode == 0
    assert cat(out, "big") == big


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def chunk_gets(s3):
    return [e for e in s3.proxy.entries()
            if e["method"] == "GET" and "/chunks/" in e["target"] and e.get("status") == 200]


def start_held_restore(s3, args, status, after):
    """A restore whose first `after` chunk GETs pass and whose four
    workers then wait at the proxy's gate; returns once those chunks are
    written and synced (the status says so: done counts only that)."""
    e = dict(os.environ, HOLDFAST_S3_ACCESS_KEY=s3.access_key,
             HOLDFAST_S3_SECRET_KEY=s3.secret_key)
    s3.proxy.hold_gets(after=after, match="/chunks/")
    proc = subprocess.Popen([VOLUME_BIN, *args, "--status", status], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        st = wait_for(lambda: s3.proxy.held_gets == 4 and read_json(status).get("done") == after * MiB
                      and read_json(status), 60, what=f"{after} chunks restored, the rest held")
    except BaseException:
        proc.kill()
        proc.communicate()
        s3.proxy.release_gets()
        raise
    return proc, st


def kill_held_restore(s3, proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    s3.proxy.release_gets()
    # The held GETs go on to s3rver and answer a dead client: wait for them.
    wait_for(lambda: s3.proxy.in_flight == 0, 30, what="the proxy idle")


def test_a_restore_cut_short_goes_on_where_it_was(env, s3, tmp_path):
    """A restore killed (SIGKILL) in the middle and run again with the
    same arguments fetches only the chunks it had not yet written and
    gives an image byte-identical to one restored in one go; its status
    says how far it is and how much it found written; a record torn at
    the journal's end is ignored; a second restore to the same file while
    one runs, and a restore of another backup onto the journal of the
    first, are refused and change nothing."""
    d, procs = env
    assert run(s3, "s3", "--endpoint", s3.endpoint, "mb", "resume").returncode == 0
    p, st, cfg = start_attach(d, procs, "a", [], epoch=1)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    big = random.Random(7).randbytes(20 * MiB)
    write(mnt, "big", big)
    take(d, p, "s1", ["s1"])
    common = ["--endpoint", s3.endpoint, "--volume", "vol-r"]
    for b in ("r1", "r2"):  # the same snapshot: the same chunks, two manifests
        r = run(s3, "backup", *common, "--to", "s3://resume", "--replica", cfg["replica"],
                "--snapshot", "s1", "--id", b)
        assert r.returncode == 0, r.stderr
    detach(p, mnt)
    man = json.loads(run(s3, "s3", "--endpoint", s3.endpoint, "get",
                         "resume/vol-r/backups/r1.json", "-").stdout)
    data = len(man["chunks"])
    assert data >= 20 and man["size"] % MiB == 0, man  # whole chunks: 1 MiB each
    restore = ["restore", *common, "--from", "s3://resume", "--backup", "r1"]
    whole = str(tmp_path / "whole.img")
    r = run(s3, *restore, "--to", whole)
    assert r.returncode == 0, r.stderr
    want = sha256_of(whole)  # before cat: its e2fsck writes to the image
    assert cat(whole, "big") == big

    out = str(tmp_path / "cut.img")
    journal = out + ".progress"
    status = str(tmp_path / "restore-status.json")
    s3.proxy.clear()
    proc, st1 = start_held_restore(s3, [*restore, "--to", out], status, 6)
    assert st1["state"] == "running" and st1["present"] == 0, st1
    assert st1["total"] == data * MiB and st1["size"] == man["size"], st1
    assert os.path.exists(out) and os.path.exists(journal)
    # While it runs, a second restore to the same file is refused.
    try:
        r = run(s3, *restore, "--to", out)
    finally:
        kill_held_restore(s3, proc)
    assert r.returncode == 1 and "another restore to this file is running" in r.stderr, r.stderr
    first = len(chunk_gets(s3))
    assert first >= 6, first
    # A record cut short by the crash: the next run ignores it.
    with open(journal, "ab") as f:
        f.write(b"HFRJC\0\0\0\x40\0\0\0" + b"\x01" * 9)
    s3.proxy.clear()
    r = run(s3, *restore, "--to", out, "--status", status)
    assert r.returncode == 0, r.stderr
    assert "6 of them written by a run before" in r.stdout, r.stdout
    st2 = read_json(status)
    assert st2["state"] == "done" and st2["present"] == 6 * MiB, st2
    assert st2["done"] == st2["total"] == data * MiB, st2
    assert len(chunk_gets(s3)) == data - 6, (data, len(chunk_gets(s3)))
    assert not os.path.exists(journal)
    assert sha256_of(out) == want
    assert os.stat(out).st_blocks * 512 < man["size"] // 2  # still sparse

    # A journal of r1's restore does not let a restore of r2 (another
    # manifest) go on from it: refused, nothing changed; r1 goes on.
    out2 = str(tmp_path / "other.img")
    s3.proxy.clear()
    proc, _ = start_held_restore(s3, [*restore, "--to", out2], status, 3)
    kill_held_restore(s3, proc)
    before = (sha256_of(out2), sha256_of(out2 + ".progress"))
    r = run(s3, "restore", *common, "--from", "s3://resume", "--backup", "r2", "--to", out2)
    assert r.returncode == 1 and "journal of another restore (backup r1 of volume vol-r" in r.stderr, \
        r.stderr
    assert (sha256_of(out2), sha256_of(out2 + ".progress")) == before
    r = run(s3, *restore, "--to", out2)
    assert r.returncode == 0 and "3 of them written by a run before" in r.stdout, r.stdout + r.stderr
    assert sha256_of(out2) == want
    assert cat(out2, "big") == big


def test_refusals_say_why(env, s3, tmp_path):
    d, procs = env
    assert run(s3, "s3", "--endpoint", s3.endpoint, "mb", "refusals").returncode == 0
    p, st, cfg = start_attach(d, procs, "a", [], epoch=1)
    assert st["state"] == "ready", st
    common = ["--endpoint", s3.endpoint, "--volume", "vol-b"]
    # No such snapshot.
    r = run(s3, "backup", *common, "--to", "s3://refusals", "--replica", cfg["replica"],
            "--snapshot", "nope")
    assert r.returncode == 1 and "holds no snapshot nope" in r.stderr, r.stderr
    # A wrong secret: refused by the store; the secret is not repeated.
    take(d, p, "s1", ["s1"])
    r = run(s3, "backup", *common, "--to", "s3://refusals", "--replica", cfg["replica"],
            "--snapshot", "s1", secret="not-the-secret-xyz")
    assert r.returncode == 1 and "403" in r.stderr, r.stderr
    assert "not-the-secret-xyz" not in r.stderr + r.stdout
    # An incremental whose base snapshot the replica no longer holds.
    r = run(s3, "backup", *common, "--to", "s3://refusals", "--replica", cfg["replica"],
            "--snapshot", "s1", "--id", "full")
    assert r.returncode == 0, r.stderr
    r = run(s3, "backup", *common, "--to", "s3://refusals", "--replica", cfg["replica"],
            "--snapshot", "s1", "--base", "full", "--base-snapshot", "gone")
    assert r.returncode == 1 and "does not hold the base snapshot gone" in r.stderr, r.stderr
    # A restore of a missing backup, and onto an existing file.
    out = str(tmp_path / "x.img")
    r = run(s3, "restore", *common, "--from", "s3://refusals", "--backup", "nope", "--to", out)
    assert r.returncode == 1 and "backup nope" in r.stderr and not os.path.exists(out), r.stderr
    open(out, "w").close()
    r = run(s3, "restore", *common, "--from", "s3://refusals", "--backup", "full", "--to", out)
    assert r.returncode == 1 and "File exists" in r.stderr, r.stderr
    # Usage.
    r = run(s3, "backup", *common, "--to", "http://x")
    assert r.returncode == 2 and "usage" in r.stderr
    detach(p)


def test_an_encrypted_volume_leaves_no_plaintext_in_snapshots_or_the_store(env, s3, tmp_path):
    """With encryption_key (secure=true), a marker written in the file
    system is in no replica file, snapshot file or stored object; the
    restored image opens with the volume's key and holds the marker, and
    with another key the attach fails saying so, writing nothing."""
    from test_volume_encryption import DATA_KEY, MARKER, OTHER_KEY, write_marker
    d, procs = env
    assert run(s3, "s3", "--endpoint", s3.endpoint, "mb", "sealed").returncode == 0
    p, st, cfg = start_attach(d, procs, "a", [], epoch=1, encryption_key=DATA_KEY)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    payload = write_marker(mnt)
    take(d, p, "s1", ["s1"])
    # Overwritten after s1: the snapshot keeps the old (marker) blocks.
    write(mnt, "secret.txt", b"\0" * len(payload))
    take(d, p, "s2", ["s1", "s2"])
    common = ["--endpoint", s3.endpoint, "--volume", "vol-e"]
    r = run(s3, "backup", *common, "--to", "s3://sealed", "--replica", cfg["replica"],
            "--snapshot", "s1", "--id", "e1", "--encrypted")
    assert r.returncode == 0, r.stderr
    detach(p, mnt)
    scanned = 0
    for root in (d, s3.tmp):
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                scanned += 1
                assert MARKER not in data, path
    assert scanned > 10
    assert any(n.endswith(".cow") for _, _, fs in os.walk(d) for n in fs)
    man = json.loads(run(s3, "s3", "--endpoint", s3.endpoint, "get",
                         "sealed/vol-e/backups/e1.json", "-").stdout)
    assert man["encrypted"] is True, man
    # The restored image: the volume's key reads it, another key does not.
    img = str(tmp_path / "e1.img")
    r = run(s3, "restore", *common, "--from", "s3://sealed", "--backup", "e1", "--to", img)
    assert r.returncode == 0, r.stderr
    before = open(img, "rb").read()
    p, st, _ = start_attach(d, procs, "b", [], epoch=2, fmt=True, replica=img,
                            encryption_key=OTHER_KEY)
    assert st["state"] == "failed" and "does not decrypt" in st["message"], st
    p.wait(timeout=30)
    assert open(img, "rb").read() == before
    p, st, _ = start_attach(d, procs, "c", [], epoch=3, fmt=False, replica=img,
                            encryption_key=DATA_KEY)
    assert st["state"] == "ready", st
    mnt2 = os.path.join(d, "mnt2")
    os.mkdir(mnt2)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt2], check=True)
    with open(os.path.join(mnt2, "secret.txt"), "rb") as f:
        assert f.read() == payload
    detach(p, mnt2)
