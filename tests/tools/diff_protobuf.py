#!/usr/bin/env python3
"""Differential check: the codec (tests/tools/diff_decode.c, nanopb and
src/common/codec.c) against Google's protobuf (python3-protobuf) on the
fuzzer-grown `actions` corpus and seeded mutations of it.

Both must agree on the value of every field of what both accept; the codec
must never accept what protobuf rejects; where protobuf accepts and the
codec rejects, the codec's reason must be one of the known, deliberate
strictnesses below (counted and printed):
  - wrong wire type: a field whose wire type does not match the schema
    (protobuf keeps it as an unknown field; nanopb rejects it, and for
    strings and lists so must the codec: docs/wire.md);
  - field number 0, and group wire types 3 and 4 (deprecated; protobuf
    skips or stops at them);
  - integer too large: a varint beyond its field's width (protobuf
    truncates) or beyond 64 bits;
  - split list: a repeated field's items in two occurrences of their
    parent message (protobuf merges; docs/wire.md);
  - malformed list item: one of the above inside a list item.
The codec is more lenient in one way, also counted: nanopb reads varints
of any length, so a tag longer than 5 bytes or a varint longer than 10
(overlong encodings of valid values) is accepted where protobuf rejects it.
Google's decoder reads a copy of proto/sidecar.proto in which `string` is
`bytes`: the codec does not check UTF-8 by design (views of the frame; the
JSON writer replaces bad bytes), and protobuf would reject such strings.
Any other difference fails, with the input in hex.

Usage: diff_protobuf.py --decoder BIN --protoc PROTOC --proto FILE
                        --corpus DIR [--mutations N] [--seed S]
Exits 77 (skipped, saying why) without protoc or python3-protobuf."""
import argparse
import collections
import os
import random
import re
import struct
import subprocess
import sys
import tempfile
import warnings

SKIP = 77
EITHER = "E"  # an empty implicit string: matches the codec's n or s
KNOWN = {  # label: the codec's error message contains
    "wrong wire type": "wrong wire type",
    "field number 0": "zero tag",
    "group wire type": "invalid wire_type",
    "integer too large": "integer too large",
    "varint too long": "varint overflow",
    "split list": "list items outside one message",
    "malformed list item": "malformed list item",
}


def load_module(protoc, proto):
    tmp = tempfile.mkdtemp(prefix="diff_protobuf_")
    text = open(proto, encoding="utf-8").read()
    text = re.sub(r"\bstring\b(?=\s+\w+\s*=)", "bytes", text)
    path = os.path.join(tmp, "sidecar.proto")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    subprocess.run([protoc, "-I", tmp, "--python_out", tmp, path], check=True)
    sys.path.insert(0, tmp)
    import sidecar_pb2  # noqa: E402
    return sidecar_pb2


def dump(msg):
    from google.protobuf.descriptor import FieldDescriptor as F
    parts = []
    for field in sorted(msg.DESCRIPTOR.fields, key=lambda f: f.number):
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):
            if msg.WhichOneof(oneof.name) != field.name:
                continue
        elif field.label == F.LABEL_REPEATED:
            pass
        elif field.type in (F.TYPE_BYTES, F.TYPE_STRING):
            pass  # printed as absent (n) below
        elif oneof is not None or field.type == F.TYPE_MESSAGE:
            if not msg.HasField(field.name):
                continue
        value = getattr(msg, field.name)
        if field.type in (F.TYPE_BYTES, F.TYPE_STRING) and \
                field.label != F.LABEL_REPEATED:
            if oneof is not None and not msg.HasField(field.name):
                parts.append("%d:n" % field.number)  # optional, absent
                continue
            if oneof is None and not value:
                # Implicit presence: protobuf cannot tell absent from
                # empty; the codec can (n or s). Either matches.
                parts.append("%d:%s" % (field.number, EITHER))
                continue
        parts.append("%d:%s" % (field.number, value_str(field, value)))
    return "{" + ",".join(parts) + "}"


def value_str(field, value):
    from google.protobuf.descriptor import FieldDescriptor as F
    if field.label == F.LABEL_REPEATED:
        return "[" + ",".join(dump(v) for v in value) + "]"
    t = field.type
    if t == F.TYPE_MESSAGE:
        return dump(value)
    if t == F.TYPE_BOOL:
        return "b%d" % int(value)
    if t == F.TYPE_DOUBLE:
        return "d" + struct.pack("<d", value).hex()
    if t in (F.TYPE_BYTES, F.TYPE_STRING):
        return "s" + bytes(value).hex()
    if t in (F.TYPE_UINT32, F.TYPE_UINT64, F.TYPE_FIXED32, F.TYPE_FIXED64,
             F.TYPE_ENUM):  # nanopb reads enums as unsigned
        return "u%d" % value
    return "i%d" % value


def read_varint(data, pos):
    """(value, length in bytes, next position), or None at the end."""
    value = shift = 0
    start = pos
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos - start, pos
    return None


