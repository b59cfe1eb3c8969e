/* Forking under load: threads call every public entry point while another
 * thread forks children that use the library a little and exit. A host
 * process that forks (FPM's master, pcntl_fork) must never hang, in the
 * parent or in the child, whatever the other threads were doing at that
 * instant.
 *
 * The threads: traces (and metrics), flag evaluations and exposures,
 * flush and flush_sync, ping and stats (public and raw) and info, forks.
 *
 * Usage: test_fork_stress <variant> <seconds>
 *   reachable    subprocess mode, the real sidecar answers
 *   unreachable  subprocess mode, no sidecar can be started (connects fail)
 *   restarted    subprocess mode, the sidecar is SIGKILLed every 1.5 s and
 *                the runtime starts another
 *   thread       thread mode: the listener runs in the forking process
 *   repro        two threads, no sidecar: one loops sc_flush_sync(1), the
 *                other fork() + _exit(0) + waitpid (the reported deadlock)
 *   no_init      the same threads as `unreachable` without sc_init(): flag
 *                evaluations are recorded all the same, and a child must
 *                not inherit the aggregator's mutex held by another thread
 *   after_shutdown  the same after sc_init() and sc_shutdown()
 *
 * A watchdog fails the test when any thread, or a forked child, makes no
 * progress for 2 s, after printing every thread's backtrace (gdb -batch) of
 * this process and of the stuck child. */
#include "harness.h"
#include "sidecar_procs.h"
#include "sidecar.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

extern char **environ;

#define MAX_THREADS 8
/* 2 s without progress is a stall; SIDECAR_STALL_MS overrides it for the
 * sanitizer builds, which run everything several times slower. */
static uint64_t stall_ns = 2000ull * 1000 * 1000;
#define CHILD_BUDGET 2 /* seconds a forked child may take before a stall */

static char dir[128];
static atomic_bool stop;
static atomic_int stalled;

/* Per thread: last progress (uv_hrtime) and its name, for the watchdog. */
static struct {
    const char *name;
    _Atomic uint64_t last;
    _Atomic uint64_t rounds;
} progress[MAX_THREADS];
static int nthreads;
static _Atomic pid_t waiting_for; /* child the forker waits on, or 0 */
static atomic_ullong forks, child_failures, kills;

static void tick(int i)
{
    atomic_store(&progress[i].last, uv_hrtime());
    atomic_fetch_add(&progress[i].rounds, 1);
}

/* gdb through posix_spawn: it does not run fork handlers, which may be the
 * very thing that is stuck. */
static void backtraces(pid_t pid, const char *who)
{
    char p[16];
    snprintf(p, sizeof p, "%d", (int)pid);
    char gdb[] = "gdb", nx[] = "-nx", batch[] = "-batch", dash_p[] = "-p",
         ex[] = "-ex", bt[] = "thread apply all bt";
    char *argv[] = {gdb, nx, batch, dash_p, p, ex, bt, NULL};
    fprintf(stderr, "---- backtraces of %s (pid %d) ----\n", who, (int)pid);
    pid_t g;
    if (posix_spawnp(&g, "gdb", NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "(gdb not available)\n");
        return;
    }
    int st;
    waitpid(g, &st, 0);
}

static void watchdog_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        usleep(100000);
        uint64_t now = uv_hrtime();
        for (int i = 0; i < nthreads; i++) {
            uint64_t last = atomic_load(&progress[i].last);
            if (last >= now || now - last < stall_ns) {
                continue;
            }
            fprintf(stderr,
                    "STALL: thread '%s' made no progress for %.1f s (%llu "
                    "rounds before)\n",
                    progress[i].name, (double)(now - last) / 1e9,
                    (unsigned long long)atomic_load(&progress[i].rounds));
            atomic_store(&stalled, 1);
            backtraces(getpid(), "the test process");
            pid_t child = atomic_load(&waiting_for);
            if (child > 0) {
                backtraces(child, "the forked child");
                kill(child, SIGKILL);
            }
            fflush(stderr);
            _exit(1);
        }
    }
}

/* ---- the entry points -----------------------------------------------------
 */

