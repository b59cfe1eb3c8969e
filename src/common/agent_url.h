/* Where the Datadog agent is (docs/delivery.md): DD_TRACE_AGENT_URL
 * (http://host[:port][/prefix] or unix:///path/to.sock), else DD_AGENT_HOST
 * + DD_TRACE_AGENT_PORT, else http://localhost:8126. */
#ifndef SIDECAR_AGENT_URL_H
#define SIDECAR_AGENT_URL_H

#include <stdbool.h>

#define SC_AGENT_DEFAULT_HOST "localhost"
#define SC_AGENT_DEFAULT_PORT 8126
#define SC_AGENT_URL_MAX      512
/* sockaddr_un's sun_path is 108 bytes on Linux and Windows (with the NUL). */
#define SC_AGENT_UNIX_PATH_MAX 108

typedef struct sc_agent_addr {
    /* Base URL without a trailing '/': request paths are appended to it.
     * For a Unix socket it is "http://localhost" (the Host header). */
    char url[SC_AGENT_URL_MAX];
    /* Unix socket path, or "" for TCP. */
    char unix_path[SC_AGENT_UNIX_PATH_MAX];
} sc_agent_addr_t;

/* Parses one agent URL. Returns 0, or UV_EINVAL (unknown scheme, bad port,
 * query or fragment, user info, empty host or path) / UV_ENAMETOOLONG, in
 * which case `out` is unchanged. */
int sc_agent_addr_parse_url(const char *url, sc_agent_addr_t *out);

/* Resolves the address from the three settings, any of which may be NULL
 * or empty. `out` is always filled: when `trace_agent_url` is set but
 * invalid, or `agent_port` is not a port, the function falls back to the
 * next source (the default port for a bad port) and returns UV_EINVAL so the
 * caller can log it. */
int sc_agent_addr_resolve(const char *trace_agent_url, const char *agent_host,
                          const char *agent_port, sc_agent_addr_t *out);

/* sc_agent_addr_resolve over DD_TRACE_AGENT_URL, DD_AGENT_HOST and
 * DD_TRACE_AGENT_PORT from the environment. */
int sc_agent_addr_from_env(sc_agent_addr_t *out);

/* The address as a user would write it (for logs and stats): the URL, or
 * "unix://" + path. Returns `buf`. */
const char *sc_agent_addr_describe(const sc_agent_addr_t *addr, char *buf,
                                   unsigned size);

#endif
