"""The agent serves the attachments of its desired set (docs/protocol.md,
"Volumes"): one holdfast-volume attach process each, outliving the agent,
replaced at a new epoch, stopped when not wanted; a task's EXTERNAL
volume is mounted from the attached device; replicas are deleted when
asked. Driven by test_agent's fake server."""
import os
import signal
import subprocess
import time

import pytest

from test_agent import FAST, Agent, FakeServer, alive, finish, order, read, wait_for  # noqa: F401

SIZE = 128 << 20


class VolServer(FakeServer):
    """The fake server with attachments and replica deletions."""

    def __init__(self):
        self.attachments = []
        self.delete_replicas = []
        self.volume_reports = []     # the "volumes" of every sync
        self.deleted_replicas = set()
        super().__init__()

    def sync(self, body):
        with self.cond:
            self.volume_reports.append(body.get("volumes", []))
            self.deleted_replicas.update(body.get("deleted_replicas", []))
        out = super().sync(body)
        with self.cond:
            out["attachments"] = list(self.attachments)
            out["delete_replicas"] = list(self.delete_replicas)
        return out

    def set_volumes(self, attachments, orders, delete_replicas=()):
        with self.cond:
            self.attachments = list(attachments)
            self.delete_replicas = list(delete_replicas)
        self.set_desired(orders)

    def latest(self):
        with self.cond:
            return self.volume_reports[-1] if self.volume_reports else []


@pytest.fixture
def vserver():
    s = VolServer()
    yield s
    s.close()


def attachment(epoch, fmt=True):
    return {"volume": "svc-pod-0", "id": "0123456789abcdef", "replica": "fedcba9876543210",
            "epoch": epoch, "size": SIZE, "format": fmt, "uid": 0, "gid": 0}


def ext_order(task_id, epoch, cmd):
    return order(task_id, cmd, volumes=[{"key": "svc-pod-0", "path": "data", "type": "EXTERNAL",
                                         "epoch": epoch, "ro": False, "size_mb": 128}])


def attach_pid(data):
    try:
        with open(data / "attach" / "svc-pod-0" / "attach.lock") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    return pid if alive(pid) else 0


def stop_attach(pid):
    """SIGTERM: the process detaches once its tasks' mounts are gone."""
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 20
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def wait_volume(server, pred, what, timeout=60):
    return wait_for(lambda: (lambda v: v if v and pred(v) else None)(
        next((v for v in server.latest() if v["volume"] == "svc-pod-0"), None)), what, timeout)


