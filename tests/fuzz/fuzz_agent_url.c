/* Fuzz target: where the agent is (agent_url.c). The input holds up to
 * three NUL-separated strings: DD_TRACE_AGENT_URL, DD_AGENT_HOST,
 * DD_TRACE_AGENT_PORT. The URL alone goes through the parser too, and every
 * result must be NUL-terminated within its buffer. */
#include "agent_url.h"
#include "fuzz_input.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const sc_agent_addr_t *a)
{
    if (memchr(a->url, 0, sizeof a->url) == NULL ||
        memchr(a->unix_path, 0, sizeof a->unix_path) == NULL) {
        fprintf(stderr, "agent address without its terminating NUL\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s[3];
    fuzz_split(data, size, s, 3);
    sc_agent_addr_t a;
    memset(&a, 0x5a, sizeof a);
    if (s[0] != NULL && sc_agent_addr_parse_url(s[0], &a) == 0) {
        check_addr(&a);
    }
    memset(&a, 0x5a, sizeof a);
    sc_agent_addr_resolve(s[0], s[1], s[2], &a);
    check_addr(&a);
    fuzz_free_parts(s, 3);
    return 0;
}
