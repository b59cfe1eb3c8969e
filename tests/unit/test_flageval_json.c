/* The JSON writer and the EVP flagevaluation bodies (docs/flag-evaluations.md).
 * Bodies are also checked by an independent parser: Debian's python3 (json.tool
 * and a strict schema script), when SIDECAR_PYTHON is defined. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flageval_json.h"
#include "json.h"
#include "test_flageval_common.h"

/* ---- writer ----------------------------------------------------------- */

static void assert_buf_is(const sc_buf_t *b, const char *want)
{
    size_t n = strlen(want);
    if (b->len != n || memcmp(b->data, want, n) != 0) {
        fail_msg("got   %.*s\nwant  %s", (int)b->len, (const char *)b->data,
                 want);
    }
}

static void string_is(const void *in, size_t len, const char *want)
{
    sc_buf_t b = {0};
    sc_json_t j;
    sc_json_init(&j, &b);
    sc_json_string(&j, in, len);
    assert_true(sc_json_ok(&j));
    assert_buf_is(&b, want);
    sc_buf_free(&b);
}

#define STRING_IS(lit, want) string_is(lit, sizeof(lit) - 1, want)
#define FFFD                 "\xEF\xBF\xBD"

static void test_string_escaping(void **state)
{
    (void)state;
    STRING_IS("plain", "\"plain\"");
    STRING_IS("", "\"\"");
    STRING_IS("a\"b\\c", "\"a\\\"b\\\\c\"");
    STRING_IS("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    STRING_IS("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    STRING_IS("nul\0byte", "\"nul\\u0000byte\"");
    STRING_IS("/</script>", "\"/</script>\"");
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    STRING_IS("caf\xC3\xA9", "\"caf\xC3\xA9\""); /* kept */
    STRING_IS("\xE2\x82\xAC\xF0\x9F\x98\x80",
              "\"\xE2\x82\xAC\xF0\x9F\x98\x80\"");
    STRING_IS("\xff", "\"" FFFD "\"");
    STRING_IS("a\xC3", "\"a" FFFD "\"");                 /* cut */
    STRING_IS("\xC0\x80", "\"" FFFD FFFD "\"");          /* overlong */
    STRING_IS("\xE0\x80\x80", "\"" FFFD FFFD FFFD "\""); /* overlong */
    STRING_IS("\xED\xA0\x80", "\"" FFFD FFFD FFFD "\""); /* surrogate */
    STRING_IS("\xF4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* > max */
    STRING_IS("\x80x", "\"" FFFD "x\""); /* lone continuation */
    STRING_IS("\xF4\x8F\xBF\xBF", "\"\xF4\x8F\xBF\xBF\""); /* U+10FFFF ok */
    assert_true(sc_utf8_valid("caf\xC3\xA9", 5));
    assert_false(sc_utf8_valid("\xC3", 1));
}

static void test_structure_and_commas(void **state)
{
    (void)state;
    sc_buf_t b = {0};
    sc_json_t j;
    sc_json_init(&j, &b);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "a");
    sc_json_array_begin(&j);
    sc_json_int64(&j, 1);
    sc_json_int64(&j, INT64_MIN);
    sc_json_uint64(&j, UINT64_MAX);
    sc_json_bool(&j, true);
    sc_json_bool(&j, false);
    sc_json_null(&j);
    sc_json_string(&j, "x", 1);
    sc_json_object_begin(&j);
    sc_json_key_str(&j, "b");
    sc_json_object_begin(&j);
    sc_json_object_end(&j);
    sc_json_object_end(&j);
    sc_json_raw(&j, "[0]", 3);
    sc_json_array_end(&j);
    sc_json_key(&j, "k\"", 2);
    sc_json_array_begin(&j);
    sc_json_array_end(&j);
    sc_json_object_end(&j);
    assert_true(sc_json_ok(&j));
    assert_buf_is(&b, "{\"a\":[1,-9223372036854775808,18446744073709551615,"
                      "true,false,null,\"x\",{\"b\":{}},[0]],\"k\\\"\":[]}");
    sc_buf_free(&b);
}

static void test_depth_and_misuse_fail(void **state)
{
    (void)state;
    sc_buf_t b = {0};
    sc_json_t j;
    sc_json_init(&j, &b);
    for (int i = 0; i < SC_JSON_MAX_DEPTH; i++) {
        sc_json_array_begin(&j);
    }
    assert_true(sc_json_ok(&j));
    sc_json_array_begin(&j);
    assert_false(sc_json_ok(&j));
    size_t len = b.len;
    sc_json_int64(&j, 1); /* sticky: nothing more is written */
    assert_int_equal(b.len, len);
    sc_json_init(&j, &b);
    sc_json_array_end(&j);
    assert_false(sc_json_ok(&j));
    sc_buf_free(&b);
}

static void double_is(double v, const char *want)
{
    char out[SC_JSON_DOUBLE_MAX];
    sc_json_format_double(v, out);
    assert_string_equal(out, want);
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    } else {
        return false;
    }
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) {
            return false;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') {
            s++;
        }
        if (!(*s >= '0' && *s <= '9')) {
            return false;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    return *s == '\0';
}

