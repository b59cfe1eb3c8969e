/* Round trips of every sidecar.proto message (docs/wire.md, drift guard 1):
 * every action with all fields present, all absent, and optional fields present
 * with zero values; the maximum sizes; nested lists; decoded views pointing
 * into the frame; malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "frame.h"
#include "wire_samples.h"

#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool view_is(sc_view_t v, const char *s)
{
    return v.ptr != NULL && v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

static bool view_inside(sc_view_t v, const uint8_t *base, size_t len)
{
    uintptr_t lo = (uintptr_t)base, at = (uintptr_t)v.ptr;
    return v.ptr != NULL && at >= lo && at - lo + v.len <= len;
}

/* Frames through the reader, one callback per frame. */
typedef struct frames {
    size_t count;
    bool (*check)(struct frames *f, const uint8_t *body, size_t len);
    void *ctx;
} frames_t;

static bool on_frame(void *ctx, const uint8_t *body, size_t len)
{
    frames_t *f = ctx;
    bool ok = f->check(f, body, len);
    f->count++;
    return ok;
}

/* Feeds `bytes` to a reader (default maximum) in `chunk`-sized reads
 * through the zero-copy path. */
static sc_frame_status_t read_zero_copy(const uint8_t *bytes, size_t len,
                                        size_t chunk, frames_t *f)
{
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, SC_TEST_MAX_FRAME);
    sc_frame_status_t st = SC_FRAME_OK;
    while (len > 0 && st == SC_FRAME_OK) {
        uint8_t *space;
        size_t room;
        assert_true(sc_frame_reader_space(&r, &space, &room));
        size_t n = len < room ? len : room;
        n = n < chunk ? n : chunk;
        memcpy(space, bytes, n);
        bytes += n;
        len -= n;
        st = sc_frame_reader_commit(&r, n, on_frame, f);
    }
    assert_int_equal(sc_frame_reader_pending(&r), 0);
    sc_frame_reader_free(&r);
    return st;
}

/* ---- Every action ------------------------------------------------------- */

static bool has_sample(pb_size_t which, sc_sample_kind_t kind)
{
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        if (sc_wire_samples[i].kind == kind &&
            sc_wire_samples[i].envelope->which_action == which) {
            return true;
        }
    }
    return false;
}

static void test_every_action_has_full_and_absent_samples(void **state)
{
    (void)state;
    pb_field_iter_t f;
    sidecar_v1_Envelope env = {0};
    size_t actions = 0;
    assert_true(pb_field_iter_begin(&f, sidecar_v1_Envelope_fields, &env));
    do {
        if (PB_HTYPE(f.type) != PB_HTYPE_ONEOF) {
            continue;
        }
        actions++;
        if (!has_sample(f.tag, SC_SAMPLE_FULL) ||
            !has_sample(f.tag, SC_SAMPLE_ABSENT)) {
            fail_msg("action %u (%s) lacks a full or an absent sample",
                     (unsigned)f.tag, sc_wire_message_name(f.submsg_desc));
        }
    } while (pb_field_iter_next(&f));
    assert_int_equal(actions, 16);
}

static void test_full_samples_cover_every_field(void **state)
{
    (void)state;
    sc_wire_coverage_t cov = {0};
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        if (s->kind != SC_SAMPLE_FULL) {
            continue;
        }
        size_t len = 0;
        uint8_t *bytes = sc_wire_encode_alloc(s->envelope, &len);
        assert_non_null(bytes);
        assert_true(
            sc_wire_coverage_add(&cov, sidecar_v1_Envelope_fields, bytes, len));
        free(bytes);
    }
    sc_wire_assert_coverage_complete(&cov, sidecar_v1_Envelope_fields);
}

/* An all-absent action is the action's key and a zero length, nothing
 * else: no field of the message was written. */
static void test_absent_samples_encode_an_empty_action(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        if (s->kind != SC_SAMPLE_ABSENT) {
            continue;
        }
        size_t len = 0;
        uint8_t *bytes = sc_wire_encode_alloc(s->envelope, &len);
        assert_non_null(bytes);
        pb_istream_t in = pb_istream_from_buffer(bytes, len);
        pb_wire_type_t wt;
        uint32_t tag, body_len;
        bool eof;
        assert_true(pb_decode_tag(&in, &wt, &tag, &eof));
        assert_int_equal(tag, s->envelope->which_action);
        assert_int_equal(wt, PB_WT_STRING);
        assert_true(pb_decode_varint32(&in, &body_len));
        if (body_len != 0 || in.bytes_left != 0) {
            fail_msg("%s: %u body bytes, %zu trailing bytes", s->name,
                     (unsigned)body_len, in.bytes_left);
        }
        free(bytes);
    }
}

