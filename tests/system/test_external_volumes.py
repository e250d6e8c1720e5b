"""External volumes with one local replica (repl=1), the server's side
(docs/protocol.md, "Volumes"; docs/design/volumes.md §3.2, §7.2): a scripted
agent syncs as a node with a storage pool, and sees its volume made, attached
at an epoch, the launch wait for the node to report it ready at that epoch,
then carry it as an EXTERNAL volume; `pod replace` keeps it (a new epoch, no
new file system), `service remove` keeps it and a deploy takes it back, a
name another service holds is refused, and `--delete-volumes` deletes its
replica before the record goes. No real agent runs, so nothing is mounted:
what is checked is what the server decides and says."""
import hashlib
import hmac
import json
import os
import secrets
import time

import pytest

from holdfast_harness import Cluster, wait_for, write

GIB = 1 << 30

SPEC = """
name: {name}
pods:
  app:
    count: 1
{placement}    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size={size};repl=1
{volume_name}    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        memory: 32
"""


def spec(tmp, name, volume_name=None, size=1, node=None):
    extra = f"        volume-name: {volume_name}\n" if volume_name else ""
    placement = f"    placement: '[[\"hostname\", \"IS\", \"{node}\"]]'\n" if node else ""
    return write(os.path.join(tmp, f"{name}.yml"),
                 SPEC.format(name=name, volume_name=extra, size=size, placement=placement))


