/* The aggregator itself: the open-addressing tables and the buckets' memory
 * (the storage flageval_record.c counts into and flageval_drain.c takes out),
 * configuration and the kill switch, new and free, the fork handlers and
 * stats. The key layout is described in flageval_internal.h. */
#include "flageval_internal.h"

#include <stdlib.h>

/* ---- tables ----------------------------------------------------------- */

static void table_place(fe_slot_t *slots, size_t mask, fe_entry_t *e)
{
    size_t i = (size_t)e->hash & mask;
    while (slots[i].entry != NULL) {
        i = (i + 1) & mask;
    }
    slots[i].hash = e->hash;
    slots[i].entry = e;
}

/* Inserts an entry known to be absent; false when out of memory. */
bool sc_flageval__table_insert(fe_table_t *t, fe_entry_t *e)
{
    size_t capacity = t->slots != NULL ? t->mask + 1 : 0;
    if ((t->count + 1) * 2 > capacity) {
        size_t grown = capacity != 0 ? capacity * 2 : 64;
        fe_slot_t *slots = calloc(grown, sizeof *slots);
        if (slots == NULL) {
            return false;
        }
        for (size_t i = 0; i < capacity; i++) {
            if (t->slots[i].entry != NULL) {
                table_place(slots, grown - 1, t->slots[i].entry);
            }
        }
        free(t->slots);
        t->slots = slots;
        t->mask = grown - 1;
    }
    table_place(t->slots, t->mask, e);
    t->count++;
    return true;
}

/* Packs the entry pointers at the front of the slot array's memory;
 * returns it as an array of them (the caller owns it) and leaves the table
 * empty. The n-th pointer is written over bytes of slots already read (a
 * pointer is half a slot), so no allocation can fail here. */
fe_entry_t **sc_flageval__table_take(fe_table_t *t, size_t *count)
{
    fe_slot_t *slots = t->slots;
    uint8_t *out = (uint8_t *)slots;
    size_t n = 0;
    size_t capacity = slots != NULL ? t->mask + 1 : 0;
    for (size_t i = 0; i < capacity; i++) {
        fe_entry_t *e = slots[i].entry;
        if (e != NULL) {
            memcpy(out + n * sizeof e, &e, sizeof e);
            n++;
        }
    }
    *count = n;
    memset(t, 0, sizeof *t);
    return (fe_entry_t **)(void *)slots;
}

/* ---- buckets ---------------------------------------------------------- */

bool sc_flageval__str_set(fe_str_t *s, sc_view_t v)
{
    s->ptr = NULL;
    s->len = 0;
    if (v.ptr == NULL) {
        return true;
    }
    s->ptr = malloc(v.len > 0 ? v.len : 1); /* present and empty: non-NULL */
    if (s->ptr == NULL) {
        return false;
    }
    memcpy(s->ptr, v.ptr, v.len);
    s->len = v.len;
    return true;
}

void sc_flageval__bucket_free(sc_flageval_bucket_t *b)
{
    fe_cold_t *c = sc_flageval__cold_of(b);
    free(c->rule.ptr);
    free(c->error.ptr);
    free(b);
}

sc_flageval_bucket_t *sc_flageval__bucket_new(const fe_input_t *in,
                                              size_t key_len, uint64_t hash,
                                              bool degraded)
{
    sc_flageval_bucket_t *b = malloc(sc_flageval__bucket_size(key_len));
    if (b == NULL) {
        return NULL;
    }
    memcpy(b->key, in->key, key_len);
    b->entry.hash = hash;
    b->entry.key = b->key;
    b->entry.key_len = key_len;
    b->count = in->count;
    b->first_ms = in->first_ms;
    b->last_ms = in->last_ms;
    fe_cold_t *c = sc_flageval__cold_of(b);
    c->flag = NULL;
    c->degraded = degraded;
    c->rule.ptr = c->error.ptr = NULL;
    c->rule.len = c->error.len = 0;
    if (!degraded && (!sc_flageval__str_set(&c->rule, in->rule) ||
                      !sc_flageval__str_set(&c->error, in->error))) {
        sc_flageval__bucket_free(b);
        return NULL;
    }
    c->bytes = sc_flageval__bucket_size(key_len) + c->rule.len + c->error.len;
    return b;
}

/* ---- lifecycle -------------------------------------------------------- */

