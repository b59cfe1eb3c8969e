/* Unix datagram sockets for DogStatsD (dogstatsd.c drives them with
 * uv_udp once connected). */
#include "platform.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int sc_plat_unix_dgram_connect(const char *path, uv_os_sock_t *out)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr.sun_path) {
        return UV_ENAMETOOLONG;
    }
    memcpy(addr.sun_path, path, strlen(path));
    uv_os_sock_t fd;
    int rc = sc_plat_socket_open(AF_UNIX, SOCK_DGRAM, 0, &fd);
    if (rc != 0) {
        return rc;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}