def test_an_attached_volume_serves_its_task_and_outlives_the_agent(tmp_path, vserver):
    pool = tmp_path / "pool"
    a = Agent(tmp_path, vserver, [*FAST, "--storage", str(pool)]).start()
    try:
        t1 = "pod-0-server__att1"
        vserver.set_volumes([attachment(1)],
                            [ext_order(t1, 1, "echo one > data/x && sync && exec sleep 1000")])
        rep = wait_volume(vserver, lambda v: v["state"] == "ready", "the volume ready")
        assert rep["epoch"] == 1 and rep["device"].startswith("/dev/loop"), rep
        vserver.wait_state(t1, "running")
        replica = pool / "replicas" / "0123456789abcdef" / "fedcba9876543210" / "data"
        assert replica.stat().st_size == SIZE
        # In the task's namespace only: the sandbox's data dir is empty here.
        assert os.listdir(a.sandbox(t1) / "data") == []
        pid = attach_pid(a.data)
        assert pid
        # kill -9 of the agent: the attach process and the task stay; the
        # new agent finds and reports them.
        a.kill9()
        assert alive(pid)
        n = vserver.count()
        a.start()
        wait_for(lambda: vserver.count() > n + 1, "syncs of the new agent")
        rep = wait_volume(vserver, lambda v: v["state"] == "ready", "ready again")
        assert attach_pid(a.data) == pid
        # A new epoch: the task is stopped (not desired), the volume
        # served again at epoch 2 by a new process, and a new task runs on
        # the same data.
        t2 = "pod-0-server__att2"
        vserver.set_volumes([attachment(2, fmt=True)],
                            [ext_order(t2, 2, "cat data/x > seen && exec sleep 1000")])
        vserver.wait_state(t2, "running", timeout=90)
        rep = wait_volume(vserver, lambda v: v["state"] == "ready" and v["epoch"] == 2,
                          "ready at epoch 2")
        assert attach_pid(a.data) not in (0, pid)
        assert not alive(pid)
        assert wait_for(lambda: (a.sandbox(t2) / "seen").exists() and
                        read(a.sandbox(t2) / "seen"), "the task's read") == "one\n"
        # Not wanted any more: detached once its task is gone, then no
        # longer reported; its replica kept until deleted.
        last = attach_pid(a.data)
        vserver.set_volumes([], [])
        wait_for(lambda: not alive(last), "the attach process to exit", 60)
        wait_for(lambda: not any(v["volume"] == "svc-pod-0" for v in vserver.latest()),
                 "the volume no longer reported")
        assert replica.exists()
        out = subprocess.run(["debugfs", "-R", "cat /x", str(replica)], capture_output=True,
                             text=True)
        assert out.stdout == "one\n"
        vserver.set_volumes([], [], delete_replicas=[{"id": "0123456789abcdef",
                                                      "replica": "fedcba9876543210"}])
        wait_for(lambda: "fedcba9876543210" in vserver.deleted_replicas, "the deletion reported")
        assert not replica.parent.exists()
    finally:
        pid = attach_pid(a.data)
        try:
            finish(a, vserver, tmp_path)
        finally:
            stop_attach(pid)


def test_a_task_waits_for_its_volume_and_a_node_without_pool_reports_failed(tmp_path, vserver):
    a = Agent(tmp_path, vserver, FAST).start()
    try:
        t1 = "pod-0-server__nopool1"
        vserver.set_volumes([attachment(1)], [ext_order(t1, 1, "exec sleep 1000")])
        rep = wait_volume(vserver, lambda v: v["state"] == "failed", "failed")
        assert "storage pool" in rep["message"], rep
        # The task does not start on a volume that is not there.
        time.sleep(1)
        last = vserver.last(t1)
        assert last is None or last["state"] in ("staging", "starting"), last
    finally:
        finish(a, vserver, tmp_path)


def test_a_dead_attach_process_stops_its_tasks_and_is_replaced(tmp_path, vserver):
    """kill -9 of the attach process under a running task: its device is
    dead, so the task is stopped as failed (the server relaunches it), a
    new process serves the volume, and the dead device is cleared."""
    pool = tmp_path / "pool"
    a = Agent(tmp_path, vserver, [*FAST, "--storage", str(pool)]).start()
    try:
        t1 = "pod-0-server__dead1"
        vserver.set_volumes([attachment(1)], [ext_order(t1, 1, "exec sleep 1000")])
        vserver.wait_state(t1, "running", timeout=60)
        old = wait_volume(vserver, lambda v: v["state"] == "ready", "ready")["device"]
        pid = attach_pid(a.data)
        os.kill(pid, signal.SIGKILL)
        rep = vserver.wait_report(t1, lambda r: r["state"] not in ("running", "starting"),
                                  "to be stopped", timeout=60)
        assert "stopped being served" in (rep.get("message") or ""), rep
        wait_for(lambda: attach_pid(a.data) not in (0, pid), "a new attach process", 60)
        new = wait_volume(vserver, lambda v: v["state"] == "ready", "ready again")["device"]
        # The dead device lets go of its file once the task's mount is
        # gone; the new process may then be given the same device, which
        # has one file at a time: either way the dead binding is gone.
        name = os.path.basename(old)
        if new != old:
            wait_for(lambda: not os.path.exists(f"/sys/block/{name}/loop/backing_file") or
                     not read(f"/sys/block/{name}/loop/backing_file").startswith(str(a.data)),
                     "the dead device cleared", 30)
    finally:
        pid = attach_pid(a.data)
        try:
            finish(a, vserver, tmp_path)
        finally:
            stop_attach(pid)
