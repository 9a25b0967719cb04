#!/usr/bin/env bash
# cpack -G DEB from the build tree: the package holds the binaries, the systemd unit, the
# config (pointing at /etc/journeyd/flows and /var/lib/journeyd) and the shipped flows, with
# the config and flows as conffiles.
set -uo pipefail
CTL="$1"
fail() { echo "FAIL: $*"; exit 1; }
BUILD="$(cd "$(dirname "$CTL")/.." && pwd)"  # journeyctl is <build>/src/journeyctl
[ -f "$BUILD/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $BUILD"
for tool in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || fail "$tool not found (deploy/install-deps.sh installs it)"
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$(cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$tmp" 2>&1) || fail "cpack: $out"
version=$("$CTL" --version | awk '{print $2}')
deb="$tmp/journeyd_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $(basename "$deb") in: $(ls "$tmp")"

contents=$(dpkg-deb --contents "$deb") || fail "dpkg-deb --contents"
for f in /usr/bin/journeyd /usr/bin/journeyctl /usr/bin/journeyd-bench \
  /lib/systemd/system/journeyd.service /etc/journeyd/journeyd.yaml \
  /etc/journeyd/flows/winback.yaml /etc/journeyd/flows/templates/nl/winback_discount.yaml; do
  grep -qE " \.${f}\$" <<<"$contents" || fail "$f not in the package: $contents"
done

mkdir "$tmp/ctrl" && dpkg-deb --control "$deb" "$tmp/ctrl" || fail "dpkg-deb --control"
grep -qx /etc/journeyd/journeyd.yaml "$tmp/ctrl/conffiles" || fail "config not a conffile"
grep -qx /etc/journeyd/flows/winback.yaml "$tmp/ctrl/conffiles" || fail "flows not conffiles"
dupes=$(sort "$tmp/ctrl/conffiles" | uniq -d)
[ -z "$dupes" ] || fail "conffiles listed twice: $dupes"
# Every conffile is in the package (dpkg refuses to install otherwise).
while read -r f; do
  grep -qE " \.${f}\$" <<<"$contents" || fail "conffile $f is not in the package"
done <"$tmp/ctrl/conffiles"
grep -q '^Depends:.*libc6' "$tmp/ctrl/control" || fail "no shlibdeps Depends: $(cat "$tmp/ctrl/control")"
grep -q '^Depends:.*libsystemd0' "$tmp/ctrl/control" || fail "libsystemd0 not a dependency"

dpkg-deb --extract "$deb" "$tmp/root" || fail "dpkg-deb --extract"
grep -q 'dir: /etc/journeyd/flows' "$tmp/root/etc/journeyd/journeyd.yaml" ||
  fail "the packaged config does not read /etc/journeyd/flows"
grep -q 'dir: /var/lib/journeyd/mail' "$tmp/root/etc/journeyd/journeyd.yaml" ||
  fail "the packaged config does not write mail to /var/lib/journeyd"
cmp -s deploy/journeyd.service "$tmp/root/lib/systemd/system/journeyd.service" ||
  fail "the packaged unit differs from deploy/journeyd.service"
# The packaged config and flows are valid as installed (paths rewritten to the extract).
sed "s#/etc/journeyd/flows#$tmp/root/etc/journeyd/flows#; s#/var/lib/journeyd/mail#$tmp/mail#" \
  "$tmp/root/etc/journeyd/journeyd.yaml" >"$tmp/check.yaml"
out=$("$(dirname "$CTL")/journeyd" --check -c "$tmp/check.yaml" 2>&1) || fail "--check: $out"
echo "deb: ok ($(basename "$deb"))"
