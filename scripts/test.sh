#!/usr/bin/env bash
# The whole test suite: installs deps, builds (Release-ish, ASan+UBSan, TSan), runs ctest on each.
# Then runs every libFuzzer target for FUZZ_SECONDS (default 30; FUZZ=0 skips).
# Usage: scripts/test.sh            (all three configurations)
#        SANITIZE=0 scripts/test.sh (skip the ASan+UBSan build)
#        TSAN=0 scripts/test.sh     (skip the ThreadSanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

passed=0
failed=0
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

run_config() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300) | tee "$summary"
  local total fails
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$summary")
  fails=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$summary")
  passed=$((passed + ${total:-0} - ${fails:-0}))
  failed=$((failed + ${fails:-0}))
}

# The chat page's pure logic (offsets, reducer, protocol client): Node's own runner.
if command -v node >/dev/null; then
  node --test tests/web/ | tee "$summary"
  passed=$((passed + $(sed -n 's/^# pass \([0-9]*\)/\1/p' "$summary")))
fi

run_config build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${SANITIZE:-1}" != 0 ]; then
  run_config build-asan -DCMAKE_BUILD_TYPE=Debug -DCHATSTREAM_SANITIZE=ON -DCHATSTREAM_BUILD_BENCH=OFF
fi
if [ "${TSAN:-1}" != 0 ]; then
  # Any race report aborts the process (the forked server binary included,
  # which inherits TSAN_OPTIONS), so a race fails the test that hit it.
  export TSAN_OPTIONS="halt_on_error=1 abort_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
  run_config build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHATSTREAM_TSAN=ON -DCHATSTREAM_BUILD_BENCH=OFF
  unset TSAN_OPTIONS
fi
if [ "${FUZZ:-1}" != 0 ] && command -v clang++ >/dev/null; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh
fi
echo "chatstream: $passed passed, $failed failed"
