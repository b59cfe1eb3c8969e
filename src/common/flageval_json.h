/* EVP `flagevaluation` request bodies (docs/flag-evaluations.md) from a drained
 * batch:
 *
 *   {"context":{"service":"…","env":"…","version":"…"},
 *    "flagEvaluations":[{"timestamp":…,"flag":{"key":"…"},
 *      "first_evaluation":…,"last_evaluation":…,"evaluation_count":…,
 *      "variant":{"key":"…"},"allocation":{"key":"…"},
 *      "targeting_rule":{"key":"…"},"targeting_key":"…",
 *      "context":{"evaluation":{…},"dd":{"service":"…"}},
 *      "error":{"message":"…"},"runtime_default_used":true}, …]}
 *
 * Optional members are omitted when absent or empty (never null, never an
 * empty placeholder); runtime_default_used appears only when true. A batch
 * is split into bodies of at most `max_events` events and `max_bytes`
 * bytes. The sidecar's HTTP flusher posts each body it is handed. */
#ifndef SIDECAR_FLAGEVAL_JSON_H
#define SIDECAR_FLAGEVAL_JSON_H

#include "buf.h"
#include "flageval.h"
#include "json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_FLAGEVAL_JSON_MAX_EVENTS 512u
#define SC_FLAGEVAL_JSON_MAX_BYTES  ((size_t)5 * 1000 * 1000)

typedef struct sc_flageval_json_opts {
    /* The body's "context"; absent or empty members are left out.
     * `service` is also each event's context.dd.service. */
    sc_view_t service;
    sc_view_t env;
    sc_view_t version;
    int64_t timestamp_ms; /* each event's "timestamp"; 0 means now */
    size_t max_events;    /* 0: SC_FLAGEVAL_JSON_MAX_EVENTS */
    size_t max_bytes;     /* 0: SC_FLAGEVAL_JSON_MAX_BYTES */
} sc_flageval_json_opts_t;

/* Receives one complete body (valid during the call) holding `events`
 * events. Returning false stops the build. */
typedef bool sc_flageval_body_fn(void *ctx, const sc_buf_t *body,
                                 size_t events);

typedef struct sc_flageval_json_result {
    size_t bodies;
    size_t events;
    /* Events larger than max_bytes on their own: left out, counted. */
    size_t events_too_large;
    uint64_t evaluations_too_large;
} sc_flageval_json_result_t;

/* Builds the bodies for `batch` in order, handing each to `fn`. Returns
 * false when out of memory or stopped by `fn` (`*result`, if not NULL, says
 * how far it got). An empty batch produces no body. */
bool sc_flageval_json_bodies(const sc_flageval_batch_t *batch,
                             const sc_flageval_json_opts_t *opts,
                             sc_flageval_body_fn *fn, void *ctx,
                             sc_flageval_json_result_t *result);

/* Writes a canonical context string (flageval_context.h) as one JSON object
 * of its attributes, in key order. Also used for exposures' subject
 * attributes. */
void sc_flageval_json_context_object(sc_json_t *j, sc_view_t canonical);

/* Writes one event object for a bucket. */
void sc_flageval_json_event(sc_json_t *j, const sc_flageval_bucket_view_t *v,
                            sc_view_t service, int64_t timestamp_ms);

#endif
