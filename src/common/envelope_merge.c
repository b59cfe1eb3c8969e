/* See envelope_merge.h. */
#include "envelope_merge.h"

#include "sidecar.pb.h"

#include <pb_decode.h>
#include <pb_encode.h>

static bool is_action(uint32_t tag)
{
    switch (tag) {
    case sidecar_v1_Envelope_hello_tag:
    case sidecar_v1_Envelope_session_config_tag:
    case sidecar_v1_Envelope_trace_payload_tag:
    case sidecar_v1_Envelope_flag_evaluation_batch_tag:
    case sidecar_v1_Envelope_exposure_batch_tag:
    case sidecar_v1_Envelope_flush_tag:
    case sidecar_v1_Envelope_ping_tag:
    case sidecar_v1_Envelope_stats_request_tag:
    case sidecar_v1_Envelope_drop_report_tag:
    case sidecar_v1_Envelope_metric_tag:
    case sidecar_v1_Envelope_telemetry_tag:
    case sidecar_v1_Envelope_ping_reply_tag:
    case sidecar_v1_Envelope_flush_reply_tag:
    case sidecar_v1_Envelope_stats_reply_tag:
    case sidecar_v1_Envelope_error_reply_tag:
    case sidecar_v1_Envelope_ack_tag:
        return true;
    default:
        return false;
    }
}

/* One top-level field: its tag, where it starts and, for a length-delimited
 * field, its payload. */
typedef struct field {
    uint32_t tag;
    pb_wire_type_t wire_type;
    const uint8_t *start;
    const uint8_t *payload;
    size_t payload_len;
} field_t;

/* Reads the next field; 1 with a field, 0 at the end, -1 on bytes the
 * decoder will refuse anyway. */
static int next_field(pb_istream_t *in, field_t *f)
{
    if (in->bytes_left == 0) {
        return 0;
    }
    bool eof = false;
    f->start = in->state;
    if (!pb_decode_tag(in, &f->wire_type, &f->tag, &eof)) {
        return -1;
    }
    f->payload = NULL;
    f->payload_len = 0;
    if (f->wire_type == PB_WT_STRING) {
        uint32_t n = 0;
        if (!pb_decode_varint32(in, &n) || n > in->bytes_left) {
            return -1;
        }
        f->payload = in->state;
        f->payload_len = n;
        return pb_read(in, NULL, n) ? 1 : -1;
    }
    return pb_skip_field(in, f->wire_type) ? 1 : -1;
}

/* The winning action: its tag, how many occurrences form it, and the first
 * of them (all occurrences after `first` with this tag belong to it). */
typedef struct winner {
    uint32_t tag;
    size_t count;
    size_t total_len;
    const uint8_t *first;
} winner_t;

static bool find_winner(const uint8_t *msg, size_t len, winner_t *w)
{
    pb_istream_t in = pb_istream_from_buffer(msg, len);
    field_t f;
    int rc;
    w->tag = 0;
    w->count = 0;
    w->total_len = 0;
    while ((rc = next_field(&in, &f)) == 1) {
        if (!is_action(f.tag)) {
            continue;
        }
        if (f.wire_type != PB_WT_STRING) {
            return false; /* the decoder refuses it */
        }
        if (f.tag != w->tag) {
            w->tag = f.tag;
            w->count = 0;
            w->total_len = 0;
            w->first = f.start;
        }
        w->count++;
        w->total_len += f.payload_len;
    }
    return rc == 0;
}

static bool append_varint(sc_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    pb_ostream_t out = pb_ostream_from_buffer(tmp, sizeof tmp);
    return pb_encode_varint(&out, v) &&
           sc_buf_append(b, tmp, out.bytes_written);
}

bool sc_envelope_merge_actions(const uint8_t *msg, size_t len,
                               sc_buf_t *scratch, const uint8_t **out,
                               size_t *out_len)
{
    *out = msg;
    *out_len = len;
    winner_t w;
    if (!find_winner(msg, len, &w) || w.count < 2) {
        return true;
    }
    /* Every non-action field as it was (seq, unknown fields), then the
     * winning action once, its payload the concatenation of its
     * occurrences. Action fields that lost to a later one are left out, as
     * a oneof parser discards them. */
    sc_buf_reset(scratch);
    if (!sc_buf_reserve(scratch, len + 16)) {
        return false;
    }
    pb_istream_t in = pb_istream_from_buffer(msg, len);
    field_t f;
    while (next_field(&in, &f) == 1) {
        if (!is_action(f.tag) &&
            !sc_buf_append(scratch, f.start,
                           (size_t)((const uint8_t *)in.state - f.start))) {
            return false;
        }
    }
    if (!append_varint(scratch, ((uint64_t)w.tag << 3) | PB_WT_STRING) ||
        !append_varint(scratch, w.total_len)) {
        return false;
    }
    in = pb_istream_from_buffer(w.first, (size_t)(msg + len - w.first));
    while (next_field(&in, &f) == 1) {
        if (f.tag == w.tag &&
            !sc_buf_append(scratch, f.payload, f.payload_len)) {
            return false;
        }
    }
    *out = scratch->data;
    *out_len = scratch->len;
    return true;
}
