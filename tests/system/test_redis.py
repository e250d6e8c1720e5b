"""examples/redis.yml through the real binary: a real redis-server primary and
two replicas under holdfast, replication, crash recovery of each redis
process, restarts of the server and the agent, and the backup/restore round
trip through `holdfast plan start`.

redis-server and redis-cli come from Debian's packages (scripts/setup.sh
installs them); without them this test fails rather than skips."""
import os
import shutil
import signal
import subprocess
import time

import pytest

from holdfast_harness import REPO, Cluster, free_port_block, wait_for

SPEC = os.path.join(REPO, "examples", "redis.yml")
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
TIMEOUT = 180


def redis(port, *args, check=True):
    p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                       capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"redis-cli -p {port} {' '.join(args)}: {p.returncode} {p.stderr}")
    return p.stdout.strip()


def redis_pipe(port, commands):
    """Sends one command per line (redis-cli's non-interactive mode)."""
    p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port)],
                       input="".join(c + "\n" for c in commands),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def info(port, section):
    try:
        out = redis(port, "info", section, check=False)
    except subprocess.TimeoutExpired:
        return {}
    return dict(l.split(":", 1) for l in out.splitlines() if ":" in l and not l.startswith("#"))


def write_keys(port, prefix, n):
    keys = {f"{prefix}:{i}": f"value-{prefix}-{i}" for i in range(n)}
    out = redis_pipe(port, [f"SET {k} {v}" for k, v in keys.items()])
    assert out == ["OK"] * n, out[:5]
    return keys


def has_keys(port, keys):
    try:
        out = redis(port, "mget", *keys, check=False).splitlines()
    except subprocess.TimeoutExpired:
        return False
    return out == list(keys.values())


def wait_keys(port, keys, what):
    wait_for(lambda: has_keys(port, keys), TIMEOUT, interval=0.2, what=f"{len(keys)} keys on {what}")


@pytest.fixture
def cluster(tmp_path):
    # A missing redis is a broken test machine, not a reason to skip.
    if not os.access(REDIS_SERVER, os.X_OK) or not os.access(REDIS_CLI, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} or redis-cli is missing: run scripts/setup.sh "
                    "(it installs redis-server and redis-tools)")
    base = free_port_block(24)
    c = Cluster(tmp_path)
    c.primary_port = base
    # Dynamic ports (the replicas', the restore's) from the same free block.
    c.agent_extra = ("--resources", f"ports={base + 1}-{base + 23}")
    c.start_server()
    c.start_agent(c.agent_extra)
    try:
        yield c
    finally:
        c.stop()


class Redis:
    """The deployed service as seen from the test."""

    def __init__(self, cluster):
        self.c = cluster

    def instances(self):
        return ["primary-0", "replica-0", "replica-1"]

    def port(self, instance):
        if instance == "primary-0":
            return self.c.primary_port
        st, body = self.c.api("GET", f"/v1/service/redis/pod/{instance}/info")
        assert st == 200, body
        return int(body["ports"]["redis"])

    def replica_ports(self):
        return [self.port(i) for i in self.instances() if i.startswith("replica")]

    def task(self, instance):
        return self.c.tasks("redis")[f"{instance}-server"]

    def pid(self, instance):
        """The redis-server process of an instance (the task's process:
        the spec execs redis-server), from the task's status.json."""
        pid = self.c.task_pid(self.task(instance)["id"])
        assert pid, instance
        comm = open(f"/proc/{pid}/comm").read().strip()
        assert comm.startswith("redis-server"), (instance, pid, comm)
        return pid

    def pids(self):
        return {i: self.pid(i) for i in self.instances()}

    def wait_running(self, instance, not_id=None, before=None):
        """before: the task as it was; it must have run again since."""
        def ok():
            t = self.task(instance)
            return (t["status"] == "RUNNING" and t["id"] != not_id and
                    (before is None or self.c.restarted("redis", f"{instance}-server", before)) and
                    redis(self.port(instance), "ping", check=False) == "PONG")
        wait_for(ok, TIMEOUT, interval=0.2, what=f"{instance} running again")

    def wait_replicas_linked(self):
        for p in self.replica_ports():
            wait_for(lambda: info(p, "replication").get("master_link_status") == "up",
                     TIMEOUT, interval=0.2, what=f"replica on {p} linked to the primary")

    def wait_everywhere(self, keys, what):
        wait_keys(self.c.primary_port, keys, f"the primary ({what})")
        for i in self.instances()[1:]:
            wait_keys(self.port(i), keys, f"{i} ({what})")

    def kill9(self, instance):
        t = self.task(instance)
        pid = self.pid(instance)
        os.kill(pid, signal.SIGKILL)
        self.wait_running(instance, before=t)
        assert self.pid(instance) != pid
        return t["id"]


