"""Storage pools (issue 14, docs/design/volumes.md §8.2 and §12 stage 2).

`holdfast agent --storage DIR[,size=N]` gives its node a pool for the
replica files of replicated volumes; a node without one is storage-less.
The agent reports the pool with every sync (docs/protocol.md, "storage"),
and the server shows it in GET /v1/nodes, `holdfast node list/show` and
/metrics, and keeps it in the node's record. A bad value stops the agent at
start with a sentence naming the flag; a pool is one node's and one running
agent's. `holdfast dev` gives its agent a pool under its data directory.
"""
import json
import os
import re
import signal
import socket
import stat
import subprocess

import pytest

from holdfast_harness import BIN, Cluster, stop_volume_processes, wait_for

GiB = 1 << 30
MiB = 1 << 20


def node(cl, node_id):
    st, nodes = cl.api("GET", "/v1/nodes")
    assert st == 200, nodes
    for n in nodes:
        if n["id"] == node_id:
            return n
    return None


def start_agent(cl, node_id, data, *extra, log_name=None):
    """An agent of cl's server beside cl's own (which is node-1)."""
    log = open(os.path.join(cl.tmp, log_name or f"{node_id}.log"), "ab")
    cl.logs.append(log)
    return subprocess.Popen(
        [BIN, "agent", "--server", cl.url, "--data", data, "--node-id", node_id,
         "--wait", "1", *extra],
        stdout=log, stderr=log, env=cl._env(), start_new_session=True)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    assert p.returncode in (0, -signal.SIGTERM), p.returncode


def run_agent(cl_url, data, *extra, timeout=30, env=None):
    """An agent that is expected to refuse to start: its exit and output."""
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    e.update(env or {})
    return subprocess.run([BIN, "agent", "--server", cl_url, "--data", data, *extra],
                          capture_output=True, text=True, timeout=timeout, env=e)


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    """A server, node-1 with a 1 GiB pool (the harness's agent) and node-2
    without one."""
    tmp = tmp_path_factory.mktemp("pools")
    c = Cluster(tmp)
    c.pool = os.path.join(str(tmp), "pool-1")
    c.start_server()
    c.start_agent(extra=("--storage", c.pool + ",size=1G", "--wait", "1",
                         "--attributes", "pool=yes"))
    c.other = start_agent(c, "node-2", os.path.join(str(tmp), "agent-2"))
    try:
        wait_for(lambda: (node(c, "node-2") or {}).get("connected"), 30, what="node-2")
        yield c
    finally:
        if c.other.poll() is None:
            c.other.send_signal(signal.SIGTERM)
            c.other.wait(30)
        c.stop()


def test_the_pool_is_in_the_nodes_api(cl):
    n1 = node(cl, "node-1")
    st = n1["storage"]
    assert st["pool"] == os.path.realpath(cl.pool), st
    # size=1G caps the capacity (the test's filesystem has more room).
    assert st["free"] > GiB, ("the test needs more than 1 GiB free", st)
    assert st["capacity"] == GiB, st
    assert st["provisioned"] == 0 and st["used"] == 0, st
    # A storage-less node shows none.
    assert "storage" not in node(cl, "node-2"), node(cl, "node-2")


