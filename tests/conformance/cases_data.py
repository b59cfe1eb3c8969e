"""Conformance cases: TracePayload, FlagEvaluationBatch, ExposureBatch."""

import math
import re
import time

import msgpack  # Debian's python3-msgpack

from harness import EVALS, EXPOSURES, TRACES, case, check, eq, evaluation, expect_invalid, send_invalid
import intake  # noqa: E402  (tests/intake, on the path harness sets: the /info it answers)


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
                                 targeting_rule_key="ignored", error_message="ignored", allocation_key="kept",
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
    for k in ("targeting_key", "targeting_rule", "error"):
        check(k not in d, "a degraded bucket carries no %s" % k)
    eq((d["variant"], d["allocation"]), ({"key": "v"}, {"key": "kept"}), "a degraded bucket keeps variant, allocation")
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
def exposure_batch_overrides(ctx):
    """The batch's service/env/version override the Hello's, each alone; an
    empty one is an empty value (omitted), not the Hello's."""
    pb = ctx.pb
    c = ctx.conn(service="h-svc", env="h-env", version="h-ver")
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="x1")], service="b-svc"))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="x2")], env="b-env", service=""))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="x3")], version="v" * 128))
    c.flush()
    ctx.delivered(EXPOSURES, 3)
    contexts = {b["exposures"][0]["flag"]["key"]: b["context"] for b in ctx.bodies(EXPOSURES)}
    eq(contexts["x1"], {"service": "b-svc", "env": "h-env", "version": "h-ver"}, "service override")
    eq(contexts["x2"], {"env": "b-env", "version": "h-ver"}, "env override, empty service omitted")
    eq(contexts["x3"], {"service": "h-svc", "env": "h-env", "version": "v" * 128}, "128-byte version whole")


@case
def context_attribute_limits(ctx):
    """Pruning limits (docs/flag-evaluations.md, "Context pruning"): a key
    or a string value of 256 bytes is kept, 257 skipped; of 257 attributes
    the first 256 in key order are kept. Each skipped one is counted."""
    pb = ctx.pb
    A = pb.ContextAttribute
    c = ctx.conn()
    before = ctx.stats()["exposures"]["attributes_skipped"]
    edges = [A(key="k" * 256, bool_value=True), A(key="K" * 257, bool_value=True),
             A(key="v256", string_value="v" * 256), A(key="v257", string_value="v" * 257)]
    many = [A(key="a%03d" % i, number_value=i) for i in reversed(range(257))]
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="edges", subject_attributes=edges),
                                                      pb.Exposure(flag_key="many", subject_attributes=many)]))
    c.flush()
    ctx.delivered(EXPOSURES)
    e1, e2 = ctx.exposures()
    eq(e1["subject"]["attributes"], {"k" * 256: True, "v256": "v" * 256}, "256 bytes kept, 257 skipped")
    eq(e2["subject"]["attributes"], {"a%03d" % i: i for i in range(256)}, "the first 256 in key order")
    eq(ctx.stats()["exposures"]["attributes_skipped"], before + 3, "attributes_skipped")


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
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="f")], env="e\0"), "env has a control"),
        (pb.ExposureBatch(exposures=[pb.Exposure(flag_key="f")], version="v" * 129), "version is over 128"),
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


# ---- what the stats say about delivery ---------------------------------------------------

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@case
def stats_items_and_last_outcomes(ctx):
    """Each destination counts what its payloads hold under its own key
    (traces, events, exposures; never "traces" for the EVP ones); each
    endpoint says when it last delivered and its last error, with the full
    URL (ISO-8601 times); the agent's version comes from its /info."""
    pb = ctx.pb
    c = ctx.conn()
    ctx.drained(c)
    before = ctx.stats()["delivery"]
    for dest, items in (("traces", "traces"), ("flagevaluations", "events"), ("exposures", "exposures")):
        for part in ["submitted", "delivered", "buffered"] + ["drops." + r for r in before[dest]["drops"]]:
            counters = before[dest]
            for key in part.split("."):
                counters = counters[key]
            eq(sorted(counters), sorted(["payloads", items, "bytes"]), "%s.%s keys" % (dest, part))
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="s1"), pb.Exposure(flag_key="s2")]))
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[
        evaluation(pb, "f1", count=3), evaluation(pb, "f2", count=1)]))
    c.flush(deliver_now=True)
    ctx.delivered(EXPOSURES)
    ctx.delivered(EVALS)
    after = ctx.stats()["delivery"]
    ex, fe = after["exposures"], after["flagevaluations"]
    eq(ex["delivered"]["exposures"], before["exposures"]["delivered"]["exposures"] + 2, "exposures delivered")
    eq(fe["delivered"]["events"], before["flagevaluations"]["delivered"]["events"] + 2, "events delivered")
    for name, d in (("exposures", ex), ("flagevaluations", fe)):
        check(ISO_TIME.match(d["delivery"].get("last_ok", "")), "%s: last_ok %r" % (name, d["delivery"]))
    check(ISO_TIME.match(after["info"].get("last_ok", "")), "info.last_ok %r" % after["info"])
    eq(after.get("agent_version"), intake.AGENT_INFO["version"], "agent_version from /info")

    # A refused request: its message names the method, the URL and why.
    ctx.intake.behavior(path_prefix=EXPOSURES, mode="status", status=400, count=1)
    c.send(exposure_batch=pb.ExposureBatch(exposures=[pb.Exposure(flag_key="s3")]))
    c.flush(deliver_now=True)
    ctx.delivered(EXPOSURES)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        err = ctx.stats()["delivery"]["exposures"]["delivery"].get("last_error")
        if err is not None:
            break
        time.sleep(0.05)
    check(err is not None, "exposures: a last_error after an HTTP 400")
    eq(err["message"], "POST %s%s failed: HTTP 400" % (ctx.intake.url, EXPOSURES), "last_error.message")
    check(ISO_TIME.match(err["time"]), "last_error.time %r" % err["time"])
    agent = ctx.stats()["agents"][0]
    eq(agent["exposures"]["delivery"]["last_error"], err, "the agent's own object says the same")
