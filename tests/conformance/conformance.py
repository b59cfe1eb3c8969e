#!/usr/bin/env python3
"""Conformance of a real sidecar to proto/sidecar.proto, with Google's protobuf.

The fifth drift guard (docs/wire.md): an independent encoder and decoder
checking behaviour, not bytes. It generates the message classes with
`protoc --python_out` from proto/, starts the local intake (tests/intake) as
the agent and the real `sidecar run` binary, and checks every message and
field of the proto against what the proto's comments and docs/ promise: each
field's effect seen in the sidecar's stats or at the intake, defaults,
absent vs empty, unknown and duplicated fields, limits and one past them,
and every ErrorReply code. Last, every descriptor of the sidecar (other than
stdin/stdout/stderr) must be close-on-exec.

usage: conformance.py --sidecar BIN --protoc PROTOC --proto-dir DIR [-k NAME]
Exits 0 when every case passes, 1 otherwise (each failure is printed).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
sys.path.insert(0, HERE)

import msgpack  # noqa: E402  (Debian's python3-msgpack)
from intake_client import Intake  # noqa: E402
import wire  # noqa: E402
from wire import field_bytes, field_varint  # noqa: E402

TRACES = "/v0.4/traces"
EVALS = "/evp_proxy/v2/api/v2/flagevaluations"
EXPOSURES = "/evp_proxy/v2/api/v2/exposures"
MAX_FRAME = 4 * 1024 * 1024
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


class Ctx:
    """The sidecar under test, its intake and helpers shared by the cases."""

    def __init__(self, pb, sidecar, endpoint, intake):
        self.pb = pb
        self.sidecar = sidecar
        self.endpoint = endpoint
        self.intake = intake
        self.trace_id = 1000

    def conn(self, hello=True, **hello_fields):
        c = wire.Conn(self.pb, self.endpoint)
        if hello:
            fields = dict(language="python", language_version="3", tracer_version="conformance")
            fields.update(hello_fields)
            c.send(hello=self.pb.Hello(protocol_version=1, pid=os.getpid(), **fields))
        return c

    def stats(self):
        c = self.conn(hello=False)
        try:
            return c.stats()
        finally:
            c.close()

    def traces(self, n=1):
        """A msgpack v0.4 payload of n traces with fresh trace ids; returns (bytes, ids)."""
        ids = []
        traces = []
        for _ in range(n):
            self.trace_id += 1
            ids.append(self.trace_id)
            traces.append([{"trace_id": self.trace_id, "span_id": 1, "name": "conformance", "service": "svc"}])
        return msgpack.packb(traces), ids

    def delivered(self, path, count=1, timeout=10):
        return self.intake.wait(path, count=count, timeout=timeout)

    def bodies(self, path):
        return [json.loads(Intake.body(r)) for r in self.intake.requests(path) if r["answered"] in (200, 202)]

    def trace_ids_at_intake(self):
        ids = []
        for r in self.intake.requests(TRACES):
            for trace in msgpack.unpackb(Intake.body(r), raw=False):
                ids.append(trace[0]["trace_id"])
        return ids

    def events(self):
        return [e for b in self.bodies(EVALS) for e in b["flagEvaluations"]]

    def exposures(self):
        return [e for b in self.bodies(EXPOSURES) for e in b["exposures"]]


def expect_invalid(c, seq, kind, ctx, before, message_part=None):
    """The reply to `seq` is ErrorReply CODE_INVALID_ACTION, the counters
    moved, and the connection is still served."""
    env = c.recv()
    eq(env.WhichOneof("action"), "error_reply", "reply to an invalid action")
    eq(env.seq, seq, "ErrorReply.seq")
    eq(env.error_reply.code, ctx.pb.ErrorReply.CODE_INVALID_ACTION, "ErrorReply.code")
    if message_part is not None:
        check(message_part in env.error_reply.message, "message %r names %r" % (env.error_reply.message, message_part))
    after = ctx.stats()
    eq(after["invalid"][kind], before["invalid"][kind] + 1, "invalid.%s" % kind)
    eq(after["invalid_actions"], before["invalid_actions"] + 1, "invalid_actions")
    c.ping()  # still open
    return env.error_reply


def send_invalid(ctx, c, kind, part, **action):
    """Sends one action that must be refused as invalid (see expect_invalid)."""
    before = ctx.stats()
    seq = c.send(**action)
    return expect_invalid(c, seq, kind, ctx, before, part)


def evaluation(pb, flag="f", count=1, **fields):
    return pb.FlagEvaluation(flag_key=flag, evaluation_count=count, first_evaluation_ms=1000,
                             last_evaluation_ms=2000, **fields)


# ---- Hello ------------------------------------------------------------------


@case
def hello_metadata_headers(ctx):
    """language / language_version / tracer_version become the Datadog-Meta-* headers."""
    c = ctx.conn(language="php", language_version="8.2.7", tracer_version="1.0.0")
    payload, ids = ctx.traces(2)
    c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=2))
    eq(c.flush().status, ctx.pb.FlushReply.STATUS_OK, "flush status")
    (r,) = ctx.delivered(TRACES)
    h = r["headers"]
    eq(h.get("datadog-meta-lang"), "php", "Datadog-Meta-Lang")
    eq(h.get("datadog-meta-lang-version"), "8.2.7", "Datadog-Meta-Lang-Version")
    eq(h.get("datadog-meta-tracer-version"), "1.0.0", "Datadog-Meta-Tracer-Version")
    eq(h.get("x-datadog-trace-count"), "2", "X-Datadog-Trace-Count")
    eq(ctx.trace_ids_at_intake(), ids, "trace ids")


@case
def hello_empty_strings_send_no_header(ctx):
    """language etc. have no presence: empty (= absent) means the header is not sent."""
    c = ctx.conn(language="", language_version="", tracer_version="")
    payload, _ = ctx.traces()
    c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
    c.flush()
    (r,) = ctx.delivered(TRACES)
    for name in ("datadog-meta-lang", "datadog-meta-lang-version", "datadog-meta-tracer-version"):
        check(name not in r["headers"], "%s absent" % name)


@case
def hello_strings_whole_up_to_128(ctx):
    """40, 100 and 128-byte values arrive whole (headers and EVP context)."""
    for n in (40, 100, 128):
        ctx.intake.reset()
        lang = ("l%d-" % n).ljust(n, "x")
        svc = ("s%d-" % n).ljust(n, "y")
        env_ = "e" * n
        ver = "v" * n
        c = ctx.conn(language=lang, language_version="x" * n, tracer_version="t" * n,
                     runtime_id="r" * n, service=svc, env=env_, version=ver)
        payload, _ = ctx.traces()
        c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
        c.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb)]))
        c.flush()
        (r,) = ctx.delivered(TRACES)
        eq(r["headers"]["datadog-meta-lang"], lang, "language of %d bytes" % n)
        eq(r["headers"]["datadog-meta-lang-version"], "x" * n, "language_version")
        eq(r["headers"]["datadog-meta-tracer-version"], "t" * n, "tracer_version")
        ctx.delivered(EVALS)
        (body,) = ctx.bodies(EVALS)
        eq(body["context"], {"service": svc, "env": env_, "version": ver}, "EVP context, %d bytes" % n)
        eq(body["flagEvaluations"][0]["context"]["dd"]["service"], svc, "context.dd.service")
        c.close()


def hello_variants(pb):
    """Every Hello string field with one bad value each; (field, value, message part)."""
    out = []
    for field in ("language", "language_version", "tracer_version", "runtime_id", "service", "env", "version"):
        out.append((field, "a" * 129, "over 128 bytes"))
        out.append((field, "php\0evil", "control character"))
        out.append((field, "a\nb", "control character"))
        out.append((field, "a\x7fb", "control character"))
        out.append((field, "a\x1fb", "control character"))
    return out


@case
def hello_invalid_strings_refused(ctx):
    """129 bytes, NUL, control characters: CODE_INVALID_ACTION, counted; the
    connection keeps its previous identity and stays open."""
    for field, value, part in hello_variants(ctx.pb):
        ctx.intake.reset()
        c = ctx.conn(language="good")
        before = ctx.stats()
        fields = {"language": "bad", field: value}
        seq = c.send(hello=ctx.pb.Hello(**fields))
        err = expect_invalid(c, seq, "hello", ctx, before, part)
        check("Hello." + field in err.message, "message names Hello.%s: %r" % (field, err.message))
        payload, _ = ctx.traces()
        c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
        c.flush()
        (r,) = ctx.delivered(TRACES)
        eq(r["headers"]["datadog-meta-lang"], "good", "identity kept after a refused Hello (%s)" % field)
        c.close()


@case
def hello_invalid_utf8_refused(ctx):
    """Bytes that are not UTF-8 in a Hello string (crafted: protobuf's runtime
    will not encode them) are refused."""
    body = bytearray(ctx.pb.Envelope(seq=7, hello=ctx.pb.Hello(service="ab\u00e9")).SerializeToString())
    i = body.index("\u00e9".encode())
    body[i:i + 2] = b"\xff\xfe"
    c = ctx.conn()
    before = ctx.stats()
    c.send_raw(bytes(body))
    expect_invalid(c, 7, "hello", ctx, before, "not UTF-8")


@case
def hello_before_any_is_required_for_data(ctx):
    """Traces, evaluations and exposures before a Hello are refused; Ping,
    Stats, Flush and SessionConfig are served."""
    c = ctx.conn(hello=False)
    c.ping()
    c.flush(deliver_now=False)
    c.send(session_config=ctx.pb.SessionConfig())
    payload, _ = ctx.traces()
    for kind, action in (
        ("trace", dict(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))),
        ("flag_evaluations", dict(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb)]))),
        ("exposures", dict(exposure_batch=ctx.pb.ExposureBatch(exposures=[ctx.pb.Exposure(flag_key="f")]))),
    ):
        before = ctx.stats()
        seq = c.send(**action)
        expect_invalid(c, seq, kind, ctx, before, "no Hello")
    c.flush()
    time.sleep(0.5)
    eq(ctx.intake.requests(TRACES), [], "nothing delivered")
    eq(ctx.intake.requests(EVALS), [], "nothing delivered")


@case
def hello_replaced_and_informative_fields(ctx):
    """A later Hello replaces the identity; protocol_version, pid, uid and
    runtime_id are accepted whatever their value."""
    c = ctx.conn(language="first")
    c.send(hello=ctx.pb.Hello(protocol_version=2, pid=1, uid=0, runtime_id="", language="second"))
    c.send(hello=ctx.pb.Hello(protocol_version=0, language="third"))
    payload, _ = ctx.traces()
    c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
    c.flush()
    (r,) = ctx.delivered(TRACES)
    eq(r["headers"]["datadog-meta-lang"], "third", "latest Hello wins")


@case
def hello_service_absent_vs_empty(ctx):
    """Absent and empty service are two contexts at the sidecar; both are
    omitted from the EVP body's context."""
    before = ctx.stats()["flag_evaluations"]["contexts"]
    names = []
    for kw in (dict(), dict(service="", env="", version="")):
        c = ctx.conn(**kw)
        flag = "absent-vs-empty-%d" % len(names)
        names.append(flag)
        c.send(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb, flag)]))
        c.flush()
        c.close()
    ctx.delivered(EVALS, 2)
    after = ctx.stats()["flag_evaluations"]["contexts"]
    check(after >= before + 1 and after <= before + 2, "contexts %d -> %d" % (before, after))
    for body in ctx.bodies(EVALS):
        for e in body["flagEvaluations"]:
            if e["flag"]["key"] in names:
                eq(body["context"], {}, "empty context object")
                check("context" not in e, "no context.dd.service")


