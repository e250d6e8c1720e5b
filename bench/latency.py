#!/usr/bin/env python3
"""API latency while a 200-pod service deploys (issue 12): what an
operator's GET costs while the scheduler works.

From the deploy's POST until its plan is COMPLETE, --readers threads each
loop GET /v1/service/big/plans/deploy (one request at a time, a new
connection each, as the server closes every answer's connection) and
record each answer's latency. The baseline is another binary (--before,
e.g. one built from `git archive` of the tree before a change), measured
in the same run: rounds alternate before and after, each on a fresh
server and agent, so both see the same machine.

    /usr/bin/python3 bench/latency.py --before OLD_BIN [-n 200] [--rounds 3]
        [--readers 4] [--out DIR]

HOLDFAST_BIN (default build/holdfast) is the "after" binary.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench  # noqa: E402
from api import spec  # noqa: E402  (the same 200-pod service)


def reader(port, token, path, stop, out):
    hdr = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", path, headers=hdr)
            r = c.getresponse()
            r.read()
            ok = r.status in (200, 202)  # 202: IN_PROGRESS, as the SDK answers
        except OSError:
            ok = False
        finally:
            c.close()
        out.append(((time.perf_counter() - t0) * 1000.0, ok))


def one(binary, n, readers):
    hfbench.BIN = binary
    with hfbench.Bench("latency", agent_resources="cpus=64,memory=64000,ports=20000-29999") as b:
        b.start()
        token = b.token()
        lat = []
        stop = threading.Event()
        t0 = time.time()
        b.deploy(spec("big", n))
        threads = [threading.Thread(target=reader, args=(b.port, token,
                                                         "/v1/service/big/plans/deploy",
                                                         stop, lat))
                   for _ in range(readers)]
        for t in threads:
            t.start()
        hfbench.wait_for(lambda: b.plan("big").get("status") == "COMPLETE", 600,
                         interval=0.2, what="deploy COMPLETE")
        took = time.time() - t0
        stop.set()
        for t in threads:
            t.join()
    ms = sorted(v for v, ok in lat)
    return {"requests": len(ms), "errors": sum(1 for _, ok in lat if not ok),
            "p50_ms": hfbench.pct(ms, 50), "p99_ms": hfbench.pct(ms, 99),
            "max_ms": ms[-1] if ms else None, "deploy_s": took}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="the baseline binary")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--out")
    a = ap.parse_args()
    after = hfbench.BIN
    res = {"machine": hfbench.machine(), "n": a.n, "readers": a.readers, "rows": []}
    for rnd in range(a.rounds):
        for label, binary in (("before", a.before), ("after", after)):
            r = one(binary, a.n, a.readers)
            r.update(label=label, round=rnd + 1)
            res["rows"].append(r)
            hfbench.log(label, r)
    print(f"{'':8} {'round':>5} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'deploy s':>9}")
    for r in res["rows"]:
        print(f"{r['label']:8} {r['round']:5} {r['requests']:9} {r['p50_ms']:8.2f} "
              f"{r['p99_ms']:8.2f} {r['max_ms']:8.2f} {r['deploy_s']:9.2f}")
    for label in ("before", "after"):
        rows = [r for r in res["rows"] if r["label"] == label]
        p99 = sorted(r["p99_ms"] for r in rows)
        p50 = sorted(r["p50_ms"] for r in rows)
        print(f"{label}: median p50 {p50[len(p50) // 2]:.2f} ms, median p99 "
              f"{p99[len(p99) // 2]:.2f} ms over {len(rows)} rounds")
    if a.out:
        hfbench.write_result(a.out, res)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
