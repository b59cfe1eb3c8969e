/* The sidecar: the server's action handlers feeding the flusher. */
#include "daemon_internal.h"
#include "metrics_self.h"

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
    sc_metrics_config_defaults(&o->metrics);
    sc_metrics_config_from_env(&o->metrics); /* a bad value is logged */
    sc_telemetry_settings_defaults(&o->telemetry);
    sc_telemetry_settings_from_env(&o->telemetry);
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
    /* Every outcome is counted by the route's flusher; only a payload that
     * is not one msgpack v0.4 array makes the action invalid (a full
     * buffer, say, is a drop of a valid action). */
    sc_route_t *r = sc_daemon_route_of(d, conn);
    int rc = sc_flusher_submit_traces(r->flusher, &meta, m->msgpack.ptr,
                                      m->msgpack.len, m->trace_count);
    return rc == UV_EINVAL ? "TracePayload.msgpack is not one msgpack array "
                             "of traces"
                           : SC_HANDLED;
}

/* The delivery settings of a SessionConfig over `cfg`; why one is invalid,
 * or NULL. */
static const char *session_settings(const sidecar_v1_SessionConfig *m,
                                    sc_flusher_config_t *cfg)
{
    if (m->has_flush_interval_ms) {
        if (m->flush_interval_ms == 0) {
            return "SessionConfig.flush_interval_ms is 0";
        }
        cfg->flush_interval_ms = m->flush_interval_ms;
    }
    if (m->has_request_timeout_ms) {
        if (m->request_timeout_ms == 0) {
            return "SessionConfig.request_timeout_ms is 0";
        }
        cfg->request_timeout_ms = m->request_timeout_ms;
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
        cfg->cap_bytes[SC_DEST_TRACES] = (size_t)m->trace_buffer_cap_bytes;
    }
    return NULL;
}

/* SessionConfig: validated whole, then applied. `agent_url` routes the
 * connection to that agent (its own queues, caps, /info and drops); the
 * other delivery settings are the settings of the agent the connection is
 * routed to (the last valid SessionConfig for an agent sets them for that
 * agent); the flag-evaluation switch is the connection's. */
static sc_handler_result_t on_session_config(void *ctx, sc_server_conn_t *conn,
                                             const sidecar_v1_SessionConfig *m)
{
    static const sc_string_rule_t url_rule =
        SC_STRING_RULE("SessionConfig.agent_url", 511);
    sc_daemon_t *d = ctx;
    sc_route_t *route = sc_daemon_route_of(d, conn);
    sc_flusher_config_t cfg = *sc_flusher_config(route->flusher);
    const char *why = sc_identity_string_error(m->agent_url, &url_rule);
    if (why != NULL) {
        return why;
    }
    if (m->agent_url.ptr != NULL) {
        char url[512];
        sc_agent_addr_t agent;
        memcpy(url, m->agent_url.ptr, m->agent_url.len);
        url[m->agent_url.len] = '\0';
        if (sc_agent_addr_parse_url(url, &agent) != 0) {
            return "SessionConfig.agent_url is not an http:// or unix:// URL";
        }
        /* Settings the message does not carry: the target agent's when it
         * exists, else the sidecar's defaults. */
        cfg = d->opt.flusher;
        for (size_t i = 0; i < d->route_count; i++) {
            const sc_flusher_config_t *c =
                sc_flusher_config(d->routes[i]->flusher);
            if (strcmp(c->agent.url, agent.url) == 0 &&
                strcmp(c->agent.unix_path, agent.unix_path) == 0) {
                cfg = *c;
            }
        }
        cfg.agent = agent;
    }
    why = session_settings(m, &cfg);
    if (why != NULL) {
        return why;
    }
    if (m->agent_url.ptr != NULL) {
        route = sc_daemon_route_get(d, &cfg.agent, &cfg);
        if (route == NULL && d->route_count == SC_DAEMON_MAX_AGENTS) {
            d->session_configs_over_agents++;
            return "SessionConfig.agent_url: the sidecar already delivers to "
                   "16 agents";
        }
        if (route == NULL) {
            return "SessionConfig.agent_url: delivery to it cannot be set up "
                   "(out of memory, or the sidecar is stopping)";
        }
    }
    if (!sc_daemon_route_bind(conn, route)) {
        return "SessionConfig: out of memory";
    }
    if (m->has_flag_evaluation_counts_enabled) {
        sc_server_conn_set_flag_counts_enabled(
            conn, m->flag_evaluation_counts_enabled);
    }
    d->session_configs_applied++;
    if (memcmp(&cfg, sc_flusher_config(route->flusher), sizeof cfg) != 0) {
        sc_flusher_reconfigure(route->flusher, &cfg);
    }
    return SC_HANDLED;
}