# ---- SessionConfig ------------------------------------------------------------


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
    ]
    for fields, part in bad:
        before = ctx.stats()
        seq = c.send(session_config=ctx.pb.SessionConfig(**fields))
        expect_invalid(c, seq, "session_config", ctx, before, part)
        after = ctx.stats()
        eq(after["session_config"]["request_timeout_ms"], 3000, "nothing applied")
        eq(after["session_config"]["applied"], before["session_config"]["applied"], "not applied")
        eq(after["delivery"]["agent"], before["delivery"]["agent"], "agent unchanged")


@case
def session_config_agent_url(ctx):
    """agent_url moves delivery (sidecar-wide) to another agent; 511 bytes is
    accepted (512 is refused: session_config_zero_and_bad_url_refused)."""
    with Intake.start(ctx.tmpdir) as other:
        c = ctx.conn()
        try:
            url511 = other.url + "/"
            url511 = url511 + "p" * (511 - len(url511))
            before = ctx.stats()["session_config"]["applied"]
            c.send(session_config=ctx.pb.SessionConfig(agent_url=url511))
            eq(ctx.stats()["session_config"]["applied"], before + 1, "511 bytes applied")
            eq(ctx.stats()["delivery"]["agent"], url511, "agent")
            c.send(session_config=ctx.pb.SessionConfig(agent_url=other.url))
            payload, ids = ctx.traces()
            c.send(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))
            c.flush()
            other.wait(TRACES, count=1, timeout=10)
            eq(ctx.intake.requests(TRACES), [], "first intake got nothing")
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


