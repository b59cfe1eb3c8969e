/* The Windows rendezvous record (rendezvous.h). Every word a reader
 * accepts is one a writer can produce, and packs back to itself: the
 * fuzz target checks that round trip for every input. */
#include "rendezvous.h"

#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

#define PID_BITS         0xffffffffull
#define STATE_SHIFT      32
#define STATE_BITS       0xffull
#define GENERATION_SHIFT 40

static bool is_owner(sc_rendezvous_state_t s)
{
    return s == SC_RENDEZVOUS_STARTING || s == SC_RENDEZVOUS_LISTENING;
}

int sc_rendezvous_pack(const sc_rendezvous_t *r, uint64_t *word)
{
    if (r->state == SC_RENDEZVOUS_NONE) {
        if (r->pid != 0 || r->generation != 0) {
            return UV_EINVAL;
        }
        *word = 0;
        return 0;
    }
    if (!is_owner(r->state) || r->pid == 0 ||
        r->generation > SC_RENDEZVOUS_GENERATION_MAX) {
        return UV_EINVAL;
    }
    *word = (uint64_t)r->pid | (uint64_t)r->state << STATE_SHIFT |
            (uint64_t)r->generation << GENERATION_SHIFT;
    return 0;
}

int sc_rendezvous_parse(uint64_t word, sc_rendezvous_t *out)
{
    if (word == 0) {
        return UV_ENOENT;
    }
    uint32_t pid = (uint32_t)(word & PID_BITS);
    uint64_t state = (word >> STATE_SHIFT) & STATE_BITS;
    /* Compared as a number before it becomes the enum: a byte the writer
     * never wrote must not reach a switch over the enum. */
    if (pid == 0 ||
        (state != SC_RENDEZVOUS_STARTING && state != SC_RENDEZVOUS_LISTENING)) {
        return UV_EPROTO;
    }
    out->pid = pid;
    out->state = (sc_rendezvous_state_t)state;
    out->generation = (uint32_t)(word >> GENERATION_SHIFT);
    return 0;
}

int sc_rendezvous_pipe_name(const char *endpoint, const sc_rendezvous_t *r,
                            char *out, size_t size)
{
    if (size > 0) {
        out[0] = '\0';
    }
    if (!is_owner(r->state) || r->pid == 0) {
        return UV_EINVAL;
    }
    int n = r->generation == 0
                ? snprintf(out, size, "%s-%u", endpoint, (unsigned)r->pid)
                : snprintf(out, size, "%s-%u-%u", endpoint, (unsigned)r->pid,
                           (unsigned)r->generation);
    if (n < 0 || (size_t)n >= size || n > SC_RENDEZVOUS_PIPE_NAME_MAX) {
        if (size > 0) {
            out[0] = '\0';
        }
        return UV_ENAMETOOLONG;
    }
    return 0;
}
