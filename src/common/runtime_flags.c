/* The public flag-evaluation calls: record into the process aggregator,
 * drain it into FlagEvaluationBatch actions on the runtime's client. */
#include "client.h"
#include "codec.h"
#include "flageval.h"
#include "flageval_wire.h"
#include "process.h"
#include "sidecar.h"

#include <stdlib.h>
#include <uv.h>
#include <string.h>

#define MAX_ATTRS_ON_STACK 32

static sc_flageval_attr_type_t attr_type(sc_attr_type_t t)
{
    switch (t) {
    case SC_ATTR_NUMBER:
        return SC_FLAGEVAL_ATTR_NUMBER;
    case SC_ATTR_BOOL:
        return SC_FLAGEVAL_ATTR_BOOL;
    default:
        return SC_FLAGEVAL_ATTR_STRING;
    }
}

int sc_flag_evaluation_record(const sc_flag_evaluation_t *e)
{
    if (e == NULL || e->flag_key == NULL) {
        return UV_EINVAL;
    }
    sc_flageval_t *agg = sc_flageval_process();
    if (agg == NULL) {
        return UV_ENOMEM;
    }
    if (!sc_flageval_enabled(agg)) {
        return UV_ECANCELED;
    }
    sc_flageval_attr_t stack[MAX_ATTRS_ON_STACK];
    sc_flageval_attr_t *attrs = stack;
    if (e->context_len > MAX_ATTRS_ON_STACK) {
        attrs = malloc(e->context_len * sizeof *attrs);
        if (attrs == NULL) {
            return UV_ENOMEM;
        }
    }
    for (size_t i = 0; i < e->context_len; i++) {
        const sc_attr_t *a = &e->context[i];
        attrs[i] = (sc_flageval_attr_t){
            .key = sc_view_str(a->key),
            .type = attr_type(a->type),
            .string_value = sc_view_str(a->string_value),
            .number_value = a->number_value,
            .bool_value = a->bool_value,
        };
    }
    sc_flageval_eval_t ev = {
        .flag_key = sc_view_str(e->flag_key),
        .variant_key = sc_view_str(e->variant_key),
        .allocation_key = sc_view_str(e->allocation_key),
        .reason = sc_view_str(e->reason),
        .targeting_key = sc_view_str(e->targeting_key),
        .targeting_rule_key = sc_view_str(e->targeting_rule_key),
        .error_message = sc_view_str(e->error_message),
        .context = attrs,
        .context_len = e->context_len,
        .timestamp_ms = e->timestamp_ms,
    };
    sc_flageval_outcome_t out = sc_flageval_record(agg, &ev);
    if (attrs != stack) {
        free(attrs);
    }
    switch (out) {
    case SC_FLAGEVAL_FULL:
    case SC_FLAGEVAL_DEGRADED:
        return 0;
    case SC_FLAGEVAL_DROPPED:
        return SC_EDROPPED;
    case SC_FLAGEVAL_DISABLED:
        return UV_ECANCELED;
    case SC_FLAGEVAL_REJECTED:
        break;
    }
    return UV_EINVAL;
}

typedef struct enqueue_ctx {
    sc_client_t *client;
    int status;
} enqueue_ctx_t;

static bool enqueue_batch(void *ctx, sidecar_v1_Envelope *env)
{
    enqueue_ctx_t *c = ctx;
    if (sc_client_enqueue(c->client, SC_ACTION_FLAG_EVALUATIONS, env) != 0) {
        c->status = SC_EDROPPED;
    }
    return true;
}

int sc_flag_evaluations_flush(void)
{
    sc_client_t *client = sc_process_client();
    sc_flageval_t *agg = sc_flageval_process();
    if (agg == NULL || !sc_flageval_enabled(agg)) {
        return 0;
    }
    if (client == NULL) {
        return SC_EDROPPED;
    }
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    enqueue_ctx_t ctx = {.client = client, .status = 0};
    sc_flageval_wire_meta_t meta;
    memset(&meta, 0, sizeof meta);
    if (sc_flageval_wire_pack(&batch, &meta, 0, enqueue_batch, &ctx) < 0) {
        ctx.status = UV_ENOMEM;
    }
    sc_flageval_batch_free(&batch);
    sc_process_after_send(client);
    return ctx.status;
}

/* ---- exposures ---------------------------------------------------------- */

static void to_wire_attr(const sc_attr_t *a, sidecar_v1_ContextAttribute *w)
{
    memset(w, 0, sizeof *w);
    w->key = sc_view_str(a->key);
    switch (a->type) {
    case SC_ATTR_NUMBER:
        w->has_number_value = true;
        w->number_value = a->number_value;
        break;
    case SC_ATTR_BOOL:
        w->has_bool_value = true;
        w->bool_value = a->bool_value;
        break;
    default:
        w->string_value = sc_view_str(a->string_value);
        break;
    }
}

int sc_send_exposures(const sc_exposure_t *exposures, size_t n)
{
    sc_client_t *client = sc_process_client();
    if (exposures == NULL || n == 0) {
        return UV_EINVAL;
    }
    if (client == NULL) {
        return SC_EDROPPED;
    }
    size_t attrs = 0;
    for (size_t i = 0; i < n; i++) {
        if (exposures[i].flag_key == NULL) {
            return UV_EINVAL;
        }
        attrs += exposures[i].subject_attributes_len;
    }
    sidecar_v1_Exposure *wire = calloc(n, sizeof *wire);
    sidecar_v1_ContextAttribute *wattrs =
        calloc(attrs > 0 ? attrs : 1, sizeof *wattrs);
    if (wire == NULL || wattrs == NULL) {
        free(wire);
        free(wattrs);
        return UV_ENOMEM;
    }
    int64_t now = sc_flageval_now_ms();
    sidecar_v1_ContextAttribute *next = wattrs;
    for (size_t i = 0; i < n; i++) {
        const sc_exposure_t *e = &exposures[i];
        sidecar_v1_Exposure *w = &wire[i];
        w->timestamp_ms = e->timestamp_ms != 0 ? e->timestamp_ms : now;
        w->flag_key = sc_view_str(e->flag_key);
        w->allocation_key = sc_view_str(e->allocation_key);
        w->variant_key = sc_view_str(e->variant_key);
        w->subject_id = sc_view_str(e->subject_id);
        for (size_t k = 0; k < e->subject_attributes_len; k++) {
            to_wire_attr(&e->subject_attributes[k], &next[k]);
        }
        w->subject_attributes = SC_LIST_OF(next, e->subject_attributes_len);
        next += e->subject_attributes_len;
    }
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_exposure_batch_tag;
    env.action.exposure_batch.exposures = SC_LIST_OF(wire, n);
    int rc = sc_client_enqueue(client, SC_ACTION_EXPOSURES, &env);
    free(wire);
    free(wattrs);
    sc_process_after_send(client);
    return rc;
}
