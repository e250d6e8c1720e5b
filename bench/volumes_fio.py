#!/usr/bin/python3
"""Replicated volumes on network-namespace hosts: fio inside the task's file
system against ext4-on-loop and GlusterFS, and failover after a node kill.

Two modes, each on hosts made by tests/cluster/netns.py (a switch, one
network and UTS namespace per host, loopback only):

  fio       three storage nodes (agents with --storage pools) and a server;
            a service whose pod has an external volume `driver-name:
            holdfast`, `driver-options: size=4G;repl=2`, and a task that
            sleeps. fio runs in the task's mount namespace (nsenter -m into
            the task's process, working directory the task's sandbox) on
            the volume's container-path: the ext4 the task sees, over the
            loop device of holdfast-volume attach, every write going to
            both replicas. The same fio jobs, in the same run and
            interleaved round by round, on
              local    ext4 on a loop device (direct I/O) over a sparse file
                       on the machine's file system, in a mount namespace
                       of its own (the baseline: a node's local disk);
              gluster  a GlusterFS `replica 3` volume (Debian's
                       glusterfs-server): glusterd on three hosts of their
                       own, each in a private mount namespace with its own
                       /var/lib/glusterd, /var/log/glusterfs and /run, a
                       brick per host in its directory (`force`: bricks on
                       the root file system); mounted with the FUSE client
                       on a fourth host, in a mount namespace of its own.
            Jobs (one file per job, deleted after it):
              commits    4 KiB sequential writes, fsync after each
                         (--rw=write --bs=4k --fsync=1 --ioengine=sync):
                         IOPS = commits/s
              randwrite  4 KiB random writes, QD1, O_DIRECT, no fsync
                         (--rw=randwrite --bs=4k --direct=1 --ioengine=psync)
              randdsync  the same with O_DSYNC (--sync=dsync): each write
                         durable before the next (see docs/BENCHMARKS.md:
                         without it, a write through FUSE may end in the
                         replica's page cache while loop's O_DIRECT write
                         reaches the disk)
              seq        1 MiB sequential writes, O_DIRECT, 1 GiB, fsync at
                         the end (--rw=write --bs=1M --direct=1
                         --end_fsync=1): MiB/s over the job's wall time
                         including the final fsync
            Reported per round and as medians; holdfast and gluster as
            ratios of local, and holdfast's commits/s over gluster's.
            --tmpfs SIZE puts everything (pools, the local image, bricks)
            on a tmpfs of SIZE: no flush costs anything, so the figures
            are the software paths alone (on one disk, two replicas'
            fdatasyncs queue on the same device).

  failover  the same cluster with --node-timeout 5; the pod's volume
            (repl=2) is filled with GB of incompressible data (fio, 1 MiB
            O_DIRECT writes, fsync); then TRIALS times: the host running the
            task is killed (SIGKILL to every process in its namespace:
            agent, shims, task, attach and replica server) and its link
            pulled; measured from the kill until the API shows the task
            RUNNING on another node, and until the API shows the volume
            attached elsewhere (the server's decision, stored before the
            agent is told); the task's own start time (the name of a file
            it creates when it starts: `date +%s%N`) is recorded too, and
            the new copy must see the whole data file. Then the host is brought back (link
            up, agent restarted) and the bench waits until both replicas
            are in sync again (a resync of the killed node's replica;
            its duration is reported) before the next trial.

  resync    the same cluster; the volume is filled with GB; then, TRIALS
            times each, the other replica's host is cut off (bitmap: its
            link down, its processes live) or killed and its pool's copy
            removed (whole: it comes back empty, a new data generation),
            the task overwrites MISSED MiB (dd, fsync), the host comes back,
            and the bench waits until both replicas are in sync: the time
            from the heal, and the copy's bytes planned and sent (the
            holdfast_volume_resync_*_bytes_total counters), against what
            /metrics said the replica missed before the heal.

    bench/volumes_fio.py fio [--rounds 3] [--seconds 10] [--tmpfs 12G] [--out FILE]
    bench/volumes_fio.py failover --gb 1 [--trials 10] [--out FILE]
    bench/volumes_fio.py resync --gb 1 [--missed-mb 64] [--trials 3] [--out FILE]

Needs root, HOLDFAST_BIN (a release build; holdfast-shim and
holdfast-volume next to it), and fio / glusterfs-server / glusterfs-client
(installed with apt-get when missing). Cleans up every namespace, process,
mount and loop device it made, also when interrupted.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
import netns  # noqa: E402
from netns import Holdfast, Net, wait_for, write  # noqa: E402

GIB = 1 << 30
NODE_TIMEOUT = 5


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def load():
    return open("/proc/loadavg").read().split()[:3]


def ensure_packages(pkgs):
    """apt-get installs the Debian packages of pkgs ({command: package})
    whose command is missing."""
    missing = [p for c, p in pkgs.items() if shutil.which(c) is None]
    if missing:
        log("installing", " ".join(missing))
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                       stdout=subprocess.DEVNULL)


# ------------------------------------------------------------------ fio

def fio_jobs(seconds):
    common = ["--ioengine=psync", "--group_reporting", "--output-format=json"]
    timed = [f"--runtime={seconds}", "--time_based"]
    return {
        "commits": common + timed + ["--rw=write", "--bs=4k", "--size=256m", "--fsync=1",
                                     "--ioengine=sync"],
        "randwrite": common + timed + ["--rw=randwrite", "--bs=4k", "--size=256m", "--direct=1",
                                       "--iodepth=1"],
        "randdsync": common + timed + ["--rw=randwrite", "--bs=4k", "--size=256m", "--direct=1",
                                       "--iodepth=1", "--sync=dsync"],
        "seq": common + ["--rw=write", "--bs=1M", "--size=1g", "--direct=1", "--end_fsync=1"],
    }


def run_fio(pid, directory, name, args, timeout=300):
    """Runs one fio job in the mount namespace of pid, with its working
    directory, on a file in `directory`. Returns (value, raw fio numbers):
    IOPS, or MiB/s over the wall time for seq."""
    fname = f"fio-{name}"
    argv = ["nsenter", "-t", str(pid), "-m", "-w", "--", "fio", f"--name={name}",
            f"--directory={directory}", f"--filename={fname}", *args]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    # The file goes whatever happened (fio's own runs lay out nothing else).
    subprocess.run(["nsenter", "-t", str(pid), "-m", "-w", "--", "rm", "-f",
                    os.path.join(directory, fname)], capture_output=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"fio {name} exited {p.returncode}: {p.stderr[-2000:]}")
    out = json.loads(p.stdout[p.stdout.index("{"):])
    w = out["jobs"][0]["write"]
    sync = out["jobs"][0].get("sync", {})
    raw = {"iops": w["iops"], "bw_MiBps": w["bw_bytes"] / (1 << 20), "ios": w["total_ios"],
           "runtime_ms": w["runtime"], "wall_s": wall,
           "lat_p50_us": w.get("clat_ns", {}).get("percentile", {}).get("50.000000", 0) / 1e3,
           "sync_lat_p50_us": sync.get("lat_ns", {}).get("percentile", {}).get("50.000000", 0) / 1e3
           if sync else None}
    if name == "seq":
        # fio's wall time includes its start and the final fsync; its own
        # runtime excludes the fsync: the wall time is the honest one.
        value = w["io_bytes"] / (1 << 20) / wall
        raw["MiBps_fio"] = raw["bw_MiBps"]
    else:
        value = w["iops"]
    return value, raw


def sleeper(host, name):
    """A process in a new, private mount namespace on host (in the host's
    network namespace): fio and mounts go into its namespace."""
    return host.popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"],
                      name=name)


def ns_pid(proc):
    """The pid of the sleeper itself (unshare execs sleep: the same pid,
    nsenter's child)."""
    def find():
        for pid in netns.netns_pids(proc.host.ns):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd[:2] == [b"sleep", b"infinity"] and os.readlink(f"/proc/{pid}/ns/mnt") != \
                    os.readlink("/proc/self/ns/mnt") and _ancestor(pid, proc.pid):
                return pid
        return None
    return wait_for(find, 10, what=f"{proc.name}'s namespace")


def _ancestor(pid, anc):
    while pid > 1:
        if pid == anc:
            return True
        try:
            pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def nsrun(pid, *argv, timeout=120, check=True, net=False):
    pre = ["nsenter", "-t", str(pid), "-m"] + (["-n"] if net else []) + ["--"]
    p = subprocess.run(pre + [str(a) for a in argv], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {p.returncode}: "
                           f"{p.stdout[-1000:]} {p.stderr[-2000:]}")
    return p


class Local:
    """ext4 on a loop device (direct I/O) over a sparse file, mounted in a
    mount namespace of its own."""

    def __init__(self, net, work, size):
        self.host = net.add_host("local")
        self.proc = sleeper(self.host, "local-ns")
        self.pid = ns_pid(self.proc)
        self.img = os.path.join(work, "local.img")
        with open(self.img, "wb") as f:
            f.truncate(size)
        self.dev = subprocess.run(["losetup", "--direct-io=on", "-b", "4096", "-f", "--show",
                                   self.img], check=True, capture_output=True,
                                  text=True).stdout.strip()
        # The same mkfs options as holdfast-volume's format.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-E",
                        "nodiscard,assume_storage_prezeroed=1", self.dev], check=True)
        self.mnt = os.path.join(work, "local.mnt")
        os.makedirs(self.mnt, exist_ok=True)
        nsrun(self.pid, "mount", "-o", "noatime", self.dev, self.mnt)
        self.dir = self.mnt

    def cleanup(self):
        try:
            nsrun(self.pid, "umount", self.mnt, check=False)
        except Exception:  # noqa: BLE001
            pass
        self.proc.kill()
        subprocess.run(["losetup", "-d", self.dev], capture_output=True)


