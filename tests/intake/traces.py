#!/usr/bin/python3
"""Decode the /v0.4/traces bodies the local intake recorded.

An independent check of what the sidecar sent: bodies are decoded with
Debian's python3-msgpack, not with any code of the project.

    traces.py summary --port P [--accepted-only]
    traces.py summary --file records.jsonl [--accepted-only]

prints a JSON summary (see summarize()) and exits 0 when every body decoded
as an array of traces (each an array of span maps) whose count matches its
X-Datadog-Trace-Count header, 1 otherwise, 2 when the records are unreadable.

Importable: decode_traces(), header_trace_count(), trace_records(),
summarize(), records_from_port(), records_from_file().
"""

import argparse
import base64
import collections
import json
import sys
import urllib.parse

import msgpack

from intake_client import ControlClient, IntakeError

TRACES_PATH = "/v0.4/traces"


class TraceFormatError(ValueError):
    pass


def decode_traces(body):
    """bytes -> list of traces, each a list of span dicts; TraceFormatError otherwise."""
    try:
        payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as err:  # msgpack raises several unrelated types
        raise TraceFormatError("not one msgpack value: %s: %s" % (type(err).__name__, err)) from None
    if not isinstance(payload, list):
        raise TraceFormatError("top level is %s, not an array" % type(payload).__name__)
    for t, trace in enumerate(payload):
        if not isinstance(trace, list):
            raise TraceFormatError("trace %d is %s, not an array" % (t, type(trace).__name__))
        if not trace:
            raise TraceFormatError("trace %d has no spans" % t)
        for s, span in enumerate(trace):
            if not isinstance(span, dict):
                raise TraceFormatError("trace %d span %d is %s, not a map" % (t, s, type(span).__name__))
    return payload


def header_trace_count(record):
    """The X-Datadog-Trace-Count header as an int, None when absent or not a number."""
    value = record["headers"].get("x-datadog-trace-count")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def is_accepted(record):
    """True when the intake answered 2xx (a stalled or closed request is not)."""
    answered = record["answered"]
    return isinstance(answered, int) and 200 <= answered < 300


def trace_records(records, accepted_only=False):
    """The PUT/POST /v0.4/traces records, oldest first."""
    return [
        r
        for r in records
        if urllib.parse.urlsplit(r["path"]).path == TRACES_PATH
        and r["method"] in ("PUT", "POST")
        and (is_accepted(r) or not accepted_only)
    ]


def summarize(records, accepted_only=False):
    """Decodes every traces record; returns a JSON-ready dict:

    requests, traces (decoded), spans, header_trace_count (sum of headers),
    count_mismatches [{seq, header, decoded}], decode_errors [{seq, error}],
    max_body_bytes, first_span_trace_ids (one per trace, in order; None when
    the first span has no trace_id), duplicate_trace_ids (ids seen twice or
    more), accepted_only."""
    summary = {
        "requests": 0,
        "traces": 0,
        "spans": 0,
        "header_trace_count": 0,
        "count_mismatches": [],
        "decode_errors": [],
        "max_body_bytes": 0,
        "first_span_trace_ids": [],
        "duplicate_trace_ids": [],
        "accepted_only": accepted_only,
    }
    for record in trace_records(records, accepted_only):
        body = base64.b64decode(record["body_b64"])
        header = header_trace_count(record)
        summary["requests"] += 1
        summary["header_trace_count"] += header or 0
        summary["max_body_bytes"] = max(summary["max_body_bytes"], len(body))
        try:
            traces = decode_traces(body)
        except TraceFormatError as err:
            summary["decode_errors"].append({"seq": record["seq"], "error": str(err)})
            continue
        summary["traces"] += len(traces)
        summary["spans"] += sum(len(trace) for trace in traces)
        summary["first_span_trace_ids"] += [trace[0].get("trace_id") for trace in traces]
        if header != len(traces):
            summary["count_mismatches"].append({"seq": record["seq"], "header": header, "decoded": len(traces)})
    seen = collections.Counter(i for i in summary["first_span_trace_ids"] if i is not None)
    summary["duplicate_trace_ids"] = sorted(i for i, n in seen.items() if n > 1)
    return summary


def records_from_port(port):
    return ControlClient(port).requests(TRACES_PATH)


def records_from_file(path):
    """Records from an intake --record file (one JSON object per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Decode and summarize recorded /v0.4/traces bodies.")
    commands = parser.add_subparsers(dest="command", required=True)
    summary_cmd = commands.add_parser("summary", help="print a JSON summary of every traces request")
    source = summary_cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--port", type=int, help="query the running intake on 127.0.0.1:PORT")
    source.add_argument("--file", help="read an intake --record JSON-lines file")
    summary_cmd.add_argument("--accepted-only", action="store_true", help="only requests answered 2xx")
    args = parser.parse_args(argv)

    try:
        records = records_from_port(args.port) if args.port is not None else records_from_file(args.file)
    except (OSError, ValueError, IntakeError) as err:
        print("traces: cannot read records: %s" % err, file=sys.stderr)
        return 2
    summary = summarize(records, args.accepted_only)
    print(json.dumps(summary, indent=1))
    return 1 if summary["decode_errors"] or summary["count_mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
