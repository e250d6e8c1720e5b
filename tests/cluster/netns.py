"""Many hosts on one machine, as network namespaces, for holdfast cluster tests.

Layout of one run (``Net``)::

    switch namespace  hf<id>-sw   bridge br0, one veth end per host (v<i>)
    host namespace    hf<id>-<n>  eth0 = the other end, 10.231.0.<10+i>/24, lo up
                                  its own UTS namespace (hostname = <n>)
                                  data directories under <tmp>/<n>/

``<id>`` is random per run, so parallel runs never clash (each run has its
own switch, so they may all use the same subnet). Nothing is done to the
root namespace's interfaces: the root namespace cannot reach the hosts, so
talking to a host goes through ``Host.call`` (a thread that entered the
host's network namespace) or a process started inside it.

Processes run with ``nsenter --net=... --uts=...`` (not ``ip netns exec``):
``ip netns exec`` would give every process a private mount namespace with a
fresh /sys (no /sys/fs/cgroup for the shims' cgroups) and keep the
machine's hostname, and holdfast's ``hostname`` placement field needs each
host to have its own. Bind mounts an agent makes therefore show in
/proc/mounts and are unmounted at cleanup.

A host can be killed (SIGKILL to every process in its namespace, found with
``ip netns pids``, so shims and tasks an agent started die too), cut off
(its veth down at the switch, or every packet dropped in both directions)
and healed. Everything is removed at ``Net.cleanup()``, which the pytest
fixtures call in their finalizers and ``atexit`` calls for runs that end
early; a run killed outright is swept by the next run (the owner's pid is
recorded under /run/holdfast-cluster-tests/).

``Holdfast`` starts holdfast servers and agents on hosts, runs the CLI and
API against them (from an "ops" host of its own), and waits for conditions.
"""
import atexit
import concurrent.futures
import ctypes
import json
import re
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("HOLDFAST_BIN", os.path.join(REPO, "build-asan", "holdfast"))
STATE_ROOT = "/run/holdfast-cluster-tests"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_live_nets = set()
_live_lock = threading.Lock()


