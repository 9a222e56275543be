#!/usr/bin/env bash
# Streaming throughput with PostgreSQL next to SQLite, same binary, same run:
# one node on a SQLite file, one node on a local PostgreSQL 15 (fsync on,
# default settings otherwise), and two nodes on that PostgreSQL with the
# load split across them. Prints JSON lines (chatstream-load's) labelled
# server_sqlite / server_postgres / two_nodes_postgres_{a,b}.
#
#   BUILD_DIR=build bench/pg_streaming.sh        # streams "100 1000" by default
#   STREAMS="100" bench/pg_streaming.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
B=$build/bench
BIN=$build/src/chatstream
streams=${STREAMS:-"100 1000"}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pg_dir=$(mktemp -d /tmp/chatstream-bench-pg.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; scripts/pg.sh stop "$pg_dir"; rm -rf "$work"' EXIT
eval "$(scripts/pg.sh start "$pg_dir")"
url=$CHATSTREAM_TEST_PG_URL

wait_port() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
serve() { # port db [extra...]
  local port=$1 db=$2; shift 2
  "$BIN" --log-level warn serve --port "$port" --db "$db" --migrate --token-delay-ms 0 --rate-limit 0 --no-auto-title "$@" &
  wait_port "$port"
}
load() { # label port pid streams [user-prefix]
  "$B/chatstream-load" --url "ws://127.0.0.1:$2/ws" --connections "$4" --ramp 0.2 \
    --prompt '/tokens 2000' --requests "$4" --server-pid "$3" --label "$1" \
    --user-prefix "${5:-load-user-}" 2>/dev/null || true
}

for s in $streams; do
  serve 18491 "$work/sqlite-$s.db"; pid=$!
  load server_sqlite 18491 $pid "$s"
  kill -TERM $pid; wait $pid || true

  psql -q "$url" -c "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench" 2>/dev/null
  db="$url?options=-csearch_path%3Dbench"
  serve 18492 "$db"; pid=$!
  load server_postgres 18492 $pid "$s"
  kill -TERM $pid; wait $pid || true

  psql -q "$url" -c "DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench" 2>/dev/null
  serve 18493 "$db" --node-id a --threads 1; a=$!
  serve 18494 "$db" --node-id b --threads 1; b=$!
  half=$((s / 2))
  # Users stick to a node (as behind a load balancer with affinity): the
  # same user on both nodes at once contends for the same rows.
  load two_nodes_postgres_a 18493 $a "$half" a-user- > "$work/a.json" &
  la=$!
  load two_nodes_postgres_b 18494 $b "$half" b-user- > "$work/b.json"
  wait $la || true
  cat "$work/a.json" "$work/b.json"
  kill -TERM $a $b; wait $a $b || true
done