# ---- TracePayload ---------------------------------------------------------------


@case
def trace_payloads_merge_and_count(ctx):
    """Payloads of one metadata merge into one request; X-Datadog-Trace-Count
    is the sum of trace_count (absent counts 0)."""
    c = ctx.conn()
    all_ids = []
    for n, count in ((1, 1), (2, 2), (1, None)):
        payload, ids = ctx.traces(n)
        all_ids += ids
        tp = ctx.pb.TracePayload(msgpack=payload)
        if count is not None:
            tp.trace_count = count
        c.send(trace_payload=tp)
    c.flush()
    (r,) = ctx.delivered(TRACES)
    eq(sorted(ctx.trace_ids_at_intake()), sorted(all_ids), "every trace once")
    eq(r["headers"]["x-datadog-trace-count"], "3", "sum of trace_count")


@case
def trace_payload_invalid(ctx):
    """Absent, empty, or non-array msgpack: invalid, counted as rejected_payload, never sent."""
    c = ctx.conn()
    for tp in (ctx.pb.TracePayload(), ctx.pb.TracePayload(msgpack=b"", trace_count=1),
               ctx.pb.TracePayload(msgpack=msgpack.packb({"a": 1}), trace_count=1),
               ctx.pb.TracePayload(msgpack=msgpack.packb([[{"a": 1}]]) + b"\x00", trace_count=1)):
        before = ctx.stats()
        seq = c.send(trace_payload=tp)
        expect_invalid(c, seq, "trace", ctx, before, "msgpack")
        after = ctx.stats()["delivery"]["traces"]["drops"]["rejected_payload"]["payloads"]
        eq(after, before["delivery"]["traces"]["drops"]["rejected_payload"]["payloads"] + 1, "rejected_payload")
    c.flush()
    time.sleep(0.3)
    eq(ctx.intake.requests(TRACES), [], "nothing sent")


