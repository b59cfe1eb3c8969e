"""An independent client of the sidecar's wire contract.

Message classes come from `protoc --python_out` run on proto/sidecar.proto at
test time, and are encoded and decoded by Google's protobuf runtime (Debian's
python3-protobuf), never by this project's codec: what this client expects is
what proto/sidecar.proto and docs/wire.md say, read by someone else.
"""

import importlib.util
import json
import os
import socket
import struct
import subprocess
import sys
import time

import coverage


def load_classes(protoc, proto_dir, out_dir):
    """Generates sidecar_pb2.py into out_dir and imports it."""
    subprocess.run(
        [protoc, "-I", proto_dir, "--python_out=" + out_dir, os.path.join(proto_dir, "sidecar.proto")],
        check=True,
    )
    path = os.path.join(out_dir, "sidecar_pb2.py")
    spec = importlib.util.spec_from_file_location("sidecar_pb2", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sidecar_pb2"] = module
    spec.loader.exec_module(module)
    return module


# ---- raw protobuf pieces, for what a generated class cannot express ----------
# (unknown fields, a field repeated at the top level, invalid UTF-8)


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def frame(body):
    return struct.pack("<I", len(body)) + body


class Closed(Exception):
    """The sidecar closed the connection."""


class Conn:
    """One connection to the sidecar's abstract socket."""

    def __init__(self, pb, endpoint, timeout=10.0):
        self.pb = pb
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        name = endpoint[1:] if endpoint.startswith("@") else endpoint
        self.sock.connect("\0" + name)
        self.buf = b""
        self.seq = 0

    def close(self):
        self.sock.close()

    def next_seq(self):
        self.seq += 1
        return self.seq

    def send_raw(self, body):
        coverage.sent(self, self.pb, body)
        self.sock.sendall(frame(body))

    def send(self, **action):
        """Sends an Envelope with one action (e.g. hello=pb.Hello(...)); returns its seq."""
        env = self.pb.Envelope(seq=self.next_seq(), **action)
        self.send_raw(env.SerializeToString())
        return env.seq

    def recv(self, timeout=10.0):
        """The next Envelope from the sidecar; Closed at end of stream."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack("<I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
                    env = self.pb.Envelope()
                    env.ParseFromString(body)
                    coverage.received(self, self.pb, env)
                    return env
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply from the sidecar")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise Closed()
            self.buf += data

    def expect_closed(self, timeout=10.0):
        """Reads until the end of stream; returns the frames that came before."""
        frames = []
        try:
            while True:
                frames.append(self.recv(timeout))
        except (Closed, ConnectionResetError):
            return frames

    def request(self, reply_field, **action):
        seq = self.send(**action)
        env = self.recv()
        if env.WhichOneof("action") != reply_field or env.seq != seq:
            raise AssertionError("expected %s seq=%d, got %s" % (reply_field, seq, env))
        return getattr(env, reply_field)

    def ping(self, **fields):
        return self.request("ping_reply", ping=self.pb.Ping(**fields))

    def stats(self):
        return json.loads(self.request("stats_reply", stats_request=self.pb.StatsRequest()).json)

    def flush(self, deliver_now=True, timeout_ms=None):
        f = self.pb.Flush(deliver_now=deliver_now)
        if timeout_ms is not None:
            f.timeout_ms = timeout_ms
        return self.request("flush_reply", flush=f)
