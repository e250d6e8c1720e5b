#!/usr/bin/python3
"""Backups to S3: `holdfast-volume backup` against s3cmd, on one store.

A volume of SIZE MiB (a standalone `holdfast-volume attach` with a local
replica, no FUSE mount needed: written through its loop device with
direct I/O) holds DATA MiB of random bytes (incompressible, the worst
case) and zeros after; a snapshot is taken. Then, against s3rver on
loopback (tests/s3_harness.py, behind its SigV4-checking proxy, as the
tests use it), each repetition times:

  s3cmd      `s3cmd put` of the volume's DATA MiB of data (a file of the
             same bytes): the baseline for backups, what an operator would
             do by hand;
  full       `holdfast-volume backup` of the snapshot to a new prefix:
             every chunk read, hashed, compressed and uploaded;
  incr       an incremental backup after 1 MiB more was written and a
             second snapshot taken: reads and sends only that;
  restore    `holdfast-volume restore` of the full backup to a file
             (it fdatasyncs the file before it exits);
  s3cmd_get  `s3cmd get` of the object that repetition's `s3cmd put`
             uploaded, to a new file in the same directory: the baseline
             for restores. s3cmd does not sync what it wrote, so the
             fdatasync of its file afterwards is timed apart, as
             s3cmd_get_sync (not in the ratio).

Reported: seconds and MiB/s of data for each, full / s3cmd (put) and
restore / s3cmd_get as ratios of rates (the same run, the same store),
and restore / (s3cmd_get + its sync).

    /usr/bin/python3 bench/backup.py [--size 256] [--data 128] [--repeat 3] [--out FILE]
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import s3_harness  # noqa: E402

BIN = os.environ.get("HOLDFAST_VOLUME_BIN", os.path.join(ROOT, "build", "holdfast-volume"))
MiB = 1 << 20


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def wait(pred, secs, what):
    end = time.time() + secs
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError(f"timed out: {what}")


def attach(d, size):
    adir = os.path.join(d, "a")
    os.makedirs(adir)
    cfg = {"volume": "bench-vol", "id": "benchvol", "epoch": 1, "size": size,
           "replica": os.path.join(d, "replica", "data"), "format": False,
           "node": "n0", "key": "5a" * 32}
    os.makedirs(os.path.dirname(cfg["replica"]))
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([BIN, "attach", adir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    st = wait(lambda: read_json(os.path.join(adir, "status.json")).get("state") == "ready"
              and read_json(os.path.join(adir, "status.json")), 30, "attach ready")
    return p, adir, cfg, st


def snapshot(p, adir, ids):
    path = os.path.join(adir, "attach.json")
    cfg = read_json(path)
    cfg["snapshots"] = [{"id": i, "op": "take"} for i in ids]
    with open(path + ".new", "w") as f:
        json.dump(cfg, f)
    os.rename(path + ".new", path)
    p.send_signal(signal.SIGHUP)
    wait(lambda: read_json(os.path.join(adir, "status.json")).get("snapshots", {})
         .get(f"take:{ids[-1]}"), 30, "snapshot")


def timed(cmd, env):
    t = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0:2]}: {r.stderr}")
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256, help="volume MiB")
    ap.add_argument("--data", type=int, default=128, help="random MiB written")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hf-bench-backup-", dir="/var/tmp")
    res = {k: [] for k in ("s3cmd", "full", "incr", "restore", "s3cmd_get",
                           "s3cmd_get_sync")}
    with s3_harness.S3Server() as s3:
        env = dict(os.environ, HOLDFAST_S3_ACCESS_KEY=s3.access_key,
                   HOLDFAST_S3_SECRET_KEY=s3.secret_key)
        p, adir, cfg, st = attach(d, a.size * MiB)
        try:
            data = os.path.join(d, "data.bin")
            subprocess.run(["dd", "if=/dev/urandom", f"of={data}", "bs=1M",
                            f"count={a.data}", "status=none"], check=True)
            subprocess.run(["dd", f"if={data}", f"of={st['device']}", "bs=1M",
                            "oflag=direct", "status=none"], check=True)
            snapshot(p, adir, ["s1"])
            subprocess.run(["dd", "if=/dev/urandom", f"of={st['device']}", "bs=1M",
                            "count=1", f"seek={a.data + 4}", "oflag=direct",
                            "status=none"], check=True)
            snapshot(p, adir, ["s1", "s2"])
            cfgf = os.path.join(d, "s3cfg")
            with open(cfgf, "w") as f:
                f.write("[default]\n"
                        f"access_key = {s3.access_key}\nsecret_key = {s3.secret_key}\n"
                        f"host_base = 127.0.0.1:{s3.proxy.port}\n"
                        f"host_bucket = 127.0.0.1:{s3.proxy.port}\n"
                        "use_https = False\nsignature_v2 = False\n"
                        f"bucket_location = {s3.region}\n")
            subprocess.run([BIN, "s3", "--endpoint", s3.endpoint, "mb", "bench"], env=env,
                           check=True, capture_output=True)
            for i in range(a.repeat):
                res["s3cmd"].append(timed(["s3cmd", "-c", cfgf, "put", data,
                                           f"s3://bench/s3cmd-{i}/data.bin"], env))
                common = [BIN, "backup", "--endpoint", s3.endpoint, "--volume", "bench-vol",
                          "--to", f"s3://bench/run{i}", "--replica", cfg["replica"]]
                res["full"].append(timed(common + ["--snapshot", "s1", "--id", "full"], env))
                res["incr"].append(timed(common + ["--snapshot", "s2", "--id", "incr",
                                                   "--base", "full",
                                                   "--base-snapshot", "s1"], env))
                out = os.path.join(d, f"restore-{i}.img")
                res["restore"].append(timed([BIN, "restore", "--endpoint", s3.endpoint,
                                             "--from", f"s3://bench/run{i}", "--volume",
                                             "bench-vol", "--backup", "full", "--to", out],
                                            env))
                os.unlink(out)
                got = os.path.join(d, f"get-{i}.bin")
                res["s3cmd_get"].append(timed(["s3cmd", "-c", cfgf, "get",
                                               f"s3://bench/s3cmd-{i}/data.bin", got], env))
                if os.path.getsize(got) != a.data * MiB:
                    raise RuntimeError(f"s3cmd get: {os.path.getsize(got)} bytes")
                t = time.monotonic()
                fd = os.open(got, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                res["s3cmd_get_sync"].append(time.monotonic() - t)
                os.unlink(got)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
            shutil.rmtree(d, ignore_errors=True)
    summary = {k: {"median_s": round(statistics.median(v), 3),
                   "data_mib_per_s": round(a.data / statistics.median(v), 1)}
               for k, v in res.items() if k not in ("incr", "s3cmd_get_sync")}
    for k in ("incr", "s3cmd_get_sync"):
        summary[k] = {"median_s": round(statistics.median(res[k]), 3)}
    med = {k: statistics.median(v) for k, v in res.items()}
    summary["full_vs_s3cmd"] = round(med["s3cmd"] / med["full"], 2)
    summary["restore_vs_s3cmd_get"] = round(med["s3cmd_get"] / med["restore"], 2)
    summary["restore_vs_s3cmd_get_and_sync"] = round(
        statistics.median([g + s for g, s in zip(res["s3cmd_get"], res["s3cmd_get_sync"])])
        / med["restore"], 2)
    summary["runs"] = res
    print(json.dumps(summary, indent=2))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
