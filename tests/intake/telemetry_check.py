#!/usr/bin/python3
"""Checks the telemetry requests the intake recorded in the telemetry
end-to-end test (tests/integration/posix/test_telemetry_e2e.c).

Every body is validated against tests/intake/telemetry_v2.schema.json (a
JSON Schema written from the public v2 API, checked with Debian's
python3-jsonschema) and its headers against the body. Then, per
application (runtime_id), the events in seq_id order: seq_ids 1..N without
a gap, app-started first and once, app-closing last and once, every
dependency once, integrations only when their state changed, heartbeats at
the interval (no more than the application's span allows). The expected
content is the scenario's (see the test).

    telemetry_check.py RECORDS --procs N --heartbeat-ms MS
"""

import argparse
import base64
import json
import os
import sys

import jsonschema

PATH = "/telemetry/proxy/api/v2/apmtelemetry"
SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "telemetry_v2.schema.json")
COMMON_DEPS = {("guzzlehttp/guzzle", "7.8.1"), ("monolog/monolog", "3.5.0"), ("psr/log", None)}


def events_of(body):
    """[(request_type, payload)] of one body (a message-batch's items)."""
    if body["request_type"] == "message-batch":
        return [(item["request_type"], item["payload"]) for item in body["payload"]]
    return [(body["request_type"], body["payload"])]


