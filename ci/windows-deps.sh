#!/usr/bin/env bash
# ci/windows-deps.sh: everything the Windows leg needs before it can configure.
#
#  1. Debian packages: mingw-w64, Wine, CMake, Ninja, dpkg-dev, the host nanopb
#     generator (installed only when missing).
#  2. deb-src entries mirroring the Debian `deb` entries (apt-get update only
#     when they were just added or packages are missing).
#  3. libuv, cmocka, nanopb, curl and cjson cross-built for x86_64-w64-mingw32 from
#     Debian's *source* packages, installed into a prefix cached under
#       ${SIDECAR_CACHE:-/var/cache/sidecar}/win-deps/<key>/prefix
#     where <key> hashes the source package versions, the mingw compiler and
#     runtime versions, CMake's version, cmake/mingw-w64.cmake and the build
#     functions below (the recipe); key.txt beside the prefix lists them.
#
# Progress goes to stderr; the prefix is the only line printed on stdout.
# Concurrent runs are serialised with a lock. See docs/windows.md.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly repo_root
readonly toolchain=$repo_root/cmake/mingw-w64.cmake
readonly cache_root=${SIDECAR_CACHE:-/var/cache/sidecar}/win-deps
readonly triplet=x86_64-w64-mingw32
readonly source_packages=(libuv1 cmocka nanopb curl cjson)
readonly host_packages=(mingw-w64 wine wine64 cmake ninja-build dpkg-dev
  xz-utils python3 python3-protobuf nanopb)
readonly debian_sources=/etc/apt/sources.list.d/debian.sources
readonly deb_src_file=/etc/apt/sources.list.d/sidecar-deb-src.sources

# stdout is reserved for the final answer.
exec 3>&1 1>&2

log() { printf 'windows-deps: %s\n' "$*"; }

missing_host_packages() {
  local installed pkg
  # Unknown packages are left out of dpkg-query's answer (with a complaint).
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' \
    "${host_packages[@]}" 2>/dev/null | awk '$2 == "ii" { print $1 }') || true
  for pkg in "${host_packages[@]}"; do
    grep -qxF "$pkg" <<<"$installed" || printf '%s\n' "$pkg"
  done
}

# The deb822 stanzas of debian.sources that carry `deb`, retyped as deb-src.
deb_src_stanzas() {
  awk 'BEGIN { RS = ""; ORS = "\n\n" }
       /(^|\n)Types:[^\n]*[ \t]deb([ \t]|\n|$)/ {
         sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print
       }' "$debian_sources"
}

source_indexes_present() {
  compgen -G '/var/lib/apt/lists/*_source_Sources*' >/dev/null
}

ensure_apt_ready() {
  local need_update=0 missing wanted
  missing=$(missing_host_packages)
  [[ -n $missing ]] && need_update=1

  if [[ ! -f $debian_sources ]]; then
    log "no $debian_sources: add deb-src entries for Debian's archive by hand"
    exit 1
  fi
  wanted=$(deb_src_stanzas)
  if [[ ! -f $deb_src_file ]] || [[ $(<"$deb_src_file") != "$wanted" ]]; then
    log "writing $deb_src_file"
    printf '%s\n' "$wanted" >"$deb_src_file"
    need_update=1
  fi
  source_indexes_present || need_update=1

  if ((need_update)); then
    log "apt-get update"
    apt-get update -qq
  fi
  if [[ -n $missing ]]; then
    log "installing:" "${missing//$'\n'/ }"
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
}

# The .dsc file apt would fetch for each source package, in source_packages
# order (the newest version across bookworm, -updates and -security). One
# apt-get call: each one costs a second of cache loading.
source_dsc_names() {
  local uris pkg dsc
  uris=$(apt-get source --print-uris -qq "${source_packages[@]}")
  for pkg in "${source_packages[@]}"; do
    dsc=$(awk -v pkg="$pkg" 'index($2, pkg "_") == 1 && $2 ~ /\.dsc$/ { print $2; exit }' <<<"$uris")
    [[ -n $dsc ]] || { log "apt-get source knows no $pkg"; exit 1; }
    printf '%s\n' "$dsc"
  done
}

# Everything that changes the built libraries, one fact per line.
cache_key_ingredients() {
  printf 'source %s\n' "${dsc_names[@]}"
  printf 'compiler %s\n' "$("$triplet-gcc" --version | head -n1)"
  printf 'compiler-path %s\n' "$(readlink -f "$(command -v "$triplet-gcc")")"
  printf 'mingw-runtime %s\n' "$(dpkg-query -W -f='${Version}' mingw-w64-x86-64-dev)"
  printf 'cmake %s\n' "$(cmake --version | head -n1)"
  printf 'toolchain %s\n' "$(sha256sum <"$toolchain" | cut -c1-64)"
  # The build functions as bash prints them back (comments dropped): a change
  # of flags rebuilds, a change of logging or apt handling does not.
  printf 'recipe %s\n' "$(declare -f cross_build build_dependencies | sha256sum | cut -c1-64)"
}

