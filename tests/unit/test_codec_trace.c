/* Drift guard of the trace action's fast path (codec_trace.c, docs/wire.md):
 * the one-pass encoder writes exactly nanopb's bytes, and the direct decoder
 * returns exactly nanopb's envelope for every frame it takes and leaves the
 * others to nanopb, over many frames (sequence numbers, payload sizes around
 * every varint boundary, trace counts) and mutations of them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"

#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

/* A small deterministic generator (xorshift64*), so a failure repeats. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static const uint64_t seqs[] = {0,
                                1,
                                127,
                                128,
                                16383,
                                16384,
                                UINT32_MAX,
                                (uint64_t)1 << 56,
                                ((uint64_t)1 << 63) - 1,
                                (uint64_t)1 << 63,
                                UINT64_MAX};
static const size_t lens[] = {0,     1,     127,     128,     300,
                              16383, 16384, 2097151, 2097152, 4u << 20};
static const uint32_t counts[] = {0, 1, 127, 128, 16384, UINT32_MAX};

static uint8_t *payload; /* the largest payload, random bytes */
#define MAX_LEN ((size_t)4 << 20)

static int setup(void **state)
{
    (void)state;
    payload = malloc(MAX_LEN);
    assert_non_null(payload);
    for (size_t i = 0; i < MAX_LEN; i++) {
        payload[i] = (uint8_t)rnd();
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(payload);
    return 0;
}

static sidecar_v1_Envelope trace_env(uint64_t seq, const uint8_t *p, size_t len,
                                     uint32_t count)
{
    sidecar_v1_Envelope env;
    memset(&env, 0, sizeof env);
    env.seq = seq;
    env.which_action = sidecar_v1_Envelope_trace_payload_tag;
    env.action.trace_payload.msgpack = sc_view_bytes(p, len);
    env.action.trace_payload.trace_count = count;
    return env;
}

/* nanopb's own bytes for `env`, in malloc'ed memory. */
static uint8_t *nanopb_bytes(const sidecar_v1_Envelope *env, size_t *len)
{
    size_t size = 0;
    assert_true(pb_get_encoded_size(&size, sidecar_v1_Envelope_fields, env));
    uint8_t *out = malloc(size > 0 ? size : 1);
    assert_non_null(out);
    pb_ostream_t os = pb_ostream_from_buffer(out, size);
    assert_true(pb_encode(&os, sidecar_v1_Envelope_fields, env));
    assert_int_equal(os.bytes_written, size);
    *len = size;
    return out;
}

/* Both decoders on `msg`: the fast one either declines or agrees with
 * nanopb on every byte of the envelope, and sc_codec_decode() gives what
 * nanopb gives. Returns whether the fast path took it. */
static bool decode_agrees(const uint8_t *msg, size_t len)
{
    sidecar_v1_Envelope fast, ref, any;
    memset(&fast, 0xA5, sizeof fast);
    bool took = sc_codec_decode_trace(msg, len, &fast);
    const char *ref_err = NULL, *any_err = NULL;
    bool ref_ok = sc_codec_decode_nanopb(msg, len, &ref, &ref_err);
    bool any_ok = sc_codec_decode(msg, len, &any, &any_err);
    assert_int_equal(any_ok, ref_ok);
    if (took) {
        assert_true(ref_ok);
        assert_memory_equal(&fast, &ref, sizeof ref);
    } else {
        /* Declining leaves the envelope alone. */
        uint8_t untouched[sizeof fast];
        memset(untouched, 0xA5, sizeof untouched);
        assert_memory_equal(&fast, untouched, sizeof fast);
    }
    if (ref_ok) {
        assert_null(any_err);
        assert_memory_equal(&any, &ref, sizeof ref);
    } else {
        assert_non_null(any_err);
        assert_string_equal(any_err, ref_err);
    }
    return took;
}

/* ---- encoding ---------------------------------------------------------- */

static void check_encoding(uint64_t seq, const uint8_t *p, size_t len,
                           uint32_t count)
{
    sidecar_v1_Envelope env = trace_env(seq, p, len, count);
    size_t ref_len = 0;
    uint8_t *ref = nanopb_bytes(&env, &ref_len);

    size_t size = 0;
    assert_true(sc_codec_trace_size(seq, p, len, count, &size));
    assert_int_equal(size, ref_len);
    assert_true(sc_codec_encoded_size(&env, &size));
    assert_int_equal(size, ref_len);

    uint8_t *mine = malloc(ref_len + 1);
    assert_non_null(mine);
    assert_int_equal(sc_codec_trace_write(mine, seq, p, len, count), ref_len);
    assert_memory_equal(mine, ref, ref_len);
    size_t written = 0;
    assert_true(sc_codec_encode(&env, mine, ref_len, &written));
    assert_int_equal(written, ref_len);
    assert_memory_equal(mine, ref, ref_len);
    /* One byte short is refused, as nanopb refuses it. */
    assert_false(sc_codec_encode(&env, mine, ref_len - 1, &written));

    /* Frames: header + the same bytes, after what the buffer held. */
    sc_buf_t a = {0}, b = {0};
    assert_true(sc_buf_append(&a, "xy", 2));
    assert_true(sc_buf_append(&b, "xy", 2));
    assert_true(sc_codec_append_trace_frame(&a, seq, p, len, count));
    assert_true(sc_codec_append_frame(&b, &env));
    assert_int_equal(a.len, 2 + SC_FRAME_HEADER_SIZE + ref_len);
    assert_int_equal(b.len, a.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(sc_frame_get_len(a.data + 2), ref_len);
    assert_memory_equal(a.data + 2 + SC_FRAME_HEADER_SIZE, ref, ref_len);

    /* And the fast decoder takes every frame the encoder writes, but for
     * sequence numbers of 10 varint bytes (left to nanopb). */
    assert_int_equal(decode_agrees(ref, ref_len), seq < (uint64_t)1 << 63);
    sc_buf_free(&a);
    sc_buf_free(&b);
    free(mine);
    free(ref);
}

static void encoder_matches_nanopb_on_boundaries(void **state)
{
    (void)state;
    size_t frames = 0;
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) {
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                check_encoding(seqs[s], payload, lens[l], counts[c]);
                frames++;
            }
        }
    }
    assert_int_equal(frames, 11 * 10 * 6);
}

