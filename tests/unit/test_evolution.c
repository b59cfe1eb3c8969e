/* Schema evolution (docs/wire.md, drift guard 4). tests/evolution/ holds a
 * newer copy of the schema (new fields of every wire type, a new action, a new
 * enum value) and an older one (fields and an action removed, numbers
 * reserved), compiled with nanopb's static storage. Bytes cross between them
 * and the current codec in both directions, for every sample of wire_samples.c:
 * unknown fields are skipped, known ones arrive intact, missing ones are
 * absent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "sidecar_newer.pb.h"
#include "sidecar_older.pb.h"
#include "wire_samples.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

/* The generated structs are large (fixed arrays): static storage. */
static sidecar_v1newer_Envelope newer;
static sidecar_v1older_Envelope older;
static uint8_t current_bytes[1 << 16];
static uint8_t other_bytes[1 << 16];

static size_t encode_current(const sidecar_v1_Envelope *env, uint8_t *buf)
{
    size_t len = 0;
    assert_true(sc_codec_encode(env, buf, sizeof current_bytes, &len));
    return len;
}

static size_t encode_as(const pb_msgdesc_t *desc, const void *msg, uint8_t *buf)
{
    pb_ostream_t out = pb_ostream_from_buffer(buf, sizeof other_bytes);
    if (!pb_encode(&out, desc, msg)) {
        fail_msg("encode: %s", PB_GET_ERROR(&out));
    }
    return out.bytes_written;
}

static void decode_as(const char *what, const pb_msgdesc_t *desc,
                      const uint8_t *bytes, size_t len, void *msg)
{
    pb_istream_t in = pb_istream_from_buffer(bytes, len);
    if (!pb_decode(&in, desc, msg)) {
        fail_msg("%s: does not decode: %s", what, PB_GET_ERROR(&in));
    }
}

static void assert_same_bytes(const char *what, const uint8_t *a, size_t a_len,
                              const uint8_t *b, size_t b_len)
{
    if (a_len != b_len || memcmp(a, b, a_len) != 0) {
        fail_msg("%s: %zu bytes, expected %zu identical bytes", what, a_len,
                 b_len);
    }
}

/* ---- Newer schema ------------------------------------------------------- */

static void set_text(char *dst, size_t cap, const char *s)
{
    assert_true(strlen(s) < cap);
    strcpy(dst, s);
}

#define SET_TEXT(field, s) set_text((field), sizeof(field), (s))

static void add_attribute_fields(sidecar_v1newer_ContextAttribute *attrs,
                                 pb_size_t count)
{
    for (pb_size_t i = 0; i < count; i++) {
        attrs[i].has_int_value = true;
        attrs[i].int_value = -77 - (int64_t)i;
    }
}

/* Sets the fields the newer schema added, wherever the action has some. */
static void add_newer_fields(sidecar_v1newer_Envelope *env)
{
    env->has_sent_at_ns = true;
    env->sent_at_ns = UINT64_C(1718000000999000000);
    switch (env->which_action) {
    case sidecar_v1newer_Envelope_hello_tag: {
        sidecar_v1newer_Hello *h = &env->action.hello;
        h->has_hostname = true;
        SET_TEXT(h->hostname, "web-1.example.com");
        h->has_boot_time_ns = true;
        h->boot_time_ns = UINT64_C(0x0123456789abcdef);
        h->tags_count = 2;
        SET_TEXT(h->tags[0], "team:apm");
        SET_TEXT(h->tags[1], "tier:1");
        break;
    }
    case sidecar_v1newer_Envelope_telemetry_tag: {
        sidecar_v1newer_Telemetry *t = &env->action.telemetry;
        t->has_namespace = true;
        SET_TEXT(t->namespace, "tracers");
        for (pb_size_t i = 0; i < t->configuration_count; i++) {
            t->configuration[i].has_seq_id = true;
            t->configuration[i].seq_id = 3 + i;
        }
        for (pb_size_t i = 0; i < t->dependencies_count; i++) {
            t->dependencies[i].has_hash = true;
            SET_TEXT(t->dependencies[i].hash, "abc");
        }
        for (pb_size_t i = 0; i < t->integrations_count; i++) {
            t->integrations[i].has_error = true;
            SET_TEXT(t->integrations[i].error, "none");
        }
        for (pb_size_t i = 0; i < t->logs_count; i++) {
            t->logs[i].has_count = true;
            t->logs[i].count = 2 + i;
        }
        for (pb_size_t i = 0; i < t->metrics_count; i++) {
            t->metrics[i].has_interval = true;
            t->metrics[i].interval = 10 + i;
        }
        break;
    }
    case sidecar_v1newer_Envelope_metric_tag:
        env->action.metric.has_unit = true;
        SET_TEXT(env->action.metric.unit, "millisecond");
        break;
    case sidecar_v1newer_Envelope_session_config_tag:
        env->action.session_config.has_max_frame_bytes = true;
        env->action.session_config.max_frame_bytes = 4194304;
        break;
    case sidecar_v1newer_Envelope_trace_payload_tag:
        env->action.trace_payload.has_content_encoding = true;
        SET_TEXT(env->action.trace_payload.content_encoding, "identity");
        break;
    case sidecar_v1newer_Envelope_flag_evaluation_batch_tag: {
        sidecar_v1newer_FlagEvaluationBatch *b =
            &env->action.flag_evaluation_batch;
        b->has_schema_version = true;
        b->schema_version = 2;
        for (pb_size_t i = 0; i < b->evaluations_count; i++) {
            sidecar_v1newer_FlagEvaluation *e = &b->evaluations[i];
            e->has_variation_type = true;
            SET_TEXT(e->variation_type, "boolean");
            e->has_shard = true;
            e->shard = 0xdeadbeefu;
            e->has_metadata = true;
            SET_TEXT(e->metadata.name, "origin");
            e->metadata.value = 9;
            add_attribute_fields(e->context, e->context_count);
        }
        break;
    }
    case sidecar_v1newer_Envelope_exposure_batch_tag: {
        sidecar_v1newer_ExposureBatch *b = &env->action.exposure_batch;
        for (pb_size_t i = 0; i < b->exposures_count; i++) {
            b->exposures[i].has_subject_type = true;
            SET_TEXT(b->exposures[i].subject_type, "user");
            add_attribute_fields(b->exposures[i].subject_attributes,
                                 b->exposures[i].subject_attributes_count);
        }
        break;
    }
    default:
        break;
    }
}

