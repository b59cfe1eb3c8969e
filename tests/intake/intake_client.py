#!/usr/bin/python3
"""Start, drive and query the local intake (tests/intake/intake.py).

Importable:

    from intake_client import Intake
    with Intake.start(tmpdir, unix_path=None) as intake:
        ... intake.url, intake.unix_url, intake.port
        intake.behavior(path_prefix="/v0.4/traces", mode="status", status=500, count=2)
        intake.wait("/v0.4/traces", count=1, timeout=10)
        records = intake.requests("/v0.4/traces")
        body = Intake.body(records[0])

CLI (against an intake already running on 127.0.0.1:P):

    intake_client.py --port P requests [--path X]
    intake_client.py --port P behavior '{"mode":"status","status":500,"count":1}'
    intake_client.py --port P reset
    intake_client.py --port P health
    intake_client.py --port P wait --path X --count N --timeout S   # exit 1 on timeout
"""

import argparse
import base64
import http.client
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

INTAKE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "intake.py")
CONTROL_TIMEOUT_SECONDS = 10
_instance_numbers = itertools.count(1)


class IntakeError(Exception):
    pass


class ControlClient:
    """The control API of an intake on 127.0.0.1:port (no process ownership)."""

    def __init__(self, port):
        self.port = port
        self.url = "http://127.0.0.1:%d" % port

    def call(self, method, path, payload=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=CONTROL_TIMEOUT_SECONDS)
        try:
            body = None if payload is None else json.dumps(payload).encode()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise IntakeError("%s %s -> %d %s" % (method, path, response.status, data.decode(errors="replace")))
        return data

    def health(self):
        return self.call("GET", "/_intake/health") == b"ok"

    def requests(self, path=None):
        """Records, oldest first; `path` keeps those whose path starts with it."""
        query = "" if path is None else "?" + urllib.parse.urlencode({"path": path})
        return json.loads(self.call("GET", "/_intake/requests" + query))

    def reset(self):
        self.call("POST", "/_intake/reset")

    def behavior(self, **spec):
        """Queues a behaviour; keys as in docs/intake.md. Returns it as stored."""
        return json.loads(self.call("POST", "/_intake/behavior", spec))

    def behaviors(self):
        return json.loads(self.call("GET", "/_intake/behavior"))

    def wait(self, path, count, timeout):
        """Polls until at least `count` records match `path`; returns them.

        Raises TimeoutError with what did arrive when the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.requests(path)
            if len(records) >= count:
                return records
            if time.monotonic() >= deadline:
                raise TimeoutError("%d of %d requests on %s after %.1fs" % (len(records), count, path, timeout))
            time.sleep(0.05)

    @staticmethod
    def body(record):
        """The raw request body of a record."""
        return base64.b64decode(record["body_b64"])


class Intake(ControlClient):
    """An intake process owned by the caller: start() it, stop() it (or use `with`)."""

    def __init__(self, process, port, unix_path, log_path, dogstatsd_port=None):
        super().__init__(port)
        self.dogstatsd_port = dogstatsd_port  # UDP DogStatsD receiver, if asked
        self.process = process
        self.unix_path = unix_path
        self.unix_url = "unix://" + unix_path if unix_path else None
        self.log_path = log_path

    @classmethod
    def start(cls, tmpdir, unix_path=None, record=None, port=0, timeout=10, dogstatsd=False):
        """Spawns intake.py and returns once it is listening (with `dogstatsd`,
        also a UDP DogStatsD receiver on .dogstatsd_port).

        Its stderr goes to `<tmpdir>/intake-<n>.log` (see .log_path / .log_text())."""
        number = "%d-%d" % (os.getpid(), next(_instance_numbers))
        port_file = os.path.join(tmpdir, "intake-%s.port" % number)
        log_path = os.path.join(tmpdir, "intake-%s.log" % number)
        command = [sys.executable, INTAKE_SCRIPT, "--port-file", port_file, "--port", str(port)]
        if unix_path:
            command += ["--unix", unix_path]
        if record:
            command += ["--record", record]
        dsd_file = os.path.join(tmpdir, "intake-%s.dsd-port" % number)
        if dogstatsd:
            command += ["--dogstatsd-port-file", dsd_file]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if process.poll() is not None or time.monotonic() >= deadline:
                _terminate(process)
                with open(log_path, encoding="utf-8", errors="replace") as f:
                    raise IntakeError("intake did not start (exit %s):\n%s" % (process.returncode, f.read()))
            time.sleep(0.02)
        with open(port_file, encoding="ascii") as f:
            bound_port = int(f.read())
        dogstatsd_port = None
        if dogstatsd:  # written before the port file
            with open(dsd_file, encoding="ascii") as f:
                dogstatsd_port = int(f.read())
        return cls(process, bound_port, unix_path, log_path, dogstatsd_port)

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout=10):
        """SIGTERM, then wait (SIGKILL after `timeout`); returns the exit status."""
        return _terminate(self.process, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _terminate(process, timeout=10):
    """Stops the child and always reaps it, so no zombie is left behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description="Query and steer a running local intake.")
    parser.add_argument("--port", type=int, required=True, help="the intake's TCP port")
    commands = parser.add_subparsers(dest="command", required=True)
    requests_cmd = commands.add_parser("requests", help="print the records as a JSON array")
    requests_cmd.add_argument("--path", help="only records whose path starts with this")
    behavior_cmd = commands.add_parser("behavior", help="queue a behaviour given as JSON")
    behavior_cmd.add_argument("spec", help='e.g. \'{"mode":"status","status":500,"count":1}\'')
    commands.add_parser("reset", help="clear records and behaviours")
    commands.add_parser("health", help="exit 0 when the intake answers")
    wait_cmd = commands.add_parser("wait", help="wait for at least COUNT records on PATH")
    wait_cmd.add_argument("--path", required=True)
    wait_cmd.add_argument("--count", type=int, required=True)
    wait_cmd.add_argument("--timeout", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)

    client = ControlClient(args.port)
    try:
        if args.command == "requests":
            print(json.dumps(client.requests(args.path), indent=1))
        elif args.command == "behavior":
            print(json.dumps(client.behavior(**json.loads(args.spec))))
        elif args.command == "reset":
            client.reset()
        elif args.command == "health":
            if not client.health():
                return 1
        elif args.command == "wait":
            try:
                records = client.wait(args.path, args.count, args.timeout)
            except TimeoutError as err:
                print("intake_client: %s" % err, file=sys.stderr)
                return 1
            print(len(records))
    except (OSError, IntakeError, ValueError, TypeError) as err:
        print("intake_client: %s" % err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
