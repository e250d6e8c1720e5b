"""The web UI (issue 18): served by `holdfast server` under /ui/ from files
built into the binary, driven here in a real headless browser (Debian's
chromium, through its DevTools protocol) against a real server and agent.

- The files need no token, carry a strict Content-Security-Policy and the
  other security headers; an unknown file is a JSON 404; /ui redirects.
- /ui/?token=... signs in, keeps the token and drops it from the address.
- The service list shows the deployed services; a plan's steps change
  state on the page, without a reload, while it deploys (the page reads
  the server-sent event stream); the Scale button in the page changes the
  count and the new pod appears.
- A read-only token gets no action buttons, and a write forged with it
  (from the page itself) is refused 403 and changes nothing.
- The Volumes page lists a volume of two replicas (two nodes with pools)
  with its size, attachment and each replica's state; a replica whose
  server stops answering while the task writes shows down with what it
  missed, then in sync again after its resync, without a reload.

Screenshots of the main pages go to $HOLDFAST_ARTIFACTS, else
tests/artifacts/.

The main browser session is one test: pytest -n splits a module's tests
across workers, and each step builds on the one before; the volumes test
has its own cluster and browser.
"""
import base64
import http.client
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
import websocket

from holdfast_harness import BIN, REPO, Cluster, wait_for, write

ADMIN = "ui-admin-4b7d2e9c1a"
READ = "ui-read-8e3f1a6c5d"
AGENT = "ui-agent-2c9e7b4f1d"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = os.environ.get("HOLDFAST_ARTIFACTS") or os.path.join(REPO, "tests", "artifacts")

# Three instances deployed one after the other (serial), each ready about
# three seconds after it starts: the plan's steps go PENDING -> STARTING ->
# COMPLETE one by one, slowly enough to watch.
SLOW_SPEC = """
name: {name}
pods:
  db:
    count: 3
    tasks:
      server:
        goal: RUNNING
        cmd: "echo starting; sleep 3; echo up > ready; echo ready; exec sleep 1000"
        cpus: 0.1
        memory: 32
        ports:
          pg: {{port: 0, advertise: true}}
        readiness-check: {{cmd: test -f ready, interval: 0.5, delay: 0, timeout: 5}}
plans:
  deploy:
    strategy: serial
    phases:
      db: {{strategy: serial, pod: db}}
"""

WEB_SPEC = """
name: web
pods:
  app:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: "echo serving; while :; do echo tick $(date +%s%N); sleep 0.5; done"
        cpus: 0.1
        memory: 32
        readiness-check: {cmd: "true", interval: 0.5, delay: 0, timeout: 5}
      backup:
        goal: FINISH
        cmd: "echo backup to $DEST"
        cpus: 0.1
        memory: 32
      one:
        goal: FINISH
        cmd: "sleep 4; echo one done"
        cpus: 0.1
        memory: 32
      two:
        goal: FINISH
        cmd: "sleep 4; echo two done"
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      app: {strategy: serial, pod: app, steps: [{default: [[server]]}]}
  maint:
    strategy: serial
    phases:
      first: {strategy: serial, pod: app, steps: [{default: [[one]]}]}
      second: {strategy: serial, pod: app, steps: [{default: [[two]]}]}
  backup:
    strategy: serial
    phases:
      run: {strategy: serial, pod: app, steps: [{default: [[backup]]}]}
"""


class CDPError(Exception):
    pass


