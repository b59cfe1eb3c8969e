/* The process side of the transport.
 *
 * Two locks keep the request path cheap. `buf_lock` guards only the queue of
 * encoded frames: enqueueing is an append under it. `io_lock` guards the
 * connection; whoever holds it moves queued frames into `sending` and
 * writes them, many frames per write. An enqueuer never waits for I/O done
 * by another thread: it only try-locks `io_lock`. */
#include "client.h"

#include "abi.h"
#include "codec.h"
#include "endpoint.h"
#include "frame.h"
#include "log.h"
#include "platform.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define DEFAULT_BUDGET_US          200
#define DEFAULT_BUFFER_CAP         (4u * 1024 * 1024)
#define DEFAULT_WRITE_THRESHOLD    (16u * 1024)
#define DEFAULT_RECONNECT_MIN_MS   50
#define DEFAULT_RECONNECT_MAX_MS   5000
#define REPLY_MAX_FRAME            (4u * 1024 * 1024)
/* Unacknowledged bytes past which a write first reads the Acks waiting in
 * the socket (below it they wait: reading costs a system call). */
#define ACK_READ_BYTES (64u * 1024)

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
     * anew (io_lock_acquire), so a fork waits for at most the round trip
     * in progress instead of starving behind threads that take it back
     * at once. */
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

static uint64_t new_session_id(void);
static void report_drops(sc_client_t *c);

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* ---- options --------------------------------------------------------------
 */

/* Copies every string option into one allocation owned by the client. */
static bool copy_options(sc_client_t *c, const sc_client_options_t *o)
{
    const char **fields[] = {&c->opt.language,       &c->opt.language_version,
                             &c->opt.tracer_version, &c->opt.runtime_id,
                             &c->opt.service,        &c->opt.env,
                             &c->opt.version,        &c->opt.agent_url};
    size_t n = sizeof fields / sizeof fields[0];
    c->opt = *o;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += *fields[i] != NULL ? strlen(*fields[i]) + 1 : 0;
    }
    c->strings = malloc(total + 1);
    if (c->strings == NULL) {
        return false;
    }
    char *p = c->strings;
    for (size_t i = 0; i < n; i++) {
        if (*fields[i] != NULL) {
            size_t len = strlen(*fields[i]) + 1;
            memcpy(p, *fields[i], len);
            *fields[i] = p;
            p += len;
        }
    }
    if (c->opt.connect_timeout_ms == 0) {
        c->opt.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    }
    if (c->opt.enqueue_budget_us == 0) {
        c->opt.enqueue_budget_us = DEFAULT_BUDGET_US;
    }
    if (c->opt.buffer_cap == 0) {
        c->opt.buffer_cap = DEFAULT_BUFFER_CAP;
    }
    if (c->opt.write_threshold == 0) {
        c->opt.write_threshold = DEFAULT_WRITE_THRESHOLD;
    }
    if (c->opt.reconnect_min_ms == 0) {
        c->opt.reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
    }
    if (c->opt.reconnect_max_ms == 0) {
        c->opt.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
    }
    if (c->opt.language == NULL) {
        c->opt.language = "c";
    }
    if (c->opt.tracer_version == NULL) {
        c->opt.tracer_version = SIDECAR_VERSION;
    }
    return true;
}

sc_client_t *sc_client_new(const sc_client_options_t *options)
{
    if (options == NULL || options->endpoint == NULL ||
        sc_abi_client_options_check(options) != 0) {
        return NULL;
    }
    sc_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    if (strlen(options->endpoint) > SC_ENDPOINT_MAX ||
        !copy_options(c, options)) {
        free(c);
        return NULL;
    }
    strcpy(c->endpoint, options->endpoint);
    c->opt.endpoint = NULL; /* c->endpoint is the one copy */
    uv_mutex_init(&c->buf_lock);
    uv_mutex_init(&c->io_lock);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
    c->owner_pid = sc_plat_getpid();
    c->session_id = new_session_id();
    c->backoff_ms = c->opt.reconnect_min_ms;
    return c;
}

/* ---- fork ------------------------------------------------------------------
 */

/* A child of fork() must not use its parent's connection or queue: the
 * socket is shared with the parent (writing would interleave frames) and
 * the queued actions are the parent's. The inherited descriptor is closed
 * (closing a copy does not disturb the parent), the queue discarded and
 * counted, and the child reconnects on first use. The locks are re-created
 * because another thread of the parent may have held them at fork time. */
/* A random, non-zero session id (Hello.session_id). */
static uint64_t new_session_id(void)
{
    uint64_t id = 0;
    while (id == 0 && uv_random(NULL, NULL, &id, sizeof id, 0, NULL) == 0) {
    }
    /* Without randomness: pid and clock still tell processes apart. */
    return id != 0 ? id : ((uint64_t)sc_plat_getpid() << 32) ^ uv_hrtime();
}

