/* The sidecar's listener: one libuv loop, one listening endpoint, any number
 * of peers. Each accepted peer is admitted or rejected by its credentials;
 * each admitted connection reassembles frames, decodes them and dispatches
 * the action to a handler. A malformed frame closes that connection only.
 *
 * Everything here runs on the loop's thread. */
#ifndef SIDECAR_SERVER_H
#define SIDECAR_SERVER_H

#include "access.h"
#include "buf.h"
#include "sidecar.h"
#include "sidecar.pb.h"

#include <uv.h>

typedef struct sc_server sc_server_t;
typedef struct sc_server_conn sc_server_conn_t;
struct sc_stats;

/* Stats name of an action kind ("trace", "flag_evaluations", ...). */
const char *sc_action_kind_name(sc_action_kind_t kind);

/* What a handler tells the connection: NULL when the action was handled,
 * else why it is invalid (a static string naming the broken rule of
 * proto/sidecar.proto). An invalid action is refused whole: the handler has
 * applied nothing of it; the server counts it and answers ErrorReply
 * CODE_INVALID_ACTION with the action's seq; the connection stays open. (A
 * valid action that delivery then drops, e.g. for a full buffer, is
 * handled: the drop is counted where it happens.) */
typedef const char *sc_handler_result_t;
#define SC_HANDLED ((const char *)0)

/* A flush barrier: the Flush's seq and how many actions the connection had
 * read before it (FlushReply.actions_handled). Copied by whoever completes
 * it. */
typedef struct sc_flush_barrier {
    uint64_t seq;
    uint64_t actions_before;
} sc_flush_barrier_t;

/* The owner's action handlers. Each may be NULL (the action is then only
 * counted). Views inside messages are valid during the call only. Data
 * actions (trace, flag evaluations, exposures, metric, telemetry) reach their handler only
 * after a valid Hello on the connection, and Hello only when its strings
 * follow the identity string rule; the server refuses the others. */
typedef struct sc_server_handlers {
    void *ctx;
    sc_handler_result_t (*on_hello)(void *ctx, sc_server_conn_t *conn,
                                    const sidecar_v1_Hello *m);
    sc_handler_result_t (*on_session_config)(void *ctx, sc_server_conn_t *conn,
                                             const sidecar_v1_SessionConfig *m);
    sc_handler_result_t (*on_trace)(void *ctx, sc_server_conn_t *conn,
                                    const sidecar_v1_TracePayload *m);
    sc_handler_result_t (*on_flag_evaluations)(
        void *ctx, sc_server_conn_t *conn,
        const sidecar_v1_FlagEvaluationBatch *m);
    sc_handler_result_t (*on_exposures)(void *ctx, sc_server_conn_t *conn,
                                        const sidecar_v1_ExposureBatch *m);
    sc_handler_result_t (*on_metric)(void *ctx, sc_server_conn_t *conn,
                                     const sidecar_v1_Metric *m);
    sc_handler_result_t (*on_telemetry)(void *ctx, sc_server_conn_t *conn,
                                        const sidecar_v1_Telemetry *m);
    /* Flush barrier with deliver_now: everything this connection sent
     * earlier has been dispatched. The handler completes it now or later
     * with sc_server_flush_done(); when NULL, or for a Flush without
     * deliver_now, the reply is sent at once. */
    void (*on_flush)(void *ctx, sc_server_conn_t *conn,
                     const sc_flush_barrier_t *barrier,
                     const sidecar_v1_Flush *m);
    /* Fills the owner's part of the stats (stats.h): delivery per agent,
     * flag evaluations, exposures. The document is written by stats.c. */
    void (*collect_stats)(void *ctx, struct sc_stats *stats);
    /* A peer of `uid` was admitted (shared state goes to worker uids). */
    void (*on_admitted)(void *ctx, uint32_t uid);
    /* A connection is gone (after its last reply); its owner data may be
     * released. */
    void (*on_released)(void *ctx, sc_server_conn_t *conn);
    /* The server has had no connection for idle_timeout_ms. */
    void (*on_idle)(void *ctx);
} sc_server_handlers_t;

