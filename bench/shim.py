#!/usr/bin/python3
"""Benchmark: the shim on its own (no server, no agent).

memory   N tasks (`sleep 3600`) each under its own shim, started the way the
         agent starts them (launch.json, then `SHIM --dir TASKDIR`): the
         shims' Rss and Pss from /proc/PID/smaps_rollup, per shim. Old
         (the holdfast-shim next to BENCH_BEFORE's binary, or its `holdfast
         shim` for a binary from before holdfast-shim) against new (the
         holdfast-shim next to HOLDFAST_BIN), one set after the other.
restart  T tasks under shims with a restart policy; each task's process is
         SIGKILLed once and the time from the kill to its restarted
         process running (a new `sleep` child of the shim that has exec'd)
         is measured: the shim's first restart in place, which has no
         backoff. The new shim, then the old one if it restarts in place
         (an old shim that refuses the policy is skipped). Baseline, same
         run: T shell loops `while :; do sleep 3600; done`, each sleep
         killed once, kill -> a new sleep child of the loop has exec'd.
         Same polling for all.
exec     the program's own start-up, which every launch and every
         `holdfast shim` pays: posix_spawn of the shim without arguments
         until it has exited (a usage error, before any work of its own),
         R times each for old and new, alternating: the dynamic loader and
         libc's initialisation, or a static program's.

    bench/shim.py --before OLD_HOLDFAST [-n 50] [--tasks 30] [--exec-rounds 300]
                  [--out FILE]
"""
import argparse
import json
import shutil
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402


def sleep_child(pid):
    """A child of pid that has exec'd sleep (not a zombie), or None."""
    for c in hb.children(pid):
        st = hb.proc_stat(c)
        if st and st[0] == "sleep" and st[1] != "Z":
            return c
    return None