/* Envelope.seq of an encoded frame (field 1, first when not 0). */
static uint64_t frame_seq(const uint8_t *frame, size_t avail)
{
    const uint8_t *p = frame + SC_FRAME_HEADER_SIZE;
    const uint8_t *end = frame + avail;
    if (p >= end || *p != 0x08) {
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; ++p < end && shift < 64; shift += 7) {
        v |= (uint64_t)(*p & 0x7f) << shift;
        if ((*p & 0x80) == 0) {
            return v;
        }
    }
    return 0;
}

/* Frames of `b` that start in [from, to). */
static uint64_t frames_between(const sc_buf_t *b, size_t from, size_t to)
{
    uint64_t n = 0;
    for (size_t off = from; off < to && off + SC_FRAME_HEADER_SIZE <= b->len;
         n++) {
        off += SC_FRAME_HEADER_SIZE + sc_frame_get_len(b->data + off);
    }
    return n;
}

static void reset_after_fork(sc_client_t *c, uint32_t pid)
{
    uv_mutex_init(&c->buf_lock);
    uv_mutex_init(&c->io_lock);
    sc_plat_conn_close(c->conn);
    c->conn = NULL;
    uint64_t discarded =
        frames_between(&c->queue, 0, c->queue.len) +
        frames_between(&c->sending, c->sent + c->front_remaining,
                       c->sending.len);
    sc_buf_reset(&c->queue);
    sc_buf_reset(&c->sending);
    c->acked = 0;
    c->sent = 0;
    c->sending_bytes = 0;
    c->unacked_bytes = 0;
    /* A session is one process's: the parent's unacknowledged frames stay
     * the parent's to resend. */
    c->session_id = new_session_id();
    sc_frame_reader_free(&c->replies);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
    c->front_remaining = 0;
    c->next_attempt_ns = 0;
    c->backoff_ms = c->opt.reconnect_min_ms;
    memset(&c->stats, 0, sizeof c->stats);
    c->stats.dropped_after_fork = discarded;
    c->owner_pid = pid;
}

static void disconnect(sc_client_t *c);

/* io_lock for a caller that will wait for it (a round trip, a change of
 * endpoint): gives way to a fork that waits for the lock first. */
static void io_lock_acquire(sc_client_t *c)
{
    while (atomic_load(&c->forks_waiting) > 0) {
        uv_sleep(1);
    }
    uv_mutex_lock(&c->io_lock);
}

/* io_lock for a caller that can do without it (an enqueue that would
 * write, a request-end flush): never while a fork waits. */
static bool io_lock_try(sc_client_t *c)
{
    return atomic_load(&c->forks_waiting) == 0 &&
           uv_mutex_trylock(&c->io_lock) == 0;
}

void sc_client_atfork_prepare(sc_client_t *c)
{
    atomic_fetch_add(&c->forks_waiting, 1);
    uv_mutex_lock(&c->io_lock);
    uv_mutex_lock(&c->buf_lock);
}

void sc_client_atfork_parent(sc_client_t *c)
{
    uv_mutex_unlock(&c->buf_lock);
    uv_mutex_unlock(&c->io_lock);
    atomic_fetch_sub(&c->forks_waiting, 1);
}

void sc_client_atfork_child(sc_client_t *c)
{
    atomic_store(&c->forks_waiting, 0);
    reset_after_fork(c, sc_plat_getpid());
}

int sc_client_take_unreachable(sc_client_t *c)
{
    return atomic_load_explicit(&c->unreachable, memory_order_relaxed) != 0
               ? atomic_exchange(&c->unreachable, 0)
               : 0;
}

void sc_client_endpoint(sc_client_t *c, char *out, size_t size)
{
    /* Changed only with both locks held: the short one is enough here, and
     * never waits for a round trip in progress. */
    uv_mutex_lock(&c->buf_lock);
    snprintf(out, size, "%s", c->endpoint);
    uv_mutex_unlock(&c->buf_lock);
}

int sc_client_set_endpoint(sc_client_t *c, const char *endpoint)
{
    if (strlen(endpoint) > SC_ENDPOINT_MAX) {
        return UV_ENAMETOOLONG;
    }
    io_lock_acquire(c);
    if (strcmp(c->endpoint, endpoint) != 0) {
        disconnect(c);
        uv_mutex_lock(&c->buf_lock);
        strcpy(c->endpoint, endpoint);
        uv_mutex_unlock(&c->buf_lock);
    }
    /* Whoever points us somewhere made it reachable: no backoff. */
    c->next_attempt_ns = 0;
    uv_mutex_unlock(&c->io_lock);
    return 0;
}

/* Entry check of every public function: forks that bypass pthread_atfork
 * (a raw clone, vfork-like paths) are caught here. */
