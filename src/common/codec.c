/* nanopb glue: one field callback for every string, bytes and repeated
 * message field of sidecar.proto (see proto/sidecar.options). */
#include "codec.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

/* Generated struct sizes of the message types that appear in lists; nanopb's
 * descriptors do not carry them, and encoding an array needs the stride. */
size_t sc_codec_list_item_size(const pb_msgdesc_t *type)
{
    if (type == sidecar_v1_FlagEvaluation_fields) {
        return sizeof(sidecar_v1_FlagEvaluation);
    }
    if (type == sidecar_v1_ContextAttribute_fields) {
        return sizeof(sidecar_v1_ContextAttribute);
    }
    if (type == sidecar_v1_Exposure_fields) {
        return sizeof(sidecar_v1_Exposure);
    }
    if (type == sidecar_v1_TelemetryConfiguration_fields) {
        return sizeof(sidecar_v1_TelemetryConfiguration);
    }
    if (type == sidecar_v1_TelemetryDependency_fields) {
        return sizeof(sidecar_v1_TelemetryDependency);
    }
    if (type == sidecar_v1_TelemetryIntegration_fields) {
        return sizeof(sidecar_v1_TelemetryIntegration);
    }
    if (type == sidecar_v1_TelemetryLog_fields) {
        return sizeof(sidecar_v1_TelemetryLog);
    }
    if (type == sidecar_v1_TelemetryMetric_fields) {
        return sizeof(sidecar_v1_TelemetryMetric);
    }
    return 0;
}

static bool encode_view(pb_ostream_t *out, const pb_field_iter_t *field)
{
    const sc_view_t *v = field->pData;
    if (v->ptr == NULL) {
        return true; /* absent */
    }
    /* A present view is written even when empty: nanopb 0.4 marks proto3
     * singular and optional fields alike (PB_HTYPE_SINGULAR ==
     * PB_HTYPE_OPTIONAL), so this only skips empty required fields, of
     * which sidecar.proto has none. Parsers read an explicit empty value
     * as the default; the golden vectors and the trace fast path
     * (codec_trace.c) follow these bytes. */
    if (v->len == 0 && PB_HTYPE(field->type) != PB_HTYPE_OPTIONAL) {
        return true;
    }
    return pb_encode_tag_for_field(out, field) &&
           pb_encode_string(out, v->ptr, v->len);
}

/* ---- decoding: every view and list lies inside its own field ----------
 *
 * Decoding reads through a stream of our own (frame_stream), never through
 * pb_istream_from_buffer: its state is the frame's bounds and the read
 * position, shared by every substream nanopb derives from it. nanopb hands a
 * field callback such a substream, covering exactly the field's bytes, only
 * when the field is length-delimited; for any other wire type it hands a
 * stream over a copy on its own stack. The callbacks below therefore accept
 * nothing but a frame_stream (anything else is a wrong wire type for a
 * string, bytes or repeated message field: a decode error), and take a
 * view's or an item's bounds from it: the bytes of that field in the frame,
 * by construction. */

typedef struct frame_src {
    const uint8_t *pos; /* next byte nanopb will read */
    const uint8_t *end; /* end of the bytes being decoded */
} frame_src_t;

static bool frame_read(pb_istream_t *in, pb_byte_t *buf, size_t count)
{
    frame_src_t *src = in->state;
    if (count > (size_t)(src->end - src->pos)) {
        return false; /* nanopb bounds reads by bytes_left; never reached */
    }
    memcpy(buf, src->pos, count);
    src->pos += count;
    return true;
}

static pb_istream_t frame_stream(frame_src_t *src, const uint8_t *p, size_t len)
{
    src->pos = p;
    src->end = p + len;
    pb_istream_t in = {.callback = frame_read, .state = src, .bytes_left = len};
    return in;
}

/* The bytes of the field a callback was handed, consumed; false when the
 * stream is not one of ours (the field had the wrong wire type). */
static bool take_field(pb_istream_t *in, const uint8_t **p, size_t *len)
{
    if (in->callback != frame_read) {
        return false;
    }
    frame_src_t *src = in->state;
    if (in->bytes_left > (size_t)(src->end - src->pos)) {
        return false; /* nanopb never makes such a substream */
    }
    *p = src->pos;
    *len = in->bytes_left;
    src->pos += in->bytes_left;
    in->bytes_left = 0;
    return true;
}

