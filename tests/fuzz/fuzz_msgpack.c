/* Fuzz target: trace payload validation and merging (msgpack.c). The
 * input is split in two at its first byte's position; each part that the
 * check accepts is merged, and the merged body must itself be a valid
 * payload holding the sum of the traces. */
#include "msgpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t cut = data[0] < size - 1 ? data[0] : size - 1;
    const uint8_t *part[2] = {data + 1, data + 1 + cut};
    size_t len[2] = {cut, size - 1 - cut};
    sc_msgpack_merge_t m = {0};
    uint64_t traces = 0;
    for (int i = 0; i < 2; i++) {
        /* A heap copy of exactly its length: ASan sees any read past it. */
        uint8_t *copy = malloc(len[i] > 0 ? len[i] : 1);
        if (copy == NULL) {
            break;
        }
        memcpy(copy, part[i], len[i]);
        sc_msgpack_traces_t info;
        sc_msgpack_status_t st = sc_msgpack_check_traces(copy, len[i], &info);
        (void)sc_msgpack_status_str(st);
        if (st == SC_MSGPACK_OK &&
            sc_msgpack_merge_add(&m, copy, len[i], &info)) {
            traces += info.trace_count;
        }
        free(copy);
    }
    if (m.count > 0) {
        size_t body_len = 0;
        const uint8_t *body = sc_msgpack_merge_finish(&m, &body_len);
        sc_msgpack_traces_t merged;
        if (body_len != sc_msgpack_merge_body_size(&m) ||
            sc_msgpack_check_traces(body, body_len, &merged) != SC_MSGPACK_OK ||
            merged.trace_count != traces) {
            fprintf(stderr, "merged payload is not the sum of its parts\n");
            abort();
        }
    }
    sc_msgpack_merge_free(&m);
    return 0;
}
