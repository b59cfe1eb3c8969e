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

/* Stats name of an action kind ("trace", "flag_evaluations", ...). */
const char *sc_action_kind_name(sc_action_kind_t kind);

/* What a handler tells the connection. */
typedef enum sc_handler_result {
    SC_HANDLED = 0,
    /* The action is malformed beyond repair: close this connection. (A
     * well-formed action whose content is rejected, such as a trace payload
     * that is not a msgpack array, is counted by the handler and answered
     * with SC_HANDLED.) */
    SC_HANDLER_PROTOCOL_ERROR = 1,
} sc_handler_result_t;

/* The owner's action handlers. Each may be NULL (the action is then only
 * counted). Views inside messages are valid during the call only. */
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
    /* Flush barrier: everything this connection sent earlier has been
     * dispatched. The handler completes it now or later with
     * sc_server_flush_done(); when NULL the reply is sent at once. */
    void (*on_flush)(void *ctx, sc_server_conn_t *conn, uint64_t seq,
                     const sidecar_v1_Flush *m);
    /* Appends the owner's members (",\"name\":value" pairs) to the stats
     * JSON object. */
    void (*append_stats)(void *ctx, sc_buf_t *json);
    /* A peer of `uid` was admitted (shared state goes to worker uids). */
    void (*on_admitted)(void *ctx, uint32_t uid);
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
    uint64_t invalid_actions;
    uint64_t stuck_readers_closed;
    uint64_t refused_per_process;   /* over max_connections_per_process */
    uint64_t refused_per_user;      /* the user's share of slots was full */
    uint64_t reassembly_bytes;      /* held for partial frames, now */
    uint64_t reassembly_peak;       /* the most ever held at once */
    uint64_t reassembly_waits;      /* reads deferred: budget exhausted */
    uint64_t stalled_frames_closed; /* frame_timeout_ms passed */
    uint64_t actions[SC_ACTION_KIND_COUNT];
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

const sc_server_stats_t *sc_server_stats(const sc_server_t *s);

/* The listening descriptor (or handle), -1 when not listening. */
int64_t sc_server_listen_fd(sc_server_t *s);

/* The whole stats document (a JSON object), as sent in StatsReply. */
void sc_server_stats_json(sc_server_t *s, sc_buf_t *out);

/* Completes a flush barrier started by on_flush. */
void sc_server_flush_done(sc_server_conn_t *conn, uint64_t seq,
                          sidecar_v1_FlushReply_Status status);

/* The Hello of a connection, or NULL before one arrived. Its strings are
 * copies owned by the connection. */
typedef struct sc_client_identity {
    uint32_t pid;
    uint32_t peer_uid;
    char language[32];
    char language_version[32];
    char tracer_version[32];
    char *service; /* NULL when absent */
    char *env;
    char *version;
} sc_client_identity_t;

const sc_client_identity_t *sc_server_conn_identity(const sc_server_conn_t *c);

#endif
