/* DogStatsD metrics: the rules of a Metric (src/common/metrics_rules.c),
 * the aggregator (metrics.c), the datagram packer (dogstatsd.c), and the
 * whole pipeline (metrics_daemon.c) sending to a real UDP socket on
 * 127.0.0.1 (and, on POSIX, a real Unix datagram socket) read back here
 * and parsed line by line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dogstatsd.h"
#include "metrics.h"
#include "metrics_daemon.h"

#include <math.h>
#include <uv.h>
#if !defined(_WIN32)
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

static sc_metric_point_t point(int type, const char *name, double value,
                               const char *tags)
{
    sc_metric_point_t p = {.type = type,
                           .name = sc_view_str(name),
                           .value = value,
                           .tags = sc_view_str(tags)};
    return p;
}

static const char *check(int type, const char *name, const char *tags)
{
    sc_metric_point_t p = point(type, name, 1.0, tags);
    return sc_metric_check(&p);
}

static void test_rules(void **state)
{
    (void)state;
    assert_null(check(SC_MTYPE_COUNT, "php.requests_total", NULL));
    assert_null(check(SC_MTYPE_GAUGE, "a", "env:prod,route:/a/b,é:x,k"));
    assert_null(check(SC_MTYPE_SET, "a", ""));
    assert_non_null(check(0, "a", NULL));
    assert_non_null(check(7, "a", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "1a", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "_a", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "a-b", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "a:b", NULL));
    assert_non_null(check(SC_MTYPE_COUNT, "a|b", NULL));
    char name[202];
    memset(name, 'a', 201);
    name[201] = '\0';
    assert_non_null(check(SC_MTYPE_COUNT, name, NULL));
    name[200] = '\0';
    assert_null(check(SC_MTYPE_COUNT, name, NULL));
    /* tags */
    static const char *const bad_tags[] = {
        ",a",  "a,", "a,,b", "1a",   "a b",   "a|b",  "a#b",
        "a@b", ":a", "a\tb", "\xff", "a\x7f", "a\nb", "-a"};
    for (size_t i = 0; i < sizeof bad_tags / sizeof bad_tags[0]; i++) {
        assert_non_null(check(SC_MTYPE_COUNT, "a", bad_tags[i]));
    }
    char tags[4096];
    size_t n = 0;
    for (int i = 0; i < 65; i++) {
        n += (size_t)snprintf(tags + n, sizeof tags - n, "%st%d",
                              i > 0 ? "," : "", i);
    }
    assert_non_null(check(SC_MTYPE_COUNT, "a", tags)); /* 65 tags */
    memset(tags, 'a', 201);
    tags[201] = '\0';
    assert_non_null(check(SC_MTYPE_COUNT, "a", tags)); /* one of 201 bytes */
    tags[200] = '\0';
    assert_null(check(SC_MTYPE_COUNT, "a", tags));
    /* value, rate, member */
    sc_metric_point_t p = point(SC_MTYPE_COUNT, "a", (double)NAN, NULL);
    assert_non_null(sc_metric_check(&p));
    p.value = (double)INFINITY;
    assert_non_null(sc_metric_check(&p));
    p.value = 1;
    p.has_rate = true;
    p.rate = 0;
    assert_non_null(sc_metric_check(&p));
    p.rate = 1.5;
    assert_non_null(sc_metric_check(&p));
    p.rate = (double)NAN;
    assert_non_null(sc_metric_check(&p));
    p.rate = 1;
    assert_null(sc_metric_check(&p));
    p.member = sc_view_str("x");
    assert_non_null(sc_metric_check(&p)); /* not a set */
    p.type = SC_MTYPE_SET;
    assert_null(sc_metric_check(&p));
    p.value = (double)NAN; /* the member stands for the value */
    assert_null(sc_metric_check(&p));
    static const char *const bad_members[] = {"",    "a:b", "a|b",
                                              "a,b", "a b", "a\n"};
    for (size_t i = 0; i < sizeof bad_members / sizeof bad_members[0]; i++) {
        p.member = sc_view_str(bad_members[i]);
        assert_non_null(sc_metric_check(&p));
    }
}

static void test_canonical_tags(void **state)
{
    (void)state;
    char out[64];
    size_t n = sc_metric_tags_canonical(sc_view_str("b:1,a:2,b:1,a"), out);
    assert_int_equal(n, strlen("a,a:2,b:1"));
    assert_memory_equal(out, "a,a:2,b:1", n);
    assert_int_equal(sc_metric_tags_canonical(sc_view_str(""), out), 0);
    assert_int_equal(sc_metric_tags_canonical(sc_view_str(NULL), out), 0);
}

