#!/usr/bin/env bash
# Soak run (issue #9): a fresh server, MINUTES (default 3) of mixed load from
# chatstream-soak (streams, mid-stream disconnects + resumes, abandons,
# cancels, queries, tool calls, upstream failures), RSS sampled every second.
# Then SIGTERM, `chatstream check` on the database (must exit 0), then a
# kill -9 of a second server under the same load and check again after the
# restart. JSON lines on stdout; exit 1 on any error or inconsistency.
#
#   bench/soak.sh                  # 3 minutes, 24 workers, build dir ./build
#   MINUTES=10 WORKERS=48 BUILD_DIR=build-bench bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
minutes=${MINUTES:-3}
workers=${WORKERS:-24}
port=${PORT:-18497}
cmake --build "$build" --target chatstream chatstream-soak >/dev/null
BIN=$build/src/chatstream
SOAK=$build/bench/chatstream-soak
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
db=$work/soak.db
ulimit -n 65536 2>/dev/null || true

wait_port() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
check() { # label
  local out rc=0
  out=$("$BIN" --log-level warn check --db "$db" --json) || rc=$?
  echo "{\"bench\":\"soak-check\",\"after\":\"$1\",\"exit\":$rc,\"report\":$out}"
  return $rc
}

status=0
"$BIN" --log-level warn serve --db "$db" --port "$port" --flush-ms 50 --rate-limit 0 >"$work/server.log" 2>&1 &
pid=$!
wait_port "$port"
"$SOAK" --port "$port" --server-pid "$pid" --minutes "$minutes" --workers "$workers" || status=1
kill -TERM "$pid"; wait "$pid" || status=1
check sigterm || status=1

# kill -9 in the middle of the same load, restart (marks interrupted), check.
"$BIN" --log-level warn serve --db "$db" --port "$port" --rate-limit 0 >>"$work/server.log" 2>&1 &
pid=$!
wait_port "$port"
"$SOAK" --port "$port" --minutes 0.5 --workers "$workers" --warmup-seconds 0 >/dev/null 2>&1 &
soak=$!
sleep 15
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
wait "$soak" 2>/dev/null || true # its errors after the kill are expected
"$BIN" --log-level warn serve --db "$db" --port "$port" --rate-limit 0 >>"$work/server.log" 2>&1 &
pid=$!
wait_port "$port"
kill -TERM "$pid"; wait "$pid" || status=1
check kill-9-restart || status=1
grep -E '"level":"(error|critical)"|\[(error|critical)\]' "$work/server.log" | sort | uniq -c | sort -rn | head -5 >&2 || true
exit $status
