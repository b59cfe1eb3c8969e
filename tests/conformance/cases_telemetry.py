"""Conformance cases: Telemetry (proto/sidecar.proto, docs/telemetry.md)."""

import json
import time

from harness import case, check, eq, send_invalid
from wire import field_bytes, field_varint

TELEMETRY = "/telemetry/proxy/api/v2/apmtelemetry"


def app_requests(ctx, service, count, timeout=10):
    """The telemetry requests of one application (by service name), oldest
    first, once at least `count` are in: (record, body) pairs. Another
    case's application (an app-closing half a second after its connections
    closed) may reach the intake meanwhile; it is not counted."""
    deadline = time.monotonic() + timeout
    while True:
        got = [(r, json.loads(ctx.intake.body(r))) for r in ctx.intake.requests(TELEMETRY)]
        got = [(r, b) for r, b in got if b["application"]["service_name"] == service]
        if len(got) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(len(got) >= count, "%d telemetry request(s) of %s, want %d" % (len(got), service, count))
    return sorted(got, key=lambda rb: rb[1]["seq_id"])


@case
def telemetry_rules(ctx):
    """Each rule of Telemetry refuses the action whole; nothing is tracked."""
    pb = ctx.pb
    T = pb.Telemetry
    c = ctx.conn(service="conf-tel-rules")
    events = ctx.stats()["telemetry"]["events"]
    for action, part in (
        (T(), "Telemetry.event"),
        (T(event=9), "Telemetry.event"),
        (T(event=T.EVENT_APP_CLOSING, dependencies=[pb.TelemetryDependency(name="a")]), "does not take"),
        (T(event=T.EVENT_APP_STARTED, integrations=[pb.TelemetryIntegration(name="a")]), "does not take"),
        (T(event=T.EVENT_DEPENDENCIES_LOADED, configuration=[pb.TelemetryConfiguration(name="a")]), "does not take"),
        (T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="d")] * 1025), "1024"),
        (T(event=T.EVENT_APP_STARTED, configuration=[pb.TelemetryConfiguration(value="v")]), "Telemetry.configuration"),
        (T(event=T.EVENT_APP_STARTED, configuration=[pb.TelemetryConfiguration(name="a", value="x" * 4097)]),
         "Telemetry.configuration"),
        (T(event=T.EVENT_APP_STARTED, configuration=[pb.TelemetryConfiguration(name="a", origin="env")]), "origin"),
        (T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="a\nb")]),
         "Telemetry.dependencies"),
        (T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="a", version="v" * 257)]),
         "Telemetry.dependencies"),
        (T(event=T.EVENT_INTEGRATIONS_CHANGE, integrations=[pb.TelemetryIntegration(enabled=True)]),
         "Telemetry.integrations"),
        (T(event=T.EVENT_APP_STARTED, logs=[pb.TelemetryLog(message="m", level=pb.TelemetryLog.LEVEL_WARN)]),
         "does not take"),
        (T(event=T.EVENT_LOGS, logs=[pb.TelemetryLog(message="m")]), "level"),
        (T(event=T.EVENT_LOGS, logs=[pb.TelemetryLog(level=pb.TelemetryLog.LEVEL_ERROR)]), "Telemetry.logs"),
        (T(event=T.EVENT_LOGS, logs=[pb.TelemetryLog(message="m", level=1, tags="a\nb")]), "Telemetry.logs"),
        (T(event=T.EVENT_LOGS, metrics=[pb.TelemetryMetric(name="m", type=1)]), "does not take"),
        (T(event=T.EVENT_GENERATE_METRICS, metrics=[pb.TelemetryMetric(name="m")]), "type"),
        (T(event=T.EVENT_DISTRIBUTIONS, metrics=[pb.TelemetryMetric(name="m", type=2)]), "type"),
        (T(event=T.EVENT_GENERATE_METRICS, metrics=[pb.TelemetryMetric(type=1)]), "Telemetry.metrics"),
        (T(event=T.EVENT_GENERATE_METRICS, metrics=[pb.TelemetryMetric(name="m", type=1, value=float("inf"))]),
         "finite"),
        (T(event=T.EVENT_DISTRIBUTIONS, metrics=[pb.TelemetryMetric(name="m")] * 1025), "1024"),
    ):
        send_invalid(ctx, c, "telemetry", part, telemetry=action)
    s = ctx.stats()["telemetry"]
    eq(s["events"], events, "nothing counted as an event")
    eq(app_requests(ctx, "conf-tel-rules", 0), [], "nothing sent")


