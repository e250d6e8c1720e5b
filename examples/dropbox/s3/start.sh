# The blobs service's server task (examples/dropbox/s3.yml): installs s3rver
# into $S3RVER_CACHE when it is not there, then execs node on it, so that
# node is the task's main process.
set -eu
prefix=$S3RVER_CACHE
script=$prefix/node_modules/s3rver/bin/s3rver.js
installed() {
	grep -q "\"version\": \"$S3RVER_VERSION\"" \
		"$prefix/node_modules/s3rver/package.json" 2>/dev/null
}
node=$(command -v node || command -v nodejs || true)
if [ -z "$node" ]; then
	echo "start.sh: node is not installed: run scripts/setup.sh (Debian's nodejs and npm)" >&2
	exit 1
fi
if ! installed; then
	npm=$(command -v npm || true)
	if [ -z "$npm" ]; then
		echo "start.sh: npm is not installed, so s3rver cannot be: run scripts/setup.sh" >&2
		exit 1
	fi
	mkdir -p "$prefix"
	# One install at a time on this node (flock from util-linux); the
	# others find it installed once they have the lock.
	exec 9>"$prefix/../.s3rver.lock"
	flock 9
	if ! installed; then
		echo "start.sh: installing s3rver@$S3RVER_VERSION into $prefix with npm" >&2
		# A task's HOME is its sandbox, so npm reads no ~/.npmrc: trust
		# the system's CA store, as Debian's own tools do (a proxy's CA
		# installed there included).
		ca=/etc/ssl/certs/ca-certificates.crt
		if [ -r "$ca" ]; then
			NODE_EXTRA_CA_CERTS=$ca
			export NODE_EXTRA_CA_CERTS
			set -- --cafile "$ca"
		else
			set --
		fi
		(cd "$prefix" && "$npm" install --prefix "$prefix" --no-audit --no-fund \
			--no-update-notifier --cache "$prefix/.npm" "$@" "s3rver@$S3RVER_VERSION" >&2)
	fi
	flock -u 9
	exec 9>&-
	installed || { echo "start.sh: s3rver@$S3RVER_VERSION is not in $prefix after npm install" >&2; exit 1; }
fi
mkdir -p s3-data/objects
# s3rver makes continuation tokens with DES, which OpenSSL 3 keeps in its
# legacy provider: without it every truncated listing fails with 500.
NODE_OPTIONS="${NODE_OPTIONS:-} --openssl-legacy-provider"
export NODE_OPTIONS
exec "$node" "$script" --directory s3-data/objects --address "$MESOS_CONTAINER_IP" \
	--port "$S3_PORT" --silent
