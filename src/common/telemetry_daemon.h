/* The telemetry hub on the sidecar's loop (docs/telemetry.md): Telemetry
 * actions in, bodies out through the flusher of the agent each
 * application's first connection was routed to; a heartbeat timer, and a
 * timer for what is due (events are gathered for 100 ms so that what one
 * process reports at once goes in one request; app-closing after the
 * closing delay). */
#ifndef SIDECAR_TELEMETRY_DAEMON_H
#define SIDECAR_TELEMETRY_DAEMON_H

#include "telemetry.h"

#include <uv.h>

/* Events are gathered this long before their request is made. */
#define SC_TELEMETRY_COALESCE_MS 100

typedef struct sc_telemetry_settings {
    bool enabled;              /* DD_INSTRUMENTATION_TELEMETRY_ENABLED */
    uint32_t heartbeat_ms;     /* DD_TELEMETRY_HEARTBEAT_INTERVAL (s) */
    uint32_t closing_delay_ms; /* DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY */
} sc_telemetry_settings_t;

/* On, 60 s, 10000 ms. */
void sc_telemetry_settings_defaults(sc_telemetry_settings_t *s);
/* UV_EINVAL when a value does not parse (logged, ignored). */
int sc_telemetry_settings_from_env(sc_telemetry_settings_t *s);

/* What `sidecar stats` shows under "telemetry". */
typedef struct sc_telemetry_report {
    sc_telemetry_settings_t settings;
    sc_tel_stats_t hub;
} sc_telemetry_report_t;

struct sc_daemon;
typedef struct sc_tel_daemon sc_tel_daemon_t;

int sc_tel_daemon_new(struct sc_daemon *d, const sc_telemetry_settings_t *s,
                      sc_tel_daemon_t **out);

/* A Telemetry action of `conn`: NULL or why it is invalid. */
const char *sc_tel_daemon_event(sc_tel_daemon_t *td, sc_server_conn_t *conn,
                                const sidecar_v1_Telemetry *m);

void sc_tel_daemon_conn_gone(sc_tel_daemon_t *td, sc_server_conn_t *conn);

/* Makes the requests of what is due now (a Flush with deliver_now). */
void sc_tel_daemon_flush(sc_tel_daemon_t *td);

void sc_tel_daemon_report(const sc_tel_daemon_t *td,
                          sc_telemetry_report_t *out);

/* The sidecar stops: app-closing for every application, handed to the
 * flushers before they close; then the timers close and `done` runs (td is
 * freed then). */
void sc_tel_daemon_close(sc_tel_daemon_t *td, void (*done)(void *arg),
                         void *arg);

#endif