class Browser:
    """A headless chromium and one page, over the DevTools protocol."""

    def __init__(self, tmp):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.stderr = []
        found = queue.Queue()

        def drain():
            for line in self.proc.stderr:
                self.stderr.append(line)
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m:
                    found.put(m.group(1))
        threading.Thread(target=drain, daemon=True).start()
        try:
            browser_ws = found.get(timeout=60)
        except queue.Empty:
            self.close()
            raise CDPError("chromium did not start: " + "".join(self.stderr)[-2000:])
        port = int(re.match(r"ws://[^:]+:(\d+)/", browser_ws).group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
        assert pages, "chromium has no page"
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60,
                                              suppress_origin=True)
        self.next_id = 0
        self.exceptions = []
        self.console = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if msg.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(msg["params"]["exceptionDetails"])
            elif msg.get("method") == "Runtime.consoleAPICalled":
                self.console.append(msg["params"])

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, timeout=30, what=None):
        return wait_for(lambda: self.eval(expr), timeout, interval=0.1, what=what or expr)

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", 30, what=f"{url} loaded")

    def click(self, selector):
        """A real mouse click at the middle of the element."""
        box = self.eval(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: 'center'}});
            const r = e.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        assert box, f"no element {selector} to click"
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)

    def type_into(self, selector, text):
        """Focuses the field, selects what it holds and types over it."""
        assert self.eval(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return false;
            e.focus(); e.select(); return true;
        }})()"""), f"no field {selector}"
        self.call("Input.insertText", text=text)

    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path = os.path.join(ARTIFACTS, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(30)
        shutil.rmtree(self.profile, ignore_errors=True)


class UICluster(Cluster):
    def __init__(self, tmp):
        super().__init__(tmp, tokens={"admin": ADMIN, "read": READ, "agent": AGENT})

    def request(self, method, path, body=None, token=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(str(tmp_path))
    try:
        yield b
    finally:
        b.close()


def test_ui_files_are_public_with_security_headers(tmp_path):
    c = UICluster(tmp_path)
    c.start_server()
    try:
        st, hdrs, body = c.request("GET", "/ui/")
        assert st == 200, (st, body)
        assert hdrs["content-type"] == "text/html; charset=utf-8"
        assert b'<script src="app.js"' in body and b"<script>" not in body
        csp = hdrs["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert hdrs["x-content-type-options"] == "nosniff"
        assert hdrs["x-frame-options"] == "DENY"
        assert hdrs["referrer-policy"] == "no-referrer"
        assert "no-store" in hdrs["cache-control"] or "no-cache" in hdrs["cache-control"]
        for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                            ("app.css", "text/css; charset=utf-8"),
                            ("icon.svg", "image/svg+xml"),
                            ("index.html", "text/html; charset=utf-8")):
            st, hdrs, body = c.request("GET", "/ui/" + name)
            assert st == 200 and hdrs["content-type"] == ctype, (name, st, hdrs)
            with open(os.path.join(REPO, "ui", name), "rb") as f:
                assert body == f.read(), f"{name} served differs from ui/{name}"
        # Unknown files: JSON 404, with the same headers; nothing outside ui/.
        for path in ("/ui/nosuch.js", "/ui/../README.md", "/ui/%2e%2e/Makefile", "/ui/app.js/x"):
            st, hdrs, body = c.request("GET", path)
            assert st == 404, (path, st, body)
            assert json.loads(body)["error"] == "not-found", (path, body)
            assert hdrs["x-frame-options"] == "DENY"
        # /ui: to /ui/, the query kept (the token is the page's to read).
        st, hdrs, _ = c.request("GET", "/ui?token=a%20b")
        assert st == 308 and hdrs["location"] == "/ui/?token=a%20b", (st, hdrs)
        # A query key the page does not take is refused like on any route.
        st, _, body = c.request("GET", "/ui/?bogus=1")
        assert st == 400, (st, body)
        # whoami: the role, never the token.
        for tok, role in ((ADMIN, "admin"), (READ, "read")):
            st, _, body = c.request("GET", "/v1/whoami", token=tok)
            assert st == 200 and json.loads(body) == {"role": role}
            assert tok.encode() not in body
        assert c.request("GET", "/v1/whoami")[0] == 401
        assert c.request("GET", "/v1/whoami", token=AGENT)[0] == 403
        # The source of a configuration is an admin's (it holds secrets).
        assert c.request("GET", "/v1/service/x/configurations/target/source", token=READ)[0] == 403
        assert c.request("GET", "/v1/service/x/configurations/target/source", token=ADMIN)[0] == 404
    finally:
        c.stop()


def texts(b, selector):
    return b.eval(f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent)")


def step_states(b):
    return b.eval("""Object.fromEntries([...document.querySelectorAll(
        '[data-plan="deploy"] li[data-step]')].map(e => [e.dataset.step, e.dataset.status]))""")


def test_ui_in_a_browser(tmp_path, browser):
    c = UICluster(tmp_path)
    c.start()
    b = browser
    try:
        web = write(tmp_path / "web.yml", WEB_SPEC)
        c.deploy(web)
        base = f"http://127.0.0.1:{c.port}/ui/"

        # -- Sign in from the address; the token leaves it at once.
        b.goto(base + "?token=" + ADMIN + "#/services")
        b.wait("document.querySelector('#services tr[data-service=\"web\"]') !== null", 30,
               what="the service list shows web")
        assert b.eval("location.href") == base + "#/services"
        assert ADMIN not in b.eval("location.href")
        assert b.eval("sessionStorage.getItem('holdfast-token')") == ADMIN
        assert b.eval("document.getElementById('role').textContent") == "admin"
        b.wait("document.getElementById('live').classList.contains('on')", 15, what="event stream up")
        b.screenshot("services")

        # -- A plan's steps change state on the page without a reload.
        b.eval("window.__sameDocument = 'yes'")
        spec = write(tmp_path / "slow.yml", SLOW_SPEC.format(name="slow"))
        c.deploy(spec, wait=False)
        b.wait("document.querySelector('#services tr[data-service=\"slow\"]') !== null", 20,
               what="the new service appears in the list")
        b.click('#services tr[data-service="slow"] a')
        b.wait("location.hash === '#/service/slow'", 10)
        seen = []
        deadline = time.time() + 90
        while time.time() < deadline:
            states = step_states(b)
            if states and (not seen or seen[-1] != states):
                seen.append(states)
                if "COMPLETE" in states.values() and set(states.values()) - {"COMPLETE"}:
                    b.screenshot("service-deploying")
            if states and all(s == "COMPLETE" for s in states.values()):
                break
            time.sleep(0.2)
        assert b.eval("window.__sameDocument") == "yes", "the page was reloaded"
        assert seen and all(s == "COMPLETE" for s in seen[-1].values()), seen
        assert len(seen[-1]) == 3, seen
        # Several distinct states were shown on the way: at least one
        # snapshot had an unfinished step and a finished one side by side,
        # and the page went through more than two pictures of the plan.
        assert len(seen) >= 3, seen
        assert any("COMPLETE" in s.values() and set(s.values()) - {"COMPLETE"} for s in seen), seen
        assert c.plan("slow")["status"] == "COMPLETE"
        b.screenshot("service")

        # -- Pods: tasks, node, state, restarts, endpoints, log tails.
        b.wait("document.querySelectorAll('#pods tr[data-pod]').length === 3", 10)
        row = b.eval("document.querySelector('#pods tr[data-pod=\"db-0\"]').textContent")
        assert "db-0-server" in row and "RUNNING" in row and "node-1" in row, row
        assert re.search(r"pg: [\w.:-]+:\d+", row), row
        b.click('#pods tr[data-pod="db-0"] button.logs')
        b.wait("document.querySelector('#modal pre.log') && "
               "document.querySelector('#modal pre.log').textContent.includes('ready')", 20,
               what="the log tail of db-0-server")
        b.screenshot("logs")
        b.click("#modal-cancel")
        b.wait("document.getElementById('modal').hidden")

        # -- Scale with the page's own button: the count and the new pod.
        before = b.eval("document.querySelector('[data-pod-type=\"db\"] .count').dataset.count")
        assert before == "3"
        b.type_into('form.scale-form[data-pod="db"] input.scale-count', "4")
        b.click('form.scale-form[data-pod="db"] button.scale')
        b.wait("document.querySelector('#notice') && !document.querySelector('#notice').hidden", 20,
               what="the scale's outcome")
        assert "Scaled db to 4" in b.eval("document.getElementById('notice').textContent")
        b.wait("document.querySelector('[data-pod-type=\"db\"] .count') && "
               "document.querySelector('[data-pod-type=\"db\"] .count').dataset.count === '4'", 30,
               what="the count shows 4")
        b.wait("document.querySelector('#pods tr[data-pod=\"db-3\"] [data-task=\"db-3-server\"]"
               "[data-status=\"RUNNING\"]') !== null", 60, what="the new pod db-3 runs, on the page")
        assert c.api("GET", "/v1/services/slow")[1]["pod_types"][0]["count"] == 4
        assert window_same(b)
        admin_actions = b.eval("document.querySelectorAll('button.action, form.action').length")
        assert admin_actions >= 8, admin_actions

        # -- Other pages.
        b.goto(base + "#/nodes")
        b.wait("document.querySelector('#nodes tr[data-node=\"node-1\"]') !== null", 20)
        node_row = b.eval("document.querySelector('#nodes tr[data-node=\"node-1\"]').textContent")
        assert "connected" in node_row and "reserved" in node_row, node_row
        b.screenshot("nodes")
        b.goto(base + "#/volumes")
        b.wait("document.querySelector('#external-volumes') !== null", 20)
        b.screenshot("volumes")
        b.goto(base + "#/events")
        b.wait("document.querySelectorAll('#events li[data-kind]').length > 0", 20)
        assert any("slow" in t for t in texts(b, "#events li")), "no event of slow"
        b.screenshot("events")

        # -- A narrow screen: the same page, stacked.
        b.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=2,
               mobile=True)
        b.goto(base + "#/service/slow")
        b.wait("document.querySelectorAll('#pods tr[data-pod]').length === 4", 20)
        assert b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1"), \
            "the page is wider than a phone's screen"
        b.screenshot("service-narrow")
        b.call("Emulation.clearDeviceMetricsOverride")

        # -- An error in words: a scale the server refuses (below 0 is
        # refused by the page, so ask for a count the server refuses).
        b.goto(base + "#/service/slow")
        b.wait("document.querySelector('form.scale-form[data-pod=\"db\"]') !== null", 20)
        b.type_into('form.scale-form[data-pod="db"] input.scale-count', "2")
        b.click('form.scale-form[data-pod="db"] button.scale')
        b.wait("!document.getElementById('error').hidden", 20, what="the refusal shown")
        err = b.eval("document.getElementById('error').textContent")
        assert "409" in err and "refused" in err, err
        assert c.api("GET", "/v1/services/slow")[1]["pod_types"][0]["count"] == 4

        # -- A log followed: what the task writes next streams in.
        b.goto(base + "#/service/web")
        b.wait("document.querySelector('#pods tr[data-pod=\"app-0\"] button.logs') !== null", 20)
        b.click('#pods tr[data-pod="app-0"] button.logs')
        b.wait("document.querySelector('#modal pre.log').textContent.includes('tick')", 20)
        b.click("#modal input.follow")
        b.wait("document.querySelector('#modal pre.log').textContent.includes('tick')", 20)
        first = b.eval("document.querySelector('#modal pre.log').textContent.trim().split('\\n').pop()")
        b.wait(f"!document.querySelector('#modal pre.log').textContent.trim().endsWith({json.dumps(first)})",
               20, what="a new line streamed in")
        b.click("#modal-cancel")
        b.wait("document.getElementById('modal').hidden")

        # -- Update from the edited spec: the diff first, then apply; roll back.
        b.goto(base + "#/service/web")
        b.wait("document.querySelector('button.edit') !== null", 20)
        b.click("button.edit")
        b.wait("document.querySelector('#modal textarea.spec') && "
               "document.querySelector('#modal textarea.spec').value.includes('echo serving')", 20,
               what="the spec in the editor")
        text = b.eval("document.querySelector('#modal textarea.spec').value")
        assert text == WEB_SPEC, text
        b.type_into("#modal textarea.spec", text.replace("echo serving;", "echo serving v2;"))
        b.click("#modal-ok")
        b.wait("document.getElementById('modal-title').textContent === 'Changes to web'", 20,
               what="the diff shown")
        diff = b.eval("document.querySelector('#modal pre.diff').textContent")
        assert "relaunches app-0" in diff and "v2" in diff, diff
        b.screenshot("update-diff")
        assert c.api("GET", "/v1/service/web/configurations/targetId")[1] == "1", \
            "the diff changed the service"
        b.click("#modal-ok")
        b.wait("!document.getElementById('notice').hidden && "
               "document.getElementById('notice').textContent.includes('Updated web')", 20)
        target = c.api("GET", "/v1/service/web/configurations/targetId")[1]
        assert target == "2", target
        st, hdrs, body = c.request("GET", "/v1/service/web/configurations/target/source", token=ADMIN)
        assert st == 200 and "echo serving v2;" in json.loads(body)["spec"], body
        c.wait_plan("web", plan="deploy")
        b.click("button.rollback")
        b.wait("document.getElementById('modal-title').textContent === 'Roll back web'", 20)
        b.click("#modal-ok")
        b.wait("!document.getElementById('notice').hidden && "
               "document.getElementById('notice').textContent.includes('Rolled back web')", 20)
        st, hdrs, body = c.request("GET", "/v1/service/web/configurations/target/source", token=ADMIN)
        assert st == 200 and json.loads(body)["spec"] == WEB_SPEC, body

        # -- A custom plan started with a parameter, from its form.
        b.wait("document.querySelector('[data-plan=\"backup\"] button.start') !== null", 20)
        b.click('[data-plan="backup"] button.start')
        b.wait("document.getElementById('modal-title').textContent === 'Start plan backup'", 10)
        b.type_into("#modal-body textarea", "DEST=/backups/monday")
        b.click("#modal-ok")
        plan = c.wait_plan("web", plan="backup", timeout=60)
        assert plan["parameters"] == {"DEST": "/backups/monday"}, plan
        b.wait("document.querySelector('[data-plan=\"backup\"]').dataset.status === 'COMPLETE'", 20,
               what="the backup plan COMPLETE on the page")
        st, _, logs = c.request("GET", "/v1/tasks/app-0-backup/logs?service=web", token=ADMIN)
        assert st == 200 and b"backup to /backups/monday" in logs, (st, logs)

        # -- Pause a plan, force-complete a step it has not run, resume it.
        b.click('[data-plan="maint"] button.start')
        b.wait("document.getElementById('modal-title').textContent === 'Start plan maint'", 10)
        b.click("#modal-ok")
        b.wait("document.querySelector('[data-plan=\"maint\"] button.pause') !== null", 20,
               what="maint running, with its Pause button")
        b.click('[data-plan="maint"] button.pause')
        wait_for(lambda: c.plan("web", "maint")["interrupted"], 20, what="maint interrupted")
        step_one = '[data-plan="maint"] li[data-step="app-0:[one]"]'
        step_two = '[data-plan="maint"] li[data-step="app-0:[two]"]'
        b.wait(f"document.querySelector({json.dumps(step_one)}).dataset.status === 'COMPLETE'", 30,
               what="the step already running completes")
        time.sleep(2)
        # Not started: WAITING while the plan is interrupted.
        assert b.eval(f"document.querySelector({json.dumps(step_two)}).dataset.status") in (
            "PENDING", "WAITING")
        assert "paused" in b.eval("document.querySelector('[data-plan=\"maint\"]').textContent")
        b.click(step_two + " button.force")
        b.wait("document.getElementById('modal-title').textContent.startsWith('Force-complete')", 10)
        b.click("#modal-ok")
        b.wait(f"document.querySelector({json.dumps(step_two)}).dataset.status === 'COMPLETE'", 20,
               what="the forced step COMPLETE on the page")
        b.click('[data-plan="maint"] button.resume')
        # Every step is COMPLETE already: the plan is before the click
        # lands, so wait for the resume itself.
        wait_for(lambda: not c.plan("web", "maint")["interrupted"], 20, what="maint resumed")
        plan = c.wait_plan("web", plan="maint", timeout=30)
        assert not plan["interrupted"], plan
        st, _, logs = c.request("GET", "/v1/tasks/app-0-two/logs?service=web", token=ADMIN)
        assert b"two done" not in logs, logs

        # -- Restart a pod from its row (after the question).
        before = c.tasks("web")["app-0-server"]
        b.click('#pods tr[data-pod="app-0"] button.restart')
        b.wait("document.getElementById('modal-title').textContent === 'Restart app-0?'", 10)
        b.click("#modal-ok")
        wait_for(lambda: c.restarted("web", "app-0-server", before), 60, what="app-0 restarted")
        b.wait("(() => { const t = document.querySelector('#pods [data-task=\"app-0-server\"]');"
               " return t && t.dataset.status === 'RUNNING' && !t.textContent.includes(' 0 restarts'); })()",
               30, what="the restart shown on the page")

        # -- Stacks: a stack's services listed with their phases and order.
        one = ("name: x\npods:\n  p:\n    count: 1\n    tasks:\n      s:\n        goal: RUNNING\n"
               "        cmd: exec sleep 1000\n        cpus: 0.05\n        memory: 16\n"
               "        ports: {http: {port: 0, advertise: true}}\n")
        code, body = c.api("POST", "/v1/stacks", {
            "file": "shop.yml",
            "text": "stack: shop\nservices:\n  shop-db: {spec: one.yml}\n  shop-web:\n"
                    "    spec: one.yml\n    options: {DB: '{{services.shop-db.endpoints.http}}'}\n",
            "specs": {"one.yml": {"text": one}}})
        assert code == 201, body
        b.goto(base + "#/services")
        b.wait("document.querySelector('#stacks [data-stack=\"shop\"]') !== null", 20,
               what="the stack listed")
        b.wait("document.querySelectorAll('#stacks [data-stack=\"shop\"] tr[data-phase=\"deployed\"]')"
               ".length === 2", 60, what="both of its services deployed on the page")
        members = b.eval("[...document.querySelectorAll('#stacks [data-stack=\"shop\"] tr[data-member]')]"
                         ".map(r => r.dataset.member)")
        assert members == ["shop-db", "shop-web"], members
        web_row = b.eval("document.querySelector('#stacks tr[data-member=\"shop-web\"]').textContent")
        assert "shop-db" in web_row, web_row
        b.wait("document.querySelectorAll('#services tr[data-service]').length === 4", 20,
               what="the stack's services among the services")
        b.screenshot("services")

        # -- Read-only: no action buttons, and a forged write is refused.
        b.click("#signout")
        b.wait("!document.getElementById('signin').hidden", 10)
        assert b.eval("sessionStorage.getItem('holdfast-token')") is None
        b.goto(base + "?token=" + READ + "#/service/slow")
        b.wait("document.querySelectorAll('#pods tr[data-pod]').length === 4", 30,
               what="the read-only page shows the pods")
        assert READ not in b.eval("location.href")
        assert b.eval("document.getElementById('role').textContent") == "read only"
        assert b.eval("document.querySelectorAll('button.action, form.action, input.scale-count').length") == 0
        labels = texts(b, "button")
        for word in ("Scale", "Restart", "Replace", "Pause", "Start", "Edit spec", "Roll back",
                     "Force complete"):
            assert not any(word in t for t in labels), (word, labels)
        forged = b.eval(f"""fetch('/v1/service/slow/pod-types/db/count', {{
            method: 'PUT',
            headers: {{'Authorization': 'Bearer ' + sessionStorage.getItem('holdfast-token'),
                      'Content-Type': 'application/json'}},
            body: JSON.stringify({{count: 6}})
        }}).then(async r => [r.status, await r.json()])""")
        assert forged[0] == 403 and forged[1]["error"] == "forbidden", forged
        forged = b.eval("""fetch('/v1/service/slow/pod/db-0/restart', {method: 'POST',
            headers: {'Authorization': 'Bearer ' + sessionStorage.getItem('holdfast-token')}})
            .then(r => r.status)""")
        assert forged == 403
        time.sleep(1)
        svc = c.api("GET", "/v1/services/slow")[1]
        assert svc["pod_types"][0]["count"] == 4 and svc["config_id"] == c.api(
            "GET", "/v1/service/slow/configurations/targetId")[1]
        assert len(c.pods("slow")) == 4
        b.screenshot("read-only")

        # -- A token the server does not know: back to the sign-in form.
        b.goto(base + "?token=not-a-token")
        b.wait("!document.getElementById('signin').hidden", 20)
        assert "401" in b.eval("document.getElementById('signin-error').textContent")

        assert not b.exceptions, b.exceptions
        assert ADMIN not in c.server_log() and READ not in c.server_log()
    finally:
        c.stop()


def window_same(b):
    return b.eval("window.__sameDocument") == "yes"


# One pod with a volume of two replicas: one on each node's pool.
REPL_SPEC = """
name: vol
pods:
  db:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size=1;repl=2
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 1000
        cpus: 0.1
        memory: 32
