/* Drops nobody could see, reported: a client whose sidecar is not there
 * fills its buffer and refuses the rest (sc_client_send_trace says so);
 * when a sidecar can be reached, the queued actions go to it and a
 * DropReport tells it what was refused, which `sidecar stats` shows under
 * client_drops. A second report carries only what was dropped since. */
#include "harness.h"
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Sends `n` traces of 2 traces each; returns how many were refused. */
static int send_traces(sc_client_t *c, int n, uint64_t base)
{
    uint8_t payload[64];
    int refused = 0;
    for (int i = 0; i < n; i++) {
        size_t len = th_trace_payload(payload, base + (uint64_t)i);
        refused += sc_client_send_trace(c, payload, len, 2) != 0;
    }
    return refused;
}

int main(void)
{
    char endpoint[128];
    th_endpoint(endpoint, sizeof endpoint, "dropreport");
    sc_client_options_t o = {.endpoint = endpoint,
                             .connect_timeout_ms = 200,
                             .buffer_cap = 2048,
                             .reconnect_min_ms = 1,
                             .reconnect_max_ms = 1};
    sc_client_t *c = sc_client_new(&o);
    TH_CHECK(c != NULL);

    /* No sidecar: the buffer fills, the rest is refused. */
    int refused = send_traces(c, 100, 0);
    sc_client_flush(c);
    TH_CHECK(refused > 0 && refused < 100);

    int pid = th_sidecar_start(endpoint, NULL);
    TH_CHECK(pid != 0);
    int rc = sc_client_flush_sync(c, 3000);
    if (rc != 0) {
        fprintf(stderr, "first barrier: %s\n", sc_strerror(rc));
    }
    TH_CHECK(rc == 0);
    char *json = th_stats(endpoint);
    TH_CHECK(json != NULL);
    uint64_t handled = th_json_u64(json, "trace");
    const char *drops = strstr(json, "\"client_drops\"");
    TH_CHECK(drops != NULL);
    uint64_t payloads = th_json_u64(drops, "trace_payloads");
    uint64_t traces = th_json_u64(drops, "traces");
    printf("refused %d of 100 without a sidecar; the sidecar handled %llu "
           "and was told of %llu payloads (%llu traces)\n",
           refused, (unsigned long long)handled, (unsigned long long)payloads,
           (unsigned long long)traces);
    free(json);
    TH_CHECK(handled == (uint64_t)(100 - refused));
    TH_CHECK(payloads == (uint64_t)refused && traces == 2 * (uint64_t)refused);

    /* Connected now: nothing more is refused, nothing more reported. */
    TH_CHECK(send_traces(c, 10, 1000) == 0);
    TH_CHECK(sc_client_flush_sync(c, 3000) == 0);
    json = th_stats(endpoint);
    drops = json != NULL ? strstr(json, "\"client_drops\"") : NULL;
    TH_CHECK(drops != NULL &&
             th_json_u64(drops, "trace_payloads") == (uint64_t)refused);
    TH_CHECK(th_json_u64(json, "trace") == (uint64_t)(110 - refused));
    free(json);
    sc_client_free(c);
    TH_CHECK(th_sidecar_stop(pid, false) == 0);
    printf("PASS\n");
    return 0;
}
