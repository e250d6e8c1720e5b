"""Replicated volumes on several hosts (issue 14's acceptance, on network
namespace hosts): the SDK's external-volumes.yml with repl=2 on three
storage nodes; a writer whose host is killed, its pod running again on a
node holding a replica with every acknowledged record; PostgreSQL the
same; a writer's node cut off (fenced, its copy stopped once back).

Each agent has a storage pool (`--storage`) and runs a replica server on
its host's address; every write of an attached volume goes to its in-sync
replicas before it is acknowledged. Run as root:

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cluster/test_volumes.py
"""
import json
import os

import pytest

from netns import holds_for, wait_for, write

NODE_TIMEOUT = 3  # the harness's server --node-timeout
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDK = os.path.join(REPO, os.pardir, "shared", "sdk-specs")
GIB = 1 << 30


def acked_file(out, host):
    """The acknowledged-records file of the one writer that ran on host."""
    files = [f for f in os.listdir(out) if f.startswith(f"acked.{host}.")]
    assert len(files) <= 1, files
    return os.path.join(out, files[0]) if files else None


def storage_cluster(hf, net, n=3, server_extra=()):
    """A server on "srv" and n agents a1..an, each with a storage pool in
    its host's directory and a zone of its own."""
    hf.start_server(net.add_host("srv"), extra=server_extra)
    agents = []
    for i in range(1, n + 1):
        h = net.add_host(f"a{i}")
        pool = os.path.join(h.dir, "pool")
        agents.append(hf.start_agent(h, attributes={"zone": f"z{i}"},
                                     extra=("--storage", pool + ",size=8G")))
    # Every pool's replica server listens before anything is placed.
    wait_for(lambda: all((hf.node(a.node_id).get("storage") or {}).get("port")
                         for a in agents), 60, what="every node's replica server")
    return agents


def xvols(hf):
    return {v["name"]: v for v in hf.get("/v1/external-volumes")}


def replica_file(hf, v, r):
    return os.path.join(hf.net[r["node"]].dir, "pool", "replicas", v["id"], r["id"], "data")


def test_sdk_external_volumes_repl2_on_three_storage_nodes(hf, net, tmp_path):
    """Acceptance 1: the SDK's spec, unchanged, with repl=2: each instance's
    volume has two replicas on two nodes, in sync, and its task's data is
    on both."""
    storage_cluster(hf, net)
    hf.deploy(os.path.join(SDK, "helloworld", "external-volumes.yml"),
              "--options", os.path.join(SDK, "helloworld-options.json"),
              "-o", "EXTERNAL_VOLUME_DRIVER_NAME=holdfast",
              "-o", "EXTERNAL_VOLUME_DRIVER_OPTIONS=size=1;repl=2", timeout=240)
    vols = xvols(hf)
    pods = {p["name"]: p["node"] for p in hf.pods("hello-world")}
    assert sorted(vols) == sorted(f"hello-world-{p}" for p in pods), (vols, pods)
    for name, v in vols.items():
        inst = name[len("hello-world-"):]
        nodes = [r["node"] for r in v["replicas"]]
        assert len(nodes) == 2 and len(set(nodes)) == 2, v
        assert all(r["state"] == "in_sync" for r in v["replicas"]), v
        assert v["attached"] == pods[inst] and pods[inst] in nodes, (v, pods)
        assert v["repl"] == 2 and v["size"] == GIB and v["formatted"], v
    # The task wrote into its volume; both replicas hold the same bytes
    # (read once the volume is detached, so nothing is in flight).
    out = hf.cli("--service", "hello-world", "task", "exec", "hello-0-server", "--",
                 "cat", "hello-container-path/output").stdout
    assert out == "hello\n", out
    hf.cli("service", "remove", "hello-world", "--wait", "--timeout", "120", timeout=180)
    for name, v in vols.items():
        assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))


WRITER = """
name: {name}
pods:
  app:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        container-path: data
        driver-name: holdfast
        driver-options: size={size};repl={repl}{opts}
    tasks:
      server:
        goal: RUNNING
        cpus: 0.1
        memory: 64
        cmd: |
          set -e
          touch data/log
          # Whole or not at all: the test reads it as soon as it exists.
          cp data/log {out}/.copying.$$
          mv {out}/.copying.$$ {out}/log-at-start.$(hostname).$(date +%s%N)
          i=$(wc -l < data/log)
          while :; do
            i=$((i+1))
            echo "record $i" >> data/log
            sync data/log
            echo "$i" >> {out}/acked.$(hostname).$$
            sleep 0.02
          done
"""


