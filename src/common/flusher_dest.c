/* The destinations: everything that differs between them is one entry of
 * this table; the engine (flusher.c) reads nothing else. Adding one
 * (telemetry, metrics...) is an entry, an SC_DEST_* value and its encoder
 * (submission function). */
#include "flusher_internal.h"

#include <stdio.h>
#include <string.h>

/* Answer bodies kept: /v0.4/traces answers carry rate_by_service. */
#define TRACES_RESPONSE_MAX (64u * 1024u)
#define EVP_RESPONSE_MAX    (4u * 1024u)

const sc_dest_def_t sc_dest_defs[SC_DEST_COUNT] = {
    [SC_DEST_TRACES] = {.name = "traces",
                        .item_name = "traces",
                        .default_path = "/v0.4/traces",
                        .method = "PUT",
                        .content_type = "application/msgpack",
                        .default_cap = 32u << 20,
                        .max_response = TRACES_RESPONSE_MAX,
                        .add_headers = sc_traces_headers,
                        .finish = sc_traces_finish,
                        .release = sc_traces_release,
                        .on_ok = sc_traces_on_ok,
                        .trim = sc_traces_trim,
                        .ledger_items = true},
    [SC_DEST_FLAGEVALUATIONS] = {.name = "flagevaluations",
                                 .item_name = "events",
                                 .default_path =
                                     "/evp_proxy/v2/api/v2/flagevaluations",
                                 .method = "POST",
                                 .content_type = "application/json",
                                 .default_cap = 8u << 20,
                                 .max_response = EVP_RESPONSE_MAX,
                                 .add_headers = sc_evp_headers},
    [SC_DEST_EXPOSURES] = {.name = "exposures",
                           .item_name = "exposures",
                           .default_path = "/evp_proxy/v2/api/v2/exposures",
                           .method = "POST",
                           .content_type = "application/json",
                           .default_cap = 8u << 20,
                           .max_response = EVP_RESPONSE_MAX,
                           .add_headers = sc_evp_headers},
    [SC_DEST_TELEMETRY] = {.name = "telemetry",
                           .item_name = "requests", /* one body each */
                           .default_path =
                               "/telemetry/proxy/api/v2/apmtelemetry",
                           .method = "POST",
                           .content_type = "application/json",
                           .default_cap = 8u << 20,
                           .max_response = EVP_RESPONSE_MAX,
                           .in_order = true,
                           .add_headers = sc_telemetry_headers,
                           .release = sc_telemetry_release},
};

static const char *const drop_names[SC_DROP_REASON_COUNT] = {
    "rejected_payload", "too_large",     "buffer_full", "retries_exhausted",
    "client_error_4xx", "request_error", "shutdown",    "no_memory"};

const char *sc_dest_name(sc_dest_t dest)
{
    return dest < SC_DEST_COUNT ? sc_dest_defs[dest].name : "unknown";
}

const char *sc_dest_item_name(sc_dest_t dest)
{
    return dest < SC_DEST_COUNT ? sc_dest_defs[dest].item_name : "unknown";
}

const char *sc_drop_reason_name(sc_drop_reason_t why)
{
    return why < SC_DROP_REASON_COUNT ? drop_names[why] : "unknown";
}

void sc_flusher_config_defaults(sc_flusher_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    sc_agent_addr_resolve(NULL, NULL, NULL, &cfg->agent);
    for (int i = 0; i < SC_DEST_COUNT; i++) {
        snprintf(cfg->path[i], SC_FLUSHER_PATH_MAX, "%s",
                 sc_dest_defs[i].default_path);
        cfg->cap_bytes[i] = sc_dest_defs[i].default_cap;
    }
    cfg->flush_interval_ms = 1000;
    cfg->request_timeout_ms = 3000;
    cfg->info_interval_ms = 60000;
    cfg->retry_attempts = 5;
    cfg->retry_base_ms = 100;
    cfg->trace_flush_bytes = 1u << 20;
    cfg->max_body_bytes = 10u << 20;
    cfg->max_inflight = 2;
}
