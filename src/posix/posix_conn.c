/* The client side of a connection: a plain non-blocking socket, no event
 * loop, so that a request thread only ever pays for a send(). */
#define _GNU_SOURCE
#include "platform.h"
#include "posix_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sc_plat_conn {
    int fd;
};

#if defined(MSG_NOSIGNAL)
#define SEND_FLAGS MSG_NOSIGNAL /* a dead sidecar must not SIGPIPE the host */
#else
#define SEND_FLAGS 0
#endif

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* The uid an endpoint is named after: "sidecar-<version>-<uid>" with an
 * optional "-<master pid>" or "-thread" and ".sock" (docs/transport.md);
 * the version has no '-'. -1 for a name of another form. */
static long long named_uid(const char *endpoint)
{
    const char *base = strrchr(endpoint, '/');
    base = base != NULL ? base + 1 : endpoint + (endpoint[0] == '@');
    if (strncmp(base, "sidecar-", 8) != 0) {
        return -1;
    }
    const char *p = strchr(base + 8, '-');
    if (p == NULL || p[1] < '0' || p[1] > '9') {
        return -1;
    }
    char *end = NULL;
    long long uid = strtoll(p + 1, &end, 10);
    bool whole = *end == '\0' || *end == '-' || strcmp(end, ".sock") == 0;
    return whole && uid <= UINT32_MAX ? uid : -1;
}

/* Abstract sockets have no permissions: anyone may bind a name first, and
 * a shared endpoint directory (sticky, like /tmp) lets another user create
 * a socket of ours before we do. The server must run as root, as us, or as
 * the user the endpoint is named after (SO_PEERCRED, or getpeereid where
 * there is none, on our side gives the credentials of the process that
 * listened). UV_EACCES otherwise: not one byte is sent to it. */
static int server_is_trusted(int fd, const char *endpoint)
{
#if defined(SO_PEERCRED)
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return -errno;
    }
    uid_t uid = cred.uid;
#else
    uid_t uid;
    gid_t gid;
    if (getpeereid(fd, &uid, &gid) != 0) {
        return -errno;
    }
#endif
    if (uid == 0 || uid == geteuid() || (long long)uid == named_uid(endpoint)) {
        return 0;
    }
    return UV_EACCES;
}

int sc_plat_conn_open(const char *endpoint, uint32_t timeout_ms,
                      sc_plat_conn_t **out)
{
    struct sockaddr_un addr;
    socklen_t len;
    int rc = posix_endpoint_addr(endpoint, &addr, &len);
    if (rc != 0) {
        return rc;
    }
    int fd = posix_unix_socket();
    if (fd < 0) {
        return fd;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&addr, len) == 0) {
            break;
        }
        int err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            uint64_t now = now_ms();
            int wait = now < deadline ? (int)(deadline - now) : 0;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&p, 1, wait) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
                soerr == 0) {
                break;
            }
            close(fd);
            return soerr != 0 ? -soerr : UV_ETIMEDOUT;
        }
        /* EAGAIN: the listener's backlog is full; it is alive, so retry
         * until the deadline. */
        if (err == EAGAIN && now_ms() < deadline) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        close(fd);
        return err == EAGAIN ? UV_ETIMEDOUT : -err;
    }
    rc = server_is_trusted(fd, endpoint);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    sc_plat_conn_t *c = malloc(sizeof *c);
    if (c == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    c->fd = fd;
    *out = c;
    return 0;
}

long sc_plat_conn_write(sc_plat_conn_t *c, const void *data, size_t len)
{
    for (;;) {
        ssize_t n = send(c->fd, data, len, SEND_FLAGS);
        if (n >= 0) {
            return (long)n;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        return -errno;
    }
}

long sc_plat_conn_read(sc_plat_conn_t *c, void *data, size_t len)
{
    for (;;) {
        ssize_t n = recv(c->fd, data, len, 0);
        if (n > 0) {
            return (long)n;
        }
        if (n == 0) {
            return UV_EOF;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        return -errno;
    }
}

int sc_plat_conn_wait(sc_plat_conn_t *c, bool want_read, bool want_write,
                      uint32_t timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = 0};
    if (want_read) {
        p.events |= POLLIN;
    }
    if (want_write) {
        p.events |= POLLOUT;
    }
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        uint64_t now = now_ms();
        int wait = now < deadline ? (int)(deadline - now) : 0;
        int n = poll(&p, 1, wait);
        if (n > 0) {
            return 1; /* errors and hang-ups surface on the next read/write */
        }
        if (n == 0) {
            return 0;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

void sc_plat_conn_close(sc_plat_conn_t *c)
{
    if (c != NULL) {
        close(c->fd);
        free(c);
    }
}
