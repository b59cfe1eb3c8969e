/* Storage types of nanopb callback fields (see proto/sidecar.options).
 *
 * The generated sidecar.pb.h includes this header, so it must stay free of
 * anything but the two types and what they need. */
#ifndef SIDECAR_WIRE_TYPES_H
#define SIDECAR_WIRE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct pb_msgdesc_s;

/* A string or bytes field. Decoding points `ptr` into the frame being decoded
 * (valid as long as that frame is); encoding reads from `ptr`. ptr == NULL
 * means absent, which is different from present and empty (ptr != NULL,
 * len == 0). */
typedef struct sc_view {
    const uint8_t *ptr;
    size_t len;
} sc_view_t;

/* A repeated message field.
 *
 * Encoding writes `count` items from `items`, an array of the field's
 * generated struct. Decoding does not copy or allocate: the codec records
 * where the items lie in the frame (`first`, `end`) and how many there are;
 * sc_list_next() (codec.h) then decodes them one at a time. */
typedef struct sc_list {
    const void *items;
    size_t count;
    /* Filled by the decoder. */
    const uint8_t *first; /* payload of the first item */
    size_t first_len;
    const uint8_t *end; /* end of the last item */
    uint32_t tag;       /* field number, to pick items out of the span */
} sc_list_t;

/* A view of a NUL-terminated C string (NULL stays absent). */
static inline sc_view_t sc_view_str(const char *s)
{
    sc_view_t v = {(const uint8_t *)s, s != NULL ? strlen(s) : 0};
    return v;
}

/* A view of `len` bytes at `p` (present even when len == 0 as long as p is
 * not NULL). */
static inline sc_view_t sc_view_bytes(const void *p, size_t len)
{
    sc_view_t v = {(const uint8_t *)p, len};
    return v;
}

static inline bool sc_view_present(sc_view_t v)
{
    return v.ptr != NULL;
}

#endif
