/* The process's singletons for the other entry-point files (process.c
 * explains ownership, the lock order and the fork rules). */
#ifndef SIDECAR_PROCESS_H
#define SIDECAR_PROCESS_H

#include "sidecar.h"

/* The runtime's client, or NULL before sc_init(). */
sc_client_t *sc_process_client(void);

/* After an entry point enqueued on `c`: if a connect failed meanwhile,
 * makes the endpoint reachable where this process may (start a sidecar,
 * promote) and pushes what is queued within the enqueue budget. Call with
 * no lock held. */
void sc_process_after_send(sc_client_t *c);

#endif
