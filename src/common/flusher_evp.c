/* EVP submissions (docs/delivery.md, "EVP"): one JSON body each, posted as
 * is through the agent's EVP proxy. Coalescing and splitting happen before,
 * in the aggregator's body builder. sc_flusher_submit_body serves every
 * destination whose requests are one body each (telemetry too). */
#include "flusher_internal.h"

#include <stdlib.h>

bool sc_evp_headers(const sc_batch_t *b, struct curl_slist **h)
{
    (void)b;
    struct curl_slist *l =
        curl_slist_append(*h, "X-Datadog-EVP-Subdomain: event-platform-intake");
    if (l == NULL) {
        return false;
    }
    *h = l;
    return true;
}

int sc_flusher_submit_evp(sc_flusher_t *f, sc_dest_t dest, const void *json,
                          size_t len)
{
    if (dest != SC_DEST_FLAGEVALUATIONS && dest != SC_DEST_EXPOSURES) {
        return UV_EINVAL;
    }
    return sc_flusher_submit_body(f, dest, json, len, NULL);
}

int sc_flusher_submit_body(sc_flusher_t *f, sc_dest_t dest, const void *json,
                           size_t len, void *enc)
{
    sc_flusher_count_submitted(f, dest, len, 0);
    if (f->closing) {
        return sc_flusher_refuse(f, dest, SC_DROP_SHUTDOWN, len, 0);
    }
    if (len == 0) {
        return sc_flusher_refuse(f, dest, SC_DROP_REJECTED_PAYLOAD, len, 0);
    }
    if (len > f->cfg.max_body_bytes) {
        return sc_flusher_refuse(f, dest, SC_DROP_TOO_LARGE, len, 0);
    }
    if (!sc_flusher_make_room(f, dest, len)) {
        return sc_flusher_refuse(f, dest, SC_DROP_BUFFER_FULL, len, 0);
    }
    sc_batch_t *b = sc_batch_new(f, dest);
    if (b == NULL || !sc_buf_append(&b->owned, json, len)) {
        free(b);
        return sc_flusher_refuse(f, dest, SC_DROP_NO_MEMORY, len, 0);
    }
    b->enc = enc;
    b->body = b->owned.data;
    b->body_len = len;
    b->bytes = len;
    b->payloads = 1;
    b->first_seq = ++f->seq;
    sc_batch_list_push(&f->dest[dest].queue, b);
    sc_flusher_account(&f->dest[dest], (int64_t)len, 1, 0);
    sc_flusher_pump(f);
    return 0;
}
