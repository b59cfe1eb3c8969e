/* The sidecar: the server's action handlers feeding the flusher. */
#include "daemon_internal.h"

#include "log.h"
#include "platform.h"

#include <stdlib.h>
#include <string.h>

#define WATCHDOG_INTERVAL_MS 1000

void sc_daemon_options_defaults(sc_daemon_options_t *o)
{
    memset(o, 0, sizeof *o);
    sc_server_config_defaults(&o->server);
    o->listen_handle = -1;
    o->final_flush_ms = 2000;
    sc_flusher_config_defaults(&o->flusher);
    if (sc_agent_addr_from_env(&o->flusher.agent) != 0) {
        sc_log(SC_LOG_WARN, "invalid agent address in the environment; "
                            "using the fallback");
    }
}

sc_server_t *sc_daemon_server(sc_daemon_t *d)
{
    return d->server;
}

static void self_stop(sc_daemon_t *d, const char *why)
{
    if (d->stopping) {
        return;
    }
    sc_log(SC_LOG_INFO, "stopping: %s", why);
    if (d->opt.on_self_stop != NULL) {
        d->opt.on_self_stop(d->opt.arg, why);
    } else {
        sc_daemon_stop(d, NULL, NULL);
    }
}

/* ---- handlers
 * ---------------------------------------------------------------- */

static sc_handler_result_t on_trace(void *ctx, sc_server_conn_t *conn,
                                    const sidecar_v1_TracePayload *m)
{
    sc_daemon_t *d = ctx;
    /* The server passes data actions only after a valid Hello. */
    const sc_client_identity_t *id = sc_server_conn_identity(conn);
    sc_trace_meta_t meta = {sc_view_str(id->language),
                            sc_view_str(id->language_version),
                            sc_view_str(id->tracer_version)};
    /* Every outcome is counted by the flusher; only a payload that is not
     * one msgpack v0.4 array makes the action invalid (a full buffer, say,
     * is a drop of a valid action). */
    int rc = sc_flusher_submit_traces(d->flusher, &meta, m->msgpack.ptr,
                                      m->msgpack.len, m->trace_count);
    return rc == UV_EINVAL ? "TracePayload.msgpack is not one msgpack array "
                             "of traces"
                           : SC_HANDLED;
}

/* SessionConfig: validated whole, then applied. Delivery settings are the
 * sidecar's (one flusher for every client); the flag-evaluation switch is
 * the connection's. */
static sc_handler_result_t on_session_config(void *ctx, sc_server_conn_t *conn,
                                             const sidecar_v1_SessionConfig *m)
{
    static const sc_string_rule_t url_rule =
        SC_STRING_RULE("SessionConfig.agent_url", 511);
    sc_daemon_t *d = ctx;
    sc_flusher_config_t cfg = *sc_flusher_config(d->flusher);
    const char *why = sc_identity_string_error(m->agent_url, &url_rule);
    if (why != NULL) {
        return why;
    }
    if (m->agent_url.ptr != NULL) {
        char url[512];
        memcpy(url, m->agent_url.ptr, m->agent_url.len);
        url[m->agent_url.len] = '\0';
        if (sc_agent_addr_parse_url(url, &cfg.agent) != 0) {
            return "SessionConfig.agent_url is not an http:// or unix:// URL";
        }
    }
    if (m->has_flush_interval_ms) {
        if (m->flush_interval_ms == 0) {
            return "SessionConfig.flush_interval_ms is 0";
        }
        cfg.flush_interval_ms = m->flush_interval_ms;
    }
    if (m->has_request_timeout_ms) {
        if (m->request_timeout_ms == 0) {
            return "SessionConfig.request_timeout_ms is 0";
        }
        cfg.request_timeout_ms = m->request_timeout_ms;
    }
    if (m->has_trace_buffer_cap_bytes) {
        if (m->trace_buffer_cap_bytes == 0) {
            return "SessionConfig.trace_buffer_cap_bytes is 0";
        }
        if ((uint64_t)(size_t)m->trace_buffer_cap_bytes !=
            m->trace_buffer_cap_bytes) {
            return "SessionConfig.trace_buffer_cap_bytes is over the "
                   "address space";
        }
        cfg.cap_bytes[SC_DEST_TRACES] = (size_t)m->trace_buffer_cap_bytes;
    }
    if (m->has_flag_evaluation_counts_enabled) {
        sc_server_conn_set_flag_counts_enabled(
            conn, m->flag_evaluation_counts_enabled);
    }
    d->session_configs_applied++;
    if (memcmp(&cfg, sc_flusher_config(d->flusher), sizeof cfg) != 0) {
        sc_flusher_reconfigure(d->flusher, &cfg);
    }
    return SC_HANDLED;
}

