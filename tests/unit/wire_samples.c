#include "wire_samples.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pb_common.h>
#include <pb_decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A view of a string literal, usable in static initializers. */
#define LIT(s)                                                                 \
    {                                                                          \
        (const uint8_t *)(s), sizeof(s) - 1                                    \
    }
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define LIST(a)                                                                \
    {                                                                          \
        .items = (a), .count = COUNT_OF(a)                                     \
    }

/* ---- Samples --------------------------------------------------------------
 * Values are distinct per field, and several sit on encoding edges:
 * multi-byte varints, UINT64_MAX, negative int64 (ten-byte varints), a
 * non-ASCII string, bytes with a NUL. */

static const sidecar_v1_Envelope envelope_empty = {0};

static const sidecar_v1_Envelope hello_full = {
    .seq = 1,
    .which_action = sidecar_v1_Envelope_hello_tag,
    .action.hello = {
        .protocol_version = 1,
        .pid = 4242,
        .has_uid = true,
        .uid = 33,
        .language = LIT("php"),
        .language_version = LIT("8.2.7"),
        .tracer_version = LIT("1.0.0"),
        .runtime_id = LIT("2f1c7a4e-0b7d-4c39-9d7e-6a1f3b5c8e90"),
        .service = LIT("caf\xc3\xa9-api"),
        .env = LIT("prod"),
        .version = LIT("2024.06.1"),
        .session_id = 0x9e3779b97f4a7c15u,
    }};

static const sidecar_v1_Envelope hello_absent = {
    .which_action = sidecar_v1_Envelope_hello_tag,
};

static const sidecar_v1_Envelope hello_zero = {
    .seq = 1,
    .which_action = sidecar_v1_Envelope_hello_tag,
    .action.hello = {
        .has_uid = true,
        .uid = 0,
        .runtime_id = LIT(""),
        .service = LIT(""),
        .env = LIT(""),
        .version = LIT(""),
    }};

static const sidecar_v1_Envelope session_config_full = {
    .seq = 2,
    .which_action = sidecar_v1_Envelope_session_config_tag,
    .action.session_config = {
        .agent_url = LIT("unix:///var/run/datadog/apm.socket"),
        .has_flush_interval_ms = true,
        .flush_interval_ms = 1000,
        .has_request_timeout_ms = true,
        .request_timeout_ms = 3000,
        .has_trace_buffer_cap_bytes = true,
        .trace_buffer_cap_bytes = UINT64_MAX,
        .has_flag_evaluation_counts_enabled = true,
        .flag_evaluation_counts_enabled = true,
    }};

static const sidecar_v1_Envelope session_config_absent = {
    .which_action = sidecar_v1_Envelope_session_config_tag,
};

static const sidecar_v1_Envelope session_config_zero = {
    .seq = 2,
    .which_action = sidecar_v1_Envelope_session_config_tag,
    .action.session_config = {
        .agent_url = LIT(""),
        .has_flush_interval_ms = true,
        .has_request_timeout_ms = true,
        .has_trace_buffer_cap_bytes = true,
        .has_flag_evaluation_counts_enabled = true,
        .flag_evaluation_counts_enabled = false,
    }};

/* msgpack v0.4: [[{"trace_id":1,"span_id":2,"name":"web.request",
 * "error":0}]] */
static const uint8_t trace_msgpack[] = {
    0x91, 0x91, 0x84, 0xa8, 't', 'r', 'a', 'c', 'e', '_',  'i',  'd',
    0x01, 0xa7, 's',  'p',  'a', 'n', '_', 'i', 'd', 0x02, 0xa4, 'n',
    'a',  'm',  'e',  0xab, 'w', 'e', 'b', '.', 'r', 'e',  'q',  'u',
    'e',  's',  't',  0xa5, 'e', 'r', 'r', 'o', 'r', 0x00};

static const sidecar_v1_Envelope trace_payload_full = {
    .seq = 300,
    .which_action = sidecar_v1_Envelope_trace_payload_tag,
    .action.trace_payload = {
        .msgpack = {trace_msgpack, sizeof trace_msgpack},
        .trace_count = 1,
    }};

static const sidecar_v1_Envelope trace_payload_absent = {
    .which_action = sidecar_v1_Envelope_trace_payload_tag,
};

static const sidecar_v1_ContextAttribute evaluation_context[] = {
    {.key = LIT("country"), .string_value = LIT("FR")},
    {.key = LIT("plan.seats"), .has_number_value = true, .number_value = 12.5},
    {.key = LIT("beta"), .has_bool_value = true, .bool_value = true},
    {.key = {NULL, 0}}, /* an attribute with nothing present */
};

