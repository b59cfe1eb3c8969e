#include "flusher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "msgpack.h"

#define META_VALUE_MAX      128
#define TRACES_RESPONSE_MAX (64u * 1024u)
#define EVP_RESPONSE_MAX    (4u * 1024u)
#define INFO_RESPONSE_MAX   (256u * 1024u)
/* During the final flush every queued batch may be in flight at once, up to
 * this many per destination, to beat the deadline. */
#define CLOSING_MAX_INFLIGHT 8
/* A failed /info is tried again after 1 s, doubling up to the interval. */
#define INFO_RETRY_MS 1000u

/* One request body: for traces, the merged payloads of one meta (first
 * "open" while payloads are appended, then cut); for EVP, one JSON body. */
typedef struct batch batch_t;
struct batch {
    batch_t *prev, *next;
    sc_flusher_t *f;
    sc_dest_t dest;
    char *meta[3];            /* traces: lang, lang version, tracer version */
    sc_msgpack_merge_t merge; /* traces */
    sc_buf_t json;            /* EVP */
    const uint8_t *body;      /* set when cut */
    size_t body_len;
    size_t bytes; /* counted against the destination's cap */
    uint64_t payloads, traces;
    uint64_t first_seq; /* oldest submission inside */
    uint32_t attempts;
    bool started; /* handed to libcurl at least once */
    bool inflight;
    uint64_t not_before; /* loop time (ms) of the next attempt */
    struct curl_slist *headers;
    sc_http_req_t req;
};

typedef struct batch_list {
    batch_t *head, *tail;
} batch_list_t;

typedef struct dest_state {
    batch_list_t open;  /* traces: one merge buffer per meta */
    batch_list_t queue; /* cut batches, oldest first */
    unsigned inflight;
    sc_dest_stats_t stats;
} dest_state_t;

typedef struct barrier barrier_t;
struct barrier {
    barrier_t *next;
    sc_flusher_t *f;
    uint64_t seq; /* everything up to this submission */
    bool satisfied;
    uv_timer_t timer;
    sc_flusher_barrier_cb cb;
    void *data;
};

struct sc_flusher {
    uv_loop_t *loop;
    sc_flusher_config_t cfg;
    sc_http_t *http;
    dest_state_t dest[SC_DEST_COUNT];
    uint64_t seq; /* last submission number given */
    uv_timer_t flush_timer, retry_timer, info_timer, close_timer;
    barrier_t *barriers;
    sc_flusher_hooks_t hooks;

    sc_http_req_t info_req;
    bool info_inflight;
    uint32_t info_failures;
    sc_agent_info_t info;
    sc_endpoint_stats_t info_stats;
    char *rates;
    size_t rates_len;

    bool closing;  /* final flush under way: submissions refused */
    bool stopping; /* tearing down: nothing new starts */
    unsigned open_handles;
    void (*close_cb)(sc_flusher_t *f, void *data);
    void *close_data;
};

static const char *const dest_names[SC_DEST_COUNT] = {
    "traces", "flagevaluations", "exposures"};
static const char *const drop_names[SC_DROP_REASON_COUNT] = {
    "rejected_payload", "too_large",     "buffer_full", "retries_exhausted",
    "client_error_4xx", "request_error", "shutdown",    "no_memory"};

const char *sc_dest_name(sc_dest_t dest)
{
    return dest < SC_DEST_COUNT ? dest_names[dest] : "unknown";
}

const char *sc_drop_reason_name(sc_drop_reason_t why)
{
    return why < SC_DROP_REASON_COUNT ? drop_names[why] : "unknown";
}

void sc_flusher_config_defaults(sc_flusher_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    sc_agent_addr_resolve(NULL, NULL, NULL, &cfg->agent);
    snprintf(cfg->path[SC_DEST_TRACES], SC_FLUSHER_PATH_MAX, "/v0.4/traces");
    snprintf(cfg->path[SC_DEST_FLAGEVALUATIONS], SC_FLUSHER_PATH_MAX,
             "/evp_proxy/v2/api/v2/flagevaluations");
    snprintf(cfg->path[SC_DEST_EXPOSURES], SC_FLUSHER_PATH_MAX,
             "/evp_proxy/v2/api/v2/exposures");
    cfg->flush_interval_ms = 1000;
    cfg->request_timeout_ms = 3000;
    cfg->info_interval_ms = 60000;
    cfg->retry_attempts = 5;
    cfg->retry_base_ms = 100;
    cfg->trace_flush_bytes = 1u << 20;
    cfg->max_body_bytes = 10u << 20;
    cfg->cap_bytes[SC_DEST_TRACES] = 32u << 20;
    cfg->cap_bytes[SC_DEST_FLAGEVALUATIONS] = 8u << 20;
    cfg->cap_bytes[SC_DEST_EXPOSURES] = 8u << 20;
    cfg->max_inflight = 2;
}

