/* The frame reader (src/common/frame.c): frames come out whole and in order
 * however the byte stream is chunked, through the copy path (feed) and the
 * zero-copy path (space + commit); an oversized length is refused before
 * anything is allocated for it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FRAME (1024u * 1024u)
/* docs/wire.md: the default maximum frame body. */
#define DEFAULT_MAX_FRAME (4u * 1024u * 1024u)

/* ---- A stream of frames with known bodies ------------------------------- */

typedef struct stream {
    sc_buf_t bytes;
    size_t count;
    size_t *body_len;  /* per frame */
    size_t *frame_end; /* offset just past each frame in `bytes` */
} stream_t;

static uint8_t body_byte(size_t frame, size_t i)
{
    return (uint8_t)(frame * 31 + i * 7 + 1);
}

static void stream_add(stream_t *s, size_t len)
{
    s->body_len = realloc(s->body_len, (s->count + 1) * sizeof(size_t));
    s->frame_end = realloc(s->frame_end, (s->count + 1) * sizeof(size_t));
    assert_non_null(s->body_len);
    assert_non_null(s->frame_end);
    uint8_t header[SC_FRAME_HEADER_SIZE];
    sc_frame_put_len(header, (uint32_t)len);
    assert_true(sc_buf_append(&s->bytes, header, sizeof header));
    assert_true(sc_buf_reserve(&s->bytes, len));
    for (size_t i = 0; i < len; i++) {
        s->bytes.data[s->bytes.len++] = body_byte(s->count, i);
    }
    s->body_len[s->count] = len;
    s->frame_end[s->count] = s->bytes.len;
    s->count++;
}

static void stream_free(stream_t *s)
{
    sc_buf_free(&s->bytes);
    free(s->body_len);
    free(s->frame_end);
}

/* Checks each delivered frame against the stream, in order. */
typedef struct receiver {
    const stream_t *stream;
    size_t received;
    size_t stop_after; /* return false on this frame (1-based); 0: never */
} receiver_t;

static bool on_frame(void *ctx, const uint8_t *body, size_t len)
{
    receiver_t *r = ctx;
    const stream_t *s = r->stream;
    if (r->received >= s->count) {
        fail_msg("frame %zu delivered, the stream has %zu", r->received + 1,
                 s->count);
    }
    size_t n = r->received;
    if (len != s->body_len[n]) {
        fail_msg("frame %zu: %zu bytes delivered, %zu sent", n, len,
                 s->body_len[n]);
    }
    for (size_t i = 0; i < len; i++) {
        if (body[i] != body_byte(n, i)) {
            fail_msg("frame %zu: byte %zu differs", n, i);
        }
    }
    r->received++;
    return r->received != r->stop_after;
}

/* Frames complete within the first `bytes` bytes of the stream. */
static size_t frames_within(const stream_t *s, size_t bytes)
{
    size_t n = 0;
    while (n < s->count && s->frame_end[n] <= bytes) {
        n++;
    }
    return n;
}

/* ---- Pushing bytes ------------------------------------------------------ */

/* Like a transport read of at most `len` bytes into the reader's space. */
static sc_frame_status_t push_zero_copy(sc_frame_reader_t *r,
                                        const uint8_t *data, size_t len,
                                        receiver_t *rx)
{
    sc_frame_status_t st = SC_FRAME_OK;
    while (len > 0 && st == SC_FRAME_OK) {
        uint8_t *space;
        size_t room;
        assert_true(sc_frame_reader_space(r, &space, &room));
        assert_true(room >= 1);
        size_t n = len < room ? len : room;
        memcpy(space, data, n);
        data += n;
        len -= n;
        st = sc_frame_reader_commit(r, n, on_frame, rx);
    }
    return st;
}

static sc_frame_status_t push(sc_frame_reader_t *r, bool zero_copy,
                              const uint8_t *data, size_t len, receiver_t *rx)
{
    return zero_copy ? push_zero_copy(r, data, len, rx)
                     : sc_frame_reader_feed(r, data, len, on_frame, rx);
}