/* Lines drained, NUL-separated in `all`. */
typedef struct lines {
    char all[1 << 16];
    size_t len, count, longest;
} lines_t;

static void collect(void *ctx, const char *line, size_t len)
{
    lines_t *l = ctx;
    assert_true(l->len + len + 1 < sizeof l->all);
    memcpy(l->all + l->len, line, len);
    l->all[l->len + len] = '\0';
    l->len += len + 1;
    l->count++;
    l->longest = len > l->longest ? len : l->longest;
}

static bool has_line(const lines_t *l, const char *want)
{
    for (size_t off = 0; off < l->len; off += strlen(l->all + off) + 1) {
        if (strcmp(l->all + off, want) == 0) {
            return true;
        }
    }
    return false;
}

static void test_aggregation(void **state)
{
    (void)state;
    sc_metrics_limits_t limits = {100, 1000};
    sc_metrics_t *m = sc_metrics_new(&limits);
    assert_non_null(m);
    for (int i = 0; i < 10; i++) {
        sc_metric_point_t c = point(SC_MTYPE_COUNT, "req", 2, "b:1,a:2");
        assert_int_equal(sc_metrics_add(m, &c), 0);
        c.tags = sc_view_str("a:2,b:1,a:2"); /* same context */
        assert_int_equal(sc_metrics_add(m, &c), 0);
        sc_metric_point_t g = point(SC_MTYPE_GAUGE, "req", i, "a:2,b:1");
        assert_int_equal(sc_metrics_add(m, &g), 0);
        sc_metric_point_t r = point(SC_MTYPE_RATE, "bytes", 5, NULL);
        assert_int_equal(sc_metrics_add(m, &r), 0);
        sc_metric_point_t s = point(SC_MTYPE_SET, "users", i % 3, NULL);
        assert_int_equal(sc_metrics_add(m, &s), 0);
        sc_metric_point_t d = point(SC_MTYPE_DISTRIBUTION, "lat", i, "x");
        assert_int_equal(sc_metrics_add(m, &d), 0);
    }
    sc_metric_point_t sampled = point(SC_MTYPE_COUNT, "sampled", 1, NULL);
    sampled.has_rate = true;
    sampled.rate = 0.25;
    assert_int_equal(sc_metrics_add(m, &sampled), 0);
    sc_metric_point_t h = point(SC_MTYPE_HISTOGRAM, "h", 1.5, NULL);
    h.has_rate = true;
    h.rate = 0.5;
    assert_int_equal(sc_metrics_add(m, &h), 0);
    h.has_rate = false; /* another context: the rate is part of it */
    assert_int_equal(sc_metrics_add(m, &h), 0);
    sc_metric_point_t member = point(SC_MTYPE_SET, "users", 0, NULL);
    member.member = sc_view_str("alice");
    assert_int_equal(sc_metrics_add(m, &member), 0);
    assert_int_equal(sc_metrics_add(m, &member), 0);

    sc_metrics_stats_t st;
    sc_metrics_stats(m, &st);
    assert_int_equal(st.points, 65);
    assert_int_equal(st.contexts, 8);
    assert_int_equal(st.values, 10 + 4 + 2); /* distribution, set, histos */

    lines_t l = {0};
    sc_metrics_drain(m, 10.0, 1432, collect, &l);
    assert_true(has_line(&l, "req:40|c|#a:2,b:1"));
    assert_true(has_line(&l, "req:9|g|#a:2,b:1"));
    assert_true(has_line(&l, "bytes:5|g")); /* 50 over 10 s */
    assert_true(has_line(&l, "users:0|s"));
    assert_true(has_line(&l, "users:1|s"));
    assert_true(has_line(&l, "users:2|s"));
    assert_true(has_line(&l, "users:alice|s"));
    assert_true(has_line(&l, "lat:0:1:2:3:4:5:6:7:8:9|d|#x"));
    assert_true(has_line(&l, "sampled:4|c"));
    assert_true(has_line(&l, "h:1.5|h|@0.5"));
    assert_true(has_line(&l, "h:1.5|h"));
    assert_int_equal(l.count, 11);
    sc_metrics_stats(m, &st);
    assert_int_equal(st.contexts, 0);
    assert_int_equal(st.values, 0);
    lines_t empty = {0};
    sc_metrics_drain(m, 10.0, 1432, collect, &empty);
    assert_int_equal(empty.count, 0);
    sc_metrics_free(m);
}

