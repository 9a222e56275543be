#!/usr/bin/env bash
# CI smoke of the load harness (seconds, not minutes): a real server on a free
# port, 20 concurrent /tokens 500 streams, a resume run, and 200 idle
# connections; any failed stream, gap or overlap fails. Then `chatstream check`.
#   bench/smoke.sh CHATSTREAM_BINARY CHATSTREAM_LOAD_BINARY
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$1 load=$2
work=$(mktemp -d)
log=$work/server.log
"$bin" serve --db "$work/smoke.db" --port 0 --token-delay-ms 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(port_from_log "$log")
url=ws://127.0.0.1:$port/ws
"$load" --url "$url" --connections 20 --prompt '/tokens 500' --requests 40 --ramp 0.1 --server-pid $pid
"$load" --url "$url" --connections 10 --prompt '/tokens 300 /delay 1' --requests 10 --ramp 0.1 --resume-at 0.5
"$load" --url "$url" --connections 200 --idle-seconds 0.5 --server-pid $pid
kill -TERM $pid
wait $pid
trap 'rm -rf "$work"' EXIT
"$bin" check --db "$work/smoke.db"