def test_redis_replication_recovery_backup_restore(cluster, tmp_path):
    c = cluster
    r = Redis(c)
    p = c.deploy(SPEC, "-o", "REPLICAS=2", "-o", f"PRIMARY_PORT={c.primary_port}", timeout=TIMEOUT)
    assert "deploy COMPLETE" in p.stdout, p.stdout
    plan = c.plan("redis")
    assert [s["name"] for ph in plan["phases"] for s in ph["steps"]] == [
        "primary-0:[server]", "replica-0:[server]", "replica-1:[server]"]
    assert sorted(c.tasks("redis")) == ["primary-0-server", "replica-0-server", "replica-1-server"]
    primary = c.primary_port
    assert info(primary, "replication")["role"] == "master"
    rports = r.replica_ports()
    assert len(set(rports + [primary])) == 3
    for rp in rports:
        rep = info(rp, "replication")
        assert rep["role"] == "slave" and rep["master_port"] == str(primary), rep
        assert rep["master_link_status"] == "up"
        assert redis(rp, "config", "get", "appendonly").splitlines()[1] == "yes"
    # The data lives on each instance's persistent volume.
    for inst in r.instances():
        vol = c.volume_dir("redis", inst)
        assert any("appendonlydir" in dirs for _, dirs, _ in os.walk(vol)), (inst, vol)

    # Writes to the primary reach every replica; replicas refuse writes.
    keys = write_keys(primary, "a", 200)
    r.wait_everywhere(keys, "after deploy")
    assert "READONLY" in redis(rports[0], "set", "x", "y", check=False)

    # kill -9 of the primary's redis: holdfast restarts it on the same
    # volume, the AOF brings every key back, the replicas reconnect.
    r.kill9("primary-0")
    assert has_keys(primary, keys), "keys lost by the primary's restart"
    assert info(primary, "replication")["role"] == "master"
    r.wait_replicas_linked()
    more = write_keys(primary, "b", 50)
    keys.update(more)
    r.wait_everywhere(keys, "after the primary's kill -9")

    # kill -9 of a replica's redis: same.
    other_pids = {i: r.pid(i) for i in ("primary-0", "replica-1")}
    r.kill9("replica-0")
    wait_keys(r.port("replica-0"), keys, "replica-0 after its kill -9")
    assert {i: r.pid(i) for i in ("primary-0", "replica-1")} == other_pids
    more = write_keys(primary, "c", 50)
    keys.update(more)
    r.wait_everywhere(keys, "after replica-0's kill -9")

    # kill -9 of holdfast's server, then of its agent: no redis restarts.
    ids = {n: t["id"] for n, t in c.tasks("redis").items()}
    pids = r.pids()
    c.kill_server()
    c.start_server()
    c.kill_agent()
    for pid in pids.values():
        os.kill(pid, 0)  # alive without the agent
    c.start_agent(c.agent_extra)
    time.sleep(3)  # give a wrong restart the chance to happen
    assert {n: t["id"] for n, t in c.tasks("redis").items()} == ids
    assert r.pids() == pids
    assert all(t["status"] == "RUNNING" for t in c.tasks("redis").values())
    r.wait_everywhere(keys, "after server and agent restarts")
    more = write_keys(primary, "d", 50)
    keys.update(more)
    r.wait_everywhere(keys, "written after server and agent restarts")

    # Backup: every instance's fresh snapshot under BACKUP_DIR/<instance>/.
    backup_dir = str(tmp_path / "backups" / "monday")
    p = c.cli("-s", "redis", "plan", "start", "backup", "-p", f"BACKUP_DIR={backup_dir}",
              "--wait", "--timeout", str(TIMEOUT), timeout=TIMEOUT + 30)
    assert c.plan("redis", "backup")["status"] == "COMPLETE", p.stdout
    for inst in r.instances():
        rdb = os.path.join(backup_dir, inst, "dump.rdb")
        assert os.path.getsize(rdb) > 0, rdb
        subprocess.run(["redis-check-rdb", rdb], check=True, capture_output=True)
        assert "db0:keys=350," in open(os.path.join(backup_dir, inst, "backup.info")).read()
    assert r.pids() == pids, "the backup restarted a redis"

    # A key written after the backup, then everything flushed.
    redis(primary, "set", "after-backup", "1")
    assert redis(primary, "flushall") == "OK"
    for rp in rports:
        wait_for(lambda: redis(rp, "dbsize") == "0", TIMEOUT, interval=0.2, what="flush replicated")

    # Restore: the primary holds exactly the backup again, and so do the
    # replicas; no redis process was restarted for it.
    p = c.cli("-s", "redis", "plan", "start", "restore", "-p", f"BACKUP_DIR={backup_dir}",
              "--wait", "--timeout", str(TIMEOUT), timeout=TIMEOUT + 30)
    assert c.plan("redis", "restore")["status"] == "COMPLETE", p.stdout
    assert has_keys(primary, keys)
    assert redis(primary, "dbsize") == str(len(keys))
    assert redis(primary, "exists", "after-backup") == "0"
    assert info(primary, "replication")["role"] == "master"
    r.wait_everywhere(keys, "after the restore")
    for rp in rports:
        wait_for(lambda: redis(rp, "dbsize") == str(len(keys)), TIMEOUT, interval=0.2,
                 what="replica dbsize after the restore")
    assert r.pids() == pids, "the restore restarted a redis"

    # The restore is durable: the primary's AOF holds the restored data, so a
    # crash right after it loses nothing; and the primary takes writes.
    r.kill9("primary-0")
    assert has_keys(primary, keys), "restored keys lost by a restart: AOF not rewritten"
    assert redis(primary, "exists", "after-backup") == "0"
    more = write_keys(primary, "e", 10)
    keys.update(more)
    r.wait_replicas_linked()
    r.wait_everywhere(keys, "written after the restore")

    # The plans can run again with other parameters (FINISH tasks rerun).
    backup2 = str(tmp_path / "backups" / "tuesday")
    c.cli("-s", "redis", "plan", "start", "backup", "-p", f"BACKUP_DIR={backup2}",
          "--wait", "--timeout", str(TIMEOUT), timeout=TIMEOUT + 30)
    for inst in r.instances():
        assert f"db0:keys={len(keys)}," in open(os.path.join(backup2, inst, "backup.info")).read()