static void send_one_trace(uint64_t id)
{
    uint8_t payload[64];
    size_t len = th_trace_payload(payload, id);
    sc_send_trace(payload, len, 1);
}

static void record_one_evaluation(uint64_t n)
{
    sc_attr_t attrs[2] = {
        {.key = "user", .type = SC_ATTR_STRING, .string_value = "u1"},
        {.key = "n", .type = SC_ATTR_NUMBER, .number_value = (double)(n % 7)},
    };
    sc_flag_evaluation_t e = {.flag_key = "stress-flag",
                              .variant_key = n % 2 ? "on" : "off",
                              .reason = "TARGETING_MATCH",
                              .context = attrs,
                              .context_len = 2};
    sc_flag_evaluation_record(&e);
}

static void send_one_exposure(void)
{
    sc_exposure_t x = {.flag_key = "stress-flag",
                       .allocation_key = "a",
                       .variant_key = "on",
                       .subject_id = "s"};
    sc_send_exposures(&x, 1);
}

static void traces_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    sc_metric_t m = {.type = SC_METRIC_COUNT, .name = "stress.n", .value = 1};
    for (uint64_t n = 0; !atomic_load(&stop); n++) {
        send_one_trace(n + 1);
        if (n % 16 == 0) {
            sc_send_metric(&m);
            sc_flush();
            usleep(1000); /* a busy request thread, not a flood */
        }
        tick(me);
    }
}

static void evaluations_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint64_t n = 0; !atomic_load(&stop); n++) {
        record_one_evaluation(n);
        if (n % 32 == 0) {
            sc_flag_evaluations_flush();
            send_one_exposure();
        }
        tick(me);
    }
}

static void barriers_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint64_t n = 0; !atomic_load(&stop); n++) {
        if (n % 2 == 0) {
            sc_flush_sync(50);
        } else {
            sc_flush();
        }
        tick(me);
    }
}

/* sc_ping and sc_sidecar_stats (which may start a sidecar or promote this
 * process, taking the runtime lock) and the raw calls on the runtime's
 * client (which do not), in turn. */
static void queries_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint64_t n = 0; !atomic_load(&stop); n++) {
        sc_client_t *c = sc_runtime_client();
        sc_runtime_info_t info;
        sc_runtime_info(&info);
        sc_ping_result_t r;
        char *json = NULL;
        if (n % 4 == 0) {
            sc_ping(200, &r);
        } else if (n % 4 == 1) {
            if (sc_sidecar_stats(200, &json) == 0) {
                free(json);
            }
        } else if (c != NULL && n % 4 == 2) {
            sc_client_ping(c, 200, &r);
        } else if (c != NULL) {
            if (sc_client_sidecar_stats(c, 200, &json) == 0) {
                free(json);
            }
            sc_client_stats_t s;
            sc_client_stats(c, &s);
        }
        tick(me);
    }
}

/* The child of a fork: uses every kind of action once, then leaves through
 * exit() (fork handlers' state, atexit) or _exit(). */
static void child_work(uint64_t n)
{
    alarm(CHILD_BUDGET + 3); /* never outlive a failed test */
    send_one_trace(n);
    record_one_evaluation(n);
    sc_flag_evaluations_flush();
    send_one_exposure();
    if (n % 2 == 0) {
        sc_flush_sync(50);
        exit(0);
    }
    sc_flush();
    _exit(0);
}

static void forker_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (uint64_t n = 0; !atomic_load(&stop); n++) {
        pid_t pid = fork();
        if (pid == 0) {
            child_work(n);
        }
        if (pid < 0) {
            usleep(1000);
            continue;
        }
        atomic_store(&waiting_for, pid);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        atomic_store(&waiting_for, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            atomic_fetch_add(&child_failures, 1);
            fprintf(stderr, "child %d ended with status 0x%x\n", (int)pid, st);
        }
        atomic_fetch_add(&forks, 1);
        tick(me);
    }
}

