/* Metrics end to end through the real pieces: 8 client processes send
 * metric points of every type to the real sidecar binary, which aggregates
 * them and sends DogStatsD datagrams to the local intake's DogStatsD
 * receiver, over UDP (datagrams limited to 512 bytes) and then (POSIX) over
 * a Unix datagram socket; under Wine the intake runs on the build host
 * (e2e.h). tests/intake/dogstatsd_check.py then parses what
 * arrived with its own parser and checks the exact totals: counts summed
 * (sample rate applied), one line per context, the last gauge, every
 * distinct set member once, every distribution and histogram value, the
 * cardinality bound (contexts over it counted, never sent), and that the
 * intake received exactly the datagrams and lines the sidecar counts as
 * sent. */
#include "e2e.h"
#include "harness.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PROCS        8
#define MAX_CONTEXTS 100
#define FIXED        7  /* contexts the parent seeds first */
#define CARD         20 /* one-point contexts per process */

static sc_client_t *connect_client(const char *endpoint)
{
    sc_client_options_t o = {.endpoint = endpoint, .language = "php"};
    return sc_client_new(&o);
}

static int send_metric(sc_client_t *c, sc_metric_type_t type, const char *name,
                       double value, const char *tags, double rate)
{
    sc_metric_t m = {.type = type,
                     .name = name,
                     .value = value,
                     .tags = tags,
                     .sample_rate = rate};
    return sc_client_send_metric(c, &m) != 0;
}

static int send_member(sc_client_t *c, const char *member)
{
    sc_metric_t m = {
        .type = SC_METRIC_SET, .name = "e2e.users", .set_member = member};
    return sc_client_send_metric(c, &m) != 0;
}

/* A ping answers after every earlier action of the connection was read. */
static int settle(sc_client_t *c)
{
    sc_ping_result_t r;
    return sc_client_ping(c, 5000, &r) != 0;
}

static int client(const char *endpoint, int i)
{
    sc_client_t *c = connect_client(endpoint);
    int failures = 0;
    char buf[64];
    for (int r = 0; r < 200; r++) {
        failures += send_metric(c, SC_METRIC_COUNT, "e2e.requests", 1,
                                "proc:all,env:e2e", 0);
        failures += send_metric(c, SC_METRIC_DISTRIBUTION, "e2e.latency",
                                i * 1000 + r, "env:e2e", 0);
    }
    for (int r = 0; r < 100; r++) {
        snprintf(buf, sizeof buf, "u%d", i * 50 + r);
        failures += send_member(c, buf);
        failures +=
            send_metric(c, SC_METRIC_HISTOGRAM, "e2e.hist", r, NULL, 0.5);
        failures +=
            send_metric(c, SC_METRIC_COUNT, "e2e.sampled", 1, NULL, 0.25);
    }
    for (int r = 0; r < 10; r++) {
        failures += send_metric(c, SC_METRIC_RATE, "e2e.rate", 3, NULL, 0);
        failures +=
            send_metric(c, SC_METRIC_GAUGE, "e2e.gauge", i * 10 + r, NULL, 0);
    }
    for (int k = 0; k < CARD; k++) {
        snprintf(buf, sizeof buf, "id:%d_%d", i, k);
        failures += send_metric(c, SC_METRIC_COUNT, "e2e.card", 1, buf, 0);
    }
    /* Refused by the client itself: nothing is sent. */
    failures += send_metric(c, SC_METRIC_COUNT, "bad name", 1, NULL, 0) == 0;
    failures += send_metric(c, SC_METRIC_COUNT, "e2e.x", 1, "a|b", 0) == 0;
    failures += settle(c);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    failures += st.dropped_full[SC_ACTION_METRIC] != 0;
    sc_client_free(c);
    if (failures != 0) {
        fprintf(stderr, "client %d: %d failures\n", i, failures);
    }
    return failures != 0;
}

static uint64_t stat_of(const char *endpoint, const char *key)
{
    char *json = th_stats(endpoint);
    uint64_t v = th_json_u64(json, key);
    free(json);
    return v;
}

