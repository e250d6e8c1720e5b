"""System tests for holdfast-shim: drive the real program the way the agent
does (write launch.json, run `holdfast-shim --dir TASKDIR`, read status.json,
talk JSON lines on shim.sock) and check what the agent and an operator see.

HOLDFAST_BIN selects the binary (default: the sanitizer build); the shim is
the holdfast-shim next to it, as the agent finds it. No timing is asserted
beyond "at least the grace period"; waits are generous deadlines.
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

BIN = os.environ.get("HOLDFAST_BIN", "/work/main/build-asan/holdfast")
SHIM = os.path.join(os.path.dirname(BIN), "holdfast-shim")
DEADLINE = 30.0


# ---- helpers ----------------------------------------------------------


def make_task(tmp_path, cmd, name="task", **launch):
    """Creates TASKDIR and a sandbox under tmp_path and writes launch.json."""
    taskdir = tmp_path / name
    sandbox = tmp_path / (name + "-sandbox")
    taskdir.mkdir(parents=True)
    sandbox.mkdir(parents=True)
    doc = {
        # Unique, so that concurrent runs never share a cgroup.
        "task_id": "test-0-server__" + uuid.uuid4().hex,
        "cmd": cmd,
        "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HF_TEST": "1"},
        "sandbox": str(sandbox),
        "rlimits": [],
        "cpus": 0.5,
        "memory_mb": 256,
        "log_max_bytes": 10485760,
        "log_keep": 3,
        "kill_grace_period": 5,
        "user": None,
    }
    doc.update(launch)
    tmp = taskdir / "launch.json.new"
    tmp.write_text(json.dumps(doc))
    os.rename(tmp, taskdir / "launch.json")
    return taskdir, sandbox


def run_shim(taskdir, env=None, extra=()):
    """Runs `holdfast-shim --dir TASKDIR`; returns the CompletedProcess."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([SHIM, "--dir", str(taskdir), *extra],
                       capture_output=True, text=True, timeout=DEADLINE,
                       env=e)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, \
        r.stderr
    return r


def start(taskdir, env=None):
    r = run_shim(taskdir, env)
    assert r.returncode == 0, f"shim exited {r.returncode}: {r.stderr}"
    st = status(taskdir)
    # A short task may already be done by the time we look.
    assert st["state"] in ("running", "exited"), st
    return st


def status(taskdir):
    with open(os.path.join(taskdir, "status.json")) as f:
        return json.load(f)


