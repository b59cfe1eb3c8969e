/* Reading the sidecar's settings from its environment (env.h). */
#include "env.h"

#include "log.h"

#include <string.h>
#include <strings.h>
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

bool sc_env_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}
