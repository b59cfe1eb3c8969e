/* The client against a real sidecar: ping, the flush barrier, reconnect with
 * a fresh Hello, drops when the buffer is full, several threads on one
 * client. */
#include "harness.h"
#include "sidecar.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <cmocka.h>

static uint64_t sidecar_stat(const char *endpoint, const char *key)
{
    char *json = th_stats(endpoint);
    assert_non_null(json);
    uint64_t v = th_json_u64(json, key);
    free(json);
    return v;
}

static void send_traces(sc_client_t *c, int n)
{
    uint8_t payload[64];
    for (int i = 0; i < n; i++) {
        size_t len = th_trace_payload(payload, (uint64_t)i);
        assert_int_equal(sc_client_send_trace(c, payload, len, 1), 0);
    }
}

static void ping_round_trip(void **state)
{
    (void)state;
    char ep[128];
    th_endpoint(ep, sizeof ep, "ping");
    int pid = th_sidecar_start(ep, NULL);
    assert_true(pid > 0);
    sc_client_options_t o = {.endpoint = ep};
    sc_client_t *c = sc_client_new(&o);
    sc_ping_result_t r;
    assert_int_equal(sc_client_ping(c, 2000, &r), 0);
    assert_int_equal(r.server_pid, (uint32_t)pid);
    assert_string_equal(r.mode, "subprocess");
    assert_string_equal(r.server_version, sc_version());
    assert_true(r.round_trip_ns > 0);
    sc_client_free(c);
    assert_int_equal(th_sidecar_stop(pid, false), 0);
}

static void flush_barrier_covers_earlier_actions(void **state)
{
    (void)state;
    char ep[128];
    th_endpoint(ep, sizeof ep, "flush");
    int pid = th_sidecar_start(ep, NULL);
    sc_client_options_t o = {.endpoint = ep};
    sc_client_t *c = sc_client_new(&o);
    send_traces(c, 1000);
    /* Nothing forced a write of the last few KiB but the barrier. */
    assert_int_equal(sc_client_flush_sync(c, 5000), 0);
    assert_int_equal(sidecar_stat(ep, "trace"), 1000);
    sc_client_free(c);
    assert_int_equal(th_sidecar_stop(pid, false), 0);
}

static void reconnect_sends_hello_again(void **state)
{
    (void)state;
    char ep[128];
    th_endpoint(ep, sizeof ep, "reconnect");
    int pid = th_sidecar_start(ep, NULL);
    sc_client_options_t o = {
        .endpoint = ep, .reconnect_min_ms = 1, .reconnect_max_ms = 1};
    sc_client_t *c = sc_client_new(&o);
    send_traces(c, 10);
    assert_int_equal(sc_client_flush_sync(c, 5000), 0);
    assert_int_equal(th_sidecar_stop(pid, false), 0);

    /* Sidecar gone: actions stay buffered (below the cap), nothing blocks. */
    send_traces(c, 20);
    assert_true(sc_client_flush(c) != 0);

    pid = th_sidecar_start(ep, NULL);
    assert_true(pid > 0);
    assert_int_equal(sc_client_flush_sync(c, 5000), 0);
    /* th_sidecar_start's own probe client said Hello once as well. */
    assert_int_equal(sidecar_stat(ep, "trace"), 20);
    uint64_t hellos = sidecar_stat(ep, "hello");
    assert_true(hellos >= 2);
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.enqueued[SC_ACTION_TRACE], 30);
    sc_client_free(c);
    assert_int_equal(th_sidecar_stop(pid, false), 0);
}

static void full_buffer_drops_whole_actions_and_counts(void **state)
{
    (void)state;
    char ep[128];
    th_endpoint(ep, sizeof ep, "nobody");
    sc_client_options_t o = {.endpoint = ep, .buffer_cap = 4096};
    sc_client_t *c = sc_client_new(&o);
    uint8_t payload[64];
    int dropped = 0;
    for (int i = 0; i < 1000; i++) {
        size_t len = th_trace_payload(payload, (uint64_t)i);
        if (sc_client_send_trace(c, payload, len, 1) == SC_EDROPPED) {
            dropped++;
        }
    }
    sc_client_stats_t st;
    sc_client_stats(c, &st);
    assert_true(dropped > 0);
    assert_int_equal(st.dropped_full[SC_ACTION_TRACE], (uint64_t)dropped);
    assert_int_equal(st.enqueued[SC_ACTION_TRACE] + (uint64_t)dropped, 1000);
    assert_true(st.buffered_bytes <= 4096);
    sc_client_free(c);
}

#define THREADS    4
#define PER_THREAD 5000

static void sender_thread(void *arg)
{
    send_traces(arg, PER_THREAD);
}

static void threads_share_one_client(void **state)
{
    (void)state;
    char ep[128];
    th_endpoint(ep, sizeof ep, "threads");
    int pid = th_sidecar_start(ep, NULL);
    sc_client_options_t o = {.endpoint = ep, .enqueue_budget_us = 100000};
    sc_client_t *c = sc_client_new(&o);
    uv_thread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(uv_thread_create(&t[i], sender_thread, c), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        uv_thread_join(&t[i]);
    }
    assert_int_equal(sc_client_flush_sync(c, 5000), 0);
    assert_int_equal(sidecar_stat(ep, "trace"), THREADS * PER_THREAD);
    assert_int_equal(sidecar_stat(ep, "decode_errors"), 0);
    sc_client_free(c);
    assert_int_equal(th_sidecar_stop(pid, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ping_round_trip),
        cmocka_unit_test(flush_barrier_covers_earlier_actions),
        cmocka_unit_test(reconnect_sends_hello_again),
        cmocka_unit_test(full_buffer_drops_whole_actions_and_counts),
        cmocka_unit_test(threads_share_one_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
