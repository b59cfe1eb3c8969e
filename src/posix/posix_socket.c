/* Sockets libcurl connects with (the flusher opens and closes them). */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int sc_plat_socket_open(int family, int type, int protocol, uv_os_sock_t *out)
{
#if defined(SOCK_CLOEXEC)
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
#else
    int fd = socket(family, type, protocol);
    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
#endif
    if (fd < 0) {
        return -errno;
    }
    *out = fd;
    return 0;
}

void sc_plat_socket_close(uv_os_sock_t sock)
{
    close(sock);
}

void sc_plat_socket_set_cloexec(uv_os_sock_t sock)
{
    int flags = fcntl(sock, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) {
        fcntl(sock, F_SETFD, flags | FD_CLOEXEC);
    }
}

#define FDS_WINDOW 256

void sc_plat_fds_before(sc_plat_fds_t *fds)
{
    memset(fds, 0, sizeof *fds);
    /* The lowest free number: where new descriptors start. */
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0) {
        fds->base = -1;
        return;
    }
    close(probe);
    fds->base = probe;
    for (int i = 0; i < FDS_WINDOW; i++) {
        if (fcntl(probe + i, F_GETFD) >= 0) {
            fds->open[i / 64] |= 1ull << (i % 64);
        }
    }
}

void sc_plat_cloexec_new_sockets(const sc_plat_fds_t *before)
{
    if (before->base < 0) {
        return;
    }
    for (int i = 0; i < FDS_WINDOW; i++) {
        int fd = before->base + i;
        int type = 0;
        socklen_t len = sizeof type;
        if ((before->open[i / 64] >> (i % 64)) & 1u) {
            continue; /* not new: someone else's */
        }
        if (fcntl(fd, F_GETFD) >= 0 &&
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
            sc_plat_socket_set_cloexec(fd);
        }
    }
}
