"""Snapshots of external volumes end to end (`holdfast volume snapshot`,
`snapshots`, `snapshot-delete`, `restore`; the API routes under
/v1/external-volumes/{name}/snapshots): a running task's volume is
snapshotted while it writes, the snapshot is listed ready with the
replica that holds it, later writes leave it alone, a restore restarts the
pod on the volume as the snapshot had it (and keeps the later snapshot),
deletes go, and refusals change nothing and say why."""
import json
import os

import pytest

from holdfast_harness import Cluster, wait_for, write

SPEC = """
name: snap
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size=128M
    snapshot-hooks:
      before: "test ! -e data/nohook && echo before >> data/hooks && sync"
      after: "echo after >> data/hooks && sync"
      timeout: 30
    tasks:
      server:
        goal: RUNNING
        cmd: "echo start >> data/starts; sync data/starts; exec sleep 100000"
        cpus: 0.1
        memory: 32
"""

VOL = "snap-db-0"


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol-snap")
    c = Cluster(tmp)
    c.start_server()
    c.start_agent(extra=("--storage", os.path.join(str(tmp), "pool") + ",size=2G"))
    c.deploy(write(os.path.join(str(tmp), "snap.yml"), SPEC), timeout=180)
    try:
        yield c
    finally:
        c.stop()


def sh(cl, script):
    return cl.cli("--service", "snap", "task", "exec", "db-0-server", "--", "sh", "-c",
                  script, check=False)


def file_in_task(cl, name):
    p = sh(cl, f"cat data/{name} 2>/dev/null || echo MISSING")
    assert p.returncode == 0, p.stderr
    return p.stdout


def snaps(cl):
    st, body = cl.api("GET", f"/v1/external-volumes/{VOL}/snapshots")
    assert st == 200, body
    return {s["name"]: s for s in body["snapshots"]}


def metrics(cl):
    import urllib.request
    req = urllib.request.Request(cl.url + "/metrics", headers=cl._auth())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def events_of(cl, kind="snapshot"):
    with open(os.path.join(cl.server_data, "events.jsonl")) as f:
        items = [json.loads(line) for line in f if line.strip()]
    return [e for e in items if e.get("kind") == kind]


