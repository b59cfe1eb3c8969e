/* Fuzz target: every setting read from the environment (and from the PHP
 * INI, which hands the same strings over): the input holds NUL-separated
 * values for the DD_ variables below, set in the environment before
 * sc_config_from_env() reads them, and each also goes through the parsers
 * that take it directly (uids, SIDs, log level, connection mode, the flag
 * evaluation switch, the agent address). */
#include "access.h"
#include "agent_url.h"
#include "flageval.h"
#include "fuzz_input.h"
#include "log.h"
#include "sidecar.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "DD_TRACE_SIDECAR_CONNECTION_MODE",
    "DD_TRACE_SIDECAR_PATH",
    "DD_TRACE_SIDECAR_ENDPOINT_DIR",
    "DD_TRACE_SIDECAR_CONNECT_TIMEOUT",
    "DD_TRACE_SIDECAR_IDLE_TIMEOUT",
    "DD_TRACE_SIDECAR_ALLOWED_UIDS",
    "DD_TRACE_SIDECAR_ALLOWED_SIDS",
    "DD_TRACE_AGENT_URL",
    "DD_AGENT_HOST",
    "DD_TRACE_AGENT_PORT",
    "DD_FLAGGING_EVALUATION_COUNTS_ENABLED",
};
#define NAMES (sizeof names / sizeof names[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        /* Rejected settings are logged as warnings: keep the run readable. */
        sc_log_configure(SC_LOG_ERROR, NULL);
        quiet = true;
    }
    char *v[NAMES];
    size_t n = fuzz_split(data, size, v, NAMES);
    for (size_t i = 0; i < NAMES; i++) {
        if (i < n) {
            setenv(names[i], v[i], 1);
        } else {
            unsetenv(names[i]);
        }
    }
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    (void)sc_config_from_env(&cfg);

    for (size_t i = 0; i < n; i++) {
        uint32_t uids[SC_MAX_ALLOWED_UIDS];
        (void)sc_access_parse_uids(v[i], uids, SC_MAX_ALLOWED_UIDS);
        sc_access_t access;
        memset(&access, 0, sizeof access);
        (void)sc_access_parse_sids(&access, v[i]);
        (void)sc_access_add_sid(&access, v[i]);
        sc_log_level_t level;
        (void)sc_log_parse_level(v[i], &level);
        sc_connection_mode_t mode;
        (void)sc_connection_mode_parse(v[i], &mode);
        (void)sc_flageval_counts_enabled(v[i]);
    }
    sc_agent_addr_t a;
    (void)sc_agent_addr_from_env(&a);
    fuzz_free_parts(v, NAMES);
    return 0;
}
