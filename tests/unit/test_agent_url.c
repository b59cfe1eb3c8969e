/* Agent address resolution (src/common/agent_url.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent_url.h"

static void expect_url(const char *in, const char *url, const char *unix_path)
{
    sc_agent_addr_t a;
    memset(&a, 'z', sizeof a);
    assert_int_equal(sc_agent_addr_parse_url(in, &a), 0);
    assert_string_equal(a.url, url);
    assert_string_equal(a.unix_path, unix_path);
}

static void test_parse_valid(void **state)
{
    (void)state;
    expect_url("http://localhost:8126", "http://localhost:8126", "");
    expect_url("http://127.0.0.1:9000/", "http://127.0.0.1:9000", "");
    expect_url("HTTP://Agent.Example:1", "http://Agent.Example:1", "");
    expect_url("http://agent", "http://agent", "");
    expect_url("http://[::1]:8126", "http://[::1]:8126", "");
    expect_url("http://[::1]", "http://[::1]", "");
    expect_url("http://host:8126/prefix//", "http://host:8126/prefix", "");
    expect_url("unix:///var/run/datadog/apm.socket", "http://localhost",
               "/var/run/datadog/apm.socket");
    expect_url("UNIX://relative.sock", "http://localhost", "relative.sock");
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "localhost:8126",
        "https://agent:8126",
        "ftp://agent",
        "http://",
        "http://:8126",
        "http://agent:",
        "http://agent:0",
        "http://agent:65536",
        "http://agent:12a",
        "http://agent:123456",
        "http://user@agent:8126",
        "http://agent:8126?x=1",
        "http://agent:8126#frag",
        "http://age nt:8126",
        "http://agent\r\nX-Injected: 1",
        "http://[::1",
        "http://[]:8126",
        "http://[::1]x",
        "http://a:b:c",
        "unix://",
        "unix://bad\npath",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sc_agent_addr_t a;
        memset(&a, 'z', sizeof a);
        a.url[0] = '\0';
        int rc = sc_agent_addr_parse_url(bad[i], &a);
        if (rc == 0) {
            fail_msg("accepted %s", bad[i]);
        }
        assert_int_equal(a.url[0], '\0'); /* left unchanged */
    }
    char long_path[300] = "unix:///";
    memset(long_path + 8, 'p', sizeof long_path - 9);
    long_path[sizeof long_path - 1] = '\0';
    sc_agent_addr_t a;
    assert_int_equal(sc_agent_addr_parse_url(long_path, &a), UV_ENAMETOOLONG);
}

static void test_resolve_order(void **state)
{
    (void)state;
    sc_agent_addr_t a;
    assert_int_equal(sc_agent_addr_resolve(NULL, NULL, NULL, &a), 0);
    assert_string_equal(a.url, "http://localhost:8126");
    assert_string_equal(a.unix_path, "");

    assert_int_equal(sc_agent_addr_resolve("", "", "", &a), 0);
    assert_string_equal(a.url, "http://localhost:8126");

    /* The URL wins over host and port. */
    assert_int_equal(
        sc_agent_addr_resolve("unix:///tmp/apm.sock", "other", "1", &a), 0);
    assert_string_equal(a.unix_path, "/tmp/apm.sock");

    assert_int_equal(sc_agent_addr_resolve(NULL, "dd-agent", "9126", &a), 0);
    assert_string_equal(a.url, "http://dd-agent:9126");
    assert_int_equal(sc_agent_addr_resolve(NULL, "dd-agent", NULL, &a), 0);
    assert_string_equal(a.url, "http://dd-agent:8126");
    assert_int_equal(sc_agent_addr_resolve(NULL, NULL, "9000", &a), 0);
    assert_string_equal(a.url, "http://localhost:9000");
    assert_int_equal(sc_agent_addr_resolve(NULL, "::1", "9000", &a), 0);
    assert_string_equal(a.url, "http://[::1]:9000");
}

static void test_resolve_fallbacks(void **state)
{
    (void)state;
    sc_agent_addr_t a;
    /* A bad URL falls back to host/port, and says so. */
    assert_int_equal(sc_agent_addr_resolve("https://x", "h", "1234", &a),
                     UV_EINVAL);
    assert_string_equal(a.url, "http://h:1234");
    assert_string_equal(a.unix_path, "");
    /* A bad port falls back to the default port. */
    assert_int_equal(sc_agent_addr_resolve(NULL, "h", "http", &a), UV_EINVAL);
    assert_string_equal(a.url, "http://h:8126");
    /* A host that would change the URL's meaning is not used. */
    assert_int_equal(sc_agent_addr_resolve(NULL, "evil/path@x", NULL, &a),
                     UV_EINVAL);
    assert_string_equal(a.url, "http://localhost:8126");
}

static void test_from_env(void **state)
{
    (void)state;
    sc_agent_addr_t a;
    uv_os_unsetenv("DD_TRACE_AGENT_URL");
    uv_os_setenv("DD_AGENT_HOST", "envhost");
    uv_os_setenv("DD_TRACE_AGENT_PORT", "7777");
    assert_int_equal(sc_agent_addr_from_env(&a), 0);
    assert_string_equal(a.url, "http://envhost:7777");
    uv_os_setenv("DD_TRACE_AGENT_URL", "unix:///run/apm.sock");
    assert_int_equal(sc_agent_addr_from_env(&a), 0);
    assert_string_equal(a.unix_path, "/run/apm.sock");
    char text[200];
    assert_string_equal(sc_agent_addr_describe(&a, text, sizeof text),
                        "unix:///run/apm.sock");
    uv_os_unsetenv("DD_TRACE_AGENT_URL");
    uv_os_unsetenv("DD_AGENT_HOST");
    uv_os_unsetenv("DD_TRACE_AGENT_PORT");
    assert_int_equal(sc_agent_addr_from_env(&a), 0);
    assert_string_equal(sc_agent_addr_describe(&a, text, sizeof text),
                        "http://localhost:8126");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_resolve_order),
        cmocka_unit_test(test_resolve_fallbacks),
        cmocka_unit_test(test_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
