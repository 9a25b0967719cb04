#!/usr/bin/env bash
# The house rules, checked: Redis is the store module's business (no Redis command spelled
# in src/ or include/ outside store); no function runs over 80 lines without a reason in a
# "Long:" comment above it (tests/tools/long_functions.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Commands whose names mean nothing else in this code base, and the short ones that are also
# HTTP methods or words (flagged only beside a Redis call).
rare='APPEND|EVAL|EVALSHA|HGETALL|HINCRBY|HSET|INCR|LPOP|LRANGE|LTRIM|MGET|MSET|MULTI|PEXPIRE|RPUSH|SCRIPT|UNWATCH|WATCH|XACK|XADD|XAUTOCLAIM|XCLAIM|XGROUP|XINFO|XLEN|XPENDING|XRANGE|XREADGROUP|XREVRANGE|XTRIM|ZADD|ZCARD|ZRANGE|ZRANGEBYSCORE|ZREM'
common='GET|SET|DEL|EXISTS|EXEC|INFO|PING|SCAN|EXPIRE'
outside() { grep -v -e '^src/store/' -e '^include/journeyd/store/' || true; }
found=$( (grep -rnE "\"($rare)\"" src include --include='*.cpp' --include='*.h' || true) | outside)
found+=$'\n'$( (grep -rnE "\"($common)\"" src include --include='*.cpp' --include='*.h' || true) |
  grep -E 'Cmd\(|Command\(|Call\(|Pipeline\(|RespCommand' | outside)
found=$(echo "$found" | sed '/^$/d')
if [ -n "$found" ]; then
  echo "Redis commands outside src/store/:" >&2
  echo "$found" >&2
  exit 1
fi
echo "no Redis command outside src/store/"
python3 tests/tools/long_functions.py $(find src include -name '*.cpp' -o -name '*.h' | sort)
echo "no function over 80 lines without a reason"
