/* The read path's limits against one real sidecar (docs/transport.md):
 * peers holding partial frames cannot make it hold more than its
 * reassembly budget, a frame that does not complete in time closes its
 * connection, one process cannot take every connection, and the frames of
 * issue #17 (lists reaching outside the frame, a trace before any Hello)
 * are rejected or served without harm. Every limit is counted in stats,
 * and well-behaved clients are served throughout, with exact counts.
 *
 * Usage: test_transport_limits              (the tests)
 *        test_transport_limits ping ENDPOINT (a child: one ping, exit 0)
 *        test_transport_limits host DIR      (a thread-mode host) */
#include "codec.h"
#include "frame.h"
#include "harness.h"
#include "msgpack.h"
#include "platform.h"
#include "sidecar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

/* GCC says __SANITIZE_*__; clang says __has_feature(*_sanitizer). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define MAX_FRAME (1024u * 1024u) /* --max-frame: budget 16 MiB */
#define HOLDERS   48              /* peers holding a partial frame */
#define DEFAULT_MAX_FRAME                                                      \
    (4u * 1024u * 1024u) /* thread mode: budget 64 MiB                         \
                          */
#define THREAD_HOLDERS    20
#define FRAME_TIMEOUT_MS  10000 /* the server's default */
#define PER_PROCESS_LIMIT 64    /* the server's default */

static char endpoint[300];
static int sidecar_pid; /* the subprocess sidecar */
static int server_pid;  /* who answers on `endpoint` now */
static const char *self;

static sc_plat_conn_t *raw_connect(void)
{
    sc_plat_conn_t *c = NULL;
    assert_int_equal(sc_plat_conn_open(endpoint, 2000, &c), 0);
    return c;
}

/* Writes what the socket takes now; returns how much. */
static size_t send_some(sc_plat_conn_t *c, const uint8_t *p, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        long n = sc_plat_conn_write(c, p + sent, len - sent);
        if (n <= 0) {
            break;
        }
        sent += (size_t)n;
    }
    return sent;
}

static void send_all(sc_plat_conn_t *c, const uint8_t *p, size_t len,
                     uint32_t timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    while (len > 0) {
        size_t n = send_some(c, p, len);
        p += n;
        len -= n;
        if (len > 0) {
            assert_true(uv_hrtime() < deadline);
            sc_plat_conn_wait(c, false, true, 100);
        }
    }
}

typedef struct replies {
    size_t count;
    sidecar_v1_Envelope last;
    uint8_t copy[256];
} replies_t;

static bool on_reply(void *ctx, const uint8_t *body, size_t len)
{
    replies_t *r = ctx;
    assert_true(len <= sizeof r->copy);
    memcpy(r->copy, body, len);
    assert_true(sc_codec_decode(r->copy, len, &r->last, NULL));
    r->count++;
    return true;
}

/* Reads replies until `want` arrived or EOF (true) or the timeout. */
static bool read_replies(sc_plat_conn_t *c, replies_t *r, size_t want,
                         uint32_t timeout_ms)
{
    sc_frame_reader_t fr;
    sc_frame_reader_init(&fr, 1 << 20);
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    bool eof = false;
    while (r->count < want && uv_hrtime() < deadline) {
        uint8_t *space;
        size_t room;
        assert_true(sc_frame_reader_space(&fr, &space, &room));
        long n = sc_plat_conn_read(c, space, room);
        if (n < 0) {
            eof = true;
            break;
        }
        if (n == 0) {
            sc_plat_conn_wait(c, true, false, 100);
            continue;
        }
        sc_frame_reader_commit(&fr, (size_t)n, on_reply, r);
    }
    sc_frame_reader_free(&fr);
    return eof;
}

static void assert_closed_with(sc_plat_conn_t *c,
                               sidecar_v1_ErrorReply_Code code)
{
    replies_t r = {0};
    assert_true(read_replies(c, &r, SIZE_MAX, 5000));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.last.which_action, sidecar_v1_Envelope_error_reply_tag);
    assert_int_equal(r.last.action.error_reply.code, code);
}

