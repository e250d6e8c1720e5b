"""A planned switchover between two sites (issue 16): PostgreSQL runs on
cluster A with DR to cluster B and takes commits until `dr switchover`
stops it; each volume detaches only once B's standby acknowledged every
write; B takes over and starts PostgreSQL with every committed row; and
replication reverses: A holds the standby, fed by B's stream. Each site is
a server (HTTPS, taking the other site's client certificates) and an agent
with a storage pool and a DR listener of its own."""
import glob
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from holdfast_harness import BIN, Cluster, stop_volume_processes, wait_for, write
from test_remotes import openssl
from test_volume_snapshot_pg import SPEC as PG_SPEC_OF, psql

PG_SPEC = PG_SPEC_OF.format(name="pg")


def make_pki(d):
    """caA and caB; each site's server certificate (127.0.0.1) and client
    certificate (CN site-a, site-b), signed by its own CA."""
    for ca in ("caA", "caB"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                f"/CN=test {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    write(os.path.join(d, "server.ext"), "subjectAltName=IP:127.0.0.1\n")
    write(os.path.join(d, "client.ext"), "extendedKeyUsage=clientAuth\n")
    for name, cn, ca, ext in (("a-server", "127.0.0.1", "caA", "server.ext"),
                              ("b-server", "127.0.0.1", "caB", "server.ext"),
                              ("a-client", "site-a", "caA", "client.ext"),
                              ("b-client", "site-b", "caB", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", f"{name}.pem", cwd=d)
        os.chmod(os.path.join(d, f"{name}.key"), 0o600)


class Site:
    """One cluster: an HTTPS server that takes the clients `peer`'s CA
    signed, one agent with a pool and a DR listener."""

    def __init__(self, tmp, d, me, peer):
        self.tmp, self.d, self.me, self.peer = tmp / me, d, me, peer
        os.makedirs(self.tmp / "server")
        os.makedirs(self.tmp / "agent")
        self.admin = f"{me}-admin-7d21"
        agent_tok = f"{me}-agent-41c9"
        self.tokens = write(self.tmp / "tokens", f"admin {self.admin}\nagent {agent_tok}\n")
        os.chmod(self.tokens, 0o600)
        self.tok_file = write(self.tmp / "agent-token", agent_tok + "\n")
        os.chmod(self.tok_file, 0o600)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
        env.pop("HOLDFAST_TOKEN", None)
        self.env = env
        self.agent_data = str(self.tmp / "agent")
        self.port = 0
        self.start()

    def start(self):
        """The server (on its first port again after a restart), then the
        agent."""
        me, peer, d = self.me, self.peer, self.d
        port_file = str(self.tmp / "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.server = subprocess.Popen(
            [BIN, "server", "--data", str(self.tmp / "server"),
             "--listen", f"127.0.0.1:{self.port}",
             "--port-file", port_file, "--tokens", self.tokens,
             "--tls-cert", f"{d}/{me}-server.pem", "--tls-key", f"{d}/{me}-server.key",
             "--client-ca", f"{d}/ca{peer.upper()}.pem"],
            stdout=open(self.tmp / "server.log", "a"), stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30,
                 what=f"{me}'s port")
        self.port = int(open(port_file).read().strip())
        self.url = f"https://127.0.0.1:{self.port}"
        self.agent = subprocess.Popen(
            [BIN, "agent", "--server", self.url, "--ca-file", f"{d}/ca{me.upper()}.pem",
             "--token-file", str(self.tok_file), "--data", self.agent_data,
             "--node-id", f"{me}-node-1", "--address", "127.0.0.1",
             "--storage", str(self.tmp / "pool") + ",size=4G",
             # Ports of their own: other tests' clusters run beside these.
             "--resources", "ports=" + ("32000-32999" if me == "a" else "33000-33999"),
             "--dr-listen", "127.0.0.1:0", "--dr-cert", f"{d}/{me}-server.pem",
             "--dr-key", f"{d}/{me}-server.key", "--dr-ca", f"{d}/ca{peer.upper()}.pem"],
            stdout=open(self.tmp / "agent.log", "a"), stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True)
        wait_for(lambda: (lambda r: r[0] == 200 and r[1] and r[1][0].get("connected"))(
            self.api("GET", "/v1/nodes")), 30, what=f"{me}'s agent")

    def crash(self):
        """The whole site lost at once: everything it runs killed -9."""
        for p in (self.server, self.agent):
            if p.poll() is None:
                p.kill()
                p.wait()
        root = str(self.tmp / "agent")
        for _ in range(3):
            for pid in Cluster.pids_matching(root):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        self.unmount()

    def unmount(self):
        root = str(self.tmp / "agent")
        subprocess.run(["sh", "-c", f"grep ' {root}' /proc/mounts | cut -d' ' -f2 | sort -r | "
                        f"xargs -r -n1 umount -l"], check=False)
        for name in os.listdir("/sys/block"):
            try:
                backing = open(f"/sys/block/{name}/loop/backing_file").read().strip()
            except OSError:
                continue
            if backing.startswith(str(self.tmp)):
                subprocess.run(["losetup", "-d", "/dev/" + name], check=False)

    def api(self, method, path, body=None):
        args = ["curl", "-sS", "--cacert", f"{self.d}/ca{self.me.upper()}.pem", "-X", method,
                "-o", "-", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {self.admin}",
                self.url + path]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary",
                     json.dumps(body)]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        text, _, code = p.stdout.rpartition("\n")
        return int(code or 0), (json.loads(text) if text.strip() else None)

    def cli(self, *args, check=True, timeout=60):
        env = dict(self.env, HOLDFAST_ADDR=self.url, HOLDFAST_TOKEN=self.admin,
                   HOLDFAST_CA_FILE=f"{self.d}/ca{self.me.upper()}.pem",
                   HOLDFAST_CONFIG_DIR=str(self.tmp / "config"))
        p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    def dr(self, svc):
        code, st = self.api("GET", f"/v1/service/{svc}/dr")
        return st if code == 200 else {}

    def pg_port(self):
        p = self.cli("-s", "pg", "task", "exec", "db-0-server", "--", "sh", "-c",
                     "echo $PG_PORT", check=False)
        return p.returncode == 0 and p.stdout.strip() and int(p.stdout.strip())

    def stop(self):
        for p in (self.agent, self.server):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        root = str(self.tmp / "agent")
        for pid in Cluster.pids_matching(root):
            try:
                if b"holdfast-volume" not in open(f"/proc/{pid}/cmdline", "rb").read():
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass
        stop_volume_processes(root)
        self.unmount()
        assert self.server.returncode in (0, -15, -9), \
            open(self.tmp / "server.log").read()[-3000:]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drswitch")
    d = str(tmp / "pki")
    os.makedirs(d)
    make_pki(d)
    a = b = None
    try:
        a = Site(tmp, d, "a", "b")
        b = Site(tmp, d, "b", "a")
        a.cli("remote", "add", "b", "--url", b.url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", f"{d}/a-client.key")
        b.cli("remote", "add", "a", "--url", a.url, "--ca", f"{d}/caA.pem",
              "--cert", f"{d}/b-client.pem", "--key", f"{d}/b-client.key")
        yield a, b, tmp
    finally:
        for s in (a, b):
            if s:
                s.stop()


def switchover_under_load(sites):
    """PostgreSQL on A under commits, switched over to B: every commit is
    there, and A holds the standby."""
    a, b, tmp = sites
    a.cli("service", "deploy", "-f", str(write(tmp / "pg.yml", PG_SPEC)), "--wait",
          "--timeout", "240", timeout=270)
    port = a.pg_port()
    assert psql(port, "create table t (id int primary key, at bigint)").returncode == 0
    # Refused while B holds no consistent copy yet (nothing changes).
    p = a.cli("-s", "pg", "dr", "switchover", "--yes", check=False)
    assert p.returncode != 0 and "not replicated" in p.stderr, p.stderr
    p = a.cli("-s", "pg", "dr", "enable", "--to", "b", "--wait", "--timeout", "180",
              timeout=200)
    assert "consistent copy" in p.stdout, p.stdout
    p = a.cli("-s", "pg", "dr", "switchover", check=False)
    assert p.returncode != 0 and "--yes" in p.stderr, p.stderr
    committed = {}
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            i += 1
            r = psql(port, f"insert into t values ({i}, {time.time_ns()})", timeout=10)
            if r.returncode != 0:
                time.sleep(0.05)
                continue
            committed[i] = time.time_ns()  # after COMMIT returned
    th = threading.Thread(target=load, daemon=True)
    th.start()
    wait_for(lambda: len(committed) > 50, 60, what="commits on A")
    # A's copy of the volume: after the move, the standby replica B's
    # reversed stream compares against.
    mine = glob.glob(str(a.tmp / "pool" / "replicas" / "*" / "*" / "data"))
    assert len(mine) == 1, mine
    # Under that load, the planned move.
    t0 = time.time()
    p = a.cli("-s", "pg", "dr", "switchover", "--yes", "--wait", "--timeout", "300",
              timeout=330)
    took = time.time() - t0
    stop.set()
    th.join(15)
    assert "switchover done" in p.stdout, (p.stdout, p.stderr)
    assert "stopping" in p.stdout, p.stdout
    # A is the standby now, B the primary replicating to A.
    st_a = a.dr("pg")
    assert st_a.get("role") == "standby" and st_a.get("from"), st_a
    st_b = b.dr("pg")
    assert st_b.get("role") == "primary" and st_b.get("to") == "a", st_b
    assert a.api("GET", "/v1/services/pg")[0] == 404
    # Every committed transaction is on B.
    bport = wait_for(b.pg_port, 180, what="PostgreSQL on B")
    r = wait_for(lambda: (lambda r: r.returncode == 0 and r)(psql(bport, "select id from t")),
                 120, what="B's PostgreSQL answering")
    have = {int(x) for x in r.stdout.split()}
    print(f"\nDR-SWITCHOVER: {len(committed)} commits on A, {len(have)} rows on B, "
          f"switchover {took:.1f} s")
    assert set(committed) <= have, sorted(set(committed) - have)[:20]
    assert have <= set(committed) | {max(committed) + 1}, sorted(have - set(committed))[:5]
    # B writes on and streams to A's new standby replica.
    assert psql(bport, "insert into t values (1000000, 0)").returncode == 0

    def reversed_stream():
        v = (b.dr("pg").get("volumes") or [{}])[0].get("stream")
        return v and v["state"] == "streaming" and v["consistent"] and v["link_up"] and v
    v = wait_for(reversed_stream, 240, what="B's stream to A consistent")
    # A's copy stayed: B sent what changed since the move, not the volume.
    assert mine[0].split("/")[-2] == st_a["volumes"][0]["replica"], (mine, st_a)
    print(f"\nDR-REVERSED: B's stream to A sent {v['shipped']} B, found "
          f"{v['copy_same']} B equal")
    assert v["shipped"] < 16 << 20 and v["copy_same"] > 200 << 20, v
    ev = [json.loads(x) for x in a.cli("events", "--json").stdout.splitlines()]
    said = [e.get("why") or "" for e in ev if e.get("kind") == "dr"]
    assert any("switchover done" in m for m in said), said
    ev = [json.loads(x) for x in b.cli("events", "--json").stdout.splitlines()]
    assert any(e.get("kind") == "dr" and e.get("after") == "primary" for e in ev), ev
    # A refuses to run the service while it is B's standby.
    p = a.cli("service", "deploy", "-f", str(tmp / "pg.yml"), check=False)
    assert p.returncode != 0, p.stdout


def differing_bytes(a, b, unit=1 << 20):
    """Bytes of the unit-sized pieces in which files a and b differ."""
    n = 0
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(unit), fb.read(unit)
            if not x and not y:
                return n
            if x != y:
                n += max(len(x), len(y))


def rows(port):
    r = wait_for(lambda: (lambda r: r.returncode == 0 and r)(psql(port, "select id from t")),
                 120, what="PostgreSQL answering")
    return {int(x) for x in r.stdout.split()}


def failover_fencing_failback_and_home_again(sites):
    """After the switchover B runs PostgreSQL and A holds its standby.
    All of B is lost (-9): `dr failover` on A starts PostgreSQL with every
    row B committed before the loss window. B comes back, starts its old
    copy, hears from A that the service runs there and stops it (the
    fencing rule); `dr failback` on B makes B the standby; a switchover on
    A brings the service home to B with every row."""
    a, b, tmp = sites
    bport = wait_for(b.pg_port, 60, what="PostgreSQL on B")
    committed = {}
    stop = threading.Event()

    def load(port, base):
        i = base
        while not stop.is_set():
            i += 1
            r = psql(port, f"insert into t values ({i}, {time.time_ns()})", timeout=10)
            if r.returncode != 0:
                time.sleep(0.05)
                continue
            committed[i] = time.time_ns()
    th = threading.Thread(target=load, args=(bport, 2000000), daemon=True)
    th.start()
    wait_for(lambda: len(committed) > 30, 60, what="commits on B")
    # A's standby has reported a mark past some of them (marks reach the
    # server about once a second): the loss window then leaves rows to
    # check.
    first = min(committed.values())
    wait_for(lambda: ((a.dr("pg").get("volumes") or [{}])[0].get("applied_time") or 0)
             > first, 30, what="A's standby mark past B's first commits")
    b.crash()
    stop.set()
    th.join(15)
    p = a.cli("-s", "pg", "dr", "failover", "--yes", "--json", timeout=120)
    out = json.loads(p.stdout)
    assert out["deployed"] and out["last_write_applied"], out
    loss = out["last_write_applied"]
    aport = wait_for(a.pg_port, 180, what="PostgreSQL on A")
    have = rows(aport)
    must = {i for i, at in committed.items() if at < loss}
    assert must and must <= have, sorted(must - have)[:20]
    assert psql(aport, "insert into t values (3000000, 0)").returncode == 0
    # B comes back and starts its old copy; A's answer stops it.
    b.start()

    def fenced():
        st = b.dr("pg")
        return st.get("fenced") and b.api("GET", "/v1/services/pg")[0] == 404 and st
    st = wait_for(fenced, 120, what="B's copy fenced")
    assert "failback" in st["fenced"]["message"], st
    # B's copy as the sites diverged: the failback keeps it as the standby
    # replica and is sent only what differs from it.
    kept = glob.glob(str(b.tmp / "pool" / "replicas" / "*" / "*" / "data"))
    assert len(kept) == 1, kept
    before = str(tmp / "b-before-failback")
    subprocess.run(["cp", "--sparse=always", kept[0], before], check=True)
    p = b.cli("-s", "pg", "dr", "failback", check=False)
    assert p.returncode != 0 and "--yes" in p.stderr, p.stderr
    p = b.cli("-s", "pg", "dr", "failback", "--yes", "--wait", "--timeout", "180", timeout=210)
    assert "standby" in p.stdout and "1 of 1 volume(s) copied here and consistent" in p.stdout, \
        p.stdout
    st = b.dr("pg")
    assert st.get("role") == "standby" and st["volumes"][0]["consistent"], st
    assert kept[0].split("/")[-2] == st["volumes"][0]["replica"], (kept, st)
    s = wait_for(lambda: (lambda v: v and v.get("lag_bytes") == 0 and v)(
        (a.dr("pg").get("volumes") or [{}])[0].get("stream")), 60, what="A's stream drained")
    # What changed on B's copy is what either site wrote since the sites
    # diverged (32 KiB pieces, the stream's unit of comparison): the copy
    # sends that, and the records written meanwhile.
    differ = differing_bytes(before, kept[0], 32 << 10)
    print(f"\nDR-FAILBACK: {s['shipped']} B sent to B; {differ} B of B's copy differ from "
          f"what it held before (32 KiB pieces), "
          f"{differing_bytes(before, kept[0])} B in 1 MiB pieces; "
          f"{s['copy_same']} B found equal")
    assert s["copy_same"] > 0, s
    assert s["shipped"] <= 1.1 * differ + (512 << 10), (s, differ)
    out = a.cli("-s", "pg", "dr", "status").stdout
    assert "the standby held already was not sent" in out, out
    assert st["volumes"][0]["applied_time"] <= time.time_ns(), st
    assert "consistent" in b.cli("-s", "pg", "dr", "status").stdout
    st = a.dr("pg")
    assert st.get("role") == "primary" and st.get("to") == "b", st

    def streaming():
        v = (a.dr("pg").get("volumes") or [{}])[0].get("stream")
        return v and v["state"] == "streaming" and v["consistent"] and v["link_up"] and v
    wait_for(streaming, 240, what="A's stream to B consistent")
    # Home again: every row, A's too, is on B.
    p = a.cli("-s", "pg", "dr", "switchover", "--yes", "--wait", "--timeout", "300",
              timeout=330)
    assert "switchover done" in p.stdout, (p.stdout, p.stderr)
    bport = wait_for(b.pg_port, 180, what="PostgreSQL on B again")
    have_b = rows(bport)
    assert have <= have_b and 3000000 in have_b, sorted(have - have_b)[:20]
    assert a.dr("pg").get("role") == "standby"


def a_cut_link(sites):
    """B runs PostgreSQL with A as its standby (after the tests above).
    The link between the sites is cut for 30 s (A's replica server, which
    holds the standby, frozen: connections hang, nothing answers) while B
    commits: no commit waits for the link, B's journal and lag grow and
    the link shows down; once it heals, A catches up."""
    a, b, tmp = sites
    bport = wait_for(b.pg_port, 60, what="PostgreSQL on B")

    def stream():
        return (b.dr("pg").get("volumes") or [{}])[0].get("stream") or {}
    wait_for(lambda: stream().get("consistent") and stream().get("link_up"), 240,
             what="B's stream to A consistent")
    serve = [pid for pid in Cluster.pids_matching(a.agent_data)
             if b"holdfast-volume" in open(f"/proc/{pid}/cmdline", "rb").read() and
             b"serve" in open(f"/proc/{pid}/cmdline", "rb").read()]
    assert serve, "A's replica server"
    slowest, commits, peak = 0.0, 0, {}
    for pid in serve:
        os.kill(pid, signal.SIGSTOP)
    try:
        t_end = time.time() + 30
        i = 4000000
        while time.time() < t_end:
            i += 1
            t0 = time.time()
            r = psql(bport, f"insert into t values ({i}, {time.time_ns()}); "
                            f"insert into t select g, 0 from generate_series({i * 100}, "
                            f"{i * 100 + 99}) g", timeout=10)
            slowest = max(slowest, time.time() - t0)
            assert r.returncode == 0, r.stderr
            commits += 1
            s = stream()
            if s.get("journal_bytes", 0) > peak.get("journal_bytes", 0):
                peak = s
        down = stream()
    finally:
        for pid in serve:
            os.kill(pid, signal.SIGCONT)
    print(f"\nDR-CUT: {commits} commits in 30 s, slowest {slowest:.2f} s, journal peak "
          f"{peak.get('journal_bytes')} B, lag then {down.get('lag_seconds')} s")
    assert commits > 30 and slowest < 5, (commits, slowest)
    assert not down.get("link_up") and down["lag_seconds"] > 5, down
    assert peak["journal_bytes"] > 0 and peak["blocked"] == 0, peak
    s = wait_for(lambda: (lambda s: s.get("link_up") and s.get("consistent") and
                          s.get("lag_seconds", 99) < 3 and s)(stream()),
                 120, what="A caught up")
    assert s["state"] == "streaming", s


def test_switchover_failover_failback_and_a_cut_link(sites):
    """The steps depend on each other (one pair of sites), so they are one
    test: pytest -n would otherwise run them on different workers."""
    switchover_under_load(sites)
    failover_fencing_failback_and_home_again(sites)
    a_cut_link(sites)
    standby_removed(sites)


def standby_removed(sites):
    """`dr disable` on the primary (B): A's standby goes, and with it its
    standby replica's files in A's pool."""
    a, b, tmp = sites
    st = a.dr("pg")
    assert st.get("role") == "standby", st
    rep = st["volumes"][0]["replica"]
    files = glob.glob(str(a.tmp / "pool" / "replicas" / "*" / rep))
    assert files, rep
    p = b.cli("-s", "pg", "dr", "disable")
    assert "standby there is gone" in p.stdout, p.stdout
    assert a.api("GET", "/v1/service/pg/dr")[0] == 404
    wait_for(lambda: not any(os.path.exists(f) for f in files), 90,
             what="A's standby replica deleted")
    ev = [json.loads(x) for x in a.cli("events", "--json").stdout.splitlines()]
    assert any(e.get("kind") == "dr" and e.get("before") == "standby" and
               e.get("after") == "none" for e in ev), ev
