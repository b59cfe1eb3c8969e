/* A bounded hostile flood against one real sidecar while good clients
 * send (issue #17). Hostile processes send random frames, mutated golden
 * vectors, actions without a Hello, oversized lengths, truncated frames,
 * frames they stall on and connections they drop mid-frame. Good processes
 * meanwhile send through raw frames (each connection's Flush reply must
 * count exactly the actions it sent) and through the client library (one
 * connection, every action written, the flush barrier answered).
 *
 * Built with the sanitizer presets, the sidecar under test is too: any
 * report fails the test (CTest's FAIL_REGULAR_EXPRESSION), and so does a
 * sidecar that dies or does not stop cleanly.
 *
 * Usage: test_hostile_flood [SECONDS]   (default 8, or $SIDECAR_FLOOD_SECONDS)
 *        test_hostile_flood hostile|good|library ENDPOINT SECONDS INDEX */
#include "codec.h"
#include "frame.h"
#include "harness.h"
#include "platform.h"
#include "sidecar.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define HOSTILE 6
#define GOOD    2
#define LIBRARY 2

static const char *endpoint;
static uint64_t rng;

static uint32_t rnd(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static sc_plat_conn_t *connect_or_null(void)
{
    sc_plat_conn_t *c = NULL;
    return sc_plat_conn_open(endpoint, 2000, &c) == 0 ? c : NULL;
}

/* Writes all of `p` (waiting while the socket is full, at most 2 s);
 * false when the sidecar closed the connection meanwhile. */
static bool send_all(sc_plat_conn_t *c, const uint8_t *p, size_t len)
{
    uint64_t deadline = now_ms() + 2000;
    while (len > 0) {
        long n = sc_plat_conn_write(c, p, len);
        if (n < 0 || now_ms() > deadline) {
            return false;
        }
        if (n == 0) {
            sc_plat_conn_wait(c, false, true, 50);
            continue;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads and discards what the sidecar sent, for up to `ms`. */
static void drain(sc_plat_conn_t *c, uint32_t ms)
{
    uint8_t buf[4096];
    uint64_t deadline = now_ms() + ms;
    while (now_ms() < deadline) {
        long n = sc_plat_conn_read(c, buf, sizeof buf);
        if (n < 0) {
            return;
        }
        if (n == 0) {
            sc_plat_conn_wait(c, true, false, 20);
        }
    }
}

/* ---- hostile ------------------------------------------------------------- */

#define MAX_VECTORS 64

static struct {
    uint8_t *bytes;
    size_t len;
} vectors[MAX_VECTORS];
static size_t vector_count;

static void load_vectors(void)
{
    const char *dir = SIDECAR_SOURCE_DIR "/tests/vectors";
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL &&
           vector_count < MAX_VECTORS) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".bin") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        uint8_t *b = malloc(65536);
        size_t len = fread(b, 1, 65536, f);
        fclose(f);
        vectors[vector_count].bytes = b;
        vectors[vector_count].len = len;
        vector_count++;
    }
    if (d != NULL) {
        closedir(d);
    }
}

/* One hostile connection; returns after it is closed. */
static void hostile_once(void)
{
    sc_plat_conn_t *c = connect_or_null();
    if (c == NULL) {
        uv_sleep(10); /* refused (per-process limit) or busy */
        return;
    }
    uint8_t frame[70000];
    size_t body = 0;
    size_t v = vector_count > 0 ? rnd() % vector_count : 0;
    uint32_t kind = rnd() % 7;
    switch (kind) {
    case 0: /* random bytes in a frame */
        body = rnd() % 512;
        for (size_t i = 0; i < body; i++) {
            frame[4 + i] = (uint8_t)rnd();
        }
        break;
    case 1: /* a golden vector with bytes flipped */
    case 2: /* ... or as it is, without a Hello first */
        body = vectors[v].len;
        memcpy(frame + 4, vectors[v].bytes, body);
        if (kind == 1) {
            for (int f = 0; f < 1 + (int)(rnd() % 8) && body > 0; f++) {
                frame[4 + rnd() % body] ^= (uint8_t)(1u << (rnd() % 8));
            }
        }
        break;
    case 3: /* an oversized length */
        sc_frame_put_len(frame, 0xfffffff0u - rnd() % 16);
        send_all(c, frame, 4);
        drain(c, 50);
        sc_plat_conn_close(c);
        return;
    case 4:  /* a truncated frame, then gone */
    case 5:  /* a frame stalled on for a while, then gone */
    default: /* disconnected in the middle of a large frame */
        body = vectors[v].len;
        memcpy(frame + 4, vectors[v].bytes, body);
        sc_frame_put_len(frame, (uint32_t)(body + rnd() % 65536 + 1));
        send_all(c, frame, 4 + body);
        uv_sleep(rnd() % 10 == 0 ? rnd() % 500 : 0);
        sc_plat_conn_close(c);
        return;
    }
    sc_frame_put_len(frame, (uint32_t)body);
    /* Several frames on one connection, until the sidecar closes it. */
    for (int i = 0; i < 4 && send_all(c, frame, 4 + body); i++) {
    }
    drain(c, 50);
    sc_plat_conn_close(c);
}

static int run_hostile(unsigned seconds, int index)
{
    rng = 0x5eedu + (uint64_t)index * 7919u + (uint64_t)uv_hrtime();
    load_vectors();
    uint64_t end = now_ms() + seconds * 1000u;
    unsigned n = 0;
    while (now_ms() < end) {
        hostile_once();
        n++;
    }
    printf("hostile %d: %u connections\n", index, n);
    return 0;
}

/* ---- good, raw frames ---------------------------------------------------- */

typedef struct flush_reply {
    bool got;
    uint64_t seq, handled;
} flush_reply_t;

static bool on_reply(void *ctx, const uint8_t *body, size_t len)
{
    flush_reply_t *r = ctx;
    uint8_t copy[256];
    sidecar_v1_Envelope env;
    if (len <= sizeof copy) {
        memcpy(copy, body, len);
        if (sc_codec_decode(copy, len, &env, NULL) &&
            env.which_action == sidecar_v1_Envelope_flush_reply_tag) {
            r->got = true;
            r->seq = env.seq;
            r->handled = env.action.flush_reply.actions_handled;
        }
    }
    return true;
}

/* One connection: Hello, `traces` traces, `batches` flag evaluation
 * batches, a Flush; the reply must count all of them. */
static bool good_round(int index, int round, int traces, int batches)
{
    sc_buf_t out = {0};
    uint64_t seq = 1;
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_hello_tag;
    env.action.hello.protocol_version = 1;
    env.action.hello.pid = sc_plat_getpid();
    env.action.hello.language = sc_view_str("php");
    env.seq = seq++;
    sc_codec_append_frame(&out, &env);
    uint8_t payload[64];
    for (int i = 0; i < traces; i++) {
        memset(&env, 0, sizeof env);
        env.which_action = sidecar_v1_Envelope_trace_payload_tag;
        size_t n =
            th_trace_payload(payload, (uint64_t)index << 32 |
                                          (uint64_t)round << 16 | (uint64_t)i);
        env.action.trace_payload.msgpack = sc_view_bytes(payload, n);
        env.action.trace_payload.trace_count = 1;
        env.seq = seq++;
        sc_codec_append_frame(&out, &env);
    }
    sidecar_v1_FlagEvaluation ev;
    memset(&ev, 0, sizeof ev);
    ev.flag_key = sc_view_str("flood.flag");
    ev.variant_key = sc_view_str("on");
    ev.evaluation_count = 3;
    for (int i = 0; i < batches; i++) {
        memset(&env, 0, sizeof env);
        env.which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag;
        env.action.flag_evaluation_batch.evaluations = SC_LIST_OF(&ev, 1);
        env.seq = seq++;
        sc_codec_append_frame(&out, &env);
    }
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_flush_tag;
    uint64_t flush_seq = env.seq = seq++;
    sc_codec_append_frame(&out, &env);

    sc_plat_conn_t *c = connect_or_null();
    bool ok = c != NULL && send_all(c, out.data, out.len);
    sc_buf_free(&out);
    flush_reply_t reply = {0};
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, 1 << 20);
    uint64_t deadline = now_ms() + 10000;
    while (ok && !reply.got && now_ms() < deadline) {
        uint8_t *space;
        size_t room;
        if (!sc_frame_reader_space(&r, &space, &room)) {
            break;
        }
        long n = sc_plat_conn_read(c, space, room);
        if (n < 0) {
            break;
        }
        if (n == 0) {
            sc_plat_conn_wait(c, true, false, 50);
            continue;
        }
        sc_frame_reader_commit(&r, (size_t)n, on_reply, &reply);
    }
    sc_frame_reader_free(&r);
    if (c != NULL) {
        sc_plat_conn_close(c);
    }
    /* Hello, traces and batches: the Flush itself is not counted. */
    uint64_t expected = 1 + (uint64_t)traces + (uint64_t)batches;
    if (!ok || !reply.got || reply.seq != flush_seq ||
        reply.handled != expected) {
        fprintf(stderr,
                "good %d round %d: flush reply %s, seq %llu, handled %llu "
                "(expected %llu)\n",
                index, round, reply.got ? "received" : "missing",
                (unsigned long long)reply.seq,
                (unsigned long long)reply.handled,
                (unsigned long long)expected);
        return false;
    }
    return true;
}

