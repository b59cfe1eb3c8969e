/* Helpers shared by the flag-evaluation tests (header-only: each test is
 * one program). */
#ifndef SIDECAR_TEST_FLAGEVAL_COMMON_H
#define SIDECAR_TEST_FLAGEVAL_COMMON_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "flageval.h"

/* An evaluation with every identity string present (and a rule key); tests
 * change what they need. */
static inline sc_flageval_eval_t evaluation(const char *flag,
                                            const char *targeting)
{
    sc_flageval_eval_t ev = {
        .flag_key = sc_view_str(flag),
        .variant_key = sc_view_str("on"),
        .allocation_key = sc_view_str("alloc-1"),
        .reason = sc_view_str("TARGETING_MATCH"),
        .targeting_key = sc_view_str(targeting),
        .targeting_rule_key = sc_view_str("rule-1"),
        .timestamp_ms = 1700000000000,
    };
    return ev;
}

/* xorshift64*: a small PRNG whose runs replay from their seed. */
static inline uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

/* FLAGEVAL_SEED from the environment, else the clock; printed so that a
 * failing run can be replayed. */
static inline uint64_t random_seed(const char *test)
{
    const char *env = getenv("FLAGEVAL_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : uv_hrtime();
    printf("%s: FLAGEVAL_SEED=%" PRIu64 "\n", test, seed);
    return seed != 0 ? seed : 1;
}

#endif
