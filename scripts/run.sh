#!/usr/bin/env bash
# One command from a fresh clone to a running server: deps, build, serve.
# Extra arguments go to `chatstream serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target chatstream
mkdir -p data
exec build/src/chatstream serve --db ./data/chatstream.db "$@"
