/* Fuzz target: the shared-state record a worker reads from the segment the
 * sidecar publishes (shared_state.c). The segment is shared memory that
 * another process writes, so every byte of the record is outside input:
 * the input fills the record (the header is made valid, so that the fuzzer
 * spends its time on the content). A record the reader accepts must keep
 * its lengths inside its arrays and its strings terminated: its consumers
 * (sc_agent_state_read) copy `info_len` and `rates_len` bytes. */
#include "shared_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEGMENT_MAGIC  0x48534353u /* "SCSH", as shared_state.c writes it */
#define SEGMENT_LAYOUT 1u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sc_shared_segment_t seg;
    static sc_shared_record_t rec, out;
    memset(&rec, 0, sizeof rec);
    memcpy(&rec, data, size < sizeof rec ? size : sizeof rec);
    seg.magic = SEGMENT_MAGIC;
    seg.layout = SEGMENT_LAYOUT;
    sc_shared_write(&seg, &rec);
    if (sc_shared_read_segment(&seg, &out) != 0) {
        return 0;
    }
    if (out.info_len >= SC_SHARED_INFO_MAX ||
        out.rates_len >= SC_SHARED_RATES_MAX ||
        out.info[SC_SHARED_INFO_MAX - 1] != '\0' ||
        out.rates[SC_SHARED_RATES_MAX - 1] != '\0') {
        fprintf(stderr, "an accepted record with lengths outside its arrays "
                        "or an unterminated string\n");
        abort();
    }
    return 0;
}
