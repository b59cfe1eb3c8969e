/* Encoding and decoding of sidecar.proto messages with nanopb.
 *
 * Strings and bytes are sc_view_t: decoded views point into the message bytes
 * given to sc_codec_decode(), so those bytes must outlive every use of the
 * decoded struct. Repeated message fields are sc_list_t, walked with
 * sc_list_next(). */
#ifndef SIDECAR_CODEC_H
#define SIDECAR_CODEC_H

#include "buf.h"
#include "sidecar.pb.h"

#define SC_FRAME_HEADER_SIZE 4u

/* Size of `env` once encoded (without the frame header); false if it cannot
 * be encoded. */
bool sc_codec_encoded_size(const sidecar_v1_Envelope *env, size_t *size);

/* Encodes `env` into `dst` (capacity `cap`); `*written` gets the length. */
bool sc_codec_encode(const sidecar_v1_Envelope *env, uint8_t *dst, size_t cap,
                     size_t *written);

/* Appends one frame (little-endian length + encoded `env`) to `out`. On
 * failure `out` is left as it was. */
bool sc_codec_append_frame(sc_buf_t *out, const sidecar_v1_Envelope *env);

/* Decodes one message. `env` is overwritten; its views point into `msg`.
 * A plain trace action goes through sc_codec_decode_trace(), everything
 * else (and any trace frame that one does not take) through nanopb.
 * Unknown fields are skipped. Returns false on malformed input, with a
 * static description in `*error` when error != NULL.
 *
 * On success every view, and every item of every list (nested lists
 * included), lies inside the bytes of its own field in `msg`, and every list
 * item is well formed, so sc_list_next() yields exactly `count` items. A
 * string, bytes or repeated message field with any wire type but
 * length-delimited is malformed, and so are list items split across two
 * occurrences of their parent message (which protobuf would merge). */
bool sc_codec_decode(const uint8_t *msg, size_t len, sidecar_v1_Envelope *env,
                     const char **error);

/* sc_codec_decode() without the trace fast path: nanopb alone, the codec of
 * record (the drift guards compare the two). */
bool sc_codec_decode_nanopb(const uint8_t *msg, size_t len,
                            sidecar_v1_Envelope *env, const char **error);

/* ---- the trace action's fast path (codec_trace.c) -------------------------
 *
 * A TracePayload envelope written and read in one pass. The bytes are
 * exactly nanopb's (sc_codec_encoded_size(), sc_codec_encode() and
 * sc_codec_append_frame() use these for trace envelopes); the decoder
 * returns the same envelope as nanopb for every frame it takes. */

/* Bytes of `v` as a protobuf varint (1 to 10). */
size_t sc_codec_varint_size(uint64_t v);

/* Encoded size of an Envelope{seq, trace_payload{msgpack, trace_count}}
 * (without the frame header); false when `msgpack_len` is beyond any
 * frame. msgpack == NULL: the bytes are absent (not written); otherwise
 * they are written, even empty, as nanopb writes a present view. */
bool sc_codec_trace_size(uint64_t seq, const void *msgpack, size_t msgpack_len,
                         uint32_t trace_count, size_t *size);

/* Writes that envelope at `dst` (room for sc_codec_trace_size() bytes);
 * returns the bytes written. */
size_t sc_codec_trace_write(uint8_t *dst, uint64_t seq, const void *msgpack,
                            size_t msgpack_len, uint32_t trace_count);

/* Appends one frame (header + that envelope) to `out`; on failure `out` is
 * left as it was. */
bool sc_codec_append_trace_frame(sc_buf_t *out, uint64_t seq,
                                 const void *msgpack, size_t msgpack_len,
                                 uint32_t trace_count);

/* The same for an envelope whose action is a trace payload
 * (sc_codec_is_trace()). */
bool sc_codec_is_trace(const sidecar_v1_Envelope *env);
bool sc_codec_trace_env_size(const sidecar_v1_Envelope *env, size_t *size);
size_t sc_codec_trace_env_write(const sidecar_v1_Envelope *env, uint8_t *dst);

/* Decodes `msg` when it is exactly an optional seq followed by one
 * trace_payload holding an optional msgpack and an optional trace_count, in
 * that order, with varints of the usual sizes: the frames every encoder
 * writes. Returns false without touching `env` for anything else (other or
 * unknown fields, repeats, another order, malformed bytes), which nanopb
 * then decodes or refuses. */
bool sc_codec_decode_trace(const uint8_t *msg, size_t len,
                           sidecar_v1_Envelope *env);

/* Walks the items of a decoded repeated field. */
typedef struct sc_list_iter {
    const sc_list_t *list;
    const uint8_t *pos;
    size_t index;
} sc_list_iter_t;

void sc_list_iter_init(sc_list_iter_t *it, const sc_list_t *list);

/* The generated struct size of a message type that appears in lists (what
 * sc_list_next needs as `item_size`), 0 for any other type: nanopb's
 * descriptors do not carry it. */
size_t sc_codec_list_item_size(const pb_msgdesc_t *type);

/* Decodes the next item of type `type` into `item` (which is zeroed first;
 * `item_size` is its size). Returns 1 with an item, 0 at the end, -1 when the
 * item is malformed (never for a list sc_codec_decode() accepted). */
int sc_list_next(sc_list_iter_t *it, const pb_msgdesc_t *type, void *item,
                 size_t item_size);

/* sc_list_next for a generated type name: SC_LIST_NEXT(&it,
 * sidecar_v1_Exposure, &e) */
#define SC_LIST_NEXT(it, Type, item)                                           \
    sc_list_next((it), Type##_fields, (item), sizeof(Type))

/* A list to encode from an array of generated structs. */
#define SC_LIST_OF(array, n) ((sc_list_t){.items = (array), .count = (n)})

/* Little-endian frame header helpers. */
static inline void sc_frame_put_len(uint8_t *p, uint32_t len)
{
    p[0] = (uint8_t)len;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 24);
}

static inline uint32_t sc_frame_get_len(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

#endif