/* ---- lists and accounting --------------------------------------------------
 */

static void list_push(batch_list_t *l, batch_t *b)
{
    b->next = NULL;
    b->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = b;
    } else {
        l->head = b;
    }
    l->tail = b;
}

static void list_remove(batch_list_t *l, batch_t *b)
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        l->head = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    } else {
        l->tail = b->prev;
    }
    b->prev = b->next = NULL;
}

static void account(dest_state_t *d, int64_t bytes, int64_t payloads,
                    int64_t traces)
{
    d->stats.buffered_bytes += (uint64_t)bytes;
    d->stats.buffered_payloads += (uint64_t)payloads;
    d->stats.buffered_traces += (uint64_t)traces;
    if (d->stats.buffered_bytes > d->stats.buffered_bytes_max) {
        d->stats.buffered_bytes_max = d->stats.buffered_bytes;
    }
}

static void count_drop(dest_state_t *d, sc_drop_reason_t why, uint64_t payloads,
                       uint64_t traces, uint64_t bytes)
{
    d->stats.drops[why].payloads += payloads;
    d->stats.drops[why].traces += traces;
    d->stats.drops[why].bytes += bytes;
}

/* The batch leaves every list and the accounting, and is freed. */
static void batch_free(sc_flusher_t *f, batch_t *b, batch_list_t *list)
{
    dest_state_t *d = &f->dest[b->dest];
    list_remove(list, b);
    account(d, -(int64_t)b->bytes, -(int64_t)b->payloads, -(int64_t)b->traces);
    curl_slist_free_all(b->headers);
    sc_buf_free(&b->req.response);
    sc_msgpack_merge_free(&b->merge);
    sc_buf_free(&b->json);
    free(b->meta[0]);
    free(b);
}

static batch_list_t *list_of(sc_flusher_t *f, batch_t *b)
{
    return b->body != NULL ? &f->dest[b->dest].queue : &f->dest[b->dest].open;
}

static void drop_batch(sc_flusher_t *f, batch_t *b, sc_drop_reason_t why)
{
    dest_state_t *d = &f->dest[b->dest];
    count_drop(d, why, b->payloads, b->traces, b->bytes);
    SC_LOG_LIMITED(SC_LOG_WARN,
                   "flusher: dropped %s batch (%llu payloads, %zu bytes): %s",
                   dest_names[b->dest], (unsigned long long)b->payloads,
                   b->bytes, drop_names[why]);
    batch_free(f, b, list_of(f, b));
}

/* Evicts the oldest batches that are not in flight (queued ones first,
 * then open merge buffers, oldest content first) until `cost` more bytes
 * fit under the cap. False when they cannot. */
static bool make_room(sc_flusher_t *f, sc_dest_t dest, size_t cost)
{
    dest_state_t *d = &f->dest[dest];
    size_t cap = f->cfg.cap_bytes[dest];
    if (cost > cap) {
        return false;
    }
    while (d->stats.buffered_bytes + cost > cap) {
        batch_t *victim = d->queue.head;
        while (victim != NULL && victim->inflight) {
            victim = victim->next;
        }
        if (victim == NULL) {
            for (batch_t *b = d->open.head; b != NULL; b = b->next) {
                if (victim == NULL || b->first_seq < victim->first_seq) {
                    victim = b;
                }
            }
        }
        if (victim == NULL) {
            return false; /* all of it is in flight */
        }
        drop_batch(f, victim, SC_DROP_BUFFER_FULL);
    }
    return true;
}

/* ---- cutting and sending ---------------------------------------------------
 */

/* Moves an open trace batch to the send queue with its final body. */
static void cut(sc_flusher_t *f, batch_t *b)
{
    dest_state_t *d = &f->dest[b->dest];
    sc_buf_t *buf = &b->merge.buf;
    if (buf->cap > buf->len) { /* give back the growth slack */
        uint8_t *p = realloc(buf->data, buf->len);
        if (p != NULL) {
            buf->data = p;
            buf->cap = buf->len;
        }
    }
    b->body = sc_msgpack_merge_finish(&b->merge, &b->body_len);
    list_remove(&d->open, b);
    list_push(&d->queue, b);
}

