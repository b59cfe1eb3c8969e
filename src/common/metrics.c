/* The sidecar's metric aggregator (docs/metrics.md, "Aggregation"): one
 * context per (type, name, canonical tags, and the sample rate for
 * histograms and distributions), found through an open-addressing hash
 * table, kept in arrival order for draining. Bounded twice: in contexts and
 * in kept values (histogram and distribution values, set members); what
 * does not fit is counted, never silently lost. */
#include "buf.h"
#include "json.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

/* One context. `key` is the type as one byte, then the name, then the line
 * suffix ("|c", "|d|@0.5|#a:1,b:2"...): everything that tells contexts
 * apart, and all a line needs besides its values. */
typedef struct mctx {
    char *key;
    size_t key_len, name_len;
    uint32_t hash;
    int type;
    double sum;     /* COUNT and RATE: the sum; GAUGE: the last value */
    double *values; /* HISTOGRAM, DISTRIBUTION */
    size_t nvalues, cap;
    char **members; /* SET: a hash set of NUL-terminated members */
    size_t nmembers, member_slots;
} mctx_t;

struct sc_metrics {
    sc_metrics_limits_t limits;
    mctx_t **slots; /* hash table, `slot_count` a power of two */
    size_t slot_count;
    mctx_t **order; /* contexts in arrival order */
    size_t count;
    size_t values; /* kept values and members */
    sc_metrics_stats_t stats;
};

static uint32_t fnv1a(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 16777619u;
    }
    return h;
}

sc_metrics_t *sc_metrics_new(const sc_metrics_limits_t *limits)
{
    sc_metrics_t *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return NULL;
    }
    m->limits = *limits;
    size_t slots = 16;
    while (slots < 2 * limits->max_contexts) {
        slots *= 2;
    }
    m->slots = calloc(slots, sizeof *m->slots);
    m->order = calloc(limits->max_contexts > 0 ? limits->max_contexts : 1,
                      sizeof *m->order);
    if (m->slots == NULL || m->order == NULL) {
        sc_metrics_free(m);
        return NULL;
    }
    m->slot_count = slots;
    return m;
}

static void ctx_free(mctx_t *c)
{
    for (size_t i = 0; i < c->member_slots; i++) {
        free(c->members[i]);
    }
    free(c->members);
    free(c->values);
    free(c->key);
    free(c);
}

/* Frees every context and empties the table. */
static void clear(sc_metrics_t *m)
{
    for (size_t i = 0; i < m->count; i++) {
        ctx_free(m->order[i]);
    }
    memset(m->slots, 0, m->slot_count * sizeof *m->slots);
    m->count = 0;
    m->values = 0;
}

void sc_metrics_free(sc_metrics_t *m)
{
    if (m != NULL) {
        if (m->slots != NULL && m->order != NULL) {
            clear(m);
        }
        free(m->slots);
        free(m->order);
        free(m);
    }
}

static char type_letter(int type)
{
    static const char letters[] = "?cggh"
                                  "ds";
    return letters[type];
}

/* The key of `p`'s context into `out` (large enough: see sc_metrics_add). */
static size_t make_key(const sc_metric_point_t *p, char *out)
{
    size_t n = 0;
    out[n++] = (char)('0' + p->type);
    memcpy(out + n, p->name.ptr, p->name.len);
    n += p->name.len;
    out[n++] = '|';
    out[n++] = type_letter(p->type);
    if (p->type == SC_MTYPE_HISTOGRAM || p->type == SC_MTYPE_DISTRIBUTION) {
        if (p->has_rate && p->rate < 1.0) {
            out[n++] = '|';
            out[n++] = '@';
            n += sc_json_format_double(p->rate, out + n);
        }
    }
    if (p->tags.ptr != NULL && p->tags.len > 0) {
        out[n++] = '|';
        out[n++] = '#';
        n += sc_metric_tags_canonical(p->tags, out + n);
    }
    return n;
}

