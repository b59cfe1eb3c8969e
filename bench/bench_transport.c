/* Transport benchmarks (docs/performance.md), each figure beside a baseline
 * measured in the same run on the same machine. One run of this program is
 * one round of bench/run.sh; every ratio is taken inside the round.
 *
 * 1. client CPU per 300-byte trace action: a client process sends a burst
 *    of 100k actions to a real sidecar (listener thread of this process) and
 *    waits for the flush barrier; its user+system CPU per action, vs a
 *    process writing the same frames with one raw write() each;
 * 2. the same for 64 KB trace payloads;
 * 3. enqueue p50: the median wall time of one sc_client_send_trace(), vs
 *    one raw non-blocking write() of the same bytes;
 * 4. ingest: actions per second from 8 client processes into one sidecar,
 *    vs 8 processes writing raw frames to 8 draining reader threads, and vs
 *    ZeroMQ PUSH/PULL over ipc:// with 8 sender processes (when built with
 *    libzmq);
 * 5. flush barrier round trip p50 (sc_client_flush_sync with nothing
 *    pending), vs a raw 16-byte ping-pong on a Unix stream socket.
 *
 * Prints one JSON line per row (bench/run.sh makes the table). Arguments
 * (cpu300 enqueue ingest flush cpu64k) run only those rows; ingest-sidecar
 * runs the sidecar's part of the ingest row alone (for profiling). Linux only
 * (abstract sockets, fork). */
#define _GNU_SOURCE
#include "listener_thread.h"
#include "sidecar.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef SIDECAR_BENCH_HAVE_ZMQ
#include <zmq.h>
#endif

#define SMALL         300
#define LARGE         (64 * 1024)
#define BURST_SMALL   100000
#define BURST_LARGE   1000
#define SAMPLES       100000
#define RTT_SAMPLES   20000
#define INGEST_CLIENT 8
#define INGEST_EACH   50000
#define PING_BYTES    16

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

/* ---- shared helpers ---------------------------------------------------- */

/* A msgpack array of one trace, [[{"p": "xxx..."}]], of exactly `size`
 * bytes (size >= 16). */
static void make_payload(uint8_t *out, size_t size)
{
    memset(out, 'x', size);
    out[0] = 0x91;
    out[1] = 0x91;
    out[2] = 0x81;
    out[3] = 0xa1;
    out[4] = 'p';
    size_t rest = size - 5;
    if (rest - 3 <= 0xffff) {
        out[5] = 0xda; /* str16 */
        out[6] = (uint8_t)((rest - 3) >> 8);
        out[7] = (uint8_t)(rest - 3);
    } else {
        uint32_t n = (uint32_t)(rest - 5);
        out[5] = 0xdb; /* str32 */
        out[6] = (uint8_t)(n >> 24);
        out[7] = (uint8_t)(n >> 16);
        out[8] = (uint8_t)(n >> 8);
        out[9] = (uint8_t)n;
    }
}

/* A frame as the raw baselines write it: 4-byte length + the payload. */
static uint8_t *make_frame(size_t size)
{
    uint8_t *f = malloc(4 + size);
    f[0] = (uint8_t)size;
    f[1] = (uint8_t)(size >> 8);
    f[2] = (uint8_t)(size >> 16);
    f[3] = (uint8_t)(size >> 24);
    make_payload(f + 4, size);
    return f;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* User + system CPU of this process, in ns. */
static double cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec) * 1e9 +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) * 1e3;
}

typedef struct child_result {
    double value;
    uint64_t dropped;
} child_result_t;

typedef void child_fn(const void *arg, child_result_t *out);

/* Runs fn in `n` child processes at once; returns when all have exited,
 * with their results in out[] (may be NULL). */
static void run_children(int n, child_fn *fn, const void *arg,
                         child_result_t *out)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pids[64];
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            child_result_t r = {0, 0};
            fn(arg, &r);
            if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r) {
                _exit(2);
            }
            _exit(0);
        }
    }
    close(fds[1]);
    for (int i = 0; i < n; i++) {
        child_result_t r;
        if (!read_all(fds[0], (uint8_t *)&r, sizeof r)) {
            fprintf(stderr, "bench_transport: a child failed\n");
            exit(1);
        }
        if (out != NULL) {
            out[i] = r;
        }
    }
    close(fds[0]);
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_transport: a child exited badly\n");
            exit(1);
        }
    }
}

