#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (build/fuzz) and runs each for
# SECONDS (default 60) on a scratch copy of its seed corpus, one after the other. Fails when
# any target reports a crash, a leak, a timeout, running out of memory or a sanitizer error,
# and prints where the reproducer is (re-run it with: build/fuzz/tests/fuzz/fuzz_<target> FILE).
#   bash tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_EACH="${1:-60}"
shift || true
TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
  TARGETS=(expr loader template event state admin unsubscribe smtp_reply resp)
fi

bash deploy/install-deps.sh
if ! command -v clang++ >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends clang
fi

BUILD_DIR="${JOURNEYD_FUZZ_BUILD_DIR:-build/fuzz}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# -O1 with line tables: fast enough to fuzz, and the reports name file and line. Assertions
# stay on (no NDEBUG): a failed one is a finding too.
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
  -DJOURNEYD_FUZZ=ON -DJOURNEYD_TESTS=OFF -DJOURNEYD_WERROR=ON "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" --target journeyd_fuzzers -j "${JOURNEYD_FUZZ_JOBS:-2}"

# The longest input each target reads whole: a flows directory or an HTTP request is bigger
# than an expression or a token.
declare -A MAX_LEN=([expr]=512 [loader]=8192 [template]=4096 [event]=4096 [state]=4096
                    [admin]=8192 [unsubscribe]=512 [smtp_reply]=2048 [resp]=4096)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/journeyd-fuzz.XXXXXX")"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD_DIR/tests/fuzz/fuzz_$t"
  # The checked-in corpus is only read: what the run finds stays in the scratch copy.
  mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t"
  cp -r tests/fuzz/corpus/"$t"/. "$WORK/corpus/$t/" 2>/dev/null || true
  args=(-max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$t]:-4096}" -timeout=10
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t/")
  if [ -f "tests/fuzz/$t.dict" ]; then args+=(-dict="tests/fuzz/$t.dict"); fi
  echo "fuzz: $t for ${SECONDS_EACH}s" >&2
  rc=0
  "$bin" "${args[@]}" "$WORK/corpus/$t" >"$WORK/$t.log" 2>&1 || rc=$?
  cov="$(grep -ao 'cov: [0-9]*' "$WORK/$t.log" | tail -1 || true)"
  execs="$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$WORK/$t.log" | grep -o '[0-9]*$' || true)"
  runs="$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$WORK/$t.log" | grep -o '[0-9]*$' || true)"
  summary+=("$(printf '%-12s %10s runs %7s execs/s  %s' "$t" "${runs:-?}" "${execs:-?}" "${cov:-cov: ?}")")
  if ((rc != 0)); then
    failed+=("$t")
    echo "fuzz: $t FAILED (exit $rc); its log: $WORK/$t.log" >&2
    grep -a -m5 -E 'ERROR: |runtime error|SUMMARY|Test unit written' "$WORK/$t.log" >&2 || true
    for f in "$WORK/artifacts/$t"/*; do
      [ -e "$f" ] && echo "fuzz: reproducer: $f  (run: $bin $f)" >&2
    done
  fi
done

printf '%s\n' "${summary[@]}" >&2
if ((${#failed[@]})); then
  echo "fuzz: failed: ${failed[*]} (logs and reproducers in $WORK)" >&2
  exit 1
fi
rm -rf "$WORK"
echo "fuzz: no findings" >&2
