/* Versioned option structs: sc_config_init() and the layout checks every
 * entry point makes (docs/install.md, "ABI"). */
#include "abi.h"
#include "sidecar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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
    assert_int_equal(sc_config_init(&cfg, sizeof cfg - 8), UV_EINVAL);
    assert_int_equal(sc_config_init(&cfg, sizeof cfg + 8), UV_EINVAL);
    assert_int_equal(sc_config_init(NULL, sizeof cfg), UV_EINVAL);
    assert_memory_equal(&cfg, &copy, sizeof cfg);
}

static void zero_means_this_layout(void **state)
{
    (void)state;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    assert_int_equal(cfg.struct_size, 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_init_matches_defaults),
        cmocka_unit_test(unknown_size_is_rejected_untouched),
        cmocka_unit_test(zero_means_this_layout),
        cmocka_unit_test(foreign_sizes_fail_the_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
