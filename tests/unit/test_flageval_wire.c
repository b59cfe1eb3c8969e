/* Flag evaluations over the wire: drain -> FlagEvaluationBatch frames ->
 * sc_codec_decode -> merge into the sidecar's aggregator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "flageval_wire.h"
#include "test_flageval_common.h"

static const sc_flageval_wire_meta_t meta = {
    .service = {(const uint8_t *)"svc", 3},
    .env = {(const uint8_t *)"", 0}, /* present and empty */
};

/* Records a mix of everything the wire must carry into `agg`; returns how
 * many evaluations were offered. */
static uint64_t record_mix(sc_flageval_t *agg)
{
    uint64_t offered = 0;
    sc_flageval_attr_t attrs[] = {
        sc_flageval_attr_string("country", "FR"),
        sc_flageval_attr_string("empty", ""),
        sc_flageval_attr_number("age", 42.5),
        sc_flageval_attr_number("neg0", -0.0),
        sc_flageval_attr_bool("beta", false),
        sc_flageval_attr_string("", "empty key"),
    };
    char tk[16];
    for (int i = 0; i < 30; i++) {
        snprintf(tk, sizeof tk, "user-%d", i % 12);
        sc_flageval_eval_t ev = evaluation(i % 3 ? "flag-a" : "flag-b", tk);
        ev.context = attrs;
        ev.context_len = (size_t)(i % 7);
        ev.timestamp_ms += i * 37 % 11;
        switch (i % 5) {
        case 0:
            ev.variant_key = sc_view_bytes(NULL, 0);
            ev.error_message = sc_view_str("FLAG_NOT_FOUND");
            break;
        case 1:
            ev.variant_key = sc_view_bytes("", 0);
            ev.targeting_rule_key = sc_view_bytes("", 0);
            break;
        case 2:
            ev.targeting_key = sc_view_bytes(NULL, 0);
            ev.reason = sc_view_bytes(NULL, 0);
            break;
        case 3:
            ev.targeting_key = sc_view_bytes("", 0);
            ev.allocation_key = sc_view_bytes("", 0);
            break;
        }
        sc_flageval_record(agg, &ev);
        offered++;
    }
    /* Dropped and rejected ones travel as `dropped`. */
    sc_flageval_eval_t bad = evaluation("", "u");
    sc_flageval_record(agg, &bad);
    offered++;
    return offered;
}

static void assert_same_view(sc_view_t a, sc_view_t b)
{
    assert_int_equal(a.ptr != NULL, b.ptr != NULL);
    assert_int_equal(a.len, b.len);
    if (a.len > 0) {
        assert_memory_equal(a.ptr, b.ptr, a.len);
    }
}

static void assert_same_batches(const sc_flageval_batch_t *a,
                                const sc_flageval_batch_t *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->evaluations, b->evaluations);
    assert_int_equal(a->dropped, b->dropped);
    for (size_t i = 0; i < a->count; i++) {
        sc_flageval_bucket_view_t x, y;
        sc_flageval_batch_bucket(a, i, &x);
        sc_flageval_batch_bucket(b, i, &y);
        assert_same_view(x.flag_key, y.flag_key);
        assert_same_view(x.variant_key, y.variant_key);
        assert_same_view(x.allocation_key, y.allocation_key);
        assert_same_view(x.reason, y.reason);
        assert_same_view(x.targeting_key, y.targeting_key);
        assert_same_view(x.targeting_rule_key, y.targeting_rule_key);
        assert_same_view(x.error_message, y.error_message);
        assert_int_equal(x.context.len, y.context.len);
        if (x.context.len > 0) {
            assert_memory_equal(x.context.ptr, y.context.ptr, x.context.len);
        }
        assert_int_equal(x.evaluation_count, y.evaluation_count);
        assert_int_equal(x.first_evaluation_ms, y.first_evaluation_ms);
        assert_int_equal(x.last_evaluation_ms, y.last_evaluation_ms);
        assert_int_equal(x.degraded, y.degraded);
        assert_int_equal(x.runtime_default_used, y.runtime_default_used);
    }
}

