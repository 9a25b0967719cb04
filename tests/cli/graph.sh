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
echo "graph: ok"
