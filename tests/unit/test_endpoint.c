/* Endpoint naming (docs/transport.md) is a pure function: pinned here for every
 * kind. */
#include "endpoint.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void names(void **state)
{
    (void)state;
    char out[SC_ENDPOINT_MAX + 1];
    sc_endpoint_params_t p = {
        .kind = SC_ENDPOINT_ABSTRACT, .version = "1.2.3", .identity = "33"};
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(out, "@sidecar-1.2.3-33");
    p.master_pid = 4242;
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(out, "@sidecar-1.2.3-33-4242");

    p.kind = SC_ENDPOINT_FILESYSTEM;
    p.dir = "/run/sidecar/";
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(out, "/run/sidecar/sidecar-1.2.3-33-4242.sock");
    p.dir = "/run/sidecar";
    p.master_pid = 0;
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(out, "/run/sidecar/sidecar-1.2.3-33.sock");

    p.kind = SC_ENDPOINT_NAMED_PIPE;
    p.identity = "S-1-5-21-1004336348-1177238915-682003330-512";
    p.master_pid = 7;
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(
        out,
        "\\\\.\\pipe\\sidecar-1.2.3-S-1-5-21-1004336348-1177238915-682003330-"
        "512-7");
    /* An elected thread-mode master (no fork): one name per identity. */
    p.elected_thread = true;
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(
        out,
        "\\\\.\\pipe\\sidecar-1.2.3-S-1-5-21-1004336348-1177238915-682003330-"
        "512-thread");
}

static void version_is_sanitized(void **state)
{
    (void)state;
    char out[SC_ENDPOINT_MAX + 1];
    sc_endpoint_params_t p = {.kind = SC_ENDPOINT_ABSTRACT,
                              .version = "1.0/../x y-dev",
                              .identity = "0"};
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), 0);
    assert_string_equal(out, "@sidecar-1.0..xydev-0");
    p.version = "///";
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), UV_EINVAL);
}

static void limits_and_missing_parameters(void **state)
{
    (void)state;
    char out[SC_ENDPOINT_MAX + 1];
    char dir[200];
    memset(dir, 'd', sizeof dir - 1);
    dir[0] = '/';
    dir[sizeof dir - 1] = '\0';
    sc_endpoint_params_t p = {.kind = SC_ENDPOINT_FILESYSTEM,
                              .version = "1",
                              .identity = "0",
                              .dir = dir};
    /* sun_path holds 107 characters: a long directory cannot be used. */
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), UV_ENAMETOOLONG);
    p.dir = NULL;
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), UV_EINVAL);
    p.kind = SC_ENDPOINT_ABSTRACT;
    p.identity = "";
    assert_int_equal(sc_endpoint_name(out, sizeof out, &p), UV_EINVAL);
    /* The output buffer bounds the name too. */
    p.identity = "1000";
    char small[8];
    assert_int_equal(sc_endpoint_name(small, sizeof small, &p),
                     UV_ENAMETOOLONG);
    assert_int_equal(sc_endpoint_limit(SC_ENDPOINT_ABSTRACT), 108);
    assert_int_equal(sc_endpoint_limit(SC_ENDPOINT_FILESYSTEM), 107);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(version_is_sanitized),
        cmocka_unit_test(limits_and_missing_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
