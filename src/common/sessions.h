/* The sidecar's memory of client sessions (Hello.session_id): the highest
 * seq handled per session, across that session's connections, so that a
 * frame a client sends again after a reconnect is recognised as a
 * duplicate (docs/wire.md, "Acknowledgements").
 *
 * A fixed table: a session not heard of for long may be forgotten when the
 * table is full (the least recently used of its probe window goes). A
 * forgotten session's resent frames are handled again -- only possible after
 * thousands of newer sessions, long after any resend. */
#ifndef SIDECAR_SESSIONS_H
#define SIDECAR_SESSIONS_H

#include <stdbool.h>
#include <stdint.h>

#define SC_SESSIONS_SLOTS 4096 /* a power of two */

typedef struct sc_session_slot {
    uint64_t id; /* 0: free */
    uint64_t handled_seq;
    uint64_t last_used; /* sc_sessions_t.clock when last touched */
} sc_session_slot_t;

typedef struct sc_sessions {
    sc_session_slot_t slots[SC_SESSIONS_SLOTS];
    uint64_t clock;
    uint64_t forgotten; /* sessions evicted to make room */
} sc_sessions_t;

/* The slot of session `id` (non-zero), created when unknown. Valid until the
 * next call for another session may evict it: callers keep the pointer and
 * check slot->id before reuse. */
sc_session_slot_t *sc_sessions_get(sc_sessions_t *t, uint64_t id);

/* True when `seq` of session `slot` was handled before (a resent frame). */
bool sc_sessions_handled(const sc_session_slot_t *slot, uint64_t seq);

/* Records `seq` of session `slot` as handled -- after handling it: a kill
 * in between makes the frame count twice (held by the dead sidecar and
 * delivered again), never zero times. */
void sc_sessions_record(sc_sessions_t *t, sc_session_slot_t *slot,
                        uint64_t seq);

#endif