static void cut_all(sc_flusher_t *f)
{
    dest_state_t *d = &f->dest[SC_DEST_TRACES];
    while (d->open.head != NULL) {
        cut(f, d->open.head);
    }
}

/* Appends "name: value" (or just `name` when value is NULL). */
static bool add_header(struct curl_slist **list, const char *name,
                       const char *value)
{
    char line[256];
    snprintf(line, sizeof line, "%s%s%s", name, value != NULL ? ": " : "",
             value != NULL ? value : "");
    struct curl_slist *l = curl_slist_append(*list, line);
    if (l == NULL) {
        return false;
    }
    *list = l;
    return true;
}

static bool build_headers(batch_t *b)
{
    struct curl_slist *h = NULL;
    /* "Expect:" stops curl from waiting for a 100-continue on big bodies. */
    bool ok = add_header(&h, "Expect:", NULL);
    if (b->dest == SC_DEST_TRACES) {
        char count[24];
        snprintf(count, sizeof count, "%llu", (unsigned long long)b->traces);
        static const char *const names[3] = {"Datadog-Meta-Lang",
                                             "Datadog-Meta-Lang-Version",
                                             "Datadog-Meta-Tracer-Version"};
        ok = ok && add_header(&h, "Content-Type", "application/msgpack");
        ok = ok && add_header(&h, "X-Datadog-Trace-Count", count);
        for (int i = 0; i < 3; i++) {
            /* An empty value would make curl remove the header. */
            if (b->meta[i][0] != '\0') {
                ok = ok && add_header(&h, names[i], b->meta[i]);
            }
        }
    } else {
        ok = ok && add_header(&h, "Content-Type", "application/json");
        ok = ok &&
             add_header(&h, "X-Datadog-EVP-Subdomain", "event-platform-intake");
    }
    if (!ok) {
        curl_slist_free_all(h);
        return false;
    }
    b->headers = h;
    return true;
}

static void on_batch_done(sc_http_req_t *req);

static void start_attempt(sc_flusher_t *f, batch_t *b)
{
    dest_state_t *d = &f->dest[b->dest];
    if (b->headers == NULL && !build_headers(b)) {
        d->stats.delivery.failed++;
        drop_batch(f, b, SC_DROP_NO_MEMORY);
        return;
    }
    char url[SC_AGENT_URL_MAX + SC_FLUSHER_PATH_MAX];
    snprintf(url, sizeof url, "%s%s", f->cfg.agent.url, f->cfg.path[b->dest]);
    sc_http_req_t *req = &b->req;
    req->method = b->dest == SC_DEST_TRACES ? "PUT" : "POST";
    req->url = url;
    req->unix_path = f->cfg.agent.unix_path;
    req->headers = b->headers;
    req->body = b->body;
    req->body_len = b->body_len;
    req->timeout_ms = f->cfg.request_timeout_ms;
    req->max_response =
        b->dest == SC_DEST_TRACES ? TRACES_RESPONSE_MAX : EVP_RESPONSE_MAX;
    req->on_done = on_batch_done;
    req->data = b;
    int rc = sc_http_start(f->http, req);
    if (rc != 0) {
        d->stats.delivery.failed++;
        drop_batch(f, b,
                   rc == UV_ENOMEM ? SC_DROP_NO_MEMORY : SC_DROP_REQUEST_ERROR);
        return;
    }
    b->attempts++;
    b->started = true;
    b->inflight = true;
    d->inflight++;
    d->stats.delivery.requests++;
}

/* The oldest submission not yet handed to libcurl (UINT64_MAX: none). */
static uint64_t oldest_unstarted(const sc_flusher_t *f)
{
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        const dest_state_t *d = &f->dest[i];
        for (const batch_t *b = d->open.head; b != NULL; b = b->next) {
            oldest = b->first_seq < oldest ? b->first_seq : oldest;
        }
        for (const batch_t *b = d->queue.head; b != NULL; b = b->next) {
            if (!b->started && b->first_seq < oldest) {
                oldest = b->first_seq;
            }
        }
    }
    return oldest;
}

static void on_barrier_timer(uv_timer_t *timer);

