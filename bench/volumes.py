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

Both file systems are made with the same mkfs options (those of
holdfast-volume's format: nothing zeroed, the files being sparse) and mounted in this
process's namespace (noatime). Reported: commits/s of each, and attach as
a fraction of loop (the issue's target for replicated volumes is 60 % of
local ext4-on-loop with two replicas; this measures the FUSE path alone).

    /usr/bin/python3 bench/volumes.py [--seconds 10] [--repeat 3] [--out FILE]
"""
import argparse
import json
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


def run_loop(work, seconds):
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
            return commits(mnt, seconds)
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(img)


def run_attach(vbin, work, seconds):
    adir = os.path.join(work, "attach")
    os.makedirs(adir, exist_ok=True)
    replica = os.path.join(work, "replica.data")
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump({"volume": "bench-0", "id": "bench", "epoch": 1, "size": SIZE,
                   "replica": replica, "format": True}, f)
    p = subprocess.Popen([vbin, "attach", adir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    mnt = os.path.join(work, "attach.mnt")
    os.makedirs(mnt, exist_ok=True)
    try:
        def ready():
            try:
                with open(os.path.join(adir, "status.json")) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                return None
            if st.get("state") == "failed":
                raise hb.BenchError(f"holdfast-volume attach failed: {st.get('message')}")
            return st if st.get("state") == "ready" else None
        st = hb.wait_for(ready, 60, what="holdfast-volume ready")
        subprocess.run(["mount", "-o", "noatime", st["device"], mnt], check=True)
        try:
            return commits(mnt, seconds)
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
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
        finally:
            shutil.rmtree(work, ignore_errors=True)
        runs.append({"loop_commits_s": base, "attach_commits_s": att,
                     "ratio": att / base})
        hb.log(f"volumes run {i + 1}/{a.repeat}: loop {base:.0f} commits/s, "
               f"attach (FUSE, repl=1) {att:.0f} commits/s = {100 * att / base:.0f}%")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    hb.log(f"volumes: median loop {med['loop_commits_s']:.0f} commits/s, attach "
           f"{med['attach_commits_s']:.0f} commits/s, {100 * med['ratio']:.0f}% of loop "
           f"over {a.repeat} runs")
    result = {"runs": runs, "median": med, "machine": hb.machine(),
              "seconds": a.seconds}
    if a.out:
        hb.write_result(a.out, result)
    print(json.dumps({"ratio_median": med["ratio"]}))


if __name__ == "__main__":
    main()
