/* msgpack v0.4 payload validation and merging (src/common/msgpack.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "msgpack.h"

/* One span map with `extra` as the value of its "meta" key. */
static void put_span(sc_buf_t *b, uint64_t id, const uint8_t *extra,
                     size_t extra_len)
{
    assert_true(sc_msgpack_put_map(b, 3));
    assert_true(sc_msgpack_put_str(b, "trace_id", 8));
    assert_true(sc_msgpack_put_uint(b, id));
    assert_true(sc_msgpack_put_str(b, "name", 4));
    assert_true(sc_msgpack_put_str(b, "web.request", 11));
    assert_true(sc_msgpack_put_str(b, "meta", 4));
    if (extra != NULL) {
        assert_true(sc_buf_append(b, extra, extra_len));
    } else {
        assert_true(sc_msgpack_put_map(b, 0));
    }
}

/* A payload of `traces` traces of `spans` spans each. */
static sc_buf_t make_payload(uint32_t traces, uint32_t spans, uint64_t id)
{
    sc_buf_t b = {0};
    assert_true(sc_msgpack_put_array(&b, traces));
    for (uint32_t t = 0; t < traces; t++) {
        assert_true(sc_msgpack_put_array(&b, spans));
        for (uint32_t s = 0; s < spans; s++) {
            put_span(&b, id + t, NULL, 0);
        }
    }
    return b;
}

static sc_msgpack_status_t check(const void *p, size_t len)
{
    return sc_msgpack_check_traces(p, len, NULL);
}

static void test_valid_payloads(void **state)
{
    (void)state;
    sc_msgpack_traces_t info;
    static const uint8_t empty[] = {0x90};
    assert_int_equal(sc_msgpack_check_traces(empty, 1, &info), SC_MSGPACK_OK);
    assert_int_equal(info.trace_count, 0);
    assert_int_equal(info.elements_offset, 1);

    sc_buf_t one = make_payload(1, 2, 7);
    assert_int_equal(sc_msgpack_check_traces(one.data, one.len, &info),
                     SC_MSGPACK_OK);
    assert_int_equal(info.trace_count, 1);
    assert_int_equal(info.elements_offset, 1);
    sc_buf_free(&one);

    sc_buf_t many = make_payload(300, 1, 1); /* array16 header */
    assert_int_equal(sc_msgpack_check_traces(many.data, many.len, &info),
                     SC_MSGPACK_OK);
    assert_int_equal(info.trace_count, 300);
    assert_int_equal(info.elements_offset, 3);
    sc_buf_free(&many);

    /* A non-minimal header (array32 for 1 element) is still one array. */
    sc_buf_t wide = make_payload(1, 1, 1);
    uint8_t head[] = {0xdd, 0, 0, 0, 1};
    sc_buf_t b = {0};
    assert_true(sc_buf_append(&b, head, sizeof head));
    assert_true(sc_buf_append(&b, wide.data + 1, wide.len - 1));
    assert_int_equal(sc_msgpack_check_traces(b.data, b.len, &info),
                     SC_MSGPACK_OK);
    assert_int_equal(info.elements_offset, 5);
    sc_buf_free(&wide);
    sc_buf_free(&b);
}

