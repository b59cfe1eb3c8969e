/* Helpers of the tests whose master forks workers of other users
 * (test_pool_users.c, test_squatter.c). */
#ifndef SIDECAR_TEST_POOL_HOST_H
#define SIDECAR_TEST_POOL_HOST_H

#include "sidecar.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Defaults for a test host in `mode` on endpoint directory `dir`: the
 * sidecar under test, short reconnect backoff, a generous enqueue budget. */
void ph_config(sc_config_t *cfg, sc_connection_mode_t mode, const char *dir);

/* The exit status of child `pid` (128 + signal when killed). */
int ph_wait_child(pid_t pid);

/* `n` traces from trace id `base` on, and a barrier: 0 when none was
 * dropped and the sidecar answered the barrier. */
int ph_send_and_flush(int n, uint64_t base);

/* A pid worth signalling (not 0, 1 or UINT64_MAX, which kill() takes for
 * groups of processes). */
bool ph_real_pid(uint64_t pid);

/* SIGKILL to `pid` when ph_real_pid(). */
void ph_kill_sidecar(uint64_t pid);

/* Waits up to `ms` until `pid` is gone (or a zombie of another parent). */
bool ph_wait_gone(uint64_t pid, int ms);

#endif