static int run_good(unsigned seconds, int index)
{
    uint64_t end = now_ms() + seconds * 1000u;
    int rounds = 0;
    while (now_ms() < end) {
        if (!good_round(index, rounds, 50, 5)) {
            return 1;
        }
        rounds++;
    }
    printf("good %d: %d rounds, every action counted\n", index, rounds);
    return rounds > 0 ? 0 : 1;
}

/* ---- good, through the client library ----------------------------------- */

static int run_library(unsigned seconds, int index)
{
    uint64_t end = now_ms() + seconds * 1000u;
    int rounds = 0;
    while (now_ms() < end) {
        sc_client_options_t o = {.endpoint = endpoint,
                                 .connect_timeout_ms = 2000,
                                 .enqueue_budget_us = 2000};
        sc_client_t *c = sc_client_new(&o);
        uint8_t payload[64];
        for (int i = 0; i < 100; i++) {
            size_t n = th_trace_payload(payload, (uint64_t)index * 1000 + i);
            if (sc_client_send_trace(c, payload, n, 1) != 0) {
                fprintf(stderr, "library %d: trace %d dropped\n", index, i);
                return 1;
            }
        }
        int rc = sc_client_flush_sync(c, 10000);
        sc_client_stats_t st;
        sc_client_stats(c, &st);
        sc_client_free(c);
        if (rc != 0 || st.connects != 1 || st.frames_written != 102) {
            fprintf(stderr,
                    "library %d: flush %s, connects %llu, frames %llu\n", index,
                    sc_strerror(rc), (unsigned long long)st.connects,
                    (unsigned long long)st.frames_written);
            return 1;
        }
        rounds++;
    }
    printf("library %d: %d rounds of 100 traces, all written\n", index, rounds);
    return rounds > 0 ? 0 : 1;
}

