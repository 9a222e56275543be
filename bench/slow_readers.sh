#!/usr/bin/env bash
# Never-reading clients next to a normal one (issue 19): 50 connections each
# start a `/tokens 200000` generation and never read a byte, while one normal
# client streams paced answers. Prints two JSON lines: the never-read run
# (server RSS before/after) and the normal client's run (its largest
# inter-event gap is `inter_event.max_ms`).
#
#   bench/slow_readers.sh [BUILD_DIR]     (default build)
# Env: READERS=50 TOKENS=200000 HOLD=20
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build}
BIN=$build/src/chatstream
LOAD=$build/bench/chatstream-load
readers=${READERS:-50}
tokens=${TOKENS:-200000}
hold=${HOLD:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$BIN" serve --port 0 --db "$work/chatstream.db" --rate-limit 0 \
  --daily-message-limit 0 >"$work/server.log" 2>&1 &
pid=$!
port=$(port_from_log "$work/server.log")
sleep 0.5
"$LOAD" --url "ws://127.0.0.1:$port/ws" --connections "$readers" --idle-seconds "$hold" \
  --idle-generate --prompt "/tokens $tokens" --user-prefix never-read- --server-pid "$pid" \
  --label "never_read_x$readers" 2>/dev/null &
idle=$!
sleep 2 # the never-reading streams are running
"$LOAD" --url "ws://127.0.0.1:$port/ws" --connections 1 --requests 3 \
  --prompt '/delay 20 /tokens 250' --user-prefix normal- --server-pid "$pid" \
  --label "normal_next_to_${readers}_never_read" 2>/dev/null
wait "$idle"
kill -TERM "$pid"; wait "$pid" || true
"$BIN" check --db "$work/chatstream.db" >/dev/null || { echo "chatstream check failed" >&2; exit 1; }