/* xorshift64*: reproducible from the printed seed. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

static int setup_seed(void **state)
{
    (void)state;
    const char *env = getenv("SIDECAR_TEST_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    printf("test_frame: seed %llu (SIDECAR_TEST_SEED=%llu replays it)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    rng_state = seed != 0 ? seed : 1;
    return 0;
}

/* Sizes: empty frames, tiny ones, and a few longer than a read chunk. */
static void random_stream(stream_t *s, size_t frames)
{
    for (size_t i = 0; i < frames; i++) {
        size_t kind = rng_below(40);
        size_t len = kind < 4    ? 0
                     : kind < 20 ? rng_below(16)
                     : kind < 38 ? rng_below(2000)
                                 : 64 * 1024 + rng_below(128 * 1024);
        stream_add(s, len);
    }
}

/* ---- Tests -------------------------------------------------------------- */

static void run_chunked(const stream_t *s, bool zero_copy, size_t fixed_chunk)
{
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, MAX_FRAME);
    receiver_t rx = {.stream = s};
    size_t off = 0, done = 0;
    while (off < s->bytes.len) {
        size_t left = s->bytes.len - off;
        size_t n = fixed_chunk != 0 ? fixed_chunk : 1 + rng_below(3 * 4096);
        if (fixed_chunk == 0 && rng_below(8) == 0) {
            n = 1 + rng_below(300 * 1024); /* sometimes many frames at once */
        }
        n = n < left ? n : left;
        assert_int_equal(push(&r, zero_copy, s->bytes.data + off, n, &rx),
                         SC_FRAME_OK);
        off += n;
        /* Whatever the chunking, what is held is the incomplete rest. */
        while (done < s->count && s->frame_end[done] <= off) {
            done++;
        }
        assert_int_equal(rx.received, done);
        assert_int_equal(sc_frame_reader_pending(&r),
                         off - (done > 0 ? s->frame_end[done - 1] : 0));
    }
    assert_int_equal(rx.received, s->count);
    assert_int_equal(sc_frame_reader_pending(&r), 0);
    sc_frame_reader_free(&r);
}

static void test_random_chunking(void **state)
{
    (void)state;
    stream_t s = {0};
    random_stream(&s, 300);
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        run_chunked(&s, zero_copy, 0);           /* random reads */
        run_chunked(&s, zero_copy, 1);           /* one byte at a time */
        run_chunked(&s, zero_copy, s.bytes.len); /* all frames at once */
        run_chunked(&s, zero_copy, 3);           /* off header alignment */
    }
    stream_free(&s);
}

/* Every way of cutting a small stream in three pieces, so that chunk
 * boundaries fall at every offset inside every header. */
static void test_every_split_point(void **state)
{
    (void)state;
    stream_t s = {0};
    stream_add(&s, 3);
    stream_add(&s, 0);
    stream_add(&s, 1);
    stream_add(&s, 5);
    size_t len = s.bytes.len;
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        for (size_t a = 0; a <= len; a++) {
            for (size_t b = a; b <= len; b++) {
                sc_frame_reader_t r;
                sc_frame_reader_init(&r, MAX_FRAME);
                receiver_t rx = {.stream = &s};
                const uint8_t *d = s.bytes.data;
                assert_int_equal(push(&r, zero_copy, d, a, &rx), SC_FRAME_OK);
                assert_int_equal(rx.received, frames_within(&s, a));
                assert_int_equal(push(&r, zero_copy, d + a, b - a, &rx),
                                 SC_FRAME_OK);
                assert_int_equal(rx.received, frames_within(&s, b));
                assert_int_equal(push(&r, zero_copy, d + b, len - b, &rx),
                                 SC_FRAME_OK);
                assert_int_equal(rx.received, s.count);
                assert_int_equal(sc_frame_reader_pending(&r), 0);
                sc_frame_reader_free(&r);
            }
        }
    }
    stream_free(&s);
}

