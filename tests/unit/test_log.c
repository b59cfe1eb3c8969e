/* The log's timestamps (ISO-8601 UTC) and its file destination. */
#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void times_are_iso8601_utc(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(sc_log_format_time(0, out, sizeof out),
                        "1970-01-01T00:00:00.000Z");
    /* A leap day, and the last millisecond of a leap year. */
    assert_string_equal(sc_log_format_time(951782400123LL, out, sizeof out),
                        "2000-02-29T00:00:00.123Z");
    assert_string_equal(sc_log_format_time(1735689599999LL, out, sizeof out),
                        "2024-12-31T23:59:59.999Z");
    assert_string_equal(sc_log_format_time(4102444800000LL, out, sizeof out),
                        "2100-01-01T00:00:00.000Z");
    /* Before the epoch. */
    assert_string_equal(sc_log_format_time(-1, out, sizeof out),
                        "1969-12-31T23:59:59.999Z");
}

static void file_gets_lines_and_level_filters(void **state)
{
    (void)state;
    const char *path = "test_log.log";
    remove(path);
    assert_int_equal(sc_log_configure(SC_LOG_INFO, path), 0);
    assert_string_equal(sc_log_file(), path);
    sc_log(SC_LOG_INFO, "kept %d", 1);
    sc_log(SC_LOG_DEBUG, "filtered");
    const char *argv[4];
    size_t n = sc_log_daemon_args(argv);
    assert_int_equal(n, 4);
    assert_string_equal(argv[1], "info");
    assert_string_equal(argv[3], path);
    assert_int_equal(sc_log_configure(SC_LOG_WARN, NULL), 0);
    assert_int_equal(sc_log_daemon_args(argv), 2);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[512] = {0};
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_true(len > 0);
    /* Text mode: a line ends in "\r\n" on Windows. */
    assert_non_null(strstr(buf, "info] kept 1"));
    assert_null(strstr(buf, "filtered"));
    assert_true(buf[4] == '-' && buf[10] == 'T' && buf[23] == 'Z');
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(times_are_iso8601_utc),
        cmocka_unit_test(file_gets_lines_and_level_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
