#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for
# FUZZ_SECONDS (default 30) on a copy of its seed corpus. Any crash fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHATSTREAM_FUZZ=ON -DCHATSTREAM_BUILD_TESTS=OFF \
  -DCHATSTREAM_BUILD_BENCH=OFF >/dev/null
targets=$(sed -n 's/^chatstream_add_fuzzer(\([a-z0-9_]*\).*/\1/p' fuzz/CMakeLists.txt)
cmake --build build-fuzz -j "$(nproc)" --target $targets
for t in $targets; do
  work=$(mktemp -d)
  corpus=fuzz/corpus/${t%_fuzz}
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
  echo "fuzz: $t for ${seconds}s"
  log="$work.log"
  if ! (cd "$work" && "$OLDPWD/build-fuzz/fuzz/$t" -max_total_time="$seconds" -max_len=65536 \
          -print_final_stats=1 -artifact_prefix="$work/" . >"$log" 2>&1); then
    # Show the finding (sanitizer report + the input as hex) and fail.
    grep -v '^#' "$log" | tail -n 40
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [ -f "$a" ] && { echo "input $a:"; od -c "$a" | head -20; }
    done
    rm -rf "$work" "$log"
    exit 1
  fi
  tail -n 3 "$log"
  rm -rf "$work" "$log"
done