static void test_doubles(void **state)
{
    (void)state;
    double_is(0.1, "0.1");
    double_is(1.0, "1");
    double_is(-0.0, "-0");
    double_is(1.5, "1.5");
    double_is(1e300, "1e+300");
    double_is(123456789012345678.0, "1.2345678901234568e+17");
    double_is(0.30000000000000004, "0.30000000000000004");
    char out[SC_JSON_DOUBLE_MAX];
    assert_int_equal(sc_json_format_double((double)NAN, out), 0);
    assert_int_equal(sc_json_format_double((double)INFINITY, out), 0);
    assert_int_equal(sc_json_format_double(-(double)INFINITY, out), 0);
    /* Round trip and grammar over many bit patterns. */
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d)) {
            continue;
        }
        size_t n = sc_json_format_double(d, out);
        assert_true(n > 0);
        assert_true(is_json_number(out));
        assert_true(strtod(out, NULL) == d);
    }
    /* Non-finite numbers never make invalid JSON. */
    sc_buf_t b = {0};
    sc_json_t j;
    sc_json_init(&j, &b);
    sc_json_array_begin(&j);
    sc_json_double(&j, (double)NAN);
    sc_json_double(&j, 2.5);
    sc_json_array_end(&j);
    assert_buf_is(&b, "[null,2.5]");
    sc_buf_free(&b);
}

/* A decimal-comma locale (generated with localedef when the system has
 * none) must not leak a ',' into numbers. */
static void test_doubles_ignore_locale(void **state)
{
    (void)state;
#if defined(_WIN32)
    skip();
#else
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8"};
    bool set = false;
    for (size_t i = 0; i < 3 && !set; i++) {
        set = setlocale(LC_NUMERIC, names[i]) != NULL;
    }
    if (!set && system("mkdir -p fe_locale && localedef -i de_DE -f UTF-8 "
                       "fe_locale/de_DE.UTF-8 "
                       ">/dev/null 2>&1") == 0) {
        setenv("LOCPATH", "fe_locale", 1);
        set = setlocale(LC_NUMERIC, "de_DE.UTF-8") != NULL;
    }
    if (!set) {
        printf("no decimal-comma locale available\n");
        skip();
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* the locale is in effect */
    double_is(1.5, "1.5");
    double_is(0.1, "0.1");
    double_is(-2.25e-10, "-2.25e-10");
    setlocale(LC_NUMERIC, "C");
#endif
}

/* ---- EVP bodies ------------------------------------------------------- */

typedef struct bodies {
    sc_buf_t items[64];
    size_t events[64];
    size_t count;
    size_t stop_after; /* 0: never stop */
} bodies_t;

static bool collect(void *ctx, const sc_buf_t *body, size_t events)
{
    bodies_t *b = ctx;
    assert_true(b->count < 64);
    sc_buf_t *copy = &b->items[b->count];
    memset(copy, 0, sizeof *copy);
    assert_true(sc_buf_append(copy, body->data, body->len));
    b->events[b->count++] = events;
    return b->stop_after == 0 || b->count < b->stop_after;
}

static void bodies_free(bodies_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        sc_buf_free(&b->items[i]);
    }
    b->count = 0;
}

/* True when `null` appears as a JSON token (outside strings). */
static bool has_null_token(const sc_buf_t *b)
{
    bool in_string = false;
    for (size_t i = 0; i < b->len; i++) {
        char c = (char)b->data[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == 'n' && i + 4 <= b->len &&
                   memcmp(b->data + i, "null", 4) == 0) {
            return true;
        }
    }
    return false;
}

static const int64_t post_time = 1700000000500;

