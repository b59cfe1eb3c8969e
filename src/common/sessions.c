/* See sessions.h. */
#include "sessions.h"

#include <stddef.h>

#define PROBE 16 /* slots looked at per lookup */

/* Sessions ids are random: their low bits index the table directly. */
sc_session_slot_t *sc_sessions_get(sc_sessions_t *t, uint64_t id)
{
    size_t mask = SC_SESSIONS_SLOTS - 1;
    sc_session_slot_t *victim = NULL;
    t->clock++;
    for (size_t i = 0; i < PROBE; i++) {
        sc_session_slot_t *s = &t->slots[(id + i) & mask];
        if (s->id == id) {
            s->last_used = t->clock;
            return s;
        }
        bool victim_free = victim != NULL && victim->id == 0;
        if (victim == NULL || (!victim_free && s->id == 0) ||
            (!victim_free && s->last_used < victim->last_used)) {
            victim = s; /* a free slot, else the least recently used */
        }
    }
    if (victim->id != 0) {
        t->forgotten++;
    }
    victim->id = id;
    victim->handled_seq = 0;
    victim->last_used = t->clock;
    return victim;
}

bool sc_sessions_handled(const sc_session_slot_t *slot, uint64_t seq)
{
    return seq <= slot->handled_seq;
}

void sc_sessions_record(sc_sessions_t *t, sc_session_slot_t *slot, uint64_t seq)
{
    slot->last_used = ++t->clock;
    if (seq > slot->handled_seq) {
        slot->handled_seq = seq;
    }
}
