"""Conformance cases: Hello."""

import time

import wire
from harness import EVALS, TRACES, case, check, eq, evaluation, expect_invalid


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


def not_utf8(env):
    """The Envelope's bytes with its one "\u00e9" turned into bytes that are
    not UTF-8 (protobuf's runtime will not encode them)."""
    body = bytearray(env.SerializeToString())
    i = body.index("\u00e9".encode())
    body[i:i + 2] = b"\xff\xfe"
    return bytes(body)


@case
def identity_strings_not_utf8_refused(ctx):
    """Bytes that are not UTF-8 in an identity string -- of a Hello, or the
    service / env / version of a batch -- are refused."""
    pb = ctx.pb
    c = ctx.conn()
    for seq, kind, part, env in (
        (7, "hello", "Hello.service", pb.Envelope(seq=7, hello=pb.Hello(service="ab\u00e9"))),
        (8, "hello", "Hello.language", pb.Envelope(seq=8, hello=pb.Hello(language="\u00e9"))),
        (9, "flag_evaluations", "service", pb.Envelope(seq=9, flag_evaluation_batch=pb.FlagEvaluationBatch(
            evaluations=[evaluation(pb)], service="\u00e9"))),
        (10, "exposures", "env", pb.Envelope(seq=10, exposure_batch=pb.ExposureBatch(
            exposures=[pb.Exposure(flag_key="f")], env="x\u00e9"))),
    ):
        before = ctx.stats()
        # Past wire.Conn.send_raw: coverage.py would parse it back, and the
        # runtime logs its refusal on stderr.
        c.sock.sendall(wire.frame(not_utf8(env)))
        err = expect_invalid(c, seq, kind, ctx, before, "not UTF-8")
        check(part in err.message, "message %r names %s" % (err.message, part))


@case
def hello_before_any_is_required_for_data(ctx):
    """Traces, evaluations, exposures, metrics and telemetry before a Hello
    are refused; Ping, Stats, Flush, SessionConfig and DropReport are
    served."""
    c = ctx.conn(hello=False)
    c.ping()
    c.flush(deliver_now=False)
    before = ctx.stats()
    c.send(session_config=ctx.pb.SessionConfig())
    c.send(drop_report=ctx.pb.DropReport(other_actions=2))
    c.ping()
    after = ctx.stats()
    eq(after["session_config"]["applied"], before["session_config"]["applied"] + 1, "SessionConfig applied")
    eq(after["client_drops"]["other_actions"], before["client_drops"]["other_actions"] + 2, "DropReport counted")
    eq(after["invalid_actions"], before["invalid_actions"], "nothing refused")
    payload, _ = ctx.traces()
    for kind, action in (
        ("trace", dict(trace_payload=ctx.pb.TracePayload(msgpack=payload, trace_count=1))),
        ("flag_evaluations", dict(flag_evaluation_batch=ctx.pb.FlagEvaluationBatch(evaluations=[evaluation(ctx.pb)]))),
        ("exposures", dict(exposure_batch=ctx.pb.ExposureBatch(exposures=[ctx.pb.Exposure(flag_key="f")]))),
        ("metric", dict(metric=ctx.pb.Metric(type=ctx.pb.Metric.METRIC_TYPE_COUNT, name="a", value=1))),
        ("telemetry", dict(telemetry=ctx.pb.Telemetry(event=ctx.pb.Telemetry.EVENT_APP_STARTED))),
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
