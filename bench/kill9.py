#!/usr/bin/python3
"""Restart after kill -9: holdfast against a shell loop and supervisord.

Three supervisors run the same program for each task NAME,

    sh -c 'echo $$ > PIDS/NAME; exec sleep 3600'

so every (re)start forks, execs sh, writes the pid to a file and execs
sleep in the same process:
  shell        `while :; do sh -c '...'; done`, one loop per task, each in a
               session of its own;
  supervisord  Debian's `supervisor` (installed with apt-get when missing),
               a private supervisord (its own config, unix socket, pidfile
               and logs in a temp dir; a system one is never touched), one
               [program] per task with autorestart=true, startsecs=0 and a
               startretries high enough for every kill;
  holdfast     a server (with --backoff/--backoff-max) and an agent on
               loopback, one service whose pod `many` has one task per
               instance and whose pod `one` has a single one; the task runs
               the program through the shim's `sh -c` (task cpus 1, so no
               CFS quota throttles the start).

The detector is the same for all three: the time from SIGKILL of the pid in
PIDS/NAME (the `sleep`) until PIDS/NAME names another pid whose process has
exec'd `sleep` (not a zombie), polled every --poll seconds. Before the next
kill the supervisor must agree the new process runs: supervisord's
getProcessInfo says RUNNING with that pid; holdfast's API says the task is
RUNNING and the agent's status.json of that task id names that pid (a
restart in place that keeps the task id passes as well as a new task).
Then --gap seconds pass before the kill, so that our question is not what
wakes the supervisor after it.

Two cases, each run (--repeat) measures all three supervisors, one after
the other, each started fresh:
  first    --tasks tasks, each killed once: every kill is a task's first
           restart (holdfast has no backoff for it);
  repeated one task killed --kills times in a row: holdfast waits its
           backoff (--backoff .. --backoff-max) from the second restart on;
           the shell loop and supervisord have no backoff.

    bench/kill9.py [--tasks 30] [--kills 100] [--repeat 1]
                   [--backoff 0.01 --backoff-max 0.05] [--out FILE]
"""
import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

PROGRAM = "echo $$ > {pids}/{name}; exec sleep 3600"
SUPERVISORD = "/usr/bin/supervisord"
SYSTEMS = ("shell", "supervisord", "holdfast")


def names(tasks):
    return [f"many-{i}" for i in range(tasks)], "one-0"


# ---------------------------------------------------------------- detector
def running(pidfile):
    """The pid in pidfile once its process has exec'd sleep, else None."""
    try:
        with open(pidfile) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None  # not there yet, or read between truncate and write
    st = hb.proc_stat(pid)
    return pid if st and st[0] == "sleep" and st[1] != "Z" else None


def kill_once(pidfile, old, poll, timeout):
    """SIGKILL old; (seconds until another pid runs sleep, that pid)."""
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    while True:
        pid = running(pidfile)
        if pid and pid != old:
            return time.monotonic() - t0, pid
        if time.monotonic() - t0 > timeout:
            raise hb.BenchError(f"{pidfile}: no restart {timeout}s after kill -9 of {old}")
        time.sleep(poll)


# ---------------------------------------------------------------- supervisors
class Shell:
    def __init__(self, b, pids, tasks):
        self.b, self.pids = b, pids
        many, one = names(tasks)
        for n in many + [one]:
            b.shell_loop("sh -c '" + PROGRAM.format(pids=pids, name=n) + "'")

    def settled(self, name, pid):
        return True

    def stop(self):
        for g in list(self.b.groups):
            self.b.kill_group(g)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.unix_path)
        self.sock = s


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        return _UnixConnection(self.unix_path)