# ---- FlagEvaluationBatch ----------------------------------------------------------


@case
def flag_evaluation_every_field(ctx):
    """Each FlagEvaluation field, present and absent, as the EVP JSON shows it."""
    pb = ctx.pb
    c = ctx.conn(service="hello-svc", env="hello-env", version="hello-ver")
    full = pb.FlagEvaluation(
        flag_key="full", variant_key="on", allocation_key="alloc", reason="TARGETING_MATCH",
        targeting_key="user-1", targeting_rule_key="rule-1", error_message="none",
        context=[pb.ContextAttribute(key="a_str", string_value="x"),
                 pb.ContextAttribute(key="b_num", number_value=42.5),
                 pb.ContextAttribute(key="c_bool", bool_value=True),
                 pb.ContextAttribute(string_value="no key")],
        evaluation_count=7, first_evaluation_ms=1000, last_evaluation_ms=5000)
    bare = pb.FlagEvaluation(flag_key="bare", evaluation_count=1, first_evaluation_ms=10, last_evaluation_ms=10)
    empty_variant = pb.FlagEvaluation(flag_key="empty-variant", variant_key="", allocation_key="",
                                      targeting_key="", error_message="", evaluation_count=2,
                                      first_evaluation_ms=1, last_evaluation_ms=3)
    degraded = pb.FlagEvaluation(flag_key="degraded", variant_key="v", targeting_key="ignored",
                                 context=[pb.ContextAttribute(key="k", string_value="ignored")],
                                 evaluation_count=4, first_evaluation_ms=1, last_evaluation_ms=2, degraded=True)
    r1 = pb.FlagEvaluation(flag_key="by-reason", variant_key="v", reason="A", evaluation_count=1,
                           first_evaluation_ms=1, last_evaluation_ms=1)
    r2 = pb.FlagEvaluation(flag_key="by-reason", variant_key="v", reason="B", evaluation_count=1,
                           first_evaluation_ms=1, last_evaluation_ms=1)
    before = ctx.stats()["flag_evaluations"]["dropped"]
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[full, bare, empty_variant, degraded, r1, r2],
                                                        dropped=11))
    c.flush()
    ctx.delivered(EVALS)
    (body,) = ctx.bodies(EVALS)
    eq(body["context"], {"service": "hello-svc", "env": "hello-env", "version": "hello-ver"}, "Hello's context")
    ev = {}
    for e in body["flagEvaluations"]:
        ev.setdefault(e["flag"]["key"], []).append(e)
    f = ev["full"][0]
    eq(f["variant"], {"key": "on"}, "variant.key")
    eq(f["allocation"], {"key": "alloc"}, "allocation.key")
    eq(f["targeting_key"], "user-1", "targeting_key")
    eq(f["targeting_rule"], {"key": "rule-1"}, "targeting_rule.key")
    eq(f["error"], {"message": "none"}, "error.message")
    eq(f["evaluation_count"], 7, "evaluation_count")
    eq((f["first_evaluation"], f["last_evaluation"]), (1000, 5000), "first/last")
    eq(f["context"]["evaluation"], {"": "no key", "a_str": "x", "b_num": 42.5, "c_bool": True},
       "context.evaluation (absent key = empty key)")
    eq(f["context"]["dd"], {"service": "hello-svc"}, "context.dd.service")
    check("runtime_default_used" not in f, "runtime_default_used only when true")
    check("reason" not in f, "reason is not an EVP field")
    b = ev["bare"][0]
    for k in ("variant", "allocation", "targeting_key", "targeting_rule", "error"):
        check(k not in b, "absent %s omitted" % k)
    eq(b["runtime_default_used"], True, "runtime_default_used with variant absent")
    e = ev["empty-variant"][0]
    for k in ("variant", "allocation", "targeting_key", "error"):
        check(k not in e, "empty %s omitted" % k)
    eq(e["runtime_default_used"], True, "runtime_default_used with variant empty")
    d = ev["degraded"][0]
    check("targeting_key" not in d, "degraded bucket carries no targeting key")
    check("evaluation" not in d.get("context", {}), "degraded bucket carries no context")
    eq(d["evaluation_count"], 4, "degraded count")
    eq(len(ev["by-reason"]), 2, "reason is part of the identity")
    eq(ctx.stats()["flag_evaluations"]["dropped"], before + 11, "dropped")