# cross_build <source dir> <build name> <cmake -D options...>
cross_build() {
  local src=$1 name=$2
  shift 2
  local started=$SECONDS configured
  cmake -S "$src" -B "$work/build-$name" -G Ninja --log-level=WARNING \
    -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" "$@" >"$work/$name.configure.log" ||
    { cat "$work/$name.configure.log"; return 1; }
  configured=$SECONDS
  cmake --build "$work/build-$name" >"$work/$name.build.log" ||
    { tail -n 60 "$work/$name.build.log"; return 1; }
  cmake --install "$work/build-$name" >"$work/$name.install.log"
  log "$name: configured in $((configured - started)) s," \
    "built and installed in $((SECONDS - configured)) s"
}

build_dependencies() {
  local dsc pkg
  mkdir -p "$cache_root/sources"
  # apt downloads as its sandbox user when that user may write there.
  chown _apt "$cache_root/sources" 2>/dev/null || true
  log "fetching source packages:" "${dsc_names[@]}"
  # Already downloaded files are verified and kept, so this is offline
  # when the sources are there.
  (cd "$cache_root/sources" && apt-get source --download-only -qq "${source_packages[@]}")

  for dsc in "${dsc_names[@]}"; do
    pkg=${dsc%%_*}
    # dpkg-source applies Debian's patches; --no-check: the archive's
    # signature was checked by apt through the Release file.
    dpkg-source --no-check -x "$cache_root/sources/$dsc" "$work/src-$pkg" >/dev/null
  done

  cross_build "$work/src-libuv1" libuv \
    -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
  cross_build "$work/src-cmocka" cmocka \
    -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DPICKY_DEVELOPER=OFF
  cross_build "$work/src-nanopb" nanopb \
    -Dnanopb_BUILD_GENERATOR=OFF -Dnanopb_BUILD_RUNTIME=ON \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_STATIC_LIBS=ON
  # HTTP to the agent over Schannel, nothing else: every optional library is
  # off so that none is picked up from the mingw root by accident.
  # The reader of agent answers (src/common/agent_info.c): one static
  # library, no tests, no cJSON_Utils, the project's own warning flags off.
  cross_build "$work/src-cjson" cjson \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_SHARED_AND_STATIC_LIBS=OFF \
    -DENABLE_CJSON_TEST=OFF -DENABLE_CJSON_UTILS=OFF \
    -DENABLE_CUSTOM_COMPILER_FLAGS=OFF -DENABLE_LOCALES=OFF
  cross_build "$work/src-curl" curl \
    -DBUILD_SHARED_LIBS=OFF -DBUILD_CURL_EXE=OFF -DBUILD_TESTING=OFF \
    -DENABLE_MANUAL=OFF -DHTTP_ONLY=ON \
    -DCURL_USE_SCHANNEL=ON -DCURL_USE_OPENSSL=OFF -DCURL_USE_MBEDTLS=OFF \
    -DCURL_USE_BEARSSL=OFF -DCURL_USE_WOLFSSL=OFF -DCURL_USE_NSS=OFF \
    -DCURL_ZLIB=OFF -DCURL_BROTLI=OFF -DCURL_ZSTD=OFF -DUSE_NGHTTP2=OFF \
    -DUSE_NGTCP2=OFF -DUSE_QUICHE=OFF -DUSE_MSH3=OFF \
    -DUSE_LIBIDN2=OFF -DUSE_WIN32_IDN=OFF -DCURL_USE_LIBPSL=OFF \
    -DCURL_USE_LIBSSH2=OFF -DCURL_USE_LIBSSH=OFF -DCURL_USE_GSSAPI=OFF \
    -DCURL_DISABLE_LDAP=ON -DCURL_DISABLE_LDAPS=ON -DUSE_LIBRTMP=OFF
}

main() {
  local started=$SECONDS
  ensure_apt_ready

  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9

  mapfile -t dsc_names < <(source_dsc_names)
  ((${#dsc_names[@]} == ${#source_packages[@]})) || exit 1
  local ingredients key
  ingredients=$(cache_key_ingredients)
  key=$(sha256sum <<<"$ingredients" | cut -c1-16)
  readonly key_dir=$cache_root/$key
  readonly prefix=$key_dir/prefix

  if [[ -f $key_dir/complete ]]; then
    touch "$key_dir/complete" # last used: see the pruning below
    log "cached: $key_dir ($((SECONDS - started)) s)"
  else
    log "building into $key_dir"
    rm -rf "$key_dir"
    mkdir -p "$key_dir"
    printf '%s\n' "$ingredients" >"$key_dir/key.txt"
    work=$(mktemp -d "$cache_root/build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    build_dependencies
    touch "$key_dir/complete"
    log "dependencies ready in $((SECONDS - started)) s"
  fi
  # Prefixes of other keys (older toolchains, other branches) unused for a
  # month; a few MB each.
  find "$cache_root" -mindepth 2 -maxdepth 2 -name complete -mtime +30 \
    -printf '%h\n' | xargs -r rm -rf
  printf '%s\n' "$prefix" >&3
}

main "$@"
