"""The agent launches tasks in parallel (a bounded pool of workers): a slow
artifact fetch holds up its own task only, never another task's launch on
the same agent. Uses test_agent's fake server and agent driver."""
import http.server
import threading

from test_agent import (FAST, Agent, FakeServer, finish, order, read,  # noqa: F401
                        server, wait_for)


def test_slow_artifact_fetch_does_not_hold_back_other_launches(tmp_path, server):
    release = threading.Event()
    started = threading.Event()
    hits = []

    class Slow(http.server.BaseHTTPRequestHandler):
        """Answers /tool.sh only once the test lets it (at most 120 s)."""
        def do_GET(self):
            hits.append(self.path)
            started.set()
            release.wait(120)
            body = b"#!/bin/sh\necho fetched\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    www = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    www.daemon_threads = True
    threading.Thread(target=www.serve_forever, daemon=True).start()
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