static const sidecar_v1_FlagEvaluation evaluations_full[] = {
    {
        .flag_key = LIT("checkout.new-flow"),
        .variant_key = LIT("on"),
        .allocation_key = LIT("alloc-2024"),
        .reason = LIT("TARGETING_MATCH"),
        .targeting_key = LIT("user-123"),
        .targeting_rule_key = LIT("rule-7"),
        .error_message = LIT("provider not ready"),
        .context = LIST(evaluation_context),
        .evaluation_count = 17,
        .first_evaluation_ms = 1718000000000,
        .last_evaluation_ms = 1718000005123,
        .degraded = true,
    },
    {
        /* A degraded bucket: no variant, so runtime_default_used. */
        .flag_key = LIT("search.ranking"),
        .reason = LIT("DEFAULT"),
        .evaluation_count = 3,
        .first_evaluation_ms = -1,
        .last_evaluation_ms = INT64_MAX,
        .degraded = true,
    },
    {.flag_key = {NULL, 0}}, /* an evaluation with nothing present */
};

static const sidecar_v1_Envelope flag_evaluation_batch_full = {
    .seq = 70000,
    .which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag,
    .action.flag_evaluation_batch = {
        .evaluations = LIST(evaluations_full),
        .dropped = 5,
        .service = LIT("svc-batch"),
        .env = LIT("staging"),
        .version = LIT("9.9.9"),
    }};

static const sidecar_v1_Envelope flag_evaluation_batch_absent = {
    .which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag,
};

static const sidecar_v1_ContextAttribute zero_context[] = {
    {.key = LIT("empty"), .string_value = LIT("")},
    {.key = LIT("zero"), .has_number_value = true, .number_value = 0.0},
    {.key = LIT("no"), .has_bool_value = true, .bool_value = false},
};

static const sidecar_v1_FlagEvaluation evaluations_zero[] = {
    {
        .flag_key = LIT("f"),
        .variant_key = LIT(""),
        .allocation_key = LIT(""),
        .reason = LIT(""),
        .targeting_key = LIT(""),
        .targeting_rule_key = LIT(""),
        .error_message = LIT(""),
        .context = LIST(zero_context),
    },
};

static const sidecar_v1_Envelope flag_evaluation_batch_zero = {
    .seq = 3,
    .which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag,
    .action.flag_evaluation_batch = {
        .evaluations = LIST(evaluations_zero),
        .service = LIT(""),
        .env = LIT(""),
        .version = LIT(""),
    }};

static const sidecar_v1_ContextAttribute subject_attributes[] = {
    {.key = LIT("email"), .string_value = LIT("a@example.com")},
    {.key = LIT("age"), .has_number_value = true, .number_value = -41.25},
    {.key = LIT("vip"), .has_bool_value = true, .bool_value = false},
};

static const sidecar_v1_Exposure exposures_full[] = {
    {
        .timestamp_ms = 1718000000123,
        .flag_key = LIT("checkout.new-flow"),
        .allocation_key = LIT("alloc-2024"),
        .variant_key = LIT("on"),
        .subject_id = LIT("user-123"),
        .subject_attributes = LIST(subject_attributes),
    },
    {.timestamp_ms = 0}, /* an exposure with nothing present */
    {.timestamp_ms = -5, .flag_key = LIT("x")},
};

static const sidecar_v1_Envelope exposure_batch_full = {
    .seq = UINT64_C(1) << 35,
    .which_action = sidecar_v1_Envelope_exposure_batch_tag,
    .action.exposure_batch = {
        .exposures = LIST(exposures_full),
        .service = LIT("svc-exp"),
        .env = LIT("dev"),
        .version = LIT("0.1"),
    }};

static const sidecar_v1_Envelope exposure_batch_absent = {
    .which_action = sidecar_v1_Envelope_exposure_batch_tag,
};

static const sidecar_v1_Exposure exposures_zero[] = {
    {
        .flag_key = LIT("f"),
        .allocation_key = LIT(""),
        .variant_key = LIT(""),
        .subject_id = LIT(""),
        .subject_attributes = LIST(zero_context),
    },
};

static const sidecar_v1_Envelope exposure_batch_zero = {
    .seq = 4,
    .which_action = sidecar_v1_Envelope_exposure_batch_tag,
    .action.exposure_batch = {
        .exposures = LIST(exposures_zero),
        .service = LIT(""),
        .env = LIT(""),
        .version = LIT(""),
    }};

static const sidecar_v1_Envelope metric_full = {
    .seq = 11,
    .which_action = sidecar_v1_Envelope_metric_tag,
    .action.metric = {
        .type = sidecar_v1_Metric_METRIC_TYPE_SET,
        .name = LIT("php.users"),
        .value = -2.5,
        .tags = LIT("env:prod,route:/a"),
        .has_sample_rate = true,
        .sample_rate = 0.25,
        .set_member = LIT("user-7"),
    }};

static const sidecar_v1_Envelope metric_absent = {
    .which_action = sidecar_v1_Envelope_metric_tag,
};

