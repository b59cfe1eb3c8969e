/* The flag-evaluation aggregator: identity, tiers, caps, drain, kill switch
 * (docs/flag-evaluations.md). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "flageval.h"
#include "log.h"
#include "process.h"
#include "test_flageval_common.h"

static sc_flageval_t *new_aggregator(size_t global_cap, size_t per_flag_cap,
                                     size_t degraded_cap)
{
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.global_cap = global_cap;
    cfg.per_flag_cap = per_flag_cap;
    cfg.degraded_cap = degraded_cap;
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    assert_non_null(agg);
    return agg;
}

static bool view_is(sc_view_t v, const char *s)
{
    if (s == NULL) {
        return v.ptr == NULL;
    }
    return v.ptr != NULL && v.len == strlen(s) && memcmp(v.ptr, s, v.len) == 0;
}

static sc_flageval_bucket_view_t bucket(const sc_flageval_batch_t *b, size_t i)
{
    sc_flageval_bucket_view_t v;
    assert_true(i < b->count);
    sc_flageval_batch_bucket(b, i, &v);
    return v;
}

static size_t count_tier(const sc_flageval_batch_t *b, bool degraded)
{
    size_t n = 0;
    for (size_t i = 0; i < b->count; i++) {
        n += bucket(b, i).degraded == degraded;
    }
    return n;
}

static void test_kill_switch_values(void **state)
{
    (void)state;
    assert_true(sc_flageval_counts_enabled(NULL));
    assert_true(sc_flageval_counts_enabled(""));
    assert_true(sc_flageval_counts_enabled("true"));
    assert_true(sc_flageval_counts_enabled("1"));
    assert_true(sc_flageval_counts_enabled("nope"));
    assert_true(sc_flageval_counts_enabled("offf"));
    const char *off[] = {"false", "FALSE", "False", "0",    "no",
                         "NO",    "off",   "Off",   " off", "false\n"};
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        assert_false(sc_flageval_counts_enabled(off[i]));
    }
}

static void test_disabled_leaves_aggregator_untouched(void **state)
{
    (void)state;
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.enabled = sc_flageval_counts_enabled("off");
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    sc_flageval_eval_t ev = evaluation("f", "u");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_DISABLED);
    assert_int_equal(sc_flageval_merge(agg, &ev, 5, 1, 2, false),
                     SC_FLAGEVAL_DISABLED);
    sc_flageval_add_dropped(agg, 7);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.evaluations, 0);
    assert_int_equal(st.full_buckets + st.degraded_buckets, 0);
    assert_int_equal(st.pending_dropped, 0);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.dropped, 0);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_process_aggregator(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_process();
    assert_non_null(agg);
    assert_ptr_equal(agg, sc_flageval_process());
    assert_int_equal(
        sc_flageval_enabled(agg),
        sc_flageval_counts_enabled(getenv(SC_FLAGEVAL_ENABLED_ENV)));
}

static void test_same_evaluation_one_bucket_min_max(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    int64_t times[] = {500, 100, 300};
    for (size_t i = 0; i < 3; i++) {
        sc_flageval_eval_t ev = evaluation("f", "u");
        ev.timestamp_ms = times[i];
        assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    }
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 1);
    sc_flageval_bucket_view_t v = bucket(&b, 0);
    assert_int_equal(v.evaluation_count, 3);
    assert_int_equal(v.first_evaluation_ms, 100);
    assert_int_equal(v.last_evaluation_ms, 500);
    assert_false(v.degraded);
    assert_true(view_is(v.flag_key, "f"));
    assert_true(view_is(v.variant_key, "on"));
    assert_true(view_is(v.allocation_key, "alloc-1"));
    assert_true(view_is(v.reason, "TARGETING_MATCH"));
    assert_true(view_is(v.targeting_key, "u"));
    assert_true(view_is(v.targeting_rule_key, "rule-1"));
    assert_true(view_is(v.error_message, NULL));
    assert_int_equal(b.evaluations, 3);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_timestamp_zero_means_now(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_eval_t ev = evaluation("f", "u");
    ev.timestamp_ms = 0;
    int64_t before = sc_flageval_now_ms();
    sc_flageval_record(agg, &ev);
    int64_t after = sc_flageval_now_ms();
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_in_range(bucket(&b, 0).first_evaluation_ms, before, after);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

/* Each of the five dimensions splits buckets; rule and error do not. */
static void test_identity_dimensions(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_eval_t base = evaluation("f", "u");
    sc_flageval_eval_t evs[7];
    for (size_t i = 0; i < 7; i++) {
        evs[i] = base;
    }
    evs[1].flag_key = sc_view_str("g");
    evs[2].variant_key = sc_view_str("off");
    evs[3].allocation_key = sc_view_str("alloc-2");
    evs[4].reason = sc_view_str("SPLIT");
    evs[5].targeting_key = sc_view_str("v");
    /* Same identity as evs[0], other rule and error, and earlier: the
     * bucket then carries these. */
    evs[6].targeting_rule_key = sc_view_str("rule-2");
    evs[6].error_message = sc_view_str("boom");
    evs[6].timestamp_ms = base.timestamp_ms - 10;
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(sc_flageval_record(agg, &evs[i]), SC_FLAGEVAL_FULL);
    }
    /* A later one with yet another rule changes nothing. */
    sc_flageval_eval_t later = base;
    later.targeting_rule_key = sc_view_str("rule-3");
    later.timestamp_ms = base.timestamp_ms + 10;
    sc_flageval_record(agg, &later);

    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 6);
    size_t found = 0;
    for (size_t i = 0; i < b.count; i++) {
        sc_flageval_bucket_view_t v = bucket(&b, i);
        if (view_is(v.flag_key, "f") && view_is(v.variant_key, "on") &&
            view_is(v.allocation_key, "alloc-1") &&
            view_is(v.reason, "TARGETING_MATCH") &&
            view_is(v.targeting_key, "u")) {
            found++;
            assert_int_equal(v.evaluation_count, 3);
            assert_true(view_is(v.targeting_rule_key, "rule-2"));
            assert_true(view_is(v.error_message, "boom"));
            assert_int_equal(v.first_evaluation_ms, base.timestamp_ms - 10);
            assert_int_equal(v.last_evaluation_ms, base.timestamp_ms + 10);
        } else {
            assert_int_equal(v.evaluation_count, 1);
        }
    }
    assert_int_equal(found, 1);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_absent_and_empty_are_distinct(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_view_t absent = sc_view_bytes(NULL, 0), empty = sc_view_bytes("", 0);
    sc_flageval_eval_t evs[8];
    for (size_t i = 0; i < 8; i++) {
        evs[i] = evaluation("f", "u");
    }
    evs[0].variant_key = absent;
    evs[1].variant_key = empty;
    evs[2].allocation_key = absent;
    evs[3].allocation_key = empty;
    evs[4].reason = absent;
    evs[5].reason = empty;
    evs[6].targeting_key = absent;
    evs[7].targeting_key = empty;
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(sc_flageval_record(agg, &evs[i]), SC_FLAGEVAL_FULL);
    }
    /* A context attribute with an empty string value is a context. */
    sc_flageval_attr_t attr = sc_flageval_attr_string("k", "");
    sc_flageval_eval_t with_ctx = evaluation("f", "u");
    sc_flageval_eval_t without_ctx = with_ctx;
    with_ctx.context = &attr;
    with_ctx.context_len = 1;
    sc_flageval_record(agg, &with_ctx);
    sc_flageval_record(agg, &without_ctx);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 10);
    size_t defaults = 0;
    for (size_t i = 0; i < b.count; i++) {
        sc_flageval_bucket_view_t v = bucket(&b, i);
        assert_int_equal(v.evaluation_count, 1);
        defaults += v.runtime_default_used;
    }
    assert_int_equal(defaults, 2); /* absent and empty variant */
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_string_one_and_number_one_differ(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_attr_t as_string = sc_flageval_attr_string("n", "1");
    sc_flageval_attr_t as_number = sc_flageval_attr_number("n", 1.0);
    sc_flageval_attr_t as_bool = sc_flageval_attr_bool("n", true);
    sc_flageval_attr_t *attrs[] = {&as_string, &as_number, &as_bool};
    for (size_t i = 0; i < 3; i++) {
        sc_flageval_eval_t ev = evaluation("f", "u");
        ev.context = attrs[i];
        ev.context_len = 1;
        sc_flageval_record(agg, &ev);
        sc_flageval_record(agg, &ev);
    }
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(bucket(&b, i).evaluation_count, 2);
    }
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_context_order_does_not_matter(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_attr_t a[] = {sc_flageval_attr_string("country", "FR"),
                              sc_flageval_attr_number("age", 42),
                              sc_flageval_attr_bool("beta", true)};
    sc_flageval_attr_t reversed[] = {a[2], a[1], a[0]};
    sc_flageval_eval_t ev = evaluation("f", "u");
    ev.context = a;
    ev.context_len = 3;
    sc_flageval_record(agg, &ev);
    ev.context = reversed;
    sc_flageval_record(agg, &ev);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 1);
    assert_int_equal(bucket(&b, 0).evaluation_count, 2);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_runtime_default_follows_variant_only(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_eval_t assigned = evaluation("a", "u");
    assigned.reason = sc_view_str("DEFAULT"); /* reason says default */
    sc_flageval_eval_t missing = evaluation("b", "u");
    missing.variant_key = sc_view_bytes(NULL, 0);
    missing.reason = sc_view_str("TARGETING_MATCH");
    sc_flageval_eval_t error = evaluation("c", "u");
    error.variant_key = sc_view_bytes(NULL, 0);
    error.reason = sc_view_str("ERROR");
    error.error_message = sc_view_str("FLAG_NOT_FOUND");
    sc_flageval_record(agg, &assigned);
    sc_flageval_record(agg, &missing);
    sc_flageval_record(agg, &error);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 3);
    assert_false(bucket(&b, 0).runtime_default_used); /* flag a */
    assert_true(bucket(&b, 1).runtime_default_used);
    assert_true(bucket(&b, 2).runtime_default_used);
    assert_true(view_is(bucket(&b, 2).error_message, "FLAG_NOT_FOUND"));
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_per_flag_cap_sends_new_keys_to_degraded(void **state)
{
    (void)state;
    sc_flageval_t *agg = new_aggregator(100, 3, 10);
    char tk[16];
    for (int i = 0; i < 5; i++) {
        snprintf(tk, sizeof tk, "user-%d", i);
        sc_flageval_eval_t ev = evaluation("capped", tk);
        assert_int_equal(sc_flageval_record(agg, &ev),
                         i < 3 ? SC_FLAGEVAL_FULL : SC_FLAGEVAL_DEGRADED);
    }
    /* Known keys of the capped flag still count in their full bucket. */
    sc_flageval_eval_t known = evaluation("capped", "user-0");
    assert_int_equal(sc_flageval_record(agg, &known), SC_FLAGEVAL_FULL);
    /* Other flags are not affected. */
    sc_flageval_eval_t other = evaluation("other", "user-9");
    assert_int_equal(sc_flageval_record(agg, &other), SC_FLAGEVAL_FULL);

    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(count_tier(&b, false), 4);
    assert_int_equal(count_tier(&b, true), 1);
    sc_flageval_bucket_view_t d = bucket(&b, b.count - 1);
    assert_true(d.degraded);
    assert_int_equal(d.evaluation_count, 2);
    assert_true(view_is(d.flag_key, "capped"));
    assert_true(view_is(d.variant_key, "on"));
    assert_true(view_is(d.allocation_key, "alloc-1"));
    assert_true(view_is(d.reason, "TARGETING_MATCH"));
    assert_true(view_is(d.targeting_key, NULL));
    assert_true(view_is(d.targeting_rule_key, NULL));
    assert_int_equal(d.context.len, 0);
    /* The cap restarts after a drain. */
    sc_flageval_eval_t again = evaluation("capped", "user-4");
    assert_int_equal(sc_flageval_record(agg, &again), SC_FLAGEVAL_FULL);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_global_cap_sends_new_keys_to_degraded(void **state)
{
    (void)state;
    sc_flageval_t *agg = new_aggregator(4, 100, 10);
    char flag[16];
    for (int i = 0; i < 6; i++) {
        snprintf(flag, sizeof flag, "flag-%d", i);
        sc_flageval_eval_t ev = evaluation(flag, "u");
        assert_int_equal(sc_flageval_record(agg, &ev),
                         i < 4 ? SC_FLAGEVAL_FULL : SC_FLAGEVAL_DEGRADED);
    }
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.full_buckets, 4);
    assert_int_equal(st.degraded_buckets, 2);
    sc_flageval_free(agg);
}

