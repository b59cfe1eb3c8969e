/* Endpoint addresses and identity on POSIX. */
#define _GNU_SOURCE
#include "platform.h"
#include "posix_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

sc_endpoint_kind_t sc_plat_default_endpoint_kind(void)
{
#if defined(__linux__)
    return SC_ENDPOINT_ABSTRACT;
#else
    return SC_ENDPOINT_FILESYSTEM;
#endif
}

uint32_t sc_plat_master_name_pid(uint32_t self)
{
    return self; /* workers are forked from their master: its pid */
}

int sc_plat_master_claim(const char *name, int backlog, int64_t *handle)
{
    return sc_plat_bind_handoff(name, backlog, handle);
}

bool sc_plat_master_contestable(uint32_t pid)
{
    return !sc_plat_process_alive(pid);
}

int sc_plat_identity(char *out, size_t size)
{
    int n = snprintf(out, size, "%u", (unsigned)geteuid());
    return n > 0 && (size_t)n < size ? 0 : UV_ENOBUFS;
}

int posix_endpoint_addr(const char *endpoint, struct sockaddr_un *addr,
                        socklen_t *len)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    size_t n = strlen(endpoint);
    if (n == 0) {
        return UV_EINVAL;
    }
    if (endpoint[0] == '@') {
#if defined(__linux__)
        if (n > sizeof addr->sun_path) {
            return UV_ENAMETOOLONG;
        }
        /* sun_path[0] stays NUL: the abstract namespace. */
        memcpy(addr->sun_path + 1, endpoint + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
#else
        return UV_ENOTSUP;
#endif
    }
    if (n >= sizeof addr->sun_path) {
        return UV_ENAMETOOLONG;
    }
    memcpy(addr->sun_path, endpoint, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int posix_unix_socket(void)
{
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
#else
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        return -errno;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
#endif
#if defined(SO_NOSIGPIPE)
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}
