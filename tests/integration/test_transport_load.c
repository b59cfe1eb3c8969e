/* 64 client processes x 1000 actions each against one real sidecar: every
 * action is counted by the server, none lost, none duplicated.
 *
 * Each client checks its own count through the flush barrier's reply (the
 * actions its connection had handled), the parent checks the total. */
#include "harness.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS 64
#define ACTIONS 1000

static int run_client(const char *endpoint, int index)
{
    sc_client_options_t o = {.endpoint = endpoint,
                             .connect_timeout_ms = 2000,
                             .enqueue_budget_us = 2000};
    sc_client_t *c = sc_client_new(&o);
    uint8_t payload[64];
    for (int i = 0; i < ACTIONS; i++) {
        size_t n = th_trace_payload(payload, (uint64_t)index * ACTIONS + i);
        if (sc_client_send_trace(c, payload, n, 1) != 0) {
            fprintf(stderr, "client %d: action %d dropped\n", index, i);
            return 1;
        }
    }
    int rc = sc_client_flush_sync(c, 10000);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    sc_client_free(c);
    if (rc != 0) {
        fprintf(stderr, "client %d: flush failed: %s\n", index,
                sc_strerror(rc));
        return 1;
    }
    /* One connection, no reconnect: Hello + traces + Flush were written. */
    if (st.connects != 1 || st.frames_written != ACTIONS + 2 ||
        st.enqueued[SC_ACTION_TRACE] != ACTIONS) {
        fprintf(stderr, "client %d: connects=%llu frames=%llu\n", index,
                (unsigned long long)st.connects,
                (unsigned long long)st.frames_written);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return run_client(argv[2], atoi(argv[3]));
    }
    char endpoint[128];
    th_endpoint(endpoint, sizeof endpoint, "load");
    int pid = th_sidecar_start(endpoint, NULL);
    if (pid == 0) {
        fprintf(stderr, "sidecar did not start\n");
        return 1;
    }
    const char *args[] = {"client", endpoint, NULL};
    int failed = th_run_children(argv[0], CLIENTS, args);
    char *json = th_stats(endpoint);
    uint64_t traces = th_json_u64(json, "trace");
    uint64_t hellos = th_json_u64(json, "hello");
    uint64_t accepted = th_json_u64(json, "accepted");
    uint64_t errors = th_json_u64(json, "decode_errors");
    printf("clients=%d failed=%d traces=%llu (expected %d) hellos=%llu "
           "accepted=%llu decode_errors=%llu\n",
           CLIENTS, failed, (unsigned long long)traces, CLIENTS * ACTIONS,
           (unsigned long long)hellos, (unsigned long long)accepted,
           (unsigned long long)errors);
    int stop = th_sidecar_stop(pid, false);
    free(json);
    bool ok = failed == 0 && traces == (uint64_t)CLIENTS * ACTIONS &&
              errors == 0 && stop == 0;
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
