"""`holdfast volume resize` and spec updates that raise an external
volume's size, end to end with a real agent: the record grows, the node's
replica and the attached device grow while the task keeps writing (not
restarted), and the file system shows the new size in the task: online
where the node gives ext4's online resize the CAP_SYS_RESOURCE it needs,
else at the volume's next attach (here: `pod replace`). Shrinking is
refused and changes nothing."""
import json
import os
import time

import pytest

from holdfast_harness import Cluster, wait_for, write

MIB = 1 << 20

SPEC = """
name: grow
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size={size}
    tasks:
      server:
        goal: RUNNING
        cmd: "i=0; while :; do i=$((i+1)); echo record $i >> data/log; sync data/log; sleep 0.05; done"
        cpus: 0.1
        memory: 32
"""


def _online():
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


ONLINE = _online()


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol-grow")
    c = Cluster(tmp)
    c.start_server()
    c.start_agent(extra=("--storage", os.path.join(str(tmp), "pool") + ",size=8G"))
    c.spec = lambda size: write(os.path.join(str(tmp), f"grow-{size}.yml"), SPEC.format(size=size))
    c.deploy(c.spec("256M"), timeout=180)
    try:
        yield c
    finally:
        c.stop()


def volume(cl):
    st, body = cl.api("GET", "/v1/external-volumes/grow-db-0")
    return body if st == 200 else None


