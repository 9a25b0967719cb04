#!/usr/bin/env bash
# journeyctl test: the shipped flows' tests pass; a failing test prints file:line: expected ...
# got ... and exits 1; a malformed test file gets file:line:column errors like validate.
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$CTL" test flows/tests/) || fail "shipped flow tests fail: $out"
for f in welcome abandoned_cart birthday points_expiry winback review_request; do
  grep -q "^ok    flows/tests/$f.yaml:" <<<"$out" || fail "no passing test for $f in: $out"
done
grep -q '^FAIL' <<<"$out" && fail "a failure in: $out"
grep -Eq '^[0-9]+ tests in 6 files: [0-9]+ passed, 0 failed$' <<<"$out" || fail "no summary in: $out"
# The default path is flows/tests/, and a glob is expanded by journeyctl itself.
def=$("$CTL" test) || fail "default path: $def"
[ "$(tail -1 <<<"$def")" = "$(tail -1 <<<"$out")" ] || fail "default path ran other tests: $def"
one=$("$CTL" test 'flows/tests/win*.yaml') || fail "glob: $one"
grep -q '^2 tests in 1 file: 2 passed, 0 failed$' <<<"$one" || fail "glob summary: $one"

fx=tests/fixtures/flow_tests/failing.yaml
out=$("$CTL" test "$fx"); rc=$?
[ "$rc" = 1 ] || fail "failing test: expected exit 1, got $rc"
grep -qF "$fx:17: expected winback mail3 at 2026-08-18T10:00:00Z (+225d), got mail3 (winback_discount_reminder) at 2026-08-17T10:00:00Z (+224d)" <<<"$out" ||
  fail "no message for the wrong day in: $out"
grep -qF "$fx:28: expected winback mail2 at 2026-08-03T10:00:00Z (+210d), got no more winback mails (the journey ended at 2026-07-24T10:00:00Z (+200d): exit_on:purchase)" <<<"$out" ||
  fail "no message for the halted series in: $out"
grep -qF "$fx:30: expected a step 'mail6' in winback, got none of that id" <<<"$out" ||
  fail "no message for the unknown step in: $out"
grep -q "^ok    $fx:32  this one passes$" <<<"$out" || fail "the passing test in: $out"
grep -q '^3 tests in 1 file: 1 passed, 2 failed$' <<<"$out" || fail "summary in: $out"

# One failing file among passing ones still fails the run.
"$CTL" test flows/tests/ "$fx" >/dev/null; rc=$?
[ "$rc" = 1 ] || fail "mixed run: expected exit 1, got $rc"

bad=tests/fixtures/flow_tests/malformed.yaml
out=$("$CTL" test "$bad"); rc=$?
[ "$rc" = 1 ] || fail "malformed: expected exit 1, got $rc"
grep -qF "$bad:7:9: error: unknown key 'evnt' in an event — did you mean 'event'?" <<<"$out" ||
  fail "no unknown-key error in: $out"
grep -qF "$bad:8:13: error: offset '+3x': write + and a duration such as +3d or +1d9h" <<<"$out" ||
  fail "no offset error in: $out"
grep -qF "$bad:12:11: error: which flow?" <<<"$out" || fail "no flow error in: $out"

printf 'tests: [\n' > "$tmp/broken.yaml"
out=$("$CTL" test "$tmp/broken.yaml"); rc=$?
[ "$rc" = 1 ] || fail "unparsable: expected exit 1, got $rc"
grep -q "^$tmp/broken.yaml:[0-9]*:[0-9]*: error: cannot read this test file" <<<"$out" ||
  fail "no YAML error in: $out"
"$CTL" test "$tmp/none.yaml" >/dev/null; rc=$?
[ "$rc" = 1 ] || fail "missing file: expected exit 1, got $rc"
mkdir "$tmp/empty"
"$CTL" test "$tmp/empty" >/dev/null; rc=$?
[ "$rc" = 1 ] || fail "no test files: expected exit 1, got $rc"
echo "flow tests: ok"
