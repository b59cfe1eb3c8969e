/* Layout checks for the public option structs. The library only ever grows
 * them at the end; struct_size tells which version a caller was compiled
 * against. A check accepts a size in these tables (or 0, the 0.1 layout)
 * and rejects anything else rather than read past the caller's struct;
 * sc_abi_config_copy fills what an older caller lacks with defaults.
 * sc_config_t: the 0.1 layout, then + rss_cap_bytes. */
#include "abi.h"

#include "log.h"

#include <string.h>
#include <uv.h>

static const size_t config_sizes[] = {SC_CONFIG_SIZE_0_1, sizeof(sc_config_t)};
static const size_t client_options_sizes[] = {sizeof(sc_client_options_t)};

static bool known(uint32_t size, const size_t *sizes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (size == sizes[i]) {
            return true;
        }
    }
    return false;
}

int sc_config_init(sc_config_t *cfg, size_t size)
{
    if (cfg == NULL || !known((uint32_t)size, config_sizes,
                              sizeof config_sizes / sizeof config_sizes[0])) {
        return UV_EINVAL;
    }
    sc_config_t full;
    sc_config_defaults(&full);
    full.struct_size = (uint32_t)size;
    memcpy(cfg, &full, size);
    return 0;
}

/* 0 for a size in `sizes` or 0; otherwise logs which struct and fails. */
static int check_size(const char *type, uint32_t size, const size_t *sizes,
                      size_t n)
{
    if (size == 0 || known(size, sizes, n)) {
        return 0;
    }
    sc_log(SC_LOG_ERROR,
           "%s of %u bytes: built against another sidecar.h (this library "
           "%s knows %zu)",
           type, (unsigned)size, SIDECAR_VERSION, sizes[n - 1]);
    return UV_EINVAL;
}

int sc_abi_config_check(const sc_config_t *cfg)
{
    int rc = check_size("sc_config_t", cfg->struct_size, config_sizes,
                        sizeof config_sizes / sizeof config_sizes[0]);
    return rc != 0 ? rc : sc_abi_client_options_check(&cfg->client);
}

int sc_abi_client_options_check(const sc_client_options_t *options)
{
    return check_size(
        "sc_client_options_t", options->struct_size, client_options_sizes,
        sizeof client_options_sizes / sizeof client_options_sizes[0]);
}

void sc_abi_config_copy(sc_config_t *dst, const sc_config_t *src)
{
    sc_config_defaults(dst);
    size_t size = src->struct_size == 0 ? SC_CONFIG_SIZE_0_1 : src->struct_size;
    memcpy(dst, src, size < sizeof *dst ? size : sizeof *dst);
    dst->struct_size = (uint32_t)sizeof *dst;
}
