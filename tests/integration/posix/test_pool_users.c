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
 *
 * <mode> is subprocess or auto. Usage: test_pool_users <scenario>. */
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
        rep.bad = ph_send_and_flush(TRACES, base + (uint64_t)r * 100000);
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
            failed += ph_wait_child(p->pids[w]) != 0;
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
    ph_config(&cfg, mode, dir);
    cfg.idle_timeout_ms = 1000;
    TH_CHECK(sc_init(&cfg) == 0);
    int untrusted = 0;

    pool_t p;
    TH_CHECK(pool_start(&p, POOL_UID, 1, 0) == 0);
    int spawns1 = pool_round(&p, &untrusted);
    user_sidecar_t first = user_sidecar(POOL_UID);
    TH_CHECK(pool_go(&p, true) == 0); /* the workers exit: no connection left */
    bool idled = ph_wait_gone(first.pid, 20000);

    TH_CHECK(pool_start(&p, POOL_UID, 2, 10000000) == 0);
    int spawns2 = pool_round(&p, &untrusted);
    user_sidecar_t second = user_sidecar(POOL_UID);
    ph_kill_sidecar(second.pid);
    bool killed = ph_wait_gone(second.pid, 5000);
    TH_CHECK(pool_go(&p, false) == 0);
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
    TH_CHECK(idled && killed && failed == 0 && untrusted == 0);
    TH_CHECK(spawns1 == 1 && spawns2 == 1 && spawns3 == 1);
    TH_CHECK(first.traces == WORKERS * TRACES);
    TH_CHECK(second.traces == WORKERS * TRACES);
    TH_CHECK(third.traces == WORKERS * TRACES);
    TH_CHECK(third.rejected == 0);
    TH_CHECK(first.pid != second.pid && second.pid != third.pid &&
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
        ph_config(&cfg, mode, dir);
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
    int rc = write(m->go, "g", 1) == 1 ? ph_wait_child(m->pid) : -1;
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
    return ph_wait_child(pid);
}

static int two_masters(sc_connection_mode_t mode)
{
    chmod(dir, 01777);
    master_t a = master_start(mode, 33, 0);
    master_t b = master_start(mode, 65534, 1000000);
    TH_CHECK(a.pid > 0 && b.pid > 0);
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
    TH_CHECK(a.ok && b.ok && wa == 0 && wb == 0);
    TH_CHECK(sa.traces == WORKERS * TRACES && sb.traces == WORKERS * TRACES);
    TH_CHECK(sa.pid != sb.pid && root.traces == 0);
    TH_CHECK(sa.rejected == 0 && sb.rejected == 0);
    TH_CHECK(foreign_a == 0 && foreign_b == 0);
    TH_CHECK(ra.rejected == 1 && rb.rejected == 1);
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
    }
    th_remove_test_dir(dir);
    printf("%s\n", rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL");
    return rc;
}
