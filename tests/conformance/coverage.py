"""Which fields of proto/sidecar.proto the conformance cases exercised.

Every frame a case sends (wire.Conn.send_raw) is parsed back with Google's
runtime and its fields with a value other than the default are recorded,
with every enum value; so is every frame the sidecar sends back. A sent
action counts only if the sidecar did not refuse it (no ErrorReply
CODE_INVALID_ACTION with its seq): a field seen only in refused actions has
no case showing its effect. After a full run, conformance.py fails on any
field or enum value never exercised, so a field added to the proto without
a case here is caught (value 0 of an enum is the default, never on the wire,
and is not asked for).
"""

import itertools

_serials = itertools.count(1)
_sent = []  # (connection serial, seq, {"Message.field" or "Message.field=VALUE"})
_refused = set()  # (connection serial, seq)
_received = set()


def _serial(conn):
    if not hasattr(conn, "_coverage_serial"):
        conn._coverage_serial = next(_serials)
    return conn._coverage_serial


def _walk(msg, out):
    for fd, value in msg.ListFields():
        name = "%s.%s" % (msg.DESCRIPTOR.name, fd.name)
        out.add(name)
        values = value if fd.label == fd.LABEL_REPEATED else [value]
        if fd.enum_type is not None:
            for v in values:
                ev = fd.enum_type.values_by_number.get(v)
                out.add("%s=%s" % (name, ev.name if ev is not None else v))
        elif fd.message_type is not None:
            for v in values:
                _walk(v, out)


def sent(conn, pb, body):
    env = pb.Envelope()
    try:
        env.ParseFromString(body)
    except Exception:  # noqa: BLE001 (bytes crafted not to parse)
        return
    fields = set()
    _walk(env, fields)
    _sent.append((_serial(conn), env.seq, fields))


def received(conn, pb, env):
    _walk(env, _received)
    if env.WhichOneof("action") == "error_reply" and env.error_reply.code == pb.ErrorReply.CODE_INVALID_ACTION:
        _refused.add((_serial(conn), env.seq))


def missing(pb):
    """Fields and non-zero enum values of every message never exercised."""
    seen = set(_received)
    for serial, seq, fields in _sent:
        if (serial, seq) not in _refused:
            seen |= fields
    out = []
    for message in pb.DESCRIPTOR.message_types_by_name.values():
        for fd in message.fields:
            name = "%s.%s" % (message.name, fd.name)
            if name not in seen:
                out.append(name)
            elif fd.enum_type is not None:
                out += ["%s=%s" % (name, v.name) for v in fd.enum_type.values
                        if v.number != 0 and "%s=%s" % (name, v.name) not in seen]
    return out