/* A stream cut anywhere delivers the frames before the cut, never a part of
 * the frame across it, and holds that part as pending bytes. */
static void test_truncated_stream(void **state)
{
    (void)state;
    stream_t s = {0};
    stream_add(&s, 10);
    stream_add(&s, 0);
    stream_add(&s, 300);
    stream_add(&s, 2);
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        for (size_t cut = 0; cut <= s.bytes.len; cut++) {
            sc_frame_reader_t r;
            sc_frame_reader_init(&r, MAX_FRAME);
            receiver_t rx = {.stream = &s};
            assert_int_equal(push(&r, zero_copy, s.bytes.data, cut, &rx),
                             SC_FRAME_OK);
            size_t done = frames_within(&s, cut);
            assert_int_equal(rx.received, done);
            assert_int_equal(sc_frame_reader_pending(&r),
                             cut - (done > 0 ? s.frame_end[done - 1] : 0));
            sc_frame_reader_free(&r);
        }
    }
    stream_free(&s);
}

/* The zero-copy path offers room for all of a pending long frame, so the
 * transport can read it in one go; the room goes back once it is done. */
static void test_space_for_long_frame(void **state)
{
    (void)state;
    stream_t s = {0};
    stream_add(&s, 700 * 1024);
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, MAX_FRAME);
    receiver_t rx = {.stream = &s};
    uint8_t *space;
    size_t room;
    assert_true(sc_frame_reader_space(&r, &space, &room));
    assert_true(room >= SC_FRAME_HEADER_SIZE + 10);
    memcpy(space, s.bytes.data, SC_FRAME_HEADER_SIZE + 10);
    assert_int_equal(
        sc_frame_reader_commit(&r, SC_FRAME_HEADER_SIZE + 10, on_frame, &rx),
        SC_FRAME_OK);
    assert_true(sc_frame_reader_space(&r, &space, &room));
    size_t rest = s.bytes.len - SC_FRAME_HEADER_SIZE - 10;
    assert_true(room >= rest);
    memcpy(space, s.bytes.data + SC_FRAME_HEADER_SIZE + 10, rest);
    assert_int_equal(sc_frame_reader_commit(&r, rest, on_frame, &rx),
                     SC_FRAME_OK);
    assert_int_equal(rx.received, 1);
    /* An idle reader holds no more than a few read chunks. */
    assert_true(r.buf.cap <= 4 * r.read_chunk);
    sc_frame_reader_free(&r);
    stream_free(&s);
}

static bool never_called(void *ctx, const uint8_t *body, size_t len)
{
    (void)ctx;
    (void)body;
    fail_msg("a frame of %zu bytes was delivered", len);
    return false;
}

/* 0xFFFFFFFF as a length is refused at once, without allocating for it,
 * however the header arrives, and stays refused. */
static void test_oversized_length_not_allocated(void **state)
{
    (void)state;
    static const uint8_t header[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        for (size_t split = 0; split <= SC_FRAME_HEADER_SIZE; split++) {
            sc_frame_reader_t r;
            sc_frame_reader_init(&r, DEFAULT_MAX_FRAME);
            stream_t none = {0};
            receiver_t rx = {.stream = &none};
            sc_frame_status_t first = push(&r, zero_copy, header, split, &rx);
            assert_int_equal(first, split == SC_FRAME_HEADER_SIZE
                                        ? SC_FRAME_TOO_LARGE
                                        : SC_FRAME_OK);
            assert_int_equal(
                push(&r, zero_copy, header + split, sizeof header - split, &rx),
                SC_FRAME_TOO_LARGE);
            assert_int_equal(r.too_large, 0xffffffffu);
            assert_int_equal(rx.received, 0);
            /* Asking for room again must not size it for the frame. */
            uint8_t *space;
            size_t room;
            assert_true(sc_frame_reader_space(&r, &space, &room));
            assert_true(r.buf.cap <= 2 * r.read_chunk);
            assert_int_equal(
                sc_frame_reader_feed(&r, header, 1, never_called, NULL),
                SC_FRAME_TOO_LARGE);
            assert_true(r.buf.cap <= 2 * r.read_chunk);
            sc_frame_reader_free(&r);
        }
    }
}

