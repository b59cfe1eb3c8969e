/* The delivery engine: per destination, a queue of request bodies under a
 * byte cap, sent by libcurl with retries, every byte that is not delivered
 * counted as a drop. Destination behaviour comes from sc_dest_defs. */
#include "flusher_internal.h"
#include "ledger.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- last outcomes (for people: sidecar status) -------------------------- */

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    return uv_gettimeofday(&tv) == 0 ? tv.tv_sec * 1000 + tv.tv_usec / 1000 : 0;
}

void sc_endpoint_note_ok(sc_endpoint_stats_t *e)
{
    e->last_ok_ms = wall_ms();
}

const char *sc_endpoint_note_error(sc_endpoint_stats_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->last_error, sizeof e->last_error, fmt, ap);
    va_end(ap);
    e->last_error_ms = wall_ms();
    return e->last_error;
}

const char *sc_flusher_describe_request(const sc_flusher_t *f,
                                        const char *method, const char *path,
                                        char *out, size_t size)
{
    const sc_agent_addr_t *a = &f->cfg.agent;
    if (a->unix_path[0] != '\0') {
        snprintf(out, size, "%s %s%s (unix://%s)", method, a->url, path,
                 a->unix_path);
    } else {
        snprintf(out, size, "%s %s%s", method, a->url, path);
    }
    return out;
}

/* ---- lists and accounting ---------------------------------------------- */

void sc_batch_list_push(sc_batch_list_t *l, sc_batch_t *b)
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

static void list_remove(sc_batch_list_t *l, sc_batch_t *b)
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

void sc_flusher_account(sc_dest_state_t *d, int64_t bytes, int64_t payloads,
                        int64_t traces)
{
    d->stats.buffered_bytes += (uint64_t)bytes;
    d->stats.buffered_payloads += (uint64_t)payloads;
    d->stats.buffered_traces += (uint64_t)traces;
    if (d->held != NULL) {
        d->held->payloads += (uint64_t)payloads;
        if (d->held_items) { /* other destinations count other items */
            d->held->traces += (uint64_t)traces;
        }
    }
    if (d->stats.buffered_bytes > d->stats.buffered_bytes_max) {
        d->stats.buffered_bytes_max = d->stats.buffered_bytes;
    }
}

void sc_flusher_set_ledger(sc_flusher_t *f, struct sc_ledger_held *held)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        f->dest[i].held = held;
        f->dest[i].held_items = sc_dest_defs[i].ledger_items;
    }
}

static void count_drop(sc_dest_state_t *d, sc_drop_reason_t why,
                       uint64_t payloads, uint64_t traces, uint64_t bytes)
{
    d->stats.drops[why].payloads += payloads;
    d->stats.drops[why].traces += traces;
    d->stats.drops[why].bytes += bytes;
}

sc_batch_t *sc_batch_new(sc_flusher_t *f, sc_dest_t dest)
{
    sc_batch_t *b = calloc(1, sizeof *b);
    if (b != NULL) {
        b->f = f;
        b->dest = dest;
    }
    return b;
}

static sc_batch_list_t *list_of(sc_flusher_t *f, sc_batch_t *b)
{
    return b->body != NULL ? &f->dest[b->dest].queue : &f->dest[b->dest].open;
}

/* The batch leaves its list and the accounting, and is freed. */
static void batch_free(sc_flusher_t *f, sc_batch_t *b)
{
    sc_dest_state_t *d = &f->dest[b->dest];
    list_remove(list_of(f, b), b);
    sc_flusher_account(d, -(int64_t)b->bytes, -(int64_t)b->payloads,
                       -(int64_t)b->traces);
    if (b->started && d->held != NULL) {
        d->held->sent_payloads -= b->payloads;
        d->held->sent_traces -= d->held_items ? b->traces : 0;
    }
    curl_slist_free_all(b->headers);
    sc_buf_free(&b->req.response);
    if (sc_dest_defs[b->dest].release != NULL) {
        sc_dest_defs[b->dest].release(b);
    }
    sc_buf_free(&b->owned);
    free(b);
}

void sc_batch_discard(sc_flusher_t *f, sc_batch_t *b)
{
    batch_free(f, b);
}

static void drop_batch(sc_flusher_t *f, sc_batch_t *b, sc_drop_reason_t why)
{
    count_drop(&f->dest[b->dest], why, b->payloads, b->traces, b->bytes);
    SC_LOG_LIMITED(SC_LOG_WARN,
                   "flusher: dropped %s batch (%llu payloads, %zu bytes): %s",
                   sc_dest_name(b->dest), (unsigned long long)b->payloads,
                   b->bytes, sc_drop_reason_name(why));
    batch_free(f, b);
}