static void test_full_bytes_cap_sends_new_keys_to_degraded(void **state)
{
    (void)state;
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.full_bytes_cap = 600; /* room for a couple of small buckets */
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    char tk[16];
    size_t full = 0, degraded = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(tk, sizeof tk, "user-%d", i);
        sc_flageval_eval_t ev = evaluation("f", tk);
        sc_flageval_outcome_t o = sc_flageval_record(agg, &ev);
        full += o == SC_FLAGEVAL_FULL;
        degraded += o == SC_FLAGEVAL_DEGRADED;
    }
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_true(full >= 1 && full < 20);
    assert_int_equal(full + degraded, 20);
    assert_true(st.full_bytes <= cfg.full_bytes_cap);
    sc_flageval_free(agg);
}

/* Logs go to a file so that the drain's warning can be checked. */
static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_degraded_cap_drops_and_drain_warns(void **state)
{
    (void)state;
    const char *log_path = "test_flageval_drain.log";
    remove(log_path);
    assert_int_equal(sc_log_configure(SC_LOG_WARN, log_path), 0);
    sc_flageval_t *agg = new_aggregator(1, 1, 2);
    char flag[16];
    sc_flageval_outcome_t expect[] = {SC_FLAGEVAL_FULL, SC_FLAGEVAL_DEGRADED,
                                      SC_FLAGEVAL_DEGRADED, SC_FLAGEVAL_DROPPED,
                                      SC_FLAGEVAL_DROPPED};
    for (int i = 0; i < 5; i++) {
        snprintf(flag, sizeof flag, "flag-%d", i);
        sc_flageval_eval_t ev = evaluation(flag, "u");
        assert_int_equal(sc_flageval_record(agg, &ev), expect[i]);
    }
    /* An existing degraded bucket still counts. */
    sc_flageval_eval_t ev = evaluation("flag-1", "someone-else");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_DEGRADED);

    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.evaluations, 4);
    assert_int_equal(b.dropped, 2);
    assert_int_equal(b.dropped_overflow, 2);
    assert_int_equal(b.evaluations + b.dropped, 6);
    sc_flageval_batch_free(&b);
    sc_log_configure(SC_LOG_WARN, NULL);
    assert_true(file_contains(log_path, "2 not counted in any bucket"));

    /* Drained: the dropped counter restarted. */
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.dropped, 0);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
    remove(log_path);
}

