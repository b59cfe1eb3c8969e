/* The flag-evaluation aggregator: two open-addressing tables of buckets
 * (full, degraded) and a table of per-flag full-bucket counts, behind one
 * mutex. The identity of a bucket is one byte string (its "key"):
 *
 *     dim(flag) dim(variant) dim(allocation) dim(reason)   <- degraded key
 *     dim(targeting key) canonical-context                 <- full key
 *
 * where dim(absent) is the byte 0 and dim(s) is 1, u32le(len), bytes. Every
 * part is self-delimiting, so equal keys mean equal identities, and the
 * degraded key of an evaluation is a prefix of its full key. The hash only
 * picks the slot; a match is always a full byte comparison. */
#include "flageval.h"

#include "json.h"
#include "log.h"
#include "platform.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* An entry of a table: the identity bytes and their hash. */
typedef struct fe_entry {
    uint64_t hash;
    const uint8_t *key;
    size_t key_len;
} fe_entry_t;

/* A slot keeps the entry's hash beside the pointer, so that probing past
 * other entries reads no entry (a cache miss each). */
typedef struct fe_slot {
    uint64_t hash;
    fe_entry_t *entry; /* NULL: free */
} fe_slot_t;

/* Linear probing, load factor at most 1/2, no deletion (a drain takes the
 * whole table). slots == NULL until the first insert. */
typedef struct fe_table {
    fe_slot_t *slots;
    size_t mask;
    size_t count;
} fe_table_t;

typedef struct fe_flag {
    fe_entry_t entry;
    size_t full_buckets;
    uint8_t key[];
} fe_flag_t;

/* An owned copy of an optional string (ptr == NULL: absent). */
typedef struct fe_str {
    uint8_t *ptr;
    size_t len;
} fe_str_t;

/* A bucket is one allocation: what counting touches (the entry, the
 * count and times, the key right after them, so a hit reads few cache
 * lines), then, after the key, what only creation and draining read. */
struct sc_flageval_bucket {
    fe_entry_t entry;
    uint64_t count;
    int64_t first_ms;
    int64_t last_ms;
    uint8_t key[]; /* entry.key_len bytes, then the bucket's fe_cold_t */
};

typedef struct fe_cold {
    fe_flag_t *flag; /* full tier, until drained */
    fe_str_t rule;
    fe_str_t error;
    size_t bytes; /* charged to full_bytes */
    bool degraded;
} fe_cold_t;

static size_t cold_offset(size_t key_len)
{
    size_t at = offsetof(sc_flageval_bucket_t, key) + key_len;
    size_t align = _Alignof(fe_cold_t);
    return (at + align - 1) / align * align;
}

static size_t bucket_size(size_t key_len)
{
    return cold_offset(key_len) + sizeof(fe_cold_t);
}

static fe_cold_t *cold_of(sc_flageval_bucket_t *b)
{
    return (fe_cold_t *)(void *)((uint8_t *)b + cold_offset(b->entry.key_len));
}

static const fe_cold_t *cold_of_const(const sc_flageval_bucket_t *b)
{
    return (const fe_cold_t *)(const void *)((const uint8_t *)b +
                                             cold_offset(b->entry.key_len));
}

struct sc_flageval {
    uv_mutex_t mutex;
    sc_flageval_config_t config;
    uint64_t seed[2];
    fe_table_t full;
    fe_table_t degraded;
    fe_table_t flags;
    size_t full_bytes;
    uint64_t pending_overflow;
    uint64_t pending_rejected;
    uint64_t pending_upstream;
    sc_flageval_stats_t totals;
};

/* What one record or merge adds, prepared outside the lock. */
typedef struct fe_input {
    const uint8_t *key;
    size_t key_len;
    size_t degraded_len;
    uint64_t hash; /* of the full key, or of the degraded key when
                      degraded_only */
    bool degraded_only;
    sc_view_t rule;
    sc_view_t error;
    uint64_t count;
    int64_t first_ms;
    int64_t last_ms;
} fe_input_t;