static const sidecar_v1_Envelope metric_zero = {
    .seq = 5,
    .which_action = sidecar_v1_Envelope_metric_tag,
    .action.metric = {
        .tags = LIT(""),
        .has_sample_rate = true,
        .sample_rate = 0.0,
        .set_member = LIT(""),
    }};

static const sidecar_v1_TelemetryConfiguration telemetry_config[] = {
    {.name = LIT("DD_SERVICE"), .value = LIT("shop"), .origin = LIT("env_var")},
    {.name = LIT("trace.enabled")}, /* value and origin empty */
};

static const sidecar_v1_TelemetryDependency telemetry_deps[] = {
    {.name = LIT("guzzlehttp/guzzle"), .version = LIT("7.8.1")},
    {.name = LIT("psr/log")},
};

static const sidecar_v1_TelemetryIntegration telemetry_integrations[] = {
    {.name = LIT("curl"),
     .enabled = true,
     .version = LIT("8.1"),
     .has_compatible = true,
     .compatible = true,
     .has_auto_enabled = true,
     .auto_enabled = false},
    {.name = LIT("pdo")},
};

static const sidecar_v1_TelemetryLog telemetry_logs[] = {
    {.message = LIT("pdo: connection refused"),
     .level = sidecar_v1_TelemetryLog_LEVEL_ERROR,
     .stack_trace = LIT("#0 PDO->__construct()"),
     .tags = LIT("integration:pdo")},
    {.message = LIT("slow"), .level = sidecar_v1_TelemetryLog_LEVEL_WARN},
};

static const sidecar_v1_TelemetryMetric telemetry_metrics[] = {
    {.namespace = LIT("tracers"),
     .name = LIT("spans_created"),
     .tags = LIT("integration_name:pdo,component:db"),
     .value = 2.5,
     .common = true,
     .type = sidecar_v1_TelemetryMetric_TYPE_RATE},
    {.name = LIT("init_time"), .value = -1e-3}, /* a distribution value */
};

/* One sample carries every list (the wire allows it; the sidecar then
 * refuses it as invalid: an event takes one list). */
static const sidecar_v1_Envelope telemetry_full = {
    .seq = 12,
    .which_action = sidecar_v1_Envelope_telemetry_tag,
    .action.telemetry = {
        .event = sidecar_v1_Telemetry_EVENT_INTEGRATIONS_CHANGE,
        .configuration = LIST(telemetry_config),
        .dependencies = LIST(telemetry_deps),
        .integrations = LIST(telemetry_integrations),
        .logs = LIST(telemetry_logs),
        .metrics = LIST(telemetry_metrics),
    }};

static const sidecar_v1_Envelope telemetry_absent = {
    .which_action = sidecar_v1_Envelope_telemetry_tag,
};

static const sidecar_v1_TelemetryDependency telemetry_zero_deps[] = {
    {.version = LIT("")}, /* empty name: not on the wire (proto3) */
};

static const sidecar_v1_TelemetryIntegration telemetry_zero_integrations[] = {
    {.version = LIT(""), .has_compatible = true, .has_auto_enabled = true},
};

static const sidecar_v1_TelemetryLog telemetry_zero_logs[] = {
    {.stack_trace = LIT(""), .tags = LIT("")},
};

static const sidecar_v1_TelemetryMetric telemetry_zero_metrics[] = {
    {.tags = LIT("")}, /* empty namespace, name: not on the wire */
};

static const sidecar_v1_Envelope telemetry_zero = {
    .seq = 6,
    .which_action = sidecar_v1_Envelope_telemetry_tag,
    .action.telemetry = {
        .dependencies = LIST(telemetry_zero_deps),
        .integrations = LIST(telemetry_zero_integrations),
        .logs = LIST(telemetry_zero_logs),
        .metrics = LIST(telemetry_zero_metrics),
    }};

static const sidecar_v1_Envelope flush_full = {
    .seq = UINT64_MAX,
    .which_action = sidecar_v1_Envelope_flush_tag,
    .action.flush = {.has_timeout_ms = true,
                     .timeout_ms = 2500,
                     .deliver_now = true,
                     .wait_for_delivery = true}};

static const sidecar_v1_Envelope flush_absent = {
    .which_action = sidecar_v1_Envelope_flush_tag,
};

static const sidecar_v1_Envelope flush_zero = {
    .seq = 5,
    .which_action = sidecar_v1_Envelope_flush_tag,
    .action.flush = {.has_timeout_ms = true, .timeout_ms = 0}};

static const sidecar_v1_Envelope ping_full = {
    .seq = 6,
    .which_action = sidecar_v1_Envelope_ping_tag,
    .action.ping = {.has_client_time_ns = true,
                    .client_time_ns = UINT64_C(1718000000123456789)}};

static const sidecar_v1_Envelope ping_absent = {
    .which_action = sidecar_v1_Envelope_ping_tag,
};

