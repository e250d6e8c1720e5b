#!/usr/bin/env bash
# setup.sh - installs the Debian packages holdfast needs to build, run and
# test, when they are missing. Idempotent; needs root (or sudo) on Debian 12.
set -euo pipefail

PACKAGES=(
	# build
	gcc make clang libclang-rt-14-dev pkg-config
	libyaml-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev zlib1g-dev
	libsqlite3-dev libcmocka-dev libssl-dev
	# the shim: a static program on musl (Makefile, $(BUILD)/holdfast-shim)
	musl-tools linux-libc-dev
	# volumes: images formatted by the agent (mkfs.ext4), holdfast-volume
	e2fsprogs xfsprogs libfuse3-dev fuse3
	# tests and examples
	python3 python3-pytest python3-pytest-xdist procps iproute2 curl redis-server redis-tools
	postgresql
	# the pipeline example's producer, consumers and drain (examples/pipeline);
	# a Prometheus server an autoscale policy queries (tests/system/test_autoscale.py)
	python3-redis python3-psycopg2 prometheus
	# the dropbox example's API server talks to its object store with boto3
	# (examples/dropbox)
	python3-boto3
	etcd-server etcd-client openssl util-linux
	# the web UI's tests drive a headless browser over its DevTools protocol
	# (tests/system/test_ui.py)
	chromium python3-websocket
	# the S3 client's tests read back with s3cmd (tests/system/test_s3_client.py);
	# a volume grows under fio's writes (tests/system/test_volume_grow.py)
	s3cmd fio
	# packaging: the .deb, its units, man page, completion (make deb)
	dpkg-dev binutils systemd man-db groff-base bash-completion strace
)

# The S3 client's tests install s3rver with npm (tests/s3_harness.py):
# Debian's nodejs and npm, unless npm is there already. dpkg-query cannot
# tell: NodeSource's nodejs package carries its own npm (it "Provides" npm,
# which dpkg-query reports as not installed) and conflicts with Debian's.
if ! command -v npm >/dev/null 2>&1; then
	PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# A packaged redis-server may start a system instance; holdfast's examples
# and tests run their own, so it is left alone but not relied on.