/* A Flush waits for every route the connection has used (what it sent may
 * sit with an agent it was routed to earlier), and for no other. */
typedef struct flush_wait {
    sc_server_conn_t *conn;
    sc_flush_barrier_t barrier;
    size_t pending;
    bool timed_out;
} flush_wait_t;

static void on_barrier(int status, void *data)
{
    flush_wait_t *w = data;
    w->timed_out |= status != 0;
    if (--w->pending > 0) {
        return;
    }
    sc_server_flush_done(w->conn, &w->barrier,
                         w->timed_out ? sidecar_v1_FlushReply_STATUS_TIMEOUT
                                      : sidecar_v1_FlushReply_STATUS_OK);
    free(w);
}

/* A Flush with deliver_now (the server answers the others itself): every
 * action of this connection before it was dispatched (the server guarantees
 * that); everything held, flag evaluations included, is cut into requests,
 * and the reply waits until the flusher of every route the connection used
 * has handed them to libcurl, or the timeout. */
static void on_flush(void *ctx, sc_server_conn_t *conn,
                     const sc_flush_barrier_t *barrier,
                     const sidecar_v1_Flush *m)
{
    sc_daemon_t *d = ctx;
    sc_daemon_flush_flag_evaluations(d);
    sc_metrics_daemon_flush(d->metrics);
    sc_tel_daemon_flush(d->telemetry);
    uint32_t used = sc_daemon_routes_used(conn);
    /* Waiting for delivery itself always takes a barrier (satisfied at
     * once when nothing is held). */
    bool settled = m->wait_for_delivery;
    bool reached = !settled;
    for (size_t i = 0; i < d->route_count && reached; i++) {
        reached = (used & (1u << i)) == 0 ||
                  sc_flusher_barrier_reached(d->routes[i]->flusher);
    }
    if (reached) { /* nothing to wait for: answered now */
        sc_server_flush_done(conn, barrier, sidecar_v1_FlushReply_STATUS_OK);
        return;
    }
    flush_wait_t *w = malloc(sizeof *w);
    uint32_t timeout = m->has_timeout_ms ? m->timeout_ms : 3000;
    if (w == NULL) {
        sc_server_flush_done(conn, barrier,
                             sidecar_v1_FlushReply_STATUS_TIMEOUT);
        return;
    }
    w->conn = conn;
    w->barrier = *barrier;
    w->pending = 1; /* held until every barrier is started */
    w->timed_out = false;
    for (size_t i = 0; i < d->route_count; i++) {
        if ((used & (1u << i)) == 0) {
            continue; /* another agent's health is not this Flush's */
        }
        w->pending++;
        sc_flusher_t *f = d->routes[i]->flusher;
        if ((settled ? sc_flusher_barrier_settled(f, timeout, on_barrier, w)
                     : sc_flusher_barrier(f, timeout, on_barrier, w)) != 0) {
            w->pending--;
            w->timed_out = true;
        }
    }
    on_barrier(0, w); /* barriers never call back from inside the call */
}

static void collect_stats(void *ctx, sc_stats_t *st)
{
    sc_daemon_t *d = ctx;
    sc_daemon_routes_stats(d, st);
    sc_daemon_flag_stats(d, st);
    st->predecessor = d->predecessor;
    if (d->metrics != NULL) {
        st->has_metrics = true;
        sc_metrics_daemon_report(d->metrics, &st->metrics);
    }
    if (d->telemetry != NULL) {
        st->has_telemetry = true;
        sc_tel_daemon_report(d->telemetry, &st->telemetry);
    }
}

static sc_handler_result_t on_telemetry(void *ctx, sc_server_conn_t *conn,
                                        const sidecar_v1_Telemetry *m)
{
    sc_daemon_t *d = ctx;
    return sc_tel_daemon_event(d->telemetry, conn, m);
}