static uint64_t stat_of(const char *key)
{
    char *json = th_stats(endpoint);
    assert_non_null(json);
    uint64_t v = th_json_u64(json, key);
    free(json);
    assert_true(v != UINT64_MAX);
    return v;
}

static void assert_ping(void)
{
    sc_client_options_t o = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    assert_int_equal(sc_client_ping(c, 2000, &r), 0);
    assert_int_equal(r.server_pid, (uint32_t)server_pid);
    sc_client_free(c);
}

static void append(sc_buf_t *b, sidecar_v1_Envelope *env, uint64_t seq)
{
    env->seq = seq;
    assert_true(sc_codec_append_frame(b, env));
}

/* Hello, then a trace payload of one span carrying `pad` bytes, then a
 * Flush barrier (seq 3). */
static void good_frames(sc_buf_t *out, size_t pad, bool hello)
{
    sidecar_v1_Envelope env;
    if (hello) {
        memset(&env, 0, sizeof env);
        env.which_action = sidecar_v1_Envelope_hello_tag;
        env.action.hello.protocol_version = 1;
        env.action.hello.pid = sc_plat_getpid();
        env.action.hello.language = sc_view_str("php");
        append(out, &env, 1);
    }
    sc_buf_t mp = {0};
    char *text = malloc(pad + 1);
    assert_non_null(text);
    memset(text, 'x', pad);
    assert_true(
        sc_msgpack_put_array(&mp, 1) && sc_msgpack_put_array(&mp, 1) &&
        sc_msgpack_put_map(&mp, 2) && sc_msgpack_put_str(&mp, "trace_id", 8) &&
        sc_msgpack_put_uint(&mp, 7) && sc_msgpack_put_str(&mp, "resource", 8) &&
        sc_msgpack_put_str(&mp, text, pad));
    free(text);
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_trace_payload_tag;
    env.action.trace_payload.msgpack = sc_view_bytes(mp.data, mp.len);
    env.action.trace_payload.trace_count = 1;
    append(out, &env, 2);
    sc_buf_free(&mp);
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_flush_tag;
    append(out, &env, 3);
}

/* ---- the reassembly budget and the frame timeout ------------------------ */

/* `holders` peers each hold an unfinished frame of `max_frame` bytes (more
 * than the budget in all), and one trickles a frame, while good clients
 * send: see the checks below. */