class Gluster:
    """glusterd on three hosts (private mount namespaces: own
    /var/lib/glusterd, /var/log/glusterfs, /run), a replica 3 volume of a
    brick per host, mounted with the FUSE client on a fourth host."""

    def __init__(self, net, work, nodes=3):
        self.net, self.work = net, work
        self.hosts, self.glusterd = [], []
        for i in range(1, nodes + 1):
            h = net.add_host(f"g{i}")
            root = os.path.join(h.dir, "gluster")
            for d in ("lib", "log", "run", "brick"):
                os.makedirs(os.path.join(root, d), exist_ok=True)
            # The package's hooks and groups, as a fresh install has them.
            subprocess.run(["cp", "-a", "/var/lib/glusterd/.", os.path.join(root, "lib")],
                           check=True)
            script = (f"mount --bind {root}/lib /var/lib/glusterd && "
                      f"mount --bind {root}/log /var/log/glusterfs && "
                      f"mount -t tmpfs tmpfs /run && mkdir -p /run/gluster && "
                      f"exec glusterd -N -p /run/glusterd.pid")
            p = h.popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                        name="glusterd")
            self.hosts.append(h)
            self.glusterd.append(p)
        self.pids = []
        for h, p in zip(self.hosts, self.glusterd):
            self.pids.append(wait_for(lambda p=p: self._glusterd_pid(p), 30,
                                      what=f"glusterd on {p.host.name}"))
        for pid in self.pids:
            wait_for(lambda pid=pid: self.cli(pid, "peer", "status", check=False).returncode == 0,
                     60, what="glusterd answering")
        first = self.pids[0]
        for h in self.hosts[1:]:
            self.cli(first, "peer", "probe", h.ip)
        wait_for(lambda: self.cli(first, "peer", "status").stdout.count("(Connected)")
                 == nodes - 1, 60, what="gluster peers connected")
        bricks = [f"{h.ip}:{os.path.join(h.dir, 'gluster', 'brick', 'b')}" for h in self.hosts]
        self.cli(first, "volume", "create", "bv", "replica", str(nodes), *bricks, "force")
        self.cli(first, "volume", "start", "bv")
        wait_for(lambda: self.cli(first, "volume", "status", "bv").stdout.count(" Y ") >= nodes,
                 60, what="gluster bricks online")
        self.client = net.add_host("gclient")
        self.cproc = sleeper(self.client, "gclient-ns")
        self.pid = ns_pid(self.cproc)
        self.mnt = os.path.join(work, "gluster.mnt")
        os.makedirs(self.mnt, exist_ok=True)
        nsrun(self.pid, "mount", "-t", "glusterfs", "-o",
              f"log-file={os.path.join(self.client.dir, 'mount.log')}",
              f"{self.hosts[0].ip}:/bv", self.mnt, net=True, timeout=60)
        wait_for(lambda: nsrun(self.pid, "stat", "-f", "-c", "%T", self.mnt,
                               check=False).stdout.strip() == "fuseblk", 30,
                 what="gluster mount")
        self.dir = self.mnt
        # Defaults, not tuned: the options that decide what an fsync or an
        # O_DIRECT write waits for, recorded with the results.
        opts = self.cli(first, "volume", "get", "bv", "all").stdout.splitlines()
        keep = ("write-behind", "strict-o-direct", "remote-dio", "flush-behind",
                "strict-write-ordering", "cluster.quorum-type", "ensure-durability",
                "eager-lock", "open-behind", "quick-read", "io-cache")
        self.info = self.cli(first, "volume", "info", "bv").stdout + "\n".join(
            line for line in opts if any(k in line for k in keep))

    @staticmethod
    def _glusterd_pid(proc):
        for pid in netns.netns_pids(proc.host.ns):
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd and os.path.basename(cmd[0]) == b"glusterd" and _ancestor(pid, proc.pid):
                return pid
        return None

    @staticmethod
    def cli(pid, *args, check=True):
        return nsrun(pid, "gluster", "--mode=script", *args, check=check, net=True, timeout=120)

    def cleanup(self):
        try:
            nsrun(self.pid, "umount", "-l", self.mnt, check=False, timeout=30)
        except Exception:  # noqa: BLE001
            pass
        # glusterd, its bricks and self-heal daemon, and the FUSE client:
        # every process of these hosts (Net.cleanup does it too).
        for h in self.hosts + [self.client]:
            h.kill()