def test_snapshot_list_restore_delete(cl):
    assert sh(cl, "echo one > data/f && sync").returncode == 0
    p = cl.cli("volume", "snapshot", VOL, "--name", "first", "--wait", "--timeout", "60")
    assert "snapshot first of volume snap-db-0: ready" in p.stdout, p.stdout + p.stderr
    # The pod's hooks ran in the task around it.
    assert file_in_task(cl, "hooks") == "before\nafter\n"
    s = snaps(cl)["first"]
    assert s["state"] == "ready" and len(s["replicas"]) == 1 and s["taken"] > 0, s
    assert s["size"] == 128 << 20 and s["why"] is None, s
    # The volume goes on; a second snapshot, by the API, named from the time.
    assert sh(cl, "echo two > data/f && echo new > data/g && sync").returncode == 0
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/snapshots", {})
    assert st == 202 and body["snapshot"]["state"] == "ready", body
    assert body["hooks"]["before"]["exit_code"] == 0, body
    assert body["hooks"]["after"]["exit_code"] == 0, body
    second = body["snapshot"]["name"]
    # A before hook that fails refuses the snapshot; after still runs.
    assert sh(cl, "touch data/nohook").returncode == 0
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/snapshots", {"name": "nope"})
    assert st == 409 and "before hook in task db-0-server exited 1" in body["message"], body
    assert "no snapshot was taken" in body["message"], body
    assert "nope" not in snaps(cl)
    assert file_in_task(cl, "hooks").endswith("after\nafter\n")
    assert sh(cl, "rm data/nohook").returncode == 0
    wait_for(lambda: snaps(cl)[second]["state"] == "ready", 60, what="second ready")
    assert sh(cl, "echo three > data/f && sync").returncode == 0
    # The list, for people and for programs.
    out = cl.cli("volume", "snapshots", VOL).stdout
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "TAKEN"], out
    assert [ln.split()[0] for ln in lines[1:]] == ["first", second], out
    assert all(ln.split()[1] == "ready" for ln in lines[1:]), out
    js = json.loads(cl.cli("volume", "snapshots", VOL, "--json").stdout)
    assert [x["name"] for x in js["snapshots"]] == ["first", second]
    # In /metrics: by state, and when the newest was taken.
    text = metrics(cl)
    assert f'holdfast_volume_snapshots{{volume="{VOL}",state="ready"}} 2' in text, text[-2000:]
    assert f'holdfast_volume_last_snapshot_timestamp_seconds{{volume="{VOL}"}}' in text
    # Refusals say why and change nothing.
    for path, body, status, words in (
            (f"/v1/external-volumes/{VOL}/snapshots", {"name": "first"}, 409, "already"),
            (f"/v1/external-volumes/{VOL}/snapshots", {"name": "bad/name"}, 409, "cannot name"),
            (f"/v1/external-volumes/{VOL}/snapshots", {"name": 7}, 400, "snapshot name"),
            ("/v1/external-volumes/nope/snapshots", {}, 404, "no volume"),
            (f"/v1/external-volumes/{VOL}/restore", {"snapshot": "nope"}, 404, "no snapshot"),
            (f"/v1/external-volumes/{VOL}/restore", {}, 400, "snapshot")):
        st, resp = cl.api("POST", path, body)
        assert st == status, (path, body, st, resp)
        assert words in json.dumps(resp), (path, resp)
    assert list(snaps(cl)) == ["first", second]
    p = cl.cli("volume", "snapshot-delete", VOL, "nope", check=False)
    assert p.returncode != 0 and "no snapshot nope" in p.stderr, p.stderr
    # Restore to the first: the pod restarts on the volume as it was.
    before = cl.tasks("snap")["db-0-server"]
    p = cl.cli("volume", "restore", VOL, "--snapshot", "first", "--wait", "--timeout", "120")
    assert "restored to first" in p.stdout, p.stdout + p.stderr
    wait_for(lambda: cl.restarted("snap", "db-0-server", before)
             and cl.tasks("snap")["db-0-server"]["status"] == "RUNNING", 60,
             what="the pod running again after the restore")
    assert file_in_task(cl, "f") == "one\n"
    assert file_in_task(cl, "g") == "MISSING\n"
    # Taken between the hooks: before is in it, after is not.
    assert file_in_task(cl, "hooks") == "before\n"
    st, v = cl.api("GET", f"/v1/external-volumes/{VOL}")
    assert v["restore"] is None, v
    # The later snapshot stays, still ready; restoring to it brings its bytes.
    assert snaps(cl)[second]["state"] == "ready"
    p = cl.cli("volume", "restore", VOL, "--snapshot", second, "--wait", "--timeout", "120")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: cl.tasks("snap")["db-0-server"]["status"] == "RUNNING", 60,
             what="running after the second restore")
    wait_for(lambda: file_in_task(cl, "g") == "new\n", 30, what="the second snapshot's g")
    assert file_in_task(cl, "f") == "two\n"
    ev = events_of(cl)
    afters = [(e.get("object"), e.get("after")) for e in ev]
    for word in ("taking", "ready", "restoring", "restored"):
        assert (f"{VOL}@first", word) in afters, afters
    # Delete both; the list ends empty.
    assert cl.cli("volume", "snapshot-delete", VOL, "first", "--wait", "--timeout", "60").returncode == 0
    p = cl.cli("volume", "snapshot-delete", VOL, second, "--wait", "--timeout", "60", "--json")
    assert p.returncode == 0, p.stderr
    assert snaps(cl) == {}
    assert "no snapshots" in cl.cli("volume", "snapshots", VOL).stdout


def test_snapshot_hooks_are_checked_in_the_spec(cl, tmp_path):
    """A hook task that is not a RUNNING task of the pod, or hooks with no
    command, are spec errors with file:line:col."""
    bad = SPEC.replace("      timeout: 30\n", "      timeout: 30\n      task: nosuch\n")
    p = cl.cli("spec", "validate", write(str(tmp_path / "bad.yml"), bad), check=False)
    assert p.returncode != 0 and "not a task of this pod" in p.stderr + p.stdout, p.stderr
    assert "bad.yml:" in p.stderr + p.stdout
    empty = SPEC.replace('      before: "test ! -e data/nohook && echo before >> data/hooks && sync"\n',
                         "").replace('      after: "echo after >> data/hooks && sync"\n', "")
    p = cl.cli("spec", "validate", write(str(tmp_path / "empty.yml"), empty), check=False)
    assert p.returncode != 0 and "needs 'before', 'after' or both" in p.stderr + p.stdout, p.stderr
    long = SPEC.replace("timeout: 30", "timeout: 2h")
    p = cl.cli("spec", "validate", write(str(tmp_path / "long.yml"), long), check=False)
    assert p.returncode != 0 and "at most 3600 seconds" in p.stderr + p.stdout, p.stderr


