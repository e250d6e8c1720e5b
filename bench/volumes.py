#!/usr/bin/python3
"""Volumes: commits through holdfast-volume against ext4 on a local loop.

A commit is what a database's log does: write 4 KiB at the end of a file,
then fdatasync. For each repetition, SECONDS of commits by one writer on:

  loop     ext4 on a loop device (direct I/O) over a sparse file on the
           benchmark's data file system: the baseline, a node's local disk
           as holdfast's MOUNT volumes give it;
  attach   ext4 on the loop device of `holdfast-volume attach` (the volume's
           replica served through FUSE, repl=1): every write goes through
           the FUSE process to the replica file, every flush waits for its
           fdatasync.
  repl2    the same with a second replica behind `holdfast-volume serve` on
           loopback (its own pool directory on the same file system): every
           write is sent to it and pwritten locally before the reply, every
           flush waits for both fdatasyncs (the local one and the remote's
           FLUSH_OK). Both replicas share the machine's one disk, as every
           "node" does here.

  *_secure the attach and repl2 runs again with an encrypted volume
           (attach.json's encryption_key, AES-256-XTS in the attach
           process: `secure=true`), for encryption's cost.

Then sequential throughput on loop, attach and attach_secure: a 256 MiB
file written in 1 MiB O_DIRECT writes, then fsync (MiB/s over the whole),
where encryption's per-byte cost shows (commits are bound by flushes).

Both file systems are made with the same mkfs options (those of
holdfast-volume's format: nothing zeroed, the files being sparse) and mounted in this
process's namespace (noatime). Reported: commits/s of each, and attach and
repl2 as fractions of loop (the issue's target for replicated volumes is
60 % of local ext4-on-loop with two replicas: repl2's ratio).

    /usr/bin/python3 bench/volumes.py [--seconds 10] [--repeat 3] [--out FILE]
"""
import argparse
import json
import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

SIZE = 1 << 30
MKFS = ["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-E",
        "nodiscard,assume_storage_prezeroed=1"]