/* Every msgpack type appears as a span value and is skipped correctly. */
static void test_every_type(void **state)
{
    (void)state;
    uint8_t meta[512];
    size_t n = 0;
    static const uint8_t items[] = {
        0xc0,                                             /* nil */
        0xc2, 0xc3,                                       /* false, true */
        0x05, 0xff,                                       /* fixints */
        0xcc, 1,    0xcd, 1,    2,   0xce, 1,    2, 3, 4, /* uint8/16/32 */
        0xcf, 1,    2,    3,    4,   5,    6,    7, 8,    /* uint64 */
        0xd0, 1,    0xd1, 1,    2,   0xd2, 1,    2, 3, 4, /* int8/16/32 */
        0xd3, 1,    2,    3,    4,   5,    6,    7, 8,    /* int64 */
        0xca, 1,    2,    3,    4,                        /* float32 */
        0xcb, 1,    2,    3,    4,   5,    6,    7, 8,    /* float64 */
        0xa3, 'a',  'b',  'c',                            /* fixstr */
        0xd9, 2,    'h',  'i',                            /* str8 */
        0xda, 0,    1,    'x',                            /* str16 */
        0xdb, 0,    0,    0,    1,   'y',                 /* str32 */
        0xc4, 2,    0,    1,                              /* bin8 */
        0xc5, 0,    1,    9,                              /* bin16 */
        0xc6, 0,    0,    0,    1,   9,                   /* bin32 */
        0xd4, 1,    2,                                    /* fixext1 */
        0xd5, 1,    2,    3,                              /* fixext2 */
        0xd6, 1,    1,    2,    3,   4,                   /* fixext4 */
        0xd7, 1,    1,    2,    3,   4,    5,    6, 7, 8, /* fixext8 */
        0xd8, 1,    1,    2,    3,   4,    5,    6, 7, 8, 9, 10,
        11,   12,   13,   14,   15,  16,   0xc7, 2, 1, 8, 9, /* ext8 */
        0xc8, 0,    1,    1,    8,                           /* ext16 */
        0xc9, 0,    0,    0,    1,   1,    8,                /* ext32 */
        0xdc, 0,    2,    1,    2,                           /* array16 */
        0xdd, 0,    0,    0,    1,   0x90,                   /* array32 of [] */
        0xde, 0,    1,    0xa1, 'k', 0x80,    /* map16 {"k": {}} */
        0xdf, 0,    0,    0,    1,   1,    2, /* map32 {1: 2} */
    };
    /* Measure the items above one by one (a walker that mis-sizes a type
     * changes the count), then validate them all inside one array. */
    size_t count = 0;
    for (size_t pos = 0; pos < sizeof items; count++) {
        sc_buf_t one = {0};
        /* The shortest prefix that validates as the value of a span key
         * is the item. */
        size_t len = 1;
        for (;; len++) {
            assert_true(pos + len <= sizeof items);
            sc_buf_reset(&one);
            uint8_t head[] = {0x91, 0x91, 0x81, 0xa1, 'v'};
            assert_true(sc_buf_append(&one, head, sizeof head));
            assert_true(sc_buf_append(&one, items + pos, len));
            if (check(one.data, one.len) == SC_MSGPACK_OK) {
                break;
            }
        }
        sc_buf_free(&one);
        pos += len;
    }
    assert_int_equal(count, 34);
    meta[n++] = 0xdc;
    meta[n++] = 0;
    meta[n++] = (uint8_t)count;
    memcpy(meta + n, items, sizeof items);
    n += sizeof items;
    sc_buf_t b = {0};
    assert_true(sc_msgpack_put_array(&b, 1));
    assert_true(sc_msgpack_put_array(&b, 1));
    put_span(&b, 1, meta, n);
    assert_int_equal(check(b.data, b.len), SC_MSGPACK_OK);
    sc_buf_free(&b);
}

static void test_every_truncation_fails(void **state)
{
    (void)state;
    sc_buf_t b = make_payload(3, 2, 100);
    assert_int_equal(check(b.data, b.len), SC_MSGPACK_OK);
    for (size_t len = 0; len < b.len; len++) {
        sc_msgpack_status_t st = check(b.data, len);
        assert_true(st == SC_MSGPACK_TRUNCATED || st == SC_MSGPACK_EMPTY);
    }
    sc_buf_free(&b);
}

static void test_shape_errors(void **state)
{
    (void)state;
    static const uint8_t map_top[] = {0x80};
    static const uint8_t str_top[] = {0xa1, 'x'};
    static const uint8_t int_trace[] = {0x91, 0x01};
    static const uint8_t map_trace[] = {0x91, 0x80};
    static const uint8_t int_span[] = {0x91, 0x91, 0x01};
    static const uint8_t array_span[] = {0x91, 0x91, 0x90};
    static const uint8_t invalid[] = {0x91, 0x91, 0x81, 0xa1, 'k', 0xc1};
    static const uint8_t trailing[] = {0x90, 0x90};
    static const uint8_t two_arrays[] = {0x91, 0x90, 0x91, 0x90};
    assert_int_equal(check(map_top, sizeof map_top), SC_MSGPACK_NOT_ARRAY);
    assert_int_equal(check(str_top, sizeof str_top), SC_MSGPACK_NOT_ARRAY);
    assert_int_equal(check(int_trace, sizeof int_trace), SC_MSGPACK_BAD_TRACE);
    assert_int_equal(check(map_trace, sizeof map_trace), SC_MSGPACK_BAD_TRACE);
    assert_int_equal(check(int_span, sizeof int_span), SC_MSGPACK_BAD_SPAN);
    assert_int_equal(check(array_span, sizeof array_span), SC_MSGPACK_BAD_SPAN);
    assert_int_equal(check(invalid, sizeof invalid), SC_MSGPACK_INVALID_BYTE);
    assert_int_equal(check(trailing, sizeof trailing), SC_MSGPACK_TRAILING);
    assert_int_equal(check(two_arrays, sizeof two_arrays), SC_MSGPACK_TRAILING);
    assert_int_equal(check(NULL, 0), SC_MSGPACK_EMPTY);
    for (int s = SC_MSGPACK_OK; s <= SC_MSGPACK_TOO_DEEP; s++) {
        assert_string_not_equal(sc_msgpack_status_str((sc_msgpack_status_t)s),
                                "unknown");
    }
}