def start_writer(hf, net, tmp_path, records=50, opts="", server_extra=(), size="64M", repl=2):
    """Three storage nodes and the writer (service w, repl=2) with at least
    `records` acknowledged. Returns (out dir, its volume, the writer's
    node, another replica's node, its acknowledged-records file)."""
    storage_cluster(hf, net, server_extra=server_extra)
    out = os.path.join(str(tmp_path), "writer-out")
    os.makedirs(out)
    hf.deploy(write(os.path.join(str(tmp_path), "w.yml"), WRITER.format(name="w", out=out,
                                                                        opts=opts, size=size,
                                                                        repl=repl)))
    v = xvols(hf)["w-app-0"]
    node = hf.pod("w", "app-0")["node"]
    holders = [r["node"] for r in v["replicas"]]
    assert node in holders and len(set(holders)) == repl, v
    peer = next(n for n in holders if n != node)
    acked = wait_for(lambda: acked_file(out, node), 60, what="the writer's first commit")
    wait_for(lambda: len(open(acked).read().split()) >= records, 60,
             what=f"{records} acknowledged records")
    return out, v, node, peer, acked


def records_seen_by(out, host):
    """The record numbers in the log as the copy started on host saw it."""
    wait_for(lambda: [f for f in os.listdir(out) if f.startswith(f"log-at-start.{host}.")],
             30, what=f"the copy on {host}'s view of the log")
    starts = sorted(f for f in os.listdir(out) if f.startswith(f"log-at-start.{host}."))
    lines = open(os.path.join(out, starts[-1])).read().splitlines()
    return {int(r.split()[1]) for r in lines if r.startswith("record ")}


def assert_identical(a, *others):
    for b in others:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x, y = fa.read(1 << 20), fb.read(1 << 20)
                assert x == y, f"replicas {a} and {b} differ"
                if not x:
                    break


def kill_writer_host(hf, net, out, victim, survivor, acked):
    """Kills the writer's host (every process in it: agent, shims, task,
    attach process, replica server; then its link down) and waits for
    the pod on the survivor, which must see every acknowledged record.
    Returns the last record acknowledged before the kill."""
    net[victim].kill()
    net[victim].cut()
    last_acked = int(open(acked).read().split()[-1])
    wait_for(lambda: hf.pod("w", "app-0")["node"] == survivor and
             hf.tasks("w")["app-0-server"]["status"] == "RUNNING", NODE_TIMEOUT + 90,
             what=f"app-0 running again on {survivor}")
    have = records_seen_by(out, survivor)
    missing = [i for i in range(1, last_acked + 1) if i not in have]
    assert not missing, f"acknowledged records lost: {missing[:20]} (last acked {last_acked})"
    return last_acked


def test_writer_survives_the_loss_of_its_host(hf, net, tmp_path):
    """Acceptance 2: a writer appends records with fsync and logs each
    acknowledged one outside the volume. Its host is killed (all its
    processes, its link down): the pod runs again, same instance name, on
    a node holding a replica; every acknowledged record is there; the old
    host, back, does not run the task."""
    out, v, victim, survivor, acked = start_writer(hf, net, tmp_path)
    kill_writer_host(hf, net, out, victim, survivor, acked)
    v = xvols(hf)["w-app-0"]
    states = {r["node"]: r["state"] for r in v["replicas"]}
    assert states[victim] == "down" and states[survivor] == "in_sync", v
    assert v["attached"] == survivor and v["epoch"] >= 2, v

    # The old host comes back: it runs no copy of the task.
    net[victim].heal()
    hf.agents[victim].start()
    holds_for(lambda: [h for h, _ in hf.task_copies("w", "app-0-server")] == [survivor],
              2 * NODE_TIMEOUT, what="one copy of app-0-server, on the survivor")
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)


