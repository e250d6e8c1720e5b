# restore.sh: the `restore` plan's task, in the primary's pod instance.
# Replaces the primary's dataset with $BACKUP_DIR/<RESTORE_FROM>/dump.rdb
# (RESTORE_FROM defaults to this instance, primary-0); the replicas follow.
#
# With appendonly on, redis loads the AOF at start and ignores dump.rdb, so
# copying the snapshot into the data directory (and restarting redis) would
# restore nothing; rewriting the AOF by hand behind a running redis is
# unsafe. Instead the restore goes through replication, which redis makes
# atomic and durable by itself:
#
#  1. Start a temporary redis (no AOF, no saves, on this task's own port
#     RESTORE_PORT) on a copy of the snapshot: it loads the RDB.
#  2. `REPLICAOF 127.0.0.1 $RESTORE_PORT` on the primary. From then on it
#     refuses writes (READONLY), drops its replicas, receives the snapshot
#     by a full sync, replaces its whole dataset with it, and re-creates its
#     AOF: redis turns the AOF off before loading a master's snapshot and
#     back on afterwards with a rewrite, so the new AOF base *is* the
#     restored dataset. We wait for that rewrite to complete (aof_rewrites
#     advanced, none in progress or scheduled, status ok): from then on a
#     crash or restart of the primary comes back with the restored data.
#  3. `REPLICAOF NO ONE`: the primary is a primary again and takes writes.
#     Its replicas reconnect (they refused to sync while it was syncing
#     itself) and resynchronise from it; we wait until as many replicas as
#     were online before are online again and caught up.
#  4. Stop the temporary redis.
# If anything fails after step 2, the EXIT trap runs `REPLICAOF NO ONE`, so
# the primary never stays attached to the temporary server.
set -eu
. ./common.sh

require_backup_dir
port=$(redis_port)
timeout=${RESTORE_TIMEOUT:-600}
from=${RESTORE_FROM:-$POD_NAME}
src="$BACKUP_DIR/$from/dump.rdb"
[ -f "$src" ] || die "no backup at $src"
[ -n "${RESTORE_PORT:-}" ] || die "RESTORE_PORT is not set"

role=$(field "$port" replication role)
if [ "$role" != master ]; then
	# Only a restore interrupted by SIGKILL leaves the primary a replica of
	# this task's temporary port; anything else is not ours to change.
	[ "$(field "$port" replication master_port)" = "$RESTORE_PORT" ] ||
		die "the redis on port $port is a $role, not a primary: refusing to restore into it"
fi

work="$MESOS_SANDBOX/restore-work"
rm -rf "$work"
mkdir -p "$work"
cp "$src" "$work/dump.rdb"
redis-check-rdb "$work/dump.rdb" >/dev/null || die "$src does not check: redis-check-rdb $src"

temp_pid=
attached=
cleanup() {
	rc=$?
	if [ -n "$attached" ]; then
		log "restore failed: detaching the primary from the temporary server"
		cli "$port" replicaof no one >/dev/null 2>&1 || true
	fi
	if [ -n "$temp_pid" ]; then
		kill "$temp_pid" 2>/dev/null || true
		wait "$temp_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# 1. The temporary server, holding the backup.
redis-server --port "$RESTORE_PORT" --bind 127.0.0.1 --protected-mode yes \
	--dir "$work" --dbfilename dump.rdb --appendonly no --save '' \
	--repl-diskless-sync-delay 0 --daemonize no --logfile "$work/redis.log" &
temp_pid=$!
temp_up() { [ "$(cli "$RESTORE_PORT" ping 2>/dev/null)" = PONG ]; }
wait_for "$timeout" "the temporary redis to load the backup" temp_up
log "backup $src loaded: $(cli "$RESTORE_PORT" info keyspace | tr -d '\r' | grep '^db' | tr '\n' ' ')"

# 2. The primary takes the backup's dataset through a full sync.
replicas_before=$(cli "$port" info replication | tr -d '\r' | grep -c '^slave[0-9]*:.*state=online' || true)
rewrites_before=$(field "$port" persistence aof_rewrites)
attached=1
reply=$(cli "$port" replicaof 127.0.0.1 "$RESTORE_PORT")
[ "$reply" = OK ] || die "REPLICAOF failed: $reply"
log "primary (port $port) syncing from the temporary redis on port $RESTORE_PORT"
synced() {
	[ "$(field "$port" replication master_link_status)" = up ] &&
		[ "$(field "$port" replication master_sync_in_progress)" = 0 ] &&
		[ "$(field "$port" persistence loading)" = 0 ]
}
wait_for "$timeout" "the primary to load the backup" synced
aof_rewritten() {
	cli "$port" info persistence | tr -d '\r' >"$work/persistence"
	get() { sed -n "s/^$1://p" "$work/persistence"; }
	[ "$(get aof_enabled)" = 1 ] &&
		[ "$(get aof_rewrites)" -gt "$rewrites_before" ] &&
		[ "$(get aof_rewrite_in_progress)" = 0 ] &&
		[ "$(get aof_rewrite_scheduled)" = 0 ] &&
		[ "$(get aof_last_bgrewrite_status)" = ok ]
}
wait_for "$timeout" "the primary's AOF rewrite of the restored data" aof_rewritten

# 3. A primary again.
reply=$(cli "$port" replicaof no one)
[ "$reply" = OK ] || die "REPLICAOF NO ONE failed: $reply"
attached=
log "primary restored and taking writes again: $(cli "$port" info keyspace | tr -d '\r' | grep '^db' | tr '\n' ' ')"

offset=$(field "$port" replication master_repl_offset)
replicas_caught_up() {
	n=0
	for line in $(cli "$port" info replication | tr -d '\r' | grep '^slave[0-9]*:'); do
		case "$line" in *state=online*) ;; *) continue ;; esac
		o=$(echo "$line" | sed -n 's/.*offset=\([0-9]*\).*/\1/p')
		[ -n "$o" ] && [ "$o" -ge "$offset" ] && n=$((n + 1))
	done
	[ "$n" -ge "$replicas_before" ]
}
wait_for "$timeout" "$replicas_before replica(s) to resynchronise" replicas_caught_up
log "restore from $src complete; $replicas_before replica(s) in sync"
