"""Disaster recovery of a service's configuration (issue 16, second part):
`holdfast -s SVC dr enable --to REMOTE` on cluster A sends the service's
target configuration to cluster B over mutual TLS, where it is a standby
service that runs no pod and cannot be deployed; every change follows;
`dr disable` removes it there. A remote may write only standbys, only
its own, only ones that load, never over a service that runs.
"""
import json
import os
import subprocess

import pytest

from holdfast_harness import Cluster, wait_for, write
from test_remotes import make_pki, start_site_b, stop_site_b

B_TOKEN = "b-admin-77aa"

SPEC = """
name: web
pods:
  web:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: exec sleep 100000
        cpus: 0.05
        memory: 32
        env: {GREETING: "{{GREETING}}"}
"""


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drcfg")
    d = str(tmp / "pki")
    os.makedirs(d)
    make_pki(d)
    b, b_url = start_site_b(tmp, d, B_TOKEN)
    a = Cluster(tmp / "a")
    try:
        a.start()
        a.cli("remote", "add", "b", "--url", b_url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", f"{d}/a-client.key")
        yield a, b_url, d, tmp
    finally:
        a.stop()
        stop_site_b(b, tmp)


def b_api(b_url, d, method, path, body=None, cert=None):
    args = ["curl", "-sS", "--cacert", f"{d}/caB.pem", "-X", method, "-o", "-", "-w",
            "\n%{http_code}", b_url + path]
    if cert:
        args += ["--cert", f"{d}/{cert}.pem", "--key", f"{d}/{cert}.key"]
    else:
        args += ["-H", f"Authorization: Bearer {B_TOKEN}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    text, _, code = p.stdout.rpartition("\n")
    return int(code or 0), (json.loads(text) if text.strip() else None)


def test_the_configuration_follows_to_a_standby_that_runs_nothing(sites):
    a, b_url, d, tmp = sites
    f = write(tmp / "web.yml", SPEC)
    a.deploy(str(f), "-o", "GREETING=hello")
    # --wait: a service without replicated volumes is there once its
    # configuration is.
    p = a.cli("-s", "web", "dr", "enable", "--to", "b", "--wait", "--timeout", "60",
              timeout=90)
    assert "replicated to remote cluster b" in p.stdout, p.stdout
    assert "holds its configuration and a consistent copy of each of its 0 volume(s)" \
        in p.stdout, p.stdout

    def standby_has(cfg):
        code, st = b_api(b_url, d, "GET", "/v1/service/web/dr")
        return code == 200 and st["config"]["id"] == cfg and st
    st = wait_for(lambda: standby_has("1"), 30, what="config 1 on B")
    assert st["role"] == "standby" and st["from"] == "site-a", st
    a_status = json.loads(a.cli("-s", "web", "dr", "status", "--json").stdout)
    assert a_status["role"] == "primary" and a_status["to"] == "b", a_status
    wait_for(lambda: json.loads(a.cli("-s", "web", "dr", "status", "--json").stdout)
             ["config"]["in_sync"], 30, what="A's status in sync")
    assert "in sync" in a.cli("-s", "web", "dr", "status").stdout
    # B runs none of it, and will not deploy it.
    code, svcs = b_api(b_url, d, "GET", "/v1/services")
    assert code == 200 and not [x for x in (svcs.get("services") if isinstance(svcs, dict) else svcs)
                                if (x.get("name") if isinstance(x, dict) else x) == "web"], svcs
    code, out = b_api(b_url, d, "POST", "/v1/services",
                      {"spec": SPEC, "file": "web.yml", "options": {"GREETING": "x"}})
    assert code == 409 and "standby of remote cluster site-a" in out["message"], out
    # The record holds what a failover needs: spec, options.
    # A change on A follows.
    a.cli("service", "update", "web", "-f", str(f), "-o", "GREETING=bonjour", "--wait",
          "--timeout", "60")
    wait_for(lambda: standby_has("2"), 30, what="config 2 on B")
    code, lst = b_api(b_url, d, "GET", "/v1/dr")
    assert code == 200 and [s["service"] for s in lst["services"]] == ["web"], lst
    # Disable: the standby goes.
    p = a.cli("-s", "web", "dr", "disable")
    assert "its standby there is gone" in p.stdout, p.stdout
    code, out = b_api(b_url, d, "GET", "/v1/service/web/dr")
    assert code == 404, out
    code, _ = b_api(b_url, d, "POST", "/v1/services",
                    {"spec": SPEC, "file": "web.yml", "options": {"GREETING": "x"}})
    assert code in (200, 201), code
    # Now web runs on B: A's standby of it is refused there.
    a.cli("-s", "web", "dr", "enable", "--to", "b")
    st = wait_for(lambda: (lambda s: s["config"]["error"] and s)(
        json.loads(a.cli("-s", "web", "dr", "status", "--json").stdout)), 30,
        what="the refusal seen on A")
    assert "runs on this cluster" in st["config"]["error"], st
    a.cli("-s", "web", "dr", "disable")
    b_api(b_url, d, "DELETE", "/v1/services/web")
    a.cli("service", "remove", "web", "--wait", "--timeout", "60")


def test_a_remote_writes_only_standbys_that_load(sites):
    a, b_url, d, tmp = sites
    good = {"cluster": "c", "config": {"id": "1", "text": SPEC, "options": {"GREETING": "x"},
                                       "templates": {}, "counts": {}}, "plans": {}}
    # Not signed by B's --client-ca: refused.
    code, out = b_api(b_url, d, "PUT", "/v1/dr/standby/other", good, cert="x-client")
    assert code == 401, out
    # A spec that does not load there, or for another name: refused.
    bad = json.loads(json.dumps(good))
    bad["config"]["text"] = "name: other\npods: {}\n"
    code, out = b_api(b_url, d, "PUT", "/v1/dr/standby/other", bad, cert="a-client")
    assert code in (400, 422) and out["error"] in ("invalid-spec", "invalid"), out
    code, out = b_api(b_url, d, "PUT", "/v1/dr/standby/other", good, cert="a-client")
    assert code == 400 and "not 'other'" in out["message"], out
    code, out = b_api(b_url, d, "PUT", "/v1/dr/standby/web", {"config": {}}, cert="a-client")
    assert code == 400, out
    code, out = b_api(b_url, d, "GET", "/v1/dr")
    assert out == {"services": []}, out
    # An operator cannot call the remote routes; a remote cannot call dr list.
    code, out = b_api(b_url, d, "PUT", "/v1/dr/standby/web", good)
    assert code == 403, out
    code, out = b_api(b_url, d, "GET", "/v1/dr", cert="a-client")
    assert code == 403, out


def test_enable_refuses_what_does_not_exist(sites):
    a, b_url, d, tmp = sites
    p = a.cli("-s", "nosuch", "dr", "enable", "--to", "b", check=False)
    assert p.returncode != 0 and "no service 'nosuch'" in p.stderr, p.stderr
    p = a.cli("-s", "nosuch", "dr", "status", check=False)
    assert p.returncode != 0 and "no service 'nosuch'" in p.stderr, p.stderr
    f = write(tmp / "web2.yml", SPEC.replace("name: web", "name: web2"))
    a.deploy(str(f), "-o", "GREETING=x")
    p = a.cli("-s", "web2", "dr", "enable", "--to", "nowhere", check=False)
    assert p.returncode != 0 and "no remote cluster 'nowhere'" in p.stderr, p.stderr
    a.cli("-s", "web2", "dr", "enable", "--to", "b")
    p = a.cli("-s", "web2", "dr", "enable", "--to", "b", check=False)
    assert p.returncode != 0 and "already" in p.stderr, p.stderr
    p = a.cli("-s", "web2", "dr", "status")
    assert "primary, replicated to b" in p.stdout, p.stdout
    a.cli("-s", "web2", "dr", "disable")
    p = a.cli("-s", "web2", "dr", "status", check=False)
    assert p.returncode != 0 and "no disaster recovery" in p.stderr, p.stderr
    a.cli("service", "remove", "web2", "--wait", "--timeout", "60")
