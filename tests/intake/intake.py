#!/usr/bin/python3
"""Local Datadog-agent intake for tests and the README demo (docs/intake.md).

A small HTTP/1.1 server on 127.0.0.1 (and optionally a Unix socket) that
records every request so tests can assert on it, and that can be told to
answer an error status, to stall, or to close the connection.  Python
standard library only.  The control API is described in docs/intake.md.

    /usr/bin/python3 tests/intake/intake.py --port-file FILE
        [--port N] [--unix PATH] [--record FILE] [--quiet]
        [--dogstatsd-port-file FILE] [--dogstatsd-unix PATH]

With --dogstatsd-port-file it also plays the agent's DogStatsD server: a UDP
socket on 127.0.0.1 (an ephemeral port, written to FILE), and with
--dogstatsd-unix a Unix datagram socket at PATH. Each datagram is recorded
whole, like a request, with method "DATAGRAM" and path "dogstatsd:udp" or
"dogstatsd:unix" (tests/intake/dogstatsd_check.py reads them).
"""

import argparse
import base64
import collections
import http.server
import json
import os
import select
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

CONTROL_PREFIX = "/_intake/"

AGENT_INFO = {
    "version": "7.99.0-intake",
    "endpoints": [
        "/v0.4/traces",
        "/v0.5/traces",
        "/evp_proxy/v2/",
        "/evp_proxy/v2/api/v2/flagevaluations",
        "/evp_proxy/v2/api/v2/exposures",
        "/telemetry/proxy/",
        "/info",
    ],
    "client_drop_p0s": True,
    "config": {},
}
TRACES_RESPONSE = b'{"rate_by_service":{"service:,env:":1}}'
EVP_PATHS = (
    "/evp_proxy/v2/api/v2/flagevaluations",
    "/evp_proxy/v2/api/v2/exposures",
)
TELEMETRY_PATH = "/telemetry/proxy/api/v2/apmtelemetry"
MODES = ("ok", "status", "stall", "close")

# A stalled answer re-checks the client and the shutdown flag this often, so
# neither a departed client nor SIGTERM waits for the whole stall.
STALL_POLL_SECONDS = 0.05


class BadRequest(Exception):
    """The request (or a control call) is malformed; answered with 400."""


class State:
    """Records and behaviours shared by every listener and handler thread."""

    def __init__(self, record_path):
        self.lock = threading.Lock()
        self.records = []
        self.next_seq = 1  # never reset: a seq names one request for good
        self.behaviors = {}  # path prefix -> deque of behaviour dicts
        self.record_file = open(record_path, "a", encoding="utf-8") if record_path else None
        self.stopping = threading.Event()
        self.quiet = False

    def add_record(self, record):
        with self.lock:
            record["seq"] = self.next_seq
            self.next_seq += 1
            self.records.append(record)
            if self.record_file:
                self.record_file.write(json.dumps(record, separators=(",", ":")) + "\n")
                self.record_file.flush()

    def list_records(self, path_prefix):
        with self.lock:
            return [r for r in self.records if path_prefix is None or r["path"].startswith(path_prefix)]

    def reset(self):
        with self.lock:
            self.records.clear()
            self.behaviors.clear()

    def add_behavior(self, spec):
        behavior = parse_behavior(spec)
        with self.lock:
            queue = self.behaviors.setdefault(behavior["path_prefix"], collections.deque())
            # "count": -1 means "until changed": a new behaviour for the same
            # prefix replaces it instead of queueing behind it forever.
            for entry in [e for e in queue if e["count"] == -1]:
                queue.remove(entry)
            queue.append(behavior)
        return behavior

    def list_behaviors(self):
        with self.lock:
            return {prefix: list(queue) for prefix, queue in self.behaviors.items() if queue}

    def take_behavior(self, path):
        """The behaviour for one request: head of the longest matching prefix's queue."""
        with self.lock:
            matching = [p for p, q in self.behaviors.items() if q and path.startswith(p)]
            if not matching:
                return None
            queue = self.behaviors[max(matching, key=len)]
            behavior = dict(queue[0])
            if queue[0]["count"] > 0:
                queue[0]["count"] -= 1
                if queue[0]["count"] == 0:
                    queue.popleft()
            return behavior