static void budget_test(size_t max_frame, int holders_n)
{
    uint64_t budget = stat_of("budget_bytes");
    uint64_t rss_before = stat_of("rss_bytes");
    uint64_t traces_before = stat_of("trace");
    uint64_t stalled_before = stat_of("stalled_frames_closed");

    /* Each announces a frame of max_frame bytes and sends all of it but
     * 64 KiB, then nothing. */
    size_t body = max_frame, partial = max_frame - 64 * 1024;
    uint8_t *frame = malloc(SC_FRAME_HEADER_SIZE + partial);
    assert_non_null(frame);
    sc_frame_put_len(frame, (uint32_t)body);
    memset(frame + SC_FRAME_HEADER_SIZE, 0x0a, partial);
    sc_plat_conn_t *holders[HOLDERS];
    size_t sent[HOLDERS];
    for (int i = 0; i < holders_n; i++) {
        holders[i] = raw_connect();
        sent[i] = send_some(holders[i], frame, SC_FRAME_HEADER_SIZE + partial);
    }
    /* A slow peer: one byte of a frame header every 200 ms. It progresses,
     * but its frame will not be complete in time. */
    sc_plat_conn_t *slow = raw_connect();
    uint8_t slow_header[SC_FRAME_HEADER_SIZE];
    sc_frame_put_len(slow_header, 100);

    /* Until the socket buffers are as full as the server lets them be. */
    uint64_t slow_sent = 0;
    for (int round = 0; round < 15; round++) {
        for (int i = 0; i < holders_n; i++) {
            sent[i] += send_some(holders[i], frame + sent[i],
                                 SC_FRAME_HEADER_SIZE + partial - sent[i]);
        }
        slow_sent += send_some(slow, &slow_header[slow_sent % 4], 1);
        uv_sleep(200);
    }
    uint64_t held = stat_of("held_bytes");
    uint64_t peak = stat_of("peak_bytes");
    uint64_t rss = stat_of("rss_bytes");
    printf("# budget %llu: held %llu, peak %llu, waits %llu, rss +%lld KiB\n",
           (unsigned long long)budget, (unsigned long long)held,
           (unsigned long long)peak, (unsigned long long)stat_of("waits"),
           (long long)(rss - rss_before) / 1024);
    assert_true(held <= budget);
    assert_true(peak <= budget);
    assert_true(stat_of("waits") > 0);
#if !SANITIZED
    /* Without a budget the holders would take more. (Sanitizer
     * runtimes keep freed memory and shadow it: their RSS says nothing
     * here.) */
    assert_true(rss < rss_before + budget + 8u * 1024 * 1024);
#endif

    /* Small requests flow meanwhile. */
    assert_ping();

    /* A good client's large trace waits for budget, then gets through
     * once the holders' frames time out: its Flush is answered and the
     * trace counted exactly once. */
    sc_buf_t good = {0};
    good_frames(&good, 900 * 1024, true);
    sc_plat_conn_t *client = raw_connect();
    uint64_t t0 = uv_hrtime();
    send_all(client, good.data, good.len, 3 * FRAME_TIMEOUT_MS);
    replies_t r = {0};
    assert_false(read_replies(client, &r, 1, 3 * FRAME_TIMEOUT_MS));
    assert_int_equal(r.count, 1);
    assert_int_equal(r.last.which_action, sidecar_v1_Envelope_flush_reply_tag);
    assert_int_equal(r.last.seq, 3);
    printf("# the good trace was through after %llu ms\n",
           (unsigned long long)((uv_hrtime() - t0) / 1000000u));
    sc_plat_conn_close(client);
    sc_buf_free(&good);

    /* Every holder and the slow peer were closed with an error reply. */
    for (int i = 0; i < holders_n; i++) {
        assert_closed_with(holders[i],
                           sidecar_v1_ErrorReply_CODE_FRAME_TIMEOUT);
        sc_plat_conn_close(holders[i]);
    }
    assert_closed_with(slow, sidecar_v1_ErrorReply_CODE_FRAME_TIMEOUT);
    sc_plat_conn_close(slow);
    free(frame);
    assert_int_equal(stat_of("stalled_frames_closed") - stalled_before,
                     (uint64_t)holders_n + 1);
    assert_int_equal(stat_of("trace") - traces_before, 1);
    /* All given back but the read chunk of the stats request itself. */
    assert_true(stat_of("held_bytes") <= SC_FRAME_READ_CHUNK);
}

static void budget_bounds_partial_frames(void **state)
{
    (void)state;
    budget_test(MAX_FRAME, HOLDERS); /* 45 MiB asked, budget 16 MiB */
}

/* The same with the listener thread of a host in thread mode (its default
 * limits: 4 MiB frames, budget 64 MiB; 75 MiB asked). */
static void budget_in_thread_mode(void **state)
{
    (void)state;
    char dir[] = "/tmp/sidecar-limits-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int to_host[2], from_host[2];
    assert_int_equal(pipe(to_host), 0);
    assert_int_equal(pipe(from_host), 0);
    pid_t host = fork();
    if (host == 0) {
        dup2(to_host[0], 0);
        dup2(from_host[1], 1);
        close(to_host[1]);
        close(from_host[0]);
        execl(self, self, "host", dir, (char *)NULL);
        _exit(127);
    }
    close(to_host[0]);
    close(from_host[1]);
    char line[400] = {0};
    size_t n = 0;
    while (n < sizeof line - 1 && read(from_host[0], line + n, 1) == 1 &&
           line[n] != '\n') {
        n++;
    }
    line[n] = '\0';
    char saved[sizeof endpoint];
    memcpy(saved, endpoint, sizeof saved);
    int pid = 0;
    assert_int_equal(sscanf(line, "%d %299s", &pid, endpoint), 2);
    server_pid = pid;
    budget_test(DEFAULT_MAX_FRAME, THREAD_HOLDERS);
    close(to_host[1]); /* the host shuts down */
    int status = 0;
    assert_int_equal(waitpid(host, &status, 0), host);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(from_host[0]);
    memcpy(endpoint, saved, sizeof saved);
    server_pid = sidecar_pid;
    rmdir(dir);
}