@pytest.mark.parametrize("repl", [2, 3])
def test_the_old_host_back_is_sent_only_what_it_may_lack(hf, net, tmp_path, repl):
    """Acceptance 4 after a failover: the writer's host is killed and its
    pod fails over; when the host comes back, its replica is not copied
    whole but sent the extents of the old primary's activity log (the
    writes it may not have flushed everywhere) and what the new primary
    wrote since, then every replica is byte-identical. With repl=3 the
    new primary first sends those extents to the third replica, in sync
    all along."""
    out, v, victim, _, acked = start_writer(hf, net, tmp_path, size="1G", repl=repl)
    vol = "w-app-0"
    net[victim].kill()
    net[victim].cut()
    wait_for(lambda: hf.pod("w", "app-0")["node"] != victim and
             hf.tasks("w")["app-0-server"]["status"] == "RUNNING", NODE_TIMEOUT + 90,
             what="app-0 running again on another node")
    survivor = hf.pod("w", "app-0")["node"]
    count = lambda: len(open(acked_file(out, survivor)).read().split())  # noqa: E731
    wait_for(lambda: acked_file(out, survivor) and count() >= 30, 60,
             what="writes on the survivor while the old host is away")
    # New blocks too, far from what the writer touched before.
    hf.cli("--service", "w", "task", "exec", "app-0-server", "--", "sh", "-c",
           "dd if=/dev/urandom of=data/after bs=1M count=24 conv=fsync 2>/dev/null")
    before = hf.metrics()
    p0 = before.get(("holdfast_volume_resync_planned_bytes_total", (("volume", vol),)), 0)
    net[victim].heal()
    hf.agents[victim].start()
    p = hf.cli("volume", "show", vol, "--wait", "--timeout", "120", timeout=180)
    assert f"{repl} wanted, {repl} in sync" in p.stdout, p.stdout
    planned = wait_for(lambda: hf.metrics().get(
        ("holdfast_volume_resync_planned_bytes_total", (("volume", vol),)), 0) - p0 or None,
        30, what="the resync's planned bytes")
    print(f"resync after the failover: {planned:.0f} bytes planned of {v['size']}")
    assert 24 << 20 <= planned < v["size"] / 8, \
        f"{planned} bytes planned: not what was written while it was away, or a whole copy"
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)
    assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))


def holds_text(path, needle):
    """Whether the file holds needle (read in pieces that overlap)."""
    with open(path, "rb") as f:
        tail = b""
        while True:
            chunk = f.read(8 << 20)
            if not chunk:
                return False
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]


def test_an_encrypted_volume_fails_over_with_its_key(hf, net, tmp_path):
    """secure=true with repl=2 (issue 15's encryption): the writer's log is
    plaintext in its task and in neither replica file; its host killed,
    the survivor's attach gets the key from the server, and every
    acknowledged record reads back there; the survivor's replica still
    holds no plaintext."""
    key = write(os.path.join(str(tmp_path), "cluster.key"), os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)
    out, v, victim, survivor, acked = start_writer(
        hf, net, tmp_path, records=20, opts=";secure=true",
        server_extra=("--cluster-key-file", key))
    assert v["secure"] is True, v
    files = {r["node"]: replica_file(hf, v, r) for r in v["replicas"]}
    for node, f in files.items():
        assert not holds_text(f, b"record 1\n"), (node, f)
    last_acked = kill_writer_host(hf, net, out, victim, survivor, acked)
    wait_for(lambda: len(open(acked_file(out, survivor)).read().split()) >= 5, 30,
             what="the writer writing on the survivor")
    assert not holds_text(files[survivor], b"record 1\n")
    assert not holds_text(files[survivor], b"record %d\n" % last_acked)
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)


def test_a_replicated_volume_grows_under_its_writer(hf, net, tmp_path):
    """`holdfast volume resize` on repl=2: both replicas (one on another
    node) grow, then the attached device, while the writer appends; no
    acknowledged record is lost and the task is not restarted."""
    out, v, node, peer, acked = start_writer(hf, net, tmp_path, records=20)
    task = hf.tasks("w")["app-0-server"]["id"]
    hf.cli("volume", "resize", "w-app-0", "192M")
    assert xvols(hf)["w-app-0"]["size"] == 192 << 20
    for r in v["replicas"]:
        f = replica_file(hf, v, r)
        wait_for(lambda: os.path.getsize(f) == 192 << 20, 60, what=f"replica on {r['node']} grown")
    status = os.path.join(hf.agents[node].data, "attach", "w-app-0", "status.json")

    def attach_size():
        try:
            with open(status) as fh:
                return json.load(fh).get("size")
        except (OSError, ValueError):
            return None
    wait_for(lambda: attach_size() == 192 << 20, 60, what="the attached volume grown")
    n = len(open(acked).read().split())
    wait_for(lambda: len(open(acked).read().split()) > n + 20, 60, what="the writer writing on")
    assert hf.tasks("w")["app-0-server"]["id"] == task
    v = xvols(hf)["w-app-0"]
    assert all(r["state"] == "in_sync" for r in v["replicas"]), v
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)