"""


def serve_pid(agent_data):
    """The replica server (holdfast-volume serve) of the agent whose data
    directory is agent_data, or None."""
    root = os.path.realpath(agent_data) + "/"
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (argv[0].endswith(b"holdfast-volume") and argv[1:2] == [b"serve"] and len(argv) > 2
                and os.path.realpath(argv[2].decode(errors="replace")).startswith(root)):
            return int(d)
    return None


def replica_states(b, volume):
    """node -> the state the page shows for each replica of volume."""
    return b.eval(f"""Object.fromEntries([...document.querySelectorAll(
        'tr[data-volume={json.dumps(volume)}] .replica')].map(e => [e.dataset.replica, e.dataset.state]))""")


def test_ui_volumes_show_replicas_and_a_resync(tmp_path, browser):
    """Issue 18: the Volumes page lists a replicated volume with its size,
    where it is attached and each replica's node and state; a replica whose
    node stops answering is shown down, with what it missed, and back in
    sync after its resync, on the same page without a reload."""
    c = UICluster(tmp_path)
    b = browser
    other = None
    stopped = None
    try:
        c.start_server()
        c.start_agent(extra=("--storage", os.path.join(c.tmp, "pool-1") + ",size=4G", "--wait", "1"))
        agent2 = os.path.join(c.tmp, "agent-2")
        log = open(os.path.join(c.tmp, "node-2.log"), "ab")
        c.logs.append(log)
        other = subprocess.Popen(
            [BIN, "agent", "--server", c.url, "--data", agent2, "--node-id", "node-2",
             "--wait", "1", "--token-file", c.agent_token_file,
             "--storage", os.path.join(c.tmp, "pool-2") + ",size=4G"],
            stdout=log, stderr=log, env=c._env(), start_new_session=True)
        wait_for(lambda: sum(1 for n in c.api("GET", "/v1/nodes")[1]
                             if n.get("connected") and n.get("storage")) == 2, 30,
                 what="two nodes with a pool")
        c.deploy(write(tmp_path / "vol.yml", REPL_SPEC))
        st, vol = c.api("GET", "/v1/external-volumes/vol-db-0")
        assert st == 200 and vol["repl"] == 2 and vol["attached"], vol
        attached = vol["attached"]
        assert sorted(r["node"] for r in vol["replicas"]) == ["node-1", "node-2"], vol
        remote = "node-2" if attached == "node-1" else "node-1"

        base = f"http://127.0.0.1:{c.port}/ui/"
        b.goto(base + "?token=" + ADMIN + "#/volumes")
        row = '#external-volumes tr[data-volume="vol-db-0"]'
        b.wait(f"document.querySelector({json.dumps(row)}) !== null", 30,
               what="the replicated volume listed")
        b.wait("document.getElementById('live').classList.contains('on')", 15, what="event stream up")
        assert replica_states(b, "vol-db-0") == {"node-1": "in_sync", "node-2": "in_sync"}
        cells = b.eval(f"""Object.fromEntries([...document.querySelectorAll({json.dumps(row + ' td')})]
            .map(e => [e.dataset.label, e.textContent]))""")
        assert cells["Size"] == "1.0 GiB", cells
        assert cells["Replicas"] == "2 of 2 in sync, at least 1", cells
        assert cells["Attached"] == f"{attached} (epoch 1)", cells
        assert f"{attached} in_sync attached here" in cells["Each replica"], cells
        assert re.match(r"[\d.]+ \w+ written, [\d.]+ \w+ replicated$", cells["I/O"]), cells
        assert b.eval(f"document.querySelector({json.dumps(row)}).textContent.includes('degraded')") is False

        # -- The remote replica's server stops answering while the task
        # writes: the page shows it down, then what it missed.
        b.eval("window.__sameDocument = 'yes'")
        stopped = serve_pid(agent2 if remote == "node-2" else c.agent_data)
        assert stopped, f"no replica server of {remote}"
        os.kill(stopped, signal.SIGSTOP)
        writer = subprocess.Popen(
            [BIN, "--service", "vol", "task", "exec", "db-0-server", "--", "sh", "-c",
             "dd if=/dev/urandom of=data/blob bs=1M count=48 conv=fsync"],
            env=c._env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = ["in_sync"]

        def watch():
            s = replica_states(b, "vol-db-0").get(remote)
            if s and (not seen or seen[-1] != s):
                seen.append(s)
            return s
        wait_for(lambda: watch() not in (None, "in_sync"), 60, interval=0.1,
                 what=f"{remote} shown out of sync")
        out, _ = writer.communicate(timeout=90)
        assert writer.returncode == 0, out
        rep = f'{row} .replica[data-replica="{remote}"]'
        b.wait(f"(() => {{ const e = document.querySelector({json.dumps(rep + ' .missed')});"
               " return e && /^[1-9][\\d.]* \\w+ written without it, to resend$/.test(e.textContent); })()",
               30, what="the bytes the stopped replica missed")
        watch()
        assert b.eval(f"document.querySelector({json.dumps(row)}).dataset.inSync") == "1"
        assert "1 of 2 in sync" in b.eval(f"document.querySelector({json.dumps(row)}).textContent")
        assert b.eval(f"document.querySelector({json.dumps(row + ' [data-status=degraded]')}) !== null")
        why = b.eval(f"document.querySelector({json.dumps(rep + ' .why')}).textContent")
        assert remote in why, why
        b.screenshot("volumes-replicated")

        # -- It answers again: resynced, shown without a reload.
        os.kill(stopped, signal.SIGCONT)
        stopped = None
        wait_for(lambda: watch() == "in_sync", 60, interval=0.1, what=f"{remote} shown in sync again")
        b.wait(f"document.querySelector({json.dumps(row)}).dataset.inSync === '2'", 10)
        io = b.eval(f"document.querySelector({json.dumps(row + ' .io')}).textContent")
        m = re.search(r"resync ([\d.]+ \w+) of ([\d.]+ \w+) sent", io)
        assert m and m.group(1) == m.group(2), io
        vol = c.api("GET", "/v1/external-volumes/vol-db-0")[1]
        assert vol["io"]["resync_sent"] == vol["io"]["resync_planned"] >= 48 << 20, vol
        assert window_same(b), "the page was reloaded"
        # The page went from in sync to down (or stale) and back, through
        # the resync when a look fell inside it.
        assert len(seen) >= 3 and seen[1] in ("down", "stale") and seen[-1] == "in_sync", seen
        assert set(seen) <= {"down", "stale", "resyncing", "in_sync"}, seen
        assert not b.exceptions, b.exceptions
    finally:
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        if other and other.poll() is None:
            other.send_signal(signal.SIGTERM)
            other.wait(30)
        c.stop()

