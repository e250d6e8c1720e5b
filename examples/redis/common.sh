# Shared by backup.sh and restore.sh (examples/redis.yml). Both run as
# sidecar tasks in the pod instance of the redis they work on, with the
# instance's data volume at ./redis-data, and reach that redis on loopback.

log() { echo "$(date -u +%FT%TZ) ${POD_NAME}: $*"; }
die() { echo "$(date -u +%FT%TZ) ${POD_NAME}: error: $*" >&2; exit 1; }

# The server task writes its port (dynamic for replicas) into the volume on
# start: a sidecar does not see the ports of other resource sets.
redis_port() {
	test -s redis-data/redis.port ||
		die "redis-data/redis.port is missing: has this instance's server run?"
	cat redis-data/redis.port
}

# cli PORT ARGS...: one command against the redis on PORT.
cli() {
	_p=$1
	shift
	redis-cli -h 127.0.0.1 -p "$_p" "$@"
}

# field PORT SECTION NAME: one field of INFO SECTION (without the \r).
field() {
	cli "$1" info "$2" | tr -d '\r' | sed -n "s/^$3://p"
}

# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
	_secs=$1
	_deadline=$(($(date +%s) + $1))
	_what=$2
	shift 2
	until "$@"; do
		[ "$(date +%s)" -lt "$_deadline" ] ||
			die "timed out after ${_secs}s waiting for ${_what}"
		sleep 0.2
	done
}

require_backup_dir() {
	[ -n "${BACKUP_DIR:-}" ] ||
		die "no BACKUP_DIR: start the plan with -p BACKUP_DIR=/absolute/path"
	case "$BACKUP_DIR" in
	/*) ;;
	*) die "BACKUP_DIR must be an absolute path, not '$BACKUP_DIR'" ;;
	esac
}
