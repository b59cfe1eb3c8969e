/* The JSON reader of agent answers (docs/delivery.md, "Agent info"): /info's
 * "version" and "endpoints", the "rate_by_service" object of a /v0.4/traces
 * answer. It knows nothing of delivery: the flusher polls /info
 * (flusher_info.c) and hands the answers here.
 *
 * Documents are read with cJSON (Debian's libcjson-dev), a complete parser:
 * anything that is not one well-formed JSON value with nothing after it is
 * refused. Its parser recurses once per nesting level, so nesting is
 * checked first, without recursion, against SC_AGENT_JSON_MAX_DEPTH: a
 * deeply nested answer is refused before it can use the loop thread's
 * stack (which may be a listener thread's, inside a web server). */
#include "agent_info.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

bool sc_agent_json_depth_ok(const char *json, size_t len)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > SC_AGENT_JSON_MAX_DEPTH) {
                return false;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* The whole text as one JSON value (NULL when it is not). */
static cJSON *parse(const char *json, size_t len)
{
    if (json == NULL || len == 0 || !sc_agent_json_depth_ok(json, len)) {
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root == NULL) {
        return NULL;
    }
    /* Only white space may follow the value. */
    for (const char *p = end; p < json + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

static void free_endpoints(char **endpoints, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(endpoints[i]);
    }
    free(endpoints);
}

/* The "version" member, cut to fit and made printable: it ends up in logs,
 * the stats document and a terminal. */
static void read_version(const cJSON *root, char *out, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    out[0] = '\0';
    if (!cJSON_IsString(v)) {
        return;
    }
    size_t n = 0;
    for (const char *p = v->valuestring; *p != '\0' && n + 1 < size; p++) {
        out[n++] = *p >= 0x20 && *p < 0x7f ? *p : '?';
    }
    out[n] = '\0';
}

bool sc_agent_info_parse(const char *json, size_t len, sc_agent_info_t *out)
{
    cJSON *root = parse(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return false;
    }
    /* "endpoints": the strings of the array (other items are skipped). */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "endpoints");
    size_t n = 0,
           cap = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
    char **endpoints = cap > 0 ? calloc(cap, sizeof *endpoints) : NULL;
    char *raw = malloc(len + 1);
    bool ok = raw != NULL && (cap == 0 || endpoints != NULL);
    const cJSON *item = cap > 0 ? list->child : NULL;
    for (; item != NULL && ok; item = item->next) {
        if (cJSON_IsString(item)) {
            endpoints[n] = strdup(item->valuestring);
            ok = endpoints[n++] != NULL;
        }
    }
    char version[SC_AGENT_VERSION_MAX];
    read_version(root, version, sizeof version);
    cJSON_Delete(root);
    if (!ok) {
        free(raw);
        free_endpoints(endpoints, n);
        return false;
    }
    memcpy(raw, json, len);
    raw[len] = '\0';
    int64_t fetched = out->fetched_ms;
    sc_agent_info_free(out);
    out->valid = true;
    out->fetched_ms = fetched;
    out->raw_json = raw;
    out->raw_len = len;
    out->endpoints = endpoints;
    out->endpoint_count = n;
    memcpy(out->version, version, sizeof version);
    return true;
}

void sc_agent_info_free(sc_agent_info_t *info)
{
    free(info->raw_json);
    free_endpoints(info->endpoints, info->endpoint_count);
    memset(info, 0, sizeof *info);
}

bool sc_agent_info_has_endpoint(const sc_agent_info_t *info, const char *path)
{
    for (size_t i = 0; i < info->endpoint_count; i++) {
        if (strcmp(info->endpoints[i], path) == 0) {
            return true;
        }
    }
    return false;
}

char *sc_agent_rates_parse(const char *json, size_t len, size_t *out_len)
{
    cJSON *root = parse(json, len);
    const cJSON *rates =
        cJSON_IsObject(root)
            ? cJSON_GetObjectItemCaseSensitive(root, "rate_by_service")
            : NULL;
    char *text = cJSON_IsObject(rates) ? cJSON_PrintUnformatted(rates) : NULL;
    cJSON_Delete(root);
    if (text != NULL) {
        *out_len = strlen(text);
    }
    return text;
}
