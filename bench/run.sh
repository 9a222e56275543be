#!/usr/bin/env bash
# Runs the whole benchmark suite on this machine and writes JSON lines to
# bench/results.jsonl and a Markdown table to bench/RESULTS.md (section
# "Latest run"). Minutes, not seconds: not part of the test suite.
#
#   bench/run.sh                 # everything
#   QUICK=1 bench/run.sh         # smaller sizes (skips 1M-message migration, 1,000 streams)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# BUILD_DIR=build reuses the test build (RelWithDebInfo) instead of a Release one.
build=${BUILD_DIR:-build-bench}
if [ "$build" = build-bench ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHATSTREAM_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

B=$build/bench
BIN=$build/src/chatstream
out=bench/results.jsonl
: > "$out"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
emit() { tee -a "$out"; }

wait_port() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

# (0) Streaming at the pace users see first (bench/paced.sh): 500, 2,000 and
# 5,000 streams at 50 tokens/s next to the paced frame ceiling, then the
# zero-delay saturation rows. Set BASE_BIN to put a baseline build beside it.
STREAMS=${PACED_STREAMS:-"500 2000 5000"} SAT="100 1000" bench/paced.sh "$build" | emit

# (1) Migration backfill / cleanup next to the pure-SQL ceiling.
if [ -x "$B/migration_bench" ]; then
  sizes="834 100000 1000000"; [ -n "${QUICK:-}" ] && sizes="834 100000"
  # CHATSTREAM_BENCH_PG_URL: also run 001/verify/002 and `migrate copy` on
  # PostgreSQL (the URL's schema is emptied; point it at a scratch database).
  pg=(); [ -n "${CHATSTREAM_BENCH_PG_URL:-}" ] && pg=(--db "$CHATSTREAM_BENCH_PG_URL")
  for n in $sizes; do "$B/migration_bench" --messages "$n" --dir "$work" "${pg[@]}" | emit; done
fi

# (3) Writer: committed upserts/s vs one transaction per row.
"$B/writer_bench" --rows 200000 --dir "$work" | emit

# (2) Streaming: full server (file DB), server with its DB on tmpfs, and the
# minimal Beast frame server, at 1, 100 and 1,000 concurrent streams.
streams="1 100 1000"; [ -n "${QUICK:-}" ] && streams="1 100"
run_load() { # label port pid
  for s in $streams; do
    "$B/chatstream-load" --url "ws://127.0.0.1:$2/ws" --connections "$s" --ramp 0.2 \
      --prompt '/tokens 2000' --requests "$s" --server-pid "$3" --label "$1" 2>/dev/null | emit || true
  done
}
start_server() { # port db
  "$BIN" --log-level warn serve --port "$1" --db "$2" --token-delay-ms 0 --rate-limit 0 &
  wait_port "$1"
}

start_server 18481 "$work/file/chatstream.db"; pid=$!
# Idle connections first, on a fresh process: after a load run the allocator
# keeps freed memory and would hide the per-connection cost.
"$B/chatstream-load" --url ws://127.0.0.1:18481/ws --connections 10000 --idle-seconds 2 \
  --server-pid $pid --label server_idle 2>/dev/null | emit || true
run_load server_file_db 18481 $pid
kill -TERM $pid; wait $pid || true

shm=/dev/shm/chatstream-bench-$$; mkdir -p "$shm"
start_server 18482 "$shm/chatstream.db"; pid=$!
run_load server_tmpfs_db 18482 $pid
kill -TERM $pid; wait $pid || true
rm -rf "$shm"

"$B/frame-ceiling-server" --port 18483 >/dev/null & pid=$!
sleep 0.3
run_load beast_frame_ceiling 18483 $pid
kill -TERM $pid; wait $pid || true

python3 bench/results_table.py "$out" bench/RESULTS.md
echo "wrote $out and bench/RESULTS.md"