def wait_for(pred, timeout=60.0, interval=0.2, what="condition"):
    """Calls pred until it returns something true; returns that. Raises
    AssertionError (with pred's last value) after timeout seconds."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = pred()
        except Exception as e:  # noqa: BLE001 - keep polling, report at the end
            last = e
        else:
            if last:
                return last
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def holds_for(pred, seconds, interval=0.3, what="condition"):
    """Asserts pred stays true for `seconds` (checked every `interval`)."""
    deadline = time.time() + seconds
    while True:
        v = pred()
        assert v, f"{what} stopped holding (got {v!r})"
        if time.time() >= deadline:
            return v
        time.sleep(interval)


def sh(*argv, check=True, timeout=30):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {p.returncode}: {p.stderr.strip()}")
    return p


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def _pid_alive(pid, start_ticks=None):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or fields[19] == str(start_ticks)


def _start_ticks(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]


def netns_pids(ns):
    """Pids whose network namespace is `ns` (zombies excluded)."""
    p = sh("ip", "netns", "pids", ns, check=False)
    return [int(x) for x in p.stdout.split() if x.strip().isdigit() and _pid_alive(int(x))]


def _kill_pids_of(ns, timeout=15.0):
    """SIGKILLs every process in netns `ns` until none is left (a process
    may fork while we kill: loop)."""
    deadline = time.time() + timeout
    while True:
        pids = netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.time() > deadline:
            raise RuntimeError(f"processes in {ns} survive SIGKILL: {pids}")
        time.sleep(0.05)


def _umount_under(prefix):
    """Lazily unmounts every mount point under prefix, deepest first."""
    prefix = prefix.rstrip("/") + "/"
    for _ in range(5):
        try:
            lines = open("/proc/mounts").read().splitlines()
        except OSError:
            return
        points = []
        for line in lines:
            mp = line.split()[1].encode().decode("unicode_escape")
            if mp.startswith(prefix):
                points.append(mp)
        if not points:
            return
        for mp in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def _clear_loops_under(prefix):
    """Clears the loop devices whose backing file is under prefix: those of
    volumes whose attach process died with its host (a killed attach
    process leaves its device configured, failing every I/O)."""
    prefix = prefix.rstrip("/") + "/"
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(prefix):
            subprocess.run(["losetup", "-d", "/dev/" + name], capture_output=True)


def sweep_stale_runs():
    """Removes what runs whose pytest process died without cleaning up left
    behind (namespaces, processes, bind mounts)."""
    if not os.path.isdir(STATE_ROOT):
        return
    for rid in os.listdir(STATE_ROOT):
        d = os.path.join(STATE_ROOT, rid)
        try:
            owner = json.load(open(os.path.join(d, "owner.json")))
        except (OSError, ValueError):
            owner = None
        if owner and _pid_alive(owner["pid"], owner.get("start")):
            continue
        if owner is None:
            try:  # a run that is just starting has not written it yet
                if time.time() - os.stat(d).st_mtime < 60:
                    continue
            except OSError:
                continue
        prefix = f"hf{rid}-"
        for ns in sh("ip", "netns", "list", check=False).stdout.split("\n"):
            name = ns.split(" ")[0]
            if name.startswith(prefix):
                try:
                    _kill_pids_of(name)
                except RuntimeError:
                    pass
                sh("ip", "netns", "del", name, check=False)
        if owner and owner.get("tmp"):
            _clear_loops_under(owner["tmp"])
            _umount_under(owner["tmp"])
        _umount_under(d)
        shutil.rmtree(d, ignore_errors=True)


def _cleanup_all():
    with _live_lock:
        nets = list(_live_nets)
    for n in nets:
        try:
            n.cleanup()
        except Exception as e:  # noqa: BLE001 - atexit: do what we can
            print(f"netns cleanup of {n.id}: {e}")


atexit.register(_cleanup_all)


class Proc:
    """A process started in a host."""

    def __init__(self, host, name, popen, log):
        self.host, self.name, self.popen, self.log = host, name, popen, log

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.signal(signal.SIGKILL)
        self.wait(10)

    def wait(self, timeout=30):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=20):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        return self.popen.returncode

    def output(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def __repr__(self):
        return f"<{self.name} pid {self.pid} on {self.host.name}>"


class Host:
    """One host: a network and a UTS namespace, an address, a directory."""

    def __init__(self, net, name, index):
        self.net, self.name, self.index = net, name, index
        self.ns = f"hf{net.id}-{name}"
        self.ip = f"{net.subnet}.{10 + index}"
        self.veth = f"v{index}"  # the switch's end; the host's end is eth0
        self.dir = os.path.join(net.tmp, name)
        self.uts = os.path.join(net.state, f"{name}.uts")
        self.procs = []
        self.cut_mode = None
        self._worker = None
        os.makedirs(self.dir, exist_ok=True)

    # -- setup ---------------------------------------------------------
    def _create(self):
        sw = self.net.switch
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", sw, "link", "add", self.veth, "type", "veth",
           "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "-n", sw, "link", "set", self.veth, "master", "br0")
        sh("ip", "-n", sw, "link", "set", self.veth, "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.ip}/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        open(self.uts, "w").close()
        sh("unshare", f"--uts={self.uts}", "sh", "-c",
           f"echo {self.name} > /proc/sys/kernel/hostname")

    # -- processes -----------------------------------------------------
    def prefix(self):
        """The argv prefix that runs a command inside this host."""
        return ["nsenter", f"--net=/run/netns/{self.ns}", f"--uts={self.uts}", "--"]

    def popen(self, argv, name=None, env=None, cwd=None, log=None):
        """Starts argv in this host (own session, output to a log file in
        the host's directory); tracks and returns a Proc."""
        name = name or os.path.basename(str(argv[0]))
        log = log or os.path.join(self.dir, f"{name}.log")
        with open(log, "ab") as out:
            p = subprocess.Popen(self.prefix() + [str(a) for a in argv], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd or self.dir, start_new_session=True)
        proc = Proc(self, name, p, log)
        self.procs.append(proc)
        return proc

    def run(self, argv, env=None, timeout=60, check=False, input=None):
        """Runs argv in this host to completion; a CompletedProcess."""
        p = subprocess.run(self.prefix() + [str(a) for a in argv], capture_output=True,
                           text=True, env=env, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(map(str, argv))} exited "
                                 f"{p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def call(self, fn, *args, timeout=120, **kw):
        """Runs fn(*args, **kw) in a thread of this process that entered the
        host's network namespace (sockets it opens belong to the host)."""
        if self._worker is None:
            path = f"/run/netns/{self.ns}"

            def enter():
                fd = os.open(path, os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {path}")
                finally:
                    os.close(fd)

            self._worker = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix=self.ns, initializer=enter)
        return self._worker.submit(fn, *args, **kw).result(timeout)

    def pids(self):
        """Every live process in this host (ip netns pids)."""
        return netns_pids(self.ns)

    def processes(self):
        """pid -> {"cmdline": str, "env": dict} for every live process."""
        out = {}
        for pid in self.pids():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            except OSError:
                continue
            out[pid] = {
                "cmdline": " ".join(c.decode(errors="replace") for c in cmd if c),
                "env": dict(e.decode(errors="replace").split("=", 1) for e in env if b"=" in e),
            }
        return out

    def kill(self):
        """Kills the host: SIGKILL to every process in it (agents, servers,
        shims, tasks). Its network and directories stay."""
        _kill_pids_of(self.ns)
        for p in self.procs:
            p.wait(10)

    # -- network -------------------------------------------------------
    def cut(self, mode="down"):
        """Cuts the host off the switch. mode "down": its veth is set down
        at the switch (the cable is pulled; the host keeps its address);
        "drop": links stay up but every packet is dropped both ways (netem
        loss 100% where the kernel has it, else the blackhole qdisc)."""
        assert self.cut_mode is None, f"{self.name} is already cut ({self.cut_mode})"
        if mode == "down":
            sh("ip", "-n", self.net.switch, "link", "set", self.veth, "down")
        elif mode == "drop":
            for ns, dev in ((self.ns, "eth0"), (self.net.switch, self.veth)):
                p = sh("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root",
                       "netem", "loss", "100%", check=False)
                if p.returncode != 0:
                    sh("tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "blackhole")
        else:
            raise ValueError(f"cut mode {mode!r}: 'down' or 'drop'")
        self.cut_mode = mode

    def heal(self):
        """Undoes cut()."""
        if self.cut_mode == "down":
            sh("ip", "-n", self.net.switch, "link", "set", self.veth, "up")
        elif self.cut_mode == "drop":
            for ns, dev in ((self.ns, "eth0"), (self.net.switch, self.veth)):
                sh("tc", "-n", ns, "qdisc", "del", "dev", dev, "root", check=False)
        # ARP entries that failed during the cut would delay the first
        # packets after it: forget them on both sides.
        sh("ip", "-n", self.ns, "neigh", "flush", "all", check=False)
        for h in self.net.hosts.values():
            if h is not self:
                sh("ip", "-n", h.ns, "neigh", "flush", "to", h.net.subnet + ".0/24",
                   "nud", "failed", check=False)
                sh("ip", "-n", h.ns, "neigh", "del", self.ip, "dev", "eth0", check=False)
        self.cut_mode = None

    def can_reach(self, ip, port, timeout=1.0):
        """Whether a TCP connection from this host to ip:port succeeds."""
        import socket

        def attempt():
            try:
                with socket.create_connection((ip, port), timeout=timeout):
                    return True
            except OSError:
                return False
        return self.call(attempt)

    # -- teardown ------------------------------------------------------
    def destroy(self):
        try:
            _kill_pids_of(self.ns)
        finally:
            for p in self.procs:
                p.wait(5)
            if self._worker:
                self._worker.shutdown(wait=False, cancel_futures=True)
                self._worker = None
            sh("ip", "netns", "del", self.ns, check=False)
            subprocess.run(["umount", "-l", self.uts], capture_output=True)

    def __repr__(self):
        return f"<host {self.name} {self.ip} ns {self.ns}>"


class Net:
    """A switch and the hosts plugged into it."""

    def __init__(self, tmp, subnet="10.231.0"):
        sweep_stale_runs()
        self.id = secrets.token_hex(3)
        self.tmp = os.path.abspath(str(tmp))
        self.subnet = subnet
        self.switch = f"hf{self.id}-sw"
        self.state = os.path.join(STATE_ROOT, self.id)
        self.hosts = {}
        self._cleaned = False
        os.makedirs(self.state)
        with open(os.path.join(self.state, "owner.json"), "w") as f:
            json.dump({"pid": os.getpid(), "start": _start_ticks(os.getpid()),
                       "tmp": self.tmp}, f)
        with _live_lock:
            _live_nets.add(self)
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "set", "lo", "up")
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name):
        assert name not in self.hosts, name
        assert len(self.hosts) < 240
        h = Host(self, name, len(self.hosts))
        self.hosts[name] = h
        h._create()
        return h

    def __getitem__(self, name):
        return self.hosts[name]

    def cleanup(self):
        """Kills every process of every host, deletes the namespaces and the
        switch, unmounts what is mounted under the run's directories."""
        if self._cleaned:
            return
        self._cleaned = True
        errors = []
        for h in list(self.hosts.values()):
            try:
                h.destroy()
            except Exception as e:  # noqa: BLE001 - go on with the others
                errors.append(f"{h.name}: {e}")
        sh("ip", "netns", "del", self.switch, check=False)
        _clear_loops_under(self.tmp)
        _umount_under(self.tmp)
        _umount_under(self.state)
        shutil.rmtree(self.state, ignore_errors=True)
        with _live_lock:
            _live_nets.discard(self)
        if errors:
            raise RuntimeError("cleanup: " + "; ".join(errors))