/* The reproduction: thread B forks, children only _exit. */
static void bare_forker_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    while (!atomic_load(&stop)) {
        pid_t pid = fork();
        if (pid == 0) {
            _exit(0);
        }
        if (pid > 0) {
            atomic_store(&waiting_for, pid);
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            atomic_store(&waiting_for, 0);
            atomic_fetch_add(&forks, 1);
        }
        tick(me);
    }
}

static void flush_sync_1_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    while (!atomic_load(&stop)) {
        sc_flush_sync(1);
        tick(me);
    }
}

/* Kills every sidecar process serving our directory (found in /proc: a
 * ping could wait behind the load) every 1.5 s; the runtime starts another
 * on the next connect that fails. */
static void killer_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 15 && !atomic_load(&stop); i++) {
            usleep(100000);
            tick(me);
        }
        atomic_fetch_add(&kills,
                         (unsigned long long)th_signal_sidecars(dir, SIGKILL));
        tick(me);
    }
}

static void start(uv_thread_t *t, const char *name, uv_thread_cb fn)
{
    int i = nthreads++;
    progress[i].name = name;
    atomic_store(&progress[i].last, uv_hrtime());
    uv_thread_create(t, fn, (void *)(intptr_t)i);
}

/* Is `inode` a TCP socket? (Thread mode: libcurl keeps a pool of
 * connections to the agent, which come and go with delivery.) */
static bool is_tcp_socket(unsigned long inode)
{
    const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    bool found = false;
    for (size_t t = 0; t < 2 && !found; t++) {
        FILE *f = fopen(tables[t], "r");
        char line[512];
        while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
            unsigned long ino = 0;
            found = sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu",
                           &ino) == 1 &&
                    ino == inode;
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    return found;
}

