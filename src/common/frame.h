/* Streaming frame reassembly: bytes arrive in arbitrary chunks (one byte at a
 * time, or many frames at once); complete frames are handed out in order.
 *
 * Reading can be zero-copy: sc_frame_reader_space() hands out the free tail
 * of the reassembly buffer for the transport to read into, and
 * sc_frame_reader_commit() processes what was read. sc_frame_reader_feed()
 * copies from a caller buffer instead. */
#ifndef SIDECAR_FRAME_H
#define SIDECAR_FRAME_H

#include "buf.h"

typedef enum sc_frame_status {
    SC_FRAME_OK = 0,
    SC_FRAME_TOO_LARGE = 1, /* a length above the maximum: never allocated */
    SC_FRAME_NOMEM = 2,
    SC_FRAME_STOPPED = 3, /* the callback asked to stop */
} sc_frame_status_t;

/* Called once per complete frame. `body` is valid only during the call.
 * Returning false stops processing (SC_FRAME_STOPPED). */
typedef bool sc_frame_fn(void *ctx, const uint8_t *body, size_t len);

/* Free space offered to a read when no large frame is pending. */
#define SC_FRAME_READ_CHUNK (64u * 1024u)

typedef struct sc_frame_reader {
    sc_buf_t buf;
    size_t max_frame;   /* largest accepted body length */
    size_t read_chunk;  /* minimum free space offered to a reader */
    uint32_t too_large; /* the offending length, after SC_FRAME_TOO_LARGE */
} sc_frame_reader_t;

void sc_frame_reader_init(sc_frame_reader_t *r, size_t max_frame);
void sc_frame_reader_free(sc_frame_reader_t *r);

/* The capacity (bytes held) sc_frame_reader_space() would give the reader
 * now: its current capacity, or what the pending frame needs, or a read
 * chunk. Allocates nothing, so an owner can budget before it reads. */
size_t sc_frame_reader_next_capacity(const sc_frame_reader_t *r);

/* Bytes the reader holds (0 when idle: an idle reader frees its buffer). */
static inline size_t sc_frame_reader_capacity(const sc_frame_reader_t *r)
{
    return r->buf.cap;
}

/* Free space to read into (at least one byte; more when a long frame is
 * pending, but never beyond what that frame needs plus `read_chunk`). The
 * buffer grows to exactly sc_frame_reader_next_capacity(). */
bool sc_frame_reader_space(sc_frame_reader_t *r, uint8_t **p, size_t *len);

/* `n` bytes were written at the space returned last; hands out every frame
 * that is now complete. */
sc_frame_status_t sc_frame_reader_commit(sc_frame_reader_t *r, size_t n,
                                         sc_frame_fn *fn, void *ctx);

/* Copies `len` bytes in and hands out every complete frame. */
sc_frame_status_t sc_frame_reader_feed(sc_frame_reader_t *r,
                                       const uint8_t *data, size_t len,
                                       sc_frame_fn *fn, void *ctx);

/* Bytes of an incomplete frame held right now. */
static inline size_t sc_frame_reader_pending(const sc_frame_reader_t *r)
{
    return r->buf.len;
}

#endif