# ---------------------------------------------------------------------
# holdfast on the hosts


class Server:
    def __init__(self, hf, host, port, store, extra):
        self.hf, self.host, self.port, self.store, self.extra = hf, host, port, store, extra
        self.data = os.path.join(host.dir, "server")
        self.port_file = os.path.join(self.data, "port")
        self.proc = None
        os.makedirs(self.data, exist_ok=True)

    @property
    def url(self):
        return f"http://{self.host.ip}:{self.port}"

    def start(self, wait=True):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        argv = [self.hf.bin, "server", "--data", self.data,
                "--listen", f"{self.host.ip}:{self.port}", "--port-file", self.port_file,
                "--advertise", self.url,
                "--tokens", self.hf.tokens_file, "--node-timeout", self.hf.node_timeout,
                "--backoff", self.hf.backoff]
        if self.store:
            argv += ["--store", self.store]
        argv += list(self.extra)
        self.proc = self.host.popen(argv, name="server", env=self.hf.env())
        if wait:
            wait_for(lambda: os.path.exists(self.port_file) or not self.proc.alive(), 60,
                     what=f"server port file on {self.host.name}")
            assert self.proc.alive(), "server exited:\n" + self.proc.output()[-3000:]
            wait_for(lambda: self.hf.ping(self), 60, what=f"server API on {self.host.name}")
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc:
            self.proc.signal(sig)
            self.proc.wait(30)

    def log(self):
        return self.proc.output() if self.proc else ""