/* Current bytes read by the newer schema: the new fields are absent, and
 * writing the message back gives the same bytes, so every known field was
 * read as what it is. */
static void test_current_to_newer(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t len = encode_current(s->envelope, current_bytes);
        memset(&newer, 0, sizeof newer);
        decode_as(s->name, sidecar_v1newer_Envelope_fields, current_bytes, len,
                  &newer);
        assert_int_equal(newer.which_action, s->envelope->which_action);
        assert_false(newer.has_sent_at_ns);
        size_t again =
            encode_as(sidecar_v1newer_Envelope_fields, &newer, other_bytes);
        assert_same_bytes(s->name, other_bytes, again, current_bytes, len);
    }

    /* And spelled out for one message. */
    size_t len = encode_current(sc_wire_sample_find("hello_full")->envelope,
                                current_bytes);
    memset(&newer, 0, sizeof newer);
    decode_as("hello_full", sidecar_v1newer_Envelope_fields, current_bytes, len,
              &newer);
    const sidecar_v1newer_Hello *h = &newer.action.hello;
    assert_int_equal(h->pid, 4242);
    assert_true(h->has_runtime_id);
    assert_string_equal(h->runtime_id, "2f1c7a4e-0b7d-4c39-9d7e-6a1f3b5c8e90");
    assert_string_equal(h->version, "2024.06.1");
    assert_false(h->has_hostname);
    assert_false(h->has_boot_time_ns);
    assert_int_equal(h->tags_count, 0);
}

/* Newer bytes, with every new field set, read by the current codec: the
 * new fields are skipped and the known ones hold the sample's values. */
static void test_newer_to_current(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t cur_len = encode_current(s->envelope, current_bytes);
        memset(&newer, 0, sizeof newer);
        decode_as(s->name, sidecar_v1newer_Envelope_fields, current_bytes,
                  cur_len, &newer);
        add_newer_fields(&newer);
        size_t len =
            encode_as(sidecar_v1newer_Envelope_fields, &newer, other_bytes);
        /* The new fields are really on the wire. */
        assert_true(len > cur_len);

        sidecar_v1_Envelope env;
        const char *error = NULL;
        if (!sc_codec_decode(other_bytes, len, &env, &error)) {
            fail_msg("%s with newer fields: %s", s->name, error);
        }
        sc_wire_assert_equal(s->name, sidecar_v1_Envelope_fields, s->envelope,
                             &env);
        sc_wire_assert_views_within(sidecar_v1_Envelope_fields, &env,
                                    other_bytes, len);
    }
}

/* A newer action is an unknown field to the current codec: the envelope
 * decodes with which_action == 0, which the server treats as an unknown
 * action (ErrorReply CODE_UNKNOWN_ACTION, connection closed). */
static void test_newer_action_is_unknown(void **state)
{
    (void)state;
    memset(&newer, 0, sizeof newer);
    newer.seq = 77;
    newer.which_action = sidecar_v1newer_Envelope_sample_tag;
    SET_TEXT(newer.action.sample.name, "gc.pause");
    newer.action.sample.value = 12;
    newer.has_sent_at_ns = true;
    newer.sent_at_ns = 5;
    size_t len =
        encode_as(sidecar_v1newer_Envelope_fields, &newer, other_bytes);

    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(other_bytes, len, &env, NULL));
    assert_int_equal(env.seq, 77);
    assert_int_equal(env.which_action, 0);
}

/* proto3 enums are open: a status the current schema does not name arrives
 * as its number, for the receiver to treat as unknown. */
