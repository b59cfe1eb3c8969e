/* Trace submissions (docs/delivery.md, "Traces"): msgpack v0.4 payloads
 * checked, merged per (lang, lang version, tracer version) into one array
 * per request, with the metadata and the summed trace count as headers;
 * the rate_by_service object of the answers kept. */
#include "flusher_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define META_VALUE_MAX 128

/* A fresh batch buffer has room for the flush threshold plus this much, so
 * that the payload that crosses the threshold does not double it. */
#define BATCH_HEADROOM ((size_t)64 << 10)

/* The encoder's state of one trace batch. */
typedef struct trace_enc {
    char *meta[3]; /* lang, lang version, tracer version (one block) */
    size_t meta_len[3];
    sc_msgpack_merge_t merge;
} trace_enc_t;

/* ---- batch buffers --------------------------------------------------------
 *
 * A trace batch grows to the flush threshold (1 MiB by default) one payload
 * at a time. Grown by doubling from nothing, every batch would cost a dozen
 * reallocations and, once freed, the page faults of its memory again in the
 * next one. Instead a batch starts with room for the threshold (pages are
 * only touched as payloads arrive), and the buffer of a batch that was cut
 * full goes back to the flusher's spares for the next batch when its
 * request is done. Spares are given back when trace traffic stops
 * (sc_traces_trim, from the flush timer), so an idle sidecar holds none. */

static size_t batch_capacity(const sc_flusher_t *f)
{
    size_t cap = f->cfg.trace_flush_bytes + BATCH_HEADROOM;
    size_t max = f->cfg.max_body_bytes + SC_MSGPACK_MAX_ARRAY_HEADER;
    return cap < max ? cap : max;
}

/* A buffer for a new batch: a spare, or a fresh one with the room above
 * (false when out of memory). */
static bool take_buffer(sc_flusher_t *f, sc_buf_t *buf)
{
    for (size_t i = 0; i < SC_TRACE_SPARES; i++) {
        if (f->trace_spares[i].data != NULL) {
            *buf = f->trace_spares[i];
            f->trace_spares[i] = (sc_buf_t){0};
            buf->len = 0;
            return true;
        }
    }
    *buf = (sc_buf_t){0};
    return sc_buf_reserve(buf, batch_capacity(f));
}

/* Keeps a finished batch's buffer as a spare when it is of the usual size
 * and a slot is free; frees it otherwise. */
static void give_back_buffer(sc_flusher_t *f, sc_buf_t *buf)
{
    size_t usual = batch_capacity(f);
    if (buf->data != NULL && !f->stopping && buf->cap >= usual &&
        buf->cap <= 2 * usual) {
        for (size_t i = 0; i < SC_TRACE_SPARES; i++) {
            if (f->trace_spares[i].data == NULL) {
                f->trace_spares[i] = *buf;
                *buf = (sc_buf_t){0};
                return;
            }
        }
    }
    sc_buf_free(buf);
}

void sc_traces_trim(sc_flusher_t *f, bool all)
{
    const sc_dest_state_t *d = &f->dest[SC_DEST_TRACES];
    if (!all && (d->open.head != NULL || d->queue.head != NULL)) {
        return; /* traffic: the spares are about to be used */
    }
    for (size_t i = 0; i < SC_TRACE_SPARES; i++) {
        sc_buf_free(&f->trace_spares[i]);
    }
}

bool sc_traces_headers(const sc_batch_t *b, struct curl_slist **h)
{
    static const char *const names[3] = {"Datadog-Meta-Lang",
                                         "Datadog-Meta-Lang-Version",
                                         "Datadog-Meta-Tracer-Version"};
    const trace_enc_t *e = b->enc;
    char line[256];
    snprintf(line, sizeof line, "X-Datadog-Trace-Count: %llu",
             (unsigned long long)b->traces);
    struct curl_slist *l = curl_slist_append(*h, line);
    for (int i = 0; i < 3 && l != NULL; i++) {
        *h = l;
        /* An empty value would make curl remove the header. */
        if (e->meta[i][0] != '\0') {
            snprintf(line, sizeof line, "%s: %s", names[i], e->meta[i]);
            l = curl_slist_append(*h, line);
        }
    }
    if (l == NULL) {
        return false;
    }
    *h = l;
    return true;
}

