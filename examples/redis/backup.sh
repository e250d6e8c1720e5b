# backup.sh: the `backup` plan's task. Takes a fresh RDB snapshot of this
# instance's redis and copies it to $BACKUP_DIR/<pod instance>/dump.rdb.
#
# Why the snapshot is fresh: LASTSAVE (the time of the last successful
# save) has a one-second resolution and a save that was already running
# may have started before the writes this backup must hold. So: wait until
# no save runs, note LASTSAVE, wait until the clock is past it, then ask
# for a BGSAVE. A LASTSAVE later than the noted one can only come from a
# save that started after our request, so dump.rdb then holds every write
# acknowledged before the plan started.
set -eu
. ./common.sh

require_backup_dir
port=$(redis_port)
timeout=${BACKUP_TIMEOUT:-600}
dest="$BACKUP_DIR/$POD_NAME"

no_save_running() { [ "$(field "$port" persistence rdb_bgsave_in_progress)" = 0 ]; }
clock_past() { [ "$(cli "$port" time | head -n 1)" -gt "$1" ]; }

while :; do
	wait_for "$timeout" "a running save to end" no_save_running
	before=$(cli "$port" lastsave)
	wait_for 5 "the clock to pass LASTSAVE" clock_past "$before"
	# SCHEDULE: if an AOF rewrite is running, the save starts after it.
	reply=$(cli "$port" bgsave schedule)
	case "$reply" in
	"Background saving started" | "Background saving scheduled") break ;;
	*"already in progress"*) continue ;; # another save started meanwhile
	*) die "BGSAVE failed: $reply" ;;
	esac
done
log "BGSAVE requested (LASTSAVE was $before): $reply"

saved() {
	[ "$(cli "$port" lastsave)" -gt "$before" ] && no_save_running
}
deadline=$(($(date +%s) + timeout))
until saved; do
	if no_save_running &&
		[ "$(field "$port" persistence rdb_last_bgsave_status)" = err ] &&
		[ "$reply" = "Background saving started" ]; then
		die "BGSAVE failed (rdb_last_bgsave_status:err); see the server task's log"
	fi
	[ "$(date +%s)" -lt "$deadline" ] || die "BGSAVE did not finish in ${timeout}s"
	sleep 0.2
done

# dump.rdb is replaced by rename, so a later save cannot tear this copy.
dbfilename=$(cli "$port" config get dbfilename | sed -n 2p)
mkdir -p "$dest"
tmp="$dest/.dump.rdb.$$"
trap 'rm -f "$tmp"' EXIT
cp "redis-data/$dbfilename" "$tmp"
redis-check-rdb "$tmp" >/dev/null || die "the copied snapshot does not check: redis-check-rdb $tmp"
sync "$tmp" 2>/dev/null || sync
mv -f "$tmp" "$dest/dump.rdb"
{
	echo "instance=$POD_NAME"
	echo "service=$SERVICE_NAME"
	echo "role=$(field "$port" replication role)"
	echo "lastsave=$(cli "$port" lastsave)"
	echo "redis_version=$(field "$port" server redis_version)"
	cli "$port" info keyspace | tr -d '\r' | grep '^db' || true
} >"$dest/backup.info"
log "backup written to $dest/dump.rdb ($(wc -c <"$dest/dump.rdb") bytes)"
