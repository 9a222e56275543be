#!/usr/bin/env bash
# Installs exactly the Debian 12 packages chatstream needs to build and test.
# Idempotent and quiet: does nothing (and prints nothing) when all are present.
set -euo pipefail

packages=(
  build-essential clang libclang-rt-14-dev clang-format clang-tidy cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsimdjson-dev libsqlite3-dev sqlite3 libsqlitecpp-dev
  libssl-dev libcli11-dev libspdlog-dev libfmt-dev libjwt-dev
  catch2 python3
)

# The end-to-end tests (tests/e2e): Node with npm, and headless Chromium.
packages+=(chromium)

# PostgreSQL: libpq to build, the server for the throwaway test cluster
# (scripts/pg.sh).
packages+=(libpq-dev postgresql-15)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# By command, not by package: a Node from elsewhere (e.g. NodeSource, which
# bundles npm) must not be replaced by Debian's.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Tests start their own cluster; no system-wide "main" cluster on 5432.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  $SUDO mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
