#!/usr/bin/python3
"""Routing by agent (docs/delivery.md, "Routing"), from the outside: one real
sidecar, two local intakes (agents A and B), eight client processes speaking
the wire with Google's protobuf runtime (tests/conformance/wire.py), half of
them configured with SessionConfig.agent_url = A, half with B, all sending
at once. Decoded independently (python3-msgpack, json):

  1. both agents up: every trace, evaluation and exposure arrives at its own
     agent exactly once, nothing at the other, EVP contexts unmixed, per-agent
     stats match what each intake received; two of the sessions (one per
     agent) disconnect without a Flush, what they left queued is delivered
     all the same;
  2. agent B down: A's sessions are unaffected (every trace, evaluation and
     exposure delivered, no drop at A), B's data is dropped and counted at B
     (traces exactly, evaluations and exposures as drops; submitted =
     delivered + drops, per agent);
  3. B back; one session reconfigured mid-run (A, then B on the same
     connection) while the others keep sending: what it sent before the
     SessionConfig (traces, evaluations, exposures) is at A only, what it
     sent after is at B only;
  4. B stalls: a B session's Flush is held, an A session's is answered; the
     B session disconnects with its exposures still queued or in flight, and
     once B answers again they are at B, each exactly once;
  5. telemetry: two sessions of one application (the same Hello), one per
     agent, each load a dependency: each agent gets its own app-started
     (its own runtime_id) and its own session's dependency only.

    two_agents_check.py --sidecar BIN --protoc PROTOC --proto-dir DIR
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))

import msgpack  # noqa: E402  (Debian's python3-msgpack)
import traces  # noqa: E402  (tests/intake)
import wire  # noqa: E402  (tests/conformance)
import conformance  # noqa: E402  (tests/conformance)
from intake_client import Intake  # noqa: E402

TRACES = "/v0.4/traces"
EVALS = "/evp_proxy/v2/api/v2/flagevaluations"
EXPOSURES = "/evp_proxy/v2/api/v2/exposures"
TELEMETRY = "/telemetry/proxy/api/v2/apmtelemetry"
CLIENTS = 8
ROUNDS = 150
TRACES_PER_ROUND = 2
EVALS_PER_ROUND = 3
EXPOSURES_EVERY = 25
EXPOSURES_PER_BATCH = 4

errors = []


def expect(cond, message):
    if not cond:
        errors.append(message)
        print("FAIL: " + message, flush=True)


# ---- one client process ------------------------------------------------------------------------


def trace_ids(phase, index, rnd):
    base = phase * 10_000_000 + index * 100_000 + rnd * TRACES_PER_ROUND
    return [base + i + 1 for i in range(TRACES_PER_ROUND)]


def payload(ids, group):
    return msgpack.packb([[{"trace_id": t, "span_id": 1, "name": "two-agents",
                            "service": "svc-" + group}] for t in ids])


def hello(pb, c, group):
    c.send(hello=pb.Hello(protocol_version=1, pid=os.getpid(), language="python",
                          language_version="3", tracer_version="two-agents",
                          service="svc-" + group, env="test", version="1"))


def send_round(pb, c, phase, index, rnd, group):
    ids = trace_ids(phase, index, rnd)
    c.send(trace_payload=pb.TracePayload(msgpack=payload(ids, group), trace_count=len(ids)))
    now = int(time.time() * 1000)
    ev = pb.FlagEvaluation(flag_key="f-%s-%d" % (group, phase), variant_key="on",
                           evaluation_count=EVALS_PER_ROUND, first_evaluation_ms=now,
                           last_evaluation_ms=now)
    c.send(flag_evaluation_batch=pb.FlagEvaluationBatch(evaluations=[ev]))
    if rnd % EXPOSURES_EVERY == 0:
        exposures = [pb.Exposure(timestamp_ms=now, flag_key="x-%s-%d" % (group, phase),
                                 variant_key="on", subject_id="u%d" % i)
                     for i in range(EXPOSURES_PER_BATCH)]
        c.send(exposure_batch=pb.ExposureBatch(exposures=exposures))


def client(pb, endpoint, phase, index, group, url, reconfigure_url, no_flush):
    """Sends ROUNDS rounds to `url`; with reconfigure_url, the second half
    goes to that agent on the same connection (same session); with no_flush
    it disconnects right after its last action, its data still queued."""
    c = wire.Conn(pb, endpoint)
    hello(pb, c, group)
    c.send(session_config=pb.SessionConfig(agent_url=url, flush_interval_ms=200))
    for rnd in range(ROUNDS):
        if reconfigure_url is not None and rnd == ROUNDS // 2:
            c.flush()
            c.send(session_config=pb.SessionConfig(agent_url=reconfigure_url))
        send_round(pb, c, phase, index, rnd, group)
    if no_flush:
        c.close()
        return 0
    status = c.flush(timeout_ms=5000).status
    c.close()
    return 0 if status in (pb.FlushReply.STATUS_OK, pb.FlushReply.STATUS_TIMEOUT) else 1


# ---- the driver ----------------------------------------------------------------------------


def start_sidecar(binary, endpoint, default_url, tmpdir):
    """conformance.py's: `sidecar run` with DD_TRACE_AGENT_URL set."""
    return conformance.start_sidecar(binary, endpoint, types.SimpleNamespace(url=default_url), tmpdir)


