#!/usr/bin/python3
"""Deploys at the speed of process creation (issue 13).

For each N in --counts (default 200,1000) and each repetition: the raw
spawn baseline of benchmark 1 (a shell starting N `sleep 3600`), then a
deploy of N pods with this binary; with --before OLD_BIN, a baseline and
a deploy with OLD_BIN too, the two binaries taking turns going first
(the first deploy after a baseline measured ~10 % slower than the
second, whichever binary it was). Each deploy runs on a fresh server and
agent (deploy.py's spec: one parallel phase, no readiness check), right
after its own baseline, each step once the machine is idle again
(deploy.settle: the previous run's teardown over). Reported per deploy:
POST -> plan COMPLETE, the ratio to its baseline, and the server's CPU
time per launched task (utime + stime from /proc/PID/stat of the server
from just before the POST to the plan's COMPLETE, over N: the deploy's
cost, without the server's start and the agent's registration, which at
N=200 were a third of what the whole count showed). The end is seen on the event stream (the
plan's COMPLETE event, then one GET of the plan to confirm), so the
server's CPU is the deploy's and not the benchmark's polling; --wait poll
polls the plan every --poll seconds instead, as earlier figures did.
Data directories are on a fresh ext4 on a loop device (hfbench.data_root).

    /usr/bin/python3 bench/deploys.py [--counts 200,1000] [--repeat 3]
        [--wait events|poll] [--before OLD_BIN] [--out FILE]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploy  # noqa: E402
import hfbench as hb  # noqa: E402


def cpu_cgroups():
    """cpu cgroups under the holdfast parent: each quota write walks them
    all (kernel tg_set_cfs_bandwidth), so a machine with many left over
    pays more per launch."""
    for root in ("/sys/fs/cgroup/cpu/holdfast", "/sys/fs/cgroup/holdfast"):
        try:
            return sum(1 for e in os.scandir(root) if e.is_dir())
        except OSError:
            continue
    return None


def one(binary, n, poll, timeout, wait):
    saved = hb.BIN
    hb.BIN = binary
    try:
        r = deploy.holdfast(n, poll, timeout, wait=wait)
    finally:
        hb.BIN = saved
    r["server_cpu_ms_per_task"] = r["server_cpu_s"] * 1000 / n
    r["agent_cpu_ms_per_task"] = r["agent_cpu_s"] * 1000 / n
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="200,1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", help="a holdfast binary to compare against")
    ap.add_argument("--poll", type=float, default=0.02)
    ap.add_argument("--wait", choices=("events", "poll"), default="events",
                    help="how the end of the deploy is seen: the event stream "
                         "(default) or GET of the plan every --poll seconds")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out")
    a = ap.parse_args()
    labels = [("after", hb.BIN)] + ([("before", a.before)] if a.before else [])
    res = {"benchmark": "deploys", "machine": hb.machine(),
           "cpu_cgroups_at_start": cpu_cgroups(), "counts": {}}
    for n in [int(x) for x in a.counts.split(",")]:
        runs = []
        for r in range(a.repeat):
            run = {"baselines_s": []}
            # Each deploy right after a baseline of its own (the first
            # run after a baseline was measured ~10 % slower than the
            # second, whichever binary it was), in alternating order.
            for label, binary in (labels if r % 2 == 0 else labels[::-1]):
                deploy.settle()
                base = deploy.baseline(n, a.poll, a.timeout)
                run["baselines_s"].append(base)
                deploy.settle()
                x = one(binary, n, a.poll, a.timeout, a.wait)
                x["baseline_s"] = base
                x["ratio"] = x["complete_s"] / base
                run[label] = x
                hb.log(f"deploys N={n} run {r + 1}/{a.repeat} {label}: "
                       f"{x['complete_s']:.2f}s vs raw spawn {base:.3f}s "
                       f"= {x['ratio']:.1f}x; server CPU {x['server_cpu_s']:.2f}s "
                       f"({x['server_cpu_ms_per_task']:.2f} ms/task), {x.get('agent_syncs', '?')} syncs, agent CPU "
                       f"{x['agent_cpu_s']:.2f}s; machine busy "
                       f"{x['machine_cpu_busy'] * 100:.0f}%; running {x['tasks_running']}, "
                       f"restarts {x['restarts']}, failed-to-start {x['failed_to_start']}")
            runs.append(run)
        summ = {"baseline_s": hb.summary([b for x in runs for b in x["baselines_s"]])}
        for label, _ in labels:
            summ[label] = {
                k: hb.summary([x[label][k] for x in runs])
                for k in ("complete_s", "ratio", "server_cpu_ms_per_task",
                          "agent_cpu_ms_per_task")}
        res["counts"][str(n)] = {"runs": runs, "summary": summ}
        for label, _ in labels:
            s = summ[label]
            print(f"deploys N={n} {label}: median {s['complete_s']['median']:.2f}s, "
                  f"ratio to raw spawn median {s['ratio']['median']:.1f}x "
                  f"[{s['ratio']['min']:.1f}-{s['ratio']['max']:.1f}], server CPU "
                  f"{s['server_cpu_ms_per_task']['median']:.2f} ms/task "
                  f"[{s['server_cpu_ms_per_task']['min']:.2f}-"
                  f"{s['server_cpu_ms_per_task']['max']:.2f}] over {len(runs)} runs")
    res["cpu_cgroups_at_end"] = cpu_cgroups()
    hb.write_result(a.out, res)


if __name__ == "__main__":
    try:
        main()
    except hb.BenchError as e:
        print(f"deploys: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