PG = """
name: pg
pods:
  db:
    count: 1
    user: postgres
    external-volumes:
      data:
        type: DOCKER
        container-path: pgdata
        driver-name: holdfast
        driver-options: size=256M;repl=2
    tasks:
      server:
        goal: RUNNING
        cpus: 0.5
        memory: 512
        ports:
          pg: {port: 5432}
        readiness-check:
          cmd: "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_isready -h $MESOS_CONTAINER_IP -p 5432"
          interval: 1
          delay: 0
          timeout: 5
        cmd: |
          set -e
          B=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
          if [ ! -f pgdata/db/PG_VERSION ]; then
            $B/initdb -D pgdata/db -U postgres --auth=trust >/dev/null
            echo "host all all 0.0.0.0/0 trust" >> pgdata/db/pg_hba.conf
            sync pgdata/db/pg_hba.conf  # a crash keeps only what is synced
          fi
          exec $B/postgres -D pgdata/db -c listen_addresses='*' -c port=5432 \\
            -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on
"""


def test_postgresql_commits_survive_the_loss_of_its_host(hf, net, tmp_path):
    """Acceptance 3: PostgreSQL (Debian's) on a repl=2 volume; a client
    commits transactions; its host is killed: PostgreSQL comes back on the
    other replica's node (crash recovery from the replicated volume) and
    every committed transaction is there."""
    storage_cluster(hf, net)
    path = write(os.path.join(str(tmp_path), "pg.yml"), PG)
    hf.deploy(path, timeout=180)
    victim = hf.pod("pg", "db-0")["node"]
    v = xvols(hf)["pg-db-0"]
    survivor = next(r["node"] for r in v["replicas"] if r["node"] != victim)

    def psql(ip, sql, timeout=10):
        return hf.client.run(["psql", "-h", ip, "-p", "5432", "-U", "postgres", "-d", "postgres",
                              "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], timeout=timeout)
    r = psql(net[victim].ip, "create table t (id int primary key, at timestamptz default now())")
    assert r.returncode == 0, r.stderr
    committed = []
    for i in range(1, 301):
        r = psql(net[victim].ip, f"insert into t (id) values ({i})")
        assert r.returncode == 0, r.stderr
        committed.append(i)

    net[victim].kill()
    net[victim].cut()
    wait_for(lambda: hf.pod("pg", "db-0")["node"] == survivor and
             hf.tasks("pg")["db-0-server"]["status"] == "RUNNING", NODE_TIMEOUT + 120,
             what=f"db-0 running again on {survivor}")
    try:
        r = wait_for(lambda: (lambda p: p.returncode == 0 and p)(
            psql(net[survivor].ip, "select count(*), max(id) from t")), 60,
            what="PostgreSQL answering on the survivor")
    except AssertionError:
        print(hf.cli("--service", "pg", "task", "logs", "db-0-server", "--stderr",
                     check=False).stdout[-3000:])
        print(psql(net[survivor].ip, "select 1").stderr)
        raise
    count, top = map(int, r.stdout.strip().split("|"))
    assert (count, top) == (len(committed), committed[-1]), r.stdout
    # It writes on, on one replica (the other is down).
    assert psql(net[survivor].ip, "insert into t (id) values (1000)").returncode == 0
    v = xvols(hf)["pg-db-0"]
    assert {r["node"]: r["state"] for r in v["replicas"]} == {victim: "down", survivor: "in_sync"}, v


def test_partitioned_node_is_fenced_and_stops_its_copy(hf, net, tmp_path):
    """Acceptance 7: the node running the writer is cut off (not killed:
    its task and attach process run on). The pod fails over; the old copy
    gets no acknowledgement from then on (its replica peer is gone, and
    the survivor's replica server knows the newer epoch); every record
    acknowledged anywhere is in the volume the new copy sees; once the
    link is back, the old node stops its copy and detaches. 1 GiB: an XFS
    where ext4 could not grow online (no CAP_SYS_RESOURCE), so the new
    copy mounts the file system's UUID while the cut-off copy, on the
    same kernel, still has it mounted."""
    out, v, victim, survivor, acked = start_writer(hf, net, tmp_path, size="1G")

    net[victim].cut()
    wait_for(lambda: hf.pod("w", "app-0")["node"] == survivor and
             hf.tasks("w")["app-0-server"]["status"] == "RUNNING", NODE_TIMEOUT + 90,
             what=f"app-0 running again on {survivor}")
    have = records_seen_by(out, survivor)
    # The old copy still runs, cut off: whatever it was acknowledged is
    # in the new copy's volume (nothing after the cut was acknowledged),
    # now and after it gave up.
    assert [h for h, _ in hf.task_copies("w", "app-0-server")].count(victim) == 1
    missing = sorted(i for i in {int(x) for x in open(acked).read().split()} if i not in have)
    assert not missing, f"acknowledged records lost: {missing[:20]}"
    v = xvols(hf)["w-app-0"]
    assert v["attached"] == survivor and v["epoch"] >= 2, v
    assert {r["node"]: r["state"] for r in v["replicas"]}[victim] == "down", v
    # The pod's events say it failed over, not that its node came back.
    evs = [json.loads(l) for l in hf.cli("-s", "w", "events", "--json").stdout.splitlines()
           if l.strip()]
    pod = [(e["before"], e["after"], e["why"]) for e in evs
           if e["kind"] == "pod" and e["object"] == "app-0"]
    assert any(a == "failing over" for _, a, _ in pod), pod
    assert not any(a == "node back" for _, a, _ in pod), pod

    net[victim].heal()
    wait_for(lambda: [h for h, _ in hf.task_copies("w", "app-0-server")] == [survivor],
             90, what=f"the old copy on {victim} stopped")
    # Its attach process let go of the volume.
    wait_for(lambda: not os.path.exists(os.path.join(hf.agents[victim].data, "attach", "w-app-0")),
             90, what=f"{victim} detached")
    missing = sorted(i for i in {int(x) for x in open(acked).read().split()} if i not in have)
    assert not missing, f"the old copy was acknowledged records the volume lacks: {missing[:20]}"
    # Whatever the old copy wrote to its own replica while cut off (never
    # acknowledged) is overwritten by the resync: the replicas end equal.
    p = hf.cli("volume", "show", "w-app-0", "--wait", "--timeout", "120", timeout=180)
    assert "2 wanted, 2 in sync" in p.stdout, p.stdout
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)
    assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))


