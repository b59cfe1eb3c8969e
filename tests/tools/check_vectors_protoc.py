#!/usr/bin/env python3
"""Independent decoder for the golden wire vectors (docs/wire.md, drift guard 3).

For every vector listed in tests/vectors/MANIFEST:
  1. `protoc --decode=sidecar.v1.Envelope` of <name>.bin against
     proto/sidecar.proto must print exactly the checked-in <name>.txt;
  2. `protoc --encode` of that text must give back <name>.bin byte for byte
     (protoc's own encoder agrees with nanopb's on every byte).
The manifest, the .bin files and the .txt files must name the same vectors.

Exits 77 (skipped) only when protoc is not installed.
"""
import argparse
import difflib
import pathlib
import shutil
import subprocess
import sys

SKIP = 77


def protoc_run(protoc, proto, mode, data):
    cmd = [protoc, f"--{mode}=sidecar.v1.Envelope", "-I", str(proto.parent),
           str(proto)]
    done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')}")
    return done.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--protoc", default="")
    ap.add_argument("--proto", required=True, type=pathlib.Path)
    ap.add_argument("--vectors", required=True, type=pathlib.Path)
    args = ap.parse_args()

    protoc = args.protoc
    if not protoc or protoc.endswith("-NOTFOUND"):
        protoc = shutil.which("protoc") or ""
    if not protoc or not pathlib.Path(protoc).exists():
        print("protoc not found: skipping (apt-get install protobuf-compiler)")
        return SKIP

    manifest = [line.strip() for line in
                (args.vectors / "MANIFEST").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    failures = []
    for ext in ("bin", "txt"):
        files = sorted(p.stem for p in args.vectors.glob(f"*.{ext}"))
        if files != sorted(manifest):
            failures.append(f"*.{ext} files {files} differ from MANIFEST "
                            f"{sorted(manifest)}")
    if not manifest:
        failures.append("MANIFEST lists no vectors")

    for name in manifest:
        binary = (args.vectors / f"{name}.bin").read_bytes()
        expected = (args.vectors / f"{name}.txt").read_bytes()
        try:
            text = protoc_run(protoc, args.proto, "decode", binary)
            again = protoc_run(protoc, args.proto, "encode", expected)
        except RuntimeError as e:
            failures.append(f"{name}: {e}")
            continue
        if text != expected:
            diff = difflib.unified_diff(
                expected.decode(errors="replace").splitlines(),
                text.decode(errors="replace").splitlines(),
                f"{name}.txt (checked in)", f"protoc --decode {name}.bin",
                lineterm="")
            failures.append(f"{name}: protoc decodes it differently:\n"
                            + "\n".join(diff))
        if again != binary:
            failures.append(f"{name}: protoc --encode of {name}.txt gives "
                            f"{again.hex()}, the vector is {binary.hex()}")
        else:
            print(f"ok {name} ({len(binary)} bytes)")

    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
