#!/usr/bin/python3
"""Autoscaling (issue 17): from the metric crossing a threshold to the new
instance ready, and the fast-data pipeline's run replayed.

react     A pod type `worker` (one `exec sleep` task, readiness check
          `true` every 0.5 s) whose policy's metric is the command
          `cat FILE` (run by the autoscaler in worker-0's task; FILE is in
          a directory of its own under /var/tmp, outside the server's and
          the agent's data directories, which tasks cannot see), up above
          500 by 1 (up cooldown 0), down below 100 by 1 (down cooldown
          1 s), min 1, max 2. A trial: the value is 300 (in the band); after
          a random wait of 0 to one interval (so that the flip falls
          anywhere in the evaluation cycle) the bench writes 1000 into
          FILE (an atomic rename) and polls GET /v1/service/SVC/pod/status
          every 50 ms until worker-1's task is RUNNING and ready. Then it
          writes 10 and waits until worker-1 is gone (the reset). Measured
          per trial: flip -> the autoscaler's scale event (its time, ms:
          the evaluation wait), that event -> ready, and flip -> ready.
          With --interval 1s (--trials-1s, default 10) and 15s
          (--trials-15s, default 5), a service each, deployed in turn.

          Baseline, same run, interleaved with the trials (one before each
          autoscaler trial): the same pod type without a policy in a
          service of its own; `holdfast -s manual pod scale worker 2` (the
          CLI process started) -> worker-1 RUNNING and ready, polled the
          same way; reset with `pod scale worker --reset`.

pipeline  examples/pipeline.yml as shipped with the talk's rule (every
          15 s; +1 above a lag of 500, -1 below 100; 1 to 10 consumers) and
          a shorter down cooldown (--down-cooldown, 15s), WORK_MS=20 (a
          consumer stores at most 50 messages a second); the producer plan
          at RATE=300 for TOTAL=45000 messages (150 s). Once a second: the
          group's lag, pending, the stream's length (redis-cli), rows
          stored (psql), the consumer pod type's count (GET
          /v1/services/pipeline) and its RUNNING and ready consumer tasks;
          until the producer is done, the lag is 0 and the count is back at
          1 with only consumer-0 left. Then checks that every message is in
          PostgreSQL exactly once (count(*) = count(DISTINCT seq) = TOTAL)
          and that the group has nothing pending. Writes the series as CSV
          and JSON (with the autoscaler's events: every change and every
          hold with its reason), and a PNG (gnuplot; Debian's
          gnuplot-nox, installed with apt-get when missing): the lag on
          the left axis, the consumer count on the right. --agent-cpus N
          makes the node offer N cpus (default: detected).

    /usr/bin/python3 bench/autoscale.py react [--trials-1s 10] [--trials-15s 5] [--out FILE]
    /usr/bin/python3 bench/autoscale.py pipeline [--rate 300] [--total 45000]
        [--interval 15s] [--up-cooldown 15s] [--down-cooldown 15s] [--max 10]
        [--work-ms 20] [--agent-cpus N] [--max-seconds 720]
        [--out FILE] [--csv FILE] [--plot FILE.png]

react takes about 3 minutes, pipeline about 6 (the rule's pace: +1 and
-1 per 15 s). pipeline exits 1 when the count is not back at 1 with the
lag 0 within --max-seconds (it still writes what it saw), or when a
message is missing, stored twice, or left pending.

Needs root, HOLDFAST_BIN (a release build; holdfast-shim next to it), and
for the pipeline redis-server, redis-cli, PostgreSQL, psql, python3-redis
and python3-psycopg2 (scripts/setup.sh installs them). Cleans up every
process it started (the pipeline is removed first, so that PostgreSQL
shuts down cleanly), also when interrupted.
"""
import argparse
import calendar
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

REPO = hb.REPO
POLL = 0.05

TASK = """    allow-decommission: true
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 100000
        cpus: 0.05
        memory: 32
        readiness-check: {cmd: "true", interval: 0.5, delay: 0, timeout: 5}
"""


def auto_spec(name, interval, value_file):
    return f"""name: {name}
pods:
  worker:
    count: 1
    autoscale:
      min: 1
      max: 2
      interval: {interval}
      metric:
        command: cat {value_file}
      up: {{above: 500, step: 1, cooldown: 0s}}
      down: {{below: 100, step: 1, cooldown: 1s}}
""" + TASK


