/* What a sidecar holds, kept where its successor can read it after a
 * SIGKILL (docs/runtime.md, "When something fails: what is delivered, what
 * is counted"; the segment's name: docs/shared-state.md, "Segment").
 *
 * A sidecar that is killed loses what it accepted but had not yet
 * delivered, and forgets which frames it had handled. The ledger is a
 * shared-memory segment per endpoint, written by the one process listening
 * there: what it holds, and its session table (sessions.h). The next
 * sidecar on the same endpoint opens the ledger first: when the previous
 * owner died without closing it, what it held is reported as lost
 * (`predecessor` in the stats), and its session table is taken over, so
 * frames clients send again are recognised as handled -- delivered +
 * counted = sent, without duplicates. */
#ifndef SIDECAR_LEDGER_H
#define SIDECAR_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

#include "sessions.h"

/* Accepted for delivery, not yet delivered or dropped (and counted); of
 * that, what was sent to the agent at least once (a request under way or
 * waiting for a retry: the agent may have it). */
typedef struct sc_ledger_held {
    uint64_t payloads, traces;
    uint64_t sent_payloads, sent_traces;
} sc_ledger_held_t;

/* What was held by sidecars of this endpoint that were killed. */
typedef struct sc_ledger_loss {
    uint64_t payloads, traces; /* never sent: lost */
    /* Sent, no answer seen: delivered or lost, nobody can tell. */
    uint64_t unconfirmed_payloads, unconfirmed_traces;
} sc_ledger_loss_t;

/* What the previous owner of the endpoint left. */
typedef struct sc_ledger_predecessor {
    uint32_t pid; /* 0: none found */
    bool killed;  /* it died without closing its ledger */
    /* Held by every killed predecessor on this endpoint: the previous one
     * and those before it (carried from ledger to ledger). */
    sc_ledger_loss_t lost;
} sc_ledger_predecessor_t;

typedef struct sc_ledger sc_ledger_t;

/* Opens the ledger of `endpoint` for this process, which must be the one
 * listening there; reads what a previous owner left into `prev`. Never
 * fails for want of shared memory: the ledger then lives in this process
 * only (nothing survives a kill). NULL only without memory. */
sc_ledger_t *sc_ledger_open(const char *endpoint,
                            sc_ledger_predecessor_t *prev);

/* The counters the flusher keeps up to date, and the session table the
 * server uses. Valid until sc_ledger_close. */
sc_ledger_held_t *sc_ledger_held(sc_ledger_t *l);
sc_sessions_t *sc_ledger_sessions(sc_ledger_t *l);

/* At a clean exit (everything delivered or counted): removes the segment. */
void sc_ledger_close(sc_ledger_t *l);

#endif
