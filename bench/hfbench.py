"""Shared helpers for the holdfast benchmarks (standard library only).

A Bench owns one temporary directory with a server and an agent started
from the release binary on loopback. Everything it starts (server, agent,
shims, tasks, baseline shell loops) is found again by its temp path or its
process group and killed in cleanup(), which also lazily unmounts every
bind mount under the temp dir. cleanup() runs from a finally block, from
atexit and on SIGTERM/SIGINT, so an interrupted benchmark leaves nothing
behind.
"""
import atexit
import glob
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("HOLDFAST_BIN", os.path.join(REPO, "build", "holdfast"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise BenchError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------- /proc
def read_status(pid):
    """/proc/<pid>/status as a dict, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            out = {}
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
            return out
    except OSError:
        return None


def children(pid):
    """pid's child processes (its main thread's), [] once it is gone."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kb(pid):
    st = read_status(pid)
    if not st or "VmRSS" not in st:
        return None
    return int(st["VmRSS"].split()[0])


def proc_stat(pid):
    """(comm, state, ppid, pgid, utime+stime ticks) or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    lp, rp = s.index("("), s.rindex(")")
    comm = s[lp + 1:rp]
    rest = s[rp + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[2]), int(rest[11]) + int(rest[12])


def cpu_seconds(pid):
    st = proc_stat(pid)
    return st[4] / CLK_TCK if st else None


def pids():
    for d in os.listdir("/proc"):
        if d.isdigit():
            yield int(d)


def pids_matching(text):
    """Processes whose command line or cwd mentions text (not ourselves)."""
    me = os.getpid()
    out = []
    for pid in pids():
        if pid == me:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if text in cmd or cwd.startswith(text):
            out.append(pid)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def machine():
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        rev, dirty = "", ""
    return {
        "nproc": os.cpu_count(),
        "mem_mb": mem_kb // 1024,
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": rev + ("+dirty-src" if dirty else ""),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def pct(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def summary(values):
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


# ---------------------------------------------------------------- cleanup
_live = []
# Temp dirs of finished runs, deleted when the program ends rather than
# between runs (see data_root(): with HFBENCH_TMPDIR on ext4 without a
# journal, deleting a run's thousands of files right before the next run
# creates its own would bill the next run for this one's cleanup).
_trash = []
_fs = {}


def data_root():
    """Where servers' and agents' data directories go: a fresh ext4 with
    default options (a journal) on a loop device, made once per program
    and unmounted at its end, as a node's /var/lib would be. Not the
    machine's /tmp: its root file system is ext4 *without* a journal,
    where allocating an inode skips every inode freed in the last ~30 s
    (kernel recently_deleted()), so after the test suite's or the previous
    run's mass deletions creating a file costs 6-30x more (1000 directories
    of 10 files: 1.0-6.2 s of CPU in /tmp against 0.17 s in /var/tmp, 0.1 s
    on tmpfs) -- a cost of this machine's file system, not of holdfast,
    billed to whichever run follows. HFBENCH_TMPDIR=DIR uses DIR instead
    (e.g. /tmp, to measure there)."""
    if os.environ.get("HFBENCH_TMPDIR"):
        return os.environ["HFBENCH_TMPDIR"]
    if "mnt" in _fs:
        return _fs["mnt"]
    base = f"/var/tmp/hfbench-fs-{os.getpid()}"
    img, mnt = base + ".img", base + ".mnt"
    with open(img, "wb") as f:
        f.truncate(8 << 30)  # sparse
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    img], check=True)
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    _fs.update(img=img, mnt=mnt)
    return mnt


def _release_fs():
    if "mnt" not in _fs:
        return
    subprocess.run(["umount", "-l", _fs["mnt"]], check=False)
    for p in (_fs["img"],):
        try:
            os.unlink(p)
        except OSError:
            pass
    try:
        os.rmdir(_fs["mnt"])
    except OSError:
        pass
    _fs.clear()


def _cleanup_all(*_):
    for b in list(_live):
        b.cleanup()
    while _trash:
        d = _trash.pop()
        if "mnt" not in _fs or not d.startswith(_fs["mnt"] + "/"):
            shutil.rmtree(d, ignore_errors=True)
    _release_fs()  # the loop file system goes whole


def _on_signal(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


atexit.register(_cleanup_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


class Bench:
    """A temp dir with a holdfast server + agent, and baseline helpers."""

    def __init__(self, name, backoff=None, backoff_max=None, agent_resources=None,
                 keep=False):
        self.tmp = tempfile.mkdtemp(prefix=f"hfbench-{name}-", dir=data_root())
        # A private copy of the binary: other people may relink
        # build/holdfast while we run, and exec(2) of a file being written
        # fails (the shim would not start).
        self.bin = os.path.join(self.tmp, "holdfast")
        shutil.copy2(BIN, self.bin)
        # The agent runs the holdfast-shim next to its own binary: copied
        # along (a binary from before holdfast-shim has none and needs none).
        shim = os.path.join(os.path.dirname(BIN), "holdfast-shim")
        if os.path.exists(shim):
            shutil.copy2(shim, os.path.join(self.tmp, "holdfast-shim"))
        self.server_data = os.path.join(self.tmp, "server")
        self.agent_data = os.path.join(self.tmp, "agent")
        os.makedirs(self.server_data)
        os.makedirs(self.agent_data)
        self.port_file = os.path.join(self.tmp, "port")
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.agent_resources = agent_resources
        self.start_server_args = []  # extra `holdfast server` flags
        # The server leaves its admin credential here; the agent and api()
        # find it, as a user's CLI and agent on this machine would.
        self.config_dir = os.path.join(self.tmp, "config")
        self.env = dict(os.environ, HOLDFAST_CONFIG_DIR=self.config_dir)
        for k in ("HOLDFAST_TOKEN", "HOLDFAST_ADMIN_TOKEN"):
            self.env.pop(k, None)
        self.server = self.agent = None
        self.port = None
        self.groups = []      # process groups of baseline shells
        self.logs = []
        self.keep = keep
        self.cleaned = False
        _live.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # -------------------------------------------------------- holdfast
    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _log(self, name):
        f = open(os.path.join(self.tmp, name), "ab")
        self.logs.append(f)
        return f

    def start_server(self):
        # A port chosen here rather than --listen 127.0.0.1:0: at c9c80c3 a
        # server asked for port 0 writes the port of its first (follower)
        # listener to --port-file, then serves the API on another one once
        # it leads. HFBENCH_PORT0=1 goes back to port 0.
        if os.environ.get("HFBENCH_PORT0") == "1":
            listen = "127.0.0.1:0"
        else:
            with socket.socket() as so:
                so.bind(("127.0.0.1", 0))
                listen = f"127.0.0.1:{so.getsockname()[1]}"
        args = [self.bin, "server", "--data", self.server_data, "--listen", listen,
                "--port-file", self.port_file]
        if self.backoff is not None:
            args += ["--backoff", str(self.backoff)]
        if self.backoff_max is not None:
            args += ["--backoff-max", str(self.backoff_max)]
        args += self.start_server_args
        log_ = self._log("server.log")
        self.server = subprocess.Popen(args, stdout=log_, stderr=log_, env=self.env,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.port_file) and open(self.port_file).read().strip()
                 or self.server.poll() is not None, 30, what="server port file")
        if self.server.poll() is not None:
            raise BenchError("server exited: " + self.tail("server.log"))
        self.port = int(open(self.port_file).read().strip())
        wait_for(self._ping, 30, what="server API")

    def _ping(self):
        try:
            urllib.request.urlopen(self.url + "/v1/version", timeout=2).read()
            return True
        except Exception:
            return False

    def start_agent(self):
        args = [self.bin, "agent", "--server", self.url, "--data", self.agent_data,
                "--node-id", "node-1"]
        if self.agent_resources:
            args += ["--resources", self.agent_resources]
        # Extra agent flags, e.g. HFBENCH_AGENT_ARGS="--launch-workers 4".
        args += os.environ.get("HFBENCH_AGENT_ARGS", "").split()
        log_ = self._log("agent.log")
        self.agent = subprocess.Popen(args, stdout=log_, stderr=log_, env=self.env,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.agent.poll() is not None or
                 any(n.get("connected") for n in self.api("GET", "/v1/nodes")[1]),
                 30, what="agent registration")
        if self.agent.poll() is not None:
            raise BenchError("agent exited: " + self.tail("agent.log"))

    def start(self):
        self.start_server()
        self.start_agent()
        return self

    def tail(self, name, n=3000):
        try:
            return open(os.path.join(self.tmp, name), errors="replace").read()[-n:]
        except OSError:
            return ""

    def token(self):
        """The server's admin credential (docs/operations.md): every request
        needs one."""
        try:
            with open(os.path.join(self.config_dir, "credentials", f"local-{self.port}")) as f:
                return f.readline().strip()
        except OSError:
            return ""

    def api(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {self.token()}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body or b"null")
            except ValueError:
                return e.code, body.decode(errors="replace")

    def deploy(self, spec_text):
        code, body = self.api("POST", "/v1/services",
                              {"spec": spec_text, "options": {}, "templates": {}})
        if code >= 300:
            raise BenchError(f"POST /v1/services -> {code}: {body}")
        return body

    def plan(self, svc, plan="deploy"):
        return self.api("GET", f"/v1/service/{svc}/plans/{plan}")[1]

    def pods(self, svc):
        return self.api("GET", f"/v1/service/{svc}/pod/status")[1]["pods"]

    def tasks(self, svc):
        return {t["name"]: t for p in self.pods(svc) for t in p["tasks"]}

    def task_status(self, task_id):
        path = os.path.join(self.agent_data, "tasks", task_id, "status.json")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def shim_pids(self):
        """Shims: holdfast-shim processes (or `holdfast shim` ones, from
        binaries before it) that mention our tmp."""
        out = []
        for pid in pids_matching(self.tmp):
            a = cmdline(pid)
            if a and (a[0].endswith(b"/holdfast-shim") or
                      (len(a) > 1 and a[1] == b"shim")):
                out.append(pid)
        return out

    # -------------------------------------------------------- baseline
    def spawn_group(self, script):
        """Run `sh -c script` in its own session; remembered for cleanup."""
        p = subprocess.Popen(["sh", "-c", script], cwd=self.tmp, start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.groups.append(p)
        return p

    def shell_loop(self, cmd):
        """The shell baseline every restart benchmark uses: `while :; do
        CMD; done` in a session of its own, so it respawns CMD at once
        whenever it exits; remembered for cleanup."""
        return self.spawn_group(f"while :; do {cmd}; done")

    def kill_group(self, p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        # Children of the group that were reparented keep the pgid.
        for pid in pids():
            st = proc_stat(pid)
            if st and st[3] == p.pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if p in self.groups:
            self.groups.remove(p)

    # -------------------------------------------------------- cleanup
    def _remove_cgroups(self):
        """rmdir the (now empty) cgroups of our tasks: a SIGKILLed shim
        cannot remove its own. Only exact task ids of this run."""
        tdir = os.path.join(self.agent_data, "tasks")
        try:
            ids = os.listdir(tdir)
        except OSError:
            return
        dirs = []
        for tid in ids:
            st = self.task_status(tid) or {}
            for c in (st.get("cgroup"),):
                if c and c.startswith("/sys/fs/cgroup/") and c.endswith("/" + tid):
                    dirs.append(c)
            dirs += glob.glob(f"/sys/fs/cgroup/*/holdfast/{glob.escape(tid)}")
            dirs += glob.glob(f"/sys/fs/cgroup/holdfast/{glob.escape(tid)}")
        dirs = sorted(set(dirs))
        for _ in range(20):
            left = []
            for d in dirs:
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(d)
            dirs = left
            if not dirs:
                break
            time.sleep(0.1)
        if dirs:
            log(f"note: {len(dirs)} cgroup(s) could not be removed, e.g. {dirs[0]}")

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for p in list(self.groups):
            self.kill_group(p)
        # Server first (no more relaunches), then the agent, then whatever
        # is left under our temp dir: shims and their tasks.
        for p in (self.server, self.agent):
            if p and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    pass
        for _ in range(5):
            left = pids_matching(self.tmp)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self._remove_cgroups()
        subprocess.run(["sh", "-c", f"grep -F ' {self.tmp}/' /proc/mounts | cut -d' ' -f2 | "
                        "sort -r | xargs -r -n1 umount -l"], check=False)
        for f in self.logs:
            f.close()
        if self in _live:
            _live.remove(self)
        if self.keep and "mnt" in _fs and self.tmp.startswith(_fs["mnt"] + "/"):
            # The loop file system goes at the end: keep the logs.
            dst = tempfile.mkdtemp(prefix=os.path.basename(self.tmp) + "-kept-", dir="/var/tmp")
            for e in os.scandir(self.tmp):
                if e.is_file() and e.name.endswith(".log"):
                    shutil.copy2(e.path, dst)
            log(f"kept the logs of {self.tmp} in {dst}")
        elif self.keep:
            log(f"kept {self.tmp}")
        else:
            _trash.append(self.tmp)


def write_result(path, obj):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