static void check_fork(sc_client_t *c)
{
    uint32_t pid = sc_plat_getpid();
    if (pid != c->owner_pid) {
        reset_after_fork(c, pid);
    }
}

/* ---- connection (io_lock held) ------------------------------------------- */

static bool append_hello(sc_client_t *c, sc_buf_t *out)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_hello_tag;
    sidecar_v1_Hello *h = &env.action.hello;
    h->protocol_version = 1;
    h->pid = sc_plat_getpid();
    h->language = sc_view_str(c->opt.language);
    h->language_version = sc_view_str(c->opt.language_version);
    h->tracer_version = sc_view_str(c->opt.tracer_version);
    h->runtime_id = sc_view_str(c->opt.runtime_id);
    h->service = sc_view_str(c->opt.service);
    h->env = sc_view_str(c->opt.env);
    h->version = sc_view_str(c->opt.version);
    h->session_id = c->session_id;
    if (!sc_codec_append_frame(out, &env)) {
        return false;
    }
    const sc_client_options_t *o = &c->opt;
    if (o->agent_url == NULL && o->flush_interval_ms == 0 &&
        o->request_timeout_ms == 0) {
        return true;
    }
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_session_config_tag;
    sidecar_v1_SessionConfig *s = &env.action.session_config;
    s->agent_url = sc_view_str(o->agent_url);
    s->has_flush_interval_ms = o->flush_interval_ms != 0;
    s->flush_interval_ms = o->flush_interval_ms;
    s->has_request_timeout_ms = o->request_timeout_ms != 0;
    s->request_timeout_ms = o->request_timeout_ms;
    return sc_codec_append_frame(out, &env);
}

/* ---- replies and acknowledgements -------------------------------------------
 */

/* What a reader of replies waits for: the reply with this seq and action
 * (its body copied out), or nothing (seq 0: only Acks are applied). */
typedef struct reply_wait {
    sc_client_t *c;
    uint64_t seq;
    pb_size_t tag;
    uint8_t *frame; /* copy of the matching reply's body */
    size_t len;
} reply_wait_t;

/* Keeps the held-byte counts the enqueuers read (buf_lock held). */
static void note_held(sc_client_t *c)
{
    c->sending_bytes = c->sending.len - c->sent;
    c->unacked_bytes = c->sent - c->acked;
}

/* The sidecar handled every action up to seq `through`: the frames written
 * whole from the front of the unacknowledged part go. */
static void release_acked(sc_client_t *c, uint64_t through)
{
    size_t off = c->acked;
    while (off + SC_FRAME_HEADER_SIZE <= c->sent) {
        size_t len =
            SC_FRAME_HEADER_SIZE + sc_frame_get_len(c->sending.data + off);
        uint64_t seq = frame_seq(c->sending.data + off, len);
        if (off + len > c->sent || seq == 0 || seq > through) {
            break;
        }
        c->acked_seq = seq;
        off += len;
    }
    if (off != c->acked) {
        uv_mutex_lock(&c->buf_lock);
        c->acked = off;
        note_held(c);
        uv_mutex_unlock(&c->buf_lock);
    }
}

static bool on_reply_frame(void *ctx, const uint8_t *body, size_t len)
{
    reply_wait_t *w = ctx;
    sidecar_v1_Envelope env;
    if (!sc_codec_decode(body, len, &env, NULL)) {
        return true; /* skip; the stream is still framed */
    }
    switch (env.which_action) {
    case sidecar_v1_Envelope_ack_tag:
        release_acked(w->c, env.action.ack.handled_through_seq);
        return true;
    case sidecar_v1_Envelope_flush_reply_tag:
        /* A barrier's reply: everything up to it was handled. */
        release_acked(w->c, env.seq);
        break;
    case sidecar_v1_Envelope_error_reply_tag: {
        const sidecar_v1_ErrorReply *e = &env.action.error_reply;
        if (e->code == sidecar_v1_ErrorReply_Code_CODE_INVALID_ACTION) {
            /* One action refused; the connection stays open. */
            SC_LOG_LIMITED(SC_LOG_WARN,
                           "the sidecar refused action seq %llu: %.*s",
                           (unsigned long long)env.seq, (int)e->message.len,
                           (const char *)e->message.ptr);
        } else {
            SC_LOG_LIMITED(SC_LOG_WARN, "sidecar closed the connection: %.*s",
                           (int)e->message.len, (const char *)e->message.ptr);
        }
        return true;
    }
    default:
        break;
    }
    /* Replies to requests that timed out earlier are skipped. */
    if (w->seq == 0 || env.seq != w->seq || env.which_action != w->tag) {
        return true;
    }
    w->frame = malloc(len > 0 ? len : 1);
    if (w->frame != NULL) {
        memcpy(w->frame, body, len);
        w->len = len;
    }
    return false;
}