typedef struct sc_server_config {
    size_t max_frame;       /* largest accepted frame body (4 MiB) */
    size_t max_connections; /* beyond: rejected and counted (4096) */
    /* Connections one peer process may hold (64); pid 0 (unknown) is not
     * limited. */
    size_t max_connections_per_process;
    /* Slots no single user (uid, or SID on Windows) may take, kept for the
     * others; 0: max_connections / 8. */
    size_t connections_kept_for_others;
    /* Bytes all connections together may hold for frames being reassembled
     * (0: 16 x max_frame, 64 MiB by default). A connection that would need
     * more waits, unread, until others give some back; a quarter is kept
     * for reads of at most a read chunk (SC_FRAME_READ_CHUNK), so small
     * frames flow while large ones wait. Never less than two largest
     * frames. */
    size_t max_reassembly;
    /* A frame must be complete this long after its first byte arrived, or
     * its connection is closed (10 s; 0: never). */
    uint64_t frame_timeout_ms;
    size_t max_reply_backlog; /* unread reply bytes before a peer is
                                 considered stuck and closed (1 MiB) */
    sc_access_t access;       /* who is admitted besides our own user */
    uint64_t idle_timeout_ms; /* 0: never idle */
    uint64_t drain_ms; /* on close: peers are still read this long (200) */
    const char *mode;  /* "subprocess" / "thread", for replies */
    /* Thread mode: where the descriptors of admitted connections are
     * recorded for fork children to close (fd_registry.h); NULL: none. */
    struct sc_fd_registry *conn_fds;
} sc_server_config_t;

/* Fills `cfg` with the defaults above. */
void sc_server_config_defaults(sc_server_config_t *cfg);

typedef struct sc_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_rejected; /* peer not admitted */
    uint64_t connections_refused;  /* over max_connections */
    uint64_t connections_active;
    uint64_t frames_in;
    uint64_t bytes_in;
    uint64_t oversized_frames;
    uint64_t decode_errors;
    uint64_t unknown_actions;
    uint64_t invalid_actions; /* sum of invalid[] */
    uint64_t invalid[SC_ACTION_KIND_COUNT];
    uint64_t stuck_readers_closed;
    uint64_t refused_per_process;   /* over max_connections_per_process */
    uint64_t refused_per_user;      /* the user's share of slots was full */
    uint64_t reassembly_bytes;      /* held for partial frames, now */
    uint64_t reassembly_peak;       /* the most ever held at once */
    uint64_t reassembly_waits;      /* reads deferred: budget exhausted */
    uint64_t stalled_frames_closed; /* frame_timeout_ms passed */
    uint64_t actions[SC_ACTION_KIND_COUNT];
    /* Acknowledged delivery (docs/wire.md, "Acknowledgements"). */
    uint64_t acks_sent;
    uint64_t duplicates_dropped; /* resent data actions handled before */
    uint64_t sessions_forgotten; /* evicted from the session table */
    /* DropReport totals: what client processes dropped before a sidecar
     * could take it. */
    struct sc_client_drops_totals {
        uint64_t trace_payloads, traces, flag_evaluation_batches,
            exposure_batches, other_actions;
    } client_drops;
} sc_server_stats_t;

/* The admission rule on connection counts: whether one more connection of
 * a peer may open while `active` are open, `same_process` of them from the
 * peer's process and `same_user` from its user. */
typedef enum sc_admission {
    SC_ADMIT = 0,
    SC_REFUSE_FULL,    /* max_connections open */
    SC_REFUSE_PROCESS, /* the process holds max_connections_per_process */
    SC_REFUSE_USER,    /* the user holds all but the slots kept for others */
} sc_admission_t;

sc_admission_t sc_server_admission(const sc_server_config_t *cfg, size_t active,
                                   size_t same_process, size_t same_user);