static const sidecar_v1_Envelope ping_zero = {
    .seq = 6,
    .which_action = sidecar_v1_Envelope_ping_tag,
    .action.ping = {.has_client_time_ns = true, .client_time_ns = 0}};

static const sidecar_v1_Envelope stats_request_full = {
    .seq = UINT64_C(1) << 33,
    .which_action = sidecar_v1_Envelope_stats_request_tag,
};

static const sidecar_v1_Envelope stats_request_absent = {
    .which_action = sidecar_v1_Envelope_stats_request_tag,
};

static const sidecar_v1_Envelope ping_reply_full = {
    .seq = 6,
    .which_action = sidecar_v1_Envelope_ping_reply_tag,
    .action.ping_reply = {
        .has_client_time_ns = true,
        .client_time_ns = UINT64_C(1718000000123456789),
        .server_pid = 777,
        .server_version = LIT("0.1.0"),
        .mode = LIT("subprocess"),
    }};

static const sidecar_v1_Envelope ping_reply_absent = {
    .which_action = sidecar_v1_Envelope_ping_reply_tag,
};

static const sidecar_v1_Envelope ping_reply_zero = {
    .seq = 6,
    .which_action = sidecar_v1_Envelope_ping_reply_tag,
    .action.ping_reply = {.has_client_time_ns = true, .client_time_ns = 0}};

static const sidecar_v1_Envelope flush_reply_full = {
    .seq = UINT64_MAX,
    .which_action = sidecar_v1_Envelope_flush_reply_tag,
    .action.flush_reply = {.status = sidecar_v1_FlushReply_STATUS_TIMEOUT,
                           .actions_handled = 123456}};

static const sidecar_v1_Envelope flush_reply_absent = {
    .which_action = sidecar_v1_Envelope_flush_reply_tag,
};

static const sidecar_v1_Envelope stats_reply_full = {
    .seq = UINT64_C(1) << 33,
    .which_action = sidecar_v1_Envelope_stats_reply_tag,
    .action.stats_reply = {
        .json = LIT("{\"uptime_s\":12,\"connections\":{\"active\":3}}"),
    }};

static const sidecar_v1_Envelope stats_reply_absent = {
    .which_action = sidecar_v1_Envelope_stats_reply_tag,
};

static const sidecar_v1_Envelope error_reply_full = {
    .seq = 9,
    .which_action = sidecar_v1_Envelope_error_reply_tag,
    .action.error_reply = {
        .code = sidecar_v1_ErrorReply_CODE_UNKNOWN_ACTION,
        .message = LIT("action 15 unknown"),
    }};

static const sidecar_v1_Envelope drop_report_full = {
    .seq = 12,
    .which_action = sidecar_v1_Envelope_drop_report_tag,
    .action.drop_report = {.trace_payloads = 3,
                           .traces = 7,
                           .flag_evaluation_batches = 2,
                           .exposure_batches = 1,
                           .other_actions = 4}};

static const sidecar_v1_Envelope drop_report_absent = {
    .which_action = sidecar_v1_Envelope_drop_report_tag};

static const sidecar_v1_Envelope ack_full = {
    .which_action = sidecar_v1_Envelope_ack_tag,
    .action.ack = {.handled_through_seq = 1234567}};

static const sidecar_v1_Envelope ack_absent = {.which_action =
                                                   sidecar_v1_Envelope_ack_tag};

static const sidecar_v1_Envelope error_reply_absent = {
    .which_action = sidecar_v1_Envelope_error_reply_tag,
};

