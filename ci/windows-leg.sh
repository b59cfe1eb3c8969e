#!/usr/bin/env bash
# ci/windows-leg.sh: cross-build the project for Windows with mingw-w64 and run
# its CTest suites under Wine (docs/windows.md). Exits with CTest's
# status.
#
# Environment:
#   SIDECAR_CACHE            cache root for the cross-built dependencies
#                            (default /var/cache/sidecar)
#   SIDECAR_WIN_BUILD_DIR    build directory (default <repo>/build/windows)
#   SIDECAR_WIN_BUILD_TYPE   CMAKE_BUILD_TYPE (default Debug)
#   SIDECAR_WIN_TEST_TIMEOUT per-test timeout in seconds for tests that set
#                            none themselves (default 300)
# Extra arguments are passed to ctest (e.g. -R codec, -L unit).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly repo_root
readonly build_dir=${SIDECAR_WIN_BUILD_DIR:-$repo_root/build/windows}
readonly build_type=${SIDECAR_WIN_BUILD_TYPE:-Debug}

log() { printf 'windows-leg: %s\n' "$*" >&2; }

started=$SECONDS

deps_prefix=$(bash "$repo_root/ci/windows-deps.sh" | tail -n1)
[[ -d $deps_prefix ]] || { log "windows-deps.sh gave no prefix"; exit 1; }
log "dependencies: $deps_prefix ($((SECONDS - started)) s)"

# Results of find_package() are cached with the prefix they came from: when
# the dependencies' cache key changed, configure from scratch.
configure_args=()
cache_file=$build_dir/CMakeCache.txt
if [[ -f $cache_file ]] &&
  ! grep -qxF "SIDECAR_WIN_DEPS_PREFIX:PATH=$deps_prefix" "$cache_file"; then
  log "dependency prefix changed: configuring from scratch"
  configure_args+=(--fresh)
fi
cmake -S "$repo_root" -B "$build_dir" -G Ninja "${configure_args[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="$repo_root/cmake/mingw-w64.cmake" \
  -DSIDECAR_WIN_DEPS_PREFIX="$deps_prefix" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DSIDECAR_WERROR=ON -DSIDECAR_BUILD_BENCH=OFF
cmake --build "$build_dir"
log "built ($((SECONDS - started)) s)"

# A fresh Wine prefix every run (~5 s; it is ~700 MB, not worth caching):
# no state leaks from one run into the next. Wine refuses a prefix whose
# parent directory does not exist.
export WINEPREFIX=$build_dir/wineprefix
export WINEARCH=win64
export WINEDEBUG=-all
# No Mono or Gecko: nothing here needs .NET or HTML, and their installers
# would otherwise be offered at every boot.
export WINEDLLOVERRIDES="mscoree,mshtml="
rm -rf "$WINEPREFIX"
mkdir -p "$(dirname "$WINEPREFIX")"

# shellcheck disable=SC2317 # run by the EXIT trap
stop_wine() { wineserver -k 2>/dev/null || true; }
trap stop_wine EXIT

wine wineboot --init
# A persistent server with Wine's services already up: otherwise every test
# waits ~2.4 s for those services to release its output pipe. The server
# wineboot left behind is not persistent and `wineserver -p` will not take it
# over (exit 2), so it is ended first (faster than waiting for it to idle out).
wineserver -k
wineserver -w
wineserver -p
wine cmd /c exit
log "wine prefix ready ($((SECONDS - started)) s)"

status=0
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error \
  --timeout "${SIDECAR_WIN_TEST_TIMEOUT:-300}" "$@" || status=$?
# CTest names skipped tests but not why: tests print "SKIP: <reason>" (for
# example what Wine does not enforce), shown here.
grep -h '^SKIP: ' "$build_dir/Testing/Temporary/LastTest.log" 2>/dev/null |
  sort | uniq -c |
  sed 's/^ *\([0-9]*\) SKIP: /windows-leg: skipped (\1 test): /' >&2 || true
log "ctest exited with $status ($((SECONDS - started)) s in all)"
exit "$status"
