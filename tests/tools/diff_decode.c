/* The codec's side of the differential check (tests/tools/diff_protobuf.py):
 * reads envelopes from stdin, each as a little-endian 4-byte length and the
 * bytes, and prints one line per envelope:
 *   R <nanopb's error>          rejected by sc_codec_decode()
 *   A <canonical dump>          accepted: every field, lists walked with
 *                               sc_list_next(), in the form the script
 *                               prints for Google's decoder
 * Dump: a message is {tag:value,...} in field order; u/i integers, b bool,
 * d double (its 8 bytes in hex), s string or bytes (hex), n an absent
 * string or bytes field, [..] a list. Scalars without presence are always
 * printed, optional ones only when present, a oneof's active member only. */
#include "codec.h"

#include <pb_common.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

union any_item {
    sidecar_v1_FlagEvaluation evaluation;
    sidecar_v1_ContextAttribute attribute;
    sidecar_v1_Exposure exposure;
    sidecar_v1_TelemetryConfiguration configuration;
    sidecar_v1_TelemetryDependency dependency;
    sidecar_v1_TelemetryIntegration integration;
    sidecar_v1_TelemetryLog log;
    sidecar_v1_TelemetryMetric metric;
};

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

static bool dump(const pb_msgdesc_t *desc, const void *msg);

static bool dump_scalar(const pb_field_iter_t *f)
{
    switch (PB_LTYPE(f->type)) {
    case PB_LTYPE_BOOL:
        printf("b%d", *(const bool *)f->pData ? 1 : 0);
        return true;
    case PB_LTYPE_VARINT:
    case PB_LTYPE_SVARINT:
        if (f->data_size == sizeof(int64_t)) {
            printf("i%lld", (long long)*(const int64_t *)f->pData);
        } else {
            printf("i%ld", (long)*(const int32_t *)f->pData);
        }
        return true;
    case PB_LTYPE_UVARINT:
        if (f->data_size == sizeof(uint64_t)) {
            printf("u%llu", (unsigned long long)*(const uint64_t *)f->pData);
        } else {
            printf("u%lu", (unsigned long)*(const uint32_t *)f->pData);
        }
        return true;
    case PB_LTYPE_FIXED64: /* double */
        printf("d");
        hex(f->pData, 8);
        return true;
    case PB_LTYPE_FIXED32:
        printf("f");
        hex(f->pData, 4);
        return true;
    default:
        return false;
    }
}

static bool dump_field(const pb_field_iter_t *f)
{
    if (PB_ATYPE(f->type) == PB_ATYPE_CALLBACK && PB_LTYPE_IS_SUBMSG(f->type)) {
        size_t size = sc_codec_list_item_size(f->submsg_desc);
        sc_list_iter_t it;
        sc_list_iter_init(&it, f->pData);
        union any_item item;
        int rc;
        bool first = true;
        printf("[");
        while ((rc = sc_list_next(&it, f->submsg_desc, &item, size)) == 1) {
            printf(first ? "" : ",");
            first = false;
            if (!dump(f->submsg_desc, &item)) {
                return false;
            }
        }
        printf("]");
        return rc == 0;
    }
    if (PB_ATYPE(f->type) == PB_ATYPE_CALLBACK) {
        const sc_view_t *v = f->pData;
        if (v->ptr == NULL) {
            printf("n");
        } else {
            printf("s");
            hex(v->ptr, v->len);
        }
        return true;
    }
    if (PB_LTYPE_IS_SUBMSG(f->type)) {
        return dump(f->submsg_desc, f->pData);
    }
    return dump_scalar(f);
}

/* Whether the field is printed: see the file comment. (nanopb's type bits
 * do not tell implicit from optional: a static field has a has_ flag, at
 * pSize, exactly when it is optional; views are always printed.) */
static bool present(const pb_field_iter_t *f)
{
    if (PB_HTYPE(f->type) == PB_HTYPE_ONEOF) {
        return *(const pb_size_t *)f->pSize == f->tag;
    }
    if (PB_ATYPE(f->type) == PB_ATYPE_STATIC && f->pSize != NULL) {
        return *(const bool *)f->pSize;
    }
    return true;
}

static bool dump(const pb_msgdesc_t *desc, const void *msg)
{
    pb_field_iter_t f;
    printf("{");
    bool first = true;
    if (pb_field_iter_begin_const(&f, desc, msg)) {
        do {
            if (!present(&f)) {
                continue;
            }
            printf("%s%u:", first ? "" : ",", (unsigned)f.tag);
            first = false;
            if (!dump_field(&f)) {
                return false;
            }
        } while (pb_field_iter_next(&f));
    }
    printf("}");
    return true;
}

int main(void)
{
    uint8_t header[4];
    static uint8_t msg[1 << 20];
    while (fread(header, 1, 4, stdin) == 4) {
        uint32_t len = sc_frame_get_len(header);
        if (len > sizeof msg || fread(msg, 1, len, stdin) != len) {
            fprintf(stderr, "diff_decode: short input\n");
            return 2;
        }
        sidecar_v1_Envelope env;
        const char *err = NULL;
        if (!sc_codec_decode(msg, len, &env, &err)) {
            printf("R %s\n", err != NULL ? err : "?");
            continue;
        }
        printf("A ");
        if (!dump(sidecar_v1_Envelope_fields, &env)) {
            printf(" LIST-WALK-FAILED");
        }
        printf("\n");
    }
    return 0;
}