/* Reads what the sidecar sent, without blocking, until nothing is left or
 * the awaited reply is in: Acks are applied on the way. Returns 0, or the
 * error that ended the connection (what came before it is applied). */
static int read_replies(sc_client_t *c, reply_wait_t *w)
{
    while (w->frame == NULL) {
        uint8_t *space;
        size_t room;
        if (!sc_frame_reader_space(&c->replies, &space, &room)) {
            return UV_ENOMEM;
        }
        long n = sc_plat_conn_read(c->conn, space, room);
        if (n <= 0) {
            return (int)n;
        }
        if (sc_frame_reader_commit(&c->replies, (size_t)n, on_reply_frame, w) ==
            SC_FRAME_TOO_LARGE) {
            return UV_EPROTO;
        }
    }
    return 0;
}

/* ---- connection ------------------------------------------------------------
 */

static void disconnect(sc_client_t *c)
{
    if (c->conn == NULL) {
        return;
    }
    /* Acks the sidecar wrote before the connection ended are still there
     * to read: what they cover is not sent again. */
    reply_wait_t acks_only = {.c = c};
    read_replies(c, &acks_only);
    sc_plat_conn_close(c->conn);
    c->conn = NULL;
    uv_mutex_lock(&c->buf_lock);
    c->stats.disconnects++;
    /* Everything unacknowledged -- a half-written frame too -- goes again,
     * whole, on the next connection; the sidecar drops what it had
     * handled already (by session and seq). */
    c->stats.frames_resent += frames_between(&c->sending, c->acked, c->sent);
    c->sent = c->acked;
    c->front_remaining = 0;
    note_held(c);
    uv_mutex_unlock(&c->buf_lock);
    sc_frame_reader_free(&c->replies);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
}

/* Writes all of `data` (the Hello of a new connection) within `timeout_ms`. */
static int write_all(sc_client_t *c, const uint8_t *data, size_t len,
                     uint32_t timeout_ms)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (len > 0) {
        long n = sc_plat_conn_write(c->conn, data, len);
        if (n < 0) {
            return (int)n;
        }
        data += n;
        len -= (size_t)n;
        uint64_t now = now_ns();
        if (len > 0 && now >= deadline) {
            return UV_ETIMEDOUT;
        }
        if (n == 0 && sc_plat_conn_wait(
                          c->conn, false, true,
                          (uint32_t)((deadline - now) / 1000000u) + 1) < 0) {
            return UV_EPIPE;
        }
    }
    return 0;
}

/* Connects unless connected or backing off. The Hello goes first on every
 * new connection, then whatever is unacknowledged or unsent. */
static int ensure_connected(sc_client_t *c, uint32_t timeout_ms)
{
    if (c->conn != NULL) {
        return 0;
    }
    uint64_t now = now_ns();
    if (now < c->next_attempt_ns) {
        return UV_ECONNREFUSED;
    }
    int rc = sc_plat_conn_open(c->endpoint, timeout_ms, &c->conn);
    uv_mutex_lock(&c->buf_lock);
    if (rc != 0) {
        /* The process side may know how to make the endpoint reachable
         * (start a sidecar, promote this process); it looks after the
         * call returns, with none of our locks held. */
        atomic_store(&c->unreachable, rc);
        c->stats.connect_failures++;
        c->stats.untrusted_servers += rc == UV_EACCES;
        uv_mutex_unlock(&c->buf_lock);
        c->conn = NULL;
        c->next_attempt_ns = now + (uint64_t)c->backoff_ms * 1000000u;
        c->backoff_ms = c->backoff_ms * 2 > c->opt.reconnect_max_ms
                            ? c->opt.reconnect_max_ms
                            : c->backoff_ms * 2;
        if (rc == UV_EACCES) {
            SC_LOG_LIMITED(SC_LOG_WARN,
                           "refusing %s: it is served by a process of "
                           "another user, not the sidecar (nothing sent)",
                           c->endpoint);
        } else {
            SC_LOG_LIMITED(SC_LOG_INFO, "cannot connect to %s: %s", c->endpoint,
                           uv_strerror(rc));
        }
        return rc;
    }
    c->stats.connects++;
    uv_mutex_unlock(&c->buf_lock);
    c->backoff_ms = c->opt.reconnect_min_ms;
    c->next_attempt_ns = 0;

    sc_buf_t hello = {0};
    rc = append_hello(c, &hello) ? write_all(c, hello.data, hello.len,
                                             timeout_ms > 0 ? timeout_ms : 1)
                                 : UV_ENOMEM;
    if (rc == 0) {
        uv_mutex_lock(&c->buf_lock);
        c->stats.frames_written += frames_between(&hello, 0, hello.len);
        c->stats.bytes_written += hello.len;
        c->stats.writes++;
        uv_mutex_unlock(&c->buf_lock);
    }
    sc_buf_free(&hello);
    if (rc != 0) {
        disconnect(c);
    }
    return rc;
}