def smaps(pid):
    """(Rss, Pss) of pid in kB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k] = int(v.split()[0])
    return out["Rss"], out["Pss"]


def libs(pid):
    """Shared objects mapped by pid."""
    out = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            p = line.split()[-1]
            if ".so" in p:
                out.add(p)
    return len(out)


class Shims:
    """N shims, each with its task, under one temp dir; stopped on exit."""

    def __init__(self, b, argv, restart=None):
        # A private copy of the program, as hfbench does for holdfast: a
        # relink under a running benchmark must not break a start.
        copy = os.path.join(b.tmp, "shim-" + os.path.basename(argv[0]))
        shutil.copy2(argv[0], copy)
        self.b, self.argv, self.restart = b, [copy] + argv[1:], restart
        self.dirs = []

    def start(self, i):
        d = os.path.join(self.b.tmp, f"t{i}-{uuid.uuid4().hex[:8]}")
        sb = d + "-sandbox"
        os.makedirs(d)
        os.makedirs(sb)
        doc = {"task_id": "hfbench-shim-" + uuid.uuid4().hex, "cmd": "exec sleep 3600",
               "env": {"PATH": "/usr/bin:/bin"}, "sandbox": sb,
               "cgroup_parent": "holdfast"}
        if self.restart:
            doc["restart"] = self.restart
        with open(os.path.join(d, "launch.json.new"), "w") as f:
            json.dump(doc, f)
        os.rename(os.path.join(d, "launch.json.new"), os.path.join(d, "launch.json"))
        subprocess.run(self.argv + ["--dir", d], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=30)
        self.dirs.append(d)
        return self.status(d)

    @staticmethod
    def status(d):
        with open(os.path.join(d, "status.json")) as f:
            return json.load(f)

    def stop_all(self):
        pids = []
        for d in self.dirs:
            st = self.status(d)
            pids.append(st["shim_pid"])
            if st["state"] not in ("exited", "failed-to-start"):
                os.kill(st["shim_pid"], signal.SIGTERM)
        for p in pids:
            hb.wait_for(lambda: not os.path.exists(f"/proc/{p}") or hb.proc_stat(p)[1] == "Z",
                        30, 0.01, f"shim {p} to exit")
        self.dirs = []


def memory(n, argv, label):
    with hb.Bench("shim-mem") as b:
        s = Shims(b, argv)
        try:
            sts = [s.start(i) for i in range(n)]
            time.sleep(1)  # let every shim settle in its poll loop
            rss, pss = zip(*(smaps(st["shim_pid"]) for st in sts))
            nlibs = libs(sts[0]["shim_pid"])
        finally:
            s.stop_all()
    r = {"label": label, "n": n, "rss_kb": hb.summary(list(rss)),
         "pss_kb": hb.summary(list(pss)), "pss_total_kb": sum(pss),
         "shared_objects": nlibs}
    hb.log(f"{label}: per shim RSS median {r['rss_kb']['median']} kB, PSS median "
           f"{r['pss_kb']['median']} kB (total PSS {sum(pss)} kB for {n}), "
           f"{nlibs} shared objects")
    return r


def shim_restarts(tasks, argv, poll, timeout):
    lat = []
    with hb.Bench("shim-restart") as b:
        s = Shims(b, argv, restart={"backoff_base": 1, "backoff_max": 60,
                                    "reset_after": 120})
        try:
            sts = [s.start(i) for i in range(tasks)]
            for st in sts:
                shim = st["shim_pid"]
                cur = hb.wait_for(lambda: sleep_child(shim), 10, 0.001, "the task")
                t0 = time.monotonic()
                os.kill(cur, signal.SIGKILL)
                while True:
                    c = sleep_child(shim)
                    if c and c != cur:
                        break
                    if time.monotonic() - t0 > timeout:
                        raise hb.BenchError("shim: no restart")
                    time.sleep(poll)
                lat.append(time.monotonic() - t0)
            # The status is written once the new process has exec'd, so
            # it may trail what was measured by a moment.
            hb.wait_for(lambda: all(s.status(d)["restarts"] == 1 for d in s.dirs),
                        10, 0.01, "one restart each in status.json")
        finally:
            s.stop_all()
    return lat


def loop_restarts(tasks, poll, timeout):
    lat = []
    with hb.Bench("shim-loop") as b:
        groups = [b.shell_loop("sleep 3600") for _ in range(tasks)]
        for g in groups:
            cur = hb.wait_for(lambda: sleep_child(g.pid), 10, 0.001, "the loop's sleep")
            t0 = time.monotonic()
            os.kill(cur, signal.SIGKILL)
            while True:
                c = sleep_child(g.pid)
                if c and c != cur:
                    break
                if time.monotonic() - t0 > timeout:
                    raise hb.BenchError("loop: no respawn")
                time.sleep(poll)
            lat.append(time.monotonic() - t0)
        for g in groups:
            b.kill_group(g)
    return lat


def exec_times(argv, rounds):
    """Seconds from posix_spawn of argv (no further arguments: a usage
    error) to its exit, per round, for each program in argv alternately."""
    out = [[] for _ in argv]
    for _ in range(rounds):
        for i, a in enumerate(argv):
            t0 = time.monotonic()
            pid = os.posix_spawn(a[0], a, {}, file_actions=[
                (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
            _, st = os.waitpid(pid, 0)
            out[i].append(time.monotonic() - t0)
            if os.waitstatus_to_exitcode(st) != 2:
                raise hb.BenchError(f"{a}: not a usage error")
    return out


def ms(s):
    return {k: (v * 1000 if isinstance(v, float) else v) for k, v in s.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="baseline holdfast binary (the holdfast-shim next to it, else its `holdfast shim`)")
    ap.add_argument("-n", type=int, default=50, help="shims for the memory figures")
    ap.add_argument("--tasks", type=int, default=30, help="tasks killed once each")
    ap.add_argument("--poll", type=float, default=0.0002, help="polling interval (s)")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--exec-rounds", type=int, default=300, help="starts of each program")
    ap.add_argument("--out")
    a = ap.parse_args()
    new = [os.path.join(os.path.dirname(hb.BIN), "holdfast-shim")]
    # Shims copies the program it runs: `holdfast shim` of a copy would
    # exec the holdfast-shim next to that copy (HOLDFAST_BIN's), so the
    # baseline's own holdfast-shim is run directly when it has one.
    old_shim = os.path.join(os.path.dirname(a.before), "holdfast-shim")
    old = [old_shim] if os.path.exists(old_shim) else [a.before, "shim"]
    r = {"machine": hb.machine(), "n": a.n, "tasks": a.tasks}
    r["memory_old"] = memory(a.n, old, "old (" + " ".join(os.path.basename(x) for x in old) + " of --before)")
    r["memory_new"] = memory(a.n, new, "new (holdfast-shim)")
    shim = shim_restarts(a.tasks, new, a.poll, a.timeout)
    try:
        r["restart_old_ms"] = ms(hb.summary(shim_restarts(a.tasks, old, a.poll, a.timeout)))
    except subprocess.CalledProcessError:
        hb.log("old: its shim refuses a restart policy; no restart figures")
        r["restart_old_ms"] = None
    loop = loop_restarts(a.tasks, a.poll, a.timeout)
    eo, en = exec_times([old, new], a.exec_rounds)
    r["exec_old_ms"], r["exec_new_ms"] = ms(hb.summary(eo)), ms(hb.summary(en))
    r["restart_shim_ms"] = ms(hb.summary(shim))
    r["restart_loop_ms"] = ms(hb.summary(loop))
    r["ratio_median"] = r["restart_shim_ms"]["median"] / r["restart_loop_ms"]["median"]
    r["ratio_p99"] = r["restart_shim_ms"]["p99"] / r["restart_loop_ms"]["p99"]
    hb.write_result(a.out, r)
    mo, mn = r["memory_old"], r["memory_new"]
    print(f"shim memory, {a.n} tasks, per shim (median): "
          f"old RSS {mo['rss_kb']['median']} kB PSS {mo['pss_kb']['median']} kB "
          f"({mo['shared_objects']} shared objects); "
          f"new RSS {mn['rss_kb']['median']} kB PSS {mn['pss_kb']['median']} kB "
          f"({mn['shared_objects']} shared objects)")
    f = lambda s: f"p50 {s['median']:.2f} ms, p99 {s['p99']:.2f} ms"  # noqa: E731
    print(f"first restart after kill -9, {a.tasks} tasks: shim in place "
          f"{f(r['restart_shim_ms'])}; shell loop {f(r['restart_loop_ms'])}; "
          f"ratio p50 {r['ratio_median']:.2f}x, p99 {r['ratio_p99']:.2f}x")
    print(f"start-up to exit (usage error), {a.exec_rounds} each: old {f(r['exec_old_ms'])}; "
          f"new {f(r['exec_new_ms'])}")
    if r["restart_old_ms"]:
        print(f"first restart after kill -9, {a.tasks} tasks: old shim in place "
              f"{f(r['restart_old_ms'])}")


if __name__ == "__main__":
    main()
