#!/usr/bin/env bash
# Offline 001 backfill against its two json_each ceilings (issue 21), as whole
# processes, interleaved run by run on fresh copies of one generated file:
#   ceiling_same  sqlite3 DB < bench/json_each_ceiling.sql      (same schema)
#   ceiling_int   sqlite3 DB < bench/json_each_int_ceiling.sql  (integer keys)
#   chatstream    chatstream migrate --db DB up                 (offline: no server attached)
#   chatstream_attached  the same with another connection open     (online-safe path: WAL, indexes kept)
# and 002 against three `ALTER TABLE messages DROP COLUMN`s on the migrated copy.
# One JSON line per run (seconds, user, sys, write_bytes from the kernel's
# block-output count, per input byte), then medians and ratios.
#
#   bench/backfill.sh [BUILD_DIR] [MESSAGES] [default|heavy] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; n=${2:-200000}; profile=${3:-heavy}; runs=${4:-3}
bin=$build/src/chatstream
work=${BACKFILL_DIR:-$(mktemp -d)}
trap 'rm -rf "$work"' EXIT
flags=(); [ "$profile" = heavy ] && flags=(--heavy)
"$build/bench/legacy_gen" --out "$work/legacy.db" --messages "$n" --no-edge-cases --with-schema "${flags[@]}" >/dev/null
input=$(stat -c %s "$work/legacy.db")
echo "{\"bench\":\"backfill\",\"phase\":\"generate\",\"profile\":\"$profile\",\"messages\":$n,\"bytes\":$input}"

# timed LABEL CMD...: runs CMD under /usr/bin/time; %O counts 512-byte blocks
# written (the kernel's write_bytes), %e/%U/%S wall, user and system seconds.
timed() {
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %O" -o "$work/time" "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; return 1; }
  read -r wall user sys blocks <"$work/time"
  python3 - "$label" "$wall" "$user" "$sys" "$blocks" <<PY
import sys
label, wall, user, sys_, blocks = sys.argv[1], *map(float, sys.argv[2:])
wb = int(blocks) * 512
print('{"bench":"backfill","profile":"$profile","impl":"%s","messages":$n,"seconds":%.3f,"user_s":%.2f,"sys_s":%.2f,'
      '"msg_per_s":%.0f,"write_bytes":%d,"written_per_input_byte":%.3f}' % (label, wall, user, sys_, $n / wall, wb, wb / $input))
PY
}

for run in $(seq "$runs"); do
  for impl in ceiling_same ceiling_int chatstream chatstream_attached; do
    cp "$work/legacy.db" "$work/db"; rm -f "$work/db-wal" "$work/db-shm"; sync
    case $impl in
      ceiling_same) timed $impl sh -c "sqlite3 '$work/db' < bench/json_each_ceiling.sql" ;;
      ceiling_int) timed $impl sh -c "sqlite3 '$work/db' < bench/json_each_int_ceiling.sql" ;;
      chatstream_attached)
        # A reader that keeps the file open, as a server would: SQLite then
        # refuses to leave WAL and migrate up stays on the online-safe path.
        python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM messages").fetchall(); time.sleep(600)' "$work/db" &
        holder=$!; sleep 0.5
        timed $impl "$bin" migrate --db "$work/db" up
        kill "$holder"; wait "$holder" 2>/dev/null || true
        grep -q "online-safe settings" "$work/out" || echo '{"warning":"attached run took the offline path"}'
        ;;
      chatstream)
        timed $impl "$bin" migrate --db "$work/db" up
        "$bin" migrate --db "$work/db" verify >/dev/null
        cp "$work/db" "$work/migrated.db"; sync
        timed cleanup_002 "$bin" migrate --db "$work/db" cleanup
        cp "$work/migrated.db" "$work/db"; rm -f "$work/db-wal" "$work/db-shm"; sync
        timed drop_column_ref sqlite3 "$work/db" "ALTER TABLE messages DROP COLUMN attachments; ALTER TABLE messages DROP COLUMN tool_calls; ALTER TABLE messages DROP COLUMN partial_tool_calls;"
        ;;
    esac
  done
done | tee "$work/lines"

python3 - "$work/lines" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"impl"' in l]
by = {}
for r in rows: by.setdefault(r['impl'], []).append(r)
med = {k: statistics.median(x['seconds'] for x in v) for k, v in by.items()}
# Ratios run by run (the machine is shared: pairs from the same round compare).
def ratios(a, b): return [bb['seconds'] / aa['seconds'] for aa, bb in zip(by[a], by[b])]
out = {"bench": "backfill_summary", "median_seconds": med,
       "vs_ceiling_same": ratios('chatstream', 'ceiling_same'),
       "vs_ceiling_int": ratios('chatstream', 'ceiling_int'),
       "attached_vs_ceiling_same": ratios('chatstream_attached', 'ceiling_same'),
       "cleanup_vs_drop_column": ratios('cleanup_002', 'drop_column_ref')}
print(json.dumps(out))
PY
