/* Transport benchmarks (README.md, "Benchmarks"), each figure beside a baseline
 * measured in the same run on the same machine:
 *
 * 1. enqueue: the median cost of sc_client_send_trace() of a 300-byte
 *    action to a real sidecar, vs one raw non-blocking write() of the same
 *    bytes on an abstract socket whose reader drains it;
 * 2. ingest: actions per second into a real sidecar (listener thread) from
 *    1 and 8 client threads, vs the same threads writing raw 300-byte frames
 *    one write() per frame to a reader thread that only drains.
 *
 * Prints one JSON line per figure. Linux only (abstract sockets). */
#define _GNU_SOURCE
#include "listener_thread.h"
#include "sidecar.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PAYLOAD           300
#define SAMPLES           200000
#define INGEST_PER_THREAD 200000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_ns(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return (double)v[n / 2];
}

/* A msgpack array of one trace whose padding string fills 300 bytes. */
static size_t payload(uint8_t *out)
{
    memset(out, 'x', PAYLOAD);
    out[0] = 0x91;
    out[1] = 0x91;
    out[2] = 0x81;
    out[3] = 0xa1;
    out[4] = 'p';
    out[5] = 0xda; /* str16 */
    out[6] = (uint8_t)((PAYLOAD - 8) >> 8);
    out[7] = (uint8_t)(PAYLOAD - 8);
    return PAYLOAD;
}

/* ---- the raw baseline: an abstract socket and a draining reader ---------- */

typedef struct raw_server {
    int listen_fd;
    char name[64];
    uv_thread_t thread;
    int clients;
} raw_server_t;

static void drain_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static __thread char buf[1 << 16];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

static void raw_accept_thread(void *arg)
{
    raw_server_t *s = arg;
    uv_thread_t t[64];
    for (int i = 0; i < s->clients; i++) {
        int fd = accept(s->listen_fd, NULL, NULL);
        uv_thread_create(&t[i], drain_thread, (void *)(intptr_t)fd);
    }
    for (int i = 0; i < s->clients; i++) {
        uv_thread_join(&t[i]);
    }
}

static socklen_t abstract_addr(const char *name, struct sockaddr_un *a)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path + 1, name, strlen(name));
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                       strlen(name));
}

static void raw_server_start(raw_server_t *s, int clients)
{
    snprintf(s->name, sizeof s->name, "sidecar-bench-raw-%d", (int)getpid());
    struct sockaddr_un a;
    socklen_t len = abstract_addr(s->name, &a);
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bind(s->listen_fd, (struct sockaddr *)&a, len);
    listen(s->listen_fd, 64);
    s->clients = clients;
    uv_thread_create(&s->thread, raw_accept_thread, s);
}

static int raw_connect(const raw_server_t *s)
{
    struct sockaddr_un a;
    socklen_t len = abstract_addr(s->name, &a);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    connect(fd, (struct sockaddr *)&a, len);
    return fd;
}

static void raw_server_stop(raw_server_t *s)
{
    uv_thread_join(&s->thread);
    close(s->listen_fd);
}

/* ---- 1. enqueue vs raw write ------------------------------------------------
 */

