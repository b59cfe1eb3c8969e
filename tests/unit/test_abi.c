/* Versioned option structs: sc_config_init() and the layout checks every
 * entry point makes (docs/install.md, "ABI"). */
#include "abi.h"
#include "sidecar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

static void config_init_matches_defaults(void **state)
{
    (void)state;
    sc_config_t a, b;
    memset(&a, 0xa5, sizeof a);
    assert_int_equal(sc_config_init(&a, sizeof a), 0);
    sc_config_defaults(&b);
    assert_int_equal(a.struct_size, sizeof a);
    b.struct_size = a.struct_size;
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(sc_abi_config_check(&a), 0);
    assert_int_equal(sc_abi_config_check(&b), 0);
}

static void unknown_size_is_rejected_untouched(void **state)
{
    (void)state;
    sc_config_t cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    sc_config_t copy = cfg;
    assert_int_equal(sc_config_init(&cfg, sizeof cfg - 4), UV_EINVAL);
    assert_int_equal(sc_config_init(&cfg, SC_CONFIG_SIZE_0_1 - 8), UV_EINVAL);
    assert_int_equal(sc_config_init(&cfg, sizeof cfg + 8), UV_EINVAL);
    assert_int_equal(sc_config_init(NULL, sizeof cfg), UV_EINVAL);
    assert_memory_equal(&cfg, &copy, sizeof cfg);
}

static void zero_means_the_0_1_layout(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    assert_int_equal(cfg.struct_size, sizeof cfg);
    cfg.struct_size = 0;
    assert_int_equal(sc_abi_config_check(&cfg), 0);
    sc_client_options_t o = {.endpoint = "@x"};
    assert_int_equal(sc_abi_client_options_check(&o), 0);
    o.struct_size = sizeof o;
    assert_int_equal(sc_abi_client_options_check(&o), 0);
}

static void foreign_sizes_fail_the_check(void **state)
{
    (void)state;
    sc_client_options_t o = {.struct_size = 12, .endpoint = "@x"};
    assert_int_equal(sc_abi_client_options_check(&o), UV_EINVAL);
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.client.struct_size = (uint32_t)sizeof cfg.client + 16;
    assert_int_equal(sc_abi_config_check(&cfg), UV_EINVAL);
    cfg.client.struct_size = 0;
    cfg.struct_size = 3;
    assert_int_equal(sc_abi_config_check(&cfg), UV_EINVAL);
}

/* Sets (NULL: removes) a variable where getenv() sees it: the CRT's copy
 * on Windows, which SetEnvironmentVariable (uv_os_setenv) does not reach. */
static void set_env(const char *name, const char *value)
{
#ifdef _WIN32
    _putenv_s(name, value != NULL ? value : "");
#else
    if (value != NULL) {
        setenv(name, value, 1);
    } else {
        unsetenv(name);
    }
#endif
}

/* A caller compiled against 0.1: its struct ends where rss_cap_bytes
 * begins. A heap block of exactly that size: ASan sees a read past it (the
 * block is written as bytes: it is not a whole sc_config_t). */
static void a_0_1_caller_gets_the_default_cap(void **state)
{
    (void)state;
    sc_config_t full;
    sc_config_defaults(&full);
    full.struct_size = 0;
    full.idle_timeout_ms = 1234;
    assert_false(SC_CONFIG_HAS(&full, rss_cap_bytes));
    unsigned char *raw = malloc(SC_CONFIG_SIZE_0_1);
    assert_non_null(raw);
    memcpy(raw, &full, SC_CONFIG_SIZE_0_1);
    sc_config_t *old = (sc_config_t *)(void *)raw;
    assert_int_equal(sc_abi_config_check(old), 0);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", "1048576");
    assert_int_equal(sc_config_from_env(old), 0); /* writes no cap */
    set_env("DD_TRACE_SIDECAR_RSS_CAP", NULL);
    sc_config_t copy;
    sc_abi_config_copy(&copy, old);
    assert_int_equal(copy.idle_timeout_ms, 1234);
    assert_int_equal(copy.rss_cap_bytes, 512ull * 1024 * 1024);
    assert_int_equal(copy.struct_size, sizeof copy);
    uint32_t size = (uint32_t)SC_CONFIG_SIZE_0_1; /* said explicitly */
    memcpy(raw + offsetof(sc_config_t, struct_size), &size, sizeof size);
    assert_int_equal(sc_abi_config_check(old), 0);
    sc_abi_config_copy(&copy, old);
    assert_int_equal(copy.idle_timeout_ms, 1234);
    assert_int_equal(copy.rss_cap_bytes, 512ull * 1024 * 1024);
    free(raw);
}

static void the_cap_comes_from_the_environment(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    assert_int_equal(cfg.rss_cap_bytes, 512ull * 1024 * 1024);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", "0");
    assert_int_equal(sc_config_from_env(&cfg), 0);
    assert_int_equal(cfg.rss_cap_bytes, 0);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", "8589934592");
    assert_int_equal(sc_config_from_env(&cfg), 0);
    assert_int_equal(cfg.rss_cap_bytes, 8589934592ull);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", "512M"); /* bytes only */
    assert_int_equal(sc_config_from_env(&cfg), UV_EINVAL);
    assert_int_equal(cfg.rss_cap_bytes, 8589934592ull);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", "99999999999999999999999");
    assert_int_equal(sc_config_from_env(&cfg), UV_EINVAL);
    set_env("DD_TRACE_SIDECAR_RSS_CAP", NULL);
    sc_config_t copy;
    sc_abi_config_copy(&copy, &cfg);
    assert_int_equal(copy.rss_cap_bytes, 8589934592ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_init_matches_defaults),
        cmocka_unit_test(unknown_size_is_rejected_untouched),
        cmocka_unit_test(zero_means_the_0_1_layout),
        cmocka_unit_test(a_0_1_caller_gets_the_default_cap),
        cmocka_unit_test(the_cap_comes_from_the_environment),
        cmocka_unit_test(foreign_sizes_fail_the_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
