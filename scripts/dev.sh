#!/usr/bin/env bash
# The project's front door on a Debian 12 machine:
#   scripts/dev.sh run [vocd args]   install build dependencies, build, start vocd with etc/vocd.yaml
#   scripts/dev.sh test              install build dependencies, build, run every test (ctest)
#   scripts/dev.sh build             install build dependencies and build only
# Options (before the command): --sanitize  build in build-asan/ with ASan + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages needed to build and test; kept in one place so README, CI and
# developers agree.
DEPS=(
  build-essential cmake pkg-config git python3 curl ca-certificates
  libevent-dev liblua5.4-dev liblmdb-dev lmdb-utils libyaml-dev libjansson-dev libssl-dev
  libcurl4-openssl-dev libutf8proc-dev libopencc-dev libglib2.0-dev libgmime-3.0-dev
  libcsv-dev check libsubunit-dev tzdata openssl
)
# Real mail peers for the e-mail channel's integration tests (tests skip cleanly without).
# Postfix only where no other MTA is installed: installing it would replace that one.
TEST_DEPS=(swaks)
if dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "install ok installed" ||
   [ ! -e /usr/sbin/sendmail ]; then
  TEST_DEPS+=(postfix)
fi

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DVOC_SANITIZE=ON)
  shift
fi
command=${1:-}
[ $# -gt 0 ] && shift

install_deps() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  # Postfix is only a test peer: no system mail configuration, nothing started on install.
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  install_deps "${DEPS[@]}"
  cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
  cmake --build "$build_dir" -j "$(nproc)"
}

case "$command" in
  run)
    build
    mkdir -p var
    exec "$build_dir/daemon/vocd" -c etc/vocd.yaml "$@"
    ;;
  test)
    install_deps "${TEST_DEPS[@]}"
    build
    exec ctest --test-dir "$build_dir" --output-on-failure -j 2 "$@"
    ;;
  build)
    build
    ;;
  *)
    sed -n '2,7p' "$0" >&2
    exit 2
    ;;
esac
