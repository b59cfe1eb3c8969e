/* Configured identities and the admission rule (docs/transport.md), on every
 * platform: the lists parse strictly, and a peer is admitted exactly when
 * it is us, root/SYSTEM, an allowed uid (POSIX) or SID (Windows), or a
 * descendant of the thread-mode master. */
#include "access.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void uid_lists(void **state)
{
    (void)state;
    uint32_t uids[16] = {0};
    assert_int_equal(sc_access_parse_uids("33,1000", uids, 16), 2);
    assert_int_equal(uids[0], 33);
    assert_int_equal(uids[1], 1000);
    assert_int_equal(sc_access_parse_uids("", uids, 16), 0);
    uids[0] = 7;
    /* Anything malformed: nothing written. */
    assert_int_equal(sc_access_parse_uids("33,x", uids, 16), UV_EINVAL);
    assert_int_equal(sc_access_parse_uids("33,", uids, 16), UV_EINVAL);
    assert_int_equal(sc_access_parse_uids("-1", uids, 16), UV_EINVAL);
    assert_int_equal(sc_access_parse_uids("4294967296", uids, 16), UV_EINVAL);
    assert_int_equal(sc_access_parse_uids("1,2,3", uids, 2), UV_EINVAL);
    assert_int_equal(uids[0], 7);
}

static void sid_lists(void **state)
{
    (void)state;
    sc_access_t a = {0};
    assert_int_equal(
        sc_access_parse_sids(&a, "S-1-5-32-545,s-1-5-82-1-2-3-4-5"), 0);
    assert_int_equal(a.allowed_sid_count, 2);
    assert_string_equal(a.allowed_sids[0], "S-1-5-32-545");
    assert_string_equal(a.allowed_sids[1], "S-1-5-82-1-2-3-4-5"); /* 'S' */
    /* A bad entry leaves the list as it was. */
    static const char *const bad[] = {
        "S-1-5-32-545,oops",
        "S-1",
        "S-2-5",
        "S-1-5-",
        "S-1--5",
        "X-1-5",
        "S-1-5-32-545,",
        "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        "S-1-5-123456789012345678901"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sc_access_parse_sids(&a, bad[i]), UV_EINVAL);
        assert_int_equal(a.allowed_sid_count, 2);
    }
    sc_access_t full = {0};
    for (int i = 0; i < SC_MAX_ALLOWED_SIDS; i++) {
        assert_int_equal(sc_access_add_sid(&full, "S-1-5-18"), 0);
    }
    assert_int_equal(sc_access_add_sid(&full, "S-1-5-18"), UV_ENOSPC);
    assert_int_equal(sc_access_parse_sids(&a, ""), 0);
    assert_int_equal(a.allowed_sid_count, 0);
}

static void admission(void **state)
{
    (void)state;
    sc_access_t a = {0};
    a.allowed_uids[a.allowed_uid_count++] = 33;
    assert_int_equal(sc_access_add_sid(&a, "S-1-5-82-1-2-3-4-5"), 0);

    sc_peer_t stranger = {.pid = 0, .uid = 65534};
    assert_false(sc_access_admits(&a, &stranger));
    sc_peer_t p = stranger;
    p.same_user = true;
    assert_true(sc_access_admits(&a, &p));
    p = stranger;
    p.privileged = true;
    assert_true(sc_access_admits(&a, &p));
    p = stranger;
    p.uid = 33; /* POSIX peer of an allowed uid */
    assert_true(sc_access_admits(&a, &p));

    /* Windows peers carry a SID (and uid 0, which must not match uids). */
    sc_peer_t win = {.uid = 0};
    strcpy(win.sid, "S-1-5-82-1-2-3-4-5");
    assert_true(sc_access_admits(&a, &win));
    strcpy(win.sid, "S-1-5-82-1-2-3-4-6");
    assert_false(sc_access_admits(&a, &win));
    a.allowed_uids[a.allowed_uid_count++] = 0;
    assert_false(sc_access_admits(&a, &win));
    strcpy(win.sid, "S-1-5-82-1-2-3-4");
    assert_false(sc_access_admits(&a, &win)); /* no prefix matches */

    /* Thread mode: the master's descendants (the master itself counts; the
     * walk up a real fork tree is exercised by the runtime tests). */
    sc_peer_t child = {.pid = sc_plat_getpid(), .uid = 65534};
    strcpy(child.sid, "S-1-5-21-9");
    assert_false(sc_access_admits(&a, &child));
    a.master_pid = sc_plat_getpid();
    assert_true(sc_access_admits(&a, &child));
    a.master_pid = sc_plat_getpid() + 1000000;
    assert_false(sc_access_admits(&a, &child));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uid_lists),
        cmocka_unit_test(sid_lists),
        cmocka_unit_test(admission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