static void encoder_matches_nanopb_on_random_frames(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        /* Sequence numbers of every varint size; sizes mostly small, some
         * up to the 4 MiB payload. */
        uint64_t seq = rnd() >> (rnd() % 64);
        size_t len =
            (i % 50 == 0) ? (size_t)(rnd() % MAX_LEN) : (size_t)(rnd() % 20000);
        uint32_t count = (uint32_t)(rnd() >> (32 + rnd() % 32));
        check_encoding(seq, payload, len, count);
    }
}

/* An absent payload (no pointer) is not written; a present empty one is
 * (nanopb writes a present view, even empty); both decode as nanopb
 * decodes them. */
static void absent_and_empty_payload(void **state)
{
    (void)state;
    check_encoding(7, NULL, 0, 3);
    check_encoding(7, NULL, 10, 3); /* no pointer: absent whatever the length */
    check_encoding(7, payload, 0, 3);
    check_encoding(0, NULL, 0, 0); /* the empty action: 22 00 */
    static const uint8_t empty_action[] = {0x22, 0x00};
    sidecar_v1_Envelope env;
    assert_true(sc_codec_decode_trace(empty_action, sizeof empty_action, &env));
    assert_int_equal(env.which_action, sidecar_v1_Envelope_trace_payload_tag);
    assert_null(env.action.trace_payload.msgpack.ptr);
    /* A present empty field on the wire is present and empty. */
    static const uint8_t present_empty[] = {0x22, 0x02, 0x0a, 0x00};
    assert_true(decode_agrees(present_empty, sizeof present_empty));
    assert_true(
        sc_codec_decode_trace(present_empty, sizeof present_empty, &env));
    assert_ptr_equal(env.action.trace_payload.msgpack.ptr, present_empty + 4);
    assert_int_equal(env.action.trace_payload.msgpack.len, 0);
}

/* ---- decoding: what the fast path takes and what it leaves ---------------
 */

typedef struct decode_case {
    const char *what;
    uint8_t bytes[24];
    size_t len;
    bool fast; /* the fast path takes it */
} decode_case_t;

