/* Shared by daemon.c (lifecycle, traces, flush, stats) and daemon_evp.c
 * (flag evaluations and exposures towards the EVP proxy). */
#ifndef SIDECAR_DAEMON_INTERNAL_H
#define SIDECAR_DAEMON_INTERNAL_H

#include "daemon.h"
#include "flageval.h"
#include "flusher.h"
#include "shared_state.h"

/* Flag evaluations are aggregated per (service, env, version): each EVP
 * body carries one such context. Beyond this many contexts, batches are
 * dropped and counted. */
#define SC_DAEMON_MAX_CONTEXTS     64
#define SC_DAEMON_FLAG_COALESCE_MS 250

typedef struct sc_flag_context {
    char *service, *env, *version; /* NULL: absent */
    sc_flageval_t *agg;
} sc_flag_context_t;

struct sc_daemon {
    uv_loop_t *loop;
    sc_daemon_options_t opt;
    sc_server_t *server;
    sc_flusher_t *flusher;
    sc_shared_writer_t *shared; /* NULL when no segment could be made */
    uv_timer_t watchdog;
    uv_timer_t flag_timer;
    bool watchdog_on;
    bool stopping;
    int pending_closes;
    void (*done)(void *arg);
    void *done_arg;
    sc_flag_context_t contexts[SC_DAEMON_MAX_CONTEXTS];
    size_t context_count;
    /* Validates the batches of connections whose counts are switched off
     * (a disabled aggregator checks a batch and keeps nothing). */
    sc_flageval_t *disabled_agg;
    uint64_t session_configs_applied;
    uint64_t flag_batches_rejected;
    uint64_t flag_batches_disabled; /* connection's counts switched off */
    uint64_t flag_evaluations_disabled;
    uint64_t exposure_attributes_skipped;
    uint64_t flag_batches_no_context;
    uint64_t exposure_batches_rejected;
    uint64_t exposures_sent;
};

/* daemon_evp.c */
sc_handler_result_t
sc_daemon_on_flag_evaluations(void *ctx, sc_server_conn_t *conn,
                              const sidecar_v1_FlagEvaluationBatch *m);
sc_handler_result_t sc_daemon_on_exposures(void *ctx, sc_server_conn_t *conn,
                                           const sidecar_v1_ExposureBatch *m);
/* Drains every context's aggregator into EVP bodies for the flusher. */
void sc_daemon_flush_flag_evaluations(sc_daemon_t *d);
void sc_daemon_flag_stats_json(sc_daemon_t *d, sc_buf_t *out);
void sc_daemon_free_contexts(sc_daemon_t *d);

#endif
