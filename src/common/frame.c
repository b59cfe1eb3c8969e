#include "frame.h"

#include "codec.h"

#include <stdlib.h>
#include <string.h>

void sc_frame_reader_init(sc_frame_reader_t *r, size_t max_frame)
{
    r->buf = (sc_buf_t){0};
    r->max_frame = max_frame;
    r->read_chunk = SC_FRAME_READ_CHUNK;
    r->too_large = 0;
}

void sc_frame_reader_free(sc_frame_reader_t *r)
{
    sc_buf_free(&r->buf);
}

size_t sc_frame_reader_next_capacity(const sc_frame_reader_t *r)
{
    size_t len = r->buf.len, cap = r->buf.cap;
    if (len >= SC_FRAME_HEADER_SIZE) {
        /* A frame is pending: room for the rest of it in one go, as long as
         * its length is acceptable (an oversized one is rejected at commit
         * before anything is allocated for it). */
        size_t body = sc_frame_get_len(r->buf.data);
        size_t need = SC_FRAME_HEADER_SIZE + body;
        if (body <= r->max_frame) {
            if (need <= cap) {
                return cap; /* room for all of it (so some is free) */
            }
            return need > len + r->read_chunk ? need : len + r->read_chunk;
        }
    }
    /* Grown only when full: growing by what was just read on every read
     * would make a frame arriving in small reads cost quadratic time. */
    return cap > len ? cap : len + r->read_chunk;
}

/* Exactly `cap` bytes (sc_buf_reserve would round a 4 MiB frame up to
 * 8 MiB): what the reader holds is what its owner accounts for. */
static bool resize(sc_frame_reader_t *r, size_t cap)
{
    uint8_t *p = realloc(r->buf.data, cap);
    if (p == NULL) {
        return false;
    }
    r->buf.data = p;
    r->buf.cap = cap;
    return true;
}

bool sc_frame_reader_space(sc_frame_reader_t *r, uint8_t **p, size_t *len)
{
    size_t cap = sc_frame_reader_next_capacity(r);
    if (cap > r->buf.cap && !resize(r, cap)) {
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
    /* An idle connection holds nothing, and the room a large frame needed
     * is given back once only a small rest of the next one is pending. */
    if (r->buf.len == 0) {
        sc_buf_free(&r->buf);
    } else if (off > 0 && r->buf.cap > 4 * r->read_chunk &&
               r->buf.len <= r->read_chunk) {
        (void)resize(r, r->buf.len + r->read_chunk); /* kept if it fails */
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
