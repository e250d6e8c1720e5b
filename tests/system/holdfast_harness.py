"""A holdfast server and agent as real processes, for system tests.

Each Cluster gets its own temporary data directories and ports; it can kill
and restart the server or the agent (gracefully or with SIGKILL) and cleans
up every process it started, including shims and tasks, even when a test
fails.
"""
import json
import os
import pwd
import random
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HOLDFAST_BIN", os.path.join(REPO, "build-asan", "holdfast"))


def escape_name(name):
    """A name as one path component, as holdfast escapes it
    (hf_name_escape): bytes other than [A-Za-z0-9._:@+-] and a leading '.'
    become %XX."""
    out = []
    for i, b in enumerate(name.encode()):
        c = chr(b)
        if (c.isascii() and (c.isalnum() or c in "._:@+-")) and not (i == 0 and c == "."):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def wait_for(pred, timeout=60.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pid_alive(pid):
    """True when pid exists and is not a zombie. The process may end between
    any two reads of /proc, so a vanished entry counts as gone."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def pid_cmdline(pid):
    """pid's argv as bytes joined by NULs; b"" once the process is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def local_credential(url, config_dir=None):
    """The admin credential a server on this machine left for its user, as
    the CLI finds it (src/http/cred.h): <config dir>/credentials/local-<port>
    for a loopback address; None when there is none."""
    m = re.match(r"^(?:https?://)?(\[[^]]+\]|[^:/]+)(?::(\d+))?", url)
    if not m or m.group(1).strip("[]") not in ("127.0.0.1", "::1", "localhost") \
            and not m.group(1).startswith("127."):
        return None
    port = m.group(2) or ("443" if url.startswith("https:") else "80")
    base = config_dir or os.environ.get("HOLDFAST_CONFIG_DIR") or \
        os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, ".config", "holdfast")
    try:
        with open(os.path.join(base, "credentials", f"local-{port}")) as f:
            return f.readline().strip() or None
    except OSError:
        return None