@case
def flag_evaluation_batch_overrides(ctx):
    """The batch's service/env/version override the Hello's, each alone."""
    pb = ctx.pb
    c = ctx.conn(service="h-svc", env="h-env", version="h-ver")
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "o1")], env="b-env"))
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "o2")], service="b-svc",
                                                        version=""))
    c.flush()
    ctx.delivered(EVALS, 2)
    contexts = {b["flagEvaluations"][0]["flag"]["key"]: b["context"] for b in ctx.bodies(EVALS)}
    eq(contexts["o1"], {"service": "h-svc", "env": "b-env", "version": "h-ver"}, "env override")
    eq(contexts["o2"], {"service": "b-svc", "env": "h-env"}, "service override, empty version omitted")


@case
def flag_evaluation_batch_invalid(ctx):
    pb = ctx.pb
    c = ctx.conn()
    bad = [
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "")]), "flag key"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "f", 0)]), "zero count"),
        (pb.FlagEvaluationBatch(evaluations=[pb.FlagEvaluation(flag_key="f", evaluation_count=1,
                                                               first_evaluation_ms=5, last_evaluation_ms=4)]),
         "first evaluation"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "f", context=[
            pb.ContextAttribute(key="k", string_value="s", bool_value=True)])]), "exactly one value"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "f", context=[pb.ContextAttribute(key="k")])]),
         "exactly one value"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb, "ok"), evaluation(pb, "")]), "flag key"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb)], service="s" * 129), "service is over 128"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb)], env="a\tb"), "env has a control"),
        (pb.FlagEvaluationBatch(evaluations=[evaluation(pb)], version="v\0"), "version has a control"),
    ]
    for batch, part in bad:
        send_invalid(ctx, c, "flag_evaluations", part, flag_evaluation_batch=batch)
    c.flush()
    time.sleep(0.5)
    eq(ctx.events(), [], "nothing of a refused batch is delivered")
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[evaluation(pb)], service="s" * 128))
    c.flush()
    ctx.delivered(EVALS)
    eq(ctx.bodies(EVALS)[0]["context"]["service"], "s" * 128, "128-byte service whole")


