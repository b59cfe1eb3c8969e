/* Subprocess sidecars under pools of other users, without PHP
 * (docs/runtime.md, "Who starts a sidecar"): a root master whose workers
 * switch user after the fork, as FPM's do. Needs root (exit 77 otherwise).
 *
 *   pool_gone_<mode>    the pool's sidecar exits idle, then is SIGKILLed:
 *                       each time the next worker request starts another
 *                       under the pool's user, exactly once for the pool
 *   two_masters_<mode>  two root masters, pools of uid 33 and 65534 with
 *                       allowed uids 33 and 65534: one sidecar per pool
 *                       user, every trace exactly once; a foreign user is
 *                       rejected and counted
 *   squatter            uid 65534 binds root's sidecar name before root's
 *                       sidecar starts, and after it died: root's workers
 *                       send it nothing, in subprocess and auto mode
 *
 * <mode> is subprocess or auto. Usage: test_pool_users <scenario>. */
#define _GNU_SOURCE
#include "harness.h"
#include "sidecar_procs.h"
#include "sidecar.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define WORKERS 3
#define TRACES  100

static char dir[128];

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            return 1;                                                          \
        }                                                                      \
    } while (0)

static void base_config(sc_config_t *cfg, sc_connection_mode_t mode)
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

static int wait_child(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `n` traces and a barrier; 0 when none was dropped and the sidecar
 * answered the barrier (a timeout of delivery to the agent, which these
 * tests do not run, still means the sidecar handled everything). */
static int send_and_flush(int n, uint64_t base)
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

static char *endpoint_of_user(uid_t uid)
{
    static char ep[256];
    snprintf(ep, sizeof ep, "%s/sidecar-%s-%u.sock", dir, sc_version(),
             (unsigned)uid);
    return ep;
}

/* The sidecar of `uid` on our directory: its pid, traces handled and
 * connections rejected (UINT64_MAX when it does not answer). */
typedef struct {
    uint64_t pid, traces, rejected;
} user_sidecar_t;

static user_sidecar_t user_sidecar(uid_t uid)
{
    char *json = th_stats(endpoint_of_user(uid));
    user_sidecar_t s = {th_json_u64(json, "pid"), th_json_u64(json, "trace"),
                        th_json_u64(json, "rejected")};
    free(json);
    return s;
}

/* A pid read from a sidecar's stats: UINT64_MAX (no answer) or 0 must
 * never reach kill(), where -1 and 0 mean whole groups of processes. */
static bool real_pid(uint64_t pid)
{
    return pid > 1 && pid < (uint64_t)INT32_MAX;
}

static void kill_sidecar(uint64_t pid)
{
    if (real_pid(pid)) {
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

static bool wait_gone(uint64_t pid, int ms)
{
    if (!real_pid(pid)) {
        return false;
    }
    for (int i = 0; i < ms / 10 && !gone(pid); i++) {
        usleep(10000);
    }
    return gone(pid);
}

/* ---- workers ---------------------------------------------------------------
 * A worker switches to the pool's user, then runs `rounds` requests of
 * TRACES traces; after each it reports and waits for the master's go. */

typedef struct {
    int bad;       /* a drop, a failed barrier, not in subprocess mode */
    int spawns;    /* sidecars this worker started */
    int untrusted; /* servers it refused */
} report_t;

typedef struct {
    pid_t pids[WORKERS];
    int report, go;
} pool_t;

static void worker(uid_t uid, int rounds, uint64_t base, int report, int go)
{
    if (setgid(uid) != 0 || setuid(uid) != 0) {
        _exit(100);
    }
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    uint64_t inherited = info.spawns; /* the master's */
    for (int r = 0; r < rounds; r++) {
        report_t rep = {0};
        rep.bad = send_and_flush(TRACES, base + (uint64_t)r * 100000);
        sc_runtime_info(&info);
        sc_client_stats_t st;
        sc_client_stats(sc_runtime_client(), &st);
        rep.bad |= info.mode != SC_MODE_SUBPROCESS;
        rep.spawns = (int)(info.spawns - inherited);
        rep.untrusted = (int)st.untrusted_servers;
        inherited = info.spawns;
        char c;
        if (write(report, &rep, sizeof rep) != sizeof rep ||
            read(go, &c, 1) != 1) {
            _exit(101);
        }
    }
    sc_shutdown();
    _exit(0);
}

static int pool_start(pool_t *p, uid_t uid, int rounds, uint64_t base)
{
    int rep[2], go[2];
    if (pipe(rep) != 0 || pipe(go) != 0) {
        return -1;
    }
    for (int w = 0; w < WORKERS; w++) {
        p->pids[w] = fork();
        if (p->pids[w] == 0) {
            worker(uid, rounds, base + (uint64_t)w * 1000, rep[1], go[0]);
        }
    }
    close(rep[1]);
    close(go[0]);
    p->report = rep[0];
    p->go = go[1];
    return 0;
}

/* Every worker's report of the round: -1 on a bad one, else the spawns. */
static int pool_round(pool_t *p, int *untrusted)
{
    int spawns = 0;
    for (int w = 0; w < WORKERS; w++) {
        report_t rep;
        if (read(p->report, &rep, sizeof rep) != sizeof rep || rep.bad) {
            return -1;
        }
        spawns += rep.spawns;
        *untrusted += rep.untrusted;
    }
    return spawns;
}

/* Lets the workers go on (next round, or exit); waits for them after the
 * last. Returns the number that failed. */
static int pool_go(pool_t *p, bool last)
{
    if (write(p->go, "123", WORKERS) != WORKERS) {
        return WORKERS;
    }
    int failed = 0;
    if (last) {
        for (int w = 0; w < WORKERS; w++) {
            failed += wait_child(p->pids[w]) != 0;
        }
        close(p->report);
        close(p->go);
    }
    return failed;
}

/* ---- the pool's sidecar exits idle, then is SIGKILLed ---------------------
 * Like an ondemand pool: the first workers exit, the sidecar idles out, new
 * workers come; they stay while their sidecar is SIGKILLed and run one more
 * request each. Each time exactly one worker starts the next sidecar (the
 * bind of the name is the lock: one spawn on one request per death), and
 * that sidecar handles exactly what the pool sent since. */
static int pool_gone(sc_connection_mode_t mode)
{
    enum { POOL_UID = 65534 };
    chmod(dir, 01777); /* like /tmp: each user creates its own socket */
    sc_config_t cfg;
    base_config(&cfg, mode);
    cfg.idle_timeout_ms = 1000;
    CHECK(sc_init(&cfg) == 0);
    int untrusted = 0;

    pool_t p;
    CHECK(pool_start(&p, POOL_UID, 1, 0) == 0);
    int spawns1 = pool_round(&p, &untrusted);
    user_sidecar_t first = user_sidecar(POOL_UID);
    CHECK(pool_go(&p, true) == 0); /* the workers exit: no connection left */
    bool idled = wait_gone(first.pid, 20000);

    CHECK(pool_start(&p, POOL_UID, 2, 10000000) == 0);
    int spawns2 = pool_round(&p, &untrusted);
    user_sidecar_t second = user_sidecar(POOL_UID);
    kill_sidecar(second.pid);
    bool killed = wait_gone(second.pid, 5000);
    CHECK(pool_go(&p, false) == 0);
    int spawns3 = pool_round(&p, &untrusted);
    user_sidecar_t third = user_sidecar(POOL_UID);
    int failed = pool_go(&p, true);
    sc_shutdown();

    printf("%s, root master, uid %d pool: sidecar %llu handled %llu traces "
           "(%d spawns), exited idle: %s; sidecar %llu handled %llu (%d "
           "spawns), SIGKILLed: %s; sidecar %llu handled %llu (%d spawns, "
           "rejected %llu); untrusted servers %d, failed workers %d\n",
           sc_connection_mode_name(mode), POOL_UID,
           (unsigned long long)first.pid, (unsigned long long)first.traces,
           spawns1, idled ? "yes" : "no", (unsigned long long)second.pid,
           (unsigned long long)second.traces, spawns2, killed ? "yes" : "no",
           (unsigned long long)third.pid, (unsigned long long)third.traces,
           spawns3, (unsigned long long)third.rejected, untrusted, failed);
    th_signal_sidecars(dir, SIGKILL);
    CHECK(idled && killed && failed == 0 && untrusted == 0);
    CHECK(spawns1 == 1 && spawns2 == 1 && spawns3 == 1);
    CHECK(first.traces == WORKERS * TRACES);
    CHECK(second.traces == WORKERS * TRACES);
    CHECK(third.traces == WORKERS * TRACES);
    CHECK(third.rejected == 0);
    CHECK(first.pid != second.pid && second.pid != third.pid &&
          first.pid != third.pid);
    return 0;
}

/* ---- two masters, pools of two users ------------------------------------
 * Master A (allowed uid 33, pool of uid 33) starts first; master B (allowed
 * uid 65534, pool of uid 65534) later, while A's workers still run. Each
 * master is a root process of its own that calls sc_init. */

typedef struct {
    pid_t pid;
    int go;  /* write a byte: the master's workers and the master exit */
    bool ok; /* its round: no drop, one spawn, no untrusted server */
} master_t;

static master_t master_start(sc_connection_mode_t mode, uid_t pool_uid,
                             uint64_t base)
{
    master_t m = {-1, -1, false};
    int go[2], up[2];
    if (pipe(go) != 0 || pipe(up) != 0) {
        return m;
    }
    m.pid = fork();
    if (m.pid == 0) {
        close(go[1]);
        close(up[0]);
        sc_config_t cfg;
        base_config(&cfg, mode);
        cfg.allowed_uids[0] = pool_uid;
        cfg.allowed_uid_count = 1;
        if (sc_init(&cfg) != 0) {
            _exit(100);
        }
        pool_t p;
        int untrusted = 0;
        if (pool_start(&p, pool_uid, 1, base) != 0) {
            _exit(101);
        }
        int spawns = pool_round(&p, &untrusted);
        /* Round done: the test reads the sidecars' counts, then says go. */
        char c = spawns == 1 && untrusted == 0 ? 'y' : 'n';
        if (write(up[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) {
            _exit(102);
        }
        int failed = pool_go(&p, true);
        sc_shutdown();
        _exit(failed != 0 ? 103 : 0);
    }
    close(go[0]);
    close(up[1]);
    char c = 'n';
    m.ok = read(up[0], &c, 1) == 1 && c == 'y';
    close(up[0]);
    m.go = go[1];
    return m;
}

/* Lets a master finish; its exit status. */
static int master_finish(master_t *m)
{
    int rc = write(m->go, "g", 1) == 1 ? wait_child(m->pid) : -1;
    close(m->go);
    return rc;
}

/* A process of `uid` connects to the sidecar of `owner` (one plain
 * connection, as any program may) and must be closed without a byte.
 * 0 when it was. */
static int foreign_connect(uid_t uid, uid_t owner)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(uid) != 0 || setuid(uid) != 0) {
            _exit(100);
        }
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        const char *path = endpoint_of_user(owner);
        if (strlen(path) >= sizeof a.sun_path) {
            _exit(103);
        }
        memcpy(a.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            _exit(101);
        }
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char b;
        _exit(read(fd, &b, 1) == 0 ? 0 : 102); /* closed, nothing said */
    }
    return wait_child(pid);
}

static int two_masters(sc_connection_mode_t mode)
{
    chmod(dir, 01777);
    master_t a = master_start(mode, 33, 0);
    master_t b = master_start(mode, 65534, 1000000);
    CHECK(a.pid > 0 && b.pid > 0);
    user_sidecar_t sa = user_sidecar(33), sb = user_sidecar(65534);
    user_sidecar_t root = user_sidecar(0);
    /* Foreign users: each pool's user at the other pool's sidecar. */
    int foreign_a = foreign_connect(65534, 33);
    int foreign_b = foreign_connect(33, 65534);
    user_sidecar_t ra = user_sidecar(33), rb = user_sidecar(65534);
    int wa = master_finish(&a), wb = master_finish(&b);
    printf("%s, two root masters: uid 33 pool's sidecar %llu handled %llu "
           "traces, uid 65534 pool's sidecar %llu handled %llu; root's "
           "sidecar handled %llu; rejected before the foreign pings %llu "
           "and %llu, after %llu and %llu; foreign connections %s/%s; "
           "masters' "
           "rounds %s/%s, exit %d and %d\n",
           sc_connection_mode_name(mode), (unsigned long long)sa.pid,
           (unsigned long long)sa.traces, (unsigned long long)sb.pid,
           (unsigned long long)sb.traces, (unsigned long long)root.traces,
           (unsigned long long)sa.rejected, (unsigned long long)sb.rejected,
           (unsigned long long)ra.rejected, (unsigned long long)rb.rejected,
           foreign_a == 0 ? "closed" : "NOT CLOSED",
           foreign_b == 0 ? "closed" : "NOT CLOSED", a.ok ? "ok" : "FAILED",
           b.ok ? "ok" : "FAILED", wa, wb);
    th_signal_sidecars(dir, SIGKILL);
    CHECK(a.ok && b.ok && wa == 0 && wb == 0);
    CHECK(sa.traces == WORKERS * TRACES && sb.traces == WORKERS * TRACES);
    CHECK(sa.pid != sb.pid && root.traces == 0);
    CHECK(sa.rejected == 0 && sb.rejected == 0);
    CHECK(foreign_a == 0 && foreign_b == 0);
    CHECK(ra.rejected == 1 && rb.rejected == 1);
    return 0;
}

/* ---- squatter --------------------------------------------------------------
 * A process of uid 65534 binds root's sidecar name (abstract, in a network
 * namespace of the test's own) and records every byte it is sent. Root's
 * workers must send it nothing: subprocess mode drops and counts
 * (untrusted_servers), auto falls back to a listener of its own. Both
 * before root's sidecar starts and after it died. */

static int squatter_main(int ready)
{
    if (setgid(65534) != 0 || setuid(65534) != 0) {
        _exit(100);
    }
    char name[128];
    snprintf(name, sizeof name, "sidecar-%s-0", sc_version());
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path + 1, name, strlen(name));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 ||
        bind(fd, (struct sockaddr *)&a,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                         strlen(name))) != 0 ||
        listen(fd, 64) != 0) {
        _exit(101);
    }
    if (write(ready, "r", 1) != 1) {
        _exit(102);
    }
    unsigned long long got = 0;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        char buf[4096];
        ssize_t n;
        struct timeval tv = {0, 200000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while ((n = read(c, buf, sizeof buf)) > 0) {
            got += (unsigned long long)n;
        }
        close(c);
        /* Report after each connection: the test reads the last line. */
        dprintf(ready, "%llu\n", got);
    }
}

