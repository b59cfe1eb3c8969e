/* Context pruning and the canonical context string (docs/flag-evaluations.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flageval_context.h"

/* Prunes `attrs` and decodes the canonical string back. */
typedef struct pruned {
    sc_flageval_keybuf_t kb;
    sc_flageval_attr_t out[SC_FLAGEVAL_MAX_FIELDS + 1];
    size_t kept;
    size_t skipped;
} pruned_t;

static pruned_t *prune(const sc_flageval_attr_t *attrs, size_t n)
{
    pruned_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    sc_flageval_keybuf_init(&p->kb);
    p->kept = sc_flageval_context_build(attrs, n, &p->kb, &p->skipped);
    assert_false(p->kb.failed);
    sc_flageval_context_iter_t it;
    sc_flageval_context_iter_init(&it, sc_view_bytes(p->kb.data, p->kb.len));
    size_t decoded = 0;
    int rc;
    while ((rc = sc_flageval_context_next(&it, &p->out[decoded])) == 1) {
        assert_true(decoded < SC_FLAGEVAL_MAX_FIELDS);
        decoded++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(decoded, p->kept);
    assert_int_equal(p->kept + p->skipped, n);
    return p;
}

static void pruned_free(pruned_t *p)
{
    sc_flageval_keybuf_free(&p->kb);
    free(p);
}

static bool key_is(const sc_flageval_attr_t *a, const char *key)
{
    return a->key.len == strlen(key) &&
           memcmp(a->key.ptr, key, a->key.len) == 0;
}

static void test_value_length_limit(void **state)
{
    (void)state;
    char at_limit[SC_FLAGEVAL_MAX_VALUE_LEN + 1];
    char over[SC_FLAGEVAL_MAX_VALUE_LEN + 2];
    memset(at_limit, 'a', SC_FLAGEVAL_MAX_VALUE_LEN);
    at_limit[SC_FLAGEVAL_MAX_VALUE_LEN] = '\0';
    memset(over, 'b', SC_FLAGEVAL_MAX_VALUE_LEN + 1);
    over[SC_FLAGEVAL_MAX_VALUE_LEN + 1] = '\0';
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_string("kept", at_limit),
                                  sc_flageval_attr_string("long", over)};
    pruned_t *p = prune(attrs, 2);
    assert_int_equal(p->kept, 1);
    assert_int_equal(p->skipped, 1);
    assert_true(key_is(&p->out[0], "kept"));
    assert_int_equal(p->out[0].string_value.len, 256);
    /* Skipped, not truncated: nothing of the long value is there. */
    for (size_t i = 0; i < p->kb.len; i++) {
        assert_int_not_equal(p->kb.data[i], 'b');
    }
    pruned_free(p);
}

static void test_non_string_values_always_kept(void **state)
{
    (void)state;
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_number("big", 1e300),
                                  sc_flageval_attr_number("neg0", -0.0),
                                  sc_flageval_attr_bool("t", true),
                                  sc_flageval_attr_bool("f", false)};
    pruned_t *p = prune(attrs, 4);
    assert_int_equal(p->kept, 4);
    /* Sorted by key bytes: big, f, neg0, t. */
    assert_true(key_is(&p->out[0], "big"));
    assert_true(p->out[0].number_value == 1e300);
    assert_true(key_is(&p->out[1], "f"));
    assert_false(p->out[1].bool_value);
    assert_true(key_is(&p->out[2], "neg0"));
    assert_true(signbit(p->out[2].number_value));
    assert_true(key_is(&p->out[3], "t"));
    assert_true(p->out[3].bool_value);
    pruned_free(p);
}