def test_a_clone_of_a_snapshot_serves_another_service(cl, tmp_path):
    """`volume clone` makes a new volume from a snapshot for another
    service, which deploys on it and sees the snapshot's files; the
    source goes on unchanged."""
    assert sh(cl, "echo for-the-copy > data/c && sync").returncode == 0
    cl.cli("volume", "snapshot", VOL, "--name", "forclone", "--wait", "--timeout", "60")
    assert sh(cl, "echo later > data/c && sync").returncode == 0
    p = cl.cli("volume", "clone", VOL, "forclone", "copy-db-0", "--for-service", "copy",
               "--wait", "--timeout", "60")
    assert "volume copy-db-0: ready" in p.stdout, p.stdout + p.stderr
    st, v = cl.api("GET", "/v1/external-volumes/copy-db-0")
    assert st == 200 and v["service"] == "copy" and v["state"] == "kept", v
    assert v["formatted"] and all(r["state"] == "in_sync" for r in v["replicas"]), v
    # Refusals: the name is taken; an unknown snapshot; the snapshot is
    # needed by no clone any more, so it may go.
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/snapshots/forclone/clone",
                      {"name": "copy-db-0", "service": "copy"})
    assert st == 409 and "exists" in body["message"], body
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/snapshots/nope/clone",
                      {"name": "x-db-0"})
    assert st == 404, body
    copy = SPEC.replace("name: snap", "name: copy")
    cl.deploy(write(str(tmp_path / "copy.yml"), copy), timeout=120)
    p = cl.cli("--service", "copy", "task", "exec", "db-0-server", "--", "cat", "data/c")
    assert p.stdout == "for-the-copy\n", p.stdout + p.stderr
    st, v = cl.api("GET", "/v1/external-volumes/copy-db-0")
    assert v["state"] == "active" and v["instance"] == "db-0", v
    assert file_in_task(cl, "c") == "later\n"
    assert cl.cli("volume", "snapshot-delete", VOL, "forclone", "--wait",
                  "--timeout", "60").returncode == 0


def test_a_clone_of_an_xfs_volume_mounts_beside_its_source(cl, tmp_path):
    """An XFS clone carries its source's file system UUID, which XFS
    refuses to mount twice on one kernel unless told not to check: the
    clone's service deploys on the node where the source is mounted and
    reads the snapshot's files."""
    src = SPEC.replace("name: snap", "name: xsrc").replace(
        "driver-options: size=128M", "driver-options: size=400M;fs=xfs")
    cl.deploy(write(str(tmp_path / "xsrc.yml"), src), timeout=180)
    p = cl.cli("--service", "xsrc", "task", "exec", "db-0-server", "--", "sh", "-c",
               "stat -f -c %T data && echo from-xfs > data/x && sync", check=False)
    assert p.returncode == 0 and p.stdout.startswith("xfs"), p.stdout + p.stderr
    cl.cli("volume", "snapshot", "xsrc-db-0", "--name", "x1", "--wait", "--timeout", "60")
    p = cl.cli("volume", "clone", "xsrc-db-0", "x1", "xcopy-db-0", "--for-service", "xcopy",
               "--wait", "--timeout", "60")
    assert "volume xcopy-db-0: ready" in p.stdout, p.stdout + p.stderr
    copy = src.replace("name: xsrc", "name: xcopy")
    cl.deploy(write(str(tmp_path / "xcopy.yml"), copy), timeout=120)
    p = cl.cli("--service", "xcopy", "task", "exec", "db-0-server", "--", "cat", "data/x")
    assert p.stdout == "from-xfs\n", p.stdout + p.stderr
    # Both mounted at once, each writing its own.
    p = cl.cli("--service", "xcopy", "task", "exec", "db-0-server", "--", "sh", "-c",
               "echo copy > data/y && sync && cat data/y")
    assert p.stdout == "copy\n", p.stdout + p.stderr
    p = cl.cli("--service", "xsrc", "task", "exec", "db-0-server", "--", "sh", "-c",
               "test ! -e data/y && cat data/x")
    assert p.returncode == 0 and p.stdout == "from-xfs\n", p.stdout + p.stderr