class FakeNode:
    """An agent as the protocol sees it: registered with its own token,
    syncing with a node info (a storage pool or not), its tasks and its
    volume reports."""

    def __init__(self, cl, node_id, pool=True):
        self.cl = cl
        self.id = node_id
        self.token = secrets.token_hex(24)
        self.pool = pool
        self.seq = int(time.time() * 1000)
        self.tasks = {}      # task id -> state
        self.volumes = []    # reports
        self.deleted = []    # replica ids
        self.deleted_dirs = []  # volume directories (delete_volumes)
        st, body = self._post("/v1/agent/register", {"node_id": node_id, "token": self.token},
                              cl.token())
        assert st == 200, body

    def _post(self, path, body, token):
        import urllib.error
        import urllib.request
        req = urllib.request.Request(
            self.cl.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def sync(self):
        self.seq += 1
        info = {"hostname": self.id, "address": "127.0.0.1",
                "resources": {"cpus": 4, "memory_mb": 4000, "disk_mb": 10000,
                              "ports": [{"begin": 20000, "end": 20100}]},
                "agent_version": "test", "started_at": 1}
        if self.pool:
            info["storage"] = {"pool": "/nonexistent/pool", "capacity": 10 * GIB,
                               "provisioned": 0, "used": 0, "free": 10 * GIB}
        body = {"node_id": self.id, "seq": self.seq, "wait": 0, "info": info,
                "tasks": [{"task_id": t, "state": s, "ready": s == "running"}
                          for t, s in self.tasks.items()],
                "volumes": self.volumes, "deleted_replicas": self.deleted,
                "deleted_volumes": self.deleted_dirs}
        st, out = self._post("/v1/agent/sync", body, self.token)
        assert st == 200, out
        # Volume directories: there are none, so they are gone at once.
        self.deleted_dirs = out.get("delete_volumes", [])
        # Tasks listed are desired: new ones start; others are stopped.
        wanted = {o["task_id"]: o for o in out.get("tasks", [])}
        for tid in list(self.tasks):
            if tid not in wanted:
                if self.tasks[tid] == "running":
                    self.tasks[tid] = "killed"
                else:
                    del self.tasks[tid]  # acknowledged as ended
        for tid in wanted:
            self.tasks.setdefault(tid, "running")
        return out

    def until(self, pred, what, timeout=30):
        """Syncs until pred(answer) holds; returns that answer."""
        return wait_for(lambda: (lambda a: pred(a) and a)(self.sync()), timeout,
                        interval=0.2, what=what)


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol")
    c = Cluster(tmp)
    c.start_server()
    try:
        yield c
    finally:
        c.stop()


def xvol(cl, name):
    st, body = cl.api("GET", f"/v1/external-volumes/{name}")
    return body if st == 200 else None


def test_a_volume_is_made_attached_and_launched_at_its_epoch(cl):
    node = FakeNode(cl, "pool-1")
    node.sync()
    cl.deploy(spec(cl.tmp, "xa"), wait=False)
    ans = node.until(lambda a: a.get("attachments"), "an attachment")
    [att] = ans["attachments"]
    v = xvol(cl, "xa-app-0")
    assert v["state"] == "active" and v["service"] == "xa" and v["instance"] == "app-0"
    assert v["size"] == GIB and v["repl"] == 1 and v["epoch"] == 1
    assert v["attached"] == "pool-1" and not v["formatted"]
    assert [(r["node"], r["state"]) for r in v["replicas"]] == [("pool-1", "new")]
    assert "secret" not in v
    # The node holds the replica (with the volume's key, which only the
    # orders of its nodes carry), and the attachment's ticket proves the
    # epoch with that key (src/volume/ticket.h).
    [held] = ans["replicas"]
    assert held == {"volume": "xa-app-0", "id": v["id"], "replica": v["replicas"][0]["id"],
                    "size": GIB, "key": held["key"]}, held
    assert len(held["key"]) == 64
    ticket = hmac.new(bytes.fromhex(held["key"]),
                      b"attach\0" + v["id"].encode() + b"\0" + b"1" + b"\0" + b"pool-1",
                      hashlib.sha256).hexdigest()
    assert att == {"volume": "xa-app-0", "id": v["id"], "replica": v["replicas"][0]["id"],
                   "epoch": 1, "size": GIB, "format": True, "uid": 0, "gid": 0,
                   "ticket": ticket}, att
    # Nothing launches before the node says the volume is ready.
    time.sleep(0.5)
    assert not node.sync().get("tasks"), "launched before the volume was ready"
    node.volumes = [{"volume": "xa-app-0", "id": v["id"], "epoch": 1, "state": "attaching"}]
    time.sleep(0.5)
    assert not node.sync().get("tasks"), "launched while the volume was attaching"
    # Ready at another epoch is not ready at this one.
    node.volumes = [{"volume": "xa-app-0", "id": v["id"], "epoch": 7, "state": "ready",
                     "device": "/dev/loop9"}]
    time.sleep(0.5)
    assert not node.sync().get("tasks"), "launched on a report of another epoch"
    node.volumes[0]["epoch"] = 1
    ans = node.until(lambda a: a.get("tasks"), "the launch")
    [order] = ans["tasks"]
    ext = [x for x in order["volumes"] if x.get("type") == "EXTERNAL"]
    assert ext == [{"key": "xa-app-0", "path": "data", "type": "EXTERNAL", "epoch": 1,
                    "ro": False, "size_mb": 1024}], order["volumes"]
    node.until(lambda a: cl.plan("xa").get("status") == "COMPLETE", "xa deployed")
    v = xvol(cl, "xa-app-0")
    assert v["formatted"] and v["replicas"][0]["state"] == "in_sync", v
    # The next attachments no longer ask for a new file system.
    assert node.sync()["attachments"][0]["format"] is False
    # Listed with the other volumes, by the API and the CLI.
    rows = [r for r in cl.api("GET", "/v1/volumes?service=xa")[1] if r.get("type") == "EXTERNAL"]
    assert [(r["key"], r["node"], r["status"]) for r in rows] == [
        ("xa-app-0", "pool-1", "in use (attached)")], rows
    out = cl.cli("volume", "list").stdout
    line = [ln for ln in out.splitlines() if ln.startswith("xa-app-0")]
    assert line and "pool-1" in line[0] and "external, in use (attached), 1024 MiB, repl 1, epoch 1, " \
        "replica pool-1 in_sync" in line[0], out
    events = cl.cli("events", "--json").stdout
    for what in ("created", "attached", "ready"):
        assert any(e.get("object") == "xa-app-0" and e.get("after") == what
                   for e in map(json.loads, events.splitlines())), (what, events)

    # pod replace keeps the volume: detached, then attached again at a new
    # epoch on the node of its replica, without a new file system.
    cl.cli("--service", "xa", "pod", "replace", "app-0", "--yes")
    # (It was detached in between: an attach is what bumps the epoch.)
    ans = node.until(lambda a: a.get("attachments") and a["attachments"][0]["epoch"] == 2,
                     "the attachment at epoch 2")
    assert ans["attachments"][0]["format"] is False
    assert not ans.get("tasks"), "launched before the new epoch was ready"
    node.volumes[0]["epoch"] = 2
    ans = node.until(lambda a: a.get("tasks"), "the launch after the replace")
    assert [x["epoch"] for x in ans["tasks"][0]["volumes"] if x.get("type") == "EXTERNAL"] == [2]
    v = xvol(cl, "xa-app-0")
    assert v["id"] == att["id"] and v["epoch"] == 2 and v["state"] == "active"

    # service remove keeps it; the same service deployed again takes it back.
    cl.cli("service", "remove", "xa")
    node.until(lambda a: not a.get("attachments") and not a.get("tasks"),
               "the volume detached after the removal")
    wait_for(lambda: cl.api("GET", "/v1/services/xa")[0] == 404, 30, what="xa removed")
    node.sync()
    v = xvol(cl, "xa-app-0")
    assert v["state"] == "kept" and v["instance"] is None and v["attached"] is None, v
    node.volumes = []
    cl.deploy(spec(cl.tmp, "xa"), wait=False)
    ans = node.until(lambda a: a.get("attachments"), "the kept volume attached again")
    assert ans["attachments"][0]["id"] == att["id"]
    assert ans["attachments"][0]["epoch"] == 3 and ans["attachments"][0]["format"] is False
    v = xvol(cl, "xa-app-0")
    assert v["state"] == "active" and v["instance"] == "app-0"
    node.volumes = [{"volume": "xa-app-0", "id": v["id"], "epoch": 3, "state": "ready",
                     "device": "/dev/loop9"}]
    node.until(lambda a: a.get("tasks"), "the launch of the service deployed again")

    # Another service cannot take a name this one holds.
    cl.deploy(spec(cl.tmp, "xb", volume_name="xa-app"), wait=False)
    wait_for(lambda: "volume 'xa-app-0' belongs to service 'xa'" in json.dumps(cl.pods("xb")),
             30, what="xb refused the name")
    cl.cli("service", "remove", "xb")

    # --delete-volumes: the replica is deleted, then the record goes.
    cl.cli("service", "remove", "xa", "--delete-volumes")
    ans = node.until(lambda a: a.get("delete_replicas"), "the replica deletion")
    assert ans["delete_replicas"] == [{"id": att["id"], "replica": att["replica"]}]
    assert not ans.get("attachments")
    assert xvol(cl, "xa-app-0")["state"] == "deleting"
    node.volumes = []
    node.deleted = [att["replica"]]
    node.until(lambda a: not a.get("delete_replicas"), "the deletion acknowledged")
    wait_for(lambda: xvol(cl, "xa-app-0") is None, 30, what="the volume record gone")
    node.deleted = []


def test_a_volume_goes_only_where_a_pool_holds_it(cl):
    """A node without a pool, or whose pool (capacity less what the server
    placed there) cannot hold the volume, is no candidate for a new one."""
    bare = FakeNode(cl, "bare-1", pool=False)
    small = FakeNode(cl, "pool-2")
    bare.sync()
    small.sync()
    cl.deploy(spec(cl.tmp, "xc", size=20), wait=False)

    def refused():
        bare.sync()
        small.sync()
        msg = json.dumps(cl.pods("xc"))
        return ("bare-1: it has no storage pool" in msg and
                "pool-2: its storage pool has 10240 MiB free, the pod's new volumes "
                "need 20480 MiB" in msg)
    wait_for(refused, 30, interval=0.3, what="both nodes refused")
    assert xvol(cl, "xc-app-0") is None
    cl.cli("service", "remove", "xc")

    # A volume that fits is made on pool-2; kept by a plain removal, then
    # deleted by `volume delete SERVICE` like the service's kept directories.
    cl.deploy(spec(cl.tmp, "xd", node="pool-2"), wait=False)
    att = small.until(lambda a: a.get("attachments"), "xd's attachment")["attachments"][0]
    cl.cli("service", "remove", "xd")
    wait_for(lambda: (xvol(cl, "xd-app-0") or {}).get("state") == "kept", 30, what="xd kept")
    assert not small.sync().get("attachments")
    cl.cli("volume", "delete", "xd", "--yes")
    ans = small.until(lambda a: a.get("delete_replicas"), "the replica deletion")
    assert ans["delete_replicas"] == [{"id": att["id"], "replica": att["replica"]}]
    small.deleted = [att["replica"]]
    wait_for(lambda: small.sync() is not None and xvol(cl, "xd-app-0") is None, 30,
             what="xd's volume gone")


def test_volume_show_and_delete_by_name(cl):
    """`holdfast volume show NAME` shows one replicated volume; `volume
    delete NAME` deletes it once kept, and refuses while it is in use."""
    node = FakeNode(cl, "pool-3")
    node.sync()
    cl.deploy(spec(cl.tmp, "xe", node="pool-3"), wait=False)
    att = node.until(lambda a: a.get("attachments"), "xe's attachment")["attachments"][0]
    out = cl.cli("volume", "show", "xe-app-0").stdout
    assert "owner     xe/app-0 (active)" in out, out
    assert "attached  pool-3, epoch 1" in out, out
    assert "1 wanted, 0 in sync, writes need 1" in out, out
    assert att["replica"] in out and "new" in out, out
    shown = json.loads(cl.cli("volume", "show", "xe-app-0", "--json").stdout)
    assert shown["name"] == "xe-app-0" and "secret" not in shown, shown
    p = cl.cli("volume", "delete", "xe-app-0", "--yes", check=False)
    assert p.returncode != 0 and "in use by xe/app-0" in p.stderr, p.stderr
    p = cl.cli("volume", "show", "nope-0", check=False)
    assert p.returncode != 0, p.stdout
    cl.cli("service", "remove", "xe")
    wait_for(lambda: (xvol(cl, "xe-app-0") or {}).get("state") == "kept", 30, what="xe kept")
    out = cl.cli("volume", "delete", "xe-app-0", "--yes").stdout
    assert out == "deleting xe-app-0 on node pool-3\n", out
    ans = node.until(lambda a: a.get("delete_replicas"), "the replica deletion")
    assert ans["delete_replicas"] == [{"id": att["id"], "replica": att["replica"]}]
    node.deleted = [att["replica"]]
    wait_for(lambda: node.sync() is not None and xvol(cl, "xe-app-0") is None, 30,
             what="xe's volume gone")


def metrics(cl):
    import urllib.request
    req = urllib.request.Request(cl.url + "/metrics", headers=cl._auth())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def test_the_attach_process_counters_reach_metrics_api_and_events(cl):
    """A ready report's counters (docs/protocol.md, "Volumes") become the
    volume's io and replicas' missed bytes in the API and counters and a
    latency histogram in /metrics; writes refused for a full pool
    ("nospace") are one event per attachment, however many follow."""
    node = FakeNode(cl, "pool-4")
    node.sync()
    cl.deploy(spec(cl.tmp, "xf", node="pool-4"), wait=False)
    att = node.until(lambda a: a.get("attachments"), "xf's attachment")["attachments"][0]
    hist = [0] * 13
    hist[3], hist[12] = 40, 2
    rep = {"volume": "xf-app-0", "id": att["id"], "epoch": 1, "state": "ready",
           "device": "/dev/loop9", "written": 1 << 20, "replicated": 0,
           "missed": [{"replica": att["replica"], "bytes": 0}],
           "write_us": hist, "write_us_sum": 2_040_000}
    node.volumes = [rep]
    node.until(lambda a: (xvol(cl, "xf-app-0") or {}).get("io"), "the counters in the API")
    v = xvol(cl, "xf-app-0")
    assert v["io"] == {"written": 1 << 20, "replicated": 0, "resync_sent": 0,
                       "resync_planned": 0}, v
    assert v["replicas"][0]["missed"] == 0, v
    text = metrics(cl)
    assert 'holdfast_volume_written_bytes_total{volume="xf-app-0"} 1048576' in text
    assert 'holdfast_volume_write_seconds_bucket{volume="xf-app-0",le="0.001"} 40' in text
    assert 'holdfast_volume_write_seconds_bucket{volume="xf-app-0",le="+Inf"} 42' in text
    assert 'holdfast_volume_write_seconds_count{volume="xf-app-0"} 42' in text
    assert 'holdfast_volume_write_seconds_sum{volume="xf-app-0"} 2.040000' in text
    assert "# TYPE holdfast_volume_write_seconds histogram" in text

    def full_events():
        return [e for e in map(json.loads, cl.cli("events", "--json").stdout.splitlines())
                if e.get("object") == "xf-app-0"
                and e.get("after") == "writes failing: no space left in the pool"]
    assert not full_events()
    for n in (3, 7, 9):
        rep["nospace"] = n
        node.sync()
    ev = wait_for(full_events, 10, what="the full pool's event")
    time.sleep(0.5)
    ev = full_events()
    assert len(ev) == 1, ev
    assert ev[0]["why"].startswith("3 write(s) refused with ENOSPC on node pool-4: the file "
                                   "system of its storage pool is full"), ev
    assert 'holdfast_volume_nospace_writes_total{volume="xf-app-0"} 9' in metrics(cl)
    cl.cli("service", "remove", "xf")


# ---------------------------------------------------------------------------
# With the real agent: the SDK's spec, end to end on one node with a pool.

SDK = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), os.pardir, "shared", "sdk-specs")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol-real")
    c = Cluster(tmp)
    c.start_server()
    c.start_agent(extra=("--storage", os.path.join(str(tmp), "pool") + ",size=8G"))
    try:
        yield c
    finally:
        c.stop()


