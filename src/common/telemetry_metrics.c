/* Telemetry metrics of one application: series aggregated between two
 * heartbeats, then the generate-metrics and distributions payloads. */
#include "telemetry_metrics.h"

#include "codec.h"
#include "json.h"
#include "telemetry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sc_tel_series {
    char *ns, *name, *tags; /* tags: NULL when absent */
    uint32_t hash;
    int type; /* sidecar_v1_TelemetryMetric_Type; UNSPECIFIED: distribution */
    bool common;
    double value;   /* count and rate: the sum; gauge: the last */
    double *values; /* a distribution's values */
    size_t nvalues, vcap;
};

const char *sc_tel_metrics_check(const sc_list_t *metrics, int event)
{
    bool dist = event == sidecar_v1_Telemetry_EVENT_DISTRIBUTIONS;
    sc_list_iter_t it;
    sidecar_v1_TelemetryMetric p;
    sc_list_iter_init(&it, metrics);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryMetric, &p) > 0) {
        if (!sc_telemetry_string_ok(p.name, SC_TELEMETRY_STRING_MAX, true) ||
            !sc_telemetry_string_ok(p.namespace, SC_TELEMETRY_STRING_MAX,
                                    false) ||
            !sc_telemetry_string_ok(p.tags, SC_TELEMETRY_TAGS_MAX, false)) {
            return "Telemetry.metrics: a name is empty, or a name or "
                   "namespace is over 256 bytes, tags over 1024, not UTF-8 or "
                   "with a control character";
        }
        if (!isfinite(p.value)) {
            return "Telemetry.metrics: a value is not a finite number";
        }
        if (dist ? p.type != sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED
                 : (p.type < sidecar_v1_TelemetryMetric_TYPE_COUNT ||
                    p.type > sidecar_v1_TelemetryMetric_TYPE_RATE)) {
            return "Telemetry.metrics: a type is not COUNT, GAUGE or RATE "
                   "(GENERATE_METRICS), or not UNSPECIFIED (DISTRIBUTIONS)";
        }
    }
    return NULL;
}

static uint32_t hash_view(uint32_t x, sc_view_t v)
{
    for (size_t i = 0; i < v.len; i++) {
        x = (x ^ ((const uint8_t *)v.ptr)[i]) * 16777619u;
    }
    return (x ^ 0xffu) * 16777619u; /* separates the parts */
}

static bool equals(const char *s, sc_view_t v)
{
    return s == NULL ? v.ptr == NULL
                     : v.ptr != NULL && strlen(s) == v.len &&
                           memcmp(s, v.ptr, v.len) == 0;
}

static char *dup_view(sc_view_t v, bool *failed)
{
    if (v.ptr == NULL) {
        return NULL;
    }
    char *s = malloc(v.len + 1);
    if (s == NULL) {
        *failed = true;
        return NULL;
    }
    memcpy(s, v.ptr, v.len);
    s[v.len] = '\0';
    return s;
}

static void series_free(sc_tel_series_t *s)
{
    free(s->ns);
    free(s->name);
    free(s->tags);
    free(s->values);
}

/* Room for one more of `size`-byte elements in *arr (doubling, from 8). */
static bool room_for_one(void **arr, size_t count, size_t *cap, size_t size)
{
    if (count < *cap) {
        return true;
    }
    size_t n = *cap > 0 ? *cap * 2 : 8;
    void *grown = realloc(*arr, n * size);
    if (grown == NULL) {
        return false;
    }
    *arr = grown;
    *cap = n;
    return true;
}

/* The series of point `p`, made when new; NULL at the series limit
 * (`*full`) or out of memory. */
static sc_tel_series_t *series_of(sc_tel_metrics_t *m,
                                  const sidecar_v1_TelemetryMetric *p,
                                  sc_view_t ns, bool *full)
{
    uint32_t h = hash_view(2166136261u, ns);
    h = hash_view(h, p->name);
    h = hash_view(h, p->tags.ptr != NULL ? p->tags : sc_view_str("\x01"));
    h = (h ^ (uint32_t)p->type ^ (p->common ? 0x100u : 0u)) * 16777619u;
    for (size_t i = 0; i < m->count; i++) {
        sc_tel_series_t *s = &m->series[i];
        if (s->hash == h && s->type == (int)p->type && s->common == p->common &&
            equals(s->ns, ns) && equals(s->name, p->name) &&
            equals(s->tags, p->tags)) {
            return s;
        }
    }
    *full = m->count == SC_TELEMETRY_MAX_SERIES;
    if (*full) {
        return NULL;
    }
    if (!room_for_one((void **)&m->series, m->count, &m->cap,
                      sizeof *m->series)) {
        return NULL;
    }
    sc_tel_series_t *s = &m->series[m->count];
    memset(s, 0, sizeof *s);
    bool failed = false;
    s->ns = dup_view(ns, &failed);
    s->name = dup_view(p->name, &failed);
    s->tags = dup_view(p->tags, &failed);
    if (failed) {
        series_free(s);
        return NULL;
    }
    s->hash = h;
    s->type = (int)p->type;
    s->common = p->common;
    m->count++;
    if (s->type == sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED) {
        m->dist_series++;
    }
    return s;
}

