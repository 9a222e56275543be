#!/usr/bin/env bash
# The style the tree is written in, checked (docs/style.md):
#   clang-format --dry-run -Werror on every tracked C++ file (.clang-format);
#   clang-tidy (.clang-tidy, findings are errors) on the .cpp files changed
#   since STYLE_BASE (default HEAD~1) plus uncommitted ones; TIDY=all checks
#   every .cpp. clang-tidy needs BUILD_DIR/compile_commands.json.
# Usage: scripts/style.sh [BUILD_DIR]        (default build)
#        TIDY=all scripts/style.sh build     TIDY=0: formatting only
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
status=0

mapfile -t sources < <(git ls-files '*.cpp' '*.hpp')
if ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "style: clang-format findings (fix with: clang-format -i FILE)"
  status=1
fi

if [ "${TIDY:-changed}" != 0 ]; then
  if [ ! -f "$build/compile_commands.json" ]; then
    echo "style: $build/compile_commands.json missing (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)"
    exit 1
  fi
  if [ "${TIDY:-changed}" = all ]; then
    mapfile -t tidy < <(git ls-files 'core/*.cpp' 'storage/*.cpp' 'migrations/*.cpp' 'streaming/*.cpp' 'src/*.cpp')
  else
    base=${STYLE_BASE:-HEAD~1}
    git rev-parse -q --verify "$base" >/dev/null || base=$(git rev-list --max-parents=0 HEAD)
    mapfile -t tidy < <({ git diff --name-only "$base" -- 'core/*.cpp' 'storage/*.cpp' 'migrations/*.cpp' 'streaming/*.cpp' 'src/*.cpp'; } | sort -u | while read -r f; do [ -f "$f" ] && echo "$f"; done)
  fi
  if [ ${#tidy[@]} -gt 0 ]; then
    echo "style: clang-tidy on ${#tidy[@]} file(s)"
    if ! printf '%s\n' "${tidy[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet --warnings-as-errors='*' 2>/dev/null; then
      echo "style: clang-tidy findings"
      status=1
    fi
  fi
fi
exit $status