const sc_wire_sample_t sc_wire_samples[] = {
    {"envelope_empty", SC_SAMPLE_NO_ACTION, &envelope_empty},
    {"hello_full", SC_SAMPLE_FULL, &hello_full},
    {"hello_absent", SC_SAMPLE_ABSENT, &hello_absent},
    {"hello_zero", SC_SAMPLE_ZERO, &hello_zero},
    {"session_config_full", SC_SAMPLE_FULL, &session_config_full},
    {"session_config_absent", SC_SAMPLE_ABSENT, &session_config_absent},
    {"session_config_zero", SC_SAMPLE_ZERO, &session_config_zero},
    {"trace_payload_full", SC_SAMPLE_FULL, &trace_payload_full},
    {"trace_payload_absent", SC_SAMPLE_ABSENT, &trace_payload_absent},
    {"flag_evaluation_batch_full", SC_SAMPLE_FULL, &flag_evaluation_batch_full},
    {"flag_evaluation_batch_absent", SC_SAMPLE_ABSENT,
     &flag_evaluation_batch_absent},
    {"flag_evaluation_batch_zero", SC_SAMPLE_ZERO, &flag_evaluation_batch_zero},
    {"exposure_batch_full", SC_SAMPLE_FULL, &exposure_batch_full},
    {"exposure_batch_absent", SC_SAMPLE_ABSENT, &exposure_batch_absent},
    {"exposure_batch_zero", SC_SAMPLE_ZERO, &exposure_batch_zero},
    {"metric_full", SC_SAMPLE_FULL, &metric_full},
    {"metric_absent", SC_SAMPLE_ABSENT, &metric_absent},
    {"metric_zero", SC_SAMPLE_ZERO, &metric_zero},
    {"telemetry_full", SC_SAMPLE_FULL, &telemetry_full},
    {"telemetry_absent", SC_SAMPLE_ABSENT, &telemetry_absent},
    {"telemetry_zero", SC_SAMPLE_ZERO, &telemetry_zero},
    {"flush_full", SC_SAMPLE_FULL, &flush_full},
    {"flush_absent", SC_SAMPLE_ABSENT, &flush_absent},
    {"flush_zero", SC_SAMPLE_ZERO, &flush_zero},
    {"ping_full", SC_SAMPLE_FULL, &ping_full},
    {"ping_absent", SC_SAMPLE_ABSENT, &ping_absent},
    {"ping_zero", SC_SAMPLE_ZERO, &ping_zero},
    {"stats_request_full", SC_SAMPLE_FULL, &stats_request_full},
    {"stats_request_absent", SC_SAMPLE_ABSENT, &stats_request_absent},
    {"ping_reply_full", SC_SAMPLE_FULL, &ping_reply_full},
    {"ping_reply_absent", SC_SAMPLE_ABSENT, &ping_reply_absent},
    {"ping_reply_zero", SC_SAMPLE_ZERO, &ping_reply_zero},
    {"flush_reply_full", SC_SAMPLE_FULL, &flush_reply_full},
    {"flush_reply_absent", SC_SAMPLE_ABSENT, &flush_reply_absent},
    {"stats_reply_full", SC_SAMPLE_FULL, &stats_reply_full},
    {"stats_reply_absent", SC_SAMPLE_ABSENT, &stats_reply_absent},
    {"error_reply_full", SC_SAMPLE_FULL, &error_reply_full},
    {"error_reply_absent", SC_SAMPLE_ABSENT, &error_reply_absent},
    {"drop_report_full", SC_SAMPLE_FULL, &drop_report_full},
    {"drop_report_absent", SC_SAMPLE_ABSENT, &drop_report_absent},
    {"ack_full", SC_SAMPLE_FULL, &ack_full},
    {"ack_absent", SC_SAMPLE_ABSENT, &ack_absent},
};
const size_t sc_wire_sample_count = COUNT_OF(sc_wire_samples);

const sc_wire_sample_t *sc_wire_sample_find(const char *name)
{
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        if (strcmp(sc_wire_samples[i].name, name) == 0) {
            return &sc_wire_samples[i];
        }
    }
    return NULL;
}

/* ---- Message types ------------------------------------------------------ */

typedef struct message_info {
    const pb_msgdesc_t *desc;
    const char *name;
    size_t size;
} message_info_t;

#define MESSAGE(T)                                                             \
    {                                                                          \
        sidecar_v1_##T##_fields, #T, sizeof(sidecar_v1_##T)                    \
    }
static const message_info_t messages[] = {
    MESSAGE(Envelope),
    MESSAGE(Hello),
    MESSAGE(SessionConfig),
    MESSAGE(TracePayload),
    MESSAGE(ContextAttribute),
    MESSAGE(FlagEvaluation),
    MESSAGE(FlagEvaluationBatch),
    MESSAGE(Exposure),
    MESSAGE(ExposureBatch),
    MESSAGE(Metric),
    MESSAGE(Telemetry),
    MESSAGE(TelemetryConfiguration),
    MESSAGE(TelemetryDependency),
    MESSAGE(TelemetryIntegration),
    MESSAGE(TelemetryLog),
    MESSAGE(TelemetryMetric),
    MESSAGE(Flush),
    MESSAGE(Ping),
    MESSAGE(StatsRequest),
    MESSAGE(PingReply),
    MESSAGE(FlushReply),
    MESSAGE(StatsReply),
    MESSAGE(ErrorReply),
    MESSAGE(Ack),
    MESSAGE(DropReport),
};

static const message_info_t *message_info(const pb_msgdesc_t *desc)
{
    for (size_t i = 0; i < COUNT_OF(messages); i++) {
        if (messages[i].desc == desc) {
            return &messages[i];
        }
    }
    return NULL;
}

const char *sc_wire_message_name(const pb_msgdesc_t *desc)
{
    const message_info_t *m = message_info(desc);
    return m != NULL ? m->name : "?";
}

size_t sc_wire_message_size(const pb_msgdesc_t *desc)
{
    const message_info_t *m = message_info(desc);
    return m != NULL ? m->size : 0;
}

/* Storage for one list item of any type. */
typedef union any_item {
    sidecar_v1_FlagEvaluation evaluation;
    sidecar_v1_ContextAttribute attribute;
    sidecar_v1_Exposure exposure;
    sidecar_v1_TelemetryConfiguration configuration;
    sidecar_v1_TelemetryDependency dependency;
    sidecar_v1_TelemetryIntegration integration;
    sidecar_v1_TelemetryLog log;
} any_item_t;

