/* Flag-evaluation counts aggregator (design in
 * docs/flag-evaluations.md).
 *
 * Every evaluation (success, error and default paths alike) is recorded with
 * sc_flageval_record(): a bounded, mutex-guarded insert that adds one to its
 * bucket. At request end the process drains the aggregator into a batch
 * (sc_flageval_drain), which flageval_wire.h packs into FlagEvaluationBatch
 * frames; the sidecar merges those into its own aggregator with the same
 * rules (flageval_wire.h) and turns its drained batches into EVP bodies
 * (flageval_json.h).
 *
 * Bucket identity is exact: flag key, variant key, allocation key, reason,
 * targeting key (each absent / empty / bytes, all distinct) and the canonical
 * context string (flageval_context.h), compared byte for byte. The targeting
 * rule key and the error message are carried, not part of the identity: a
 * bucket keeps those of its earliest evaluation.
 *
 * Tiers: full (global_cap buckets, per_flag_cap per flag, full_bytes_cap
 * bytes) -> degraded (flag, variant, allocation, reason; degraded_cap
 * buckets) -> dropped (counted). Invariant, over any sequence of records,
 * merges and drains: sum of drained counts + drained `dropped` + what is
 * still buffered == evaluations offered while enabled. */
#ifndef SIDECAR_FLAGEVAL_H
#define SIDECAR_FLAGEVAL_H

#include "flageval_context.h"
#include "wire_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_FLAGEVAL_DEFAULT_GLOBAL_CAP     131072u
#define SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP   10000u
#define SC_FLAGEVAL_DEFAULT_DEGRADED_CAP   32768u
#define SC_FLAGEVAL_DEFAULT_FULL_BYTES_CAP ((size_t)64 << 20)
/* Error messages longer than this are cut at a UTF-8 character boundary
 * (they are free text, not an identity); over-long targeting rule keys are
 * omitted (a cut key would name another rule). */
#define SC_FLAGEVAL_MAX_ERROR_LEN 1024u

#define SC_FLAGEVAL_ENABLED_ENV "DD_FLAGGING_EVALUATION_COUNTS_ENABLED"

typedef struct sc_flageval sc_flageval_t;

typedef struct sc_flageval_config {
    size_t global_cap;     /* full-tier buckets in all */
    size_t per_flag_cap;   /* full-tier buckets of one flag */
    size_t degraded_cap;   /* degraded-tier buckets */
    size_t full_bytes_cap; /* bytes held by full-tier buckets */
    bool enabled;          /* false: the kill switch is off */
} sc_flageval_config_t;

/* The documented defaults (docs/flag-evaluations.md), enabled. */
void sc_flageval_config_default(sc_flageval_config_t *cfg);

/* The kill switch from the value of DD_FLAGGING_EVALUATION_COUNTS_ENABLED
 * (or an INI setting): NULL, empty or anything else means enabled; "false",
 * "0", "no", "off" (any case, surrounding blanks ignored) mean disabled. */
bool sc_flageval_counts_enabled(const char *value);

/* NULL cfg: defaults. Returns NULL when out of memory. */
sc_flageval_t *sc_flageval_new(const sc_flageval_config_t *cfg);
void sc_flageval_free(sc_flageval_t *agg);
bool sc_flageval_enabled(const sc_flageval_t *agg);

/* Turns the kill switch (configuration that overrides the environment,
 * such as an INI setting). Off: nothing is recorded from now on. */
void sc_flageval_set_enabled(sc_flageval_t *agg, bool enabled);

/* Fork handlers, called by process.c's (it owns the process's aggregator,
 * sc_flageval_process() in process.h, and the lock order; this mutex is the
 * last one taken). Prepare holds the mutex across fork() so
 * that no record is half done in the child's copy; in the child the copy
 * inherited from the parent is the parent's to send, so the child discards
 * it and re-creates the mutex. NULL is a no-op. */
void sc_flageval_atfork_prepare(sc_flageval_t *agg);
void sc_flageval_atfork_parent(sc_flageval_t *agg);
void sc_flageval_after_fork_child(sc_flageval_t *agg);

/* One evaluation. Strings are views (ptr == NULL: absent, which is not the
 * same as present and empty); they are copied when a bucket is created. */
typedef struct sc_flageval_eval {
    sc_view_t flag_key; /* required, non-empty */
    sc_view_t variant_key;
    sc_view_t allocation_key;
    sc_view_t reason;
    sc_view_t targeting_key;
    sc_view_t targeting_rule_key;
    sc_view_t error_message;
    const sc_flageval_attr_t *context;
    size_t context_len;
    int64_t timestamp_ms; /* epoch ms; 0 means now */
} sc_flageval_eval_t;

