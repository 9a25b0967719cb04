#!/usr/bin/env bash
# journeyctl simulate over the shipped flows and the sample timelines.
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

for f in tests/fixtures/events/*.jsonl; do
  "$CTL" simulate --flows flows --events "$f" > "$tmp/out.txt" || fail "simulate $f failed"
done

"$CTL" simulate --flows flows --events tests/fixtures/events/winback_won_back.jsonl --json \
  > "$tmp/out.jsonl" || fail "simulate --json failed"
python3 - "$tmp/out.jsonl" <<'PY' || exit 1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows, "no output"
for r in rows:
    for k in ("at", "kind", "customer_id", "flow", "step"):
        assert k in r, (k, r)
    assert r["kind"] in ("enter", "send", "suppress", "exit"), r
    if r["kind"] == "send":
        assert r["template"] and r["subject"], r
ats = [r["at"] for r in rows]
assert ats == sorted(ats), "not in time order"
wb = [r["step"] for r in rows if r["kind"] == "send" and r["flow"] == "winback"]
assert wb == ["mail1", "mail2", "mail3"], wb
exits = [r for r in rows if r["kind"] == "exit" and r["flow"] == "winback"]
assert exits and exits[-1]["reason"] == "exit_on:purchase", exits
print("json ok:", len(rows), "rows")
PY

printf '%s\n' '{"type":"signup","customer_id":"c1","ts":"2026-01-01T00:00:00Z"}' \
  'not json' '{"type":"signup","ts":"2026-01-01T00:00:00Z"}' > "$tmp/bad.jsonl"
out=$("$CTL" simulate --flows flows --events "$tmp/bad.jsonl" 2>&1); rc=$?
[ "$rc" = 1 ] || fail "bad timeline: expected exit 1, got $rc"
grep -qF "$tmp/bad.jsonl:2: error:" <<<"$out" || fail "line 2 not reported: $out"
grep -qF "$tmp/bad.jsonl:3: error: customer_id" <<<"$out" || fail "line 3 not reported: $out"
echo "simulate: ok"