/* A host process in thread mode: runs the listener, prints "PID
 * ENDPOINT", and shuts down when its stdin closes. */
static int run_host(const char *dir)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.mode = SC_MODE_THREAD;
    cfg.endpoint_dir = dir;
    cfg.sidecar_path = th_sidecar_bin();
    if (sc_init(&cfg) != 0 || sc_flush_sync(5000) != 0) {
        return 1;
    }
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    if (!info.listener_here) {
        return 1;
    }
    printf("%u %s\n", info.master_pid, info.endpoint);
    fflush(stdout);
    char b;
    while (read(0, &b, 1) > 0) {
    }
    sc_shutdown();
    return 0;
}

/* ---- hostile frames of issue #17 ---------------------------------------- */

static void issue17_frames_rejected(void **state)
{
    (void)state;
    uint64_t errors_before = stat_of("decode_errors");

    /* The fuzzer's input: byte 0 chose its chunking, then the bytes as a
     * peer sends them (a batch whose list reached outside the frame). */
    const char *path = SIDECAR_SOURCE_DIR "/tests/fuzz/regressions/frames/"
                                          "issue17-list-outside-frame.bin";
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t input[512];
    size_t n = fread(input, 1, sizeof input, f);
    fclose(f);
    assert_true(n > 1);
    sc_plat_conn_t *c = raw_connect();
    send_all(c, input + 1, n - 1, 5000);
    assert_closed_with(c, sidecar_v1_ErrorReply_CODE_DECODE_FAILED);
    sc_plat_conn_close(c);

    /* One frame: a batch with a fixed64 item between good ones (a release
     * sidecar used to die of it with SIGSEGV). */
    static const uint8_t crash[] = {
        0x21, 0,    0,    0,    0x2a, 0x19, 0x0a, 0x05, 0x0a, 0x01,
        0x66, 0x48, 0x01, 0x09, 0x0a, 0x02, 0x66, 0x66, 0x48, 0x01,
        0x60, 0x00, 0x0a, 0x05, 0x0a, 0x01, 0x66, 0x48, 0x01, 0x10,
        0x00, 0x08, 0x01, 0x08, 0x02, 0x08, 0x03};
    c = raw_connect();
    send_all(c, crash, sizeof crash, 5000);
    assert_closed_with(c, sidecar_v1_ErrorReply_CODE_DECODE_FAILED);
    sc_plat_conn_close(c);
    assert_int_equal(stat_of("decode_errors") - errors_before, 2);
    assert_ping();
}

/* A trace before any Hello: refused with CODE_INVALID_ACTION and counted
 * (docs/wire.md), the connection kept, no undefined behaviour (the
 * ASan+UBSan run aborts the sidecar on any). */
static void trace_without_hello(void **state)
{
    (void)state;
    uint64_t traces_before = stat_of("trace");
    uint64_t invalid_before = stat_of("invalid_actions");
    sc_buf_t frames = {0};
    good_frames(&frames, 16, false);
    for (int i = 0; i < 2; i++) {
        sc_plat_conn_t *c = raw_connect();
        send_all(c, frames.data, frames.len, 5000);
        replies_t r = {0};
        /* The refusal of the trace, then the barrier's reply. */
        assert_false(read_replies(c, &r, 2, 5000));
        assert_int_equal(r.count, 2);
        assert_int_equal(r.last.which_action,
                         sidecar_v1_Envelope_flush_reply_tag);
        sc_plat_conn_close(c);
    }
    sc_buf_free(&frames);
    assert_int_equal(stat_of("trace") - traces_before, 0);
    assert_int_equal(stat_of("invalid_actions") - invalid_before, 2);
    assert_ping();
}

