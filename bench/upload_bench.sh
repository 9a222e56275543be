#!/usr/bin/env bash
# Upload/download throughput of /api/files and the server's peak memory
# (issue 11: a 200 MB upload must not be held in memory).
#   bench/upload_bench.sh CHATSTREAM_BINARY [MB=200]
# Prints one JSON line per result (docs/design.md §8). Needs curl and sha256sum.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bin=$1 mb=${2:-200}
work=$(mktemp -d)
log=$work/server.log
"$bin" serve --db "$work/bench.db" --port 0 --max-upload-mb $((mb + 1)) >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(port_from_log "$log")
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$pid/status; }

head -c $((mb * 1024 * 1024)) /dev/urandom >"$work/big.bin"
expected=$(sha256sum "$work/big.bin" | cut -d' ' -f1)
# A tiny request first, so the baseline includes the lazily built parts.
curl -sS -o /dev/null -X POST -H 'Content-Type: text/plain' --data-binary 'warm up' \
  "http://127.0.0.1:$port/api/files?user=bench&filename=w.txt"
base_hwm=$(hwm)

# -T streams the file (curl never loads it whole); Expect: 100-continue is honoured.
start=$(date +%s.%N)
reply=$(curl -sS -X POST -T "$work/big.bin" -H 'Content-Type: application/pdf' \
  "http://127.0.0.1:$port/api/files?user=bench&filename=big.pdf")
end=$(date +%s.%N)
id=$(printf '%s' "$reply" | sed -n 's/.*"storageId":"\([0-9a-f]*\)".*/\1/p')
[ "$id" = "$expected" ] || { echo "storageId $id != sha256 $expected: $reply" >&2; exit 1; }
up_hwm=$(hwm)
secs=$(echo "$end - $start" | bc -l)
printf '{"bench":"upload","mb":%d,"seconds":%.3f,"mb_per_s":%.1f,"server_hwm_kb_before":%d,"server_hwm_kb_after":%d,"server_hwm_growth_kb":%d}\n' \
  "$mb" "$secs" "$(echo "$mb / $secs" | bc -l)" "$base_hwm" "$up_hwm" "$((up_hwm - base_hwm))"

start=$(date +%s.%N)
curl -sS -o "$work/back.bin" "http://127.0.0.1:$port/api/files/$id?user=bench"
end=$(date +%s.%N)
cmp -s "$work/big.bin" "$work/back.bin" || { echo "downloaded bytes differ" >&2; exit 1; }
down_hwm=$(hwm)
secs=$(echo "$end - $start" | bc -l)
printf '{"bench":"download","mb":%d,"seconds":%.3f,"mb_per_s":%.1f,"server_hwm_kb":%d,"server_rss_kb":%d}\n' \
  "$mb" "$secs" "$(echo "$mb / $secs" | bc -l)" "$down_hwm" "$(rss)"

# Dedup: the same bytes again are not stored twice.
curl -sS -o /dev/null -X POST -T "$work/big.bin" -H 'Content-Type: application/pdf' \
  "http://127.0.0.1:$port/api/files?user=other&filename=copy.pdf"
blobs=$(find "$work/files" -type f -not -path "$work/files/tmp/*" | wc -l)
printf '{"bench":"dedup","blobs_on_disk":%d,"expected":2}\n' "$blobs"
