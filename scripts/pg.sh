#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests and benchmarks.
#
#   eval "$(scripts/pg.sh start /tmp/chatstream-pg)"  # exports CHATSTREAM_TEST_PG_URL
#   scripts/pg.sh stop /tmp/chatstream-pg
#
# initdb refuses to run as root, so as root the cluster belongs to the
# `postgres` user (created by Debian's postgresql package). It listens on
# 127.0.0.1 and a socket in its own directory, with trust authentication:
# nothing outside this machine can reach it and it holds only test data.
# PG_FSYNC=off (default on) trades durability for speed in the unit suites.
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?directory}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
start)
  if [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    port=$(cat "$dir/port")
  else
    rm -rf "$dir"; mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start -o \
      "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${PG_FSYNC:-on} \
       -c shared_buffers=256MB -c max_wal_size=2GB" >/dev/null
  fi
  echo "export CHATSTREAM_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