static void test_invalid_attributes_skipped(void **state)
{
    (void)state;
    char long_key[SC_FLAGEVAL_MAX_KEY_LEN + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    sc_flageval_attr_t attrs[] = {
        sc_flageval_attr_string(NULL, "no key"),
        sc_flageval_attr_string(long_key, "v"),
        sc_flageval_attr_string("\xff\xfe", "not UTF-8 key"),
        sc_flageval_attr_string("nullvalue", NULL),
        sc_flageval_attr_number("nan", (double)NAN),
        sc_flageval_attr_number("inf", (double)INFINITY),
        sc_flageval_attr_number("-inf", -(double)INFINITY),
        {.key = sc_view_str("badtype"), .type = (sc_flageval_attr_type_t)'x'},
        sc_flageval_attr_string("", "empty key is a key"),
        sc_flageval_attr_string("bin", "\xff binary value is kept"),
    };
    size_t n = sizeof attrs / sizeof attrs[0];
    pruned_t *p = prune(attrs, n);
    assert_int_equal(p->kept, 2);
    assert_int_equal(p->skipped, n - 2);
    assert_true(key_is(&p->out[0], ""));
    assert_true(key_is(&p->out[1], "bin"));
    pruned_free(p);
}

static void test_field_limit_keeps_first_keys(void **state)
{
    (void)state;
    enum { N = 300 };
    static char keys[N][8];
    sc_flageval_attr_t attrs[N];
    /* Given in descending order; the first 256 in key order are kept. */
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", N - 1 - i);
        attrs[i] = sc_flageval_attr_number(keys[i], N - 1 - i);
    }
    pruned_t *p = prune(attrs, N);
    assert_int_equal(p->kept, SC_FLAGEVAL_MAX_FIELDS);
    assert_int_equal(p->skipped, N - SC_FLAGEVAL_MAX_FIELDS);
    for (int i = 0; i < SC_FLAGEVAL_MAX_FIELDS; i++) {
        char want[8];
        snprintf(want, sizeof want, "k%03d", i);
        assert_true(key_is(&p->out[i], want));
        assert_true(p->out[i].number_value == i);
    }
    pruned_free(p);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    sc_flageval_attr_t attrs[] = {
        sc_flageval_attr_string("plan", "free"),
        sc_flageval_attr_number("plan", 2),
        sc_flageval_attr_string("plan", "pro"),
        sc_flageval_attr_string("gone", "short"),
        sc_flageval_attr_number("gone",
                                (double)NAN), /* last is invalid: no key */
    };
    pruned_t *p = prune(attrs, 5);
    assert_int_equal(p->kept, 1);
    assert_true(key_is(&p->out[0], "plan"));
    assert_int_equal(p->out[0].type, SC_FLAGEVAL_ATTR_STRING);
    assert_memory_equal(p->out[0].string_value.ptr, "pro", 3);
    pruned_free(p);

    /* The same input in another order gives the result of its own last. */
    sc_flageval_attr_t swapped[] = {attrs[2], attrs[0]};
    p = prune(swapped, 2);
    assert_memory_equal(p->out[0].string_value.ptr, "free", 4);
    pruned_free(p);
}

static void test_canonical_distinguishes_types_and_splits(void **state)
{
    (void)state;
    /* Candidates that a naive "key=value;" join would confuse. */
    sc_flageval_attr_t sets[][2] = {
        {sc_flageval_attr_string("a", "1"), {.type = 0}},
        {sc_flageval_attr_number("a", 1), {.type = 0}},
        {sc_flageval_attr_bool("a", true), {.type = 0}},
        {sc_flageval_attr_string("a", "b;c=d"), {.type = 0}},
        {sc_flageval_attr_string("a", "b"), sc_flageval_attr_string("c", "d")},
        {sc_flageval_attr_string("ab", ""), {.type = 0}},
        {sc_flageval_attr_string("a", "b"), {.type = 0}},
    };
    size_t counts[] = {1, 1, 1, 1, 2, 1, 1};
    size_t n = sizeof counts / sizeof counts[0];
    pruned_t *p[sizeof counts / sizeof counts[0]];
    for (size_t i = 0; i < n; i++) {
        p[i] = prune(sets[i], counts[i]);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = i + 1; k < n; k++) {
            bool same = p[i]->kb.len == p[k]->kb.len &&
                        memcmp(p[i]->kb.data, p[k]->kb.data, p[i]->kb.len) == 0;
            assert_false(same);
        }
    }
    for (size_t i = 0; i < n; i++) {
        pruned_free(p[i]);
    }
}

