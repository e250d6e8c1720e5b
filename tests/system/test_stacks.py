"""Stacks of services (issue 18): `holdfast stack deploy|update|diff|status|
remove -f FILE` and /v1/stacks, through the real binary.

A stack file names services, each a spec (relative to the file) with
options, and their dependencies. A service starts only once those it
depends on completed their deploy plans, with their endpoints filled into
its options; an update relaunches only the services whose rendered spec
changed, in dependency order; removing goes in reverse order and keeps
volumes unless asked. A cycle, a missing service or an unknown endpoint is
an error with file:line:col that changes nothing.
"""
import json
import os
import time

import pytest

from holdfast_harness import Cluster, wait_for, write

# A store: serves its port once it has "loaded" for a while, so that a
# dependent started too early would find nothing there.
STORE = """
name: {name}
pods:
  node:
    count: 1
    volume: {{path: data, type: ROOT, size: 10}}
    tasks:
      server:
        goal: RUNNING
        cmd: sleep {delay} && echo ok > data/ready && exec python3 -m http.server --bind 127.0.0.1 --directory data $PORT_WEB
        cpus: 0.1
        memory: 64
        ports:
          web: {{port: 0, advertise: true}}
        readiness-check:
          cmd: python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ['PORT_WEB'], timeout=2)"
          interval: 0.3
          delay: 0
          timeout: 5
"""

# The API server: refuses to start unless both stores answer at the
# addresses the stack gave it, then serves.
API = """
name: api-server
pods:
  api:
    count: {{API_COUNT}}
    tasks:
      server:
        goal: RUNNING
        cmd: |
          for a in $(echo "$STORE_ADDRESS,$CACHE_ADDRESS" | tr , ' '); do
            python3 -c "import sys, urllib.request; urllib.request.urlopen('http://%s/ready' % sys.argv[1], timeout=2)" "$a" || exit 1
          done
          echo "$STORE_ADDRESS $CACHE_ADDRESS $GREETING" > reached
          exec sleep 100000
        cpus: 0.1
        memory: 32
        env:
          STORE_ADDRESS: "{{STORE_ADDRESS}}"
          CACHE_ADDRESS: "{{CACHE_ADDRESS}}"
          GREETING: "{{GREETING}}"
        readiness-check: {cmd: test -s reached, interval: 0.3, timeout: 5}
"""