def test_failing_backup_leaves_redis_alone(cluster):
    """A backup started without BACKUP_DIR fails: holdfast retries the
    failed FINISH task with backoff a few times, then the custom plan ends
    in ERROR (so `--wait` exits non-zero). The task's stderr says why, and
    the redis servers are never touched: the sidecars are non-essential.
    `plan stop` ends the plan."""
    c = cluster
    r = Redis(c)
    c.deploy(SPEC, "-o", "REPLICAS=2", "-o", f"PRIMARY_PORT={c.primary_port}", timeout=TIMEOUT)
    ids = {n: t["id"] for n, t in c.tasks("redis").items()}
    pids = r.pids()
    p = c.cli("-s", "redis", "plan", "start", "backup", "--wait", "--timeout", "60",
              check=False, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert c.plan("redis", "backup")["status"] == "ERROR"
    tasks_dir = os.path.join(c.agent_data, "tasks")
    errs = [open(os.path.join(tasks_dir, d, "sandbox", "stderr")).read()
            for d in os.listdir(tasks_dir) if d.startswith("primary-0-backup__")
            and os.path.exists(os.path.join(tasks_dir, d, "sandbox", "stderr"))]
    assert any("no BACKUP_DIR" in e for e in errs), errs
    c.cli("-s", "redis", "plan", "stop", "backup")
    time.sleep(2)
    assert r.pids() == pids
    servers = {n: t for n, t in c.tasks("redis").items() if n.endswith("-server")}
    assert {n: t["id"] for n, t in servers.items()} == ids
    assert all(t["status"] == "RUNNING" and t["restarts"] == 0 for t in servers.values())


def test_scale_replicas_under_write_load(cluster):
    """Issue 5: scale replicas 2 -> 4 -> 1 with `service update` while a
    client keeps writing to the primary. Every write the primary
    acknowledged is still there afterwards, and every remaining replica
    catches up with all of them."""
    import threading

    c = cluster
    r = Redis(c)
    c.deploy(SPEC, "-o", "REPLICAS=2", "-o", f"PRIMARY_PORT={c.primary_port}", timeout=TIMEOUT)
    r.wait_replicas_linked()
    acked = {}
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            batch = {f"load:{i + k}": f"v{i + k}" for k in range(50)}
            try:
                out = redis_pipe(c.primary_port, [f"SET {k} {v}" for k, v in batch.items()])
            except Exception as e:  # a refused write is not acknowledged
                errors.append(repr(e))
                time.sleep(0.1)
                continue
            for (k, v), o in zip(batch.items(), out):
                if o == "OK":
                    acked[k] = v
            i += 50
            time.sleep(0.02)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        for n in (4, 1):
            c.cli("service", "update", "redis", "-f", SPEC, "-o", f"REPLICAS={n}",
                  "-o", f"PRIMARY_PORT={c.primary_port}", "--wait", "--timeout", str(TIMEOUT),
                  timeout=TIMEOUT + 60)
            wait_for(lambda: sorted(p["name"] for p in c.pods("redis")) ==
                     ["primary-0"] + [f"replica-{i}" for i in range(n)],
                     TIMEOUT, what=f"{n} replicas")
            time.sleep(1)
    finally:
        stop.set()
        t.join(60)
    assert len(acked) > 500, (len(acked), errors[:3])
    keys = dict(acked)
    # Nothing acknowledged was lost on the primary ...
    for chunk in range(0, len(keys), 500):
        part = dict(list(keys.items())[chunk:chunk + 500])
        assert has_keys(c.primary_port, part), "acknowledged writes missing on the primary"
    # ... and the one remaining replica has caught up with all of it.
    port = r.port("replica-0")
    for chunk in range(0, len(keys), 500):
        part = dict(list(keys.items())[chunk:chunk + 500])
        wait_keys(port, part, "replica-0 after scaling")
    # The primary never restarted along the way.
    assert c.tasks("redis")["primary-0-server"]["restarts"] == 0