static bool decode_view(pb_istream_t *in, const pb_field_iter_t *field)
{
    sc_view_t *v = field->pData;
    const uint8_t *p;
    size_t len;
    if (!take_field(in, &p, &len)) {
        PB_RETURN_ERROR(in, "wrong wire type for a string or bytes field");
    }
    v->ptr = p;
    v->len = len;
    return true;
}

static bool encode_list(pb_ostream_t *out, const pb_field_iter_t *field)
{
    const sc_list_t *l = field->pData;
    size_t stride = sc_codec_list_item_size(field->submsg_desc);
    if (l->count == 0) {
        return true;
    }
    if (stride == 0 || l->items == NULL) {
        PB_RETURN_ERROR(out, "list without items");
    }
    const uint8_t *item = l->items;
    for (size_t i = 0; i < l->count; i++, item += stride) {
        if (!pb_encode_tag_for_field(out, field) ||
            !pb_encode_submessage(out, field->submsg_desc, item)) {
            return false;
        }
    }
    return true;
}

/* Scratch space for validating one list item of any type. */
union list_item {
    sidecar_v1_FlagEvaluation evaluation;
    sidecar_v1_ContextAttribute attribute;
    sidecar_v1_Exposure exposure;
    sidecar_v1_TelemetryConfiguration configuration;
    sidecar_v1_TelemetryDependency dependency;
    sidecar_v1_TelemetryIntegration integration;
    sidecar_v1_TelemetryLog log;
    sidecar_v1_TelemetryMetric metric;
};

/* Finds the next item of field `tag` in [from, limit): the fields of one
 * message, where other fields may lie between items when the sender
 * interleaved them. 1 with the item's payload, 0 when there is none before
 * `limit`, -1 when the bytes are not well-formed fields or the field comes
 * with another wire type. Reads nothing outside [from, limit). */
static int find_item(const uint8_t *from, const uint8_t *limit, uint32_t tag,
                     const uint8_t **payload, size_t *len)
{
    pb_istream_t in = pb_istream_from_buffer(from, (size_t)(limit - from));
    while (in.bytes_left > 0) {
        pb_wire_type_t wt;
        uint32_t t;
        bool eof;
        if (!pb_decode_tag(&in, &wt, &t, &eof)) {
            return -1;
        }
        if (t == tag) {
            uint32_t n;
            if (wt != PB_WT_STRING || !pb_decode_varint32(&in, &n) ||
                n > in.bytes_left) {
                return -1;
            }
            *payload = limit - in.bytes_left;
            *len = n;
            return 1;
        }
        if (!pb_skip_field(&in, wt)) {
            return -1;
        }
    }
    return 0;
}

/* One item of a repeated message field. The list records where its items
 * lie (first item, end of the last one) so that sc_list_next() can walk
 * them later without a copy. Each item is decoded here once, so that a
 * successful sc_codec_decode() means every item, nested lists included, is
 * well formed; and each item after the first must be exactly the one that
 * find_item() finds after the previous one, so that sc_list_next(), which
 * walks with find_item() from item to item, returns exactly the items
 * checked here, all inside the message that holds them. (Items split
 * across two occurrences of their parent message, which protobuf would
 * merge, fail that check and are rejected.) */
static bool decode_list(pb_istream_t *in, const pb_field_iter_t *field)
{
    sc_list_t *l = field->pData;
    const uint8_t *start;
    size_t len;
    if (sc_codec_list_item_size(field->submsg_desc) == 0 ||
        !take_field(in, &start, &len)) {
        PB_RETURN_ERROR(in, "wrong wire type for a repeated message field");
    }
    union list_item scratch;
    memset(&scratch, 0, sizeof scratch);
    frame_src_t src;
    pb_istream_t item = frame_stream(&src, start, len);
    if (!pb_decode(&item, field->submsg_desc, &scratch)) {
        PB_RETURN_ERROR(in, "malformed list item");
    }
    if (l->count == 0) {
        l->first = start;
        l->first_len = len;
        l->tag = field->tag;
    } else {
        const uint8_t *found = NULL;
        size_t found_len = 0;
        if (l->tag != field->tag || l->end == NULL || l->end > start ||
            find_item(l->end, start + len, l->tag, &found, &found_len) != 1 ||
            found != start || found_len != len) {
            PB_RETURN_ERROR(in, "list items outside one message");
        }
    }
    l->count++;
    l->end = start + len;
    return true;
}

