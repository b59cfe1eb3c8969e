/* The runtime's lifecycles (docs/runtime.md) with a small test host that
 * behaves like an FPM master: init, fork workers, workers send actions. Real
 * processes, the real sidecar binary, real sockets. Every scenario runs in
 * its own endpoint directory, so they cannot see each other (or a real
 * sidecar of this user).
 *
 * Usage: test_runtime <scenario>. CTest runs one scenario per test. */
#define _GNU_SOURCE
#include "harness.h"
#include "pool_host.h"
#include "sidecar_procs.h"
#include "sidecar.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

static char dir[128];

static void base_config(sc_config_t *cfg, sc_connection_mode_t mode)
{
    sc_config_defaults(cfg);
    cfg->mode = mode;
    cfg->sidecar_path = th_sidecar_bin();
    cfg->endpoint_dir = dir;
    cfg->connect_timeout_ms = 3000;
    cfg->idle_timeout_ms = 60000;
    cfg->client.reconnect_min_ms = 5;
    cfg->client.reconnect_max_ms = 50;
    cfg->client.enqueue_budget_us = 5000;
}

/* A barrier answered with a timeout still means the sidecar handled every
 * earlier action (only its delivery to the agent was slower): for these
 * tests, which count what the sidecar received, that is success. */
static bool barrier_ok(int rc)
{
    return rc == 0 || rc == UV_ETIMEDOUT;
}

static int send_and_flush_eventually(int n, uint64_t base, int patience_ms)
{
    uint8_t payload[64];
    int dropped = 0;
    for (int i = 0; i < n; i++) {
        size_t len = th_trace_payload(payload, base + (uint64_t)i);
        dropped += sc_send_trace(payload, len, 1) != 0;
    }
    int rc = UV_ETIMEDOUT;
    for (int waited = 0; waited <= patience_ms; waited += 100) {
        rc = sc_flush_sync(3000);
        if (barrier_ok(rc)) {
            break;
        }
        usleep(100000);
    }
    return !barrier_ok(rc) || dropped != 0;
}

/* Listening Unix sockets under our directory, from /proc/net/unix (an
 * inherited copy of a listening socket is the same socket: counted once). */
static int count_listeners(void)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[512];
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned long flags = 0;
        char path[256] = "";
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %255s", &flags, path) ==
                2 &&
            (flags & 0x10000) != 0 && strncmp(path, dir, strlen(dir)) == 0) {
            n++;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

/* Processes running the sidecar binary on our directory. */
static int count_sidecar_processes(void)
{
    return th_signal_sidecars(dir, 0);
}

/* Zombie children of this process (none may be left behind). */
static int count_zombie_children(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    pid_t self = getpid();
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')');
        char state;
        int ppid;
        if (p != NULL && sscanf(p + 1, " %c %d", &state, &ppid) == 2 &&
            state == 'Z' && ppid == self) {
            n++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static char *endpoint_of_subprocess(void)
{
    static char ep[256];
    snprintf(ep, sizeof ep, "%s/sidecar-%s-%u.sock", dir, sc_version(),
             (unsigned)geteuid());
    return ep;
}

static void kill_sidecars(void)
{
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    char *json = th_stats(endpoint_of_subprocess());
    uint64_t pid = th_json_u64(json, "pid");
    if (pid != UINT64_MAX) {
        kill((pid_t)pid, SIGTERM);
    }
    free(json);
    for (int i = 0; i < 300 && count_sidecar_processes() > 0; i++) {
        usleep(10000);
    }
}

static int wait_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- subprocess: 32 processes start at once --------------------------------
 */

static int spawn_race(void)
{
    enum { N = 32, TRACES = 100 };
    int gate[2];
    TH_CHECK(pipe(gate) == 0);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(gate[1]);
            char b;
            (void)!read(gate[0], &b, 1); /* all start when the gate opens */
            sc_config_t cfg;
            base_config(&cfg, SC_MODE_SUBPROCESS);
            sc_init(&cfg);
            sc_runtime_info_t info;
            sc_runtime_info(&info);
            int bad = info.mode != SC_MODE_SUBPROCESS;
            bad |= ph_send_and_flush(TRACES, (uint64_t)i * TRACES);
            sc_shutdown();
            _exit(bad);
        }
    }
    close(gate[0]);
    close(gate[1]);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        failed += wait_child(kids[i]) != 0;
    }
    int sidecars = count_sidecar_processes();
    char *json = th_stats(endpoint_of_subprocess());
    uint64_t traces = th_json_u64(json, "trace");
    printf("32 processes at once: failed=%d sidecar processes=%d traces=%llu "
           "(expected %d) zombies=%d\n",
           failed, sidecars, (unsigned long long)traces, N * TRACES,
           count_zombie_children());
    free(json);
    TH_CHECK(failed == 0);
    TH_CHECK(sidecars == 1);
    TH_CHECK(traces == (uint64_t)N * TRACES);
    kill_sidecars();
    TH_CHECK(count_zombie_children() == 0);
    return 0;
}