/* The real caps: the 10 001st distinct context of one flag is degraded,
 * other flags stay in the full tier. */
static void test_default_per_flag_cap(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_eval_t ev = evaluation("big", "u");
    sc_flageval_attr_t attr;
    ev.context = &attr;
    ev.context_len = 1;
    for (int i = 0; i < (int)SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP; i++) {
        attr = sc_flageval_attr_number("i", i);
        assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    }
    attr = sc_flageval_attr_number("i", SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_DEGRADED);
    attr = sc_flageval_attr_number("i", 17);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    sc_flageval_eval_t other = evaluation("small", "u");
    other.context = &attr;
    other.context_len = 1;
    attr = sc_flageval_attr_number("i", 123456);
    assert_int_equal(sc_flageval_record(agg, &other), SC_FLAGEVAL_FULL);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.full_buckets, SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP + 1);
    assert_int_equal(st.degraded_buckets, 1);
    assert_int_equal(st.evaluations, SC_FLAGEVAL_DEFAULT_PER_FLAG_CAP + 3);
    sc_flageval_free(agg);
}

static void test_drain_resets_everything(void **state)
{
    (void)state;
    sc_flageval_t *agg = new_aggregator(2, 2, 1);
    char tk[16];
    for (int i = 0; i < 6; i++) {
        snprintf(tk, sizeof tk, "u%d", i);
        sc_flageval_eval_t ev = evaluation(i % 2 ? "a" : "b", tk);
        sc_flageval_record(agg, &ev);
    }
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.evaluations + b.dropped, 6);
    assert_true(b.dropped > 0);
    sc_flageval_batch_free(&b);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.full_buckets, 0);
    assert_int_equal(st.degraded_buckets, 0);
    assert_int_equal(st.full_bytes, 0);
    assert_int_equal(st.pending_dropped, 0);
    assert_int_equal(st.evaluations, 6); /* lifetime, not reset */
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.dropped, 0);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void fill(char *s, size_t n)
{
    memset(s, 'x', n);
    s[n] = '\0';
}