static pid_t start_squatter(int *report)
{
    int p[2];
    if (pipe(p) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left behind by a failure */
        squatter_main(p[1]);
        _exit(0);
    }
    close(p[1]);
    char c;
    if (read(p[0], &c, 1) != 1) {
        return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *report = p[0];
    return pid;
}

/* Bytes the squatter received, from its last report. */
static unsigned long long squatter_bytes(int report)
{
    char buf[4096];
    unsigned long long last = 0;
    ssize_t n;
    while ((n = read(report, buf, sizeof buf - 1)) > 0) {
        buf[n] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            last = strtoull(line, NULL, 10);
            line = nl + 1;
        }
    }
    return last;
}

typedef struct {
    int mode, flush, reason_names_squatter;
    unsigned long long untrusted;
} squat_report_t;

/* A root worker: with `warmup`, a first round to root's own sidecar (which
 * must succeed), then the master's go; then 20 traces and a barrier. */
static void squat_worker(bool warmup, int report, int go)
{
    if (warmup) {
        char c;
        int bad = send_and_flush(10, 1);
        if (write(report, &bad, sizeof bad) != sizeof bad ||
            read(go, &c, 1) != 1) {
            _exit(101);
        }
    }
    uint8_t payload[64];
    for (int i = 0; i < 20; i++) {
        size_t len = th_trace_payload(payload, (uint64_t)i + 100);
        sc_send_trace(payload, len, 1);
    }
    squat_report_t r = {0};
    r.flush = sc_flush_sync(1000);
    sc_runtime_info_t info;
    sc_runtime_info(&info);
    sc_client_stats_t st;
    sc_client_stats(sc_runtime_client(), &st);
    r.mode = info.mode;
    r.untrusted = st.untrusted_servers;
    r.reason_names_squatter = strstr(info.reason, "another user") != NULL;
    if (write(report, &r, sizeof r) != sizeof r) {
        _exit(102);
    }
    sc_shutdown();
    _exit(0);
}

