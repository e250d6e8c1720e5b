"""`holdfast dev --nodes N`: N agents on one machine as nodes dev-1 ...
dev-N, each with its own data, pool, zone and ports, so placement,
spreading and node loss can be tried on one machine."""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from holdfast_harness import BIN, Cluster, wait_for, write
from test_isolation import free_port


@pytest.fixture
def dev():
    d = tempfile.mkdtemp(prefix="hf-devnodes-", dir="/tmp")
    data = os.path.join(d, "dev")
    port = free_port()
    log = open(os.path.join(d, "dev.log"), "ab")
    proc = subprocess.Popen([BIN, "dev", "--data", data, "--listen", f"127.0.0.1:{port}",
                             "--nodes", "3"], stdout=log, stderr=log, start_new_session=True)
    env = dict(os.environ, HOLDFAST_ADDR=f"http://127.0.0.1:{port}")

    def cli(*args, check=True):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env, timeout=180)
        if check and p.returncode:
            raise AssertionError(f"holdfast {args}: {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p
    try:
        yield d, data, proc, cli
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        for pid in Cluster.pids_matching(data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def nodes(cli):
    p = cli("--json", "node", "list", check=False)
    try:
        return json.loads(p.stdout) if p.returncode == 0 else []
    except ValueError:
        return []


def test_three_nodes_each_with_its_zone_pool_and_ports(dev):
    d, data, proc, cli = dev
    ns = wait_for(lambda: (lambda n: n if len(n) == 3 and all(x.get("connected") for x in n)
                           else None)(nodes(cli)), 90, what="three connected nodes")
    by = {n["id"]: n for n in ns}
    assert sorted(by) == ["dev-1", "dev-2", "dev-3"], by
    pools = set()
    for i in (1, 2, 3):
        n = by[f"dev-{i}"]
        assert n["attributes"].get("zone") == f"dev-{i}", n
        assert n["storage"]["pool"] == os.path.realpath(os.path.join(data, f"agent-{i}", "pool")), n
        pools.add(n["storage"]["pool"])
        # An n-th of the free space each, not each the whole of it.
        st = os.statvfs(data)
        assert n["storage"]["capacity"] <= st.f_blocks * st.f_frsize // 3 + (64 << 20), n
    assert len(pools) == 3
    # Three pods spread over the three zones; their ports never collide.
    spec = write(os.path.join(d, "spread.yml"), """
name: spread
pods:
  web:
    count: 3
    placement: '[["zone", "GROUP_BY", "3"]]'
    tasks:
      server:
        goal: RUNNING
        cmd: "exec python3 -m http.server $PORT_HTTP"
        cpus: 0.1
        memory: 64
        ports:
          http: {port: 0}
""")
    cli("service", "deploy", "-f", spec)
    wait_for(lambda: json.loads(cli("-s", "spread", "--json", "plan", "show", "deploy").stdout)
             .get("status") == "COMPLETE", 120, what="the deploy")
    pods = json.loads(cli("--json", "-s", "spread", "pod", "list").stdout)
    placed = {p.get("node") for p in (pods if isinstance(pods, list) else pods.get("pods", []))}
    assert placed == {"dev-1", "dev-2", "dev-3"}, pods