static void check_barriers(sc_flusher_t *f)
{
    if (f->barriers == NULL) {
        return;
    }
    uint64_t oldest = oldest_unstarted(f);
    for (barrier_t *w = f->barriers; w != NULL; w = w->next) {
        if (!w->satisfied && w->seq < oldest) {
            w->satisfied = true;
            /* Reported from the loop, never from inside a caller's call. */
            uv_timer_start(&w->timer, on_barrier_timer, 0, 0);
        }
    }
}

static void on_retry_timer(uv_timer_t *timer);

/* Starts every batch that may start now, and arms the retry timer for the
 * earliest one backing off. */
static void pump(sc_flusher_t *f)
{
    if (f->stopping) {
        return;
    }
    uint64_t now = uv_now(f->loop);
    uint64_t wake = UINT64_MAX;
    unsigned limit = f->closing ? CLOSING_MAX_INFLIGHT : f->cfg.max_inflight;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        dest_state_t *d = &f->dest[i];
        batch_t *next;
        for (batch_t *b = d->queue.head; b != NULL; b = next) {
            next = b->next;
            if (b->inflight) {
                continue;
            }
            if (b->not_before > now) {
                wake = b->not_before < wake ? b->not_before : wake;
                continue;
            }
            if (d->inflight >= limit) {
                break;
            }
            start_attempt(f, b);
        }
    }
    if (wake != UINT64_MAX) {
        uv_timer_start(&f->retry_timer, on_retry_timer, wake - now, 0);
    } else {
        uv_timer_stop(&f->retry_timer);
    }
    check_barriers(f);
}

static void on_retry_timer(uv_timer_t *timer)
{
    pump(timer->data);
}

static void on_flush_timer(uv_timer_t *timer)
{
    sc_flusher_t *f = timer->data;
    cut_all(f);
    pump(f);
}

static bool all_sent(const sc_flusher_t *f)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        if (f->dest[i].queue.head != NULL || f->dest[i].open.head != NULL) {
            return false;
        }
    }
    return true;
}

static void on_close_timer(uv_timer_t *timer);

/* During the final flush: once everything is answered, tear down from a
 * fresh loop callback (this may run inside libcurl's completion loop). */
static void maybe_drained(sc_flusher_t *f)
{
    if (f->closing && !f->stopping && all_sent(f)) {
        uv_timer_start(&f->close_timer, on_close_timer, 0, 0);
    }
}

static void keep_rates(sc_flusher_t *f, const sc_buf_t *response)
{
    const char *v;
    size_t len;
    if (!sc_json_member((const char *)response->data, response->len,
                        "rate_by_service", &v, &len) ||
        v[0] != '{') {
        return;
    }
    if (f->rates != NULL && f->rates_len == len &&
        memcmp(f->rates, v, len) == 0) {
        return;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return;
    }
    memcpy(copy, v, len);
    copy[len] = '\0';
    free(f->rates);
    f->rates = copy;
    f->rates_len = len;
    if (f->hooks.on_rates != NULL) {
        f->hooks.on_rates(f->rates, f->rates_len, f->hooks.data);
    }
}

static sc_drop_reason_t failure_reason(const sc_http_req_t *req)
{
    if (req->cancelled) {
        return SC_DROP_SHUTDOWN;
    }
    if (req->curl_code == CURLE_OK && req->status >= 400 && req->status < 500 &&
        !sc_http_retryable(req)) {
        return SC_DROP_CLIENT_ERROR_4XX;
    }
    return sc_http_retryable(req) ? SC_DROP_RETRIES_EXHAUSTED
                                  : SC_DROP_REQUEST_ERROR;
}

static void on_batch_done(sc_http_req_t *req)
{
    batch_t *b = req->data;
    sc_flusher_t *f = b->f;
    dest_state_t *d = &f->dest[b->dest];
    b->inflight = false;
    d->inflight--;
    bool ok =
        req->curl_code == CURLE_OK && req->status >= 200 && req->status < 300;
    if (ok) {
        d->stats.delivery.ok++;
        d->stats.delivery.bytes_sent += b->body_len;
        d->stats.delivered_payloads += b->payloads;
        d->stats.delivered_traces += b->traces;
        if (b->dest == SC_DEST_TRACES) {
            keep_rates(f, &req->response);
        }
        batch_free(f, b, &d->queue);
    } else if (sc_http_retryable(req) && b->attempts < f->cfg.retry_attempts &&
               !f->stopping) {
        uint32_t shift = b->attempts - 1 < 16 ? b->attempts - 1 : 16;
        b->not_before =
            uv_now(f->loop) + ((uint64_t)f->cfg.retry_base_ms << shift);
        d->stats.delivery.retried++;
        sc_buf_free(&req->response);
        char why[128];
        SC_LOG_LIMITED(SC_LOG_INFO, "flusher: %s attempt %u failed (%s), retry",
                       dest_names[b->dest], b->attempts,
                       sc_http_outcome(req, why, sizeof why));
    } else {
        char why[128];
        SC_LOG_LIMITED(SC_LOG_WARN, "flusher: %s request failed: %s",
                       dest_names[b->dest],
                       sc_http_outcome(req, why, sizeof why));
        d->stats.delivery.failed++;
        drop_batch(f, b, failure_reason(req));
    }
    pump(f);
    maybe_drained(f);
}

