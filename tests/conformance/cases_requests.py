"""Conformance cases: Flush, Ping, StatsRequest."""

import os
import re
import time


import wire
from harness import EVALS, EXPOSURES, TRACES, case, check, eq, evaluation


@case
def flush_deliver_now_every_kind(ctx):
    """deliver_now: traces, evaluations and exposures all start at the barrier."""
    pb = ctx.pb
    c = ctx.conn()
    c.send(session_config=pb.SessionConfig(flush_interval_ms=600000))
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "now")]))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="now")]))
    eq(c.flush(deliver_now=True).status, pb.FlushReply.STATUS_OK, "status")
    ctx.delivered(TRACES)
    ctx.delivered(EVALS)
    ctx.delivered(EXPOSURES)
    c.send(session_config=pb.SessionConfig(flush_interval_ms=1000))


@case
def flush_without_deliver_now_every_kind(ctx):
    """deliver_now=false: when the reply comes, everything before the
    barrier is in the sidecar's hands (the trace queued, the evaluations
    merged into the aggregator, the exposures handed to the flusher);
    delivery then keeps its own schedule, with no other Flush."""
    pb = ctx.pb
    c = ctx.conn()
    before = ctx.stats()
    payload, ids = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "later", 3)]))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="later")]))
    eq(c.flush(deliver_now=False).status, pb.FlushReply.STATUS_OK, "answered at once")
    after = ctx.stats()
    eq(after["delivery"]["traces"]["submitted"]["traces"], before["delivery"]["traces"]["submitted"]["traces"] + 1,
       "the trace is queued")
    eq(after["flag_evaluations"]["evaluations"], before["flag_evaluations"]["evaluations"] + 3,
       "the evaluations are in the aggregator")
    eq(after["exposures"]["sent"], before["exposures"]["sent"] + 1, "the exposure is handed on")
    ctx.delivered(TRACES)
    ctx.delivered(EVALS)
    ctx.delivered(EXPOSURES)
    eq(ctx.trace_ids_at_intake(), ids, "the trace, at the flush interval")
    eq([e["flag"]["key"] for e in ctx.events()], ["later"], "the evaluations, within 250 ms")


@case
def flush_timeout_and_actions_handled(ctx):
    """actions_handled counts what came before the Flush (not the Flush
    itself; earlier Flush/Ping/Stats and invalid actions count); timeout_ms
    bounds the wait (STATUS_TIMEOUT), absent means 3000 ms."""
    pb = ctx.pb
    c = wire.Conn(pb, ctx.endpoint)
    eq(c.flush(deliver_now=False).actions_handled, 0, "nothing before the first Flush")
    c.send(hello=pb.Hello(language="x"))
    c.ping()
    c.send(trace_payload=pb.TracePayload(msgpack=b"bad"))
    c.recv()  # its ErrorReply
    eq(c.flush(deliver_now=True).actions_handled, 4, "Flush, Hello, Ping, invalid trace")
    eq(c.flush(deliver_now=False).actions_handled, 5, "the previous Flush counts")


@case
def flush_timeout_status(ctx):
    """A barrier not reached in timeout_ms answers STATUS_TIMEOUT; absent
    timeout_ms waits 3000 ms; timeout_ms 0 answers at once."""
    pb = ctx.pb
    c = ctx.conn()
    eq(c.flush(deliver_now=True, timeout_ms=0).status, pb.FlushReply.STATUS_OK, "0 with nothing pending")
    # Stalled answers hold both request slots (requests time out after 20 s
    # here, after the stall), so a third batch cannot start for 5 s.
    c.send(session_config=pb.SessionConfig(request_timeout_ms=20000))
    ctx.intake.behavior(path_prefix=TRACES, mode="stall", stall_ms=5000, count=-1)
    try:
        for _ in range(3):
            payload, _ = ctx.traces()
            c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
            c.flush(deliver_now=True, timeout_ms=50)
        eq(c.flush(deliver_now=True, timeout_ms=0).status, pb.FlushReply.STATUS_TIMEOUT, "timeout_ms 0")
        eq(c.flush(deliver_now=True, timeout_ms=200).status, pb.FlushReply.STATUS_TIMEOUT, "timeout_ms 200")
        t0 = time.monotonic()
        eq(c.flush(deliver_now=True).status, pb.FlushReply.STATUS_TIMEOUT, "absent: default")
        check(time.monotonic() - t0 >= 2.9, "the default wait is 3000 ms")
    finally:
        ctx.intake.behavior(path_prefix=TRACES, mode="ok")
    eq(c.flush(deliver_now=True, timeout_ms=20000).status, pb.FlushReply.STATUS_OK, "reached")
    ctx.delivered(TRACES, 3, timeout=20)
    c.send(session_config=pb.SessionConfig(request_timeout_ms=3000))


