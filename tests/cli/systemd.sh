#!/usr/bin/env bash
# deploy/journeyd.service passes `systemd-analyze verify` and rates 2.0 or better in
# `systemd-analyze security`. verify insists that every Exec*= binary exists, so the checks
# run on a copy of the unit whose /usr/bin/journeyd is the journeyd built beside journeyctl
# (the unit is otherwise byte for byte the shipped one).
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (Debian package systemd)"
BIN="$(cd "$(dirname "$CTL")" && pwd)/journeyd"
[ -x "$BIN" ] || fail "no journeyd binary at $BIN"
UNIT=deploy/journeyd.service
[ -f "$UNIT" ] || fail "missing $UNIT"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# The contract of the unit, so that a "simplification" cannot drop it silently.
for line in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=30s' \
  'ExecStart=/usr/bin/journeyd -c /etc/journeyd/journeyd.yaml' \
  'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'DynamicUser=yes' \
  'ProtectSystem=strict' 'StateDirectory=journeyd' 'ConfigurationDirectory=journeyd'; do
  grep -qxF "$line" "$UNIT" || fail "$UNIT lacks '$line'"
done

sed "s#/usr/bin/journeyd #$BIN #g" "$UNIT" > "$tmp/journeyd.service"
grep -q "ExecStart=$BIN " "$tmp/journeyd.service" || fail "could not point ExecStart at $BIN"

# verify prints its findings (and exits 0 on some of them), so any output is a failure too.
out=$(cd "$tmp" && systemd-analyze verify --man=no "$tmp/journeyd.service" 2>&1); rc=$?
[ "$rc" = 0 ] && [ -z "$out" ] || fail "systemd-analyze verify (exit $rc): $out"

# --threshold counts in tenths in systemd 252 (12 is the displayed "1.2"): 20 means 2.0.
out=$(systemd-analyze security --offline=yes --threshold=20 "$tmp/journeyd.service" 2>&1); rc=$?
[ "$rc" = 0 ] || fail "systemd-analyze security rates the unit above 2.0 (exit $rc): $out"
level=$(grep -o 'Overall exposure level for journeyd.service: [0-9.]*' <<<"$out")
[ -n "$level" ] || fail "no exposure level in: $out"
echo "systemd: ok ($level)"
