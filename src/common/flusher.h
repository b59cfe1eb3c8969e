/* Delivery to one agent (docs/delivery.md): queues, trace merging, retries,
 * byte caps, /info polling and delivery stats, on the sidecar's libuv loop.
 * The daemon keeps one flusher per agent (daemon_routes.c).
 *
 * Every function must be called from the loop's thread. Nothing here
 * blocks: submissions are copied into per-destination buffers and sent by
 * libcurl (http.h) as the loop runs. Every byte that is not delivered is
 * counted as a drop, by destination and reason. See docs/delivery.md. */
#ifndef SIDECAR_FLUSHER_H
#define SIDECAR_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent_info.h"
#include "agent_url.h"
#include "buf.h"
#include "wire_types.h"

typedef enum sc_dest {
    SC_DEST_TRACES = 0,
    SC_DEST_FLAGEVALUATIONS = 1,
    SC_DEST_EXPOSURES = 2,
    SC_DEST_TELEMETRY = 3,
    SC_DEST_COUNT
} sc_dest_t;

typedef enum sc_drop_reason {
    SC_DROP_REJECTED_PAYLOAD = 0, /* not a valid v0.4 payload / bad meta */
    SC_DROP_TOO_LARGE,            /* one submission over max_body_bytes */
    SC_DROP_BUFFER_FULL,          /* evicted (oldest first) by the byte cap */
    SC_DROP_RETRIES_EXHAUSTED,    /* retryable failures, attempts used up */
    SC_DROP_CLIENT_ERROR_4XX,     /* the agent answered 4xx (not 408/429) */
    SC_DROP_REQUEST_ERROR,        /* unusable URL, or a 1xx/3xx answer */
    SC_DROP_SHUTDOWN,             /* still unsent at the close deadline */
    SC_DROP_NO_MEMORY,
    SC_DROP_REASON_COUNT
} sc_drop_reason_t;

const char *sc_dest_name(sc_dest_t dest); /* "traces"... */
/* What a destination's submissions hold, the stats key that counts them:
 * "traces", "events" (flag-evaluation events), "exposures". */
const char *sc_dest_item_name(sc_dest_t dest);
const char *sc_drop_reason_name(sc_drop_reason_t why); /* "buffer_full"... */

#define SC_FLUSHER_PATH_MAX 128

typedef struct sc_flusher_config {
    sc_agent_addr_t agent;
    /* Request path per destination: /v0.4/traces,
     * /evp_proxy/v2/api/v2/flagevaluations, /evp_proxy/v2/api/v2/exposures */
    char path[SC_DEST_COUNT][SC_FLUSHER_PATH_MAX];
    uint32_t flush_interval_ms;  /* 1000: buffered traces are sent */
    uint32_t request_timeout_ms; /* 3000, connection included */
    uint32_t info_interval_ms;   /* 60000; 0: never fetch /info */
    uint32_t retry_attempts;     /* 5 attempts in all */
    uint32_t retry_base_ms;      /* 100, doubled after every failure */
    size_t trace_flush_bytes;    /* 1 MiB buffered for one meta: send */
    size_t max_body_bytes;       /* 10 MiB: no request body is larger */
    /* Bytes held per destination (unsent, waiting for a retry, or in
     * flight): 32 MiB traces, 8 MiB flag evaluations, 8 MiB exposures. */
    size_t cap_bytes[SC_DEST_COUNT];
    uint32_t max_inflight; /* 2 requests per destination at a time */
} sc_flusher_config_t;

void sc_flusher_config_defaults(sc_flusher_config_t *cfg);

struct sc_ledger_held;

/* Room for the last error of an endpoint: "<METHOD> <URL> failed: why". */
#define SC_LAST_ERROR_MAX 384

/* Delivery counters of one endpoint, and its last outcomes for people
 * (`sidecar status`): wall-clock times in epoch ms, 0 for never. */