static void test_distribution_lines_fit(void **state)
{
    (void)state;
    sc_metrics_limits_t limits = {10, 100000};
    sc_metrics_t *m = sc_metrics_new(&limits);
    double sum = 0;
    for (int i = 0; i < 5000; i++) {
        sc_metric_point_t d =
            point(SC_MTYPE_DISTRIBUTION, "lat", i * 0.001, "env:test");
        sum += i * 0.001;
        assert_int_equal(sc_metrics_add(m, &d), 0);
    }
    static lines_t l;
    memset(&l, 0, sizeof l);
    sc_metrics_drain(m, 10.0, 200, collect, &l);
    assert_true(l.longest <= 200);
    assert_true(l.count > 1);
    /* every value once, in order */
    size_t seen = 0;
    double got = 0;
    for (size_t off = 0; off < l.len; off += strlen(l.all + off) + 1) {
        const char *line = l.all + off;
        assert_memory_equal(line, "lat:", 4);
        const char *end = strstr(line, "|d|#env:test");
        assert_non_null(end);
        const char *p = line + 4;
        while (p < end) {
            char *next;
            double v = strtod(p, &next);
            assert_true(next > p);
            assert_true(v == (double)seen * 0.001);
            got += v;
            seen++;
            p = *next == ':' ? next + 1 : next;
        }
    }
    assert_int_equal(seen, 5000);
    assert_true(got == sum);
    sc_metrics_free(m);
}

static void test_overflow(void **state)
{
    (void)state;
    sc_metrics_limits_t limits = {2, 3};
    sc_metrics_t *m = sc_metrics_new(&limits);
    sc_metric_point_t a = point(SC_MTYPE_COUNT, "a", 1, NULL);
    sc_metric_point_t b = point(SC_MTYPE_DISTRIBUTION, "b", 1, NULL);
    sc_metric_point_t c = point(SC_MTYPE_COUNT, "c", 1, NULL);
    assert_int_equal(sc_metrics_add(m, &a), 0);
    assert_int_equal(sc_metrics_add(m, &b), 0);
    assert_int_equal(sc_metrics_add(m, &c), 1); /* a third context */
    assert_int_equal(sc_metrics_add(m, &a), 0); /* known ones still count */
    assert_int_equal(sc_metrics_add(m, &b), 0);
    assert_int_equal(sc_metrics_add(m, &b), 0);
    assert_int_equal(sc_metrics_add(m, &b), 2); /* a fourth value */
    sc_metrics_stats_t st;
    sc_metrics_stats(m, &st);
    assert_int_equal(st.contexts_overflow, 1);
    assert_int_equal(st.values_overflow, 1);
    assert_int_equal(st.points, 5);
    lines_t l = {0};
    sc_metrics_drain(m, 10.0, 1432, collect, &l);
    assert_true(has_line(&l, "a:2|c"));
    assert_true(has_line(&l, "b:1:1:1|d"));
    assert_int_equal(sc_metrics_add(m, &c), 0); /* a new interval */
    sc_metrics_free(m);
}

typedef struct sent {
    size_t datagrams, lines, longest;
    char last[256];
} sent_t;

static void on_datagram(void *ctx, const char *d, size_t len, size_t lines)
{
    sent_t *s = ctx;
    s->datagrams++;
    s->lines += lines;
    s->longest = len > s->longest ? len : s->longest;
    size_t n = len < sizeof s->last - 1 ? len : sizeof s->last - 1;
    memcpy(s->last, d, n);
    s->last[n] = '\0';
}

static void test_packer(void **state)
{
    (void)state;
    sent_t s = {0};
    sc_dgram_packer_t p;
    assert_true(sc_dgram_packer_init(&p, 20, on_datagram, &s));
    sc_dgram_packer_add(&p, "aaaaaaaaa", 9);
    sc_dgram_packer_add(&p, "bbbbbbbbbb", 10); /* 9 + 1 + 10 = 20: fits */
    assert_int_equal(s.datagrams, 0);
    sc_dgram_packer_add(&p, "c", 1); /* would be 22 */
    assert_int_equal(s.datagrams, 1);
    assert_string_equal(s.last, "aaaaaaaaa\nbbbbbbbbbb");
    sc_dgram_packer_add(&p, "123456789012345678901", 21); /* over 20 */
    assert_int_equal(p.too_large, 1);
    sc_dgram_packer_add(&p, "12345678901234567890", 20);
    sc_dgram_packer_flush(&p);
    sc_dgram_packer_flush(&p); /* nothing more */
    assert_int_equal(s.datagrams, 3);
    assert_int_equal(s.lines, 4);
    assert_int_equal(s.longest, 20);
    sc_dgram_packer_free(&p);
}

