/* Draining: the tables and counters taken out under the lock, then (after
 * it is released) gathered into one batch sorted by tier and identity; a
 * batch's buckets read back as views of their identity bytes. */
#include "flageval_internal.h"

#include "log.h"

#include <stdlib.h>

/* ---- draining --------------------------------------------------------- */

static sc_view_t str_view(const fe_str_t *s)
{
    return sc_view_bytes(s->ptr, s->len);
}

static int compare_buckets(const void *pa, const void *pb)
{
    const sc_flageval_bucket_t *a = *(const sc_flageval_bucket_t *const *)pa;
    const sc_flageval_bucket_t *b = *(const sc_flageval_bucket_t *const *)pb;
    bool a_degraded = sc_flageval__cold_of_const(a)->degraded;
    if (a_degraded != sc_flageval__cold_of_const(b)->degraded) {
        return a_degraded ? 1 : -1;
    }
    size_t n = a->entry.key_len < b->entry.key_len ? a->entry.key_len
                                                   : b->entry.key_len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0) {
        return c;
    }
    return a->entry.key_len < b->entry.key_len
               ? -1
               : a->entry.key_len > b->entry.key_len;
}

void sc_flageval_drain(sc_flageval_t *agg, sc_flageval_batch_t *out)
{
    memset(out, 0, sizeof *out);
    if (!agg->config.enabled) {
        return;
    }
    uv_mutex_lock(&agg->mutex);
    fe_table_t full = agg->full, degraded = agg->degraded, flags = agg->flags;
    memset(&agg->full, 0, sizeof agg->full);
    memset(&agg->degraded, 0, sizeof agg->degraded);
    memset(&agg->flags, 0, sizeof agg->flags);
    agg->full_bytes = 0;
    out->dropped_overflow = agg->pending_overflow;
    out->rejected = agg->pending_rejected;
    out->dropped_upstream = agg->pending_upstream;
    agg->pending_overflow = agg->pending_rejected = agg->pending_upstream = 0;
    uv_mutex_unlock(&agg->mutex);

    size_t n_flags;
    fe_entry_t **flag_entries = sc_flageval__table_take(&flags, &n_flags);
    for (size_t i = 0; i < n_flags; i++) {
        free(flag_entries[i]);
    }
    free(flag_entries);

    size_t n_full, n_degraded;
    fe_entry_t **full_entries = sc_flageval__table_take(&full, &n_full);
    fe_entry_t **degraded_entries =
        sc_flageval__table_take(&degraded, &n_degraded);
    size_t n = n_full + n_degraded;
    fe_entry_t **all =
        n > 0 ? realloc(full_entries, n * sizeof *all) : full_entries;
    if (n > 0 && all == NULL) {
        /* Out of memory: the evaluations are lost, but counted. */
        fe_entry_t **parts[] = {full_entries, degraded_entries};
        size_t counts[] = {n_full, n_degraded};
        for (size_t p = 0; p < 2; p++) {
            for (size_t i = 0; i < counts[p]; i++) {
                sc_flageval_bucket_t *b = (sc_flageval_bucket_t *)parts[p][i];
                out->rejected += b->count;
                sc_flageval__bucket_free(b);
            }
        }
        free(full_entries);
        n = 0;
    } else if (n_degraded > 0) {
        memcpy(all + n_full, degraded_entries,
               n_degraded * sizeof *degraded_entries);
    }
    free(degraded_entries);
    out->buckets = n > 0 ? (sc_flageval_bucket_t **)all : NULL;
    if (n == 0) {
        free(all);
    }
    out->count = n;
    for (size_t i = 0; i < n; i++) {
        sc_flageval__cold_of(out->buckets[i])->flag = NULL; /* freed above */
        out->evaluations += out->buckets[i]->count;
    }
    if (n > 1) {
        qsort(out->buckets, n, sizeof *out->buckets, compare_buckets);
    }
    out->dropped =
        out->dropped_overflow + out->rejected + out->dropped_upstream;
    if (out->dropped > 0) {
        SC_LOG_LIMITED(SC_LOG_WARN,
                       "flag evaluations: %llu not counted in any bucket "
                       "since the last drain (%llu over the degraded cap "
                       "of %zu buckets, %llu rejected, %llu dropped by "
                       "clients)",
                       (unsigned long long)out->dropped,
                       (unsigned long long)out->dropped_overflow,
                       agg->config.degraded_cap,
                       (unsigned long long)out->rejected,
                       (unsigned long long)out->dropped_upstream);
    }
}

/* Takes dim() off the front of a key. */
static const uint8_t *parse_dim(const uint8_t *p, sc_view_t *v)
{
    if (*p++ == 0) {
        *v = sc_view_bytes(NULL, 0);
        return p;
    }
    size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 |
                 (size_t)p[3] << 24;
    *v = sc_view_bytes(p + 4, len);
    return p + 4 + len;
}

void sc_flageval_batch_bucket(const sc_flageval_batch_t *batch, size_t i,
                              sc_flageval_bucket_view_t *view)
{
    const sc_flageval_bucket_t *b = batch->buckets[i];
    memset(view, 0, sizeof *view);
    const uint8_t *p = b->key;
    const uint8_t *end = b->key + b->entry.key_len;
    p = parse_dim(p, &view->flag_key);
    p = parse_dim(p, &view->variant_key);
    p = parse_dim(p, &view->allocation_key);
    p = parse_dim(p, &view->reason);
    const fe_cold_t *c = sc_flageval__cold_of_const(b);
    if (!c->degraded) {
        p = parse_dim(p, &view->targeting_key);
        view->context = sc_view_bytes(p, (size_t)(end - p));
        view->targeting_rule_key = str_view(&c->rule);
        view->error_message = str_view(&c->error);
    }
    view->evaluation_count = b->count;
    view->first_evaluation_ms = b->first_ms;
    view->last_evaluation_ms = b->last_ms;
    view->degraded = c->degraded;
    view->runtime_default_used = view->variant_key.len == 0;
}

void sc_flageval_batch_free(sc_flageval_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; i++) {
        sc_flageval__bucket_free(batch->buckets[i]);
    }
    free(batch->buckets);
    memset(batch, 0, sizeof *batch);
}
