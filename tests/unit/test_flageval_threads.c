/* Concurrency: threads record (and merge) while another drains over and
 * over; nothing is lost or counted twice. Run it under TSan too (see
 * docs/flag-evaluations.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "flageval.h"
#include "test_flageval_common.h"

enum { RECORDERS = 3, PER_THREAD = 30000 };

typedef struct shared {
    sc_flageval_t *agg;
    uint64_t seed;
    uv_mutex_t lock; /* guards `running` */
    int running;
} shared_t;

typedef struct worker {
    shared_t *shared;
    int index;
    uint64_t offered; /* evaluations handed to the aggregator */
    uint64_t drained; /* drainer: counts + dropped seen */
    uint64_t drains;
    uint64_t bad_buckets;
} worker_t;

static void record_thread(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = w->shared->seed + (uint64_t)w->index * 7919 + 1;
    for (int i = 0; i < PER_THREAD; i++) {
        char flag[16], tk[16];
        snprintf(flag, sizeof flag, "flag-%d", (int)(next_random(&rng) % 6));
        snprintf(tk, sizeof tk, "u%d", (int)(next_random(&rng) % 40));
        sc_flageval_attr_t attrs[5] = {
            sc_flageval_attr_string("country", "FR"),
            sc_flageval_attr_number("n", (double)(next_random(&rng) % 3)),
            sc_flageval_attr_bool("beta", next_random(&rng) % 2),
            sc_flageval_attr_string("plan", "pro"),
            sc_flageval_attr_number("age", 30)};
        sc_flageval_eval_t ev = {
            .flag_key = sc_view_str(next_random(&rng) % 100 ? flag : ""),
            .variant_key = sc_view_str("on"),
            .reason = sc_view_str("SPLIT"),
            .targeting_key = sc_view_str(tk),
            .context = attrs,
            .context_len = 5,
            .timestamp_ms = 1000 + i,
        };
        if (w->index == 0 && i % 10 == 0) {
            /* One thread also merges pre-aggregated buckets and drops. */
            uint64_t count = 1 + next_random(&rng) % 4;
            sc_flageval_merge(w->shared->agg, &ev, count, 5, 9,
                              next_random(&rng) % 2);
            sc_flageval_add_dropped(w->shared->agg, 1);
            w->offered += count + 1;
        } else {
            sc_flageval_record(w->shared->agg, &ev);
            w->offered++;
        }
    }
    uv_mutex_lock(&w->shared->lock);
    w->shared->running--;
    uv_mutex_unlock(&w->shared->lock);
}

static uint64_t drain_once(sc_flageval_t *agg, uint64_t *bad_buckets)
{
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    uint64_t sum = 0;
    for (size_t i = 0; i < b.count; i++) {
        sc_flageval_bucket_view_t v;
        sc_flageval_batch_bucket(&b, i, &v);
        sum += v.evaluation_count;
        *bad_buckets += v.evaluation_count == 0 ||
                        v.first_evaluation_ms > v.last_evaluation_ms;
    }
    *bad_buckets += sum != b.evaluations;
    sum += b.dropped;
    sc_flageval_batch_free(&b);
    return sum;
}

static void drain_thread(void *arg)
{
    worker_t *w = arg;
    for (;;) {
        uv_mutex_lock(&w->shared->lock);
        int running = w->shared->running;
        uv_mutex_unlock(&w->shared->lock);
        if (running == 0) {
            break;
        }
        w->drained += drain_once(w->shared->agg, &w->bad_buckets);
        w->drains++;
    }
}

static void test_record_while_draining(void **state)
{
    (void)state;
    shared_t shared = {.running = RECORDERS};
    shared.seed = random_seed("flageval threads");
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.global_cap = 64;
    cfg.per_flag_cap = 16;
    cfg.degraded_cap = 4;
    shared.agg = sc_flageval_new(&cfg);
    assert_non_null(shared.agg);
    assert_int_equal(uv_mutex_init(&shared.lock), 0);

    worker_t workers[RECORDERS + 1] = {{0}};
    uv_thread_t threads[RECORDERS + 1];
    for (int i = 0; i <= RECORDERS; i++) {
        workers[i].shared = &shared;
        workers[i].index = i;
        assert_int_equal(
            uv_thread_create(&threads[i],
                             i < RECORDERS ? record_thread : drain_thread,
                             &workers[i]),
            0);
    }
    for (int i = 0; i <= RECORDERS; i++) {
        assert_int_equal(uv_thread_join(&threads[i]), 0);
    }
    worker_t *drainer = &workers[RECORDERS];
    uint64_t offered = 0;
    for (int i = 0; i < RECORDERS; i++) {
        offered += workers[i].offered;
    }
    uint64_t final = drain_once(shared.agg, &drainer->bad_buckets);
    printf("offered %" PRIu64 ", drained %" PRIu64 " in %" PRIu64
           " drains while recording, %" PRIu64 " at the end\n",
           offered, drainer->drained, drainer->drains, final);
    assert_int_equal(drainer->drained + final, offered);
    assert_int_equal(drainer->bad_buckets, 0);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(shared.agg, &st);
    assert_int_equal(st.evaluations, offered);
    assert_true(st.dropped_overflow > 0); /* every tier was reached */
    uv_mutex_destroy(&shared.lock);
    sc_flageval_free(shared.agg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_while_draining),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
