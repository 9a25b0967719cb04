#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs what it needs, builds with
# -Werror and ASan+UBSan, runs every test (unit, command line, integration) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

BUILD_DIR="${JOURNEYD_TEST_BUILD_DIR:-build/test}"
# -Og -g1 rather than -O2 -g: line tables are all the sanitizers' reports need, and the
# sanitized build compiles about three times faster (src/admin/server.cpp alone: 196 s ->
# 58 s; the whole build: 15 min of CPU instead of 43, that on a busier machine). The tests
# run as long either way.
cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1 -DNDEBUG" \
  -DJOURNEYD_WERROR=ON \
  -DJOURNEYD_SANITIZE=ON \
  -DJOURNEYD_TESTS=ON
cmake --build "$BUILD_DIR" -j "$(nproc)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# --timeout: a test that hangs fails after five minutes instead of holding CI to its limit.
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j "$(nproc)" "$@"
