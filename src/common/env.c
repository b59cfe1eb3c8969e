/* Reading the sidecar's settings from its environment (env.h). */
#include "env.h"

#include "log.h"

#include <uv.h>

const char *sc_env(const char *name, char *buf, size_t size)
{
    size_t len = size;
    return uv_os_getenv(name, buf, &len) == 0 && buf[0] != '\0' ? buf : NULL;
}

int sc_env_invalid(const char *name, const char *value)
{
    sc_log(SC_LOG_WARN, "ignoring %s=%s", name, value);
    return UV_EINVAL;
}
