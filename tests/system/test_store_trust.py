"""The store never lies (issue 11): a full disk, a lost or empty store, a
damaged record, backups and restores, the modes of the store's files, and
one holdfast per data directory. Each test drives the real binary and its
real store file; the damage is made with python's sqlite3 module."""
import json
import os
import random
import signal
import socket
import sqlite3
import stat
import subprocess

import pytest

from holdfast_harness import BIN, Cluster, wait_for, write
from holdfast_harness import pid_alive as alive

SPEC = """
name: {name}
pods:
  p:
    count: {count}
    tasks:
      server:
        goal: RUNNING
        cmd: echo "$TASK_NAME" >> data/starts && sleep 1000
        cpus: 0.1
        memory: 32
        volume: {{path: data, type: ROOT, size: 10}}
        readiness-check: {{cmd: test -s data/starts, interval: 0.3, timeout: 5}}
"""


def spec(tmp_path, name, count=2):
    return write(tmp_path / f"{name}.yml", SPEC.format(name=name, count=count))


def db_path(c):
    return os.path.join(c.server_data, "holdfast.db")


def task_pids(c, svc):
    return {name: c.task_pid(t["id"]) for name, t in c.tasks(svc).items()}


def stop_server(c, sig=signal.SIGTERM):
    c.kill_server(sig)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    c.start()
    try:
        yield c
    finally:
        c.stop()


