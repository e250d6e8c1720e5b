"""Disaster recovery of a service's data (issue 16, third part): with `dr
enable`, each replicated volume of the service gets a standby replica on
cluster B (placed on a node whose agent runs a DR listener, --dr-listen),
and the attach process on cluster A streams every write to it over mutual
TLS; `dr status` on A shows each volume's stream (state, lag, journal);
B's standby replica holds what A's task wrote, byte for byte, once the
lag is 0. B here is a server and an agent of its own (its own data, pool,
token and TLS), as a second site is."""
import filecmp
import json
import os
import signal
import subprocess
import time

import pytest

from holdfast_harness import BIN, Cluster, stop_volume_processes, wait_for, write
from test_remotes import make_pki
from test_volume_snapshot_pg import SPEC as PG_SPEC_OF, psql

B_ADMIN = "b-admin-5c1e"
B_AGENT = "b-agent-93f0"

SPEC = """
name: notes
pods:
  notes:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        volume-mode: RW
        container-path: data
        driver-name: holdfast
        driver-options: size=1;repl=1
    tasks:
      writer:
        goal: RUNNING
        cmd: >-
          i=0; while true; do i=$((i+1)); echo "note $i" >> data/notes;
          sync data/notes; sleep 0.2; done
        cpus: 0.05
        memory: 32
"""


