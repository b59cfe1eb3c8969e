/* DogStatsD metrics (docs/metrics.md): the rules a metric point must follow
 * (metrics_rules.c, shared by the client, which refuses a bad point before
 * it is sent, and the sidecar, which refuses it again), and the sidecar's
 * aggregator (metrics.c): one context per (type, name, tags[, sample rate])
 * over a flush interval, bounded in contexts and in kept values, drained
 * into DogStatsD lines. Nothing here does I/O; dogstatsd.c sends. */
#ifndef SIDECAR_METRICS_H
#define SIDECAR_METRICS_H

#include "wire_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of proto/sidecar.proto's Metric. */
#define SC_METRIC_NAME_MAX   200
#define SC_METRIC_TAG_MAX    200
#define SC_METRIC_TAGS_MAX   2048
#define SC_METRIC_TAG_COUNT  64
#define SC_METRIC_MEMBER_MAX 200

/* The wire's Metric.Type numbers (sc_metric_type_t in sidecar.h has the
 * same ones). */
enum {
    SC_MTYPE_COUNT = 1,
    SC_MTYPE_GAUGE = 2,
    SC_MTYPE_RATE = 3,
    SC_MTYPE_HISTOGRAM = 4,
    SC_MTYPE_DISTRIBUTION = 5,
    SC_MTYPE_SET = 6,
};

/* One point as the rules and the aggregator read it. `tags` may be absent;
 * `rate` is the sample rate (has_rate false: 1). */
typedef struct sc_metric_point {
    int type;
    sc_view_t name;
    double value;
    sc_view_t tags;
    bool has_rate;
    double rate;
    sc_view_t member; /* SET only; absent: the value is the member */
} sc_metric_point_t;

/* Why `p` breaks a rule of proto/sidecar.proto's Metric (a static
 * message), or NULL when it follows them all. */
const char *sc_metric_check(const sc_metric_point_t *p);

/* The canonical form of a valid tag list: tags sorted bytewise, repeats
 * removed, joined by ','. `out` holds at least tags.len bytes; returns the
 * length written (0 for no tags). */
size_t sc_metric_tags_canonical(sc_view_t tags, char *out);

/* ---- the aggregator (sidecar side) -------------------------------------- */

typedef struct sc_metrics sc_metrics_t;

typedef struct sc_metrics_limits {
    /* Contexts one interval may hold; a point of a new context beyond it is
     * dropped and counted (contexts_overflow). */
    size_t max_contexts;
    /* Histogram / distribution values plus distinct set members one
     * interval may hold; beyond, counted (values_overflow). */
    size_t max_values;
} sc_metrics_limits_t;

typedef struct sc_metrics_stats {
    uint64_t points;            /* points aggregated */
    uint64_t contexts_overflow; /* points of a context over max_contexts */
    uint64_t values_overflow;   /* values / members over max_values */
    uint64_t no_memory;         /* points lost to a failed allocation */
    uint64_t contexts;          /* contexts held now */
    uint64_t values;            /* values and members held now */
} sc_metrics_stats_t;

sc_metrics_t *sc_metrics_new(const sc_metrics_limits_t *limits);
void sc_metrics_free(sc_metrics_t *m);

/* Adds one point that sc_metric_check() accepted. Returns 0, or the
 * counter it was dropped under (the matching field of the stats is
 * incremented): 1 contexts_overflow, 2 values_overflow, 3 no_memory. */
int sc_metrics_add(sc_metrics_t *m, const sc_metric_point_t *p);

/* One DogStatsD line (without its newline), valid during the call. */
typedef void (*sc_metrics_line_cb)(void *ctx, const char *line, size_t len);

/* Emits every context as DogStatsD lines and empties the aggregator.
 * `interval_s` turns RATE sums into per-second values. Histogram and
 * distribution values are packed several per line
 * ("name:1:2:3|d|#tags"), each line at most `max_line` bytes unless a
 * single value does not fit (that line is longer; the sender counts it). */
void sc_metrics_drain(sc_metrics_t *m, double interval_s, size_t max_line,
                      sc_metrics_line_cb line, void *ctx);

void sc_metrics_stats(const sc_metrics_t *m, sc_metrics_stats_t *out);

#endif
