/* Internal side of the client (include/sidecar.h has the public part). */
#ifndef SIDECAR_CLIENT_H
#define SIDECAR_CLIENT_H

#include "sidecar.h"
#include "sidecar.pb.h"

/* Enqueues any action built by the runtime (flag-evaluation batches,
 * exposures). `env->seq` is assigned here; the envelope's views need only
 * live for the call (it is encoded before returning). Returns 0 or
 * SC_EDROPPED (counted under `kind`). */
int sc_client_enqueue(sc_client_t *c, sc_action_kind_t kind,
                      sidecar_v1_Envelope *env);

/* Called when a connect fails with `err`. May change `endpoint` (a buffer
 * of `size` bytes) and returns > 0 to have the connect tried once more now,
 * or 0 to give up until the reconnect backoff passes. Runs with the client's
 * I/O lock held: it must not call back into this client. */
typedef int sc_client_unreachable_fn(void *ctx, int err, char *endpoint,
                                     size_t size);

void sc_client_set_unreachable_hook(sc_client_t *c,
                                    sc_client_unreachable_fn *fn, void *ctx);

/* True when actions were enqueued since the last completed flush barrier
 * (or anything is still queued): a sync flush at exit is worth a round trip
 * only then. */
bool sc_client_has_unflushed(sc_client_t *c);

/* Points the client at another endpoint (after a promotion); disconnects
 * if it was connected elsewhere. */
int sc_client_set_endpoint(sc_client_t *c, const char *endpoint);

/* Fork handlers (the runtime registers them with pthread_atfork): prepare
 * takes the client's locks so the child gets a consistent copy; the child
 * then drops the inherited connection and queue (see client.c). */
void sc_client_atfork_prepare(sc_client_t *c);
void sc_client_atfork_parent(sc_client_t *c);
void sc_client_atfork_child(sc_client_t *c);

#endif
