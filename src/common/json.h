/* A small streaming JSON writer over sc_buf_t.
 *
 * Output is always valid JSON (RFC 8259) whatever the input bytes are:
 * - strings are escaped (quote, backslash, every control character below
 *   0x20); bytes that are not well-formed UTF-8 become U+FFFD, one per
 *   offending byte, so a binary or truncated string cannot corrupt a body;
 * - doubles are written with the shortest of %.15g/%.16g/%.17g that reads
 *   back to the same value, with the decimal point forced to '.' whatever
 *   LC_NUMERIC the host process (e.g. PHP's setlocale) has set; non-finite
 *   doubles, which JSON cannot represent, are written as `null` — callers
 *   that must never emit null keep them out of the writer;
 * - commas and colons are placed by the writer.
 *
 * Errors (out of memory, nesting deeper than SC_JSON_MAX_DEPTH) are sticky:
 * every call after one is a no-op and sc_json_ok() reports false. */
#ifndef SIDECAR_JSON_H
#define SIDECAR_JSON_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_JSON_MAX_DEPTH 32

typedef struct sc_json {
    sc_buf_t *out;
    uint32_t depth;
    bool after_key; /* the next value completes a "key": pair */
    bool failed;
    /* has_items[d]: the container open at depth d already holds a value. */
    bool has_items[SC_JSON_MAX_DEPTH + 1];
} sc_json_t;

/* Starts writing at the end of `out` (which keeps what it holds). */
void sc_json_init(sc_json_t *j, sc_buf_t *out);
bool sc_json_ok(const sc_json_t *j);

void sc_json_object_begin(sc_json_t *j);
void sc_json_object_end(sc_json_t *j);
void sc_json_array_begin(sc_json_t *j);
void sc_json_array_end(sc_json_t *j);

/* An object key of `len` bytes (escaped like a string value). */
void sc_json_key(sc_json_t *j, const void *key, size_t len);
/* A NUL-terminated key (for literals). */
void sc_json_key_str(sc_json_t *j, const char *key);

void sc_json_string(sc_json_t *j, const void *s, size_t len);
void sc_json_int64(sc_json_t *j, int64_t v);
void sc_json_uint64(sc_json_t *j, uint64_t v);
void sc_json_double(sc_json_t *j, double v);
void sc_json_bool(sc_json_t *j, bool v);
void sc_json_null(sc_json_t *j);
/* A value serialized elsewhere (already valid JSON), e.g. by another
 * sc_json_t into a scratch buffer. */
void sc_json_raw(sc_json_t *j, const void *value, size_t len);

/* Length of the well-formed UTF-8 sequence at `s` (1 to 4), or 0 when the
 * bytes there are not one (overlong forms, surrogates and code points above
 * U+10FFFF included). */
size_t sc_utf8_sequence_len(const uint8_t *s, size_t avail);
bool sc_utf8_valid(const void *s, size_t len);

/* Writes `v` as a JSON number into `out` (at least SC_JSON_DOUBLE_MAX bytes,
 * NUL-terminated) and returns its length; 0 for non-finite values. */
#define SC_JSON_DOUBLE_MAX 40
size_t sc_json_format_double(double v, char *out);

#endif