/* The reassembly budget `cfg` amounts to (max_reassembly resolved). */
size_t sc_server_reassembly_budget(const sc_server_config_t *cfg);

sc_server_t *sc_server_new(uv_loop_t *loop, const sc_server_config_t *cfg,
                           const sc_server_handlers_t *handlers);

/* Starts listening on `endpoint` (see endpoint.h). UV_EADDRINUSE: another
 * listener owns it. */
int sc_server_listen(sc_server_t *s, const char *endpoint);

/* Listens on a handle bound by sc_plat_bind_handoff (spawned daemons). */
int sc_server_listen_handle(sc_server_t *s, int64_t handle,
                            const char *endpoint);

/* Closes the listener and every connection; `done` runs once all handles
 * are closed, after which sc_server_free() may be called. */
void sc_server_close(sc_server_t *s, void (*done)(void *arg), void *arg);
void sc_server_free(sc_server_t *s);

struct sc_sessions;
/* Uses `table` (the ledger's, which outlives a kill: ledger.h) as the
 * session table instead of the server's own; before any connection is
 * accepted. */
void sc_server_use_sessions(sc_server_t *s, struct sc_sessions *table);

const sc_server_stats_t *sc_server_stats(const sc_server_t *s);

/* The listening descriptor (or handle), -1 when not listening. */
int64_t sc_server_listen_fd(sc_server_t *s);

/* The whole stats document (a JSON object), as sent in StatsReply. */
void sc_server_stats_json(sc_server_t *s, sc_buf_t *out);

/* Completes a flush barrier started by on_flush. */
void sc_server_flush_done(sc_server_conn_t *conn,
                          const sc_flush_barrier_t *barrier,
                          sidecar_v1_FlushReply_Status status);

/* A string rule of proto/sidecar.proto: at most `max` bytes of UTF-8
 * without control characters (U+0000 to U+001F, U+007F), and the static
 * messages naming the field that an ErrorReply carries when it is broken. */
typedef struct sc_string_rule {
    size_t max;
    const char *too_long, *control, *not_utf8;
} sc_string_rule_t;

#define SC_STRING_RULE(field, max_literal)                                     \
    {                                                                          \
        max_literal, field " is over " #max_literal " bytes",                  \
            field " has a control character or NUL", field " is not UTF-8"     \
    }

/* Identity strings: every Hello string, and the service / env / version of
 * flag-evaluation and exposure batches. */
#define SC_IDENTITY_MAX         128
#define SC_IDENTITY_RULE(field) SC_STRING_RULE(field, 128)

/* Why `v` breaks `rule`, or NULL when it follows it or is absent. */
const char *sc_identity_string_error(sc_view_t v, const sc_string_rule_t *rule);

/* The last valid Hello of a connection, or NULL before one arrived. Its
 * strings are whole copies owned by the connection (never cut: the Hello
 * was refused if one was over SC_IDENTITY_MAX bytes). */
typedef struct sc_client_identity {
    uint32_t pid;
    uint32_t peer_uid;
    char *language; /* never NULL: "" when empty */
    char *language_version;
    char *tracer_version;
    char *service; /* NULL when absent */
    char *env;
    char *version;
} sc_client_identity_t;

const sc_client_identity_t *sc_server_conn_identity(const sc_server_conn_t *c);

/* Per-connection setting from SessionConfig.flag_evaluation_counts_enabled
 * (true until a SessionConfig says otherwise). */
bool sc_server_conn_flag_counts_enabled(const sc_server_conn_t *c);
void sc_server_conn_set_flag_counts_enabled(sc_server_conn_t *c, bool on);

/* The owner's pointer for a connection (the daemon's route to an agent);
 * NULL until set. */
void *sc_server_conn_owner_data(const sc_server_conn_t *c);
void sc_server_conn_set_owner_data(sc_server_conn_t *c, void *data);

#endif
