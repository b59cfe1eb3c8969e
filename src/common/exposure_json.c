/* The EVP exposures body (exposure_json.h). Fuzzed by
 * tests/fuzz/fuzz_exposures.c, which checks every body parses as JSON. */
#include "exposure_json.h"

#include "codec.h"
#include "flageval_json.h"
#include "flageval_wire.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

void sc_exposure_body_init(sc_exposure_body_t *b)
{
    memset(b, 0, sizeof *b);
    sc_flageval_keybuf_init(&b->canonical);
}

void sc_exposure_body_free(sc_exposure_body_t *b)
{
    sc_flageval_keybuf_free(&b->canonical);
    free(b->attrs);
    sc_buf_free(&b->out);
    memset(b, 0, sizeof *b);
}

static bool has_text(sc_view_t v)
{
    return v.ptr != NULL && v.len > 0;
}

static void key_object(sc_json_t *j, const char *name, sc_view_t key)
{
    if (has_text(key)) {
        sc_json_key_str(j, name);
        sc_json_object_begin(j);
        sc_json_key_str(j, "key");
        sc_json_string(j, key.ptr, key.len);
        sc_json_object_end(j);
    }
}

/* Reads an exposure's attributes into `*attrs` (grown as needed) and
 * prunes them into `canonical`. False when one is invalid. */
static bool subject_attributes(const sc_list_t *list,
                               sc_flageval_attr_t **attrs, size_t *cap,
                               sc_flageval_keybuf_t *canonical, size_t *skipped)
{
    sc_list_iter_t it;
    sc_list_iter_init(&it, list);
    sidecar_v1_ContextAttribute w;
    size_t n = 0;
    int rc;
    if (list->count > *cap) {
        sc_flageval_attr_t *grown =
            realloc(*attrs, list->count * sizeof **attrs);
        if (grown == NULL) {
            return false;
        }
        *attrs = grown;
        *cap = list->count;
    }
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_ContextAttribute, &w)) == 1) {
        if (n == *cap || !sc_flageval_wire_attr(&w, &(*attrs)[n])) {
            return false;
        }
        n++;
    }
    canonical->len = 0;
    sc_flageval_context_build(*attrs, n, canonical, skipped);
    return rc == 0 && !canonical->failed;
}

static const char *write_exposure(sc_exposure_body_t *b, sc_json_t *j,
                                  const sidecar_v1_Exposure *e)
{
    if (!has_text(e->flag_key)) {
        return "exposure without a flag key";
    }
    size_t skipped = 0;
    if (!subject_attributes(&e->subject_attributes, &b->attrs, &b->attrs_cap,
                            &b->canonical, &skipped)) {
        return "exposure subject attribute without exactly one value";
    }
    b->skipped += skipped;
    sc_json_object_begin(j);
    sc_json_key_str(j, "timestamp");
    sc_json_int64(j, e->timestamp_ms);
    key_object(j, "flag", e->flag_key);
    key_object(j, "allocation", e->allocation_key);
    key_object(j, "variant", e->variant_key);
    sc_json_key_str(j, "subject");
    sc_json_object_begin(j);
    if (has_text(e->subject_id)) {
        sc_json_key_str(j, "id");
        sc_json_string(j, e->subject_id.ptr, e->subject_id.len);
    }
    if (b->canonical.len > 0) {
        sc_json_key_str(j, "attributes");
        sc_flageval_json_context_object(
            j, sc_view_bytes(b->canonical.data, b->canonical.len));
    }
    sc_json_object_end(j);
    sc_json_object_end(j);
    b->count++;
    return NULL;
}

const char *sc_exposure_json_body(sc_exposure_body_t *b,
                                  const sidecar_v1_ExposureBatch *m,
                                  const sc_view_t context[3])
{
    static const char *const names[3] = {"service", "env", "version"};
    b->out.len = 0;
    b->count = 0;
    b->skipped = 0;
    sc_json_t j;
    sc_json_init(&j, &b->out);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "context");
    sc_json_object_begin(&j);
    for (int i = 0; i < 3; i++) {
        if (has_text(context[i])) {
            sc_json_key_str(&j, names[i]);
            sc_json_string(&j, context[i].ptr, context[i].len);
        }
    }
    sc_json_object_end(&j);
    sc_json_key_str(&j, "exposures");
    sc_json_array_begin(&j);
    sc_list_iter_t it;
    sc_list_iter_init(&it, &m->exposures);
    sidecar_v1_Exposure e;
    int rc;
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_Exposure, &e)) == 1) {
        const char *why = write_exposure(b, &j, &e);
        if (why != NULL) {
            return why;
        }
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    if (rc != 0) {
        return "malformed exposure";
    }
    return sc_json_ok(&j) ? NULL : "out of memory writing exposures";
}
