/* Golden wire vectors (docs/wire.md, drift guard 2): the checked-in bytes in
 * tests/vectors/ decode to the expected values and re-encode to the same
 * bytes. A changed field number, type or encoding rule breaks this on
 * purpose; if the change is deliberate, regenerate the vectors with
 * tests/tools/regen_vectors.sh and review the .txt diff. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "wire_samples.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SC_VECTORS_DIR
#error "SC_VECTORS_DIR must name tests/vectors"
#endif

static uint8_t *read_vector(const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", SC_VECTORS_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s (vectors are regenerated with "
                 "tests/tools/regen_vectors.sh)",
                 path);
    }
    size_t cap = 4096, n = 0;
    uint8_t *data = malloc(cap);
    assert_non_null(data);
    for (;;) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap) {
            break;
        }
        cap *= 2;
        data = realloc(data, cap);
        assert_non_null(data);
    }
    assert_false(ferror(f));
    fclose(f);
    *len = n;
    return data;
}

static bool view_is(sc_view_t v, const char *s)
{
    return v.ptr != NULL && v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

/* The manifest names exactly the samples, in order: no stale vector, none
 * missing. */
static void test_manifest_matches_samples(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = (char *)read_vector("MANIFEST", &len);
    text = realloc(text, len + 1);
    assert_non_null(text);
    text[len] = '\0';
    size_t i = 0;
    for (char *line = strtok(text, "\r\n"); line != NULL;
         line = strtok(NULL, "\r\n")) {
        if (line[0] == '#') {
            continue;
        }
        if (i >= sc_wire_sample_count ||
            strcmp(line, sc_wire_samples[i].name) != 0) {
            fail_msg("MANIFEST line %zu is \"%s\", the samples say \"%s\"",
                     i + 1, line,
                     i < sc_wire_sample_count ? sc_wire_samples[i].name : "-");
        }
        i++;
    }
    assert_int_equal(i, sc_wire_sample_count);
    free(text);
}

static void test_every_vector_decodes_and_reencodes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sc_wire_sample_count; i++) {
        const sc_wire_sample_t *s = &sc_wire_samples[i];
        char file[256];
        snprintf(file, sizeof file, "%s.bin", s->name);
        size_t len = 0;
        uint8_t *bytes = read_vector(file, &len);

        sidecar_v1_Envelope env;
        const char *error = NULL;
        if (!sc_codec_decode(bytes, len, &env, &error)) {
            fail_msg("%s: does not decode: %s", file, error);
        }
        sc_wire_assert_equal(file, sidecar_v1_Envelope_fields, s->envelope,
                             &env);
        sc_wire_assert_views_within(sidecar_v1_Envelope_fields, &env, bytes,
                                    len);

        sc_wire_arena_t arena = {0};
        assert_true(
            sc_wire_materialize(sidecar_v1_Envelope_fields, &env, &arena));
        size_t again_len = 0;
        uint8_t *again = sc_wire_encode_alloc(&env, &again_len);
        assert_non_null(again);
        size_t common = again_len < len ? again_len : len;
        size_t at = 0;
        while (at < common && again[at] == bytes[at]) {
            at++;
        }
        if (again_len != len || at != len) {
            fail_msg("%s: re-encoded %zu bytes, the vector has %zu; first "
                     "difference at byte %zu",
                     file, again_len, len, at);
        }
        free(again);
        sc_wire_arena_free(&arena);
        free(bytes);
    }
}

/* A few vectors checked against values written out here rather than taken
 * from the samples, so that a sample edited together with the vectors
 * cannot hide a change on the wire. */
static void test_spelled_out_values(void **state)
{
    (void)state;
    size_t len = 0;
    sidecar_v1_Envelope env;

    uint8_t *bytes = read_vector("hello_full.bin", &len);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    assert_int_equal(env.seq, 1);
    assert_int_equal(env.which_action, 2);
    const sidecar_v1_Hello *h = &env.action.hello;
    assert_int_equal(h->protocol_version, 1);
    assert_int_equal(h->pid, 4242);
    assert_true(h->has_uid);
    assert_int_equal(h->uid, 33);
    assert_true(view_is(h->language, "php"));
    assert_true(view_is(h->language_version, "8.2.7"));
    assert_true(view_is(h->tracer_version, "1.0.0"));
    assert_true(view_is(h->runtime_id, "2f1c7a4e-0b7d-4c39-9d7e-6a1f3b5c8e90"));
    assert_true(view_is(h->service, "caf\xc3\xa9-api"));
    assert_true(view_is(h->env, "prod"));
    assert_true(view_is(h->version, "2024.06.1"));
    free(bytes);

    /* seq 300, action 4 { 1: 46 bytes of msgpack, 2: 1 } */
    static const uint8_t trace_head[] = {0x08, 0xac, 0x02, 0x22, 0x32,
                                         0x0a, 0x2e, 0x91, 0x91, 0x84};
    bytes = read_vector("trace_payload_full.bin", &len);
    assert_int_equal(len, 3 + 2 + 50);
    assert_memory_equal(bytes, trace_head, sizeof trace_head);
    assert_int_equal(bytes[len - 2], 0x10);
    assert_int_equal(bytes[len - 1], 0x01);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    assert_int_equal(env.action.trace_payload.msgpack.len, 46);
    assert_ptr_equal(env.action.trace_payload.msgpack.ptr, bytes + 7);
    assert_int_equal(env.action.trace_payload.trace_count, 1);
    free(bytes);

    bytes = read_vector("session_config_zero.bin", &len);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    const sidecar_v1_SessionConfig *c = &env.action.session_config;
    assert_true(view_is(c->agent_url, ""));
    assert_true(c->has_flush_interval_ms && c->flush_interval_ms == 0);
    assert_true(c->has_flag_evaluation_counts_enabled);
    assert_false(c->flag_evaluation_counts_enabled);
    free(bytes);

    bytes = read_vector("flag_evaluation_batch_full.bin", &len);
    assert_true(sc_codec_decode(bytes, len, &env, NULL));
    const sidecar_v1_FlagEvaluationBatch *b = &env.action.flag_evaluation_batch;
    assert_int_equal(b->dropped, 5);
    assert_true(view_is(b->version, "9.9.9"));
    sc_list_iter_t it;
    sc_list_iter_init(&it, &b->evaluations);
    sidecar_v1_FlagEvaluation e;
    assert_int_equal(SC_LIST_NEXT(&it, sidecar_v1_FlagEvaluation, &e), 1);
    assert_true(view_is(e.error_message, "provider not ready"));
    assert_int_equal(e.first_evaluation_ms, 1718000000000);
    assert_int_equal(e.last_evaluation_ms, 1718000005123);
    assert_true(e.degraded);
    sc_list_iter_t ctx;
    sc_list_iter_init(&ctx, &e.context);
    sidecar_v1_ContextAttribute a;
    assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a), 1);
    assert_int_equal(SC_LIST_NEXT(&ctx, sidecar_v1_ContextAttribute, &a), 1);
    assert_true(view_is(a.key, "plan.seats"));
    assert_true(a.has_number_value && a.number_value == 12.5);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_matches_samples),
        cmocka_unit_test(test_every_vector_decodes_and_reencodes),
        cmocka_unit_test(test_spelled_out_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
