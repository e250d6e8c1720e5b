"""holdfast-volume attach: a volume's replica served through FUSE as one
file, a loop device over it (src/volume/attach.h). Driven directly, as
the agent will drive it: attach.json in a directory, status.json back."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid

import pytest

from holdfast_harness import BIN, wait_for

VOLUME_BIN = os.path.join(os.path.dirname(BIN), "holdfast-volume")
SIZE = 128 << 20


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="hf-vattach-", dir="/var/tmp")
    procs = []
    yield d, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for m in reversed(mounts_under(d)):
        subprocess.run(["umount", "-l", m], check=False)
    for dev in loops_named(d):
        subprocess.run(["losetup", "-d", dev], check=False)
    shutil.rmtree(d, ignore_errors=True)


def mounts_under(d):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(d)]


def loops_named(d):
    """Loop devices serving a FUSE file of an attach dir below d (their
    backing file is DIR/fuse/vol, a path in the attach process's own
    namespace), or any whose identity we gave."""
    out = []
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                b = f.read().strip()
        except OSError:
            continue
        if b.startswith(d):
            out.append("/dev/" + name)
    return out


def attach_dir(d, name="a", **over):
    adir = os.path.join(d, name)
    os.makedirs(adir, exist_ok=True)
    cfg = {"volume": "svc-data-0", "id": f"v{name}", "epoch": 1, "size": SIZE,
           "replica": os.path.join(d, f"{name}.replica"), "format": True,
           "uid": 65534, "gid": 65534}
    cfg.update(over)
    with open(os.path.join(adir, "attach.json"), "w") as f:
        json.dump(cfg, f)
    return adir, cfg


def status(adir):
    try:
        with open(os.path.join(adir, "status.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def start(adir, procs):
    p = subprocess.Popen([VOLUME_BIN, "attach", adir], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    procs.append(p)
    st = wait_for(lambda: status(adir).get("state") in ("ready", "failed") and status(adir),
                  30, what="attach ready")
    return p, st


def test_a_volume_attaches_formats_serves_and_detaches(tmp):
    """Formatted at attach with its root owned by the given user; what a
    mounted file system writes and syncs is in the replica file; SIGTERM
    waits for the unmount, then clears the device and leaves the replica
    a clean ext4; the FUSE mount is never in the node's namespace."""
    d, procs = tmp
    adir, cfg = attach_dir(d)
    p, st = start(adir, procs)
    assert st["state"] == "ready", st
    assert st["device"].startswith("/dev/loop") and st["identity"] == "hf:va:1", st
    assert st["pid"] == p.pid
    assert not mounts_under(d) or all(not m.endswith("/fuse") for m in mounts_under(d))
    with open("/proc/self/mountinfo") as f:
        assert "holdfast-volume" not in f.read()
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    assert os.stat(mnt).st_uid == 65534
    sv = os.statvfs(mnt)
    assert 100 << 20 < sv.f_blocks * sv.f_frsize <= SIZE
    payload = os.urandom(3 << 20)
    with open(os.path.join(mnt, "blob"), "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    # Detach waits for the file system on the device.
    p.send_signal(signal.SIGTERM)
    wait_for(lambda: "waiting" in (status(adir).get("message") or ""), 10, what="detach waiting")
    assert p.poll() is None
    subprocess.run(["umount", mnt], check=True)
    assert p.wait(timeout=20) == 0, p.stdout.read()
    st = status(adir)
    assert st["state"] == "detached" and st["device"] is None, st
    dev = os.path.basename(cfg["replica"])
    assert not loops_named(d), dev
    # The replica alone is the file system, clean and holding the data.
    fsck = subprocess.run(["e2fsck", "-fn", cfg["replica"]], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    out = subprocess.run(["debugfs", "-R", "cat /blob", cfg["replica"]], capture_output=True)
    assert out.stdout == payload
    # Thin: a 128 MiB volume with 3 MiB written holds far less than its size.
    assert os.stat(cfg["replica"]).st_blocks * 512 < 32 << 20


def test_reattach_keeps_the_data_and_does_not_format_again(tmp):
    d, procs = tmp
    adir, cfg = attach_dir(d)
    p, st = start(adir, procs)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    with open(os.path.join(mnt, "keep"), "w") as f:
        f.write("kept\n")
    subprocess.run(["umount", mnt], check=True)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    adir, cfg = attach_dir(d, format=False, epoch=2)
    p, st = start(adir, procs)
    assert st["state"] == "ready" and st["identity"] == "hf:va:2", st
    subprocess.run(["mount", st["device"], mnt], check=True)
    with open(os.path.join(mnt, "keep")) as f:
        assert f.read() == "kept\n"
    subprocess.run(["umount", mnt], check=True)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0


def test_killed_attach_loses_no_acknowledged_write(tmp):
    """kill -9 of the attach process under a mounted file system: every
    write fsync'd before is in the replica; later I/O fails instead of
    landing anywhere; nothing stays mounted in the node's namespace but
    the test's own mount."""
    d, procs = tmp
    adir, cfg = attach_dir(d)
    p, st = start(adir, procs)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    payload = os.urandom(1 << 20)
    with open(os.path.join(mnt, "acked"), "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.sync()
    p.kill()
    p.wait()
    w = subprocess.run(["dd", "if=/dev/zero", f"of={mnt}/after", "bs=1M", "count=4",
                        "oflag=direct", "conv=fsync"], capture_output=True, text=True)
    assert w.returncode != 0, "a write after the attach process died must fail"
    subprocess.run(["umount", mnt], check=False)
    # The loop device frees itself (autoclear) once its last user, the
    # mount, is gone: a dead attach process leaves no device behind.
    name = os.path.basename(st["device"])
    wait_for(lambda: not os.path.exists(f"/sys/block/{name}/loop/backing_file"), 10,
             what=f"{name} released")
    # The journal replays on the next mount; the data is there.
    fsck = subprocess.run(["e2fsck", "-fy", cfg["replica"]], capture_output=True, text=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr
    out = subprocess.run(["debugfs", "-R", "cat /acked", cfg["replica"]], capture_output=True)
    assert out.stdout == payload


def test_bad_attach_files_fail_clearly_and_one_dir_has_one_process(tmp):
    d, procs = tmp
    adir, _ = attach_dir(d, name="b", size=1000)
    p, st = start(adir, procs)
    assert st["state"] == "failed" and "size" in st["message"], st
    assert p.wait(timeout=10) == 1
    adir, _ = attach_dir(d, name="c", speed=3)
    p, st = start(adir, procs)
    assert st["state"] == "failed" and 'unknown key "speed"' in st["message"], st
    # A larger replica is never taken as this volume (volumes never
    # shrink); a smaller one is grown (the volume grew while detached).
    with open(os.path.join(d, "e.replica"), "wb") as f:
        f.truncate(SIZE * 2)
    adir, _ = attach_dir(d, name="e")
    p, st = start(adir, procs)
    assert st["state"] == "failed" and "never shrink" in st["message"], st
    # One attach process per directory.
    adir, _ = attach_dir(d, name="f")
    p, st = start(adir, procs)
    assert st["state"] == "ready"
    second = subprocess.run([VOLUME_BIN, "attach", adir], capture_output=True, text=True,
                            timeout=10)
    assert second.returncode == 3 and str(p.pid) in second.stderr, second.stderr
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0


def run_task(d, name, cmd, mounts):
    """A task under holdfast-shim, as the agent starts one, in a mount
    namespace of its own with the given mounts; returns (taskdir, status)."""
    shim = os.path.join(os.path.dirname(BIN), "holdfast-shim")
    taskdir = os.path.join(d, name)
    sandbox = os.path.join(d, name + "-sandbox")
    os.makedirs(taskdir)
    os.makedirs(sandbox)
    doc = {"task_id": f"{name}-0-server__" + uuid.uuid4().hex, "cmd": cmd,
           "env": {"PATH": "/usr/bin:/bin"}, "sandbox": sandbox, "rlimits": [],
           "cpus": 0.5, "memory_mb": 256, "log_max_bytes": 1 << 20, "log_keep": 1,
           "kill_grace_period": 5, "user": None, "isolate": True, "mounts": mounts}
    with open(os.path.join(taskdir, "launch.json"), "w") as f:
        json.dump(doc, f)
    r = subprocess.run([shim, "--dir", taskdir], capture_output=True, text=True, timeout=30)
    with open(os.path.join(taskdir, "status.json")) as f:
        st = json.load(f)
    return taskdir, sandbox, st, r


def test_a_task_mounts_its_attached_volume_by_identity(tmp):
    """The shim mounts the attached device in the task's namespace when
    it carries the expected identity, and refuses one that does not (an
    older epoch, another volume): the task never starts on the wrong
    disk."""
    d, procs = tmp
    adir, cfg = attach_dir(d)
    p, st = start(adir, procs)
    dev, ident = st["device"], st["identity"]
    taskdir, sandbox, tst, r = run_task(
        d, "good", "echo written > data/x && sync && stat -f -c %T data && exec sleep 100",
        [{"device": dev, "expect": ident, "fstype": "ext4", "target": "data"}])
    assert tst["state"] == "running", (tst, r.stderr)
    out = wait_for(lambda: (lambda t: t if "ext" in t else None)(
        open(os.path.join(sandbox, "stdout")).read()), 10, what="the task's output")
    assert out.split() == ["ext2/ext3"], out
    # Not in the node's namespace: there the directory is empty.
    assert os.listdir(os.path.join(sandbox, "data")) == []
    for wrong in ("hf:va:2", "hf:other:1"):
        _, _, bad, r = run_task(d, "bad" + wrong[3:].replace(":", "-"), "sleep 100",
                                [{"device": dev, "expect": wrong, "fstype": "ext4",
                                  "target": "data"}])
        assert bad["state"] == "failed-to-start", bad
        assert dev in bad["message"] and wrong in bad["message"], bad["message"]
    os.kill(tst["shim_pid"], signal.SIGTERM)
    wait_for(lambda: not os.path.exists(f"/proc/{tst['shim_pid']}"), 20, what="task stopped")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    out = subprocess.run(["debugfs", "-R", "cat /x", cfg["replica"]], capture_output=True,
                         text=True)
    assert out.stdout == "written\n"


def test_format_never_wipes_a_file_system(tmp):
    """A first attach retried (format still asked) keeps what is there."""
    d, procs = tmp
    adir, cfg = attach_dir(d)
    p, st = start(adir, procs)
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    subprocess.run(["mount", st["device"], mnt], check=True)
    with open(os.path.join(mnt, "precious"), "w") as f:
        f.write("data\n")
    subprocess.run(["umount", mnt], check=True)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    adir, cfg = attach_dir(d, format=True, epoch=2)
    p, st = start(adir, procs)
    subprocess.run(["mount", st["device"], mnt], check=True)
    with open(os.path.join(mnt, "precious")) as f:
        assert f.read() == "data\n"
    subprocess.run(["umount", mnt], check=True)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
