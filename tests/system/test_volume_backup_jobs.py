"""Backups that outlive their server and run on a schedule, end to end with
a real server, agent and s3rver behind the harness's SigV4-checking proxy
(whose PUTs a test can hold, so a backup stays in the middle):

- the server is killed with SIGKILL in the middle of a backup, and the
  backup's process is killed too: the server that starts again finds the
  backup in the volume's record, sees its node lost it, starts it again
  with the same id (it resumes: what the store holds is not sent again)
  and records it done; it restores to the same bytes;
- `volume backup-schedule` backs a volume up every few seconds and keeps
  the newest N backups in the store, deleting the others' manifests and
  every chunk no kept backup names; `--off` ends it;
- a pod's `backup-schedule` in the spec does the same for its volumes,
  and a wrong one is a spec error with file:line:col."""
import json
import os
import signal
import subprocess
import time

import pytest

from holdfast_harness import wait_for, write

from xvol_s3 import pool_cluster, s3, s3run  # noqa: F401
from xvol_s3 import task_sh as sh

SPEC = """
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
        driver-options: size=64M
{extra}    tasks:
      server:
        goal: RUNNING
        cmd: "exec sleep 100000"
        cpus: 0.1
        memory: 32
"""

MiB = 1 << 20


def spec(name, extra=""):
    return SPEC.format(name=name, extra=extra)


@pytest.fixture(scope="module")
def cl(tmp_path_factory, s3):
    tmp = tmp_path_factory.mktemp("xvol-backup-jobs")
    c = pool_cluster(tmp, "2G", s3)
    assert s3run(s3, "s3", "--endpoint", s3.endpoint, "mb", "vault").returncode == 0
    try:
        yield c
    finally:
        s3.proxy.release_puts()
        c.stop()


def store_keys(s3, prefix):
    """The store's keys under vault/prefix, read with s3cmd's listing."""
    r = s3run(s3, "s3", "--endpoint", s3.endpoint, "ls", f"vault/{prefix}")
    assert r.returncode == 0, r.stderr
    return sorted(ln.split()[-1] for ln in r.stdout.splitlines() if ln.strip())


def manifests(s3, prefix, vol):
    return [k for k in store_keys(s3, f"{prefix}/{vol}/backups/") if k.endswith(".json")]


