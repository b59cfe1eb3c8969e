#!/usr/bin/python3
"""Self-test of the local intake (tests/intake): starts real intake processes
(TCP and Unix listeners) and drives every behaviour over real sockets.

Exit 0 = all checks passed, 1 = a check failed, 77 = skipped because Debian's
python3-msgpack is missing (a failure instead when $CI is set: CI installs it).
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import msgpack
except ImportError as missing:
    print("intake_selftest: python3-msgpack is not importable (%s); apt-get install python3-msgpack" % missing)
    sys.exit(1 if os.environ.get("CI") else 77)

import traces  # noqa: E402 (needs msgpack, checked above)
from intake_client import Intake  # noqa: E402

TIMEOUT = 10
TRACES = "/v0.4/traces"
FLAGS = "/evp_proxy/v2/api/v2/flagevaluations"
EXPOSURES = "/evp_proxy/v2/api/v2/exposures"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=TIMEOUT)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def equal(actual, expected, what):
    check(actual == expected, "%s: expected %r, got %r" % (what, expected, actual))


def request(target, method, path, body=None, headers=None, conn=None):
    """One request; `target` is an Intake (TCP) or a Unix path. Returns (status, headers, body)."""
    own = conn is None
    if own:
        if isinstance(target, str):
            conn = UnixHTTPConnection(target)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), response.read()
    finally:
        if own:
            conn.close()


def traces_body(trace_ids, spans_per_trace=2):
    return msgpack.packb(
        [
            [
                {"trace_id": tid, "span_id": tid * 10 + s, "parent_id": 0, "name": "web.request",
                 "service": "selftest", "resource": "GET /", "start": 1, "duration": 2, "error": 0,
                 "meta": {"k": "v"}, "metrics": {"_sampling_priority_v1": 1.0}}
                for s in range(spans_per_trace)
            ]
            for tid in trace_ids
        ]
    )


def put_traces(target, trace_ids, header_count=None, conn=None):
    count = len(trace_ids) if header_count is None else header_count
    headers = {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": str(count)}
    return request(target, "PUT", TRACES, traces_body(trace_ids), headers, conn)


def raw_connect(intake):
    sock = socket.create_connection(("127.0.0.1", intake.port), timeout=TIMEOUT)
    return sock


def raw_read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        check(chunk, "connection closed before a response head")
        data += chunk
    return data


def raw_response(sock, method="GET"):
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    return response.status, response.read()


def poll(predicate, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not predicate():
        check(time.monotonic() < deadline, "timed out waiting for " + what)
        time.sleep(0.02)


# ---- checks ------------------------------------------------------------------


def check_health_and_info(intake):
    for target in (intake, intake.unix_path):
        status, _, body = request(target, "GET", "/_intake/health")
        equal((status, body), (200, b"ok"), "health")
        status, headers, body = request(target, "GET", "/info")
        equal(status, 200, "/info status")
        info = json.loads(body)
        equal(info["version"], "7.99.0-intake", "/info version")
        check(TRACES in info["endpoints"] and FLAGS in info["endpoints"], "/info endpoints")
        equal(info["client_drop_p0s"], True, "client_drop_p0s")
    equal([r["path"] for r in intake.requests()], ["/info", "/info"], "only /info recorded, control is not")


def check_traces_roundtrip(intake):
    status, headers, body = put_traces(intake, [11, 12])
    equal(status, 200, "traces status")
    equal(headers["content-type"], "application/json", "traces content-type")
    equal(json.loads(body), {"rate_by_service": {"service:,env:": 1}}, "traces response")
    status, _, _ = request(intake, "POST", TRACES, traces_body([13]), {"X-Datadog-Trace-Count": "1"})
    equal(status, 200, "POST traces status")
    records = intake.requests(TRACES)
    equal(len(records), 2, "traces records")
    first = records[0]
    equal((first["method"], first["path"], first["answered"]), ("PUT", TRACES, 200), "record fields")
    equal(first["headers"]["content-type"], "application/msgpack", "lowercased header names")
    equal(Intake.body(first), traces_body([11, 12]), "recorded body")
    check(isinstance(first["time"], float) and abs(first["time"] - time.time()) < 3600, "record time")
    check(records[1]["seq"] > first["seq"], "seq increases")
    summary = traces.summarize(intake.requests())
    equal((summary["requests"], summary["traces"], summary["spans"]), (2, 3, 6), "decoded counts")
    equal(summary["header_trace_count"], 3, "header sum")
    equal(summary["first_span_trace_ids"], [11, 12, 13], "trace ids")
    equal((summary["count_mismatches"], summary["decode_errors"]), ([], []), "no problems")
    equal(summary["max_body_bytes"], len(traces_body([11, 12])), "max body")


def check_evp_and_unknown(intake):
    for path in (FLAGS, EXPOSURES):
        status, _, body = request(intake, "POST", path, b'{"a":1}', {"Content-Type": "application/json"})
        equal((status, body), (202, b"{}"), path)
    status, _, _ = request(intake, "POST", "/v0.7/nope", b"x")
    equal(status, 404, "unknown path")
    equal([(r["path"], r["answered"]) for r in intake.requests()],
          [(FLAGS, 202), (EXPOSURES, 202), ("/v0.7/nope", 404)], "all recorded")
    equal(len(intake.requests("/evp_proxy/")), 2, "path prefix filter")


def check_keepalive(intake):
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=TIMEOUT)
    try:
        socks = []
        for tid in (1, 2, 3):
            status, headers, _ = put_traces(intake, [tid], conn=conn)
            equal(status, 200, "keep-alive status")
            check(headers.get("connection") != "close", "server asked to close")
            socks.append(conn.sock)
        check(socks[0] is not None and all(s is socks[0] for s in socks), "TCP connection not reused")
    finally:
        conn.close()
    # The same over the Unix listener, by hand: two requests, one socket.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(intake.unix_path)
    try:
        for tid in (4, 5):
            body = traces_body([tid])
            sock.sendall(b"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nX-Datadog-Trace-Count: 1\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
            status, payload = raw_response(sock, "PUT")
            equal(status, 200, "unix keep-alive status")
    finally:
        sock.close()
    equal(traces.summarize(intake.requests())["first_span_trace_ids"], [1, 2, 3, 4, 5], "both listeners recorded")


def check_chunked(intake):
    # http.client chunks an iterable body that has no Content-Length.
    status, _, _ = request(intake, "POST", FLAGS, iter([b"ab", b"cde"]), {"Content-Type": "application/json"})
    equal(status, 202, "chunked status")
    record = intake.requests()[-1]
    equal(record["headers"].get("transfer-encoding"), "chunked", "sent chunked")
    equal(Intake.body(record), b"abcde", "de-chunked body")
    # Chunk extensions and trailers, by hand, then a second request on the same socket.
    sock = raw_connect(intake)
    try:
        sock.sendall(b"POST /evp_proxy/v2/api/v2/exposures HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n")
        equal(raw_response(sock, "POST"), (202, b"{}"), "raw chunked answer")
        sock.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        equal(raw_response(sock)[0], 200, "request after chunked body")
    finally:
        sock.close()
    equal(Intake.body(intake.requests(EXPOSURES)[-1]), b"abc0123456789", "raw de-chunked body")


def check_expect_continue(intake):
    body = traces_body([77])
    head = (b"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nX-Datadog-Trace-Count: 1\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    for connect in (lambda: raw_connect(intake), lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)):
        sock = connect()
        try:
            if sock.family == socket.AF_UNIX:
                sock.settimeout(TIMEOUT)
                sock.connect(intake.unix_path)
            sock.sendall(head)
            interim = raw_read_head(sock)
            check(interim.startswith(b"HTTP/1.1 100"), "no 100 Continue: %r" % interim)
            sock.sendall(body)
            equal(raw_response(sock, "PUT")[0], 200, "final answer after 100-continue")
        finally:
            sock.close()
    records = intake.requests(TRACES)
    equal(len(records), 2, "100-continue records")
    check(all(Intake.body(r) == body for r in records), "100-continue body recorded")


def check_status_counts(intake):
    intake.behavior(path_prefix=TRACES, mode="status", status=500, count=2)
    intake.behavior(path_prefix=TRACES, mode="status", status=429, count=1)
    intake.behavior(path_prefix=TRACES, mode="status", status=400, count=1)
    seen = []
    for tid in range(5):
        seen.append(put_traces(intake, [tid])[0])
        equal(request(intake, "GET", "/info")[0], 200, "other paths unaffected")
    equal(seen, [500, 500, 429, 400, 200], "queued statuses expire in order")
    equal([r["answered"] for r in intake.requests(TRACES)], [500, 500, 429, 400, 200], "answered recorded")
    equal(intake.behaviors(), {}, "queue drained")


def check_until_changed_and_prefixes(intake):
    intake.behavior(path_prefix=TRACES, mode="status", status=503, count=-1)
    equal([put_traces(intake, [1])[0] for _ in range(3)], [503] * 3, "count -1 persists")
    intake.behavior(path_prefix=TRACES, mode="ok")
    equal(put_traces(intake, [1])[0], 200, "mode ok replaces count -1")
    intake.behavior(path_prefix=TRACES, mode="status", status=500, count=1)
    equal([put_traces(intake, [1])[0] for _ in range(2)], [500, 200], "replaces an 'ok until changed'")
    intake.reset()
    intake.behavior(mode="status", status=502)  # default prefix: every path
    intake.behavior(path_prefix="/info", mode="ok")
    equal(request(intake, "GET", "/info")[0], 200, "longest prefix wins")
    equal(put_traces(intake, [1])[0], 502, "default prefix applies")
    equal(request(intake, "GET", "/_intake/health")[0], 200, "control endpoints never misbehave")
    intake.reset()
    equal(put_traces(intake, [1])[0], 200, "reset clears behaviours")
    equal(len(intake.requests()), 1, "reset clears records")


def check_stall(intake):
    intake.behavior(path_prefix=TRACES, mode="stall", stall_ms=300, count=1)
    started = time.monotonic()
    status, _, body = put_traces(intake, [5])
    elapsed = time.monotonic() - started
    equal(status, 200, "stalled request answered")
    equal(json.loads(body), {"rate_by_service": {"service:,env:": 1}}, "stalled answer body")
    check(elapsed >= 0.3, "answered after %.3fs, before the 300 ms stall" % elapsed)
    equal(intake.requests(TRACES)[-1]["answered"], "stalled", "stall recorded")
    # A client that gives up: the intake notices and frees the handler.
    intake.behavior(path_prefix=TRACES, mode="stall", stall_ms=600000, count=1)
    conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=0.3)
    try:
        put_traces(intake, [6], conn=conn)
        raise AssertionError("a 10-minute stall answered")
    except socket.timeout:
        pass
    finally:
        conn.close()
    poll(lambda: "client left during stall" in intake.log_text(), "the intake to notice the client left")
    equal(put_traces(intake, [7])[0], 200, "normal after stall")


def check_close(intake):
    intake.behavior(path_prefix=TRACES, mode="close", count=1)
    try:
        put_traces(intake, [8])
        raise AssertionError("close behaviour answered")
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        pass
    equal(put_traces(intake, [9])[0], 200, "normal after close")
    equal([r["answered"] for r in intake.requests(TRACES)], ["closed", 200], "close recorded")


def check_broken_clients(intake):
    before = len(intake.requests())
    cases = [
        b"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789",
        b"POST /v0.4/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        b"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Le",
    ]
    for data in cases:
        sock = raw_connect(intake)
        sock.sendall(data)
        sock.close()
    poll(lambda: intake.log_text().count("incomplete") >= 3, "the intake to log the truncated requests")
    sock = raw_connect(intake)
    try:
        # A one-word request line is "HTTP/0.9": the error page comes without
        # a status line, then the server closes.
        sock.sendall(b"GARBAGE\r\n\r\n")
        reply = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        check(b"400" in reply, "garbage request line: %r" % reply[:200])
    finally:
        sock.close()
    sock = raw_connect(intake)
    try:
        sock.sendall(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
        equal(raw_response(sock)[0], 501, "unknown method")
    finally:
        sock.close()
    sock = raw_connect(intake)
    try:
        sock.sendall(b"PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        equal(raw_response(sock, "PUT")[0], 400, "bad Content-Length")
    finally:
        sock.close()
    equal(request(intake, "GET", "/_intake/health")[0], 200, "alive after broken clients")
    equal(intake.requests()[before:], [], "incomplete requests not recorded")


def check_control_validation(intake):
    for body in (b"{not json", b"[1]", b'{"mode":"bogus"}', b'{"mode":"status","count":0}',
                 b'{"mode":"status","status":99}', b'{"mode":"ok","colour":1}'):
        status, _, _ = request(intake, "POST", "/_intake/behavior", body)
        equal(status, 400, "invalid behaviour %r" % body)
    equal(request(intake, "GET", "/_intake/nothing")[0], 404, "unknown control endpoint")
    equal(intake.behaviors(), {}, "invalid behaviours not queued")
    equal(intake.requests(), [], "control calls not recorded")


def check_concurrency(intake):
    errors = []

    def worker(base):
        conn = http.client.HTTPConnection("127.0.0.1", intake.port, timeout=TIMEOUT)
        try:
            for i in range(25):
                if put_traces(intake, [base + i], conn=conn)[0] != 200:
                    errors.append(base + i)
        except Exception as err:  # reported below
            errors.append(repr(err))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(1000 * t,)) for t in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    equal(errors, [], "concurrent requests")
    records = intake.requests(TRACES)
    equal(len(records), 200, "concurrent records")
    equal(len({r["seq"] for r in records}), 200, "unique seqs")
    summary = traces.summarize(records)
    equal((summary["traces"], summary["duplicate_trace_ids"]), (200, []), "concurrent traces")


def check_record_file(intake, record_path):
    for tid in (31, 32, 33):
        put_traces(intake, [tid])
    current = intake.requests()
    with open(record_path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    equal(lines[-3:], current, "--record lines equal the records")
    equal(traces.summarize(traces.records_from_file(record_path))["requests"],
          len(traces.trace_records(lines)), "records_from_file")


def run_tool(script, *args):
    return subprocess.run([sys.executable, os.path.join(HERE, script)] + list(args),
                          capture_output=True, text=True, timeout=60)


def check_cli(intake, record_path):
    port = str(intake.port)
    result = run_tool("intake_client.py", "--port", port, "behavior", '{"path_prefix":"/v0.4","mode":"status","status":500,"count":1}')
    equal(result.returncode, 0, "CLI behavior: " + result.stderr)
    equal(put_traces(intake, [41, 42])[0], 500, "CLI behaviour applied")
    put_traces(intake, [43], header_count=2)
    result = run_tool("intake_client.py", "--port", port, "wait", "--path", TRACES, "--count", "2", "--timeout", "5")
    equal(result.returncode, 0, "CLI wait: " + result.stderr)
    result = run_tool("intake_client.py", "--port", port, "wait", "--path", "/none", "--count", "1", "--timeout", "0.2")
    equal(result.returncode, 1, "CLI wait timeout")
    result = run_tool("intake_client.py", "--port", port, "requests", "--path", TRACES)
    equal([r["answered"] for r in json.loads(result.stdout)], [500, 200], "CLI requests")
    result = run_tool("traces.py", "summary", "--port", port)
    equal(result.returncode, 1, "summary flags the header mismatch")
    summary = json.loads(result.stdout)
    equal((summary["requests"], summary["traces"], summary["header_trace_count"]), (2, 3, 4), "CLI summary")
    equal(summary["count_mismatches"], [{"seq": intake.requests(TRACES)[1]["seq"], "header": 2, "decoded": 1}],
          "mismatch reported")
    result = run_tool("traces.py", "summary", "--port", port, "--accepted-only")
    equal(json.loads(result.stdout)["traces"], 1, "--accepted-only")
    request(intake, "PUT", TRACES, msgpack.packb([[{"trace_id": 1}]]) + b"\x01", {"X-Datadog-Trace-Count": "1"})
    result = run_tool("traces.py", "summary", "--file", record_path)
    equal(result.returncode, 1, "summary flags the bad body")
    check("ExtraData" in json.loads(result.stdout)["decode_errors"][-1]["error"], "trailing bytes reported")
    result = run_tool("intake_client.py", "--port", port, "reset")
    equal((result.returncode, intake.requests()), (0, []), "CLI reset")


def check_decoder():
    good = traces.decode_traces(traces_body([1, 2], spans_per_trace=3))
    equal([len(t) for t in good], [3, 3], "decoder shapes")
    for bad in (msgpack.packb({"a": 1}), msgpack.packb([1]), msgpack.packb([[]]), msgpack.packb([[1]]),
                msgpack.packb([]) + b"\x90", b"\xc1", b""):
        try:
            traces.decode_traces(bad)
        except traces.TraceFormatError:
            continue
        raise AssertionError("decoded an invalid body %r" % bad)


def check_nodelay():
    # The TCP server turns Nagle off on every connection it accepts (a
    # response is two writes; with Nagle the second waits for a delayed ACK).
    import intake as intake_module
    server = intake_module.TcpIntakeServer(("127.0.0.1", 0), intake_module.IntakeHandler)
    try:
        client = socket.create_connection(server.server_address[:2], timeout=TIMEOUT)
        conn, _ = server.get_request()
        try:
            equal(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, True,
                  "TCP_NODELAY on an accepted connection")
        finally:
            conn.close()
            client.close()
    finally:
        server.server_close()


def check_lifecycle(tmpdir):
    # Fixed --port, a stale Unix socket file, SIGTERM during a stall.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    stale = os.path.join(tmpdir, "stale.sock")
    open(stale, "w").close()
    intake = Intake.start(tmpdir, unix_path=stale, port=port)
    try:
        equal(intake.port, port, "--port honoured")
        equal(request(stale, "GET", "/_intake/health")[0], 200, "stale socket replaced")
        intake.behavior(mode="stall", stall_ms=600000)
        stuck = threading.Thread(target=lambda: _ignore(put_traces, intake, [1]), daemon=True)
        stuck.start()
        intake.wait(TRACES, 1, TIMEOUT)
    finally:
        code = intake.stop()
    equal(code, 0, "SIGTERM during a stall exits 0 promptly")
    check(not os.path.exists(stale), "unix socket removed at exit")
    intake = Intake.start(tmpdir)
    intake.process.send_signal(signal.SIGINT)
    equal(intake.process.wait(TIMEOUT), 0, "SIGINT exits 0")


def _ignore(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def main():
    failures = 0
    with tempfile.TemporaryDirectory(prefix="intake-selftest-") as tmpdir:
        record_path = os.path.join(tmpdir, "records.jsonl")
        unix_path = os.path.join(tmpdir, "agent.sock")
        intake = Intake.start(tmpdir, unix_path=unix_path, record=record_path)
        checks = [
            ("health_and_info", lambda: check_health_and_info(intake)),
            ("traces_roundtrip", lambda: check_traces_roundtrip(intake)),
            ("evp_and_unknown", lambda: check_evp_and_unknown(intake)),
            ("keepalive", lambda: check_keepalive(intake)),
            ("chunked", lambda: check_chunked(intake)),
            ("expect_continue", lambda: check_expect_continue(intake)),
            ("status_counts", lambda: check_status_counts(intake)),
            ("until_changed_and_prefixes", lambda: check_until_changed_and_prefixes(intake)),
            ("stall", lambda: check_stall(intake)),
            ("close", lambda: check_close(intake)),
            ("broken_clients", lambda: check_broken_clients(intake)),
            ("control_validation", lambda: check_control_validation(intake)),
            ("concurrency", lambda: check_concurrency(intake)),
            ("record_file", lambda: check_record_file(intake, record_path)),
            ("cli", lambda: check_cli(intake, record_path)),
            ("decoder", check_decoder),
            ("nodelay", check_nodelay),
            ("lifecycle", lambda: check_lifecycle(tmpdir)),
        ]
        try:
            for name, run in checks:
                try:
                    intake.reset()
                    run()
                    print("ok   %s" % name)
                except Exception:
                    failures += 1
                    print("FAIL %s\n%s" % (name, traceback.format_exc()))
        finally:
            code = intake.stop()
            if code != 0:
                failures += 1
                print("FAIL intake exit status %s" % code)
            if failures:
                print("---- intake log ----\n" + intake.log_text())
            check(not os.path.exists(unix_path), "unix socket left behind")
    print("%d check(s) failed" % failures if failures else "all intake checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
