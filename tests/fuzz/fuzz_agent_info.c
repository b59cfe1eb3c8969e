/* Fuzz target: the agent's /info answer (sc_agent_info_parse) and the
 * member lookup that extracts "rate_by_service" from trace responses
 * (sc_json_member), as the flusher reads them from the network. */
#include "flusher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_member(const char *json, size_t len, const char *key)
{
    const char *v = NULL;
    size_t vlen = 0;
    if (sc_json_member(json, len, key, &v, &vlen)) {
        uintptr_t lo = (uintptr_t)json, at = (uintptr_t)v;
        if (at < lo || at - lo > len || vlen > len - (at - lo)) {
            fprintf(stderr, "member value outside the document\n");
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Not NUL-terminated, exactly as long as the answer. */
    char *json = malloc(size > 0 ? size : 1);
    if (json == NULL) {
        return 0;
    }
    memcpy(json, data, size);
    sc_agent_info_t info;
    memset(&info, 0, sizeof info);
    if (sc_agent_info_parse(json, size, &info)) {
        for (size_t i = 0; i < info.endpoint_count; i++) {
            (void)sc_agent_info_has_endpoint(&info, info.endpoints[i]);
        }
        (void)sc_agent_info_has_endpoint(&info, "/evp_proxy/v2/");
    }
    sc_agent_info_free(&info);
    check_member(json, size, "rate_by_service");
    check_member(json, size, "endpoints");
    check_member(json, size, "");
    free(json);
    return 0;
}