static void test_rejections_are_counted(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    char at_limit[SC_FLAGEVAL_MAX_KEY_LEN + 1];
    char over[SC_FLAGEVAL_MAX_KEY_LEN + 2];
    fill(at_limit, SC_FLAGEVAL_MAX_KEY_LEN);
    fill(over, SC_FLAGEVAL_MAX_KEY_LEN + 1);

    sc_flageval_eval_t ev = evaluation(NULL, "u");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);
    ev = evaluation("", "u");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);
    ev = evaluation(over, "u");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);
    ev = evaluation("f", "u");
    ev.variant_key = sc_view_str(over);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);
    ev = evaluation("f", "u");
    ev.reason = sc_view_str(over);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);
    ev = evaluation("f", "u");
    ev.allocation_key = sc_view_str(over);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_REJECTED);

    ev = evaluation(at_limit, "u");
    ev.variant_key = sc_view_str(at_limit);
    ev.allocation_key = sc_view_str(at_limit);
    ev.reason = sc_view_str(at_limit);
    ev.targeting_key = sc_view_str(at_limit);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);

    /* A targeting key over the limit: counted, in the degraded tier. */
    ev = evaluation("f", over);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_DEGRADED);

    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.rejected, 6);
    assert_int_equal(b.dropped, 6);
    assert_int_equal(b.evaluations, 2);
    assert_int_equal(count_tier(&b, true), 1);
    sc_flageval_batch_free(&b);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.rejected, 6);
    assert_int_equal(st.degraded_long_key, 1);
    sc_flageval_free(agg);
}

