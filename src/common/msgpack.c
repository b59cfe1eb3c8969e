#include "msgpack.h"

#include <string.h>

typedef enum object_kind {
    KIND_SCALAR, /* numbers, nil, bool, str, bin, ext: no nested objects */
    KIND_ARRAY,
    KIND_MAP,
} object_kind_t;

/* What a container's items must be, by position in a v0.4 payload. */
typedef enum item_role {
    ROLE_PAYLOAD, /* the one top-level object: an array of traces */
    ROLE_TRACE,   /* an element of the payload: an array of spans */
    ROLE_SPAN,    /* an element of a trace: a map */
    ROLE_ANY,     /* inside a span: any well-formed object */
} item_role_t;

typedef struct level {
    uint64_t remaining; /* objects still to read at this level */
    item_role_t role;   /* what those objects must be */
} level_t;

static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* How the bytes after a format byte (0xc0..0xdf) are laid out: `len_bytes`
 * of big-endian length or count, then `fixed` bytes, then (for str, bin and
 * ext) `length` bytes of data. */
typedef struct format {
    uint8_t len_bytes;
    uint8_t fixed;
    uint8_t kind; /* object_kind_t */
} format_t;

static const format_t formats[32] = {
    [0x00] = {0, 0, KIND_SCALAR},  /* nil */
    [0x02] = {0, 0, KIND_SCALAR},  /* false */
    [0x03] = {0, 0, KIND_SCALAR},  /* true */
    [0x04] = {1, 0, KIND_SCALAR},  /* bin8 */
    [0x05] = {2, 0, KIND_SCALAR},  /* bin16 */
    [0x06] = {4, 0, KIND_SCALAR},  /* bin32 */
    [0x07] = {1, 1, KIND_SCALAR},  /* ext8: length, type */
    [0x08] = {2, 1, KIND_SCALAR},  /* ext16 */
    [0x09] = {4, 1, KIND_SCALAR},  /* ext32 */
    [0x0a] = {0, 4, KIND_SCALAR},  /* float32 */
    [0x0b] = {0, 8, KIND_SCALAR},  /* float64 */
    [0x0c] = {0, 1, KIND_SCALAR},  /* uint8 */
    [0x0d] = {0, 2, KIND_SCALAR},  /* uint16 */
    [0x0e] = {0, 4, KIND_SCALAR},  /* uint32 */
    [0x0f] = {0, 8, KIND_SCALAR},  /* uint64 */
    [0x10] = {0, 1, KIND_SCALAR},  /* int8 */
    [0x11] = {0, 2, KIND_SCALAR},  /* int16 */
    [0x12] = {0, 4, KIND_SCALAR},  /* int32 */
    [0x13] = {0, 8, KIND_SCALAR},  /* int64 */
    [0x14] = {0, 2, KIND_SCALAR},  /* fixext1: type + 1 */
    [0x15] = {0, 3, KIND_SCALAR},  /* fixext2 */
    [0x16] = {0, 5, KIND_SCALAR},  /* fixext4 */
    [0x17] = {0, 9, KIND_SCALAR},  /* fixext8 */
    [0x18] = {0, 17, KIND_SCALAR}, /* fixext16 */
    [0x19] = {1, 0, KIND_SCALAR},  /* str8 */
    [0x1a] = {2, 0, KIND_SCALAR},  /* str16 */
    [0x1b] = {4, 0, KIND_SCALAR},  /* str32 */
    [0x1c] = {2, 0, KIND_ARRAY},   /* array16 */
    [0x1d] = {4, 0, KIND_ARRAY},   /* array32 */
    [0x1e] = {2, 0, KIND_MAP},     /* map16 */
    [0x1f] = {4, 0, KIND_MAP},     /* map32 */
};

/* Reads the object at p[*pos]: skips it entirely when it is a scalar, or
 * its header when it is a container, whose nested object count goes to
 * `*children` (2 per map entry). Every declared length is checked against
 * what remains, so a huge length fails here rather than being trusted. */
