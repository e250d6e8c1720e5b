"""Replicated volumes' data path, standalone (src/volume/serve.h and
attach.h's remotes): node servers (`holdfast-volume serve`) with pools of
their own on loopback, an attach process that writes every block to its
local replica and to the remote ones, and the fencing and failure rules
of docs/design/volumes.md §6.2 and §4.4, and serve's reload. The tests
drive these processes as the agent does (test_agent_serve.py has the
agents drive them)."""
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


def run_attach(d, procs, name, cfg, timeout=30):
    """`holdfast-volume attach` of d/name with cfg as its attach.json: the
    process (in procs) and its first final status, ready or failed."""
    adir = os.path.join(d, name)
    os.makedirs(adir, exist_ok=True)
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([VOLUME_BIN, "attach", adir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    procs.append(p)
    st = wait_for(lambda: read_json(os.path.join(adir, "status.json")).get("state")
                  in ("ready", "failed") and read_json(os.path.join(adir, "status.json")),
                  timeout, what=f"attach {name}")
    return p, st


def start_attach(d, procs, name, serves, local=True, epoch=1, fmt=True, **over):
    cfg = {"volume": "svc-data-0", "id": VID, "epoch": epoch, "size": SIZE,
           "replica": os.path.join(d, "n0-replica") if local else None,
           "format": fmt, "node": "n0", "key": KEY,
           "remotes": [{"address": "127.0.0.1", "port": st["port"], "replica": f"r{i + 1}",
                        "node": f"n{i + 1}"} for i, (_, st, _) in enumerate(serves)]}
    cfg.update(over)
    cfg = {k: v for k, v in cfg.items() if v is not ...}
    p, st = run_attach(d, procs, name, cfg)
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


def test_three_replicas_end_byte_identical(env):
    """repl=3: a local replica and two node servers. What a mounted ext4
    writes with fsync reaches all three; after the detach the three data
    files are byte for byte the same and each is a clean ext4 holding the
    files; the servers recorded the attachment's epoch durably."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, epoch=3)
    assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
    data = write_files(mnt)
    # Discards reach the replicas too (TRIM): they stay thin and equal.
    os.unlink(os.path.join(mnt, "f7"))
    del data["f7"]
    subprocess.run(["fstrim", mnt], check=False)
    detach(p, mnt)
    assert read_json(os.path.join(d, "a", "status.json"))["state"] == "detached"
    # The node servers stop cleanly (the sanitizer build's leak check too).
    for i, (sp, _, _) in enumerate(serves):
        sp.send_signal(signal.SIGTERM)
        out, _ = sp.communicate(timeout=30)
        assert sp.returncode == 0, out
        assert read_json(os.path.join(d, f"n{i + 1}", "status.json"))["state"] == "stopped"
    files = [cfg["replica"]] + [replica_files(c, f"r{i + 1}")[0]
                                for i, (_, _, c) in enumerate(serves)]
    for f in files[1:]:
        assert os.path.getsize(f) == SIZE
        assert filecmp.cmp(files[0], f, shallow=False), f"{f} differs from {files[0]}"
    for f in files:
        fsck = subprocess.run(["e2fsck", "-fn", f], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    for name, b in data.items():
        out = subprocess.run(["debugfs", "-R", f"cat /{name}", files[2]], capture_output=True)
        assert out.stdout == b, name
    for i, (_, _, c) in enumerate(serves):
        assert meta_epoch(replica_files(c, f"r{i + 1}")[1]) == 3


def test_storage_less_attach_reads_and_writes_remotely(env):
    """"replica": null: every write and read goes to the node servers; a
    second attach (a later epoch, another storage-less node) reads the
    files back from them."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves, local=False)
    assert st["state"] == "ready", (st, p.stdout.read() if p.poll() is not None else "")
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    data = write_files(mnt, 3)
    detach(p, mnt)
    r1 = replica_files(serves[0][2], "r1")[0]
    r2 = replica_files(serves[1][2], "r2")[0]
    assert filecmp.cmp(r1, r2, shallow=False)
    p, st, _ = start_attach(d, procs, "b", serves, local=False, epoch=2, fmt=True,
                            node="n9")
    assert st["state"] == "ready", st
    subprocess.run(["mount", st["device"], mnt], check=True)
    for name, b in data.items():
        with open(os.path.join(mnt, name), "rb") as f:
            assert f.read() == b
    detach(p, mnt)


def test_wrong_ticket_and_old_epoch_are_refused(env):
    """A HELLO whose ticket does not match the volume's key is refused; so
    is one at an epoch older than the replica has seen (fencing), also
    after the node server restarts (the epoch is in meta)."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, _ = start_attach(d, procs, "bad", serves, key=..., ticket="00" * 32)
    assert st["state"] == "failed", st
    assert "ticket" in st["message"] and "r1" in st["message"], st
    assert p.wait(timeout=10) == 1
    # A ticket made for another node is no better.
    p, st, _ = start_attach(d, procs, "bad2", serves, key=...,
                            ticket=ticket(KEY, VID, 1, "elsewhere"))
    assert st["state"] == "failed" and "ticket" in st["message"], st
    # The right ticket, given as such, works; epoch 5 is recorded.
    p, st, _ = start_attach(d, procs, "good", serves, key=..., epoch=5,
                            ticket=ticket(KEY, VID, 5, "n0"))
    assert st["state"] == "ready", st
    detach(p)
    # Restart the first server: the epoch survives in its meta.
    serves[0][0].send_signal(signal.SIGTERM)
    assert serves[0][0].wait(timeout=20) == 0
    assert read_json(os.path.join(d, "n1", "status.json"))["state"] == "stopped"
    p1, st1, c1 = start_serve(d, procs, "n1", serves[0][2]["volumes"])
    assert st1["state"] == "ready", st1
    serves[0] = (p1, st1, c1)
    p, st, _ = start_attach(d, procs, "old", serves, epoch=4)
    assert st["state"] == "failed", st
    assert "fenced" in st["message"] and "epoch 5" in st["message"], st
    assert meta_epoch(replica_files(c1, "r1")[1]) == 5


WRITER = """
import os, sys
fd = os.open(sys.argv[1] + "/log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
out = open(sys.argv[2], "w")
i = 0
try:
    while True:
        os.write(fd, b"%08d\\n" % i)
        os.fsync(fd)
        out.write("%d\\n" % i); out.flush()
        i += 1
except OSError as e:
    print("error", e.errno, flush=True)
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_failed_node_server_gives_the_writer_eio(env, how):
    """kill -9 of a node server under a writer that commits (write +
    fsync), or a node server that stops answering (SIGSTOP: the replica
    timeout): the writer gets an I/O error, it does not hang; what was
    committed before is on the surviving replica."""
    d, procs = env
    serves = two_serves(d, procs)
    p, st, cfg = start_attach(d, procs, "a", serves)
    assert st["state"] == "ready", st
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    log = os.path.join(d, "acked")
    writer = subprocess.Popen(
        ["python3", "-c", WRITER, mnt, log], stdout=subprocess.PIPE, text=True)
    procs.append(writer)
    wait_for(lambda: os.path.exists(log) and os.path.getsize(log) > 200, 30,
             what="the writer's first commits")
    if how == "kill":
        serves[1][0].kill()
        serves[1][0].wait()
    else:
        serves[1][0].send_signal(signal.SIGSTOP)
    try:
        out, _ = writer.communicate(timeout=30)
    finally:
        if how == "stop":
            serves[1][0].send_signal(signal.SIGCONT)
    assert writer.returncode == 3 and out.startswith("error"), out
    st = wait_for(lambda: "r2" in (read_json(os.path.join(d, "a", "status.json"))
                                   .get("message") or "") and
                  read_json(os.path.join(d, "a", "status.json")), 10, what="status names r2")
    assert "EIO" in st["message"], st
    if how == "stop":
        assert "no answer in 3000 ms" in st["message"], st
    else:
        assert any(w in st["message"] for w in ("closed", "broke", "cannot send")), st
    subprocess.run(["umount", "-l", mnt], check=False)
    p.kill()
    p.wait()
    with open(log) as f:
        acked = [int(x) for x in f.read().split()]
    assert acked, "the writer committed nothing before the kill"
    # The surviving remote holds every committed record (after a journal
    # replay on a copy: the file system was not unmounted cleanly).
    copy = os.path.join(d, "r1-copy")
    shutil.copyfile(replica_files(serves[0][2], "r1")[0], copy)
    subprocess.run(["e2fsck", "-fy", copy], capture_output=True)
    got = subprocess.run(["debugfs", "-R", "cat /log", copy], capture_output=True,
                         text=True).stdout.split()
    assert [int(x) for x in got[:len(acked)]] == acked


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
    # A broken file: where, and never the text of a key near the break
    # (jansson quotes a token of up to 20 bytes: a key cut short).
    sdir = os.path.join(d, "s5")
    os.makedirs(sdir)
    with open(os.path.join(sdir, "serve.json"), "w") as f:
        f.write('{"pool": "/p",\n "volumes": [{"key": "c0ffee12\x01"}]}')
    r = subprocess.run([VOLUME_BIN, "serve", sdir], capture_output=True, text=True, timeout=10)
    st = read_json(os.path.join(sdir, "status.json"))
    assert r.returncode == 1 and st["state"] == "failed", (r, st)
    assert "serve.json:2:" in st["message"] and "c0ffee" not in st["message"] + r.stderr, st
    # A replica of another size is never served as this volume.
    p, st, cfg = start_serve(d, procs, "s4", [{"id": VID, "replica": "r1", "size": SIZE,
                                              "key": KEY}])
    assert st["state"] == "ready", st
    second = subprocess.run([VOLUME_BIN, "serve", os.path.join(d, "s4")],
                            capture_output=True, text=True, timeout=10)
    assert second.returncode == 3 and str(p.pid) in second.stderr, second.stderr
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    # Listed larger, it grew while closed (volume resize): grown at open.
    p, st, _ = start_serve(d, procs, "s4", [{"id": VID, "replica": "r1", "size": SIZE * 2,
                                            "key": KEY}], pool=cfg["pool"])
    assert st["state"] == "ready", st
    assert os.path.getsize(replica_files(cfg, "r1")[0]) == SIZE * 2
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    # Listed smaller: never shrunk, and not served as that volume.
    p, st, _ = start_serve(d, procs, "s4", [{"id": VID, "replica": "r1", "size": SIZE,
                                            "key": KEY}], pool=cfg["pool"])
    assert st["state"] == "failed" and "never shrink" in st["message"], st


def test_a_newer_attachment_fences_the_older_one(env):
    """Two attachments of one volume (the failover case: the old node was
    cut off, not dead): once the new one's HELLO raised the replicas'
    epoch, every write of the old one is refused (FENCED), so it can never
    get an acknowledgement again; the new one writes on."""
    d, procs = env
    serves = two_serves(d, procs)
    old, st_old, _ = start_attach(d, procs, "old", serves, local=False, fmt=False)
    assert st_old["state"] == "ready", st_old

    def dd(dev):
        return subprocess.run(["dd", "if=/dev/urandom", f"of={dev}", "bs=4096", "count=4",
                               "oflag=direct,sync"], capture_output=True, text=True)
    assert dd(st_old["device"]).returncode == 0
    new, st_new, _ = start_attach(d, procs, "new", serves, local=False, fmt=False, epoch=2,
                                  node="n7")
    assert st_new["state"] == "ready", st_new
    r = dd(st_old["device"])
    assert r.returncode != 0, r
    st = read_json(os.path.join(d, "old", "status.json"))
    assert "fenced" in st["message"] and "epoch 2" in st["message"], st
    assert dd(st_new["device"]).returncode == 0
    detach(new)
    old.kill()
    old.wait()


def test_a_broken_attach_file_does_not_quote_its_key(env):
    d, procs = env
    adir = os.path.join(d, "a")
    os.makedirs(adir)
    with open(os.path.join(adir, "attach.json"), "w") as f:
        f.write('{"volume": "v", "id": "v", "key": "c0ffee12\x01"}')
    r = subprocess.run([VOLUME_BIN, "attach", adir], capture_output=True, text=True,
                       timeout=10)
    st = read_json(os.path.join(adir, "status.json"))
    assert r.returncode == 1 and st["state"] == "failed", (r, st)
    assert "attach.json" in st["message"] and "c0ffee" not in st["message"] + r.stderr, st


def test_bad_remote_settings_fail_clearly(env):
    d, procs = env
    serves = two_serves(d, procs)
    cases = [({"node": ...}, '"node"'),
             ({"ticket": "00" * 32}, 'exactly one of "ticket" and "key"'),
             ({"key": "abc"}, '"key" must be 64 hex digits'),
             ({"replica": None, "remotes": []}, 'a local "replica" or "remotes"'),
             ({"remotes": [{"address": "127.0.0.1", "port": 0, "replica": "r1",
                            "node": "n1"}]}, '"port"'),
             ({"remotes": [{"address": "127.0.0.1", "port": serves[0][1]["port"],
                            "replica": "r9", "node": "n1"}]}, "no replica r9")]
    for i, (over, want) in enumerate(cases):
        p, st, _ = start_attach(d, procs, f"b{i}", serves, **over)
        assert st["state"] == "failed" and want in st["message"], (over, st)
        assert p.wait(timeout=10) == 1


def rewrite_serve(sdir, cfg):
    """As the agent does: the new file atomically, then SIGHUP."""
    tmp = os.path.join(sdir, "serve.json.new")
    with open(tmp, "w") as f:
        json.dump(cfg, f)
    os.rename(tmp, os.path.join(sdir, "serve.json"))


def test_sighup_reloads_the_served_set(env):
    """SIGHUP applies a new serve.json: a replica newly listed is created
    and served, one no longer listed is dropped (its connection closed,
    new HELLOs refused, its files left alone); a broken file, or one that
    moves the listen address, changes nothing and says so, and the server
    goes on."""
    d, procs = env
    vol = {"id": VID, "replica": "r1", "size": SIZE, "key": KEY}
    p, st, cfg = start_serve(d, procs, "n1", [vol])
    assert st["state"] == "ready" and st["generation"] == 1, st
    assert st["served"] == [{"id": VID, "replica": "r1"}], st
    sdir = os.path.join(d, "n1")
    serves = [(p, st, cfg)]
    a, ast, _ = start_attach(d, procs, "a", serves, local=False, fmt=False)
    assert ast["state"] == "ready", ast

    def dd(dev):
        return subprocess.run(["dd", "if=/dev/urandom", f"of={dev}", "bs=4096", "count=4",
                               "oflag=direct,sync"], capture_output=True, text=True)
    assert dd(ast["device"]).returncode == 0
    # vol-1 replaced by vol-2 in one reload.
    key2 = "6b" * 32
    cfg2 = dict(cfg, volumes=[{"id": "vol-2", "replica": "r5", "size": SIZE, "key": key2}])
    rewrite_serve(sdir, cfg2)
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: (lambda s: s if s.get("generation") == 2 else None)(
        read_json(os.path.join(sdir, "status.json"))), 30, what="the reload applied")
    assert st["state"] == "ready" and st["message"] is None, st
    assert st["served"] == [{"id": "vol-2", "replica": "r5"}] and st["replicas"] == 1, st
    assert st["port"] == serves[0][1]["port"], st
    data2 = os.path.join(cfg["pool"], "replicas", "vol-2", "r5", "data")
    assert os.path.getsize(data2) == SIZE and os.path.exists(data2[:-4] + "meta")
    # The dropped replica's files stay (deleting them is its owner's job),
    # and its connection is gone: the attachment's writes fail.
    assert os.path.exists(replica_files(cfg, "r1")[0])
    assert dd(ast["device"]).returncode != 0
    a.kill()
    a.wait()
    # A HELLO for it is refused now; the new one is served.
    b, bst, _ = start_attach(d, procs, "b", serves, local=False, fmt=False, epoch=2)
    assert bst["state"] == "failed" and "no replica r1" in bst["message"], bst
    c, cst, _ = start_attach(d, procs, "c", serves, local=False, fmt=False, id="vol-2",
                             key=key2, remotes=[{"address": "127.0.0.1",
                                                 "port": serves[0][1]["port"],
                                                 "replica": "r5", "node": "n1"}])
    assert cst["state"] == "ready", cst
    assert dd(cst["device"]).returncode == 0
    detach(c)
    # A broken file: not applied, the server goes on with its set.
    with open(os.path.join(sdir, "serve.json"), "w") as f:
        f.write('{"pool": ')
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: (lambda s: s if s.get("message") else None)(
        read_json(os.path.join(sdir, "status.json"))), 30, what="the refusal")
    assert st["state"] == "ready" and st["generation"] == 2, st
    assert "serve.json:1:" in st["message"] and "not applied" in st["message"], st
    assert st["served"] == [{"id": "vol-2", "replica": "r5"}], st
    # A new listen address takes a restart: refused the same way.
    rewrite_serve(sdir, dict(cfg2, listen="127.0.0.1:1"))
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: (lambda s: s if "listen" in (s.get("message") or "") else None)(
        read_json(os.path.join(sdir, "status.json"))), 30, what="the listen refusal")
    assert st["generation"] == 2 and "restart" in st["message"], st
    # Back to a good file: applied, the message cleared.
    rewrite_serve(sdir, dict(cfg2, volumes=cfg2["volumes"] + [vol]))
    p.send_signal(signal.SIGHUP)
    st = wait_for(lambda: (lambda s: s if s.get("generation") == 3 else None)(
        read_json(os.path.join(sdir, "status.json"))), 30, what="the third load")
    assert st["message"] is None and len(st["served"]) == 2, st
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert KEY not in out and key2 not in out
