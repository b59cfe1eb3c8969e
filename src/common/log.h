/* Logging: levels, to stderr or a file, ISO-8601 UTC timestamps, with rate
 * limiting for anything that can repeat (one bad peer must not flood the
 * log). The level and file come from DD_TRACE_SIDECAR_LOG_LEVEL and
 * DD_TRACE_SIDECAR_LOG_FILE (read on first use), then from
 * sc_set_logging() / sc_log_configure() / the CLI's --log-level and
 * --log-file. docs/settings.md lists them. */
#ifndef SIDECAR_LOG_H
#define SIDECAR_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h" /* SC_PRINTF_ARCHETYPE */

typedef enum sc_log_level {
    SC_LOG_ERROR = 0,
    SC_LOG_WARN = 1,
    SC_LOG_INFO = 2,
    SC_LOG_DEBUG = 3,
} sc_log_level_t;

#define SC_LOG_LEVEL_ENV "DD_TRACE_SIDECAR_LOG_LEVEL"
#define SC_LOG_FILE_ENV  "DD_TRACE_SIDECAR_LOG_FILE"

/* Sets the threshold (default WARN) and the destination: a path (appended
 * to), or NULL for stderr. Returns 0, or a negative error when the file
 * cannot be opened (the previous destination is kept). */
int sc_log_configure(sc_log_level_t level, const char *path);
sc_log_level_t sc_log_level(void);
/* The file logged to ("" for stderr), for banners and sc_log_daemon_args. */
const char *sc_log_file(void);
/* Parses "error" | "warn" | "info" | "debug" (case-insensitive). */
int sc_log_parse_level(const char *s, sc_log_level_t *out);

/* Appends this process's log settings as `sidecar run` arguments
 * (--log-level L [--log-file F]) to `argv` (room for 4 more), so that a
 * sidecar the runtime starts logs where and as much as its starter.
 * Returns how many were appended. The strings stay valid until the
 * settings change. */
size_t sc_log_daemon_args(const char **argv);

/* ISO-8601 UTC time of `epoch_ms` with milliseconds,
 * "2026-01-31T23:59:59.123Z" (needs 25 bytes). Returns `out`. */
char *sc_log_format_time(int64_t epoch_ms, char *out, size_t size);

void sc_log(sc_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

/* The start line of a sidecar (daemon or listener thread): version, mode,
 * endpoint, agent, pid, log settings. Printed at every level but "error",
 * so the default shows it. */
void sc_log_banner(const char *mode, const char *endpoint,
                   const char *agent_url);

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
