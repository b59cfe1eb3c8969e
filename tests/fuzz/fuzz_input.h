/* Helpers for fuzz targets that take several strings from one input. */
#ifndef SIDECAR_FUZZ_INPUT_H
#define SIDECAR_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Splits `data` at NUL bytes into at most `max` malloc'd NUL-terminated
 * strings (fewer parts leave the rest NULL). Returns how many. Free with
 * fuzz_free_parts(). */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **parts,
                                size_t max)
{
    size_t n = 0;
    memset(parts, 0, max * sizeof *parts);
    while (n < max) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t len = nul != NULL ? (size_t)(nul - data) : size;
        parts[n] = malloc(len + 1);
        if (parts[n] == NULL) {
            break;
        }
        memcpy(parts[n], data, len);
        parts[n][len] = '\0';
        n++;
        if (nul == NULL) {
            break;
        }
        data += len + 1;
        size -= len + 1;
    }
    return n;
}

static inline void fuzz_free_parts(char **parts, size_t max)
{
    for (size_t i = 0; i < max; i++) {
        free(parts[i]);
    }
}

#endif