typedef struct sc_endpoint_stats {
    uint64_t requests;     /* attempts started */
    uint64_t ok;           /* 2xx answers */
    uint64_t failed;       /* batches given up (see the drop reasons) */
    uint64_t retried;      /* retries scheduled after a retryable failure */
    uint64_t bytes_sent;   /* body bytes answered 2xx */
    int64_t last_ok_ms;    /* the last 2xx answer */
    int64_t last_error_ms; /* the last failed attempt */
    char last_error[SC_LAST_ERROR_MAX]; /* what it was, as logged */
} sc_endpoint_stats_t;

/* Records a 2xx answer (now) in `e`. */
void sc_endpoint_note_ok(sc_endpoint_stats_t *e);

/* Records a failed attempt (now) in `e`, its message from `fmt`, and
 * returns the message. */
const char *sc_endpoint_note_error(sc_endpoint_stats_t *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

/* `traces` counts the items of a destination's submissions: traces,
 * flag-evaluation events or exposures (sc_dest_item_name). */
typedef struct sc_drop_stats {
    uint64_t payloads; /* submissions */
    uint64_t traces;   /* items in them */
    uint64_t bytes;
} sc_drop_stats_t;

/* Per destination. Conservation: submitted = delivered + dropped (all
 * reasons) + buffered, for payloads and for traces. */
typedef struct sc_dest_stats {
    sc_endpoint_stats_t delivery;
    uint64_t submitted_payloads, submitted_traces, submitted_bytes;
    uint64_t delivered_payloads, delivered_traces;
    uint64_t buffered_payloads, buffered_traces, buffered_bytes; /* now */
    uint64_t buffered_bytes_max;                                 /* peak */
    sc_drop_stats_t drops[SC_DROP_REASON_COUNT];
} sc_dest_stats_t;

typedef struct sc_flusher_stats {
    sc_dest_stats_t dest[SC_DEST_COUNT];
    sc_endpoint_stats_t info;
} sc_flusher_stats_t;

/* Things published elsewhere (shared memory, docs/shared-state.md). Called from
 * the loop after each change. */
typedef struct sc_flusher_hooks {
    void (*on_agent_info)(const sc_agent_info_t *info, void *data);
    /* `json`: the raw "rate_by_service" object of the latest answer. */
    void (*on_rates)(const char *json, size_t len, void *data);
    void *data;
} sc_flusher_hooks_t;

typedef struct sc_flusher sc_flusher_t;

/* Metadata of a trace payload (from the client's Hello); payloads with the
 * same three values are merged into one request. Values are at most 128
 * printable bytes; empty values are not sent. */
typedef struct sc_trace_meta {
    sc_view_t lang;           /* Datadog-Meta-Lang */
    sc_view_t lang_version;   /* Datadog-Meta-Lang-Version */
    sc_view_t tracer_version; /* Datadog-Meta-Tracer-Version */
} sc_trace_meta_t;

/* Creates the flusher on `loop` and starts its timers (and the first /info
 * request). Returns 0 or a negative UV_E* error. */
int sc_flusher_new(uv_loop_t *loop, const sc_flusher_config_t *cfg,
                   sc_flusher_t **out);

/* Applies a new configuration (SessionConfig): the agent address, paths,
 * intervals, timeouts and limits apply from the next request; a lower cap
 * evicts at once; a new agent address fetches /info at once. */
void sc_flusher_reconfigure(sc_flusher_t *f, const sc_flusher_config_t *cfg);

void sc_flusher_set_hooks(sc_flusher_t *f, const sc_flusher_hooks_t *hooks);

/* Keeps `held` (the daemon's ledger, ledger.h) equal to what this flusher
 * and the others sharing it hold: added on every change of `buffered`. */
void sc_flusher_set_ledger(sc_flusher_t *f, struct sc_ledger_held *held);

/* Queues one msgpack v0.4 payload (copied). Returns 0 when queued, else the
 * payload is dropped, counted, and the result says why: UV_EINVAL
 * (rejected_payload), UV_E2BIG (too_large), UV_ENOBUFS (buffer_full),
 * UV_ENOMEM, UV_ECANCELED (closing: shutdown). */
int sc_flusher_submit_traces(sc_flusher_t *f, const sc_trace_meta_t *meta,
                             const uint8_t *msgpack, size_t len,
                             uint32_t trace_count);

/* Queues one JSON body (copied) for an EVP destination
 * (SC_DEST_FLAGEVALUATIONS or SC_DEST_EXPOSURES), posted as is with
 * X-Datadog-EVP-Subdomain: event-platform-intake. `items`: the events or
 * exposures it holds, counted like a trace payload's traces. Same
 * results. */
int sc_flusher_submit_evp(sc_flusher_t *f, sc_dest_t dest, const void *json,
                          size_t len, uint32_t items);

/* Queues one telemetry v2 body (copied) for
 * /telemetry/proxy/api/v2/apmtelemetry with its DD-Telemetry-Request-Type
 * and DD-Client-Library-Language / -Version headers. Same results. */
int sc_flusher_submit_telemetry(sc_flusher_t *f, const char *request_type,
                                const char *language, const char *version,
                                const void *json, size_t len);

/* Sends what is buffered now instead of at the next flush interval. */
void sc_flusher_flush_now(sc_flusher_t *f);

/* Calls `cb` once everything submitted before this call has been handed to
 * libcurl (its first attempt started) or dropped: status 0; UV_ETIMEDOUT
 * after timeout_ms; UV_ECANCELED when the flusher closes first. Implies
 * sc_flusher_flush_now. `cb` always runs from the loop, never from inside
 * this call. Returns 0, or UV_ENOMEM / UV_ECANCELED (then `cb` is not
 * called). */
typedef void (*sc_flusher_barrier_cb)(int status, void *data);
/* Like sc_flusher_barrier, but `cb` waits until everything submitted before
 * the call is delivered or dropped (and counted), retries included: for a
 * process whose exit takes the sidecar with it (Flush.wait_for_delivery). */
int sc_flusher_barrier_settled(sc_flusher_t *f, uint32_t timeout_ms,
                               sc_flusher_barrier_cb cb, void *data);
int sc_flusher_barrier(sc_flusher_t *f, uint32_t timeout_ms,
                       sc_flusher_barrier_cb cb, void *data);

/* sc_flusher_flush_now, then whether a barrier set now would be reached at
 * once: everything submitted so far handed to libcurl or dropped. False
 * while closing. Lets a Flush that has nothing to wait for be answered
 * without a barrier (no allocation, no timer, no extra loop turn). */
bool sc_flusher_barrier_reached(sc_flusher_t *f);

/* Final flush, then close: new submissions are dropped (shutdown), what is
 * buffered is sent (retries included) until everything is answered or
 * `deadline_ms` passes; what is still unsent then is dropped (shutdown).
 * Every handle is closed; `cb` runs from the loop with the final state
 * readable through `f`, which is freed when `cb` returns. */
void sc_flusher_close(sc_flusher_t *f, uint32_t deadline_ms,
                      void (*cb)(sc_flusher_t *f, void *data), void *data);

void sc_flusher_get_stats(const sc_flusher_t *f, sc_flusher_stats_t *out);

/* "<METHOD> <URL>" of a request to `path` on the agent in use, as logs
 * and stats name it: "PUT http://localhost:8126/v0.4/traces", or for a
 * Unix socket "PUT http://localhost/v0.4/traces
 * (unix:///var/run/datadog/apm.socket)". Returns `out`. */
const char *sc_flusher_describe_request(const sc_flusher_t *f,
                                        const char *method, const char *path,
                                        char *out, size_t size);

/* The latest /info state (valid == false before the first answer). */
const sc_agent_info_t *sc_flusher_agent_info(const sc_flusher_t *f);

/* The configuration in force. */
const sc_flusher_config_t *sc_flusher_config(const sc_flusher_t *f);

/* The latest "rate_by_service" object (raw JSON), or NULL. */
const char *sc_flusher_rates(const sc_flusher_t *f, size_t *len);

#endif
