#!/usr/bin/env bash
# The whole test suite: installs deps, builds (Release-ish, ASan+UBSan, TSan), runs ctest on each.
# Then runs every libFuzzer target for FUZZ_SECONDS (default 30; FUZZ=0 skips).
# A throwaway PostgreSQL cluster (scripts/pg.sh) runs for the duration: the
# storage and migration suites run on SQLite and again on PostgreSQL (`pg/`
# names), plus the two-node tests. POSTGRES=0 skips all PostgreSQL tests.
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

pg_flag=-DCHATSTREAM_TEST_POSTGRES=OFF
if [ "${POSTGRES:-1}" != 0 ]; then
  pg_dir=$(mktemp -d /tmp/chatstream-pg.XXXXXX)
  trap 'rm -f "$summary"; scripts/pg.sh stop "$pg_dir"' EXIT
  eval "$(PG_FSYNC=off scripts/pg.sh start "$pg_dir")"
  export CHATSTREAM_TEST_PG_URL
  pg_flag=-DCHATSTREAM_TEST_POSTGRES=ON
fi

run_config() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$pg_flag" "$@" >/dev/null
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

# End-to-end with Node against the binary just built (tests/e2e): the AI SDK's
# own client on /api/chat, and the chat page in headless Chromium.
run_e2e() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP tests/e2e: node/npm not installed"
    return
  fi
  if [ ! tests/e2e/node_modules/.package-lock.json -nt tests/e2e/package-lock.json ]; then
    if ! (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error); then
      echo "tests/e2e: npm ci failed"
      failed=$((failed + 1))
      return
    fi
  fi
  CHATSTREAM_BIN="$PWD/build/src/chatstream" node --test tests/e2e/ | tee "$summary" || true
  passed=$((passed + $(sed -n 's/^# pass \([0-9]*\)/\1/p' "$summary")))
  failed=$((failed + $(sed -n 's/^# fail \([0-9]*\)/\1/p' "$summary")))
  local skipped
  skipped=$(sed -n 's/^# skipped \([0-9]*\)/\1/p' "$summary")
  [ "${skipped:-0}" = 0 ] || echo "tests/e2e: $skipped skipped (see SKIP above)"
}
run_e2e
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
[ "$failed" -eq 0 ]
