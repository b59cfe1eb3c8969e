/* A worker of the end-to-end demo: behaves like one PHP worker handling
 * requests, each producing one trace, handed to the sidecar through the
 * public client API. Usage: demo_worker ENDPOINT REQUESTS WORKER_INDEX */
#include "sidecar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [[{"trace_id": id, "span_id": 1, "name": "demo.request",
 *    "service": "sidecar-demo"}]] in msgpack. */
static size_t demo_trace(uint8_t *out, uint64_t id)
{
    size_t n = 0;
    out[n++] = 0x91; /* one trace */
    out[n++] = 0x91; /* one span */
    out[n++] = 0x84; /* four fields */
    const char *k1 = "trace_id";
    out[n++] = (uint8_t)(0xa0 | strlen(k1));
    memcpy(out + n, k1, strlen(k1));
    n += strlen(k1);
    out[n++] = 0xcf;
    for (int i = 7; i >= 0; i--) {
        out[n++] = (uint8_t)(id >> (8 * i));
    }
    const char *k2 = "span_id";
    out[n++] = (uint8_t)(0xa0 | strlen(k2));
    memcpy(out + n, k2, strlen(k2));
    n += strlen(k2);
    out[n++] = 0x01;
    const char *kv[][2] = {{"name", "demo.request"},
                           {"service", "sidecar-demo"}};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            size_t l = strlen(kv[i][j]);
            out[n++] = (uint8_t)(0xa0 | l);
            memcpy(out + n, kv[i][j], l);
            n += l;
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: demo_worker ENDPOINT REQUESTS INDEX\n");
        return 2;
    }
    int requests = atoi(argv[2]);
    int index = atoi(argv[3]);
    sc_client_options_t o = {.endpoint = argv[1],
                             .language = "php",
                             .language_version = "8.2",
                             .tracer_version = "demo",
                             .service = "sidecar-demo"};
    sc_client_t *c = sc_client_new(&o);
    uint8_t payload[128];
    int dropped = 0;
    for (int r = 0; r < requests; r++) {
        size_t len = demo_trace(payload, ((uint64_t)index << 32) | (uint64_t)r);
        if (sc_client_send_trace(c, payload, len, 1) != 0) {
            dropped++;
        }
        sc_client_flush(c); /* request end */
    }
    int rc = sc_client_flush_sync(c, 5000);
    sc_client_free(c);
    printf("worker %d: %d requests, %d traces dropped, final flush %s\n", index,
           requests, dropped, rc == 0 ? "ok" : sc_strerror(rc));
    return rc == 0 ? 0 : 1;
}
