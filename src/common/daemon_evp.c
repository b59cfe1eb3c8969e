/* Flag evaluations and exposures on the sidecar: batches from all clients
 * are merged per (service, env, version) with the same rules and caps as in
 * the clients (flageval.h), coalesced for 250 ms, and posted as EVP JSON. */
#include "daemon_internal.h"

#include "codec.h"

#include "exposure_json.h"
#include "flageval_json.h"
#include "flageval_wire.h"
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

/* The batch's service/env/version when it carries them, else the Hello's
 * (the server passes data actions only after a valid Hello). Returns why a
 * value the batch carries breaks the identity string rule, or NULL. */
static const char *batch_context(const sc_server_conn_t *conn,
                                 sc_view_t *service, sc_view_t *env,
                                 sc_view_t *version)
{
    static const sc_string_rule_t rules[3] = {SC_IDENTITY_RULE("service"),
                                              SC_IDENTITY_RULE("env"),
                                              SC_IDENTITY_RULE("version")};
    const sc_client_identity_t *id = sc_server_conn_identity(conn);
    const char *hello[3] = {id->service, id->env, id->version};
    sc_view_t *values[3] = {service, env, version};
    for (int i = 0; i < 3; i++) {
        const char *why = sc_identity_string_error(*values[i], &rules[i]);
        if (why != NULL) {
            return why;
        }
        if (values[i]->ptr == NULL) {
            *values[i] = sc_view_str(hello[i]);
        }
    }
    return NULL;
}

static sc_flageval_t *context_aggregator(sc_route_t *d, sc_view_t service,
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

/* Evaluations a batch counts: its buckets' counts and its `dropped`. */
static uint64_t batch_evaluations(const sidecar_v1_FlagEvaluationBatch *m)
{
    uint64_t n = m->dropped;
    sc_list_iter_t it;
    sidecar_v1_FlagEvaluation e;
    sc_list_iter_init(&it, &m->evaluations);
    while (SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e) == 1) {
        n += e.evaluation_count;
    }
    return n;
}

sc_handler_result_t
sc_daemon_on_flag_evaluations(void *ctx, sc_server_conn_t *conn,
                              const sidecar_v1_FlagEvaluationBatch *m)
{
    sc_daemon_t *d = ctx;
    sc_view_t service = m->service, env = m->env, version = m->version;
    const char *why = batch_context(conn, &service, &env, &version);
    if (why != NULL) {
        d->flag_batches_rejected++;
        return why;
    }
    /* A connection whose counts are switched off: the batch is checked (a
     * disabled aggregator only validates) and counted, never delivered. */
    bool enabled = sc_server_conn_flag_counts_enabled(conn);
    sc_route_t *route = sc_daemon_route_of(d, conn);
    sc_flageval_t *agg = enabled
                             ? context_aggregator(route, service, env, version)
                             : d->disabled_agg;
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
         * refused whole (the merge validates before it merges). */
        d->flag_batches_rejected++;
        return error != NULL ? error : "invalid flag evaluation batch";
    }
    if (!enabled) {
        d->flag_batches_disabled++;
        d->flag_evaluations_disabled += batch_evaluations(m);
    }
    return SC_HANDLED;
}

static bool submit_body(void *ctx, const sc_buf_t *body, size_t events)
{
    sc_route_t *r = ctx;
    sc_flusher_submit_evp(r->flusher, SC_DEST_FLAGEVALUATIONS, body->data,
                          body->len, (uint32_t)events);
    return true;
}

/* Each route's aggregators go to that route's agent only. */
static void flush_route(sc_route_t *r)
{
    for (size_t i = 0; i < r->context_count; i++) {
        sc_flag_context_t *c = &r->contexts[i];
        sc_flageval_batch_t batch;
        sc_flageval_drain(c->agg, &batch);
        sc_flageval_json_opts_t opts = {
            .service = sc_view_str(c->service),
            .env = sc_view_str(c->env),
            .version = sc_view_str(c->version),
        };
        sc_flageval_json_bodies(&batch, &opts, submit_body, r, NULL);
        sc_flageval_batch_free(&batch);
    }
}

void sc_daemon_flush_flag_evaluations(sc_daemon_t *d)
{
    for (size_t i = 0; i < d->route_count; i++) {
        flush_route(d->routes[i]);
    }
}

void sc_daemon_flag_stats(sc_daemon_t *d, sc_stats_t *st)
{
    sc_stats_flags_t *f = &st->flags;
    for (size_t r = 0; r < d->route_count; r++) {
        const sc_route_t *route = d->routes[r];
        for (size_t i = 0; i < route->context_count; i++) {
            sc_flageval_stats_t s;
            sc_flageval_get_stats(route->contexts[i].agg, &s);
            f->evaluations += s.evaluations;
            f->dropped += s.dropped_overflow + s.dropped_upstream;
            f->rejected += s.rejected;
            f->full_buckets += s.full_buckets;
            f->degraded_buckets += s.degraded_buckets;
        }
        f->contexts += route->context_count;
    }
    f->batches_rejected = d->flag_batches_rejected;
    f->batches_without_context = d->flag_batches_no_context;
    f->batches_disabled = d->flag_batches_disabled;
    f->evaluations_disabled = d->flag_evaluations_disabled;
    st->exposures.sent = d->exposures_sent;
    st->exposures.batches_rejected = d->exposure_batches_rejected;
    st->exposures.attributes_skipped = d->exposure_attributes_skipped;
}

void sc_daemon_free_contexts(sc_route_t *d)
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

/* ---- exposures: one body per batch (exposure_json.h) ----------------------
 */

sc_handler_result_t sc_daemon_on_exposures(void *ctx, sc_server_conn_t *conn,
                                           const sidecar_v1_ExposureBatch *m)
{
    sc_daemon_t *d = ctx;
    sc_view_t context[3] = {m->service, m->env, m->version};
    const char *why =
        batch_context(conn, &context[0], &context[1], &context[2]);
    sc_exposure_body_t b;
    sc_exposure_body_init(&b);
    if (why == NULL) {
        why = sc_exposure_json_body(&b, m, context);
    }
    if (why != NULL) {
        d->exposure_batches_rejected++;
    } else {
        d->exposure_attributes_skipped += b.skipped;
        if (b.count > 0) {
            d->exposures_sent += b.count;
            sc_flusher_submit_evp(sc_daemon_route_of(d, conn)->flusher,
                                  SC_DEST_EXPOSURES, b.out.data, b.out.len,
                                  (uint32_t)b.count);
        }
    }
    sc_exposure_body_free(&b);
    return why;
}
