#!/usr/bin/python3
"""Benchmark 1: deploy throughput.

holdfast: a fresh server + agent; one service with one pod type of N
instances, one `sleep 3600` task each (cpus 0.01, memory 8), deploy plan
with one parallel phase. Time from sending POST /v1/services to the deploy
plan reading COMPLETE (polled every --poll seconds).

Baseline, same run: `for i in $(seq N); do sleep 3600 & done; wait` in a
new session; time from starting the shell until N processes of that
session have exec'd sleep (counted in /proc, polled the same way).

Each repetition runs the baseline and then holdfast, each from a clean
state; everything started is killed before the next repetition.
"""
import argparse
import json
import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402


def spec(n, name="bench"):
    return f"""name: {name}
pods:
  hfbsleep:
    count: {n}
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 3600
        cpus: 0.01
        memory: 8
plans:
  deploy:
    strategy: serial
    phases:
      sleepers:
        strategy: parallel
        pod: hfbsleep
"""


def agent_resources(n):
    # Room for n tasks of 0.01 cpu / 8 MB with a wide margin; the tasks
    # use no ports, the range is only there to be explicit.
    return f"cpus={max(8, n // 10)},memory={max(16384, n * 16)},ports=20000-29999"


def cpu_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)


def busy_fraction(a, b):
    return (b[0] - a[0]) / max(1, b[1] - a[1])


def settle(limit=30.0, window=1.0, busy=0.15):
    """Waits (at most limit seconds) for a window in which the machine's
    CPUs are busy less than the given fraction: the teardown of a run (a
    thousand processes killed, their cgroups removed) keeps the machine
    busy for a while, and a run that starts meanwhile is measured against
    it. Returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        a = cpu_busy()
        time.sleep(window)
        if busy_fraction(a, cpu_busy()) < busy or time.monotonic() - t0 > limit:
            return time.monotonic() - t0


def agent_launch_times(logtext):
    """Seconds between the agent's first "launching" and its last "running
    as pid" line, and the median gap between consecutive "running" lines:
    how long one launch holds the agent's (single) launch worker."""
    import datetime
    def ts(line):
        return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp()
    launching = [ts(x) for x in logtext.splitlines() if x.endswith(": launching")]
    running = [ts(x) for x in logtext.splitlines() if " running as pid " in x]
    if not launching or not running:
        return None, None
    gaps = [b - a for a, b in zip(running, running[1:])]
    return max(running) - min(launching), (statistics.median(gaps) if gaps else None)


def count_sleepers(pgid):
    n = 0
    for pid in hb.pids():
        st = hb.proc_stat(pid)
        if st and st[3] == pgid and st[0] == "sleep":
            n += 1
    return n


def baseline(n, poll, timeout):
    with hb.Bench("deploy-base") as b:
        t0 = time.monotonic()
        p = b.spawn_group(f"for i in $(seq {n}); do sleep 3600 & done; wait")
        while True:
            c = count_sleepers(p.pid)
            t = time.monotonic() - t0
            if c >= n:
                break
            if t > timeout:
                raise hb.BenchError(f"baseline: {c}/{n} sleepers after {timeout}s")
            time.sleep(poll)
        b.kill_group(p)
        return t


