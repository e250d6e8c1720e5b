"""Volume backups to S3 end to end (`holdfast credential create|list|
delete`, `holdfast volume backup|backups`, /v1/credentials and
/v1/external-volumes/{name}/backups) with a real agent and s3rver behind
the harness's SigV4-checking proxy: a named credential whose secret is
never shown back or logged, a full backup of a running task's volume, an
incremental one that sends only what changed and lets the older base
snapshot go, the store's catalogue, a restore of each backup (with
`holdfast-volume restore`) that gives back the files, and refusals."""
import json
import os
import subprocess

import pytest

from holdfast_harness import wait_for, write

from test_volume_snapshots import cat  # noqa: E402
from xvol_s3 import pool_cluster, s3, s3run, task_sh  # noqa: F401

SPEC = """
name: bk
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
    tasks:
      server:
        goal: RUNNING
        cmd: "exec sleep 100000"
        cpus: 0.1
        memory: 32
"""

VOL = "bk-db-0"
MiB = 1 << 20


@pytest.fixture(scope="module")
def cl(tmp_path_factory, s3):
    tmp = tmp_path_factory.mktemp("xvol-backup")
    c = pool_cluster(tmp)
    c.deploy(write(os.path.join(str(tmp), "bk.yml"), SPEC), timeout=180)
    try:
        yield c
    finally:
        c.stop()


def sh(cl, script):
    return task_sh(cl, "bk", script)


