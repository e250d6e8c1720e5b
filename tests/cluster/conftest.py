"""Fixtures for the cluster tests: a Net of network-namespace hosts and a
Holdfast harness on it, both torn down even when a test fails."""
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from netns import BIN, Holdfast, Net  # noqa: E402


def _sigterm(signum, frame):
    # Let finalizers and atexit run when the run is terminated.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)


def pytest_collection_modifyitems(config, items):
    why = None
    if os.geteuid() != 0:
        why = "cluster tests need root (network namespaces)"
    elif not os.access(BIN, os.X_OK):
        why = f"no holdfast binary at {BIN} (make build-asan/holdfast, or set HOLDFAST_BIN)"
    if why:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=why))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path)  # also sweeps what runs killed outright left behind
    try:
        yield n
    finally:
        n.cleanup()


@pytest.fixture
def hf(net, request):
    h = Holdfast(net)
    try:
        yield h
    finally:
        try:
            if _failed(request):
                etcd = list(h.etcd.procs.values()) if h.etcd else []
                for p in [s.proc for s in h.servers] + [a.proc for a in h.agents.values()] + etcd:
                    if p is not None:
                        print(f"\n===== {p!r} log (last 4000 chars) =====\n{p.output()[-4000:]}")
            h.stop()
        finally:
            net.cleanup()