static void test_full_event_shape(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_string("country", "FR"),
                                  sc_flageval_attr_number("age", 42),
                                  sc_flageval_attr_bool("beta", true)};
    sc_flageval_eval_t ev = evaluation("f", "user-1");
    ev.context = attrs;
    ev.context_len = 3;
    sc_flageval_record(agg, &ev);
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_json_opts_t opts = {.service = sc_view_str("svc"),
                                    .env = sc_view_str("prod"),
                                    .version = sc_view_str("1.2"),
                                    .timestamp_ms = post_time};
    bodies_t out = {.count = 0};
    sc_flageval_json_result_t res;
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_int_equal(out.count, 1);
    assert_int_equal(res.events, 1);
    assert_buf_is(
        &out.items[0],
        "{\"context\":{\"service\":\"svc\",\"env\":\"prod\",\"version\":"
        "\"1.2\"},\"flagEvaluations\":[{\"timestamp\":1700000000500,"
        "\"flag\":{\"key\":\"f\"},\"first_evaluation\":1700000000000,"
        "\"last_evaluation\":1700000000000,\"evaluation_count\":1,"
        "\"variant\":{\"key\":\"on\"},\"allocation\":{\"key\":\"alloc-1\"},"
        "\"targeting_rule\":{\"key\":\"rule-1\"},\"targeting_key\":"
        "\"user-1\",\"context\":{\"evaluation\":{\"age\":42,\"beta\":true,"
        "\"country\":\"FR\"},\"dd\":{\"service\":\"svc\"}}}]}");
    bodies_free(&out);
    sc_flageval_batch_free(&batch);
    sc_flageval_free(agg);
}

static void test_absent_values_omitted(void **state)
{
    (void)state;
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.per_flag_cap = 1;
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    /* A runtime default with an error: no variant, allocation, rule. */
    sc_flageval_eval_t ev = evaluation("g", "");
    ev.variant_key = sc_view_bytes("", 0);
    ev.allocation_key = sc_view_bytes(NULL, 0);
    ev.targeting_rule_key = sc_view_bytes("", 0);
    ev.error_message = sc_view_str("FLAG_NOT_FOUND");
    sc_flageval_record(agg, &ev);
    /* Degraded: flag g is at its cap of one full bucket. */
    sc_flageval_eval_t deg = evaluation("g", "other");
    sc_flageval_record(agg, &deg);
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_json_opts_t opts = {.env = sc_view_bytes("", 0),
                                    .timestamp_ms = post_time};
    bodies_t out = {.count = 0};
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, NULL));
    assert_int_equal(out.count, 1);
    assert_buf_is(&out.items[0],
                  "{\"context\":{},\"flagEvaluations\":[{\"timestamp\":"
                  "1700000000500,\"flag\":{\"key\":\"g\"},\"first_evaluation\":"
                  "1700000000000,\"last_evaluation\":1700000000000,"
                  "\"evaluation_count\":1,\"error\":{\"message\":"
                  "\"FLAG_NOT_FOUND\"},\"runtime_default_used\":true},"
                  "{\"timestamp\":1700000000500,\"flag\":{\"key\":\"g\"},"
                  "\"first_evaluation\":1700000000000,\"last_evaluation\":"
                  "1700000000000,\"evaluation_count\":1,\"variant\":{\"key\":"
                  "\"on\"},\"allocation\":{\"key\":\"alloc-1\"}}]}");
    assert_false(has_null_token(&out.items[0]));
    bodies_free(&out);
    sc_flageval_batch_free(&batch);
    sc_flageval_free(agg);
}

static sc_flageval_batch_t distinct_buckets(size_t n)
{
    sc_flageval_t *agg = sc_flageval_new(NULL);
    char tk[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(tk, sizeof tk, "user-%zu", i);
        sc_flageval_eval_t ev = evaluation("split", tk);
        assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    }
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_free(agg);
    return batch;
}

static void test_split_by_event_count(void **state)
{
    (void)state;
    sc_flageval_batch_t batch = distinct_buckets(1200);
    sc_flageval_json_opts_t opts = {.timestamp_ms = post_time};
    bodies_t out = {.count = 0};
    sc_flageval_json_result_t res;
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_int_equal(out.count, 3);
    assert_int_equal(out.events[0], SC_FLAGEVAL_JSON_MAX_EVENTS);
    assert_int_equal(out.events[1], SC_FLAGEVAL_JSON_MAX_EVENTS);
    assert_int_equal(out.events[2], 1200 - 2 * SC_FLAGEVAL_JSON_MAX_EVENTS);
    assert_int_equal(res.bodies, 3);
    assert_int_equal(res.events, 1200);
    bodies_free(&out);
    sc_flageval_batch_free(&batch);
}