/* ---- subprocess: kill -9 of the sidecar under load ------------------------
 */

static int sidecar_killed(void)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    TH_CHECK(sc_init(&cfg) == 0);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    uint32_t first = info.sidecar_pid;
    TH_CHECK(first != 0);
    TH_CHECK(ph_send_and_flush(1000, 0) == 0);
    /* Kill it while actions keep coming. */
    uint8_t payload[64];
    int sent = 0, dropped = 0;
    for (int i = 0; i < 20000; i++) {
        if (i == 5000) {
            kill((pid_t)first, SIGKILL);
        }
        size_t len = th_trace_payload(payload, (uint64_t)i);
        if (sc_send_trace(payload, len, 1) == 0) {
            sent++;
        } else {
            dropped++;
        }
        if (i % 100 == 0) {
            sc_flush();
        }
    }
    int rc = sc_flush_sync(5000);
    sc_runtime_info(&info);
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    char *json = th_stats(endpoint_of_subprocess());
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    printf("kill -9: first sidecar %u, now %u, spawns=%llu; after the kill "
           "the new sidecar counted %llu traces; client: dropped_full=%llu "
           "in_flight=%llu disconnects=%llu\n",
           first, info.sidecar_pid, (unsigned long long)info.spawns,
           (unsigned long long)traces,
           (unsigned long long)st.dropped_full[SC_ACTION_TRACE],
           (unsigned long long)st.dropped_in_flight,
           (unsigned long long)st.disconnects);
    TH_CHECK(rc == 0);
    TH_CHECK(info.sidecar_pid != first && info.sidecar_pid != 0);
    TH_CHECK(st.disconnects >= 1);
    /* Every action is either counted by the new sidecar, was handed to the
     * killed one, or was dropped and counted; the new one got the last
     * 15000 at least minus what was lost in flight. */
    TH_CHECK(traces > 0);
    TH_CHECK(traces <= 20000);
    sc_shutdown();
    kill_sidecars();
    TH_CHECK(count_zombie_children() == 0);
    return 0;
}

/* ---- subprocess: idle exit ----------------------------------------------- */

static int idle_exit(void)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    cfg.idle_timeout_ms = 300;
    TH_CHECK(sc_init(&cfg) == 0);
    TH_CHECK(ph_send_and_flush(10, 0) == 0);
    TH_CHECK(count_sidecar_processes() == 1);
    sc_shutdown(); /* the last connection closes */
    int left = 1;
    for (int i = 0; i < 500 && (left = count_sidecar_processes()) > 0; i++) {
        usleep(10000);
    }
    printf("idle exit: sidecar processes after the idle timeout: %d, "
           "listeners: %d\n",
           left, count_listeners());
    TH_CHECK(left == 0);
    TH_CHECK(count_listeners() == 0);
    return 0;
}

/* ---- subprocess: the memory cap from the environment ---------------------
 * DD_TRACE_SIDECAR_RSS_CAP reaches the sidecar the runtime starts (its
 * command line says --rss-cap with that value), whose watchdog then acts on
 * it: with a cap of 4 KiB it exits within a watchdog period or two. */

static bool cmdline_has(uint32_t pid, const char *want)
{
    char path[64], cmd[4096];
    snprintf(path, sizeof path, "/proc/%u/cmdline", (unsigned)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t len = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t i = 0; i < len; i++) {
        cmd[i] = cmd[i] == '\0' ? ' ' : cmd[i];
    }
    cmd[len] = '\0';
    printf("rss cap: sidecar %u runs as: %s\n", (unsigned)pid, cmd);
    return strstr(cmd, want) != NULL;
}

