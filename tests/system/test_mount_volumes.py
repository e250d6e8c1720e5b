"""MOUNT volumes: a file system of the spec's size per volume, an ext4
image the agent makes and formats, mounted through a loop device inside
the task's mount namespace only (shim.h, VOLUME IMAGES)."""
import os
import shutil
import signal
import tempfile

import pytest

from holdfast_harness import REPO, Cluster, wait_for, write

SDK = os.environ.get("HF_SDK_SPECS", os.path.join(os.path.dirname(REPO), "shared", "sdk-specs"))
SDK_OPTS = ("--options", os.path.join(SDK, "helloworld-options.json"),
            "--options", os.path.join(SDK, "helloworld-single-node.json"))


@pytest.fixture
def cluster():
    d = tempfile.mkdtemp(prefix="hf-mountvol-", dir="/tmp")
    os.chmod(d, 0o700)
    c = Cluster(d)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


def sh(c, svc, task, script):
    return c.cli("-s", svc, "task", "exec", task, "--", "sh", "-c", script).stdout


def loops_over(root):
    """Loop devices whose backing file is below root."""
    out = []
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(root + "/"):
            out.append((name, backing))
    return out


def node_mounts():
    with open("/proc/self/mountinfo") as f:
        return f.read()


def test_the_sdk_pod_mount_volume_spec_gets_file_systems_of_its_size(cluster):
    """The SDK's pod-mount-volume.yml as it shipped: a pod-level MOUNT
    volume both tasks write to, a task-level one of the node task, each an
    ext4 of HELLO_DISK (25) MB; what a task writes stays in it, bounded by
    its size, through a kill -9 and a restart of the pod; nothing is
    mounted in the node's namespace and the loop devices go with the
    tasks."""
    c = cluster
    svc = "hello-world"
    c.cli("service", "deploy", "-f", os.path.join(SDK, "helloworld", "pod-mount-volume.yml"),
          *SDK_OPTS, "-o", "HELLO_COUNT=1")
    c.wait_plan(svc, timeout=120)
    # Both tasks wrote into the pod's volume: one file system, seen by both.
    out = wait_for(lambda: (lambda t: t if "node" in t and "agent" in t else None)(
        sh(c, svc, "hello-0-node", "cat pod-container-path/output")), 30,
        what="both tasks' lines in the pod volume")
    assert sorted(out.split()) == ["agent", "node"], out
    assert sh(c, svc, "hello-0-agent", "cat pod-container-path/output") == out
    dev_node = sh(c, svc, "hello-0-node", "stat -c %d pod-container-path").strip()
    dev_agent = sh(c, svc, "hello-0-agent", "stat -c %d pod-container-path").strip()
    assert dev_node == dev_agent, (dev_node, dev_agent)
    # A file system of its own, of the spec's size (ext4 keeps some for
    # its journal and tables), not the node's disk.
    for path in ("pod-container-path", "node-container-path"):
        fs = sh(c, svc, "hello-0-node", f"stat -f -c '%T %b %S' {path}").split()
        assert fs[0] == "ext2/ext3", fs
        size_mb = int(fs[1]) * int(fs[2]) / 2**20
        assert 15 < size_mb <= 25, (path, fs)
    root_dev = sh(c, svc, "hello-0-node", "stat -c %d .").strip()
    node_dev = sh(c, svc, "hello-0-node", "stat -c %d node-container-path").strip()
    assert len({root_dev, node_dev, dev_node}) == 3, (root_dev, node_dev, dev_node)
    # The agent task's ROOT volume stays a directory of the node's disk.
    assert sh(c, svc, "hello-0-agent", "stat -c %d agent-container-path").strip() == \
        sh(c, svc, "hello-0-agent", "stat -c %d .").strip()
    # Full is full: the size bounds what the task can write.
    p = c.cli("-s", svc, "task", "exec", "hello-0-node", "--", "sh", "-c",
              "dd if=/dev/zero of=pod-container-path/big bs=1M count=40 2>&1; echo rc=$?",
              check=False)
    assert "No space left" in p.stdout and "rc=1" in p.stdout, p.stdout
    sh(c, svc, "hello-0-node", "rm pod-container-path/big; echo kept > pod-container-path/mark")
    # Nothing of it in the node's namespace; its loops serve the images.
    assert "ext4.img" not in node_mounts()
    data = os.path.realpath(c.agent_data)
    loops = loops_over(data)
    assert len(loops) == 2 and all(b.endswith("/ext4.img") for _, b in loops), loops

    # kill -9 of the node task: restarted in place, its volumes mounted again.
    tasks = c.tasks(svc)
    pid = c.task_pid(tasks["hello-0-node"]["id"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: c.tasks(svc)["hello-0-node"].get("restarts", 0) >= 1
             and c.tasks(svc)["hello-0-node"]["status"] == "RUNNING", 60, what="restart in place")
    assert sh(c, svc, "hello-0-node", "cat pod-container-path/mark").strip() == "kept"
    wait_for(lambda: len(sh(c, svc, "hello-0-node", "cat pod-container-path/output").split()) == 3,
             30, what="the restarted node's line")
    assert sh(c, svc, "hello-0-node", "stat -c %d pod-container-path").strip() == \
        sh(c, svc, "hello-0-agent", "stat -c %d pod-container-path").strip()
    # A restart of the pod: new processes, the same data.
    c.cli("-s", svc, "pod", "restart", "hello-0")
    wait_for(lambda: all(t["status"] == "RUNNING" and t["id"] != tasks[n]["id"]
                         for n, t in c.tasks(svc).items()), 90, what="pod restarted")
    # The first run's two lines, the restarted node's, the second run's two.
    lines = wait_for(lambda: (lambda t: t if len(t.split()) >= 5 else None)(
        sh(c, svc, "hello-0-agent", "cat pod-container-path/output")), 30,
        what="the second run's lines")
    assert sorted(lines.split()) == ["agent"] * 2 + ["node"] * 3, lines
    assert sh(c, svc, "hello-0-agent", "cat pod-container-path/mark").strip() == "kept"
    assert len(loops_over(data)) == 2, loops_over(data)

    # Removed: the tasks' namespaces go, and with them the loop devices.
    c.cli("service", "remove", svc, "--delete-volumes")
    wait_for(lambda: not loops_over(data), 60, what="loop devices released")
    assert "ext4.img" not in node_mounts()


def test_a_replaced_pod_gets_an_empty_mount_volume(cluster):
    """pod replace gives MOUNT volumes what it gives ROOT volumes: new,
    empty ones; the root of the file system belongs to the task's user."""
    c = cluster
    spec = write(os.path.join(c.tmp, "mv.yml"), """
name: mv
pods:
  db:
    count: 1
    user: nobody
    volume: {path: data, type: MOUNT, size: 16}
    tasks:
      server:
        goal: RUNNING
        cmd: "id -un > data/who; echo $$ >> data/runs; sleep 1000"
        cpus: 0.1
        memory: 32
""")
    c.cli("service", "deploy", "-f", spec)
    c.wait_plan("mv", timeout=90)
    assert wait_for(lambda: sh(c, "mv", "db-0-server", "cat data/who").strip(), 30) == "nobody"
    assert sh(c, "mv", "db-0-server", "stat -c %U data").strip() == "nobody"
    assert len(sh(c, "mv", "db-0-server", "cat data/runs").split()) == 1
    old = c.tasks("mv")["db-0-server"]["id"]
    c.cli("-s", "mv", "pod", "replace", "db-0", "--yes")
    wait_for(lambda: c.tasks("mv")["db-0-server"]["id"] != old
             and c.tasks("mv")["db-0-server"]["status"] == "RUNNING", 90, what="replaced")
    assert wait_for(lambda: sh(c, "mv", "db-0-server", "cat data/runs").split(), 30) and \
        len(sh(c, "mv", "db-0-server", "cat data/runs").split()) == 1


def test_an_agent_without_mount_namespaces_refuses_mount_volumes():
    """An agent that may not mount (no CAP_SYS_ADMIN) cannot give a task a
    file system of its own: the launch fails for good, saying why, and no
    image is made."""
    d = tempfile.mkdtemp(prefix="hf-mountvol-", dir="/tmp")
    c = Cluster(d)
    spec = write(os.path.join(d, "mv.yml"), """
name: mv
pods:
  db:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: "sleep 1000"
        cpus: 0.1
        memory: 32
        volume: {path: data, type: MOUNT, size: 16}
""")
    c.start_server()
    c.start_agent(wrap=("setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", "--"))
    try:
        wait_for(lambda: "tasks are NOT isolated" in c.agent_log(), 30, what="the agent's word")
        c.cli("service", "deploy", "-f", spec)
        msg = wait_for(lambda: next((s.get("message") for ph in c.plan("mv")["phases"]
                                     for s in ph["steps"] if s["status"] == "ERROR"), None),
                       60, what="the step in ERROR")
        assert "MOUNT volume" in msg and "mount namespaces" in msg, msg
        imgs = [os.path.join(r, f) for r, _, fs in os.walk(c.agent_data) for f in fs
                if f.startswith("ext4.img")]
        assert imgs == [], imgs
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)