static void test_split_by_bytes(void **state)
{
    (void)state;
    sc_flageval_batch_t batch = distinct_buckets(40);
    sc_flageval_json_opts_t opts = {.timestamp_ms = post_time,
                                    .max_bytes = 1000};
    bodies_t out = {.count = 0};
    sc_flageval_json_result_t res;
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_true(out.count > 1);
    size_t events = 0;
    for (size_t i = 0; i < out.count; i++) {
        assert_true(out.items[i].len <= 1000);
        events += out.events[i];
    }
    assert_int_equal(events, 40);
    assert_int_equal(res.events, 40);
    bodies_free(&out);

    /* Stopped by the callback. */
    out.stop_after = 2;
    assert_false(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_int_equal(out.count, 2);
    bodies_free(&out);
    sc_flageval_batch_free(&batch);
}

static void test_event_too_large_is_counted(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    static char value[SC_FLAGEVAL_MAX_VALUE_LEN + 1];
    memset(value, 'v', SC_FLAGEVAL_MAX_VALUE_LEN);
    sc_flageval_attr_t attrs[] = {sc_flageval_attr_string("a", value),
                                  sc_flageval_attr_string("b", value)};
    sc_flageval_eval_t big = evaluation("big", "u");
    big.context = attrs;
    big.context_len = 2;
    sc_flageval_eval_t small = evaluation("small", "u");
    for (int i = 0; i < 3; i++) {
        sc_flageval_record(agg, &big);
    }
    sc_flageval_record(agg, &small);
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    sc_flageval_json_opts_t opts = {.timestamp_ms = post_time,
                                    .max_bytes = 400};
    bodies_t out = {.count = 0};
    sc_flageval_json_result_t res;
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_int_equal(out.count, 1);
    assert_int_equal(res.events, 1);
    assert_int_equal(res.events_too_large, 1);
    assert_int_equal(res.evaluations_too_large, 3);
    bodies_free(&out);

    /* Nothing to send: no body. */
    sc_flageval_batch_free(&batch);
    sc_flageval_drain(agg, &batch);
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, &res));
    assert_int_equal(out.count, 0);
    sc_flageval_batch_free(&batch);
    sc_flageval_free(agg);
}

/* ---- independent validation ------------------------------------------- */

/* Only with a python to run it (not in the Windows cross build). */
#if defined(SIDECAR_PYTHON)
static const char strict_check[] =
    "import json, sys\n"
    "def no_constant(name):\n"
    "    raise ValueError('non-JSON constant ' + name)\n"
    "def walk(v, path):\n"
    "    assert v is not None, 'null at ' + path\n"
    "    if isinstance(v, dict):\n"
    "        for k, x in v.items(): walk(x, path + '.' + k)\n"
    "    elif isinstance(v, list):\n"
    "        for i, x in enumerate(v): walk(x, '%s[%d]' % (path, i))\n"
    "for name in sys.argv[1:]:\n"
    "    raw = open(name, 'rb').read().decode('utf-8')\n"
    "    body = json.loads(raw, parse_constant=no_constant)\n"
    "    walk(body, '$')\n"
    "    assert set(body) == {'context', 'flagEvaluations'}, body.keys()\n"
    "    for k, v in body['context'].items():\n"
    "        assert k in ('service', 'env', 'version') and v, k\n"
    "    events = body['flagEvaluations']\n"
    "    assert 1 <= len(events) <= 512\n"
    "    for e in events:\n"
    "        for k in ('timestamp', 'first_evaluation', 'last_evaluation',\n"
    "                  'evaluation_count'):\n"
    "            assert type(e[k]) is int, k\n"
    "        assert e['first_evaluation'] <= e['last_evaluation']\n"
    "        assert e['evaluation_count'] >= 1\n"
    "        for k in ('flag', 'variant', 'allocation', 'targeting_rule'):\n"
    "            if k in e:\n"
    "                assert list(e[k]) == ['key'] and e[k]['key'], k\n"
    "        if 'targeting_key' in e: assert e['targeting_key']\n"
    "        if 'error' in e: assert e['error']['message']\n"
    "        if 'runtime_default_used' in e:\n"
    "            assert e['runtime_default_used'] is True\n"
    "        if 'context' in e:\n"
    "            c = e['context']\n"
    "            assert c and set(c) <= {'evaluation', 'dd'}, c\n"
    "            if 'evaluation' in c:\n"
    "                assert isinstance(c['evaluation'], dict)\n"
    "                assert c['evaluation']\n"
    "            if 'dd' in c: assert c['dd']['service']\n"
    "        known = {'timestamp', 'flag', 'first_evaluation',\n"
    "                 'last_evaluation', 'evaluation_count', 'variant',\n"
    "                 'allocation', 'targeting_rule', 'targeting_key',\n"
    "                 'context', 'error', 'runtime_default_used'}\n"
    "        assert set(e) <= known, set(e) - known\n"
    "print('ok', len(sys.argv) - 1)\n";

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}
#endif

