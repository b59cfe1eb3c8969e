/* The rules of proto/sidecar.proto's Metric (DogStatsD names and tags), and
 * the canonical form of a tag list that makes "b:1,a:2" and "a:2,b:1" one
 * context. */
#include "json.h"
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool ascii_letter(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ascii_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static const char *name_error(sc_view_t n)
{
    if (n.ptr == NULL || n.len == 0) {
        return "Metric.name is empty";
    }
    if (n.len > SC_METRIC_NAME_MAX) {
        return "Metric.name is over 200 bytes";
    }
    if (!ascii_letter(n.ptr[0])) {
        return "Metric.name does not start with an ASCII letter";
    }
    for (size_t i = 1; i < n.len; i++) {
        uint8_t c = n.ptr[i];
        if (!ascii_letter(c) && !ascii_digit(c) && c != '_' && c != '.') {
            return "Metric.name holds a character other than ASCII letters, "
                   "digits, '_' and '.'";
        }
    }
    return NULL;
}

/* Bytes DogStatsD gives a meaning to inside a line, control characters
 * (NUL included, before `also` is searched) and space, plus `also`. */
static bool reserved_byte(uint8_t c, const char *also)
{
    return c < 0x20 || c == 0x7f || c == ' ' || c == '|' || c == ',' ||
           c == '#' || strchr(also, c) != NULL;
}

static const char *tag_error(const uint8_t *t, size_t len)
{
    if (len == 0) {
        return "Metric.tags has an empty tag";
    }
    if (len > SC_METRIC_TAG_MAX) {
        return "Metric.tags has a tag over 200 bytes";
    }
    if (!sc_utf8_valid(t, len)) {
        return "Metric.tags is not UTF-8";
    }
    if (!ascii_letter(t[0]) && t[0] < 0x80) {
        return "Metric.tags has a tag that does not start with a letter";
    }
    for (size_t i = 0; i < len; i++) {
        if (reserved_byte(t[i], "@")) {
            return "Metric.tags has a tag holding a space, a control "
                   "character or one of | , # @";
        }
    }
    return NULL;
}

static const char *tags_error(sc_view_t tags)
{
    if (tags.ptr == NULL || tags.len == 0) {
        return NULL;
    }
    if (tags.len > SC_METRIC_TAGS_MAX) {
        return "Metric.tags is over 2048 bytes";
    }
    size_t count = 0;
    const uint8_t *p = tags.ptr, *end = tags.ptr + tags.len;
    while (p <= end) {
        const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
        const uint8_t *stop = comma != NULL ? comma : end;
        const char *why = tag_error(p, (size_t)(stop - p));
        if (why != NULL) {
            return why;
        }
        if (++count > SC_METRIC_TAG_COUNT) {
            return "Metric.tags holds over 64 tags";
        }
        p = stop + 1;
    }
    return NULL;
}

static const char *member_error(sc_view_t m)
{
    if (m.len == 0) {
        return "Metric.set_member is empty";
    }
    if (m.len > SC_METRIC_MEMBER_MAX) {
        return "Metric.set_member is over 200 bytes";
    }
    if (!sc_utf8_valid(m.ptr, m.len)) {
        return "Metric.set_member is not UTF-8";
    }
    for (size_t i = 0; i < m.len; i++) {
        if (reserved_byte(m.ptr[i], ":")) {
            return "Metric.set_member holds a control character or one of "
                   "| , : #";
        }
    }
    return NULL;
}

const char *sc_metric_check(const sc_metric_point_t *p)
{
    if (p->type < SC_MTYPE_COUNT || p->type > SC_MTYPE_SET) {
        return "Metric.type is not COUNT, GAUGE, RATE, HISTOGRAM, "
               "DISTRIBUTION or SET";
    }
    const char *why = name_error(p->name);
    if (why == NULL) {
        why = tags_error(p->tags);
    }
    if (why != NULL) {
        return why;
    }
    if (p->has_rate && !(p->rate > 0.0 && p->rate <= 1.0)) {
        return "Metric.sample_rate is not in (0, 1]";
    }
    if (p->member.ptr != NULL) {
        if (p->type != SC_MTYPE_SET) {
            return "Metric.set_member is only for METRIC_TYPE_SET";
        }
        return member_error(p->member);
    }
    if (!isfinite(p->value)) {
        return "Metric.value is not finite";
    }
    return NULL;
}

static int view_cmp(const void *a, const void *b)
{
    const sc_view_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, n);
    if (c != 0) {
        return c;
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

size_t sc_metric_tags_canonical(sc_view_t tags, char *out)
{
    if (tags.ptr == NULL || tags.len == 0) {
        return 0;
    }
    sc_view_t list[SC_METRIC_TAG_COUNT];
    size_t n = 0;
    const uint8_t *p = tags.ptr, *end = tags.ptr + tags.len;
    while (p <= end && n < SC_METRIC_TAG_COUNT) {
        const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
        const uint8_t *stop = comma != NULL ? comma : end;
        list[n++] = sc_view_bytes(p, (size_t)(stop - p));
        p = stop + 1;
    }
    qsort(list, n, sizeof list[0], view_cmp);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && view_cmp(&list[i], &list[i - 1]) == 0) {
            continue;
        }
        if (len > 0) {
            out[len++] = ',';
        }
        memcpy(out + len, list[i].ptr, list[i].len);
        len += list[i].len;
    }
    return len;
}
