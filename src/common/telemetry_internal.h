/* Shared by the files of the telemetry hub, by job:
 *   telemetry.c         the hub: its lifetime, the applications and the
 *                       connections that keep them alive, the dispatch of
 *                       an action, heartbeats, closing, stats;
 *   telemetry_check.c   whether an incoming Telemetry action is valid;
 *   telemetry_events.c  what an application has due, event by event
 *                       (app-started, dependencies, integrations, logs),
 *                       checked against what was reported, and their
 *                       payloads;
 *   telemetry_send.c    what is due for an application made one body
 *                       (one event, or a message-batch) and submitted.
 * telemetry.h is the module's interface; nothing else includes this file.
 * Functions named sc_telemetry__* are internal to these files. */
#ifndef SIDECAR_TELEMETRY_INTERNAL_H
#define SIDECAR_TELEMETRY_INTERNAL_H

#include "buf.h"
#include "telemetry.h"
#include "telemetry_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The state of an integration. */
typedef struct tel_istate {
    char *version; /* NULL: absent */
    bool enabled, has_compatible, compatible, has_auto, auto_enabled;
} tel_istate_t;

/* An integration: its state as last received (`cur`) and as last reported
 * (`sent`); `pending` when `cur` changed since the last request. Several
 * changes between two requests make one item, the last state, and none
 * when that is the state already reported. */
typedef struct tel_integr {
    char *name;
    tel_istate_t cur, sent;
    bool ever_sent, pending;
} tel_integr_t;

/* A log due, and how many identical ones it stands for. */
typedef struct tel_log {
    char *message, *stack, *tags; /* stack, tags: NULL when absent */
    int level;
    uint64_t count;
} tel_log_t;

typedef struct tel_app {
    /* Identity: NULL service/env/version are absent (not the same as ""). */
    char *service, *env, *version;
    char *language, *language_version, *tracer_version;
    char runtime_id[37];
    uint64_t seq;
    void *route;
    unsigned live;    /* connections that keep it alive */
    uint64_t gone_at; /* when `live` dropped to 0 */
    /* Due events, in the order a body lists them. */
    sc_buf_t started;       /* app-started payload, or empty: none due */
    sc_buf_t deps;          /* dependency objects, comma-separated */
    size_t integrs_pending; /* integrations with `pending` */
    tel_log_t logs[SC_TELEMETRY_MAX_LOGS];
    size_t log_count;
    sc_tel_metrics_t metrics; /* series until the next heartbeat */
    bool heartbeat, closing;
    /* What was reported: dependencies ("name\x01version", a hash set) and
     * integrations. */
    char **dep_set;
    size_t dep_slots, dep_count;
    tel_integr_t *integr;
    size_t integr_count;
} tel_app_t;

typedef struct tel_conn {
    const void *conn;
    tel_app_t *app;
} tel_conn_t;

struct sc_tel_hub {
    sc_tel_config_t cfg;
    tel_app_t *apps[SC_TELEMETRY_MAX_APPS];
    size_t app_count;
    tel_conn_t *conns;
    size_t conn_count, conn_cap;
    sc_tel_stats_t stats;
};

/* telemetry_check.c */

/* Why the Telemetry action `m` is invalid, or NULL. */
const char *sc_telemetry__check(const sidecar_v1_Telemetry *m);

/* telemetry_events.c */

/* Queues the app-started payload with `configuration`. */
void sc_telemetry__queue_started(tel_app_t *a, const sc_list_t *configuration);
/* Queues the dependencies not reported yet. */
void sc_telemetry__queue_dependencies(sc_tel_hub_t *h, tel_app_t *a,
                                      const sc_list_t *deps);
/* Records the state received for each integration. */
void sc_telemetry__queue_integrations(sc_tel_hub_t *h, tel_app_t *a,
                                      const sc_list_t *list);
/* {"integrations":[...]} of the integrations to report; returns how many
 * it lists (0: no request). */
size_t sc_telemetry__integrations_payload(sc_tel_hub_t *h, tel_app_t *a,
                                          sc_buf_t *out);
/* Frees the logs due, which are then none. */
void sc_telemetry__logs_clear(tel_app_t *a);
/* Queues logs, an identical one due counting one more. */
void sc_telemetry__queue_logs(sc_tel_hub_t *h, tel_app_t *a,
                              const sc_list_t *list);
/* {"logs":[...]} of the logs due, which are then no longer due. */
void sc_telemetry__logs_payload(sc_tel_hub_t *h, tel_app_t *a, sc_buf_t *out);

/* telemetry_send.c */

/* Submits what is due for `a` as one body. */
void sc_telemetry__send_due(sc_tel_hub_t *h, tel_app_t *a);

#endif
