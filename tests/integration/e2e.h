/* The local intake of an end-to-end test (delivery, metrics, telemetry),
 * wherever the test runs. On Linux the test starts the intake itself
 * (records in a temporary directory) and runs the independent python
 * checkers on what arrived. Under Wine the intake and the checkers run on
 * the build host: tests/integration/e2e_driver.py starts the intake, names
 * it in SIDECAR_E2E_INTAKE="<http port>:<DogStatsD UDP port>", runs the
 * test, and runs the checks the test asks for on lines
 * "E2E_CHECK <script> <args>". */
#ifndef SIDECAR_TEST_E2E_H
#define SIDECAR_TEST_E2E_H

#include <stdbool.h>

typedef struct th_e2e {
    bool external;       /* the driver's intake */
    char dir[512];       /* the test's own intake: its records */
    int http_port;       /* the agent */
    int dsd_port;        /* the DogStatsD UDP receiver, 0: none */
    char unix_path[600]; /* the DogStatsD Unix receiver, "": none */
} th_e2e_t;

/* True when a driver runs the intake (SIDECAR_E2E_INTAKE is set). */
bool th_e2e_external(void);

/* The intake: the driver's, or one started here with a UDP DogStatsD
 * receiver when `udp` and a Unix one when `unix_dgram`. Sets
 * DD_TRACE_AGENT_URL and DD_DOGSTATSD_URL (UDP unless `unix_dgram`) for
 * the sidecars started after it. Returns false when it cannot. */
bool th_e2e_start(th_e2e_t *e, bool udp, bool unix_dgram);

/* Stops the intake started here (the driver stops its own). */
void th_e2e_stop(th_e2e_t *e);

/* Checks the records with tests/intake/<script> <records> <args>: here,
 * or (external) by printing the request for the driver. */
bool th_e2e_check(th_e2e_t *e, const char *script, const char *args);

/* Where this run's subprocess-mode sidecar listens (endpoint_dir): on
 * POSIX a directory of its own (e->dir: the intake's, else made now), so
 * that no other sidecar of this user serves it; on Windows NULL, as
 * named pipes have no directory (docs/windows.md): the user's own name,
 * private only while tests run one at a time. False when it cannot. */
bool th_e2e_endpoint_dir(th_e2e_t *e, const char **dir);

/* Removes what th_e2e_start and th_e2e_endpoint_dir made here. */
void th_e2e_cleanup(th_e2e_t *e);

/* uv_os_setenv / uv_os_unsetenv (value NULL): the environment the
 * sidecars started after this inherit. */
void th_setenv(const char *name, const char *value);

#endif
