/* Sockets libcurl connects with (the flusher opens and closes them). */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
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
