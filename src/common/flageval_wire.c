#include "flageval_wire.h"

#include "codec.h"

#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

/* ---- client side: batch -> envelopes ---------------------------------- */

/* The batch's buckets in wire form, with their attributes and sizes. */
typedef struct packed {
    sidecar_v1_FlagEvaluation *items;
    size_t *sizes; /* encoded size of each item inside the batch message */
    sidecar_v1_ContextAttribute *attrs;
} packed_t;

static void attr_to_wire(const sc_flageval_attr_t *a,
                         sidecar_v1_ContextAttribute *w)
{
    memset(w, 0, sizeof *w);
    w->key = a->key;
    switch (a->type) {
    case SC_FLAGEVAL_ATTR_STRING:
        w->string_value = a->string_value;
        break;
    case SC_FLAGEVAL_ATTR_NUMBER:
        w->has_number_value = true;
        w->number_value = a->number_value;
        break;
    case SC_FLAGEVAL_ATTR_BOOL:
        w->has_bool_value = true;
        w->bool_value = a->bool_value;
        break;
    }
}

static size_t count_attrs(sc_view_t context)
{
    sc_flageval_context_iter_t it;
    sc_flageval_attr_t a;
    size_t n = 0;
    sc_flageval_context_iter_init(&it, context);
    while (sc_flageval_context_next(&it, &a) == 1) {
        n++;
    }
    return n;
}

static bool pack_items(const sc_flageval_batch_t *batch, packed_t *p)
{
    memset(p, 0, sizeof *p);
    size_t total_attrs = 0;
    sc_flageval_bucket_view_t v;
    for (size_t i = 0; i < batch->count; i++) {
        sc_flageval_batch_bucket(batch, i, &v);
        total_attrs += count_attrs(v.context);
    }
    p->items = calloc(batch->count, sizeof *p->items);
    p->sizes = calloc(batch->count, sizeof *p->sizes);
    p->attrs = calloc(total_attrs > 0 ? total_attrs : 1, sizeof *p->attrs);
    if (p->items == NULL || p->sizes == NULL || p->attrs == NULL) {
        return false;
    }
    size_t next_attr = 0;
    for (size_t i = 0; i < batch->count; i++) {
        sc_flageval_batch_bucket(batch, i, &v);
        sidecar_v1_FlagEvaluation *item = &p->items[i];
        item->flag_key = v.flag_key;
        item->variant_key = v.variant_key;
        item->allocation_key = v.allocation_key;
        item->reason = v.reason;
        item->targeting_key = v.targeting_key;
        item->targeting_rule_key = v.targeting_rule_key;
        item->error_message = v.error_message;
        item->evaluation_count = v.evaluation_count;
        item->first_evaluation_ms = v.first_evaluation_ms;
        item->last_evaluation_ms = v.last_evaluation_ms;
        item->degraded = v.degraded;
        sidecar_v1_ContextAttribute *first = p->attrs + next_attr;
        sc_flageval_context_iter_t it;
        sc_flageval_attr_t a;
        sc_flageval_context_iter_init(&it, v.context);
        while (sc_flageval_context_next(&it, &a) == 1) {
            attr_to_wire(&a, &p->attrs[next_attr++]);
        }
        item->context =
            SC_LIST_OF(first, (size_t)(p->attrs + next_attr - first));
        size_t size = 0;
        if (!pb_get_encoded_size(&size, sidecar_v1_FlagEvaluation_fields,
                                 item)) {
            return false;
        }
        /* Inside the batch: field tag (1 byte), length, message. */
        p->sizes[i] = 1 + sc_codec_varint_size(size) + size;
    }
    return true;
}

static void packed_free(packed_t *p)
{
    free(p->items);
    free(p->sizes);
    free(p->attrs);
}

static void envelope_init(sidecar_v1_Envelope *env,
                          const sc_flageval_wire_meta_t *meta)
{
    memset(env, 0, sizeof *env);
    env->which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag;
    sidecar_v1_FlagEvaluationBatch *b = &env->action.flag_evaluation_batch;
    if (meta != NULL) {
        b->service = meta->service;
        b->env = meta->env;
        b->version = meta->version;
    }
}

