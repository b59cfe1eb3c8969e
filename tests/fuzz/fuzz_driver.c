/* Runs a fuzz target without libFuzzer, in every build.
 *
 *   fuzz_driver --raw DIR...      every file of each DIR, verbatim (seed
 *                                 corpora and regression inputs)
 *   fuzz_driver VECTOR_DIR [N]    fuzz_frames only: every golden vector
 *                                 framed as a peer would send it, then N
 *                                 seeded mutations of them (bit flips,
 *                                 truncation, duplication, random bytes)
 *
 * A crash or a sanitizer report fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT (64 * 1024)
#define MAX_SEEDS      256

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

/* Runs every regular file of `dir` through the target; -1 when `dir`
 * cannot be read. */
static long run_raw_dir(const char *dir)
{
    static uint8_t input[4 * 1024 * 1024];
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        size_t len = fread(input, 1, sizeof input, f);
        fclose(f);
        /* A heap copy of exactly the file's length: ASan sees a read past
         * the input's end. */
        uint8_t *copy = malloc(len > 0 ? len : 1);
        if (copy == NULL) {
            break;
        }
        memcpy(copy, input, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_driver --raw DIR... | VECTOR_DIR [N]\n");
        return 2;
    }
    if (strcmp(argv[1], "--raw") == 0) {
        long total = 0;
        for (int i = 2; i < argc; i++) {
            long n = run_raw_dir(argv[i]);
            if (n < 0) {
                fprintf(stderr, "cannot read %s\n", argv[i]);
                return 1;
            }
            total += n;
        }
        printf("%ld inputs: no crash\n", total);
        return total > 0 ? 0 : 1;
    }
    long iterations = argc > 2 ? atol(argv[2]) : 20000;
    const char *seed_env = getenv("SIDECAR_TEST_SEED");
    rng_state = seed_env != NULL ? strtoull(seed_env, NULL, 10) : 0x5eed;
    printf("seed %llu\n", (unsigned long long)rng_state);

    static uint8_t seeds[MAX_SEEDS][FUZZ_MAX_INPUT];
    static size_t seed_len[MAX_SEEDS];
    size_t nseeds = 0;
    DIR *d = opendir(argv[1]);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && nseeds < MAX_SEEDS) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".bin") != 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        /* byte 0: chunking; then a little-endian frame header */
        uint8_t *s = seeds[nseeds];
        size_t body = fread(s + 5, 1, FUZZ_MAX_INPUT - 5, f);
        fclose(f);
        s[0] = (uint8_t)nseeds;
        s[1] = (uint8_t)body;
        s[2] = (uint8_t)(body >> 8);
        s[3] = (uint8_t)(body >> 16);
        s[4] = (uint8_t)(body >> 24);
        seed_len[nseeds] = body + 5;
        LLVMFuzzerTestOneInput(s, seed_len[nseeds]);
        nseeds++;
    }
    if (d != NULL) {
        closedir(d);
    }
    if (nseeds == 0) {
        fprintf(stderr, "no vectors in %s\n", argv[1]);
        return 1;
    }
    static uint8_t buf[FUZZ_MAX_INPUT * 2];
    for (long i = 0; i < iterations; i++) {
        size_t k = rnd() % nseeds;
        size_t len = seed_len[k];
        memcpy(buf, seeds[k], len);
        switch (rnd() % 4) {
        case 0: /* bit flips */
            for (int f = 0; f < 1 + (int)(rnd() % 8); f++) {
                buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            }
            break;
        case 1: /* truncation */
            len = 1 + rnd() % len;
            break;
        case 2: /* the frame twice, then garbage */
            if (len * 2 < sizeof buf) {
                memcpy(buf + len, seeds[k] + 1, len - 1);
                len = len * 2 - 1;
            }
            break;
        default: /* random bytes over a random stretch */
            for (size_t p = rnd() % len, n = rnd() % 32; n > 0 && p < len;
                 n--, p++) {
                buf[p] = (uint8_t)rnd();
            }
            break;
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%zu vectors, %ld mutated inputs: no crash\n", nseeds, iterations);
    return 0;
}