@case
def flush_wait_for_delivery(ctx):
    """deliver_now alone answers once the requests are started; with
    wait_for_delivery the reply waits until they are delivered (or dropped
    and counted), retries included, so the stats already show the delivery
    when the reply comes."""
    pb = ctx.pb
    c = ctx.conn()

    def delivered():
        return ctx.stats()["delivery"]["traces"]["delivered"]["traces"]

    def flush(**fields):
        return c.request("flush_reply", flush=pb.Flush(deliver_now=True, **fields)).status

    # What earlier cases left must be delivered before counting starts, or
    # it is counted here.
    ctx.drained(c)
    # A stalled answer: started is not delivered.
    before = delivered()
    ctx.intake.behavior(path_prefix=TRACES, mode="stall", stall_ms=2000, count=1)
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    eq(flush(timeout_ms=10000), pb.FlushReply.STATUS_OK, "deliver_now: started")
    eq(delivered(), before, "the stalled request is not delivered yet")
    eq(flush(wait_for_delivery=True, timeout_ms=100), pb.FlushReply.STATUS_TIMEOUT,
       "wait_for_delivery: the stalled answer is not in")
    eq(flush(wait_for_delivery=True, timeout_ms=10000), pb.FlushReply.STATUS_OK, "wait_for_delivery: delivered")
    eq(delivered(), before + 1, "delivered when the reply comes")
    # A 500 first: the reply waits for the retry.
    ctx.intake.reset()
    retried = ctx.stats()["delivery"]["traces"]["delivery"]["retried"]
    ctx.intake.behavior(path_prefix=TRACES, mode="status", status=500, count=1)
    payload, ids = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    eq(flush(wait_for_delivery=True, timeout_ms=10000), pb.FlushReply.STATUS_OK, "delivered after a retry")
    eq(delivered(), before + 2, "delivered when the reply comes")
    eq(ctx.stats()["delivery"]["traces"]["delivery"]["retried"], retried + 1, "one retry")
    eq([r["answered"] for r in ctx.intake.requests(TRACES)], [500, 200], "the intake's answers")
    eq(ctx.trace_ids_at_intake()[-1:], ids, "the retried trace")
    # Without deliver_now there is nothing to wait for: answered at once.
    eq(c.request("flush_reply", flush=pb.Flush(wait_for_delivery=True)).status, pb.FlushReply.STATUS_OK,
       "wait_for_delivery without deliver_now")


@case
def ping_fields(ctx):
    """client_time_ns echoed (absent stays absent, 0 stays present),
    server_pid, server_version, mode."""
    c = ctx.conn(hello=False)
    r = c.ping(client_time_ns=123456789)
    check(r.HasField("client_time_ns"), "client_time_ns echoed")
    eq(r.client_time_ns, 123456789, "client_time_ns")
    eq(r.server_pid, ctx.sidecar.pid, "server_pid")
    eq(r.mode, "subprocess", "mode")
    eq(r.server_version, ctx.stats()["version"], "server_version")
    r = c.ping()
    check(not r.HasField("client_time_ns"), "absent stays absent")
    r = c.ping(client_time_ns=0)
    check(r.HasField("client_time_ns") and r.client_time_ns == 0, "present zero stays present")


@case
def stats_document(ctx):
    """StatsReply.json: the members docs/stats.md lists."""
    s = ctx.stats()
    for key in ("pid", "version", "mode", "uptime_ms", "connections", "frames_in", "bytes_in",
                "oversized_frames", "decode_errors", "unknown_actions", "invalid_actions", "actions",
                "invalid", "delivery", "session_config", "flag_evaluations", "exposures",
                "acknowledgements", "client_drops", "metrics", "telemetry"):
        check(key in s, "stats has %s" % key)
    kinds = ["hello", "session_config", "trace", "flag_evaluations", "exposures", "flush", "ping", "stats",
             "drop_report", "metric", "telemetry"]
    eq(sorted(s["actions"]), sorted(kinds), "actions by kind")
    eq(sorted(s["invalid"]), sorted(kinds), "invalid by kind")
    eq(s["invalid_actions"], sum(s["invalid"].values()), "invalid_actions is the sum")
    before = s["actions"]["stats"]
    eq(ctx.stats()["actions"]["stats"], before + 1, "a StatsRequest counts itself")
    # StatsReply: "every member is described in docs/stats.md".
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "stats.md")) as f:
        doc = f.read()
    names = set()

    def walk(o):
        for k, v in (o.items() if isinstance(o, dict) else enumerate(o) if isinstance(o, list) else ()):
            if isinstance(k, str):
                names.add(k)
            walk(v)

    walk(ctx.stats())
    eq(sorted(n for n in names if not re.search(r"\b%s\b" % re.escape(n), doc)), [],
       "stats members docs/stats.md does not name")