/* payload -> trace -> span -> "k" -> `depth` nested arrays. */
static sc_buf_t nested(size_t depth)
{
    sc_buf_t b = {0};
    static const uint8_t head[] = {0x91, 0x91, 0x81, 0xa1, 'k'};
    assert_true(sc_buf_append(&b, head, sizeof head));
    assert_true(sc_buf_reserve(&b, depth + 1));
    memset(b.data + b.len, 0x91, depth);
    b.len += depth;
    b.data[b.len - 1] = 0x90; /* the innermost one is empty */
    return b;
}

static void test_depth_bomb(void **state)
{
    (void)state;
    /* The span map is 3 deep; its value may nest up to the limit. */
    sc_buf_t ok = nested(SC_MSGPACK_MAX_DEPTH - 2);
    assert_int_equal(check(ok.data, ok.len), SC_MSGPACK_OK);
    sc_buf_free(&ok);
    sc_buf_t deep = nested(SC_MSGPACK_MAX_DEPTH);
    assert_int_equal(check(deep.data, deep.len), SC_MSGPACK_TOO_DEEP);
    sc_buf_free(&deep);
    sc_buf_t bomb = nested(4u << 20); /* 4 MiB of 0x91: no recursion */
    assert_int_equal(check(bomb.data, bomb.len), SC_MSGPACK_TOO_DEEP);
    sc_buf_free(&bomb);
}

static void test_huge_declared_lengths(void **state)
{
    (void)state;
    /* Each declares far more than the bytes present; the check must fail
     * from the header alone (the walker has nothing to allocate). */
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x90};
    static const uint8_t trace32[] = {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0x91, 0x91, 0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t str32[] = {0x91, 0x91, 0x81, 0xdb, 0xff,
                                    0xff, 0xff, 0xff, 'a'};
    static const uint8_t bin32[] = {0x91, 0x91, 0x81, 0xa1, 'k',
                                    0xc6, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t ext32[] = {0x91, 0x91, 0x81, 0xa1, 'k', 0xc9,
                                    0xff, 0xff, 0xff, 0xff, 1};
    static const uint8_t map16_half[] = {0x91, 0x91, 0xde, 0x00, 0x02, 1, 2, 3};
    const struct {
        const uint8_t *p;
        size_t len;
    } cases[] = {
        {array32, sizeof array32},       {trace32, sizeof trace32},
        {map32, sizeof map32},           {str32, sizeof str32},
        {bin32, sizeof bin32},           {ext32, sizeof ext32},
        {map16_half, sizeof map16_half},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(check(cases[i].p, cases[i].len), SC_MSGPACK_TRUNCATED);
    }
}

/* Random byte flips, insertions and cuts of a valid payload must never
 * crash or read out of bounds (run under ASan), and whatever validates must
 * also validate again with the same answer. */
static void test_mutations(void **state)
{
    (void)state;
    sc_buf_t base = make_payload(4, 3, 1000);
    uint32_t rng = 12345;
    uint8_t *copy = malloc(base.len + 8);
    assert_non_null(copy);
    size_t accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        memcpy(copy, base.data, base.len);
        size_t len = base.len;
        int edits = 1 + (int)(rng % 3);
        for (int e = 0; e < edits; e++) {
            rng = rng * 1103515245u + 12345u;
            size_t at = (rng >> 8) % len;
            copy[at] = (uint8_t)(rng >> 16);
        }
        rng = rng * 1103515245u + 12345u;
        if (rng % 4 == 0) {
            len = (rng >> 8) % (len + 1);
        }
        sc_msgpack_traces_t info = {0, 0};
        sc_msgpack_status_t st = sc_msgpack_check_traces(copy, len, &info);
        if (st == SC_MSGPACK_OK) {
            accepted++;
            assert_true(info.elements_offset <= len);
        }
        assert_int_equal(sc_msgpack_check_traces(copy, len, NULL), st);
    }
    assert_true(accepted > 0); /* flips inside string bytes stay valid */
    free(copy);
    sc_buf_free(&base);
}

static void test_array_headers(void **state)
{
    (void)state;
    uint8_t h[5];
    assert_int_equal(sc_msgpack_write_array_header(h, 0), 1);
    assert_int_equal(h[0], 0x90);
    assert_int_equal(sc_msgpack_write_array_header(h, 15), 1);
    assert_int_equal(h[0], 0x9f);
    assert_int_equal(sc_msgpack_write_array_header(h, 16), 3);
    assert_memory_equal(h, ((uint8_t[]){0xdc, 0x00, 0x10}), 3);
    assert_int_equal(sc_msgpack_write_array_header(h, 65535), 3);
    assert_memory_equal(h, ((uint8_t[]){0xdc, 0xff, 0xff}), 3);
    assert_int_equal(sc_msgpack_write_array_header(h, 65536), 5);
    assert_memory_equal(h, ((uint8_t[]){0xdd, 0, 1, 0, 0}), 5);
    assert_int_equal(sc_msgpack_write_array_header(h, UINT32_MAX), 5);
    assert_memory_equal(h, ((uint8_t[]){0xdd, 0xff, 0xff, 0xff, 0xff}), 5);
}

