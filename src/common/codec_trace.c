/* The trace action's fast path (codec.h): a TracePayload envelope is a few
 * varints around the caller's msgpack bytes, written and read here in one
 * pass instead of nanopb's descriptor walks (a size pass, a size pass of the
 * submessage, the encode; on decode, resetting every member of the action
 * oneof before reading). nanopb stays the codec of record: the encoder
 * writes exactly nanopb's bytes, and the decoder accepts only the layout it
 * can read the way nanopb would (everything else goes to nanopb), so both
 * paths give the same result on every input; tests/unit/test_codec_trace.c
 * and the fuzz targets check that. */
#include "codec.h"

#include <string.h>

/* Envelope.seq (field 1, varint), Envelope.trace_payload (field 4,
 * length-delimited), TracePayload.msgpack (1, length-delimited) and
 * TracePayload.trace_count (2, varint). */
#define TAG_SEQ         0x08u
#define TAG_TRACE       0x22u
#define TAG_MSGPACK     0x0au
#define TAG_TRACE_COUNT 0x10u

size_t sc_codec_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* The TracePayload's encoded size. As in nanopb: bytes are written when
 * present (a pointer), even empty; a zero count is not written. */
static size_t payload_size(const void *msgpack, size_t len,
                           uint32_t trace_count)
{
    size_t n = 0;
    if (msgpack != NULL) {
        n += 1 + sc_codec_varint_size(len) + len;
    }
    if (trace_count != 0) {
        n += 1 + sc_codec_varint_size(trace_count);
    }
    return n;
}

bool sc_codec_trace_size(uint64_t seq, const void *msgpack, size_t msgpack_len,
                         uint32_t trace_count, size_t *size)
{
    /* Far beyond any frame (4-byte length): refused, and no overflow
     * below. */
    if (msgpack != NULL && msgpack_len > UINT32_MAX) {
        return false;
    }
    size_t inner = payload_size(msgpack, msgpack_len, trace_count);
    size_t n = 1 + sc_codec_varint_size(inner) + inner;
    if (seq != 0) {
        n += 1 + sc_codec_varint_size(seq);
    }
    *size = n;
    return true;
}

size_t sc_codec_trace_write(uint8_t *dst, uint64_t seq, const void *msgpack,
                            size_t msgpack_len, uint32_t trace_count)
{
    uint8_t *p = dst;
    if (seq != 0) {
        *p++ = TAG_SEQ;
        p = put_varint(p, seq);
    }
    *p++ = TAG_TRACE;
    p = put_varint(p, payload_size(msgpack, msgpack_len, trace_count));
    if (msgpack != NULL) {
        *p++ = TAG_MSGPACK;
        p = put_varint(p, msgpack_len);
        if (msgpack_len > 0) {
            memcpy(p, msgpack, msgpack_len);
            p += msgpack_len;
        }
    }
    if (trace_count != 0) {
        *p++ = TAG_TRACE_COUNT;
        p = put_varint(p, trace_count);
    }
    return (size_t)(p - dst);
}

bool sc_codec_append_trace_frame(sc_buf_t *out, uint64_t seq,
                                 const void *msgpack, size_t msgpack_len,
                                 uint32_t trace_count)
{
    size_t size = 0;
    if (!sc_codec_trace_size(seq, msgpack, msgpack_len, trace_count, &size) ||
        size > UINT32_MAX ||
        !sc_buf_reserve(out, SC_FRAME_HEADER_SIZE + size)) {
        return false;
    }
    uint8_t *frame = out->data + out->len;
    sc_frame_put_len(frame, (uint32_t)size);
    sc_codec_trace_write(frame + SC_FRAME_HEADER_SIZE, seq, msgpack,
                         msgpack_len, trace_count);
    out->len += SC_FRAME_HEADER_SIZE + size;
    return true;
}

bool sc_codec_is_trace(const sidecar_v1_Envelope *env)
{
    return env->which_action == sidecar_v1_Envelope_trace_payload_tag;
}

bool sc_codec_trace_env_size(const sidecar_v1_Envelope *env, size_t *size)
{
    const sidecar_v1_TracePayload *t = &env->action.trace_payload;
    return sc_codec_trace_size(env->seq, t->msgpack.ptr, t->msgpack.len,
                               t->trace_count, size);
}

size_t sc_codec_trace_env_write(const sidecar_v1_Envelope *env, uint8_t *dst)
{
    const sidecar_v1_TracePayload *t = &env->action.trace_payload;
    return sc_codec_trace_write(dst, env->seq, t->msgpack.ptr, t->msgpack.len,
                                t->trace_count);
}

/* ---- decoding ------------------------------------------------------------
 *
 * Only varints every nanopb 0.4 decodes to the same value are read here
 * (seq: at most 9 bytes, 63 bits; a length or the count: at most 5 bytes
 * and 32 bits); a longer one sends the frame to nanopb, which knows the
 * rules for the rest (overflow, sign extension). Overlong encodings (0x80
 * 0x00 for 0) within those sizes are read as nanopb reads them. */

/* Reads a varint of at most `max_bytes` bytes whose value fits in
 * `max_bits` bits from [*p, end); false when it does not (or runs past the
 * end), without saying which. */
static bool get_varint(const uint8_t **p, const uint8_t *end, size_t max_bytes,
                       unsigned max_bits, uint64_t *value)
{
    const uint8_t *q = *p;
    uint64_t v = 0;
    for (size_t i = 0; i < max_bytes && q < end; i++) {
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7fu) << (7 * i);
        if ((b & 0x80u) == 0) {
            if (max_bits < 64 && (v >> max_bits) != 0) {
                return false;
            }
            *value = v;
            *p = q;
            return true;
        }
    }
    return false;
}

/* A length-delimited field's length, within what remains. */
static bool get_length(const uint8_t **p, const uint8_t *end, size_t *len)
{
    uint64_t v;
    if (!get_varint(p, end, 5, 32, &v) || v > (uint64_t)(end - *p)) {
        return false;
    }
    *len = (size_t)v;
    return true;
}

bool sc_codec_decode_trace(const uint8_t *msg, size_t len,
                           sidecar_v1_Envelope *env)
{
    const uint8_t *p = msg;
    const uint8_t *end = msg + len;
    uint64_t seq = 0;
    if (p < end && *p == TAG_SEQ) {
        p++;
        if (!get_varint(&p, end, 9, 63, &seq)) {
            return false;
        }
    }
    size_t inner_len;
    if (p == end || *p++ != TAG_TRACE || !get_length(&p, end, &inner_len) ||
        inner_len != (size_t)(end - p)) {
        return false; /* not exactly one trace action after the seq */
    }
    sc_view_t msgpack = {NULL, 0};
    uint64_t trace_count = 0;
    if (p < end && *p == TAG_MSGPACK) {
        p++;
        size_t n;
        if (!get_length(&p, end, &n)) {
            return false;
        }
        msgpack = sc_view_bytes(p, n);
        p += n;
    }
    if (p < end && *p == TAG_TRACE_COUNT) {
        p++;
        if (!get_varint(&p, end, 5, 32, &trace_count)) {
            return false;
        }
    }
    if (p != end) {
        return false; /* another field, or these in another order */
    }
    /* What nanopb leaves: a zeroed envelope with the fields read. */
    memset(env, 0, sizeof *env);
    env->seq = seq;
    env->which_action = sidecar_v1_Envelope_trace_payload_tag;
    env->action.trace_payload.msgpack = msgpack;
    env->action.trace_payload.trace_count = (uint32_t)trace_count;
    return true;
}
