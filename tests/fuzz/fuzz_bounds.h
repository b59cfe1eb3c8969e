/* The decoder's promise, checked on every envelope a fuzz target decodes:
 * each view and each list item (nested lists included) lies inside the
 * bytes that were decoded, and a list yields exactly `count` items. A
 * breach aborts, which libFuzzer and the CTest driver report as a crash. */
#ifndef SIDECAR_FUZZ_BOUNDS_H
#define SIDECAR_FUZZ_BOUNDS_H

#include "codec.h"

#include <pb_common.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

union fuzz_any_item {
    sidecar_v1_FlagEvaluation evaluation;
    sidecar_v1_ContextAttribute attribute;
    sidecar_v1_Exposure exposure;
    sidecar_v1_TelemetryConfiguration configuration;
    sidecar_v1_TelemetryDependency dependency;
    sidecar_v1_TelemetryIntegration integration;
    sidecar_v1_TelemetryLog log;
    sidecar_v1_TelemetryMetric metric;
};

static inline void fuzz_breach(const char *what)
{
    fprintf(stderr, "fuzz_bounds: %s\n", what);
    abort();
}

static inline void fuzz_check_span(const uint8_t *p, size_t len,
                                   const uint8_t *base, size_t base_len)
{
    uintptr_t lo = (uintptr_t)base, at = (uintptr_t)p;
    if (at < lo || at - lo > base_len || len > base_len - (at - lo)) {
        fuzz_breach("a decoded view lies outside the decoded bytes");
    }
}

/* Walks `msg` (decoded from [base, base + len)). */
static inline void fuzz_check_bounds(const pb_msgdesc_t *desc, const void *msg,
                                     const uint8_t *base, size_t len)
{
    pb_field_iter_t f;
    if (!pb_field_iter_begin_const(&f, desc, msg)) {
        return;
    }
    do {
        if (PB_HTYPE(f.type) == PB_HTYPE_ONEOF &&
            *(const pb_size_t *)f.pSize != f.tag) {
            continue;
        }
        if (PB_ATYPE(f.type) == PB_ATYPE_CALLBACK &&
            PB_LTYPE_IS_SUBMSG(f.type)) {
            const sc_list_t *l = f.pData;
            size_t size = sc_codec_list_item_size(f.submsg_desc);
            if (size == 0) {
                fuzz_breach("a list of an unknown type");
            }
            sc_list_iter_t it;
            sc_list_iter_init(&it, l);
            union fuzz_any_item item;
            size_t n = 0;
            int rc;
            while ((rc = sc_list_next(&it, f.submsg_desc, &item, size)) == 1) {
                fuzz_check_bounds(f.submsg_desc, &item, base, len);
                n++;
            }
            if (rc != 0 || n != l->count) {
                fuzz_breach("a decoded list does not yield the items checked");
            }
        } else if (PB_ATYPE(f.type) == PB_ATYPE_CALLBACK) {
            const sc_view_t *v = f.pData;
            if (v->ptr != NULL) {
                fuzz_check_span(v->ptr, v->len, base, len);
            }
        } else if (PB_LTYPE_IS_SUBMSG(f.type)) {
            fuzz_check_bounds(f.submsg_desc, f.pData, base, len);
        }
    } while (pb_field_iter_next(&f));
}

#endif
