#!/usr/bin/python3
"""Benchmark 2: restart latency after kill -9 of a RUNNING task.

holdfast: a fresh server (with the given --backoff/--backoff-max) and
agent; one pod with one `sleep 3600` task. K times: SIGKILL the task's
process (the pid in its status.json: the `sh -c` wrapper the shim
starts), then measure
  - respawn: kill -> a new task directory's status.json says running and
    names a pid that exists;
  - exec:    kill -> that process has a `sleep` child (dash forks the
    command of `sh -c 'sleep 3600'`), i.e. the service's own program is
    running; this is what the baseline measures, so the ratio uses it;
  - api:     kill -> GET /v1/service/<svc>/pod/status shows the task with
    the new id in state RUNNING.
The next kill is sent only once all three are seen and API and agent agree.
The task's cpus default to 1 (--cpus): with 0.01 the CFS quota (1 ms per
100 ms period) throttles the task's own start (exec of sh, fork of sleep)
by about 100-200 ms, which is the spec's doing, not holdfast's.

Baseline, same run: `while :; do sleep 3600; done` in a new session;
SIGKILL the sleep child, measure kill -> a new sleep child of the shell
has exec'd. Same number of kills, same polling interval.

--default-backoff-kills M additionally runs M consecutive kills with the
server's default backoff (base 1 s, max 60 s) to show the schedule; with M
kills that takes about 2^(M-1) seconds.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

SPEC = """name: rst
pods:
  hfbrst:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 3600
        cpus: 0.01
        memory: 8
