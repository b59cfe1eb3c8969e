/* What the server writes to a connection: replies (a small one tried at
 * once, the rest queued within the backlog limit), Acks, ErrorReply and the
 * protocol errors that close the connection, and the answers to requests
 * (ping, stats, flush barriers). */
#include "server_internal.h"

#include "codec.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* Replies up to this size are tried without an allocation first. */
#define SMALL_REPLY_MAX 256

typedef enum send_result {
    SEND_FAILED,
    SEND_QUEUED, /* a uv_write is under way */
    SENT_NOW     /* all written before send_frame returned */
} send_result_t;

typedef struct reply {
    uv_write_t req;
    sc_server_conn_t *conn;
    bool is_ack;
    size_t len;
    uint8_t data[];
} reply_t;

static void on_reply_written(uv_write_t *req, int status)
{
    reply_t *r = (reply_t *)req;
    sc_server_conn_t *c = r->conn;
    c->reply_backlog -= r->len;
    if (r->is_ack) {
        c->ack_in_flight = false;
    }
    if (status != 0 && status != UV_ECANCELED) {
        sc_conn_close(c);
    } else if (r->is_ack) {
        sc_conn_ack(c); /* what was handled while this one was written */
    }
    free(r);
    sc_server__maybe_release(c);
}

/* A small reply (an Ack, a FlushReply, a PingReply) written at once when
 * nothing is queued before it: no allocation, no poll registration. Returns
 * the bytes written (all, some or none), or a negative error. */
static long try_write_small(sc_server_conn_t *c, const sidecar_v1_Envelope *env,
                            size_t size, uint8_t *frame)
{
    size_t written = 0;
    if (!sc_codec_encode(env, frame + SC_FRAME_HEADER_SIZE, size, &written)) {
        return UV_EINVAL;
    }
    sc_frame_put_len(frame, (uint32_t)size);
    if (c->reply_backlog != 0) {
        return 0; /* behind what is queued */
    }
    uv_buf_t buf =
        uv_buf_init((char *)frame, (unsigned)(SC_FRAME_HEADER_SIZE + size));
    int n = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
    return n == UV_EAGAIN || n == UV_ENOSYS ? 0 : n;
}

/* Sends one reply frame: written at once when it fits, else queued with a
 * uv_write; SEND_FAILED when it can be neither (closing, a write error, no
 * memory, the backlog limit). */
static send_result_t send_frame(sc_server_conn_t *c,
                                const sidecar_v1_Envelope *env, bool is_ack)
{
    if (c->closing) {
        return SEND_FAILED;
    }
    size_t size = 0;
    if (!sc_codec_encoded_size(env, &size)) {
        return SEND_FAILED;
    }
    size_t len = SC_FRAME_HEADER_SIZE + size;
    uint8_t small[SMALL_REPLY_MAX];
    size_t done = 0;
    if (len <= sizeof small) {
        long n = try_write_small(c, env, size, small);
        if (n < 0) {
            sc_conn_close(c);
            return SEND_FAILED;
        }
        if ((size_t)n == len) {
            return SENT_NOW;
        }
        done = (size_t)n; /* the rest is queued below */
    }
    reply_t *r = malloc(sizeof *r + len);
    size_t written = 0;
    if (r == NULL) {
        return SEND_FAILED;
    }
    if (len <= sizeof small) {
        memcpy(r->data, small + done, len - done);
        len -= done;
    } else if (!sc_codec_encode(env, r->data + SC_FRAME_HEADER_SIZE, size,
                                &written)) {
        free(r);
        return SEND_FAILED;
    } else {
        sc_frame_put_len(r->data, (uint32_t)size);
    }
    r->conn = c;
    r->is_ack = is_ack;
    r->len = len;
    /* A peer that asks and never reads its answers would make us buffer
     * without bound: past the backlog limit it is closed instead. */
    if (done == 0 &&
        c->reply_backlog + len > c->server->cfg.max_reply_backlog) {
        free(r);
        if (is_ack) {
            return SEND_FAILED; /* acks are cumulative: a later one says it */
        }
        c->server->stats.stuck_readers_closed++;
        SC_LOG_LIMITED(SC_LOG_WARN, "closing pid=%u: it does not read replies",
                       c->peer.pid);
        sc_conn_close(c);
        return SEND_FAILED;
    }
    uv_buf_t buf = uv_buf_init((char *)r->data, (unsigned)len);
    if (uv_write(&r->req, (uv_stream_t *)&c->pipe, &buf, 1, on_reply_written) !=
        0) {
        free(r);
        sc_conn_close(c);
        return SEND_FAILED;
    }
    c->reply_backlog += len;
    return SEND_QUEUED;
}

