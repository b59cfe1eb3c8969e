/* Shared by the files of the server, by job:
 *   server.c           the listener, admission of peers, the reassembly
 *                      budget, lifecycle and stats;
 *   server_conn.c      one connection: start, the read path, the sweep of
 *                      stalled frames, close and release, accessors;
 *   server_dispatch.c  a frame to its action: decode, duplicates of an
 *                      acknowledging session, the handler of each kind,
 *                      the Hello identity, DropReport totals;
 *   server_reply.c     what is written back: replies, Acks, ErrorReply and
 *                      protocol errors, ping / stats / flush answers.
 * server.h is the module's interface; nothing else includes this file.
 * Functions named sc_server__* are internal to these files. */
#ifndef SIDECAR_SERVER_INTERNAL_H
#define SIDECAR_SERVER_INTERNAL_H

#include "fd_registry.h"
#include "frame.h"
#include "platform.h"
#include "server.h"
#include "sessions.h"

struct sc_server_conn {
    uv_pipe_t pipe; /* first: the handle's address is the connection's */
    sc_server_t *server;
    sc_server_conn_t *prev, *next;
    bool fd_registered; /* in server->cfg.conn_fds */
    int64_t registered_fd;
    sc_frame_reader_t reader;
    sc_peer_t peer;
    sc_client_identity_t identity;
    bool has_identity;
    bool
        flag_counts_disabled; /* SessionConfig.flag_evaluation_counts_enabled */
    void *owner_data;         /* sc_server_conn_set_owner_data */
    bool closing;
    bool handle_closed;
    uint32_t pending_flushes; /* barriers the owner has not completed */
    size_t reply_backlog;     /* reply bytes written but not yet drained */
    uint64_t actions_handled; /* client actions read, valid or not */
    /* Read path limits (server_conn.c, budget in server.c). */
    size_t charged;            /* reader bytes counted in the budget */
    bool budget_wait;          /* reading stopped until budget frees */
    uint64_t frame_started_ms; /* first byte of the pending frame, or 0 */
    uint64_t frames_in;        /* frames of this connection */
    /* Acknowledged delivery (Hello.session_id; 0: none). */
    uint64_t session_id;
    sc_session_slot_t *session; /* check ->id == session_id before use */
    uint64_t handled_seq;       /* highest seq handled on this connection */
    uint64_t acked_seq;         /* highest seq sent in an Ack */
    bool ack_in_flight;         /* one Ack write at a time, coalesced */
    bool final_ack;             /* the Ack sent on close was attempted */
};

struct sc_server {
    uv_loop_t *loop;
    sc_server_config_t cfg;
    sc_server_handlers_t h;
    uv_pipe_t listener;
    bool listening;
    uv_timer_t idle_timer;
    uv_timer_t sweep_timer; /* closes connections whose frame stalled */
    size_t budget;          /* sc_server_reassembly_budget(&cfg) */
    size_t budget_waiters;  /* connections with budget_wait */
    char endpoint[256];
    sc_server_conn_t *conns; /* doubly linked, for close-all */
    sc_server_stats_t stats;
    sc_sessions_t *sessions; /* highest seq handled per client session */
    bool own_sessions;       /* allocated here (else the ledger's) */
    uint64_t started_ms;
    int open_handles; /* listener, timer and connections not yet closed */
    void (*close_done)(void *arg);
    void *close_arg;
    bool closing;
};

/* Starts reading on an accepted, admitted connection. */
void sc_conn_start(sc_server_conn_t *c);
/* Closes a connection (idempotent); it is freed once its handle is closed
 * and no flush barrier is outstanding. */
void sc_conn_close(sc_server_conn_t *c);
/* The reassembly budget. Charges `c` for holding `cap` reader bytes (no
 * change when it holds that much already); false, charging nothing, when
 * that would exceed the budget. */
bool sc_server_budget_take(sc_server_t *s, sc_server_conn_t *c, size_t cap);
/* Settles `c`'s charge to what its reader holds now (0 once closed); when
 * that gives bytes back, connections waiting for budget read again. */
void sc_server_budget_settle(sc_server_t *s, sc_server_conn_t *c);
/* Closes `c` if its pending frame began frame_timeout_ms before `now`. */
void sc_conn_sweep(sc_server_conn_t *c, uint64_t now);
/* Resumes reading on a connection that waited for budget. */
void sc_conn_resume(sc_server_conn_t *c);
/* Sends an Ack for what `c` handled since the last one (acknowledging
 * clients only; at most one Ack write in flight per connection). */
void sc_conn_ack(sc_server_conn_t *c);
/* Called by server_conn.c when a connection is gone for good. */
void sc_server_conn_released(sc_server_t *s, sc_server_conn_t *c);

/* server_conn.c */

/* Releases a connection once libuv is done with its handle and no flush
 * barrier or reply write still refers to it. */
void sc_server__maybe_release(sc_server_conn_t *c);

/* server_dispatch.c */

/* The frame reader's callback: decodes one frame and dispatches its action
 * (`ctx` is the connection); false when the connection must close. */
bool sc_server__on_frame(void *ctx, const uint8_t *body, size_t len);
/* Frees the strings of an identity and zeroes it. */
void sc_server__identity_free(sc_client_identity_t *id);

/* server_reply.c */

/* Sends an ErrorReply for the action of `seq` (0: not about one). */
void sc_server__send_error(sc_server_conn_t *c, uint64_t seq,
                           sidecar_v1_ErrorReply_Code code, const char *what);
/* A protocol error: counts it in `*counter`, logs it, answers ErrorReply
 * (seq 0) and closes the connection. */
void sc_server__protocol_error(sc_server_conn_t *c, uint64_t *counter,
                               sidecar_v1_ErrorReply_Code code,
                               const char *what);
/* Answers a Ping, a StatsRequest. */
void sc_server__reply_ping(sc_server_conn_t *c, uint64_t seq,
                           const sidecar_v1_Ping *p);
void sc_server__reply_stats(sc_server_conn_t *c, uint64_t seq);
/* Starts a flush barrier: completed at once, or handed to on_flush. */
void sc_server__start_flush(sc_server_conn_t *c, const sc_flush_barrier_t *b,
                            const sidecar_v1_Flush *f);

#endif
