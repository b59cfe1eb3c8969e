/* Fuzz target of the reader of agent answers (src/common/agent_info.c):
 * /info documents and /v0.4/traces answers. Whatever the bytes, the
 * reader returns (no crash, no sanitizer report, no leak), and what it
 * accepts is consistent: the raw text kept is the input, every endpoint is
 * a string, the agent version is printable and NUL-terminated, a
 * rate_by_service it finds reads back as an object.
 *
 * Built as a libFuzzer binary (fuzz_json, -DSIDECAR_FUZZ=ON, clang) and, in
 * every build, with SC_FUZZ_JSON_DRIVER as its own driver: the seed
 * documents below, then seeded mutations (SIDECAR_TEST_SEED), which CTest
 * runs as fuzz_json_smoke (also under Wine). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_info.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_json: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    sc_agent_info_t info;
    memset(&info, 0, sizeof info);
    if (sc_agent_info_parse(json, size, &info)) {
        if (!info.valid || info.raw_len != size ||
            memcmp(info.raw_json, json, size) != 0 ||
            info.raw_json[size] != '\0') {
            fail("accepted /info not kept whole");
        }
        if (memchr(info.version, 0, sizeof info.version) == NULL) {
            fail("agent version without its NUL");
        }
        for (const char *p = info.version; *p != '\0'; p++) {
            if (*p < 0x20 || *p > 0x7e) {
                fail("agent version not printable");
            }
        }
        for (size_t i = 0; i < info.endpoint_count; i++) {
            if (info.endpoints[i] == NULL ||
                !sc_agent_info_has_endpoint(&info, info.endpoints[i])) {
                fail("endpoint not found back");
            }
        }
        /* Parsing again replaces what is held (no leak, same result). */
        size_t count = info.endpoint_count;
        if (!sc_agent_info_parse(json, size, &info) ||
            info.endpoint_count != count) {
            fail("second parse differs");
        }
    }
    sc_agent_info_free(&info);
    size_t len = 0;
    char *rates = sc_agent_rates_parse(json, size, &len);
    if (rates != NULL) {
        /* What is kept is itself one JSON object the reader accepts. */
        char *wrapped = malloc(len + 32);
        if (wrapped == NULL) {
            fail("out of memory");
        }
        int n = snprintf(wrapped, len + 32, "{\"rate_by_service\":%s}", rates);
        size_t again_len = 0;
        char *again = sc_agent_rates_parse(wrapped, (size_t)n, &again_len);
        if (again == NULL || again_len != len || memcmp(again, rates, len)) {
            fail("rates do not read back");
        }
        free(again);
        free(wrapped);
        free(rates);
    }
    return 0;
}

#ifdef SC_FUZZ_JSON_DRIVER
static const char *const seeds[] = {
    "{\"version\":\"7.50.0\",\"endpoints\":[\"/v0.4/traces\",\"/v0.5/traces\","
    "\"/evp_proxy/v2/\"],\"feature_flags\":[],\"config\":{\"statsd_port\":"
    "8125,\"a\":[1,2.5e3,-0.1,true,false,null]}}",
    "{\"version\":\"7.\\u0001\\u00e9\\\"x-"
    "0123456789012345678901234567890123456789"
    "012345678901234567890123456789\"}",
    "{\"rate_by_service\":{\"service:,env:\":1,\"service:web,env:prod\":0.5}}",
    "{\"endpoints\":[\"/a\\u0041\\n\",1,{\"x\":[]},\"\\ud83d\\ude00\"]}",
    "{\"x\": tru}",
    "[,,\"/v0.4/traces\"::]",
    "{\"endpoints\":[,,\"/v0.4/traces\"::]}",
    "{\"a\":1} trailing",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
    "[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
    "]]]]]",
    "{\"s\":\"\\\"quoted\\\\\",\"n\":1e400,\"u\":\"\\u0000\"}",
    "",
    " ",
};

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 50000;
    const char *seed_env = getenv("SIDECAR_TEST_SEED");
    rng_state = seed_env != NULL ? strtoull(seed_env, NULL, 10) : 0x15eed;
    printf("seed %llu, %ld iterations\n", (unsigned long long)rng_state,
           iterations);
    const size_t nseeds = sizeof seeds / sizeof seeds[0];
    static const char tokens[] = "{}[],:\"\\ 0123456789.eE+-tfnlrsu";
    static uint8_t buf[4096];
    for (size_t k = 0; k < nseeds; k++) {
        LLVMFuzzerTestOneInput((const uint8_t *)seeds[k], strlen(seeds[k]));
    }
    for (long i = 0; i < iterations; i++) {
        const char *seed = seeds[rnd() % nseeds];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + (int)(rnd() % 6);
        for (int e = 0; e < edits; e++) {
            size_t at = len > 0 ? rnd() % len : 0;
            switch (rnd() % 5) {
            case 0: /* a JSON-significant byte in place of another */
                if (len > 0) {
                    buf[at] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)];
                }
                break;
            case 1: /* any byte */
                if (len > 0) {
                    buf[at] = (uint8_t)rnd();
                }
                break;
            case 2: /* truncation */
                len = at;
                break;
            case 3: /* a byte inserted */
                if (len < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = (uint8_t)tokens[rnd() % (sizeof tokens - 1)];
                    len++;
                }
                break;
            default: /* a run duplicated */
                if (len > 0 && len * 2 < sizeof buf) {
                    size_t from = rnd() % len, n = rnd() % (len - from) + 1;
                    memmove(buf + at + n, buf + at, len - at);
                    memmove(buf + at, buf + from + (from >= at ? n : 0), n);
                    len += n;
                }
                break;
            }
        }
        /* A copy of exactly `len` bytes: a read past the end is seen by
         * ASan. */
        uint8_t *exact = malloc(len > 0 ? len : 1);
        if (exact == NULL) {
            return 1;
        }
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("fuzz_json: ok\n");
    return 0;
}
#endif
