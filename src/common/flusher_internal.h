/* Shared by the delivery files (docs/delivery.md, "Code"):
 *   flusher.c         the engine: queues, byte caps, sending, retries, drops;
 *                     it knows no destination, only the table below;
 *   flusher_dest.c    the table of destinations (path, method, headers,
 *                     response handling) and the default settings;
 *   flusher_traces.c  trace submissions: merging per metadata, the trace
 *                     headers, rate_by_service from the answers;
 *   flusher_evp.c     EVP submissions (flag evaluations, exposures);
 *   flusher_life.c    creation, reconfiguration, barriers, close;
 *   flusher_info.c    GET /info polling (agent_info.c reads the answers). */
#ifndef SIDECAR_FLUSHER_INTERNAL_H
#define SIDECAR_FLUSHER_INTERNAL_H

#include "flusher.h"
#include "http.h"
#include "msgpack.h"

/* During the final flush every queued batch may be in flight at once, up to
 * this many per destination, to beat the deadline. */
#define SC_FLUSHER_CLOSING_MAX_INFLIGHT 8

/* One request body: for a merging destination, the merged submissions
 * (first "open" while they are appended, then cut); otherwise one body. */
typedef struct sc_batch sc_batch_t;
struct sc_batch {
    sc_batch_t *prev, *next;
    sc_flusher_t *f;
    sc_dest_t dest;
    void *enc;           /* the encoder's state (merging destinations) */
    sc_buf_t owned;      /* a body copied whole (other destinations) */
    const uint8_t *body; /* set when cut */
    size_t body_len;
    size_t bytes;              /* counted against the destination's cap */
    uint64_t payloads, traces; /* traces: items (sc_dest_item_name) */
    uint64_t first_seq;        /* oldest submission inside */
    uint32_t attempts;
    bool started; /* handed to libcurl at least once */
    bool inflight;
    uint64_t not_before; /* loop time (ms) of the next attempt */
    struct curl_slist *headers;
    sc_http_req_t req;
};

/* One destination: what is different between traces, flag evaluations and
 * exposures (and what a new destination adds: one entry and its encoder). */
typedef struct sc_dest_def {
    const char *name;         /* stats key */
    const char *item_name;    /* what a submission holds (stats key) */
    const char *default_path; /* sc_flusher_config_t.path */
    const char *method;
    const char *content_type;
    size_t default_cap; /* sc_flusher_config_t.cap_bytes */
    size_t max_response;
    /* Requests in order, one at a time, a retry holding back the ones
     * behind it: the receiver reads them as a sequence (telemetry's
     * app-started before app-closing). */
    bool in_order;
    /* Headers beyond Expect: and Content-Type; NULL: none. */
    bool (*add_headers)(const sc_batch_t *b, struct curl_slist **h);
    /* Merging destinations: the final body of an open batch. */
    void (*finish)(sc_batch_t *b);
    /* Frees `enc`. */
    void (*release)(sc_batch_t *b);
    /* A 2xx answer's body; NULL: ignored. */
    void (*on_ok)(sc_flusher_t *f, const sc_buf_t *response);
    /* Gives back memory the destination keeps between batches: all of it
     * (at close), or (all false, from the flush timer) what it no longer
     * needs now that its traffic stopped; NULL: it keeps none. */
    void (*trim)(sc_flusher_t *f, bool all);
    /* Its items are what the ledger counts as traces (ledger.h); the items
     * of the others are of other kinds and only their payloads count. */
    bool ledger_items;
} sc_dest_def_t;

extern const sc_dest_def_t sc_dest_defs[SC_DEST_COUNT];

typedef struct sc_batch_list {
    sc_batch_t *head, *tail;
} sc_batch_list_t;

typedef struct sc_dest_state {
    sc_batch_list_t open;  /* merging destinations: open batches */
    sc_batch_list_t queue; /* cut batches, oldest first */
    unsigned inflight;
    sc_dest_stats_t stats;
    struct sc_ledger_held *held; /* the ledger's, or NULL (ledger.h) */
    bool held_items; /* its items count in the ledger (ledger_items) */
} sc_dest_state_t;

/* Spare trace batch buffers a flusher keeps (flusher_traces.c). */
#define SC_TRACE_SPARES 2

typedef struct sc_barrier sc_barrier_t;
struct sc_barrier {
    sc_barrier_t *next;
    sc_flusher_t *f;
    uint64_t seq;       /* everything up to this submission */
    bool until_settled; /* delivered or dropped, not only started */
    bool satisfied;
    uv_timer_t timer;
    sc_flusher_barrier_cb cb;
    void *data;
};