def test_credentials_backups_and_restores(cl, s3, tmp_path):
    assert s3run(s3, "s3", "--endpoint", s3.endpoint, "mb", "vault").returncode == 0
    p = cl.cli("credential", "create", "s3", "site", "--endpoint", s3.endpoint,
               "--region", s3.region, "--access-key", s3.access_key,
               "--secret-key", s3.secret_key)
    assert "credential site (s3" in p.stdout, p.stdout
    # Never shown back.
    out = cl.cli("credential", "list").stdout + cl.cli("credential", "list", "--json").stdout
    assert "site" in out and s3.secret_key not in out, out
    st, body = cl.api("GET", "/v1/credentials")
    assert body["credentials"][0]["secret_key"] == "(hidden)", body
    # A name in use, a bad endpoint.
    st, body = cl.api("POST", "/v1/credentials", {
        "type": "s3", "name": "site", "endpoint": s3.endpoint,
        "access_key": "a", "secret_key": "b"})
    assert st == 409, body
    st, body = cl.api("POST", "/v1/credentials", {
        "type": "s3", "name": "x", "endpoint": "ftp://h", "access_key": "a",
        "secret_key": "b"})
    assert st == 400 and "endpoint" in body["message"], body
    # A flag left out is named.
    p = cl.cli("credential", "create", "s3", "x", "--endpoint", s3.endpoint, check=False)
    assert p.returncode == 2 and "missing --access-key" in p.stderr, p.stderr
    sh(cl, "head -c 3000000 /dev/urandom > data/big; echo one > data/small; sync")
    big = sh(cl, "sha256sum data/big").split()[0]
    # Full.
    p = cl.cli("volume", "backup", VOL, "--to", "s3://vault/prod", "--credential", "site",
               "--wait", "--timeout", "120", "--json")
    r1 = json.loads(p.stdout)
    assert r1["base"] is None and r1["result"]["state"] == "done", r1
    assert r1["result"]["uploaded"] >= 3000000, r1
    first = r1["backup"]
    # Incremental: only the changed file's chunks are read and sent.
    sh(cl, "echo two > data/small; sync")
    p = cl.cli("volume", "backup", VOL, "--to", "s3://vault/prod", "--credential", "site",
               "--wait", "--timeout", "120", "--json")
    r2 = json.loads(p.stdout)
    assert r2["base"] == first and r2["result"]["state"] == "done", r2
    assert r2["result"]["reused"] > 50 * MiB, r2
    assert r2["result"]["uploaded"] < 3 * MiB, r2
    second = r2["backup"]
    # The first backup's snapshot went; the second's stays as the base.
    def names():
        return [x["name"] for x in cl.api("GET", f"/v1/external-volumes/{VOL}/snapshots")[1]
                ["snapshots"]]
    wait_for(lambda: names() == [f"backup-{second}"], 30, what="the old base deleted")
    # The catalogue, from the store.
    out = cl.cli("volume", "backups", VOL, "--from", "s3://vault/prod", "--credential",
                 "site").stdout
    assert f"last backup: {second} to s3://vault/prod" in out, out
    table = out[out.index("BACKUP "):].splitlines()[1:]
    rows = {ln.split()[0]: ln.split()[1] for ln in table if ln.strip()}
    assert rows == {first: "-", second: first}, out
    # Each restores to its files.
    for b, want in ((first, "one\n"), (second, "two\n")):
        img = str(tmp_path / f"{b}.img")
        r = s3run(s3, "restore", "--endpoint", s3.endpoint, "--from", "s3://vault/prod",
                  "--volume", VOL, "--backup", b, "--to", img)
        assert r.returncode == 0, r.stderr
        assert cat(img, "small").decode() == want
        h = subprocess.run(["sh", "-c", f"debugfs -R 'cat /big' {img} 2>/dev/null | sha256sum"],
                           capture_output=True, text=True).stdout.split()[0]
        assert h == big
    # Into a new volume for another service, which deploys on it.
    p = cl.cli("volume", "restore", "rst-db-0", "--from", "s3://vault/prod", "--backup", second,
               "--volume", VOL, "--credential", "site", "--for-service", "rst", "--wait",
               "--timeout", "120")
    assert "volume rst-db-0: ready" in p.stdout, p.stdout + p.stderr
    st, v = cl.api("GET", "/v1/external-volumes/rst-db-0")
    assert v["state"] == "kept" and v["formatted"] and v["size"] == 64 * MiB, v
    assert v["from_backup"]["backup"] == second, v
    cl.deploy(write(str(tmp_path / "rst.yml"), SPEC.replace("name: bk", "name: rst")),
              timeout=120)
    p = cl.cli("--service", "rst", "task", "exec", "db-0-server", "--", "cat", "data/small")
    assert p.stdout == "two\n", p.stdout + p.stderr
    p = cl.cli("--service", "rst", "task", "exec", "db-0-server", "--", "sha256sum", "data/big")
    assert p.stdout.split()[0] == big
    # A backup that is not there, a name in use.
    st, body = cl.api("POST", "/v1/external-volumes/x-db-0/from-backup", {
        "from": "s3://vault/prod", "backup": "nope", "volume": VOL, "credential": "site",
        "service": "x"})
    assert st == 409 and "backup nope" in body["message"], body
    st, body = cl.api("POST", "/v1/external-volumes/rst-db-0/from-backup", {
        "from": "s3://vault/prod", "backup": second, "volume": VOL, "credential": "site",
        "service": "x"})
    assert st == 409 and "exists" in body["message"], body
    # The secret is in no log or event.
    with open(os.path.join(cl.tmp, "server.log")) as f:
        assert s3.secret_key not in f.read()
    with open(os.path.join(cl.server_data, "events.jsonl")) as f:
        assert s3.secret_key not in f.read()
    for root, _, files in os.walk(cl.tmp):
        for name in files:
            if name.endswith(".log"):
                with open(os.path.join(root, name), errors="replace") as f:
                    assert s3.secret_key not in f.read(), os.path.join(root, name)
    # Refusals: an unknown credential; a bad place; delete then use.
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/backups",
                      {"to": "s3://vault/prod", "credential": "nope"})
    assert st == 409 and "no credential nope" in body["message"], body
    st, body = cl.api("POST", f"/v1/external-volumes/{VOL}/backups",
                      {"to": "vault/prod", "credential": "site"})
    assert st == 400, body
    assert cl.cli("credential", "delete", "site").returncode == 0
    p = cl.cli("credential", "delete", "site", check=False)
    assert p.returncode != 0 and "no credential site" in p.stderr, p.stderr