"""


def is_sleep(pid):
    st = hb.proc_stat(pid)
    return st is not None and st[0] == "sleep" and st[1] != "Z"


def task_running(pid):
    """The task's process is up and `sleep` has been exec'd: the shim runs
    `sh -c 'sleep 3600'`, and dash forks the sleep (no exec), so either the
    pid itself or one of its children is sleep."""
    st = hb.proc_stat(pid)
    if st is None or st[1] == "Z":
        return False
    return st[0] == "sleep" or any(is_sleep(c) for c in hb.children(pid))


# ---------------------------------------------------------------- baseline
def baseline(kills, poll, timeout):
    lat = []
    with hb.Bench("restart-base") as b:
        sh = b.shell_loop("sleep 3600")

        def child():
            for c in hb.children(sh.pid):
                if is_sleep(c):
                    return c
            return None
        cur = hb.wait_for(child, 10, 0.001, "baseline first sleep")
        for _ in range(kills):
            t0 = time.monotonic()
            os.kill(cur, signal.SIGKILL)
            while True:
                c = child()
                if c and c != cur:
                    break
                if time.monotonic() - t0 > timeout:
                    raise hb.BenchError("baseline: no respawn")
                time.sleep(poll)
            lat.append(time.monotonic() - t0)
            cur = c
        b.kill_group(sh)
    return lat


# ---------------------------------------------------------------- holdfast
class Target:
    def __init__(self, b):
        self.b = b
        self.tdir = os.path.join(b.agent_data, "tasks")
        self.seen = set()

    def api_task(self):
        t = self.b.tasks("rst").get("hfbrst-0-server")
        return t

    def current(self, timeout=60):
        """(task id, pid) of the running task, once API and agent agree."""
        def ok():
            t = self.api_task()
            if not t or t.get("status") != "RUNNING" or not t.get("id"):
                return None
            st = self.b.task_status(t["id"])
            if not st or st.get("state") != "running" or not st.get("pid"):
                return None
            if not task_running(st["pid"]):
                return None
            return t["id"], st["pid"]
        return hb.wait_for(ok, timeout, 0.005, "task RUNNING")

    def new_task(self, old_id, old_pid):
        """(task id, pid) of a replacement whose status.json says running
        with a live pid other than old_pid, or None: a new task directory,
        or the old one when the task was restarted in place."""
        try:
            ids = os.listdir(self.tdir)
        except OSError:
            return None
        for tid in ids:
            if tid != old_id and tid in self.seen:
                continue
            st = self.b.task_status(tid)
            if st and st.get("pid") and st["pid"] != old_pid and st.get("state") == "running":
                p = hb.proc_stat(st["pid"])
                if p and p[1] != "Z":
                    return tid, st["pid"]
        return None


def holdfast(kills, poll, timeout, backoff, backoff_max, cpus, keep=False, label=""):
    out = []
    with hb.Bench("restart", backoff=backoff, backoff_max=backoff_max,
                  agent_resources="cpus=4,memory=4096", keep=keep) as b:
        b.start()
        b.deploy(SPEC.replace("cpus: 0.01", f"cpus: {cpus}"))
        hb.wait_for(lambda: b.plan("rst").get("status") == "COMPLETE", 60, 0.05,
                    "restart: deploy COMPLETE")
        tg = Target(b)
        tid, pid = tg.current()
        for i in range(kills):
            tg.seen.update(os.listdir(tg.tdir))
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            respawn = execd = api = None
            new = None
            while respawn is None or execd is None or api is None:
                now = time.monotonic() - t0
                if new is None:
                    new = tg.new_task(tid, pid)
                    if new:
                        respawn = now
                if new is not None and execd is None and task_running(new[1]):
                    execd = now
                if new is not None and api is None and respawn is not None:
                    t = tg.api_task()
                    if t and t.get("id") == new[0] and t.get("status") == "RUNNING":
                        api = time.monotonic() - t0
                if now > timeout:
                    raise hb.BenchError(f"restart {label}: kill {i + 1}: respawn {respawn} "
                                        f"exec {execd} api {api} after {timeout}s"
                                        f"\n{b.tail('server.log', 1500)}")
                time.sleep(poll)
            out.append({"respawn_s": respawn, "exec_s": execd, "api_s": api})
            hb.log(f"  restart {label} kill {i + 1}/{kills}: respawn {respawn * 1000:.1f} ms, "
                   f"sleep exec'd {execd * 1000:.1f} ms, api RUNNING {api * 1000:.1f} ms")
            # Next kill once API and agent agree on the new task.
            tid, pid = tg.current()
    return out


def fmt(s):
    return (f"median {s['median'] * 1000:.1f} ms, p99 {s['p99'] * 1000:.1f} ms "
            f"[min {s['min'] * 1000:.1f}, max {s['max'] * 1000:.1f}]")


def summarize(hf, base):
    r = {k: hb.summary([x[k + "_s"] for x in hf]) for k in ("respawn", "exec", "api")}
    r["baseline"] = hb.summary(base)
    r["ratio_median"] = r["exec"]["median"] / r["baseline"]["median"]
    r["ratio_p99"] = r["exec"]["p99"] / r["baseline"]["p99"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.001, help="polling interval (s)")
    ap.add_argument("--backoff", default="0.01")
    ap.add_argument("--backoff-max", default="0.05")
    ap.add_argument("--cpus", default="1",
                    help="the task's cpus (a quota of 0.01 CPU throttles the task's own start)")
    ap.add_argument("--default-backoff-kills", type=int, default=7,
                    help="consecutive kills with the default backoff (0: skip)")
    ap.add_argument("--timeout", type=float, default=90, help="per kill (s)")
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    runs = []
    for r in range(a.repeat):
        base = baseline(a.kills, a.poll, a.timeout)
        hf = holdfast(a.kills, a.poll, a.timeout, a.backoff, a.backoff_max, a.cpus, a.keep,
                      label=f"run {r + 1}")
        run = summarize(hf, base)
        run["first_kill"] = hf[0]
        run["baseline_samples"] = base
        run["holdfast_samples"] = hf
        runs.append(run)
        hb.log(f"restart run {r + 1}/{a.repeat}: holdfast respawn {fmt(run['respawn'])}; "
               f"exec {fmt(run['exec'])}; api {fmt(run['api'])}; baseline {fmt(run['baseline'])}; "
               f"ratio(median) {run['ratio_median']:.0f}x")

    default = None
    if a.default_backoff_kills > 0:
        hf = holdfast(a.default_backoff_kills, a.poll, 120, None, None, a.cpus, a.keep,
                      label="default-backoff")
        nominal = [0] + [min(60, 2 ** (i - 1)) for i in range(1, a.default_backoff_kills)]
        default = [{"kill": i + 1, "nominal_backoff_s": nominal[i],
                    "nominal_range_s": [0.8 * nominal[i], nominal[i]], **x}
                   for i, x in enumerate(hf)]

    pooled = summarize([x for r in runs for x in r["holdfast_samples"]],
                       [x for r in runs for x in r["baseline_samples"]])
    res = {
        "benchmark": "restart",
        "kills": a.kills,
        "poll_s": a.poll,
        "backoff": a.backoff,
        "backoff_max": a.backoff_max,
        "cpus": a.cpus,
        "machine": hb.machine(),
        "runs": runs,
        "pooled": pooled,
        "default_backoff": default,
    }
    hb.write_result(a.out, res)
    print(f"restart ({a.kills} kills x {len(runs)} runs, server --backoff {a.backoff} "
          f"--backoff-max {a.backoff_max}, task cpus {a.cpus}):")
    rows = [(f"run {i + 1}", r) for i, r in enumerate(runs)] + [("pooled", pooled)]
    for name, r in rows:
        print(f"  {name}: respawn {fmt(r['respawn'])} | sleep exec'd {fmt(r['exec'])} | "
              f"API RUNNING {fmt(r['api'])} | baseline {fmt(r['baseline'])} | "
              f"ratio(median) {r['ratio_median']:.0f}x, ratio(p99) {r['ratio_p99']:.0f}x")
    if default:
        print("  default backoff (base 1 s, max 60 s), consecutive kills:")
        for d in default:
            print(f"    kill {d['kill']}: nominal {d['nominal_range_s'][0]:.1f}-"
                  f"{d['nominal_range_s'][1]:.0f} s, respawn {d['respawn_s']:.3f} s, "
                  f"API RUNNING {d['api_s']:.3f} s")


if __name__ == "__main__":
    try:
        main()
    except hb.BenchError as e:
        print(f"restart: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