class SiteB:
    """Cluster B: an HTTPS server that takes remote clusters caA signed,
    and one agent with a storage pool and a DR listener."""

    def __init__(self, tmp, d):
        self.tmp, self.d = tmp, d
        os.makedirs(tmp / "b-server")
        os.makedirs(tmp / "b-agent")
        tokens = write(tmp / "b-tokens", f"admin {B_ADMIN}\nagent {B_AGENT}\n")
        os.chmod(tokens, 0o600)
        self.agent_token = write(tmp / "b-agent-token", B_AGENT + "\n")
        os.chmod(self.agent_token, 0o600)
        port_file = str(tmp / "b-port")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
        env.pop("HOLDFAST_TOKEN", None)
        self.env = env
        self.server = subprocess.Popen(
            [BIN, "server", "--data", str(tmp / "b-server"), "--listen", "127.0.0.1:0",
             "--port-file", port_file, "--tokens", tokens,
             "--tls-cert", f"{d}/b-server.pem", "--tls-key", f"{d}/b-server.key",
             "--client-ca", f"{d}/caA.pem"],
            stdout=open(tmp / "b-server.log", "w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30,
                 what="B's port")
        self.url = f"https://127.0.0.1:{open(port_file).read().strip()}"
        self.agent = subprocess.Popen(
            [BIN, "agent", "--server", self.url, "--ca-file", f"{d}/caB.pem",
             "--token-file", str(self.agent_token), "--data", str(tmp / "b-agent"),
             "--node-id", "b-node-1", "--address", "127.0.0.1",
             "--storage", str(tmp / "b-pool") + ",size=4G",
             "--dr-listen", "127.0.0.1:0", "--dr-cert", f"{d}/b-server.pem",
             "--dr-key", f"{d}/b-server.key", "--dr-ca", f"{d}/caA.pem"],
            stdout=open(tmp / "b-agent.log", "w"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True)

        def dr_port():
            code, nodes = self.api("GET", "/v1/nodes")
            return code == 200 and nodes and nodes[0].get("connected") and nodes
        wait_for(dr_port, 30, what="B's agent")

    def api(self, method, path, body=None):
        args = ["curl", "-sS", "--cacert", f"{self.d}/caB.pem", "-X", method, "-o", "-",
                "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {B_ADMIN}",
                self.url + path]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary",
                     json.dumps(body)]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        text, _, code = p.stdout.rpartition("\n")
        return int(code or 0), (json.loads(text) if text.strip() else None)

    def cli(self, *args, check=True, timeout=60):
        env = dict(self.env, HOLDFAST_ADDR=self.url, HOLDFAST_TOKEN=B_ADMIN,
                   HOLDFAST_CA_FILE=f"{self.d}/caB.pem",
                   HOLDFAST_CONFIG_DIR=str(self.tmp / "b-config"))
        p = subprocess.run([BIN, *args], capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr)
        return p

    def stop(self):
        for p in (self.agent, self.server):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        # Tasks, attach processes and the replica server outlive the agent.
        root = str(self.tmp / "b-agent")
        for pid in Cluster.pids_matching(root):
            try:
                if b"holdfast-volume" not in open(f"/proc/{pid}/cmdline", "rb").read():
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass
        stop_volume_processes(root)
        for name in os.listdir("/sys/block"):
            try:
                backing = open(f"/sys/block/{name}/loop/backing_file").read().strip()
            except OSError:
                continue
            if backing.startswith(root):
                subprocess.run(["losetup", "-d", "/dev/" + name], check=False)
        subprocess.run(["sh", "-c", f"grep ' {root}' /proc/mounts | cut -d' ' -f2 | sort -r | "
                        f"xargs -r -n1 umount -l"], check=False)
        assert self.server.returncode in (0, -15), \
            open(self.tmp / "b-server.log").read()[-3000:]


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("drvol")
    d = str(tmp / "pki")
    os.makedirs(d)
    make_pki(d)
    b = SiteB(tmp, d)
    a = Cluster(tmp / "a")
    try:
        a.start_server()
        a.start_agent(extra=("--storage", str(tmp / "a-pool") + ",size=4G"))
        a.cli("remote", "add", "b", "--url", b.url, "--ca", f"{d}/caB.pem",
              "--cert", f"{d}/a-client.pem", "--key", f"{d}/a-client.key")
        yield a, b, d, tmp
    finally:
        a.stop()
        b.stop()


def dr_status(a):
    return json.loads(a.cli("-s", "notes", "dr", "status", "--json").stdout)


def test_a_volume_streams_to_its_standby_replica_and_fails_over_there(sites):
    a, b, d, tmp = sites
    a.deploy(str(write(tmp / "notes.yml", SPEC)), timeout=240)
    # Bad journal settings are refused, and change nothing.
    p = a.cli("-s", "notes", "dr", "enable", "--to", "b", "--journal-size", "1MiB",
              check=False)
    assert p.returncode != 0 and "journal_size" in p.stderr, p.stderr
    p = a.cli("-s", "notes", "dr", "enable", "--to", "b", "--when-full", "drop", check=False)
    assert p.returncode != 0 and "when_full" in p.stderr, p.stderr
    assert a.api("GET", "/v1/service/notes/dr")[0] == 404
    a.cli("-s", "notes", "dr", "enable", "--to", "b")
    # Enabled again to the same remote: the journal settings change, and
    # --wait returns once the standby's copy is whole and consistent.
    p = a.cli("-s", "notes", "dr", "enable", "--to", "b", "--journal-size", "64MiB",
              "--when-full", "block", "--wait", "--timeout", "150", timeout=180)
    assert "new journal settings" in p.stdout and "consistent copy" in p.stdout, p.stdout
    st = dr_status(a)
    assert st["journal"] == {"size": 64 << 20, "when_full": "block"}, st
    p = a.cli("-s", "notes", "dr", "enable", "--to", "c", check=False)
    assert p.returncode != 0, p.stdout
    # B placed a standby replica of the volume on its node with the listener.
    code, st = wait_for(lambda: (lambda r: r[0] == 200 and r[1].get("volumes") and
                                 r[1]["volumes"][0].get("node") and r)(
        b.api("GET", "/v1/service/notes/dr")), 60, what="B's standby volume")
    vol = st["volumes"][0]
    assert vol["volume"] == "notes-notes-0" and vol["node"] == "b-node-1", st
    assert "key" not in json.dumps(st), st

    def caught_up():
        s = dr_status(a)
        v = s.get("volumes") or []
        stream = v and v[0].get("stream")
        return (stream and stream["state"] == "streaming" and stream["consistent"] and
                stream["link_up"] and stream["lag_seconds"] < 3 and
                stream["journal_size"] == 64 << 20 and s)
    s = wait_for(caught_up, 120, what="the stream up and consistent")
    stream = s["volumes"][0]["stream"]
    assert s["volumes"][0]["standby"]["replica"] == vol["replica"], s
    assert stream["shipped"] > 0 and stream["journal_size"] == 64 << 20, stream
    # The second copy compared what the first sent: each byte counts once.
    assert 0 < stream["copy_same"] <= 1 << 30, stream
    # While the task writes, B's reported lag stays low.
    lags = []
    for _ in range(6):
        time.sleep(1)
        lags.append(dr_status(a)["volumes"][0]["stream"]["lag_seconds"])
    assert max(lags) < 5, lags
    ev = [json.loads(x) for x in a.cli("events", "--json").stdout.splitlines()]
    dr_ev = [(e.get("before"), e.get("after")) for e in ev
             if e.get("kind") == "dr" and e.get("object") == "notes-notes-0"]
    assert dr_ev and dr_ev[-1][1] == "streaming", dr_ev
    assert len(dr_ev) <= 4, dr_ev  # changes only, not every report
    text = a.cli("-s", "notes", "dr", "status").stdout
    assert "volume notes-notes-0" in text and "streaming" in text, text
    import urllib.request
    req = urllib.request.Request(a.url + "/metrics",
                                 headers={"Authorization": f"Bearer {a.token()}"})
    metrics = urllib.request.urlopen(req, timeout=10).read().decode()
    assert 'holdfast_dr_lag_seconds{service="notes",volume="notes-notes-0"}' in metrics
    assert 'holdfast_dr_link_up{service="notes",volume="notes-notes-0"} 1' in metrics
    # The standby's copy holds the notes A's task wrote (after a stop that
    # drains the journal, byte for byte what A's replica holds).
    xv = json.loads(a.cli("volume", "show", "notes-notes-0", "--json").stdout)
    a_data = os.path.join(str(tmp / "a-pool"), "replicas", xv["id"],
                          xv["replicas"][0]["id"], "data")
    b_data = os.path.join(str(tmp / "b-pool"), "replicas", xv["id"], vol["replica"], "data")
    a.cli("-s", "notes", "pod", "pause", "notes-0", check=False)
    a.cli("service", "remove", "notes", "--wait", "--timeout", "120", timeout=180)
    wait_for(lambda: not os.path.exists(os.path.join(a.agent_data, "attach",
                                                     "notes-notes-0", "attach.lock")) or
             subprocess.run(["fuser", "-s", os.path.join(a.agent_data, "attach",
                                                         "notes-notes-0", "attach.lock")]
                            ).returncode != 0, 60, what="A's attach process ended")
    assert filecmp.cmp(a_data, b_data, shallow=False), "B's standby differs from A's replica"
    # B's copy mounts (read-only) and holds every note in order.
    mnt = tmp / "b-mnt"
    os.makedirs(mnt)
    subprocess.run(["mount", "-o", "loop,ro", b_data, str(mnt)], check=True)
    try:
        lines = open(mnt / "notes").read().splitlines()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert len(lines) >= 10 and lines == [f"note {i + 1}" for i in range(len(lines))], lines[:20]
    failover_and_check(a, b)


def failover_and_check(a, b):
    """The primary's service is gone (its journal drained): `dr failover`
    on B refuses without --yes, then makes the standby volume the
    service's, deploys it from the configuration A sent, reports the loss
    window, and B's task sees every note A wrote; B's replica's epoch is
    now above A's, so A's old attachment could never write it again."""
    p = b.cli("-s", "notes", "dr", "failover", check=False)
    assert p.returncode != 0 and "--yes" in p.stderr, (p.stdout, p.stderr)
    p = b.cli("-s", "notes", "dr", "failover", "--yes", "--json")
    out = json.loads(p.stdout)
    assert out["role"] == "primary" and out["deployed"], out
    assert out["last_write_applied"] and out["last_write_applied"] <= time.time_ns(), out
    # The standby is gone; the service runs on B's node with the data.
    code, _ = b.api("GET", "/v1/service/notes/dr")
    assert code == 404
    code, v = b.api("GET", "/v1/external-volumes/notes-notes-0")
    assert code == 200 and v["replicas"][0]["node"] == "b-node-1", v

    def notes_on_b():
        p = b.cli("-s", "notes", "task", "exec", "notes-0-writer", "--", "cat", "data/notes",
                  check=False)
        return p.returncode == 0 and p.stdout
    text = wait_for(notes_on_b, 120, what="the service on B with its data")
    lines = text.splitlines()
    # A's notes first (1..N, as the first test saw them), then B's writer's.
    n = next((i for i in range(1, len(lines)) if lines[i] == "note 1"), len(lines))
    assert n >= 10 and lines[:n] == [f"note {i + 1}" for i in range(n)], lines[:20]
    code, v = b.api("GET", "/v1/external-volumes/notes-notes-0")
    assert v["epoch"] > 1000, v
    ev = [json.loads(x) for x in b.cli("events", "--json").stdout.splitlines()]
    assert any(e.get("kind") == "dr" and e.get("after") == "primary" and
               "failover" in json.dumps(e) for e in ev), ev


# Debian's PostgreSQL on a holdfast volume, as the snapshot test runs it.
PG_SPEC = PG_SPEC_OF.format(name="pg")


def test_postgresql_survives_the_loss_of_site_a(sites):
    """PostgreSQL on A under a commit load with DR to B: the lag B reports
    stays low; then all of cluster A is killed (-9: server, agent, the
    attach process with its journal, PostgreSQL). `dr failover` on B starts
    PostgreSQL on the standby copy, which recovers, and every transaction
    committed on A before the reported loss window is there."""
    import threading
    a, b, d, tmp = sites
    a.deploy(str(write(tmp / "pg.yml", PG_SPEC)), timeout=240)
    port = int(a.cli("-s", "pg", "task", "exec", "db-0-server", "--", "sh", "-c",
                     "echo $PG_PORT").stdout.strip())
    assert psql(port, "create table t (id int primary key, at bigint)").returncode == 0
    a.cli("-s", "pg", "dr", "enable", "--to", "b")
    committed = {}
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            i += 1
            r = psql(port, f"insert into t values ({i}, {time.time_ns()})", timeout=10)
            if r.returncode != 0:
                break
            committed[i] = time.time_ns()  # after COMMIT returned
    th = threading.Thread(target=load, daemon=True)
    th.start()

    def streaming():
        v = (dr_status_of(a, "pg").get("volumes") or [{}])[0].get("stream")
        return v and v["state"] == "streaming" and v["consistent"] and v
    wait_for(streaming, 120, what="pg's stream consistent")
    lags = []
    for _ in range(8):
        time.sleep(0.5)
        lags.append(dr_status_of(a, "pg")["volumes"][0]["stream"]["lag_seconds"])
    assert max(lags) < 3, lags
    assert len(committed) > 20, len(committed)
    # Site A is lost, all at once.
    a.kill_server()
    a.kill_agent()
    subprocess.run(["pkill", "-9", "-f", f"holdfast-volume attach {a.agent_data}"], check=False)
    a.kill_tasks()
    stop.set()
    th.join(15)
    out = json.loads(b.cli("-s", "pg", "dr", "failover", "--yes", "--json").stdout)
    assert out["deployed"] and out["last_write_applied"], out
    loss = out["last_write_applied"]

    def b_port():
        p = b.cli("-s", "pg", "task", "exec", "db-0-server", "--", "sh", "-c",
                  "echo $PG_PORT", check=False)
        return p.returncode == 0 and p.stdout.strip() and int(p.stdout.strip())
    bport = wait_for(b_port, 180, what="PostgreSQL on B")
    r = wait_for(lambda: (lambda r: r.returncode == 0 and r)(psql(bport, "select id from t")),
                 120, what="B's PostgreSQL answering")
    have = {int(x) for x in r.stdout.split()}
    must = {i for i, at in committed.items() if at < loss}
    assert must, (loss, min(committed.values()))
    print(f"\nDR-PG: committed {len(committed)}, before the loss window {len(must)}, on B {len(have)}, "
          f"loss window {(time.time_ns() - loss) / 1e9:.2f} s ago, lags {lags}")
    assert must <= have, sorted(must - have)[:20]
    # Every row B has was committed on A (none invented, none torn).
    assert have <= set(committed) | {max(committed) + 1}, sorted(have - set(committed))[:5]


def dr_status_of(a, svc):
    return json.loads(a.cli("-s", svc, "dr", "status", "--json").stdout)