/* Counts whole frames among `n` bytes just written from `sent` on, so that
 * a disconnect knows where the next frame starts. */
static uint64_t account_written(sc_client_t *c, size_t n)
{
    uint64_t frames = 0;
    size_t off = 0;
    while (n > 0) {
        if (c->front_remaining == 0) {
            c->front_remaining =
                SC_FRAME_HEADER_SIZE +
                sc_frame_get_len(c->sending.data + c->sent + off);
        }
        size_t take = n < c->front_remaining ? n : c->front_remaining;
        c->front_remaining -= take;
        off += take;
        n -= take;
        if (c->front_remaining == 0) {
            frames++;
        }
    }
    return frames;
}

/* Moves queued frames to `sending` (under buf_lock) -- unless much of
 * `sending` is still unsent (a slow sidecar): then they wait in the queue,
 * and no write pays for copying them around. */
static void take_queue(sc_client_t *c)
{
    if (c->queue.len == 0 ||
        c->sending.len - c->sent >= c->opt.write_threshold) {
        return;
    }
    if (c->acked == c->sending.len) {
        /* Nothing kept: the queue becomes `sending` as it is. */
        sc_buf_t t = c->sending;
        c->sending = c->queue;
        c->queue = t;
        sc_buf_reset(&c->queue);
        c->acked = 0;
        c->sent = 0;
        return;
    }
    if (c->acked > 0 && c->acked >= c->sending.len / 2) {
        /* What is still kept goes to the front once the acknowledged part
         * is at least half the buffer: each byte is moved a bounded number
         * of times, however far the Acks lag behind the writes. */
        memmove(c->sending.data, c->sending.data + c->acked,
                c->sending.len - c->acked);
        c->sending.len -= c->acked;
        c->sent -= c->acked;
        c->acked = 0;
    }
    if (sc_buf_append(&c->sending, c->queue.data, c->queue.len)) {
        sc_buf_reset(&c->queue);
    }
}

/* Moves queued frames to `sending` and writes until everything is out or
 * `deadline_ns` passes (a deadline in the past: one non-blocking attempt,
 * however much a write takes). Returns 0 when all was written, UV_EAGAIN
 * when some is left, or an error. */
static int pump(sc_client_t *c, uint64_t deadline_ns)
{
    uv_mutex_lock(&c->buf_lock);
    bool pending = c->queue.len > 0 || c->sending.len > c->sent;
    uv_mutex_unlock(&c->buf_lock);
    if (!pending) {
        return 0;
    }
    /* Connect before taking frames off the queue: while no sidecar is
     * reachable they stay queued, where the cap applies to them. */
    uint64_t now = now_ns();
    uint32_t wait_ms =
        deadline_ns > now ? (uint32_t)((deadline_ns - now) / 1000000u) : 0;
    int rc = ensure_connected(c, wait_ms > 0 ? wait_ms : 1);
    if (rc != 0) {
        return rc;
    }
    report_drops(c);
    /* A small buffer is mostly frames waiting for their Ack: read sooner. */
    size_t ack_read = c->opt.buffer_cap / 4 < ACK_READ_BYTES
                          ? c->opt.buffer_cap / 4
                          : ACK_READ_BYTES;
    if (c->sent - c->acked >= ack_read) {
        reply_wait_t acks_only = {.c = c};
        if ((rc = read_replies(c, &acks_only)) < 0) {
            SC_LOG_LIMITED(SC_LOG_INFO, "sidecar connection lost: %s",
                           uv_strerror(rc));
            disconnect(c);
            return rc;
        }
    }
    for (;;) {
        uv_mutex_lock(&c->buf_lock);
        take_queue(c); /* takes everything once `sending` is drained */
        note_held(c);
        uv_mutex_unlock(&c->buf_lock);
        if (c->sending.len == c->sent) {
            return 0;
        }
        long n = sc_plat_conn_write(c->conn, c->sending.data + c->sent,
                                    c->sending.len - c->sent);
        if (n < 0) {
            SC_LOG_LIMITED(SC_LOG_INFO, "sidecar connection lost: %s",
                           uv_strerror((int)n));
            disconnect(c);
            return (int)n;
        }
        if (n > 0) {
            uint64_t frames = account_written(c, (size_t)n);
            uv_mutex_lock(&c->buf_lock);
            c->sent += (size_t)n;
            note_held(c);
            c->stats.frames_written += frames;
            c->stats.bytes_written += (uint64_t)n;
            c->stats.writes++;
            uv_mutex_unlock(&c->buf_lock);
        }
        now = now_ns();
        if (now >= deadline_ns) {
            /* Out of budget, even while writes progress: the rest waits
             * for the next flush. */
            uv_mutex_lock(&c->buf_lock);
            bool left = c->sending.len > c->sent || c->queue.len > 0;
            uv_mutex_unlock(&c->buf_lock);
            if (left) {
                return UV_EAGAIN;
            }
            continue;
        }
        if (n > 0) {
            continue;
        }
        uint64_t left_us = (deadline_ns - now) / 1000u;
        uint32_t ms = (uint32_t)((left_us + 999) / 1000);
        if (sc_plat_conn_wait(c->conn, false, true, ms) < 0) {
            disconnect(c);
            return UV_EPIPE;
        }
    }
}

