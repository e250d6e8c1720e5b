#!/usr/bin/env python3
"""API throughput and latency (issue 4) with wrk on loopback.

With a 200-pod service deployed, wrk loads GET /v1/service/<svc>/plans/deploy
and GET /v1/service/<svc>/pod/status, first alone, then while a second
200-pod service deploys. The baseline, measured in the same run, is the
cheapest route (GET /v1/version) on the same server: the ratios say what
computing a plan view or a pod status costs over the HTTP layer itself.

    /usr/bin/python3 bench/api.py [-n 200] [--duration 10] [--connections 16]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench  # noqa: E402


def spec(name, n):
    return f"""name: {name}
pods:
  p:
    count: {n}
    tasks:
      t:
        goal: RUNNING
        cmd: exec sleep 3600
        cpus: 0.001
        memory: 4
plans:
  deploy:
    phases:
      all:
        pod: p
        strategy: parallel
"""


def wrk(url, duration, connections, token):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-H", f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat(50), "p99_ms": lat(99),
            "non2xx": int(errs.group(1)) if errs else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk (bench/run.sh does)")
    res = {"machine": hfbench.machine(), "n": a.n, "duration": a.duration,
           "connections": a.connections, "rows": []}
    with hfbench.Bench("api", agent_resources=f"cpus=64,memory=64000,ports=20000-29999") as b:
        b.start()
        b.deploy(spec("big", a.n))
        hfbench.wait_for(lambda: b.plan("big").get("status") == "COMPLETE", 900, interval=0.5,
                         what="first deploy")
        routes = {"baseline GET /v1/version": "/v1/version",
                  "GET plans/deploy": "/v1/service/big/plans/deploy",
                  "GET pod/status": "/v1/service/big/pod/status"}
        for label, path in routes.items():
            r = wrk(b.url + path, a.duration, a.connections, b.token())
            r.update(label=label, during_deploy=False)
            res["rows"].append(r)
            hfbench.log(label, r)
        # The same while another 200-pod service deploys.
        done = threading.Event()
        b.deploy(spec("second", a.n))
        for label, path in list(routes.items())[1:]:
            r = wrk(b.url + path, a.duration, a.connections, b.token())
            r.update(label=label, during_deploy=True)
            res["rows"].append(r)
            hfbench.log(label, "during deploy", r)
        st = b.plan("second").get("status")
        res["second_deploy_status_after"] = st
        done.set()
    base = res["rows"][0]
    print(f"{'route':34} {'load':>14} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio rps':>10}")
    for r in res["rows"]:
        print(f"{r['label']:34} {'during deploy' if r['during_deploy'] else 'alone':>14} "
              f"{r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{base['rps'] / r['rps']:10.1f}x")
    if a.out:
        hfbench.write_result(a.out, res)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