/* ---- Round trips -------------------------------------------------------- */

static void assert_round_trip(const char *name,
                              const sidecar_v1_Envelope *expected,
                              const uint8_t *body, size_t len)
{
    sidecar_v1_Envelope env;
    const char *error = NULL;
    if (!sc_codec_decode(body, len, &env, &error)) {
        fail_msg("%s: decode failed: %s", name, error);
    }
    sc_wire_assert_equal(name, sidecar_v1_Envelope_fields, expected, &env);
    sc_wire_assert_views_within(sidecar_v1_Envelope_fields, &env, body, len);

    /* Decoded values encode back to the same bytes. */
    sc_wire_arena_t arena = {0};
    assert_true(sc_wire_materialize(sidecar_v1_Envelope_fields, &env, &arena));
    size_t again_len = 0;
    uint8_t *again = sc_wire_encode_alloc(&env, &again_len);
    assert_non_null(again);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, body, len);
    free(again);
    sc_wire_arena_free(&arena);
}

static bool check_sample_frame(frames_t *f, const uint8_t *body, size_t len)
{
    assert_true(f->count < sc_wire_sample_count);
    const sc_wire_sample_t *s = &sc_wire_samples[f->count];
    assert_round_trip(s->name, s->envelope, body, len);
    return true;
}

static void test_every_sample_round_trips_through_frames(void **state)
{
    (void)state;
    sc_buf_t stream = {0};
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        assert_true(
            sc_codec_append_frame(&stream, sc_wire_samples[i].envelope));
    }
    /* Every frame at once, and one byte per read. */
    size_t chunks[] = {stream.len, 1};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        frames_t f = {.check = check_sample_frame};
        assert_int_equal(read_zero_copy(stream.data, stream.len, chunks[c], &f),
                         SC_FRAME_OK);
        assert_int_equal(f.count, sc_wire_sample_count);
    }
    sc_buf_free(&stream);
}

/* Presence survives the wire: has_ flags and views (NULL vs present and
 * empty), checked here by name rather than through the descriptors. */
static void test_zero_and_empty_are_not_absent(void **state)
{
    (void)state;
    sidecar_v1_Envelope env;
    size_t len = 0;
    uint8_t *bytes =
        sc_wire_encode_alloc(sc_wire_sample_find("hello_zero")->envelope, &len);
    assert_non_null(bytes);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    const sidecar_v1_Hello *h = &env.action.hello;
    assert_int_equal(env.which_action, sidecar_v1_Envelope_hello_tag);
    assert_true(h->has_uid);
    assert_int_equal(h->uid, 0);
    assert_non_null(h->runtime_id.ptr);
    assert_int_equal(h->runtime_id.len, 0);
    assert_non_null(h->service.ptr);
    assert_int_equal(h->service.len, 0);
    assert_null(h->language.ptr);
    free(bytes);

    bytes = sc_wire_encode_alloc(sc_wire_sample_find("hello_absent")->envelope,
                                 &len);
    assert_non_null(bytes);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    assert_false(h->has_uid);
    assert_null(h->runtime_id.ptr);
    assert_null(h->service.ptr);
    assert_null(h->env.ptr);
    assert_null(h->version.ptr);
    free(bytes);

    bytes = sc_wire_encode_alloc(
        sc_wire_sample_find("session_config_zero")->envelope, &len);
    assert_non_null(bytes);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    const sidecar_v1_SessionConfig *c = &env.action.session_config;
    assert_true(c->has_flag_evaluation_counts_enabled);
    assert_false(c->flag_evaluation_counts_enabled);
    assert_true(c->has_trace_buffer_cap_bytes);
    assert_int_equal(c->trace_buffer_cap_bytes, 0);
    assert_non_null(c->agent_url.ptr);
    assert_int_equal(c->agent_url.len, 0);
    free(bytes);
}

