#include "log.h"

#include "platform.h"
#include "sidecar.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define LIMIT_BURST       5
#define LIMIT_INTERVAL_MS 10000
#define LOG_PATH_MAX      4096

static sc_log_level_t log_level = SC_LOG_WARN;
static FILE *log_file; /* NULL: stderr */
static char log_path[LOG_PATH_MAX];
static uv_once_t log_once = UV_ONCE_INIT;
static uv_mutex_t log_mutex;
/* What the environment said that could not be used, written before the
 * next line logged (it cannot log from inside its own initialization). */
static char env_problem[256];

/* A child of fork() must not inherit the lock held by another thread of
 * its parent (a listener thread logging at that instant): it would block on
 * its first log line forever. No prepare handler takes the lock: the
 * runtime's own prepare handler may log, and stdio's state is made
 * consistent across fork by the C library. */
static void log_atfork_child(void)
{
    uv_mutex_init(&log_mutex);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Opens `path` for appending; the caller holds the lock. */
static int open_locked(const char *path)
{
    if (path == NULL || path[0] == '\0') {
        if (log_file != NULL) {
            fclose(log_file);
        }
        log_file = NULL;
        log_path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof log_path) {
        return UV_ENAMETOOLONG;
    }
    /* "e": close-on-exec, so a spawned daemon does not inherit it. */
    FILE *f = fopen(path, "ae");
    if (f == NULL) {
        return UV_EACCES;
    }
    if (log_file != NULL) {
        fclose(log_file);
    }
    log_file = f;
    setvbuf(f, NULL, _IOLBF, 0);
    strcpy(log_path, path);
    return 0;
}

/* uv_os_getenv: on Windows the C runtime's copy of the environment misses
 * what SetEnvironmentVariable changed. */
static const char *env_value(const char *name, char *buf, size_t size)
{
    size_t len = size;
    return uv_os_getenv(name, buf, &len) == 0 && buf[0] != '\0' ? buf : NULL;
}

static void log_init_once(void)
{
    uv_mutex_init(&log_mutex);
    sc_plat_atfork(NULL, NULL, log_atfork_child);
    char buf[LOG_PATH_MAX];
    const char *level = env_value(SC_LOG_LEVEL_ENV, buf, sizeof buf);
    if (level != NULL && sc_log_parse_level(level, &log_level) != 0) {
        snprintf(env_problem, sizeof env_problem,
                 "ignoring %s=%.64s (error, warn, info or debug)",
                 SC_LOG_LEVEL_ENV, level);
    }
    const char *file = env_value(SC_LOG_FILE_ENV, buf, sizeof buf);
    if (file != NULL && open_locked(file) != 0) {
        snprintf(env_problem, sizeof env_problem,
                 "cannot open %s=%.128s: logging to stderr", SC_LOG_FILE_ENV,
                 file);
    }
}

static void log_init(void)
{
    uv_once(&log_once, log_init_once);
}

int sc_log_configure(sc_log_level_t level, const char *path)
{
    log_init();
    uv_mutex_lock(&log_mutex);
    log_level = level;
    int rc = open_locked(path);
    uv_mutex_unlock(&log_mutex);
    return rc;
}

sc_log_level_t sc_log_level(void)
{
    log_init();
    return log_level;
}

const char *sc_log_file(void)
{
    log_init();
    return log_path;
}

int sc_set_logging(const char *level, const char *file)
{
    log_init();
    sc_log_level_t parsed = log_level;
    if (level != NULL && level[0] != '\0' &&
        sc_log_parse_level(level, &parsed) != 0) {
        return UV_EINVAL;
    }
    uv_mutex_lock(&log_mutex);
    int rc = file != NULL ? open_locked(file) : 0;
    log_level = parsed;
    uv_mutex_unlock(&log_mutex);
    return rc;
}

void sc_get_logging(const char **level, const char **file)
{
    log_init();
    if (level != NULL) {
        *level = level_names[log_level];
    }
    if (file != NULL) {
        *file = log_path;
    }
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

size_t sc_log_daemon_args(const char **argv)
{
    log_init();
    size_t n = 0;
    argv[n++] = "--log-level";
    argv[n++] = level_names[log_level];
    if (log_path[0] != '\0') {
        argv[n++] = "--log-file";
        argv[n++] = log_path;
    }
    return n;
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian), from Howard
 * Hinnant's algorithm: no gmtime_r/gmtime_s, which differ per platform. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

char *sc_log_format_time(int64_t epoch_ms, char *out, size_t size)
{
    int64_t secs = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
    int ms = (int)(epoch_ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y,
             m, d, (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60),
             ms);
    return out;
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
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    char when[32];
    sc_log_format_time(tv.tv_sec * 1000 + tv.tv_usec / 1000, when, sizeof when);
    uv_mutex_lock(&log_mutex);
    FILE *f = log_file != NULL ? log_file : stderr;
    if (env_problem[0] != '\0') {
        fprintf(f, "%s [sidecar pid=%d warn] %s\n", when, (int)uv_os_getpid(),
                env_problem);
        env_problem[0] = '\0';
    }
    fprintf(f, "%s [sidecar pid=%d %s] ", when, (int)uv_os_getpid(),
            level_names[level]);
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
    log_init();
    if (level > log_level) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_write(level, 0, fmt, ap);
    va_end(ap);
}

static void log_always(sc_log_level_t label, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(SC_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

static void log_always(sc_log_level_t label, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write(label, 0, fmt, ap);
    va_end(ap);
}

void sc_log_banner(const char *mode, const char *endpoint,
                   const char *agent_url)
{
    log_init();
    if (log_level < SC_LOG_WARN) {
        return;
    }
    log_always(SC_LOG_INFO,
               "sidecar %s started: mode=%s endpoint=%s agent=%s pid=%u "
               "log_level=%s log_file=%s",
               sc_version(), mode, endpoint, agent_url,
               (unsigned)uv_os_getpid(), level_names[log_level],
               log_path[0] != '\0' ? log_path : "stderr");
}

void sc_log_limited(sc_log_limit_t *limit, sc_log_level_t level,
                    const char *fmt, ...)
{
    log_init();
    if (level > log_level) {
        return;
    }
    uint64_t now = uv_hrtime() / 1000000u;
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
