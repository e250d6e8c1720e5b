#!/bin/sh
# holdfast benchmarks: the one entry point.
#
#   bench/run.sh [all|deploy|deploys|restart|kill9|memory|api|latency|cluster|shim|volumes|replicated|autoscale|dr] [--quick] [--out DIR]
#
# Builds the release binary (make build/holdfast), runs the benchmarks
# against a private copy of it (so a concurrent rebuild cannot break a
# launch), and prints a summary. Every benchmark measures its baseline in
# the same run and reports holdfast as a ratio against it; results are
# also written as JSON to DIR (default: a new directory under /tmp).
# Each benchmark runs under `timeout` and cleans up every process, cgroup
# and mount it created, also when interrupted. Needs root (the agent
# creates cgroups), Python 3 (standard library only) and loopback.
#
#   deploy   N=200 `sleep 3600` tasks, parallel phase: POST -> plan COMPLETE,
#            vs. a shell loop spawning 200 sleeps           (3 runs, ~1-2 min)
#   deploys  deploys of 200 and 1000 pods (BENCH_COUNTS) against raw spawn
#            of the same commands in the same repetition, and the server's
#            CPU per launched task; with BENCH_BEFORE (optional) the same
#            deploys with that binary, alternating      (3 runs, ~3-10 min)
#   restart  100 x kill -9 of a RUNNING task -> replacement running, vs. a
#            shell supervisor loop, with --backoff 0.01 --backoff-max 0.05
#            (3 runs), with no backoff (3 runs) and with task cpus 0.01
#            (1 run); plus 7 kills with the default backoff  (~5 min);
#            then kill9
#   kill9    restart after kill -9, the same program under a shell `while`
#            loop, supervisord (Debian's `supervisor`, installed with apt-get
#            when missing; a private supervisord, autorestart=true,
#            startsecs=0) and holdfast (server --backoff 0.01 --backoff-max
#            0.05): the first restart of each of 30 tasks and 100
#            consecutive kills of one task; p50/p90/p99/max and the ratios
#            holdfast/shell and supervisord/holdfast     (3 runs, ~8 min)
#   memory   VmRSS of server and agent idle, with 200 and with 1000 tasks;
#            shims' RSS per task; deploy time at each N      (3 runs, ~8 min)
#
#   api      wrk on GET plans/deploy and pod/status with 200 pods, alone and
#            during a second 200-pod deploy, vs. GET /v1/version (~2 min)
#   latency  GET plans/deploy latency (4 readers) from POST to COMPLETE of a
#            200-pod deploy, this tree against BENCH_BEFORE (a binary built
#            from the tree before a change; required), rounds alternating
#            (3 rounds, ~2 min)
#   shim     the shim alone: RSS and PSS per shim (smaps_rollup) for 50
#            running tasks, the holdfast-shim next to BENCH_BEFORE (required;
#            its `holdfast shim` if it has none) against holdfast-shim;
#            and the first restart in place after kill -9 (30 tasks,
#            p50/p99), of both when the old shim restarts in place, against
#            a shell `while` loop; and the start-up of both programs
#            (spawn to exit of a usage error, 300 each)       (~1 min)
#   volumes  commits (4 KiB append + fdatasync, one writer) on ext4 through
#            holdfast-volume attach (FUSE, loop; one local replica, then
#            repl=2 with a holdfast-volume serve on loopback) against ext4
#            on a plain loop device over a local file; commits/s and the
#            ratios (3 runs of 3 x 10 s each, ~2 min)
#   replicated  (not in all: installs fio and GlusterFS with apt-get, and
#            writes tens of GB) bench/volumes_fio.py on network-namespace
#            hosts: fio inside a task's repl=2 holdfast volume against
#            ext4-on-loop and a GlusterFS replica 3 volume, interleaved
#            (4 KiB write+fsync commits/s, 4 KiB QD1 random write IOPS
#            with and without O_DSYNC, 1 MiB sequential MiB/s; 3 rounds);
#            then failover with --node-timeout 5 after a node kill, 10
#            trials with 1 GiB and BENCH_TRIALS_10G (10) with 10 GiB in
#            the volume                                     (~40-60 min)
#   autoscale  (not in all: ~7-9 min) bench/autoscale.py: react, the time
#            from a command metric (`cat FILE`) crossing up.above to the
#            new instance RUNNING and ready, with interval 1s (10 trials)
#            and 15s (5), each against `holdfast pod scale POD 2` of the
#            same pod type without a policy (interleaved; p50/p90/max and
#            the ratios); then pipeline, examples/pipeline.yml with the
#            talk's rule (every 15 s, +1 above a lag of 500, -1 below 100,
#            1 to 10; down cooldown 15 s), WORK_MS=20, producer 300/s for
#            45000 messages (BENCH_AGENT_CPUS=N: the node offers N cpus):
#            lag and consumer count each second until the count is back
#            at 1, every message stored exactly once, as
#            JSON, CSV and a PNG (gnuplot; Debian's gnuplot-nox, installed
#            with apt-get when missing): $out/autoscale-pipeline.png
#            (docs/img/autoscale-pipeline.png is a copy of one)
#   dr       (not in all: ~5 min; needs ip and tc from iproute2, openssl)
#            bench/dr.py, a volume's disaster-recovery stream: RPO (the
#            standby's mark against the writer's log every 50 ms, and
#            status.json's dr.lag_seconds) while one writer keeps 10, 50
#            and 100 MiB/s on the device of an attach streaming to a
#            standby on loopback, against the same writer without DR; a
#            10 s spike at 3x a link shaped with tc tbf (20 MiB/s, site B
#            in a network namespace behind a veth) absorbed by a 1 GiB
#            journal: its peak, blocked writes, the drain; commits/s
#            (4 KiB append + fdatasync on ext4) with DR against without,
#            alternating (3 runs of 10 s each); BENCH_DR_VARIANTS=LIST adds
#            diagnostic variants of the commit runs (bench/dr.py --help)
#   cluster  1000 simulated agents (build/hf-simagents, one process) and
#            10000 pod instances: UNIQUE hostname and MAX_PER hostname, each
#            against the same pods without constraints; placements/s and
#            server memory (~3 min)
#
# --quick: fewer repetitions and N (a smoke test, not for BENCHMARKS.md).
# Environment: BENCH_REPEAT (default 3), BENCH_N (200), BENCH_COUNTS
# (200,1000), BENCH_KILLS (100), BENCH_AGENTS (1000), BENCH_INSTANCES
# (10000), BENCH_TASKS (30, kill9); HOLDFAST_BIN=path benchmarks that binary
# instead of building the working tree (e.g. one built from `git archive REV`).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
py=/usr/bin/python3
what=all
quick=0
out=""
while [ $# -gt 0 ]; do
	case "$1" in
	all | deploy | deploys | restart | kill9 | memory | api | latency | cluster | shim | volumes | replicated | autoscale | dr) what=$1 ;;
	--quick) quick=1 ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '/^set -eu/q;2,$p' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done

