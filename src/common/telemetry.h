/* Instrumentation telemetry v2 (docs/telemetry.md).
 *
 * The hub: the applications the sidecar knows (one per
 * (service, env, version, language, language version, tracer version)),
 * which connections keep each alive, what each has reported (dependencies,
 * integrations) so that 100 processes of one application make one
 * app-started, and the events due: turned into request bodies (one event,
 * or a message-batch) handed to a submit callback with their application's
 * seq_id. Time is passed in; nothing here does I/O.
 * It is split by job into telemetry.c (applications, connections,
 * dispatch), telemetry_check.c (validation), telemetry_events.c (what is
 * due) and telemetry_send.c (the bodies), which share
 * telemetry_internal.h. telemetry_json.c writes the envelope of the
 * bodies; telemetry_daemon.c runs the hub on the sidecar's loop and
 * delivers through each application's agent. */
#ifndef SIDECAR_TELEMETRY_H
#define SIDECAR_TELEMETRY_H

#include "buf.h"
#include "server.h"
#include "sidecar.pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_TELEMETRY_MAX_ITEMS   1024
#define SC_TELEMETRY_STRING_MAX  256
#define SC_TELEMETRY_VALUE_MAX   4096
#define SC_TELEMETRY_MAX_APPS    256
#define SC_TELEMETRY_MAX_DEPS    4096 /* remembered per application */
#define SC_TELEMETRY_MAX_INTEGRS 512
#define SC_TELEMETRY_TEXT_MAX    8192 /* a log message, a stack trace */
#define SC_TELEMETRY_TAGS_MAX    1024 /* a log's tags */
#define SC_TELEMETRY_MAX_LOGS    100  /* distinct logs due per application */

/* The rules shared by the client (which checks before sending) and the
 * sidecar: whether `v` is a valid telemetry string of at most `max` bytes
 * (non-empty when `required`), and whether `origin` is a known one (empty:
 * unknown). */
bool sc_telemetry_string_ok(sc_view_t v, size_t max, bool required);
/* The same for text: line feeds, carriage returns and tabs allowed. */
bool sc_telemetry_text_ok(sc_view_t v, size_t max, bool required);
bool sc_telemetry_origin_ok(sc_view_t origin);

/* Host facts of every body. */
typedef struct sc_telemetry_host {
    char hostname[256];
    char os[256], os_version[256], architecture[256];
    char kernel_name[256], kernel_release[256], kernel_version[256];
} sc_telemetry_host_t;

/* Fills `h` from the running system (uv_os_uname, uv_os_gethostname). */
void sc_telemetry_host_detect(sc_telemetry_host_t *h);

/* One application as the bodies name it. Strings never NULL. */
typedef struct sc_telemetry_app_info {
    const char *service, *env, *version;
    const char *language, *language_version, *tracer_version;
    const char *runtime_id;
} sc_telemetry_app_info_t;

/* Writes one whole body: the v2 envelope around `payload` (a JSON value
 * already written, "{}" when NULL). */
bool sc_telemetry_body(sc_buf_t *out, const sc_telemetry_app_info_t *app,
                       const sc_telemetry_host_t *host,
                       const char *request_type, uint64_t seq_id,
                       int64_t tracer_time_s, const char *payload,
                       size_t payload_len);

/* ---- the hub ------------------------------------------------------------ */

typedef struct sc_tel_hub sc_tel_hub_t;

typedef struct sc_tel_stats {
    uint64_t events;                 /* valid Telemetry actions */
    uint64_t events_disabled;        /* telemetry is off: not acted on */
    uint64_t applications;           /* known now */
    uint64_t applications_started;   /* app-started sent */
    uint64_t app_started_joined;     /* APP_STARTED of a known application */
    uint64_t dependencies_sent;      /* items in app-dependencies-loaded */
    uint64_t dependencies_known;     /* already reported: not sent again */
    uint64_t integrations_sent;      /* items in app-integrations-change */
    uint64_t integrations_unchanged; /* same state as reported: not sent */
    uint64_t heartbeats;             /* app-heartbeat events */
    uint64_t app_closing;            /* app-closing events */
    uint64_t requests;               /* bodies submitted */
    uint64_t message_batches;        /* of which message-batch */
    uint64_t applications_overflow;  /* events of a new application beyond
                                        the limit: dropped */
    uint64_t dependencies_overflow;  /* beyond the per-application memory */
    uint64_t logs;                   /* log items received */
    uint64_t logs_sent;              /* items in `logs` requests */
    uint64_t logs_overflow;          /* distinct logs beyond 100 due */
    uint64_t metric_points;          /* metric points received */
    uint64_t metric_series_sent;     /* series in generate-metrics and
                                        distributions requests */
    uint64_t metrics_overflow;       /* points beyond the series or value
                                        limits (telemetry_metrics.h) */
    uint64_t no_memory;
} sc_tel_stats_t;

/* A body ready to post for one application (`route`: what the event's
 * connection was routed to). */
typedef void (*sc_tel_submit_cb)(void *ctx, void *route,
                                 const char *request_type, const char *language,
                                 const char *tracer_version, const char *json,
                                 size_t len);

typedef struct sc_tel_config {
    bool enabled;
    uint64_t closing_delay_ms;    /* after the last connection of an app */
    uint64_t metrics_interval_ms; /* metrics aggregate over it (heartbeat) */
    const sc_telemetry_host_t *host;
    sc_tel_submit_cb submit;
    void *ctx;
} sc_tel_config_t;

sc_tel_hub_t *sc_tel_hub_new(const sc_tel_config_t *cfg);
void sc_tel_hub_free(sc_tel_hub_t *h);

/* One Telemetry action of `conn` (identity: its Hello; `route`: the agent it
 * is routed to, an application being one identity at one agent): NULL when
 * valid (acted on, or dropped and counted), else why it is invalid. */
const char *sc_tel_hub_event(sc_tel_hub_t *h, const sc_client_identity_t *id,
                             const void *conn, void *route,
                             const sidecar_v1_Telemetry *m, uint64_t now_ms);

/* `conn` is gone: the applications it kept alive lose it. */
void sc_tel_hub_conn_gone(sc_tel_hub_t *h, const void *conn, uint64_t now_ms);

/* Queues app-heartbeat for every application with a connection. */
void sc_tel_hub_heartbeat(sc_tel_hub_t *h);

/* Submits every body due at `now_ms` (app-closing of applications whose
 * last connection left closing_delay_ms ago included) and returns how
 * long until the next one is due (UINT64_MAX: none). With `closing_all`,
 * every application closes now (the sidecar stops). */
uint64_t sc_tel_hub_process(sc_tel_hub_t *h, uint64_t now_ms, bool closing_all);

void sc_tel_hub_stats(const sc_tel_hub_t *h, sc_tel_stats_t *out);

#endif
