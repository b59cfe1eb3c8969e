/* Every view and list of a decoded envelope lies inside its own field's
 * bytes in the frame (issue #17): a string, bytes or repeated message field
 * that arrives with another wire type is a decode error; list items are
 * walked exactly as they were checked at decode time; items split across
 * two occurrences of their parent are rejected. Hand-built bytes, so each
 * case says what a hostile peer sends. */
#include "codec.h"
#include "flageval.h"
#include "flageval_wire.h"
#include "wire_samples.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* A good FlagEvaluation: flag_key "f", evaluation_count 1 (5 bytes). */
#define ITEM 0x0a, 0x01, 0x66, 0x48, 0x01
/* The same as 8 bytes (flag_key "ff", count 1, degraded false): what a
 * fixed64 field carries. */
#define ITEM8 0x0a, 0x02, 0x66, 0x66, 0x48, 0x01, 0x60, 0x00

/* Decodes `bytes` from a heap copy of exactly their length (so ASan sees
 * any read past them) and returns the decoder's verdict. */
static bool decode_copy(const uint8_t *bytes, size_t len,
                        sidecar_v1_Envelope *env, uint8_t **copy,
                        const char **err)
{
    *copy = malloc(len > 0 ? len : 1);
    assert_non_null(*copy);
    memcpy(*copy, bytes, len);
    return sc_codec_decode(*copy, len, env, err);
}

static void expect_rejected(const uint8_t *bytes, size_t len,
                            const char *why_contains)
{
    sidecar_v1_Envelope env;
    uint8_t *copy;
    const char *err = NULL;
    bool ok = decode_copy(bytes, len, &env, &copy, &err);
    free(copy);
    if (ok) {
        fail_msg("decoded, expected a decode error (%s)", why_contains);
    }
    assert_non_null(err);
    if (strstr(err, why_contains) == NULL) {
        fail_msg("error \"%s\", expected one saying \"%s\"", err, why_contains);
    }
}

#define REJECTS(why, ...)                                                      \
    do {                                                                       \
        static const uint8_t b[] = {__VA_ARGS__};                              \
        expect_rejected(b, sizeof b, why);                                     \
    } while (0)

static void wrong_wire_type_for_list_items(void **state)
{
    (void)state;
    /* The one-frame crash, reduced: a fixed64 item (nanopb hands its
     * callback a copy on its own stack) next to a length-delimited one. */
    REJECTS("wrong wire type", 0x2a, 0x10, 0x09, ITEM8, 0x0a, 0x05, ITEM);
    REJECTS("wrong wire type", 0x2a, 0x10, 0x0a, 0x05, ITEM, 0x09, ITEM8);
    REJECTS("wrong wire type", 0x2a, 0x09, 0x09, ITEM8);
    REJECTS("wrong wire type", 0x2a, 0x02, 0x08, 0x01);       /* varint */
    REJECTS("wrong wire type", 0x2a, 0x05, 0x0d, 1, 2, 3, 4); /* fixed32 */
    REJECTS("wrong wire type", 0x32, 0x02, 0x08, 0x7f);       /* exposures */
    /* A context attribute inside an evaluation, as fixed64. */
    REJECTS("malformed list item", 0x2a, 0x10, 0x0a, 0x0e, ITEM, 0x41, 1, 2, 3,
            4, 5, 6, 7, 8);
}

static void wrong_wire_type_for_strings(void **state)
{
    (void)state;
    /* batch.service as a varint, as fixed64, as fixed32 */
    REJECTS("wrong wire type", 0x2a, 0x02, 0x18, 0x05);
    REJECTS("wrong wire type", 0x2a, 0x09, 0x19, 1, 2, 3, 4, 5, 6, 7, 8);
    REJECTS("wrong wire type", 0x2a, 0x05, 0x1d, 1, 2, 3, 4);
    /* trace_payload.msgpack as a varint */
    REJECTS("wrong wire type", 0x22, 0x02, 0x08, 0x10);
    /* hello.language as fixed32 */
    REJECTS("wrong wire type", 0x12, 0x05, 0x25, 0x61, 0x62, 0x63, 0x64);
    /* a flag key inside a list item as a varint */
    REJECTS("malformed list item", 0x2a, 0x06, 0x0a, 0x04, 0x08, 0x01, 0x48,
            0x01);
}

static void items_split_across_parents_are_rejected(void **state)
{
    (void)state;
    /* Two flag_evaluation_batch fields, which protobuf merges into one:
     * their items do not lie inside one message. */
    REJECTS("outside one message", 0x2a, 0x07, 0x0a, 0x05, ITEM, 0x2a, 0x07,
            0x0a, 0x05, ITEM);
}