/* ---- enqueue ----------------------------------------------------------------
 */

/* Adds a dropped action to what the next DropReport says (buf_lock held).
 * Requests are not data: their callers hear of the drop. */
static void note_drop(sc_client_t *c, sc_action_kind_t kind,
                      const sidecar_v1_Envelope *env)
{
    sidecar_v1_DropReport *r = &c->unreported;
    switch (kind) {
    case SC_ACTION_TRACE:
        r->trace_payloads++;
        r->traces += env->action.trace_payload.trace_count;
        break;
    case SC_ACTION_FLAG_EVALUATIONS:
        r->flag_evaluation_batches++;
        break;
    case SC_ACTION_EXPOSURES:
        r->exposure_batches++;
        break;
    case SC_ACTION_FLUSH:
    case SC_ACTION_PING:
    case SC_ACTION_STATS:
    case SC_ACTION_DROP_REPORT: /* its counts stay in `unreported` */
        break;
    default:
        r->other_actions++;
        break;
    }
}

static uint64_t enqueue_frame(sc_client_t *c, sc_action_kind_t kind,
                              sidecar_v1_Envelope *env, uint64_t budget_ns);

/* Connected, about to write: what was dropped since the last report goes
 * to the sidecar (io_lock held; the report is an ordinary frame, kept
 * until acknowledged). */
static void report_drops(sc_client_t *c)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    uv_mutex_lock(&c->buf_lock);
    sidecar_v1_DropReport r = c->unreported;
    bool any = r.trace_payloads != 0 || r.flag_evaluation_batches != 0 ||
               r.exposure_batches != 0 || r.other_actions != 0;
    memset(&c->unreported, 0, sizeof c->unreported);
    uv_mutex_unlock(&c->buf_lock);
    if (!any) {
        return;
    }
    env.which_action = sidecar_v1_Envelope_drop_report_tag;
    env.action.drop_report = r;
    if (enqueue_frame(c, SC_ACTION_DROP_REPORT, &env, 0) == 0) {
        uv_mutex_lock(&c->buf_lock); /* no room: told next time */
        sidecar_v1_DropReport *u = &c->unreported;
        u->trace_payloads += r.trace_payloads;
        u->traces += r.traces;
        u->flag_evaluation_batches += r.flag_evaluation_batches;
        u->exposure_batches += r.exposure_batches;
        u->other_actions += r.other_actions;
        uv_mutex_unlock(&c->buf_lock);
    }
}

/* Appends one frame (`seq` filled in here) to the queue, writing first if
 * the cap is reached and nobody else is writing. Counts what it drops.
 * Returns the seq, or 0 when the action was dropped. */
static uint64_t enqueue_frame(sc_client_t *c, sc_action_kind_t kind,
                              sidecar_v1_Envelope *env, uint64_t budget_ns)
{
    uint64_t deadline = now_ns() + budget_ns;
    for (int attempt = 0;; attempt++) {
        uv_mutex_lock(&c->buf_lock);
        uint64_t seq = ++c->next_seq;
        env->seq = seq;
        size_t size = 0;
        /* The cap covers everything not yet written: the queue and the
         * unsent part of what the writer took. */
        bool fits =
            sc_codec_encoded_size(env, &size) &&
            c->queue.len + c->sending_bytes + SC_FRAME_HEADER_SIZE + size <=
                c->opt.buffer_cap &&
            c->unacked_bytes <= c->opt.buffer_cap;
        if (fits && sc_codec_append_frame(&c->queue, env)) {
            c->stats.enqueued[kind]++;
            size_t queued = c->queue.len;
            uv_mutex_unlock(&c->buf_lock);
            if (queued >= c->opt.write_threshold && io_lock_try(c)) {
                pump(c, 0);
                uv_mutex_unlock(&c->io_lock);
            }
            return seq;
        }
        uv_mutex_unlock(&c->buf_lock);
        /* Full: one attempt to make room within the budget, if nobody else
         * is writing right now; otherwise the action is dropped. */
        if (attempt == 0 && io_lock_try(c)) {
            pump(c, deadline);
            uv_mutex_unlock(&c->io_lock);
            continue;
        }
        uv_mutex_lock(&c->buf_lock);
        c->stats.dropped_full[kind]++;
        note_drop(c, kind, env);
        uv_mutex_unlock(&c->buf_lock);
        return 0;
    }
}

