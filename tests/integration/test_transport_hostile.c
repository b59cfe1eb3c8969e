/* Bad peers against one real sidecar: partial frames, many frames per
 * read, oversized lengths, garbage, unknown actions, a peer that never
 * sends, a peer that stops mid-frame, a peer that never reads its replies.
 * Each bad peer loses its own connection (or keeps an idle one); the
 * sidecar stays up and a well-behaved client is served after every case. */
#include "codec.h"
#include "frame.h"
#include "harness.h"
#include "platform.h"
#include "sidecar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char endpoint[128];
static int sidecar_pid;
static sc_plat_conn_t *silent_peer;  /* connected, never sends */
static sc_plat_conn_t *stalled_peer; /* sent half a frame, then nothing */

static sc_plat_conn_t *raw_connect(void)
{
    sc_plat_conn_t *c = NULL;
    assert_int_equal(sc_plat_conn_open(endpoint, 2000, &c), 0);
    return c;
}

static void raw_send(sc_plat_conn_t *c, const uint8_t *p, size_t len)
{
    while (len > 0) {
        long n = sc_plat_conn_write(c, p, len);
        assert_true(n >= 0);
        if (n == 0) {
            assert_int_equal(sc_plat_conn_wait(c, false, true, 5000), 1);
            continue;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void append_ping(sc_buf_t *b, uint64_t seq)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_ping_tag;
    assert_true(sc_codec_append_frame(b, &env));
}

typedef struct reply_sink {
    sidecar_v1_Envelope last;
    uint8_t *copy;
    size_t count;
    uint64_t next_seq; /* replies must come in order */
    bool in_order;
} reply_sink_t;

static bool on_reply(void *ctx, const uint8_t *body, size_t len)
{
    reply_sink_t *s = ctx;
    free(s->copy);
    s->copy = malloc(len + 1);
    memcpy(s->copy, body, len);
    assert_true(sc_codec_decode(s->copy, len, &s->last, NULL));
    if (s->last.seq != s->next_seq) {
        s->in_order = false;
    }
    s->next_seq++;
    s->count++;
    return true;
}

/* Reads replies until `want` arrived, EOF, or the timeout. Returns true at
 * EOF. */
static bool read_replies(sc_plat_conn_t *c, reply_sink_t *sink, size_t want,
                         uint32_t timeout_ms)
{
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, 1 << 20);
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    bool eof = false;
    while (sink->count < want && uv_hrtime() < deadline) {
        uint8_t *space;
        size_t room;
        assert_true(sc_frame_reader_space(&r, &space, &room));
        long n = sc_plat_conn_read(c, space, room);
        if (n < 0) {
            eof = true;
            break;
        }
        if (n == 0) {
            sc_plat_conn_wait(c, true, false, 100);
            continue;
        }
        sc_frame_reader_commit(&r, (size_t)n, on_reply, sink);
    }
    sc_frame_reader_free(&r);
    return eof;
}

static void assert_closed_with(sc_plat_conn_t *c,
                               sidecar_v1_ErrorReply_Code code)
{
    reply_sink_t sink = {.in_order = true};
    assert_true(read_replies(c, &sink, SIZE_MAX, 5000));
    assert_int_equal(sink.count, 1);
    assert_int_equal(sink.last.which_action,
                     sidecar_v1_Envelope_error_reply_tag);
    assert_int_equal(sink.last.action.error_reply.code, code);
    free(sink.copy);
    sc_plat_conn_close(c);
}

/* A well-behaved client is served: called after every bad case. */
static void assert_others_served(void)
{
    sc_client_options_t o = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    assert_int_equal(sc_client_ping(c, 2000, &r), 0);
    assert_int_equal(r.server_pid, (uint32_t)sidecar_pid);
    sc_client_free(c);
}

static uint64_t server_stat(const char *key)
{
    char *json = th_stats(endpoint);
    assert_non_null(json);
    uint64_t v = th_json_u64(json, key);
    free(json);
    return v;
}

static void one_byte_at_a_time(void **state)
{
    (void)state;
    sc_buf_t b = {0};
    append_ping(&b, 7);
    sc_plat_conn_t *c = raw_connect();
    for (size_t i = 0; i < b.len; i++) {
        raw_send(c, b.data + i, 1);
        uv_sleep(1);
    }
    reply_sink_t sink = {.next_seq = 7, .in_order = true};
    assert_false(read_replies(c, &sink, 1, 5000));
    assert_int_equal(sink.count, 1);
    assert_int_equal(sink.last.which_action,
                     sidecar_v1_Envelope_ping_reply_tag);
    assert_int_equal(sink.last.seq, 7);
    free(sink.copy);
    sc_buf_free(&b);
    sc_plat_conn_close(c);
    assert_others_served();
}

static void many_frames_per_write(void **state)
{
    (void)state;
    sc_buf_t b = {0};
    for (uint64_t seq = 1; seq <= 500; seq++) {
        append_ping(&b, seq);
    }
    sc_plat_conn_t *c = raw_connect();
    raw_send(c, b.data, b.len);
    reply_sink_t sink = {.next_seq = 1, .in_order = true};
    read_replies(c, &sink, 500, 10000);
    assert_int_equal(sink.count, 500);
    assert_true(sink.in_order);
    free(sink.copy);
    sc_buf_free(&b);
    sc_plat_conn_close(c);
}

static void oversized_length(void **state)
{
    (void)state;
    uint64_t before = server_stat("oversized_frames");
    const uint8_t header[4] = {0xf0, 0xff, 0xff, 0xff};
    sc_plat_conn_t *c = raw_connect();
    raw_send(c, header, sizeof header);
    assert_closed_with(c, sidecar_v1_ErrorReply_CODE_FRAME_TOO_LARGE);
    assert_int_equal(server_stat("oversized_frames"), before + 1);
    assert_others_served();
}

static void random_garbage(void **state)
{
    (void)state;
    unsigned seed = (unsigned)uv_hrtime();
    printf("garbage seed %u\n", seed);
    srand(seed);
    uint64_t before =
        server_stat("decode_errors") + server_stat("unknown_actions");
    for (int round = 0; round < 20; round++) {
        uint8_t frame[4 + 64];
        size_t len = 1 + (size_t)(rand() % 64);
        sc_frame_put_len(frame, (uint32_t)len);
        for (size_t i = 0; i < len; i++) {
            frame[4 + i] = (uint8_t)rand();
        }
        sc_plat_conn_t *c = raw_connect();
        raw_send(c, frame, 4 + len);
        /* Random bytes are either malformed protobuf or, rarely, a valid
         * message without a known action: both close the connection. */
        reply_sink_t sink = {.in_order = true};
        assert_true(read_replies(c, &sink, SIZE_MAX, 5000));
        assert_int_equal(sink.count, 1);
        assert_int_equal(sink.last.which_action,
                         sidecar_v1_Envelope_error_reply_tag);
        free(sink.copy);
        sc_plat_conn_close(c);
    }
    assert_int_equal(server_stat("decode_errors") +
                         server_stat("unknown_actions"),
                     before + 20);
    assert_others_served();
}

static void unknown_action(void **state)
{
    (void)state;
    /* seq = 1, then field 50 (a future action) as an empty sub-message. */
    const uint8_t frame[] = {5, 0, 0, 0, 0x08, 0x01, 0x92, 0x03, 0x00};
    uint64_t before = server_stat("unknown_actions");
    sc_plat_conn_t *c = raw_connect();
    raw_send(c, frame, sizeof frame);
    assert_closed_with(c, sidecar_v1_ErrorReply_CODE_UNKNOWN_ACTION);
    assert_int_equal(server_stat("unknown_actions"), before + 1);
    assert_others_served();
}

static void peer_that_never_reads(void **state)
{
    (void)state;
    /* Stats replies are ~600 bytes; 20000 of them overflow the socket
     * buffers and the 64 KiB reply backlog this sidecar runs with. */
    sc_buf_t b = {0};
    for (uint64_t seq = 1; seq <= 20000; seq++) {
        sidecar_v1_Envelope env;
        memset(&env, 0, sizeof env);
        env.seq = seq;
        env.which_action = sidecar_v1_Envelope_stats_request_tag;
        assert_true(sc_codec_append_frame(&b, &env));
    }
    sc_plat_conn_t *c = raw_connect();
    size_t off = 0;
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (off < b.len && uv_hrtime() < deadline) {
        long n = sc_plat_conn_write(c, b.data + off, b.len - off);
        if (n < 0) {
            break; /* closed by the sidecar: expected */
        }
        off += (size_t)n;
        if (n == 0) {
            sc_plat_conn_wait(c, false, true, 100);
        }
        if (server_stat("stuck_readers_closed") > 0) {
            break;
        }
    }
    for (int i = 0; i < 500 && server_stat("stuck_readers_closed") == 0; i++) {
        uv_sleep(10);
    }
    assert_int_equal(server_stat("stuck_readers_closed"), 1);
    sc_plat_conn_close(c);
    sc_buf_free(&b);
    assert_others_served();
}

static void idle_peers_do_not_block_others(void **state)
{
    (void)state;
    /* Both bad peers have been connected through every case above. */
    assert_others_served();
    assert_int_equal(server_stat("active"),
                     3); /* silent, stalled, this query */
}

static int setup(void **state)
{
    (void)state;
    th_endpoint(endpoint, sizeof endpoint, "hostile");
    const char *extra[] = {"--max-reply-backlog", "65536", NULL};
    sidecar_pid = th_sidecar_start(endpoint, extra);
    if (sidecar_pid == 0) {
        return -1;
    }
    silent_peer = raw_connect();
    stalled_peer = raw_connect();
    const uint8_t half[] = {0xe8, 0x03, 0, 0, 0x08, 0x01}; /* 1000 announced */
    raw_send(stalled_peer, half, sizeof half);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sc_plat_conn_close(silent_peer);
    sc_plat_conn_close(stalled_peer);
    return th_sidecar_stop(sidecar_pid, false) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_byte_at_a_time),
        cmocka_unit_test(many_frames_per_write),
        cmocka_unit_test(oversized_length),
        cmocka_unit_test(random_garbage),
        cmocka_unit_test(unknown_action),
        cmocka_unit_test(peer_that_never_reads),
        cmocka_unit_test(idle_peers_do_not_block_others),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
