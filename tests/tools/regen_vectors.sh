#!/usr/bin/env bash
# Regenerates the golden wire vectors in tests/vectors/ from the samples in
# tests/unit/wire_samples.c: <name>.bin (encoded by our codec), <name>.txt
# (what `protoc --decode` makes of it) and MANIFEST.
#
# Only for a deliberate change of the wire contract (a new field, a new
# message). Review the diff of the .txt files: it is the change on the wire.
#
#   usage: tests/tools/regen_vectors.sh <build-dir>
#   e.g.   cmake --build build/debug --target gen_wire_vectors &&
#          tests/tools/regen_vectors.sh build/debug
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: $0 <build-dir>}
gen="$build/tests/gen_wire_vectors"
vectors="$root/tests/vectors"

[ -x "$gen" ] || { echo "$gen not built (cmake --build $build --target gen_wire_vectors)" >&2; exit 1; }
command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

rm -f "$vectors"/*.bin "$vectors"/*.txt
"$gen" "$vectors" >/dev/null
while read -r name; do
  case "$name" in '#'*|'') continue ;; esac
  protoc --decode=sidecar.v1.Envelope -I "$root/proto" "$root/proto/sidecar.proto" \
    < "$vectors/$name.bin" > "$vectors/$name.txt"
done < "$vectors/MANIFEST"
echo "regenerated $(grep -vc '^#' "$vectors/MANIFEST") vectors in $vectors"
