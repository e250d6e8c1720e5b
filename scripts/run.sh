#!/usr/bin/env bash
# run.sh - sets up a fresh Debian 12 machine, builds holdfast, starts
# `holdfast dev` (a server with its embedded SQLite store and one agent on
# this machine) and deploys examples/hello-world.yml. It stays in the
# foreground; Ctrl-C stops holdfast (the tasks keep running and are picked up
# again by the next start).
#
#   HOLDFAST_DATA   data directory (default /var/lib/holdfast/dev)
#   HOLDFAST_LISTEN API address (default 127.0.0.1:7070)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
make -j"$(nproc)" build/holdfast >/dev/null

DATA=${HOLDFAST_DATA:-/var/lib/holdfast/dev}
LISTEN=${HOLDFAST_LISTEN:-127.0.0.1:7070}
export HOLDFAST_ADDR="http://127.0.0.1:${LISTEN##*:}"
HF=./build/holdfast
mkdir -p "$DATA"
# One dev per data directory (it holds DATA/dev.lock): say so here, rather
# than talk to the dev that holds it as if it were ours.
if ! flock -n "$DATA/dev.lock" true; then
	echo "another holdfast dev is running on $DATA (pid $(cat "$DATA/dev.lock" 2>/dev/null)); stop it, or set HOLDFAST_DATA" >&2
	exit 1
fi

echo "== starting holdfast dev (data in $DATA, API on $HOLDFAST_ADDR, log in $DATA/dev.log)"
$HF dev --data "$DATA" --listen "$LISTEN" >>"$DATA/dev.log" 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
	curl -fsS "$HOLDFAST_ADDR/v1/version" >/dev/null 2>&1 && break
	if ! kill -0 $DEV 2>/dev/null; then
		echo "holdfast dev did not start; see $DATA/dev.log" >&2
		tail -n 20 "$DATA/dev.log" >&2
		exit 1
	fi
	sleep 0.1
done

if $HF service list | grep -q '^hello-world '; then
	echo "== hello-world is already deployed"
	$HF -s hello-world plan show deploy
else
	echo "== holdfast service deploy -f examples/hello-world.yml --wait"
	$HF service deploy -f examples/hello-world.yml --wait --timeout 300
fi
echo
$HF -s hello-world pod status
cat <<EOF2

holdfast is running. In another shell:
  export PATH=$PWD/build:\$PATH HOLDFAST_ADDR=$HOLDFAST_ADDR
  holdfast service list
  holdfast -s hello-world plan show deploy
  holdfast -s hello-world pod status
  holdfast stack deploy -f examples/dropbox/stack.yml --wait   # the example stack (examples/dropbox)
The web UI: $HOLDFAST_ADDR/ui/ (sign in with the token in
~/.config/holdfast/credentials/local-${HOLDFAST_ADDR##*:}, or open /ui/?token=TOKEN).
Press Ctrl-C to stop holdfast (tasks keep running).
EOF2
wait $DEV
