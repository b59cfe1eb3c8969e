#include "flageval_json.h"

#include <string.h>

static bool has_text(sc_view_t v)
{
    return v.ptr != NULL && v.len > 0;
}

/* "name":"value" when the value has text. */
static void member_string(sc_json_t *j, const char *name, sc_view_t v)
{
    if (has_text(v)) {
        sc_json_key_str(j, name);
        sc_json_string(j, v.ptr, v.len);
    }
}

/* "name":{"inner":"value"} when the value has text. */
static void member_nested(sc_json_t *j, const char *name, const char *inner,
                          sc_view_t v)
{
    if (has_text(v)) {
        sc_json_key_str(j, name);
        sc_json_object_begin(j);
        member_string(j, inner, v);
        sc_json_object_end(j);
    }
}

void sc_flageval_json_context_object(sc_json_t *j, sc_view_t canonical)
{
    sc_flageval_context_iter_t it;
    sc_flageval_attr_t a;
    sc_flageval_context_iter_init(&it, canonical);
    sc_json_object_begin(j);
    while (sc_flageval_context_next(&it, &a) == 1) {
        sc_json_key(j, a.key.ptr, a.key.len);
        switch (a.type) {
        case SC_FLAGEVAL_ATTR_STRING:
            sc_json_string(j, a.string_value.ptr, a.string_value.len);
            break;
        case SC_FLAGEVAL_ATTR_NUMBER:
            /* Pruning keeps only finite numbers, so this is never null. */
            sc_json_double(j, a.number_value);
            break;
        case SC_FLAGEVAL_ATTR_BOOL:
            sc_json_bool(j, a.bool_value);
            break;
        }
    }
    sc_json_object_end(j);
}

void sc_flageval_json_event(sc_json_t *j, const sc_flageval_bucket_view_t *v,
                            sc_view_t service, int64_t timestamp_ms)
{
    sc_json_object_begin(j);
    sc_json_key_str(j, "timestamp");
    sc_json_int64(j, timestamp_ms);
    sc_json_key_str(j, "flag");
    sc_json_object_begin(j);
    sc_json_key_str(j, "key");
    sc_json_string(j, v->flag_key.ptr, v->flag_key.len);
    sc_json_object_end(j);
    sc_json_key_str(j, "first_evaluation");
    sc_json_int64(j, v->first_evaluation_ms);
    sc_json_key_str(j, "last_evaluation");
    sc_json_int64(j, v->last_evaluation_ms);
    sc_json_key_str(j, "evaluation_count");
    sc_json_uint64(j, v->evaluation_count);
    member_nested(j, "variant", "key", v->variant_key);
    member_nested(j, "allocation", "key", v->allocation_key);
    member_nested(j, "targeting_rule", "key", v->targeting_rule_key);
    member_string(j, "targeting_key", v->targeting_key);
    bool has_evaluation = v->context.len > 0;
    if (has_evaluation || has_text(service)) {
        sc_json_key_str(j, "context");
        sc_json_object_begin(j);
        if (has_evaluation) {
            sc_json_key_str(j, "evaluation");
            sc_flageval_json_context_object(j, v->context);
        }
        member_nested(j, "dd", "service", service);
        sc_json_object_end(j);
    }
    member_nested(j, "error", "message", v->error_message);
    if (v->runtime_default_used) {
        sc_json_key_str(j, "runtime_default_used");
        sc_json_bool(j, true);
    }
    sc_json_object_end(j);
}

/* The part of a body before its first event. */
static void begin_body(sc_json_t *j, sc_buf_t *body,
                       const sc_flageval_json_opts_t *opts)
{
    sc_buf_reset(body);
    sc_json_init(j, body);
    sc_json_object_begin(j);
    sc_json_key_str(j, "context");
    sc_json_object_begin(j);
    member_string(j, "service", opts->service);
    member_string(j, "env", opts->env);
    member_string(j, "version", opts->version);
    sc_json_object_end(j);
    sc_json_key_str(j, "flagEvaluations");
    sc_json_array_begin(j);
}

#define BODY_TRAILER_LEN 2 /* "]}" */

bool sc_flageval_json_bodies(const sc_flageval_batch_t *batch,
                             const sc_flageval_json_opts_t *opts,
                             sc_flageval_body_fn *fn, void *ctx,
                             sc_flageval_json_result_t *result)
{
    sc_flageval_json_result_t res;
    memset(&res, 0, sizeof res);
    size_t max_events =
        opts->max_events != 0 ? opts->max_events : SC_FLAGEVAL_JSON_MAX_EVENTS;
    size_t max_bytes =
        opts->max_bytes != 0 ? opts->max_bytes : SC_FLAGEVAL_JSON_MAX_BYTES;
    int64_t timestamp =
        opts->timestamp_ms != 0 ? opts->timestamp_ms : sc_flageval_now_ms();
    sc_buf_t body = {0}, event = {0};
    sc_json_t j;
    bool ok = true;
    size_t in_body = 0;
    begin_body(&j, &body, opts);
    size_t empty_len = body.len;

    for (size_t i = 0; ok && i <= batch->count; i++) {
        bool last = i == batch->count;
        if (!last) {
            sc_flageval_bucket_view_t v;
            sc_json_t ej;
            sc_flageval_batch_bucket(batch, i, &v);
            sc_buf_reset(&event);
            sc_json_init(&ej, &event);
            sc_flageval_json_event(&ej, &v, opts->service, timestamp);
            if (!sc_json_ok(&ej)) {
                ok = false;
                break;
            }
            if (empty_len + event.len + BODY_TRAILER_LEN > max_bytes) {
                res.events_too_large++;
                res.evaluations_too_large += v.evaluation_count;
                continue;
            }
        }
        /* Hand over the body when it is full or this event does not fit. */
        bool full =
            in_body == max_events ||
            (!last && body.len + 1 + event.len + BODY_TRAILER_LEN > max_bytes);
        if (in_body > 0 && (last || full)) {
            sc_json_array_end(&j);
            sc_json_object_end(&j);
            ok = sc_json_ok(&j) && fn(ctx, &body, in_body);
            res.bodies += ok;
            res.events += ok ? in_body : 0;
            in_body = 0;
            begin_body(&j, &body, opts);
        }
        if (!last && ok) {
            sc_json_raw(&j, event.data, event.len);
            in_body++;
        }
    }
    sc_buf_free(&body);
    sc_buf_free(&event);
    if (result != NULL) {
        *result = res;
    }
    return ok;
}