/* The limit is inclusive: a body of exactly the maximum is waited for, one
 * byte more is refused; frames before the refused one are delivered. */
static void test_limit_is_inclusive(void **state)
{
    (void)state;
    const size_t max = 1000;
    stream_t s = {0};
    stream_add(&s, 7);
    stream_add(&s, max);
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, max);
    receiver_t rx = {.stream = &s};
    assert_int_equal(
        sc_frame_reader_feed(&r, s.bytes.data, s.bytes.len, on_frame, &rx),
        SC_FRAME_OK);
    assert_int_equal(rx.received, 2);
    sc_frame_reader_free(&r);

    stream_t over = {0};
    stream_add(&over, 7);
    stream_add(&over, max + 1);
    sc_frame_reader_init(&r, max);
    rx = (receiver_t){.stream = &over};
    /* Only the first frame and the next header. */
    assert_int_equal(
        sc_frame_reader_feed(&r, over.bytes.data,
                             over.frame_end[0] + SC_FRAME_HEADER_SIZE, on_frame,
                             &rx),
        SC_FRAME_TOO_LARGE);
    assert_int_equal(rx.received, 1);
    assert_int_equal(r.too_large, max + 1);
    sc_frame_reader_free(&r);
    stream_free(&s);
    stream_free(&over);
}

static void test_zero_length_frames(void **state)
{
    (void)state;
    stream_t s = {0};
    stream_add(&s, 0);
    stream_add(&s, 0);
    stream_add(&s, 4);
    stream_add(&s, 0);
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        sc_frame_reader_t r;
        sc_frame_reader_init(&r, MAX_FRAME);
        receiver_t rx = {.stream = &s};
        /* A lone empty frame is delivered as soon as its header is in. */
        assert_int_equal(push(&r, zero_copy, s.bytes.data, 4, &rx),
                         SC_FRAME_OK);
        assert_int_equal(rx.received, 1);
        assert_int_equal(sc_frame_reader_pending(&r), 0);
        assert_int_equal(
            push(&r, zero_copy, s.bytes.data + 4, s.bytes.len - 4, &rx),
            SC_FRAME_OK);
        assert_int_equal(rx.received, 4);
        sc_frame_reader_free(&r);
    }
    stream_free(&s);
}

/* A callback returning false stops at that frame; the frames after it stay
 * pending and come out when processing resumes. */
static void test_callback_stop(void **state)
{
    (void)state;
    stream_t s = {0};
    stream_add(&s, 5);
    stream_add(&s, 6);
    stream_add(&s, 7);
    for (int zero_copy = 0; zero_copy < 2; zero_copy++) {
        sc_frame_reader_t r;
        sc_frame_reader_init(&r, MAX_FRAME);
        receiver_t rx = {.stream = &s, .stop_after = 2};
        assert_int_equal(push(&r, zero_copy, s.bytes.data, s.bytes.len, &rx),
                         SC_FRAME_STOPPED);
        assert_int_equal(rx.received, 2);
        assert_int_equal(sc_frame_reader_pending(&r),
                         s.bytes.len - s.frame_end[1]);
        assert_int_equal(sc_frame_reader_commit(&r, 0, on_frame, &rx),
                         SC_FRAME_OK);
        assert_int_equal(rx.received, 3);
        assert_int_equal(sc_frame_reader_pending(&r), 0);
        sc_frame_reader_free(&r);
    }
    stream_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_chunking),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_truncated_stream),
        cmocka_unit_test(test_space_for_long_frame),
        cmocka_unit_test(test_oversized_length_not_allocated),
        cmocka_unit_test(test_limit_is_inclusive),
        cmocka_unit_test(test_zero_length_frames),
        cmocka_unit_test(test_callback_stop),
    };
    return cmocka_run_group_tests(tests, setup_seed, NULL);
}
