/* Windows has no Unix datagram sockets (AF_UNIX there is stream only):
 * DogStatsD goes over UDP (docs/metrics.md). */
#include "platform.h"

int sc_plat_unix_dgram_connect(const char *path, uv_os_sock_t *out)
{
    (void)path;
    (void)out;
    return UV_ENOTSUP;
}
