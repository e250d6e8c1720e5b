#!/usr/bin/python3
"""Disaster recovery: a volume's DR stream (issue 16), RPO and its cost.

An attach process (`holdfast-volume attach`, one local replica) with a
"dr" section journals every acknowledged write on disk and ships it over
mutually authenticated TLS to a standby replica behind `holdfast-volume
serve`'s "dr" listener (src/volume/ship.h). Four parts, every baseline
measured in the same run:

  rpo     for each RATE (MiB/s, default 10, 50, 100): one writer paced at
          RATE (1 MiB O_DIRECT pwrites straight to the volume's loop
          device, cycling over the volume, fdatasync every 100 ms) for
          SECONDS, first on an attach without "dr" (the baseline: does the
          writer keep the rate at all), then on an attach with "dr" to a
          standby served on 127.0.0.1 (loopback), after its initial sync.
          RPO is sampled two ways: status.json's dr.lag_seconds (the
          primary's view: the age of the oldest write no acknowledged MARK
          covers; the file is rewritten once a second, so ~1 sample/s),
          and, every 50 ms, the standby's own mark file (<pool>/replicas/
          <id>/<replica>/mark: the last record seq it holds durably)
          against the writer's log of its writes: the age of the oldest
          acknowledged write it does not hold. Writes map to records by
          seq (each 1 MiB write is the same k records, checked from the
          marks before and after; else by the mark's time, looser); a
          write's age counts from when its pwrite was issued (an upper
          bound by at most that write's latency).
  spike   the standby's serve inside a network namespace, reached over a
          veth pair whose sending side is shaped with `tc qdisc tbf` to
          LINK MiB/s (default 20); the writer at 3 x LINK for SPIKE seconds
          (default 10) from idle, with a journal of JOURNAL MiB (default
          1024; when_full "block"); reported: journal_bytes and lag at
          their peak, blocked writes, the writer's rate and its slowest
          write, the time from the spike's end until the standby holds
          every write, and the bytes shipped per second meanwhile (the
          link's real rate).
  commit  a database log's commit (4 KiB append + fdatasync, one writer,
          COMMIT_SECONDS) on ext4 on the volume's device, the attach
          without "dr" and with it (to the loopback standby, after its
          initial sync), alternating, REPEAT times each; each run on a
          freshly formatted replica (and a new journal). --commit-variants
          adds diagnostic runs in the same rotation (part_commit).

  group   for each RATE: two volumes, each with its own attach process
          and stream, each written at RATE / 2 as in rpo, to one standby
          serving both: first as two volumes on their own, then as a
          consistency group (the standby spools each volume's writes and
          applies them up to the volumes' common mark, src/volume/spool.h).
          Reported: the writers' rate, the bytes the group held back (the
          standby's status, each second) and the standby's CPU per MiB.

Everything lives in a temporary directory on hfbench's data file system;
every process, mount, loop device, network namespace and veth it makes is
removed at the end, also on failure or SIGTERM.

    /usr/bin/python3 bench/dr.py [--rates 10,50,100] [--seconds 20]
        [--link 20] [--spike 10] [--journal 1024] [--commit-seconds 10]
        [--repeat 3] [--size-mib 1024] [--parts rpo,spike,group,commit]
        [--commit-variants LIST] [--out FILE]
"""
import argparse
import bisect
import json
import mmap
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hfbench as hb  # noqa: E402

MiB = 1 << 20
VID = "bench"
KEY = "6b" * 32


