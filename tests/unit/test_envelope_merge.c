/* Protobuf merging of a repeated action field (envelope_merge.h), checked
 * through the codec: the merged frame decodes to what protobuf's merge rules
 * say (lists concatenated, scalars last, the last oneof member wins). */
#include "codec.h"
#include "envelope_merge.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* Appends field `number` as a length-delimited field. */
static void put_bytes(sc_buf_t *b, uint32_t number, const sc_buf_t *payload)
{
    uint8_t head[2] = {(uint8_t)(number << 3 | 2), (uint8_t)payload->len};
    assert_true(payload->len < 128 && number < 16);
    assert_true(sc_buf_append(b, head, 2));
    assert_true(sc_buf_append(b, payload->data, payload->len));
}

/* The encoding of one FlagEvaluationBatch (no envelope around it). */
static void batch(sc_buf_t *out, const char *flag, uint64_t dropped)
{
    sidecar_v1_FlagEvaluation e;
    memset(&e, 0, sizeof e);
    e.flag_key = sc_view_str(flag);
    e.evaluation_count = 1;
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.which_action = sidecar_v1_Envelope_flag_evaluation_batch_tag;
    env.action.flag_evaluation_batch.evaluations = SC_LIST_OF(&e, 1);
    env.action.flag_evaluation_batch.dropped = dropped;
    sc_buf_t framed = {0};
    assert_true(sc_codec_append_frame(&framed, &env));
    /* frame header (4), tag (1), length (1), then the batch */
    assert_true(sc_buf_append(out, framed.data + 6, framed.len - 6));
    sc_buf_free(&framed);
}

static void decode_merged(const sc_buf_t *msg, sc_buf_t *scratch,
                          sidecar_v1_Envelope *env)
{
    const uint8_t *out = NULL;
    size_t out_len = 0;
    assert_true(sc_envelope_merge_actions(msg->data, msg->len, scratch, &out,
                                          &out_len));
    assert_true(sc_codec_decode(out, out_len, env, NULL));
}

static void single_action_untouched(void **state)
{
    (void)state;
    sc_buf_t b = {0}, payload = {0}, scratch = {0};
    batch(&payload, "a", 1);
    put_bytes(&b, 5, &payload);
    const uint8_t *out = NULL;
    size_t len = 0;
    assert_true(sc_envelope_merge_actions(b.data, b.len, &scratch, &out, &len));
    assert_ptr_equal(out, b.data);
    assert_int_equal(len, b.len);
    sc_buf_free(&b);
    sc_buf_free(&payload);
    sc_buf_free(&scratch);
}

static void twice_is_merged(void **state)
{
    (void)state;
    sc_buf_t b = {0}, p1 = {0}, p2 = {0}, scratch = {0};
    const uint8_t seq[] = {0x08, 0x2a}; /* seq = 42 */
    assert_true(sc_buf_append(&b, seq, sizeof seq));
    batch(&p1, "first", 5);
    batch(&p2, "second", 3);
    put_bytes(&b, 5, &p1);
    put_bytes(&b, 5, &p2);
    sidecar_v1_Envelope env;
    decode_merged(&b, &scratch, &env);
    assert_int_equal(env.seq, 42);
    const sidecar_v1_FlagEvaluationBatch *m = &env.action.flag_evaluation_batch;
    assert_int_equal(m->dropped, 3); /* a scalar keeps its last value */
    assert_int_equal(m->evaluations.count, 2);
    sc_list_iter_t it;
    sc_list_iter_init(&it, &m->evaluations);
    sidecar_v1_FlagEvaluation e;
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
    assert_memory_equal(e.flag_key.ptr, "first", 5);
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
    assert_memory_equal(e.flag_key.ptr, "second", 6);
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 0);
    sc_buf_free(&b);
    sc_buf_free(&p1);
    sc_buf_free(&p2);
    sc_buf_free(&scratch);
}

static void last_run_wins(void **state)
{
    (void)state;
    sc_buf_t b = {0}, p1 = {0}, p2 = {0}, p3 = {0}, empty = {0}, scratch = {0};
    batch(&p1, "lost", 1);
    batch(&p2, "kept-1", 0);
    batch(&p3, "kept-2", 0);
    put_bytes(&b, 5, &p1);
    put_bytes(&b, 8, &empty); /* a ping replaces the first batch */
    put_bytes(&b, 5, &p2);    /* which a new batch replaces */
    put_bytes(&b, 5, &p3);
    sidecar_v1_Envelope env;
    decode_merged(&b, &scratch, &env);
    assert_int_equal(env.which_action,
                     sidecar_v1_Envelope_flag_evaluation_batch_tag);
    assert_int_equal(env.action.flag_evaluation_batch.evaluations.count, 2);
    sc_buf_free(&b);
    sc_buf_free(&p1);
    sc_buf_free(&p2);
    sc_buf_free(&p3);
    sc_buf_free(&scratch);
}

static void malformed_left_alone(void **state)
{
    (void)state;
    const uint8_t bad[] = {0x2a, 0x05, 0x01}; /* length past the end */
    sc_buf_t scratch = {0};
    const uint8_t *out = NULL;
    size_t len = 0;
    assert_true(
        sc_envelope_merge_actions(bad, sizeof bad, &scratch, &out, &len));
    assert_ptr_equal(out, bad);
    sidecar_v1_Envelope env;
    assert_false(sc_codec_decode(out, len, &env, NULL));
    sc_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_action_untouched),
        cmocka_unit_test(twice_is_merged),
        cmocka_unit_test(last_run_wins),
        cmocka_unit_test(malformed_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
