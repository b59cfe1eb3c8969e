<?php
/* A tiny msgpack encoder for Datadog v0.4 trace payloads: enough for the
 * FPM leg, which cannot count on the msgpack extension being installed.
 * Integers are encoded unsigned (trace/span ids are uint64 on the wire);
 * PHP ints are signed 64-bit, so ids are kept below 2^63. */

function sidecar_msgpack_uint(int $v): string
{
    if ($v < 0) {
        return "\xd3" . pack('J', $v); /* int64 */
    }
    if ($v < 0x80) {
        return chr($v);                 /* positive fixint */
    }
    if ($v <= 0xff) {
        return "\xcc" . chr($v);
    }
    if ($v <= 0xffff) {
        return "\xcd" . pack('n', $v);
    }
    if ($v <= 0xffffffff) {
        return "\xce" . pack('N', $v);
    }
    return "\xcf" . pack('J', $v);      /* uint64, big endian */
}

function sidecar_msgpack_str(string $s): string
{
    $n = strlen($s);
    if ($n < 32) {
        return chr(0xa0 | $n) . $s;     /* fixstr */
    }
    if ($n <= 0xff) {
        return "\xd9" . chr($n) . $s;   /* str8 */
    }
    if ($n <= 0xffff) {
        return "\xda" . pack('n', $n) . $s;
    }
    return "\xdb" . pack('N', $n) . $s;
}

function sidecar_msgpack_float(float $f): string
{
    return "\xcb" . pack('E', $f);      /* float64, big endian */
}

function sidecar_msgpack_array_header(int $n): string
{
    return $n < 16 ? chr(0x90 | $n) : "\xdc" . pack('n', $n);
}

function sidecar_msgpack_map_header(int $n): string
{
    return $n < 16 ? chr(0x80 | $n) : "\xde" . pack('n', $n);
}

/* Encodes a PHP value: ints, floats, strings, lists and string-keyed maps. */
function sidecar_msgpack(mixed $v): string
{
    if (is_int($v)) {
        return sidecar_msgpack_uint($v);
    }
    if (is_float($v)) {
        return sidecar_msgpack_float($v);
    }
    if (is_string($v)) {
        return sidecar_msgpack_str($v);
    }
    if (is_array($v) && array_is_list($v)) {
        $out = sidecar_msgpack_array_header(count($v));
        foreach ($v as $item) {
            $out .= sidecar_msgpack($item);
        }
        return $out;
    }
    if (is_array($v)) {
        $out = sidecar_msgpack_map_header(count($v));
        foreach ($v as $key => $item) {
            $out .= sidecar_msgpack_str((string)$key) . sidecar_msgpack($item);
        }
        return $out;
    }
    throw new InvalidArgumentException('cannot encode ' . gettype($v));
}

/* One v0.4 payload: an array of one trace holding one span. */
function sidecar_one_span_payload(int $trace_id, string $name, string $resource): string
{
    $start = hrtime(true);
    $span = [
        'trace_id' => $trace_id,
        'span_id' => $trace_id,
        'parent_id' => 0,
        'name' => $name,
        'service' => 'fpm-leg',
        'resource' => $resource,
        'type' => 'web',
        'start' => (int)(microtime(true) * 1e9),
        'duration' => max(1, hrtime(true) - $start),
        'error' => 0,
        'meta' => ['pid' => (string)getmypid()],
        'metrics' => ['_sampling_priority_v1' => 1.0],
    ];
    return sidecar_msgpack([[$span]]);
}

/* A trace id that no other request of the leg uses (random, below 2^63). */
function sidecar_new_trace_id(): int
{
    return random_int(1, PHP_INT_MAX);
}
