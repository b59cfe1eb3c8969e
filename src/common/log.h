/* Logging: levels, to stderr or a file, with rate limiting for anything that
 * can repeat (one bad peer must not flood the log). */
#ifndef SIDECAR_LOG_H
#define SIDECAR_LOG_H

#include <stdint.h>

#include "buf.h" /* SC_PRINTF_ARCHETYPE */

typedef enum sc_log_level {
    SC_LOG_ERROR = 0,
    SC_LOG_WARN = 1,
    SC_LOG_INFO = 2,
    SC_LOG_DEBUG = 3,
} sc_log_level_t;

/* Sets the threshold (default WARN) and the destination: a path, or NULL for
 * stderr. Returns 0, or -1 when the file cannot be opened (stderr is kept). */
int sc_log_configure(sc_log_level_t level, const char *path);
sc_log_level_t sc_log_level(void);
/* Parses "error" | "warn" | "info" | "debug" (case-insensitive). */
int sc_log_parse_level(const char *s, sc_log_level_t *out);

void sc_log(sc_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

/* Per call site limiter: at most `burst` messages per `interval_ms`; the
 * number suppressed is reported with the next message that passes. */
typedef struct sc_log_limit {
    uint64_t window_start_ms;
    uint32_t in_window;
    uint32_t suppressed;
} sc_log_limit_t;

void sc_log_limited(sc_log_limit_t *limit, sc_log_level_t level,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;

/* A rate-limited log line from one call site: 5 per 10 s. */
#define SC_LOG_LIMITED(level, ...)                                             \
    do {                                                                       \
        static sc_log_limit_t sc_log_limit_site_;                              \
        sc_log_limited(&sc_log_limit_site_, (level), __VA_ARGS__);             \
    } while (0)

#endif
