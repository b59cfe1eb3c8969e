#!/usr/bin/python3
"""Runs one test_flusher scenario against the local intake and checks what
the intake received, independently of the project's code: trace bodies are
decoded with python3-msgpack (tests/intake/traces.py).

    flusher_check.py --binary PATH --scenario NAME

Exit 0 when the scenario program passed its own checks and the intake saw
exactly what it should; 1 otherwise.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))

import traces  # noqa: E402  (tests/intake)
from intake_client import Intake  # noqa: E402

TRACES = "/v0.4/traces"
FLAGEVALS = "/evp_proxy/v2/api/v2/flagevaluations"
EXPOSURES = "/evp_proxy/v2/api/v2/exposures"
MAX_BODY = 10 * 1024 * 1024

# What the intake is told before the scenario starts.
BEHAVIORS = {
    "retry": [
        dict(path_prefix=TRACES, mode="status", status=500, count=3),
        dict(path_prefix=EXPOSURES, mode="status", status=503, count=2),
        dict(path_prefix=FLAGEVALS, mode="status", status=429, count=1),
    ],
    "client_error": [
        dict(path_prefix=TRACES, mode="status", status=400, count=-1),
        dict(path_prefix=FLAGEVALS, mode="status", status=404, count=-1),
    ],
    "stall": [dict(path_prefix=TRACES, mode="stall", stall_ms=3000, count=1)],
    "barrier": [dict(path_prefix=TRACES, mode="stall", stall_ms=1000, count=1)],
}

errors = []


def expect(cond, message):
    if not cond:
        errors.append(message)


def accepted(record):
    return traces.is_accepted(record)


def check_trace_records(report, records, delivered=True):
    """Every expected trace arrived in exactly one accepted request, nothing
    else did, and each request's headers match the spans it carried."""
    summary = traces.summarize(records, accepted_only=True)
    expect(not summary["decode_errors"], "decode errors: %s" % summary["decode_errors"][:3])
    expect(not summary["count_mismatches"], "X-Datadog-Trace-Count mismatches: %s" % summary["count_mismatches"][:3])
    expect(not summary["duplicate_trace_ids"], "traces delivered twice: %s" % summary["duplicate_trace_ids"][:10])
    expect(summary["max_body_bytes"] <= MAX_BODY, "body of %d bytes" % summary["max_body_bytes"])
    got = sorted(i for i in summary["first_span_trace_ids"] if i is not None)
    want = sorted(report["expected_trace_ids"]) if delivered else []
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        errors.append("traces: %d received, %d expected; missing %s; unexpected %s"
                      % (len(got), len(want), missing[:10], extra[:10]))
    for record in traces.trace_records(records, accepted_only=True):
        headers = record["headers"]
        expect(headers.get("content-type") == "application/msgpack", "content-type %r" % headers.get("content-type"))
        expect(headers.get("datadog-meta-lang") == "php", "lang %r" % headers.get("datadog-meta-lang"))
        expect("x-evil" not in headers, "injected header reached the agent")
        try:
            body_traces = traces.decode_traces(base64.b64decode(record["body_b64"]))
        except traces.TraceFormatError:
            continue  # reported by summarize()
        for trace in body_traces:
            for span in trace:
                meta = span.get("meta", {})
                if (meta.get("lang_version") != headers.get("datadog-meta-lang-version")
                        or meta.get("tracer_version") != headers.get("datadog-meta-tracer-version")):
                    errors.append("seq %d: span of %s/%s sent with headers %s/%s" % (
                        record["seq"], meta.get("lang_version"), meta.get("tracer_version"),
                        headers.get("datadog-meta-lang-version"), headers.get("datadog-meta-tracer-version")))
                    return
    return summary


def check_evp(report, records, path, key):
    """Each EVP body arrived once, verbatim, with the EVP headers."""
    got = []
    for record in records:
        if record["path"] != path or not accepted(record):
            continue
        headers = record["headers"]
        expect(record["method"] == "POST", "%s method %s" % (path, record["method"]))
        expect(headers.get("x-datadog-evp-subdomain") == "event-platform-intake", "%s: EVP subdomain header" % path)
        expect(headers.get("content-type") == "application/json", "%s: content-type" % path)
        got.append(base64.b64decode(record["body_b64"]).decode())
    want = report[key]
    expect(sorted(got) == sorted(want), "%s: %d bodies received, %d expected" % (path, len(got), len(want)))
    for body in got:
        json.loads(body)