static int rss_cap_env(void)
{
    setenv("DD_TRACE_SIDECAR_RSS_CAP", "4096", 1);
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_SUBPROCESS);
    TH_CHECK(sc_config_from_env(&cfg) == 0);
    TH_CHECK(cfg.rss_cap_bytes == 4096);
    TH_CHECK(sc_init(&cfg) == 0);
    TH_CHECK(ph_send_and_flush(1, 0) == 0);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    uint32_t first = info.sidecar_pid;
    TH_CHECK(first != 0);
    TH_CHECK(cmdline_has(first, " --rss-cap 4096 "));
    /* Over its cap from the start: the watchdog (1 s period) stops it. */
    bool gone = false;
    for (int i = 0; i < 500 && !gone; i++) {
        gone = kill((pid_t)first, 0) != 0;
        usleep(10000);
    }
    printf("rss cap: sidecar %u %s\n", (unsigned)first,
           gone ? "exited on its watchdog" : "still runs after 5 s");
    TH_CHECK(gone);
    sc_shutdown();
    unsetenv("DD_TRACE_SIDECAR_RSS_CAP");
    kill_sidecars();
    TH_CHECK(count_zombie_children() == 0);
    return 0;
}

/* ---- descriptors stay flat over 10 000 connect/disconnect cycles ----------
 */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

static int fd_flat(void)
{
    char ep[128];
    th_endpoint(ep, sizeof ep, "fds");
    int pid = th_sidecar_start(ep, NULL);
    TH_CHECK(pid > 0);
    int before = count_fds();
    for (int i = 0; i < 10000; i++) {
        sc_client_options_t o = {.endpoint = ep};
        sc_client_t *c = sc_client_new(&o);
        uint8_t payload[64];
        size_t len = th_trace_payload(payload, (uint64_t)i);
        sc_client_send_trace(c, payload, len, 1);
        sc_client_flush(c);
        sc_client_free(c);
    }
    int after = count_fds();
    char *json = th_stats(ep);
    uint64_t active = th_json_u64(json, "active");
    free(json);
    printf("descriptors before %d after %d over 10000 cycles; sidecar "
           "connections still open: %llu\n",
           before, after, (unsigned long long)active);
    TH_CHECK(after == before);
    TH_CHECK(th_sidecar_stop(pid, false) == 0);
    return 0;
}

/* ---- thread mode: a fork tree of depth 2, parent exits first ------------- */

static int fork_tree(void)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_THREAD);
    int report[2], ready[2], promoted[2];
    TH_CHECK(pipe(report) == 0 && pipe(ready) == 0 && pipe(promoted) == 0);
    pid_t top = fork();
    if (top == 0) {
        /* The master P. */
        sc_init(&cfg);
        int bad = ph_send_and_flush(100, 0);
        pid_t child = fork();
        if (child == 0) {
            /* C1: forks C2, then waits until P is gone and delivers. */
            int bad1 = ph_send_and_flush(100, 1000);
            pid_t grandchild = fork();
            if (grandchild == 0) {
                /* C2: its master is P; after P is gone it must find C1. */
                int bad2 = ph_send_and_flush(100, 2000);
                (void)!write(ready[1], "x", 1); /* P may exit now */
                /* Once C1 has taken over, C2 must find it. */
                char b2;
                (void)!read(promoted[0], &b2, 1);
                bad2 |= send_and_flush_eventually(100, 3000, 10000);
                sc_runtime_info_t i2;
                sc_runtime_info(&i2);
                dprintf(report[1],
                        "C2 pid=%d parent=%d master=%u promotions=%llu "
                        "listener_here=%d bad=%d\n",
                        (int)getpid(), (int)getppid(), i2.master_pid,
                        (unsigned long long)i2.promotions, i2.listener_here,
                        bad2);
                _exit(bad2 | (i2.master_pid != (uint32_t)getppid()));
            }
            /* Wait until P is really gone (its listener drains its peers
             * for a while as it stops: until then P still serves). */
            pid_t p = getppid();
            for (int i = 0; i < 1000 && kill(p, 0) == 0; i++) {
                usleep(10000);
            }
            bad1 |= send_and_flush_eventually(100, 4000, 10000);
            (void)!write(promoted[1], "x", 1);
            sc_runtime_info_t i1;
            sc_runtime_info(&i1);
            int listeners = count_listeners();
            dprintf(report[1],
                    "C1 pid=%d master=%u promotions=%llu listener_here=%d "
                    "listeners=%d bad=%d\n",
                    (int)getpid(), i1.master_pid,
                    (unsigned long long)i1.promotions, i1.listener_here,
                    listeners, bad1);
            bad1 |= wait_child(grandchild) != 0;
            sc_shutdown();
            _exit(bad1 | (listeners > 1));
        }
        /* P: exits first (once C1 and C2 have used it), its listener going
         * with it. */
        char b;
        (void)!read(ready[0], &b, 1);
        int listeners = count_listeners();
        dprintf(report[1], "P pid=%d listeners=%d bad=%d\n", (int)getpid(),
                listeners, bad);
        sc_shutdown();
        _exit(bad | (listeners != 1));
    }
    close(report[1]);
    close(ready[0]);
    close(ready[1]);
    close(promoted[0]);
    close(promoted[1]);
    int rc = wait_child(top);
    /* C1 and C2 are reparented away from us; wait for their reports. */
    char buf[2048];
    size_t len = 0;
    ssize_t n;
    while ((n = read(report[0], buf + len, sizeof buf - 1 - len)) > 0) {
        len += (size_t)n;
    }
    buf[len] = '\0';
    printf("%s", buf);
    TH_CHECK(rc == 0);
    TH_CHECK(strstr(buf, "bad=1") == NULL);
    TH_CHECK(strstr(buf, "C1 pid=") != NULL && strstr(buf, "C2 pid=") != NULL);
    TH_CHECK(strstr(buf, "promotions=1 listener_here=1 listeners=1") != NULL);
    return 0;
}