/* One table row. ratio = project / baseline; the target is on the ratio
 * (ratio_max or ratio_min, 0 when none) and/or the value (value_max). */
typedef struct row {
    const char *metric, *unit, *baseline_name, *target;
    double project, baseline;
    double ratio_max, ratio_min, value_max;
    uint64_t dropped;
} row_t;

static void print_row(const row_t *r)
{
    printf("{\"metric\":\"%s\",\"unit\":\"%s\",\"project\":%.1f,"
           "\"baseline_name\":\"%s\",",
           r->metric, r->unit, r->project, r->baseline_name);
    if (r->baseline > 0) {
        printf("\"baseline\":%.1f,\"ratio\":%.3f,", r->baseline,
               r->project / r->baseline);
    } else {
        printf("\"baseline\":null,\"ratio\":null,");
    }
    printf("\"target\":\"%s\",\"ratio_max\":%g,\"ratio_min\":%g,"
           "\"value_max\":%g,\"dropped\":%llu}\n",
           r->target, r->ratio_max, r->ratio_min, r->value_max,
           (unsigned long long)r->dropped);
    fflush(stdout);
}

/* ---- 1, 2. client CPU per action in a burst ----------------------------- */

typedef struct burst {
    const char *endpoint;    /* the sidecar, or NULL for raw */
    const raw_server_t *raw; /* the raw reader */
    size_t size;
    int count;
} burst_t;

static void burst_child(const void *arg, child_result_t *out)
{
    const burst_t *b = arg;
    uint8_t *frame = make_frame(b->size);
    if (b->endpoint == NULL) {
        int fd = raw_connect(b->raw);
        write_all(fd, frame, 4 + b->size); /* warm up like the client */
        double t0 = cpu_ns();
        for (int i = 0; i < b->count; i++) {
            if (!write_all(fd, frame, 4 + b->size)) {
                break;
            }
        }
        out->value = (cpu_ns() - t0) / b->count;
        close(fd);
    } else {
        /* A generous budget: the figure is CPU, not drops (counted). */
        sc_client_options_t o = {.endpoint = b->endpoint,
                                 .enqueue_budget_us = 100000};
        sc_client_t *c = sc_client_new(&o);
        sc_client_send_trace(c, frame + 4, b->size, 1);
        sc_client_flush_sync(c, 10000); /* connected, hello sent */
        double t0 = cpu_ns();
        for (int i = 0; i < b->count; i++) {
            sc_client_send_trace(c, frame + 4, b->size, 1);
        }
        sc_client_flush_sync(c, 60000);
        out->value = (cpu_ns() - t0) / b->count;
        sc_client_stats_t st;
        sc_client_stats(c, &st);
        out->dropped = st.dropped_full[SC_ACTION_TRACE];
        sc_client_free(c);
    }
    free(frame);
}

static void bench_burst(const char *endpoint, size_t size, int count,
                        const char *metric, const char *baseline_name,
                        const char *target, double ratio_max)
{
    raw_server_t raw;
    raw_server_start(&raw, 1);
    burst_t b = {.raw = &raw, .size = size, .count = count};
    child_result_t base;
    run_children(1, burst_child, &b, &base);
    raw_server_stop(&raw);

    b.endpoint = endpoint;
    child_result_t proj;
    run_children(1, burst_child, &b, &proj);
    print_row(&(row_t){.metric = metric,
                       .unit = "ns CPU/action",
                       .project = proj.value,
                       .baseline = base.value,
                       .baseline_name = baseline_name,
                       .target = target,
                       .ratio_max = ratio_max,
                       .dropped = proj.dropped});
}

/* ---- 3. enqueue p50 vs raw write ---------------------------------------- */

static void bench_enqueue(const char *endpoint)
{
    uint8_t *frame = make_frame(SMALL);
    uint64_t *t = malloc(SAMPLES * sizeof *t);

    raw_server_t raw;
    raw_server_start(&raw, 1);
    int fd = raw_connect(&raw);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        ssize_t w = send(fd, frame, 4 + SMALL, MSG_NOSIGNAL | MSG_DONTWAIT);
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
        sc_client_send_trace(c, frame + 4, SMALL, 1);
        t[i] = uv_hrtime() - t0;
    }
    sc_client_flush_sync(c, 10000);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    sc_client_free(c);
    print_row(&(row_t){.metric = "enqueue p50 (sc_client_send_trace, 300 B)",
                       .unit = "ns",
                       .project = median_ns(t, SAMPLES),
                       .baseline = raw_ns,
                       .baseline_name = "raw write()",
                       .target = "<= 0.5x",
                       .ratio_max = 0.5,
                       .dropped = st.dropped_full[SC_ACTION_TRACE]});
    free(t);
    free(frame);
}