static void test_parse_url(void **state)
{
    (void)state;
    sc_dogstatsd_config_t c;
    sc_dogstatsd_config_defaults(&c);
    char d[300];
    sc_dogstatsd_describe(&c, d, sizeof d);
    assert_string_equal(d, "udp://127.0.0.1:8125");
    assert_int_equal(sc_dogstatsd_datagram_size(&c), 1432);
    assert_int_equal(sc_dogstatsd_parse_url("udp://agent:9125", &c), 0);
    assert_string_equal(c.host, "agent");
    assert_int_equal(c.port, 9125);
    assert_int_equal(sc_dogstatsd_parse_url("udp://[::1]:8125", &c), 0);
    sc_dogstatsd_describe(&c, d, sizeof d);
    assert_string_equal(d, "udp://[::1]:8125");
    assert_int_equal(sc_dogstatsd_parse_url("unix:///var/run/dsd.socket", &c),
                     0);
    assert_string_equal(c.unix_path, "/var/run/dsd.socket");
    assert_int_equal(sc_dogstatsd_datagram_size(&c), 8192);
    static const char *const bad[] = {"http://a:1", "udp://a",    "udp://:1",
                                      "udp://a:0",  "udp://a:1x", "unix://rel",
                                      "udp://[::1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(sc_dogstatsd_parse_url(bad[i], &c), 0);
    }
}

/* ---- the pipeline against a real socket ------------------------------- */

typedef struct receiver {
    uv_udp_t udp;
    char data[1 << 16];
    size_t len;
    size_t datagrams, longest;
} receiver_t;

static void rx_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    static char slab[1 << 16];
    (void)h;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void rx_read(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags)
{
    (void)addr;
    (void)flags;
    receiver_t *r = h->data;
    if (n <= 0) {
        return;
    }
    assert_true(r->len + (size_t)n + 1 < sizeof r->data);
    memcpy(r->data + r->len, buf->base, (size_t)n);
    r->len += (size_t)n;
    r->data[r->len++] = '\n';
    r->datagrams++;
    r->longest = (size_t)n > r->longest ? (size_t)n : r->longest;
}

/* The value of the line "name:V|type..." found first in the received
 * data, summed over every line of that exact prefix and suffix. */
static double sum_lines(const receiver_t *r, const char *name,
                        const char *suffix, size_t *lines)
{
    double sum = 0;
    *lines = 0;
    const char *p = r->data, *end = r->data + r->len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(nl - p);
        const char *bar = memchr(p, '|', len);
        if (bar != NULL && (size_t)(bar - p) > nlen && p[nlen] == ':' &&
            memcmp(p, name, nlen) == 0 &&
            (size_t)(nl - bar) == strlen(suffix) &&
            memcmp(bar, suffix, strlen(suffix)) == 0) {
            const char *v = p + nlen;
            while (*v == ':') {
                char *next;
                sum += strtod(v + 1, &next);
                v = next;
            }
            (*lines)++;
        }
        p = nl + 1;
    }
    return sum;
}

static sidecar_v1_Metric wire(int type, const char *name, double value,
                              const char *tags)
{
    sidecar_v1_Metric m;
    memset(&m, 0, sizeof m);
    m.type = (sidecar_v1_Metric_Type)type;
    m.name = sc_view_str(name);
    m.value = value;
    m.tags = sc_view_str(tags);
    return m;
}

static void closed(void *arg)
{
    *(bool *)arg = true;
}

