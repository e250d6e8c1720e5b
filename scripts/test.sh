#!/usr/bin/env bash
# test.sh - sets up a fresh Debian 12 machine and runs every holdfast test:
# warnings-as-errors builds, cmocka unit tests and the spec corpus under
# AddressSanitizer + UndefinedBehaviorSanitizer, bounded fuzzing of the
# parsers, and the system tests (pytest) against the sanitizer binary (the
# shim's also against the release build, whose shim is static on musl).
#
# HF_FUZZ_SECONDS (default 30) bounds each fuzz target.
set -uo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh || { echo "setup failed"; exit 1; }

JOBS=$(nproc)
passed=0
failed=0
failures=()

suite() {
	local name=$1
	shift
	echo
	echo "=== $name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
		echo "=== $name FAILED"
	fi
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

suite "build (release, -Werror)" make -j"$JOBS" build/holdfast \
	build/holdfast-shim build/holdfast-volume
suite "build (ASan+UBSan, -Werror)" make -j"$JOBS" build-asan/holdfast
suite "module layout (tests/unit/test_layout.py)" make layout
suite "unit tests (ASan+UBSan)" make -j"$JOBS" unit

# One target for its bounded time; its log printed when it fails.
fuzz_one() {
	local t=$1 secs=$2 name corpus work
	name=$(basename "$t")
	corpus=tests/fuzz/corpus/${name#fuzz_}
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
	if ! "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "$work" >"$work.log" 2>&1; then
		echo "-- $name FAILED"
		tail -n 60 "$work.log"
		rm -rf "$work" "$work.log"
		return 1
	fi
	echo "-- $name for ${secs}s: $(grep -E '^stat::number_of_executed_units' "$work.log" || echo done)"
	rm -rf "$work" "$work.log"
}

# The targets run $JOBS at a time (each is one process on one core), every
# one for its full time.
run_fuzz() {
	local secs=${HF_FUZZ_SECONDS:-30}
	make -j"$JOBS" fuzz || return 1
	export -f fuzz_one
	printf '%s\n' build-fuzz/fuzz_* |
		xargs -P "$JOBS" -I{} bash -c 'fuzz_one "$1" "$2"' _ {} "$secs"
}
suite "fuzz (libFuzzer, ASan+UBSan)" run_fuzz

if [ -d tests/system ] && ls tests/system/test_*.py >/dev/null 2>&1; then
	# Every test has its own cluster (directories, ports, cgroups named
	# by task id), so two run at once: most of a test's time is spent
	# waiting on processes.
	suite "system tests (pytest, ASan+UBSan binary)" \
		env HOLDFAST_BIN="$PWD/build-asan/holdfast" \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=20 \
		-n "$JOBS" tests/system
fi

# Nodes run the release shim, a static program on musl (the Makefile), not
# the sanitizer build's glibc one: the tests that drive the shim directly,
# and those of users, mount namespaces and volumes, run against it too.
suite "shim system tests (pytest, release build: static musl shim)" \
	env HOLDFAST_BIN="$PWD/build/holdfast" \
	/usr/bin/python3 -m pytest -q -p no:cacheprovider -n "$JOBS" tests/system/test_shim.py \
	tests/system/test_shim_restart.py tests/system/test_isolation.py \
	tests/system/test_mount_volumes.py tests/system/test_volume_attach.py \
	tests/system/test_agent_attach.py

if [ -d tests/cluster ] && ls tests/cluster/test_*.py >/dev/null 2>&1; then
	suite "cluster tests (network namespaces, pytest)" \
		env HOLDFAST_BIN="$PWD/build-asan/holdfast" \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=10 \
		tests/cluster
fi

echo
if [ "$failed" -gt 0 ]; then
	echo "failed suites: ${failures[*]}"
fi
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