# ---------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
    """Writes zeros into path until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 512):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_disk_refuses_writes_answers_reads_and_recovers(tmp_path, small_disk):
    c = Cluster(tmp_path)
    c.server_data = os.path.join(small_disk, "server")
    os.makedirs(c.server_data)
    c.start()
    try:
        c.deploy(spec(tmp_path, "full", 2))
        before = c.tasks("full")
        pids = task_pids(c, "full")
        fill(os.path.join(small_disk, "fill"))

        # A write fails with a clear error that names the cause and the file.
        st, body = c.api("POST", "/v1/service/full/pod/p-0/restart")
        assert st == 503, (st, body)
        assert body["error"] == "store-unwritable", body
        assert "disk is full" in body["message"], body
        assert db_path(c) in body["message"], body
        # The CLI says the same and exits 3.
        p = c.cli("-s", "full", "pod", "restart", "p-0", check=False)
        assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
        assert "the store cannot be written" in p.stderr, p.stderr
        # Reads still answer, from what the store holds.
        st, svcs = c.api("GET", "/v1/services")
        assert st == 200 and [s["name"] for s in svcs] == ["full"], (st, svcs)
        assert {n: t["id"] for n, t in c.tasks("full").items()} == \
            {n: t["id"] for n, t in before.items()}
        # A single server never follows itself.
        st, leader = c.api("GET", "/v1/leader")
        assert st == 200 and leader["leading"] is False and leader["leader"] != leader["self"], leader
        # Nothing that was not recorded reached the agent: no task stopped.
        assert all(alive(pid) for pid in pids.values()), pids
        assert c.server.poll() is None, c.server_log()[-2000:]

        # Restarted while the disk is still full (holdfast dev would), it
        # answers the same way: it never follows itself.
        c.kill_server()
        c.start_server()
        st, body = c.api("POST", "/v1/service/full/pod/p-0/restart")
        assert st == 503 and body["error"] == "store-unwritable", (st, body)
        assert "disk is full" in body["message"], body
        st, svcs = c.api("GET", "/v1/services")
        assert st == 200 and [s["name"] for s in svcs] == ["full"], (st, svcs)
        st, leader = c.api("GET", "/v1/leader")
        assert leader["leader"] != leader["self"], leader
        assert all(alive(pid) for pid in pids.values()), pids

        # Space comes back: writes work again, with no restart by hand.
        os.unlink(os.path.join(small_disk, "fill"))
        wait_for(lambda: c.api("POST", "/v1/service/full/pod/p-0/restart")[0] == 200, 30,
                 what="a write to be taken again")
        wait_for(lambda: c.tasks("full")["p-0-server"]["id"] != before["p-0-server"]["id"]
                 and c.tasks("full")["p-0-server"]["status"] == "RUNNING", 60,
                 what="p-0 restarted by the server that leads again")
        assert c.tasks("full")["p-1-server"]["id"] == before["p-1-server"]["id"]
        assert c.server.poll() is None
        log = c.server_log()
        assert "stepping down: the store cannot be written" in log, log[-3000:]
        assert "following the leader" not in log, log[-3000:]
    finally:
        c.stop()


def test_failed_batch_is_never_acted_on(tmp_path, monkeypatch):
    """A tick decides a relaunch, and its batch cannot be written: the
    agent never gets that launch, and the relaunch happens (under a new
    id, recorded first) once the store takes writes again."""
    fault = str(tmp_path / "disk-is-full")
    monkeypatch.setenv("HOLDFAST_STORE_FAULT", f"writes-while={fault},error=full")
    c = Cluster(tmp_path)
    # The relaunch is the server's decision: no restart in place.
    c.server_args = ["--no-restart-in-place"]
    c.start()
    try:
        c.deploy(spec(tmp_path, "batch", 1))
        first = c.tasks("batch")["p-0-server"]["id"]
        write(fault, "")
        # The task dies: the agent reports it, the scheduler decides a
        # relaunch, and the write of that decision fails.
        os.kill(c.task_pid(first), signal.SIGKILL)
        wait_for(lambda: "store write failed" in c.server_log(), 30, what="the failed write")
        st, body = c.api("GET", "/v1/service/batch/pod/status")
        assert st == 200, (st, body)
        # The agent keeps asking; the server never hands out the launch.
        wait_for(lambda: c.agent_log().count("answered 503") >= 1, 30,
                 what="the agent told the store cannot be written")
        launched = lambda: [d for d in os.listdir(os.path.join(c.agent_data, "tasks"))
                            if d.startswith("p-0-server__")]
        assert launched() == [first], launched()
        assert "injected by HOLDFAST_STORE_FAULT" in c.server_log()
        events = [json.loads(line) for line in open(os.path.join(c.server_data, "events.jsonl"))]
        relaunches = [e for e in events if e["kind"] == "task" and e["object"] != first
                      and (e.get("object") or "").startswith("p-0-server__")]
        assert relaunches == [], relaunches
        os.unlink(fault)
        wait_for(lambda: c.tasks("batch")["p-0-server"]["id"] != first
                 and c.tasks("batch")["p-0-server"]["status"] == "RUNNING", 60,
                 what="the relaunch once the store takes writes")
        assert len(launched()) == 2, launched()
        assert c.server.poll() is None
    finally:
        c.stop()


# ---------------------------------------------------------------------------
# A lost or empty store


def lose_store(c, how):
    db = db_path(c)
    if how == "deleted":
        stop_server(c)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
    elif how == "emptied":
        stop_server(c)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        os.truncate(db, 0)
    elif how == "wal-lost":
        stop_server(c, signal.SIGKILL)
        os.unlink(db + "-wal")
        if os.path.exists(db + "-shm"):
            os.unlink(db + "-shm")
        # The state was all in the WAL: the main file alone holds none of it.
        probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            keys = [k for (k,) in probe.execute("SELECT key FROM kv")] \
                if probe.execute("SELECT count(*) FROM sqlite_master WHERE name='kv'").fetchone()[0] else []
        finally:
            probe.close()
        assert "/cluster" not in keys, keys


@pytest.mark.parametrize("how", ["deleted", "emptied", "wal-lost"])
def test_lost_store_does_not_empty_the_cluster(cluster, tmp_path, how):
    cluster.deploy(spec(tmp_path, "keep", 2))
    pids = task_pids(cluster, "keep")
    lose_store(cluster, how)
    cluster.start_server()
    # The agent is refused, says why, and keeps every task.
    nodes = wait_for(lambda: [n for n in cluster.api("GET", "/v1/nodes")[1] if n.get("refused")], 30,
                     what="the agent refused")
    assert [n["id"] for n in nodes] == ["node-1"], nodes
    assert "belongs to cluster" in nodes[0]["refused"] and "holdfast node adopt" in nodes[0]["refused"], nodes
    assert nodes[0]["live_tasks"] == 2, nodes
    wait_for(lambda: "refuses this node" in cluster.agent_log(), 30, what="the agent's log saying why")
    # Refused again on its next sync: still nothing stopped.
    seen = nodes[0]["last_seen"]
    wait_for(lambda: [n for n in cluster.api("GET", "/v1/nodes")[1]
                      if n.get("refused") and n["last_seen"] > seen], 30, what="another refused sync")
    assert all(alive(p) for p in pids.values()), pids
    assert "is not in the desired set" not in cluster.agent_log()
    out = cluster.cli("node", "list").stdout
    assert "refused" in out and "belongs to cluster" in out, out


def test_adopt_takes_the_node_and_stops_what_the_cluster_does_not_know(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "gone", 1))
    pids = task_pids(cluster, "gone")
    lose_store(cluster, "deleted")
    cluster.start_server()
    wait_for(lambda: [n for n in cluster.api("GET", "/v1/nodes")[1] if n.get("refused")], 30,
             what="the agent refused")
    p = cluster.cli("node", "adopt", "node-1", check=False)
    assert p.returncode == 2 and "--yes" in p.stderr, (p.returncode, p.stderr)
    st, body = cluster.api("POST", "/v1/nodes/nobody/adopt")
    assert st == 404, (st, body)
    out = cluster.cli("node", "adopt", "node-1", "--yes").stdout
    assert "adopted" in out, out
    wait_for(lambda: any(n["id"] == "node-1" and n["connected"] and not n.get("refused")
                         for n in cluster.api("GET", "/v1/nodes")[1]), 30, what="the node accepted")
    wait_for(lambda: not any(alive(p) for p in pids.values()), 30, what="the unknown task stopped")
    assert "this node now belongs to cluster" in cluster.agent_log()


# ---------------------------------------------------------------------------
# Backups


def test_backup_during_a_deploy_restores_to_a_server_that_converges(cluster, tmp_path):
    svc = spec(tmp_path, "bk", 3)
    cluster.deploy(svc, wait=False)
    wait_for(lambda: any(t["status"] == "RUNNING" for t in cluster.tasks("bk").values()), 60,
             what="the deploy under way")
    backup = str(tmp_path / "backup.db")
    out = cluster.cli("store", "backup", backup).stdout
    assert "backup of" in out and backup in out, out
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    ok = sqlite3.connect(backup).execute("PRAGMA integrity_check").fetchone()[0]
    assert ok == "ok"
    cluster.wait_plan("bk")
    # The store is lost; the backup comes back in its place.
    lose_store(cluster, "deleted")
    p = cluster.cli("store", "restore", backup, "--data", cluster.server_data, check=False)
    assert p.returncode == 2 and "--yes" in p.stderr, (p.returncode, p.stderr)
    out = cluster.cli("store", "restore", backup, "--data", cluster.server_data, "--yes").stdout
    assert "restored" in out, out
    cluster.start_server()
    cluster.wait_plan("bk", timeout=120)
    wait_for(lambda: all(t["status"] == "RUNNING" for t in cluster.tasks("bk").values())
             and len(cluster.tasks("bk")) == 3, 60, what="every task running")
    # One copy of each task, and nobody refused: the same cluster.
    shims = [p for p in Cluster.pids_matching(os.path.join(cluster.agent_data, "tasks"))
             if b"shim" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(shims) == 3, shims
    assert not any(n.get("refused") for n in cluster.api("GET", "/v1/nodes")[1])
    # What ran when the backup was taken ran on, never started again;
    # what started after it was stopped and started again by the restored
    # state, on the same volume.
    db = sqlite3.connect(backup)
    running = [json.loads(v)["name"] for k, v in db.execute(
        "SELECT key, value FROM kv WHERE key LIKE '/services/bk/instances/%'")
        if any((t.get("current") or {}).get("state") == "RUNNING" for t in json.loads(v)["tasks"])]
    db.close()
    assert running, "the backup was taken with a task running"
    for i in range(3):
        starts = [os.path.join(r, "starts") for r, _, fs in os.walk(cluster.volume_dir("bk", f"p-{i}"))
                  if "starts" in fs]
        assert len(starts) == 1, starts
        n = open(starts[0]).read().count(f"p-{i}-server")
        assert n == 1 if f"p-{i}" in running else n in (1, 2), (i, n, running)


def test_backup_through_the_api_while_the_server_runs_and_offline(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "bk2", 1))
    live = str(tmp_path / "live.db")
    cluster.cli("store", "backup", live)
    keys = dict(sqlite3.connect(live).execute("SELECT key, value FROM kv").fetchall())
    assert "/services/bk2" in keys and "/cluster" in keys, sorted(keys)
    # Opening the store itself needs the server stopped: it says so.
    p = cluster.cli("store", "backup", str(tmp_path / "x.db"), "--data", cluster.server_data, check=False)
    assert p.returncode == 1 and "in use by another holdfast server" in p.stderr, p.stderr
    stop_server(cluster)
    off = str(tmp_path / "off.db")
    cluster.cli("store", "backup", off, "--data", cluster.server_data)
    keys2 = dict(sqlite3.connect(off).execute("SELECT key, value FROM kv").fetchall())
    assert keys2.keys() - {"/leader"} == keys.keys() - {"/leader"}
    # A restore refuses a file that is not a backup, or one a server could not load.
    bad = write(tmp_path / "bad.db", "not a database at all, but long enough " * 200)
    p = cluster.cli("store", "restore", bad, "--data", cluster.server_data, "--yes", check=False)
    assert p.returncode == 1 and "not a holdfast store" in p.stderr, p.stderr
    db = sqlite3.connect(off)
    db.execute("UPDATE kv SET value = CAST('{not json' AS BLOB) WHERE key = '/services/bk2'")
    db.commit()
    db.close()
    p = cluster.cli("store", "restore", off, "--data", cluster.server_data, "--yes", check=False)
    assert p.returncode == 1 and "/services/bk2" in p.stderr and "not valid JSON" in p.stderr, p.stderr
    cluster.start_server()


# ---------------------------------------------------------------------------
# Damaged records


def damage(c, fn):
    stop_server(c)
    db = sqlite3.connect(db_path(c))
    try:
        fn(db)
        db.commit()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def assert_refused_to_lead(c, key, pids):
    wait_for(lambda: f"cannot lead: the store's record {key}" in c.server_log(), 30,
             what="the server refusing to lead")
    st, body = c.api("GET", "/v1/services")
    assert st == 503 and body["error"] == "store-unreadable" and key in body["message"], (st, body)
    st, body = c.api("POST", "/v1/service/x/pod/p-0/restart")
    assert st == 503 and key in body["message"], (st, body)
    # The agent is told too, and stops nothing.
    wait_for(lambda: f"answered 503: the store's record {key}" in c.agent_log(), 30,
             what="the agent told")
    assert all(alive(p) for p in pids.values()), pids
    assert "is not in the desired set" not in c.agent_log()


def test_record_that_is_not_json_is_an_error_not_an_absence(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "bad", 2))
    pids = task_pids(cluster, "bad")
    key = "/services/bad/instances/p-0"
    damage(cluster, lambda db: db.execute(
        "UPDATE kv SET value = CAST('{not json' AS BLOB) WHERE key = ?", (key,)))
    cluster.start_server()
    assert_refused_to_lead(cluster, key, pids)
    assert "not valid JSON" in cluster.server_log()


def test_random_bytes_that_pass_integrity_check_are_an_error(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "rnd", 2))
    pids = task_pids(cluster, "rnd")
    key = "/services/rnd/configs/1"
    rng = random.Random(20)

    def overwrite(db):
        (value,) = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        value = bytearray(value)
        at = len(value) // 2
        value[at:at + 20] = bytes(rng.randrange(256) for _ in range(20))
        with pytest.raises(ValueError):
            json.loads(bytes(value).decode("utf-8"))
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (bytes(value), key))

    damage(cluster, overwrite)
    cluster.start_server()
    assert_refused_to_lead(cluster, key, pids)


def test_record_with_a_wrong_field_or_a_lost_target_is_an_error(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "shape", 1))
    pids = task_pids(cluster, "shape")
    key = "/services/shape/runs/deploy"

    def wrong_type(db):
        (value,) = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        run = json.loads(value)
        run["completed"] = "p-0:[server]"  # a string where a list belongs
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (json.dumps(run).encode(), key))

    damage(cluster, wrong_type)
    cluster.start_server()
    assert_refused_to_lead(cluster, key, pids)
    assert "completed is not an array of strings" in cluster.server_log()

    # Repaired, but now the service's target config is gone.
    def lost_target(db):
        (value,) = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        run = json.loads(value)
        run["completed"] = [run["completed"]]
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (json.dumps(run).encode(), key))
        db.execute("DELETE FROM kv WHERE key = '/services/shape/configs/1'")

    damage(cluster, lost_target)
    cluster.start_server()
    assert_refused_to_lead(cluster, "/services/shape", pids)
    assert "target config 1 is not in the store" in cluster.server_log()


def test_garbage_page_is_unreadable_not_empty(cluster, tmp_path):
    cluster.deploy(spec(tmp_path, "page", 2))
    pids = task_pids(cluster, "page")
    stop_server(cluster)
    db = sqlite3.connect(db_path(cluster))
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'kv'").fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    assert not os.path.exists(db_path(cluster) + "-wal") or os.path.getsize(db_path(cluster) + "-wal") == 0
    with open(db_path(cluster), "r+b") as f:
        f.seek((root - 1) * size)
        good = f.read(size)
        f.seek((root - 1) * size)
        f.write(random.Random(4096).randbytes(size))
    log_from = len(cluster.agent_log())
    cluster.start_server()
    wait_for(lambda: "cannot lead: cannot read the store" in cluster.server_log(), 30,
             what="the server refusing to lead")
    st, body = cluster.api("GET", "/v1/services")
    assert st == 503 and body["error"] == "store-unreadable", (st, body)
    assert "malformed" in body["message"], body
    st, body = cluster.api("GET", "/v1/nodes")
    assert st == 503, (st, body)
    assert all(alive(p) for p in pids.values()), pids
    # Its agent is told why it cannot be served, not that its credential
    # is wrong.
    wait_for(lambda: "cannot be checked now" in cluster.agent_log()[log_from:], 30,
             what="the agent told the server cannot check its credential")
    assert "bearer token is not valid" not in cluster.agent_log()[log_from:]
    # Repaired in place while it runs: it reads the file afresh and leads.
    with open(db_path(cluster), "r+b") as f:
        f.seek((root - 1) * size)
        f.write(good)
    wait_for(lambda: cluster.api("GET", "/v1/services")[0] == 200, 30,
             what="the server to read the repaired store")
    assert [sv["name"] for sv in cluster.api("GET", "/v1/services")[1]] == ["page"]
    assert task_pids(cluster, "page") == pids


# ---------------------------------------------------------------------------
# Modes and locks


def test_store_files_are_private_even_in_a_loose_directory(tmp_path):
    c = Cluster(tmp_path)
    os.chmod(c.server_data, 0o755)
    c.start()
    try:
        c.deploy(spec(tmp_path, "modes", 1))
        assert stat.S_IMODE(os.stat(c.server_data).st_mode) == 0o700
        for name in ("holdfast.db", "holdfast.db-wal", "holdfast.db-shm", "holdfast.db.lock",
                     "events.jsonl", "server.lock"):
            mode = stat.S_IMODE(os.stat(os.path.join(c.server_data, name)).st_mode)
            assert mode == 0o600, (name, oct(mode))
        assert "was readable by others" in c.server_log()
        # An existing store file readable by others is made private.
        stop_server(c)
        os.chmod(os.path.join(c.server_data, "holdfast.db"), 0o644)
        c.start_server()
        mode = stat.S_IMODE(os.stat(os.path.join(c.server_data, "holdfast.db")).st_mode)
        assert mode == 0o600, oct(mode)
    finally:
        c.stop()


def test_second_server_or_agent_on_a_data_directory_exits_at_once(cluster, tmp_path):
    p = subprocess.run([BIN, "server", "--data", cluster.server_data, "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "in use by another holdfast server" in p.stderr, p.stderr
    p = subprocess.run([BIN, "agent", "--server", cluster.url, "--data", cluster.agent_data,
                        "--node-id", "node-1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "in use by another holdfast agent" in p.stderr, p.stderr
    assert cluster.server.poll() is None and cluster.agent.poll() is None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_second_dev_on_a_data_directory_or_port_exits_at_once(tmp_path):
    data = str(tmp_path / "dev")
    port = free_port()
    log = open(tmp_path / "dev.log", "wb")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    first = subprocess.Popen([BIN, "dev", "--data", data, "--listen", f"127.0.0.1:{port}"],
                             stdout=log, stderr=log, env=env, start_new_session=True)
    try:
        wait_for(lambda: os.path.exists(os.path.join(data, "server", "port"))
                 and "registered" in open(tmp_path / "dev.log").read(), 30, what="the first dev")
        p = subprocess.run([BIN, "dev", "--data", data, "--listen", f"127.0.0.1:{free_port()}"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 1 and "in use by another holdfast dev" in p.stderr, p.stderr
        # Another data directory, the same port: the server cannot start,
        # and no agent of it ever joins the first dev's server.
        other = str(tmp_path / "other")
        p = subprocess.run([BIN, "dev", "--data", other, "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 1 and "the server could not start" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(other, "agent", "agent.json"))
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        log.close()
        for pid in Cluster.pids_matching(str(tmp_path)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert first.returncode == 0
