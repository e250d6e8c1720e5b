"""Backups to S3 as an operator uses them, end to end through the CLI
(`holdfast volume backup|restore|delete`, `holdfast service
remove`) with a real agent and s3rver behind the harness's SigV4-checking
proxy, for two of the issue's acceptance points:

1. Backup, destroy the volume, restore into a new one: byte-identical.
   The task writes files (random data, small files, a tree); they are
   backed up (a full backup, then an incremental one); the service is
   removed and its volume deleted (every replica gone from the pool);
   `volume restore` makes a new volume from the incremental backup for
   another service, whose task reads the same SHA-256 of every file, and
   whose replica file is, byte for byte, the backed-up snapshot's image
   (exported from a copy of the source replica before it was deleted).

2. A second backup after writing W MB uploads at most 1.1 x W plus
   metadata. What the backup sent is counted three ways: the proxy's
   record of every PUT body (what crossed the wire), the sizes of the
   objects that appeared in the store read back with Debian's s3cmd, and
   the job's own figures (`volume backup --json`)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from holdfast_harness import wait_for, write

from xvol_s3 import VOLUME_BIN, pool_cluster, s3  # noqa: F401
from xvol_s3 import task_sh as sh

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

VOL = "bk-db-0"          # service bk, pod db, instance 0, external volume data
NEW = "bk2-db-0"         # the volume made from the backup, for service bk2
PLACE = "s3://vault/prod"
MiB = 1 << 20
W = 8                    # MiB written between the two backups

# The files the task writes, with the shell that writes them.
SETUP = ("set -e; mkdir -p data/tree/a/b;"
         " head -c 3000000 /dev/urandom > data/big;"
         " head -c 70000 /dev/urandom > data/tree/a/b/mid;"
         " for i in 1 2 3 4 5; do echo file $i > data/tree/a/f$i; done;"
         " : > data/tree/empty; echo one > data/small; sync")


@pytest.fixture(scope="module")
def cl(tmp_path_factory, s3):
    tmp = tmp_path_factory.mktemp("xvol-bkrestore")
    c = pool_cluster(tmp)
    c.deploy(write(os.path.join(str(tmp), "bk.yml"), SPEC), timeout=180)
    try:
        yield c
    finally:
        c.stop()


def sums(cl, svc):
    """path -> SHA-256 of every regular file under the task's volume,
    and the list of directories: what an operator would compare."""
    out = sh(cl, svc, "cd data && find . -type f ! -path './lost+found/*' -print0 | "
                      "sort -z | xargs -0 sha256sum; echo ==; "
                      "find . -type d ! -path './lost+found*' | sort")
    files, dirs = out.split("==\n")
    got = {}
    for ln in files.splitlines():
        h, path = ln.split(None, 1)
        got[path] = h
    return got, dirs.split()


def s3cmd(s3, tmp, *args):
    cfg = os.path.join(tmp, "s3cfg")
    if not os.path.exists(cfg):
        write(cfg, "[default]\n"
                   f"access_key = {s3.access_key}\n"
                   f"secret_key = {s3.secret_key}\n"
                   f"host_base = 127.0.0.1:{s3.proxy.port}\n"
                   f"host_bucket = 127.0.0.1:{s3.proxy.port}\n"
                   "use_https = False\n"
                   "signature_v2 = False\n"
                   f"bucket_location = {s3.region}\n")
    r = subprocess.run(["s3cmd", "-c", cfg, *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"s3cmd {args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def objects(s3, tmp):
    """key -> size of every object under the volume's place, as s3cmd
    lists them."""
    out = {}
    for ln in s3cmd(s3, tmp, "ls", "-r", f"{PLACE}/{VOL}/").splitlines():
        parts = ln.split()
        out[parts[-1]] = int(parts[-2])
    return out


def backup(cl):
    p = cl.cli("volume", "backup", VOL, "--to", PLACE, "--credential", "site",
               "--wait", "--timeout", "120", "--json", timeout=150)
    r = json.loads(p.stdout)
    assert r["result"]["state"] == "done", r
    return r


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


def replica_files(pool):
    """The data files of every replica in the pool."""
    found = []
    for root, _, files in os.walk(os.path.join(pool, "replicas")):
        if "data" in files and os.sep + "snaps" not in root:
            found.append(os.path.join(root, "data"))
    return found


@pytest.fixture(scope="module")
def backups(cl, s3, tmp_path_factory):
    """Writes the files, backs them up (full), writes W MiB, backs up
    again (incremental), recording what the second backup sent."""
    tmp = str(tmp_path_factory.mktemp("bkrestore-s3"))
    s3cmd(s3, tmp, "mb", "s3://vault")
    cl.cli("credential", "create", "s3", "site", "--endpoint", s3.endpoint,
           "--region", s3.region, "--access-key", s3.access_key,
           "--secret-key", s3.secret_key)
    sh(cl, "bk", SETUP)
    r1 = backup(cl)
    assert r1["base"] is None, r1
    before = objects(s3, tmp)
    assert f"{PLACE}/{VOL}/backups/{r1['backup']}.json" in before, before
    # W MiB of random data, one file, made durable.
    sh(cl, "bk", f"head -c {W * MiB} /dev/urandom > data/w; sync data/w; sync")
    files, dirs = sums(cl, "bk")
    assert len(files) == 10 and "./w" in files and "./big" in files, files
    mark = len(s3.proxy.entries())
    r2 = backup(cl)
    entries = s3.proxy.entries()[mark:]
    after = objects(s3, tmp)
    return {"tmp": tmp, "r1": r1, "r2": r2, "files": files, "dirs": dirs,
            "before": before, "after": after, "entries": entries}


def test_second_backup_uploads_about_what_was_written(cl, s3, backups):
    r1, r2 = backups["r1"], backups["r2"]
    assert r2["base"] == r1["backup"], r2
    res = r2["result"]
    puts = [e for e in backups["entries"] if e["method"] == "PUT"]
    assert all(e["status"] == 200 for e in puts), puts
    wire = sum(e["body_len"] for e in puts)
    new = {k: n for k, n in backups["after"].items() if k not in backups["before"]}
    manifest = f"{PLACE}/{VOL}/backups/{r2['backup']}.json"
    # Shown with -rA: the figures the bound is about.
    print(f"W={W * MiB} wire={wire} job={json.dumps(res)}", file=sys.stderr)
    assert manifest in new, new
    chunks = {k: n for k, n in new.items() if "/chunks/" in k}
    # The manifest, read back with s3cmd: incremental on the first, and
    # the chunks it names that the first did not are the ones just stored.
    m1, m2 = (json.loads(s3cmd(s3, backups["tmp"], "get",
                               f"{PLACE}/{VOL}/backups/{b}.json", "-"))
              for b in (r1["backup"], r2["backup"]))
    assert m2["parent"] == r1["backup"] and m2["size"] == 64 * MiB, m2
    fresh = {h for _, h in m2["chunks"]} - {h for _, h in m1["chunks"]}
    assert {f"{PLACE}/{VOL}/chunks/{h}" for h in fresh} == set(chunks), (fresh, chunks)
    assert new[manifest] < 6 * 1024, new  # as the allowance below counts it
    # Every byte sent is an object the store now holds, once: the wire and
    # s3cmd's listing agree (nothing sent twice, nothing lost).
    assert wire == sum(new.values()), (wire, new)
    assert len(puts) == len(new), (puts, new)
    # The job says the same (its "stored": the chunk objects' bytes).
    assert res["stored"] == sum(chunks.values()), (res, chunks)
    # The W MiB were read and sent: random data does not compress.
    assert res["uploaded"] >= W * MiB and sum(chunks.values()) >= W * MiB, (res, chunks)
    # Incremental: the chunks no snapshot kept since the first backup were
    # not read at all; what was read is the W MiB and the few 1 MiB chunks
    # that hold the ext4 metadata the write changed (at most 4, see below).
    assert res["reused"] >= (64 - W - 4) * MiB, res
    # The bound. Besides the W MiB of file data, a backup sends the
    # manifest (about 80 bytes for each of the 64 chunks of this 64 MiB
    # volume: under 6 KiB) and the 1 MiB chunks holding the ext4 metadata
    # that creating and filling one file changes: the superblock and group
    # descriptors, the block and inode bitmaps, the block of the inode
    # table that holds the new inode, the root directory's block, and the
    # journal's copies of those with their descriptor and commit blocks.
    # Those chunks are otherwise zeros or other metadata, which zlib
    # shrinks to about the size of the changed blocks: about 20 blocks of
    # 4 KiB, 80 KiB. 256 KiB leaves room for that three times over.
    # The bound is on the bytes sent: the job's "uploaded" counts each
    # chunk sent before compression, a metadata chunk as a whole MiB.
    allowance = 256 * 1024
    assert wire <= 1.1 * W * MiB + allowance, (
        f"the second backup sent {wire} bytes ({wire / MiB:.2f} MiB) after "
        f"{W} MiB were written: over 1.1 x W + {allowance} bytes; job: {res}; "
        f"objects: {new}")


def test_backup_destroy_restore_is_byte_identical(cl, s3, backups, tmp_path):
    r2 = backups["r2"]
    second = r2["backup"]
    st, vol = cl.api("GET", f"/v1/external-volumes/{VOL}")
    assert st == 200 and vol["last_backup"]["id"] == second, vol
    st, snaps = cl.api("GET", f"/v1/external-volumes/{VOL}/snapshots")
    snap = [s for s in snaps["snapshots"] if s["name"] == f"backup-{second}"]
    assert len(snap) == 1 and snap[0]["state"] == "ready", snaps
    # The service goes; its volume is kept until deleted.
    cl.cli("service", "remove", "bk", "--wait", "--timeout", "60", timeout=90)
    src = replica_files(cl.pool)
    assert len(src) == 1, src
    # The backed-up snapshot's image, from a copy of the replica that no
    # process serves (holdfast-volume snap export reads its snapshots).
    copy = str(tmp_path / "copy")
    shutil.copytree(os.path.dirname(src[0]), copy)
    img = str(tmp_path / "snap.img")
    r = subprocess.run([VOLUME_BIN, "snap", "export", os.path.join(copy, "data"),
                        snap[0]["id"], img], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(img) == 64 * MiB
    want_image = sha256_file(img)
    shutil.rmtree(copy)
    # Destroyed: the volume record and every replica of it.
    cl.cli("volume", "delete", VOL, "--yes", "--wait", "--timeout", "60", timeout=90)
    st, body = cl.api("GET", f"/v1/external-volumes/{VOL}")
    assert st == 404, body
    wait_for(lambda: not os.path.exists(os.path.dirname(src[0])), 30,
             what="the source replica deleted")
    assert replica_files(cl.pool) == []
    # Restored into a new volume, for another service.
    p = cl.cli("volume", "restore", NEW, "--from", PLACE, "--backup", second,
               "--volume", VOL, "--credential", "site", "--for-service", "bk2",
               "--wait", "--timeout", "120", timeout=150)
    assert f"volume {NEW}: ready" in p.stdout, p.stdout + p.stderr
    st, v = cl.api("GET", f"/v1/external-volumes/{NEW}")
    assert st == 200 and v["size"] == 64 * MiB and v["formatted"], v
    assert v["from_backup"]["backup"] == second, v
    got = replica_files(cl.pool)
    assert len(got) == 1, got
    # The whole device, before anything mounts it: the snapshot's bytes.
    assert os.path.getsize(got[0]) == 64 * MiB
    assert sha256_file(got[0]) == want_image
    # The service that takes it reads every file as it was written.
    cl.deploy(write(str(tmp_path / "bk2.yml"), SPEC.replace("name: bk", "name: bk2")),
              timeout=120)
    files, dirs = sums(cl, "bk2")
    assert files == backups["files"]
    assert dirs == backups["dirs"]
    # ... and it is the restored volume, now the instance's.
    st, v = cl.api("GET", f"/v1/external-volumes/{NEW}")
    assert v["state"] == "active" and v["service"] == "bk2" and v["attached"], v