# ---- ExposureBatch ------------------------------------------------------------------


@case
def exposure_every_field(ctx):
    """The exposures JSON shape (docs/flag-evaluations.md, "Exposures")."""
    pb = ctx.pb
    c = ctx.conn(service="h-svc", env="h-env")
    full = pb.Exposure(timestamp_ms=1700000000123, flag_key="f", allocation_key="a", variant_key="v",
                       subject_id="user-1",
                       subject_attributes=[pb.ContextAttribute(key="z", string_value="last"),
                                           pb.ContextAttribute(key="n", number_value=1.5),
                                           pb.ContextAttribute(key="b", bool_value=False),
                                           pb.ContextAttribute(string_value="empty key"),
                                           pb.ContextAttribute(key="long", string_value="x" * 257),
                                           pb.ContextAttribute(key="nan", number_value=math.nan),
                                           pb.ContextAttribute(key="z", string_value="wins")])
    bare = pb.Exposure(flag_key="g")
    empty = pb.Exposure(flag_key="h", allocation_key="", variant_key="", subject_id="")
    before = ctx.stats()["exposures"]
    c.send(exposure_batch=pb.ExposureBatch(exposures=[full, bare, empty], version="b-ver"))
    c.flush()
    ctx.delivered(EXPOSURES)
    (body,) = ctx.bodies(EXPOSURES)
    eq(body["context"], {"service": "h-svc", "env": "h-env", "version": "b-ver"}, "context")
    f, g, h = body["exposures"]
    eq(f, {"timestamp": 1700000000123, "flag": {"key": "f"}, "allocation": {"key": "a"},
           "variant": {"key": "v"},
           "subject": {"id": "user-1", "attributes": {"": "empty key", "b": False, "n": 1.5, "z": "wins"}}},
       "full exposure")
    eq(g, {"timestamp": 0, "flag": {"key": "g"}, "subject": {}}, "bare exposure")
    eq(h, {"timestamp": 0, "flag": {"key": "h"}, "subject": {}}, "empty values omitted")
    after = ctx.stats()["exposures"]
    eq(after["sent"], before["sent"] + 3, "exposures.sent")
    eq(after["attributes_skipped"], before["attributes_skipped"] + 3, "skipped: long, NaN, overwritten z")


@case
def exposure_batch_invalid(ctx):
    pb = ctx.pb
    c = ctx.conn()
    bad = [
        (pb.ExposureBatch(exposures=[pb.Exposure()]), "flag key"),
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="ok"), pb.Exposure(flag_key="")]), "flag key"),
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="f", subject_attributes=[
            pb.ContextAttribute(key="k")])]), "exactly one value"),
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="f", subject_attributes=[
            pb.ContextAttribute(key="k", number_value=1, bool_value=True)])]), "exactly one value"),
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="f")], service="x\ny"), "service has a control"),
    ]
    for batch, part in bad:
        send_invalid(ctx, c, "exposures", part, exposure_batch=batch)
    c.flush()
    time.sleep(0.3)
    eq(ctx.intake.requests(EXPOSURES), [], "nothing of a refused batch is delivered")
    before = ctx.stats()["exposures"]["sent"]
    c.send(exposure_batch=pb.ExposureBatch())
    c.flush()
    eq(ctx.stats()["exposures"]["sent"], before, "an empty batch sends nothing")


# ---- Flush, Ping, Stats ------------------------------------------------------------------


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
def ping_fields(ctx):
    pb = ctx.pb
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
                "invalid", "delivery", "session_config", "flag_evaluations", "exposures"):
        check(key in s, "stats has %s" % key)
    kinds = ["hello", "session_config", "trace", "flag_evaluations", "exposures", "flush", "ping", "stats"]
    eq(sorted(s["actions"]), sorted(kinds), "actions by kind")
    eq(sorted(s["invalid"]), sorted(kinds), "invalid by kind")
    eq(s["invalid_actions"], sum(s["invalid"].values()), "invalid_actions is the sum")
    before = s["actions"]["stats"]
    eq(ctx.stats()["actions"]["stats"], before + 1, "a StatsRequest counts itself")


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
    eq(frames[0].error_reply.code, pb.ErrorReply.CODE_FRAME_TOO_LARGE, "code")
    eq(ctx.stats()["oversized_frames"], before["oversized_frames"] + 1, "oversized_frames")


