/* End to end through the real pieces: several client processes (each its
 * own runtime, subprocess mode: the first one starts the sidecar binary)
 * send traces, record flag evaluations and send exposures; the local intake
 * plays the agent (under Wine on the build host, e2e.h).
 * tests/intake/summary.py then decodes what arrived with independent tools
 * (python3-msgpack, python3 -m json.tool) and checks that every trace
 * arrived exactly once with the right X-Datadog-Trace-Count, the
 * evaluation counts summed across processes, the exposures, and no null. */
#include "e2e.h"
#include "harness.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CLIENTS              6
#define REQUESTS             300
#define EXPOSURES_PER_CLIENT 25

/* `dir`: the endpoint directory, NULL for the platform default. */
static int client(const char *dir, int index)
{
    sc_config_t cfg;
    th_subprocess_config(&cfg, dir);
    cfg.connect_timeout_ms = 5000; /* process start under Wine is slow */
    cfg.client.service = "e2e-service";
    cfg.client.env = "test";
    cfg.client.language = "php";
    cfg.client.language_version = "8.2.0";
    if (sc_init(&cfg) != 0) {
        return 1;
    }
    uint8_t payload[64];
    int failures = 0;
    for (int r = 0; r < REQUESTS; r++) {
        size_t len = th_trace_payload(payload, (uint64_t)index * 100000 + r);
        failures += sc_send_trace(payload, len, 1) != 0;
        sc_attr_t ctx[] = {
            {.key = "n", .type = SC_ATTR_NUMBER, .number_value = r % 4},
            {.key = "s", .type = SC_ATTR_STRING, .string_value = "1"},
        };
        sc_flag_evaluation_t on = {.flag_key = "f-on",
                                   .variant_key = "on",
                                   .allocation_key = "a1",
                                   .reason = "TARGETING_MATCH",
                                   .targeting_key = "user",
                                   .context = ctx,
                                   .context_len = 2};
        sc_flag_evaluation_t dflt = {.flag_key = "f-default",
                                     .reason = "DEFAULT"};
        failures += sc_flag_evaluation_record(&on) != 0;
        failures += sc_flag_evaluation_record(&on) != 0;
        failures += sc_flag_evaluation_record(&dflt) != 0;
        failures += sc_flag_evaluations_flush() != 0;
        sc_flush();
    }
    sc_attr_t subject[] = {
        {.key = "tier", .type = SC_ATTR_STRING, .string_value = "gold"},
        {.key = "beta", .type = SC_ATTR_BOOL, .bool_value = true}};
    sc_exposure_t ex[EXPOSURES_PER_CLIENT];
    for (int i = 0; i < EXPOSURES_PER_CLIENT; i++) {
        ex[i] = (sc_exposure_t){.flag_key = "f-on",
                                .allocation_key = "a1",
                                .variant_key = "on",
                                .subject_id = "user",
                                .subject_attributes = subject,
                                .subject_attributes_len = 2};
    }
    failures += sc_send_exposures(ex, EXPOSURES_PER_CLIENT) != 0;
    int rc = sc_flush_sync(5000);
    sc_shutdown();
    if (failures != 0 || (rc != 0 && rc != UV_ETIMEDOUT)) {
        fprintf(stderr, "client %d: %d failures, flush %s\n", index, failures,
                sc_strerror(rc));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return client(strcmp(argv[2], "-") != 0 ? argv[2] : NULL,
                      atoi(argv[3]));
    }
    th_e2e_t e;
    const char *dir = NULL;
    if (!th_e2e_start(&e, false, false) || !th_e2e_endpoint_dir(&e, &dir)) {
        return 1;
    }
    char ep[300];
    th_subprocess_endpoint(ep, sizeof ep, dir);
    /* Without a directory of its own (Windows) the name is the user's: a
     * sidecar an earlier test left there would serve the clients with
     * that test's agent. */
    int stale = dir == NULL ? th_stop_endpoint(ep) : 0;
    const char *args[] = {"client", dir != NULL ? dir : "-", NULL};
    int failed = th_run_children(argv[0], CLIENTS, args);

    /* The sidecar the first client started: ask it to stop, which delivers
     * what it still holds (the final flush), and wait until it is gone. */
    int stopped = th_stop_endpoint(ep);
    th_e2e_stop(&e);
    char check[200];
    snprintf(check, sizeof check,
             "--expect-traces %d --expect-evaluations %d "
             "--expect-exposures %d",
             CLIENTS * REQUESTS, CLIENTS * REQUESTS * 3,
             CLIENTS * EXPOSURES_PER_CLIENT);
    bool ok = th_e2e_check(&e, "summary.py", check);
    th_e2e_cleanup(&e);
    ok = ok && failed == 0 && stale >= 0 && stopped == 1;
    printf("clients failed: %d; sidecar stopped: %d; %s\n", failed, stopped,
           ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
