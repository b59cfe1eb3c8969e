/* The public reader of shared state (sc_agent_state_read, include/sidecar.h):
 * the top of the stack, beside the runtime whose endpoint it defaults to.
 * shared_state.c below it knows nothing of the runtime. */
#include "endpoint.h"
#include "runtime.h"
#include "shared_state.h"
#include "sidecar.h"

#include <stdlib.h>
#include <string.h>

static char *dup_doc(const char *s, uint32_t len, bool present)
{
    if (!present || len == 0) {
        return NULL;
    }
    char *d = malloc((size_t)len + 1);
    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

int sc_agent_state_read_for(const char *endpoint, const char *agent_url,
                            sc_agent_state_t *out)
{
    memset(out, 0, sizeof *out);
    sc_runtime_info_t info;
    if (endpoint == NULL) {
        sc_runtime_info(&info);
        endpoint = info.endpoint;
        if (endpoint[0] == '\0') {
            return UV_EINVAL;
        }
    }
    sc_agent_addr_t agent;
    if (agent_url != NULL && sc_agent_addr_parse_url(agent_url, &agent) != 0) {
        return UV_EINVAL;
    }
    char key[SC_ENDPOINT_MAX + SC_AGENT_URL_MAX + 16];
    sc_shared_key(endpoint, agent_url != NULL ? &agent : NULL, key, sizeof key);
    sc_shared_record_t *rec = malloc(sizeof *rec);
    if (rec == NULL) {
        return UV_ENOMEM;
    }
    int rc = sc_shared_read(key, rec);
    if (rc == 0) {
        out->sidecar_pid = rec->pid;
        out->healthy = (rec->flags & SC_SHARED_HEALTHY) != 0;
        out->updated_ms = rec->updated_ms;
        out->info_json = dup_doc(rec->info, rec->info_len,
                                 (rec->flags & SC_SHARED_INFO_VALID) != 0);
        out->rates_json = dup_doc(rec->rates, rec->rates_len, true);
    }
    free(rec);
    return rc;
}

void sc_agent_state_free(sc_agent_state_t *state)
{
    free(state->info_json);
    free(state->rates_json);
    state->info_json = state->rates_json = NULL;
}

int sc_agent_state_read(const char *endpoint, sc_agent_state_t *out)
{
    return sc_agent_state_read_for(endpoint, NULL, out);
}