repeat=${BENCH_REPEAT:-3}
n=${BENCH_N:-200}
counts=${BENCH_COUNTS:-200,1000}
kills=${BENCH_KILLS:-100}
tasks=${BENCH_TASKS:-30}
dkills=7
agents=${BENCH_AGENTS:-1000}
instances=${BENCH_INSTANCES:-10000}
if [ "$quick" = 1 ]; then
	repeat=1 n=50 counts=50 kills=10 dkills=0 agents=100 instances=1000 tasks=10
fi

[ "$(id -u)" = 0 ] || echo "bench/run.sh: warning: not root; cgroups will be unavailable" >&2

work=$(mktemp -d /tmp/hfbench-run-XXXXXX)
trap 'rm -rf "$work"' EXIT
# The agent runs the holdfast-shim next to its binary: copied along (a
# binary from before holdfast-shim has none and needs none).
if [ -n "${HOLDFAST_BIN:-}" ]; then
	echo "== using HOLDFAST_BIN=$HOLDFAST_BIN (no build)"
	cp "$HOLDFAST_BIN" "$work/holdfast"
	for prog in holdfast-shim holdfast-volume; do
		src=$(dirname "$HOLDFAST_BIN")/$prog
		if [ -e "$src" ]; then cp "$src" "$work/$prog"; fi
	done