/* ---- auto: falls back to thread when the binary is missing --------------- */

static int auto_fallback(void)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_AUTO);
    cfg.sidecar_path = "/nonexistent/sidecar";
    cfg.connect_timeout_ms = 300;
    TH_CHECK(sc_init(&cfg) == 0);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    printf("auto with a missing binary: mode=%s reason=\"%s\"\n",
           sc_connection_mode_name(info.mode), info.reason);
    TH_CHECK(info.mode == SC_MODE_THREAD);
    TH_CHECK(info.listener_here);
    TH_CHECK(strstr(info.reason, "fell back to thread") != NULL);
    TH_CHECK(strstr(info.reason, "/nonexistent/sidecar") != NULL);
    TH_CHECK(ph_send_and_flush(100, 0) == 0);
    sc_shutdown();
    TH_CHECK(count_sidecar_processes() == 0);
    return 0;
}

/* ---- the FPM-like host ----------------------------------------------------
 */

/* A master forks `workers` workers that each send `traces`; returns the
 * number of failed workers. */
static int run_workers(int workers, int traces)
{
    pid_t kids[16];
    for (int w = 0; w < workers; w++) {
        kids[w] = fork();
        if (kids[w] == 0) {
            _exit(ph_send_and_flush(traces, (uint64_t)w * 100000));
        }
    }
    int failed = 0;
    for (int w = 0; w < workers; w++) {
        failed += wait_child(kids[w]) != 0;
    }
    return failed;
}

static uint64_t master_traces(uint32_t master_pid)
{
    char ep[256];
    snprintf(ep, sizeof ep, "%s/sidecar-%s-%u-%u.sock", dir, sc_version(),
             (unsigned)geteuid(), master_pid);
    char *json = th_stats(ep);
    uint64_t v = th_json_u64(json, "trace");
    free(json);
    return v;
}

static int host_foreground(void)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_THREAD);
    cfg.listener_follows_forker = true;
    TH_CHECK(sc_init(&cfg) == 0);
    int failed = run_workers(4, 250);
    uint64_t traces = master_traces((uint32_t)getpid());
    int listeners = count_listeners();
    printf("foreground master: failed=%d traces=%llu listeners=%d\n", failed,
           (unsigned long long)traces, listeners);
    sc_shutdown();
    TH_CHECK(failed == 0 && traces == 1000 && listeners == 1);
    TH_CHECK(count_listeners() == 0);
    return 0;
}

/* daemonize = yes: init runs in a launcher that forks the real master and
 * exits; the real master forks the workers. */