REMOTE = """
name: {name}
pods:
  app:
    count: 1
    placement: '[["hostname", "LIKE", "{host}"]]'
    external-volumes:
      data:
        type: DOCKER
        container-path: data
        driver-name: holdfast
        driver-options: size=64M;repl=2
    tasks:
      server:
        goal: RUNNING
        cpus: 0.1
        memory: 64
        cmd: |
          set -e
          head -c 3000000 /dev/urandom > data/blob
          sync data/blob
          sha256sum < data/blob | cut -d' ' -f1 > {out}/written
          echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
          sha256sum < data/blob | cut -d' ' -f1 > {out}/read.new
          mv {out}/read.new {out}/read
          exec sleep 100000
"""


def test_a_pod_on_a_storage_less_node_uses_its_volume_remotely(hf, net, tmp_path):
    """Acceptance 6: a pod placed on a node without a pool (a constraint
    puts it there) gets its volume's two replicas on the pool nodes and
    reads and writes it over the network."""
    hf.start_server(net.add_host("srv"))
    pools = []
    for i in (1, 2):
        h = net.add_host(f"a{i}")
        pools.append(hf.start_agent(h, extra=("--storage", os.path.join(h.dir, "pool") + ",size=8G")))
    hf.start_agent(net.add_host("bare"))
    wait_for(lambda: all((hf.node(a.node_id).get("storage") or {}).get("port") for a in pools),
             60, what="the pools' replica servers")
    out = os.path.join(str(tmp_path), "remote-out")
    os.makedirs(out)
    path = write(os.path.join(str(tmp_path), "r.yml"), REMOTE.format(name="r", host="bare", out=out))
    hf.deploy(path)
    assert hf.pod("r", "app-0")["node"] == "bare"
    v = xvols(hf)["r-app-0"]
    assert v["attached"] == "bare", v
    assert sorted(r["node"] for r in v["replicas"]) == ["a1", "a2"], v
    assert all(r["state"] == "in_sync" for r in v["replicas"]), v
    wait_for(lambda: os.path.exists(os.path.join(out, "read")), 60, what="the task's read back")
    written = open(os.path.join(out, "written")).read().strip()
    assert written and open(os.path.join(out, "read")).read().strip() == written
    # The bytes are in both pools' replicas (once detached, nothing in flight).
    hf.cli("service", "remove", "r", "--wait", "--timeout", "120", timeout=180)
    assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))