int sc_client_enqueue(sc_client_t *c, sc_action_kind_t kind,
                      sidecar_v1_Envelope *env)
{
    check_fork(c);
    return enqueue_frame(c, kind, env,
                         (uint64_t)c->opt.enqueue_budget_us * 1000u) != 0
               ? 0
               : SC_EDROPPED;
}

int sc_client_send_trace(sc_client_t *c, const void *msgpack, size_t len,
                         uint32_t trace_count)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_trace_payload_tag;
    env.action.trace_payload.msgpack = sc_view_bytes(msgpack, len);
    env.action.trace_payload.trace_count = trace_count;
    return sc_client_enqueue(c, SC_ACTION_TRACE, &env);
}

int sc_client_flush(sc_client_t *c)
{
    check_fork(c);
    if (!io_lock_try(c)) {
        return 0; /* another thread is writing (it takes our frames too),
                     or a fork is under way: the next flush writes them */
    }
    int rc = pump(c, now_ns() + (uint64_t)c->opt.enqueue_budget_us * 1000u);
    uv_mutex_unlock(&c->io_lock);
    return rc == UV_EAGAIN ? 0 : rc;
}

/* ---- requests
 * ---------------------------------------------------------------- */

static bool connection_lost(int rc)
{
    return rc == UV_EPIPE || rc == UV_ECONNRESET || rc == UV_EOF ||
           rc == UV_ENOTCONN || rc == UV_ECONNABORTED;
}

/* Writes what is pending (the request included) and waits for w's reply. */
static int await_reply(sc_client_t *c, reply_wait_t *w, uint64_t deadline)
{
    int rc = pump(c, deadline);
    if (rc != 0) {
        return rc == UV_EAGAIN ? UV_ETIMEDOUT /* not even written */ : rc;
    }
    if (c->conn == NULL) {
        return UV_ENOTCONN; /* nothing left to write: see round_trip */
    }
    /* The reply cannot be there before the request was read: wait first,
     * rather than a read that finds nothing. */
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            return UV_ETIMEDOUT;
        }
        uint32_t ms = (uint32_t)((deadline - now + 999999u) / 1000000u);
        if (sc_plat_conn_wait(c->conn, true, false, ms) < 0) {
            disconnect(c);
            return UV_EPIPE;
        }
        if ((rc = read_replies(c, w)) < 0) {
            disconnect(c);
            return rc;
        }
        if (w->frame != NULL) {
            return 0;
        }
    }
}

/* Sends a request and waits for its reply, all under io_lock (enqueuers
 * are not held up: they only take buf_lock). On success the reply's body
 * is in w->frame (malloc'ed). A connection lost meanwhile (a sidecar killed
 * or restarted) is made again while time is left: the request, still
 * unacknowledged, goes again with everything else unacknowledged. */
static int round_trip(sc_client_t *c, sc_action_kind_t kind,
                      sidecar_v1_Envelope *env, pb_size_t reply_tag,
                      uint32_t timeout_ms, reply_wait_t *w)
{
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    io_lock_acquire(c);
    /* A request skips the reconnect backoff: the caller asked to wait. */
    c->next_attempt_ns = 0;
    pump(c, deadline); /* make room and connect first */
    memset(w, 0, sizeof *w);
    w->c = c;
    w->seq = enqueue_frame(c, kind, env, 0);
    w->tag = reply_tag;
    while (w->seq == 0 && c->conn != NULL && c->sent > c->acked &&
           now_ns() < deadline) {
        /* The buffer is held by frames waiting for their Ack: wait for
         * it (the request then fits). */
        uint64_t left = deadline - now_ns();
        reply_wait_t acks_only = {.c = c};
        if (sc_plat_conn_wait(c->conn, true, false,
                              (uint32_t)(left / 1000000u) + 1) <= 0 ||
            read_replies(c, &acks_only) < 0) {
            break;
        }
        w->seq = enqueue_frame(c, kind, env, 0);
    }
    int rc = w->seq != 0 ? 0 : SC_EDROPPED;
    for (int reconnects = 0; rc == 0; reconnects++) {
        rc = await_reply(c, w, deadline);
        if (!connection_lost(rc) || reconnects == 3 || now_ns() >= deadline) {
            break;
        }
        c->next_attempt_ns = 0;
        rc = 0;
        if (w->seq <= c->acked_seq) {
            /* Handled, but its reply went with the connection: ask again. */
            w->seq = enqueue_frame(c, kind, env, 0);
            rc = w->seq != 0 ? 0 : SC_EDROPPED;
        }
    }
    uv_mutex_unlock(&c->io_lock);
    return rc;
}

