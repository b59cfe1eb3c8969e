/* Shared by the files of the client, by job:
 *   client.c          construction and options, the fork handlers, the
 *                     endpoint, the enqueue path, stats and free;
 *   client_io.c       the connection: connect and Hello, writing queued
 *                     frames, disconnect;
 *   client_replies.c  Acks and the replies of round trips (flush, ping,
 *                     stats).
 * client.h is the module's interface; nothing else includes this file.
 * Functions named sc_client__* are internal to these files. */
#ifndef SIDECAR_CLIENT_INTERNAL_H
#define SIDECAR_CLIENT_INTERNAL_H

#include "client.h"
#include "endpoint.h"
#include "frame.h"
#include "platform.h"

#include <stdatomic.h>

/* The largest reply frame the client reads. */
#define REPLY_MAX_FRAME (4u * 1024 * 1024)

struct sc_client {
    sc_client_options_t opt; /* strings point into `strings` */
    char *strings;
    /* The one copy of the endpoint in a process (the runtime reads and
     * changes it through sc_client_endpoint / sc_client_set_endpoint);
     * guarded by io_lock. */
    char endpoint[SC_ENDPOINT_MAX + 1];
    uint32_t owner_pid; /* the process whose connection and queue these are */
    /* The error of a connect attempt that failed, 0 when none is pending;
     * taken by the process side (sc_client_take_unreachable), which may
     * make the endpoint reachable. The client itself never calls out. */
    atomic_int unreachable;

    uv_mutex_t buf_lock;
    sc_buf_t queue; /* encoded frames not yet taken for sending */
    uint64_t next_seq;
    uint64_t barrier_seq; /* seq of the last Flush answered OK */
    sc_client_stats_t stats;
    /* Drops not yet told to a sidecar (a DropReport at the next write). */
    sidecar_v1_DropReport unreported;

    uv_mutex_t io_lock;
    /* Forks waiting for io_lock: while one is, nobody else takes io_lock
     * anew (sc_client__io_lock_acquire), so a fork waits for at most the
     * round trip in progress instead of starving behind threads that take
     * it back at once. */
    atomic_int forks_waiting;
    sc_plat_conn_t *conn;
    /* Bytes of `sending` not yet written, and written but not yet
     * acknowledged: each is held to the cap on its own (buf_lock). The
     * kernel's socket buffers hold what is unacknowledged anyway; counting
     * it against the same cap as the queue would shrink the buffer by that
     * much under load, while a sidecar that reads and never acknowledges
     * is still stopped at the cap. */
    size_t sending_bytes;
    size_t unacked_bytes;

    /* Frames taken from the queue, kept until the sidecar acknowledges
     * them (docs/wire.md, "Acknowledgements"): [0, acked) is acknowledged,
     * [acked, sent) written and waiting for its Ack, [sent, len) not yet
     * written. The offsets advance without moving bytes, which would cost
     * a copy of the rest after each partial write. */
    sc_buf_t sending;
    size_t acked;
    size_t sent;
    size_t front_remaining; /* unsent bytes of the partly written frame */
    uint64_t acked_seq;     /* seq of the last frame acknowledged */
    uint64_t session_id;    /* Hello.session_id: new in every process */
    sc_frame_reader_t replies;
    uint64_t next_attempt_ns; /* reconnect backoff */
    uint32_t backoff_ms;
};

/* What a reader of replies waits for: the reply with this seq and action
 * (its body copied out), or nothing (seq 0: only Acks are applied). */
typedef struct reply_wait {
    sc_client_t *c;
    uint64_t seq;
    pb_size_t tag;
    uint8_t *frame; /* copy of the matching reply's body */
    size_t len;
} reply_wait_t;

static inline uint64_t sc_client__now_ns(void)
{
    return uv_hrtime();
}

/* Keeps the held-byte counts the enqueuers read (buf_lock held). */
static inline void sc_client__note_held(sc_client_t *c)
{
    c->sending_bytes = c->sending.len - c->sent;
    c->unacked_bytes = c->sent - c->acked;
}

/* client.c */

/* Entry check of every public function (a fork that bypassed the fork
 * handlers). */
void sc_client__check_fork(sc_client_t *c);
/* io_lock for a caller that will wait for it (gives way to a fork). */
void sc_client__io_lock_acquire(sc_client_t *c);
/* Appends one frame to the queue (seq filled in); returns the seq, or 0
 * when the action was dropped. */
uint64_t sc_client__enqueue_frame(sc_client_t *c, sc_action_kind_t kind,
                                  sidecar_v1_Envelope *env, uint64_t budget_ns);
/* Queues a DropReport of what was dropped since the last (io_lock held). */
void sc_client__report_drops(sc_client_t *c);

/* client_io.c (io_lock held) */

/* Frames of `b` that start in [from, to). */
uint64_t sc_client__frames_between(const sc_buf_t *b, size_t from, size_t to);
/* Closes the connection; what is unacknowledged goes again on the next. */
void sc_client__disconnect(sc_client_t *c);
/* Writes queued frames until all is out or `deadline_ns` passes: 0,
 * UV_EAGAIN when some is left, or an error. */
int sc_client__pump(sc_client_t *c, uint64_t deadline_ns);

/* client_replies.c (io_lock held) */

/* Reads what the sidecar sent, without blocking, applying Acks, until the
 * reply `w` waits for is in: 0, or the error that ended the connection. */
int sc_client__read_replies(sc_client_t *c, reply_wait_t *w);

#endif