def check_metrics(events, a, expect):
    """The metrics of the scenario, aggregated exactly across processes and
    heartbeat intervals: per process a count of 1 + 2, a rate of 2 per
    interval, a gauge of its index; distribution values index and 0.5."""
    series = [s for t, p, _ in events if t == "generate-metrics" for s in p["series"]]
    spans = [s for s in series if s["metric"] == "spans_created"]
    expect(all(s["namespace"] == "tracers" and s["type"] == "count" and s["common"] is True
               and s["tags"] == ["integration_name:pdo", "component:db"] and len(s["points"]) == 1
               for s in spans), "spans_created series: %r" % spans[:2])
    total = sum(s["points"][0][1] for s in spans)
    expect(total == 3 * a.procs, "spans_created: %r, expected %d" % (total, 3 * a.procs))
    gauges = [s for s in series if s["metric"] == "workers"]
    expect(gauges and all(s["namespace"] == "general" and s["type"] == "gauge" and s["tags"] == []
                          and s["common"] is False and s["interval"] >= 1 for s in gauges),
           "workers series: %r" % gauges[:2])
    expect(gauges and all(s["points"][0][1] in range(a.procs) for s in gauges), "gauge values: %r" % gauges[:2])
    rates = [s for s in series if s["metric"] == "flushes"]
    # A rate is per second of the interval: the sum of value x interval.
    got = sum(s["points"][0][1] * a.heartbeat_ms / 1000.0 for s in rates)
    expect(rates and all(s["type"] == "rate" for s in rates) and abs(got - 2 * a.procs) < 1e-6,
           "flushes (rate): %r x interval = %r, expected %d" % ([s["points"] for s in rates][:3], got, 2 * a.procs))
    dists = [s for t, p, _ in events if t == "distributions" for s in p["series"]]
    expect(all(s["metric"] == "init_time" and s["tags"] == ["lang:php"] and s["common"] is True for s in dists),
           "distribution series: %r" % dists[:2])
    values = sorted(v for s in dists for v in s["points"])
    want = sorted([float(i) for i in range(a.procs)] + [0.5] * a.procs)
    expect(values == want, "distribution values: %r, expected %r" % (values[:20], want[:20]))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("--procs", type=int, required=True)
    ap.add_argument("--heartbeat-ms", type=int, required=True)
    a = ap.parse_args(argv)
    with open(SCHEMA, encoding="utf-8") as f:
        validator = jsonschema.Draft202012Validator(json.load(f))

    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    apps = {}  # runtime_id -> [(seq_id, time, body)]
    with open(a.records, encoding="utf-8") as f:
        for raw in f:
            r = json.loads(raw)
            if r["path"] != PATH:
                continue
            body = json.loads(base64.b64decode(r["body_b64"]))
            for err in validator.iter_errors(body):
                failures.append("schema: %s at %s" % (err.message, list(err.absolute_path)))
            h = r["headers"]
            expect(r["method"] == "POST", "method %s" % r["method"])
            expect(h.get("content-type") == "application/json", "content-type %r" % h.get("content-type"))
            expect(h.get("dd-telemetry-api-version") == "v2", "DD-Telemetry-API-Version %r" % h.get("dd-telemetry-api-version"))
            expect(h.get("dd-telemetry-request-type") == body.get("request_type"), "DD-Telemetry-Request-Type %r for a %r body" % (h.get("dd-telemetry-request-type"), body.get("request_type")))
            app = body.get("application", {})
            expect(h.get("dd-client-library-language") == app.get("language_name"), "DD-Client-Library-Language %r" % h.get("dd-client-library-language"))
            expect(h.get("dd-client-library-version") == app.get("tracer_version"), "DD-Client-Library-Version %r" % h.get("dd-client-library-version"))
            apps.setdefault(body.get("runtime_id"), []).append((body.get("seq_id"), r["time"], body))

    by_service = {}
    for rid, bodies in apps.items():
        bodies.sort(key=lambda b: b[0])
        service = bodies[0][2]["application"]["service_name"]
        expect(service not in by_service, "%s: two runtime_ids" % service)
        by_service[service] = bodies
        seqs = [b[0] for b in bodies]
        expect(seqs == list(range(1, len(seqs) + 1)), "%s: seq_ids %r are not 1..N" % (service, seqs))
        expect(all(b[2]["application"] == bodies[0][2]["application"] for b in bodies), "%s: application changes" % service)
        events = [e for b in bodies for e in events_of(b[2])]
        types = [t for t, _ in events]
        expect(types.count("app-started") == 1 and types[0] == "app-started", "%s: app-started first and once: %r" % (service, types[:5]))
        expect(types.count("app-closing") == 1 and types[-1] == "app-closing", "%s: app-closing last and once: %r" % (service, types[-5:]))
    expect(sorted(by_service) == ["tel-e2e", "tel-other"], "applications: %r" % sorted(by_service))

    main_app = by_service.get("tel-e2e", [])
    events = [(t, p, time_) for _, time_, body in main_app for t, p in events_of(body)]
    started = [p for t, p, _ in events if t == "app-started"]
    if started:
        conf = {c["name"]: (c["value"], c["origin"]) for c in started[0]["configuration"]}
        expect(conf.get("DD_SERVICE") == ("tel-e2e", "env_var"), "configuration DD_SERVICE %r" % (conf.get("DD_SERVICE"),))
        expect(conf.get("trace.sample_rate") == ("1", "default"), "configuration trace.sample_rate")
        expect(conf.get("process.index", ("", ""))[0] in {str(i) for i in range(a.procs)}, "configuration of one process")
    deps = [(d["name"], d.get("version")) for t, p, _ in events if t == "app-dependencies-loaded" for d in p["dependencies"]]
    want = COMMON_DEPS | {("app/proc-%d" % i, "1.0") for i in range(a.procs)}
    expect(len(deps) == len(set(deps)), "a dependency reported twice")
    expect(set(deps) == want, "dependencies: %d reported, %d expected (missing %r, extra %r)" % (len(deps), len(want), sorted(want - set(deps))[:3], sorted(set(deps) - want)[:3]))
    integrations = [i for t, p, _ in events if t == "app-integrations-change" for i in p["integrations"]]
    curl = [i for i in integrations if i["name"] == "curl"]
    expect(curl == [{"name": "curl", "enabled": True, "version": "8.1", "compatible": True}], "curl reported once: %r" % curl)
    pdo = [i["enabled"] for i in integrations if i["name"] == "pdo"]
    # Several changes before one request make one item, the last state.
    expect(len(pdo) >= 1 and all(x != y for x, y in zip(pdo, pdo[1:])), "pdo reported on change only: %r" % pdo)
    logs = [g for t, p, _ in events if t == "logs" for g in p["logs"]]
    expect(all(g["message"] == "pdo: slow query\n#0 query()" and g["level"] == "WARN"
               and g["tags"] == "integration:pdo" for g in logs), "logs: %r" % logs[:2])
    expect(sum(g.get("count", 1) for g in logs) == a.procs,
           "one log per process, counted together: %r" % [g.get("count") for g in logs])
    check_metrics(events, a, expect)
    beats = [time_ for t, _, time_ in events if t == "app-heartbeat"]
    expect(len(beats) >= 2, "%d heartbeats while the processes lived" % len(beats))
    # At the interval: no more heartbeats than the application's span allows.
    # Gaps between two arrivals are not checked one by one: telemetry goes
    # out one request at a time, so a heartbeat held behind a slow request
    # arrives close to the next one on a loaded machine.
    interval = a.heartbeat_ms / 1000.0
    span = beats[-1] - beats[0] if beats else 0.0
    expect(len(beats) - 1 <= span / interval + 1,
           "%d heartbeats in %.3f s at an interval of %.3f s" % (len(beats), span, interval))

    other = by_service.get("tel-other", [])
    other_types = [t for _, _, body in other for t, _ in events_of(body)]
    expect(other_types == ["app-started", "app-closing"], "tel-other: %r" % other_types)

    n = sum(len(b) for b in apps.values())
    print("telemetry_check: %d requests, %d applications, %d heartbeats, %d dependencies, %s" %
          (n, len(apps), len(beats), len(deps), "PASS" if not failures else "FAIL"))
    for f in failures[:40]:
        print("FAIL " + f)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