class Agent:
    def __init__(self, hf, host, node_id, attributes, resources, servers, extra):
        self.hf, self.host, self.node_id = hf, host, node_id
        self.attributes, self.resources, self.servers, self.extra = attributes, resources, servers, extra
        self.data = os.path.join(host.dir, "agent")
        self.proc = None
        os.makedirs(self.data, exist_ok=True)

    def start(self, wait=True):
        servers = self.servers or [s.url for s in self.hf.servers]
        argv = [self.hf.bin, "agent", "--server", ",".join(servers), "--data", self.data,
                "--node-id", self.node_id, "--address", self.host.ip,
                "--token-file", self.hf.agent_token_file, "--holdfast-bin", self.hf.bin]
        if self.attributes:
            argv += ["--attributes", ",".join(f"{k}={v}" for k, v in self.attributes.items())]
        if self.hf.agent_wait is not None:
            argv += ["--wait", str(self.hf.agent_wait)]
        if self.resources:
            argv += ["--resources", ",".join(f"{k}={v}" for k, v in self.resources.items())]
        argv += list(self.extra)
        self.proc = self.host.popen(argv, name="agent", env=self.hf.env())
        if wait:
            wait_for(lambda: self.hf.node(self.node_id).get("connected") or
                     (not self.proc.alive() and "agent exited"),
                     60, what=f"agent {self.node_id} registration")
            assert self.proc.alive(), "agent exited:\n" + self.proc.output()[-3000:]
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc:
            self.proc.signal(sig)
            self.proc.wait(30)

    def log(self):
        return self.proc.output() if self.proc else ""

    def volume_dir(self, svc, instance):
        """The agent's directory of an instance's volumes (all its volume
        keys are below it)."""
        return os.path.join(self.data, "volumes", svc, instance)

    def find_in_volumes(self, svc, instance, filename):
        """Paths of files named `filename` in an instance's volumes."""
        return sorted(os.path.join(r, f) for r, _, fs in os.walk(self.volume_dir(svc, instance))
                      for f in fs if f == filename)

    def task_dirs(self):
        d = os.path.join(self.data, "tasks")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