def test_kill_9_of_the_attach_process_and_the_agent_loses_no_acknowledged_write(hf, net, tmp_path):
    """Acceptance 8: kill -9 of the agent under a writer changes nothing
    (the attach process outlives it); kill -9 of the attach process gives
    the task I/O errors, the agent attaches again and the task restarts,
    and every acknowledged record is in the volume."""
    out, _, node, _, acked = start_writer(hf, net, tmp_path, records=30)
    count = lambda: len(open(acked).read().split())  # noqa: E731
    task_id = hf.tasks("w")["app-0-server"]["id"]

    # The agent dies and comes back: the writer never notices.
    hf.agents[node].kill()
    n = count()
    # A few records, not many: the agent must be back well within the
    # server's node timeout (3 s here), or its node is lost and the pod
    # fails over, which is another test.
    wait_for(lambda: count() >= n + 5, 30, what="writes going on without the agent")
    hf.agents[node].start()
    wait_for(lambda: count() >= n + 60, 30, what="writes going on with the agent back")
    assert hf.tasks("w")["app-0-server"]["id"] == task_id

    # The attach process dies: the task fails and runs again on a new one.
    adir = os.path.join(hf.agents[node].data, "attach", "w-app-0")
    pid = int(open(os.path.join(adir, "attach.lock")).read().strip() or 0)
    assert pid > 0
    os.kill(pid, 9)
    wait_for(lambda: hf.tasks("w")["app-0-server"]["id"] != task_id and
             hf.tasks("w")["app-0-server"]["status"] == "RUNNING", 120,
             what="the task running again on a new attachment")
    wait_for(lambda: len([f for f in os.listdir(out) if f.startswith("log-at-start.")]) >= 2,
             30, what="the restarted copy's view of the log")
    have = records_seen_by(out, node)
    # The first writer's file: it acknowledged nothing after its volume
    # went away (its fsync failed and it exited).
    missing = sorted(i for i in map(int, open(acked).read().split()) if i not in have)
    assert not missing, f"acknowledged records lost: {missing[:20]}"


def metric(hf, name, **labels):
    return hf.metrics().get((name, tuple(sorted(labels.items()))))