static sc_msgpack_status_t read_object(const uint8_t *p, size_t len,
                                       size_t *pos, object_kind_t *kind,
                                       uint64_t *children)
{
    size_t avail = len - *pos;
    if (avail == 0) {
        return SC_MSGPACK_TRUNCATED;
    }
    uint8_t b = p[*pos];
    uint64_t count = 0; /* container items, or data bytes of str/bin/ext */
    size_t head = 1;
    *kind = KIND_SCALAR;

    if (b <= 0x7f || b >= 0xe0) { /* positive / negative fixint */
    } else if (b <= 0x8f) {
        *kind = KIND_MAP;
        count = b & 0x0fu;
    } else if (b <= 0x9f) {
        *kind = KIND_ARRAY;
        count = b & 0x0fu;
    } else if (b <= 0xbf) { /* fixstr */
        count = b & 0x1fu;
    } else if (b == 0xc1) {
        return SC_MSGPACK_INVALID_BYTE;
    } else {
        format_t f = formats[b - 0xc0];
        if (avail < 1u + f.len_bytes) {
            return SC_MSGPACK_TRUNCATED;
        }
        *kind = (object_kind_t)f.kind;
        count = read_be(p + *pos + 1, f.len_bytes);
        head = 1u + f.len_bytes;
        if (*kind == KIND_SCALAR) {
            count += f.fixed; /* data bytes after the header */
        }
    }

    if (*kind == KIND_SCALAR) {
        if (count > avail - head) {
            return SC_MSGPACK_TRUNCATED;
        }
        *pos += head + (size_t)count;
        *children = 0;
        return SC_MSGPACK_OK;
    }
    /* Every nested object takes at least one byte. */
    *children = *kind == KIND_MAP ? count * 2 : count;
    if (*children > avail - head) {
        return SC_MSGPACK_TRUNCATED;
    }
    *pos += head;
    return SC_MSGPACK_OK;
}

static sc_msgpack_status_t check_role(item_role_t role, object_kind_t kind)
{
    switch (role) {
    case ROLE_PAYLOAD:
        return kind == KIND_ARRAY ? SC_MSGPACK_OK : SC_MSGPACK_NOT_ARRAY;
    case ROLE_TRACE:
        return kind == KIND_ARRAY ? SC_MSGPACK_OK : SC_MSGPACK_BAD_TRACE;
    case ROLE_SPAN:
        return kind == KIND_MAP ? SC_MSGPACK_OK : SC_MSGPACK_BAD_SPAN;
    case ROLE_ANY:
        break;
    }
    return SC_MSGPACK_OK;
}

static item_role_t child_role(item_role_t role)
{
    switch (role) {
    case ROLE_PAYLOAD:
        return ROLE_TRACE;
    case ROLE_TRACE:
        return ROLE_SPAN;
    default:
        return ROLE_ANY;
    }
}

sc_msgpack_status_t sc_msgpack_check_traces(const uint8_t *p, size_t len,
                                            sc_msgpack_traces_t *out)
{
    if (len == 0) {
        return SC_MSGPACK_EMPTY;
    }
    /* stack[0] holds the single top-level object; stack[d] the items of a
     * container nested d deep. */
    level_t stack[SC_MSGPACK_MAX_DEPTH + 1];
    int depth = 0;
    stack[0] = (level_t){1, ROLE_PAYLOAD};
    size_t pos = 0;
    sc_msgpack_traces_t info = {0, 0};

    for (;;) {
        while (depth >= 0 && stack[depth].remaining == 0) {
            depth--;
        }
        if (depth < 0) {
            break;
        }
        stack[depth].remaining--;
        item_role_t role = stack[depth].role;
        object_kind_t kind;
        uint64_t children;
        sc_msgpack_status_t st = read_object(p, len, &pos, &kind, &children);
        if (st == SC_MSGPACK_OK) {
            st = check_role(role, kind);
        }
        if (st != SC_MSGPACK_OK) {
            return st;
        }
        if (role == ROLE_PAYLOAD) {
            info.trace_count = (uint32_t)children;
            info.elements_offset = pos;
        }
        if (children > 0) {
            if (depth == SC_MSGPACK_MAX_DEPTH) {
                return SC_MSGPACK_TOO_DEEP;
            }
            depth++;
            stack[depth] = (level_t){children, child_role(role)};
        }
    }
    if (pos != len) {
        return SC_MSGPACK_TRAILING;
    }
    if (out != NULL) {
        *out = info;
    }
    return SC_MSGPACK_OK;
}

const char *sc_msgpack_status_str(sc_msgpack_status_t status)
{
    switch (status) {
    case SC_MSGPACK_OK:
        return "ok";
    case SC_MSGPACK_EMPTY:
        return "empty payload";
    case SC_MSGPACK_TRUNCATED:
        return "truncated or length beyond the payload";
    case SC_MSGPACK_TRAILING:
        return "bytes after the top-level array";
    case SC_MSGPACK_NOT_ARRAY:
        return "top level is not an array";
    case SC_MSGPACK_BAD_TRACE:
        return "a trace is not an array";
    case SC_MSGPACK_BAD_SPAN:
        return "a span is not a map";
    case SC_MSGPACK_INVALID_BYTE:
        return "invalid byte 0xc1";
    case SC_MSGPACK_TOO_DEEP:
        return "nesting too deep";
    }
    return "unknown";
}

size_t sc_msgpack_array_header_size(uint32_t count)
{
    return count <= 15 ? 1 : count <= 0xffff ? 3 : 5;
}