/* The slot of `key`: its context, or the empty slot it would go in. */
static mctx_t **find(sc_metrics_t *m, const char *key, size_t len, uint32_t h)
{
    size_t mask = m->slot_count - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        mctx_t *c = m->slots[i];
        if (c == NULL || (c->hash == h && c->key_len == len &&
                          memcmp(c->key, key, len) == 0)) {
            return &m->slots[i];
        }
    }
}

static mctx_t *ctx_new(const char *key, size_t len, uint32_t h,
                       const sc_metric_point_t *p)
{
    mctx_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->key = malloc(len)) == NULL) {
        free(c);
        return NULL;
    }
    memcpy(c->key, key, len);
    c->key_len = len;
    c->name_len = p->name.len;
    c->hash = h;
    c->type = p->type;
    return c;
}

static bool add_value(mctx_t *c, double v)
{
    if (c->nvalues == c->cap) {
        size_t cap = c->cap > 0 ? c->cap * 2 : 8;
        double *nv = realloc(c->values, cap * sizeof *nv);
        if (nv == NULL) {
            return false;
        }
        c->values = nv;
        c->cap = cap;
    }
    c->values[c->nvalues++] = v;
    return true;
}

/* Grows the member set to twice its slots, keeping it at most half full. */
static bool members_grow(mctx_t *c)
{
    size_t slots = c->member_slots > 0 ? c->member_slots * 2 : 8;
    char **nm = calloc(slots, sizeof *nm);
    if (nm == NULL) {
        return false;
    }
    for (size_t i = 0; i < c->member_slots; i++) {
        char *s = c->members[i];
        if (s != NULL) {
            size_t j = fnv1a(s, strlen(s)) & (slots - 1);
            while (nm[j] != NULL) {
                j = (j + 1) & (slots - 1);
            }
            nm[j] = s;
        }
    }
    free(c->members);
    c->members = nm;
    c->member_slots = slots;
    return true;
}

/* 0 added, 1 already there, -1 no memory; `*slot` is where it would go. */
static int member_find(mctx_t *c, const char *s, size_t len, char ***slot)
{
    if (2 * (c->nmembers + 1) > c->member_slots && !members_grow(c)) {
        return -1;
    }
    size_t mask = c->member_slots - 1;
    for (size_t i = fnv1a(s, len) & mask;; i = (i + 1) & mask) {
        char *e = c->members[i];
        if (e == NULL) {
            *slot = &c->members[i];
            return 0;
        }
        if (strlen(e) == len && memcmp(e, s, len) == 0) {
            return 1;
        }
    }
}

static int count_drop(sc_metrics_t *m, int why)
{
    uint64_t *counters[] = {NULL, &m->stats.contexts_overflow,
                            &m->stats.values_overflow, &m->stats.no_memory};
    (*counters[why])++;
    return why;
}