def overlong(data, desc):
    """Whether the message, read as nanopb would, holds a tag over 5 bytes
    or a varint over 10 (into known sub-messages too)."""
    from google.protobuf.descriptor import FieldDescriptor as F
    pos = 0
    while pos < len(data):
        tag = read_varint(data, pos)
        if tag is None:
            return False
        key, n, pos = tag
        if n > 5:
            return True
        wt, number = key & 7, key >> 3
        if wt == 0:
            v = read_varint(data, pos)
            if v is None:
                return False
            if v[1] > 10:
                return True
            pos = v[2]
        elif wt in (1, 5):
            pos += 8 if wt == 1 else 4
        elif wt == 2:
            v = read_varint(data, pos)
            if v is None:
                return False
            if v[1] > 10:
                return True
            length, _, pos = v
            field = desc.fields_by_number.get(number)
            if field is not None and field.type == F.TYPE_MESSAGE and \
                    overlong(data[pos:pos + length], field.message_type):
                return True
            pos += length
        else:
            return False
    return False


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(1 + rng.randrange(4)):
        op = rng.randrange(6)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b = b[: rng.randrange(len(b) + 1)]
        elif op == 2:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        elif op == 3 and b:
            i = rng.randrange(len(b))
            j = min(len(b), i + rng.randrange(1, 16))
            b[i:i] = b[i:j]  # duplicate a stretch
        elif op == 4 and b:
            i = rng.randrange(len(b))
            b[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x09, 0x0D])
        else:
            b += data[: rng.randrange(len(data) + 1)]  # append itself
    return bytes(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decoder", required=True)
    ap.add_argument("--protoc", default="")
    ap.add_argument("--proto", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--mutations", type=int, default=20000)
    ap.add_argument("--seed", type=int,
                    default=int(os.environ.get("SIDECAR_TEST_SEED", "17")))
    args = ap.parse_args()
    if not args.protoc or not os.path.exists(args.protoc):
        print("SKIPPED: protoc not found")
        return SKIP
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        print("SKIPPED: python3-protobuf is not installed")
        return SKIP
    pb = load_module(args.protoc, args.proto)
    # protobuf warns when it stops at a stray end-group tag.
    warnings.simplefilter("ignore", RuntimeWarning)

    seeds = []
    for name in sorted(os.listdir(args.corpus)):
        with open(os.path.join(args.corpus, name), "rb") as f:
            seeds.append(f.read())
    rng = random.Random(args.seed)
    inputs = list(seeds)
    for _ in range(args.mutations):
        inputs.append(mutate(rng, rng.choice(seeds)))

    stream = b"".join(struct.pack("<I", len(i)) + i for i in inputs)
    out = subprocess.run([args.decoder], input=stream, capture_output=True,
                         check=True).stdout.decode().splitlines()
    assert len(out) == len(inputs), (len(out), len(inputs))

    counts = {"agree accept": 0, "agree reject": 0}  # then known ones
    counts.update({k: 0 for k in KNOWN})
    counts["overlong varint"] = 0  # the codec lenient
    failures = []
    for data, line in zip(inputs, out):
        ours_ok = line.startswith("A ")
        try:
            theirs = dump(pb.Envelope.FromString(data))
            theirs_ok = True
        except Exception:  # DecodeError, and RuntimeWarning-free others
            theirs = None
            theirs_ok = False
        if ours_ok and theirs_ok:
            pattern = re.escape(theirs).replace(EITHER, "[ns]")
            if re.fullmatch(pattern, line[2:]):
                counts["agree accept"] += 1
                continue
            failures.append(("values differ", data, line, theirs))
        elif not ours_ok and not theirs_ok:
            counts["agree reject"] += 1
        elif theirs_ok:
            known = [k for k, why in KNOWN.items() if why in line]
            if known:
                counts[known[0]] += 1
            else:
                failures.append(("only protobuf accepts", data, line, theirs))
        elif overlong(data, pb.Envelope.DESCRIPTOR):
            counts["overlong varint"] += 1
        else:
            failures.append(("only the codec accepts", data, line, None))

    print("seed %d, %d inputs (%d corpus, %d mutations)" %
          (args.seed, len(inputs), len(seeds), args.mutations))
    for k, v in counts.items():
        print("  %-18s %d" % (k, v))
    by = collections.Counter((k, o.split(" ", 1)[1] if o.startswith("R ") else "") for k, _, o, _ in failures)
    for (k, why), n in by.most_common():
        print("  %d x %s %s" % (n, k, why))
    for kind, data, ours, theirs in failures[:10]:
        print("DIFFERENCE: %s\n  input %s\n  codec    %s\n  protobuf %s" %
              (kind, data.hex(), ours, theirs))
    if failures:
        print("FAIL: %d differences" % len(failures))
        return 1
    if counts["agree accept"] == 0 or counts["agree reject"] == 0:
        print("FAIL: nothing compared on one side")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