class PlanEvents:
    """Follows GET /v1/events?service=bench on its own connection and
    notes when the event "plan deploy -> COMPLETE" arrives: waiting on
    the stream costs the server one encoded event per change, where
    polling a plan of N steps every 20 ms costs it N steps per poll (a
    cost of the benchmark, not of the deploy, that grows as N x time)."""

    def __init__(self, b):
        import http.client
        import threading
        self.done = threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", b.port, timeout=3600)
        self.conn.request("GET", "/v1/events?service=bench&follow=true",
                          headers={"Authorization": "Bearer " + b.token()})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise hb.BenchError(f"GET /v1/events: {self.resp.status}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for raw in self.resp:
                line = raw.decode(errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                e = json.loads(line[5:])
                if (e.get("kind") == "plan" and e.get("object") == "deploy"
                        and e.get("after") == "COMPLETE"):
                    self.done.set()
                    return
        except Exception:
            pass

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except Exception:
            pass
        self.conn.close()


def agent_syncs(b):
    """Sync requests the server answered so far (its /metrics)."""
    req = urllib.request.Request(b.url + "/metrics",
                                 headers={"Authorization": f"Bearer {b.token()}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    n = 0
    for line in text.splitlines():
        if line.startswith("holdfast_api_requests_total{") and \
                'route="/v1/agent/sync"' in line:
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def holdfast(n, poll, timeout, keep=False, wait="poll"):
    """Returns a dict of times (seconds from POST) and process facts.
    wait: "poll" (GET the plan every poll seconds) or "events" (follow
    the event stream for the plan's COMPLETE, then GET the plan once)."""
    with hb.Bench("deploy", agent_resources=agent_resources(n), keep=keep) as b:
        b.start()
        time.sleep(1.0)  # let registration settle
        text = spec(n)
        ev = PlanEvents(b) if wait == "events" else None
        # CPU from here on: the deploy's, not the start and registration.
        syncs0 = agent_syncs(b)
        server_cpu0 = hb.cpu_seconds(b.server.pid)
        agent_cpu0 = hb.cpu_seconds(b.agent.pid)
        c0 = cpu_busy()
        t0 = time.monotonic()
        b.deploy(text)
        t_post = time.monotonic() - t0
        t_first_get = None
        status = None
        while True:
            if ev:
                ev.done.wait(max(0.0, min(1.0, timeout - (time.monotonic() - t0))))
                t_done = time.monotonic() - t0
            status = b.plan("bench").get("status")
            t = time.monotonic() - t0
            if ev and status == "COMPLETE":
                t = t_done
            if t_first_get is None:
                t_first_get = t
            if status == "COMPLETE":
                break
            if status in ("ERROR",) or t > timeout:
                tasks = b.tasks("bench")
                bad = {k: (v.get("status"), v.get("message")) for k, v in tasks.items()
                       if v.get("status") != "RUNNING"}
                raise hb.BenchError(f"holdfast deploy: plan {status} after {t:.1f}s; "
                                    f"{len(bad)} task(s) not RUNNING, e.g. "
                                    f"{list(bad.items())[:3]}\nagent log: {b.tail('agent.log', 800)}")
            if not ev:
                time.sleep(poll)
        t_complete = t
        busy = busy_fraction(c0, cpu_busy())
        server_cpu = hb.cpu_seconds(b.server.pid) - server_cpu0
        agent_cpu = hb.cpu_seconds(b.agent.pid) - agent_cpu0
        if ev:
            ev.close()
        # Facts about the result, outside the timed part.
        syncs = agent_syncs(b) - syncs0
        tasks = b.tasks("bench")
        restarts = sum(v.get("restarts", 0) for v in tasks.values())
        running = sum(1 for v in tasks.values() if v.get("status") == "RUNNING")
        shims = len(b.shim_pids())
        alog = b.tail("agent.log", 10**9)
        failed_starts = alog.count("failed-to-start")
        span, gap = agent_launch_times(alog)
        if restarts or failed_starts or running != n:
            hb.log(f"deploy N={n}: WARNING: {running}/{n} RUNNING, {restarts} restarts, "
                   f"{failed_starts} failed-to-start; logs kept in {b.tmp}")
            b.keep = True
        return {
            "post_s": t_post,
            "first_plan_get_s": t_first_get,
            "complete_s": t_complete,
            "tasks_running": running,
            "shims": shims,
            "restarts": restarts,
            "failed_to_start": failed_starts,
            "server_cpu_s": server_cpu,
            "agent_cpu_s": agent_cpu,
            "agent_syncs": syncs,
            "wait": wait,
            "machine_cpu_busy": busy,
            "agent_launch_span_s": span,
            "agent_launch_gap_ms": gap * 1000 if gap is not None else None,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--poll", type=float, default=0.02,
                    help="polling interval of both sides (s)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    a = ap.parse_args()

    runs = []
    for r in range(a.repeat):
        tb = baseline(a.n, a.poll, a.timeout)
        hf = holdfast(a.n, a.poll, a.timeout, a.keep)
        run = {"baseline_s": tb, **hf, "ratio": hf["complete_s"] / tb}
        runs.append(run)
        hb.log(f"deploy N={a.n} run {r + 1}/{a.repeat}: baseline {tb:.3f}s, "
               f"holdfast {hf['complete_s']:.3f}s (POST {hf['post_s']:.3f}s, "
               f"first plan GET {hf['first_plan_get_s']:.3f}s), "
               f"ratio {run['ratio']:.1f}x, restarts {hf['restarts']}, "
               f"failed-to-start {hf['failed_to_start']}; machine CPU busy "
               f"{hf['machine_cpu_busy'] * 100:.0f}%, agent launches: span "
               f"{hf['agent_launch_span_s']:.2f}s, median gap {hf['agent_launch_gap_ms']:.1f} ms; "
               f"CPU s: server {hf['server_cpu_s']:.2f}, agent {hf['agent_cpu_s']:.2f}")
    ratios = [x["ratio"] for x in runs]
    res = {
        "benchmark": "deploy",
        "n": a.n,
        "poll_s": a.poll,
        "machine": hb.machine(),
        "runs": runs,
        "baseline_s": hb.summary([x["baseline_s"] for x in runs]),
        "holdfast_s": hb.summary([x["complete_s"] for x in runs]),
        "ratio": hb.summary(ratios),
    }
    hb.write_result(a.out, res)
    print(f"deploy N={a.n}: holdfast median {res['holdfast_s']['median']:.2f}s "
          f"[{res['holdfast_s']['min']:.2f}-{res['holdfast_s']['max']:.2f}], "
          f"baseline median {res['baseline_s']['median']:.3f}s "
          f"[{res['baseline_s']['min']:.3f}-{res['baseline_s']['max']:.3f}], "
          f"ratio median {statistics.median(ratios):.1f}x "
          f"[{min(ratios):.1f}-{max(ratios):.1f}] over {len(runs)} runs")
    print(json.dumps({"ratio_median": statistics.median(ratios)}))


if __name__ == "__main__":
    try:
        main()
    except hb.BenchError as e:
        print(f"deploy: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