/* Nested lists walked by hand with SC_LIST_NEXT, values spelled out. */
static void test_nested_lists_walk(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *bytes = sc_wire_encode_alloc(
        sc_wire_sample_find("flag_evaluation_batch_full")->envelope, &len);
    assert_non_null(bytes);
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    const sidecar_v1_FlagEvaluationBatch *b = &env.action.flag_evaluation_batch;
    assert_int_equal(b->evaluations.count, 3);
    assert_int_equal(b->dropped, 5);

    /* Twice: walking does not consume the list. */
    for (int pass = 0; pass < 2; pass++) {
        sc_list_iter_t evals;
        sc_list_iter_init(&evals, &b->evaluations);
        sidecar_v1_FlagEvaluation e;
        assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e),
                         1);
        assert_true(view_is(e.flag_key, "checkout.new-flow"));
        assert_true(view_is(e.targeting_rule_key, "rule-7"));
        assert_int_equal(e.evaluation_count, 17);
        assert_int_equal(e.context.count, 4);
        sc_list_iter_t ctx;
        sc_list_iter_init(&ctx, &e.context);
        sidecar_v1_ContextAttribute a;
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         1);
        assert_true(view_is(a.key, "country"));
        assert_true(view_is(a.string_value, "FR"));
        assert_false(a.has_number_value);
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         1);
        assert_true(view_is(a.key, "plan.seats"));
        assert_null(a.string_value.ptr);
        assert_true(a.has_number_value);
        assert_true(a.number_value == 12.5);
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         1);
        assert_true(a.has_bool_value && a.bool_value);
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         1);
        assert_null(a.key.ptr);
        assert_false(a.has_number_value || a.has_bool_value);
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         0);

        assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e),
                         1);
        assert_true(view_is(e.flag_key, "search.ranking"));
        assert_null(e.variant_key.ptr);
        assert_int_equal(e.first_evaluation_ms, -1);
        assert_int_equal(e.last_evaluation_ms, INT64_MAX);
        assert_int_equal(e.context.count, 0);
        assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e),
                         1);
        assert_null(e.flag_key.ptr);
        assert_int_equal(e.evaluation_count, 0);
        assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e),
                         0);
    }
    free(bytes);
}

/* Protobuf lets a sender interleave other fields (and unknown ones) between
 * the items of a repeated field; items are still found in order. */
static void test_interleaved_list_items(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {
        0x08, 0x07,                   /* seq = 7 */
        0x2a, 0x1e,                   /* flag_evaluation_batch, 30 bytes */
        0x0a, 0x03, 0x0a, 0x01, 'a',  /* evaluations { flag_key "a" } */
        0x10, 0x09,                   /* dropped = 9 */
        0x1a, 0x03, 's',  'v',  'c',  /* service = "svc" */
        0x0a, 0x03, 0x0a, 0x01, 'b',  /* evaluations { flag_key "b" } */
        0xf8, 0x06, 0x01,             /* unknown field 111 = 1 */
        0xa2, 0x06, 0x02, 'z',  'z',  /* unknown field 100 = "zz" */
        0x0a, 0x03, 0x0a, 0x01, 'c'}; /* evaluations { flag_key "c" } */
    sidecar_v1_Envelope env;
    const char *error = NULL;
    assert_true(sc_codec_decode(bytes, sizeof bytes, &env, &error));
    const sidecar_v1_FlagEvaluationBatch *b = &env.action.flag_evaluation_batch;
    assert_int_equal(env.seq, 7);
    assert_int_equal(b->dropped, 9);
    assert_true(view_is(b->service, "svc"));
    assert_int_equal(b->evaluations.count, 3);
    sc_list_iter_t it;
    sc_list_iter_init(&it, &b->evaluations);
    sidecar_v1_FlagEvaluation e;
    const char *keys[] = {"a", "b", "c"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
        assert_true(view_is(e.flag_key, keys[i]));
    }
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 0);
}

/* ---- Maximum sizes ------------------------------------------------------ */

typedef struct big_trace {
    const uint8_t *msgpack;
    size_t msgpack_len;
} big_trace_t;

static bool check_big_trace(frames_t *f, const uint8_t *body, size_t len)
{
    const big_trace_t *t = f->ctx;
    assert_int_equal(len, SC_TEST_MAX_FRAME);
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(body, len, &env, NULL));
    assert_int_equal(env.which_action, sidecar_v1_Envelope_trace_payload_tag);
    sc_view_t m = env.action.trace_payload.msgpack;
    assert_int_equal(m.len, t->msgpack_len);
    /* A view into the frame, not a copy. */
    assert_true(view_inside(m, body, len));
    assert_memory_equal(m.ptr, t->msgpack, m.len);
    assert_int_equal(env.action.trace_payload.trace_count, 1000);
    return true;
}

