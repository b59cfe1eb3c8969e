/* Shared by daemon.c (lifecycle, traces, flush, stats) and daemon_evp.c
 * (flag evaluations and exposures towards the EVP proxy). */
#ifndef SIDECAR_DAEMON_INTERNAL_H
#define SIDECAR_DAEMON_INTERNAL_H

#include "daemon.h"
#include "ledger.h"
#include "flageval.h"
#include "flusher.h"
#include "metrics_daemon.h"
#include "shared_state.h"
#include "stats.h"

/* Flag evaluations are aggregated per (service, env, version): each EVP
 * body carries one such context. Beyond this many contexts, batches are
 * dropped and counted. */
#define SC_DAEMON_MAX_CONTEXTS     64
#define SC_DAEMON_FLAG_COALESCE_MS 250

/* At most this many agents (docs/delivery.md, "Routing"): a SessionConfig
 * naming one more is refused. At most 32 (a bit mask of routes per
 * connection). */
#define SC_DAEMON_MAX_AGENTS SC_STATS_MAX_AGENTS

typedef struct sc_flag_context {
    char *service, *env, *version; /* NULL: absent */
    sc_flageval_t *agg;
} sc_flag_context_t;

/* One agent and everything bound for it: its own delivery (queues, caps,
 * retries, /info, drops), its own flag-evaluation aggregators and its own
 * shared-state segment. Connections are routed to one agent each
 * (sc_server_conn_owner_data); data never moves between agents. */
typedef struct sc_route {
    sc_daemon_t *d;
    sc_flusher_t *flusher;      /* NULL once closed */
    sc_shared_writer_t *shared; /* NULL when no segment could be made */
    bool is_default;            /* the sidecar's own agent (environment) */
    size_t index;               /* in sc_daemon_t.routes */
    uint64_t sessions;          /* connections routed here now */
    sc_flag_context_t contexts[SC_DAEMON_MAX_CONTEXTS];
    size_t context_count;
} sc_route_t;

struct sc_daemon {
    uv_loop_t *loop;
    sc_daemon_options_t opt;
    sc_server_t *server;
    sc_ledger_t *ledger; /* what we hold, for a successor (ledger.h) */
    sc_ledger_predecessor_t predecessor;
    sc_metrics_daemon_t *metrics; /* NULL once closed */
    sc_tel_daemon_t *telemetry;   /* NULL once closed */
    struct sc_metrics_self *self_metrics; /* NULL: off */
    sc_route_t *routes[SC_DAEMON_MAX_AGENTS]; /* [0]: the default agent */
    size_t route_count;
    uv_timer_t watchdog;
    uv_timer_t flag_timer;
    bool watchdog_on;
    bool stopping;
    int pending_closes;
    void (*done)(void *arg);
    void *done_arg;
    /* Validates the batches of connections whose counts are switched off
     * (a disabled aggregator checks a batch and keeps nothing). */
    sc_flageval_t *disabled_agg;
    uint64_t session_configs_applied;
    uint64_t session_configs_over_agents;
    uint64_t flag_batches_rejected;
    uint64_t flag_batches_disabled; /* connection's counts switched off */
    uint64_t flag_evaluations_disabled;
    uint64_t exposure_attributes_skipped;
    uint64_t flag_batches_no_context;
    uint64_t exposure_batches_rejected;
    uint64_t exposures_sent;
};

/* daemon_routes.c */
/* Opens the default route (the agent of the options). */
int sc_daemon_routes_open(sc_daemon_t *d);
/* The route of a connection: the agent its SessionConfig chose, else the
 * default agent. */
sc_route_t *sc_daemon_route_of(sc_daemon_t *d, const sc_server_conn_t *conn);
/* The route to `agent`, made (with `cfg`'s settings) when new. NULL when
 * SC_DAEMON_MAX_AGENTS routes exist or memory runs out. */
sc_route_t *sc_daemon_route_get(sc_daemon_t *d, const sc_agent_addr_t *agent,
                                const sc_flusher_config_t *cfg);
/* Moves a connection to `to` (counts sessions); false: out of memory. */
bool sc_daemon_route_bind(sc_server_conn_t *conn, sc_route_t *to);
/* The routes a connection has used (bit i: routes[i]). */
uint32_t sc_daemon_routes_used(const sc_server_conn_t *conn);
void sc_daemon_route_release(sc_daemon_t *d, sc_server_conn_t *conn);
/* Final delivery of every route; `closed` is called once per route. */
void sc_daemon_routes_close(sc_daemon_t *d, void (*closed)(sc_daemon_t *d));
void sc_daemon_routes_free(sc_daemon_t *d);
void sc_daemon_routes_stats(sc_daemon_t *d, sc_stats_t *st);

/* daemon_evp.c */
sc_handler_result_t
sc_daemon_on_flag_evaluations(void *ctx, sc_server_conn_t *conn,
                              const sidecar_v1_FlagEvaluationBatch *m);
sc_handler_result_t sc_daemon_on_exposures(void *ctx, sc_server_conn_t *conn,
                                           const sidecar_v1_ExposureBatch *m);
/* Drains every route's aggregators into EVP bodies for its flusher. */
void sc_daemon_flush_flag_evaluations(sc_daemon_t *d);
void sc_daemon_flag_stats(sc_daemon_t *d, sc_stats_t *st);
void sc_daemon_free_contexts(sc_route_t *r);

#endif
