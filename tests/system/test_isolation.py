"""What a task can reach: the user it runs as (and its checks and `task
exec` with it), its own mount namespace with holdfast's files hidden, its
capabilities, links it plants in its volumes, volume directories of
services whose names nest, rlimits above the node's limit, and file://
URIs. Real server, agent, shims and tasks; as root, which holdfast's
agent is on a node.
"""
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from holdfast_harness import BIN, REPO, Cluster, escape_name, wait_for, write

NOBODY = pwd.getpwnam("nobody")
DAEMON = pwd.getpwnam("daemon")
# What container runtimes give a root process, without CAP_MKNOD
# (common/caps.c): CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
# SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT AUDIT_WRITE SETFCAP.
DEFAULT_CAPS = sum(1 << c for c in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31))
CAP_NET_ADMIN = 12


@pytest.fixture
def pubdir():
    """A data directory private to root, as pytest's tmp_path and a home
    directory are: tasks that run as nobody still reach their sandbox (the
    task's namespace covers what its user may not search)."""
    d = tempfile.mkdtemp(prefix="hf-iso-", dir="/tmp")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cluster(pubdir):
    c = Cluster(pubdir)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def read(path):
    with open(path) as f:
        return f.read()


def find(root, name):
    """The file called name anywhere below root, or None."""
    for r, _, fs in os.walk(root):
        if name in fs:
            return os.path.join(r, name)
    return None


def vol_file(c, svc, inst, name, timeout=60):
    """Waits for the task to have written name into a volume of inst."""
    return wait_for(lambda: (lambda p: p if p and read(p).strip() else None)(
        find(c.volume_dir(svc, inst), name)), timeout, what=f"{name} in {svc}/{inst}")


def steps(c, svc, plan="deploy"):
    p = c.plan(svc, plan)
    return {s["name"]: (s["status"], s.get("message") or "")
            for ph in p.get("phases", []) for s in ph["steps"]}


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return [l.split()[4] for l in f]


def caps_of(status_text):
    return {k: v.strip() for k, v in (l.split(":", 1) for l in status_text.splitlines())}


# ---- the task's user ---------------------------------------------------------


def test_tasks_run_as_the_spec_user_with_checks_exec_and_volumes(cluster, pubdir):
    tmpl = write(os.path.join(pubdir, "app.conf"), "task={{TASK_NAME}}\n")
    spec = write(os.path.join(pubdir, "nob.yml"), f"""
name: nob
scheduler:
  user: nobody
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: id -u > data/uid; cat data/conf/app.conf > data/seen; echo $$ >> data/runs; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        configs:
          app: {{template: {tmpl}, dest: data/conf/app.conf}}
        health-check: {{cmd: id -u > data/health-uid, interval: 1, grace-period: 0, timeout: 5}}
        readiness-check: {{cmd: id -u > data/ready-uid && test -s data/uid, interval: 1, timeout: 5}}
  other:
    count: 1
    user: daemon
    tasks:
      server:
        goal: RUNNING
        cmd: id -u > data/uid; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
""")
    cluster.deploy(spec)
    # The task, its readiness and health checks all run as nobody.
    for name in ("uid", "ready-uid", "health-uid"):
        assert read(vol_file(cluster, "nob", "app-0", name)).strip() == str(NOBODY.pw_uid), name
    assert read(vol_file(cluster, "nob", "app-0", "seen")) == "task=app-0-server\n"
    # Its volume and the config written into it are the user's.
    vol = os.path.dirname(find(cluster.volume_dir("nob", "app-0"), "uid"))
    assert os.stat(vol).st_uid == NOBODY.pw_uid
    assert os.stat(os.path.join(vol, "conf", "app.conf")).st_uid == NOBODY.pw_uid
    # A pod's user overrides the service's.
    assert read(vol_file(cluster, "nob", "other-0", "uid")).strip() == str(DAEMON.pw_uid)
    # `task exec` runs as the task's user, in its view (its volume is there).
    p = cluster.cli("-s", "nob", "task", "exec", "app-0-server", "--", "sh", "-c",
                    "id -u; cat data/uid; grep NoNewPrivs /proc/self/status")
    assert p.stdout.split() == [str(NOBODY.pw_uid), str(NOBODY.pw_uid), "NoNewPrivs:", "1"], p.stdout
    p = cluster.cli("-s", "nob", "task", "exec", "other-0-server", "--", "id", "-u")
    assert p.stdout.strip() == str(DAEMON.pw_uid)

    # A restart keeps the volume, and it stays usable.
    cluster.cli("-s", "nob", "pod", "restart", "app-0")
    wait_for(lambda: len(read(find(cluster.volume_dir("nob", "app-0"), "runs")).split()) == 2,
             60, what="the relaunch on the same volume")
    assert os.stat(vol).st_uid == NOBODY.pw_uid
    # The user cannot change: a volume is never handed from one to another.
    p = cluster.cli("service", "update", "nob", "-f",
                    write(os.path.join(pubdir, "root.yml"), read(spec).replace("user: nobody", "user: root")),
                    check=False)
    assert p.returncode != 0 and "user" in (p.stdout + p.stderr), p

    # A failure of exec before the command runs is reported as such (over
    # the spawn pipe), not as an exit status of the command.
    tid = cluster.tasks("nob")["app-0-server"]["id"]
    sandbox = os.path.join(cluster.agent_data, "tasks", tid, "sandbox")
    os.chown(sandbox, 0, 0)
    os.chmod(sandbox, 0o700)
    try:
        p = cluster.cli("-s", "nob", "task", "exec", "app-0-server", "--", "true", check=False)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "cannot enter the sandbox" in p.stderr and "Permission denied" in p.stderr, p.stderr
    finally:
        os.chown(sandbox, NOBODY.pw_uid, NOBODY.pw_gid)
        os.chmod(sandbox, 0o755)

    # A replaced pod gets a fresh volume, again the user's.
    cluster.cli("-s", "nob", "pod", "replace", "app-0", "--yes")
    wait_for(lambda: cluster.tasks("nob")["app-0-server"]["id"] != tid and
             cluster.tasks("nob")["app-0-server"]["status"] == "RUNNING", 60,
             what="the replacement")
    runs = wait_for(lambda: find(cluster.volume_dir("nob", "app-0"), "runs"), 60, what="runs")
    assert len(read(runs).split()) == 1
    assert os.stat(os.path.dirname(runs)).st_uid == NOBODY.pw_uid