/* A TracePayload envelope whose msgpack is `n` bytes of `msgpack`. */
static sidecar_v1_Envelope trace_envelope(const uint8_t *msgpack, size_t n)
{
    sidecar_v1_Envelope env = {
        .seq = 12345,
        .which_action = sidecar_v1_Envelope_trace_payload_tag,
        .action.trace_payload = {.msgpack = sc_view_bytes(msgpack, n),
                                 .trace_count = 1000}};
    return env;
}

static void test_trace_payload_at_max_frame(void **state)
{
    (void)state;
    size_t cap = SC_TEST_MAX_FRAME;
    uint8_t *msgpack = malloc(cap);
    assert_non_null(msgpack);
    for (size_t i = 0; i < cap; i++) {
        msgpack[i] = (uint8_t)(i * 7 + 3);
    }
    /* Find the msgpack length whose frame body is exactly the maximum. */
    size_t n = cap - 32, size = 0;
    for (int i = 0; i < 8; i++) {
        sidecar_v1_Envelope env = trace_envelope(msgpack, n);
        assert_true(sc_codec_encoded_size(&env, &size));
        if (size == SC_TEST_MAX_FRAME) {
            break;
        }
        n = n + SC_TEST_MAX_FRAME - size;
    }
    assert_int_equal(size, SC_TEST_MAX_FRAME);

    sc_buf_t stream = {0};
    sidecar_v1_Envelope env = trace_envelope(msgpack, n);
    assert_true(sc_codec_append_frame(&stream, &env));
    assert_int_equal(stream.len, SC_FRAME_HEADER_SIZE + SC_TEST_MAX_FRAME);

    big_trace_t t = {msgpack, n};
    /* Zero-copy reads of 64 KiB, and one read. */
    size_t chunks[] = {64 * 1024, stream.len};
    for (size_t c = 0; c < 2; c++) {
        frames_t f = {.check = check_big_trace, .ctx = &t};
        assert_int_equal(read_zero_copy(stream.data, stream.len, chunks[c], &f),
                         SC_FRAME_OK);
        assert_int_equal(f.count, 1);
    }
    /* The copy path. */
    sc_frame_reader_t r;
    sc_frame_reader_init(&r, SC_TEST_MAX_FRAME);
    frames_t f = {.check = check_big_trace, .ctx = &t};
    assert_int_equal(
        sc_frame_reader_feed(&r, stream.data, stream.len, on_frame, &f),
        SC_FRAME_OK);
    assert_int_equal(f.count, 1);
    sc_frame_reader_free(&r);

    /* One byte more: the codec still round-trips it, the reader refuses. */
    sc_buf_reset(&stream);
    env = trace_envelope(msgpack, n + 1);
    assert_true(sc_codec_append_frame(&stream, &env));
    assert_int_equal(stream.len, SC_FRAME_HEADER_SIZE + SC_TEST_MAX_FRAME + 1);
    sidecar_v1_Envelope decoded;
    assert_true(sc_codec_decode(stream.data + SC_FRAME_HEADER_SIZE,
                                stream.len - SC_FRAME_HEADER_SIZE, &decoded,
                                NULL));
    assert_int_equal(decoded.action.trace_payload.msgpack.len, n + 1);
    sc_frame_reader_init(&r, SC_TEST_MAX_FRAME);
    f = (frames_t){.check = check_big_trace, .ctx = &t};
    assert_int_equal(
        sc_frame_reader_feed(&r, stream.data, stream.len, on_frame, &f),
        SC_FRAME_TOO_LARGE);
    assert_int_equal(f.count, 0);
    assert_int_equal(r.too_large, SC_TEST_MAX_FRAME + 1);
    sc_frame_reader_free(&r);

    sc_buf_free(&stream);
    free(msgpack);
}

#define MAX_CONTEXT 256
#define MAX_STRING  256

