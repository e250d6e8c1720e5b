"""Replication driven by two real agents (docs/protocol.md, "Volumes"):
an agent with a pool keeps the node's replica server (holdfast-volume
serve) running for the replicas its sync's `replicas` list, and reports
its port as storage.port; an agent whose attachment has remotes passes
them, its node id and the ticket to its attach process, whose writes then
reach the other node's replica. Both agents run on loopback with data
directories and pools of their own, each driven by a fake server of its
own (test_agent's)."""
import filecmp
import hashlib
import hmac
import json
import os
import signal
import subprocess

import pytest

from test_agent import FAST, Agent, alive, finish, read, wait_for
from test_agent_attach import SIZE, VolServer, attach_pid, ext_order, wait_volume

VID = "0123456789abcdef"
KEY = "3c" * 32
VOLUME = "svc-pod-0"


def ticket(key_hex, vid, epoch, node):
    """src/volume/ticket.h: HMAC-SHA256(K_vol, "attach" 0 id 0 epoch 0 node)."""
    msg = b"attach\0" + vid.encode() + b"\0" + str(epoch).encode() + b"\0" + node.encode()
    return hmac.new(bytes.fromhex(key_hex), msg, hashlib.sha256).hexdigest()


class ServeServer(VolServer):
    """The fake server with the pool's held replicas, and the node info
    of the last sync."""

    def __init__(self):
        self.replicas = []
        self.info = {}
        super().__init__()

    def sync(self, body):
        with self.cond:
            if body.get("info"):
                self.info = body["info"]
        out = super().sync(body)
        with self.cond:
            out["replicas"] = list(self.replicas)
        return out

    def set_replicas(self, replicas, delete_replicas=()):
        with self.cond:
            self.replicas = list(replicas)
            self.delete_replicas = list(delete_replicas)
            self.generation += 1
            self.cond.notify_all()

    def storage_port(self):
        with self.cond:
            return (self.info.get("storage") or {}).get("port", 0)


@pytest.fixture
def servers():
    a, b = ServeServer(), ServeServer()
    yield a, b
    a.close()
    b.close()


def held(replica="rb"):
    return {"volume": VOLUME, "id": VID, "replica": replica, "key": KEY, "size": SIZE}


def remote_attachment(epoch, port, tick, fmt=True):
    return {"volume": VOLUME, "id": VID, "replica": "ra", "epoch": epoch, "size": SIZE,
            "format": fmt, "uid": 0, "gid": 0,
            "remotes": [{"replica": "rb", "node": "node-b", "address": "127.0.0.1",
                         "port": port}],
            "ticket": tick}


def read_json(path):
    try:
        return json.loads(read(path))
    except (OSError, ValueError):
        return {}


def serve_pid(data):
    try:
        pid = int(read(data / "vserve" / "serve.lock").strip())
    except (OSError, ValueError):
        return 0
    return pid if alive(pid) else 0


