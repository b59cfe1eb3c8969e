/* The sidecar's metrics pipeline (docs/metrics.md): Metric actions go into
 * one aggregator; every flush interval (and at a Flush with deliver_now, and
 * at stop) it is drained into DogStatsD lines, packed into datagrams and
 * sent to the agent's DogStatsD socket. One per sidecar, whatever agents
 * the sessions deliver traces to: DogStatsD is the host's agent. */
#ifndef SIDECAR_METRICS_DAEMON_H
#define SIDECAR_METRICS_DAEMON_H

#include "dogstatsd.h"
#include "metrics.h"
#include "sidecar.pb.h"

#include <uv.h>

typedef struct sc_metrics_config {
    sc_dogstatsd_config_t statsd;
    uint32_t flush_interval_ms; /* DD_TRACE_SIDECAR_METRICS_FLUSH_INTERVAL */
    size_t max_contexts;        /* DD_TRACE_SIDECAR_METRICS_MAX_CONTEXTS */
    size_t max_values;          /* DD_TRACE_SIDECAR_METRICS_MAX_VALUES */
    bool self_metrics;          /* DD_TRACE_SIDECAR_SELF_METRICS */
} sc_metrics_config_t;

/* 10000 ms, 4096 contexts, 65536 values, DogStatsD at 127.0.0.1:8125,
 * no self-telemetry. */
void sc_metrics_config_defaults(sc_metrics_config_t *cfg);

/* Applies the variables named above and those of
 * sc_dogstatsd_config_from_env(); UV_EINVAL when one does not parse (it is
 * logged and ignored). */
int sc_metrics_config_from_env(sc_metrics_config_t *cfg);

/* What `sidecar stats` shows under "metrics" (docs/stats.md). */
typedef struct sc_metrics_report {
    char destination[300];
    uint32_t flush_interval_ms;
    size_t max_contexts, max_values, datagram_bytes;
    uint64_t flushes;
    sc_metrics_stats_t agg;
    sc_dogstatsd_stats_t sent;
} sc_metrics_report_t;

typedef struct sc_metrics_daemon sc_metrics_daemon_t;

int sc_metrics_daemon_new(uv_loop_t *loop, const sc_metrics_config_t *cfg,
                          sc_metrics_daemon_t **out);

/* A Metric action: NULL when aggregated (or dropped and counted), else why
 * it is invalid (a rule of proto/sidecar.proto). */
const char *sc_metrics_daemon_add(sc_metrics_daemon_t *md,
                                  const sidecar_v1_Metric *m);

/* Called at the start of every drain (the sidecar's own counters are
 * added then, metrics_self.c); NULL: none. */
void sc_metrics_daemon_on_drain(sc_metrics_daemon_t *md,
                                void (*fn)(void *ctx, sc_metrics_daemon_t *md),
                                void *ctx);

/* Drains and sends everything now. */
void sc_metrics_daemon_flush(sc_metrics_daemon_t *md);

void sc_metrics_daemon_report(const sc_metrics_daemon_t *md,
                              sc_metrics_report_t *out);

/* Final flush, then closes everything; `done` runs once nothing is left
 * (md is freed then). */
void sc_metrics_daemon_close(sc_metrics_daemon_t *md, void (*done)(void *arg),
                             void *arg);

#endif