def stats(pb, endpoint):
    c = wire.Conn(pb, endpoint)
    try:
        return c.stats()
    finally:
        c.close()


def agent(st, url):
    found = [a for a in st["agents"] if a["agent"] == url]
    return found[0] if found else None


def run_clients(args, endpoint, phase, urls, reconfigure=None, no_flush=()):
    """CLIENTS processes at once; client i goes to urls[i % 2]; the clients
    in no_flush disconnect without a Flush."""
    procs = []
    for i in range(CLIENTS):
        group = "ab"[i % 2]
        cmd = [sys.executable, os.path.abspath(__file__), "--client", "--endpoint", endpoint,
               "--proto-cache", args.proto_cache, "--phase", str(phase), "--index", str(i),
               "--group", group, "--url", urls[i % 2]]
        if reconfigure is not None and i == reconfigure[0]:
            cmd += ["--reconfigure-url", reconfigure[1]]
        if i in no_flush:
            cmd += ["--no-flush"]
        procs.append(subprocess.Popen(cmd))
    failed = sum(p.wait(timeout=300) != 0 for p in procs)
    expect(failed == 0, "phase %d: %d client processes failed" % (phase, failed))


def received(intake):
    """(trace ids with multiplicity, evaluation counts by flag, exposures by
    flag, EVP contexts) of the accepted requests."""
    records = intake.requests()
    ids = []
    for r in traces.trace_records(records, accepted_only=True):
        for trace in traces.decode_traces(Intake.body(r)):
            ids.append(trace[0]["trace_id"])
    evals, exposures, contexts = {}, {}, set()
    for r in records:
        if r["answered"] not in (200, 202):
            continue
        if r["path"] == EVALS:
            body = json.loads(Intake.body(r))
            contexts.add(body["context"]["service"])
            for ev in body["flagEvaluations"]:
                evals[ev["flag"]["key"]] = evals.get(ev["flag"]["key"], 0) + ev["evaluation_count"]
        elif r["path"] == EXPOSURES:
            body = json.loads(Intake.body(r))
            contexts.add(body["context"]["service"])
            for ex in body["exposures"]:
                exposures[ex["flag"]["key"]] = exposures.get(ex["flag"]["key"], 0) + 1
    return ids, evals, exposures, contexts


def exposures_of(sessions, rounds):
    """How many exposures `sessions` sessions send over `rounds`."""
    return sessions * sum(1 for r in rounds if r % EXPOSURES_EVERY == 0) * EXPOSURES_PER_BATCH


def expected_ids(phase, group, rounds=range(ROUNDS), skip_index=None):
    out = set()
    for i in range(CLIENTS):
        if "ab"[i % 2] == group and i != skip_index:
            for rnd in rounds:
                out.update(trace_ids(phase, i, rnd))
    return out