static void test_newer_enum_value_arrives_as_number(void **state)
{
    (void)state;
    memset(&newer, 0, sizeof newer);
    newer.seq = 8;
    newer.which_action = sidecar_v1newer_Envelope_flush_reply_tag;
    newer.action.flush_reply.status = sidecar_v1newer_FlushReply_STATUS_PARTIAL;
    newer.action.flush_reply.actions_handled = 41;
    size_t len =
        encode_as(sidecar_v1newer_Envelope_fields, &newer, other_bytes);

    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(other_bytes, len, &env, NULL));
    assert_int_equal(env.which_action, sidecar_v1_Envelope_flush_reply_tag);
    assert_int_equal(env.action.flush_reply.status, 3);
    assert_true(env.action.flush_reply.status >
                _sidecar_v1_FlushReply_Status_MAX);
    assert_int_equal(env.action.flush_reply.actions_handled, 41);
}

/* ---- Older schema ------------------------------------------------------- */

/* `in` without what the older schema lacks: Hello.runtime_id and
 * Hello.session_id, Flush.wait_for_delivery,
 * FlagEvaluation.targeting_rule_key, the stats_request, drop_report, ack,
 * metric and telemetry actions (SessionConfig.idle_timeout_ms is reserved
 * in both). */
static void without_removed_fields(const sidecar_v1_Envelope *in,
                                   sidecar_v1_Envelope *out)
{
    static sidecar_v1_FlagEvaluation evaluations[8];
    *out = *in;
    switch (in->which_action) {
    case sidecar_v1_Envelope_hello_tag:
        out->action.hello.runtime_id = (sc_view_t){NULL, 0};
        out->action.hello.session_id = 0;
        break;
    case sidecar_v1_Envelope_flush_tag:
        out->action.flush.wait_for_delivery = false;
        break;
    case sidecar_v1_Envelope_ack_tag:
    case sidecar_v1_Envelope_drop_report_tag:
    case sidecar_v1_Envelope_stats_request_tag:
    case sidecar_v1_Envelope_metric_tag:
    case sidecar_v1_Envelope_telemetry_tag:
        out->which_action = 0;
        memset(&out->action, 0, sizeof out->action);
        break;
    case sidecar_v1_Envelope_flag_evaluation_batch_tag: {
        sc_list_t *l = &out->action.flag_evaluation_batch.evaluations;
        assert_true(l->count <= 8);
        if (l->count > 0) {
            memcpy(evaluations, l->items, l->count * sizeof evaluations[0]);
        }
        for (size_t i = 0; i < l->count; i++) {
            evaluations[i].targeting_rule_key = (sc_view_t){NULL, 0};
        }
        l->items = evaluations;
        break;
    }
    default:
        break;
    }
}

/* Current bytes through the older schema (read, then written back). */
static size_t via_older(const sc_wire_sample_t *s)
{
    size_t len = encode_current(s->envelope, current_bytes);
    memset(&older, 0, sizeof older);
    decode_as(s->name, sidecar_v1older_Envelope_fields, current_bytes, len,
              &older);
    return encode_as(sidecar_v1older_Envelope_fields, &older, other_bytes);
}

/* Current bytes read by the older schema: the fields it lacks are skipped,
 * the others read intact (writing them back gives what the current codec
 * writes for the same message without those fields). */
static void test_current_to_older(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t len = via_older(s);
        sidecar_v1_Envelope expected;
        without_removed_fields(s->envelope, &expected);
        size_t expected_len = encode_current(&expected, current_bytes);
        assert_same_bytes(s->name, other_bytes, len, current_bytes,
                          expected_len);
    }
    /* The action the older schema lacks leaves its envelope empty. */
    via_older(sc_wire_sample_find("stats_request_full"));
    assert_int_equal(older.which_action, 0);
    assert_int_equal(older.seq, UINT64_C(1) << 33);
}

/* Older bytes read by the current codec: the fields the older schema lacks
 * are absent, the others hold the sample's values. */
static void test_older_to_current(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t len = via_older(s);
        sidecar_v1_Envelope env, expected;
        const char *error = NULL;
        if (!sc_codec_decode(other_bytes, len, &env, &error)) {
            fail_msg("%s from the older schema: %s", s->name, error);
        }
        without_removed_fields(s->envelope, &expected);
        sc_wire_assert_equal(s->name, sidecar_v1_Envelope_fields, &expected,
                             &env);
    }

    /* And spelled out for one message. */
    size_t len = via_older(sc_wire_sample_find("hello_full"));
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(other_bytes, len, &env, NULL));
    assert_null(env.action.hello.runtime_id.ptr);
    assert_true(env.action.hello.has_uid);
    assert_int_equal(env.action.hello.uid, 33);
    assert_int_equal(env.action.hello.service.len, strlen("caf\xc3\xa9-api"));
    assert_int_equal(env.action.hello.version.len, strlen("2024.06.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_to_newer),
        cmocka_unit_test(test_newer_to_current),
        cmocka_unit_test(test_newer_action_is_unknown),
        cmocka_unit_test(test_newer_enum_value_arrives_as_number),
        cmocka_unit_test(test_current_to_older),
        cmocka_unit_test(test_older_to_current),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
