/* Detached daemon start and fork handlers.
 *
 * A double fork: the intermediate child calls setsid() and forks the daemon,
 * then exits at once and is reaped here, so the daemon is reparented to init
 * (or the nearest subreaper) and no zombie of ours ever remains. The daemon's
 * pid and, if exec fails, its errno come back through a close-on-exec pipe. */
#define _GNU_SOURCE
#include "platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PASSED_FD 3

/* Closes every descriptor >= `from` (the daemon inherits nothing else). */
static void close_from(int from)
{
#if defined(__linux__) && defined(SYS_close_range)
    if (syscall(SYS_close_range, from, ~0U, 0) == 0) {
        return;
    }
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) {
        max = 65536;
    }
    for (int fd = from; fd < max; fd++) {
        close(fd);
    }
}

/* In the daemon, before exec: only async-signal-safe calls. */
static void exec_daemon(char *const argv[], int pass_fd, int report_fd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++) {
        signal(sig, SIG_DFL);
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    /* The report pipe must survive the shuffle: park it high first. */
    int report = fcntl(report_fd, F_DUPFD_CLOEXEC, 64);
    if (pass_fd >= 0) {
        if (pass_fd == PASSED_FD) {
            fcntl(PASSED_FD, F_SETFD, 0);
        } else {
            dup2(pass_fd, PASSED_FD); /* dup2 clears close-on-exec */
        }
    }
    int keep = pass_fd >= 0 ? PASSED_FD + 1 : PASSED_FD;
    for (int fd = keep; fd < 64; fd++) {
        close(fd);
    }
    close_from(65);
    pid_t self = getpid();
    ssize_t w = write(report, &self, sizeof self);
    (void)w;
    execv(argv[0], argv);
    int err = errno;
    w = write(report, &err, sizeof err);
    (void)w;
    _exit(127);
}

int sc_plat_spawn_detached(const char *const argv[], int64_t pass_handle,
                           uint32_t *pid)
{
    /* execv wants mutable strings; the copy is made before fork so the
     * child only calls async-signal-safe functions. */
    char *args[64];
    size_t argc = 0;
    for (; argv[argc] != NULL && argc < 63; argc++) {
    }
    memcpy(args, argv, argc * sizeof *args);
    args[argc] = NULL;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        return -errno;
    }
    pid_t middle = fork();
    if (middle < 0) {
        int err = -errno;
        close(report[0]);
        close(report[1]);
        return err;
    }
    if (middle == 0) {
        close(report[0]);
        setsid();
        pid_t daemon = fork();
        if (daemon == 0) {
            exec_daemon(args, (int)pass_handle, report[1]);
        }
        _exit(daemon < 0 ? 1 : 0);
    }
    close(report[1]);
    int status = 0;
    while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {
    }
    pid_t daemon_pid = 0;
    int exec_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &daemon_pid, sizeof daemon_pid);
    } while (n < 0 && errno == EINTR);
    int rc = 0;
    if (n != (ssize_t)sizeof daemon_pid) {
        rc = -ECHILD; /* the intermediate child failed to fork */
    } else {
        do {
            n = read(report[0], &exec_errno, sizeof exec_errno);
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof exec_errno) {
            rc = -exec_errno;
        }
    }
    close(report[0]);
    if (rc == 0) {
        *pid = (uint32_t)daemon_pid;
    }
    return rc;
}

int64_t sc_plat_passed_handle_value(int64_t pass_handle)
{
    (void)pass_handle;
    return PASSED_FD;
}

void sc_plat_close_raw(int64_t handle)
{
    if (handle >= 0) {
        close((int)handle);
    }
}

int sc_plat_atfork(void (*prepare)(void), void (*parent)(void),
                   void (*child)(void))
{
    return -pthread_atfork(prepare, parent, child);
}
