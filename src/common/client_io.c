/* The connection of the client (io_lock held throughout): connecting and the
 * Hello, writing queued frames (pump), and the disconnect that sends again
 * what was not acknowledged. */
#include "client_internal.h"

#include "codec.h"
#include "log.h"

#include <string.h>

/* Unacknowledged bytes past which a write first reads the Acks waiting in
 * the socket (below it they wait: reading costs a system call). */
#define ACK_READ_BYTES (64u * 1024)

/* Frames of `b` that start in [from, to). */
uint64_t sc_client__frames_between(const sc_buf_t *b, size_t from, size_t to)
{
    uint64_t n = 0;
    for (size_t off = from; off < to && off + SC_FRAME_HEADER_SIZE <= b->len;
         n++) {
        off += SC_FRAME_HEADER_SIZE + sc_frame_get_len(b->data + off);
    }
    return n;
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

void sc_client__disconnect(sc_client_t *c)
{
    if (c->conn == NULL) {
        return;
    }
    /* Acks the sidecar wrote before the connection ended are still there
     * to read: what they cover is not sent again. */
    reply_wait_t acks_only = {.c = c};
    sc_client__read_replies(c, &acks_only);
    sc_plat_conn_close(c->conn);
    c->conn = NULL;
    uv_mutex_lock(&c->buf_lock);
    c->stats.disconnects++;
    /* Everything unacknowledged -- a half-written frame too -- goes again,
     * whole, on the next connection; the sidecar drops what it had
     * handled already (by session and seq). */
    c->stats.frames_resent +=
        sc_client__frames_between(&c->sending, c->acked, c->sent);
    c->sent = c->acked;
    c->front_remaining = 0;
    sc_client__note_held(c);
    uv_mutex_unlock(&c->buf_lock);
    sc_frame_reader_free(&c->replies);
    sc_frame_reader_init(&c->replies, REPLY_MAX_FRAME);
}

/* Writes all of `data` (the Hello of a new connection) within `timeout_ms`. */
static int write_all(sc_client_t *c, const uint8_t *data, size_t len,
                     uint32_t timeout_ms)
{
    uint64_t deadline = sc_client__now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (len > 0) {
        long n = sc_plat_conn_write(c->conn, data, len);
        if (n < 0) {
            return (int)n;
        }
        data += n;
        len -= (size_t)n;
        uint64_t now = sc_client__now_ns();
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
    uint64_t now = sc_client__now_ns();
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
        c->stats.frames_written +=
            sc_client__frames_between(&hello, 0, hello.len);
        c->stats.bytes_written += hello.len;
        c->stats.writes++;
        uv_mutex_unlock(&c->buf_lock);
    }
    sc_buf_free(&hello);
    if (rc != 0) {
        sc_client__disconnect(c);
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
int sc_client__pump(sc_client_t *c, uint64_t deadline_ns)
{
    uv_mutex_lock(&c->buf_lock);
    bool pending = c->queue.len > 0 || c->sending.len > c->sent;
    uv_mutex_unlock(&c->buf_lock);
    if (!pending) {
        return 0;
    }
    /* Connect before taking frames off the queue: while no sidecar is
     * reachable they stay queued, where the cap applies to them. */
    uint64_t now = sc_client__now_ns();
    uint32_t wait_ms =
        deadline_ns > now ? (uint32_t)((deadline_ns - now) / 1000000u) : 0;
    int rc = ensure_connected(c, wait_ms > 0 ? wait_ms : 1);
    if (rc != 0) {
        return rc;
    }
    sc_client__report_drops(c);
    /* A small buffer is mostly frames waiting for their Ack: read sooner. */
    size_t ack_read = c->opt.buffer_cap / 4 < ACK_READ_BYTES
                          ? c->opt.buffer_cap / 4
                          : ACK_READ_BYTES;
    if (c->sent - c->acked >= ack_read) {
        reply_wait_t acks_only = {.c = c};
        if ((rc = sc_client__read_replies(c, &acks_only)) < 0) {
            SC_LOG_LIMITED(SC_LOG_INFO, "sidecar connection lost: %s",
                           uv_strerror(rc));
            sc_client__disconnect(c);
            return rc;
        }
    }
    for (;;) {
        uv_mutex_lock(&c->buf_lock);
        take_queue(c); /* takes everything once `sending` is drained */
        sc_client__note_held(c);
        uv_mutex_unlock(&c->buf_lock);
        if (c->sending.len == c->sent) {
            return 0;
        }
        long n = sc_plat_conn_write(c->conn, c->sending.data + c->sent,
                                    c->sending.len - c->sent);
        if (n < 0) {
            SC_LOG_LIMITED(SC_LOG_INFO, "sidecar connection lost: %s",
                           uv_strerror((int)n));
            sc_client__disconnect(c);
            return (int)n;
        }
        if (n > 0) {
            uint64_t frames = account_written(c, (size_t)n);
            uv_mutex_lock(&c->buf_lock);
            c->sent += (size_t)n;
            sc_client__note_held(c);
            c->stats.frames_written += frames;
            c->stats.bytes_written += (uint64_t)n;
            c->stats.writes++;
            uv_mutex_unlock(&c->buf_lock);
        }
        now = sc_client__now_ns();
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
            sc_client__disconnect(c);
            return UV_EPIPE;
        }
    }
}