static int host_daemonized(void)
{
    int report[2];
    TH_CHECK(pipe(report) == 0);
    pid_t launcher = fork();
    if (launcher == 0) {
        sc_config_t cfg;
        base_config(&cfg, SC_MODE_THREAD);
        cfg.listener_follows_forker = true;
        sc_init(&cfg);
        pid_t master = fork();
        if (master == 0) {
            usleep(100000);
            int failed = run_workers(4, 250);
            usleep(300000); /* the launcher is gone by now */
            int failed2 = run_workers(2, 100);
            sc_runtime_info_t info;
            sc_runtime_info(&info);
            uint64_t traces = master_traces((uint32_t)getpid());
            dprintf(report[1],
                    "real master pid=%d listener_here=%d failed=%d "
                    "traces=%llu listeners=%d\n",
                    (int)getpid(), info.listener_here, failed + failed2,
                    (unsigned long long)traces, count_listeners());
            sc_shutdown();
            _exit(0);
        }
        sc_shutdown(); /* MSHUTDOWN in the launcher */
        _exit(0);
    }
    close(report[1]);
    TH_CHECK(wait_child(launcher) == 0);
    char buf[512];
    ssize_t n = read(report[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    printf("daemonized: %s", buf);
    TH_CHECK(strstr(buf, "listener_here=1 failed=0 traces=1200 listeners=1") !=
             NULL);
    return 0;
}

/* Graceful reload: the master re-executes itself (same pid) and inits
 * again; the old listener must not survive the exec. */
static int host_reexec(int argc, char **argv)
{
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_THREAD);
    cfg.listener_follows_forker = true;
    TH_CHECK(sc_init(&cfg) == 0);
    int failed = run_workers(2, 100);
    uint64_t traces = master_traces((uint32_t)getpid());
    printf("generation %s: pid=%d failed=%d traces=%llu listeners=%d\n",
           argc > 2 ? argv[2] : "1", (int)getpid(), failed,
           (unsigned long long)traces, count_listeners());
    TH_CHECK(failed == 0 && traces == 200 && count_listeners() == 1);
    if (argc > 2) {
        sc_shutdown();
        return 0;
    }
    /* No sc_shutdown: like FPM's exec, the process image is replaced. */
    char *args[] = {argv[0], "reexec", "2", NULL};
    setenv("SIDECAR_TEST_DIR", dir, 1);
    execv(argv[0], args);
    return 1;
}

/* Thread mode, 16 workers forked 50 ms apart (as FPM does), the master
 * SIGKILLed: the orphans elect one listener on the dead master's name;
 * every trace sent after the kill reaches it or is counted by its sender.
 * Older workers' connections must not be kept open by younger siblings
 * (each child closes the server ends it inherited). */
static int master_killed_election(void)
{
    enum { WORKERS = 16, TRACES = 100 };
    int report[2], go[2], done[2], forked[2];
    TH_CHECK(pipe(report) == 0 && pipe(go) == 0 && pipe(done) == 0 &&
             pipe(forked) == 0);
    pid_t master = fork();
    if (master == 0) {
        sc_config_t cfg;
        base_config(&cfg, SC_MODE_THREAD);
        sc_init(&cfg);
        for (int w = 0; w < WORKERS; w++) {
            if (fork() == 0) {
                char c;
                int bad = ph_send_and_flush(TRACES, 0);
                if (read(go[0], &c, 1) != 1) {
                    _exit(1);
                }
                bad |= send_and_flush_eventually(TRACES, 1000, 10000);
                sc_client_stats_t st;
                sc_client_stats(sc_runtime_client(), &st);
                sc_runtime_info_t info;
                sc_runtime_info(&info);
                unsigned long long dropped = st.dropped_in_flight;
                for (int k = 0; k < SC_ACTION_KIND_COUNT; k++) {
                    dropped += st.dropped_full[k];
                }
                dprintf(report[1],
                        "worker %d bad=%d dropped=%llu promoted=%llu "
                        "endpoint=%s\n",
                        (int)getpid(), bad, dropped,
                        (unsigned long long)info.promotions, info.endpoint);
                /* Stay until the test has counted the listeners. */
                if (read(done[0], &c, 1) != 1) {
                    _exit(1);
                }
                _exit(0);
            }
            usleep(50000);
        }
        if (write(forked[1], "f", 1) != 1) {
            _exit(1);
        }
        pause();
        _exit(0);
    }
    close(report[1]);
    char f;
    TH_CHECK(read(forked[0], &f, 1) == 1);
    usleep(200000);
    kill(master, SIGKILL);
    TH_CHECK(wait_child(master) == 128 + SIGKILL);
    char all[WORKERS];
    memset(all, 'g', sizeof all);
    TH_CHECK(write(go[1], all, sizeof all) == (ssize_t)sizeof all);
    char buf[8192];
    size_t len = 0;
    int lines = 0;
    while (lines < WORKERS && len < sizeof buf - 1) {
        ssize_t n = read(report[0], buf + len, sizeof buf - 1 - len);
        if (n <= 0) {
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            lines += buf[len + (size_t)i] == '\n';
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    printf("%s", buf);
    int listeners = count_listeners();
    unsigned long long dropped = 0, promoted = 0;
    for (char *p = buf; (p = strstr(p, "dropped=")) != NULL; p++) {
        dropped += strtoull(p + 8, NULL, 10);
    }
    for (char *p = buf; (p = strstr(p, "promoted=")) != NULL; p++) {
        promoted += strtoull(p + 9, NULL, 10);
    }
    char *ep = strstr(buf, "endpoint=");
    char endpoint[256] = "";
    if (ep != NULL) {
        sscanf(ep + 9, "%255s", endpoint);
    }
    char *json = th_stats(endpoint);
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    printf("master SIGKILLed under %d workers: %d listener(s), %llu "
           "promotion(s), the listener counted %llu traces after the kill, "
           "%llu counted as dropped by workers (sent %d)\n",
           WORKERS, listeners, promoted, (unsigned long long)traces, dropped,
           WORKERS * TRACES);
    memset(all, 'd', sizeof all);
    TH_CHECK(write(done[1], all, sizeof all) == (ssize_t)sizeof all);
    usleep(300000);
    TH_CHECK(lines == WORKERS && strstr(buf, "bad=1") == NULL);
    TH_CHECK(listeners == 1 && promoted == 1);
    TH_CHECK(traces + dropped == (uint64_t)WORKERS * TRACES);
    return 0;
}

/* The master dies by SIGKILL while workers live on: they notice, promote
 * (the master is gone), keep working, and nobody hangs. */
static int host_master_killed(void)
{
    int report[2], phase1[2];
    TH_CHECK(pipe(report) == 0 && pipe(phase1) == 0);
    pid_t master = fork();
    if (master == 0) {
        sc_config_t cfg;
        base_config(&cfg, SC_MODE_THREAD);
        cfg.listener_follows_forker = true;
        sc_init(&cfg);
        for (int w = 0; w < 3; w++) {
            if (fork() == 0) {
                int bad = ph_send_and_flush(100, 0);
                if (write(phase1[1], "1", 1) != 1) {
                    _exit(1);
                }
                usleep(300000); /* the master is killed meanwhile */
                uint64_t t0 = uv_hrtime();
                bad |= send_and_flush_eventually(100, 1000, 10000);
                uint64_t ms = (uv_hrtime() - t0) / 1000000u;
                sc_runtime_info_t info;
                sc_runtime_info(&info);
                sc_client_stats_t st;
                sc_client_stats(sc_runtime_client(), &st);
                dprintf(report[1],
                        "worker %d: after the kill bad=%d took %llums "
                        "promoted=%llu dropped=%llu\n",
                        (int)getpid(), bad, (unsigned long long)ms,
                        (unsigned long long)info.promotions,
                        (unsigned long long)(st.dropped_full[SC_ACTION_TRACE] +
                                             st.dropped_in_flight));
                sc_shutdown();
                _exit(0);
            }
        }
        pause();
        _exit(0);
    }
    close(report[1]);
    /* Once every worker's first barrier was answered: a master killed in
     * the middle of a round trip is another test (master_killed_election
     * counts what such a kill loses). */
    char one;
    for (int w = 0; w < 3; w++) {
        TH_CHECK(read(phase1[0], &one, 1) == 1);
    }
    kill(master, SIGKILL);
    TH_CHECK(wait_child(master) == 128 + SIGKILL);
    char buf[2048];
    size_t len = 0;
    ssize_t n;
    while ((n = read(report[0], buf + len, sizeof buf - 1 - len)) > 0) {
        len += (size_t)n;
    }
    buf[len] = '\0';
    printf("%s", buf);
    TH_CHECK(strstr(buf, "bad=1") == NULL);
    int workers = 0;
    for (char *p = buf; (p = strstr(p, "worker ")) != NULL; p++) {
        workers++;
    }
    TH_CHECK(workers == 3);
    return 0;
}

/* A root master with workers of another uid: admitted as descendants of
 * the master (thread mode). */
static int host_other_uid(void)
{
    if (geteuid() != 0) {
        printf("SKIP: switching workers to uid 65534 needs root\n");
        return 77;
    }
    chmod(dir, 0755);
    sc_config_t cfg;
    base_config(&cfg, SC_MODE_THREAD);
    TH_CHECK(sc_init(&cfg) == 0);
    pid_t kids[3];
    for (int w = 0; w < 3; w++) {
        kids[w] = fork();
        if (kids[w] == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) {
                _exit(100);
            }
            _exit(ph_send_and_flush(100, 0));
        }
    }
    int failed = 0;
    for (int w = 0; w < 3; w++) {
        failed += wait_child(kids[w]) != 0;
    }
    uint64_t traces = master_traces((uint32_t)getpid());
    printf("root master, uid 65534 workers: failed=%d traces=%llu\n", failed,
           (unsigned long long)traces);
    sc_shutdown();
    TH_CHECK(failed == 0 && traces == 300);
    return 0;
}

/* SIGKILLs every sidecar process serving our directory; waits until they
 * are gone. */
static void kill_all_sidecars(void)
{
    th_signal_sidecars(dir, SIGKILL);
    for (int i = 0; i < 300 && count_sidecar_processes() > 0; i++) {
        usleep(10000);
    }
}

/* A program that sends and returns from main without sc_flush or
 * sc_shutdown: the exit handler hands the actions over. */
static int exit_without_flush(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        sc_config_t cfg;
        base_config(&cfg, SC_MODE_SUBPROCESS);
        if (sc_init(&cfg) != 0) {
            _exit(100);
        }
        uint8_t payload[64];
        for (int i = 0; i < 5; i++) {
            size_t len = th_trace_payload(payload, (uint64_t)i + 1);
            sc_send_trace(payload, len, 1);
        }
        exit(0); /* as returning from main does */
    }
    TH_CHECK(wait_child(pid) == 0);
    char *json = th_stats(endpoint_of_subprocess());
    uint64_t traces = th_json_u64(json, "trace");
    free(json);
    printf("sent 5 traces, exited without a flush: the sidecar counted "
           "%llu\n",
           (unsigned long long)traces);
    kill_all_sidecars();
    TH_CHECK(traces == 5);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_runtime <scenario>\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    const char *inherited = getenv("SIDECAR_TEST_DIR");
    if (inherited != NULL) {
        snprintf(dir, sizeof dir, "%s", inherited);
    } else {
        snprintf(dir, sizeof dir, "/tmp/sidecar-rt-XXXXXX");
        if (mkdtemp(dir) == NULL) {
            return 1;
        }
    }
    const char *s = argv[1];
    int rc = 2;
    if (strcmp(s, "spawn_race") == 0) {
        rc = spawn_race();
    } else if (strcmp(s, "sidecar_killed") == 0) {
        rc = sidecar_killed();
    } else if (strcmp(s, "rss_cap_env") == 0) {
        rc = rss_cap_env();
    } else if (strcmp(s, "idle_exit") == 0) {
        rc = idle_exit();
    } else if (strcmp(s, "fd_flat") == 0) {
        rc = fd_flat();
    } else if (strcmp(s, "fork_tree") == 0) {
        rc = fork_tree();
    } else if (strcmp(s, "auto_fallback") == 0) {
        rc = auto_fallback();
    } else if (strcmp(s, "host_foreground") == 0) {
        rc = host_foreground();
    } else if (strcmp(s, "host_daemonized") == 0) {
        rc = host_daemonized();
    } else if (strcmp(s, "reexec") == 0) {
        rc = host_reexec(argc, argv);
    } else if (strcmp(s, "host_master_killed") == 0) {
        rc = host_master_killed();
    } else if (strcmp(s, "host_other_uid") == 0) {
        rc = host_other_uid();
    } else if (strcmp(s, "master_killed_election") == 0) {
        rc = master_killed_election();
    } else if (strcmp(s, "exit_without_flush") == 0) {
        rc = exit_without_flush();
    }
    int zombies = count_zombie_children();
    if (zombies != 0) {
        fprintf(stderr, "FAILED: %d zombie children left\n", zombies);
        rc = rc == 0 ? 1 : rc;
    }
    if (inherited == NULL) {
        th_remove_test_dir(dir);
    }
    printf("%s\n", rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL");
    return rc;
}
