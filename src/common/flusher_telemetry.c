/* Telemetry submissions (docs/telemetry.md): one telemetry v2 body each,
 * posted through the agent's telemetry proxy with the headers that name
 * the request type and the client library. */
#include "flusher_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Identity strings are at most 128 bytes without control characters
 * (docs/wire.md), so a header line can be neither cut nor split. */
#define SC_TELEMETRY_HEADER_MAX 129

/* The headers of one body, kept with its batch (sc_batch_t.enc). */
typedef struct telemetry_headers {
    char request_type[48];
    char language[SC_TELEMETRY_HEADER_MAX];
    char version[SC_TELEMETRY_HEADER_MAX];
} telemetry_headers_t;

static bool add(struct curl_slist **h, const char *name, const char *value)
{
    char line[64 + SC_TELEMETRY_HEADER_MAX];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*h, line);
    if (l == NULL) {
        return false;
    }
    *h = l;
    return true;
}

bool sc_telemetry_headers(const sc_batch_t *b, struct curl_slist **h)
{
    const telemetry_headers_t *t = b->enc;
    return add(h, "DD-Telemetry-API-Version", "v2") &&
           add(h, "DD-Telemetry-Request-Type", t->request_type) &&
           add(h, "DD-Client-Library-Language", t->language) &&
           add(h, "DD-Client-Library-Version", t->version);
}

void sc_telemetry_release(sc_batch_t *b)
{
    free(b->enc);
    b->enc = NULL;
}

int sc_flusher_submit_telemetry(sc_flusher_t *f, const char *request_type,
                                const char *language, const char *version,
                                const void *json, size_t len)
{
    telemetry_headers_t *t = calloc(1, sizeof *t);
    if (t == NULL) {
        sc_flusher_count_submitted(f, SC_DEST_TELEMETRY, len, 0);
        return sc_flusher_refuse(f, SC_DEST_TELEMETRY, SC_DROP_NO_MEMORY, len,
                                 0);
    }
    snprintf(t->request_type, sizeof t->request_type, "%s", request_type);
    snprintf(t->language, sizeof t->language, "%s", language);
    snprintf(t->version, sizeof t->version, "%s", version);
    int rc = sc_flusher_submit_body(f, SC_DEST_TELEMETRY, json, len, t);
    if (rc != 0) {
        free(t);
    }
    return rc;
}
