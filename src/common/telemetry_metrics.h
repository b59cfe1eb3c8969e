/* Telemetry metrics of one application (docs/telemetry.md, "Metrics"):
 * the points of GENERATE_METRICS and the values of DISTRIBUTIONS,
 * aggregated per series (namespace, name, tags, type, common) until the
 * application's next heartbeat, then written as the payloads of
 * generate-metrics and distributions. Nothing here does I/O. */
#ifndef SIDECAR_TELEMETRY_METRICS_H
#define SIDECAR_TELEMETRY_METRICS_H

#include "buf.h"
#include "sidecar.pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_TELEMETRY_MAX_SERIES 1000  /* per application and interval */
#define SC_TELEMETRY_MAX_VALUES 65536 /* distribution values, likewise */

typedef struct sc_tel_series sc_tel_series_t;

typedef struct sc_tel_metrics {
    sc_tel_series_t *series;
    size_t count, cap;
    size_t dist_series; /* of `count`, distribution series */
    size_t values;      /* distribution values held */
} sc_tel_metrics_t;

/* Why the metric list of a Telemetry action of `event` is invalid, or
 * NULL (the rules are in docs/telemetry.md). */
const char *sc_tel_metrics_check(const sc_list_t *metrics, int event);

/* Aggregates the (checked) list of one action. Returns how many points
 * were kept; `*overflow` counts those beyond the limits above, `*no_memory`
 * those that found no memory. */
size_t sc_tel_metrics_add(sc_tel_metrics_t *m, const sc_list_t *metrics,
                          bool distributions, uint64_t *overflow,
                          uint64_t *no_memory);

/* Writes {"namespace":"tracers","series":[...]} of the generate-metrics
 * (`distributions` false) or distributions series into `out`, those
 * series then gone. `now_s` is the points' timestamp, `interval_ms` the
 * aggregation interval (rates are per second of it). Returns how many
 * series it wrote (0: nothing, `out` untouched). */
size_t sc_tel_metrics_payload(sc_tel_metrics_t *m, bool distributions,
                              int64_t now_s, uint64_t interval_ms,
                              sc_buf_t *out);

void sc_tel_metrics_free(sc_tel_metrics_t *m);

#endif