static bool check_big_evaluation(frames_t *f, const uint8_t *body, size_t len)
{
    const uint8_t *strings = f->ctx;
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(body, len, &env, NULL));
    const sidecar_v1_FlagEvaluationBatch *b = &env.action.flag_evaluation_batch;
    assert_int_equal(b->evaluations.count, 1);
    sc_list_iter_t evals;
    sc_list_iter_init(&evals, &b->evaluations);
    sidecar_v1_FlagEvaluation e;
    assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e), 1);
    assert_true(view_is(e.flag_key, "wide.context"));
    assert_int_equal(e.context.count, MAX_CONTEXT);
    sc_list_iter_t ctx;
    sc_list_iter_init(&ctx, &e.context);
    sidecar_v1_ContextAttribute a;
    for (size_t i = 0; i < MAX_CONTEXT; i++) {
        assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a),
                         1);
        const uint8_t *key = strings + 2 * i * MAX_STRING;
        assert_int_equal(a.key.len, MAX_STRING);
        assert_int_equal(a.string_value.len, MAX_STRING);
        assert_memory_equal(a.key.ptr, key, MAX_STRING);
        assert_memory_equal(a.string_value.ptr, key + MAX_STRING, MAX_STRING);
        assert_true(view_inside(a.key, body, len));
        assert_true(view_inside(a.string_value, body, len));
    }
    assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a), 0);
    assert_int_equal(SC_LIST_NEXT(&evals, sidecar_v1_FlagEvaluation, &e), 0);
    return true;
}

/* docs/flag-evaluations.md: pruning keeps at most 256 context fields of at most
 * 256 bytes. */
static void test_flag_evaluation_with_widest_context(void **state)
{
    (void)state;
    uint8_t *strings = malloc(2 * MAX_CONTEXT * MAX_STRING);
    sidecar_v1_ContextAttribute *attrs = calloc(MAX_CONTEXT, sizeof *attrs);
    assert_non_null(strings);
    assert_non_null(attrs);
    for (size_t i = 0; i < MAX_CONTEXT; i++) {
        uint8_t *key = strings + 2 * i * MAX_STRING;
        uint8_t *value = key + MAX_STRING;
        for (size_t j = 0; j < MAX_STRING; j++) {
            key[j] = (uint8_t)('a' + (i + j) % 26);
            value[j] = (uint8_t)('A' + (i * 3 + j) % 26);
        }
        snprintf((char *)key, 8, "k%05zu", i); /* distinct, sorted keys */
        key[6] = '.';
        attrs[i].key = sc_view_bytes(key, MAX_STRING);
        attrs[i].string_value = sc_view_bytes(value, MAX_STRING);
    }
    sidecar_v1_FlagEvaluation eval = {
        .flag_key = sc_view_str("wide.context"),
        .context = SC_LIST_OF(attrs, MAX_CONTEXT),
        .evaluation_count = 1,
    };
    sidecar_v1_Envelope env = {
        .seq = 1,
        .which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag,
        .action.flag_evaluation_batch.evaluations = SC_LIST_OF(&eval, 1)};
    sc_buf_t stream = {0};
    assert_true(sc_codec_append_frame(&stream, &env));
    assert_true(stream.len - SC_FRAME_HEADER_SIZE <= SC_TEST_MAX_FRAME);

    frames_t f = {.check = check_big_evaluation, .ctx = strings};
    assert_int_equal(read_zero_copy(stream.data, stream.len, 4096, &f),
                     SC_FRAME_OK);
    assert_int_equal(f.count, 1);
    sc_buf_free(&stream);
    free(attrs);
    free(strings);
}

#define MANY_EXPOSURES 20000
#define SUBJECT_LEN    16

static bool check_many_exposures(frames_t *f, const uint8_t *body, size_t len)
{
    const char *subjects = f->ctx;
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(body, len, &env, NULL));
    const sidecar_v1_ExposureBatch *b = &env.action.exposure_batch;
    assert_int_equal(b->exposures.count, MANY_EXPOSURES);
    assert_true(view_is(b->service, "svc"));
    sc_list_iter_t it;
    sc_list_iter_init(&it, &b->exposures);
    sidecar_v1_Exposure x;
    for (size_t i = 0; i < MANY_EXPOSURES; i++) {
        assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_Exposure, &x), 1);
        assert_int_equal(x.timestamp_ms, 1718000000000 + (int64_t)i);
        assert_int_equal(x.subject_id.len, SUBJECT_LEN);
        assert_memory_equal(x.subject_id.ptr, subjects + i * SUBJECT_LEN,
                            SUBJECT_LEN);
        assert_true(view_inside(x.subject_id, body, len));
        assert_int_equal(x.subject_attributes.count, i % 3);
    }
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_Exposure, &x), 0);
    return true;
}