static void test_canonical_layout(void **state)
{
    (void)state;
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_bool("b", true),
                                  sc_flageval_attr_string("a", "xy")};
    pruned_t *p = prune(attrs, 2);
    static const uint8_t want[] = {'s', 1,   0,   0, 0, 'a', 2, 0,   0, 0,
                                   'x', 'y', 'b', 1, 0, 0,   0, 'b', 1};
    assert_int_equal(p->kb.len, sizeof want);
    assert_memory_equal(p->kb.data, want, sizeof want);
    pruned_free(p);

    sc_flageval_attr_t one = sc_flageval_attr_number("n", 1.0);
    p = prune(&one, 1);
    static const uint8_t number[] = {'n', 1, 0, 0, 0, 'n',  0,
                                     0,   0, 0, 0, 0, 0xF0, 0x3F};
    assert_int_equal(p->kb.len, sizeof number);
    assert_memory_equal(p->kb.data, number, sizeof number);
    pruned_free(p);
}

static void test_large_context_outgrows_inline_buffer(void **state)
{
    (void)state;
    enum { N = 256 };
    static char keys[N][SC_FLAGEVAL_MAX_KEY_LEN + 1];
    static char value[SC_FLAGEVAL_MAX_VALUE_LEN + 1];
    sc_flageval_attr_t attrs[N];
    memset(value, 'v', SC_FLAGEVAL_MAX_VALUE_LEN);
    for (int i = 0; i < N; i++) {
        memset(keys[i], 'k', SC_FLAGEVAL_MAX_KEY_LEN);
        snprintf(keys[i], 8, "%05d", i);
        keys[i][5] = 'k';
        attrs[i] = sc_flageval_attr_string(keys[i], value);
    }
    pruned_t *p = prune(attrs, N);
    assert_int_equal(p->kept, N);
    /* The largest canonical string: 256 * (1 + 4 + 256 + 4 + 256). */
    assert_int_equal(p->kb.len, (size_t)N * 521);
    assert_ptr_not_equal(p->kb.data, p->kb.inline_bytes);
    pruned_free(p);
}

static void test_malformed_canonical_rejected(void **state)
{
    (void)state;
    static const uint8_t bad[][8] = {
        {'s', 5, 0, 0, 0, 'a'},    /* key longer than the bytes */
        {'q', 1, 0, 0, 0, 'a', 1}, /* unknown tag */
        {'n', 1, 0, 0, 0, 'a', 0}, /* number cut short */
        {'b', 1, 0, 0, 0, 'a'},    /* bool without a value */
    };
    size_t lens[] = {6, 7, 7, 6};
    for (size_t i = 0; i < 4; i++) {
        sc_flageval_context_iter_t it;
        sc_flageval_attr_t a;
        sc_flageval_context_iter_init(&it, sc_view_bytes(bad[i], lens[i]));
        assert_int_equal(sc_flageval_context_next(&it, &a), -1);
    }
    sc_flageval_context_iter_t it;
    sc_flageval_attr_t a;
    sc_flageval_context_iter_init(&it, sc_view_bytes(NULL, 0));
    assert_int_equal(sc_flageval_context_next(&it, &a), 0);
}

/* sc_flageval_context_append (the per-thread memo) against a fresh build:
 * the same array edited in place between calls (what a caller reusing its
 * buffers does) must never get the previous context's string. */