/* Decodes every frame of `frames` and merges it; returns the frame count. */
static size_t merge_frames(sc_flageval_t *agg, const sc_buf_t *frames,
                           size_t max_frame)
{
    size_t n = 0, pos = 0;
    while (pos < frames->len) {
        assert_true(frames->len - pos >= SC_FRAME_HEADER_SIZE);
        uint32_t len = sc_frame_get_len(frames->data + pos);
        assert_true(len <= max_frame);
        sidecar_v1_Envelope env;
        const char *error = NULL;
        assert_true(sc_codec_decode(frames->data + pos + SC_FRAME_HEADER_SIZE,
                                    len, &env, &error));
        assert_int_equal(env.which_action,
                         sidecar_v1_Envelope_flag_evaluation_batch_tag);
        const sidecar_v1_FlagEvaluationBatch *b =
            &env.action.flag_evaluation_batch;
        assert_same_view(b->service, meta.service);
        assert_same_view(b->env, meta.env);
        assert_null(b->version.ptr);
        assert_true(n == 0 || b->dropped == 0); /* dropped: first only */
        assert_int_equal(sc_flageval_wire_merge(agg, b, &error), 0);
        assert_null(error);
        pos += SC_FRAME_HEADER_SIZE + len;
        n++;
    }
    return n;
}

static void test_round_trip_identical_buckets(void **state)
{
    (void)state;
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.per_flag_cap = 8; /* some buckets degraded */
    cfg.degraded_cap = 3; /* and some dropped */
    sc_flageval_t *client = sc_flageval_new(&cfg);
    uint64_t offered = record_mix(client);
    sc_flageval_batch_t sent;
    sc_flageval_drain(client, &sent);
    assert_true(sent.dropped_overflow > 0 && sent.rejected > 0);
    assert_int_equal(sent.evaluations + sent.dropped, offered);

    sc_buf_t frames = {0};
    uint64_t seq = 7;
    assert_true(sc_flageval_wire_append_frames(&sent, &meta, 0, &seq, &frames));
    assert_int_equal(seq, 8); /* one frame */

    sc_flageval_t *sidecar = sc_flageval_new(NULL);
    assert_int_equal(
        merge_frames(sidecar, &frames, SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME), 1);
    sc_flageval_batch_t received;
    sc_flageval_drain(sidecar, &received);
    assert_same_batches(&sent, &received);

    sc_buf_free(&frames);
    sc_flageval_batch_free(&sent);
    sc_flageval_batch_free(&received);
    sc_flageval_free(client);
    sc_flageval_free(sidecar);
}

static void test_split_into_frames(void **state)
{
    (void)state;
    sc_flageval_t *client = sc_flageval_new(NULL);
    uint64_t offered = 0;
    for (int round = 0; round < 4; round++) {
        offered += record_mix(client);
    }
    sc_flageval_batch_t sent;
    sc_flageval_drain(client, &sent);
    const size_t max_frame = 600;
    sc_buf_t frames = {0};
    uint64_t seq = 1;
    assert_true(
        sc_flageval_wire_append_frames(&sent, &meta, max_frame, &seq, &frames));
    assert_true(seq > 3);
    sc_flageval_t *sidecar = sc_flageval_new(NULL);
    assert_int_equal(merge_frames(sidecar, &frames, max_frame), seq - 1);
    sc_flageval_batch_t received;
    sc_flageval_drain(sidecar, &received);
    assert_same_batches(&sent, &received);
    assert_int_equal(received.evaluations + received.dropped, offered);
    sc_buf_free(&frames);
    sc_flageval_batch_free(&sent);
    sc_flageval_batch_free(&received);
    sc_flageval_free(client);
    sc_flageval_free(sidecar);
}

static void test_bucket_too_large_for_a_frame_is_counted(void **state)
{
    (void)state;
    sc_flageval_t *client = sc_flageval_new(NULL);
    static char value[SC_FLAGEVAL_MAX_VALUE_LEN + 1];
    memset(value, 'v', SC_FLAGEVAL_MAX_VALUE_LEN);
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_string("a", value),
                                  sc_flageval_attr_string("b", value),
                                  sc_flageval_attr_string("c", value)};
    sc_flageval_eval_t big = evaluation("big", "u");
    big.context = attrs;
    big.context_len = 3;
    for (int i = 0; i < 4; i++) {
        sc_flageval_record(client, &big);
    }
    sc_flageval_eval_t small = evaluation("small", "u");
    sc_flageval_record(client, &small);
    sc_flageval_batch_t sent;
    sc_flageval_drain(client, &sent);
    sc_buf_t frames = {0};
    uint64_t seq = 1;
    assert_true(
        sc_flageval_wire_append_frames(&sent, &meta, 300, &seq, &frames));
    sc_flageval_t *sidecar = sc_flageval_new(NULL);
    assert_int_equal(merge_frames(sidecar, &frames, 300), 1);
    sc_flageval_batch_t received;
    sc_flageval_drain(sidecar, &received);
    assert_int_equal(received.count, 1);
    assert_int_equal(received.evaluations, 1);
    assert_int_equal(received.dropped, 4);
    sc_buf_free(&frames);
    sc_flageval_batch_free(&sent);
    sc_flageval_batch_free(&received);
    sc_flageval_free(client);
    sc_flageval_free(sidecar);
}