/* ---- hashing ---------------------------------------------------------- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL64(v1, 13);                                                   \
        v1 ^= v0;                                                              \
        v0 = ROTL64(v0, 32);                                                   \
        v2 += v3;                                                              \
        v3 = ROTL64(v3, 16);                                                   \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL64(v3, 21);                                                   \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL64(v1, 17);                                                   \
        v1 ^= v2;                                                              \
        v2 = ROTL64(v2, 32);                                                   \
    } while (0)

uint64_t sc_flageval_siphash13(uint64_t k0, uint64_t k1, const void *data,
                               size_t len)
{
    const uint8_t *p = data;
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0;
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0;
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ k1;
    size_t blocks = len / 8;
    for (size_t i = 0; i < blocks; i++, p += 8) {
        uint64_t m;
        memcpy(&m, p, sizeof m); /* SipHash reads little-endian words */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        m = __builtin_bswap64(m);
#endif
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t k = 0; k < len % 8; k++) {
        b |= (uint64_t)p[k] << (8 * k);
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_bytes(const sc_flageval_t *agg, const uint8_t *p, size_t n)
{
    return sc_flageval_siphash13(agg->seed[0], agg->seed[1], p, n);
}

/* The hash of a thread's remembered context (flageval_context.h), for one
 * aggregator's seed. */
typedef struct context_hash_memo {
    uint64_t generation, seed0, seed1, hash;
} context_hash_memo_t;

static _Thread_local context_hash_memo_t context_hash_memo;

/* The hash of a full key: its dimensions hashed with a key that mixes in
 * the seeded hash of its canonical context. The context is the same for
 * every evaluation of a request, so its hash is taken once per request
 * (`generation`, see sc_flageval_context_append) and each record hashes
 * only the few dozen bytes of its dimensions. Still keyed by the secret
 * seed throughout. */
static uint64_t full_key_hash(const sc_flageval_t *agg, const uint8_t *key,
                              size_t context_at, size_t key_len,
                              uint64_t generation)
{
    context_hash_memo_t *m = &context_hash_memo;
    uint64_t context;
    if (generation != 0 && m->generation == generation &&
        m->seed0 == agg->seed[0] && m->seed1 == agg->seed[1]) {
        context = m->hash;
    } else {
        context = hash_bytes(agg, key + context_at, key_len - context_at);
        if (generation != 0) {
            *m = (context_hash_memo_t){generation, agg->seed[0], agg->seed[1],
                                       context};
        }
    }
    return sc_flageval_siphash13(agg->seed[0] ^ context, agg->seed[1], key,
                                 context_at);
}

/* ---- tables ----------------------------------------------------------- */

static fe_entry_t *table_find(const fe_table_t *t, uint64_t hash,
                              const uint8_t *key, size_t len)
{
    if (t->slots == NULL) {
        return NULL;
    }
    for (size_t i = (size_t)hash & t->mask;; i = (i + 1) & t->mask) {
        const fe_slot_t *s = &t->slots[i];
        if (s->entry == NULL) {
            return NULL;
        }
        if (s->hash == hash && s->entry->key_len == len &&
            memcmp(s->entry->key, key, len) == 0) {
            return s->entry;
        }
    }
}

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
static bool table_insert(fe_table_t *t, fe_entry_t *e)
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
static fe_entry_t **table_take(fe_table_t *t, size_t *count)
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

static bool str_set(fe_str_t *s, sc_view_t v)
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

static sc_view_t str_view(const fe_str_t *s)
{
    return sc_view_bytes(s->ptr, s->len);
}

static void bucket_free(sc_flageval_bucket_t *b)
{
    fe_cold_t *c = cold_of(b);
    free(c->rule.ptr);
    free(c->error.ptr);
    free(b);
}

static sc_flageval_bucket_t *bucket_new(const fe_input_t *in, size_t key_len,
                                        uint64_t hash, bool degraded)
{
    sc_flageval_bucket_t *b = malloc(bucket_size(key_len));
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
    fe_cold_t *c = cold_of(b);
    c->flag = NULL;
    c->degraded = degraded;
    c->rule.ptr = c->error.ptr = NULL;
    c->rule.len = c->error.len = 0;
    if (!degraded &&
        (!str_set(&c->rule, in->rule) || !str_set(&c->error, in->error))) {
        bucket_free(b);
        return NULL;
    }
    c->bytes = bucket_size(key_len) + c->rule.len + c->error.len;
    return b;
}

static void bucket_add(sc_flageval_t *agg, sc_flageval_bucket_t *b,
                       const fe_input_t *in)
{
    b->count += in->count;
    if (in->first_ms < b->first_ms) {
        /* The carried rule and error are those of the earliest
         * evaluation; if the copies cannot be made the old ones stay. */
        fe_str_t rule, error;
        fe_cold_t *c = cold_of(b);
        if (!c->degraded && str_set(&rule, in->rule)) {
            if (str_set(&error, in->error)) {
                size_t before = c->rule.len + c->error.len;
                free(c->rule.ptr);
                free(c->error.ptr);
                c->rule = rule;
                c->error = error;
                agg->full_bytes += rule.len + error.len;
                agg->full_bytes -= before;
                c->bytes += rule.len + error.len;
                c->bytes -= before;
            } else {
                free(rule.ptr);
            }
        }
        b->first_ms = in->first_ms;
    }
    if (in->last_ms > b->last_ms) {
        b->last_ms = in->last_ms;
    }
}

/* A new full-tier bucket, if the caps admit it. */
static bool insert_full(sc_flageval_t *agg, const fe_input_t *in)
{
    const sc_flageval_config_t *cfg = &agg->config;
    if (agg->full.count >= cfg->global_cap) {
        return false;
    }
    /* The flag is the first dimension: present byte, u32 length, bytes. */
    const uint8_t *flag_key = in->key + 5;
    size_t flag_len = (size_t)in->key[1] | (size_t)in->key[2] << 8 |
                      (size_t)in->key[3] << 16 | (size_t)in->key[4] << 24;
    uint64_t flag_hash = hash_bytes(agg, flag_key, flag_len);
    fe_flag_t *flag =
        (fe_flag_t *)table_find(&agg->flags, flag_hash, flag_key, flag_len);
    if (flag != NULL && flag->full_buckets >= cfg->per_flag_cap) {
        return false;
    }
    size_t bytes = bucket_size(in->key_len) +
                   (in->rule.ptr != NULL ? in->rule.len : 0) +
                   (in->error.ptr != NULL ? in->error.len : 0) +
                   (flag == NULL ? sizeof *flag + flag_len : 0);
    if (bytes > cfg->full_bytes_cap - agg->full_bytes ||
        agg->full_bytes > cfg->full_bytes_cap) {
        return false;
    }
    if (flag == NULL) {
        flag = malloc(sizeof *flag + flag_len);
        if (flag == NULL) {
            return false;
        }
        memcpy(flag->key, flag_key, flag_len);
        flag->entry.hash = flag_hash;
        flag->entry.key = flag->key;
        flag->entry.key_len = flag_len;
        flag->full_buckets = 0;
        if (!table_insert(&agg->flags, &flag->entry)) {
            free(flag);
            return false;
        }
        agg->full_bytes += sizeof *flag + flag_len;
    }
    sc_flageval_bucket_t *b = bucket_new(in, in->key_len, in->hash, false);
    if (b == NULL) {
        return false;
    }
    if (!table_insert(&agg->full, &b->entry)) {
        bucket_free(b);
        return false;
    }
    cold_of(b)->flag = flag;
    flag->full_buckets++;
    agg->full_bytes += cold_of(b)->bytes;
    return true;
}

static sc_flageval_outcome_t add_locked(sc_flageval_t *agg,
                                        const fe_input_t *in)
{
    if (!in->degraded_only) {
        sc_flageval_bucket_t *b = (sc_flageval_bucket_t *)table_find(
            &agg->full, in->hash, in->key, in->key_len);
        if (b != NULL) {
            bucket_add(agg, b, in);
            return SC_FLAGEVAL_FULL;
        }
        if (insert_full(agg, in)) {
            return SC_FLAGEVAL_FULL;
        }
    }
    uint64_t hash = in->degraded_only
                        ? in->hash
                        : hash_bytes(agg, in->key, in->degraded_len);
    sc_flageval_bucket_t *b = (sc_flageval_bucket_t *)table_find(
        &agg->degraded, hash, in->key, in->degraded_len);
    if (b != NULL) {
        bucket_add(agg, b, in);
        return SC_FLAGEVAL_DEGRADED;
    }
    if (agg->degraded.count < agg->config.degraded_cap) {
        b = bucket_new(in, in->degraded_len, hash, true);
        if (b != NULL && table_insert(&agg->degraded, &b->entry)) {
            return SC_FLAGEVAL_DEGRADED;
        }
        if (b != NULL) {
            bucket_free(b);
        }
        agg->pending_rejected += in->count; /* out of memory */
        agg->totals.rejected += in->count;
        return SC_FLAGEVAL_REJECTED;
    }
    agg->pending_overflow += in->count;
    agg->totals.dropped_overflow += in->count;
    return SC_FLAGEVAL_DROPPED;
}

/* ---- recording -------------------------------------------------------- */

static void put_dim(sc_flageval_keybuf_t *kb, sc_view_t v)
{
    if (v.ptr != NULL && 5 + v.len <= kb->cap - kb->len) {
        /* The usual case, written in place. */
        uint8_t *p = kb->data + kb->len;
        p[0] = 1;
        p[1] = (uint8_t)v.len;
        p[2] = (uint8_t)(v.len >> 8);
        p[3] = (uint8_t)(v.len >> 16);
        p[4] = (uint8_t)(v.len >> 24);
        memcpy(p + 5, v.ptr, v.len);
        kb->len += 5 + v.len;
        return;
    }
    uint8_t present = v.ptr != NULL;
    sc_flageval_keybuf_append(kb, &present, 1);
    if (present) {
        sc_flageval_keybuf_put_u32(kb, (uint32_t)v.len);
        sc_flageval_keybuf_append(kb, v.ptr, v.len);
    }
}

static bool too_long(sc_view_t v, size_t max)
{
    return v.ptr != NULL && v.len > max;
}

/* The longest prefix of `v` of at most `max` bytes that does not end inside
 * a UTF-8 sequence. */
static sc_view_t cut_utf8(sc_view_t v, size_t max)
{
    size_t n = max;
    while (n > 0 && (v.ptr[n] & 0xC0) == 0x80) {
        n--; /* v.ptr[n] continues the character before it */
    }
    return sc_view_bytes(v.ptr, n);
}

int64_t sc_flageval_now_ms(void)
{
    return sc_plat_wall_ms_coarse();
}

static sc_flageval_outcome_t reject(sc_flageval_t *agg, uint64_t count)
{
    uv_mutex_lock(&agg->mutex);
    agg->pending_rejected += count;
    agg->totals.evaluations += count;
    agg->totals.rejected += count;
    uv_mutex_unlock(&agg->mutex);
    return SC_FLAGEVAL_REJECTED;
}

sc_flageval_outcome_t sc_flageval_merge(sc_flageval_t *agg,
                                        const sc_flageval_eval_t *ev,
                                        uint64_t count, int64_t first_ms,
                                        int64_t last_ms, bool degraded)
{
    if (!agg->config.enabled) {
        return SC_FLAGEVAL_DISABLED;
    }
    if (count == 0) {
        return SC_FLAGEVAL_FULL; /* nothing to add */
    }
    const size_t max = SC_FLAGEVAL_MAX_KEY_LEN;
    if (ev->flag_key.ptr == NULL || ev->flag_key.len == 0 ||
        too_long(ev->flag_key, max) || too_long(ev->variant_key, max) ||
        too_long(ev->allocation_key, max) || too_long(ev->reason, max)) {
        return reject(agg, count);
    }
    fe_input_t in = {.count = count, .first_ms = first_ms, .last_ms = last_ms};
    bool long_key = !degraded && too_long(ev->targeting_key, max);
    in.degraded_only = degraded || long_key;
    uint64_t shortened = 0;
    size_t skipped = 0;
    if (!in.degraded_only) {
        in.rule = ev->targeting_rule_key;
        if (too_long(in.rule, max)) {
            in.rule = sc_view_bytes(NULL, 0);
            shortened++;
        }
        in.error = ev->error_message;
        if (too_long(in.error, SC_FLAGEVAL_MAX_ERROR_LEN)) {
            in.error = cut_utf8(in.error, SC_FLAGEVAL_MAX_ERROR_LEN);
            shortened++;
        }
    }

    sc_flageval_keybuf_t kb;
    sc_flageval_keybuf_init(&kb);
    put_dim(&kb, ev->flag_key);
    put_dim(&kb, ev->variant_key);
    put_dim(&kb, ev->allocation_key);
    put_dim(&kb, ev->reason);
    in.degraded_len = kb.len;
    size_t context_at = 0;
    uint64_t generation = 0;
    if (!in.degraded_only) {
        put_dim(&kb, ev->targeting_key);
        context_at = kb.len;
        sc_flageval_context_append(ev->context, ev->context_len, &kb, &skipped,
                                   &generation);
    }
    if (kb.failed) {
        sc_flageval_keybuf_free(&kb);
        return reject(agg, count);
    }
    in.key = kb.data;
    in.key_len = in.degraded_only ? in.degraded_len : kb.len;
    in.hash = in.degraded_only ? hash_bytes(agg, in.key, in.key_len)
                               : full_key_hash(agg, in.key, context_at,
                                               in.key_len, generation);

    uv_mutex_lock(&agg->mutex);
    sc_flageval_outcome_t outcome = add_locked(agg, &in);
    agg->totals.evaluations += count;
    agg->totals.degraded_long_key += long_key ? count : 0;
    agg->totals.strings_shortened += shortened;
    agg->totals.attributes_skipped += skipped;
    uv_mutex_unlock(&agg->mutex);
    sc_flageval_keybuf_free(&kb);
    return outcome;
}

sc_flageval_outcome_t sc_flageval_record(sc_flageval_t *agg,
                                         const sc_flageval_eval_t *ev)
{
    if (!agg->config.enabled) {
        return SC_FLAGEVAL_DISABLED; /* not even the clock is read */
    }
    int64_t ts =
        ev->timestamp_ms != 0 ? ev->timestamp_ms : sc_flageval_now_ms();
    return sc_flageval_merge(agg, ev, 1, ts, ts, false);
}

void sc_flageval_add_dropped(sc_flageval_t *agg, uint64_t n)
{
    if (!agg->config.enabled || n == 0) {
        return;
    }
    uv_mutex_lock(&agg->mutex);
    agg->pending_upstream += n;
    agg->totals.evaluations += n;
    agg->totals.dropped_upstream += n;
    uv_mutex_unlock(&agg->mutex);
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
        fe_entry_t **slots = table_take(tables[t], &n);
        for (size_t i = 0; i < n; i++) {
            bucket_free((sc_flageval_bucket_t *)slots[i]);
        }
        free(slots);
    }
    size_t n;
    fe_entry_t **flags = table_take(&agg->flags, &n);
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

/* ---- draining --------------------------------------------------------- */

static int compare_buckets(const void *pa, const void *pb)
{
    const sc_flageval_bucket_t *a = *(const sc_flageval_bucket_t *const *)pa;
    const sc_flageval_bucket_t *b = *(const sc_flageval_bucket_t *const *)pb;
    bool a_degraded = cold_of_const(a)->degraded;
    if (a_degraded != cold_of_const(b)->degraded) {
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
    fe_entry_t **flag_entries = table_take(&flags, &n_flags);
    for (size_t i = 0; i < n_flags; i++) {
        free(flag_entries[i]);
    }
    free(flag_entries);

    size_t n_full, n_degraded;
    fe_entry_t **full_entries = table_take(&full, &n_full);
    fe_entry_t **degraded_entries = table_take(&degraded, &n_degraded);
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
                bucket_free(b);
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
        cold_of(out->buckets[i])->flag = NULL; /* freed above */
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
    const fe_cold_t *c = cold_of_const(b);
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
        bucket_free(batch->buckets[i]);
    }
    free(batch->buckets);
    memset(batch, 0, sizeof *batch);
}
