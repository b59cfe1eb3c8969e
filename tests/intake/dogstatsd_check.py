#!/usr/bin/python3
"""Checks the DogStatsD datagrams the intake recorded in the metrics
end-to-end test (tests/integration/posix/test_metrics_e2e.c).

Its own parser of the DogStatsD datagram format (one metric per line:
`name:value[:value...]|type[|@rate][|#tag,tag]`), written from the protocol,
not from the sidecar's code. The expected totals are the scenario's: see
the test for what each process sends.

    dogstatsd_check.py RECORDS --transport udp|unix --max-datagram N
        --procs N --card-lines N --lines N --datagrams N
    dogstatsd_check.py RECORDS --self
"""

import argparse
import base64
import collections
import json
import sys

TYPES = {"c", "g", "h", "d", "s", "ms"}


class Bad(Exception):
    pass


def parse_line(line):
    """(name, values, type, rate, tags) of one line; raises Bad."""
    parts = line.split("|")
    if len(parts) < 2:
        raise Bad("no type: %r" % line)
    name, sep, values = parts[0].partition(":")
    if not sep or not name or not values:
        raise Bad("no name:value: %r" % line)
    mtype = parts[1]
    if mtype not in TYPES:
        raise Bad("unknown type %r in %r" % (mtype, line))
    rate, tags = 1.0, ()
    for extra in parts[2:]:
        if extra.startswith("@"):
            rate = float(extra[1:])
        elif extra.startswith("#"):
            tags = tuple(extra[1:].split(","))
        else:
            raise Bad("unknown field %r in %r" % (extra, line))
    if mtype == "s":
        vals = [values]
    else:
        vals = [float(v) for v in values.split(":")]
    return name, vals, mtype, rate, tags


def read_lines(path):
    """[[lines of one datagram], ...] of the recorded datagrams, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            r = json.loads(raw)
            if r["method"] == "DATAGRAM":
                text = base64.b64decode(r["body_b64"]).decode("utf-8")
                out.append([line for line in text.split("\n") if line])
    return out


def check_self(path):
    """The self-telemetry scenario: 10 points, an invalid trace, a drain,
    5 points, a drain. Counts are per drain (what happened since the
    previous one), so sidecar.actions{kind:metric} is 10 then 5."""
    failures = []
    metric_counts, invalid_traces, rss = [], [], []
    for lines in read_lines(path):
        for line in lines:
            name, values, mtype, _, tags = parse_line(line)
            if name == "sidecar.actions" and tags == ("kind:metric",):
                metric_counts.append((mtype, values))
            if name == "sidecar.actions.invalid" and tags == ("kind:trace",):
                invalid_traces.append((mtype, values))
            if name == "sidecar.rss_bytes":
                rss.append((mtype, values))
    if metric_counts != [("c", [10.0]), ("c", [5.0])]:
        failures.append("sidecar.actions{kind:metric}: %r, expected 10 then 5" % metric_counts)
    if invalid_traces != [("c", [1.0])]:
        failures.append("sidecar.actions.invalid{kind:trace}: %r, expected one 1" % invalid_traces)
    if len(rss) < 2 or any(t != "g" or v[0] <= 0 for t, v in rss):
        failures.append("sidecar.rss_bytes gauges: %r" % rss)
    print("dogstatsd_check --self: %s" % ("PASS" if not failures else "FAIL"))
    for f in failures:
        print("FAIL " + f)
    return 0 if not failures else 1


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if "--self" in argv:
        return check_self([a for a in argv if a != "--self"][0])
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("--transport", required=True)
    ap.add_argument("--max-datagram", type=int, required=True)
    ap.add_argument("--procs", type=int, required=True)
    ap.add_argument("--card-lines", type=int, required=True)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--datagrams", type=int, required=True)
    a = ap.parse_args(argv)

    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    datagrams = []
    with open(a.records, encoding="utf-8") as f:
        for raw in f:
            r = json.loads(raw)
            if r["method"] == "DATAGRAM":
                expect(r["path"] == "dogstatsd:" + a.transport, "transport of %s" % r["path"])
                datagrams.append(base64.b64decode(r["body_b64"]))
    expect(len(datagrams) == a.datagrams, "%d datagrams recorded, the sidecar sent %d" % (len(datagrams), a.datagrams))
    longest = max((len(d) for d in datagrams), default=0)
    expect(longest <= a.max_datagram, "a datagram of %d bytes (limit %d)" % (longest, a.max_datagram))

    lines = collections.defaultdict(list)  # (name, type, rate, tags) -> [values per line]
    count = 0
    for d in datagrams:
        text = d.decode("utf-8")
        for line in text.split("\n"):
            if line == "":
                continue  # a trailing newline is allowed
            try:
                name, vals, mtype, rate, tags = parse_line(line)
            except (Bad, ValueError) as err:
                failures.append(str(err))
                continue
            lines[(name, mtype, rate, tags)].append(vals)
            count += 1
    expect(count == a.lines, "%d lines recorded, the sidecar sent %d" % (count, a.lines))

    def one(key, want):
        got = lines.pop(key, None)
        expect(got is not None and len(got) == 1, "%s: one aggregated line, got %r" % (key, got))
        if got:
            expect(got[0] == [want], "%s: %r, expected %r" % (key, got[0], want))

    n = a.procs
    one(("e2e.requests", "c", 1.0, ("env:e2e", "proc:all")), 200.0 * n)
    one(("e2e.sampled", "c", 1.0, ()), 100.0 * n / 0.25)
    one(("e2e.gauge", "g", 1.0, ()), 4242.0)
    rate = lines.pop(("e2e.rate", "g", 1.0, ()), [])
    expect(len(rate) == 1 and abs(rate[0][0] - 30.0 * n / 3600) < 1e-12, "e2e.rate per second: %r" % rate)

    latency = sorted(v for vals in lines.pop(("e2e.latency", "d", 1.0, ("env:e2e",)), []) for v in vals)
    want = sorted([-1.0] + [float(i * 1000 + r) for i in range(n) for r in range(200)])
    expect(latency == want, "distribution: %d values, expected %d (every value once)" % (len(latency), len(want)))

    hist = sorted(v for vals in lines.pop(("e2e.hist", "h", 0.5, ()), []) for v in vals)
    want = sorted([-1.0] + [float(r) for _ in range(n) for r in range(100)])
    expect(hist == want, "histogram @0.5: %d values, expected %d" % (len(hist), len(want)))

    members = [vals[0] for vals in lines.pop(("e2e.users", "s", 1.0, ()), [])]
    want = sorted("u%d" % k for k in range((n - 1) * 50 + 100))
    expect(sorted(members) == want, "set: %d members sent, expected %d distinct, each once" % (len(members), len(want)))

    card = [k for k in list(lines) if k[0] == "e2e.card"]
    expect(len(card) == a.card_lines, "cardinality: %d contexts sent, expected %d" % (len(card), a.card_lines))
    for k in card:
        expect(lines.pop(k) == [[1.0]] and k[1] == "c" and k[3][0].startswith("id:"), "card line %r" % (k,))
    expect(not lines, "unexpected lines: %r" % sorted(lines)[:5])

    print("dogstatsd_check: %d datagrams (longest %d bytes), %d lines, %s" %
          (len(datagrams), longest, count, "PASS" if not failures else "FAIL"))
    for f in failures:
        print("FAIL " + f)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
