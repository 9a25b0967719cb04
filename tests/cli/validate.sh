#!/usr/bin/env bash
# journeyctl validate: exit 0 when valid, 1 on any error (each as file:line:column), 2 on usage.
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$CTL" validate flows/) || fail "shipped flows do not validate: $out"
# A glob, quoted so that journeyctl expands it, and one that matches nothing.
out=$("$CTL" validate 'flows/*.yaml' 'flows/templates/nl/*.yaml') || fail "glob: $out"
out=$("$CTL" validate 'flows/nothing*.yaml'); rc=$?
[ "$rc" = 1 ] || fail "a glob without matches: expected exit 1, got $rc"
grep -qF 'flows/nothing*.yaml: error: no such file or directory' <<<"$out" || fail "glob error: $out"
# A tests/ folder holds flow tests: validate reads them as such.
out=$("$CTL" validate flows/tests/ flows/tests/winback.yaml) || fail "flow tests: $out"
mkdir -p "$tmp/t/tests" && cp tests/fixtures/flow_tests/malformed.yaml "$tmp/t/tests/"
out=$("$CTL" validate "$tmp/t/tests/"); rc=$?
[ "$rc" = 1 ] || fail "malformed flow test: expected exit 1, got $rc"
grep -qF "$tmp/t/tests/malformed.yaml:7:9: error: unknown key 'evnt' in an event" <<<"$out" ||
  fail "flow test not read as one: $out"

mkdir -p "$tmp/flows/templates"
cat > "$tmp/flows/broken.yaml" <<'YAML'
flow: broken
trigger:
  event: signup
steps:
  - wiat: 3d
  - send: tips
    id: a
  - wait: 3x
YAML
out=$("$CTL" validate "$tmp/flows/broken.yaml"); rc=$?
[ "$rc" = 1 ] || fail "expected exit 1, got $rc"
grep -qF "$tmp/flows/broken.yaml:5:5: error: unknown step kind 'wiat' — did you mean 'wait'?" <<<"$out" ||
  fail "missing wiat error in: $out"
grep -qF "$tmp/flows/broken.yaml:6:11: error: template 'tips' not found in $tmp/flows/templates" <<<"$out" ||
  fail "missing template error in: $out"
grep -qF "$tmp/flows/broken.yaml:8:11: error: duration '3x': use s, m, h, d or w" <<<"$out" ||
  fail "missing duration error in: $out"

"$CTL" validate >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "no path: expected exit 2, got $rc"
"$CTL" validate --bogus flows >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || fail "unknown option: expected exit 2, got $rc"
"$CTL" validate "$tmp/nope.yaml" >/dev/null; rc=$?
[ "$rc" = 1 ] || fail "missing file: expected exit 1, got $rc"
echo "validate: ok"
