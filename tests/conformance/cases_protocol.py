"""Conformance cases: protobuf rules (unknown and duplicated fields), every
ErrorReply code and the frame limit, the shared-state name, descriptors."""

import os
import tempfile

import msgpack  # Debian's python3-msgpack

import wire
from harness import EVALS, EXPOSURES, MAX_FRAME, TRACES, case, check, eq, evaluation, expect_protocol_error, non_cloexec_fds
from wire import field_bytes, field_varint


# ---- protobuf rules: unknown and duplicated fields ---------------------------------------


@case
def unknown_fields_skipped(ctx):
    """Unknown fields, top level and inside actions, every wire type, are skipped."""
    pb = ctx.pb
    c = ctx.conn()
    junk = (field_varint(50, 7) + field_bytes(51, b"xyz") + bytes([0x9d, 0x03]) + b"\x01\x02\x03\x04"
            + bytes([0xa1, 0x03]) + b"\x00" * 8)  # 50 varint, 51 bytes, 51 fixed32, 52 fixed64
    ping = pb.Ping(client_time_ns=5).SerializeToString() + junk
    c.send_raw(field_varint(1, 77) + junk + field_bytes(8, ping))
    env = c.recv()
    eq((env.seq, env.WhichOneof("action"), env.ping_reply.client_time_ns), (77, "ping_reply", 5), "ping with junk")
    hello = pb.Hello(language="junk-ok").SerializeToString() + junk
    c.send_raw(field_varint(1, 78) + field_bytes(2, hello))
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.flush()
    (r,) = ctx.delivered(TRACES)
    eq(r["headers"]["datadog-meta-lang"], "junk-ok", "Hello read around unknown fields")


@case
def duplicated_fields_merge(ctx):
    """Protobuf merging: an action field twice is one action (lists
    concatenated, scalars last); a scalar twice keeps the last; a different
    action later replaces the earlier (oneof)."""
    pb = ctx.pb
    c = ctx.conn(service="dup")
    b1 = pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "dup-1")], dropped=5).SerializeToString()
    b2 = pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "dup-2", 2)], dropped=3).SerializeToString()
    body = field_varint(1, 40) + field_bytes(5, b1) + field_bytes(5, b2)
    # What Google's runtime makes of it:
    parsed = pb.Envelope()
    parsed.ParseFromString(body)
    eq(len(parsed.flag_evaluation_batch.evaluations), 2, "reference parse: 2 evaluations")
    eq(parsed.flag_evaluation_batch.dropped, 3, "reference parse: last dropped")
    before = ctx.stats()["flag_evaluations"]["dropped"]
    c.send_raw(body)
    e1 = pb.ExposureBatch(exposures=[pb.Exposure(flag_key="x1")]).SerializeToString()
    e2 = pb.ExposureBatch(exposures=[pb.Exposure(flag_key="x2")]).SerializeToString()
    c.send_raw(field_varint(1, 41) + field_bytes(6, e1) + field_bytes(6, e2))
    c.flush()
    ctx.delivered(EVALS)
    ctx.delivered(EXPOSURES)
    eq(sorted(e["flag"]["key"] for e in ctx.events()), ["dup-1", "dup-2"], "both evaluations")
    eq(ctx.stats()["flag_evaluations"]["dropped"], before + 3, "dropped: the last value")
    eq([e["flag"]["key"] for e in ctx.exposures()], ["x1", "x2"], "both exposures")
    # Same string field twice: the last wins.
    h = field_bytes(4, b"first") + field_bytes(4, b"second")
    c.send_raw(field_varint(1, 42) + field_bytes(2, h))
    # Hello split over two occurrences of the action field.
    c.send_raw(field_varint(1, 43) + field_bytes(2, field_bytes(4, b"split")) + field_bytes(2, field_bytes(5, b"9")))
    ctx.intake.reset()
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.flush()
    (r,) = ctx.delivered(TRACES)
    eq(r["headers"]["datadog-meta-lang"], "split", "merged Hello: language")
    eq(r["headers"]["datadog-meta-lang-version"], "9", "merged Hello: language_version")
    # seq twice: last wins; ping then stats_request: the later action wins.
    c.send_raw(field_varint(1, 1) + field_bytes(8, b"") + field_varint(1, 50) + field_bytes(9, b""))
    env = c.recv()
    eq((env.seq, env.WhichOneof("action")), (50, "stats_reply"), "oneof: the last action")
    # An action, another, then the first again: only the last run counts.
    t_old = pb.TracePayload(msgpack=b"not msgpack").SerializeToString()
    payload, ids = ctx.traces()
    t_new = pb.TracePayload(msgpack=payload, trace_count=1).SerializeToString()
    ctx.intake.reset()
    c.send_raw(field_varint(1, 51) + field_bytes(4, t_old) + field_bytes(8, b"") + field_bytes(4, t_new))
    c.flush()
    ctx.delivered(TRACES)
    eq(ctx.trace_ids_at_intake(), ids, "the trace after the ping only")