def wait_settled(pb, endpoint, url, timeout=30):
    """Until the agent holds nothing: submitted = delivered + drops."""
    deadline = time.monotonic() + timeout
    while True:
        a = agent(stats(pb, endpoint), url)
        if a is not None and all(a[d]["buffered"]["payloads"] == 0
                                 for d in ("traces", "flagevaluations", "exposures")):
            return a
        if time.monotonic() > deadline:
            expect(False, "agent %s still holds data after %d s" % (url, timeout))
            return a
        time.sleep(0.2)


def wait_received(intake, traces, evals, exposures, timeout=30):
    """Until the intake has accepted at least this many traces, evaluations
    and exposures: a session that left without a Flush may still have data
    in the sidecar's socket buffer or in an aggregator when the agent's
    queues look empty. The exact checks come after, once settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids, ev, ex, _ = received(intake)
        if len(ids) >= traces and sum(ev.values()) >= evals and sum(ex.values()) >= exposures:
            return
        time.sleep(0.2)


def conservation(a, what):
    for d in ("traces", "flagevaluations", "exposures"):
        s = a[d]
        dropped = sum(v["payloads"] for v in s["drops"].values())
        expect(s["submitted"]["payloads"] ==
               s["delivered"]["payloads"] + dropped + s["buffered"]["payloads"],
               "%s %s: submitted = delivered + dropped + buffered" % (what, d))


def segment_text(endpoint, version, agent_url):
    """The shared-state segment of an agent (docs/shared-state.md: named from
    the endpoint, a space and the agent's address), as text; "" if absent."""
    h = 14695981039346656037
    for byte in ("%s %s" % (endpoint, agent_url)).encode():
        h = ((h ^ byte) * 1099511628211) & (2 ** 64 - 1)
    name = "sidecar-%s-%016x" % (version, h)
    for path in ("/dev/shm/" + name, os.path.join(tempfile.gettempdir(), name + ".shm")):
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            pass
    return ""


def phase_both_up(args, endpoint, a, b):
    # The last two clients (one per agent) leave without a Flush.
    run_clients(args, endpoint, 1, [a.url, b.url], no_flush=(CLIENTS - 2, CLIENTS - 1))
    per_group = CLIENTS // 2
    for intake in (a, b):
        wait_received(intake, per_group * ROUNDS * TRACES_PER_ROUND,
                      per_group * ROUNDS * EVALS_PER_ROUND, exposures_of(per_group, range(ROUNDS)))
        wait_settled(args.pb, endpoint, intake.url)
    # Each agent's /info is published in its own segment.
    version = stats(args.pb, endpoint)["version"]
    for intake in (a, b):
        text = segment_text(endpoint, version, intake.url)
        expect('"endpoints"' in text, "no /info in the segment of %s" % intake.url)
    for intake, group, other in ((a, "a", "b"), (b, "b", "a")):
        ids, evals, exposures, contexts = received(intake)
        want = expected_ids(1, group)
        expect(len(ids) == len(set(ids)), "phase 1: duplicates at %s" % group)
        expect(set(ids) == want, "phase 1: agent %s got %d of %d traces, %d foreign" %
               (group, len(set(ids) & want), len(want), len(set(ids) - want)))
        expect(evals == {"f-%s-1" % group: per_group * ROUNDS * EVALS_PER_ROUND},
               "phase 1: agent %s evaluations %r" % (group, evals))
        n_exp = exposures_of(per_group, range(ROUNDS))
        expect(exposures == {"x-%s-1" % group: n_exp},
               "phase 1: agent %s exposures %r" % (group, exposures))
        expect(contexts == {"svc-" + group}, "phase 1: agent %s contexts %r" % (group, contexts))
        st = agent(stats(args.pb, endpoint), intake.url)
        expect(st["traces"]["delivered"]["traces"] == len(want),
               "phase 1: stats of %s count %d delivered traces" %
               (group, st["traces"]["delivered"]["traces"]))
        drops = sum(v["payloads"] for d in ("traces", "flagevaluations", "exposures")
                    for v in st[d]["drops"].values())
        expect(drops == 0, "phase 1: %d drops at %s" % (drops, group))
        conservation(st, "phase 1 " + group)


def phase_b_down(args, endpoint, a, b_url):
    a.reset()
    before = agent(stats(args.pb, endpoint), b_url)
    run_clients(args, endpoint, 2, [a.url, b_url])
    st_a = wait_settled(args.pb, endpoint, a.url)
    st_b = wait_settled(args.pb, endpoint, b_url)
    ids, evals, exposures, _ = received(a)
    want = expected_ids(2, "a")
    expect(set(ids) == want and len(ids) == len(want),
           "phase 2: agent A got %d of %d traces (%d in all)" % (len(set(ids) & want), len(want),
                                                                 len(ids)))
    expect(evals == {"f-a-2": CLIENTS // 2 * ROUNDS * EVALS_PER_ROUND},
           "phase 2: agent A evaluations %r" % evals)
    expect(exposures == {"x-a-2": exposures_of(CLIENTS // 2, range(ROUNDS))},
           "phase 2: agent A exposures %r" % exposures)
    drops_a = sum(v["payloads"] for d in ("traces", "flagevaluations", "exposures")
                  for v in st_a[d]["drops"].values())
    expect(drops_a == 0, "phase 2: agent A dropped %d" % drops_a)
    lost = (st_b["traces"]["drops"]["retries_exhausted"]["traces"] -
            before["traces"]["drops"]["retries_exhausted"]["traces"])
    expect(lost == len(expected_ids(2, "b")),
           "phase 2: agent B counts %d traces lost, %d were sent" % (lost, len(expected_ids(2, "b"))))
    for d in ("traces", "flagevaluations", "exposures"):
        expect(st_b[d]["delivered"]["payloads"] == before[d]["delivered"]["payloads"],
               "phase 2: agent B delivered %s while down" % d)
    for d in ("flagevaluations", "exposures"):
        now = sum(v["payloads"] for v in st_b[d]["drops"].values())
        then = sum(v["payloads"] for v in before[d]["drops"].values())
        expect(now > then, "phase 2: agent B counts no %s dropped" % d)
    conservation(st_b, "phase 2 B")
    total = stats(args.pb, endpoint)["delivery"]
    expect(total["traces"]["drops"]["retries_exhausted"]["traces"] >= lost,
           "phase 2: the totals carry B's drops")


def phase_reconfigure(args, endpoint, a, b):
    a.reset()
    mover = 2  # a client of group "a"
    run_clients(args, endpoint, 3, [a.url, b.url], reconfigure=(mover, b.url))
    for intake in (a, b):
        wait_settled(args.pb, endpoint, intake.url)
    first, second = range(ROUNDS // 2), range(ROUNDS // 2, ROUNDS)
    ids_a, evals_a, exposures_a, _ = received(a)
    ids_b, evals_b, exposures_b, _ = received(b)
    want_a = expected_ids(3, "a", skip_index=mover)
    want_b = expected_ids(3, "b")
    for rnd in first:
        want_a.update(trace_ids(3, mover, rnd))
    for rnd in second:
        want_b.update(trace_ids(3, mover, rnd))
    expect(sorted(ids_a) == sorted(want_a),
           "phase 3: agent A got %d of %d traces, %d foreign, %d in all" %
           (len(set(ids_a) & want_a), len(want_a), len(set(ids_a) - want_a), len(ids_a)))
    expect(sorted(ids_b) == sorted(want_b),
           "phase 3: agent B got %d of %d traces, %d foreign, %d in all" %
           (len(set(ids_b) & want_b), len(want_b), len(set(ids_b) - want_b), len(ids_b)))
    # The mover's evaluations and exposures follow it too (its flag keys
    # are its group's, "f-a-3" and "x-a-3").
    per_group = CLIENTS // 2
    want = {"f-a-3": ((per_group - 1) * ROUNDS + len(first)) * EVALS_PER_ROUND}
    expect(evals_a == want, "phase 3: agent A evaluations %r, want %r" % (evals_a, want))
    want = {"f-b-3": per_group * ROUNDS * EVALS_PER_ROUND, "f-a-3": len(second) * EVALS_PER_ROUND}
    expect(evals_b == want, "phase 3: agent B evaluations %r, want %r" % (evals_b, want))
    want = {"x-a-3": exposures_of(per_group - 1, range(ROUNDS)) + exposures_of(1, first)}
    expect(exposures_a == want, "phase 3: agent A exposures %r, want %r" % (exposures_a, want))
    want = {"x-b-3": exposures_of(per_group, range(ROUNDS)), "x-a-3": exposures_of(1, second)}
    expect(exposures_b == want, "phase 3: agent B exposures %r, want %r" % (exposures_b, want))


def phase_flush_independent(args, endpoint, a, b):
    """A Flush waits for the agents its connection used, never for another's:
    with B stalled and a B session's Flush held, an A session's Flush is
    answered OK. The B session then disconnects with its exposures still
    queued or in flight: once B answers again, they are at B, each exactly
    once (retried; a stalled request is not an accepted one)."""
    pb = args.pb
    b.behavior(path_prefix=EXPOSURES, mode="stall", stall_ms=4000, count=-1)
    cb = wire.Conn(pb, endpoint)
    hello(pb, cb, "b")
    cb.send(session_config=pb.SessionConfig(agent_url=b.url))
    now = int(time.time() * 1000)
    for i in range(6):  # more batches than requests in flight (2)
        cb.send(exposure_batch=pb.ExposureBatch(exposures=[
            pb.Exposure(timestamp_ms=now, flag_key="stall-%d" % i, subject_id="u")]))
    held = cb.flush(timeout_ms=300).status
    expect(held == pb.FlushReply.STATUS_TIMEOUT, "phase 4: B's Flush was not held (%d)" % held)
    ca = wire.Conn(pb, endpoint)
    hello(pb, ca, "a")
    ca.send(session_config=pb.SessionConfig(agent_url=a.url))
    ids = trace_ids(4, 0, 0)
    ca.send(trace_payload=pb.TracePayload(msgpack=payload(ids, "a"), trace_count=len(ids)))
    status = ca.flush(timeout_ms=2000).status
    expect(status == pb.FlushReply.STATUS_OK, "phase 4: A's Flush held by B's stall (%d)" % status)
    ca.close()
    cb.close()
    # B answers again well within the retries (5 attempts, 3 s each).
    b.behavior(path_prefix=EXPOSURES, mode="ok", count=-1)
    before = agent(stats(pb, endpoint), b.url)
    deadline = time.monotonic() + 30
    while (sum(v for k, v in received(b)[2].items() if k.startswith("stall-")) < 6
           and time.monotonic() < deadline):
        time.sleep(0.2)
    st = wait_settled(pb, endpoint, b.url)
    _, _, exposures, _ = received(b)
    stalled = {k: v for k, v in exposures.items() if k.startswith("stall-")}
    expect(stalled == {"stall-%d" % i: 1 for i in range(6)},
           "phase 4: the disconnected B session's exposures at B: %r" % stalled)
    _, _, exposures, _ = received(a)
    expect(not any(k.startswith("stall-") for k in exposures),
           "phase 4: B's exposures at A: %r" % exposures)
    dropped = (sum(v["payloads"] for v in st["exposures"]["drops"].values()) -
               sum(v["payloads"] for v in before["exposures"]["drops"].values()))
    expect(dropped == 0, "phase 4: B dropped %d exposure batches" % dropped)


def telemetry_items(intake):
    """(request types, dependency names, runtime ids) of the telemetry the
    intake accepted, message batches unpacked."""
    types, deps, runtime_ids = [], [], set()
    for r in intake.requests():
        if r["path"] != TELEMETRY or r["answered"] not in (200, 202):
            continue
        body = json.loads(Intake.body(r))
        runtime_ids.add(body["runtime_id"])
        items = body["payload"] if body["request_type"] == "message-batch" else [body]
        for item in items:
            types.append(item["request_type"])
            if item["request_type"] == "app-dependencies-loaded":
                deps += [d["name"] for d in item["payload"]["dependencies"]]
    return types, deps, runtime_ids


def phase_telemetry(args, endpoint, a, b):
    pb = args.pb
    a.reset()
    b.reset()
    conns = []
    for intake, dep in ((a, "dep-a"), (b, "dep-b")):
        c = wire.Conn(pb, endpoint)
        hello(pb, c, "same")  # the same application for both
        c.send(session_config=pb.SessionConfig(agent_url=intake.url))
        c.send(telemetry=pb.Telemetry(event=pb.Telemetry.EVENT_APP_STARTED))
        c.send(telemetry=pb.Telemetry(event=pb.Telemetry.EVENT_DEPENDENCIES_LOADED,
                                      dependencies=[pb.TelemetryDependency(name=dep, version="1")]))
        conns.append(c)
    for c in conns:
        c.flush(timeout_ms=2000)
    deadline = time.monotonic() + 30
    while (time.monotonic() < deadline and
           not all(telemetry_items(i)[1] for i in (a, b))):
        time.sleep(0.2)
    seen = {}
    for intake, group in ((a, "a"), (b, "b")):
        types, deps, runtime_ids = telemetry_items(intake)
        seen[group] = runtime_ids
        expect(types.count("app-started") == 1,
               "phase 5: agent %s got %d app-started" % (group, types.count("app-started")))
        expect(deps == ["dep-" + group], "phase 5: agent %s got the dependencies %r" % (group, deps))
        expect(len(runtime_ids) == 1, "phase 5: agent %s runtime ids %r" % (group, runtime_ids))
    expect(not (seen["a"] & seen["b"]), "phase 5: one runtime id at both agents %r" % seen)
    for c in conns:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidecar")
    ap.add_argument("--protoc")
    ap.add_argument("--proto-dir")
    ap.add_argument("--client", action="store_true")
    ap.add_argument("--endpoint")
    ap.add_argument("--proto-cache")
    ap.add_argument("--phase", type=int)
    ap.add_argument("--index", type=int)
    ap.add_argument("--group")
    ap.add_argument("--url")
    ap.add_argument("--reconfigure-url")
    ap.add_argument("--no-flush", action="store_true")
    args = ap.parse_args()
    if args.client:
        sys.path.insert(0, args.proto_cache)
        import sidecar_pb2 as pb  # noqa: E402  (generated by the driver)
        return client(pb, args.endpoint, args.phase, args.index, args.group, args.url,
                      args.reconfigure_url, args.no_flush)

    with tempfile.TemporaryDirectory(prefix="sidecar-two-agents-") as tmpdir:
        args.pb = wire.load_classes(args.protoc, args.proto_dir, tmpdir)
        args.proto_cache = tmpdir
        endpoint = "@sidecar-two-agents-%d" % os.getpid()
        a = Intake.start(tmpdir)
        b = Intake.start(tmpdir)
        b_port = b.port
        # The default agent listens nowhere: data routed there by mistake
        # would show up as drops at the default agent and missing at A/B.
        sidecar = start_sidecar(args.sidecar, endpoint, "http://127.0.0.1:9", tmpdir)
        try:
            phase_both_up(args, endpoint, a, b)
            b_url = b.url
            b.stop()
            phase_b_down(args, endpoint, a, b_url)
            b = Intake.start(tmpdir, port=b_port)
            phase_reconfigure(args, endpoint, a, b)
            phase_flush_independent(args, endpoint, a, b)
            phase_telemetry(args, endpoint, a, b)
            st = stats(args.pb, endpoint)
            default = [x for x in st["agents"] if x["default"]][0]
            expect(default["traces"]["submitted"]["payloads"] == 0,
                   "the default agent received %d payloads" %
                   default["traces"]["submitted"]["payloads"])
            expect(len(st["agents"]) == 3, "agents listed: %r" % [x["agent"] for x in st["agents"]])
            print("stats: " + json.dumps({x["agent"]: {"delivered": x["traces"]["delivered"],
                                                        "drops": x["traces"]["drops"]["retries_exhausted"]}
                                          for x in st["agents"]}))
        finally:
            sidecar.send_signal(signal.SIGTERM)
            rc = sidecar.wait(timeout=30)
            a.stop()
            b.stop()
            expect(rc == 0, "sidecar exited with %d" % rc)
            log = open(os.path.join(tmpdir, "sidecar.log"), errors="replace").read()
            for bad in ("AddressSanitizer", "runtime error", "ThreadSanitizer", "LeakSanitizer"):
                expect(bad not in log, "sanitizer report in the sidecar's log")
            if errors:
                print("---- sidecar log (tail) ----\n" + log[-4000:])
    print("FAIL (%d)" % len(errors) if errors else "PASS")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