class Etcd:
    """An etcd cluster with one member per host (etcd from Debian's
    etcd-server), for servers started with store=etcd.url."""

    def __init__(self, hf, hosts, client_port=2379, peer_port=2380):
        self.hf, self.hosts = hf, list(hosts)
        self.client_port, self.peer_port = client_port, peer_port
        self.procs = {}

    @property
    def url(self):
        """The --store value: etcd://ip:port,ip:port,..."""
        return "etcd://" + ",".join(f"{h.ip}:{self.client_port}" for h in self.hosts)

    @property
    def endpoints(self):
        return ",".join(f"http://{h.ip}:{self.client_port}" for h in self.hosts)

    def start(self, wait=True):
        cluster = ",".join(f"{h.name}=http://{h.ip}:{self.peer_port}" for h in self.hosts)
        for h in self.hosts:
            self.start_member(h, cluster, "new")
        if wait:
            wait_for(self.healthy, 60, interval=0.5, what="etcd cluster healthy")
        return self

    def start_member(self, host, cluster=None, state="existing"):
        """(Re)starts the member on host; its data directory is kept."""
        cluster = cluster or ",".join(f"{h.name}=http://{h.ip}:{self.peer_port}" for h in self.hosts)
        data = os.path.join(host.dir, "etcd")
        self.procs[host.name] = host.popen(
            ["etcd", "--name", host.name, "--data-dir", data,
             "--listen-client-urls", f"http://{host.ip}:{self.client_port},http://127.0.0.1:{self.client_port}",
             "--advertise-client-urls", f"http://{host.ip}:{self.client_port}",
             "--listen-peer-urls", f"http://{host.ip}:{self.peer_port}",
             "--initial-advertise-peer-urls", f"http://{host.ip}:{self.peer_port}",
             "--initial-cluster", cluster, "--initial-cluster-state", state,
             "--initial-cluster-token", f"hf-{self.hf.net.id}",
             "--heartbeat-interval", "100", "--election-timeout", "1000"],
            name="etcd", env=self.hf.env(ETCD_UNSUPPORTED_ARCH=os.uname().machine))
        return self.procs[host.name]

    def ctl(self, *args, endpoints=None, timeout=30):
        """etcdctl ARGS, run on the ops host."""
        return self.hf.client.run(["etcdctl", "--endpoints", endpoints or self.endpoints,
                                   "--dial-timeout", "2s", "--command-timeout", "5s", *args],
                                  env=self.hf.env(ETCDCTL_API="3"), timeout=timeout)

    def healthy(self):
        p = self.ctl("endpoint", "health")
        return p.returncode == 0 and p.stdout.count("is healthy") + p.stderr.count("is healthy") \
            == len(self.hosts)