def wait_for(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def wait_exit(taskdir, timeout=DEADLINE):
    def done():
        st = status(taskdir)
        return st if st["state"] in ("exited", "failed-to-start") else None
    st = wait_for(done, f"{taskdir} to exit", timeout)
    # The shim exits right after writing the final status.
    wait_for(lambda: not alive(st["shim_pid"]), "the shim to exit")
    return st


def alive(pid):
    """True when pid exists and is not a zombie."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def connect(taskdir):
    """Connects to shim.sock the way the client library does: through
    /proc/self/fd when the path does not fit in sun_path."""
    path = os.path.join(str(taskdir), "shim.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(path.encode()) < 108:
        s.connect(path)
    else:
        fd = os.open(str(taskdir), os.O_PATH | os.O_DIRECTORY)
        try:
            s.connect(f"/proc/self/fd/{fd}/shim.sock")
        finally:
            os.close(fd)
    s.settimeout(DEADLINE)
    return s


class Lines:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def next(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def request(taskdir, obj):
    with connect(taskdir) as s:
        s.sendall(json.dumps(obj).encode() + b"\n")
        return Lines(s).next()


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(autouse=True)
def no_sanitizer_reports(tmp_path):
    """Every shim's own log must be free of sanitizer reports."""
    yield
    for root, _, files in os.walk(tmp_path):
        if "shim.log" in files:
            log = read(os.path.join(root, "shim.log"))
            assert "Sanitizer" not in log and "runtime error" not in log, log


def cgroups_usable():
    """What this machine offers, judged independently of the shim."""
    root = "/sys/fs/cgroup"
    if os.geteuid() != 0:
        return False
    if os.path.exists(f"{root}/cgroup.controllers"):
        return os.access(root, os.W_OK)
    if os.path.exists(f"{root}/memory/memory.limit_in_bytes"):
        return os.access(f"{root}/memory", os.W_OK)
    return False


# ---- tests ------------------------------------------------------------


def test_exit_code_and_status_recorded(tmp_path):
    taskdir, _ = make_task(tmp_path, "exit 7")
    r = run_shim(taskdir)
    assert r.returncode == 0, r.stderr
    st = wait_exit(taskdir)
    assert st["state"] == "exited"
    assert st["exit_code"] == 7 and st["signal"] is None
    assert st["oom_killed"] is False and st["stop_requested"] is False
    assert st["task_id"].startswith("test-0-server__")
    assert st["pid"] == st["pgid"] and st["pid"] > 0
    # Per launch: the order, the status, the shim's own log; no pid or
    # lock file (the pid is in status.json, the lock is launch.json's).
    # status.json.new keeps the status before the last one: the next write
    # goes there and is swapped in, so no status write frees an inode.
    assert sorted(os.listdir(taskdir)) == \
        ["launch.json", "shim.log", "status.json", "status.json.new"]
    before = json.loads(read(taskdir / "status.json.new"))
    assert before["state"] in ("starting", "running"), before
    assert before["task_id"] == st["task_id"]
    assert st["started_at"] <= st["finished_at"]
    assert st["message"] == "exited with code 7"
    assert not (taskdir / "shim.sock").exists()


def test_env_is_exactly_launch_env_and_cwd_is_sandbox(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "env | sort; pwd",
        env={"ONLY": "this", "SPACES": "a b  c"})
    start(taskdir)
    assert wait_exit(taskdir)["exit_code"] == 0
    out = read(sandbox / "stdout").splitlines()
    env = {l.split("=", 1)[0] for l in out if "=" in l}
    assert env <= {"ONLY", "SPACES", "PWD"}, out
    assert "SPACES=a b  c" in out
    assert out[-1] == str(sandbox)


def test_task_inherits_only_stdio_and_default_signals(tmp_path):
    # The caller's stray descriptor must reach neither shim nor task.
    # The masks are read by the task's own process (grep exec'd in place
    # of the shell): a shell forking a child (dash uses vfork) blocks every
    # signal until the child has exec'd, so /proc/$$/status read by that
    # child can show the shell's transient mask rather than the task's.
    r, w = os.pipe()
    taskdir, sandbox = make_task(
        tmp_path, "ls /proc/$$/fd; exec grep -E '^Sig(Blk|Ign)' /proc/self/status")
    try:
        res = subprocess.run([SHIM, "--dir", str(taskdir)],
                             pass_fds=(w,), capture_output=True, text=True,
                             timeout=DEADLINE)
    finally:
        os.close(w)
    assert res.returncode == 0, res.stderr
    wait_exit(taskdir)
    out = read(sandbox / "stdout").split()
    fds = sorted(int(x) for x in out[:out.index("SigBlk:")])
    assert fds == [0, 1, 2], out
    assert out[out.index("SigBlk:") + 1] == "0" * 16, out
    assert out[out.index("SigIgn:") + 1] == "0" * 16, out
    os.close(r)


def test_stdout_stderr_captured_and_rotated(tmp_path):
    # 5000 bytes of numbered lines; 1000-byte files, two kept.
    taskdir, sandbox = make_task(
        tmp_path,
        "i=0; while [ $i -lt 500 ]; do printf '%09d\\n' $i; i=$((i+1)); "
        "done; echo to-stderr >&2",
        log_max_bytes=1000, log_keep=2)
    start(taskdir)
    assert wait_exit(taskdir)["exit_code"] == 0
    expected = "".join("%09d\n" % i for i in range(500))
    files = sorted(p.name for p in sandbox.iterdir())
    assert files == ["stderr", "stdout", "stdout.1", "stdout.2"], files
    parts = [read(sandbox / n) for n in ("stdout.2", "stdout.1", "stdout")]
    assert all(len(p) <= 1000 for p in parts), [len(p) for p in parts]
    joined = "".join(parts)
    assert len(joined) == 3000
    assert expected.endswith(joined)
    assert read(sandbox / "stderr") == "to-stderr\n"


def test_logs_append_across_launches_in_the_same_sandbox(tmp_path):
    t1, sandbox = make_task(tmp_path, "echo first", name="a")
    start(t1)
    wait_exit(t1)
    t2 = tmp_path / "b"
    t2.mkdir()
    doc = json.loads(read(t1 / "launch.json"))
    doc["cmd"] = "echo second"
    (t2 / "launch.json").write_text(json.dumps(doc))
    start(t2)
    wait_exit(t2)
    assert read(sandbox / "stdout") == "first\nsecond\n"


def test_bad_sandbox_fails_to_start(tmp_path):
    taskdir, _ = make_task(tmp_path, "true",
                           sandbox=str(tmp_path / "no" / "such"))
    r = run_shim(taskdir)
    assert r.returncode == 1
    st = status(taskdir)
    assert st["state"] == "failed-to-start"
    assert "sandbox" in st["message"] and "No such file" in st["message"]
    assert "sandbox" in r.stderr
    assert st["pid"] is None
    assert not alive(st["shim_pid"]) or wait_exit(taskdir)


def test_unknown_user_fails_to_start(tmp_path):
    taskdir, _ = make_task(tmp_path, "true", user="no-such-user-hf")
    r = run_shim(taskdir)
    assert r.returncode == 1
    st = wait_exit(taskdir)
    assert st["state"] == "failed-to-start"
    assert st["message"] == 'unknown user "no-such-user-hf"', st
    assert "no-such-user-hf" in r.stderr


def test_user_ids_from_the_agent_need_no_lookup(tmp_path):
    # A user no file here knows (as one only LDAP or sssd knows): with the
    # ids the agent looked up, the shim runs the task as them.
    # pytest's tmp_path is private to root: the sandbox must be elsewhere.
    with tempfile.TemporaryDirectory(dir="/tmp") as pub:
        os.chmod(pub, 0o777)
        taskdir, _ = make_task(
            tmp_path, "id -u; id -g; id -G", user="no-such-user-hf", sandbox=pub,
            ids={"uid": 54321, "gid": 54322, "groups": [54323, 54322]})
        r = run_shim(taskdir)
        assert r.returncode == 0, r.stderr
        st = wait_exit(taskdir)
        assert st["exit_code"] == 0, st
        out = read(os.path.join(pub, "stdout")).split()
    assert out[:2] == ["54321", "54322"], out
    assert sorted(out[2:]) == ["54322", "54323"], out


@pytest.mark.parametrize("ids,why", [
    ({"uid": 1}, 'ids: "uid" and "gid" are required'),
    ({"uid": -1, "gid": 1}, 'ids: "uid" must be an integer from 0 to 4294967294'),
    ({"uid": 1, "gid": 1, "groups": ["x"]},
     "ids: groups[0] must be a group id (at most 65536 of them)"),
    ({"uid": 1, "gid": 1, "home": "/"}, 'unknown key "home" in "ids"'),
])
def test_bad_user_ids_are_refused(tmp_path, ids, why):
    taskdir, _ = make_task(tmp_path, "true", user="nobody", ids=ids)
    r = run_shim(taskdir)
    assert r.returncode == 1
    st = wait_exit(taskdir)
    assert st["state"] == "failed-to-start"
    assert why in st["message"], st


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_user_is_applied(tmp_path):
    # pytest's tmp_path is private to root: the sandbox must be elsewhere.
    with tempfile.TemporaryDirectory(dir="/tmp") as pub:
        os.chmod(pub, 0o777)
        taskdir, _ = make_task(tmp_path, "id -un; id -u", user="nobody",
                               sandbox=pub)
        start(taskdir)
        assert wait_exit(taskdir)["exit_code"] == 0
        out = read(os.path.join(pub, "stdout")).split()
        assert out[0] == "nobody" and out[1] != "0", out


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_sandbox_the_user_cannot_enter_fails_to_start(tmp_path):
    taskdir, sandbox = make_task(tmp_path, "true", user="nobody")
    os.chmod(sandbox, 0o700)
    r = run_shim(taskdir)
    assert r.returncode == 1
    st = wait_exit(taskdir)
    assert st["state"] == "failed-to-start"
    assert st["message"].startswith("cannot enter the sandbox"), st
    assert "Permission denied" in st["message"]


def test_invalid_launch_json_is_reported(tmp_path):
    taskdir, _ = make_task(tmp_path, "true", memory="256")  # a typo'd key
    r = run_shim(taskdir)
    assert r.returncode == 1
    assert 'unknown key "memory"' in r.stderr
    st = status(taskdir)
    assert st["state"] == "failed-to-start"
    assert 'unknown key "memory"' in st["message"]
    assert st["shim_pid"] is None


def test_taskdir_is_single_use(tmp_path):
    taskdir, _ = make_task(tmp_path, "true")
    start(taskdir)
    wait_exit(taskdir)
    before = read(taskdir / "status.json")
    r = run_shim(taskdir)
    assert r.returncode == 1 and "fresh task directory" in r.stderr
    assert read(taskdir / "status.json") == before


def test_usage_error():
    r = subprocess.run([SHIM], capture_output=True, text=True)
    assert r.returncode == 2 and "--dir" in r.stderr


def test_holdfast_shim_alias_runs_the_shim(tmp_path):
    # `holdfast shim` is kept for scripts: it execs the holdfast-shim next
    # to it, so the task's shim is the small program, not holdfast.
    taskdir, _ = make_task(tmp_path, "sleep 60")
    r = subprocess.run([BIN, "shim", "--dir", str(taskdir)],
                       capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    st = status(taskdir)
    assert st["state"] == "running"
    assert os.path.realpath(f"/proc/{st['shim_pid']}/exe") == \
        os.path.realpath(SHIM)
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    assert wait_exit(taskdir)["signal"] == 9
    r = subprocess.run([BIN, "shim"], capture_output=True, text=True)
    assert r.returncode == 2 and "--dir" in r.stderr


def test_release_shim_is_static_on_musl():
    # The release build is what nodes run, one per task: a static program
    # on musl, so no dynamic loader runs at each start and no shared
    # library is mapped a thousand times (no jansson, curl or OpenSSL, and
    # not glibc's 2 MB libc either). The sanitizer build may add its
    # runtimes and stays on glibc.
    shim = os.path.join(os.path.dirname(BIN), "..", "build", "holdfast-shim")
    if not os.path.exists(shim):
        subprocess.run(["make", "-C", os.path.join(os.path.dirname(BIN), ".."),
                        "build/holdfast-shim"], check=True,
                       capture_output=True)
    def readelf(*args):
        return subprocess.run(["readelf", "-W", *args, shim], check=True,
                              capture_output=True, text=True).stdout
    headers = readelf("-l")
    assert " INTERP " not in headers, headers
    needed = [l for l in readelf("-d").splitlines() if "(NEEDED)" in l]
    assert needed == [], needed
    # Position-independent (the kernel places it at a random address),
    # like the glibc programs it sits next to.
    assert "DYN (Position-Independent Executable file)" in headers, headers
    # musl's start-up, linked in (glibc's is __libc_setup_tls).
    symbols = {l.split()[-1] for l in readelf("-s").splitlines()
               if len(l.split()) == 8 and l.split()[0].rstrip(":").isdigit()}
    assert "__init_libc" in symbols, sorted(symbols)[:20]
    assert "__libc_setup_tls" not in symbols


def test_rlimits_applied(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "ulimit -n; ulimit -Hn; ulimit -c",
        rlimits=[{"name": "RLIMIT_NOFILE", "soft": 777, "hard": 888},
                 {"name": "RLIMIT_CORE", "soft": -1, "hard": -1}])
    start(taskdir)
    assert wait_exit(taskdir)["exit_code"] == 0
    assert read(sandbox / "stdout").split() == ["777", "888", "unlimited"]


def test_stop_task_that_traps_term_exits_cleanly(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path,
        "trap 'sleep 0.5; echo bye; exit 0' TERM; echo up; "
        "while :; do sleep 0.1; done",
        kill_grace_period=20)
    start(taskdir)
    wait_for(lambda: "up" in read(sandbox / "stdout"), "the task to be up")
    assert request(taskdir, {"op": "stop"}) == {"ok": True}
    st = wait_exit(taskdir)
    assert st["exit_code"] == 0 and st["signal"] is None, st
    assert st["stop_requested"] is True
    assert "bye" in read(sandbox / "stdout")


def test_stop_task_ignoring_term_is_killed_after_grace(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "trap '' TERM; echo up; while :; do sleep 0.1; done")
    start(taskdir)
    wait_for(lambda: "up" in read(sandbox / "stdout"), "the task to be up")
    t0 = time.monotonic()
    assert request(taskdir, {"op": "stop", "grace": 1}) == {"ok": True}
    st = wait_exit(taskdir)
    assert time.monotonic() - t0 >= 1.0
    assert st["signal"] == 9 and st["exit_code"] is None, st
    assert st["stop_requested"] is True


def test_sigterm_to_shim_stops_the_task(tmp_path):
    taskdir, _ = make_task(tmp_path, "sleep 60", kill_grace_period=0.2)
    st = start(taskdir)
    os.kill(st["shim_pid"], signal.SIGTERM)
    st = wait_exit(taskdir)
    assert st["signal"] == signal.SIGTERM and st["stop_requested"] is True


def test_shim_ignores_sighup(tmp_path):
    taskdir, _ = make_task(tmp_path, "sleep 60")
    st = start(taskdir)
    os.kill(st["shim_pid"], signal.SIGHUP)
    time.sleep(0.2)
    assert alive(st["shim_pid"]) and alive(st["pid"])
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    assert wait_exit(taskdir)["signal"] == 9


def test_signal_op_reaches_the_task(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path,
        "trap 'echo got-hup' HUP; echo up; while :; do sleep 0.1; done")
    start(taskdir)
    wait_for(lambda: "up" in read(sandbox / "stdout"), "the task to be up")
    assert request(taskdir, {"op": "signal", "signal": "HUP"}) == {"ok": True}
    wait_for(lambda: "got-hup" in read(sandbox / "stdout"), "the trap")
    bad = request(taskdir, {"op": "signal", "signal": "NOPE"})
    assert bad["ok"] is False and "signal" in bad["error"]
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    wait_exit(taskdir)


def test_protocol_errors_are_answered(tmp_path):
    taskdir, _ = make_task(tmp_path, "sleep 60")
    start(taskdir)
    r = request(taskdir, {"op": "dance"})
    assert r["ok"] is False and "unknown op" in r["error"]
    with connect(taskdir) as s:
        s.sendall(b"not json\n")
        r = Lines(s).next()
        assert r["ok"] is False
    r = request(taskdir, {"op": "stop", "grace": -1})
    assert r["ok"] is False and "grace" in r["error"]
    assert request(taskdir, {"op": "status"})["state"] == "running"
    request(taskdir, {"op": "stop", "grace": 0})
    wait_exit(taskdir)


def test_watch_sees_the_exit(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "while [ ! -e go ]; do sleep 0.02; done; exit 4")
    start(taskdir)
    watchers = [connect(taskdir) for _ in range(3)]
    streams = []
    for s in watchers:
        s.sendall(b'{"op":"watch"}\n')
        streams.append(Lines(s))
    for w in streams:
        assert w.next()["state"] == "running"
    # Other clients are served while watchers are connected.
    assert request(taskdir, {"op": "status"})["state"] == "running"
    (sandbox / "go").touch()
    for w in streams:
        st = w.next()
        while st["state"] == "running":
            st = w.next()
        assert st["state"] == "exited" and st["exit_code"] == 4, st
        assert w.next() is None  # the shim closes the connection
    for s in watchers:
        s.close()
    assert status(taskdir)["exit_code"] == 4


def test_kill_9_of_the_task_is_reported(tmp_path):
    taskdir, _ = make_task(tmp_path, "sleep 60; true")
    st = start(taskdir)
    os.kill(st["pid"], signal.SIGKILL)
    st = wait_exit(taskdir)
    assert st["signal"] == 9 and st["exit_code"] is None
    assert st["oom_killed"] is False and st["stop_requested"] is False
    assert st["message"].startswith("killed by signal 9")


def test_shim_survives_its_parent(tmp_path):
    taskdir, sandbox = make_task(tmp_path, "echo up; sleep 60")
    # The "agent": a shell in its own process group that starts the shim
    # and then lives on; it and its whole group are killed with SIGKILL.
    agent = subprocess.Popen(
        ["sh", "-c", f'"{BIN}" shim --dir "{taskdir}"; sleep 60'],
        start_new_session=True)
    wait_for(lambda: (taskdir / "status.json").exists()
             and status(taskdir)["state"] == "running", "the start")
    st = status(taskdir)
    assert os.getsid(st["shim_pid"]) != os.getsid(agent.pid)
    assert os.getpgid(st["shim_pid"]) != agent.pid
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait()
    time.sleep(0.3)
    assert alive(st["shim_pid"]) and alive(st["pid"])
    assert request(taskdir, {"op": "status"})["state"] == "running"
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    assert wait_exit(taskdir)["signal"] == 9


@pytest.mark.parametrize("cgroups", ["machine", "none"])
def test_no_orphans_after_exit(tmp_path, cgroups):
    env = {"HOLDFAST_CGROUP_ROOT": str(tmp_path / "no-cgroups")} \
        if cgroups == "none" else None
    # A plain background child, one that left the process group (setsid),
    # and a double-forked grandchild re-parented away from the task.
    taskdir, sandbox = make_task(
        tmp_path,
        "sleep 3141 & echo $! > p1; setsid sleep 3142 & echo $! > p2; "
        "sh -c 'sleep 3143 & echo $! > p3'; "
        "while [ ! -e go ]; do sleep 0.02; done; exit 0")
    start(taskdir, env)
    if cgroups == "none":
        assert status(taskdir)["cgroup"] is None
    pids = wait_for(lambda: all((sandbox / f"p{i}").exists()
                                and read(sandbox / f"p{i}").strip()
                                for i in (1, 2, 3))
                    and [int(read(sandbox / f"p{i}")) for i in (1, 2, 3)],
                    "the children")
    wait_for(lambda: all(alive(p) for p in pids), "the children to run")
    (sandbox / "go").touch()
    st = wait_exit(taskdir)
    assert st["exit_code"] == 0
    left = [p for p in pids if alive(p)]
    assert not left, f"orphans left running: {left}"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                        text=True).stdout
    assert "sleep 314" not in ps, ps


@pytest.mark.parametrize("how", ["exec", "child"])
def test_cgroup_memory_limit_and_oom(tmp_path, how):
    # "exec": the OOM-killed process is the task's main process (signal 9);
    # "child": the shell reports its child's SIGKILL as exit code 137.
    taskdir, _ = make_task(
        tmp_path,
        ("exec " if how == "exec" else "") +
        "/usr/bin/python3 -c \"b = b'x' * (512 << 20); print(len(b))\"" +
        ("" if how == "exec" else "; exit $?"),
        memory_mb=48, cpus=1)
    start(taskdir)
    st = wait_exit(taskdir)
    if cgroups_usable():
        assert st["cgroup"], f"cgroups look usable but were not used: {st}"
        if how == "exec":
            assert st["signal"] == 9, st
        else:
            assert st["exit_code"] == 137, st
        assert st["oom_killed"] is True, st
        assert "out of memory" in st["message"]
        assert not os.path.exists(st["cgroup"]), "cgroup not removed"
    else:
        assert st["cgroup"] is None
        assert st["cgroup_note"], st


def test_without_cgroups_the_status_says_why(tmp_path):
    taskdir, _ = make_task(tmp_path, "true")
    st = start(taskdir, env={"HOLDFAST_CGROUP_ROOT": str(tmp_path / "x")})
    assert st["cgroup"] is None
    assert "no cgroup v2" in st["cgroup_note"], st
    assert wait_exit(taskdir)["exit_code"] == 0


@pytest.mark.skipif(not cgroups_usable(), reason="needs cgroups")
def test_cgroup_limits_written(tmp_path):
    taskdir, sandbox = make_task(
        tmp_path, "cat /proc/self/cgroup; while [ ! -e go ]; do sleep 0.02; "
        "done", memory_mb=100, cpus=0.25)
    st = start(taskdir)
    cg = st["cgroup"]
    assert cg and os.path.isdir(cg), st
    if os.path.exists(os.path.join(cg, "memory.max")):
        assert read(os.path.join(cg, "memory.max")).strip() == \
            str(100 << 20)
        assert read(os.path.join(cg, "cpu.max")).split() == \
            ["25000", "100000"]
    else:
        assert read(os.path.join(cg, "memory.limit_in_bytes")).strip() == \
            str(100 << 20)
        cpu = cg.replace("/memory/", "/cpu/")
        assert read(os.path.join(cpu, "cpu.cfs_quota_us")).strip() == "25000"
        # 25000 of 100000: the quota is a quarter of a cpu.
        assert read(os.path.join(cpu, "cpu.cfs_period_us")).strip() == "100000"
    assert str(st["pid"]) in read(os.path.join(cg, "cgroup.procs")).split()
    (sandbox / "go").touch()
    wait_exit(taskdir)
    assert not os.path.exists(cg)


def test_long_taskdir_path(tmp_path):
    name = "/".join(["d" * 40] * 4)  # TASKDIR well over 108 bytes
    taskdir, _ = make_task(tmp_path, "sleep 60", name=name)
    assert len(str(taskdir / "shim.sock")) > 108
    start(taskdir)
    assert (taskdir / "shim.sock").is_socket()
    assert request(taskdir, {"op": "status"})["state"] == "running"
    assert request(taskdir, {"op": "stop", "grace": 0}) == {"ok": True}
    assert wait_exit(taskdir)["signal"] == 9


def test_foreground_mode(tmp_path):
    taskdir, _ = make_task(tmp_path, "exit 5")
    r = run_shim(taskdir, extra=("--foreground",))
    assert r.returncode == 0, r.stderr
    st = status(taskdir)
    assert st["state"] == "exited" and st["exit_code"] == 5
    assert st["shim_pid"] != os.getpid()


def cgroup2_mount():
    """A cgroup v2 mount point, or None."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not cgroup2_mount(),
                    reason="needs root and a cgroup v2 mount")
def test_cgroup_v2_hierarchy(tmp_path):
    # On a v1 or hybrid machine the v2 hierarchy may have no controllers;
    # the task still gets its own cgroup, which kills and is removed.
    root = cgroup2_mount()
    taskdir, sandbox = make_task(
        tmp_path,
        "cat /proc/self/cgroup; setsid sleep 3144 & echo $! > p; "
        "while [ ! -e go ]; do sleep 0.02; done")
    st = start(taskdir, env={"HOLDFAST_CGROUP_ROOT": root})
    cg = st["cgroup"]
    assert cg == f"{root}/holdfast/{st['task_id']}", st
    wait_for(lambda: (sandbox / "p").exists() and read(sandbox / "p"),
             "the child")
    child = int(read(sandbox / "p"))
    procs = read(os.path.join(cg, "cgroup.procs")).split()
    assert str(st["pid"]) in procs and str(child) in procs
    assert f"0::/holdfast/{st['task_id']}" in read(sandbox / "stdout")
    (sandbox / "go").touch()
    st = wait_exit(taskdir)
    assert st["exit_code"] == 0
    assert not alive(child)
    assert not os.path.exists(cg)


# ---- commands of plain words run without the shell ----------------------


def exe_of(pid):
    return os.path.realpath(f"/proc/{pid}/exe")


def stop(taskdir):
    if status(taskdir)["state"] == "running":
        assert request(taskdir, {"op": "stop"}) == {"ok": True}
    return wait_exit(taskdir)


@pytest.mark.parametrize("cmd,argv", [
    ("sleep 60", ["sleep", "60"]),
    ("  exec   sleep 60 ", ["sleep", "60"]),
    ("/bin/sleep 60 ", ["/bin/sleep", "60"]),
    ("sleep\t60", ["sleep", "60"]),
])
def test_plain_words_run_without_a_shell(tmp_path, cmd, argv):
    """The shell would only find the program and exec it: the task's own
    process is that program, and no shell stays behind."""
    taskdir, _ = make_task(tmp_path, cmd)
    st = start(taskdir)
    try:
        assert exe_of(st["pid"]) == os.path.realpath("/bin/sleep")
        with open(f"/proc/{st['pid']}/cmdline") as f:
            assert f.read().split("\0")[:-1] == argv
        assert not subprocess.run(["pgrep", "-P", str(st["pid"])],
                                  capture_output=True).stdout
    finally:
        stop(taskdir)


@pytest.mark.parametrize("cmd", [
    "sleep 60; true", "sleep $((60))", "sleep 6'0'", "A=1 sleep 60",
    "sleep 60 # c", "sleep 60 > out", "sleep 6?", "sleep 60 &&true",
    "{ sleep 60; }", "if true; then sleep 60; fi", "sleep \\60",
])
def test_anything_but_plain_words_keeps_the_shell(tmp_path, cmd):
    taskdir, sandbox = make_task(tmp_path, cmd)
    (sandbox / "60").write_text("")  # the glob has something to match
    r = run_shim(taskdir)
    assert r.returncode == 0, r.stderr
    st = status(taskdir)
    try:
        assert exe_of(st["pid"]) == os.path.realpath("/bin/dash")
    finally:
        stop(taskdir)


def test_builtins_keep_the_shell(tmp_path):
    taskdir, sandbox = make_task(tmp_path, "echo plain words")
    (sandbox / "bin").mkdir()
    fake = sandbox / "bin" / "echo"
    fake.write_text("#!/bin/sh\necho not the builtin\n")
    fake.chmod(0o755)
    taskdir2, sandbox2 = make_task(tmp_path, "exit 3", name="t2")
    for t in (taskdir, taskdir2):
        r = run_shim(t)
        assert r.returncode == 0, r.stderr
    assert wait_exit(taskdir)["exit_code"] == 0
    assert read(sandbox / "stdout") == "plain words\n"
    assert wait_exit(taskdir2)["exit_code"] == 3


def script(path, text, mode=0o755):
    path.write_text(text)
    path.chmod(mode)


def test_the_path_is_searched_as_the_shell_does(tmp_path):
    """First entry where exec works wins; an entry whose file cannot be run
    is passed over; an empty entry is the working directory."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    script(a / "prog", "#!/bin/sh\necho a\n", 0o644)  # not executable
    script(b / "prog", "#!/bin/sh\necho b \"$@\"\n")
    for name, cmd, path, out in (("t1", "prog one two", f"{a}:{b}:", "b one two\n"),
                                 ("t2", "prog", f"{a}::/bin", "cwd\n")):
        taskdir, sandbox = make_task(tmp_path, cmd, name=name, env={"PATH": path})
        script(sandbox / "prog", "#!/bin/sh\necho cwd\n")
        start(taskdir)
        assert wait_exit(taskdir)["exit_code"] == 0
        assert read(sandbox / "stdout") == out


def test_what_cannot_run_fails_as_the_shell_says(tmp_path):
    """A missing program: the shell's message and 127, as before; a file
    that is not executable: 126; a script without #!: run by the shell."""
    taskdir, sandbox = make_task(tmp_path, "no-such-program-here x")
    start(taskdir)
    st = wait_exit(taskdir)
    assert st["exit_code"] == 127, st
    assert "not found" in read(sandbox / "stderr")

    taskdir, sandbox = make_task(tmp_path, "./data.txt", name="t2")
    (sandbox / "data.txt").write_text("hello\n")
    start(taskdir)
    assert wait_exit(taskdir)["exit_code"] == 126
    assert "Permission denied" in read(sandbox / "stderr")

    taskdir, sandbox = make_task(tmp_path, "./script arg", name="t3")
    (sandbox / "script").write_text("echo script \"$1\"\n")
    (sandbox / "script").chmod(0o755)
    start(taskdir)
    assert wait_exit(taskdir)["exit_code"] == 0
    assert read(sandbox / "stdout") == "script arg\n"
