#include "log.h"

#include "platform.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>
#include <uv.h>

#define LIMIT_BURST       5
#define LIMIT_INTERVAL_MS 10000

static sc_log_level_t log_level = SC_LOG_WARN;
static FILE *log_file; /* NULL: stderr */
static uv_once_t log_once = UV_ONCE_INIT;
static uv_mutex_t log_mutex;

/* A child of fork() must not inherit the lock held by another thread of
 * its parent (a listener thread logging at that instant): it would block on
 * its first log line forever. No prepare handler takes the lock: the
 * runtime's own prepare handler may log, and stdio's state is made
 * consistent across fork by the C library. */
static void log_atfork_child(void)
{
    uv_mutex_init(&log_mutex);
}

static void log_init_once(void)
{
    uv_mutex_init(&log_mutex);
    sc_plat_atfork(NULL, NULL, log_atfork_child);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int sc_log_configure(sc_log_level_t level, const char *path)
{
    uv_once(&log_once, log_init_once);
    int rc = 0;
    uv_mutex_lock(&log_mutex);
    log_level = level;
    if (path != NULL) {
        /* "e": close-on-exec, so a spawned daemon does not inherit it. */
        FILE *f = fopen(path, "ae");
        if (f != NULL) {
            if (log_file != NULL) {
                fclose(log_file);
            }
            log_file = f;
            setvbuf(f, NULL, _IOLBF, 0);
        } else {
            rc = -1;
        }
    }
    uv_mutex_unlock(&log_mutex);
    return rc;
}

sc_log_level_t sc_log_level(void)
{
    return log_level;
}

int sc_log_parse_level(const char *s, sc_log_level_t *out)
{
    for (int i = 0; i <= SC_LOG_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (sc_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

static void log_write(sc_log_level_t level, uint32_t suppressed,
                      const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 3, 0)))
#endif
    ;

static void log_write(sc_log_level_t level, uint32_t suppressed,
                      const char *fmt, va_list ap)
{
    uv_once(&log_once, log_init_once);
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    uv_mutex_lock(&log_mutex);
    FILE *f = log_file != NULL ? log_file : stderr;
    fprintf(f, "[sidecar %lld.%03d pid=%d %s] ", (long long)tv.tv_sec,
            (int)(tv.tv_usec / 1000), (int)uv_os_getpid(), level_names[level]);
    vfprintf(f, fmt, ap);
    if (suppressed > 0) {
        fprintf(f, " (%u similar messages suppressed)", suppressed);
    }
    fputc('\n', f);
    fflush(f);
    uv_mutex_unlock(&log_mutex);
}

void sc_log(sc_log_level_t level, const char *fmt, ...)
{
    if (level > log_level) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_write(level, 0, fmt, ap);
    va_end(ap);
}

void sc_log_limited(sc_log_limit_t *limit, sc_log_level_t level,
                    const char *fmt, ...)
{
    if (level > log_level) {
        return;
    }
    uint64_t now = uv_hrtime() / 1000000u;
    uv_once(&log_once, log_init_once);
    uv_mutex_lock(&log_mutex);
    if (now - limit->window_start_ms >= LIMIT_INTERVAL_MS ||
        limit->window_start_ms == 0) {
        limit->window_start_ms = now;
        limit->in_window = 0;
    }
    bool pass = limit->in_window < LIMIT_BURST;
    uint32_t suppressed = 0;
    if (pass) {
        limit->in_window++;
        suppressed = limit->suppressed;
        limit->suppressed = 0;
    } else {
        limit->suppressed++;
    }
    uv_mutex_unlock(&log_mutex);
    if (pass) {
        va_list ap;
        va_start(ap, fmt);
        log_write(level, suppressed, fmt, ap);
        va_end(ap);
    }
}