size_t sc_msgpack_write_array_header(uint8_t *dst, uint32_t count)
{
    size_t n = sc_msgpack_array_header_size(count);
    if (n == 1) {
        dst[0] = (uint8_t)(0x90u | count);
        return 1;
    }
    dst[0] = n == 3 ? 0xdc : 0xdd;
    for (size_t i = 1; i < n; i++) {
        dst[i] = (uint8_t)(count >> (8 * (n - 1 - i)));
    }
    return n;
}

size_t sc_msgpack_merge_elements_size(const sc_msgpack_merge_t *m)
{
    return m->buf.len > SC_MSGPACK_MAX_ARRAY_HEADER
               ? m->buf.len - SC_MSGPACK_MAX_ARRAY_HEADER
               : 0;
}

size_t sc_msgpack_merge_body_size(const sc_msgpack_merge_t *m)
{
    return sc_msgpack_array_header_size(m->count) +
           sc_msgpack_merge_elements_size(m);
}

bool sc_msgpack_merge_add(sc_msgpack_merge_t *m, const uint8_t *payload,
                          size_t len, const sc_msgpack_traces_t *info)
{
    if (info->trace_count > UINT32_MAX - m->count) {
        return false;
    }
    size_t elements = len - info->elements_offset;
    if (m->buf.len == 0) {
        if (!sc_buf_reserve(&m->buf, SC_MSGPACK_MAX_ARRAY_HEADER + elements)) {
            return false;
        }
        memset(m->buf.data, 0, SC_MSGPACK_MAX_ARRAY_HEADER);
        m->buf.len = SC_MSGPACK_MAX_ARRAY_HEADER;
    }
    if (!sc_buf_append(&m->buf, payload + info->elements_offset, elements)) {
        return false;
    }
    m->count += info->trace_count;
    return true;
}

const uint8_t *sc_msgpack_merge_finish(sc_msgpack_merge_t *m, size_t *len)
{
    if (m->buf.len == 0) { /* nothing added: an empty array */
        if (!sc_buf_reserve(&m->buf, SC_MSGPACK_MAX_ARRAY_HEADER)) {
            *len = 0;
            return NULL;
        }
        m->buf.len = SC_MSGPACK_MAX_ARRAY_HEADER;
    }
    size_t head = sc_msgpack_array_header_size(m->count);
    uint8_t *start = m->buf.data + SC_MSGPACK_MAX_ARRAY_HEADER - head;
    sc_msgpack_write_array_header(start, m->count);
    *len = head + sc_msgpack_merge_elements_size(m);
    return start;
}

void sc_msgpack_merge_free(sc_msgpack_merge_t *m)
{
    sc_buf_free(&m->buf);
    m->count = 0;
}

/* Appends a format byte (with `small` folded into it when `count` fits
 * below `small_limit`) or the 8/16/32-bit form among `wide` (0 when a form
 * does not exist), followed by the big-endian count. */
static bool put_header(sc_buf_t *out, uint8_t small, uint32_t small_limit,
                       const uint8_t wide[3], uint32_t count)
{
    uint8_t head[5];
    size_t n;
    if (count < small_limit) {
        head[0] = (uint8_t)(small | count);
        n = 1;
    } else if (count <= 0xff && wide[0] != 0) {
        head[0] = wide[0];
        head[1] = (uint8_t)count;
        n = 2;
    } else if (count <= 0xffff) {
        head[0] = wide[1];
        head[1] = (uint8_t)(count >> 8);
        head[2] = (uint8_t)count;
        n = 3;
    } else {
        head[0] = wide[2];
        for (int i = 0; i < 4; i++) {
            head[1 + i] = (uint8_t)(count >> (24 - 8 * i));
        }
        n = 5;
    }
    return sc_buf_append(out, head, n);
}

bool sc_msgpack_put_array(sc_buf_t *out, uint32_t count)
{
    static const uint8_t wide[3] = {0, 0xdc, 0xdd};
    return put_header(out, 0x90, 16, wide, count);
}

bool sc_msgpack_put_map(sc_buf_t *out, uint32_t count)
{
    static const uint8_t wide[3] = {0, 0xde, 0xdf};
    return put_header(out, 0x80, 16, wide, count);
}

bool sc_msgpack_put_str(sc_buf_t *out, const char *s, size_t len)
{
    static const uint8_t wide[3] = {0xd9, 0xda, 0xdb};
    return len <= UINT32_MAX &&
           put_header(out, 0xa0, 32, wide, (uint32_t)len) &&
           sc_buf_append(out, s, len);
}

bool sc_msgpack_put_uint(sc_buf_t *out, uint64_t v)
{
    if (v < 0x80) {
        uint8_t b = (uint8_t)v;
        return sc_buf_append(out, &b, 1);
    }
    uint8_t head[9];
    size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    head[0] = n == 1 ? 0xcc : n == 2 ? 0xcd : n == 4 ? 0xce : 0xcf;
    for (size_t i = 0; i < n; i++) {
        head[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return sc_buf_append(out, head, n + 1);
}
