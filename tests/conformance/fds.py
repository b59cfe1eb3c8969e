#!/usr/bin/env python3
"""Descriptor check of a thread-mode master (docs/transport.md: every
descriptor is close-on-exec).

Starts the local intake and thread_master (a process running the listener
thread, as PHP's master does), lets it deliver a trace, flag evaluations and
an exposure, then reads /proc/<pid>/fdinfo: every descriptor but 0-2 must be
close-on-exec, or a worker that execs would inherit it. The sidecar process
itself is checked at the end of conformance.py.

usage: fds.py --host BIN
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "intake"))
sys.path.insert(0, HERE)

from harness import EVALS, EXPOSURES, TRACES, non_cloexec_fds  # noqa: E402
from intake_client import Intake  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sidecar-fds-") as tmpdir, Intake.start(tmpdir) as intake:
        env = dict(os.environ, DD_TRACE_AGENT_URL=intake.url)
        host = subprocess.Popen([args.host], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                close_fds=True, text=True)
        try:
            line = host.stdout.readline().strip()
            if line != "delivered 0":
                print("FAIL the master did not deliver: %r" % line)
                return 1
            for path in (TRACES, EVALS, EXPOSURES):
                intake.wait(path, count=1, timeout=10)
            fds = sorted(os.listdir("/proc/%d/fd" % host.pid), key=int)
            bad = non_cloexec_fds(host.pid)
            print("thread-mode master pid %d: %d descriptors, without close-on-exec: %s"
                  % (host.pid, len(fds), bad or "none"))
        finally:
            host.stdin.write("\n")
            host.stdin.close()
            host.wait(30)
        if host.returncode != 0:
            print("FAIL the master exited with %d" % host.returncode)
            return 1
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