static void close_pipeline(uv_loop_t *loop, sc_metrics_daemon_t *md)
{
    bool done = false;
    sc_metrics_daemon_close(md, closed, &done);
    while (!done) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void run_pipeline(uv_loop_t *loop, receiver_t *r,
                         const sc_metrics_config_t *cfg)
{
    sc_metrics_daemon_t *md;
    assert_int_equal(sc_metrics_daemon_new(loop, cfg, &md), 0);
    sidecar_v1_Metric bad = wire(SC_MTYPE_COUNT, "bad name", 1, NULL);
    assert_non_null(sc_metrics_daemon_add(md, &bad));
    for (int i = 0; i < 1000; i++) {
        char tags[32];
        snprintf(tags, sizeof tags, "shard:s%d", i % 50);
        sidecar_v1_Metric c = wire(SC_MTYPE_COUNT, "test.hits", 3, tags);
        assert_null(sc_metrics_daemon_add(md, &c));
        sidecar_v1_Metric d =
            wire(SC_MTYPE_DISTRIBUTION, "test.latency", i, "env:t");
        assert_null(sc_metrics_daemon_add(md, &d));
    }
    sc_metrics_daemon_flush(md);
    sc_metrics_report_t rep;
    sc_metrics_daemon_report(md, &rep);
    assert_int_equal(rep.agg.points, 2000);
    assert_int_equal(rep.sent.datagrams_failed, 0);
    assert_int_equal(rep.sent.lines_too_large, 0);
    for (int spins = 0; r->datagrams < rep.sent.datagrams_sent; spins++) {
        assert_true(spins < 20000);
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    assert_int_equal(r->datagrams, rep.sent.datagrams_sent);
    assert_true(r->longest <= rep.datagram_bytes);
    size_t lines = 0, total = 0;
    for (int s = 0; s < 50; s++) {
        char tags[40];
        snprintf(tags, sizeof tags, "|c|#shard:s%d", s);
        assert_true(sum_lines(r, "test.hits", tags, &lines) == 60.0);
        assert_int_equal(lines, 1); /* aggregated: one line per context */
        total += lines;
    }
    assert_true(sum_lines(r, "test.latency", "|d|#env:t", &lines) ==
                999.0 * 1000 / 2);
    assert_true(lines > 1); /* 1000 values do not fit one datagram */
    total += lines;
    assert_int_equal(total, rep.sent.lines_sent);
    close_pipeline(loop, md);
}

/* Starts `r` on `loop`: bound to "::" (dual stack) when `dual` and the
 * machine has IPv6, else to 127.0.0.1. Returns its port. */
static uint16_t receiver_start(uv_loop_t *loop, receiver_t *r, bool dual)
{
    memset(r, 0, sizeof *r);
    uv_udp_init(loop, &r->udp);
    r->udp.data = r;
    struct sockaddr_in6 any6;
    struct sockaddr_in v4;
    uv_ip6_addr("::", 0, &any6);
    uv_ip4_addr("127.0.0.1", 0, &v4);
    if (!dual || uv_udp_bind(&r->udp, (struct sockaddr *)&any6, 0) != 0) {
        assert_int_equal(uv_udp_bind(&r->udp, (struct sockaddr *)&v4, 0), 0);
    }
    int size = 1 << 20;
    uv_recv_buffer_size((uv_handle_t *)&r->udp, &size);
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    uv_udp_getsockname(&r->udp, (struct sockaddr *)&bound, &blen);
    uv_udp_recv_start(&r->udp, rx_alloc, rx_read);
    return bound.ss_family == AF_INET6
               ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
               : ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void test_udp_pipeline(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static receiver_t r;
    uint16_t port = receiver_start(&loop, &r, false);
    sc_metrics_config_t cfg;
    sc_metrics_config_defaults(&cfg);
    cfg.statsd.port = port;
    cfg.flush_interval_ms = 3600000; /* only the explicit flush */
    run_pipeline(&loop, &r, &cfg);
    uv_close((uv_handle_t *)&r.udp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A host name: resolved in the background; until it is, every datagram is
 * counted as unsent, then they arrive. Every line is either sent or
 * counted. */
static void test_host_name(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    static receiver_t r;
    /* "localhost" may resolve to ::1 or 127.0.0.1: a dual-stack receiver
     * when the machine has IPv6. */
    uint16_t port = receiver_start(&loop, &r, true);
    sc_metrics_config_t cfg;
    sc_metrics_config_defaults(&cfg);
    snprintf(cfg.statsd.host, sizeof cfg.statsd.host, "localhost");
    cfg.statsd.port = port;
    cfg.flush_interval_ms = 3600000;
    sc_metrics_daemon_t *md;
    assert_int_equal(sc_metrics_daemon_new(&loop, &cfg, &md), 0);
    uint64_t attempts = 0;
    for (int i = 0; i < 500 && r.datagrams == 0; i++) {
        sidecar_v1_Metric c = wire(SC_MTYPE_COUNT, "x", 1, NULL);
        assert_null(sc_metrics_daemon_add(md, &c));
        sc_metrics_daemon_flush(md);
        attempts++;
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_sleep(5);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_true(r.datagrams > 0);
    sc_metrics_report_t rep;
    sc_metrics_daemon_report(md, &rep);
    assert_int_equal(rep.sent.lines_sent + rep.sent.lines_failed, attempts);
    assert_true(rep.sent.lines_sent >= 1);
    close_pipeline(&loop, md);
    uv_close((uv_handle_t *)&r.udp, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

#if !defined(_WIN32)
/* A Unix datagram receiver at `path` (the agent's DogStatsD socket). */
static int unix_receiver(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static bool unix_received(int fd, const char *want)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[256];
    if (poll(&p, 1, 2000) != 1) {
        return false;
    }
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strcmp(buf, want) == 0;
}

static void flush_one(uv_loop_t *loop, sc_metrics_daemon_t *md)
{
    sidecar_v1_Metric c = wire(SC_MTYPE_COUNT, "x", 1, NULL);
    assert_null(sc_metrics_daemon_add(md, &c));
    sc_metrics_daemon_flush(md);
    uv_run(loop, UV_RUN_NOWAIT); /* a dropped socket finishes closing */
}

/* The agent's socket goes away and comes back: the datagram sent meanwhile
 * is counted, the next one finds the new socket. */
static void test_unix_agent_restarts(void **state)
{
    (void)state;
    char path[108];
    snprintf(path, sizeof path, "/tmp/sidecar-test-dsd-%d.sock", (int)getpid());
    uv_loop_t loop;
    uv_loop_init(&loop);
    sc_metrics_config_t cfg;
    sc_metrics_config_defaults(&cfg);
    snprintf(cfg.statsd.unix_path, sizeof cfg.statsd.unix_path, "%s", path);
    sc_metrics_daemon_t *md;
    assert_int_equal(sc_metrics_daemon_new(&loop, &cfg, &md), 0);
    int fd = unix_receiver(path);
    flush_one(&loop, md);
    assert_true(unix_received(fd, "x:1|c"));
    close(fd);
    unlink(path);
    flush_one(&loop, md);
    sc_metrics_report_t rep;
    sc_metrics_daemon_report(md, &rep);
    assert_int_equal(rep.sent.datagrams_sent, 1);
    assert_int_equal(rep.sent.datagrams_failed, 1);
    assert_int_not_equal(rep.sent.last_error, 0);
    fd = unix_receiver(path);
    flush_one(&loop, md);
    assert_true(unix_received(fd, "x:1|c"));
    sc_metrics_daemon_report(md, &rep);
    assert_int_equal(rep.sent.datagrams_sent, 2);
    close_pipeline(&loop, md);
    close(fd);
    unlink(path);
    assert_int_equal(uv_loop_close(&loop), 0);
}
#endif

/* Nothing listening: every datagram is counted, nothing is held. */
static void test_no_listener_counted(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    sc_metrics_config_t cfg;
    sc_metrics_config_defaults(&cfg);
    snprintf(cfg.statsd.unix_path, sizeof cfg.statsd.unix_path,
             "/nonexistent-dir/dsd.socket");
    sc_metrics_daemon_t *md;
    assert_int_equal(sc_metrics_daemon_new(&loop, &cfg, &md), 0);
    sidecar_v1_Metric c = wire(SC_MTYPE_COUNT, "x", 1, NULL);
    assert_null(sc_metrics_daemon_add(md, &c));
    sc_metrics_daemon_flush(md);
    sc_metrics_report_t rep;
    sc_metrics_daemon_report(md, &rep);
    assert_int_equal(rep.sent.datagrams_failed, 1);
    assert_int_equal(rep.sent.lines_failed, 1);
    assert_int_equal(rep.sent.lines_sent, 0);
    assert_int_not_equal(rep.sent.last_error, 0);
    close_pipeline(&loop, md);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_canonical_tags),
        cmocka_unit_test(test_aggregation),
        cmocka_unit_test(test_distribution_lines_fit),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_packer),
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_udp_pipeline),
        cmocka_unit_test(test_no_listener_counted),
        cmocka_unit_test(test_host_name),
#if !defined(_WIN32)
        cmocka_unit_test(test_unix_agent_restarts),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