static void decoder_cases(void **state)
{
    (void)state;
    static const decode_case_t cases[] = {
        {"seq, payload, count", {8, 5, 0x22, 5, 0x0a, 1, 0x90, 0x10, 2}, 9, 1},
        {"no seq", {0x22, 5, 0x0a, 1, 0x90, 0x10, 2}, 7, 1},
        {"overlong seq 0x80 0x00", {8, 0x80, 0, 0x22, 0}, 5, 1},
        {"overlong length", {0x22, 0x83, 0, 0x0a, 1, 0x90}, 6, 1},
        {"count in 5 bytes, 2^32-1",
         {0x22, 6, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f},
         8,
         1},
        {"count over 32 bits",
         {0x22, 6, 0x10, 0xff, 0xff, 0xff, 0xff, 0x1f},
         8,
         0},
        {"count in 6 bytes",
         {0x22, 7, 0x10, 0x81, 0x80, 0x80, 0x80, 0x80, 0},
         9,
         0},
        {"seq in 10 bytes",
         {8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0x22, 0},
         13,
         0},
        {"seq after the action", {0x22, 0, 8, 5}, 4, 0},
        {"seq twice", {8, 1, 8, 2, 0x22, 0}, 6, 0},
        {"action twice", {0x22, 0, 0x22, 0}, 4, 0},
        {"count before payload", {0x22, 5, 0x10, 2, 0x0a, 1, 0x90}, 7, 0},
        {"payload twice", {0x22, 6, 0x0a, 1, 0x90, 0x0a, 1, 0x91}, 8, 0},
        {"unknown field in the payload", {0x22, 2, 0x18, 1}, 4, 0},
        {"unknown field after", {0x22, 0, 0x50, 1}, 4, 0},
        {"another action", {0x3a, 0}, 2, 0},
        {"payload with a varint wire type", {0x22, 2, 0x08, 1}, 4, 0},
        {"count with a length wire type", {0x22, 3, 0x12, 1, 0}, 5, 0},
        {"action with a varint wire type", {0x20, 0}, 2, 0},
        {"truncated action", {0x22, 5, 0x0a, 1}, 4, 0},
        {"payload past the action", {0x22, 2, 0x0a, 5, 1, 2, 3}, 7, 0},
        {"truncated seq", {8, 0x80}, 2, 0},
        {"empty envelope", {0}, 0, 0},
        {"seq alone", {8, 1}, 2, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const decode_case_t *c = &cases[i];
        bool took = decode_agrees(c->bytes, c->len);
        if (took != c->fast) {
            fail_msg("%s: the fast path %s it", c->what,
                     took ? "took" : "declined");
        }
    }
}

/* Mutations of encoded frames (flips, cuts, insertions, appended fields):
 * whatever the fast path takes, nanopb decodes to the same envelope. */
static void decoder_matches_nanopb_on_mutations(void **state)
{
    (void)state;
    size_t took = 0, declined = 0;
    uint8_t buf[600];
    for (int i = 0; i < 200000; i++) {
        sidecar_v1_Envelope env =
            trace_env(rnd() >> (rnd() % 64), payload, (size_t)(rnd() % 300),
                      (uint32_t)(rnd() >> (32 + rnd() % 32)));
        size_t len = 0;
        assert_true(sc_codec_encode(&env, buf, sizeof buf - 32, &len));
        int edits = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = (size_t)(rnd() % len);
            switch (rnd() % 5) {
            case 0: /* flip bits */
                buf[at] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1: /* a random byte */
                buf[at] = (uint8_t)rnd();
                break;
            case 2: /* cut */
                len = at;
                break;
            case 3: /* insert a byte */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rnd();
                len++;
                break;
            default: /* append a small field */
                buf[len++] = (uint8_t)rnd();
                buf[len++] = (uint8_t)(rnd() % 4);
                break;
            }
        }
        if (decode_agrees(buf, len)) {
            took++;
        } else {
            declined++;
        }
    }
    /* Both kinds occur, so the comparison above was made for both. */
    assert_true(took > 1000);
    assert_true(declined > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encoder_matches_nanopb_on_boundaries),
        cmocka_unit_test(encoder_matches_nanopb_on_random_frames),
        cmocka_unit_test(absent_and_empty_payload),
        cmocka_unit_test(decoder_cases),
        cmocka_unit_test(decoder_matches_nanopb_on_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
