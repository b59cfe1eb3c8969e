/* Fuzz target: the agent's /info answer (sc_agent_info_parse) and the
 * "rate_by_service" of trace responses (sc_agent_rates_parse), as the
 * delivery reads them from the network (agent_info.c). */
#include "agent_info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    size_t rates_len = 0;
    free(sc_agent_rates_parse(json, size, &rates_len));
    free(json);
    return 0;
}
