#!/usr/bin/env python3
"""Prints what the intake received, as the README demo shows it: traces
(decoded with python3-msgpack, an independent decoder) and flag-evaluation
counts (from the EVP JSON bodies), from a --record JSONL file.

Usage: summary.py RECORDS.jsonl [--expect-traces N] [--expect-evaluations N]
Exits 1 when an expectation is not met."""
import argparse
import base64
import collections
import json
import subprocess
import sys

import traces


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("--expect-traces", type=int)
    ap.add_argument("--expect-evaluations", type=int)
    ap.add_argument("--expect-exposures", type=int)
    args = ap.parse_args()
    records = traces.records_from_file(args.records)
    t = traces.summarize(records)
    flags = collections.Counter()
    bodies = 0
    nulls = 0
    rejected_by_json_tool = 0
    exposures = 0
    for rec in records:
        if not rec["path"].startswith("/evp_proxy/v2/api/v2/"):
            continue
        body = base64.b64decode(rec["body_b64"])
        # The independent check the issue names: python3 -m json.tool.
        tool = subprocess.run([sys.executable, "-m", "json.tool"], input=body,
                              capture_output=True)
        rejected_by_json_tool += tool.returncode != 0
        text = body.decode()
        nulls += text.count("null")
        if rec["path"].endswith("/exposures"):
            exposures += len(json.loads(text)["exposures"])
            continue
        bodies += 1
        for ev in json.loads(text)["flagEvaluations"]:
            flags[ev["flag"]["key"]] += ev["evaluation_count"]
    print(f"trace requests: {t['requests']}, traces received: {t['traces']} "
          f"(X-Datadog-Trace-Count sum {t['header_trace_count']}), "
          f"duplicates: {len(t['duplicate_trace_ids'])}, "
          f"largest body: {t['max_body_bytes']} bytes")
    print(f"flag-evaluation bodies: {bodies}, evaluations counted: "
          f"{sum(flags.values())}, nulls in bodies: {nulls}")
    for key, n in sorted(flags.items()):
        print(f"  {key}: {n}")
    print(f"exposures received: {exposures}; EVP bodies json.tool rejected: "
          f"{rejected_by_json_tool}")
    ok = (not t["decode_errors"] and not t["count_mismatches"] and nulls == 0
          and rejected_by_json_tool == 0)
    if args.expect_exposures is not None:
        ok &= exposures == args.expect_exposures
    if args.expect_traces is not None:
        ok &= t["traces"] == args.expect_traces and not t["duplicate_trace_ids"]
    if args.expect_evaluations is not None:
        ok &= sum(flags.values()) == args.expect_evaluations
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