@case
def telemetry_app_started_delivered(ctx):
    """An app-started, its dependencies and integrations of one process go
    in one message-batch with the v2 headers; a second process of the same
    application adds only what is new."""
    pb = ctx.pb
    T = pb.Telemetry
    ident = dict(service="conf-tel", env="e", version="1", language="php", language_version="8.3",
                 tracer_version="9.9")
    first, second = ctx.conn(**ident), ctx.conn(**ident)
    for c, dep in ((first, "a"), (second, "b")):
        c.send(telemetry=T(event=T.EVENT_APP_STARTED,
                           configuration=[pb.TelemetryConfiguration(name="n", value=dep, origin="code")]))
        c.send(telemetry=T(event=T.EVENT_DEPENDENCIES_LOADED,
                           dependencies=[pb.TelemetryDependency(name="shared", version="1"),
                                         pb.TelemetryDependency(name=dep)]))
        c.send(telemetry=T(event=T.EVENT_INTEGRATIONS_CHANGE,
                           integrations=[pb.TelemetryIntegration(name="curl", enabled=True, compatible=False)]))
        c.flush()
    records, bodies = zip(*app_requests(ctx, "conf-tel", 2))
    eq([b["seq_id"] for b in bodies], [1, 2], "seq_id")
    eq(len({b["runtime_id"] for b in bodies}), 1, "one runtime_id")
    b1, b2 = bodies
    eq(b1["request_type"], "message-batch", "first request")
    eq([i["request_type"] for i in b1["payload"]],
       ["app-started", "app-dependencies-loaded", "app-integrations-change"], "batch order")
    eq(b1["payload"][0]["payload"]["configuration"], [{"name": "n", "value": "a", "origin": "code"}],
       "the first process's configuration")
    eq(b1["payload"][2]["payload"]["integrations"], [{"name": "curl", "enabled": True, "compatible": False}],
       "integration")
    eq(b2["request_type"], "app-dependencies-loaded", "second request: only the new dependency")
    eq(b2["payload"], {"dependencies": [{"name": "b"}]}, "dependency b")
    app = b1["application"]
    eq((app["service_name"], app["env"], app["service_version"], app["language_name"], app["language_version"],
        app["tracer_version"]), ("conf-tel", "e", "1", "php", "8.3", "9.9"), "application")
    for r, b in zip(records, bodies):
        h = r["headers"]
        eq(h["dd-telemetry-api-version"], "v2", "API version header")
        eq(h["dd-telemetry-request-type"], b["request_type"], "request type header")
        eq((h["dd-client-library-language"], h["dd-client-library-version"]), ("php", "9.9"), "library headers")
        eq(h["content-type"], "application/json", "content type")
    s = ctx.stats()["telemetry"]
    check(s["app_started_joined"] >= 1 and s["dependencies_known"] >= 1 and s["integrations_unchanged"] >= 1,
          "the second process's repeats are counted: %r" % s)
    eq(ctx.stats()["delivery"]["telemetry"]["drops"]["buffer_full"]["payloads"], 0, "no drops")


@case
def telemetry_twice_in_one_envelope_merges(ctx):
    """The Telemetry field twice in one Envelope is one action, the merge of
    both (lists concatenated), as Google's runtime parses it."""
    pb = ctx.pb
    T = pb.Telemetry
    c = ctx.conn(service="conf-tel-merge")
    t1 = T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="m1")]).SerializeToString()
    t2 = T(dependencies=[pb.TelemetryDependency(name="m2", version="2")]).SerializeToString()
    body = field_varint(1, 50) + field_bytes(12, t1) + field_bytes(12, t2)
    parsed = pb.Envelope()
    parsed.ParseFromString(body)
    eq([d.name for d in parsed.telemetry.dependencies], ["m1", "m2"], "reference parse")
    c.send_raw(body)
    c.flush()
    ((_, b),) = app_requests(ctx, "conf-tel-merge", 1)
    eq(b["request_type"], "message-batch", "app-started and the dependencies")
    deps = [i["payload"] for i in b["payload"] if i["request_type"] == "app-dependencies-loaded"]
    eq(deps, [{"dependencies": [{"name": "m1"}, {"name": "m2", "version": "2"}]}], "both dependencies")



