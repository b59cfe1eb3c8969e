/* Telemetry end to end through the real pieces: 16 processes of one
 * application (same service, env, version, language, tracer) start
 * against the real sidecar binary, report their configuration,
 * dependencies (three shared, one of their own) and integrations (pdo
 * switched on by half of them), stay connected for a few heartbeat
 * intervals and exit; one process of another application reports
 * app-closing itself while it stays connected. The local intake plays the
 * agent (under Wine on the build host, e2e.h);
 * tests/intake/telemetry_check.py validates every body against a
 * JSON Schema of the v2 API and checks: one app-started per application,
 * seq_ids 1..N, each dependency once, integrations on change only,
 * heartbeats at the interval while processes live, one app-closing after
 * the last one left. */
#include "e2e.h"
#include "harness.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PROCS        16
#define HEARTBEAT_MS 300
#define CLOSING_MS   300

static sc_client_t *connect_as(const char *endpoint, const char *service)
{
    sc_client_options_t o = {.endpoint = endpoint,
                             .language = "php",
                             .language_version = "8.2.0",
                             .tracer_version = "0.9.0",
                             .service = service,
                             .env = "test",
                             .version = "1.2.3"};
    return sc_client_new(&o);
}

static int settle(sc_client_t *c)
{
    sc_ping_result_t r;
    return sc_client_ping(c, 5000, &r) != 0;
}

static uint64_t stat_of(const char *endpoint, const char *key)
{
    char *json = th_stats(endpoint);
    uint64_t v = th_json_u64(json, key);
    free(json);
    return v;
}

/* Waits (up to 60 s) until all PROCS processes have reported app-started:
 * the first starts the application, the others join it. */
static bool all_joined(const char *endpoint)
{
    for (int i = 0; i < 3000; i++) {
        if (stat_of(endpoint, "app_started_joined") >= PROCS - 1) {
            return true;
        }
        uv_sleep(20);
    }
    fprintf(stderr, "not every process joined the application\n");
    return false;
}

