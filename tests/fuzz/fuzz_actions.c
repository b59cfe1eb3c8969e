/* Fuzz target: one envelope as the sidecar decodes it (no framing, so the
 * fuzzer spends its time inside the message), then what the sidecar does
 * with each action: every lazy list walked, with every view and item
 * checked to lie inside the envelope; flag evaluations merged into an
 * aggregator, drained and written as EVP JSON bodies (which must be valid
 * UTF-8 whatever the input); trace payloads validated; metric points
 * checked, aggregated and drained into DogStatsD lines (each line one
 * name:value|type); telemetry events through a hub whose bodies must be
 * valid UTF-8 JSON objects. */
#include "codec.h"
#include "flageval.h"
#include "flageval_json.h"
#include "flageval_wire.h"
#include "fuzz_bounds.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "msgpack.h"
#include "telemetry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool check_body(void *ctx, const sc_buf_t *body, size_t events)
{
    (void)ctx;
    (void)events;
    if (!sc_utf8_valid(body->data, body->len)) {
        fprintf(stderr, "an EVP body that is not UTF-8\n");
        abort();
    }
    return true;
}

static void flag_evaluations(sc_flageval_t *agg,
                             const sidecar_v1_FlagEvaluationBatch *b)
{
    if (sc_flageval_wire_merge(agg, b, NULL) != 0) {
        return;
    }
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_json_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.service = b->service;
    opts.env = b->env;
    opts.version = b->version;
    opts.timestamp_ms = 1;
    opts.max_events = 3; /* bodies split often */
    opts.max_bytes = 4096;
    sc_flageval_json_bodies(&batch, &opts, check_body, NULL, NULL);
    sc_flageval_batch_free(&batch);
}

static void check_line(void *ctx, const char *line, size_t len)
{
    (void)ctx;
    if (memchr(line, '\n', len) != NULL || memchr(line, '|', len) == NULL ||
        memchr(line, ':', len) == NULL) {
        fprintf(stderr, "a DogStatsD line that is not name:value|type\n");
        abort();
    }
}

static void metric(const sidecar_v1_Metric *m)
{
    static sc_metrics_t *agg;
    if (agg == NULL) {
        sc_metrics_limits_t limits = {16, 64}; /* overflows often */
        agg = sc_metrics_new(&limits);
    }
    sc_metric_point_t p = {.type = (int)m->type,
                           .name = m->name,
                           .value = m->value,
                           .tags = m->tags,
                           .has_rate = m->has_sample_rate,
                           .rate = m->sample_rate,
                           .member = m->set_member};
    if (agg != NULL && sc_metric_check(&p) == NULL) {
        sc_metrics_add(agg, &p);
        sc_metrics_drain(agg, 10.0, 64, check_line, NULL);
    }
}

static void check_telemetry_body(void *ctx, void *route, const char *type,
                                 const char *language, const char *version,
                                 const char *json, size_t len)
{
    (void)ctx;
    (void)route;
    (void)type;
    (void)language;
    (void)version;
    if (!sc_utf8_valid(json, len) || len < 2 || json[0] != '{' ||
        json[len - 1] != '}') {
        fprintf(stderr, "a telemetry body that is not a UTF-8 object\n");
        abort();
    }
}

static void telemetry(const sidecar_v1_Telemetry *m)
{
    static sc_tel_hub_t *hub;
    static sc_telemetry_host_t host = {.hostname = "fuzz"};
    static uint64_t now;
    if (hub == NULL) {
        sc_tel_config_t cfg = {.enabled = true,
                               .closing_delay_ms = 1,
                               .host = &host,
                               .submit = check_telemetry_body};
        hub = sc_tel_hub_new(&cfg);
    }
    static char language[] = "php", empty[] = "";
    sc_client_identity_t id = {.language = language,
                               .language_version = empty,
                               .tracer_version = empty};
    if (hub != NULL) {
        int conn = 0;
        sc_tel_hub_event(hub, &id, &conn, NULL, m, now);
        sc_tel_hub_heartbeat(hub);
        sc_tel_hub_process(hub, now, false);
        sc_tel_hub_conn_gone(hub, &conn, now);
        now += 2; /* past the closing delay: applications come and go */
        sc_tel_hub_process(hub, now, false);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sc_flageval_t *agg;
    if (agg == NULL) {
        sc_flageval_config_t cfg;
        sc_flageval_config_default(&cfg);
        cfg.global_cap = 64; /* small caps: the tier logic runs too */
        cfg.per_flag_cap = 8;
        cfg.degraded_cap = 16;
        sc_log_configure(SC_LOG_ERROR, NULL); /* caps hit on every input */
        agg = sc_flageval_new(&cfg);
    }
    /* A heap copy of exactly the input's length: ASan sees any read past
     * the envelope. */
    uint8_t *msg = malloc(size > 0 ? size : 1);
    if (msg == NULL) {
        return 0;
    }
    memcpy(msg, data, size);
    sidecar_v1_Envelope env;
    if (sc_codec_decode(msg, size, &env, NULL)) {
        fuzz_check_bounds(sidecar_v1_Envelope_fields, &env, msg, size);
        switch (env.which_action) {
        case sidecar_v1_Envelope_flag_evaluation_batch_tag:
            flag_evaluations(agg, &env.action.flag_evaluation_batch);
            break;
        case sidecar_v1_Envelope_trace_payload_tag: {
            sc_view_t m = env.action.trace_payload.msgpack;
            sc_msgpack_check_traces(m.ptr, m.len, NULL);
            break;
        }
        case sidecar_v1_Envelope_metric_tag:
            metric(&env.action.metric);
            break;
        case sidecar_v1_Envelope_telemetry_tag:
            telemetry(&env.action.telemetry);
            break;
        default:
            break; /* exposures and the rest: walked by fuzz_check_bounds */
        }
    }
    free(msg);
    return 0;
}
