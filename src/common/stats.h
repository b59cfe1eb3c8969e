/* The stats document (docs/stats.md), built in one place from the counters
 * each module exposes as plain structures: the server fills `server`, the
 * daemon fills the rest (delivery per agent, flag evaluations, exposures),
 * and sc_stats_json writes the one JSON object `sidecar stats` prints. No
 * module writes a piece of the document itself. */
#ifndef SIDECAR_STATS_H
#define SIDECAR_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_url.h"
#include "buf.h"
#include "flusher.h"
#include "ledger.h"
#include "metrics_daemon.h"
#include "telemetry_daemon.h"
#include "server.h"

/* At most this many agents are listed (the daemon's limit). */
#define SC_STATS_MAX_AGENTS 16

/* One agent the sidecar delivers to (docs/delivery.md, "Routing"). */
typedef struct sc_stats_agent {
    char agent[SC_AGENT_URL_MAX + 8]; /* as a user writes it */
    bool is_default;                  /* the sidecar's own (environment) */
    bool agent_info;                  /* an /info answer is held */
    char agent_version[SC_AGENT_VERSION_MAX]; /* its "version", or "" */
    uint64_t sessions;                        /* connections routed to it now */
    uint32_t flush_interval_ms, request_timeout_ms;
    size_t cap_bytes[SC_DEST_COUNT];
    sc_flusher_stats_t delivery;
} sc_stats_agent_t;

typedef struct sc_stats_flags {
    size_t contexts;
    uint64_t evaluations;
    size_t full_buckets, degraded_buckets;
    uint64_t dropped, rejected;
    uint64_t batches_rejected, batches_without_context, batches_disabled;
    uint64_t evaluations_disabled;
} sc_stats_flags_t;

typedef struct sc_stats_exposures {
    uint64_t sent, batches_rejected, attributes_skipped;
} sc_stats_exposures_t;

typedef struct sc_stats {
    /* The server (server.c). */
    uint32_t pid;
    const char *version, *mode;
    uint64_t uptime_ms;
    sc_server_stats_t server;
    size_t reassembly_budget; /* bytes all partial frames may hold */
    bool has_rss;
    size_t rss_bytes;
    /* The daemon (daemon.c); absent when the server has no owner. */
    bool has_delivery;
    uint64_t session_configs_applied;
    uint64_t session_configs_over_agents; /* refused: too many agents */
    size_t agent_count;
    sc_stats_agent_t agents[SC_STATS_MAX_AGENTS]; /* [0]: the default */
    sc_stats_flags_t flags;
    sc_stats_exposures_t exposures;
    /* The previous sidecar on this endpoint (ledger.h); pid 0: none. */
    sc_ledger_predecessor_t predecessor;
    /* The metrics pipeline (metrics_daemon.c). */
    bool has_metrics;
    sc_metrics_report_t metrics;
    /* Instrumentation telemetry (telemetry_daemon.c). */
    bool has_telemetry;
    sc_telemetry_report_t telemetry;
} sc_stats_t;

/* Writes the whole document (one JSON object) to `out`. */
bool sc_stats_json(const sc_stats_t *s, sc_buf_t *out);

/* Writes one agent's delivery object (as in "agents", docs/stats.md). */
bool sc_stats_agent_json(const sc_stats_agent_t *a, sc_buf_t *out);

#endif