/* ---- submissions -----------------------------------------------------------
 */

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

static bool meta_equal(const batch_t *b, const sc_view_t *values)
{
    for (int i = 0; i < 3; i++) {
        if (strlen(b->meta[i]) != values[i].len ||
            (values[i].len > 0 &&
             memcmp(b->meta[i], values[i].ptr, values[i].len) != 0)) {
            return false;
        }
    }
    return true;
}

static batch_t *new_batch(sc_flusher_t *f, sc_dest_t dest)
{
    batch_t *b = calloc(1, sizeof *b);
    if (b != NULL) {
        b->f = f;
        b->dest = dest;
    }
    return b;
}

/* An open trace batch for this meta (meta strings copied in one block). */
static batch_t *new_trace_batch(sc_flusher_t *f, const sc_view_t *values)
{
    batch_t *b = new_batch(f, SC_DEST_TRACES);
    size_t total = values[0].len + values[1].len + values[2].len + 3;
    char *block = b != NULL ? malloc(total) : NULL;
    if (block == NULL) {
        free(b);
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        b->meta[i] = block;
        if (values[i].len > 0) {
            memcpy(block, values[i].ptr, values[i].len);
        }
        block[values[i].len] = '\0';
        block += values[i].len + 1;
    }
    list_push(&f->dest[SC_DEST_TRACES].open, b);
    return b;
}

static int refuse(sc_flusher_t *f, sc_dest_t dest, sc_drop_reason_t why,
                  size_t len, uint32_t traces)
{
    count_drop(&f->dest[dest], why, 1, traces, len);
    SC_LOG_LIMITED(SC_LOG_WARN, "flusher: %s submission of %zu bytes: %s",
                   dest_names[dest], len, drop_names[why]);
    switch (why) {
    case SC_DROP_REJECTED_PAYLOAD:
        return UV_EINVAL;
    case SC_DROP_TOO_LARGE:
        return UV_E2BIG;
    case SC_DROP_BUFFER_FULL:
        return UV_ENOBUFS;
    case SC_DROP_SHUTDOWN:
        return UV_ECANCELED;
    default:
        return UV_ENOMEM;
    }
}