def stack_file(d, greeting="hello", extra=False, name="shop"):
    text = f"""\
stack: {name}
services:
  store:
    spec: specs/store.yml
  cache:
    spec: specs/cache.yml
  api:
    spec: specs/api.yml
    depends-on: [store, cache]
    options:
      STORE_ADDRESS: "{{{{services.store.endpoints.web}}}}"
      CACHE_ADDRESS: "{{{{services.cache.endpoints.web}}}}"
      GREETING: {greeting}
      API_COUNT: 1
"""
    if extra:
        text += """\
  extra:
    spec: specs/cache.yml
    name: shop-extra
"""
    return write(os.path.join(d, "stack.yml"), text)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("stacks"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture()
def stackdir(tmp_path):
    os.makedirs(tmp_path / "specs")
    write(tmp_path / "specs" / "store.yml", STORE.format(name="kv-store", delay=1.5))
    write(tmp_path / "specs" / "cache.yml", STORE.format(name="cache", delay=0.5))
    write(tmp_path / "specs" / "api.yml", API)
    return str(tmp_path)


def events(c, kind=None):
    p = c.cli("events", "--json")
    out = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return [e for e in out if kind is None or e["kind"] == kind]


def task_ids(c, svc):
    return {n: t["id"] for n, t in c.tasks(svc).items()}


def test_stack_deploy_update_remove(cluster, stackdir):
    c = cluster
    f = stack_file(stackdir)
    since = max([e["id"] for e in events(c)] or [0])
    p = c.cli("stack", "deploy", "-f", f, "--wait", "--timeout", "120", timeout=150)
    assert "store" in p.stdout and "stack shop is deployed" in p.stdout, p.stdout

    # The services are named by the stack, not by their specs.
    code, st = c.api("GET", "/v1/stacks/shop")
    assert code == 200, st
    assert st["phase"] == "deployed"
    rows = {s["name"]: s for s in st["services"]}
    assert set(rows) == {"store", "cache", "api"}
    assert rows["api"]["depends_on"] == ["store", "cache"]
    assert all(r["phase"] == "deployed" and r["exists"] for r in rows.values())
    assert [s["name"] for s in st["services"]][-1] == "api"
    for svc in ("store", "cache", "api"):
        assert c.plan(svc)["status"] == "COMPLETE"

    # The API server got the stores' endpoints and could reach them.
    store_addr = c.api("GET", "/v1/service/store/endpoints/web")[1]["address"]
    cache_addr = c.api("GET", "/v1/service/cache/endpoints/web")[1]["address"]
    code, info = c.api("GET", "/v1/service/api/configurations/target")
    assert code == 200, info
    opts = info["options"]
    assert opts["STORE_ADDRESS"] == ",".join(store_addr)
    assert opts["CACHE_ADDRESS"] == ",".join(cache_addr)

    # Dependency order: the API server's first launch came after both
    # stores' deploy plans completed.
    ev = [e for e in events(c) if e["id"] > since]
    done = {e["service"]: e["id"] for e in ev
            if e["kind"] == "plan" and e["object"] == "deploy" and e["after"] == "COMPLETE"
            and e["service"] in ("store", "cache")}
    first_api = min(e["id"] for e in ev if e["service"] == "api" and e["kind"] == "task")
    assert set(done) == {"store", "cache"} and first_api > max(done.values()), ev

    # An update that changes only the API server's options relaunches it
    # alone.
    before = {s: task_ids(c, s) for s in ("store", "cache", "api")}
    f = stack_file(stackdir, greeting="bonjour")
    p = c.cli("stack", "diff", "-f", f, "--json")
    diff = {r["name"]: r for r in json.loads(p.stdout)["services"]}
    assert diff["api"]["change"] == "update", diff
    assert diff["store"]["change"] == "none" and diff["cache"]["change"] == "none", diff
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "120", timeout=150)
    after = {s: task_ids(c, s) for s in ("store", "cache", "api")}
    assert after["store"] == before["store"] and after["cache"] == before["cache"]
    assert after["api"] != before["api"]
    assert c.api("GET", "/v1/service/api/configurations/target")[1]["options"]["GREETING"] == "bonjour"

    # A count alone is a change too.
    f3 = write(os.path.join(stackdir, "count.yml"),
               open(f).read().replace("API_COUNT: 1", "API_COUNT: 2"))
    diff = {r["name"]: r for r in json.loads(
        c.cli("stack", "diff", "-f", f3, "--json").stdout)["services"]}
    assert diff["api"]["change"] == "update", diff
    assert diff["store"]["change"] == "none", diff

    # The same file again changes nothing.
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "60", timeout=90)
    assert {s: task_ids(c, s) for s in ("store", "cache", "api")} == after

    # A service added by an update is deployed; dropped again, it is removed.
    f = stack_file(stackdir, greeting="bonjour", extra=True)
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "120", timeout=150)
    assert c.plan("shop-extra")["status"] == "COMPLETE"
    assert {s: task_ids(c, s) for s in ("store", "cache", "api")} == after
    f = stack_file(stackdir, greeting="bonjour")
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "120", timeout=150)
    code, _ = c.api("GET", "/v1/services/shop-extra")
    assert code == 404

    # Another stack may not take a service of this one; nor may a stack
    # take a service deployed on its own.
    other = os.path.join(stackdir, "other")
    os.makedirs(other)
    os.symlink(os.path.join(stackdir, "specs"), os.path.join(other, "specs"))
    f2 = stack_file(other, name="shop2")
    p = c.cli("stack", "deploy", "-f", f2, check=False)
    assert p.returncode == 1 and "belongs to stack shop" in p.stderr, p.stderr
    assert c.api("GET", "/v1/stacks/shop2")[0] == 404

    # The stack outlives a server restart.
    c.kill_server()
    c.start_server()
    code, st = c.api("GET", "/v1/stacks/shop")
    assert code == 200 and st["phase"] == "deployed", st
    assert c.api("GET", "/v1/services/store")[0] == 200

    # Removal: dependents first, volumes kept.
    p = c.cli("stack", "remove", "shop", "--wait", "--timeout", "120", timeout=150)
    assert "stack shop is removed" in p.stdout
    assert c.api("GET", "/v1/stacks/shop")[0] == 404
    for svc in ("store", "cache", "api"):
        assert c.api("GET", f"/v1/services/{svc}")[0] == 404
    ev = events(c, "stack")
    removed = {e["object"]: e["id"] for e in ev if e["after"] == "removed" and "/" in e["object"]}
    removing = {e["object"]: e["id"] for e in ev if e["after"] == "removing" and "/" in e["object"]}
    assert removed["shop/api"] < removing["shop/store"], ev
    assert removed["shop/api"] < removing["shop/cache"], ev
    vols = json.loads(c.cli("volume", "list", "--json").stdout)
    assert any(v.get("service") == "store" for v in vols), vols
    assert any(e["object"] == "shop" and e["after"] == "removed" for e in ev)