void sc_flageval_config_default(sc_flageval_config_t *cfg)
{
    cfg->global_cap = SC_FLAGEVAL_DEFAULT_GLOBAL_CAP;
    cfg->per_flag_cap = SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP;
    cfg->degraded_cap = SC_FLAGEVAL_DEFAULT_DEGRADED_CAP;
    cfg->full_bytes_cap = SC_FLAGEVAL_DEFAULT_FULL_BYTES_CAP;
    cfg->enabled = true;
}

static bool equals_ignore_case(const char *s, size_t n, const char *lower)
{
    if (strlen(lower) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != lower[i]) {
            return false;
        }
    }
    return true;
}

bool sc_flageval_counts_enabled(const char *value)
{
    if (value == NULL) {
        return true;
    }
    const char *end = value + strlen(value);
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    while (end > value && (end[-1] == ' ' || end[-1] == '\t' ||
                           end[-1] == '\n' || end[-1] == '\r')) {
        end--;
    }
    static const char *const off[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        if (equals_ignore_case(value, (size_t)(end - value), off[i])) {
            return false;
        }
    }
    return true;
}

sc_flageval_t *sc_flageval_new(const sc_flageval_config_t *cfg)
{
    sc_flageval_t *agg = calloc(1, sizeof *agg);
    if (agg == NULL) {
        return NULL;
    }
    if (cfg != NULL) {
        agg->config = *cfg;
    } else {
        sc_flageval_config_default(&agg->config);
    }
    if (uv_random(NULL, NULL, agg->seed, sizeof agg->seed, 0, NULL) != 0) {
        /* No system randomness: still differ per process and instance. */
        agg->seed[0] = uv_hrtime() ^ (uint64_t)(uintptr_t)agg;
        agg->seed[1] = (uint64_t)uv_os_getpid() * UINT64_C(0x9E3779B97F4A7C15);
    }
    if (uv_mutex_init(&agg->mutex) != 0) {
        free(agg);
        return NULL;
    }
    return agg;
}

static void free_contents(sc_flageval_t *agg)
{
    fe_table_t *tables[] = {&agg->full, &agg->degraded};
    for (size_t t = 0; t < 2; t++) {
        size_t n;
        fe_entry_t **slots = sc_flageval__table_take(tables[t], &n);
        for (size_t i = 0; i < n; i++) {
            sc_flageval__bucket_free((sc_flageval_bucket_t *)slots[i]);
        }
        free(slots);
    }
    size_t n;
    fe_entry_t **flags = sc_flageval__table_take(&agg->flags, &n);
    for (size_t i = 0; i < n; i++) {
        free(flags[i]);
    }
    free(flags);
    agg->full_bytes = 0;
    agg->pending_overflow = 0;
    agg->pending_rejected = 0;
    agg->pending_upstream = 0;
}

void sc_flageval_free(sc_flageval_t *agg)
{
    if (agg == NULL) {
        return;
    }
    free_contents(agg);
    uv_mutex_destroy(&agg->mutex);
    free(agg);
}

bool sc_flageval_enabled(const sc_flageval_t *agg)
{
    return agg->config.enabled;
}

void sc_flageval_set_enabled(sc_flageval_t *agg, bool enabled)
{
    uv_mutex_lock(&agg->mutex);
    agg->config.enabled = enabled;
    uv_mutex_unlock(&agg->mutex);
}

void sc_flageval_atfork_prepare(sc_flageval_t *agg)
{
    if (agg != NULL) {
        uv_mutex_lock(&agg->mutex);
    }
}

void sc_flageval_atfork_parent(sc_flageval_t *agg)
{
    if (agg != NULL) {
        uv_mutex_unlock(&agg->mutex);
    }
}

void sc_flageval_after_fork_child(sc_flageval_t *agg)
{
    if (agg == NULL) {
        return;
    }
    /* The tables are whole (prepare held the mutex, so no record was half
     * done); the mutex is the forking thread's copy, re-created. */
    uv_mutex_init(&agg->mutex);
    free_contents(agg);
}

void sc_flageval_get_stats(sc_flageval_t *agg, sc_flageval_stats_t *out)
{
    uv_mutex_lock(&agg->mutex);
    *out = agg->totals;
    out->full_buckets = agg->full.count;
    out->degraded_buckets = agg->degraded.count;
    out->full_bytes = agg->full_bytes;
    out->pending_dropped =
        agg->pending_overflow + agg->pending_rejected + agg->pending_upstream;
    uv_mutex_unlock(&agg->mutex);
}
