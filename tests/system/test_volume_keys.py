"""Encrypted volumes end to end (`secure=true`; src/volume/crypt.h): the
server seals each volume's data key with its cluster key
(--cluster-key-file), hands the opened key to the attached node alone, and
the key appears in no API answer, event, log or store record; the task
reads and writes plaintext while its replica holds ciphertext. A server
without the cluster key refuses such a spec; one given another key, or
none, does not lead over encrypted volumes and says why."""
import glob
import json
import os
import secrets
import signal
import urllib.request

import pytest

from holdfast_harness import Cluster, wait_for, write

MARKER = "HOLDFAST-MARKER-" + secrets.token_hex(6)

SPEC = """
name: vault
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size=1;repl=1;secure=true
    tasks:
      server:
        goal: RUNNING
        cmd: "[ -f data/secret ] || {{ for i in $(seq 2000); do echo {marker}; done > data/secret; sync; }}; exec sleep 1000"
        cpus: 0.1
        memory: 32
"""


def key_file(tmp, name):
    return write(os.path.join(str(tmp), name), secrets.token_hex(32) + "\n", mode=0o600)


def volume(cl):
    st, body = cl.api("GET", "/v1/external-volumes/vault-db-0")
    return body if st == 200 else None


def leading(cl):
    st, body = cl.api("GET", "/v1/leader")
    return st == 200 and body.get("leading") is True


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xvol-keys")
    c = Cluster(tmp)
    c.key = key_file(tmp, "cluster.key")
    c.server_args = ["--cluster-key-file", c.key]
    c.start_server()
    c.start_agent(extra=("--storage", os.path.join(str(tmp), "pool") + ",size=4G"))
    spec = write(os.path.join(str(tmp), "vault.yml"), SPEC.format(marker=MARKER))
    c.deploy(spec, timeout=180)
    try:
        yield c
    finally:
        c.stop()