@case
def telemetry_logs_metrics_closing(ctx):
    """Every other event and field: logs (identical ones counted together,
    stack_trace and tags), integration version / compatible / auto_enabled,
    a configuration origin left empty, generate-metrics (namespace, tags,
    common, count / gauge / rate) and distributions. A Flush with deliver_now
    sends the events gathered; metric series are sums over the heartbeat
    interval and go with the heartbeat or, here, the app-closing that
    EVENT_APP_CLOSING and the end of the connection bring."""
    pb = ctx.pb
    T, M, L = pb.Telemetry, pb.TelemetryMetric, pb.TelemetryLog
    service = "conf-tel-events"
    before = ctx.stats()["telemetry"]
    c = ctx.conn(service=service, language="php", tracer_version="9.9")
    c.send(telemetry=T(event=T.EVENT_APP_STARTED, configuration=[
        pb.TelemetryConfiguration(name="a", value="1"),
        pb.TelemetryConfiguration(name="b", value="", origin="env_var")]))
    c.send(telemetry=T(event=T.EVENT_INTEGRATIONS_CHANGE, integrations=[
        pb.TelemetryIntegration(name="i", version="3", compatible=True, auto_enabled=True),
        pb.TelemetryIntegration(name="j", enabled=True)]))
    c.send(telemetry=T(event=T.EVENT_LOGS, logs=[
        L(message="m", level=L.LEVEL_WARN), L(message="m", level=L.LEVEL_WARN),
        L(message="m", level=L.LEVEL_DEBUG, stack_trace="st", tags="a:b"), L(message="e", level=L.LEVEL_ERROR)]))
    c.send(telemetry=T(event=T.EVENT_GENERATE_METRICS, metrics=[
        M(namespace="general", name="n", tags="a:1,,b:2", value=2, common=True, type=M.TYPE_COUNT),
        M(namespace="general", name="n", tags="a:1,,b:2", value=3, common=True, type=M.TYPE_COUNT),
        M(name="g", value=1, type=M.TYPE_GAUGE), M(name="g", value=7, type=M.TYPE_GAUGE),
        M(name="r", value=6, type=M.TYPE_RATE)]))
    c.send(telemetry=T(event=T.EVENT_DISTRIBUTIONS,
                       metrics=[M(name="d", value=1.5), M(name="d", value=2.5, tags="x:y")]))
    c.flush(deliver_now=True)
    ((_, first),) = app_requests(ctx, service, 1)
    eq([i["request_type"] for i in first["payload"]], ["app-started", "app-integrations-change", "logs"],
       "deliver_now: the events gathered, not the metric series")
    started, integrations, logs = (i["payload"] for i in first["payload"])
    eq(started["configuration"], [{"name": "a", "value": "1", "origin": "unknown"},
                                  {"name": "b", "value": "", "origin": "env_var"}], "configuration")
    eq(integrations["integrations"], [
        {"name": "i", "enabled": False, "version": "3", "compatible": True, "auto_enabled": True},
        {"name": "j", "enabled": True}], "integrations: optional members only when given")
    eq(logs["logs"], [{"message": "m", "level": "WARN", "count": 2},
                      {"message": "m", "level": "DEBUG", "count": 1, "stack_trace": "st", "tags": "a:b"},
                      {"message": "e", "level": "ERROR", "count": 1}], "logs")

    c.send(telemetry=T(event=T.EVENT_APP_CLOSING))
    c.flush(deliver_now=False)
    c.close()
    (_, last) = app_requests(ctx, service, 2)[1]
    eq(last["seq_id"], 2, "seq_id")
    eq([i["request_type"] for i in last["payload"]], ["generate-metrics", "distributions", "app-closing"],
       "the metric series go with the app-closing")
    metrics, dists, closing = (i["payload"] for i in last["payload"])
    eq(closing, {}, "app-closing payload")
    eq(metrics["namespace"], "tracers", "generate-metrics namespace")
    series = {s["metric"]: s for s in metrics["series"]}
    eq(sorted(series), ["g", "n", "r"], "one series per (namespace, name, tags, type, common)")
    for s in series.values():
        eq(len(s["points"]), 1, "one point per series")
    n, g, r = series["n"], series["g"], series["r"]
    eq((n["namespace"], n["tags"], n["common"], n["type"], n["points"][0][1]),
       ("general", ["a:1", "b:2"], True, "count", 5), "count: the sum, non-empty tags")
    check("interval" not in n, "no interval for a count")
    eq((g["namespace"], g["tags"], g["common"], g["type"], g["points"][0][1], g["interval"]),
       ("tracers", [], False, "gauge", 7, 60), "gauge: the last value")
    eq((r["type"], r["points"][0][1], r["interval"]), ("rate", 0.1, 60), "rate: the sum over the interval")
    eq(sorted((s["metric"], s["points"], s["tags"]) for s in dists["series"]),
       [("d", [1.5], []), ("d", [2.5], ["x:y"])], "distributions: every value, per series")
    after = ctx.stats()["telemetry"]
    for key, n in (("logs", 4), ("logs_sent", 3), ("metric_points", 7), ("metric_series_sent", 5),
                   ("events", 6)):
        eq(after[key] - before[key], n, "telemetry." + key)
    # The earlier cases' applications close in this time too.
    check(after["app_closing"] > before["app_closing"], "telemetry.app_closing")