def ensure_supervisord():
    """Debian's supervisor, installed when missing (its postinst may start
    a system supervisord where services may start; it is left alone)."""
    if os.access(SUPERVISORD, os.X_OK):
        return
    hb.log("installing Debian's supervisor (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "supervisor"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


class Supervisord:
    def __init__(self, b, pids, tasks, kills):
        self.b = b
        d = os.path.join(b.tmp, "supervisord")
        os.makedirs(os.path.join(d, "logs"))
        self.sock = os.path.join(d, "supervisor.sock")
        many, one = names(tasks)
        conf = [
            "[unix_http_server]", f"file={self.sock}", "chmod=0700", "",
            "[supervisord]", f"logfile={d}/supervisord.log", f"pidfile={d}/supervisord.pid",
            f"childlogdir={d}/logs", f"directory={b.tmp}", "nodaemon=true", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        ]
        for n in many + [one]:
            # `%` would start an expansion in supervisord's config; there is none.
            conf += [f"[program:{n}]",
                     f"command=sh -c \"{PROGRAM.format(pids=pids, name=n)}\"",
                     f"directory={b.tmp}", "autorestart=true", "startsecs=0",
                     f"startretries={kills + 10}", "stopsignal=KILL", "stopwaitsecs=5", ""]
        self.conf = os.path.join(d, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf))
        log_ = b._log("supervisord.out")
        # Its own session: Bench's cleanup kills the group (supervisord
        # puts each child in a group of its own; those are found by their
        # working directory, the temp dir).
        self.proc = subprocess.Popen([SUPERVISORD, "-c", self.conf], cwd=b.tmp,
                                     stdin=subprocess.DEVNULL, stdout=log_, stderr=log_,
                                     start_new_session=True)
        b.groups.append(self.proc)
        self.rpc = xmlrpc.client.ServerProxy("http://localhost/RPC2",
                                             transport=_UnixTransport(self.sock))

        def up():
            if self.proc.poll() is not None:
                raise hb.BenchError("supervisord exited: " + b.tail("supervisord/supervisord.log"))
            try:
                return self.rpc.supervisor.getState()["statename"] == "RUNNING"
            except (OSError, xmlrpc.client.Error):
                return False
        hb.wait_for(up, 30, 0.05, "supervisord up")

    def settled(self, name, pid):
        info = self.rpc.supervisor.getProcessInfo(name)
        return info["statename"] == "RUNNING" and info["pid"] == pid

    def stop(self):
        """shutdown over its socket: it stops every program and exits."""
        try:
            self.rpc.supervisor.shutdown()
            self.proc.wait(30)
        except (OSError, xmlrpc.client.Error, subprocess.TimeoutExpired) as e:
            hb.log(f"supervisord did not shut down cleanly ({e}); killed")
        self.b.kill_group(self.proc)


def holdfast_spec(pids, tasks):
    def pod(name, count):
        cmd = PROGRAM.format(pids=pids, name=name + "-$POD_INSTANCE_INDEX")
        return (f"  {name}:\n    count: {count}\n    tasks:\n      server:\n"
                f"        goal: RUNNING\n        cmd: \"{cmd}\"\n        cpus: 1\n"
                f"        memory: 16\n")
    return ("name: kill9\npods:\n" + pod("many", tasks) + pod("one", 1) +
            "plans:\n  deploy:\n    strategy: parallel\n    phases:\n"
            "      many:\n        strategy: parallel\n        pod: many\n"
            "      one:\n        strategy: parallel\n        pod: one\n")


class Holdfast:
    def __init__(self, b, pids, tasks):
        self.b = b
        b.start()
        b.deploy(holdfast_spec(pids, tasks))
        hb.wait_for(lambda: b.plan("kill9").get("status") == "COMPLETE", 120, 0.05,
                    "kill9: deploy COMPLETE")

    def settled(self, name, pid):
        t = self.b.tasks("kill9").get(name + "-server")
        if not t or t.get("status") != "RUNNING" or not t.get("id"):
            return False
        st = self.b.task_status(t["id"])
        return bool(st) and st.get("state") == "running" and st.get("pid") == pid

    def stop(self):
        pass  # Bench's cleanup: server, agent, shims, tasks, cgroups


# ---------------------------------------------------------------- one run
def measure(sup, pidfile, name, kills, a, label):
    """kills consecutive kills of one task; per kill the restart time and
    the time until the supervisor says the new process runs."""
    poll, timeout = a.poll, a.timeout
    pid = hb.wait_for(lambda: running(pidfile), timeout, 0.001, f"{label} {name} running")
    hb.wait_for(lambda: sup.settled(name, pid), timeout, 0.005, f"{label} {name} settled")
    out = []
    for _ in range(kills):
        # Our own question (an RPC, a GET) must not be what wakes the
        # supervisor after the kill: supervisord's loop sleeps in poll()
        # for up to 1 s, and the close of our connection would wake it.
        time.sleep(a.gap)
        t0 = time.monotonic()
        lat, pid = kill_once(pidfile, pid, poll, timeout)
        hb.wait_for(lambda: sup.settled(name, pid), timeout, 0.002,
                    f"{label} {name}: the supervisor to report pid {pid} running")
        out.append({"restart_s": lat, "settled_s": time.monotonic() - t0})
    return out


