#!/usr/bin/python3
"""Summary of a bench/run.sh results directory (the *.json files).

    bench/summary.py DIR [--markdown]
"""
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def ms(x):
    return f"{x * 1000:.0f} ms" if x is not None else "-"


def rng(vals, f):
    return f"{f(min(vals))}–{f(max(vals))}" if len(vals) > 1 else f(vals[0])


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--markdown" in sys.argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d = args[0]
    rows = []  # (benchmark, metric, holdfast, baseline, ratio, spread)

    dep = load(d, "deploy")
    if dep:
        runs = dep["runs"]
        rows.append((f"deploy N={dep['n']}", "POST → plan COMPLETE (median of runs)",
                     f"{dep['holdfast_s']['median']:.2f} s",
                     f"{dep['baseline_s']['median']:.3f} s",
                     f"{dep['ratio']['median']:.0f}×",
                     f"holdfast {rng([r['complete_s'] for r in runs], lambda v: f'{v:.2f}')} s; "
                     f"baseline {rng([r['baseline_s'] for r in runs], lambda v: f'{v:.3f}')} s; "
                     f"ratio {rng([r['ratio'] for r in runs], lambda v: f'{v:.0f}')}× "
                     f"({len(runs)} runs)"))

    deps = load(d, "deploys")
    for n, c in sorted((deps or {}).get("counts", {}).items(), key=lambda x: int(x[0])):
        for label in ("after", "before"):
            s = c["summary"].get(label)
            if not s:
                continue
            rows.append((f"deploy N={n} ({label})", "POST → plan COMPLETE / raw spawn (median)",
                         f"{s['complete_s']['median']:.2f} s",
                         f"{c['summary']['baseline_s']['median']:.3f} s",
                         f"{s['ratio']['median']:.1f}×",
                         f"ratio {s['ratio']['min']:.1f}–{s['ratio']['max']:.1f}×; server CPU "
                         f"{s['server_cpu_ms_per_task']['median']:.2f} ms/task "
                         f"({s['server_cpu_ms_per_task']['min']:.2f}–"
                         f"{s['server_cpu_ms_per_task']['max']:.2f}); "
                         f"{s['ratio']['n']} runs"))

    for name in ("restart", "restart-nobackoff", "restart-cpus0.01"):
        rs = load(d, name)
        if not rs:
            continue
        runs, p = rs["runs"], rs["pooled"]
        label = (f"restart ({rs['kills']} kills × {len(runs)}, --backoff {rs['backoff']} "
                 f"--backoff-max {rs['backoff_max']}, task cpus {rs['cpus']})")
        for key, what in (("exec", "kill → replacement's `sleep` running"),
                          ("respawn", "kill → new status.json running, pid alive"),
                          ("api", "kill → API shows new task RUNNING")):
            for stat in ("median", "p99"):
                base = p["baseline"][stat] if key == "exec" else None
                rows.append((label, f"{what}, {stat}", ms(p[key][stat]),
                             ms(base) if base is not None else "",
                             f"{p[key][stat] / base:.0f}×" if base else "",
                             "per run " + rng([r[key][stat] for r in runs], ms)
                             + (f"; baseline per run {rng([r['baseline'][stat] for r in runs], ms)}"
                                if key == "exec" else "")))
        fk = [r["first_kill"]["exec_s"] for r in runs]
        rows.append((label, "first kill (no backoff yet) → `sleep` running", rng(fk, ms), "", "", ""))
        if rs.get("default_backoff"):
            for x in rs["default_backoff"]:
                rows.append(("restart, default backoff (1 s base, 60 s max)",
                             f"kill {x['kill']} → running (nominal backoff "
                             f"{x['nominal_range_s'][0]:.1f}–{x['nominal_range_s'][1]:.0f} s)",
                             f"{x['respawn_s']:.3f} s", "", "", f"API RUNNING {x['api_s']:.3f} s"))

    mem = load(d, "memory")
    if mem:
        by_n = {}
        for r in mem["runs"]:
            by_n.setdefault(r["n"], []).append(r)
        for n, rr in sorted(by_n.items()):
            def kb(v):
                return f"{v / 1024:.1f} MB"
            for proc in ("server", "agent"):
                idle = [r["idle"][f"{proc}_kb"] for r in rr]
                loaded = [r["loaded"][f"{proc}_kb"] for r in rr]
                growth = [r[f"{proc}_growth_kb_per_task"] for r in rr]
                rows.append((f"memory N={n}", f"{proc} VmRSS with {n} tasks (idle = baseline)",
                             rng(loaded, kb), rng(idle, kb), "",
                             f"growth {rng(growth, lambda v: f'{v:.1f}')} KB/task ({len(rr)} runs)"))
            shim = [r["loaded"]["shim_rss_kb_mean"] for r in rr]
            spss = [r["loaded"]["shim_pss_kb_mean"] for r in rr]
            rows.append((f"memory N={n}", "per task: shim VmRSS (PSS)",
                         f"{rng(shim, lambda v: f'{v:.0f}')} KB ({rng(spss, lambda v: f'{v:.0f}')} KB)",
                         "", "", f"{rr[0]['loaded']['shims']} shims"))
            rows.append((f"memory N={n}", "deploy POST → COMPLETE; server / agent CPU time",
                         rng([r["deploy_complete_s"] for r in rr], lambda v: f"{v:.1f} s"),
                         rng([r["deploy_baseline_s"] for r in rr], lambda v: f"{v:.2f} s"),
                         rng([r["deploy_ratio"] for r in rr], lambda v: f"{v:.0f}") + "×",
                         f"server CPU {rng([r['server_cpu_s'] for r in rr], lambda v: f'{v:.1f}')} s, "
                         f"agent CPU {rng([r['agent_cpu_s'] for r in rr], lambda v: f'{v:.1f}')} s"))

    sh = load(d, "shim")
    if sh:
        mo, mn = sh["memory_old"], sh["memory_new"]
        for what in ("rss", "pss"):
            rows.append((f"shim N={sh['n']}", f"per shim {what.upper()} (median), "
                         "holdfast-shim vs. the shim before",
                         f"{mn[what + '_kb']['median']} KB", f"{mo[what + '_kb']['median']} KB",
                         f"{mn[what + '_kb']['median'] / mo[what + '_kb']['median']:.2f}x",
                         f"{mn['shared_objects']} vs. {mo['shared_objects']} shared objects"))
        r, b = sh["restart_shim_ms"], sh["restart_loop_ms"]
        rows.append((f"shim restart, {sh['tasks']} tasks", "kill -9 → restarted in place "
                     "(first restart, p50 / p99) vs. shell loop",
                     f"{r['median']:.2f} / {r['p99']:.2f} ms", f"{b['median']:.2f} / {b['p99']:.2f} ms",
                     f"{sh['ratio_median']:.1f}x / {sh['ratio_p99']:.1f}x", ""))
        eo, en = sh.get("exec_old_ms"), sh.get("exec_new_ms")
        if eo and en:
            rows.append((f"shim start-up, {en['n']} each", "spawn → exit of the program "
                         "(usage error, p50 / p99), holdfast-shim vs. the shim before",
                         f"{en['median']:.2f} / {en['p99']:.2f} ms", f"{eo['median']:.2f} / {eo['p99']:.2f} ms",
                         f"{en['median'] / eo['median']:.2f}x / {en['p99'] / eo['p99']:.2f}x", ""))
        o = sh.get("restart_old_ms")
        if o:
            rows.append((f"shim restart, {sh['tasks']} tasks", "kill -9 → restarted in place "
                         "(first restart, p50 / p99), holdfast-shim vs. the shim before",
                         f"{r['median']:.2f} / {r['p99']:.2f} ms", f"{o['median']:.2f} / {o['p99']:.2f} ms",
                         f"{r['median'] / o['median']:.1f}x / {r['p99'] / o['p99']:.1f}x", ""))

    k9 = load(d, "kill9")
    if k9:
        def q(s):
            return " / ".join(f"{s[k]:.1f}" for k in ("median", "p90", "p99", "max")) + " ms"

        def x(r):
            return " / ".join(f"{r[k]:.1f}" for k in ("median", "p90", "p99", "max")) + "×"
        label = (f"restart after kill -9 ({k9['repeat']} run(s), holdfast --backoff "
                 f"{k9['backoff']} --backoff-max {k9['backoff_max']})")
        for case, what in (("first", f"first restart of each of {k9['tasks']} tasks"),
                           ("repeated", f"{k9['kills']} consecutive kills of one task")):
            r, per = k9[case], k9[case + "_per_run"]
            hf, sh, sv = (r[sy]["restart_ms"] for sy in ("holdfast", "shell", "supervisord"))
            runs = (", ".join(f"{p['holdfast']['restart_ms']['median']:.1f}" for p in per)
                    + " ms; holdfast/shell p50 " + ", ".join(
                        f"{p['holdfast_over_shell']['median']:.1f}" for p in per) + "×")
            rows.append((label, f"{what}: p50 / p90 / p99 / max vs. shell `while` loop",
                         q(hf), q(sh), x(r["holdfast_over_shell"]),
                         f"per run: holdfast p50 {runs}"))
            rows.append((label, f"{what}: p50 / p90 / p99 / max, supervisord "
                         f"{k9['supervisord_version']} (ratio supervisord/holdfast)",
                         q(hf), q(sv), x(r["supervisord_over_holdfast"]),
                         "per run: supervisord p50 " + ", ".join(
                             f"{p['supervisord']['restart_ms']['median']:.0f}" for p in per)
                         + " ms"))

    vo = load(d, "volumes")
    if vo:
        m = vo["median"]
        rows.append((f"volumes ({len(vo['runs'])} runs of {vo['seconds']:.0f} s)",
                     "commits/s (4 KiB append + fdatasync): holdfast-volume (FUSE, repl=1) "
                     "vs. ext4 on a local loop device",
                     f"{m['attach_commits_s']:.0f}/s", f"{m['loop_commits_s']:.0f}/s",
                     f"{100 * m['ratio']:.0f}%",
                     "per run: " + ", ".join(f"{100 * r['ratio']:.0f}%" for r in vo["runs"])))
        if "repl2_commits_s" in m:
            rows.append((f"volumes ({len(vo['runs'])} runs of {vo['seconds']:.0f} s)",
                         "commits/s: holdfast-volume repl=2 (local replica + holdfast-volume "
                         "serve on loopback) vs. ext4 on a local loop device (target 60%)",
                         f"{m['repl2_commits_s']:.0f}/s", f"{m['loop_commits_s']:.0f}/s",
                         f"{100 * m['repl2_ratio']:.0f}%",
                         "per run: " + ", ".join(f"{100 * r['repl2_ratio']:.0f}%"
                                                 for r in vo["runs"])))

    cl = load(d, "cluster")
    if cl:
        by = {r["mode"]: r for r in cl["results"]}
        for m in ("unique", "maxper"):
            on, off = by.get(m), by.get(m + "-off")
            if not on or not off:
                continue
            label = f"cluster {on['agents']} agents, {on['instances']} instances"
            rows.append((label, f"placements/s, {m} vs. no constraints",
                         f"{on['placements_per_s']:.0f}/s", f"{off['placements_per_s']:.0f}/s",
                         f"{off['placements_per_s'] / on['placements_per_s']:.2f}x",
                         f"all running {on['complete_s']:.1f} s vs. {off['complete_s']:.1f} s"))
            rows.append((label, f"server peak RSS, {m} vs. no constraints",
                         f"{on['server_hwm_kb'] // 1024} MB", f"{off['server_hwm_kb'] // 1024} MB",
                         f"{on['server_hwm_kb'] / off['server_hwm_kb']:.2f}x",
                         f"{on['server_rss_before_kb'] // 1024} MB with the agents only"))
    ar = load(d, "autoscale-react")
    for interval, r in sorted((ar or {}).get("intervals", {}).items(), key=lambda x: float(x[0][:-1])):
        def q(s):
            return " / ".join(f"{s[k]:.2f}" for k in ("p50", "p90", "max")) + " s"
        label = f"autoscale, interval {interval} ({r['trials']} trials)"
        rows.append((label, "metric over up.above → new instance RUNNING and ready, p50 / p90 / max, "
                     "vs. `pod scale` → ready", q(r["total_s"]), q(r["manual_ready_s"]),
                     " / ".join(f"{r['ratio_total'][k]:.1f}" for k in ("p50", "p90", "max")) + "×",
                     f"evaluation wait {q(r['eval_wait_s'])}; scale event → ready "
                     f"{q(r['act_to_ready_s'])}"))
    ap = load(d, "autoscale-pipeline")
    if ap:
        ck = ap["check"]
        rows.append((f"autoscale pipeline ({ap['rate']:g}/s × {ap['total']}, every "
                     f"{ap['options']['INTERVAL']})",
                     "peak lag; max consumers; back to 1 consumer and lag 0",
                     f"{ap['peak_lag']['lag']} at {ap['peak_lag']['t']:.0f} s; {ap['max_count']}; "
                     f"{ap['end_s']:.0f} s", "", "",
                     f"producer done at {ap['produced_at_s']:.0f} s; {ap['ups']} up, "
                     f"{ap['downs']} down; {ck['rows']} rows, {ck['distinct_seq']} distinct, "
                     f"pending {ck['group_pending']}: {'OK' if ck['ok'] else 'FAILED'}"))
    if md:
        print("| benchmark | metric | holdfast | baseline | ratio | spread / notes |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in rows:
            print(f"{r[0]}: {r[1]}: holdfast {r[2]}" + (f", baseline {r[3]}" if r[3] else "")
                  + (f", ratio {r[4]}" if r[4] else "") + (f" [{r[5]}]" if r[5] else ""))


if __name__ == "__main__":
    main()
