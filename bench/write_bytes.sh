#!/usr/bin/env bash
# Database bytes written while streaming, against answer length (issue 19):
# one `/delay 1 /tokens N` generation per fresh server, for N = 2,000 and
# 20,000; `write_bytes` of the server from /proc/PID/io before and after.
# Append-only flushes make it linear (ratio ≈ 10); rewriting the whole text
# every flush made it quadratic. One JSON line per run, then the ratio.
#
#   bench/write_bytes.sh [BUILD_DIR]      BASE_BIN=... for a baseline next to it
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build}
LOAD=$build/bench/chatstream-load
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

written() { sed -n 's/^write_bytes: //p' "/proc/$1/io"; }

one() { # label binary tokens
  local dir="$work/$1-$3"; mkdir -p "$dir"
  "$2" serve --port 0 --db "$dir/chatstream.db" --rate-limit 0 >"$dir/server.log" 2>&1 &
  local pid=$!
  local port; port=$(port_from_log "$dir/server.log")
  sleep 0.3
  local before; before=$(written "$pid")
  "$LOAD" --url "ws://127.0.0.1:$port/ws" --prompt "/delay 1 /tokens $3" --requests 1 >/dev/null 2>&1
  sleep 0.2 # the final commit and the WAL write are done by now
  local after; after=$(written "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  echo "{\"bench\":\"write_bytes\",\"label\":\"$1\",\"tokens\":$3,\"write_bytes\":$((after - before))}"
  echo $((after - before)) >"$work/$1-$3.bytes"
}

labels=(chatstream); bins=("$build/src/chatstream")
if [ -n "${BASE_BIN:-}" ]; then labels+=(chatstream_base); bins+=("$BASE_BIN"); fi
for i in "${!labels[@]}"; do
  one "${labels[$i]}" "${bins[$i]}" 2000
  one "${labels[$i]}" "${bins[$i]}" 20000
  small=$(cat "$work/${labels[$i]}-2000.bytes"); big=$(cat "$work/${labels[$i]}-20000.bytes")
  python3 -c "print('{\"bench\":\"write_bytes_ratio\",\"label\":\"${labels[$i]}\",\"ratio_20k_over_2k\":%.2f}' % ($big / max(1, $small)))"
done
