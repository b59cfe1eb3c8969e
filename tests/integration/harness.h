/* Process plumbing shared by the integration tests: start the real sidecar
 * binary, run copies of the test program as client processes, wait for
 * them, read numbers out of the stats document. */
#ifndef SIDECAR_TEST_HARNESS_H
#define SIDECAR_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* In a scenario function returning int: says which check failed (file,
 * line, condition) and returns 1. */
#define TH_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* A unique abstract (or filesystem) endpoint for this test run. */
void th_endpoint(char *out, size_t size, const char *tag);

/* Starts `sidecar run --endpoint EP <extra...>` (extra is NULL-terminated,
 * may be NULL) and waits until it answers a ping. Returns its pid or 0. */
int th_sidecar_start(const char *endpoint, const char *const *extra);

/* SIGTERM (or SIGKILL when `kill_hard`), then waits for the exit. Returns
 * the exit status, or -signal. */
int th_sidecar_stop(int pid, bool kill_hard);

/* The endpoint sc_init() uses in subprocess mode with endpoint_dir `dir`
 * (NULL: the platform default, on Windows the user's named pipe). */
void th_subprocess_endpoint(char *out, size_t size, const char *dir);

/* Stops the sidecar answering on `endpoint` (sc_plat_request_stop) and
 * waits until its process is gone, so that its final flush is over.
 * Returns 1 when one was stopped, 0 when none answered, -1 when it did
 * not go. */
int th_stop_endpoint(const char *endpoint);

/* Runs `n` copies of this program (`self`) with argv[1..] = args (NULL
 * terminated) plus a last argument with the copy's index, all at once;
 * waits for all. Returns how many did not exit with status 0. */
int th_run_children(const char *self, int n, const char *const *args);

/* The sidecar's stats JSON through a fresh client (malloc'ed), or NULL. */
char *th_stats(const char *endpoint);

/* The number after the first `"key":` in `json`, or UINT64_MAX. */
uint64_t th_json_u64(const char *json, const char *key);

/* A small valid msgpack v0.4 payload: one trace of one span whose
 * "trace_id" is `id`. Returns its length (buffer needs 64 bytes). */
size_t th_trace_payload(uint8_t *out, uint64_t id);

/* Starts the local intake (tests/intake/intake.py) recording every request
 * to `dir`/records.jsonl; returns its TCP port, or 0. th_intake_stop()
 * ends it. */
int th_intake_start(const char *dir);
/* The same with more intake.py arguments (NULL-terminated, may be NULL). */
int th_intake_start_args(const char *dir, const char *const *extra);
void th_intake_stop(void);

/* Path of the sidecar binary under test. */
const char *th_sidecar_bin(void);

struct sc_config;
/* Defaults of a test process in subprocess mode: the environment's
 * settings (the agent URL), the sidecar binary under test, endpoint
 * directory `dir` (NULL: the platform default). */
void th_subprocess_config(struct sc_config *cfg, const char *dir);

#endif