static int run(const char *self, bool over_unix)
{
    th_e2e_t e;
    if (!th_e2e_start(&e, !over_unix, over_unix)) {
        return 1;
    }
    /* UDP: small datagrams, so that packing is exercised. */
    th_setenv("DD_TRACE_SIDECAR_DOGSTATSD_MAX_DATAGRAM",
              over_unix ? NULL : "512");
    /* Nothing but the explicit Flush below drains: one line per context. */
    th_setenv("DD_TRACE_SIDECAR_METRICS_FLUSH_INTERVAL", "3600000");
    char contexts[16];
    snprintf(contexts, sizeof contexts, "%d", MAX_CONTEXTS);
    th_setenv("DD_TRACE_SIDECAR_METRICS_MAX_CONTEXTS", contexts);

    char ep[256];
    th_endpoint(ep, sizeof ep, over_unix ? "metrics-unix" : "metrics-udp");
    int pid = th_sidecar_start(ep, NULL);
    if (pid == 0) {
        fprintf(stderr, "sidecar did not start\n");
        return 1;
    }
    /* The fixed contexts exist before the one-point ones compete for the
     * rest: exactly MAX_CONTEXTS - FIXED of those get in. */
    sc_client_t *c = connect_client(ep);
    int failures = 0;
    failures += send_metric(c, SC_METRIC_COUNT, "e2e.requests", 0,
                            "env:e2e,proc:all", 0);
    failures +=
        send_metric(c, SC_METRIC_DISTRIBUTION, "e2e.latency", -1, "env:e2e", 0);
    failures += send_member(c, "u0");
    failures += send_metric(c, SC_METRIC_HISTOGRAM, "e2e.hist", -1, NULL, 0.5);
    failures += send_metric(c, SC_METRIC_COUNT, "e2e.sampled", 0, NULL, 0.25);
    failures += send_metric(c, SC_METRIC_RATE, "e2e.rate", 0, NULL, 0);
    failures += send_metric(c, SC_METRIC_GAUGE, "e2e.gauge", 0, NULL, 0);
    failures += settle(c);

    const char *args[] = {"client", ep, NULL};
    int failed = th_run_children(self, PROCS, args);

    failures += send_metric(c, SC_METRIC_GAUGE, "e2e.gauge", 4242, NULL, 0);
    failures += settle(c);
    uint64_t points = stat_of(ep, "points");
    uint64_t overflow = stat_of(ep, "contexts_overflow");
    uint64_t invalid = stat_of(ep, "invalid_actions");
    /* Flush with deliver_now: the interval is drained and sent now. */
    failures += sc_client_flush_sync(c, 5000) != 0;
    sc_client_free(c);
    uint64_t lines = stat_of(ep, "lines_sent");
    uint64_t datagrams = stat_of(ep, "datagrams_sent");
    uint64_t unsent = stat_of(ep, "lines_unsent");
    uint64_t too_large = stat_of(ep, "lines_too_large");
    th_sidecar_stop(pid, false);
    th_e2e_stop(&e);

    uint64_t card_in = MAX_CONTEXTS - FIXED;
    uint64_t want_points =
        FIXED + 1 + (uint64_t)PROCS * (400 + 300 + 20) + card_in;
    uint64_t want_overflow = (uint64_t)PROCS * CARD - card_in;
    printf("%s: points %llu (expected %llu), contexts_overflow %llu "
           "(expected %llu), invalid %llu, lines %llu in %llu datagrams, "
           "unsent %llu, too large %llu\n",
           over_unix ? "unix" : "udp", (unsigned long long)points,
           (unsigned long long)want_points, (unsigned long long)overflow,
           (unsigned long long)want_overflow, (unsigned long long)invalid,
           (unsigned long long)lines, (unsigned long long)datagrams,
           (unsigned long long)unsent, (unsigned long long)too_large);
    bool ok = failed == 0 && failures == 0 && points == want_points &&
              overflow == want_overflow && invalid == 0 && unsent == 0 &&
              too_large == 0;
    char check[300];
    snprintf(check, sizeof check,
             "--transport %s --max-datagram %d --procs %d --card-lines %llu "
             "--lines %llu --datagrams %llu",
             over_unix ? "unix" : "udp", over_unix ? 8192 : 512, PROCS,
             (unsigned long long)card_in, (unsigned long long)lines,
             (unsigned long long)datagrams);
    ok = th_e2e_check(&e, "dogstatsd_check.py", check) && ok;
    th_e2e_cleanup(&e);
    printf("%s: %s\n", over_unix ? "unix" : "udp", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

/* Self-telemetry: the sidecar's counters as "sidecar." metrics, counts of
 * what happened since the previous drain. */
static int run_self(void)
{
    th_e2e_t e;
    if (!th_e2e_start(&e, true, false)) {
        return 1;
    }
    th_setenv("DD_TRACE_SIDECAR_METRICS_MAX_CONTEXTS", NULL);
    th_setenv("DD_TRACE_SIDECAR_SELF_METRICS", "true");
    char ep[256];
    th_endpoint(ep, sizeof ep, "metrics-self");
    int pid = th_sidecar_start(ep, NULL);
    th_setenv("DD_TRACE_SIDECAR_SELF_METRICS", NULL);
    if (pid == 0) {
        return 1;
    }
    sc_client_t *c = connect_client(ep);
    int failures = 0;
    for (int i = 0; i < 10; i++) {
        failures += send_metric(c, SC_METRIC_COUNT, "app.hits", 1, NULL, 0);
    }
    /* Not a msgpack array: refused by the sidecar (invalid.trace). */
    failures += sc_client_send_trace(c, "\x01", 1, 1) != 0;
    failures += sc_client_flush_sync(c, 5000) != 0; /* drain 1 */
    for (int i = 0; i < 5; i++) {
        failures += send_metric(c, SC_METRIC_COUNT, "app.hits", 1, NULL, 0);
    }
    failures += sc_client_flush_sync(c, 5000) != 0; /* drain 2 */
    sc_client_free(c);
    th_sidecar_stop(pid, false);
    th_e2e_stop(&e);
    bool ok = th_e2e_check(&e, "dogstatsd_check.py", "--self") && failures == 0;
    th_e2e_cleanup(&e);
    printf("self: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}

/* Without arguments every run (Linux: udp, unix, self); a driver names the
 * runs it wants (e2e_driver.py, Wine: udp and self). */
int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return client(argv[2], atoi(argv[3]));
    }
    static const char *const all[] = {"udp", "unix", "self"};
    const char *const *runs = argc > 1 ? (const char *const *)argv + 1 : all;
    int n = argc > 1 ? argc - 1 : 3;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(runs[i], "self") == 0) {
            rc |= run_self();
        } else {
            rc |= run(argv[0], strcmp(runs[i], "unix") == 0);
        }
    }
    return rc;
}