def commits(mnt, seconds):
    """Commits/s of one writer appending 4 KiB + fdatasync under mnt."""
    block = os.urandom(4096)
    fd = os.open(os.path.join(mnt, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        n = 0
        end = time.monotonic() + seconds
        t0 = time.monotonic()
        while time.monotonic() < end:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)


def sequential(mnt, seconds=None, mib=256):
    """MiB/s of 1 MiB O_DIRECT writes of a new mib MiB file, then fsync."""
    buf = mmap.mmap(-1, 1 << 20)
    buf.write(os.urandom(1 << 20))
    path = os.path.join(mnt, "seq")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    try:
        t0 = time.monotonic()
        for _ in range(mib):
            os.write(fd, buf)
        os.fsync(fd)
        return mib / (time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(path)


def run_loop(work, seconds, job=commits):
    img = os.path.join(work, "loop.img")
    with open(img, "wb") as f:
        f.truncate(SIZE)
    dev = subprocess.run(["losetup", "--direct-io=on", "-b", "4096", "-f", "--show", img],
                         check=True, capture_output=True, text=True).stdout.strip()
    mnt = os.path.join(work, "loop.mnt")
    os.makedirs(mnt, exist_ok=True)
    try:
        subprocess.run(MKFS + [dev], check=True)
        subprocess.run(["mount", "-o", "noatime", dev, mnt], check=True)
        try:
            return job(mnt, seconds)
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(img)


KEY = "42" * 32


def read_status(path, what):
    try:
        with open(path) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return None
    if st.get("state") == "failed":
        raise hb.BenchError(f"{what} failed: {st.get('message')}")
    return st if st.get("state") == "ready" else None


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def start_serve(vbin, work):
    """A node server on loopback with one replica of the volume."""
    sdir = os.path.join(work, "serve")
    os.makedirs(sdir, exist_ok=True)
    with open(os.path.join(sdir, "serve.json"), "w") as f:
        json.dump({"pool": os.path.join(work, "pool"), "listen": "127.0.0.1:0",
                   "volumes": [{"id": "bench", "replica": "r2", "size": SIZE,
                                "key": KEY}]}, f)
    p = subprocess.Popen([vbin, "serve", sdir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        st = hb.wait_for(lambda: read_status(os.path.join(sdir, "status.json"),
                                             "holdfast-volume serve"),
                         60, what="holdfast-volume serve ready")
    except BaseException:
        stop(p)
        raise
    return p, st["port"]


DATA_KEY = bytes(range(64)).hex()


def run_attach(vbin, work, seconds, remote_port=None, secure=False, job=commits):
    adir = os.path.join(work, "attach")
    os.makedirs(adir, exist_ok=True)
    replica = os.path.join(work, "replica.data")
    cfg = {"volume": "bench-0", "id": "bench", "epoch": 1, "size": SIZE,
           "replica": replica, "format": True}
    if remote_port:
        cfg.update(node="n1", key=KEY, remotes=[{"address": "127.0.0.1",
                                                  "port": remote_port,
                                                  "replica": "r2", "node": "n2"}])
    if secure:
        cfg["encryption_key"] = DATA_KEY
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([vbin, "attach", adir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    mnt = os.path.join(work, "attach.mnt")
    os.makedirs(mnt, exist_ok=True)
    try:
        st = hb.wait_for(lambda: read_status(os.path.join(adir, "status.json"),
                                             "holdfast-volume attach"),
                         60, what="holdfast-volume ready")
        subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
        try:
            return job(mnt, seconds)
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        stop(p)
        shutil.rmtree(adir, ignore_errors=True)
        if os.path.exists(replica):
            os.unlink(replica)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    vbin = os.path.join(os.path.dirname(hb.BIN), "holdfast-volume")
    if not os.access(vbin, os.X_OK):
        raise SystemExit(f"volumes: {vbin} is missing (make build/holdfast-volume)")
    runs = []
    for i in range(a.repeat):
        work = tempfile.mkdtemp(prefix="hfbench-volumes-", dir=hb.data_root())
        try:
            base = run_loop(work, a.seconds)
            att = run_attach(vbin, work, a.seconds)
            att_s = run_attach(vbin, work, a.seconds, secure=True)
            serve, port = start_serve(vbin, work)
            try:
                repl2 = run_attach(vbin, work, a.seconds, remote_port=port)
                repl2_s = run_attach(vbin, work, a.seconds, remote_port=port,
                                     secure=True)
            finally:
                stop(serve)
            seq = run_loop(work, None, job=sequential)
            seq_att = run_attach(vbin, work, None, job=sequential)
            seq_att_s = run_attach(vbin, work, None, secure=True, job=sequential)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        runs.append({"loop_commits_s": base, "attach_commits_s": att,
                     "ratio": att / base, "repl2_commits_s": repl2,
                     "repl2_ratio": repl2 / base,
                     "attach_secure_commits_s": att_s,
                     "attach_secure_ratio": att_s / base,
                     "repl2_secure_commits_s": repl2_s,
                     "repl2_secure_ratio": repl2_s / base,
                     "loop_seq_mib_s": seq, "attach_seq_mib_s": seq_att,
                     "attach_secure_seq_mib_s": seq_att_s,
                     "secure_seq_ratio": seq_att_s / seq_att})
        hb.log(f"volumes run {i + 1}/{a.repeat}: loop {base:.0f} commits/s, "
               f"attach (FUSE, repl=1) {att:.0f} commits/s = {100 * att / base:.0f}%, "
               f"encrypted {att_s:.0f} = {100 * att_s / base:.0f}%, "
               f"repl=2 {repl2:.0f} commits/s = {100 * repl2 / base:.0f}%, "
               f"encrypted {repl2_s:.0f} = {100 * repl2_s / base:.0f}%; sequential "
               f"loop {seq:.0f} MiB/s, attach {seq_att:.0f}, encrypted {seq_att_s:.0f} "
               f"({100 * seq_att_s / seq_att:.0f}% of attach)")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    hb.log(f"volumes: median loop {med['loop_commits_s']:.0f} commits/s, attach "
           f"{med['attach_commits_s']:.0f} commits/s, {100 * med['ratio']:.0f}% of loop, "
           f"repl=2 {med['repl2_commits_s']:.0f} commits/s, "
           f"{100 * med['repl2_ratio']:.0f}% of loop over {a.repeat} runs")
    result = {"runs": runs, "median": med, "machine": hb.machine(),
              "seconds": a.seconds}
    if a.out:
        hb.write_result(a.out, result)
    hb.log(f"volumes: encrypted: attach {100 * med['attach_secure_ratio']:.0f}%, repl=2 "
           f"{100 * med['repl2_secure_ratio']:.0f}% of loop commits; sequential "
           f"{med['attach_secure_seq_mib_s']:.0f} MiB/s against "
           f"{med['attach_seq_mib_s']:.0f} unencrypted "
           f"({100 * med['secure_seq_ratio']:.0f}%), loop {med['loop_seq_mib_s']:.0f}")
    print(json.dumps({"ratio_median": med["ratio"],
                      "repl2_ratio_median": med["repl2_ratio"],
                      "secure_seq_ratio_median": med["secure_seq_ratio"]}))


if __name__ == "__main__":
    main()
