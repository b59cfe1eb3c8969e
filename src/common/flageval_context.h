/* Evaluation-context attributes of a flag evaluation
 * (docs/flag-evaluations.md): pruning and the canonical context string that is
 * part of a bucket's identity.
 *
 * Canonical form: the kept attributes in ascending byte order of their keys,
 * each written as
 *     tag (1 byte: 's' string, 'n' number, 'b' bool)
 *     key length (u32 little-endian), key bytes
 *     value: string  -> length (u32 little-endian), bytes
 *            number  -> the 8 bytes of the IEEE-754 double, little-endian
 *            bool    -> 1 byte, 0 or 1
 * Every part is type-tagged and length-delimited, so two different pruned
 * contexts never have the same canonical string (string "1" and number 1
 * differ in the tag) and the string decodes back into the attributes.
 *
 * Pruning, in this order:
 * 1. attributes without a key, with a key over SC_FLAGEVAL_MAX_KEY_LEN bytes,
 *    or whose key is not well-formed UTF-8 (two such keys would print as the
 *    same JSON key) are skipped;
 * 2. duplicate keys: the last occurrence in the caller's array wins, as an
 *    assignment to a map would (earlier ones are skipped, even if the last
 *    is itself skipped in step 3);
 * 3. string values over SC_FLAGEVAL_MAX_VALUE_LEN bytes are skipped, never
 *    truncated (256 bytes are kept); a string attribute without a value, a
 *    non-finite number (JSON cannot carry it) or an unknown type is skipped;
 * 4. of what is left, the first SC_FLAGEVAL_MAX_FIELDS in key order are kept.
 * Every skipped attribute is counted. */
#ifndef SIDECAR_FLAGEVAL_CONTEXT_H
#define SIDECAR_FLAGEVAL_CONTEXT_H

#include "wire_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SC_FLAGEVAL_MAX_FIELDS    256
#define SC_FLAGEVAL_MAX_VALUE_LEN 256
/* Also the limit of attribute keys and of the identity strings of a bucket
 * (flag, variant, allocation, reason, targeting key, targeting rule key). */
#define SC_FLAGEVAL_MAX_KEY_LEN 256

typedef enum sc_flageval_attr_type {
    SC_FLAGEVAL_ATTR_STRING = 's',
    SC_FLAGEVAL_ATTR_NUMBER = 'n',
    SC_FLAGEVAL_ATTR_BOOL = 'b',
} sc_flageval_attr_type_t;

/* One context attribute as the caller has it. Views are only read during
 * the call they are passed to. */
typedef struct sc_flageval_attr {
    sc_view_t key;
    sc_flageval_attr_type_t type;
    sc_view_t string_value; /* SC_FLAGEVAL_ATTR_STRING */
    double number_value;    /* SC_FLAGEVAL_ATTR_NUMBER */
    bool bool_value;        /* SC_FLAGEVAL_ATTR_BOOL */
} sc_flageval_attr_t;

static inline sc_flageval_attr_t sc_flageval_attr_string(const char *key,
                                                         const char *value)
{
    sc_flageval_attr_t a = {.key = sc_view_str(key),
                            .type = SC_FLAGEVAL_ATTR_STRING,
                            .string_value = sc_view_str(value)};
    return a;
}

static inline sc_flageval_attr_t sc_flageval_attr_number(const char *key,
                                                         double value)
{
    sc_flageval_attr_t a = {.key = sc_view_str(key),
                            .type = SC_FLAGEVAL_ATTR_NUMBER,
                            .number_value = value};
    return a;
}

static inline sc_flageval_attr_t sc_flageval_attr_bool(const char *key,
                                                       bool value)
{
    sc_flageval_attr_t a = {.key = sc_view_str(key),
                            .type = SC_FLAGEVAL_ATTR_BOOL,
                            .bool_value = value};
    return a;
}

/* A byte builder that starts in its own inline storage, so the common case
 * (a key of a few hundred bytes built on every evaluation) does not
 * allocate. Must not be copied once initialized. `failed` is sticky. */
#define SC_FLAGEVAL_KEYBUF_INLINE 1024

typedef struct sc_flageval_keybuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool failed;
    uint8_t inline_bytes[SC_FLAGEVAL_KEYBUF_INLINE];
} sc_flageval_keybuf_t;

void sc_flageval_keybuf_init(sc_flageval_keybuf_t *kb);
void sc_flageval_keybuf_free(sc_flageval_keybuf_t *kb);
/* Slow path of sc_flageval_keybuf_append: grows, then appends. */
void sc_flageval_keybuf_append_grow(sc_flageval_keybuf_t *kb, const void *p,
                                    size_t n);

/* Inline: a key is built from a dozen small pieces on every evaluation. */
static inline void sc_flageval_keybuf_append(sc_flageval_keybuf_t *kb,
                                             const void *p, size_t n)
{
    if (n <= kb->cap - kb->len) {
        if (n > 0) {
            memcpy(kb->data + kb->len, p, n);
            kb->len += n;
        }
        return;
    }
    sc_flageval_keybuf_append_grow(kb, p, n);
}

static inline void sc_flageval_keybuf_put_u32(sc_flageval_keybuf_t *kb,
                                              uint32_t v)
{
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 24)};
    sc_flageval_keybuf_append(kb, le, sizeof le);
}

/* Prunes `attrs` and appends their canonical string to `out`. Returns the
 * number of attributes kept; `*skipped` (if not NULL) receives the number
 * skipped. On allocation failure `out->failed` is set. */
size_t sc_flageval_context_build(const sc_flageval_attr_t *attrs, size_t n,
                                 sc_flageval_keybuf_t *out, size_t *skipped);

/* sc_flageval_context_build() through a per-thread memo of the last
 * context: when `attrs` equal the previous call's on this thread, byte for
 * byte (types, keys, values, presence), the remembered canonical string is
 * appended instead of pruning and sorting again. Same results.
 * `*generation` names the remembered context (the same value on this
 * thread means the same canonical string, so a caller may keep what it
 * derived from it, such as a hash), or is 0 when it was not remembered. */
size_t sc_flageval_context_append(const sc_flageval_attr_t *attrs, size_t n,
                                  sc_flageval_keybuf_t *out, size_t *skipped,
                                  uint64_t *generation);

/* Walks a canonical string. Attribute views point into it. */
typedef struct sc_flageval_context_iter {
    const uint8_t *pos;
    const uint8_t *end;
} sc_flageval_context_iter_t;

void sc_flageval_context_iter_init(sc_flageval_context_iter_t *it,
                                   sc_view_t canonical);
/* 1 with an attribute, 0 at the end, -1 when the bytes are malformed. */
int sc_flageval_context_next(sc_flageval_context_iter_t *it,
                             sc_flageval_attr_t *attr);

#endif