/* ---- 4. ingest from 8 client processes ---------------------------------- */

typedef struct ingest {
    const char *endpoint;
    const raw_server_t *raw;
    const char *zmq_addr;
} ingest_t;

static void ingest_child(const void *arg, child_result_t *out)
{
    const ingest_t *a = arg;
    uint8_t *frame = make_frame(SMALL);
    if (a->endpoint != NULL) {
        sc_client_options_t o = {.endpoint = a->endpoint,
                                 .enqueue_budget_us = 100000};
        sc_client_t *c = sc_client_new(&o);
        for (int i = 0; i < INGEST_EACH; i++) {
            sc_client_send_trace(c, frame + 4, SMALL, 1);
        }
        /* Returns once the sidecar has taken every frame sent before. */
        sc_client_flush_sync(c, 60000);
        sc_client_stats_t st;
        sc_client_stats(c, &st);
        out->dropped = st.dropped_full[SC_ACTION_TRACE];
        sc_client_free(c);
    } else if (a->raw != NULL) {
        int fd = raw_connect(a->raw);
        for (int i = 0; i < INGEST_EACH; i++) {
            if (!write_all(fd, frame, 4 + SMALL)) {
                break;
            }
        }
        close(fd);
    } else {
#ifdef SIDECAR_BENCH_HAVE_ZMQ
        void *ctx = zmq_ctx_new();
        void *push = zmq_socket(ctx, ZMQ_PUSH);
        zmq_connect(push, a->zmq_addr);
        for (int i = 0; i < INGEST_EACH; i++) {
            zmq_send(push, frame + 4, SMALL, 0);
        }
        zmq_close(push); /* default linger: everything is delivered */
        zmq_ctx_term(ctx);
#endif
    }
    free(frame);
}

static double ingest_sidecar(const char *endpoint, uint64_t *dropped)
{
    ingest_t a = {.endpoint = endpoint};
    child_result_t r[INGEST_CLIENT];
    uint64_t t0 = uv_hrtime();
    run_children(INGEST_CLIENT, ingest_child, &a, r);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    for (int i = 0; i < INGEST_CLIENT; i++) {
        *dropped += r[i].dropped;
    }
    return (double)INGEST_CLIENT * INGEST_EACH / secs;
}

static double ingest_raw(void)
{
    raw_server_t raw;
    raw_server_start(&raw, INGEST_CLIENT);
    ingest_t a = {.raw = &raw};
    uint64_t t0 = uv_hrtime();
    run_children(INGEST_CLIENT, ingest_child, &a, NULL);
    raw_server_stop(&raw); /* every reader has drained its connection */
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    return (double)INGEST_CLIENT * INGEST_EACH / secs;
}

#ifdef SIDECAR_BENCH_HAVE_ZMQ
typedef struct zmq_pull {
    void *sock;
    long received;
} zmq_pull_t;

static void zmq_pull_thread(void *arg)
{
    zmq_pull_t *p = arg;
    static char buf[LARGE];
    for (long i = 0; i < (long)INGEST_CLIENT * INGEST_EACH; i++) {
        if (zmq_recv(p->sock, buf, sizeof buf, 0) != SMALL) {
            break;
        }
        p->received++;
    }
}

static double ingest_zmq(void)
{
    char addr[96];
    snprintf(addr, sizeof addr, "ipc:///tmp/sidecar-bench-zmq-%d",
             (int)getpid());
    void *ctx = zmq_ctx_new();
    zmq_pull_t p = {zmq_socket(ctx, ZMQ_PULL), 0};
    if (zmq_bind(p.sock, addr) != 0) {
        fprintf(stderr, "zmq_bind %s: %s\n", addr, zmq_strerror(errno));
        exit(1);
    }
    ingest_t a = {.zmq_addr = addr};
    uv_thread_t reader;
    uint64_t t0 = uv_hrtime();
    uv_thread_create(&reader, zmq_pull_thread, &p);
    run_children(INGEST_CLIENT, ingest_child, &a, NULL);
    uv_thread_join(&reader);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    zmq_close(p.sock);
    zmq_ctx_term(ctx);
    unlink(addr + strlen("ipc://"));
    if (p.received != (long)INGEST_CLIENT * INGEST_EACH) {
        fprintf(stderr, "bench_transport: zmq lost messages\n");
        exit(1);
    }
    return (double)INGEST_CLIENT * INGEST_EACH / secs;
}
#endif