static void test_rule_and_error_limits(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    char over[SC_FLAGEVAL_MAX_KEY_LEN + 2];
    fill(over, SC_FLAGEVAL_MAX_KEY_LEN + 1);
    /* 1023 ASCII bytes then a 3-byte character straddling the limit. */
    char message[SC_FLAGEVAL_MAX_ERROR_LEN + 8];
    memset(message, 'e', SC_FLAGEVAL_MAX_ERROR_LEN - 1);
    memcpy(message + SC_FLAGEVAL_MAX_ERROR_LEN - 1, "\xE2\x82\xAC tail", 8);
    message[SC_FLAGEVAL_MAX_ERROR_LEN + 7] = '\0';
    sc_flageval_eval_t ev = evaluation("f", "u");
    ev.targeting_rule_key = sc_view_str(over);
    ev.error_message = sc_view_str(message);
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    sc_flageval_bucket_view_t v = bucket(&b, 0);
    assert_null(v.targeting_rule_key.ptr);
    assert_int_equal(v.error_message.len, SC_FLAGEVAL_MAX_ERROR_LEN - 1);
    assert_memory_equal(v.error_message.ptr, message, v.error_message.len);
    sc_flageval_batch_free(&b);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.strings_shortened, 2);
    sc_flageval_free(agg);
}