/* Queued batches not in flight go first, then open batches, oldest
 * content first. */
bool sc_flusher_make_room(sc_flusher_t *f, sc_dest_t dest, size_t cost)
{
    sc_dest_state_t *d = &f->dest[dest];
    size_t cap = f->cfg.cap_bytes[dest];
    if (cost > cap) {
        return false;
    }
    while (d->stats.buffered_bytes + cost > cap) {
        sc_batch_t *victim = d->queue.head;
        while (victim != NULL && victim->inflight) {
            victim = victim->next;
        }
        if (victim == NULL) {
            for (sc_batch_t *b = d->open.head; b != NULL; b = b->next) {
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

void sc_flusher_count_submitted(sc_flusher_t *f, sc_dest_t dest, size_t len,
                                uint32_t traces)
{
    sc_dest_stats_t *s = &f->dest[dest].stats;
    s->submitted_payloads++;
    s->submitted_traces += traces;
    s->submitted_bytes += len;
}

int sc_flusher_refuse(sc_flusher_t *f, sc_dest_t dest, sc_drop_reason_t why,
                      size_t len, uint32_t traces)
{
    count_drop(&f->dest[dest], why, 1, traces, len);
    SC_LOG_LIMITED(SC_LOG_WARN, "flusher: %s submission of %zu bytes: %s",
                   sc_dest_name(dest), len, sc_drop_reason_name(why));
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

/* ---- cutting and sending ------------------------------------------------ */

void sc_flusher_cut(sc_flusher_t *f, sc_batch_t *b)
{
    sc_dest_state_t *d = &f->dest[b->dest];
    sc_dest_defs[b->dest].finish(b);
    list_remove(&d->open, b);
    sc_batch_list_push(&d->queue, b);
}

void sc_flusher_cut_all(sc_flusher_t *f)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        while (f->dest[i].open.head != NULL) {
            sc_flusher_cut(f, f->dest[i].open.head);
        }
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

static bool build_headers(sc_batch_t *b)
{
    const sc_dest_def_t *def = &sc_dest_defs[b->dest];
    struct curl_slist *h = NULL;
    /* "Expect:" stops curl from waiting for a 100-continue on big bodies. */
    bool ok = add_header(&h, "Expect:", NULL) &&
              add_header(&h, "Content-Type", def->content_type) &&
              (def->add_headers == NULL || def->add_headers(b, &h));
    if (!ok) {
        curl_slist_free_all(h);
        return false;
    }
    b->headers = h;
    return true;
}

static void on_batch_done(sc_http_req_t *req);

static void start_attempt(sc_flusher_t *f, sc_batch_t *b)
{
    const sc_dest_def_t *def = &sc_dest_defs[b->dest];
    sc_dest_state_t *d = &f->dest[b->dest];
    if (b->headers == NULL && !build_headers(b)) {
        d->stats.delivery.failed++;
        drop_batch(f, b, SC_DROP_NO_MEMORY);
        return;
    }
    char url[SC_AGENT_URL_MAX + SC_FLUSHER_PATH_MAX];
    snprintf(url, sizeof url, "%s%s", f->cfg.agent.url, f->cfg.path[b->dest]);
    sc_http_req_t *req = &b->req;
    req->method = def->method;
    req->url = url;
    req->unix_path = f->cfg.agent.unix_path;
    req->headers = b->headers;
    req->body = b->body;
    req->body_len = b->body_len;
    req->timeout_ms = f->cfg.request_timeout_ms;
    req->max_response = def->max_response;
    req->on_done = on_batch_done;
    req->data = b;
    int rc = sc_http_start(f->http, req);
    if (rc != 0) {
        char what[SC_AGENT_URL_MAX + SC_FLUSHER_PATH_MAX + 140];
        sc_endpoint_note_error(&d->stats.delivery, "%s could not start: %s",
                               sc_flusher_describe_request(f, def->method,
                                                           f->cfg.path[b->dest],
                                                           what, sizeof what),
                               uv_strerror(rc));
        d->stats.delivery.failed++;
        drop_batch(f, b,
                   rc == UV_ENOMEM ? SC_DROP_NO_MEMORY : SC_DROP_REQUEST_ERROR);
        return;
    }
    b->attempts++;
    if (!b->started && d->held != NULL) {
        /* From now on the agent may have it, whatever we hear back. */
        d->held->sent_payloads += b->payloads;
        d->held->sent_traces += d->held_items ? b->traces : 0;
    }
    b->started = true;
    b->inflight = true;
    d->inflight++;
    d->stats.delivery.requests++;
}

static void on_retry_timer(uv_timer_t *timer)
{
    sc_flusher_pump(timer->data);
}

void sc_flusher_pump(sc_flusher_t *f)
{
    if (f->stopping) {
        return;
    }
    uint64_t now = uv_now(f->loop);
    uint64_t wake = UINT64_MAX;
    unsigned limit =
        f->closing ? SC_FLUSHER_CLOSING_MAX_INFLIGHT : f->cfg.max_inflight;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        sc_dest_state_t *d = &f->dest[i];
        bool in_order = sc_dest_defs[i].in_order;
        sc_batch_t *next;
        for (sc_batch_t *b = d->queue.head; b != NULL; b = next) {
            next = b->next;
            if (b->inflight) {
                if (in_order) {
                    break;
                }
                continue;
            }
            if (b->not_before > now) {
                wake = b->not_before < wake ? b->not_before : wake;
                if (in_order) {
                    break;
                }
                continue;
            }
            if (d->inflight >= (in_order ? 1u : limit)) {
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
    sc_flusher_check_barriers(f);
}

bool sc_flusher_all_sent(const sc_flusher_t *f)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        if (f->dest[i].queue.head != NULL || f->dest[i].open.head != NULL) {
            return false;
        }
    }
    return true;
}

void sc_flusher_maybe_drained(sc_flusher_t *f)
{
    if (f->closing && !f->stopping && sc_flusher_all_sent(f)) {
        sc_flusher_on_drained(f);
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

/* Records a failed attempt of `b` in its destination's stats; returns the
 * message ("PUT http://.../v0.4/traces failed: why"), kept there. */
static const char *note_failure(sc_flusher_t *f, const sc_batch_t *b,
                                const sc_http_req_t *req)
{
    char why[128], what[SC_AGENT_URL_MAX + SC_FLUSHER_PATH_MAX + 140];
    return sc_endpoint_note_error(
        &f->dest[b->dest].stats.delivery, "%s failed: %s",
        sc_flusher_describe_request(f, sc_dest_defs[b->dest].method,
                                    f->cfg.path[b->dest], what, sizeof what),
        sc_http_outcome(req, why, sizeof why));
}

static void on_batch_done(sc_http_req_t *req)
{
    sc_batch_t *b = req->data;
    sc_flusher_t *f = b->f;
    sc_dest_state_t *d = &f->dest[b->dest];
    const sc_dest_def_t *def = &sc_dest_defs[b->dest];
    b->inflight = false;
    d->inflight--;
    if (req->curl_code == CURLE_OK && req->status >= 200 && req->status < 300) {
        sc_endpoint_note_ok(&d->stats.delivery);
        d->stats.delivery.ok++;
        d->stats.delivery.bytes_sent += b->body_len;
        d->stats.delivered_payloads += b->payloads;
        d->stats.delivered_traces += b->traces;
        if (def->on_ok != NULL) {
            def->on_ok(f, &req->response);
        }
        batch_free(f, b);
    } else if (sc_http_retryable(req) && b->attempts < f->cfg.retry_attempts &&
               !f->stopping) {
        uint32_t shift = b->attempts - 1 < 16 ? b->attempts - 1 : 16;
        b->not_before =
            uv_now(f->loop) + ((uint64_t)f->cfg.retry_base_ms << shift);
        d->stats.delivery.retried++;
        sc_buf_free(&req->response);
        SC_LOG_LIMITED(SC_LOG_INFO, "flusher: %s (attempt %u), retry",
                       note_failure(f, b, req), b->attempts);
    } else {
        SC_LOG_LIMITED(SC_LOG_WARN, "flusher: %s", note_failure(f, b, req));
        d->stats.delivery.failed++;
        drop_batch(f, b, failure_reason(req));
    }
    sc_flusher_pump(f);
    sc_flusher_maybe_drained(f);
}

void sc_flusher_drop_all(sc_flusher_t *f)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        sc_dest_state_t *d = &f->dest[i];
        while (d->queue.head != NULL) {
            sc_batch_t *b = d->queue.head;
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
}

void sc_flusher_flush_now(sc_flusher_t *f)
{
    sc_flusher_cut_all(f);
    sc_flusher_pump(f);
}

void sc_flusher_get_stats(const sc_flusher_t *f, sc_flusher_stats_t *out)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        out->dest[i] = f->dest[i].stats;
    }
    out->info = f->info_stats;
}