struct sc_flusher {
    uv_loop_t *loop;
    sc_flusher_config_t cfg;
    sc_http_t *http;
    sc_dest_state_t dest[SC_DEST_COUNT];
    uint64_t seq; /* last submission number given */
    uv_timer_t flush_timer, retry_timer, info_timer, close_timer;
    sc_barrier_t *barriers;
    sc_flusher_hooks_t hooks;

    sc_http_req_t info_req;
    bool info_inflight;
    uint32_t info_failures;
    sc_agent_info_t info;
    sc_endpoint_stats_t info_stats;
    char *rates;
    size_t rates_len;

    /* flusher_traces.c: buffers of finished trace batches, for the next
     * ones (sc_traces_trim gives them back). */
    sc_buf_t trace_spares[SC_TRACE_SPARES];

    bool closing;  /* final flush under way: submissions refused */
    bool stopping; /* tearing down: nothing new starts */
    unsigned open_handles;
    void (*close_cb)(sc_flusher_t *f, void *data);
    void *close_data;
};

/* flusher.c: the engine */
void sc_batch_list_push(sc_batch_list_t *l, sc_batch_t *b);
sc_batch_t *sc_batch_new(sc_flusher_t *f, sc_dest_t dest);
/* Counts bytes/payloads/traces as buffered (negative: no longer). */
void sc_flusher_account(sc_dest_state_t *d, int64_t bytes, int64_t payloads,
                        int64_t traces);
/* Frees an open batch that never held a submission. */
void sc_batch_discard(sc_flusher_t *f, sc_batch_t *b);
/* Evicts the oldest batches not in flight until `cost` more bytes fit
 * under the destination's cap; false when they cannot. */
bool sc_flusher_make_room(sc_flusher_t *f, sc_dest_t dest, size_t cost);
/* Moves an open batch to the send queue with its final body. */
void sc_flusher_cut(sc_flusher_t *f, sc_batch_t *b);
void sc_flusher_cut_all(sc_flusher_t *f);
/* Starts every batch that may start; arms the retry timer; checks
 * barriers. */
void sc_flusher_pump(sc_flusher_t *f);
/* Counts a refused submission; returns the UV_E* result it maps to. */
int sc_flusher_refuse(sc_flusher_t *f, sc_dest_t dest, sc_drop_reason_t why,
                      size_t len, uint32_t traces);
/* Counts a submission as offered (before it is checked). */
void sc_flusher_count_submitted(sc_flusher_t *f, sc_dest_t dest, size_t len,
                                uint32_t traces);
/* Drops whatever is left (close deadline). */
void sc_flusher_drop_all(sc_flusher_t *f);
bool sc_flusher_all_sent(const sc_flusher_t *f);
/* During the final flush, once everything is answered: tear down. */
void sc_flusher_maybe_drained(sc_flusher_t *f);

/* flusher_life.c */
void sc_flusher_check_barriers(sc_flusher_t *f);
void sc_flusher_on_drained(sc_flusher_t *f);

/* flusher_traces.c: the trace destination's entries */
bool sc_traces_headers(const sc_batch_t *b, struct curl_slist **h);
void sc_traces_finish(sc_batch_t *b);
void sc_traces_release(sc_batch_t *b);
void sc_traces_on_ok(sc_flusher_t *f, const sc_buf_t *response);
/* Frees the spare batch buffers: all of them, or (all false) only when no
 * trace batch is open or queued (from the flush timer: traffic stopped). */
void sc_traces_trim(sc_flusher_t *f, bool all);
/* flusher_evp.c */
bool sc_evp_headers(const sc_batch_t *b, struct curl_slist **h);
/* Queues one body (copied) of a destination whose requests are one body
 * each; `enc` (may be NULL) goes with the batch, for the destination's
 * add_headers, and is freed by its release. Refused (result as
 * sc_flusher_submit_evp, counted): `enc` stays the caller's. */
int sc_flusher_submit_body(sc_flusher_t *f, sc_dest_t dest, const void *json,
                           size_t len, void *enc);
/* flusher_telemetry.c */
bool sc_telemetry_headers(const sc_batch_t *b, struct curl_slist **h);
void sc_telemetry_release(sc_batch_t *b);

/* flusher_info.c */
void sc_flusher_info_start(sc_flusher_t *f, uint64_t delay_ms);
void sc_flusher_info_stop(sc_flusher_t *f);

#endif