static void test_exposure_batch_with_many_exposures(void **state)
{
    (void)state;
    static const sidecar_v1_ContextAttribute attrs[2] = {
        {.key = {(const uint8_t *)"plan", 4},
         .string_value = {(const uint8_t *)"pro", 3}},
        {.key = {(const uint8_t *)"seats", 5},
         .has_number_value = true,
         .number_value = 3}};
    char *subjects = malloc(MANY_EXPOSURES * SUBJECT_LEN + 1);
    sidecar_v1_Exposure *xs = calloc(MANY_EXPOSURES, sizeof *xs);
    assert_non_null(subjects);
    assert_non_null(xs);
    for (size_t i = 0; i < MANY_EXPOSURES; i++) {
        char *s = subjects + i * SUBJECT_LEN;
        snprintf(s, SUBJECT_LEN + 1, "subject-%08zu", i);
        xs[i] = (sidecar_v1_Exposure){
            .timestamp_ms = 1718000000000 + (int64_t)i,
            .flag_key = sc_view_str("checkout.new-flow"),
            .variant_key = sc_view_str("on"),
            .subject_id = sc_view_bytes(s, SUBJECT_LEN),
            .subject_attributes = SC_LIST_OF(attrs, i % 3)};
    }
    sidecar_v1_Envelope env = {
        .seq = 2,
        .which_action = sidecar_v1_Envelope_exposure_batch_tag,
        .action.exposure_batch = {.exposures = SC_LIST_OF(xs, MANY_EXPOSURES),
                                  .service = sc_view_str("svc")}};
    sc_buf_t stream = {0};
    assert_true(sc_codec_append_frame(&stream, &env));
    assert_true(stream.len - SC_FRAME_HEADER_SIZE <= SC_TEST_MAX_FRAME);

    frames_t f = {.check = check_many_exposures, .ctx = subjects};
    assert_int_equal(read_zero_copy(stream.data, stream.len, 64 * 1024, &f),
                     SC_FRAME_OK);
    assert_int_equal(f.count, 1);
    sc_buf_free(&stream);
    free(xs);
    free(subjects);
}

/* ---- Malformed input ---------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    pb_ostream_t sizing = PB_OSTREAM_SIZING;
    assert_true(pb_encode_varint(&sizing, v));
    return sizing.bytes_written;
}

/* Every prefix of an encoded envelope fails to decode, except the empty one
 * and the one that ends right before the action (a valid envelope without
 * an action, which the server rejects as an unknown action). */
static void test_truncated_messages_fail(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        size_t len = 0;
        uint8_t *bytes = sc_wire_encode_alloc(s->envelope, &len);
        assert_non_null(bytes);
        uint64_t seq = s->envelope->seq;
        size_t action_at = seq != 0 ? 1 + varint_size(seq) : 0;
        for (size_t cut = 0; cut < len; cut++) {
            /* A copy of exactly `cut` bytes, so ASan sees any over-read. */
            uint8_t *prefix = malloc(cut + 1);
            assert_non_null(prefix);
            memcpy(prefix, bytes, cut);
            sidecar_v1_Envelope env;
            const char *error = NULL;
            bool ok = sc_codec_decode(prefix, cut, &env, &error);
            bool valid = cut == 0 || cut == action_at;
            if (ok != valid) {
                fail_msg("%s cut at %zu of %zu: decode %s", s->name, cut, len,
                         ok ? "succeeded" : "failed");
            }
            if (ok) {
                assert_int_equal(env.which_action, 0);
            } else {
                assert_non_null(error);
            }
            free(prefix);
        }
        free(bytes);
    }
}

/* A batch is checked whole at decode: a malformed item anywhere fails
 * sc_codec_decode() rather than sc_list_next() half way through. */