def events_text(cl):
    req = urllib.request.Request(cl.url + "/v1/events?follow=false",
                                 headers={"Authorization": f"Bearer {cl.token()}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    assert "vault-db-0" in text
    return text


def task_cat(cl, path):
    return cl.cli("--service", "vault", "task", "exec", "db-0-server", "--", "cat", path,
                  check=False)


def test_the_task_sees_plaintext_and_the_replica_ciphertext(vault):
    cl = vault
    v = volume(cl)
    assert v and v["secure"] is True and v["state"] == "active", v
    assert "data_key" not in v and "secret" not in v, v
    out = wait_for(lambda: (lambda p: p.returncode == 0 and p.stdout.count(MARKER) == 2000 and p)(
        task_cat(cl, "data/secret")), 30, what="the task's file")
    assert out.stdout.splitlines()[0] == MARKER
    data = os.path.join(cl.tmp, "pool", "replicas", v["id"], v["replicas"][0]["id"], "data")
    with open(data, "rb") as f:
        raw = f.read()
    assert len(raw) == 1 << 30
    assert MARKER.encode() not in raw and b"HOLDFAST-MARKER" not in raw
    # No ext4 superblock in clear either.
    assert raw[1080:1082] != b"\x53\xef"


def test_the_data_key_is_nowhere_but_the_attach_file(vault):
    cl = vault
    v = volume(cl)
    attach = os.path.join(cl.agent_data, "attach", "vault-db-0", "attach.json")
    assert oct(os.stat(attach).st_mode & 0o777) == "0o600"
    with open(attach) as f:
        key = json.load(f)["encryption_key"]
    assert len(key) == 128
    places = {
        "server log": cl.server_log(),
        "agent log": cl.agent_log(),
        "volume list": cl.cli("volume", "list", "--json").stdout,
        "volume show": cl.cli("volume", "show", "vault-db-0", "--json").stdout,
        "external volume": json.dumps(v),
        "events": events_text(cl),
    }
    for name, text in places.items():
        assert key not in text and key[:32] not in text and key[64:] not in text, name
    # The store holds it sealed only (the SQLite file and its WAL).
    for f in glob.glob(os.path.join(cl.server_data, "holdfast.db*")):
        with open(f, "rb") as fh:
            raw = fh.read()
        assert key.encode() not in raw and key[:32].encode() not in raw, f
    # The attach process's own log does not repeat it.
    with open(os.path.join(cl.agent_data, "attach", "vault-db-0", "volume.log")) as f:
        assert key[:32] not in f.read()


def test_a_server_with_another_key_or_none_does_not_lead(vault):
    """It says which volume and why, changes nothing; given the right
    key again it leads, and the task (never stopped) still reads its
    data."""
    cl = vault
    task = cl.tasks("vault")["db-0-server"]
    other = key_file(cl.tmp, "other.key")
    for args, why in ((["--cluster-key-file", other], "does not open the data key"),
                      ([], "has no cluster key")):
        cl.kill_server(signal.SIGTERM)
        cl.server_args = args
        cl.start_server()
        wait_for(lambda: why in cl.server_log(), 20, what=f"the server saying '{why}'")
        assert "vault-db-0" in cl.server_log().split(why)[0][-400:] + cl.server_log().split(why)[1][:400]
        assert not leading(cl)
    cl.kill_server(signal.SIGTERM)
    cl.server_args = ["--cluster-key-file", cl.key]
    cl.start_server()
    wait_for(lambda: leading(cl), 30, what="the server leading with the right key")
    v = volume(cl)
    assert v["secure"] is True and v["attached"], v
    t = wait_for(lambda: (lambda t: t and t["status"] == "RUNNING" and t)(
        cl.tasks("vault").get("db-0-server")), 30, what="the task")
    assert t["id"] == task["id"]
    # Once the agent synced with the new server again (task exec goes
    # through it).
    wait_for(lambda: task_cat(cl, "data/secret").stdout.count(MARKER) == 2000, 30,
             what="the task's data through exec")


def test_a_restarted_task_reads_its_encrypted_data(vault):
    """pod replace: a new attach at a new epoch with the key from the
    server; the data written before is there (the task did not write it
    again: its file existed)."""
    cl = vault
    before = cl.tasks("vault")["db-0-server"]
    epoch = volume(cl)["epoch"]
    cl.cli("--service", "vault", "pod", "replace", "db-0", "--yes")
    wait_for(lambda: (lambda t: t and t["id"] != before["id"] and t["status"] == "RUNNING")(
        cl.tasks("vault").get("db-0-server")), 120, what="db-0 replaced")
    assert volume(cl)["epoch"] > epoch
    out = wait_for(lambda: (lambda p: p.returncode == 0 and p)(task_cat(cl, "data/secret")),
                   30, what="the data after replace")
    assert out.stdout.count(MARKER) == 2000


def test_a_server_without_a_cluster_key_refuses_encrypted_volumes(tmp_path):
    c = Cluster(tmp_path)
    c.start_server()
    try:
        spec = write(os.path.join(str(tmp_path), "vault.yml"), SPEC.format(marker="x"))
        p = c.cli("service", "deploy", "-f", spec, check=False)
        assert p.returncode != 0
        msg = p.stdout + p.stderr
        assert "no cluster key" in msg and "--cluster-key-file" in msg, msg
        assert "pod 'db'" in msg and "'data'" in msg, msg
        st, body = c.api("GET", "/v1/services")
        assert st == 200 and body == [], body
        # A bad key file stops the server at once with the reason.
        bad = write(os.path.join(str(tmp_path), "bad.key"), "0123\n", mode=0o600)
        c.kill_server(signal.SIGTERM)
        c.server_args = ["--cluster-key-file", bad]
        with pytest.raises(AssertionError):
            c.start_server()
        assert c.server.wait(10) == 1
        c.server = None
        assert "is no cluster key" in c.server_log() and "0123" not in c.server_log()
    finally:
        c.stop()