int sc_client_flush_sync(sc_client_t *c, uint32_t timeout_ms)
{
    return sc_client_flush_until(c, timeout_ms, false);
}

int sc_client_flush_until(sc_client_t *c, uint32_t timeout_ms, bool delivered)
{
    check_fork(c);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_flush_tag;
    env.action.flush.has_timeout_ms = true;
    env.action.flush.timeout_ms = timeout_ms;
    env.action.flush.deliver_now = true;
    env.action.flush.wait_for_delivery = delivered;
    reply_wait_t w;
    int rc = round_trip(c, SC_ACTION_FLUSH, &env,
                        sidecar_v1_Envelope_flush_reply_tag, timeout_ms, &w);
    if (rc == 0) {
        sidecar_v1_Envelope reply;
        if (sc_codec_decode(w.frame, w.len, &reply, NULL) &&
            reply.action.flush_reply.status ==
                sidecar_v1_FlushReply_STATUS_TIMEOUT) {
            rc = UV_ETIMEDOUT;
        }
        uv_mutex_lock(&c->buf_lock);
        c->barrier_seq = w.seq;
        uv_mutex_unlock(&c->buf_lock);
    }
    free(w.frame);
    return rc;
}

static void copy_str(char *dst, size_t size, sc_view_t v)
{
    size_t n = v.len < size - 1 ? v.len : size - 1;
    if (n > 0) {
        memcpy(dst, v.ptr, n);
    }
    dst[n] = '\0';
}

int sc_client_ping(sc_client_t *c, uint32_t timeout_ms, sc_ping_result_t *out)
{
    check_fork(c);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_ping_tag;
    env.action.ping.has_client_time_ns = true;
    env.action.ping.client_time_ns = now_ns();
    reply_wait_t w;
    int rc = round_trip(c, SC_ACTION_PING, &env,
                        sidecar_v1_Envelope_ping_reply_tag, timeout_ms, &w);
    sidecar_v1_Envelope reply;
    if (rc == 0 && sc_codec_decode(w.frame, w.len, &reply, NULL) &&
        out != NULL) {
        const sidecar_v1_PingReply *r = &reply.action.ping_reply;
        out->server_pid = r->server_pid;
        copy_str(out->mode, sizeof out->mode, r->mode);
        copy_str(out->server_version, sizeof out->server_version,
                 r->server_version);
        out->round_trip_ns = now_ns() - r->client_time_ns;
    }
    free(w.frame);
    return rc;
}

int sc_client_sidecar_stats(sc_client_t *c, uint32_t timeout_ms, char **json)
{
    check_fork(c);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_stats_request_tag;
    reply_wait_t w;
    int rc = round_trip(c, SC_ACTION_STATS, &env,
                        sidecar_v1_Envelope_stats_reply_tag, timeout_ms, &w);
    sidecar_v1_Envelope reply;
    if (rc == 0 && sc_codec_decode(w.frame, w.len, &reply, NULL)) {
        sc_view_t v = reply.action.stats_reply.json;
        *json = malloc(v.len + 1);
        if (*json == NULL) {
            rc = UV_ENOMEM;
        } else {
            copy_str(*json, v.len + 1, v);
        }
    }
    free(w.frame);
    return rc;
}

bool sc_client_has_unflushed(sc_client_t *c)
{
    check_fork(c);
    uv_mutex_lock(&c->buf_lock);
    /* Every frame after the barrier's own seq was enqueued later. */
    bool pending = c->queue.len > 0 || c->sending_bytes > 0 ||
                   c->unacked_bytes > 0 || c->next_seq > c->barrier_seq;
    uv_mutex_unlock(&c->buf_lock);
    return pending;
}

void sc_client_stats(sc_client_t *c, sc_client_stats_t *out)
{
    check_fork(c);
    uv_mutex_lock(&c->buf_lock);
    *out = c->stats;
    out->buffered_bytes = c->queue.len + c->sending_bytes + c->unacked_bytes;
    uv_mutex_unlock(&c->buf_lock);
}

void sc_client_free(sc_client_t *c)
{
    if (c == NULL) {
        return;
    }
    check_fork(c);
    uv_mutex_lock(&c->io_lock);
    pump(c, now_ns() + (uint64_t)c->opt.enqueue_budget_us * 1000u);
    sc_plat_conn_close(c->conn);
    uv_mutex_unlock(&c->io_lock);
    uv_mutex_destroy(&c->io_lock);
    uv_mutex_destroy(&c->buf_lock);
    sc_buf_free(&c->queue);
    sc_buf_free(&c->sending);
    sc_frame_reader_free(&c->replies);
    free(c->strings);
    free(c);
}