/* Storage large enough for any message (pointer arithmetic of
 * pb_field_iter_begin_const stays inside it). */
typedef union any_message {
    sidecar_v1_Envelope envelope;
    any_item_t item;
} any_message_t;

uint8_t *sc_wire_encode_alloc(const sidecar_v1_Envelope *env, size_t *len)
{
    size_t size = 0;
    if (!sc_codec_encoded_size(env, &size)) {
        return NULL;
    }
    /* One spare byte so that an empty message still gets a buffer. */
    uint8_t *buf = malloc(size + 1);
    size_t written = 0;
    if (buf == NULL || !sc_codec_encode(env, buf, size, &written) ||
        written != size) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

/* ---- Comparison --------------------------------------------------------- */

static bool oneof_inactive(const pb_field_iter_t *f)
{
    return PB_HTYPE(f->type) == PB_HTYPE_ONEOF &&
           *(const pb_size_t *)f->pSize != f->tag;
}

static bool is_view(const pb_field_iter_t *f)
{
    return PB_ATYPE(f->type) == PB_ATYPE_CALLBACK &&
           !PB_LTYPE_IS_SUBMSG(f->type);
}

static bool is_list(const pb_field_iter_t *f)
{
    return PB_ATYPE(f->type) == PB_ATYPE_CALLBACK &&
           PB_LTYPE_IS_SUBMSG(f->type);
}

static int shown(size_t len)
{
    return len > 64 ? 64 : (int)len;
}

static void assert_view_equal(const char *where, sc_view_t exp, sc_view_t act)
{
    if (sc_view_present(exp) != sc_view_present(act)) {
        fail_msg("%s: expected %s, decoded %s", where,
                 sc_view_present(exp) ? "present" : "absent",
                 sc_view_present(act) ? "present" : "absent");
    }
    if (sc_view_present(exp) &&
        (exp.len != act.len || memcmp(exp.ptr, act.ptr, exp.len) != 0)) {
        fail_msg("%s: expected \"%.*s\" (%zu bytes), decoded \"%.*s\" "
                 "(%zu bytes)",
                 where, shown(exp.len), (const char *)exp.ptr, exp.len,
                 shown(act.len), (const char *)act.ptr, act.len);
    }
}

/* A scalar field as text, for failure messages. */
static void scalar_text(char *out, size_t cap, const pb_field_iter_t *f,
                        const void *data)
{
    bool is_signed = PB_LTYPE(f->type) == PB_LTYPE_VARINT ||
                     PB_LTYPE(f->type) == PB_LTYPE_SVARINT;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    switch (f->data_size) {
    case 1:
        snprintf(out, cap, "%s", *(const bool *)data ? "true" : "false");
        return;
    case 4:
        u = *(const uint32_t *)data;
        i = *(const int32_t *)data;
        break;
    case 8:
        if (PB_LTYPE(f->type) == PB_LTYPE_FIXED64) {
            memcpy(&d, data, sizeof d);
            snprintf(out, cap, "%.17g", d);
            return;
        }
        u = *(const uint64_t *)data;
        i = *(const int64_t *)data;
        break;
    default:
        snprintf(out, cap, "(%u bytes)", (unsigned)f->data_size);
        return;
    }
    if (is_signed) {
        snprintf(out, cap, "%lld", (long long)i);
    } else {
        snprintf(out, cap, "%llu", (unsigned long long)u);
    }
}

static void assert_message_equal(const char *where, const pb_msgdesc_t *desc,
                                 const void *expected, const void *actual);

static void assert_list_equal(const char *where, const pb_msgdesc_t *desc,
                              const sc_list_t *exp, const sc_list_t *act)
{
    size_t size = sc_wire_message_size(desc);
    if (size == 0 || size > sizeof(any_item_t)) {
        fail_msg("%s: no storage for items of %s", where,
                 sc_wire_message_name(desc));
    }
    if (exp->count != act->count) {
        fail_msg("%s: expected %zu items, decoded %zu", where, exp->count,
                 act->count);
    }
    sc_list_iter_t it;
    sc_list_iter_init(&it, act);
    any_item_t item;
    const uint8_t *exp_item = exp->items;
    for (size_t i = 0; i < exp->count; i++, exp_item += size) {
        char here[512];
        /* A path cut short in a failure message is acceptable. */
        if (snprintf(here, sizeof here, "%s[%zu]", where, i) >=
            (int)sizeof here) {
            here[sizeof here - 1] = '\0';
        }
        if (sc_list_next(&it, desc, &item, size) != 1) {
            fail_msg("%s: item does not decode", here);
        }
        assert_message_equal(here, desc, exp_item, &item);
    }
    if (sc_list_next(&it, desc, &item, size) != 0) {
        fail_msg("%s: the iterator goes past %zu items", where, exp->count);
    }
}

static void assert_field_equal(const char *where, const pb_field_iter_t *e,
                               const pb_field_iter_t *a)
{
    if (PB_HTYPE(e->type) == PB_HTYPE_ONEOF) {
        pb_size_t exp_which = *(const pb_size_t *)e->pSize;
        pb_size_t act_which = *(const pb_size_t *)a->pSize;
        if (exp_which != act_which) {
            fail_msg("%s: expected oneof member %u, decoded %u", where,
                     (unsigned)exp_which, (unsigned)act_which);
        }
        if (exp_which != e->tag) {
            return;
        }
    }
    if (is_view(e)) {
        assert_view_equal(where, *(const sc_view_t *)e->pData,
                          *(const sc_view_t *)a->pData);
        return;
    }
    if (is_list(e)) {
        assert_list_equal(where, e->submsg_desc, e->pData, a->pData);
        return;
    }
    if (PB_HTYPE(e->type) == PB_HTYPE_OPTIONAL && e->pSize != NULL) {
        bool exp_has = *(const bool *)e->pSize;
        bool act_has = *(const bool *)a->pSize;
        if (exp_has != act_has) {
            fail_msg("%s: expected %s, decoded %s", where,
                     exp_has ? "present" : "absent",
                     act_has ? "present" : "absent");
        }
        if (!exp_has) {
            return;
        }
    }
    if (PB_LTYPE_IS_SUBMSG(e->type)) {
        assert_message_equal(where, e->submsg_desc, e->pData, a->pData);
        return;
    }
    if (memcmp(e->pData, a->pData, e->data_size) != 0) {
        char exp_text[64], act_text[64];
        scalar_text(exp_text, sizeof exp_text, e, e->pData);
        scalar_text(act_text, sizeof act_text, a, a->pData);
        fail_msg("%s: expected %s, decoded %s", where, exp_text, act_text);
    }
}

static void assert_message_equal(const char *where, const pb_msgdesc_t *desc,
                                 const void *expected, const void *actual)
{
    pb_field_iter_t e, a;
    if (!pb_field_iter_begin_const(&e, desc, expected) ||
        !pb_field_iter_begin_const(&a, desc, actual)) {
        return; /* a message without fields */
    }
    do {
        char here[512];
        snprintf(here, sizeof here, "%s > %s.%u", where,
                 sc_wire_message_name(desc), (unsigned)e.tag);
        assert_field_equal(here, &e, &a);
    } while (pb_field_iter_next(&e) && pb_field_iter_next(&a));
}

void sc_wire_assert_equal(const char *what, const pb_msgdesc_t *desc,
                          const void *expected, const void *actual)
{
    assert_message_equal(what, desc, expected, actual);
}

/* ---- Views stay inside the decoded bytes -------------------------------- */

static bool span_within(const uint8_t *p, size_t len, const uint8_t *base,
                        size_t base_len)
{
    uintptr_t lo = (uintptr_t)base, at = (uintptr_t)p;
    return at >= lo && at - lo <= base_len && len <= base_len - (at - lo);
}

void sc_wire_assert_views_within(const pb_msgdesc_t *desc, const void *msg,
                                 const uint8_t *base, size_t len)
{
    pb_field_iter_t f;
    if (!pb_field_iter_begin_const(&f, desc, msg)) {
        return;
    }
    do {
        if (oneof_inactive(&f)) {
            continue;
        }
        if (is_view(&f)) {
            const sc_view_t *v = f.pData;
            if (v->ptr != NULL && !span_within(v->ptr, v->len, base, len)) {
                fail_msg("%s.%u: view of %zu bytes is not inside the frame",
                         sc_wire_message_name(desc), (unsigned)f.tag, v->len);
            }
        } else if (is_list(&f)) {
            const sc_list_t *l = f.pData;
            size_t size = sc_wire_message_size(f.submsg_desc);
            assert_true(size > 0 && size <= sizeof(any_item_t));
            sc_list_iter_t it;
            sc_list_iter_init(&it, l);
            any_item_t item;
            while (sc_list_next(&it, f.submsg_desc, &item, size) == 1) {
                sc_wire_assert_views_within(f.submsg_desc, &item, base, len);
            }
        } else if (PB_LTYPE_IS_SUBMSG(f.type)) {
            sc_wire_assert_views_within(f.submsg_desc, f.pData, base, len);
        }
    } while (pb_field_iter_next(&f));
}

/* ---- Decoded lists back into arrays ------------------------------------- */

static void *arena_alloc(sc_wire_arena_t *arena, size_t size)
{
    if (arena->count == arena->cap) {
        size_t cap = arena->cap != 0 ? arena->cap * 2 : 16;
        void **blocks = realloc(arena->blocks, cap * sizeof *blocks);
        if (blocks == NULL) {
            return NULL;
        }
        arena->blocks = blocks;
        arena->cap = cap;
    }
    void *p = calloc(1, size != 0 ? size : 1);
    if (p != NULL) {
        arena->blocks[arena->count++] = p;
    }
    return p;
}

void sc_wire_arena_free(sc_wire_arena_t *arena)
{
    for (size_t i = 0; i < arena->count; i++) {
        free(arena->blocks[i]);
    }
    free(arena->blocks);
    *arena = (sc_wire_arena_t){0};
}

bool sc_wire_materialize(const pb_msgdesc_t *desc, void *msg,
                         sc_wire_arena_t *arena)
{
    pb_field_iter_t f;
    if (!pb_field_iter_begin(&f, desc, msg)) {
        return true;
    }
    do {
        if (oneof_inactive(&f)) {
            continue;
        }
        if (is_list(&f)) {
            sc_list_t *l = f.pData;
            size_t size = sc_wire_message_size(f.submsg_desc);
            if (l->count == 0) {
                continue;
            }
            uint8_t *items =
                size != 0 ? arena_alloc(arena, l->count * size) : NULL;
            if (items == NULL) {
                return false;
            }
            sc_list_iter_t it;
            sc_list_iter_init(&it, l);
            for (size_t i = 0; i < l->count; i++) {
                void *item = items + i * size;
                if (sc_list_next(&it, f.submsg_desc, item, size) != 1 ||
                    !sc_wire_materialize(f.submsg_desc, item, arena)) {
                    return false;
                }
            }
            l->items = items;
        } else if (!is_view(&f) && PB_LTYPE_IS_SUBMSG(f.type)) {
            if (!sc_wire_materialize(f.submsg_desc, f.pData, arena)) {
                return false;
            }
        }
    } while (pb_field_iter_next(&f));
    return true;
}

/* ---- Field coverage ----------------------------------------------------- */

static bool coverage_has(const sc_wire_coverage_t *cov,
                         const pb_msgdesc_t *desc, uint32_t tag)
{
    for (size_t i = 0; i < cov->count; i++) {
        if (cov->seen[i].desc == desc && cov->seen[i].tag == tag) {
            return true;
        }
    }
    return false;
}

bool sc_wire_coverage_add(sc_wire_coverage_t *cov, const pb_msgdesc_t *desc,
                          const uint8_t *bytes, size_t len)
{
    static any_message_t scratch;
    pb_istream_t in = pb_istream_from_buffer(bytes, len);
    while (in.bytes_left > 0) {
        pb_wire_type_t wt;
        uint32_t tag;
        bool eof;
        if (!pb_decode_tag(&in, &wt, &tag, &eof)) {
            return false;
        }
        pb_field_iter_t f;
        bool known = pb_field_iter_begin_const(&f, desc, &scratch) &&
                     pb_field_iter_find(&f, tag);
        if (known && !coverage_has(cov, desc, tag)) {
            if (cov->count == COUNT_OF(cov->seen)) {
                return false;
            }
            cov->seen[cov->count].desc = desc;
            cov->seen[cov->count].tag = tag;
            cov->count++;
        }
        if (known && PB_LTYPE_IS_SUBMSG(f.type) && wt == PB_WT_STRING) {
            uint32_t n;
            if (!pb_decode_varint32(&in, &n) || n > in.bytes_left ||
                !sc_wire_coverage_add(cov, f.submsg_desc, in.state, n) ||
                !pb_read(&in, NULL, n)) {
                return false;
            }
        } else if (!pb_skip_field(&in, wt)) {
            return false;
        }
    }
    return true;
}

static void assert_covered(const sc_wire_coverage_t *cov,
                           const pb_msgdesc_t *desc, const pb_msgdesc_t **done,
                           size_t *done_count, size_t done_cap)
{
    for (size_t i = 0; i < *done_count; i++) {
        if (done[i] == desc) {
            return;
        }
    }
    assert_true(*done_count < done_cap);
    done[(*done_count)++] = desc;
    static any_message_t scratch;
    pb_field_iter_t f;
    if (!pb_field_iter_begin_const(&f, desc, &scratch)) {
        return;
    }
    do {
        if (!coverage_has(cov, desc, f.tag)) {
            fail_msg("%s field %u is never present in a full sample "
                     "(add it to tests/unit/wire_samples.c and regenerate "
                     "the vectors)",
                     sc_wire_message_name(desc), (unsigned)f.tag);
        }
        if (PB_LTYPE_IS_SUBMSG(f.type)) {
            assert_covered(cov, f.submsg_desc, done, done_count, done_cap);
        }
    } while (pb_field_iter_next(&f));
}

void sc_wire_assert_coverage_complete(const sc_wire_coverage_t *cov,
                                      const pb_msgdesc_t *desc)
{
    const pb_msgdesc_t *done[64];
    size_t done_count = 0;
    assert_covered(cov, desc, done, &done_count, COUNT_OF(done));
}
