/* Fuzz target: the EVP exposures body (src/common/exposure_json.c), with
 * exposures the fuzzer builds. The input is read as a recipe: the batch's
 * context, then up to 16 exposures, each with optional keys, a timestamp,
 * and up to 7 subject attributes whose value may be a string, any double
 * (NaN and infinities included), a bool, none or two at once. Strings are
 * raw bytes: invalid UTF-8, control characters and NULs included. The
 * recipe is encoded as an ExposureBatch as a client would send it, decoded
 * by the sidecar's codec, and written. Then:
 *   - the batch is refused exactly when an exposure has no flag key or an
 *     attribute has not exactly one value;
 *   - an accepted body is UTF-8 and parses as one JSON document (cJSON,
 *     the project's reader), holding the context and every exposure in
 *     order, with their keys, timestamps and subjects as given (strings
 *     compared where JSON can carry them unchanged: valid UTF-8, no NUL),
 *     absent and empty values left out, and every subject attribute either
 *     written (a finite number, a string or a bool) or counted as skipped. */
#include "codec.h"
#include "exposure_json.h"
#include "fuzz_bounds.h"
#include "json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EXPOSURES  16
#define MAX_ATTRIBUTES 7

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_exposures: %s\n", what);
    abort();
}

/* ---- the recipe ---------------------------------------------------------- */

typedef struct input {
    const uint8_t *p;
    size_t n;
} input_t;

static uint8_t take_u8(input_t *in)
{
    if (in->n == 0) {
        return 0;
    }
    in->n--;
    return *in->p++;
}

static uint64_t take_u64(input_t *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)take_u8(in) << (8 * i);
    }
    return v;
}

/* A string of up to 255 bytes, taken from the input as they are. */
static sc_view_t take_str(input_t *in)
{
    size_t len = take_u8(in);
    if (len > in->n) {
        len = in->n;
    }
    sc_view_t v = sc_view_bytes(in->p, len);
    in->p += len;
    in->n -= len;
    return v;
}

enum { V_STRING, V_NUMBER, V_BOOL, V_NONE, V_TWO, V_SMALL_NUMBER, V_KINDS };

typedef struct attribute {
    sc_view_t key;
    int kind;
    sc_view_t string_value;
    double number_value;
    bool bool_value;
} attribute_t;

typedef struct exposure {
    int64_t timestamp_ms;
    bool has_flag, has_allocation, has_variant, has_subject;
    sc_view_t flag, allocation, variant, subject;
    size_t attribute_count;
    attribute_t attributes[MAX_ATTRIBUTES];
} exposure_t;

typedef struct recipe {
    bool has_context[3];
    sc_view_t context[3];
    size_t count;
    exposure_t exposures[MAX_EXPOSURES];
} recipe_t;

static void read_recipe(input_t *in, recipe_t *r)
{
    memset(r, 0, sizeof *r);
    uint8_t present = take_u8(in);
    for (int i = 0; i < 3; i++) {
        r->has_context[i] = present & (1u << i);
        if (r->has_context[i]) {
            r->context[i] = take_str(in);
        }
    }
    r->count = take_u8(in) % (MAX_EXPOSURES + 1);
    for (size_t i = 0; i < r->count; i++) {
        exposure_t *e = &r->exposures[i];
        uint8_t f = take_u8(in);
        e->timestamp_ms = (f & 0x10) ? (int64_t)take_u64(in)
                                     : (int64_t)1700000000000 + (int64_t)i;
        e->has_flag = !(f & 0x08);
        if (e->has_flag) {
            e->flag = take_str(in);
        }
        e->has_allocation = f & 0x01;
        if (e->has_allocation) {
            e->allocation = take_str(in);
        }
        e->has_variant = f & 0x02;
        if (e->has_variant) {
            e->variant = take_str(in);
        }
        e->has_subject = f & 0x04;
        if (e->has_subject) {
            e->subject = take_str(in);
        }
        e->attribute_count = f >> 5;
        for (size_t k = 0; k < e->attribute_count; k++) {
            attribute_t *a = &e->attributes[k];
            a->key = take_str(in);
            a->kind = take_u8(in) % V_KINDS;
            if (a->kind == V_STRING || a->kind == V_TWO) {
                a->string_value = take_str(in);
            }
            if (a->kind == V_NUMBER || a->kind == V_TWO) {
                uint64_t bits = take_u64(in);
                memcpy(&a->number_value, &bits, sizeof bits);
            }
            if (a->kind == V_SMALL_NUMBER) {
                a->number_value = (double)(int8_t)take_u8(in) / 4;
            }
            if (a->kind == V_BOOL) {
                a->bool_value = take_u8(in) & 1;
            }
        }
    }
}

/* ---- protobuf, as a client writes it ------------------------------------- */

typedef struct wbuf {
    uint8_t *data;
    size_t len, cap;
} wbuf_t;

static void put(wbuf_t *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = (w->len + n) * 2 + 64;
        uint8_t *grown = realloc(w->data, cap);
        if (grown == NULL) {
            fail("out of memory");
        }
        w->data = grown;
        w->cap = cap;
    }
    if (n > 0) {
        memcpy(w->data + w->len, p, n);
        w->len += n;
    }
}

