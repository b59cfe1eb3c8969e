#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sc_buf_reserve(sc_buf_t *b, size_t extra)
{
    if (extra <= b->cap - b->len) {
        return true;
    }
    if (extra > SIZE_MAX / 2 - b->len) {
        return false;
    }
    size_t want = b->len + extra;
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < want) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool sc_buf_append(sc_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return true;
    }
    if (!sc_buf_reserve(b, n)) {
        return false;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool sc_buf_append_str(sc_buf_t *b, const char *s)
{
    return sc_buf_append(b, s, strlen(s));
}

bool sc_buf_appendf(sc_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sc_buf_reserve(b, (size_t)n + 1)) {
        return false;
    }
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void sc_buf_consume(sc_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void sc_buf_reset(sc_buf_t *b)
{
    b->len = 0;
}

void sc_buf_free(sc_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
