#!/usr/bin/env bash
# The whole test suite: installs deps, builds (Release-ish, ASan+UBSan, TSan), runs ctest on each.
# Checks the style (scripts/style.sh). Then runs every libFuzzer target for FUZZ_SECONDS (default 30; FUZZ=0 skips).
# A throwaway PostgreSQL cluster (scripts/pg.sh) runs for the duration: the
# storage and migration suites run on SQLite and again on PostgreSQL (`pg/`
# names), plus the two-node tests. POSTGRES=0 skips all PostgreSQL tests.
# The summary counts passed, failed and skipped apart. With CI=true a stage
# that cannot run (node, clang++ missing) or a skipped Node test fails the
# run; a Node test that hit its timeout (`# cancelled`) fails it anywhere.
# Usage: scripts/test.sh            (all three configurations)
#        SANITIZE=0 scripts/test.sh (skip the ASan+UBSan build)
#        TSAN=0 scripts/test.sh     (skip the ThreadSanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

passed=0
failed=0
skipped=0
summary=$(mktemp)

# A stage that cannot run here (a tool missing) fails on CI, where every
# stage must run; locally it is counted as skipped, never as passed.
stage_missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL $1: $2 (CI runs every stage)"
    failed=$((failed + 1))
  else
    echo "SKIP $1: $2"
    skipped=$((skipped + 1))
  fi
}

# Counts a `node --test` run from its summary: `# cancelled` (a test that hit
# its timeout) is a failure, and so is a non-zero exit with nothing counted.
count_node() {
  local name=$1 rc=$2 p f c s
  p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$summary")
  f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$summary")
  c=$(sed -n 's/^# cancelled \([0-9]*\)/\1/p' "$summary")
  s=$(sed -n 's/^# skipped \([0-9]*\)/\1/p' "$summary")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${c:-0}))
  skipped=$((skipped + ${s:-0}))
  if [ "${p:-0}" = 0 ]; then
    echo "FAIL $name: no test passed"
    failed=$((failed + 1))
  elif [ "$rc" != 0 ] && [ "$((${f:-0} + ${c:-0}))" = 0 ]; then
    echo "FAIL $name: exit status $rc"
    failed=$((failed + 1))
  fi
  if [ "${s:-0}" != 0 ]; then
    echo "$name: $s skipped (see SKIP above)"
    [ "${CI:-}" != true ] || { echo "FAIL $name: skipped on CI"; failed=$((failed + 1)); }
  fi
}
trap 'rm -f "$summary"' EXIT

pg_flag=-DCHATSTREAM_TEST_POSTGRES=OFF
if [ "${POSTGRES:-1}" != 0 ]; then
  pg_dir=$(mktemp -d /tmp/chatstream-pg.XXXXXX)
  trap 'rm -f "$summary"; scripts/pg.sh stop "$pg_dir"' EXIT
  # An assignment, so a failed start stops the script (an eval of a
  # command substitution would hide it).
  pg_env=$(PG_FSYNC=off scripts/pg.sh start "$pg_dir")
  eval "$pg_env"
  export CHATSTREAM_TEST_PG_URL
  pg_flag=-DCHATSTREAM_TEST_POSTGRES=ON
else
  # The [postgres] cases and the pg/ runs are then not registered at all.
  stage_missing postgres "POSTGRES=0: the PostgreSQL tests are not registered"
fi

run_config() {
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$pg_flag" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  # A failing configuration is counted and the next one still runs: the
  # summary at the end says what failed where.
  local rc=0
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 300) | tee "$summary" || rc=$?
  local total fails skips
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$summary")
  fails=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$summary")
  # A case that called skip_test (exit 77, SKIP_RETURN_CODE): in ctest's
  # total, but neither passed nor failed.
  skips=$(grep -c '(Skipped)$' "$summary" || true)
  if [ "${total:-0}" = 0 ]; then
    echo "FAIL $dir: no test registered"
    failed=$((failed + 1))
  elif [ "$rc" != 0 ] && [ "${fails:-0}" = 0 ]; then
    echo "FAIL $dir: ctest exit status $rc"
    failed=$((failed + 1))
  fi
  passed=$((passed + ${total:-0} - ${fails:-0} - skips))
  failed=$((failed + ${fails:-0}))
  skipped=$((skipped + skips))
  [ "$skips" = 0 ] || echo "$dir: $skips skipped (ctest lists them under \"did not run\"; ctest -V -R NAME says why)"
}

# The chat page's pure logic (offsets, reducer, protocol client): Node's own runner.
if command -v node >/dev/null; then
  rc=0
  node --test tests/web/ | tee "$summary" || rc=$?
  count_node tests/web "$rc"
else
  stage_missing tests/web "node not installed"
fi

# The client package @chatstream/client (clients/js): connect(), resume, the
# AI SDK chunk mapping, with a fake socket. Against the binary and the mock
# server it runs in tests/e2e (client*.test.mjs) below.
if command -v node >/dev/null; then
  rc=0
  node --test clients/js/tests/ | tee "$summary" || rc=$?
  count_node clients/js "$rc"
else
  stage_missing clients/js "node not installed"
fi

run_config build -DCMAKE_BUILD_TYPE=RelWithDebInfo

# Style (docs/style.md): clang-format on every file, clang-tidy on the files
# the last commit changed, findings fail the run.
if command -v clang-format >/dev/null && command -v clang-tidy >/dev/null; then
  if scripts/style.sh build; then
    passed=$((passed + 1))
  else
    echo "FAIL style: clang-format or clang-tidy findings (scripts/style.sh)"
    failed=$((failed + 1))
  fi
else
  stage_missing style "clang-format/clang-tidy not installed"
fi

# End-to-end with Node against the binary just built (tests/e2e): the AI SDK's
# own client on /api/chat, @chatstream/client over /ws (resume after a drop
# and after a server restart, the AI SDK Chat through WebSocketChatTransport),
# and the chat page in headless Chromium; the reasoning parts against the
# mock server (tests/web/mock_server.mjs).
run_e2e() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    stage_missing tests/e2e "node/npm not installed"
    return
  fi
  if [ ! tests/e2e/node_modules/.package-lock.json -nt tests/e2e/package-lock.json ]; then
    if ! (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error); then
      echo "tests/e2e: npm ci failed"
      failed=$((failed + 1))
      return
    fi
  fi
  local rc=0
  CHATSTREAM_BIN="$PWD/build/src/chatstream" node --test tests/e2e/ | tee "$summary" || rc=$?
  count_node tests/e2e "$rc"
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
if [ "${FUZZ:-1}" != 0 ]; then
  if command -v clang++ >/dev/null; then
    FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh
  else
    stage_missing fuzz "clang++ not installed"
  fi
fi
echo "chatstream: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
