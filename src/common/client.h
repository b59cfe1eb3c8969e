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

#endif