static void check_append(const sc_flageval_attr_t *attrs, size_t n)
{
    sc_flageval_keybuf_t want, got;
    sc_flageval_keybuf_init(&want);
    sc_flageval_keybuf_init(&got);
    size_t want_skipped = 99, got_skipped = 77;
    size_t want_kept =
        sc_flageval_context_build(attrs, n, &want, &want_skipped);
    sc_flageval_keybuf_append(&got, "prefix", 6);
    uint64_t generation = 0;
    size_t got_kept =
        sc_flageval_context_append(attrs, n, &got, &got_skipped, &generation);
    /* The same generation again means the same string. */
    static uint64_t last_generation;
    static uint8_t last[4096];
    static size_t last_len;
    if (generation != 0 && generation == last_generation) {
        assert_int_equal(want.len, last_len);
        assert_memory_equal(want.data, last, last_len);
    }
    last_generation = generation;
    last_len = want.len < sizeof last ? want.len : 0;
    memcpy(last, want.data, last_len);
    assert_int_equal(got_kept, want_kept);
    assert_int_equal(got_skipped, want_skipped);
    assert_int_equal(got.len, 6 + want.len);
    assert_memory_equal(got.data + 6, want.data, want.len);
    sc_flageval_keybuf_free(&want);
    sc_flageval_keybuf_free(&got);
}

static void test_memo_follows_edits(void **state)
{
    (void)state;
    char country[4] = "FR", key[8] = "country";
    sc_flageval_attr_t a[4] = {
        {.key = sc_view_str(key),
         .type = SC_FLAGEVAL_ATTR_STRING,
         .string_value = sc_view_str(country)},
        sc_flageval_attr_number("age", 42),
        sc_flageval_attr_bool("beta", true),
        sc_flageval_attr_string("plan", "pro"),
    };
    check_append(a, 4);
    check_append(a, 4); /* from the memo */
    country[1] = 'I';   /* same pointer, other bytes */
    check_append(a, 4);
    key[0] = 'C';
    check_append(a, 4);
    a[1].number_value = -0.0;
    check_append(a, 4);
    a[1].number_value = 0.0;
    check_append(a, 4);
    a[2].bool_value = false;
    check_append(a, 4);
    a[3].type = SC_FLAGEVAL_ATTR_NUMBER; /* same key and bytes, other type */
    check_append(a, 4);
    a[3].type = SC_FLAGEVAL_ATTR_STRING;
    a[3].string_value = sc_view_bytes(NULL, 0); /* absent: skipped */
    check_append(a, 4);
    a[3].string_value = sc_view_bytes("", 0); /* present and empty */
    check_append(a, 4);
    a[0].key = sc_view_bytes(NULL, 0);
    check_append(a, 4);
    check_append(a, 3); /* fewer */
    check_append(a, 0);
    check_append(a, 4);
    /* Larger than the memo keeps (many attributes, long values): built
     * every time, still right. */
    static char big[40][300];
    sc_flageval_attr_t many[40];
    for (int i = 0; i < 40; i++) {
        snprintf(big[i], sizeof big[i], "k%02d", i);
        memset(big[i] + 4, 'v', 250);
        many[i] = (sc_flageval_attr_t){.key = sc_view_bytes(big[i], 3),
                                       .type = SC_FLAGEVAL_ATTR_STRING,
                                       .string_value =
                                           sc_view_bytes(big[i] + 4, 250)};
    }
    check_append(many, 40);
    check_append(many, 40);
    check_append(many, 5);
    check_append(many, 5);
    big[2][10] = 'w';
    check_append(many, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_length_limit),
        cmocka_unit_test(test_non_string_values_always_kept),
        cmocka_unit_test(test_invalid_attributes_skipped),
        cmocka_unit_test(test_field_limit_keeps_first_keys),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_canonical_distinguishes_types_and_splits),
        cmocka_unit_test(test_canonical_layout),
        cmocka_unit_test(test_large_context_outgrows_inline_buffer),
        cmocka_unit_test(test_malformed_canonical_rejected),
        cmocka_unit_test(test_memo_follows_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
