"""Sites that know each other (issue 16, first part): `holdfast remote
add|list|show|remove` on one cluster, `server --client-ca` on the other.

Cluster B serves HTTPS and takes as remote clusters the clients whose
certificates its --client-ca signed, on the routes replication needs
only; cluster A registers B with the CA of B's server certificate and its
own client certificate and key. A's leader checks the link (mutual TLS):
up, with B's cluster id and the name B knows A by; down, with why, when
B is gone. A client certificate another CA signed, or none, is refused;
a remote's certificate opens no operator route; the key is never shown
back; bad input changes nothing.
"""
import json
import os
import re
import subprocess
import urllib.request

import pytest

from holdfast_harness import BIN, Cluster, wait_for, write


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """caB signs B's server certificate (127.0.0.1); caA signs A's client
    certificate (CN site-a), which B trusts; caX signs an intruder's."""
    for ca in ("caA", "caB", "caX"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                f"/CN=test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    write(os.path.join(d, "server.ext"), "subjectAltName=IP:127.0.0.1\n")
    write(os.path.join(d, "client.ext"), "extendedKeyUsage=clientAuth\n")
    for name, cn, ca, ext in (("b-server", "127.0.0.1", "caB", "server.ext"),
                              ("a-client", "site-a", "caA", "client.ext"),
                              ("x-client", "intruder", "caX", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.pem", cwd=d)
        os.chmod(os.path.join(d, f"{name}.key"), 0o600)


def start_site_b(tmp, d, token):
    """Cluster B's server: HTTPS with caB's certificate, remote clusters
    the clients caA signed; its admin token. Returns (process, url)."""
    tokens = write(tmp / "b-tokens", f"admin {token}\n")
    os.chmod(tokens, 0o600)
    os.makedirs(tmp / "b")
    port_file = str(tmp / "b-port")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
    b = subprocess.Popen(
        [BIN, "server", "--data", str(tmp / "b"), "--listen", "127.0.0.1:0",
         "--port-file", port_file, "--tokens", tokens,
         "--tls-cert", f"{d}/b-server.pem", "--tls-key", f"{d}/b-server.key",
         "--client-ca", f"{d}/caA.pem"],
        stdout=open(tmp / "b.log", "w"), stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30,
             what="B's port")
    return b, f"https://127.0.0.1:{open(port_file).read().strip()}"


def stop_site_b(b, tmp):
    if b.poll() is None:
        b.terminate()
        b.wait(30)
    assert b.returncode in (0, -15), open(tmp / "b.log").read()[-3000:]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remotes")
    d = str(tmp / "pki")
    os.makedirs(d)
    make_pki(d)
    b, b_url = start_site_b(tmp, d, "b-admin-4d1e")
    a = Cluster(tmp / "a")
    try:
        a.start_server()
        yield a, b, b_url, d, tmp
    finally:
        a.stop()
        stop_site_b(b, tmp)


def curl(url, d, cert=None, token=None):
    args = ["curl", "-sS", "--cacert", f"{d}/caB.pem", "-o", "-", "-w", "\n%{http_code}", url]
    if cert:
        args += ["--cert", f"{d}/{cert}.pem", "--key", f"{d}/{cert}.key"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body, p.stderr


def test_the_remote_route_takes_only_a_certificate_its_client_ca_signed(sites):
    a, b, b_url, d, tmp = sites
    code, body, _ = curl(b_url + "/v1/dr/hello", d, cert="a-client")
    assert code == 200, body
    hello = json.loads(body)
    assert hello["remote"] == "site-a" and re.fullmatch(r"[0-9a-f]{32}", hello["cluster"]), hello
    # Another CA's certificate, or none: refused, and said why.
    code, body, _ = curl(b_url + "/v1/dr/hello", d, cert="x-client")
    assert code == 401 and "not signed by this server's --client-ca" in body, body
    code, body, _ = curl(b_url + "/v1/dr/hello", d)
    assert code == 401, body
    # A remote may do nothing but replication: no operator route.
    for path in ("/v1/services", "/v1/nodes", "/v1/remotes", "/v1/events?follow=false"):
        code, body, _ = curl(b_url + path, d, cert="a-client")
        assert code == 403, (path, code, body)
    # An operator's token does not open the remote route either.
    code, body, _ = curl(b_url + "/v1/dr/hello", d, token="b-admin-4d1e")
    assert code == 403 and "--client-ca" in body, body
    code, body, _ = curl(b_url + "/v1/services", d, token="b-admin-4d1e")
    assert code == 200, body


def test_a_cluster_registers_a_remote_and_watches_its_link(sites):
    a, b, b_url, d, tmp = sites
    p = a.cli("remote", "add", "b", "--url", b_url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", f"{d}/a-client.key")
    assert "knows this cluster as site-a" in p.stdout, p.stdout
    hello = json.loads(curl(b_url + "/v1/dr/hello", d, cert="a-client")[1])

    def up():
        r = json.loads(a.cli("remote", "show", "b", "--json").stdout)
        return r["link"]["state"] == "up" and r
    r = wait_for(up, 30, what="the link to B up")
    assert r["link"]["cluster"] == hello["cluster"] and r["as"] == "site-a", r
    assert r["url"] == b_url and "key" not in r and "cert" not in r
    out = a.cli("remote", "list").stdout
    assert re.search(r"^b\s+https://127\.0\.0\.1:\d+\s+site-a\s+up \(", out, re.M), out
    # The key is never shown back, nor logged.
    listed = a.api("GET", "/v1/remotes")[1]
    key = open(f"{d}/a-client.key").read()
    secret_line = key.splitlines()[1]
    assert secret_line not in json.dumps(listed)
    assert secret_line not in open(os.path.join(a.tmp, "server.log")).read()
    m = urllib.request.urlopen(urllib.request.Request(a.url + "/metrics", headers=a._auth())).read().decode()
    assert 'holdfast_remote_up{remote="b"} 1' in m, m[-1500:]
    # The same name again: refused; nothing changed.
    p = a.cli("remote", "add", "b", "--url", b_url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", f"{d}/a-client.key", check=False)
    assert p.returncode != 0 and "exists" in p.stderr, p.stderr
    # A remote registered with a certificate B's --client-ca did not sign:
    # its link is down, and says why.
    a.cli("remote", "add", "bx", "--url", b_url, "--ca", f"{d}/caB.pem",
          "--cert", f"{d}/x-client.pem", "--key", f"{d}/x-client.key")
    r = wait_for(lambda: (lambda r: r["link"]["state"] == "down" and r)(
        json.loads(a.cli("remote", "show", "bx", "--json").stdout)), 30, what="bx down")
    assert "401" in r["link"]["error"] and "--client-ca" in r["link"]["error"], r
    a.cli("remote", "remove", "bx")
    p = a.cli("remote", "show", "bx", check=False)
    assert p.returncode != 0 and "no remote cluster" in p.stderr, p.stderr
    # B gone: the link goes down, with an event.
    b.terminate()
    b.wait(30)
    r = wait_for(lambda: (lambda r: r["link"]["state"] == "down" and r)(
        json.loads(a.cli("remote", "show", "b", "--json").stdout)), 30, what="b down")
    assert "onnect" in r["link"]["error"], r
    req = urllib.request.Request(a.url + "/v1/events?follow=false", headers=a._auth())
    text = urllib.request.urlopen(req, timeout=20).read().decode()
    evs = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    remote = [(e["object"], e["before"], e["after"]) for e in evs if e["kind"] == "remote"]
    assert ("b", None, "added") in remote and ("b", None, "up") in remote, remote
    assert ("b", "up", "down") in remote and ("bx", None, "removed") in remote, remote


def test_bad_remotes_are_refused_and_change_nothing(sites):
    a, b, b_url, d, tmp = sites
    before = a.api("GET", "/v1/remotes")[1]
    cases = [
        ({"name": "c", "url": "http://127.0.0.1:1", "ca": "x", "cert": "x", "key": "x"}, "https://"),
        ({"name": "../c", "url": b_url}, "\"name\""),
        ({"name": "c", "url": b_url, "ca": "not a pem", "cert": "x", "key": "x"}, "\"ca\""),
        ({"name": "c", "url": b_url, "ca": open(f"{d}/caB.pem").read(),
          "cert": open(f"{d}/a-client.pem").read(), "key": open(f"{d}/x-client.key").read()},
         "not the private key"),
        ([], "JSON object"),
        ({"name": "c", "url": b_url, "ca": open(f"{d}/caB.pem").read(), "cert": "x",
          "key": "x"}, "\"cert\" must be"),
        ({"name": "c", "url": b_url, "ca": open(f"{d}/caB.pem").read(),
          "cert": open(f"{d}/a-client.pem").read()}, "\"key\" must be"),
    ]
    for body, want in cases:
        code, out = a.api("POST", "/v1/remotes", body)
        assert code == 400 and out["error"] == "invalid" and want in out["message"], (body, out)
    # A key file others can read is refused by the CLI.
    loose = write(tmp / "loose.key", open(f"{d}/a-client.key").read())
    os.chmod(loose, 0o644)
    p = a.cli("remote", "add", "c", "--url", b_url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", str(loose), check=False)
    assert p.returncode == 2 and "--key" in p.stderr, p.stderr
    # A flag left out is named.
    p = a.cli("remote", "add", "c", "--url", b_url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", check=False)
    assert p.returncode == 2 and "missing --key" in p.stderr, p.stderr
    assert a.api("GET", "/v1/remotes")[1] == before
    assert a.api("DELETE", "/v1/remotes/nosuch")[0] == 404


def test_client_ca_needs_tls(tmp_path):
    p = subprocess.run([BIN, "server", "--data", str(tmp_path), "--client-ca", "/nonexistent"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--client-ca needs --tls-cert" in p.stderr, p.stderr
