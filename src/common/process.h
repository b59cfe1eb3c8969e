/* The process's singletons for the other entry-point files (process.c
 * explains ownership, the lock order and the fork rules). */
#ifndef SIDECAR_PROCESS_H
#define SIDECAR_PROCESS_H

#include "flageval.h"
#include "sidecar.h"

/* The process's flag-evaluation aggregator, created on first use (with or
 * without sc_init()) with the defaults and the kill switch read from the
 * environment; never freed. Its creation registers the fork handlers, so
 * that a host recording evaluations before sc_init() (or after
 * sc_shutdown()) forks safely too. NULL when out of memory. */
sc_flageval_t *sc_flageval_process(void);

/* The runtime's client, or NULL before sc_init(). */
sc_client_t *sc_process_client(void);

/* After an entry point enqueued on `c`: if a connect failed meanwhile,
 * makes the endpoint reachable where this process may (start a sidecar,
 * promote) and pushes what is queued within the enqueue budget. Call with
 * no lock held. */
void sc_process_after_send(sc_client_t *c);

#endif