int sc_flusher_submit_traces(sc_flusher_t *f, const sc_trace_meta_t *meta,
                             const uint8_t *msgpack, size_t len,
                             uint32_t trace_count)
{
    dest_state_t *d = &f->dest[SC_DEST_TRACES];
    sc_view_t values[3] = {meta->lang, meta->lang_version,
                           meta->tracer_version};
    sc_msgpack_traces_t info;
    sc_msgpack_status_t st = sc_msgpack_check_traces(msgpack, len, &info);
    /* A payload that does not parse holds no trace we know of: its
     * declared trace_count is not counted anywhere (a hostile peer could
     * inflate every counter with it); the payload and its bytes are. */
    bool rejected = !meta_value_ok(values[0]) || !meta_value_ok(values[1]) ||
                    !meta_value_ok(values[2]) || st != SC_MSGPACK_OK;
    if (rejected) {
        trace_count = 0;
    }
    d->stats.submitted_payloads++;
    d->stats.submitted_traces += trace_count;
    d->stats.submitted_bytes += len;
    if (f->closing) {
        return refuse(f, SC_DEST_TRACES, SC_DROP_SHUTDOWN, len, trace_count);
    }
    if (rejected) {
        SC_LOG_LIMITED(SC_LOG_WARN, "flusher: trace payload rejected: %s",
                       st != SC_MSGPACK_OK ? sc_msgpack_status_str(st)
                                           : "bad metadata");
        return refuse(f, SC_DEST_TRACES, SC_DROP_REJECTED_PAYLOAD, len, 0);
    }
    size_t elements = len - info.elements_offset;
    if (sc_msgpack_array_header_size(info.trace_count) + elements >
        f->cfg.max_body_bytes) {
        return refuse(f, SC_DEST_TRACES, SC_DROP_TOO_LARGE, len, trace_count);
    }
    if (!make_room(f, SC_DEST_TRACES, elements + SC_MSGPACK_MAX_ARRAY_HEADER)) {
        return refuse(f, SC_DEST_TRACES, SC_DROP_BUFFER_FULL, len, trace_count);
    }
    batch_t *b = d->open.head;
    while (b != NULL && !meta_equal(b, values)) {
        b = b->next;
    }
    if (b != NULL &&
        (info.trace_count > UINT32_MAX - b->merge.count ||
         sc_msgpack_array_header_size(b->merge.count + info.trace_count) +
                 sc_msgpack_merge_elements_size(&b->merge) + elements >
             f->cfg.max_body_bytes)) {
        cut(f, b); /* this payload would make the body too large */
        b = NULL;
    }
    if (b == NULL && (b = new_trace_batch(f, values)) == NULL) {
        return refuse(f, SC_DEST_TRACES, SC_DROP_NO_MEMORY, len, trace_count);
    }
    size_t before = b->merge.buf.len;
    if (!sc_msgpack_merge_add(&b->merge, msgpack, len, &info)) {
        if (b->payloads == 0) {
            batch_free(f, b, &d->open);
        }
        return refuse(f, SC_DEST_TRACES, SC_DROP_NO_MEMORY, len, trace_count);
    }
    size_t added = b->merge.buf.len - before;
    b->bytes += added;
    b->payloads++;
    b->traces += trace_count;
    if (b->first_seq == 0) {
        b->first_seq = f->seq + 1;
    }
    f->seq++;
    account(d, (int64_t)added, 1, trace_count);
    if (sc_msgpack_merge_elements_size(&b->merge) >= f->cfg.trace_flush_bytes) {
        cut(f, b);
        pump(f);
    }
    return 0;
}

int sc_flusher_submit_evp(sc_flusher_t *f, sc_dest_t dest, const void *json,
                          size_t len)
{
    if (dest != SC_DEST_FLAGEVALUATIONS && dest != SC_DEST_EXPOSURES) {
        return UV_EINVAL;
    }
    dest_state_t *d = &f->dest[dest];
    d->stats.submitted_payloads++;
    d->stats.submitted_bytes += len;
    if (f->closing) {
        return refuse(f, dest, SC_DROP_SHUTDOWN, len, 0);
    }
    if (len == 0) {
        return refuse(f, dest, SC_DROP_REJECTED_PAYLOAD, len, 0);
    }
    if (len > f->cfg.max_body_bytes) {
        return refuse(f, dest, SC_DROP_TOO_LARGE, len, 0);
    }
    if (!make_room(f, dest, len)) {
        return refuse(f, dest, SC_DROP_BUFFER_FULL, len, 0);
    }
    batch_t *b = new_batch(f, dest);
    if (b == NULL || !sc_buf_append(&b->json, json, len)) {
        free(b);
        return refuse(f, dest, SC_DROP_NO_MEMORY, len, 0);
    }
    b->body = b->json.data;
    b->body_len = len;
    b->bytes = len;
    b->payloads = 1;
    b->first_seq = ++f->seq;
    list_push(&d->queue, b);
    account(d, (int64_t)len, 1, 0);
    pump(f);
    return 0;
}

void sc_flusher_flush_now(sc_flusher_t *f)
{
    cut_all(f);
    pump(f);
}

/* ---- barrier ----------------------------------------------------------------
 */

static void on_barrier_closed(uv_handle_t *handle);