/* Bytes of an envelope besides its evaluations, at the largest: seq and
 * dropped at their longest varints, and room for the batch's length prefix
 * to grow to its longest. */
static bool envelope_overhead(const sc_flageval_wire_meta_t *meta,
                              size_t *overhead)
{
    sidecar_v1_Envelope env;
    envelope_init(&env, meta);
    env.seq = UINT64_MAX;
    env.action.flag_evaluation_batch.dropped = UINT64_MAX;
    size_t size = 0;
    if (!sc_codec_encoded_size(&env, &size)) {
        return false;
    }
    *overhead = size + 5;
    return true;
}

int sc_flageval_wire_pack(const sc_flageval_batch_t *batch,
                          const sc_flageval_wire_meta_t *meta,
                          size_t max_frame_len, sc_flageval_envelope_fn *fn,
                          void *ctx)
{
    if (max_frame_len == 0) {
        max_frame_len = SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME;
    }
    size_t overhead = 0;
    packed_t p;
    if (!pack_items(batch, &p) || !envelope_overhead(meta, &overhead)) {
        packed_free(&p);
        return -1;
    }
    /* Buckets that cannot travel even alone are counted as dropped; the
     * others are moved to the front, in order. */
    uint64_t dropped = batch->dropped;
    size_t sendable = 0;
    for (size_t i = 0; i < batch->count; i++) {
        if (overhead + p.sizes[i] > max_frame_len) {
            dropped += p.items[i].evaluation_count;
            continue;
        }
        p.items[sendable] = p.items[i];
        p.sizes[sendable] = p.sizes[i];
        sendable++;
    }
    int envelopes = 0;
    size_t next = 0;
    while (next < sendable || (envelopes == 0 && dropped > 0)) {
        size_t first = next, size = overhead;
        while (next < sendable && size + p.sizes[next] <= max_frame_len) {
            size += p.sizes[next++];
        }
        sidecar_v1_Envelope env;
        envelope_init(&env, meta);
        env.action.flag_evaluation_batch.evaluations =
            SC_LIST_OF(p.items + first, next - first);
        env.action.flag_evaluation_batch.dropped = envelopes == 0 ? dropped : 0;
        envelopes++;
        if (!fn(ctx, &env)) {
            packed_free(&p);
            return -1;
        }
    }
    packed_free(&p);
    return envelopes;
}

typedef struct append_ctx {
    sc_buf_t *out;
    uint64_t *next_seq;
    size_t max_frame_len;
} append_ctx_t;

static bool append_envelope(void *ctx, sidecar_v1_Envelope *env)
{
    append_ctx_t *a = ctx;
    size_t before = a->out->len;
    env->seq = (*a->next_seq)++;
    if (!sc_codec_append_frame(a->out, env)) {
        return false;
    }
    return a->out->len - before - SC_FRAME_HEADER_SIZE <= a->max_frame_len;
}

bool sc_flageval_wire_append_frames(const sc_flageval_batch_t *batch,
                                    const sc_flageval_wire_meta_t *meta,
                                    size_t max_frame_len, uint64_t *next_seq,
                                    sc_buf_t *out)
{
    append_ctx_t a = {out, next_seq,
                      max_frame_len != 0 ? max_frame_len
                                         : SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME};
    return sc_flageval_wire_pack(batch, meta, max_frame_len, append_envelope,
                                 &a) >= 0;
}

/* ---- sidecar side: decoded batch -> aggregator ------------------------ */

bool sc_flageval_wire_attr(const sidecar_v1_ContextAttribute *w,
                           sc_flageval_attr_t *a)
{
    int values =
        (w->string_value.ptr != NULL) + w->has_number_value + w->has_bool_value;
    if (values != 1) {
        return false;
    }
    memset(a, 0, sizeof *a);
    /* `key` is a proto3 string without presence: absent means empty. */
    a->key = w->key.ptr != NULL ? w->key : sc_view_bytes("", 0);
    if (w->string_value.ptr != NULL) {
        a->type = SC_FLAGEVAL_ATTR_STRING;
        a->string_value = w->string_value;
    } else if (w->has_number_value) {
        a->type = SC_FLAGEVAL_ATTR_NUMBER;
        a->number_value = w->number_value;
    } else {
        a->type = SC_FLAGEVAL_ATTR_BOOL;
        a->bool_value = w->bool_value;
    }
    return true;
}

