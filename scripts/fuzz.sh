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
  build-fuzz/fuzz/$t -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 "$work" \
    2>&1 | tail -n 3
  rm -rf "$work"
done
