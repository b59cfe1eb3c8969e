/* Shared by the files of the flag-evaluation aggregator, by job:
 *   flageval.c         the aggregator itself: its tables and buckets (the
 *                      storage), configuration and the kill switch, new and
 *                      free, the fork handlers, stats;
 *   flageval_record.c  the record path: from an evaluation to a count
 *                      (validation, the identity bytes, the seeded hash, the
 *                      tier under the lock);
 *   flageval_drain.c   draining the aggregator into a sorted batch and
 *                      reading the batch's buckets.
 * flageval.h is the module's interface; nothing else includes this file.
 * Functions named sc_flageval__* are internal to these files; the table
 * probe and the bucket layout are static inline here because every record
 * runs them. */
#ifndef SIDECAR_FLAGEVAL_INTERNAL_H
#define SIDECAR_FLAGEVAL_INTERNAL_H

#include "flageval.h"

#include <stddef.h>
#include <string.h>
#include <uv.h>

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

static inline size_t sc_flageval__cold_offset(size_t key_len)
{
    size_t at = offsetof(sc_flageval_bucket_t, key) + key_len;
    size_t align = _Alignof(fe_cold_t);
    return (at + align - 1) / align * align;
}

static inline size_t sc_flageval__bucket_size(size_t key_len)
{
    return sc_flageval__cold_offset(key_len) + sizeof(fe_cold_t);
}

static inline fe_cold_t *sc_flageval__cold_of(sc_flageval_bucket_t *b)
{
    return (fe_cold_t *)(void *)((uint8_t *)b +
                                 sc_flageval__cold_offset(b->entry.key_len));
}

static inline const fe_cold_t *
sc_flageval__cold_of_const(const sc_flageval_bucket_t *b)
{
    return (const fe_cold_t *)(const void *)((const uint8_t *)b +
                                             sc_flageval__cold_offset(
                                                 b->entry.key_len));
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

/* The entry of `t` with this key, or NULL (lock held). */
static inline fe_entry_t *sc_flageval__table_find(const fe_table_t *t,
                                                  uint64_t hash,
                                                  const uint8_t *key,
                                                  size_t len)
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

/* flageval.c: the tables and the buckets' memory (lock held, or tables not
 * yet published / already taken out) */

/* Inserts an entry known to be absent; false when out of memory. */
bool sc_flageval__table_insert(fe_table_t *t, fe_entry_t *e);
/* The table's entries as an array the caller owns (the slots' own memory,
 * so it cannot fail); leaves the table empty. */
fe_entry_t **sc_flageval__table_take(fe_table_t *t, size_t *count);
/* An owned copy of `v` (absent stays absent); false when out of memory. */
bool sc_flageval__str_set(fe_str_t *s, sc_view_t v);
/* A bucket holding the first `key_len` bytes of in->key and in's count and
 * times (and, in the full tier, its rule and error); NULL when out of
 * memory. */
sc_flageval_bucket_t *sc_flageval__bucket_new(const fe_input_t *in,
                                              size_t key_len, uint64_t hash,
                                              bool degraded);
void sc_flageval__bucket_free(sc_flageval_bucket_t *b);

#endif