static void decode_ok(const uint8_t *bytes, size_t len,
                      sidecar_v1_Envelope *env, uint8_t **copy)
{
    const char *err = NULL;
    if (!decode_copy(bytes, len, env, copy, &err)) {
        fail_msg("decode failed: %s", err);
    }
    sc_wire_assert_views_within(sidecar_v1_Envelope_fields, env, *copy, len);
}

static void interleaved_items_are_walked_as_checked(void **state)
{
    (void)state;
    /* Items with other fields between them, one of which (service) holds
     * bytes that look like an item: it is not one. */
    static const uint8_t b[] = {
        0x2a, 0x1c,       /* batch, 28 bytes */
        0x0a, 0x05, ITEM, /* item 1 */
        0x10, 0x07,       /* dropped 7 */
        0x1a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x67, 0x48, 0x01, /* service */
        0x0a, 0x05, 0x0a, 0x01, 0x68, 0x48, 0x02, /* item 2: "h" x2 */
        0x22, 0x01, 0x65,                         /* env "e" */
    };
    sidecar_v1_Envelope env;
    uint8_t *copy;
    decode_ok(b, sizeof b, &env, &copy);
    const sidecar_v1_FlagEvaluationBatch *batch =
        &env.action.flag_evaluation_batch;
    assert_int_equal(batch->evaluations.count, 2);
    assert_int_equal(batch->dropped, 7);
    assert_int_equal(batch->service.len, 7);
    sc_list_iter_t it;
    sc_list_iter_init(&it, &batch->evaluations);
    sidecar_v1_FlagEvaluation e;
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
    assert_memory_equal(e.flag_key.ptr, "f", 1);
    assert_int_equal(e.evaluation_count, 1);
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
    assert_memory_equal(e.flag_key.ptr, "h", 1);
    assert_int_equal(e.evaluation_count, 2);
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 0);
    free(copy);
}

static void duplicate_parent_without_new_items_is_accepted(void **state)
{
    (void)state;
    /* The batch twice, items in the first only: merged, as protobuf does. */
    static const uint8_t b[] = {0x2a, 0x07, 0x0a, 0x05, ITEM,
                                0x2a, 0x02, 0x10, 0x03};
    sidecar_v1_Envelope env;
    uint8_t *copy;
    decode_ok(b, sizeof b, &env, &copy);
    assert_int_equal(env.action.flag_evaluation_batch.evaluations.count, 1);
    assert_int_equal(env.action.flag_evaluation_batch.dropped, 3);
    free(copy);
}

/* The shape of the one-frame crash of a release sidecar (a batch
 * with a fixed64 item between good ones, then more fields): rejected at
 * decode, so a merge never walks it. */
static void one_frame_crash_is_a_decode_error(void **state)
{
    (void)state;
    static const uint8_t b[] = {0x2a, 0x19,        /* batch */
                                0x0a, 0x05,  ITEM, /* item */
                                0x09, ITEM8,       /* fixed64 */
                                0x0a, 0x05,  ITEM, /* item */
                                0x10, 0x00,        /* dropped */
                                0x08, 0x01,  0x08, 0x02, 0x08, 0x03};
    expect_rejected(b, sizeof b, "wrong wire type");
}

/* Every golden vector cut at every length: decoded or rejected, never a
 * view outside the bytes given (ASan sees the heap copy's end). */
static void truncated_vectors_stay_inside(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        size_t len = 0;
        uint8_t *full = sc_wire_encode_alloc(sc_wire_samples[i].envelope, &len);
        assert_non_null(full);
        for (size_t cut = 0; cut <= len; cut++) {
            sidecar_v1_Envelope env;
            uint8_t *copy;
            const char *err;
            if (decode_copy(full, cut, &env, &copy, &err)) {
                sc_wire_assert_views_within(sidecar_v1_Envelope_fields, &env,
                                            copy, cut);
            }
            free(copy);
        }
        free(full);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrong_wire_type_for_list_items),
        cmocka_unit_test(wrong_wire_type_for_strings),
        cmocka_unit_test(items_split_across_parents_are_rejected),
        cmocka_unit_test(interleaved_items_are_walked_as_checked),
        cmocka_unit_test(duplicate_parent_without_new_items_is_accepted),
        cmocka_unit_test(one_frame_crash_is_a_decode_error),
        cmocka_unit_test(truncated_vectors_stay_inside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
