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

/* The error of a connect attempt that failed (UV_EACCES: the server was
 * not trusted), once, or 0: the caller (the process side, process.c) may
 * then make the endpoint reachable and point the client at it. The client
 * is a plain transport and never calls out for that itself. Lock-free. */
int sc_client_take_unreachable(sc_client_t *c);

/* sc_client_flush_sync; with `delivered`, the barrier waits until what came
 * before it is delivered or dropped by the sidecar, retries included
 * (Flush.wait_for_delivery), not only started. */
int sc_client_flush_until(sc_client_t *c, uint32_t timeout_ms, bool delivered);

/* Copies the endpoint the client connects to (the process's one copy). */
void sc_client_endpoint(sc_client_t *c, char *out, size_t size);

/* True when actions were enqueued since the last completed flush barrier
 * (or anything is still queued): a sync flush at exit is worth a round trip
 * only then. */
bool sc_client_has_unflushed(sc_client_t *c);

/* Points the client at `endpoint` (after a promotion, a spawn); disconnects
 * if it was connected elsewhere, and the next use connects at once, without
 * waiting for the reconnect backoff. */
int sc_client_set_endpoint(sc_client_t *c, const char *endpoint);

/* Fork handlers, called by process.c's (it owns the lock order): prepare
 * takes the client's locks, I/O then queue, so the child gets a consistent
 * copy; the child then drops the inherited connection and queue, counting
 * the discarded frames (see client.c). */
void sc_client_atfork_prepare(sc_client_t *c);
void sc_client_atfork_parent(sc_client_t *c);
void sc_client_atfork_child(sc_client_t *c);

#endif