def test_stack_errors_change_nothing(cluster, stackdir):
    c = cluster
    d = stackdir

    def deploy(text, name="bad.yml"):
        f = write(os.path.join(d, name), text)
        return f, c.cli("stack", "deploy", "-f", f, check=False)

    # A cycle (through an option's endpoint), at the option that closes it.
    f, p = deploy("""\
stack: bad
services:
  store:
    spec: specs/store.yml
    depends-on: [api]
  api:
    spec: specs/api.yml
    options:
      STORE_ADDRESS: "{{services.store.endpoints.web}}"
""")
    assert p.returncode == 1
    assert f"{f}:9:22: error: services.api.options.STORE_ADDRESS: dependency cycle: store -> api -> store" in p.stderr, p.stderr

    # A service the stack does not have, at the list item.
    f, p = deploy("""\
stack: bad
services:
  api:
    spec: specs/api.yml
    depends-on: [store, db]
""")
    assert p.returncode == 1
    assert f"{f}:5:18: error: services.api.depends-on: service 'store' is not in the stack" in p.stderr, p.stderr
    assert f"{f}:5:25: error: services.api.depends-on: service 'db' is not in the stack" in p.stderr, p.stderr

    # An endpoint the named service's spec does not advertise.
    f, p = deploy("""\
stack: bad
services:
  store:
    spec: specs/store.yml
  api:
    spec: specs/api.yml
    options:
      STORE_ADDRESS: "{{services.store.endpoints.postgres}}"
      CACHE_ADDRESS: x
      GREETING: x
      API_COUNT: 1
""")
    assert p.returncode == 1
    assert (f"{f}:8:22: error: services.api.options.STORE_ADDRESS: option STORE_ADDRESS names "
            "endpoint 'postgres' of service 'store', whose spec advertises only: web") in p.stderr, p.stderr

    # Unknown keys, a missing spec file, a spec that does not load.
    write(os.path.join(d, "specs", "broken.yml"), "name: x\npods:\n  p:\n    count: two\n")
    f, p = deploy("""\
stack: bad
services:
  a:
    spec: specs/none.yml
    colour: blue
""")
    assert p.returncode == 1
    assert f"{f}:5:5: error: services.a: unknown key 'colour'" in p.stderr, p.stderr
    f, p = deploy("""\
stack: bad
services:
  a:
    spec: specs/none.yml
  b:
    spec: specs/broken.yml
""")
    assert p.returncode == 1
    assert f"{f}:4:11: error: services.a.spec: cannot read spec" in p.stderr, p.stderr
    assert "specs/broken.yml:4:12: error:" in p.stderr, p.stderr

    # The API checks the same, and answers in JSON.
    code, body = c.api("POST", "/v1/stacks", {"file": "s.yml", "text": "stack: bad\nservices:\n  a:\n    spec: a.yml\n    depends-on: [a]\n", "specs": {}})
    assert code == 400 and body["error"] == "invalid-spec", body
    d0 = body["diagnostics"][0]
    assert (d0["file"], d0["line"], d0["col"]) == ("s.yml", 5, 18), body
    code, body = c.api("POST", "/v1/stacks", {"file": "s.yml", "text": "stack: bad\nservices:\n  a:\n    spec: a.yml\n", "specs": {}})
    assert code == 400 and "a.yml" in body["message"], body
    code, body = c.api("POST", "/v1/stacks", {"text": 5})
    assert code == 400 and body["error"] == "invalid", body
    code, body = c.api("PUT", "/v1/stacks/nope", {"file": "s.yml", "text": "stack: nope\nservices:\n  a:\n    spec: a.yml\n", "specs": {"a.yml": {"text": STORE.format(name="a", delay=0)}}})
    assert code == 404, body

    # Nothing was made.
    code, body = c.api("GET", "/v1/stacks")
    assert code == 200 and body["stacks"] == [], body
    assert "bad" not in c.cli("service", "list").stdout


