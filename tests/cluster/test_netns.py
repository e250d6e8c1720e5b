"""The harness itself: hosts reach each other, cuts cut, heals heal, a killed
host has no process left (daemons included), cleanup leaves nothing."""
import os
import shutil
import subprocess
import time

import pytest

from netns import Net, netns_pids, sh, wait_for


def listener(host, port):
    """A TCP server on host:port (a python one-liner run in the host)."""
    code = ("import socket,time\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('0.0.0.0',{port})); s.listen(50)\n"
            "while True:\n  c,_=s.accept(); c.close()\n")
    p = host.popen(["/usr/bin/python3", "-c", code], name=f"listen{port}")
    wait_for(lambda: host.can_reach("127.0.0.1", port), 10, what="listener")
    return p


def test_hosts_have_addresses_hostnames_and_loopback(net):
    a, b = net.add_host("a"), net.add_host("b")
    assert a.ip != b.ip
    assert a.run(["hostname"]).stdout.strip() == "a"
    assert b.run(["hostname"]).stdout.strip() == "b"
    listener(b, 7000)
    assert a.can_reach(b.ip, 7000)
    assert b.can_reach("127.0.0.1", 7000)
    # The root namespace was not touched: the hosts' address is not ours.
    assert b.ip not in sh("ip", "-o", "addr").stdout


@pytest.mark.parametrize("mode", ["down", "drop"])
def test_cut_and_heal(net, mode):
    a, b, c = net.add_host("a"), net.add_host("b"), net.add_host("c")
    listener(b, 7000)
    listener(c, 7000)
    b.cut(mode)
    assert not a.can_reach(b.ip, 7000)
    assert not b.can_reach(c.ip, 7000)
    assert a.can_reach(c.ip, 7000)  # only b is cut off
    assert b.can_reach("127.0.0.1", 7000)  # its loopback still works
    b.heal()
    t0 = time.time()
    wait_for(lambda: a.can_reach(b.ip, 7000), 10, what="b reachable after heal")
    wait_for(lambda: b.can_reach(c.ip, 7000), 10, what="c reachable from b after heal")
    assert time.time() - t0 < 3, "the network took long to come back"


def test_kill_host_kills_daemons_too(net):
    a, b = net.add_host("a"), net.add_host("b")
    # A double-forked, setsid daemon the harness never saw, like a shim.
    a.run(["sh", "-c", "setsid sh -c 'sleep 1000 & sleep 1000' </dev/null >/dev/null 2>&1 &"])
    p = a.popen(["sleep", "1000"])
    other = b.popen(["sleep", "1000"])
    wait_for(lambda: len(a.pids()) >= 3, 10, what="a's processes")
    a.kill()
    assert a.pids() == []
    assert p.popen.returncode is not None
    assert other.alive() and b.pids() == [other.pid]


def test_cleanup_removes_everything(tmp_path):
    n = Net(tmp_path)
    h = n.add_host("x")
    h.popen(["sleep", "1000"])
    mnt = tmp_path / "x" / "mnt"
    src = tmp_path / "x" / "src"
    mnt.mkdir()
    src.mkdir()
    h.run(["mount", "--bind", str(src), str(mnt)], check=True)
    assert str(mnt) in open("/proc/mounts").read()
    names = [h.ns, n.switch]
    n.cleanup()
    listed = sh("ip", "netns", "list").stdout
    assert not any(name in listed for name in names)
    assert str(tmp_path) not in open("/proc/mounts").read()
    assert not os.path.exists(n.state)


def test_parallel_nets_do_not_clash(tmp_path):
    n1, n2 = Net(tmp_path / "1"), Net(tmp_path / "2")
    try:
        a1, a2 = n1.add_host("a"), n2.add_host("a")
        assert a1.ip == a2.ip and a1.ns != a2.ns  # same subnet, separate switches
        listener(a1, 7000)
        b1, b2 = n1.add_host("b"), n2.add_host("b")
        assert b1.can_reach(a1.ip, 7000)
        # The same address in the other run is n2's "a", which listens on nothing.
        assert a2.pids() == [] and not b2.can_reach(a1.ip, 7000)
    finally:
        n1.cleanup()
        n2.cleanup()


def test_a_dead_runs_leftovers_are_swept(tmp_path):
    """A run killed with SIGKILL leaves its namespaces; the next run removes them."""
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "from netns import Net\n"
        "n = Net(%r); h = n.add_host('z'); h.popen(['sleep', '1000'])\n"
        "print(h.ns, flush=True)\n"
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
    ) % (os.path.dirname(os.path.abspath(__file__)), str(tmp_path / "dead"))
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=60)
    ns = p.stdout.strip()
    assert ns and ns in sh("ip", "netns", "list").stdout
    assert netns_pids(ns)
    Net(tmp_path / "next").cleanup()  # creating a Net sweeps dead runs
    assert ns not in sh("ip", "netns", "list").stdout


@pytest.mark.skipif(not shutil.which("etcd"), reason="no etcd (scripts/setup.sh installs it)")
def test_etcd_cluster_across_hosts_survives_a_cut_member(hf, net):
    """The store the multi-server tests use: a 3-member etcd on 3 hosts."""
    hosts = [net.add_host(f"e{i}") for i in range(1, 4)]
    etcd = hf.start_etcd(hosts)
    assert etcd.url == "etcd://" + ",".join(f"{h.ip}:2379" for h in hosts)
    assert etcd.ctl("put", "k", "v1").returncode == 0
    hosts[0].cut()
    others = ",".join(f"http://{h.ip}:2379" for h in hosts[1:])
    wait_for(lambda: etcd.ctl("put", "k", "v2", endpoints=others).returncode == 0, 30,
             what="a write with one member cut off")
    hosts[0].heal()
    wait_for(lambda: etcd.ctl("get", "k", "--print-value-only", "--consistency=s",
                              endpoints=f"http://{hosts[0].ip}:2379").stdout.strip() == "v2",
             30, what="the cut member catching up")
