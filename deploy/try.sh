#!/usr/bin/env bash
# Try journeyd on a fresh Debian 12 machine: installs what it needs, builds, starts a private
# redis-server (data in ./var/redis) and runs the daemon in the foreground with the shipped
# flows, writing every mail as an .eml file to ./var/mail. Ctrl-C stops both.
#
#   JOURNEYD_CLOCK_SCALE=86400 bash deploy/try.sh   # a day of flow time per second
#   bash deploy/try.sh --simulate                   # no daemon: simulate a month of sample events
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

bash deploy/install-deps.sh >&2
echo "journeyd: building (first time: a few minutes)..." >&2
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOURNEYD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" >/dev/null
CTL="$ROOT/build/release/src/journeyctl"

if [ "${1:-}" = "--simulate" ]; then
  shift
  "$CTL" validate flows/
  exec "$CTL" simulate --flows flows --events tests/fixtures/events/demo.jsonl "$@"
fi

VAR="${JOURNEYD_TRY_DIR:-$ROOT/var}"
mkdir -p "$VAR/redis" "$VAR/mail"
free_port() {
  python3 -c 'import socket,sys
s=socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$1"
}
REDIS_PORT="$(free_port 6379)"
ADMIN_PORT="$(free_port 8725)"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$VAR/redis" --appendonly yes \
  --save "" --logfile "$VAR/redis.log" &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done

cat > "$VAR/journeyd.yaml" <<YAML
# Written by deploy/try.sh. See config/journeyd.yaml for every key.
redis: { host: 127.0.0.1, port: $REDIS_PORT }
flows: { dir: $ROOT/flows }
smtp: { mode: file, dir: $VAR/mail, from: "Demo Shop <shop@example.com>" }
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
clock: { scale: ${JOURNEYD_CLOCK_SCALE:-1} }
YAML

cat <<TEXT
journeyd is starting: Redis on 127.0.0.1:$REDIS_PORT (data in $VAR/redis), the shipped flows
from $ROOT/flows, mails written as .eml files to $VAR/mail.

Publish an event from another terminal, for example a signup (the welcome mail comes at once):
  $CTL -c $VAR/journeyd.yaml publish --type signup --customer c42 \\
      --profile '{"email":"anna@example.com","first_name":"Anna","email_opt_in":true}'
Then:  ls $VAR/mail      $CTL -c $VAR/journeyd.yaml inspect c42
Health: curl http://127.0.0.1:$ADMIN_PORT/readyz     Stop: Ctrl-C
Flow time runs at ${JOURNEYD_CLOCK_SCALE:-1}x; JOURNEYD_CLOCK_SCALE=86400 makes a day last a second.

TEXT
"$ROOT/build/release/src/journeyd" -c "$VAR/journeyd.yaml"