SPEC = """
name: {name}
pods:
  app:
    count: 1
    external-volumes:
      data:
        type: DOCKER
        container-path: data
        driver-name: holdfast
        driver-options: size={size};repl=2
    tasks:
      server:
        goal: RUNNING
        cpus: 0.1
        memory: 64
        cmd: |
          touch {out}/start.$(hostname).$(date +%s%N)
          exec sleep 1000000
"""


def holdfast_cluster(net, work, node_timeout, pool_size):
    binp = os.environ.get("HOLDFAST_BIN") or os.path.join(REPO, "build", "holdfast")
    hf = Holdfast(net, bin=binp, node_timeout=node_timeout)
    hf.start_server(net.add_host("srv"), extra=("--volume-rereplicate-after", "36000"))
    agents = []
    for i in range(1, 4):
        h = net.add_host(f"a{i}")
        agents.append(hf.start_agent(h, attributes={"zone": f"z{i}"},
                                     extra=("--storage", os.path.join(h.dir, "pool")
                                            + f",size={pool_size}")))
    wait_for(lambda: all((hf.node(a.node_id).get("storage") or {}).get("port") for a in agents),
             60, what="every node's replica server")
    return hf


def deploy(hf, work, size, out):
    spec = write(os.path.join(work, "svc.yml"), SPEC.format(name="vb", size=size, out=out))
    hf.deploy(spec, timeout=300)


