"""Conformance cases: SessionConfig."""

import time

import msgpack  # Debian's python3-msgpack

from harness import EVALS, TRACES, case, check, eq, evaluation, expect_invalid
from intake_client import Intake
from wire import field_bytes, field_varint


@case
def session_config_stats_and_absent_keeps(ctx):
    """flush_interval_ms, request_timeout_ms, trace_buffer_cap_bytes are shown
    in stats; an absent field keeps the current value."""
    c = ctx.conn()
    s0 = ctx.stats()["session_config"]
    eq((s0["flush_interval_ms"], s0["request_timeout_ms"]), (1000, 3000), "defaults")
    eq(s0["trace_buffer_cap_bytes"], 32 * 1024 * 1024, "default trace cap")
    c.send(session_config=ctx.pb.SessionConfig(flush_interval_ms=1500, request_timeout_ms=2500,
                                               trace_buffer_cap_bytes=16 * 1024 * 1024))
    s1 = ctx.stats()
    eq(s1["session_config"]["flush_interval_ms"], 1500, "flush_interval_ms")
    eq(s1["session_config"]["request_timeout_ms"], 2500, "request_timeout_ms")
    eq(s1["session_config"]["trace_buffer_cap_bytes"], 16 * 1024 * 1024, "trace_buffer_cap_bytes")
    eq(s1["delivery"]["traces"]["cap_bytes"], 16 * 1024 * 1024, "delivery.traces.cap_bytes")
    c.send(session_config=ctx.pb.SessionConfig())
    s2 = ctx.stats()
    eq(s2["session_config"]["applied"], s1["session_config"]["applied"] + 1, "applied")
    eq(s2["session_config"]["flush_interval_ms"], 1500, "absent keeps")
    c.send(session_config=ctx.pb.SessionConfig(flush_interval_ms=1000, request_timeout_ms=3000,
                                               trace_buffer_cap_bytes=32 * 1024 * 1024))
    eq(ctx.stats()["session_config"]["flush_interval_ms"], 1000, "restored")


@case
def session_config_zero_and_bad_url_refused(ctx):
    """0 for a number, an agent_url that does not parse or is over 512
    bytes: the whole SessionConfig is refused (nothing applied)."""
    c = ctx.conn()
    bad = [
        (dict(flush_interval_ms=0, request_timeout_ms=1234), "flush_interval_ms"),
        (dict(request_timeout_ms=0), "request_timeout_ms"),
        (dict(trace_buffer_cap_bytes=0), "trace_buffer_cap_bytes"),
        (dict(agent_url="ftp://example", request_timeout_ms=1234), "agent_url"),
        (dict(agent_url=""), "agent_url"),
        (dict(agent_url="http://127.0.0.1:1/" + "p" * 493), "agent_url"),  # 512 bytes
        (dict(agent_url="http://127.0.0.1:1/\n"), "agent_url"),
        (dict(agent_url="http://127.0.0.1:1/a\0b"), "agent_url"),
        (dict(agent_url="http://127.0.0.1:1/a\x7fb"), "agent_url"),
    ]
    for fields, part in bad:
        before = ctx.stats()
        seq = c.send(session_config=ctx.pb.SessionConfig(**fields))
        expect_invalid(c, seq, "session_config", ctx, before, part)
        after = ctx.stats()
        eq(after["session_config"]["request_timeout_ms"], 3000, "nothing applied")
        eq(after["session_config"]["applied"], before["session_config"]["applied"], "not applied")
        eq(after["delivery"]["agent"], before["delivery"]["agent"], "agent unchanged")


def agent_stats(ctx, url):
    return [a for a in ctx.stats()["agents"] if a["agent"] == url]