/* Checks one evaluation and counts its attributes, converting them into
 * `attrs` when it is not NULL (room for all of them is the caller's).
 * Returns NULL or the reason the evaluation is bad. */
static const char *read_evaluation(const sidecar_v1_FlagEvaluation *e,
                                   sc_flageval_attr_t *attrs, size_t *n_attrs)
{
    if (e->flag_key.ptr == NULL || e->flag_key.len == 0) {
        return "flag evaluation without a flag key";
    }
    if (e->evaluation_count == 0) {
        return "flag evaluation with a zero count";
    }
    if (e->first_evaluation_ms > e->last_evaluation_ms) {
        return "flag evaluation whose first evaluation is after its last";
    }
    size_t n = 0;
    sc_list_iter_t it;
    sidecar_v1_ContextAttribute w;
    int rc;
    sc_list_iter_init(&it, &e->context);
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_ContextAttribute, &w)) == 1) {
        sc_flageval_attr_t a;
        if (!sc_flageval_wire_attr(&w, &a)) {
            return "context attribute without exactly one value";
        }
        if (attrs != NULL) {
            attrs[n] = a;
        }
        n++;
    }
    *n_attrs = n;
    return rc == 0 ? NULL : "malformed context attribute";
}

/* One pass over the evaluations: validating (attrs == NULL; `*max_attrs`
 * gets the largest attribute count of one evaluation) or merging into
 * `agg` with `attrs` room for that many. */
static const char *walk_batch(sc_flageval_t *agg,
                              const sidecar_v1_FlagEvaluationBatch *batch,
                              sc_flageval_attr_t *attrs, size_t *max_attrs)
{
    sc_list_iter_t it;
    sidecar_v1_FlagEvaluation e;
    int rc;
    sc_list_iter_init(&it, &batch->evaluations);
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e)) == 1) {
        size_t n_attrs = 0;
        const char *error = read_evaluation(&e, attrs, &n_attrs);
        if (error != NULL) {
            return error;
        }
        if (attrs == NULL) {
            *max_attrs = n_attrs > *max_attrs ? n_attrs : *max_attrs;
            continue;
        }
        sc_flageval_eval_t ev = {
            .flag_key = e.flag_key,
            .variant_key = e.variant_key,
            .allocation_key = e.allocation_key,
            .reason = e.reason,
            .targeting_key = e.targeting_key,
            .targeting_rule_key = e.targeting_rule_key,
            .error_message = e.error_message,
            .context = attrs,
            .context_len = n_attrs,
        };
        sc_flageval_merge(agg, &ev, e.evaluation_count, e.first_evaluation_ms,
                          e.last_evaluation_ms, e.degraded);
    }
    return rc == 0 ? NULL : "malformed flag evaluation";
}

int sc_flageval_wire_merge(sc_flageval_t *agg,
                           const sidecar_v1_FlagEvaluationBatch *batch,
                           const char **error)
{
    /* Validate everything, and allocate, before merging anything: a batch
     * is merged whole or not at all. */
    size_t max_attrs = 0;
    const char *why = walk_batch(agg, batch, NULL, &max_attrs);
    if (why == NULL && sc_flageval_enabled(agg)) {
        sc_flageval_attr_t *attrs =
            malloc((max_attrs > 0 ? max_attrs : 1) * sizeof *attrs);
        if (attrs == NULL) {
            why = "out of memory";
        } else {
            why = walk_batch(agg, batch, attrs, &max_attrs);
            sc_flageval_add_dropped(agg, batch->dropped);
            free(attrs);
        }
    }
    if (error != NULL) {
        *error = why;
    }
    return why == NULL ? 0 : -1;
}
