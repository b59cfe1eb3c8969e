/* Configured identities and peer admission (docs/transport.md). */
#include "access.h"

#include <stdlib.h>
#include <string.h>

int sc_access_parse_uids(const char *list, uint32_t *uids, size_t max)
{
    uint32_t parsed[SC_MAX_ALLOWED_UIDS];
    size_t n = 0;
    const char *p = list;
    while (*p != '\0') {
        char *end = NULL;
        /* 64 bits even where long has 32 (Windows): 2^32 must not saturate
         * into a valid uid. */
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || *p < '0' || *p > '9' || v > UINT32_MAX || n == max ||
            n == SC_MAX_ALLOWED_UIDS || (*end != ',' && *end != '\0')) {
            return UV_EINVAL;
        }
        parsed[n++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0') {
            return UV_EINVAL; /* "33," */
        }
    }
    memcpy(uids, parsed, n * sizeof parsed[0]);
    return (int)n;
}

/* S-<revision>-<authority>(-<subauthority>){0,15}: what
 * ConvertSidToStringSid produces, checked here so that a typo is reported
 * where it is configured, on every platform. */
static bool is_sid_string(const char *s, size_t len)
{
    if (len < 5 || len >= SC_SID_MAX || (s[0] != 'S' && s[0] != 's') ||
        s[1] != '-') {
        return false;
    }
    size_t parts = 0, digits = 0;
    for (size_t i = 2; i <= len; i++) {
        if (i == len || s[i] == '-') {
            if (digits == 0 || digits > 20) {
                return false;
            }
            parts++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        } else {
            return false;
        }
    }
    /* revision, authority, at most 15 sub-authorities */
    return parts >= 2 && parts <= 17 && s[2] == '1' && s[3] == '-';
}

static int add_sid(sc_access_t *a, const char *sid, size_t len)
{
    if (!is_sid_string(sid, len)) {
        return UV_EINVAL;
    }
    if (a->allowed_sid_count == SC_MAX_ALLOWED_SIDS) {
        return UV_ENOSPC;
    }
    char *out = a->allowed_sids[a->allowed_sid_count++];
    memcpy(out, sid, len);
    out[0] = 'S';
    out[len] = '\0';
    return 0;
}

int sc_access_add_sid(sc_access_t *a, const char *sid)
{
    return add_sid(a, sid, strlen(sid));
}

int sc_access_parse_sids(sc_access_t *a, const char *list)
{
    sc_access_t parsed = *a;
    parsed.allowed_sid_count = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int rc = add_sid(&parsed, p, len);
        if (rc != 0) {
            return rc;
        }
        p += len + (comma != NULL ? 1 : 0);
        if (comma != NULL && *p == '\0') {
            return UV_EINVAL; /* "S-1-5-18," */
        }
    }
    *a = parsed;
    return 0;
}

bool sc_access_admits(const sc_access_t *a, const sc_peer_t *peer)
{
    if (peer->same_user || peer->privileged) {
        return true;
    }
    for (size_t i = 0; i < a->allowed_uid_count; i++) {
        if (peer->sid[0] == '\0' && a->allowed_uids[i] == peer->uid) {
            return true;
        }
    }
    for (size_t i = 0; i < a->allowed_sid_count; i++) {
        if (peer->sid[0] != '\0' &&
            strcmp(a->allowed_sids[i], peer->sid) == 0) {
            return true;
        }
    }
    return a->master_pid != 0 && peer->pid != 0 &&
           sc_plat_is_descendant(peer->pid, a->master_pid);
}