else
	echo "== building the release binary (make build/holdfast)"
	make -C "$repo" build/holdfast build/holdfast-shim build/holdfast-volume >/dev/null
	cp "$repo/build/holdfast" "$repo/build/holdfast-shim" "$repo/build/holdfast-volume" "$work/"
fi
make -C "$repo" build/hf-simagents >/dev/null
cp "$repo/build/hf-simagents" "$work/hf-simagents"
export HF_SIMAGENTS_BIN="$work/hf-simagents"
"$work/holdfast" --version >/dev/null
export HOLDFAST_BIN="$work/holdfast"
[ -n "$out" ] || out=$(mktemp -d /tmp/hfbench-results-XXXXXX)
mkdir -p "$out"

echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%d MB", $2/1024}' /proc/meminfo)," \
	"kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)," \
	"commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"

rc=0
# Copies BENCH_BEFORE to $work/before/holdfast with its own holdfast-shim
# (if it has one): a baseline binary must not find this tree's shim next
# to it, or the benchmark would run the new shim for "before".
copy_before() {
	mkdir -p "$work/before"
	cp "$BENCH_BEFORE" "$work/before/holdfast"
	bshim=$(dirname "$BENCH_BEFORE")/holdfast-shim
	if [ -e "$bshim" ]; then cp "$bshim" "$work/before/holdfast-shim"; fi
}
run() { # name timeout-seconds command...
	name=$1 limit=$2
	shift 2
	echo "== $name: $*"
	# SIGTERM first: the Python side cleans up on it.
	if ! timeout -k 30 "$limit" "$@" >"$out/$name.txt"; then
		echo "== $name FAILED or timed out (limit ${limit}s)" >&2
		rc=1
	fi
	cat "$out/$name.txt"
}

case $what in all | deploy)
	run deploy 1200 "$py" "$here/deploy.py" -n "$n" --repeat "$repeat" --out "$out/deploy.json" ;;
esac
case $what in deploys)
	if [ -n "${BENCH_BEFORE:-}" ]; then
		copy_before
		set -- --before "$work/before/holdfast"
	else
		set --
	fi
	run deploys 3600 "$py" "$here/deploys.py" --counts "$counts" --repeat "$repeat" \
		"$@" --out "$out/deploys.json" ;;
esac
case $what in all | restart)
	run restart 1800 "$py" "$here/restart.py" --kills "$kills" --repeat "$repeat" \
		--backoff 0.01 --backoff-max 0.05 --default-backoff-kills "$dkills" \
		--out "$out/restart.json"
	# A base of 0.1 ms rounds every backoff down to 0 ms: no backoff at
	# all, which separates the restart machinery from the backoff wait.
	run restart-nobackoff 900 "$py" "$here/restart.py" --kills "$kills" --repeat "$repeat" \
		--backoff 0.0001 --backoff-max 0.0001 --default-backoff-kills 0 \
		--out "$out/restart-nobackoff.json"
	run restart-cpus0.01 900 "$py" "$here/restart.py" --kills "$kills" --repeat 1 \
		--backoff 0.01 --backoff-max 0.05 --cpus 0.01 --default-backoff-kills 0 \
		--out "$out/restart-cpus0.01.json" ;;
esac
case $what in all | restart | kill9)
	# kill9.py installs Debian's supervisor when it is missing.
	run kill9 2400 "$py" "$here/kill9.py" --tasks "$tasks" --kills "$kills" --repeat "$repeat" \
		--backoff 0.01 --backoff-max 0.05 --out "$out/kill9.json" ;;
esac
case $what in all | api)
	# wrk is the load tool: a Debian package, installed when missing.
	command -v wrk >/dev/null 2>&1 || {
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	}
	run api 900 "$py" "$here/api.py" -n "$n" --out "$out/api.json" ;;
esac
case $what in latency)
	[ -n "${BENCH_BEFORE:-}" ] || { echo "bench/run.sh latency: set BENCH_BEFORE to the baseline binary" >&2; exit 2; }
	copy_before
	run latency 1800 "$py" "$here/latency.py" --before "$work/before/holdfast" -n "$n" \
		--rounds "$repeat" --out "$out/latency.json" ;;