/* A batch cut full (by size, under traffic) keeps its room, to be reused
 * by a later batch; one cut small (by the timer) gives the room back, so
 * that batches queued while the agent is away hold no more than their
 * bytes (the queue's cap counts bytes, not room). */
void sc_traces_finish(sc_batch_t *b)
{
    trace_enc_t *e = b->enc;
    sc_buf_t *buf = &e->merge.buf;
    if (buf->len < buf->cap / 2) {
        uint8_t *p = realloc(buf->data, buf->len > 0 ? buf->len : 1);
        if (p != NULL) {
            buf->data = p;
            buf->cap = buf->len > 0 ? buf->len : 1;
        }
    }
    b->body = sc_msgpack_merge_finish(&e->merge, &b->body_len);
}

void sc_traces_release(sc_batch_t *b)
{
    trace_enc_t *e = b->enc;
    if (e != NULL) {
        give_back_buffer(b->f, &e->merge.buf);
        sc_msgpack_merge_free(&e->merge);
        free(e->meta[0]);
        free(e);
    }
}

void sc_traces_on_ok(sc_flusher_t *f, const sc_buf_t *response)
{
    size_t len = 0;
    char *copy =
        sc_agent_rates_parse((const char *)response->data, response->len, &len);
    if (copy == NULL) {
        return;
    }
    if (f->rates != NULL && f->rates_len == len &&
        memcmp(f->rates, copy, len) == 0) {
        free(copy);
        return;
    }
    free(f->rates);
    f->rates = copy;
    f->rates_len = len;
    if (f->hooks.on_rates != NULL) {
        f->hooks.on_rates(f->rates, f->rates_len, f->hooks.data);
    }
}

static bool meta_value_ok(sc_view_t v)
{
    if (v.len > META_VALUE_MAX || (v.ptr == NULL && v.len != 0)) {
        return false;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < 0x20 || v.ptr[i] == 0x7f) {
            return false; /* would end or split the header line */
        }
    }
    return true;
}

static bool meta_equal(const trace_enc_t *e, const sc_view_t *values)
{
    for (int i = 0; i < 3; i++) {
        if (e->meta_len[i] != values[i].len ||
            (values[i].len > 0 &&
             memcmp(e->meta[i], values[i].ptr, values[i].len) != 0)) {
            return false;
        }
    }
    return true;
}

/* The open batch of this meta, if any. */
static sc_batch_t *find_open(sc_flusher_t *f, const sc_view_t *values)
{
    sc_batch_t *b = f->dest[SC_DEST_TRACES].open.head;
    while (b != NULL && !meta_equal(b->enc, values)) {
        b = b->next;
    }
    return b;
}

/* An open trace batch for this meta (meta strings copied in one block). */
static sc_batch_t *new_trace_batch(sc_flusher_t *f, const sc_view_t *values)
{
    sc_batch_t *b = sc_batch_new(f, SC_DEST_TRACES);
    trace_enc_t *e = b != NULL ? calloc(1, sizeof *e) : NULL;
    size_t total = values[0].len + values[1].len + values[2].len + 3;
    char *block = e != NULL ? malloc(total) : NULL;
    if (block == NULL || !take_buffer(f, &e->merge.buf)) {
        free(block);
        free(e);
        free(b);
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        e->meta[i] = block;
        e->meta_len[i] = values[i].len;
        if (values[i].len > 0) {
            memcpy(block, values[i].ptr, values[i].len);
        }
        block[values[i].len] = '\0';
        block += values[i].len + 1;
    }
    b->enc = e;
    sc_batch_list_push(&f->dest[SC_DEST_TRACES].open, b);
    return b;
}

/* The open batch of this meta (`b`, or none), cut first when `elements`
 * more bytes (and `count` more traces) would take its body over the
 * limit. */