def test_the_pool_on_disk(cl):
    st = os.stat(cl.pool)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert os.path.isdir(os.path.join(cl.pool, "replicas"))
    marker = json.load(open(os.path.join(cl.pool, "pool.json")))
    assert marker["node"] == "node-1" and marker["format"] == 1, marker
    assert os.path.exists(os.path.join(cl.pool, "lock"))
    # --print-info reads the pool without making or locking anything.
    info = json.loads(subprocess.run(
        [BIN, "agent", "--print-info", "--storage", cl.pool + ",size=1G"],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    assert info["storage"]["pool"] == os.path.realpath(cl.pool), info
    assert info["storage"]["capacity"] == GiB, info


def test_tasks_do_not_see_the_pool(cl, tmp_path):
    """Replica files are no task's business: the pool is hidden in each
    task's mount namespace, like the agent's data directory."""
    pool = os.path.realpath(cl.pool)
    spec = tmp_path / "peek.yml"
    spec.write_text(f"""
name: peek
pods:
  p:
    count: 1
    placement: "pool:IS:yes"
    tasks:
      t:
        goal: RUNNING
        cmd: "ls -A {pool} > data/seen 2>&1; echo done >> data/seen; exec sleep 1000"
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
""")
    cl.cli("service", "deploy", "-f", str(spec), "--wait", "--timeout", "90")
    vols = cl.volume_dir("peek", "p-0")

    def seen_file():
        for r, _, fs in os.walk(vols):
            if "seen" in fs and "done" in open(os.path.join(r, "seen")).read():
                return os.path.join(r, "seen")
        return None

    seen = wait_for(seen_file, 60, what="the task's look at the pool")
    assert open(seen).read().split() == ["done"], open(seen).read()
    assert sorted(os.listdir(pool)) == ["lock", "pool.json", "replicas"]


def test_the_pool_in_the_cli(cl):
    out = cl.cli("node", "list").stdout.splitlines()
    assert out[0].split() == ["NODE", "ADDRESS", "CONNECTED", "CPUS", "MEMORY", "LIMITS"], out
    i1 = next(i for i, l in enumerate(out) if l.startswith("node-1 "))
    i2 = next(i for i, l in enumerate(out) if l.startswith("node-2 "))
    pool = os.path.realpath(cl.pool)
    below1 = out[i1 + 1] if i1 + 1 < len(out) else ""
    assert re.match(rf"  storage: {re.escape(pool)}: capacity 1\.0 GiB, provisioned 0 B, "
                    rf"used 0 B; \S+ \S+ free on its filesystem$", below1), out
    # node-2: no storage line below it.
    assert i2 + 1 == len(out) or not out[i2 + 1].startswith("  storage:"), out

    show = cl.cli("node", "show", "node-1").stdout
    assert re.search(rf"^  storage: +{re.escape(pool)}: capacity 1\.0 GiB", show, re.M), show
    assert re.search(r"^  connected: +yes$", show, re.M), show
    show2 = cl.cli("node", "show", "node-2").stdout
    assert re.search(r"^  storage: +none \(storage-less: its agent runs without --storage\)$",
                     show2, re.M), show2

    j = json.loads(cl.cli("node", "show", "node-1", "--json").stdout)
    assert j["id"] == "node-1" and j["storage"]["capacity"] == GiB, j
    j2 = json.loads(cl.cli("node", "show", "node-2", "--json").stdout)
    assert j2["id"] == "node-2" and "storage" not in j2, j2
    listed = {n["id"]: n for n in json.loads(cl.cli("node", "list", "--json").stdout)}
    assert listed["node-1"]["storage"]["pool"] == pool and "storage" not in listed["node-2"]

    p = cl.cli("node", "show", "no-such-node", check=False)
    assert p.returncode == 1 and "no node no-such-node" in p.stderr, (p.stdout, p.stderr)
    p = cl.cli("node", "show", check=False)
    assert p.returncode == 2 and "node show NODE" in p.stderr, (p.stdout, p.stderr)


def test_replica_files_count_in_provisioned_and_used(cl):
    """The figures follow the pool's files: a sparse replica data file of
    256 MiB with a little written is 256 MiB provisioned and a few blocks
    used; the capacity does not shrink for what the pool takes."""
    rdir = os.path.join(cl.pool, "replicas", "vol-a", "rep-1")
    os.makedirs(rdir)
    try:
        with open(os.path.join(rdir, "data"), "wb") as f:
            f.truncate(256 * MiB)
            f.seek(100 * MiB)
            f.write(b"x" * 65536)
            os.fsync(f.fileno())
        with open(os.path.join(rdir, "meta"), "wb") as f:
            f.write(b"m" * 4096)
            os.fsync(f.fileno())
        blocks = sum(os.stat(os.path.join(rdir, x)).st_blocks * 512 for x in ("data", "meta"))

        def reported():
            st = node(cl, "node-1")["storage"]
            return st if st["provisioned"] == 256 * MiB and st["used"] == blocks else None

        st = wait_for(reported, 30, what="the pool's figures to follow its files")
        assert st["capacity"] == GiB, st
    finally:
        subprocess.run(["rm", "-rf", os.path.join(cl.pool, "replicas", "vol-a")], check=True)
    wait_for(lambda: node(cl, "node-1")["storage"]["provisioned"] == 0, 30,
             what="the figures to drop with the files")


def test_metrics(cl):
    body = urllib_get(cl, "/metrics")
    lines = [l for l in body.splitlines() if l.startswith("holdfast_pool_bytes{")]
    got = {}
    for l in lines:
        m = re.match(r'holdfast_pool_bytes\{node="([^"]+)",kind="([a-z]+)"\} (\d+)$', l)
        assert m, l
        got[(m.group(1), m.group(2))] = int(m.group(3))
    assert sorted(k for k, _ in got) == ["node-1"] * 4, got  # node-2 has none
    assert got[("node-1", "capacity")] == GiB
    assert got[("node-1", "provisioned")] == 0
    assert got[("node-1", "free")] > 0
    assert "# TYPE holdfast_pool_bytes gauge" in body


def urllib_get(cl, path):
    import urllib.request
    req = urllib.request.Request(cl.url + path, headers=cl._auth())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def test_a_second_agent_on_the_same_pool_is_refused(cl, tmp_path):
    p = run_agent(cl.url, str(tmp_path / "a3"), "--node-id", "node-3", "--storage", cl.pool,
                  env=cl._env())
    assert p.returncode == 1, (p.returncode, p.stderr)
    pid = cl.agent.pid
    assert (f"--storage: the pool {os.path.realpath(cl.pool)} is in use by another holdfast "
            f"agent (pid {pid}): give each agent a pool of its own") in p.stderr, p.stderr
    assert node(cl, "node-3") is None
    # The first one is unharmed.
    assert node(cl, "node-1")["storage"]["capacity"] == GiB


def test_a_pool_over_90_percent_used_raises_an_event(cl, tmp_path):
    pool = tmp_path / "small"
    agent = start_agent(cl, "node-5", str(tmp_path / "a5"), "--storage", f"{pool},size=64M")
    try:
        wait_for(lambda: (node(cl, "node-5") or {}).get("storage"), 30, what="node-5's pool")
        rdir = pool / "replicas" / "v" / "r"
        rdir.mkdir(parents=True)
        with open(rdir / "data", "wb") as f:
            for _ in range(60):
                f.write(b"\1" * MiB)
            os.fsync(f.fileno())
        wait_for(lambda: node(cl, "node-5")["storage"]["used"] >= 60 * MiB, 30,
                 what="node-5's pool to fill")

        def full_event():
            evs = [json.loads(l) for l in cl.cli("events", "--json").stdout.splitlines()]
            return [e for e in evs if e.get("object") == "node-5"
                    and e.get("after") == "storage pool over 90% used"]

        ev = wait_for(full_event, 30, what="the full pool's event")
        assert len(ev) == 1 and re.match(r"^6\d\.\d MiB of 64\.0 MiB used$", ev[0]["why"]), ev
    finally:
        stop(agent)
        stop_volume_processes(str(tmp_path / "a5"))


BAD = [
    ("{pool},size=lots", "--storage: size=lots is not a size (a number of GiB, or with a "
                         "unit: 500M, 10G, 1.5T)"),
    ("{pool},size=10Q", "--storage: size=10Q is not a size"),
    ("{pool},size=1M", "--storage: size=1M is out of range (64M to 1048576T)"),
    ("{pool},size=", "--storage: size= is not a size"),
    ("{pool},sise=1G", "--storage: unknown option \"sise=1G\" (the only one is size=N)"),
    ("{pool},size=1G,size=2G", "--storage: size is given twice"),
    ("/", "--storage: the pool cannot be /"),
    ("", "--storage: \"\" names no directory"),
]


@pytest.mark.parametrize("value,why", BAD)
def test_a_bad_storage_value_is_refused_at_start(tmp_path, value, why):
    pool = str(tmp_path / "pool")
    p = run_agent("http://127.0.0.1:1", str(tmp_path / "data"), "--storage",
                  value.format(pool=pool))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stderr.startswith("holdfast agent: " + why), p.stderr
    assert not os.path.exists(pool) and not os.path.exists(tmp_path / "data")


def test_a_pool_in_the_wrong_place_is_refused_at_start(tmp_path):
    data = tmp_path / "data"
    # Inside the agent's pod volumes: refused before anything is made.
    p = run_agent("http://127.0.0.1:1", str(data), "--node-id", "n", "--storage",
                  str(data / "volumes" / "pool"))
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "--storage: the pool" in p.stderr and "is inside the agent's" in p.stderr, p.stderr
    assert not os.path.exists(data / "volumes" / "pool")
    # A file, not a directory.
    f = tmp_path / "file"
    f.write_text("not a pool\n")
    p = run_agent("http://127.0.0.1:1", str(data), "--node-id", "n", "--storage", str(f))
    assert p.returncode == 1 and f"--storage: cannot create {f}" in p.stderr, p.stderr
    # Another program's directory with a pool.json of its own.
    other = tmp_path / "other"
    other.mkdir()
    (other / "pool.json").write_text('{"mine": true}')
    p = run_agent("http://127.0.0.1:1", str(data), "--node-id", "n", "--storage", str(other))
    assert p.returncode == 1 and "is not a holdfast pool marker" in p.stderr, p.stderr
    assert json.loads((other / "pool.json").read_text()) == {"mine": True}


def test_the_pool_is_kept_across_a_server_restart_and_is_one_nodes(cl, tmp_path):
    """Runs last in the module: it stops node-1's agent."""
    pool = os.path.realpath(cl.pool)
    cl.kill_agent(signal.SIGTERM)
    # Another node cannot take node-1's pool over, even while it is free.
    p = run_agent(cl.url, str(tmp_path / "a4"), "--node-id", "node-4", "--storage", cl.pool,
                  env=cl._env())
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert (f"--storage: the pool {pool} belongs to node node-1 ({pool}/pool.json), not to "
            f"this node node-4") in p.stderr, p.stderr
    # The record holds it: a restarted server shows it before node-1 syncs.
    cl.kill_server()
    cl.start_server()
    n1 = node(cl, "node-1")
    assert n1["storage"]["pool"] == pool and n1["storage"]["capacity"] == GiB, n1
    assert "storage" not in node(cl, "node-2")
    # node-1's agent again, without --storage: it is storage-less now.
    cl.start_agent(extra=("--wait", "1"))
    wait_for(lambda: "storage" not in node(cl, "node-1"), 30, what="node-1 storage-less")
    events = [json.loads(l) for l in cl.cli("events", "--json").stdout.splitlines()]
    after = [e.get("after") for e in events if e.get("object") == "node-1"]
    assert f"storage pool {pool} (capacity 1.0 GiB)" in after, after
    assert "storage-less" in after, after


def test_dev_gives_its_agent_a_pool(tmp_path):
    """`holdfast dev`: its one agent has a pool in DIR/agent/pool whose
    capacity is the filesystem's free space (no size=)."""
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    env = dict(os.environ)
    for k in ("HOLDFAST_TOKEN", "HOLDFAST_ADMIN_TOKEN", "HOLDFAST_ADDR"):
        env.pop(k, None)
    env["HOLDFAST_CONFIG_DIR"] = str(tmp_path / "config")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    data = tmp_path / "d"
    log = open(tmp_path / "dev.log", "ab")
    dev = subprocess.Popen([BIN, "dev", "--data", str(data), "--listen", f"127.0.0.1:{port}"],
                           stdout=log, stderr=log, env=env, start_new_session=True)

    def nodes():
        p = subprocess.run([BIN, "--addr", f"http://127.0.0.1:{port}", "node", "list", "--json"],
                           capture_output=True, text=True, env=env, timeout=30)
        return json.loads(p.stdout) if p.returncode == 0 else None

    try:
        ns = wait_for(lambda: (lambda n: n if n and n[0].get("storage") else None)(nodes()),
                      60, what="dev's agent with its pool")
        st = ns[0]["storage"]
        assert st["pool"] == os.path.realpath(data / "agent" / "pool"), st
        # An empty pool: capacity is what is free (read at the same time).
        assert st["used"] == 0 and st["provisioned"] == 0, st
        assert st["capacity"] == st["free"] > 0, st
        assert json.load(open(data / "agent" / "pool" / "pool.json"))["node"] == ns[0]["id"]
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(5)
        for pid in Cluster.pids_matching(str(tmp_path)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
    assert dev.returncode in (0, -signal.SIGTERM), open(tmp_path / "dev.log").read()[-3000:]