static void bench_enqueue(const char *endpoint)
{
    uint8_t frame[4 + PAYLOAD];
    size_t n = payload(frame + 4);
    uint64_t *t = malloc(SAMPLES * sizeof *t);

    raw_server_t raw;
    raw_server_start(&raw, 1);
    int fd = raw_connect(&raw);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        ssize_t w = send(fd, frame, sizeof frame, MSG_NOSIGNAL | MSG_DONTWAIT);
        t[i] = uv_hrtime() - t0;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 1000);
        }
    }
    close(fd);
    raw_server_stop(&raw);
    double raw_ns = median_ns(t, SAMPLES);

    sc_client_options_t o = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&o);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        sc_client_send_trace(c, frame + 4, n, 1);
        t[i] = uv_hrtime() - t0;
    }
    sc_client_flush_sync(c, 10000);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    sc_client_free(c);
    double enq_ns = median_ns(t, SAMPLES);
    printf("{\"bench\":\"client_enqueue_300B\",\"median_ns\":%.0f,"
           "\"baseline\":\"raw write() on an abstract socket\","
           "\"baseline_median_ns\":%.0f,\"ratio\":%.2f,"
           "\"frames_per_write\":%.1f,\"dropped\":%llu}\n",
           enq_ns, raw_ns, enq_ns / raw_ns,
           (double)st.frames_written / (double)(st.writes ? st.writes : 1),
           (unsigned long long)st.dropped_full[SC_ACTION_TRACE]);
    free(t);
}

/* ---- 2. ingest throughput --------------------------------------------------
 */

typedef struct ingest_arg {
    const char *endpoint;
    const raw_server_t *raw;
} ingest_arg_t;

static void client_thread(void *arg)
{
    ingest_arg_t *a = arg;
    uint8_t p[PAYLOAD];
    size_t n = payload(p);
    /* A generous budget: the figure is throughput, not drops. */
    sc_client_options_t o = {.endpoint = a->endpoint,
                             .enqueue_budget_us = 100000};
    sc_client_t *c = sc_client_new(&o);
    for (int i = 0; i < INGEST_PER_THREAD; i++) {
        sc_client_send_trace(c, p, n, 1);
    }
    sc_client_flush_sync(c, 30000);
    sc_client_free(c);
}

static void raw_client_thread(void *arg)
{
    ingest_arg_t *a = arg;
    uint8_t frame[4 + PAYLOAD];
    payload(frame + 4);
    int fd = raw_connect(a->raw);
    for (int i = 0; i < INGEST_PER_THREAD; i++) {
        if (write(fd, frame, sizeof frame) < 0) {
            break;
        }
    }
    close(fd);
}

static double run_threads(int threads, void (*fn)(void *), ingest_arg_t *arg)
{
    uv_thread_t t[64];
    uint64_t t0 = uv_hrtime();
    for (int i = 0; i < threads; i++) {
        uv_thread_create(&t[i], fn, arg);
    }
    for (int i = 0; i < threads; i++) {
        uv_thread_join(&t[i]);
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    return (double)threads * INGEST_PER_THREAD / secs;
}

static void bench_ingest(const char *endpoint, int threads)
{
    raw_server_t raw;
    raw_server_start(&raw, threads);
    ingest_arg_t ra = {.raw = &raw};
    double raw_rate = run_threads(threads, raw_client_thread, &ra);
    raw_server_stop(&raw);

    ingest_arg_t a = {.endpoint = endpoint};
    double rate = run_threads(threads, client_thread, &a);
    printf("{\"bench\":\"ingest_300B\",\"clients\":%d,\"actions_per_s\":%.0f,"
           "\"baseline\":\"raw socket, one write per frame, reader drains\","
           "\"baseline_actions_per_s\":%.0f,\"ratio\":%.2f}\n",
           threads, rate, raw_rate, rate / raw_rate);
}

int main(void)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "@sidecar-bench-%d", (int)getpid());
    sc_daemon_options_t o;
    sc_daemon_options_defaults(&o);
    strcpy(o.endpoint, endpoint);
    /* Delivery goes nowhere useful here; the trace buffer cap bounds it. */
    sc_agent_addr_parse_url("http://127.0.0.1:9", &o.flusher.agent);
    sc_listener_thread_t *t = NULL;
    if (sc_listener_thread_start(&o, &t) != 0) {
        fprintf(stderr, "cannot start the sidecar\n");
        return 1;
    }
    bench_enqueue(endpoint);
    bench_ingest(endpoint, 1);
    bench_ingest(endpoint, 8);
    sc_listener_thread_stop(t, 5000);
    return 0;
}