/* Merges payloads of the given sizes; checks the body is exactly the new
 * header followed by every payload's elements, in order. */
static void merge_and_compare(const uint32_t *counts, size_t n,
                              size_t expect_header)
{
    sc_msgpack_merge_t m = {0};
    sc_buf_t expected_elements = {0};
    uint32_t total = 0;
    for (size_t i = 0; i < n; i++) {
        sc_buf_t p = make_payload(counts[i], 1, total);
        sc_msgpack_traces_t info;
        assert_int_equal(sc_msgpack_check_traces(p.data, p.len, &info),
                         SC_MSGPACK_OK);
        assert_true(sc_msgpack_merge_add(&m, p.data, p.len, &info));
        assert_true(sc_buf_append(&expected_elements,
                                  p.data + info.elements_offset,
                                  p.len - info.elements_offset));
        total += counts[i];
        sc_buf_free(&p);
    }
    size_t predicted = sc_msgpack_merge_body_size(&m);
    size_t len;
    const uint8_t *body = sc_msgpack_merge_finish(&m, &len);
    assert_int_equal(len, predicted);
    assert_int_equal(len, expect_header + expected_elements.len);
    uint8_t head[5];
    assert_int_equal(sc_msgpack_write_array_header(head, total), expect_header);
    assert_memory_equal(body, head, expect_header);
    if (expected_elements.len > 0) {
        assert_memory_equal(body + expect_header, expected_elements.data,
                            expected_elements.len);
    }
    sc_msgpack_traces_t info;
    assert_int_equal(sc_msgpack_check_traces(body, len, &info), SC_MSGPACK_OK);
    assert_int_equal(info.trace_count, total);
    sc_msgpack_merge_free(&m);
    sc_buf_free(&expected_elements);
}

static void test_merge(void **state)
{
    (void)state;
    merge_and_compare(NULL, 0, 1); /* nothing: an empty array */
    const uint32_t fix[] = {1, 2, 0, 3};
    merge_and_compare(fix, 4, 1);
    const uint32_t to16[] = {15, 1}; /* 16 elements: array16 */
    merge_and_compare(to16, 2, 3);
    const uint32_t to32[] = {40000, 30000}; /* past 65535: array32 */
    merge_and_compare(to32, 2, 5);
}

static void test_merge_refuses_count_overflow(void **state)
{
    (void)state;
    sc_msgpack_merge_t m = {0};
    sc_buf_t p = make_payload(2, 1, 0);
    sc_msgpack_traces_t info;
    assert_int_equal(sc_msgpack_check_traces(p.data, p.len, &info),
                     SC_MSGPACK_OK);
    m.count = UINT32_MAX - 1;
    assert_false(sc_msgpack_merge_add(&m, p.data, p.len, &info));
    assert_int_equal(m.count, UINT32_MAX - 1);
    assert_int_equal(m.buf.len, 0);
    sc_buf_free(&p);
    sc_msgpack_merge_free(&m);
}

static void test_writer(void **state)
{
    (void)state;
    sc_buf_t b = {0};
    assert_true(sc_msgpack_put_uint(&b, 0x7f));
    assert_true(sc_msgpack_put_uint(&b, 0x80));
    assert_true(sc_msgpack_put_uint(&b, 0x1234));
    assert_true(sc_msgpack_put_uint(&b, 0x12345678));
    assert_true(sc_msgpack_put_uint(&b, 0x123456789aULL));
    static const uint8_t want[] = {0x7f, 0xcc, 0x80, 0xcd, 0x12, 0x34, 0xce,
                                   0x12, 0x34, 0x56, 0x78, 0xcf, 0,    0,
                                   0,    0x12, 0x34, 0x56, 0x78, 0x9a};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    sc_buf_reset(&b);
    char s40[40];
    memset(s40, 'x', sizeof s40);
    assert_true(sc_msgpack_put_str(&b, s40, 31));
    assert_int_equal(b.data[0], 0xbf);
    sc_buf_reset(&b);
    assert_true(sc_msgpack_put_str(&b, s40, 40));
    assert_memory_equal(b.data, ((uint8_t[]){0xd9, 40}), 2);
    sc_buf_reset(&b);
    assert_true(sc_msgpack_put_map(&b, 70000));
    assert_memory_equal(b.data, ((uint8_t[]){0xdf, 0, 1, 0x11, 0x70}), 5);
    sc_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_payloads),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_depth_bomb),
        cmocka_unit_test(test_huge_declared_lengths),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_array_headers),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_refuses_count_overflow),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