/* ---- the parent ---------------------------------------------------------- */

static pid_t start_child(const char *self, const char *mode, const char *secs,
                         int index)
{
    char idx[16];
    snprintf(idx, sizeof idx, "%d", index);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, mode, endpoint, secs, idx, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv)
{
    if (argc == 5) {
        endpoint = argv[2];
        unsigned secs = (unsigned)atoi(argv[3]);
        int index = atoi(argv[4]);
        if (strcmp(argv[1], "hostile") == 0) {
            return run_hostile(secs, index);
        }
        if (strcmp(argv[1], "good") == 0) {
            return run_good(secs, index);
        }
        if (strcmp(argv[1], "library") == 0) {
            return run_library(secs, index);
        }
        return 2;
    }
    const char *env_secs = getenv("SIDECAR_FLOOD_SECONDS");
    const char *secs = argc > 1 ? argv[1] : env_secs != NULL ? env_secs : "8";
    static char ep[128];
    th_endpoint(ep, sizeof ep, "flood");
    endpoint = ep;
    /* Hostile peers close without reading the ErrorReply written to them:
     * the daemon must survive that on its own (it ignores SIGPIPE), so it
     * starts with the dispositions its starter has. */
    int sidecar = th_sidecar_start(endpoint, NULL);
    if (sidecar == 0) {
        fprintf(stderr, "sidecar did not start\n");
        return 1;
    }
    pid_t kids[HOSTILE + GOOD + LIBRARY];
    int n = 0;
    for (int i = 0; i < HOSTILE; i++) {
        kids[n++] = start_child(argv[0], "hostile", secs, i);
    }
    for (int i = 0; i < GOOD; i++) {
        kids[n++] = start_child(argv[0], "good", secs, i);
    }
    for (int i = 0; i < LIBRARY; i++) {
        kids[n++] = start_child(argv[0], "library", secs, i);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int status = 0;
        if (kids[i] < 0 || waitpid(kids[i], &status, 0) != kids[i] ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d failed (status %d)\n", i, status);
            failed++;
        }
    }
    char *json = th_stats(endpoint);
    if (json == NULL) {
        fprintf(stderr, "the sidecar does not answer after the flood\n");
        return 1;
    }
    printf("stats after %s s: frames_in=%llu decode_errors=%llu "
           "oversized_frames=%llu unknown_actions=%llu invalid_actions=%llu "
           "accepted=%llu stalled_frames_closed=%llu\n",
           secs, (unsigned long long)th_json_u64(json, "frames_in"),
           (unsigned long long)th_json_u64(json, "decode_errors"),
           (unsigned long long)th_json_u64(json, "oversized_frames"),
           (unsigned long long)th_json_u64(json, "unknown_actions"),
           (unsigned long long)th_json_u64(json, "invalid_actions"),
           (unsigned long long)th_json_u64(json, "accepted"),
           (unsigned long long)th_json_u64(json, "stalled_frames_closed"));
    bool hostile_seen = th_json_u64(json, "decode_errors") > 0 &&
                        th_json_u64(json, "oversized_frames") > 0;
    free(json);
    int stop = th_sidecar_stop(sidecar, false);
    bool ok = failed == 0 && hostile_seen && stop == 0;
    printf("%s (stop status %d)\n", ok ? "PASS" : "FAIL", stop);
    return ok ? 0 : 1;
}
