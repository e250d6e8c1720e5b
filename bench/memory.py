#!/usr/bin/python3
"""Benchmark 3: resident memory of the server and the agent.

For each N in --counts (default 200 and 1000), a fresh server + agent:
  1. idle: both running, no service, settled for --settle seconds
     -> VmRSS of the server and of the agent (the baseline);
  2. deploy one service of N `sleep 3600` tasks (as in deploy.py), wait for
     the plan to be COMPLETE, settle, then again VmRSS of the server and of
     the agent (shims excluded), plus the shims (VmRSS each) and the task
     processes (the `sh -c` wrapper and its `sleep`) for reference.
Growth per task = (RSS with N tasks - RSS idle) / N. The RSS is sampled
again about 12 s later (a full long-poll round) to show it is stable.
As a by-product the deploy time at each N is recorded with its shell-loop
baseline (deploy.py's), which shows how the deploy scales with N.

VmRSS counts shared pages (libc, the holdfast binary) once per process,
so the shims' sum over-states what they cost together; /proc/<pid>/smaps_rollup
Pss is recorded too (shared pages divided among their users).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402
import deploy  # noqa: E402


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def procs_of(b):
    """(shim pids, task pids) started for this bench."""
    shims = set(b.shim_pids())
    tasks = []
    for pid in hb.pids_matching(b.tmp):
        if pid in shims or pid in (b.server.pid, b.agent.pid):
            continue
        st = hb.proc_stat(pid)
        if st and st[0] in ("sh", "sleep"):
            tasks.append(pid)
    # sleep's cwd is the sandbox too, so both the wrapper and sleep match.
    return sorted(shims), tasks


def sample(b):
    shims, tasks = procs_of(b)
    srss = [hb.rss_kb(p) for p in shims]
    srss = [x for x in srss if x is not None]
    spss = [x for x in (pss_kb(p) for p in shims) if x is not None]
    trss = [x for x in (hb.rss_kb(p) for p in tasks) if x is not None]
    return {
        "server_kb": hb.rss_kb(b.server.pid),
        "agent_kb": hb.rss_kb(b.agent.pid),
        "server_pss_kb": pss_kb(b.server.pid),
        "agent_pss_kb": pss_kb(b.agent.pid),
        "server_threads": int((hb.read_status(b.server.pid) or {}).get("Threads", 0)),
        "agent_threads": int((hb.read_status(b.agent.pid) or {}).get("Threads", 0)),
        "agent_fds": len(os.listdir(f"/proc/{b.agent.pid}/fd")),
        "server_fds": len(os.listdir(f"/proc/{b.server.pid}/fd")),
        "shims": len(srss),
        "shim_rss_kb_mean": statistics.fmean(srss) if srss else None,
        "shim_rss_kb_median": statistics.median(srss) if srss else None,
        "shim_rss_kb_sum": sum(srss),
        "shim_pss_kb_mean": statistics.fmean(spss) if spss else None,
        "shim_pss_kb_sum": sum(spss),
        "task_procs": len(trss),
        "task_rss_kb_sum": sum(trss),
    }


def one(n, settle, timeout, keep=False):
    # The deploy time is a by-product: give it its shell-loop baseline too.
    base_s = deploy.baseline(n, 0.02, 300)
    with hb.Bench(f"memory{n}", agent_resources=deploy.agent_resources(n), keep=keep) as b:
        b.start()
        time.sleep(settle)
        idle = sample(b)
        t0 = time.monotonic()
        b.deploy(deploy.spec(n))
        while b.plan("bench").get("status") != "COMPLETE":
            if time.monotonic() - t0 > timeout:
                tasks = b.tasks("bench")
                running = sum(1 for v in tasks.values() if v.get("status") == "RUNNING")
                raise hb.BenchError(f"memory N={n}: plan not COMPLETE after {timeout}s "
                                    f"({running}/{n} RUNNING)")
            time.sleep(0.2)
        t_complete = time.monotonic() - t0
        time.sleep(settle)
        loaded = sample(b)
        # And once more after a few long-poll rounds (the agent's long
        # poll is 10 s): RSS that keeps growing would show here.
        time.sleep(max(settle, 12))
        later = sample(b)
        tasks = b.tasks("bench")
        running = sum(1 for v in tasks.values() if v.get("status") == "RUNNING")
        slog, alog = b.tail("server.log", 10**9), b.tail("agent.log", 10**9)
        # Anything that ended a task during the measurement shows here.
        health = {
            "restarts": sum(v.get("restarts", 0) for v in tasks.values()),
            "server_log_failed": slog.count(" FAILED"),
            "server_log_lost": slog.count(" LOST"),
            "agent_log_exited": alog.count(" exited"),
        }
        if running != n or health["restarts"] or loaded["shims"] != n:
            hb.log(f"memory N={n}: WARNING: {running}/{n} RUNNING, {loaded['shims']} shims "
                   f"after COMPLETE, {health}; logs kept in {b.tmp}")
            b.keep = True
        return {
            "health": health,
            "n": n,
            "deploy_complete_s": t_complete,
            "deploy_baseline_s": base_s,
            "deploy_ratio": t_complete / base_s,
            "tasks_running": running,
            "idle": idle,
            "loaded": loaded,
            "later": later,
            "server_growth_kb_per_task": (loaded["server_kb"] - idle["server_kb"]) / n,
            "agent_growth_kb_per_task": (loaded["agent_kb"] - idle["agent_kb"]) / n,
            "server_cpu_s": hb.cpu_seconds(b.server.pid),
            "agent_cpu_s": hb.cpu_seconds(b.agent.pid),
        }


def mb(kb):
    return f"{kb / 1024:.1f} MB"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--counts", default="200,1000")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=900, help="per deploy (s)")
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    counts = [int(x) for x in a.counts.split(",") if x]

    runs = []
    for r in range(a.repeat):
        for n in counts:
            x = one(n, a.settle, a.timeout, a.keep)
            runs.append(x)
            hb.log(f"memory N={n} run {r + 1}/{a.repeat}: server {mb(x['idle']['server_kb'])} -> "
                   f"{mb(x['loaded']['server_kb'])} ({x['server_growth_kb_per_task']:.1f} KB/task), "
                   f"agent {mb(x['idle']['agent_kb'])} -> {mb(x['loaded']['agent_kb'])} "
                   f"({x['agent_growth_kb_per_task']:.1f} KB/task), shim RSS "
                   f"{x['loaded']['shim_rss_kb_mean']:.0f} KB each (PSS "
                   f"{x['loaded']['shim_pss_kb_mean']:.0f} KB); deploy {x['deploy_complete_s']:.1f}s")
    res = {"benchmark": "memory", "settle_s": a.settle, "machine": hb.machine(), "runs": runs}
    hb.write_result(a.out, res)
    print(f"memory (VmRSS; {a.repeat} run(s) per N):")
    print(f"  {'N':>5} {'server idle':>12} {'server N':>10} {'KB/task':>8} {'agent idle':>11} "
          f"{'agent N':>9} {'KB/task':>8} {'shim RSS':>9} {'shim PSS':>9} {'deploy':>7}")
    for x in runs:
        print(f"  {x['n']:>5} {mb(x['idle']['server_kb']):>12} {mb(x['loaded']['server_kb']):>10} "
              f"{x['server_growth_kb_per_task']:>8.1f} {mb(x['idle']['agent_kb']):>11} "
              f"{mb(x['loaded']['agent_kb']):>9} {x['agent_growth_kb_per_task']:>8.1f} "
              f"{x['loaded']['shim_rss_kb_mean']:>6.0f} KB {x['loaded']['shim_pss_kb_mean']:>6.0f} KB "
              f"{x['deploy_complete_s']:>6.1f}s")


if __name__ == "__main__":
    try:
        main()
    except hb.BenchError as e:
        print(f"memory: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
