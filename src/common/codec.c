/* nanopb glue: one field callback for every string, bytes and repeated
 * message field of sidecar.proto (see proto/sidecar.options). */
#include "codec.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

/* Generated struct sizes of the message types that appear in lists; nanopb's
 * descriptors do not carry them, and encoding an array needs the stride. */
static size_t list_item_size(const pb_msgdesc_t *type)
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
    return 0;
}

static bool encode_view(pb_ostream_t *out, const pb_field_iter_t *field)
{
    const sc_view_t *v = field->pData;
    if (v->ptr == NULL) {
        return true; /* absent */
    }
    /* proto3 implicit presence: an empty singular field is not written. */
    if (v->len == 0 && PB_HTYPE(field->type) != PB_HTYPE_OPTIONAL) {
        return true;
    }
    return pb_encode_tag_for_field(out, field) &&
           pb_encode_string(out, v->ptr, v->len);
}

static bool decode_view(pb_istream_t *in, const pb_field_iter_t *field)
{
    sc_view_t *v = field->pData;
    /* Decoding always reads from a memory buffer (sc_codec_decode), where a
     * stream's state is its current read position. */
    v->ptr = in->state;
    v->len = in->bytes_left;
    return pb_read(in, NULL, in->bytes_left);
}

static bool encode_list(pb_ostream_t *out, const pb_field_iter_t *field)
{
    const sc_list_t *l = field->pData;
    size_t stride = list_item_size(field->submsg_desc);
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
};

static bool decode_list(pb_istream_t *in, const pb_field_iter_t *field)
{
    sc_list_t *l = field->pData;
    const uint8_t *start = in->state;
    size_t len = in->bytes_left;
    /* Decode the item once here so that a successful sc_codec_decode()
     * means the whole message, nested items included, is well formed and
     * sc_list_next() cannot fail on it later, half way through a batch. */
    union list_item scratch;
    memset(&scratch, 0, sizeof scratch);
    pb_istream_t item = pb_istream_from_buffer(start, len);
    if (list_item_size(field->submsg_desc) == 0 ||
        !pb_decode(&item, field->submsg_desc, &scratch)) {
        PB_RETURN_ERROR(in, "malformed list item");
    }
    if (l->count == 0) {
        l->first = start;
        l->first_len = len;
        l->tag = field->tag;
    }
    l->count++;
    l->end = start + len;
    return pb_read(in, NULL, len);
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
    return pb_get_encoded_size(size, sidecar_v1_Envelope_fields, env);
}

bool sc_codec_encode(const sidecar_v1_Envelope *env, uint8_t *dst, size_t cap,
                     size_t *written)
{
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
    memset(env, 0, sizeof *env);
    pb_istream_t in = pb_istream_from_buffer(msg, len);
    bool ok = pb_decode(&in, sidecar_v1_Envelope_fields, env);
    if (error != NULL) {
        *error = ok ? NULL : PB_GET_ERROR(&in);
    }
    return ok;
}

void sc_list_iter_init(sc_list_iter_t *it, const sc_list_t *list)
{
    it->list = list;
    it->pos = NULL;
    it->index = 0;
}

/* Finds the payload of the next item after it->pos: the span between the
 * first and last item may hold other fields when the sender interleaved
 * them, so items are picked out by their field number. */
static int next_payload(sc_list_iter_t *it, const uint8_t **payload,
                        size_t *len)
{
    const sc_list_t *l = it->list;
    if (it->pos == NULL) {
        *payload = l->first;
        *len = l->first_len;
        return 1;
    }
    pb_istream_t in =
        pb_istream_from_buffer(it->pos, (size_t)(l->end - it->pos));
    while (in.bytes_left > 0) {
        pb_wire_type_t wt;
        uint32_t tag;
        bool eof;
        if (!pb_decode_tag(&in, &wt, &tag, &eof)) {
            return -1;
        }
        if (tag == l->tag && wt == PB_WT_STRING) {
            uint32_t n;
            if (!pb_decode_varint32(&in, &n) || n > in.bytes_left) {
                return -1;
            }
            *payload = in.state;
            *len = n;
            return 1;
        }
        if (!pb_skip_field(&in, wt)) {
            return -1;
        }
    }
    return -1; /* fewer items than counted */
}

int sc_list_next(sc_list_iter_t *it, const pb_msgdesc_t *type, void *item,
                 size_t item_size)
{
    if (it->index >= it->list->count) {
        return 0;
    }
    const uint8_t *payload = NULL;
    size_t len = 0;
    if (next_payload(it, &payload, &len) != 1) {
        return -1;
    }
    memset(item, 0, item_size);
    pb_istream_t in = pb_istream_from_buffer(payload, len);
    if (!pb_decode(&in, type, item)) {
        return -1;
    }
    it->pos = payload + len;
    it->index++;
    return 1;
}
