/* POSIX implementation of src/common/http_plat.h for the flusher tests.
 *
 * This belongs in src/posix/ (and a WSASocketW / closesocket twin in
 * src/win32/); it lives here only until the platform layer provides it.
 * Once it does, delete this file and its mention in tests/CMakeLists.txt. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_plat.h"

int sc_plat_socket_open(int family, int type, int protocol, uv_os_sock_t *out)
{
#ifdef SOCK_CLOEXEC
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
#else
    int fd = socket(family, type, protocol);
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        int err = errno;
        close(fd);
        return uv_translate_sys_error(err);
    }
#endif
    if (fd < 0) {
        return uv_translate_sys_error(errno);
    }
    *out = fd;
    return 0;
}

void sc_plat_socket_close(uv_os_sock_t sock)
{
    close(sock);
}
