#!/usr/bin/env bash
# The whole test suite (the README's test command). Installs what it needs,
# builds with warnings as errors, runs the sanitizer build of the unit and
# integration tests, then the release build's full CTest run, whose summary
# line is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)

echo "== ASan + UBSan build =="
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs" --timeout 600 -LE slow

echo "== release build =="
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" --timeout 600