/* `baselines` false: the sidecar's part alone, for profiling it
 * (bench_transport ingest-sidecar). */
static void bench_ingest(const char *endpoint, bool baselines)
{
    uint64_t dropped = 0;
    if (!baselines) {
        double proj = ingest_sidecar(endpoint, &dropped);
        printf("ingest-sidecar: %.0f actions/s, %llu dropped\n", proj,
               (unsigned long long)dropped);
        return;
    }
    double raw = ingest_raw();
    double proj = ingest_sidecar(endpoint, &dropped);
#ifdef SIDECAR_BENCH_HAVE_ZMQ
    double zmq = ingest_zmq();
    const char *zmq_name = "ZeroMQ PUSH/PULL ipc://, 8 senders";
#else
    double zmq = 0;
    const char *zmq_name = "ZeroMQ: not built (libzmq3-dev missing)";
#endif
    print_row(&(row_t){.metric = "ingest, 8 client processes, 300 B",
                       .unit = "actions/s",
                       .project = proj,
                       .baseline = zmq,
                       .baseline_name = zmq_name,
                       .target = ">= 2x (first >= 1x)",
                       .ratio_min = 2,
                       .dropped = dropped});
    print_row(
        &(row_t){.metric = "ingest, 8 client processes, 300 B",
                 .unit = "actions/s",
                 .project = proj,
                 .baseline = raw,
                 .baseline_name = "raw socket, 1 write per frame, 8 readers",
                 .target = "-",
                 .dropped = dropped});
}

/* ---- 5. flush barrier round trip vs raw ping-pong ----------------------- */

static void echo_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    uint8_t b[PING_BYTES];
    while (read_all(fd, b, sizeof b) && write_all(fd, b, sizeof b)) {
    }
    close(fd);
}

static void bench_flush_rtt(const char *endpoint)
{
    uint64_t *t = malloc(RTT_SAMPLES * sizeof *t);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    uv_thread_t echo;
    uv_thread_create(&echo, echo_thread, (void *)(intptr_t)sv[1]);
    uint8_t b[PING_BYTES] = {1};
    for (int i = 0; i < RTT_SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        write_all(sv[0], b, sizeof b);
        read_all(sv[0], b, sizeof b);
        t[i] = uv_hrtime() - t0;
    }
    close(sv[0]);
    uv_thread_join(&echo);
    double raw_ns = median_ns(t, RTT_SAMPLES);

    sc_client_options_t o = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&o);
    sc_client_flush_sync(c, 10000);
    for (int i = 0; i < RTT_SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        sc_client_flush_sync(c, 10000);
        t[i] = uv_hrtime() - t0;
    }
    sc_client_free(c);
    print_row(&(row_t){.metric = "flush barrier round trip p50",
                       .unit = "ns",
                       .project = median_ns(t, RTT_SAMPLES),
                       .baseline = raw_ns,
                       .baseline_name = "raw 16-byte ping-pong",
                       .target = "<= 1.3x",
                       .ratio_max = 1.3});
    free(t);
}

/* Whether row `name` runs: all of them without arguments, else the named
 * ones (for profiling one row: perf record bench_transport cpu64k). */
static bool wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            return true;
        }
    }
    return argc <= 1;
}

int main(int argc, char **argv)
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
    if (wanted(argc, argv, "cpu300")) {
        bench_burst(endpoint, SMALL, BURST_SMALL,
                    "client CPU per 300 B trace action, 100k burst",
                    "raw write() per frame", "<= 0.5x", 0.5);
    }
    if (wanted(argc, argv, "enqueue")) {
        bench_enqueue(endpoint);
    }
    if (wanted(argc, argv, "ingest")) {
        bench_ingest(endpoint, true);
    }
    if (argc > 1 && wanted(argc, argv, "ingest-sidecar")) {
        bench_ingest(endpoint, false);
    }
    if (wanted(argc, argv, "flush")) {
        bench_flush_rtt(endpoint);
    }
    if (wanted(argc, argv, "cpu64k")) {
        bench_burst(endpoint, LARGE, BURST_LARGE,
                    "client CPU per 64 KB trace action, 1k burst",
                    "raw 64 KB write()", "<= 1.5x", 1.5);
    }
    sc_listener_thread_stop(t, 5000);
    return 0;
}