static void test_nothing_to_send_no_frame(void **state)
{
    (void)state;
    sc_flageval_t *client = sc_flageval_new(NULL);
    sc_flageval_batch_t sent;
    sc_flageval_drain(client, &sent);
    sc_buf_t frames = {0};
    uint64_t seq = 1;
    assert_true(sc_flageval_wire_append_frames(&sent, &meta, 0, &seq, &frames));
    assert_int_equal(frames.len, 0);
    assert_int_equal(seq, 1);
    /* Only drops: one frame carrying them. */
    sc_flageval_eval_t bad = evaluation(NULL, "u");
    sc_flageval_record(client, &bad);
    sc_flageval_drain(client, &sent);
    assert_true(sc_flageval_wire_append_frames(&sent, &meta, 0, &seq, &frames));
    assert_int_equal(seq, 2);
    sc_flageval_t *sidecar = sc_flageval_new(NULL);
    merge_frames(sidecar, &frames, SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME);
    sc_flageval_batch_t received;
    sc_flageval_drain(sidecar, &received);
    assert_int_equal(received.count, 0);
    assert_int_equal(received.dropped, 1);
    sc_buf_free(&frames);
    sc_flageval_batch_free(&received);
    sc_flageval_free(client);
    sc_flageval_free(sidecar);
}

/* Two clients' batches: counts add, first/last are min/max, degraded stays
 * degraded, and the sidecar's caps apply. */
static void test_merge_rules_across_clients(void **state)
{
    (void)state;
    sc_flageval_config_t small;
    sc_flageval_config_default(&small);
    small.per_flag_cap = 1;
    sc_flageval_t *c1 = sc_flageval_new(&small);
    sc_flageval_t *c2 = sc_flageval_new(NULL);
    sc_flageval_eval_t ev = evaluation("f", "u");
    ev.timestamp_ms = 100;
    sc_flageval_record(c1, &ev);
    sc_flageval_record(c2, &ev);
    ev.timestamp_ms = 50;
    sc_flageval_record(c2, &ev);
    ev.timestamp_ms = 300;
    sc_flageval_record(c1, &ev);
    /* c1 degrades "v" (its per-flag cap is 1); c2 keeps it full. */
    sc_flageval_eval_t other = evaluation("f", "v");
    sc_flageval_record(c1, &other);
    sc_flageval_record(c2, &other);

    sc_buf_t frames = {0};
    uint64_t seq = 1;
    sc_flageval_t *clients[] = {c1, c2};
    for (int i = 0; i < 2; i++) {
        sc_flageval_batch_t b;
        sc_flageval_drain(clients[i], &b);
        assert_true(
            sc_flageval_wire_append_frames(&b, &meta, 0, &seq, &frames));
        sc_flageval_batch_free(&b);
    }
    sc_flageval_t *sidecar = sc_flageval_new(NULL);
    merge_frames(sidecar, &frames, SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME);
    sc_flageval_batch_t got;
    sc_flageval_drain(sidecar, &got);
    assert_int_equal(got.count, 3); /* f/u full, f/v full, f degraded */
    sc_flageval_bucket_view_t u, v, d;
    sc_flageval_batch_bucket(&got, 0, &u);
    sc_flageval_batch_bucket(&got, 1, &v);
    sc_flageval_batch_bucket(&got, 2, &d);
    assert_int_equal(u.evaluation_count, 4);
    assert_int_equal(u.first_evaluation_ms, 50);
    assert_int_equal(u.last_evaluation_ms, 300);
    assert_int_equal(v.evaluation_count, 1);
    assert_false(v.degraded);
    assert_true(d.degraded);
    assert_int_equal(d.evaluation_count, 1);
    sc_flageval_batch_free(&got);

    /* The sidecar's own caps: a sidecar with per_flag_cap 1 degrades. */
    sc_flageval_t *capped = sc_flageval_new(&small);
    merge_frames(capped, &frames, SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME);
    sc_flageval_drain(capped, &got);
    assert_int_equal(got.count, 2);
    assert_int_equal(got.evaluations, 6);
    sc_flageval_batch_free(&got);

    /* A disabled sidecar aggregator stays untouched. */
    sc_flageval_config_t off;
    sc_flageval_config_default(&off);
    off.enabled = false;
    sc_flageval_t *disabled = sc_flageval_new(&off);
    merge_frames(disabled, &frames, SC_FLAGEVAL_WIRE_DEFAULT_MAX_FRAME);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(disabled, &st);
    assert_int_equal(st.evaluations, 0);
    assert_int_equal(st.full_buckets + st.degraded_buckets, 0);

    sc_buf_free(&frames);
    sc_flageval_free(c1);
    sc_flageval_free(c2);
    sc_flageval_free(sidecar);
    sc_flageval_free(capped);
    sc_flageval_free(disabled);
}

