#!/usr/bin/python3
"""Runs an end-to-end test of delivery, metrics or telemetry
(test_delivery_e2e, test_metrics_e2e, test_telemetry_e2e) against a local
intake started here, and runs the checks it asks for
(tests/integration/e2e.h): how those tests run under Wine, where the
intake and the python checkers stay on the build host.

    e2e_driver.py [--emulator WINE] --binary TEST [--run NAME]...

Each --run is one run of the test with a fresh intake (for
test_metrics_e2e: udp, self); without --run the test runs once with no
argument. Exit 0 when every run exits 0, asked for at least one check, and
every check passes."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
INTAKE_DIR = os.path.join(HERE, "..", "intake")
sys.path.insert(0, INTAKE_DIR)
from intake_client import Intake  # noqa: E402


def one_run(emulator, binary, run):
    tmp = tempfile.mkdtemp(prefix="sidecar-e2e-driver-")
    records = os.path.join(tmp, "records.jsonl")
    intake = Intake.start(tmp, record=records, dogstatsd=True)
    try:
        env = dict(os.environ, SIDECAR_E2E_INTAKE="%d:%d" % (intake.port, intake.dogstatsd_port))
        cmd = emulator + [binary] + ([run] if run else [])
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           errors="replace", timeout=900)
        sys.stdout.write(p.stdout)
    finally:
        intake.stop()
    checks = [line.strip().split()[1:] for line in p.stdout.splitlines() if line.startswith("E2E_CHECK ")]
    ok = p.returncode == 0 and len(checks) > 0
    if p.returncode != 0:
        print("e2e_driver: %s exited with %d" % (run or "the test", p.returncode))
    for script, *args in checks:
        r = subprocess.run([sys.executable, os.path.join(INTAKE_DIR, script), records] + args)
        ok = ok and r.returncode == 0
    shutil.rmtree(tmp, ignore_errors=True)
    print("e2e_driver: %s %s" % (run or os.path.basename(binary), "PASS" if ok else "FAIL"))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", default="", help="e.g. the Wine command (CMake list: ';'-separated)")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--run", action="append", default=[])
    a = ap.parse_args()
    emulator = [w for w in a.emulator.split(";") if w]
    results = [one_run(emulator, a.binary, run) for run in (a.run or [None])]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