static sc_handler_result_t on_metric(void *ctx, sc_server_conn_t *conn,
                                     const sidecar_v1_Metric *m)
{
    (void)conn;
    sc_daemon_t *d = ctx;
    return sc_metrics_daemon_add(d->metrics, m);
}

static void on_released(void *ctx, sc_server_conn_t *conn)
{
    sc_daemon_t *d = ctx;
    if (d->telemetry != NULL) {
        sc_tel_daemon_conn_gone(d->telemetry, conn);
    }
    sc_daemon_route_release(ctx, conn);
}

static void on_admitted(void *ctx, uint32_t uid)
{
    sc_daemon_t *d = ctx;
    for (size_t i = 0; i < d->route_count; i++) {
        if (d->routes[i]->shared != NULL) {
            sc_shared_give_to(d->routes[i]->shared, uid);
        }
    }
}

static void emit_self_metrics(void *ctx, sc_metrics_daemon_t *md)
{
    sc_daemon_t *d = ctx;
    sc_metrics_self_emit(d->self_metrics, md);
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
        .on_metric = on_metric,
        .on_telemetry = on_telemetry,
        .on_flush = on_flush,
        .collect_stats = collect_stats,
        .on_admitted = on_admitted,
        .on_released = on_released,
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
        /* Listening: this process owns the endpoint, and its ledger. */
        d->ledger = sc_ledger_open(o->endpoint, &d->predecessor);
        rc = d->ledger != NULL ? 0 : UV_ENOMEM;
    }
    if (rc == 0) {
        sc_server_use_sessions(d->server, sc_ledger_sessions(d->ledger));
        rc = sc_metrics_daemon_new(loop, &o->metrics, &d->metrics);
    }
    if (rc == 0) {
        rc = sc_tel_daemon_new(d, &o->telemetry, &d->telemetry);
    }
    if (rc == 0 && o->metrics.self_metrics) {
        d->self_metrics = sc_metrics_self_new(d);
        rc = d->self_metrics != NULL ? 0 : UV_ENOMEM;
        if (rc == 0) {
            sc_metrics_daemon_on_drain(d->metrics, emit_self_metrics, d);
        }
    }
    if (rc == 0) {
        rc = sc_daemon_routes_open(d);
    }
    if (rc != 0) {
        if (d->metrics != NULL) {
            sc_metrics_daemon_close(d->metrics, NULL, NULL);
        }
        if (d->telemetry != NULL) {
            sc_tel_daemon_close(d->telemetry, NULL, NULL);
        }
        if (d->server != NULL) {
            sc_server_close(d->server, NULL, NULL);
            uv_run(loop, UV_RUN_NOWAIT); /* let the closes finish */
            sc_server_free(d->server);
        }
        sc_flageval_free(d->disabled_agg);
        sc_ledger_close(d->ledger);
        sc_metrics_self_free(d->self_metrics);
        free(d);
        return rc;
    }
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
    *out = d;
    return 0;
}

static void one_closed(sc_daemon_t *d)
{
    if (--d->pending_closes == 0 && d->done != NULL) {
        d->done(d->done_arg);
    }
}

static void on_route_closed(sc_daemon_t *d)
{
    one_closed(d);
}

static void on_metrics_closed(void *arg)
{
    sc_daemon_t *d = arg;
    d->metrics = NULL;
    one_closed(d);
}

static void on_telemetry_closed(void *arg)
{
    sc_daemon_t *d = arg;
    d->telemetry = NULL;
    one_closed(d);
}

/* Connections are gone: everything they sent is with their routes, which
 * now get their final delivery (metrics: their last datagrams). */
static void on_server_closed(void *arg)
{
    sc_daemon_t *d = arg;
    sc_metrics_daemon_close(d->metrics, on_metrics_closed, d);
    /* app-closing of every application, before the flushers close */
    sc_tel_daemon_close(d->telemetry, on_telemetry_closed, d);
    sc_daemon_flush_flag_evaluations(d);
    sc_daemon_routes_close(d, on_route_closed);
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
    /* every route's flusher, the flag timer, the metrics, the telemetry */
    d->pending_closes = (int)d->route_count + 3;
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
        sc_daemon_routes_free(d);
        sc_flageval_free(d->disabled_agg);
        sc_ledger_close(d->ledger);
        sc_metrics_self_free(d->self_metrics);
        free(d);
    }
}