def count_answers(records, path, answered):
    return sum(1 for r in records if r["path"] == path and r["answered"] == answered)


def check_scenario(name, report, records):
    stats = report["stats"]
    if name == "merge":
        summary = check_trace_records(report, records)
        ok = [r for r in traces.trace_records(records, accepted_only=True)]
        expect(len(ok) == stats["traces"]["delivery"]["ok"], "requests vs stats")
        expect(summary and summary["max_body_bytes"] > 9 * 1024 * 1024, "the 9.5 MiB payload was not sent alone")
        print("merge: %d payloads in %d requests, largest body %d bytes"
              % (report["submitted"], len(ok), summary["max_body_bytes"] if summary else -1))
    elif name == "retry":
        check_trace_records(report, records)
        check_evp(report, records, FLAGEVALS, "flagevaluations")
        check_evp(report, records, EXPOSURES, "exposures")
        expect(count_answers(records, TRACES, 500) == 3, "three 500s")
        expect(count_answers(records, EXPOSURES, 503) == 2, "two 503s")
        expect(count_answers(records, FLAGEVALS, 429) == 1, "one 429")
    elif name == "client_error":
        check_trace_records(report, records, delivered=False)
        trace_requests = [r for r in records if r["path"] == TRACES]
        expect(len(trace_requests) == stats["traces"]["delivery"]["requests"], "requests vs stats")
        expect(all(r["answered"] == 400 for r in trace_requests), "answers")
        # Each batch was sent once: no trace id appears in two requests.
        seen = []
        for r in trace_requests:
            seen += [t[0]["trace_id"] for t in traces.decode_traces(base64.b64decode(r["body_b64"]))]
        expect(len(seen) == len(set(seen)) == len(report["expected_trace_ids"]), "a 400 was retried")
        expect(count_answers(records, FLAGEVALS, 404) == 3, "flag evaluations sent once each")
        check_evp(report, records, EXPOSURES, "exposures")
    elif name == "stall":
        check_trace_records(report, records)
        expect(count_answers(records, TRACES, "stalled") == 1, "no stalled request")
    elif name in ("unix", "evp", "barrier"):
        check_trace_records(report, records)
        check_evp(report, records, FLAGEVALS, "flagevaluations")
        check_evp(report, records, EXPOSURES, "exposures")
        info = [r for r in records if r["path"] == "/info"]
        expect(len(info) >= 1, "no GET /info")
    elif name == "reject":
        check_trace_records(report, records)


def run_binary(binary, scenario, agent_url, emulator=None):
    # Under Wine the Windows build talks to the intake on this host (as the
    # IIS-like pool test does).
    command = ([emulator] if emulator else []) + [binary, scenario, agent_url]
    proc = subprocess.run(command, stdout=subprocess.PIPE, timeout=180)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        errors.append("test_flusher printed no report (exit %d)" % proc.returncode)
        return None
    expect(proc.returncode == 0, "test_flusher failed %d checks (exit %d)" % (report["failures"], proc.returncode))
    return report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--emulator", default="",
                        help="runs the binary through this (wine for the Windows build)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="flusher-") as tmp:
        if args.scenario == "down":
            # Port 1 on loopback: nothing listens, connections are refused.
            run_binary(args.binary, "down", "http://127.0.0.1:1", args.emulator)
        else:
            unix_path = os.path.join(tmp, "agent.sock") if args.scenario == "unix" else None
            with Intake.start(tmp, unix_path=unix_path) as intake:
                for behavior in BEHAVIORS.get(args.scenario, []):
                    intake.behavior(**behavior)
                url = intake.unix_url if unix_path else intake.url
                report = run_binary(args.binary, args.scenario, url, args.emulator)
                if report is not None:
                    records = intake.requests()
                    if args.scenario == "barrier":
                        # The stall (1 s) ends before the request timeout
                        # (5 s): the intake then answers 200.
                        for r in records:
                            if r["answered"] == "stalled":
                                r["answered"] = 200
                    check_scenario(args.scenario, report, records)
                if errors:
                    sys.stderr.write(intake.log_text()[-3000:])
    for e in errors:
        print("FAIL: %s" % e, file=sys.stderr)
    print("%s: %s" % (args.scenario, "FAIL" if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