def parse_behavior(spec):
    if not isinstance(spec, dict):
        raise BadRequest("behavior must be a JSON object")
    unknown = set(spec) - {"path_prefix", "mode", "status", "count", "stall_ms"}
    if unknown:
        raise BadRequest("unknown behavior keys: %s" % ", ".join(sorted(unknown)))
    mode = spec.get("mode")
    if mode not in MODES:
        raise BadRequest("mode must be one of %s" % ", ".join(MODES))
    prefix = spec.get("path_prefix", "")
    count = spec.get("count", -1)
    status = spec.get("status", 500)
    stall_ms = spec.get("stall_ms", 5000)
    if not isinstance(prefix, str):
        raise BadRequest("path_prefix must be a string")
    if not isinstance(count, int) or isinstance(count, bool) or (count < 1 and count != -1):
        raise BadRequest("count must be a positive integer or -1")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadRequest("status must be an integer between 100 and 599")
    if not isinstance(stall_ms, (int, float)) or isinstance(stall_ms, bool) or stall_ms < 0:
        raise BadRequest("stall_ms must be a non-negative number")
    return {"path_prefix": prefix, "mode": mode, "status": status, "count": count, "stall_ms": stall_ms}


class _LastLineReader:
    """Passes readline() through to a file, remembering the last line read."""

    def __init__(self, inner):
        self.inner = inner
        self.last_line = None

    def readline(self, *args):
        self.last_line = self.inner.readline(*args)
        return self.last_line

    def __getattr__(self, name):
        return getattr(self.inner, name)


class IntakeHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive by default, and BaseHTTPRequestHandler answers
    # "Expect: 100-continue" with "100 Continue" before we read the body.
    protocol_version = "HTTP/1.1"
    server_version = "intake"
    sys_version = ""

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    # ---- request plumbing -------------------------------------------------

    def parse_request(self):
        # http.client.parse_headers takes EOF for the end of the header block,
        # so a client that disconnects mid-headers would pass for a complete
        # request; watch for the blank line that really ends the block.
        tracker = _LastLineReader(self.rfile)
        self.rfile = tracker
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = tracker.inner
        if parsed and tracker.last_line is not None and tracker.last_line not in (b"\r\n", b"\n"):
            self.close_connection = True
            self.log_message("incomplete %s %s: connection closed inside the headers", self.command, self.path)
            return False
        return parsed

    def dispatch(self):
        state = self.server.state
        try:
            body = self.read_body()
        except BadRequest as err:
            self.close_connection = True
            self.send_payload(400, json.dumps({"error": str(err)}).encode())
            return
        except (OSError, EOFError) as err:
            # The client went away mid-request: nothing complete to record.
            self.close_connection = True
            self.log_message("incomplete %s %s: %s", self.command, self.path, err)
            return
        if self.path.startswith(CONTROL_PREFIX):
            self.handle_control(state, body)
        else:
            self.handle_agent(state, body)

    def read_body(self):
        encoding = self.headers.get("Transfer-Encoding", "")
        if "chunked" in encoding.lower():
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise BadRequest("bad Content-Length %r" % length) from None
        if size < 0:
            raise BadRequest("negative Content-Length")
        return self.read_exact(size)

    def read_exact(self, size):
        data = self.rfile.read(size)
        if len(data) != size:
            raise EOFError("body truncated at %d of %d bytes" % (len(data), size))
        return data

    def read_line(self):
        line = self.rfile.readline(65537)
        if not line.endswith(b"\n"):
            raise EOFError("connection closed inside a chunked body")
        return line

    def read_chunked(self):
        parts = []
        while True:
            size_field = self.read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise BadRequest("bad chunk size %r" % size_field) from None
            if size == 0:
                break
            parts.append(self.read_exact(size))
            if self.read_line().strip():
                raise BadRequest("chunk not followed by CRLF")
        while self.read_line().strip():  # trailer fields, ignored
            pass
        return b"".join(parts)

    def send_payload(self, status, payload, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    # ---- agent side -------------------------------------------------------

    def handle_agent(self, state, body):
        behavior = state.take_behavior(self.path)
        mode = behavior["mode"] if behavior else "ok"
        status, payload = self.agent_answer()
        if mode == "status":
            status = behavior["status"]
            payload = json.dumps({"error": "status %d injected by intake" % status}).encode()
        answered = {"close": "closed", "stall": "stalled"}.get(mode, status)
        headers = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = headers[key] + ", " + value if key in headers else value
        state.add_record(
            {
                "seq": None,  # assigned under the lock, first for readability
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "body_b64": base64.b64encode(body).decode("ascii"),
                "time": time.time(),
                "answered": answered,
            }
        )
        if mode == "close":
            self.close_connection = True
            self.log_message("%s %s -> closed without answer", self.command, self.path)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "stall" and not self.stall(behavior["stall_ms"] / 1000.0):
            self.close_connection = True
            self.log_message("%s %s -> client left during stall", self.command, self.path)
            return
        self.log_message("%s %s -> %s (%d bytes)", self.command, self.path, answered, len(body))
        self.send_payload(status, payload)

    def agent_answer(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/info" and self.command == "GET":
            return 200, json.dumps(AGENT_INFO).encode()
        if path == "/v0.4/traces" and self.command in ("PUT", "POST"):
            return 200, TRACES_RESPONSE
        if path in EVP_PATHS and self.command == "POST":
            return 202, b"{}"
        if path == TELEMETRY_PATH and self.command == "POST":
            return 202, b""
        return 404, json.dumps({"error": "not found"}).encode()

    def stall(self, seconds):
        """Waits `seconds`; False as soon as the client is known to be gone."""
        deadline = time.monotonic() + seconds
        watch_client = True
        while not self.server.state.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            wait = min(remaining, STALL_POLL_SECONDS)
            if not watch_client:
                time.sleep(wait)
                continue
            readable, _, _ = select.select([self.connection], [], [], wait)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return False  # orderly close by the client
                except OSError:
                    return False
                # A pipelined next request is waiting: it stays in the kernel
                # buffer for later, and the socket stays readable, so stop
                # selecting on it and just sleep.
                watch_client = False
        return False

    # ---- control side -----------------------------------------------------

    def handle_control(self, state, body):
        url = urllib.parse.urlsplit(self.path)
        route = (self.command, url.path)
        try:
            if route == ("GET", "/_intake/health"):
                self.send_payload(200, b"ok", "text/plain")
            elif route == ("GET", "/_intake/requests"):
                query = urllib.parse.parse_qs(url.query)
                prefix = query["path"][0] if "path" in query else None
                self.send_payload(200, json.dumps(state.list_records(prefix)).encode())
            elif route == ("POST", "/_intake/reset"):
                state.reset()
                self.send_payload(200, b'{"reset":true}')
            elif route == ("POST", "/_intake/behavior"):
                try:
                    spec = json.loads(body or b"null")
                except ValueError as err:
                    raise BadRequest("behavior body is not JSON: %s" % err) from None
                behavior = state.add_behavior(spec)
                self.send_payload(200, json.dumps(behavior).encode())
            elif route == ("GET", "/_intake/behavior"):
                self.send_payload(200, json.dumps(state.list_behaviors()).encode())
            else:
                self.send_payload(404, json.dumps({"error": "unknown control endpoint"}).encode())
        except BadRequest as err:
            self.send_payload(400, json.dumps({"error": str(err)}).encode())

    # ---- logging ----------------------------------------------------------

    def address_string(self):
        # Unix-socket peers have no (host, port) address.
        if isinstance(self.client_address, tuple) and self.client_address:
            return "%s:%s" % self.client_address[:2]
        return "unix"

    def log_request(self, code="-", size="-"):
        pass  # handle_agent logs agent requests; control calls stay quiet

    def log_message(self, format, *args):  # noqa: A002 (base-class signature)
        if not self.server.state.quiet:
            sys.stderr.write("intake: [%s] %s\n" % (self.address_string(), format % args))


class TcpIntakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), a
        # possible DNS wait on an isolated CI machine, for a name nobody uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        # No Nagle: a response goes out as headers then body, two writes; with
        # Nagle the body waits for the ACK of the headers, which the client
        # delays ~40 ms. End-to-end figures would measure that, not the sidecar.
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request, client_address):
        # One broken connection must never take the server down; say so briefly.
        sys.stderr.write("intake: connection error: %r\n" % (sys.exc_info()[1],))


class UnixIntakeServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False
    handle_error = TcpIntakeServer.handle_error


# The largest datagram a DogStatsD client may send (UDP's limit).
DATAGRAM_MAX = 65535


def serve_datagrams(sock, transport, state):
    """Records every datagram of `sock` until the intake stops (what is
    already queued on the socket then is still recorded)."""
    sock.settimeout(0.2)
    while True:
        try:
            data = sock.recv(DATAGRAM_MAX)
        except socket.timeout:
            if state.stopping.is_set():
                return
            continue
        except OSError:
            return
        state.add_record(
            {
                "seq": None,
                "method": "DATAGRAM",
                "path": "dogstatsd:" + transport,
                "headers": {},
                "body_b64": base64.b64encode(data).decode("ascii"),
                "time": time.time(),
                "answered": None,
            }
        )


def open_dogstatsd(args):
    """The DogStatsD sockets asked for: [(socket, transport)]."""
    sockets = []
    if args.dogstatsd_port_file:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        udp.bind(("127.0.0.1", 0))
        sockets.append((udp, "udp"))
    if args.dogstatsd_unix:
        if os.path.exists(args.dogstatsd_unix):
            os.unlink(args.dogstatsd_unix)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        unix.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        unix.bind(args.dogstatsd_unix)
        sockets.append((unix, "unix"))
    return sockets


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Local Datadog-agent intake for tests.")
    parser.add_argument("--port-file", required=True, help="written with the TCP port once listening")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: ephemeral)")
    parser.add_argument("--unix", help="also serve HTTP on this Unix socket path")
    parser.add_argument("--record", help="append every record as a JSON line to this file")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    parser.add_argument("--dogstatsd-port-file", help="record DogStatsD datagrams on UDP; port written here")
    parser.add_argument("--dogstatsd-unix", help="record DogStatsD datagrams on this Unix datagram socket")
    args = parser.parse_args(argv)

    state = State(args.record)
    state.quiet = args.quiet
    servers = [TcpIntakeServer(("127.0.0.1", args.port), IntakeHandler)]
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)  # a stale socket from an earlier run
        servers.append(UnixIntakeServer(args.unix, IntakeHandler))
    for server in servers:
        server.state = state

    def request_stop(signum, frame):
        state.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    datagram_sockets = open_dogstatsd(args)
    for sock, transport in datagram_sockets:
        threads.append(threading.Thread(target=serve_datagrams, args=(sock, transport, state), daemon=True))
    for thread in threads:
        thread.start()
    port = servers[0].server_address[1]
    for sock, transport in datagram_sockets:
        if transport == "udp":
            write_port_file(args.dogstatsd_port_file, sock.getsockname()[1])
    write_port_file(args.port_file, port)
    if not args.quiet:
        where = " and unix:%s" % args.unix if args.unix else ""
        sys.stderr.write("intake: listening on 127.0.0.1:%d%s\n" % (port, where))

    while not state.stopping.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join()
    for sock, transport in datagram_sockets:
        sock.close()
    if args.dogstatsd_unix:
        try:
            os.unlink(args.dogstatsd_unix)
        except FileNotFoundError:
            pass
    if args.unix:
        try:
            os.unlink(args.unix)
        except FileNotFoundError:
            pass
    if state.record_file:
        with state.lock:
            state.record_file.close()
            state.record_file = None  # a straggling handler thread must not write
    return 0


if __name__ == "__main__":
    sys.exit(main())
