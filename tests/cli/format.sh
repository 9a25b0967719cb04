#!/usr/bin/env bash
# Every C++ source is formatted with the repository's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/../.."
files=$(git ls-files 'src/*.cpp' 'src/*.h' 'include/*.h' 'tests/*.cpp' 'tests/*.h' 2>/dev/null ||
        find src include tests -name '*.cpp' -o -name '*.h')
[ -n "$files" ] || { echo "no sources found"; exit 1; }
clang-format --dry-run --Werror $files
echo "formatted: $(echo "$files" | wc -w) files"
