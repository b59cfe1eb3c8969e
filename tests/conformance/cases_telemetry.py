"""Conformance cases: Telemetry (proto/sidecar.proto, docs/telemetry.md)."""

import json

from harness import case, check, eq, send_invalid
from wire import field_bytes, field_varint

TELEMETRY = "/telemetry/proxy/api/v2/apmtelemetry"


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
    eq(ctx.intake.requests(TELEMETRY), [], "nothing sent")


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
    records = ctx.delivered(TELEMETRY, count=2)
    bodies = [json.loads(ctx.intake.body(r)) for r in records]
    bodies.sort(key=lambda b: b["seq_id"])
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
    for r, b in zip(sorted(records, key=lambda r: json.loads(ctx.intake.body(r))["seq_id"]), bodies):
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
    (r,) = ctx.delivered(TELEMETRY)
    b = json.loads(ctx.intake.body(r))
    eq(b["request_type"], "message-batch", "app-started and the dependencies")
    deps = [i["payload"] for i in b["payload"] if i["request_type"] == "app-dependencies-loaded"]
    eq(deps, [{"dependencies": [{"name": "m1"}, {"name": "m2", "version": "2"}]}], "both dependencies")