static void finish_barrier(barrier_t *w, int status)
{
    sc_flusher_t *f = w->f;
    for (barrier_t **p = &f->barriers; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
    w->cb(status, w->data);
    uv_close((uv_handle_t *)&w->timer, on_barrier_closed);
}

static void on_barrier_timer(uv_timer_t *timer)
{
    barrier_t *w = timer->data;
    finish_barrier(w, w->satisfied ? 0 : UV_ETIMEDOUT);
}

int sc_flusher_barrier(sc_flusher_t *f, uint32_t timeout_ms,
                       sc_flusher_barrier_cb cb, void *data)
{
    if (f->closing) {
        return UV_ECANCELED;
    }
    barrier_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->f = f;
    w->seq = f->seq;
    w->cb = cb;
    w->data = data;
    uv_timer_init(f->loop, &w->timer);
    w->timer.data = w;
    f->open_handles++;
    w->next = f->barriers;
    f->barriers = w;
    sc_flusher_flush_now(f); /* may satisfy it at once */
    if (!w->satisfied) {
        uv_timer_start(&w->timer, on_barrier_timer, timeout_ms, 0);
    }
    return 0;
}

/* ---- /info ------------------------------------------------------------------
 */

static void on_info_timer(uv_timer_t *timer);

static void on_info_done(sc_http_req_t *req)
{
    sc_flusher_t *f = req->data;
    f->info_inflight = false;
    if (req->cancelled) {
        sc_buf_free(&req->response);
        return;
    }
    bool ok = req->curl_code == CURLE_OK && req->status == 200 &&
              sc_agent_info_parse((const char *)req->response.data,
                                  req->response.len, &f->info);
    sc_buf_free(&req->response);
    uint64_t next = f->cfg.info_interval_ms;
    if (ok) {
        uv_timeval64_t now;
        uv_gettimeofday(&now);
        f->info.fetched_ms = now.tv_sec * 1000 + now.tv_usec / 1000;
        f->info_stats.ok++;
        f->info_failures = 0;
        if (f->hooks.on_agent_info != NULL) {
            f->hooks.on_agent_info(&f->info, f->hooks.data);
        }
    } else {
        char why[128];
        SC_LOG_LIMITED(SC_LOG_INFO, "flusher: GET /info failed: %s",
                       req->curl_code == CURLE_OK && req->status == 200
                           ? "not a JSON object"
                           : sc_http_outcome(req, why, sizeof why));
        f->info_stats.failed++;
        uint32_t shift = f->info_failures < 16 ? f->info_failures : 16;
        f->info_failures++;
        uint64_t retry = (uint64_t)INFO_RETRY_MS << shift;
        if (retry < next) {
            next = retry;
            f->info_stats.retried++;
        }
    }
    if (!f->closing && f->cfg.info_interval_ms > 0) {
        uv_timer_start(&f->info_timer, on_info_timer, next, 0);
    }
}

static void fetch_info(sc_flusher_t *f)
{
    if (f->info_inflight || f->closing) {
        return;
    }
    char url[SC_AGENT_URL_MAX + 8];
    snprintf(url, sizeof url, "%s/info", f->cfg.agent.url);
    sc_http_req_t *req = &f->info_req;
    req->method = "GET";
    req->url = url;
    req->unix_path = f->cfg.agent.unix_path;
    req->headers = NULL;
    req->body = NULL;
    req->body_len = 0;
    req->timeout_ms = f->cfg.request_timeout_ms;
    req->max_response = INFO_RESPONSE_MAX;
    req->on_done = on_info_done;
    req->data = f;
    if (sc_http_start(f->http, req) == 0) {
        f->info_inflight = true;
        f->info_stats.requests++;
    } else {
        f->info_stats.failed++;
        uv_timer_start(&f->info_timer, on_info_timer, INFO_RETRY_MS, 0);
    }
}

static void on_info_timer(uv_timer_t *timer)
{
    fetch_info(timer->data);
}

/* ---- lifecycle --------------------------------------------------------------
 */

static void init_timer(sc_flusher_t *f, uv_timer_t *t)
{
    uv_timer_init(f->loop, t);
    t->data = f;
    f->open_handles++;
}

static void start_flush_timer(sc_flusher_t *f)
{
    uint64_t every =
        f->cfg.flush_interval_ms > 0 ? f->cfg.flush_interval_ms : 1;
    uv_timer_start(&f->flush_timer, on_flush_timer, every, every);
}

int sc_flusher_new(uv_loop_t *loop, const sc_flusher_config_t *cfg,
                   sc_flusher_t **out)
{
    sc_flusher_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return UV_ENOMEM;
    }
    int rc = sc_http_new(loop, &f->http);
    if (rc != 0) {
        free(f);
        return rc;
    }
    f->loop = loop;
    f->cfg = *cfg;
    init_timer(f, &f->flush_timer);
    init_timer(f, &f->retry_timer);
    init_timer(f, &f->info_timer);
    init_timer(f, &f->close_timer);
    start_flush_timer(f);
    if (cfg->info_interval_ms > 0) {
        uv_timer_start(&f->info_timer, on_info_timer, 0, 0);
    }
    *out = f;
    return 0;
}

