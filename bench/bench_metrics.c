/* Metric benchmark (docs/performance.md): what a metric costs the request
 * that records it. One row: the median wall time of one
 * sc_client_send_metric() (a count with two tags, to a real sidecar: the
 * listener thread of this process, which aggregates and sends DogStatsD to
 * a UDP socket of this process), vs one raw non-blocking UDP sendto() of
 * the same DogStatsD line, which is what a PHP DogStatsD client does per
 * point today. Both measured in the same run. Prints one JSON line (bench/
 * run.sh makes the table). Linux only (abstract sockets). */
#define _GNU_SOURCE
#include "listener_thread.h"
#include "sidecar.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SAMPLES 100000
#define LINE    "php.requests:1|c|#route:/checkout,status:200"

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

/* The DogStatsD receiver: a UDP socket on 127.0.0.1 drained by a thread,
 * so neither side's sends find a full buffer. */
typedef struct receiver {
    int fd;
    uint16_t port;
    volatile int stop;
    uv_thread_t thread;
} receiver_t;

static void drain(void *arg)
{
    receiver_t *r = arg;
    char buf[65536];
    while (!r->stop) {
        (void)recv(r->fd, buf, sizeof buf, 0);
    }
}

static void receiver_start(receiver_t *r)
{
    r->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int big = 8 << 20;
    setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct timeval tv = {0, 100000};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (bind(r->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bench_metrics: receiver");
        exit(1);
    }
    r->port = ntohs(a.sin_port);
    r->stop = 0;
    uv_thread_create(&r->thread, drain, r);
}

static void receiver_stop(receiver_t *r)
{
    r->stop = 1;
    uv_thread_join(&r->thread);
    close(r->fd);
}

static double raw_sendto(const receiver_t *r, uint64_t *t)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(r->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        (void)sendto(fd, LINE, sizeof LINE - 1, MSG_DONTWAIT,
                     (struct sockaddr *)&a, sizeof a);
        t[i] = uv_hrtime() - t0;
    }
    close(fd);
    return median_ns(t, SAMPLES);
}

int main(void)
{
    receiver_t r;
    receiver_start(&r);
    char endpoint[64], url[64];
    snprintf(endpoint, sizeof endpoint, "@sidecar-bench-metrics-%d",
             (int)getpid());
    snprintf(url, sizeof url, "udp://127.0.0.1:%u", r.port);
    sc_daemon_options_t o;
    sc_daemon_options_defaults(&o);
    strcpy(o.endpoint, endpoint);
    sc_agent_addr_parse_url("http://127.0.0.1:9", &o.flusher.agent);
    sc_dogstatsd_parse_url(url, &o.metrics.statsd);
    sc_listener_thread_t *thread = NULL;
    if (sc_listener_thread_start(&o, &thread) != 0) {
        fprintf(stderr, "cannot start the sidecar\n");
        return 1;
    }
    uint64_t *t = malloc(SAMPLES * sizeof *t);
    double raw_ns = raw_sendto(&r, t);

    sc_client_options_t co = {.endpoint = endpoint};
    sc_client_t *c = sc_client_new(&co);
    sc_metric_t m = {.type = SC_METRIC_COUNT,
                     .name = "php.requests",
                     .value = 1,
                     .tags = "route:/checkout,status:200"};
    sc_client_send_metric(c, &m); /* connects */
    sc_client_flush_sync(c, 5000);
    for (int i = 0; i < SAMPLES; i++) {
        uint64_t t0 = uv_hrtime();
        sc_client_send_metric(c, &m);
        t[i] = uv_hrtime() - t0;
    }
    sc_client_flush_sync(c, 10000);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    sc_client_free(c);
    double ns = median_ns(t, SAMPLES);
    printf("{\"metric\":\"metric enqueue p50 (sc_client_send_metric, count, "
           "2 tags)\",\"unit\":\"ns\",\"project\":%.1f,"
           "\"baseline_name\":\"raw UDP sendto() of the DogStatsD line\","
           "\"baseline\":%.1f,\"ratio\":%.3f,\"target\":\"<= 0.5x\","
           "\"ratio_max\":0.5,\"ratio_min\":0,\"value_max\":0,"
           "\"dropped\":%llu}\n",
           ns, raw_ns, ns / raw_ns,
           (unsigned long long)st.dropped_full[SC_ACTION_METRIC]);
    free(t);
    sc_listener_thread_stop(thread, 5000);
    receiver_stop(&r);
    return 0;
}