def test_a_replica_cut_off_is_dropped_then_resynced_when_back(hf, net, tmp_path):
    """Acceptance 4: the host of the volume's other replica is cut off; the
    writer's writes go on once the server took that replica out of the
    in-sync set (down), the regions they write kept as what it misses
    (holdfast_volume_missed_bytes); healed, the replica is sent those
    regions (resyncing) while the writer writes on, and is in sync again:
    the bytes sent (holdfast_volume_resync_sent_bytes_total) are at most
    1.1 x the regions dirtied (holdfast_volume_resync_planned_bytes_total,
    itself between what was missed at the heal and that plus what was
    written since); after a detach both replicas are byte-identical."""
    out, v, node, peer, acked = start_writer(hf, net, tmp_path, records=30)
    count = lambda: len(open(acked).read().split())  # noqa: E731
    rep = next(r["id"] for r in v["replicas"] if r["node"] == peer)
    vol = "w-app-0"

    net[peer].cut()
    wait_for(lambda: {r["node"]: r["state"] for r in xvols(hf)[vol]["replicas"]}[peer]
             == "down", NODE_TIMEOUT + 60, what=f"{peer}'s replica down")
    n = count()
    wait_for(lambda: count() >= n + 30, 60, what="writes going on without the peer")
    states = {r["node"]: r["state"] for r in xvols(hf)[vol]["replicas"]}
    assert states == {node: "in_sync", peer: "down"}, states
    assert hf.tasks("w")["app-0-server"]["status"] == "RUNNING"
    missed = wait_for(lambda: metric(hf, "holdfast_volume_missed_bytes", volume=vol,
                                     replica=rep), 30, what="the regions the peer missed")
    before = hf.metrics()
    p0, s0, w0 = (before.get((f"holdfast_volume_{k}_total", (("volume", vol),)), 0)
                  for k in ("resync_planned_bytes", "resync_sent_bytes", "written_bytes"))
    # The API shows it too: the replica's missed bytes, the volume's io.
    shown = hf.get(f"/v1/external-volumes/{vol}")
    assert next(r for r in shown["replicas"] if r["id"] == rep)["missed"] >= missed, shown
    assert shown["io"]["written"] > 0, shown
    out = hf.cli("volume", "show", vol).stdout
    assert "down, missed " in out and " written, " in out, out

    net[peer].heal()
    # volume show --wait draws the replicas' states until all are in sync.
    p = hf.cli("volume", "show", vol, "--wait", "--timeout", "120", timeout=180)
    assert "2 wanted, 2 in sync" in p.stdout, p.stdout
    assert f"{peer} down" in p.stderr or f"{peer} resyncing" in p.stderr, p.stderr
    assert {r["node"]: r["state"] for r in xvols(hf)[vol]["replicas"]}[peer] == "in_sync"
    after = wait_for(lambda: (lambda m: m if m.get((
        "holdfast_volume_missed_bytes", (("replica", rep), ("volume", vol)))) == 0 else None)(
            hf.metrics()), 30, what="the report after the resync")
    planned = after[("holdfast_volume_resync_planned_bytes_total", (("volume", vol),))] - p0
    sent = after[("holdfast_volume_resync_sent_bytes_total", (("volume", vol),))] - s0
    written = after[("holdfast_volume_written_bytes_total", (("volume", vol),))] - w0
    print(f"resync: missed {missed:.0f} at the heal, planned {planned:.0f}, sent {sent:.0f}, "
          f"written meanwhile {written:.0f} bytes")
    assert missed <= planned <= missed + written, (missed, planned, written)
    assert 0 < sent <= 1.1 * planned, (sent, planned)
    assert planned < v["size"] / 4, f"a whole copy ({planned} bytes), not the regions missed"
    # The writes' latency histogram: cumulative buckets ending in +Inf.
    inf = after[("holdfast_volume_write_seconds_bucket", (("le", "+Inf"), ("volume", vol)))]
    assert inf == after[("holdfast_volume_write_seconds_count", (("volume", vol),))] > 0
    assert after[("holdfast_volume_write_seconds_bucket", (("le", "0.001"), ("volume", vol)))] <= inf
    n = count()
    wait_for(lambda: count() >= n + 30, 60, what="writes going on with both replicas")
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)
    assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))


def test_decommissioned_node_has_its_replica_rebuilt_elsewhere(hf, net, tmp_path):
    """Acceptance 5: decommission a node holding a replica (not the pod's):
    a new replica is made on the third node and copied to while the writer
    writes on; once it is in sync the old one is given up and deleted from
    its pool; repl=2 is restored and the replicas are identical."""
    out, v, node, peer, acked = start_writer(hf, net, tmp_path, records=30)
    count = lambda: len(open(acked).read().split())  # noqa: E731
    third = ({"a1", "a2", "a3"} - {node, peer}).pop()
    old = next(r for r in v["replicas"] if r["node"] == peer)

    hf.cli("node", "decommission", peer)

    def restored():
        reps = {r["node"]: r["state"] for r in xvols(hf)["w-app-0"]["replicas"]}
        return reps.get(node) == "in_sync" and reps.get(third) == "in_sync" and \
            peer not in reps and reps
    wait_for(restored, 120, what=f"repl=2 restored on {node} and {third}")
    # The given-up replica's files leave the decommissioned node's pool.
    wait_for(lambda: not os.path.exists(replica_file(hf, v, old)), 60,
             what=f"{peer}'s old replica deleted")
    n = count()
    wait_for(lambda: count() >= n + 30, 60, what="writes going on")
    assert hf.pod("w", "app-0")["node"] == node
    v = xvols(hf)["w-app-0"]
    hf.cli("service", "remove", "w", "--wait", "--timeout", "120", timeout=180)
    assert_identical(*(replica_file(hf, v, r) for r in v["replicas"]))
