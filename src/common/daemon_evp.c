/* Flag evaluations and exposures on the sidecar: batches from all clients
 * are merged per (service, env, version) with the same rules and caps as in
 * the clients (flageval.h), coalesced for 250 ms, and posted as EVP JSON. */
#include "daemon_internal.h"

#include "codec.h"

#include "flageval_json.h"
#include "flageval_wire.h"
#include "json.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

static bool same(const char *a, sc_view_t v)
{
    if (a == NULL || v.ptr == NULL) {
        return a == NULL && v.ptr == NULL;
    }
    return strlen(a) == v.len && memcmp(a, v.ptr, v.len) == 0;
}

static char *dup_view(sc_view_t v)
{
    if (v.ptr == NULL) {
        return NULL;
    }
    char *s = malloc(v.len + 1);
    if (s != NULL) {
        memcpy(s, v.ptr, v.len);
        s[v.len] = '\0';
    }
    return s;
}

/* The batch's service/env/version when it carries them, else the Hello's. */
static void batch_context(const sc_server_conn_t *conn, sc_view_t *service,
                          sc_view_t *env, sc_view_t *version)
{
    const sc_client_identity_t *id = sc_server_conn_identity(conn);
    if (service->ptr == NULL && id != NULL) {
        *service = sc_view_str(id->service);
    }
    if (env->ptr == NULL && id != NULL) {
        *env = sc_view_str(id->env);
    }
    if (version->ptr == NULL && id != NULL) {
        *version = sc_view_str(id->version);
    }
}

static sc_flageval_t *context_aggregator(sc_daemon_t *d, sc_view_t service,
                                         sc_view_t env, sc_view_t version)
{
    for (size_t i = 0; i < d->context_count; i++) {
        sc_flag_context_t *c = &d->contexts[i];
        if (same(c->service, service) && same(c->env, env) &&
            same(c->version, version)) {
            return c->agg;
        }
    }
    if (d->context_count == SC_DAEMON_MAX_CONTEXTS) {
        return NULL;
    }
    sc_flag_context_t *c = &d->contexts[d->context_count];
    c->agg = sc_flageval_new(NULL);
    if (c->agg == NULL) {
        return NULL;
    }
    c->service = dup_view(service);
    c->env = dup_view(env);
    c->version = dup_view(version);
    d->context_count++;
    return c->agg;
}

sc_handler_result_t
sc_daemon_on_flag_evaluations(void *ctx, sc_server_conn_t *conn,
                              const sidecar_v1_FlagEvaluationBatch *m)
{
    sc_daemon_t *d = ctx;
    sc_view_t service = m->service, env = m->env, version = m->version;
    batch_context(conn, &service, &env, &version);
    sc_flageval_t *agg = context_aggregator(d, service, env, version);
    if (agg == NULL) {
        d->flag_batches_no_context++;
        SC_LOG_LIMITED(SC_LOG_WARN,
                       "flag evaluations dropped: more than %d contexts",
                       SC_DAEMON_MAX_CONTEXTS);
        return SC_HANDLED;
    }
    const char *error = NULL;
    if (sc_flageval_wire_merge(agg, m, &error) != 0) {
        /* Well-formed protobuf with impossible content: the batch is
         * rejected and counted, the connection stays. */
        d->flag_batches_rejected++;
        SC_LOG_LIMITED(SC_LOG_WARN, "flag evaluation batch rejected: %s",
                       error != NULL ? error : "invalid");
    }
    return SC_HANDLED;
}

typedef struct body_ctx {
    sc_daemon_t *d;
} body_ctx_t;

static bool submit_body(void *ctx, const sc_buf_t *body, size_t events)
{
    (void)events;
    body_ctx_t *b = ctx;
    sc_flusher_submit_evp(b->d->flusher, SC_DEST_FLAGEVALUATIONS, body->data,
                          body->len);
    return true;
}

void sc_daemon_flush_flag_evaluations(sc_daemon_t *d)
{
    for (size_t i = 0; i < d->context_count; i++) {
        sc_flag_context_t *c = &d->contexts[i];
        sc_flageval_batch_t batch;
        sc_flageval_drain(c->agg, &batch);
        sc_flageval_json_opts_t opts = {
            .service = sc_view_str(c->service),
            .env = sc_view_str(c->env),
            .version = sc_view_str(c->version),
        };
        body_ctx_t b = {d};
        sc_flageval_json_bodies(&batch, &opts, submit_body, &b, NULL);
        sc_flageval_batch_free(&batch);
    }
}

void sc_daemon_flag_stats_json(sc_daemon_t *d, sc_buf_t *out)
{
    uint64_t evaluations = 0, dropped = 0, rejected = 0;
    size_t full = 0, degraded = 0;
    for (size_t i = 0; i < d->context_count; i++) {
        sc_flageval_stats_t st;
        sc_flageval_get_stats(d->contexts[i].agg, &st);
        evaluations += st.evaluations;
        dropped += st.dropped_overflow + st.dropped_upstream;
        rejected += st.rejected;
        full += st.full_buckets;
        degraded += st.degraded_buckets;
    }
    sc_buf_appendf(
        out,
        ",\"flag_evaluations\":{\"contexts\":%zu,\"evaluations\":%llu,"
        "\"full_buckets\":%zu,\"degraded_buckets\":%zu,\"dropped\":%llu,"
        "\"rejected\":%llu,\"batches_rejected\":%llu,"
        "\"batches_without_context\":%llu},\"exposures\":{\"sent\":%llu,"
        "\"batches_rejected\":%llu}",
        d->context_count, (unsigned long long)evaluations, full, degraded,
        (unsigned long long)dropped, (unsigned long long)rejected,
        (unsigned long long)d->flag_batches_rejected,
        (unsigned long long)d->flag_batches_no_context,
        (unsigned long long)d->exposures_sent,
        (unsigned long long)d->exposure_batches_rejected);
}

