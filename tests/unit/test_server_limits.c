/* The admission rule on connection counts and the reassembly budget the
 * server derives from its configuration (server.h). The integration test
 * test_transport_limits covers the same limits with real processes; the
 * per-user share is checked here, where thousands of connections of
 * several users are just numbers. */
#include "codec.h"
#include "frame.h"
#include "server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void defaults(void **state)
{
    (void)state;
    sc_server_config_t cfg;
    sc_server_config_defaults(&cfg);
    assert_int_equal(cfg.max_connections, 4096);
    assert_int_equal(cfg.max_connections_per_process, 64);
    assert_int_equal(cfg.frame_timeout_ms, 10000);
    /* 16 largest frames: 64 MiB and 64 bytes. */
    assert_int_equal(sc_server_reassembly_budget(&cfg),
                     16 * (4u * 1024 * 1024 + SC_FRAME_HEADER_SIZE));
}

static void per_process(void **state)
{
    (void)state;
    sc_server_config_t cfg;
    sc_server_config_defaults(&cfg);
    assert_int_equal(sc_server_admission(&cfg, 100, 63, 100), SC_ADMIT);
    assert_int_equal(sc_server_admission(&cfg, 100, 64, 100),
                     SC_REFUSE_PROCESS);
    cfg.max_connections_per_process = 0; /* unlimited */
    assert_int_equal(sc_server_admission(&cfg, 100, 1000, 100), SC_ADMIT);
}

static void per_user_keeps_room_for_others(void **state)
{
    (void)state;
    sc_server_config_t cfg;
    sc_server_config_defaults(&cfg);
    /* One user may hold 4096 - 512: the last 512 are for the others. */
    assert_int_equal(sc_server_admission(&cfg, 3583, 1, 3583), SC_ADMIT);
    assert_int_equal(sc_server_admission(&cfg, 3584, 1, 3584), SC_REFUSE_USER);
    /* ... which another user still gets, up to the total. */
    assert_int_equal(sc_server_admission(&cfg, 3584, 0, 0), SC_ADMIT);
    assert_int_equal(sc_server_admission(&cfg, 4095, 0, 511), SC_ADMIT);
    assert_int_equal(sc_server_admission(&cfg, 4096, 0, 512), SC_REFUSE_FULL);
    cfg.connections_kept_for_others = 10;
    assert_int_equal(sc_server_admission(&cfg, 4086, 1, 4086), SC_REFUSE_USER);
    assert_int_equal(sc_server_admission(&cfg, 4085, 1, 4085), SC_ADMIT);
}

static void budget_never_below_two_frames(void **state)
{
    (void)state;
    sc_server_config_t cfg;
    sc_server_config_defaults(&cfg);
    cfg.max_reassembly = 1; /* too small to be usable: raised */
    size_t budget = sc_server_reassembly_budget(&cfg);
    size_t largest = cfg.max_frame + SC_FRAME_HEADER_SIZE;
    /* Large reads may use three quarters; two largest frames fit there. */
    assert_true(budget / 4 * 3 >= 2 * largest);
    cfg.max_reassembly = 256u * 1024 * 1024;
    assert_int_equal(sc_server_reassembly_budget(&cfg), 256u * 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(per_process),
        cmocka_unit_test(per_user_keeps_room_for_others),
        cmocka_unit_test(budget_never_below_two_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
