#!/usr/bin/python3
"""Benchmark: a simulated cluster.

One real `holdfast server` (release build, SQLite store in a temp dir) and
one `hf-simagents` process (bench/simagents.c) playing --agents agents over
the real sync protocol. Each simulated agent has its own node id, hostname
and zone, and reports every task it is handed as running and ready in its
next sync, so the server does all of its real work (placement, plans,
store writes, desired sets) and nothing else costs time.

Scenarios (each on a fresh server), --instances pod instances in all:

  unique      instances/agents pod types of `agents` instances each, every
              one with placement [["hostname", "UNIQUE"]]
  unique-off  the same pods without placement
  maxper      one pod type of `instances` instances with
              [["hostname", "MAX_PER", "<instances/agents>"]]
  maxper-off  the same pod without placement

The deploy plan runs every phase in parallel, and every step in a phase
in parallel, so the server may place everything as fast as it can.
Measured per scenario:

  placements/s   instances / (last launch received by an agent - POST)
  complete_s     POST -> deploy plan COMPLETE (all reported running, ready)
  server_rss     VmRSS of the server before the deploy (agents registered)
                 and after it, and its peak (VmHWM)
  server_cpu_s   server CPU seconds from POST to COMPLETE

Constraint cost is the ratio of each constrained scenario against its
"-off" twin measured in the same run.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

SIM = os.environ.get("HF_SIMAGENTS_BIN",
                     os.path.join(hb.REPO, "build", "hf-simagents"))


def spec(mode, agents, instances):
    per = max(1, -(-instances // agents))
    if mode.startswith("unique"):
        pods = {f"p{i}": agents for i in range(per)}
        place = '[["hostname", "UNIQUE"]]'
    else:
        pods = {"p0": instances}
        place = f'[["hostname", "MAX_PER", "{per}"]]'
    out = ["name: sim", "pods:"]
    for name, count in pods.items():
        out += [f"  {name}:", f"    count: {count}"]
        if not mode.endswith("-off"):
            out.append(f"    placement: '{place}'")
        out += ["    tasks:", "      server:", "        goal: RUNNING",
                "        cmd: sleep 3600", "        cpus: 0.1", "        memory: 32"]
    out += ["plans:", "  deploy:", "    strategy: parallel", "    phases:"]
    for name in pods:
        out += [f"      {name}:", "        strategy: parallel", f"        pod: {name}"]
    return "\n".join(out) + "\n"


def read_stats(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def run_scenario(mode, agents, instances, timeout):
    b = hb.Bench(f"cluster-{mode}")
    sim = None
    try:
        # Room for every agent's long poll plus the benchmark's requests;
        # all the simulated agents share one address (127.0.0.1).
        b.start_server_args = ["--max-connections", str(agents + 256),
                               "--max-connections-per-ip", str(agents + 256),
                               "--node-timeout", "60"]
        b.start_server()
        stats = os.path.join(b.tmp, "sim.json")
        simlog = b._log("sim.log")
        # They join with the server's admin credential (a join token would do).
        sim = subprocess.Popen([SIM, "--server", b.url, "--agents", str(agents),
                                "--zones", "3", "--wait", "20", "--stats", stats],
                               stdout=simlog, stderr=simlog, stdin=subprocess.DEVNULL,
                               env=dict(b.env, HOLDFAST_TOKEN=b.token()),
                               start_new_session=True)
        hb.wait_for(lambda: read_stats(stats).get("registered", 0) >= agents
                    or sim.poll() is not None, 120, interval=0.2,
                    what=f"{agents} simulated agents to register")
        if sim.poll() is not None:
            raise hb.BenchError("hf-simagents exited: " + b.tail("sim.log"))
        time.sleep(1)
        rss_before = hb.rss_kb(b.server.pid)
        cpu0 = hb.cpu_seconds(b.server.pid)
        text = spec(mode, agents, instances)
        t0 = time.time()
        b.deploy(text)
        hb.wait_for(lambda: read_stats(stats).get("launched", 0) >= instances
                    or b.server.poll() is not None, timeout, interval=0.1,
                    what=f"{instances} launches")
        if b.server.poll() is not None:
            raise hb.BenchError("server exited: " + b.tail("server.log"))
        st = read_stats(stats)
        placed_s = st["last_launch_ms"] / 1000.0 - t0

        def complete():
            code, body = b.api("GET", "/v1/service/sim/plans/deploy", timeout=120)
            return code == 200 and body.get("status") == "COMPLETE"
        hb.wait_for(complete, timeout, interval=1.0, what="deploy COMPLETE")
        complete_s = time.time() - t0
        cpu = hb.cpu_seconds(b.server.pid) - cpu0
        status = hb.read_status(b.server.pid)
        time.sleep(1)
        st = read_stats(stats)
        res = {
            "mode": mode,
            "agents": agents,
            "instances": instances,
            "placed_s": round(placed_s, 3),
            "placements_per_s": round(instances / placed_s, 1),
            "complete_s": round(complete_s, 3),
            "server_cpu_s": round(cpu, 2),
            "server_rss_before_kb": rss_before,
            "server_rss_after_kb": hb.rss_kb(b.server.pid),
            "server_hwm_kb": int(status["VmHWM"].split()[0]),
            "server_threads": int(status["Threads"]),
            "syncs": st.get("syncs"),
            "launched": st.get("launched"),
            "sync_errors": st.get("errors"),
        }
        if st.get("launched") != instances:
            raise hb.BenchError(f"{st.get('launched')} launches for {instances} "
                                "instances: a duplicate or missing launch")
        return res
    finally:
        if sim and sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(20)
            except subprocess.TimeoutExpired:
                sim.kill()
        b.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--modes", default="unique,unique-off,maxper,maxper-off")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out")
    a = ap.parse_args()
    results = []
    for mode in a.modes.split(","):
        hb.log(f"-- {mode}: {a.agents} agents, {a.instances} instances")
        r = run_scenario(mode, a.agents, a.instances, a.timeout)
        hb.log(json.dumps(r))
        results.append(r)
    by = {r["mode"]: r for r in results}
    print(f"{'scenario':<12} {'placed/s':>9} {'placed s':>9} {'complete s':>10} "
          f"{'cpu s':>7} {'RSS before':>10} {'RSS after':>10} {'peak':>8}")
    for r in results:
        print(f"{r['mode']:<12} {r['placements_per_s']:>9} {r['placed_s']:>9} "
              f"{r['complete_s']:>10} {r['server_cpu_s']:>7} "
              f"{r['server_rss_before_kb'] // 1024:>7} MB {r['server_rss_after_kb'] // 1024:>7} MB "
              f"{r['server_hwm_kb'] // 1024:>5} MB")
    for m in ("unique", "maxper"):
        if m in by and m + "-off" in by:
            on, off = by[m], by[m + "-off"]
            print(f"{m}: constraints cost {off['placements_per_s'] / on['placements_per_s']:.2f}x "
                  f"in placement rate, {on['server_hwm_kb'] / off['server_hwm_kb']:.2f}x in peak RSS")
    hb.write_result(a.out, {"machine": hb.machine(), "results": results})


if __name__ == "__main__":
    main()