/* Adds one point to its series: false when it cannot (`*full`: a limit). */
static bool add_point(sc_tel_metrics_t *m, const sidecar_v1_TelemetryMetric *p,
                      bool *full)
{
    sc_view_t ns = p->namespace.len > 0 ? p->namespace : sc_view_str("tracers");
    if (p->type == sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED &&
        m->values == SC_TELEMETRY_MAX_VALUES) {
        *full = true;
        return false;
    }
    sc_tel_series_t *s = series_of(m, p, ns, full);
    if (s == NULL) {
        return false;
    }
    switch (p->type) {
    case sidecar_v1_TelemetryMetric_TYPE_GAUGE:
        s->value = p->value;
        return true;
    case sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED:
        if (!room_for_one((void **)&s->values, s->nvalues, &s->vcap,
                          sizeof *s->values)) {
            return false;
        }
        s->values[s->nvalues++] = p->value;
        m->values++;
        return true;
    default: /* count, rate: summed */
        s->value += p->value;
        return true;
    }
}

size_t sc_tel_metrics_add(sc_tel_metrics_t *m, const sc_list_t *metrics,
                          bool distributions, uint64_t *overflow,
                          uint64_t *no_memory)
{
    (void)distributions; /* the type says it (checked) */
    size_t kept = 0;
    sc_list_iter_t it;
    sidecar_v1_TelemetryMetric p;
    sc_list_iter_init(&it, metrics);
    while (SC_LIST_NEXT(&it, sidecar_v1_TelemetryMetric, &p) > 0) {
        bool full = false;
        if (add_point(m, &p, &full)) {
            kept++;
        } else if (full) {
            (*overflow)++;
        } else {
            (*no_memory)++;
        }
    }
    return kept;
}

/* "k:v,k2:v2" as a JSON array of its non-empty parts. */
static void tags_array(sc_json_t *j, const char *tags)
{
    sc_json_array_begin(j);
    for (const char *t = tags; t != NULL && *t != '\0';) {
        const char *end = strchr(t, ',');
        size_t len = end != NULL ? (size_t)(end - t) : strlen(t);
        if (len > 0) {
            sc_json_string(j, t, len);
        }
        t = end != NULL ? end + 1 : NULL;
    }
    sc_json_array_end(j);
}

static void series_json(sc_json_t *j, const sc_tel_series_t *s, int64_t now_s,
                        uint64_t interval_ms)
{
    static const char *const types[] = {"", "count", "gauge", "rate"};
    bool dist = s->type == sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED;
    sc_json_object_begin(j);
    sc_json_key_str(j, "namespace");
    sc_json_string(j, s->ns, strlen(s->ns));
    sc_json_key_str(j, "metric");
    sc_json_string(j, s->name, strlen(s->name));
    sc_json_key_str(j, "points");
    sc_json_array_begin(j);
    if (dist) {
        for (size_t i = 0; i < s->nvalues; i++) {
            sc_json_double(j, s->values[i]);
        }
    } else {
        double v = s->value;
        if (s->type == sidecar_v1_TelemetryMetric_TYPE_RATE) {
            v /= (double)(interval_ms > 0 ? interval_ms : 1) / 1000.0;
        }
        sc_json_array_begin(j);
        sc_json_int64(j, now_s);
        sc_json_double(j, v);
        sc_json_array_end(j);
    }
    sc_json_array_end(j);
    sc_json_key_str(j, "tags");
    tags_array(j, s->tags);
    sc_json_key_str(j, "common");
    sc_json_bool(j, s->common);
    if (!dist) {
        sc_json_key_str(j, "type");
        sc_json_string(j, types[s->type], strlen(types[s->type]));
        if (s->type != sidecar_v1_TelemetryMetric_TYPE_COUNT) {
            /* Whole seconds, at least 1 (the API's unit). */
            sc_json_key_str(j, "interval");
            sc_json_uint64(j, interval_ms >= 1500 ? (interval_ms + 500) / 1000
                                                  : 1);
        }
    }
    sc_json_object_end(j);
}

size_t sc_tel_metrics_payload(sc_tel_metrics_t *m, bool distributions,
                              int64_t now_s, uint64_t interval_ms,
                              sc_buf_t *out)
{
    size_t want = distributions ? m->dist_series : m->count - m->dist_series;
    if (want == 0) {
        return 0;
    }
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "namespace");
    sc_json_string(&j, "tracers", 7);
    sc_json_key_str(&j, "series");
    sc_json_array_begin(&j);
    size_t kept = 0;
    for (size_t i = 0; i < m->count; i++) {
        sc_tel_series_t *s = &m->series[i];
        bool dist = s->type == sidecar_v1_TelemetryMetric_TYPE_UNSPECIFIED;
        if (dist != distributions) {
            m->series[kept++] = *s;
            continue;
        }
        series_json(&j, s, now_s, interval_ms);
        if (dist) {
            m->values -= s->nvalues;
        }
        series_free(s);
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    m->count = kept;
    if (distributions) {
        m->dist_series = 0;
    }
    return want;
}

void sc_tel_metrics_free(sc_tel_metrics_t *m)
{
    for (size_t i = 0; i < m->count; i++) {
        series_free(&m->series[i]);
    }
    free(m->series);
    memset(m, 0, sizeof *m);
}
