/* Process configuration: defaults, connection-mode names and the DD_*
 * environment (docs/runtime.md lists every setting). */
#include "abi.h"
#include "access.h"
#include "install_paths.h"
#include "log.h"
#include "sidecar.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A sidecar the runtime starts exits above this RSS (sc_config_t). */
#define SC_DEFAULT_RSS_CAP ((uint64_t)512 * 1024 * 1024)

const char *sc_connection_mode_name(sc_connection_mode_t mode)
{
    switch (mode) {
    case SC_MODE_SUBPROCESS:
        return "subprocess";
    case SC_MODE_THREAD:
        return "thread";
    default:
        return "auto";
    }
}

int sc_connection_mode_parse(const char *s, sc_connection_mode_t *out)
{
    static const sc_connection_mode_t modes[] = {
        SC_MODE_AUTO, SC_MODE_SUBPROCESS, SC_MODE_THREAD};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcasecmp(s, sc_connection_mode_name(modes[i])) == 0) {
            *out = modes[i];
            return 0;
        }
    }
    return UV_EINVAL;
}

void sc_config_defaults(sc_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->struct_size = (uint32_t)sizeof *cfg;
    cfg->mode = SC_MODE_AUTO;
    cfg->sidecar_path = sc_install_sidecar_path();
    cfg->connect_timeout_ms = 1000;
    cfg->idle_timeout_ms = 60000;
    cfg->exit_flush_timeout_ms = 1000;
    cfg->flag_evaluation_counts = -1;
    cfg->rss_cap_bytes = SC_DEFAULT_RSS_CAP;
}

static int env_u32(const char *name, uint32_t *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return 0;
    }
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    if (*end != '\0' || v[0] == '-' || n > UINT32_MAX) {
        sc_log(SC_LOG_WARN, "ignoring %s=%s: not a number of milliseconds",
               name, v);
        return UV_EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

/* A byte count: digits only, or UV_EINVAL (logged, `*out` untouched). */
static int env_bytes(const char *name, uint64_t *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        return 0;
    }
    uint64_t n = 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10) {
            sc_log(SC_LOG_WARN, "ignoring %s=%s: not a number of bytes", name,
                   v);
            return UV_EINVAL;
        }
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *out = n;
    return 0;
}

static void env_str(const char *name, const char **out)
{
    const char *v = getenv(name);
    if (v != NULL && *v != '\0') {
        *out = v;
    }
}

int sc_config_from_env(sc_config_t *cfg)
{
    int rc = 0;
    const char *mode = getenv("DD_TRACE_SIDECAR_CONNECTION_MODE");
    if (mode != NULL && *mode != '\0' &&
        sc_connection_mode_parse(mode, &cfg->mode) != 0) {
        sc_log(SC_LOG_WARN,
               "ignoring DD_TRACE_SIDECAR_CONNECTION_MODE=%s (auto, "
               "subprocess or thread)",
               mode);
        rc = UV_EINVAL;
    }
    env_str("DD_TRACE_SIDECAR_PATH", &cfg->sidecar_path);
    env_str("DD_TRACE_SIDECAR_ENDPOINT_DIR", &cfg->endpoint_dir);
    if (env_u32("DD_TRACE_SIDECAR_CONNECT_TIMEOUT", &cfg->connect_timeout_ms) !=
            0 ||
        env_u32("DD_TRACE_SIDECAR_IDLE_TIMEOUT", &cfg->idle_timeout_ms) != 0) {
        rc = UV_EINVAL;
    }
    const char *uids = getenv("DD_TRACE_SIDECAR_ALLOWED_UIDS");
    if (uids != NULL && *uids != '\0') {
        int n = sc_access_parse_uids(uids, cfg->allowed_uids, 16);
        if (n < 0) {
            sc_log(SC_LOG_WARN,
                   "ignoring DD_TRACE_SIDECAR_ALLOWED_UIDS=%s (comma-separated "
                   "uids, at most 16)",
                   uids);
            rc = UV_EINVAL;
        } else {
            cfg->allowed_uid_count = (size_t)n;
        }
    }
    const char *sids = getenv("DD_TRACE_SIDECAR_ALLOWED_SIDS");
    sc_access_t check = {0};
    if (sids != NULL && *sids != '\0') {
        if (sc_access_parse_sids(&check, sids) != 0) {
            sc_log(SC_LOG_WARN,
                   "ignoring DD_TRACE_SIDECAR_ALLOWED_SIDS=%s "
                   "(comma-separated SID strings, at most %d)",
                   sids, SC_MAX_ALLOWED_SIDS);
            rc = UV_EINVAL;
        } else {
            cfg->allowed_sids = sids;
        }
    }
    /* A caller of the 0.1 layout has no such field: not ours to write. */
    if (SC_CONFIG_HAS(cfg, rss_cap_bytes) &&
        env_bytes("DD_TRACE_SIDECAR_RSS_CAP", &cfg->rss_cap_bytes) != 0) {
        rc = UV_EINVAL;
    }
    env_str("DD_SERVICE", &cfg->client.service);
    env_str("DD_ENV", &cfg->client.env);
    env_str("DD_VERSION", &cfg->client.version);
    env_str("DD_TRACE_AGENT_URL", &cfg->client.agent_url);
    return rc;
}
