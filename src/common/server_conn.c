/* One admitted connection: its start, the read path (bytes into the frame
 * reader under the reassembly budget, the clock of the pending frame, the
 * sweep of stalled frames), its close and release, and the owner's
 * accessors. What a frame holds is server_dispatch.c's, what goes back
 * server_reply.c's; server_internal.h holds what they share. */
#include "server_internal.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>

static void conn_free(sc_server_conn_t *c)
{
    sc_frame_reader_free(&c->reader);
    sc_server_budget_settle(c->server, c); /* gives it all back */
    sc_server__identity_free(&c->identity);
    free(c);
}

/* A connection is released when libuv is done with its handle and no flush
 * barrier still refers to it, whichever comes last. */
void sc_server__maybe_release(sc_server_conn_t *c)
{
    if (c->handle_closed && c->pending_flushes == 0 && c->reply_backlog == 0) {
        sc_server_conn_released(c->server, c);
        conn_free(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    sc_server_conn_t *c = (sc_server_conn_t *)h;
    c->handle_closed = true;
    sc_server__maybe_release(c);
}

void sc_conn_close(sc_server_conn_t *c)
{
    if (!c->closing) {
        /* What was handled is acknowledged before the connection goes, so
         * the client does not send it again (a write into a socket with
         * room completes at once; otherwise it is lost with the socket and
         * the session table catches the resend). */
        if (!c->final_ack) {
            c->final_ack = true;
            c->ack_in_flight = false;
            sc_conn_ack(c);
            if (c->closing) {
                return; /* that write failed and closed it already */
            }
        }
        c->closing = true;
        if (c->fd_registered) {
            sc_fd_registry_remove(c->server->cfg.conn_fds, c->registered_fd);
            c->fd_registered = false;
        }
        if (c->budget_wait) {
            c->budget_wait = false;
            c->server->budget_waiters--;
        }
        uv_close((uv_handle_t *)&c->pipe, on_closed);
    }
}

const sc_client_identity_t *sc_server_conn_identity(const sc_server_conn_t *c)
{
    return c->has_identity ? &c->identity : NULL;
}

bool sc_server_conn_flag_counts_enabled(const sc_server_conn_t *c)
{
    return !c->flag_counts_disabled;
}

void sc_server_conn_set_flag_counts_enabled(sc_server_conn_t *c, bool on)
{
    c->flag_counts_disabled = !on;
}

void *sc_server_conn_owner_data(const sc_server_conn_t *c)
{
    return c->owner_data;
}

void sc_server_conn_set_owner_data(sc_server_conn_t *c, void *data)
{
    c->owner_data = data;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sc_server_conn_t *c = (sc_server_conn_t *)h;
    uint8_t *p = NULL;
    size_t len = 0;
    /* The budget first: what the reader would hold must fit before it is
     * allocated. Otherwise the read is deferred (on_read stops reading). */
    if (!sc_server_budget_take(c->server, c,
                               sc_frame_reader_next_capacity(&c->reader))) {
        c->budget_wait = true;
        *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    if (!sc_frame_reader_space(&c->reader, &p, &len)) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf =
        uv_buf_init((char *)p, (unsigned)(len > UINT32_MAX ? UINT32_MAX : len));
}

/* After a read: when the pending frame began (frames that completed in
 * this read restart the clock), and the budget charge. */
static void after_read(sc_server_conn_t *c, uint64_t frames_before)
{
    if (c->closing) {
        /* Out of the reader's drain now: what it holds can go, rather than
         * when the handle is released (after flush barriers complete). */
        sc_frame_reader_free(&c->reader);
    }
    if (sc_frame_reader_pending(&c->reader) == 0) {
        c->frame_started_ms = 0;
    } else if (c->frame_started_ms == 0 || c->frames_in != frames_before) {
        c->frame_started_ms = uv_now(c->server->loop);
    }
    sc_server_budget_settle(c->server, c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    sc_server_conn_t *c = (sc_server_conn_t *)stream;
    if (nread == UV_ENOBUFS && c->budget_wait) {
        /* Over the reassembly budget: unread bytes stay in the socket
         * until sc_server_budget_settle() frees some and resumes us. */
        uv_read_stop(stream);
        c->server->budget_waiters++;
        c->server->stats.reassembly_waits++;
        return;
    }
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            SC_LOG_LIMITED(SC_LOG_ERROR, "out of memory reading pid=%u",
                           c->peer.pid);
        }
        sc_conn_close(c);
        after_read(c, c->frames_in);
        return;
    }
    c->server->stats.bytes_in += (uint64_t)nread;
    uint64_t frames_before = c->frames_in;
    sc_frame_status_t st = sc_frame_reader_commit(&c->reader, (size_t)nread,
                                                  sc_server__on_frame, c);
    if (st == SC_FRAME_TOO_LARGE) {
        char what[96];
        snprintf(what, sizeof what, "frame of %u bytes exceeds the %zu limit",
                 c->reader.too_large, c->server->cfg.max_frame);
        sc_server__protocol_error(c, &c->server->stats.oversized_frames,
                                  sidecar_v1_ErrorReply_CODE_FRAME_TOO_LARGE,
                                  what);
    } else if (st == SC_FRAME_NOMEM) {
        sc_conn_close(c);
    }
    sc_conn_ack(c); /* once per read, however many frames it held */
    after_read(c, frames_before);
}

void sc_conn_resume(sc_server_conn_t *c)
{
    c->budget_wait = false;
    c->server->budget_waiters--;
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0) {
        sc_conn_close(c);
    }
}

void sc_conn_sweep(sc_server_conn_t *c, uint64_t now)
{
    uint64_t timeout = c->server->cfg.frame_timeout_ms;
    if (c->closing || c->frame_started_ms == 0 || timeout == 0 ||
        now - c->frame_started_ms < timeout) {
        return;
    }
    char what[96];
    snprintf(what, sizeof what,
             "a frame not complete %llu ms after its first byte",
             (unsigned long long)timeout);
    sc_server__protocol_error(c, &c->server->stats.stalled_frames_closed,
                              sidecar_v1_ErrorReply_CODE_FRAME_TIMEOUT, what);
    after_read(c, c->frames_in); /* its bytes go back to the budget now */
}

void sc_conn_start(sc_server_conn_t *c)
{
    sc_frame_reader_init(&c->reader, c->server->cfg.max_frame);
    c->pipe.data = c;
    int rc = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    if (rc != 0) {
        sc_conn_close(c);
    }
}