static void put_varint(wbuf_t *w, uint64_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            b |= 0x80;
        }
        put(w, &b, 1);
    } while (v != 0);
}

static void put_bytes(wbuf_t *w, uint32_t field, const void *p, size_t n)
{
    put_varint(w, (uint64_t)field << 3 | 2);
    put_varint(w, n);
    put(w, p, n);
}

static void put_message(wbuf_t *w, uint32_t field, wbuf_t *inner)
{
    put_bytes(w, field, inner->data, inner->len);
    inner->len = 0;
}

static void put_double(wbuf_t *w, uint32_t field, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) {
        le[i] = (uint8_t)(bits >> (8 * i));
    }
    put_varint(w, (uint64_t)field << 3 | 1);
    put(w, le, sizeof le);
}

static void encode(const recipe_t *r, wbuf_t *out)
{
    wbuf_t batch = {0}, exposure = {0}, attribute = {0};
    for (size_t i = 0; i < r->count; i++) {
        const exposure_t *e = &r->exposures[i];
        put_varint(&exposure, 1 << 3 | 0);
        put_varint(&exposure, (uint64_t)e->timestamp_ms);
        if (e->has_flag) {
            put_bytes(&exposure, 2, e->flag.ptr, e->flag.len);
        }
        if (e->has_allocation) {
            put_bytes(&exposure, 3, e->allocation.ptr, e->allocation.len);
        }
        if (e->has_variant) {
            put_bytes(&exposure, 4, e->variant.ptr, e->variant.len);
        }
        if (e->has_subject) {
            put_bytes(&exposure, 5, e->subject.ptr, e->subject.len);
        }
        for (size_t k = 0; k < e->attribute_count; k++) {
            const attribute_t *a = &e->attributes[k];
            put_bytes(&attribute, 1, a->key.ptr, a->key.len);
            if (a->kind == V_STRING || a->kind == V_TWO) {
                put_bytes(&attribute, 2, a->string_value.ptr,
                          a->string_value.len);
            }
            if (a->kind == V_NUMBER || a->kind == V_TWO ||
                a->kind == V_SMALL_NUMBER) {
                put_double(&attribute, 3, a->number_value);
            }
            if (a->kind == V_BOOL) {
                put_varint(&attribute, 4 << 3 | 0);
                put_varint(&attribute, a->bool_value);
            }
            put_message(&exposure, 6, &attribute);
        }
        put_message(&batch, 1, &exposure);
    }
    for (int i = 0; i < 3; i++) {
        if (r->has_context[i]) {
            put_bytes(&batch, (uint32_t)(2 + i), r->context[i].ptr,
                      r->context[i].len);
        }
    }
    put_varint(out, 1 << 3 | 0); /* seq */
    put_varint(out, 7);
    put_message(out, sidecar_v1_Envelope_exposure_batch_tag, &batch);
    free(batch.data);
    free(exposure.data);
    free(attribute.data);
}

/* ---- the body, read back ------------------------------------------------- */

static bool has_text(sc_view_t v)
{
    return v.ptr != NULL && v.len > 0;
}

/* The value JSON carries unchanged: valid UTF-8 without a NUL (cJSON's
 * strings end at one). */
static bool comparable(sc_view_t v)
{
    return sc_utf8_valid(v.ptr, v.len) && memchr(v.ptr, 0, v.len) == NULL;
}

static void check_string(const cJSON *item, sc_view_t want, const char *what)
{
    if (!cJSON_IsString(item)) {
        fprintf(stderr, "%s: ", what);
        fail("not a string");
    }
    if (comparable(want) && (strlen(item->valuestring) != want.len ||
                             memcmp(item->valuestring, want.ptr, want.len))) {
        fprintf(stderr, "%s: ", what);
        fail("a string differs from the exposure's");
    }
}

/* `parent[name]` is {"key": want} when want has text, else absent. */
static void check_key_object(const cJSON *parent, const char *name,
                             sc_view_t want)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, name);
    if (!has_text(want)) {
        if (o != NULL) {
            fail("an absent or empty key written");
        }
        return;
    }
    if (!cJSON_IsObject(o) || cJSON_GetArraySize(o) != 1) {
        fail("a key object is not {\"key\": ...}");
    }
    check_string(cJSON_GetObjectItemCaseSensitive(o, "key"), want, name);
}