class Holdfast:
    """holdfast servers and agents on the hosts of a Net. The CLI and the
    API are used from a host of its own ("ops") so that cutting a server's
    or an agent's host does not cut the test off the rest."""

    def __init__(self, net, bin=BIN, node_timeout=3, backoff=0.5, client=None,
                 agent_wait="auto"):
        self.net, self.bin = net, bin
        self.node_timeout, self.backoff = str(node_timeout), str(backoff)
        # The agents' long-poll wait (--wait). The server only counts a
        # node as seen when a sync arrives or is answered, so a wait at or
        # above the node timeout makes healthy nodes look unreachable
        # (holdfast bug, see the report): "auto" keeps it below the
        # timeout; None leaves the agent's default.
        if agent_wait == "auto":
            agent_wait = max(1, int(node_timeout) // 3)
        self.agent_wait = agent_wait
        self.client = client or net.add_host("ops")
        self.admin_token = secrets.token_hex(16)
        self.agent_token = secrets.token_hex(16)
        # Credential files must be private to the user (the server and
        # the agent refuse others).
        self.tokens_file = write(os.path.join(net.tmp, "tokens"),
                                 f"admin {self.admin_token}\nagent {self.agent_token}\n")
        os.chmod(self.tokens_file, 0o600)
        self.agent_token_file = write(os.path.join(net.tmp, "agent-token"),
                                      self.agent_token + "\n")
        os.chmod(self.agent_token_file, 0o600)
        self.servers = []
        self.agents = {}
        self.etcd = None
        self.server = None  # the server the CLI and API talk to

    def env(self, **extra):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.pop("HOLDFAST_TOKEN", None)
        env.pop("HOLDFAST_ADDR", None)
        env.update(extra)
        return env

    # -- processes -----------------------------------------------------
    def start_server(self, host, port=7070, store=None, extra=(), wait=True):
        """A server on host listening on host.ip:port. store: None (SQLite
        in its data directory) or "etcd://ip:port,...". The first started
        is the one the CLI uses (see use_server)."""
        s = Server(self, host, port, store, extra)
        self.servers.append(s)
        if self.server is None:
            self.server = s
        return s.start(wait)

    def start_etcd(self, hosts, wait=True):
        """A 3- (or N-) member etcd cluster on hosts; pass .url as the
        servers' store."""
        self.etcd = Etcd(self, hosts)
        return self.etcd.start(wait)

    def use_server(self, server):
        self.server = server

    def start_agent(self, host, node_id=None, attributes=None, resources=None,
                    servers=None, extra=(), wait=True):
        """An agent on host (node id: the host's name) that syncs with
        servers (URLs; default: every server started so far)."""
        res = {"cpus": 8, "memory": 8192, "disk": 20000, "ports": "10000-20000"}
        res.update(resources or {})
        a = Agent(self, host, node_id or host.name, attributes or {}, res, servers, extra)
        self.agents[a.node_id] = a
        return a.start(wait)

    def agent_on(self, node_id):
        return self.agents[node_id]

    def stop(self):
        """Stops agents then servers (SIGTERM); raises if one of them
        exited badly (sanitizer reports, crashes). Tasks are left to
        Net.cleanup()."""
        bad = []
        procs = [a.proc for a in self.agents.values()] + [s.proc for s in self.servers]
        etcd = list(self.etcd.procs.values()) if self.etcd else []
        for p in procs:
            if p is None:
                continue
            was_alive = p.alive()
            rc = p.stop(20) if was_alive else p.popen.returncode
            if rc not in (0, -signal.SIGKILL, -signal.SIGTERM, None):
                bad.append(f"{p!r} exited {rc} ({'on SIGTERM' if was_alive else 'by itself'}):\n"
                           + p.output()[-3000:])
        for p in etcd:
            p.stop(10)
        for p in procs:
            if p is None:
                continue
            text = p.output()
            for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                if marker in text:
                    i = text.index(marker)
                    bad.append(f"{p!r}: {marker}\n" + text[max(0, i - 500):i + 3000])
                    break
        if bad:
            raise AssertionError("\n\n".join(bad))

    # -- API and CLI ---------------------------------------------------
    def ping(self, server=None):
        """Whether a server answers: 200, or 503 "not-leader" from a
        follower."""
        try:
            st, body = self.api("GET", "/v1/version", server=server, timeout=3)
        except OSError:
            return False
        return st == 200 or (st == 503 and isinstance(body, dict)
                             and body.get("error") == "not-leader")

    def leaders(self):
        """The running servers that act as leader now (GET /v1/leader says
        "leading"; followers answer reads too, so a 200 elsewhere proves
        nothing). More than one is a bug, unless a deposed one has not
        noticed yet."""
        out = []
        for s in self.servers:
            if not s.proc or not s.proc.alive():
                continue
            try:
                st, body = self.api("GET", "/v1/leader", server=s, timeout=3)
            except OSError:
                continue
            if st == 200 and isinstance(body, dict) and body.get("leading") is True:
                out.append(s)
        return out

    def leader(self):
        """The one leading server, or None."""
        ls = self.leaders()
        return ls[0] if len(ls) == 1 else None

    def wait_leader(self, timeout=60, exclude=()):
        """Waits until exactly one server leads (not one of exclude) and
        makes it the one the CLI and API use."""
        s = wait_for(lambda: (lambda l: l if l is not None and l not in exclude else None)(self.leader()),
                     timeout, interval=0.3, what="one leading server")
        self.server = s
        return s

    def api(self, method, path, body=None, server=None, timeout=30, token=None):
        """(status, parsed JSON) of an API call, made from the ops host
        (with the admin token, or token)."""
        url = (server or self.server).url + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token or self.admin_token}"})

        def do():
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    return e.code, json.loads(raw or b"null")
                except ValueError:
                    return e.code, raw.decode(errors="replace")
        return self.client.call(do, timeout=timeout + 10)

    def get(self, path, **kw):
        status, body = self.api("GET", path, **kw)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def metrics(self):
        """The server's /metrics, read from the ops host, as
        {(name, ((label, value), ...)): value}."""
        def do():
            req = urllib.request.Request(self.server.url + "/metrics", headers={
                "Authorization": f"Bearer {self.admin_token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.read().decode()
        out = {}
        for line in self.client.call(do, timeout=20).splitlines():
            m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
            if m:
                labels = tuple(sorted(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or "")))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def cli(self, *args, check=True, timeout=180, server=None):
        """Runs `holdfast ARGS` on the ops host against the server."""
        env = self.env(HOLDFAST_ADDR=(server or self.server).url, HOLDFAST_TOKEN=self.admin_token)
        p = self.client.run([self.bin, *args], env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"holdfast {' '.join(map(str, args))} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def deploy(self, spec_path, *opts, wait=True, timeout=120, check=True):
        args = ["service", "deploy", "-f", spec_path, *opts]
        if wait:
            args += ["--wait", "--timeout", str(timeout)]
        return self.cli(*args, timeout=timeout + 60, check=check)

    def nodes(self):
        return self.get("/v1/nodes")

    def node(self, node_id):
        try:
            return next((n for n in self.nodes() if n.get("id") == node_id), {})
        except (AssertionError, OSError):
            return {}

    def plan(self, svc, plan="deploy"):
        # 200 complete, 202 in progress, 417 error (as in the SDK).
        status, body = self.api("GET", f"/v1/service/{svc}/plans/{plan}")
        assert status in (200, 202, 417) and isinstance(body, dict) and "phases" in body, \
            f"GET plan {svc}/{plan}: {status} {body}"
        return body

    def wait_plan(self, svc, plan="deploy", status="COMPLETE", timeout=120):
        return wait_for(lambda: (lambda p: p.get("status") == status and p)(self.plan(svc, plan)),
                        timeout, interval=0.3, what=f"{svc} plan {plan} {status}")

    def steps(self, svc, plan="deploy"):
        """step name -> step dict"""
        return {s["name"]: s for ph in self.plan(svc, plan)["phases"] for s in ph["steps"]}

    def pods(self, svc):
        return self.get(f"/v1/service/{svc}/pod/status")["pods"]

    def pod(self, svc, instance):
        return next(p for p in self.pods(svc) if p["name"] == instance)

    def tasks(self, svc):
        """task name -> task status dict"""
        return {t["name"]: t for p in self.pods(svc) for t in p["tasks"]}

    def task_copies(self, svc, task_name):
        """Where a pod-instance task really runs: sorted (host, sandbox)
        of every live process, on any host, whose env says it is that task
        of that service (the agent sets SERVICE_NAME, TASK_NAME and
        HOLDFAST_SANDBOX)."""
        out = set()
        for h in self.net.hosts.values():
            for info in h.processes().values():
                env = info["env"]
                if env.get("TASK_NAME") == task_name and env.get("SERVICE_NAME") == svc:
                    out.add((h.name, env.get("HOLDFAST_SANDBOX")))
        return sorted(out)