FAILING = """
name: failing
pods:
  p:
    count: 1
    tasks:
      t:
        goal: RUNNING
        cmd: echo no database here >&2; sleep 0.3; exit 1
        cpus: 0.05
        memory: 16
        readiness-check: {cmd: test -f never, interval: 0.2, timeout: 2}
"""

SIZED = """
name: sized
pods:
  p:
    count: 1
    volume: {{path: data, type: ROOT, size: {size}}}
    tasks:
      t:
        goal: RUNNING
        cmd: exec sleep 100000
        cpus: 0.05
        memory: 16
"""


def test_stack_renames_failures_and_restarts(cluster, stackdir):
    c = cluster
    d = stackdir
    write(os.path.join(d, "specs", "failing.yml"), FAILING)
    write(os.path.join(d, "specs", "sized-10.yml"), SIZED.format(size=10))
    write(os.path.join(d, "specs", "sized-20.yml"), SIZED.format(size=20))

    # A service renamed by `name:` under the same key: the old one goes,
    # the new one comes; the stack owns only the new one.
    f = write(os.path.join(d, "ren.yml"),
              "stack: ren\nservices:\n  a: {spec: specs/cache.yml, name: ren-a}\n")
    c.cli("stack", "deploy", "-f", f, "--wait", "--timeout", "60", timeout=90)
    assert c.api("GET", "/v1/services/ren-a")[0] == 200
    # A service named over its spec's name takes updates by hand too.
    p = c.cli("service", "update", "ren-a", "-f", os.path.join(d, "specs", "cache.yml"))
    assert "no change" in p.stdout, p.stdout
    f = write(os.path.join(d, "ren.yml"),
              "stack: ren\nservices:\n  a: {spec: specs/cache.yml, name: ren-b}\n")
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "60", timeout=90)
    wait_for(lambda: c.api("GET", "/v1/services/ren-a")[0] == 404, 30, what="ren-a removed")
    assert c.api("GET", "/v1/services/ren-b")[0] == 200
    st = c.api("GET", "/v1/stacks/ren")[1]
    assert [(s["name"], s["service"]) for s in st["services"]] == [("a", "ren-b")], st
    # Removed with its volumes; the dropped service's were kept.
    c.cli("stack", "remove", "ren", "--delete-volumes", "--wait", "--timeout", "60", timeout=90)
    vols = json.loads(c.cli("volume", "list", "--json").stdout)
    assert not any(v.get("service") == "ren-b" for v in vols), vols
    assert any(v.get("service") == "ren-a" for v in vols), vols
    c.cli("volume", "delete", "ren-a", "--yes")

    # A service whose task keeps failing: the stack says why, and what
    # depends on it waits.
    f = write(os.path.join(d, "fail.yml"),
              "stack: fail\nservices:\n  broken: {spec: specs/failing.yml}\n"
              "  after: {spec: specs/cache.yml, depends-on: [broken]}\n")
    c.cli("stack", "deploy", "-f", f)

    def says_delayed():
        rows = {s["name"]: s for s in c.api("GET", "/v1/stacks/fail")[1]["services"]}
        return "task p-0-t failed" in rows["broken"].get("message", "") and rows
    rows = wait_for(says_delayed, 60, what="the failing service's message")
    assert rows["after"]["phase"] == "waiting" and not rows["after"]["exists"], rows
    p = c.cli("stack", "deploy", "-f", f, check=False)
    assert p.returncode == 1 and "exists" in p.stderr, p.stderr
    c.cli("stack", "remove", "fail", "--wait", "--timeout", "60", timeout=90)
    assert c.api("GET", "/v1/services/broken")[0] == 404

    # An update the server refuses (a volume's size cannot change): the
    # service and the stack fail, with the reason, and --wait exits 1.
    f = write(os.path.join(d, "vol.yml"),
              "stack: vol\nservices:\n  sized: {spec: specs/sized-10.yml}\n")
    c.cli("stack", "deploy", "-f", f, "--wait", "--timeout", "60", timeout=90)
    f = write(os.path.join(d, "vol.yml"),
              "stack: vol\nservices:\n  sized: {spec: specs/sized-20.yml}\n")
    p = c.cli("stack", "update", "-f", f, "--wait", "--timeout", "60", check=False, timeout=90)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "sized: update refused" in p.stderr, p.stderr
    st = c.api("GET", "/v1/stacks/vol")[1]
    assert st["phase"] == "failed" and st["services"][0]["phase"] == "failed", st
    ev = [e for e in events(c, "stack") if e["object"] == "vol/sized" and e["after"] == "failed"]
    assert ev and "refused" in ev[-1]["why"], ev
    c.cli("stack", "remove", "vol", "--delete-volumes", "--wait", "--timeout", "60", timeout=90)

    # The server killed while a stack deploys: its dependents still start
    # only after what they depend on completed its deploy plan.
    f = stack_file(d, name="crash")
    since = max([e["id"] for e in events(c)] or [0])
    c.cli("stack", "deploy", "-f", f)
    time.sleep(0.7)
    c.kill_server()
    c.start_server()
    p = c.cli("stack", "status", "crash", "--json")
    c.cli("stack", "deploy", "-f", f, check=False)  # exists: refused, changes nothing
    wait_for(lambda: c.api("GET", "/v1/stacks/crash")[1]["phase"] == "deployed", 120,
             what="the stack deployed after the restart")
    ev = [e for e in events(c) if e["id"] > since]
    done = {e["service"]: e["id"] for e in ev
            if e["kind"] == "plan" and e["object"] == "deploy" and e["after"] == "COMPLETE"
            and e["service"] in ("store", "cache")}
    first_api = min(e["id"] for e in ev if e["service"] == "api" and e["kind"] == "task")
    assert set(done) == {"store", "cache"} and first_api > max(done.values()), ev
    # A service removed by hand shows as missing; an update brings it back.
    c.cli("service", "remove", "api", "--wait", "--timeout", "60", timeout=90)
    rows = {s["name"]: s for s in c.api("GET", "/v1/stacks/crash")[1]["services"]}
    assert rows["api"]["phase"] == "missing", rows
    c.cli("stack", "update", "-f", f, "--wait", "--timeout", "120", timeout=150)
    assert c.plan("api")["status"] == "COMPLETE"
    c.cli("stack", "remove", "crash", "--delete-volumes", "--wait", "--timeout", "120", timeout=150)
