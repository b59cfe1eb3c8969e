#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the tests and the demo need.
# Idempotent and fast when everything is present: apt runs only for what is
# missing. Usage: ci/deps.sh [extra-package...]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libuv1-dev libcurl4-openssl-dev libcmocka-dev libcjson-dev
  nanopb libnanopb-dev python3 python3-protobuf python3-msgpack
  protobuf-compiler
  # The JSON Schema check of telemetry bodies (tests/intake/telemetry_check.py).
  python3-jsonschema
  clang clang-14 libclang-rt-14-dev gdb
  # Bench-only baselines (bench/, optional in CMake): ZeroMQ and protobuf-c.
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "ci/deps.sh: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; a stale list fails with 404s.
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
