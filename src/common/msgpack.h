/* msgpack v0.4 trace payloads: validation and merging.
 *
 * A payload is forwarded to the agent only when the whole byte string is
 * exactly one well-formed msgpack array whose elements (traces) are arrays
 * of maps (spans). The walker never allocates and never recurses: declared
 * lengths are checked against the bytes that remain before anything is
 * skipped, and nesting is limited to SC_MSGPACK_MAX_DEPTH, so hostile input
 * costs at most one linear pass.
 *
 * Merging rewrites the array header and concatenates the elements of many
 * payloads (docs/delivery.md). */
#ifndef SIDECAR_MSGPACK_H
#define SIDECAR_MSGPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Containers nested deeper than this are rejected. A v0.4 span needs 5
 * levels (payload, trace, span, meta/span_links, link attributes). */
#define SC_MSGPACK_MAX_DEPTH 64

/* The largest array header (array32: 0xdd + 4 bytes). */
#define SC_MSGPACK_MAX_ARRAY_HEADER 5u

typedef enum sc_msgpack_status {
    SC_MSGPACK_OK = 0,
    SC_MSGPACK_EMPTY,        /* no bytes at all */
    SC_MSGPACK_TRUNCATED,    /* input ends inside an object */
    SC_MSGPACK_TRAILING,     /* bytes follow the top-level array */
    SC_MSGPACK_NOT_ARRAY,    /* top level is not an array */
    SC_MSGPACK_BAD_TRACE,    /* an element of the payload is not an array */
    SC_MSGPACK_BAD_SPAN,     /* an element of a trace is not a map */
    SC_MSGPACK_INVALID_BYTE, /* 0xc1, which msgpack never uses */
    SC_MSGPACK_TOO_DEEP,     /* nesting beyond SC_MSGPACK_MAX_DEPTH */
} sc_msgpack_status_t;

/* What the check learned about a valid payload. */
typedef struct sc_msgpack_traces {
    uint32_t trace_count;   /* elements of the top-level array */
    size_t elements_offset; /* first element (the header's size) */
} sc_msgpack_traces_t;

/* Checks that `p[0..len)` is one v0.4 trace payload. `out` may be NULL. */
sc_msgpack_status_t sc_msgpack_check_traces(const uint8_t *p, size_t len,
                                            sc_msgpack_traces_t *out);

const char *sc_msgpack_status_str(sc_msgpack_status_t status);

/* Size of the smallest array header for `count` elements: 1, 3 or 5. */
size_t sc_msgpack_array_header_size(uint32_t count);

/* Writes that header at `dst` (room for its size) and returns its size. */
size_t sc_msgpack_write_array_header(uint8_t *dst, uint32_t count);

/* Elements of many checked payloads, concatenated behind room for the
 * largest array header, so that finishing writes the header in place
 * without moving the elements. Zero-initialise before use. */
typedef struct sc_msgpack_merge {
    sc_buf_t buf;   /* SC_MSGPACK_MAX_ARRAY_HEADER bytes, then elements */
    uint32_t count; /* elements so far */
} sc_msgpack_merge_t;

/* Bytes of the elements held so far. */
size_t sc_msgpack_merge_elements_size(const sc_msgpack_merge_t *m);

/* Size the body would have if finished now. */
size_t sc_msgpack_merge_body_size(const sc_msgpack_merge_t *m);

/* Appends the elements of a payload that sc_msgpack_check_traces accepted
 * with `info`. False (and `m` unchanged) when memory runs out or the element
 * count would overflow 32 bits. */
bool sc_msgpack_merge_add(sc_msgpack_merge_t *m, const uint8_t *payload,
                          size_t len, const sc_msgpack_traces_t *info);

/* Writes the array header in front of the elements and returns the body
 * (valid until `m` changes or is freed). */
const uint8_t *sc_msgpack_merge_finish(sc_msgpack_merge_t *m, size_t *len);

void sc_msgpack_merge_free(sc_msgpack_merge_t *m);

/* A minimal writer (smallest encodings), for tests and benchmarks that
 * build payloads. Each returns false when memory runs out. */
bool sc_msgpack_put_array(sc_buf_t *out, uint32_t count);
bool sc_msgpack_put_map(sc_buf_t *out, uint32_t count);
bool sc_msgpack_put_str(sc_buf_t *out, const char *s, size_t len);
bool sc_msgpack_put_uint(sc_buf_t *out, uint64_t v);

#endif