typedef struct flush_wait {
    sc_server_conn_t *conn;
    sc_flush_barrier_t barrier;
} flush_wait_t;

static void on_barrier(int status, void *data)
{
    flush_wait_t *w = data;
    sc_server_flush_done(w->conn, &w->barrier,
                         status == 0 ? sidecar_v1_FlushReply_STATUS_OK
                                     : sidecar_v1_FlushReply_STATUS_TIMEOUT);
    free(w);
}

/* A Flush with deliver_now (the server answers the others itself): every
 * action of this connection before it was dispatched (the server guarantees
 * that); everything held, flag evaluations included, is cut into requests,
 * and the reply waits until the flusher has handed them to libcurl, or the
 * timeout. */
static void on_flush(void *ctx, sc_server_conn_t *conn,
                     const sc_flush_barrier_t *barrier,
                     const sidecar_v1_Flush *m)
{
    sc_daemon_t *d = ctx;
    sc_daemon_flush_flag_evaluations(d);
    flush_wait_t *w = malloc(sizeof *w);
    uint32_t timeout = m->has_timeout_ms ? m->timeout_ms : 3000;
    if (w == NULL) {
        sc_server_flush_done(conn, barrier,
                             sidecar_v1_FlushReply_STATUS_TIMEOUT);
        return;
    }
    w->conn = conn;
    w->barrier = *barrier;
    if (sc_flusher_barrier(d->flusher, timeout, on_barrier, w) != 0) {
        free(w);
        sc_server_flush_done(conn, barrier,
                             sidecar_v1_FlushReply_STATUS_TIMEOUT);
    }
}

static void append_stats(void *ctx, sc_buf_t *json)
{
    sc_daemon_t *d = ctx;
    sc_buf_append_str(json, ",\"delivery\":");
    sc_flusher_stats_json(d->flusher, json);
    /* The delivery settings in force (SessionConfig may change them). */
    const sc_flusher_config_t *cfg = sc_flusher_config(d->flusher);
    sc_buf_appendf(json,
                   ",\"session_config\":{\"applied\":%llu,"
                   "\"flush_interval_ms\":%u,\"request_timeout_ms\":%u,"
                   "\"trace_buffer_cap_bytes\":%zu}",
                   (unsigned long long)d->session_configs_applied,
                   (unsigned)cfg->flush_interval_ms,
                   (unsigned)cfg->request_timeout_ms,
                   cfg->cap_bytes[SC_DEST_TRACES]);
    sc_daemon_flag_stats_json(d, json);
}

static void on_admitted(void *ctx, uint32_t uid)
{
    sc_daemon_t *d = ctx;
    if (d->shared != NULL) {
        sc_shared_give_to(d->shared, uid);
    }
}

static void publish_info(const sc_agent_info_t *info, void *data)
{
    sc_daemon_t *d = data;
    if (d->shared != NULL && info->valid) {
        sc_shared_publish_info(d->shared, info->raw_json, info->raw_len);
    }
}

static void publish_rates(const char *json, size_t len, void *data)
{
    sc_daemon_t *d = data;
    if (d->shared != NULL) {
        sc_shared_publish_rates(d->shared, json, len);
    }
}

static void on_idle(void *ctx)
{
    self_stop(ctx, "idle timeout with no connections");
}

/* ---- timers
 * -------------------------------------------------------------------- */

/* Subprocess mode only: past the RSS cap the daemon exits after its final
 * flush, and the next client starts a fresh one. */
static void on_watchdog(uv_timer_t *t)
{
    sc_daemon_t *d = t->data;
    size_t rss = 0;
    if (uv_resident_set_memory(&rss) == 0 && rss > d->opt.rss_cap) {
        sc_log(SC_LOG_ERROR, "watchdog: RSS %zu bytes exceeds the cap of %zu",
               rss, d->opt.rss_cap);
        self_stop(d, "watchdog: memory cap exceeded");
    }
}

static void on_flag_timer(uv_timer_t *t)
{
    sc_daemon_flush_flag_evaluations(t->data);
}

/* ---- lifecycle
 * ------------------------------------------------------------------- */

