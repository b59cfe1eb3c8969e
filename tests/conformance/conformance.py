#!/usr/bin/env python3
"""Conformance of a real sidecar to proto/sidecar.proto, with Google's protobuf.

The fifth drift guard (docs/wire.md): an independent encoder and decoder
checking behaviour, not bytes. It generates the message classes with
`protoc --python_out` from proto/, starts the local intake (tests/intake) as
the agent and the real `sidecar run` binary, and checks every message and
field of the proto against what the proto's comments and docs/ promise: each
field's effect seen in the sidecar's stats or at the intake, defaults,
absent vs empty, unknown and duplicated fields, limits and one past them,
and every ErrorReply code. Last, every descriptor of the sidecar (other than
stdin/stdout/stderr) must be close-on-exec.

Files: wire.py (the client: generated classes, framing, raw protobuf pieces),
harness.py (registry, assertions, the context of a case), cases_*.py (the
cases, by message), coverage.py (after a full run: every field and enum
value of the proto was in an action the sidecar took, or in a reply; a
field added without a case fails the suite), fds.py (the same descriptor check for a thread-mode
master, thread_master.c).

usage: conformance.py --sidecar BIN --protoc PROTOC --proto-dir DIR [-k NAME]
Exits 0 when every case passes, 1 otherwise (each failure is printed).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import traceback

from harness import CASES, Ctx, eq
from intake_client import Intake
import coverage
import wire

# The cases register themselves, in this order.
import cases_hello  # noqa: E402,F401
import cases_session_config  # noqa: E402,F401
import cases_data  # noqa: E402,F401
import cases_requests  # noqa: E402,F401
import cases_protocol  # noqa: E402,F401
import cases_acks  # noqa: E402,F401
import cases_metrics  # noqa: E402,F401
import cases_telemetry  # noqa: E402,F401


# ---- runner --------------------------------------------------------------------------------


def start_sidecar(binary, endpoint, intake, tmpdir):
    env = dict(os.environ, DD_TRACE_AGENT_URL=intake.url,
               # Nobody listens there: metrics are counted as unsent.
               DD_DOGSTATSD_URL="unix://" + os.path.join(tmpdir, "dsd.socket"),
               # An application's app-closing (which carries its telemetry
               # metrics) half a second after its last connection, not 10 s.
               DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY="500")
    env.pop("DD_AGENT_HOST", None)
    log = open(os.path.join(tmpdir, "sidecar.log"), "wb")
    # A frame left incomplete is closed after 1.5 s, not 10 (error_frame_timeout).
    p = subprocess.Popen([binary, "run", "--endpoint", endpoint, "--log-level", "warn",
                          "--frame-timeout", "1500"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            wire.Conn(None, endpoint).close()
            return p
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("sidecar did not start")
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sidecar", required=True)
    ap.add_argument("--protoc", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("-k", help="run only cases whose name contains this")
    args = ap.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sidecar-conformance-") as tmpdir:
        pb = wire.load_classes(args.protoc, args.proto_dir, tmpdir)
        endpoint = "@sidecar-conformance-%d" % os.getpid()
        with Intake.start(tmpdir) as intake:
            sidecar = start_sidecar(args.sidecar, endpoint, intake, tmpdir)
            try:
                ctx = Ctx(pb, sidecar, endpoint, intake)
                ctx.tmpdir = tmpdir
                for fn in CASES:
                    if args.k and args.k not in fn.__name__:
                        continue
                    intake.reset()
                    t0 = time.monotonic()
                    try:
                        fn(ctx)
                        print("PASS %-45s %.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
                    except Exception:  # noqa: BLE001 (every failure is reported)
                        failures += 1
                        print("FAIL %s" % fn.__name__, flush=True)
                        traceback.print_exc()
                    if sidecar.poll() is not None:
                        print("FAIL the sidecar exited with %s" % sidecar.returncode)
                        failures += 1
                        break
                if not args.k and not failures:
                    # Every field and enum value of the proto, in an action
                    # the sidecar took or in what it sent (coverage.py).
                    uncovered = coverage.missing(pb)
                    if uncovered:
                        print("FAIL no case exercises: %s" % ", ".join(uncovered))
                        failures += 1
                    else:
                        print("PASS every field and enum value of the proto exercised")
            finally:
                if sidecar.poll() is None:
                    sidecar.terminate()
                    sidecar.wait(10)
                with open(os.path.join(tmpdir, "sidecar.log"), errors="replace") as f:
                    log = f.read()
                # Sanitizer builds: a report in the sidecar's log fails the run.
                for marker in ("runtime error", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                               "WARNING: ThreadSanitizer"):
                    if marker in log:
                        print("FAIL the sidecar's log has %r" % marker)
                        failures += 1
                if failures:
                    print("---- sidecar log ----\n" + log[-6000:])
                    print("---- intake log ----\n" + intake.log_text()[-3000:])
            eq(sidecar.returncode, 0, "sidecar exit status after SIGTERM")
    print("%d case(s) failed" % failures if failures else "all cases passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
