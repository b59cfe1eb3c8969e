"""Conformance cases: acknowledged delivery (Hello.session_id, Ack,
duplicates dropped by session and seq) and DropReport, as proto/sidecar.proto
and docs/wire.md ("Acknowledgements") describe them."""

import random
import time

from harness import TRACES, case, check, eq


def until_ack(conn, through):
    """Reads frames until an Ack covering `through`; returns the other frames."""
    others = []
    while True:
        env = conn.recv()
        if env.WhichOneof("action") == "ack":
            eq(env.seq, 0, "an Ack's seq")
            if env.ack.handled_through_seq >= through:
                return others
        else:
            others.append(env)


@case
def ack_and_duplicates(ctx):
    """With a session id the sidecar acknowledges what it handled; a data
    action sent again on a new connection of the same session is dropped
    (counted in duplicates_dropped), a new one handled; requests are always
    answered."""
    pb = ctx.pb
    session = random.getrandbits(63) | 1
    before = ctx.stats()["acknowledgements"]["duplicates_dropped"]
    c = ctx.conn(session_id=session)
    sent = {}
    for _ in range(3):
        payload, ids = ctx.traces()
        seq = c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
        sent[seq] = (payload, ids[0])
    until_ack(c, max(sent))
    c.close()

    # The next connection of the session: the last trace again, and a new one.
    c = ctx.conn(session_id=session)
    again = max(sent)
    c.seq = again - 1
    c.send(trace_payload=pb.TracePayload(msgpack=sent[again][0], trace_count=1))
    payload, ids = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    until_ack(c, again + 1)
    # A metric point and a telemetry event of the session, then both again
    # on a new connection: each is handled once.
    c.send(metric=pb.Metric(type=pb.Metric.METRIC_TYPE_COUNT, name="conf.ack", value=1))
    c.send(telemetry=pb.Telemetry(event=pb.Telemetry.EVENT_DEPENDENCIES_LOADED,
                                  dependencies=[pb.TelemetryDependency(name="ack-dep")]))
    until_ack(c, c.seq)
    mid = ctx.stats()
    c.close()
    c = ctx.conn(session_id=session)
    c.seq = again + 1
    c.send(metric=pb.Metric(type=pb.Metric.METRIC_TYPE_COUNT, name="conf.ack", value=1))
    c.send(telemetry=pb.Telemetry(event=pb.Telemetry.EVENT_DEPENDENCIES_LOADED,
                                  dependencies=[pb.TelemetryDependency(name="ack-dep")]))
    until_ack(c, c.seq)
    late = ctx.stats()
    eq(late["metrics"]["points"], mid["metrics"]["points"], "a metric point sent again is not counted twice")
    eq(late["telemetry"]["events"], mid["telemetry"]["events"], "a telemetry event sent again is not handled twice")
    eq(late["acknowledgements"]["duplicates_dropped"] - mid["acknowledgements"]["duplicates_dropped"], 2,
       "both dropped as duplicates")
    before += 2
    # A Flush with an old seq is still answered (a client may wait for it).
    c.seq = again - 2
    c.send(flush=pb.Flush(deliver_now=True))
    reply = None
    while reply is None:
        env = c.recv()
        if env.WhichOneof("action") == "flush_reply":
            reply = env
    eq(reply.flush_reply.status, pb.FlushReply.STATUS_OK, "old-seq Flush answered")
    ctx.delivered(TRACES, count=1)
    after = ctx.stats()["acknowledgements"]["duplicates_dropped"]
    eq(after - before, 1, "duplicates_dropped")
    want = [sent[s][1] for s in sorted(sent)] + ids
    deadline = time.monotonic() + 10
    got = []
    while time.monotonic() < deadline and len(got) < len(want):
        got = [i for i in ctx.trace_ids_at_intake() if i in want]
        time.sleep(0.05)
    time.sleep(0.2)  # a duplicate would arrive with or after the others
    got = [i for i in ctx.trace_ids_at_intake() if i in want]
    eq(sorted(got), sorted(want), "each trace delivered once")


@case
def no_session_no_ack(ctx):
    """Without a session id nothing but replies comes back."""
    pb = ctx.pb
    c = ctx.conn()
    payload, _ = ctx.traces()
    c.send(trace_payload=pb.TracePayload(msgpack=payload, trace_count=1))
    c.send(flush=pb.Flush(deliver_now=False))
    eq(c.recv().WhichOneof("action"), "flush_reply", "the first frame back")


@case
def drop_report_counted(ctx):
    """DropReport adds to client_drops; it is one action (actions.drop_report)."""
    pb = ctx.pb
    before = ctx.stats()
    c = ctx.conn()
    c.send(drop_report=pb.DropReport(trace_payloads=2, traces=5, flag_evaluation_batches=3,
                                     exposure_batches=4, other_actions=1))
    c.flush(deliver_now=False)
    after = ctx.stats()
    for key, n in (("trace_payloads", 2), ("traces", 5), ("flag_evaluation_batches", 3),
                   ("exposure_batches", 4), ("other_actions", 1)):
        eq(after["client_drops"][key] - before["client_drops"][key], n, "client_drops." + key)
    eq(after["actions"]["drop_report"] - before["actions"]["drop_report"], 1, "actions.drop_report")