static void test_merge_adds_counts_and_keeps_tiers(void **state)
{
    (void)state;
    sc_flageval_t *agg = sc_flageval_new(NULL);
    sc_flageval_eval_t ev = evaluation("f", "u");
    assert_int_equal(sc_flageval_merge(agg, &ev, 5, 10, 20, false),
                     SC_FLAGEVAL_FULL);
    assert_int_equal(sc_flageval_merge(agg, &ev, 2, 5, 15, false),
                     SC_FLAGEVAL_FULL);
    /* A degraded bucket stays degraded though the full tier has room. */
    assert_int_equal(sc_flageval_merge(agg, &ev, 3, 30, 40, true),
                     SC_FLAGEVAL_DEGRADED);
    sc_flageval_add_dropped(agg, 4);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 2);
    sc_flageval_bucket_view_t full = bucket(&b, 0), deg = bucket(&b, 1);
    assert_int_equal(full.evaluation_count, 7);
    assert_int_equal(full.first_evaluation_ms, 5);
    assert_int_equal(full.last_evaluation_ms, 20);
    assert_true(deg.degraded);
    assert_int_equal(deg.evaluation_count, 3);
    assert_null(deg.targeting_key.ptr);
    assert_int_equal(b.dropped, 4);
    assert_int_equal(b.dropped_upstream, 4);
    assert_int_equal(b.evaluations + b.dropped, 14);
    sc_flageval_batch_free(&b);
    sc_flageval_free(agg);
}

static void test_after_fork_child_discards(void **state)
{
    (void)state;
    sc_flageval_t *agg = new_aggregator(1, 1, 1);
    for (int i = 0; i < 3; i++) {
        sc_flageval_eval_t ev = evaluation(i == 0 ? "a" : "b", "u");
        sc_flageval_record(agg, &ev);
    }
    sc_flageval_after_fork_child(agg);
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    assert_int_equal(b.count, 0);
    assert_int_equal(b.dropped, 0);
    sc_flageval_batch_free(&b);
    sc_flageval_eval_t ev = evaluation("a", "u");
    assert_int_equal(sc_flageval_record(agg, &ev), SC_FLAGEVAL_FULL);
    sc_flageval_free(agg);
}

/* ---- random load ------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void)
{
    return next_random(&rng_state);
}

/* Checks the caps on a drained batch and adds up what it counts. */
static uint64_t check_batch(const sc_flageval_batch_t *b,
                            const sc_flageval_config_t *cfg)
{
    size_t full = 0, degraded = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < b->count; i++) {
        sc_flageval_bucket_view_t v = bucket(b, i);
        assert_true(v.evaluation_count >= 1);
        assert_true(v.first_evaluation_ms <= v.last_evaluation_ms);
        full += !v.degraded;
        degraded += v.degraded;
        sum += v.evaluation_count;
        /* Per flag: buckets sorted by identity keep one flag together. */
        if (!v.degraded) {
            size_t same_flag = 0;
            for (size_t k = 0; k < b->count; k++) {
                sc_flageval_bucket_view_t w = bucket(b, k);
                same_flag +=
                    !w.degraded && w.flag_key.len == v.flag_key.len &&
                    memcmp(w.flag_key.ptr, v.flag_key.ptr, v.flag_key.len) == 0;
            }
            assert_true(same_flag <= cfg->per_flag_cap);
        }
    }
    assert_true(full <= cfg->global_cap);
    assert_true(degraded <= cfg->degraded_cap);
    assert_int_equal(sum, b->evaluations);
    return sum + b->dropped;
}

