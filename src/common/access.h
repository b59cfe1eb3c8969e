/* Who may talk to the sidecar (docs/transport.md): the configured lists of
 * other identities, and the admission rule applied to every accepted peer. */
#ifndef SIDECAR_ACCESS_H
#define SIDECAR_ACCESS_H

#include "platform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_MAX_ALLOWED_UIDS 16
#define SC_MAX_ALLOWED_SIDS 8

/* The identities a listener admits besides its own user and root/SYSTEM. */
typedef struct sc_access {
    uint32_t master_pid; /* thread mode: admit this pid's descendants */
    uint32_t allowed_uids[SC_MAX_ALLOWED_UIDS]; /* POSIX */
    size_t allowed_uid_count;
    char allowed_sids[SC_MAX_ALLOWED_SIDS][SC_SID_MAX]; /* Windows */
    size_t allowed_sid_count;
} sc_access_t;

/* "33,1000" -> uids. Returns the count, or UV_EINVAL (nothing written)
 * unless the whole list parses and fits `max`. "" is an empty list. */
int sc_access_parse_uids(const char *list, uint32_t *uids, size_t max);

/* Appends one SID string ("S-1-5-82-..."; a lowercase 's' is accepted and
 * written as 'S') to `a`. UV_EINVAL when it is not a SID string,
 * UV_ENOSPC when the list is full. */
int sc_access_add_sid(sc_access_t *a, const char *sid);

/* "S-1-5-32-545,S-1-5-82-1-2-3-4-5" -> a->allowed_sids. Nothing changes
 * unless the whole list parses and fits. "" is an empty list. */
int sc_access_parse_sids(sc_access_t *a, const char *list);

/* The admission rule: the same user, root/SYSTEM, an allowed uid (POSIX)
 * or SID (Windows), or a descendant of the thread-mode master. */
bool sc_access_admits(const sc_access_t *a, const sc_peer_t *peer);

#endif
