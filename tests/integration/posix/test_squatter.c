/* A process of another user binds root's sidecar name first, and again
 * after root's sidecar died: root's workers send it nothing, in subprocess
 * and auto mode (docs/transport.md, "Who the client trusts"). Needs root
 * and a network namespace of its own (exit 77 otherwise).
 *
 * Usage: test_squatter. */
#define _GNU_SOURCE
#include "harness.h"
#include "pool_host.h"
#include "sidecar.h"

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
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define WORKERS 3

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
        int bad = ph_send_and_flush(10, 1);
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
    TH_CHECK(sq >= 0);
    sc_config_t cfg;
    ph_config(&cfg, mode, NULL); /* abstract names: the squatter's */
    cfg.connect_timeout_ms = 300;
    sc_init(&cfg);
    int rep[2], go[2];
    TH_CHECK(pipe(rep) == 0 && pipe(go) == 0);
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
            TH_CHECK(read(rep[0], &bad, sizeof bad) == sizeof bad && bad == 0);
        }
        sc_runtime_info_t info;
        sc_runtime_info(&info);
        TH_CHECK(info.sidecar_pid != 0);
        ph_kill_sidecar(info.sidecar_pid);
        TH_CHECK(ph_wait_gone(info.sidecar_pid, 5000));
        sq = start_squatter(&report);
        TH_CHECK(sq > 0);
        TH_CHECK(write(go[1], "123", WORKERS) == WORKERS);
    }
    int bad = 0;
    for (int w = 0; w < WORKERS; w++) {
        squat_report_t r;
        TH_CHECK(read(rep[0], &r, sizeof r) == sizeof r);
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
        bad += ph_wait_child(kids[w]) != 0;
    }
    sc_shutdown();
    usleep(300000); /* the squatter reports after each connection */
    unsigned long long got = squatter_bytes(report);
    printf("  %s, squatter %s: bytes it received %llu\n",
           sc_connection_mode_name(mode),
           after_exit ? "after the sidecar died" : "first", got);
    if (sq > 0) {
        kill(sq, SIGKILL);
        ph_wait_child(sq);
    }
    fflush(stdout);
    TH_CHECK(bad == 0 && got == 0);
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
            failed += ph_wait_child(pid) != 0;
        }
    }
    TH_CHECK(failed == 0);
    return 0;
}

int main(void)
{
    if (geteuid() != 0) {
        printf("SKIP: a squatter of another uid needs root\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = squatter();
    printf("%s\n", rc == 0 ? "PASS" : rc == 77 ? "SKIP" : "FAIL");
    return rc;
}
