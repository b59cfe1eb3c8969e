/* The JSON of delivery: reading what the agent answers (the /info
 * document's "endpoints", the "rate_by_service" object of a /v0.4/traces
 * answer).
 *
 * Only what delivery needs is read: top-level members of an object, and an
 * array of strings. The scanner checks bracket nesting and string syntax
 * (enough to find member boundaries in any input without running past the
 * end) but does not validate numbers or literals. */
#include <stdlib.h>
#include <string.h>

#include "flusher.h"

#define JSON_MAX_DEPTH 64

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

/* `p` is at the opening quote; returns just past the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

/* Skips one value; returns just past it, or NULL when malformed. */
static const char *skip_value(const char *p, const char *end)
{
    char closers[JSON_MAX_DEPTH];
    int depth = 0;
    p = skip_ws(p, end);
    do {
        if (p >= end) {
            return NULL;
        }
        if (*p == '"') {
            p = skip_string(p, end);
            if (p == NULL) {
                return NULL;
            }
        } else if (*p == '{' || *p == '[') {
            if (depth == JSON_MAX_DEPTH) {
                return NULL;
            }
            closers[depth++] = *p == '{' ? '}' : ']';
            p++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0 || closers[depth - 1] != *p) {
                return NULL;
            }
            depth--;
            p++;
        } else if (depth > 0 && (*p == ',' || *p == ':' || *p == ' ' ||
                                 *p == '\t' || *p == '\r' || *p == '\n')) {
            p++;
        } else { /* a number or a literal */
            const char *start = p;
            while (p < end && strchr(",:}] \t\r\n", *p) == NULL) {
                p++;
            }
            if (p == start) {
                return NULL;
            }
        }
    } while (depth > 0);
    return p;
}

bool sc_json_member(const char *json, size_t len, const char *key,
                    const char **value, size_t *value_len)
{
    const char *end = json + len;
    const char *p = skip_ws(json, end);
    if (p >= end || *p != '{') {
        return false;
    }
    size_t key_len = strlen(key);
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        return false;
    }
    while (p < end && *p == '"') {
        const char *k = p + 1;
        p = skip_string(p, end);
        if (p == NULL) {
            return false;
        }
        /* Keys are compared as written: an escaped spelling of `key` does
         * not match, which is fine for the fixed keys agents send. */
        bool match =
            (size_t)(p - 1 - k) == key_len && memcmp(k, key, key_len) == 0;
        p = skip_ws(p, end);
        if (p >= end || *p != ':') {
            return false;
        }
        const char *v = skip_ws(p + 1, end);
        p = skip_value(v, end);
        if (p == NULL) {
            return false;
        }
        if (match) {
            *value = v;
            *value_len = (size_t)(p - v);
            return true;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',') {
            return false;
        }
        p = skip_ws(p + 1, end);
    }
    return false;
}

/* Decodes a JSON string (at its opening quote, already known to be well
 * delimited) into a new C string. Escapes other than \uXXXX below 0x80
 * are decoded; any other \u, or a NUL, gives NULL (the endpoint is
 * skipped). */
static char *decode_string(const char *p, const char *close)
{
    char *out = malloc((size_t)(close - p));
    if (out == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (p++; p < close - 1; p++) {
        char c = *p;
        if (c == '\\') {
            c = *++p;
            static const char from[] = "\"\\/bfnrt";
            static const char to[] = "\"\\/\b\f\n\r\t";
            const char *hit = c != '\0' ? strchr(from, c) : NULL;
            if (hit != NULL) {
                c = to[hit - from];
            } else if (c == 'u' && close - 1 - p > 4) {
                char hex[5] = {p[1], p[2], p[3], p[4], '\0'};
                char *stop;
                long cp = strtol(hex, &stop, 16);
                if (*stop != '\0' || cp <= 0 || cp >= 0x80) {
                    free(out);
                    return NULL;
                }
                c = (char)cp;
                p += 4;
            } else {
                free(out);
                return NULL;
            }
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

static void free_endpoints(char **endpoints, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(endpoints[i]);
    }
    free(endpoints);
}

/* Reads "endpoints" (an array of strings) when present. False only when
 * memory runs out. */
static bool parse_endpoints(const char *json, size_t len, char ***out,
                            size_t *count)
{
    *out = NULL;
    *count = 0;
    const char *v;
    size_t vlen;
    if (!sc_json_member(json, len, "endpoints", &v, &vlen) || v[0] != '[') {
        return true;
    }
    const char *end = v + vlen - 1; /* the closing bracket */
    char **list = NULL;
    size_t n = 0;
    const char *p = skip_ws(v + 1, end);
    while (p < end) {
        const char *next = skip_value(p, end);
        if (next == NULL) {
            break;
        }
        char *s = *p == '"' ? decode_string(p, next) : NULL;
        if (s != NULL) {
            char **grown = realloc(list, (n + 1) * sizeof *list);
            if (grown == NULL) {
                free(s);
                free_endpoints(list, n);
                return false;
            }
            list = grown;
            list[n++] = s;
        }
        p = skip_ws(next, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
        }
    }
    *out = list;
    *count = n;
    return true;
}

bool sc_agent_info_parse(const char *json, size_t len, sc_agent_info_t *out)
{
    const char *end = json + len;
    const char *start = skip_ws(json, end);
    if (start >= end || *start != '{') {
        return false;
    }
    const char *after = skip_value(start, end);
    if (after == NULL || skip_ws(after, end) != end) {
        return false;
    }
    char *raw = malloc(len + 1);
    if (raw == NULL) {
        return false;
    }
    memcpy(raw, json, len);
    raw[len] = '\0';
    char **endpoints;
    size_t count;
    if (!parse_endpoints(json, len, &endpoints, &count)) {
        free(raw);
        return false;
    }
    int64_t fetched = out->fetched_ms;
    sc_agent_info_free(out);
    out->valid = true;
    out->fetched_ms = fetched;
    out->raw_json = raw;
    out->raw_len = len;
    out->endpoints = endpoints;
    out->endpoint_count = count;
    return true;
}

void sc_agent_info_free(sc_agent_info_t *info)
{
    free(info->raw_json);
    free_endpoints(info->endpoints, info->endpoint_count);
    memset(info, 0, sizeof *info);
}

bool sc_agent_info_has_endpoint(const sc_agent_info_t *info, const char *path)
{
    for (size_t i = 0; i < info->endpoint_count; i++) {
        if (strcmp(info->endpoints[i], path) == 0) {
            return true;
        }
    }
    return false;
}