/* Encodes one hand-made evaluation, decodes it, and merges it. */
static int merge_handmade(sc_flageval_t *agg, sidecar_v1_FlagEvaluation *item,
                          const char **error)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag;
    env.action.flag_evaluation_batch.evaluations = SC_LIST_OF(item, 1);
    env.action.flag_evaluation_batch.dropped = 3;
    sc_buf_t frame = {0};
    assert_true(sc_codec_append_frame(&frame, &env));
    sidecar_v1_Envelope decoded;
    assert_true(sc_codec_decode(frame.data + SC_FRAME_HEADER_SIZE,
                                frame.len - SC_FRAME_HEADER_SIZE, &decoded,
                                NULL));
    int rc = sc_flageval_wire_merge(agg, &decoded.action.flag_evaluation_batch,
                                    error);
    sc_buf_free(&frame);
    return rc;
}

static void test_reject_malformed_batches(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sidecar_v1_ContextAttribute attrs[2];
    memset(attrs, 0, sizeof attrs);
    attrs[0].key = sc_view_str("ok");
    attrs[0].has_bool_value = true;
    attrs[1].key = sc_view_str("bad");

    sidecar_v1_FlagEvaluation item;
    const char *error = NULL;
    struct {
        int values; /* of attrs[1]: 0, or 2 / 3 at once */
        const char *flag;
        uint64_t count;
        int64_t first, last;
    } cases[] = {
        {0, "f", 1, 1, 1},  {2, "f", 1, 1, 1}, {3, "f", 1, 1, 1},
        {1, NULL, 1, 1, 1}, {1, "f", 0, 1, 1}, {1, "f", 1, 5, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        attrs[1].string_value = sc_view_bytes(NULL, 0);
        attrs[1].has_number_value = false;
        attrs[1].has_bool_value = false;
        if (cases[i].values >= 1) {
            attrs[1].string_value = sc_view_str("s");
        }
        if (cases[i].values >= 2) {
            attrs[1].has_number_value = true;
        }
        if (cases[i].values >= 3) {
            attrs[1].has_bool_value = true;
        }
        memset(&item, 0, sizeof item);
        item.flag_key = sc_view_str(cases[i].flag);
        item.context = SC_LIST_OF(attrs, 2);
        item.evaluation_count = cases[i].count;
        item.first_evaluation_ms = cases[i].first;
        item.last_evaluation_ms = cases[i].last;
        error = NULL;
        assert_int_equal(merge_handmade(agg, &item, &error), -1);
        assert_non_null(error);
    }
    /* Nothing of a rejected batch was merged, not even its `dropped`. */
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.evaluations, 0);
    assert_int_equal(st.pending_dropped, 0);

    /* The same item made valid is merged. */
    attrs[1].string_value = sc_view_str("s");
    attrs[1].has_number_value = attrs[1].has_bool_value = false;
    memset(&item, 0, sizeof item);
    item.flag_key = sc_view_str("f");
    item.context = SC_LIST_OF(attrs, 2);
    item.evaluation_count = 2;
    assert_int_equal(merge_handmade(agg, &item, &error), 0);
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.evaluations, 5);
    assert_int_equal(st.full_buckets, 1);
    assert_int_equal(st.pending_dropped, 3);
    sc_flageval_free(agg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_identical_buckets),
        cmocka_unit_test(test_split_into_frames),
        cmocka_unit_test(test_bucket_too_large_for_a_frame_is_counted),
        cmocka_unit_test(test_nothing_to_send_no_frame),
        cmocka_unit_test(test_merge_rules_across_clients),
        cmocka_unit_test(test_reject_malformed_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
