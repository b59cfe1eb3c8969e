/* The `sidecar` executable: shared between main.c (options, help, `run`)
 * and query.c (`ping`, `stats`, `status`, `list`). */
#ifndef SIDECAR_CLI_H
#define SIDECAR_CLI_H

#include "daemon.h"
#include "endpoint.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE        2
#define EXIT_UNREACHABLE  3
#define EXIT_NOT_ADMITTED 4

typedef struct cli {
    const char *command;
    char endpoint[SC_ENDPOINT_MAX + 1];
    const char
        *endpoint_dir;   /* --endpoint-dir / DD_TRACE_SIDECAR_ENDPOINT_DIR */
    uint32_t master_pid; /* --pid: a thread-mode listener */
    char identity[128];  /* --identity: another user's endpoint */
    sc_daemon_options_t daemon;
    uint32_t timeout_ms;
    bool json;
} cli_t;

/* The default endpoint name of this user (subprocess mode, or the
 * thread-mode listener of `master_pid` when non-zero). */
int cli_endpoint_name(const cli_t *cli, uint32_t master_pid,
                      const char *version, char *out, size_t size);

int cli_ping(cli_t *cli);
int cli_stats(cli_t *cli);
int cli_status(cli_t *cli);
int cli_list(cli_t *cli);

/* Finds the value at a dotted path ("delivery.traces.ok"; a number
 * indexes an array: "agents.1.agent") in a JSON document; returns its
 * first byte and sets *len, or NULL. */
const char *cli_json_find(const char *doc, const char *path, size_t *len);

#endif
