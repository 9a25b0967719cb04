#!/usr/bin/env bash
# journeyctl graph: every shipped flow as DOT and as Mermaid.
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
for f in flows/*.yaml; do
  dot=$("$CTL" graph "$f") || fail "graph $f"
  grep -q '^digraph' <<<"$dot" || fail "no digraph for $f"
  mm=$("$CTL" graph --format mermaid "$f") || fail "graph --format mermaid $f"
  grep -q '^flowchart TD' <<<"$mm" || fail "no flowchart for $f"
done
dot=$("$CTL" graph flows/abandoned_cart.yaml)
grep -q 'label="yes"' <<<"$dot" || fail "if branch missing"
grep -q 'reminder2_discount' <<<"$dot" || fail "step id missing"
grep -q 'halts early on purchase, cart_cleared' <<<"$dot" || fail "exit_on missing"
# Durations as the flow writes them.
mm=$("$CTL" graph --format mermaid flows/winback.yaml)
grep -qF 'n0["wait 180d"]' <<<"$mm" || fail "wait 180d not as written in: $mm"
grep -q '25w5d' <<<"$mm" && fail "25w5d in: $mm"
grep -qF 'wait for order_delivered (up to 7d)' <<<"$("$CTL" graph flows/review_request.yaml)" ||
  fail "wait_for timeout not as written"
# Labels are quoted with Mermaid's entity codes for every character it would read.
mm=$("$CTL" graph --format mermaid flows/abandoned_cart.yaml)
grep -qF 'if trigger.data.total #gt;= 50' <<<"$mm" || fail "> not escaped in: $mm"
if grep -o '"[^"]*"' <<<"$mm" | grep -q '[<>|&`]'; then fail "raw special character in: $mm"; fi
# A folder and a glob (quoted: journeyctl expands it) draw every flow they name.
all=$("$CTL" graph --format mermaid flows/) || fail "graph flows/"
[ "$(grep -c '^flowchart TD' <<<"$all")" = 1 ] || fail "not one chart: $all"
[ "$(grep -c '^  subgraph ' <<<"$all")" = 6 ] || fail "not six subgraphs: $all"
grep -qF '  subgraph flow_winback["Win back one-time buyers"]' <<<"$all" || fail "no winback subgraph"
dots=$("$CTL" graph 'flows/w*.yaml') || fail "graph glob"
[ "$(grep -c '^digraph' <<<"$dots")" = 2 ] || fail "glob: not two digraphs: $dots"
"$CTL" graph 'flows/nothing*.yaml' >/dev/null 2>&1 && fail "a glob without matches passed"
mkdir -p "${TMPDIR:-/tmp}/journeyd-graph-empty.$$"
"$CTL" graph "${TMPDIR:-/tmp}/journeyd-graph-empty.$$" >/dev/null 2>&1; rc=$?
rmdir "${TMPDIR:-/tmp}/journeyd-graph-empty.$$"
[ "$rc" = 1 ] || fail "an empty folder: expected exit 1, got $rc"
echo "graph: ok"
