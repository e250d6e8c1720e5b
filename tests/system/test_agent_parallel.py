"""The agent launches tasks in parallel (a bounded pool of workers): a slow
artifact fetch holds up its own task only, never another task's launch on
the same agent. Uses test_agent's fake server and agent driver."""
import http.server
import json
import threading

from test_agent import (FAST, Agent, FakeServer, alive, finish, order,  # noqa: F401
                        read, server, shim_pids, wait_for)


def held_www(hits, started, release):
    """A local HTTP server whose /tool.sh answers once release is set (at
    most 120 s)."""
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            started.set()
            release.wait(120)
            body = b"#!/bin/sh\necho fetched\n"
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the agent went away (killed by a test)

        def log_message(self, *args):
            pass

    www = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    www.daemon_threads = True
    threading.Thread(target=www.serve_forever, daemon=True).start()
    return www


def test_slow_artifact_fetch_does_not_hold_back_other_launches(tmp_path, server):
    release = threading.Event()
    started = threading.Event()
    hits = []

    www = held_www(hits, started, release)
    a = Agent(tmp_path, server, FAST).start()
    try:
        url = "http://127.0.0.1:%d/tool.sh" % www.server_address[1]
        slow = ["pod-0-server__par1", "pod-1-server__par2"]
        quick = "pod-2-server__par3"
        # The slow ones first: one worker at a time would take them first
        # and launch the quick one only after their fetch.
        server.set_desired(
            [order(i, "sh tool.sh > out; sleep 1000", uris=[url]) for i in slow] +
            [order(quick, "sleep 1000")])
        assert started.wait(40), "the agent never asked for the artifact"
        server.wait_state(quick, "running")
        # The download was still held when the quick task ran.
        assert not release.is_set()
        for i in slow:
            assert server.last(i)["state"] in ("staging", "starting"), \
                server.last(i)
        release.set()
        for i in slow:
            server.wait_state(i, "running")
            out = a.sandbox(i) / "out"
            wait_for(lambda: out.exists() and read(out) == "fetched\n",
                     f"{i} to run the fetched script")
        # Both tasks wanted the same URL: one download, the second task
        # waited for it instead of fetching its own copy.
        assert hits == ["/tool.sh"], hits
    finally:
        release.set()
        www.shutdown()
        www.server_close()
        finish(a, server, tmp_path)


def test_kill9_with_launches_in_flight_never_launches_twice(tmp_path, server):
    """kill -9 of the agent while two launches wait for their artifact and
    a third task runs: the restarted agent reattaches the running one (same
    shim, same pid), reports the two that never got a shim as lost and
    never starts a shim for them."""
    release, started, hits = threading.Event(), threading.Event(), []
    www = held_www(hits, started, release)
    a = Agent(tmp_path, server, FAST).start()
    try:
        url = "http://127.0.0.1:%d/tool.sh" % www.server_address[1]
        held = ["pod-0-server__kpa1", "pod-1-server__kpa2"]
        runs = "pod-2-server__kpa3"
        server.set_desired(
            [order(i, "sh tool.sh; sleep 1000", uris=[url]) for i in held] +
            [order(runs, "exec sleep 1000")])
        assert started.wait(40), "the agent never asked for the artifact"
        pid = server.wait_state(runs, "running")["pid"]
        shims = shim_pids(a.data)
        assert len(shims) == 1, shims
        a.kill9()
        release.set()  # too late: nobody reads the answer
        n = server.count()
        a.start()
        rep = server.wait_report(
            runs, lambda r: r["state"] == "running" and server.count() > n,
            "to be reported by the new agent")
        assert rep["pid"] == pid and alive(pid)
        for i in held:
            rep = server.wait_state(i, "lost")
            assert rep["message"], rep
        server.wait_syncs(2)
        assert shim_pids(a.data) == shims
        for i in held:
            assert not (a.taskdir(i) / "status.json").exists() or \
                json.loads(read(a.taskdir(i) / "status.json"))["state"] != "running"
    finally:
        release.set()
        www.shutdown()
        www.server_close()
        finish(a, server, tmp_path)