def run_system(system, a):
    with hb.Bench(f"kill9-{system}", backoff=a.backoff, backoff_max=a.backoff_max,
                  agent_resources=f"cpus={a.tasks + 8},memory={32 * (a.tasks + 8)}",
                  keep=a.keep) as b:
        pids = os.path.join(b.tmp, "pids")
        os.makedirs(pids)
        if system == "shell":
            sup = Shell(b, pids, a.tasks)
        elif system == "supervisord":
            sup = Supervisord(b, pids, a.tasks, a.kills)
        else:
            sup = Holdfast(b, pids, a.tasks)
        try:
            many, one = names(a.tasks)
            first = []
            for n in many:
                first += measure(sup, os.path.join(pids, n), n, 1, a, system)
            repeated = measure(sup, os.path.join(pids, one), one, a.kills, a, system)
        finally:
            sup.stop()
    for case, xs in (("first", first), ("repeated", repeated)):
        s = hb.summary([x["restart_s"] for x in xs])
        hb.log(f"  {system} {case}: p50 {s['median'] * 1000:.2f} ms, p99 "
               f"{s['p99'] * 1000:.2f} ms, max {s['max'] * 1000:.2f} ms")
    return {"first": first, "repeated": repeated}


def ms(s):
    return {k: (v * 1000 if isinstance(v, float) else v) for k, v in s.items()}


def stats(samples):
    """{system: restart and settled summaries in ms} plus the ratios."""
    r = {sy: {"restart_ms": ms(hb.summary([x["restart_s"] for x in samples[sy]])),
              "settled_ms": ms(hb.summary([x["settled_s"] for x in samples[sy]]))}
         for sy in SYSTEMS}
    sh, sv, hf = (r[sy]["restart_ms"] for sy in SYSTEMS)
    r["holdfast_over_shell"] = {k: hf[k] / sh[k] for k in ("median", "p90", "p99", "max")}
    r["supervisord_over_holdfast"] = {k: sv[k] / hf[k] for k in ("median", "p90", "p99", "max")}
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--tasks", type=int, default=30, help="tasks killed once each")
    ap.add_argument("--kills", type=int, default=100, help="consecutive kills of one task")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--backoff", default="0.01", help="holdfast server --backoff")
    ap.add_argument("--backoff-max", default="0.05", help="holdfast server --backoff-max")
    ap.add_argument("--poll", type=float, default=0.0002, help="polling interval (s)")
    ap.add_argument("--timeout", type=float, default=30, help="per kill (s)")
    ap.add_argument("--gap", type=float, default=0.1,
                    help="pause between the supervisor's report and the next kill (s)")
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    ensure_supervisord()
    version = subprocess.run([SUPERVISORD, "--version"], capture_output=True,
                             text=True).stdout.strip()

    runs = []
    for r in range(a.repeat):
        hb.log(f"kill9 run {r + 1}/{a.repeat}")
        runs.append({sy: run_system(sy, a) for sy in SYSTEMS})
    res = {"benchmark": "kill9", "tasks": a.tasks, "kills": a.kills, "repeat": a.repeat,
           "backoff": a.backoff, "backoff_max": a.backoff_max, "poll_s": a.poll, "gap_s": a.gap,
           "supervisord_version": version, "machine": hb.machine(), "runs": runs}
    for case in ("first", "repeated"):
        res[case] = stats({sy: [x for run in runs for x in run[sy][case]] for sy in SYSTEMS})
        res[case + "_per_run"] = [stats({sy: run[sy][case] for sy in SYSTEMS}) for run in runs]
    hb.write_result(a.out, res)

    print(f"restart after kill -9 ({a.repeat} run(s); holdfast server --backoff {a.backoff} "
          f"--backoff-max {a.backoff_max}; supervisord {version}; kill -> the new process "
          f"has exec'd sleep):")
    for case, what in (("first", f"first restart of each of {a.tasks} tasks"),
                       ("repeated", f"{a.kills} consecutive kills of one task")):
        r = res[case]
        print(f"  {what}:")
        for sy in SYSTEMS:
            s = r[sy]["restart_ms"]
            print(f"    {sy:12} p50 {s['median']:8.2f} ms  p90 {s['p90']:8.2f} ms  "
                  f"p99 {s['p99']:8.2f} ms  max {s['max']:8.2f} ms  "
                  f"(supervisor reports it: p50 {r[sy]['settled_ms']['median']:.2f} ms)")
        h, v = r["holdfast_over_shell"], r["supervisord_over_holdfast"]
        print(f"    holdfast/shell p50 {h['median']:.1f}x p99 {h['p99']:.1f}x; "
              f"supervisord/holdfast p50 {v['median']:.1f}x p99 {v['p99']:.1f}x")
        if case == "first":
            ok = lambda c: "met" if c else "NOT met"  # noqa: E731
            print(f"    targets: p50 <= 4x shell {ok(h['median'] <= 4)}; p99 <= 10x shell "
                  f"{ok(h['p99'] <= 10)}; >= 100x faster than supervisord "
                  f"{ok(v['median'] >= 100)} (p50)")


if __name__ == "__main__":
    try:
        main()
    except hb.BenchError as e:
        print(f"kill9: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
