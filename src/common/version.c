/* Build identity and status strings. */
#include "sidecar.h"

#include <uv.h>

const char *sc_version(void)
{
    return SIDECAR_VERSION;
}

const char *sc_strerror(int status)
{
    if (status == SC_EDROPPED) {
        return "action dropped (buffer full or no sidecar reachable)";
    }
    return uv_strerror(status);
}
