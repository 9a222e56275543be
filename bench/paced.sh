#!/usr/bin/env bash
# Paced streaming (issue 19): every stream paced at 50 tokens/s (`/delay 20
# /tokens 250`), as a real model streams, at 500, 2,000 and 5,000 concurrent
# streams; then the zero-delay saturation row at 100 and 1,000 streams. Each
# load runs against, in this order and in the same sitting:
#   beast_frame_ceiling  frame-ceiling-server (no DB, no engine; the ceiling)
#   chatstream           this build's server (default flags + --rate-limit 0)
#   chatstream_base      BASE_BIN, when set (a baseline build of another commit)
# One JSON line per run (chatstream-load's), with server CPU-seconds and
# tokens per server CPU-second; `chatstream check` runs after every server.
#
#   bench/paced.sh [BUILD_DIR]            STREAMS="500 2000 5000" SAT="100 1000"
#   BASE_BIN=/path/to/old/chatstream bench/paced.sh build
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build}
B=$build/bench
BIN=$build/src/chatstream
streams=${STREAMS:-"500 2000 5000"}
sat=${SAT-"100 1000"}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

load() { # label port pid connections prompt
  "$B/chatstream-load" --url "ws://127.0.0.1:$2/ws" --connections "$4" --ramp 2 \
    --prompt "$5" --requests "$4" --server-pid "$3" --label "$1" 2>/dev/null || true
}

run_ceiling() { # connections prompt
  "$B/frame-ceiling-server" --port 0 >"$work/ceiling.log" 2>&1 &
  local pid=$!
  local port=""
  for _ in $(seq 50); do port=$(sed -n 's/listening on \([0-9]*\)/\1/p' "$work/ceiling.log"); [ -n "$port" ] && break; sleep 0.1; done
  load beast_frame_ceiling "$port" "$pid" "$1" "$2"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

run_server() { # label binary connections prompt
  local db="$work/$1-$3/chatstream.db"
  mkdir -p "$(dirname "$db")"
  "$2" serve --port 0 --db "$db" --rate-limit 0 --daily-message-limit 0 >"$work/server.log" 2>&1 &
  local pid=$!
  local port
  port=$(port_from_log "$work/server.log")
  load "$1" "$port" "$pid" "$3" "$4"
  kill -TERM "$pid"; wait "$pid" || true
  "$2" check --db "$db" >/dev/null || echo "{\"bench\":\"paced\",\"label\":\"$1\",\"check\":\"FAILED\"}"
}

round() { # connections prompt
  run_ceiling "$1" "$2"
  run_server chatstream "$BIN" "$1" "$2"
  if [ -n "${BASE_BIN:-}" ]; then run_server chatstream_base "$BASE_BIN" "$1" "$2"; fi
}

for n in $streams; do round "$n" '/delay 20 /tokens 250'; done
for n in $sat; do round "$n" '/tokens 2000'; done