@case
def session_config_agent_url(ctx):
    """agent_url routes this connection (its session) to another agent; the
    other connections keep theirs. 511 bytes is accepted (512 is refused:
    session_config_zero_and_bad_url_refused)."""
    with Intake.start(ctx.tmpdir) as other:
        c = ctx.conn()
        bystander = ctx.conn()
        try:
            url511 = other.url + "/"
            url511 = url511 + "p" * (511 - len(url511))
            before = ctx.stats()["session_config"]["applied"]
            c.send(session_config=ctx.pb.SessionConfig(agent_url=url511))
            eq(ctx.stats()["session_config"]["applied"], before + 1, "511 bytes applied")
            eq([a["sessions"] for a in agent_stats(ctx, url511)], [1], "agent listed")
            eq(ctx.stats()["delivery"]["agent"], ctx.intake.url, "default agent kept")
            c.send(session_config=ctx.pb.SessionConfig(agent_url=other.url))
            eq([a["sessions"] for a in agent_stats(ctx, url511)], [0], "session moved")
            payload, ids = ctx.traces()
            c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
            c.flush()
            other.wait(TRACES, count=1, timeout=10)
            eq(ctx.intake.requests(TRACES), [], "first intake got nothing")
            payload, ids = ctx.traces()
            bystander.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
            bystander.flush()
            ctx.intake.wait(TRACES, count=1, timeout=10)
            eq(len(other.requests(TRACES)), 1, "the other session's agent got nothing more")
            # The intake records a request before the sidecar reads the answer.
            deadline = time.monotonic() + 10
            while (agent_stats(ctx, other.url)[0]["traces"]["delivered"]["traces"] != 1
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            eq(agent_stats(ctx, other.url)[0]["traces"]["delivered"]["traces"], 1,
               "delivered, counted per agent")
        finally:
            c.send(session_config=ctx.pb.SessionConfig(agent_url=ctx.intake.url))
        eq(ctx.stats()["delivery"]["agent"], ctx.intake.url, "restored")


@case
def session_config_flush_interval_effect(ctx):
    """With a 10-minute flush interval a trace waits; Flush{deliver_now} sends
    it; Flush{deliver_now=false} does not."""
    c = ctx.conn()
    c.send(session_config=ctx.pb.SessionConfig(flush_interval_ms=600000))
    payload, ids = ctx.traces()
    c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
    r = c.flush(deliver_now=False)
    eq(r.status, ctx.pb.FlushReply.STATUS_OK, "deliver_now=false answers OK")
    time.sleep(2)
    eq(ctx.intake.requests(TRACES), [], "nothing sent before the interval")
    eq(c.flush(deliver_now=True).status, ctx.pb.FlushReply.STATUS_OK, "deliver_now")
    ctx.delivered(TRACES)
    eq(ctx.trace_ids_at_intake(), ids, "sent by deliver_now")
    c.send(session_config=ctx.pb.SessionConfig(flush_interval_ms=1000))


@case
def session_config_request_timeout_effect(ctx):
    """request_timeout_ms: a stalled agent answer times out and is retried."""
    c = ctx.conn()
    c.send(session_config=ctx.pb.SessionConfig(request_timeout_ms=300))
    before = ctx.stats()["delivery"]["traces"]["delivery"]["retried"]
    ctx.intake.behavior(path_prefix=TRACES, mode="stall", stall_ms=3000, count=1)
    payload, ids = ctx.traces()
    c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
    c.flush()
    ctx.delivered(TRACES, 2, timeout=15)
    after = ctx.stats()["delivery"]["traces"]["delivery"]["retried"]
    check(after >= before + 1, "retried after a timeout (%d -> %d)" % (before, after))
    c.send(session_config=ctx.pb.SessionConfig(request_timeout_ms=3000))


@case
def session_config_trace_buffer_cap_effect(ctx):
    """trace_buffer_cap_bytes: beyond the cap the oldest payloads are
    dropped, counted as buffer_full, and the newest is delivered."""
    pb = ctx.pb
    c = ctx.conn()
    c.send(session_config=pb.SessionConfig(flush_interval_ms=600000, trace_buffer_cap_bytes=1000))
    try:
        before = ctx.stats()["delivery"]["traces"]["drops"]["buffer_full"]
        ids = []
        for _ in range(3):  # each about 640 bytes: one fits under 1000
            ctx.trace_id += 1
            ids.append(ctx.trace_id)
            payload = msgpack.packb([[{"trace_id": ctx.trace_id, "span_id": 1, "blob": "x" * 600}]])
            c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
        c.ping()
        after = ctx.stats()["delivery"]["traces"]["drops"]["buffer_full"]
        eq((after["payloads"] - before["payloads"], after["traces"] - before["traces"]), (2, 2),
           "buffer_full: the two oldest")
        c.flush(deliver_now=True)
        ctx.delivered(TRACES)
        eq(ctx.trace_ids_at_intake(), ids[-1:], "the newest delivered")
    finally:
        c.send(session_config=pb.SessionConfig(flush_interval_ms=1000, trace_buffer_cap_bytes=32 * 1024 * 1024))
    eq(ctx.stats()["session_config"]["trace_buffer_cap_bytes"], 32 * 1024 * 1024, "restored")


@case
def session_config_flag_counts_per_connection(ctx):
    """flag_evaluation_counts_enabled=false: this connection's evaluations are
    counted, not delivered; another connection's are; true turns it back on."""
    off = ctx.conn()
    on = ctx.conn()
    off.send(session_config=ctx.pb.SessionConfig(flag_evaluation_counts_enabled=False))
    before = ctx.stats()["flag_evaluations"]
    off.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(
        evaluations=[evaluation(ctx.pb, "off-flag", 3)], dropped=2))
    on.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb, "on-flag", 1)]))
    off.flush()
    on.flush()
    ctx.delivered(EVALS)
    keys = [e["flag"]["key"] for e in ctx.events()]
    eq(keys, ["on-flag"], "only the enabled connection's evaluations")
    after = ctx.stats()["flag_evaluations"]
    eq(after["batches_disabled"], before["batches_disabled"] + 1, "batches_disabled")
    eq(after["evaluations_disabled"], before["evaluations_disabled"] + 5, "evaluations_disabled")
    # A disabled connection still has its batches checked.
    before = ctx.stats()
    seq = off.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb, "", 1)]))
    expect_invalid(off, seq, "flag_evaluations", ctx, before, "flag key")
    ctx.intake.reset()
    off.send(session_config=ctx.pb.SessionConfig(flag_evaluation_counts_enabled=True))
    off.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb, "back-on", 1)]))
    off.flush()
    ctx.delivered(EVALS)
    eq([e["flag"]["key"] for e in ctx.events()], ["back-on"], "enabled again")


@case
def session_config_reserved_field_6_is_unknown(ctx):
    """Field 6 (was idle_timeout_ms) is reserved: a sender that still writes
    it is read like any unknown field."""
    c = ctx.conn()
    before = ctx.stats()
    body = field_varint(1, 5) + field_bytes(3, field_varint(6, 60000) + field_varint(2, 1000))
    c.send_raw(body)
    c.ping()
    after = ctx.stats()
    eq(after["session_config"]["applied"], before["session_config"]["applied"] + 1, "applied")
    eq(after["invalid_actions"], before["invalid_actions"], "not invalid")
