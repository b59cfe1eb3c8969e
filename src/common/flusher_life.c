/* A flusher's life: creation, reconfiguration, barriers (what Flush waits
 * for), the final flush and close (docs/delivery.md, "Barrier, flush,
 * close"). */
#include "flusher_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- barriers ------------------------------------------------------------ */

static void on_barrier_closed(uv_handle_t *handle);

static void finish_barrier(sc_barrier_t *w, int status)
{
    sc_flusher_t *f = w->f;
    for (sc_barrier_t **p = &f->barriers; *p != NULL; p = &(*p)->next) {
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
    sc_barrier_t *w = timer->data;
    finish_barrier(w, w->satisfied ? 0 : UV_ETIMEDOUT);
}

/* The oldest submission not yet handed to libcurl (UINT64_MAX: none). */
static uint64_t oldest_unstarted(const sc_flusher_t *f)
{
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        const sc_dest_state_t *d = &f->dest[i];
        for (const sc_batch_t *b = d->open.head; b != NULL; b = b->next) {
            oldest = b->first_seq < oldest ? b->first_seq : oldest;
        }
        for (const sc_batch_t *b = d->queue.head; b != NULL; b = b->next) {
            if (!b->started && b->first_seq < oldest) {
                oldest = b->first_seq;
            }
        }
    }
    return oldest;
}

/* The oldest submission not yet delivered or dropped (UINT64_MAX: none):
 * started batches count until their last attempt ends. */
static uint64_t oldest_unsettled(const sc_flusher_t *f)
{
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        const sc_dest_state_t *d = &f->dest[i];
        const sc_batch_list_t *lists[] = {&d->open, &d->queue};
        for (int l = 0; l < 2; l++) {
            for (const sc_batch_t *b = lists[l]->head; b != NULL; b = b->next) {
                oldest = b->first_seq < oldest ? b->first_seq : oldest;
            }
        }
    }
    return oldest;
}

void sc_flusher_check_barriers(sc_flusher_t *f)
{
    if (f->barriers == NULL) {
        return;
    }
    uint64_t unstarted = oldest_unstarted(f);
    uint64_t unsettled = oldest_unsettled(f);
    for (sc_barrier_t *w = f->barriers; w != NULL; w = w->next) {
        uint64_t oldest = w->until_settled ? unsettled : unstarted;
        if (!w->satisfied && w->seq < oldest) {
            w->satisfied = true;
            /* Reported from the loop, never from inside a caller's call. */
            uv_timer_start(&w->timer, on_barrier_timer, 0, 0);
        }
    }
}

bool sc_flusher_barrier_reached(sc_flusher_t *f)
{
    if (f->closing) {
        return false;
    }
    sc_flusher_flush_now(f);
    return f->seq < oldest_unstarted(f); /* what sc_flusher_barrier waits
                                            for, already true */
}

static int add_barrier(sc_flusher_t *f, uint32_t timeout_ms, bool until_settled,
                       sc_flusher_barrier_cb cb, void *data);

int sc_flusher_barrier(sc_flusher_t *f, uint32_t timeout_ms,
                       sc_flusher_barrier_cb cb, void *data)
{
    return add_barrier(f, timeout_ms, false, cb, data);
}

int sc_flusher_barrier_settled(sc_flusher_t *f, uint32_t timeout_ms,
                               sc_flusher_barrier_cb cb, void *data)
{
    return add_barrier(f, timeout_ms, true, cb, data);
}

static int add_barrier(sc_flusher_t *f, uint32_t timeout_ms, bool until_settled,
                       sc_flusher_barrier_cb cb, void *data)
{
    if (f->closing) {
        return UV_ECANCELED;
    }
    sc_barrier_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return UV_ENOMEM;
    }
    w->f = f;
    w->seq = f->seq;
    w->until_settled = until_settled;
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

/* ---- creation and settings ----------------------------------------------- */

static void init_timer(sc_flusher_t *f, uv_timer_t *t)
{
    uv_timer_init(f->loop, t);
    t->data = f;
    f->open_handles++;
}

/* Every destination's memory kept between batches (sc_dest_def_t.trim). */
static void trim(sc_flusher_t *f, bool all)
{
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        if (sc_dest_defs[i].trim != NULL) {
            sc_dest_defs[i].trim(f, all);
        }
    }
}

static void on_flush_timer(uv_timer_t *timer)
{
    sc_flusher_t *f = timer->data;
    trim(f, false); /* idle since the last tick: nothing kept */
    sc_flusher_flush_now(f);
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
        sc_flusher_info_start(f, 0);
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
        sc_flusher_make_room(f, (sc_dest_t)i, 0); /* a lower cap evicts now */
    }
    if (cfg->info_interval_ms == 0) {
        sc_flusher_info_stop(f);
    } else if (new_agent) {
        sc_flusher_info_start(f, 0);
    }
    sc_flusher_pump(f);
}

void sc_flusher_set_hooks(sc_flusher_t *f, const sc_flusher_hooks_t *hooks)
{
    f->hooks = *hooks;
}

/* ---- close -----------------------------------------------------------------
 */

static void finish_close(sc_flusher_t *f)
{
    if (f->open_handles > 0 || f->http != NULL) {
        return;
    }
    if (f->close_cb != NULL) {
        f->close_cb(f, f->close_data);
    }
    sc_agent_info_free(&f->info);
    trim(f, true);
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
    sc_barrier_t *w = handle->data;
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
    sc_flusher_drop_all(f);
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

/* Tear down from a fresh loop callback (this may run inside libcurl's
 * completion loop). */
void sc_flusher_on_drained(sc_flusher_t *f)
{
    uv_timer_start(&f->close_timer, on_close_timer, 0, 0);
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
    sc_flusher_info_stop(f);
    sc_flusher_cut_all(f);
    uv_timer_start(&f->close_timer, on_close_timer, deadline_ms, 0);
    sc_flusher_pump(f);
    sc_flusher_maybe_drained(f);
}

/* ---- reading the state ------------------------------------------------------
 */

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
