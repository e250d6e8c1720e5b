"""What the tests of volume backups share: an S3-compatible endpoint for
a test module (tests/s3_harness.py: s3rver behind a proxy that checks
every request's AWS signature), holdfast-volume's own S3 client against
it, a shell in a task, and a one-node cluster with a storage pool that
knows the endpoint as the credential "site"."""
import os
import subprocess
import sys

import pytest

from holdfast_harness import Cluster

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import s3_harness  # noqa: E402

from test_volume_repl import VOLUME_BIN  # noqa: E402


@pytest.fixture(scope="module")
def s3():
    with s3_harness.S3Server() as server:
        yield server


def s3run(s3, *args):
    """holdfast-volume ARGS with the endpoint's keys in its environment."""
    e = dict(os.environ, HOLDFAST_S3_ACCESS_KEY=s3.access_key,
             HOLDFAST_S3_SECRET_KEY=s3.secret_key)
    return subprocess.run([VOLUME_BIN, *args], env=e, capture_output=True, text=True,
                          timeout=300)


def task_sh(c, svc, script, task="db-0-server"):
    """script in task's sandbox (`task exec`); its stdout. It must succeed."""
    p = c.cli("--service", svc, "task", "exec", task, "--", "sh", "-c", script, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def add_credential(c, s3, name="site"):
    c.cli("credential", "create", "s3", name, "--endpoint", s3.endpoint,
          "--region", s3.region, "--access-key", s3.access_key,
          "--secret-key", s3.secret_key)


def pool_cluster(tmp, pool_size="1G", s3=None):
    """A server and one agent with a pool of pool_size under tmp (c.pool);
    with s3, the credential "site" for it."""
    c = Cluster(tmp)
    c.pool = os.path.join(str(tmp), "pool")
    c.start_server()
    c.start_agent(extra=("--storage", c.pool + ",size=" + pool_size))
    if s3:
        add_credential(c, s3)
    return c