# ---------------------------------------------------------------- cleanup
class Env:
    """Everything the bench makes, removed by cleanup() in reverse."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="hfbench-dr-", dir=hb.data_root())
        self.procs = []
        self.mounts = []
        self.netns = None
        self.veth = None
        self.shm = None
        self.cleaned = False

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], check=False, stderr=subprocess.DEVNULL)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for dev in loops_under(self.work):
            subprocess.run(["losetup", "-d", dev], check=False)
        if self.veth:
            subprocess.run(["ip", "link", "del", self.veth], check=False,
                           stderr=subprocess.DEVNULL)
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], check=False)
        shutil.rmtree(self.work, ignore_errors=True)
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)


ENV = None


def _on_signal(signum, frame):
    if ENV:
        ENV.cleanup()
    hb._on_signal(signum, frame)  # hfbench's: its file system, then exit


def loops_under(d):
    out = []
    for name in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{name}/loop/backing_file") as f:
                b = f.read().strip()
        except OSError:
            continue
        if b.startswith(d):
            out.append("/dev/" + name)
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d, ips):
    """caB signs the standby's server certificate (for ips); caA signs the
    primary's client certificate, which the standby trusts."""
    for ca in ("caA", "caB"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                f"/CN=bench {ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips) + "\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, cn, ca, ext in (("b-server", ips[0], "caB", "server.ext"),
                              ("a-client", "site-a", "caA", "client.ext")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-CAcreateserial", "-days", "2", "-extfile", ext,
                "-out", f"{name}.pem", cwd=d)
        os.chmod(os.path.join(d, f"{name}.key"), 0o600)


# ---------------------------------------------------------------- processes
def wait_state(path, what, timeout=60, proc=None):
    def ready():
        st = read_json(path)
        if st.get("state") == "failed":
            raise hb.BenchError(f"{what} failed: {st.get('message')}")
        if proc is not None and proc.poll() is not None:
            raise hb.BenchError(f"{what} exited {proc.returncode}: {st}")
        return st if st.get("state") == "ready" else None
    return hb.wait_for(ready, timeout, what=f"{what} ready")


def stop(p, timeout=60):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    return p.returncode


class Standby:
    """Site B: `holdfast-volume serve` with a standby replica and its DR
    listener; in netns when given (then at that address)."""

    def __init__(self, env, vbin, pki, name, size, host="127.0.0.1", netns=None, base=None,
                 vids=(VID,), group=None):
        base = base or env.work
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.pool = os.path.join(base, name + "-pool")
        self.replica = "rb"
        vols = [{"id": v, "replica": self.replica, "size": size, "key": KEY,
                 "name": f"bench-{i}", "standby": True} for i, v in enumerate(vids)]
        for v in vols:
            if group:
                v["group"] = group
        cfg = {"pool": self.pool, "listen": f"{host}:0",
               "volumes": vols,
               "dr": {"listen": f"{host}:0", "tls_cert": f"{pki}/b-server.pem",
                      "tls_key": f"{pki}/b-server.key", "tls_ca": f"{pki}/caA.pem"}}
        with open(os.path.join(self.dir, "serve.json"), "w") as f:
            json.dump(cfg, f)
        cmd = [vbin, "serve", self.dir]
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.log = open(os.path.join(env.work, name + ".log"), "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        env.procs.append(self.p)
        st = wait_state(os.path.join(self.dir, "status.json"), f"serve {name}", 30, self.p)
        self.host, self.port = host, st["dr_port"]
        self.mark_path = os.path.join(self.pool, "replicas", VID, self.replica, "mark")


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_T = _crc32c_table()


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = CRC_T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_mark(path):
    """The standby's mark (replica.h): (seq, time_ns), or None. 24 bytes
    (seq, time, flags, CRC-32C of the 20), or 20 (seq, time, CRC of 16)."""
    try:
        with open(path, "rb") as f:
            b = f.read(24)
    except OSError:
        return None
    if len(b) == 24:
        ok = struct.unpack_from("<I", b, 20)[0] == crc32c(b[:20])
    elif len(b) == 20:
        ok = struct.unpack_from("<I", b, 16)[0] == crc32c(b[:16])
    else:
        return None
    seq, t = struct.unpack_from("<QQ", b)
    return (seq, t) if ok else None


class Attach:
    """Site A: `holdfast-volume attach` of the volume, with or without DR."""

    def __init__(self, env, vbin, pki, name, size, standby=None, fmt=False,
                 journal_size=None, replica=None, prewrite_journal=False, journal_dir=None,
                 vid=VID):
        self.env = env
        self.dir = os.path.join(env.work, name)
        os.makedirs(self.dir)
        self.replica = replica or os.path.join(env.work, name + "-replica")
        cfg = {"volume": "bench-0", "id": vid, "epoch": 1, "size": size,
               "replica": self.replica, "format": fmt, "node": "na", "key": KEY}
        if fmt:
            cfg["fs"] = "ext4"
        if standby:
            cfg["dr"] = {"address": standby.host, "port": standby.port,
                         "replica": standby.replica, "tls_ca": f"{pki}/caB.pem",
                         "tls_cert": f"{pki}/a-client.pem",
                         "tls_key": f"{pki}/a-client.key",
                         "journal": os.path.join(journal_dir or env.work, name + "-journal"),
                         "drain_ms": 1000}
            if journal_size:
                cfg["dr"]["journal_size"] = journal_size
            if prewrite_journal:
                # Its blocks allocated, as after the ring's first wrap.
                with open(cfg["dr"]["journal"], "wb") as f:
                    z = bytes(MiB)
                    for _ in range((journal_size or 256 * MiB) // MiB):
                        f.write(z)
                    os.fsync(f.fileno())
        self.cfg = cfg
        with open(os.path.join(self.dir, "attach.json"), "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(env.work, name + ".log"), "w")
        self.p = subprocess.Popen([vbin, "attach", self.dir], stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        env.procs.append(self.p)
        self.status_path = os.path.join(self.dir, "status.json")
        st = wait_state(self.status_path, f"attach {name}", 60, self.p)
        self.dev = st["device"]
        self.mnt = None

    def dr(self):
        return read_json(self.status_path).get("dr") or {}

    def caught_up(self, timeout=120):
        def ok():
            if self.p.poll() is not None:
                raise hb.BenchError(f"attach exited {self.p.returncode}")
            s = self.dr()
            return (s.get("state") == "streaming" and s.get("lag_bytes") == 0
                    and s.get("consistent") and s)
        return hb.wait_for(ok, timeout, interval=0.1, what="the DR stream caught up")

    def mount(self):
        self.mnt = self.dir + ".mnt"
        os.makedirs(self.mnt)
        subprocess.run(["mount", "-o", "noatime", self.dev, self.mnt], check=True)
        self.env.mounts.append(self.mnt)
        return self.mnt

    def close(self):
        if self.mnt:
            subprocess.run(["umount", self.mnt], check=True)
            self.env.mounts.remove(self.mnt)
            self.mnt = None
        rc = stop(self.p, 30)
        self.log.close()
        if rc == -signal.SIGKILL:
            # Not this bench's doing: another attach process (the test
            # suite's, say) started while our file system was mounted
            # keeps a copy of the mount in its private namespace, and the
            # detach waits for it (reported in docs/BENCHMARKS.md).
            hb.log(f"dr: warning: {self.dir} did not detach in 30 s: "
                   + str(read_json(self.status_path).get("message")))
        elif rc != 0:
            raise hb.BenchError(f"attach {self.dir} exited {rc}: "
                                + open(self.log.name).read()[-2000:])
        for f in (self.replica, self.cfg.get("dr", {}).get("journal")):
            if f and os.path.exists(f):
                os.unlink(f)


# ---------------------------------------------------------------- the load
class Sampler(threading.Thread):
    """Every 50 ms: the standby's mark file; each new status.json's dr."""

    def __init__(self, attach, standby, period=0.05):
        super().__init__(daemon=True)
        self.attach, self.standby, self.period = attach, standby, period
        self.marks = []   # (t_ns, mark_seq, mark_time_ns)
        self.status = []  # (t_ns, dr object)
        self.halt = threading.Event()
        self.start()

    def run(self):
        last = None
        while not self.halt.is_set():
            now = time.time_ns()
            m = read_mark(self.standby.mark_path)
            if m:
                self.marks.append((now, m[0], m[1]))
            try:
                st = os.stat(self.attach.status_path)
                key = (st.st_ino, st.st_mtime_ns)
            except OSError:
                key = None
            if key and key != last:
                dr = self.attach.dr()
                if dr:
                    last = key
                    self.status.append((now, dr))
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join()


def paced_write(dev, rate, seconds, size, start_mib=0, sync_s=0.1):
    """One writer, 1 MiB O_DIRECT pwrites at rate MiB/s (each due at
    t0 + i / rate; late ones go at once), fdatasync every sync_s."""
    buf = mmap.mmap(-1, MiB)
    buf.write(os.urandom(MiB))
    nblk = size // MiB
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    writes = []   # (t_start_ns, t_ack_ns)
    flushes = []
    behind = 0.0
    try:
        t0 = time.monotonic()
        next_sync = t0 + sync_s
        i = 0
        while True:
            due = t0 + i / rate
            if due >= t0 + seconds:
                break
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                behind = max(behind, now - due)
            buf[:8] = struct.pack("<Q", i)
            ts = time.time_ns()
            os.pwrite(fd, buf, ((start_mib + i) % nblk) * MiB)
            writes.append((ts, time.time_ns()))
            i += 1
            if time.monotonic() >= next_sync:
                f0 = time.monotonic()
                os.fdatasync(fd)
                flushes.append(time.monotonic() - f0)
                next_sync = time.monotonic() + sync_s
        os.fdatasync(fd)
        elapsed = time.monotonic() - t0
    finally:
        os.close(fd)
        buf.close()
    lat = [(a - s) / 1e6 for s, a in writes]
    t0n = writes[0][0] if writes else 0
    return {"slow_writes": [[round((s - t0n) / 1e9, 3), round((a - s) / 1e6, 1)]
                            for s, a in writes if a - s > 50e6][:20],
            "target_mib_s": rate, "mib": len(writes), "seconds": elapsed,
            "mib_s": len(writes) / elapsed, "kept_rate": len(writes) / elapsed >= 0.97 * rate,
            "max_behind_s": behind,
            "write_ms": {"p50": statistics.median(lat), "p99": hb.pct(lat, 99),
                         "max": max(lat)},
            "fdatasync_ms": ({"n": len(flushes), "p50": 1e3 * statistics.median(flushes),
                              "max": 1e3 * max(flushes)} if flushes else None),
            "writes": writes}


def with_cpu(pids, fn, *args):
    """fn(*args), with the CPU seconds each of pids used meanwhile (as
    "cpu_s": {name: s}) and the machine's busy fraction ("busy")."""
    def busy():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], sum(v)
    c0 = {k: hb.cpu_seconds(p) for k, p in pids.items()}
    b0 = busy()
    r = fn(*args)
    b1 = busy()
    r["cpu_s"] = {k: round(hb.cpu_seconds(p) - c0[k], 2) for k, p in pids.items()}
    r["busy"] = round((b1[0] - b0[0]) / max(1, b1[1] - b0[1]), 3)
    return r


def seq_model(s0, s1, n):
    """The writer's writes as journal records: the standby's mark seq s0
    just before the first write, s1 once the last was applied; when the
    n writes made exactly k records each (a 1 MiB write is split into
    the same FUSE writes every time), write i is records s0 + k*i + 1 to
    s0 + k*(i + 1). Returns (s0, k) or None."""
    if s0 is None or s1 is None or n <= 0 or s1 <= s0 or (s1 - s0) % n:
        return None
    return s0, (s1 - s0) // n


def rpo_series(marks, writes, model):
    """For each mark sample (t, seq, time): the age (s) at t of the oldest
    write acknowledged by t that the standby's mark does not cover, 0 if
    none; counted from when its pwrite was issued (its record's time is
    between that and the answer: an upper bound by at most one write's
    latency). Which writes a mark covers: by seq with model (seq_model),
    else by time (a write counts as covered once the mark's time is
    after its answer: a looser upper bound, by up to the time to the
    next mark)."""
    acks = [a for _, a in writes]
    out = []
    for t, seq, m in marks:
        if model:
            s0, k = model
            j = 0 if seq < s0 or seq == 2**64 - 1 else min(len(writes), (seq - s0) // k)
        else:
            j = bisect.bisect_right(acks, m)  # first write acknowledged after m
        if j < len(acks) and acks[j] <= t:
            out.append((t, (t - writes[j][0]) / 1e9))
        else:
            out.append((t, 0.0))
    return out


def stats(v):
    if not v:
        return None
    return {"n": len(v), "p50": statistics.median(v), "p99": hb.pct(v, 99), "max": max(v)}


def covered_at(marks, writes, model):
    """When the standby's mark first covered the last write."""
    for t, seq, m in marks:
        if model:
            if seq != 2**64 - 1 and seq >= model[0] + model[1] * len(writes):
                return t
        elif m >= writes[-1][1]:
            return t
    return None


def mark_seq(sb):
    m = read_mark(sb.mark_path)
    return m[0] if m else None


# ---------------------------------------------------------------- parts
def part_rpo(env, vbin, pki, a, size):
    sb = Standby(env, vbin, pki, "siteb", size)
    env.loopback_standby = sb
    out = []
    start = 0
    for rate in a.rates:
        # The baseline: the same writer on the attach without "dr".
        base = Attach(env, vbin, pki, f"base{rate}", size)
        try:
            b = with_cpu({"attach": base.p.pid}, paced_write, base.dev, rate, a.seconds,
                         size)
        finally:
            base.close()
        b.pop("writes")
        dr = Attach(env, vbin, pki, f"dr{rate}", size, standby=sb)
        try:
            t_sync = time.monotonic()
            dr.caught_up()
            sync_s = time.monotonic() - t_sync
            smp = Sampler(dr, sb)
            seq0 = mark_seq(sb)
            w = with_cpu({"attach": dr.p.pid, "serve": sb.p.pid}, paced_write, dr.dev,
                         rate, a.seconds, size, start)
            t_end = time.monotonic()
            s_end = dr.caught_up(120)
            drained_s = time.monotonic() - t_end
            time.sleep(0.3)
            smp.stop()
            model = seq_model(seq0, mark_seq(sb), w["mib"])
        finally:
            dr.close()
        start += w["mib"]
        writes = w.pop("writes")
        t_first, t_last = writes[0][0], writes[-1][1]
        # Steady state: from 1 s after the first write to the last one.
        lo = t_first + 10**9
        fine = [r for t, r in rpo_series(smp.marks, writes, model) if lo <= t <= t_last]
        coarse = [s["lag_seconds"] for t, s in smp.status if lo <= t <= t_last]
        cov = covered_at(smp.marks, writes, model)
        row = {"rate_mib_s": rate, "baseline": b, "dr": w, "initial_sync_s": sync_s,
               "rpo_by": f"seq ({model[1]} records a write)" if model else "time",
               "rpo_fine_s": stats(fine), "lag_status_s": stats(coarse),
               "status_samples": [{"t": (t - t_first) / 1e9, "lag_seconds": s["lag_seconds"],
                                   "journal_bytes": s["journal_bytes"],
                                   "lag_bytes": s["lag_bytes"], "blocked": s["blocked"],
                                   "state": s["state"]} for t, s in smp.status],
               "blocked": s_end["blocked"], "overflows": s_end["overflows"],
               "journal_peak": max((s["journal_bytes"] for _, s in smp.status), default=0),
               "last_write_covered_s": (cov - t_last) / 1e9 if cov else None,
               "caught_up_after_s": drained_s}
        out.append(row)
        f, c = row["rpo_fine_s"] or {}, row["lag_status_s"] or {}
        hb.log(f"dr rpo {rate} MiB/s: baseline {b['mib_s']:.1f} MiB/s (write p99 "
               f"{b['write_ms']['p99']:.1f} ms), with DR {w['mib_s']:.1f} MiB/s (write p99 "
               f"{w['write_ms']['p99']:.1f} ms, max {w['write_ms']['max']:.0f} ms); RPO from the "
               f"standby's mark p50 {f.get('p50', 0):.3f} p99 {f.get('p99', 0):.3f} max "
               f"{f.get('max', 0):.3f} s ({f.get('n')} samples); status lag_seconds p50 "
               f"{c.get('p50', 0):.3f} p99 {c.get('p99', 0):.3f} max {c.get('max', 0):.3f} s "
               f"({c.get('n')} samples); journal peak {row['journal_peak'] / MiB:.0f} MiB, "
               f"blocked {row['blocked']}; initial sync {sync_s:.1f} s; the standby held the "
               f"last write {row['last_write_covered_s']} s after it (RPO by {row['rpo_by']})")
    return out


def part_group(env, vbin, pki, a, size):
    """Two volumes, each with its own attach process and stream, written
    at half the rate each, to one standby: as a consistency group (the
    standby spools and applies up to the volumes' common mark) and, in
    the same run, as two volumes on their own. Reported: the RPO from
    each standby's mark, the bytes the group held back (its spools, from
    the standby's status each second), and the standby's CPU per MiB."""
    out = []
    vids = ("vol-g1", "vol-g2")
    for rate in a.rates:
        row = {"rate_mib_s": rate}
        for kind in ("single", "group"):
            sb = Standby(env, vbin, pki, f"sb-{kind}{rate}", size, vids=vids,
                         group="g-bench" if kind == "group" else None)
            att = [Attach(env, vbin, pki, f"{kind}{rate}-{i}", size, standby=sb, vid=v)
                   for i, v in enumerate(vids)]
            try:
                for x in att:
                    x.caught_up()
                spooled, stop_ev = [], threading.Event()

                def sample():
                    last = None
                    while not stop_ev.is_set():
                        st = read_json(os.path.join(sb.dir, "status.json"))
                        g = st.get("generation"), json.dumps(st.get("marks"))
                        if g != last and st.get("marks"):
                            last = g
                            spooled.append(sum(m.get("spooled", 0) for m in st["marks"]))
                        stop_ev.wait(0.1)
                th = threading.Thread(target=sample, daemon=True)
                th.start()
                res = [None, None]

                def run(i):
                    res[i] = paced_write(att[i].dev, rate / 2, a.seconds, size)
                c0 = hb.cpu_seconds(sb.p.pid)
                ws = [threading.Thread(target=run, args=(i,)) for i in range(2)]
                for w in ws:
                    w.start()
                for w in ws:
                    w.join()
                for x in att:
                    x.caught_up(120)
                serve_cpu = hb.cpu_seconds(sb.p.pid) - c0
                stop_ev.set()
                th.join()
                mib = sum(r["mib"] for r in res)
                row[kind] = {"mib_s": sum(r["mib_s"] for r in res),
                             "write_ms_p99": max(r["write_ms"]["p99"] for r in res),
                             "serve_cpu_ms_per_mib": round(1000 * serve_cpu / max(1, mib), 2),
                             "spooled_bytes": stats(spooled) if spooled else None}
            finally:
                for x in att:
                    x.close()
                stop(sb.p, 30)
        out.append(row)
        g, s1 = row["group"], row["single"]
        sp = g["spooled_bytes"] or {}
        hb.log(f"dr group {rate} MiB/s over two volumes: writers {s1['mib_s']:.1f} / "
               f"{g['mib_s']:.1f} MiB/s (no group / group; write p99 {s1['write_ms_p99']:.1f} / "
               f"{g['write_ms_p99']:.1f} ms); standby CPU {s1['serve_cpu_ms_per_mib']} / "
               f"{g['serve_cpu_ms_per_mib']} ms per MiB; held back in the group's spools "
               f"p50 {sp.get('p50', 0) / MiB:.1f} p99 {sp.get('p99', 0) / MiB:.1f} max "
               f"{sp.get('max', 0) / MiB:.1f} MiB ({sp.get('n')} samples)")
    return out


def netns_link(env, rate_mib):
    """A network namespace for site B, a veth to it, the sending side
    shaped with tbf at rate_mib MiB/s. Returns B's address."""
    tag = os.getpid() % 100000
    env.netns = f"hfdr{tag}"
    env.veth = f"hfdr{tag}a"
    peer = f"hfdr{tag}b"
    net = f"10.{200 + tag % 50}.{tag % 250}"
    run = lambda *c: subprocess.run(list(c), check=True)  # noqa: E731
    run("ip", "netns", "add", env.netns)
    run("ip", "link", "add", env.veth, "type", "veth", "peer", "name", peer)
    run("ip", "link", "set", peer, "netns", env.netns)
    run("ip", "addr", "add", f"{net}.1/30", "dev", env.veth)
    run("ip", "link", "set", env.veth, "up")
    run("ip", "-n", env.netns, "addr", "add", f"{net}.2/30", "dev", peer)
    run("ip", "-n", env.netns, "link", "set", peer, "up")
    run("ip", "-n", env.netns, "link", "set", "lo", "up")
    bits = rate_mib * MiB * 8
    # burst: 1 MiB (above rate/HZ), queue: 50 ms of the rate.
    run("tc", "qdisc", "add", "dev", env.veth, "root", "tbf", "rate", f"{bits}bit",
        "burst", "1mb", "latency", "50ms")
    return f"{net}.2", subprocess.run(["tc", "qdisc", "show", "dev", env.veth],
                                      capture_output=True, text=True).stdout.strip()


def part_spike(env, vbin, pki, a, size, ip, qdisc):
    sb = Standby(env, vbin, pki, "siteb-wan", size, host=ip, netns=env.netns)
    rate = 3 * a.link
    dr = Attach(env, vbin, pki, "spike", size, standby=sb, journal_size=a.journal * MiB)
    try:
        t = time.monotonic()
        dr.caught_up(180)
        sync_s = time.monotonic() - t
        s0 = dr.dr()
        smp = Sampler(dr, sb)
        time.sleep(2)
        seq0 = mark_seq(sb)
        w = with_cpu({"attach": dr.p.pid, "serve": sb.p.pid}, paced_write, dr.dev, rate,
                     a.spike, size)
        t_end = time.monotonic()
        s_end = dr.caught_up(300)
        drained_s = time.monotonic() - t_end
        time.sleep(0.5)
        smp.stop()
        model = seq_model(seq0, mark_seq(sb), w["mib"])
    finally:
        dr.close()
    writes = w.pop("writes")
    t_first = writes[0][0]
    samples = [{"t": (t - t_first) / 1e9, "journal_bytes": s["journal_bytes"],
                "lag_bytes": s["lag_bytes"], "lag_seconds": s["lag_seconds"],
                "shipped": s["shipped"], "blocked": s["blocked"], "state": s["state"],
                "link_up": s["link_up"]} for t, s in smp.status]
    fine = [r for _, r in rpo_series(smp.marks, writes, model)]
    cov = covered_at(smp.marks, writes, model)
    # The link's real rate: bytes shipped per second while the backlog drained.
    during = [x for x in samples if x["t"] >= 1 and x["journal_bytes"] > 0]
    link = None
    if len(during) >= 2:
        link = (during[-1]["shipped"] - during[0]["shipped"]) / (
            during[-1]["t"] - during[0]["t"]) / MiB
    res = {"link_mib_s": a.link, "qdisc": qdisc, "spike_mib_s": rate, "spike_s": a.spike,
           "journal_size": a.journal * MiB, "initial_sync_s": sync_s, "writer": w,
           "journal_peak": max(x["journal_bytes"] for x in samples),
           "lag_bytes_peak": max(x["lag_bytes"] for x in samples),
           "lag_status_peak_s": max(x["lag_seconds"] for x in samples),
           "rpo_fine": stats(fine),
           "blocked": s_end["blocked"] - s0.get("blocked", 0),
           "overflows": s_end["overflows"] - s0.get("overflows", 0),
           "shipped_link_mib_s": link,
           "last_write_covered_s": (cov - writes[-1][1]) / 1e9 if cov else None,
           "rpo_by": f"seq ({model[1]} records a write)" if model else "time",
           "caught_up_after_s": drained_s, "samples": samples}
    hb.log(f"dr spike: {rate} MiB/s for {a.spike} s over a {a.link} MiB/s link: writer "
           f"{w['mib_s']:.1f} MiB/s (kept: {w['kept_rate']}, slowest write "
           f"{w['write_ms']['max']:.0f} ms), blocked {res['blocked']}, overflows "
           f"{res['overflows']}; journal peak {res['journal_peak'] / MiB:.0f} MiB of "
           f"{a.journal}; lag peak {res['lag_status_peak_s']:.1f} s (status), "
           f"{res['rpo_fine']['max']:.1f} s (standby's mark); the standby held the last "
           f"write {res['last_write_covered_s']} s after it (by {res['rpo_by']}), status "
           f"caught up after "
           f"{drained_s:.1f} s; shipped {link and round(link, 1)} MiB/s while draining")
    return res


def commits(mnt, seconds):
    """Commits/s of one writer appending 4 KiB + fdatasync under mnt."""
    block = os.urandom(4096)
    fd = os.open(os.path.join(mnt, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        n = 0
        t0 = time.monotonic()
        end = t0 + seconds
        while time.monotonic() < end:
            os.write(fd, block)
            os.fdatasync(fd)
            n += 1
        return n / (time.monotonic() - t0)
    finally:
        os.close(fd)


COMMIT_VARIANTS = ("b-tmpfs", "journal-prewritten", "b-tmpfs+journal-prewritten",
                   "b-tmpfs+journal-tmpfs")


def part_commit(env, vbin, pki, a, size):
    """Alternating: without DR, with DR, then each variant (diagnostics,
    not the product as shipped): "b-tmpfs", the standby's pool on tmpfs
    (site B's fdatasyncs off this machine's disk, as on a real second
    site); "journal-prewritten", the journal file written whole before
    the attach (its blocks allocated, as once the ring wrapped);
    "journal-tmpfs", the journal file on tmpfs (its fdatasync free: what
    is left is the stream's CPU and the write path)."""
    sb = env.loopback_standby
    sb_tmpfs = None
    if any("tmpfs" in v for v in a.commit_variants):
        env.shm = tempfile.mkdtemp(prefix="hfbench-dr-", dir="/dev/shm")
    if any("b-tmpfs" in v for v in a.commit_variants):
        sb_tmpfs = Standby(env, vbin, pki, "siteb-tmpfs", size, base=env.shm)
    kinds = ["plain", "dr"] + [f"dr:{v}" for v in a.commit_variants]
    runs = []
    for i in range(a.repeat):
        row = {}
        for kind in kinds:
            at = Attach(env, vbin, pki, f"c{kind.replace(':', '-').replace('+', '-')}{i}",
                        size, fmt=True,
                        standby=None if kind == "plain" else
                        sb_tmpfs if "b-tmpfs" in kind else sb,
                        prewrite_journal="journal-prewritten" in kind,
                        journal_dir=env.shm if "journal-tmpfs" in kind else None)
            try:
                if kind != "plain":
                    at.caught_up()
                mnt = at.mount()
                pids = {"attach": at.p.pid}
                if kind != "plain":
                    pids["serve"] = (sb_tmpfs if "b-tmpfs" in kind else sb).p.pid
                c = with_cpu(pids, lambda: {"n": commits(mnt, a.commit_seconds)})
                row[kind] = c["n"]
                # CPU seconds per 1000 commits, and the machine's busy share.
                row[f"cpu:{kind}"] = {k: round(1000 * v / (c["n"] * a.commit_seconds), 3)
                                      for k, v in c["cpu_s"].items()}
                row[f"busy:{kind}"] = c["busy"]
                if kind == "dr":
                    s = at.dr()
                    row["dr_status"] = {k: s.get(k) for k in
                                        ("lag_seconds", "journal_bytes", "blocked", "state")}
            finally:
                at.close()
        for k in kinds[1:]:
            row[f"ratio:{k}"] = row[k] / row["plain"]
        row["ratio"] = row["dr"] / row["plain"]
        runs.append(row)
        hb.log(f"dr commit run {i + 1}/{a.repeat}: without DR {row['plain']:.0f} commits/s "
               f"(attach CPU {row['cpu:plain']['attach']:.2f} s per 1000), with DR: attach "
               f"{row['cpu:dr']['attach']:.2f} s, serve {row['cpu:dr']['serve']:.2f} s per 1000; "
               + ", ".join(f"{'with DR' if k == 'dr' else k} {row[k]:.0f} = "
                           f"{100 * row[k] / row['plain']:.0f}%" for k in kinds[1:]))
    keys = kinds + ["ratio"] + [f"ratio:{k}" for k in kinds[1:]]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    hb.log(f"dr commit: median without DR {med['plain']:.0f}, with DR {med['dr']:.0f} "
           f"commits/s, ratio of medians {100 * med['dr'] / med['plain']:.0f}%, median ratio "
           f"{100 * med['ratio']:.0f}%"
           + "".join(f"; {k} median ratio {100 * med['ratio:' + k]:.0f}%" for k in kinds[2:]))
    return {"runs": runs, "median": med, "seconds": a.commit_seconds}


def main():
    global ENV
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="10,50,100")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--link", type=int, default=20)
    ap.add_argument("--spike", type=float, default=10)
    ap.add_argument("--journal", type=int, default=1024, help="MiB, for the spike")
    ap.add_argument("--commit-seconds", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--parts", default="rpo,spike,group,commit")
    ap.add_argument("--commit-variants", default="",
                    help="comma-separated diagnostics among " + ", ".join(COMMIT_VARIANTS))
    ap.add_argument("--out")
    a = ap.parse_args()
    a.rates = [int(x) for x in a.rates.split(",")]
    parts = a.parts.split(",")
    a.commit_variants = [v for v in a.commit_variants.split(",") if v]
    for v in a.commit_variants:
        if v not in COMMIT_VARIANTS:
            raise SystemExit(f"dr: unknown commit variant {v!r}")
    size = a.size_mib * MiB
    vbin0 = os.path.join(os.path.dirname(hb.BIN), "holdfast-volume")
    if not os.access(vbin0, os.X_OK):
        raise SystemExit(f"dr: {vbin0} is missing (make build/holdfast-volume)")
    for tool in ("ip", "tc", "openssl", "mkfs.ext4"):
        if not shutil.which(tool):
            raise SystemExit(f"dr: {tool} is missing (ip and tc: apt-get install iproute2)")
    ENV = Env()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    env = ENV
    t_all = time.monotonic()
    result = {"machine": hb.machine(), "size": size, "args": vars(a)}
    try:
        # A private copy: a concurrent relink must not break a start.
        vbin = os.path.join(env.work, "holdfast-volume")
        shutil.copy2(vbin0, vbin)
        pki = os.path.join(env.work, "pki")
        os.makedirs(pki)
        ip, qdisc = (netns_link(env, a.link) if "spike" in parts else ("127.0.0.1", None))
        make_pki(pki, ["127.0.0.1", ip] if ip != "127.0.0.1" else ["127.0.0.1"])
        env.loopback_standby = None
        if "rpo" in parts:
            result["rpo"] = part_rpo(env, vbin, pki, a, size)
        if "spike" in parts:
            result["spike"] = part_spike(env, vbin, pki, a, size, ip, qdisc)
        if "group" in parts:
            result["group"] = part_group(env, vbin, pki, a, size)
        if "commit" in parts:
            if env.loopback_standby is None:
                env.loopback_standby = Standby(env, vbin, pki, "siteb", size)
            result["commit"] = part_commit(env, vbin, pki, a, size)
    finally:
        env.cleanup()
    result["seconds"] = time.monotonic() - t_all
    hb.write_result(a.out, result)
    hb.log(f"dr: done in {result['seconds']:.0f} s")
    summary = {}
    for r in result.get("rpo", []):
        summary[f"rpo_p99_{r['rate_mib_s']}"] = (r["rpo_fine_s"] or {}).get("p99")
    if "commit" in result:
        summary["commit_ratio_median"] = result["commit"]["median"]["ratio"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
