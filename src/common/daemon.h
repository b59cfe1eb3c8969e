/* The sidecar itself: listener + action handlers + delivery, on one libuv
 * loop. `sidecar run` (subprocess mode) and the master's listener thread
 * (thread mode) both run exactly this. */
#ifndef SIDECAR_DAEMON_H
#define SIDECAR_DAEMON_H

#include "endpoint.h"
#include "flusher.h"
#include "metrics_daemon.h"
#include "telemetry_daemon.h"
#include "server.h"

typedef struct sc_daemon sc_daemon_t;

typedef struct sc_daemon_options {
    sc_server_config_t server;
    char endpoint[SC_ENDPOINT_MAX + 1];
    int64_t listen_handle; /* >= 0: a socket already bound (spawned daemon) */
    size_t rss_cap;        /* watchdog: exit above this RSS; 0: off. Never
                              set in thread mode: it would kill the host. */
    sc_flusher_config_t flusher; /* delivery; agent from the environment */
    uint32_t final_flush_ms;     /* delivery deadline when stopping (2000) */
    sc_metrics_config_t metrics; /* DogStatsD (docs/metrics.md) */
    sc_telemetry_settings_t telemetry; /* docs/telemetry.md */
    /* The daemon decided to stop on its own (idle, watchdog); it has begun
     * its final flush. Called on the loop thread. */
    void (*on_self_stop)(void *arg, const char *why);
    void *arg;
} sc_daemon_options_t;

/* Fills defaults: server defaults, no handle, no watchdog, delivery
 * defaults with the agent address from DD_TRACE_AGENT_URL /
 * DD_AGENT_HOST / DD_TRACE_AGENT_PORT, metrics and telemetry
 * settings from the environment. */
void sc_daemon_options_defaults(sc_daemon_options_t *o);

/* Starts listening and serving on `loop`. Returns 0, UV_EADDRINUSE when the
 * endpoint is owned by a live listener, or another error. */
int sc_daemon_start(uv_loop_t *loop, const sc_daemon_options_t *o,
                    sc_daemon_t **out);

/* Stops accepting, delivers what it holds (bounded by the delivery
 * deadline), closes everything; `done` runs on the loop thread at the end,
 * after which the loop has no handles of the daemon left. Idempotent. */
void sc_daemon_stop(sc_daemon_t *d, void (*done)(void *arg), void *arg);
void sc_daemon_free(sc_daemon_t *d);

sc_server_t *sc_daemon_server(sc_daemon_t *d);

#endif