def expect_protocol_error(ctx, bodies, code, counter):
    """Each body on a fresh connection: one ErrorReply with `code`, then the
    close; `counter` in the stats grows by one per body."""
    before = ctx.stats()[counter]
    for body in bodies:
        c = ctx.conn(hello=False)
        c.send_raw(body)
        frames = c.expect_closed()
        eq([f.error_reply.code for f in frames], [code], "ErrorReply codes before the close")
    eq(ctx.stats()[counter], before + len(bodies), counter)


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


@case
def shared_state_name(ctx):
    """docs/shared-state.md: the segment is named sidecar-<version>-<FNV-1a 64 of the endpoint>."""
    h = 14695981039346656037
    for byte in ctx.endpoint.encode():
        h = ((h ^ byte) * 1099511628211) & (2 ** 64 - 1)
    name = "sidecar-%s-%016x" % (ctx.stats()["version"], h)
    check(os.path.exists("/dev/shm/" + name) or os.path.exists(os.path.join(tempfile.gettempdir(), name + ".shm")),
          "segment %s exists" % name)


@case
def descriptors_close_on_exec(ctx):
    """After deliveries, every descriptor of the sidecar but 0-2 is close-on-exec."""
    bad = non_cloexec_fds(ctx.sidecar.pid)
    eq(bad, [], "descriptors without close-on-exec")


def non_cloexec_fds(pid):
    bad = []
    for fd in sorted(os.listdir("/proc/%d/fdinfo" % pid), key=int):
        if int(fd) <= 2:
            continue
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if not flags & 0o2000000:
            bad.append("%s -> %s" % (fd, target))
    return bad


# ---- runner --------------------------------------------------------------------------------


def start_sidecar(binary, endpoint, intake, tmpdir):
    env = dict(os.environ, DD_TRACE_AGENT_URL=intake.url)
    env.pop("DD_AGENT_HOST", None)
    log = open(os.path.join(tmpdir, "sidecar.log"), "wb")
    p = subprocess.Popen([binary, "run", "--endpoint", endpoint, "--log-level", "warn"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            wire.Conn(None, endpoint).close()
            return p
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sidecar did not start")
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidecar", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("-k", help="run only cases whose name contains this")
    args = ap.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sidecar-conformance-") as tmpdir:
        pb = wire.load_classes(args.protoc, args.proto_dir, tmpdir)
        endpoint = "@sidecar-conformance-%d" % os.getpid()
        with Intake.start(tmpdir) as intake:
            sidecar = start_sidecar(args.sidecar, endpoint, intake, tmpdir)
            try:
                ctx = Ctx(pb, sidecar, endpoint, intake)
                ctx.tmpdir = tmpdir
                for fn in CASES:
                    if args.k and args.k not in fn.__name__:
                        continue
                    intake.reset()
                    t0 = time.monotonic()
                    try:
                        fn(ctx)
                        print("PASS %-45s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
                    except Exception:  # noqa: BLE001 (every failure is reported)
                        failures += 1
                        print("FAIL %s" % fn.__name__, flush=True)
                        traceback.print_exc()
                    if sidecar.poll() is not None:
                        print("FAIL the sidecar exited with %s" % sidecar.returncode)
                        failures += 1
                        break
            finally:
                if sidecar.poll() is None:
                    sidecar.terminate()
                    sidecar.wait(10)
                with open(os.path.join(tmpdir, "sidecar.log"), errors="replace") as f:
                    log = f.read()
                # Sanitizer builds: a report in the sidecar's log fails the run.
                for marker in ("runtime error", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                               "WARNING: ThreadSanitizer"):
                    if marker in log:
                        print("FAIL the sidecar's log has %r" % marker)
                        failures += 1
                if failures:
                    print("---- sidecar log ----\n" + log[-6000:])
                    print("---- intake log ----\n" + intake.log_text()[-3000:])
            eq(sidecar.returncode, 0, "sidecar exit status after SIGTERM")
    print("%d case(s) failed" % failures if failures else "all cases passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
