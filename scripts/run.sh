#!/usr/bin/env bash
# run.sh - sets up a fresh Debian 12 machine, builds holdfast and shows it
# working on the hello-world example.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
make -j"$(nproc)" build/holdfast >/dev/null

echo "== holdfast spec validate examples/hello-world.yml"
./build/holdfast spec validate examples/hello-world.yml
echo
echo "== holdfast spec render examples/hello-world.yml"
./build/holdfast spec render examples/hello-world.yml
