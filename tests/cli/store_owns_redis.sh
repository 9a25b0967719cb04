#!/usr/bin/env bash
# No Redis command is spelled outside src/store/ (tests aside): app/ and the mains call the
# store's typed operations.
set -euo pipefail
bash "$(dirname "$0")/../tools/check_house.sh"
