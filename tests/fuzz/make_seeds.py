#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are real inputs: the golden wire vectors (tests/vectors), trace
payloads shaped like a tracer's (python3-msgpack), the local intake's /info
and trace answers, agent URLs and settings as users write them. Run it after
the vectors change; fuzzing adds its finds next to these (ci/fuzz.sh).
Usage: make_seeds.py [OUT_DIR]   (default: tests/fuzz/corpus)"""
import json
import os
import struct
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors")
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
import intake  # noqa: E402  (AGENT_INFO, TRACES_RESPONSE)


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vectors():
    for name in sorted(os.listdir(VECTORS)):
        if name.endswith(".bin"):
            with open(os.path.join(VECTORS, name), "rb") as f:
                yield name[:-4], f.read()


def span(trace_id, span_id, parent, name, meta=None, metrics=None, links=None):
    s = {"trace_id": trace_id, "span_id": span_id, "parent_id": parent,
         "name": name, "resource": "GET /users/{id}", "service": "web",
         "type": "web", "start": 1700000000000000000, "duration": 1234567,
         "error": 0, "meta": meta or {"http.method": "GET", "env": "prod",
                                      "component": "php"},
         "metrics": metrics or {"_sampling_priority_v1": 1.0, "_dd.top": 1}}
    if links:
        s["span_links"] = links
    return s


def trace_payloads():
    one = [[span(1, 1, 0, "web.request")]]
    two = [[span(2, 10, 0, "web.request"), span(2, 11, 10, "pdo.query",
            meta={"db.type": "mysql", "sql.query": "SELECT 1"})],
           [span(3, 20, 0, "cli.command")]]
    linked = [[span(4, 30, 0, "queue.consume", links=[
        {"trace_id": 9, "span_id": 8, "attributes": {"link.kind": "follows"},
         "flags": 1}])]]
    unicode = [[span(5, 40, 0, "web.request",
                meta={"http.url": "https://exämple.test/ü?q=1"})]]
    return {"one": one, "two": two, "linked": linked, "unicode": unicode,
            "empty": []}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    for i, (name, body) in enumerate(vectors()):
        # frames: byte 0 chooses the chunking, then the frame as sent.
        write(out, "frames", name, bytes([i]) + struct.pack("<I", len(body)) + body)
        write(out, "actions", name, body)
        # The differential check reads the same envelopes.
    payloads = {k: msgpack.packb(v) for k, v in trace_payloads().items()}
    for k, p in payloads.items():
        # msgpack: byte 0 is where the input is cut in two payloads.
        write(out, "msgpack", k, bytes([min(len(p), 255)]) + p + payloads["one"])
        write(out, "msgpack", k + "_alone", bytes([255]) + p)
    info = json.dumps(intake.AGENT_INFO).encode()
    write(out, "agent_info", "intake_info", info)
    write(out, "agent_info", "traces_answer", intake.TRACES_RESPONSE)
    write(out, "agent_info", "escapes", json.dumps(
        {"endpoints": ["/v0.4/traces", "/a\"b\\c", "/\u00e9"], "x": [1, {"y": None}],
         "rate_by_service": {"service:web,env:prod": 0.5}}).encode())
    urls = [b"http://localhost:8126", b"http://agent:8126/prefix/",
            b"http://[::1]:8126", b"unix:///var/run/datadog/apm.socket",
            b"https://agent.example:443", b"http://user@host:1/x?q#f"]
    for i, u in enumerate(urls):
        write(out, "agent_url", "url%d" % i, u)
    write(out, "agent_url", "host_port", b"\x00datadog-agent\x008126")
    write(out, "agent_url", "bad_url_host_port", b"ftp://x\x00agent\x0070000")
    settings = [
        [b"subprocess", b"/usr/bin/sidecar", b"/run/sidecar", b"1000", b"60000",
         b"33,1000", b"S-1-5-32-545,S-1-5-82-1-2-3-4-5", b"http://localhost:8126",
         b"agent", b"8126", b"true"],
        [b"THREAD", b"", b"", b"-1", b"4294967296", b"33,,1000", b"s-1-5-18",
         b"unix:///var/run/datadog/apm.socket", b"", b"http", b"0"],
        [b"auto", b"x", b"y", b"5", b"0", b"0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
         b"S-1", b"debug", b"warn", b"1", b"false"],
    ]
    for i, s in enumerate(settings):
        write(out, "settings", "settings%d" % i, b"\x00".join(s))
    # shared_state: the record's head (pid, flags, updated_ms, info_len,
    # rates_len) and the start of `info`, as the sidecar publishes them.
    head = struct.pack("<IIqII", 4242, 3, 1700000000000, len(info), 19)
    write(out, "shared_state", "healthy", head + info + bytes(64))
    write(out, "shared_state", "empty", struct.pack("<IIqII", 1, 1, 0, 0, 0))
    # rendezvous: the word (pid | state << 32 | generation << 40, stored
    # little-endian) as the Windows owner publishes it, then an endpoint.
    pipe = b"\\\\.\\pipe\\sidecar-0.1.0-S-1-5-21-1004336348-1177238915-682003330-1001"
    records = {"starting": (5120, 1, 0), "listening": (5120, 2, 0),
               "listening_gen3": (777, 2, 3), "gen_max": (0xFFFFFFFF, 2, 0xFFFFFF),
               "nobody": (0, 0, 0), "damaged_state": (5120, 3, 0),
               "owner_without_pid": (0, 2, 1)}
    for k, (pid, state, gen) in records.items():
        word = pid | state << 32 | gen << 40
        write(out, "rendezvous", k, struct.pack("<Q", word) + pipe)
    write(out, "rendezvous", "thread_mode", struct.pack("<Q", 4242 | 2 << 32) + pipe + b"-thread")
    write(out, "rendezvous", "long_name", struct.pack("<Q", 4242 | 2 << 32 | 9 << 40) + b"p" * 250)
    for name, data in exposure_recipes().items():
        write(out, "exposures", name, data)


def exposure_recipes():
    """Inputs of fuzz_exposures: recipes of exposure batches (the reader is
    read_recipe in fuzz_exposures.c)."""
    def s(b):
        return bytes([len(b)]) + b
    STRING, NUMBER, BOOL, NONE, TWO, SMALL = range(6)

    def exposure(flag, alloc=None, variant=None, subject=None, ts=None,
                 attrs=(), no_flag=False):
        f = (alloc is not None) | (variant is not None) << 1 | \
            (subject is not None) << 2 | no_flag << 3 | (ts is not None) << 4 | \
            len(attrs) << 5
        out = bytes([f])
        if ts is not None:
            out += struct.pack("<q", ts)
        if not no_flag:
            out += s(flag)
        for v in (alloc, variant, subject):
            if v is not None:
                out += s(v)
        for key, kind, value in attrs:
            out += s(key) + bytes([kind])
            if kind in (STRING, TWO):
                out += s(value if kind == STRING else value[0])
            if kind in (NUMBER, TWO):
                out += struct.pack("<d", value if kind == NUMBER else value[1])
            if kind == SMALL:
                out += bytes([value & 0xff])
            if kind == BOOL:
                out += bytes([value])
        return out

    def batch(context, exposures):
        present = sum(1 << i for i, c in enumerate(context) if c is not None)
        out = bytes([present])
        for c in context:
            if c is not None:
                out += s(c)
        return out + bytes([len(exposures)]) + b"".join(exposures)

    real = exposure(b"new-checkout", b"alloc-2024-q1", b"treatment", b"user-42",
                    ts=1700000000123,
                    attrs=[(b"plan", STRING, b"pro"), (b"age", SMALL, 132),
                           (b"beta", BOOL, 1), (b"score", NUMBER, 0.75)])
    return {
        "one": batch((b"web", b"prod", b"1.2.3"), [real]),
        "several": batch((b"web", None, b""), [
            real, exposure(b"dark-mode"), exposure(b"f", b"", b"", b""),
            exposure(b"limits", subject=b"acct-7",
                     attrs=[(b"region", STRING, b"eu-west-1"),
                            (b"ratio", NUMBER, float("nan")),
                            (b"big", NUMBER, float("inf"))])]),
        "empty_batch": batch((None, None, None), []),
        "utf8": batch((b"caf\xc3\xa9", None, None), [
            exposure("clé-ü".encode(), subject="ユーザー".encode(),
                     attrs=[("ключ".encode(), STRING, "значение".encode())])]),
        "raw_bytes": batch((b"\xff\xfe\x00x", b"\x01\x1f\"\\", None), [
            exposure(b"\xc0\xaf\xed\xa0\x80", b"\x00", b"\x7f", b"\xf4\x90\x80\x80",
                     attrs=[(b"\x00k", STRING, b"\xe2\x82"), (b"", BOOL, 0)])]),
        "no_flag_key": batch((b"web", None, None), [real, exposure(b"", no_flag=True)]),
        "empty_flag_key": batch((b"web", None, None), [exposure(b"")]),
        "attribute_without_value": batch((b"web", None, None), [
            exposure(b"f", attrs=[(b"k", NONE, None)])]),
        "attribute_with_two": batch((b"web", None, None), [
            exposure(b"f", attrs=[(b"k", TWO, (b"v", 1.5))])]),
        "duplicate_keys": batch((b"web", None, None), [
            exposure(b"f", attrs=[(b"k", STRING, b"a"), (b"k", STRING, b"b"),
                                  (b"k", BOOL, 1)])]),
        "old_and_negative_time": batch((None, b"prod", None), [
            exposure(b"f", ts=-1), exposure(b"g", ts=-(1 << 63)),
            exposure(b"h", ts=(1 << 63) - 1)]),
    }


if __name__ == "__main__":
    main()