/* The members written for the subject's attributes. */
static size_t check_subject(const cJSON *exposure, const exposure_t *e)
{
    const cJSON *subject =
        cJSON_GetObjectItemCaseSensitive(exposure, "subject");
    if (!cJSON_IsObject(subject)) {
        fail("no subject object");
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(subject, "id");
    if (has_text(e->subject)) {
        check_string(id, e->subject, "subject.id");
    } else if (id != NULL) {
        fail("an absent or empty subject id written");
    }
    const cJSON *attrs =
        cJSON_GetObjectItemCaseSensitive(subject, "attributes");
    if (attrs == NULL) {
        return 0;
    }
    if (!cJSON_IsObject(attrs) || cJSON_GetArraySize(attrs) == 0) {
        fail("subject attributes not a non-empty object");
    }
    size_t n = 0;
    for (const cJSON *a = attrs->child; a != NULL; a = a->next, n++) {
        if (!cJSON_IsString(a) && !cJSON_IsBool(a) &&
            !(cJSON_IsNumber(a) && isfinite(a->valuedouble))) {
            fail("a subject attribute neither string, finite number nor bool");
        }
    }
    return n;
}

static void check_body(const recipe_t *r, const sc_view_t context[3],
                       const sc_exposure_body_t *b)
{
    static const char *const names[3] = {"service", "env", "version"};
    if (!sc_utf8_valid(b->out.data, b->out.len)) {
        fail("a body that is not UTF-8");
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)b->out.data,
                                            b->out.len, &end, false);
    if (root == NULL || end != (const char *)b->out.data + b->out.len) {
        fwrite(b->out.data, 1, b->out.len, stderr);
        fail("\na body that is not one JSON document");
    }
    if (!cJSON_IsObject(root) || cJSON_GetArraySize(root) != 2) {
        fail("the body is not {context, exposures}");
    }
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(root, "context");
    if (!cJSON_IsObject(ctx)) {
        fail("no context object");
    }
    int written = 0;
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctx, names[i]);
        if (has_text(context[i])) {
            check_string(v, context[i], names[i]);
            written++;
        } else if (v != NULL) {
            fail("an absent or empty context value written");
        }
    }
    if (cJSON_GetArraySize(ctx) != written) {
        fail("context members besides service, env and version");
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "exposures");
    if (!cJSON_IsArray(list) || (size_t)cJSON_GetArraySize(list) != r->count ||
        b->count != r->count) {
        fail("not every exposure written, or more");
    }
    size_t given = 0, kept = 0;
    const cJSON *item = list->child;
    for (size_t i = 0; i < r->count; i++, item = item->next) {
        const exposure_t *e = &r->exposures[i];
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(item, "timestamp");
        if (!cJSON_IsNumber(ts) || ts->valuedouble != (double)e->timestamp_ms) {
            fail("timestamp differs");
        }
        check_key_object(item, "flag", e->flag);
        check_key_object(item, "allocation", e->allocation);
        check_key_object(item, "variant", e->variant);
        kept += check_subject(item, e);
        given += e->attribute_count;
    }
    if (kept + b->skipped != given) {
        fprintf(stderr, "attributes: %zu given, %zu written, %zu skipped\n",
                given, kept, b->skipped);
        fail("a subject attribute neither written nor counted as skipped");
    }
    cJSON_Delete(root);
}

static bool expect_refused(const recipe_t *r)
{
    for (size_t i = 0; i < r->count; i++) {
        const exposure_t *e = &r->exposures[i];
        if (!has_text(e->flag)) {
            return true;
        }
        for (size_t k = 0; k < e->attribute_count; k++) {
            int kind = e->attributes[k].kind;
            if (kind == V_NONE || kind == V_TWO) {
                return true;
            }
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    recipe_t r;
    read_recipe(&in, &r);
    wbuf_t encoded = {0};
    encode(&r, &encoded);
    /* The codec's views point into a heap copy of exactly this length:
     * ASan sees a read past it. */
    wbuf_t wire = {malloc(encoded.len), encoded.len, encoded.len};
    if (wire.data == NULL) {
        fail("out of memory");
    }
    memcpy(wire.data, encoded.data, encoded.len);
    free(encoded.data);
    sidecar_v1_Envelope env;
    const char *error = NULL;
    if (!sc_codec_decode(wire.data, wire.len, &env, &error)) {
        fprintf(stderr, "decode: %s\n", error != NULL ? error : "?");
        fail("a well-formed ExposureBatch does not decode");
    }
    fuzz_check_bounds(sidecar_v1_Envelope_fields, &env, wire.data, wire.len);
    if (env.which_action != sidecar_v1_Envelope_exposure_batch_tag) {
        fail("decoded as another action");
    }
    const sidecar_v1_ExposureBatch *m = &env.action.exposure_batch;
    sc_view_t context[3] = {m->service, m->env, m->version};
    sc_exposure_body_t b;
    sc_exposure_body_init(&b);
    const char *why = sc_exposure_json_body(&b, m, context);
    if ((why != NULL) != expect_refused(&r)) {
        fprintf(stderr, "result: %s\n", why != NULL ? why : "accepted");
        fail("accepted or refused against the rules");
    }
    if (why == NULL) {
        check_body(&r, context, &b);
        /* Written twice with the same scratch space: the same body. */
        sc_buf_t first = {0};
        sc_buf_append(&first, b.out.data, b.out.len);
        if (sc_exposure_json_body(&b, m, context) != NULL ||
            b.out.len != first.len ||
            memcmp(b.out.data, first.data, first.len) != 0) {
            fail("a second body from the same batch differs");
        }
        sc_buf_free(&first);
    }
    sc_exposure_body_free(&b);
    free(wire.data);
    return 0;
}
