# The db service's server task (examples/dropbox/postgresql.yml): creates the
# cluster on the first start, sets the role's password at every start, then
# execs postgres, so that postgres is the task's main process.
set -eu
B=/usr/lib/postgresql/15/bin
D=pgdata/db
if [ ! -x "$B/postgres" ]; then
	echo "start.sh: $B/postgres is missing: install Debian's postgresql (scripts/setup.sh)" >&2
	exit 1
fi
# single DIR SQL...: runs each statement (one per line) in single-user
# mode, which reads them from stdin; fails on the first error.
single() {
	dir=$1
	shift
	out=$(printf '%s\n' "$@" | "$B/postgres" --single -D "$dir" postgres 2>&1) || {
		printf '%s\n' "$out" >&2
		return 1
	}
	if printf '%s\n' "$out" | grep -q 'ERROR:'; then
		printf '%s\n' "$out" | grep -v PASSWORD >&2
		return 1
	fi
}
if [ ! -f "$D/PG_VERSION" ]; then
	rm -rf "$D.new"
	pw=$(mktemp)
	printf '%s\n' "$DB_PASSWORD" > "$pw"
	"$B/initdb" -D "$D.new" -U postgres --pwfile="$pw" --auth-local=trust \
		--auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$pw"
	# Clients come from the node's address, not only from loopback.
	printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' \
		>> "$D.new/pg_hba.conf"
	single "$D.new" 'CREATE ROLE dropbox LOGIN' 'CREATE DATABASE dropbox OWNER dropbox'
	sync
	# A crash above leaves only $D.new, which the next start redoes.
	mv "$D.new" "$D"
fi
# The volume is this task's alone: a lock file in it is stale (the shim
# ends every process of a task that exited).
rm -f "$D/postmaster.pid"
# The password comes from the option at every start, through stdin, so it
# is never on a command line. (A password is one line.)
esc=$(printf '%s' "$DB_PASSWORD" | head -n 1 | sed "s/'/''/g")
single "$D" "ALTER ROLE dropbox PASSWORD '$esc'"
exec "$B/postgres" -D "$D" -c listen_addresses="$MESOS_CONTAINER_IP" \
	-c port="$PG_PORT" -c unix_socket_directories='' \
	-c password_encryption=scram-sha-256