bool sc_codec_field_cb(pb_istream_t *in, pb_ostream_t *out,
                       const pb_field_iter_t *field);
bool sc_codec_field_cb(pb_istream_t *in, pb_ostream_t *out,
                       const pb_field_iter_t *field)
{
    bool is_list = PB_LTYPE_IS_SUBMSG(field->type);
    if (in != NULL) {
        return is_list ? decode_list(in, field) : decode_view(in, field);
    }
    return is_list ? encode_list(out, field) : encode_view(out, field);
}

bool sc_codec_encoded_size(const sidecar_v1_Envelope *env, size_t *size)
{
    if (sc_codec_is_trace(env)) {
        return sc_codec_trace_env_size(env, size);
    }
    return pb_get_encoded_size(size, sidecar_v1_Envelope_fields, env);
}

bool sc_codec_encode(const sidecar_v1_Envelope *env, uint8_t *dst, size_t cap,
                     size_t *written)
{
    size_t size = 0;
    if (sc_codec_is_trace(env)) {
        if (!sc_codec_trace_env_size(env, &size) || size > cap) {
            return false;
        }
        *written = sc_codec_trace_env_write(env, dst);
        return true;
    }
    pb_ostream_t out = pb_ostream_from_buffer(dst, cap);
    if (!pb_encode(&out, sidecar_v1_Envelope_fields, env)) {
        return false;
    }
    *written = out.bytes_written;
    return true;
}

bool sc_codec_append_frame(sc_buf_t *out, const sidecar_v1_Envelope *env)
{
    size_t size = 0;
    if (!sc_codec_encoded_size(env, &size) || size > UINT32_MAX ||
        !sc_buf_reserve(out, SC_FRAME_HEADER_SIZE + size)) {
        return false;
    }
    uint8_t *frame = out->data + out->len;
    size_t written = 0;
    if (!sc_codec_encode(env, frame + SC_FRAME_HEADER_SIZE, size, &written) ||
        written != size) {
        return false;
    }
    sc_frame_put_len(frame, (uint32_t)size);
    out->len += SC_FRAME_HEADER_SIZE + size;
    return true;
}

bool sc_codec_decode(const uint8_t *msg, size_t len, sidecar_v1_Envelope *env,
                     const char **error)
{
    if (sc_codec_decode_trace(msg, len, env)) {
        if (error != NULL) {
            *error = NULL;
        }
        return true;
    }
    return sc_codec_decode_nanopb(msg, len, env, error);
}

bool sc_codec_decode_nanopb(const uint8_t *msg, size_t len,
                            sidecar_v1_Envelope *env, const char **error)
{
    memset(env, 0, sizeof *env);
    frame_src_t src;
    pb_istream_t in = frame_stream(&src, msg, len);
    bool ok = pb_decode(&in, sidecar_v1_Envelope_fields, env);
    if (error != NULL) {
        /* nanopb drops the message a callback sets on the stack copy it
         * makes for a field that is not length-delimited (take_field()
         * refuses those); that is its only failure without a message. */
        *error = ok ? NULL
                 : in.errmsg != NULL
                     ? in.errmsg
                     : "wrong wire type for a string, bytes or repeated field";
    }
    return ok;
}

void sc_list_iter_init(sc_list_iter_t *it, const sc_list_t *list)
{
    it->list = list;
    it->pos = NULL;
    it->index = 0;
}

int sc_list_next(sc_list_iter_t *it, const pb_msgdesc_t *type, void *item,
                 size_t item_size)
{
    const sc_list_t *l = it->list;
    if (it->index >= l->count) {
        return 0;
    }
    const uint8_t *payload = l->first;
    size_t len = l->first_len;
    /* decode_list() checked that this walk finds exactly its items. */
    if (it->pos != NULL &&
        find_item(it->pos, l->end, l->tag, &payload, &len) != 1) {
        return -1;
    }
    memset(item, 0, item_size);
    frame_src_t src;
    pb_istream_t in = frame_stream(&src, payload, len);
    if (!pb_decode(&in, type, item)) {
        return -1;
    }
    it->pos = payload + len;
    it->index++;
    return 1;
}