static int client(const char *endpoint, int i)
{
    sc_client_t *c = connect_as(endpoint, "tel-e2e");
    char index[16], own[32];
    snprintf(index, sizeof index, "%d", i);
    snprintf(own, sizeof own, "app/proc-%d", i);
    sc_telemetry_config_t config[] = {
        {"DD_SERVICE", "tel-e2e", "env_var"},
        {"trace.sample_rate", "1", "default"},
        {"process.index", index, NULL},
    };
    sc_telemetry_dependency_t deps[] = {{"guzzlehttp/guzzle", "7.8.1"},
                                        {"monolog/monolog", "3.5.0"},
                                        {"psr/log", NULL},
                                        {own, "1.0"}};
    sc_telemetry_integration_t integrations[] = {
        {"curl", "8.1", true, 1, -1},
        {"pdo", NULL, i >= PROCS / 2, -1, -1},
    };
    sc_telemetry_t started = {.event = SC_TELEMETRY_APP_STARTED,
                              .configuration = config,
                              .configuration_len = 3};
    sc_telemetry_t loaded = {.event = SC_TELEMETRY_DEPENDENCIES_LOADED,
                             .dependencies = deps,
                             .dependencies_len = 4};
    sc_telemetry_t changed = {.event = SC_TELEMETRY_INTEGRATIONS_CHANGE,
                              .integrations = integrations,
                              .integrations_len = 2};
    sc_telemetry_log_t log = {.message = "pdo: slow query\n#0 query()",
                              .level = SC_TELEMETRY_LOG_WARN,
                              .tags = "integration:pdo"};
    sc_telemetry_t logs = {
        .event = SC_TELEMETRY_LOGS, .logs = &log, .logs_len = 1};
    /* Metrics (telemetry_check.py knows these figures): per process a
     * count of 3, a rate of 2, a gauge of its index, distribution values
     * its index and 0.5. */
    sc_telemetry_metric_t points[] = {
        {NULL, "spans_created", "integration_name:pdo,component:db", 1, true,
         SC_TELEMETRY_COUNT},
        {NULL, "spans_created", "integration_name:pdo,component:db", 2, true,
         SC_TELEMETRY_COUNT},
        {"general", "workers", NULL, (double)i, false, SC_TELEMETRY_GAUGE},
        {NULL, "flushes", "", 2, false, SC_TELEMETRY_RATE},
    };
    sc_telemetry_metric_t values[] = {
        {NULL, "init_time", "lang:php", (double)i, true,
         SC_TELEMETRY_DISTRIBUTION},
        {NULL, "init_time", "lang:php", 0.5, true, SC_TELEMETRY_DISTRIBUTION},
    };
    sc_telemetry_t metrics = {.event = SC_TELEMETRY_GENERATE_METRICS,
                              .metrics = points,
                              .metrics_len = 4};
    sc_telemetry_t dists = {.event = SC_TELEMETRY_DISTRIBUTIONS,
                            .metrics = values,
                            .metrics_len = 2};
    int failures = sc_client_send_telemetry(c, &started) != 0;
    failures += sc_client_send_telemetry(c, &loaded) != 0;
    failures += sc_client_send_telemetry(c, &changed) != 0;
    failures += sc_client_send_telemetry(c, &logs) != 0;
    failures += sc_client_send_telemetry(c, &metrics) != 0;
    failures += sc_client_send_telemetry(c, &dists) != 0;
    /* Refused by the client: a distribution value in generate-metrics. */
    sc_telemetry_t mixed = {.event = SC_TELEMETRY_GENERATE_METRICS,
                            .metrics = values,
                            .metrics_len = 1};
    failures += sc_client_send_telemetry(c, &mixed) != UV_EINVAL;
    /* Refused by the client: a list the event does not take. */
    sc_telemetry_t bad = {.event = SC_TELEMETRY_APP_CLOSING,
                          .dependencies = deps,
                          .dependencies_len = 1};
    failures += sc_client_send_telemetry(c, &bad) != UV_EINVAL;
    failures += settle(c);
    /* No process leaves before every one has joined: an application closes
     * CLOSING_MS after its last process, so on a loaded machine, where
     * children start seconds apart, the first ones could otherwise end the
     * application before the last ones start it again (a second
     * runtime_id). */
    failures += !all_joined(endpoint);
    /* Alive for several heartbeats; the connection closing is the
     * process leaving. */
    uv_sleep(4 * HEARTBEAT_MS + 20 * (unsigned)i);
    failures += settle(c);
    sc_client_free(c);
    if (failures != 0) {
        fprintf(stderr, "client %d: %d failures\n", i, failures);
    }
    return failures != 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return client(argv[2], atoi(argv[3]));
    }
    th_e2e_t e;
    if (!th_e2e_start(&e, false, false)) {
        return 1;
    }
    char beat[32], closing[32];
    snprintf(beat, sizeof beat, "%g", HEARTBEAT_MS / 1000.0);
    snprintf(closing, sizeof closing, "%d", CLOSING_MS);
    th_setenv("DD_TELEMETRY_HEARTBEAT_INTERVAL", beat);
    th_setenv("DD_TRACE_SIDECAR_TELEMETRY_CLOSING_DELAY", closing);
    char ep[256];
    th_endpoint(ep, sizeof ep, "telemetry");
    int pid = th_sidecar_start(ep, NULL);
    if (pid == 0) {
        fprintf(stderr, "sidecar did not start\n");
        return 1;
    }

    /* Another application: app-closing reported while still connected. */
    sc_client_t *other = connect_as(ep, "tel-other");
    sc_telemetry_t started = {.event = SC_TELEMETRY_APP_STARTED};
    sc_telemetry_t closing_ev = {.event = SC_TELEMETRY_APP_CLOSING};
    int failures = sc_client_send_telemetry(other, &started) != 0;
    failures += sc_client_send_telemetry(other, &closing_ev) != 0;
    failures += settle(other);

    const char *args[] = {"client", ep, NULL};
    int failed = th_run_children(argv[0], PROCS, args);

    /* Every application closes CLOSING_MS after its last process. */
    uint64_t apps = UINT64_MAX;
    for (int i = 0; i < 500 && apps != 0; i++) {
        uv_sleep(20);
        apps = stat_of(ep, "applications");
    }
    uint64_t joined = stat_of(ep, "app_started_joined");
    uint64_t known = stat_of(ep, "dependencies_known");
    uint64_t started_apps = stat_of(ep, "applications_started");
    uint64_t closed = stat_of(ep, "app_closing");
    uint64_t points = stat_of(ep, "metric_points");
    /* Everything handed to the flusher is delivered before it answers. */
    sc_client_flush_sync(other, 5000);
    sc_client_free(other);
    th_sidecar_stop(pid, false);
    th_e2e_stop(&e);
    printf("applications %llu, started %llu, joined %llu, dependencies "
           "known %llu, app-closing %llu\n",
           (unsigned long long)apps, (unsigned long long)started_apps,
           (unsigned long long)joined, (unsigned long long)known,
           (unsigned long long)closed);
    printf("metric points %llu\n", (unsigned long long)points);
    bool ok = failed == 0 && failures == 0 && apps == 0 && started_apps == 2 &&
              joined == PROCS - 1 && known == 3 * (PROCS - 1) && closed == 2 &&
              points == 6 * PROCS;
    char check[64];
    snprintf(check, sizeof check, "--procs %d --heartbeat-ms %d", PROCS,
             HEARTBEAT_MS);
    ok = th_e2e_check(&e, "telemetry_check.py", check) && ok;
    th_e2e_cleanup(&e);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
