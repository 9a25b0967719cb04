#!/usr/bin/env bash
# Try journeyd on a fresh Debian 12 machine: installs what it needs, builds, checks the
# shipped flows and runs them over a month of sample customer events on a virtual clock.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh >&2
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOURNEYD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null

echo "== journeyctl validate flows/"
build/release/src/journeyctl validate flows/
echo
echo "== journeyctl simulate --flows flows --events tests/fixtures/events/demo.jsonl"
build/release/src/journeyctl simulate --flows flows --events tests/fixtures/events/demo.jsonl "$@"
