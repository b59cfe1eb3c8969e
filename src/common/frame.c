#include "frame.h"

#include "codec.h"

#include <string.h>

#define DEFAULT_READ_CHUNK (64u * 1024u)

void sc_frame_reader_init(sc_frame_reader_t *r, size_t max_frame)
{
    r->buf = (sc_buf_t){0};
    r->max_frame = max_frame;
    r->read_chunk = DEFAULT_READ_CHUNK;
    r->too_large = 0;
}

void sc_frame_reader_free(sc_frame_reader_t *r)
{
    sc_buf_free(&r->buf);
}

bool sc_frame_reader_space(sc_frame_reader_t *r, uint8_t **p, size_t *len)
{
    size_t want = r->read_chunk;
    if (r->buf.len >= SC_FRAME_HEADER_SIZE) {
        /* A frame is pending: room for the rest of it in one go, as long as
         * its length is acceptable (an oversized one is rejected at commit
         * before anything is allocated for it). */
        size_t body = sc_frame_get_len(r->buf.data);
        size_t need = SC_FRAME_HEADER_SIZE + body;
        if (body <= r->max_frame && need > r->buf.len + want) {
            want = need - r->buf.len;
        }
    }
    if (!sc_buf_reserve(&r->buf, want)) {
        return false;
    }
    *p = r->buf.data + r->buf.len;
    *len = r->buf.cap - r->buf.len;
    return true;
}

/* Hands out complete frames from the front of the buffer, then moves the
 * incomplete rest (if any) to the front. */
static sc_frame_status_t drain(sc_frame_reader_t *r, sc_frame_fn *fn, void *ctx)
{
    size_t off = 0;
    sc_frame_status_t st = SC_FRAME_OK;
    while (r->buf.len - off >= SC_FRAME_HEADER_SIZE) {
        uint32_t body = sc_frame_get_len(r->buf.data + off);
        if (body > r->max_frame) {
            r->too_large = body;
            st = SC_FRAME_TOO_LARGE;
            break;
        }
        if (r->buf.len - off - SC_FRAME_HEADER_SIZE < body) {
            break;
        }
        const uint8_t *p = r->buf.data + off + SC_FRAME_HEADER_SIZE;
        off += SC_FRAME_HEADER_SIZE + body;
        if (!fn(ctx, p, body)) {
            st = SC_FRAME_STOPPED;
            break;
        }
    }
    /* Only when frames went out: moving the pending rest onto itself after
     * every read would make a large frame arriving in small reads cost
     * quadratic time wherever memmove does not skip src == dst. */
    if (off > 0) {
        sc_buf_consume(&r->buf, off);
    }
    /* Give back the room a large frame needed once nothing is pending, so an
     * idle connection holds no more than a read chunk. */
    if (r->buf.len == 0 && r->buf.cap > 4 * r->read_chunk) {
        sc_buf_free(&r->buf);
    }
    return st;
}

sc_frame_status_t sc_frame_reader_commit(sc_frame_reader_t *r, size_t n,
                                         sc_frame_fn *fn, void *ctx)
{
    r->buf.len += n;
    return drain(r, fn, ctx);
}

sc_frame_status_t sc_frame_reader_feed(sc_frame_reader_t *r,
                                       const uint8_t *data, size_t len,
                                       sc_frame_fn *fn, void *ctx)
{
    sc_frame_status_t st = SC_FRAME_OK;
    while (len > 0) {
        uint8_t *space;
        size_t room;
        if (!sc_frame_reader_space(r, &space, &room)) {
            return SC_FRAME_NOMEM;
        }
        size_t n = len < room ? len : room;
        memcpy(space, data, n);
        data += n;
        len -= n;
        st = sc_frame_reader_commit(r, n, fn, ctx);
        if (st != SC_FRAME_OK) {
            break;
        }
    }
    return st;
}