def test_two_agents_replicate_a_volume(tmp_path, servers):
    sa, sb = servers
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pool_a, pool_b = tmp_path / "a" / "pool", tmp_path / "b" / "pool"
    b = Agent(tmp_path / "b", sb, [*FAST, "--node-id", "node-b", "--storage", str(pool_b)])
    a = Agent(tmp_path / "a", sa, [*FAST, "--node-id", "node-a", "--storage", str(pool_a)])
    try:
        # B holds a replica: its replica server serves it, on the port the
        # node reports.
        sb.set_replicas([held()])
        b.start()
        port = wait_for(sb.storage_port, "node-b's storage.port", 60)
        assert port > 0
        st = wait_for(lambda: (lambda s: s if s.get("served") else None)(
            read_json(b.data / "vserve" / "status.json")), "the replica served")
        assert st["served"] == [{"id": VID, "replica": "rb"}] and st["port"] == port, st
        rb = pool_b / "replicas" / VID / "rb"
        assert (rb / "data").stat().st_size == SIZE and (rb / "meta").exists()
        conf = b.data / "vserve" / "serve.json"
        assert conf.stat().st_mode & 0o777 == 0o600
        assert json.loads(read(conf))["listen"] == "127.0.0.1:0"
        # kill -9 of agent B: its replica server serves on, and the new
        # agent takes it over as it is (no reload: the set never empties).
        b.kill9()
        n = sb.count()
        b.start()
        wait_for(lambda: sb.count() > n + 2, "syncs of the new agent B")
        wait_for(lambda: sb.storage_port() == port, "the port reported again")
        st2 = read_json(b.data / "vserve" / "status.json")
        assert (st2["pid"], st2["generation"], st2["served"]) == \
            (st["pid"], st["generation"], st["served"]), (st, st2)

        # A attaches the volume with its own replica and B's as a remote;
        # its task writes and fsyncs a file on it.
        a.start()
        t1 = "pod-0-server__rep1"
        sa.set_volumes([remote_attachment(1, port, ticket(KEY, VID, 1, "node-a"))],
                       [ext_order(t1, 1, "head -c 3000000 /dev/urandom > data/blob && "
                                         "sync data/blob && sha256sum < data/blob > sum.new && mv sum.new sum && "
                                         "exec sleep 1000")])
        rep = wait_volume(sa, lambda v: v["state"] in ("ready", "failed"), "A's volume")
        assert rep["state"] == "ready", rep
        conf_a = json.loads(read(a.data / "attach" / VOLUME / "attach.json"))
        assert conf_a["node"] == "node-a" and conf_a["remotes"] == [
            {"address": "127.0.0.1", "port": port, "replica": "rb", "node": "node-b"}], conf_a
        assert conf_a["ticket"] == ticket(KEY, VID, 1, "node-a"), conf_a
        sa.wait_state(t1, "running", timeout=60)
        digest = wait_for(lambda: (a.sandbox(t1) / "sum").exists() and
                          read(a.sandbox(t1) / "sum").split()[0], "the task's write")
        # Detached (not wanted any more): A's replica and B's are the same
        # bytes, and B's holds the file.
        pid = attach_pid(a.data)
        sa.set_volumes([], [])
        wait_for(lambda: not alive(pid), "A's attach process to detach", 60)
        ra = pool_a / "replicas" / VID / "ra" / "data"
        assert filecmp.cmp(ra, rb / "data", shallow=False)
        out = subprocess.run(["debugfs", "-R", "cat /blob", str(rb / "data")],
                             capture_output=True)
        assert hashlib.sha256(out.stdout).hexdigest() == digest

        # A wrong ticket: the attach fails, saying why.
        sa.set_volumes([remote_attachment(2, port, "00" * 32, fmt=False)], [])
        rep = wait_volume(sa, lambda v: v["state"] == "failed", "the refusal")
        assert "ticket" in rep["message"] and "rb" in rep["message"], rep
        sa.set_volumes([], [])

        # B's replica server is started again when it dies.
        old = serve_pid(b.data)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: serve_pid(b.data) not in (0, old), "a new replica server", 60)
        wait_for(lambda: sb.storage_port() > 0 and
                 read_json(b.data / "vserve" / "status.json").get("pid") == serve_pid(b.data),
                 "the new server's port reported", 60)

        # Not held any more and deleted: dropped from the server, then gone.
        sb.set_replicas([], delete_replicas=[{"id": VID, "replica": "rb"}])
        wait_for(lambda: "rb" in sb.deleted_replicas, "the deletion reported", 60)
        assert not rb.exists()
        assert read_json(b.data / "vserve" / "status.json")["served"] == []
        # The key is in serve.json only: never in a log.
        for log in (a.log(), b.log(), read(b.data / "vserve" / "serve.log")):
            assert KEY not in log
    finally:
        try:
            finish(a, sa, tmp_path / "a")
        finally:
            finish(b, sb, tmp_path / "b")


def test_a_node_without_pool_attaches_from_remotes_alone(tmp_path, servers):
    """"replica": null: a storage-less node serves the volume from the
    other node's replica (no pool needed, no replica server of its own),
    and what its task writes is on that replica."""
    sa, sb = servers
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    pool_b = tmp_path / "b" / "pool"
    b = Agent(tmp_path / "b", sb, [*FAST, "--node-id", "node-b", "--storage", str(pool_b)])
    a = Agent(tmp_path / "a", sa, [*FAST, "--node-id", "node-a"])
    try:
        sb.set_replicas([held()])
        b.start()
        port = wait_for(sb.storage_port, "node-b's storage.port", 60)
        a.start()
        att = dict(remote_attachment(1, port, ticket(KEY, VID, 1, "node-a")), replica=None)
        t1 = "pod-0-server__less1"
        sa.set_volumes([att], [ext_order(t1, 1, "echo remote-only > data/x && sync data/x && "
                                                "touch done && exec sleep 1000")])
        rep = wait_volume(sa, lambda v: v["state"] in ("ready", "failed"), "A's volume")
        assert rep["state"] == "ready", rep
        assert json.loads(read(a.data / "attach" / VOLUME / "attach.json"))["replica"] is None
        wait_for(lambda: (a.sandbox(t1) / "done").exists(), "the task's write", 60)
        assert not (a.data / "vserve").exists() and sa.storage_port() == 0
        pid = attach_pid(a.data)
        sa.set_volumes([], [])
        wait_for(lambda: not alive(pid), "A's attach process to detach", 60)
        out = subprocess.run(["debugfs", "-R", "cat /x", str(pool_b / "replicas" / VID / "rb" /
                                                              "data")],
                             capture_output=True, text=True)
        assert out.stdout == "remote-only\n", out
    finally:
        try:
            finish(a, sa, tmp_path / "a")
        finally:
            finish(b, sb, tmp_path / "b")
