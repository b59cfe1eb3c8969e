/* Helpers of the tests whose master forks workers of other users
 * (test_pool_users.c, test_squatter.c): pool_host.h. */
#define _GNU_SOURCE
#include "pool_host.h"

#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

void ph_config(sc_config_t *cfg, sc_connection_mode_t mode, const char *dir)
{
    sc_config_defaults(cfg);
    cfg->mode = mode;
    cfg->sidecar_path = th_sidecar_bin();
    cfg->endpoint_dir = dir;
    cfg->connect_timeout_ms = 3000;
    cfg->client.reconnect_min_ms = 5;
    cfg->client.reconnect_max_ms = 50;
    cfg->client.enqueue_budget_us = 5000;
}

int ph_wait_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `n` traces and a barrier; 0 when none was dropped and the sidecar
 * answered the barrier (a timeout of delivery to the agent, which these
 * tests do not run, still means the sidecar handled everything). */
int ph_send_and_flush(int n, uint64_t base)
{
    uint8_t payload[64];
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        size_t len = th_trace_payload(payload, base + (uint64_t)i);
        dropped += sc_send_trace(payload, len, 1) != 0;
    }
    int rc = sc_flush_sync(3000);
    if (rc != 0 && rc != UV_ETIMEDOUT) {
        fprintf(stderr, "pid %d: flush_sync: %s\n", (int)getpid(),
                sc_strerror(rc));
    }
    return (rc != 0 && rc != UV_ETIMEDOUT) || dropped != 0;
}

/* A pid read from a sidecar's stats: UINT64_MAX (no answer) or 0 must
 * never reach kill(), where -1 and 0 mean whole groups of processes. */
bool ph_real_pid(uint64_t pid)
{
    return pid > 1 && pid < (uint64_t)INT32_MAX;
}

void ph_kill_sidecar(uint64_t pid)
{
    if (ph_real_pid(pid)) {
        kill((pid_t)pid, SIGKILL);
    }
}

/* Gone: no such process, or a zombie its new parent (init or a subreaper,
 * not us) has yet to reap. */
static bool gone(uint64_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%llu/stat", (unsigned long long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return true;
    }
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

bool ph_wait_gone(uint64_t pid, int ms)
{
    if (!ph_real_pid(pid)) {
        return false;
    }
    for (int i = 0; i < ms / 10 && !gone(pid); i++) {
        usleep(10000);
    }
    return gone(pid);
}