typedef enum sc_flageval_outcome {
    SC_FLAGEVAL_FULL = 0,     /* counted in a full-tier bucket */
    SC_FLAGEVAL_DEGRADED = 1, /* counted in a degraded bucket */
    SC_FLAGEVAL_DROPPED = 2,  /* degraded tier full: counted as dropped */
    SC_FLAGEVAL_REJECTED = 3, /* invalid or over-long: counted as dropped */
    SC_FLAGEVAL_DISABLED = 4, /* kill switch off: nothing touched */
} sc_flageval_outcome_t;

/* Records one evaluation (count 1 at ev->timestamp_ms). Rejected: no flag
 * key, an empty one, or a flag / variant / allocation / reason longer than
 * SC_FLAGEVAL_MAX_KEY_LEN. A targeting key longer than that sends the
 * evaluation to the degraded tier (which does not carry it). */
sc_flageval_outcome_t sc_flageval_record(sc_flageval_t *agg,
                                         const sc_flageval_eval_t *ev);

/* Adds an already aggregated bucket (the sidecar merging a client's batch):
 * `count` evaluations between first_ms and last_ms. A degraded bucket stays
 * degraded (its targeting key, rule, error and context are ignored). Same
 * rules, caps and outcomes as sc_flageval_record (ev->timestamp_ms unused). */
sc_flageval_outcome_t sc_flageval_merge(sc_flageval_t *agg,
                                        const sc_flageval_eval_t *ev,
                                        uint64_t count, int64_t first_ms,
                                        int64_t last_ms, bool degraded);

/* Adds evaluations someone else dropped (a client batch's `dropped`). */
void sc_flageval_add_dropped(sc_flageval_t *agg, uint64_t n);

/* A drained aggregator. Buckets are sorted: full tier first, then by their
 * identity bytes (so output is deterministic). */
typedef struct sc_flageval_bucket sc_flageval_bucket_t;

typedef struct sc_flageval_batch {
    sc_flageval_bucket_t **buckets;
    size_t count;
    uint64_t evaluations;      /* sum of the buckets' counts */
    uint64_t dropped;          /* the three below */
    uint64_t dropped_overflow; /* degraded tier full */
    uint64_t rejected;         /* invalid, over-long, out of memory */
    uint64_t dropped_upstream; /* sc_flageval_add_dropped (a client's) */
} sc_flageval_batch_t;

/* Read-only view of one drained bucket; views point into the batch. */
typedef struct sc_flageval_bucket_view {
    sc_view_t flag_key;
    sc_view_t variant_key;
    sc_view_t allocation_key;
    sc_view_t reason;
    sc_view_t targeting_key;      /* absent in the degraded tier */
    sc_view_t targeting_rule_key; /* absent in the degraded tier */
    sc_view_t error_message;      /* absent in the degraded tier */
    sc_view_t context;            /* canonical string; empty when degraded */
    uint64_t evaluation_count;
    int64_t first_evaluation_ms;
    int64_t last_evaluation_ms;
    bool degraded;
    bool runtime_default_used; /* variant absent or empty */
} sc_flageval_bucket_view_t;

/* Takes everything out of the aggregator (buckets of both tiers and the
 * dropped counters, which restart at zero) under the lock; sorting and
 * anything slow happens after it is released. Logs a (rate-limited) warning
 * when `dropped` is non-zero. A disabled aggregator yields an empty batch. */
void sc_flageval_drain(sc_flageval_t *agg, sc_flageval_batch_t *out);
void sc_flageval_batch_bucket(const sc_flageval_batch_t *batch, size_t i,
                              sc_flageval_bucket_view_t *view);
void sc_flageval_batch_free(sc_flageval_batch_t *batch);

typedef struct sc_flageval_stats {
    /* Now. */
    size_t full_buckets;
    size_t degraded_buckets;
    size_t full_bytes;
    uint64_t pending_dropped;
    /* Since creation (not reset by drains). */
    uint64_t evaluations;       /* offered while enabled (counts) */
    uint64_t dropped_overflow;  /* degraded tier full */
    uint64_t dropped_upstream;  /* sc_flageval_add_dropped */
    uint64_t rejected;          /* invalid / over-long / out of memory */
    uint64_t degraded_long_key; /* over-long targeting key -> degraded */
    uint64_t strings_shortened; /* rule key omitted / error message cut */
    uint64_t attributes_skipped;
} sc_flageval_stats_t;

void sc_flageval_get_stats(sc_flageval_t *agg, sc_flageval_stats_t *out);

/* Wall clock, epoch milliseconds, from the coarse clock (a few ms of
 * resolution, a fraction of the cost of a precise read: it is taken on
 * every record). */
int64_t sc_flageval_now_ms(void);

/* SipHash-1-3 with a 128-bit key: the table hash (seeded per aggregator so
 * that crafted targeting keys cannot force collision chains). Exposed for
 * the benchmark's baseline. */
uint64_t sc_flageval_siphash13(uint64_t k0, uint64_t k1, const void *data,
                               size_t len);

#endif