int sc_daemon_start(uv_loop_t *loop, const sc_daemon_options_t *o,
                    sc_daemon_t **out)
{
    sc_daemon_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return UV_ENOMEM;
    }
    d->loop = loop;
    d->opt = *o;
    d->disabled_agg = sc_flageval_new(NULL);
    if (d->disabled_agg == NULL) {
        free(d);
        return UV_ENOMEM;
    }
    sc_flageval_set_enabled(d->disabled_agg, false);
    sc_server_handlers_t h = {
        .ctx = d,
        .on_session_config = on_session_config,
        .on_trace = on_trace,
        .on_flag_evaluations = sc_daemon_on_flag_evaluations,
        .on_exposures = sc_daemon_on_exposures,
        .on_flush = on_flush,
        .append_stats = append_stats,
        .on_admitted = on_admitted,
        .on_idle = on_idle,
    };
    d->server = sc_server_new(loop, &o->server, &h);
    int rc = d->server != NULL ? 0 : UV_ENOMEM;
    if (rc == 0) {
        rc = o->listen_handle >= 0
                 ? sc_server_listen_handle(d->server, o->listen_handle,
                                           o->endpoint)
                 : sc_server_listen(d->server, o->endpoint);
    }
    if (rc == 0) {
        rc = sc_flusher_new(loop, &o->flusher, &d->flusher);
    }
    if (rc != 0) {
        if (d->server != NULL) {
            sc_server_close(d->server, NULL, NULL);
            uv_run(loop, UV_RUN_NOWAIT); /* let the closes finish */
            sc_server_free(d->server);
        }
        sc_flageval_free(d->disabled_agg);
        free(d);
        return rc;
    }
    /* Shared state is a convenience for readers: without it (no shared
     * memory and no writable temporary directory) the sidecar still serves. */
    int shm_rc =
        sc_shared_writer_open(o->endpoint, sc_plat_getpid(), &d->shared);
    if (shm_rc != 0) {
        sc_log(SC_LOG_WARN, "no shared state for %s: %s", o->endpoint,
               uv_strerror(shm_rc));
    }
    sc_flusher_hooks_t hooks = {
        .on_agent_info = publish_info, .on_rates = publish_rates, .data = d};
    sc_flusher_set_hooks(d->flusher, &hooks);
    uv_timer_init(loop, &d->flag_timer);
    d->flag_timer.data = d;
    uv_timer_start(&d->flag_timer, on_flag_timer, SC_DAEMON_FLAG_COALESCE_MS,
                   SC_DAEMON_FLAG_COALESCE_MS);
    if (o->rss_cap > 0) {
        uv_timer_init(loop, &d->watchdog);
        d->watchdog.data = d;
        uv_timer_start(&d->watchdog, on_watchdog, WATCHDOG_INTERVAL_MS,
                       WATCHDOG_INTERVAL_MS);
        d->watchdog_on = true;
    }
    char agent[300];
    sc_log(SC_LOG_INFO, "delivering to %s",
           sc_agent_addr_describe(&o->flusher.agent, agent, sizeof agent));
    *out = d;
    return 0;
}

static void one_closed(sc_daemon_t *d)
{
    if (--d->pending_closes == 0 && d->done != NULL) {
        d->done(d->done_arg);
    }
}

static void on_flusher_closed(sc_flusher_t *f, void *arg)
{
    (void)f;
    sc_daemon_t *d = arg;
    d->flusher = NULL;
    one_closed(d);
}

/* Connections are gone: everything they sent is in the flusher, which now
 * gets its final delivery. */
static void on_server_closed(void *arg)
{
    sc_daemon_t *d = arg;
    sc_daemon_flush_flag_evaluations(d);
    sc_flusher_close(d->flusher, d->opt.final_flush_ms, on_flusher_closed, d);
}

static void on_timer_closed(uv_handle_t *h)
{
    one_closed(h->data);
}

void sc_daemon_stop(sc_daemon_t *d, void (*done)(void *arg), void *arg)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    d->done = done;
    d->done_arg = arg;
    d->pending_closes = 2; /* flusher, flag timer */
    uv_close((uv_handle_t *)&d->flag_timer, on_timer_closed);
    if (d->watchdog_on) {
        d->pending_closes++;
        uv_close((uv_handle_t *)&d->watchdog, on_timer_closed);
    }
    sc_server_close(d->server, on_server_closed, d);
}

void sc_daemon_free(sc_daemon_t *d)
{
    if (d != NULL) {
        sc_server_free(d->server);
        sc_shared_writer_close(d->shared);
        sc_daemon_free_contexts(d);
        sc_flageval_free(d->disabled_agg);
        free(d);
    }
}