void sc_flusher_reconfigure(sc_flusher_t *f, const sc_flusher_config_t *cfg)
{
    if (f->closing) {
        return;
    }
    bool new_agent = strcmp(f->cfg.agent.url, cfg->agent.url) != 0 ||
                     strcmp(f->cfg.agent.unix_path, cfg->agent.unix_path) != 0;
    bool new_interval = f->cfg.flush_interval_ms != cfg->flush_interval_ms;
    f->cfg = *cfg;
    if (new_interval) {
        start_flush_timer(f);
    }
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        make_room(f, (sc_dest_t)i, 0); /* a lower cap evicts now */
    }
    if (cfg->info_interval_ms == 0) {
        uv_timer_stop(&f->info_timer);
    } else if (new_agent) {
        uv_timer_start(&f->info_timer, on_info_timer, 0, 0);
    }
    pump(f);
}

void sc_flusher_set_hooks(sc_flusher_t *f, const sc_flusher_hooks_t *hooks)
{
    f->hooks = *hooks;
}

static void finish_close(sc_flusher_t *f)
{
    if (f->open_handles > 0 || f->http != NULL) {
        return;
    }
    if (f->close_cb != NULL) {
        f->close_cb(f, f->close_data);
    }
    sc_agent_info_free(&f->info);
    free(f->rates);
    free(f);
}

static void on_handle_closed(uv_handle_t *handle)
{
    sc_flusher_t *f = handle->data;
    f->open_handles--;
    finish_close(f);
}

static void on_barrier_closed(uv_handle_t *handle)
{
    barrier_t *w = handle->data;
    sc_flusher_t *f = w->f;
    free(w);
    f->open_handles--;
    finish_close(f);
}

static void on_http_closed(void *data)
{
    sc_flusher_t *f = data;
    f->http = NULL;
    finish_close(f);
}

/* The deadline passed, or everything was answered: whatever is left is
 * dropped, every handle closed. */
static void teardown(sc_flusher_t *f)
{
    f->stopping = true;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        dest_state_t *d = &f->dest[i];
        while (d->queue.head != NULL) {
            batch_t *b = d->queue.head;
            if (b->inflight) {
                sc_http_cancel(&b->req); /* on_batch_done drops it */
            } else {
                drop_batch(f, b, SC_DROP_SHUTDOWN);
            }
        }
        while (d->open.head != NULL) {
            drop_batch(f, d->open.head, SC_DROP_SHUTDOWN);
        }
    }
    while (f->barriers != NULL) {
        finish_barrier(f->barriers, UV_ECANCELED);
    }
    uv_close((uv_handle_t *)&f->flush_timer, on_handle_closed);
    uv_close((uv_handle_t *)&f->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&f->info_timer, on_handle_closed);
    uv_close((uv_handle_t *)&f->close_timer, on_handle_closed);
    sc_http_close(f->http, on_http_closed, f);
}

static void on_close_timer(uv_timer_t *timer)
{
    teardown(timer->data);
}

void sc_flusher_close(sc_flusher_t *f, uint32_t deadline_ms,
                      void (*cb)(sc_flusher_t *f, void *data), void *data)
{
    if (f->closing) {
        return;
    }
    f->closing = true;
    f->close_cb = cb;
    f->close_data = data;
    uv_timer_stop(&f->flush_timer);
    uv_timer_stop(&f->info_timer);
    if (f->info_inflight) {
        sc_http_cancel(&f->info_req);
    }
    cut_all(f);
    uv_timer_start(&f->close_timer, on_close_timer, deadline_ms, 0);
    pump(f);
    maybe_drained(f);
}

/* ---- reading the state ------------------------------------------------------
 */

void sc_flusher_get_stats(const sc_flusher_t *f, sc_flusher_stats_t *out)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        out->dest[i] = f->dest[i].stats;
    }
    out->info = f->info_stats;
}

const sc_agent_info_t *sc_flusher_agent_info(const sc_flusher_t *f)
{
    return &f->info;
}

const sc_flusher_config_t *sc_flusher_config(const sc_flusher_t *f)
{
    return &f->cfg;
}

const char *sc_flusher_rates(const sc_flusher_t *f, size_t *len)
{
    *len = f->rates_len;
    return f->rates;
}
