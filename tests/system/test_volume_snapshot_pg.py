"""A snapshot of PostgreSQL (Debian's) under a write load, cloned into a
new volume for another service: PostgreSQL starts on the clone (crash
recovery from the snapshot) with every transaction committed before the
snapshot was asked for, and the original keeps running and writing."""
import os
import subprocess
import threading

import pytest

from holdfast_harness import Cluster, wait_for, write

SPEC = """
name: {name}
pods:
  db:
    count: 1
    user: postgres
    external-volumes:
      data:
        type: DOCKER
        container-path: pgdata
        driver-name: holdfast
        driver-options: size=256M
    tasks:
      server:
        goal: RUNNING
        cpus: 0.5
        memory: 512
        ports:
          pg: {{port: 0, env-key: PG_PORT}}
        readiness-check:
          cmd: "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_isready -h 127.0.0.1 -p $PG_PORT"
          interval: 0.5
          timeout: 5
        cmd: |
          set -e
          B=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
          if [ ! -f pgdata/db/PG_VERSION ]; then
            $B/initdb -D pgdata/db -U postgres --auth=trust >/dev/null
            sync pgdata/db/PG_VERSION
          fi
          # The volume is this task's alone: a lock file in it is stale.
          # (On a clone or a restored copy it names the source's server,
          # which may be running on this node, in the same PID space.)
          rm -f pgdata/db/postmaster.pid
          exec $B/postgres -D pgdata/db -c listen_addresses=127.0.0.1 -c port=$PG_PORT \\
            -c unix_socket_directories='' -c fsync=on -c synchronous_commit=on
"""


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol-pg")
    c = Cluster(tmp)
    c.start_server()
    c.start_agent(extra=("--storage", os.path.join(str(tmp), "pool") + ",size=2G"))
    try:
        yield c
    finally:
        c.stop()


def port_of(cl, svc):
    p = cl.cli("--service", svc, "task", "exec", "db-0-server", "--", "sh", "-c",
               "echo $PG_PORT")
    return int(p.stdout.strip())


def psql(port, sql, timeout=20):
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                           "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                          capture_output=True, text=True, timeout=timeout)


def test_postgresql_on_a_clone_of_a_snapshot_under_load(cl, tmp_path):
    cl.deploy(write(str(tmp_path / "pg.yml"), SPEC.format(name="pg")), timeout=240)
    port = port_of(cl, "pg")
    r = psql(port, "create table t (id int primary key)")
    assert r.returncode == 0, r.stderr
    committed, stop = [], threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            if psql(port, f"insert into t values ({i})").returncode == 0:
                committed.append(i)

    t = threading.Thread(target=writer)
    t.start()
    try:
        wait_for(lambda: len(committed) > 50, 60, what="commits under way")
        before = list(committed)  # acknowledged before the snapshot was asked
        p = cl.cli("volume", "snapshot", "pg-db-0", "--name", "hot", "--wait",
                   "--timeout", "60")
        assert "ready" in p.stdout, p.stdout + p.stderr
        n = len(committed)
        wait_for(lambda: len(committed) > n + 20, 60, what="the original writing on")
    finally:
        stop.set()
        t.join(60)
    # The clone, for another service that deploys on it.
    p = cl.cli("volume", "clone", "pg-db-0", "hot", "pgcopy-db-0", "--for-service", "pgcopy",
               "--wait", "--timeout", "60")
    assert "ready" in p.stdout, p.stdout + p.stderr
    cl.deploy(write(str(tmp_path / "pgcopy.yml"), SPEC.format(name="pgcopy")), timeout=240)
    cport = port_of(cl, "pgcopy")
    r = wait_for(lambda: (lambda q: q.returncode == 0 and q)(
        psql(cport, "select id from t order by id")), 60, what="PostgreSQL on the clone")
    have = {int(x) for x in r.stdout.split()}
    missing = [i for i in before if i not in have]
    assert not missing, f"committed before the snapshot, missing on the clone: {missing[:20]}"
    assert len(have) < len(committed), (len(have), len(committed))
    # The clone is a database of its own; the original runs on, whole.
    assert psql(cport, "insert into t values (-1)").returncode == 0
    r = psql(port, "select count(*) from t where id > 0")
    assert r.returncode == 0 and int(r.stdout) == len(committed), (r.stdout, len(committed))
    assert psql(port, "select count(*) from t where id = -1").stdout.strip() == "0"