@case
def fields_inside_list_items(ctx):
    """The same rules inside the items of repeated fields: unknown fields of
    every wire type skipped, a scalar twice keeps the last, a repeated field
    interleaved with others collects every item in order (evaluations and
    their context, exposures and their attributes, telemetry dependencies),
    exactly as Google's runtime reads the same bytes."""
    pb = ctx.pb
    junk = (field_varint(50, 7) + field_bytes(51, b"xyz") + bytes([0x9d, 0x03]) + b"\x01\x02\x03\x04"
            + bytes([0xa1, 0x03]) + b"\x00" * 8)
    a1 = pb.ContextAttribute(key="a", string_value="1").SerializeToString() + junk
    a2 = pb.ContextAttribute(key="b", bool_value=True).SerializeToString()
    e1 = (pb.FlagEvaluation(flag_key="old", evaluation_count=2, first_evaluation_ms=1,
                            last_evaluation_ms=2).SerializeToString()
          + field_bytes(8, a1) + junk + field_bytes(1, b"item-1") + field_bytes(8, a2))
    e2 = evaluation(pb, "item-2").SerializeToString() + junk
    batch = field_bytes(1, e1) + field_varint(2, 4) + junk + field_bytes(1, e2) + field_varint(2, 5)
    body = field_varint(1, 60) + field_bytes(5, batch)
    ref = pb.Envelope()
    ref.ParseFromString(body)
    eq([(e.flag_key, [a.key for a in e.context]) for e in ref.flag_evaluation_batch.evaluations],
       [("item-1", ["a", "b"]), ("item-2", [])], "reference parse")
    c = ctx.conn()
    before = ctx.stats()["flag_evaluations"]["dropped"]
    c.send_raw(body)
    x1 = (pb.Exposure(flag_key="x1").SerializeToString() + field_bytes(6, a1) + junk + field_varint(1, 5)
          + field_bytes(6, a2))
    x2 = pb.Exposure(flag_key="x2").SerializeToString()
    exposures = field_bytes(1, x1) + field_bytes(2, b"il-svc") + junk + field_bytes(1, x2)
    c.send_raw(field_varint(1, 61) + field_bytes(6, exposures))
    c.flush()
    ctx.delivered(EVALS)
    ctx.delivered(EXPOSURES)
    got = {e["flag"]["key"]: e for e in ctx.events()}
    eq(sorted(got), ["item-1", "item-2"], "both evaluations, the last flag_key")
    eq((got["item-1"]["evaluation_count"], got["item-1"]["context"]["evaluation"]), (2, {"a": "1", "b": True}),
       "context items around other fields")
    eq(ctx.stats()["flag_evaluations"]["dropped"], before + 5, "dropped: the last value")
    eq(ctx.exposures(), [{"timestamp": 5, "flag": {"key": "x1"}, "subject": {"attributes": {"a": "1", "b": True}}},
                         {"timestamp": 0, "flag": {"key": "x2"}, "subject": {}}], "exposures and attributes")
    eq(ctx.bodies(EXPOSURES)[0]["context"]["service"], "il-svc", "batch service between the items")
    deps = (field_bytes(3, pb.TelemetryDependency(name="d1").SerializeToString() + junk) + field_varint(1, 2) + junk
            + field_bytes(3, pb.TelemetryDependency(name="d2").SerializeToString()))
    tel = ctx.conn(service="conf-tel-items")
    known = ctx.stats()["telemetry"]["dependencies_sent"]
    tel.send_raw(field_varint(1, 62) + field_bytes(12, deps))
    tel.flush()
    eq(ctx.stats()["telemetry"]["dependencies_sent"], known + 2, "both dependencies")


# ---- ErrorReply codes and frame limits -------------------------------------------------------


@case
def error_frame_too_large(ctx):
    """4 MiB + 1: CODE_FRAME_TOO_LARGE and close; exactly 4 MiB is read."""
    pb = ctx.pb
    c = ctx.conn()
    # A trace payload whose envelope is exactly MAX_FRAME bytes.
    blob = b"x" * (MAX_FRAME - 64)
    raw = msgpack.packb([[{"trace_id": 1, "span_id": 1, "blob": blob}]])
    env = pb.Envelope(seq=3, trace_payload=pb.TracePayload(msgpack=raw, trace_count=1))
    pad = MAX_FRAME - len(env.SerializeToString())
    raw = msgpack.packb([[{"trace_id": 1, "span_id": 1, "blob": blob + b"x" * pad}]])
    env = pb.Envelope(seq=3, trace_payload=pb.TracePayload(msgpack=raw, trace_count=1))
    body = env.SerializeToString()
    if len(body) != MAX_FRAME:  # a length prefix grew by a byte: trim
        raw = msgpack.packb([[{"trace_id": 1, "span_id": 1, "blob": blob + b"x" * (pad - (len(body) - MAX_FRAME))}]])
        body = pb.Envelope(seq=3, trace_payload=pb.TracePayload(msgpack=raw, trace_count=1)).SerializeToString()
    eq(len(body), MAX_FRAME, "frame of exactly the limit")
    before = ctx.stats()
    c.send_raw(body)
    c.ping()
    eq(ctx.stats()["actions"]["trace"], before["actions"]["trace"] + 1, "read and handled")
    c.close()
    c = ctx.conn(hello=False)
    c.sock.sendall(wire.struct.pack("<I", MAX_FRAME + 1))
    frames = c.expect_closed()
    eq(len(frames), 1, "one reply before the close")
    eq((frames[0].seq, frames[0].error_reply.code), (0, pb.ErrorReply.CODE_FRAME_TOO_LARGE), "seq and code")
    eq(ctx.stats()["oversized_frames"], before["oversized_frames"] + 1, "oversized_frames")