def manual_spec(name):
    return f"""name: {name}
pods:
  worker:
    count: 1
""" + TASK


def seconds(text):
    t = text.strip()
    for suf, mul in (("ms", 0.001), ("s", 1), ("m", 60)):
        if t.endswith(suf):
            return float(t[:-len(suf)]) * mul
    return float(t)


def set_value(path, v):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{v}\n")
    os.replace(tmp, path)


def event_time(s):
    """An event's ISO 8601 UTC time (ms) as unix seconds."""
    t = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = s[19:].rstrip("Z")
    return t + (float(frac) if frac.startswith(".") else 0.0)


class Client:
    """The CLI and the event stream of a Bench's server."""

    def __init__(self, b):
        self.b = b
        self.env = dict(b.env, HOLDFAST_ADDR=b.url)

    def cli(self, *args, check=True, timeout=120):
        p = subprocess.run([self.b.bin, *args], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and p.returncode != 0:
            raise hb.BenchError(f"holdfast {' '.join(args)} exited {p.returncode}: "
                                f"{p.stdout}{p.stderr}")
        return p

    def events(self, svc):
        req = urllib.request.Request(
            self.b.url + f"/v1/events?follow=false&service={svc}",
            headers={"Authorization": f"Bearer {self.b.token()}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]

    def scalings(self, svc):
        """[(unix s, before, after, why)] of the autoscaler's changes."""
        out = []
        for e in self.events(svc):
            if e.get("who") == "autoscaler" and e.get("kind") == "autoscale" and \
                    e.get("before") and e.get("after") and e["before"] != e["after"]:
                out.append((event_time(e["time"]), int(e["before"]), int(e["after"]), e["why"]))
        return out

    def count(self, svc, pod):
        code, s = self.b.api("GET", f"/v1/services/{svc}")
        if code != 200:
            raise hb.BenchError(f"GET /v1/services/{svc} -> {code}: {s}")
        return next(p for p in s["pod_types"] if p["name"] == pod)["count"]


def ready(b, svc, instance):
    """instance's server task RUNNING and ready; the instance names."""
    pods = b.pods(svc)
    names = sorted(p["name"] for p in pods)
    for p in pods:
        if p["name"] == instance:
            for t in p["tasks"]:
                if t["name"] == instance + "-server":
                    return t["status"] == "RUNNING" and t.get("ready") is True, names
    return False, names


def wait_ready(b, svc, instance, timeout):
    """Polls every POLL s; the time.time() of the first poll that saw it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok, _ = ready(b, svc, instance)
        if ok:
            return time.time()
        time.sleep(POLL)
    raise hb.BenchError(f"{svc}: {instance} not ready after {timeout}s")


def wait_only(b, svc, names, timeout):
    hb.wait_for(lambda: sorted(p["name"] for p in b.pods(svc)) == names and
                all(ready(b, svc, n)[0] for n in names), timeout, POLL,
                f"{svc}: only {names}, ready")


def stats(values):
    s = hb.summary(values)
    return {"n": s["n"], "p50": s["median"], "p90": s["p90"], "max": s["max"],
            "min": s["min"], "mean": s["mean"]}


# ---------------------------------------------------------------- react
def manual_trial(b, c):
    t0 = time.time()
    c.cli("-s", "manual", "pod", "scale", "worker", "2")
    t_cli = time.time()
    t_ready = wait_ready(b, "manual", "worker-1", 60)
    c.cli("-s", "manual", "pod", "scale", "worker", "--reset")
    wait_only(b, "manual", ["worker-0"], 60)
    return {"ready_s": t_ready - t0, "cli_s": t_cli - t0}


def auto_trial(b, c, svc, vf, interval, rng):
    set_value(vf, 300)
    time.sleep(0.3 + rng.uniform(0, interval))
    known = len(c.scalings(svc))
    t0 = time.time()
    set_value(vf, 1000)
    t_ready = wait_ready(b, svc, "worker-1", interval + 60)
    ups = [s for s in c.scalings(svc)[known:] if (s[1], s[2]) == (1, 2)]
    if not ups:
        raise hb.BenchError(f"{svc}: worker-1 ready without a 1 -> 2 event")
    t_act = ups[0][0]
    # The reset: low, the down cooldown (1 s from the scale-up), the next
    # evaluation, worker-1 removed.
    set_value(vf, 10)
    hb.wait_for(lambda: c.count(svc, "worker") == 1, interval + 60, POLL, f"{svc} back to 1")
    wait_only(b, svc, ["worker-0"], 60)
    set_value(vf, 300)
    return {"eval_wait_s": t_act - t0, "act_to_ready_s": t_ready - t_act,
            "total_s": t_ready - t0, "why": ups[0][3]}


def react(args):
    rng = random.Random(args.seed)
    mdir = tempfile.mkdtemp(prefix="hfbench-autoscale-metric-", dir="/var/tmp")
    result = {"machine": hb.machine(), "poll_s": POLL, "intervals": {}}
    try:
        with hb.Bench("autoscale-react") as b:
            b.start()
            c = Client(b)
            b.deploy(manual_spec("manual"))
            hb.wait_for(lambda: b.plan("manual").get("status") == "COMPLETE", 60, 0.1,
                        "manual deployed")
            wait_only(b, "manual", ["worker-0"], 60)
            for interval, trials in (("1s", args.trials_1s), ("15s", args.trials_15s)):
                if trials <= 0:
                    continue
                svc = "auto" + interval.rstrip("s")
                vf = os.path.join(mdir, svc)
                set_value(vf, 300)
                b.deploy(auto_spec(svc, interval, vf))
                hb.wait_for(lambda: b.plan(svc).get("status") == "COMPLETE", 60, 0.1,
                            f"{svc} deployed")
                wait_only(b, svc, ["worker-0"], 60)
                # What reading the metric costs: the same command through
                # the exec API (server -> agent -> the task's sandbox), as
                # the autoscaler runs it.
                reads = []
                for _ in range(20):
                    t = time.monotonic()
                    code, out = b.api("POST", f"/v1/tasks/worker-0-server/exec?service={svc}",
                                      {"cmd": f"cat {vf}"})
                    reads.append(time.monotonic() - t)
                    if code != 200 or out.get("stdout", "").strip() != "300":
                        raise hb.BenchError(f"exec of cat {vf}: {code} {out}")
                man, aut = [], []
                for i in range(trials):
                    m = manual_trial(b, c)
                    a = auto_trial(b, c, svc, vf, seconds(interval), rng)
                    man.append(m)
                    aut.append(a)
                    hb.log(f"{interval} trial {i + 1}/{trials}: manual {m['ready_s']:.3f} s; "
                           f"autoscaler {a['total_s']:.3f} s = wait {a['eval_wait_s']:.3f} "
                           f"+ {a['act_to_ready_s']:.3f} s")
                c.cli("service", "remove", svc, "--wait", "--timeout", "60", timeout=90)
                base = stats([m["ready_s"] for m in man])
                r = {
                    "trials": trials,
                    "metric_read_s": stats(reads),
                    "manual": man, "auto": aut,
                    "manual_ready_s": base,
                    "manual_cli_s": stats([m["cli_s"] for m in man]),
                    "eval_wait_s": stats([a["eval_wait_s"] for a in aut]),
                    "act_to_ready_s": stats([a["act_to_ready_s"] for a in aut]),
                    "total_s": stats([a["total_s"] for a in aut]),
                }
                r["ratio_total"] = {k: r["total_s"][k] / base[k] for k in ("p50", "p90", "max")}
                r["ratio_act_to_ready"] = {k: r["act_to_ready_s"][k] / base[k]
                                           for k in ("p50", "p90", "max")}
                result["intervals"][interval] = r
            c.cli("service", "remove", "manual", "--wait", "--timeout", "60", timeout=90)
    finally:
        shutil.rmtree(mdir, ignore_errors=True)
    hb.write_result(args.out, result)
    for interval, r in result["intervals"].items():
        def q(s):
            return f"{s['p50']:.3f} / {s['p90']:.3f} / {s['max']:.3f} s"
        print(f"react, interval {interval} ({r['trials']} trials), p50 / p90 / max:")
        print(f"  manual pod scale -> ready (baseline): {q(r['manual_ready_s'])}")
        print(f"  (`cat FILE` through the exec API:      {q(r['metric_read_s'])})")
        print(f"  autoscaler: flip -> scale event:      {q(r['eval_wait_s'])}")
        print(f"  autoscaler: scale event -> ready:     {q(r['act_to_ready_s'])}"
              f"  ({r['ratio_act_to_ready']['p50']:.2f}x baseline at p50)")
        print(f"  autoscaler: flip -> ready:            {q(r['total_s'])}"
              f"  ({r['ratio_total']['p50']:.1f}x / {r['ratio_total']['p90']:.1f}x / "
              f"{r['ratio_total']['max']:.1f}x baseline)")


# ---------------------------------------------------------------- pipeline
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args):
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                       capture_output=True, text=True, timeout=10)
    if p.returncode != 0:
        raise hb.BenchError(f"redis-cli {' '.join(args)}: {p.stderr}")
    return p.stdout.split("\n")


def field(lines, name):
    i = lines.index(name)
    return lines[i + 1]


def psql(port, sql):
    p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "-d", "postgres", "-At", "-c", sql],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise hb.BenchError(f"psql {sql}: {p.stderr}")
    return p.stdout.strip()


def cpu_times():
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def ensure_gnuplot():
    if shutil.which("gnuplot") is None:
        hb.log("installing gnuplot-nox")
        subprocess.run(["apt-get", "install", "-y", "-qq", "gnuplot-nox"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)


def plot(csv_path, png, title, t_end_produce):
    ensure_gnuplot()
    script = f"""
set terminal pngcairo size 1000,520 font "sans,10"
set output "{png}"
set datafile separator ","
set title "{title}"
set xlabel "seconds since the producer started"
set ylabel "consumer group lag (messages)"
set y2label "consumers"
set ytics nomirror
set y2tics 1
set y2range [0:11]
set yrange [0:*]
set grid xtics ytics
set key top right
set arrow from {t_end_produce:.1f}, graph 0 to {t_end_produce:.1f}, graph 1 nohead dt 2 lc rgb "#888888"
set label "producer done" at {t_end_produce:.1f}, graph 0.96 offset 0.5,0 textcolor rgb "#666666"
plot "{csv_path}" using 1:2 skip 1 with lines lw 2 lc rgb "#c0392b" title "lag", \\
     "{csv_path}" using 1:6 skip 1 axes x1y2 with steps lw 2 lc rgb "#2471a3" title "consumer count (autoscaler)", \\
     "{csv_path}" using 1:8 skip 1 axes x1y2 with steps lw 1 dt 2 lc rgb "#117a65" title "consumers running and ready"
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def pipeline(args):
    rport, pport = free_port(), free_port()
    spec = os.path.join(REPO, "examples", "pipeline.yml")
    opts = {"REDIS_PORT": rport, "PG_PORT": pport, "INTERVAL": args.interval,
            "UP_COOLDOWN": args.up_cooldown, "DOWN_COOLDOWN": args.down_cooldown,
            "MAX_CONSUMERS": args.max, "WORK_MS": args.work_ms}
    result = {"machine": hb.machine(), "options": opts, "rate": args.rate, "total": args.total,
              "agent_cpus": args.agent_cpus}
    series = []
    res = f"cpus={args.agent_cpus}" if args.agent_cpus else None
    with hb.Bench("autoscale-pipeline", agent_resources=res) as b:
        b.start()
        c = Client(b)
        removed = False
        try:
            t = time.monotonic()
            c.cli("service", "deploy", "-f", spec, *[x for k, v in opts.items()
                                                     for x in ("-o", f"{k}={v}")],
                  "--wait", "--timeout", "240", timeout=300)
            result["deploy_s"] = time.monotonic() - t
            hb.log(f"pipeline deployed in {result['deploy_s']:.1f} s")
            if c.count("pipeline", "consumer") != 1:
                raise hb.BenchError("the consumer count is not 1 after the deploy")

            cpu = [cpu_times()]

            def sample(rel):
                now = cpu_times()
                busy = (now[0] - cpu[0][0]) / (now[1] - cpu[0][1]) \
                    if now[1] - cpu[0][1] >= 20 else None
                cpu[0] = now
                g = redis_cli(rport, "XINFO", "GROUPS", "events")
                lag = field(g, "lag")
                row = {
                    "t": round(rel, 2),
                    "lag": int(lag) if lag.strip() else None,
                    "pending": int(field(g, "pending")),
                    "xlen": int(redis_cli(rport, "XLEN", "events")[0]),
                    "stored": int(psql(pport, "SELECT count(*) FROM messages")),
                    "count": c.count("pipeline", "consumer"),
                }
                pods = [p for p in b.pods("pipeline") if p["pod"] == "consumer"]
                run = [t for p in pods for t in p["tasks"]
                       if t["name"].endswith("-server") and t["status"] == "RUNNING"]
                row["running"] = len(run)
                row["ready"] = sum(1 for t in run if t.get("ready"))
                row["instances"] = len(pods)
                row["group_consumers"] = int(field(g, "consumers"))
                row["cpu_busy"] = None if busy is None else round(busy, 3)
                return row

            # A few seconds before the producer starts.
            t0 = time.monotonic() + 5
            while time.monotonic() < t0:
                series.append(sample(time.monotonic() - t0))
                time.sleep(1)
            t0 = time.monotonic()
            t0_wall = time.time()
            c.cli("-s", "pipeline", "plan", "start", "produce", "-p", f"RATE={args.rate}",
                  "-p", f"TOTAL={args.total}")
            produced_at = None
            deadline = t0 + args.max_seconds
            k = 0
            while True:
                k += 1
                row = sample(time.monotonic() - t0)
                series.append(row)
                if produced_at is None and c.b.plan("pipeline", "produce").get("status") == "COMPLETE":
                    produced_at = row["t"]
                    hb.log(f"t={row['t']:.0f}s: the producer is done")
                if k % 10 == 0:
                    hb.log(f"t={row['t']:.0f}s lag {row['lag']} pending {row['pending']} "
                           f"stored {row['stored']} count {row['count']} running {row['running']}")
                if produced_at is not None and row["lag"] == 0 and row["pending"] == 0 and \
                        row["count"] == 1 and row["instances"] == 1 and row["running"] == 1 and \
                        row["stored"] == args.total:
                    break
                if time.monotonic() > deadline:
                    result["error"] = (f"not back to 1 consumer with lag 0 after "
                                       f"{args.max_seconds:g} s: {row}")
                    hb.log(result["error"])
                    break
                nxt = t0 + k
                time.sleep(max(0.0, nxt - time.monotonic()))
            result["produced_at_s"] = produced_at
            result["end_s"] = series[-1]["t"]
            # Exactly once, nothing pending.
            cnt, dist, lo, hi, who = psql(
                pport, "SELECT count(*), count(DISTINCT seq), min(seq), max(seq),"
                " count(DISTINCT consumer) FROM messages").split("|")
            g = redis_cli(rport, "XINFO", "GROUPS", "events")
            xp = redis_cli(rport, "XPENDING", "events", "workers")
            result["check"] = {
                "rows": int(cnt), "distinct_seq": int(dist), "min_seq": int(lo),
                "max_seq": int(hi), "consumers_that_stored": int(who),
                "group_pending": int(field(g, "pending")), "group_lag": int(field(g, "lag")),
                "group_consumers": int(field(g, "consumers")), "xpending": int(xp[0]),
                "exactly_once": int(cnt) == int(dist) == args.total and int(lo) == 1 and
                int(hi) == args.total,
            }
            result["check"]["ok"] = result["check"]["exactly_once"] and \
                result["check"]["group_pending"] == 0 and result["check"]["xpending"] == 0
            st = json.loads(c.cli("-s", "pipeline", "autoscale", "status", "--json").stdout)
            result["autoscale_status"] = st
            result["unplaced"] = [f"{p['name']}: {p['message']}" for p in b.pods("pipeline")
                                  if not p["placed"]]
            # Every decision the autoscaler said (holds with their reason
            # included), and the scale-ins' drains.
            result["events"] = [
                {"t": round(event_time(e["time"]) - t0_wall, 2), "who": e.get("who"),
                 "kind": e.get("kind"), "object": e.get("object"), "before": e.get("before"),
                 "after": e.get("after"), "why": e.get("why")}
                for e in c.events("pipeline")
                if e.get("who") == "autoscaler" or e.get("kind") in ("pod", "plan")]
            result["scalings"] = [
                {"t": round(s[0] - t0_wall, 2), "before": s[1], "after": s[2], "why": s[3]}
                for s in c.scalings("pipeline")]
            c.cli("service", "remove", "pipeline", "--wait", "--timeout", "120", timeout=150)
            removed = True
        finally:
            if not removed:
                c.cli("service", "remove", "pipeline", "--wait", "--timeout", "60",
                      check=False, timeout=90)
    result["series"] = series
    # Derived figures.
    during = [r for r in series if r["t"] >= 0 and r["lag"] is not None]
    peak = max(during, key=lambda r: r["lag"])
    result["peak_lag"] = {"lag": peak["lag"], "t": peak["t"]}
    result["max_count"] = max(r["count"] for r in during)
    result["max_running"] = max(r["running"] for r in during)
    first_over = next((r["t"] for r in during if r["lag"] > 500), None)
    ups = [s for s in result["scalings"] if s["after"] > s["before"]]
    downs = [s for s in result["scalings"] if s["after"] < s["before"]]
    result["first_over_500_s"] = first_over
    result["first_up_s"] = ups[0]["t"] if ups else None
    result["second_ready_s"] = next((r["t"] for r in during if r["ready"] >= 2), None)
    result["ups"], result["downs"] = len(ups), len(downs)
    at_max = next((r["t"] for r in during if r["count"] == result["max_count"]), None)
    result["max_count_at_s"] = at_max
    if result["produced_at_s"] is not None:
        after = [r for r in during if r["t"] >= result["produced_at_s"]]
        result["lag_zero_s"] = next((r["t"] for r in after if r["lag"] == 0), None)
        result["under_100_s"] = next((r["t"] for r in after if r["lag"] < 100), None)
    hb.write_result(args.out, result)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            cols = ["t", "lag", "pending", "xlen", "stored", "count", "running", "ready",
                    "instances", "group_consumers", "cpu_busy"]
            w.writerow(cols)
            for r in series:
                w.writerow([r[k] for k in cols])
        if args.plot:
            plot(args.csv, args.plot,
                 f"examples/pipeline.yml: producer {args.rate:g}/s for {args.total} messages, "
                 f"consumers of {1000 / float(args.work_ms):.0f}/s, every {args.interval}: "
                 f"+1 above 500, -1 below 100",
                 result["produced_at_s"] or 0)
    ck = result["check"]
    print(f"pipeline: producer {args.rate:g}/s x {args.total}, interval {args.interval}, "
          f"up cooldown {args.up_cooldown}, down cooldown {args.down_cooldown}, "
          f"WORK_MS {args.work_ms}")
    print(f"  deploy {result['deploy_s']:.1f} s; producer done at {result['produced_at_s']} s; "
          f"lag first > 500 at {first_over} s, first scale-up at {result['first_up_s']} s")
    print(f"  peak lag {peak['lag']} at {peak['t']} s; max count {result['max_count']} "
          f"(at {at_max} s); lag 0 again at {result.get('lag_zero_s')} s; "
          f"{'gave up' if result.get('error') else 'back to 1 consumer, lag 0,'} at "
          f"{result['end_s']} s; {len(ups)} scale-ups, {len(downs)} scale-ins")
    print(f"  check: {ck['rows']} rows, {ck['distinct_seq']} distinct seq ({ck['min_seq']}.."
          f"{ck['max_seq']}), stored by {ck['consumers_that_stored']} consumers; group pending "
          f"{ck['group_pending']}, lag {ck['group_lag']}, consumers {ck['group_consumers']}, "
          f"XPENDING {ck['xpending']}: {'OK' if ck['ok'] else 'FAILED'}")
    busy = [r["cpu_busy"] for r in during if r["cpu_busy"] is not None]
    print(f"  machine CPU busy (all cores): mean {sum(busy) / len(busy):.0%}, "
          f"max {max(busy):.0%}; agent offered cpus: {args.agent_cpus or 'detected'}")
    if result.get("error"):
        print(f"  FAILED: {result['error']}")
        print(f"  last decision: {result['autoscale_status']['pods'][0].get('decision')}")
        for u in result["unplaced"]:
            print(f"  unplaced: {u}")
        sys.exit(1)
    if not ck["ok"]:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("react")
    r.add_argument("--trials-1s", type=int, default=10)
    r.add_argument("--trials-15s", type=int, default=5)
    r.add_argument("--seed", type=int, default=17)
    r.add_argument("--out")
    p = sub.add_parser("pipeline")
    p.add_argument("--rate", type=float, default=300)
    p.add_argument("--total", type=int, default=45000)
    p.add_argument("--interval", default="15s")
    p.add_argument("--up-cooldown", default="15s")
    p.add_argument("--down-cooldown", default="15s")
    p.add_argument("--max", type=int, default=10)
    p.add_argument("--work-ms", default="20")
    p.add_argument("--max-seconds", type=float, default=720)
    p.add_argument("--agent-cpus", type=float,
                   help="the cpus the agent offers (--resources cpus=N; default: detected)")
    p.add_argument("--out")
    p.add_argument("--csv")
    p.add_argument("--plot")
    args = ap.parse_args()
    if args.cmd == "react":
        react(args)
    else:
        pipeline(args)


if __name__ == "__main__":
    main()
