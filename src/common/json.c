#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(sc_json_t *j, const void *p, size_t n)
{
    if (!j->failed && !sc_buf_append(j->out, p, n)) {
        j->failed = true;
    }
}

static void append_char(sc_json_t *j, char c)
{
    append(j, &c, 1);
}

void sc_json_init(sc_json_t *j, sc_buf_t *out)
{
    memset(j, 0, sizeof *j);
    j->out = out;
}

bool sc_json_ok(const sc_json_t *j)
{
    return !j->failed;
}

/* Separator owed before a value (or a key) in the current container. */
static void before_value(sc_json_t *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth > 0 && j->has_items[j->depth]) {
        append_char(j, ',');
    }
    j->has_items[j->depth] = true;
}

static void open_container(sc_json_t *j, char c)
{
    before_value(j);
    if (j->depth >= SC_JSON_MAX_DEPTH) {
        j->failed = true;
        return;
    }
    append_char(j, c);
    j->depth++;
    j->has_items[j->depth] = false;
}

static void close_container(sc_json_t *j, char c)
{
    if (j->depth == 0) {
        j->failed = true;
        return;
    }
    append_char(j, c);
    j->depth--;
}

void sc_json_object_begin(sc_json_t *j)
{
    open_container(j, '{');
}

void sc_json_object_end(sc_json_t *j)
{
    close_container(j, '}');
}

void sc_json_array_begin(sc_json_t *j)
{
    open_container(j, '[');
}

void sc_json_array_end(sc_json_t *j)
{
    close_container(j, ']');
}

size_t sc_utf8_sequence_len(const uint8_t *s, size_t avail)
{
    uint8_t c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* overlong */
        } else if (c == 0xED) {
            hi = 0x9F; /* UTF-16 surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90; /* overlong */
        } else if (c == 0xF4) {
            hi = 0x8F; /* above U+10FFFF */
        }
    } else {
        return 0; /* continuation byte, C0/C1 overlong, F5..FF */
    }
    if (avail < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF) {
            return 0;
        }
    }
    return len;
}

bool sc_utf8_valid(const void *s, size_t len)
{
    const uint8_t *p = s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++; /* ASCII, the common case */
            continue;
        }
        size_t n = sc_utf8_sequence_len(p + i, len - i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

static void write_escaped(sc_json_t *j, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    append_char(j, '"');
    size_t run = 0; /* start of the bytes that need no escaping */
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c >= 0x80) {
            size_t n = sc_utf8_sequence_len(s + i, len - i);
            if (n != 0) {
                i += n;
                continue;
            }
            append(j, s + run, i - run);
            append(j, replacement, 3);
            run = ++i;
            continue;
        }
        if (c != '"' && c != '\\' && c >= 0x20) {
            i++;
            continue;
        }
        append(j, s + run, i - run);
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t esc_len = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            esc_len = 6;
        }
        append(j, esc, esc_len);
        run = ++i;
    }
    append(j, s + run, len - run);
    append_char(j, '"');
}

void sc_json_key(sc_json_t *j, const void *key, size_t len)
{
    before_value(j);
    write_escaped(j, key, len);
    append_char(j, ':');
    j->after_key = true;
}

void sc_json_key_str(sc_json_t *j, const char *key)
{
    sc_json_key(j, key, strlen(key));
}

void sc_json_string(sc_json_t *j, const void *s, size_t len)
{
    before_value(j);
    write_escaped(j, s, len);
}

void sc_json_int64(sc_json_t *j, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    sc_json_raw(j, tmp, (size_t)n);
}

void sc_json_uint64(sc_json_t *j, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    sc_json_raw(j, tmp, (size_t)n);
}

size_t sc_json_format_double(double v, char *out)
{
    out[0] = '\0';
    if (!isfinite(v)) {
        return 0;
    }
    char tmp[SC_JSON_DOUBLE_MAX];
    /* 17 significant digits always read back exactly; fewer are tried first
     * so that 0.1 prints as 0.1. printf and strtod share the current
     * LC_NUMERIC, so the check is sound in any locale. */
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(tmp, sizeof tmp, "%.*g", precision, v);
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    /* %g emits only digits, sign, exponent and the locale's decimal point
     * (which can be ',' or a multi-byte sequence): map that point to '.'. */
    size_t n = 0;
    bool in_point = false;
    for (const char *p = tmp; *p != '\0'; p++) {
        bool plain = (*p >= '0' && *p <= '9') || *p == '-' || *p == '+' ||
                     *p == 'e' || *p == 'E';
        if (plain) {
            out[n++] = *p;
            in_point = false;
        } else if (!in_point) {
            out[n++] = '.';
            in_point = true;
        }
    }
    out[n] = '\0';
    return n;
}

void sc_json_double(sc_json_t *j, double v)
{
    char tmp[SC_JSON_DOUBLE_MAX];
    size_t n = sc_json_format_double(v, tmp);
    if (n == 0) {
        sc_json_null(j);
        return;
    }
    sc_json_raw(j, tmp, n);
}

void sc_json_bool(sc_json_t *j, bool v)
{
    sc_json_raw(j, v ? "true" : "false", v ? 4 : 5);
}

void sc_json_null(sc_json_t *j)
{
    sc_json_raw(j, "null", 4);
}

void sc_json_raw(sc_json_t *j, const void *value, size_t len)
{
    before_value(j);
    append(j, value, len);
}
