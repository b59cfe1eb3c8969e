/* GET /info of a flusher's agent (docs/delivery.md, "Agent info"): at
 * start and every info_interval_ms, a failure tried again sooner; each
 * answer is read by agent_info.c and given to the on_agent_info hook. */
#include "flusher_internal.h"

#include <stdio.h>

#include "log.h"

#define INFO_RESPONSE_MAX (256u * 1024u)
/* A failed /info is tried again after 1 s, doubling up to the interval. */
#define INFO_RETRY_MS 1000u

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
