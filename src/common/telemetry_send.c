/* What is due for an application of the telemetry hub made one body: one
 * event, or a message-batch of them in the order the body lists them
 * (telemetry_json.c writes the envelope), submitted with the
 * application's next seq_id. */
#include "telemetry_internal.h"

#include <stdio.h>
#include <uv.h>

typedef struct due {
    const char *type;
    const char *payload; /* NULL: {} */
    size_t len;
} due_t;

/* "{"<key>":[<items>]}" into `out`. */
static void wrap_list(sc_buf_t *out, const char *key, const sc_buf_t *items)
{
    sc_buf_appendf(out, "{\"%s\":[", key);
    sc_buf_append(out, items->data, items->len);
    sc_buf_append(out, "]}", 2);
}

static void submit(sc_tel_hub_t *h, tel_app_t *a, const due_t *due, size_t n)
{
    sc_buf_t batch = {0}, body = {0};
    const char *type = due[0].type;
    const char *payload = due[0].payload;
    size_t len = due[0].len;
    if (n > 1) {
        sc_buf_append(&batch, "[", 1);
        for (size_t i = 0; i < n; i++) {
            sc_buf_appendf(&batch, "%s{\"request_type\":\"%s\",\"payload\":",
                           i > 0 ? "," : "", due[i].type);
            if (due[i].payload != NULL) {
                sc_buf_append(&batch, due[i].payload, due[i].len);
            } else {
                sc_buf_append(&batch, "{}", 2);
            }
            sc_buf_append(&batch, "}", 1);
        }
        sc_buf_append(&batch, "]", 1);
        type = "message-batch";
        payload = (const char *)batch.data;
        len = batch.len;
        h->stats.message_batches++;
    }
    sc_telemetry_app_info_t info = {
        .service = a->service,
        .env = a->env != NULL ? a->env : "",
        .version = a->version != NULL ? a->version : "",
        .language = a->language,
        .language_version = a->language_version,
        .tracer_version = a->tracer_version,
        .runtime_id = a->runtime_id,
    };
    char unnamed[SC_IDENTITY_MAX + 32];
    if (info.service == NULL) {
        snprintf(unnamed, sizeof unnamed, "unnamed-%s-service",
                 a->language[0] != '\0' ? a->language : "c");
        info.service = unnamed;
    }
    uv_timeval64_t tv;
    int64_t now_s = uv_gettimeofday(&tv) == 0 ? tv.tv_sec : 0;
    if (sc_telemetry_body(&body, &info, h->cfg.host, type, ++a->seq, now_s,
                          payload, len) &&
        (n == 1 || batch.data != NULL)) {
        h->cfg.submit(h->cfg.ctx, a->route, type, a->language,
                      a->tracer_version, (const char *)body.data, body.len);
        h->stats.requests++;
    } else {
        h->stats.no_memory++;
    }
    sc_buf_free(&batch);
    sc_buf_free(&body);
}

/* Submits what is due for `a` as one body. */
void sc_telemetry__send_due(sc_tel_hub_t *h, tel_app_t *a)
{
    due_t due[8];
    size_t n = 0;
    sc_buf_t deps = {0}, integrs = {0}, logs = {0}, gen = {0}, dists = {0};
    if (a->started.len > 0) {
        due[n++] = (due_t){"app-started", (const char *)a->started.data,
                           a->started.len};
    }
    if (a->deps.len > 0) {
        wrap_list(&deps, "dependencies", &a->deps);
        due[n++] = (due_t){"app-dependencies-loaded", (const char *)deps.data,
                           deps.len};
    }
    if (a->integrs_pending > 0 &&
        sc_telemetry__integrations_payload(h, a, &integrs) > 0) {
        due[n++] = (due_t){"app-integrations-change",
                           (const char *)integrs.data, integrs.len};
    }
    if (a->log_count > 0) {
        sc_telemetry__logs_payload(h, a, &logs);
        due[n++] = (due_t){"logs", (const char *)logs.data, logs.len};
    }
    /* Metrics are aggregated over the heartbeat interval. */
    if (a->heartbeat || a->closing) {
        uv_timeval64_t tv;
        int64_t now_s = uv_gettimeofday(&tv) == 0 ? tv.tv_sec : 0;
        size_t k = sc_tel_metrics_payload(&a->metrics, false, now_s,
                                          h->cfg.metrics_interval_ms, &gen);
        if (k > 0) {
            due[n++] =
                (due_t){"generate-metrics", (const char *)gen.data, gen.len};
        }
        size_t d = sc_tel_metrics_payload(&a->metrics, true, now_s,
                                          h->cfg.metrics_interval_ms, &dists);
        if (d > 0) {
            due[n++] =
                (due_t){"distributions", (const char *)dists.data, dists.len};
        }
        h->stats.metric_series_sent += k + d;
    }
    if (a->heartbeat) {
        due[n++] = (due_t){"app-heartbeat", NULL, 0};
        h->stats.heartbeats++;
    }
    if (a->closing) {
        due[n++] = (due_t){"app-closing", NULL, 0};
        h->stats.app_closing++;
    }
    if (n > 0) {
        submit(h, a, due, n);
    }
    sc_buf_free(&deps);
    sc_buf_free(&integrs);
    sc_buf_free(&logs);
    sc_buf_free(&gen);
    sc_buf_free(&dists);
    sc_buf_reset(&a->started);
    sc_buf_reset(&a->deps);
    a->heartbeat = false;
}