def test_the_sdk_external_volumes_spec_deploys_and_keeps_its_data(real):
    """docs/design/volumes.md §12 stage 4: the SDK's external-volumes.yml,
    unchanged, with driver holdfast and one local replica: each instance's
    volume is made, attached and mounted where its task writes; `pod
    replace` keeps the data; `--delete-volumes` deletes the replicas."""
    cl = real
    cl.deploy(os.path.join(SDK, "helloworld", "external-volumes.yml"),
              "--options", os.path.join(SDK, "helloworld-options.json"),
              "--options", os.path.join(SDK, "helloworld-single-node.json"),
              "-o", "EXTERNAL_VOLUME_DRIVER_NAME=holdfast",
              "-o", "EXTERNAL_VOLUME_DRIVER_OPTIONS=size=1;repl=1", timeout=240)
    names = ["hello-world-hello-0", "hello-world-world-0", "hello-world-world-1"]
    vols = {n: xvol(cl, n) for n in names}
    for n, v in vols.items():
        assert v and v["state"] == "active" and v["attached"] == "node-1", (n, v)
        assert v["epoch"] == 1 and v["formatted"] and v["size"] == GIB, (n, v)
        assert [(r["node"], r["state"]) for r in v["replicas"]] == [("node-1", "in_sync")]
        data = os.path.join(cl.tmp, "pool", "replicas", v["id"], v["replicas"][0]["id"], "data")
        assert os.path.getsize(data) == GIB, data
    # The task wrote into its volume, which only its namespace sees.
    out = cl.cli("--service", "hello-world", "task", "exec", "hello-0-server", "--",
                 "cat", "hello-container-path/output").stdout
    assert out == "hello\n", out
    before = cl.tasks("hello-world")["hello-0-server"]
    # pod replace: the same volume (same data), attached again at epoch 2.
    cl.cli("--service", "hello-world", "pod", "replace", "hello-0", "--yes")
    wait_for(lambda: (lambda t: t and t["id"] != before["id"] and t["status"] == "RUNNING")(
        cl.tasks("hello-world").get("hello-0-server")), 120, what="hello-0 replaced")
    v = xvol(cl, "hello-world-hello-0")
    assert v["id"] == vols["hello-world-hello-0"]["id"] and v["epoch"] == 2, v
    out = wait_for(lambda: (lambda p: p.returncode == 0 and p.stdout == "hello\nhello\n" and p)(
        cl.cli("--service", "hello-world", "task", "exec", "hello-0-server", "--", "cat",
               "hello-container-path/output", check=False)), 30, what="the kept data")
    # Removed with its volumes: the replicas leave the pool, the records go.
    cl.cli("service", "remove", "hello-world", "--delete-volumes", "--wait", "--timeout", "120",
           timeout=180)
    for n in names:
        assert xvol(cl, n) is None, n
        rdir = os.path.join(cl.tmp, "pool", "replicas", vols[n]["id"],
                            vols[n]["replicas"][0]["id"])
        assert not os.path.exists(rdir), rdir