esac
case $what in shim)
	[ -n "${BENCH_BEFORE:-}" ] || { echo "bench/run.sh shim: set BENCH_BEFORE to the baseline binary" >&2; exit 2; }
	copy_before
	run shim 900 "$py" "$here/shim.py" --before "$work/before/holdfast" \
		-n "$( [ "$quick" = 1 ] && echo 10 || echo 50)" \
		--tasks "$( [ "$quick" = 1 ] && echo 10 || echo 30)" --out "$out/shim.json" ;;
esac
case $what in all | volumes)
	run volumes 900 "$py" "$here/volumes.py" --repeat "$repeat" \
		--seconds "$( [ "$quick" = 1 ] && echo 3 || echo 10)" --out "$out/volumes.json" ;;
esac
case $what in replicated)
	run replicated-fio 1800 "$py" "$here/volumes_fio.py" fio --rounds "$repeat" \
		--seconds "$( [ "$quick" = 1 ] && echo 3 || echo 10)" --out "$out/replicated-fio.json"
	run failover-1g 3600 "$py" "$here/volumes_fio.py" failover --gb 1 \
		--trials "$( [ "$quick" = 1 ] && echo 2 || echo 10)" --out "$out/failover-1g.json"
	run resync-1g 1800 "$py" "$here/volumes_fio.py" resync --gb 1 --missed-mb 64 \
		--trials "$( [ "$quick" = 1 ] && echo 1 || echo 3)" --out "$out/resync-1g.json"
	[ "$quick" = 1 ] ||
		run failover-10g 7200 "$py" "$here/volumes_fio.py" failover --gb 10 \
			--trials "${BENCH_TRIALS_10G:-10}" --out "$out/failover-10g.json" ;;
esac
case $what in autoscale)
	if [ "$quick" = 1 ]; then
		set -- --trials-1s 3 --trials-15s 1
	else
		set -- --trials-1s 10 --trials-15s 5
	fi
	run autoscale-react 900 "$py" "$here/autoscale.py" react "$@" --out "$out/autoscale-react.json"
	if [ "$quick" = 1 ]; then
		set -- --rate 150 --total 3000 --interval 2s --up-cooldown 2s --down-cooldown 3s --max 4
	else
		set -- --rate 300 --total 45000 --interval 15s --up-cooldown 15s --down-cooldown 15s --max 10
	fi
	# BENCH_AGENT_CPUS=N: the cpus the node offers (default: detected).
	[ -z "${BENCH_AGENT_CPUS:-}" ] || set -- "$@" --agent-cpus "$BENCH_AGENT_CPUS"
	run autoscale-pipeline 1200 "$py" "$here/autoscale.py" pipeline "$@" --work-ms 20 \
		--out "$out/autoscale-pipeline.json" --csv "$out/autoscale-pipeline.csv" \
		--plot "$out/autoscale-pipeline.png" ;;
esac
case $what in dr)
	if [ "$quick" = 1 ]; then
		set -- --seconds 5 --spike 4 --commit-seconds 3 --repeat 1
	else
		set -- --seconds 20 --spike 10 --commit-seconds 10 --repeat "$repeat"
	fi
	[ -z "${BENCH_DR_VARIANTS:-}" ] || set -- "$@" --commit-variants "$BENCH_DR_VARIANTS"
	run dr 1200 "$py" "$here/dr.py" --rates 10,50,100 --link 20 --journal 1024 "$@" \
		--out "$out/dr.json" ;;
esac
case $what in all | cluster)
	run cluster 3600 "$py" "$here/cluster.py" --agents "$agents" --instances "$instances" \
		--out "$out/cluster.json" ;;
esac
case $what in all | memory)
	run memory 3600 "$py" "$here/memory.py" --counts "$counts" --repeat "$( [ "$quick" = 1 ] && echo 1 || echo "$repeat")" \
		--out "$out/memory.json" ;;
esac

echo "== summary"
"$py" "$here/summary.py" "$out"
echo "== results in $out"
exit $rc
