/* The telemetry hub on the daemon's loop: timers, routing of bodies to each
 * application's agent, settings, the final app-closing. */
#include "telemetry_daemon.h"

#include "daemon_internal.h"
#include "env.h"

#include <stdlib.h>
#include <string.h>

struct sc_tel_daemon {
    sc_daemon_t *d;
    sc_telemetry_settings_t settings;
    sc_telemetry_host_t host;
    sc_tel_hub_t *hub;
    uv_timer_t heartbeat, due;
    uint64_t due_at; /* loop time the due timer fires, 0: idle */
    int open_timers;
    void (*done)(void *arg);
    void *done_arg;
};

void sc_telemetry_settings_defaults(sc_telemetry_settings_t *s)
{
    s->enabled = true;
    s->heartbeat_ms = 60000;
    s->closing_delay_ms = 10000;
}

int sc_telemetry_settings_from_env(sc_telemetry_settings_t *s)
{
    char buf[64];
    int rc = 0;
    const char *v =
        sc_env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", buf, sizeof buf);
    if (v != NULL && !sc_env_bool(v, &s->enabled)) {
        rc = sc_env_invalid("DD_INSTRUMENTATION_TELEMETRY_ENABLED", v);
    }
    /* Seconds, as the tracers read it; fractions allowed (tests). */
    v = sc_env("DD_TELEMETRY_HEARTBEAT_INTERVAL", buf, sizeof buf);
    if (v != NULL) {
        char *end = NULL;
        double sec = strtod(v, &end);
        if (*end != '\0' || !(sec >= 0.001 && sec <= 86400.0)) {
            rc = sc_env_invalid("DD_TELEMETRY_HEARTBEAT_INTERVAL", v);
        } else {
            s->heartbeat_ms = (uint32_t)(sec * 1000.0 + 0.5);
        }
    }
    v = sc_env("DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY", buf, sizeof buf);
    if (v != NULL) {
        char *end = NULL;
        unsigned long ms = strtoul(v, &end, 10);
        if (*end != '\0' || v[0] == '-' || ms > 86400000ul) {
            rc = sc_env_invalid("DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY", v);
        } else {
            s->closing_delay_ms = (uint32_t)ms;
        }
    }
    return rc;
}

/* A body for the agent the application's connection was routed to. */
static void submit(void *ctx, void *route, const char *request_type,
                   const char *language, const char *tracer_version,
                   const char *json, size_t len)
{
    (void)ctx;
    sc_route_t *r = route;
    if (r->flusher != NULL) { /* else closed: nothing can be delivered */
        sc_flusher_submit_telemetry(r->flusher, request_type, language,
                                    tracer_version, json, len);
    }
}

static void process(sc_tel_daemon_t *td, bool closing_all);

static void on_due(uv_timer_t *t)
{
    sc_tel_daemon_t *td = t->data;
    td->due_at = 0;
    process(td, false);
}

/* The due timer fires `delay` from now, or earlier if it already would. */
static void schedule(sc_tel_daemon_t *td, uint64_t delay)
{
    uint64_t at = uv_now(td->d->loop) + delay;
    if (td->due_at != 0 && td->due_at <= at) {
        return;
    }
    td->due_at = at;
    uv_timer_start(&td->due, on_due, delay, 0);
}

static void process(sc_tel_daemon_t *td, bool closing_all)
{
    uint64_t next =
        sc_tel_hub_process(td->hub, uv_now(td->d->loop), closing_all);
    if (next != UINT64_MAX && !closing_all) {
        schedule(td, next);
    }
}

static void on_heartbeat(uv_timer_t *t)
{
    sc_tel_daemon_t *td = t->data;
    sc_tel_hub_heartbeat(td->hub);
    process(td, false);
}

int sc_tel_daemon_new(sc_daemon_t *d, const sc_telemetry_settings_t *s,
                      sc_tel_daemon_t **out)
{
    sc_tel_daemon_t *td = calloc(1, sizeof *td);
    if (td == NULL) {
        return UV_ENOMEM;
    }
    td->d = d;
    td->settings = *s;
    sc_telemetry_host_detect(&td->host);
    sc_tel_config_t cfg = {.enabled = s->enabled,
                           .closing_delay_ms = s->closing_delay_ms,
                           .metrics_interval_ms = s->heartbeat_ms,
                           .host = &td->host,
                           .submit = submit,
                           .ctx = td};
    td->hub = sc_tel_hub_new(&cfg);
    if (td->hub == NULL) {
        free(td);
        return UV_ENOMEM;
    }
    uv_timer_init(d->loop, &td->heartbeat);
    uv_timer_init(d->loop, &td->due);
    td->heartbeat.data = td->due.data = td;
    td->open_timers = 2;
    if (s->enabled) {
        uv_timer_start(&td->heartbeat, on_heartbeat, s->heartbeat_ms,
                       s->heartbeat_ms);
    }
    uv_unref((uv_handle_t *)&td->heartbeat);
    uv_unref((uv_handle_t *)&td->due);
    *out = td;
    return 0;
}

const char *sc_tel_daemon_event(sc_tel_daemon_t *td, sc_server_conn_t *conn,
                                const sidecar_v1_Telemetry *m)
{
    const char *why = sc_tel_hub_event(td->hub, sc_server_conn_identity(conn),
                                       conn, sc_daemon_route_of(td->d, conn), m,
                                       uv_now(td->d->loop));
    if (why == NULL && td->settings.enabled) {
        schedule(td, m->event == sidecar_v1_Telemetry_EVENT_APP_CLOSING
                         ? td->settings.closing_delay_ms
                         : SC_TELEMETRY_COALESCE_MS);
    }
    return why;
}

void sc_tel_daemon_conn_gone(sc_tel_daemon_t *td, sc_server_conn_t *conn)
{
    sc_tel_hub_conn_gone(td->hub, conn, uv_now(td->d->loop));
    process(td, false); /* schedules the app-closing of a last connection */
}

void sc_tel_daemon_flush(sc_tel_daemon_t *td)
{
    process(td, false);
}

void sc_tel_daemon_report(const sc_tel_daemon_t *td, sc_telemetry_report_t *out)
{
    out->settings = td->settings;
    sc_tel_hub_stats(td->hub, &out->hub);
}

static void on_closed(uv_handle_t *h)
{
    sc_tel_daemon_t *td = h->data;
    if (--td->open_timers == 0) {
        void (*done)(void *) = td->done;
        void *arg = td->done_arg;
        sc_tel_hub_free(td->hub);
        free(td);
        if (done != NULL) {
            done(arg);
        }
    }
}

void sc_tel_daemon_close(sc_tel_daemon_t *td, void (*done)(void *arg),
                         void *arg)
{
    process(td, true);
    td->done = done;
    td->done_arg = arg;
    uv_close((uv_handle_t *)&td->heartbeat, on_closed);
    uv_close((uv_handle_t *)&td->due, on_closed);
}
