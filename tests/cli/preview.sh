#!/usr/bin/env bash
# journeyctl preview: the mail a send step would send, from a profile (English and Dutch, with a
# trigger event's data, the link signed as the sender signs it) and for a customer the real
# daemon has in a real Redis; and the errors a marketer can make.
set -uo pipefail
CTL="$1"
BIN="$(cd "$(dirname "$CTL")" && pwd)"
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d)
redis_pid="" daemon_pid=""
cleanup() {
  for pid in $daemon_pid $redis_pid; do { kill -9 "$pid" && wait "$pid"; } 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

printf 's3cret-key-for-the-test' > "$tmp/secret"
cat > "$tmp/journeyd.yaml" <<EOF
flows: { dir: $PWD/flows }
smtp: { mode: file, dir: $tmp/mail, from: "Shop <news@shop.example>" }
admin: { public_url: "https://shop.example/j", secret_file: $tmp/secret }
EOF
anna='{"email":"anna@example.com","first_name":"Anna","email_opt_in":true}'

# English, from a profile.
out=$("$CTL" -c "$tmp/journeyd.yaml" preview welcome thanks --profile "$anna" --out "$tmp/out") ||
  fail "preview welcome thanks: exit $?"
[ "$(sed -n 1p <<<"$out")" = "Thanks for joining us, Anna!" ] || fail "subject: $out"
[ "$(sed -n 2p <<<"$out")" = "$tmp/out/welcome.thanks.eml" ] || fail "eml path: $out"
eml="$tmp/out/welcome.thanks.eml"
grep -q $'^To: anna@example.com\r$' "$eml" || fail "no To header"
grep -q $'^Subject: Thanks for joining us, Anna!\r$' "$eml" || fail "no Subject header"
grep -q $'^X-Journeyd-Step: thanks\r$' "$eml" || fail "no step header"
grep -q $'^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$' "$eml" || fail "no one-click"
grep -q 'Hi Anna' "$tmp/out/welcome.thanks.html" || fail "html without the name"
# The link is signed with admin.secret_file as the sender signs it.
python3 - "$eml" "$tmp/secret" <<'PY' || fail "the unsubscribe link is not signed with the secret"
import base64, hashlib, hmac, re, sys
mail = open(sys.argv[1], newline="").read()
m = re.search(r"^List-Unsubscribe: <https://shop\.example/j/unsubscribe\?token=([^>]+)>", mail, re.M)
assert m, "no List-Unsubscribe link"
c, f, mac = m.group(1).split(".")
b = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()
assert b(f) == "welcome", b(f)
key = open(sys.argv[2], "rb").read().strip()
want = hmac.new(key, f"{c}.{f}".encode(), hashlib.sha256).hexdigest()[:32]
assert mac == want, (mac, want)
PY

# Dutch, by --locale.
out=$("$CTL" -c "$tmp/journeyd.yaml" preview welcome thanks --profile "$anna" --locale nl \
  --out "$tmp/out") || fail "preview --locale nl: exit $?"
[ "$(sed -n 1p <<<"$out")" = "Bedankt voor je aanmelding, Anna!" ] || fail "nl subject: $out"
[ -s "$tmp/out/welcome.thanks.nl.eml" ] || fail "no welcome.thanks.nl.eml"
grep -q $'^Subject: Bedankt voor je aanmelding, Anna!\r$' "$tmp/out/welcome.thanks.nl.eml" ||
  fail "nl Subject header"

# The trigger event's data in the mail (the cart's total).
"$CTL" -c "$tmp/journeyd.yaml" preview abandoned_cart reminder1 --profile "$anna" \
  --trigger-data '{"total":80,"currency":"EUR"}' --out "$tmp/out" >/dev/null ||
  fail "preview abandoned_cart reminder1"
grep -q 'EUR 80.00' "$tmp/out/abandoned_cart.reminder1.html" || fail "no cart total in the mail"

# What a marketer can get wrong, each named.
expect_error() {
  local want="$1"; shift
  local got
  got=$("$CTL" -c "$tmp/journeyd.yaml" preview "$@" 2>&1 >/dev/null)
  local rc=$?
  [ "$rc" -ne 0 ] || fail "preview $* exited 0"
  grep -qF -- "$want" <<<"$got" || fail "preview $*: want '$want', got: $got"
}
expect_error "no flow 'nope' is loaded" nope thanks --profile "$anna"
expect_error "flow 'welcome' has no step 'nope'" welcome nope --profile "$anna"
expect_error "step 'wait_purchase' of flow 'birthday' sends no mail" birthday wait_purchase \
  --profile "$anna"
expect_error "the customer has no email address" welcome thanks --profile '{"first_name":"Bo"}'
expect_error "--profile: not a JSON object" welcome thanks --profile '[1]'
expect_error "give --customer ID or --profile JSON" welcome thanks

# A customer the daemon knows, from Redis.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$tmp/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
cat >> "$tmp/journeyd.yaml" <<EOF
redis: { port: $port, lease_ms: 2000 }
EOF
sed -i "s|admin: {|admin: { listen: \"127.0.0.1:0\",|" "$tmp/journeyd.yaml"
"$CTL" -c "$tmp/journeyd.yaml" publish --type signup --customer bo-17 \
  --profile '{"email":"bo@example.com","first_name":"Bo","email_opt_in":true,"locale":"nl"}' \
  >/dev/null || fail "publish"
"$BIN/journeyd" -c "$tmp/journeyd.yaml" >"$tmp/journeyd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do
  [ "$(redis-cli -p "$port" exists 'journeyd:{0}:c:bo-17')" = "1" ] && break
  sleep 0.05
done
[ "$(redis-cli -p "$port" exists 'journeyd:{0}:c:bo-17')" = "1" ] ||
  fail "the daemon kept no state for bo-17: $(cat "$tmp/journeyd.log")"
out=$("$CTL" -c "$tmp/journeyd.yaml" preview welcome tips --customer bo-17 --out "$tmp/out") ||
  fail "preview --customer: exit $?"
[ -s "$tmp/out/welcome.tips.nl.eml" ] || fail "the customer's locale (nl) was not used: $out"
grep -q $'^To: bo@example.com\r$' "$tmp/out/welcome.tips.nl.eml" || fail "not Bo's address"
expect_error "no customer 'nobody'" welcome tips --customer nobody
echo "preview ok"
