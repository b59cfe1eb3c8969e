/* What an agent says about itself (docs/delivery.md, "Agent info"), and
 * the JSON reader of agent answers (cJSON, agent_info.c). The reader knows
 * nothing of delivery; polling /info is a flusher's job (flusher_info.c). */
#ifndef SIDECAR_AGENT_INFO_H
#define SIDECAR_AGENT_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Agent answers nested deeper than this are refused unread. */
#define SC_AGENT_JSON_MAX_DEPTH 64

/* Room for the agent's version (longer ones are cut). */
#define SC_AGENT_VERSION_MAX 64

/* What GET /info told us. */
typedef struct sc_agent_info {
    bool valid;         /* at least one /info answer was parsed */
    int64_t fetched_ms; /* epoch ms of that answer */
    /* Its "version" string, printable ASCII ('?' for any other byte),
     * "" when absent or not a string. */
    char version[SC_AGENT_VERSION_MAX];
    char *raw_json; /* the answer, NUL-terminated */
    size_t raw_len;
    char **endpoints; /* "endpoints": paths the agent serves */
    size_t endpoint_count;
} sc_agent_info_t;

/* Parses an /info answer into `out` (replacing what it held). Returns
 * false, leaving `out` as it was, when the text is not exactly one JSON
 * object (malformed, nested deeper than SC_AGENT_JSON_MAX_DEPTH, trailing
 * bytes) or memory runs out. Items of "endpoints" that are not strings are
 * skipped; a missing or non-array "endpoints" is an empty list. */
bool sc_agent_info_parse(const char *json, size_t len, sc_agent_info_t *out);
void sc_agent_info_free(sc_agent_info_t *info);
bool sc_agent_info_has_endpoint(const sc_agent_info_t *info, const char *path);

/* The "rate_by_service" object of a /v0.4/traces answer, written compactly
 * (malloc'd, NUL-terminated, its length in *len), or NULL when the answer is
 * not one JSON object or has no such object member. */
char *sc_agent_rates_parse(const char *json, size_t len, size_t *out_len);

/* Whether `json` nests at most SC_AGENT_JSON_MAX_DEPTH deep (a scan that
 * never recurses; strings are skipped). */
bool sc_agent_json_depth_ok(const char *json, size_t len);

#endif