@case
def error_frame_timeout(ctx):
    """A frame not complete --frame-timeout (1.5 s here) after its first
    byte: CODE_FRAME_TIMEOUT (seq 0) and close, counted in
    reassembly.stalled_frames_closed."""
    pb = ctx.pb
    before = ctx.stats()["reassembly"]["stalled_frames_closed"]
    c = ctx.conn(hello=False)
    c.sock.sendall(wire.struct.pack("<I", 100) + b"\x08\x01")  # 2 of 100 bytes
    frames = c.expect_closed(timeout=10)
    eq([(f.seq, f.error_reply.code) for f in frames], [(0, pb.ErrorReply.CODE_FRAME_TIMEOUT)],
       "ErrorReply (seq 0) before the close")
    eq(ctx.stats()["reassembly"]["stalled_frames_closed"], before + 1, "stalled_frames_closed")


@case
def error_decode_failed(ctx):
    expect_protocol_error(ctx, [b"\xff\xff\xff", field_bytes(2, b"\x22\x10abc"), b"\x0a"],
                          ctx.pb.ErrorReply.CODE_DECODE_FAILED, "decode_errors")


@case
def error_unknown_action(ctx):
    """Empty envelope, a reply sent the wrong way, an action number from a
    newer schema (an unknown field: no known action remains)."""
    pb = ctx.pb
    expect_protocol_error(ctx, [b"", field_varint(1, 1), pb.Envelope(seq=2, ping_reply=pb.PingReply()).SerializeToString(),
                                pb.Envelope(seq=2, error_reply=pb.ErrorReply()).SerializeToString(),
                                field_varint(1, 3) + field_bytes(50, b"")],
                          pb.ErrorReply.CODE_UNKNOWN_ACTION, "unknown_actions")


def fnv1a64(key):
    """FNV-1a as docs/shared-state.md writes it, from that page alone."""
    h = 14695981039346656037
    for byte in key.encode():
        h = ((h ^ byte) * 1099511628211) & (2 ** 64 - 1)
    return "%016x" % h


@case
def shared_state_name(ctx):
    """docs/shared-state.md, "Segment": sidecar-<version>-<FNV-1a 64 of the
    key>, the key being the endpoint (default agent), the endpoint, a space
    and the agent as the stats write it (another agent), or `ledger:` and
    the endpoint (the ledger); the page's own example holds."""
    eq(fnv1a64("@sidecar-x-0"), "96aa4d0c5733593a", "the example of docs/shared-state.md")
    c = ctx.conn()
    c.send(session_config=ctx.pb.SessionConfig(agent_url="http://127.0.0.1:9"))  # another agent: its own segment
    s = ctx.stats()
    c.close()
    keys = [ctx.endpoint, "ledger:" + ctx.endpoint]
    keys += [ctx.endpoint + " " + a["agent"] for a in s["agents"] if a["agent"] != s["delivery"]["agent"]]
    check("%s http://127.0.0.1:9" % ctx.endpoint in keys, "the other agent is listed: %r" % s["agents"])
    for key in keys:
        name = "sidecar-%s-%s" % (s["version"], fnv1a64(key))
        check(os.path.exists("/dev/shm/" + name) or os.path.exists(os.path.join(tempfile.gettempdir(), name + ".shm")),
              "segment %s (key %r) exists" % (name, key))


@case
def descriptors_close_on_exec(ctx):
    """After deliveries, every descriptor of the sidecar but 0-2 is close-on-exec."""
    pb = ctx.pb
    c = ctx.conn()
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "fds")]))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="fds")]))
    c.send(metric=pb.Metric(type=pb.Metric.METRIC_TYPE_COUNT, name="conf.fds", value=1))
    eq(c.request("flush_reply", flush=pb.Flush(deliver_now=True, wait_for_delivery=True)).status,
       pb.FlushReply.STATUS_OK, "delivered first")
    bad = non_cloexec_fds(ctx.sidecar.pid)
    eq(bad, [], "descriptors without close-on-exec")
