/* The reader of agent answers (src/common/agent_info.c, cJSON): /info
 * documents and the rate_by_service object of /v0.4/traces answers.
 * Malformed documents are refused whole, the held state unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_info.h"

static bool parse(const char *json, sc_agent_info_t *info)
{
    return sc_agent_info_parse(json, strlen(json), info);
}

static void test_info_valid(void **state)
{
    (void)state;
    sc_agent_info_t info;
    memset(&info, 0, sizeof info);
    const char *doc =
        " {\"version\":\"7.50.0\",\"endpoints\":[\"/v0.4/traces\","
        "\"/evp_proxy/v2/\",1,null,{\"a\":[]},\"/a\\u0042\"],"
        "\"config\":{\"n\":[1,-2.5e3,true,false,null]}} \n";
    assert_true(parse(doc, &info));
    assert_true(info.valid);
    assert_int_equal(info.raw_len, strlen(doc));
    assert_string_equal(info.raw_json, doc);
    /* Strings only, escapes decoded; other items skipped. */
    assert_int_equal(info.endpoint_count, 3);
    assert_true(sc_agent_info_has_endpoint(&info, "/v0.4/traces"));
    assert_true(sc_agent_info_has_endpoint(&info, "/evp_proxy/v2/"));
    assert_true(sc_agent_info_has_endpoint(&info, "/aB"));
    assert_false(sc_agent_info_has_endpoint(&info, "/v0.5/traces"));
    /* No "endpoints", or not an array: valid, no endpoints. */
    assert_true(parse("{\"endpoints\":\"/v0.4/traces\"}", &info));
    assert_int_equal(info.endpoint_count, 0);
    assert_true(parse("{}", &info));
    assert_int_equal(info.endpoint_count, 0);
    sc_agent_info_free(&info);
}

/* Each is refused, and what was held stays. */
static void test_info_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"x\": tru}",
        "[,,\"/v0.4/traces\"::]",
        "{\"endpoints\":[,,\"/v0.4/traces\"::]}",
        "{\"endpoints\":[\"/v0.4/traces\",]}",
        "{\"endpoints\":[\"/v0.4/traces\"]",
        "{\"endpoints\":[\"/v0.4/traces\"]} x",
        "{\"endpoints\":[\"/v0.4/traces\"]}{}",
        "{'endpoints':[]}",
        "{\"a\":01x}",
        "{\"a\":\"unterminated}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{,}",
        "\"just a string\"",
        "[\"/v0.4/traces\"]",
        "42",
        "",
        "   ",
        "{\"a\":nul}",
        "{\"a\":\"\\x\"}",
    };
    sc_agent_info_t info;
    memset(&info, 0, sizeof info);
    assert_true(parse("{\"endpoints\":[\"/held\"]}", &info));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(parse(bad[i], &info));
        assert_true(info.valid);
        assert_int_equal(info.endpoint_count, 1);
        assert_true(sc_agent_info_has_endpoint(&info, "/held"));
    }
    /* A byte count that cuts a valid document. */
    const char *doc = "{\"endpoints\":[\"/v0.4/traces\"]}";
    for (size_t n = 0; n < strlen(doc); n++) {
        assert_false(sc_agent_info_parse(doc, n, &info));
    }
    sc_agent_info_free(&info);
}

static void test_depth(void **state)
{
    (void)state;
    char doc[512];
    size_t n = 0;
    for (int i = 0; i < SC_AGENT_JSON_MAX_DEPTH; i++) {
        doc[n++] = '[';
    }
    for (int i = 0; i < SC_AGENT_JSON_MAX_DEPTH; i++) {
        doc[n++] = ']';
    }
    assert_true(sc_agent_json_depth_ok(doc, n));
    /* Brackets inside strings do not count. */
    assert_true(sc_agent_json_depth_ok("\"[[[[\\\"[[[\"", 11));
    char deep[1024];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 200);
    assert_false(sc_agent_json_depth_ok(deep, 400));
    /* A document nested past the limit is refused as a whole. */
    char *big = malloc(4u << 20);
    assert_non_null(big);
    size_t len = 0;
    len += (size_t)sprintf(big, "{\"endpoints\":[\"/x\"],\"a\":");
    while (len < (2u << 20)) {
        big[len++] = '[';
    }
    sc_agent_info_t info;
    memset(&info, 0, sizeof info);
    assert_false(sc_agent_info_parse(big, len, &info));
    assert_false(info.valid);
    free(big);
}

static void test_rates(void **state)
{
    (void)state;
    const char *answer =
        "{\"rate_by_service\":{\"service:,env:\":1,\"service:web,env:prod\":"
        "0.5}}";
    size_t len = 0;
    char *rates = sc_agent_rates_parse(answer, strlen(answer), &len);
    assert_non_null(rates);
    assert_string_equal(rates,
                        "{\"service:,env:\":1,\"service:web,env:prod\":0.5}");
    assert_int_equal(len, strlen(rates));
    free(rates);
    static const char *const none[] = {"{\"rate_by_service\":[1]}",
                                       "{\"rate_by_service\":tru}",
                                       "{\"rate_by_service\":{}",
                                       "OK",
                                       "{}",
                                       "{\"other\":{}}",
                                       "[{\"rate_by_service\":{}}]"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        assert_null(sc_agent_rates_parse(none[i], strlen(none[i]), &len));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_valid),
        cmocka_unit_test(test_info_malformed),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