static void test_bodies_validate_with_python(void **state)
{
    (void)state;
#if !defined(SIDECAR_PYTHON)
    skip();
#else
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.per_flag_cap = 3;
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    sc_flageval_attr_t attrs[] = {
        sc_flageval_attr_string("quote\"key", "line\nbreak\ttab\x01"),
        sc_flageval_attr_string("bin", "\xff\xfe invalid \xC3"),
        sc_flageval_attr_string("empty", ""),
        sc_flageval_attr_string("unicode", "\xE2\x82\xAC \xF0\x9F\x98\x80"),
        sc_flageval_attr_number("tenth", 0.1),
        sc_flageval_attr_number("huge", 1e300),
        sc_flageval_attr_number("tiny", 5e-324),
        sc_flageval_attr_number("neg0", -0.0),
        sc_flageval_attr_number("nan", (double)NAN), /* pruned */
        sc_flageval_attr_bool("yes", true),
    };
    char tk[16];
    for (int i = 0; i < 8; i++) {
        snprintf(tk, sizeof tk, "user-%d", i);
        sc_flageval_eval_t ev = evaluation(i % 2 ? "a" : "b\\\"", tk);
        ev.context = attrs;
        ev.context_len = (size_t)i + 3;
        if (i % 3 == 0) {
            ev.variant_key = sc_view_bytes(NULL, 0);
            ev.error_message = sc_view_str("bad \x02 thing \xff");
        }
        if (i == 5) {
            ev.variant_key = sc_view_bytes("", 0);
            ev.allocation_key = sc_view_bytes("", 0);
            ev.targeting_key = sc_view_bytes("", 0);
        }
        sc_flageval_record(agg, &ev);
    }
    sc_flageval_batch_t batch;
    sc_flageval_drain(agg, &batch);
    assert_true(batch.count > 3);
    sc_flageval_json_opts_t opts = {.service = sc_view_str("svc\x7f\xff"),
                                    .env = sc_view_str("prod"),
                                    .max_events = 3};
    bodies_t out = {.count = 0};
    assert_true(sc_flageval_json_bodies(&batch, &opts, collect, &out, NULL));
    assert_true(out.count >= 2);
    write_file("test_flageval_strict.py", strict_check,
               sizeof strict_check - 1);
    char names[1024] = "";
    for (size_t i = 0; i < out.count; i++) {
        char path[64], cmd[512];
        snprintf(path, sizeof path, "test_flageval_body_%zu.json", i);
        write_file(path, out.items[i].data, out.items[i].len);
        assert_false(has_null_token(&out.items[i]));
        snprintf(cmd, sizeof cmd, "%s -m json.tool %s %s.out", SIDECAR_PYTHON,
                 path, path);
        assert_int_equal(system(cmd), 0);
        strcat(names, " ");
        strcat(names, path);
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s test_flageval_strict.py%s", SIDECAR_PYTHON,
             names);
    assert_int_equal(system(cmd), 0);
    /* The checker itself rejects what it must. */
    static const char bad[] =
        "{\"context\":{},\"flagEvaluations\":[{\"flag\":null}]}";
    write_file("test_flageval_bad.json", bad, sizeof bad - 1);
    snprintf(cmd, sizeof cmd,
             "%s test_flageval_strict.py test_flageval_bad.json 2>/dev/null",
             SIDECAR_PYTHON);
    assert_int_not_equal(system(cmd), 0);
    bodies_free(&out);
    sc_flageval_batch_free(&batch);
    sc_flageval_free(agg);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_structure_and_commas),
        cmocka_unit_test(test_depth_and_misuse_fail),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_doubles_ignore_locale),
        cmocka_unit_test(test_full_event_shape),
        cmocka_unit_test(test_absent_values_omitted),
        cmocka_unit_test(test_split_by_event_count),
        cmocka_unit_test(test_split_by_bytes),
        cmocka_unit_test(test_event_too_large_is_counted),
        cmocka_unit_test(test_bodies_validate_with_python),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