/* A root master in `mode` and its workers against the squatter, which
 * takes the name first or (`after_exit`) once the workers' sidecar died.
 * Runs in a process of its own; 0 when everything behaved. */
static int squat_master(sc_connection_mode_t mode, bool after_exit)
{
    int report = -1;
    pid_t sq = after_exit ? 0 : start_squatter(&report);
    CHECK(sq >= 0);
    sc_config_t cfg;
    base_config(&cfg, mode);
    cfg.endpoint_dir = NULL; /* abstract names: the squatter's */
    cfg.connect_timeout_ms = 300;
    sc_init(&cfg);
    int rep[2], go[2];
    CHECK(pipe(rep) == 0 && pipe(go) == 0);
    pid_t kids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        kids[w] = fork();
        if (kids[w] == 0) {
            squat_worker(after_exit, rep[1], go[0]);
        }
    }
    if (after_exit) {
        for (int w = 0; w < WORKERS; w++) {
            int bad = 1;
            CHECK(read(rep[0], &bad, sizeof bad) == sizeof bad && bad == 0);
        }
        sc_runtime_info_t info;
        sc_runtime_info(&info);
        CHECK(info.sidecar_pid != 0);
        kill_sidecar(info.sidecar_pid);
        CHECK(wait_gone(info.sidecar_pid, 5000));
        sq = start_squatter(&report);
        CHECK(sq > 0);
        CHECK(write(go[1], "123", WORKERS) == WORKERS);
    }
    int bad = 0;
    for (int w = 0; w < WORKERS; w++) {
        squat_report_t r;
        CHECK(read(rep[0], &r, sizeof r) == sizeof r);
        bool ok = mode == SC_MODE_AUTO
                      ? r.mode == SC_MODE_THREAD && r.flush == 0
                      : r.mode == SC_MODE_SUBPROCESS && r.flush != 0 &&
                            r.untrusted > 0;
        /* Auto says why it left subprocess mode; subprocess mode keeps its
         * reason from sc_init and counts the refusals. */
        ok = ok && (r.reason_names_squatter ||
                    (mode == SC_MODE_SUBPROCESS && after_exit));
        printf("  %s, squatter %s: root worker %d: mode %s, barrier %s, "
               "untrusted servers %llu, reason names the squatter: %s%s\n",
               sc_connection_mode_name(mode),
               after_exit ? "after the sidecar died" : "first", w,
               sc_connection_mode_name((sc_connection_mode_t)r.mode),
               r.flush == 0 ? "ok" : sc_strerror(r.flush), r.untrusted,
               r.reason_names_squatter ? "yes" : "no", ok ? "" : " FAILED");
        bad += !ok;
    }
    for (int w = 0; w < WORKERS; w++) {
        bad += wait_child(kids[w]) != 0;
    }
    sc_shutdown();
    usleep(300000); /* the squatter reports after each connection */
    unsigned long long got = squatter_bytes(report);
    printf("  %s, squatter %s: bytes it received %llu\n",
           sc_connection_mode_name(mode),
           after_exit ? "after the sidecar died" : "first", got);
    if (sq > 0) {
        kill(sq, SIGKILL);
        wait_child(sq);
    }
    fflush(stdout);
    CHECK(bad == 0 && got == 0);
    return 0;
}