static sc_batch_t *open_batch(sc_flusher_t *f, sc_batch_t *b,
                              const sc_view_t *values, size_t elements,
                              uint32_t count)
{
    if (b != NULL) {
        const sc_msgpack_merge_t *m = &((trace_enc_t *)b->enc)->merge;
        if (count > UINT32_MAX - m->count ||
            sc_msgpack_array_header_size(m->count + count) +
                    sc_msgpack_merge_elements_size(m) + elements >
                f->cfg.max_body_bytes) {
            sc_flusher_cut(f, b);
            b = NULL;
        }
    }
    return b != NULL ? b : new_trace_batch(f, values);
}

int sc_flusher_submit_traces(sc_flusher_t *f, const sc_trace_meta_t *meta,
                             const uint8_t *msgpack, size_t len,
                             uint32_t trace_count)
{
    const sc_dest_t dest = SC_DEST_TRACES;
    sc_dest_state_t *d = &f->dest[dest];
    sc_view_t values[3] = {meta->lang, meta->lang_version,
                           meta->tracer_version};
    sc_msgpack_traces_t info;
    sc_msgpack_status_t st = sc_msgpack_check_traces(msgpack, len, &info);
    bool meta_ok = meta_value_ok(values[0]) && meta_value_ok(values[1]) &&
                   meta_value_ok(values[2]);
    /* A payload that is refused holds no trace we know of: its declared
     * trace_count is not counted anywhere (a hostile peer could inflate
     * every counter with it); the payload and its bytes are. */
    bool rejected = !meta_ok || st != SC_MSGPACK_OK;
    if (rejected) {
        trace_count = 0;
    }
    sc_flusher_count_submitted(f, dest, len, trace_count);
    if (f->closing) {
        return sc_flusher_refuse(f, dest, SC_DROP_SHUTDOWN, len, trace_count);
    }
    if (rejected) {
        SC_LOG_LIMITED(SC_LOG_WARN, "flusher: trace payload rejected: %s",
                       st != SC_MSGPACK_OK ? sc_msgpack_status_str(st)
                                           : "bad metadata");
        return sc_flusher_refuse(f, dest, SC_DROP_REJECTED_PAYLOAD, len, 0);
    }
    size_t elements = len - info.elements_offset;
    if (sc_msgpack_array_header_size(info.trace_count) + elements >
        f->cfg.max_body_bytes) {
        return sc_flusher_refuse(f, dest, SC_DROP_TOO_LARGE, len, trace_count);
    }
    if (!sc_flusher_make_room(f, dest,
                              elements + SC_MSGPACK_MAX_ARRAY_HEADER)) {
        return sc_flusher_refuse(f, dest, SC_DROP_BUFFER_FULL, len,
                                 trace_count);
    }
    /* Looked up after making room, which may evict open batches. */
    sc_batch_t *b =
        open_batch(f, find_open(f, values), values, elements, info.trace_count);
    if (b == NULL) {
        return sc_flusher_refuse(f, dest, SC_DROP_NO_MEMORY, len, trace_count);
    }
    trace_enc_t *e = b->enc;
    size_t before = e->merge.buf.len;
    if (!sc_msgpack_merge_add(&e->merge, msgpack, len, &info)) {
        if (b->payloads == 0) {
            sc_batch_discard(f, b);
        }
        return sc_flusher_refuse(f, dest, SC_DROP_NO_MEMORY, len, trace_count);
    }
    size_t added = e->merge.buf.len - before;
    b->bytes += added;
    b->payloads++;
    b->traces += trace_count;
    if (b->first_seq == 0) {
        b->first_seq = f->seq + 1;
    }
    f->seq++;
    sc_flusher_account(d, (int64_t)added, 1, trace_count);
    if (sc_msgpack_merge_elements_size(&e->merge) >= f->cfg.trace_flush_bytes) {
        sc_flusher_cut(f, b);
        sc_flusher_pump(f);
    }
    return 0;
}
