/* A growable byte buffer with an optional hard cap. */
#ifndef SIDECAR_BUF_H
#define SIDECAR_BUF_H

/* The printf dialect checked by format attributes: mingw builds use the
 * C99-conforming stdio (__USE_MINGW_ANSI_STDIO) and say gnu_printf so that
 * %zu and %llu are accepted; clang knows only "printf". */
#ifndef SC_PRINTF_ARCHETYPE
#define SC_PRINTF_ARCHETYPE printf
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sc_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} sc_buf_t;

/* Makes room for `extra` more bytes; false when memory runs out. */
bool sc_buf_reserve(sc_buf_t *b, size_t extra);
bool sc_buf_append(sc_buf_t *b, const void *p, size_t n);
bool sc_buf_append_str(sc_buf_t *b, const char *s);
/* printf-style append. */
bool sc_buf_appendf(sc_buf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;
/* Removes the first `n` bytes (consumed from the front). */
void sc_buf_consume(sc_buf_t *b, size_t n);
void sc_buf_reset(sc_buf_t *b);
void sc_buf_free(sc_buf_t *b);

#endif