def test_a_volume_made_for_root_is_given_to_the_new_user(cluster, pubdir):
    """A service redeployed onto kept volumes with another user (or a pod
    `user:` that older holdfast ignored) finds them root's: the agent
    hands them over, files included, so the task can use its data."""
    spec = """
name: adopt
{sched}
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: {cmd}; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
"""
    cluster.deploy(write(os.path.join(pubdir, "root.yml"), spec.format(
        sched="", cmd="mkdir -p data/sub && echo old >> data/sub/log")))
    log = vol_file(cluster, "adopt", "p-0", "log")
    data = os.path.dirname(os.path.dirname(log))
    assert os.stat(log).st_uid == 0
    cluster.cli("service", "remove", "adopt", "--wait")
    cluster.deploy(write(os.path.join(pubdir, "nobody.yml"), spec.format(
        sched="scheduler: {user: nobody}", cmd="echo more >> data/sub/log")))
    wait_for(lambda: read(log) == "old\nmore\n", 60, what="the nobody task appending")
    for path in (data, os.path.dirname(log), log):
        assert os.stat(path).st_uid == NOBODY.pw_uid, path


# ---- isolation ----------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dev:
    """`holdfast dev` as a user starts it."""

    def __init__(self, data):
        self.data = data
        self.port = free_port()
        self.log = open(os.path.join(os.path.dirname(data), "dev.log"), "ab")
        self.proc = subprocess.Popen(
            [BIN, "dev", "--data", data, "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log, start_new_session=True)
        self.env = dict(os.environ, HOLDFAST_ADDR=f"http://127.0.0.1:{self.port}")
        wait_for(self.agent_connected, 60, what="holdfast dev")

    def agent_connected(self):
        p = self.cli("--json", "node", "list", check=False)
        try:
            return p.returncode == 0 and any(n.get("connected") for n in json.loads(p.stdout))
        except ValueError:
            return False

    def cli(self, *args, check=True):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, env=self.env, timeout=180)
        if check and p.returncode:
            raise AssertionError(f"holdfast {args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for pid in Cluster.pids_matching(self.data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Only an agent that bound volumes on the node would leave these.
        for m in sorted((m for m in host_mounts() if m.startswith(self.data)), reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        self.log.close()


def test_tasks_are_isolated_by_default(pubdir):
    data = os.path.join(pubdir, "dev")
    spec = write(os.path.join(pubdir, "iso.yml"), f"""
name: iso
pods:
  plain:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: |
          grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status > data/status
          readlink /proc/self/ns/mnt > data/ns
          ls -A {data} > data/data-dir 2>&1
          if cat {data}/server/holdfast.db > /dev/null 2>&1; then echo READ; else echo hidden; fi > data/store
          ls -A /dev > data/dev
          if touch /sys/kernel/holdfast-probe 2>/dev/null; then echo rw; else echo ro; fi > data/sys
          exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
""")
    dev = Dev(data)
    try:
        dev.cli("service", "deploy", "-f", spec, "--wait", "--timeout", "120")
        vols = os.path.join(data, "agent", "volumes", "iso")

        def out(inst, name):
            return read(wait_for(lambda: (lambda p: p if p and read(p).strip() else None)(
                find(os.path.join(vols, inst), name)), 60, what=f"{inst} {name}"))

        st = caps_of(out("plain-0", "status"))
        assert int(st["CapEff"], 16) == DEFAULT_CAPS, st
        assert int(st["CapBnd"], 16) == DEFAULT_CAPS, st
        assert st["NoNewPrivs"] == "1"
        # Its own mount namespace, with holdfast's files out of sight.
        assert out("plain-0", "ns").strip() != os.readlink("/proc/self/ns/mnt")
        assert out("plain-0", "data-dir").split() == ["agent"]
        assert out("plain-0", "store").strip() == "hidden"
        assert os.path.exists(os.path.join(data, "server", "holdfast.db"))
        assert set(out("plain-0", "dev").split()) <= {
            "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
            "fd", "stdin", "stdout", "stderr"}
        assert out("plain-0", "sys").strip() == "ro"
        # None of its mounts shows on the node.
        assert not [m for m in host_mounts() if m.startswith(data)]
        # exec and its view: the same namespace as the task.
        p = dev.cli("-s", "iso", "task", "exec", "plain-0-server", "--", "sh", "-c",
                    "readlink /proc/self/ns/mnt; ls data/ns; ls -A " + data)
        assert p.stdout.split() == [out("plain-0", "ns").strip(), "data/ns", "agent"], p.stdout
        dev.cli("service", "remove", "iso", "--delete-volumes", "--wait")
        wait_for(lambda: not os.path.exists(vols), 60, what="volumes deleted")
    finally:
        dev.stop()
    assert not [m for m in host_mounts() if m.startswith(pubdir)]


def test_capabilities_beyond_the_default_where_the_spec_asks(cluster, pubdir):
    spec = write(os.path.join(pubdir, "caps.yml"), """
name: caps
pods:
  more:
    count: 1
    capabilities: [NET_ADMIN]
    tasks:
      server:
        goal: RUNNING
        cmd: grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > st; exec sleep 1000
        cpus: 0.1
        memory: 32
  user:
    count: 1
    user: nobody
    capabilities: [CAP_NET_BIND_SERVICE]
    tasks:
      server:
        goal: RUNNING
        cmd: grep -E '^(CapEff|CapAmb|NoNewPrivs)' /proc/self/status > st; exec sleep 1000
        cpus: 0.1
        memory: 32
  all:
    count: 1
    capabilities: [ALL]
    tasks:
      server:
        goal: RUNNING
        cmd: grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > st; exec sleep 1000
        cpus: 0.1
        memory: 32
""")
    cluster.deploy(spec)

    def st(pod):
        tid = cluster.tasks("caps")[f"{pod}-0-server"]["id"]
        path = os.path.join(cluster.agent_data, "tasks", tid, "sandbox", "st")
        return caps_of(wait_for(lambda: os.path.exists(path) and read(path).strip() and read(path),
                                30, what=f"{pod}'s status"))

    more = st("more")
    assert int(more["CapEff"], 16) == DEFAULT_CAPS | 1 << CAP_NET_ADMIN, more
    assert more["NoNewPrivs"] == "1"
    # A task run as another user gets only what is listed, as ambient ones.
    user = st("user")
    assert int(user["CapEff"], 16) == int(user["CapAmb"], 16) == 1 << 10, user
    every = st("all")
    assert int(every["CapEff"], 16) & ~DEFAULT_CAPS and every["NoNewPrivs"] == "0", every
    p = cluster.cli("spec", "validate", write(os.path.join(pubdir, "bad.yml"),
                                              read(spec).replace("[NET_ADMIN]", "[NET_ADMNI]")),
                    check=False)
    assert p.returncode == 1 and "unknown capability 'NET_ADMNI'" in p.stderr, p.stderr


# ---- links planted in volumes --------------------------------------------------


def test_config_is_never_written_through_a_planted_link(cluster, pubdir):
    outside = os.path.join(pubdir, "outside")
    os.mkdir(outside)
    tmpl = write(os.path.join(pubdir, "app.conf"), "x=1\n")
    spec = write(os.path.join(pubdir, "cfg.yml"), f"""
name: cfgesc
pods:
  p:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: |
          echo $$ >> data/runs
          test -f data/conf/app.conf || exit 3
          rm -rf data/conf && ln -s {outside} data/conf
          exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        configs:
          app: {{template: {tmpl}, dest: data/conf/app.conf}}
""")
    cluster.deploy(spec)
    vol = cluster.volume_dir("cfgesc", "p-0")
    wait_for(lambda: (lambda p: p and os.path.islink(os.path.join(os.path.dirname(p), "conf")))(
        find(vol, "runs")), 30, what="the link planted")
    cluster.cli("-s", "cfgesc", "pod", "restart", "p-0")
    wait_for(lambda: "symbolic link" in steps(cluster, "cfgesc").get("p-0:[server]", ("", ""))[1] or
             "symbolic link" in (cluster.tasks("cfgesc")["p-0-server"].get("message") or ""),
             60, what="the relaunch refused")
    assert os.listdir(outside) == []
    cluster.cli("service", "remove", "cfgesc", "--delete-volumes", "--wait")
    assert os.listdir(outside) == []


def test_volume_is_never_mounted_through_a_planted_link(cluster, pubdir):
    outside = os.path.join(pubdir, "outside")
    os.mkdir(outside)
    write(os.path.join(outside, "original"), "node data\n")
    spec = write(os.path.join(pubdir, "mnt.yml"), f"""
name: mntesc
pods:
  p:
    count: 1
    volume: {{path: pv, type: ROOT, size: 10}}
    resource-sets:
      srv:
        cpus: 0.1
        memory: 32
        volume: {{path: pv/sub, type: ROOT, size: 10}}
    tasks:
      plant:
        goal: FINISH
        cmd: ln -s {outside} pv/sub
        cpus: 0.1
        memory: 32
      server:
        goal: RUNNING
        resource-set: srv
        cmd: echo planted > pv/sub/planted; exec sleep 1000
plans:
  deploy:
    strategy: serial
    phases:
      plant:
        strategy: serial
        pod: p
        steps:
          - default: [[plant]]
      serve:
        strategy: serial
        pod: p
        steps:
          - default: [[server]]
""")
    cluster.deploy(spec, wait=False)
    wait_for(lambda: "symbolic link" in steps(cluster, "mntesc").get("p-0:[server]", ("", ""))[1],
             60, what="the server's launch refused")
    assert os.listdir(outside) == ["original"]
    assert read(os.path.join(outside, "original")) == "node data\n"
    assert outside not in host_mounts()
    cluster.cli("service", "remove", "mntesc", "--delete-volumes", "--wait")
    wait_for(lambda: not os.path.exists(cluster.volume_dir("mntesc", "p-0")), 60,
             what="volumes deleted")
    assert not [m for m in host_mounts() if m.startswith(pubdir)]
    assert os.listdir(outside) == ["original"]


def test_nested_volume_mounts_inside_its_parent_volume(cluster, pubdir):
    spec = write(os.path.join(pubdir, "nest.yml"), """
name: nest
pods:
  p:
    count: 1
    volume: {path: pv, type: ROOT, size: 10}
    tasks:
      server:
        goal: RUNNING
        cmd: echo outer > pv/o; echo inner > pv/sub/i; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {path: pv/sub, type: ROOT, size: 10}
""")
    cluster.deploy(spec)
    i = vol_file(cluster, "nest", "p-0", "i")
    o = vol_file(cluster, "nest", "p-0", "o")
    assert os.path.dirname(i) != os.path.join(os.path.dirname(o), "sub")
    assert read(i) == "inner\n" and read(o) == "outer\n"


# ---- volume directories ------------------------------------------------------


def test_services_whose_names_nest_never_share_volumes(cluster, pubdir):
    def spec(name, pod):
        return write(os.path.join(pubdir, f"{pod}.yml"), f"""
name: {name}
pods:
  {pod}:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo $TASK_NAME >> data/mark; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
""")

    def mark(svc, task):
        p = cluster.cli("-s", svc, "task", "exec", task, "--", "cat", "data/mark", check=False)
        return p.stdout if p.returncode == 0 else p.stderr

    cluster.deploy(spec("vol", "p"))
    cluster.deploy(spec("vol/p-0", "q"))
    wait_for(lambda: mark("vol/p-0", "q-0-server") == "q-0-server\n", 30, what="q-0's mark")
    old = cluster.tasks("vol")["p-0-server"]["id"]
    cluster.cli("-s", "vol", "pod", "replace", "p-0", "--yes")
    wait_for(lambda: cluster.tasks("vol")["p-0-server"]["id"] != old and
             mark("vol", "p-0-server") == "p-0-server\n", 60, what="the replacement")
    # Replacing vol's p-0 left the data of service vol/p-0 alone.
    assert mark("vol/p-0", "q-0-server") == "q-0-server\n"
    assert read(find(cluster.volume_dir("vol/p-0", "q-0"), "mark")) == "q-0-server\n"
    assert escape_name("vol/p-0") == "vol%2Fp-0"


# ---- rlimits -------------------------------------------------------------------


def test_rlimit_above_the_nodes_limit_fails_once_as_an_error(pubdir):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard != resource.RLIM_INFINITY
    want = hard + 1000
    spec = """
name: lim
pods:
  p:
    count: 1
    rlimits:
      RLIMIT_NOFILE: {{soft: {n}, hard: {n}}}
    tasks:
      server:
        goal: RUNNING
        cmd: ulimit -n > nofile; exec sleep 1000
        cpus: 0.1
        memory: 32
        readiness-check: {{cmd: test -s nofile, interval: 1, timeout: 5}}
"""
    c = Cluster(pubdir)
    c.start_server()
    # As on a node without CAP_SYS_RESOURCE: nothing may raise a hard limit.
    c.start_agent(wrap=("setpriv", "--bounding-set", "-sys_resource", "--inh-caps",
                        "-sys_resource", "--"))
    try:
        c.deploy(write(os.path.join(pubdir, "lim.yml"), spec.format(n=want)), wait=False)
        st = wait_for(lambda: steps(c, "lim").get("p-0:[server]", ("",))[0] == "ERROR" and
                      steps(c, "lim")["p-0:[server]"], 60, what="the step in ERROR")
        msg = st[1]
        assert "RLIMIT_NOFILE" in msg and str(want) in msg and str(hard) in msg, msg
        assert c.plan("lim")["status"] == "ERROR"
        first = c.tasks("lim")["p-0-server"]["id"]
        time.sleep(3)  # several backoffs of this cluster (0.5 s): no retry came
        assert c.tasks("lim")["p-0-server"]["id"] == first
        assert c.agent_log().count("failed-to-start") == 1, c.agent_log()
        # A fixing update relaunches it.
        c.cli("service", "update", "lim", "-f",
              write(os.path.join(pubdir, "lim2.yml"), spec.format(n=hard)))
        wait_for(lambda: c.tasks("lim")["p-0-server"]["status"] == "RUNNING" and
                 c.tasks("lim")["p-0-server"]["id"] != first, 60, what="the relaunch")
        tid = c.tasks("lim")["p-0-server"]["id"]
        nofile = os.path.join(c.agent_data, "tasks", tid, "sandbox", "nofile")
        wait_for(lambda: os.path.exists(nofile) and read(nofile).strip(), 30, what="ulimit")
        assert read(nofile).strip() == str(hard)
    finally:
        c.stop()


# ---- file:// URIs --------------------------------------------------------------


def test_checks_and_exec_run_with_the_tasks_rlimits(cluster, pubdir):
    """What a check or `task exec` runs has the task's limits, not the
    agent's: the readiness check passes only with them."""
    spec = write(os.path.join(pubdir, "rl.yml"), """
name: rl
pods:
  p:
    count: 1
    rlimits:
      RLIMIT_NOFILE: {soft: 1000, hard: 2000}
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        memory: 32
        readiness-check: {cmd: 'test "$(ulimit -n) $(ulimit -Hn)" = "1000 2000"', interval: 1, timeout: 5}
""")
    cluster.deploy(spec)
    p = cluster.cli("-s", "rl", "task", "exec", "p-0-server", "--", "sh", "-c",
                    "ulimit -n; ulimit -Hn")
    assert p.stdout.split() == ["1000", "2000"], p.stdout
    pid = cluster.task_pid(cluster.tasks("rl")["p-0-server"]["id"])
    with open(f"/proc/{pid}/limits") as f:
        line = [l for l in f if l.startswith("Max open files")][0]
    assert line.split()[3:5] == ["1000", "2000"], line
    cluster.cli("service", "remove", "rl", "--wait")


def test_file_uris_only_from_served_directories(pubdir):
    art = os.path.join(pubdir, "art")
    os.mkdir(art)
    write(os.path.join(art, "tool.sh"), "echo tool\n")
    os.symlink("/etc/shadow", os.path.join(art, "shadow"))
    secret = "agent-env-secret-" + os.urandom(6).hex()

    def spec(name, uri):
        return write(os.path.join(pubdir, f"{name}.yml"), f"""
name: {name}
pods:
  p:
    count: 1
    uris: [{uri}]
    tasks:
      server: {{goal: RUNNING, cmd: sh tool.sh > out; exec sleep 1000, cpus: 0.1, memory: 32}}
""")
    c = Cluster(pubdir)
    c.start_server()

    def start_agent(*extra):
        # The agent's environment holds a secret, as a token would be.
        os.environ["HF_TEST_AGENT_SECRET"] = secret
        try:
            c.start_agent(extra=extra)
        finally:
            del os.environ["HF_TEST_AGENT_SECRET"]

    try:
        # Without --artifact-dir, no file:// URI is served.
        start_agent()
        for name, uri in (("environ", "file:///proc/self/environ"),
                          ("shadow", "file:///etc/shadow")):
            c.deploy(spec(name, uri), wait=False)
            wait_for(lambda: "serves no files to tasks" in
                     steps(c, name).get("p-0:[server]", ("", ""))[1], 60, what=f"{name} refused")
        c.cli("service", "remove", "environ", "--wait")
        c.cli("service", "remove", "shadow", "--wait")
        c.kill_agent(signal.SIGTERM)
        # With it, files below it are; links that lead out are not.
        start_agent("--artifact-dir", art)
        c.deploy(spec("ok", f"file://{art}/tool.sh"))
        tid = c.tasks("ok")["p-0-server"]["id"]
        out = os.path.join(c.agent_data, "tasks", tid, "sandbox", "out")
        wait_for(lambda: os.path.exists(out) and read(out) == "tool\n", 30, what="tool output")
        for name, uri in (("environ", "file:///proc/self/environ"),
                          ("shadow", f"file://{art}/shadow")):
            c.deploy(spec(name, uri), wait=False)
            wait_for(lambda: "not in a directory this agent serves" in
                     steps(c, name).get("p-0:[server]", ("", ""))[1], 60, what=f"{name} refused")
        # Nothing of the agent's environment reached any sandbox.
        for r, _, fs in os.walk(os.path.join(c.agent_data, "tasks")):
            for f in fs:
                if f == "shim.sock":
                    continue
                with open(os.path.join(r, f), "rb") as fh:
                    assert secret.encode() not in fh.read(), os.path.join(r, f)
            assert "environ" not in fs and "shadow" not in fs, (r, fs)
    finally:
        c.stop()


# ---- the SDK's hello-world as shipped -------------------------------------------

SDK = os.environ.get("HF_SDK_SPECS", os.path.join(os.path.dirname(REPO), "shared", "sdk-specs"))


def test_sdk_hello_world_runs_as_nobody(pubdir):
    """The SDK's own helloworld/svc.yml with its default FRAMEWORK_USER
    (nobody) and RLIMIT_NOFILE (128000, above a node without
    CAP_SYS_RESOURCE): the deploy fails once, saying so; within the limit
    it completes with every task, check and exec as nobody."""
    svc = os.path.join(SDK, "helloworld", "svc.yml")
    assert os.path.exists(svc), f"the SDK corpus is not at {SDK}"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard != resource.RLIM_INFINITY and hard < 128000
    opts = ["--options", os.path.join(SDK, "helloworld-options.json"),
            "--options", os.path.join(SDK, "helloworld-single-node.json"),
            "-o", "FRAMEWORK_USER=nobody"]
    c = Cluster(pubdir)
    c.start_server()
    c.start_agent(wrap=("setpriv", "--bounding-set", "-sys_resource", "--inh-caps",
                        "-sys_resource", "--"))
    try:
        c.cli("service", "deploy", "-f", svc, *opts)
        st = wait_for(lambda: steps(c, "hello-world").get("hello-0:[server]", ("",))[0] == "ERROR"
                      and steps(c, "hello-world")["hello-0:[server]"], 60, what="hello-0 in ERROR")
        assert "RLIMIT_NOFILE" in st[1] and "128000" in st[1] and str(hard) in st[1], st
        within = [f"-o{k}={hard}" for k in ("HELLO_RLIMIT_NOFILE_SOFT", "HELLO_RLIMIT_NOFILE_HARD",
                                            "WORLD_RLIMIT_NOFILE_SOFT", "WORLD_RLIMIT_NOFILE_HARD")]
        c.cli("service", "update", "hello-world", "-f", svc, *opts, *within)
        c.wait_plan("hello-world", timeout=120)
        for task in ("hello-0-server", "world-0-server", "world-1-server"):
            p = c.cli("-s", "hello-world", "task", "exec", task, "--", "sh", "-c", "id -un; ulimit -n")
            assert p.stdout.split() == ["nobody", str(hard)], (task, p.stdout)
        out = vol_file(c, "hello-world", "hello-0", "output")
        assert os.stat(out).st_uid == NOBODY.pw_uid
        # The agent hands the shim the user's ids (its libc asks every
        # nsswitch source; the static shim reads only the files).
        tid = c.tasks("hello-world")["hello-0-server"]["id"]
        with open(os.path.join(c.agent_data, "tasks", tid, "launch.json")) as f:
            ids = json.load(f)["ids"]
        assert ids["uid"] == NOBODY.pw_uid and ids["gid"] == NOBODY.pw_gid, ids
        assert sorted(ids["groups"]) == sorted(os.getgrouplist("nobody", NOBODY.pw_gid)), ids
    finally:
        c.stop()


def test_without_mount_namespaces_tasks_still_run_as_their_user(pubdir):
    """An agent that may not mount (no CAP_SYS_ADMIN, as in many
    containers) says so, links volumes into sandboxes, and still runs
    tasks, checks and exec as the spec's user, link-proof. Without a
    namespace of the task's own nothing can cover a directory its user may
    not search, so this data directory lets others through (the agent's
    log says so when it does not)."""
    os.chmod(pubdir, 0o755)
    tmpl = write(os.path.join(pubdir, "app.conf"), "x={{TASK_NAME}}\n")
    spec = write(os.path.join(pubdir, "flat.yml"), f"""
name: flat
scheduler:
  user: nobody
pods:
  p:
    count: 1
    volume: {{path: pv, type: ROOT, size: 10}}
    tasks:
      server:
        goal: RUNNING
        cmd: id -u > data/uid; cat data/conf/app.conf > pv/seen; exec sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        configs:
          app: {{template: {tmpl}, dest: data/conf/app.conf}}
        readiness-check: {{cmd: id -u > pv/ready-uid, interval: 1, timeout: 5}}
""")
    c = Cluster(pubdir)
    c.start_server()
    c.start_agent(wrap=("setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", "--"))
    try:
        wait_for(lambda: "tasks are NOT isolated" in c.agent_log(), 30, what="the agent's word")
        c.deploy(spec)
        assert read(vol_file(c, "flat", "p-0", "uid")).strip() == str(NOBODY.pw_uid)
        assert read(vol_file(c, "flat", "p-0", "ready-uid")).strip() == str(NOBODY.pw_uid)
        assert read(vol_file(c, "flat", "p-0", "seen")) == "x=p-0-server\n"
        p = c.cli("-s", "flat", "task", "exec", "p-0-server", "--", "sh", "-c", "id -u; cat data/uid")
        assert p.stdout.split() == [str(NOBODY.pw_uid)] * 2, p.stdout
    finally:
        c.stop()