static int squatter(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        printf("SKIP: no network namespace of our own (%s)\n", strerror(errno));
        return 77;
    }
    int failed = 0;
    for (int after = 0; after < 2; after++) {
        sc_connection_mode_t modes[] = {SC_MODE_SUBPROCESS, SC_MODE_AUTO};
        for (int m = 0; m < 2; m++) {
            pid_t pid = fork();
            if (pid == 0) {
                _exit(squat_master(modes[m], after != 0));
            }
            failed += wait_child(pid) != 0;
        }
    }
    CHECK(failed == 0);
    return 0;
}

static sc_connection_mode_t mode_of(const char *s, const char *prefix)
{
    return strcmp(s + strlen(prefix), "auto") == 0 ? SC_MODE_AUTO
                                                   : SC_MODE_SUBPROCESS;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_pool_users <scenario>\n");
        return 2;
    }
    if (geteuid() != 0) {
        printf("SKIP: workers of other users need root\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/sidecar-pu-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return 1;
    }
    const char *s = argv[1];
    int rc = 2;
    if (strncmp(s, "pool_gone_", 10) == 0) {
        rc = pool_gone(mode_of(s, "pool_gone_"));
    } else if (strncmp(s, "two_masters_", 12) == 0) {
        rc = two_masters(mode_of(s, "two_masters_"));
    } else if (strcmp(s, "squatter") == 0) {
        rc = squatter();
    }
    printf("%s\n", rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL");
    return rc;
}