def xvol(hf):
    return next(v for v in hf.get("/v1/external-volumes") if v["name"] == "vb-app-0")


def task_pid(hf, node):
    """The pid of the task's process (sleep) on node."""
    def find():
        for pid, info in hf.net[node].processes().items():
            if info["env"].get("TASK_NAME") == "app-0-server" and \
                    info["cmdline"].startswith("sleep"):
                return pid
        return None
    return wait_for(find, 30, what=f"the task's process on {node}")


def median(xs):
    return statistics.median(xs) if xs else None


def mode_fio(args):
    ensure_packages({"fio": "fio", "glusterd": "glusterfs-server",
                     "mount.glusterfs": "glusterfs-client"})
    work = tempfile.mkdtemp(prefix="hfbench-vfio-", dir="/var/tmp")
    if args.tmpfs:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs},mode=0700", "tmpfs",
                        work], check=True)
    net = Net(work)
    parts = []
    result = {"mode": "fio", "seconds": args.seconds, "rounds": args.rounds,
              "tmpfs": args.tmpfs or None,
              "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": load(),
              "runs": []}
    try:
        log("holdfast: server and three storage agents")
        hf = holdfast_cluster(net, work, NODE_TIMEOUT, "20G")
        out = os.path.join(work, "task-out")
        os.makedirs(out)
        deploy(hf, work, "4G", out)
        node = hf.pod("vb", "app-0")["node"]
        v = xvol(hf)
        result["holdfast_volume"] = {"attached": v["attached"],
                                     "replicas": [(r["node"], r["state"]) for r in v["replicas"]]}
        hpid = task_pid(hf, node)
        log(f"holdfast: task on {node}, pid {hpid}, replicas {result['holdfast_volume']}")
        log("local: ext4 on loop")
        local = Local(net, work, 4 * GIB)
        parts.append(local)
        log("gluster: three glusterd, replica 3")
        gl = Gluster(net, work)
        parts.append(gl)
        result["gluster_info"] = gl.info
        targets = {"local": (local.pid, local.dir), "holdfast": (hpid, "data"),
                   "gluster": (gl.pid, gl.dir)}
        jobs = fio_jobs(args.seconds)
        only = args.jobs.split(",") if args.jobs else list(jobs)
        for rnd in range(1, args.rounds + 1):
            for job in only:
                for what in ("local", "holdfast", "gluster"):
                    pid, d = targets[what]
                    la = load()
                    val, raw = run_fio(pid, d, job, jobs[job])
                    rec = {"round": rnd, "job": job, "target": what, "value": val,
                           "load": la, "raw": raw}
                    result["runs"].append(rec)
                    log(f"round {rnd} {job:9s} {what:8s} {val:10.1f}  (load {' '.join(la)})")
        result["load_end"] = load()
        summarize_fio(result)
        hf.stop()
    finally:
        for p in reversed(parts):
            try:
                p.cleanup()
            except Exception as e:  # noqa: BLE001
                log("cleanup:", e)
        net.cleanup()
        if args.tmpfs:
            subprocess.run(["umount", "-l", work], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return result


def summarize_fio(result):
    rows = {}
    for r in result["runs"]:
        rows.setdefault((r["job"], r["round"]), {})[r["target"]] = r["value"]
    summ = {}
    for job in dict.fromkeys(r["job"] for r in result["runs"]):
        per = [v for (j, _), v in sorted(rows.items()) if j == job]
        s = {t: median([p[t] for p in per if t in p]) for t in ("local", "holdfast", "gluster")}
        s["holdfast/local"] = median([p["holdfast"] / p["local"] for p in per])
        s["gluster/local"] = median([p["gluster"] / p["local"] for p in per])
        s["holdfast/gluster"] = median([p["holdfast"] / p["gluster"] for p in per])
        summ[job] = s
    result["summary"] = summ
    unit = {"seq": "MiB/s"}
    lines = ["job        round     local   holdfast    gluster   hf/local  gl/local  hf/gl"]
    for (job, rnd), p in sorted(rows.items(), key=lambda kv: (list(summ).index(kv[0][0]), kv[0][1])):
        lines.append(f"{job:10s} {rnd:5d} {p['local']:9.0f} {p['holdfast']:10.0f} {p['gluster']:10.0f}"
                     f" {p['holdfast'] / p['local']:9.0%} {p['gluster'] / p['local']:9.0%}"
                     f" {p['holdfast'] / p['gluster']:6.2f}")
    for job, s in summ.items():
        lines.append(f"{job:10s} median {s['local']:8.0f} {s['holdfast']:10.0f} {s['gluster']:10.0f}"
                     f" {s['holdfast/local']:9.0%} {s['gluster/local']:9.0%}"
                     f" {s['holdfast/gluster']:6.2f}  ({unit.get(job, 'IOPS')})")
    result["table"] = lines


# ------------------------------------------------------------- failover

def filled_volume(net, work, gb, size):
    """The cluster and the service, its volume of size on a pool with room
    for gb GiB three times: (hf, the task's output directory, its node)."""
    hf = holdfast_cluster(net, work, NODE_TIMEOUT, f"{3 * gb + 10}G")
    out = os.path.join(work, "task-out")
    os.makedirs(out)
    deploy(hf, work, size, out)
    node = hf.pod("vb", "app-0")["node"]
    log(f"{gb} GiB into a volume of {size} on {node}")
    return hf, out, node


def fill(hf, node, gb):
    """Writes gb GiB of fio's random buffers into the volume, fsynced."""
    pid = task_pid(hf, node)
    t0 = time.monotonic()
    p = subprocess.run(["nsenter", "-t", str(pid), "-m", "-w", "--", "fio", "--name=fill",
                        "--directory=data", "--filename=fill", "--rw=write", "--bs=1M",
                        f"--size={gb}g", "--direct=1", "--end_fsync=1", "--refill_buffers",
                        "--ioengine=psync", "--output-format=json"],
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"fill: {p.stderr[-2000:]}")
    subprocess.run(["nsenter", "-t", str(pid), "-m", "-w", "--", "sync", "data/fill"],
                   check=True, timeout=600)
    du = subprocess.run(["nsenter", "-t", str(pid), "-m", "-w", "--", "df", "-B1", "data"],
                        capture_output=True, text=True).stdout
    return time.monotonic() - t0, du


def replica_states(hf):
    v = xvol(hf)
    return {r["node"]: r["state"] for r in v["replicas"]}, v


def clear_loops(host_dir):
    """Loop devices of the killed host's attach processes stay configured
    (failing every I/O) when the process dies: cleared, as Net.cleanup
    would."""
    netns._clear_loops_under(host_dir)


def planned_bytes(hf):
    """The bytes the volume's present attachment set out to copy to
    returning replicas (the API's io, shown once that attachment has
    reported; None before)."""
    io = xvol(hf).get("io")
    return io["resync_planned"] if io else None


def mode_failover(args):
    ensure_packages({"fio": "fio"})
    work = tempfile.mkdtemp(prefix="hfbench-vfail-", dir="/var/tmp")
    net = Net(work)
    size = f"{args.gb + max(1, args.gb // 5)}G"
    result = {"mode": "failover", "gb": args.gb, "volume_size": size, "trials": [],
              "node_timeout": NODE_TIMEOUT,
              "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": load()}
    try:
        hf, out, node = filled_volume(net, work, args.gb, size)
        secs, df = fill(hf, node, args.gb)
        result["fill_seconds"] = secs
        result["df_after_fill"] = df
        log(f"filled in {secs:.1f} s (load {' '.join(load())})\n{df}")
        for trial in range(1, args.trials + 1):
            states, v = replica_states(hf)
            assert all(s == "in_sync" for s in states.values()), states
            victim = hf.pod("vb", "app-0")["node"]
            assert v["attached"] == victim, v
            others = [n for n in states if n != victim]
            la = load()
            t0 = time.time()
            net[victim].kill()
            net[victim].cut()
            t_kill = time.time()
            t_run = t_att = None
            new = None
            deadline = t0 + 300
            while time.time() < deadline and (t_run is None or t_att is None):
                try:
                    pod = hf.pod("vb", "app-0")
                    task = hf.tasks("vb")["app-0-server"]
                    now = time.time()
                    if t_run is None and pod.get("node") not in (None, victim) and \
                            task.get("status") == "RUNNING":
                        t_run, new = now, pod["node"]
                    vv = xvol(hf)
                    if t_att is None and vv.get("attached") not in (None, "", victim):
                        t_att = time.time()
                except (AssertionError, OSError, StopIteration):
                    pass
                time.sleep(0.1)
            if t_run is None:
                raise RuntimeError(f"trial {trial}: the task did not run elsewhere in 300 s")
            # The task's start, by its own clock (the name of the file it
            # made): the first one after the kill (RUNNING may be shown
            # before the task made it; an older file on that node is a
            # copy from before).
            def started():
                ts = [int(f.rsplit(".", 1)[1]) / 1e9 for f in os.listdir(out)
                      if f.startswith(f"start.{new}.")]
                return min((t for t in ts if t > t0), default=None)
            try:
                t_task = wait_for(started, 10, what=f"the task's start file on {new}")
            except AssertionError:
                t_task = None
            # The data is there: the file's size, seen by the new task.
            seen = subprocess.run(["nsenter", "-t", str(task_pid(hf, new)), "-m", "-w", "--",
                                   "stat", "-c", "%s", "data/fill"], capture_output=True,
                                  text=True, timeout=60).stdout.strip()
            if seen != str(args.gb * GIB):
                raise RuntimeError(f"trial {trial}: data/fill on {new} is {seen!r} bytes")
            rec = {"trial": trial, "victim": victim, "new_node": new, "replicas_before": others,
                   "kill_s": t_kill - t0, "running_s": t_run - t0, "attach_decided_s": t_att - t0,
                   "task_started_s": (t_task - t0) if t_task else None, "load": la}
            log(f"trial {trial}: {victim} killed -> RUNNING on {new} after {rec['running_s']:.2f} s"
                f" (attach decided {rec['attach_decided_s']:.2f} s, task started "
                f"{rec['task_started_s'] and round(rec['task_started_s'], 2)} s; load {' '.join(la)})")
            # The host back: its link, then its agent; its replica resyncs.
            clear_loops(net[victim].dir)
            wait_for(lambda: planned_bytes(hf) is not None, 30, interval=0.2,
                     what="the new attachment's counters")
            planned0 = planned_bytes(hf)
            net[victim].heal()
            t_back = time.time()
            hf.agents[victim].start()
            saw = set()

            def synced():
                st, _ = replica_states(hf)
                saw.update(st.values())
                return all(s == "in_sync" for s in st.values()) and len(st) == 2 and st
            wait_for(synced, args.resync_timeout, interval=0.5, what="both replicas in sync")
            rec["resync_s"] = time.time() - t_back
            rec["states_seen"] = sorted(saw)
            # What the new primary set out to send the returning replica
            # (its attach process's counter, reported at the next sync).
            # (0 is a fair answer: an idle volume's log may be empty.)
            t_end = time.monotonic() + 5
            while True:
                rec["resync_planned_bytes"] = (planned_bytes(hf) or 0) - planned0
                if rec["resync_planned_bytes"] or time.monotonic() > t_end:
                    break
                time.sleep(0.5)
            log(f"trial {trial}: {victim} back, replicas in sync after {rec['resync_s']:.1f} s"
                f" (states seen {rec['states_seen']}; {rec['resync_planned_bytes']:.0f} bytes"
                f" planned)")
            result["trials"].append(rec)
            # A copy of the task is running on new again (the old one
            # stopped): let the cluster settle before the next kill.
            time.sleep(2)
        run = [t["running_s"] for t in result["trials"]]
        att = [t["attach_decided_s"] for t in result["trials"]]
        rs = [t["resync_s"] for t in result["trials"]]
        result["summary"] = {k: {"p50": pct(x, 50), "p90": pct(x, 90), "max": max(x)}
                             for k, x in (("running_s", run), ("attach_decided_s", att),
                                          ("resync_s", rs))}
        result["load_end"] = load()
        hf.stop()
    finally:
        net.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return result


def overwrite(hf, node, mb, seek_mb):
    """Overwrites mb MiB of data/fill from seek_mb on, in the task, fsynced."""
    pid = task_pid(hf, node)
    subprocess.run(["nsenter", "-t", str(pid), "-m", "-w", "--", "dd", "if=/dev/urandom",
                    "of=data/fill", "bs=1M", f"count={mb}", f"seek={seek_mb}",
                    "conv=notrunc,fsync", "status=none"], check=True, timeout=600)


def mode_resync(args):
    """A replica cut off while the task overwrites --missed-mb MiB, then
    healed: the bytes copied to it and the time until it is in sync,
    against the same with a replica that comes back empty (its pool's
    copy removed: a whole copy), in one run."""
    ensure_packages({"fio": "fio"})
    work = tempfile.mkdtemp(prefix="hfbench-vresync-", dir="/var/tmp")
    net = Net(work)
    size = f"{args.gb + max(1, args.gb // 5)}G"
    vol = "vb-app-0"
    result = {"mode": "resync", "gb": args.gb, "volume_size": size, "missed_mb": args.missed_mb,
              "trials": [], "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_start": load()}
    try:
        hf, out, node = filled_volume(net, work, args.gb, size)
        secs, _ = fill(hf, node, args.gb)
        log(f"resync: {args.gb} GiB written in {secs:.1f} s on {node}")
        for trial, kind in enumerate(["bitmap", "whole"] * args.trials, 1):
            states, v = replica_states(hf)
            assert all(s == "in_sync" for s in states.values()), states
            peer = next(n for n in states if n != node)
            rep_id = next(r["id"] for r in v["replicas"] if r["node"] == peer)
            if kind == "whole":
                net[peer].kill()
            net[peer].cut()
            wait_for(lambda: replica_states(hf)[0][peer] == "down", 120, what=f"{peer} down")
            try:
                overwrite(hf, node, args.missed_mb, (trial * args.missed_mb)
                          % (args.gb * 1024 - args.missed_mb))
            except subprocess.CalledProcessError:
                vlog = os.path.join(hf.agents[node].data, "attach", vol, "volume.log")
                log("the overwrite failed; the attach process's log:\n"
                    + open(vlog, errors="replace").read()[-6000:])
                raise

            def val(m, name):
                return m.get((name, (("volume", vol),)), 0)

            def missed_of(m):
                return m.get(("holdfast_volume_missed_bytes", (("replica", rep_id),
                                                               ("volume", vol))), 0)
            # The counters reach /metrics at the agent's next report.
            wait_for(lambda: missed_of(hf.metrics()) >= args.missed_mb << 20, 30,
                     what="the missed regions in /metrics")
            m0 = hf.metrics()
            missed = missed_of(m0)
            if kind == "whole":
                shutil.rmtree(os.path.join(net[peer].dir, "pool", "replicas", v["id"], rep_id))
                clear_loops(net[peer].dir)
            la = load()
            net[peer].heal()
            t0 = time.time()
            if kind == "whole":
                hf.agents[peer].start()
            wait_for(lambda: all(s == "in_sync" for s in replica_states(hf)[0].values()),
                     args.resync_timeout, interval=0.2, what="both replicas in sync")
            took = time.time() - t0
            m1 = wait_for(lambda: (lambda m: m if val(m, "holdfast_volume_resync_planned_bytes_total")
                                   > val(m0, "holdfast_volume_resync_planned_bytes_total")
                                   else None)(hf.metrics()), 30, what="the copy's counters")
            rec = {"trial": trial, "kind": kind, "peer": peer, "missed_bytes": missed,
                   "planned_bytes": val(m1, "holdfast_volume_resync_planned_bytes_total")
                   - val(m0, "holdfast_volume_resync_planned_bytes_total"),
                   "sent_bytes": val(m1, "holdfast_volume_resync_sent_bytes_total")
                   - val(m0, "holdfast_volume_resync_sent_bytes_total"),
                   "in_sync_s": took, "load": la}
            result["trials"].append(rec)
            log(f"trial {trial} ({kind}): {peer} missed {missed}, planned {rec['planned_bytes']:.0f},"
                f" sent {rec['sent_bytes']:.0f} bytes, in sync {took:.2f} s after the heal"
                f" (load {' '.join(la)})")
            time.sleep(2)
        result["load_end"] = load()
        hf.stop()
    finally:
        net.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return result


def pct(values, p):
    """Nearest-rank percentile, as bench/hfbench.py's."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("fio")
    f.add_argument("--rounds", type=int, default=3)
    f.add_argument("--seconds", type=int, default=10)
    f.add_argument("--jobs", default="", help="comma-separated subset of the jobs")
    f.add_argument("--tmpfs", default="", help="run everything on a tmpfs of this size")
    f.add_argument("--out")
    g = sub.add_parser("failover")
    g.add_argument("--gb", type=int, default=1)
    g.add_argument("--trials", type=int, default=10)
    g.add_argument("--resync-timeout", type=float, default=1800)
    g.add_argument("--out")
    r = sub.add_parser("resync")
    r.add_argument("--gb", type=int, default=1)
    r.add_argument("--missed-mb", type=int, default=64)
    r.add_argument("--trials", type=int, default=3, help="pairs of (bitmap, whole) trials")
    r.add_argument("--resync-timeout", type=float, default=1800)
    r.add_argument("--out")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/volumes_fio.py: needs root")
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))
    res = {"fio": mode_fio, "failover": mode_failover, "resync": mode_resync}[args.mode](args)
    res["machine"] = {"nproc": os.cpu_count(), "kernel": os.uname().release,
                      "commit": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                               capture_output=True, text=True).stdout.strip()}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)
    if args.mode == "fio":
        print("\n".join(res["table"]))
    elif args.mode == "resync":
        for t in res["trials"]:
            print(f"trial {t['trial']:2d} {t['kind']:6s}: missed {t['missed_bytes']}, planned "
                  f"{t['planned_bytes']:.0f}, sent {t['sent_bytes']:.0f} bytes, in sync "
                  f"{t['in_sync_s']:.2f} s, load {' '.join(t['load'])}")
    else:
        for t in res["trials"]:
            print(f"trial {t['trial']:2d} {t['victim']}->{t['new_node']}: running {t['running_s']:.2f} s,"
                  f" attach decided {t['attach_decided_s']:.2f} s, task started {t['task_started_s'] and round(t['task_started_s'], 2)} s, resync {t['resync_s']:.1f} s, load {' '.join(t['load'])}")
        for k, s in res["summary"].items():
            print(f"{k}: p50 {s['p50']:.2f}  p90 {s['p90']:.2f}  max {s['max']:.2f}")


if __name__ == "__main__":
    main()