static void test_random_load_invariant(void **state)
{
    (void)state;
    rng_state = random_seed("flageval random load");
    sc_flageval_config_t cfg;
    sc_flageval_config_default(&cfg);
    cfg.global_cap = 40;
    cfg.per_flag_cap = 12;
    cfg.degraded_cap = 15;
    sc_flageval_t *agg = sc_flageval_new(&cfg);
    uint64_t offered = 0, accounted = 0;
    for (int round = 0; round < 20000; round++) {
        char flag[16], tk[16], variant[8];
        snprintf(flag, sizeof flag, "flag-%d", (int)(rng() % 9));
        snprintf(tk, sizeof tk, "user-%d", (int)(rng() % 30));
        snprintf(variant, sizeof variant, "v%d", (int)(rng() % 3));
        sc_flageval_attr_t attrs[3] = {
            sc_flageval_attr_number("n", (double)(rng() % 4)),
            sc_flageval_attr_string("s", (rng() % 2) ? "a" : "b"),
            sc_flageval_attr_bool("b", rng() % 2)};
        sc_flageval_eval_t ev = evaluation(flag, tk);
        ev.variant_key = sc_view_str((rng() % 5) ? variant : NULL);
        ev.context = attrs;
        ev.context_len = rng() % 4;
        ev.timestamp_ms = 1000 + (int64_t)(rng() % 1000);
        if (rng() % 50 == 0) {
            ev.flag_key = sc_view_bytes("", 0); /* rejected, counted */
        }
        uint64_t r = rng() % 100;
        if (r < 90) {
            sc_flageval_record(agg, &ev);
            offered++;
        } else if (r < 97) {
            uint64_t count = 1 + rng() % 5;
            sc_flageval_merge(agg, &ev, count, ev.timestamp_ms,
                              ev.timestamp_ms + 5, rng() % 2);
            offered += count;
        } else if (r < 98) {
            uint64_t n = rng() % 3;
            sc_flageval_add_dropped(agg, n);
            offered += n;
        } else {
            sc_flageval_batch_t b;
            sc_flageval_drain(agg, &b);
            accounted += check_batch(&b, &cfg);
            sc_flageval_batch_free(&b);
        }
    }
    sc_flageval_batch_t b;
    sc_flageval_drain(agg, &b);
    accounted += check_batch(&b, &cfg);
    sc_flageval_batch_free(&b);
    assert_int_equal(accounted, offered);
    sc_flageval_stats_t st;
    sc_flageval_get_stats(agg, &st);
    assert_int_equal(st.evaluations, offered);
    assert_true(st.dropped_overflow > 0); /* the caps were exercised */
    sc_flageval_free(agg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_switch_values),
        cmocka_unit_test(test_disabled_leaves_aggregator_untouched),
        cmocka_unit_test(test_process_aggregator),
        cmocka_unit_test(test_same_evaluation_one_bucket_min_max),
        cmocka_unit_test(test_timestamp_zero_means_now),
        cmocka_unit_test(test_identity_dimensions),
        cmocka_unit_test(test_absent_and_empty_are_distinct),
        cmocka_unit_test(test_string_one_and_number_one_differ),
        cmocka_unit_test(test_context_order_does_not_matter),
        cmocka_unit_test(test_runtime_default_follows_variant_only),
        cmocka_unit_test(test_per_flag_cap_sends_new_keys_to_degraded),
        cmocka_unit_test(test_global_cap_sends_new_keys_to_degraded),
        cmocka_unit_test(test_full_bytes_cap_sends_new_keys_to_degraded),
        cmocka_unit_test(test_degraded_cap_drops_and_drain_warns),
        cmocka_unit_test(test_default_per_flag_cap),
        cmocka_unit_test(test_drain_resets_everything),
        cmocka_unit_test(test_rejections_are_counted),
        cmocka_unit_test(test_rule_and_error_limits),
        cmocka_unit_test(test_merge_adds_counts_and_keeps_tiers),
        cmocka_unit_test(test_after_fork_child_discards),
        cmocka_unit_test(test_random_load_invariant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
