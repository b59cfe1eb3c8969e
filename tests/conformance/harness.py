"""Shared pieces of the conformance suite (tests/conformance/conformance.py):
the case registry, assertions, the context a case gets (the sidecar, the
intake, an independent client), and checks used by several cases."""

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
sys.path.insert(0, HERE)

import msgpack  # noqa: E402  (Debian's python3-msgpack)
from intake_client import Intake  # noqa: E402
import wire  # noqa: E402

TRACES = "/v0.4/traces"
EVALS = "/evp_proxy/v2/api/v2/flagevaluations"
EXPOSURES = "/evp_proxy/v2/api/v2/exposures"
MAX_FRAME = 4 * 1024 * 1024
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


class Ctx:
    """The sidecar under test, its intake and helpers shared by the cases."""

    def __init__(self, pb, sidecar, endpoint, intake):
        self.pb = pb
        self.sidecar = sidecar
        self.endpoint = endpoint
        self.intake = intake
        self.trace_id = 1000

    def conn(self, hello=True, **hello_fields):
        c = wire.Conn(self.pb, self.endpoint)
        if hello:
            fields = dict(language="python", language_version="3", tracer_version="conformance")
            fields.update(hello_fields)
            c.send(hello=self.pb.Hello(protocol_version=1, pid=os.getpid(), **fields))
        return c

    def stats(self):
        c = self.conn(hello=False)
        try:
            return c.stats()
        finally:
            c.close()

    def traces(self, n=1):
        """A msgpack v0.4 payload of n traces with fresh trace ids; returns (bytes, ids)."""
        ids = []
        traces = []
        for _ in range(n):
            self.trace_id += 1
            ids.append(self.trace_id)
            traces.append([{"trace_id": self.trace_id, "span_id": 1, "name": "conformance", "service": "svc"}])
        return msgpack.packb(traces), ids

    def drained(self, c, timeout=10):
        """Before counting deliveries: what earlier cases left (a batch sent
        without deliver_now, a request still in flight, evaluations in an
        aggregator) is sent now through `c` (Flush deliver_now) and waited for
        until no destination holds anything."""
        c.flush(deliver_now=True, timeout_ms=timeout * 1000)
        deadline = time.monotonic() + timeout
        while any(d["buffered"]["payloads"] != 0 for name, d in self.stats()["delivery"].items()
                  if isinstance(d, dict) and "buffered" in d):
            check(time.monotonic() < deadline, "earlier cases' payloads still buffered after %d s" % timeout)
            time.sleep(0.02)

    def delivered(self, path, count=1, timeout=10):
        return self.intake.wait(path, count=count, timeout=timeout)

    def bodies(self, path):
        return [json.loads(Intake.body(r)) for r in self.intake.requests(path) if r["answered"] in (200, 202)]

    def trace_ids_at_intake(self):
        ids = []
        for r in self.intake.requests(TRACES):
            for trace in msgpack.unpackb(Intake.body(r), raw=False):
                ids.append(trace[0]["trace_id"])
        return ids

    def events(self):
        return [e for b in self.bodies(EVALS) for e in b["flagEvaluations"]]

    def exposures(self):
        return [e for b in self.bodies(EXPOSURES) for e in b["exposures"]]


def expect_invalid(c, seq, kind, ctx, before, message_part=None):
    """The reply to `seq` is ErrorReply CODE_INVALID_ACTION, the counters
    moved, and the connection is still served."""
    env = c.recv()
    eq(env.WhichOneof("action"), "error_reply", "reply to an invalid action")
    eq(env.seq, seq, "ErrorReply.seq")
    eq(env.error_reply.code, ctx.pb.ErrorReply.CODE_INVALID_ACTION, "ErrorReply.code")
    if message_part is not None:
        check(message_part in env.error_reply.message, "message %r names %r" % (env.error_reply.message, message_part))
    after = ctx.stats()
    eq(after["invalid"][kind], before["invalid"][kind] + 1, "invalid.%s" % kind)
    eq(after["invalid_actions"], before["invalid_actions"] + 1, "invalid_actions")
    c.ping()  # still open
    return env.error_reply


def send_invalid(ctx, c, kind, part, **action):
    """Sends one action that must be refused as invalid (see expect_invalid)."""
    before = ctx.stats()
    seq = c.send(**action)
    return expect_invalid(c, seq, kind, ctx, before, part)


def evaluation(pb, flag="f", count=1, **fields):
    return pb.FlagEvaluation(flag_key=flag, evaluation_count=count, first_evaluation_ms=1000,
                             last_evaluation_ms=2000, **fields)


def expect_protocol_error(ctx, bodies, code, counter):
    """Each body on a fresh connection: one ErrorReply with `code`, then the
    close; `counter` in the stats grows by one per body."""
    before = ctx.stats()[counter]
    for body in bodies:
        c = ctx.conn(hello=False)
        c.send_raw(body)
        frames = c.expect_closed()
        eq([(f.seq, f.error_reply.code) for f in frames], [(0, code)], "ErrorReply (seq 0) before the close")
    eq(ctx.stats()[counter], before + len(bodies), counter)


def non_cloexec_fds(pid):
    bad = []
    for fd in sorted(os.listdir("/proc/%d/fdinfo" % pid), key=int):
        if int(fd) <= 2:
            continue
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if not flags & 0o2000000:
            bad.append("%s -> %s" % (fd, target))
    return bad