static void send_reply(sc_server_conn_t *c, const sidecar_v1_Envelope *env)
{
    send_frame(c, env, false);
}

void sc_conn_ack(sc_server_conn_t *c)
{
    if (c->session_id == 0 || c->ack_in_flight ||
        c->handled_seq <= c->acked_seq) {
        return;
    }
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_ack_tag;
    env.action.ack.handled_through_seq = c->handled_seq;
    send_result_t sent = send_frame(c, &env, true);
    if (sent != SEND_FAILED) {
        c->ack_in_flight = sent == SEND_QUEUED;
        c->acked_seq = c->handled_seq;
        c->server->stats.acks_sent++;
    }
}

void sc_server__send_error(sc_server_conn_t *c, uint64_t seq,
                           sidecar_v1_ErrorReply_Code code, const char *what)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_error_reply_tag;
    env.action.error_reply.code = code;
    env.action.error_reply.message = sc_view_str(what);
    send_reply(c, &env);
}

void sc_server__protocol_error(sc_server_conn_t *c, uint64_t *counter,
                               sidecar_v1_ErrorReply_Code code,
                               const char *what)
{
    (*counter)++;
    SC_LOG_LIMITED(SC_LOG_WARN, "closing connection of pid=%u: %s", c->peer.pid,
                   what);
    sc_server__send_error(c, 0, code, what);
    sc_conn_close(c);
}

/* ---- replies ------------------------------------------------------------ */

void sc_server__reply_ping(sc_server_conn_t *c, uint64_t seq,
                           const sidecar_v1_Ping *p)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_ping_reply_tag;
    sidecar_v1_PingReply *r = &env.action.ping_reply;
    r->has_client_time_ns = p->has_client_time_ns;
    r->client_time_ns = p->client_time_ns;
    r->server_pid = sc_plat_getpid();
    r->server_version = sc_view_str(SIDECAR_VERSION);
    r->mode = sc_view_str(c->server->cfg.mode);
    send_reply(c, &env);
}

void sc_server__reply_stats(sc_server_conn_t *c, uint64_t seq)
{
    sc_buf_t json = {0};
    sc_server_stats_json(c->server, &json);
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_stats_reply_tag;
    env.action.stats_reply.json = sc_view_bytes(json.data, json.len);
    send_reply(c, &env);
    sc_buf_free(&json);
}

void sc_server__start_flush(sc_server_conn_t *c, const sc_flush_barrier_t *b,
                            const sidecar_v1_Flush *f)
{
    sc_server_t *s = c->server;
    c->pending_flushes++;
    /* Without deliver_now the barrier is already reached: every earlier
     * action of this connection has been handled synchronously. */
    if (s->h.on_flush == NULL || !f->deliver_now) {
        sc_server_flush_done(c, b, sidecar_v1_FlushReply_STATUS_OK);
        return;
    }
    s->h.on_flush(s->h.ctx, c, b, f);
}

void sc_server_flush_done(sc_server_conn_t *c, const sc_flush_barrier_t *b,
                          sidecar_v1_FlushReply_Status status)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = b->seq;
    env.which_action = sidecar_v1_Envelope_flush_reply_tag;
    env.action.flush_reply.status = status;
    env.action.flush_reply.actions_handled = b->actions_before;
    send_reply(c, &env);
    /* A FlushReply acknowledges up to its seq (docs/wire.md): no Ack for
     * the same frames right behind it. */
    if (b->seq > c->acked_seq) {
        c->acked_seq = b->seq;
    }
    c->pending_flushes--;
    sc_server__maybe_release(c);
}