def stop_volume_processes(root):
    """Stops the holdfast-volume processes working on a directory below
    root (attach processes and agents' replica servers outlive their
    agent by design): SIGTERM to the attach processes first, so that their
    last flush still reaches the replica servers, then to the servers;
    SIGKILL for one that does not exit within 15 s."""
    root = os.path.realpath(root) + "/"

    def pids(mode):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                argv = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if (argv[0].endswith(b"holdfast-volume") and argv[1:2] == [mode] and len(argv) > 2
                    and os.path.realpath(argv[2].decode(errors="replace")).startswith(root)):
                out.append(int(d))
        return out

    for mode in (b"attach", b"serve"):
        found = pids(mode)
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 15
        while time.time() < deadline and any(_running(p) for p in found):
            time.sleep(0.05)
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _running(pid):
    """pid exists and is not a zombie (a detached process's parent may be
    slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False

class Cluster:
    def __init__(self, tmp, name="c", backoff="0.5", tokens=None):
        """tokens: {"admin": ..., "read": ..., "agent": ...} runs the server
        with --tokens (it then leaves no credential of its own), the agent
        with --token-file and the CLI and API with the admin token. Without
        tokens the server, its agent and the CLI share one user's config
        directory (HOLDFAST_CONFIG_DIR), as one user on one machine does:
        the agent, the CLI and api() find the server's credential there."""
        self.tmp = str(tmp)
        self.server_data = os.path.join(self.tmp, "server")
        self.agent_data = os.path.join(self.tmp, "agent")
        os.makedirs(self.server_data, exist_ok=True)
        os.makedirs(self.agent_data, exist_ok=True)
        self.port_file = os.path.join(self.tmp, "port")
        self.server = None
        self.agent = None
        self.port = None
        self.backoff = backoff
        self.server_args = []  # extra `holdfast server` flags
        self.server_env = {}   # extra environment of the next server started
        self.logs = []
        self.tokens = tokens
        self.tokens_file = None
        self.agent_token_file = None
        # Credentials files are refused unless private (cred.h).
        self.config_dir = os.path.join(self.tmp, "config")
        if tokens:
            self.tokens_file = write(os.path.join(self.tmp, "tokens"), "".join(
                f"{role} {tok}\n" for role, tok in tokens.items()), mode=0o600)
            self.agent_token_file = write(os.path.join(self.tmp, "agent-token"),
                                          tokens["agent"] + "\n", mode=0o600)

    # -- processes -----------------------------------------------------
    def _env(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env["HOLDFAST_ADDR"] = self.url if self.port else ""
        env["HOLDFAST_CONFIG_DIR"] = self.config_dir
        env.pop("HOLDFAST_ADMIN_TOKEN", None)
        if self.tokens:
            env["HOLDFAST_TOKEN"] = self.tokens["admin"]
        else:
            env.pop("HOLDFAST_TOKEN", None)
        return env

    def token(self):
        """The admin token: the configured one, else the server's own."""
        if self.tokens:
            return self.tokens["admin"]
        return local_credential(self.url, self.config_dir)

    def _auth(self):
        tok = self.token() if self.port else None
        return {"Authorization": f"Bearer {tok}"} if tok else {}

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start_server(self):
        listen = f"127.0.0.1:{self.port}" if self.port else "127.0.0.1:0"
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        log = open(os.path.join(self.tmp, "server.log"), "ab")
        self.logs.append(log)
        self.server = subprocess.Popen(
            [BIN, "server", "--data", self.server_data, "--listen", listen,
             "--port-file", self.port_file, "--backoff", self.backoff,
             *(("--tokens", self.tokens_file) if self.tokens else ()), *self.server_args],
            stdout=log, stderr=log, env={**self._env(), **self.server_env},
            start_new_session=True)
        wait_for(lambda: os.path.exists(self.port_file) or self.server.poll() is not None,
                 30, what="server port file")
        assert self.server.poll() is None, "server exited: " + self.server_log()[-2000:]
        self.port = int(open(self.port_file).read().strip())
        wait_for(lambda: self._ping(), 30, what="server API")
        # Reads are answered at once, writes once it leads (503 no-leader
        # until then): a server that can lead does within a moment. One
        # that cannot (a store it cannot write) is what its test looks at.
        deadline = time.time() + 5
        while time.time() < deadline and not self._leading():
            time.sleep(0.05)

    def _leading(self):
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    self.url + "/v1/leader", headers=self._auth()), timeout=2) as r:
                return json.loads(r.read()).get("leading") is True
        except Exception:
            return False

    def _ping(self):
        try:
            urllib.request.urlopen(urllib.request.Request(
                self.url + "/v1/version", headers=self._auth()), timeout=2).read()
            return True
        except Exception:
            return False

    def start_agent(self, extra=(), wrap=()):
        """wrap: a command the agent runs under (setpriv ...)."""
        log = open(os.path.join(self.tmp, "agent.log"), "ab")
        self.logs.append(log)
        self.agent = subprocess.Popen(
            [*wrap, BIN, "agent", "--server", self.url, "--data", self.agent_data,
             "--node-id", "node-1",
             *(("--token-file", self.agent_token_file) if self.tokens else ()), *extra],
            stdout=log, stderr=log, env=self._env(), start_new_session=True)
        def registered():
            # A server whose store refuses writes (the fault tests)
            # answers with an error object: not registered yet.
            st, nodes = self.api("GET", "/v1/nodes")
            return st == 200 and isinstance(nodes, list) and \
                any(n.get("connected") for n in nodes)
        wait_for(registered, 30, what="agent registration")

    def start(self):
        self.start_server()
        self.start_agent()
        return self

    def kill_server(self, sig=signal.SIGKILL):
        if self.server and self.server.poll() is None:
            self.server.send_signal(sig)
            self.server.wait(30)

    def kill_agent(self, sig=signal.SIGKILL):
        if self.agent and self.agent.poll() is None:
            self.agent.send_signal(sig)
            self.agent.wait(30)

    def server_log(self):
        try:
            return open(os.path.join(self.tmp, "server.log")).read()
        except OSError:
            return ""

    def agent_log(self):
        try:
            return open(os.path.join(self.tmp, "agent.log")).read()
        except OSError:
            return ""

    def stop(self):
        for p in (self.agent, self.server):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        # Shims and tasks outlive the agent by design: end them here.
        self.kill_tasks()
        self.stop_volumes()
        self.remove_task_cgroups()
        subprocess.run(["sh", "-c", f"grep ' {self.tmp}' /proc/mounts | cut -d' ' -f2 | sort -r | "
                        f"xargs -r -n1 umount -l"], check=False)
        for log in self.logs:
            log.close()
        for p in (self.agent, self.server):
            if p and p.returncode not in (None, 0, -signal.SIGKILL, -signal.SIGTERM):
                raise AssertionError(f"{p.args[1]} exited with {p.returncode}:\n"
                                     + (self.server_log() if p is self.server else self.agent_log())[-3000:])

    def remove_task_cgroups(self):
        """Removes the cgroups of this cluster's tasks, which a shim killed
        with SIGKILL leaves behind (an agent removes those of the lost
        shims it finds; nothing does once the test ends). Thousands of empty
        cgroups slow every later task's cpu quota write."""
        paths = []
        for root, _dirs, files in os.walk(self.tmp):
            if "status.json" in files:
                try:
                    with open(os.path.join(root, "status.json")) as f:
                        cg = json.load(f).get("cgroup")
                except (OSError, ValueError):
                    continue
                if cg and cg.startswith("/sys/fs/cgroup/"):
                    paths.append(cg)
                    if cg.startswith("/sys/fs/cgroup/memory/"):  # v1: cpu too
                        paths.append("/sys/fs/cgroup/cpu/" + cg[len("/sys/fs/cgroup/memory/"):])
        deadline = time.time() + 5
        while paths and time.time() < deadline:
            left = []
            for p in paths:
                try:
                    os.rmdir(p)
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(p)  # its last process is still exiting
            paths = left
            if paths:
                time.sleep(0.05)

    def kill_tasks(self):
        """SIGKILL to every process of this cluster but its volume
        processes (stop_volumes ends those)."""
        for pid in self.pids_matching(self.tmp):
            try:
                if b"holdfast-volume" in open(f"/proc/{pid}/cmdline", "rb").read():
                    continue
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass

    def stop_volumes(self):
        """Attach processes and the agents' replica servers outlive the
        agent too. Once the tasks are gone, SIGTERM detaches each attach
        process cleanly (its loop device cleared; its last flush still
        reaches the replica servers), then stops the replica servers; one
        that does not exit in time is killed and its loop device cleared
        here, so no test leaves a process or a device behind."""
        stop_volume_processes(self.tmp)
        for name in os.listdir("/sys/block"):
            try:
                with open(f"/sys/block/{name}/loop/backing_file") as f:
                    backing = f.read().strip()
            except OSError:
                continue
            if backing.startswith(self.tmp):
                subprocess.run(["losetup", "-d", "/dev/" + name], check=False)

    @staticmethod
    def pids_matching(text):
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
                cwd = os.readlink(f"/proc/{d}/cwd")
            except OSError:
                continue
            if int(d) == os.getpid():
                continue
            if text in cmd or cwd.startswith(text):
                out.append(int(d))
        return out

    # -- API and CLI ---------------------------------------------------
    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **self._auth()})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def cli(self, *args, check=True, timeout=120):
        p = subprocess.run([BIN, *args], capture_output=True, text=True,
                           env=self._env(), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"holdfast {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def deploy(self, spec_path, *opts, wait=True, timeout=120):
        args = ["service", "deploy", "-f", spec_path, *opts]
        if wait:
            args += ["--wait", "--timeout", str(timeout)]
        return self.cli(*args, timeout=timeout + 30)

    def plan(self, svc, plan="deploy"):
        return self.api("GET", f"/v1/service/{svc}/plans/{plan}")[1]

    def wait_plan(self, svc, plan="deploy", status="COMPLETE", timeout=90):
        return wait_for(lambda: self.plan(svc, plan).get("status") == status and self.plan(svc, plan),
                        timeout, what=f"{svc} plan {plan} {status}")

    def pods(self, svc):
        return self.api("GET", f"/v1/service/{svc}/pod/status")[1]["pods"]

    def tasks(self, svc):
        """name -> task status dict"""
        return {t["name"]: t for p in self.pods(svc) for t in p["tasks"]}

    def restarted(self, svc, name, before):
        """Whether task `name` ran again since `before` (its tasks() entry
        then): relaunched by the server (a new task id), or restarted in
        place by its node (the same id, one more restart)."""
        t = self.tasks(svc).get(name)
        return bool(t) and (t["id"] != before["id"] or t["restarts"] > before["restarts"])

    def volume_dir(self, svc, instance):
        return os.path.join(self.agent_data, "volumes", escape_name(svc), escape_name(instance))

    def task_pid(self, task_id):
        st = json.load(open(os.path.join(self.agent_data, "tasks", task_id, "status.json")))
        return st.get("pid")


def write(path, text, mode=None):
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return str(path)


def free_port_block(n=24):
    """A block of n consecutive loopback ports that nothing listens on right
    now, away from the ephemeral range and the agent's default 10000-20000:
    for an agent's dynamic ports (--ports), so that tests running at once
    do not hand out the same ones."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free block of ports")
