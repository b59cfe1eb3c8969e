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

static int submit(sc_flusher_t *f, sc_dest_t dest, const void *json,
                  size_t len, uint32_t items, void *enc);

int sc_flusher_submit_evp(sc_flusher_t *f, sc_dest_t dest, const void *json,
                          size_t len, uint32_t items)
{
    if (dest != SC_DEST_FLAGEVALUATIONS && dest != SC_DEST_EXPOSURES) {
        return UV_EINVAL;
    }
    return submit(f, dest, json, len, items, NULL);
}

int sc_flusher_submit_body(sc_flusher_t *f, sc_dest_t dest, const void *json,
                           size_t len, void *enc)
{
    return submit(f, dest, json, len, 1, enc); /* one request's body */
}

/* Queues `json` whole as one batch of `items` items. */
static int submit(sc_flusher_t *f, sc_dest_t dest, const void *json,
                  size_t len, uint32_t items, void *enc)
{
    sc_flusher_count_submitted(f, dest, len, items);
    if (f->closing) {
        return sc_flusher_refuse(f, dest, SC_DROP_SHUTDOWN, len, items);
    }
    if (len == 0) {
        return sc_flusher_refuse(f, dest, SC_DROP_REJECTED_PAYLOAD, len, items);
    }
    if (len > f->cfg.max_body_bytes) {
        return sc_flusher_refuse(f, dest, SC_DROP_TOO_LARGE, len, items);
    }
    if (!sc_flusher_make_room(f, dest, len)) {
        return sc_flusher_refuse(f, dest, SC_DROP_BUFFER_FULL, len, items);
    }
    sc_batch_t *b = sc_batch_new(f, dest);
    if (b == NULL || !sc_buf_append(&b->owned, json, len)) {
        free(b);
        return sc_flusher_refuse(f, dest, SC_DROP_NO_MEMORY, len, items);
    }
    b->enc = enc;
    b->body = b->owned.data;
    b->body_len = len;
    b->bytes = len;
    b->payloads = 1;
    b->traces = items; /* the events or exposures in the body */
    b->first_seq = ++f->seq;
    sc_batch_list_push(&f->dest[dest].queue, b);
    sc_flusher_account(&f->dest[dest], (int64_t)len, 1, items);
    sc_flusher_pump(f);
    return 0;
}