def attach_status(cl):
    try:
        with open(os.path.join(cl.agent_data, "attach", "grow-db-0", "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def df_bytes(cl):
    p = cl.cli("--service", "grow", "task", "exec", "db-0-server", "--", "df", "-B1",
               "--output=size", "data", check=False)
    if p.returncode != 0:
        return None
    return int(p.stdout.split()[-1])


def records(cl):
    p = cl.cli("--service", "grow", "task", "exec", "db-0-server", "--", "wc", "-l",
               "data/log", check=False)
    return int(p.stdout.split()[0]) if p.returncode == 0 else 0


def grown(cl, size):
    """The device grew to size under the running task; its file system
    too (online) or the attach says when it will."""
    st = wait_for(lambda: (lambda s: s.get("size") == size and s)(attach_status(cl)), 60,
                  what=f"the attached volume at {size >> 20} MiB")
    dev = os.path.basename(st["device"])
    with open(f"/sys/block/{dev}/size") as f:
        assert int(f.read()) * 512 == size
    if ONLINE:
        wait_for(lambda: (df_bytes(cl) or 0) > size * 0.85, 30, what="df in the task")
    else:
        wait_for(lambda: "CAP_SYS_RESOURCE" in (attach_status(cl).get("message") or ""), 30,
                 what="the attach saying when the file system grows")
        # The operator sees it too.
        wait_for(lambda: "next attached" in cl.cli("volume", "show", "grow-db-0").stdout, 30,
                 what="volume show's note")
        assert "next attached" in volume(cl)["io"]["note"]


def test_volume_resize_grows_it_under_a_running_task(cl):
    task = cl.tasks("grow")["db-0-server"]
    assert (df_bytes(cl) or 0) < 256 * MIB
    n0 = records(cl)
    p = cl.cli("volume", "resize", "grow-db-0", "768M")
    assert "grows to 768 MiB" in p.stdout, p.stdout
    v = volume(cl)
    assert v["size"] == 768 * MIB, v
    pool = os.path.join(cl.tmp, "pool", "replicas", v["id"], v["replicas"][0]["id"], "data")
    wait_for(lambda: os.path.getsize(pool) == 768 * MIB, 30, what="the replica grown")
    grown(cl, 768 * MIB)
    # The task was never restarted and kept writing.
    assert cl.tasks("grow")["db-0-server"]["id"] == task["id"]
    wait_for(lambda: records(cl) > n0 + 10, 30, what="the task writing on")
    # An event says so.
    events = [json.loads(line) for line in cl.cli("events", "--json").stdout.splitlines()]
    ev = [e for e in events if e.get("object") == "grow-db-0" and e.get("after") == "768 MiB"]
    assert ev and ev[0]["before"] == "256 MiB", events[-5:]
    # The same size: nothing; smaller: refused, nothing changes.
    p = cl.cli("volume", "resize", "grow-db-0", "768M")
    assert "768 MiB already" in p.stdout
    p = cl.cli("volume", "resize", "grow-db-0", "512M", check=False)
    assert p.returncode != 0 and "never shrink" in p.stderr, p.stderr
    assert volume(cl)["size"] == 768 * MIB
    p = cl.cli("volume", "resize", "nosuch", "1G", check=False)
    assert p.returncode != 0 and "no volume nosuch" in p.stderr, p.stderr
    st, body = cl.api("POST", "/v1/external-volumes/grow-db-0/resize", {"size": "lots"})
    assert st == 400 and body["error"] == "invalid", body


def test_a_spec_update_that_raises_size_grows_the_volume(cl):
    task = cl.tasks("grow")["db-0-server"]
    cl.cli("service", "update", "grow", "-f", cl.spec("1G"), "--wait", "--timeout", "120",
           timeout=180)
    assert volume(cl)["size"] == 1 << 30
    grown(cl, 1 << 30)
    assert cl.tasks("grow")["db-0-server"]["id"] == task["id"]
    # Shrinking by spec is refused with where and why.
    p = cl.cli("service", "update", "grow", "-f", cl.spec("512M"), check=False)
    assert p.returncode != 0 and "cannot shrink" in p.stdout + p.stderr, p.stdout + p.stderr
    assert volume(cl)["size"] == 1 << 30


def test_the_file_system_is_grown_by_the_next_attach_when_not_online(cl):
    """pod replace: a new attach, which grows a file system left smaller
    than its volume before any task mounts it; the data is whole."""
    # At 1 GiB, as the tests before leave it (run alone, it grows here).
    if volume(cl)["size"] < 1 << 30:
        cl.cli("volume", "resize", "grow-db-0", "1G")
        grown(cl, 1 << 30)
    n = records(cl)
    before = cl.tasks("grow")["db-0-server"]
    cl.cli("--service", "grow", "pod", "replace", "db-0", "--yes")
    wait_for(lambda: (lambda t: t and t["id"] != before["id"] and t["status"] == "RUNNING")(
        cl.tasks("grow").get("db-0-server")), 120, what="db-0 replaced")
    size = wait_for(lambda: df_bytes(cl), 30, what="df in the new task")
    # ext4's own overhead (journal, inode tables) aside: the whole 1 GiB.
    assert size > 900 * MIB, size
    assert records(cl) >= n


XFS_SPEC = """
name: {name}
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size={size}{fs}
    tasks:
      server:
        goal: RUNNING
        cmd: >-
          fio --name=w --directory=data --rw=randwrite --bs=64k --size=256m
          --ioengine=psync --fsync=16 --time_based --runtime=600
          --output=fio.out > fio.log 2>&1; echo "fio exit $?" >> fio.log; exec sleep 100000
        cpus: 0.5
        memory: 256
"""


@pytest.mark.parametrize("fs", ["", ";fs=xfs"])
def test_a_volume_grows_from_1_to_3_gb_under_fio_with_no_restart(cl, tmp_path, fs):
    """With the default fs (auto) the attach makes an XFS where ext4
    could not grow online (no CAP_SYS_RESOURCE), an ext4 elsewhere; with
    fs=xfs always an XFS, which grows online with CAP_SYS_ADMIN alone.
    Either way the task sees 3 GiB at once, and fio goes on."""
    want = "xfs" if fs or not ONLINE else "ext4"
    name = "gy" if fs else "gx"
    cl.deploy(write(str(tmp_path / f"{name}.yml"), XFS_SPEC.format(name=name, size="1G", fs=fs)),
              timeout=180)

    def sh(script):
        p = cl.cli("--service", name, "task", "exec", "db-0-server", "--", "sh", "-c", script,
                   check=False)
        return p.stdout if p.returncode == 0 else ""

    def df():
        out = sh("df -B1 --output=size,fstype data | tail -1").split()
        return (int(out[0]), out[1]) if len(out) == 2 else (0, "")
    size, fstype = df()
    assert fstype == want and 0.8 * (1 << 30) < size <= 1 << 30, (size, fstype)
    # fio is writing (its file grows).
    wait_for(lambda: sh("ls -s data/w.0.0 2>/dev/null").split()[:1] not in ([], ["0"]), 60,
             what="fio writing")
    task = cl.tasks(name)["db-0-server"]
    p = cl.cli("volume", "resize", f"{name}-db-0", "3G")
    assert "grows to 3072 MiB" in p.stdout, p.stdout
    wait_for(lambda: df()[0] > 2.9 * (1 << 30), 60, what="df in the task at 3 GiB")
    # Still the same task, and fio still running without an error.
    assert cl.tasks(name)["db-0-server"]["id"] == task["id"]
    time.sleep(2)
    log = sh("cat fio.log")
    assert "fio exit" not in log and "error" not in log.lower(), log
    v = cl.api("GET", f"/v1/external-volumes/{name}-db-0")[1]
    assert v["size"] == 3 << 30 and v["fs"] == ("xfs" if fs else "auto"), v
    # A file system the option does not know is a spec error.
    p = cl.cli("spec", "validate", write(str(tmp_path / "bad.yml"),
                                         XFS_SPEC.format(name=name, size="1G", fs=";fs=btrfs")),
               check=False)
    assert p.returncode != 0 and "fs must be ext4, xfs or auto" in p.stdout + p.stderr
    p = cl.cli("spec", "validate", write(str(tmp_path / "small.yml"),
                                         XFS_SPEC.format(name=name, size="256M", fs=";fs=xfs")),
               check=False)
    assert p.returncode != 0 and "at least 320M" in p.stdout + p.stderr
    cl.cli("service", "remove", name, "--wait", check=False)
    cl.cli("volume", "delete", f"{name}-db-0", "--yes", "--wait", check=False)