@case
def telemetry_limits(ctx):
    """Each limit of Telemetry taken at the limit and refused one past it:
    1024 items, a string of 256 bytes, a configuration value of 4096, a log
    message and a stack trace of 8192, log tags of 1024."""
    pb = ctx.pb
    T, L = pb.Telemetry, pb.TelemetryLog
    c = ctx.conn(service="conf-tel-limits")
    events = ctx.stats()["telemetry"]["events"]
    ok = [
        T(event=T.EVENT_DEPENDENCIES_LOADED,
          dependencies=[pb.TelemetryDependency(name="d%d" % i) for i in range(1024)]),
        T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="n" * 256, version="v" * 256)]),
        T(event=T.EVENT_APP_STARTED, configuration=[pb.TelemetryConfiguration(name="c", value="x" * 4096)]),
        T(event=T.EVENT_LOGS, logs=[L(message="m" * 8192, level=L.LEVEL_ERROR, stack_trace="s" * 8192,
                                      tags="t" * 1024)]),
    ]
    for action in ok:
        c.send(telemetry=action)
        seq = c.send(ping=pb.Ping())
        env = c.recv()
        eq((env.WhichOneof("action"), env.seq), ("ping_reply", seq), "taken at the limit")
    eq(ctx.stats()["telemetry"]["events"], events + len(ok), "every event at the limit taken")
    for action, part in (
        (T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[pb.TelemetryDependency(name="n" * 257)]),
         "Telemetry.dependencies"),
        (T(event=T.EVENT_LOGS, logs=[L(message="m" * 8193, level=L.LEVEL_ERROR)]), "Telemetry.logs"),
        (T(event=T.EVENT_LOGS, logs=[L(message="m", level=L.LEVEL_ERROR, stack_trace="s" * 8193)]), "Telemetry.logs"),
        (T(event=T.EVENT_LOGS, logs=[L(message="m", level=L.LEVEL_ERROR, tags="t" * 1025)]), "Telemetry.logs"),
    ):
        send_invalid(ctx, c, "telemetry", part, telemetry=action)


@case
def telemetry_optional_absent_vs_empty(ctx):
    """The optional strings and booleans of telemetry items: absent is left
    out of the body, present (even empty or false) is written."""
    pb = ctx.pb
    T = pb.Telemetry
    service = "conf-tel-optional"
    c = ctx.conn(service=service)
    c.send(telemetry=T(event=T.EVENT_DEPENDENCIES_LOADED, dependencies=[
        pb.TelemetryDependency(name="a"), pb.TelemetryDependency(name="b", version="")]))
    c.send(telemetry=T(event=T.EVENT_INTEGRATIONS_CHANGE, integrations=[
        pb.TelemetryIntegration(name="i"),
        pb.TelemetryIntegration(name="j", version="", compatible=False, auto_enabled=False)]))
    c.send(telemetry=T(event=T.EVENT_LOGS, logs=[
        pb.TelemetryLog(message="m", level=pb.TelemetryLog.LEVEL_ERROR),
        pb.TelemetryLog(message="n", level=pb.TelemetryLog.LEVEL_ERROR, stack_trace="", tags="")]))
    c.flush()
    ((_, b),) = app_requests(ctx, service, 1)
    p = {i["request_type"]: i["payload"] for i in b["payload"]}
    eq(p["app-dependencies-loaded"]["dependencies"], [{"name": "a"}, {"name": "b", "version": ""}], "dependencies")
    eq(p["app-integrations-change"]["integrations"],
       [{"name": "i", "enabled": False},
        {"name": "j", "enabled": False, "version": "", "compatible": False, "auto_enabled": False}], "integrations")
    eq(p["logs"]["logs"], [{"message": "m", "level": "ERROR", "count": 1},
                           {"message": "n", "level": "ERROR", "count": 1, "stack_trace": "", "tags": ""}], "logs")