void sc_daemon_free_contexts(sc_daemon_t *d)
{
    for (size_t i = 0; i < d->context_count; i++) {
        sc_flag_context_t *c = &d->contexts[i];
        sc_flageval_free(c->agg);
        free(c->service);
        free(c->env);
        free(c->version);
    }
    d->context_count = 0;
}

/* ---- exposures ---------------------------------------------------------- */

static void key_object(sc_json_t *j, const char *name, sc_view_t key)
{
    if (key.ptr == NULL || key.len == 0) {
        return; /* absent values are omitted, never null */
    }
    sc_json_key_str(j, name);
    sc_json_object_begin(j);
    sc_json_key_str(j, "key");
    sc_json_string(j, key.ptr, key.len);
    sc_json_object_end(j);
}

/* Writes the attributes as a JSON object; false when one has not exactly
 * one value. */
static bool attributes(sc_json_t *j, const sc_list_t *list)
{
    sc_list_iter_t it;
    sc_list_iter_init(&it, list);
    sidecar_v1_ContextAttribute a;
    sc_json_object_begin(j);
    int rc;
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_ContextAttribute, &a)) == 1) {
        int values = (a.string_value.ptr != NULL) + a.has_number_value +
                     a.has_bool_value;
        if (values != 1 || a.key.ptr == NULL) {
            return false;
        }
        sc_json_key(j, a.key.ptr, a.key.len);
        if (a.string_value.ptr != NULL) {
            sc_json_string(j, a.string_value.ptr, a.string_value.len);
        } else if (a.has_number_value) {
            sc_json_double(j, a.number_value);
        } else {
            sc_json_bool(j, a.bool_value);
        }
    }
    sc_json_object_end(j);
    return rc == 0;
}

static bool exposures_body(const sidecar_v1_ExposureBatch *m, sc_view_t service,
                           sc_view_t env, sc_view_t version, sc_buf_t *out,
                           size_t *count)
{
    sc_json_t j;
    sc_json_init(&j, out);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "context");
    sc_json_object_begin(&j);
    const char *names[] = {"service", "env", "version"};
    sc_view_t values[] = {service, env, version};
    for (int i = 0; i < 3; i++) {
        if (values[i].ptr != NULL && values[i].len > 0) {
            sc_json_key_str(&j, names[i]);
            sc_json_string(&j, values[i].ptr, values[i].len);
        }
    }
    sc_json_object_end(&j);
    sc_json_key_str(&j, "exposures");
    sc_json_array_begin(&j);
    sc_list_iter_t it;
    sc_list_iter_init(&it, &m->exposures);
    sidecar_v1_Exposure e;
    int rc;
    *count = 0;
    while ((rc = SC_LIST_NEXT(&it, sidecar_v1_Exposure, &e)) == 1) {
        if (e.flag_key.ptr == NULL || e.flag_key.len == 0) {
            return false;
        }
        sc_json_object_begin(&j);
        sc_json_key_str(&j, "timestamp");
        sc_json_int64(&j, e.timestamp_ms);
        key_object(&j, "flag", e.flag_key);
        key_object(&j, "allocation", e.allocation_key);
        key_object(&j, "variant", e.variant_key);
        sc_json_key_str(&j, "subject");
        sc_json_object_begin(&j);
        if (e.subject_id.ptr != NULL) {
            sc_json_key_str(&j, "id");
            sc_json_string(&j, e.subject_id.ptr, e.subject_id.len);
        }
        if (e.subject_attributes.count > 0) {
            sc_json_key_str(&j, "attributes");
            if (!attributes(&j, &e.subject_attributes)) {
                return false;
            }
        }
        sc_json_object_end(&j);
        sc_json_object_end(&j);
        (*count)++;
    }
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    return rc == 0 && sc_json_ok(&j);
}

sc_handler_result_t sc_daemon_on_exposures(void *ctx, sc_server_conn_t *conn,
                                           const sidecar_v1_ExposureBatch *m)
{
    sc_daemon_t *d = ctx;
    sc_view_t service = m->service, env = m->env, version = m->version;
    batch_context(conn, &service, &env, &version);
    sc_buf_t body = {0};
    size_t count = 0;
    if (!exposures_body(m, service, env, version, &body, &count)) {
        d->exposure_batches_rejected++;
        SC_LOG_LIMITED(SC_LOG_WARN, "exposure batch rejected: invalid content");
    } else if (count > 0) {
        d->exposures_sent += count;
        sc_flusher_submit_evp(d->flusher, SC_DEST_EXPOSURES, body.data,
                              body.len);
    }
    sc_buf_free(&body);
    return SC_HANDLED;
}