/* A set point: its member (the value written out when absent). */
static int add_member(sc_metrics_t *m, mctx_t *c, const sc_metric_point_t *p)
{
    char num[SC_JSON_DOUBLE_MAX];
    const char *s = (const char *)p->member.ptr;
    size_t len = p->member.len;
    if (s == NULL) {
        len = sc_json_format_double(p->value, num);
        s = num;
    }
    char **slot = NULL;
    int found = member_find(c, s, len, &slot);
    if (found != 0) {
        return found > 0 ? 0 : count_drop(m, 3);
    }
    if (m->values >= m->limits.max_values) {
        return count_drop(m, 2);
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return count_drop(m, 3);
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    *slot = copy;
    c->nmembers++;
    m->values++;
    return 0;
}

int sc_metrics_add(sc_metrics_t *m, const sc_metric_point_t *p)
{
    /* type, name, "|x|@" + a rate, "|#" + the tags */
    char key[1 + SC_METRIC_NAME_MAX + 4 + SC_JSON_DOUBLE_MAX + 2 +
             SC_METRIC_TAGS_MAX];
    size_t len = make_key(p, key);
    uint32_t h = fnv1a(key, len);
    mctx_t **slot = find(m, key, len, h);
    mctx_t *c = *slot;
    if (c == NULL) {
        if (m->count >= m->limits.max_contexts) {
            return count_drop(m, 1);
        }
        c = ctx_new(key, len, h, p);
        if (c == NULL) {
            return count_drop(m, 3);
        }
        *slot = c;
        m->order[m->count++] = c;
    }
    double scale = p->has_rate ? 1.0 / p->rate : 1.0;
    int rc = 0;
    switch (p->type) {
    case SC_MTYPE_COUNT:
    case SC_MTYPE_RATE:
        c->sum += p->value * scale;
        break;
    case SC_MTYPE_GAUGE:
        c->sum = p->value;
        break;
    case SC_MTYPE_SET:
        rc = add_member(m, c, p);
        break;
    default: /* histogram, distribution */
        if (m->values >= m->limits.max_values) {
            rc = count_drop(m, 2);
        } else if (!add_value(c, p->value)) {
            rc = count_drop(m, 3);
        } else {
            m->values++;
        }
        break;
    }
    if (rc == 0) {
        m->stats.points++;
    }
    return rc;
}

/* Builds lines of one context into `line` and hands them out. */
typedef struct emitter {
    sc_buf_t line;
    sc_metrics_line_cb cb;
    void *ctx;
    bool failed;
} emitter_t;

static void emit(emitter_t *e, const mctx_t *c, const char *value, size_t vlen)
{
    const char *suffix = c->key + 1 + c->name_len;
    size_t suffix_len = c->key_len - 1 - c->name_len;
    sc_buf_reset(&e->line);
    if (!sc_buf_append(&e->line, c->key + 1, c->name_len) ||
        !sc_buf_append(&e->line, ":", 1) ||
        !sc_buf_append(&e->line, value, vlen) ||
        !sc_buf_append(&e->line, suffix, suffix_len)) {
        e->failed = true;
        return;
    }
    e->cb(e->ctx, (const char *)e->line.data, e->line.len);
}

/* Histogram and distribution values, as many per line as fit. */
static void emit_values(emitter_t *e, const mctx_t *c, size_t max_line)
{
    size_t fixed = c->key_len - 1 + 1; /* name, suffix, the first ':' */
    sc_buf_t values = {0};
    for (size_t i = 0; i < c->nvalues; i++) {
        char num[SC_JSON_DOUBLE_MAX];
        size_t n = sc_json_format_double(c->values[i], num);
        if (values.len > 0 && fixed + values.len + 1 + n > max_line) {
            emit(e, c, (const char *)values.data, values.len);
            sc_buf_reset(&values);
        }
        if ((values.len > 0 && !sc_buf_append(&values, ":", 1)) ||
            !sc_buf_append(&values, num, n)) {
            e->failed = true;
            break;
        }
    }
    if (values.len > 0) {
        emit(e, c, (const char *)values.data, values.len);
    }
    sc_buf_free(&values);
}

void sc_metrics_drain(sc_metrics_t *m, double interval_s, size_t max_line,
                      sc_metrics_line_cb line, void *ctx)
{
    emitter_t e = {.cb = line, .ctx = ctx};
    for (size_t i = 0; i < m->count; i++) {
        const mctx_t *c = m->order[i];
        char num[SC_JSON_DOUBLE_MAX];
        switch (c->type) {
        case SC_MTYPE_COUNT:
        case SC_MTYPE_GAUGE:
            emit(&e, c, num, sc_json_format_double(c->sum, num));
            break;
        case SC_MTYPE_RATE:
            emit(&e, c, num,
                 sc_json_format_double(
                     interval_s > 0 ? c->sum / interval_s : c->sum, num));
            break;
        case SC_MTYPE_SET:
            for (size_t k = 0; k < c->member_slots; k++) {
                if (c->members[k] != NULL) {
                    emit(&e, c, c->members[k], strlen(c->members[k]));
                }
            }
            break;
        default:
            emit_values(&e, c, max_line);
            break;
        }
    }
    if (e.failed) {
        m->stats.no_memory++;
    }
    sc_buf_free(&e.line);
    clear(m);
}

void sc_metrics_stats(const sc_metrics_t *m, sc_metrics_stats_t *out)
{
    *out = m->stats;
    out->contexts = m->count;
    out->values = m->values;
}
