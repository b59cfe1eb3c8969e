/* Fuzz target: the Windows rendezvous record (src/common/rendezvous.c), the
 * word every client of a Windows endpoint reads before it connects. The
 * input's first 8 bytes are the word (little-endian, as x86 and arm64
 * Windows store it; a shorter input is zero-padded), the rest an endpoint
 * name. Whatever the bytes:
 *   - parse accepts only an owner (STARTING or LISTENING, pid nonzero), and
 *     what it accepts packs back to the very same word: no bit of a record
 *     is ignored, so a damaged record is never taken for a valid one;
 *   - the word 0, and only it, means "nobody owns"; anything else is
 *     UV_EPROTO;
 *   - the pipe name of an accepted record is "<endpoint>-<pid>[-<gen>]",
 *     NUL-terminated within its buffer, at most 256 characters, for every
 *     buffer size; or UV_ENAMETOOLONG with an empty string. */
#include "rendezvous.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_rendezvous: %s\n", what);
    abort();
}

/* The name for `r` in a buffer of `size` bytes, checked against `want`
 * (the name built independently here). */
static void check_name(const char *endpoint, const sc_rendezvous_t *r,
                       const char *want, size_t size)
{
    char *out = malloc(size > 0 ? size : 1);
    if (out == NULL) {
        fail("out of memory");
    }
    memset(out, 0x5a, size > 0 ? size : 1);
    int rc = sc_rendezvous_pipe_name(endpoint, r, out, size);
    size_t want_len = strlen(want);
    bool fits = want_len < size && want_len <= SC_RENDEZVOUS_PIPE_NAME_MAX;
    if (fits ? rc != 0 : rc != UV_ENAMETOOLONG) {
        fail("pipe name: wrong result for its length");
    }
    if (size > 0 && memchr(out, 0, size) == NULL) {
        fail("pipe name without its NUL");
    }
    if (rc == 0 ? strcmp(out, want) != 0 : size > 0 && out[0] != '\0') {
        fail("pipe name differs from the record's");
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t word = 0;
    for (size_t i = 0; i < 8 && i < size; i++) {
        word |= (uint64_t)data[i] << (8 * i);
    }
    sc_rendezvous_t r;
    memset(&r, 0x5a, sizeof r);
    int rc = sc_rendezvous_parse(word, &r);
    if (word == 0) {
        if (rc != UV_ENOENT) {
            fail("the word 0 is not \"nobody owns\"");
        }
        return 0;
    }
    if (rc == UV_EPROTO) {
        uint64_t state = (word >> 32) & 0xff;
        if ((uint32_t)word != 0 && (state == 1 || state == 2)) {
            fail("an owner's record refused");
        }
        return 0;
    }
    if (rc != 0) {
        fail("parse: neither accepted, nobody nor damaged");
    }
    if (r.pid == 0 || (r.state != SC_RENDEZVOUS_STARTING &&
                       r.state != SC_RENDEZVOUS_LISTENING)) {
        fail("accepted a record that is not an owner's");
    }
    uint64_t again = 0;
    if (sc_rendezvous_pack(&r, &again) != 0 || again != word) {
        fail("an accepted record does not pack back to its word");
    }

    /* The rest of the input names the endpoint. */
    size_t name_len = size > 8 ? size - 8 : 0;
    char *endpoint = malloc(name_len + 1);
    if (endpoint == NULL) {
        fail("out of memory");
    }
    if (name_len > 0) {
        memcpy(endpoint, data + 8, name_len);
    }
    endpoint[name_len] = '\0';
    size_t ep_len = strlen(endpoint); /* up to an embedded NUL */
    char *want = malloc(ep_len + 32);
    if (want == NULL) {
        fail("out of memory");
    }
    if (r.generation == 0) {
        snprintf(want, ep_len + 32, "%s-%u", endpoint, (unsigned)r.pid);
    } else {
        snprintf(want, ep_len + 32, "%s-%u-%u", endpoint, (unsigned)r.pid,
                 (unsigned)r.generation);
    }
    size_t want_len = strlen(want);
    static const size_t sizes[] = {0, 1, 2, 8, 64, 257, 300, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_name(endpoint, &r, want, sizes[i]);
    }
    check_name(endpoint, &r, want, want_len);     /* one short */
    check_name(endpoint, &r, want, want_len + 1); /* exactly */
    free(want);
    free(endpoint);
    return 0;
}