/* Descriptors of this process, but connections to the agent. */
static int count_fds(bool print)
{
    int n = 0;
    char path[64], target[256];
    for (int fd = 0; fd < 4096; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        unsigned long inode;
        if (len >= 0) {
            target[len] = '\0';
            if (sscanf(target, "socket:[%lu]", &inode) == 1 &&
                is_tcp_socket(inode)) {
                continue;
            }
            n++;
            if (print) {
                fprintf(stderr, "  fd %d -> %s\n", fd, target);
            }
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s VARIANT SECONDS\n", argv[0]);
        return 2;
    }
    const char *variant = argv[1];
    int seconds = atoi(argv[2]);
    const char *stall = getenv("SIDECAR_STALL_MS");
    if (stall != NULL && atoi(stall) > 0) {
        stall_ns = (uint64_t)atoi(stall) * 1000000u;
    }
    const char *scale = getenv("SIDECAR_STRESS_SCALE"); /* sanitizer runs */
    if (scale != NULL && atof(scale) > 0) {
        seconds = (int)(seconds * atof(scale) + 0.5);
        seconds = seconds < 3 ? 3 : seconds;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "/tmp/sc-fork-%d", (int)getpid());
    mkdir(dir, 0700);

    bool repro = strcmp(variant, "repro") == 0;
    bool no_init = strcmp(variant, "no_init") == 0;
    bool after_shutdown = strcmp(variant, "after_shutdown") == 0;
    bool unreachable = repro || no_init || after_shutdown ||
                       strcmp(variant, "unreachable") == 0;
    bool thread = strcmp(variant, "thread") == 0;
    bool restarted = strcmp(variant, "restarted") == 0;
    if (!repro && !unreachable && !thread && !restarted &&
        strcmp(variant, "reachable") != 0) {
        fprintf(stderr, "unknown variant %s\n", variant);
        return 2;
    }

    /* An agent that answers, so that barriers (which wait for the hand-off
     * of earlier actions to delivery) complete instead of timing out. */
    char url[64] = "";
    if (!unreachable) {
        int port = th_intake_start(dir);
        if (port == 0) {
            fprintf(stderr, "intake did not start\n");
            return 1;
        }
        snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    }
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.client.agent_url = url[0] != '\0' ? url : NULL;
    cfg.mode = thread ? SC_MODE_THREAD : SC_MODE_SUBPROCESS;
    cfg.endpoint_dir = dir;
    cfg.sidecar_path = unreachable ? "/nonexistent/sidecar" : th_sidecar_bin();
    cfg.connect_timeout_ms = unreachable ? 5 : 1000;
    cfg.exit_flush_timeout_ms = 300;
    cfg.client.reconnect_min_ms = 1;
    cfg.client.reconnect_max_ms = 20;
    if (!no_init && sc_init(&cfg) != 0) {
        fprintf(stderr, "sc_init failed\n");
        return 1;
    }
    if (after_shutdown) {
        sc_shutdown();
    }
    /* Descriptors once everything has started (thread mode: the listener
     * thread, its loop and libcurl) and answered once. */
    sc_ping_result_t pong;
    sc_ping(1000, &pong);
    usleep(300000);
    int fds_before = count_fds(false);

    uv_thread_t threads[MAX_THREADS], watchdog;
    if (repro) {
        start(&threads[0], "flush_sync(1)", flush_sync_1_main);
        start(&threads[1], "fork", bare_forker_main);
    } else {
        start(&threads[0], "traces", traces_main);
        start(&threads[1], "evaluations+exposures", evaluations_main);
        start(&threads[2], "flush+flush_sync", barriers_main);
        start(&threads[3], "ping+stats+info", queries_main);
        start(&threads[4], "fork", forker_main);
        if (restarted) {
            start(&threads[5], "sidecar killer", killer_main);
        }
    }
    uv_thread_create(&watchdog, watchdog_main, NULL);
    for (int s = 0; s < seconds; s++) {
        sleep(1);
        uint64_t rounds = 0;
        for (int i = 0; i < nthreads; i++) {
            rounds += atomic_load(&progress[i].rounds);
        }
        printf("%s: %d s, %llu forks, %llu calls\n", variant, s + 1,
               (unsigned long long)atomic_load(&forks),
               (unsigned long long)rounds);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < nthreads; i++) {
        uv_thread_join(&threads[i]);
    }
    uv_thread_join(&watchdog);

    sc_client_stats_t cs;
    memset(&cs, 0, sizeof cs);
    if (sc_runtime_client() != NULL) { /* none without sc_init() */
        sc_client_stats(sc_runtime_client(), &cs);
    }
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    /* The listener (thread mode) closes the last children's connections
     * as it reads their ends. */
    int fds_after = count_fds(false);
    for (int i = 0; i < 20 && fds_after > fds_before + 1; i++) {
        usleep(50000);
        fds_after = count_fds(false);
    }
    printf("%s: %llu forks in %d s, %llu children failed, %llu sidecars "
           "killed; mode %s, spawns %llu; client: connects %llu, connect "
           "failures %llu, frames written %llu; descriptors %d -> %d\n",
           variant, (unsigned long long)atomic_load(&forks), seconds,
           (unsigned long long)atomic_load(&child_failures),
           (unsigned long long)atomic_load(&kills),
           sc_connection_mode_name(info.mode), (unsigned long long)info.spawns,
           (unsigned long long)cs.connects,
           (unsigned long long)cs.connect_failures,
           (unsigned long long)cs.frames_written, fds_before, fds_after);
    int rc = 0;
    if (atomic_load(&forks) == 0 || atomic_load(&child_failures) != 0) {
        fprintf(stderr, "FAILED: forks or children\n");
        rc = 1;
    }
    if (!unreachable && cs.frames_written == 0) {
        fprintf(stderr, "FAILED: nothing reached the sidecar\n");
        rc = 1;
    }
    /* At the end, our connection may be open, or not. */
    if (fds_after > fds_before + 1) {
        fprintf(stderr, "FAILED: descriptors grew %d -> %d\n", fds_before,
                fds_after);
        count_fds(true);
        if (system("cat /proc/net/unix >&2") != 0) {
            fprintf(stderr, "(cannot list sockets)\n");
        }
        rc = 1;
    }
    if (!unreachable && !thread) {
        char *json = th_stats(info.endpoint);
        uint64_t pid = th_json_u64(json, "pid");
        if (pid != UINT64_MAX) {
            kill((pid_t)pid, SIGTERM);
        }
        free(json);
    }
    sc_shutdown();
    if (!unreachable) {
        th_intake_stop();
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    return rc;
}
