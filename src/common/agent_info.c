/* What the agent says about itself (docs/delivery.md, "Agent info"): GET
 * /info at start and at an interval, and the JSON reader of agent answers
 * (/info's "endpoints", the "rate_by_service" object of a /v0.4/traces
 * answer).
 *
 * Documents are read with cJSON (Debian's libcjson-dev), a complete parser:
 * anything that is not one well-formed JSON value with nothing after it is
 * refused. Its parser recurses once per nesting level, so nesting is
 * checked first, without recursion, against SC_AGENT_JSON_MAX_DEPTH: a
 * deeply nested answer is refused before it can use the loop thread's
 * stack (which may be a listener thread's, inside a web server). */
#include "flusher_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define INFO_RESPONSE_MAX (256u * 1024u)
/* A failed /info is tried again after 1 s, doubling up to the interval. */
#define INFO_RETRY_MS 1000u

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

/* ---- polling ------------------------------------------------------------- */

static void on_info_timer(uv_timer_t *timer);

static void on_info_done(sc_http_req_t *req)
{
    sc_flusher_t *f = req->data;
    f->info_inflight = false;
    if (req->cancelled) {
        sc_buf_free(&req->response);
        return;
    }
    bool answered = req->curl_code == CURLE_OK && req->status == 200;
    bool ok = answered && sc_agent_info_parse((const char *)req->response.data,
                                              req->response.len, &f->info);
    sc_buf_free(&req->response);
    uint64_t next = f->cfg.info_interval_ms;
    if (ok) {
        uv_timeval64_t now;
        uv_gettimeofday(&now);
        f->info.fetched_ms = now.tv_sec * 1000 + now.tv_usec / 1000;
        sc_endpoint_note_ok(&f->info_stats);
        f->info_stats.ok++;
        f->info_failures = 0;
        if (f->hooks.on_agent_info != NULL) {
            f->hooks.on_agent_info(&f->info, f->hooks.data);
        }
    } else {
        char why[128], what[SC_AGENT_URL_MAX + SC_AGENT_UNIX_PATH_MAX + 32];
        SC_LOG_LIMITED(SC_LOG_INFO, "flusher: %s",
                       sc_endpoint_note_error(
                           &f->info_stats, "%s failed: %s",
                           sc_flusher_describe_request(f, "GET", "/info", what,
                                                       sizeof what),
                           answered ? "the answer is not a JSON object"
                                    : sc_http_outcome(req, why, sizeof why)));
        f->info_stats.failed++;
        uint32_t shift = f->info_failures < 16 ? f->info_failures : 16;
        f->info_failures++;
        uint64_t retry = (uint64_t)INFO_RETRY_MS << shift;
        if (retry < next) {
            next = retry;
            f->info_stats.retried++;
        }
    }
    if (!f->closing && f->cfg.info_interval_ms > 0) {
        uv_timer_start(&f->info_timer, on_info_timer, next, 0);
    }
}

static void fetch_info(sc_flusher_t *f)
{
    if (f->info_inflight || f->closing) {
        return;
    }
    char url[SC_AGENT_URL_MAX + 8];
    snprintf(url, sizeof url, "%s/info", f->cfg.agent.url);
    sc_http_req_t *req = &f->info_req;
    req->method = "GET";
    req->url = url;
    req->unix_path = f->cfg.agent.unix_path;
    req->headers = NULL;
    req->body = NULL;
    req->body_len = 0;
    req->timeout_ms = f->cfg.request_timeout_ms;
    req->max_response = INFO_RESPONSE_MAX;
    req->on_done = on_info_done;
    req->data = f;
    if (sc_http_start(f->http, req) == 0) {
        f->info_inflight = true;
        f->info_stats.requests++;
    } else {
        char what[SC_AGENT_URL_MAX + SC_AGENT_UNIX_PATH_MAX + 32];
        sc_endpoint_note_error(
            &f->info_stats, "%s could not start",
            sc_flusher_describe_request(f, "GET", "/info", what, sizeof what));
        f->info_stats.failed++;
        uv_timer_start(&f->info_timer, on_info_timer, INFO_RETRY_MS, 0);
    }
}

static void on_info_timer(uv_timer_t *timer)
{
    fetch_info(timer->data);
}

void sc_flusher_info_start(sc_flusher_t *f, uint64_t delay_ms)
{
    uv_timer_start(&f->info_timer, on_info_timer, delay_ms, 0);
}

void sc_flusher_info_stop(sc_flusher_t *f)
{
    uv_timer_stop(&f->info_timer);
    if (f->info_inflight) {
        sc_http_cancel(&f->info_req);
    }
}
