/* The record path: from an evaluation (or a client's merged bucket) to a
 * count. Outside the lock: validation, the identity bytes (flageval_context.c
 * writes the canonical context), the seeded hash. Under it: the full tier
 * when its caps admit the bucket, else the degraded tier, else dropped. The
 * key layout is described in flageval_internal.h. */
#include "flageval_internal.h"

#include "platform.h"

#include <stdlib.h>

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

/* ---- counting (lock held) --------------------------------------------- */

static void bucket_add(sc_flageval_t *agg, sc_flageval_bucket_t *b,
                       const fe_input_t *in)
{
    b->count += in->count;
    if (in->first_ms < b->first_ms) {
        /* The carried rule and error are those of the earliest
         * evaluation; if the copies cannot be made the old ones stay. */
        fe_str_t rule, error;
        fe_cold_t *c = sc_flageval__cold_of(b);
        if (!c->degraded && sc_flageval__str_set(&rule, in->rule)) {
            if (sc_flageval__str_set(&error, in->error)) {
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
    fe_flag_t *flag = (fe_flag_t *)sc_flageval__table_find(
        &agg->flags, flag_hash, flag_key, flag_len);
    if (flag != NULL && flag->full_buckets >= cfg->per_flag_cap) {
        return false;
    }
    size_t bytes = sc_flageval__bucket_size(in->key_len) +
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
        if (!sc_flageval__table_insert(&agg->flags, &flag->entry)) {
            free(flag);
            return false;
        }
        agg->full_bytes += sizeof *flag + flag_len;
    }
    sc_flageval_bucket_t *b =
        sc_flageval__bucket_new(in, in->key_len, in->hash, false);
    if (b == NULL) {
        return false;
    }
    if (!sc_flageval__table_insert(&agg->full, &b->entry)) {
        sc_flageval__bucket_free(b);
        return false;
    }
    sc_flageval__cold_of(b)->flag = flag;
    flag->full_buckets++;
    agg->full_bytes += sc_flageval__cold_of(b)->bytes;
    return true;
}

static sc_flageval_outcome_t add_locked(sc_flageval_t *agg,
                                        const fe_input_t *in)
{
    if (!in->degraded_only) {
        sc_flageval_bucket_t *b =
            (sc_flageval_bucket_t *)sc_flageval__table_find(
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
    sc_flageval_bucket_t *b = (sc_flageval_bucket_t *)sc_flageval__table_find(
        &agg->degraded, hash, in->key, in->degraded_len);
    if (b != NULL) {
        bucket_add(agg, b, in);
        return SC_FLAGEVAL_DEGRADED;
    }
    if (agg->degraded.count < agg->config.degraded_cap) {
        b = sc_flageval__bucket_new(in, in->degraded_len, hash, true);
        if (b != NULL && sc_flageval__table_insert(&agg->degraded, &b->entry)) {
            return SC_FLAGEVAL_DEGRADED;
        }
        if (b != NULL) {
            sc_flageval__bucket_free(b);
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