def manifest(s3, key):
    r = s3run(s3, "s3", "--endpoint", s3.endpoint, "get", key, "-")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def events(cl, kind):
    out = []
    with open(os.path.join(cl.server_data, "events.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if e.get("kind") == kind:
                out.append(e)
    return out


def image_file(img, path):
    return subprocess.run(["sh", "-c", f"debugfs -R 'cat /{path}' {img} 2>/dev/null | sha256sum"],
                          capture_output=True, text=True).stdout.split()[0]


def test_a_backup_outlives_a_killed_server_and_a_killed_process(cl, s3, tmp_path):
    vol = "kb-db-0"
    cl.deploy(write(str(tmp_path / "kb.yml"), spec("kb")), timeout=180)
    sh(cl, "kb", "head -c 6000000 /dev/urandom > data/big; echo one > data/small; sync")
    big = sh(cl, "kb", "sha256sum < data/big").split()[0]
    s3.proxy.hold_puts()
    try:
        st, r = cl.api("POST", f"/v1/external-volumes/{vol}/backups",
                       {"to": "s3://vault/kill", "credential": "site"})
        assert st == 202, r
        bid = r["backup"]
        wait_for(lambda: s3.proxy.held > 0, 60, what="the backup's first PUT")
        # The backup under way is in the volume's record, in the store.
        st, v = cl.api("GET", f"/v1/external-volumes/{vol}")
        assert v["backup_job"]["id"] == bid and v["backup_job"]["credential"] == "site", v
        assert s3.secret_key not in json.dumps(v)
        cl.kill_server()
        # Its process is killed too: the node has lost it.
        pids = cl.pids_matching(f"--id {bid}")
        assert pids, "the backup's process"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        cl.start_server()
    finally:
        s3.proxy.release_puts()
    st, v = cl.api("GET", f"/v1/external-volumes/{vol}")
    assert v["backup_job"]["id"] == bid, v

    def done():
        st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
        return b if b["last_backup"]["id"] == bid else None
    b = wait_for(done, 120, interval=0.5, what="the backup finished by the new server")
    job = [j for j in b["jobs"] if j["backup"] == bid][0]
    assert job["state"] == "done" and job["restarts"] >= 1, job
    # Started again, it sent only what the store lacked.
    assert job["present"] > 0, job
    st, v = cl.api("GET", f"/v1/external-volumes/{vol}")
    assert v["backup_job"] is None and v["last_backup"]["at"] > 0, v
    assert f"backup-{bid}" in [s["name"] for s in v["snapshots"]], v
    # Its events: started, started again, done.
    mine = [(e["before"], e["after"], e["who"]) for e in events(cl, "backup")
            if e["object"] == bid]
    # Asked by the operator; started again and ended by the server.
    assert mine[0] == (None, "running", "operator") and \
        ("running", "running", "scheduler") in mine and \
        mine[-1] == ("running", "done", "scheduler"), mine
    # It restores to the same bytes.
    img = str(tmp_path / "kill.img")
    r = s3run(s3, "restore", "--endpoint", s3.endpoint, "--from", "s3://vault/kill",
              "--volume", vol, "--backup", bid, "--to", img)
    assert r.returncode == 0, r.stderr
    assert image_file(img, "big") == big
    # The secret reached no log or event.
    for root, _, files in os.walk(cl.tmp):
        for name in files:
            if name.endswith(".log") or name == "events.jsonl":
                with open(os.path.join(root, name), errors="replace") as f:
                    assert s3.secret_key not in f.read(), os.path.join(root, name)


def test_a_backup_under_way_is_cancelled(cl, s3, tmp_path):
    """volume backup NAME --cancel: the node ends the process, the record
    lets the backup go (no server starts it again), its snapshot goes, an
    event says so; the next backup runs as usual."""
    vol = "cx-db-0"
    cl.deploy(write(str(tmp_path / "cx.yml"), spec("cx")), timeout=180)
    sh(cl, "cx", "head -c 4000000 /dev/urandom > data/big; sync")
    s3.proxy.hold_puts()
    try:
        st, r = cl.api("POST", f"/v1/external-volumes/{vol}/backups",
                       {"to": "s3://vault/cancel", "credential": "site"})
        assert st == 202, r
        bid = r["backup"]
        wait_for(lambda: s3.proxy.held > 0, 60, what="the backup's first PUT")
        assert cl.pids_matching(f"--id {bid}"), "the backup's process"
        # Not the one under way: nothing happens.
        st, body = cl.api("DELETE", f"/v1/external-volumes/{vol}/backups/nosuch")
        assert st == 404 and "no backup nosuch" in body["message"], body
        p = cl.cli("volume", "backup", vol, "--cancel")
        assert f"backup {bid} of volume {vol}: cancelled (its process stopped)" in p.stdout, \
            p.stdout
    finally:
        s3.proxy.release_puts()
    assert not cl.pids_matching(f"--id {bid}"), "the backup's process still runs"
    st, v = cl.api("GET", f"/v1/external-volumes/{vol}")
    assert v["backup_job"] is None and v["last_backup"]["id"] is None, v
    wait_for(lambda: f"backup-{bid}" not in [
        x["name"] for x in cl.api("GET", f"/v1/external-volumes/{vol}")[1]["snapshots"]],
        30, interval=0.5, what="the cancelled backup's snapshot deleted")
    mine = [(e["before"], e["after"], e["who"]) for e in events(cl, "backup")
            if e["object"] == bid]
    assert mine[-1] == ("running", "cancelled", "operator"), mine
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert [j["state"] for j in b["jobs"] if j["backup"] == bid] == ["cancelled"], b
    # Nobody starts it again (the leader's thread would within seconds).
    time.sleep(8)
    assert not cl.pids_matching(f"--id {bid}")
    st, v = cl.api("GET", f"/v1/external-volumes/{vol}")
    assert v["backup_job"] is None, v
    # Cancelling again: it is no longer under way.
    p = cl.cli("volume", "backup", vol, "--cancel", bid, check=False)
    assert p.returncode != 0 and "no backup" in p.stderr, p.stderr
    # The next backup runs and completes.
    p = cl.cli("volume", "backup", vol, "--to", "s3://vault/cancel", "--credential", "site",
               "--wait", "--timeout", "120", timeout=180)
    assert "done" in p.stdout, p.stdout + p.stderr


def test_a_schedule_backs_up_and_keeps_the_newest(cl, s3, tmp_path):
    vol = "sc-db-0"
    cl.deploy(write(str(tmp_path / "sc.yml"), spec("sc")), timeout=180)
    # Refusals: an unknown credential, a bad place, a bad duration.
    p = cl.cli("volume", "backup-schedule", vol, "--to", "s3://vault/sched", "--credential",
               "nope", "--every", "2s", check=False)
    assert p.returncode != 0 and "nope" in p.stderr, p.stderr
    st, body = cl.api("PUT", f"/v1/external-volumes/{vol}/backup-schedule",
                      {"to": "vault/sched", "credential": "site", "every": 2})
    assert st == 400 and "s3://" in body["message"], body
    p = cl.cli("volume", "backup-schedule", vol, "--to", "s3://vault/sched", "--credential",
               "site", "--every", "soon", check=False)
    assert p.returncode != 0 and "--every" in p.stderr, p.stderr
    p = cl.cli("volume", "backup-schedule", vol, "--to", "s3://vault/sched", "--credential",
               "site", "--every", "2s", "--keep", "2")
    assert "keeping the newest 2 (its own schedule)" in p.stdout, p.stdout
    # The credential it uses cannot go while it does.
    st, body = cl.api("DELETE", "/v1/credentials/site")
    assert st == 409 and "backup schedule of volume sc-db-0" in body["message"], body

    def made():
        return [e for e in events(cl, "backup")
                if e["service"] == "sc" and e["after"] == "done"]
    seen = set()
    # A new file between backups: each backup's new chunks differ.
    for i in range(4):
        sh(cl, "sc", f"head -c 1500000 /dev/urandom > data/f{i % 2}; sync")
        n = len(made())
        wait_for(lambda: len(made()) > n, 60, interval=0.5, what=f"scheduled backup {i}")
        seen.update(e["object"] for e in made())
    assert len(seen) >= 4, seen
    # Started by the schedule, not by anyone.
    started = [e for e in events(cl, "backup") if e["service"] == "sc" and
               e["before"] is None and e["after"] == "running"]
    assert started and all(e["who"] == "scheduler" for e in started), started
    snaps = [e for e in events(cl, "snapshot") if e["object"].startswith(vol + "@backup-")]
    assert snaps and all(e["who"] == "scheduler" for e in snaps), snaps
    # The store keeps the newest two, and the chunks they name only.
    wait_for(lambda: len(manifests(s3, "sched", vol)) == 2, 30, interval=0.5,
             what="retention")
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"]["source"] == "volume" and b["schedule"]["keep"] == 2, b
    assert b["schedule"]["every"] == 2 and b["schedule"]["next"] > 0, b
    # Off: no more backups, and the two kept stay whole.
    p = cl.cli("volume", "backup-schedule", vol, "--off")
    assert "no backup schedule" in p.stdout, p.stdout
    time.sleep(1)  # one under way may still end
    n = len(made())
    kept = manifests(s3, "sched", vol)
    names = set()
    for k in kept:
        names.update(h for _, h in manifest(s3, "vault/" + k)["chunks"])
    chunks = {k.rsplit("/", 1)[1] for k in store_keys(s3, f"sched/{vol}/chunks/")}
    assert chunks == names, (sorted(chunks - names), sorted(names - chunks))
    assert len(seen) > len(kept)
    pruned = [e for e in events(cl, "backup") if e["object"] == vol and e["after"] == "pruned"]
    assert pruned and "deleted from s3://vault/sched (keep 2)" in pruned[-1]["why"], pruned
    newest = sorted(kept, key=lambda k: manifest(s3, "vault/" + k)["created"])[-1]
    bid = newest.rsplit("/", 1)[1][:-5]
    img = str(tmp_path / "sched.img")
    r = s3run(s3, "restore", "--endpoint", s3.endpoint, "--from", "s3://vault/sched",
              "--volume", vol, "--backup", bid, "--to", img)
    assert r.returncode == 0, r.stderr
    # Without --backup, a restore takes the newest.
    p = cl.cli("volume", "restore", "sc2-db-0", "--from", "s3://vault/sched", "--volume", vol,
               "--credential", "site", "--for-service", "sc2", "--json")
    assert json.loads(p.stdout)["backup"] == bid, p.stdout
    time.sleep(4)
    assert len(made()) == n, "a backup after --off"
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"] is None, b


BK_SCHED = """    backup-schedule:
      to: s3://vault/spec
      credential: site
      every: 2s
      keep: 1
"""


def test_a_pods_schedule_in_the_spec(cl, s3, tmp_path):
    vol = "sp-db-0"
    cl.deploy(write(str(tmp_path / "sp.yml"), spec("sp", BK_SCHED)), timeout=180)
    sh(cl, "sp", "echo hello > data/hello; sync")

    def manifests_now():
        return manifests(s3, "spec", vol)
    wait_for(lambda: manifests_now(), 60, interval=0.5, what="a backup from the spec's schedule")
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"]["source"] == "spec" and b["schedule"]["keep"] == 1, b
    out = cl.cli("volume", "backups", vol).stdout
    assert "schedule: every 2 s to s3://vault/spec, keep 1 (spec)" in out, out
    # Keep 1: after the next ones, one manifest is left.
    n = len([e for e in events(cl, "backup") if e["service"] == "sp" and e["after"] == "done"])
    wait_for(lambda: len([e for e in events(cl, "backup")
                          if e["service"] == "sp" and e["after"] == "done"]) >= n + 2,
             60, interval=0.5, what="two more scheduled backups")
    wait_for(lambda: len(manifests_now()) == 1, 30, interval=0.5, what="keep 1")
    # The volume's own schedule goes before the spec's.
    cl.cli("volume", "backup-schedule", vol, "--to", "s3://vault/own", "--credential", "site",
           "--every", "1h")
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"]["source"] == "volume" and b["schedule"]["to"] == "s3://vault/own", b
    cl.cli("volume", "backup-schedule", vol, "--off")
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"]["source"] == "spec", b
    # An update changes the spec's schedule, then takes it away, relaunching
    # nothing.
    before = cl.tasks("sp")["db-0-server"]
    f = write(str(tmp_path / "sp.yml"), spec("sp", BK_SCHED.replace("every: 2s", "every: 1h")))
    p = cl.cli("service", "update", "sp", "-f", f, "--wait", "--timeout", "60")
    assert "backup-schedule" in p.stdout and "no change" not in p.stdout, p.stdout
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"]["every"] == 3600 and b["schedule"]["source"] == "spec", b
    st, body = cl.api("DELETE", "/v1/credentials/site")
    assert st == 409 and "service sp, pod db" in body["message"], body
    # A schedule that cannot start says so in the events, once.
    f = write(str(tmp_path / "sp.yml"),
              spec("sp", BK_SCHED.replace("credential: site", "credential: ghost")))
    cl.cli("service", "update", "sp", "-f", f, "--wait", "--timeout", "60")

    def stuck():
        return [e for e in events(cl, "backup") if e["object"] == vol and
                e["after"] == "not started"]
    wait_for(lambda: stuck(), 30, interval=0.5, what="the stuck schedule's event")
    assert "ghost" in stuck()[0]["why"] and stuck()[0]["who"] == "scheduler", stuck()
    time.sleep(5)  # retries every 2 s: still one event
    assert len(stuck()) == 1, stuck()
    f = write(str(tmp_path / "sp.yml"), spec("sp", ""))
    cl.cli("service", "update", "sp", "-f", f, "--wait", "--timeout", "60")
    st, b = cl.api("GET", f"/v1/external-volumes/{vol}/backups")
    assert b["schedule"] is None, b
    assert not cl.restarted("sp", "db-0-server", before), "the task ran again"
    # Wrong ones are spec errors that say where.
    for bad, want in (
            (BK_SCHED.replace("s3://vault/spec", "vault/spec"), ":14:11: "),
            (BK_SCHED.replace("      credential: site\n", ""), "credential"),
            (BK_SCHED.replace("every: 2s", "every: 0.5s"), "at least 1s"),
            (BK_SCHED.replace("keep: 1", "keep: lots"), "keep")):
        f = write(str(tmp_path / "bad.yml"), spec("sp", bad))
        p = cl.cli("spec", "validate", f, check=False)
        assert p.returncode != 0 and want in p.stdout + p.stderr, p.stdout + p.stderr
        assert "bad.yml:" in p.stdout + p.stderr
    nov = spec("nv", BK_SCHED).replace("""    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size=64M
""", "")
    p = cl.cli("spec", "validate", write(str(tmp_path / "nov.yml"), nov), check=False)
    assert p.returncode != 0 and "has none" in p.stdout + p.stderr, p.stdout + p.stderr


def test_a_restore_shows_progress_and_resumes_after_its_server_dies(cl, s3, tmp_path):
    """A volume made from a backup: its node's replica server makes the
    replica in the background (the other replicas stay served), `volume
    show` says how far, and when the replica server is killed in the
    middle, the one started again goes on from its journal."""
    vol = "rs-db-0"
    cl.deploy(write(str(tmp_path / "rs.yml"), spec("rs")), timeout=180)
    sh(cl, "rs", "head -c 12000000 /dev/urandom > data/big; sync")
    big = sh(cl, "rs", "sha256sum < data/big").split()[0]
    r = json.loads(cl.cli("volume", "backup", vol, "--to", "s3://vault/rs", "--credential",
                          "site", "--wait", "--json").stdout)
    bid = r["backup"]
    s3.proxy.clear()
    s3.proxy.hold_gets(after=4, match="/chunks/")
    try:
        st, body = cl.api("POST", "/v1/external-volumes/rs2-db-0/from-backup", {
            "from": "s3://vault/rs", "backup": bid, "volume": vol, "credential": "site",
            "service": "rs2"})
        assert st == 202, body
        wait_for(lambda: s3.proxy.held_gets > 0, 60, what="the restore's held GETs")

        def made():
            st, v = cl.api("GET", "/v1/external-volumes/rs2-db-0")
            m = [x.get("made") for x in v["replicas"] if x.get("made")]
            return m[0] if m and m[0]["done"] > 0 else None
        m = wait_for(made, 30, what="progress in volume show")
        assert 0 < m["done"] < m["total"], m
        # The node's other replicas are served meanwhile: the running
        # service's volume takes writes.
        sh(cl, "rs", "echo more > data/more; sync")
        # Its replica server dies; the agent starts another.
        pids = cl.pids_matching(os.path.join(cl.agent_data, "vserve"))
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        # Answered before the kill, and held then (answered to no one).
        gets_before = len([e for e in s3.proxy.entries()
                           if e["method"] == "GET" and "/chunks/" in e["target"]])
        gets_before += s3.proxy.held_gets
    finally:
        s3.proxy.release_gets()
    p = cl.cli("volume", "restore", "rs2-db-0", "--from", "s3://vault/rs", "--backup", bid,
               "--volume", vol, "--credential", "site", "--for-service", "rs2", check=False)
    assert p.returncode != 0 and "exists" in p.stderr, p.stderr  # made once only

    def ready():
        st, v = cl.api("GET", "/v1/external-volumes/rs2-db-0")
        return v if all(not x.get("clone") for x in v["replicas"]) else None
    wait_for(ready, 120, interval=0.5, what="the restored replica made")
    chunk_gets = len([e for e in s3.proxy.entries()
                      if e["method"] == "GET" and "/chunks/" in e["target"]])
    man = manifest(s3, f"vault/rs/{vol}/backups/{bid}.json")
    # Resumed: the chunks written (and synced: "done" > 0) before the
    # kill were not fetched again.
    assert chunk_gets - gets_before < len(man["chunks"]), (chunk_gets, gets_before,
                                                           len(man["chunks"]))
    cl.deploy(write(str(tmp_path / "rs2.yml"), spec("rs2")), timeout=180)
    assert sh(cl, "rs2", "sha256sum < data/big").split()[0] == big
