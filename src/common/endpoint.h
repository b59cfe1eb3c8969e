/* Endpoint names (docs/transport.md): a pure function of mode, version,
 * identity and master pid, so that a root master and its www-data workers, or
 * 32 processes starting at once, all arrive at the same name. */
#ifndef SIDECAR_ENDPOINT_H
#define SIDECAR_ENDPOINT_H

#include "platform.h"

/* Longest endpoint string (Windows pipe names allow 256 characters; Unix
 * socket addresses 107 bytes plus the leading '@' or NUL). */
#define SC_ENDPOINT_MAX 256

typedef struct sc_endpoint_params {
    sc_endpoint_kind_t kind;
    const char *version;  /* runtime version; only [A-Za-z0-9._] is kept */
    const char *identity; /* euid in decimal, or a Windows SID */
    uint32_t master_pid;  /* thread mode: the master's pid; 0: subprocess */
    /* Thread mode where pool processes meet on one name per identity
     * (sc_plat_master_name_pid() == 0, Windows):
     * one name per identity, "-thread" in place of the master's pid. */
    bool elected_thread;
    const char *dir; /* filesystem kind: the private directory */
} sc_endpoint_params_t;

/* Writes the endpoint string into `out`. Returns 0, UV_EINVAL for missing
 * parameters, or UV_ENAMETOOLONG when the name does not fit the kind's
 * address limit (or `size`). */
int sc_endpoint_name(char *out, size_t size, const sc_endpoint_params_t *p);

/* The longest name a kind accepts, not counting the terminating NUL. */
size_t sc_endpoint_limit(sc_endpoint_kind_t kind);

#endif
