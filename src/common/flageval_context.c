#include "flageval_context.h"

#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sc_flageval_keybuf_init(sc_flageval_keybuf_t *kb)
{
    kb->data = kb->inline_bytes;
    kb->len = 0;
    kb->cap = sizeof kb->inline_bytes;
    kb->failed = false;
}

void sc_flageval_keybuf_free(sc_flageval_keybuf_t *kb)
{
    if (kb->data != kb->inline_bytes) {
        free(kb->data);
    }
    sc_flageval_keybuf_init(kb);
}

void sc_flageval_keybuf_append_grow(sc_flageval_keybuf_t *kb, const void *p,
                                    size_t n)
{
    if (kb->failed) {
        return;
    }
    if (n > SIZE_MAX / 4 - kb->len) {
        kb->failed = true;
        return;
    }
    size_t cap = kb->cap * 2;
    while (cap < kb->len + n) {
        cap *= 2;
    }
    bool was_inline = kb->data == kb->inline_bytes;
    uint8_t *grown = was_inline ? malloc(cap) : realloc(kb->data, cap);
    if (grown == NULL) {
        kb->failed = true;
        return;
    }
    if (was_inline) {
        memcpy(grown, kb->inline_bytes, kb->len);
    }
    kb->data = grown;
    kb->cap = cap;
    memcpy(kb->data + kb->len, p, n);
    kb->len += n;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int compare_views(sc_view_t a, sc_view_t b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Key order, then position in the caller's array (pointers into one array
 * compare by index), so that sorting is deterministic and the last of equal
 * keys is the last of its run. */
static int compare_attrs(const void *pa, const void *pb)
{
    const sc_flageval_attr_t *a = *(const sc_flageval_attr_t *const *)pa;
    const sc_flageval_attr_t *b = *(const sc_flageval_attr_t *const *)pb;
    int c = compare_views(a->key, b->key);
    if (c != 0) {
        return c;
    }
    return a < b ? -1 : a > b;
}

static bool key_acceptable(const sc_flageval_attr_t *a)
{
    return a->key.ptr != NULL && a->key.len <= SC_FLAGEVAL_MAX_KEY_LEN &&
           sc_utf8_valid(a->key.ptr, a->key.len);
}

static bool value_acceptable(const sc_flageval_attr_t *a)
{
    switch (a->type) {
    case SC_FLAGEVAL_ATTR_STRING:
        return a->string_value.ptr != NULL &&
               a->string_value.len <= SC_FLAGEVAL_MAX_VALUE_LEN;
    case SC_FLAGEVAL_ATTR_NUMBER:
        return isfinite(a->number_value);
    case SC_FLAGEVAL_ATTR_BOOL:
        return true;
    }
    return false;
}

static void append_canonical(sc_flageval_keybuf_t *out,
                             const sc_flageval_attr_t *a)
{
    uint8_t tag = (uint8_t)a->type;
    sc_flageval_keybuf_append(out, &tag, 1);
    sc_flageval_keybuf_put_u32(out, (uint32_t)a->key.len);
    sc_flageval_keybuf_append(out, a->key.ptr, a->key.len);
    switch (a->type) {
    case SC_FLAGEVAL_ATTR_STRING:
        sc_flageval_keybuf_put_u32(out, (uint32_t)a->string_value.len);
        sc_flageval_keybuf_append(out, a->string_value.ptr,
                                  a->string_value.len);
        break;
    case SC_FLAGEVAL_ATTR_NUMBER: {
        uint64_t bits;
        memcpy(&bits, &a->number_value, sizeof bits);
        uint8_t le[8];
        for (int i = 0; i < 8; i++) {
            le[i] = (uint8_t)(bits >> (8 * i));
        }
        sc_flageval_keybuf_append(out, le, sizeof le);
        break;
    }
    case SC_FLAGEVAL_ATTR_BOOL: {
        uint8_t b = a->bool_value ? 1 : 0;
        sc_flageval_keybuf_append(out, &b, 1);
        break;
    }
    }
}

/* Insertion sort for the usual handful of attributes (no allocation, no
 * call through a function pointer); qsort beyond that. */
static void sort_attrs(const sc_flageval_attr_t **v, size_t n)
{
    if (n > 16) {
        qsort(v, n, sizeof *v, compare_attrs);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        const sc_flageval_attr_t *x = v[i];
        size_t k = i;
        while (k > 0 && compare_attrs(&v[k - 1], &x) > 0) {
            v[k] = v[k - 1];
            k--;
        }
        v[k] = x;
    }
}

size_t sc_flageval_context_build(const sc_flageval_attr_t *attrs, size_t n,
                                 sc_flageval_keybuf_t *out, size_t *skipped)
{
    size_t skip = 0, kept = 0;
    const sc_flageval_attr_t *local[32];
    const sc_flageval_attr_t **sorted = local;
    if (n > sizeof local / sizeof local[0]) {
        sorted = malloc(n * sizeof *sorted);
        if (sorted == NULL) {
            out->failed = true;
            if (skipped != NULL) {
                *skipped = n;
            }
            return 0;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (key_acceptable(&attrs[i])) {
            sorted[m++] = &attrs[i];
        } else {
            skip++;
        }
    }
    sort_attrs(sorted, m);
    for (size_t i = 0; i < m; i++) {
        const sc_flageval_attr_t *a = sorted[i];
        bool shadowed =
            i + 1 < m && compare_views(a->key, sorted[i + 1]->key) == 0;
        if (shadowed || !value_acceptable(a) ||
            kept == SC_FLAGEVAL_MAX_FIELDS) {
            skip++;
            continue;
        }
        append_canonical(out, a);
        kept++;
    }
    if (sorted != local) {
        free(sorted);
    }
    if (skipped != NULL) {
        *skipped = skip;
    }
    return kept;
}

/* ---- the per-thread memo ---------------------------------------------------
 *
 * The evaluations of one request carry the same context, so each thread
 * remembers its last one: the attributes as given (copied into `arena`)
 * and the canonical string made of them. The same attributes again,
 * compared byte for byte (type, key, value; presence included), cost that
 * comparison instead of the validation, sorting and writing. Contexts that
 * do not fit are built every time. */

#define MEMO_ATTRS 16
#define MEMO_BYTES 1024

typedef struct context_memo {
    uint64_t generation; /* changes with every context remembered */
    size_t n;            /* attributes remembered (0: nothing yet) */
    size_t kept;         /* what the build returned */
    size_t skipped;      /* and counted as skipped */
    size_t canonical_at, canonical_len;   /* in `arena` */
    sc_flageval_attr_t attrs[MEMO_ATTRS]; /* views into `arena` */
    uint8_t arena[MEMO_BYTES];            /* attribute bytes, then canonical */
} context_memo_t;

static _Thread_local context_memo_t memo;

static bool same_view(sc_view_t a, sc_view_t b)
{
    return (a.ptr == NULL) == (b.ptr == NULL) && a.len == b.len &&
           (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool same_attr(const sc_flageval_attr_t *a, const sc_flageval_attr_t *m)
{
    if (a->type != m->type || !same_view(a->key, m->key)) {
        return false;
    }
    switch (a->type) {
    case SC_FLAGEVAL_ATTR_STRING:
        return same_view(a->string_value, m->string_value);
    case SC_FLAGEVAL_ATTR_NUMBER:
        /* The bits: -0.0 and 0.0 are different canonical strings. */
        return memcmp(&a->number_value, &m->number_value,
                      sizeof a->number_value) == 0;
    case SC_FLAGEVAL_ATTR_BOOL:
        return a->bool_value == m->bool_value;
    }
    return true; /* an unknown type is skipped whatever its value */
}

/* Copies `v` into the arena at *used; false when it does not fit. */
static bool memo_keep(sc_view_t *v, size_t *used)
{
    if (v->ptr == NULL) {
        return true;
    }
    if (v->len > MEMO_BYTES - *used) {
        return false;
    }
    uint8_t *at = memo.arena + *used;
    if (v->len > 0) {
        memcpy(at, v->ptr, v->len);
    }
    v->ptr = at;
    *used += v->len;
    return true;
}

/* Remembers `attrs` and their canonical string (`canonical`), or forgets
 * the memo when they do not fit. */
static void memo_store(const sc_flageval_attr_t *attrs, size_t n,
                       const uint8_t *canonical, size_t len, size_t kept,
                       size_t skipped)
{
    memo.n = 0;
    if (n == 0 || n > MEMO_ATTRS) {
        return;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        sc_flageval_attr_t a = attrs[i];
        if (!memo_keep(&a.key, &used) || (a.type == SC_FLAGEVAL_ATTR_STRING &&
                                          !memo_keep(&a.string_value, &used))) {
            return;
        }
        memo.attrs[i] = a;
    }
    if (len > MEMO_BYTES - used) {
        return;
    }
    if (len > 0) {
        memcpy(memo.arena + used, canonical, len);
    }
    memo.canonical_at = used;
    memo.canonical_len = len;
    memo.kept = kept;
    memo.skipped = skipped;
    memo.n = n;
    memo.generation++;
}

size_t sc_flageval_context_append(const sc_flageval_attr_t *attrs, size_t n,
                                  sc_flageval_keybuf_t *out, size_t *skipped,
                                  uint64_t *generation)
{
    *generation = 0;
    if (n > 0 && n == memo.n) {
        size_t i = 0;
        while (i < n && same_attr(&attrs[i], &memo.attrs[i])) {
            i++;
        }
        if (i == n) {
            sc_flageval_keybuf_append(out, memo.arena + memo.canonical_at,
                                      memo.canonical_len);
            if (skipped != NULL) {
                *skipped = memo.skipped;
            }
            *generation = memo.generation;
            return memo.kept;
        }
    }
    size_t start = out->len, skip = 0;
    size_t kept = sc_flageval_context_build(attrs, n, out, &skip);
    if (!out->failed) {
        memo_store(attrs, n, out->data + start, out->len - start, kept, skip);
        *generation = memo.n != 0 ? memo.generation : 0;
    }
    if (skipped != NULL) {
        *skipped = skip;
    }
    return kept;
}

void sc_flageval_context_iter_init(sc_flageval_context_iter_t *it,
                                   sc_view_t canonical)
{
    it->pos = canonical.ptr;
    it->end = canonical.len > 0 ? canonical.ptr + canonical.len : canonical.ptr;
}

/* Takes a u32-length-prefixed byte string off the front of the iterator. */
static bool take_sized(sc_flageval_context_iter_t *it, sc_view_t *v)
{
    if (it->end - it->pos < 4) {
        return false;
    }
    uint32_t len = get_u32(it->pos);
    it->pos += 4;
    if ((size_t)(it->end - it->pos) < len) {
        return false;
    }
    *v = sc_view_bytes(it->pos, len);
    it->pos += len;
    return true;
}

int sc_flageval_context_next(sc_flageval_context_iter_t *it,
                             sc_flageval_attr_t *attr)
{
    if (it->pos == NULL || it->pos == it->end) {
        return 0;
    }
    memset(attr, 0, sizeof *attr);
    uint8_t tag = *it->pos++;
    if (!take_sized(it, &attr->key)) {
        return -1;
    }
    switch (tag) {
    case SC_FLAGEVAL_ATTR_STRING:
        attr->type = SC_FLAGEVAL_ATTR_STRING;
        return take_sized(it, &attr->string_value) ? 1 : -1;
    case SC_FLAGEVAL_ATTR_NUMBER: {
        if (it->end - it->pos < 8) {
            return -1;
        }
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) {
            bits |= (uint64_t)it->pos[i] << (8 * i);
        }
        it->pos += 8;
        attr->type = SC_FLAGEVAL_ATTR_NUMBER;
        memcpy(&attr->number_value, &bits, sizeof bits);
        return 1;
    }
    case SC_FLAGEVAL_ATTR_BOOL:
        if (it->end - it->pos < 1) {
            return -1;
        }
        attr->type = SC_FLAGEVAL_ATTR_BOOL;
        attr->bool_value = *it->pos++ != 0;
        return 1;
    }
    return -1;
}
