"""A per-volume secret (`secure=true;secret_key=NAME`, the Portworx
option): the volume's data key is sealed by a named key (`holdfast
credential create key NAME --value-file FILE`) instead of the cluster key,
so a server without a cluster key runs it; its backups carry the sealed
data key, and another cluster given the same key restores them and runs
the service on the copy, while a cluster with another value under that
name, or none, is refused with a message saying why. The key is never
shown back or logged, cannot be deleted while a volume uses it, and a
wrong secret_key is a spec error with file:line:col."""
import json
import os

from holdfast_harness import write

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
        driver-options: {options}
    tasks:
      server:
        goal: RUNNING
        cmd: "exec sleep 100000"
        cpus: 0.1
        memory: 32
"""

KEY = "3b" * 32
OTHER = "c4" * 32
MARKER = "named-key-marker-9f1c2e"


def spec(name, options="size=64M;secure=true;secret_key=k1"):
    return SPEC.format(name=name, options=options)


def cluster(tmp, s3, name):
    return pool_cluster(tmp / name, s3=s3)


def files_under(root):
    for d, _, names in os.walk(root):
        for n in names:
            yield os.path.join(d, n)


def test_a_named_key_seals_a_volume_and_travels_with_its_backups(tmp_path, s3):
    a = cluster(tmp_path, s3, "a")
    b = c = None
    try:
        # No cluster key here: a volume without secret_key is refused, one
        # with an unknown key too; with the key made, it deploys.
        bad = write(str(tmp_path / "plain.yml"), spec("pl", "size=64M;secure=true"))
        p = a.cli("service", "deploy", "-f", bad, check=False)
        assert p.returncode != 0 and "cluster key" in p.stderr, p.stderr
        f = write(str(tmp_path / "nk.yml"), spec("nk"))
        p = a.cli("service", "deploy", "-f", f, check=False)
        assert p.returncode != 0 and "secret_key=k1" in p.stderr and \
            "no key k1" in p.stderr, p.stderr
        keyfile = write(str(tmp_path / "k1.key"), KEY + "\n", mode=0o600)
        p = a.cli("credential", "create", "key", "k1", "--value-file", keyfile)
        assert "credential k1 (key) created" in p.stdout, p.stdout
        out = a.cli("credential", "list", "--json").stdout
        assert KEY not in out and '"(hidden)"' in out, out
        st, body = a.api("POST", "/v1/credentials", {"type": "key", "name": "k2",
                                                     "value": "not hex"})
        assert st == 400 and "64 hex digits" in body["message"], body
        a.deploy(f, timeout=180)
        st, v = a.api("GET", "/v1/external-volumes/nk-db-0")
        assert v["secure"] is True and v["secret_key"] == "k1", v
        assert KEY not in json.dumps(v)
        sh(a, "nk", f"for i in $(seq 200); do echo {MARKER}; done > data/m; sync")
        # The replica holds ciphertext only.
        for path in files_under(str(tmp_path / "a" / "pool")):
            with open(path, "rb") as fh:
                assert MARKER.encode() not in fh.read(), path
        # In use: it cannot be deleted.
        p = a.cli("credential", "delete", "k1", check=False)
        assert p.returncode != 0 and "seals the data key of volume nk-db-0" in p.stderr, \
            p.stderr
        assert s3run(s3, "s3", "--endpoint", s3.endpoint, "mb", "keys").returncode == 0
        r = json.loads(a.cli("volume", "backup", "nk-db-0", "--to", "s3://keys/p",
                             "--credential", "site", "--wait", "--json").stdout)
        bid = r["backup"]
        man = json.loads(s3run(s3, "s3", "--endpoint", s3.endpoint, "get",
                               f"keys/p/nk-db-0/backups/{bid}.json", "-").stdout)
        assert man["encrypted"] is True and man["key"]["name"] == "k1", man
        assert man["volume_id"] == v["id"] and len(man["key"]["sealed"]) > 64, man
        assert KEY not in json.dumps(man)
        # Another cluster, given the same key, restores it and runs on it.
        b = cluster(tmp_path, s3, "b")
        args = ("volume", "restore", "nk2-db-0", "--from", "s3://keys/p", "--backup", bid,
                "--volume", "nk-db-0", "--credential", "site", "--for-service", "nk2",
                "--wait", "--timeout", "120")
        p = b.cli(*args, check=False)
        assert p.returncode != 0 and "sealed by key k1" in p.stderr and \
            "no key k1" in p.stderr, p.stderr
        b.cli("credential", "create", "key", "k1", "--value-file", keyfile)
        p = b.cli(*args)
        assert "volume nk2-db-0: ready" in p.stdout, p.stdout + p.stderr
        st, v2 = b.api("GET", "/v1/external-volumes/nk2-db-0")
        assert v2["secure"] is True and v2["secret_key"] == "k1", v2
        b.deploy(write(str(tmp_path / "nk2.yml"), spec("nk2")), timeout=180)
        assert sh(b, "nk2", "head -1 data/m").strip() == MARKER
        for path in files_under(str(tmp_path / "b" / "pool")):
            with open(path, "rb") as fh:
                assert MARKER.encode() not in fh.read(), path
        # A cluster with another key under that name is refused.
        c = cluster(tmp_path, s3, "c")
        c.cli("credential", "create", "key", "k1", "--value-file",
              write(str(tmp_path / "other.key"), OTHER + "\n", mode=0o600))
        p = c.cli("volume", "restore", "nk3-db-0", "--from", "s3://keys/p", "--backup", bid,
                  "--volume", "nk-db-0", "--credential", "site", "--for-service", "nk3",
                  check=False)
        assert p.returncode != 0 and "key k1 does not open the data key" in p.stderr, p.stderr
        st, _ = c.api("GET", "/v1/external-volumes/nk3-db-0")
        assert st == 404
        # The key is in no log or event of any cluster.
        for root in (a.tmp, b.tmp, c.tmp):
            for path in files_under(root):
                if path.endswith(".log") or path.endswith("events.jsonl"):
                    with open(path, errors="replace") as fh:
                        assert KEY not in fh.read(), path
        # Wrong secret_key options are spec errors that say where.
        for opts, want in (("size=64M;secret_key=k1", "needs secure=true"),
                           ("size=64M;secure=true;secret_key=a/b", "secret_key names a key")):
            p = a.cli("spec", "validate", write(str(tmp_path / "bad.yml"), spec("x", opts)),
                      check=False)
            assert p.returncode != 0 and want in p.stdout + p.stderr, p.stdout + p.stderr
            assert "bad.yml:12:" in p.stdout + p.stderr, p.stdout + p.stderr
        # The spec cannot change a volume's key.
        a.cli("credential", "create", "key", "k2", "--value-file",
              write(str(tmp_path / "k2.key"), OTHER + "\n", mode=0o600))
        p = a.cli("service", "update", "nk", "-f", write(str(tmp_path / "nk-k2.yml"),
                                                  spec("nk", "size=64M;secure=true;secret_key=k2")),
                  check=False)
        assert p.returncode != 0 and "secret_key cannot change" in p.stdout + p.stderr, \
            p.stdout + p.stderr
    finally:
        for x in (a, b, c):
            if x:
                x.stop()