/* ---- connections per process -------------------------------------------- */

#define OPENED (PER_PROCESS_LIMIT + 16)

/* stat_of() from a child process: its connection does not count against
 * this process's share, whatever this process holds or is closing. */
static uint64_t stat_from_child(const char *key)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        char *json = th_stats(endpoint);
        uint64_t v = th_json_u64(json, key);
        free(json);
        _exit(write(p[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
    }
    close(p[1]);
    uint64_t v = UINT64_MAX;
    assert_int_equal(read(p[0], &v, sizeof v), (ssize_t)sizeof v);
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(v != UINT64_MAX);
    return v;
}

/* Refused ones are closed by the server at once (EOF); admitted ones stay
 * open and silent. How many of `conns` saw EOF. */
static int count_refused(sc_plat_conn_t **conns, int n)
{
    int refused = 0;
    for (int i = 0; i < n; i++) {
        uint8_t b;
        if (sc_plat_conn_read(conns[i], &b, 1) < 0) {
            refused++;
        }
    }
    return refused;
}

static void one_process_cannot_take_all(void **state)
{
    (void)state;
    /* None of this process's earlier connections is still counted: the
     * only one left is the child's stats query. */
    uint64_t deadline = uv_hrtime() + 10000ull * 1000000u;
    while (stat_from_child("active") != 1 && uv_hrtime() < deadline) {
        uv_sleep(20);
    }
    uint64_t refused_before = stat_from_child("refused_per_process");
    sc_plat_conn_t *conns[OPENED];
    for (int i = 0; i < OPENED; i++) {
        conns[i] = raw_connect();
    }
    /* Until every refusal is seen (or a generous deadline). */
    deadline = uv_hrtime() + 10000ull * 1000000u;
    int refused = count_refused(conns, OPENED);
    while (refused < OPENED - PER_PROCESS_LIMIT && uv_hrtime() < deadline) {
        uv_sleep(20);
        refused = count_refused(conns, OPENED);
    }
    uv_sleep(100); /* a refusal too many would show up meanwhile */
    refused = count_refused(conns, OPENED);
    assert_int_equal(refused, OPENED - PER_PROCESS_LIMIT);
    /* Room for others: another process is served. */
    const char *args[] = {"ping", endpoint, NULL};
    assert_int_equal(th_run_children(self, 2, args), 0);
    /* Counted, once each (read while this process still holds its share). */
    assert_int_equal(stat_from_child("refused_per_process") - refused_before,
                     OPENED - PER_PROCESS_LIMIT);
    for (int i = 0; i < OPENED; i++) {
        sc_plat_conn_close(conns[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    th_endpoint(endpoint, sizeof endpoint, "limits");
    char max_frame[32];
    snprintf(max_frame, sizeof max_frame, "%u", MAX_FRAME);
    const char *extra[] = {"--max-frame", max_frame, NULL};
    sidecar_pid = th_sidecar_start(endpoint, extra);
    server_pid = sidecar_pid;
    return sidecar_pid != 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return th_sidecar_stop(sidecar_pid, false) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && strcmp(argv[1], "host") == 0) {
        return run_host(argv[2]);
    }
    if (argc >= 3 && strcmp(argv[1], "ping") == 0) {
        snprintf(endpoint, sizeof endpoint, "%s", argv[2]);
        sc_client_options_t o = {.endpoint = endpoint};
        sc_client_t *c = sc_client_new(&o);
        sc_ping_result_t r;
        int rc = sc_client_ping(c, 2000, &r);
        sc_client_free(c);
        return rc == 0 ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(issue17_frames_rejected),
        cmocka_unit_test(trace_without_hello),
        cmocka_unit_test(one_process_cannot_take_all),
        cmocka_unit_test(budget_bounds_partial_frames),
        cmocka_unit_test(budget_in_thread_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
