/* Process facts. On Linux /proc tells the state and parent of any pid. */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint32_t sc_plat_getpid(void)
{
    return (uint32_t)getpid();
}

int64_t sc_plat_wall_ms_coarse(void)
{
    struct timespec ts;
#ifdef CLOCK_REALTIME_COARSE
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
#endif
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sc_plat_thread_create(uv_thread_t *t, void (*fn)(void *arg), void *arg)
{
    /* The new thread inherits the creating thread's mask; no SIGPIPE can
     * be raised on this thread between the two calls. */
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    int rc = uv_thread_create(t, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

uint32_t sc_plat_getppid(void)
{
    return (uint32_t)getppid();
}

/* Reads state and parent pid from /proc/<pid>/stat. The command name may
 * hold spaces and parentheses, so parsing starts after the last ')'. */
static bool proc_stat(uint32_t pid, char *state, uint32_t *ppid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned parent = 0;
    if (p == NULL || sscanf(p + 1, " %c %u", state, &parent) != 2) {
        return false;
    }
    *ppid = parent;
    return true;
}

bool sc_plat_process_alive(uint32_t pid)
{
    if (pid == 0) {
        return false;
    }
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) {
        return false;
    }
    char state;
    uint32_t ppid;
    if (proc_stat(pid, &state, &ppid)) {
        return state != 'Z' && state != 'X';
    }
    return true; /* no /proc: kill() said it exists */
}

bool sc_plat_is_descendant(uint32_t pid, uint32_t ancestor)
{
    /* Bounded walk: pid chains are short, and a bound guards against a
     * reused pid forming a cycle between reads. */
    for (int depth = 0; depth < 64 && pid > 1; depth++) {
        if (pid == ancestor) {
            return true;
        }
        char state;
        uint32_t ppid;
        if (!proc_stat(pid, &state, &ppid)) {
            return false;
        }
        pid = ppid;
    }
    return pid == ancestor;
}
