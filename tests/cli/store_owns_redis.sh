#!/usr/bin/env bash
# No Redis command is spelled outside src/store/ (tests aside): app/ and the mains call the
# store's typed operations. And no function in src/ or include/ runs over 80 lines without a
# "Long:" reason above it.
set -euo pipefail
bash "$(dirname "$0")/../tools/check_house.sh"
