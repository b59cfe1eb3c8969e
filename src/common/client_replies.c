/* What the sidecar sends back to the client: Acks that release the frames
 * kept for sending again, and the replies of round trips (flush barriers,
 * ping, stats). */
#include "client_internal.h"

#include "codec.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

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
        sc_client__note_held(c);
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
int sc_client__read_replies(sc_client_t *c, reply_wait_t *w)
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
    int rc = sc_client__pump(c, deadline);
    if (rc != 0) {
        return rc == UV_EAGAIN ? UV_ETIMEDOUT /* not even written */ : rc;
    }
    if (c->conn == NULL) {
        return UV_ENOTCONN; /* nothing left to write: see round_trip */
    }
    /* The reply cannot be there before the request was read: wait first,
     * rather than a read that finds nothing. */
    for (;;) {
        uint64_t now = sc_client__now_ns();
        if (now >= deadline) {
            return UV_ETIMEDOUT;
        }
        uint32_t ms = (uint32_t)((deadline - now + 999999u) / 1000000u);
        if (sc_plat_conn_wait(c->conn, true, false, ms) < 0) {
            sc_client__disconnect(c);
            return UV_EPIPE;
        }
        if ((rc = sc_client__read_replies(c, w)) < 0) {
            sc_client__disconnect(c);
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
    uint64_t deadline = sc_client__now_ns() + (uint64_t)timeout_ms * 1000000u;
    sc_client__io_lock_acquire(c);
    /* A request skips the reconnect backoff: the caller asked to wait. */
    c->next_attempt_ns = 0;
    sc_client__pump(c, deadline); /* make room and connect first */
    memset(w, 0, sizeof *w);
    w->c = c;
    w->seq = sc_client__enqueue_frame(c, kind, env, 0);
    w->tag = reply_tag;
    while (w->seq == 0 && c->conn != NULL && c->sent > c->acked &&
           sc_client__now_ns() < deadline) {
        /* The buffer is held by frames waiting for their Ack: wait for
         * it (the request then fits). */
        uint64_t left = deadline - sc_client__now_ns();
        reply_wait_t acks_only = {.c = c};
        if (sc_plat_conn_wait(c->conn, true, false,
                              (uint32_t)(left / 1000000u) + 1) <= 0 ||
            sc_client__read_replies(c, &acks_only) < 0) {
            break;
        }
        w->seq = sc_client__enqueue_frame(c, kind, env, 0);
    }
    int rc = w->seq != 0 ? 0 : SC_EDROPPED;
    for (int reconnects = 0; rc == 0; reconnects++) {
        rc = await_reply(c, w, deadline);
        if (!connection_lost(rc) || reconnects == 3 ||
            sc_client__now_ns() >= deadline) {
            break;
        }
        c->next_attempt_ns = 0;
        rc = 0;
        if (w->seq <= c->acked_seq) {
            /* Handled, but its reply went with the connection: ask again. */
            w->seq = sc_client__enqueue_frame(c, kind, env, 0);
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
    sc_client__check_fork(c);
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
    sc_client__check_fork(c);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_ping_tag;
    env.action.ping.has_client_time_ns = true;
    env.action.ping.client_time_ns = sc_client__now_ns();
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
        out->round_trip_ns = sc_client__now_ns() - r->client_time_ns;
    }
    free(w.frame);
    return rc;
}

int sc_client_sidecar_stats(sc_client_t *c, uint32_t timeout_ms, char **json)
{
    sc_client__check_fork(c);
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