static void test_malformed_list_item_fails_decode(void **state)
{
    (void)state;
    static const uint8_t bad_second_item[] = {
        0x2a, 0x0a,                  /* flag_evaluation_batch, 10 bytes */
        0x0a, 0x03, 0x0a, 0x01, 'a', /* evaluations { flag_key "a" } */
        0x0a, 0x03, 0x0a, 0x05, 'b', /* flag_key says 5 bytes, has 1 */
    };
    static const uint8_t bad_nested_context[] = {
        0x2a, 0x09,                   /* flag_evaluation_batch, 9 bytes */
        0x0a, 0x07,                   /* evaluations, 7 bytes */
        0x42, 0x05,                   /* context, 5 bytes */
        0x19, 0x00, 0x00, 0x00, 0x00, /* number_value: 4 of 8 bytes */
    };
    static const uint8_t wrong_wire_type[] = {
        0x0a, 0x01, 0x00, /* seq as a length-delimited field */
    };
    static const uint8_t action_longer_than_frame[] = {
        0x42, 0x05, 0x08, 0x01, /* ping, 5 bytes announced, 2 present */
    };
    struct {
        const uint8_t *bytes;
        size_t len;
    } cases[] = {
        {bad_second_item, sizeof bad_second_item},
        {bad_nested_context, sizeof bad_nested_context},
        {wrong_wire_type, sizeof wrong_wire_type},
        {action_longer_than_frame, sizeof action_longer_than_frame},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sidecar_v1_Envelope env;
        const char *error = NULL;
        if (sc_codec_decode(cases[i].bytes, cases[i].len, &env, &error)) {
            fail_msg("case %zu decoded", i);
        }
        assert_non_null(error);
    }
}

/* An action number this build does not know is skipped like any unknown
 * field: the envelope decodes with which_action == 0. */
static void test_unknown_action_number(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {
        0x08, 0x05,            /* seq = 5 */
        0x7a, 0x02, 0x08, 0x01 /* field 15 { 1: 1 } */
    };
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode(bytes, sizeof bytes, &env, NULL));
    assert_int_equal(env.seq, 5);
    assert_int_equal(env.which_action, 0);
}

/* ---- Framing by the codec ----------------------------------------------- */

static void test_append_frame(void **state)
{
    (void)state;
    const sidecar_v1_Envelope *a = sc_wire_sample_find("hello_full")->envelope;
    const sidecar_v1_Envelope *b = sc_wire_sample_find("ping_full")->envelope;
    size_t a_len = 0, b_len = 0;
    uint8_t *a_bytes = sc_wire_encode_alloc(a, &a_len);
    uint8_t *b_bytes = sc_wire_encode_alloc(b, &b_len);
    assert_non_null(a_bytes);
    assert_non_null(b_bytes);

    sc_buf_t out = {0};
    assert_true(sc_codec_append_frame(&out, a));
    assert_true(sc_codec_append_frame(&out, b));
    assert_int_equal(out.len, 2 * SC_FRAME_HEADER_SIZE + a_len + b_len);
    assert_int_equal(sc_frame_get_len(out.data), a_len);
    assert_memory_equal(out.data + SC_FRAME_HEADER_SIZE, a_bytes, a_len);
    const uint8_t *second = out.data + SC_FRAME_HEADER_SIZE + a_len;
    assert_int_equal(sc_frame_get_len(second), b_len);
    /* Little-endian on the wire whatever the host. */
    assert_int_equal(second[0], (uint8_t)b_len);
    assert_int_equal(second[1], 0);
    assert_memory_equal(second + SC_FRAME_HEADER_SIZE, b_bytes, b_len);

    /* A message that cannot be encoded (a list without its items) leaves
     * the buffer as it was. */
    sidecar_v1_Envelope broken = {
        .which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag,
        .action.flag_evaluation_batch.evaluations = {.items = NULL,
                                                     .count = 2}};
    size_t before = out.len;
    uint8_t *copy = malloc(before);
    assert_non_null(copy);
    memcpy(copy, out.data, before);
    assert_false(sc_codec_append_frame(&out, &broken));
    assert_int_equal(out.len, before);
    assert_memory_equal(out.data, copy, before);

    free(copy);
    sc_buf_free(&out);
    free(a_bytes);
    free(b_bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_action_has_full_and_absent_samples),
        cmocka_unit_test(test_full_samples_cover_every_field),
        cmocka_unit_test(test_absent_samples_encode_an_empty_action),
        cmocka_unit_test(test_every_sample_round_trips_through_frames),
        cmocka_unit_test(test_zero_and_empty_are_not_absent),
        cmocka_unit_test(test_nested_lists_walk),
        cmocka_unit_test(test_interleaved_list_items),
        cmocka_unit_test(test_trace_payload_at_max_frame),
        cmocka_unit_test(test_flag_evaluation_with_widest_context),
        cmocka_unit_test(test_exposure_batch_with_many_exposures),
        cmocka_unit_test(test_truncated_messages_fail),
        cmocka_unit_test(test_malformed_list_item_fails_decode),
        cmocka_unit_test(test_unknown_action_number),
        cmocka_unit_test(test_append_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
